"""deploy_fa.yml end to end on 8 simulated hosts of two SoC families (issue: fleet pipeline).

Exactly one build per (SoC family, CANN, arch), one install per host, every host loadable and verified; the rerun
is changed=0 with no build; a moved tag, a failing build and a tampered package stop the affected hosts with a
clear message and leave their package as it was; breaking one host's package fails exactly that host's verification.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ascend_fa import PROJECT_ROOT
from ascend_sim.upstream import make_repo as upstream

pytestmark = pytest.mark.fleet


@pytest.fixture(scope="module")
def fleet(make_fleet):
    return make_fleet("deploy", octet=20, hosts=8, models=["910B3", "A3-9392"], npus=1,
                      cann_layouts=["toolkit", "cann", "cann", "toolkit"])


@pytest.fixture(scope="module")
def deployed(fleet):
    run = fleet.play("deploy_fa.yml")
    assert run.rc == 0, run.out[-4000:]
    return run


def test_first_deploy_builds_once_per_target_and_installs_everywhere(fleet, deployed):
    builds = fleet.builds()
    assert sorted(b["soc_family"] for b in builds) == ["ascend910_93", "ascend910b"]
    assert len({b["build_host"] for b in builds}) == 2
    assert deployed.failed() == [] and set(deployed.recap) == set(fleet.hosts)
    for host in fleet.hosts:
        m = fleet.manifest(host)
        assert m and m["recipe"] == "sim-ops-transformer-v9.0.1"
        assert m["sha256"] in {b["sha256"] for b in builds}
        ld = fleet.sh(host, "ldconfig -p | grep libcust_opapi.so && cat /etc/ld.so.conf.d/ascend-fa.conf")
        assert ld.returncode == 0 and "ascendfa_transformer/op_api/lib" in ld.stdout
        cfg = fleet.sh(host, "cat $(dirname {})/config.ini".format(m["vendor_dir"]))
        assert cfg.stdout.strip().startswith("load_priority=ascendfa_transformer"), cfg.stdout
    verify = sorted((fleet.results / "verify").glob("*.json"))
    assert len(verify) == 8


CHECK = "ascend.fa.fa_preflight : Check this host"


def _task_hosts(out: str, task: str) -> set[str]:
    """The hosts that ran (ok/changed/failed) the task whose TASK line contains ``task``."""
    hosts: set[str] = set()
    for block in out.split("TASK [")[1:]:
        head, _, body = block.partition("\n")
        if task in head:
            hosts |= {line.split("[", 1)[1].split("]", 1)[0] for line in body.splitlines()
                      if line.startswith(("ok: [", "changed: [", "fatal: ["))}
    return hosts


def _checked(out: str, step: str) -> set[str]:
    """The hosts whose one-task preflight (action fa_preflight, run with -v) ended at ``step``: 'fast path' (ended by
    the comparison with its last clean run) or 'verdict' (the full check: ascend_facts ran)."""
    hosts: set[str] = set()
    for block in out.split("TASK [")[1:]:
        head, _, body = block.partition("\n")
        if CHECK not in head:
            continue
        current = None
        for line in body.splitlines():
            if line.startswith(("ok: [", "changed: [", "fatal: [")):
                current = line.split("[", 1)[1].split("]", 1)[0]
            elif current and line.strip() == f"step: {step}":
                hosts.add(current)
    return hosts


def test_rerun_is_a_no_op(fleet, deployed):
    run = fleet.play("deploy_fa.yml", "-v")
    assert run.rc == 0, run.out[-3000:]
    assert set(run.changed().values()) == {0}, run.changed()
    assert "Build the package" not in run.out or "changed:" not in run.out.split("Build the package")[1][:200]
    assert len(fleet.builds()) == 2
    # the fast path: every host was recorded by the rollout (install + every card passed) and is unchanged since,
    # so one file-metadata comparison ends it; none of them runs the full check (ascend_facts)
    assert _checked(run.out, "fast path") == set(fleet.hosts)
    assert _checked(run.out, "verdict") == set(), [
        line for line in run.out.splitlines() if "changed since the last clean run" in line]


def test_a_changed_host_gets_the_full_check_and_the_others_do_not(fleet, deployed):
    host = fleet.hosts[1]
    fleet.sh(host, "echo 'export FA_TEST_MARK=1' > /etc/profile.d/zz-fa-test.sh")
    try:
        run = fleet.play("deploy_fa.yml", "-v")
        assert run.rc == 0, run.out[-3000:]
        assert set(run.changed().values()) == {0}, run.changed()
        assert _checked(run.out, "verdict") == {host}
        assert "changed since the last clean run: environment" in run.out
        # the full check found it converged and clean: recorded again, so the next rerun is fast for it too
        again = fleet.play("deploy_fa.yml", "-v")
        assert again.rc == 0 and _checked(again.out, "verdict") == set(), again.out[-3000:]
        assert _checked(again.out, "fast path") == set(fleet.hosts)
    finally:
        fleet.sh(host, "rm -f /etc/profile.d/zz-fa-test.sh")


def test_install_force_reinstalls_a_converged_host(fleet, deployed):
    """-e fa_install_force=true: the converged host is not ended by the fast path nor by preflight; it is reinstalled
    and verified, and the next plain run is a no-op again."""
    host = fleet.hosts[0]
    before = fleet.manifest(host)
    run = fleet.play("deploy_fa.yml", "-l", host, "-e", "fa_install_force=true")
    assert run.rc == 0, run.out[-3000:]
    assert run.changed() == {host: run.changed()[host]} and run.changed()[host] > 0, run.changed()
    assert "Run fa_check.py on every card" in run.out
    after = fleet.manifest(host)
    assert after["sha256"] == before["sha256"] and after["installed_at"] != before["installed_at"]
    assert json.loads((fleet.results / "upgrade" / f"{host}.json").read_text())["result"] == "reinstalled"
    # a string "false" (as -e passes it) is false, and the host is converged again
    again = fleet.play("deploy_fa.yml", "-l", host, "-e", "fa_install_force=false")
    assert again.rc == 0 and set(again.changed().values()) == {0}, again.out[-3000:]


def test_tags_select_the_install_and_the_verification(fleet, deployed):
    """--skip-tags verify installs without the verification gate (it used to skip the install too, silently: the
    rollout's own tasks carried both tags); tags that leave the install out touch no host."""
    host = fleet.hosts[1]
    before = fleet.manifest(host)
    run = fleet.play("deploy_fa.yml", "-l", host, "-e", "fa_install_force=true", "--skip-tags", "verify")
    assert run.rc == 0 and run.changed()[host] > 0, run.out[-3000:]
    assert "Run fa_check.py on every card" not in run.out
    after = fleet.manifest(host)
    assert after["sha256"] == before["sha256"] and after["installed_at"] != before["installed_at"]
    for tags in ("verify", "preflight,build"):
        run = fleet.play("deploy_fa.yml", "-l", host, "-e", "fa_install_force=true", "--tags", tags)
        assert run.rc == 0 and set(run.changed().values()) == {0}, run.out[-3000:]
        assert "Run fa_check.py on every card" not in run.out and "Install, register" not in run.out
        assert fleet.manifest(host)["installed_at"] == after["installed_at"]
    # install (and verify) from the artifact cache without fetch and build (the plan still finds the package)
    run = fleet.play("deploy_fa.yml", "-l", host, "-e", "fa_install_force=true", "--tags", "install,verify")
    assert run.rc == 0 and "Run fa_check.py on every card" in run.out, run.out[-3000:]
    assert fleet.manifest(host)["installed_at"] != after["installed_at"]
    # ... and a host whose package is not in the cache stops and says why
    run = fleet.play("deploy_fa.yml", "-l", host, "-e", "fa_install_force=true", "--tags", "install",
                     "-e", f"fa_artifact_cache={fleet.dir / 'empty-cache'}")
    assert run.rc != 0 and run.failed() == [host], run.out[-3000:]
    assert "in the artifact cache" in run.out and "the tags of this run leave the build out" in run.out
    assert "--tags build" in run.out


def test_a_bad_setting_stops_the_host_in_preflight_and_changes_nothing(fleet, deployed):
    """Settings used late (verification timeout, batches) or given as -e strings are checked before anything runs;
    before, a negative timeout failed after the install and fa_rollout_batch=abc was an 'Unexpected Exception'."""
    host = fleet.hosts[0]
    before = fleet.manifest(host)
    for args in (["-e", "fa_install_force=true", "-e", "fa_verify_timeout=-5"],
                 ["-e", "fa_install_force=true", "-e", "fa_rollout_batch=abc"],
                 ["-e", "fa_install_force=maybe"]):          # also on a converged host: not passed over
        run = fleet.play("deploy_fa.yml", "-l", host, *args)
        assert run.rc != 0 and run.failed() == [host] and set(run.changed().values()) == {0}, run.out[-3000:]
        name, value = args[-1].split("=", 1)
        assert f"{host}: [error] setting {name} is not valid (found '{value}'" in run.out, run.out[-3000:]
        assert "Unexpected Exception" not in run.out and "Run fa_check.py" not in run.out
        assert fleet.manifest(host) == before


def test_failed_reinstall_of_the_same_package_is_not_rolled_back_to_nothing(fleet, deployed):
    """A forced reinstall (or a repair) of the package the host already has, failing verification: the rollback has
    nothing of this run to go back to, so the package stays (it used to remove it: "previous" of a same-package
    reinstall is what came before it, here nothing)."""
    host = fleet.hosts[0]
    before = fleet.manifest(host)
    fleet.fault(host, "wrong-results")
    try:
        run = fleet.play("deploy_fa.yml", "-l", host, "-e", "fa_install_force=true")
        assert run.rc != 0 and run.failed() == [host], run.out[-3000:]
        # the package it reinstalled is the last one verified here (verify.json): nothing older to go back to
        assert "Not rolled back: " in run.out and "is the last one that passed verification on this host" in run.out
        after = fleet.manifest(host)
        assert after and after["sha256"] == before["sha256"], after
        assert fleet.sh(host, f"test -d {after['vendor_dir']}").returncode == 0
        record = json.loads(fleet.sh(host, "cat /var/lib/ascend-fa/verify.json").stdout)
        assert record["ok"] is False and record["sha256"] == before["sha256"], record
    finally:
        fleet.fault(host, "clear")
    # the package is intact, but its last verification failed: the next deploy verifies it again (no reinstall)
    again = fleet.play("deploy_fa.yml", "-l", host)
    assert again.rc == 0 and set(again.changed().values()) == {0}, again.out[-3000:]
    assert "last verification of the installed package failed" in again.out
    assert "Run fa_check.py on every card in parallel" in again.out
    assert fleet.manifest(host)["installed_at"] == after["installed_at"]
    assert json.loads(fleet.sh(host, "cat /var/lib/ascend-fa/verify.json").stdout)["ok"] is True
    # and then it is converged: ended in preflight
    third = fleet.play("deploy_fa.yml", "-l", host)
    assert third.rc == 0 and set(third.changed().values()) == {0}, third.out[-3000:]
    assert "Run fa_check.py on every card in parallel" not in third.out


def _recipe_copy(fleet, tmp_path, name: str, **changes) -> str:
    src = yaml.safe_load((PROJECT_ROOT / "ascend_sim/recipes/sim-ops-transformer-v9.0.0.yml").read_text())
    src.update(changes)
    src["name"] = name
    d = tmp_path / "recipes"
    d.mkdir(exist_ok=True)
    (d / f"{name}.yml").write_text(yaml.safe_dump(src))
    return str(d)


def test_moved_tag_stops_hosts_and_keeps_their_package(fleet, deployed):
    """Upstream moves tag v9.0.0 (in the fleet's simulated upstream repo); the recipe keeps its pin. Every host stops
    before the build, saying the tag resolves elsewhere than the pin, and keeps the package it has."""
    recipe = yaml.safe_load((PROJECT_ROOT / "ascend_sim/recipes/sim-ops-transformer-v9.0.0.yml").read_text())
    pinned = upstream.expected_commits()["v9.0.0"]
    assert recipe["tag"] == "v9.0.0" and recipe["commit"] == pinned   # the recipe is the genuine one, pin untouched
    before = {h: fleet.manifest(h)["sha256"] for h in fleet.hosts}
    repo = fleet.dir / "upstream" / upstream.REPO_NAME
    moved = upstream.retag(repo, "v9.0.0", "master")
    try:
        assert moved != pinned
        run = fleet.play("deploy_fa.yml", "-e", f"fa_recipe={recipe['name']}")
    finally:   # the later tests of this module build from v9.0.0 (copies of this recipe)
        upstream.restore_tag(repo, "v9.0.0")
    assert run.rc != 0
    assert set(run.failed()) == set(fleet.hosts)
    out = " ".join(run.out.split())   # the callback may wrap long messages
    assert (f"tag v9.0.0 of {recipe['repo_url']} resolves to {moved} but recipe {recipe['name']} pins {pinned}: "
            "the tag was moved or the mirror is not genuine; refusing to build") in out, run.out[-3000:]
    assert _task_hosts(run.out, "Build the package") == set()
    assert {h: fleet.manifest(h)["sha256"] for h in fleet.hosts} == before


def test_failing_build_stops_hosts_with_the_log(fleet, deployed, tmp_path):
    before = {h: fleet.manifest(h)["sha256"] for h in fleet.hosts}
    # the blog's build line: build.sh rejects "--soc Ascend910" and "--typ release" as the real one does
    d = _recipe_copy(fleet, tmp_path, "blog-flags",
                     build={"command": "bash build.sh --soc Ascend910 --typ release",
                            "output_glob": "build_out/*.run", "mem_per_job_mb": 512})
    run = fleet.play("deploy_fa.yml", "-e", f'{{"fa_recipe_dirs": ["{d}"], "fa_recipe": "blog-flags"}}')
    assert run.rc != 0 and set(run.failed()) == set(fleet.hosts)
    assert "build failed" in run.out and "nothing was" in run.out
    assert {h: fleet.manifest(h)["sha256"] for h in fleet.hosts} == before


def test_tampered_package_is_refused(fleet, deployed):
    host = fleet.hosts[0]
    m = fleet.manifest(host)
    fleet.sh(host, "cp {} /tmp/pkg.run && echo tampered >> /tmp/pkg.run".format(m["package"]))
    adhoc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), host, "-i", str(fleet.inventory), "-m", "ascend.fa.fa_install", "-a",
         f"package=/tmp/pkg.run sha256={m['sha256']} vendor=ascendfa vendor_dir_name=ascendfa_transformer "
         f"set_env={m['install_path'].rsplit('/opp', 1)[0]}/set_env.sh"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
        env={**os.environ, "ANSIBLE_CONFIG": str(PROJECT_ROOT / "ansible.cfg")})
    assert adhoc.returncode != 0
    assert "checksum mismatch" in adhoc.stdout and "nothing was installed" in adhoc.stdout
    assert fleet.manifest(host)["sha256"] == m["sha256"]


