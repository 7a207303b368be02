"""SIMULATOR test: the host faults on a real node (one podman container, sshd on 127.0.78.1, no torch).

host-down / partition / clear as SSH sees them, slow-host on SSH and npu-smi, disk-full as a writer sees it (ENOSPC)
and what clear keeps; `podman stop` of a node whose PID 1 is sim-init. The deploy-level behaviour is in
tests/e2e/test_faults.py.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ascend_sim import fleet
from ascend_sim.image import podman

pytestmark = pytest.mark.fleet
STATE = "/var/lib/ascend-fa"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if not (shutil.which("podman") and shutil.which("ssh")):
        pytest.skip("needs podman and ssh (scripts/setup.sh)")
    folder = tmp_path_factory.mktemp("fleet78")
    fleet.create(folder, hosts=1, fleet_octet=78, npus=1, with_torch=False)
    yield folder
    fleet.destroy(folder)


@pytest.fixture(autouse=True)
def _cleared(node: Path):  # type: ignore[no-untyped-def]
    """Each test starts and ends on a healthy node, so one failure does not fail the tests after it."""
    yield
    fleet.inject_fault(node, 1, "clear")


def ssh(folder: Path, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*fleet.ssh_argv(folder, 1), command], capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_host_down_kills_everything_and_clear_brings_it_back(node: Path) -> None:
    ssh(node, "nohup sleep 600 >/dev/null 2>&1 &")           # work running on the host
    assert "sleep 600" in fleet.host_exec(node, 1, "ps", "-eo", "args").stdout
    fleet.inject_fault(node, 1, "host-down")
    down = ssh(node, "true")
    assert down.returncode == 255 and "Connection refused" in down.stderr
    left = fleet.host_exec(node, 1, "ps", "-eo", "pid,args").stdout
    assert "sleep 600" not in left and "sshd" not in left     # everything died but PID 1 (sim-init)
    time.sleep(1)
    assert ssh(node, "true").returncode == 255                 # and stays down
    fleet.inject_fault(node, 1, "clear")
    assert ssh(node, "hostname").stdout.strip() == "asim78-node1"


def test_partition_drops_connections_keeps_work_running_and_ends_by_itself(node: Path) -> None:
    proc = subprocess.Popen([*fleet.ssh_argv(node, 1), "sleep 300; echo done"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    fleet.inject_fault(node, 1, "partition", seconds=4)
    assert proc.wait(timeout=30) == 255                         # the established connection dropped
    assert ssh(node, "true").returncode == 255                 # new ones are refused
    assert "sleep 300" in fleet.host_exec(node, 1, "ps", "-eo", "args").stdout   # the host kept running it
    deadline = time.monotonic() + 20
    while ssh(node, "true", timeout=10).returncode != 0:
        assert time.monotonic() < deadline, "sshd did not come back after the partition"
        time.sleep(0.3)
    fleet.inject_fault(node, 1, "clear")


def test_slow_host_delays_ssh_and_npu_smi(node: Path) -> None:
    fleet.inject_fault(node, 1, "slow-host", seconds=1.5, what="ssh,npu-smi")
    started = time.monotonic()
    assert ssh(node, "true").returncode == 0
    assert time.monotonic() - started >= 1.5
    started = time.monotonic()
    out = fleet.host_exec(node, 1, "npu-smi", "info").stdout      # not over SSH: only npu-smi's own delay
    assert "910B3" in out and time.monotonic() - started >= 1.5
    fleet.inject_fault(node, 1, "clear")
    assert ssh(node, "grep ^root: /etc/passwd").stdout.strip().endswith(":/bin/bash")


def test_disk_full_gives_enospc_and_clear_keeps_what_was_written(node: Path) -> None:
    ssh(node, f"mkdir -p {STATE}/packages && head -c 200000 /dev/urandom > {STATE}/packages/old.run")
    before = ssh(node, f"sha256sum {STATE}/packages/old.run").stdout
    fleet.inject_fault(node, 1, "disk-full", target="state", free_kb=8)
    assert ssh(node, f"sha256sum {STATE}/packages/old.run").stdout == before    # the content is still there
    full = ssh(node, f"head -c 100000 /dev/urandom > {STATE}/packages/new.run")
    assert full.returncode != 0 and "No space left on device" in full.stderr
    # what was written before the disk filled up stays; freeing it makes room again (8 KiB were free)
    assert ssh(node, f"rm {STATE}/packages/new.run && echo small > {STATE}/note").returncode == 0
    fleet.inject_fault(node, 1, "clear")
    assert ssh(node, f"df --output=fstype {STATE} | tail -1").stdout.strip() != "tmpfs"
    assert ssh(node, f"cat {STATE}/note").stdout == "small\n"                    # written while full: kept
    assert ssh(node, f"sha256sum {STATE}/packages/old.run").stdout == before
    assert ssh(node, f"head -c 100000 /dev/urandom > {STATE}/packages/new.run").returncode == 0
    ssh(node, f"rm -rf {STATE}")


def test_podman_stop_and_start_with_sim_init(node: Path) -> None:
    name = fleet.load_fleet(node)["hosts"][0]["name"]
    assert "sim-init" in fleet.host_exec(node, 1, "cat", "/proc/1/cmdline").stdout
    started = time.monotonic()
    podman("stop", "-t", "10", name)
    assert time.monotonic() - started < 8        # SIGTERM handled: no wait for the 10 s kill
    podman("start", name)
    fleet._wait_sshd(name, "127.0.78.1", time.monotonic() + 30)
    assert ssh(node, "true").returncode == 0     # same host key: known_hosts still valid
