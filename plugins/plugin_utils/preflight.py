"""One decision per host, on the controller: what is wrong, what blocks, and whether the host needs the package.

The fa_preflight role calls this once per host (filter ``fa_preflight_decide``) with the host's
``ansible_facts.ascend``, the loaded recipe and the result of the fresh-shell environment check that ascend_facts
ran in the same round trip. Everything here is pure data in, data out: the compatibility matrix
(``compat``), the seed's checklist (``checklist``), the package's drift (manifest vs disk, from ascend_facts) and the
environment findings, each a problem with what was found, what is needed and the fix.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import buildplan, checklist, compat, settings, yamlio

ENV_CHECKS_FILE = Path(__file__).resolve().parent / "data" / "env_checks.yml"
COMPAT_FILE = Path(__file__).resolve().parent / "data" / "compat.yml"
# Options of decide() that describe this run's host rather than what is wanted: not part of the converged key.
NOT_IN_KEY = ("env", "install_force", "jobs", "jobs_cap", "settings", "untrusted")
DRIFT_STATES = ("missing", "cann_changed", "kernels_missing", "files_changed")


@lru_cache(maxsize=4)
def _env_data(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yamlio.load(fh) or {}


def _drift_table(path: str) -> dict[str, dict]:
    return _env_data(path).get("drift") or {}


def env_checks(path: str | None = None) -> list[dict]:
    """The fresh-shell environment checks (``checks`` of ``data/env_checks.yml``), for ascend_facts / fa_verify."""
    return list(_env_data(str(path or ENV_CHECKS_FILE)).get("checks") or [])


@lru_cache(maxsize=8)
def _matrix(path: str) -> dict:
    return compat.load_matrix(path or None)


def build_key(facts: dict, recipe: dict, vendor: str | None = None) -> str:
    """The host's build key: recipe, commit, SoC family, CANN, arch, vendor and the recipe's build command and ops."""
    return buildplan.build_key(recipe["name"], recipe["commit"], facts.get("soc_family") or "",
                               facts.get("cann_version") or "", facts.get("arch") or "", vendor or "",
                               buildplan.package_spec(recipe))


def build_jobs(facts: dict, recipe: dict, cap: int = 64, override: int | None = None) -> int:
    per_job = int((recipe.get("build") or {}).get("mem_per_job_mb", 4096))
    return buildplan.build_jobs(facts.get("cpu_count"), facts.get("mem_total_mb"), per_job, cap, override or None)


def compat_problems(facts: dict, recipe: dict | None, matrix_file: str | None = None) -> list[dict]:
    release = None
    tag = None
    if recipe:
        tag = recipe.get("tag")
        release = {"tag": tag, "cann": recipe.get("cann"), "soc_families": recipe.get("soc_families")}
    return [p.as_dict() for p in compat.check(facts or {}, _matrix(matrix_file or ""), tag=tag, release=release)]


def drift_problems(facts: dict, table_file: str | None = None) -> list[dict]:
    """The installed package's drift (ascend_facts: manifest vs disk) as warnings with their fix."""
    state = facts.get("fa_package_state") or "absent"
    if state not in DRIFT_STATES:
        return []
    entry = _drift_table(str(table_file or ENV_CHECKS_FILE)).get(state)
    if not entry:
        return []
    return [{"code": entry["code"], "severity": compat.WARNING, "what": entry["what"],
             "found": facts.get("fa_package_detail") or state, "needed": entry["needed"], "fix": entry["fix"]}]


def unverified_problems(facts: dict, table_file: str | None = None) -> list[dict]:
    """A warning when the installed package has no passing verification on record (``fa_verify_state``, decided on
    the host by plugins/module_utils/fa_manifest.py ``verification_state``): its last check failed (``verify_failed``), or
    it never completed (``not_verified``: an install or upgrade interrupted before or during its verification - host
    lost, controller killed). Either way the host is not converged: the rollout verifies the package again and rolls
    a failure back to the last package that passed on this host."""
    if facts.get("fa_package_state") != "installed":
        return []
    state = facts.get("fa_verify_state") or "none"
    if state == "passed":
        return []
    record = facts.get("fa_last_verify") or {}
    entry = _drift_table(str(table_file or ENV_CHECKS_FILE))["verify_failed" if state == "failed" else "not_verified"]
    package = facts.get("fa_package") or {}
    if state == "failed":
        cards = ", ".join(str(c) for c in record.get("failed_cards") or []) or "?"
        found = f"{record.get('recipe')} at {record.get('at')}, card(s) {cards}: {record.get('summary') or 'failed'}"
    else:
        last = (f"the last verification on record is of {record.get('recipe')} ({str(record.get('sha256'))[:12]}) at "
                f"{record.get('at')}" if record else "no verification on record")
        found = (f"{package.get('recipe')} ({str(package.get('sha256'))[:12]}) installed at "
                 f"{package.get('installed_at')}; {last}")
    return [{"code": entry["code"], "severity": compat.WARNING, "what": entry["what"], "found": found,
             "needed": entry["needed"], "fix": entry["fix"]}]


