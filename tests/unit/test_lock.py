"""ascend_fa/lock.py and action plugin fa_lock: the controller's run locks (per host, per build key).

Real processes stand in for runs: a live ``sleep`` holds a lock, a reaped one is a dead run, a pid with another
start time is a reused pid. Nothing is mocked but the owner of the test itself where a second run is needed.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.plugin_utils import lock, redact

ROOT = Path(__file__).resolve().parents[2]
from ansible_collections.ascend.fa.plugins.action import fa_lock as fa_lock


@pytest.fixture()
def sleeper():
    """A live process that is not this one: another run holding a lock."""
    procs: list[subprocess.Popen] = []

    def start(seconds: float = 30) -> subprocess.Popen:
        p = subprocess.Popen(["sleep", str(seconds)])
        procs.append(p)
        _wait_exec(p.pid, b"sleep")
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()


def _wait_exec(pid: int, name: bytes) -> None:
    """Popen returns once the child is forked; until it has exec'd, its
    /proc/<pid>/cmdline is the parent's or empty (a CI run caught that)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    deadline = time.monotonic() + 10
    while not cmdline.read_bytes().startswith(name):
        assert time.monotonic() < deadline, f"pid {pid} never exec'd {name!r}"
        time.sleep(0.01)


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _until(cond, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


# ------------------------------------------------------------------------------------------------ owner
def _main_pid_in_fork(q) -> None:
    q.put(lock.main_process())


def test_the_owner_is_the_main_process_not_the_forked_worker():
    # ansible forks its workers from ansible-playbook: a fork shares the command line, and the lock must name the
    # process that lives as long as the run, not the worker that dies after the task
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    child = ctx.Process(target=_main_pid_in_fork, args=(q,))
    child.start()
    got = q.get(timeout=20)
    child.join(20)
    assert got == os.getpid() and got != child.pid


def test_owner_record_names_pid_start_boot_and_a_masked_command():
    me = lock.run_owner()
    assert me.pid == os.getpid()
    stat = Path(f"/proc/{me.pid}/stat").read_text()
    assert me.start == int(stat[stat.rindex(")") + 1:].split()[19])
    assert me.boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert lock.alive(me) is True
    assert redact.mask_command(["ansible-playbook", "-e", "ansible_become_password=hunter 22", "-e",
                                '{"hook_token": "abc def", "x": 1}', "-e", "fa_recipe=r"]) == (
        "ansible-playbook -e 'ansible_become_password=***' -e '{\"hook_token\":***' -e fa_recipe=r")


def test_pid_reuse_reboot_zombie_and_exit_make_a_lock_stale(sleeper):
    live = lock.run_owner(sleeper().pid)
    assert lock.alive(live) is True
    assert lock.alive(replace(live, start=live.start + 1)) is False        # the pid now belongs to another process
    assert lock.alive(replace(live, boot_id="another-boot")) is False      # the controller rebooted since
    assert lock.alive(replace(live, pid=_dead_pid())) is False              # the process is gone
    zombie = subprocess.Popen(["true"])                                     # exited, not reaped yet
    try:
        assert _until(lambda: Path(f"/proc/{zombie.pid}/stat").read_text().split(")")[-1].split()[0] == "Z")
        assert lock.alive(lock.Owner(zombie.pid, None, live.boot_id, live.controller)) is False
    finally:
        zombie.wait()
    # a lock taken on another controller (a shared lock folder) cannot be judged from here: it holds
    assert lock.alive(replace(live, controller="elsewhere", pid=_dead_pid())) is None


# ------------------------------------------------------------------------------------------------ acquire
def test_live_holder_stops_the_second_run_with_pid_start_command_and_fix(tmp_path, sleeper):
    other = lock.run_owner(sleeper().pid)
    first = lock.acquire(tmp_path, lock.HOST, "node-1", other)
    assert first.state == "acquired"
    record = json.loads(first.path.read_text())
    assert record["pid"] == other.pid and record["start"] == other.start and record["command"].startswith("sleep")
    with pytest.raises(lock.LockConflict) as err:
        lock.acquire(tmp_path, lock.HOST, "node-1", lock.run_owner())
    msg = str(err.value)
    assert msg == (f"another run (pid {other.pid} by {other.user}, started {other.started}: sleep 30) holds the lock "
                   f"for host node-1 ({first.path}). Fix: wait for it to finish, or remove {first.path} if that "
                   "process is gone")
    assert json.loads(first.path.read_text()) == record                      # the holder keeps its lock
    # the same run again (another host of its play with the same build key): already its own
    assert lock.acquire(tmp_path, lock.HOST, "node-1", other).state == "held"


def test_a_lock_of_a_dead_run_is_taken_over(tmp_path):
    me = lock.run_owner()
    gone = replace(me, pid=_dead_pid(), command="ansible-playbook deploy_fa.yml", started="yesterday")
    path = lock.lock_path(tmp_path, lock.BUILD, "0123abcd")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(gone.as_dict()))
    got = lock.acquire(tmp_path, lock.BUILD, "0123abcd", me)
    assert (got.state, got.previous) == ("taken over", gone)
    assert lock.Owner.from_dict(json.loads(path.read_text())) == me
    assert "from a run that is gone (pid" in lock.stale_message(lock.BUILD, "0123abcd", path, gone)
    # a reused pid (same pid, another start time) is as dead as a missing one
    path.write_text(json.dumps(replace(me, start=me.start - 1).as_dict()))
    assert lock.acquire(tmp_path, lock.BUILD, "0123abcd", me).state == "taken over"
    # so is a file that is not a lock record at all
    path.write_text("{garbage")
    assert lock.acquire(tmp_path, lock.BUILD, "0123abcd", me).state == "taken over"


