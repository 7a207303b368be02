"""Controller-side filters for the ascend-fa roles: compatibility check, build key, -j, build plan.

Thin wrappers over the collection's controller code in ``plugins/plugin_utils`` (the same files in a checkout,
through ``.collections``, and in an installed collection).
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display
from ansible_collections.ascend.fa.plugins.plugin_utils import (
    artifacts,
    buildplan,
    checklist,
    compat,
    preflight,
    recipes,
    settings,
    trust,
)

display = Display()


def fa_recipe_load(name: str, dirs: list[str] | None = None) -> dict:
    """Load recipe ``name``; its template strings stay as data (rendered by fa_recipe_render only)."""
    try:
        return recipes.load(name, list(dirs or []))
    except recipes.RecipeError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def fa_recipe_render(template: str, **values) -> str:
    try:
        return recipes.render(str(template), **values)
    except recipes.RecipeError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def fa_recipe_argv(command: str, **values) -> list[str]:
    """The recipe's build command as argv words: split first, then each word rendered on its own (recipes.py)."""
    try:
        return recipes.render_argv(str(command), **values)
    except recipes.RecipeError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def fa_compat_problems(facts: dict, recipe: dict | None = None, matrix_file: str | None = None) -> list[dict]:
    """Problems of a host's ``ansible_facts.ascend`` for ``recipe`` (a loaded recipe dict)."""
    return preflight.compat_problems(facts or {}, recipe, matrix_file)


def fa_checklist_problems(facts: dict, opts: dict | None = None) -> list[dict]:
    return [p.as_dict() for p in checklist.problems(facts or {}, opts)]


def fa_problem_lines(problems: list[dict], host: str) -> list[str]:
    return [compat.Problem(**p).line(host) for p in problems]


def fa_build_key(facts: dict, recipe: dict, vendor: str = "") -> str:
    return preflight.build_key(facts, recipe, vendor)


def fa_build_jobs(facts: dict, recipe: dict, cap: int = 64, override: int | None = None) -> int:
    return preflight.build_jobs(facts, recipe, cap, override)


def fa_env_checks(path: str | None = None) -> list[dict]:
    """The environment checks as data (``plugins/plugin_utils/data/env_checks.yml`` unless ``path``): ``'' | fa_env_checks``."""
    return preflight.env_checks(path or None)


def fa_preflight_decide(facts: dict, recipe: dict, opts: dict | None = None) -> dict:
    """A host's preflight verdict in one call: problems, blocking, warnings, build key, -j, needs_install."""
    return preflight.decide(facts or {}, recipe, opts)


def fa_converged_key(recipe: dict, opts: dict | None = None) -> str:
    """What a converged host must match (recipe, data files, preflight settings) as one sha256."""
    return preflight.converged_key(recipe or {}, opts)


def fa_build_plan(hostvars: dict, hosts: list[str], build_host: str | None = None) -> dict:
    info = {}
    for h in hosts:
        hv = hostvars[h]
        if not hv.get("fa_needs_install"):
            continue
        facts = (hv.get("ansible_facts") or {}).get("ascend") or {}
        info[h] = {"build_key": hv.get("fa_build_key"), "soc_family": facts.get("soc_family"),
                   "cann_version": facts.get("cann_version"), "arch": facts.get("arch"),
                   "jobs": hv.get("fa_build_jobs_effective"), "cann_set_env": facts.get("cann_set_env")}
    return buildplan.plan(info, build_host or None)


def _key(create: bool = False) -> bytes | None:
    """The controller's artifact cache key (ascend_fa/trust.py); a key that must not be used stops the run."""
    try:
        return trust.load_key(create=create)
    except trust.TrustError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def fa_pull_keys(hostvars, hosts: list[str], cached: dict) -> list[str]:
    """The build keys a seed host must serve: needed by a host of ``hosts`` that does not keep the package already."""
    return artifacts.pull_keys(hostvars, list(hosts or []), cached or {})


def fa_rollout_targets(hostvars, hosts: list[str], install: bool = True) -> list[str]:
    """The hosts the install play takes (playbooks/deploy.yml play 2's ``hosts``): need the package, build cached."""
    return artifacts.rollout_targets(hostvars, list(hosts or []), bool(install))


def fa_cached_artifacts(keys: list[str], cache_dir: str) -> dict:
    """Build key -> artifact record for the keys whose entry in the controller cache is signed by this controller's
    key and intact. A refused entry (unsigned, foreign key, edited, swapped, package replaced) is left out, so the
    build rebuilds it, and named in a warning with the reason."""
    refused: dict[str, str] = {}
    found = artifacts.lookup_many(cache_dir, list(keys), _key(), refused)
    for key, why in refused.items():
        display.warning(artifacts.refusal_line(cache_dir, key, why))
    return found


def fa_artifact_sign(record: dict, cache_dir: str | None = None) -> dict:
    """``record`` (an artifact.json being written) with its HMAC under this controller's key (made when missing; the
    key is read here, never passed through a task). With ``cache_dir``, only when the package already fetched into
    ``<cache_dir>/<build_key>/<file>`` has the record's sha256; otherwise the record stays unsigned (and is refused)."""
    rec = dict(record or {})
    why = artifacts.fetched_problem(rec, str(cache_dir)) if cache_dir else None
    if why:
        pkg = os.path.join(str(cache_dir), str(rec.get("build_key", "")), str(rec.get("file", "")))
        display.warning(f"artifact record for {pkg} not signed: {why}")
        return rec
    return trust.sign(rec, _key(create=True))


