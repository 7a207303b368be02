"""Live progress of a playbook run, rendered from ansible-runner events.

:class:`ProgressModel` is pure: it folds events (``job_events`` dicts) into one row per host -- phase (the role
the host is in), state, current task, elapsed -- and returns the :class:`Line` s worth printing (a phase a host
finished, a failure, a new play). Two renderers sit on it: :class:`LiveRenderer` (a rich table redrawn in place,
for terminals) and :class:`PlainRenderer` (one line per change, for pipes and CI logs). Both end with the same
summary line plus one line per failed host.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

# the failure message of an event: shared with the callback ascend.fa.fa_records (re-exported here)
from ansible_collections.ascend.fa.plugins.plugin_utils.records import (  # noqa: F401
    MAX_MESSAGE,
    failure_message,
    result_message,
)
from ansible_collections.ascend.fa.plugins.plugin_utils.safetext import strip_controls

# Roles that are plumbing, not phases: their tasks count towards the phase the host is in (or the next one).
# fa_rollout orchestrates fa_install and fa_verify (include_role): its own tasks (drain, record, roll back) belong
# to the install/verify phase they run around.
HIDDEN_PHASES = frozenset({"fa_common", "fa_rollout"})
RESULT_EVENTS = frozenset({"runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"})
STATE_STYLES = {"running": "cyan", "ok": "green", "changed": "yellow", "failed": "bold red",
                "unreachable": "bold magenta", "skipped": "dim", "waiting": "dim", "rescued": "yellow"}


# ------------------------------------------------------------------------------------------------ event helpers
def event_time(event: Mapping[str, Any]) -> float | None:
    """Epoch seconds of an event (its ``created`` stamp)."""
    created = event.get("created")
    if not created:
        return None
    try:
        return datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def fmt_elapsed(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


def fmt_clock(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%H:%M:%S") if t is not None else "--:--:--"


# ------------------------------------------------------------------------------------------------ the model
@dataclass
class HostProgress:
    """One host's row."""

    host: str
    phase: str | None = None
    task: str = ""
    state: str = "waiting"           # waiting | running | ok | changed | failed | unreachable | skipped
    first_seen: float | None = None
    last_seen: float | None = None
    phase_started: float | None = None
    phase_state: str = "skipped"     # the open phase so far: skipped < ok < changed < failed | unreachable
    running: int = 0
    message: str | None = None       # last fatal failure
    failed_in: str | None = None     # phase of that failure
    reported: bool = False           # the open phase already had its line (a failure)
    final: bool = False

    def elapsed(self, now: float | None = None) -> float | None:
        if self.first_seen is None:
            return None
        end = self.last_seen if (self.final or now is None) else max(now, self.last_seen or now)
        return max(0.0, (end or self.first_seen) - self.first_seen)


@dataclass(frozen=True)
class Line:
    """Something worth one printed line."""

    kind: str                 # phase | failure | play
    time: float | None
    host: str | None = None
    phase: str | None = None
    state: str | None = None
    elapsed: float | None = None
    message: str = ""

    def plain(self, host_width: int = 12, phase_width: int = 22) -> str:
        clock = fmt_clock(self.time)
        if self.kind == "play":
            return f"{clock} == {self.message}"
        text = (f"{clock} {self.host or '':<{host_width}} {self.phase or '-':<{phase_width}} "
                f"{self.state or '':<11} {fmt_elapsed(self.elapsed):>7}")
        return f"{text}  {self.message}" if self.message else text.rstrip()


_RANK = {"skipped": 0, "ok": 1, "changed": 2, "failed": 3, "unreachable": 4}


