"""Known-error classifier: every message of field-errors.md gets its class; every example in the signatures
(module_utils/fa_known_errors_data.py, their one home) gets its class; the same classes worded with other SoC, library
and symbol names get the same classes; unknown text is reported as unknown with the log's last lines; ``ascend-fa
explain`` on a file and on stdin, with the shipped signatures or a user's YAML file of them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.module_utils import fa_known_errors as ke
from ansible_collections.ascend.fa.plugins.module_utils import fa_known_errors_data

from ascend_fa import explain

ROOT = Path(__file__).resolve().parents[2]
# CI lays ../shared beside the checkout
FIELD_ERRORS = next((p for p in (ROOT.parent / "shared/reference/field-errors.md",
                                 Path("/work/shared/reference/field-errors.md")) if p.exists()),
                    ROOT.parent / "shared/reference/field-errors.md")

# field-errors.md, row by row (in the table's order): the class of each row's messages.
ROW_CLASSES = [
    "build_oom",                      # opc OOM-killed during build
    "soc_mismatch",                   # the socversion X of bin package does not match ... socverison Y
    "soc_unsupported",                # EE1001 supported socVersion=..., model socVersion=... / SOC_VERSION ... does not support
    "aclnn_api_missing",              # aclnnPromptFlashAttentionV3... not in libopapi.so
    "torch_npu_cann_mismatch",        # undefined symbol: MsprofSysCycleTime
    "nnal_torch_npu_mismatch",        # libtbe_adapter.so: undefined symbol _ZN3Mki2Dl...
    "shared_object_missing",          # ImportError: libhccl.so / libatb.so: cannot open shared object file
    "custom_opapi_probe",             # dlopen libcust_opapi.so failed, error:(null)
    # SelectBin no kernel / GetWorkspaceSize=561103: the row's cause (a late ASCEND_CUSTOM_OPP_PATH) is one cause of
    # a missing kernel; 561103 alone is generic (facts 9.5; ops-transformer docs/zh/context/aclnn返回码.md)
    {"SelectBin": "kernel_binary_missing", "GetWorkspaceSize=561103": "generic"},
    "cann_python_deps",               # EH9999 [Init][Env]init env failed ... 500001
    "workload_error",                 # EZ9999: Inner Error! ... numHeads / numKvHeads ...
    "custom_ops_removed_by_upgrade",  # custom ops gone after a toolkit upgrade
    "vendor_priority",                # vendor package cannot be uninstalled; load_priority order
]

# The same classes, worded with other SoC, library, symbol and API names (and other surrounding text).
VARIANTS = [
    ("soc_mismatch", "the socversion Ascend910_9392 of bin package does not match the current device socverison Ascend910B4"),
    ("soc_mismatch", "EZ9999: [FlashAttentionScore] the socversion ascend910b of bin package does not match the current "
                     "device socverison Ascend950PR. (package: /opt/x)"),
    ("soc_mismatch", "[ERROR] binary package socVersion: Ascend310P1, but device socVersion is Ascend910B2"),
    ("soc_unsupported", "EE1001 supported socVersion=Ascend310P3, but the model socVersion=Ascend310P"),
    ("soc_unsupported", "CMake Error: SOC_VERSION ascend910b9 does not support"),
    ("soc_unsupported", "SOC_VERSION Ascend950DT is not supported"),
    ("torch_npu_cann_mismatch", "ImportError: /usr/lib/python3/site-packages/torch_npu/lib/libtorch_npu.so: undefined "
                                "symbol: aclrtSynchronizeDeviceWithTimeout"),
    ("torch_npu_cann_mismatch", "OSError: libopapi.so: undefined symbol: aclnnGroupedMatmulV4GetWorkspaceSize"),
    ("nnal_torch_npu_mismatch", "libtbe_adapter.so: undefined symbol: _ZN3Mki6Tensor5ResetEv"),
    ("nnal_torch_npu_mismatch", "/usr/local/Ascend/nnal/atb/latest/atb/cxx_abi_0/lib/libatb.so: undefined symbol: "
                                "_ZN3atb7Context6CreateEv"),
    ("shared_object_missing", "ImportError: libascend_hal.so: cannot open shared object file: No such file or directory"),
    ("shared_object_missing", "OSError: libcust_opapi.so: cannot open shared object file: No such file or directory"),
    ("shared_object_missing", "ImportError: libge_runner.so"),
    ("shared_object_missing", "python3: error while loading shared libraries: libnnopbase.so: cannot open shared object"),
    ("aclnn_api_missing", "aclnnFusedInferAttentionScoreV3 or aclnnFusedInferAttentionScoreV3GetWorkspaceSize not in "
                          "libopapi.so, or libopapi.so not found."),
    ("aclnn_api_missing", "aclnnMoeGatingTopK not found in libcust_opapi.so"),
    ("library_corrupt", "dlopen /usr/local/Ascend/cann/opp/vendors/x/op_api/lib/libcust_opapi.so failed, "
                        "error:/usr/local/Ascend/cann/opp/vendors/x/op_api/lib/libcust_opapi.so: invalid ELF header"),
    ("library_corrupt", "OSError: /opt/lib/libhccl.so: file too short"),
    ("custom_opapi_unloadable", "dlopen /opt/vendors/v/op_api/lib/libcust_opapi.so failed, error:permission denied"),
    ("kernel_binary_missing", "[ERROR] SelectBin: not find kernel for FlashAttentionScore"),
    ("kernel_binary_missing", "EZ9999: [PID: 9] Cannot find bin of op MoeGatingTopK, integral key 0/1/|fp16/ND/."),
    ("generic", "call aclnnFusedInferAttentionScore failed, GetWorkspaceSize = 561103"),
    ("generic", "RuntimeError: call aclnnMatmul failed, detail:EE9999: Inner Error!"),
    ("device_kernel_fault", "EZ9999[PID: 1] (EZ9999):  there is an aivec error exception, core id is 3"),
    ("workload_error", "EZ9999: [PID: 5] FlashAttentionScore tiling failed: sparse_mode 9 is not supported"),
    ("cann_python_deps", "RuntimeError: [Init][Env]init env failed! error code 500001"),
    ("build_oom", "g++: fatal error: Killed signal terminated program cc1plus"),
    ("build_oom", "[12345.678] Out of memory: Killed process 777 (ccec) total-vm:1234kB"),
    ("build_oom", "bisheng: error: unable to execute command: Killed (signal 9)"),
    ("workload_error", "EZ9999: Inner Error! numKvHeads(3) should be divisible by headNum"),
    ("custom_ops_removed_by_upgrade", "custom operator package missing after the CANN upgrade"),
    ("vendor_priority", "load_priority=customize,ascendfa_transformer"),
]


def field_error_rows() -> list[tuple[str, list[str]]]:
    """(short form, messages) of every table row: the backquoted parts, or the short form when it has none."""
    rows = []
    for line in FIELD_ERRORS.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| ") or line.startswith("| error") or line.startswith("|---"):
            continue
        short = line.split("|")[1].strip()
        quoted = re.findall(r"`([^`]+)`", short)
        rows.append((short, quoted or [short]))
    return rows


@pytest.mark.skipif(not FIELD_ERRORS.exists(), reason="field-errors.md is not on this machine")
def test_every_field_error_message_gets_its_class():
    rows = field_error_rows()
    assert len(rows) == len(ROW_CLASSES), [r[0] for r in rows]
    for (short, messages), want in zip(rows, ROW_CLASSES, strict=True):
        per_message = dict(want) if isinstance(want, dict) else dict.fromkeys(messages, want)
        # the short form carries every message of its row: it gets the class of its most specific one
        per_message.setdefault(short, next(c for c in per_message.values() if c != "generic"))
        for msg, cls in per_message.items():
            got = ke.classify(msg)
            assert got["class"] == cls, (msg, got["class"], got["matched"])
            assert got["fix"] and got["cause"] and got["source"]


def test_every_data_example_gets_its_class():
    signatures = fa_known_errors_data.SIGNATURES
    classes = [s["class"] for s in signatures]
    assert len(classes) == len(set(classes))
    row_classes = {c for w in ROW_CLASSES for c in (w.values() if isinstance(w, dict) else [w])}
    assert row_classes <= set(classes)
    for entry in signatures:
        assert entry["examples"], entry["class"]
        for msg in entry["examples"]:
            assert ke.classify(msg)["class"] == entry["class"], msg


@pytest.mark.parametrize(("want", "message"), VARIANTS)
def test_other_names_same_class(want, message):
    got = ke.classify(message)
    assert got["class"] == want, (got["class"], got["matched"])


def test_named_groups_fill_cause_and_fix():
    got = ke.classify("x\nthe socversion Ascend910_9382 of bin package does not match the current device socverison "
                      "Ascend910B2\n")
    assert got["groups"] == {"package_soc": "Ascend910_9382", "device_soc": "Ascend910B2"}
    assert "Ascend910_9382" in got["cause"] and "Ascend910B2" in got["cause"]
    lib = ke.classify("OSError: libfoo_bar.so.1: cannot open shared object file")
    assert lib["cause"].startswith("libfoo_bar.so.1 is not on the library search path")
    no_group = ke.classify("ERROR: invalid ELF header")
    assert "{" not in no_group["cause"] and "the shared library" in no_group["cause"]


def test_unknown_error_is_reported_with_the_last_lines():
    log = "\n".join(f"step {i}" for i in range(50)) + "\nSegmentation fault (core dumped) in frobnicate()\n"
    got = ke.classify(log)
    assert got["class"] == "unknown" and got["known"] is False
    assert got["tail"].splitlines()[-1] == "Segmentation fault (core dumped) in frobnicate()"
    assert len(got["tail"].splitlines()) == ke.TAIL_LINES
    assert ke.describe(got).startswith("unknown: ")
    assert ke.classify("")["class"] == "unknown"


def test_latest_error_wins_and_others_are_listed():
    log = ("ImportError: libhccl.so: cannot open shared object file\n...\n"
           "RuntimeError: [Init][Env]init env failed! 500001\n")
    got = ke.classify(log)
    assert got["class"] == "shared_object_missing"       # signature order: the more specific classes first
    assert got["also"] == ["cann_python_deps"]
    one_line = ke.classify("EZ9999: Inner Error!\nEZ9999: the socversion a of bin package does not match the current "
                           "device socverison b")
    assert one_line["class"] == "soc_mismatch" and one_line["also"] == []     # the line after EZ9999 explains it
    assert one_line["codes"] == [{"code": "EZ9999", "meaning": ke.code_meaning("EZ9999"),
                                  "explained_by": "soc_mismatch"}]


def test_harmless_probe_only_wins_alone():
    assert ke.classify("dlopen libcust_opapi.so failed, error:(null)")["kind"] == "harmless"
    log = "dlopen libcust_opapi.so failed, error:(null)\nundefined symbol: MsprofSysCycleTime\n"
    assert ke.classify(log)["class"] == "torch_npu_cann_mismatch"


def test_simulated_host_messages():
    """What the torch_npu stand-in prints for the simulated faults."""
    cases = {
        "ImportError: libascendcl.so: cannot open shared object file: No such file or directory": "shared_object_missing",
        "RuntimeError: dlopen /usr/local/Ascend/cann/opp/vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so "
        "failed, error:/usr/local/Ascend/cann/opp/vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so: "
        "invalid ELF header": "library_corrupt",
        "ImportError: /usr/local/lib/python3.11/dist-packages/torch_npu/lib/libtorch_npu.so: undefined symbol: "
        "MsprofSysCycleTime (SIMULATED: torch_npu 2.1.0.post4 is built for CANN 8.0.RC1)": "torch_npu_cann_mismatch",
        "aclnnFlashAttentionScore or aclnnFlashAttentionScoreGetWorkspaceSize not in libopapi.so, or libopapi.so not "
        "found. No installed custom operator package provides it": "aclnn_api_missing",
    }
    for msg, want in cases.items():
        assert ke.classify(msg)["class"] == want, msg


def test_the_shipped_signatures_are_the_defaults():
    """The classifier and ``ascend-fa explain`` read the one copy; explain hands out a copy it may not change."""
    assert ke.default_data() == {"placeholders": fa_known_errors_data.PLACEHOLDERS,
                                 "signatures": fa_known_errors_data.SIGNATURES,
                                 "generic_codes": fa_known_errors_data.GENERIC_CODES}
    assert explain.load_signatures() == ke.default_data()
    explain.load_signatures()["signatures"].clear()
    assert fa_known_errors_data.SIGNATURES and ke.classify("invalid ELF header")["class"] == "library_corrupt"
    assert "fa_known_errors_data.py" in ke.classify("nothing known")["fix"]


def test_signature_patterns_compile_and_fields_are_complete():
    assert set(fa_known_errors_data.PLACEHOLDERS) >= {"library", "symbol", "soc", "api"}
    for entry in fa_known_errors_data.SIGNATURES:
        for key in ("class", "patterns", "cause", "fix", "source", "kind"):
            assert entry.get(key), (entry.get("class"), key)
        assert entry["kind"] in ("install", "build", "workload", "device", "harmless", "generic")
        for p in entry["patterns"]:
            re.compile(p)


def _explain(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ascend_fa.explain", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_explain_cli_file_stdin_json_and_unknown(tmp_path):
    log = tmp_path / "build.log"
    log.write_text("make[2]: *** [kernel] Error 1\nc++: fatal error: Killed signal terminated program cc1plus\n")
    p = _explain(str(log))
    assert p.returncode == 0 and p.stdout.startswith("build_oom in ") and "fix:" in p.stdout
    p = _explain("-", "--json", stdin="undefined symbol: aclrtFoo\n")
    assert p.returncode == 0 and json.loads(p.stdout)["class"] == "torch_npu_cann_mismatch"
    p = _explain("-", stdin="all good until\nsomething odd happened\n")
    assert p.returncode == 1 and "unknown error" in p.stdout and "something odd happened" in p.stdout
    assert _explain(str(tmp_path / "missing.log")).returncode == 2


def test_explain_cli_with_a_users_signatures_file(tmp_path):
    sigs = tmp_path / "mine.yml"
    sigs.write_text("placeholders: {thing: a widget}\n"
                    "signatures:\n"
                    "  - class: widget_jammed\n"
                    "    patterns: ['widget (?P<thing>\\w+) jammed', 'gears stuck']\n"
                    "    cause: '{thing} is jammed'\n"
                    "    fix: unjam it\n"
                    "    source: our runbook\n"
                    "    kind: workload\n")
    p = _explain("-", "--json", "--signatures", str(sigs), stdin="step 1\nwidget W7 jammed\n")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert (got["class"], got["cause"], got["fix"]) == ("widget_jammed", "W7 is jammed", "unjam it")
    assert json.loads(_explain("-", "--json", "--signatures", str(sigs), stdin="gears stuck\n").stdout)["cause"] == \
        "a widget is jammed"
    p = _explain("-", "--signatures", str(sigs), stdin="c++: fatal error: Killed signal terminated program cc1plus\n")
    assert p.returncode == 1 and "unknown error" in p.stdout       # the user's file replaces the shipped signatures
    assert _explain("-", "--signatures", str(tmp_path / "none.yml"), stdin="x\n").returncode == 2
    assert _explain("-", "--sync-embedded", stdin="x\n").returncode == 2      # the option is gone (argparse error)


def test_register_adds_explain_only():
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd")
    explain.register(sub)
    assert set(sub.choices) == {"explain"}     # doctor is a playbook subcommand of the CLI (ascend_fa/cli.py)
    a = parser.parse_args(["explain", "-", "--json"])
    assert a.func is explain.cmd_explain and a.json


def test_fa_build_failure_names_the_class_and_fix(tmp_path):
    from ansible_collections.ascend.fa.plugins.modules import fa_build

    log = tmp_path / "build.log"
    log.write_text("[ 42%] Building opc kernels\nc++: fatal error: Killed signal terminated program cc1plus\n"
                   "make: *** [all] Error 2\n")
    diag = fa_build.classify_log(str(log))
    assert diag["class"] == "build_oom" and diag["known"]
    text = fa_build.diagnosis_text(diag)
    assert "--- diagnosis: build_oom ---" in text and "fix: lower the job count" in text
    unknown = fa_build.classify_log(str(tmp_path / "missing.log"), fallback="weird failure")
    assert unknown["class"] == "unknown" and "unknown error" in fa_build.diagnosis_text(unknown)


def test_fa_verify_card_diagnosis_and_summary():
    from ansible_collections.ascend.fa.plugins.module_utils import fa_verify_lib as fa_verify

    stderr = ("Traceback (most recent call last):\nImportError: libascendcl.so: cannot open shared object file: "
              "No such file or directory\n")
    card = fa_verify.card_result(0, 1, "", stderr, False, 30, 1.0)
    assert card["diagnosis"]["class"] == "shared_object_missing"
    timeout = fa_verify.card_result(1, None, "", "", True, 30, 30.0)
    assert "diagnosis" not in timeout
    agg = fa_verify.aggregate([card, timeout])
    assert agg["summary"].endswith("known error shared_object_missing: " + card["diagnosis"]["fix"])


# --- diagnosis by context (facts 9.5): real error texts, tests/data/error_samples/ (source URL in each file) ----------

SAMPLES = ROOT / "tests/data/error_samples"
# the class each real text must get, decided by reading the text and its source, not by the signatures
SAMPLE_CLASSES = {
    "ez9999_cannot_find_bin_range.log": "kernel_binary_missing",       # Ascend's own troubleshooting page
    "ez1001_cannot_find_bin_pfa_310p.log": "kernel_binary_missing",    # EZ1001, not EZ9999: same cause
    "561103_fa_atten_mask_vllm.log": "workload_error",                 # 561103 from a tiling check
    "561103_fa_atten_mask_opensora.log": "workload_error",
    "e89999_tiling_interleaved_ranks.log": "workload_error",           # two ranks interleaved
    "ez9999_aicore_exception_fftsplus.log": "device_kernel_fault",
    "ez9999_aicore_error_exception.log": "device_kernel_fault",
    "ez9999_aicpu_exception_one_line.log": "device_kernel_fault",      # newlines lost in the paste
    "507035_vector_core_abnormal.log": "device_kernel_fault",
}
# the generic code(s) each sample carries, by reading it
SAMPLE_CODES = {
    "ez9999_cannot_find_bin_range.log": {"EZ9999", "ERR01100"},
    "ez1001_cannot_find_bin_pfa_310p.log": {"EZ1001", "ERR01100"},
    "561103_fa_atten_mask_vllm.log": {"561103", "EZ9999", "ERR00100"},
    "561103_fa_atten_mask_opensora.log": {"561103", "EZ9999"},
    "e89999_tiling_interleaved_ranks.log": {"E89999", "ERR00100"},
    "ez9999_aicore_exception_fftsplus.log": {"EZ9999"},
    "ez9999_aicore_error_exception.log": {"EZ9999"},
    "ez9999_aicpu_exception_one_line.log": {"EZ9999"},
    "507035_vector_core_abnormal.log": {"ERR00100"},
}


def read_sample(name: str) -> tuple[dict, str]:
    """(header fields, text) of a sample file: ``key: value`` lines, a ``---`` line, then the text verbatim."""
    head, _, text = (SAMPLES / name).read_text(encoding="utf-8").partition("\n---\n")
    fields = dict(line.split(": ", 1) for line in head.splitlines())
    return fields, text


def test_every_sample_has_a_source_and_an_expected_class():
    files = {p.name for p in SAMPLES.glob("*.log")}
    assert files == set(SAMPLE_CLASSES), files ^ set(SAMPLE_CLASSES)
    for name in files:
        fields, text = read_sample(name)
        assert fields["source"].startswith("https://") and fields["note"] and text.strip(), name


@pytest.mark.parametrize("name", sorted(SAMPLE_CLASSES))
def test_real_error_texts_are_classified_by_their_context(name):
    _, text = read_sample(name)
    got = ke.classify(text)
    assert got["class"] == SAMPLE_CLASSES[name], (got["class"], got["matched"])
    assert got["known"] and got["fix"] and "generic" not in got["also"]
    seen = {c["code"] for c in got["codes"]}
    assert seen == SAMPLE_CODES[name], seen
    # each generic code is explained by a line near it (the lines of another rank included)
    assert all(c["explained_by"] for c in got["codes"]), got["codes"]


# the line of each sample that carries a generic code and nothing that names the cause, as a truncated paste shows
# it (the one-line paste of mmcv #3203 has no such line)
CODE_LINE = {
    "ez9999_cannot_find_bin_range.log": 0,
    "ez1001_cannot_find_bin_pfa_310p.log": 1,
    "561103_fa_atten_mask_vllm.log": 0,
    "561103_fa_atten_mask_opensora.log": 0,
    "e89999_tiling_interleaved_ranks.log": 2,
    "ez9999_aicore_exception_fftsplus.log": 2,
    "ez9999_aicore_error_exception.log": 1,
    "507035_vector_core_abnormal.log": 1,
}


@pytest.mark.parametrize("name", sorted(CODE_LINE))
def test_the_code_line_alone_is_generic(name):
    """Only the line with the code: the class is generic, not known, and the fix names the evidence to capture."""
    _, text = read_sample(name)
    line = text.splitlines()[CODE_LINE[name]]
    got = ke.classify(line)
    assert (got["class"], got["known"], got["kind"]) == ("generic", False, "generic"), (line, got["class"])
    assert got["missing"] and "~/ascend/log" in got["fix"] and "ASCEND_GLOBAL_LOG_LEVEL=1" in got["fix"]
    assert got["codes"] and got["codes"][0]["explained_by"] is None


def test_fix_names_what_to_check():
    missing = ke.classify("EZ9999: Inner Error!\nEZ9999: [PID: 1] Cannot find bin of op FlashAttentionScore, "
                          "integral key 0/1/|bf16/BNSD/bf16/BNSD/.\n")
    assert missing["class"] == "kernel_binary_missing"
    assert "op_impl/ai_core/tbe/kernel/<soc_family>/" in missing["fix"] and "--soc" in missing["fix"]
    assert "FlashAttentionScore" in missing["cause"] and "ASCEND_CUSTOM_OPP_PATH" in missing["cause"]
    fault = ke.classify("EZ9999: there is an aicore error exception, core id is 0")
    assert fault["kind"] == "device" and "msnpureport" in fault["fix"] and "plog" in fault["fix"]
    late = ke.classify("GetWorkspaceSize=561103")
    assert late["class"] == "generic" and "ASCEND_CUSTOM_OPP_PATH" in late["cause"]   # one cause among several


def test_simulated_wrong_soc_package_text():
    """The simulated custom library's text on a wrong-SoC package (interface I2: the real wording, facts 9.5)."""
    text = ("RuntimeError: call aclnnFlashAttentionScore failed, detail:EZ9999: Inner Error!\n"
            "EZ9999: [PID: 4242] 2026-12-05-10:00:00.000.000 Cannot find bin of op FlashAttentionScore, integral key "
            "0/1/|bf16/ND/bf16/ND/bf16/ND/bf16/ND/.\n"
            "        TraceBack (most recent call last):\n"
            "       Cannot find binary for op FlashAttentionScore.\n")
    got = ke.classify(text)
    assert got["class"] == "kernel_binary_missing" and got["also"] == []
    assert got["groups"]["op"] == "FlashAttentionScore"


