"""fa_verify: pure logic (devices, commands, parsing, aggregation), concurrent per-card runs with timeouts, the
module end to end (check mode, missing set_env, failing card, results file), and the role on localhost."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "kernels") not in sys.path:
    sys.path.insert(0, str(ROOT / "kernels"))

from ansible_collections.ascend.fa.plugins.module_utils import fa_verify_lib as fa_verify  # noqa: E402  (the module is a thin wrapper)
from test_env_check import make_fake_host  # noqa: E402

MODULE = ROOT / "plugins" / "modules" / "fa_verify.py"
FAKE_NPU = ROOT / "tests" / "kernels" / "fake_npu"

# A stand-in for fa_check.py: stdlib only, behaviour chosen per card through the environment.
FAKE_CHECK = textwrap.dedent("""\
    import json, os, subprocess, sys, time
    card = os.environ.get("ASCEND_RT_VISIBLE_DEVICES", "")
    def cards(var):
        return [c for c in os.environ.get(var, "").split(",") if c]
    marker = os.environ.get("FAKE_MARKER_DIR")
    if marker:
        open(os.path.join(marker, "card" + card), "w").write(" ".join(sys.argv[1:]))
    print("library noise on stdout")
    print("FAKE_SET_ENV=" + os.environ.get("FAKE_SET_ENV", ""), file=sys.stderr)
    if card in cards("FAIL_CARDS"):
        print(json.dumps({"ok": False, "device": "npu", "card": card, "passed": 6, "failed": 1,
                          "max_abs_err": 0.3, "max_rel_err": 2.0, "latency_ms": 1.0,
                          "errors": ["causal_fp16: 12.5% of elements outside atol=0.005 rtol=0.005"],
                          "cases": [{"name": "causal_fp16", "ok": False}, {"name": "aligned_fp16", "ok": True}]}))
        sys.exit(1)
    if card in cards("CRASH_CARDS"):
        print("Segmentation fault in libascendcl", file=sys.stderr)
        sys.exit(139)
    if card in cards("HANG_CARDS"):
        child = subprocess.Popen(["sleep", "60"])
        open(os.environ["HANG_PID_FILE"] + card, "w").write(str(child.pid))
        time.sleep(60)
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
    print(json.dumps({"ok": True, "device": "npu", "card": card, "passed": 7, "failed": 0,
                      "max_abs_err": 0.001 * (1 + int(card or 0)), "max_rel_err": 0.01, "latency_ms": 2.0 + int(card or 0),
                      "errors": [], "cases": [{"name": "aligned_fp16", "ok": True}], "argv": sys.argv[1:]}))
    """)


@pytest.fixture
def fake_kernels(tmp_path):
    d = tmp_path / "kernels"
    d.mkdir()
    (d / "fa_check.py").write_text(FAKE_CHECK)
    return d


@pytest.fixture
def set_env_script(tmp_path):
    p = tmp_path / "set env.sh"  # a space: quoting must hold
    p.write_text("echo 'set_env chatter on stdout'\nexport FAKE_SET_ENV=yes\n")
    return p


# ------------------------------------------------------------------------------------------- pure functions
def test_resolve_devices():
    assert fa_verify.resolve_devices(None, 8) == list(range(8))
    assert fa_verify.resolve_devices([], 2) == [0, 1]
    assert fa_verify.resolve_devices([5, 3], 8) == [3, 5]
    assert fa_verify.resolve_devices([9], None) == [9]
    with pytest.raises(ValueError, match="out of range"):
        fa_verify.resolve_devices([8], 8)
    with pytest.raises(ValueError, match="twice"):
        fa_verify.resolve_devices([1, 1], 8)
    with pytest.raises(ValueError, match="devices or npu_count"):
        fa_verify.resolve_devices(None, None)
    with pytest.raises(ValueError, match="no card"):
        fa_verify.resolve_devices(None, 0)


def test_build_command():
    argv = fa_verify.build_command("/opt/k dir", "python3", ["/a/set_env.sh", "/b/x y.bash"], "npu",
                                   ["--seed", "7"], 3)
    assert argv[:3] == ["bash", "-l", "-c"]
    lines = argv[3].splitlines()
    assert lines[0].startswith("source /a/set_env.sh >&2 ||")
    assert lines[1].startswith("source '/b/x y.bash' >&2 ||")
    assert lines[2] == "exec python3 '/opt/k dir/fa_check.py' --quick --device npu --card 3 --seed 7"
    auto = fa_verify.build_command("/k", "/usr/bin/python3", [], "auto", [], 0, quick=False)
    assert auto == ["bash", "-l", "-c", "exec /usr/bin/python3 /k/fa_check.py --card 0"]


def test_card_env():
    env = fa_verify.card_env({"PATH": "/bin"}, 6, "npu", threads=4)
    assert env["ASCEND_RT_VISIBLE_DEVICES"] == "6" and "CUDA_VISIBLE_DEVICES" not in env
    assert env["OMP_NUM_THREADS"] == "4" and env["PATH"] == "/bin"
    env = fa_verify.card_env({"OMP_NUM_THREADS": "16"}, 1, "cuda", threads=4)
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["OMP_NUM_THREADS"] == "16"


def test_parse_check_output():
    assert fa_verify.parse_check_output("") is None
    assert fa_verify.parse_check_output("banner\n{not json\n") is None
    out = 'banner\n{"ok": false}\nmore noise\n{"ok": true, "card": "1"}\n\n'
    assert fa_verify.parse_check_output(out) == {"ok": True, "card": "1"}
    assert fa_verify.parse_check_output('[1, 2]\n') is None


def test_card_result_variants():
    good = json.dumps({"ok": True, "device": "npu", "max_abs_err": 1e-3, "max_rel_err": 0.02, "latency_ms": 0.5,
                       "passed": 7, "failed": 0, "cases": []})
    r = fa_verify.card_result(2, 0, "noise\n" + good, "", False, 60, 1.23456)
    assert r == {"card": 2, "ok": True, "max_abs_err": 1e-3, "max_rel_err": 0.02, "latency_ms": 0.5, "reason": None,
                 "rc": 0, "duration_s": 1.235, "device": "npu", "passed": 7, "failed": 0, "failed_cases": [],
                 "served_by": None, "baseline": None}

    bad = json.dumps({"ok": False, "errors": ["a: x", "b: y", "c: z", "d: w"], "cases": [{"name": "a", "ok": False}]})
    r = fa_verify.card_result(1, 1, bad, "trace", False, 60, 1)
    assert not r["ok"] and r["reason"] == "a: x; b: y; c: z; and 1 more" and r["failed_cases"] == ["a"]
    assert r["stderr_tail"] == "trace"

    r = fa_verify.card_result(4, 139, "", "Segmentation fault", False, 60, 1)
    assert not r["ok"] and r["reason"] == "no JSON from fa_check.py (exit code 139): Segmentation fault"

    r = fa_verify.card_result(5, None, "", "", True, 30, 30)
    assert not r["ok"] and r["reason"] == "timeout after 30s"

    r = fa_verify.card_result(6, 3, good, "", False, 60, 1)
    assert not r["ok"] and "exited 3" in r["reason"]


OURS = "/opp/vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so"
BUILTIN = "/cann/lib64/libopapi.so"


def _served(ok, library=OURS, source="vendor", reason="served by vendor ascendfa_transformer", fix=""):
    return {"api": "aclnnFlashAttentionScore", "library": library, "vendor": None, "source": source, "ok": ok,
            "reason": reason, "fix": fix, "builtin": {"library": BUILTIN, "exports": True},
            "candidates": [{"source": "vendor", "entry": "ascendfa_transformer", "library": OURS, "exports": {},
                            "owner_ok": True, "owner_uid": 0, "mapped": True, "note": "", "extra": "dropped"}]}


def _check_json(served, ok=True, latency=2.0, compare=None):
    return json.dumps({"ok": ok and served.get("ok") is not False, "device": "npu", "max_abs_err": 1e-3,
                       "max_rel_err": 0.02, "latency_ms": latency, "passed": 7, "failed": 0, "cases": [],
                       "errors": [], "served_by": served, "compare": compare})


def test_card_fails_when_another_library_served_it():
    """The served-by check decides: correct numbers from CANN's built-in kernel fail the card, naming the fix."""
    reason = ("served by CANN's built-in FlashAttentionScore (/cann/lib64/libopapi.so), not by ascendfa_transformer: "
              "ascendfa_transformer is not in load_priority")
    r = fa_verify.card_result(0, 1, _check_json(_served(False, BUILTIN, "builtin", reason, "reinstall the package.")),
                              "", False, 60, 1)
    assert r["ok"] is False and r["reason"] == reason + ". Fix: reinstall the package."
    assert r["served_by"]["source"] == "builtin" and r["served_by"]["library"] == BUILTIN
    assert "extra" not in r["served_by"]["candidates"][0]
    agg = fa_verify.aggregate([r, fa_verify.card_result(1, 0, _check_json(_served(True)), "", False, 60, 1)])
    assert agg["failed_cards"] == [0] and "card 0: served by CANN's built-in" in agg["summary"]
    # not judged (no expected vendor): reported, not failed
    r = fa_verify.card_result(2, 0, _check_json(_served(None)), "", False, 60, 1)
    assert r["ok"] is True and r["served_by"]["library"] == OURS
    ok = fa_verify.aggregate([fa_verify.card_result(1, 0, _check_json(_served(True)), "", False, 60, 1)])
    assert ok["ok"] and f"served by {OURS}" in ok["summary"]


