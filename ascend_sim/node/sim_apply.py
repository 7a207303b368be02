"""SIMULATOR: ``sim-apply`` lays out a simulated Ascend node's files from /etc/ascend-sim/host.json.

It writes, at the real default paths (ascend-facts.md §2 and §5):
- driver and firmware ``version.info`` and ``/etc/ascend_install.info``;
- CANN in the ``toolkit`` layout (before 8.5: ``ascend-toolkit/<ver>`` + ``latest`` + ``ascend-toolkit/set_env.sh``)
  or the ``cann`` layout (8.5+: ``cann-<ver>`` + ``cann`` + ``cann/set_env.sh``), with ``<arch>-linux/*install.info``,
  ``version.cfg``, ``opp|compiler|runtime/version.info``, ``opp/vendors/`` and ``lib64/``;
- ``/usr/local/bin/npu-smi`` (the fake one), the torch ``.pth`` and, when present in the node folder, the
  compiled ``libascendcl.so``, ``bisheng`` and the ``torch_npu`` stand-in.

Re-running is idempotent: files are rewritten only when their content changes (so install-time mtimes stay put),
and ``opp/vendors`` is kept. A changed ``cann_version`` is applied like a real toolkit upgrade: the old tree is
moved to the new version's path and ``opp/vendors/*`` is removed except ``config.ini``. One-shot faults run with
``--action NAME``. ``root`` lets unit tests lay everything out under a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__:
    from .simnode import MODELS, SSHD_DOWN_FILE, STATE_DIR, HostConfigError, load_host, slow_seconds, soc_dir, version_tuple
else:  # run as /opt/ascend-sim/node/sim-apply inside a node
    from simnode import MODELS, SSHD_DOWN_FILE, STATE_DIR, HostConfigError, load_host, slow_seconds, soc_dir, version_tuple

NODE_DIR = "/opt/ascend-sim/node"
TORCH_DIR = "/opt/ascend-sim/torch"
STATE = "var/lib/ascend-sim/state.json"
DIST_PACKAGES = "usr/local/lib/python3.11/dist-packages"
HEADER = "SIMULATOR (ascend-sim)"
SLOW_SSH = "/var/lib/ascend-sim/slow-ssh"   # seconds read by sim-slow-shell
SLOW_SHELL = f"{NODE_DIR}/sim-slow-shell"
DEFAULT_ROOT_SHELL = "/bin/bash"
UNDER_DIR = "/run/ascend-sim/under"   # the folders a disk-full tmpfs hides, bind-mounted here
DISK_FULL_FS = "ascend-sim-disk-full"


# ------------------------------------------------------------------------------------------- pure renderers


def inner_version(version: str) -> str:
    """Inner build number in the ``Version=`` style of opp/version.info, e.g. ``8.5.0`` -> ``8.5.0.2.220``."""
    nums = [*version_tuple(version), 0, 0, 0][:3]
    rc = re.search(r"RC(\d+)", version, re.IGNORECASE)
    return f"{nums[0]}.{nums[1]}.{nums[2]}.{int(rc.group(1)) if rc else 2}.220"


def _c_code(version: str) -> int:
    major, minor = [*version_tuple(version), 0, 0][:2]
    return (major - 8) * 10 + minor + 19


def innerversion_code(version: str) -> str:
    """``Innerversion=`` style code, e.g. 8.0.RC3 -> ``V100R001C19SPC001B220``."""
    return f"V100R001C{_c_code(version)}SPC001B220"


def cann_rel(host: dict[str, Any]) -> str:
    """The CANN install folder relative to the Ascend home."""
    ver = host["cann_version"]
    return f"ascend-toolkit/{ver}" if host["cann_layout"] == "toolkit" else f"cann-{ver}"


def cann_public(host: dict[str, Any]) -> str:
    """The stable path users source and link against (``.../ascend-toolkit/latest`` or ``.../cann``)."""
    base = host["ascend_home"]
    return f"{base}/ascend-toolkit/latest" if host["cann_layout"] == "toolkit" else f"{base}/cann"


def render_set_env(host: dict[str, Any]) -> str:
    """set_env.sh with the exports of CANN's script (ascend-facts §5.1) plus the driver library folders."""
    home = cann_public(host)
    return f"""#!/bin/sh
# {HEADER}: stand-in for CANN's set_env.sh; same variables as the real script.
export ASCEND_TOOLKIT_HOME={home}
_ascend_drv=$(sed -n 's/^Driver_Install_Path_Param=//p' /etc/ascend_install.info 2>/dev/null)
_ascend_drv=${{_ascend_drv:-{host["ascend_home"]}}}
export LD_LIBRARY_PATH=${{_ascend_drv}}/driver/lib64:${{_ascend_drv}}/driver/lib64/common:\
${{_ascend_drv}}/driver/lib64/driver${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}
unset _ascend_drv
export LD_LIBRARY_PATH=${{ASCEND_TOOLKIT_HOME}}/lib64:${{ASCEND_TOOLKIT_HOME}}/lib64/plugin/opskernel:\
${{ASCEND_TOOLKIT_HOME}}/lib64/plugin/nnengine:\
${{ASCEND_TOOLKIT_HOME}}/opp/built-in/op_impl/ai_core/tbe/op_tiling/lib/linux/$(arch):$LD_LIBRARY_PATH
export LD_LIBRARY_PATH=${{ASCEND_TOOLKIT_HOME}}/tools/aml/lib64:${{ASCEND_TOOLKIT_HOME}}/tools/aml/lib64/plugin:\
$LD_LIBRARY_PATH
export PYTHONPATH=${{ASCEND_TOOLKIT_HOME}}/python/site-packages:\
${{ASCEND_TOOLKIT_HOME}}/opp/built-in/op_impl/ai_core/tbe${{PYTHONPATH:+:$PYTHONPATH}}
export PATH=${{ASCEND_TOOLKIT_HOME}}/bin:${{ASCEND_TOOLKIT_HOME}}/compiler/ccec_compiler/bin:\
${{ASCEND_TOOLKIT_HOME}}/tools/ccec_compiler/bin:$PATH
export ASCEND_AICPU_PATH=${{ASCEND_TOOLKIT_HOME}}
export ASCEND_OPP_PATH=${{ASCEND_TOOLKIT_HOME}}/opp
export TOOLCHAIN_HOME=${{ASCEND_TOOLKIT_HOME}}/toolkit
export ASCEND_HOME_PATH=${{ASCEND_TOOLKIT_HOME}}
"""


