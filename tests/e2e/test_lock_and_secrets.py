"""Two runs on one controller, and secrets given to the CLI, on small simulated fleets.

Lock (octet 74, two identical hosts, so they share one build key): a deploy of host 1 is started in the background
and, once it is building, a second deploy of host 1 stops at the host lock and a deploy of host 2 at the build-key
lock, each naming the first run's pid; the first run finishes as if alone, leaves no lock behind, and the next run
succeeds; a lock file naming a dead run is taken over.

Secrets (octet 75, one host): ``ascend-fa deploy -e ansible_become_password=<random>`` converges the host, and the
value is in no file of the runner's artifacts, the results or the fact cache, and in no other process's command
line while the run goes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from ascend_fa import PROJECT_ROOT

pytestmark = pytest.mark.fleet

BIN = Path(sys.executable).parent


def _wait_for(path: Path, text: str, proc: subprocess.Popen, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return True
        if proc.poll() is not None:
            return text in path.read_text(errors="replace")
        time.sleep(0.2)
    return False


def _locks(d: Path) -> list[str]:
    return sorted(p.name for p in d.glob("*.lock")) if d.is_dir() else []


@pytest.fixture(scope="module")
def pair(make_fleet):
    return make_fleet("lock", octet=74, hosts=2, models=["910B3", "910B3"], npus=1)


def test_a_second_run_stops_at_the_lock_and_the_first_finishes(pair, tmp_path):
    h1, h2 = pair.hosts
    lock_dir = pair.cache.parent / "locks"
    log = tmp_path / "first.log"
    # PYTHONUNBUFFERED: ansible-playbook's output reaches the file as it happens (it does not flush on its own)
    env = {**pair.env(), "PYTHONUNBUFFERED": "1"}
    # the first run must outlive the two others (each a few seconds): its verification on h1 takes 20 s longer, as on a
    # busy card (slow-host, check); the rollout got fast enough to end before them otherwise
    pair.fault(h1, "slow-host", "--seconds", "20", "--what", "check")
    with log.open("w") as out:
        first = subprocess.Popen([str(BIN / "ansible-playbook"), "-i", str(pair.inventory), "deploy_fa.yml",
                                  "--limit", h1], cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        assert _wait_for(log, "TASK [ascend.fa.fa_build : Build the package", first, 600), log.read_text()[-3000:]
        assert first.poll() is None, "the first run ended before the second one could start"
        held = {p.name: json.loads(p.read_text()) for p in lock_dir.glob("*.lock")}
        assert f"host-{h1}.lock" in held and any(n.startswith("build-") for n in held), held
        assert {r["pid"] for r in held.values()} == {first.pid}        # held by ansible-playbook itself

        same_host = pair.play("deploy_fa.yml", "--limit", h1)
        same_key = pair.play("deploy_fa.yml", "--limit", h2)
        still_running = first.poll() is None
    finally:
        rc = first.wait(timeout=900)
        pair.fault(h1, "clear")
    text = log.read_text()
    assert rc == 0, text[-4000:]
    assert still_running, "the first run ended while the others ran: the test proves nothing"

    assert same_host.rc != 0
    assert re.search(rf"{h1}: another run \(pid {first.pid} by \S+, started [^:]+:[^)]*ansible-playbook[^)]*\) "
                     rf"holds\s+the\s+lock\s+for\s+host\s+{h1}", " ".join(same_host.out.split())), same_host.out[-3000:]
    assert "Fix: wait for it to finish, or remove" in " ".join(same_host.out.split())
    assert same_host.recap[h1]["failed"] == 1 and same_host.recap[h1]["changed"] == 0
    assert "step: lock" in same_host.out    # the one-task preflight stopped at its lock: the host was not read

    assert same_key.rc != 0
    flat = " ".join(same_key.out.split())
    assert f"another run (pid {first.pid}" in flat and "holds the lock for build key" in flat, same_key.out[-3000:]
    assert same_key.recap[h2]["failed"] == 1 and same_key.recap[h2]["changed"] == 0
    assert "TASK [ascend.fa.fa_fetch : Clone tag" not in same_key.out
    assert pair.manifest(h2) is None                                     # the refused host was not touched

    # the first run went on as if alone: built once, installed, verified, and let go of its locks
    m1 = pair.manifest(h1)
    assert m1 and m1["sha256"] == pair.builds()[0]["sha256"]
    deadline = time.monotonic() + 15
    while _locks(lock_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _locks(lock_dir) == []

    third = pair.play("deploy_fa.yml")
    assert third.rc == 0, third.out[-4000:]
    assert pair.manifest(h2)["sha256"] == m1["sha256"]
    assert "took over the lock" not in third.out


def test_a_lock_left_by_a_killed_run_is_taken_over(pair):
    h1 = pair.hosts[0]
    lock_dir = pair.cache.parent / "locks"
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock_dir.mkdir(parents=True, exist_ok=True)
    stale = lock_dir / f"host-{h1}.lock"
    stale.write_text(json.dumps({"pid": dead.pid, "start": 1, "boot_id": "", "controller": os.uname().nodename,
                                 "user": "root", "started": "earlier", "command": "ansible-playbook deploy_fa.yml"}))
    run = pair.play("deploy_fa.yml", "--limit", h1)
    assert run.rc == 0, run.out[-4000:]
    flat = " ".join(run.out.split())
    assert f"took over the lock for host {h1}" in flat and f"from a run that is gone (pid {dead.pid}" in flat


# ------------------------------------------------------------------------------------------------ secrets
def _watch_cmdlines(needle: str, skip: set[int], stop: threading.Event, seen: list[str]) -> None:
    while not stop.is_set():
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) in skip:
                continue
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if needle in cmd:
                seen.append(cmd)
        time.sleep(0.1)


def test_a_become_password_given_to_the_cli_is_in_no_artifact_and_no_argv(make_fleet, tmp_path):
    fleet = make_fleet("secrets", octet=75, hosts=1, npus=1)
    secret = f"S3cr3t-{uuid.uuid4().hex}"
    stop, seen = threading.Event(), []
    cli = subprocess.Popen(
        [str(BIN / "ascend-fa"), "deploy", "-i", str(fleet.inventory), "--progress", "plain",
         "-e", f"ansible_become_password={secret}"],
        cwd=tmp_path, env={**fleet.env(), "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    # every process but the CLI itself (its argv is what the operator typed; -K or a vault file keeps it off that too)
    watcher = threading.Thread(target=_watch_cmdlines, args=(secret, {os.getpid(), cli.pid}, stop, seen), daemon=True)
    watcher.start()
    try:
        out, _ = cli.communicate(timeout=900)
    finally:
        stop.set()
        watcher.join(10)
    assert cli.returncode == 0, out[-4000:]
    assert fleet.manifest(fleet.hosts[0]), "the deploy did not install"
    assert secret not in out
    assert seen == [], seen
    artifacts = Path(re.search(r"^artifacts: (\S+)$", out, re.M).group(1))
    command = json.loads((artifacts / "command").read_text())
    assert any(str(a).endswith("vars.json") for a in command["command"])          # it went in by file
    assert not Path(next(str(a)[1:] for a in command["command"] if str(a).endswith("vars.json"))).exists()
    files = [p for d in (artifacts, fleet.results, fleet.dir / "facts", fleet.cache) for p in d.rglob("*")
             if p.is_file()]
    assert len([p for p in files if p.is_relative_to(artifacts)]) > 10             # job_events, stdout, command, ...
    leaks = [str(p) for p in files if secret.encode() in p.read_bytes()]
    assert leaks == []