def test_a_code_far_from_its_cause_stays_generic():
    """A cause more than CONTEXT_LINES away explains nothing: the class is the cause, and 'generic' is listed too."""
    text = ("EZ9999: [PID: 1] Cannot find bin of op Range, integral key 0/1/.\n"
            + "step\n" * (ke.CONTEXT_LINES + 5) + "call aclnnX failed, error code is 561103\n")
    got = ke.classify(text)
    assert got["class"] == "kernel_binary_missing" and got["also"] == ["generic"]
    assert [c["explained_by"] for c in got["codes"]] == ["kernel_binary_missing", None]


def test_generic_beats_a_harmless_probe_and_unknown():
    got = ke.classify("dlopen libcust_opapi.so failed, error:(null)\nEZ9999: Inner Error!\n")
    assert got["class"] == "generic" and got["also"] == ["custom_opapi_probe"]
    assert ke.classify("no code here")["codes"] == []


def _table(name: str) -> list[str]:
    return [ln for ln in read_sample_table(name) if ln.strip()]


def read_sample_table(name: str) -> list[str]:
    return (SAMPLES / name).read_text(encoding="utf-8").partition("\n---\n")[2].splitlines()


def test_generic_codes_agree_with_the_official_tables():
    official = dict(ln.split() for ln in _table("aclnn_return_codes.txt"))
    for key, meaning in fa_known_errors_data.GENERIC_CODES.items():
        if key.startswith("ACLNN_ERR"):
            assert meaning.startswith(official[key] + ","), (key, meaning)
        elif key.isdigit():
            name = next(n for n, v in official.items() if v == key)
            assert meaning.startswith(name + ","), (key, meaning)
    # every code the official tables call an inner (generic) error is generic when it stands alone
    for code in ("561000", "561103"):
        assert ke.classify(f"call aclnnX failed, error code is {code}")["class"] == "generic", code
    assert ke.classify(f"call aclnnX failed, error code is {official['ACLNN_ERR_INNER_FIND_KERNEL_ERROR']}")[
        "class"] == "kernel_binary_missing"
    assert ke.classify(f"call aclnnX failed, error code is {official['ACLNN_ERR_INNER_TILING_ERROR']}")[
        "class"] == "workload_error"
    for code in _table("cann_inner_error_codes.txt"):
        got = ke.classify(f"RuntimeError: call aclnnX failed, detail:{code}: Inner Error!")
        assert got["class"] == "generic" and got["codes"][0]["code"] == code, code
        assert code in got["cause"] and got["codes"][0]["meaning"]


def test_hostile_text_in_a_generic_code_line():
    """Regex-heavy and very long input: no catastrophic backtracking, nothing of the text in the fix."""
    import time

    text = "EZ9999 " + "[FUNC:" * 20000 + "\n" + ("x" * 50000 + "\n") * 20
    start = time.monotonic()
    got = ke.classify(text)
    assert time.monotonic() - start < 10
    assert got["class"] == "generic" and "FUNC" not in got["fix"]
