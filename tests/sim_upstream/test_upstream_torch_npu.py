"""The torch_npu stand-in against a locally built and installed package (no containers).

The FlashAttention numbers come from the compiled package (C kernel through ctypes); they are compared with
torch's scaled_dot_product_attention.
"""

from __future__ import annotations

import shutil

import pytest
from sim_upstream_helpers import StandIn, cann_env, install, needs_tools, write_host_json

pytestmark = needs_tools

NUMERIC_CASES = r"""
import json, torch, torch_npu
import torch.nn.functional as F
from torch_npu import _aclnn

torch.manual_seed(0)
res = {}

def sdpa(q, k, v, scale, mask=None, causal=False):
    g = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(g, 1); v = v.repeat_interleave(g, 1)
    return F.scaled_dot_product_attention(q, k, v, scale=scale, attn_mask=None if mask is None else ~mask,
                                          is_causal=causal)

def err(a, b):
    return (a.float() - b.float()).abs().max().item()

def fa(*a, **kw):
    out = torch_npu.npu_fusion_attention(*a, **kw)
    assert isinstance(out, tuple) and len(out) == 7, len(out)
    return out[0]

def kernel():
    return _aclnn.find_package("aclnnFlashAttentionScore").last_kernel()

def bnsd(b, n, nkv, sq, skv, d, dv=None):
    return (torch.randn(b, n, sq, d), torch.randn(b, nkv, skv, d), torch.randn(b, nkv, skv, dv or d))

# plain, specialised kernel (D=64)
q, k, v = bnsd(2, 8, 8, 128, 128, 64)
res["plain_d64"] = err(fa(q.npu(), k.npu(), v.npu(), 8, "BNSD", scale=0.125), sdpa(q, k, v, 0.125))
res["kernel_d64"] = kernel()
# sparse_mode 2/3/4 take the compressed 2048x2048 mask (docs: 参考资源)
cmask = torch.triu(torch.ones(2048, 2048, dtype=torch.bool), 1)
# causal as users pass it: upper-triangular bool mask, sparse_mode 0
mask = torch.triu(torch.ones(128, 128, dtype=torch.bool), 1)
res["causal_mask"] = err(fa(q, k, v, 8, "BNSD", scale=0.125, atten_mask=mask), sdpa(q, k, v, 0.125, causal=True))
# next_tockens=0 without a mask does nothing: op-plugin docs torch_npu-npu_fusion_attention.md, 约束说明
# ("当atten_mask输入为None时，sparse_mode，pre_tockens，next_tockens参数不生效，固定为全计算")
res["band_without_mask_is_full"] = err(fa(q, k, v, 8, "BNSD", scale=0.125, next_tockens=0), sdpa(q, k, v, 0.125))
res["sparse2_without_mask_is_full"] = err(fa(q, k, v, 8, "BNSD", scale=0.125, sparse_mode=2), sdpa(q, k, v, 0.125))
# with the mask, sparse_mode 0 applies pre/next too (the docs' causal example: next_tockens=0 + lower triangle)
res["causal_band"] = err(fa(q, k, v, 8, "BNSD", scale=0.125, atten_mask=mask, next_tockens=0),
                         sdpa(q, k, v, 0.125, causal=True))
# sparse_mode 4 (band, counted from the bottom-right corner) with the compressed mask; Sq == Skv here
band = torch.triu(torch.ones(128, 128, dtype=torch.bool), 1 + 3) | torch.tril(torch.ones(128, 128, dtype=torch.bool), -5 - 1)
res["sparse4_band"] = err(fa(q, k, v, 8, "BNSD", scale=0.125, atten_mask=cmask, sparse_mode=4, pre_tockens=5,
                             next_tockens=3), sdpa(q, k, v, 0.125, mask=band))
# sparse_mode 2 with the compressed mask (left-up causal)
res["sparse2"] = err(fa(q, k, v, 8, "BNSD", scale=0.125, atten_mask=cmask, sparse_mode=2),
                     sdpa(q, k, v, 0.125, causal=True))
# GQA 8 query heads on 2 kv heads, odd lengths, D=40
q, k, v = bnsd(1, 8, 2, 100, 77, 40)
res["gqa_d40"] = err(fa(q, k, v, 8, "BNSD", scale=40 ** -0.5), sdpa(q, k, v, 40 ** -0.5))
m = torch.triu(torch.ones(100, 77, dtype=torch.bool), 1)
res["gqa_causal"] = err(fa(q, k, v, 8, "BNSD", scale=40 ** -0.5, atten_mask=m), sdpa(q, k, v, 40 ** -0.5, mask=m))
# sparse_mode 3: right-down causal, Sq < Skv
q, k, v = bnsd(1, 4, 4, 48, 96, 32)
rd = torch.triu(torch.ones(48, 96, dtype=torch.bool), 1 + 96 - 48)
res["sparse3"] = err(fa(q, k, v, 4, "BNSD", scale=0.2, atten_mask=cmask, sparse_mode=3), sdpa(q, k, v, 0.2, mask=rd))
# generic kernel: D=50 has no variant, Dv < D
q, k, v = bnsd(2, 4, 4, 65, 130, 50, 24)
res["generic_d50_dv24"] = err(fa(q, k, v, 4, "BNSD", scale=0.1), sdpa(q, k, v, 0.1))
res["kernel_d50"] = kernel()
# per-batch mask [B, 1, Sq, Skv]
q, k, v = bnsd(3, 4, 4, 64, 64, 64)
bm = torch.rand(3, 1, 64, 64) < 0.3
bm[..., 0] = False
res["batch_mask"] = err(fa(q, k, v, 4, "BNSD", scale=0.125, atten_mask=bm), sdpa(q, k, v, 0.125, mask=bm))
# long sequence: many kv blocks of 128 (online softmax across blocks)
q, k, v = bnsd(1, 2, 2, 1100, 1100, 128)
res["long_d128"] = err(fa(q, k, v, 2, "BNSD", scale=128 ** -0.5), sdpa(q, k, v, 128 ** -0.5))
res["kernel_long"] = kernel()
# layouts
b, n, s, d = 2, 4, 40, 32
q, k, v = bnsd(b, n, n, s, s, d)
ref = sdpa(q, k, v, 0.3)
bsh = lambda t: t.permute(0, 2, 1, 3).reshape(b, s, n * d)
sbh = lambda t: t.permute(2, 0, 1, 3).reshape(s, b, n * d)
bsnd = lambda t: t.permute(0, 2, 1, 3).contiguous()
res["BSH"] = err(fa(bsh(q), bsh(k), bsh(v), n, "BSH", scale=0.3), bsh(ref))
res["SBH"] = err(fa(sbh(q), sbh(k), sbh(v), n, "SBH", scale=0.3), sbh(ref))
res["BSND"] = err(fa(bsnd(q), bsnd(k), bsnd(v), n, "BSND", scale=0.3), bsnd(ref))
# GQA in BSH: key/value hidden = Nkv * D
q, k, v = bnsd(2, 8, 2, 30, 30, 16)
res["BSH_gqa"] = err(fa(q.permute(0, 2, 1, 3).reshape(2, 30, 128), k.permute(0, 2, 1, 3).reshape(2, 30, 32),
                        v.permute(0, 2, 1, 3).reshape(2, 30, 32), 8, "BSH", scale=0.25),
                     sdpa(q, k, v, 0.25).permute(0, 2, 1, 3).reshape(2, 30, 128))
# TND varlen: cumulative actual_seq_qlen / actual_seq_kvlen
lens = [5, 17, 9]
qs = [torch.randn(L, 4, 32) for L in lens]
ks = [torch.randn(L, 4, 32) for L in lens]
vs = [torch.randn(L, 4, 32) for L in lens]
cum = [5, 22, 31]
out = fa(torch.cat(qs), torch.cat(ks), torch.cat(vs), 4, "TND", scale=0.2, actual_seq_qlen=cum,
         actual_seq_kvlen=cum, sparse_mode=3, atten_mask=cmask)
ref = torch.cat([sdpa(a.permute(1, 0, 2)[None], b_[None].permute(0, 2, 1, 3), c[None].permute(0, 2, 1, 3), 0.2,
                      causal=True)[0].permute(1, 0, 2) for a, b_, c in zip(qs, ks, vs)])
res["TND_causal"] = err(out, ref)
# dtypes are kept
q, k, v = bnsd(1, 4, 4, 64, 64, 64)
o16 = fa(q.half(), k.half(), v.half(), 4, "BNSD", scale=0.125)
res["fp16_dtype"] = str(o16.dtype)
res["fp16"] = err(o16, sdpa(q, k, v, 0.125))
obf = fa(q.bfloat16(), k.bfloat16(), v.bfloat16(), 4, "BNSD", scale=0.125)
res["bf16_dtype"] = str(obf.dtype)
full = torch_npu.npu_fusion_attention(q, k, v, 4, "BNSD", scale=0.125)
res["softmax_max_shape"] = list(full[1].shape)
res["tuple_tail"] = list(full[4:])
# prompt flash attention (inference API) on the same kernel, BSH, causal via next_tokens=0 with a mask
pm = torch.triu(torch.ones(64, 64, dtype=torch.bool), 1)
po = torch_npu.npu_prompt_flash_attention(q.permute(0, 2, 1, 3).reshape(1, 64, 256),
                                          k.permute(0, 2, 1, 3).reshape(1, 64, 256),
                                          v.permute(0, 2, 1, 3).reshape(1, 64, 256), num_heads=4,
                                          scale_value=0.125, atten_mask=pm, input_layout="BSH")
res["pfa_causal"] = err(po, sdpa(q, k, v, 0.125, causal=True).permute(0, 2, 1, 3).reshape(1, 64, 256))
print(json.dumps(res))
"""

