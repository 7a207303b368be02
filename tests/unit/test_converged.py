"""The rerun's fast path: fingerprint (module_utils/fa_fingerprint.py), fa_converged, the converged key and record.

A host recorded as converged and clean (ascend_fa_converged in the controller's fact cache) is compared with its
record, file metadata only, and ended when nothing changed; anything that changed shows in its group.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.module_utils import fa_fingerprint as fp
from ansible_collections.ascend.fa.plugins.modules import fa_converged
from ansible_collections.ascend.fa.plugins.plugin_utils import preflight, recipes

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


from ansible_collections.ascend.fa.plugins.action import fa_converged as fa_converged_action
from ansible_collections.ascend.fa.plugins.action import fa_gate as fa_gate


def make_host(tmp_path: Path, layout: str = "cann") -> dict:
    """An Ascend tree with an installed package, as the fingerprint's inputs see it."""
    home = tmp_path / "Ascend"
    for sub, text in (("driver/version.info", "Version=25.5.0\n"), ("firmware/version.info", "Version=7.8.0.5\n")):
        (home / sub).parent.mkdir(parents=True, exist_ok=True)
        (home / sub).write_text(text)
    real = home / "cann-8.5.0"
    vendor = real / "opp" / "vendors" / "ascendfa_transformer"
    (vendor / "op_api" / "lib").mkdir(parents=True)
    (vendor / "op_api" / "lib" / "libcust_opapi.so").write_bytes(b"\x7fELF" + b"0" * 64)
    (real / "opp" / "vendors" / "config.ini").write_text("load_priority=ascendfa_transformer\n")
    (real / "x86_64-linux").mkdir()
    (real / "x86_64-linux" / "ascend_toolkit_install.info").write_text("version=8.5.0\n")
    if layout == "cann":
        (home / "cann").symlink_to(real)
        (home / "cann" / "set_env.sh").write_text("export ASCEND_HOME_PATH=x\n")
    state = tmp_path / "state"
    (state / "packages").mkdir(parents=True)
    (state / "packages" / "abc.run").write_bytes(b"#!/bin/sh\n")
    (state / "set_env.bash").write_text("source x\n")
    (state / "manifest.json").write_text(json.dumps({"vendor_dir": str(vendor), "package": str(state / "packages/abc.run"),
                                                     "recipe": "r", "commit": "c"}))
    site = tmp_path / "site-packages"
    site.mkdir()
    return {"ascend_home": str(home), "state_dir": str(state), "install_info": str(tmp_path / "install.info"),
            "python": sys.executable, "site_dirs": [str(site)], "arch": "x86_64"}


def test_fingerprint_is_stable_and_leaves_the_host_alone(tmp_path):
    inputs = make_host(tmp_path)
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ctime_ns) for p in tmp_path.rglob("*") if p.is_file()}
    a, b = fp.fingerprint(inputs), fp.fingerprint(inputs)
    assert a == b and set(a["groups"]) == set(fp.GROUPS) and a["inputs"] == inputs
    assert a["entries"] > 15 and len(a["digest"]) == 64
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ctime_ns) for p in tmp_path.rglob("*") if p.is_file()} == before
    assert fp.compare(a, b) == []


@pytest.mark.parametrize("change, group", [
    (lambda h: (h / "Ascend/driver/version.info").write_text("Version=25.5.1\n"), "driver"),
    (lambda h: (h / "Ascend/cann-8.5.0/x86_64-linux/ascend_toolkit_install.info").write_text("version=8.5.1\n"), "cann"),
    (lambda h: (h / "Ascend/cann-8.5.0/opp/vendors/config.ini").write_text("load_priority=other,ascendfa\n"), "cann"),
    (lambda h: (h / "Ascend/cann-8.5.0/opp/vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so").write_bytes(b"x"),
     "package"),
    (lambda h: (h / "state/set_env.bash").unlink(), "package"),
    (lambda h: (h / "state/manifest.json").write_text("{}"), "package"),
    (lambda h: (h / "state/verify.json").write_text('{"ok": false}'), "package"),
    (lambda h: (h / "site-packages" / "torch-2.9.0.dist-info").mkdir(), "python"),
])
def test_each_change_shows_in_its_group(tmp_path, change, group):
    inputs = make_host(tmp_path)
    recorded = fp.fingerprint(inputs)
    change(tmp_path)
    r = fa_converged.check(recorded)
    assert r["converged"] is False and group in r["changed_groups"], r
    assert r["changed"] is False and "the full check runs" in r["msg"]


