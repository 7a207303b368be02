"""The ascend.fa collection (issue: collection + execution environment), no fleet: scripts/build_collection.py
stages and builds the tarball; it installs offline from the file; its modules, filters, roles and playbooks resolve
by FQCN from the installed path, with an ansible.cfg that knows nothing of the repo's roles/ or library/."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_collection", ROOT / "scripts" / "build_collection.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bc = _load_builder()


def clean_env(cfg: Path, collections: Path) -> dict[str, str]:
    """The environment of an AWX-like run: no ANSIBLE_* from the repo's test set-up, our own cfg."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({"ANSIBLE_CONFIG": str(cfg), "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_FORCE_COLOR": "0",
                "NO_COLOR": "1", "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"})
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("collection")
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_collection.py"), "--dist", str(d / "dist")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    tarball = d / "dist" / f"ascend-fa-{bc.project_version()}.tar.gz"
    assert tarball.is_file(), p.stdout
    return d, tarball


@pytest.fixture(scope="module")
def installed(built):
    d, tarball = built
    work = d / "run"
    work.mkdir()
    cfg = work / "ansible.cfg"
    cfg.write_text("[defaults]\ngathering = explicit\nretry_files_enabled = False\n")
    colls = d / "collections"
    p = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(colls)],
                       cwd=work, env=clean_env(cfg, colls), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (colls / "ansible_collections/ascend/fa/MANIFEST.json").is_file()
    return work, cfg, colls


def _member(tar: tarfile.TarFile, name: str) -> str:
    f = tar.extractfile(name)
    assert f is not None, name
    return f.read().decode()


def _checkout_files(*parts: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "--", *parts], cwd=ROOT, capture_output=True, text=True, check=True)
    return [f for f in out.stdout.split() if (ROOT / f).is_file() and not (ROOT / f).is_symlink()]


def test_tarball_holds_the_checkouts_files_unchanged(built):
    """The checkout is the collection: every file of its parts is in the tarball byte for byte (no rewriting), and
    nothing that is not Ansible content (the CLI, the simulator, tests) is."""
    _, tarball = built
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        for rel in _checkout_files(*bc.CONTENT):
            assert rel in names, rel
            assert tar.extractfile(rel).read() == (ROOT / rel).read_bytes(), f"{rel} differs from the checkout"
        runtime = yaml.safe_load(_member(tar, "meta/runtime.yml"))
        manifest = json.loads(_member(tar, "MANIFEST.json"))
        facts = _member(tar, "plugins/modules/ascend_facts.py")
        deploy = _member(tar, "playbooks/deploy.yml")
    assert "from ansible_collections.ascend.fa.plugins.module_utils.ascend_facts_lib import" in facts
    assert "name: ascend.fa.fa_preflight" in deploy and "ascend.fa.fa_steps(ansible_skip_tags)" in deploy
    assert "default(ansible_forks)" in deploy       # the run's forks: Ansible's own magic variable, no lookup plugin
    assert "plugins/plugin_utils/data/compat.yml" in names and "plugins/plugin_utils/compat.py" in names
    assert "recipes/ops-transformer-v9.0.1.yml" in names and "kernels/fa_check.py" in names
    for stray in ("ascend_fa/cli.py", "ascend_sim/fleet.py", "tests/conftest.py", "pyproject.toml", "library"):
        assert stray not in names, stray
    assert not [n for n in names if n.startswith((".collections", "molecule/", "docs/"))]
    assert runtime == {"requires_ansible": ">=2.19.0,<2.20.0"}
    assert manifest["collection_info"]["namespace"] == "ascend" and manifest["collection_info"]["name"] == "fa"
    assert manifest["collection_info"]["version"] == bc.project_version()
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_ansible_doc_reads_the_installed_modules(installed):
    work, cfg, colls = installed
    env = clean_env(cfg, colls)
    p = subprocess.run([str(BIN / "ansible-doc"), "-t", "module", "ascend.fa.ascend_facts"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert str(colls / "ansible_collections/ascend/fa/plugins/modules/ascend_facts.py") in p.stdout
    assert "npu_smi" in p.stdout
    p = subprocess.run([str(BIN / "ansible-doc"), "-t", "module", "-l", "ascend.fa"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    listed = {line.split()[0] for line in p.stdout.splitlines() if line.strip()}
    assert {f"ascend.fa.{m.stem}" for m in (ROOT / "plugins" / "modules").glob("*.py")} <= listed


def test_playbooks_resolve_by_fqcn(installed):
    """Every playbook's roles and modules resolve inside the collection (short names, default collection)."""
    work, cfg, colls = installed
    inv = work / "inventory.yml"
    inv.write_text("all:\n  children:\n    ascend:\n      hosts:\n        node1:\n")
    names = [f"ascend.fa.{pb.stem}" for pb in sorted((ROOT / "playbooks").glob("*.yml"))]
    p = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", str(inv), *names],
                       cwd=work, env=clean_env(cfg, colls), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    # an AWX project's playbook that imports the collection's playbooks (job templates list project files)
    (work / "site.yml").write_text("---\n" + "".join(
        f"- name: {n}\n  ansible.builtin.import_playbook: {n}\n" for n in names))
    p = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", str(inv), "site.yml"],
                       cwd=work, env=clean_env(cfg, colls), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr


def test_the_deploy_batch_defaults_to_the_runs_forks(installed, tmp_path):
    """The rollout play's serial defaults to ansible_forks: ansible-playbook -f when given, else the configuration
    (the repo's ansible.cfg: forks = 16). A play with more hosts than forks makes the controller busy-poll."""
    work, cfg, colls = installed
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n" + "".join(f"    h{i}: {{ansible_connection: local}}\n" for i in range(5)))
    pb = tmp_path / "forks.yml"
    deploy = (ROOT / "playbooks/deploy.yml").read_text()
    serial = re.search(r'^  serial: (".*")$', deploy.split("- name: Install and verify")[1], re.M).group(1)
    pb.write_text(f"- hosts: all\n  gather_facts: false\n  serial: {serial}\n  tasks:\n"
                  "    - ansible.builtin.debug:\n        msg: \"batch={{ ansible_play_batch | length }}\"\n")
    for args, env_cfg, want in ((["-f", "2"], cfg, "batch=2"), ([], cfg, "batch=5"),
                                ([], ROOT / "ansible.cfg", "batch=5"), (["-e", "fa_rollout_batch=3"], cfg, "batch=3")):
        p = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inv), str(pb), *args], cwd=work,
                           env=clean_env(env_cfg, colls), capture_output=True, text=True, timeout=120)
        assert p.returncode == 0 and want in p.stdout, (args, p.stdout + p.stderr)
    p = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inv), str(pb)], cwd=work,
                       env={**clean_env(cfg, colls), "ANSIBLE_FORKS": "4"}, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "batch=4" in p.stdout and "batch=1" in p.stdout, p.stdout + p.stderr

