"""The strategy ascend.fa.fa_linear waits for a free worker by sleeping, where ansible-core's linear spins.

The stock ``StrategyBase._queue_task`` walks the workers with ``time.sleep(0.0001)`` between passes while all are busy
(ansible/plugins/strategy/__init__.py); ours checks once per ``internal_poll_interval`` and only then hands over.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from ansible import constants as C
from ansible.plugins.strategy.linear import StrategyModule as Linear
from ansible_collections.ascend.fa.plugins.strategy import fa_linear


class Worker:
    """A worker process that is alive until ``until`` (monotonic); counts how often it was asked."""

    def __init__(self, until: float) -> None:
        self.until, self.asked = until, 0

    def is_alive(self) -> bool:
        self.asked += 1
        return time.monotonic() < self.until


def test_all_busy_only_when_every_slot_runs() -> None:
    now = time.monotonic()
    assert fa_linear.all_busy([Worker(now + 60), Worker(now + 60)])
    assert not fa_linear.all_busy([Worker(now + 60), None])          # an empty slot is free
    assert not fa_linear.all_busy([Worker(now + 60), Worker(now - 1)])
    assert not fa_linear.all_busy([])


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    monkeypatch.setattr(Linear, "_queue_task", lambda self, *args: calls.append((time.monotonic(), args)))
    monkeypatch.setattr(C, "DEFAULT_INTERNAL_POLL_INTERVAL", 0.02)
    return calls


def _strategy(workers: list[Any]) -> fa_linear.StrategyModule:
    strategy = object.__new__(fa_linear.StrategyModule)      # no TaskQueueManager needed for this method
    strategy._workers = workers
    return strategy


def test_waits_for_a_free_worker_by_polling_not_spinning(handed: list[Any]) -> None:
    started = time.monotonic()
    busy = [Worker(started + 0.2), Worker(started + 10)]
    _strategy(busy)._queue_task("host", SimpleNamespace(throttle=0), {}, "pc")
    assert len(handed) == 1 and handed[0][1] == ("host", SimpleNamespace(throttle=0), {}, "pc")
    assert handed[0][0] - started >= 0.2                               # handed over once a worker was free
    assert busy[0].asked <= 0.2 / 0.02 + 3                             # about one check per poll interval
    # (ansible-core's loop would have asked thousands of times in 0.2 s)


def test_a_free_worker_is_used_at_once_and_throttle_is_left_to_linear(handed: list[Any]) -> None:
    started = time.monotonic()
    _strategy([Worker(started + 10), None])._queue_task("h", SimpleNamespace(throttle=0), {}, "pc")
    _strategy([Worker(started + 10)])._queue_task("h", SimpleNamespace(throttle=2), {}, "pc")  # no wait of ours
    assert len(handed) == 2 and time.monotonic() - started < 0.1


def test_the_repo_and_the_execution_environment_use_it() -> None:
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    assert "strategy = ascend.fa.fa_linear" in (root / "ansible.cfg").read_text()
    assert "ANSIBLE_STRATEGY=ascend.fa.fa_linear" in (root / "execution-environment.yml").read_text()


class Tqm:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def send_callback(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.sent.append((name, args[0] if args else None))


def test_a_meta_task_is_announced_once_not_once_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def stock(self: Any, task: Any, play_context: Any, iterator: Any, host: str) -> list[str]:
        # what ansible-core's _execute_meta does for every host: announce the task, then report the host's result
        self._tqm.send_callback("v2_playbook_on_task_start", task, is_conditional=False)
        self._tqm.send_callback("v2_runner_on_skipped", host)
        return [host]

    monkeypatch.setattr(Linear, "_execute_meta", stock)
    strategy = _strategy([])
    strategy._tqm = tqm = Tqm()
    end_role, end_host = SimpleNamespace(_uuid="a"), SimpleNamespace(_uuid="b")
    for host in ("h1", "h2", "h3"):
        assert strategy._execute_meta(end_role, None, None, host) == [host]
    for host in ("h1", "h2"):
        strategy._execute_meta(end_host, None, None, host)
    strategy._execute_meta(end_role, None, None, "h4")           # the same task again (the next serial batch)
    starts = [task._uuid for name, task in tqm.sent if name == "v2_playbook_on_task_start"]
    assert starts == ["a", "b", "a"]
    assert [h for name, h in tqm.sent if name == "v2_runner_on_skipped"] == ["h1", "h2", "h3", "h1", "h2", "h4"]
    assert "send_callback" not in vars(tqm)                        # the manager's own method again
