"""The report an operator reads at a glance (issue #22 item 4), on the fixtures of tests/data/report/.

What is checked: the run header, failures first, the fix beside its problem, the filter (CSS radio inputs, no
script in the page), differences highlighted only for versions that must agree within a SoC family (never the CANN
layout), card health as npu-smi gave it, the "since last run" column against the previous report.json, a converged
rerun ("nothing to install: N hosts converged", each host's package still shown), and in headless Chromium at
1400x900 that no table overflows the window (a copy of the page with a measuring script appended: the page itself
has none) with a screenshot of the real page kept in the test's output folder.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.plugin_utils import report
from harness.browser import parse_dom

DATA = Path(__file__).resolve().parents[1] / "data" / "report"
FACTS, RESULTS = DATA / "facts", DATA / "results"
RUN = {"atlas-310p-001": {"state": "failed", "message": "Stop this host when its stack cannot run FlashAttention"},
       "atlas-a2-001": {"state": "ok", "message": None}, "atlas-a2-002": {"state": "ok", "message": None},
       "atlas-a3-001": {"state": "ok", "message": None}}
HEADER = {"playbook": "deploy_fa.yml", "recipe": "ops-transformer-v9.0.1", "tag": "v9.0.1",
          "commit": "8038339a99bae113a7ae07f4547306d6d15bbddf", "limit": "atlas*", "tags": ["install", "verify"],
          "skip_tags": None, "check": False, "started": "2026-11-29T05:00:00Z", "finished": "2026-11-29T05:12:30Z",
          "duration_s": 750, "runner": "ansible-playbook"}
FIX_310P = "remove this host from the ascend group"       # tests/data/report/facts/s1_atlas-310p-001, fa_problems


def _results(tmp_path: Path) -> Path:
    d = tmp_path / "results"
    shutil.copytree(RESULTS, d)
    return d


@pytest.fixture
def rep() -> report.FleetReport:
    return report.build_report(FACTS, RESULTS, run=RUN, header=HEADER, since_last=False)


def _terminal(r: report.FleetReport) -> str:
    from rich.console import Console

    buf = io.StringIO()
    report.print_terminal(r, Console(file=buf, width=260, color_system=None))
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ order, header, fix
def test_failures_first_then_warnings_then_ok(rep):
    assert [h.host for h in report.ordered(rep.hosts)] == ["atlas-310p-001", "atlas-a2-002", "atlas-a2-001",
                                                           "atlas-a3-001"]
    assert [h.host for h in rep.hosts] == sorted(h.host for h in rep.hosts)   # report.json keeps the name order
    rows = [line.split("│")[1].strip() for line in _terminal(rep).splitlines() if line.startswith("│")]
    assert rows == ["atlas-310p-001", "atlas-a2-002", "atlas-a2-001", "atlas-a3-001"]
    dom = parse_dom(report.render_html(rep))
    grid = [e.attrs["data-host"] for e in dom.find("tr") if "data-host" in e.attrs]
    assert grid[:4] == ["atlas-310p-001", "atlas-a2-002", "atlas-a2-001", "atlas-a3-001"]


def test_header_shown_in_page_and_terminal(rep):
    page = report.render_html(rep)
    dom = parse_dom(page)
    shown = {e.attrs["data-key"] for e in dom.find("dd")}
    assert shown == {k for k, v in HEADER.items() if v is not None}
    for text in ("deploy_fa.yml", "8038339a99bae113a7ae07f4547306d6d15bbddf", "install, verify", "12m 30s", "atlas*"):
        assert text in dom.text
    out = _terminal(rep)
    assert "playbook deploy_fa.yml" in out and "duration 12m 30s" in out and "check mode no" in out
    bare = report.render_html(report.build_report(FACTS, RESULTS, since_last=False))
    assert "no run header" in bare


def test_fix_is_next_to_its_problem(rep):
    dom = parse_dom(report.render_html(rep))
    # the problem's line holds its fix: one <li> with severity, what, found and the fix in its own span
    page = report.render_html(rep)
    item = re.search(r"<li><span class=\"sev error\">error</span> SoC: ascend310p3 \(needs [^<]*\) "
                     r"<span class=\"fix\"><b>fix:</b> ([^<]*)</span></li>", page)
    assert item and item.group(1) == FIX_310P, page[page.find("Needs attention"):][:1500]
    assert FIX_310P in dom.text
    assert f"[error] SoC: ascend310p3 (needs ascend910b, ascend910_93, ascend950) -> fix: {FIX_310P}" in _terminal(rep)


# ------------------------------------------------------------------------------------------------ differences
def test_layout_is_never_highlighted_but_a_cann_version_is(tmp_path):
    facts = {h: dict(f) for h, f in report.load_facts(FACTS).items()}
    a2 = facts["atlas-a2-001"]["ascend"]
    run_facts = {
        "atlas-a2-001": {"ascend": {**a2, "cann_layout": "toolkit"}},                    # same CANN, other layout
        "atlas-a2-002": {"ascend": {**facts["atlas-a2-002"]["ascend"], "firmware_version": "7.9.9"}},
        "a2-extra": {"ascend": {**a2, "cann_version": "8.3.RC1", "python_version": "3.10.1"}},
        "a2-extra2": {"ascend": dict(a2)},
    }
    r = report.build_report(FACTS, tmp_path / "none", run_facts=run_facts, since_last=False)
    diff = report.differing(r.hosts)
    assert not any(d.get("cann_layout") for d in diff.values())
    assert not diff["atlas-a2-001"].get("cann") and diff["a2-extra"]["cann"] is True
    assert not diff["atlas-a2-002"].get("firmware") and not diff["a2-extra"].get("python")
    page = report.render_html(r)
    assert "layout toolkit" in page and "layout cann" in page
    dom = parse_dom(page)
    assert sum(1 for e in dom.find("td") if "differs" in e.attrs.get("class", "")) == sum(
        1 for d in diff.values() for v in d.values() if v)


# ------------------------------------------------------------------------------------------------ card health
def test_card_health_shows_what_npu_smi_gave(rep, tmp_path):
    card = {h.host: h for h in rep.hosts}["atlas-a2-001"].cards[0]
    # tests/data/report/facts/s1_atlas-a2-001: chips[0] hbm 3380/65536, no temperature or power in those facts
    assert (card.hbm_used_mb, card.hbm_total_mb, card.hbm_pct) == (3380, 65536, 5.2)
    assert card.health_text() == "HBM 3380/65536 MB (5.2%)" and card.temp_c is None and card.power_w is None
    # chips that carry temperature and power (npu-smi info's Power(W) / Temp(C)): shown; "NA" is not a number
    a2 = report.load_facts(FACTS)["atlas-a2-001"]["ascend"]
    chips = [{**c, "temp_c": 44, "power_w": 94.8} for c in a2["chips"]]
    chips[1] = {**chips[1], "power_w": "NA", "hbm_used_mb": None, "hbm_total_mb": None}
    r = report.build_report(FACTS, tmp_path / "none", hosts=["atlas-a2-001"],
                            run_facts={"atlas-a2-001": {"ascend": {**a2, "chips": chips}}}, since_last=False)
    c0, c1 = r.hosts[0].cards[:2]
    assert c0.health_text() == "HBM 3380/65536 MB (5.2%), 44 C, 94.8 W" and c1.health_text() == "44 C"
    dom = parse_dom(report.render_html(r))
    rows = [e for e in dom.find("tr") if e.attrs.get("data-health")]
    assert [e.attrs["data-health"] for e in rows] == [f"atlas-a2-001:{i}" for i in range(8)]
    assert "ECC counters are not read" in dom.text


# ------------------------------------------------------------------------------------------------ since last run
def test_since_last_run_reads_the_previous_report_json(tmp_path):
    results = _results(tmp_path)
    first = report.build_report(FACTS, results, run=RUN)
    assert first.previous_at is None and {h.since_state for h in first.hosts} == {"none"}
    report.write_json(first, results / "report.json")
    # the next run: card 5 of atlas-a2-002 passes now, card 2 of atlas-a3-001 fails, a3's package was rebuilt
    verify = json.loads((results / "verify" / "atlas-a2-002.json").read_text())
    verify["cards"][5] = {**verify["cards"][5], "ok": True, "latency_ms": 0.42, "reason": None}
    verify["ok"] = True
    (results / "verify" / "atlas-a2-002.json").write_text(json.dumps(verify))
    verify = json.loads((results / "verify" / "atlas-a3-001.json").read_text())
    verify["cards"][2] = {**verify["cards"][2], "ok": False, "reason": "max_abs_err 0.3 > 0.01"}
    verify["ok"] = False
    (results / "verify" / "atlas-a3-001.json").write_text(json.dumps(verify))
    second = report.build_report(FACTS, results, hosts=["atlas-a2-001", "atlas-a2-002", "atlas-a3-001", "new-host"],
                                 run=RUN)
    since = {h.host: h.since for h in second.hosts}
    assert second.previous_at == first.generated_at and second.gone == ["atlas-310p-001"]
    assert since["atlas-a2-001"] == [] and {h.host: h.since_state for h in second.hosts}["atlas-a2-001"] == "same"
    assert "card 5 passing again" in since["atlas-a2-002"] and "status fail -> warn" in since["atlas-a2-002"]
    assert since["atlas-a3-001"] == ["status ok -> fail", "card 2 newly failing"]
    assert since["new-host"] == ["new host"]
    assert second.summary()["hosts_changed_since_last"] == 3
    page = report.render_html(second)
    assert "card 2 newly failing" in page and "in the previous report, not in this one: atlas-310p-001" in page
    assert "card 2 newly failing" in _terminal(second)


def test_since_last_run_names_a_package_change():
    before = report.HostReport("n1", status="ok", versions={"package": "r1"}, package_sha256="a" * 64)
    now = report.HostReport("n1", status="ok", versions={"package": "r2"}, package_sha256="b" * 64)
    assert report.since_last(now, before) == ["package r1 -> r2"]
    same_name = report.HostReport("n1", status="ok", versions={"package": "r1"}, package_sha256="b" * 64)
    assert report.since_last(same_name, before) == ["package r1 -> r1 (new sha256)"]


def test_a_broken_previous_report_is_no_previous_report(tmp_path):
    results = _results(tmp_path)
    (results / "report.json").write_text("{not json")
    assert report.build_report(FACTS, results).previous_at is None
    (results / "report.json").write_text(json.dumps({"hosts": [{"host": 1}]}))
    assert report.build_report(FACTS, results).previous_at is None


# ------------------------------------------------------------------------------------------------ a converged rerun
def _installed_then_cached_before(tmp_path: Path) -> tuple[Path, Path]:
    """The fact cache as a deploy leaves it (measured on the simulated fleet, ~/.cache/ascend-fa/facts after an
    install): ``ascend`` was read by preflight BEFORE the install (fa_package null, state absent), and the rerun's
    fast path reads nothing new. Verify results name the package they checked, after those facts."""
    facts = tmp_path / "facts"
    cache = report.fact_cache(facts)
    for host, data in report.load_facts(FACTS).items():
        if host == "atlas-310p-001":
            continue
        cache.set(host, {**data, "ascend": {**data["ascend"], "fa_package": None, "fa_package_state": "absent",
                                            "npu_probed_at": "2026-11-29T04:10:00Z"}})
    results = _results(tmp_path)
    for f in (results / "verify").glob("*.json"):
        v = json.loads(f.read_text())
        v["package"] = {"recipe": "ops-transformer-v9.0.1", "sha256": "0" * 64}
        f.write_text(json.dumps(v))
    return facts, results


def test_converged_rerun_says_nothing_to_install_and_keeps_each_package(tmp_path):
    facts, results = _installed_then_cached_before(tmp_path)
    run = {h: {"state": "ok", "message": None} for h in ("atlas-a2-001", "atlas-a2-002", "atlas-a3-001")}
    r = report.build_report(facts, results, hosts=list(run), run=run, header=HEADER)
    pkgs = {h.host: (h.versions["package"], h.package_source, h.verify_state) for h in r.hosts}
    assert pkgs == {h: ("ops-transformer-v9.0.1", "verification record", "current") for h in run}
    # atlas-a2-002 has a failed card: it is not converged, so the fleet line does not claim it
    assert r.converged_line() is None and r.summary()["hosts_converged"] == 2
    fixed = dict(run)
    r2 = report.build_report(facts, results, hosts=["atlas-a2-001", "atlas-a3-001"], run=fixed, header=HEADER)
    assert r2.converged_line() == "nothing to install: 2 hosts converged"
    assert r2.summary_line().startswith("nothing to install: 2 hosts converged | 2 hosts: ")
    assert r2.as_dict()["converged"] == "nothing to install: 2 hosts converged"
    page = report.render_html(r2)
    assert 'id="converged">nothing to install: 2 hosts converged<' in page
    out = _terminal(r2)
    assert "nothing to install: 2 hosts converged" in out and out.count("ops-transformer-v9.0.1") >= 2
    # a verify run is not "nothing to install", and neither is a run that changed a host
    assert report.build_report(facts, results, hosts=["atlas-a3-001"], run=fixed,
                               header={**HEADER, "playbook": "playbooks/verify.yml"}).converged_line() is None
    changed = {**fixed, "atlas-a3-001": {"state": "changed", "message": None}}
    assert report.build_report(facts, results, hosts=["atlas-a2-001", "atlas-a3-001"], run=changed,
                               header=HEADER).converged_line() is None


def test_package_from_the_previous_report_when_no_record_is_newer(tmp_path):
    facts, results = _installed_then_cached_before(tmp_path)
    shutil.rmtree(results / "verify")
    before = report.HostReport("atlas-a3-001", status="ok", versions={"package": "ops-transformer-v9.0.1",
                                                                      "build_key": "9f8e7d6c5b4a3921"},
                               package_sha256="0" * 64)
    prev = report.FleetReport(generated_at="2026-11-29T05:20:00Z", facts_dir=None, results_dir=None, hosts=[before])
    h = report.build_report(facts, results, hosts=["atlas-a3-001"], previous=prev).hosts[0]
    assert (h.versions["package"], h.package_source, h.package_sha256) == ("ops-transformer-v9.0.1", "previous report",
                                                                           "0" * 64)
    # a previous report older than the cached facts says nothing about now: the facts stand
    old = report.FleetReport(generated_at="2026-11-29T04:00:00Z", facts_dir=None, results_dir=None, hosts=[before])
    h = report.build_report(facts, results, hosts=["atlas-a3-001"], previous=old).hosts[0]
    assert (h.versions["package"], h.package_source) == ("-", "facts")


# ------------------------------------------------------------------------------------------------ the filter
def test_filter_is_css_only(rep):
    page = report.render_html(rep)
    dom = parse_dom(page)
    radios = [e.attrs["id"] for e in dom.find("input") if e.attrs.get("type") == "radio"]
    assert radios == ["show-all", "show-attention", "show-fail", "show-changed"]
    assert [e.attrs["for"] for e in dom.find("label")] == radios
    assert "<script" not in page
    for rule in ("#show-fail:checked ~ .page .h:not(.s-fail) { display: none; }",
                 "#show-attention:checked ~ .page .h.s-ok { display: none; }",
                 "#show-changed:checked ~ .page .h:not(.c-changed):not(.c-new) { display: none; }"):
        assert rule in page
    rows = [e for e in dom.find("tr") if "h" in e.attrs.get("class", "").split()]
    assert {e.attrs["class"].split()[1] for e in rows} == {"s-fail", "s-warn", "s-ok"}


# ------------------------------------------------------------------------------------------------ 1400 px in Chromium
MEASURE = """<script>
(function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  var de = document.documentElement, out = ["document " + de.scrollWidth + " " + de.clientWidth];
  document.querySelectorAll("table").forEach(function (t, i) {
    var box = t.closest(".scroll") || t.parentElement, r = t.getBoundingClientRect();
    out.push("table " + (t.id || ("#" + i)) + " " + Math.ceil(r.right) + " " + de.clientWidth + " "
             + box.scrollWidth + " " + box.clientWidth);
  });
  var pre = document.createElement("pre");
  pre.id = "measure";
  pre.textContent = out.join("\\n");
  document.body.appendChild(pre);
})();
</script>"""


def _wide_fleet(tmp_path: Path) -> report.FleetReport:
    """The fixtures plus 8-card A2 hosts with long version strings, long host names and long problems."""
    a2 = report.load_facts(FACTS)["atlas-a2-001"]["ascend"]
    long = "-rc3.b050.20261129-with-a-very-long-site-specific-build-suffix"
    run_facts = {}
    for i in range(4):
        name = f"atlas-a2-rack{i:02d}-node{i:03d}.cluster-with-a-long-domain.example.org"
        run_facts[name] = {
            "ascend": {**a2, "driver_version": f"25.5.0{long}", "firmware_version": f"7.8.0.2.212{long}",
                       "cann_version": f"8.5.0{long}", "torch_version": f"2.9.0+cpu{long}",
                       "torch_npu_version": f"2.9.0.post1{long}", "python_version": "3.11.2",
                       "fa_package": {**a2["fa_package"], "recipe": f"ops-transformer-v9.0.1{long}",
                                      "build_key": "ab12cd34ef56ab78" * 4}},
            "fa_problems": [{"severity": "warning", "what": "driver", "found": f"25.5.0{long}", "needed": ">= 25.5.0",
                             "fix": "upgrade the driver with Ascend-hdk-910b-npu-driver_25.5.0_linux-x86-64.run " * 3}]}
    hosts = [*sorted(run_facts), "atlas-310p-001", "atlas-a2-001", "atlas-a2-002", "atlas-a3-001"]
    run = {**RUN, **{h: {"state": "ok", "message": None} for h in run_facts}}
    return report.build_report(FACTS, _results(tmp_path), hosts=hosts, run=run, run_facts=run_facts, header=HEADER,
                               since_last=False)


def test_page_fits_1400px_in_headless_chromium(tmp_path, browser):
    rep = _wide_fleet(tmp_path)
    page = report.write_html(rep, tmp_path / "report.html")
    assert "<script" not in page.read_text()                     # the page has no script: only the copy measures
    shown = browser.render(page, screenshot="report-1400.png")
    assert shown.screenshot.stat().st_size > 20_000
    png = shown.screenshot.read_bytes()                          # PNG IHDR: width, height (big-endian) at 16..24
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (1400, 900)
    measured = tmp_path / "measured.html"
    measured.write_text(page.read_text().replace("</body>", MEASURE + "\n</body>"))
    # --dump-dom at the screenshot's window size (the harness's dump_dom leaves Chromium's default window)
    out = browser._run("--window-size=1400,900", "--virtual-time-budget=3000", "--dump-dom", measured.resolve().as_uri())
    dom = parse_dom(out.stdout)
    text = re.search(r'<pre id="measure">(.*?)</pre>', out.stdout, re.S)
    assert text, out.stdout[-2000:]
    lines = text.group(1).strip().splitlines()
    doc = lines[0].split()
    assert doc[0] == "document" and int(doc[1]) <= int(doc[2]) <= 1400, lines
    tables = {parts[1]: [int(x) for x in parts[2:]] for parts in (line.split() for line in lines[1:])}
    assert {"grid", "versions", "health", "bench"} <= set(tables), tables
    for name, (right, viewport, scroll_w, client_w) in tables.items():
        assert right <= viewport, f"table {name} ends at {right}px, past the {viewport}px window"
        assert scroll_w <= client_w, f"table {name} scrolls sideways in its box: {scroll_w} > {client_w}"
    assert "nothing to install" not in dom.text


def test_report_reads_at_a_glance_in_headless_chromium(rep, tmp_path, browser):
    """Failures first, header, fix beside the problem, filter controls: in the DOM Chromium built."""
    shown = browser.render(report.write_html(rep, tmp_path / "report.html"), screenshot="report-glance.png")
    dom = shown.dom
    order = [e.attrs["data-host"] for e in dom.find("tr") if e.attrs.get("data-host")][:4]
    assert order == ["atlas-310p-001", "atlas-a2-002", "atlas-a2-001", "atlas-a3-001"]
    assert {e.attrs["data-key"] for e in dom.find("dd")} >= {"playbook", "recipe", "commit", "duration_s"}
    assert FIX_310P in dom.text and len([e for e in dom.find("input") if e.attrs.get("type") == "radio"]) == 4
    assert not dom.find("script")


def _drained(tmp_path, drain):
    facts = {"ascend": {"fa_package": None}, "fa_drain": drain}
    return report.build_report(None, tmp_path, hosts=["n1"], run={"n1": {"state": "ok", "message": None}},
                               run_facts={"n1": facts})


def test_a_node_drained_by_someone_else_is_reported_with_its_reason(tmp_path):
    rep = _drained(tmp_path, {"kind": "slurm", "state_before": "IDLE+DRAIN", "reason_before": "bad DIMM",
                              "drained_by_us": False, "undrained": False, "kept_drained_reason": "bad DIMM"})
    (h,) = rep.hosts
    assert "bad DIMM" in report.drain_note(h) and "someone else" in report.drain_note(h)
    assert "bad DIMM" in report.render_html(rep)
    assert report.load_json(report.write_json(rep, tmp_path / "r.json")).hosts[0].drain["kept_drained_reason"] == "bad DIMM"


def test_our_drain_lifted_says_nothing_and_one_left_says_why(tmp_path):
    ours = {"kind": "kubernetes", "state_before": "schedulable", "reason_before": None, "drained_by_us": True,
            "kept_drained_reason": None}
    assert report.drain_note(_drained(tmp_path, {**ours, "undrained": True}).hosts[0]) is None
    left = report.drain_note(_drained(tmp_path, {**ours, "undrained": False}).hosts[0])
    assert left and "still drained by ascend-fa" in left


def test_an_acknowledged_error_is_marked_so_not_raised(tmp_path):
    """fa_preflight_ignore: preflight's verdict (fa_blocking) leaves the error out; the report says 'acknowledged'."""
    mismatch = {"code": "torch_torch_npu_mismatch", "severity": "error", "what": "torch 2.13.0 does not match torch_npu",
                "found": "2.13.0", "needed": "2.9.0", "fix": "pip install torch==2.9.0"}
    facts = {"ascend": {"fa_package": None}, "fa_problems": [mismatch], "fa_blocking": []}
    rep = report.build_report(None, tmp_path, hosts=["n1"], run={"n1": {"state": "ok", "message": None}},
                              run_facts={"n1": facts})
    (p,) = report.host_problems(rep.hosts[0])
    assert p["acknowledged"] is True and report.problem_line(p).startswith("[error, acknowledged]")
    assert ">acknowledged</span>" in report.render_html(rep)
    facts["fa_blocking"] = [mismatch]      # not ignored: blocking, no mark
    rep = report.build_report(None, tmp_path, hosts=["n1"], run_facts={"n1": facts})
    assert "acknowledged" not in report.host_problems(rep.hosts[0])[0]


