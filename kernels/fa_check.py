"""Check FlashAttention on one device against a float32 reference; print ONE JSON object on stdout.

Usage::

    python3 fa_check.py [--device auto|npu|cuda|cpu] [--quick] [--seed N] [--cases a,b] [--card ID]
                        [--expect-vendor-dir DIR] [--save-outputs FILE] [--baseline --compare-outputs FILE]

Each case builds random q/k/v in the case dtype, runs the device's FlashAttention (``npu_fusion_attention`` on an
NPU), and compares with ``attention_ref`` computed in float32 from the *same* low-precision inputs. A case passes when
every element satisfies ``|out - ref| <= atol + rtol * |ref|`` (dtype-dependent tolerances, ``TOLERANCES``) and the
output is finite and of the right shape. Cases cover 128-aligned and non-aligned S, causal, BSND (the HuggingFace
layout: the blog's permute pitfall), fp16 and bf16, GQA, and non-aligned S padded correctly with a mask.

Output (one line)::

    {"ok": true, "device": "npu", "card": "3", "cases": [{"name": ..., "ok": ..., "max_abs_err": ...,
     "max_rel_err": ..., "latency_ms": ..., "error": null}, ...], "passed": 7, "failed": 0,
     "max_abs_err": ..., "max_rel_err": ..., "latency_ms": ..., "errors": [], ...}

``card`` is ``--card`` or the first id of ``$ASCEND_RT_VISIBLE_DEVICES`` (``$CUDA_VISIBLE_DEVICES`` for cuda): with
the variable set to one id the process sees that card as device 0. ``max_rel_err`` is
``max |out - ref| / max(|ref|, 1e-2)``. ``latency_ms`` is the median of the per-case medians (``--repeats`` timed
runs after ``--warmup``).

On an NPU the JSON also has ``served_by`` (``served_by.py``): which library served ``aclnnFlashAttentionScore`` in
this process, by op-plugin's lookup order as the process saw it at ``import torch_npu`` (snapshot taken before the
import). With ``--expect-vendor-dir`` the check fails unless that vendor's ``op_api/lib/libcust_opapi.so`` served it.
``--baseline`` runs the same cases on CANN's built-in operator instead: a private OPP overlay without the expected
vendor (``ASCEND_OPP_PATH`` pointed at it, ``ASCEND_CUSTOM_OPP_PATH`` unset, the system's files untouched), and the
check fails unless CANN's ``libopapi.so`` served it. ``--save-outputs`` keeps each case's output (torch.save);
``--compare-outputs`` reports the largest difference to such a file (``compare``).

Exit status: 0 all cases passed, 1 a case failed, 2 the device could not be set up (JSON still printed).
Anything printed by libraries goes to stderr; stdout carries only the JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

# atol, rtol by dtype name
TOLERANCES = {"float16": (5e-3, 5e-3), "bfloat16": (2e-2, 2e-2), "float32": (1e-3, 1e-3)}
REL_FLOOR = 1e-2


@dataclass(frozen=True)
class Case:
    name: str
    b: int
    nq: int
    nkv: int
    s: int
    d: int
    dtype: str = "float16"
    layout: str = "BNSD"
    causal: bool = False
    pad_to: int = 0  # >0: pad S to this multiple with layouts.pad_qkv (mask) and compare the unpadded rows


QUICK_CASES = (
    Case("aligned_fp16", 1, 2, 2, 128, 64),
    Case("nonaligned_fp16", 1, 2, 2, 100, 64),
    Case("causal_fp16", 1, 2, 2, 128, 64, causal=True),
    Case("bsnd_fp16", 1, 2, 2, 96, 64, layout="BSND"),
    Case("aligned_bf16", 1, 2, 2, 128, 64, dtype="bfloat16"),
    Case("gqa_fp16", 1, 4, 2, 64, 64),
    Case("padded_nonaligned_fp16", 1, 2, 2, 100, 64, pad_to=128),
)

FULL_CASES = (
    Case("aligned_fp16", 2, 8, 8, 1024, 128),
    Case("nonaligned_fp16", 2, 8, 8, 1000, 128),
    Case("causal_fp16", 1, 8, 8, 2048, 128, causal=True),
    Case("causal_nonaligned_bf16", 1, 8, 8, 1500, 128, dtype="bfloat16", causal=True),
    Case("bsnd_fp16", 2, 8, 8, 1024, 128, layout="BSND"),
    Case("bsh_fp16", 1, 8, 8, 512, 128, layout="BSH"),
    Case("sbh_bf16", 1, 8, 8, 512, 128, dtype="bfloat16", layout="SBH"),
    Case("aligned_bf16", 2, 8, 8, 1024, 128, dtype="bfloat16"),
    Case("gqa_fp16", 1, 32, 8, 1024, 128),
    Case("gqa_causal_bf16", 1, 16, 2, 1024, 128, dtype="bfloat16", causal=True),
    Case("padded_nonaligned_fp16", 2, 8, 8, 1000, 128, pad_to=128),
)


def visible_card(device: str) -> str | None:
    """The physical card this process is pinned to, from the visibility variable (first id)."""
    names = ["ASCEND_RT_VISIBLE_DEVICES"] if device != "cuda" else ["CUDA_VISIBLE_DEVICES", "ASCEND_RT_VISIBLE_DEVICES"]
    for name in names:
        value = os.environ.get(name)
        if value is not None and value.strip() != "":
            return value.split(",")[0].strip()
    return None


def run_case(case: Case, adapter, seed: int, warmup: int, repeats: int, outputs: dict | None = None) -> dict:
    """Run one case; never raises (errors become ``ok: false`` with the message). ``outputs``: receives the output."""
    import attention_ref
    import layouts
    import torch

    atol, rtol = TOLERANCES[case.dtype]
    rec = {
        "name": case.name,
        "layout": case.layout,
        "dtype": case.dtype,
        "shape": {"B": case.b, "Nq": case.nq, "Nkv": case.nkv, "S": case.s, "D": case.d},
        "causal": case.causal,
        "pad_to": case.pad_to or None,
        "atol": atol,
        "rtol": rtol,
        "ok": False,
        "max_abs_err": None,
        "max_rel_err": None,
        "mismatch_fraction": None,
        "latency_ms": None,
        "error": None,
    }
    try:
        dtype = getattr(torch, case.dtype)
        gen = torch.Generator().manual_seed(seed)
        q = torch.randn(case.b, case.nq, case.s, case.d, generator=gen).to(dtype)
        k = torch.randn(case.b, case.nkv, case.s, case.d, generator=gen).to(dtype)
        v = torch.randn(case.b, case.nkv, case.s, case.d, generator=gen).to(dtype)
        ref = attention_ref.attention_reference(q, k, v, causal=case.causal)  # float32 BNSD

        mask = None
        if case.pad_to:
            padded = layouts.pad_qkv(q, k, v, multiple=case.pad_to)
            qi, ki, vi = padded.q, padded.k, padded.v
            mask = adapter.to_device(padded.atten_mask)
        else:
            qi, ki, vi = q, k, v
        qd = adapter.to_device(layouts.from_bnsd(qi, case.layout))
        kd = adapter.to_device(layouts.from_bnsd(ki, case.layout))
        vd = adapter.to_device(layouts.from_bnsd(vi, case.layout))

        def call():
            return adapter.flash_attention(qd, kd, vd, num_heads=case.nq, layout=case.layout, causal=case.causal,
                                           atten_mask=mask)

        out = call()
        adapter.synchronize()
        out = layouts.to_bnsd(out.cpu(), case.layout, case.nq)
        if case.pad_to:
            out = layouts.unpad_seq_len(out, case.s)
        if tuple(out.shape) != tuple(ref.shape):
            raise RuntimeError(f"output shape {tuple(out.shape)} != expected {tuple(ref.shape)}")
        if out.dtype != dtype:
            raise RuntimeError(f"output dtype {out.dtype} != input dtype {dtype}")
        outf = out.float()
        if outputs is not None:
            outputs[case.name] = out.contiguous()
        if not torch.isfinite(outf).all():
            raise RuntimeError(f"output has {int((~torch.isfinite(outf)).sum())} non-finite values")
        diff = (outf - ref).abs()
        bound = atol + rtol * ref.abs()
        rec["max_abs_err"] = float(diff.max())
        rec["max_rel_err"] = float((diff / ref.abs().clamp_min(REL_FLOOR)).max())
        rec["mismatch_fraction"] = float((diff > bound).float().mean())
        times = adapter.time_ms(call, warmup=max(0, warmup - 1), repeats=repeats)  # the first call warmed up
        rec["latency_ms"] = float(statistics.median(times))
        rec["ok"] = rec["mismatch_fraction"] == 0.0
        if not rec["ok"]:
            rec["error"] = (f"{rec['mismatch_fraction']:.2%} of elements outside atol={atol} rtol={rtol} "
                            f"(max_abs_err={rec['max_abs_err']:.3g})")
    except Exception as exc:  # noqa: BLE001 - one case's failure must not stop the others
        rec["ok"] = False
        rec["error"] = f"{type(exc).__name__}: {exc}".strip()
        print(f"fa_check: case {case.name} failed:\n{traceback.format_exc()}", file=sys.stderr)
    return rec


def build_report(args, cases: list[dict], info: dict, setup_error: str | None, started: float,
                 served: dict | None = None, compare: dict | None = None) -> dict:
    done = [c for c in cases if c["max_abs_err"] is not None]
    lat = [c["latency_ms"] for c in cases if c["latency_ms"] is not None]
    errors = ([f"setup: {setup_error}"] if setup_error else []) + [
        f"{c['name']}: {c['error']}" for c in cases if not c["ok"]
    ]
    if served is not None and served.get("ok") is False:
        errors.insert(0, f"served_by: {served['reason']}. Fix: {served['fix']}")
    return {
        "ok": setup_error is None and bool(cases) and all(c["ok"] for c in cases)
        and (served is None or served.get("ok") is not False),
        "device": info.get("device", args.device),
        "card": args.card if args.card is not None else visible_card(info.get("device", args.device)),
        "visible_devices": os.environ.get("ASCEND_RT_VISIBLE_DEVICES"),
        "device_index": args.device_index,
        "host": platform.node(),
        "torch_version": info.get("torch_version"),
        "torch_npu_version": info.get("torch_npu_version"),
        "quick": args.quick,
        "seed": args.seed,
        "passed": sum(1 for c in cases if c["ok"]),
        "failed": sum(1 for c in cases if not c["ok"]),
        "max_abs_err": max((c["max_abs_err"] for c in done), default=None),
        "max_rel_err": max((c["max_rel_err"] for c in done), default=None),
        "latency_ms": float(statistics.median(lat)) if lat else None,
        "errors": errors,
        "cases": cases,
        "served_by": served,
        "baseline": bool(getattr(args, "baseline", False)),
        "compare": compare,
        "duration_s": round(time.monotonic() - started, 3),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--device", default="auto", choices=["auto", "npu", "cuda", "cpu"])
    p.add_argument("--device-index", type=int, default=0, help="index among the visible devices (default 0)")
    p.add_argument("--card", default=None, help="card id to report (default: from ASCEND_RT_VISIBLE_DEVICES)")
    p.add_argument("--quick", action="store_true", help="tiny shapes (well under 2 s on a CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cases", default=None, help="comma-separated case names to run (default: all of the set)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--causal-sparse-mode", type=int, default=0, choices=[0, 2],
                   help="NPU causal: 0 = full upper-triangular mask, 2 = left-up causal with the 2048x2048 mask")
    p.add_argument("--expect-vendor-dir", default=None,
                   help="fail unless <DIR>/op_api/lib/libcust_opapi.so served aclnnFlashAttentionScore (NPU only)")
    p.add_argument("--baseline", action="store_true",
                   help="run on CANN's built-in operator: private OPP overlay without --expect-vendor-dir's vendor")
    p.add_argument("--save-outputs", default=None, help="torch.save each case's output into this file")
    p.add_argument("--compare-outputs", default=None, help="report the largest difference to outputs saved there")
    return p.parse_args(argv)


def select_cases(args) -> list[Case]:
    pool = QUICK_CASES if args.quick else FULL_CASES
    if not args.cases:
        return list(pool)
    wanted = [n.strip() for n in args.cases.split(",") if n.strip()]
    by_name = {c.name: c for c in pool}
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise SystemExit(f"fa_check: unknown case(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    return [by_name[n] for n in wanted]


def prepare_baseline(args, tmp: str) -> None:
    """Point this process at a private OPP overlay without our vendor, before torch_npu is imported."""
    import served_by

    opp = os.environ.get("ASCEND_OPP_PATH")
    if not opp:
        raise RuntimeError("--baseline needs ASCEND_OPP_PATH (source CANN's set_env.sh)")
    drop = [args.expect_vendor_dir] if args.expect_vendor_dir else []
    os.environ["ASCEND_OPP_PATH"] = served_by.make_overlay(opp, drop, tmp)
    os.environ.pop("ASCEND_CUSTOM_OPP_PATH", None)


def save_outputs(path: str, outputs: dict) -> None:
    import torch

    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(outputs, tmp)
    os.replace(tmp, path)


def compare_outputs(path: str, outputs: dict) -> dict:
    """Largest |ours - this run| per case against the outputs saved in ``path`` (same seed, same cases)."""
    import torch

    res = {"file": path, "max_diff": None, "cases": {}, "missing": [], "error": None}
    try:
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:  # torch < 1.13: no weights_only
            saved = torch.load(path, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - reported in the JSON
        res["error"] = f"cannot load {path}: {type(exc).__name__}: {exc}"
        return res
    for name, out in outputs.items():
        theirs = saved.get(name) if isinstance(saved, dict) else None
        if theirs is None or tuple(theirs.shape) != tuple(out.shape):
            res["missing"].append(name)
            continue
        res["cases"][name] = float((theirs.float() - out.float()).abs().max())
    if res["cases"]:
        res["max_diff"] = max(res["cases"].values())
    return res


def decide_served(args, snap: dict | None, info: dict) -> dict | None:
    """served_by's verdict for this process (NPU only; None elsewhere)."""
    if snap is None or info.get("device") != "npu":
        return None
    import served_by

    return served_by.decide(snap, served_by.read_maps(), args.expect_vendor_dir,
                            expect="builtin" if args.baseline else "vendor")


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    selected = select_cases(args)
    # Keep stdout for the JSON line only: anything libraries print (even from C) goes to stderr.
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    cases: list[dict] = []
    outputs: dict = {}
    info: dict = {"device": args.device}
    setup_error = None
    snap = served = compare = None
    overlay = None
    try:
        try:
            import served_by

            if args.baseline:
                overlay = tempfile.mkdtemp(prefix="fa_check_baseline_")
                prepare_baseline(args, overlay)
            # op-plugin's search lists are fixed when torch_npu loads: read them before anything imports it
            snap = served_by.snapshot()
            import device as device_mod
            import torch

            torch.manual_seed(args.seed)
            adapter = device_mod.get_adapter(args.device, index=args.device_index,
                                             causal_sparse_mode=args.causal_sparse_mode)
            info = adapter.describe()
        except Exception as exc:  # noqa: BLE001 - reported in the JSON
            setup_error = f"{type(exc).__name__}: {exc}".strip()
            if args.device == "auto":
                with contextlib.suppress(Exception):
                    info["device"] = device_mod.detect_device()  # which device auto-detection chose
            print(f"fa_check: device setup failed:\n{traceback.format_exc()}", file=sys.stderr)
        if setup_error is None:
            for case in selected:
                cases.append(run_case(case, adapter, args.seed, args.warmup, args.repeats, outputs))
            served = decide_served(args, snap, info)
            if args.save_outputs:
                try:
                    save_outputs(args.save_outputs, outputs)
                except Exception as exc:  # noqa: BLE001 - the baseline then reports the file missing
                    print(f"fa_check: cannot save outputs to {args.save_outputs}: {exc}", file=sys.stderr)
            if args.compare_outputs:
                compare = compare_outputs(args.compare_outputs, outputs)
    finally:
        sys.stdout.flush()
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
        if overlay:
            shutil.rmtree(overlay, ignore_errors=True)
    report = build_report(args, cases, info, setup_error, started, served, compare)
    sys.stdout.write(json.dumps(report, sort_keys=False) + "\n")
    sys.stdout.flush()
    if setup_error is not None:
        return 2
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