TOL_FP32 = 1e-4


@pytest.fixture(scope="module")
def numeric(tmp_path_factory, fake_cann, installed_opp):
    return StandIn(tmp_path_factory.mktemp("numeric"), fake_cann, installed_opp).json(NUMERIC_CASES)


@pytest.mark.parametrize(
    "case",
    [
        "plain_d64",
        "causal_mask",
        "causal_band",
        "band_without_mask_is_full",
        "sparse2_without_mask_is_full",
        "sparse4_band",
        "sparse2",
        "sparse3",
        "gqa_d40",
        "gqa_causal",
        "generic_d50_dv24",
        "batch_mask",
        "long_d128",
        "BSH",
        "SBH",
        "BSND",
        "BSH_gqa",
        "TND_causal",
        "pfa_causal",
    ],
)
def test_fp32_matches_sdpa(numeric, case):
    assert numeric[case] < TOL_FP32, f"{case}: max abs error {numeric[case]}"


def test_kernel_variants_are_selected(numeric):
    assert "kernel=fa_kernel_d64_bc64" in numeric["kernel_d64"]
    assert "kernel=fa_kernel_generic" in numeric["kernel_d50"]
    assert "kernel=fa_kernel_d128_bc128" in numeric["kernel_long"]


def test_half_precision_and_outputs(numeric):
    assert numeric["fp16_dtype"] == "torch.float16" and numeric["fp16"] < 1e-2
    assert numeric["bf16_dtype"] == "torch.bfloat16"
    assert numeric["softmax_max_shape"] == [1, 4, 64, 8]
    assert numeric["tuple_tail"] == [0, 0, 0]