def test_roles_and_filters_run_from_the_collection(installed):
    """fa_common loads the recipe from the collection's recipes/; the filters run on its plugin_utils."""
    work, cfg, colls = installed
    out = work / "filters.json"
    (work / "filters.yml").write_text("""---
- name: Collection filters and fa_common
  hosts: localhost
  gather_facts: false
  roles:
    - role: ascend.fa.fa_common
  vars:
    facts: {cann_version: "8.0.0", soc_family: ascend910b, arch: x86_64, driver_version: "25.5.0",
            cpu_count: 64, mem_total_mb: 65536}
  tasks:
    - name: Write what the filters compute
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0644"
        content: >-
          {{ {'commit': fa_recipe_data.commit,
              'problems': facts | ascend.fa.fa_compat_problems(fa_recipe_data) | map(attribute='code') | list,
              'key': facts | ascend.fa.fa_build_key(fa_recipe_data),
              'jobs': facts | ascend.fa.fa_build_jobs(fa_recipe_data)} | to_json }}
""")
    p = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "filters.yml",
                        "-e", f"out={out}", "-e", f"ansible_python_interpreter={sys.executable}"],
                       cwd=work, env=clean_env(cfg, colls), capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    got = json.loads(out.read_text())
    recipe = yaml.safe_load((ROOT / "recipes/ops-transformer-v9.0.1.yml").read_text())
    assert got["commit"] == recipe["commit"]
    assert "cann_too_old_for_ops_transformer" in got["problems"]
    from ansible_collections.ascend.fa.plugins.plugin_utils import buildplan
    assert got["key"] == buildplan.build_key(recipe["name"], recipe["commit"], "ascend910b", "8.0.0", "x86_64", "",
                                             {"command": recipe["build"]["command"], "ops": recipe["build"]["ops"]})
    per_job = int(recipe["build"].get("mem_per_job_mb", 4096))
    assert int(got["jobs"]) == buildplan.build_jobs(64, 65536, per_job, 64)


def test_the_checkout_is_the_collection():
    """ansible.cfg reaches this checkout as ascend.fa through .collections; nothing else loads product code."""
    link = ROOT / ".collections" / "ansible_collections" / "ascend" / "fa"
    assert link.is_symlink() and link.resolve() == ROOT
    assert "collections_path = ./.collections" in (ROOT / "ansible.cfg").read_text()
    from ansible_collections.ascend.fa.plugins.filter import ascend_fa as filt

    import ascend_fa

    assert ascend_fa.PROJECT_ROOT == ROOT
    assert Path(filt.__file__).resolve() == ROOT / "plugins" / "filter" / "ascend_fa.py"
    assert "fa_compat_problems" in filt.FilterModule().filters()


def test_no_product_code_is_loaded_by_path_or_sys_path():
    """One way to load code: imports by name. No file-path loaders, no sys.path edits in the product."""
    for rel in _checkout_files("ascend_fa", "plugins", "roles", "playbooks"):
        if rel.endswith(".py"):
            text = (ROOT / rel).read_text()
            for bad in ("spec_from_file_location", "sys.path.insert", "sys.path.append", "sys.path[:0]"):
                assert bad not in text, f"{rel}: {bad}"


def test_galaxy_template_names_the_collection(tmp_path):
    data = yaml.safe_load((ROOT / "meta/galaxy.yml").read_text())
    assert (data["namespace"], data["name"]) == ("ascend", "fa")
    staged = yaml.safe_load((bc.stage(tmp_path) / "galaxy.yml").read_text())
    assert staged["version"] == bc.project_version() and staged["readme"] == "README.md"
    # not at the repo root: there molecule/ansible-compat would install the whole checkout as a collection
    assert not (ROOT / "galaxy.yml").exists()
