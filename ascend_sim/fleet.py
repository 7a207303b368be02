"""SIMULATOR: fleets of simulated Ascend hosts (podman containers reached over real SSH on loopback).

Each host is a container from the node image (:mod:`ascend_sim.image`) started with ``--network host``; its
entrypoint runs ``sim-apply`` (lays out ``/usr/local/Ascend`` from ``host.json``) and then ``sshd`` bound to the
host's own address ``127.0.<octet>.<n>``. Nothing leaves 127.0.0.0/8. A fleet lives in a folder ``DIR``:

- ``DIR/id_ed25519`` (+ ``.pub``): the client key; ``DIR/known_hosts``: the hosts' keys (host key checking on);
- ``DIR/hosts/<name>/host.json``: each host's description, bind-mounted read-write at ``/etc/ascend-sim``;
- ``DIR/upstream/``: the simulated upstream (``ops-transformer.git``), read-only at ``/srv/ascend-sim/upstream``;
- ``DIR/inventory.yml`` (group ``ascend``) and ``DIR/fleet.json``.

Functions: :func:`create`, :func:`destroy`, :func:`inject_fault`, :func:`list_fleets` (also ``list``),
:func:`load_fleet`, :func:`ssh_argv`. CLI: ``python -m ascend_sim.fleet create|destroy|inject-fault|list``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import importlib.util
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from ascend_sim.image import REPO, SimError, ensure_image, ensure_torch, podman, sim_home
from ascend_sim.node.simnode import (
    DEFAULTS,
    DISK_TARGETS,
    HEALTH_VALUES,
    MODELS,
    SLOW_TARGETS,
    bump_version,
    normalize,
)

LABEL = "ascend-sim-fleet"
NODE_DIR = REPO / "ascend_sim" / "node"
RECIPE_DIR = REPO / "ascend_sim" / "recipes"
RECIPE = "sim-ops-transformer-v9.0.1"
SIM_APPLY = ["/usr/bin/python3", "/opt/ascend-sim/node/sim-apply"]
UPSTREAM_MODULE = "ascend_sim.upstream.make_repo"

# ------------------------------------------------------------------------------------------------ planning


def fleet_id_for(octet: int) -> str:
    """Default fleet id: one fleet per loopback range ``127.0.<octet>.0/24``."""
    return f"asim{octet}"


def _nth(values: Sequence[Any] | None, index: int) -> Any:
    """``values`` cycled over the hosts (None or empty: None)."""
    return values[index % len(values)] if values else None


def _override_for(overrides: Mapping[Any, Mapping[str, Any]] | None, index: int, name: str) -> dict[str, Any]:
    if not overrides:
        return {}
    merged: dict[str, Any] = {}
    for key in (index, str(index), name, name.rsplit("-", 1)[-1]):
        merged.update(overrides.get(key, {}))
    return merged


def plan_hosts(
    fleet_id: str,
    octet: int,
    hosts: int,
    models: Sequence[str] | None = None,
    cann_layouts: Sequence[str | None] | None = None,
    cann_versions: Sequence[str] | None = None,
    npus: int = 8,
    overrides: Mapping[Any, Mapping[str, Any]] | None = None,
    package_pad_mib: int = 0,
) -> list[dict[str, Any]]:
    """Names, addresses and host.json of every host (pure; validated). Host indexes start at 1.

    ``models``, ``cann_layouts`` and ``cann_versions`` are cycled over the hosts; ``overrides`` maps a host
    index (1-based), its name or ``nodeN`` to host.json keys that win over everything else.
    ``package_pad_mib``: every host's host.json ``package_pad_mib`` (the packages its builds make grow by that many
    MiB of incompressible kernel-binary stand-in; see ``ascend_sim/upstream/tree/scripts/util/gen_kernel_config.py``).
    """
    if not 1 <= octet <= 254 or not 1 <= hosts <= 254:
        raise SimError("fleet_octet and hosts must be within 1..254")
    planned = []
    for i in range(hosts):
        index, name = i + 1, f"{fleet_id}-node{i + 1}"
        config: dict[str, Any] = {"model": _nth(models, i) or DEFAULTS["model"], "npu_count": npus}
        if package_pad_mib:
            config["package_pad_mib"] = package_pad_mib
        if _nth(cann_versions, i):
            config["cann_version"] = _nth(cann_versions, i)
        if _nth(cann_layouts, i):
            config["cann_layout"] = _nth(cann_layouts, i)
        config.update(_override_for(overrides, index, name))
        full = {**DEFAULTS, **config}
        try:
            normalize(full)
        except ValueError as exc:
            raise SimError(f"{name}: {exc}") from exc
        planned.append({"name": name, "index": index, "address": f"127.0.{octet}.{index}", "config": full})
    return planned


def render_inventory(fleet_dir: Path, planned: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """YAML inventory: group ``ascend`` with real SSH settings and host key checking on."""
    key = fleet_dir / "id_ed25519"
    ssh_args = f"-o UserKnownHostsFile={fleet_dir / 'known_hosts'} -o StrictHostKeyChecking=yes"
    hosts = {
        h["name"]: {
            "ansible_host": h["address"],
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(key),
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_ssh_common_args": ssh_args,
        }
        for h in planned
    }
    # The simulated nodes run CPU torch 2.13 (the only CPU wheel this machine kind has) under a torch_npu 2.9
    # stand-in: a real node with that pair is broken, and preflight says so. The simulator's inventory therefore
    # asks preflight to report that one check as a warning; everything else is checked as on real hosts.
    group_vars = {"fa_recipe_dirs": [str(RECIPE_DIR)], "fa_recipe": RECIPE,
                  "fa_preflight_ignore": ["torch_torch_npu_mismatch"]}
    return {"all": {"children": {"ascend": {"hosts": hosts, "vars": group_vars}}}}


# ------------------------------------------------------------------------------------------- fleet folder


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def _ensure_client_key(fleet_dir: Path) -> Path:
    key = fleet_dir / "id_ed25519"
    if not key.exists() or not key.with_suffix(".pub").exists():
        key.unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"ascend-sim@{fleet_dir.name}",
                        "-f", str(key)], check=True, capture_output=True)
    key.chmod(0o600)
    return key


def _ensure_upstream(fleet_dir: Path) -> Path:
    """``DIR/upstream`` with the simulated upstream repo (``make_repo`` is idempotent), when that module exists."""
    upstream = fleet_dir / "upstream"
    upstream.mkdir(exist_ok=True)
    if importlib.util.find_spec(UPSTREAM_MODULE):
        importlib.import_module(UPSTREAM_MODULE).make_repo(upstream)
    return upstream


def _write_host_dirs(fleet_dir: Path, planned: Sequence[Mapping[str, Any]]) -> None:
    hosts_dir = fleet_dir / "hosts"
    hosts_dir.mkdir(exist_ok=True)
    wanted = {h["name"] for h in planned}
    for stale in hosts_dir.iterdir():
        if stale.name not in wanted and (stale / "host.json").exists():
            (stale / "host.json").unlink()
            with contextlib.suppress(OSError):
                stale.rmdir()
    for h in planned:
        folder = hosts_dir / h["name"]
        folder.mkdir(exist_ok=True)
        _write_json(folder / "host.json", h["config"])


# ---------------------------------------------------------------------------------------------- containers


def _label_ids(label: str) -> list[str]:
    out = podman("ps", "-a", "-q", "--filter", f"label={label}").stdout
    return out.split()


def remove_fleet_containers(fleet_id: str) -> int:
    """Remove every container labelled with ``fleet_id`` (leftovers of earlier runs included)."""
    ids = _label_ids(f"{LABEL}={fleet_id}")
    if ids:
        podman("rm", "-f", "-t", "0", *ids, timeout=120)
    return len(ids)


def _listening(address: str, port: int = 22, timeout: float = 0.3) -> bool:
    with socket.socket() as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((address, port)) == 0


def _run_argv(fleet_id: str, fleet_dir: Path, host: Mapping[str, Any], image: str, torch: Path) -> list[str]:
    name = host["name"]
    mounts = {
        str(fleet_dir / "hosts" / name): "/etc/ascend-sim:rw",
        str(fleet_dir / "id_ed25519.pub"): "/root/.ssh/authorized_keys:ro",
        str(NODE_DIR): "/opt/ascend-sim/node:ro",
        str(torch): "/opt/ascend-sim/torch:ro",
        str(fleet_dir / "upstream"): "/srv/ascend-sim/upstream:ro",
    }
    argv = ["run", "-d", "--replace", "--name", name, "--hostname", name, "--network", "host",
            "--label", f"{LABEL}={fleet_id}", "--label", f"ascend-sim-dir={fleet_dir}",
            "--label", f"ascend-sim-addr={host['address']}", "-e", f"ASCEND_SIM_ADDR={host['address']}"]
    for src, dest in mounts.items():
        argv += ["-v", f"{src}:{dest}"]
    return [*argv, image, "/bin/sh", "/opt/ascend-sim/node/entrypoint.sh"]


def _container_state(name: str) -> str:
    proc = podman("inspect", "--format", "{{.State.Status}}", name, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "missing"


def _wait_sshd(name: str, address: str, deadline: float) -> None:
    """Wait until ``address:22`` greets with an OpenSSH banner; fail fast if the container died."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, 22), timeout=1) as sock:
                sock.settimeout(2)
                if sock.recv(64).startswith(b"SSH-2.0-OpenSSH"):
                    return
        except OSError:
            pass
        if _container_state(name) not in ("running", "created", "configured"):
            break
        time.sleep(0.1)
    logs = podman("logs", "--tail", "40", name, check=False)
    raise SimError(f"{name}: sshd on {address}:22 did not come up ({_container_state(name)}):\n"
                   f"{logs.stdout}{logs.stderr}")


