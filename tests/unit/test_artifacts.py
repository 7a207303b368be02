"""The controller's artifact cache (ascend_fa/artifacts.py) and its filters: an entry counts only when this
controller signed its record and the package has the signed sha256. Tamper, swap, poison and corruption are
refused with the reason, the filter warns and leaves the entry out (so the build rebuilds it)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ascend.fa.plugins.plugin_utils import artifacts, trust

ROOT = Path(__file__).resolve().parents[2]
from ansible_collections.ascend.fa.plugins.filter import ascend_fa as filters

KEY = b"s" * 40
EVIL = "#!/bin/bash\ntouch /tmp/pwned\necho SUCCESS\n"


def put(cache: Path, key: str, content: str, secret: bytes | None = KEY, **over) -> dict:
    """A cache entry as fa_build writes it: the package, then its record (signed with ``secret`` unless None)."""
    d = cache / key
    d.mkdir(parents=True, exist_ok=True)
    (d / "cann-ops-transformer.run").write_text(content)
    rec = {"file": "cann-ops-transformer.run", "sha256": hashlib.sha256(content.encode()).hexdigest(),
           "size": len(content), "build_key": key, "recipe": "r", "tag": "v1", "commit": "c0ffee",
           "soc_family": "ascend910b", "cann_version": "8.5.0", "arch": "aarch64", "vendor": "ascendfa", **over}
    if secret is not None:
        rec = trust.sign(rec, secret)
    (d / "artifact.json").write_text(json.dumps(rec, indent=4))
    return rec


def rewrite(cache: Path, key: str, **fields) -> None:
    path = cache / key / "artifact.json"
    rec = json.loads(path.read_text())
    rec.update(fields)
    path.write_text(json.dumps(rec, indent=4))


def test_signed_intact_entry_is_served(tmp_path):
    rec = put(tmp_path, "k1", "genuine 1")
    meta, why = artifacts.check(str(tmp_path), "k1", KEY)
    assert why is None and meta["sha256"] == rec["sha256"] and meta["path"] == str(tmp_path / "k1/cann-ops-transformer.run")
    assert artifacts.check(str(tmp_path), "absent", KEY) == (None, None)       # no entry: nothing to say


def test_tamper_package_replaced_and_sha_fixed_in_the_record_is_refused(tmp_path):
    put(tmp_path, "k1", "genuine 1")
    (tmp_path / "k1/cann-ops-transformer.run").write_text(EVIL)
    rewrite(tmp_path, "k1", sha256=hashlib.sha256(EVIL.encode()).hexdigest(), size=len(EVIL))
    meta, why = artifacts.check(str(tmp_path), "k1", KEY)
    assert meta is None and "signature (hmac) does not match" in why


def test_corrupted_package_with_the_old_sha_in_the_record_is_refused(tmp_path):
    rec = put(tmp_path, "k1", "genuine 1")
    (tmp_path / "k1/cann-ops-transformer.run").write_text("genuine 1 but truncat")
    meta, why = artifacts.check(str(tmp_path), "k1", KEY)
    got = hashlib.sha256(b"genuine 1 but truncat").hexdigest()
    assert meta is None and f"has sha256 {got}, not the signed {rec['sha256']}" in why
    os.remove(tmp_path / "k1/cann-ops-transformer.run")
    assert "missing" in artifacts.check(str(tmp_path), "k1", KEY)[1]


def test_swap_two_entries_is_refused(tmp_path):
    put(tmp_path, "k1", "genuine 1")
    put(tmp_path, "k2", "genuine 2")
    # whole entries swapped (records and packages): each record names the other build key
    os.rename(tmp_path / "k1", tmp_path / "tmp")
    os.rename(tmp_path / "k2", tmp_path / "k1")
    os.rename(tmp_path / "tmp", tmp_path / "k2")
    for key in ("k1", "k2"):
        meta, why = artifacts.check(str(tmp_path), key, KEY)
        assert meta is None and "not '" + key + "' (moved or swapped)" in why
    # only the packages swapped: each package fails its own signed sha256
    put(tmp_path, "k1", "genuine 1")
    put(tmp_path, "k2", "genuine 2")
    a, b = tmp_path / "k1/cann-ops-transformer.run", tmp_path / "k2/cann-ops-transformer.run"
    shutil.copy(a, tmp_path / "a")
    shutil.copy(b, a)
    shutil.copy(tmp_path / "a", b)
    assert all("not the signed" in artifacts.check(str(tmp_path), k, KEY)[1] for k in ("k1", "k2"))


def test_poison_unsigned_or_signed_by_another_key_is_refused(tmp_path):
    put(tmp_path, "k1", EVIL, secret=None)
    put(tmp_path, "k2", EVIL, secret=b"x" * 40)
    assert "no signature" in artifacts.check(str(tmp_path), "k1", KEY)[1]
    assert "does not match" in artifacts.check(str(tmp_path), "k2", KEY)[1]
    (tmp_path / "k3").mkdir()
    (tmp_path / "k3/artifact.json").write_text("{not json")
    assert "unreadable" in artifacts.check(str(tmp_path), "k3", KEY)[1]
    # a hostile file name in a record that is even signed never leaves the entry's folder
    put(tmp_path, "k4", "x", file="../k1/cann-ops-transformer.run")
    assert "not a plain file name" in artifacts.check(str(tmp_path), "k4", KEY)[1]


def test_lookup_many_reports_each_refusal(tmp_path):
    put(tmp_path, "good", "genuine")
    put(tmp_path, "bad", EVIL, secret=None)
    refused: dict[str, str] = {}
    found = artifacts.lookup_many(str(tmp_path), ["good", "bad", "absent"], KEY, refused)
    assert list(found) == ["good"] and list(refused) == ["bad"]
    assert "rebuilt" in artifacts.refusal_line(str(tmp_path), "bad", refused["bad"])


# --- the filters (the controller's key from the environment) ----------------------------------------------------
@pytest.fixture
def ctl_key(tmp_path, monkeypatch):
    monkeypatch.delenv(trust.KEY_ENV, raising=False)
    path = tmp_path / "cfg" / "cache.key"
    monkeypatch.setenv(trust.KEY_FILE_ENV, str(path))
    return path


class Warnings(list):
    def warning(self, msg, *a, **k):
        self.append(msg)


def test_filter_leaves_a_refused_entry_out_and_warns(tmp_path, ctl_key, monkeypatch):
    warned = Warnings()
    monkeypatch.setattr(filters, "display", warned)
    cache = tmp_path / "cache"
    secret = trust.load_key(create=True)
    put(cache, "good", "genuine", secret=secret)
    put(cache, "bad", "genuine 2", secret=secret)
    (cache / "bad/cann-ops-transformer.run").write_text(EVIL)
    rewrite(cache, "bad", sha256=hashlib.sha256(EVIL.encode()).hexdigest())
    assert list(filters.fa_cached_artifacts(["good", "bad"], str(cache))) == ["good"]
    (line,) = warned
    assert str(cache / "bad") in line and "not signed by this controller's key, or tampered with" in line
    assert "rebuilt" in line


def test_filter_refuses_to_run_with_an_unsafe_key_file(tmp_path, ctl_key):
    trust.load_key(create=True)
    ctl_key.chmod(0o644)
    with pytest.raises(AnsibleFilterError, match="chmod 600"):
        filters.fa_cached_artifacts(["k"], str(tmp_path))
    with pytest.raises(AnsibleFilterError, match="chmod 600"):
        filters.fa_artifact_sign({"file": "p.run"})


def test_no_key_yet_means_nothing_cached_is_trusted_and_the_first_signing_makes_it(tmp_path, ctl_key, monkeypatch):
    warned = Warnings()
    monkeypatch.setattr(filters, "display", warned)
    cache = tmp_path / "cache"
    rec = put(cache, "k1", "genuine", secret=None)
    assert filters.fa_cached_artifacts(["k1"], str(cache)) == {} and "no artifact cache key" in warned[0]
    assert not ctl_key.exists()
    signed = filters.fa_artifact_sign(rec, str(cache))
    assert ctl_key.is_file() and signed["hmac"]
    (cache / "k1/artifact.json").write_text(json.dumps(signed))
    assert list(filters.fa_cached_artifacts(["k1"], str(cache))) == ["k1"]
    assert filters.fa_trusted_sha256s(str(cache)) == [rec["sha256"]]


def test_sign_filter_signs_only_a_package_that_has_the_reported_sha(tmp_path, ctl_key, monkeypatch):
    warned = Warnings()
    monkeypatch.setattr(filters, "display", warned)
    cache = tmp_path / "cache"
    rec = put(cache, "k1", "genuine", secret=None)
    (cache / "k1/cann-ops-transformer.run").write_text("swapped between fetch and record")
    out = filters.fa_artifact_sign(rec, str(cache))
    assert "hmac" not in out and "not signed" in warned[0]


def test_env_key_signs_and_verifies_without_a_file(tmp_path, ctl_key, monkeypatch):
    monkeypatch.setenv(trust.KEY_ENV, "awx-credential-" + "z" * 32)
    cache = tmp_path / "cache"
    rec = put(cache, "k1", "genuine", secret=None)
    (cache / "k1/artifact.json").write_text(json.dumps(filters.fa_artifact_sign(rec, str(cache))))
    assert list(filters.fa_cached_artifacts(["k1"], str(cache))) == ["k1"] and not ctl_key.exists()
    monkeypatch.setenv(trust.KEY_ENV, "another-credential-" + "z" * 32)     # another controller's key
    monkeypatch.setattr(filters, "display", Warnings())
    assert filters.fa_cached_artifacts(["k1"], str(cache)) == {}


def test_store_claims_unsigned_present_entries_are_claimed_again(tmp_path, ctl_key, monkeypatch):
    warned = Warnings()
    monkeypatch.setattr(filters, "display", warned)
    secret = trust.load_key(create=True)
    good = trust.sign({"file": "p.run", "sha256": "1" * 64, "build_key": "k1"}, secret)
    evil = {"file": "p.run", "sha256": "2" * 64, "build_key": "k2", "hmac": "0" * 64}
    results = [{"state": "present", "item": {"key": "k1"}, "meta": {**good, "path": "/s/k1/p.run"}},
               {"state": "present", "item": {"key": "k2"}, "meta": {**evil, "path": "/s/k2/p.run"}},
               {"state": "busy", "item": {"key": "k3"}}]
    bad = filters.fa_store_untrusted(results)
    assert [b["item"]["key"] for b in bad] == ["k2"] and "does not match" in bad[0]["untrusted"]
    assert "shared artifact store entry k2" in warned[0] and "rebuilt" in warned[0]
    # the second claim (distrust_sha256) took the lock: k2 is built by this run
    merged = filters.fa_store_claims(results, [{"state": "acquired", "item": bad[0]}])
    assert [(r["item"]["key"], r["state"]) for r in merged] == [("k1", "present"), ("k2", "acquired"), ("k3", "busy")]
    # nothing claimed again: an unsigned present entry is neither pulled nor built
    assert [r["state"] for r in filters.fa_store_claims(results)] == ["present", "untrusted", "busy"]


def test_the_staged_collection_imports_its_own_trust(tmp_path):
    """A staged collection's fa_install action imports plugin_utils/trust.py of that collection, found by Ansible's
    collection loader (no path of this checkout involved)."""
    import subprocess
    import sys

    spec = importlib.util.spec_from_file_location("build_collection", ROOT / "scripts" / "build_collection.py")
    bc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bc)
    coll = bc.stage(tmp_path)
    code = ("import sys; from ansible.plugins.loader import init_plugin_loader; init_plugin_loader([sys.argv[1]]); "
            "import ansible_collections.ascend.fa.plugins.action.fa_install as a; print(a.trust.__file__)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=tmp_path,
                       env={**env, "ANSIBLE_COLLECTIONS_PATH": str(tmp_path)})
    assert p.returncode == 0 and str(coll / "plugins/plugin_utils/trust.py") in p.stdout, p.stdout + p.stderr
