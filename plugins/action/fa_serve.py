# Copyright: ascend-fa contributors
# Apache-2.0
"""Action plugin ``fa_serve``: serve a package from a seed host, with at most one copy sent by the controller.

The module first looks for the package on the seed host itself (``sources``: the shared store, the build output, the
host's kept package), sha256-checked. Only when none holds it (``package_needed``) does this plugin push one copy of
``src``, the controller's cache entry: its signed record is checked first and a private copy, sha256-checked, is
transferred (``signed_record`` / ``private_copy`` and the transfer of ``fa_install``'s action plugin, reused as they
are), and the module runs again with it. ``src`` is checked before anything runs, so a cache entry this controller did
not sign is never served.

The result carries ``source`` (``{host, url, sha256, size, folder}``: what ``fa_install_sources`` keeps per build key),
and its failure messages name the seed host (the task runs delegated to it).
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.ascend.fa.plugins.action.fa_install import ActionModule as InstallAction
from ansible_collections.ascend.fa.plugins.action.fa_install import signed_record


def source_entry(host: str, args: dict, res: dict) -> dict | None:
    """What the hosts of the build key need to pull from this seed (None when nothing is served)."""
    if res.get("failed") or not res.get("package_url"):
        return None
    return {"host": host, "url": res["package_url"], "sha256": args.get("sha256"), "size": res.get("size"),
            "folder": args.get("folder"), "placed": res.get("placed")}


def warned(res: dict) -> dict:
    """A failed result as an ok one with a warning (on_failure=warn): the hosts get the package pushed instead."""
    msg = (f"{res.get('msg')}. The hosts of this build key get the package pushed from the controller instead "
           "(docs/distribution.md)")
    out = {k: v for k, v in res.items() if k not in ("failed", "msg", "exception")}
    out.update(changed=bool(res.get("changed")), served=False, failure=res.get("msg"),
               warnings=list(res.get("warnings") or []) + [msg])
    return out


class ActionModule(InstallAction):
    """``fa_install``'s plugin for its transfer (``_transfer_and_run``); ``run`` is this module's own."""

    TRANSFERS_FILES = True
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = ActionBase.run(self, tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        src = args.pop("src", None)
        on_failure = args.pop("on_failure", None) or "fail"
        if on_failure not in ("fail", "warn"):
            raise AnsibleActionFail(f"on_failure={on_failure!r}: fail or warn")
        host = str(self._task.delegate_to or task_vars.get("inventory_hostname") or "this host")
        source = None
        if src:
            if (args.get("state") or "started") != "started" or not args.get("sha256"):
                raise AnsibleActionFail("src is only used with state=started and a sha256")
            try:
                source = self._find_needle("files", os.path.expanduser(str(src)))
            except Exception as exc:  # AnsibleFileNotFound and friends: say which file
                raise AnsibleActionFail(f"src {src} is not on the controller: {exc}") from exc
            signed_record(source, args.get("sha256"))
        try:
            res = self._execute_module(module_name=self._task.action, module_args=args, task_vars=task_vars)
            if source and res.get("failed") and res.get("package_needed"):
                if self._task.check_mode:   # nothing is transferred or started in check mode
                    res = {"changed": True, "placed": "would be pushed from the controller"}
                else:
                    res = self._transfer_and_run(source, args, task_vars)
                    if not res.get("failed"):
                        res["placed"] = "pushed"
            if res.get("failed"):
                res["msg"] = f"{host}: {res.get('msg') or 'fa_serve failed'}"
            if (args.get("state") or "started") == "started":
                res["seed"] = {"host": host, "folder": args.get("folder")}
                res["served"] = not res.get("failed")
            if res.get("failed") and on_failure == "warn":
                res = warned(res)
            result.update(res)
            entry = source_entry(host, args, res)
            if entry:
                result["source"] = entry
            return result
        finally:
            if self._connection._shell.tmpdir:
                self._remove_tmp_path(self._connection._shell.tmpdir)