def _info(pairs: Sequence[tuple[str, str]]) -> str:
    return "".join(f"{key}={value}\n" for key, value in pairs)


def render_toolkit_install_info(host: dict[str, Any]) -> str:
    ver = host["cann_version"]
    return _info([
        ("package_name", "Ascend-cann-toolkit"), ("version", ver), ("innerversion", innerversion_code(ver)),
        ("compatible_version", f"[V100R001C13,V100R001C{_c_code(ver)}],[V100R001C30]"),
        ("arch", host["arch"]), ("os", "linux"),
        ("path", f"{host['ascend_home']}/{cann_rel(host)}/{host['arch']}-linux"),
    ])


def render_ops_install_info(host: dict[str, Any]) -> str:
    ver = host["cann_version"]
    return _info([
        ("package_name", MODELS[host["model"]].ops_package), ("version", ver),
        ("innerversion", innerversion_code(ver)), ("arch", host["arch"]), ("os", "linux"),
        ("path", f"{host['ascend_home']}/{cann_rel(host)}/{host['arch']}-linux"),
    ])


def render_version_cfg(host: dict[str, Any], installed: Sequence[str]) -> str:
    """version.cfg: ``*_running_version`` for the active version, every installed one in order."""
    def entry(ver: str) -> str:
        return f"[{inner_version(ver)}:{ver}]"

    running = entry(host["cann_version"])
    lines = ["# version: 1.0"]
    lines += [f"{part}_running_version={running}" for part in ("runtime", "compiler", "opp", "toolkit")]
    lines.append(f"opp_kernel_running_version={running}")
    lines.append(f"toolkit_upgrade_version={running}")
    lines.append("toolkit_installed_version=" + "".join(entry(v) for v in installed))
    return "\n".join(lines) + "\n"


def render_component_version_info(host: dict[str, Any]) -> str:
    """opp/, compiler/ and runtime/ version.info."""
    ver = host["cann_version"]
    short = ".".join(str(n) for n in version_tuple(ver)[:2])
    return _info([
        ("Version", inner_version(ver)), ("version_dir", ver), ("timestamp", "20251117_000024591"),
        ("required_package_amct_acl_version", f'"{short}"'),
    ])


def _drv_major_minor(host: dict[str, Any]) -> str:
    return ".".join(host["driver_version"].split(".")[:2])


def render_driver_version_info(host: dict[str, Any]) -> str:
    ver = host["driver_version"]
    return _info([
        ("Version", ver), ("ascendhal_version", "7.35.23"), ("aicpu_version", "1.0"), ("tdt_version", "1.0"),
        ("log_version", "1.0"), ("prof_version", "2.0"), ("dvppkernels_version", "1.1"), ("tsfw_version", "1.0"),
        # a driver installed as the pair of this CANN: its inner version is one the toolkit lists as compatible
        ("Innerversion", f"V100R001C{_c_code(host['cann_version'])}SPC001B224"),
        ("compatible_version", "[V100R001C13],[V100R001C15],[V100R001C17],[V100R001C18],[V100R001C19]"),
        ("compatible_version_fw", host["driver_compatible_fw"] or "[7.0.0,7.9.99]"),
        ("package_version", ver),
    ])


def render_firmware_version_info(host: dict[str, Any]) -> str:
    mm = _drv_major_minor(host)
    return _info([
        ("Version", host["firmware_version"]), ("firmware_version", "1.0"),
        ("package_version", host["driver_version"]),
        ("compatible_version_drv", host["firmware_compatible_drv"] or f"[{mm},{mm}.]"),
    ])


def render_ascend_install_info(host: dict[str, Any]) -> str:
    base = host["ascend_home"]
    return _info([
        ("UserName", "HwHiAiUser"), ("UserGroup", "HwHiAiUser"), ("Driver_Install_Type", "full"),
        ("Driver_Install_Path_Param", base), ("Driver_Install_For_All", "yes"), ("Driver_Install_Mode", "normal"),
        ("Firmware_Install_Type", "full"), ("Firmware_Install_Path_Param", base),
    ])


def render_torch_npu_metadata(version: str) -> str:
    return f"Metadata-Version: 2.1\nName: torch_npu\nVersion: {version}\nSummary: {HEADER} torch_npu stand-in\n"


# --------------------------------------------------------------------------------------------- file helpers


def write_if_changed(path: Path, text: str | bytes, mode: int = 0o644) -> bool:
    """Write atomically when the content differs; return whether it changed."""
    data = text.encode() if isinstance(text, str) else text
    if path.is_file() and not path.is_symlink() and path.read_bytes() == data:
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.sim-tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)
    return True


def symlink(path: Path, target: str) -> bool:
    """Point ``path`` at ``target`` (replacing what is there); return whether it changed."""
    if path.is_symlink() and os.readlink(path) == target:
        return False
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    return True


def remove(path: Path) -> bool:
    if path.is_symlink() or path.is_file():
        path.unlink()
        return True
    if path.is_dir():
        shutil.rmtree(path)
        return True
    return False


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------ the node


class Node:
    """One layout run: host config, target root, node folder, persisted state and a change log."""

    def __init__(self, host: dict[str, Any], root: Path, node_dir: Path) -> None:
        self.host = host
        self.root = root
        self.node_dir = node_dir
        self.changes: list[str] = []
        state_path = root / STATE
        self.state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.is_file() else {}

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    @property
    def ascend(self) -> Path:
        return self.path(self.host["ascend_home"])

    @property
    def cann_home(self) -> Path:
        return self.ascend / cann_rel(self.host)

    def note(self, changed: bool, what: str) -> None:
        if changed:
            self.changes.append(what)

    def write(self, path: Path, text: str | bytes, mode: int = 0o644) -> None:
        self.note(write_if_changed(path, text, mode), f"wrote {path}")

    def save_state(self) -> None:
        write_if_changed(self.root / STATE, json.dumps(self.state, indent=1, sort_keys=True) + "\n")


