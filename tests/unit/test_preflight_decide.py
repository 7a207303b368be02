"""ascend_fa/preflight.py: one verdict per host (problems, blocking, build key, needs_install) from data."""

from __future__ import annotations

from ansible_collections.ascend.fa.plugins.module_utils import fa_manifest as manifest_lib
from ansible_collections.ascend.fa.plugins.plugin_utils import buildplan, preflight, recipes

RECIPE = recipes.load("ops-transformer-v9.0.1")

# A consistent Atlas 800T A2 stack (versions as ascend_facts reports them; see ascend-facts.md)
GOOD = {
    "soc_version": "ascend910b3", "soc_family": "ascend910b", "fa_supported": True, "arch": "x86_64",
    "driver_version": "25.5.0", "firmware_version": "7.8.0.5.212", "cann_version": "9.0.1", "cann_layout": "cann",
    "torch_version": "2.9.0", "torch_npu_version": "2.9.0", "python_version": "3.11.7",
    "npu_count": 1, "chips": [{"npu_id": 0, "chip_id": 0, "health": "OK", "hbm_total_mb": 65536, "hbm_used_mb": 100}],
    "cpu_count": 16, "mem_total_mb": 65536, "disk_free_mb": {"/var/lib/ascend-fa": 10000, "/var/tmp/ascend-fa": 10000},
    "errors": [], "fa_package_state": "absent", "fa_package": None,
}


def _key(facts, vendor=""):
    spec = {"command": RECIPE["build"]["command"], "ops": list(RECIPE["build"]["ops"])}
    return buildplan.build_key(RECIPE["name"], RECIPE["commit"], facts["soc_family"], facts["cann_version"],
                               facts["arch"], vendor, spec)


