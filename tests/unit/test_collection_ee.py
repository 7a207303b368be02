"""The execution environment of ascend.fa (issue: collection + execution environment), without building an image.

execution-environment.yml is an ansible-builder v3 definition; its Python packages are all pinned in
requirements-ee.txt. The tests check that the definition agrees with the project (versions, tarball name), that the
pins resolve and install into a clean venv with nothing unpinned coming along, that the collection runs on exactly
that set of packages (no ascend_fa package, no repo checkout on the path), and that ansible-builder accepts the
definition (``ansible-builder create`` writes the build context). The last three need PyPI (about 30 s).
scripts/build_ee.py builds the image here (tests/e2e/test_ee.py runs a job in it); the checks below keep its
offline wheel set in step with what ansible-builder's Containerfile installs.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EE = ROOT / "execution-environment.yml"
REQ = ROOT / "requirements-ee.txt"
ANSIBLE_BUILDER = "ansible-builder==3.2.0"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bc = _load("build_collection_for_ee_tests", ROOT / "scripts" / "build_collection.py")
build_ee = _load("build_ee_for_ee_tests", ROOT / "scripts" / "build_ee.py")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    out = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)", line)
        assert m, f"{path.name}: not an exact pin: {raw!r}"
        out[_norm(m.group(1))] = m.group(2)
    return out


def pins_loose(path: Path) -> dict[str, str]:
    out = {}
    for raw in path.read_text().splitlines():
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", raw)
        if m:
            out[_norm(m.group(1))] = m.group(2)
    return out


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update({"ANSIBLE_FORCE_COLOR": "0", "NO_COLOR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return env


def _venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True, timeout=120)
    return path / "bin"


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("env", _env())
    p = subprocess.run(argv, capture_output=True, text=True, timeout=kw.pop("timeout", 600), **kw)
    assert p.returncode == 0, f"{' '.join(argv)} -> {p.returncode}\n{p.stdout[-3000:]}{p.stderr[-3000:]}"
    return p


@pytest.fixture(scope="module")
def definition() -> dict:
    return yaml.safe_load(EE.read_text())


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ee-collection")
    return bc.build(d / "dist")


def test_definition_agrees_with_the_project(definition):
    version = bc.project_version()
    req = pins(REQ)
    constraints = pins_loose(ROOT / "constraints.txt")
    assert definition["version"] == 3
    assert definition["images"]["base_image"]["name"]
    deps = definition["dependencies"]
    assert deps["python"] == "requirements-ee.txt" and "galaxy" not in deps
    assert deps["ansible_core"]["package_pip"] == f"ansible-core=={req['ansible-core']}" == "ansible-core==2.19.14"
    assert deps["ansible_runner"]["package_pip"] == f"ansible-runner=={req['ansible-runner']}" == "ansible-runner==2.4.3"
    for name in ("ansible-core", "ansible-runner"):
        assert req[name] == constraints[name], name
    assert {"ansible-core", "ansible-runner", "pyyaml", "jinja2"} <= set(req)
    system = " ".join(deps["system"])
    assert "openssh-clients" in system and "git" in system
    # a Debian base (scripts/build_ee.py's) is checked by bindep too, under Debian's package names
    assert {"openssh-client [platform:dpkg]", "git [platform:dpkg]"} <= set(deps["system"])
    assert build_ee.ANSIBLE_BUILDER == ANSIBLE_BUILDER
    tar = f"ascend-fa-{version}.tar.gz"
    assert [f["src"] for f in definition["additional_build_files"]] == [f"dist/{tar}"]
    steps = "\n".join(definition["additional_build_steps"]["append_final"])
    assert f"_build/collections/{tar}" in steps and "ansible-galaxy collection install" in steps


def test_pins_install_into_a_clean_venv_and_run_the_collection(tmp_path, tarball):
    """Everything the EE installs is pinned; the collection's modules, filters and roles work on exactly that set."""
    vbin = _venv(tmp_path / "venv")
    _run([str(vbin / "pip"), "install", "-q", "-r", str(REQ)], timeout=600)
    _run([str(vbin / "pip"), "check"])
    frozen = {}
    for line in _run([str(vbin / "pip"), "freeze"]).stdout.splitlines():
        name, _, ver = line.partition("==")
        frozen[_norm(name)] = ver
    assert frozen == pins(REQ), "requirements-ee.txt must pin exactly what gets installed"
    assert "2.19.14" in _run([str(vbin / "ansible"), "--version"]).stdout

    work = tmp_path / "run"
    work.mkdir()
    (work / "ansible.cfg").write_text("[defaults]\ngathering = explicit\n")
    env = {**_env(), "ANSIBLE_CONFIG": str(work / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "colls"),
           "PATH": f"{vbin}{os.pathsep}{os.environ.get('PATH', '')}"}
    _run([str(vbin / "ansible-galaxy"), "collection", "install", "--offline", str(tarball), "-p", str(tmp_path / "colls")],
         cwd=work, env=env)
    _run([str(vbin / "ansible-doc"), "-t", "module", "ascend.fa.fa_install"], cwd=work, env=env)
    out = work / "out.json"
    (work / "pb.yml").write_text("""---
- name: The collection on the EE's Python packages
  hosts: localhost
  gather_facts: false
  roles:
    - role: ascend.fa.fa_common
  tasks:
    - name: Filters from the collection's plugin_utils
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0644"
        content: >-
          {{ {'commit': fa_recipe_data.commit,
              'problems': {'cann_version': '8.0.0', 'soc_family': 'ascend910b'}
                          | ascend.fa.fa_compat_problems(fa_recipe_data) | map(attribute='code') | list} | to_json }}
""")
    _run([str(vbin / "ansible-playbook"), "-i", "localhost,", "-c", "local", "pb.yml", "-e", f"out={out}",
          "-e", f"ansible_python_interpreter={vbin / 'python'}"], cwd=work, env=env)
    got = yaml.safe_load(out.read_text())
    assert got["commit"] == yaml.safe_load((ROOT / "recipes/ops-transformer-v9.0.1.yml").read_text())["commit"]
    assert "cann_too_old_for_ops_transformer" in got["problems"]
    # and the venv really had no ascend_fa package
    p = subprocess.run([str(vbin / "python"), "-c", "import ascend_fa"], cwd=work, env=env, capture_output=True)
    assert p.returncode != 0