def decide(facts: dict, recipe: dict, opts: dict[str, Any] | None = None) -> dict[str, Any]:
    """The host's preflight verdict.

    ``opts``: ``matrix_file``, ``checklist`` (options of :func:`checklist.problems`), ``ignore`` (codes of errors
    to downgrade to warnings), ``env`` (the ``env`` result of ascend_facts: ``problems``, ``repair``), ``vendor``
    (fa_vendor, part of the build key), ``untrusted`` (problems of filter ``fa_untrusted_package``: the installed
    package differs from the one this controller signed),
    ``jobs_cap``, ``jobs`` (0: automatic), ``install_force``, ``settings`` (variable -> value as given, checked by
    ``plugin_utils/settings.py``: a bad one blocks the host).
    Returns ``problems``, ``blocking``, ``warnings``, ``build_key``, ``build_jobs``, ``needs_install``,
    ``install_force``, ``env_repair``, ``clean`` (no problem but those whose code is in ``ignore``: the operator
    has acknowledged them) and ``clean_after_install`` (the same, once an install has fixed the drift and environment
    findings).
    """
    o = opts or {}
    facts = facts or {}
    ignore = set(o.get("ignore") or [])
    env = o.get("env") or {}
    env_problems = [{**p, "severity": compat.WARNING} for p in env.get("problems") or []]
    drift = drift_problems(facts)
    # not fixed by a reinstall; the rollout verifies the package again (unless the operator acknowledged the code)
    reverify = [p for p in unverified_problems(facts) if p["code"] not in ignore]
    # the installed package is not the one this controller signed for its build key (filter fa_untrusted_package,
    # ascend_fa/trust.py): the signed package replaces it, forced; not something an operator can acknowledge away
    untrusted = list(o.get("untrusted") or [])
    problems = (compat_problems(facts, recipe, o.get("matrix_file"))
                + [p.as_dict() for p in checklist.problems(facts, o.get("checklist"))]
                + drift + env_problems + reverify + untrusted)
    fixed_by_install = {p["code"] for p in drift + env_problems + reverify + untrusted}
    # the run's own settings: blocking whatever fa_preflight_ignore says (nothing of this host is wrong, the run is)
    bad_settings = settings.problems(o.get("settings"), facts.get("device_count") or facts.get("npu_count"))
    problems += bad_settings
    errors = [p for p in problems if p["severity"] == compat.ERROR]
    blocking = [p for p in errors if p["code"] not in ignore or p["code"] == settings.CODE]
    warnings = [p for p in problems if p["severity"] != compat.ERROR] + [p for p in errors if p not in blocking]
    key = build_key(facts, recipe, o.get("vendor"))
    installed_key = (facts.get("fa_package") or {}).get("build_key") or ""
    repair = bool(env.get("repair"))
    force = bool(o.get("install_force"))  # fa_install_force: the operator asks for a reinstall of a converged host
    needs = facts.get("fa_package_state") != "installed" or installed_key != key or repair or force or bool(reverify)
    needs = needs or bool(untrusted)
    return {
        "problems": problems,
        "blocking": blocking,
        "warnings": warnings,
        "build_key": key,
        "build_jobs": build_jobs(facts, recipe, int(o.get("jobs_cap") or 64), int(o.get("jobs") or 0)),
        "needs_install": needs,
        # the installer leaves a converged package alone unless forced: a repair (e.g. load_priority) needs force
        "install_force": force or repair or bool(untrusted),
        "env_repair": repair,
        "clean": all(p["code"] in ignore for p in problems),
        # what reinstalling fixes (drift, environment findings; verify checks the environment again) aside
        "clean_after_install": all(p["code"] in ignore or p["code"] in fixed_by_install for p in problems),
    }


@lru_cache(maxsize=16)
def _file_sha(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def converged_key(recipe: dict, opts: dict[str, Any] | None = None) -> str:
    """sha256 of what a converged host must match: the recipe, the compatibility data, the environment checks and
    the preflight settings (``opts`` as :func:`decide` takes them, without this run's host-side results). A host is
    ended by its recorded fingerprint only while this key stays the same; any change here means a full check."""
    o = {k: v for k, v in (opts or {}).items() if k not in NOT_IN_KEY}
    data = {
        "recipe": recipe,
        "compat": _file_sha(str(o.pop("matrix_file", "") or COMPAT_FILE)),
        "env_checks": _file_sha(str(o.pop("env_checks_file", "") or ENV_CHECKS_FILE)),
        "opts": o,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
