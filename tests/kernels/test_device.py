"""Device adapter on the CPU (SDPA path): layouts, GQA, causal combined with a padding mask; device selection."""

from __future__ import annotations

import sys
from pathlib import Path

KERNELS = str(Path(__file__).resolve().parents[2] / "kernels")
if KERNELS not in sys.path:
    sys.path.insert(0, KERNELS)

import attention_ref  # noqa: E402
import device  # noqa: E402
import layouts  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.mark.parametrize("layout", layouts.LAYOUTS)
def test_cpu_adapter_layouts_gqa_causal(layout):
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(2, 4, 40, 8, generator=g), torch.randn(2, 2, 40, 8, generator=g), torch.randn(
        2, 2, 40, 8, generator=g)
    ref = attention_ref.naive_attention(q, k, v, causal=True)
    ad = device.get_adapter("cpu")
    out = ad.flash_attention(*(layouts.from_bnsd(t, layout) for t in (q, k, v)), num_heads=4, layout=layout,
                             causal=True)
    torch.testing.assert_close(layouts.to_bnsd(out, layout, 4), ref, atol=1e-5, rtol=1e-5)


def test_cpu_adapter_causal_and_padding_mask_combine():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 50, 8, generator=g) for _ in range(3))
    ref = attention_ref.naive_attention(q, k, v, causal=True)
    p = layouts.pad_qkv(q, k, v, multiple=64)
    out = device.get_adapter("cpu").flash_attention(p.q, p.k, p.v, num_heads=2, causal=True, atten_mask=p.atten_mask)
    torch.testing.assert_close(p.unpad(out), ref, atol=1e-5, rtol=1e-5)


def test_default_scale_is_one_over_sqrt_d():
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(1, 1, 16, 64, generator=g) for _ in range(3))
    out = device.get_adapter("cpu").flash_attention(q, k, v, num_heads=1)
    torch.testing.assert_close(out, attention_ref.naive_attention(q, k, v, scale=0.125), atol=1e-5, rtol=1e-5)


def test_cpu_timing_and_memory():
    ad = device.get_adapter("cpu")
    times = ad.time_ms(lambda: None, warmup=1, repeats=3)
    assert len(times) == 3 and all(t >= 0 for t in times)
    assert ad.peak_memory_bytes() is None
    assert ad.describe()["device"] == "cpu"


def test_device_selection(monkeypatch):
    monkeypatch.setenv("ASCEND_FA_DEVICE", "cpu")
    assert device.detect_device() == "cpu"
    monkeypatch.setenv("ASCEND_FA_DEVICE", "tpu")
    with pytest.raises(ValueError, match="ASCEND_FA_DEVICE"):
        device.detect_device()
    monkeypatch.delenv("ASCEND_FA_DEVICE")
    monkeypatch.setattr(device.importlib.util, "find_spec", lambda name: object() if name == "torch_npu" else None)
    assert device.detect_device() == "npu"  # installed torch_npu wins, even if importing it would fail
    with pytest.raises(ValueError, match="unknown device"):
        device.DeviceAdapter("tpu")
    with pytest.raises(ValueError, match="causal_sparse_mode"):
        device.DeviceAdapter("cpu", causal_sparse_mode=3)
