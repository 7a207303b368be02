"""The ``ascend-fa`` command line: deploy, verify and report FlashAttention on a fleet of Atlas NPU servers.

Playbook subcommands (deploy, preflight, verify, upgrade, rollback, bench, doctor) run the repo's playbooks through
ansible-runner with live per-host progress, then print the fleet report and write it as HTML and JSON.
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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ansible_collections.ascend.fa.plugins.plugin_utils import compat, redact
from ansible_collections.ascend.fa.plugins.plugin_utils.safetext import strip_controls

from ascend_fa import __version__

EXIT_CODES = """exit codes (playbook subcommands):
  0        every host ok
  1..125   that many hosts failed or were unreachable (125: 125 or more)
  126      the run did not complete with no host failed (missing playbook or inventory, syntax error, ...)
  130      interrupted
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
    """Where the roles put per-host results: -e fa_results_dir, else $ASCEND_FA_RESULTS, else <repo>/out."""
    from ascend_fa.runner import REPO

    env = os.environ if env is None else env
    value = variables.get("fa_results_dir") or env.get("ASCEND_FA_RESULTS") or str(REPO / "out")
    return Path(str(value)).expanduser().resolve()


# ------------------------------------------------------------------------------------------------ playbooks
@contextmanager
def _interruptible() -> Iterator[list[bool]]:
    """A flag that Ctrl-C sets (ansible-runner's cancel_callback polls it and stops the run, exit 130)."""
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
    return f"inventory {inventory} not found"


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
    """When no host failed yet the run did: ansible's own words (quiet=True kept them in the artifacts)."""
    tail = _run_stdout(result).strip().splitlines()[-25:]
    print(f"ascend-fa: the run ended '{result.status}' (ansible-playbook rc {result.rc}) with no failed host", file=sys.stderr)
    for line in tail:
        print(f"  {line}", file=sys.stderr)


def cmd_playbook(a: argparse.Namespace) -> int:
    from ascend_fa import progress, runner

    try:
        playbook = runner.playbook_path(a.cmd)
    except runner.PlaybookMissing as exc:
        print(f"ascend-fa: {exc}", file=sys.stderr)
        return runner.EXIT_NOT_RUN
    problem = _check_inventory(a.inventory)
    if problem:
        print(f"ascend-fa {a.cmd}: {problem}", file=sys.stderr)
        return runner.EXIT_NOT_RUN
    try:
        cli_vars, files = parse_extra_vars(a.extra_vars or [])
    except ValueError as exc:
        print(f"ascend-fa {a.cmd}: {exc}", file=sys.stderr)
        return 2
    variables = {**_playbook_vars(a), **cli_vars}
    typed = sorted(k for k in cli_vars if redact.is_secret_name(k))
    if typed:   # kept off ansible-playbook's argv and the artifacts; this command's own argv is the shell's
        print(f"ascend-fa {a.cmd}: warning: {', '.join(typed)} given on the command line, where ps shows it to "
              "every user of this machine while the run lasts. Fix: -K asks for the become password; put other "
              "secrets in a vault file (-e @secrets.yml)", file=sys.stderr)
    secrets = {"ansible_become_password": getpass.getpass("BECOME password: ")} if a.ask_become_pass else {}
    given = {**_file_vars(files), **variables}
    out_dir = results_dir(given)
    envvars = {"ASCEND_FA_RESULTS": str(out_dir)}
    renderer = progress.make_renderer(a.progress, default_phase=a.cmd, title=f"ascend-fa {a.cmd}")
    with _interruptible() as stop, renderer:
        # secret variables (-e ansible_become_password=..., -K) reach ansible-playbook in a 0600 file, never argv
        result = runner.run_playbook(
            playbook, a.inventory, limit=a.limit, tags=a.tags, skip_tags=a.skip_tags, check=a.check,
            extravars=variables or None, forks=a.forks, on_event=renderer.on_event, extra_files=files,
            diff=a.diff, verbosity=a.verbose or None, envvars=envvars, cancel=lambda: stop[0], secrets=secrets,
        )
    renderer.finish([f"artifacts: {result.artifact_dir}"])
    group = str(given.get("fa_hosts") or "ascend")
    if result.exit_code == 0 and result.no_hosts:
        print(f"ascend-fa {a.cmd}: {no_hosts_message(a.inventory, group, a.limit)}", file=sys.stderr)
        return runner.EXIT_NOT_RUN
    if result.exit_code >= runner.EXIT_NOT_RUN and result.exit_code != runner.EXIT_CANCELED:
        problem = inventory_problem(_run_stdout(result), a.inventory, group, a.limit)
        if problem:
            print(f"ascend-fa {a.cmd}: {problem}", file=sys.stderr)
            return runner.EXIT_NOT_RUN
        _print_run_error(result)
    if a.cmd in REPORT_AFTER and not a.no_report and result.hosts:
        _report_after_run(a, result, out_dir)
    return result.exit_code


