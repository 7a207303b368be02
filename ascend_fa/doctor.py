"""``ascend-fa doctor -i INV``: what is wrong on each host and the fix, after playbooks/doctor.yml ran.

The diagnosis itself happens in the playbook (role ``fa_doctor``: drift of the installed package, the
compatibility data, the card checklist and the environment check in a fresh login shell, module
``fa_env_check``). The CLI runs it as any playbook subcommand (every ansible-playbook option, the user's config:
``ascend_fa/cli.py``) with a :class:`Collector` on the event stream, then prints the findings it reported.

Healthy hosts print nothing but one ``ok`` line each. Exit status as ansible-playbook's: 2 when a host has a finding
of severity error (or failed), 4 when one was unreachable, else the run's own status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FINDINGS_FACT = "fa_doctor_findings"
EXIT_HOST_FAILED = 2   # ascend_fa/runner.py EXIT_HOST_FAILED: ansible-playbook's "a host failed"


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


def exit_code(collector: Collector, run_code: int) -> int:
    """The run's own status, or 2 (a host failed) when it was 0 and a host has a finding of severity error."""
    bad = any(any(p.get("severity") == "error" for p in f) for f in collector.findings.values())
    return EXIT_HOST_FAILED if run_code == 0 and (bad or collector.failed) else run_code