@dataclass
class ProgressModel:
    """Folds ansible-runner events into per-host progress; :meth:`apply` returns the lines to print."""

    default_phase: str = "run"
    hidden_phases: frozenset[str] = HIDDEN_PHASES
    hosts: dict[str, HostProgress] = field(default_factory=dict)
    play: str | None = None
    started: float | None = None
    ended: float | None = None
    stats: dict[str, dict[str, int]] | None = None
    plays: int = 0

    # -------------------------------------------------------------------------------------------- public
    def apply(self, event: Mapping[str, Any]) -> list[Line]:
        kind = str(event.get("event") or "")
        t = event_time(event)
        if t is not None and self.started is None:
            self.started = t
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start":   # the previous play is over: so are its hosts' phases
            self.plays += 1
            self.play = data.get("play") or data.get("name")
            lines = [ln for hp in self.hosts.values() for ln in self._close_phase(hp, hp.last_seen)]
            return lines + ([Line("play", t, message=f"play: {self.play}")] if self.play else [])
        if kind == "playbook_on_stats":
            return self._finish(data, t)
        if kind == "playbook_on_no_hosts_matched":
            return [Line("play", t, message=self._no_hosts_text())]
        host = data.get("host")
        if not host or not kind.startswith("runner_on_"):
            return []
        return self._host_event(kind, data, t, self._host(host), event)

    def rows(self) -> list[HostProgress]:
        return list(self.hosts.values())

    def failures(self) -> dict[str, str]:
        """host -> last fatal failure message, for hosts that ended failed or unreachable (all of them while running)."""
        return {h.host: h.message for h in self.hosts.values()
                if h.message and (h.state in ("failed", "unreachable") or not h.final)}

    def summary(self) -> str:
        return summary_line(self.stats, self.hosts.values(), self.elapsed())

    def elapsed(self) -> float | None:
        if self.started is None:
            return None
        end = self.ended or max((h.last_seen or self.started for h in self.hosts.values()), default=self.started)
        return end - self.started

    # -------------------------------------------------------------------------------------------- internals
    def _no_hosts_text(self) -> str:
        """A play without hosts: the first one matched none (a wrong group or --limit); a later one has nothing left
        to do (deploy's install play, when every host that passed preflight already has the package)."""
        if self.plays <= 1:
            return "no hosts matched (check the inventory group and --limit)"
        states = [h.state for h in self.hosts.values()]
        bad = sum(1 for s in states if s in ("failed", "unreachable"))
        good = len(states) - bad
        if not states:
            return "nothing to install: every host is converged"
        text = f"nothing to install: {good} host{'s' if good != 1 else ''} converged"
        return text + (f", {bad} failed or unreachable" if bad else "")

    def _host(self, name: str) -> HostProgress:
        if name not in self.hosts:
            self.hosts[name] = HostProgress(name)
        return self.hosts[name]

    def _phase_of(self, data: Mapping[str, Any], hp: HostProgress, fatal: bool) -> str | None:
        """The phase this event moves the host to, or None to stay where it is.

        A role is a phase, except the plumbing roles in ``hidden_phases``; their tasks and play-level tasks count
        towards the host's current phase. A host's first phase starts with its first event, plumbing included.
        """
        # a collection role's events name it by FQCN (ascend.fa.fa_install): the phase is the role's own name
        role = str(data.get("role") or "").rpartition(".")[2] or None
        if role and role not in self.hidden_phases:
            return role
        if hp.phase is None and (role is None or fatal):
            return role or self.default_phase
        return None

    def _host_event(self, kind: str, data: Mapping[str, Any], t: float | None, hp: HostProgress,
                    event: Mapping[str, Any]) -> list[Line]:
        lines: list[Line] = []
        if hp.first_seen is None:
            hp.first_seen = t
        hp.last_seen = t if t is not None else hp.last_seen
        hp.task = str(data.get("task") or hp.task)
        phase = self._phase_of(data, hp, failure_message(event) is not None)
        if phase is not None and phase != hp.phase:
            lines += self._close_phase(hp, t)
            self._open_phase(hp, phase, t)
        if kind == "runner_on_start":
            hp.running += 1
            hp.state = "running"
            return lines
        if kind in RESULT_EVENTS:
            hp.running = max(0, hp.running - 1)
            lines += self._result(kind, data, t, hp, event)
        return lines

    @staticmethod
    def _open_phase(hp: HostProgress, phase: str, t: float | None) -> None:
        if hp.phase is None:   # the first phase: it began with the host's first event (plumbing included)
            hp.phase_started = hp.first_seen if hp.first_seen is not None else t
        else:
            hp.phase_started = t
            hp.phase_state = "skipped"
        hp.phase = phase
        hp.reported = False

    @staticmethod
    def _close_phase(hp: HostProgress, t: float | None) -> list[Line]:
        """The line of the phase the host leaves (none when its failure line already said it)."""
        if hp.phase is None or hp.reported:
            return []
        end = hp.last_seen if hp.last_seen is not None else t
        elapsed = end - hp.phase_started if (end is not None and hp.phase_started is not None) else None
        hp.reported = True
        return [Line("phase", end, hp.host, hp.phase, hp.phase_state, elapsed)]

    def _result(self, kind: str, data: Mapping[str, Any], t: float | None, hp: HostProgress,
                event: Mapping[str, Any]) -> list[Line]:
        res = data.get("res") or {}
        if kind == "runner_on_skipped":
            new = "skipped"
        elif kind == "runner_on_unreachable":
            new = "unreachable"
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            new = "failed"
        else:
            new = "changed" if res.get("changed") else "ok"
        if _RANK[new] > _RANK.get(hp.phase_state, 0):
            hp.phase_state = new
        hp.state = "running" if hp.running else hp.phase_state
        msg = failure_message(event)
        if msg is None:
            return []
        hp.message, hp.failed_in = msg, hp.phase
        hp.state = new
        hp.reported = True
        elapsed = (t - hp.phase_started) if (t is not None and hp.phase_started is not None) else None
        return [Line("failure", t, hp.host, hp.phase, new, elapsed, msg)]

    def _finish(self, data: Mapping[str, Any], t: float | None) -> list[Line]:
        self.stats = {k: dict(data.get(k) or {}) for k in
                      ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored", "processed")}
        self.ended = t
        lines: list[Line] = []
        for hp in self.hosts.values():
            lines += self._close_phase(hp, hp.last_seen)
            hp.state = final_state(hp.host, self.stats)
            if hp.message and hp.state not in ("failed", "unreachable"):   # the failure was rescued
                lines.append(Line("phase", hp.last_seen, hp.host, hp.failed_in, "rescued", None, hp.message))
                hp.message = None
            hp.final = True
            hp.running = 0
        return lines


def final_state(host: str, stats: Mapping[str, Mapping[str, int]]) -> str:
    """ok | changed | failed | unreachable for one host from ansible's recap."""
    if (stats.get("dark") or {}).get(host):
        return "unreachable"
    if (stats.get("failures") or {}).get(host):
        return "failed"
    if (stats.get("changed") or {}).get(host):
        return "changed"
    return "ok"


def summary_line(stats: Mapping[str, Mapping[str, int]] | None, hosts: Iterable[HostProgress] = (),
                 elapsed: float | None = None) -> str:
    """``hosts=5 ok=2 failed=2 unreachable=1 | tasks ok=28 changed=4 failed=2 skipped=6 rescued=1 | 9.1s``.

    Host counts: ok includes hosts that changed something; a host is counted once, unreachable before failed.
    """
    hosts = list(hosts)
    if stats is None:
        states = [h.state for h in hosts]
        return (f"hosts={len(states)} running={states.count('running')} failed={states.count('failed')} "
                f"unreachable={states.count('unreachable')} (no recap: the run did not finish)")
    names = sorted({h for cat in stats.values() for h in (cat or {})} | {h.host for h in hosts})
    finals = [final_state(h, stats) for h in names]
    n_ok = sum(1 for s in finals if s in ("ok", "changed"))
    tasks = " ".join(f"{label}={sum((stats.get(key) or {}).values())}" for label, key in
                     (("ok", "ok"), ("changed", "changed"), ("failed", "failures"), ("skipped", "skipped"),
                      ("rescued", "rescued"), ("ignored", "ignored")))
    text = (f"hosts={len(names)} ok={n_ok} changed={finals.count('changed')} failed={finals.count('failed')} "
            f"unreachable={finals.count('unreachable')} | tasks {tasks}")
    return f"{text} | {fmt_elapsed(elapsed)}" if elapsed is not None else text


def failure_lines(failures: Mapping[str, str], phases: Mapping[str, str | None] | None = None) -> list[str]:
    phases = phases or {}
    return [f"  FAILED {h}" + (f" [{phases[h]}]" if phases.get(h) else "") + f": {m}" for h, m in sorted(failures.items())]


# ------------------------------------------------------------------------------------------------ renderers
class PlainRenderer:
    """One line per finished phase / failure / play on ``stream``: readable in a pipe or a CI log."""

    def __init__(self, model: ProgressModel, stream: TextIO | None = None):
        self.model = model
        self.stream = stream or sys.stdout

    def __enter__(self) -> PlainRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def _write(self, text: str) -> None:
        self.stream.write(strip_controls(text) + "\n")
        self.stream.flush()

    def on_event(self, event: Mapping[str, Any]) -> None:
        width = max([12] + [len(h) for h in self.model.hosts] + [len(str((event.get("event_data") or {}).get("host") or ""))])
        for line in self.model.apply(event):
            self._write(line.plain(host_width=width))

    def finish(self, extra: Iterable[str] = ()) -> None:
        self._write(self.model.summary())
        phases = {h.host: h.failed_in for h in self.model.hosts.values()}
        for text in failure_lines(self.model.failures(), phases):
            self._write(text)
        for text in extra:
            self._write(text)


class LiveRenderer:
    """A rich table, one row per host (phase, state, task, elapsed), redrawn in place; failures scroll above it."""

    def __init__(self, model: ProgressModel, console: Any = None, title: str = "ascend-fa"):
        from rich.console import Console

        self.model = model
        self.console = console or Console()
        self.title = title
        self._lock = threading.Lock()
        self._live: Any = None
        self._closing = False

    def table(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        now = time.time()
        t = Table(title=f"{self.title}: {self.model.play or ''}", title_justify="left", expand=False)
        for col in ("host", "phase", "state", "task", "elapsed"):
            t.add_column(col, no_wrap=True, justify="right" if col == "elapsed" else "left",
                         max_width=48 if col == "task" else None, overflow="ellipsis")
        with self._lock:
            for h in self.model.rows():
                t.add_row(Text(strip_controls(h.host, False)), Text(h.phase or "-"),
                          Text(h.state, style=STATE_STYLES.get(h.state, "")), Text(strip_controls(h.task, False)),
                          fmt_elapsed(h.elapsed(None if h.final else now)))
            if not self._closing:   # the final frame goes without: finish() prints the summary in full
                t.caption = self.model.summary()
        return t

    def __enter__(self) -> LiveRenderer:
        from rich.live import Live

        self._live = Live(get_renderable=self.table, console=self.console, refresh_per_second=4, transient=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._closing = True
            self._live.refresh()
            self._live.__exit__(None, None, None)
            self._live = None

    def on_event(self, event: Mapping[str, Any]) -> None:
        with self._lock:
            lines = self.model.apply(event)
        for line in lines:
            if line.kind == "failure":
                self.console.print(f"[bold red]{_escape(line.plain(phase_width=0))}[/]", highlight=False, soft_wrap=True)

    def finish(self, extra: Iterable[str] = ()) -> None:
        self.console.print(self.model.summary(), highlight=False, soft_wrap=True)
        phases = {h.host: h.failed_in for h in self.model.hosts.values()}
        for text in failure_lines(self.model.failures(), phases):
            self.console.print(f"[red]{_escape(text)}[/]", highlight=False, soft_wrap=True)
        for text in extra:
            self.console.print(text, highlight=False, soft_wrap=True, markup=False)


class QuietRenderer(PlainRenderer):
    """Prints nothing while running; only the summary."""

    def on_event(self, event: Mapping[str, Any]) -> None:
        self.model.apply(event)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(strip_controls(text, False))


def make_renderer(mode: str = "auto", default_phase: str = "run", stream: TextIO | None = None,
                  title: str = "ascend-fa") -> PlainRenderer | LiveRenderer:
    """``auto``: live table on a terminal, plain lines otherwise; ``live`` | ``plain`` | ``quiet`` force one."""
    stream = stream or sys.stdout
    model = ProgressModel(default_phase=default_phase)
    if mode == "auto":
        mode = "live" if stream.isatty() else "plain"
    if mode == "live":
        from rich.console import Console

        return LiveRenderer(model, Console(file=stream), title=title)
    if mode == "quiet":
        return QuietRenderer(model, stream)
    return PlainRenderer(model, stream)