def ensure_driver(node: Node) -> None:
    host = node.host
    node.write(node.ascend / "driver/version.info", render_driver_version_info(host))
    node.write(node.ascend / "firmware/version.info", render_firmware_version_info(host))
    node.write(node.path("/etc/ascend_install.info"), render_ascend_install_info(host))
    for sub in ("driver/lib64/common", "driver/lib64/driver", "driver/tools", "add-ons"):
        (node.ascend / sub).mkdir(parents=True, exist_ok=True)
    if node.root == Path("/"):
        ensure_user()
        ensure_trainer()
        ensure_ops(node)


# A non-root user who trains on the node (issue 21 item 8): the installed package must be usable by such a process.
# op-plugin's checkOwner lets a non-root process use root-owned libraries (with a warning) and skips another
# non-root user's library (Ascend/op-plugin op_plugin/utils/op_api_common.cpp).
TRAINER = "trainer"
TRAINER_UID = 1000


def ensure_trainer() -> None:
    """User ``trainer`` (uid 1000, home /home/trainer, login shell /bin/bash) for non-root checks."""
    if subprocess.run(["id", TRAINER], capture_output=True, check=False).returncode != 0:
        subprocess.run(["useradd", "-m", "-u", str(TRAINER_UID), "-U", "-s", "/bin/bash", TRAINER],
                       capture_output=True, check=False)


# The non-root SSH user of a site that forbids root logins (issue 22 item 5): ``ops`` logs in with the fleet's key and
# becomes root through sudo (Ansible's become). host.json ``ops_sudo_password``: null = NOPASSWD; a string = sudo asks
# for ops's own password (sudoers(5): without NOPASSWD "the user must authenticate themselves", with their password).
OPS = "ops"
OPS_UID = 1001
OPS_HOME = "/home/ops"
OPS_SUDOERS = "/etc/sudoers.d/ascend-sim-ops"
ROOT_KEYS = "/root/.ssh/authorized_keys"   # the fleet's public key, bind-mounted by ascend_sim.fleet


def render_ops_sudoers(password_required: bool) -> str:
    """The sudoers.d drop-in for ops (sudo reads /etc/sudoers.d through Debian's ``@includedir``)."""
    tag = "" if password_required else "NOPASSWD: "
    return (f"# {HEADER}: the non-root SSH user; host.json ops_sudo_password null: NOPASSWD\n"
            f"{OPS} ALL=(ALL:ALL) {tag}ALL\n")


def _run_checked(argv: Sequence[str], stdin: str | None = None) -> None:
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip()}")


def shadow_field(shadow: str, user: str) -> str:
    """The password field of ``user`` in /etc/shadow text ("" when the user has no line)."""
    for line in shadow.splitlines():
        fields = line.split(":")
        if len(fields) > 1 and fields[0] == user:
            return fields[1]
    return ""


def _ops_password(node: Node) -> None:
    """ops's /etc/shadow entry: ``*`` (no password login, not locked) or the hash of host.json's password.

    Not ``!`` (what useradd leaves): with ``UsePAM no`` (image.py SSHD_CONF) sshd refuses every login, keys included,
    to an account whose password field starts with ``!`` ("User ops not allowed because account is locked":
    openssh-portable auth.c allowed_user(), LOCKED_PASSWD_PREFIX on Linux)."""
    password = node.host.get("ops_sudo_password")
    want = hashlib.sha256(password.encode()).hexdigest() if password else "*"
    field = shadow_field(node.path("/etc/shadow").read_text(), OPS)
    # a hash (not "*", not locked "!...") is ours when state says so: chpasswd salts, so the hash cannot be compared
    if node.state.get("ops_password") == want and (field == "*" if not password else field[:1] not in ("", "*", "!")):
        return
    if password:
        _run_checked(["chpasswd"], stdin=f"{OPS}:{password}\n")   # on stdin, never on a command line
    else:
        _run_checked(["usermod", "-p", "*", OPS])
    node.state["ops_password"] = want
    node.changes.append(f"{OPS}: sudo {'asks for a password' if password else 'NOPASSWD'}")


def _ops_authorized_keys(node: Node) -> None:
    """The fleet's key in ~ops/.ssh/authorized_keys, owned by ops, 0600; ~ops and ~ops/.ssh not writable by others.

    sshd's StrictModes (default yes) refuses an authorized_keys that it, ~/.ssh or the home folder can be written by
    others or is owned by someone other than the user or root (sshd_config(5) StrictModes, sshd(8) FILES)."""
    keys = node.path(ROOT_KEYS)
    if not keys.is_file():
        return
    ssh_dir = node.path(OPS_HOME) / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = ssh_dir / "authorized_keys"
    node.write(target, keys.read_bytes(), 0o600)
    gid = pwd.getpwnam(OPS).pw_gid
    for path, mode in ((node.path(OPS_HOME), 0o750), (ssh_dir, 0o700), (target, 0o600)):
        st = path.stat()
        if (st.st_uid, st.st_gid) != (OPS_UID, gid):
            os.chown(path, OPS_UID, gid)
            node.changes.append(f"chowned {path} to {OPS}")
        if st.st_mode & 0o777 != mode:
            path.chmod(mode)
            node.changes.append(f"chmod {mode:o} {path}")


def ensure_ops(node: Node) -> None:
    """User ``ops`` (uid 1001, /bin/bash) who logs in with the fleet's key and sudoes to root."""
    if subprocess.run(["id", OPS], capture_output=True, check=False).returncode != 0:
        _run_checked(["useradd", "-m", "-d", OPS_HOME, "-u", str(OPS_UID), "-U", "-s", "/bin/bash", OPS])
        node.changes.append(f"added user {OPS}")
    _ops_password(node)
    node.write(node.path(OPS_SUDOERS), render_ops_sudoers(bool(node.host.get("ops_sudo_password"))), 0o440)
    _ops_authorized_keys(node)


