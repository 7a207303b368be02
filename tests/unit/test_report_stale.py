"""The report after an upgrade: a verification result belongs to the package it verified.

On the report fixtures (tests/data/report/: every host on ops-transformer-v9.0.1 installed 2026-11-29T04:30Z and
verified at 05:00Z), an upgrade to v9.0.2 happens afterwards, and the verification of v9.0.1 is still the newest
``verify/<host>.json`` (the upgrade was interrupted during verification, or the report is read before it ran). The
report must show the host's current package, and the old pass as "not verified since install", not as the state.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.plugin_utils import report
from harness.browser import parse_dom

DATA = Path(__file__).resolve().parents[1] / "data" / "report"
OLD, OLD_SHA = "ops-transformer-v9.0.1", "0" * 64          # what the fixtures hold
NEW, NEW_SHA = "ops-transformer-v9.0.2", "2" * 64
VERIFIED_AT = "2026-11-29T05:00:00Z"                         # the fixtures' verify/<host>.json


@pytest.fixture
def data(tmp_path) -> Path:
    d = tmp_path / "report"
    shutil.copytree(DATA, d)
    (d / "results" / "upgrade").mkdir()
    return d


def _edit_facts(d: Path, host: str, **ascend) -> None:
    """Change the ascend facts of ``host`` in the fact cache (through Ansible's cache plugin, as a run would)."""
    cache = report.fact_cache(d / "facts")
    facts = dict(cache.get(host))
    facts["ascend"] = {**facts["ascend"], **ascend}
    cache.set(host, facts)


def _upgrade_record(d: Path, host: str, result: str = "upgraded", started: str = "2026-12-01T10:00:00Z") -> None:
    (d / "results" / "upgrade" / f"{host}.json").write_text(json.dumps({
        "host": host, "from": OLD, "from_sha256": OLD_SHA, "to": NEW, "to_sha256": NEW_SHA, "result": result,
        "failure": "verification interrupted" if result == "failed" else "", "started": started,
        "finished": "2026-12-01T10:05:00Z"}))


def _new_package(installed_at: str = "2026-12-01T10:02:00Z") -> dict:
    return {"recipe": NEW, "sha256": NEW_SHA, "build_key": "cd", "installed_at": installed_at}


def _hosts(d: Path) -> dict[str, report.HostReport]:
    return {h.host: h for h in report.build_report(d / "facts", d / "results").hosts}


def test_fixtures_before_the_upgrade_are_current(data):
    h = _hosts(data)["atlas-a3-001"]
    assert (h.status, h.verify_state, h.verify_package, h.verify_ok) == ("ok", "current", OLD, True)
    assert all(c.verify == "pass" for c in h.cards)


def test_refreshed_facts_on_the_new_package_make_the_old_pass_stale(data):
    """Facts read after the upgrade (v9.0.2 installed 2026-12-01) and the verification of v9.0.1 (2026-11-29)."""
    _edit_facts(data, "atlas-a3-001", fa_package=_new_package())
    _upgrade_record(data, "atlas-a3-001")
    h = _hosts(data)["atlas-a3-001"]
    assert h.versions["package"] == NEW and h.package_sha256 == NEW_SHA and h.package_source == "facts"
    assert h.verify_state == "stale" and h.verify_package == OLD       # the record says what v9.0.1 -> v9.0.2 was
    assert h.status == "unverified" and h.verify_ok is None and h.checked_at is None
    assert [c.verify for c in h.cards] == ["none"] * 16 and {c.status for c in h.cards} == {"unverified"}
    assert h.stale_verify == {"ok": True, "summary": "all 16 cards passed FlashAttention", "checked_at": VERIFIED_AT,
                              "package": OLD}
    note = report.host_note(h)
    assert note.startswith(f"not verified since install: {NEW} installed 2026-12-01T10:02:00Z; ")
    assert f"the last verification (pass, {VERIFIED_AT}) was of {OLD}" in note


def test_upgrade_record_newer_than_the_cached_facts_shows_the_new_package(data):
    """Facts cached before the upgrade (v9.0.1, probed 2026-11-29), the upgrade record says v9.0.2 since 2026-12-01."""
    _upgrade_record(data, "atlas-a3-001")
    rep = report.build_report(data / "facts", data / "results")
    h = {x.host: x for x in rep.hosts}["atlas-a3-001"]
    assert h.versions["package"] == NEW and h.package_sha256 == NEW_SHA and h.package_source == "upgrade record"
    assert "upgraded ops-transformer-v9.0.2 at 2026-12-01T10:05:00Z (upgrade record)" in h.package_note
    assert h.verify_state == "stale" and h.verify_package == OLD and h.status == "unverified"
    # the fleet summary no longer counts the 16 old passes
    assert rep.summary()["cards_passed"] == 31 - 16 and rep.summary()["hosts_ok"] == 0
    # the page tells it: the package with its origin, "not verified since install", the old result with its package
    dom = parse_dom(report.render_html(rep))
    row = dom.text[dom.text.index("Versions per host"):]
    assert NEW in row and "(upgrade record)" in row and "not verified since install" in row
    assert f"last: pass of {OLD} at {VERIFIED_AT}" in row
    assert "atlas-a3-001" in dom.text[dom.text.index("Needs attention"):dom.text.index("Versions per host")]


def test_upgrade_record_older_than_the_facts_changes_nothing(data):
    """A record of an earlier rollout that the facts already show (the package was installed during it)."""
    _upgrade_record(data, "atlas-a3-001", started="2026-11-29T04:00:00Z")      # before installed_at 04:30
    h = _hosts(data)["atlas-a3-001"]
    assert h.versions["package"] == OLD and h.package_source == "facts" and h.verify_state == "current"


def test_failed_rollout_after_the_facts_is_a_note(data):
    _upgrade_record(data, "atlas-a3-001", result="failed")
    h = _hosts(data)["atlas-a3-001"]
    assert h.versions["package"] == OLD and "rollout to ops-transformer-v9.0.2 failed" in h.package_note


def test_verification_after_the_install_is_current(data):
    _edit_facts(data, "atlas-a3-001", fa_package=_new_package(installed_at="2026-11-29T04:45:00Z"))
    h = _hosts(data)["atlas-a3-001"]
    assert (h.status, h.verify_state, h.verify_package) == ("ok", "current", NEW)


def test_a_result_that_names_its_package_is_compared_by_sha256(data):
    """fa_verify results that carry the package (``package: {recipe, sha256}``): no clock needed."""
    _edit_facts(data, "atlas-a3-001", fa_package={**_new_package(), "installed_at": None})
    path = data / "results" / "verify" / "atlas-a3-001.json"
    result = json.loads(path.read_text())
    path.write_text(json.dumps({**result, "package": {"recipe": OLD, "sha256": OLD_SHA}}))
    h = _hosts(data)["atlas-a3-001"]
    assert (h.verify_state, h.verify_package, h.status) == ("stale", OLD, "unverified")
    path.write_text(json.dumps({**result, "package": {"recipe": NEW, "sha256": NEW_SHA}}))
    h = _hosts(data)["atlas-a3-001"]
    assert (h.verify_state, h.verify_package, h.status) == ("current", NEW, "ok")


def test_a_stale_failure_does_not_fail_the_host(data):
    """atlas-a2-002's card 5 failed on v9.0.1; after the upgrade that failure is not the state of v9.0.2 either."""
    _edit_facts(data, "atlas-a2-002", fa_package=_new_package())
    h = _hosts(data)["atlas-a2-002"]
    assert h.verify_state == "stale" and h.stale_verify["ok"] is False
    assert h.cards[5].verify == "none" and h.status == "warn"          # card 3's health warning still counts


def test_no_package_now(data):
    _edit_facts(data, "atlas-a3-001", fa_package=None, fa_package_state="absent")
    h = _hosts(data)["atlas-a3-001"]
    assert h.verify_state == "stale" and "no package installed now" in report.host_note(h)


def test_rolled_back_in_this_run_names_the_package_that_failed(data):
    """The run installed v9.0.2, its verification failed (12:00), the rollout put v9.0.1 back (12:01): the failure
    is v9.0.2's, shown as such; the host is not taken as verified on v9.0.1 either."""
    _upgrade_record(data, "atlas-a3-001", result="rolled_back", started="2026-12-03T11:55:00Z")
    path = data / "results" / "verify" / "atlas-a3-001.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "ok": False, "checked_at": "2026-12-03T12:00:00Z",
                                "summary": "16 of 16 cards failed FlashAttention"}))
    run_facts = {"atlas-a3-001": {"fa_installed": {"recipe": OLD, "sha256": OLD_SHA,
                                                   "installed_at": "2026-12-03T12:01:00Z"},
                                  "fa_rollout_result": "rolled_back"}}
    rep = report.build_report(data / "facts", data / "results", run={"atlas-a3-001": {"state": "failed",
                                                                                      "message": "rolled back"}},
                              run_facts=run_facts)
    h = {x.host: x for x in rep.hosts}["atlas-a3-001"]
    assert h.package_source == "this run" and h.versions["package"] == OLD
    assert (h.verify_state, h.verify_package, h.stale_verify["ok"]) == ("stale", NEW, False)
    assert h.status == "fail" and h.change == "rolled_back"          # the run's failure still fails it
