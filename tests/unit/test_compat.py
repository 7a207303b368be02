"""Compatibility data and checker, and `ascend-fa compat`."""

from __future__ import annotations

import re

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
    (["--driver", "24.1.0"], "driver_too_old"),
    (["--driver", "25.6.0"], "driver_not_paired"),
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
         "found": "2.1.0.post4",
         "needed": "2.9.0 or 2.8.0.post2 or 2.7.1.post2 or 2.6.0.post5 (Ascend/pytorch COMPATIBILITY.en.md @ b48e64812)",
         "fix": "pip install torch_npu==2.8.0.post2 torch==2.8.0 (Ascend Extension for PyTorch 7.3.0)"},
        {"code": "torch_torch_npu_mismatch", "severity": "error", "what": "torch 2.8.0+cpu does not match torch_npu 2.1.0.post4",
         "found": "2.8.0+cpu", "needed": "2.1.0", "fix": "pip install torch==2.1.0 (torch_npu follows the torch version)"}]
    c = compat.Checker(compat.load_matrix())
    c.torch({"cann_version": "8.0.RC1", "torch_npu_version": "6.0.rc1", "torch_version": "2.1.0"})
    assert [(p.code, p.severity, p.found, p.needed) for p in c.problems] == [
        ("torch_npu_extension_name", "warning", "6.0.rc1", "a torch_npu version such as 2.1.0.post4"),
        ("torch_npu_cann_mismatch", "error", "6.0.rc1",
         "2.2.0 or 2.1.0.post4 or 1.11.0.post11 or 2.1.0.post3 (Ascend/pytorch COMPATIBILITY.en.md @ b48e64812)"),
        ("torch_torch_npu_mismatch", "error", "2.1.0", "6.0")]
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


# --- the data against copies of the official tables (tests/data/official/, written out from the sources) -------------
OFFICIAL = PROJECT_ROOT / "tests" / "data" / "official"


