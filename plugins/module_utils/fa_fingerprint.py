"""The state of a host that decides whether FlashAttention still works there, as a digest of file metadata.

Standard library only (shipped to hosts as ``plugins/module_utils/fa_fingerprint.py``). Nothing is read but the
install manifest (for the package's folder and ``.run``) and nothing is started: one ``lstat`` per watched entry
(``stat`` too for symlinks), a walk of the operator folders and of the profile / ld.so folders. Each entry counts
with its type, mode, size, inode, mtime and ctime in nanoseconds; the ctime cannot be set back from user space, so
an edit that restores the mtime still shows.

Who uses it:

- ``ascend_facts`` returns the host's fingerprint with its facts (``ascend.fingerprint``);
- ``fa_verify`` returns it after a run where every card passed (the state that was just proven);
- ``fa_converged`` recomputes it from the same inputs and says whether anything changed, and in which group
  (:func:`converged`, run by the module and by its action plugin's program).

Groups: ``driver`` (driver/firmware version files, the installer's record), ``cann`` (the toolkit links, version
files, set_env.sh, the operator folders with every vendor package and config.ini, NNAL's set_env.sh), ``package``
(ascend-fa's manifest, its set_env.bash, the kept ``.run``, the installed tree), ``environment`` (what a fresh login
shell and the dynamic loader read: /etc/profile, /etc/profile.d, bashrc files, /etc/environment, ld.so.conf(.d),
ld.so.cache) and ``python`` (the interpreter and the folders holding torch / torch_npu).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil

GROUPS = ("driver", "cann", "package", "environment", "python")
MAX_WALK = 20000          # entries per walked folder; beyond that the folder counts as changed (never silently cut)
HOME_FILES = (".bashrc", ".profile", ".bash_profile", ".bash_login", ".pam_environment")


def _read_manifest(state_dir: str) -> dict:
    try:
        with open(os.path.join(state_dir, "manifest.json"), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _cann_homes(ascend_home: str) -> list[str]:
    """Both layouts' toolkit folders, resolved (8.5+ ``cann``, before 8.5 ``ascend-toolkit/latest``)."""
    out = []
    for link in (os.path.join(ascend_home, "cann"), os.path.join(ascend_home, "ascend-toolkit", "latest")):
        if os.path.isdir(link):
            out.append(os.path.realpath(link))
    return out


def _python_exe(python: str) -> str | None:
    exe = python if os.path.isabs(python) else shutil.which(python)
    return os.path.realpath(exe) if exe else None


def watched(inputs: dict) -> dict[str, list[tuple[str, bool]]]:
    """group -> [(path, walk)]: ``walk`` counts every entry below the folder, else the entry alone."""
    home = inputs.get("ascend_home") or "/usr/local/Ascend"
    state = inputs.get("state_dir") or "/var/lib/ascend-fa"
    arch = inputs.get("arch") or platform.machine()
    manifest = _read_manifest(state)
    cann: list[tuple[str, bool]] = [
        (os.path.join(home, "cann"), False),
        (os.path.join(home, "ascend-toolkit", "latest"), False),
        (os.path.join(home, "cann", "set_env.sh"), False),
        (os.path.join(home, "ascend-toolkit", "set_env.sh"), False),
        (os.path.join(home, "nnal", "atb", "set_env.sh"), False),
    ]
    for cann_home in _cann_homes(home):
        cann += [
            (os.path.join(cann_home, "version.cfg"), False),
            (os.path.join(os.path.dirname(cann_home), "latest", "version.cfg"), False),
            (os.path.join(cann_home, f"{arch}-linux", "ascend_toolkit_install.info"), False),
            (os.path.join(cann_home, f"{arch}-linux", "ascend_ops_install.info"), False),
            (os.path.join(cann_home, "opp", "version.info"), False),
            (os.path.join(cann_home, "opp", "vendors"), True),
        ]
    package: list[tuple[str, bool]] = [(os.path.join(state, "manifest.json"), False),
                                       (os.path.join(state, "set_env.bash"), False),
                                       # fa_verify's record: a failed verification ends the fast path
                                       (os.path.join(state, "verify.json"), False)]
    if manifest.get("vendor_dir"):
        package.append((str(manifest["vendor_dir"]), True))
    if manifest.get("package"):
        package.append((str(manifest["package"]), False))
    user_home = os.path.expanduser("~")
    environment = [(p, False) for p in ("/etc/profile", "/etc/bash.bashrc", "/etc/environment", "/etc/ld.so.conf",
                                        "/etc/ld.so.cache")]
    environment += [("/etc/profile.d", True), ("/etc/ld.so.conf.d", True)]
    environment += [(os.path.join(user_home, name), False) for name in HOME_FILES]
    python: list[tuple[str, bool]] = []
    exe = _python_exe(str(inputs.get("python") or "python3"))
    python.append((exe or f"<{inputs.get('python') or 'python3'} not on PATH>", False))
    python += [(str(d), False) for d in sorted(inputs.get("site_dirs") or [])]
    return {
        "driver": [(os.path.join(home, "driver", "version.info"), False),
                   (os.path.join(home, "firmware", "version.info"), False),
                   (inputs.get("install_info") or "/etc/ascend_install.info", False)],
        "cann": cann,
        "package": package,
        "environment": environment,
        "python": python,
    }