def test_the_terminal_sums_acknowledged_errors_up_in_one_line(tmp_path):
    import io

    from rich.console import Console

    mismatch = {"code": "torch_torch_npu_mismatch", "severity": "error", "what": "torch does not match torch_npu",
                "found": "2.13.0", "needed": "2.9.0", "fix": "pip install torch==2.9.0"}
    facts = {"ascend": {"fa_package": None}, "fa_problems": [mismatch], "fa_blocking": []}
    rep = report.build_report(None, tmp_path, hosts=["n1", "n2"], run_facts={"n1": facts, "n2": facts})
    out = io.StringIO()
    report.print_terminal(rep, Console(file=out, width=200))
    text = out.getvalue()
    assert "acknowledged (fa_preflight_ignore), not blocking: torch_torch_npu_mismatch on 2 host(s): n1, n2" in text
    assert "pip install torch==2.9.0" not in text


def test_facts_dir_with_a_tilde_is_read_as_ansible_does(tmp_path, monkeypatch):
    """The callback passes ansible's raw fact_caching_connection (~/.cache/ascend-fa/facts): expanded as the cache
    plugin expands it, else a converged rerun (no facts in its events) shows '-' for every version."""
    import shutil

    src = Path(__file__).resolve().parents[1] / "data" / "report"
    facts = next((p for p in src.rglob("*") if p.is_dir() and p.name == "facts"), None)
    if facts is None:
        pytest.skip("no fact cache fixture")
    home = tmp_path / "home"
    shutil.copytree(facts, home / ".cache" / "facts")
    monkeypatch.setenv("HOME", str(home))
    assert report.load_facts("~/.cache/facts") == report.load_facts(home / ".cache" / "facts") != {}


def test_cards_without_health_readings_are_not_counted_unhealthy(tmp_path):
    rep = report.build_report(None, tmp_path, hosts=["n1"], run_facts={"n1": {"ascend": {
        "fa_package": None, "npu_count": 2, "chips": [{"npu_id": 0, "chip_id": 0}, {"npu_id": 1, "chip_id": 0}]}}})
    assert rep.summary()["cards_unhealthy"] == 0
