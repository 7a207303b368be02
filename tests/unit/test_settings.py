"""ascend_fa/settings.py: the run's settings checked before any host is touched (variable, value, needed, fix)."""

from __future__ import annotations

import pytest
from ansible_collections.ascend.fa.plugins.plugin_utils import preflight, recipes, settings
from test_preflight_decide import GOOD, _key

RECIPE = recipes.load("ops-transformer-v9.0.1")


def _names(problems):
    return [p["what"].split()[1] for p in problems]


def test_the_defaults_and_typical_values_pass():
    assert settings.problems({
        "fa_install_force": False, "fa_rollout_verify": "yes", "fa_preflight_env_check": True,
        "fa_rollout_batch": [1, "10%", "25%"], "fa_rollout_max_fail_percent": "10", "fa_verify_timeout": "300",
        "fa_build_jobs": 0, "fa_build_jobs_cap": 64, "fa_preflight_expect_npus": "8", "fa_verify_devices": [],
        "fa_verify_quick": "true", "fa_rollout_auto_rollback": 1}, device_count=8) == []
    assert settings.problems({"fa_rollout_batch": "100%", "fa_verify_devices": "0,3"}, 8) == []
    assert settings.problems({"fa_verify_timeout": None, "fa_rollout_batch": None}) == []   # not set: not checked
    assert settings.problems(None) == []


@pytest.mark.parametrize("name, value, needed", [
    ("fa_install_force", "maybe", "true or false"),
    ("fa_rollout_verify", 2, "true or false"),
    ("fa_verify_timeout", "-5", "an integer >= 1"),
    ("fa_verify_timeout", 0, "an integer >= 1"),
    ("fa_verify_timeout", "5m", "an integer >= 1"),
    ("fa_build_jobs", -1, "an integer >= 0"),
    ("fa_build_jobs_cap", 0, "an integer >= 1"),
    ("fa_preflight_expect_npus", "eight", "an integer >= 0"),
    ("fa_rollout_batch", "abc", "a host count >= 1"),
    ("fa_rollout_batch", 0, "a host count >= 1"),
    ("fa_rollout_batch", "150%", "a host count >= 1"),
    ("fa_rollout_batch", [1, "x"], "a host count >= 1"),
    ("fa_rollout_batch", [], "a host count >= 1"),
    ("fa_rollout_max_fail_percent", "x", "a number from 0 to 100"),
    ("fa_rollout_max_fail_percent", 101, "a number from 0 to 100"),
    ("fa_verify_devices", "[9]", "card ids: integers >= 0"),
    ("fa_verify_devices", [9], "card ids of this host: 0..7 (8 devices)"),
    ("fa_verify_devices", [-1], "card ids: integers >= 0"),
])
def test_each_bad_value_names_the_variable_the_value_and_the_fix(name, value, needed):
    (p,) = settings.problems({name: value}, device_count=8)
    assert p["code"] == "bad_setting" and p["severity"] == "error"
    assert p["what"] == f"setting {name} is not valid" and p["found"] == repr(value)
    assert p["needed"].startswith(needed) and name in p["fix"]
    assert "(-e, group_vars or host_vars)" in p["fix"]


def test_a_bad_setting_blocks_the_host_even_when_ignored_and_is_not_in_the_converged_key():
    facts = {**GOOD, "device_count": 1, "fa_package_state": "installed", "fa_package": {"build_key": _key(GOOD)},
             "fa_verify_state": "passed"}
    v = preflight.decide(facts, RECIPE, {"settings": {"fa_verify_devices": [1]}, "ignore": ["bad_setting"]})
    assert [p["code"] for p in v["blocking"]] == ["bad_setting"] and v["warnings"] == []
    assert "0..0 (1 devices)" in v["blocking"][0]["needed"]
    good = preflight.decide(facts, RECIPE, {"settings": {"fa_verify_devices": [0]}})
    assert good["blocking"] == [] and good["needs_install"] is False
    assert preflight.converged_key(RECIPE, {"settings": {"a": 1}}) == preflight.converged_key(RECIPE, {})


def test_deprecated_fast_path_switches_warn_and_name_the_one_switch():
    from ansible_collections.ascend.fa.plugins.plugin_utils import settings as st

    got = st.deprecations({"fa_preflight_quick_converged": "false", "fa_preflight_end_converged": None,
                           "fa_preflight_fast_path": True, "fa_vendor": "ascendfa"})
    assert [(p["code"], p["severity"], p["what"], p["needed"]) for p in got] == [
        ("deprecated_setting", "warning", "setting fa_preflight_quick_converged is deprecated", "fa_preflight_fast_path")]
    assert "set fa_preflight_fast_path instead" in got[0]["fix"] and "next release" in got[0]["fix"]
    assert st.deprecations({}) == [] and st.deprecations(None) == []
    # still validated as booleans while they are honoured
    assert [p["what"] for p in st.problems({"fa_preflight_reuse_npu_facts": "maybe"})] == [
        "setting fa_preflight_reuse_npu_facts is not valid"]
    assert st.problems({"fa_preflight_fast_path": "maybe"})[0]["needed"] == "true or false"
