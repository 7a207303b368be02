#!/usr/bin/env python3
"""Reference-attention memory at long S: the naive float32 reference (S x S scores) against the blocked
online-softmax one that fa_check uses. A benchmark, not a test; prints one JSON object with the ratio.

    .venv/bin/python benchmarks/ref_memory.py                 # S=16384, computed sizes (+ measured if RAM allows)
    .venv/bin/python benchmarks/ref_memory.py --no-measure    # computed tensor sizes only
    .venv/bin/python benchmarks/ref_memory.py --ref-seq 32768 --ref-heads 2

Thin wrapper over ``kernels/fa_bench.py --mode ref-memory`` (same options).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "kernels"))

import fa_bench  # noqa: E402

if __name__ == "__main__":
    sys.exit(fa_bench.main(["--mode", "ref-memory", *sys.argv[1:]]))
