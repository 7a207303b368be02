"""SIMULATOR tests: CANN's built-in libopapi.so, the served-by faults and the build-network keys (no containers).

sim-apply lays a node out under a temporary root; the faults act on a vendor tree laid out like ops-transformer's
install.sh does (``vendors/<vendor>_transformer/op_api/lib/libcust_opapi.so``, ``op_impl/ai_core/tbe/kernel/<soc>/``
and ``.../kernel/config/<soc>/``: ascend-facts 9.4).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from ascend_sim import fleet
from ascend_sim.image import PACKAGES, SimError
from ascend_sim.node import sim_apply
from ascend_sim.node.simnode import HostConfigError, normalize

NODE = Path(__file__).resolve().parents[2] / "ascend_sim" / "node"
API = "aclnnFlashAttentionScore"
needs_gcc = pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc")


def cfg(**kw: Any) -> dict[str, Any]:
    return normalize({"npu_count": 2, "arch": "x86_64", **kw})


@pytest.fixture()
def node_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "node"
    (folder / "cann").mkdir(parents=True)
    shutil.copy2(NODE / "cann" / "libopapi.c", folder / "cann" / "libopapi.c")
    return folder


@needs_gcc
@pytest.mark.parametrize(("version", "has_fa"), [("8.5.0", True), ("9.0.0", True), ("8.3.RC1", False)])
def test_builtin_libopapi_has_flash_attention_from_cann_8_5(tmp_path, node_dir, version, has_fa):
    root = tmp_path / "root"
    sim_apply.apply(cfg(cann_version=version), root, node_dir)
    public = "cann" if has_fa else "ascend-toolkit/latest"
    lib = ctypes.CDLL(str(root / "usr/local/Ascend" / public / "lib64/libopapi.so"))
    assert hasattr(lib, API) is has_fa and hasattr(lib, API + "GetWorkspaceSize") is has_fa
    assert not any("libopapi" in c for c in sim_apply.apply(cfg(cann_version=version), root, node_dir))  # no rebuild


def _installed(root: Path, node_dir: Path, model: str = "910B3") -> Path:
    """A host with CANN 8.5 and a vendor installed the ops-transformer way; ascend-fa's manifest names it."""
    sim_apply.apply(cfg(model=model), root, node_dir)
    vendors = root / "usr/local/Ascend/cann/opp/vendors"
    vendor = vendors / "ascendfa_transformer"
    (vendor / "op_api/lib").mkdir(parents=True)
    (vendor / "op_api/lib/libcust_opapi.so").write_bytes(b"\x7fELF")
    for family in ("ascend910b", "ascend910_93"):
        for sub in (f"kernel/{family}/flash_attention_score", f"kernel/config/{family}"):
            (vendor / "op_impl/ai_core/tbe" / sub).mkdir(parents=True)
            (vendor / "op_impl/ai_core/tbe" / sub / "flash_attention_score.json").write_text("{}")
    (vendors / "config.ini").write_text("load_priority=ascendfa_transformer,customize\n")
    state = root / "var/lib/ascend-fa"
    state.mkdir(parents=True)
    (state / "manifest.json").write_text(json.dumps({"vendor_dir": "/usr/local/Ascend/cann-8.5.0/opp/vendors/"
                                                                   "ascendfa_transformer"}))
    return vendor


def test_vendor_not_loaded_and_clear(tmp_path, node_dir):
    vendor = _installed(tmp_path, node_dir)
    config = vendor.parent / "config.ini"
    config.chmod(0o755)   # as install.sh --install-for-all leaves it
    sim_apply.apply(cfg(), tmp_path, node_dir, ["vendor-not-loaded"])
    assert config.read_text() == "load_priority=customize\n" and vendor.is_dir()
    assert config.stat().st_mode & 0o777 == 0o755   # a rewrite keeps the mode (install.sh: 640 only on create)
    sim_apply.apply(cfg(), tmp_path, node_dir, ["undo-served-by"])
    assert config.read_text() == "load_priority=ascendfa_transformer,customize\n"
    sim_apply.apply(cfg(), tmp_path, node_dir, ["undo-served-by"])   # nothing left to undo
    assert config.read_text() == "load_priority=ascendfa_transformer,customize\n"


@pytest.mark.parametrize(("model", "gone", "kept"), [("910B3", "ascend910b", "ascend910_93"),
                                                     ("A3-9392", "ascend910_93", "ascend910b")])
