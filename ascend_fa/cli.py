"""The ``ascend-fa`` command line: deploy, verify and report FlashAttention on a fleet of Atlas NPU servers.

Playbook subcommands (deploy, preflight, verify, upgrade, rollback, bench, doctor) run the collection's playbooks
through ansible-runner with live per-host progress, then print the fleet report. They take ansible-playbook's
options (those they do not own pass on as they are; anything after ``--`` too), read the ansible.cfg ansible would
read, and exit with ansible-playbook's status.
"""

from __future__ import annotations

import argparse
import getpass
import importlib.util
import json
import os
import re
import shlex
import signal
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from ansible_collections.ascend.fa.plugins.plugin_utils import compat, records, redact
from ansible_collections.ascend.fa.plugins.plugin_utils.safetext import strip_controls

from ascend_fa import __version__, doctor, runner

EXIT_CODES = """exit status (ansible-playbook's; the summary line counts the failed and unreachable hosts):
  0    every host ok
  1    error: nothing (or not everything) ran: a missing playbook, inventory or -e @file, no host matched
  2    a host failed
  4    a host was unreachable (before 2); or a playbook or inventory that does not parse
  5    bad options
  99   interrupted (Ctrl-C)
  250  unexpected error
"""

PLAYBOOK_COMMANDS: dict[str, str] = {
    "deploy": "preflight -> fetch -> build -> install -> verify on every host (deploy_fa.yml)",
    "preflight": "gather Ascend facts and check each host's stack; changes nothing",
    "verify": "run the FlashAttention check on every card of every host",
    "upgrade": "roll a new release out in batches, rolling a host back when it fails",
    "rollback": "put each host back on its previous package",
    "bench": "benchmark standard attention against FlashAttention on each host (kernels/fa_bench.py)",
    "doctor": "diagnose hosts where FlashAttention is not working",
}
REPORT_AFTER = frozenset({"deploy", "preflight", "verify", "upgrade", "rollback", "bench", "doctor"})


# ------------------------------------------------------------------------------------------------ compat / sim
def _stack_from_args(a: argparse.Namespace) -> dict:
    from ansible_collections.ascend.fa.plugins.module_utils import ascend_detect as det

    soc = (a.soc or "").strip().lower().replace(" ", "") or None
    fam = soc if soc in det.SOC_FAMILIES else det.soc_family(soc)
    ok, why = det.fa_support(fam)
    stack = {
        "driver_version": a.driver, "cann_version": a.cann,
        "soc_version": soc, "soc_family": fam, "fa_supported": ok if fam else None,
        "fa_supported_reason": why, "torch_version": a.torch, "torch_npu_version": a.torch_npu,
    }
    if a.firmware:
        stack["firmware_version"] = a.firmware
    return stack


def cmd_compat(a: argparse.Namespace) -> int:
    errors = compat.option_errors({"--driver": a.driver, "--cann": a.cann, "--firmware": a.firmware,
                                   "--torch-npu": a.torch_npu, "--torch": a.torch}, {"--soc": a.soc, "--tag": a.tag})
    if errors:   # an absurd value is a usage error (exit 2) naming the option, not a traceback
        print("\n".join(f"ascend-fa compat: {e}" for e in errors), file=sys.stderr)
        return 2
    stack = _stack_from_args(a)
    problems = compat.check(stack, compat.load_matrix(a.matrix), tag=a.tag)
    if a.json:
        print(json.dumps({"stack": stack, "problems": [p.as_dict() for p in problems]}, indent=2))
    else:
        for p in problems:
            print(p.line())
        if not problems:
            print(f"ok: driver {a.driver}, CANN {a.cann}, {stack['soc_family']}, tag {a.tag}: no problem found")
    return 1 if compat.blocking(problems) else 0


def _sim_kv(params: Sequence[str]) -> dict[str, str]:
    bad = [p for p in params if "=" not in p]
    if bad:
        raise SystemExit(f"ascend-fa sim inject-fault: parameters are key=value, got {' '.join(bad)}")
    return dict(p.split("=", 1) for p in params)


def cmd_sim(a: argparse.Namespace) -> int:
    from ascend_sim import fleet
    from ascend_sim.image import SimError

    try:
        return _sim(a, fleet)
    except SimError as exc:
        print(f"ascend-fa sim {a.sim_cmd}: {exc}", file=sys.stderr)
        return 1


def _sim(a: argparse.Namespace, fleet: Any) -> int:
    if a.sim_cmd == "create":
        models = a.models.split(",") if a.models else None
        layouts = a.layouts.split(",") if a.layouts else None
        info = fleet.create(a.dir, hosts=a.hosts, models=models, fleet_octet=a.octet, npus=a.npus,
                            cann_layouts=layouts)
        inv = Path(info.get("inventory") or Path(a.dir) / "inventory.yml")
        print(f"simulated fleet ready: {inv} ({len(info.get('hosts', []))} hosts)")
        print(f"next: ascend-fa deploy -i {shlex.quote(str(inv))}")
        return 0
    if a.sim_cmd == "destroy":
        n = fleet.destroy(a.dir)
        print(f"removed {n} simulated hosts of {a.dir}")
        return 0
    if a.sim_cmd == "inject-fault":
        config = fleet.inject_fault(a.dir, a.host, a.fault, **_sim_kv(a.param))
        print(json.dumps(config, indent=2, default=str))
        return 0
    if a.sim_cmd == "list":
        fleets = fleet.list()
        if a.dir:
            want = str(Path(a.dir).resolve())
            fleets = [f for f in fleets if f.get("dir") == want]
        print(json.dumps(fleets, indent=2, default=str))
        return 0
    return 2


