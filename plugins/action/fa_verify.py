# Copyright: ascend-fa contributors
# Apache-2.0
"""Action plugin ``fa_verify``: run the module ``fa_verify`` and keep the host's result on the controller, one task.

The role used to follow the module with a second task (``fa_report``, in an ``always`` section) that wrote
``<fa_verify_results_dir>/<host>.json`` on the controller: a worker per host for a file write. With
``controller_results`` (a path on the controller) this plugin writes that file itself, right after the module
returns, also when the check failed or the host could not be reached (the record then says why); never in check mode.
Without ``controller_results`` it is the plain module. The file is written atomically (``fa_report.write_atomic``)
and is not a change to the host.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible_collections.ascend.fa.plugins.action.fa_report import render_content, write_atomic


def controller_record(host: str, res: dict[str, Any]) -> dict[str, Any]:
    """What the controller keeps of a verification (the report and ``ascend-fa report`` read it)."""
    return {"host": host,
            "ok": bool(res.get("ok", False)),
            "msg": res.get("msg", ""),
            "summary": res.get("summary") or res.get("msg", ""),
            "failed_cards": res.get("failed_cards") or [],
            "cards": res.get("cards") or [],
            "set_env": res.get("set_env") or [],
            "commands": res.get("commands") or [],
            "checked_at": res.get("checked_at"),
            "package": res.get("package")}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        path = args.pop("controller_results", None)
        host = str(task_vars.get("inventory_hostname") or "")
        res: dict[str, Any] = {"ok": False, "msg": "the check did not return"}
        try:
            res = self._execute_module(module_name=self._task.action, module_args=args, task_vars=task_vars)
            result.update(res)
            return result
        except AnsibleError as exc:
            res = {"ok": False, "msg": f"{host}: the check could not run: {exc}"}
            raise
        finally:
            if path and not self._task.check_mode:
                write_atomic(str(path), render_content(controller_record(host, res)), 0o644)
                result["controller_results"] = str(path)
