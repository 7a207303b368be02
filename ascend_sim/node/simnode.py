"""SIMULATOR: shared model table and host configuration of a simulated Ascend node.

Runs inside the node containers under Debian's /usr/bin/python3 (3.11) and on the controller (tests, fleet);
standard library only. ``/etc/ascend-sim/host.json`` describes one node; :func:`load_host` fills in defaults
and :func:`chips` expands it into the chips that the fake ``npu-smi`` prints.
"""

from __future__ import annotations

import json
import os
import platform
import re
from dataclasses import dataclass
from typing import Any

HOST_JSON = "/etc/ascend-sim/host.json"
HEALTH_VALUES = ("OK", "Warning", "Alarm", "Critical")


@dataclass(frozen=True)
class Model:
    """One simulated board type."""

    key: str
    family: str  # A2 | A3 | 310P | 910
    chip_name: str  # what `npu-smi info` prints in the Name column / board "Chip Name"
    chips_per_npu: int
    mem_total_mb: int  # HBM per chip (A2/A3/910); DDR per chip for 310P
    pci_device_id: str
    subsystem_vendor: str
    subsystem_device: str
    product_name: str
    board_id: str
    npu_name: str | None = None  # A3: "9392"
    chip_type: str | None = "Ascend"  # A3 boards print no Chip Type
    map_name: str = ""  # `npu-smi info -m` Chip Name column
    ops_package: str = "Ascend-cann-910b-ops"

    @property
    def has_hbm(self) -> bool:
        return self.family != "310P"


def _a2(key: str, hbm: int) -> Model:
    return Model(key, "A2", key, 1, hbm, "0xD802", "0x19E5", "0x3003", "IT21HMDC_Bin5", "0x60",
                 map_name=f"Ascend {key}")


def _a3(npu_name: str) -> Model:
    return Model(f"A3-{npu_name}", "A3", "Ascend910", 2, 65536, "0xD803", "0x19E5", "0x3001", "IT22HMDA_2_S",
                 "0x71", npu_name=npu_name, chip_type=None, map_name="Ascend910", ops_package="Ascend-cann-A3-ops")


MODELS: dict[str, Model] = {
    **{k: _a2(k, 32768 if k.startswith("910B4") else 65536) for k in ("910B1", "910B2", "910B2C", "910B3", "910B4")},
    **{f"A3-{n}": _a3(n) for n in ("9391", "9381", "9372", "9392", "9382", "9362")},
    "310P3": Model("310P3", "310P", "310P3", 2, 44280, "0xD500", "0x0200", "0x0110", "IT21PD2G10", "0xb1",
                   map_name="Ascend 310P3", ops_package="Ascend-cann-310p-ops"),
    "910": Model("910", "910", "910A", 1, 32768, "0xD801", "0x0200", "0x0100", "IT21DMDA", "0x02",
                 map_name="Ascend 910A", ops_package="Ascend-cann-910-ops"),
}

# Bus ids in the order real 8-card boards list them (A2: vllm-ascend issue dumps).
_A2_BUSES = ("C1", "C2", "81", "82", "01", "02", "41", "42")
_A3_BUSES = ("9D", "9F", "99", "9B", "B9", "BB", "B5", "B7", "1D", "1F", "19", "1B", "39", "3B", "35", "83")
_310P_BUSES = ("01", "81", "02", "82", "41", "C1", "42", "C2")

DEFAULTS: dict[str, Any] = {
    "model": "910B3",
    "npu_count": 8,
    "driver_version": "25.5.0",
    "firmware_version": "7.8.0.2.212",
    "cann_version": "8.5.0",
    "cann_layout": None,  # derived from cann_version when null
    "torch_npu_version": "2.9.0",
    "arch": None,  # the machine's own when null
    "health": {},
    "hbm_used_mb": {},
    "hbm_total_mb": None,
    "processes": [],
    "faults": [],
    "fault_log": [],
    "driver_compatible_fw": None,
    "firmware_compatible_drv": None,
    "ascend_home": "/usr/local/Ascend",
    # connectivity and resource faults (ascend_sim.fleet host-down / partition / slow-host / disk-full)
    "down": None,  # {"kind": "host-down" | "partition", "until": epoch seconds | None (until cleared)}
    "slow": None,  # {"seconds": float, "what": ["ssh", "npu-smi", "check"]}
    "disk_full": None,  # {"target": "state" | "opp", "free_kb": int}
    # the build host's network, read by the simulated upstream build.sh for its third-party download (ops-transformer
    # build.sh fetches googletest, protobuf, abseil, json, makeself unless --cann_3rd_lib_path: ascend-facts 9.4)
    "network": "online",  # online | offline | proxy (only proxy_url reaches the internet)
    "proxy_url": None,  # e.g. "http://proxy.example:3128" (network: proxy)
    # the non-root SSH user ``ops`` (sim-apply ensure_ops): null: sudo NOPASSWD; a string: sudo asks ops for it
    "ops_sudo_password": None,
    # MiB of incompressible kernel-binary stand-in the simulated upstream build adds to each package it builds on this
    # host (scripts/util/gen_kernel_config.py layout; 0: none). A real FlashAttention package carries kernel binaries
    # for every shape, dtype and SoC; the simulated one has a few KiB of them, too small to measure transfer costs.
    "package_pad_mib": 0,
}

