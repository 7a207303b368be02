"""Controller-side run locks: one ascend-fa run at a time per host and per build key.

Two runs on one controller that touch the same host (a forced install into the same tree) or the same build key (one
source folder ``<fa_build_dir>/src/<key>`` on the build host, one cache entry ``<cache>/<key>``) collide. Each run
takes one lock file per host and per build key under the lock folder (default ``<fa_artifact_cache>/../locks``):

    <lock_dir>/host-<name>.lock      <lock_dir>/build-<key>.lock

A lock file is a JSON record of the run that holds it: the ``ansible-playbook`` main process (pid, its start time in
clock ticks after boot from ``/proc/<pid>/stat``, the boot id, the controller's name), when it started and its
command line (secrets masked). The lock is held as long as that very process lives: a record whose pid is gone, is a
zombie, or now belongs to another process (pid reused: another start time, or another boot) is stale and taken over.
So a killed run (SIGKILL, power loss) never blocks the next one. A run ending normally also leaves nothing behind:
the first lock a run takes starts a small watcher (this file run as a script) that removes the run's lock files when
its ``ansible-playbook`` process exits. A record written on another controller (a lock folder shared over NFS)
cannot be judged from here: it holds until its own watcher removes it, or an operator does.

Every read-decide-write happens under ``flock`` on ``<lock_dir>/.guard`` (held for milliseconds), and records are
written to a temporary file and renamed, so two runs never both take one lock. Stdlib only: the action plugin
``fa_lock`` imports it (by its collection name), and the watcher runs it with ``python -I``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

HOST, BUILD = "host", "build key"
_PREFIX = {HOST: "host", BUILD: "build"}
GUARD = ".guard"
WATCH_PREFIX = ".watch-"
_CMD_MAX = 400


class LockConflict(RuntimeError):
    """Another live run holds the lock."""

    def __init__(self, kind: str, name: str, path: Path, holder: Owner | None):
        self.kind, self.name, self.path, self.holder = kind, name, path, holder
        super().__init__(conflict_message(kind, name, path, holder))


@dataclass(frozen=True)
class Owner:
    """The run holding a lock: its ``ansible-playbook`` main process."""

    pid: int
    start: int | None          # clock ticks after boot (/proc/<pid>/stat field 22); None where /proc is missing
    boot_id: str
    controller: str
    user: str = ""
    started: str = ""          # the process start, human readable
    command: str = ""          # its command line, secrets masked

    def same(self, other: Owner) -> bool:
        return (self.pid, self.start, self.boot_id, self.controller) == \
            (other.pid, other.start, other.boot_id, other.controller)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> Owner:
        if not isinstance(data, dict) or not isinstance(data.get("pid"), int) or data["pid"] <= 0:
            raise ValueError("not a lock record")
        start = data.get("start")
        return cls(pid=data["pid"], start=start if isinstance(start, int) else None,
                   boot_id=str(data.get("boot_id") or ""), controller=str(data.get("controller") or ""),
                   user=str(data.get("user") or ""), started=str(data.get("started") or ""),
                   command=str(data.get("command") or ""))


# ------------------------------------------------------------------------------------------------ processes
def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses): fields 3.. of proc(5)."""
    text = _read(f"/proc/{pid}/stat")
    if not text or ")" not in text:
        return None
    return text[text.rindex(")") + 1:].split()


def process_start(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks after boot, None when there is no such process (or no /proc)."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def _ppid(pid: int) -> int:
    fields = _stat_fields(pid)
    try:
        return int(fields[1]) if fields else 0
    except (IndexError, ValueError):
        return 0


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def boot_id() -> str:
    return (_read("/proc/sys/kernel/random/boot_id") or "").strip()


def _started(start: int | None) -> str:
    """The process start as local time, from its start ticks and the boot time (/proc/stat btime)."""
    btime = next((int(line.split()[1]) for line in (_read("/proc/stat") or "").splitlines()
                  if line.startswith("btime ")), None)
    if start is None or btime is None:
        return time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(btime + start / os.sysconf("SC_CLK_TCK")))


