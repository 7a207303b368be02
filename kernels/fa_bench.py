"""Benchmark standard attention against FlashAttention; print ONE JSON object on stdout.

Two modes.

``--mode grid`` (default): the seed blog's table. For every (batch, seq) of the grid -- the seed grid is batch
1/4/16 x seq 512/1024/2048, 32 heads, head dim 128, fp16 on npu/cuda (float32 on cpu unless ``--dtype``) -- it times

- ``standard``: explicit ``softmax(q k^T * scale) v`` that materialises the ``S x S`` scores and probabilities;
- ``flash``: the device adapter's FlashAttention (``npu_fusion_attention`` on an NPU, SDPA elsewhere);

with device events (``torch.npu.Event`` / ``torch.cuda.Event``; ``perf_counter`` on cpu), ``--warmup`` untimed runs
and the median of ``--repeats`` timed runs. Each result has latency, peak memory, tokens/s (``B*S / latency``) and an
``oom`` flag: an out-of-memory error is caught and reported, never fatal.

Peak memory: on npu/cuda ``max_memory_allocated`` after ``reset_peak_memory_stats`` (``peak_mem_source:
"device"``); every result also carries ``accounted_peak_mb``, the bytes of the tensors each algorithm must hold at
its peak (inputs, S x S scores and probabilities, output; FlashAttention: inputs, output, softmax statistics).
``--mem-limit-mb`` simulates a device memory budget with that accounting: an algorithm whose live tensors would exceed
the budget is refused before it allocates and reported as ``oom: true`` with ``error: "simulated OOM: ..."``. On cpu
without ``--mem-limit-mb`` half of MemAvailable is used as the budget, so the standard path cannot take the machine
down. ``--grid small`` is a CI-sized grid (batch 1/2, seq 128/256, 4 heads, dim 64).

``--mode ref-memory``: float32 *reference* attention memory at ``--ref-seq`` (default 16384): the naive reference
(``attention_ref.naive_attention``, S x S scores) against the blocked online-softmax one
(``attention_ref.blocked_attention``). Prints computed tensor sizes for both and the ratio; with ``--measure`` (or
automatically when MemAvailable is at least 3x the naive need) it also runs each in a fresh subprocess and reports
the peak RSS growth (``ru_maxrss``) over the inputs. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import torch  # noqa: E402
from device import SimulatedOOM, get_adapter, is_oom_error  # noqa: E402

GRIDS = {
    "seed": {"batches": [1, 4, 16], "seqs": [512, 1024, 2048], "heads": 32, "head_dim": 128},
    "small": {"batches": [1, 2], "seqs": [128, 256], "heads": 4, "head_dim": 64},
}

# The seed blog's own table (Atlas 800T A2, fp16, "Llama-2-7B"): claims to compare against, not measurements.
SEED_BLOG_TABLE = [
    {"batch": 1, "seq": 512, "standard_ms": 120, "flash_ms": 35},
    {"batch": 1, "seq": 2048, "standard_ms": 2380, "flash_ms": 1120},
    {"batch": 4, "seq": 2048, "standard_ms": None, "flash_ms": 3800, "standard": "OOM"},
    {"batch": 16, "seq": 1024, "standard_ms": None, "flash_ms": 4200, "standard": "OOM"},
]

MB = 1024 * 1024


class MemoryBudget:
    """Byte accounting of live tensors with an optional limit (a simulated device memory size)."""

    def __init__(self, limit_bytes: int | None):
        self.limit = limit_bytes
        self.live = 0
        self.peak = 0

    def alloc(self, nbytes: int, what: str) -> None:
        if self.limit is not None and self.live + nbytes > self.limit:
            raise SimulatedOOM(
                f"simulated OOM: {what} needs {nbytes / MB:.1f} MB with {self.live / MB:.1f} MB live, "
                f"limit {self.limit / MB:.1f} MB"
            )
        self.live += nbytes
        self.peak = max(self.peak, self.live)

    def free(self, nbytes: int) -> None:
        self.live -= nbytes


def _elt(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def standard_attention(q, k, v, budget: MemoryBudget | None = None):
    """Explicit matmul-softmax-matmul, materialising ``[B, N, S, S]`` scores and probabilities."""
    b, n, s, d = q.shape
    e = _elt(q.dtype)
    ss = b * n * s * k.shape[2] * e
    if budget is not None:
        budget.alloc(ss, f"scores [{b},{n},{s},{k.shape[2]}]")
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(d))
    if budget is not None:
        budget.alloc(ss, "softmax probabilities")
    probs = torch.softmax(scores, dim=-1)
    del scores
    if budget is not None:
        budget.free(ss)
        budget.alloc(b * n * s * v.shape[-1] * e, "output")
    return torch.matmul(probs, v)


def standard_accounting(b, n, s, d, e, budget: MemoryBudget) -> None:
    """Dry accounting of standard_attention (used before touching the device)."""
    ss = b * n * s * s * e
    budget.alloc(ss, f"scores [{b},{n},{s},{s}]")
    budget.alloc(ss, "softmax probabilities")
    budget.free(ss)
    budget.alloc(b * n * s * d * e, "output")


def flash_accounting(b, n, s, d, e, budget: MemoryBudget) -> None:
    """FlashAttention holds the output and per-row softmax statistics (npu: max and sum, [B,N,S,8] float32)."""
    budget.alloc(b * n * s * d * e, "output")
    budget.alloc(2 * b * n * s * 8 * 4, "softmax max/sum")


def mem_available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def bench_one(adapter, algo: str, b: int, s: int, n: int, d: int, dtype, limit: int | None,
              warmup: int, repeats: int) -> dict:
    e = _elt(dtype)
    res = {"ok": False, "oom": False, "latency_ms": None, "latency_ms_all": None, "tokens_per_s": None,
           "peak_mem_mb": None, "peak_mem_source": None, "accounted_peak_mb": None, "error": None}
    inputs = 3 * b * n * s * d * e
    budget = MemoryBudget(limit)
    try:
        budget.alloc(inputs, "q, k, v")
        # refuse before allocating anything on the device
        (standard_accounting if algo == "standard" else flash_accounting)(b, n, s, d, e, budget)
        res["accounted_peak_mb"] = round(budget.peak / MB, 3)
        gen = torch.Generator().manual_seed(0)
        q, k, v = (adapter.to_device(torch.randn(b, n, s, d, generator=gen).to(dtype)) for _unused in range(3))
        if algo == "standard":
            def fn():
                return standard_attention(q, k, v)
        else:
            def fn():
                return adapter.flash_attention(q, k, v, num_heads=n, layout="BNSD")
        adapter.synchronize()
        adapter.reset_peak_memory()
        times = adapter.time_ms(fn, warmup=warmup, repeats=repeats)
        peak = adapter.peak_memory_bytes()
        res["latency_ms_all"] = [round(t, 4) for t in times]
        res["latency_ms"] = float(statistics.median(times))
        res["tokens_per_s"] = b * s / (res["latency_ms"] / 1000.0) if res["latency_ms"] > 0 else None
        if peak:  # None: no allocator statistics (cpu); 0: the allocator did not see this work (a simulator)
            res["peak_mem_mb"], res["peak_mem_source"] = round(peak / MB, 3), "device"
        else:
            res["peak_mem_mb"], res["peak_mem_source"] = res["accounted_peak_mb"], "accounted"
        res["ok"] = True
    except Exception as exc:  # noqa: BLE001 - OOM and other failures are results
        res["oom"] = is_oom_error(exc)
        res["error"] = f"{type(exc).__name__}: {exc}" if not isinstance(exc, SimulatedOOM) else str(exc)
        if res["accounted_peak_mb"] is None:
            res["accounted_peak_mb"] = round(_full_need(algo, b, n, s, d, e) / MB, 3)
    return res


def _full_need(algo, b, n, s, d, e) -> int:
    budget = MemoryBudget(None)
    budget.alloc(3 * b * n * s * d * e, "inputs")
    (standard_accounting if algo == "standard" else flash_accounting)(b, n, s, d, e, budget)
    return budget.peak


def run_grid(args) -> dict:
    adapter = get_adapter(args.device)
    grid = dict(GRIDS[args.grid])
    if args.batches:
        grid["batches"] = args.batches
    if args.seqs:
        grid["seqs"] = args.seqs
    if args.heads:
        grid["heads"] = args.heads
    if args.head_dim:
        grid["head_dim"] = args.head_dim
    dtype_name = args.dtype or ("float32" if adapter.name == "cpu" else "float16")
    dtype = getattr(torch, dtype_name)
    if args.mem_limit_mb is not None:
        limit, limit_source = int(args.mem_limit_mb * MB), "option"
    elif adapter.name == "cpu" and mem_available_bytes():
        limit, limit_source = mem_available_bytes() // 2, "cpu: half of MemAvailable"
    else:
        limit, limit_source = None, None
    results = []
    for b in grid["batches"]:
        for s in grid["seqs"]:
            row = {"batch": b, "seq": s, "heads": grid["heads"], "head_dim": grid["head_dim"], "dtype": dtype_name}
            for algo in ("standard", "flash"):
                row[algo] = bench_one(adapter, algo, b, s, grid["heads"], grid["head_dim"], dtype, limit,
                                      args.warmup, args.repeats)
            st, fa = row["standard"], row["flash"]
            both = st["ok"] and fa["ok"] and fa["latency_ms"]
            row["speedup"] = (st["latency_ms"] / fa["latency_ms"]) if both else None
            row["mem_ratio"] = (st["accounted_peak_mb"] / fa["accounted_peak_mb"]) if fa["accounted_peak_mb"] else None
            results.append(row)
            print(f"fa_bench: b={b} s={s} standard={st['latency_ms'] if st['ok'] else 'OOM' if st['oom'] else 'ERR'} "
                  f"flash={fa['latency_ms'] if fa['ok'] else 'OOM' if fa['oom'] else 'ERR'}", file=sys.stderr)
    return {
        "mode": "grid",
        "ok": all(r["flash"]["ok"] for r in results),
        **adapter.describe(),
        "card": os.environ.get("ASCEND_RT_VISIBLE_DEVICES"),
        "grid": args.grid,
        "dtype": dtype_name,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "mem_limit_mb": round(limit / MB, 1) if limit is not None else None,
        "mem_limit_source": limit_source,
        "results": results,
        "seed_blog_table": SEED_BLOG_TABLE,
    }


# ---------------------------------------------------------------------------------------------- reference memory
def ref_memory_estimate(b: int, n: int, s: int, d: int, block_q: int = 1024, block_k: int = 512) -> dict:
    """Bytes of float32 intermediates each reference holds at its peak (inputs excluded)."""
    f = 4
    naive = 2 * b * n * s * s * f + b * n * s * d * f  # scores + probabilities + output
    bq, bk = min(block_q, s), min(block_k, s)
    blocked = (
        b * n * s * d * f  # float32 output
        + b * n * bq * d * f  # scaled query block
        + b * n * bq * (d + 2) * f  # accumulator, running max, denominator
        + 2 * b * n * bq * bk * f  # score tile and its exp
        + 2 * b * n * bk * d * f  # float32 key/value block
    )
    return {"naive_bytes": naive, "blocked_bytes": blocked}


_MEASURE_SNIPPET = r"""
import resource, sys, json
sys.path.insert(0, {here!r})
import torch, attention_ref
torch.set_num_threads({threads})
q = torch.randn({b}, {n}, {s}, {d}); k = torch.randn({b}, {n}, {s}, {d}); v = torch.randn({b}, {n}, {s}, {d})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = attention_ref.{fn}(q, k, v, causal={causal})
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"rss_growth_bytes": (peak - base) * 1024, "finite": bool(torch.isfinite(out).all())}}))
"""


def _measure(fn: str, b, n, s, d, causal: bool, timeout: float) -> dict:
    code = _MEASURE_SNIPPET.format(here=HERE, threads=max(1, torch.get_num_threads()), b=b, n=n, s=s, d=d, fn=fn,
                                   causal=causal)
    t0 = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout}s"}
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}"}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["seconds"] = round(time.monotonic() - t0, 2)
    return out


def run_ref_memory(args) -> dict:
    b, n, s, d = args.ref_batch, args.ref_heads, args.ref_seq, args.ref_head_dim
    est = ref_memory_estimate(b, n, s, d)
    avail = mem_available_bytes()
    measure = args.measure if args.measure is not None else bool(avail and avail >= 3 * est["naive_bytes"])
    report = {
        "mode": "ref-memory",
        "shape": {"B": b, "N": n, "S": s, "D": d},
        "causal": args.causal,
        "computed": {
            "naive_mb": round(est["naive_bytes"] / MB, 2),
            "blocked_mb": round(est["blocked_bytes"] / MB, 2),
            "ratio": round(est["naive_bytes"] / est["blocked_bytes"], 2),
        },
        "measured": None,
        "mem_available_mb": round(avail / MB) if avail else None,
    }
    if measure:
        naive = _measure("naive_attention", b, n, s, d, args.causal, args.timeout)
        blocked = _measure("blocked_attention", b, n, s, d, args.causal, args.timeout)
        m = {"naive": naive, "blocked": blocked}
        if "rss_growth_bytes" in naive and "rss_growth_bytes" in blocked:
            m["naive_mb"] = round(naive["rss_growth_bytes"] / MB, 2)
            m["blocked_mb"] = round(blocked["rss_growth_bytes"] / MB, 2)
            m["ratio"] = round(naive["rss_growth_bytes"] / max(blocked["rss_growth_bytes"], 1), 2)
        report["measured"] = m
    report["ok"] = True
    return report


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--mode", choices=["grid", "ref-memory"], default="grid")
    p.add_argument("--device", default="auto", choices=["auto", "npu", "cuda", "cpu"])
    p.add_argument("--grid", choices=sorted(GRIDS), default="seed")
    p.add_argument("--batches", type=lambda x: [int(i) for i in x.split(",")], default=None)
    p.add_argument("--seqs", type=lambda x: [int(i) for i in x.split(",")], default=None)
    p.add_argument("--heads", type=int, default=None)
    p.add_argument("--head-dim", type=int, default=None)
    p.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default=None,
                   help="default float16 on npu/cuda, float32 on cpu")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--mem-limit-mb", type=float, default=None,
                   help="simulated device memory budget: runs whose live tensors exceed it are reported as OOM")
    p.add_argument("--ref-seq", type=int, default=16384)
    p.add_argument("--ref-batch", type=int, default=1)
    p.add_argument("--ref-heads", type=int, default=1)
    p.add_argument("--ref-head-dim", type=int, default=64)
    p.add_argument("--causal", action="store_true", help="ref-memory: causal reference")
    p.add_argument("--measure", dest="measure", action="store_true", default=None)
    p.add_argument("--no-measure", dest="measure", action="store_false")
    p.add_argument("--timeout", type=float, default=600.0, help="ref-memory: per-subprocess timeout (s)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        report = run_ref_memory(args) if args.mode == "ref-memory" else run_grid(args)
    except Exception as exc:  # noqa: BLE001 - still one JSON object
        report = {"mode": args.mode, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(report))
    return 0 if report.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
