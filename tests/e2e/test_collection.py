"""The ascend.fa collection on a simulated fleet (issue: collection + execution environment).

Build the tarball with scripts/build_collection.py, install it offline into a temp collections path, and run the
FQCN playbook ``ascend.fa.deploy`` from a temp folder whose ansible.cfg knows nothing of the repo's roles/,
plugins/ (as AWX runs a collection in an execution environment): both hosts get the package,
and the rerun changes nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.fleet

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

# What an AWX project / EE would carry: SSH and output settings, no paths into a checkout.
CFG = """[defaults]
gathering = explicit
host_key_checking = True
interpreter_python = auto_silent
forks = 16
retry_files_enabled = False
timeout = 30
fact_caching = jsonfile
fact_caching_connection = {facts}
fact_caching_timeout = 86400

[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=120s
"""


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    d = tmp_path_factory.mktemp("collection-e2e")
    p = subprocess.run([sys.executable, str(ROOT / "scripts/build_collection.py"), "--staging", str(d / "staging"),
                        "--dist", str(d / "dist")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    tarball = Path(p.stdout.strip().splitlines()[-1])
    assert tarball.is_file() and tarball.name.startswith("ascend-fa-"), p.stdout
    work = d / "run"
    work.mkdir()
    (work / "ansible.cfg").write_text(CFG.format(facts=d / "facts"))
    colls = d / "collections"
    p = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(colls)],
                       cwd=work, env=_env(work, colls), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return work, colls


def _env(work: Path, colls: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({"ANSIBLE_CONFIG": str(work / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(colls),
                "ANSIBLE_FORCE_COLOR": "0", "NO_COLOR": "1", "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", **extra})
    # the product must not reach the repo checkout: no PYTHONPATH into it, and a cwd outside it
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture(scope="module")
def fleet(make_fleet):
    return make_fleet("collection", octet=60, hosts=2, npus=1)


def _deploy(fleet, work: Path, colls: Path) -> tuple[int, str, dict[str, dict[str, int]]]:
    env = _env(work, colls, ASCEND_FA_CACHE=str(fleet.cache), ASCEND_FA_RESULTS=str(fleet.results))
    p = subprocess.run([str(BIN / "ansible-playbook"), "ascend.fa.deploy", "-v", "-i", str(fleet.inventory)],
                       cwd=work, env=env, capture_output=True, text=True, timeout=900)
    out = p.stdout + p.stderr
    (fleet.dir / "collection-run.log").write_text(out)
    recap = {m.group(1): dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m.groups()[1:]), strict=True))
             for m in RECAP.finditer(out)}
    return p.returncode, out, recap


def test_fqcn_deploy_from_the_installed_collection(fleet, collection):
    work, colls = collection
    rc, out, recap = _deploy(fleet, work, colls)
    assert rc == 0, out[-4000:]
    assert set(recap) == set(fleet.hosts) and not [h for h, r in recap.items() if r["failed"] or r["unreachable"]]
    # the code that ran is the installed collection's, not the checkout's
    assert "running playbook inside collection ascend.fa" in out
    assert str(ROOT / "roles") not in out and str(ROOT / "plugins" / "modules") not in out
    for host in fleet.hosts:
        m = fleet.manifest(host)
        assert m and m["recipe"] == "sim-ops-transformer-v9.0.1", (host, m)
    assert len(fleet.builds()) == 1  # one SoC family, CANN, arch: one build
    assert len(list((fleet.results / "verify").glob("*.json"))) == 2

    rc, out, recap = _deploy(fleet, work, colls)
    assert rc == 0, out[-4000:]
    assert set(recap) == set(fleet.hosts)
    assert {h: r["changed"] for h, r in recap.items()} == dict.fromkeys(fleet.hosts, 0), out[-3000:]
    assert len(fleet.builds()) == 1