def main_process(pid: int | None = None) -> int:
    """The ``ansible-playbook`` main process of the worker ``pid`` (default: this process).

    Ansible forks its workers from the main process, so a worker and its parents up to the main process share one
    command line; the main process's own parent (a shell, ansible-runner, AWX) has another. Without /proc: the parent.
    """
    pid = pid or os.getpid()
    cmd = _cmdline(pid)
    if not cmd:
        return os.getppid() if pid == os.getpid() else pid
    while True:
        parent = _ppid(pid)
        if parent <= 1 or _cmdline(parent) != cmd:
            return pid
        pid = parent


def _masked(argv: list[str]) -> str:
    from .redact import mask_command  # here, not at the top: the watcher runs this file alone (python -I)

    return mask_command(argv, _CMD_MAX)


def run_owner(pid: int | None = None) -> Owner:
    """The owner record for this run (the ansible-playbook main process above ``pid``, default this process)."""
    main = main_process(pid)
    start = process_start(main)
    try:
        import pwd
        user = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        user = str(os.getuid())
    return Owner(pid=main, start=start, boot_id=boot_id(), controller=socket.gethostname(), user=user,
                 started=_started(start), command=_masked(_cmdline(main)))


def alive(owner: Owner) -> bool | None:
    """True: the owner's process runs. False: it is gone (the lock is stale). None: cannot tell (another controller)."""
    if owner.controller and owner.controller != socket.gethostname():
        return None
    if owner.boot_id and boot_id() and owner.boot_id != boot_id():
        return False                          # the controller rebooted since
    fields = _stat_fields(owner.pid)
    if fields is None:
        if os.path.isdir("/proc/self"):
            return False
        try:                                  # no /proc: signal 0 tells whether the pid exists
            os.kill(owner.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if fields[0] in ("Z", "X"):               # exited, not yet reaped
        return False
    return owner.start is None or process_start(owner.pid) == owner.start


# ------------------------------------------------------------------------------------------------ lock files
def default_lock_dir(cache_dir: str | os.PathLike[str]) -> Path:
    """``<cache>/../locks``: next to the controller's artifact cache (one lock folder per cache)."""
    return Path(cache_dir).expanduser().resolve().parent / "locks"


def lock_path(lock_dir: str | os.PathLike[str], kind: str, name: str) -> Path:
    """The lock file of ``name``: safe characters kept, a digest added when anything had to be replaced."""
    if kind not in _PREFIX:
        raise ValueError(f"lock kind {kind!r}: expected {HOST!r} or {BUILD!r}")
    if not name:
        raise ValueError(f"empty {kind} name")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80].lstrip(".") or "_"
    if safe != name:
        safe += "-" + hashlib.sha256(name.encode()).hexdigest()[:10]
    return Path(lock_dir) / f"{_PREFIX[kind]}-{safe}.lock"


def conflict_message(kind: str, name: str, path: Path, holder: Owner | None) -> str:
    if holder is None:
        who = "another run"
    else:
        where = f" on controller {holder.controller}" if holder.controller != socket.gethostname() else ""
        by = f" by {holder.user}" if holder.user else ""
        who = f"another run (pid {holder.pid}{where}{by}, started {holder.started}: {holder.command})"
    return (f"{who} holds the lock for {kind} {name} ({path}). Fix: wait for it to finish, or remove {path} "
            f"if that process is gone")


def stale_message(kind: str, name: str, path: Path, holder: Owner | None) -> str:
    who = (f"a run that is gone (pid {holder.pid}, started {holder.started}: {holder.command})" if holder
           else "an unreadable lock record")
    return (f"took over the lock for {kind} {name} ({path}) from {who}: that run ended without releasing it "
            f"(killed?); what it was doing is checked again by this run")


