"""benchmarks/ssh_meter.py: the SSH ProxyCommand that counts the controller's bytes, against a local TCP server.

Independent data: the test's own server counts what it received and decides what it sends; the meter's record must
match those counts in each direction.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

METER = Path(__file__).resolve().parents[2] / "benchmarks" / "ssh_meter.py"


class Server:
    """One-connection TCP server on 127.0.0.1: reads until the client half-closes, then answers ``reply(received)``
    bytes and closes; or, with ``hold``, keeps the connection open after reading ``hold`` bytes."""

    def __init__(self, reply_factor: int = 1, hold: int | None = None) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.reply_factor, self.hold = reply_factor, hold
        self.received = 0
        self.sent = 0
        self.got_hold = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                self.received += len(data)
                if self.hold is not None and self.received >= self.hold:
                    self.got_hold.set()
                    self.release.wait(30)
                    return
            payload = os.urandom(self.received * self.reply_factor)
            conn.sendall(payload)
            self.sent = len(payload)

    def close(self) -> None:
        self.release.set()
        self.sock.close()


def start_meter(port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "ASCEND_FA_BENCH_SSH_METER": str(log)}
    return subprocess.Popen([sys.executable, str(METER), "127.0.0.1", str(port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.parametrize(("size", "factor"), [(5_000, 1), (300_000, 3), (1, 0)])
def test_counts_each_direction(tmp_path: Path, size: int, factor: int) -> None:
    server = Server(reply_factor=factor)
    log = tmp_path / "meter.jsonl"
    try:
        proc = start_meter(server.port, log)
        out, err = proc.communicate(os.urandom(size), timeout=30)
    finally:
        server.close()
    assert proc.returncode == 0, err
    assert len(out) == size * factor == server.sent
    assert server.received == size
    (rec,) = records(log)
    assert rec["host"] == "127.0.0.1" and rec["port"] == server.port
    assert rec["bytes_up"] == size and rec["bytes_down"] == size * factor
    assert rec["error"] is None and rec["end"] == "eof"
    assert 0 < rec["cpu_s"] < 10 and rec["wall_s"] >= 0


def test_hangup_still_writes_the_record(tmp_path: Path) -> None:
    """ssh ends its ProxyCommand with SIGHUP when the master exits: the bytes so far are still recorded."""
    server = Server(hold=10_000)
    log = tmp_path / "meter.jsonl"
    try:
        proc = start_meter(server.port, log)
        proc.stdin.write(os.urandom(10_000))
        proc.stdin.flush()
        assert server.got_hold.wait(20)
        proc.send_signal(signal.SIGHUP)
        proc.wait(timeout=20)
    finally:
        server.close()
    (rec,) = records(log)
    assert rec["bytes_up"] == 10_000 and rec["bytes_down"] == 0
    assert rec["end"] == "SIGHUP" and rec["error"] is None


def test_refused_connection_fails_like_ssh_and_is_recorded(tmp_path: Path) -> None:
    with socket.socket() as probe:   # a port nobody listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        log = tmp_path / "meter.jsonl"
        proc = start_meter(port, log)
        _, err = proc.communicate(b"", timeout=30)
    assert proc.returncode == 255
    assert b"127.0.0.1" in err and b"ConnectionRefusedError" in err
    (rec,) = records(log)
    assert rec["bytes_up"] == 0 and rec["bytes_down"] == 0 and "ConnectionRefusedError" in rec["error"]


def test_without_the_log_variable_it_only_relays(tmp_path: Path) -> None:
    server = Server()
    env = {k: v for k, v in os.environ.items() if k != "ASCEND_FA_BENCH_SSH_METER"}
    try:
        proc = subprocess.run([sys.executable, str(METER), "127.0.0.1", str(server.port)], input=b"x" * 100,
                              capture_output=True, env=env, timeout=30, cwd=tmp_path, check=False)
    finally:
        server.close()
    assert proc.returncode == 0 and len(proc.stdout) == 100
    assert list(tmp_path.iterdir()) == []


def test_usage_error() -> None:
    proc = subprocess.run([sys.executable, str(METER), "127.0.0.1"], capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == 2 and "ProxyCommand" in proc.stderr


def test_concurrent_meters_append_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "meter.jsonl"
    servers = [Server() for _ in range(4)]
    try:
        procs = [start_meter(s.port, log) for s in servers]
        for i, proc in enumerate(procs):
            proc.stdin.write(b"y" * (1000 * (i + 1)))
            proc.stdin.close()
        deadline = time.monotonic() + 30
        for proc in procs:
            proc.stdout.read()
            proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        for s in servers:
            s.close()
    got = sorted(r["bytes_up"] for r in records(log))
    assert got == [1000, 2000, 3000, 4000]