# ------------------------------------------------------------------------------------------------ extra vars
def parse_extra_vars(values: Sequence[str], cwd: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """``-e`` values as ansible-playbook takes them: ``key=value [key=value ...]``, a JSON/YAML mapping, or
    ``@file``. Returns (variables, files); files become absolute (the playbook runs with the repo as cwd)."""
    import yaml

    cwd = cwd or Path.cwd()
    variables: dict[str, Any] = {}
    files: list[str] = []
    for raw in values:
        text = raw.strip()
        if not text:
            continue
        if text.startswith("@"):
            files.append(str((cwd / text[1:]).resolve()) if not os.path.isabs(text[1:]) else text[1:])
        elif text[0] in "{[":
            data = yaml.safe_load(text)
            if not isinstance(data, dict):
                raise ValueError(f"-e {raw!r}: a JSON/YAML value must be a mapping")
            variables.update(data)
        else:
            for pair in shlex.split(text):
                key, sep, value = pair.partition("=")
                if not sep or not key:
                    raise ValueError(f"-e {raw!r}: expected key=value, JSON, YAML or @file")
                variables[key] = value
    return variables, files


def _file_vars(files: Sequence[str]) -> dict[str, Any]:
    """What the ``@files`` say (best effort: vault-encrypted or unreadable files are left to ansible)."""
    import yaml

    merged: dict[str, Any] = {}
    for f in files:
        try:
            data = yaml.safe_load(Path(f).read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            merged.update(data)
    return merged


def results_dir(variables: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Path:
    """Where the roles and the records callback put results: -e fa_results_dir, else $ASCEND_FA_RESULTS, else
    <repo>/out (one rule: plugin_utils/records.py results_dir, which the callback uses too)."""
    return records.results_dir(variables.get("fa_results_dir"), env, runner.REPO)


# ------------------------------------------------------------------------------------------------ playbooks
@contextmanager
def _interruptible() -> Iterator[list[bool]]:
    """A flag that Ctrl-C sets (ansible-runner's cancel_callback polls it and stops the run, exit 99)."""
    flag = [False]

    def handler(signum: int, frame: Any) -> None:
        if flag[0]:              # a second Ctrl-C: stop waiting for ansible to wind down
            raise KeyboardInterrupt
        flag[0] = True
        print("\nascend-fa: stopping the run (Ctrl-C again to quit now)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_inventory(inventory: str) -> str | None:
    if "," in inventory or os.path.exists(inventory):
        return None
    return (f"inventory {inventory} not found (from {os.getcwd()}); nothing was run. Fix: give -i an inventory "
            "file or folder that exists, or a host list such as 'node1,node2,'")


def _playbook_vars(a: argparse.Namespace) -> dict[str, Any]:
    """Variables the subcommand's own options set (they go before -e, so -e wins)."""
    out: dict[str, Any] = {}
    if getattr(a, "recipe", None):
        out["fa_recipe"] = a.recipe
    if getattr(a, "grid", None):
        out["fa_bench_grid"] = a.grid
    if getattr(a, "batch", None):
        out["fa_rollout_batch"] = parse_batch(a.batch)
    return out


def parse_batch(text: str) -> int | str | list[int | str]:
    """``--batch``: ``1`` -> 1, ``25%`` -> "25%", ``1,10%,25%`` -> [1, "10%", "25%"] (ansible's serial)."""
    items: list[int | str] = [int(p) if p.strip().isdigit() else p.strip() for p in text.split(",") if p.strip()]
    return items[0] if len(items) == 1 else items


def _run_stdout(result: Any) -> str:
    stdout = Path(result.artifact_dir or "") / "stdout"
    return stdout.read_text(errors="replace") if stdout.is_file() else ""


def no_hosts_message(inventory: str, group: str, limit: str | None) -> str:
    """The run's first play matched no host: nothing was done, which is an error, not a success."""
    where = f"group '{group}' of inventory {inventory}" + (f" with --limit {limit}" if limit else "")
    fix = ("Fix: put the hosts under group '" + group + "' in the inventory (or name their group with -e fa_hosts=...)"
           + (", or use a --limit that names hosts of that group" if limit else ""))
    return f"no host matched: {where} holds no host to run on; nothing was done. {fix}"


_PARSE_FAILED = re.compile(r"Failed to parse inventory with '([\w.]+)' plugin:?\s*(.*?)(?:\n\s*\n|\Z)", re.S)
_ORIGIN = re.compile(r"^Origin:\s*(\S+:\d+(?::\d+)?)", re.M)


def inventory_problem(text: str, inventory: str, group: str, limit: str | None) -> str | None:
    """What was wrong with the inventory, from ansible-playbook's output (ansible.cfg: ``[inventory]
    unparsed_is_failed``, ``any_unparsed_is_failed``, ``host_pattern_mismatch = error``); None when it was not that."""
    text = strip_controls(text)
    if re.search(r"failed to parse inventory source|Failed to parse inventory", text, re.I) and \
            re.search(r"\[ERROR\]|ERROR!", text):
        found = {plugin: " ".join(msg.split()) for plugin, msg in reversed(_PARSE_FAILED.findall(text))}
        prefer = ("yaml", "auto", "ini") if inventory.endswith((".yml", ".yaml", ".json")) else ("ini", "yaml", "auto")
        plugin = next((p for p in prefer if p in found), next(iter(found), ""))
        why = found.get(plugin, "")
        why = re.sub(r"\s*<<< caused by >>>\s*", ": ", why).split(" Origin:")[0].strip(" :.")
        origin = _ORIGIN.search(text)
        at = f" (at {origin.group(1)})" if origin else ""
        return (f"the inventory {inventory} could not be parsed" + (f" ({plugin} plugin): {why}" if why else "") + at
                + f"; nothing was run. Fix: correct the inventory; 'ansible-inventory -i {inventory} --graph' shows "
                  "what ansible makes of it")
    if re.search(r"Could not match supplied host pattern|leaves us with no hosts to target|"
                 r"does not match any hosts", text):
        if "provided hosts list is empty" in text:
            return (f"the inventory {inventory} holds no host at all (an empty file?); nothing was run. Fix: list the "
                    f"hosts under group '{group}' in it")
        return no_hosts_message(inventory, group, limit)
    return None


def _print_run_error(result: Any) -> None:
    """When the run ended without its recap: ansible's own words (quiet=True kept them in the artifacts)."""
    tail = _run_stdout(result).strip().splitlines()[-25:]
    print(f"ascend-fa: the run ended '{result.status}' (ansible-playbook rc {result.rc}) before its recap",
          file=sys.stderr)
    for line in tail:
        print(f"  {strip_controls(line, False)}", file=sys.stderr)


# ------------------------------------------------------------------------------------------------ pass-through
@dataclass(frozen=True)
class Passed:
    """An ansible-playbook option the playbook subcommands take and pass on as they are."""

    flags: tuple[str, ...]        # as ansible-playbook spells them; the first long one is what ansible-playbook gets
    metavar: str | None           # None: a flag without a value
    help: str
    exclusive: str | None = None  # mutually exclusive with the other options of that name (as in ansible-playbook)
    kind: type = str

    @property
    def long(self) -> str:
        return next(f for f in self.flags if f.startswith("--"))


# ansible-playbook's options (ansible-core 2.19 ``ansible-playbook --help``) that the CLI does not own. Owned: -i, -l,
# -t, --skip-tags, -C, -D, -e, -K (asked here; the password travels in a 0600 file), -f, -v, -h, --version and the
# playbook itself. tests/unit/test_cli_dropin.py fails when ansible-playbook has an option in neither list.
PASSED: tuple[Passed, ...] = (
    Passed(("--private-key", "--key-file"), "PRIVATE_KEY_FILE", "use this file to authenticate the connection"),
    Passed(("-u", "--user"), "REMOTE_USER", "connect as this user"),
    Passed(("-c", "--connection"), "CONNECTION", "connection type to use (default=ssh)"),
    Passed(("-T", "--timeout"), "TIMEOUT", "override the connection timeout in seconds", kind=int),
    Passed(("--ssh-common-args",), "SSH_COMMON_ARGS", "common arguments to pass to sftp/scp/ssh (e.g. ProxyCommand)"),
    Passed(("--sftp-extra-args",), "SFTP_EXTRA_ARGS", "extra arguments to pass to sftp only"),
    Passed(("--scp-extra-args",), "SCP_EXTRA_ARGS", "extra arguments to pass to scp only"),
    Passed(("--ssh-extra-args",), "SSH_EXTRA_ARGS", "extra arguments to pass to ssh only (e.g. -R)"),
    Passed(("-k", "--ask-pass"), None, "ask for the connection password (asked here, then given to ansible-playbook's "
           "prompt; never on a command line or in the artifacts)", exclusive="conn"),
    Passed(("--connection-password-file", "--conn-pass-file"), "CONNECTION_PASSWORD_FILE", "connection password file",
           exclusive="conn"),
    Passed(("-b", "--become"), None, "run operations with become (does not imply password prompting)"),
    Passed(("--become-method",), "BECOME_METHOD", "privilege escalation method to use (default=sudo)"),
    Passed(("--become-user",), "BECOME_USER", "run operations as this user (default=root)"),
    Passed(("--become-password-file", "--become-pass-file"), "BECOME_PASSWORD_FILE", "become password file",
           exclusive="become"),
    Passed(("--vault-id",), "VAULT_IDS", "the vault identity to use (repeatable; LABEL@prompt is asked here)"),
    Passed(("-J", "--ask-vault-pass", "--ask-vault-password"), None, "ask for the vault password (asked here, then "
           "given to ansible-playbook's prompt)", exclusive="vault"),
    Passed(("--vault-password-file", "--vault-pass-file"), "VAULT_PASSWORD_FILES", "vault password file (repeatable)",
           exclusive="vault"),
    Passed(("--flush-cache",), None, "clear the fact cache for every host in inventory"),
    Passed(("--force-handlers",), None, "run handlers even if a task fails"),
    Passed(("--start-at-task",), "START_AT_TASK", "start the playbook at the task matching this name"),
    Passed(("-M", "--module-path"), "MODULE_PATH", "prepend colon-separated path(s) to module library (repeatable)"),
    Passed(("--step",), None, "one-step-at-a-time: confirm each task before running (ansible-playbook asks on "
           "this terminal: no live table, no report)"),
    Passed(("--list-hosts",), None, "outputs a list of matching hosts; does not execute anything else"),
    Passed(("--list-tasks",), None, "list all tasks that would be executed"),
    Passed(("--list-tags",), None, "list all available tags"),
    Passed(("--syntax-check",), None, "perform a syntax check on the playbook, but do not execute it"),
)
# ansible-playbook prompts (ansible-core 2.19 lib/ansible/cli/__init__.py ask_passwords, setup_vault_secrets);
# ansible-runner answers them through pexpect when the CLI asked first
SSH_PROMPT = r"^SSH password:\s*?$"
VAULT_PROMPT = r"^Vault password:\s*?$"
# a token after -- that makes ansible-playbook ask or only print: then it runs on this terminal (run_direct)
_ASKS = re.compile(r"^(--ask-pass|--ask-become-pass|--ask-vault-pass(word)?|-[a-zA-Z]*[kKJ][a-zA-Z]*)$")


class _PassOn(argparse.Action):
    """Keeps an ansible-playbook option and its value, in the order given, for ansible-playbook."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        kept = list(getattr(namespace, self.dest, None) or [])
        kept.append((self.const, None if self.nargs == 0 else str(values)))
        setattr(namespace, self.dest, kept)


def passed_args(kept: Sequence[tuple[str, str | None]]) -> list[str]:
    """ansible-playbook argv for the kept options: ``--flag``, ``--option=value`` (a value may start with '-')."""
    return [opt if value is None else f"{opt}={value}" for opt, value in kept]


def _direct(kept: Sequence[tuple[str, str | None]], tail: Sequence[str]) -> bool:
    """ansible-playbook must run on this terminal: it will ask (--step, a prompt option after --) or only print."""
    return any(opt in runner.DIRECT_OPTIONS for opt, _ in kept) or \
        any(t.split("=", 1)[0] in runner.DIRECT_OPTIONS or _ASKS.match(t) for t in tail)


def vault_prompts(kept: Sequence[tuple[str, str | None]]) -> list[tuple[str, str]]:
    """(label, ansible-playbook's prompt regex) for each vault password ansible-playbook will ask for: -J, and every
    ``--vault-id LABEL@prompt`` (``prompt`` alone: label ``default``)."""
    out: list[tuple[str, str]] = []
    for opt, value in kept:
        if opt == "--ask-vault-pass":
            out.append(("", VAULT_PROMPT))
        elif opt == "--vault-id" and value is not None:
            label, sep, source = value.partition("@")
            label, source = (label, source) if sep else ("", label)
            if source == "prompt":
                out.append((label or "default", rf"^Vault password \({re.escape(label or 'default')}\):\s*?$"))
    return out


def _ask(prompt: str) -> str:
    return getpass.getpass(prompt)


def ask_passwords(a: argparse.Namespace, kept: Sequence[tuple[str, str | None]], asks: Mapping[str, Any]) -> \
        tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """What the run must ask before it starts (ansible-playbook under ansible-runner has no terminal to ask on):
    (secret variables for the 0600 file, prompt regex -> answer for ansible-runner, environment).

    -k (or ``ask_pass`` in ansible.cfg): "SSH password: ", answered to ansible-playbook's own prompt. -K (or
    ``become_ask_pass``): "BECOME password: ", as ansible_become_password in the 0600 file, ansible-playbook's prompt
    switched off; with -k an empty answer means the SSH password, as in ansible-playbook. -J / ``ask_vault_pass`` and
    ``--vault-id LABEL@prompt``: "Vault password: " / "Vault password (LABEL): ", answered to its prompt.
    """
    secrets: dict[str, Any] = {}
    passwords: dict[str, str] = {}
    env: dict[str, str] = {}
    opts = {opt for opt, _ in kept}
    ssh = None
    if "--ask-pass" in opts:
        ssh = passwords[SSH_PROMPT] = _ask("SSH password: ")
    if a.ask_become_pass or (asks.get("DEFAULT_BECOME_ASK_PASS") and "--become-password-file" not in opts):
        become = _ask("BECOME password[defaults to SSH password]: " if ssh is not None else "BECOME password: ")
        secrets["ansible_become_password"] = ssh if (ssh is not None and become == "") else become
        env["ANSIBLE_BECOME_ASK_PASS"] = "False"
    for label, pattern in vault_prompts(kept):
        passwords[pattern] = _ask(f"Vault password ({label}): " if label else "Vault password: ")
    return secrets, passwords, env


def _effective_kept(kept: Sequence[tuple[str, str | None]], asks: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """The kept options, with -k / -J added where ansible.cfg asks for them (ask_pass, ask_vault_pass): the CLI
    answers those prompts, so ansible-playbook must be expecting them."""
    opts = {opt for opt, _ in kept}
    out = list(kept)
    if asks.get("DEFAULT_ASK_PASS") and not ({"--ask-pass", "--connection-password-file"} & opts):
        out.append(("--ask-pass", None))
    if asks.get("DEFAULT_ASK_VAULT_PASS") and not ({"--ask-vault-pass", "--vault-password-file"} & opts):
        out.append(("--ask-vault-pass", None))
    return out


ASK_SETTINGS = ("DEFAULT_ASK_PASS", "DEFAULT_BECOME_ASK_PASS", "DEFAULT_ASK_VAULT_PASS")


# ------------------------------------------------------------------------------------------------ playbook runs
def cmd_playbook(a: argparse.Namespace) -> int:
    from ascend_fa import progress

    inventory = ",".join(a.inventory)
    try:
        playbook = runner.playbook_path(a.cmd)
    except runner.PlaybookMissing as exc:
        print(f"ascend-fa: {exc}", file=sys.stderr)
        return runner.EXIT_ERROR
    problem = next((p for p in map(_check_inventory, a.inventory) if p), None)
    if problem:
        print(f"ascend-fa {a.cmd}: {problem}", file=sys.stderr)
        return runner.EXIT_ERROR
    try:
        cli_vars, files = parse_extra_vars(a.extra_vars or [])
    except ValueError as exc:
        print(f"ascend-fa {a.cmd}: {exc}", file=sys.stderr)
        return runner.EXIT_BAD_OPTIONS
    variables = {**_playbook_vars(a), **cli_vars}
    typed = sorted(k for k in cli_vars if redact.is_secret_name(k))
    if typed:   # kept off ansible-playbook's argv and the artifacts; this command's own argv is the shell's
        print(f"ascend-fa {a.cmd}: warning: {', '.join(typed)} given on the command line, where ps shows it to "
              "every user of this machine while the run lasts. Fix: -K asks for the become password; put other "
              "secrets in a vault file (-e @secrets.yml)", file=sys.stderr)
    given = {**_file_vars(files), **variables}
    out_dir = results_dir(given)
    envvars = {"ASCEND_FA_RESULTS": str(out_dir)}
    kept, tail = list(a.passthrough or []), list(getattr(a, "tail", None) or [])
    run_args = {"limit": a.limit, "tags": _joined(a.tags), "skip_tags": _joined(a.skip_tags), "check": a.check,
                "extravars": variables or None, "forks": a.forks, "extra_files": files, "diff": a.diff,
                "verbosity": a.verbose or None}
    if _direct(kept, tail):   # ansible-playbook asks on this terminal itself (-K, -k, -J, --step) or only prints
        kept += [("--ask-become-pass", None)] if a.ask_become_pass else []
        return runner.run_direct(playbook, a.inventory, **run_args, extra_args=[*passed_args(kept), *tail],
                                 envvars=envvars)
    asks = runner.config_values(runner.config_file()[0], ASK_SETTINGS)
    kept = _effective_kept(kept, asks)
    secrets, passwords, env = ask_passwords(a, kept, asks)
    renderer = progress.make_renderer(a.progress, default_phase=a.cmd, title=f"ascend-fa {a.cmd}")
    findings = doctor.Collector() if a.cmd == "doctor" else None   # each host's findings, printed after the run
    with _interruptible() as stop, renderer:
        # secret variables (-e ansible_become_password=..., -K) reach ansible-playbook in a 0600 file, never argv
        result = runner.run_playbook(
            playbook, a.inventory, **run_args, on_event=_tee(renderer.on_event, findings),
            extra_args=[*passed_args(kept), *tail], envvars={**envvars, **env}, cancel=lambda: stop[0],
            secrets=secrets, passwords=passwords,
        )
    renderer.finish([f"artifacts: {result.artifact_dir}"])
    code = _outcome(a, result, inventory, str(given.get("fa_hosts") or "ascend"))
    if a.cmd in REPORT_AFTER and not a.no_report and result.hosts:
        _report_after_run(a, result, out_dir)
    if findings is not None:
        print("\n".join(doctor.report_lines(findings)))
        code = doctor.exit_code(findings, code)
    print(exit_line(a.cmd, code, result))
    return code


def _tee(*handlers: Any) -> Any:
    """One event handler for ansible-runner that hands each event to every handler given (None: skipped)."""
    def on_event(event: dict[str, Any]) -> None:
        for handler in handlers:
            if handler is not None:
                handler(event)
    return on_event


def _joined(values: Sequence[str] | None) -> str | None:
    """-t a -t b,c -> "a,b,c" (ansible-playbook's tags accumulate)."""
    return ",".join(v for v in values or [] if v) or None


def _outcome(a: argparse.Namespace, result: Any, inventory: str, group: str) -> int:
    """The exit status of a run: ansible-playbook's, made precise where its output tells more."""
    code = result.exit_code
    if code == runner.EXIT_OK and result.no_hosts:
        print(f"ascend-fa {a.cmd}: {no_hosts_message(inventory, group, a.limit)}", file=sys.stderr)
        return runner.EXIT_ERROR
    if code in (runner.EXIT_OK, runner.EXIT_INTERRUPTED) or result.recap:
        return code
    text = _run_stdout(result)
    problem = inventory_problem(text, inventory, group, a.limit)
    if problem:
        print(f"ascend-fa {a.cmd}: {problem}", file=sys.stderr)
        return runner.EXIT_PARSER_ERROR if "could not be parsed" in problem else runner.EXIT_ERROR
    usage = re.search(r"^ansible-playbook: error: (.+)$", strip_controls(text), re.M)
    if code == runner.EXIT_HOST_FAILED and usage:   # argparse's 2: an option after -- that ansible-playbook rejects
        print(f"ascend-fa {a.cmd}: ansible-playbook: {usage.group(1).strip()}; nothing was run. Fix: correct the "
              "options after '--' (ansible-playbook --help lists them)", file=sys.stderr)
        return runner.EXIT_BAD_OPTIONS
    _print_run_error(result)
    return code


_MEANING = {0: "ok", 1: "error", 2: "a host failed", 4: "a host unreachable, or a parse error", 5: "bad options",
            99: "interrupted", 250: "unexpected error"}


def exit_line(cmd: str, code: int, result: Any) -> str:
    """``ascend-fa deploy: exit 2 (a host failed): 1 failed, 0 unreachable of 2 hosts``."""
    return (f"ascend-fa {cmd}: exit {code} ({_MEANING.get(code, 'ansible-playbook')}): {len(result.failed_hosts)} "
            f"failed, {len(result.unreachable_hosts)} unreachable of {len(result.hosts)} hosts")


report_run_state = records.report_run_state   # a host's run state as the report shows it (one home: records.py)


def _report_after_run(a: argparse.Namespace, result: Any, out_dir: Path) -> None:
    from ansible_collections.ascend.fa.plugins.plugin_utils import report

    rep, paths = run_report(a, result, out_dir)
    report.print_terminal(rep)
    for path in paths:
        print(f"report: {path}")


def _written_since(path: Path, since: float) -> bool:
    try:
        return path.stat().st_mtime >= since - 1
    except OSError:
        return False


def run_report(a: argparse.Namespace, result: Any, out_dir: Path) -> tuple[Any, list[Path]]:
    """The run's fleet report and its files: the one the ``ascend.fa.fa_records`` callback wrote at the end of the run
    (``<results>/report.json``); built here from the run's events, facts and results only when no callback wrote one
    (it is not enabled, or an older collection)."""
    from ansible_collections.ascend.fa.plugins.plugin_utils import report

    written = out_dir / "report.json"
    if _written_since(written, result.started):
        return report.load_json(written), [p for p in (out_dir / "report.html", written) if p.is_file()]
    installs = a.cmd in ("deploy", "upgrade")
    run = {h: {"state": report_run_state(result.host_state(h), result.facts.get(h), a.check, installs),
               "message": result.messages.get(h)} for h in result.hosts}
    title = f"ascend-fa {a.cmd}: fleet report" + (" (check mode: nothing was changed)" if a.check else "")
    rep = report.build_report(runner.fact_cache_dir(), out_dir, hosts=result.hosts, run=run, title=title,
                              run_facts=result.facts)
    return rep, [report.write_html(rep, out_dir / "report.html"), report.write_json(rep, written)]


# ------------------------------------------------------------------------------------------------ report
def inventory_hosts(inventory: str | Sequence[str], limit: str | None = None) -> list[str]:
    """Host names of an inventory (``ansible-inventory --list`` through ansible-runner; several ``-i`` accumulate)."""
    import tempfile

    import ansible_runner

    inventories = [inventory] if isinstance(inventory, str) else list(inventory)
    args: list[str] = []
    for inv in inventories:
        args += ["-i", str(Path(inv).resolve()) if os.path.exists(inv) else inv]
    args += ["--list", *(["--limit", limit] if limit else [])]
    with tempfile.TemporaryDirectory(prefix="ascend-fa-inv-") as tmp:
        out, err, rc = ansible_runner.run_command(executable_cmd="ansible-inventory", cmdline_args=args,
                                                  envvars=runner.runner_envvars(), quiet=True, private_data_dir=tmp,
                                                  host_cwd=os.getcwd())
    if rc != 0:
        raise RuntimeError(f"ansible-inventory -i {' -i '.join(inventories)} failed (rc {rc}): "
                           f"{(err or out).strip()[-400:]}")
    text = out[out.find("{"):] if "{" in out else out   # warnings may come first
    data = json.loads(text)
    hosts = list((data.get("_meta") or {}).get("hostvars") or {})
    for group in data.values():
        if isinstance(group, dict):
            hosts += [h for h in group.get("hosts") or [] if h not in hosts]
    return hosts


def last_run_hosts(out_dir: Path) -> list[str] | None:
    """The hosts of the last run's report (``<results>/report.json``); None when there is none to read."""
    from ansible_collections.ascend.fa.plugins.plugin_utils import report

    path = out_dir / "report.json"
    if not path.is_file():
        return None
    try:
        return [h.host for h in report.load_json(path).hosts]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def cmd_report(a: argparse.Namespace) -> int:
    from ansible_collections.ascend.fa.plugins.plugin_utils import report

    facts_dir = Path(a.facts).expanduser() if a.facts else runner.fact_cache_dir()
    out_dir = Path(a.results).expanduser() if a.results else results_dir({})
    hosts: list[str] | None = None
    if a.hosts:
        hosts = [h for h in a.hosts.split(",") if h]
    elif a.inventory:
        try:
            hosts = inventory_hosts(a.inventory, a.limit)
        except (RuntimeError, ValueError) as exc:
            print(f"ascend-fa report: {exc}", file=sys.stderr)
            return runner.EXIT_ERROR
    else:   # the last run's hosts, not every host ever cached on this controller
        hosts = last_run_hosts(out_dir)
        if hosts is None:
            print(f"ascend-fa report: no report.json of a run in {out_dir}: reporting every cached host (-i INV: "
                  "that inventory's hosts)", file=sys.stderr)
    rep = report.build_report(facts_dir, out_dir, hosts=hosts)
    if a.json == "-":
        print(json.dumps(rep.as_dict(), indent=2, default=str))
    else:
        report.print_terminal(rep)
    for path, writer in ((a.html, report.write_html), (a.json if a.json != "-" else None, report.write_json)):
        if path:
            print(f"report: {writer(rep, path)}", file=sys.stderr if a.json == "-" else sys.stdout)
    if not rep.hosts:
        print(f"ascend-fa report: no host found (facts {facts_dir}, results {out_dir})", file=sys.stderr)
        return runner.EXIT_ERROR
    failed = any(h.status == "fail" for h in rep.hosts)
    return runner.EXIT_HOST_FAILED if a.strict and failed else 0


# ------------------------------------------------------------------------------------------------ parser
class Parser(argparse.ArgumentParser):
    """argparse with ansible-playbook's status for bad options, 5 (argparse's own 2 means "a host failed" here)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(runner.EXIT_BAD_OPTIONS, f"{self.prog}: error: {message}\n")


def _version() -> str:
    from ansible.release import __version__ as ansible_version

    return f"ascend-fa {__version__} (ansible-core {ansible_version})"


def _add_playbook_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--version", action="version", version=_version())
    p.add_argument("-i", "--inventory", "--inventory-file", action="append", required=True,
                   help="inventory file or folder, or host1,host2, (repeatable: they accumulate)")
    p.add_argument("-l", "--limit", help="further limit the hosts (ansible pattern)")
    p.add_argument("-t", "--tags", action="append", help="only these tags (comma-separated, repeatable)")
    p.add_argument("--skip-tags", action="append", help="skip these tags (repeatable)")
    p.add_argument("-C", "--check", action="store_true", help="dry run: change nothing on the hosts")
    p.add_argument("-D", "--diff", action="store_true", help="show what files would change")
    p.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS",
                   help="key=value, a JSON/YAML mapping, or @file (repeatable); variables named like secrets "
                        "(*pass*, *secret*, *token*, *key*) reach ansible-playbook in a private 0600 file, never argv")
    p.add_argument("-f", "--forks", type=int, help="hosts worked on in parallel (ansible.cfg: 16)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="ansible verbosity (kept in the artifacts)")
    p.add_argument("--progress", choices=["auto", "live", "plain", "quiet"], default="auto",
                   help="auto: live table on a terminal, one line per change otherwise")
    p.add_argument("--no-report", action="store_true", help="skip the fleet report after the run")
    groups: dict[str, Any] = {}
    passed = p.add_argument_group("ansible-playbook options, passed on as they are (and anything after --)")
    become = groups["become"] = passed.add_mutually_exclusive_group()
    become.add_argument("-K", "--ask-become-pass", action="store_true",
                        help="ask for the become (sudo) password; it stays off every command line and artifact")
    for opt in PASSED:
        if opt.exclusive and opt.exclusive not in groups:
            groups[opt.exclusive] = passed.add_mutually_exclusive_group()
        where = groups[opt.exclusive] if opt.exclusive else passed
        if opt.metavar is None:
            where.add_argument(*opt.flags, action=_PassOn, dest="passthrough", nargs=0, const=opt.long, help=opt.help)
        else:
            where.add_argument(*opt.flags, action=_PassOn, dest="passthrough", const=opt.long, metavar=opt.metavar,
                               type=opt.kind, help=opt.help)


def _add_playbook_commands(sub: Any) -> None:
    for name, text in PLAYBOOK_COMMANDS.items():
        p = sub.add_parser(name, help=text, description=text, epilog=EXIT_CODES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_playbook_options(p)
        if name in ("deploy", "upgrade"):
            p.add_argument("--recipe", help="release recipe to deploy (fa_recipe), e.g. ops-transformer-v9.0.1")
        if name == "upgrade":
            p.add_argument("--batch", help="rolling batches (fa_rollout_batch): 1, 25%%, or 1,10%%,25%% (canary first)")
        if name == "bench":
            p.add_argument("--grid", choices=["small", "seed"], help="fa_bench.py grid (fa_bench_grid; default small)")
        p.set_defaults(func=cmd_playbook, passthrough=[])


def _add_report(sub: Any) -> None:
    r = sub.add_parser("report", help="the fleet report from cached facts and results (terminal, HTML, JSON)")
    r.add_argument("--facts", help="fact cache folder (default: ansible.cfg's, ~/.cache/ascend-fa/facts)")
    r.add_argument("--results", help="results folder (default: $ASCEND_FA_RESULTS or <repo>/out)")
    r.add_argument("--html", help="write the self-contained HTML page here")
    r.add_argument("--json", help="write the report as JSON here ('-': to stdout, instead of the table)")
    r.add_argument("-i", "--inventory", action="append",
                   help="this inventory's hosts (repeatable); default: the hosts of the last run's report.json")
    r.add_argument("-l", "--limit", help="with -i: further limit the hosts")
    r.add_argument("--hosts", help="only these hosts (comma-separated)")
    r.add_argument("--strict", action="store_true", help="exit 2 when a host failed (as ansible-playbook)")
    r.set_defaults(func=cmd_report)


def _add_compat(sub: Any) -> None:
    c = sub.add_parser("compat", help="check a driver/CANN/SoC/tag/torch_npu combination against the data")
    c.add_argument("--driver", required=True)
    c.add_argument("--cann", required=True)
    c.add_argument("--soc", required=True, help="SoC name (ascend910b3, ascend910_9392) or --soc family")
    c.add_argument("--tag", help="ops-transformer tag, e.g. v9.0.1")
    c.add_argument("--firmware")
    c.add_argument("--torch-npu", dest="torch_npu")
    c.add_argument("--torch")
    c.add_argument("--matrix", help="another compat.yml")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_compat)


def _add_sim(sub: Any) -> None:
    s = sub.add_parser("sim", help="the simulated fleet (podman containers standing in for Atlas nodes)")
    ssub = s.add_subparsers(dest="sim_cmd", required=True)
    sc = ssub.add_parser("create", help="start simulated hosts; writes DIR/inventory.yml")
    sc.add_argument("--hosts", type=int, default=4)
    sc.add_argument("--dir", required=True)
    sc.add_argument("--models", help="comma-separated, cycled over hosts: 910B3,A3-9392,310P3,...")
    sc.add_argument("--octet", type=int, default=2, help="hosts get 127.0.<octet>.N")
    sc.add_argument("--npus", type=int, default=8, help="NPUs per host")
    sc.add_argument("--layouts", help="CANN layouts, cycled over hosts: toolkit (ascend-toolkit/<ver>) or cann (8.5+)")
    sd = ssub.add_parser("destroy", help="remove the fleet's containers (the folder stays)")
    sd.add_argument("--dir", required=True)
    sf = ssub.add_parser("inject-fault", help="e.g. card-health npu=3 level=Alarm; corrupt-lib; vendor-not-loaded; "
                                              "kernel-bin-missing; build-offline; clear (all: docs/faults.md)")
    sf.add_argument("--dir", required=True)
    sf.add_argument("host", help="name, index (1..N) or address")
    sf.add_argument("fault")
    sf.add_argument("param", nargs="*", help="key=value")
    sl = ssub.add_parser("list", help="fleets known to podman")
    sl.add_argument("--dir")
    s.set_defaults(func=cmd_sim)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="ascend-fa", description=__doc__, epilog=EXIT_CODES,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"ascend-fa {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    extensions = _has_module("ascend_fa.explain")
    _add_playbook_commands(sub)
    _add_report(sub)
    _add_compat(sub)
    _add_sim(sub)
    if extensions:
        from ascend_fa import explain

        explain.register(sub)   # explain (known errors)
    return p


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def split_tail(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the CLI's own arguments, what follows ``--`` for ansible-playbook as it is) for a playbook subcommand."""
    args = list(argv)
    if "--" not in args:
        return args, []
    cut = args.index("--")
    command = next((t for t in args[:cut] if not t.startswith("-")), None)
    return (args[:cut], args[cut + 1:]) if command in PLAYBOOK_COMMANDS else (args, [])


def main(argv: list[str] | None = None) -> int:
    head, tail = split_tail(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(head)
    if tail and args.func is not cmd_playbook:
        parser.error(f"'--' passes options on to ansible-playbook; 'ascend-fa {args.cmd}' runs none")
    args.tail = tail
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("ascend-fa: interrupted", file=sys.stderr)
        return runner.EXIT_INTERRUPTED
    except Exception:  # noqa: BLE001 - ansible-playbook's contract: a bug is 250 with its traceback, not a crash
        traceback.print_exc()
        print("ascend-fa: unexpected error (the traceback above); please report it", file=sys.stderr)
        return runner.EXIT_UNEXPECTED


if __name__ == "__main__":
    sys.exit(main())
