"""The artifact cache is authenticated, not just checksummed (issue 19, ascend_fa/trust.py), on one simulated host.

The probe of the issue: replace the cached .run with a script and fix the sha256 in artifact.json, then deploy with
fa_install_force=true. Before, the script ran as root on the host and was recorded as installed. Now the entry's
record no longer carries this controller's HMAC: it is refused with a warning naming it, rebuilt and signed again,
and the host ends verified on the genuine package; the script never runs. A rollback (playbooks/rollback_fa.yml)
refuses a kept package whose sha256 this controller never signed, and one whose file was swapped on the host.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from ansible_collections.ascend.fa.plugins.plugin_utils import artifacts, trust

pytestmark = pytest.mark.fleet

MARKER = "/root/ascend-fa-pwned"
EVIL = f"#!/bin/bash\ntouch {MARKER}\necho SUCCESS\n"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def fleet(make_fleet):
    return make_fleet("trust", octet=72, hosts=1, npus=1)


@pytest.fixture(scope="module")
def deployed(fleet):
    run = fleet.play("deploy_fa.yml")
    assert run.rc == 0, run.out[-4000:]
    (record,) = fleet.builds()
    return record


def write_manifest(fleet, host: str, manifest: dict) -> None:
    data = base64.b64encode(json.dumps(manifest).encode()).decode()
    p = fleet.sh(host, f"echo {data} | base64 -d > /var/lib/ascend-fa/manifest.json")
    assert p.returncode == 0, p.stderr


def test_tampered_cache_entry_is_refused_rebuilt_and_never_runs(fleet, deployed):
    host = fleet.hosts[0]
    entry = fleet.cache / deployed["build_key"]
    pkg = entry / deployed["file"]
    assert deployed["hmac"] and artifacts.check(str(fleet.cache), deployed["build_key"], trust.load_key())[0]
    # the probe: a script in place of the package, its sha256 (and size) fixed in artifact.json
    pkg.write_text(EVIL)
    tampered = {**deployed, "sha256": sha(EVIL), "size": len(EVIL)}
    (entry / "artifact.json").write_text(json.dumps(tampered, indent=4))
    assert hashlib.sha256(pkg.read_bytes()).hexdigest() == tampered["sha256"]   # checksum-only: it would pass

    run = fleet.play("deploy_fa.yml", "-e", "fa_install_force=true")
    assert run.rc == 0, run.out[-4000:]
    assert f"artifact cache entry {entry}: its record's signature (hmac) does not match" in run.out
    assert "not signed by this controller's key, or tampered with: refused, it is rebuilt" in run.out
    # the script never ran on the host
    assert fleet.sh(host, f"test -e {MARKER}").returncode == 1
    # the entry was rebuilt: a new package and a new record, signed by this controller
    rebuilt = json.loads((entry / "artifact.json").read_text())
    assert rebuilt["sha256"] != tampered["sha256"] and pkg.read_text(errors="replace") != EVIL
    meta, why = artifacts.check(str(fleet.cache), deployed["build_key"], trust.load_key())
    assert why is None and meta["sha256"] == rebuilt["sha256"] == hashlib.sha256(pkg.read_bytes()).hexdigest()
    # the host is on the genuine package, reinstalled by this run, and verified
    manifest = fleet.manifest(host)
    assert manifest["sha256"] == rebuilt["sha256"] and manifest["reason"] == "install"
    verify = json.loads((fleet.results / "verify" / f"{host}.json").read_text())
    assert verify.get("sha256", rebuilt["sha256"]) == rebuilt["sha256"]
    assert verify.get("passed", verify.get("ok")) is True, verify


def test_tampered_shared_store_entry_is_claimed_again_and_rebuilt(fleet, deployed):
    """fa_artifact_store: host (here the fleet's one host): the store host cannot check the HMAC, the controller can."""
    host = fleet.hosts[0]
    store = "/srv/ascend-fa/artifacts"
    key = deployed["build_key"]
    cache = fleet.dir / "store-controller-cache"           # another controller: its own, empty cache
    store_vars = ["-e", "fa_artifact_store=host", "-e", f"fa_artifact_host={host}", "-e", f"fa_artifact_cache={cache}"]
    run = fleet.play("deploy_fa.yml", *store_vars, "-e", "fa_install_force=true")   # forced: the host is converged
    assert run.rc == 0, run.out[-4000:]
    published = json.loads(fleet.sh(host, f"cat {store}/{key}/artifact.json").stdout)
    assert published["hmac"] and published["sha256"] == json.loads((cache / key / "artifact.json").read_text())["sha256"]

    # the probe on the store: a script in place of the package, its sha256 fixed in the store's record
    data = base64.b64encode(EVIL.encode()).decode()
    record = base64.b64encode(json.dumps({**published, "sha256": sha(EVIL), "size": len(EVIL)}).encode()).decode()
    p = fleet.sh(host, f"echo {data} | base64 -d > {store}/{key}/{published['file']} && "
                       f"echo {record} | base64 -d > {store}/{key}/artifact.json")
    assert p.returncode == 0, p.stderr
    for path in sorted(cache.iterdir()):                   # the controller has nothing: it must take the store's
        for f in path.iterdir():
            f.unlink()
        path.rmdir()

    run = fleet.play("deploy_fa.yml", *store_vars, "-e", "fa_install_force=true")
    assert run.rc == 0, run.out[-4000:]
    assert f"shared artifact store entry {key} ({store}/{key}/{published['file']}): its record's signature" in run.out
    assert fleet.sh(host, f"test -e {MARKER}").returncode == 1
    # rebuilt by this run and published over the tampered entry, signed
    republished = json.loads(fleet.sh(host, f"cat {store}/{key}/artifact.json").stdout)
    assert republished["sha256"] != sha(EVIL)
    assert trust.record_problem(republished, trust.load_key(), key) is None
    stored = fleet.sh(host, f"sha256sum {store}/{key}/{published['file']}").stdout.split()[0]
    assert stored == republished["sha256"] and fleet.manifest(host)["sha256"] == republished["sha256"]


def test_rollback_refuses_a_kept_package_the_controller_did_not_sign(fleet, deployed):
    host = fleet.hosts[0]
    manifest = fleet.manifest(host)
    evil_path = f"/var/lib/ascend-fa/packages/{sha(EVIL)}.run"
    data = base64.b64encode(EVIL.encode()).decode()
    assert fleet.sh(host, f"echo {data} | base64 -d > {evil_path} && chmod 755 {evil_path}").returncode == 0
    # a "previous" package on the host that this controller never built (another controller, or written by hand)
    write_manifest(fleet, host, {**manifest, "previous": {**manifest, "previous": None, "recipe": "foreign",
                                                          "sha256": sha(EVIL), "package": evil_path}})
    run = fleet.play("playbooks/rollback_fa.yml")
    assert run.rc != 0 and run.failed() == [host]
    assert f"kept package {evil_path} (sha256 {sha(EVIL)}) is not one the controller built and signed" in run.out
    assert fleet.sh(host, f"test -e {MARKER}").returncode == 1
    assert fleet.manifest(host)["sha256"] == manifest["sha256"]

    # a signed sha256, but the kept file was swapped on the host: the host's own checksum refuses it
    write_manifest(fleet, host, {**manifest, "previous": {**manifest, "previous": None, "recipe": "swapped",
                                                          "package": evil_path}})
    run = fleet.play("playbooks/rollback_fa.yml")
    assert run.rc != 0 and run.failed() == [host]
    assert f"checksum mismatch for {evil_path}" in run.out
    assert fleet.sh(host, f"test -e {MARKER}").returncode == 1
    assert fleet.manifest(host)["sha256"] == manifest["sha256"]
