"""Compatibility data and checker, and `ascend-fa compat`."""

from __future__ import annotations

import pytest
import yaml
from ansible_collections.ascend.fa.plugins.plugin_utils import checklist, compat
from ansible_collections.ascend.fa.plugins.plugin_utils.buildplan import build_jobs, build_key, plan
from ansible_collections.ascend.fa.plugins.plugin_utils.versions import in_range, in_ranges, parse_ranges, vcmp

from ascend_fa import PROJECT_ROOT
from ascend_fa.cli import main

SEED = ["--driver", "23.0.3", "--cann", "8.0.RC1", "--soc", "ascend910b2", "--tag", "v1.2.0",
        "--torch-npu", "2.1.0.post4", "--torch", "2.1.0"]
GOOD = ["--driver", "25.5.1", "--cann", "9.0.0", "--soc", "ascend910b3", "--tag", "v9.0.1",
        "--torch-npu", "2.9.0.post2", "--torch", "2.9.0", "--firmware", "7.8.0.2.212"]


@pytest.mark.parametrize("a,b,want", [
    ("8.0.RC1", "8.0.0", -1), ("8.0.RC1", "8.0.RC2", -1), ("8.5.0-beta.1", "8.5.0", -1), ("8.5", "8.5.0", 0),
    ("8.5.0.alpha001", "8.5.0", -1), ("2.1.0.post4", "2.1.0.post3", 1), ("2.1.0.post4", "2.1.0", 1),
    ("24.1.rc1", "24.1.0", -1), ("25.5.1", "25.5.0", 1), ("9.0.0", "8.5.2", 1), ("8.0.RC1", "7.0.0", 1),
])
def test_version_order(a, b, want):
    assert vcmp(a, b) == want
    assert vcmp(b, a) == -want


def test_ranges_from_version_files():
    assert in_ranges("7.5.0.1.129", parse_ranges("[7.0.0,7.5.99]"))
    assert not in_ranges("7.3.0.1.231", parse_ranges("[7.0.0,7.2.99]"))  # the field report in ascend-facts 2.5
    drv = parse_ranges("[23.0.0,23.0.0.],[24.0,24.0.],[24.1,24.1.]")
    assert in_ranges("24.1.rc3", drv) and in_ranges("23.0.0", drv) and not in_ranges("25.5.0", drv)
    assert in_range("9.0.1", "8.5.2", "9.0.x") and not in_range("9.1.0", "8.5.2", "9.0.x")
    assert compat.inner_in_ranges("V100R001C19SPC001B124", "[V100R001C13,V100R001C19],[V100R001C30]")
    assert not compat.inner_in_ranges("V100R001C21SPC001B1", "[V100R001C13,V100R001C19],[V100R001C30]")


def test_seed_environment_is_explained(capsys):
    assert main(["compat", *SEED]) == 1
    out = capsys.readouterr().out
    assert "no tag v1.2.0" in out
    assert "needs CANN >= 8.5" in out
    assert "ships built in" in out
    assert "driver >= 24.1.rc1" in out


def test_seed_torch_npu_release_name_and_blog_soc(capsys):
    assert main(["compat", "--driver", "23.0.3", "--cann", "8.0.RC1", "--soc", "Ascend910", "--torch-npu", "6.0.rc1",
                 "--torch", "2.1.0"]) == 1
    out = capsys.readouterr().out
    assert "Ascend Extension for PyTorch release name" in out
    assert "torch_npu==2.1.0.post4" in out
    assert "does not run on this NPU" in out


def test_consistent_stack_passes(capsys):
    assert main(["compat", *GOOD]) == 0
    assert "no problem found" in capsys.readouterr().out


@pytest.mark.parametrize("args,code", [
    (["--soc", "ascend310p3"], "soc_unsupported"),
    (["--cann", "9.1.0", "--torch-npu", "2.14.0", "--torch", "2.14.0"], "cann_out_of_release_range"),
    (["--driver", "25.5.0"], "driver_too_old"),
    (["--torch-npu", "2.8.0"], "torch_npu_cann_mismatch"),
    (["--torch", "2.8.0"], "torch_torch_npu_mismatch"),
    (["--tag", "v8.5.0"], "cann_out_of_release_range"),
    (["--soc", "ascend950", "--tag", "v8.5.0", "--cann", "8.5.0", "--driver", "25.5.0", "--torch-npu", "2.9.0"],
     "soc_not_in_release"),
])
def test_each_problem_is_caught(args, code, capsys):
    argv = list(GOOD)
    for i in range(0, len(args), 2):
        argv[argv.index(args[i]) + 1] = args[i + 1]
    assert main(["compat", "--json", *argv]) == 1
    import json
    codes = [p["code"] for p in json.loads(capsys.readouterr().out)["problems"]]
    assert code in codes


