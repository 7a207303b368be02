"""Which build keys need a seed host: plugin_utils/artifacts.py pull_keys (roles/fa_install/tasks/seed.yml)."""

from __future__ import annotations

from ansible_collections.ascend.fa.plugins.plugin_utils import artifacts

A, B, OLD = "a" * 64, "b" * 64, "c" * 64


def _host(key, needs=True, sha=None, previous=None):
    pkg = {"sha256": sha, "previous": {"sha256": previous} if previous else None} if sha else None
    return {"fa_build_key": key, "fa_needs_install": needs, "ansible_facts": {"ascend": {"fa_package": pkg}}}


CACHED = {"k910b": {"sha256": A}, "k93": {"sha256": B}}


def test_keys_a_host_needs_and_the_cache_has():
    hv = {"n1": _host("k910b"), "n2": _host("k93", sha=B), "n3": _host("k93", needs=False),
          "n4": _host("kmissing")}
    # n1 needs k910b; n2 keeps k93's package by its facts but may have lost the copy (it pulls then); n3 needs
    # nothing; n4's key is not in the cache (its build failed)
    assert artifacts.pull_keys(hv, ["n1", "n2", "n3", "n4"], CACHED) == ["k910b", "k93"]
    assert artifacts.pull_keys(hv, ["n3", "n4"], CACHED) == []
    hv["n5"] = {"fa_build_key": "k93", "fa_needs_install": "True"}
    assert artifacts.pull_keys(hv, ["n5"], CACHED) == ["k93"]


def test_the_install_play_takes_the_hosts_that_need_the_package_and_have_a_build():
    cached = {"k910b": {"sha256": A}}
    hv = {"n1": {"fa_needs_install": True, "fa_build_key": "k910b", "fa_cached": cached},
          "n2": {"fa_needs_install": False, "fa_build_key": "k910b", "fa_cached": cached},     # converged
          "n3": {"fa_needs_install": True, "fa_build_key": "k93", "fa_cached": cached},         # its build failed
          "n4": {},                                                                             # not in play 1
          "n5": {"fa_needs_install": "True", "fa_build_key": "k910b", "fa_cached": cached}}
    assert artifacts.rollout_targets(hv, ["n1", "n2", "n3", "n4", "n5"]) == ["n1", "n5"]
    # the run's tags leave the install out: no host
    assert artifacts.rollout_targets(hv, ["n1", "n5"], install=False) == []
