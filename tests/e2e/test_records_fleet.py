"""Records from any runner (issue #22 item 1) on a simulated node: a plain ``ansible-playbook deploy_fa.yml`` with the
repo's ansible.cfg leaves report.json, report.html and junit.xml covering exactly the inventory's host, and a job run
through ``ansible_runner.run`` (the Python API AWX uses) publishes the set_stats summary in its playbook_on_stats
event's ``artifact_data``."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.fleet

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fleet(make_fleet):
    return make_fleet("records", octet=110, hosts=1, npus=2)


@pytest.fixture(scope="module")
def deployed(fleet):
    # a host of another (destroyed) fleet left in the controller's fact cache: never part of this run's records
    facts = fleet.dir / "facts"
    facts.mkdir(exist_ok=True)
    (facts / "atlas-gone-009").write_text(json.dumps({"ascend": {"driver_version": "24.1.rc1", "npu_count": 8}}))
    run = fleet.play("deploy_fa.yml")
    assert run.rc == 0, run.out[-4000:]
    return run


def test_deploy_by_ansible_playbook_leaves_the_records_of_its_inventory(fleet, deployed):
    host = fleet.hosts[0]
    for name in ("report.json", "report.html", "junit.xml"):
        assert f"ascend-fa records: {fleet.results / name}" in deployed.out
    rep = json.loads((fleet.results / "report.json").read_text())
    assert [h["host"] for h in rep["hosts"]] == [host]
    assert rep["hosts"][0]["run_state"] in ("changed", "ok") and rep["header"]["runner"] == "ansible-playbook"
    assert rep["header"]["playbook"].endswith("deploy_fa.yml") and rep["header"]["commit"]
    verify = json.loads((fleet.results / "verify" / f"{host}.json").read_text())    # fa_verify's own record
    root = ET.parse(fleet.results / "junit.xml").getroot()
    assert [s.get("name") for s in root.findall("testsuite")] == [host]
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    phases = [n for (cls, n) in cases if cls == f"{host}.phase"]
    assert phases[:1] == ["fa_preflight"] and {"fa_install", "fa_verify"} <= set(phases), phases
    cards = sorted(n for (cls, n) in cases if cls == f"{host}.cards")
    assert cards == [f"card {c['card']}" for c in sorted(verify["cards"], key=lambda c: c["card"])] and len(cards) == 2
    for c in verify["cards"]:
        case = cases[(f"{host}.cards", f"card {c['card']}")]
        assert case.find("failure") is None and float(case.get("time")) == pytest.approx(c["latency_ms"] / 1000, abs=1e-3)
    assert root.get("failures") == "0" and root.get("errors") == "0"


def test_a_job_through_ansible_runner_publishes_the_summary(fleet, deployed, tmp_path):
    import ansible_runner

    env = {k: v for k, v in fleet.env().items() if k != "ANSIBLE_CACHE_PLUGIN_CONNECTION"}
    (tmp_path / "pdd").mkdir()
    r = ansible_runner.run(private_data_dir=str(tmp_path / "pdd"), project_dir=str(ROOT),
                           playbook=str(ROOT / "playbooks" / "verify.yml"), inventory=str(fleet.inventory),
                           envvars={**env, "PATH": os.environ.get("PATH", "")}, quiet=True,
                           fact_cache=str(fleet.dir / "facts"))
    assert r.rc == 0, r.stdout.read()[-4000:]
    stats = next(e for e in r.events if e["event"] == "playbook_on_stats")
    summary = stats["event_data"]["artifact_data"]["ascend_fa"]
    assert summary["hosts"] == 1 and summary["ok"] is True and summary["failed"] == [] and summary["unreachable"] == []
    assert summary["states"]["ok"] + summary["states"]["changed"] == 1
    kept = Path(r.config.artifact_dir) / "ascend-fa"
    rep = json.loads((kept / "report.json").read_text())
    assert [h["host"] for h in rep["hosts"]] == fleet.hosts and rep["header"]["runner"] == "ansible-runner"
