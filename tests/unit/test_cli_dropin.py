"""The CLI as a drop-in for ansible-playbook (issue 22, item 2): its options, its ansible.cfg, its exit status.

What ansible-playbook does is taken from ansible-playbook itself, not from this project's reading of it: its
``--help`` (the options), its exit status on the same playbook and inventory (local-connection hosts, one
unreachable on purpose), its ``--list-hosts`` run with every passed option (it rejects an option it does not know),
``ansible-config dump`` in the run's environment, and its own prompts answered under a pseudo-terminal.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pexpect
import pytest
from ansible_collections.ascend.fa.plugins.plugin_utils import report

from ascend_fa import cli, progress, runner

BIN = Path(sys.executable).parent
DATA = Path(__file__).resolve().parents[1] / "data"
INVENTORY = DATA / "runner_events" / "inventory.yml"       # good, bad, loopy, done: local; gone: unreachable
PY = sys.executable

PLAY = """\
- name: Drop-in checks
  hosts: all
  gather_facts: false
  tasks:
    - name: Reach every host (gone is unreachable)
      ansible.builtin.ping:
    - name: Fail on the bad host
      ansible.builtin.fail:
        msg: the bad host fails here
      when: inventory_hostname == 'bad'
    - name: Show what ansible-playbook was given
      ansible.builtin.debug:
        msg: "tail={{ from_tail | default('-') }} handlers={{ ansible_run_tags | default([]) | length }}"
"""


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    """A working folder and HOME of the test's own, the fact cache and the results in it, no ANSIBLE_CONFIG: the
    config precedence then sees only what a test puts there."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    monkeypatch.delenv("ANSIBLE_CALLBACKS_ENABLED", raising=False)
    monkeypatch.delenv("ANSIBLE_COLLECTIONS_PATH", raising=False)
    monkeypatch.setenv("ANSIBLE_CACHE_PLUGIN_CONNECTION", str(tmp_path / "facts"))
    monkeypatch.setenv("ASCEND_FA_RESULTS", str(tmp_path / "results"))
    monkeypatch.chdir(work)
    return work


def _with_pdd(monkeypatch, tmp_path) -> Path:
    pdd = tmp_path / "runner"
    monkeypatch.setattr(runner, "run_playbook", functools.partial(runner.run_playbook, private_data_dir=pdd))
    return pdd


def _command(pdd: Path) -> dict:
    return json.loads(next(pdd.glob("artifacts/*/command")).read_text())


# ------------------------------------------------------------------------------------------------ options
def ansible_playbook_options(help_text: str) -> dict[str, bool]:
    """option -> takes a value, from ``ansible-playbook --help`` (every alias listed on an option's line)."""
    options: dict[str, bool] = {}
    for line in help_text.splitlines():
        m = re.match(r"^  (-[^ ].*?)(?:\s{2,}|$)", line)
        if not m:
            continue
        for item in m.group(1).split(", "):
            name, _, metavar = item.partition(" ")
            if name.startswith("-"):
                options[name] = bool(metavar)
    return options


@pytest.fixture(scope="module")
def playbook_help() -> dict[str, bool]:
    text = subprocess.run([str(BIN / "ansible-playbook"), "--help"], capture_output=True, text=True, check=True,
                          env={**os.environ, "COLUMNS": "200"}).stdout
    options = ansible_playbook_options(text)
    assert {"-b", "--become", "-K", "--vault-id", "--flush-cache", "-i", "--syntax-check"} <= set(options), text
    return options


def _subparser(name: str = "deploy"):
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, cli.argparse._SubParsersAction))
    return sub.choices[name]


def test_every_ansible_playbook_option_is_owned_or_passed_on(playbook_help):
    """Fails when ansible-playbook (this ansible-core) has an option the playbook subcommands neither own nor pass."""
    for name in cli.PLAYBOOK_COMMANDS:
        assert _subparser(name).get_default("func") is cli.cmd_playbook, name   # doctor included
        known = _subparser(name)._option_string_actions
        missing = sorted(o for o in playbook_help if o not in known)
        assert missing == [], f"ascend-fa {name} lacks ansible-playbook's {missing}"
        for opt, takes_value in playbook_help.items():
            action = known[opt]
            if opt in ("-h", "--help", "--version"):
                continue
            assert (action.nargs != 0) == takes_value, f"ascend-fa {name} {opt}: value or flag differs"