def _compat_rows() -> list[tuple[str, str, str, str]]:
    """(torch_npu, branch, pytorch, cann) per row of Ascend/pytorch COMPATIBILITY.en.md (both tables)."""
    rows = []
    for line in (OFFICIAL / "ascend-pytorch-compatibility.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[3].startswith("CANN ") and not cells[0].startswith("TorchNPU"):
            rows.append((cells[0].replace(" (beta)", ""), cells[1], cells[2], cells[3].removeprefix("CANN ")))
    return rows


COMPAT_ROWS = _compat_rows()


def _torch_codes(cann: str, torch_npu: str, torch: str | None = None) -> dict[str, str]:
    c = compat.Checker(compat.load_matrix())
    c.torch({"cann_version": cann, "torch_npu_version": torch_npu, "torch_version": torch})
    return {p.code: p.severity for p in c.problems}


def test_official_compat_copy_is_complete():
    assert len(COMPAT_ROWS) == 62 and COMPAT_ROWS[0] == ("2.12.0", "v2.12.0-26.1.0", "2.12.0", "9.1.0")
    assert ("2.8.0.post4", "v2.8.0-26.0.0", "2.8.0", "9.0.0") in COMPAT_ROWS


@pytest.mark.parametrize("row", COMPAT_ROWS, ids=[f"{r[3]}-{r[0]}" for r in COMPAT_ROWS])
def test_every_official_torch_npu_pairing_is_accepted(row):
    torch_npu, branch, pytorch, cann = row
    torch = "1.5.0" if torch_npu == "1.5.0.post3" else pytorch   # the table's one odd PyTorch cell (see the copy)
    assert _torch_codes(cann, torch_npu, torch) == {}
    ext = branch.split("-", 1)[1] if branch.startswith("v") else branch
    assert compat.load_matrix()["torch_npu"][cann]["extension"] == ext


def _unpaired() -> list[tuple[str, str]]:
    by_cann: dict[str, set[str]] = {}
    for torch_npu, _b, _p, cann in COMPAT_ROWS:
        by_cann.setdefault(cann, set()).add(torch_npu)
    every = sorted({r[0] for r in COMPAT_ROWS})
    return [(cann, v) for cann, listed in by_cann.items() for v in every if v not in listed]


UNPAIRED = _unpaired()
# pairings the data takes from other sources than COMPATIBILITY.en.md (each named in compat.yml "also")
OTHER_SOURCES = {("8.0.RC1", "2.1.0.post3")}


@pytest.mark.parametrize("cann,torch_npu", UNPAIRED, ids=[f"{c}-{v}" for c, v in UNPAIRED])
def test_every_torch_npu_not_paired_is_refused_naming_the_source(cann, torch_npu):
    if (cann, torch_npu) in OTHER_SOURCES:
        pytest.skip("paired by another source, named in compat.yml")
    c = compat.Checker(compat.load_matrix())
    c.torch({"cann_version": cann, "torch_npu_version": torch_npu})
    [p] = [p for p in c.problems if p.code == "torch_npu_cann_mismatch"]
    assert p.severity == "error" and "COMPATIBILITY.en.md" in p.needed


@pytest.mark.parametrize("cann,torch_npu,line", [
    ("9.0.0", "2.8.0.post5", "2.8.0.post4"), ("9.1.0", "2.10.0.post9", "2.10.0.post4"), ("8.5.0", "2.9.0.post1", "2.9.0"),
    ("8.0.RC1", "2.1.0.post5", "2.1.0.post4")])
def test_a_later_post_of_a_listed_line_is_a_warning(cann, torch_npu, line):
    c = compat.Checker(compat.load_matrix())
    c.torch({"cann_version": cann, "torch_npu_version": torch_npu, "torch_version": line.split(".post")[0]})
    assert [(p.code, p.severity) for p in c.problems] == [("torch_npu_later_post", "warning")]
    assert c.problems[0].needed.startswith(line + " (")


@pytest.mark.parametrize("cann,torch_npu", [
    ("9.0.0", "2.9.0.post6"),     # a later post of 9.0.0's 2.9.0 line, but the build COMPATIBILITY pairs with 9.1.0
    ("9.0.0", "2.8.0.post3"),     # an earlier build
    ("8.5.0", "2.9.0.post2"),     # listed for CANN 9.0.0
    ("9.1.0", "2.12.0.post1.dev0")])
def test_builds_of_another_cann_or_earlier_ones_stay_errors(cann, torch_npu):
    assert _torch_codes(cann, torch_npu).get("torch_npu_cann_mismatch") == "error"


def test_the_issue_stack_passes(capsys):
    assert main(["compat", "--driver", "25.5.1", "--cann", "9.0.0", "--soc", "ascend910b3", "--torch-npu",
                 "2.8.0.post4", "--torch", "2.8.0"]) == 0
    assert "no problem found" in capsys.readouterr().out


def _hdk_pairs() -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(cann, hdk, source) paired (Y or 配套) and not paired (N) from the copy of the release notes."""
    yes, no, source, head = [], [], "", []
    for line in (OFFICIAL / "release-management-hdk.md").read_text().splitlines():
        if line.startswith("## "):
            source = line[3:].split(" @ ")[0]
        elif line.startswith("配套 "):
            cann, hdks = line[3:].split(" | ")
            yes += [(cann, h.strip(), source) for h in hdks.split(",")]
        elif line.startswith("兼容 CANN"):
            head = [c.strip() for c in line.split("|")[1:]]
        elif line.startswith("兼容 "):
            cells = [c.strip() for c in line[3:].split("|")]
            for col, mark in zip(head, cells[1:], strict=True):
                for hdk in col.split("/"):
                    (yes if mark == "Y" else no).append((cells[0], hdk, source))
    return yes, no


HDK_YES, HDK_NO = _hdk_pairs()


def _concrete(version: str, patch: str = "1") -> str:
    return version[:-1] + patch if version.upper().endswith(".X") else version


def _driver_codes(cann: str, driver: str) -> list[compat.Problem]:
    c = compat.Checker(compat.load_matrix())
    c.driver({"cann_version": cann, "driver_version": driver})
    return c.problems


@pytest.mark.parametrize("cann,hdk,source", HDK_YES, ids=[f"{c}-{h}" for c, h, _s in HDK_YES])
def test_every_official_driver_pairing_is_accepted(cann, hdk, source):
    for cann_v in {_concrete(cann, "0"), _concrete(cann, "1")}:
        assert _driver_codes(cann_v, _concrete(hdk, "0")) == [], (cann_v, hdk, source)


@pytest.mark.parametrize("cann,hdk,source", HDK_NO, ids=[f"{c}-{h}" for c, h, _s in HDK_NO])
def test_every_official_n_is_refused_naming_the_source(cann, hdk, source):
    [p] = _driver_codes(_concrete(cann, "0"), _concrete(hdk, "0"))
    assert p.severity == "error" and "release-notes.md" in p.needed


@pytest.mark.parametrize("cann,driver,code", [
    ("9.1.0", "24.1.0", "driver_too_old"), ("9.0.1", "25.6.0", "driver_not_paired"), ("9.0.0", "26.2.0", "driver_not_paired"),
    ("8.5.0", "25.5.2", "driver_not_paired"), ("8.5.0", "24.1.rc1", "driver_too_old"), ("9.1.1", "23.0.3", "driver_too_old")])
def test_drivers_no_note_pairs_are_refused(cann, driver, code):
    [p] = _driver_codes(cann, driver)
    assert (p.code, p.severity) == (code, "error") and "release-notes.md" in p.needed


def test_the_issue_driver_example_fails_with_the_reason(capsys):
    assert main(["compat", "--driver", "24.1.0", "--cann", "9.1.0", "--soc", "ascend910b3"]) == 1
    out = capsys.readouterr().out
    assert "CANN 9.1.0 needs NPU driver >= 25.2" in out and "9.1.0/release-notes.md" in out


def test_a_cann_without_driver_record_is_a_warning():
    assert [(p.code, p.severity) for p in _driver_codes("8.5.1", "25.5.1")] == [("cann_driver_unknown", "warning")]


def _ops_tables() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (OFFICIAL / "release-management-ops.md").read_text().splitlines():
        if line.startswith("transformer "):
            tag, cann = line[len("transformer "):].split(" | ")
            out[tag] = [c.strip() for c in cann.split(",")]
    return out


def test_tags_recipes_and_toolkits_follow_the_mirror_and_the_notes():
    tags = {}
    for line in (OFFICIAL / "ops-transformer-tags.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            tag, commit, _date = line.split()
            tags[tag] = commit
    final = {t: c for t, c in tags.items() if re.fullmatch(r"v\d+\.\d+\.\d+", t)}
    assert sorted(final) == ["v8.5.0", "v9.0.0", "v9.0.1"]
    data = compat.load_matrix()["ops_transformer"]["tags"]
    recipes = {yaml.safe_load(p.read_text())["tag"]: yaml.safe_load(p.read_text())
               for p in (PROJECT_ROOT / "recipes").glob("*.yml")}
    notes = _ops_tables()
    for tag, commit in final.items():
        assert data[tag]["commit"] == commit == recipes[tag]["commit"], tag
        if tag in notes:
            assert data[tag]["toolkits"] == notes[tag], tag
        assert data[tag]["source"], tag


def test_a_cann_in_range_but_not_in_the_notes_is_a_warning():
    stack = {"driver_version": "25.5.1", "cann_version": "9.0.1", "soc_family": "ascend910b", "fa_supported": True}
    probs = compat.check(stack, tag="v9.0.0")
    assert [(p.code, p.severity) for p in probs] == [("cann_not_listed_for_release", "warning")]
    assert "9.0.0/release-notes.md" in probs[0].needed