def ensure_user() -> None:
    """The driver installer's HwHiAiUser user and group."""
    probe = subprocess.run(["id", "HwHiAiUser"], capture_output=True, check=False)
    if probe.returncode != 0:
        subprocess.run(["groupadd", "-f", "HwHiAiUser"], capture_output=True, check=False)
        subprocess.run(["useradd", "-r", "-g", "HwHiAiUser", "-d", "/home/HwHiAiUser", "-s", "/bin/bash",
                        "HwHiAiUser"], capture_output=True, check=False)


def wipe_vendors(vendors: Path) -> None:
    """What a toolkit upgrade does to custom operator packages: everything but config.ini goes."""
    if not vendors.is_dir():
        return
    for entry in vendors.iterdir():
        if entry.name != "config.ini":
            remove(entry)


def _migrate(node: Node) -> None:
    """Apply a changed CANN version/layout as an in-place upgrade of the previous tree."""
    prev = node.state.get("cann_rel")
    if not prev or prev == cann_rel(node.host):
        return
    old = node.ascend / prev
    if old.is_dir() and not node.cann_home.exists():
        node.cann_home.parent.mkdir(parents=True, exist_ok=True)
        old.rename(node.cann_home)
        wipe_vendors(node.cann_home / "opp/vendors")
        node.changes.append(f"upgraded CANN {prev} -> {cann_rel(node.host)}")
    if prev.startswith("ascend-toolkit/") and old.parent.is_dir() and not old.is_dir():
        _drop_empty_toolkit(node)


def _drop_empty_toolkit(node: Node) -> None:
    toolkit = node.ascend / "ascend-toolkit"
    if not any(p.is_dir() and not p.is_symlink() for p in toolkit.iterdir()):
        remove(toolkit)


def _entry_points(node: Node) -> None:
    """latest/cann symlink and set_env.sh for the active layout; drop the other layout's entry points."""
    host = node.host
    set_env = render_set_env(host)
    if host["cann_layout"] == "toolkit":
        node.note(symlink(node.ascend / "ascend-toolkit/latest", host["cann_version"]), "linked latest")
        node.write(node.ascend / "ascend-toolkit/set_env.sh", set_env, 0o755)
        node.note(remove(node.ascend / "cann"), "removed cann link")
    else:
        node.note(symlink(node.ascend / "cann", f"cann-{host['cann_version']}"), "linked cann")
        node.write(node.cann_home / "set_env.sh", set_env, 0o755)
        toolkit = node.ascend / "ascend-toolkit"
        if toolkit.is_dir():
            node.note(remove(toolkit / "latest"), "removed latest link")
            remove(toolkit / "set_env.sh")
            _drop_empty_toolkit(node)


def _skeleton(node: Node) -> None:
    host, home = node.host, node.cann_home
    arch = host["arch"]
    for sub in (
        "bin", "lib64/plugin/opskernel", "lib64/plugin/nnengine", "python/site-packages", "toolkit",
        "compiler/ccec_compiler/bin", "opp/vendors", f"opp/built-in/op_impl/ai_core/tbe/op_tiling/lib/linux/{arch}",
        f"opp/built-in/op_impl/ai_core/tbe/kernel/{soc_dir(host['model'])}", f"{arch}-linux/lib64",
    ):
        (home / sub).mkdir(parents=True, exist_ok=True)
    node.write(home / f"{arch}-linux/ascend_toolkit_install.info", render_toolkit_install_info(host))
    ops_info = home / f"{arch}-linux/ascend_ops_install.info"
    if host["cann_layout"] == "cann":
        node.write(ops_info, render_ops_install_info(host))
    else:
        remove(ops_info)
    history = [v for v in node.state.get("history", []) if v != host["cann_version"]] + [host["cann_version"]]
    node.state["history"] = history
    node.write(home / "version.cfg", render_version_cfg(host, history))
    for part in ("opp", "compiler", "runtime"):
        node.write(home / part / "version.info", render_component_version_info(host))


