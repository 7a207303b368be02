"""Layout conversions, the correct padding helper, and why the seed blog's padding is wrong."""

from __future__ import annotations

import sys
from pathlib import Path

KERNELS = str(Path(__file__).resolve().parents[2] / "kernels")
if KERNELS not in sys.path:
    sys.path.insert(0, KERNELS)

import attention_ref  # noqa: E402
import layouts  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


def _qkv(b=2, nq=4, nkv=4, s=100, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, nq, s, d, generator=g), torch.randn(b, nkv, s, d, generator=g),
            torch.randn(b, nkv, s, d, generator=g))


@pytest.mark.parametrize("layout", layouts.LAYOUTS)
def test_round_trip(layout):
    x = torch.randn(2, 3, 5, 4)  # B N S D
    y = layouts.from_bnsd(x, layout)
    expected_shape = {"BNSD": (2, 3, 5, 4), "BSND": (2, 5, 3, 4), "BSH": (2, 5, 12), "SBH": (5, 2, 12)}[layout]
    assert tuple(y.shape) == expected_shape
    assert y.is_contiguous()
    assert torch.equal(layouts.to_bnsd(y, layout, num_heads=3), x)
    assert y.shape[layouts.seq_dim(layout)] == 5


def test_bsh_heads_are_contiguous_inside_h():
    x = torch.randn(1, 2, 3, 4)
    bsh = layouts.from_bnsd(x, "BSH")
    assert torch.equal(bsh[0, 1, 4:8], x[0, 1, 1])  # head 1 of position 1


def test_layout_errors():
    with pytest.raises(ValueError, match="unknown layout"):
        layouts.to_bnsd(torch.zeros(1, 1, 1, 1), "NSD")
    with pytest.raises(ValueError, match="num_heads"):
        layouts.to_bnsd(torch.zeros(1, 2, 6), "BSH")
    with pytest.raises(ValueError, match="num_heads"):
        layouts.to_bnsd(torch.zeros(1, 2, 7), "BSH", num_heads=2)


def test_permute_pitfall_bsnd_passed_as_bnsd_is_wrong():
    """The blog's warning: HuggingFace BSND tensors read as BNSD give a different (wrong) result."""
    q, k, v = _qkv(b=1, nq=4, nkv=4, s=8, d=8)
    ref = attention_ref.naive_attention(q, k, v)
    hf = [layouts.from_bnsd(t, "BSND") for t in (q, k, v)]
    wrong = attention_ref.naive_attention(*hf)  # BSND misread as BNSD
    assert not torch.allclose(layouts.to_bnsd(wrong, "BSND"), ref, atol=1e-3)
    right = attention_ref.naive_attention(*[layouts.to_bnsd(t, "BSND") for t in hf])
    torch.testing.assert_close(right, ref)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("nkv", [4, 2])
def test_pad_qkv_equals_unpadded(causal, nkv):
    q, k, v = _qkv(nkv=nkv, s=100)
    ref = attention_ref.naive_attention(q, k, v, causal=causal)
    p = layouts.pad_qkv(q, k, v, multiple=128)
    assert (p.seq_len_q, p.padded_len_q, p.padded_len_kv) == (100, 128, 128)
    assert p.actual_seq_qlen == [100, 100] and p.actual_seq_kvlen == [100, 100]
    assert p.key_padding_mask.shape == (2, 128) and p.key_padding_mask[:, 100:].all()
    assert not p.key_padding_mask[:, :100].any()
    assert p.atten_mask.shape == (2, 1, 128, 128) and p.atten_mask.dtype == torch.bool
    for out in (
        attention_ref.naive_attention(p.q, p.k, p.v, causal=causal, key_padding_mask=p.key_padding_mask),
        attention_ref.naive_attention(p.q, p.k, p.v, causal=causal, attn_mask=p.atten_mask),
        attention_ref.blocked_attention(p.q, p.k, p.v, causal=causal, attn_mask=p.atten_mask, block_k=48),
    ):
        torch.testing.assert_close(p.unpad(out), ref, atol=2e-6, rtol=1e-5)


def test_pad_qkv_other_layout():
    q, k, v = _qkv(s=50)
    ref = attention_ref.naive_attention(q, k, v)
    bsnd = [layouts.from_bnsd(t, "BSND") for t in (q, k, v)]
    p = layouts.pad_qkv(*bsnd, multiple=64, layout="BSND")
    assert p.q.shape == (2, 64, 4, 16)
    out = attention_ref.naive_attention(*[layouts.to_bnsd(t, "BSND") for t in (p.q, p.k, p.v)],
                                        key_padding_mask=p.key_padding_mask)
    torch.testing.assert_close(p.unpad(layouts.from_bnsd(out, "BSND"), "BSND"), layouts.from_bnsd(ref, "BSND"))


def test_pad_noop_when_aligned():
    x = torch.randn(1, 2, 128, 4)
    padded, n, mask = layouts.pad_seq_len(x, 128)
    assert padded is x and n == 128 and not mask.any()


def test_seed_padding_changes_the_result():
    """The blog's pad_seq_len: zero keys without a mask, and it returns the padded length."""
    q, k, v = _qkv(s=100)
    ref = attention_ref.naive_attention(q, k, v)
    qp, _ = layouts.seed_pad_seq_len(q)
    kp, _ = layouts.seed_pad_seq_len(k)
    vp, actual_seq_len = layouts.seed_pad_seq_len(v)
    assert actual_seq_len == 128  # the "real" length it returns is the padded one
    out = attention_ref.naive_attention(qp, kp, vp)
    assert out[:, :, :actual_seq_len].shape[2] == 128  # so the blog's slice removes nothing
    err = (out[:, :, :100] - ref).abs().max().item()
    assert err > 1e-2, err  # the real rows are wrong: weight leaks onto the 28 zero keys
    # and with the mask, the same padded tensors give the right answer
    kpm = torch.zeros(2, 128, dtype=torch.bool)
    kpm[:, 100:] = True
    fixed = attention_ref.naive_attention(qp, kp, vp, key_padding_mask=kpm)
    torch.testing.assert_close(fixed[:, :, :100], ref, atol=2e-6, rtol=1e-5)


def test_seed_padding_promotes_half_precision():
    x = torch.randn(1, 2, 100, 8, dtype=torch.float16)
    padded, _ = layouts.seed_pad_seq_len(x)
    assert padded.dtype == torch.float32  # torch.zeros without dtype
    ours, _, _ = layouts.pad_seq_len(x, 128)
    assert ours.dtype == torch.float16
