# Copyright: ascend-fa contributors
# Apache-2.0
"""Benchmark callback: wall time of every task, summed per role and per pipeline phase, written as JSON.

Enabled only by the fleet benchmark (``benchmarks/fleet.py``):

    ANSIBLE_CALLBACK_PLUGINS=benchmarks/callback_plugins ANSIBLE_CALLBACKS_ENABLED=phase_timer \
    PHASE_TIMER_OUT=/tmp/phases.json ansible-playbook deploy_fa.yml -i inventory.yml

A task lasts from its start until the next task (or play, or the end of the run) starts: under the linear strategy
that is the time the controller spends on it for all hosts, so the tasks add up to the run's wall time. The time
before the first task (inventory and playbook loading) is reported as ``startup``.

CPU per task, measured at the same boundaries: the controller's (this process and its reaped children: the
workers, their SSH clients, local module runs) and, when ``PHASE_TIMER_CPU_FILES`` names a JSON list of cgroup CPU
accounting files (cgroup v1 ``cpuacct.usage`` in ns, or v2 ``cpu.stat``), the managed hosts' (the simulated hosts'
containers). Workers are reaped shortly after their task, so a task's controller CPU can spill into the next one.
"""

from __future__ import annotations

import json
import os
import resource
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: phase_timer
type: aggregate
short_description: per-task, per-role and per-phase wall time as JSON (ascend-fa benchmarks)
description:
  - Writes C(PHASE_TIMER_OUT) (default C(phase_timer.json)) at the end of the run.
requirements:
  - enabled in ANSIBLE_CALLBACKS_ENABLED
"""

# Role -> phase of the pipeline. fa_common is a dependency of every role: its tasks count for the phase they run in.
PHASES = {
    "fa_preflight": "preflight",
    "fa_fetch": "fetch",
    "fa_build": "build",
    "fa_install": "install",
    "fa_verify": "verify",
    "fa_rollout": "rollout",
}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "phase_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._t0 = time.monotonic()
        self._first_task = None
        self._current = None
        self._phase = "preflight"
        self._tasks = []
        self._cpu_files = []
        path = os.environ.get("PHASE_TIMER_CPU_FILES")
        if path:
            with open(path, encoding="utf-8") as fh:
                self._cpu_files = json.load(fh)
        self._cpu0 = self._cpu()

    def _cpu(self):
        """(controller CPU s, managed hosts' CPU s) so far."""
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        controller = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
        nodes = 0.0
        for path in self._cpu_files:
            try:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                continue
            if path.endswith("cpuacct.usage"):
                nodes += int(text) / 1e9
            else:
                for line in text.splitlines():
                    if line.startswith("usage_usec "):
                        nodes += int(line.split()[1]) / 1e6
        return controller, nodes

    # ------------------------------------------------------------------ helpers
    def _close(self, now):
        if self._current is not None:
            cpu = self._cpu()
            start_cpu = self._current.pop("_cpu")
            self._current["seconds"] = round(now - self._current.pop("_start"), 4)
            self._current["controller_cpu"] = round(cpu[0] - start_cpu[0], 4)
            self._current["node_cpu"] = round(cpu[1] - start_cpu[1], 4)
            self._tasks.append(self._current)
            self._current = None

    def _start(self, task, kind):
        now = time.monotonic()
        self._close(now)
        if self._first_task is None:
            self._first_task = now
        role = task._role.get_name() if getattr(task, "_role", None) else None
        if role:
            role = role.rpartition(".")[2]      # ascend.fa.fa_build -> fa_build
        if role in PHASES:
            self._phase = PHASES[role]
        name = task.get_name()
        if role and name.startswith(f"{role} : "):
            name = name[len(role) + 3:]
        self._current = {"name": name, "role": role or "", "phase": self._phase if role else "play",
                         "kind": kind, "action": task.action, "hosts": {}, "_start": now, "_cpu": self._cpu()}

    def _count(self, result, status):
        if self._current is not None:
            hosts = self._current["hosts"]
            hosts[status] = hosts.get(status, 0) + 1

    # ------------------------------------------------------------------ events
    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task, "task")

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task, "handler")

    def v2_playbook_on_play_start(self, play):
        self._close(time.monotonic())

    def v2_runner_on_ok(self, result, **kwargs):
        self._count(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._count(result, "failed")

    def v2_runner_on_skipped(self, result, **kwargs):
        self._count(result, "skipped")

    def v2_runner_on_unreachable(self, result, **kwargs):
        self._count(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        end = time.monotonic()
        self._close(end)
        roles, phases, phases_cpu = {}, {}, {}
        for t in self._tasks:
            roles[t["role"] or "(play)"] = roles.get(t["role"] or "(play)", 0.0) + t["seconds"]
            phases[t["phase"]] = phases.get(t["phase"], 0.0) + t["seconds"]
            cpu = phases_cpu.setdefault(t["phase"], {"controller": 0.0, "node": 0.0})
            cpu["controller"] += t["controller_cpu"]
            cpu["node"] += t["node_cpu"]
        first = self._first_task if self._first_task is not None else end
        total = self._cpu()
        out = {
            "wall_seconds": round(end - self._t0, 3),
            "startup_seconds": round(first - self._t0, 3),
            "controller_cpu_seconds": round(total[0] - self._cpu0[0], 3),
            "node_cpu_seconds": round(total[1] - self._cpu0[1], 3),
            "phases": {k: round(v, 3) for k, v in phases.items()},
            "phases_cpu": {k: {kk: round(vv, 3) for kk, vv in v.items()} for k, v in phases_cpu.items()},
            "roles": {k: round(v, 3) for k, v in roles.items()},
            "tasks": self._tasks,
        }
        path = os.environ.get("PHASE_TIMER_OUT", "phase_timer.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=1)