def compile_c(node: Node, src: Path, out: Path, flags: Sequence[str] = ()) -> None:
    """gcc ``src`` into the shared library ``out`` when the source or flags changed since the last build."""
    if not src.is_file():
        return
    built = node.state.setdefault("built", {})
    digest = sha256_file(src) + ":" + " ".join(flags)
    if out.is_file() and built.get(str(out)) == digest:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.sim-tmp")
    proc = subprocess.run(["gcc", "-shared", "-fPIC", "-O2", *flags, "-o", str(tmp), str(src), "-lm", "-lpthread"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"gcc {src.name} failed: {proc.stderr.strip()}")
    tmp.replace(out)
    built[str(out)] = digest
    node.changes.append(f"built {out}")


def builtin_fa_flags(cann_version: str) -> list[str]:
    """CANN's built-in op API library has aclnnFlashAttentionScore from 8.5 on (the ops package includes
    ops-transformer from CANN 8.5: ascend-facts 9.1); before, libopapi.so exists without it."""
    return ["-DASCEND_SIM_BUILTIN_FA=1"] if version_tuple(cann_version)[:2] >= (8, 5) else []


def _libascendcl(node: Node) -> None:
    compile_c(node, node.node_dir / "cann/libascendcl.c", node.cann_home / "lib64/libascendcl.so")


def _libopapi(node: Node) -> None:
    """<cann>/lib64/libopapi.so: CANN's built-in op API library (op-plugin's last resort, by bare name)."""
    compile_c(node, node.node_dir / "cann/libopapi.c", node.cann_home / "lib64/libopapi.so",
              builtin_fa_flags(str(node.host["cann_version"])))


def _bisheng(node: Node) -> None:
    src = node.node_dir / "cann/bisheng"
    if src.is_file():
        node.write(node.cann_home / "compiler/ccec_compiler/bin/bisheng", src.read_bytes(), 0o755)


def ensure_cann(node: Node) -> None:
    _migrate(node)
    _skeleton(node)
    _entry_points(node)
    _libascendcl(node)
    _libopapi(node)
    _bisheng(node)
    node.state["cann_rel"] = cann_rel(node.host)


def remove_cann(node: Node) -> None:
    """Fault ``no-cann``: no toolkit at all (driver and firmware stay)."""
    for entry in [node.ascend / "ascend-toolkit", node.ascend / "cann", *node.ascend.glob("cann-*")]:
        node.note(remove(entry), f"removed {entry}")
    node.state.pop("cann_rel", None)


def ensure_npu_smi(node: Node) -> None:
    link = node.path("/usr/local/bin/npu-smi")
    if "remove-npu-smi" in node.host["faults"]:
        node.note(remove(link), "removed npu-smi")
    else:
        node.note(symlink(link, str(Path(NODE_DIR) / "npu-smi")), "linked npu-smi")


def ensure_scontrol(node: Node) -> None:
    """Slurm's scontrol stand-in (``ascend_sim/node/scontrol``: node state in a file, real output and errors)."""
    node.note(symlink(node.path("/usr/local/bin/scontrol"), str(Path(NODE_DIR) / "scontrol")), "linked scontrol")


def ensure_python(node: Node) -> None:
    """torch ``.pth`` and, when the stand-in exists, ``torch_npu`` with its dist-info version."""
    site = node.path(DIST_PACKAGES)
    node.write(site / "ascend-sim-torch.pth", TORCH_DIR + "\n")
    src = node.node_dir / "torch_npu"
    if not src.is_dir():
        return
    dest = site / "torch_npu"
    digest = tree_digest(src)
    if not dest.is_dir() or node.state.get("torch_npu_tree") != digest:
        remove(dest)
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        node.state["torch_npu_tree"] = digest
        node.changes.append(f"installed {dest}")
    version = str(node.host["torch_npu_version"])
    info = site / f"torch_npu-{version}.dist-info"
    for stale in site.glob("torch_npu-*.dist-info"):
        if stale != info:
            remove(stale)
    node.write(info / "METADATA", render_torch_npu_metadata(version))
    node.write(info / "INSTALLER", "ascend-sim\n")
    node.write(info / "top_level.txt", "torch_npu\n")


# ---------------------------------------------------------------------------------------- one-shot actions


class ActionError(RuntimeError):
    """A one-shot fault found nothing to act on."""


def _vendors(node: Node) -> Path:
    vendors = node.cann_home / "opp/vendors"
    if not vendors.is_dir():
        raise ActionError(f"no CANN opp/vendors folder at {vendors}")
    return vendors


def action_corrupt_lib(node: Node) -> None:
    """Overwrite every vendor's op_api/lib/libcust_opapi.so with garbage."""
    libs = sorted(_vendors(node).glob("*/op_api/lib/libcust_opapi.so"))
    if not libs:
        raise ActionError("no vendors/*/op_api/lib/libcust_opapi.so to corrupt (install a package first)")
    for lib in libs:
        lib.write_bytes(b"ascend-sim: corrupted library\n" + hashlib.sha256(str(lib).encode()).digest() * 64)
        node.changes.append(f"corrupted {lib}")


def action_vendor_not_first(node: Node) -> None:
    """Reorder load_priority in vendors/config.ini so the first vendor is no longer first."""
    config = _vendors(node) / "config.ini"
    text = config.read_text() if config.is_file() else ""
    match = re.search(r"^load_priority=(.*)$", text, re.MULTILINE)
    vendors = [v for v in (match.group(1).split(",") if match else []) if v]
    if len(vendors) >= 2:
        vendors = [*vendors[1:], vendors[0]]
    else:
        (config.parent / "customize").mkdir(exist_ok=True)
        vendors = ["customize", *vendors]
    line = "load_priority=" + ",".join(vendors)
    text = re.sub(r"^load_priority=.*$", line, text, flags=re.MULTILINE) if match else text + line + "\n"
    config.write_text(text)   # a rewrite keeps the file's mode (install.sh sets 640 only when it creates it)
    node.changes.append(f"{config}: {line}")


# The deploy tool's environment script for new processes (what users are told to source): written by ascend-fa.
PACKAGE_ENV_SCRIPTS = ("/var/lib/ascend-fa/set_env.bash",)


def action_env_not_sourced(node: Node) -> None:
    """"Users forgot to source it": a fresh process gets no path to the vendor libraries. Removes every
    /etc/ld.so.conf.d entry that registers an opp/vendors library folder (then ldconfig) and the package's
    environment script for new processes, so only CANN's own set_env.sh is left to source."""
    removed = []
    conf_dir = node.path("/etc/ld.so.conf.d")
    for conf in sorted(conf_dir.glob("*.conf")) if conf_dir.is_dir() else []:
        if "/opp/vendors/" in conf.read_text(errors="replace"):
            conf.unlink()
            removed.append(str(conf))
    for script in PACKAGE_ENV_SCRIPTS:
        if remove(node.path(script)):
            removed.append(script)
    if not removed:
        raise ActionError("no vendor library registration or package set_env.bash to remove (install a package first)")
    if node.root == Path("/"):
        subprocess.run(["ldconfig"], capture_output=True, check=False)
    node.changes.extend(f"removed {p}" for p in removed)

# ------------------------------------------------------------------------------ served-by faults (issue 21)
# Each makes op-plugin's lookup (Ascend/op-plugin op_plugin/utils/op_api_common.cpp, ascend-facts 9.1) pass over our
# vendor's library, so on CANN >= 8.5 the call is served by someone else's FlashAttentionScore with right numbers.
# What each changed is recorded in state.json "undo" so that clear (action undo-served-by) puts it back; a deploy
# that repaired the host first leaves nothing to undo.

MANIFEST = f"{STATE_DIR}/manifest.json"
OTHER_VENDOR_ROOT = "/opt/ascend-sim-other-vendor"
OTHER_VENDOR = "other_transformer"
OTHER_VENDOR_PROFILE = "/etc/profile.d/ascend-sim-other-vendor.sh"
FAULT_BACKUP = "/var/lib/ascend-sim/fault-backup"


def _config_priority(config: Path) -> list[str]:
    match = re.search(r"^load_priority=(.*)$", config.read_text() if config.is_file() else "", re.MULTILINE)
    return [v for v in (match.group(1).split(",") if match else []) if v]


def _write_priority(config: Path, vendors: Sequence[str]) -> str:
    existed = config.is_file()
    text = config.read_text() if existed else ""
    line = "load_priority=" + ",".join(vendors)
    if re.search(r"^load_priority=", text, re.MULTILINE):
        text = re.sub(r"^load_priority=.*$", lambda _m: line, text, count=1, flags=re.MULTILINE)
    else:
        text += line + "\n"
    config.write_text(text)
    if not existed:
        # install.sh v9.0.1 (cmake/scripts/custom/install.sh): mode 640 only when it creates config.ini; a tool that
        # rewrites the line keeps the file's mode
        config.chmod(0o640)
    return line


def our_vendor(node: Node) -> Path:
    """The vendor folder ascend-fa installed (its manifest's vendor_dir), else the first load_priority vendor."""
    manifest = node.path(MANIFEST)
    if manifest.is_file():
        with contextlib.suppress(ValueError, OSError):
            vendor_dir = json.loads(manifest.read_text()).get("vendor_dir")
            if vendor_dir and node.path(vendor_dir).is_dir():
                return node.path(vendor_dir)
    vendors = _vendors(node)
    for name in _config_priority(vendors / "config.ini"):
        if (vendors / name).is_dir():
            return vendors / name
    raise ActionError("no installed vendor package found (install a package first)")


def _undo(node: Node) -> dict[str, Any]:
    return node.state.setdefault("undo", {})


def action_vendor_not_loaded(node: Node) -> None:
    """Our vendor taken out of vendors/config.ini load_priority (the tree stays): op-plugin never looks at it."""
    vendor = our_vendor(node)
    config = vendor.parent / "config.ini"
    vendors = _config_priority(config)
    if vendor.name not in vendors:
        raise ActionError(f"{vendor.name} is not in {config} load_priority")
    line = _write_priority(config, [v for v in vendors if v != vendor.name])
    _undo(node)["vendor-not-loaded"] = {"config": str(config), "vendor": vendor.name}
    node.changes.append(f"{config}: {line}")


def action_vendor_foreign_owner(node: Node) -> None:
    """Our libcust_opapi.so chowned to the non-root user trainer: a root process skips it (checkOwner)."""
    lib = our_vendor(node) / "op_api/lib/libcust_opapi.so"
    if not lib.is_file():
        raise ActionError(f"no {lib}")
    st = lib.stat()
    _undo(node)["vendor-foreign-owner"] = {"lib": str(lib), "uid": st.st_uid, "gid": st.st_gid}
    os.chown(lib, TRAINER_UID, TRAINER_UID)
    node.changes.append(f"chowned {lib} to {TRAINER_UID}:{TRAINER_UID}")


def render_other_vendor_profile(vendor_dir: str) -> str:
    return (f"# {HEADER}: fault custom-path-other-vendor. Another team's operator package, put first for every\n"
            "# login shell: op-plugin tries ASCEND_CUSTOM_OPP_PATH entries before config.ini's vendors.\n"
            f"export ASCEND_CUSTOM_OPP_PATH={vendor_dir}${{ASCEND_CUSTOM_OPP_PATH:+:$ASCEND_CUSTOM_OPP_PATH}}\n")


def action_custom_path_other_vendor(node: Node) -> None:
    """A second, working vendor other_transformer (exports FlashAttentionScore, root-owned) outside opp/vendors, and
    ASCEND_CUSTOM_OPP_PATH pointing at it in /etc/profile.d (what a login shell of any user sources)."""
    vendor = node.path(OTHER_VENDOR_ROOT) / "vendors" / OTHER_VENDOR
    src = node.node_dir / "cann/libopapi.c"
    if not src.is_file():
        raise ActionError(f"no {src} to build the other vendor's library from")
    compile_c(node, src, vendor / "op_api/lib/libcust_opapi.so",
              ["-DASCEND_SIM_BUILTIN_FA=1", f'-DASCEND_SIM_OPAPI_NAME="{OTHER_VENDOR} FlashAttentionScore"'])
    for sub in ("op_impl/ai_core/tbe/kernel", "bin"):
        (vendor / sub).mkdir(parents=True, exist_ok=True)
    node.write(node.path(OTHER_VENDOR_PROFILE), render_other_vendor_profile(f"{OTHER_VENDOR_ROOT}/vendors/{OTHER_VENDOR}"))
    _undo(node)["custom-path-other-vendor"] = {"root": str(node.path(OTHER_VENDOR_ROOT)),
                                               "profile": str(node.path(OTHER_VENDOR_PROFILE))}


def kernel_dirs(vendor: Path, family: str) -> list[Path]:
    """Kernel binaries and configs of one SoC family in a vendor tree (ops-transformer cmake/func.cmake layout)."""
    base = vendor / "op_impl/ai_core/tbe/kernel"
    return [base / family, base / "config" / family]


def action_kernel_bin_missing(node: Node) -> None:
    """The kernel binaries and configs for the host's SoC removed from our vendor tree (kept aside for clear)."""
    vendor = our_vendor(node)
    family = soc_dir(node.host["model"])
    backup = node.path(FAULT_BACKUP) / "kernel-bin-missing"
    present = [path for path in kernel_dirs(vendor, family) if path.is_dir()]
    if not present:
        raise ActionError(f"no kernel binaries for {family} in {vendor}")
    moved = []
    remove(backup)
    for path in present:
        if path.is_dir():
            dest = backup / str(path.relative_to(vendor))
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), str(dest))
            moved.append(str(path.relative_to(vendor)))
    _undo(node)["kernel-bin-missing"] = {"vendor": str(vendor), "backup": str(backup), "moved": moved}
    node.changes.extend(f"removed {vendor / m}" for m in moved)


