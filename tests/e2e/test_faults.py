"""Faults of the hosts themselves (issue 19, "Simulator faults"): a host lost in the middle of a rolling upgrade, a
network partition during the install, a slow host and a full disk, each injected with ``ascend_sim.fleet``.

Each test asserts what the fault left on the host before it is cleared (read with ``podman exec``, which works while
the host's sshd is down), then that the same command run again converges with every host on a package that passed
verification there. Two small fleets (3 and 2 hosts, one card each) share one artifact cache.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from ascend_fa import PROJECT_ROOT
from ascend_sim import fleet as simfleet

pytestmark = pytest.mark.fleet
OLD, NEW = "sim-ops-transformer-v9.0.0", "sim-ops-transformer-v9.0.1"
STATE = "/var/lib/ascend-fa"
VENDORS = "/usr/local/Ascend/cann/opp/vendors"
INSTALL_TASK = "ascend.fa.fa_install : Install, register and record the package"
VERIFY_TASK = "ascend.fa.fa_verify : Run fa_check.py on every card in parallel"
# the first task of the rollout play with a result line per host (its first role's dependency, fa_common)
FIRST_ROLLOUT_TASK = "ascend.fa.fa_common : Validating arguments against arg spec 'main'"
ROLLOUT_PLAYS = ("PLAY [Install and verify", "PLAY [Upgrade - rolling")


# --------------------------------------------------------------------------------------------------- fleets


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("faults-cache")


@pytest.fixture(scope="module")
def trio(make_fleet, cache):
    return replace(make_fleet("faults-trio", octet=76, hosts=3, npus=1), cache=cache)


@pytest.fixture(scope="module")
def pair(make_fleet, cache):
    return replace(make_fleet("faults-pair", octet=77, hosts=2, npus=1), cache=cache)


# -------------------------------------------------------------------------------------------------- helpers


def node_json(fleet, host: str, name: str) -> dict | None:
    """``<state dir>/<name>`` of a host read with podman exec (works while its sshd is down), or None."""
    proc = simfleet.host_exec(fleet.dir, host, "cat", f"{STATE}/{name}", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def passed(record: dict | None, sha256: str | None) -> bool:
    """The host's verify.json records a pass for the package with ``sha256``."""
    return bool(record and sha256 and record.get("sha256") == sha256 and record.get("ok") is True)


def tree(fleet, host: str) -> str:
    """sha256 of every file under CANN's opp/vendors of a host (the installed trees and config.ini)."""
    proc = simfleet.host_exec(fleet.dir, host, "sh", "-c",
                              f"cd {VENDORS} && find . -type f -print0 | sort -z | xargs -0 -r sha256sum")
    return proc.stdout


def deploy(fleet, recipe: str, *extra: str) -> None:
    run = fleet.play("deploy_fa.yml", "-e", f"fa_recipe={recipe}", *extra)
    assert run.rc == 0, run.out[-3000:]
    for host in fleet.hosts:
        manifest = fleet.manifest(host)
        assert manifest and manifest["recipe"] == recipe, host
        assert passed(node_json(fleet, host, "verify.json"), manifest["sha256"]), host


def port_open(address: str) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((address, 22)) == 0


def address_of(fleet, host: str) -> str:
    return next(h["address"] for h in simfleet.load_fleet(fleet.dir)["hosts"] if h["name"] == host)


def failure_text(out: str, host: str) -> str:
    """The output of every task in which ``host`` failed (its [ERROR] line and ``fatal: [host]`` result), with the
    line wrapping of the YAML callback undone."""
    blocks = []
    for start in (m.start() for m in re.finditer(re.escape(f"fatal: [{host}]"), out)):
        begin, end = out.rfind("\nTASK [", 0, start), out.find("\nTASK [", start)
        blocks.append(out[begin:end if end != -1 else len(out)])
    return " ".join(" ".join(blocks).split())


@dataclass
class Step:
    """Inject ``fault`` (with ``kw``) into ``host`` once ``fires(line)`` says so, from a background thread."""

    fires: Callable[[str], bool]
    host: str
    fault: str
    kw: dict = field(default_factory=dict)
    at: float | None = None
    error: BaseException | None = None
    thread: threading.Thread | None = None


