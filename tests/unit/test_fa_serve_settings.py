"""The distribution settings (docs/distribution.md) are checked before any host is touched: variable, value, fix."""

from __future__ import annotations

import pytest
from ansible_collections.ascend.fa.plugins.plugin_utils import settings


def test_the_defaults_and_typical_values_pass():
    assert settings.problems({
        "fa_install_source": "pull", "fa_install_seed_host": "", "fa_install_serve_port": 58642,
        "fa_install_serve_address": "", "fa_install_serve_timeout": 7200, "fa_install_fetch_timeout": "60"}) == []
    assert settings.problems({
        "fa_install_source": "push", "fa_install_seed_host": "atlas-a2-001", "fa_install_serve_port": "1024",
        "fa_install_serve_address": "10.0.0.11", "fa_install_serve_timeout": 1}) == []
    assert settings.problems({"fa_install_serve_address": "fe80::1", "fa_install_serve_port": 65535}) == []


@pytest.mark.parametrize("name, value, needed", [
    ("fa_install_source", "ftp", "pull or push"),
    ("fa_install_source", "", "pull or push"),
    ("fa_install_serve_port", 80, "an integer from 1024 to 65535"),
    ("fa_install_serve_port", 65536, "an integer from 1024 to 65535"),
    ("fa_install_serve_port", "http", "an integer from 1024 to 65535"),
    ("fa_install_serve_timeout", 0, "an integer >= 1"),
    ("fa_install_fetch_timeout", "-1", "an integer >= 1"),
    ("fa_install_serve_address", "10.0.0.1; rm -rf /", "empty (the seed's ansible_host"),
    ("fa_install_serve_address", "-oProxyCommand=x", "empty (the seed's ansible_host"),
    ("fa_install_seed_host", "host name", "empty (each build key's own seed"),
    ("fa_install_seed_host", "$(id)", "empty (each build key's own seed"),
])
def test_each_bad_value_names_the_variable_the_value_and_the_fix(name, value, needed):
    (p,) = settings.problems({name: value})
    assert p["code"] == "bad_setting" and p["what"] == f"setting {name} is not valid" and p["found"] == repr(value)
    assert p["needed"].startswith(needed) and name in p["fix"]