def test_every_passed_option_is_ansible_playbooks(playbook_help):
    for opt in cli.PASSED:
        assert set(opt.flags) <= set(playbook_help), opt.flags
        assert playbook_help[opt.long] == (opt.metavar is not None), opt.long


def test_passed_options_keep_their_order_and_values():
    a = cli.build_parser().parse_args(
        ["verify", "-i", "a.yml", "-i", "b,", "-b", "--become-user", "svc", "-u", "ops", "--ssh-extra-args=-o X=1",
         "--vault-id", "dev@prompt", "--vault-id", "prod@/f", "-T", "7", "-M", "/m1", "-M", "/m2", "--key-file", "k"])
    assert a.inventory == ["a.yml", "b,"]                  # several -i accumulate
    assert cli.passed_args(a.passthrough) == [
        "--become", "--become-user=svc", "--user=ops", "--ssh-extra-args=-o X=1", "--vault-id=dev@prompt",
        "--vault-id=prod@/f", "--timeout=7", "--module-path=/m1", "--module-path=/m2", "--private-key=k"]


@pytest.mark.parametrize("argv", [
    ["verify", "-i", "x", "--bogus"],
    ["verify", "-i", "x", "-T", "soon"],                           # ansible-playbook's own type check, here
    ["verify", "-i", "x", "-K", "--become-password-file", "f"],    # mutually exclusive, as in ansible-playbook
    ["verify", "-i", "x", "-k", "--conn-pass-file", "f"],
    ["verify", "-i", "x", "-J", "--vault-password-file", "f"],
    ["compat", "--driver", "1", "--cann", "2", "--soc", "x", "--", "-b"],   # -- is for the playbook subcommands
    ["verify"],
])
def test_bad_options_exit_5_not_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == runner.EXIT_BAD_OPTIONS
    assert "error:" in capsys.readouterr().err


def test_split_tail():
    assert cli.split_tail(["deploy", "-i", "x", "--", "--foo", "--", "y"]) == (["deploy", "-i", "x"],
                                                                             ["--foo", "--", "y"])
    assert cli.split_tail(["deploy", "-i", "x"]) == (["deploy", "-i", "x"], [])
    assert cli.split_tail(["explain", "--", "-"]) == (["explain", "--", "-"], [])


def test_interactive_options_run_on_the_terminal():
    assert cli._direct([("--step", None)], []) and cli._direct([], ["--list-tasks"])
    assert cli._direct([], ["-kK"]) and cli._direct([], ["--ask-vault-password"])
    assert not cli._direct([("--become", None), ("--ask-pass", None)], ["--force-handlers", "-vvv", "-e", "k=1"])


def test_vault_prompts():
    kept = [("--ask-vault-pass", None), ("--vault-id", "dev@prompt"), ("--vault-id", "prompt"), ("--vault-id", "x@/f")]
    got = cli.vault_prompts(kept)
    assert [label for label, _ in got] == ["", "dev", "default"]
    # the prompts ansible-core 2.19 writes (lib/ansible/cli/__init__.py setup_vault_secrets)
    for (_, pattern), prompt in zip(got, ["Vault password: ", "Vault password (dev): ", "Vault password (default): "],
                                    strict=True):
        assert re.search(pattern, prompt, re.M)


