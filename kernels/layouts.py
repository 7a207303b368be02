"""Tensor layouts of ``npu_fusion_attention`` and sequence-length padding.

Self-contained (torch + stdlib only); shipped to the managed hosts next to ``fa_check.py``.

Layouts (``input_layout`` of ``torch_npu.npu_fusion_attention``):

========  ==========================  =========================================================
layout    shape                       note
========  ==========================  =========================================================
BNSD      [B, N, S, D]                the reference layout used by ``attention_ref``
BSND      [B, S, N, D]                HuggingFace's q/k/v layout before ``transpose(1, 2)``
BSH       [B, S, N*D]                 H = N * D, heads contiguous inside H
SBH       [S, B, N*D]                 Megatron-style
========  ==========================  =========================================================

The seed blog's pitfall: passing BSND (HuggingFace) tensors to a call that assumes BNSD silently gives wrong
results. With ``npu_fusion_attention`` the layout is explicit (``input_layout``), so either pass ``"BSND"`` or
``permute(0, 2, 1, 3)`` to BNSD first; ``to_bnsd``/``from_bnsd`` do the latter.

Padding: ``pad_seq_len`` pads S up to a multiple (the blog's "align to 128") **and** returns the key-padding mask and
the real lengths, so attention over the padded tensors equals attention over the unpadded ones on the real rows.
``seed_pad_seq_len`` reproduces the blog's helper for comparison: it appends zero keys/values without any mask, so
every real query also attends to ``pad_len`` zero keys (score 0, weight ``exp(-max)``) whose zero values drag the
output towards 0 -- and it returns the *padded* length, so the blog's "cut off the padding" slice is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LAYOUTS = ("BNSD", "BSND", "BSH", "SBH")

__all__ = [
    "LAYOUTS",
    "PaddedQKV",
    "from_bnsd",
    "key_padding_to_atten_mask",
    "pad_qkv",
    "pad_seq_len",
    "seed_pad_seq_len",
    "seq_dim",
    "to_bnsd",
    "unpad_seq_len",
]


def seq_dim(layout: str) -> int:
    """Index of the sequence dimension in ``layout``."""
    return {"BNSD": 2, "BSND": 1, "BSH": 1, "SBH": 0}[_check(layout)]


def _check(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    return layout


def to_bnsd(x: torch.Tensor, layout: str, num_heads: int | None = None) -> torch.Tensor:
    """Convert ``x`` from ``layout`` to a contiguous BNSD tensor. BSH/SBH need ``num_heads``."""
    _check(layout)
    if layout == "BNSD":
        return x.contiguous()
    if layout == "BSND":
        return x.permute(0, 2, 1, 3).contiguous()
    if num_heads is None or num_heads <= 0:
        raise ValueError(f"layout {layout} needs num_heads")
    if x.dim() != 3 or x.shape[-1] % num_heads:
        raise ValueError(f"{layout} tensor {tuple(x.shape)}: last dim must be num_heads*D with num_heads={num_heads}")
    d = x.shape[-1] // num_heads
    if layout == "BSH":
        b, s, _unused = x.shape
        return x.reshape(b, s, num_heads, d).permute(0, 2, 1, 3).contiguous()
    s, b, _unused = x.shape  # SBH
    return x.reshape(s, b, num_heads, d).permute(1, 2, 0, 3).contiguous()


def from_bnsd(x: torch.Tensor, layout: str) -> torch.Tensor:
    """Convert a BNSD tensor to a contiguous tensor in ``layout``."""
    _check(layout)
    if x.dim() != 4:
        raise ValueError(f"expected a BNSD tensor, got shape {tuple(x.shape)}")
    b, n, s, d = x.shape
    if layout == "BNSD":
        return x.contiguous()
    if layout == "BSND":
        return x.permute(0, 2, 1, 3).contiguous()
    if layout == "BSH":
        return x.permute(0, 2, 1, 3).reshape(b, s, n * d).contiguous()
    return x.permute(2, 0, 1, 3).reshape(s, b, n * d).contiguous()  # SBH


def key_padding_to_atten_mask(key_padding_mask: torch.Tensor, sq: int) -> torch.Tensor:
    """``[B, Skv]`` key padding (True = pad) -> ``npu_fusion_attention`` ``atten_mask`` ``[B, 1, Sq, Skv]`` bool."""
    b, skv = key_padding_mask.shape
    return key_padding_mask.to(torch.bool).view(b, 1, 1, skv).expand(b, 1, sq, skv).contiguous()


@dataclass
class PaddedQKV:
    """Result of :func:`pad_qkv`."""

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    seq_len_q: int
    seq_len_kv: int
    padded_len_q: int
    padded_len_kv: int
    key_padding_mask: torch.Tensor  # [B, Skv_padded] bool, True = padding key
    atten_mask: torch.Tensor  # [B, 1, Sq_padded, Skv_padded] bool, True = masked (npu_fusion_attention convention)
    actual_seq_qlen: list[int]  # per-batch real lengths
    actual_seq_kvlen: list[int]

    def unpad(self, out: torch.Tensor, layout: str = "BNSD") -> torch.Tensor:
        """Drop the padded query rows of an attention output."""
        return unpad_seq_len(out, self.seq_len_q, layout)


def pad_seq_len(
    x: torch.Tensor, multiple: int = 128, layout: str = "BNSD"
) -> tuple[torch.Tensor, int, torch.Tensor]:
    """Pad the sequence dim of ``x`` with zeros to a multiple of ``multiple``.

    Returns ``(padded, real_len, key_padding_mask)``; the mask is ``[B, S_padded]`` bool with True on the padding
    positions. Unlike the seed blog's helper, the **real** length comes back, and the mask must be passed to the
    attention call whenever ``padded`` is used as keys/values (see :func:`pad_qkv`, which does both).
    """
    if multiple <= 0:
        raise ValueError("multiple must be positive")
    sd = seq_dim(layout)
    s = x.shape[sd]
    pad = (-s) % multiple
    bdim = 1 if layout == "SBH" else 0
    b = x.shape[bdim]
    mask = torch.zeros(b, s + pad, dtype=torch.bool, device=x.device)
    if pad == 0:
        return x, s, mask
    shape = list(x.shape)
    shape[sd] = pad
    zeros = torch.zeros(shape, dtype=x.dtype, device=x.device)
    mask[:, s:] = True
    return torch.cat([x, zeros], dim=sd), s, mask


def unpad_seq_len(x: torch.Tensor, seq_len: int, layout: str = "BNSD") -> torch.Tensor:
    """Keep the first ``seq_len`` positions of the sequence dim."""
    return x.narrow(seq_dim(layout), 0, seq_len)


def pad_qkv(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, multiple: int = 128, layout: str = "BNSD"
) -> PaddedQKV:
    """Pad q, k, v to a multiple of ``multiple`` along S and return the masks that make it exact.

    Attention over ``(p.q, p.k, p.v)`` with ``key_padding_mask=p.key_padding_mask`` (or, on the NPU,
    ``atten_mask=p.atten_mask``) followed by ``p.unpad(out)`` equals attention over ``(q, k, v)``. Combine it with a
    causal mask freely: padding sits after every real key, so causality is unaffected.
    """
    qp, sq, _unused = pad_seq_len(q, multiple, layout)
    kp, skv, kpm = pad_seq_len(k, multiple, layout)
    vp, _unused, _unused2 = pad_seq_len(v, multiple, layout)
    b = kpm.shape[0]
    return PaddedQKV(
        q=qp,
        k=kp,
        v=vp,
        seq_len_q=sq,
        seq_len_kv=skv,
        padded_len_q=qp.shape[seq_dim(layout)],
        padded_len_kv=kp.shape[seq_dim(layout)],
        key_padding_mask=kpm,
        atten_mask=key_padding_to_atten_mask(kpm, qp.shape[seq_dim(layout)]),
        actual_seq_qlen=[sq] * b,
        actual_seq_kvlen=[skv] * b,
    )


def seed_pad_seq_len(tensor: torch.Tensor, pad_to: int = 128) -> tuple[torch.Tensor, int]:
    """The seed blog's ``pad_seq_len``, kept ONLY to show why it is wrong (do not use).

    Faithful to the blog except ``device='npu'`` became ``device=tensor.device``. Defects:

    1. zero keys/values are appended with no mask, so softmax spreads weight onto them: the result changes;
    2. it returns ``seq_len + pad_len`` (the padded length), so ``output[:, :, :actual_seq_len]`` removes nothing;
    3. ``torch.zeros`` without ``dtype`` is float32: fp16/bf16 inputs are silently promoted by ``torch.cat``.
    """
    batch, num_heads, seq_len, head_dim = tensor.shape
    pad_len = (pad_to - seq_len % pad_to) % pad_to
    if pad_len == 0:
        return tensor, seq_len
    padded = torch.cat([tensor, torch.zeros(batch, num_heads, pad_len, head_dim, device=tensor.device)], dim=2)
    return padded, seq_len + pad_len