def _keyscan(addresses: Sequence[str], deadline: float) -> list[str]:
    """ssh-keyscan every address (ed25519), retrying until each answered."""
    lines: dict[str, str] = {}
    while True:
        missing = [a for a in addresses if a not in lines]
        proc = subprocess.run(["ssh-keyscan", "-T", "5", "-t", "ed25519", *missing],
                              capture_output=True, text=True, check=False)
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and not line.startswith("#") and parts[0] in missing:
                lines[parts[0]] = line
        if len(lines) == len(addresses):
            return [lines[a] for a in addresses]
        if time.monotonic() > deadline:
            raise SimError(f"ssh-keyscan got no host key from {', '.join(a for a in addresses if a not in lines)}")
        time.sleep(0.2)


def _start(fleet_id: str, fleet_dir: Path, planned: Sequence[Mapping[str, Any]], image: str, torch: Path,
           timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(max_workers=4) as pool:
        list_ = [pool.submit(podman, *_run_argv(fleet_id, fleet_dir, h, image, torch)) for h in planned]
        for future in list_:
            future.result()
        waits = [pool.submit(_wait_sshd, h["name"], h["address"], deadline) for h in planned]
        for future in waits:
            future.result()


def create(
    dir: str | Path,  # noqa: A002 - the documented keyword
    hosts: int = 2,
    models: Sequence[str] | None = None,
    fleet_octet: int = 2,
    cann_layouts: Sequence[str | None] | None = None,
    cann_versions: Sequence[str] | None = None,
    npus: int = 8,
    overrides: Mapping[Any, Mapping[str, Any]] | None = None,
    fleet_id: str | None = None,
    with_torch: bool = True,
    timeout: float = 90,
    package_pad_mib: int = 0,
) -> dict[str, Any]:
    """Start a fleet of ``hosts`` simulated hosts on ``127.0.<fleet_octet>.1..N``; return fleet.json's content.

    Stale containers with the same fleet label are removed first. See :func:`plan_hosts` for ``models``,
    ``cann_layouts``, ``cann_versions``, ``overrides`` and ``package_pad_mib``. Raises :class:`SimError` (and
    removes what it started) when a host does not come up.
    """
    started = time.monotonic()
    fleet_dir = Path(dir).resolve()
    fleet_dir.mkdir(parents=True, exist_ok=True)
    fleet_id = fleet_id or fleet_id_for(fleet_octet)
    planned = plan_hosts(fleet_id, fleet_octet, hosts, models, cann_layouts, cann_versions, npus, overrides,
                         package_pad_mib)
    remove_fleet_containers(fleet_id)
    busy = [h["address"] for h in planned if _listening(h["address"])]
    if busy:
        raise SimError(f"something already listens on port 22 of {', '.join(busy)}: pick another fleet_octet")
    image = ensure_image()
    torch = ensure_torch() if with_torch else _empty_torch_dir()
    _ensure_client_key(fleet_dir)
    _ensure_upstream(fleet_dir)
    _write_host_dirs(fleet_dir, planned)
    try:
        _start(fleet_id, fleet_dir, planned, image, torch, timeout)
        known = _keyscan([h["address"] for h in planned], time.monotonic() + 30)
    except BaseException:
        remove_fleet_containers(fleet_id)
        raise
    (fleet_dir / "known_hosts").write_text("\n".join(known) + "\n")
    inventory = fleet_dir / "inventory.yml"
    inventory.write_text("# SIMULATOR (ascend-sim) fleet inventory, written by ascend_sim.fleet.create\n"
                         + yaml.safe_dump(render_inventory(fleet_dir, planned), sort_keys=False))
    fleet = {
        "fleet_id": fleet_id, "octet": fleet_octet, "dir": str(fleet_dir), "image": image,
        "inventory": str(inventory), "known_hosts": str(fleet_dir / "known_hosts"),
        "key": str(fleet_dir / "id_ed25519"), "torch": str(torch),
        "created_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "create_seconds": round(time.monotonic() - started, 2), "package_pad_mib": package_pad_mib,
        "hosts": [{"name": h["name"], "index": h["index"], "address": h["address"],
                   "model": h["config"]["model"]} for h in planned],
    }
    _write_json(fleet_dir / "fleet.json", fleet)
    return fleet


def _empty_torch_dir() -> Path:
    path = sim_home() / "torch-none"
    path.mkdir(exist_ok=True)
    return path


def load_fleet(dir: str | Path) -> dict[str, Any]:  # noqa: A002
    path = Path(dir).resolve() / "fleet.json"
    if not path.exists():
        raise SimError(f"no fleet in {path.parent} (fleet.json missing)")
    return json.loads(path.read_text())


def destroy(dir: str | Path) -> int:  # noqa: A002
    """Remove the fleet's containers (``podman rm -f -t 0``); the folder stays. Returns how many went."""
    path = Path(dir).resolve()
    if (path / "fleet.json").exists():
        fleet_id = load_fleet(path)["fleet_id"]
        return remove_fleet_containers(fleet_id)
    ids = _label_ids(f"ascend-sim-dir={path}")
    if ids:
        podman("rm", "-f", "-t", "0", *ids, timeout=120)
    return len(ids)


def list_fleets() -> list[dict[str, Any]]:
    """Fleets known to podman: id, folder and each container's name, address, state and ``ready``.

    ``ready``: podman says running *and* something answers on the host's port 22. podman's state alone can be stale
    (a container whose processes were killed from outside still shows as running).
    """
    out = podman("ps", "-a", "--filter", f"label={LABEL}", "--format", "json").stdout
    fleets: dict[str, dict[str, Any]] = {}
    for entry in json.loads(out or "[]"):
        labels = entry.get("Labels") or {}
        fid = labels.get(LABEL, "?")
        fleet = fleets.setdefault(fid, {"fleet_id": fid, "dir": labels.get("ascend-sim-dir"), "hosts": []})
        fleet["hosts"].append({"name": (entry.get("Names") or ["?"])[0], "address": labels.get("ascend-sim-addr"),
                               "state": entry.get("State"),
                               "ready": bool(entry.get("State") == "running" and labels.get("ascend-sim-addr")
                                             and _listening(labels["ascend-sim-addr"]))})
    for fleet in fleets.values():
        fleet["hosts"].sort(key=lambda h: h["name"])
    return sorted(fleets.values(), key=lambda f: f["fleet_id"])


# ------------------------------------------------------------------------------------------------ faults


def _fault_card_health(config: dict[str, Any], kw: dict[str, Any]) -> list[str]:
    level = kw.get("level", "Warning")
    if level not in HEALTH_VALUES:
        raise SimError(f"card-health level must be one of {HEALTH_VALUES}")
    key = str(kw.get("npu", 0)) + (f":{kw['chip']}" if kw.get("chip") is not None else "")
    config["health"] = {**config.get("health", {}), key: level}
    return []


def _fault_hbm_used(config: dict[str, Any], kw: dict[str, Any]) -> list[str]:
    npus = range(config["npu_count"]) if kw.get("npu") == "all" else [kw.get("npu", 0)]
    config["hbm_used_mb"] = {**config.get("hbm_used_mb", {}), **{str(n): int(kw.get("mb", 60000)) for n in npus}}
    return []


def _flag(name: str) -> Callable[[dict[str, Any], dict[str, Any]], list[str]]:
    def fault(config: dict[str, Any], kw: dict[str, Any]) -> list[str]:
        config["faults"] = sorted({*config.get("faults", []), name})
        return []

    return fault


def _fault_cann_upgrade(config: dict[str, Any], kw: dict[str, Any]) -> list[str]:
    config["cann_version"] = kw.get("version") or bump_version(str(config["cann_version"]))
    if kw.get("layout"):
        config["cann_layout"] = kw["layout"]
    return []


def _fault_torch_npu_mismatch(config: dict[str, Any], kw: dict[str, Any]) -> list[str]:
    default = "2.9.0" if str(config["cann_version"]).startswith("8.0") else "2.1.0.post4"
    config["torch_npu_version"] = kw.get("version") or default
    return []


def _fault_wrong_results(config: dict[str, Any], kw: dict[str, Any]) -> list[str]:
    """The torch_npu stand-in adds an offset to FlashAttention outputs of the package with ``version`` (all when
    None): verification of that release fails on this host while another release still passes."""
    version = str(kw["version"]).lstrip("v") if kw.get("version") else None
    name = f"wrong-results:{version}" if version else "wrong-results"
    config["faults"] = sorted({*config.get("faults", []), name})
    return []


# Connectivity and resource faults. What a real node does, and what the controller sees:
# - host-down: the host is lost (power cut, kernel panic, hung kernel). Every process on it dies, so an install or a
#   verification in flight stops where it was; nothing answers on port 22. Ansible reports the host UNREACHABLE
#   ("Failed to connect to the host via ssh: ... Connection refused", or "Shared connection ... closed" for a task in
#   flight); ansible-playbook exits 4 when a host was unreachable. Block/rescue does not run for an unreachable host,
#   so nothing on it is rolled back: the next run must find what the host was left with.
#   Simulated: sim-apply kills every process of the node but PID 1 (sim-init, which stands for the machine) and
#   sim-init keeps sshd stopped until `clear` (the port refuses connections at once, where a real dead host would
#   make the client wait for its ConnectTimeout: same classification, faster tests). Not `podman pause`: a paused
#   container keeps its sockets, so a task in flight would hang with no timeout (Ansible sets none by default).
# - partition: the network between controller and host drops. Established SSH connections die (the task in flight
#   is UNREACHABLE, as above) while the host keeps running what they started (an installer may finish with nobody
#   to report to); new connections fail until the network is back. Simulated inside the node, never with firewall
#   rules on this shared machine: every sshd process (the listener and each connection's session) is killed and
#   sshd stays stopped for `seconds` (then sim-init starts it again by itself) or until `clear`.
# - slow-host: an overloaded host or a degraded card/driver: every command (`ssh`: root's login shell sleeps before
#   each command, so each Ansible task, transfer and `ssh host cmd`), npu-smi (`npu-smi`) or the device
#   initialisation of each torch_npu process (`check`: fa_check.py, so the verification) takes `seconds` longer.
#   A verification slower than fa_verify_timeout is killed and reported as "timeout after <N>s" per card.
# - disk-full: the file system under the deploy tool's state folder (`target=state`, /var/lib/ascend-fa: the kept
#   packages, the backup of the previous tree) or CANN's opp/vendors (`target=opp`: where the installer writes) has
#   only `free_kb` KiB left. Writes beyond that fail with ENOSPC, "No space left on device" (OSError errno 28 in
#   Python, "cp: error writing ...: No space left on device" from the installer). Simulated by a tmpfs (size =
#   what the folder holds + free_kb) mounted over the folder inside the node, filled with the folder's content; the
#   node itself has no CAP_SYS_ADMIN, so the mount runs through `podman exec --privileged`. Filling the real folder
#   instead would fill this machine's disk, which other work shares. `clear` copies what was written into the
#   tmpfs back to the folder and unmounts it. The tmpfs does not survive a restart of the container (clear first).


def _seconds(kw: dict[str, Any], default: float, name: str) -> float:
    try:
        value = float(kw["seconds"]) if kw.get("seconds") is not None else default
    except (TypeError, ValueError):
        raise SimError(f"{name}: seconds must be a number, not {kw.get('seconds')!r}") from None
    if not 0 < value <= 3600:
        raise SimError(f"{name}: seconds must be within (0, 3600], not {value:g}")
    return value


def _fault_host_down(config: dict[str, Any], kw: dict[str, Any]) -> list[str]:
    config["down"] = {"kind": "host-down", "until": None}
    return ["host-down"]


def _fault_partition(config: dict[str, Any], kw: dict[str, Any]) -> list[str]:
    """Connections drop now; new ones are refused for ``seconds`` (default 20) after ``now`` (default: the clock)."""
    seconds = _seconds(kw, 20.0, "partition")
    now = float(kw["now"]) if kw.get("now") is not None else time.time()
    config["down"] = {"kind": "partition", "until": round(now + seconds, 3)}
    return ["partition"]


def _fault_slow_host(config: dict[str, Any], kw: dict[str, Any]) -> list[str]:
    what = kw.get("what") or [*SLOW_TARGETS]
    if isinstance(what, str):
        what = [w.strip() for w in what.split(",") if w.strip()]
    unknown = sorted(set(what) - set(SLOW_TARGETS))
    if unknown or not what:
        raise SimError(f"slow-host: what must be a comma list of {', '.join(SLOW_TARGETS)}, not {unknown or what}")
    config["slow"] = {"seconds": _seconds(kw, 2.0, "slow-host"), "what": [w for w in SLOW_TARGETS if w in what]}
    return []


def _fault_disk_full(config: dict[str, Any], kw: dict[str, Any]) -> list[str]:
    target = kw.get("target") or "state"
    if target not in DISK_TARGETS:
        raise SimError(f"disk-full: target must be one of {', '.join(DISK_TARGETS)}, not {target!r}")
    free_kb = kw.get("free_kb")
    free_kb = 16 if free_kb is None else free_kb
    if not isinstance(free_kb, int) or isinstance(free_kb, bool) or free_kb < 0:
        raise SimError(f"disk-full: free_kb must be a whole number >= 0, not {free_kb!r}")
    actions = ["disk-clear"] if config.get("disk_full") else []   # another target or size: the old mount goes first
    config["disk_full"] = {"target": target, "free_kb": free_kb}
    return [*actions, "disk-full"]


def _fault_clear(config: dict[str, Any], kw: dict[str, Any]) -> list[str]:
    actions = ["disk-clear"] if config.get("disk_full") else []
    config.update(health={}, hbm_used_mb={}, faults=[], down=None, slow=None, disk_full=None, network="online",
                  proxy_url=None, ops_sudo_password=None)
    return [*actions, "undo-served-by"]


# Build-host network (host.json network / proxy_url, read by the simulated upstream build.sh): ops-transformer's
# build.sh downloads its third-party sources unless --cann_3rd_lib_path is given (ascend-facts 9.4), so a build host
# without internet fails, and one behind a proxy succeeds only when the proxy variables reach the download.
def _fault_build_offline(config: dict[str, Any], kw: dict[str, Any]) -> list[str]:
    config.update(network="offline", proxy_url=None)
    return []


def _fault_build_proxy_only(config: dict[str, Any], kw: dict[str, Any]) -> list[str]:
    proxy = str(kw.get("proxy") or "http://127.0.0.1:3128")
    config.update(network="proxy", proxy_url=proxy)
    try:
        normalize(config)
    except ValueError as exc:
        raise SimError(f"build-proxy-only: {exc}") from None
    return []


def _fault_sudo_password(config: dict[str, Any], kw: dict[str, Any]) -> list[str]:
    """The non-root SSH user ``ops`` must give its password to sudo (sim-apply ensure_ops): Ansible needs -K."""
    password = kw.get("password")
    if not isinstance(password, str) or not password:
        raise SimError("sudo-password: give the password (password=..., or --password-file on the command line)")
    config["ops_sudo_password"] = password
    return []


def _action(name: str) -> Callable[[dict[str, Any], dict[str, Any]], list[str]]:
    return lambda config, kw: [name]


FAULTS: dict[str, Callable[[dict[str, Any], dict[str, Any]], list[str]]] = {
    "card-health": _fault_card_health,
    "hbm-used": _fault_hbm_used,
    "remove-npu-smi": _flag("remove-npu-smi"),
    "no-cann": _flag("no-cann"),
    "cann-upgrade": _fault_cann_upgrade,
    "torch-npu-mismatch": _fault_torch_npu_mismatch,
    "wrong-results": _fault_wrong_results,
    "corrupt-lib": _action("corrupt-lib"),
    "vendor-not-first": _action("vendor-not-first"),
    "env-not-sourced": _action("env-not-sourced"),
    # served-by faults (issue 21): op-plugin's lookup passes over our vendor; see sim_apply.py and docs/faults.md
    "vendor-not-loaded": _action("vendor-not-loaded"),
    "vendor-foreign-owner": _action("vendor-foreign-owner"),
    "custom-path-other-vendor": _action("custom-path-other-vendor"),
    "kernel-bin-missing": _action("kernel-bin-missing"),
    "build-offline": _fault_build_offline,
    "build-proxy-only": _fault_build_proxy_only,
    "sudo-password": _fault_sudo_password,
    "host-down": _fault_host_down,
    "partition": _fault_partition,
    "slow-host": _fault_slow_host,
    "disk-full": _fault_disk_full,
    "clear": _fault_clear,
}
# sim-apply actions that mount or unmount: run with `podman exec --privileged` (the node has no CAP_SYS_ADMIN)
PRIVILEGED_ACTIONS = frozenset({"disk-full", "disk-clear"})


def apply_fault(config: dict[str, Any], fault: str, **kw: Any) -> tuple[dict[str, Any], list[str]]:
    """Pure part of :func:`inject_fault`: the new host.json and the one-shot sim-apply actions to run."""
    if fault not in FAULTS:
        raise SimError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
    new = json.loads(json.dumps(config))
    actions = FAULTS[fault](new, kw)
    entry = {"fault": fault, **{k: "***" if k == "password" else v for k, v in kw.items()
                                if v is not None and k != "now"}}
    new["fault_log"] = [*new.get("fault_log", []), entry]
    normalize(new)
    return new, actions


def _find_host(fleet: Mapping[str, Any], host: str | int) -> Mapping[str, Any]:
    for h in fleet["hosts"]:
        if host in (h["name"], h["index"], str(h["index"]), h["address"]) or h["name"].endswith(f"-{host}"):
            return h
    raise SimError(f"no host {host!r} in fleet {fleet['fleet_id']} ({', '.join(h['name'] for h in fleet['hosts'])})")


def host_exec(dir: str | Path, host: str | int, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:  # noqa: A002
    """``podman exec`` ARGV on a fleet host (test helper; the product goes through SSH)."""
    name = _find_host(load_fleet(dir), host)["name"]
    return podman("exec", name, *argv, check=check)


def inject_fault(dir: str | Path, host: str | int, fault: str, **kw: Any) -> dict[str, Any]:  # noqa: A002
    """Edit a host's host.json for ``fault`` and re-run sim-apply in it; return the new host.json.

    Faults: ``card-health`` (npu=0, chip=None, level=Warning|Alarm|Critical|OK), ``hbm-used`` (npu=0|"all",
    mb=60000), ``remove-npu-smi``, ``no-cann``, ``cann-upgrade`` (version=next, layout=None),
    ``torch-npu-mismatch`` (version=one that does not match CANN), ``wrong-results`` (version=None: the
    FlashAttention results of the package with that version, e.g. ``9.0.1``, or of every package, come out
    wrong), ``corrupt-lib``, ``vendor-not-first``, ``env-not-sourced`` (the vendor library registration in
    /etc/ld.so.conf.d and the package's set_env.bash removed: a fresh process finds no vendor library),
    ``host-down`` (every process killed, port 22 refuses connections until clear), ``partition`` (seconds=20:
    every SSH connection dropped, new ones refused for that long), ``slow-host`` (seconds=2, what="ssh,npu-smi,check"
    or a part of it), ``disk-full`` (target="state"|"opp", free_kb=16), ``vendor-not-loaded`` (our vendor out of
    config.ini load_priority), ``vendor-foreign-owner`` (our libcust_opapi.so owned by uid 1000),
    ``custom-path-other-vendor`` (a working vendor other_transformer first in ASCEND_CUSTOM_OPP_PATH through
    /etc/profile.d), ``kernel-bin-missing`` (our kernel binaries/configs for the host's SoC removed),
    ``build-offline`` / ``build-proxy-only`` (proxy=URL: host.json network for the simulated build),
    ``sudo-password`` (password=...: the non-root SSH user ``ops`` must give it to sudo; logged as ``***``),
    ``clear`` (every fault above undone; a host that was down answers again before this returns). See the comment
    above ``_fault_host_down`` and docs/faults.md.
    """
    fleet = load_fleet(dir)
    entry = _find_host(fleet, host)
    path = Path(fleet["dir"]) / "hosts" / entry["name"] / "host.json"
    before = json.loads(path.read_text())
    config, actions = apply_fault(before, fault, **kw)
    _write_json(path, config)
    argv = [*SIM_APPLY, *(f"--action={a}" for a in actions)]
    privileged = ["--privileged"] if PRIVILEGED_ACTIONS.intersection(actions) else []
    proc = podman("exec", *privileged, entry["name"], *argv, check=False)
    if proc.returncode != 0:
        _write_json(path, before)
        raise SimError(f"{entry['name']}: {fault}: sim-apply failed ({proc.returncode}): {proc.stderr.strip()}")
    if fault in ("host-down", "partition"):
        _wait_port_closed(entry["address"], config["down"]["until"])
    elif before.get("down") and not config.get("down"):
        _wait_sshd(entry["name"], entry["address"], time.monotonic() + 30)
    return config


def _wait_port_closed(address: str, until: float | None) -> None:
    """Wait until the host's port 22 refuses connections (sim-init reaps the killed sshd); a partition that ends
    within the wait may have opened it again."""
    deadline = time.monotonic() + 10
    while _listening(address):
        if until is not None and time.time() >= until:
            return
        if time.monotonic() > deadline:
            raise SimError(f"{address}:22 still answers after the fault")
        time.sleep(0.05)


def ssh_argv(dir: str | Path, host: str | int) -> list[str]:  # noqa: A002
    """``ssh`` command line (key, known_hosts, strict checking) to reach a fleet host; append a command."""
    fleet = load_fleet(dir)
    entry = _find_host(fleet, host)
    return ["ssh", "-i", fleet["key"], "-o", f"UserKnownHostsFile={fleet['known_hosts']}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            f"root@{entry['address']}"]


# --------------------------------------------------------------------------------------------------- CLI


def _parse_set(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``HOST.KEY=VALUE`` (VALUE as JSON when it parses) -> overrides."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, _, value = item.partition("=")
        host, _, key = target.partition(".")
        if not key or not _:
            raise SimError(f"--set wants HOST.KEY=VALUE, got {item!r}")
        try:
            parsed: Any = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(host, {})[key] = parsed
    return out


def _csv(text: str | None) -> list[str] | None:
    return [p.strip() for p in text.split(",") if p.strip()] if text else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ascend_sim.fleet", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create", help="start a fleet (removes stale containers with the same fleet id)")
    c.add_argument("dir")
    c.add_argument("--hosts", type=int, default=2)
    c.add_argument("--models", help=f"comma list, cycled over hosts; known: {','.join(MODELS)}")
    c.add_argument("--octet", type=int, default=2, help="addresses 127.0.OCTET.1..N (default 2)")
    c.add_argument("--npus", type=int, default=8)
    c.add_argument("--layouts", help="comma list of toolkit|cann, cycled")
    c.add_argument("--cann-versions", help="comma list, cycled")
    c.add_argument("--set", action="append", default=[], metavar="HOST.KEY=VALUE",
                   help="host.json override; HOST is an index (1..N) or a name; VALUE is JSON or a string")
    c.add_argument("--fleet-id")
    c.add_argument("--no-torch", action="store_true", help="do not install/mount CPU torch")
    c.add_argument("--package-pad-mib", type=int, default=0, metavar="N",
                   help="builds on these hosts add N MiB of incompressible kernel-binary stand-in to the package")
    d = sub.add_parser("destroy", help="remove a fleet's containers")
    d.add_argument("dir")
    f = sub.add_parser("inject-fault", help="inject a fault into one host")
    f.add_argument("dir")
    f.add_argument("host", help="name, index (1..N) or address")
    f.add_argument("fault", choices=sorted(FAULTS))
    f.add_argument("--npu")
    f.add_argument("--chip", type=int)
    f.add_argument("--level")
    f.add_argument("--mb", type=int)
    f.add_argument("--version")
    f.add_argument("--layout", choices=["toolkit", "cann"])
    f.add_argument("--seconds", type=float, help="partition: how long (20); slow-host: the delay (2)")
    f.add_argument("--what", help=f"slow-host: comma list of {','.join(SLOW_TARGETS)} (all)")
    f.add_argument("--target", choices=DISK_TARGETS, help="disk-full: state (/var/lib/ascend-fa) or opp "
                   "(CANN opp/vendors); default state")
    f.add_argument("--free-kb", type=int, help="disk-full: KiB left free (16)")
    f.add_argument("--proxy", help="build-proxy-only: the proxy URL (http://127.0.0.1:3128)")
    f.add_argument("--password-file", help="sudo-password: a file whose first line is ops's sudo password")
    lst = sub.add_parser("list", help="list fleets known to podman")
    lst.add_argument("--json", action="store_true")
    return parser


def _cli_fault_kw(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {k: getattr(args, k) for k in ("chip", "level", "mb", "version", "layout", "seconds", "what",
                                                        "target", "free_kb", "proxy")}
    if args.npu is not None:
        kw["npu"] = args.npu if args.npu == "all" else int(args.npu)
    if args.password_file:
        lines = Path(args.password_file).read_text().splitlines()
        kw["password"] = lines[0] if lines else ""
    return {k: v for k, v in kw.items() if v is not None}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "create":
            fleet = create(args.dir, hosts=args.hosts, models=_csv(args.models), fleet_octet=args.octet,
                           cann_layouts=_csv(args.layouts), cann_versions=_csv(args.cann_versions), npus=args.npus,
                           overrides=_parse_set(args.set), fleet_id=args.fleet_id, with_torch=not args.no_torch,
                           package_pad_mib=args.package_pad_mib)
            for h in fleet["hosts"]:
                print(f"{h['name']:<16} {h['address']:<13} {h['model']}")
            print(f"fleet {fleet['fleet_id']}: {len(fleet['hosts'])} hosts in {fleet['create_seconds']} s; "
                  f"inventory {fleet['inventory']}")
        elif args.cmd == "destroy":
            print(f"removed {destroy(args.dir)} containers")
        elif args.cmd == "inject-fault":
            config = inject_fault(args.dir, args.host, args.fault, **_cli_fault_kw(args))
            print(json.dumps({k: config[k] for k in ("cann_version", "torch_npu_version", "health", "hbm_used_mb",
                                                     "faults", "down", "slow", "disk_full", "network",
                                                     "proxy_url")}))
        else:
            fleets = list_fleets()
            if args.json:
                print(json.dumps(fleets, indent=2))
            for fl in [] if args.json else fleets:
                states = ", ".join(f"{h['name']}@{h['address']}:{h['state']}" for h in fl["hosts"])
                print(f"{fl['fleet_id']}  {fl['dir']}  {states}")
    except SimError as exc:
        print(f"ascend-sim: {exc}", file=sys.stderr)
        return 1
    return 0


list = list_fleets  # noqa: A001 - public name asked for by the CLI contract (`ascend_sim.fleet.list()`)

if __name__ == "__main__":
    raise SystemExit(main())
