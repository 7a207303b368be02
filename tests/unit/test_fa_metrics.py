"""Prometheus textfile metrics of fa_verify (plugins/module_utils/fa_metrics.py): the file parses back under a strict
reader of the text exposition format 0.0.4 written here from the spec (prometheus/docs
content/docs/instrumenting/exposition_formats.md; tests/prom_text.py), values and labels are those of the
verification, hostile label values from hosts stay inside their label, the write is atomic (node_exporter's textfile
collector reads *.prom at any moment), and the module writes the file after a passing and a failing verification but
not in check mode."""

from __future__ import annotations

import json
import math
import os
import re
import stat
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.ascend.fa.plugins.module_utils import fa_metrics
from ansible_collections.ascend.fa.plugins.module_utils.fa_manifest import tree_digest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prom_text import VALUE, FormatError, parse, values  # noqa: E402  (tests/, on the path through tests/conftest.py)
from test_fa_verify import FAKE_CHECK, run_module, warnings_of  # noqa: E402


def test_the_reader_can_fail():
    good = '# HELP a_b x\n# TYPE a_b gauge\na_b{l="v"} 1\n'
    assert parse(good)["a_b"]["samples"] == [({"l": "v"}, 1.0)]
    for bad in ('# TYPE a_b gauge\na_b{l="v"} 1',                        # no final line feed
                'a_b 1\n',                                                # no TYPE
                '# TYPE a_b gauge\na_b{l="v\n"} 1\n',                     # raw line feed in a value
                '# TYPE a_b gauge\na_b{l="v"x"} 1\n',                     # unescaped quote
                '# TYPE a_b gauge\na_b{l="\\t"} 1\n',                     # unknown escape
                '# TYPE a_b gauge\na_b{l="v"} one\n',                     # not a float
                '# TYPE a_b gauge\na_b 1\na_b 2\n',                       # same series twice
                '# TYPE a_b gauge\na_b 1\n# TYPE c gauge\nc 1\na_b 2\n'):  # family split in two groups
        with pytest.raises(FormatError):
            parse(bad)


# ------------------------------------------------------------------------------------------- the format
HOSTILE = ['a\\b', 'say "hi"', 'line1\nline2', '"} 1\nascend_fa_verify_ok 1\n# x', '\\n literal', 'ünï ✓',
           'bad \udcff byte', 'x' * 2000]


def test_hostile_label_values_stay_inside_their_label():
    samples = {"ascend_fa_card_served_by_vendor": [({"card": i, "npu_id": 0, "chip_id": 0, "library": v, "source": "x"},
                                                    0) for i, v in enumerate(HOSTILE)],
               "ascend_fa_verify_ok": [({}, 0)]}
    text = fa_metrics.render(samples)
    fams = parse(text)
    assert set(fams) == {"ascend_fa_card_served_by_vendor", "ascend_fa_verify_ok"}   # no injected family
    assert fams["ascend_fa_verify_ok"]["samples"] == [({}, 0.0)]
    got = {int(lab["card"]): lab["library"] for lab, _v in fams["ascend_fa_card_served_by_vendor"]["samples"]}
    for i, v in enumerate(HOSTILE[:6]):
        assert got[i] == v                                          # exact round trip
    assert got[6] == "bad ? byte"                                   # not UTF-8: replaced, never a broken file
    assert len(got[7]) == fa_metrics.MAX_LABEL_CHARS and got[7].endswith("...")
    text.encode("utf-8")                                            # the whole file is valid UTF-8


def test_values_are_go_floats_and_labels_names_are_checked():
    assert [fa_metrics.format_value(v) for v in (1, 0, True, 0.00042, 1e-7, 3e21, float("nan"), float("inf"),
                                                  -float("inf"))] == \
        ["1", "0", "1", "0.00042", "1e-07", "3e+21", "NaN", "+Inf", "-Inf"]
    assert all(VALUE.match(fa_metrics.format_value(v)) for v in (0.1, 1e-7, 12345678.9, 2 ** 60))
    with pytest.raises(ValueError):
        fa_metrics.render({"ascend_fa_verify_ok": [({"bad-name": 1}, 1)]})
    with pytest.raises(ValueError):
        fa_metrics.render({"ascend_fa_made_up": [({}, 1)]})


