"""The artifact cache's trust anchor (ascend_fa/trust.py): the key (file, env, permissions), the signed record, the
sha256s a rollback may run, and preflight's comparison of the installed package with the signed record."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.plugin_utils import preflight, trust

KEY = b"k" * 40
OTHER_KEY = b"o" * 40
SHA = "a" * 64


def record(**over) -> dict:
    rec = {"file": "cann-ops-transformer.run", "sha256": SHA, "size": 123, "build_key": "k1", "recipe": "r",
           "tag": "v9.0.1", "commit": "1234567", "soc_family": "ascend910b", "cann_version": "8.5.0",
           "arch": "aarch64", "vendor": "ascendfa", "jobs": 4, "build_host": "h1", "build_seconds": 12.5}
    rec.update(over)
    return rec


@pytest.fixture
def keyfile(tmp_path, monkeypatch):
    monkeypatch.delenv(trust.KEY_ENV, raising=False)
    path = tmp_path / "cfg" / "ascend-fa" / "cache.key"
    monkeypatch.setenv(trust.KEY_FILE_ENV, str(path))
    return path


# --- the key -------------------------------------------------------------------------------------------------------
def test_key_file_is_made_0600_in_a_0700_folder_on_first_signing_only(keyfile):
    assert trust.load_key() is None and not keyfile.exists()      # readers never make one
    key = trust.load_key(create=True)
    assert keyfile.is_file() and len(key) >= trust.MIN_KEY_CHARS
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    assert stat.S_IMODE(keyfile.parent.stat().st_mode) == 0o700
    assert trust.load_key() == key == trust.load_key(create=True)  # made once, then read


def test_default_key_file_is_in_the_config_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(trust.KEY_FILE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert trust.key_file() == tmp_path / ".config/ascend-fa/cache.key"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o666])
def test_key_file_readable_by_others_is_refused(keyfile, mode):
    trust.load_key(create=True)
    keyfile.chmod(mode)
    with pytest.raises(trust.TrustError, match=rf"mode {mode:04o}.*chmod 600 {keyfile}"):
        trust.load_key()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_key_file_owned_by_another_user_is_refused(keyfile):
    trust.load_key(create=True)
    os.chown(keyfile, 1, 1)
    with pytest.raises(trust.TrustError, match=r"owned by uid 1.*refused"):
        trust.load_key()


def test_short_key_is_refused(keyfile):
    keyfile.parent.mkdir(parents=True)
    keyfile.write_text("short\n")
    keyfile.chmod(0o600)
    with pytest.raises(trust.TrustError, match="at least 32"):
        trust.load_key()


def test_env_key_wins_over_the_file_and_makes_no_file(keyfile, monkeypatch):
    monkeypatch.setenv(trust.KEY_ENV, "e" * 48)
    assert trust.load_key(create=True) == b"e" * 48
    assert not keyfile.exists()
    assert trust.key_source() == f"${trust.KEY_ENV}"
    monkeypatch.setenv(trust.KEY_ENV, "too-short")
    with pytest.raises(trust.TrustError, match=trust.KEY_ENV):
        trust.load_key()


# --- the signed record ---------------------------------------------------------------------------------------------
def test_sign_then_verify_and_what_the_hmac_is(keyfile):
    signed = trust.sign(record(), KEY)
    assert trust.record_problem(signed, KEY, "k1") is None
    # independent computation: HMAC-SHA256 over the documented canonical form
    body = {k: str(v) for k, v in record().items()}
    want = hmac.new(KEY, trust.DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode(),
                    hashlib.sha256).hexdigest()
    assert signed["hmac"] == want


def test_signature_survives_json_and_type_round_trips():
    signed = trust.sign(record(), KEY)
    back = json.loads(json.dumps(signed, indent=4))
    back["size"] = "123"                 # an Ansible round trip may turn numbers into strings, or back
    back["path"] = "/cache/k1/x.run"     # the lookup adds the local path: not signed
    assert trust.record_problem(back, KEY, "k1") is None


@pytest.mark.parametrize("field,value", [("sha256", "b" * 64), ("file", "other.run"), ("size", 124),
                                         ("commit", "deadbee"), ("vendor", "x"), ("recipe", "r2"), ("extra", "1")])
def test_any_edit_of_a_signed_record_is_refused(field, value):
    signed = trust.sign(record(), KEY)
    signed[field] = value
    assert "does not match" in trust.record_problem(signed, KEY, "k1")


def test_poison_unsigned_or_foreign_key_is_refused():
    assert "no signature" in trust.record_problem(record(), KEY, "k1")
    assert "does not match" in trust.record_problem(trust.sign(record(), OTHER_KEY), KEY, "k1")
    assert "no artifact cache key" in trust.record_problem(trust.sign(record(), KEY), None, "k1")


@pytest.mark.parametrize("rec,why", [
    (record(build_key="k2"), "for build key 'k2', not 'k1'"),
    (record(file="../../etc/cron.d/x"), "not a plain file name"),
    (record(file=".hidden"), "not a plain file name"),
    (record(sha256="abc"), "not a sha256 digest"),
    (record(build_key="../k1"), "not a plain name"),
])
def test_swapped_or_hostile_record_is_refused_even_when_signed(rec, why):
    assert why in trust.record_problem(trust.sign(rec, KEY), KEY, "k1")
    assert "not a JSON object" in trust.record_problem(["x"], KEY, "k1")


# --- what a rollback may run, what preflight compares -------------------------------------------------------------
def write_entry(cache: Path, rec: dict) -> None:
    (cache / rec["build_key"]).mkdir(parents=True, exist_ok=True)
    (cache / rec["build_key"] / trust.RECORD).write_text(json.dumps(rec))


def test_trusted_sha256s_are_those_of_signed_records_only(tmp_path):
    cache = tmp_path / "cache"
    write_entry(cache, trust.sign(record(build_key="k1", sha256="1" * 64), KEY))
    write_entry(cache, trust.sign(record(build_key="k2", sha256="2" * 64), OTHER_KEY))     # foreign
    write_entry(cache, record(build_key="k3", sha256="3" * 64))                            # unsigned
    moved = trust.sign(record(build_key="k4", sha256="4" * 64), KEY)
    (cache / "k5").mkdir()
    (cache / "k5" / trust.RECORD).write_text(json.dumps(moved))                            # record moved to k5
    (cache / "junk").write_text("not an entry")
    assert trust.trusted_sha256s(cache, KEY) == ["1" * 64]
    assert trust.trusted_sha256s(cache, None) == []
    assert trust.trusted_sha256s(tmp_path / "absent", KEY) == []


def facts_with(sha: str, key: str = "k1") -> dict:
    return {"fa_package_state": "installed", "fa_package": {"sha256": sha, "build_key": key, "recipe": "r"}}


def test_installed_package_differing_from_the_signed_record_is_a_problem(tmp_path):
    cache = tmp_path / "cache"
    write_entry(cache, trust.sign(record(), KEY))
    (problem,) = trust.installed_problems(facts_with("f" * 64), cache, KEY)
    assert problem["code"] == "untrusted_package" and problem["severity"] == "warning"
    assert "f" * 64 in problem["found"] and SHA in problem["needed"] and problem["fix"]
    assert trust.installed_problems(facts_with(SHA), cache, KEY) == []             # the signed one
    assert trust.installed_problems(facts_with("f" * 64, "k9"), cache, KEY) == []  # no record for that key
    assert trust.installed_problems({"fa_package": None}, cache, KEY) == []
    # a record this controller did not sign says nothing either way
    write_entry(cache, trust.sign(record(), OTHER_KEY))
    assert trust.installed_problems(facts_with("f" * 64), cache, KEY) == []


def test_preflight_reinstalls_a_converged_host_whose_package_is_not_the_signed_one(tmp_path):
    cache = tmp_path / "cache"
    recipe = {"name": "r", "commit": "1234567", "tag": "v9.0.1", "build": {}}
    facts = {"fa_package_state": "installed", "soc_family": "ascend910b", "cann_version": "8.5.0", "arch": "aarch64",
             "fa_verify_state": "passed"}
    key = preflight.build_key(facts, recipe, "ascendfa")
    facts["fa_package"] = {"sha256": "f" * 64, "build_key": key, "recipe": "r"}
    base = preflight.decide(facts, recipe, {"vendor": "ascendfa"})
    assert base["needs_install"] is False          # converged as far as the host can tell
    write_entry(cache, trust.sign(record(build_key=key), KEY))
    untrusted = trust.installed_problems(facts, cache, KEY)
    verdict = preflight.decide(facts, recipe, {"vendor": "ascendfa", "untrusted": untrusted})
    assert verdict["needs_install"] is True and verdict["install_force"] is True
    assert [p["code"] for p in verdict["warnings"] if p not in base["warnings"]] == ["untrusted_package"]
    assert verdict["blocking"] == base["blocking"]          # a warning: the reinstall fixes it
    # the per-host finding does not change what a converged host must match
    assert preflight.converged_key(recipe, {"untrusted": untrusted}) == preflight.converged_key(recipe, {})
