"""fa_bench: JSON for a CI-sized grid, OOM (simulated budget and real errors) reported, reference memory ratio."""

from __future__ import annotations

import json
import sys
from pathlib import Path

KERNELS = str(Path(__file__).resolve().parents[2] / "kernels")
if KERNELS not in sys.path:
    sys.path.insert(0, KERNELS)

import device  # noqa: E402
import fa_bench  # noqa: E402

TINY = ["--device", "cpu", "--grid", "small", "--batches", "1,2", "--seqs", "64,128", "--heads", "2",
        "--head-dim", "16", "--warmup", "0", "--repeats", "1"]


def _run(capsys, argv):
    rc = fa_bench.main(argv)
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    return rc, json.loads(lines[0])


def test_small_grid_with_memory_limit(capsys):
    # float32, 2 heads, D=16: standard needs inputs + 2 x [B,2,S,S] scores -> 608 KiB at B=2,S=128, 304 KiB at
    # B=1,S=128; FlashAttention needs 160 KiB at most. A 0.4 MB budget refuses exactly the largest standard run.
    rc, rep = _run(capsys, TINY + ["--mem-limit-mb", "0.4"])
    assert rc == 0 and rep["ok"] is True and rep["mode"] == "grid"
    assert rep["device"] == "cpu" and rep["dtype"] == "float32" and rep["mem_limit_mb"] == 0.4
    rows = {(r["batch"], r["seq"]): r for r in rep["results"]}
    assert set(rows) == {(1, 64), (1, 128), (2, 64), (2, 128)}
    big = rows[(2, 128)]["standard"]
    assert big["oom"] is True and big["ok"] is False and big["latency_ms"] is None
    assert big["error"].startswith("simulated OOM") and big["accounted_peak_mb"] > 0.4
    for key, row in rows.items():
        fa = row["flash"]
        assert fa["ok"] and not fa["oom"] and fa["latency_ms"] > 0 and fa["tokens_per_s"] > 0, key
        assert fa["peak_mem_source"] == "accounted" and fa["peak_mem_mb"] == fa["accounted_peak_mb"]
        assert row["mem_ratio"] > 1
        if key != (2, 128):
            assert row["standard"]["ok"] and row["speedup"] is not None
    assert rep["seed_blog_table"][0] == {"batch": 1, "seq": 512, "standard_ms": 120, "flash_ms": 35}


def test_real_oom_errors_are_reported(capsys, monkeypatch):
    def boom(self, *a, **kw):
        raise RuntimeError("NPU out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(device.DeviceAdapter, "flash_attention", boom)
    rc, rep = _run(capsys, TINY + ["--batches", "1", "--seqs", "64"])
    fa = rep["results"][0]["flash"]
    assert fa["oom"] is True and fa["ok"] is False and "out of memory" in fa["error"]
    assert rep["ok"] is False and rc == 1


def test_is_oom_error():
    assert device.is_oom_error(device.SimulatedOOM("x"))
    assert device.is_oom_error(RuntimeError("CUDA out of memory."))
    assert not device.is_oom_error(RuntimeError("shape mismatch"))


def test_reference_memory_mode_prints_the_ratio(capsys):
    rc, rep = _run(capsys, ["--mode", "ref-memory", "--no-measure"])
    assert rc == 0 and rep["shape"]["S"] == 16384 and rep["measured"] is None
    assert rep["computed"]["naive_mb"] > 2000 and rep["computed"]["blocked_mb"] < 20
    assert rep["computed"]["ratio"] > 100
