"""ascend_fa.runner and the playbook subcommands of ascend_fa.cli.

The smoke tests run tests/data/runner_events/tiny_pipeline.yml for real through ansible-runner against localhost
(ansible_connection=local; one host is unreachable on purpose), with the fact cache in a temporary folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pexpect
import pytest
from ansible_collections.ascend.fa.plugins.plugin_utils import redact, report

from ascend_fa import cli, runner

DATA = Path(__file__).resolve().parents[1] / "data" / "runner_events"
PLAYBOOK = DATA / "tiny_pipeline.yml"
INVENTORY = DATA / "inventory.yml"


# ------------------------------------------------------------------------------------------------ exit codes
# ansible-playbook's own statuses (checked against real ansible-playbook runs in tests/unit/test_cli_dropin.py)
@pytest.mark.parametrize(("status", "rc", "code"), [
    ("successful", 0, 0),
    ("failed", 1, 1),          # e.g. a missing -e @file, no host to target
    ("failed", 2, 2),          # a host failed
    ("failed", 4, 4),          # a host unreachable, or a playbook that does not parse
    ("failed", 5, 5),
    ("failed", 99, 99),
    ("failed", 250, 250),
    ("timeout", 254, runner.EXIT_UNEXPECTED),
    ("error", None, runner.EXIT_UNEXPECTED),
    ("failed", -9, runner.EXIT_UNEXPECTED),    # killed by a signal
    ("canceled", 254, runner.EXIT_INTERRUPTED),
])
def test_exit_code_mapping(status, rc, code):
    assert runner.exit_code(status, rc) == code


def test_run_result_counts_failed_and_unreachable_hosts_once():
    stats = {"ok": {"a": 3, "b": 1, "c": 1, "d": 2}, "changed": {"d": 1}, "failures": {"b": 1, "c": 1},
             "dark": {"c": 1}, "skipped": {}}
    failed, dark = runner.split_stats(stats)
    assert (failed, dark) == (["b"], ["c"])
    r = runner.RunResult(rc=4, status="failed", stats=stats, failed_hosts=failed, unreachable_hosts=dark)
    assert (r.exit_code, r.failed_count) == (4, 2)     # the status is ansible-playbook's; the count is the summary's
    assert [r.host_state(h) for h in "abcde"] == ["ok", "failed", "unreachable", "changed", "not run"]


def test_every_subcommand_has_one_playbook():
    assert set(cli.PLAYBOOK_COMMANDS) == set(runner.PLAYBOOKS)
    assert runner.PLAYBOOKS["deploy"] == "deploy_fa.yml"
    assert runner.playbook_path("deploy") == runner.REPO / "deploy_fa.yml"
    assert runner.playbook_path("bench").is_file()


def test_missing_playbook_is_a_clear_error(tmp_path):
    with pytest.raises(runner.PlaybookMissing, match=r"'ascend-fa rollback' runs playbooks/rollback_fa.yml"):
        runner.playbook_path("rollback", repo=tmp_path)


def test_cli_missing_playbook_exits_1(monkeypatch, capsys):
    monkeypatch.setitem(runner.PLAYBOOKS, "rollback", "playbooks/not-there-yet.yml")
    assert cli.main(["rollback", "-i", str(INVENTORY)]) == runner.EXIT_ERROR     # ansible-playbook: 1 as well
    assert "playbooks/not-there-yet.yml, which is not in" in capsys.readouterr().err


def test_cli_missing_inventory_exits_1(capsys, tmp_path):
    assert cli.main(["deploy", "-i", str(tmp_path / "nope.yml")]) == runner.EXIT_ERROR
    err = capsys.readouterr().err
    assert f"inventory {tmp_path / 'nope.yml'} not found" in err and "Fix: " in err


def test_inventory_is_required():
    with pytest.raises(SystemExit) as exc:
        cli.main(["deploy"])
    assert exc.value.code == runner.EXIT_BAD_OPTIONS


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
    monkeypatch.setenv("ANSIBLE_CONFIG", str(runner.REPO / "ansible.cfg"))
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
    assert cli._playbook_vars(a) == {"fa_recipe": "r1", "fa_rollout_batch": "25%"}
    assert cli.parse_batch("1") == 1 and cli.parse_batch("1, 10%,25%") == [1, "10%", "25%"]
    b = cli.build_parser().parse_args(["bench", "-i", "inv", "--grid", "seed", "-f", "4", "--check", "-t", "x,y",
                                       "-t", "z"])
    assert cli._playbook_vars(b) == {"fa_bench_grid": "seed"}
    assert (b.forks, b.check, cli._joined(b.tags)) == (4, True, "x,y,z")


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
    monkeypatch.setenv("ASCEND_FA_RESULTS", str(tmp_path / "results"))   # the records callback writes there
    return d


def test_run_playbook_smoke(tmp_path, facts_dir):
    events: list[dict] = []
    r = runner.run_playbook(PLAYBOOK, INVENTORY, private_data_dir=tmp_path / "runner", on_event=events.append)
    assert r.status == "failed" and r.rc != 0
    assert r.failed_hosts == ["bad", "loopy"] and r.unreachable_hosts == ["gone"]
    assert (r.rc, r.exit_code, r.failed_count) == (4, 4, 3)     # ansible-playbook: unreachable (4) before failed (2)
    assert r.stats["ok"]["good"] > 0 and r.stats["rescued"] == {"good": 1}
    assert r.messages["bad"] == "Fail on the bad host: bad: the bad host fails here"
    assert set(r.messages) == {"bad", "loopy", "gone"}
    assert set(r.hosts) == {"good", "bad", "loopy", "done", "gone"}
    kinds = [e["event"] for e in events]
    assert kinds[0] == "playbook_on_start", [e.get("stdout") for e in events[:3]]   # no stray warning first
    assert "playbook_on_stats" in kinds and r.recap
    assert set(kinds[kinds.index("playbook_on_stats") + 1:]) <= {"verbose"}   # the records callback's lines
    assert len(list((Path(r.artifact_dir) / "job_events").glob("*.json"))) == len(events)
    # the fact cache ansible.cfg (here: the environment) names, not one inside the runner's artifacts
    cached = report.load_facts(facts_dir)["good"]   # written by ansible-playbook, read through the cache plugin
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
    assert r.status == "canceled" and r.exit_code == runner.EXIT_INTERRUPTED == 99


def test_cli_playbook_command_plain_progress_and_report(tmp_path, facts_dir, monkeypatch, capsys):
    monkeypatch.setitem(runner.PLAYBOOKS, "rollback", str(PLAYBOOK))
    out_dir = tmp_path / "out"
    code = cli.main(["rollback", "-i", str(INVENTORY), "--limit", "good,bad", "--progress", "plain",
                     "-e", f"fa_results_dir={out_dir}", "--check"])
    assert code == 2                                       # a host failed (ansible-playbook's 2)
    out = capsys.readouterr().out
    assert "ascend-fa rollback: exit 2 (a host failed): 1 failed, 0 unreachable of 2 hosts" in out
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


# ------------------------------------------------------------------------------------------------ secrets
SECRET_PLAY = """\
- name: Use the secrets
  hosts: all
  gather_facts: false
  tasks:
    - name: Digest the secrets (proves they arrived; the digests are printed, the values never)
      ansible.builtin.set_fact:
        become_digest: "{{ ansible_become_password | hash('sha256') }}"
        token_digest: "{{ hook_token | hash('sha256') }}"
    - name: Show the digests
      ansible.builtin.debug:
        msg: "{{ become_digest }} {{ token_digest }}"
    - name: Stay a moment, so the process table can be read while ansible-playbook runs
      ansible.builtin.command: sleep 1
      changed_when: false
