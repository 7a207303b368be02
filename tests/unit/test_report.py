"""The fleet report (plugins/plugin_utils/report.py) on fixtures shaped like docs/contracts.md (tests/data/report/).

Fixtures: atlas-a2-001 (8 cards pass, card 6 slow: a latency outlier), atlas-a2-002 (card 3 health Warning, card 5
verification timeout, other torch_npu), atlas-a3-001 (A3: 8 NPUs x 2 chips = 16 devices, all pass),
atlas-310p-001 (310P: FA unsupported, preflight problem, no verification). Facts come as ansible-core 2.19
``s1_<host>`` payload files and as one plain older-style file; bench JSON for two hosts (one standard OOM).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.plugin_utils import report

from ascend_fa import cli

DATA = Path(__file__).resolve().parents[1] / "data" / "report"
FACTS, RESULTS = DATA / "facts", DATA / "results"
HOSTS = ["atlas-310p-001", "atlas-a2-001", "atlas-a2-002", "atlas-a3-001"]
RUN = {"atlas-310p-001": {"state": "failed", "message": "Stop this host when its stack cannot run FlashAttention"},
       "atlas-a2-001": {"state": "ok", "message": None}}


@pytest.fixture(scope="module")
def rep() -> report.FleetReport:
    return report.build_report(FACTS, RESULTS, run=RUN)


def by_host(r: report.FleetReport) -> dict[str, report.HostReport]:
    return {h.host: h for h in r.hosts}


# ------------------------------------------------------------------------------------------------ loading
def test_load_facts_reads_the_cache_through_ansibles_plugin():
    facts = report.load_facts(FACTS)
    assert sorted(facts) == HOSTS
    assert facts["atlas-a2-001"]["ascend"]["soc_version"] == "ascend910b3"
    assert facts["atlas-a2-001"]["fa_build_key"] == "ab12cd34ef56ab78"       # a cached set_fact
    assert facts["atlas-a2-002"]["ascend"]["torch_npu_version"] == "2.8.0"
    assert report.load_facts(DATA / "nothing-here") == {}


def test_facts_written_by_ansible_come_back_as_plain_data(tmp_path):
    """What the jsonfile plugin writes is read back as plain data; the file format is the plugin's: the report never
    parses it (tests/unit/test_cli_runner.py reads what a real ansible-playbook run cached, tagged values included)."""
    cache = report.fact_cache(tmp_path)
    cache.set("n1", {"ascend": {"cann_version": "9.0.1", "npu_count": 8}})
    assert report.load_facts(tmp_path) == {"n1": {"ascend": {"cann_version": "9.0.1", "npu_count": 8}}}
    assert type(report.load_facts(tmp_path)["n1"]["ascend"]["cann_version"]) is str


def test_an_unreadable_cache_entry_is_left_out(tmp_path):
    report.fact_cache(tmp_path).set("n1", {"ascend": {"cann_version": "9.0.1"}})
    (tmp_path / "s1_broken").write_text("{not json")
    assert report.load_facts(tmp_path) == {"n1": {"ascend": {"cann_version": "9.0.1"}}}


# ------------------------------------------------------------------------------------------------ model
def test_hosts_and_cards(rep):
    hosts = by_host(rep)
    assert list(hosts) == HOSTS
    assert [len(hosts[h].cards) for h in HOSTS] == [2, 8, 8, 16]
    assert rep.max_cards == 16
    a3 = hosts["atlas-a3-001"]
    assert [(c.card, c.npu_id, c.chip_id) for c in a3.cards[:3]] == [(0, 0, 0), (1, 0, 1), (2, 1, 0)]
    assert all(c.verify == "pass" and c.status == "ok" for c in a3.cards)


def test_card_status_from_health_and_verification(rep):
    a2 = by_host(rep)["atlas-a2-002"]
    assert a2.cards[5].verify == "fail" and a2.cards[5].status == "fail" and a2.cards[5].reason == "timeout after 300s"
    assert a2.cards[3].health == "Warning" and a2.cards[3].status == "warn"
    assert a2.status == "fail" and a2.verify_ok is False
    p310 = by_host(rep)["atlas-310p-001"]
    assert [c.status for c in p310.cards] == ["unverified", "unverified"]
    assert p310.status == "fail" and p310.run_state == "failed"      # the run stopped it
    assert p310.problems[0]["code"] == "soc_unsupported"


def test_host_status_without_a_run():
    r = report.build_report(FACTS, RESULTS)
    st = {h.host: h.status for h in r.hosts}
    # the 310P host: preflight's blocking problem fails it even without the run's outcome
    assert st == {"atlas-310p-001": "fail", "atlas-a2-001": "warn", "atlas-a2-002": "fail", "atlas-a3-001": "ok"}
    assert report.host_note(by_host(r)["atlas-310p-001"]).startswith("[error] SoC: ascend310p3")


def test_latency_outlier_is_flagged_against_its_soc_group(rep):
    assert [(o["host"], o["card"]) for o in rep.outliers] == [("atlas-a2-001", 6)]
    o = rep.outliers[0]
    assert o["group"] == "ascend910b3" and o["ratio"] > 1.5 and o["median_ms"] == pytest.approx(0.425, abs=0.01)
    card = by_host(rep)["atlas-a2-001"].cards[6]
    assert card.outlier and card.status == "warn"
    assert by_host(rep)["atlas-a2-001"].status == "warn"


def test_outliers_need_enough_peers():
    h = report.HostReport("n1", cards=[report.Card(0, latency_ms=1.0), report.Card(1, latency_ms=9.0)])
    assert report.flag_outliers([h]) == []
    h.cards.append(report.Card(2, latency_ms=1.1))
    assert [o["card"] for o in report.flag_outliers([h])] == [1]


def test_versions_and_differences(rep):
    hosts = by_host(rep)
    v = hosts["atlas-a2-001"].versions
    assert v["chips"] == "910B3 x8" and v["cann"] == "8.5.0" and v["cann_layout"] == "cann"
    assert v["package"] == "ops-transformer-v9.0.1" and v["build_key"] == "ab12cd34ef56ab78"
    diff = report.differing(rep.hosts)
    # the two A2 hosts tie on torch_npu (2.9.0 / 2.8.0): the fleet's majority (2.9.0) breaks the tie
    assert diff["atlas-a2-002"]["torch_npu"] is True and diff["atlas-a2-001"]["torch_npu"] is False
    assert not diff["atlas-310p-001"].get("cann")                 # alone in its SoC family: nothing to agree with
    assert not diff["atlas-a3-001"].get("soc") and not diff["atlas-a3-001"].get("build_key")   # its own SoC group


def test_summary(rep):
    s = rep.summary()
    assert s == {"hosts": 4, "hosts_ok": 1, "hosts_warn": 1, "hosts_failed": 2, "hosts_unverified": 0, "cards": 34,
                 "cards_passed": 31, "cards_failed": 1, "cards_unverified": 2, "cards_unhealthy": 1, "outliers": 1,
                 "hosts_converged": 1, "hosts_changed_since_last": 0}
    assert rep.summary_line().startswith("4 hosts: 1 ok, 1 warning, 2 failed")


def test_bench_rows(rep):
    assert len(rep.bench) == 8
    oom = [r for r in rep.bench if r["standard_oom"]]
    assert [(r["host"], r["batch"], r["seq"]) for r in oom] == [("atlas-a3-001", 2, 256)]
    assert oom[0]["standard_ms"] is None and oom[0]["flash_ms"] > 0


def test_only_requested_hosts(tmp_path):
    r = report.build_report(FACTS, RESULTS, hosts=["atlas-a3-001", "not-cached"])
    assert [h.host for h in r.hosts] == ["atlas-a3-001", "not-cached"]
    assert r.hosts[1].status == "unknown" and report.host_note(r.hosts[1]) == "no facts cached for this host"
    assert {b["host"] for b in r.bench} == {"atlas-a3-001"}


def test_json_is_complete_and_serialisable(rep, tmp_path):
    p = report.write_json(rep, tmp_path / "r.json")
    data = json.loads(p.read_text())
    assert data["summary"]["cards"] == 34
    assert [h["host"] for h in data["hosts"]] == HOSTS
    assert data["hosts"][2]["cards"][5]["verify"] == "fail"


# ------------------------------------------------------------------------------------------------ rendering
def test_terminal_table_lists_every_host(rep):
    from rich.console import Console

    buf = io.StringIO()
    report.print_terminal(rep, Console(file=buf, width=200, color_system=None))
    text = buf.getvalue()
    for h in HOSTS:
        assert h in text
    assert "16/16" in text and "7/8" in text
    assert "fail atlas-a2-002: 1 of 8 cards failed FlashAttention (card 5)" in text
    assert "outlier: atlas-a2-001 card 6" in text


def test_html_is_self_contained_and_has_every_card(rep):
    page = report.render_html(rep)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)   # nothing fetched from anywhere
    assert "<script" not in page and "<link" not in page
    for h in rep.hosts:
        for c in h.cards:
            assert f'data-card="{h.host}:{c.card}"' in page
    assert "<svg" in page and "OOM" in page
    assert "atlas-a2-001 card 6" in page      # the outlier card's tooltip


def test_html_escapes_host_data(tmp_path):
    d = tmp_path / "facts"
    d.mkdir()
    (d / "s1_<b>evil").write_text(json.dumps({"__payload__": json.dumps({"ascend": {"cann_version": "<i>x</i>"}})}))
    page = report.render_html(report.build_report(d, tmp_path / "none"))
    assert "<b>evil" not in page and "&lt;b&gt;evil" in page and "<i>x</i>" not in page


def test_bench_plot_is_none_without_rows(rep):
    assert report.bench_plot([]) is None
    plot = report.bench_plot(rep.bench)
    assert [g["label"] for g in plot["groups"]] == ["b1 s128", "b1 s256", "b2 s128", "b2 s256"]
    # b2 s256: standard attention ran out of memory on the A3, so its bar is the A2's 7.2 ms alone (the tallest)
    assert len(plot["bars"]) == 8 and not plot["oom"]
    tallest = max(plot["bars"], key=lambda b: b["h"])
    assert tallest["title"] == "standard attention b=2 s=256: 7.2 ms"
    medians = {b["title"].split(":")[0]: float(b["title"].split(": ")[1][:-3]) for b in plot["bars"]}
    assert medians["FlashAttention b=1 s=128"] == pytest.approx((0.35 + 0.28) / 2)


def test_cli_report_writes_html_and_json(tmp_path, capsys):
    html_path, json_path = tmp_path / "r.html", tmp_path / "r.json"
    code = cli.main(["report", "--facts", str(FACTS), "--results", str(RESULTS), "--html", str(html_path),
                     "--json", str(json_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "atlas-a3-001" in out and f"report: {html_path}" in out
    assert html_path.read_text().startswith("<!DOCTYPE html>") and json.loads(json_path.read_text())["hosts"]
    assert cli.main(["report", "--facts", str(FACTS), "--results", str(RESULTS), "--strict"]) == 2
    capsys.readouterr()
    assert cli.main(["report", "--facts", str(FACTS), "--results", str(RESULTS), "--hosts", "atlas-a3-001",
                     "--json", "-"]) == 0
    assert [h["host"] for h in json.loads(capsys.readouterr().out)["hosts"]] == ["atlas-a3-001"]
    assert cli.main(["report", "--facts", str(tmp_path / "empty"), "--results", str(tmp_path / "empty")]) == 1


# ------------------------------------------------------------------------------------------------ a real browser
def test_html_renders_in_headless_chromium(rep, tmp_path, browser):
    """The page in headless Chromium (tests/harness/browser.py); the screenshot stays in the test's output folder."""
    shown = browser.render(report.write_html(rep, tmp_path / "report.html"), screenshot="report.png")
    assert shown.screenshot.stat().st_size > 20_000
    dom = shown.dom
    assert [t.attrs.get("id") for t in dom.find("table")][:1] == ["grid"] and len(dom.find("svg")) == 1
    cards = {e.attrs["data-card"] for e in dom.elements if "data-card" in e.attrs}
    assert cards == {f"{h.host}:{c.card}" for h in rep.hosts for c in h.cards}
    for h in rep.hosts:
        assert h.host in dom.text


