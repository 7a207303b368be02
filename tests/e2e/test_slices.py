"""K concurrent slices of one fleet (AWX job slicing, or several controllers) with the shared artifact store:
each target is built exactly once in total, a slice that finds another slice's claim on a key waits for that build
instead of building it again, and every slice installs the same checksum-verified artifact."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from ascend_fa import PROJECT_ROOT

pytestmark = pytest.mark.fleet

CLAIM = "ascend.fa.fa_fetch : Claim each build in the shared store"
BUILD = "ascend.fa.fa_build : Build the package"
PUBLISH = "ascend.fa.fa_build : Publish them"
WAIT = "ascend.fa.fa_build : Wait for the other slices' builds"
# one loop item of a task: "changed: [node1 -> node5(127.0.21.5)] => (item=<build key>[: label])"
ITEM = re.compile(r"^(ok|changed|failed|fatal|skipping): \[[^\]]*\] => \(item=([0-9a-f]{16})\b")


def builds_in(out: str) -> int:
    """Changed items of the build task in one run's output."""
    n = 0
    for block in re.split(r"\nTASK \[", out):
        if block.startswith(BUILD):
            n += len(re.findall(r"^changed: ", block, re.M))
    return n


class Slice:
    """One ansible-playbook run whose output lines are read as they come, each with the time it arrived."""

    def __init__(self, cmd: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    @property
    def out(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def header(self, task: str) -> float | None:
        """When the first TASK line naming ``task`` came."""
        return next((t for t, line in list(self.lines) if line.startswith("TASK [") and task in line), None)

    def items(self, task: str) -> dict[str, tuple[str, float]]:
        """build key -> (status, time) of the loop items of the tasks whose TASK line names ``task``."""
        found: dict[str, tuple[str, float]] = {}
        inside = False
        for t, line in list(self.lines):
            if line.startswith(("TASK [", "PLAY [", "PLAY RECAP")):
                inside = line.startswith("TASK [") and task in line
            elif inside and (m := ITEM.match(line)):
                found[m.group(2)] = (m.group(1), t)
        return found

    def claimed_and_went_on(self) -> bool:
        """Its claim task is over (a later TASK line came) and it acquired at least one key."""
        start = self.header(CLAIM)
        return (start is not None and any(s == "changed" for s, _ in self.items(CLAIM).values())
                and any(t > start and line.startswith("TASK [") and CLAIM not in line for t, line in list(self.lines)))


def test_two_slices_build_each_target_once_and_one_waits_for_the_other(make_fleet, tmp_path):
    fleet = make_fleet("slices", octet=21, hosts=5, models=["910B3", "A3-9392"], npus=1)
    inv = yaml.safe_load(fleet.inventory.read_text())
    ascend = inv["all"]["children"]["ascend"]
    store = fleet.hosts[4]
    inv["all"]["children"]["artifact_store"] = {"hosts": {store: ascend["hosts"].pop(store)}}
    ascend["vars"].update({"fa_artifact_store": "host", "fa_artifact_host": store,
                           "fa_artifact_store_dir": "/srv/ascend-fa/artifacts"})
    sliced = tmp_path / "inventory.yml"
    sliced.write_text(yaml.safe_dump(inv))

    # both slices start together; each holds an A2 and an A3 host, so both need both build keys
    slices: list[Slice] = []
    for i, hosts in enumerate([fleet.hosts[0:2], fleet.hosts[2:4]]):
        env = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT_ROOT / "ansible.cfg"),
               "ASCEND_FA_CACHE": str(tmp_path / f"cache{i}"),          # separate controllers: separate caches
               "ASCEND_FA_RESULTS": str(tmp_path / f"out{i}"), "NO_COLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
               "PYTHONUNBUFFERED": "1",                                # the lines are read as they come
               "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / f"facts{i}")}
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(sliced), "deploy_fa.yml",
               "--limit", ",".join(hosts)]
        slices.append(Slice(cmd, env))

    # Make the overlap certain instead of likely: the first slice that acquired a key is paused (SIGSTOP, a slow
    # controller) as soon as its claims are done, and resumed once the other slice has reached its wait (or ended).
    # The other slice must then find that key claimed and wait for it; it may not build it.
    paused: Slice | None = None
    resumed_at: float | None = None
    deadline = time.monotonic() + 1500
    try:
        while any(s.proc.poll() is None for s in slices) and time.monotonic() < deadline:
            if paused is None:
                paused = next((s for s in slices if s.proc.poll() is None and s.claimed_and_went_on()), None)
                if paused is not None:
                    paused.signal(signal.SIGSTOP)
            elif resumed_at is None:
                other = slices[1 - slices.index(paused)]
                if other.header(WAIT) is not None or other.proc.poll() is not None or time.monotonic() > deadline - 600:
                    paused.signal(signal.SIGCONT)
                    resumed_at = time.monotonic()
            time.sleep(0.2)
    finally:
        if paused is not None and resumed_at is None:
            paused.signal(signal.SIGCONT)
        for s in slices:
            if s.proc.poll() is None:
                s.signal(signal.SIGKILL)
            s.proc.wait(timeout=60)
            s.reader.join(timeout=60)
    for i, s in enumerate(slices):
        (tmp_path / f"slice{i}.log").write_text(s.out)
        assert s.proc.returncode == 0, s.out[-4000:]
    assert paused is not None, "no slice acquired a build key:\n" + slices[0].out[-3000:]

    claims = [s.items(CLAIM) for s in slices]
    keys = set(claims[0])
    assert len(keys) == 2 and set(claims[1]) == keys, claims          # both slices claimed both keys
    builds = [{k for k, (status, _) in s.items(BUILD).items() if status == "changed"} for s in slices]
    for key in keys:   # each key built exactly once in total, by the slice that acquired its lock
        builders = [i for i in (0, 1) if key in builds[i]]
        assert len(builders) == 1, (key, builds)
        assert claims[builders[0]][key][0] == "changed", (key, claims)

    assert sum(builds_in(s.out) for s in slices) == 2, [builds_in(s.out) for s in slices]

    # the evidence that a slice waited on the other's claim: its claim found the lock held (not acquired, and the
    # key went to its wait task, which takes only busy keys); the wait ended, with the artifact present (ok: not
    # a take-over of a stale lock), after the other slice published the key, and it did not build the key itself
    waited = [(i, key) for i, s in enumerate(slices) for key in s.items(WAIT)]
    for i, key in waited:
        j = 1 - i
        assert key in builds[j] and key not in builds[i], (i, key, builds)
        assert claims[i][key][0] == "ok", (i, key, claims)
        wait_status, wait_done = slices[i].items(WAIT)[key]
        published = slices[j].items(PUBLISH)[key]
        assert wait_status == "ok" and published[0] == "changed" and published[1] < wait_done, (wait_status, published)
    # the interleaving this test forces: the slice that kept running waited for the paused slice's key, from before
    # that key was built until after it was published
    waiter = 1 - slices.index(paused)
    forced = [key for i, key in waited if i == waiter]
    assert forced, "the running slice did not wait for the paused slice's build:\n" + slices[waiter].out[-3000:]
    for key in forced:
        began = slices[waiter].header(WAIT)
        built = slices[1 - waiter].items(BUILD)[key][1]
        assert began < built < slices[waiter].items(WAIT)[key][1], (key, began, built)

    listing = fleet.sh(store, "cat /srv/ascend-fa/artifacts/*/artifact.json")
    published_meta = [json.loads(x) for x in re.findall(r"\{.*?\n\}", listing.stdout, re.S)]
    assert sorted(m["soc_family"] for m in published_meta) == ["ascend910_93", "ascend910b"]
    assert {m["build_key"] for m in published_meta} == keys
    by_family = {m["soc_family"]: m["sha256"] for m in published_meta}
    locks = fleet.sh(store, "ls -a /srv/ascend-fa/artifacts/").stdout.split()
    assert not [x for x in locks if x.endswith(".lock")], locks   # every lock released
    for host in fleet.hosts[:4]:
        m = fleet.manifest(host)
        assert m["sha256"] == by_family[m["soc_family"]], host
