"""K concurrent slices of one fleet (AWX job slicing, or several controllers) with the shared artifact store:
each target is built exactly once in total and every slice installs the same checksum-verified artifact."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ascend_fa import PROJECT_ROOT

pytestmark = pytest.mark.fleet


def builds_in(out: str) -> int:
    """Changed items of the build task in one run's output."""
    n = 0
    for block in re.split(r"\nTASK \[", out):
        if block.startswith("fa_build : Build the package"):
            n += len(re.findall(r"^changed: ", block, re.M))
    return n


def test_two_slices_build_each_target_once(make_fleet, tmp_path):
    fleet = make_fleet("slices", octet=21, hosts=5, models=["910B3", "A3-9392"], npus=1)
    inv = yaml.safe_load(fleet.inventory.read_text())
    ascend = inv["all"]["children"]["ascend"]
    store = fleet.hosts[4]
    inv["all"]["children"]["artifact_store"] = {"hosts": {store: ascend["hosts"].pop(store)}}
    ascend["vars"].update({"fa_artifact_store": "host", "fa_artifact_host": store,
                           "fa_artifact_store_dir": "/srv/ascend-fa/artifacts"})
    sliced = tmp_path / "inventory.yml"
    sliced.write_text(yaml.safe_dump(inv))

    slices = [fleet.hosts[0:2], fleet.hosts[2:4]]   # each slice holds an A2 and an A3 host: both need both keys
    procs = []
    for i, hosts in enumerate(slices):
        env = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT_ROOT / "ansible.cfg"),
               "ASCEND_FA_CACHE": str(tmp_path / f"cache{i}"),          # separate controllers: separate caches
               "ASCEND_FA_RESULTS": str(tmp_path / f"out{i}"), "NO_COLOR": "1",
               "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / f"facts{i}")}
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(sliced), "deploy_fa.yml",
               "--limit", ",".join(hosts)]
        procs.append(subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=1200)[0] for p in procs]
    for i, (p, out) in enumerate(zip(procs, outs, strict=True)):
        (tmp_path / f"slice{i}.log").write_text(out)
        assert p.returncode == 0, out[-4000:]
    assert sum(builds_in(o) for o in outs) == 2, [builds_in(o) for o in outs]

    listing = fleet.sh(store, "cat /srv/ascend-fa/artifacts/*/artifact.json")
    published = [json.loads(x) for x in re.findall(r"\{.*?\n\}", listing.stdout, re.S)]
    assert sorted(m["soc_family"] for m in published) == ["ascend910_93", "ascend910b"]
    by_family = {m["soc_family"]: m["sha256"] for m in published}
    locks = fleet.sh(store, "ls -a /srv/ascend-fa/artifacts/").stdout.split()
    assert not [x for x in locks if x.endswith(".lock")], locks   # every lock released
    for host in fleet.hosts[:4]:
        m = fleet.manifest(host)
        assert m["sha256"] == by_family[m["soc_family"]], host
