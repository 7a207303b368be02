"""``ascend-fa doctor -i INV``: run playbooks/doctor.yml and print, per host, what is wrong and the fix.

The diagnosis itself happens in the playbook (role ``fa_doctor``: drift of the installed package, the
compatibility data, the card checklist and the environment check in a fresh login shell, module
``fa_env_check``); this module only runs it, through :func:`ascend_fa.runner.run_playbook` when that module is
there (ansible-runner), else through ``ansible-playbook``, and prints the findings it reported.

Healthy hosts print nothing but one ``ok`` line each. Exit code: the number of hosts with findings of severity
error (or that failed or were unreachable), capped at 125; 126 when the run did not complete.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ascend_fa import PROJECT_ROOT

PLAYBOOK = PROJECT_ROOT / "playbooks" / "doctor.yml"
FINDINGS_FACT = "fa_doctor_findings"
MAX_EXIT = 125
EXIT_NOT_RUN = 126


def problem_line(host: str, p: Mapping[str, Any]) -> str:
    return (f"{host}: [{p.get('severity', 'error')}] {p.get('what', '')} (found {p.get('found', '')}; "
            f"needed {p.get('needed', '')}). Fix: {p.get('fix', '')}")


class Collector:
    """Keeps each host's ``fa_doctor_findings`` (set_fact events) and its failure message, if any."""

    def __init__(self) -> None:
        self.findings: dict[str, list[dict[str, Any]]] = {}
        self.failed: dict[str, str] = {}
        self.hosts: list[str] = []

    def __call__(self, event: dict[str, Any]) -> None:
        data = event.get("event_data") or {}
        host = data.get("host")
        kind = event.get("event", "")
        if not host or not kind.startswith("runner_on_"):
            return
        if host not in self.hosts:
            self.hosts.append(host)
        res = data.get("res") if isinstance(data.get("res"), Mapping) else {}
        facts = res.get("ansible_facts") if isinstance(res.get("ansible_facts"), Mapping) else {}
        if kind == "runner_on_ok" and FINDINGS_FACT in facts:
            self.findings[host] = list(facts[FINDINGS_FACT] or [])
        if kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            self.failed[host] = str(res.get("msg") or "failed")


def report_lines(collector: Collector) -> list[str]:
    lines: list[str] = []
    for host in collector.hosts:
        found = collector.findings.get(host)
        if found:
            lines += [problem_line(host, p) for p in found]
        elif host in collector.failed and found is None:
            lines.append(f"{host}: the doctor could not finish: {collector.failed[host]}")
        elif host not in collector.failed:
            lines.append(f"{host}: ok")
    return lines


def exit_code(collector: Collector) -> int:
    bad = {h for h, f in collector.findings.items() if any(p.get("severity") == "error" for p in f)}
    bad |= set(collector.failed)
    return min(len(bad), MAX_EXIT)


def _extra_vars(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        out += ["-e", v]
    return out


def run_with_runner(a: argparse.Namespace, collector: Collector) -> int | None:
    """Through ascend_fa.runner (ansible-runner); None when that is not available here."""
    if importlib.util.find_spec("ascend_fa.runner") is None or importlib.util.find_spec("ansible_runner") is None:
        return None
    from ascend_fa import runner

    result = runner.run_playbook(PLAYBOOK, a.inventory, limit=a.limit, on_event=collector,
                                 extra_args=_extra_vars(a.extra_vars), verbosity=a.verbose or None)
    if result.exit_code != 0 and not collector.hosts:   # ansible-playbook's status: no host ran, and not ok
        print(f"ascend-fa doctor: the run ended '{result.status}' (rc {result.rc}); artifacts: {result.artifact_dir}",
              file=sys.stderr)
        return EXIT_NOT_RUN
    return 0


def run_with_ansible_playbook(a: argparse.Namespace, collector: Collector) -> int:
    """Fallback: ansible-playbook with the JSON callback, events rebuilt from its output."""
    exe = Path(sys.executable).parent / "ansible-playbook"
    cmd = [str(exe) if exe.exists() else "ansible-playbook", "-i", a.inventory, str(PLAYBOOK),
           *(["--limit", a.limit] if a.limit else []), *_extra_vars(a.extra_vars)]
    env = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT_ROOT / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "json"}
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)
    try:
        data = json.loads(proc.stdout[proc.stdout.find("{"):])
    except ValueError:
        print(f"ascend-fa doctor: ansible-playbook rc {proc.returncode}: {(proc.stderr or proc.stdout)[-2000:]}",
              file=sys.stderr)
        return EXIT_NOT_RUN
    for play in data.get("plays") or []:
        for task in play.get("tasks") or []:
            for host, res in (task.get("hosts") or {}).items():
                kind = "runner_on_unreachable" if res.get("unreachable") else \
                    "runner_on_failed" if res.get("failed") else "runner_on_ok"
                collector({"event": kind, "event_data": {"host": host, "res": res}})
    return 0


def cmd_doctor(a: argparse.Namespace) -> int:
    if not PLAYBOOK.is_file():
        print(f"ascend-fa doctor: {PLAYBOOK} is missing", file=sys.stderr)
        return EXIT_NOT_RUN
    collector = Collector()
    rc = run_with_runner(a, collector)
    if rc is None:
        rc = run_with_ansible_playbook(a, collector)
    if rc:
        return rc
    for line in report_lines(collector):
        print(line)
    return exit_code(collector)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    d = subparsers.add_parser(
        "doctor", help="diagnose hosts where FlashAttention is not working (cause and fix per host)",
        description="Run playbooks/doctor.yml: drift of the installed package, the compatibility data, the cards, and "
                    "the environment in a fresh login shell (CANN/NNAL/package set_env, ASCEND_OPP_PATH, "
                    "load_priority, ld.so cache, dlopen, pip check, torch/torch_npu pair). Prints each finding "
                    "with its fix; healthy hosts print 'ok'.")
    d.add_argument("-i", "--inventory", required=True, help="inventory file (or host1,host2,)")
    d.add_argument("-l", "--limit", help="further limit the hosts (ansible pattern)")
    d.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS", help="as ansible-playbook -e")
    d.add_argument("-v", "--verbose", action="count", default=0)
    d.set_defaults(func=cmd_doctor)
    return d