def test_ask_passwords_follows_ansible(monkeypatch):
    asked: list[str] = []
    answers = iter(["ssh-pw", "", "vault-pw"])
    monkeypatch.setattr(cli, "_ask", lambda prompt: asked.append(prompt) or next(answers))
    a = cli.build_parser().parse_args(["verify", "-i", "x", "-k", "-K", "-J"])
    secrets, passwords, env = cli.ask_passwords(a, a.passthrough, {})
    assert asked == ["SSH password: ", "BECOME password[defaults to SSH password]: ", "Vault password: "]
    assert secrets == {"ansible_become_password": "ssh-pw"}        # empty: the SSH password, as ansible-playbook
    assert passwords == {cli.SSH_PROMPT: "ssh-pw", cli.VAULT_PROMPT: "vault-pw"}
    assert env == {"ANSIBLE_BECOME_ASK_PASS": "False"}
    # become_ask_pass / ask_pass in ansible.cfg: asked here too, since ansible-playbook has no terminal to ask on
    kept = cli._effective_kept([], {"DEFAULT_ASK_PASS": True, "DEFAULT_BECOME_ASK_PASS": True})
    assert kept == [("--ask-pass", None)]


# ------------------------------------------------------------------------------------------------ config
CFG = """\
[defaults]
remote_user = opsuser
collections_path = {collections}
callbacks_enabled = ansible.builtin.tree
[callback_tree]
directory = {tree}
[privilege_escalation]
become = True
become_user = svc
[ssh_connection]
ssh_args = -o ProxyJump=bastion.example -o ControlMaster=no
"""


def test_config_precedence_is_ansibles(isolated, tmp_path, monkeypatch):
    home_cfg = Path(os.environ["HOME"]) / ".ansible.cfg"
    assert runner.config_file() == (runner.REPO / "ansible.cfg", False)        # none: the repo's
    home_cfg.write_text("[defaults]\n")
    assert runner.config_file() == (home_cfg, True)                            # ~/.ansible.cfg
    (isolated / "ansible.cfg").write_text("[defaults]\n")
    assert runner.config_file() == (isolated / "ansible.cfg", True)            # ./ansible.cfg before it
    env_cfg = tmp_path / "site.cfg"
    env_cfg.write_text("[defaults]\n")
    monkeypatch.setenv("ANSIBLE_CONFIG", str(env_cfg))
    assert runner.config_file() == (env_cfg, True)                             # $ANSIBLE_CONFIG before all
    monkeypatch.delenv("ANSIBLE_CONFIG")
    isolated.chmod(0o777)                                                      # world-writable: ansible skips it
    try:
        assert runner.config_file() == (home_cfg, True)
    finally:
        isolated.chmod(0o755)