def test_jit_package_gives_the_same_numbers(tmp_path, fake_cann, built_jit_run):
    opp = tmp_path / "opp"
    opp.mkdir()
    proc = install(built_jit_run, cann_env(fake_cann, ASCEND_OPP_PATH=str(opp)), "--quiet")
    assert proc.returncode == 0, proc.stdout
    code = r"""
import json, torch, torch_npu
import torch.nn.functional as F
from torch_npu import _aclnn
torch.manual_seed(1)
q, k, v = (torch.randn(1, 4, 96, 64) for _ in range(3))
o = torch_npu.npu_fusion_attention(q, k, v, 4, "BNSD", scale=0.125)[0]
print(json.dumps({"err": (o - F.scaled_dot_product_attention(q, k, v, scale=0.125)).abs().max().item(),
                  "kernel": _aclnn.find_package("aclnnFlashAttentionScore").last_kernel()}))
"""
    res = StandIn(tmp_path / "s", fake_cann, opp).json(code)
    assert res["err"] < TOL_FP32
    assert "fa_kernel_generic" in res["kernel"]


def test_import_needs_the_cann_environment(standin):
    proc = standin.run("import torch_npu", ld_library_path=False)
    assert proc.returncode != 0
    assert "ImportError: libascendcl.so: cannot open shared object file" in proc.stderr


def test_import_fails_against_the_wrong_cann(standin):
    standin.set_version("2.1.0.post4")  # built for CANN 8.0, host runs 8.5.0
    proc = standin.run("import torch_npu")
    assert proc.returncode != 0
    assert "undefined symbol" in proc.stderr


