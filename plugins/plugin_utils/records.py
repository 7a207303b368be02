"""The records of one playbook run: what happened to each host, folded from the run's events.

Used by the callback plugin ``ascend.fa.fa_records`` (``plugins/callback/fa_records.py``), which feeds it the events
of every run, whoever started it (``ansible-playbook``, ansible-runner, AWX, the ``ascend-fa`` CLI), and writes the
fleet report (``report.json``, ``report.html``) and ``junit.xml`` when the run ends; by the filter
``ascend.fa.fa_run_summary`` (the ``set_stats`` summary an AWX workflow branches on); and by the CLI (the failure
message of an event, a host's run state). Everything here is pure: events in, plain data out.

Events have the shape of ansible-runner's ``job_events`` (``{"event": "runner_on_failed", "event_data": {"host",
"role", "task", "task_action", "ignore_errors", "res"}}``); the callback builds the same dicts from its task results,
so recorded runner events (tests/data/runner_events/) and a live run go through the same code.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ansible_collections.ascend.fa.plugins.plugin_utils.safetext import strip_controls

# The roles that are phases of a host (a collection role's events name it by FQCN: ascend.fa.fa_install).
PHASES = ("fa_preflight", "fa_fetch", "fa_build", "fa_install", "fa_verify", "fa_rollout", "fa_doctor")
# A fatal failure outside any phase (a play task, a plumbing role such as fa_common, an unreachable host before its
# first phase) is recorded under this pseudo-phase.
RUN_PHASE = "run"
# Facts worth keeping from this run's events for the report: fresher than the cache (ascend_facts ran before the
# install) or never cached at all (plain set_fact). fa_installed: the manifest module fa_install returned; fa_drain:
# what the drain hooks found and did (roles/fa_rollout).
RUN_FACTS = frozenset({"ascend", "fa_build_key", "fa_problems", "fa_warnings", "fa_blocking", "fa_needs_install",
                       "fa_installed", "fa_rollout_result", "fa_rollout_from", "fa_drain"})
# The run states a host can end in (report.py's run column; the set_stats summary counts them).
STATES = ("ok", "changed", "failed", "unreachable", "not run", "not installed", "would change")
RESULT_EVENTS = frozenset({"runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"})
LOOP_MESSAGES = frozenset({"One or more items failed", "All items completed"})
MAX_MESSAGE = 400
# Environment that ansible-runner sets for the ansible-playbook it starts (ansible_runner/config/_base.py:
# ANSIBLE_STDOUT_CALLBACK=awx_display always, AWX_ISOLATED_DATA_DIR=<its artifact dir>); AWX runs jobs through it.
RUNNER_STDOUT_CALLBACK = "awx_display"
RUNNER_ARTIFACTS_ENV = "AWX_ISOLATED_DATA_DIR"
COLLECTION_ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------ failure messages
def _one_line(text: Any, limit: int = MAX_MESSAGE) -> str:
    s = re.sub(r"\s+", " ", strip_controls(text)).strip()     # host output: no escape sequence reaches the terminal
    s = re.sub(r"^Task failed: (Action failed: )?", "", s)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _last_line(text: Any) -> str:
    lines = [ln for ln in str(text or "").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


def result_message(res: Mapping[str, Any]) -> str:
    """A one-line reason from a task result: its msg, the failed loop item's, the tail of stderr."""
    msg = res.get("msg")
    if isinstance(msg, (list, tuple)):      # fail: msg given a list (e.g. one line per problem)
        msg = "; ".join(str(m) for m in msg)
    elif msg is not None and not isinstance(msg, str):
        msg = json.dumps(msg, default=str) if isinstance(msg, dict) else str(msg)
    if (not msg or msg in LOOP_MESSAGES) and isinstance(res.get("results"), list):
        for item in res["results"]:
            if isinstance(item, Mapping) and (item.get("failed") or item.get("unreachable")):
                label = item.get("_ansible_item_label", item.get("item"))
                return _one_line(f"item {label}: {result_message(item)}")
    tail = _last_line(res.get("stderr")) or _last_line(res.get("stdout"))
    if msg == "non-zero return code" or (not msg and tail):
        return _one_line(f"{msg or 'failed'} (rc={res.get('rc')}): {tail}" if tail else f"{msg} (rc={res.get('rc')})")
    return _one_line(msg if msg is not None else "failed")


