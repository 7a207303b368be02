"""SIMULATOR tests: sim-apply lays out the real CANN/driver files under a temporary root (no containers)."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ascend_sim.node import sim_apply
from ascend_sim.node.simnode import normalize

ARCH = "x86_64"


def cfg(**kw: Any) -> dict[str, Any]:
    return normalize({"npu_count": 2, "arch": ARCH, **kw})


@pytest.fixture()
def node_dir(tmp_path: Path) -> Path:
    """A node folder without the other helpers' stand-ins (they are tested separately)."""
    folder = tmp_path / "node"
    folder.mkdir()
    return folder


def apply(root: Path, node_dir: Path, actions: tuple[str, ...] = (), **kw: Any) -> list[str]:
    return sim_apply.apply(cfg(**kw), root, node_dir, actions)


def info(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_cann_layout(tmp_path: Path, node_dir: Path) -> None:
    apply(tmp_path, node_dir, model="A3-9392", cann_version="8.5.0")
    ascend = tmp_path / "usr/local/Ascend"
    assert (ascend / "cann").is_symlink() and (ascend / "cann").readlink() == Path("cann-8.5.0")
    assert not (ascend / "ascend-toolkit").exists()
    toolkit = info(ascend / f"cann/{ARCH}-linux/ascend_toolkit_install.info")
    assert list(toolkit) == ["package_name", "version", "innerversion", "compatible_version", "arch", "os", "path"]
    assert toolkit["version"] == "8.5.0" and toolkit["path"] == f"/usr/local/Ascend/cann-8.5.0/{ARCH}-linux"
    assert info(ascend / f"cann/{ARCH}-linux/ascend_ops_install.info")["package_name"] == "Ascend-cann-A3-ops"
    assert info(ascend / "cann/opp/version.info") == {
        "Version": "8.5.0.2.220", "version_dir": "8.5.0", "timestamp": "20251117_000024591",
        "required_package_amct_acl_version": '"8.5"'}
    assert (ascend / "cann/set_env.sh").is_file() and (ascend / "cann/opp/vendors").is_dir()
    assert (ascend / "cann/opp/built-in/op_impl/ai_core/tbe/kernel/ascend910_93").is_dir()
    assert (tmp_path / "usr/local/bin/npu-smi").readlink() == Path("/opt/ascend-sim/node/npu-smi")
    pth = tmp_path / "usr/local/lib/python3.11/dist-packages/ascend-sim-torch.pth"
    assert pth.read_text() == "/opt/ascend-sim/torch\n"


def test_toolkit_layout(tmp_path: Path, node_dir: Path) -> None:
    apply(tmp_path, node_dir, cann_version="8.3.RC1")
    toolkit = tmp_path / "usr/local/Ascend/ascend-toolkit"
    assert (toolkit / "latest").readlink() == Path("8.3.RC1")
    assert (toolkit / "set_env.sh").is_file() and not (tmp_path / "usr/local/Ascend/cann").exists()
    data = info(toolkit / f"latest/{ARCH}-linux/ascend_toolkit_install.info")
    assert data["path"] == f"/usr/local/Ascend/ascend-toolkit/8.3.RC1/{ARCH}-linux"
    assert not (toolkit / f"latest/{ARCH}-linux/ascend_ops_install.info").exists()
    cfg_lines = (toolkit / "latest/version.cfg").read_text().splitlines()
    assert cfg_lines[0] == "# version: 1.0"
    assert "toolkit_running_version=[8.3.0.1.220:8.3.RC1]" in cfg_lines


def test_driver_firmware_install_info(tmp_path: Path, node_dir: Path) -> None:
    apply(tmp_path, node_dir, driver_version="24.1.rc3", firmware_version="7.5.0.1.129")
    drv = info(tmp_path / "usr/local/Ascend/driver/version.info")
    assert drv["Version"] == drv["package_version"] == "24.1.rc3"
    assert drv["compatible_version_fw"] == "[7.0.0,7.9.99]"
    fw = info(tmp_path / "usr/local/Ascend/firmware/version.info")
    assert fw == {"Version": "7.5.0.1.129", "firmware_version": "1.0", "package_version": "24.1.rc3",
                  "compatible_version_drv": "[24.1,24.1.]"}
    install = info(tmp_path / "etc/ascend_install.info")
    assert install["Driver_Install_Path_Param"] == "/usr/local/Ascend" and install["UserName"] == "HwHiAiUser"


def _sourced_env(script: Path) -> dict[str, str]:
    out = subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "sh", "-c", f". {script} && env"],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.mark.parametrize(("version", "home"), [("8.5.0", "/usr/local/Ascend/cann"),
                                                ("8.2.RC1", "/usr/local/Ascend/ascend-toolkit/latest")])
