"""End-to-end tests on simulated fleets (podman containers over SSH on loopback; see ascend_sim/).

Each fleet gets its own loopback range (127.0.<octet>.N), artifact cache and results folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from ci_policy import require_fleet

ROOT = Path(__file__).resolve().parents[2]
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)"
                   r"\s+rescued=(\d+)\s+ignored=(\d+)", re.M)


@dataclass
class Run:
    rc: int
    out: str
    recap: dict[str, dict[str, int]]

    def changed(self) -> dict[str, int]:
        return {h: r["changed"] for h, r in self.recap.items()}

    def failed(self) -> list[str]:
        return sorted(h for h, r in self.recap.items() if r["failed"] or r["unreachable"])


@dataclass
class Fleet:
    dir: Path
    inventory: Path
    hosts: list[str]
    cache: Path
    results: Path

    def env(self) -> dict[str, str]:
        """The environment of this fleet's runs (also for a run started in the background)."""
        return {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ASCEND_FA_CACHE": str(self.cache),
                # the run's artifact cache key: the test session's throwaway file (tests/conftest.py), unless set
                "ASCEND_FA_CACHE_KEY_FILE": os.environ.get("ASCEND_FA_CACHE_KEY_FILE") or str(self.dir / "cache.key"),
                "ASCEND_FA_RESULTS": str(self.results), "ANSIBLE_FORCE_COLOR": "0", "NO_COLOR": "1",
                "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(self.dir / "facts")}

    def play(self, playbook: str, *args: str, timeout: int = 900) -> Run:
        env = self.env()
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(self.inventory),
               str(ROOT / playbook), *args]
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        out = p.stdout + p.stderr
        (self.dir / "last-run.log").write_text(out)
        recap = {m.group(1): dict(zip(("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored"),
                                      map(int, m.groups()[1:]), strict=True)) for m in RECAP.finditer(out)}
        return Run(p.returncode, out, recap)

    def fault(self, host: str, fault: str, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "ascend_sim.fleet", "inject-fault", str(self.dir), host, fault, *args],
                       cwd=ROOT, check=True, capture_output=True, text=True)

    def sh(self, host: str, command: str) -> subprocess.CompletedProcess:
        from ascend_sim import fleet
        return subprocess.run([*fleet.ssh_argv(self.dir, host), command], capture_output=True, text=True, timeout=60)

    def manifest(self, host: str) -> dict | None:
        p = self.sh(host, "cat /var/lib/ascend-fa/manifest.json")
        return json.loads(p.stdout) if p.returncode == 0 else None

    def builds(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.cache.glob("*/artifact.json"))]


@pytest.fixture(scope="session")
def make_fleet(tmp_path_factory):
    require_fleet()   # skips outside CI, fails under CI=true (tests/ci_policy.py)
    from ascend_sim import fleet as simfleet

    made: list[Path] = []

    def factory(name: str, octet: int, hosts: int, **kw) -> Fleet:
        d = tmp_path_factory.mktemp(name)
        info = simfleet.create(d, hosts=hosts, fleet_octet=octet, **kw)
        made.append(d)
        names = [h["name"] for h in info["hosts"]]
        return Fleet(d, d / "inventory.yml", names, d / "cache", d / "out")

    yield factory
    for d in made:
        simfleet.destroy(d)
