"""Float32 reference attention for checking FlashAttention outputs.

Self-contained (torch + stdlib only): this file is shipped to the managed hosts next to ``fa_check.py``.

All functions take BNSD tensors ``q: [B, Nq, Sq, D]``, ``k: [B, Nkv, Skv, D]``, ``v: [B, Nkv, Skv, Dv]`` of any
floating dtype and compute in float32 on the tensors' device. ``Nq`` must be a multiple of ``Nkv`` (GQA/MQA).

Masks follow the ``npu_fusion_attention`` convention: **True means masked out**.

- ``causal=True``: query ``i`` sees keys ``j <= i`` (top-left aligned, as ``torch.nn.functional.
  scaled_dot_product_attention(is_causal=True)`` and ``npu_fusion_attention`` with an upper-triangular mask and
  ``sparse_mode=0``).
- ``key_padding_mask``: bool ``[B, Skv]``, True for padding keys.
- ``attn_mask``: optional bool mask broadcastable to ``[B, Nq, Sq, Skv]``.

A query row whose keys are all masked yields zeros (not NaN).

``naive_attention`` materialises the full ``S x S`` score matrix (small sizes only). ``blocked_attention`` walks over
blocks of queries and keys with an online softmax (the FlashAttention recurrence), so its extra memory is
``O(block_q * block_k)`` per head instead of ``O(Sq * Skv)``: a float32 check at S=16384 stays in a few hundred MB.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "attention_reference",
    "blocked_attention",
    "build_mask",
    "check_shapes",
    "naive_attention",
]


def check_shapes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[int, int, int, int, int, int]:
    """Validate BNSD shapes; returns ``(B, Nq, Nkv, Sq, Skv, D)``."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"expected 4-D BNSD tensors, got q{tuple(q.shape)} k{tuple(k.shape)} v{tuple(v.shape)}")
    b, nq, sq, d = q.shape
    bk, nkv, skv, dk = k.shape
    bv, nv, sv, _dv = v.shape
    if (bk, bv) != (b, b):
        raise ValueError(f"batch mismatch: q {b}, k {bk}, v {bv}")
    if nv != nkv or sv != skv:
        raise ValueError(f"key/value mismatch: k{tuple(k.shape)} v{tuple(v.shape)}")
    if dk != d:
        raise ValueError(f"head dim mismatch: q {d}, k {dk}")
    if nkv == 0 or nq % nkv:
        raise ValueError(f"GQA needs Nq a multiple of Nkv, got Nq={nq} Nkv={nkv}")
    return b, nq, nkv, sq, skv, d


def build_mask(
    b: int,
    sq: int,
    skv: int,
    *,
    causal: bool = False,
    key_padding_mask: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    device: torch.device | str | None = None,
    q_offset: int = 0,
    k_offset: int = 0,
) -> torch.Tensor | None:
    """Combined bool mask (True = masked) for a ``[sq x skv]`` tile starting at ``(q_offset, k_offset)``.

    The result broadcasts to ``[B, N, sq, skv]``; ``None`` when nothing is masked. ``key_padding_mask`` and
    ``attn_mask`` are given for the whole problem and sliced to the tile here.
    """
    mask = None
    if causal:
        qi = torch.arange(q_offset, q_offset + sq, device=device).unsqueeze(1)
        kj = torch.arange(k_offset, k_offset + skv, device=device).unsqueeze(0)
        mask = (kj > qi).view(1, 1, sq, skv)
    if key_padding_mask is not None:
        kpm = key_padding_mask.to(device=device, dtype=torch.bool)
        if kpm.shape[0] != b:
            raise ValueError(f"key_padding_mask batch {kpm.shape[0]} != {b}")
        kpm = kpm[:, k_offset : k_offset + skv].view(b, 1, 1, skv)
        mask = kpm if mask is None else (mask | kpm)
    if attn_mask is not None:
        am = attn_mask.to(device=device, dtype=torch.bool)
        while am.dim() < 4:
            am = am.unsqueeze(0)
        am = am[..., q_offset : q_offset + sq, k_offset : k_offset + skv]
        mask = am if mask is None else (mask | am)
    return mask


