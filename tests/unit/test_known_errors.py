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
    "custom_opp_path_late",           # SelectBin no kernel / GetWorkspaceSize=561103
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
    ("custom_opp_path_late", "[ERROR] SelectBin: not find kernel for FlashAttentionScore"),
    ("custom_opp_path_late", "call aclnnFusedInferAttentionScore failed, GetWorkspaceSize = 561103"),
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
        for msg in messages + [short]:
            got = ke.classify(msg)
            assert got["class"] == want, (msg, got["class"], got["matched"])
            assert got["fix"] and got["cause"] and got["source"]


def test_every_data_example_gets_its_class():
    signatures = fa_known_errors_data.SIGNATURES
    classes = [s["class"] for s in signatures]
    assert len(classes) == len(set(classes))
    assert set(ROW_CLASSES) <= set(classes)
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
    assert one_line["class"] == "soc_mismatch" and one_line["also"] == ["workload_error"]


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
                                 "signatures": fa_known_errors_data.SIGNATURES}
    assert explain.load_signatures() == ke.default_data()
    explain.load_signatures()["signatures"].clear()
    assert fa_known_errors_data.SIGNATURES and ke.classify("invalid ELF header")["class"] == "library_corrupt"
    assert "fa_known_errors_data.py" in ke.classify("nothing known")["fix"]


def test_signature_patterns_compile_and_fields_are_complete():
    assert set(fa_known_errors_data.PLACEHOLDERS) >= {"library", "symbol", "soc", "api"}
    for entry in fa_known_errors_data.SIGNATURES:
        for key in ("class", "patterns", "cause", "fix", "source", "kind"):
            assert entry.get(key), (entry.get("class"), key)
        assert entry["kind"] in ("install", "build", "workload", "harmless")
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


def test_register_adds_explain_and_keeps_an_existing_doctor():
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd")
    existing = sub.add_parser("doctor")
    explain.register(sub)
    assert sub.choices["doctor"] is existing and "explain" in sub.choices
    a = parser.parse_args(["explain", "-", "--json"])
    assert a.func is explain.cmd_explain and a.json
    fresh = argparse.ArgumentParser().add_subparsers(dest="cmd")
    explain.register(fresh)
    assert {"explain", "doctor"} <= set(fresh.choices)


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