def test_waiting_for_a_holder_that_finishes(tmp_path, sleeper):
    holder = sleeper(1.5)
    lock.acquire(tmp_path, lock.HOST, "h", lock.run_owner(holder.pid))
    started = time.monotonic()
    with pytest.raises(lock.LockConflict):
        lock.acquire(tmp_path, lock.HOST, "h", lock.run_owner(), wait=0.3, poll=0.1)
    assert time.monotonic() - started >= 0.3
    holder.wait()
    got = lock.acquire(tmp_path, lock.HOST, "h", lock.run_owner(), wait=10, poll=0.1)
    assert got.state == "taken over"


def test_names_become_safe_distinct_file_names(tmp_path):
    paths = {lock.lock_path(tmp_path, lock.HOST, n) for n in ("a/../b", "a_.._b", "..", "node 1", "node_1")}
    assert len(paths) == 5
    assert all(p.parent == tmp_path and p.name.startswith("host-") and "/" not in p.name for p in paths)
    assert lock.lock_path(tmp_path, lock.HOST, "node-1").name == "host-node-1.lock"
    with pytest.raises(ValueError):
        lock.lock_path(tmp_path, "fleet", "x")


def test_release_removes_only_the_owners_locks(tmp_path, sleeper):
    me, other = lock.run_owner(), lock.run_owner(sleeper().pid)
    mine = [lock.acquire(tmp_path, lock.HOST, h, me).path for h in ("a", "b")]
    theirs = lock.acquire(tmp_path, lock.HOST, "c", other).path
    assert sorted(lock.release(tmp_path, me)) == sorted(mine)
    assert not any(p.exists() for p in mine) and theirs.exists()


def test_the_watcher_releases_the_locks_when_the_run_ends(tmp_path, sleeper):
    run = sleeper(1)
    owner = lock.run_owner(run.pid)
    path = lock.acquire(tmp_path, lock.HOST, "h", owner).path
    assert lock.ensure_watcher(tmp_path, owner) is True
    assert lock.ensure_watcher(tmp_path, owner) is False       # one watcher per run
    assert path.exists()
    run.wait()
    assert _until(lambda: not path.exists()), "the watcher did not release the lock"
    assert _until(lambda: not list(tmp_path.glob(".watch-*")))


def test_default_lock_dir_is_next_to_the_cache(tmp_path):
    assert lock.default_lock_dir(tmp_path / "cache") == (tmp_path / "locks").resolve()


# ------------------------------------------------------------------------------------------------ action plugin
def test_plugin_takes_the_lock_and_reports_a_takeover(tmp_path):
    me = lock.run_owner()
    res = fa_lock.take({"host": "n1", "cache_dir": str(tmp_path / "cache"), "lock_dir": "", "wait": 0}, "n1", False, me)
    assert res["changed"] is False and res["state"] == "acquired" and "failed" not in res
    assert Path(res["lock"]) == tmp_path / "locks" / "host-n1.lock"
    Path(res["lock"]).write_text(json.dumps(replace(me, pid=_dead_pid()).as_dict()))
    res = fa_lock.take({"host": "n1", "cache_dir": str(tmp_path / "cache"), "wait": 0}, "n1", False, me)
    assert res["state"] == "taken over" and "took over the lock for host n1" in res["warnings"][0]


def test_plugin_stops_the_host_on_a_live_holder_and_check_mode_only_warns(tmp_path, sleeper):
    other = lock.run_owner(sleeper().pid)
    lock.acquire(tmp_path, lock.BUILD, "k1", other)
    args = {"build_key": "k1", "lock_dir": str(tmp_path), "wait": 0}
    res = fa_lock.take(args, "n2", False, lock.run_owner())
    assert res["failed"] is True and res["msg"].startswith(f"n2: another run (pid {other.pid}")
    assert "holds the lock for build key k1" in res["msg"]
    before = sorted(p.name for p in tmp_path.iterdir())
    res = fa_lock.take({"host": "n2", "lock_dir": str(tmp_path), "wait": 0}, "n2", True, lock.run_owner())
    assert "failed" not in res and "warnings" not in res                   # nobody holds n2
    res = fa_lock.take(args, "n2", True, lock.run_owner())
    assert "failed" not in res and "another run (pid" in res["warnings"][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before             # check mode wrote nothing


def test_plugin_rejects_bad_arguments(tmp_path):
    assert fa_lock.take({"host": "a", "build_key": "b", "lock_dir": str(tmp_path)}, "a", False)["failed"]
    assert "fa_lock_wait=-1" in fa_lock.take({"host": "a", "lock_dir": str(tmp_path), "wait": -1}, "a", False)["msg"]
    assert "lock_dir or cache_dir" in fa_lock.take({"host": "a", "wait": 0}, "a", False)["msg"]