def test_baseline_cards_by_mode():
    res = [fa_verify.card_result(c, 0, _check_json(_served(True)), "", False, 60, 1) for c in (0, 1)]
    res[1]["served_by"]["builtin"]["exports"] = False
    assert fa_verify.baseline_cards("auto", res) == [0]
    assert fa_verify.baseline_cards("always", res) == [0, 1]
    assert fa_verify.baseline_cards("never", res) == []


def test_apply_baseline_ratio_diff_and_budget():
    base = fa_verify.card_result(0, 0, _check_json(_served(True, BUILTIN, "builtin"), latency=2.0,
                                                   compare={"max_diff": 0.0004, "cases": {}, "missing": []}),
                                 "", False, 60, 1)
    mk = lambda lat: fa_verify.card_result(0, 0, _check_json(_served(True), latency=lat), "", False, 60, 1)  # noqa: E731
    r = fa_verify.apply_baseline(mk(3.0), base, 0.0)
    assert r["ok"] is True and r["baseline"]["ratio"] == 1.5 and r["baseline"]["max_diff"] == 0.0004
    assert r["baseline"]["served_by"] == BUILTIN and r["baseline"]["latency_ms"] == 2.0
    r = fa_verify.apply_baseline(mk(3.0), base, 1.2)
    assert r["ok"] is False
    assert r["reason"] == "our kernel 3 ms vs CANN's built-in 2 ms = 1.5x, over fa_verify_max_slowdown 1.2"
    assert fa_verify.apply_baseline(mk(2.2), base, 1.2)["ok"] is True
    bad = fa_verify.card_result(0, 1, _check_json(_served(False, OURS, "vendor", "baseline not served by CANN's"),
                                                  ok=False), "", False, 60, 1)
    assert fa_verify.apply_baseline(mk(2.0), bad, 0.0, "auto")["ok"] is True
    r = fa_verify.apply_baseline(mk(2.0), bad, 0.0, "always")
    assert r["ok"] is False and r["reason"].startswith("baseline against CANN's built-in operator failed")
    agg = fa_verify.aggregate([fa_verify.apply_baseline(mk(3.0), base, 0.0)])
    assert agg["baseline_ratio_max"] == 1.5 and "latency ratio max 1.5" in agg["summary"]


