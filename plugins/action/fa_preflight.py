# Copyright: ascend-fa contributors
# Apache-2.0
"""Action plugin ``fa_preflight``: a host's whole preflight in one task, one round trip to the host.

Role ``fa_preflight`` used to spend ten tasks per host on what is one decision: lock the host (controller), compare it
with its last clean run, check the run's settings, gather the Ascend facts (the only call that needs the host's
Python modules), decide the verdict, record whether the host is converged. Each task costs the controller a forked
worker, its variables and its templates (about 0.03-0.1 CPU s per host each, measured: benchmarks/README.md), so at
1,000 hosts the bookkeeping cost more than the work. This plugin does the same steps in the same order, with the
same code, in one worker:

1. the run's lock on the host (``fa_lock``'s ``take``; not with ``lock: false``, i.e. ``playbooks/preflight.yml``);
2. the rerun fast path (``fa_converged``'s comparison, one plain command on the host) when the host's record is kept
   under this run's key, the settings are valid and the installed package is the one this controller signed: an
   unchanged host is answered ``quick_converged`` (the role ends it) and nothing else runs;
3. the run's settings (``plugin_utils/settings.py``): a bad value fails the host before anything runs on it, one line
   per variable (value, what is needed, the fix); deprecated names become warnings; the same step checks the
   variables of the pipeline roles' argument specs (``settings.SPEC_ROLES``), which the playbooks import without
   Ansible's own check (a task per role and host);
4. the module ``ascend_facts`` (``facts_args``, unchanged), whose ``ansible_facts.ascend`` this task returns;
5. the verdict (``plugin_utils/preflight.py`` ``decide``) with the module's environment findings and the trust check
   of the installed package;
6. the converged record (``fa_converged``'s ``record``: ``ansible_facts.ascend_fa_converged``), kept when the host
   needs nothing and has no problem but acknowledged ones, cleared otherwise.

Blocking problems do not fail this task (a failed task's facts would be lost: the report needs them); the role's gate
(``fa_gate``) stops the host right after, with the lines this task returns in ``blocking_lines``.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.ascend.fa.plugins.action import fa_converged, fa_gate, fa_lock
from ansible_collections.ascend.fa.plugins.plugin_utils import compat, preflight, settings, trust

ARGUMENT_SPEC = {
    # take this run's lock on the host (false: a read-only run, e.g. playbooks/preflight.yml)
    "lock": {"type": "bool", "default": True},
    "lock_dir": {"type": "str", "default": ""},
    "cache_dir": {"type": "str", "required": True},
    "lock_wait": {"type": "int", "default": 0},
    # the rerun fast path (role var __fa_fast_path) and the operator's fa_install_force as given
    "fast_path": {"type": "bool", "default": True},
    "force": {"type": "raw"},
    # the loaded recipe, the verdict's options (role var __fa_preflight_opts; the run's settings are read here, from
    # the task's variables: settings.GATHERED) and what the converged key adds to them
    "recipe": {"type": "dict", "required": True},
    "opts": {"type": "dict", "required": True},
    "key_extra": {"type": "dict", "default": {}},
    # arguments of the module ascend_facts
    "facts_args": {"type": "dict", "required": True},
}


def _on(value: object) -> bool:
    return str(value).strip().lower() in settings.TRUE_WORDS


def fast_path_applies(args: dict, recorded: dict, key: str, bad_settings: list, untrusted: list) -> bool:
    """Whether the host's recorded clean run may end it after the comparison (the role's former conditions)."""
    return (bool(args["fast_path"]) and not _on(args.get("force"))
            and (recorded or {}).get("key", "") == key and bool((recorded or {}).get("fingerprint"))
            and not bad_settings and not untrusted)


def verdict_vars(verdict: dict, key: str) -> dict:
    """What the role keeps as the host's variables (fa_problems, fa_blocking, ...)."""
    return {
        "problems": verdict["problems"], "blocking": verdict["blocking"], "warnings": verdict["warnings"],
        "build_key": verdict["build_key"], "build_jobs": verdict["build_jobs"],
        "needs_install": verdict["needs_install"], "install_force": verdict["install_force"],
        "converged_key": key, "clean": verdict["clean"], "clean_after_install": verdict["clean_after_install"],
    }


