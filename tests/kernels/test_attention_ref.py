"""The float32 references: blocked (online softmax) equals naive, and both equal PyTorch SDPA."""

from __future__ import annotations

import sys
from pathlib import Path

KERNELS = str(Path(__file__).resolve().parents[2] / "kernels")
if KERNELS not in sys.path:
    sys.path.insert(0, KERNELS)

import attention_ref  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# (B, Nq, Nkv, Sq, Skv, D, causal)
SHAPES = [
    (1, 2, 2, 128, 128, 32, False),
    (2, 4, 4, 100, 100, 16, True),  # non-aligned, causal
    (1, 8, 2, 257, 257, 16, True),  # GQA 4:1, non-aligned, causal
    (2, 4, 1, 96, 160, 8, False),  # MQA, Sq != Skv
    (1, 2, 2, 33, 80, 16, True),  # causal with Sq < Skv (top-left aligned)
    (1, 2, 2, 1, 7, 8, False),  # a single query
]


def _qkv(b, nq, nkv, sq, skv, d, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, nq, sq, d, generator=g, dtype=dtype), torch.randn(b, nkv, skv, d, generator=g, dtype=dtype),
            torch.randn(b, nkv, skv, d, generator=g, dtype=dtype))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_blocked_equals_naive(shape):
    b, nq, nkv, sq, skv, d, causal = shape
    q, k, v = _qkv(b, nq, nkv, sq, skv, d)
    kpm = torch.zeros(b, skv, dtype=torch.bool)
    kpm[:, skv - skv // 5:] = True  # last fifth of the keys is padding
    for mask in (None, kpm):
        naive = attention_ref.naive_attention(q, k, v, causal=causal, key_padding_mask=mask)
        blocked = attention_ref.blocked_attention(q, k, v, causal=causal, key_padding_mask=mask, block_q=32, block_k=48)
        assert naive.shape == (b, nq, sq, d)
        torch.testing.assert_close(blocked, naive, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("shape", SHAPES[:4], ids=lambda s: "x".join(map(str, s)))
def test_reference_matches_sdpa(shape):
    b, nq, nkv, sq, skv, d, causal = shape
    q, k, v = _qkv(b, nq, nkv, sq, skv, d, seed=1)
    sdpa = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=nq != nkv)
    torch.testing.assert_close(attention_ref.blocked_attention(q, k, v, causal=causal, block_k=64), sdpa,
                               atol=2e-6, rtol=1e-5)


def test_low_precision_inputs_are_computed_in_float32():
    q, k, v = _qkv(1, 2, 2, 64, 64, 16, dtype=torch.float16)
    out = attention_ref.attention_reference(q, k, v)
    assert out.dtype == torch.float32
    ref = attention_ref.naive_attention(q.float(), k.float(), v.float())
    torch.testing.assert_close(out, ref)


def test_fully_masked_rows_are_zero_not_nan():
    q, k, v = _qkv(1, 2, 2, 8, 8, 4)
    kpm = torch.zeros(1, 8, dtype=torch.bool)
    kpm[0, :3] = True  # with causal, queries 0..2 see no key
    for fn in (attention_ref.naive_attention, attention_ref.blocked_attention):
        out = fn(q, k, v, causal=True, key_padding_mask=kpm)
        assert torch.isfinite(out).all()
        assert out[:, :, :3].abs().max() == 0


def test_reference_switches_to_blocked_for_large_problems(monkeypatch):
    calls = []
    monkeypatch.setattr(attention_ref, "blocked_attention", lambda *a, **kw: calls.append("blocked"))
    q, k, v = _qkv(1, 2, 2, 64, 64, 4)
    attention_ref.attention_reference(q, k, v, naive_max_elems=100)
    assert calls == ["blocked"]


def test_shape_errors():
    q, k, v = _qkv(1, 3, 2, 8, 8, 4)
    with pytest.raises(ValueError, match="multiple of Nkv"):
        attention_ref.naive_attention(q, k, v)
    with pytest.raises(ValueError, match="4-D"):
        attention_ref.naive_attention(q[0], k[0], v[0])