def test_check_and_baseline_flags():
    assert fa_verify.check_flags(None, None) == []
    assert fa_verify.check_flags("/v d", "/o/card0.pt") == ["--expect-vendor-dir", "/v d", "--save-outputs",
                                                            "/o/card0.pt"]
    assert fa_verify.baseline_flags("/v", "/o/c.pt") == ["--baseline", "--compare-outputs", "/o/c.pt",
                                                         "--expect-vendor-dir", "/v"]
    argv = fa_verify.build_command("/k", "python3", [], "npu", ["--seed", "3"], 1, True, ["--baseline"])[3]
    assert argv.endswith("--card 1 --baseline --seed 3")
    with pytest.raises(ValueError):
        fa_verify.run_checks(lambda c, f: [], [0], lambda c: {}, 1, baseline="sometimes")


def test_summarize_errors_groups_cases_with_the_same_message():
    errs = [f"{n}: RuntimeError: no package" for n in ("a", "b", "c", "d", "e")] + ["f: shape", "setup: boom"]
    assert fa_verify.summarize_errors(errs) == "a, b, c, 2 more: RuntimeError: no package; f: shape; setup: boom"
    assert fa_verify.summarize_errors(["free text without a case"]) == "free text without a case"
    assert fa_verify.summarize_errors([]) == ""


