# Copyright: ascend-fa contributors
# Apache-2.0
"""Action plugin ``fa_install``: transfer the package (only when the host needs it) and install it, in one task.

Before, the role copied the .run with ``ansible.builtin.copy`` (a stat module, a transfer and a copy module) and then
ran the ``fa_install`` module. With ``src`` (the .run on the controller) this plugin:

* transfers nothing when the host's facts (``ansible_facts.ascend.fa_package``, read by ``ascend_facts``) say it
  already keeps ``packages/<sha256>.run`` (the installed package or the previous one), or in check mode: the module
  runs once, and converges, reinstalls from the kept copy, or reports what would change;
* else creates the remote temporary folder, puts the file there and runs the module once with ``package`` pointing at
  it; the module moves the file to ``packages/<sha256>.run`` and removes the temporary folder itself (the plugin
  removes it only when the module could not), so the install costs three remote executions (mkdir, put, module);
* when the module answers ``package_needed`` (stale facts: the kept copy is gone), transfers and runs it again.

With ``fetch_url`` (the package on its build key's seed host, ``fa_serve``; ``docs/distribution.md``) a host that
lacks the package pulls it itself: the module runs once without a transfer, downloads the package (size and sha256
checked against this signed record: ``size`` comes from it) and installs it. When the pull fails (refused connection,
HTTP error, timeout, a served copy with the wrong sha256) the module leaves no file and answers ``package_needed`` with
``fetch_error``; the plugin then pushes the package as above and warns, naming the host, the URL and the error. The
result says how the package came: ``package_source`` kept | pulled | pushed.

Trust (``ascend_fa/trust.py``): ``src`` must be the package of a controller cache entry whose record
(``artifact.json`` next to it) this controller signed, for that file name, that build key and the ``sha256`` the
task gives; the plugin checks that before anything runs, and before a transfer it copies the package into a private
folder, checks the copy's sha256 against the signed one and transfers that copy (nothing can swap the file between
the check and the transfer). The module then checks the transferred file against the same sha256 on the host.

Without ``src`` (``state=previous``, or ``package`` already on the host) it runs the module as a plain module would
(a rollback's ``trusted_sha256``, the signed sha256s of the cache, is checked by the module on the host).
It imports the controller code from ``plugins/plugin_utils`` by its collection name, in a checkout and installed.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.ascend.fa.plugins.plugin_utils import artifacts, trust

ACTION_ONLY_ARGS = ("src",)


def signed_record(source: str, sha256: str | None) -> dict:
    """The signed record of the cache entry holding ``source`` (``<cache>/<build_key>/<file>``), checked: this
    controller's HMAC, this build key, this file name and ``sha256``. Raises AnsibleActionFail saying why not."""
    entry = os.path.dirname(os.path.abspath(source))
    key = os.path.basename(entry)
    fix = (f"Fix: delete {entry} and rerun the deploy (it rebuilds the package and signs its record); "
           "see docs/security.md")
    try:
        secret = trust.load_key()
    except trust.TrustError as exc:
        raise AnsibleActionFail(str(exc)) from exc
    record = trust.read_record(os.path.dirname(entry), key)
    why = (f"no readable {trust.RECORD} next to it" if record is None
           else trust.record_problem(record, secret, key))
    if not why and record["file"] != os.path.basename(source):
        why = f"its record is for {record['file']}, not {os.path.basename(source)}"
    if not why and sha256 != record["sha256"]:
        why = f"the task asks for sha256 {sha256}, the signed record says {record['sha256']}"
    if why:
        raise AnsibleActionFail(f"package {source} refused, nothing was transferred or installed: {why} "
                                f"({trust.NOT_SIGNED}). {fix}")
    return record


def private_copy(source: str, sha256: str, folder: str) -> str:
    """``source`` copied into ``folder`` (private to this process), its sha256 checked: the file that is transferred."""
    copy = os.path.join(folder, os.path.basename(source))
    shutil.copyfile(source, copy)
    got = artifacts.sha256_file(copy)
    if got != sha256:
        raise AnsibleActionFail(f"package {source} refused, nothing was transferred or installed: its sha256 is {got}, "
                                f"the signed record says {sha256} (corrupted or replaced after it was signed). Fix: "
                                f"delete {os.path.dirname(source)} and rerun the deploy to rebuild it")
    return copy


kept_sha256s = artifacts.kept_sha256s


def transfer_decision(args: dict, facts: dict | None, check_mode: bool) -> tuple[bool, str]:
    """Whether ``src`` must be transferred before the module runs, and why (shown in the result)."""
    if (args.get("state") or "present") != "present":
        return False, "state is not present"
    if not args.get("src"):
        return False, "no src"
    if check_mode:
        return False, "check mode: the module reports what would change without the file"
    sha = args.get("sha256")
    if sha and sha in kept_sha256s(facts):
        return False, f"the host keeps packages/{sha}.run (facts)"
    if args.get("fetch_url"):
        return False, f"the host pulls the package from {args['fetch_url']}"
    return True, "the host does not have this package"