def test_injects_only_what_the_users_config_lacks(isolated, tmp_path):
    # the repo's own ansible.cfg finds the collection and enables the records: nothing to add
    env = runner.runner_envvars()
    assert env["ANSIBLE_CONFIG"] == str(runner.REPO / "ansible.cfg")
    assert "ANSIBLE_COLLECTIONS_PATH" not in env and "ANSIBLE_CALLBACKS_ENABLED" not in env
    # a site's file: its callbacks keep theirs and get the records; the collection's folder goes first
    (isolated / "ansible.cfg").write_text(CFG.format(collections=tmp_path / "nowhere", tree=tmp_path / "tree"))
    env = runner.runner_envvars()
    assert env["ANSIBLE_CONFIG"] == str(isolated / "ansible.cfg")
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == "ansible.builtin.tree,ascend.fa.fa_records"
    assert env["ANSIBLE_COLLECTIONS_PATH"].split(":") == [str(runner.REPO / ".collections"), str(tmp_path / "nowhere")]
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    # ... and what ansible-playbook would see with that environment is the site's file, with the two additions
    dump = subprocess.run([str(BIN / "ansible-config"), "dump", "--only-changed"], cwd=isolated,
                          env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout
    assert re.search(r"^DEFAULT_REMOTE_USER\(.*ansible\.cfg\) = opsuser$", dump, re.M), dump
    assert re.search(r"^DEFAULT_BECOME\(.*ansible\.cfg\) = True$", dump, re.M), dump
    assert re.search(r"^DEFAULT_BECOME_USER\(.*ansible\.cfg\) = svc$", dump, re.M), dump
    assert re.search(r"^CALLBACKS_ENABLED\(env: ANSIBLE_CALLBACKS_ENABLED\) = \['ansible.builtin.tree', "
                     r"'ascend.fa.fa_records'\]$", dump, re.M), dump
    ssh = subprocess.run([str(BIN / "ansible-config"), "dump", "--only-changed", "-t", "connection"], cwd=isolated,
                         env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout
    assert "ProxyJump=bastion.example" in ssh, ssh
    # a site that already lists the records and finds this collection gets nothing added
    (isolated / "ansible.cfg").write_text("[defaults]\ncallbacks_enabled = ascend.fa.fa_records\n"
                                          f"collections_path = {runner.REPO / '.collections'}\n")
    env = runner.runner_envvars()
    assert "ANSIBLE_COLLECTIONS_PATH" not in env and "ANSIBLE_CALLBACKS_ENABLED" not in env


def test_a_run_reads_the_users_config(isolated, tmp_path, monkeypatch):
    """The CLI started in a site's folder: its ansible.cfg (here a callback of its own and a collections path that
    lacks ascend.fa) rules the run; the records callback still writes the report; the run starts in that folder."""
    play = isolated / "play.yml"
    play.write_text(PLAY)
    (isolated / "ansible.cfg").write_text(
        "[defaults]\n"
        f"collections_path = {tmp_path / 'nowhere'}\n"
        "callbacks_enabled = ansible.builtin.tree\n"
        f"[callback_tree]\ndirectory = {tmp_path / 'tree'}\n")
    monkeypatch.setitem(runner.PLAYBOOKS, "verify", str(play))
    pdd = _with_pdd(monkeypatch, tmp_path)
    inv = isolated / "hosts.yml"                      # relative -i, as typed in the site's folder
    inv.write_text(f"all:\n  hosts:\n    good: {{ansible_connection: local, ansible_python_interpreter: {PY}}}\n")
    code = cli.main(["verify", "-i", "hosts.yml", "--progress", "quiet"])
    assert code == 0
    command = _command(pdd)
    assert command["cwd"] == str(isolated)
    assert command["env"]["ANSIBLE_CONFIG"] == str(isolated / "ansible.cfg")
    assert (tmp_path / "tree" / "good").is_file()                           # the site's callback ran
    assert (tmp_path / "results" / "report.json").is_file()                 # ... and the records callback


# ------------------------------------------------------------------------------------------------ real runs
def test_every_passed_option_is_accepted_by_ansible_playbook(isolated, tmp_path, monkeypatch, capfd):
    """--list-hosts runs ansible-playbook on this terminal with every passed option (one of each exclusive pair): it
    exits 2 on an option it does not know, so 0 and the host list prove the argv."""
    monkeypatch.setitem(runner.PLAYBOOKS, "verify", str(DATA / "runner_events" / "tiny_pipeline.yml"))
    secret = tmp_path / "pw"
    secret.write_text("x\n")
    values = {"--private-key": str(tmp_path / "key"), "--user": "ops", "--connection": "local", "--timeout": "7",
              "--ssh-common-args": "-o A=1", "--sftp-extra-args": "-l 1", "--scp-extra-args": "-l 1",
              "--ssh-extra-args": "-o B=2", "--connection-password-file": str(secret), "--become-method": "su",
              "--become-user": "svc", "--become-password-file": str(secret), "--vault-id": f"lab@{secret}",
              "--start-at-task": "nothing", "--module-path": str(tmp_path)}
    argv = ["verify", "-i", str(INVENTORY), "--list-hosts"]
    for opt in cli.PASSED:
        if opt.long in ("--ask-pass", "--ask-vault-pass", "--vault-password-file", "--list-hosts", "--syntax-check"):
            continue      # prompts (tested under a terminal below); exclusive with --vault-id's file; syntax below
        argv += [opt.long] if opt.metavar is None else [f"{opt.long}={values[opt.long]}"]
    argv += ["--", "-e", "from_tail=1"]
    code = cli.main(argv)
    out = capfd.readouterr()
    assert code == 0, out.out + out.err
    listed = re.search(r"hosts \(5\):\n((?:\s+\S+\n){5})", out.out)
    assert listed and set(listed.group(1).split()) == {"good", "bad", "loopy", "done", "gone"}, out.out
    assert "phase_b : Fail on the bad host" in out.out                     # --list-tasks too


def _ansible_playbook(play: Path, *args: str) -> int:
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(play), *args],
                          capture_output=True, text=True, timeout=300).returncode


