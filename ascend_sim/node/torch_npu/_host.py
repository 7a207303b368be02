"""SIMULATOR (ascend-fa): the simulated host as the torch_npu stand-in sees it.

Reads the per-host description ``/etc/ascend-sim/host.json`` (``ASCEND_SIM_HOST_JSON`` overrides the path)
afresh on every call, so a test can change a card's health while a process runs. Maps the model to the
SoC names CANN uses and applies ``ASCEND_RT_VISIBLE_DEVICES`` the way the runtime documents it.
"""

from __future__ import annotations

import json
import os
import re

DEFAULT_HOST_JSON = "/etc/ascend-sim/host.json"

# model in host.json -> (CANN soc_version, numeric soc id of torch_npu._C._npu_get_soc_version,
#                        memory MiB per chip, chips per NPU); mirrors ascend_sim/node/simnode.py MODELS
_MODELS = {
    "910B1": ("Ascend910B1", 220, 65536, 1),
    "910B2": ("Ascend910B2", 221, 65536, 1),
    "910B2C": ("Ascend910B2C", 222, 65536, 1),
    "910B3": ("Ascend910B3", 223, 65536, 1),
    "910B4": ("Ascend910B4", 224, 32768, 1),
    "910B4-1": ("Ascend910B4-1", 225, 65536, 1),
    "A3-9391": ("Ascend910_9391", 250, 65536, 2),
    "A3-9392": ("Ascend910_9392", 251, 65536, 2),
    "A3-9381": ("Ascend910_9381", 252, 65536, 2),
    "A3-9382": ("Ascend910_9382", 253, 65536, 2),
    "A3-9372": ("Ascend910_9372", 254, 65536, 2),
    "A3-9362": ("Ascend910_9362", 255, 65536, 2),
    "310P1": ("Ascend310P1", 200, 44280, 1),
    "310P3": ("Ascend310P3", 202, 44280, 2),
    "310P5": ("Ascend310P5", 203, 44280, 1),
    "310P7": ("Ascend310P7", 204, 44280, 1),
    "910": ("Ascend910A", 100, 32768, 1),
    "950PR": ("Ascend950PR", 260, 131072, 1),
    "950DT": ("Ascend950DT", 260, 131072, 1),
}

# Card health values that make the runtime refuse the device.
UNUSABLE_HEALTH = ("alarm", "critical")


def host_json_path() -> str:
    return os.environ.get("ASCEND_SIM_HOST_JSON") or DEFAULT_HOST_JSON


