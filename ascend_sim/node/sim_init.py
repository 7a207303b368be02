"""SIMULATOR: ``sim-init``, PID 1 of a simulated Ascend node: runs sshd and keeps it stopped while a fault says so.

Before the connectivity faults, the entrypoint ``exec``'d sshd as PID 1, so stopping sshd stopped the container. Now
PID 1 is this small supervisor (standard library only, Debian's python3 in the node):

- it starts ``sshd -D -e`` on the node's own loopback address and restarts it when it exits;
- while ``/run/ascend-sim/sshd-down`` (written by ``sim-apply`` from host.json ``down``) says so, it does not start
  sshd (and stops it when it runs): faults ``host-down`` (until cleared) and ``partition`` (until an epoch time);
  nothing listens on the host's port 22, so a client gets "Connection refused", as from a host whose sshd is gone;
- it reaps every orphan (PID 1's duty) and, on SIGTERM/SIGINT (``podman stop``), stops sshd and exits 0.

Killing the processes (``host-down``: every process of the node; ``partition``: every sshd, so established
connections drop) is ``sim-apply``'s job (one-shot actions); this loop only decides whether sshd should run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence

SSHD = "/usr/sbin/sshd"
DOWN_FILE = "/run/ascend-sim/sshd-down"
POLL_S = 0.2


def down_reason(text: str | None, now: float) -> str | None:
    """Why sshd must stay stopped, from the down file's content (None: no file), or None when it may run.

    The file holds JSON ``{"kind": "host-down"|"partition", "until": epoch seconds|null}``; unreadable content
    counts as down until cleared (a fault we cannot read is still a fault)."""
    if text is None:
        return None
    try:
        state = json.loads(text)
    except ValueError:
        return "down (unreadable sshd-down file)"
    if not isinstance(state, dict):
        return "down (unreadable sshd-down file)"
    until = state.get("until")
    if isinstance(until, (int, float)) and now >= until:
        return None
    kind = str(state.get("kind") or "down")
    return kind if until is None else f"{kind} for {until - now:.0f} more s"


def read_down_file(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return None
    except OSError:
        return "?"


class _Stop(Exception):
    """SIGTERM / SIGINT arrived."""


def _on_signal(signum: int, frame: object) -> None:
    raise _Stop(signum)


class Supervisor:
    """Run ``argv`` (sshd) unless the down file says no; reap every child."""

    def __init__(self, argv: Sequence[str], down_file: str = DOWN_FILE, poll: float = POLL_S) -> None:
        self.argv = list(argv)
        self.down_file = down_file
        self.poll = poll
        self.child: int | None = None
        self.said: str | None = ""

    def log(self, text: str) -> None:
        print(f"ascend-sim: sim-init: {text}", file=sys.stderr, flush=True)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.child:
                self.child = None
                self.log(f"sshd (pid {pid}) exited with status {status}")

    def stop_child(self, sig: int = signal.SIGTERM) -> None:
        if self.child is not None:
            try:
                os.kill(self.child, sig)
            except ProcessLookupError:
                self.child = None

    def step(self, now: float) -> None:
        self.reap()
        reason = down_reason(read_down_file(self.down_file), now)
        if reason != self.said:
            self.log(f"sshd stays stopped: {reason}" if reason else "sshd may run")
            self.said = reason
        if reason:
            self.stop_child(signal.SIGKILL)
        elif self.child is None:
            self.child = os.posix_spawn(self.argv[0], self.argv, dict(os.environ))
            self.log(f"started sshd (pid {self.child})")

    def run(self) -> int:
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        try:
            while True:
                self.step(time.time())
                time.sleep(self.poll)
        except _Stop:
            self.stop_child()
            deadline = time.monotonic() + 3
            while self.child is not None and time.monotonic() < deadline:
                self.reap()
                time.sleep(0.05)
            self.stop_child(signal.SIGKILL)
            return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sim-init", description="SIMULATOR (ascend-sim): PID 1 of a node")
    parser.add_argument("--address", required=True, help="the node's loopback address (ListenAddress)")
    parser.add_argument("--host-key", required=True)
    parser.add_argument("--down-file", default=DOWN_FILE)
    parser.add_argument("--sshd", default=SSHD, help="the sshd binary (tests run a stand-in)")
    parser.add_argument("--poll", type=float, default=POLL_S)
    args = parser.parse_args(argv)
    sshd = [args.sshd, "-D", "-e", "-o", f"ListenAddress={args.address}", "-o", f"HostKey={args.host_key}"]
    return Supervisor(sshd, args.down_file, args.poll).run()