def test_aggregate():
    ok = [{"card": c, "ok": True, "max_abs_err": 1e-3 * c, "max_rel_err": 0.01, "latency_ms": float(c), "reason": None}
          for c in (2, 0, 1)]
    agg = fa_verify.aggregate(ok)
    assert agg["ok"] and [r["card"] for r in agg["cards"]] == [0, 1, 2] and agg["failed_cards"] == []
    assert agg["max_abs_err"] == 2e-3 and agg["latency_ms"] == 1.0
    assert agg["summary"].startswith("3/3 cards passed FlashAttention")

    mixed = ok + [{"card": 7, "ok": False, "max_abs_err": None, "max_rel_err": None, "latency_ms": None,
                   "reason": "timeout after 60s"}]
    agg = fa_verify.aggregate(mixed)
    assert not agg["ok"] and agg["failed_cards"] == [7] and agg["passed"] == 3 and agg["failed"] == 1
    assert agg["summary"] == "1 of 4 cards failed FlashAttention (card 7): card 7: timeout after 60s"

    assert fa_verify.aggregate([])["ok"] is False


# ------------------------------------------------------------------------------------------- processes
def _jobs(kernels, cards, set_env=(), env_extra=None):
    base = dict(os.environ, **(env_extra or {}))
    return [(c, fa_verify.build_command(str(kernels), sys.executable, list(set_env), "npu", [], c),
             fa_verify.card_env(base, c, "npu", threads=1)) for c in cards]


def test_run_all_one_failing_card_names_it(fake_kernels, set_env_script):
    res = fa_verify.run_all(_jobs(fake_kernels, [0, 1, 2, 3], [str(set_env_script)], {"FAIL_CARDS": "2",
                                                                                    "CRASH_CARDS": "3"}), 30)
    agg = fa_verify.aggregate(res)
    assert agg["failed_cards"] == [2, 3] and not agg["ok"]
    by = {r["card"]: r for r in agg["cards"]}
    assert by[0]["ok"] and by[1]["ok"] and by[1]["max_abs_err"] == 0.002 and by[1]["latency_ms"] == 3.0
    assert by[2]["reason"].startswith("causal_fp16: 12.5% of elements outside") and by[2]["failed_cases"] == [
        "causal_fp16"]
    assert by[3]["reason"].startswith("no JSON from fa_check.py (exit code 139)")
    assert "FAKE_SET_ENV=yes" in by[2]["stderr_tail"]  # the set_env script was sourced
    assert "set_env chatter" in by[2]["stderr_tail"]  # ... and its stdout kept off the JSON channel
    assert "card 2:" in agg["summary"] and "card 3:" in agg["summary"]


def test_run_all_is_concurrent(fake_kernels):
    start = time.monotonic()
    res = fa_verify.run_all(_jobs(fake_kernels, range(4), env_extra={"FAKE_SLEEP": "1.0"}), 30)
    assert all(r["ok"] for r in res)
    assert time.monotonic() - start < 3.0  # 4 x 1 s one after another would take over 4 s


def test_timeout_kills_the_process_group(fake_kernels, tmp_path):
    pid_file = str(tmp_path / "hang")
    start = time.monotonic()
    res = fa_verify.run_all(_jobs(fake_kernels, [0, 1], env_extra={"HANG_CARDS": "1", "HANG_PID_FILE": pid_file}),
                            2)
    assert time.monotonic() - start < 2 + fa_verify.KILL_GRACE_S + 5
    agg = fa_verify.aggregate(res)
    assert agg["failed_cards"] == [1]
    assert agg["cards"][1]["reason"] == "timeout after 2s" and agg["cards"][1]["rc"] is None
    assert agg["cards"][0]["ok"]
    grandchild = int(Path(pid_file + "1").read_text())
    for _ in range(50):  # the killed grandchild may need a moment to be reaped by init
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{grandchild}/stat").exists() and Path(f"/proc/{grandchild}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"grandchild {grandchild} of the timed-out card survived")


