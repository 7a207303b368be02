"""A tiny fake torch_npu for the kernels tests (not the simulator's stand-in).

It checks that callers use the real ``npu_fusion_attention`` schema (same parameter names and defaults, scale
defaulting to 1.0, bool atten_mask with True = masked, a 7-tuple result) and computes with the float32 reference.
Knobs (environment):
  FAKE_NPU_FAIL_LAYOUT=<layout>   raise for calls with that input_layout
  FAKE_NPU_BAD_CARDS=1,3          wrong results when ASCEND_RT_VISIBLE_DEVICES is one of these
  FAKE_NPU_HANG_CARDS=2           sleep forever on these cards
  FAKE_NPU_MISSING=1              every call fails as when no package provides the operator
It also prints a banner on stdout at import, as some vendor libraries do.
"""

from __future__ import annotations

import os
import sys
import time
import types

import torch

__version__ = "0.0-fake"

print("fake torch_npu: banner on stdout (python)")
sys.stdout.flush()
os.write(1, b"fake torch_npu: banner on stdout (fd 1)\n")


def _card() -> str:
    return (os.environ.get("ASCEND_RT_VISIBLE_DEVICES") or "").split(",")[0]


def _in(var: str) -> bool:
    return _card() in [c for c in os.environ.get(var, "").split(",") if c]


class _Event:
    def __init__(self, enable_timing=False):
        self.t = None

    def record(self, stream=None):
        self.t = time.perf_counter()

    def elapsed_time(self, other):
        return (other.t - self.t) * 1000.0


_peak = {"v": 0}
npu = types.ModuleType("torch.npu")
npu.device_count = lambda: 1 if os.environ.get("ASCEND_RT_VISIBLE_DEVICES") else 8
npu.set_device = lambda i: None
npu.synchronize = lambda device=None: None
npu.Event = _Event
npu.max_memory_allocated = lambda device=None: _peak["v"]
npu.reset_peak_memory_stats = lambda device=None: _peak.update(v=0)
torch.npu = npu
sys.modules["torch.npu"] = npu
torch.Tensor.npu = lambda self, *a, **k: self


def npu_fusion_attention(query, key, value, head_num, input_layout, pse=None, padding_mask=None, atten_mask=None,
                         scale=1., keep_prob=1., pre_tockens=2147483647, next_tockens=2147483647, inner_precise=0,
                         prefix=None, actual_seq_qlen=None, actual_seq_kvlen=None, sparse_mode=0,
                         gen_mask_parallel=True, sync=False, softmax_layout="", sink=None, dropout_mask=None, seed=0,
                         offset=0):
    import attention_ref
    import layouts

    if os.environ.get("FAKE_NPU_MISSING"):
        raise RuntimeError("aclnnFlashAttentionScore or aclnnFlashAttentionScoreGetWorkspaceSize not in "
                           "libopapi.so, or libopapi.so not found.")
    if input_layout == os.environ.get("FAKE_NPU_FAIL_LAYOUT"):
        raise RuntimeError(f"fake: layout {input_layout} rejected")
    if _in("FAKE_NPU_HANG_CARDS"):
        time.sleep(3600)
    if atten_mask is not None and atten_mask.dtype != torch.bool:
        raise TypeError("atten_mask must be bool")
    d = query.shape[-1] if input_layout in ("BNSD", "BSND") else query.shape[-1] // head_num
    q = layouts.to_bnsd(query, input_layout, head_num)
    nkv = key.shape[1] if input_layout == "BNSD" else key.shape[2] if input_layout == "BSND" else key.shape[-1] // d
    k = layouts.to_bnsd(key, input_layout, nkv)
    v = layouts.to_bnsd(value, input_layout, nkv)
    causal = False
    if sparse_mode == 2:
        if atten_mask is None or tuple(atten_mask.shape) != (2048, 2048):
            raise ValueError("sparse_mode 2 needs the 2048x2048 compressed mask")
        causal, atten_mask = True, None
    elif sparse_mode != 0:
        raise ValueError(f"fake: sparse_mode {sparse_mode} not supported")
    out = attention_ref.naive_attention(q, k, v, attn_mask=atten_mask, causal=causal, scale=scale)
    if _in("FAKE_NPU_BAD_CARDS"):
        out = out + 0.05
    out = layouts.from_bnsd(out.to(query.dtype), input_layout)
    _peak["v"] = max(_peak["v"], out.numel() * out.element_size())
    b, n, s = q.shape[0], q.shape[1], q.shape[2]
    stats = torch.zeros(b, n, s, 8)
    return out, stats, stats.clone(), torch.empty(0), 0, 0, 0