def when_task_starts(task: str, host: str) -> Callable[[str], bool]:
    """Fires on the header of ``task`` (ROLE : NAME) in the rollout batch that includes ``host``: armed by the host's
    result line of the rollout play's first task with a line per host, in each batch (FIRST_ROLLOUT_TASK; the roles
    it runs are imported, so no "included:" line names the batch's hosts)."""
    armed = False
    in_first = False
    in_rollout = False

    def fires(line: str) -> bool:
        nonlocal armed, in_first, in_rollout
        if line.startswith("PLAY ["):
            in_rollout = line.startswith(ROLLOUT_PLAYS)
        elif line.startswith("TASK ["):
            in_first = in_rollout and line.startswith(f"TASK [{FIRST_ROLLOUT_TASK}")
        elif in_first and line.startswith((f"ok: [{host}]", f"changed: [{host}]")):
            armed = True
        return armed and line.startswith(f"TASK [{task}]")

    return fires


def when_play_starts(name: str) -> Callable[[str], bool]:
    return lambda line: line.startswith(f"PLAY [{name}")


@dataclass
class Watched:
    rc: int
    out: str
    recap: dict[str, dict[str, int]]


def play_watching(fleet, steps: list[Step], playbook: str, *args: str, timeout: float = 600) -> Watched:
    """Run a playbook, reading its output as it comes (PYTHONUNBUFFERED=1: Ansible does not flush otherwise), and
    inject each step's fault from a background thread at the line that fires it (steps fire in order)."""
    env = {**fleet.env(), "PYTHONUNBUFFERED": "1"}
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(fleet.inventory),
           str(PROJECT_ROOT / playbook), *args]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines: list[str] = []
    pending = list(steps)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            # every pending step reads every line (when_task_starts follows the plays and batches from the start),
            # and they fire in order
            fired = [step.fires(line) for step in pending]
            if pending and fired[0]:
                step = pending.pop(0)
                step.thread = threading.Thread(target=_inject, args=(fleet, step, started), daemon=True)
                step.thread.start()
        rc = proc.wait()
    finally:
        timer.cancel()
    for step in steps:
        if step.thread:
            step.thread.join(timeout=60)
    out = "".join(lines)
    (fleet.dir / "last-run.log").write_text(out)
    recap = {}
    for line in out.splitlines():
        host, sep, rest = line.partition(" : ok=")
        if sep and " " not in host.strip():
            fields = dict(kv.split("=") for kv in ("ok=" + rest).split())
            recap[host.strip()] = {k: int(v) for k, v in fields.items()}
    for step in steps:
        assert step.at is not None and step.error is None, f"{step.fault} on {step.host}: {step.error or 'never fired'}"
    return Watched(rc, out, recap)


def _inject(fleet, step: Step, started: float) -> None:
    try:
        simfleet.inject_fault(fleet.dir, step.host, step.fault, **step.kw)
        step.at = time.monotonic() - started
    except BaseException as exc:  # reported by play_watching
        step.error = exc


# ---------------------------------------------------------------------------------------------------- tests


