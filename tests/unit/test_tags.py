"""--tags / --skip-tags and the rollout's two steps (filter fa_steps): which of install and verify a run selects."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
from ansible_collections.ascend.fa.plugins.filter import ascend_fa as filters


@pytest.mark.parametrize("run, skip, build, install, verify", [
    (["all"], [], True, True, True),                 # no tags: everything
    (None, None, True, True, True),
    (["install"], [], False, True, False),           # install (from the cache) without the verification gate
    (["all"], ["verify"], True, True, False),        # with --skip-tags (it used to skip the install too)
    (["install", "verify"], [], False, True, True),
    (["verify"], [], False, False, True),            # no install: the plays hand over no host
    (["preflight"], [], False, False, False),
    (["build", "fetch"], [], True, False, False),
    (["tagged"], [], True, True, True),
    (["all"], ["install"], True, False, True),
    (["all"], ["tagged"], False, False, False),
])
def test_steps_follow_tags_and_skip_tags(run, skip, build, install, verify):
    assert filters.fa_steps(run, skip) == {"build": build, "install": install, "verify": verify}


@pytest.mark.skipif(shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) is None,
                    reason="ansible-playbook not installed next to this interpreter")
def test_the_magic_variables_have_the_shape_the_filter_takes(tmp_path):
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.debug:\n"
        "        msg: \"STEPS {{ s.install }} {{ s.verify }}\"\n"
        "      vars:\n        s: \"{{ ansible_run_tags | ascend.fa.fa_steps(ansible_skip_tags) }}\"\n"
        "      tags: [always]\n")
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "default",
           "ANSIBLE_NOCOLOR": "1"}
    exe = str(Path(sys.executable).parent / "ansible-playbook")
    seen = {}
    for args in ([], ["--tags", "install"], ["--skip-tags", "verify"], ["--tags", "preflight,verify"]):
        out = subprocess.run([exe, "-i", "localhost,", "-c", "local", str(play), *args], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        line = next(x for x in out.stdout.splitlines() if "STEPS " in x)
        install, verify = line.split("STEPS ", 1)[1].rstrip('"').split()
        seen[" ".join(args)] = {"install": install == "True", "verify": verify == "True"}
    assert seen == {"": {"install": True, "verify": True},
                    "--tags install": {"install": True, "verify": False},
                    "--skip-tags verify": {"install": True, "verify": False},
                    "--tags preflight,verify": {"install": False, "verify": True}}
