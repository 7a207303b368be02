"""The run's settings as the preflight action reads them (plugin_utils/settings.py collect, GATHERED)."""

from __future__ import annotations

from pathlib import Path

import yaml
from ansible_collections.ascend.fa.plugins.plugin_utils import settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_checked_setting_is_gathered():
    gathered = set(settings.GATHERED)
    assert set(settings.STRINGS) <= gathered
    assert set(settings.BOOL_SETTINGS) <= gathered
    assert set(settings.DEPRECATED) - {"fa_rolling_drain_tasks", "fa_rolling_undrain_tasks"} <= gathered
    for name in ("fa_verify_timeout", "fa_build_jobs", "fa_build_jobs_cap", "fa_preflight_expect_npus",
                 "fa_install_serve_port", "fa_install_serve_timeout", "fa_install_fetch_timeout", "fa_install_source",
                 "fa_rollout_batch", "fa_rollout_max_fail_percent", "fa_verify_devices"):
        assert name in gathered, name


def test_every_gathered_setting_is_a_role_variable():
    """Each name is a documented variable of a role (defaults or argument specs), or a deprecated one."""
    known: set[str] = set(settings.DEPRECATED)
    for spec in (ROOT / "roles").glob("*/meta/argument_specs.yml"):
        for entry in (yaml.safe_load(spec.read_text())["argument_specs"] or {}).values():
            known |= set((entry or {}).get("options") or {})
    for defaults in (ROOT / "roles").glob("*/defaults/main.yml"):
        known |= set(yaml.safe_load(defaults.read_text()) or {})
    assert [n for n in settings.GATHERED if n not in known] == []


def _get(values: dict):
    return lambda name: values.get(name)


def test_values_as_given_and_unset_as_none():
    got = settings.collect(_get({"fa_vendor": "x;id", "fa_build_jobs": 8, "fa_install_force": "maybe"}))
    assert list(got) == list(settings.GATHERED)
    assert got["fa_vendor"] == "x;id" and got["fa_build_jobs"] == 8 and got["fa_install_force"] == "maybe"
    assert got["fa_python"] is None
    # what the checks then say: the bad values are named, the unset ones are not checked
    names = {p["what"] for p in settings.problems(got)}
    assert names == {"setting fa_vendor is not valid", "setting fa_install_force is not valid"}


def test_a_deprecated_name_stands_in_for_its_replacement_until_that_is_set():
    got = settings.collect(_get({"fa_rolling_batch": "abc"}))
    assert got["fa_rollout_batch"] == "abc" and got["fa_rolling_batch"] == "abc"
    got = settings.collect(_get({"fa_rolling_batch": "abc", "fa_rollout_batch": 4}))
    assert got["fa_rollout_batch"] == 4
    assert [p["code"] for p in settings.deprecations(got)] == [settings.DEPRECATED_CODE]


def test_the_store_folder_counts_only_with_the_shared_store():
    values = {"fa_artifact_store_dir": "/srv/x;id"}
    assert settings.collect(_get(values))["fa_artifact_store_dir"] is None
    assert settings.collect(_get({**values, "fa_artifact_store": "host"}))["fa_artifact_store_dir"] == "/srv/x;id"
