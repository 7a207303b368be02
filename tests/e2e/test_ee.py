"""The execution environment, built and run as an AWX execution node runs a job (issue 22, item 6).

scripts/build_ee.py builds the EE from execution-environment.yml with ansible-builder on a Debian base made here
(no registry). The job: a private data dir as AWX writes one (project/site.yml importing ``ascend.fa.deploy``,
inventory/hosts, the Machine credential's key in env/ssh_key, a credential's variables in env/envvars), run with
``podman run ... <EE> ansible-runner run /runner -p site.yml`` under the image's own user (uid 1000) against a
1-host simulated fleet reached over loopback (``--network host``). Checked: the job's status and events (in
artifacts/<ident>/), the code that ran is the image's collection, the host got the package (its manifest) and every
card passed (the verify record the job left in its artifacts), no secret in the job's events or output, and the
records the fa_records callback writes.

ansible-runner's ssh_key handling (config/_base.py, 2.4.3): the key goes through a fifo to ``ssh-add`` under
``ssh-agent``, so the EE's openssh-client is exercised as in AWX.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

pytestmark = pytest.mark.fleet

ROOT = Path(__file__).resolve().parents[2]
IDENT = "job1"
RESULTS = "/runner/artifacts/ascend-fa-results"   # ASCEND_FA_RESULTS inside the job: kept with the job's artifacts
RECIPES = "/opt/ascend-sim/recipes"                # the simulator's recipes, mounted read-only
COLLECTION = "/usr/share/ansible/collections/ansible_collections/ascend/fa/"
EE_UID = 1000                                      # ansible-builder's options.user default; the job runs as it


@pytest.fixture(scope="module")
def ee_image() -> str:
    p = subprocess.run([sys.executable, str(ROOT / "scripts/build_ee.py")], cwd=ROOT, capture_output=True, text=True,
                       timeout=1800)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    return p.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def fleet(make_fleet):
    return make_fleet("ee", octet=113, hosts=1, npus=2)


def _inventory(fleet) -> dict:
    """The fleet's inventory as an AWX inventory holds it: no controller paths (key, known_hosts, recipes)."""
    inv = yaml.safe_load(fleet.inventory.read_text())
    group = inv["all"]["children"]["ascend"]
    for hostvars in group["hosts"].values():
        hostvars.pop("ansible_ssh_private_key_file")   # the Machine credential: env/ssh_key -> ssh-agent
        hostvars.pop("ansible_ssh_common_args")        # known hosts: the image's /etc/ssh/ssh_known_hosts (mounted)
    group["vars"]["fa_recipe_dirs"] = [RECIPES]
    return inv


def _private_data_dir(fleet, cache_key: str) -> Path:
    pdd = fleet.dir / "private-data-dir"
    shutil.rmtree(pdd, ignore_errors=True)
    for sub in ("project", "inventory", "env", "artifacts", "credentials"):
        (pdd / sub).mkdir(parents=True)
    (pdd / "project/site.yml").write_text("---\n- name: Deploy\n  ansible.builtin.import_playbook: ascend.fa.deploy\n")
    (pdd / "inventory/hosts").write_text(yaml.safe_dump(_inventory(fleet), sort_keys=False))
    # the cache key as an AWX credential with a file injector gives it: a file, and a variable naming its path (so
    # ansible-runner's own record of the environment, artifacts/<ident>/command, holds the path, not the key)
    (pdd / "credentials/cache.key").write_text(cache_key)
    (pdd / "env/envvars").write_text(yaml.safe_dump({"ASCEND_FA_CACHE_KEY_FILE": "/runner/credentials/cache.key",
                                                     "ASCEND_FA_RESULTS": RESULTS}))
    (pdd / "env/ssh_key").write_text((fleet.dir / "id_ed25519").read_text())
    for path in (pdd, *pdd.rglob("*")):
        os.chown(path, EE_UID, 0)
        path.chmod(0o700 if path.is_dir() else 0o600)
    return pdd


