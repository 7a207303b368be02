# Copyright: ascend-fa contributors
# Apache-2.0
"""Callback ``ascend.fa.fa_records``: the run's records (fleet report, JUnit XML) at the end of every playbook run."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fa_records
type: aggregate
short_description: Write the ascend-fa fleet report and JUnit XML at the end of every playbook run
description:
  - At the end of every playbook run, whoever started it (C(ansible-playbook), ansible-runner, AWX, the C(ascend-fa)
    command), writes C(report.json), C(report.html) and C(junit.xml) into the run's results folder and prints one
    line per file written.
  - The results folder is C(fa_results_dir) as the first play resolves it for its first host (extra vars, inventory,
    play vars, the C(ascend.fa.fa_common) default), else the environment variable E(ASCEND_FA_RESULTS), else the
    C(out) folder of the collection. Under ansible-runner (AWX) the three files are also copied into the job's
    artifacts (C(<artifact dir>/ascend-fa/)), which outlive the job's container.
  - The report covers the hosts of the run's plays as the inventory and C(--limit) resolve them, not every host in
    the fact cache; each host's run state comes from the final recap, its phases and last failure from the events.
  - JUnit XML has one test suite per host, a test case per phase the host went through (classname C(<host>.phase))
    and per card (classname C(<host>.cards), time = the card's latency).
  - The callback never fails a run; a problem writing the records becomes a warning.
requirements:
  - enable it in C(ansible.cfg) (C(callbacks_enabled = ascend.fa.fa_records)) or with E(ANSIBLE_CALLBACKS_ENABLED)
"""

import os
import time
import traceback
from typing import Any

from ansible import constants as C
from ansible import context
from ansible.plugins.callback import CallbackBase
from ansible_collections.ascend.fa.plugins.plugin_utils import junit, preload, records

FILES = ("report.json", "report.html", "junit.xml")