# ------------------------------------------------------------------------------------------- the module
def run_module(tmp_path, args, check_mode=False, env=None):
    payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check_mode)}
    path = tmp_path / "args.json"
    path.write_text(json.dumps(payload))
    # as Ansible runs it: a script whose helpers are imported by their collection names
    boot = ("import runpy, sys; "
            f"sys.argv = [{str(MODULE)!r}, {str(path)!r}]; runpy.run_path({str(MODULE)!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", boot], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), timeout=180)
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


def test_module_check_mode_runs_nothing(tmp_path, fake_kernels, set_env_script):
    marker = tmp_path / "markers"
    marker.mkdir()
    res = run_module(tmp_path, {"kernels_dir": str(fake_kernels), "set_env": [str(set_env_script)], "npu_count": 2,
                                "python": sys.executable}, check_mode=True, env={"FAKE_MARKER_DIR": str(marker)})
    assert res["changed"] is False and not res.get("failed") and res["ok"] is None
    assert [c["card"] for c in res["commands"]] == [0, 1]
    assert res["commands"][1]["env"] == {"ASCEND_RT_VISIBLE_DEVICES": "1", "CUDA_VISIBLE_DEVICES": "1"}
    assert list(marker.iterdir()) == []


def test_module_missing_set_env_fails_clearly(tmp_path, fake_kernels):
    res = run_module(tmp_path, {"kernels_dir": str(fake_kernels), "set_env": ["/nonexistent/set_env.sh"],
                                "devices": [0]})
    assert res["failed"] is True
    assert "set_env script not found: /nonexistent/set_env.sh" in res["msg"]


def test_module_failing_card(tmp_path, fake_kernels, set_env_script):
    out = tmp_path / "host" / "verify.json"
    res = run_module(tmp_path, {"kernels_dir": str(fake_kernels), "set_env": [str(set_env_script)], "npu_count": 4,
                                "python": sys.executable, "device_type": "npu", "timeout": 30,
                                "set_env_optional": [str(tmp_path / "absent.bash")], "results_file": str(out)},
                     env={"FAIL_CARDS": "1"})
    assert res["failed"] is True and res["changed"] is False
    assert res["msg"].startswith("1 of 4 cards failed FlashAttention (card 1): card 1: causal_fp16")
    assert res["failed_cards"] == [1] and [c["ok"] for c in res["cards"]] == [True, False, True, True]
    assert res["set_env"] == [str(set_env_script)]
    assert res["ansible_facts"]["fa_verify"]["failed_cards"] == [1]
    saved = json.loads(out.read_text())
    assert saved["failed_cards"] == [1] and saved["ok"] is False


def test_module_records_the_outcome_next_to_the_manifest(tmp_path, fake_kernels):
    """verify.json: written when the outcome or the package changes, left alone otherwise (it is in the host's
    fingerprint), never a change; nothing without a manifest or with record=false."""
    state = tmp_path / "state"
    state.mkdir()
    args = {"kernels_dir": str(fake_kernels), "npu_count": 2, "python": sys.executable, "state_dir": str(state)}
    res = run_module(tmp_path, args, env={"FAIL_CARDS": "1"})
    assert res["failed"] is True and not (state / "verify.json").exists()          # no manifest: no record
    (state / "manifest.json").write_text(json.dumps({"recipe": "r1", "sha256": "a" * 64}))
    res = run_module(tmp_path, {**args, "record": False}, env={"FAIL_CARDS": "1"})
    assert res["failed"] is True and not (state / "verify.json").exists()
    res = run_module(tmp_path, args, env={"FAIL_CARDS": "1"})
    assert res["failed"] is True and res["changed"] is False
    rec = json.loads((state / "verify.json").read_text())
    assert rec["ok"] is False and rec["failed_cards"] == [1] and rec["sha256"] == "a" * 64 and rec["recipe"] == "r1"
    assert rec["summary"].startswith("1 of 2 cards failed") and rec["at"] == res["checked_at"]
    stamp = (state / "verify.json").stat().st_mtime_ns
    run_module(tmp_path, args, env={"FAIL_CARDS": "1"})
    assert (state / "verify.json").stat().st_mtime_ns == stamp                   # same outcome: untouched
    res = run_module(tmp_path, args)
    assert res["ok"] is True and res["changed"] is False
    rec = json.loads((state / "verify.json").read_text())
    assert rec["ok"] is True and rec["failed_cards"] == [] and rec["summary"].startswith("2/2 cards passed")
    (state / "manifest.json").write_text(json.dumps({"recipe": "r2", "sha256": "b" * 64}))
    run_module(tmp_path, args)
    assert json.loads((state / "verify.json").read_text())["sha256"] == "b" * 64  # another package: new record