def test_set_env_exports(tmp_path: Path, node_dir: Path, version: str, home: str) -> None:
    apply(tmp_path, node_dir, cann_version=version)
    rel = "cann/set_env.sh" if version == "8.5.0" else "ascend-toolkit/set_env.sh"
    env = _sourced_env(tmp_path / "usr/local/Ascend" / rel)
    for key in ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH", "ASCEND_AICPU_PATH"):
        assert env[key] == home
    assert env["ASCEND_OPP_PATH"] == f"{home}/opp"
    ld = env["LD_LIBRARY_PATH"].split(":")
    assert ld[0] == f"{home}/tools/aml/lib64" and f"{home}/lib64" in ld
    assert ld[-3:] == ["/usr/local/Ascend/driver/lib64", "/usr/local/Ascend/driver/lib64/common",
                       "/usr/local/Ascend/driver/lib64/driver"]
    assert "" not in ld
    path = env["PATH"].split(":")
    assert path == [f"{home}/bin", f"{home}/compiler/ccec_compiler/bin", f"{home}/tools/ccec_compiler/bin",
                    "/usr/bin", "/bin"]
    assert env["PYTHONPATH"] == f"{home}/python/site-packages:{home}/opp/built-in/op_impl/ai_core/tbe"


def test_idempotent(tmp_path: Path, node_dir: Path) -> None:
    assert apply(tmp_path, node_dir)
    install = tmp_path / f"usr/local/Ascend/cann/{ARCH}-linux/ascend_toolkit_install.info"
    before = install.stat().st_mtime_ns
    vendor = tmp_path / "usr/local/Ascend/cann/opp/vendors/ascendfa_transformer"
    vendor.mkdir()
    assert apply(tmp_path, node_dir) == []
    assert install.stat().st_mtime_ns == before and vendor.is_dir()


def _vendor(root: Path, name: str = "ascendfa_transformer") -> Path:
    vendors = root / "usr/local/Ascend/cann/opp/vendors"
    lib = vendors / name / "op_api/lib/libcust_opapi.so"
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"\x7fELF good")
    (vendors / "config.ini").write_text(f"load_priority={name}\n")
    return lib


def test_cann_upgrade_wipes_vendors_but_config(tmp_path: Path, node_dir: Path) -> None:
    apply(tmp_path, node_dir, cann_version="8.5.0")
    _vendor(tmp_path)
    changes = apply(tmp_path, node_dir, cann_version="8.5.1")
    ascend = tmp_path / "usr/local/Ascend"
    assert "upgraded CANN cann-8.5.0 -> cann-8.5.1" in changes
    assert not (ascend / "cann-8.5.0").exists() and (ascend / "cann").readlink() == Path("cann-8.5.1")
    assert [p.name for p in (ascend / "cann/opp/vendors").iterdir()] == ["config.ini"]
    assert info(ascend / f"cann/{ARCH}-linux/ascend_toolkit_install.info")["version"] == "8.5.1"
    assert "toolkit_installed_version=[8.5.0.2.220:8.5.0][8.5.1.2.220:8.5.1]" in (ascend / "cann/version.cfg").read_text()


def test_layout_change_drops_old_entry_points(tmp_path: Path, node_dir: Path) -> None:
    apply(tmp_path, node_dir, cann_version="8.3.RC1")
    apply(tmp_path, node_dir, cann_version="8.5.0")
    ascend = tmp_path / "usr/local/Ascend"
    assert not (ascend / "ascend-toolkit").exists() and (ascend / "cann-8.5.0/opp").is_dir()