@contextlib.contextmanager
def _guard(lock_dir: Path) -> Iterator[None]:
    lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(lock_dir / GUARD, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                          # closing drops the flock


def _read_record(path: Path) -> Owner | None | bool:
    """The holder; None when there is no lock file; False when the file is not a lock record."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return False
    try:
        return Owner.from_dict(json.loads(text))
    except ValueError:
        return False


def _write_record(path: Path, owner: Owner) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(owner.as_dict(), f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


@dataclass
class Taken:
    """What :func:`acquire` did: ``acquired`` (new), ``held`` (this run had it already) or ``taken over``."""

    state: str
    path: Path
    previous: Owner | None = None


def try_acquire(lock_dir: str | os.PathLike[str], kind: str, name: str, owner: Owner) -> Taken | LockConflict:
    """One attempt: the lock for ``owner``, or the conflict with the live run that holds it."""
    d = Path(lock_dir)
    path = lock_path(d, kind, name)
    with _guard(d):
        holder = _read_record(path)
        if holder is None:
            _write_record(path, owner)
            return Taken("acquired", path)
        if holder is not False and holder.same(owner):
            return Taken("held", path)
        if holder is False or alive(holder) is False:
            _write_record(path, owner)
            return Taken("taken over", path, holder or None)
        return LockConflict(kind, name, path, holder)


def acquire(lock_dir: str | os.PathLike[str], kind: str, name: str, owner: Owner, wait: float = 0,
            poll: float = 1.0) -> Taken:
    """The lock for ``owner``, waiting up to ``wait`` seconds for a live holder; :class:`LockConflict` after that."""
    deadline = time.monotonic() + max(0.0, float(wait))
    while True:
        got = try_acquire(lock_dir, kind, name, owner)
        if isinstance(got, Taken):
            return got
        if time.monotonic() >= deadline:
            raise got
        time.sleep(min(poll, max(0.05, deadline - time.monotonic())))


def holder_of(lock_dir: str | os.PathLike[str], kind: str, name: str, owner: Owner | None = None) -> Owner | None:
    """The live run (not ``owner``) holding the lock, else None. Reads only (check mode)."""
    path = lock_path(lock_dir, kind, name)
    holder = _read_record(path)
    if not holder or (owner is not None and holder.same(owner)) or alive(holder) is False:
        return None
    return holder


def release(lock_dir: str | os.PathLike[str], owner: Owner) -> list[Path]:
    """Remove every lock file of ``lock_dir`` that ``owner`` holds; returns them."""
    d = Path(lock_dir)
    if not d.is_dir():
        return []
    removed = []
    with _guard(d):
        for path in sorted(d.glob("*.lock")):
            holder = _read_record(path)
            if holder and holder.same(owner):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                removed.append(path)
    return removed


# ------------------------------------------------------------------------------------------------ watcher
def _marker(lock_dir: Path, owner: Owner) -> Path:
    return lock_dir / f"{WATCH_PREFIX}{owner.pid}-{owner.start if owner.start is not None else 'x'}"


def ensure_watcher(lock_dir: str | os.PathLike[str], owner: Owner) -> bool:
    """Start the run's watcher unless it runs already (one per run): True when this call started it."""
    d = Path(lock_dir)
    try:
        fd = os.open(_marker(d, owner), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    os.close(fd)
    try:
        subprocess.Popen(   # noqa: S603 - our own interpreter and file, fixed arguments
            [sys.executable, "-I", os.path.abspath(__file__), "watch", str(d.resolve()), json.dumps(owner.as_dict())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
            start_new_session=True, cwd="/")
    except OSError:
        _marker(d, owner).unlink(missing_ok=True)
        return False
    return True


def wait_for_exit(owner: Owner, poll: float = 1.0) -> None:
    """Return when the owner's process has exited (pidfd where the kernel has it, else polling)."""
    fd = None
    with contextlib.suppress(AttributeError, OSError):
        fd = os.pidfd_open(owner.pid)
    if fd is not None:
        try:
            if alive(owner):                  # the pidfd is the owner's process, not a reuse of its pid
                import select
                p = select.poll()
                p.register(fd, select.POLLIN)
                p.poll()
        finally:
            os.close(fd)
    while alive(owner):
        time.sleep(poll)


def watch(lock_dir: str | os.PathLike[str], owner: Owner) -> list[Path]:
    """The watcher: wait for the run to end, then release its locks and remove its marker."""
    wait_for_exit(owner)
    d = Path(lock_dir)
    try:
        return release(d, owner)
    finally:
        _marker(d, owner).unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "watch":
        print("usage: lock.py watch LOCK_DIR OWNER_JSON", file=sys.stderr)
        return 2
    watch(argv[1], Owner.from_dict(json.loads(argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
