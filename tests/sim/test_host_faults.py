"""SIMULATOR tests: the plumbing of the host faults host-down, partition, slow-host and disk-full (no containers).

What the faults do on a real fleet is shown by tests/e2e/test_faults.py; here: host.json, the sim-apply state and
actions they lead to, the PID 1 supervisor (sim-init) that keeps sshd stopped, and the slowed tools.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ascend_sim import fleet
from ascend_sim.image import SimError
from ascend_sim.node import npusmi, sim_apply, sim_init
from ascend_sim.node.simnode import HostConfigError, normalize, slow_seconds

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("_sim_torch_npu_host_faults", ROOT / "ascend_sim/node/torch_npu/_host.py")
torch_npu_host = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(torch_npu_host)


def _config() -> dict[str, Any]:
    return fleet.plan_hosts("f", 2, 1, npus=1)[0]["config"]


# ------------------------------------------------------------------------------------------- host.json

def test_host_down_marks_the_host_down_until_cleared() -> None:
    config, actions = fleet.apply_fault(_config(), "host-down")
    assert config["down"] == {"kind": "host-down", "until": None}
    assert actions == ["host-down"]
    assert config["fault_log"][-1] == {"fault": "host-down"}


def test_partition_lasts_the_given_seconds() -> None:
    config, actions = fleet.apply_fault(_config(), "partition", seconds=12, now=1000.0)
    assert config["down"] == {"kind": "partition", "until": 1012.0}
    assert actions == ["partition"]
    assert config["fault_log"][-1] == {"fault": "partition", "seconds": 12}   # the clock is not logged
    default, _ = fleet.apply_fault(_config(), "partition", now=0.0)
    assert default["down"]["until"] == 20.0


@pytest.mark.parametrize("seconds", [0, -1, 3601, "soon"])
def test_partition_and_slow_host_refuse_bad_seconds(seconds: Any) -> None:
    for fault in ("partition", "slow-host"):
        with pytest.raises(SimError, match="seconds"):
            fleet.apply_fault(_config(), fault, seconds=seconds)


def test_slow_host_what_defaults_to_everything_and_is_checked() -> None:
    config, actions = fleet.apply_fault(_config(), "slow-host")
    assert config["slow"] == {"seconds": 2.0, "what": ["ssh", "npu-smi", "check"]} and actions == []
    config, _ = fleet.apply_fault(_config(), "slow-host", seconds=0.5, what="check, npu-smi")
    assert config["slow"] == {"seconds": 0.5, "what": ["npu-smi", "check"]}
    assert slow_seconds(config, "check") == 0.5 and slow_seconds(config, "ssh") == 0.0
    with pytest.raises(SimError, match="what"):
        fleet.apply_fault(_config(), "slow-host", what="ssh,disk")


def test_disk_full_targets_and_sizes() -> None:
    config, actions = fleet.apply_fault(_config(), "disk-full")
    assert config["disk_full"] == {"target": "state", "free_kb": 16} and actions == ["disk-full"]
    # another disk-full on a full host: the old mount goes first
    again, actions = fleet.apply_fault(config, "disk-full", target="opp", free_kb=0)
    assert again["disk_full"] == {"target": "opp", "free_kb": 0} and actions == ["disk-clear", "disk-full"]
    with pytest.raises(SimError, match="target"):
        fleet.apply_fault(_config(), "disk-full", target="/etc")
    with pytest.raises(SimError, match="free_kb"):
        fleet.apply_fault(_config(), "disk-full", free_kb=-1)


def test_clear_undoes_every_host_fault() -> None:
    config = _config()
    for fault, kw in (("host-down", {}), ("slow-host", {}), ("disk-full", {"target": "opp"})):
        config, _ = fleet.apply_fault(config, fault, **kw)
    cleared, actions = fleet.apply_fault(config, "clear")
    assert (cleared["down"], cleared["slow"], cleared["disk_full"]) == (None, None, None)
    assert actions == ["disk-clear", "undo-served-by"]      # unmounting needs the privileged exec
    assert fleet.apply_fault(cleared, "clear")[1] == ["undo-served-by"]   # nothing mounted; undo is a no-op


@pytest.mark.parametrize("raw", [
    {"down": {"kind": "nap"}}, {"down": "yes"}, {"down": {"kind": "partition", "until": "later"}},
    {"slow": {"seconds": -1, "what": ["ssh"]}}, {"slow": {"seconds": 1, "what": []}},
    {"slow": {"seconds": 1, "what": ["gpu"]}}, {"disk_full": {"target": "home", "free_kb": 1}},
    {"disk_full": {"target": "state", "free_kb": -5}},
])
def test_normalize_rejects_malformed_fault_keys(raw: dict) -> None:
    with pytest.raises(HostConfigError):
        normalize(raw)


def test_cli_passes_the_fault_options() -> None:
    args = fleet._parser().parse_args(["inject-fault", "d", "2", "slow-host", "--seconds", "1.5", "--what", "ssh"])
    assert fleet._cli_fault_kw(args) == {"seconds": 1.5, "what": "ssh"}
    args = fleet._parser().parse_args(["inject-fault", "d", "2", "disk-full", "--target", "opp", "--free-kb", "0"])
    assert fleet._cli_fault_kw(args) == {"target": "opp", "free_kb": 0}


# ------------------------------------------------------------------------------------------- inject_fault

@pytest.fixture()
def fake_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A fleet folder with one host whose podman and sshd waits are recorded instead of run."""
    planned = fleet.plan_hosts("asimx", 99, 1, npus=1)
    (tmp_path / "hosts" / planned[0]["name"]).mkdir(parents=True)
    (tmp_path / "hosts" / planned[0]["name"] / "host.json").write_text(json.dumps(planned[0]["config"]))
    (tmp_path / "fleet.json").write_text(json.dumps({"fleet_id": "asimx", "dir": str(tmp_path), "hosts": [
        {"name": planned[0]["name"], "index": 1, "address": planned[0]["address"]}]}))
    calls: dict[str, Any] = {"podman": [], "closed": [], "sshd": []}

    def podman(*args: str, check: bool = True, timeout: float | None = 300) -> subprocess.CompletedProcess[str]:
        calls["podman"].append(args)
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(fleet, "podman", podman)
    monkeypatch.setattr(fleet, "_wait_port_closed", lambda address, until: calls["closed"].append(address))
    monkeypatch.setattr(fleet, "_wait_sshd", lambda name, address, deadline: calls["sshd"].append(address))
    return {"dir": tmp_path, "calls": calls}


