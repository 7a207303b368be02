"""ascend_facts on fake Ascend trees (both CANN layouts) with recorded npu-smi outputs."""

from __future__ import annotations

import os
from pathlib import Path

import ascend_facts
import pytest
from test_ascend_detect import DRIVER_INFO, FIRMWARE_INFO, INSTALL_INFO

DATA = Path(__file__).resolve().parent.parent / "data"
BOARD_A2 = "NPU ID                         : 0\nChip ID                        : 0\nChip Type                      : Ascend\n" \
           "Chip Name                      : 910B2\n"
BOARD_A3 = "NPU ID                         : 0\nNPU Name                       : 9392\nChip ID                        : 0\n" \
           "Chip Name                      : Ascend910\n"


def make_home(tmp: Path, layout: str, version: str, cfg: str | None = None, arch: str = "x86_64") -> Path:
    home = tmp / "Ascend"
    (home / "driver").mkdir(parents=True)
    (home / "driver" / "version.info").write_text(DRIVER_INFO)
    (home / "firmware").mkdir()
    (home / "firmware" / "version.info").write_text(FIRMWARE_INFO)
    if layout == "toolkit":
        real = home / "ascend-toolkit" / version
        real.mkdir(parents=True)
        (home / "ascend-toolkit" / "latest").symlink_to(version)
        (home / "ascend-toolkit" / "set_env.sh").write_text("export ASCEND_TOOLKIT_HOME=x\n")
    else:
        real = home / f"cann-{version}"
        real.mkdir(parents=True)
        (home / "cann").symlink_to(f"cann-{version}")
        (real / "set_env.sh").write_text("export ASCEND_HOME_PATH=x\n")
        (real / f"{arch}-linux").mkdir()
        (real / f"{arch}-linux" / "ascend_ops_install.info").write_text("package_name=Ascend-cann-910b-ops\n")
    (real / f"{arch}-linux").mkdir(exist_ok=True)
    (real / f"{arch}-linux" / "ascend_toolkit_install.info").write_text(
        f"package_name=Ascend-cann-toolkit\nversion={version}\ninnerversion=V100R001C19SPC001B155\n"
        f"compatible_version=[V100R001C13,V100R001C19],[V100R001C30]\narch={arch}\nos=linux\npath={real}\n")
    if cfg:
        (real / "version.cfg").write_text(cfg)
    return home


def fake_npu_smi(tmp: Path) -> str:
    exe = tmp / "npu-smi"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    return str(exe)


def runner(table: str, board: str, versions: str = '{"python_version": "3.11.2", "torch_version": "2.9.0", '
                                                     '"torch_npu_version": "2.9.0.post2"}'):
    def run(argv):
        if argv[1:] == ["info"]:
            return 0, table, ""
        if argv[1:] == ["info", "-m"]:
            return 1, "", "not supported"
        if argv[1:4] == ["info", "-t", "board"]:
            return 0, board, ""
        if argv[1] == "-c":
            return 0, versions, ""
        raise AssertionError(argv)
    return run


def params(tmp: Path, home: Path, smi: str) -> dict:
    return {"ascend_home": str(home), "npu_smi": smi, "install_info": str(tmp / "ascend_install.info"),
            "python": "python3", "state_dir": str(tmp / "state"), "disk_paths": [str(tmp)], "check_drift": True}


def test_toolkit_layout_a2(tmp_path):
    home = make_home(tmp_path, "toolkit", "8.0.0", cfg="toolkit_installed_version=[7.0.0.5.242:7.0.RC1][7.6.0.1.220:8.0.0]\n"
                                                    "toolkit_running_version=[7.6.0.1.220:8.0.0]\n")
    (tmp_path / "ascend_install.info").write_text(INSTALL_INFO)
    f = ascend_facts.Facts(params(tmp_path, home, fake_npu_smi(tmp_path)),
                           runner((DATA / "npu_smi_a2_910b2.txt").read_text(), BOARD_A2), arch="x86_64").collect()
    assert f["cann_layout"] == "toolkit" and f["cann_version"] == "8.0.0"
    assert f["cann_installed_versions"] == ["7.0.RC1", "8.0.0"]
    assert f["cann_set_env"].endswith("ascend-toolkit/set_env.sh")
    assert f["driver_version"] == "24.1.rc3" and f["firmware_version"] == "7.5.0.1.129"
    assert f["soc_version"] == "ascend910b2" and f["soc_family"] == "ascend910b" and f["fa_supported"]
    assert f["npu_count"] == 2 and f["device_count"] == 2
    assert f["chips"][1]["logic_id"] == 1
    assert f["torch_npu_version"] == "2.9.0.post2"
    assert f["fa_package"] is None and f["fa_package_state"] == "absent"
    assert f["errors"] == []
    assert f["cpu_count"] >= 1 and f["mem_total_mb"] > 0 and f["disk_free_mb"][str(tmp_path)] > 0


def test_cann_layout_a3(tmp_path):
    home = make_home(tmp_path, "cann", "8.5.0")
    f = ascend_facts.Facts(params(tmp_path, home, fake_npu_smi(tmp_path)),
                           runner((DATA / "npu_smi_a3.txt").read_text(), BOARD_A3), arch="x86_64").collect()
    assert f["cann_layout"] == "cann" and f["cann_version"] == "8.5.0"
    assert f["cann_home"] == os.path.realpath(home / "cann-8.5.0")
    assert f["cann_ops_package"] == "Ascend-cann-910b-ops"
    assert f["soc_version"] == "ascend910_9392" and f["soc_family"] == "ascend910_93"
    assert f["npu_count"] == 1 and f["device_count"] == 2
    assert [e["source"] for e in f["errors"]] == ["install_info"]


def test_missing_everything_is_reported_not_raised(tmp_path):
    (tmp_path / "Ascend").mkdir()
    p = params(tmp_path, tmp_path / "Ascend", "npu-smi-that-does-not-exist")
    f = ascend_facts.Facts(p, runner("", ""), arch="x86_64").collect()
    sources = {e["source"] for e in f["errors"]}
    assert {"driver", "firmware", "cann", "npu-smi"} <= sources
    assert f["cann_version"] is None and f["soc_family"] is None and f["fa_supported"] is False


def test_npu_smi_failure_and_310p(tmp_path):
    home = make_home(tmp_path, "cann", "8.5.0")

    def failing(argv):
        return (1, "", "dcmi module initialize failed. ret is -8005") if argv[1:] == ["info"] else (1, "", "")
    f = ascend_facts.Facts(params(tmp_path, home, fake_npu_smi(tmp_path)), failing, arch="x86_64").collect()
    assert any("dcmi module initialize failed" in e["reason"] for e in f["errors"])
    f = ascend_facts.Facts(params(tmp_path, home, fake_npu_smi(tmp_path)),
                           runner((DATA / "npu_smi_310p3.txt").read_text(),
                                  "Chip Type : Ascend\nChip Name : 310P3\n"), arch="x86_64").collect()
    assert f["soc_version"] == "ascend310p3" and f["fa_supported"] is False


@pytest.mark.parametrize("sample", ["npu_smi_a2_910b2.txt", "npu_smi_a3.txt", "npu_smi_310p3.txt"])
def test_every_sample_parses_through_the_module(tmp_path, sample):
    home = make_home(tmp_path, "cann", "8.5.0")
    f = ascend_facts.Facts(params(tmp_path, home, fake_npu_smi(tmp_path)),
                           runner((DATA / sample).read_text(), ""), arch="x86_64").collect()
    assert f["chips"], f["errors"]
    assert f["soc_version"] is not None or any(e["source"] == "npu-smi" for e in f["errors"])