def test_module_all_cards_pass(tmp_path, fake_kernels):
    res = run_module(tmp_path, {"kernels_dir": str(fake_kernels), "devices": [0, 3], "npu_count": 8,
                                "python": sys.executable, "extra_args": ["--seed", "9"]})
    assert not res.get("failed") and res["changed"] is False and res["ok"] is True
    assert [c["card"] for c in res["cards"]] == [0, 3]
    assert res["ansible_facts"]["fa_verify"]["ok"] is True
    assert res["msg"].startswith("2/2 cards passed FlashAttention")


def test_module_with_real_fa_check_and_fake_npu(tmp_path):
    """Real kernels/fa_check.py through the npu adapter (fake torch_npu) on 2 cards; card 1 computes wrong results."""
    env_script = tmp_path / "set_env.sh"
    env_script.write_text(f"export PYTHONPATH={FAKE_NPU}\nexport FAKE_NPU_BAD_CARDS=1\n")
    res = run_module(tmp_path, {"kernels_dir": str(ROOT / "kernels"), "set_env": [str(env_script)], "npu_count": 2,
                                "python": sys.executable, "device_type": "npu", "timeout": 120,
                                "extra_args": ["--repeats", "1"]})
    assert res["failed"] is True and res["failed_cards"] == [1], res.get("msg")
    card0, card1 = res["cards"]
    assert card0["ok"] and card0["device"] == "npu" and card0["max_abs_err"] < 5e-3 and card0["passed"] == 7
    assert not card1["ok"] and card1["max_abs_err"] > 0.04 and "outside atol" in card1["reason"]


# ------------------------------------------------------------------------------------------- the role
FAKE_FACTS_MODULE = textwrap.dedent("""\
    #!/usr/bin/python
    from ansible.module_utils.basic import AnsibleModule
    m = AnsibleModule(argument_spec={"facts": {"type": "dict", "required": True}}, supports_check_mode=True)
    m.exit_json(changed=False, ansible_facts={"ascend": m.params["facts"]})
    """)


# Two ansible-playbook runs take ~10 s on 2 idle cores (20-30 s on a busy machine): opt-in, to keep the default
# suite fast. Run with ASCEND_FA_ROLE_TESTS=1.
@pytest.mark.skipif(os.environ.get("ASCEND_FA_ROLE_TESTS") != "1", reason="set ASCEND_FA_ROLE_TESTS=1 (slow)")
@pytest.mark.skipif(shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) is None,
                    reason="ansible-playbook not installed next to this interpreter")