def failure_message(event: Mapping[str, Any]) -> str | None:
    """``"<task>: <reason>"`` for a fatal failure or unreachable event; None for anything else (ignored errors too)."""
    kind = event.get("event")
    data = event.get("event_data") or {}
    if kind not in ("runner_on_failed", "runner_on_unreachable"):
        return None
    if kind == "runner_on_failed" and data.get("ignore_errors"):
        return None
    reason = result_message(data.get("res") or {})
    return f"{data['task']}: {reason}" if data.get("task") else reason


# ------------------------------------------------------------------------------------------------ run states
def split_stats(stats: Mapping[str, Mapping[str, int]] | None) -> tuple[list[str], list[str]]:
    """(failed hosts, unreachable hosts) from ansible's recap; a host that is both counts as unreachable."""
    stats = stats or {}
    dark = sorted(h for h, n in (stats.get("dark") or {}).items() if n)
    failed = sorted(h for h, n in (stats.get("failures") or {}).items() if n and h not in dark)
    return failed, dark


def host_state(host: str, stats: Mapping[str, Mapping[str, int]] | None) -> str:
    """ok | changed | failed | unreachable | not run, for one host from ansible's recap."""
    stats = stats or {}
    failed, dark = split_stats(stats)
    if host in dark:
        return "unreachable"
    if host in failed:
        return "failed"
    if (stats.get("changed") or {}).get(host):
        return "changed"
    if any(host in (stats.get(k) or {}) for k in ("ok", "skipped", "processed")):
        return "ok"
    return "not run"


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


def stats_dict(stats: Any) -> dict[str, dict[str, int]]:
    """ansible's AggregateStats (or a recap mapping, as in a playbook_on_stats event) as plain dicts."""
    keys = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored", "processed")
    if isinstance(stats, Mapping):
        return {k: dict(stats.get(k) or {}) for k in keys}
    return {k: dict(getattr(stats, k, None) or {}) for k in keys}


# ------------------------------------------------------------------------------------------------ the record
def short_role(role: Any) -> str | None:
    """``ascend.fa.fa_install`` -> ``fa_install``; None for no role."""
    return str(role or "").rpartition(".")[2] or None


def run_facts_of(data: Mapping[str, Any]) -> dict[str, Any]:
    """The RUN_FACTS an ok result carries (set_fact, a module's ansible_facts, fa_rollout_record's rollout_facts,
    fa_install's manifest)."""
    res = data.get("res") if isinstance(data.get("res"), Mapping) else {}
    facts = res.get("ansible_facts") if isinstance(res.get("ansible_facts"), Mapping) else {}
    kept = {k: v for k, v in facts.items() if k in RUN_FACTS}
    # the rollout's outcome, which fa_rollout_record returns instead of a set_fact per host
    rollout = res.get("rollout_facts") if isinstance(res.get("rollout_facts"), Mapping) else {}
    kept.update({k: v for k, v in rollout.items() if k in RUN_FACTS})
    if str(data.get("task_action") or "").rsplit(".", 1)[-1] == "fa_install" and "manifest" in res:
        kept["fa_installed"] = res["manifest"]
    return kept


@dataclass
class Phase:
    """One host's outcome in one phase (role) of this run."""

    name: str
    state: str = "skipped"          # skipped < ok < failed | unreachable; rescued: failed, then recovered
    message: str | None = None      # the last fatal failure in it
    started: float | None = None
    ended: float | None = None
    tasks: int = 0

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return max(0.0, self.ended - self.started)

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "message": self.message, "seconds": self.seconds, "tasks": self.tasks}


_RANK = {"skipped": 0, "ok": 1, "failed": 2, "unreachable": 3}