def test_broken_package_fails_exactly_that_host_naming_the_card(fleet, deployed):
    bad = fleet.hosts[2]
    fleet.fault(bad, "corrupt-lib")
    run = fleet.play("playbooks/verify.yml")
    assert run.failed() == [bad]
    assert "card 0" in run.out and "invalid ELF header" in run.out


def test_deploy_repairs_the_broken_host_only(fleet, deployed):
    # drain/undrain hooks run around the host that is touched, and only there (converged hosts end in preflight)
    hooks = {"fa_rollout_drain_command": ["touch", "/tmp/fa-drained"],
             "fa_rollout_undrain_command": ["touch", "/tmp/fa-undrained"]}
    run = fleet.play("deploy_fa.yml", "-e", json.dumps(hooks))
    assert run.rc == 0, run.out[-3000:]
    changed = {h for h, c in run.changed().items() if c}
    assert changed == {fleet.hosts[2]}
    marks = {h: fleet.sh(h, "ls /tmp/fa-drained /tmp/fa-undrained 2>/dev/null | wc -l").stdout.strip() for h in fleet.hosts}
    assert marks == {h: "2" if h == fleet.hosts[2] else "0" for h in fleet.hosts}, marks
    shutil.rmtree(fleet.results / "verify", ignore_errors=True)
