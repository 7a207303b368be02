"""The fleet report escapes everything that came from hosts, results and error texts.

Every field that reaches the page (host names, versions, chips, health, verification messages, card reasons,
preflight problems and fixes, facts errors, package recipes and sha256, upgrade records, bench values and errors,
the title) carries a payload that would run a script in each HTML context: text, double- and single-quoted
attributes, SVG. The page is opened in headless Chromium (tests/harness/browser.py) and the DOM *after* scripts ran
must hold no injected element, no event handler, no javascript: URL, the original title, and every payload as
plain text. The same checks run on the page as written (no browser needed), and the terminal summary must pass no
control sequence or rich markup from the same data.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.plugin_utils import report
from harness.browser import Dom, parse_dom

PWN = "document.title='pwned'"
MARK = "document.documentElement.dataset.pwned=1"
PAYLOAD = (f"<script>{PWN}</script><img src=x onerror=\"{MARK};{PWN}\">\"><svg onload=\"{PWN}\">"
           f"'><a href=\"javascript:{PWN}\">j</a></title><b>&lt;b&gt; {{{{7*7}}}}")
# "/" cannot be in a file name: the host that names a result file gets a payload without one
SLASHLESS = f"<img src=x onerror=\"{MARK};{PWN}\">\"><svg onload=\"{PWN}\">'><iframe srcdoc=\"<script>x\">"
TITLE = "fleet report " + PAYLOAD


def evil(name: str) -> str:
    return f"[{name}]{PAYLOAD}"


def safe_evil(name: str) -> str:
    return f"[{name}]{SLASHLESS}"


HOST_RUN = evil("host-run")            # run failed: its message is the note; all version fields, chips, problems
HOST_VERIFY = evil("host-verify")      # verification failed: the summary is the note
HOST_CARD = safe_evil("host-card")     # a card failed: its reason is the note (also names a bench file: no slash)
HOST_BLOCK = evil("host-block")        # a blocking preflight problem is the note
HOST_STALE = evil("host-stale")        # verification of an earlier package: the stale note
HOST_ROLL = evil("host-roll")          # the upgrade record is newer than the facts: the package note

VERSION_KEYS = ("soc_version", "chip_name", "driver_version", "firmware_version", "cann_version", "cann_layout",
                "torch_version", "torch_npu_version", "python_version", "arch", "fa_package_state", "fa_package_detail")


def _ascend(host: str, sick_card: bool = True, **extra) -> dict:
    return {**{k: evil(f"{host}:{k}") for k in VERSION_KEYS}, "device_count": 4,
            "chips": [{"npu_id": evil(f"{host}:npu_id"), "chip_id": evil(f"{host}:chip_id"), "name": evil(f"{host}:name"),
                       "health": evil(f"{host}:health") if sick_card and i == 1 else "OK", "logic_id": evil("logic"),
                       "hbm_used_mb": 1} for i in range(4)],
            "fa_package": {"recipe": evil(f"{host}:recipe"), "sha256": evil(f"{host}:sha256"),
                           "build_key": evil(f"{host}:build_key"), "installed_at": "2026-11-29T04:30:00Z"},
            "fa_supported": False, "fa_supported_reason": evil(f"{host}:supported_reason"),
            "errors": [{"source": evil(f"{host}:err_source"), "reason": evil(f"{host}:err_reason")}], **extra}


def _cards(latencies, reason_host: str | None = None, fail: int | None = None):
    return [{"card": i, "ok": i != fail, "latency_ms": lat, "max_abs_err": 0.001,
             "reason": evil(f"{reason_host}:card_reason") if reason_host and i == fail else None,
             # which library served the card and the baseline against CANN's kernel: host data like the rest
             "served_by": {"library": evil(f"{reason_host}:served_library"), "vendor": evil(f"{reason_host}:vendor"),
                           "source": ["vendor", "custom_path", "builtin", evil("source")][i % 4], "ok": i != fail},
             "baseline": {"latency_ms": lat, "ratio": evil("ratio") if i == 1 else 1.25, "max_diff": 0.001}}
            for i, lat in enumerate(latencies)]


def build_hostile(tmp: Path) -> report.FleetReport:
    facts, results = tmp / "facts", tmp / "results"
    for sub in ("verify", "bench", "upgrade"):
        (results / sub).mkdir(parents=True)
    facts.mkdir()
    problems = [{"severity": "warning", "code": "x", "what": evil("p-what"), "found": evil("p-found"),
                 "needed": evil("p-needed"), "fix": evil("p-fix")}]
    run_facts = {
        HOST_RUN: {"ascend": _ascend("run"), "fa_problems": problems, "fa_blocking": [],
                   "fa_build_key": evil("run:fa_build_key"), "fa_rollout_result": evil("run:rollout_result")},
        HOST_VERIFY: {"ascend": _ascend("verify", fa_package={"recipe": "r1", "sha256": "a" * 64,
                                                              "installed_at": "2026-11-29T04:30:00Z"})},
        HOST_CARD: {"ascend": _ascend("card", fa_package={"recipe": "r1", "sha256": "a" * 64,
                                                          "installed_at": "2026-11-29T04:30:00Z"})},
        HOST_BLOCK: {"ascend": _ascend("block", sick_card=False), "fa_blocking": [{"severity": "error", "what": evil("b-what"),
                                                                 "found": evil("b-found"), "needed": evil("b-needed")}]},
        HOST_STALE: {"ascend": _ascend("stale", fa_package={"recipe": evil("stale:new_recipe"), "sha256": "b" * 64,
                                                            "installed_at": "2026-12-01T10:00:00Z"})},
        HOST_ROLL: {"ascend": {**_ascend("roll"), "npu_probed_at": "2026-11-29T04:00:00Z"}},
    }
    verify = {
        "v1": {"host": HOST_RUN, "ok": True, "summary": evil("run:summary"), "checked_at": "2026-11-29T05:00:00Z",
               "cards": _cards([1.0, 1.0, 1.0, 9.0])},                                  # card 3: a latency outlier
        "v2": {"host": HOST_VERIFY, "ok": False, "summary": evil("verify:summary"), "checked_at": "2026-11-29T05:00:00Z",
               "cards": _cards([1.0, 1.1, 1.0, 1.0], fail=2)},
        "v3": {"host": HOST_CARD, "ok": True, "summary": "", "checked_at": "2026-11-29T05:00:00Z",
               "cards": _cards([1.0, 1.1, 1.0, 1.0], reason_host="card", fail=0)},
        "v4": {"host": HOST_STALE, "ok": True, "summary": "ok", "checked_at": "2026-11-30T05:00:00Z",
               "package": {"recipe": evil("stale:old_recipe"), "sha256": "c" * 64}, "cards": _cards([1.0] * 4)},
    }
    for name, data in verify.items():
        (results / "verify" / f"{name}.json").write_text(json.dumps(data))
    (results / "upgrade" / "u.json").write_text(json.dumps({
        "host": HOST_ROLL, "from": evil("roll:from"), "from_sha256": evil("roll:from_sha"), "to": evil("roll:to"),
        "to_sha256": evil("roll:to_sha"), "result": "upgraded", "failure": "", "started": "2026-12-02T10:00:00Z",
        "finished": evil("roll:finished")}))
    bench = {"mode": "grid", "device_name": evil("bench:device"), "dtype": evil("bench:dtype"), "results": [
        {"batch": evil("bench:batch"), "seq": evil("bench:seq"), "heads": evil("bench:heads"),
         "head_dim": evil("bench:head_dim"), "dtype": evil("bench:row_dtype"),
         "standard": {"ok": False, "oom": False, "error": evil("bench:std_error")},
         "flash": {"ok": True, "latency_ms": 1.0}, "speedup": evil("bench:speedup"), "mem_ratio": "NaN"},
        {"batch": 1, "seq": 128, "heads": 4, "head_dim": 64, "standard": {"ok": True, "latency_ms": 2.0},
         "flash": {"ok": True, "latency_ms": 1.0}, "speedup": 2.0},
        {"batch": 2, "seq": 256, "heads": 4, "head_dim": 64, "standard": {"ok": False, "oom": True},
         "flash": {"ok": False, "oom": False, "error": evil("bench:flash_error")}}]}
    (results / "bench" / f"{HOST_CARD}.json").write_text(json.dumps(bench))
    run = {h: {"state": "ok", "message": None} for h in run_facts}
    run[HOST_RUN] = {"state": "failed", "message": evil("run:message")}
    return report.build_report(facts, results, run=run, run_facts=run_facts, title=TITLE)


# every field with the place it must show up as text (attr: only in a tooltip, also safe text)
FIELDS_IN_TEXT = (
    [HOST_RUN, HOST_VERIFY, HOST_CARD, HOST_BLOCK, HOST_STALE, HOST_ROLL, TITLE]
    + [evil(f"run:{k}") for k in VERSION_KEYS if k not in ("fa_package_detail",)]
    + [evil(x) for x in ("run:message", "run:recipe", "run:build_key", "run:rollout_result", "run:supported_reason",
                         "run:err_source", "run:err_reason", "run:health", "p-what", "p-found", "p-needed", "p-fix",
                         "verify:summary", "card:card_reason", "b-what", "stale:new_recipe",
                         "stale:old_recipe", "roll:to", "roll:finished", "bench:device", "bench:batch", "bench:seq",
                         "bench:heads", "bench:head_dim", "bench:row_dtype", "bench:std_error", "bench:flash_error")]
)
# the card tooltip; the package tooltip; the end of a long note (the page shows 400 characters, the tooltip all)
FIELDS_IN_ATTR = [evil(x) for x in ("run:npu_id", "run:chip_id", "run:sha256", "b-found", "b-needed")]


def _assert_nothing_injected(dom: Dom, report_: report.FleetReport) -> None:
    injected = [e.tag for e in dom.elements if e.tag in ("script", "img", "iframe", "a", "object", "embed", "marquee")]
    assert not injected, f"elements from host data in the page: {injected}"
    assert not dom.event_handlers(), dom.event_handlers()[:5]
    assert not dom.script_urls(), dom.script_urls()[:5]
    assert len(dom.find("svg")) == 1                                    # the chart only
    assert not any("data-pwned" in e.attrs for e in dom.elements)
    assert dom.title == f"{TITLE} - {report_.generated_at}"


def _assert_visible_as_text(dom: Dom) -> None:
    text, attrs = dom.text, "\n".join(dom.attr_values())
    missing = [f for f in FIELDS_IN_TEXT if f not in text]
    assert not missing, f"not shown as text: {[m[:30] for m in missing]}"
    missing = [f for f in FIELDS_IN_ATTR if f not in attrs]
    assert not missing, f"not in the tooltips: {[m[:30] for m in missing]}"
    assert "&lt;b&gt;" in text and "{{7*7}}" in text          # shown as written: not decoded, not evaluated


@pytest.fixture
def hostile(tmp_path) -> report.FleetReport:
    return build_hostile(tmp_path)


def test_the_hostile_report_has_every_kind_of_row(hostile):
    hosts = {h.host: h for h in hostile.hosts}
    assert len(hosts) == 6 and hostile.outliers and hostile.bench
    assert hosts[HOST_STALE].verify_state == "stale" and hosts[HOST_ROLL].package_source == "upgrade record"
    assert report.host_note(hosts[HOST_CARD]).startswith("card 0: [card:card_reason]")


def test_page_as_written_escapes_everything(hostile, tmp_path):
    page = report.render_html(hostile)
    dom = parse_dom(page)
    _assert_nothing_injected(dom, hostile)
    _assert_visible_as_text(dom)
    assert "<script" not in page and "<img" not in page and "<svg onload" not in page and "<iframe" not in page


def test_chart_takes_only_numbers(hostile):
    plot = report.bench_plot(hostile.bench)
    assert [g["label"] for g in plot["groups"]] == ["b1 s128", "b2 s256"]           # the hostile row is left out
    assert all(isinstance(b[k], float | int) for b in plot["bars"] for k in ("x", "y", "w", "h"))
    assert report.bench_plot([{"batch": "1", "seq": 2}]) is None and report.bench_plot([]) is None
    with pytest.raises(TypeError):
        report._px("1\" onload=\"x")


def test_page_in_headless_chromium_runs_no_injected_script(hostile, tmp_path, browser):
    page = report.write_html(hostile, tmp_path / "hostile.html")
    shown = browser.render(page, screenshot="hostile-report.png")
    _assert_nothing_injected(shown.dom, hostile)
    _assert_visible_as_text(shown.dom)
    assert shown.screenshot is not None and shown.screenshot.stat().st_size > 10_000


def test_the_harness_sees_an_injection(tmp_path, browser):
    """The browser checks can fail: a page that does run the payload is caught by each of them."""
    page = tmp_path / "injected.html"
    page.write_text(f"<!DOCTYPE html><html><head><title>orig</title></head><body><p>x</p>{PAYLOAD}</body></html>")
    dom = browser.dump_dom(page)
    assert dom.title == "pwned" and dom.find("script") and dom.find("img") and dom.event_handlers()
    assert any(e.attrs.get("data-pwned") == "1" for e in dom.find("html"))
    assert dom.script_urls()


def test_no_escape_hatch_in_the_template_or_the_renderer():
    root = Path(report.__file__).resolve().parent
    tpl = (report.DATA / report.TEMPLATE).read_text()
    assert report._env().autoescape is True
    assert not re.search(r"\|\s*safe\b|autoescape\s+false|Markup", tpl)
    assert not re.search(r"=\s*\{[{%]", tpl)                      # every attribute value is quoted
    assert "Markup(" not in (root / "report.py").read_text()


# ------------------------------------------------------------------------------------------------ terminal
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def test_terminal_summary_passes_no_control_sequence_or_markup(tmp_path):
    esc = "\x1b]0;pwned\x07\x1b[2J\x1b[31m[link=https://evil.example]x[/link][bold]y\r\x9b1A"
    rep = report.FleetReport(generated_at="t", facts_dir=None, results_dir=None, hosts=[], title="t")
    for i, (h, facts) in enumerate([(f"h{esc}", {"ascend": {"soc_version": f"s{esc}", "cann_version": f"c{esc}",
                                                            "driver_version": f"d{esc}",
                                                            "fa_package": {"recipe": f"r{esc}"}, "device_count": 1}}),
                                    ("plain", {"ascend": {"device_count": 1}})]):
        verify = {"ok": False, "summary": f"summary{esc}", "cards": [{"card": 0, "ok": i == 1, "reason": f"why{esc}"}]}
        rep.hosts.append(report.build_host(h, facts, verify, {"state": "failed", "message": f"msg{esc}"}))
    for h in rep.hosts:
        h.status = report.host_status(h)
    from rich.console import Console

    buf = io.StringIO()
    report.print_terminal(rep, Console(file=buf, width=300, color_system="truecolor", force_terminal=True))
    out = re.sub(r"\x1b\[[0-9;]*m", "", buf.getvalue())       # rich's own colours are fine: remove them only
    assert not CONTROL.search(out.replace("\n", "")), repr(out)[:600]
    assert "pwned" not in out                                   # the OSC payload went with its escape
    assert "[link=https://evil.example]x[/link][bold]y" in out  # markup shown as text, not made a link
    assert "msg[link=" in out


def test_live_progress_passes_no_control_sequence_from_host_output():
    """The per-host progress (ascend_fa/progress.py) prints failure messages from hosts: stripped as well."""
    from ascend_fa.progress import PlainRenderer, ProgressModel

    data = Path(__file__).resolve().parents[1] / "data" / "runner_events" / "tiny_pipeline.jsonl"
    events = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
    esc = "\x1b]0;pwned\x07\x1b[2J\x1b[1A\x1b[2Kforged ok\r\x9b1m"
    failed = next(e for e in events if e["event"] == "runner_on_failed" and not e["event_data"].get("ignore_errors"))
    failed["event_data"]["res"] = {"msg": f"boom{esc}", "stderr": f"line1\n{esc}last"}
    buf = io.StringIO()
    renderer = PlainRenderer(ProgressModel(), buf)
    for e in events:
        renderer.on_event(e)
    renderer.finish()
    out = buf.getvalue()
    assert "boom" in out and "forged ok" in out
    assert not CONTROL.search(out.replace("\n", "")) and "pwned" not in out, repr(out)[-600:]