def test_role_idempotent_and_reports_failed_cards(tmp_path, fake_kernels, set_env_script):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "fake_ascend_facts.py").write_text(FAKE_FACTS_MODULE)
    host = tmp_path / "host"
    pkg = host / "vendors" / "ascendfa_transformer"
    (pkg / "bin").mkdir(parents=True)
    (pkg / "bin" / "set_env.bash").write_text("export FAKE_PKG_ENV=1\n")
    (host / "manifest.json").write_text(json.dumps({"vendor_dir": str(pkg)}))
    (host / "set_env.bash").write_text("export FAKE_PKG_ENV=1\n")   # what fa_install writes for users
    (tmp_path / "ansible.cfg").write_text(
        f"[defaults]\nlibrary = {lib}\ncollections_path = {ROOT / '.collections'}\n"
        "gathering = explicit\nretry_files_enabled = False\nstdout_callback = default\n")
    (tmp_path / "pb.yml").write_text(textwrap.dedent(f"""\
        - hosts: all
          gather_facts: false
          tasks:
            - name: Fake Ascend facts
              fake_ascend_facts:
                facts: {{cann_set_env: "{set_env_script}", device_count: 2, npu_count: 2, fa_package: null}}
            - name: Verify
              ansible.builtin.include_role:
                name: ascend.fa.fa_verify
        """))
    extra = {"fa_verify_kernels_src": str(fake_kernels), "fa_verify_kernels_dir": str(host / "kernels"),
             "fa_verify_results_dir": str(tmp_path / "out"), "fa_verify_host_results_file": "",
             "fa_state_dir": str(host), "fa_verify_python": sys.executable,
             # never the default /var/lib/node_exporter/textfile_collector of the machine running the tests
             "fa_verify_metrics_dir": str(tmp_path / "metrics"),
             "ansible_python_interpreter": sys.executable}

    def play(**env):
        proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c",
                               "local", str(tmp_path / "pb.yml"), "-e", json.dumps(extra)],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path,
                              env=dict(os.environ, ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"), **env))
        recap = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", proc.stdout)
        assert recap, proc.stdout + proc.stderr
        return proc, int(recap.group(2)), int(recap.group(3))

    proc, changed, failed = play()
    assert failed == 0 and changed > 0, proc.stdout
    assert (host / "kernels" / "fa_check.py").read_text() == FAKE_CHECK
    first = json.loads((tmp_path / "out" / "localhost.json").read_text())
    assert first["ok"] is True and [c["card"] for c in first["cards"]] == [0, 1]
    assert first["set_env"] == [str(set_env_script), str(host / "set_env.bash")]
    # the environment checks ran in the same call: their findings (no library in the fake package) are warnings
    assert "package missing" in proc.stdout + proc.stderr

    # Second run, same inputs except that card 1 now fails: nothing changes on the host, the host fails naming
    # card 1, and the controller still gets the per-card results.
    proc, changed, failed = play(FAIL_CARDS="1")
    assert changed == 0 and failed == 1, proc.stdout
    assert "card 1" in proc.stdout
    second = json.loads((tmp_path / "out" / "localhost.json").read_text())
    assert second["ok"] is False and second["failed_cards"] == [1]
    assert second["msg"].startswith("1 of 2 cards failed FlashAttention (card 1)")
    # the role passed the metrics folder: the failed card is a metric (format: tests/unit/test_fa_metrics.py)
    prom = (tmp_path / "metrics" / "ascend_fa.prom").read_text()
    assert 'ascend_fa_card_pass{card="1",npu_id="",chip_id=""} 0' in prom and "ascend_fa_verify_ok 0" in prom


# ------------------------------------------------------------------------------------------- env checks
# The verify-phase environment checks run in the fa_verify call itself, before the kernel check: failures are
# warnings (and result key env), the kernel check decides pass or fail.
ENV_CHECKS = [c for c in yaml.safe_load((ROOT / "plugins" / "plugin_utils" / "data" / "env_checks.yml").read_text())["checks"]
              if c["id"] not in ("ld_cache", "pip_check", "torch_pair")]   # this machine's ld cache and site-packages


def warnings_of(res):
    """The module's warning texts (ansible-core 2.19 returns them as {event: {msg: ...}} records)."""
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in res.get("warnings") or []]


def env_args(h, **kw):
    # others_access: pytest's tmp folders are 0700, so a non-root user could not reach the fake tree; not the subject
    return {"env_checks": ENV_CHECKS, "env_host": "fake1", "state_dir": str(h["state"]), "ascend_home": str(h["home"]),
            "nnal_set_env": str(h["home"] / "no-nnal.sh"), "ignore": ["others_access"], **kw}


def test_module_env_checks_warn_and_the_kernel_check_decides(tmp_path, fake_kernels):
    h = make_fake_host(tmp_path)
    args = {"kernels_dir": str(fake_kernels), "devices": [0], "python": sys.executable, **env_args(h)}
    res = run_module(tmp_path, args)
    assert res["ok"] is True and not res.get("failed")
    env = res["env"]
    assert env["ran"] is True and env["problems"] == [] and not res.get("warnings"), env.get("lines")
    status = {c["id"]: c["status"] for c in env["checks"]}
    assert set(status) == {"cann_env", "nnal_env", "package_env", "package_present", "opp_path", "vendor_first",
                           "dlopen", "lib_on_path", "others_access"}                # phase verify
    assert status["dlopen"] == status["lib_on_path"] == status["vendor_first"] == "ok" and status["nnal_env"] == "skip"

    (h["opp"] / "vendors" / "config.ini").write_text("load_priority=customize,ascendfa_transformer\n")
    res = run_module(tmp_path, args)
    assert res["ok"] is True and not res.get("failed")                              # a warning, not a failure
    assert [p["code"] for p in res["env"]["problems"]] == ["vendor_first"] and res["env"]["repair"] is True
    assert warnings_of(res) == res["env"]["lines"] and warnings_of(res)[0].startswith("fake1: [error] ")
    res = run_module(tmp_path, {**args, "ignore": ["vendor_first", "others_access"]})
    assert res["env"]["problems"] == [] and not res.get("warnings")

    # a failing card still fails the host, and the env result comes back with the failure
    res = run_module(tmp_path, {**args, "devices": [0, 1], "device_type": "npu"}, env={"FAIL_CARDS": "1"})
    assert res["failed"] is True and res["failed_cards"] == [1] and res["env"]["problems"][0]["code"] == "vendor_first"
    # check mode: the read-only env checks run, the kernel check does not
    res = run_module(tmp_path, args, check_mode=True)
    assert res["ok"] is None and res["env"]["ran"] is True and warnings_of(res) == res["env"]["lines"]