def test_inject_fault_mounts_with_a_privileged_exec_only(fake_fleet: dict[str, Any]) -> None:
    calls = fake_fleet["calls"]
    fleet.inject_fault(fake_fleet["dir"], 1, "disk-full", target="state")
    assert calls["podman"][-1][:3] == ("exec", "--privileged", "asimx-node1")
    assert calls["podman"][-1][-1] == "--action=disk-full"
    fleet.inject_fault(fake_fleet["dir"], 1, "slow-host", seconds=1)
    assert "--privileged" not in calls["podman"][-1]
    fleet.inject_fault(fake_fleet["dir"], 1, "clear")
    assert calls["podman"][-1][:2] == ("exec", "--privileged") and "--action=disk-clear" in calls["podman"][-1]
    assert calls["podman"][-1][-1] == "--action=undo-served-by"


def test_inject_fault_waits_for_the_port_to_close_and_clear_for_sshd(fake_fleet: dict[str, Any]) -> None:
    calls = fake_fleet["calls"]
    config = fleet.inject_fault(fake_fleet["dir"], 1, "host-down")
    assert calls["podman"][-1][-1] == "--action=host-down" and calls["closed"] == ["127.0.99.1"]
    assert json.loads((fake_fleet["dir"] / "hosts/asimx-node1/host.json").read_text())["down"] == config["down"]
    fleet.inject_fault(fake_fleet["dir"], 1, "clear")
    assert calls["sshd"] == ["127.0.99.1"]
    fleet.inject_fault(fake_fleet["dir"], 1, "clear")          # not down any more: no wait
    assert calls["sshd"] == ["127.0.99.1"]


# ------------------------------------------------------------------------------------------- sim-apply

def cfg(**kw: Any) -> dict[str, Any]:
    return normalize({"npu_count": 1, "arch": "x86_64", **kw})