def report_run_state(state: str | None, facts: Mapping[str, Any] | None, check: bool, installs: bool) -> str | None:
    """A host's run state as the report shows it.

    In check mode "changed" means "would change". After a deploy or upgrade, a host that preflight found needing the
    package but that never reached the rollout (a batch in which every host failed ends the play, or the tags left
    the install out) is "not installed", not "ok".
    """
    facts = facts or {}
    if installs and state == "ok" and facts.get("fa_needs_install") is True and "fa_rollout_result" not in facts:
        return "not installed"
    return "would change" if check and state == "changed" else state


def _report_after_run(a: argparse.Namespace, result: Any, out_dir: Path) -> None:
    from ansible_collections.ascend.fa.plugins.plugin_utils import report

    from ascend_fa import runner

    installs = a.cmd in ("deploy", "upgrade")
    run = {h: {"state": report_run_state(result.host_state(h), result.facts.get(h), a.check, installs),
               "message": result.messages.get(h)} for h in result.hosts}
    title = f"ascend-fa {a.cmd}: fleet report" + (" (check mode: nothing was changed)" if a.check else "")
    rep = report.build_report(runner.fact_cache_dir(), out_dir, hosts=result.hosts, run=run, title=title,
                              run_facts=result.facts)
    report.print_terminal(rep)
    html_path = report.write_html(rep, out_dir / "report.html")
    json_path = report.write_json(rep, out_dir / "report.json")
    print(f"report: {html_path}\nreport: {json_path}")


# ------------------------------------------------------------------------------------------------ report
def inventory_hosts(inventory: str, limit: str | None = None) -> list[str]:
    """Host names of an inventory (``ansible-inventory --list`` through ansible-runner)."""
    import tempfile

    import ansible_runner

    from ascend_fa.runner import REPO, runner_envvars

    args = ["-i", str(Path(inventory).resolve()) if os.path.exists(inventory) else inventory, "--list"]
    args += ["--limit", limit] if limit else []
    with tempfile.TemporaryDirectory(prefix="ascend-fa-inv-") as tmp:
        out, err, rc = ansible_runner.run_command(executable_cmd="ansible-inventory", cmdline_args=args,
                                                  envvars=runner_envvars(), quiet=True, private_data_dir=tmp,
                                                  host_cwd=str(REPO))
    if rc != 0:
        raise RuntimeError(f"ansible-inventory -i {inventory} failed (rc {rc}): {(err or out).strip()[-400:]}")
    text = out[out.find("{"):] if "{" in out else out   # warnings may come first
    data = json.loads(text)
    hosts = list((data.get("_meta") or {}).get("hostvars") or {})
    for group in data.values():
        if isinstance(group, dict):
            hosts += [h for h in group.get("hosts") or [] if h not in hosts]
    return hosts


def cmd_report(a: argparse.Namespace) -> int:
    from ansible_collections.ascend.fa.plugins.plugin_utils import report

    from ascend_fa import runner

    hosts: list[str] | None = None
    if a.hosts:
        hosts = [h for h in a.hosts.split(",") if h]
    elif a.inventory:
        try:
            hosts = inventory_hosts(a.inventory, a.limit)
        except (RuntimeError, ValueError) as exc:
            print(f"ascend-fa report: {exc}", file=sys.stderr)
            return 2
    facts_dir = Path(a.facts).expanduser() if a.facts else runner.fact_cache_dir()
    out_dir = Path(a.results).expanduser() if a.results else results_dir({})
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
        return 1
    failed = sum(1 for h in rep.hosts if h.status == "fail")
    return min(failed, runner.MAX_EXIT) if a.strict else 0