def _entry(path: str) -> str:
    try:
        st = os.lstat(path)
    except OSError:
        return f"{path}\t-"
    line = f"{path}\t{st.st_mode:o}\t{st.st_size}\t{st.st_ino}\t{st.st_mtime_ns}\t{st.st_ctime_ns}"
    if os.path.islink(path):
        line += f"\t->{os.readlink(path)}\t{_entry(os.path.realpath(path)).split(chr(9), 1)[1]}"
    return line


def _walk(root: str, h) -> None:
    h.update((_entry(root) + "\n").encode())
    if not os.path.isdir(root) or os.path.islink(root):
        return
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            count += 1
            if count > MAX_WALK:
                h.update(f"{root}\ttoo many entries\t{os.getpid()}\n".encode())
                return
            h.update((_entry(os.path.join(dirpath, name)) + "\n").encode())


def fingerprint(inputs: dict) -> dict:
    """``{"inputs", "digest", "groups": {group: sha256}, "entries"}`` of the host as it is now."""
    groups = {}
    entries = 0
    for group, items in watched(inputs).items():
        h = hashlib.sha256()
        for path, walk in items:
            if walk:
                _walk(path, h)
            else:
                h.update((_entry(path) + "\n").encode())
            entries += 1
        groups[group] = h.hexdigest()
    total = hashlib.sha256("".join(f"{g}={groups[g]}\n" for g in GROUPS).encode()).hexdigest()
    return {"inputs": dict(inputs), "digest": total, "groups": groups, "entries": entries}


def compare(expected: dict, current: dict) -> list[str]:
    """The groups whose digest differs (all of them when ``expected`` has none)."""
    want = (expected or {}).get("groups") or {}
    return [g for g in GROUPS if want.get(g) != current["groups"].get(g)]


def converged(recorded: dict) -> dict:
    """Compare the host now with a recorded fingerprint: ``converged``, ``changed_groups``, ``digest``, ``entries``,
    ``msg`` (what module fa_converged and its action plugin's program both return)."""
    inputs = recorded.get("inputs")
    if not isinstance(inputs, dict) or not recorded.get("groups"):
        return {"converged": False, "changed_groups": ["(no recorded fingerprint)"], "digest": None, "entries": 0,
                "msg": "no usable recorded fingerprint: the full check runs"}
    now = fingerprint(inputs)
    changed = compare(recorded, now)
    msg = ("unchanged since the last clean run" if not changed
           else f"changed since the last clean run: {', '.join(changed)} (the full check runs)")
    return {"converged": not changed, "changed_groups": changed, "digest": now["digest"], "entries": now["entries"],
            "msg": msg}