def test_fresh_host_needs_install_and_nothing_blocks():
    v = preflight.decide(GOOD, RECIPE, {"checklist": {"is_build_host": True}})
    assert v["blocking"] == []
    assert v["needs_install"] is True and v["install_force"] is False
    assert v["build_key"] == _key(GOOD)
    assert v["build_jobs"] == min(16, 65536 // int(RECIPE["build"].get("mem_per_job_mb", 4096)))


def test_converged_host_needs_nothing():
    facts = {**GOOD, "fa_package_state": "installed", "fa_package": {"build_key": _key(GOOD)},
             "fa_verify_state": "passed"}
    v = preflight.decide(facts, RECIPE, {"env": {"ran": True, "problems": [], "repair": False}})
    assert v["needs_install"] is False and v["warnings"] == [] and v["blocking"] == []


def test_install_force_reinstalls_a_converged_host():
    facts = {**GOOD, "fa_package_state": "installed", "fa_package": {"build_key": _key(GOOD)},
             "fa_verify_state": "passed"}
    assert preflight.decide(facts, RECIPE)["needs_install"] is False
    v = preflight.decide(facts, RECIPE, {"install_force": True})
    assert v["needs_install"] is True and v["install_force"] is True and v["clean"] is True


def test_a_failed_last_verification_of_the_installed_package_is_verified_again():
    pkg = {"build_key": _key(GOOD), "sha256": "a" * 64, "recipe": RECIPE["name"]}
    failed = {"ok": False, "sha256": "a" * 64, "recipe": RECIPE["name"], "failed_cards": [1, 3],
              "summary": "2 of 8 cards failed FlashAttention (card 1, 3)", "at": "2026-11-29T10:00:00Z"}


    def host(record):  # the facts as ascend_facts reports them: the record and the host's own verdict on it
        return {**GOOD, "fa_package_state": "installed", "fa_package": pkg, "fa_last_verify": record,
                "fa_verify_state": manifest_lib.verification_state(pkg, record),
                "fa_last_verify_failed": manifest_lib.verification_state(pkg, record) == "failed"}

    facts = host(failed)
    v = preflight.decide(facts, RECIPE)
    # the package is intact: not forced (the installer leaves it), the rollout verifies it again
    assert v["needs_install"] is True and v["install_force"] is False and v["blocking"] == []
    (p,) = v["warnings"]
    assert p["code"] == "last_verification_failed" and "card(s) 1, 3" in p["found"] and "10:00:00Z" in p["found"]
    assert "verifies it again" in p["fix"] and "fa_install_force" in p["fix"]
    assert v["clean"] is False and v["clean_after_install"] is True
    # a passing record of this package: converged
    v = preflight.decide(host({**failed, "ok": True}), RECIPE)
    assert v["needs_install"] is False and v["warnings"] == []
    v = preflight.decide(facts, RECIPE, {"ignore": ["last_verification_failed"]})
    assert v["needs_install"] is False and v["clean"] is True
    v = preflight.decide({**facts, "fa_package_state": "files_changed"}, RECIPE)
    assert [p["code"] for p in v["warnings"]] == ["package_files_changed"]


def test_a_package_with_no_passing_verification_on_record_is_never_converged():
    """An upgrade interrupted during its verification (host lost, controller killed) leaves verify.json of the
    previous package (ok) or none: the installed package is unverified and the next run verifies it."""
    pkg = {"build_key": _key(GOOD), "sha256": "a" * 64, "recipe": RECIPE["name"], "installed_at": "2026-12-01T09:00:00Z"}
    older_ok = {"ok": True, "sha256": "b" * 64, "recipe": "ops-transformer-v9.0.0", "at": "2026-11-29T10:00:00Z"}

    for record in (older_ok, None, {"sha256": "a" * 64}):
        facts = {**GOOD, "fa_package_state": "installed", "fa_package": pkg, "fa_last_verify": record,
                 "fa_verify_state": manifest_lib.verification_state(pkg, record)}
        assert facts["fa_verify_state"] == "none"
        v = preflight.decide(facts, RECIPE)
        assert v["needs_install"] is True and v["install_force"] is False and v["blocking"] == [], record
        (p,) = v["warnings"]
        assert p["code"] == "not_verified" and "2026-12-01T09:00:00Z" in p["found"]
        assert ("ops-transformer-v9.0.0" in p["found"]) == (record is older_ok)
        assert v["clean"] is False and v["clean_after_install"] is True
    # facts without the host's verdict (an older module) count as unverified, never as converged
    facts = {**GOOD, "fa_package_state": "installed", "fa_package": pkg}
    assert preflight.decide(facts, RECIPE)["needs_install"] is True
    assert preflight.decide(facts, RECIPE, {"ignore": ["not_verified"]})["needs_install"] is False


def test_other_build_key_or_env_repair_needs_install():
    facts = {**GOOD, "fa_package_state": "installed", "fa_package": {"build_key": "0123456789abcdef"}}
    assert preflight.decide(facts, RECIPE)["needs_install"] is True
    facts = {**GOOD, "fa_package_state": "installed", "fa_package": {"build_key": _key(GOOD)},
             "fa_verify_state": "passed"}
    env = {"ran": True, "repair": True, "problems": [{"code": "package_env", "severity": "error", "what": "w",
                                                       "found": "f", "needed": "n", "fix": "rerun deploy"}]}
    v = preflight.decide(facts, RECIPE, {"env": env})
    assert v["needs_install"] is True and v["install_force"] is True
    assert [p["code"] for p in v["warnings"]] == ["package_env"]
    assert v["warnings"][0]["severity"] == "warning" and v["blocking"] == []


def test_drift_is_a_warning_with_its_fix():
    facts = {**GOOD, "fa_package_state": "cann_changed", "fa_package_detail": "CANN 9.0.0 -> 9.0.1",
             "fa_package": {"build_key": _key(GOOD)}}
    v = preflight.decide(facts, RECIPE)
    (p,) = [p for p in v["warnings"] if p["code"] == "package_cann_changed"]
    assert p["found"] == "CANN 9.0.0 -> 9.0.1" and "rebuilds" in p["fix"]
    assert v["needs_install"] is True


def test_errors_block_unless_ignored():
    facts = {**GOOD, "chips": [{"npu_id": 0, "chip_id": 0, "health": "Alarm", "hbm_total_mb": 65536,
                                "hbm_used_mb": 0}]}
    v = preflight.decide(facts, RECIPE)
    assert [p["code"] for p in v["blocking"]] == ["npu_unhealthy"]
    v = preflight.decide(facts, RECIPE, {"ignore": ["npu_unhealthy"]})
    assert v["blocking"] == [] and "npu_unhealthy" in [p["code"] for p in v["warnings"]]


def test_seed_stack_is_refused():
    facts = {**GOOD, "cann_version": "8.0.RC1", "soc_version": "ascend910b2"}
    v = preflight.decide(facts, RECIPE)
    assert any(p["code"].startswith("cann") for p in v["blocking"])