def test_sshd_down_file_follows_host_json(tmp_path: Path) -> None:
    node = tmp_path / "node"
    node.mkdir()
    down = tmp_path / "run/ascend-sim/sshd-down"
    sim_apply.apply(cfg(down={"kind": "partition", "until": 50.5}), tmp_path, node)
    assert json.loads(down.read_text()) == {"kind": "partition", "until": 50.5}
    assert sim_init.down_reason(down.read_text(), 10.0) == "partition for 40 more s"
    assert sim_init.down_reason(down.read_text(), 51.0) is None
    sim_apply.apply(cfg(), tmp_path, node)
    assert not down.exists()


def test_slow_ssh_swaps_root_login_shell_and_back(tmp_path: Path) -> None:
    node = tmp_path / "node"
    node.mkdir()
    passwd = tmp_path / "etc/passwd"
    passwd.parent.mkdir()
    passwd.write_text("root:x:0:0:root:/root:/bin/zsh\nbin:x:2:2:bin:/bin:/usr/sbin/nologin\n")
    sim_apply.apply(cfg(slow={"seconds": 1.5, "what": ["ssh"]}), tmp_path, node)
    assert sim_apply.login_shell(passwd.read_text(), "root") == sim_apply.SLOW_SHELL
    assert (tmp_path / "var/lib/ascend-sim/slow-ssh").read_text() == "1.5\n"
    assert "bin:x:2:2:bin:/bin:/usr/sbin/nologin" in passwd.read_text()
    sim_apply.apply(cfg(slow={"seconds": 1.5, "what": ["check"]}), tmp_path, node)   # ssh no longer slowed
    assert sim_apply.login_shell(passwd.read_text(), "root") == "/bin/zsh"
    assert not (tmp_path / "var/lib/ascend-sim/slow-ssh").exists()


def test_slow_shell_sleeps_then_runs_the_command_in_bash(tmp_path: Path) -> None:
    script = (ROOT / "ascend_sim/node/sim-slow-shell").read_text()
    assert f"cat {sim_apply.SLOW_SSH}" in script and 'exec /bin/bash "$@"' in script
    local = tmp_path / "shell"
    local.write_text(script.replace(sim_apply.SLOW_SSH, str(tmp_path / "slow")))
    (tmp_path / "slow").write_text("0.3\n")
    started = time.monotonic()
    out = subprocess.run(["sh", str(local), "-c", "echo $0 ran"], capture_output=True, text=True, check=True).stdout
    assert out.endswith("ran\n") and time.monotonic() - started >= 0.3


def test_victims_of_host_down_and_partition() -> None:
    procs = [(1, 0, "python3"), (20, 1, "sshd"), (30, 20, "sshd"), (31, 30, "bash"), (32, 31, "python3"),
             (40, 0, "python3")]
    keep = sim_apply.ancestors(40, procs)
    assert keep == {40}
    assert sim_apply.pick_victims(procs, "host-down", keep) == [20, 30, 31, 32]
    assert sim_apply.pick_victims(procs, "partition", keep) == [20, 30]     # what they started keeps running
    assert sim_apply.ancestors(32, procs) == {32, 31, 30, 20, 1}


def test_wait_gone_waits_until_the_killed_process_is_reaped() -> None:
    child = subprocess.Popen(["sleep", "60"])
    os.kill(child.pid, signal.SIGKILL)
    time.sleep(0.2)
    assert Path(f"/proc/{child.pid}").exists()                 # killed but not reaped: a zombie, as ps shows it
    assert sim_apply.wait_gone([child.pid], timeout=0.3) == [child.pid]
    child.wait()                                               # the parent (sim-init on a node) reaps it
    assert sim_apply.wait_gone([child.pid], timeout=0.3) == []


def test_list_processes_reads_proc() -> None:
    procs = sim_apply.list_processes()
    me = [p for p in procs if p[0] == os.getpid()]
    assert me and me[0][1] == os.getppid()


def test_kill_actions_refuse_outside_a_node(tmp_path: Path) -> None:
    node = tmp_path / "node"
    node.mkdir()
    for action in ("host-down", "partition", "disk-full"):
        with pytest.raises(sim_apply.ActionError):
            sim_apply.apply(cfg(disk_full={"target": "state", "free_kb": 1}), tmp_path, node, [action])
    sim_apply.apply(cfg(), tmp_path, node, ["disk-clear"])      # nothing mounted: nothing to do