def test_torch_problems_as_the_report_words_them():
    """The pairing rule (module_utils/fa_torch_pair.py) on the shipped data, worded by compat: literal expectations."""
    c = compat.Checker(compat.load_matrix())
    c.torch({"cann_version": "8.5.0", "torch_npu_version": "2.1.0.post4", "torch_version": "2.8.0+cpu"})
    assert [p.as_dict() for p in c.problems] == [
        {"code": "torch_npu_cann_mismatch", "severity": "error", "what": "torch_npu 2.1.0.post4 is not paired with CANN 8.5.0",
         "found": "2.1.0.post4", "needed": "2.9.0 or 2.8.0.post2 or 2.7.1.post2 or 2.6.0.post5",
         "fix": "pip install torch_npu==2.8.0.post2 torch==2.8.0 (Ascend Extension for PyTorch 7.3.0)"},
        {"code": "torch_torch_npu_mismatch", "severity": "error", "what": "torch 2.8.0+cpu does not match torch_npu 2.1.0.post4",
         "found": "2.8.0+cpu", "needed": "2.1.0", "fix": "pip install torch==2.1.0 (torch_npu follows the torch version)"}]
    c = compat.Checker(compat.load_matrix())
    c.torch({"cann_version": "8.0.RC1", "torch_npu_version": "6.0.rc1", "torch_version": "2.1.0"})
    assert [(p.code, p.severity, p.found, p.needed) for p in c.problems] == [
        ("torch_npu_extension_name", "warning", "6.0.rc1", "a torch_npu version such as 2.1.0.post4"),
        ("torch_npu_cann_mismatch", "error", "6.0.rc1", "2.2.0 or 2.1.0.post4 or 2.1.0.post3 or 1.11.0.post11"),
        ("torch_torch_npu_mismatch", "error", "2.1.0", "6.0.rc1")]
    assert c.problems[1].fix == "pip install torch_npu==2.1.0.post4 torch==2.1.0 (Ascend Extension for PyTorch 6.0.rc1)"
    for stack in ({"cann_version": "8.5", "torch_npu_version": "2.9", "torch_version": "2.9.0+cpu"},
                  {"cann_version": "8.0.rc1", "torch_npu_version": "2.1.0.post3", "torch_version": "2.1.0"},
                  {"cann_version": "8.5.0", "torch_version": "2.1.0"}):
        c = compat.Checker(compat.load_matrix())
        c.torch(stack)
        assert c.problems == [], stack


def test_firmware_mismatch_from_facts():
    stack = {"driver_version": "24.1.rc2", "firmware_version": "7.3.0.1.231", "driver_compatible_fw": "[7.0.0,7.2.99]",
             "cann_version": "8.0.RC2", "soc_family": "ascend910b", "fa_supported": True}
    codes = [p.code for p in compat.check(stack)]
    assert "firmware_driver_mismatch" in codes


def test_recipes_agree_with_the_compat_data():
    m = compat.load_matrix()
    for path in (PROJECT_ROOT / "recipes").glob("*.yml"):
        r = yaml.safe_load(path.read_text())
        rel = m["ops_transformer"]["tags"][r["tag"]]
        assert r["commit"] == rel["commit"], path
        assert r["cann"] == rel["cann"], path
        assert r["soc_families"] == rel["soc_families"], path


def test_checklist():
    facts = {"chips": [{"npu_id": 0, "chip_id": 0, "health": "OK", "hbm_total_mb": 65536, "hbm_used_mb": 64000},
                       {"npu_id": 1, "chip_id": 0, "health": "Warning", "hbm_total_mb": 65536, "hbm_used_mb": 0}],
             "npu_count": 2, "disk_free_mb": {"/var/lib/ascend-fa": 10, "/var/tmp/ascend-fa": 100},
             "mem_total_mb": 4096, "errors": []}
    codes = {p.code: p for p in checklist.problems(facts, {"expect_npus": 8, "is_build_host": True,
                                                           "min_build_mem_mb": 8192})}
    assert set(codes) == {"npu_unhealthy", "npu_count", "hbm_busy", "state_disk", "build_disk", "build_memory"}
    assert codes["npu_unhealthy"].found == "Warning" and codes["hbm_busy"].severity == "warning"
    assert checklist.problems({"errors": [{"source": "npu-smi", "reason": "npu-smi not found"}]})[0].code == \
        "npu_not_visible"


def test_build_jobs_and_plan():
    assert build_jobs(192, 24 * 1024, 4096) == 6          # memory bounds it, not the 192 CPUs
    assert build_jobs(2, 1024 * 1024, 4096) == 2
    assert build_jobs(512, 10**8, 4096, cap=64) == 64
    assert build_jobs(16, 1000, 4096) == 1
    assert build_jobs(16, 10**6, 4096, override=3) == 3
    k1 = build_key("r", "c", "ascend910b", "8.5.0", "x86_64")
    assert k1 == build_key("r", "c", "ascend910b", "8.5.0", "x86_64") != build_key("r", "c", "ascend910_93", "8.5.0",
                                                                                     "x86_64")
    p = plan({"a": {"build_key": "k1"}, "b": {"build_key": "k2"}, "c": {"build_key": "k1"}, "d": {}})
    assert p["k1"]["build_host"] == "a" and p["k1"]["hosts"] == ["a", "c"] and p["k2"]["hosts"] == ["b"]
    assert plan({"a": {"build_key": "k1"}}, build_host="builder")["k1"]["build_host"] == "builder"