def test_content_rewritten_with_the_same_size_and_mtime_still_shows(tmp_path):
    """ctime cannot be set back from user space: a same-size edit with the mtime restored is still seen."""
    inputs = make_host(tmp_path)
    lib = tmp_path / "Ascend/cann-8.5.0/opp/vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so"
    recorded = fp.fingerprint(inputs)
    st = lib.stat()
    lib.write_bytes(b"\x7fELF" + b"1" * 64)
    os.utime(lib, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert lib.stat().st_size == st.st_size and lib.stat().st_mtime_ns == st.st_mtime_ns
    # the operator folders (cann) hold the installed tree (package): both see it
    assert fa_converged.check(recorded)["changed_groups"] == ["cann", "package"]


def test_a_relinked_toolkit_shows_as_cann(tmp_path):
    inputs = make_host(tmp_path)
    recorded = fp.fingerprint(inputs)
    other = tmp_path / "Ascend" / "cann-9.0.0"
    other.mkdir()
    (tmp_path / "Ascend" / "cann").unlink()
    (tmp_path / "Ascend" / "cann").symlink_to(other)
    assert "cann" in fa_converged.check(recorded)["changed_groups"]


def test_unchanged_host_is_converged_and_a_bad_record_is_not(tmp_path):
    inputs = make_host(tmp_path)
    r = fa_converged.check(fp.fingerprint(inputs))
    assert r == {"changed": False, "converged": True, "changed_groups": [], "digest": fp.fingerprint(inputs)["digest"],
                 "entries": r["entries"], "msg": "unchanged since the last clean run"}
    for bad in ({}, {"inputs": inputs}, {"groups": {"driver": "x"}}):
        r = fa_converged.check(bad)
        assert r["converged"] is False and "no usable recorded fingerprint" in r["msg"]


def test_converged_key_follows_what_is_wanted_not_the_run(tmp_path):
    recipe = recipes.load("ops-transformer-v9.0.1")
    base = {"ignore": [], "checklist": {"expect_npus": 8}, "env_check": True}
    key = preflight.converged_key(recipe, base)
    # this run's host-side results and build settings are not part of it
    assert preflight.converged_key(recipe, {**base, "env": {"problems": [1]}, "install_force": True, "jobs": 3,
                                            "jobs_cap": 8}) == key
    assert preflight.converged_key({**recipe, "commit": "0" * 40}, base) != key
    assert preflight.converged_key(recipe, {**base, "ignore": ["torch_torch_npu_mismatch"]}) != key
    assert preflight.converged_key(recipe, {**base, "checklist": {"expect_npus": 16}}) != key
    matrix = tmp_path / "compat.yml"
    matrix.write_text(preflight.COMPAT_FILE.read_text() + "\n# edited\n")
    assert preflight.converged_key(recipe, {**base, "matrix_file": str(matrix)}) != key


def test_clean_flags_of_the_verdict():
    recipe = recipes.load("ops-transformer-v9.0.1")
    from test_preflight_decide import GOOD, _key
    converged = {**GOOD, "fa_package_state": "installed", "fa_package": {"build_key": _key(GOOD)},
                 "fa_verify_state": "passed"}
    v = preflight.decide(converged, recipe, {"env": {"ran": True, "problems": [], "repair": False}})
    assert v["clean"] is True and v["clean_after_install"] is True
    old_torch = {**converged, "torch_version": "2.8.0"}
    v = preflight.decide(old_torch, recipe, {})
    assert v["clean"] is False and v["clean_after_install"] is False
    v = preflight.decide(old_torch, recipe, {"ignore": [p["code"] for p in v["problems"]]})
    assert v["clean"] is True and v["warnings"]           # acknowledged: still reported, no longer blocking the record
    drifted = {**converged, "fa_package_state": "files_changed", "fa_package_detail": "tree differs"}
    v = preflight.decide(drifted, recipe, {})
    assert v["needs_install"] is True and v["clean"] is False and v["clean_after_install"] is True


def test_the_record_has_one_writer_that_keeps_or_clears_it():
    """fa_converged state=record is the only writer of ascend_fa_converged: the gate and the report write none."""
    from datetime import datetime, timezone

    now = datetime(2026, 12, 5, 10, 0, 0, tzinfo=timezone.utc)
    r = fa_converged_action.record("k", {"digest": "d"}, "preflight", True, now)
    assert r["ansible_facts"] == {"ascend_fa_converged": {"key": "k", "fingerprint": {"digest": "d"}, "by": "preflight",
                                                          "at": "2026-12-05T10:00:00Z"}}
    assert r["recorded"] is True and r["changed"] is False
    for cleared in (fa_converged_action.record("k", {"digest": "d"}, "rollout", False),
                    fa_converged_action.record("k", {}, "rollout", True),
                    fa_converged_action.record("", {"digest": "d"}, "rollout", True)):
        assert cleared["ansible_facts"] == {"ascend_fa_converged": {}} and cleared["recorded"] is False
    assert "ansible_facts" not in fa_gate.verdict([], [], "s")
    assert "ansible_facts" not in fa_gate.verdict([], ["h1: blocked"], "s")
    # the one function that builds the record is fa_converged.record: the whole preflight in one task (fa_preflight)
    # calls it, and no other action builds the fact itself
    writers = [str(f.relative_to(ROOT)) for f in (ROOT / "plugins").rglob("*.py") if "ascend_fa_converged" in f.read_text()
               and "ansible_facts" in f.read_text() and f.parent.name == "action"]
    assert sorted(writers) == ["plugins/action/fa_converged.py", "plugins/action/fa_preflight.py",
                               "plugins/action/fa_rollout_record.py"]
    for other in ("plugins/action/fa_preflight.py", "plugins/action/fa_rollout_record.py"):
        src = (ROOT / other).read_text()
        assert "fa_converged.record(" in src and "FACT" not in src
        assert '"ascend_fa_converged":' not in src


def test_record_survives_in_the_fact_cache_and_ends_an_unchanged_host(tmp_path):
    """fa_converged state=record keeps the record, the jsonfile cache carries it to the next ansible-playbook run,
    fa_converged compares: unchanged -> converged; changed driver file -> the driver group (localhost, no
    containers)."""
    inputs = make_host(tmp_path)
    play = tmp_path / "play.yml"
    play.write_text(textwrap.dedent(f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - name: Record
              ascend.fa.fa_converged:
                state: record
                key: k1
                fingerprint: "{{{{ lookup('ansible.builtin.file', '{tmp_path}/fp.json') | from_json }}}}"
                by: test
              when: record | default(false) | bool
            - name: Compare
              ascend.fa.fa_converged:
                fingerprint: "{{{{ ansible_facts.ascend_fa_converged.fingerprint }}}}"
              register: quick
              when: not (record | default(false) | bool)
            - name: Show
              ansible.builtin.debug:
                msg: >-
                  QUICK={{{{ quick.converged | default('none') }}}}
                  GROUPS={{{{ quick.changed_groups | default([]) | join(',') }}}}
              when: not (record | default(false) | bool)
        """))
    (tmp_path / "fp.json").write_text(json.dumps(fp.fingerprint(inputs)))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts"),
           "ANSIBLE_STDOUT_CALLBACK": "default", "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
           "-e", f"ansible_python_interpreter={sys.executable}", str(play)]

    def run(*extra: str) -> str:
        r = subprocess.run([*cmd, *extra], cwd=ROOT, capture_output=True, text=True, env=env, timeout=180)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        return r.stdout

    run("-e", "record=true")
    assert "QUICK=True GROUPS=" in run()
    (tmp_path / "Ascend/driver/version.info").write_text("Version=25.5.9\n")
    assert "QUICK=False GROUPS=driver" in run()


def test_action_plugin_program_gives_what_the_module_gives(tmp_path):
    """The action plugin's program (fa_fingerprint.py + record, run by a plain Python on stdin) and the module's
    check() agree, converged or not."""
    inputs = make_host(tmp_path)
    recorded = fp.fingerprint(inputs)

    def run_program() -> dict:
        r = subprocess.run([sys.executable, "-"], input=fa_converged_action.script(recorded), capture_output=True,
                           text=True, timeout=60)
        return fa_converged_action.parse(r.returncode, r.stdout, r.stderr)

    assert run_program() == fa_converged.check(recorded)
    (tmp_path / "state" / "set_env.bash").write_text("changed\n")
    out = run_program()
    assert out == fa_converged.check(recorded) and out["changed_groups"] == ["package"] and not out["converged"]


def test_action_plugin_never_stops_the_host_on_odd_output():
    for rc, out, err in ((127, "", "python3: not found"), (0, "Traceback...", ""), (0, '{"x": 1}', "")):
        r = fa_converged_action.parse(rc, out, err)
        assert r["converged"] is False and "failed" not in r and "the full check runs" in r["msg"]
    assert "python3: not found" in fa_converged_action.parse(127, "", "python3: not found")["msg"]