@pytest.fixture(scope="module")
def job(fleet, ee_image):
    from ascend_sim import image

    cache_key = secrets.token_urlsafe(36)
    pdd = _private_data_dir(fleet, cache_key)
    argv = ["run", "--rm", "--network", "host", "-v", f"{pdd}:/runner",
            "-v", f"{fleet.dir / 'known_hosts'}:/etc/ssh/ssh_known_hosts:ro",
            "-v", f"{ROOT / 'ascend_sim/recipes'}:{RECIPES}:ro",
            ee_image, "ansible-runner", "run", "/runner", "-p", "site.yml", "--ident", IDENT]
    p = image.podman(*argv, check=False, timeout=1500)
    (fleet.dir / "ee-job.log").write_text(p.stdout + p.stderr)
    return {"rc": p.returncode, "out": p.stdout + p.stderr, "pdd": pdd, "art": pdd / "artifacts" / IDENT,
            "key": cache_key, "host": fleet.hosts[0]}


def _events(art: Path) -> list[dict]:
    """ansible-runner's events; verbose and warning events carry no event_data: an empty one here."""
    return [{"event_data": {}, **json.loads(f.read_text())} for f in sorted((art / "job_events").glob("*.json"))]


def test_the_job_runs_ascend_fa_deploy_from_the_image_and_every_card_passes(fleet, job):
    art = job["art"]
    assert job["rc"] == 0, job["out"][-5000:]
    assert (art / "status").read_text().strip() == "successful", job["out"][-5000:]
    assert (art / "rc").read_text().strip() == "0"

    events = _events(art)
    host = fleet.hosts[0]
    (stats,) = [e["event_data"] for e in events if e["event"] == "playbook_on_stats"]
    assert host in stats["ok"] and host in stats["changed"], stats
    assert not stats["failures"] and not stats["dark"], stats
    # the run's summary, published with set_stats: what an AWX workflow branches on
    summary = stats["artifact_data"]["ascend_fa"]
    assert summary["ok"] is True and summary["hosts"] == 1 and summary["rollout"]["installed"] == [host], summary
    # the code that ran is the collection installed in the image, not this checkout
    paths = {e["event_data"]["task_path"] for e in events if e["event_data"].get("task_path")}
    assert paths and all(p.startswith(COLLECTION) for p in paths), sorted(paths)[:5]
    roles = {e["event_data"].get("role") for e in events if e["event"] == "runner_on_ok"}
    assert {"fa_preflight", "fa_build", "fa_install", "fa_verify"} <= roles, roles

    manifest = fleet.manifest(host)
    assert manifest and manifest["recipe"] == "sim-ops-transformer-v9.0.1", manifest
    verify = json.loads((job["pdd"] / RESULTS.removeprefix("/runner/") / "verify" / f"{host}.json").read_text())
    assert verify["ok"] is True and len(verify["cards"]) == 2, verify
    assert all(c["served_by"]["ok"] and c["served_by"]["source"] == "vendor" for c in verify["cards"]), verify


def test_no_secret_in_the_job_events_output_or_records(job):
    art, key = job["art"], job["key"]
    assert not (art / "ssh_key_data").exists()                    # the fifo ansible-runner fed ssh-add is gone
    private = (job["pdd"] / "env/ssh_key").read_text().splitlines()[1]
    leaked = []
    for path in [*art.rglob("*"), *(job["pdd"] / RESULTS.removeprefix("/runner/")).rglob("*")]:
        if path.is_file():   # artifacts/<ident>/command (ansible-runner's record of the environment) included
            text = path.read_text(errors="replace")
            leaked += [str(path)] if key in text or private in text else []
    assert not leaked


def test_the_records_are_in_the_job_artifacts(job):
    """fa_records (ENV ANSIBLE_CALLBACKS_ENABLED in the image) writes the fleet report and JUnit XML."""
    if not (ROOT / "plugins/callback/fa_records.py").is_file():
        pytest.skip("the fa_records callback is not in this checkout yet")
    host = job["host"]
    for folder in (job["pdd"] / RESULTS.removeprefix("/runner/"), job["art"] / "ascend-fa"):   # results, and artifacts
        report = json.loads((folder / "report.json").read_text())
        assert [h["host"] for h in report["hosts"]] == [host], report["hosts"]
        assert (folder / "report.html").is_file()
        suite = ElementTree.parse(folder / "junit.xml").getroot().find("testsuite")
        assert suite is not None and suite.get("name") == host and suite.get("failures") == "0", suite
        cards = [c.get("name") for c in suite.iter("testcase") if c.get("classname") == f"{host}.cards"]
        assert len(cards) == 2, cards
