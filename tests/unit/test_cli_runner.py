"""ascend_fa.runner and the playbook subcommands of ascend_fa.cli.

The smoke tests run tests/data/runner_events/tiny_pipeline.yml for real through ansible-runner against localhost
(ansible_connection=local; one host is unreachable on purpose), with the fact cache in a temporary folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ascend_fa import cli, report, runner

DATA = Path(__file__).resolve().parents[1] / "data" / "runner_events"
PLAYBOOK = DATA / "tiny_pipeline.yml"
INVENTORY = DATA / "inventory.yml"


# ------------------------------------------------------------------------------------------------ exit codes
@pytest.mark.parametrize(("failed", "status", "rc", "code"), [
    (0, "successful", 0, 0),
    (1, "failed", 2, 1),
    (3, "failed", 4, 3),
    (124, "failed", 2, 124),
    (125, "failed", 2, 125),
    (400, "failed", 2, 125),
    (0, "failed", 4, runner.EXIT_NOT_RUN),       # e.g. a syntax error: no host failed, the run did
    (0, "successful", 1, runner.EXIT_NOT_RUN),
    (0, "timeout", None, runner.EXIT_NOT_RUN),
    (0, "canceled", 254, runner.EXIT_CANCELED),
    (2, "canceled", 254, runner.EXIT_CANCELED),
])
def test_exit_code_mapping(failed, status, rc, code):
    assert runner.exit_code(failed, status, rc) == code


def test_run_result_counts_failed_and_unreachable_hosts_once():
    stats = {"ok": {"a": 3, "b": 1, "c": 1, "d": 2}, "changed": {"d": 1}, "failures": {"b": 1, "c": 1},
             "dark": {"c": 1}, "skipped": {}}
    failed, dark = runner.split_stats(stats)
    assert (failed, dark) == (["b"], ["c"])
    r = runner.RunResult(rc=4, status="failed", stats=stats, failed_hosts=failed, unreachable_hosts=dark)
    assert r.exit_code == 2
    assert [r.host_state(h) for h in "abcde"] == ["ok", "failed", "unreachable", "changed", "not run"]


def test_every_subcommand_has_one_playbook():
    assert set(cli.PLAYBOOK_COMMANDS) == set(runner.PLAYBOOKS)
    assert runner.PLAYBOOKS["deploy"] == "deploy_fa.yml"
    assert runner.playbook_path("deploy") == runner.REPO / "deploy_fa.yml"
    assert runner.playbook_path("bench").is_file()


def test_missing_playbook_is_a_clear_error(tmp_path):
    with pytest.raises(runner.PlaybookMissing, match=r"'ascend-fa rollback' runs playbooks/rollback_fa.yml"):
        runner.playbook_path("rollback", repo=tmp_path)


def test_cli_missing_playbook_exits_126(monkeypatch, capsys):
    monkeypatch.setitem(runner.PLAYBOOKS, "rollback", "playbooks/not-there-yet.yml")
    assert cli.main(["rollback", "-i", str(INVENTORY)]) == runner.EXIT_NOT_RUN
    assert "playbooks/not-there-yet.yml, which is not in" in capsys.readouterr().err


def test_cli_missing_inventory_exits_126(capsys, tmp_path):
    assert cli.main(["deploy", "-i", str(tmp_path / "nope.yml")]) == runner.EXIT_NOT_RUN
    assert "not found" in capsys.readouterr().err


def test_inventory_is_required():
    with pytest.raises(SystemExit):
        cli.main(["deploy"])


# ------------------------------------------------------------------------------------------------ options
def test_parse_extra_vars(tmp_path):
    variables, files = cli.parse_extra_vars(
        ["a=1 b='two words'", '{"c": [1, 2], "d": {"e": true}}', "@vars.yml", f"@{tmp_path}/x.json"], cwd=tmp_path)
    assert variables == {"a": "1", "b": "two words", "c": [1, 2], "d": {"e": True}}
    assert files == [str(tmp_path / "vars.yml"), f"{tmp_path}/x.json"]
    with pytest.raises(ValueError, match="key=value"):
        cli.parse_extra_vars(["novalue"])


def test_build_cmdline():
    assert runner.build_cmdline() is None
    assert runner.build_cmdline(check=True, diff=True, extra_files=["/a b.yml"]) == "--check --diff -e '@/a b.yml'"


def test_envvars_keep_host_key_checking_and_our_config(monkeypatch):
    monkeypatch.delenv("ANSIBLE_HOST_KEY_CHECKING", raising=False)
    env = runner.runner_envvars({"X": "1"})
    assert env["ANSIBLE_CONFIG"] == str(runner.REPO / "ansible.cfg")
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"      # ansible.cfg: host_key_checking = True
    assert env["X"] == "1"
    monkeypatch.setenv("ANSIBLE_HOST_KEY_CHECKING", "False")
    assert "ANSIBLE_HOST_KEY_CHECKING" not in runner.runner_envvars()   # the caller's own choice passes through


def test_fact_cache_dir(tmp_path):
    assert runner.fact_cache_dir({}) == Path("~/.cache/ascend-fa/facts").expanduser()
    assert runner.fact_cache_dir({"ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path)}) == tmp_path


def test_results_dir(tmp_path):
    assert cli.results_dir({}, env={}) == runner.REPO / "out"
    assert cli.results_dir({}, env={"ASCEND_FA_RESULTS": str(tmp_path)}) == tmp_path
    assert cli.results_dir({"fa_results_dir": str(tmp_path / "x")}, env={"ASCEND_FA_RESULTS": "/y"}) == tmp_path / "x"


def test_subcommand_options_become_variables():
    a = cli.build_parser().parse_args(["upgrade", "-i", "inv", "--recipe", "r1", "--batch", "25%", "-e", "x=1"])
    assert cli._playbook_vars(a) == {"fa_recipe": "r1", "fa_rolling_batch": "25%"}
    assert cli.parse_batch("1") == 1 and cli.parse_batch("1, 10%,25%") == [1, "10%", "25%"]
    b = cli.build_parser().parse_args(["bench", "-i", "inv", "--grid", "seed", "-f", "4", "--check", "-t", "x,y"])
    assert cli._playbook_vars(b) == {"fa_bench_grid": "seed"}
    assert (b.forks, b.check, b.tags) == (4, True, "x,y")


def test_every_subcommand_is_there():
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, cli.argparse._SubParsersAction))
    assert {"deploy", "preflight", "verify", "upgrade", "rollback", "bench", "doctor", "report", "compat",
            "sim"} <= set(sub.choices)


def test_sim_subcommands_still_parse():
    p = cli.build_parser()
    assert p.parse_args(["sim", "create", "--dir", "d", "--hosts", "2"]).sim_cmd == "create"
    a = p.parse_args(["sim", "inject-fault", "--dir", "d", "node1", "card-health", "npu=3", "level=Alarm"])
    assert cli._sim_kv(a.param) == {"npu": "3", "level": "Alarm"}
    assert p.parse_args(["sim", "destroy", "--dir", "d"]).func is cli.cmd_sim


# ------------------------------------------------------------------------------------------------ real runs
@pytest.fixture()
def facts_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "facts"
    monkeypatch.setenv("ANSIBLE_CACHE_PLUGIN_CONNECTION", str(d))
    return d


def test_run_playbook_smoke(tmp_path, facts_dir):
    events: list[dict] = []
    r = runner.run_playbook(PLAYBOOK, INVENTORY, private_data_dir=tmp_path / "runner", on_event=events.append)
    assert r.status == "failed" and r.rc != 0
    assert r.failed_hosts == ["bad", "loopy"] and r.unreachable_hosts == ["gone"]
    assert r.exit_code == 3
    assert r.stats["ok"]["good"] > 0 and r.stats["rescued"] == {"good": 1}
    assert r.messages["bad"] == "Fail on the bad host: bad: the bad host fails here"
    assert set(r.messages) == {"bad", "loopy", "gone"}
    assert set(r.hosts) == {"good", "bad", "loopy", "done", "gone"}
    assert events[0]["event"] == "playbook_on_start" and events[-1]["event"] == "playbook_on_stats"
    assert len(list((Path(r.artifact_dir) / "job_events").glob("*.json"))) == len(events)
    # the fact cache ansible.cfg (here: the environment) names, not one inside the runner's artifacts
    cached = report.decode_cache_file((facts_dir / "s1_good").read_text())   # ansible 2.19: tagged payload
    assert cached["rec_cached"] == 42
    command = json.loads((Path(r.artifact_dir) / "command").read_text())
    assert command["env"]["ANSIBLE_HOST_KEY_CHECKING"] in ("True", "False")
    assert command["env"]["ANSIBLE_CONFIG"] == str(runner.REPO / "ansible.cfg")


def test_run_playbook_limit_tags_and_all_ok(tmp_path, facts_dir):
    r = runner.run_playbook(PLAYBOOK, INVENTORY, limit="good,done", forks=2, extravars={"unused": "x"},
                            private_data_dir=tmp_path / "runner")
    assert (r.status, r.rc, r.exit_code) == ("successful", 0, 0)
    assert sorted(r.stats["processed"]) == ["done", "good"]
    assert r.failed_hosts == [] and r.messages == {}
    command = json.loads((Path(r.artifact_dir) / "command").read_text())["command"]
    assert command[command.index("--limit") + 1] == "good,done"
    assert command[command.index("--forks") + 1] == "2"


def test_run_playbook_cancel(tmp_path, facts_dir):
    r = runner.run_playbook(PLAYBOOK, INVENTORY, limit="good", private_data_dir=tmp_path / "runner", cancel=lambda: True)
    assert r.status == "canceled" and r.exit_code == runner.EXIT_CANCELED


def test_cli_playbook_command_plain_progress_and_report(tmp_path, facts_dir, monkeypatch, capsys):
    monkeypatch.setitem(runner.PLAYBOOKS, "rollback", str(PLAYBOOK))
    out_dir = tmp_path / "out"
    code = cli.main(["rollback", "-i", str(INVENTORY), "--limit", "good,bad", "--progress", "plain",
                     "-e", f"fa_results_dir={out_dir}", "--check"])
    assert code == 1                                       # one host failed
    out = capsys.readouterr().out
    assert "== play: Tiny pipeline" in out
    assert "hosts=2 ok=1 changed=" in out
    assert "FAILED bad [phase_b]: Fail on the bad host" in out
    assert (out_dir / "report.html").is_file() and (out_dir / "report.json").is_file()
    rep = json.loads((out_dir / "report.json").read_text())
    # --check: the command task that changes something is skipped, so good is ok, not changed
    assert {h["host"]: h["run_state"] for h in rep["hosts"]} == {"good": "ok", "bad": "failed"}
    assert rep["title"].endswith("(check mode: nothing was changed)")
    assert f"report: {out_dir / 'report.html'}" in out


def test_report_run_state():
    state = cli.report_run_state
    assert state("changed", {}, True, True) == "would change"
    assert [state(s, {}, True, True) for s in ("ok", "failed", "unreachable", None)] == ["ok", "failed", "unreachable", None]
    assert state("changed", {}, False, True) == "changed"
    # preflight said it needs the package, and the rollout never reached it (its batch never ran)
    assert state("ok", {"fa_needs_install": True}, False, True) == "not installed"
    assert state("ok", {"fa_needs_install": True, "fa_rollout_result": "installed"}, False, True) == "ok"
    assert state("ok", {"fa_needs_install": False}, False, True) == "ok"
    assert state("ok", {"fa_needs_install": True}, False, False) == "ok"        # preflight, verify: no install meant
    assert state("failed", {"fa_needs_install": True}, False, True) == "failed"
    h = report.HostReport(host="n1", has_facts=True)
    h.run_state = "not installed"
    assert report.host_status(h) == "warn"


def test_event_tap_keeps_run_facts_and_survives_display_errors(capsys):
    seen: list[dict] = []

    def broken_display(event: dict) -> None:
        seen.append(event)
        raise RuntimeError("display broke")

    tap = runner._EventTap(broken_display)
    ok = {"event": "runner_on_ok", "event_data": {
        "host": "n1", "task_action": "fa_install",
        "res": {"manifest": {"recipe": "r1"}, "ansible_facts": {"fa_build_key": "k1", "fa_recipe_data": {"big": 1}}}}}
    failed = {"event": "runner_on_failed", "event_data": {"host": "n1", "task": "T", "res": {"msg": ["a", "b"]}}}
    assert tap(ok) is True and tap(failed) is True
    assert tap.facts == {"n1": {"fa_build_key": "k1", "fa_installed": {"recipe": "r1"}}}   # only RUN_FACTS
    assert tap.messages == {"n1": "T: a; b"} and tap.hosts == ["n1"]
    assert len(seen) == 2
    assert capsys.readouterr().err.count("progress display error") == 1