def _group(q: torch.Tensor, nkv: int) -> torch.Tensor:
    """[B, Nq, S, D] -> [B, Nkv, G, S, D] without copying: query heads ``h*G .. h*G+G-1`` share kv head ``h``."""
    b, nq, s, d = q.shape
    return q.reshape(b, nkv, nq // nkv, s, d)


def naive_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    key_padding_mask: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """Textbook ``softmax(q k^T * scale + mask) v`` in float32, materialising the whole score matrix."""
    b, nq, nkv, sq, skv, d = check_shapes(q, k, v)
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    qf, kf, vf = q.float(), k.float(), v.float()
    if nq != nkv:
        g = nq // nkv
        kf = kf.repeat_interleave(g, dim=1)
        vf = vf.repeat_interleave(g, dim=1)
    scores = torch.matmul(qf, kf.transpose(-1, -2)) * scale
    mask = build_mask(b, sq, skv, causal=causal, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                      device=q.device)
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    probs = torch.nan_to_num(probs, nan=0.0)  # fully masked rows -> 0
    return torch.matmul(probs, vf)


def blocked_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    key_padding_mask: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    scale: float | None = None,
    block_q: int = 1024,
    block_k: int = 512,
) -> torch.Tensor:
    """Memory-efficient float32 attention: blocks over queries and keys with an online softmax.

    Peak extra memory is a few ``[B, Nq, block_q, block_k]`` float32 tiles plus the float32 output. GQA is handled
    by broadcasting (keys and values are never repeated). Causal tiles entirely above the diagonal are skipped.
    """
    b, nq, nkv, sq, skv, d = check_shapes(q, k, v)
    if block_q <= 0 or block_k <= 0:
        raise ValueError("block sizes must be positive")
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    g = nq // nkv
    dv = v.shape[-1]
    out = torch.empty(b, nkv, g, sq, dv, dtype=torch.float32, device=q.device)
    for q0 in range(0, sq, block_q):
        q1 = min(q0 + block_q, sq)
        qb = _group(q[:, :, q0:q1], nkv).float() * scale  # [B, Nkv, G, bq, D]
        bq = q1 - q0
        m = torch.full((b, nkv, g, bq, 1), float("-inf"), dtype=torch.float32, device=q.device)
        den = torch.zeros((b, nkv, g, bq, 1), dtype=torch.float32, device=q.device)
        acc = torch.zeros((b, nkv, g, bq, dv), dtype=torch.float32, device=q.device)
        k_end = min(skv, q1) if causal else skv
        for k0 in range(0, k_end, block_k):
            k1 = min(k0 + block_k, k_end)
            kb = k[:, :, k0:k1].float().unsqueeze(2)  # [B, Nkv, 1, bk, D]
            vb = v[:, :, k0:k1].float().unsqueeze(2)
            s = torch.matmul(qb, kb.transpose(-1, -2))  # [B, Nkv, G, bq, bk]
            mask = build_mask(b, bq, k1 - k0, causal=causal, key_padding_mask=key_padding_mask,
                              attn_mask=attn_mask, device=q.device, q_offset=q0, k_offset=k0)
            if mask is not None:
                # mask is [B|1, Nq|1, bq, bk]; bring it to the grouped [B|1, Nkv|1, G|1, bq, bk]
                grouped = (mask.shape[0], nkv, g, bq, k1 - k0)
                mask = mask.unsqueeze(2) if mask.shape[1] == 1 else mask.reshape(grouped)
                s = s.masked_fill(mask, float("-inf"))
            m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
            # rows with no visible key so far keep m = -inf; use 0 there so exp() gives 0 instead of NaN
            m_safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
            p = torch.exp(s - m_safe)
            corr = torch.exp(m - m_safe)
            den = den * corr + p.sum(dim=-1, keepdim=True)
            acc = acc * corr + torch.matmul(p, vb)
            m = m_new
            del s, p
        out[:, :, :, q0:q1] = torch.where(den > 0, acc / den.clamp_min(1e-30), torch.zeros_like(acc))
    return out.reshape(b, nq, sq, dv)


def attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    key_padding_mask: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    scale: float | None = None,
    naive_max_elems: int = 1 << 22,
) -> torch.Tensor:
    """Float32 reference; naive when ``B*Nq*Sq*Skv <= naive_max_elems`` (16 MB of scores), else blocked."""
    b, nq, _nkv, sq, skv, _d = check_shapes(q, k, v)
    kwargs = {"causal": causal, "key_padding_mask": key_padding_mask, "attn_mask": attn_mask, "scale": scale}
    if b * nq * sq * skv <= naive_max_elems:
        return naive_attention(q, k, v, **kwargs)
    return blocked_attention(q, k, v, **kwargs)