PACKAGE_PAD_MIB_MAX = 1024

# What the slow-host fault can slow down: every command over SSH (root's login shell), npu-smi, and the torch_npu
# stand-in's device initialisation (so fa_check.py, the verification).
SLOW_TARGETS = ("ssh", "npu-smi", "check")
DOWN_KINDS = ("host-down", "partition")
NETWORK_KINDS = ("online", "offline", "proxy")
# disk-full targets: the deploy tool's state folder (its default fa_state_dir) or CANN's opp/vendors folder
DISK_TARGETS = ("state", "opp")
STATE_DIR = "/var/lib/ascend-fa"
# sim-apply writes it from host.json "down"; sim-init (PID 1) keeps sshd stopped while it says so
SSHD_DOWN_FILE = "/run/ascend-sim/sshd-down"


class HostConfigError(ValueError):
    """host.json names something the simulator does not know."""


def version_tuple(version: str) -> tuple[int, ...]:
    """Numeric prefix of a version: ``8.5.0`` -> (8, 5, 0), ``8.3.RC1`` -> (8, 3)."""
    out: list[int] = []
    for part in version.split("."):
        if not part.isdigit():
            break
        out.append(int(part))
    return tuple(out)


def layout_for(cann_version: str) -> str:
    """``toolkit`` (ascend-toolkit/<ver> + latest) before CANN 8.5, ``cann`` (cann-<ver> + cann) from 8.5."""
    return "cann" if version_tuple(cann_version)[:2] >= (8, 5) else "toolkit"


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and validate a host.json dict (does not modify ``raw``)."""
    host = {**DEFAULTS, **raw}
    if host["model"] not in MODELS:
        raise HostConfigError(f"unknown model {host['model']!r}; known: {', '.join(MODELS)}")
    host["npu_count"] = int(host["npu_count"])
    if host["npu_count"] < 1:
        raise HostConfigError("npu_count must be >= 1")
    host["cann_layout"] = host["cann_layout"] or layout_for(str(host["cann_version"]))
    if host["cann_layout"] not in ("toolkit", "cann"):
        raise HostConfigError(f"cann_layout must be toolkit or cann, not {host['cann_layout']!r}")
    host["arch"] = host["arch"] or platform.machine()
    for key in ("health", "hbm_used_mb"):
        host[key] = {str(k): v for k, v in (host[key] or {}).items()}
    for level in host["health"].values():
        if level not in HEALTH_VALUES:
            raise HostConfigError(f"health must be one of {HEALTH_VALUES}, not {level!r}")
    _check_fault_keys(host)
    pad = host["package_pad_mib"]
    if isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad <= PACKAGE_PAD_MIB_MAX:
        raise HostConfigError(f"package_pad_mib must be a whole number of MiB within 0..{PACKAGE_PAD_MIB_MAX}, "
                              f"not {pad!r}")
    return host


def _check_network(host: dict[str, Any]) -> None:
    if host["network"] not in NETWORK_KINDS:
        raise HostConfigError(f"network must be one of {NETWORK_KINDS}, not {host['network']!r}")
    proxy = host["proxy_url"]
    if proxy is not None and (not isinstance(proxy, str) or not re.fullmatch(r"https?://[^\s'\"]+", proxy)):
        raise HostConfigError(f"proxy_url must be null or an http(s):// URL without spaces or quotes, not {proxy!r}")
    if host["network"] == "proxy" and not proxy:
        raise HostConfigError("network: proxy needs proxy_url")


def _check_fault_keys(host: dict[str, Any]) -> None:
    _check_network(host)
    pw = host["ops_sudo_password"]
    # chpasswd(8) reads "user:password" lines: a newline or NUL would end or cut the line
    if pw is not None and (not isinstance(pw, str) or not pw or any(c in pw for c in "\n\r\0")):
        raise HostConfigError("ops_sudo_password must be null or a non-empty string on one line")
    down, slow, disk = host["down"], host["slow"], host["disk_full"]
    if down is not None and (not isinstance(down, dict) or down.get("kind") not in DOWN_KINDS
                             or not isinstance(down.get("until"), (int, float, type(None)))):
        raise HostConfigError(f"down must be null or {{kind: one of {DOWN_KINDS}, until: epoch seconds|null}}, "
                              f"not {down!r}")
    if slow is not None:
        if not isinstance(slow, dict) or not isinstance(slow.get("seconds"), (int, float)) \
                or not 0 <= slow["seconds"] <= 3600:
            raise HostConfigError(f"slow must be null or {{seconds: 0..3600, what: [...]}}, not {slow!r}")
        what = slow.get("what")
        if not isinstance(what, list) or not what or any(w not in SLOW_TARGETS for w in what):
            raise HostConfigError(f"slow.what must be a non-empty list of {SLOW_TARGETS}, not {what!r}")
    if disk is not None and (not isinstance(disk, dict) or disk.get("target") not in DISK_TARGETS
                             or not isinstance(disk.get("free_kb"), int) or disk["free_kb"] < 0):
        raise HostConfigError(f"disk_full must be null or {{target: one of {DISK_TARGETS}, free_kb: >= 0}}, "
                              f"not {disk!r}")


def slow_seconds(host: dict[str, Any], what: str) -> float:
    """Seconds the slow-host fault adds to ``what`` (one of :data:`SLOW_TARGETS`) on this host; 0 when off."""
    slow = host.get("slow")
    if not isinstance(slow, dict) or what not in (slow.get("what") or []):
        return 0.0
    try:
        return max(0.0, float(slow.get("seconds") or 0))
    except (TypeError, ValueError):
        return 0.0


def load_host(path: str | None = None) -> dict[str, Any]:
    """Read and normalize host.json (``$ASCEND_SIM_HOST_JSON`` overrides the path, for unit tests)."""
    path = path or os.environ.get("ASCEND_SIM_HOST_JSON") or HOST_JSON
    with open(path, encoding="utf-8") as handle:
        return normalize(json.load(handle))


@dataclass(frozen=True)
class Chip:
    npu_id: int
    chip_id: int
    phy_id: int  # A3 Phy-ID / 310P Device / logic id
    name: str
    health: str
    bus_id: str
    mem_total_mb: int
    mem_used_mb: int
    power: str
    temp: int


def _bus_id(model: Model, npu_id: int, chip_id: int) -> str:
    if model.family == "A3":
        index, table = npu_id * 2 + chip_id, _A3_BUSES
    elif model.family == "310P":
        index, table = npu_id, _310P_BUSES
    else:
        index, table = npu_id, _A2_BUSES
    bus = table[index] if index < len(table) else f"{0x10 + index:02X}"
    return f"0000:{bus}:00.0"


def _lookup(table: dict[str, Any], npu_id: int, chip_id: int, default: Any) -> Any:
    """Per-chip value: key ``"N:C"`` wins over ``"N"`` (all chips of NPU N)."""
    return table.get(f"{npu_id}:{chip_id}", table.get(str(npu_id), default))


def _power(model: Model, npu_id: int, chip_id: int) -> str:
    if model.family == "310P":
        return "NA"
    if chip_id > 0:
        return "-"
    base = 165.0 if model.family == "A3" else 86.0
    return f"{base + (npu_id * 37 % 17) * 0.7:.1f}"


def chips(host: dict[str, Any]) -> list[Chip]:
    """All compute chips of the node, in `npu-smi info` order."""
    model = MODELS[host["model"]]
    total = int(host.get("hbm_total_mb") or model.mem_total_mb)
    out = []
    for npu_id in range(host["npu_count"]):
        for chip_id in range(model.chips_per_npu):
            used_default = (3380 if model.has_hbm else 1500) + (npu_id * 7 + chip_id * 13) % 40
            out.append(Chip(
                npu_id=npu_id,
                chip_id=chip_id,
                phy_id=npu_id * model.chips_per_npu + chip_id,
                name=model.chip_name,
                health=_lookup(host["health"], npu_id, chip_id, "OK"),
                bus_id=_bus_id(model, npu_id, chip_id),
                mem_total_mb=total,
                mem_used_mb=int(_lookup(host["hbm_used_mb"], npu_id, chip_id, used_default)),
                power=_power(model, npu_id, chip_id),
                temp=34 + (npu_id * 5 + chip_id) % 9,
            ))
    return out


_SOC_DIRS = {"A2": "ascend910b", "A3": "ascend910_93", "310P": "ascend310p", "910": "ascend910"}


def soc_dir(model_key: str) -> str:
    """The kernel folder name of the model's SoC family (``opp/built-in/.../kernel/<dir>``)."""
    return _SOC_DIRS[MODELS[model_key].family]


def bump_version(version: str) -> str:
    """Next CANN version: ``8.5.0`` -> ``8.5.1``, ``8.3.RC1`` -> ``8.3.RC2``."""
    match = re.match(r"^(.*?)(\d+)$", version)
    if not match:
        return version + ".1"
    return f"{match.group(1)}{int(match.group(2)) + 1}"