@pytest.mark.parametrize(("limit", "status"), [("good", 0), ("good,bad", 2), ("good,gone", 4), ("bad,gone", 4)])
def test_exit_status_is_ansible_playbooks(limit, status, isolated, tmp_path, monkeypatch, capsys):
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    assert _ansible_playbook(play, "--limit", limit) == status           # ansible-playbook itself, same hosts
    monkeypatch.setitem(runner.PLAYBOOKS, "verify", str(play))
    _with_pdd(monkeypatch, tmp_path)
    assert cli.main(["verify", "-i", str(INVENTORY), "--limit", limit, "--progress", "quiet"]) == status
    out = capsys.readouterr().out
    failed, dark, hosts = int("bad" in limit), int("gone" in limit), len(limit.split(","))
    assert f"exit {status} " in out and f"{failed} failed, {dark} unreachable of {hosts} hosts" in out


def test_syntax_error_and_unknown_option_after_the_tail(isolated, tmp_path, monkeypatch, capsys):
    broken = tmp_path / "broken.yml"
    broken.write_text("- hosts: all\n  tasks: [\n")
    assert _ansible_playbook(broken) == runner.EXIT_PARSER_ERROR == 4
    monkeypatch.setitem(runner.PLAYBOOKS, "verify", str(broken))
    _with_pdd(monkeypatch, tmp_path)
    assert cli.main(["verify", "-i", str(INVENTORY), "--progress", "quiet"]) == 4
    assert _ansible_playbook(broken, "--syntax-check") == 4
    assert cli.main(["verify", "-i", str(INVENTORY), "--syntax-check"]) == 4     # on this terminal, as it is
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    assert _ansible_playbook(play, "--no-such-option") == 2              # argparse's 2 in ansible-playbook ...
    monkeypatch.setitem(runner.PLAYBOOKS, "verify", str(play))
    capsys.readouterr()
    assert cli.main(["verify", "-i", str(INVENTORY), "--progress", "quiet", "--", "--no-such-option"]) == 5
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err    # ... is 5 here: no host failed


def test_tail_and_several_inventories_reach_ansible_playbook(isolated, tmp_path, monkeypatch, capsys):
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    monkeypatch.setitem(runner.PLAYBOOKS, "verify", str(play))
    pdd = _with_pdd(monkeypatch, tmp_path)
    one, two = tmp_path / "one.yml", tmp_path / "two.yml"
    one.write_text(f"all:\n  hosts:\n    n1: {{ansible_connection: local, ansible_python_interpreter: {PY}}}\n")
    two.write_text(f"all:\n  hosts:\n    n2: {{ansible_connection: local, ansible_python_interpreter: {PY}}}\n")
    code = cli.main(["verify", "-i", str(one), "-i", str(two), "--flush-cache", "-b", "--become-method=su",
                     "--progress", "quiet", "--no-report", "--", "-e", "from_tail=yes", "--force-handlers"])
    assert code == 0, capsys.readouterr()
    argv = _command(pdd)["command"]
    assert argv[argv.index("--flush-cache"):argv.index("--flush-cache") + 5] == [
        "--flush-cache", "--become", "--become-method=su", "-e", "from_tail=yes"]
    assert "--force-handlers" in argv
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-i"] == [str(one), str(two)]
    events = "".join(p.read_text() for p in pdd.glob("artifacts/*/job_events/*.json"))
    assert events.count("tail=yes") >= 2                       # both hosts, one from each inventory, got the -e