def test_run_facts_override_the_cache():
    cached = report.load_facts(FACTS)["atlas-310p-001"]
    merged = report.merge_run_facts(cached, {"fa_installed": {"recipe": "r9", "build_key": "bk"},
                                             "fa_rollout_result": "installed", "fa_blocking": []})
    h = report.build_host("atlas-310p-001", merged, None, {"state": "changed"})
    assert (h.package_state, h.versions["package"], h.versions["build_key"]) == ("installed", "r9", "bk")
    assert h.change == "installed" and h.blocking == [] and h.problems     # problems stay as notes
    removed = report.merge_run_facts(cached, {"fa_installed": None})
    assert removed["ascend"]["fa_package_state"] == "absent"


# ------------------------------------------------------------------------------------------------ header and round trip
HEADER = {"playbook": "deploy_fa.yml", "recipe": "fa-2.3.0", "tag": "v2.3.0", "commit": "96e6a67", "limit": "atlas-a2*",
          "tags": ["install", "verify"], "skip_tags": None, "check": False, "started": "2026-11-29T05:00:00Z",
          "finished": "2026-11-29T05:12:30Z", "duration_s": 750.4, "runner": "ansible-playbook"}


def test_header_is_kept_and_round_trips_through_json(tmp_path):
    """build -> write_json -> load_json -> as_dict is what was built (the CLI prints the report the callback wrote)."""
    built = report.build_report(FACTS, RESULTS, run=RUN, header={**HEADER, "password": "s3cret"})
    assert built.header == HEADER                                      # an unknown key is not carried
    path = report.write_json(built, tmp_path / "report.json")
    loaded = report.load_json(path)
    assert loaded.as_dict() == json.loads(path.read_text())
    assert loaded.as_dict() == json.loads(json.dumps(built.as_dict(), default=str))
    assert isinstance(loaded.hosts[0].cards[0], report.Card) and loaded.summary() == built.summary()
    assert report.render_html(loaded) and "s3cret" not in path.read_text()


def test_no_header_is_none_and_a_foreign_file_is_refused(tmp_path):
    assert report.build_report(FACTS, RESULTS).header is None
    (tmp_path / "x.json").write_text('{"not": "a report"}')
    with pytest.raises(ValueError, match="not an ascend-fa report.json"):
        report.load_json(tmp_path / "x.json")