def _attr(obj: Any, name: str) -> Any:
    """A task result's ``host``/``task``/``result`` (public from ansible-core 2.19; ``_host``... before)."""
    try:
        return getattr(obj, name)
    except AttributeError:
        return getattr(obj, f"_{name}", None)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "ascend.fa.fa_records"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reset(None)
        # the collection's filters and their controller code, imported once here instead of in every task worker
        preload.preload()

    def _reset(self, playbook: str | None) -> None:
        self._record = records.RunRecord()
        records.LIVE = self._record
        self._playbook = playbook
        self._started = time.time()
        self._vars: dict[str, Any] | None = None
        self._broken = False

    def _guard(self, what: str, fn: Any, *args: Any) -> Any:
        """Run ``fn``; an exception becomes one warning (the run goes on, its records may be incomplete)."""
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - records must never fail a deployment
            if not self._broken:
                self._display.warning(f"ascend.fa.fa_records: {what} failed ({type(exc).__name__}: {exc}); the run goes "
                                      "on, its records may be incomplete")
                self._display.vvv(traceback.format_exc())
            self._broken = True
            return None

    # -------------------------------------------------------------------------------------------- playbook, plays
    def v2_playbook_on_start(self, playbook: Any) -> None:
        self._reset(getattr(playbook, "_file_name", None))

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        # before the task's workers are forked: what the main process holds is left out of their garbage collection
        preload.freeze()

    def v2_playbook_on_play_start(self, play: Any) -> None:
        preload.thaw()
        self._guard("reading the play's hosts", self._play_start, play)

    def _play_start(self, play: Any) -> None:
        vm = play.get_variable_manager()
        inventory = getattr(vm, "_inventory", None)
        if inventory is None:
            return
        # the play's hosts after --limit, before the serial batch restriction: the run's hosts
        hosts = inventory.get_hosts(play.hosts, ignore_restrictions=True) if play.hosts else []
        self._record.add_hosts(h.get_name() for h in hosts)
        if any(records.short_role(r.get_name()) == "fa_rollout" for r in play.get_roles()):
            self._record.installs = True
        if self._vars is None and hosts:
            self._vars = self._guard("resolving fa_results_dir and fa_recipe", self._resolve, play, vm, hosts[0]) or {}
            recipe = self._vars.get("fa_recipe")
            self._record.recipe = recipe if isinstance(recipe, str) and recipe else None

    @staticmethod
    def _resolve(play: Any, vm: Any, host: Any) -> dict[str, Any]:
        """fa_results_dir, fa_recipe and fa_recipe_dirs as the play's tasks see them on its first host (role_path: the
        collection's fa_common role, whose default computes fa_results_dir from it)."""
        from ansible.template import Templar

        variables = dict(vm.get_vars(play=play, host=host, include_hostvars=False))
        variables.setdefault("role_path", str(records.COLLECTION_ROOT / "roles" / "fa_common"))
        loader = getattr(play, "_loader", None) or getattr(vm, "_loader", None)
        templar = Templar(loader=loader, variables=variables)
        out: dict[str, Any] = {}
        for name in ("fa_results_dir", "fa_recipe", "fa_recipe_dirs"):
            if name in variables:
                try:
                    out[name] = templar.template(variables[name])
                except Exception:  # noqa: BLE001 - an unresolvable value is not known; the fallbacks apply
                    continue
        return out

    # -------------------------------------------------------------------------------------------- task events
    def _event(self, kind: str, result: Any, ignore_errors: bool = False) -> None:
        task, host = _attr(result, "task"), _attr(result, "host")
        role = getattr(task, "_role", None)
        self._record.apply({"event": kind, "event_data": {
            "host": host.get_name(), "task": task.name or task.action, "task_action": task.action,
            "role": role.get_name() if role is not None else None, "ignore_errors": ignore_errors,
            "res": _attr(result, "result") or {},
        }}, time.time())

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        role = getattr(task, "_role", None)
        self._guard("recording a task", self._record.apply, {"event": "runner_on_start", "event_data": {
            "host": host.get_name(), "task": task.name or task.action, "task_action": task.action,
            "role": role.get_name() if role is not None else None}}, time.time())

    def v2_runner_on_ok(self, result: Any) -> None:
        self._guard("recording a result", self._event, "runner_on_ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._guard("recording a result", self._event, "runner_on_failed", result, ignore_errors)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._guard("recording a result", self._event, "runner_on_skipped", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._guard("recording a result", self._event, "runner_on_unreachable", result)

    # -------------------------------------------------------------------------------------------- the end
    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._guard("writing the run's records", self._write, stats)

    def _write(self, stats: Any) -> None:
        from ansible_collections.ascend.fa.plugins.plugin_utils import report

        finished = time.time()
        rec = self._record
        rec.finish(stats)
        cli = dict(context.CLIARGS) if context.CLIARGS else {}
        check = bool(cli.get("check"))
        resolved = self._vars or {}
        out_dir = records.results_dir(resolved.get("fa_results_dir"))
        info = records.recipe_info(resolved.get("fa_recipe"), resolved.get("fa_recipe_dirs"))
        head = records.header(self._playbook, info, cli, self._started, finished, records.runner_name())
        run = rec.run(check)
        facts_dir = C.CACHE_PLUGIN_CONNECTION if str(C.CACHE_PLUGIN).rpartition(".")[2] == "jsonfile" else None
        name = os.path.basename(self._playbook or "playbook")
        title = f"{name}: fleet report" + (" (check mode: nothing was changed)" if check else "")
        rep = report.build_report(facts_dir=facts_dir, results_dir=out_dir, hosts=list(rec.hosts), run=run,
                                  title=title, run_facts=rec.facts, header=head)
        xml = junit.to_xml(junit.suites(rep.hosts, rec.phase_dicts(), head.get("finished")), name=title)
        written = [report.write_json(rep, out_dir / FILES[0]), report.write_html(rep, out_dir / FILES[1]),
                   records.write_atomic(out_dir / FILES[2], xml)]
        artifacts = records.runner_artifacts()
        if artifacts is not None and artifacts.is_dir():
            keep = artifacts / "ascend-fa"
            written += [records.write_atomic(keep / p.name, p.read_bytes()) for p in written[:3]]
        summary = records.summary(rec.hosts, {h: r["state"] for h, r in run.items()},
                                  {h: r["message"] for h, r in run.items()}, info.get("recipe"),
                                  {h: (rec.facts.get(h) or {}).get("fa_rollout_result") for h in rec.hosts})
        counts = ", ".join(f"{n} {s}" for s, n in summary["states"].items() if n)
        self._display.display(f"ascend-fa records: {summary['hosts']} hosts ({counts or 'none'})")
        for path in written:
            self._display.display(f"ascend-fa records: {path}")
