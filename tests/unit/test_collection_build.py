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
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_collection.py"), "--staging", str(d / "staging"),
                        "--dist", str(d / "dist")], capture_output=True, text=True, timeout=300)
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


def test_tarball_holds_the_collection_layout(built):
    _, tarball = built
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        facts = _member(tar, "plugins/modules/ascend_facts.py")
        facts_lib = _member(tar, "plugins/module_utils/ascend_facts_lib.py")
        filt = _member(tar, "plugins/filter/ascend_fa.py")
        runtime = yaml.safe_load(_member(tar, "meta/runtime.yml"))
        manifest = json.loads(_member(tar, "MANIFEST.json"))
    # modules: library/ -> plugins/modules/, our helpers imported from the collection, ansible-core's unchanged
    assert "from ansible_collections.ascend.fa.plugins.module_utils.ascend_facts_lib import" in facts
    assert "from ansible_collections.ascend.fa.plugins.module_utils.ascend_detect import" in facts_lib
    assert "from ansible_collections.ascend.fa.plugins.module_utils.fa_manifest import" in facts_lib
    assert "from ansible.module_utils.ascend_detect" not in facts_lib and "from ansible.module_utils.fa_manifest" not in facts_lib
    assert "from ansible.module_utils.basic import AnsibleModule" in facts
    for lib in (ROOT / "library").glob("*.py"):
        assert f"plugins/modules/{lib.name}" in names
    for mu in (ROOT / "module_utils").glob("*.py"):
        assert f"plugins/module_utils/{mu.name}" in names
    for act in (ROOT / "action_plugins").glob("*.py"):
        assert f"plugins/action/{act.name}" in names
    with tarfile.open(tarball) as tar:
        deploy = _member(tar, "playbooks/deploy.yml")
    assert "default(ansible_forks)" in deploy       # the run's forks: Ansible's own magic variable, no lookup plugin
    assert "ansible_run_tags | ascend.fa.fa_steps(ansible_skip_tags)" in deploy
    # the filter uses the vendored ascend_fa (no pip install ascend-fa in the EE)
    assert "from ascend_fa" not in filt and "sys.path.insert" not in filt
    assert "from ansible_collections.ascend.fa.plugins.module_utils.ascend_fa import" in filt
    for mod in ("compat", "checklist", "buildplan", "recipes", "artifacts", "versions", "__init__"):
        assert f"plugins/module_utils/ascend_fa/{mod}.py" in names, mod
    assert "plugins/module_utils/ascend_fa/data/compat.yml" in names
    # roles, playbooks, and recipes/kernels at the collection root (role_path ~ '/../../recipes' | '/../../kernels')
    for role in (ROOT / "roles").iterdir():
        assert f"roles/{role.name}/tasks/main.yml" in names
    assert {"playbooks/deploy.yml", "playbooks/verify.yml", "playbooks/upgrade_fa.yml"} <= names
    assert "recipes/ops-transformer-v9.0.1.yml" in names and "kernels/fa_check.py" in names
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
    assert {f"ascend.fa.{m.stem}" for m in (ROOT / "library").glob("*.py")} <= listed


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
                                ([], ROOT / "ansible.cfg", "batch=5"), (["-e", "fa_rolling_batch=3"], cfg, "batch=3")):
        p = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inv), str(pb), *args], cwd=work,
                           env=clean_env(env_cfg, colls), capture_output=True, text=True, timeout=120)
        assert p.returncode == 0 and want in p.stdout, (args, p.stdout + p.stderr)
    p = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inv), str(pb)], cwd=work,
                       env={**clean_env(cfg, colls), "ANSIBLE_FORKS": "4"}, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "batch=4" in p.stdout and "batch=1" in p.stdout, p.stdout + p.stderr

def test_roles_and_filters_run_from_the_collection(installed):
    """fa_common loads the recipe from the collection's recipes/; the filters run on the vendored ascend_fa."""
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
    from ascend_fa import buildplan  # the repo's package: the vendored copy must agree
    assert got["key"] == buildplan.build_key(recipe["name"], recipe["commit"], "ascend910b", "8.0.0", "x86_64", "",
                                             {"command": recipe["build"]["command"], "ops": recipe["build"]["ops"]})
    per_job = int(recipe["build"].get("mem_per_job_mb", 4096))
    assert int(got["jobs"]) == buildplan.build_jobs(64, 65536, per_job, 64)


def test_rewrites_touch_only_our_helpers():
    src = ("from ansible.module_utils.basic import AnsibleModule\n"
           "from ansible.module_utils.fa_manifest import sha256_file\n"
           "import ansible.module_utils.fa_manifest_extra\n"
           "from ansible.module_utils.fa_install_lib import (\n    Installer,\n)\n")
    out = bc.rewrite_module_utils_imports(src, ["fa_manifest", "fa_install_lib"])
    assert "from ansible.module_utils.basic import AnsibleModule" in out
    assert "from ansible_collections.ascend.fa.plugins.module_utils.fa_manifest import sha256_file" in out
    assert "import ansible.module_utils.fa_manifest_extra" in out  # not one of ours: unchanged
    assert "from ansible_collections.ascend.fa.plugins.module_utils.fa_install_lib import (" in out

    v = bc.rewrite_vendor_imports('from ascend_fa import PROJECT_ROOT\nfrom ascend_fa.versions import vcmp\n'
                                  'x = resources.files("ascend_fa")\n')
    assert "from ansible_collections.ascend.fa.plugins.module_utils.ascend_fa import PROJECT_ROOT" in v
    assert "from ansible_collections.ascend.fa.plugins.module_utils.ascend_fa.versions import vcmp" in v
    assert "resources.files(__package__)" in v


def test_filter_rewrite_and_vendor_closure():
    repo_filter = (ROOT / "filter_plugins/ascend_fa.py").read_text()
    out = bc.rewrite_filter_plugin(repo_filter)
    compile(out, "ascend_fa.py", "exec")
    assert "from ascend_fa" not in out and "import ascend_fa" not in out
    need = bc.vendor_closure(ROOT, repo_filter)
    assert {"compat", "checklist", "buildplan", "recipes", "artifacts", "versions"} <= set(need)
    for name in need:  # vendored modules stay pure: stdlib, PyYAML, Jinja2
        bc.check_vendored(name, bc.rewrite_vendor_imports((ROOT / "ascend_fa" / f"{name}.py").read_text()))
    with pytest.raises(bc.BuildError):
        bc.check_vendored("x", "import rich\n")


def test_repo_filter_plugin_still_works_from_the_checkout():
    spec = importlib.util.spec_from_file_location("repo_filter_ascend_fa", ROOT / "filter_plugins/ascend_fa.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert "fa_compat_problems" in mod.FilterModule().filters()
    assert mod.compat.__name__ == "ascend_fa.compat"


def test_galaxy_template_names_the_collection():
    data = yaml.safe_load((ROOT / "meta/galaxy.yml").read_text())
    assert (data["namespace"], data["name"]) == ("ascend", "fa")
    staged_text = bc.galaxy_yml(ROOT, "9.9.9")
    staged = yaml.safe_load(staged_text)
    assert staged["version"] == "9.9.9" and staged["readme"] == "README.md" and staged["namespace"] == "ascend"
    assert staged_text.startswith("---\n") and "molecule" not in staged_text
    # not at the repo root: there molecule/ansible-compat would install the whole checkout as a collection
    assert not (ROOT / "galaxy.yml").exists()
