"""Records from any runner (issue #22 item 1): plugins/plugin_utils/records.py, the callback ascend.fa.fa_records and
the final "Record the run" play's set_stats summary.

The fold is checked on the real ansible-runner events of tests/data/runner_events/ (their recap is the independent
truth); the callback and the set_stats play on real runs of a small pipeline (tests/data/records/: stand-in roles
named like the phases, on local hosts plus one unreachable) by ``ansible-playbook`` with the repo's ansible.cfg and by
``ansible_runner.run`` as AWX starts a job.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from ansible_collections.ascend.fa.plugins.plugin_utils import records

from ascend_fa import progress

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "data" / "runner_events" / "tiny_pipeline.jsonl"
PIPELINE = ROOT / "tests" / "data" / "records"
RECIPE = "ops-transformer-v9.0.1"


def _events() -> list[dict]:
    return [json.loads(line) for line in EVENTS.read_text().splitlines() if line.strip()]


def _recap(events: list[dict]) -> dict:
    return next(e["event_data"] for e in events if e["event"] == "playbook_on_stats")


# ------------------------------------------------------------------------------------------------ the fold
def test_progress_uses_the_moved_failure_message():
    assert progress.failure_message is records.failure_message
    assert progress.result_message is records.result_message


def test_fold_of_real_runner_events_agrees_with_their_recap(monkeypatch):
    monkeypatch.setattr(records, "PHASES", ("phase_a", "phase_b"))   # the tiny pipeline's roles are its phases
    events = _events()
    rec = records.RunRecord()
    for e in events:
        rec.apply(e, 0.0)
    rec.finish(_recap(events))
    recap = _recap(events)
    # states: from the recorded recap (ansible's own verdict), not from the fold
    assert {h: rec.state(h) for h in rec.hosts} == {h: records.host_state(h, recap) for h in rec.hosts}
    assert rec.state("bad") == "failed" and rec.state("gone") == "unreachable" and rec.state("good") == "changed"
    phases = rec.phase_dicts()
    # the roles' files: bad fails in phase_b, loopy's item 2 fails in phase_b, good recovers in phase_b (rescue),
    # done ends in phase_a (meta: end_host), gone never gets past phase_a's first remote task
    assert phases["bad"]["phase_b"]["state"] == "failed"
    assert "the bad host fails here" in phases["bad"]["phase_b"]["message"]
    assert phases["loopy"]["phase_b"]["state"] == "failed" and "item 2" in phases["loopy"]["phase_b"]["message"]
    assert phases["good"]["phase_b"]["state"] == "rescued" and phases["good"]["phase_a"]["state"] == "ok"
    assert list(phases["done"]) == ["phase_a"] and phases["done"]["phase_a"]["state"] == "ok"
    assert phases["gone"]["phase_a"]["state"] == "unreachable"
    run = rec.run()
    assert run["good"]["message"] is None      # a recovered failure is not the host's failure
    assert run["gone"]["message"].startswith("Say hello: ")


def test_ignored_failures_and_skips_do_not_fail_a_phase():
    rec = records.RunRecord()
    base = {"host": "h", "role": "ascend.fa.fa_preflight", "task": "t"}
    rec.apply({"event": "runner_on_skipped", "event_data": base})
    assert rec.phases["h"]["fa_preflight"].state == "skipped"
    rec.apply({"event": "runner_on_failed", "event_data": {**base, "ignore_errors": True, "res": {"msg": "x"}}})
    assert rec.phases["h"]["fa_preflight"].state == "ok" and "h" not in rec.messages
    rec.apply({"event": "runner_on_failed", "event_data": {"host": "h", "role": "fa_common", "task": "Gather",
                                                          "res": {"msg": "npu-smi missing"}}})
    assert rec.phases["h"]["fa_preflight"].state == "failed"   # plumbing role: counts towards the host's phase
    assert rec.messages["h"] == "Gather: npu-smi missing"


def test_run_facts_kept_from_results():
    rec = records.RunRecord()
    rec.apply({"event": "runner_on_ok", "event_data": {"host": "h", "task_action": "ascend.fa.fa_install", "res": {
        "manifest": {"recipe": "r"}, "ansible_facts": {"fa_drain": {"kind": "slurm"}, "other": 1}}}})
    assert rec.facts == {"h": {"fa_installed": {"recipe": "r"}, "fa_drain": {"kind": "slurm"}}}


@pytest.mark.parametrize(("state", "facts", "check", "installs", "expected"), [
    ("ok", {"fa_needs_install": True}, False, True, "not installed"),
    ("ok", {"fa_needs_install": True, "fa_rollout_result": "failed"}, False, True, "ok"),
    ("ok", {"fa_needs_install": True}, False, False, "ok"),
    ("changed", {}, True, True, "would change"),
    ("failed", {}, True, True, "failed"),
])
def test_report_run_state(state, facts, check, installs, expected):
    assert records.report_run_state(state, facts, check, installs) == expected


def test_split_stats_unreachable_wins():
    stats = {"failures": {"a": 1, "b": 1}, "dark": {"b": 1}, "ok": {"c": 2}, "changed": {"c": 1}}
    assert records.split_stats(stats) == (["a"], ["b"])
    assert [records.host_state(h, stats) for h in "abcd"] == ["failed", "unreachable", "changed", "not run"]


def test_summary_counts_and_lists():
    s = records.summary(["a", "b", "c", "d"], {"a": "ok", "b": "failed", "c": "unreachable", "d": "not installed"},
                        {"b": "t: \x1b[31mboom", "a": "old"}, RECIPE, {"a": "installed", "b": "rolled_back"})
    assert s["states"]["ok"] == 1 and s["states"]["failed"] == 1 and s["states"]["not run"] == 0
    assert (s["failed"], s["unreachable"], s["not_installed"]) == (["b"], ["c"], ["d"])
    assert s["messages"] == {"b": "t: boom"} and s["ok"] is False and s["recipe"] == RECIPE
    assert s["rollout"] == {"installed": ["a"], "rolled_back": ["b"]}


def test_play_summary_without_the_callback_counts_left_out_hosts_as_failed():
    s = records.play_summary(["a", "b"], ["a"], {"a": {"fa_rollout_result": "installed"}, "b": {}}, RECIPE, live=None)
    assert s["failed"] == ["b"] and s["unreachable"] == [] and s["rollout"] == {"installed": ["a"]}


def test_results_dir_and_runner():
    assert records.results_dir("/x/y", {"ASCEND_FA_RESULTS": "/z"}) == Path("/x/y")
    assert records.results_dir(None, {"ASCEND_FA_RESULTS": "/z"}) == Path("/z")
    assert records.results_dir("", {}, root=Path("/c")) == Path("/c/out")
    assert records.runner_name({}) == "ansible-playbook"
    assert records.runner_name({"ANSIBLE_STDOUT_CALLBACK": "awx_display", "AWX_ISOLATED_DATA_DIR": "/a"}) == "ansible-runner"
    assert records.runner_artifacts({"ANSIBLE_STDOUT_CALLBACK": "awx_display", "AWX_ISOLATED_DATA_DIR": "/a"}) == Path("/a")


def test_header_from_cli_args():
    h = records.header("deploy_fa.yml", records.recipe_info(RECIPE), {"subset": "n1", "tags": ("all",),
                       "skip_tags": ("verify", "bench"), "check": True}, 100.0, 161.25, "ansible-playbook")
    recipe = yaml.safe_load((ROOT / "recipes" / f"{RECIPE}.yml").read_text())
    assert (h["tag"], h["commit"]) == (recipe["tag"], recipe["commit"])
    assert h["limit"] == "n1" and h["tags"] is None and h["skip_tags"] == "verify,bench" and h["check"] is True
    assert h["duration_s"] == 61.2 and h["started"] == "1970-01-01T00:01:40Z"
    assert records.recipe_info("no/such")["tag"] is None


# ------------------------------------------------------------------------------------------------ real runs
def _final_play() -> dict:
    """The real "Record the run" play, as playbooks/deploy.yml ends."""
    play = yaml.safe_load((ROOT / "playbooks" / "deploy.yml").read_text())[-1]
    assert play["name"] == "Record the run"
    # its summary task as it is; the package servers' stop (an include of fa_install) has nothing to stop here
    summary = [t for t in play["tasks"] if "ansible.builtin.set_stats" in t]
    assert len(summary) == 1 and [t["name"] for t in play["tasks"]] == [
        "Stop the package servers of this run", "Publish the run's summary (set_stats ascend_fa)"]
    return {**play, "tasks": summary}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    shutil.copytree(PIPELINE, proj)
    plays = yaml.safe_load((proj / "pipeline.yml").read_text()) + [_final_play()]
    (proj / "pipeline.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    facts = tmp_path / "facts"
    facts.mkdir()
    # a host of a destroyed fleet, still in the controller's fact cache: not the run's, never in its report
    (facts / "stale").write_text(json.dumps({"ascend": {"driver_version": "1"}}))
    (tmp_path / "out" / "verify").mkdir(parents=True)
    (tmp_path / "out" / "verify" / "good.json").write_text(json.dumps({"host": "good", "ok": False, "cards": [
        {"card": 0, "ok": True, "latency_ms": 0.43, "max_abs_err": 0.0005, "reason": None},
        {"card": 1, "ok": False, "latency_ms": None, "reason": "max abs err 0.5 > 0.01"}]}))
    return proj


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "AWX_", "ASCEND_FA_RESULTS"))}
    env.update({"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ASCEND_FA_RESULTS": str(tmp_path / "out"),
                "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts"), "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
                "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_NOCOLOR": "1", "PATH": os.environ.get("PATH", "")})
    env.update(extra)
    return env


def _play(project: Path, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "inventory.yml", "pipeline.yml", *args]
    return subprocess.run(cmd, cwd=project, env=_env(tmp_path, **env), capture_output=True, text=True, timeout=300)


def test_ansible_playbook_run_leaves_report_and_junit_for_its_hosts(project, tmp_path):
    p = _play(project, tmp_path, "--limit", "!skip", "-e", f"fa_recipe={RECIPE}")
    assert p.returncode == 4, p.stdout[-3000:] + p.stderr[-3000:]     # bad failed, gone unreachable (4 wins)
    out = tmp_path / "out"
    for name in ("report.json", "report.html", "junit.xml"):
        assert f"ascend-fa records: {out / name}" in p.stdout
    rep = json.loads((out / "report.json").read_text())
    hosts = {h["host"]: h for h in rep["hosts"]}
    assert sorted(hosts) == ["bad", "gone", "good", "pending"]     # the inventory after --limit; not 'stale', 'skip'
    assert {h: r["run_state"] for h, r in hosts.items()} == {
        "good": "ok", "pending": "not installed", "bad": "failed", "gone": "unreachable"}
    assert hosts["bad"]["run_message"].startswith("Verify on every card: card 1: <b>wrong</b> ]]> &")
    head = rep["header"]
    recipe = yaml.safe_load((ROOT / "recipes" / f"{RECIPE}.yml").read_text())
    assert head["playbook"] == "pipeline.yml" and head["limit"] == "!skip" and head["runner"] == "ansible-playbook"
    assert (head["recipe"], head["tag"], head["commit"]) == (RECIPE, recipe["tag"], recipe["commit"])
    assert head["duration_s"] > 0 and head["check"] is False

    root = ET.parse(out / "junit.xml").getroot()
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert sorted(suites) == ["bad", "gone", "good", "pending"]
    cases = {(c.get("classname"), c.get("name")): c for s in suites.values() for c in s.findall("testcase")}
    bad = cases[("bad.phase", "fa_verify")].find("failure")
    assert bad is not None and bad.text.startswith("Verify on every card: card 1: <b>wrong</b> ]]> & red")
    assert cases[("gone.phase", "fa_preflight")].find("error").get("type") == "unreachable"
    assert cases[("good.phase", "fa_verify")].find("failure") is None
    assert cases[("pending.phase", "fa_verify")] is not None and cases[("pending.phase", "fa_verify")].find("skipped") is not None
    # cards from out/verify/good.json: card 0 passed in 0.43 ms, card 1 failed with its reason
    assert float(cases[("good.cards", "card 0")].get("time")) == pytest.approx(0.00043, abs=1e-3)
    assert cases[("good.cards", "card 1")].find("failure").text == "max abs err 0.5 > 0.01"
    assert int(root.get("tests")) == len(cases)
    assert int(root.get("failures")) == sum(1 for c in cases.values() if c.find("failure") is not None)
    assert int(root.get("errors")) == sum(1 for c in cases.values() if c.find("error") is not None)


def test_every_host_failed_still_leaves_the_records(project, tmp_path):
    p = _play(project, tmp_path, "--limit", "bad")
    assert p.returncode == 2 and "Record the run" not in p.stdout   # the run stopped: the final play never ran
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [(h["host"], h["run_state"]) for h in rep["hosts"]] == [("bad", "failed")]


def test_records_that_cannot_be_written_warn_and_leave_the_run_alone(project, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the results folder should be")
    p = _play(project, tmp_path, "--limit", "good", ASCEND_FA_RESULTS=str(blocker / "out"))
    assert p.returncode == 0, p.stdout[-3000:]
    assert "ascend.fa.fa_records: writing the run's records failed" in p.stdout + p.stderr


def test_ansible_runner_job_publishes_the_summary_with_set_stats(project, tmp_path):
    import ansible_runner

    env = _env(tmp_path)
    env.pop("ANSIBLE_CACHE_PLUGIN_CONNECTION")
    (tmp_path / "pdd").mkdir()
    r = ansible_runner.run(private_data_dir=str(tmp_path / "pdd"), project_dir=str(project),
                           playbook=str(project / "pipeline.yml"), inventory=str(project / "inventory.yml"),
                           limit="!skip", extravars={"fa_recipe": RECIPE}, envvars=env, quiet=True,
                           fact_cache=str(tmp_path / "facts"))
    assert r.rc == 4, r.stdout.read()[-3000:]
    stats = next(e for e in r.events if e["event"] == "playbook_on_stats")
    summary = stats["event_data"]["artifact_data"]["ascend_fa"]
    assert summary["hosts"] == 4 and summary["recipe"] == RECIPE and summary["ok"] is False
    assert (summary["failed"], summary["unreachable"], summary["not_installed"]) == (["bad"], ["gone"], ["pending"])
    assert summary["states"]["ok"] == 1 and summary["states"]["unreachable"] == 1
    assert summary["messages"]["bad"].startswith("Verify on every card: card 1:")
    # the recap agrees with the summary (independent: ansible's own stats)
    assert records.split_stats(r.stats) == (summary["failed"], summary["unreachable"])
    # the records are also in the job's artifacts (they outlive an AWX job's container)
    kept = Path(r.config.artifact_dir) / "ascend-fa"
    rep = json.loads((kept / "report.json").read_text())
    assert rep["header"]["runner"] == "ansible-runner" and sorted(h["host"] for h in rep["hosts"]) == [
        "bad", "gone", "good", "pending"]
    assert (kept / "junit.xml").is_file() and (kept / "report.html").is_file()


def test_the_rollout_outcome_comes_from_the_records_task_not_a_set_fact():
    # roles/fa_rollout: fa_rollout_record returns the host's outcome as rollout_facts (registered fa_rollout_outcome)
    package = {"recipe": "sim-ops-transformer-v9.0.0", "sha256": "ab" * 32}
    data = {"task_action": "ascend.fa.fa_rollout_record", "res": {
        "changed": False, "recorded": ["controller"], "ansible_facts": {"ascend_fa_converged": {"key": "k"}},
        "rollout_facts": {"fa_rollout_result": "upgraded", "fa_rollout_from": package, "not_a_run_fact": 1}}}
    assert records.run_facts_of(data) == {"fa_rollout_result": "upgraded", "fa_rollout_from": package}
    assert records.run_facts_of({"task_action": "x", "res": {"rollout_facts": "junk"}}) == {}
    outcome = {"a": {"fa_rollout_outcome": {"rollout_facts": {"fa_rollout_result": "installed"}}},
               "b": {"fa_rollout_outcome": "junk"}}
    s = records.play_summary(["a", "b"], ["a", "b"], outcome, RECIPE, live=None)
    assert s["rollout"] == {"installed": ["a"]}