# ------------------------------------------------------------------------------------------------ parser
def _add_playbook_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--inventory", required=True, help="inventory file (or host1,host2,)")
    p.add_argument("-l", "--limit", help="further limit the hosts (ansible pattern)")
    p.add_argument("-t", "--tags", help="only these tags (comma-separated)")
    p.add_argument("--skip-tags", help="skip these tags")
    p.add_argument("-C", "--check", action="store_true", help="dry run: change nothing on the hosts")
    p.add_argument("-D", "--diff", action="store_true", help="show what files would change")
    p.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS",
                   help="key=value, a JSON/YAML mapping, or @file (repeatable); variables named like secrets "
                        "(*pass*, *secret*, *token*, *key*) reach ansible-playbook in a private 0600 file, never argv")
    p.add_argument("-K", "--ask-become-pass", action="store_true",
                   help="ask for the become (sudo) password; it stays off every command line and artifact")
    p.add_argument("-f", "--forks", type=int, help="hosts worked on in parallel (ansible.cfg: 16)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="ansible verbosity (kept in the artifacts)")
    p.add_argument("--progress", choices=["auto", "live", "plain", "quiet"], default="auto",
                   help="auto: live table on a terminal, one line per change otherwise")
    p.add_argument("--no-report", action="store_true", help="skip the fleet report after the run")


def _add_playbook_commands(sub: Any, skip: frozenset[str] = frozenset()) -> None:
    for name, text in PLAYBOOK_COMMANDS.items():
        if name in skip:
            continue
        p = sub.add_parser(name, help=text, description=text, epilog=EXIT_CODES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_playbook_options(p)
        if name in ("deploy", "upgrade"):
            p.add_argument("--recipe", help="release recipe to deploy (fa_recipe), e.g. ops-transformer-v9.0.1")
        if name == "upgrade":
            p.add_argument("--batch", help="rolling batches (fa_rollout_batch): 1, 25%%, or 1,10%%,25%% (canary first)")
        if name == "bench":
            p.add_argument("--grid", choices=["small", "seed"], help="fa_bench.py grid (fa_bench_grid; default small)")
        p.set_defaults(func=cmd_playbook)


def _add_report(sub: Any) -> None:
    r = sub.add_parser("report", help="the fleet report from cached facts and results (terminal, HTML, JSON)")
    r.add_argument("--facts", help="fact cache folder (default: ansible.cfg's, ~/.cache/ascend-fa/facts)")
    r.add_argument("--results", help="results folder (default: $ASCEND_FA_RESULTS or <repo>/out)")
    r.add_argument("--html", help="write the self-contained HTML page here")
    r.add_argument("--json", help="write the report as JSON here ('-': to stdout, instead of the table)")
    r.add_argument("-i", "--inventory", help="only the hosts of this inventory")
    r.add_argument("-l", "--limit", help="with -i: further limit the hosts")
    r.add_argument("--hosts", help="only these hosts (comma-separated)")
    r.add_argument("--strict", action="store_true", help="exit with the number of failed hosts")
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
    p = argparse.ArgumentParser(prog="ascend-fa", description=__doc__, epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"ascend-fa {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    extensions = _has_module("ascend_fa.explain")
    # ascend_fa.doctor prints each host's findings and fixes: when it is there, its doctor replaces the generic one
    _add_playbook_commands(sub, skip=frozenset({"doctor"}) if extensions and _has_module("ascend_fa.doctor") else frozenset())
    _add_report(sub)
    _add_compat(sub)
    _add_sim(sub)
    if extensions:
        from ascend_fa import explain

        explain.register(sub)   # explain (known errors), and doctor when not added above
    return p


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