def test_ctrl_c_is_99_like_ansible_playbook(isolated, tmp_path):
    slow = tmp_path / "slow.yml"
    slow.write_text("- hosts: good\n  gather_facts: false\n  tasks:\n    - name: Wait\n"
                    "      ansible.builtin.command: sleep 60\n")
    pb = subprocess.Popen([str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(slow)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    _wait_for(pb, "TASK [Wait]")
    pb.send_signal(signal.SIGINT)
    assert pb.wait(60) == 99
    code = (f"import sys; from ascend_fa import cli, runner; runner.PLAYBOOKS['verify'] = {str(slow)!r}; "
            f"sys.exit(cli.main(['verify', '-i', {str(INVENTORY)!r}, '--progress', 'plain', '--no-report']))")
    me = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    _wait_for(me, "play: ")
    time.sleep(2)
    me.send_signal(signal.SIGINT)
    assert me.wait(120) == 99


def _wait_for(proc: subprocess.Popen, text: str, timeout: float = 60) -> None:
    end, seen = time.monotonic() + timeout, ""
    while time.monotonic() < end:
        line = proc.stdout.readline()
        seen += line
        if text in line:
            return
    proc.kill()
    raise AssertionError(f"{text!r} not seen: {seen[-2000:]}")


# ------------------------------------------------------------------------------------------------ prompts
SHOW_ACTION = '''\
import hashlib
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    """The digests of the passwords this task runs with (the values never leave the process)."""

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        pc = self._play_context
        digest = lambda v: hashlib.sha256((v or "").encode()).hexdigest()
        result.update(conn=digest(pc.password), become=digest(pc.become_pass), changed=False)
        return result
'''


def test_k_K_and_J_are_asked_and_reach_ansible_playbook(isolated, tmp_path):
    """Under a terminal, as an operator types: the CLI asks for the SSH, become and vault passwords; ansible-playbook
    (under ansible-runner, without a terminal of its own) gets each; none is on an argv, in the output or artifacts."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    ssh, become, vault = (f"{k}-{uuid.uuid4().hex}" for k in ("ssh", "bec", "vlt"))
    hidden = f"h-{uuid.uuid4().hex}"
    play_dir = tmp_path / "play"
    (play_dir / "action_plugins").mkdir(parents=True)
    (play_dir / "action_plugins" / "show_passwords.py").write_text(SHOW_ACTION)
    play = play_dir / "play.yml"
    play.write_text(textwrap.dedent("""\
        - name: Passwords
          hosts: good
          gather_facts: false
          tasks:
            - name: Digests of the connection and become passwords
              show_passwords:
            - name: Digest of the vaulted variable
              ansible.builtin.debug:
                msg: "vaulted={{ vaulted | hash('sha256') }}"
        """))
    vaulted = tmp_path / "vaulted.yml"
    vaulted.write_bytes(VaultLib([("default", VaultSecret(vault.encode()))]).encrypt(f"vaulted: {hidden}\n"))
    pdd = tmp_path / "runner"
    code = (f"import sys, functools; from ascend_fa import cli, runner; runner.PLAYBOOKS['verify'] = {str(play)!r}; "
            f"runner.run_playbook = functools.partial(runner.run_playbook, private_data_dir={str(pdd)!r}); "
            f"sys.exit(cli.main(['verify', '-i', {str(INVENTORY)!r}, '--limit', 'good', '--progress', 'plain', "
            f"'--no-report', '-k', '-K', '-J', '-e', '@{vaulted}']))")
    child = pexpect.spawn(PY, ["-c", code], env={**os.environ, "PYTHONUNBUFFERED": "1"}, encoding="utf-8",
                          timeout=180, cwd=str(isolated))
    child.expect_exact("SSH password: ")
    child.sendline(ssh)
    child.expect_exact("BECOME password[defaults to SSH password]: ")
    child.sendline(become)
    child.expect_exact("Vault password: ")
    child.sendline(vault)
    child.expect(pexpect.EOF)
    child.close()
    output = child.before
    assert child.exitstatus == 0, output
    events = "".join(p.read_text() for p in pdd.glob("artifacts/*/job_events/*.json"))
    digest = {k: hashlib.sha256(v.encode()).hexdigest() for k, v in (("ssh", ssh), ("become", become),
                                                                      ("hidden", hidden))}
    assert f'"conn": "{digest["ssh"]}"' in events and f'"become": "{digest["become"]}"' in events
    assert f"vaulted={digest['hidden']}" in events
    argv = " ".join(_command(pdd)["command"])
    assert "--ask-pass" in argv and "--ask-vault-pass" in argv and "--ask-become-pass" not in argv
    for p in [p for p in pdd.rglob("*") if p.is_file()]:
        for value in (ssh, become, vault, hidden):
            assert value.encode() not in p.read_bytes(), f"{value[:3]}... in {p}"
    for value in (ssh, become, vault, hidden):
        assert value not in output


# ------------------------------------------------------------------------------------------------ report, progress
def test_report_without_inventory_shows_the_last_runs_hosts(tmp_path, capsys):
    facts, results = DATA / "report" / "facts", DATA / "report" / "results"
    every = report.build_report(facts, results)
    assert len(every.hosts) == 4
    out = tmp_path / "results"
    out.mkdir()
    last = report.build_report(facts, results, hosts=["atlas-a2-001", "atlas-a3-001"])
    report.write_json(last, out / "report.json")
    for name in (results / "verify").iterdir():
        (out / "verify").mkdir(exist_ok=True)
        (out / "verify" / name.name).write_bytes(name.read_bytes())
    assert cli.main(["report", "--facts", str(facts), "--results", str(out), "--json", "-"]) == 0
    assert sorted(h["host"] for h in json.loads(capsys.readouterr().out)["hosts"]) == ["atlas-a2-001", "atlas-a3-001"]
    (out / "report.json").unlink()     # no run recorded: every cached host, and a note saying so
    assert cli.main(["report", "--facts", str(facts), "--results", str(out), "--json", "-"]) == 0
    got = capsys.readouterr()
    assert len(json.loads(got.out)["hosts"]) == 4 and "no report.json of a run" in got.err


def _event(kind: str, **data) -> dict:
    return {"event": kind, "created": "2026-12-05T10:00:00", "event_data": data}


def test_a_converged_rerun_says_nothing_to_install():
    model = progress.ProgressModel(default_phase="deploy")
    assert model.apply(_event("playbook_on_play_start", play="Preflight"))[-1].message == "play: Preflight"
    model.apply(_event("runner_on_ok", host="n1", task="t", role="fa_preflight", res={}))
    model.apply(_event("runner_on_ok", host="n2", task="t", role="fa_preflight", res={}))
    model.apply(_event("runner_on_failed", host="n3", task="t", role="fa_preflight", res={"msg": "no"}))
    model.apply(_event("playbook_on_play_start", play="Install and verify"))
    lines = model.apply(_event("playbook_on_no_hosts_matched"))
    assert [ln.message for ln in lines] == ["nothing to install: 2 hosts converged, 1 failed or unreachable"]
    first = progress.ProgressModel()
    first.apply(_event("playbook_on_play_start", play="Preflight"))
    assert first.apply(_event("playbook_on_no_hosts_matched"))[0].message.startswith("no hosts matched")


def test_a_broken_user_config_is_exit_5_with_the_file_named_like_ansible_playbook(tmp_path):
    """ansible-playbook reads the user's ansible.cfg first and exits 5 naming it; the CLI does the same, no traceback."""
    (tmp_path / "ansible.cfg").write_text("[defaults\nforks = 3\n")
    env = {k: v for k, v in os.environ.items() if k != "ANSIBLE_CONFIG"}
    bindir = Path(sys.executable).parent
    ours = subprocess.run([str(bindir / "ascend-fa"), "deploy", "-i", "nowhere,"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    theirs = subprocess.run([str(bindir / "ansible-playbook"), "-i", "nowhere,", "x.yml"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert (ours.returncode, theirs.returncode) == (5, 5)
    assert str(tmp_path / "ansible.cfg") in ours.stderr and "Traceback" not in ours.stderr