def test_kernel_bin_missing_removes_the_hosts_soc_only(tmp_path, node_dir, model, gone, kept):
    vendor = _installed(tmp_path, node_dir, model)
    kernel = vendor / "op_impl/ai_core/tbe/kernel"
    sim_apply.apply(cfg(model=model), tmp_path, node_dir, ["kernel-bin-missing"])
    assert not (kernel / gone).exists() and not (kernel / "config" / gone).exists()
    assert (kernel / kept).is_dir() and (kernel / "config" / kept).is_dir()
    with pytest.raises(sim_apply.ActionError, match=f"no kernel binaries for {gone}"):
        sim_apply.apply(cfg(model=model), tmp_path, node_dir, ["kernel-bin-missing"])
    sim_apply.apply(cfg(model=model), tmp_path, node_dir, ["undo-served-by"])
    assert (kernel / gone / "flash_attention_score/flash_attention_score.json").is_file()


@pytest.mark.skipif(os.getuid() != 0, reason="chown needs root")
def test_vendor_foreign_owner_and_clear(tmp_path, node_dir):
    lib = _installed(tmp_path, node_dir) / "op_api/lib/libcust_opapi.so"
    sim_apply.apply(cfg(), tmp_path, node_dir, ["vendor-foreign-owner"])
    assert (lib.stat().st_uid, lib.stat().st_gid) == (1000, 1000)
    sim_apply.apply(cfg(), tmp_path, node_dir, ["undo-served-by"])
    assert lib.stat().st_uid == 0


@needs_gcc
def test_custom_path_other_vendor_installs_a_working_vendor_for_login_shells(tmp_path, node_dir):
    _installed(tmp_path, node_dir)
    sim_apply.apply(cfg(), tmp_path, node_dir, ["custom-path-other-vendor"])
    vendor = "/opt/ascend-sim-other-vendor/vendors/other_transformer"
    lib = ctypes.CDLL(str(tmp_path / vendor.lstrip("/") / "op_api/lib/libcust_opapi.so"))
    assert hasattr(lib, API) and hasattr(lib, API + "GetWorkspaceSize")
    profile = (tmp_path / "etc/profile.d/ascend-sim-other-vendor.sh").read_text()
    assert f"export ASCEND_CUSTOM_OPP_PATH={vendor}${{ASCEND_CUSTOM_OPP_PATH:+:$ASCEND_CUSTOM_OPP_PATH}}" in profile
    sim_apply.apply(cfg(), tmp_path, node_dir, ["undo-served-by"])
    assert not (tmp_path / "etc/profile.d/ascend-sim-other-vendor.sh").exists()
    assert not (tmp_path / "opt/ascend-sim-other-vendor").exists()


def test_faults_need_an_installed_package(tmp_path, node_dir):
    sim_apply.apply(cfg(), tmp_path, node_dir)
    for action in ("vendor-not-loaded", "vendor-foreign-owner", "kernel-bin-missing"):
        with pytest.raises(sim_apply.ActionError, match="install a package first"):
            sim_apply.apply(cfg(), tmp_path, node_dir, [action])


def test_fault_names_reach_sim_apply() -> None:
    for name in ("vendor-not-loaded", "vendor-foreign-owner", "custom-path-other-vendor", "kernel-bin-missing"):
        config, actions = fleet.apply_fault(cfg(), name)
        assert actions == [name] and name in sim_apply.ACTIONS


def test_build_network_faults_and_clear() -> None:
    config, actions = fleet.apply_fault(cfg(), "build-offline")
    assert (config["network"], config["proxy_url"], actions) == ("offline", None, [])
    config, _ = fleet.apply_fault(config, "build-proxy-only", proxy="http://10.0.0.1:8080")
    assert (config["network"], config["proxy_url"]) == ("proxy", "http://10.0.0.1:8080")
    config, _ = fleet.apply_fault(config, "clear")
    assert (config["network"], config["proxy_url"]) == ("online", None)
    assert fleet._cli_fault_kw(fleet._parser().parse_args(
        ["inject-fault", "/f", "1", "build-proxy-only", "--proxy", "http://p:1"])) == {"proxy": "http://p:1"}


@pytest.mark.parametrize("raw", [{"network": "wifi"}, {"network": "proxy"},
                                 {"network": "proxy", "proxy_url": "http://p:1 ; rm -rf /"},
                                 {"proxy_url": "ftp://p"}])
def test_network_keys_are_validated(raw) -> None:
    with pytest.raises(HostConfigError):
        normalize(raw)
    with pytest.raises(SimError):
        fleet.apply_fault(cfg(), "build-proxy-only", proxy=raw.get("proxy_url") or "bad url")


def test_image_has_cmake_for_the_build() -> None:
    assert "cmake" in PACKAGES