DEVICE_PROBE = r"""
import json, sys, torch, torch_npu
x = torch.ones(2)
ev0 = torch.npu.Event(enable_timing=True); ev1 = torch.npu.Event(enable_timing=True)
ev0.record(); sum(range(10000)); ev1.record(); torch.npu.synchronize()
print(json.dumps({
    "version": torch_npu.__version__,
    "count": torch.npu.device_count(),
    "available": torch.npu.is_available(),
    "module": torch.npu is torch_npu.npu and sys.modules["torch.npu"] is torch_npu.npu,
    "name": torch.npu.get_device_name(0) if torch.npu.device_count() else None,
    "npu_identity": x.npu() is x,
    "to_npu_on_cpu": str(x.to("npu:0").device) + "," + str(x.to(torch.device("npu")).device),
    "device_parses": str(torch.device("npu:1")),
    "elapsed_ms": ev0.elapsed_time(ev1),
    "soc": torch_npu._C._npu_get_soc_version(),
}))
"""


def test_device_basics(standin):
    res = standin.json(DEVICE_PROBE)
    assert res["version"] == "2.9.0"
    assert res["count"] == 8 and res["available"] is True
    assert res["module"] is True
    assert res["name"] == "Ascend910B3"
    assert res["npu_identity"] is True
    assert res["to_npu_on_cpu"] == "cpu,cpu"
    assert res["device_parses"] == "npu:1"
    assert res["elapsed_ms"] > 0
    assert res["soc"] == 223


def test_visible_devices(standin):
    """ASCEND_RT_VISIBLE_DEVICES: ascending ids only; the list stops at a stray character or an invalid id."""
    code = r"""
import json, os, torch, torch_npu
out = {}
for visible in (None, "1, 2,3", "1,3,8", "3,1", "", "0,1,2,3,4,5,6,7", "5"):
    os.environ.pop("ASCEND_RT_VISIBLE_DEVICES", None)
    if visible is not None:
        os.environ["ASCEND_RT_VISIBLE_DEVICES"] = visible
    out[str(visible)] = torch.npu.device_count()
print(json.dumps(out))
"""
    assert standin.json(code) == {"None": 8, "1, 2,3": 1, "1,3,8": 2, "3,1": 1, "": 0, "0,1,2,3,4,5,6,7": 8, "5": 1}


def test_a3_boards_have_two_devices_per_npu(standin):
    write_host_json(standin.host_json, model="A3-9392", npu_count=8)
    res = standin.json(
        "import json, torch, torch_npu; print(json.dumps([torch.npu.device_count(), torch.npu.get_device_name()]))"
    )
    assert res == [16, "Ascend910_9392"]


def test_alarm_card_and_invisible_device_are_refused(standin):
    write_host_json(standin.host_json, health={"2": "Alarm", "3": "Warning"})
    code = r"""
import json, torch, torch_npu
out = {}
for i in (1, 2, 3, 8):
    try:
        torch.npu.set_device(i); out[i] = "ok"
    except RuntimeError as exc:
        out[i] = str(exc)
print(json.dumps(out))
"""
    res = standin.json(code)
    assert res["1"] == "ok" and res["3"] == "ok"
    assert "health is Alarm" in res["2"]
    assert "invalid device, set device=8" in res["8"]
    # logical 0 is physical 2 here
    res = standin.json(code.replace("(1, 2, 3, 8)", "(0, 1)"), ASCEND_RT_VISIBLE_DEVICES="2,3")
    assert "health is Alarm" in res["0"] and res["1"] == "ok"


FA_ONCE = r"""
import torch, torch_npu
q = torch.randn(1, 2, 16, 64)
torch.npu.set_device(0)
print(torch_npu.npu_fusion_attention(q, q, q, 2, "BNSD", scale=0.125)[0].shape)
"""


def test_no_package_names_the_aclnn_api(standin, tmp_path):
    empty = tmp_path / "empty_opp"
    (empty / "vendors").mkdir(parents=True)
    proc = standin.run(FA_ONCE, ASCEND_OPP_PATH=str(empty))
    assert proc.returncode != 0
    assert "RuntimeError: aclnnFlashAttentionScore or aclnnFlashAttentionScoreGetWorkspaceSize not in" in proc.stderr