def summary_line(host: str, facts: dict, verdict: dict, recipe_name: str) -> str:
    what = (f"install {recipe_name} (build {verdict['build_key']})" if verdict["needs_install"]
            else "already converged")
    return (f"{host}: {facts.get('soc_version')} x{facts.get('device_count')}, CANN {facts.get('cann_version')} "
            f"({facts.get('cann_layout')}), package {facts.get('fa_package_state')}: "
            f"{facts.get('fa_package_detail')}; {what}")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        host = task_vars.get("inventory_hostname") or self._task.get_name()
        warnings: list[str] = []

        # 1. the lock (controller)
        if args["lock"]:
            locked = fa_lock.take({"host": host, "lock_dir": args["lock_dir"], "cache_dir": args["cache_dir"],
                                   "wait": args["lock_wait"]}, host, bool(self._task.check_mode))
            warnings += locked.get("warnings", [])
            if locked.get("failed"):
                return self._done(result, warnings, failed=True, msg=locked["msg"], step="lock")

        # the run's settings, read as given (plugin_utils/settings.py GATHERED): only values that are templates are
        # rendered, instead of one template per setting in the role's vars
        opts = {**args["opts"], "settings": settings.collect(self._getter(task_vars))}
        cached = (task_vars.get("ansible_facts") or {})
        old_facts = cached.get("ascend") or {}
        key = preflight.converged_key(args["recipe"], {**opts, **args["key_extra"]})
        # and the variables of the pipeline roles' own argument specs (the playbooks import those roles without
        # Ansible's per-host check: settings.SPEC_ROLES)
        bad_settings = settings.problems(opts.get("settings") or {}) + settings.spec_problems(self._getter(task_vars))
        try:
            secret = trust.load_key()
        except trust.TrustError as exc:
            return self._done(result, warnings, failed=True, msg=f"{host}: {exc}", step="trust")
        cache_dir = args["cache_dir"]

        # 2. the rerun fast path
        recorded = cached.get("ascend_fa_converged") or {}
        if fast_path_applies(args, recorded, key,
                             bad_settings, trust.installed_problems(old_facts, cache_dir, secret) if old_facts else []):
            quick = fa_converged.compare(self, recorded["fingerprint"], task_vars)
            if quick.get("converged"):
                return self._done(result, warnings, quick_converged=True, quick=quick, converged_key=key,
                                  msg=f"{host}: unchanged since its last clean run ({recorded.get('by')}, "
                                      f"{recorded.get('at')})", step="fast path")
            result["quick"] = quick

        # 3. the run's settings, before anything runs on the host
        warnings += compat_lines(settings.deprecations(opts.get("settings") or {}), host)
        if bad_settings:
            lines = compat_lines(bad_settings, host)
            return self._done(result, warnings, failed=True, msg="\n".join(lines), blocking_lines=lines,
                              step="settings")

        # 4. the facts: one module call
        res = self._execute_module(module_name="ascend.fa.ascend_facts", module_args=dict(args["facts_args"]),
                                   task_vars=task_vars)
        if res.get("failed") or res.get("unreachable"):
            result.update(res)
            return self._done(result, warnings, step="facts")
        facts = (res.get("ansible_facts") or {}).get("ascend") or {}
        warnings += res.pop("warnings", None) or []

        # 5. the verdict
        untrusted = trust.installed_problems(facts, cache_dir, secret)
        verdict = preflight.decide(facts, args["recipe"], {**opts, "env": res.get("env") or {}, "untrusted": untrusted})
        gate = fa_gate.verdict(compat_lines(verdict["warnings"], host), compat_lines(verdict["blocking"], host),
                               summary_line(host, facts, verdict, args["recipe"].get("name", "")))

        # 6. the converged record (controller fact cache)
        keep = not verdict["needs_install"] and verdict["clean"]
        rec = fa_converged.record(key, facts.get("fingerprint") or {}, "preflight", keep)
        result.update(res)
        result["ansible_facts"] = {**(res.get("ansible_facts") or {}), **rec["ansible_facts"]}
        warnings += gate.get("warnings", [])
        return self._done(result, warnings, quick_converged=False, verdict=verdict_vars(verdict, key),
                          blocking_lines=gate["blocking"], msg=gate["msg"], recorded=rec["recorded"],
                          step="verdict", changed=False)

    def _getter(self, task_vars: dict):
        """A variable of this host as the task sees it (templates rendered), or None when it is not defined."""
        def get(name: str):
            if name not in task_vars:
                return None
            return self._templar.template(task_vars[name])
        return get

    @staticmethod
    def _done(result: dict, warnings: list[str], **extra) -> dict:
        result.update(extra)
        result.setdefault("changed", False)
        if warnings:
            result["warnings"] = list(result.get("warnings") or []) + warnings
        return result


def compat_lines(problems: list[dict], host: str) -> list[str]:
    """One line per problem, naming the host (the filter fa_problem_lines)."""
    return [compat.Problem(**p).line(host) for p in problems]
