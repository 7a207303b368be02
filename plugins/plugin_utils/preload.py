"""Import, once in the controller's main process, the collection code that every task worker would import again.

Ansible runs each task of each host in a worker forked from the main process. A worker inherits every module the
main process has imported, and imports the rest itself, for that one task, then exits. The main process imports the
action plugins (the strategy loads their classes), but a filter plugin is first imported inside a worker, so each
task that uses one of the ``ascend.fa`` filters imported ``plugins/filter/ascend_fa.py`` and the controller code behind
it again: about 25-40 ms of controller CPU per task and host, most of a set_fact's cost (py-spy on an 8-host deploy,
2026-12-05: 8 % of all worker time; 20 set_facts with one ascend.fa filter on 2 hosts: 3.13 CPU s without the
preload, 2.07 with it, 27 ms per task). Importing them here, from the ``ascend.fa.fa_records`` callback
that ansible.cfg, the CLI and the execution environment enable, makes every worker start with them loaded.

The same callback calls :func:`freeze` as each task starts: the objects the main process holds then (the inventory,
the variables, the results so far) move to the garbage collector's permanent generation, so a worker's collections
do not walk them and do not copy the memory pages under them (copy-on-write) for nothing (20 set_facts on 4 hosts:
3.50 CPU s without, 3.15 with it, 4 ms per task; Python's gc.freeze documentation describes this use before fork).

Frozen objects are not collected: cyclic garbage the main process makes during a play would stay. :func:`thaw` (at
each play and each serial batch) puts them back and collects once.

Nothing here changes behaviour: without the callback the workers import the same modules themselves.
"""

from __future__ import annotations

import gc
import importlib

# The filter plugin (it imports the plugin_utils modules the filters use), what the action plugins import when
# they run, and the ansible.builtin filters, tests and lookups the roles use per host.
MODULES = (
    "ansible_collections.ascend.fa.plugins.filter.ascend_fa",
    "ansible_collections.ascend.fa.plugins.plugin_utils.lock",
    "ansible.plugins.filter.core",
    "ansible.plugins.filter.mathstuff",
    "ansible.plugins.test.core",
    "ansible.plugins.test.files",
    "ansible.plugins.lookup.file",
)


def preload(modules: tuple[str, ...] = MODULES) -> list[str]:
    """Import ``modules``; returns those that could not be imported (each is imported by the workers as before)."""
    missed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a speed-up only: a worker imports (and reports) it itself
            missed.append(name)
    return missed


def freeze() -> None:
    """Move every object the process tracks now to the permanent generation (``gc.freeze``) before workers fork."""
    gc.freeze()


def thaw() -> None:
    """Undo :func:`freeze` and collect once (each play or serial batch), so cyclic garbage frozen meanwhile is freed."""
    gc.unfreeze()
    gc.collect()
