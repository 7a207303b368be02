"""Verification is a state, not an event (issue #19): an upgrade interrupted before or during its verification - the
host stopped mid-check, the controller SIGKILLed mid-install or mid-verify - leaves a package with no passing
verification on record. The next run must not take that host as converged: it verifies the package, and a failure
rolls the host back to the last package that passed verification there.

Each test asserts the half-done state the interruption left (manifest on the new package, verify.json without a pass
for it) before the rerun it then checks. The wrong-results fault makes only the new release (9.0.1) compute wrong
numbers, so a rerun that skipped the verification would exit 0 with a broken host.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ascend_fa import PROJECT_ROOT

pytestmark = pytest.mark.fleet
OLD, NEW = "sim-ops-transformer-v9.0.0", "sim-ops-transformer-v9.0.1"
INSTALL_TASK = "TASK [ascend.fa.fa_install : Install, register and record the package]"
CHECK_TASK = "TASK [ascend.fa.fa_verify : Run fa_check.py on every card in parallel]"


@pytest.fixture(scope="module")
def fleet(make_fleet):
    fleet = make_fleet("interrupted", octet=80, hosts=1, npus=1)
    run = fleet.play("deploy_fa.yml", "-e", f"fa_recipe={OLD}")
    assert run.rc == 0, run.out[-3000:]
    return fleet


@pytest.fixture
def on_old(fleet):
    """Every test starts from the old release, verified, and no fault."""
    host = fleet.hosts[0]
    fleet.fault(host, "clear")
    if (fleet.manifest(host) or {}).get("recipe") != OLD or verify_record(fleet, host).get("ok") is not True:
        run = fleet.play("deploy_fa.yml", "-e", f"fa_recipe={OLD}")
        assert run.rc == 0, run.out[-3000:]
    assert fleet.manifest(host)["recipe"] == OLD
    return host


def verify_record(fleet, host) -> dict:
    p = fleet.sh(host, "cat /var/lib/ascend-fa/verify.json")
    return json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else {}


def upgrade_args() -> list[str]:
    return ["-e", json.dumps({"fa_recipe": NEW, "fa_rollout_batch": 1})]


def interrupted_upgrade(fleet, host: str, task: str, action, delay: float = 1.0) -> str:
    """Run the upgrade in the background; when ``task`` starts on ``host``, wait ``delay`` s and call ``action``.
    Returns the run's output. The child's output is unbuffered by this test itself (Ansible does not flush)."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT_ROOT / "ansible.cfg"), "ASCEND_FA_CACHE": str(fleet.cache),
           "ASCEND_FA_RESULTS": str(fleet.results), "NO_COLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
           "PYTHONUNBUFFERED": "1", "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(fleet.dir / "facts")}
    env.update(getattr(fleet, "extra_env", {}) or {})
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(fleet.inventory),
           "playbooks/upgrade_fa.yml", *upgrade_args()]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    timer = threading.Timer(900, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    lines: list[str] = []
    fired = False
    try:
        for line in proc.stdout:
            lines.append(line)
            if not fired and line.startswith(task):
                fired = True
                time.sleep(delay)
                action(proc)
        proc.wait(timeout=300)
    finally:
        timer.cancel()
    out = "".join(lines)
    (fleet.dir / "interrupted-run.log").write_text(out)
    assert fired, f"{task} never started:\n{out[-3000:]}"
    return out


def kill_controller(proc) -> None:
    os.killpg(proc.pid, signal.SIGKILL)


def wait_remote_idle(fleet, host: str, timeout: float = 180) -> None:
    """A killed controller leaves its module running on the host (no pty: sshd does not signal it); wait for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = fleet.sh(host, "pgrep -f '[A]nsiballZ|[f]a_check[.]py' || true")
        if p.returncode == 0 and not p.stdout.strip():
            return
        time.sleep(2)
    raise AssertionError(f"{host}: ansible modules still running after {timeout}s")


def assert_unverified_new_package(fleet, host) -> None:
    """The half-done state: the new package installed, no passing verification of it on record."""
    manifest = fleet.manifest(host)
    assert manifest and manifest["recipe"] == NEW, manifest
    record = verify_record(fleet, host)
    assert not (record.get("sha256") == manifest["sha256"] and record.get("ok") is True), record
    assert record.get("verified", {}).get("recipe", OLD) == OLD, record


def assert_rolled_back_to_old_and_verified(fleet, host, run) -> None:
    assert run.rc != 0, run.out[-3000:]
    assert run.failed() == [host], run.out[-3000:]
    assert f"Rolled back to {OLD} and verified" in run.out, run.out[-3000:]
    manifest = fleet.manifest(host)
    assert manifest["recipe"] == OLD
    record = verify_record(fleet, host)
    assert record["ok"] is True and record["sha256"] == manifest["sha256"], record
    assert (fleet.results / "upgrade" / f"{host}.json").is_file()
    assert json.loads((fleet.results / "upgrade" / f"{host}.json").read_text())["result"] == "rolled_back"


def test_host_stopped_mid_verify_is_verified_again_and_rolled_back(fleet, on_old):
    host = on_old

    def stop_host(_proc):
        subprocess.run(["podman", "stop", "-t", "0", host], check=True, capture_output=True, timeout=120)

    out = interrupted_upgrade(fleet, host, CHECK_TASK, stop_host, delay=2.0)
    assert "UNREACHABLE" in out or "unreachable=1" in out, out[-3000:]
    subprocess.run(["podman", "start", host], check=True, capture_output=True, timeout=120)
    deadline = time.monotonic() + 120
    while fleet.sh(host, "true").returncode != 0:
        assert time.monotonic() < deadline, f"{host} did not come back"
        time.sleep(2)
    assert_unverified_new_package(fleet, host)

    # the new release is broken on this host; before this change the rerun exited 0 and took the host as converged
    fleet.fault(host, "wrong-results", "--version", "9.0.1")
    run = fleet.play("playbooks/upgrade_fa.yml", *upgrade_args())
    assert "has no passing verification on record" in run.out, run.out[-3000:]
    assert_rolled_back_to_old_and_verified(fleet, host, run)

    # fault gone: the same command upgrades and verifies; the run after it changes nothing
    fleet.fault(host, "clear")
    run = fleet.play("playbooks/upgrade_fa.yml", *upgrade_args())
    assert run.rc == 0, run.out[-3000:]
    record = verify_record(fleet, host)
    assert fleet.manifest(host)["recipe"] == NEW and record["ok"] is True
    assert record["sha256"] == fleet.manifest(host)["sha256"] and record["verified"]["recipe"] == NEW
    again = fleet.play("playbooks/upgrade_fa.yml", *upgrade_args())
    assert again.rc == 0 and set(again.changed().values()) == {0}, again.out[-3000:]


def test_controller_killed_mid_install_leaves_no_host_converged_on_an_unverified_package(fleet, on_old):
    host = on_old
    fleet.fault(host, "wrong-results", "--version", "9.0.1")
    interrupted_upgrade(fleet, host, INSTALL_TASK, kill_controller, delay=1.0)
    wait_remote_idle(fleet, host)
    manifest = fleet.manifest(host)
    # half-done: the install either finished on the host after the controller died, or never started; either way a
    # package is there, intact, and the new one (if it is there) has no passing verification
    assert manifest and manifest["recipe"] in (OLD, NEW), manifest
    if manifest["recipe"] == NEW:
        assert_unverified_new_package(fleet, host)
    pre = fleet.play("playbooks/preflight.yml", "-e", f"fa_recipe={manifest['recipe']}", "-v")
    assert pre.rc == 0 and "package installed" in pre.out, pre.out[-3000:]

    run = fleet.play("playbooks/upgrade_fa.yml", *upgrade_args())
    assert_rolled_back_to_old_and_verified(fleet, host, run)


def test_controller_killed_mid_verify_is_verified_again_and_rolled_back(fleet, on_old):
    host = on_old
    fleet.fault(host, "wrong-results", "--version", "9.0.1")
    interrupted_upgrade(fleet, host, CHECK_TASK, kill_controller, delay=0.5)
    wait_remote_idle(fleet, host)
    # half-done: the new package is installed; its check either never finished or recorded the failure, and the
    # controller never rolled it back
    assert_unverified_new_package(fleet, host)

    run = fleet.play("playbooks/upgrade_fa.yml", *upgrade_args())
    assert_rolled_back_to_old_and_verified(fleet, host, run)
    # the host kept the package it rolled back to, and the new one stays kept for the next attempt
    kept = fleet.sh(host, "ls /var/lib/ascend-fa/packages").stdout.split()
    assert f"{fleet.manifest(host)['sha256']}.run" in kept


def test_rollback_playbook_registers_the_restored_package_in_the_sites_ld_conf_file(fleet, on_old):
    """playbooks/rollback_fa.yml had its own copy of the rollback call without ldconfig_file: a site's
    fa_install_ldconfig_file was ignored and the default file was written beside it. Both callers now include
    roles/fa_install/tasks/rollback.yml."""
    host = on_old
    custom = "/etc/ld.so.conf.d/zz-site-fa.conf"
    args = ["-e", json.dumps({"fa_recipe": NEW, "fa_install_ldconfig_file": custom})]
    run = fleet.play("deploy_fa.yml", *args)
    assert run.rc == 0, run.out[-3000:]
    fleet.sh(host, "rm -f /etc/ld.so.conf.d/ascend-fa.conf")
    assert fleet.sh(host, f"test -s {custom}").returncode == 0
    run = fleet.play("playbooks/rollback_fa.yml", *args)
    assert run.rc == 0, run.out[-3000:]
    assert fleet.manifest(host)["recipe"] == OLD
    vendor_lib = fleet.manifest(host)["vendor_dir"] + "/op_api/lib"
    assert vendor_lib in fleet.sh(host, f"cat {custom}").stdout
    assert fleet.sh(host, "test -e /etc/ld.so.conf.d/ascend-fa.conf").returncode != 0, "default file written too"
    # back to the default file for the other tests
    fleet.sh(host, f"rm -f {custom}")
    run = fleet.play("deploy_fa.yml", "-e", f"fa_recipe={OLD}", "-e", "fa_install_force=true")
    assert run.rc == 0, run.out[-3000:]
