"""Preflight checks the pipeline roles' own argument specs (settings.spec_problems), which the playbooks import
without Ansible's per-host check (rolespec_validate: false). Independent data: the specs as the roles ship them,
read here with plain YAML, and values Ansible's own validator refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_collections.ascend.fa.plugins.plugin_utils import settings

ROOT = Path(__file__).resolve().parents[2]


def _options(role: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"][
        "main"]["options"]


def test_the_roles_the_playbooks_import_unchecked_are_the_ones_preflight_checks() -> None:
    unchecked = set()
    for pb in ("deploy.yml", "upgrade_fa.yml", "preflight.yml"):
        text = (ROOT / "playbooks" / pb).read_text()
        for block in text.split("ansible.builtin.import_role:")[1:]:
            head = block.split("\n      tags:")[0]
            if "rolespec_validate: false" in head:
                unchecked.add(head.split("name: ascend.fa.")[1].split()[0])
    assert unchecked == {"fa_preflight", "fa_fetch", "fa_build", "fa_rollout"}
    assert unchecked <= set(settings.SPEC_ROLES)
    # and the roles the rollout imports unchecked (roles/fa_rollout/tasks/main.yml)
    assert {"fa_install", "fa_verify"} <= set(settings.SPEC_ROLES)


def test_every_option_of_those_specs_is_read() -> None:
    for role in settings.SPEC_ROLES:
        assert settings.role_options(role) == _options(role), role


@pytest.mark.parametrize(("name", "value", "role"), [
    ("fa_build_timeout", "ten", "fa_build"),
    ("fa_build_keep_logs", "maybe", "fa_build"),
    ("fa_fetch_depth", [1], "fa_fetch"),
])
def test_a_value_its_spec_refuses_is_a_blocking_problem_naming_the_variable(name: str, value: object,
                                                                            role: str) -> None:
    assert name in _options(role)
    problems = settings.spec_problems({name: value}.get)
    assert len(problems) == 1
    p = problems[0]
    assert p["code"] == "bad_setting" and p["severity"] == "error"
    assert name in p["what"] and p["found"] == repr(value)
    assert f"roles/{role}/meta/argument_specs.yml" in p["fix"] and "-e, group_vars or host_vars" in p["fix"]


def test_values_the_specs_accept_and_unset_values_pass() -> None:
    assert settings.spec_problems({"fa_build_timeout": "600", "fa_build_keep_logs": "yes", "fa_fetch_depth": 1}.get) == []
    assert settings.spec_problems(lambda name: None) == []


def test_settings_checked_by_the_stricter_rules_are_not_reported_twice() -> None:
    value = {"fa_verify_timeout": "abc"}
    assert "fa_verify_timeout" in settings.GATHERED
    assert settings.spec_problems(value.get) == []
    assert [p["what"] for p in settings.problems(value)] == ["setting fa_verify_timeout is not valid"]