def test_module_without_env_checks_and_with_bad_ones(tmp_path, fake_kernels):
    res = run_module(tmp_path, {"kernels_dir": str(fake_kernels), "devices": [0], "python": sys.executable})
    assert res["ok"] is True and res["env"] == {"ran": False, "problems": [], "repair": False}
    res = run_module(tmp_path, {"kernels_dir": str(fake_kernels), "devices": [0], "python": sys.executable,
                                "env_checks": [{"id": "nothing", "phases": ["verify"]}]})
    assert res["failed"] is True and res["msg"].startswith("fa_verify: env_checks: every check needs an id")


def test_env_result_passes_the_context(tmp_path):
    h = make_fake_host(tmp_path)
    p = {"python": sys.executable, "cann_set_env": "", "cann_version": "8.5.0", "compat_torch_npu": {},
         "libraries": ["op_api/lib/libcust_opapi.so", "no/such/lib.so"], "env_timeout": 60, **env_args(h)}
    env = fa_verify.env_result(p)
    assert env["ran"] and [x["code"] for x in env["problems"]] == ["package_present"]
    assert "no/such/lib.so" in env["problems"][0]["found"] and env["host"] == "fake1"
    assert {s["name"]: s["path"] for s in env["scripts"]}["cann"] == str(h["home"] / "cann" / "set_env.sh")


# ------------------------------------------------------------------------------------------- shipped kernels
def _local_imports(path: Path, names: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found & names


def test_role_ships_exactly_what_fa_check_imports():
    """fa_verify_kernel_files = fa_check.py and its import closure within kernels/ (no fa_bench.py)."""
    defaults = yaml.safe_load((ROOT / "roles" / "fa_verify" / "defaults" / "main.yml").read_text())
    kernels = ROOT / "kernels"
    names = {p.stem for p in kernels.glob("*.py")}
    closure, todo = set(), ["fa_check"]
    while todo:
        mod = todo.pop()
        if mod not in closure:
            closure.add(mod)
            todo += sorted(_local_imports(kernels / f"{mod}.py", names))
    assert sorted(defaults["fa_verify_kernel_files"]) == sorted(f"{m}.py" for m in closure)
    assert "fa_bench.py" not in defaults["fa_verify_kernel_files"] and len(closure) < len(names)


def test_the_results_copy_never_overwrites_the_verification_record(tmp_path, fake_kernels):
    """The role's results copy once defaulted to <state_dir>/verify.json, the record itself: every check wrote its
    results there first, so the record lost the last package that passed ("verified") and a failed upgrade was
    rolled back to no package at all."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "manifest.json").write_text(json.dumps({"recipe": "r1", "sha256": "a" * 64}))
    args = {"kernels_dir": str(fake_kernels), "npu_count": 2, "python": sys.executable, "state_dir": str(state),
            "results_file": str(state / "verify.json")}
    res = run_module(tmp_path, args)
    assert res["ok"] is True and "verification record" in json.dumps(res.get("warnings"))
    (state / "manifest.json").write_text(json.dumps({"recipe": "r2", "sha256": "b" * 64}))
    res = run_module(tmp_path, args, env={"FAIL_CARDS": "1"})
    rec = json.loads((state / "verify.json").read_text())
    assert rec["ok"] is False and rec["sha256"] == "b" * 64
    assert rec["verified"]["recipe"] == "r1" and rec["verified"]["sha256"] == "a" * 64
    defaults = (Path(__file__).resolve().parents[2] / "roles/fa_verify/defaults/main.yml").read_text()
    assert "/verify.json" not in defaults.split("fa_verify_host_results_file:")[1].splitlines()[0]
