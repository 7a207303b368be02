"""One product: the wheel holds the CLI and the ascend.fa collection it drives, not the simulator; installed alone
(no checkout anywhere on the path), the CLI finds the collection's playbooks and Ansible finds its plugins."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLL = "ansible_collections/ascend/fa"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                        str(ROOT)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    (whl,) = out.glob("ascend_fa-*.whl")
    return whl


def test_the_wheel_holds_the_cli_and_the_collection_not_the_simulator(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for want in ("ascend_fa/cli.py", f"{COLL}/plugins/plugin_utils/data/report.html.j2", f"{COLL}/deploy_fa.yml",
                 f"{COLL}/ansible.cfg", f"{COLL}/playbooks/deploy.yml", f"{COLL}/roles/fa_preflight/tasks/main.yml",
                 f"{COLL}/roles/fa_install/meta/argument_specs.yml", f"{COLL}/plugins/modules/fa_verify.py",
                 f"{COLL}/plugins/module_utils/fa_env_lib.py", f"{COLL}/plugins/plugin_utils/data/compat.yml",
                 f"{COLL}/plugins/filter/ascend_fa.py", f"{COLL}/plugins/action/fa_install.py",
                 f"{COLL}/plugins/doc_fragments/env_check.py", f"{COLL}/plugins/doc_fragments/attributes.py",
                 f"{COLL}/recipes/ops-transformer-v9.0.1.yml", f"{COLL}/kernels/fa_check.py", f"{COLL}/meta/runtime.yml"):
        assert want in names, want
    for role in (ROOT / "roles").iterdir():
        assert f"{COLL}/roles/{role.name}/tasks/main.yml" in names, role.name
    # every file of the collection's parts (what build_collection.py puts in the tarball) is in the wheel too
    tracked = subprocess.run(["git", "ls-files", "--", "plugins", "roles", "playbooks", "recipes", "kernels", "meta"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    missing = [rel for rel in tracked if f"{COLL}/{rel}" not in names]
    assert not missing, missing
    assert not [n for n in names if n.startswith(("ascend_sim", f"{COLL}/tests", f"{COLL}/ascend_sim", "tests/"))]


def test_the_installed_wheel_runs_without_the_checkout(wheel, tmp_path):
    """Unpacked as pip installs it, with only the interpreter's own site-packages beside it (no .pth files: no
    editable install of this checkout): the CLI's collection root is the installed copy, its playbooks exist, and
    Ansible's loader imports the collection's filter plugin from there."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (f"import sys; sys.path[:0] = [{str(site)!r}, {sysconfig.get_paths()['purelib']!r}]\n"
            "import json, ascend_fa\n"
            "from ascend_fa import runner\n"
            "from ansible_collections.ascend.fa.plugins.filter import ascend_fa as f\n"
            "print(json.dumps({'root': str(ascend_fa.PROJECT_ROOT), 'filter': f.__file__,\n"
            "                  'deploy': str(runner.playbook_path('deploy')),\n"
            "                  'filters': sorted(f.FilterModule().filters())}))\n")
    p = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert p.returncode == 0, p.stdout + p.stderr
    got = json.loads(p.stdout)
    root = site / COLL
    assert Path(got["root"]) == root.resolve()
    assert Path(got["filter"]).resolve() == (root / "plugins/filter/ascend_fa.py").resolve()
    assert Path(got["deploy"]).is_file() and Path(got["deploy"]).resolve().is_relative_to(root.resolve())
    assert "fa_compat_problems" in got["filters"]