def load_host() -> dict:
    """The host description, or {} when the file is missing or unreadable (no NPU)."""
    try:
        with open(host_json_path(), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def slow_seconds(what: str, host: dict | None = None) -> float:
    """SIMULATED fault slow-host: seconds host.json ``slow`` adds to ``what`` ("check": the device
    initialisation of every torch_npu process, so fa_check.py); 0 when off. Mirrors simnode.slow_seconds."""
    host = load_host() if host is None else host
    slow = host.get("slow")
    if not isinstance(slow, dict) or what not in (slow.get("what") or []):
        return 0.0
    try:
        return max(0.0, float(slow.get("seconds") or 0))
    except (TypeError, ValueError):
        return 0.0


def soc_version(host: dict | None = None) -> str:
    """CANN soc_version of the host's chips, e.g. Ascend910B3, Ascend910_9392, Ascend310P3."""
    host = load_host() if host is None else host
    model = str(host.get("model", ""))
    if model in _MODELS:
        return _MODELS[model][0]
    if model.upper().startswith("A3-"):
        return "Ascend910_" + model[3:]
    return "Ascend" + model if model else ""


def soc_id(host: dict | None = None) -> int:
    host = load_host() if host is None else host
    return _MODELS.get(str(host.get("model", "")), ("", 0, 0, 1))[1]


def hbm_total_mb(host: dict | None = None) -> int:
    host = load_host() if host is None else host
    if host.get("hbm_total_mb"):
        return int(host["hbm_total_mb"])
    return _MODELS.get(str(host.get("model", "")), ("", 0, 65536, 1))[2]


def chips_per_npu(host: dict | None = None) -> int:
    host = load_host() if host is None else host
    model = str(host.get("model", ""))
    if model in _MODELS:
        return _MODELS[model][3]
    return 2 if model.upper().startswith("A3-") else 1


def soc_family(soc: str) -> str:
    """The ops-transformer --soc value a soc_version belongs to (ascend910b, ascend910_93, ...)."""
    s = soc.lower()
    for prefix, family in (
        ("ascend910b", "ascend910b"),
        ("ascend910_93", "ascend910_93"),
        ("ascend310p", "ascend310p"),
        ("ascend950", "ascend950"),
        ("ascend910", "ascend910"),
    ):
        if s.startswith(prefix):
            return family
    return s


def physical_count(host: dict | None = None) -> int:
    """Devices (chips) of the host: npu_count x chips per NPU (A3 and 310P3 Duo boards carry two)."""
    host = load_host() if host is None else host
    try:
        return max(0, int(host.get("npu_count", 0))) * chips_per_npu(host)
    except (TypeError, ValueError):
        return 0


def npu_of(device_id: int, host: dict | None = None) -> tuple[int, int]:
    """(npu_id, chip_id) of a physical device id (what host.json health / hbm_used_mb are keyed by)."""
    chips = chips_per_npu(host)
    return device_id // chips, device_id % chips


def visible_devices(host: dict | None = None) -> list[int]:
    """Physical device ids visible to this process, in logical order.

    ASCEND_RT_VISIBLE_DEVICES: comma-separated ids in ascending order; parsing stops at the first token
    that is not a plain number, is out of range or is not ascending ("1, 2,3" -> [1]; "1,3,8" on an
    8-NPU host -> [1, 3]).
    """
    count = physical_count(host)
    env = os.environ.get("ASCEND_RT_VISIBLE_DEVICES")
    if env is None:
        return list(range(count))
    ids: list[int] = []
    for token in env.split(","):
        if not re.fullmatch(r"[0-9]+", token):
            break
        value = int(token)
        if value >= count or (ids and value <= ids[-1]):
            break
        ids.append(value)
    return ids


def health(device_id: int, host: dict | None = None) -> str:
    """Health of the NPU holding a physical device id (host.json ``health`` is keyed by NPU id)."""
    host = load_host() if host is None else host
    table = host.get("health") or {}
    npu_id = npu_of(device_id, host)[0]
    return str(table.get(str(npu_id), "OK")) if isinstance(table, dict) else "OK"


# torch_npu release -> CANN release family it is built for (Ascend/pytorch COMPATIBILITY, ascend-facts 4.1, 8)
TORCH_NPU_CANN = {
    "2.14.0": "9.1",
    "2.12.0": "9.1",
    "2.9.0.post2": "9.0",
    "2.9.0": "8.5",
    "2.8.0.post2": "8.5",
    "2.7.1.post2": "8.5",
    "2.6.0.post5": "8.5",
    "2.8.0": "8.3",
    "2.7.1": "8.3",
    "2.6.0.post3": "8.3",
    "2.1.0.post17": "8.3",
    "2.6.0": "8.2",
    "2.5.1.post1": "8.2",
    "2.1.0.post13": "8.2",
    "2.5.1": "8.1",
    "2.4.0.post4": "8.1",
    "2.3.1.post6": "8.1",
    "2.1.0.post12": "8.1",
    "2.4.0.post2": "8.0",
    "2.3.1.post4": "8.0",
    "2.1.0.post10": "8.0",
    "2.4.0": "8.0",
    "2.3.1.post2": "8.0",
    "2.1.0.post8": "8.0",
    "2.3.1": "8.0",
    "2.2.0.post2": "8.0",
    "2.1.0.post6": "8.0",
    "2.2.0": "8.0",
    "2.1.0.post4": "8.0",
    "2.1.0.post3": "8.0",
    "2.1.0": "7.0",
}


def cann_family(version: str) -> str:
    """``8.5.0`` -> ``8.5``, ``8.0.RC1`` -> ``8.0``."""
    return ".".join(str(version).split(".")[:2])


def wrong_results(package_version: str, host: dict | None = None) -> bool:
    """SIMULATED fault: should the kernel of the package with ``package_version`` give wrong numbers here?

    host.json ``faults`` holds ``"wrong-results"`` (every package) or ``"wrong-results:<version>"`` (only the
    package whose ``ascendfa_sim_package_version()`` is that version, e.g. ``9.0.1``; a leading ``v`` is
    ignored): a host whose new release miscomputes while the old one is right, as after a bad upgrade.
    """
    host = load_host() if host is None else host
    faults = host.get("faults") or []
    if not isinstance(faults, list):
        return False
    version = str(package_version or "").lstrip("v")
    for fault in faults:
        name, _, wanted = str(fault).partition(":")
        if name == "wrong-results" and (not wanted or wanted.lstrip("v") == version):
            return True
    return False


def torch_npu_cann_mismatch(torch_npu_version: str, host: dict | None = None) -> str | None:
    """Why this torch_npu cannot load against the host's CANN, or None (unknown versions pass)."""
    host = load_host() if host is None else host
    cann = str(host.get("cann_version") or "")
    need = TORCH_NPU_CANN.get(torch_npu_version)
    if not cann or need is None or cann_family(cann) == need:
        return None
    return f"torch_npu {torch_npu_version} is built for CANN {need}.x, this host runs CANN {cann}"