@dataclass
class RunRecord:
    """What one run did to each host, folded from its events (:meth:`apply`); :meth:`finish` takes the recap."""

    hosts: list[str] = field(default_factory=list)              # every host of every play, in order of appearance
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)      # host -> its last fatal failure
    phases: dict[str, dict[str, Phase]] = field(default_factory=dict)
    current: dict[str, str] = field(default_factory=dict)       # host -> the phase it is in
    seen: dict[str, str] = field(default_factory=dict)          # host -> ok | changed | unreachable so far
    installs: bool = False                                      # a play of the run rolls packages out (fa_rollout)
    recipe: str | None = None                                   # fa_recipe as the first play resolved it
    stats: dict[str, dict[str, int]] | None = None

    def add_hosts(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self.hosts:
                self.hosts.append(name)

    def apply(self, event: Mapping[str, Any], now: float | None = None) -> None:
        kind = str(event.get("event") or "")
        data = event.get("event_data") or {}
        host = data.get("host")
        if not host or not kind.startswith("runner_on_"):
            return
        self.add_hosts([host])
        phase = self._phase(host, data, kind, failure_message(event) is not None)
        if phase is not None and phase.started is None:
            phase.started = now
        if kind not in RESULT_EVENTS:
            return
        res = data.get("res") if isinstance(data.get("res"), Mapping) else {}
        state = self._result_state(kind, data)
        if phase is not None:
            phase.ended = now if now is not None else phase.ended
            phase.tasks += 1
            if _RANK[state] > _RANK.get(phase.state, 0):
                phase.state = state
        self._seen(host, state, res)
        msg = failure_message(event)
        if msg:
            self.messages[host] = msg
            if phase is not None:
                phase.message = msg
        if kind == "runner_on_ok":
            kept = run_facts_of(data)
            if kept:
                self.facts.setdefault(host, {}).update(kept)

    @staticmethod
    def _result_state(kind: str, data: Mapping[str, Any]) -> str:
        if kind == "runner_on_unreachable":
            return "unreachable"
        if kind == "runner_on_failed" and not data.get("ignore_errors"):
            return "failed"
        return "skipped" if kind == "runner_on_skipped" else "ok"

    def _seen(self, host: str, state: str, res: Mapping[str, Any]) -> None:
        if state == "unreachable":
            self.seen[host] = "unreachable"
        elif res.get("changed") and self.seen.get(host) != "unreachable":
            self.seen[host] = "changed"
        else:
            self.seen.setdefault(host, "ok")

    def _phase(self, host: str, data: Mapping[str, Any], kind: str, fatal: bool) -> Phase | None:
        """The phase this event counts towards: its role when that is a phase, else (a fatal failure only) the
        phase the host is in, else the ``run`` pseudo-phase. Other events of plumbing roles and play tasks count
        towards nothing."""
        role = short_role(data.get("role"))
        name = role if role in PHASES else None
        if name is not None:
            self.current[host] = name
        elif fatal:
            name = self.current.get(host) or RUN_PHASE
        else:
            return None
        phases = self.phases.setdefault(host, {})
        if name not in phases:
            phases[name] = Phase(name)
        return phases[name]

    def finish(self, stats: Any) -> None:
        """The recap: a failure that the host recovered from (rescue) leaves its phase "rescued"."""
        self.stats = stats_dict(stats)
        for cat in self.stats.values():
            self.add_hosts(cat)
        failed, dark = split_stats(self.stats)
        for host, phases in self.phases.items():
            if host in failed or host in dark:
                continue
            for p in phases.values():
                if p.state == "failed":
                    p.state = "rescued"

    # -------------------------------------------------------------------------------------------- results
    def state(self, host: str, check: bool = False) -> str | None:
        """The host's run state as the report shows it (after :meth:`finish`)."""
        return report_run_state(host_state(host, self.stats), self.facts.get(host), check, self.installs)

    def run(self, check: bool = False) -> dict[str, dict[str, Any]]:
        """host -> {state, message} for report.build_report (a message only for a host that ended failed)."""
        out = {}
        for h in self.hosts:
            state = self.state(h, check)
            out[h] = {"state": state, "message": self.messages.get(h) if state in ("failed", "unreachable") else None}
        return out

    def phase_dicts(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {h: {name: p.as_dict() for name, p in phases.items()} for h, phases in self.phases.items()}


# ------------------------------------------------------------------------------------------------ the set_stats summary
def summary(hosts: Sequence[str], states: Mapping[str, str | None], messages: Mapping[str, str | None] | None = None,
            recipe: Any = None, rollout: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The run summary published with ``set_stats`` (key ``ascend_fa``) and kept in report.json's header.

    ``{"hosts": N, "states": {state: count}, "failed": [...], "unreachable": [...], "not_installed": [...],
    "rollout": {result: [hosts]}, "recipe": name, "ok": no host failed or unreachable}``.
    """
    messages = messages or {}
    counts = {s: 0 for s in STATES}
    for h in hosts:
        s = states.get(h) or "not run"
        counts[s] = counts.get(s, 0) + 1

    def having(state: str) -> list[str]:
        return [h for h in hosts if states.get(h) == state]

    by_result: dict[str, list[str]] = {}
    for h in hosts:
        result = (rollout or {}).get(h)
        if isinstance(result, str) and result:
            by_result.setdefault(result, []).append(h)
    return {
        "hosts": len(hosts), "states": counts, "failed": having("failed"), "unreachable": having("unreachable"),
        "not_installed": having("not installed"),
        "messages": {h: strip_controls(m, False) for h, m in messages.items() if m and h in hosts
                     and states.get(h) in ("failed", "unreachable")},
        "rollout": by_result, "recipe": None if recipe is None else str(recipe),
        "ok": not having("failed") and not having("unreachable"),
    }


# The callback's record of the run in progress. Tasks run in worker processes forked from the controller's main
# process, where the callback folds the events: the fa_run_summary filter of the final play's set_stats task sees
# the record as it was when its worker started (every earlier task's result). None: the callback is not enabled.
LIVE: RunRecord | None = None


def _hostvar(hostvars: Any, host: str, name: str) -> Any:
    try:
        return hostvars[host].get(name)
    except Exception:  # noqa: BLE001 - an undefined or broken variable is simply not known
        return None


def _rollout_fact(outcome: Any, name: str) -> Any:
    """``name`` from a registered fa_rollout_record result (fa_rollout_outcome), or None."""
    facts = outcome.get("rollout_facts") if isinstance(outcome, Mapping) else None
    return facts.get(name) if isinstance(facts, Mapping) else None


def play_summary(hosts_all: Sequence[str], hosts_left: Sequence[str], hostvars: Any = None, recipe: Any = None,
                 check: bool = False, live: RunRecord | None = None) -> dict[str, Any]:
    """The summary from inside a play (the fa_run_summary filter).

    ``hosts_all``/``hosts_left``: ``ansible_play_hosts_all``/``ansible_play_hosts`` of the final play (a host that
    failed or was unreachable in an earlier play is left out of the second). With the callback's live record, each
    host's state is what the recap would say so far; without it (callback not enabled), a host left out is
    "failed" (unreachable ones included) and the others "ok".
    """
    hosts = list(dict.fromkeys(str(h) for h in hosts_all or []))
    left = {str(h) for h in hosts_left or []}
    states: dict[str, str | None] = {}
    rollout: dict[str, Any] = {}
    for h in hosts:
        facts = dict((live.facts.get(h) if live else None) or {})
        for name in ("fa_needs_install", "fa_rollout_result"):
            if name not in facts and hostvars is not None:
                value = _hostvar(hostvars, h, name)
                if value is None and name == "fa_rollout_result":      # fa_rollout_record's result (registered)
                    value = _rollout_fact(_hostvar(hostvars, h, "fa_rollout_outcome"), name)
                if value is not None:
                    facts[name] = value
        rollout[h] = facts.get("fa_rollout_result")
        seen = live.seen.get(h) if live else None
        if seen == "unreachable":
            raw = "unreachable"
        elif h not in left:
            raw = "failed"
        else:
            raw = seen or "ok"
        states[h] = report_run_state(raw, facts, check, live.installs if live else False)
    if recipe is None and live is not None:
        recipe = live.recipe
    return summary(hosts, states, live.messages if live else None, recipe, rollout)


# ------------------------------------------------------------------------------------------------ header, paths
def utc(t: float | None) -> str | None:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if t is not None else None


def runner_name(env: Mapping[str, str] | None = None) -> str:
    """``ansible-runner`` when ansible-runner started this ansible-playbook (AWX, the ascend-fa CLI), else
    ``ansible-playbook``."""
    env = os.environ if env is None else env
    callback = str(env.get("ANSIBLE_STDOUT_CALLBACK") or "").rpartition(".")[2]
    if callback == RUNNER_STDOUT_CALLBACK or env.get(RUNNER_ARTIFACTS_ENV):
        return "ansible-runner"
    return "ansible-playbook"


def runner_artifacts(env: Mapping[str, str] | None = None) -> Path | None:
    """The job's artifact folder when ansible-runner runs this ansible-playbook (AWX keeps it with the job)."""
    env = os.environ if env is None else env
    value = env.get(RUNNER_ARTIFACTS_ENV)
    return Path(value) if value and runner_name(env) == "ansible-runner" else None


def results_dir(extra: Any = None, env: Mapping[str, str] | None = None, root: Path = COLLECTION_ROOT) -> Path:
    """Where the run's records go: ``fa_results_dir`` (as the play resolved it), else ``$ASCEND_FA_RESULTS``, else
    ``<collection>/out`` (roles/fa_common/defaults/main.yml: the roles' ``role_path/../../out``). A relative path
    is taken from the current directory, as ansible-playbook's lookups do."""
    env = os.environ if env is None else env
    value = str(extra).strip() if isinstance(extra, (str, os.PathLike)) and str(extra).strip() else ""
    value = value or env.get("ASCEND_FA_RESULTS") or str(root / "out")
    return Path(os.path.expanduser(value)).resolve()


def header(playbook: str | None, recipe_info: Mapping[str, Any] | None, cliargs: Mapping[str, Any] | None,
           started: float | None, finished: float | None, runner: str) -> dict[str, Any]:
    """The run header report.py shows: playbook, recipe, tag, commit, limit, tags, skip_tags, check, times, runner."""
    cli = cliargs or {}
    info = recipe_info or {}

    def joined(v: Any) -> str | None:
        items = [str(x) for x in (v or ()) if str(x) != "all"] if isinstance(v, (list, tuple, set, frozenset)) else (
            [str(v)] if v else [])
        return ",".join(items) or None

    return {
        "playbook": playbook, "recipe": info.get("recipe"), "tag": info.get("tag"), "commit": info.get("commit"),
        "limit": cli.get("subset") or None, "tags": joined(cli.get("tags")), "skip_tags": joined(cli.get("skip_tags")),
        "check": bool(cli.get("check")), "started": utc(started), "finished": utc(finished),
        "duration_s": round(finished - started, 1) if started is not None and finished is not None else None,
        "runner": runner,
    }


def recipe_info(name: Any, dirs: Any = None) -> dict[str, Any]:
    """recipe name, tag and commit (tag and commit None when the recipe cannot be loaded)."""
    if not isinstance(name, str) or not name:
        return {"recipe": None, "tag": None, "commit": None}
    from ansible_collections.ascend.fa.plugins.plugin_utils import recipes

    try:
        data = recipes.load(name, [str(d) for d in dirs] if isinstance(dirs, (list, tuple)) else None)
    except Exception:  # noqa: BLE001 - a bad recipe stopped the run already, with its message; the header says less
        return {"recipe": name, "tag": None, "commit": None}
    return {"recipe": name, "tag": data.get("tag"), "commit": data.get("commit")}


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path