def test_mountinfo_and_tmpfs_size() -> None:
    text = ("22 1 0:21 / /proc rw - proc proc rw\n"
            "47 121 0:40 / /var/lib/ascend-fa rw,relatime - tmpfs ascend-sim-disk-full rw,size=112k,mode=755\n"
            "48 121 0:41 / /mnt/with\\040space rw - ext4 /dev/vda rw\n")
    assert sim_apply.parse_mountinfo(text) == {"/proc": "proc", "/var/lib/ascend-fa": "tmpfs", "/mnt/with space": "ext4"}
    assert sim_apply.tmpfs_size(100000, 16) == 118784          # 100000 + 16 KiB, whole pages
    assert sim_apply.tmpfs_size(0, 0) == 4096                  # never 0: size=0 means "no limit" to tmpfs


def test_disk_paths(tmp_path: Path) -> None:
    node = sim_apply.Node(cfg(cann_version="8.5.0"), tmp_path, tmp_path / "node")
    assert sim_apply.disk_path(node, "state") == tmp_path / "var/lib/ascend-fa"
    assert sim_apply.disk_path(node, "opp") == tmp_path / "usr/local/Ascend/cann-8.5.0/opp/vendors"


# ------------------------------------------------------------------------------------------- sim-init

def _children(pid: int) -> list[int]:
    return [p for p, ppid, _ in sim_apply.list_processes() if ppid == pid]


def _wait(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sim_init_keeps_sshd_stopped_while_the_down_file_says_so(tmp_path: Path) -> None:
    fake_sshd = tmp_path / "sshd"
    fake_sshd.write_text("#!/bin/sh\nexec sleep 600\n")
    fake_sshd.chmod(0o755)
    down = tmp_path / "sshd-down"
    proc = subprocess.Popen([sys.executable, str(ROOT / "ascend_sim/node/sim-init"), "--address", "127.0.0.1",
                             "--host-key", "k", "--down-file", str(down), "--sshd", str(fake_sshd), "--poll", "0.05"],
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: len(_children(proc.pid)) == 1)
        first = _children(proc.pid)[0]
        os.kill(first, signal.SIGKILL)                    # sshd died: started again
        _wait(lambda: _children(proc.pid) not in ([], [first]))
        down.write_text(json.dumps({"kind": "host-down", "until": None}))
        _wait(lambda: _children(proc.pid) == [])          # down: stopped and not restarted
        time.sleep(0.3)
        assert _children(proc.pid) == []
        down.write_text(json.dumps({"kind": "partition", "until": time.time() + 0.5}))
        time.sleep(0.2)
        assert _children(proc.pid) == []
        _wait(lambda: len(_children(proc.pid)) == 1)     # the partition is over: back by itself
        proc.send_signal(signal.SIGTERM)                  # podman stop
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = proc.stderr.read()
    assert "sshd stays stopped: host-down" in log and "sshd may run" in log


def test_down_reason_of_unreadable_content_is_down() -> None:
    assert sim_init.down_reason(None, 0) is None
    assert sim_init.down_reason("{", 0).startswith("down")
    assert sim_init.down_reason('{"kind": "host-down", "until": null}', 1e12) == "host-down"


# ------------------------------------------------------------------------------------------- slowed tools

def test_npu_smi_sleeps_when_slowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    host = tmp_path / "host.json"
    host.write_text(json.dumps({"npu_count": 1, "slow": {"seconds": 2.5, "what": ["npu-smi"]}}))
    monkeypatch.setenv("ASCEND_SIM_HOST_JSON", str(host))
    slept: list[float] = []
    monkeypatch.setattr(npusmi.time, "sleep", slept.append)
    assert npusmi.main(["info"]) == 0
    assert slept == [2.5] and "910B3" in capsys.readouterr().out
    host.write_text(json.dumps({"npu_count": 1, "slow": {"seconds": 2.5, "what": ["ssh"]}}))
    assert npusmi.main(["info"]) == 0 and slept == [2.5]


def test_torch_npu_stand_in_reads_the_check_delay() -> None:
    assert torch_npu_host.slow_seconds("check", {"slow": {"seconds": 7, "what": ["check"]}}) == 7.0
    assert torch_npu_host.slow_seconds("check", {"slow": {"seconds": 7, "what": ["npu-smi"]}}) == 0.0
    assert torch_npu_host.slow_seconds("check", {"slow": None}) == 0.0
    init = (ROOT / "ascend_sim/node/torch_npu/__init__.py").read_text()
    assert '_host.slow_seconds("check")' in init