def test_host_lost_mid_roll_is_reported_the_others_finish_and_the_rerun_verifies_it(trio):
    fleet = trio
    deploy(fleet, OLD)
    lost = fleet.hosts[1]
    others = [h for h in fleet.hosts if h != lost]
    upgrade = json.dumps({"fa_recipe": NEW, "fa_rollout_batch": [1, 2], "fa_rollout_max_fail_percent": 50})
    # The host goes down (every process killed, sshd stopped) when its verification starts: the canary (host 1)
    # is done, host 2 and host 3 are one batch; one failure of two stays within the budget (50%). Its card is made
    # slow once the rolling play starts, so the check is surely still running when the host goes down.
    steps = [Step(when_play_starts("Upgrade - rolling"), lost, "slow-host", {"seconds": 30, "what": "check"}),
             Step(when_task_starts(VERIFY_TASK, lost), lost, "host-down")]
    run = play_watching(fleet, steps, "playbooks/upgrade_fa.yml", "-e", upgrade)
    assert run.rc != 0
    assert f"fatal: [{lost}]: UNREACHABLE!" in run.out, run.out[-3000:]
    assert run.recap[lost]["unreachable"] == 1
    for host in others:   # the others finish on the new release, verified
        assert run.recap[host]["failed"] == 0 and run.recap[host]["unreachable"] == 0, run.out[-3000:]
        manifest = fleet.manifest(host)
        assert manifest["recipe"] == NEW and passed(node_json(fleet, host, "verify.json"), manifest["sha256"])

    # what the lost host was left with, before anything recovers it: the new package installed (the install
    # finished for the whole batch before the verification started) and no passing verification of it on record
    assert fleet.sh(lost, "true").returncode == 255          # still down: nothing has touched it since
    half = node_json(fleet, lost, "manifest.json")
    assert half["recipe"] == NEW
    assert not passed(node_json(fleet, lost, "verify.json"), half["sha256"])

    fleet.fault(lost, "clear")
    again = fleet.play("playbooks/upgrade_fa.yml", "-e", json.dumps({"fa_recipe": NEW}))
    assert again.rc == 0, again.out[-3000:]
    for host in fleet.hosts:
        manifest = fleet.manifest(host)
        assert manifest["recipe"] == NEW, host
        # the rerun verified the lost host: its pass is on record now (it was not before)
        assert passed(node_json(fleet, host, "verify.json"), manifest["sha256"]), host
    assert fleet.manifest(lost)["sha256"] == half["sha256"]   # verified in place, not reinstalled
    verify = fleet.play("playbooks/verify.yml")
    assert verify.rc == 0, verify.out[-2000:]
    third = fleet.play("playbooks/upgrade_fa.yml", "-e", json.dumps({"fa_recipe": NEW}))
    assert third.rc == 0 and set(third.changed().values()) == {0}, third.out[-2000:]


def test_partition_during_the_install_fails_the_host_the_other_finishes_and_the_rerun_converges(pair):
    fleet = pair
    cut, other = fleet.hosts[1], fleet.hosts[0]
    assert fleet.manifest(cut) is None      # a new host: the install transfers the package to it
    # Once the install play starts, every SSH command on the cut host starts 1.5 s late (slow-host, ssh), so its
    # install task (remote temp folder, transfer, module) spans seconds; the partition lands in it: every SSH
    # connection to the host drops, new ones are refused for 12 s; the host itself keeps running.
    steps = [Step(when_play_starts("Install and verify"), cut, "slow-host", {"seconds": 1.5, "what": "ssh"}),
             Step(when_task_starts(INSTALL_TASK, cut), cut, "partition", {"seconds": 12})]
    run = play_watching(fleet, steps, "deploy_fa.yml", "-e", f"fa_recipe={NEW}")
    assert run.rc != 0
    assert f"fatal: [{cut}]: UNREACHABLE!" in run.out and run.recap[cut]["unreachable"] == 1, run.out[-3000:]
    # the partition hit the install task, not the verification
    failed_task = run.out[:run.out.index(f"fatal: [{cut}]")].rsplit("TASK [", 1)[1]
    assert failed_task.startswith(INSTALL_TASK), failed_task[:200]
    assert run.recap[other]["failed"] == 0 and run.recap[other]["unreachable"] == 0
    manifest = fleet.manifest(other)
    assert manifest["recipe"] == NEW and passed(node_json(fleet, other, "verify.json"), manifest["sha256"])
    # Left behind on the cut host, depending on where in the task the connection dropped: before the module ran,
    # nothing (no manifest, nothing of the package under opp/vendors); while it ran, the host finished the install
    # with nobody to report to: the new package, with no verification of it on record. Never a half-written tree.
    half = node_json(fleet, cut, "manifest.json")
    if half is None:
        assert "ascendfa" not in tree(fleet, cut)
    else:
        assert half["recipe"] == NEW and not passed(node_json(fleet, cut, "verify.json"), half["sha256"])
        assert "ascendfa_transformer/op_api/lib/libcust_opapi.so" in tree(fleet, cut)

    # the partition ends by itself (sim-init starts sshd again after 12 s)
    address, deadline = address_of(fleet, cut), time.monotonic() + 30
    while not port_open(address):
        assert time.monotonic() < deadline, "sshd did not come back after the partition"
        time.sleep(0.2)
    # the rerun, with the host still slow (now its card: 3 s more per check, well within fa_verify_timeout),
    # installs or verifies it and converges
    fleet.fault(cut, "clear")
    fleet.fault(cut, "slow-host", "--seconds", "3", "--what", "check")
    again = fleet.play("deploy_fa.yml", "-e", f"fa_recipe={NEW}")
    assert again.rc == 0, again.out[-3000:]
    assert again.changed()[other] == 0
    manifest = fleet.manifest(cut)
    assert manifest["recipe"] == NEW and passed(node_json(fleet, cut, "verify.json"), manifest["sha256"])
    record = json.loads((fleet.results / "verify" / f"{cut}.json").read_text())
    assert record["ok"] and record["cards"][0]["duration_s"] >= 3, record["cards"]     # it did run slow
    fleet.fault(cut, "clear")