def test_corrupted_library_is_skipped_and_only_logged(standin, tmp_path, installed_opp):
    """op-plugin GetOpApiLibHandler: a failed dlopen is an ASCEND_LOGW line (CANN's log, on the console only with
    ASCEND_SLOG_PRINT_TO_STDOUT=1) and the search goes on; here nothing else exports the API."""
    opp = tmp_path / "opp"
    shutil.copytree(installed_opp, opp)
    lib = opp / "vendors" / "ascendfa_transformer" / "op_api" / "lib" / "libcust_opapi.so"
    lib.write_bytes(b"ascend-sim: corrupted library\n" * 64)
    proc = standin.run(FA_ONCE, ASCEND_OPP_PATH=str(opp))
    assert proc.returncode != 0
    assert "not in libopapi.so, or libopapi.so not found." in proc.stderr
    assert "dlopen" not in proc.stdout + proc.stderr
    proc = standin.run(FA_ONCE, ASCEND_OPP_PATH=str(opp), ASCEND_SLOG_PRINT_TO_STDOUT="1", ASCEND_GLOBAL_LOG_LEVEL="2")
    assert f"dlopen {lib} failed, error:" in proc.stdout and "invalid ELF header" in proc.stdout


def test_soc_mismatch_is_a_missing_kernel_binary(standin, installed_opp):
    """A package built for ascend910b on a 310P host: the package's own aclnn call fails (interface I2, ascend-facts
    9.5); the stand-in no longer prints AscendC's "socversion ... does not match" text."""
    lib = installed_opp / "vendors" / "ascendfa_transformer" / "op_api" / "lib" / "libcust_opapi.so"
    if b"aclrtGetSocName" not in lib.read_bytes():
        pytest.skip("the simulated package does not check its kernel binaries yet (interface I2)")
    write_host_json(standin.host_json, model="310P3", npu_count=2)
    proc = standin.run(FA_ONCE)
    assert proc.returncode != 0
    assert "EZ9999: Inner Error!" in proc.stderr and "Cannot find bin of op FlashAttentionScore" in proc.stderr
    assert "does not match" not in proc.stderr


def test_missing_tiling_library(standin, tmp_path, installed_opp):
    opp = tmp_path / "opp"
    shutil.copytree(installed_opp, opp)
    shutil.rmtree(opp / "vendors" / "ascendfa_transformer" / "op_impl" / "ai_core" / "tbe" / "op_tiling")
    proc = standin.run(FA_ONCE, ASCEND_OPP_PATH=str(opp))
    assert proc.returncode != 0
    assert "call aclnnFlashAttentionScore failed" in proc.stderr
    assert "SelectBin failed" in proc.stderr and "GetWorkspaceSize=561103" in proc.stderr


def test_tiling_rejects_bad_head_ratio(standin):
    code = r"""
import torch, torch_npu
torch_npu.npu_fusion_attention(torch.randn(1, 6, 8, 16), torch.randn(1, 4, 8, 16), torch.randn(1, 4, 8, 16), 6, "BNSD")
"""
    proc = standin.run(code)
    assert proc.returncode != 0
    assert "EZ9999" in proc.stderr and "numHeads / numKvHeads must be an integer" in proc.stderr


def test_schema_errors(standin):
    code = r"""
import json, torch, torch_npu
q = torch.randn(1, 2, 8, 16)
out = {}
cmask = torch.triu(torch.ones(2048, 2048, dtype=torch.bool), 1)
small = torch.triu(torch.ones(8, 8, dtype=torch.bool), 1)
for name, kw in (("layout", {"input_layout": "BNDS"}), ("keep_prob", {"keep_prob": 0.9}),
                 ("mode9", {"sparse_mode": 9, "atten_mask": small}),
                 ("mode7_not_varlen", {"sparse_mode": 7, "atten_mask": cmask}),
                 ("mode2_small_mask", {"sparse_mode": 2, "atten_mask": small}),
                 ("mode4_empty_band", {"sparse_mode": 4, "atten_mask": cmask, "pre_tockens": -3, "next_tockens": 1}),
                 ("mode0_bad_next", {"atten_mask": small, "pre_tockens": 1, "next_tockens": -2}),
                 ("mode0_no_mask_bad_next", {"pre_tockens": 1, "next_tockens": -2})):
    args = dict(query=q, key=q, value=q, head_num=2, input_layout="BNSD"); args.update(kw)
    try:
        torch_npu.npu_fusion_attention(**args); out[name] = "ok"
    except RuntimeError as exc:
        out[name] = str(exc)
print(json.dumps(out))
"""
    res = standin.json(code)
    assert "The input_layout should be BSH/SBH/BNSD/BSND/TND(case-insensitive), but got BNDS" in res["layout"]
    assert "keep_prob" in res["keep_prob"]
    assert "sparse_mode 9 is invalid" in res["mode9"]
    assert "only supported in the varlen (TND) scene" in res["mode7_not_varlen"]
    assert "needs the compressed atten_mask of shape [2048, 2048], got [8, 8]" in res["mode2_small_mask"]
    assert "EZ9999" in res["mode4_empty_band"] and "band is empty" in res["mode4_empty_band"]
    assert "next_tokens[-2] is negative: pre_tokens[1] must be >= 2" in res["mode0_bad_next"]
    assert res["mode0_no_mask_bad_next"] == "ok"   # without a mask the tokens do not apply (docs, 约束说明)


