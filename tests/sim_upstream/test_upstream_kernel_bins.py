"""Kernel binaries per SoC: the package layout of cmake/func.cmake and the runtime's "Cannot find bin of op" failure.

Independent data: the layout is ops-transformer v9.0.1 ``cmake/func.cmake`` (``${_INSTALL_DIR}/${BINARY_COMPUTE_UNIT}``
and ``${_INSTALL_DIR}/config/${BINARY_COMPUTE_UNIT}``, ``_INSTALL_DIR`` = ``packages/vendors/<vendor>_transformer/
op_impl/ai_core/tbe/kernel``); the error text is CANN's, as quoted in Ascend's troubleshooting page for
"Cannot find bin of op" and in vllm-project/vllm-ascend#37:
    EZ9999: Inner Error!
    EZ9999: [PID: 775] 2025-02-16-12:18:25.258.321 Cannot find bin of op Range, integral key 0/1/|int64/ND/...
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sim_upstream_helpers import ARCH, cann_env, clean_env, install, needs_tools

pytestmark = needs_tools

VENDOR = "ascendfa_transformer"
# ascend_sim.node.cann.libascendcl.c stand-in reduced to the one call: the SoC name comes from the environment
STUB_C = '#include <stdlib.h>\nconst char *aclrtGetSocName(void) { return getenv("STUB_SOC_NAME"); }\n'

# One FlashAttentionScore call through ctypes (struct ascendfa_sim_fa_params of aclnn_flash_attention_score.h).
DRIVER = r'''
import ctypes, json, os, sys
stub, lib_path = sys.argv[1], sys.argv[2]
if stub != "-":
    ctypes.CDLL(stub, mode=os.RTLD_NOW | os.RTLD_GLOBAL)
lib = ctypes.CDLL(lib_path)
F = ctypes.POINTER(ctypes.c_float)
I64 = ctypes.c_int64
class P(ctypes.Structure):
    _fields_ = [("abi_version", ctypes.c_uint32), ("causal", ctypes.c_int32)] + [
        (n, I64) for n in ("batch", "heads_q", "heads_kv", "seq_q", "seq_kv", "head_dim", "head_dim_v")] + [
        ("scale", ctypes.c_double), ("pre_tokens", I64), ("next_tokens", I64), ("query", F), ("key", F),
        ("value", F), ("atten_mask", ctypes.POINTER(ctypes.c_uint8)), ("mask_stride_b", I64),
        ("mask_stride_n", I64), ("mask_stride_s", I64), ("actual_seq_qlen", ctypes.POINTER(I64)),
        ("actual_seq_kvlen", ctypes.POINTER(I64)), ("out", F), ("softmax_max", F), ("softmax_sum", F)]
S, D = 4, 16
buf = lambda: (ctypes.c_float * (S * D))(*[0.01 * i for i in range(S * D)])
q, k, v, out = buf(), buf(), buf(), (ctypes.c_float * (S * D))()
p = P(abi_version=1, batch=1, heads_q=1, heads_kv=1, seq_q=S, seq_kv=S, head_dim=D, head_dim_v=D, scale=0.25,
      pre_tokens=1 << 30, next_tokens=1 << 30, query=q, key=k, value=v, out=out)
ws, ex = ctypes.c_uint64(), ctypes.c_void_p()
rc = lib.aclnnFlashAttentionScoreGetWorkspaceSize(ctypes.byref(p), ctypes.byref(ws), ctypes.byref(ex))
lib.ascendfa_sim_last_error.restype = ctypes.c_char_p
print(json.dumps({"rc": rc, "error": lib.ascendfa_sim_last_error().decode()}))
'''


@pytest.fixture(scope="module")
def stub_acl(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("stub")
    (d / "stub.c").write_text(STUB_C)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(d / "libstub_acl.so"), str(d / "stub.c")], check=True)
    return d / "libstub_acl.so"


@pytest.fixture
def vendor(tmp_path, fake_cann, built_run) -> Path:
    opp = tmp_path / "opp"
    opp.mkdir()
    proc = install(built_run, cann_env(fake_cann, ASCEND_OPP_PATH=str(opp)), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return opp / "vendors" / VENDOR


def call(stub: Path | str, vendor: Path, soc: str | None) -> dict:
    env = clean_env(**({"STUB_SOC_NAME": soc} if soc else {}))
    lib = vendor / "op_api" / "lib" / "libcust_opapi.so"
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(stub), str(lib)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_package_lays_out_binaries_and_configs_for_its_soc(vendor):
    kernel = vendor / "op_impl" / "ai_core" / "tbe" / "kernel"
    objs = sorted((kernel / "ascend910b" / "flash_attention_score").glob("*.o"))
    assert objs
    for obj in objs:
        assert obj.with_suffix(".json").is_file()
        assert obj.read_bytes()[:4] == b"\x7fELF"
    config = json.loads((kernel / "config" / "ascend910b" / "flash_attention_score.json").read_text())
    assert config["FlashAttentionScore"]["binList"]
    assert (kernel / "config" / "ascend910b" / "binary_info_config.json").is_file()
    assert not (kernel / "ascend910_93").exists()


def test_jit_package_has_no_kernel_binaries(tmp_path, built_jit_run):
    dest = tmp_path / "x"
    subprocess.run([str(built_jit_run), f"--extract={dest}", "--quiet"], check=True)
    assert not list(dest.glob("packages/vendors/*/op_impl/ai_core/tbe/kernel"))


@pytest.mark.parametrize("soc", ["Ascend910B3", "Ascend910B1"])
def test_binaries_of_the_device_soc_serve(stub_acl, vendor, soc):
    assert call(stub_acl, vendor, soc) == {"rc": 0, "error": ""}


@pytest.mark.parametrize("soc", ["Ascend910_9392", "Ascend950PR_9599"])
def test_package_of_another_soc_fails_as_missing_bin(stub_acl, vendor, soc):
    got = call(stub_acl, vendor, soc)
    assert got["rc"] == 561000  # ACLNN_ERR_INNER (ops-transformer docs/zh/context/aclnn返回码.md)
    lines = got["error"].splitlines()
    assert lines[0] == "EZ9999: Inner Error!"
    assert lines[1].startswith("EZ9999: [PID: ")
    assert "Cannot find bin of op FlashAttentionScore, integral key " in lines[1]
    assert "socversion" not in got["error"]


def test_removed_binaries_fail_as_missing_bin(stub_acl, vendor):
    shutil.rmtree(vendor / "op_impl" / "ai_core" / "tbe" / "kernel" / "ascend910b")
    got = call(stub_acl, vendor, "Ascend910B3")
    assert got["rc"] == 561000
    assert "Cannot find bin of op FlashAttentionScore" in got["error"]


def test_removed_config_fails_as_missing_bin(stub_acl, vendor):
    (vendor / "op_impl" / "ai_core" / "tbe" / "kernel" / "config" / "ascend910b" / "flash_attention_score.json").unlink()
    assert "Cannot find bin of op FlashAttentionScore" in call(stub_acl, vendor, "Ascend910B3")["error"]


def test_no_acl_runtime_in_the_process_is_a_clear_error(vendor):
    got = call("-", vendor, None)
    assert got["rc"] != 0
    assert "aclrtGetSocName not found" in got["error"]


def test_tiling_library_sits_next_to_the_kernels(vendor):
    assert (vendor / "op_impl" / "ai_core" / "tbe" / "op_tiling" / "lib" / "linux" / ARCH / "libcust_opmaster_rt2.0.so").is_file()
