"""fa_check: one JSON object on stdout, per-case verdicts, errors captured per case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

KERNELS = Path(__file__).resolve().parents[2] / "kernels"
FAKE_NPU = Path(__file__).resolve().parent / "fake_npu"
if str(KERNELS) not in sys.path:
    sys.path.insert(0, str(KERNELS))

import fa_check  # noqa: E402

QUICK_NAMES = [c.name for c in fa_check.QUICK_CASES]


def _run_inprocess(capfd, argv):
    rc = fa_check.main(argv)
    out, _err = capfd.readouterr()
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    return rc, json.loads(lines[0])


def test_quick_on_cpu_is_ok(capfd, monkeypatch):
    monkeypatch.setenv("ASCEND_RT_VISIBLE_DEVICES", "5")
    rc, rep = _run_inprocess(capfd, ["--quick", "--device", "cpu", "--repeats", "1"])
    assert rc == 0, rep["errors"]
    assert rep["ok"] is True and rep["device"] == "cpu" and rep["card"] == "5"
    assert [c["name"] for c in rep["cases"]] == QUICK_NAMES
    assert rep["passed"] == len(QUICK_NAMES) and rep["failed"] == 0 and rep["errors"] == []
    assert 0 < rep["max_abs_err"] < 5e-3 and rep["max_rel_err"] is not None and rep["latency_ms"] > 0
    kinds = {(c["layout"], c["dtype"], c["causal"], c["shape"]["Nq"] != c["shape"]["Nkv"]) for c in rep["cases"]}
    assert ("BSND", "float16", False, False) in kinds
    assert ("BNSD", "bfloat16", False, False) in kinds
    assert ("BNSD", "float16", True, False) in kinds
    assert ("BNSD", "float16", False, True) in kinds
    assert {c["shape"]["S"] % 128 == 0 for c in rep["cases"]} == {True, False}
    for c in rep["cases"]:
        assert c["max_abs_err"] <= c["atol"] + c["rtol"] * 4, c


def test_case_selection_and_card_option(capfd):
    rc, rep = _run_inprocess(capfd, ["--quick", "--device", "cpu", "--cases", "gqa_fp16", "--card", "7",
                                     "--repeats", "1"])
    assert rc == 0 and [c["name"] for c in rep["cases"]] == ["gqa_fp16"] and rep["card"] == "7"


def test_device_setup_failure_still_prints_json(capfd, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_npu", None)  # import torch_npu -> ImportError
    rc, rep = _run_inprocess(capfd, ["--quick", "--device", "npu"])
    assert rc == 2
    assert rep["ok"] is False and rep["cases"] == []
    assert rep["errors"] and rep["errors"][0].startswith("setup:") and "torch_npu" in rep["errors"][0]


def test_npu_path_one_failing_case_and_noisy_library():
    """Through the npu adapter (fake torch_npu that enforces the real schema): one case raises, the rest pass."""
    env = dict(os.environ, PYTHONPATH=str(FAKE_NPU), ASCEND_RT_VISIBLE_DEVICES="3", FAKE_NPU_FAIL_LAYOUT="BSND",
               OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(KERNELS / "fa_check.py"), "--quick", "--repeats", "1",
                           "--causal-sparse-mode", "2"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "banner" not in proc.stdout and "banner" in proc.stderr  # library noise kept off stdout
    rep = json.loads(proc.stdout)
    assert rep["device"] == "npu" and rep["card"] == "3" and rep["torch_npu_version"] == "0.0-fake"
    by_name = {c["name"]: c for c in rep["cases"]}
    assert by_name["bsnd_fp16"]["ok"] is False
    assert "layout BSND rejected" in by_name["bsnd_fp16"]["error"]
    assert all(c["ok"] for n, c in by_name.items() if n != "bsnd_fp16"), rep["errors"]
    assert rep["ok"] is False and rep["failed"] == 1 and rep["errors"] == [f"bsnd_fp16: {by_name['bsnd_fp16']['error']}"]