def test_custom_opp_path_comes_before_config_ini(standin, tmp_path, fake_cann, built_jit_run):
    target = tmp_path / "custom"
    proc = install(built_jit_run, cann_env(fake_cann), "--quiet", f"--install-path={target}")
    assert proc.returncode == 0, proc.stdout
    vendor = target / "vendors" / "jit_transformer"
    code = r"""
import json, torch, torch_npu
from torch_npu import _aclnn
q = torch.randn(1, 2, 16, 64)
torch_npu.npu_fusion_attention(q, q, q, 2, "BNSD")
print(json.dumps(_aclnn.find_package("aclnnFlashAttentionScore").vendor_dir))
"""
    assert standin.json(code, ASCEND_CUSTOM_OPP_PATH=f"{vendor}:") == str(vendor)
    assert standin.json(code).endswith("ascendfa_transformer")


def test_memory_statistics(standin):
    code = r"""
import json, torch, torch_npu
q = torch.randn(1, 4, 256, 64)
torch.npu.reset_peak_memory_stats()
before = torch.npu.max_memory_allocated()
torch_npu.npu_fusion_attention(q, q, q, 4, "BNSD")
peak = torch.npu.max_memory_allocated()
torch.npu.empty_cache(); torch.npu.reset_peak_memory_stats()
print(json.dumps([before, peak, torch.npu.max_memory_allocated(), torch.npu.memory_allocated()]))
"""
    before, peak, after, now = standin.json(code)
    assert before == 0 and peak >= 4 * 4 * 256 * 64 * 4 and after == 0 and now == 0


def test_c_abi_actual_seq_lengths(standin):
    """The kernel's per-batch actual_seq_qlen / actual_seq_kvlen, straight through the C ABI."""
    code = r"""
import json, torch, torch_npu
import torch.nn.functional as F
from torch_npu import _aclnn, _ops
torch.manual_seed(3)
q, k, v = (torch.randn(2, 2, 20, 32) for _ in range(3))
pkg = _aclnn.find_package("aclnnFlashAttentionScore")
qlen = torch.tensor([20, 7], dtype=torch.int64); kvlen = torch.tensor([11, 20], dtype=torch.int64)
out, smax, ssum = _ops._run_kernel(pkg, q, k, v, 0.2, 0, 2**31 - 1, 2**31 - 1, None, qlen, kvlen)
errs = []
for b in range(2):
    ref = F.scaled_dot_product_attention(q[b:b+1, :, :qlen[b]], k[b:b+1, :, :kvlen[b]], v[b:b+1, :, :kvlen[b]], scale=0.2)
    errs.append((out[b:b+1, :, :qlen[b]] - ref).abs().max().item())
print(json.dumps({"errs": errs, "pad_rows_zero": bool((out[1, :, 7:] == 0).all()),
                  "pad_max_is_neg_inf": bool(torch.isinf(smax[1, :, 7:]).all())}))
"""
    res = standin.json(code)
    assert max(res["errs"]) < TOL_FP32
    assert res["pad_rows_zero"] and res["pad_max_is_neg_inf"]


def test_standin_never_falls_back_to_sdpa(standin):
    """With SDPA sabotaged in the process, the stand-in still computes (numbers come from the package)."""
    code = r"""
import json, torch, torch_npu
import torch.nn.functional as F
ref_q = torch.randn(1, 2, 32, 16)
expected = F.scaled_dot_product_attention(ref_q, ref_q, ref_q, scale=0.25)
def boom(*a, **k):
    raise AssertionError("SDPA called")
F.scaled_dot_product_attention = boom
torch.nn.functional.scaled_dot_product_attention = boom
out = torch_npu.npu_fusion_attention(ref_q, ref_q, ref_q, 2, "BNSD", scale=0.25)[0]
print(json.dumps((out - expected).abs().max().item()))
"""
    assert standin.json(code) < TOL_FP32