# ------------------------------------------------------------------------------------------- what is measured
# A card result as fa_verify returns it (plugins/modules/fa_verify.py RETURN sample, served_by keys of
# kernels/served_by.py: library, vendor, source custom_path|vendor|builtin|none, ok), and npu-smi's chips of an
# Atlas A3 (two chips per NPU: logical devices 0..3 are NPU 0 chip 0, NPU 0 chip 1, NPU 1 chip 0, NPU 1 chip 1).
OURS = "/usr/local/Ascend/cann-8.5.0/opp/vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so"
BUILTIN = "/usr/local/Ascend/cann-8.5.0/lib64/libopapi.so"
CHIPS = [{"npu_id": n, "chip_id": c, "logic_id": 2 * n + c, "health": "OK"} for n in (0, 1) for c in (0, 1)]
CARDS = [
    {"card": 0, "ok": True, "latency_ms": 0.42, "reason": None,
     "served_by": {"library": OURS, "vendor": "ascendfa_transformer", "source": "vendor", "ok": True},
     "baseline": {"ran": True, "ok": True, "latency_ms": 0.40, "ratio": 1.05}},
    {"card": 1, "ok": True, "latency_ms": 0.5, "served_by": {"library": OURS, "source": "vendor", "ok": True},
     "baseline": None},
    {"card": 3, "ok": False, "latency_ms": None, "reason": "served by CANN's built-in FlashAttentionScore",
     "served_by": {"library": BUILTIN, "vendor": None, "source": "builtin", "ok": False},
     "baseline": {"ran": True, "ratio": None}},
]
MANIFEST = {"recipe": "ops-transformer-v9.0.1", "tag": "v9.0.1", "commit": "0f3c" * 10, "sha256": "3d" * 32,
            "vendor": "ascendfa", "vendor_dir": "/nonexistent"}

# the file for CARDS, written out by hand from the format's rules (not by the code under test)
EXPECTED = """\
# HELP ascend_fa_package_info The FlashAttention package ascend-fa installed on this host (install manifest): \
recipe, upstream tag and commit, sha256 of the .run, vendor. Always 1.
# TYPE ascend_fa_package_info gauge
ascend_fa_package_info{recipe="ops-transformer-v9.0.1",tag="v9.0.1",commit="@commit@",sha256="@sha@",\
vendor="ascendfa"} 1
# HELP ascend_fa_package_drift 1 when the installed package no longer matches its install manifest (state: \
files_changed, kernels_missing, cann_changed, missing), else 0.
# TYPE ascend_fa_package_drift gauge
ascend_fa_package_drift{state="files_changed"} 1
# HELP ascend_fa_verify_ok 1 when every card passed the last FlashAttention verification, else 0.
# TYPE ascend_fa_verify_ok gauge
ascend_fa_verify_ok 0
# HELP ascend_fa_verify_timestamp_seconds Unix time the last FlashAttention verification finished.
# TYPE ascend_fa_verify_timestamp_seconds gauge
ascend_fa_verify_timestamp_seconds 1795928400
# HELP ascend_fa_card_pass 1 when the card passed FlashAttention in the last verification, else 0.
# TYPE ascend_fa_card_pass gauge
ascend_fa_card_pass{card="0",npu_id="0",chip_id="0"} 1
ascend_fa_card_pass{card="1",npu_id="0",chip_id="1"} 1
ascend_fa_card_pass{card="3",npu_id="1",chip_id="1"} 0
# HELP ascend_fa_card_latency_seconds Median latency of the FlashAttention cases on the card in the last verification.
# TYPE ascend_fa_card_latency_seconds gauge
ascend_fa_card_latency_seconds{card="0",npu_id="0",chip_id="0"} 0.00042
ascend_fa_card_latency_seconds{card="1",npu_id="0",chip_id="1"} 0.0005
# HELP ascend_fa_card_served_by_vendor 1 when the installed package's library served aclnnFlashAttentionScore on \
the card (kernels/served_by.py), else 0.
# TYPE ascend_fa_card_served_by_vendor gauge
ascend_fa_card_served_by_vendor{card="0",npu_id="0",chip_id="0",library="@ours@",source="vendor"} 1
ascend_fa_card_served_by_vendor{card="1",npu_id="0",chip_id="1",library="@ours@",source="vendor"} 1
ascend_fa_card_served_by_vendor{card="3",npu_id="1",chip_id="1",library="@builtin@",source="builtin"} 0
# HELP ascend_fa_card_baseline_ratio Latency of our kernel over CANN's built-in FlashAttentionScore on the same card \
(only where the baseline ran).
# TYPE ascend_fa_card_baseline_ratio gauge
ascend_fa_card_baseline_ratio{card="0",npu_id="0",chip_id="0"} 1.05
""".replace("@commit@", "0f3c" * 10).replace("@sha@", "3d" * 32).replace("@ours@", OURS).replace("@builtin@", BUILTIN)


