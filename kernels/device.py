"""Device adapters: one FlashAttention call, timing and memory accounting for ``npu``, ``cuda`` and ``cpu``.

Self-contained (torch + stdlib only); shipped to the managed hosts next to ``fa_check.py``.

- ``npu``: ``torch_npu.npu_fusion_attention(q, k, v, head_num, input_layout, atten_mask=..., scale=...,
  sparse_mode=...)[0]`` (the function returns a 7-tuple; ``[0]`` is the attention output). ``atten_mask`` is bool,
  **True = masked**. Causal attention is an upper-triangular ``[Sq, Skv]`` mask with ``sparse_mode=0`` (default), or
  the documented ``sparse_mode=2`` (left-up causal) with the compressed 2048x2048 upper-triangular mask.
  ``scale`` defaults to ``1/sqrt(D)`` and is always passed: the operator's own default is ``1.0``.
  Tensors move with ``.npu()``; timing uses ``torch.npu.Event``. With ``ASCEND_RT_VISIBLE_DEVICES=<id>`` the
  process sees exactly one card, as device 0.
- ``cuda`` / ``cpu``: ``torch.nn.functional.scaled_dot_product_attention`` (whose bool mask means *keep*, the
  opposite convention; converted here), timing with CUDA events / ``time.perf_counter``.

``get_adapter(None)`` picks ``$ASCEND_FA_DEVICE`` if set, else ``npu`` when a ``torch_npu`` module is installed
(even if importing it then fails: an NPU host with a broken stack must fail, not silently pass on CPU), else
``cuda`` when available, else ``cpu``.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import time
from collections.abc import Callable

import torch
from layouts import LAYOUTS, from_bnsd, to_bnsd

DEVICES = ("npu", "cuda", "cpu")
NPU_CAUSAL_SPARSE_MODES = (0, 2)
_COMPRESSED_MASK_SIZE = 2048

__all__ = [
    "DEVICES",
    "DeviceAdapter",
    "SimulatedOOM",
    "detect_device",
    "get_adapter",
    "is_oom_error",
]


class SimulatedOOM(MemoryError):
    """Raised by a simulated device memory budget (``fa_bench --mem-limit-mb``)."""


def is_oom_error(exc: BaseException) -> bool:
    """True for real or simulated out-of-memory errors on any device."""
    if isinstance(exc, MemoryError):
        return True
    oom_type = getattr(torch, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "oom" in text.split() or "memory allocation failed" in text


def detect_device() -> str:
    """``$ASCEND_FA_DEVICE``, else npu if torch_npu is installed, else cuda if available, else cpu."""
    forced = os.environ.get("ASCEND_FA_DEVICE", "").strip().lower()
    if forced and forced != "auto":
        if forced not in DEVICES:
            raise ValueError(f"ASCEND_FA_DEVICE={forced!r}: expected one of {', '.join(DEVICES)} or auto")
        return forced
    if importlib.util.find_spec("torch_npu") is not None:
        return "npu"
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def _split_heads(x: torch.Tensor, layout: str, num_heads_q: int, head_dim: int) -> int:
    """Number of heads of a q/k/v tensor in ``layout``."""
    if layout == "BNSD":
        return x.shape[1]
    if layout == "BSND":
        return x.shape[2]
    if x.shape[-1] % head_dim:
        raise ValueError(f"{layout} hidden size {x.shape[-1]} is not a multiple of head dim {head_dim}")
    return x.shape[-1] // head_dim


def _head_dim(q: torch.Tensor, layout: str, num_heads: int) -> int:
    if layout in ("BNSD", "BSND"):
        return q.shape[-1]
    if q.shape[-1] % num_heads:
        raise ValueError(f"{layout} hidden size {q.shape[-1]} is not a multiple of num_heads {num_heads}")
    return q.shape[-1] // num_heads


def _seq_lens(q: torch.Tensor, k: torch.Tensor, layout: str) -> tuple[int, int, int]:
    """(B, Sq, Skv) for ``layout``."""
    if layout == "BNSD":
        return q.shape[0], q.shape[2], k.shape[2]
    if layout in ("BSND", "BSH"):
        return q.shape[0], q.shape[1], k.shape[1]
    return q.shape[1], q.shape[0], k.shape[0]  # SBH


class DeviceAdapter:
    """One accelerator (or the CPU) as seen by the checks and benchmarks."""

    def __init__(self, name: str, index: int = 0, causal_sparse_mode: int = 0):
        if name not in DEVICES:
            raise ValueError(f"unknown device {name!r}; expected one of {', '.join(DEVICES)}")
        if causal_sparse_mode not in NPU_CAUSAL_SPARSE_MODES:
            raise ValueError(f"causal_sparse_mode must be one of {NPU_CAUSAL_SPARSE_MODES}")
        self.name = name
        self.index = index
        self.causal_sparse_mode = causal_sparse_mode
        self.torch_npu = None
        if name == "npu":
            # Import errors propagate with their real message (missing CANN libs, broken package, ...).
            self.torch_npu = importlib.import_module("torch_npu")
            count = torch.npu.device_count()
            if count <= 0:
                raise RuntimeError("torch_npu sees no NPU (torch.npu.device_count() == 0)")
            if index >= count:
                raise RuntimeError(f"NPU index {index} out of range: {count} visible")
            torch.npu.set_device(index)
        elif name == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError("CUDA is not available")
            torch.cuda.set_device(index)

    # ------------------------------------------------------------------ data movement
    def to_device(self, t: torch.Tensor) -> torch.Tensor:
        if self.name == "npu":
            return t.npu()
        if self.name == "cuda":
            return t.cuda()
        return t

    def synchronize(self) -> None:
        if self.name == "npu":
            torch.npu.synchronize()
        elif self.name == "cuda":
            torch.cuda.synchronize()

    # ------------------------------------------------------------------ attention
    def flash_attention(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        *,
        num_heads: int,
        layout: str = "BNSD",
        causal: bool = False,
        atten_mask: torch.Tensor | None = None,
        scale: float | None = None,
    ) -> torch.Tensor:
        """FlashAttention on this device; returns the output in ``layout``.

        ``atten_mask``: bool, True = masked, broadcastable to ``[B, 1, Sq, Skv]`` (``[Sq, Skv]``,
        ``[1, 1, Sq, Skv]``, ``[B, 1, Sq, Skv]`` or ``[B, N, Sq, Skv]``).
        """
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}")
        head_dim = _head_dim(q, layout, num_heads)
        scale = 1.0 / math.sqrt(head_dim) if scale is None else float(scale)
        if self.name == "npu":
            return self._npu_attention(q, k, v, num_heads, layout, causal, atten_mask, scale)
        return self._sdpa(q, k, v, num_heads, head_dim, layout, causal, atten_mask, scale)

    def _npu_attention(self, q, k, v, num_heads, layout, causal, atten_mask, scale):
        _b, sq, skv = _seq_lens(q, k, layout)
        sparse_mode = 0
        mask = atten_mask
        if causal:
            if mask is None and self.causal_sparse_mode == 2:
                sparse_mode = 2
                n = _COMPRESSED_MASK_SIZE
                mask = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
            else:
                tri = torch.triu(torch.ones(sq, skv, dtype=torch.bool), diagonal=1)
                mask = tri if mask is None else (mask.cpu().to(torch.bool) | tri)
        if mask is not None:
            mask = self.to_device(mask.to(torch.bool).contiguous())
        result = self.torch_npu.npu_fusion_attention(
            q, k, v, num_heads, layout, atten_mask=mask, scale=scale, sparse_mode=sparse_mode
        )
        return result[0]

    def _sdpa(self, q, k, v, num_heads, head_dim, layout, causal, atten_mask, scale):
        qh = to_bnsd(q, layout, num_heads)
        nkv = _split_heads(k, layout, num_heads, head_dim)
        kh = to_bnsd(k, layout, nkv)
        vh = to_bnsd(v, layout, nkv)
        kwargs = {"scale": scale}
        if qh.shape[1] != kh.shape[1]:
            kwargs["enable_gqa"] = True
        sq, skv = qh.shape[2], kh.shape[2]
        if atten_mask is not None:
            masked = atten_mask.to(device=qh.device, dtype=torch.bool)
            if causal:
                masked = masked | torch.triu(torch.ones(sq, skv, dtype=torch.bool, device=qh.device), diagonal=1)
            kwargs["attn_mask"] = ~masked  # SDPA: True = take part in attention
        elif causal:
            kwargs["is_causal"] = True
        out = torch.nn.functional.scaled_dot_product_attention(qh, kh, vh, **kwargs)
        return from_bnsd(out, layout)

    # ------------------------------------------------------------------ timing and memory
    def time_ms(self, fn: Callable[[], object], warmup: int = 1, repeats: int = 3) -> list[float]:
        """Run ``fn`` ``warmup`` times untimed, then ``repeats`` timed runs; per-run milliseconds."""
        for _unused in range(max(0, warmup)):
            fn()
        self.synchronize()
        times = []
        for _unused in range(max(1, repeats)):
            if self.name in ("npu", "cuda"):
                mod = torch.npu if self.name == "npu" else torch.cuda
                start, end = mod.Event(enable_timing=True), mod.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                self.synchronize()
                times.append(float(start.elapsed_time(end)))
            else:
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1000.0)
        return times

    def reset_peak_memory(self) -> None:
        mod = self._mem_module()
        if mod is not None:
            reset = getattr(mod, "reset_peak_memory_stats", None)
            if callable(reset):
                reset()

    def peak_memory_bytes(self) -> int | None:
        """``max_memory_allocated`` on npu/cuda; ``None`` on cpu (no allocator statistics)."""
        mod = self._mem_module()
        if mod is None:
            return None
        fn = getattr(mod, "max_memory_allocated", None)
        return int(fn()) if callable(fn) else None

    def _mem_module(self):
        if self.name == "npu":
            return torch.npu
        if self.name == "cuda":
            return torch.cuda
        return None

    def describe(self) -> dict:
        info = {"device": self.name, "index": self.index, "torch_version": torch.__version__}
        if self.torch_npu is not None:
            info["torch_npu_version"] = getattr(self.torch_npu, "__version__", None)
        if self.name == "cuda":
            info["device_name"] = torch.cuda.get_device_name(self.index)
        return info


def get_adapter(name: str | None = None, index: int = 0, causal_sparse_mode: int = 0) -> DeviceAdapter:
    """Adapter for ``name`` (``npu``/``cuda``/``cpu``), or the auto-detected device when ``None``/``auto``."""
    if name is None or name == "auto":
        name = detect_device()
    return DeviceAdapter(name, index=index, causal_sparse_mode=causal_sparse_mode)
