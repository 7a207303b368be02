"""Rolling upgrades (issue: rolling upgrades and rollback): canary first, a host whose new package fails
verification is rolled back and verified on its old package; a failure budget stops the run with untouched hosts
on their old package; a controller killed mid-upgrade is finished by running the same command again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ascend_fa import PROJECT_ROOT

pytestmark = pytest.mark.fleet
OLD, NEW = "sim-ops-transformer-v9.0.0", "sim-ops-transformer-v9.0.1"


def recipe_of(fleet, host):
    m = fleet.manifest(host)
    return m and m["recipe"]


def package_state(fleet, host) -> str:
    """fa_manifest.package_state of the host's manifest, computed on the host (vendor tree against its digest)."""
    from ascend_sim.fleet import ssh_argv
    code = (PROJECT_ROOT / "plugins" / "module_utils" / "fa_manifest.py").read_text() + (
        "\nprint(package_state(read_manifest('/var/lib/ascend-fa'), None, None)['state'])\n")
    p = subprocess.run([*ssh_argv(fleet.dir, host), "python3", "-"], input=code, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def deploy_old(fleet):
    run = fleet.play("deploy_fa.yml", "-e", f"fa_recipe={OLD}")
    assert run.rc == 0, run.out[-3000:]
    assert {recipe_of(fleet, h) for h in fleet.hosts} == {OLD}


def test_faulty_host_is_rolled_back_and_the_others_upgraded(make_fleet):
    fleet = make_fleet("upgrade", octet=22, hosts=6, npus=1)
    deploy_old(fleet)
    bad = fleet.hosts[2]
    fleet.fault(bad, "wrong-results", "--version", "9.0.1")   # the new kernel computes wrong numbers on this host
    run = fleet.play("playbooks/upgrade_fa.yml", "-e",
                     json.dumps({"fa_recipe": NEW, "fa_rollout_batch": [1, "50%"], "fa_rollout_max_fail_percent": 50}))
    assert run.rc != 0
    assert run.failed() == [bad]
    assert f"{bad}: {NEW} failed" in run.out and f"Rolled back to {OLD} and verified" in run.out
    assert recipe_of(fleet, bad) == OLD
    assert {recipe_of(fleet, h) for h in fleet.hosts if h != bad} == {NEW}
    # the canary went first, alone: in the rolling play (the first play runs every host in parallel, in any order)
    rolling = run.out[run.out.index("PLAY [Upgrade - rolling"):]
    assert rolling.index(f"[{fleet.hosts[0]}]") < rolling.index(f"[{fleet.hosts[1]}]")
    rec = json.loads((fleet.results / "upgrade" / f"{bad}.json").read_text())
    assert rec["result"] == "rolled_back" and rec["from"] == OLD and rec["to"] == NEW
    history = fleet.sh(bad, "cat /var/lib/ascend-fa/upgrades.jsonl").stdout
    assert '"rolled_back"' in history
    ok = json.loads((fleet.results / "upgrade" / f"{fleet.hosts[0]}.json").read_text())
    assert ok["result"] == "upgraded"
    # the rolled-back host verifies on its old package
    verify = fleet.play("playbooks/verify.yml", "--limit", bad)
    assert verify.rc == 0, verify.out[-2000:]


def test_budget_stops_the_run_and_untouched_hosts_keep_the_old_package(make_fleet):
    fleet = make_fleet("budget", octet=23, hosts=4, npus=1)
    deploy_old(fleet)
    for h in fleet.hosts[:2]:
        fleet.fault(h, "wrong-results", "--version", "9.0.1")
    run = fleet.play("playbooks/upgrade_fa.yml", "-e", json.dumps({"fa_recipe": NEW, "fa_rollout_batch": [1, 1, "100%"],
                                                                   "fa_rollout_max_fail_percent": 0}))
    assert run.rc != 0
    assert run.failed() == [fleet.hosts[0]]                  # the canary failed: nothing else was touched
    assert {recipe_of(fleet, h) for h in fleet.hosts} == {OLD}
    for h in fleet.hosts[1:]:   # their last rollout record is still the first deploy's
        assert json.loads((fleet.results / "upgrade" / f"{h}.json").read_text())["to"] == OLD
    pre = fleet.play("playbooks/preflight.yml", "-e", f"fa_recipe={OLD}", "-v")
    assert pre.rc == 0 and "package installed" in pre.out     # every tree matches its manifest: nothing half-installed

    # clear the faults, then kill the controller in the middle of the upgrade and run it again
    for h in fleet.hosts[:2]:
        fleet.fault(h, "clear")
    # PYTHONUNBUFFERED: ansible-playbook writes into a pipe here, which Python block-buffers; without it the TASK
    # lines come late (or only at exit) and the kill would land anywhere
    env = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT_ROOT / "ansible.cfg"), "ASCEND_FA_CACHE": str(fleet.cache),
           "ASCEND_FA_RESULTS": str(fleet.results), "NO_COLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
           "PYTHONUNBUFFERED": "1", "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(fleet.dir / "facts")}
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(fleet.inventory),
           "playbooks/upgrade_fa.yml", "-e", json.dumps({"fa_recipe": NEW, "fa_rollout_batch": 1})]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    seen, out = 0, []
    for line in proc.stdout:
        out.append(line)
        if line.startswith("TASK [ascend.fa.fa_install : Install, register and record the package]"):
            seen += 1
            if seen == 2:   # the second host is being installed: kill the controller now
                os.killpg(proc.pid, signal.SIGKILL)
                break
    proc.wait(timeout=60)
    assert seen == 2, "".join(out)[-3000:]
    # the fault the rerun must repair: a half-upgraded fleet. The canary (batch 1) is on the new recipe, the hosts
    # of the batches not reached are on the old one, the host killed mid-install has one of the two; none is left
    # without a package
    half = {h: fleet.manifest(h) for h in fleet.hosts}
    assert all(half.values()), half
    recipes = {h: m["recipe"] for h, m in half.items()}
    assert recipes[fleet.hosts[0]] == NEW and recipes[fleet.hosts[1]] in (OLD, NEW), recipes
    assert {recipes[h] for h in fleet.hosts[2:]} == {OLD}, recipes
    for h, m in half.items():   # and its files are the manifest's: nothing half-installed
        assert package_state(fleet, h) == "installed", (h, m)
    run = fleet.play("playbooks/upgrade_fa.yml", "-e", json.dumps({"fa_recipe": NEW, "fa_rollout_batch": 1}))
    assert run.rc == 0, run.out[-3000:]
    assert {recipe_of(fleet, h) for h in fleet.hosts} == {NEW}
    again = fleet.play("playbooks/upgrade_fa.yml", "-e", json.dumps({"fa_recipe": NEW}))
    assert again.rc == 0 and set(again.changed().values()) == {0}
