# Copyright: ascend-fa contributors
# Apache-2.0
"""Action plugin ``fa_rollout_record``: everything the rollout records about one host, in one task.

The ``always`` section of role ``fa_rollout`` used three tasks per host for its records: a ``lineinfile`` of a failed
rollout into the host's ``upgrades.jsonl`` (skipped on success, but a worker per host all the same), the upgrade
record on the controller (``fa_report``) and the rerun fast path's record (``fa_converged state=record``). This plugin
does the three in one worker, with the same code:

* ``host_line`` (a failed or rolled-back rollout): the record appended to ``host_log`` on the host by the module
  ``ansible.builtin.lineinfile`` (the only remote work; none on success);
* ``path``: the record written on the controller (``fa_report.write_atomic``: temp file and rename), not a change;
* ``converged``: the host's fast-path record (``fa_converged.record``, the one function that builds it), returned as
  the fact ``ascend_fa_converged``;
* ``facts``: the host's outcome (``fa_rollout_result``, ``fa_rollout_from``), returned as ``rollout_facts``: the run's
  records take them from this result (a set_fact per host did before).

Nothing is written in check mode (the rollout changed nothing to record). ``result`` ``unchanged``: nothing to record
either (the host was already converged; its records are those of the run that converged it).
"""

from __future__ import annotations

import json

from ansible.plugins.action import ActionBase
from ansible_collections.ascend.fa.plugins.action import fa_converged
from ansible_collections.ascend.fa.plugins.action.fa_report import render_content, write_atomic

ARGUMENT_SPEC = {
    "record": {"type": "dict", "required": True},
    "path": {"type": "str", "default": ""},
    "host_log": {"type": "str", "default": ""},
    "converged": {"type": "dict", "default": {}},
    # the host's rollout outcome as variables (fa_rollout_result, fa_rollout_from), returned as rollout_facts for the
    # run's records (plugin_utils/records.py run_facts_of) and the run's summary: no set_fact task per host
    "facts": {"type": "dict", "default": {}},
}
# results whose reason goes into the host's own upgrades.jsonl (successful ones are in history.jsonl, by fa_install)
HOST_LOGGED = ("rolled_back", "failed")


def plan(record: dict, check_mode: bool) -> dict[str, bool]:
    """Which records this result calls for."""
    result = record.get("result") or "failed"
    act = not check_mode and result != "unchanged"
    return {"host_line": not check_mode and result in HOST_LOGGED, "controller": act, "converged": act}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        record = args["record"]
        todo = plan(record, bool(self._task.check_mode))
        result.update(changed=False, recorded=[], rollout_facts=dict(args["facts"]))
        if todo["host_line"] and args["host_log"]:
            res = self._execute_module(
                module_name="ansible.builtin.lineinfile", task_vars=task_vars,
                module_args={"path": args["host_log"], "line": json.dumps(record, sort_keys=True, default=str),
                             "create": True, "mode": "0644"})
            if res.get("failed"):
                result.update(failed=True, msg=f"{record.get('host')}: could not append to {args['host_log']}: "
                                               f"{res.get('msg')}")
                return result
            result["changed"] = bool(res.get("changed"))
            result["recorded"].append("host")
        if todo["controller"] and args["path"]:
            write_atomic(args["path"], render_content(record), 0o644)
            result["recorded"].append("controller")
        if todo["converged"] and args["converged"]:
            c = args["converged"]
            rec = fa_converged.record(str(c.get("key") or ""), dict(c.get("fingerprint") or {}), "rollout",
                                      bool(c.get("keep")))
            result["ansible_facts"] = rec["ansible_facts"]
            result["converged_recorded"] = rec["recorded"]
            result["recorded"].append("converged")
        return result
