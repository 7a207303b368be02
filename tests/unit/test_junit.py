"""JUnit XML of a run (plugins/plugin_utils/junit.py): the shape Jenkins' JUnit plugin and GitLab read, parsed back
with xml.etree; hostile host text round-trips as text, never as markup or an unparsable document."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ansible_collections.ascend.fa.plugins.plugin_utils import junit, report

DATA = Path(__file__).resolve().parents[1] / "data" / "report"
HOSTILE = "<b>x</b> ]]> & \"q\" 'a' \x00\x07\x1b[31mred\x1b[0m\x1b]0;title\x07 \ud800 \ufffe end"


def _parse(data: bytes) -> ET.Element:
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.fromstring(data)


def test_shape_and_counts():
    suites = [junit.Suite("h1", [junit.Case("h1.phase", "fa_preflight", 1.5),
                                 junit.Case("h1.phase", "fa_verify", 2.0, failure="card 3: wrong"),
                                 junit.Case("h1.cards", "card 0", 0.0004, skipped="not verified")]),
              junit.Suite("h2", [junit.Case("h2.phase", "run", error="unreachable", kind="unreachable")])]
    root = _parse(junit.to_xml(suites, "deploy"))
    assert root.tag == "testsuites" and root.get("name") == "deploy"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("4", "1", "1", "1")
    h1, h2 = root.findall("testsuite")
    assert (h1.get("name"), h1.get("tests"), h1.get("failures"), h1.get("skipped"), h1.get("time")) == (
        "h1", "3", "1", "1", "3.500")
    cases = h1.findall("testcase")
    assert [c.get("name") for c in cases] == ["fa_preflight", "fa_verify", "card 0"]
    assert cases[1].find("failure").get("message") == "card 3: wrong" and cases[1].find("failure").text == "card 3: wrong"
    assert cases[2].find("skipped") is not None and cases[2].get("time") == "0.000"
    assert h2.find("testcase/error").get("type") == "unreachable"
    for el in root.iter("testcase"):
        assert set(el.attrib) == {"classname", "name", "time"} and len(list(el)) <= 2


def test_hostile_text_round_trips_as_text():
    case = junit.Case(f"{HOSTILE}.phase", HOSTILE, failure=HOSTILE, out=HOSTILE)
    data = junit.to_xml([junit.Suite(HOSTILE, [case])], HOSTILE)
    root = _parse(data)                 # parses: no control character, no lone surrogate, no raw markup
    expected = "<b>x</b> ]]> & \"q\" 'a' red   end"   # the title sequence, surrogate, U+FFFE: gone
    tc = root.find("testsuite/testcase")
    assert tc.get("name") == expected and root.find("testsuite").get("name") == expected
    assert tc.find("failure").text == expected and tc.find("system-out").text == expected
    assert b"<b>" not in data and b"\x1b" not in data and b"\x00" not in data


def test_long_text_is_bounded():
    case = junit.Case("h.phase", "fa_build", failure="x" * 100000)
    fail = _parse(junit.to_xml([junit.Suite("h", [case])])).find("testsuite/testcase/failure")
    assert len(fail.text) == junit.MAX_TEXT and len(fail.get("message")) <= 400


def test_suites_from_a_report_have_phases_then_cards():
    run = {"atlas-a2-002": {"state": "failed", "message": "Verify on every card: 1 of 8 cards failed"},
           "atlas-310p-001": {"state": "unreachable", "message": "Gather: ssh: connection refused"}}
    rep = report.build_report(DATA / "facts", DATA / "results", hosts=["atlas-a2-002", "atlas-310p-001"], run=run)
    phases = {"atlas-a2-002": {"fa_preflight": {"state": "ok", "seconds": 2.0},
                               "fa_verify": {"state": "failed", "message": run["atlas-a2-002"]["message"], "seconds": 30.0}}}
    root = _parse(junit.to_xml(junit.suites(rep.hosts, phases)))
    a2, p310 = root.findall("testsuite")
    names = [(c.get("classname"), c.get("name")) for c in a2.findall("testcase")]
    assert names[:2] == [("atlas-a2-002.phase", "fa_preflight"), ("atlas-a2-002.phase", "fa_verify")]
    assert names[2:] == [("atlas-a2-002.cards", f"card {i}") for i in range(8)]
    # tests/data/report/results/verify/atlas-a2-002.json: card 5 timed out, the others passed in ~0.43 ms
    card5 = a2.findall("testcase")[2 + 5]
    assert card5.find("failure").text == "timeout after 300s"
    assert float(a2.findall("testcase")[2].get("time")) == 0.0   # 0.43 ms, shown with 3 decimals
    assert a2.get("failures") == "2"
    # no phase recorded for the unreachable host: one 'run' case carries its error
    run_case = p310.find("testcase[@name='run']")
    assert run_case.find("error").text == "Gather: ssh: connection refused"
