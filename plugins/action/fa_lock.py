# Copyright: ascend-fa contributors
# Apache-2.0
"""Action plugin ``fa_lock``: take this run's controller lock for a host or a build key (``ascend_fa/lock.py``).

Controller only (no module, no connection). The lock belongs to the ``ansible-playbook`` process of the run (found
from the worker this task runs in), so it holds for a plain ``ansible-playbook``, ansible-runner, AWX and the CLI
alike, for the whole run, and goes with the process: a watcher removes the run's locks when it exits, and a lock
whose process is gone (killed run) is taken over with a warning. A live holder stops the host (after waiting up to
``wait`` seconds) with its pid, start time and command and the fix. Check mode takes no lock (it changes nothing)
and warns when another run holds it. Never "changed": a lock is bookkeeping, not a change of the host.
"""

from __future__ import annotations

import os

from ansible.plugins.action import ActionBase
from ansible_collections.ascend.fa.plugins.plugin_utils import lock

ARGUMENT_SPEC = {
    "host": {"type": "str"},
    "build_key": {"type": "str"},
    # empty: <cache_dir>/../locks
    "lock_dir": {"type": "str", "default": ""},
    "cache_dir": {"type": "str", "default": ""},
    # seconds to wait for a live holder before stopping the host
    "wait": {"type": "int", "default": 0},
}


def lock_target(args: dict) -> tuple[str, str]:
    """(kind, name) of the lock the arguments ask for."""
    if bool(args.get("host")) == bool(args.get("build_key")):
        raise ValueError("fa_lock: give exactly one of host and build_key")
    return (lock.HOST, args["host"]) if args.get("host") else (lock.BUILD, args["build_key"])


def lock_folder(args: dict) -> str:
    if args.get("lock_dir"):
        return os.path.expanduser(args["lock_dir"])
    if args.get("cache_dir"):
        return str(lock.default_lock_dir(args["cache_dir"]))
    raise ValueError("fa_lock: lock_dir or cache_dir is needed (fa_lock_dir, fa_artifact_cache)")


def take(args: dict, hostname: str, check_mode: bool, owner: lock.Owner | None = None) -> dict:
    """The task result: the lock taken (or, in check mode, looked at), or the failure naming the holder."""
    try:
        kind, name = lock_target(args)
        folder = lock_folder(args)
    except ValueError as exc:
        return {"failed": True, "msg": f"{hostname}: {exc}"}
    if args.get("wait", 0) < 0:
        return {"failed": True, "msg": f"{hostname}: fa_lock_wait={args['wait']}: expected seconds >= 0. "
                                       "Fix: -e fa_lock_wait=0 (stop at once) or a number of seconds"}
    owner = owner or lock.run_owner()
    result: dict = {"changed": False, "lock": str(lock.lock_path(folder, kind, name)), "owner_pid": owner.pid}
    try:
        if check_mode:
            holder = lock.holder_of(folder, kind, name, owner)
            result["msg"] = "check mode: no lock taken"
            if holder:
                result["warnings"] = [f"{hostname}: check mode: " + lock.conflict_message(
                    kind, name, lock.lock_path(folder, kind, name), holder)]
            return result
        got = lock.acquire(folder, kind, name, owner, wait=args.get("wait", 0))
        lock.ensure_watcher(folder, owner)
    except lock.LockConflict as exc:
        return {**result, "failed": True, "msg": f"{hostname}: {exc}"}
    except OSError as exc:
        return {**result, "failed": True,
                "msg": f"{hostname}: cannot use the lock folder {folder}: {exc}. Fix: make it writable, or set "
                       "fa_lock_dir to a folder on the controller this user can write"}
    result.update(state=got.state, msg=f"{kind} {name}: lock {got.state} by pid {owner.pid}")
    if got.state == "taken over":
        result["warnings"] = [f"{hostname}: " + lock.stale_message(kind, name, got.path, got.previous)]
    return result


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        hostname = (task_vars or {}).get("inventory_hostname", "?")
        result.update(take(args, hostname, bool(self._task.check_mode)))
        return result