def fa_trusted_sha256s(cache_dir: str) -> list[str]:
    """The sha256s of the packages this controller built and signed (every signed record in its artifact cache):
    ``fa_install``'s ``trusted_sha256``, the kept packages a rollback may run."""
    return trust.trusted_sha256s(cache_dir, _key())


def fa_untrusted_package(facts: dict, cache_dir: str) -> list[dict]:
    """Preflight: ``untrusted_package`` when the host's installed package (``ansible_facts.ascend``) differs from the
    record this controller signed for its build key."""
    return trust.installed_problems(facts or {}, cache_dir, _key())


def fa_store_untrusted(results: list[dict]) -> list[dict]:
    """The shared store's claim results that are ``present`` but whose record this controller did not sign (or whose
    record is not for that key): each with ``untrusted`` (why), warned about; they are claimed again as absent and
    rebuilt."""
    bad = artifacts.store_untrusted(results, _key())
    for res in bad:
        display.warning(f"shared artifact store entry {(res.get('item') or {}).get('key', '')} "
                        f"({(res.get('meta') or {}).get('path', '?')}): {res['untrusted']}; {artifacts.REBUILT}")
    return bad


def fa_store_claims(results: list[dict], reclaimed: list[dict] | None = None) -> list[dict]:
    """The claim results with the entries claimed again (``fa_store_untrusted``) replaced by that second claim; a
    ``present`` answer that is still not signed by this controller becomes ``untrusted`` (neither pulled nor built)."""
    return artifacts.store_claims(results, reclaimed, _key())


def fa_settings_problems(values: dict, device_count: int | None = None) -> list[dict]:
    """The run's settings that are not valid (``ascend_fa/settings.py``): variable, value, what is needed, the fix."""
    return settings.problems(values or {}, device_count)


def fa_settings_deprecations(values: dict) -> list[dict]:
    """Warnings for the old names of settings the run still uses (``plugin_utils/settings.py`` DEPRECATED)."""
    return settings.deprecations(values or {})


def fa_steps(run_tags: list[str] | None, skip_tags: list[str] | None = None) -> dict[str, bool]:
    """The steps this run selects: ``ansible_run_tags | fa_steps(ansible_skip_tags)`` -> build, install, verify.

    The rollout's own tasks (drain, record, rollback, undrain) serve both install and verify, so they cannot carry
    those tags themselves: ``--skip-tags verify`` would skip them and with them the install. The plays hand a host to
    the rollout only when ``install`` is selected; the verification gate runs when ``verify`` is too; ``build`` tells
    a host stopped for want of a package whether its build failed or was left out. Tags as Ansible reads them:
    ``all`` (the default) and ``tagged`` select every step, ``--skip-tags`` wins.
    """
    run = set(run_tags or ["all"])
    skip = set(skip_tags or [])

    def selected(tag: str) -> bool:
        return bool(run & {"all", "tagged", tag}) and not skip & {"all", "tagged", tag}

    return {"build": selected("build"), "install": selected("install"), "verify": selected("verify")}


def fa_run_summary(hosts_all: list[str], hosts_left: list[str] | None = None, hostvars=None, recipe=None,
                   check: bool = False) -> dict:
    """The run summary the final play publishes with set_stats (key ``ascend_fa``), for AWX workflows to branch on:
    ``ansible_play_hosts_all | ascend.fa.fa_run_summary(ansible_play_hosts, hostvars, fa_recipe, ansible_check_mode)``.
    Logic in plugin_utils/records.py (play_summary): counts by state, failed and unreachable hosts, rollout results."""
    from ansible_collections.ascend.fa.plugins.plugin_utils import records

    return records.play_summary(list(hosts_all or []), list(hosts_left or []), hostvars, recipe, bool(check),
                                records.LIVE)


class FilterModule:
    def filters(self):
        return {
            "fa_compat_problems": fa_compat_problems,
            "fa_recipe_load": fa_recipe_load,
            "fa_recipe_render": fa_recipe_render,
            "fa_recipe_argv": fa_recipe_argv,
            "fa_build_key": fa_build_key,
            "fa_checklist_problems": fa_checklist_problems,
            "fa_problem_lines": fa_problem_lines,
            "fa_build_jobs": fa_build_jobs,
            "fa_preflight_decide": fa_preflight_decide,
            "fa_converged_key": fa_converged_key,
            "fa_env_checks": fa_env_checks,
            "fa_build_plan": fa_build_plan,
            "fa_cached_artifacts": fa_cached_artifacts,
            "fa_pull_keys": fa_pull_keys,
            "fa_rollout_targets": fa_rollout_targets,
            "fa_artifact_sign": fa_artifact_sign,
            "fa_trusted_sha256s": fa_trusted_sha256s,
            "fa_untrusted_package": fa_untrusted_package,
            "fa_store_untrusted": fa_store_untrusted,
            "fa_store_claims": fa_store_claims,
            "fa_steps": fa_steps,
            "fa_settings_problems": fa_settings_problems,
            "fa_settings_deprecations": fa_settings_deprecations,
            "fa_run_summary": fa_run_summary,
        }
