# Copyright: ascend-fa contributors
# Apache-2.0
"""Benchmark callback: wall time of every task, summed per role and per pipeline phase, written as JSON.

Enabled only by the fleet benchmark (``benchmarks/fleet.py``):

    ANSIBLE_CALLBACK_PLUGINS=benchmarks/callback_plugins ANSIBLE_CALLBACKS_ENABLED=phase_timer \
    PHASE_TIMER_OUT=/tmp/phases.json ansible-playbook deploy_fa.yml -i inventory.yml

A task lasts from its start until the next task (or play, or the end of the run) starts: under the linear strategy
that is the time the controller spends on it for all hosts, so the tasks add up to the run's wall time. The time
before the first task (inventory and playbook loading) is reported as ``startup``.
"""

from __future__ import annotations

import json
import os
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
    "ascend_preflight": "preflight",
    "ops_transformer_fetch": "fetch",
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

    # ------------------------------------------------------------------ helpers
    def _close(self, now):
        if self._current is not None:
            self._current["seconds"] = round(now - self._current.pop("_start"), 4)
            self._tasks.append(self._current)
            self._current = None

    def _start(self, task, kind):
        now = time.monotonic()
        self._close(now)
        if self._first_task is None:
            self._first_task = now
        role = task._role.get_name() if getattr(task, "_role", None) else None
        if role in PHASES:
            self._phase = PHASES[role]
        name = task.get_name()
        if role and name.startswith(f"{role} : "):
            name = name[len(role) + 3:]
        self._current = {"name": name, "role": role or "", "phase": self._phase if role else "play",
                         "kind": kind, "action": task.action, "hosts": {}, "_start": now}

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
        roles, phases = {}, {}
        for t in self._tasks:
            roles[t["role"] or "(play)"] = roles.get(t["role"] or "(play)", 0.0) + t["seconds"]
            phases[t["phase"]] = phases.get(t["phase"], 0.0) + t["seconds"]
        first = self._first_task if self._first_task is not None else end
        out = {
            "wall_seconds": round(end - self._t0, 3),
            "startup_seconds": round(first - self._t0, 3),
            "phases": {k: round(v, 3) for k, v in phases.items()},
            "roles": {k: round(v, 3) for k, v in roles.items()},
            "tasks": self._tasks,
        }
        path = os.environ.get("PHASE_TIMER_OUT", "phase_timer.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=1)