def test_the_file_of_a_failed_card_is_exactly_the_expected_one():
    # 2026-11-29T05:00:00Z = 1795928400 (date -u -d 2026-11-29T05:00:00Z +%s)
    samples = fa_metrics.verify_samples(False, CARDS, "2026-11-29T05:00:00Z", MANIFEST,
                                        {"state": "files_changed", "detail": "x"}, CHIPS)
    text = fa_metrics.render(samples)
    assert text == EXPECTED
    fams = parse(text)
    assert values(fams, "ascend_fa_card_pass") == {"0": 1.0, "1": 1.0, "3": 0.0}


def test_no_manifest_no_package_metrics_and_unknown_chips_leave_ids_empty():
    fams = parse(fa_metrics.render(fa_metrics.verify_samples(True, CARDS[:1], "not a time", None, None, [])))
    assert "ascend_fa_package_info" not in fams and "ascend_fa_package_drift" not in fams
    assert "ascend_fa_verify_timestamp_seconds" not in fams
    assert fams["ascend_fa_card_pass"]["samples"] == [({"card": "0", "npu_id": "", "chip_id": ""}, 1.0)]
    # a result field that is not a number (a hostile fa_check output) is left out, not written as text
    fams = parse(fa_metrics.render(fa_metrics.verify_samples(
        True, [{"card": 0, "ok": True, "latency_ms": "1; rm", "baseline": {"ran": True, "ratio": True}}],
        None, {"recipe": 'r"\n', "sha256": None}, {"state": "installed"}, CHIPS)))
    assert "ascend_fa_card_latency_seconds" not in fams and "ascend_fa_card_baseline_ratio" not in fams
    assert fams["ascend_fa_package_info"]["samples"] == [(
        {"recipe": 'r"\n', "tag": "", "commit": "", "sha256": "", "vendor": ""}, 1.0)]
    assert fams["ascend_fa_package_drift"]["samples"] == [({"state": "installed"}, 0.0)]


# ------------------------------------------------------------------------------------------- the file on disk
def test_write_is_atomic_temp_name_is_not_prom_and_file_is_0644(tmp_path, monkeypatch):
    d = tmp_path / "textfile_collector"
    d.mkdir()
    target = d / fa_metrics.FILE_NAME
    target.write_text("old complete file\n")
    seen = {}
    real_replace = os.replace

    def spy(src, dst):
        # the moment of the rename: the old file is still whole, the new content is complete in a temp file of the
        # same folder that node_exporter's *.prom glob does not match
        seen.update(src=Path(src), dst=Path(dst), old=target.read_text(), new=Path(src).read_text(),
                    mode=stat.S_IMODE(os.stat(src).st_mode), listing=sorted(p.name for p in d.iterdir()))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    old_umask = os.umask(0o077)
    try:
        path = fa_metrics.write_textfile(str(d), "a_b 1\n")
    finally:
        os.umask(old_umask)
    assert path == str(target) and target.read_text() == "a_b 1\n"
    assert seen["src"].parent == d and seen["dst"] == target
    assert not seen["src"].name.endswith(".prom") and not Path(d / seen["src"].name).match("*.prom")
    assert seen["old"] == "old complete file\n" and seen["new"] == "a_b 1\n" and seen["mode"] == 0o644
    assert [n for n in seen["listing"] if n.endswith(".prom")] == [fa_metrics.FILE_NAME]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in d.iterdir()) == [fa_metrics.FILE_NAME]      # no temp left


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    d = tmp_path / "tc"
    d.mkdir()
    (d / fa_metrics.FILE_NAME).write_text("old\n")

    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="No space left"):
        fa_metrics.write_textfile(str(d), "new\n")
    assert (d / fa_metrics.FILE_NAME).read_text() == "old\n"
    assert [p.name for p in d.iterdir()] == [fa_metrics.FILE_NAME]


def test_missing_folders_are_created_0755_and_an_existing_one_is_left_alone(tmp_path):
    site = tmp_path / "site"
    site.mkdir(mode=0o750)
    os.chmod(site, 0o750)
    target = site / "node_exporter" / "textfile_collector"
    old_umask = os.umask(0o077)
    try:
        fa_metrics.write_textfile(str(target), "a_b 1\n")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o755
    assert stat.S_IMODE(site.stat().st_mode) == 0o750                          # the site's own folder: untouched
    for bad in ("relative/dir", ""):
        with pytest.raises(ValueError):
            fa_metrics.write_textfile(bad, "a_b 1\n")
    with pytest.raises(ValueError):
        fa_metrics.write_textfile(str(target), "a_b 1\n", name="../x.prom")


