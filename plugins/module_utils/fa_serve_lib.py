"""Serve packages to the other hosts of a run over HTTP, so they do not flow through the controller (issue #23).

Standard library only: the module ``fa_serve`` writes this very file into the serve folder (``.fa_serve.py``) and runs
it with the host's Python as a detached process (its own session, stdin from /dev/null, output to ``server.log``).

The server (:func:`run_server`):

* answers only ``GET`` and ``HEAD`` of ``/<64 lowercase hex>.run`` with that file of its folder: no listing, no other
  path, no query, no percent-escape; the file is opened relative to the folder's descriptor with ``O_NOFOLLOW`` and
  must be a regular file (a symlink in the folder is never followed out of it);
* drops root for ``nobody`` (65534) once it listens and has written its record (``server.json``: pid, address,
  port, folder): the HTTP parser never runs as root, and the folder's files are read through the descriptor it
  opened before (0755 folder, 0644 files);
* exits by itself ``timeout`` seconds after its record was last touched (``fa_serve`` touches it when it finds the
  server running: a lease) or after its last download, whichever is later (a long rollout that still pulls keeps
  it), and at once when the record is removed or names another process: a killed run leaves no server for long, and
  ``state=stopped`` needs no signal to get rid of it.

Integrity does not come from here: every host checks what it downloads against the sha256 of the controller's signed
cache record (``fa_install``'s ``sha256``), so a replaced or corrupted served file is refused, never installed.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import http.server
import inspect
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

NAME_RE = re.compile(r"\A/([0-9a-f]{64}\.run)\Z")
SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z")
SERVED_RE = re.compile(r"\A\.?[0-9a-f]{64}\.(run|partial)\Z")
SCRIPT = ".fa_serve.py"
RECORD = "server.json"
LOG = "server.log"
NOBODY = 65534
CHUNK = 1 << 20
EXIT_IN_USE, EXIT_NOT_HERE, EXIT_OTHER = 3, 4, 5
DEFAULT_PORT = 58642
PORT_FIX = "set fa_install_serve_port to a port that is free on the seed host and open between the hosts"


class ServeError(Exception):
    def __init__(self, msg: str, **extra):
        super().__init__(msg)
        self.extra = extra


# --- the server ---------------------------------------------------------------------------------------------------

def requested_name(path: str) -> str | None:
    """The file a request path asks for: ``<sha256>.run`` for exactly ``/<64 lowercase hex>.run``, else None."""
    m = NAME_RE.match(path or "")
    return m.group(1) if m else None


def open_served(dir_fd: int, name: str) -> int | None:
    """A read descriptor of the regular file ``name`` inside the folder ``dir_fd`` (never through a symlink)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "ascend-fa-serve"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)

    def _serve(self, body: bool) -> None:
        name = requested_name(self.path)
        fd = open_served(self.server.dir_fd, name) if name else None
        if fd is None:
            self.send_error(404, "Not Found")
            return
        with os.fdopen(fd, "rb") as fh:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(os.fstat(fh.fileno()).st_size))
            self.end_headers()
            if body:
                self.server.last_served = time.time()   # a rollout still pulling keeps the server (lease_over)
                with contextlib.suppress(ConnectionError):
                    shutil.copyfileobj(fh, self.wfile, CHUNK)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str, port: int, dir_fd: int):
        self.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.dir_fd = dir_fd
        self.last_served = 0.0
        super().__init__((address, port), Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the address back to a name (socket.getfqdn): a slow DNS must not delay us
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


def drop_privileges() -> None:
    """Root gives up its rights for nobody's (the files are read through descriptors opened before)."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


def lease_over(dir_fd: int, pid: int, timeout: float, now: float | None = None, last_served: float = 0.0) -> bool:
    """The server must go: its record is gone or names another process, or ``timeout`` seconds passed since the later
    of the record's last touch (start, renewal) and the last download (``last_served``)."""
    try:
        st = os.stat(RECORD, dir_fd=dir_fd, follow_symlinks=False)
        fd = os.open(RECORD, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
        with os.fdopen(fd, encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return True
    if not isinstance(record, dict) or record.get("pid") != pid:
        return True
    return (time.time() if now is None else now) > max(st.st_mtime, last_served) + timeout


def write_json_atomic(path: str, data: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, sort_keys=True)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def say(line: str) -> None:
    """A line of the server's log (its stderr is server.log)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def run_server(folder: str, address: str, port: int, timeout: float, poll: float = 1.0) -> int:
    """Serve ``folder`` on ``address:port`` until the lease is over or SIGTERM. Returns the exit status."""
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        server = Server(address, port, dir_fd)
    except OSError as exc:
        say(f"cannot listen on {address}:{port}: {exc}")
        return {errno.EADDRINUSE: EXIT_IN_USE, errno.EADDRNOTAVAIL: EXIT_NOT_HERE}.get(exc.errno, EXIT_OTHER)
    record = {"pid": os.getpid(), "address": address, "port": port, "folder": folder, "timeout": timeout,
              "started": time.time()}
    write_json_atomic(os.path.join(folder, RECORD), record)
    drop_privileges()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    say(f"serving {folder} on {address}:{port} for {timeout:.0f}s (pid {os.getpid()})")
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True).start()
    while not stop.wait(poll):
        if lease_over(dir_fd, os.getpid(), timeout, last_served=server.last_served):
            break
    server.shutdown()
    server.server_close()
    say("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ascend-fa package server (started by the module fa_serve)")
    parser.add_argument("--folder", required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    a = parser.parse_args(argv)
    return run_server(a.folder, a.address, a.port, a.timeout)


# --- the module's side: place the copy, start, renew, stop --------------------------------------------------------

def base_url(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/"


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def server_argv(python: str, folder: str, address: str, port: int, timeout: int) -> list[str]:
    return [python, os.path.join(folder, SCRIPT), "--folder", folder, "--address", address, "--port", str(port),
            "--timeout", str(timeout)]


def process_argv(pid: int) -> list[str] | None:
    """The command line of a live process (None: no such process, or a zombie: its cmdline is empty)."""
    try:
        with open(f"/proc/{int(pid)}/cmdline", "rb") as fh:
            raw = fh.read()
    except (OSError, ValueError):
        return None
    return [p.decode(errors="replace") for p in raw.split(b"\0")[:-1]] or None


def read_record(folder: str) -> dict | None:
    try:
        fd = os.open(os.path.join(folder, RECORD), os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("pid"), int) else None


def our_server(folder: str) -> dict | None:
    """The record of the live server of this folder: its pid runs this folder's script (a pid reused by another
    process, or a dead server, is not ours). ``argv`` is the process's command line."""
    record = read_record(folder)
    argv = process_argv(record["pid"]) if record else None
    if not argv or len(argv) < 2 or argv[1] != os.path.join(folder, SCRIPT):
        return None
    return {**record, "argv": argv}


def ensure_folder(folder: str, check_mode: bool = False) -> bool:
    """The serve folder: a real folder owned by this user, 0755 (created when missing). Returns whether it changed."""
    if not os.path.isabs(folder):
        raise ServeError(f"folder {folder} must be an absolute path")
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        if not check_mode:
            os.makedirs(folder, mode=0o755)
            os.chmod(folder, 0o755)
        return True
    if not stat.S_ISDIR(st.st_mode):
        raise ServeError(f"{folder} is not a folder (a link or a file): refused. Fix: remove it (ascend-fa makes the "
                         "folder itself)")
    if st.st_uid != os.geteuid():
        raise ServeError(f"{folder} belongs to uid {st.st_uid}, not to uid {os.geteuid()} that serves from it: refused "
                         "(its owner could replace what is served). Fix: remove it (ascend-fa makes the folder itself)")
    if stat.S_IMODE(st.st_mode) != 0o755:
        if not check_mode:
            os.chmod(folder, 0o755)
        return True
    return False


def served_ok(path: str, sha: str) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644 and sha256_file(path) == sha


def copy_into(folder: str, sha: str, source: str, move: bool = False) -> None:
    """``source`` as ``<folder>/<sha>.run`` (0644, this user's), through a partial file renamed into place."""
    partial = os.path.join(folder, f".{sha}.partial")
    try:
        if move:
            shutil.move(source, partial)
        else:
            shutil.copyfile(source, partial)
        os.chown(partial, os.geteuid(), os.getegid())
        os.chmod(partial, 0o644)
        if sha256_file(partial) != sha:
            raise ServeError(f"{source} changed while it was copied (its sha256 is no longer {sha})")
        os.replace(partial, os.path.join(folder, f"{sha}.run"))
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise


def place(folder: str, sha: str, sources: list[str], package: str | None = None, move: bool = False,
          check_mode: bool = False) -> tuple[bool, str]:
    """Put the package ``sha`` into the serve folder. Returns (changed, how): ``kept`` (already there, intact),
    ``pushed`` (``package``, transferred by the controller) or ``copied from <path>`` (a file of the host with this
    sha256: the shared store, the build output, the host's kept package). Raises ServeError(package_needed) when
    none of them has it."""
    if not SHA256_RE.match(sha or ""):
        raise ServeError(f"sha256={sha!r} is not a sha256 hex digest")
    if served_ok(os.path.join(folder, f"{sha}.run"), sha):
        return False, "kept"
    candidates = ([(package, "pushed")] if package else []) + [(s, f"copied from {s}") for s in sources or []]
    for path, how in candidates:
        if os.path.isfile(path) and sha256_file(path) == sha:
            if not check_mode:
                copy_into(folder, sha, path, move=move and path == package)
            return True, how
    tried = ", ".join(sources or []) or "no host path given"
    raise ServeError(f"no copy of package {sha} on this host ({tried}). Fix: give src (the controller pushes one copy)",
                     package_needed=True)


def server_source() -> str:
    return inspect.getsource(sys.modules[__name__])


def write_script(folder: str) -> None:
    path = os.path.join(folder, SCRIPT)
    text = server_source()
    with contextlib.suppress(OSError), open(path, encoding="utf-8") as fh:
        if fh.read() == text and stat.S_IMODE(os.lstat(path).st_mode) == 0o644:
            return
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def log_tail(folder: str, lines: int = 5) -> str:
    try:
        with open(os.path.join(folder, LOG), encoding="utf-8", errors="replace") as fh:
            return " | ".join(fh.read().strip().splitlines()[-lines:])
    except OSError:
        return ""


def bind_failure(rc: int, folder: str, address: str, port: int) -> ServeError:
    why = log_tail(folder) or f"the server exited with status {rc}"
    if rc == EXIT_IN_USE:
        fix = f"another program listens on port {port} of {address}. Fix: {PORT_FIX}, or fa_install_source=push"
    elif rc == EXIT_NOT_HERE:
        fix = (f"{address} is not an address of this host. Fix: set fa_install_serve_address to the address of this "
               "host that the other hosts reach it on")
    else:
        fix = f"Fix: see {os.path.join(folder, LOG)}; or {PORT_FIX}, or set fa_install_source=push"
    return ServeError(f"cannot serve packages on {address}:{port}: {why}; {fix}", port_problem=True)


def start(folder: str, address: str, port: int, timeout: int, python: str | None = None, wait: float = 15.0,
          check_mode: bool = False) -> tuple[bool, dict]:
    """A server of ours for ``folder`` on ``address:port``: the running one when it has these settings (its lease
    renewed, changed=False), else a new one (an old one of this folder with other settings is stopped first).
    Returns (changed, {pid, url})."""
    want = server_argv(python or sys.executable, folder, address, port, timeout)
    cur = our_server(folder)
    if cur and cur["argv"][1:] == want[1:]:
        if not check_mode:
            os.utime(os.path.join(folder, RECORD))
        return False, {"pid": cur["pid"], "url": base_url(address, port)}
    if check_mode:
        return True, {"pid": None, "url": base_url(address, port)}
    if cur:
        kill(cur["pid"], folder)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(folder, RECORD))
    write_script(folder)
    with open(os.path.join(folder, LOG), "wb") as log:
        os.chmod(log.name, 0o644)
        proc = subprocess.Popen(want, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                close_fds=True, start_new_session=True, cwd=folder)
    deadline = time.monotonic() + wait
    while True:
        rc = proc.poll()
        if rc is not None:
            raise bind_failure(rc, folder, address, port)
        record = read_record(folder)
        if record and record.get("pid") == proc.pid:
            return True, {"pid": proc.pid, "url": base_url(address, port)}
        if time.monotonic() > deadline:
            kill(proc.pid, folder)
            raise ServeError(f"the server for {folder} did not come up on {address}:{port} within {wait:.0f}s: "
                             f"{log_tail(folder) or 'no output'}. Fix: see {os.path.join(folder, LOG)}")
        time.sleep(0.05)


def probe(url: str, size: int, timeout: float = 10.0) -> None:
    """HEAD ``url`` (no proxy: an address of the cluster) and expect 200 with ``size`` bytes."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, method="HEAD"), timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
    except (OSError, ValueError) as exc:
        raise ServeError(f"the server does not answer {url} on this host itself: {exc}. Fix: {PORT_FIX}, or set "
                         "fa_install_source=push") from exc
    if str(length) != str(size):
        raise ServeError(f"{url} answers with {length} bytes, the served file has {size}")


def kill(pid: int, folder: str, wait: float = 5.0) -> None:
    """SIGTERM the server ``pid`` of ``folder`` (only while it runs this folder's script), SIGKILL after ``wait``."""
    script = os.path.join(folder, SCRIPT)
    for sig, grace in ((signal.SIGTERM, wait), (signal.SIGKILL, 2.0)):
        argv = process_argv(pid)
        if not argv or len(argv) < 2 or argv[1] != script:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if process_argv(pid) is None:
                return
            time.sleep(0.05)


def stop(folder: str, check_mode: bool = False) -> tuple[bool, list[str]]:
    """Stop the server of ``folder`` (only ours: the record's pid must run this folder's script) and remove the served
    copies, the record and the script. Returns (changed, what was done)."""
    done: list[str] = []
    if not os.path.isdir(folder) or os.path.islink(folder):
        return False, done
    cur = our_server(folder)
    if cur:
        done.append(f"stopped the server (pid {cur['pid']})")
        if not check_mode:
            kill(cur["pid"], folder)
    ours = (RECORD, SCRIPT, f"{RECORD}.tmp", f"{SCRIPT}.tmp")
    names = sorted(n for n in os.listdir(folder) if (SERVED_RE.match(n) or n in ours)
                   and not stat.S_ISDIR(os.lstat(os.path.join(folder, n)).st_mode))
    for name in names:
        done.append(f"removed {name}")
        if not check_mode:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(folder, name))
    return bool(done), done


if __name__ == "__main__":
    raise SystemExit(main())