"""


def _cmdlines_with(needles: list[str], stop: threading.Event, seen: list[str]) -> None:
    """Every command line on the machine that holds one of ``needles``, read until ``stop`` (what ps shows)."""
    me = os.getpid()
    while not stop.is_set():
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == me:
                continue
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if any(n in cmd for n in needles):
                seen.append(cmd)
        time.sleep(0.05)


def test_secrets_never_reach_argv_environment_or_artifacts(tmp_path, facts_dir, monkeypatch, capsys):
    become, token = f"bp-{uuid.uuid4().hex}", f"tk-{uuid.uuid4().hex}"
    env_secret = f"ev-{uuid.uuid4().hex}"
    play = tmp_path / "secret_play.yml"
    play.write_text(SECRET_PLAY)
    monkeypatch.setitem(runner.PLAYBOOKS, "rollback", str(play))
    monkeypatch.setenv("MY_SERVICE_TOKEN", env_secret)           # ansible-runner records the whole environment
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    pdd = tmp_path / "runner"
    monkeypatch.setattr(runner, "run_playbook", functools.partial(runner.run_playbook, private_data_dir=pdd))
    spawned: list[list[str]] = []
    real_spawn = pexpect.spawn

    def spawn(command, args=(), *a, **kw):
        spawned.append([command, *args])
        return real_spawn(command, args, *a, **kw)

    monkeypatch.setattr(pexpect, "spawn", spawn)
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=_cmdlines_with, args=([become, token], stop, seen), daemon=True)
    watcher.start()
    try:
        code = cli.main(["rollback", "-i", str(INVENTORY), "--limit", "good", "--progress", "plain", "--no-report",
                         "-e", f"ansible_become_password={become} fa_results_dir={tmp_path / 'out'}",
                         "-e", json.dumps({"hook_token": token})])
    finally:
        stop.set()
        watcher.join(10)
    out = capsys.readouterr()
    assert code == 0, out.err
    # the secrets reached the play: their digests are in its events
    events = "".join(p.read_text() for p in pdd.rglob("job_events/*.json"))
    for value in (become, token):
        assert hashlib.sha256(value.encode()).hexdigest() in events
    # ... and their values are nowhere: argv given to the process, the process table, every artifact, the output
    assert len(spawned) == 1 and "ansible-playbook" in spawned[0][0]
    argv = " ".join(spawned[0])
    assert become not in argv and token not in argv
    assert any(a.startswith("@") and a.endswith("vars.json") for a in spawned[0])
    assert seen == []
    files = [p for p in pdd.rglob("*") if p.is_file()]
    assert any(p.name == "command" for p in files) and any(p.name == "stdout" for p in files)
    for p in files:
        data = p.read_bytes()
        for value in (become, token, env_secret):
            assert value.encode() not in data, f"{value[:3]}... in {p}"
    command = json.loads(next(p for p in files if p.name == "command").read_text())
    assert command["env"]["MY_SERVICE_TOKEN"] == "***"
    assert become not in out.out + out.err and token not in out.out + out.err
    assert "warning: ansible_become_password, hook_token given on the command line, where ps shows it" in out.err
    # the private 0600 file that carried them is gone with its folder
    assert list((tmp_path / "tmp").iterdir()) == []


def test_secret_vars_file_is_private_and_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with runner.secret_vars_file({"ansible_become_password": "x y"}) as path:
        assert path is not None
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        assert json.loads(Path(path).read_text()) == {"ansible_become_password": "x y"}
    assert not os.path.exists(path) and list(tmp_path.iterdir()) == []
    with runner.secret_vars_file({}) as none:
        assert none is None


def test_secret_names():
    assert redact.split_secrets({"ansible_become_password": 1, "hook_token": 2, "fa_recipe": 3, "vault_pass": 4,
                                 "api_key": 5, "fa_vendor": 6}) == (
        {"fa_recipe": 3, "fa_vendor": 6}, {"ansible_become_password": 1, "hook_token": 2, "vault_pass": 4, "api_key": 5})
    assert redact.mask_env({"A_SECRET": "s", "PATH": "/bin"}) == {"A_SECRET": "***", "PATH": "/bin"}


def test_ask_become_pass_is_an_option():
    a = cli.build_parser().parse_args(["deploy", "-i", "x", "-K"])
    assert a.ask_become_pass is True


# ------------------------------------------------------------------------------------------------ inventory errors
BAD_INVENTORIES = {   # name: (text, message, exit status: 4 a parse error, 1 nothing to run on)
    "malformed.yml": ("all:\n  children:\n    ascend:\n      hosts:\n        a: {ansible_connection: local\n",
                      "the inventory {inv} could not be parsed (yaml plugin): YAML parsing failed", 4),
    "empty.yml": ("", "the inventory {inv} holds no host at all", 1),
    "nogroup.yml": ("all:\n  children:\n    other:\n      hosts:\n        a: {ansible_connection: local}\n",
                    "no host matched: group 'ascend' of inventory {inv} holds no host", 1),
    "emptygroup.yml": ("all:\n  children:\n    ascend:\n      hosts: {}\n",
                       "no host matched: group 'ascend' of inventory {inv} holds no host", 1),
}


@pytest.mark.parametrize("name", sorted(BAD_INVENTORIES))
def test_a_bad_inventory_is_an_error_with_the_reason(name, tmp_path, facts_dir, monkeypatch, capsys):
    text, expected, status = BAD_INVENTORIES[name]
    inv = tmp_path / name
    inv.write_text(text)
    monkeypatch.setattr(runner, "run_playbook",
                        functools.partial(runner.run_playbook, private_data_dir=tmp_path / "runner"))
    code = cli.main(["deploy", "-i", str(inv), "--progress", "quiet"])
    err = capsys.readouterr().err
    assert code == status, err
    assert expected.format(inv=inv) in err
    assert "Fix:" in err
    if name == "malformed.yml":
        assert f"(at {inv}:6:1)" in err      # the parser's position


def test_a_limit_outside_the_group_is_an_error(tmp_path, facts_dir, monkeypatch, capsys):
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  vars: {ansible_connection: local}\n  children:\n    ascend:\n      hosts: {a: {}}\n"
                   "    other:\n      hosts: {b: {}}\n")
    monkeypatch.setattr(runner, "run_playbook",
                        functools.partial(runner.run_playbook, private_data_dir=tmp_path / "runner"))
    for limit in ("b", "zz"):
        assert cli.main(["preflight", "-i", str(inv), "--limit", limit, "--progress", "quiet", "--no-report"]) == 1
        err = capsys.readouterr().err
        assert f"group 'ascend' of inventory {inv} with --limit {limit} holds no host" in err
        assert "use a --limit that names hosts of that group" in err