def test_a_symlink_planted_at_a_temp_name_is_not_followed(tmp_path):
    d = tmp_path / "tc"
    d.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    for i in range(50):   # guessable names (the README's <name>.prom.$$) would be followed; mkstemp's are not
        (d / f"{fa_metrics.FILE_NAME}.{os.getpid() + i}").symlink_to(victim)
    fa_metrics.write_textfile(str(d), "a_b 1\n")
    assert victim.read_text() == "keep\n"
    assert (d / fa_metrics.FILE_NAME).read_text() == "a_b 1\n" and not (d / fa_metrics.FILE_NAME).is_symlink()


# ------------------------------------------------------------------------------------------- the module
@pytest.fixture
def fake_kernels(tmp_path):
    d = tmp_path / "kernels"
    d.mkdir()
    (d / "fa_check.py").write_text(FAKE_CHECK)
    return d


def _installed(tmp_path, recipe="ops-transformer-v9.0.1") -> Path:
    """A state folder with an install manifest whose vendor tree exists and matches (drift state installed)."""
    state = tmp_path / "state"
    vendor = tmp_path / "vendors" / "ascendfa_transformer"
    (vendor / "op_api" / "lib").mkdir(parents=True)
    (vendor / "op_api" / "lib" / "libcust_opapi.so").write_bytes(b"\x7fELF fake")
    state.mkdir()
    (state / "manifest.json").write_text(json.dumps({
        "recipe": recipe, "tag": "v9.0.1", "commit": "c" * 40, "sha256": "a" * 64, "vendor": "ascendfa",
        "vendor_dir": str(vendor), "tree_sha256": tree_digest(str(vendor)), "kernels": False}))
    return state


def test_module_writes_the_metrics_after_a_pass_and_after_a_failing_card(tmp_path, fake_kernels):
    state = _installed(tmp_path)
    metrics = tmp_path / "var" / "lib" / "node_exporter" / "textfile_collector"
    args = {"kernels_dir": str(fake_kernels), "npu_count": 2, "python": sys.executable, "state_dir": str(state),
            "metrics_dir": str(metrics), "chips": CHIPS[:2], "env_host": "atlas-01"}
    res = run_module(tmp_path, args)
    assert res["ok"] is True and res["changed"] is False and res["metrics_file"] == str(metrics / "ascend_fa.prom")
    fams = parse((metrics / "ascend_fa.prom").read_text())
    assert values(fams, "ascend_fa_card_pass") == {"0": 1.0, "1": 1.0}
    assert values(fams, "ascend_fa_card_latency_seconds") == {"0": 0.002, "1": 0.003}   # FAKE_CHECK: 2.0 + card ms
    assert fams["ascend_fa_verify_ok"]["samples"] == [({}, 1.0)]
    assert fams["ascend_fa_verify_timestamp_seconds"]["samples"][0][1] == fa_metrics.epoch_seconds(res["checked_at"])
    assert fams["ascend_fa_package_info"]["samples"] == [({"recipe": "ops-transformer-v9.0.1", "tag": "v9.0.1",
                                                           "commit": "c" * 40, "sha256": "a" * 64,
                                                           "vendor": "ascendfa"}, 1.0)]
    assert fams["ascend_fa_package_drift"]["samples"] == [({"state": "installed"}, 0.0)]
    assert stat.S_IMODE(metrics.stat().st_mode) == 0o755

    # card 1 fails and the tree drifted: the module fails the host and the file says both
    lib = tmp_path / "vendors" / "ascendfa_transformer" / "op_api" / "lib" / "libcust_opapi.so"
    lib.write_bytes(b"\x7fELF edited")
    res = run_module(tmp_path, args, env={"FAIL_CARDS": "1"})
    assert res["failed"] is True and res["failed_cards"] == [1]
    fams = parse((metrics / "ascend_fa.prom").read_text())
    assert values(fams, "ascend_fa_card_pass") == {"0": 1.0, "1": 0.0}
    assert fams["ascend_fa_verify_ok"]["samples"] == [({}, 0.0)]
    assert fams["ascend_fa_package_drift"]["samples"] == [({"state": "files_changed"}, 1.0)]
    assert sorted(p.name for p in metrics.iterdir()) == ["ascend_fa.prom"]