def _undo_vendor_not_loaded(node: Node, rec: dict[str, Any]) -> None:
    config = Path(rec["config"])
    vendors = _config_priority(config)
    if config.is_file() and rec["vendor"] not in vendors and (config.parent / rec["vendor"]).is_dir():
        node.changes.append(f"{config}: {_write_priority(config, [rec['vendor'], *vendors])}")


def _undo_foreign_owner(node: Node, rec: dict[str, Any]) -> None:
    lib = Path(rec["lib"])
    if lib.is_file() and lib.stat().st_uid == TRAINER_UID:
        os.chown(lib, rec["uid"], rec["gid"])
        node.changes.append(f"chowned {lib} back to {rec['uid']}")


def _undo_other_vendor(node: Node, rec: dict[str, Any]) -> None:
    for path in (rec["profile"], rec["root"]):
        node.note(remove(Path(path)), f"removed {path}")
    node.state.get("built", {}).pop(str(Path(rec["root"]) / "vendors" / OTHER_VENDOR / "op_api/lib/libcust_opapi.so"),
                                    None)


def _undo_kernel_bin_missing(node: Node, rec: dict[str, Any]) -> None:
    vendor, backup = Path(rec["vendor"]), Path(rec["backup"])
    for rel in rec["moved"]:
        src, dest = backup / rel, vendor / rel
        if src.is_dir() and vendor.is_dir() and not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), str(dest))
            node.changes.append(f"restored {dest}")
    remove(backup)