def test_no_cann_and_no_npu_smi_faults(tmp_path: Path, node_dir: Path) -> None:
    apply(tmp_path, node_dir)
    apply(tmp_path, node_dir, faults=["no-cann", "remove-npu-smi"])
    ascend = tmp_path / "usr/local/Ascend"
    assert sorted(p.name for p in ascend.iterdir()) == ["add-ons", "driver", "firmware"]
    assert not (tmp_path / "usr/local/bin/npu-smi").exists()
    apply(tmp_path, node_dir)
    assert (ascend / "cann/set_env.sh").is_file() and (tmp_path / "usr/local/bin/npu-smi").is_symlink()


def test_corrupt_lib_action(tmp_path: Path, node_dir: Path) -> None:
    apply(tmp_path, node_dir)
    with pytest.raises(sim_apply.ActionError):
        apply(tmp_path, node_dir, ("corrupt-lib",))
    lib = _vendor(tmp_path)
    apply(tmp_path, node_dir, ("corrupt-lib",))
    assert lib.read_bytes().startswith(b"ascend-sim: corrupted")


def test_vendor_not_first_action(tmp_path: Path, node_dir: Path) -> None:
    apply(tmp_path, node_dir)
    _vendor(tmp_path)
    config = tmp_path / "usr/local/Ascend/cann/opp/vendors/config.ini"
    apply(tmp_path, node_dir, ("vendor-not-first",))
    assert config.read_text() == "load_priority=customize,ascendfa_transformer\n"
    apply(tmp_path, node_dir, ("vendor-not-first",))
    assert config.read_text() == "load_priority=ascendfa_transformer,customize\n"


def test_torch_npu_stand_in_and_version(tmp_path: Path, node_dir: Path) -> None:
    (node_dir / "torch_npu").mkdir()
    (node_dir / "torch_npu/__init__.py").write_text("__version__ = 'sim'\n")
    apply(tmp_path, node_dir, torch_npu_version="2.9.0")
    site = tmp_path / "usr/local/lib/python3.11/dist-packages"
    assert (site / "torch_npu/__init__.py").is_file()
    versions = [d.version for d in importlib.metadata.distributions(path=[str(site)]) if d.name == "torch_npu"]
    assert versions == ["2.9.0"]
    apply(tmp_path, node_dir, torch_npu_version="2.1.0.post4")
    versions = [d.version for d in importlib.metadata.distributions(path=[str(site)]) if d.name == "torch_npu"]
    assert versions == ["2.1.0.post4"]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_cann_stand_ins_are_installed(tmp_path: Path, node_dir: Path) -> None:
    (node_dir / "cann").mkdir()
    (node_dir / "cann/libascendcl.c").write_text("int aclInit(const char *p) { (void)p; return 0; }\n")
    (node_dir / "cann/bisheng").write_text("#!/bin/sh\nexec gcc \"$@\"\n")
    changes = apply(tmp_path, node_dir)
    home = tmp_path / "usr/local/Ascend/cann"
    assert (home / "lib64/libascendcl.so").read_bytes()[:4] == b"\x7fELF"
    assert (home / "compiler/ccec_compiler/bin/bisheng").stat().st_mode & 0o111
    assert any("libascendcl" in c for c in changes)
    assert apply(tmp_path, node_dir) == []  # not rebuilt when the source did not change


@pytest.mark.parametrize(("version", "inner", "code"), [("8.5.0", "8.5.0.2.220", "V100R001C24SPC001B220"),
                                                        ("8.0.RC3", "8.0.0.3.220", "V100R001C19SPC001B220"),
                                                        ("9.0.0", "9.0.0.2.220", "V100R001C29SPC001B220")])
def test_version_codes(version: str, inner: str, code: str) -> None:
    assert sim_apply.inner_version(version) == inner
    assert sim_apply.innerversion_code(version) == code


def test_main_reports_bad_host_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "host.json"
    bad.write_text('{"model": "H100"}')
    assert sim_apply.main(["--host-json", str(bad), "--root", str(tmp_path)]) == 1
    assert "unknown model" in capsys.readouterr().err