def test_ansible_builder_accepts_the_definition(tmp_path, tarball):
    """``ansible-builder create`` (no container runtime needed) writes the build context from our definition."""
    vbin = _venv(tmp_path / "venv")
    _run([str(vbin / "pip"), "install", "-q", ANSIBLE_BUILDER], timeout=600)
    src = tmp_path / "ee"
    (src / "dist").mkdir(parents=True)
    shutil.copy(EE, src)
    shutil.copy(REQ, src)
    shutil.copy(tarball, src / "dist")
    _run([str(vbin / "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", "context",
          "--output-filename", "Containerfile"], cwd=src)
    ctx = src / "context"
    cf = (ctx / "Containerfile").read_text()
    assert 'ANSIBLE_INSTALL_REFS="ansible-core==2.19.14 ansible-runner==2.4.3"' in cf
    assert f"COPY _build/collections/{tarball.name}" in cf
    assert (ctx / "_build/collections" / tarball.name).is_file()
    assert pins(ctx / "_build/requirements.txt") == pins(REQ)
    bindep = (ctx / "_build/bindep.txt").read_text()
    assert "openssh-clients" in bindep and "git" in bindep and "openssh-client [platform:dpkg]" in bindep
    # scripts/build_ee.py builds offline from wheels it downloads beforehand: every pip step of this Containerfile
    # besides requirements-ee.txt (the builder's bindep, the container init) must be among them
    assert "RUN $PYCMD -m pip install --no-cache-dir bindep pyyaml packaging" in cf
    init = re.search(r"RUN \$PYCMD -m pip install --no-cache-dir '([^']+)'", cf)
    assert init and init.group(1) in build_ee.BUILD_EXTRAS, init
    assert {"bindep", "dumb-init"} <= {x.split("==")[0] for x in build_ee.BUILD_EXTRAS}, build_ee.BUILD_EXTRAS
    assert "ARG PKGMGR=" in cf and "ARG PYCMD=" in cf and "FROM $EE_BASE_IMAGE AS base" in cf  # the build args used
    # the builder stage's introspection keeps every pin (none dropped or loosened)
    p = _run([str(vbin / "python"), str(ctx / "_build/scripts/introspect.py"), "introspect",
              f"--user-pip={ctx / '_build/requirements.txt'}", f"--user-bindep={ctx / '_build/bindep.txt'}",
              f"--write-pip={tmp_path / 'req.txt'}", str(tmp_path / "no-collections")])
    assert pins(tmp_path / "req.txt") == pins(REQ), p.stdout
