# Copyright: ascend-fa contributors
# Apache-2.0
"""Strategy ``ascend.fa.fa_linear``: ansible-core's ``linear``, with a controller that sleeps while every worker is busy.

ansible-core hands a task to a worker in ``StrategyBase._queue_task`` (ansible/plugins/strategy/__init__.py): when all
``forks`` workers are busy it walks them again and again with ``time.sleep(0.0001)`` between passes until one is free.
A task on more hosts than forks (the first play of a deploy takes the whole fleet: preflight's facts call on every
host) keeps that loop spinning for as long as the first hosts' calls take; at 1,000 hosts and forks 50, for the whole
preflight. Measured: the main process's CPU for preflight on 24 hosts with forks 16, 3.24 CPU s with linear and
2.09 with this strategy (benchmarks/README.md). This strategy first waits for a free worker, checking every
``internal_poll_interval`` (the interval of ansible-core's own wait for results), then hands the task to the stock
code, which finds that worker at once. The task order, batches, failures and everything else are linear's.

The roles end hosts early with meta tasks (``end_host``, ``end_role``), whose conditions the main process evaluates
without a worker. ansible-core announces a meta task once per host (``_execute_meta`` sends
``v2_playbook_on_task_start`` for each), so the output showed its ``TASK [...]`` header once per host, a thousand
headers for one task at 1,000 hosts; here the task is announced once, at its first host.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: fa_linear
short_description: linear, waiting for a free worker without spinning
description:
  - Runs exactly like C(ansible.builtin.linear) (each task on every host of the batch before the next task).
  - When every one of the run's C(forks) workers is busy, the controller waits for one to finish by checking every
    C(internal_poll_interval) seconds (C(ansible.cfg) C([defaults])), where C(linear) checks in a busy loop every
    0.1 ms and keeps a core busy for as long as it waits.
  - A meta task (C(end_host), C(end_role)) is announced once, not once per host.
  - A task with C(throttle) is left to the stock code.
  - The collection's C(ansible.cfg) and execution environment select it (C(strategy = ascend.fa.fa_linear),
    E(ANSIBLE_STRATEGY)).
author: ascend-fa contributors (@ascend-fa)
"""

import time
from typing import Any

from ansible import constants as C
from ansible.plugins.strategy.linear import StrategyModule as LinearStrategyModule


def all_busy(workers: list[Any]) -> bool:
    """True while every worker slot holds a process that still runs (an empty slot, ``None``, is free)."""
    return bool(workers) and all(w is not None and w.is_alive() for w in workers)


TASK_START = "v2_playbook_on_task_start"


class StrategyModule(LinearStrategyModule):
    """``linear`` with a sleeping wait for a free worker and meta tasks announced once."""

    _fa_announced: str | None = None

    def _execute_meta(self, task: Any, play_context: Any, iterator: Any, target_host: Any) -> Any:
        if task._uuid != self._fa_announced:
            self._fa_announced = task._uuid
            return super()._execute_meta(task, play_context, iterator, target_host)
        tqm = self._tqm
        send = tqm.send_callback

        def quiet(name: str, *args: Any, **kwargs: Any) -> None:
            if name != TASK_START:
                send(name, *args, **kwargs)

        tqm.send_callback = quiet
        try:
            return super()._execute_meta(task, play_context, iterator, target_host)
        finally:
            del tqm.send_callback        # the class's method again

    def _queue_task(self, host: Any, task: Any, task_vars: dict[str, Any], play_context: Any) -> None:
        if not task.throttle:
            poll = float(C.DEFAULT_INTERNAL_POLL_INTERVAL) or 0.001
            while all_busy(self._workers):
                time.sleep(poll)
        super()._queue_task(host, task, task_vars, play_context)
