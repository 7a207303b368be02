"""SIMULATOR test: a real 2-host fleet (podman containers, sshd on 127.0.9.1-2, host key checking on)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ascend_sim import fleet

pytestmark = pytest.mark.fleet


def _ssh(fleet_dir: Path, host: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*fleet.ssh_argv(fleet_dir, host), command], capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if not (shutil.which("podman") and shutil.which("debootstrap") and shutil.which("ssh")):
        pytest.skip("needs podman, debootstrap and ssh (scripts/setup.sh)")
    folder = tmp_path_factory.mktemp("fleet9")
    fleet.create(folder, hosts=2, models=["910B3", "A3-9392"], fleet_octet=9, cann_versions=["8.5.0", "8.3.RC1"],
                 with_torch=False)
    yield folder
    fleet.destroy(folder)


def test_npu_smi_over_ssh(fleet_dir: Path) -> None:
    one = _ssh(fleet_dir, "node1", "npu-smi info")
    assert one.returncode == 0, one.stderr
    assert one.stdout.count("910B3") == 8 and "| No running processes found in NPU 7" in one.stdout
    two = _ssh(fleet_dir, "node2", "hostname && npu-smi info -t board -i 0 -c 1")
    assert two.returncode == 0, two.stderr
    assert two.stdout.startswith("asim9-node2\n") and "NPU Name                       : 9392" in two.stdout


def test_ascend_files(fleet_dir: Path) -> None:
    one = _ssh(fleet_dir, "node1", ". /usr/local/Ascend/cann/set_env.sh && echo $ASCEND_OPP_PATH && "
                                   "cat /usr/local/Ascend/cann/$(uname -m)-linux/ascend_toolkit_install.info "
                                   "/usr/local/Ascend/driver/version.info /etc/ascend_install.info")
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("/usr/local/Ascend/cann/opp\n")
    assert "version=8.5.0" in one.stdout and "Version=25.5.0" in one.stdout and "Driver_Install_Path_Param" in one.stdout
    two = _ssh(fleet_dir, "node2", "readlink /usr/local/Ascend/ascend-toolkit/latest && "
                                   "test -f /usr/local/Ascend/ascend-toolkit/set_env.sh && test ! -e /usr/local/Ascend/cann")
    assert two.returncode == 0 and two.stdout == "8.3.RC1\n"


def test_strict_host_key_checking(fleet_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    argv = [a.replace(str(fleet_dir / "known_hosts"), str(empty)) for a in fleet.ssh_argv(fleet_dir, 1)]
    proc = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode != 0 and "Host key verification failed" in proc.stderr


def test_fault_round_trip(fleet_dir: Path) -> None:
    fleet.inject_fault(fleet_dir, "node1", "card-health", npu=2, level="Alarm")
    out = _ssh(fleet_dir, "node1", "npu-smi info").stdout
    assert "| 2     910B3               | Alarm         |" in out
    fleet.inject_fault(fleet_dir, 1, "remove-npu-smi")
    assert _ssh(fleet_dir, "node1", "command -v npu-smi").returncode != 0
    fleet.inject_fault(fleet_dir, 1, "clear")
    assert "Alarm" not in _ssh(fleet_dir, "node1", "npu-smi info").stdout


def test_list_shows_the_fleet(fleet_dir: Path) -> None:
    mine = [f for f in fleet.list_fleets() if f["fleet_id"] == "asim9"]
    assert mine and [h["state"] for h in mine[0]["hosts"]] == ["running", "running"]
    assert [h["ready"] for h in mine[0]["hosts"]] == [True, True]
    assert mine[0]["dir"] == str(fleet_dir.resolve())