def test_module_check_mode_and_no_metrics_dir_write_nothing(tmp_path, fake_kernels):
    metrics = tmp_path / "metrics"
    args = {"kernels_dir": str(fake_kernels), "npu_count": 1, "python": sys.executable, "metrics_dir": str(metrics)}
    res = run_module(tmp_path, args, check_mode=True)
    assert not res.get("failed") and not metrics.exists()
    res = run_module(tmp_path, {k: v for k, v in args.items() if k != "metrics_dir"})
    assert res["ok"] is True and res["metrics_file"] is None and not metrics.exists()


def test_module_a_verification_that_cannot_start_is_a_failed_metric(tmp_path, fake_kernels):
    metrics = tmp_path / "metrics"
    res = run_module(tmp_path, {"kernels_dir": str(fake_kernels), "npu_count": 2, "python": sys.executable,
                                "set_env": ["/nonexistent/set_env.sh"], "metrics_dir": str(metrics)})
    assert res["failed"] is True and "set_env script not found" in res["msg"]
    fams = parse((metrics / "ascend_fa.prom").read_text())
    assert fams["ascend_fa_verify_ok"]["samples"] == [({}, 0.0)] and "ascend_fa_card_pass" not in fams


def test_module_an_unwritable_metrics_dir_is_a_warning_not_a_failed_verification(tmp_path, fake_kernels):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the folder should be\n")
    res = run_module(tmp_path, {"kernels_dir": str(fake_kernels), "npu_count": 1, "python": sys.executable,
                                "metrics_dir": str(blocker / "tc"), "env_host": "atlas-07"})
    assert res["ok"] is True and not res.get("failed") and res["metrics_file"] is None
    warning = next(w for w in warnings_of(res) if "Prometheus" in w)
    assert warning.startswith("atlas-07: cannot write the Prometheus metrics") and str(blocker / "tc") in warning
    assert "Fix: set fa_verify_metrics_dir" in warning


def test_epoch_seconds():
    assert fa_metrics.epoch_seconds("1970-01-01T00:00:10Z") == 10
    assert fa_metrics.epoch_seconds(None) is None and fa_metrics.epoch_seconds("2026-13-01T00:00:00Z") is None
    assert not math.isnan(fa_metrics.epoch_seconds("2026-11-29T05:00:00Z"))


# ------------------------------------------------------------------------------------------- the docs
def test_the_documented_alert_rules_are_well_formed_and_name_real_metrics_and_labels():
    """docs/prometheus.md's rule file, as `promtool check rules` would read its structure (promtool is not here):
    groups -> name, rules -> alert, expr, for (a duration), labels, annotations; every metric an expression uses is
    one fa_metrics writes (or node_exporter's own) and every $labels.x an annotation uses is a label of it."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "prometheus.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert len(blocks) == 1
    doc = yaml.safe_load(blocks[0])
    assert set(doc) == {"groups"} and len(doc["groups"]) == 1
    group = doc["groups"][0]
    assert set(group) == {"name", "rules"} and group["name"]
    labels_of = {name: set() for name in fa_metrics.FAMILIES}
    for name, rows in fa_metrics.verify_samples(False, CARDS, "2026-11-29T05:00:00Z", MANIFEST,
                                                {"state": "files_changed"}, CHIPS).items():
        for lab, _v in rows:
            labels_of[name] |= set(lab)
    labels_of["node_textfile_scrape_error"] = set()
    scraped = {"instance", "job"}
    alerts = set()
    for rule in group["rules"]:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"]) and rule["alert"] not in alerts
        alerts.add(rule["alert"])
        assert re.fullmatch(r"\d+[smhdwy]", rule["for"]), rule["for"]
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert set(rule["annotations"]) == {"summary", "description"}
        used = set(re.findall(r"\b(?:ascend_fa|node_textfile)_[a-z_]+\b", rule["expr"]))
        assert used and used <= set(labels_of), (rule["expr"], used)
        for ann in rule["annotations"].values():
            assert ann.count("{{") == ann.count("}}")
            for label in re.findall(r"\$labels\.([a-zA-Z_]+)", ann):
                assert any(label in labels_of[m] for m in used) or label in scraped, (rule["alert"], label)
    assert {"AscendFACardFailed", "AscendFAPackageDrift", "AscendFAVerificationStale"} <= alerts
    # every metric the code writes is documented, with its labels
    for name, labels in labels_of.items():
        if name.startswith("ascend_fa_"):
            row = next(ln for ln in text.splitlines() if ln.startswith(f"| `{name}` |"))
            for label in labels:
                assert f"`{label}`" in row, (name, label)