_UNDO: dict[str, Callable[[Node, dict[str, Any]], None]] = {
    "vendor-not-loaded": _undo_vendor_not_loaded,
    "vendor-foreign-owner": _undo_foreign_owner,
    "custom-path-other-vendor": _undo_other_vendor,
    "kernel-bin-missing": _undo_kernel_bin_missing,
}


def action_undo_served_by(node: Node) -> None:
    """clear: put back what the served-by faults changed (nothing when a deploy already repaired it)."""
    records = node.state.pop("undo", {})
    for name, rec in records.items():
        _UNDO[name](node, rec)


# ------------------------------------------------------------------------------ connectivity and resource faults
# host.json ``down`` / ``slow`` are states (laid out on every run, so they survive a container restart); killing
# processes and (un)mounting a size-limited folder are one-shot actions run by ``ascend_sim.fleet.inject_fault``.


def ensure_sshd_state(node: Node) -> None:
    """host.json ``down`` -> ``/run/ascend-sim/sshd-down``, which sim-init (PID 1) reads: while it says so, sshd
    is not running and the host's port 22 refuses connections."""
    path = node.path(SSHD_DOWN_FILE)
    down = node.host.get("down")
    if down:
        node.write(path, json.dumps({"kind": down["kind"], "until": down.get("until")}) + "\n")
    else:
        node.note(remove(path), f"removed {path}")


def login_shell(passwd: str, user: str) -> str | None:
    """The login shell of ``user`` in /etc/passwd text."""
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) == 7 and fields[0] == user:
            return fields[6]
    return None


def set_login_shell(passwd: str, user: str, shell: str) -> str:
    """/etc/passwd text with ``user``'s login shell set to ``shell``."""
    out = []
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) == 7 and fields[0] == user:
            line = ":".join([*fields[:6], shell])
        out.append(line)
    return "\n".join(out) + "\n"


def ensure_slow(node: Node) -> None:
    """Fault slow-host with ``ssh``: root's login shell becomes sim-slow-shell, which sleeps the seconds in
    /var/lib/ascend-sim/slow-ssh before each command; off again: the shell root had before. (npu-smi and the
    torch_npu stand-in read host.json ``slow`` themselves.)"""
    seconds = slow_seconds(node.host, "ssh")
    marker = node.path(SLOW_SSH)
    if seconds:
        node.write(marker, f"{seconds:g}\n")
    else:
        node.note(remove(marker), f"removed {marker}")
    passwd = node.path("/etc/passwd")
    if not passwd.is_file():
        return
    text = passwd.read_text()
    current = login_shell(text, "root")
    if seconds and current != SLOW_SHELL:
        node.state["root_shell"] = current or DEFAULT_ROOT_SHELL
        want = SLOW_SHELL
    elif not seconds and current == SLOW_SHELL:
        want = node.state.pop("root_shell", DEFAULT_ROOT_SHELL)
    else:
        return
    node.write(passwd, set_login_shell(text, "root", want), 0o644)


def list_processes(proc: Path = Path("/proc")) -> list[tuple[int, int, str]]:
    """(pid, ppid, comm) of every process in this PID namespace."""
    out = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        out.append((int(entry.name), ppid, comm))
    return out


def ancestors(pid: int, procs: Sequence[tuple[int, int, str]]) -> set[int]:
    parent = {p: pp for p, pp, _ in procs}
    chain = set()
    while pid and pid not in chain:
        chain.add(pid)
        pid = parent.get(pid, 0)
    return chain


SSHD_NAMES = ("sshd", "sshd-session")


def pick_victims(procs: Sequence[tuple[int, int, str]], kind: str, keep: set[int]) -> list[int]:
    """The processes a fault kills: ``host-down`` every process but PID 1 (sim-init stands for the machine) and
    ``keep`` (this sim-apply and its parents); ``partition`` every sshd (the listener and each connection's
    session process), so established connections drop while what they started keeps running."""
    if kind == "host-down":
        return sorted(p for p, _, _ in procs if p != 1 and p not in keep)
    return sorted(p for p, _, comm in procs if p != 1 and p not in keep and comm in SSHD_NAMES)


def kill_for(node: Node, kind: str) -> None:
    if node.root != Path("/"):
        raise ActionError(f"{kind}: only inside a node (root /)")
    procs = list_processes()
    pid1 = next((comm for pid, _, comm in procs if pid == 1), "")
    if pid1 in SSHD_NAMES:
        raise ActionError(f"{kind}: PID 1 is sshd (this node was started before sim-init): recreate the fleet")
    victims = pick_victims(procs, kind, ancestors(os.getpid(), procs))
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    left = wait_gone(victims)
    if left:
        raise ActionError(f"{kind}: processes {left} were still there {KILL_WAIT_S:g} s after SIGKILL")
    node.changes.append(f"{kind}: killed {len(victims)} processes")


KILL_WAIT_S = 10.0


def wait_gone(pids: Sequence[int], proc: Path = Path("/proc"), timeout: float = KILL_WAIT_S) -> list[int]:
    """Wait until none of ``pids`` is in ``proc`` any more and return those still there at ``timeout``. A killed
    process stays a zombie until its parent (sim-init, every POLL_S) reaps it; a fault that returned before that
    left ``ps`` showing ``[sshd] <defunct>``, which a real lost host never shows a second later."""
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for pid in pids if (proc / str(pid)).exists()]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def action_host_down(node: Node) -> None:
    """The host is lost (power cut, kernel panic): every process dies, sshd stays stopped until cleared."""
    kill_for(node, "host-down")


