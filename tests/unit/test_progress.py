"""The progress model and renderers on recorded ansible-runner events (tests/data/runner_events/).

tiny_pipeline.jsonl: tiny_pipeline.yml on five hosts -- good (a failure rescued in phase_b), bad (fails in
phase_b), loopy (a loop item fails in phase_b), done (ends itself in phase_a with meta: end_host), gone
(unreachable); roles helper (a dependency of phase_a), phase_a, phase_b. Re-record with record.py there.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from ascend_fa import progress
from ascend_fa.progress import Line, ProgressModel

DATA = Path(__file__).resolve().parents[1] / "data" / "runner_events"
CLOCK = re.compile(r"^\d\d:\d\d:\d\d ")


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return [json.loads(line) for line in (DATA / "tiny_pipeline.jsonl").read_text().splitlines() if line.strip()]


def run_model(events: list[dict], **kw) -> tuple[ProgressModel, list[Line]]:
    model = ProgressModel(**kw)
    lines: list[Line] = []
    for e in events:
        lines += model.apply(e)
    return model, lines


def test_final_state_per_host(events):
    model, _ = run_model(events)
    assert {h.host: h.state for h in model.rows()} == {
        "good": "changed", "bad": "failed", "loopy": "failed", "done": "changed", "gone": "unreachable"}
    assert {h.host: h.phase for h in model.rows()} == {
        "good": "phase_b", "bad": "phase_b", "loopy": "phase_b", "done": "phase_a", "gone": "phase_a"}
    assert all(h.final and h.running == 0 for h in model.rows())


def test_failure_messages_name_task_and_reason(events):
    model, _ = run_model(events)
    fails = model.failures()
    assert set(fails) == {"bad", "loopy", "gone"}
    assert fails["bad"] == "Fail on the bad host: bad: the bad host fails here"
    assert fails["loopy"].startswith("Loop with a failing item: item 2: non-zero return code")
    assert fails["gone"].startswith("Say hello: ") and "port 1" in fails["gone"]
    assert "Task failed" not in fails["gone"]


def test_phase_lines_one_per_host_and_phase(events):
    _, lines = run_model(events)
    phase_lines = [(ln.host, ln.phase, ln.state) for ln in lines if ln.kind in ("phase", "failure")]
    assert ("good", "phase_a", "changed") in phase_lines
    assert ("bad", "phase_b", "failed") in phase_lines
    assert ("loopy", "phase_b", "failed") in phase_lines
    assert ("gone", "phase_a", "unreachable") in phase_lines
    assert ("done", "phase_a", "changed") in phase_lines          # closed by the recap: end_host sends no event
    assert ("good", "phase_b", "rescued") in phase_lines
    # each (host, phase) is reported once, except the rescued one (failed, then rescued)
    counts: dict[tuple[str | None, str | None], int] = {}
    for host, phase, _state in phase_lines:
        counts[(host, phase)] = counts.get((host, phase), 0) + 1
    assert {k: v for k, v in counts.items() if v > 1} == {("good", "phase_b"): 2}
    assert all(ln.elapsed is None or ln.elapsed >= 0 for ln in lines)


def test_ignored_errors_are_not_failures(events):
    ignored = [e for e in events if e["event"] == "runner_on_failed" and e["event_data"].get("ignore_errors")]
    assert ignored, "the recording has ignored failures"
    assert all(progress.failure_message(e) is None for e in ignored)
    _, lines = run_model(events)
    assert not [ln for ln in lines if ln.kind == "failure" and ln.phase == "phase_a" and ln.host != "gone"]


def test_hidden_roles_count_towards_the_next_phase(events):
    model, lines = run_model(events, hidden_phases=frozenset({"helper"}))
    assert not [ln for ln in lines if ln.phase == "helper"]
    good = model.hosts["good"]
    first_a = next(ln for ln in lines if ln.host == "good" and ln.phase == "phase_a")
    # phase_a of good started with good's first event (the helper tasks)
    assert first_a.elapsed == pytest.approx(first_a.time - good.first_seen, abs=1e-6)


def test_default_phase_for_role_less_tasks():
    model = ProgressModel(default_phase="bench")
    ev = {"event": "runner_on_ok", "created": "2026-01-01T00:00:00+00:00",
          "event_data": {"host": "n1", "task": "Run fa_bench.py", "role": "", "res": {"changed": False}}}
    model.apply(ev)
    assert model.hosts["n1"].phase == "bench"


def test_summary_line(events):
    model, _ = run_model(events)
    text = model.summary()
    assert text.startswith("hosts=5 ok=2 changed=2 failed=2 unreachable=1 | tasks ok=")
    assert "rescued=1" in text and text.endswith("s")


def test_summary_without_recap():
    model = ProgressModel()
    model.apply({"event": "runner_on_start", "created": "2026-01-01T00:00:00+00:00",
                 "event_data": {"host": "n1", "task": "t", "role": "fa_build"}})
    assert "running=1" in model.summary() and "no recap" in model.summary()


def test_plain_renderer_writes_readable_lines(events):
    out = io.StringIO()
    r = progress.make_renderer("auto", stream=out)      # a StringIO is not a terminal: plain lines
    assert isinstance(r, progress.PlainRenderer)
    with r:
        for e in events:
            r.on_event(e)
    r.finish(["artifacts: /tmp/x"])
    text = out.getvalue()
    assert "\x1b[" not in text                             # no escape codes in a pipe
    lines = text.splitlines()
    body = [ln for ln in lines if CLOCK.match(ln)]
    assert body[0].endswith("== play: Tiny pipeline")
    assert any(re.match(r"^\S+ bad\s+phase_b\s+failed\s+\d+\.\ds  Fail on the bad host: ", ln) for ln in body)
    assert any(re.match(r"^\S+ good\s+phase_a\s+changed\s+\d+\.\ds$", ln) for ln in body)
    assert lines[-5].startswith("hosts=5 ok=2")
    assert lines[-4] == "  FAILED bad [phase_b]: Fail on the bad host: bad: the bad host fails here"
    assert lines[-3].startswith("  FAILED gone [phase_a]: Say hello:")
    assert lines[-2].startswith("  FAILED loopy [phase_b]: Loop with a failing item")
    assert lines[-1] == "artifacts: /tmp/x"


def test_live_renderer_draws_a_row_per_host(events):
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=160, color_system=None)
    r = progress.LiveRenderer(ProgressModel(), console=console, title="ascend-fa test")
    with r:
        for e in events:
            r.on_event(e)
    r.finish()
    text = buf.getvalue()
    for host in ("good", "bad", "loopy", "done", "gone"):
        assert host in text
    assert "phase_b" in text and "unreachable" in text
    assert "hosts=5 ok=2" in text
    assert "FAILED bad [phase_b]" in text


def test_quiet_renderer_prints_only_the_summary(events):
    out = io.StringIO()
    r = progress.make_renderer("quiet", stream=out)
    for e in events:
        r.on_event(e)
    r.finish()
    assert out.getvalue().splitlines()[0].startswith("hosts=5")


@pytest.mark.parametrize(("res", "expected"), [
    ({"msg": "boom"}, "boom"),
    ({"msg": "Task failed: Action failed: x"}, "x"),
    ({"msg": "non-zero return code", "rc": 2, "stderr": "a\nlast words\n"}, "non-zero return code (rc=2): last words"),
    ({"msg": "One or more items failed", "results": [{"failed": False, "item": 1},
                                                     {"failed": True, "item": "b", "msg": "no"}]}, "item b: no"),
    ({}, "failed"),
])
def test_result_message(res, expected):
    assert progress.result_message(res) == expected


def test_result_message_is_one_bounded_line():
    text = progress.result_message({"msg": "line1\n" + "x" * 1000})
    assert "\n" not in text and len(text) <= progress.MAX_MESSAGE


@pytest.mark.parametrize(("seconds", "text"), [(None, "-"), (3.21, "3.2s"), (75, "1m15s"), (3725, "1h02m")])
def test_fmt_elapsed(seconds, text):
    assert progress.fmt_elapsed(seconds) == text
