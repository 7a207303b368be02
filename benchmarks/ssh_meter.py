#!/usr/bin/env python3
"""SSH byte meter: an SSH ``ProxyCommand`` that relays the connection and counts its bytes.

    ssh -o ProxyCommand='python benchmarks/ssh_meter.py %h %p' HOST

ssh starts it with the connection's stdin/stdout; it opens TCP to HOST:PORT and relays both ways (``select()``,
non-blocking, 256 KiB reads), counting the bytes of each direction. When the connection ends (either side closes,
or ssh ends it with SIGHUP/SIGTERM) it appends one JSON line to the file named by ``$ASCEND_FA_BENCH_SSH_METER``
(nothing when unset):

    {"host": ..., "port": ..., "pid": ..., "bytes_up": ..., "bytes_down": ..., "cpu_s": ..., "wall_s": ...,
     "end": "eof" | "SIGHUP" | ..., "error": null | "..."}

``bytes_up``: controller -> host; ``bytes_down``: host -> controller; ``cpu_s``: this process's own CPU time
(``getrusage(RUSAGE_SELF)``, interpreter start included), so whoever sums a run can take it out of the controller's
CPU; ``end``: how the relay ended (``eof``: a side closed; a signal name: ssh ended it, as it does with SIGHUP when a
ControlPersist master exits); ``error``: what failed (the connection to HOST:PORT, a relay error), else null. The
bytes are SSH wire bytes, as TCP carries them: encrypted, with SSH's packet framing, padding and MACs, the
key exchange and the channel traffic of every session multiplexed over the connection (not IP/TCP headers).

Why a proxy: the simulated hosts share the controller's network namespace (podman ``--network host``), so interface
counters cannot tell the controller's traffic to a host from anything else on loopback. With ``ControlMaster=auto``
only the connection that becomes the ControlPersist master runs the ProxyCommand (a multiplexing client talks to the
master's socket, not to the host), and that connection carries every session to the host.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import select
import signal
import socket
import sys
import time

ENV_LOG = "ASCEND_FA_BENCH_SSH_METER"
CHUNK = 256 * 1024
HIGH_WATER = 4 * CHUNK  # stop reading a side while this much of its data waits to be written to the other
IN_FD, OUT_FD = 0, 1


class _Stop(Exception):
    """Raised from a signal handler: the connection is being torn down."""


def _on_signal(signum: int, _frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)


class Relay:
    """Relays IN_FD -> sock and sock -> OUT_FD until the connection is over; counts the bytes."""

    def __init__(self, sock: socket.socket, in_fd: int = IN_FD, out_fd: int = OUT_FD) -> None:
        self.sock, self.in_fd, self.out_fd = sock, in_fd, out_fd
        self.up = bytearray()     # read from in_fd, not yet sent to sock
        self.down = bytearray()   # received from sock, not yet written to out_fd
        self.bytes_up = 0
        self.bytes_down = 0
        self.in_eof = False
        self.sock_eof = False
        self.shut_wr = False

    def _read_in(self) -> None:
        try:
            data = os.read(self.in_fd, CHUNK)
        except BlockingIOError:
            return
        if not data:
            self.in_eof = True
            return
        self.bytes_up += len(data)
        self.up += data

    def _read_sock(self) -> None:
        try:
            data = self.sock.recv(CHUNK)
        except BlockingIOError:
            return
        except ConnectionResetError:
            data = b""
        if not data:
            self.sock_eof = True
            return
        self.bytes_down += len(data)
        self.down += data

    def _write_sock(self) -> None:
        try:
            sent = self.sock.send(self.up)
        except BlockingIOError:
            return
        del self.up[:sent]

    def _write_out(self) -> None:
        try:
            written = os.write(self.out_fd, self.down)
        except BlockingIOError:
            return
        del self.down[:written]

    def step(self, timeout: float | None = None) -> bool:
        """One select() round; False when the connection is over."""
        if self.in_eof and not self.up and not self.shut_wr:
            self.sock.shutdown(socket.SHUT_WR)   # the client is done sending: pass the EOF on, keep reading
            self.shut_wr = True
        if self.sock_eof and not self.down:
            return False                          # the host closed and everything it sent was delivered
        rlist: list = []
        if not self.in_eof and len(self.up) < HIGH_WATER:
            rlist.append(self.in_fd)
        if not self.sock_eof and len(self.down) < HIGH_WATER:
            rlist.append(self.sock)
        wlist: list = ([self.sock] if self.up else []) + ([self.out_fd] if self.down else [])
        if not rlist and not wlist:
            return False
        readable, writable, _ = select.select(rlist, wlist, [], timeout)
        if self.in_fd in readable:
            self._read_in()
        if self.sock in readable:
            self._read_sock()
        if self.sock in writable:
            self._write_sock()
        if self.out_fd in writable:
            self._write_out()
        return True

    def run(self) -> None:
        while self.step():
            pass


def record(path: str, entry: dict) -> None:
    """Append one JSON line with a single write() on an O_APPEND file (concurrent meters do not interleave)."""
    line = (json.dumps(entry, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return round(own.ru_utime + own.ru_stime, 4)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: ssh_meter.py HOST PORT (as ssh's ProxyCommand: ssh_meter.py %h %p)", file=sys.stderr)
        return 2
    host, port = argv[0], int(argv[1])
    started = time.monotonic()
    for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _on_signal)
    relay: Relay | None = None
    error = None
    end = "eof"
    rc = 0
    try:
        sock = socket.create_connection((host, port), timeout=30)
        sock.settimeout(None)
        sock.setblocking(False)
        for fd in (IN_FD, OUT_FD):
            os.set_blocking(fd, False)
        relay = Relay(sock)
        relay.run()
    except _Stop as exc:
        end = str(exc)
    except OSError as exc:
        end = "error"
        if exc.errno != errno.EPIPE:
            error = f"{type(exc).__name__}: {exc}"
            print(f"ssh_meter: {host}:{port}: {error}", file=sys.stderr)
            rc = 255 if relay is None else 0
    finally:
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)   # the record is written whole, whatever comes now
        path = os.environ.get(ENV_LOG)
        if path:
            record(path, {"host": host, "port": port, "pid": os.getpid(),
                          "bytes_up": relay.bytes_up if relay else 0, "bytes_down": relay.bytes_down if relay else 0,
                          "cpu_s": _cpu_s(), "wall_s": round(time.monotonic() - started, 3), "end": end,
                          "error": error})
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