def action_partition(node: Node) -> None:
    """The host's connections drop: every sshd dies; what they started keeps running; sshd comes back when
    host.json ``down.until`` has passed (sim-init) or on clear."""
    kill_for(node, "partition")


def _unescape_mount(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> dict[str, str]:
    """Mount point -> file system type, from /proc/self/mountinfo (the last mount on a point wins)."""
    out = {}
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if sep and len(fields) >= 5 and right.split():
            out[_unescape_mount(fields[4])] = right.split()[0]
    return out


def tmpfs_size(used_bytes: int, free_kb: int, page: int = 4096) -> int:
    """A tmpfs size that holds ``used_bytes`` with ``free_kb`` KiB free (whole pages)."""
    want = used_bytes + free_kb * 1024
    return max(page, -(-want // page) * page)


def disk_path(node: Node, target: str) -> Path:
    """The folder a disk-full fault limits: the deploy tool's state folder or CANN's opp/vendors."""
    return node.path(STATE_DIR) if target == "state" else node.cann_home / "opp/vendors"


def _mounts() -> dict[str, str]:
    return parse_mountinfo(Path("/proc/self/mountinfo").read_text())


def _sh(argv: Sequence[str]) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ActionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()} (mounting needs "
                          "CAP_SYS_ADMIN: ascend_sim.fleet runs this fault with podman exec --privileged)")


def action_disk_full(node: Node) -> None:
    """Fault disk-full: a tmpfs over the target folder holding its current content with ``free_kb`` KiB left, so
    the next large write fails with ENOSPC ("No space left on device"), as on a full root or /var file system.
    The original folder stays reachable (bind-mounted under /run/ascend-sim/under) for ``disk-clear``."""
    spec = node.host.get("disk_full")
    if not spec:
        raise ActionError("disk-full: host.json has no disk_full")
    if node.root != Path("/"):
        raise ActionError("disk-full: only inside a node (root /)")
    path = disk_path(node, spec["target"])
    path.mkdir(parents=True, exist_ok=True)
    mounts = node.state.setdefault("disk_full_mounts", {})
    if _mounts().get(str(path)) != "tmpfs":
        under = Path(UNDER_DIR) / hashlib.sha256(str(path).encode()).hexdigest()[:12]
        under.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o7777
        _sh(["mount", "--bind", str(path), str(under)])
        try:
            _sh(["mount", "-t", "tmpfs", "-o", f"mode={mode:o}", DISK_FULL_FS, str(path)])
        except ActionError:
            _sh(["umount", str(under)])
            raise
        mounts[str(path)] = str(under)
        node.save_state()
        _sh(["cp", "-a", f"{under}/.", f"{path}/"])
    st = os.statvfs(path)
    size = tmpfs_size((st.f_blocks - st.f_bfree) * st.f_frsize, spec["free_kb"])
    _sh(["mount", "-o", f"remount,size={size}", str(path)])
    node.changes.append(f"disk-full: {path} is a {size // 1024} KiB tmpfs with {spec['free_kb']} KiB free")


def action_disk_clear(node: Node) -> None:
    """Undo disk-full: what the host wrote into the full folder replaces the hidden original (a disk that was
    full keeps what was written), then the tmpfs and the bind mount go. Nothing to do without a mount."""
    mounts = node.state.get("disk_full_mounts") or {}
    if not mounts:
        return
    if node.root != Path("/"):
        raise ActionError("disk-clear: only inside a node (root /)")
    active = _mounts()
    for path, under in list(mounts.items()):
        if active.get(path) == "tmpfs" and under in active:
            for entry in Path(under).iterdir():
                remove(entry)
            _sh(["cp", "-a", f"{path}/.", f"{under}/"])
            _sh(["umount", path])
        if under in active:
            _sh(["umount", under])
        with contextlib.suppress(OSError):
            Path(under).rmdir()
        del mounts[path]
        node.changes.append(f"disk-clear: {path} back on its own file system")


ACTIONS: dict[str, Callable[[Node], None]] = {
    "corrupt-lib": action_corrupt_lib,
    "vendor-not-first": action_vendor_not_first,
    "env-not-sourced": action_env_not_sourced,
    "vendor-not-loaded": action_vendor_not_loaded,
    "vendor-foreign-owner": action_vendor_foreign_owner,
    "custom-path-other-vendor": action_custom_path_other_vendor,
    "kernel-bin-missing": action_kernel_bin_missing,
    "undo-served-by": action_undo_served_by,
    "host-down": action_host_down,
    "partition": action_partition,
    "disk-full": action_disk_full,
    "disk-clear": action_disk_clear,
}


def apply(host: dict[str, Any], root: Path = Path("/"), node_dir: Path = Path(NODE_DIR),
          actions: Sequence[str] = ()) -> list[str]:
    """Lay out the node described by ``host`` under ``root``; run ``actions``; return what changed."""
    node = Node(host, root, node_dir)
    ensure_driver(node)
    if "no-cann" in host["faults"]:
        remove_cann(node)
    else:
        ensure_cann(node)
    ensure_npu_smi(node)
    ensure_scontrol(node)
    ensure_python(node)
    ensure_sshd_state(node)
    ensure_slow(node)
    for name in actions:
        ACTIONS[name](node)
    node.save_state()
    return node.changes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sim-apply", description=f"{HEADER}: lay out a simulated Ascend node")
    parser.add_argument("--host-json", default=None, help="default: /etc/ascend-sim/host.json")
    parser.add_argument("--root", default="/", help="lay out under this folder (tests)")
    parser.add_argument("--node-dir", default=NODE_DIR)
    parser.add_argument("--action", action="append", default=[], choices=sorted(ACTIONS))
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        host = load_host(args.host_json)
        changes = apply(host, Path(args.root), Path(args.node_dir), args.action)
    except (OSError, HostConfigError, ActionError, RuntimeError) as exc:
        print(f"sim-apply: {exc}", file=sys.stderr)
        return 3 if isinstance(exc, ActionError) else 1
    if args.verbose:
        for line in changes:
            print(line)
    return 0