def test_slow_host_beyond_fa_verify_timeout_fails_naming_the_timeout_and_keeps_its_package(pair):
    fleet = pair
    slow = fleet.hosts[1]
    fleet.fault(slow, "clear")
    deploy(fleet, NEW)
    before = fleet.manifest(slow)
    # 60 s more to initialise the card, 5 s allowed per card: the check is killed at 5 s. (--limit: on this busy
    # 2-core machine a healthy card's check can itself take more than 5 s.)
    fleet.fault(slow, "slow-host", "--seconds", "60", "--what", "check")
    run = fleet.play("deploy_fa.yml", "-e", json.dumps({"fa_recipe": OLD, "fa_verify_timeout": 5}), "--limit", slow)
    assert run.rc != 0 and run.recap[slow]["failed"] == 1
    failure = failure_text(run.out, slow)
    assert "1 of 1 cards failed FlashAttention (card 0): card 0: timeout after 5s" in failure, failure[-2000:]
    # rolled back to the package it had (its restored package's check times out the same way: the host stays failed)
    after = fleet.manifest(slow)
    assert after["recipe"] == NEW and after["sha256"] == before["sha256"], after
    assert "ascendfa_transformer/op_api/lib/libcust_opapi.so" in tree(fleet, slow)
    fleet.fault(slow, "clear")


def test_disk_full_stops_the_host_with_its_tree_as_before_and_the_rerun_converges(trio):
    fleet = trio
    deploy(fleet, NEW)
    state_full, opp_full = fleet.hosts[1], fleet.hosts[2]
    # install.sh v9.0.1 empties each folder before copying the new files into it, so a package no larger than the
    # installed one fits even with 0 KiB free. Make the installed tree smaller than the incoming package (its
    # op_impl gone), so the copy runs out of space as a larger release would.
    gone = simfleet.host_exec(fleet.dir, opp_full, "sh", "-c", f"rm -rf {VENDORS}/ascendfa_transformer/op_impl")
    assert gone.returncode == 0, gone.stderr
    before = {h: (node_json(fleet, h, "manifest.json"), tree(fleet, h)) for h in (state_full, opp_full)}
    fleet.fault(state_full, "disk-full", "--target", "state", "--free-kb", "16")
    fleet.fault(opp_full, "disk-full", "--target", "opp", "--free-kb", "0")
    run = fleet.play("deploy_fa.yml", "-e", f"fa_recipe={OLD}")
    assert run.rc != 0
    assert fleet.manifest(fleet.hosts[0])["recipe"] == OLD
    # a full state folder: preflight stops the host before anything is touched, naming the folder
    assert f"{state_full}: [error] not enough free disk in {STATE}" in failure_text(run.out, state_full), run.out[-3000:]
    # a full opp/vendors: the installer fails with ENOSPC, named in the host's failure; its tree is restored
    assert "No space left on device" in failure_text(run.out, opp_full), run.out[-3000:]
    for host, (manifest, files) in before.items():
        assert node_json(fleet, host, "manifest.json") == manifest, host
        assert tree(fleet, host) == files, host

    fleet.fault(state_full, "clear")
    fleet.fault(opp_full, "clear")
    deploy(fleet, OLD)          # rc 0, every host on the old release and verified there