def signed_size(record: dict, given) -> int | None:
    """The package size of the signed ``record`` (what a pull may receive), checked against the task's ``size``."""
    try:
        size = int(record.get("size"))
    except (TypeError, ValueError):
        return None
    if given not in (None, "") and str(given) != str(size):
        raise AnsibleActionFail(f"size={given} is not the size of the signed record of the package ({size}): nothing "
                                "was pulled or installed. Fix: pass fa_cached[fa_build_key].size, or leave size out")
    return size


def pull_args(module_args: dict, record: dict | None) -> tuple[dict, str | None]:
    """``module_args`` for the first module run: with ``fetch_url``, ``size`` from the signed record. Returns the
    arguments and why a pull is not possible (None: it is, or none was asked for)."""
    if not module_args.get("fetch_url"):
        module_args.pop("size", None)
        return module_args, None
    size = signed_size(record or {}, module_args.get("size"))
    if size is None:
        module_args.pop("fetch_url", None)
        module_args.pop("size", None)
        return module_args, "the signed record has no size"
    return dict(module_args, size=size), None


def fallback_warning(host: str, url: str, error: str) -> str:
    return (f"{host}: could not pull the package from {url} ({error}); the controller pushed it instead. Fix: open "
            "the port between the hosts (fa_install_serve_port; docs/distribution.md), or set fa_install_source=push")


class ActionModule(ActionBase):

    TRANSFERS_FILES = True
    _supports_check_mode = True
    _supports_async = False

    def _early_needs_tmp_path(self):
        # the remote tmp is created only when a transfer is needed (not on a converged host, not in check mode)
        return False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect

        args = dict(self._task.args)
        src = args.get("src")
        if src and args.get("package"):
            raise AnsibleActionFail("src and package are mutually exclusive: src is the .run on the controller "
                                    "(transferred when needed), package a .run already on the host")
        if src and (args.get("state") or "present") != "present":
            raise AnsibleActionFail("src is only used with state=present")
        record = None
        if src:
            try:
                source = self._find_needle("files", os.path.expanduser(str(src)))
            except Exception as exc:  # AnsibleFileNotFound and friends: say which file
                raise AnsibleActionFail(f"src {src} is not on the controller: {exc}") from exc
            record = signed_record(source, args.get("sha256"))
        elif args.get("fetch_url"):
            raise AnsibleActionFail("fetch_url needs src: the pull is checked against the signed record of src")
        module_args, no_pull = pull_args({k: v for k, v in args.items() if k not in ACTION_ONLY_ARGS}, record)

        transfer, why = transfer_decision(module_args | {"src": src}, task_vars.get("ansible_facts"),
                                          bool(self._task.check_mode))
        try:
            if not transfer:
                res = self._execute_module(module_name=self._task.action, module_args=module_args,
                                           task_vars=task_vars)
                if not (src and res.get("failed") and res.get("package_needed")):
                    result.update(res)
                    if src:
                        result.update(package_transferred=False, transfer_reason=why)
                    return result
                why = "the module needs the package (the host's facts were stale)"
                if res.get("fetch_error"):
                    host = task_vars.get("inventory_hostname", "this host")
                    result["warnings"] = [fallback_warning(host, module_args["fetch_url"], res["fetch_error"])]
                    result["fetch_error"] = res["fetch_error"]
                    why = "the pull failed"
            elif no_pull and args.get("fetch_url"):
                why += f" (no pull: {no_pull})"
            pushed = {k: v for k, v in module_args.items() if k not in ("fetch_url", "size")}
            warnings = result.pop("warnings", [])
            result.update(self._transfer_and_run(source, pushed, task_vars))
            result.update(package_transferred=True, transfer_reason=why)
            if warnings:
                result["warnings"] = warnings + list(result.get("warnings") or [])
            if not result.get("failed") and result.get("package_source") in ("given", "pushed"):
                result["package_source"] = "pushed"
            return result
        finally:
            if self._connection._shell.tmpdir:
                self._remove_tmp_path(self._connection._shell.tmpdir)

    def _transfer_and_run(self, source: str, module_args: dict, task_vars: dict) -> dict:
        with tempfile.TemporaryDirectory(prefix="ascend-fa-pkg-") as private:
            checked = private_copy(source, module_args["sha256"], private)
            tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
            remote = self._connection._shell.join_path(tmpdir, os.path.basename(source))
            self._transfer_file(checked, remote)
        self._fixup_perms2((tmpdir, remote), execute=False)
        module_args = dict(module_args, package=remote)
        if self._should_remove_tmp_path(tmpdir):
            module_args["_transfer_dir"] = tmpdir
        res = self._execute_module(module_name=self._task.action, module_args=module_args, task_vars=task_vars)
        if res.pop("transfer_dir_removed", False):
            self._connection._shell.tmpdir = None   # the module removed it: no round trip for that
        return res
