"""fa_install_lib: install, idempotence, checksum refusal, failure restore, rollback — with a small fake .run."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from ansible.module_utils.fa_install_lib import Installer, InstallError

FAKE_RUN = r"""#!/bin/bash
# minimal stand-in for a custom op .run: installs vendors/<v>/op_api/lib/libcust_opapi.so into $ASCEND_OPP_PATH
set -e
[ -n "$ASCEND_OPP_PATH" ] || { echo "[ERROR] env ASCEND_OPP_PATH no exist"; exit 1; }
[ "${FAIL:-0}" = 1 ] && { echo "[ERROR] simulated failure"; exit 1; }
V=$ASCEND_OPP_PATH/vendors/ascendfa_transformer
rm -rf "$V"; mkdir -p "$V/op_api/lib"
echo "lib @VERSION@" > "$V/op_api/lib/libcust_opapi.so"
cfg=$ASCEND_OPP_PATH/vendors/config.ini
echo "load_priority=ascendfa_transformer" > "$cfg"
echo SUCCESS
"""


def make_pkg(tmp: Path, version: str) -> tuple[str, str]:
    p = tmp / f"pkg-{version}.run"
    p.write_text(FAKE_RUN.replace("@VERSION@", version))
    p.chmod(0o755)
    return str(p), hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def env(tmp_path):
    opp = tmp_path / "opp"
    (opp / "vendors").mkdir(parents=True)
    set_env = tmp_path / "set_env.sh"
    set_env.write_text(f"export ASCEND_OPP_PATH={opp}\n")
    return tmp_path, opp, str(set_env)


def run(cmd: str):
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def installer(tmp: Path, set_env: str, meta: dict, **over) -> Installer:
    params = {"state_dir": str(tmp / "state"), "set_env": [set_env], "flags": ["--quiet"], "install_path": "",
              "vendor": "ascendfa", "vendor_dir_name": "ascendfa_transformer",
              "libraries": ["op_api/lib/libcust_opapi.so"], "ld_library_dirs": ["op_api/lib"],
              "package_set_env": "bin/set_env.bash", "ldconfig_file": str(tmp / "ld.so.conf.d" / "ascend-fa.conf"),
              "success_marker": "SUCCESS", "force": False, "meta": meta, "sha256": None}
    params.update(over)

    def runner(cmd):
        return (0, "", "") if cmd == "ldconfig" else run(cmd)
    return Installer(params, runner)


def test_install_then_converged_then_upgrade_then_rollback(env):
    tmp, opp, set_env = env
    p1, s1 = make_pkg(tmp, "1")
    meta1 = {"recipe": "r1", "build_key": "k1", "cann_version": "9.0.0"}
    inst = installer(tmp, set_env, meta1, sha256=s1)
    m1 = inst.install(p1, s1, meta1)
    lib = opp / "vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so"
    assert lib.read_text() == "lib 1\n"
    assert m1["previous"] is None and m1["tree_sha256"]
    assert Path(m1["package"]).name == f"{s1}.run"
    conf = Path(inst.p["ldconfig_file"]).read_text()
    assert str(opp / "vendors/ascendfa_transformer/op_api/lib") in conf
    assert set_env in (tmp / "state/set_env.bash").read_text()
    assert inst.is_converged(inst.current())

    p2, s2 = make_pkg(tmp, "2")
    meta2 = {"recipe": "r2", "build_key": "k2", "cann_version": "9.0.0"}
    inst2 = installer(tmp, set_env, meta2, sha256=s2)
    assert not inst2.is_converged(inst2.current())
    m2 = inst2.install(p2, s2, meta2)
    assert lib.read_text() == "lib 2\n"
    assert m2["previous"]["recipe"] == "r1" and "previous" not in m2["previous"]
    assert sorted(os.listdir(tmp / "state/packages")) == sorted([f"{s1}.run", f"{s2}.run"])

    changed, m3 = inst2.rollback()
    assert changed and m3["recipe"] == "r1" and m3["reason"] == "rollback"
    assert lib.read_text() == "lib 1\n"
    assert m3["previous"]["recipe"] == "r2"
    history = [json.loads(x) for x in (tmp / "state/history.jsonl").read_text().splitlines()]
    assert [h["action"] for h in history] == ["install", "install", "rollback"]


def test_checksum_mismatch_installs_nothing(env):
    tmp, opp, set_env = env
    p1, s1 = make_pkg(tmp, "1")
    with open(p1, "a") as fh:
        fh.write("# tampered\n")
    inst = installer(tmp, set_env, {"build_key": "k"}, sha256=s1)
    with pytest.raises(InstallError, match="checksum mismatch"):
        inst.install(p1, s1, {"build_key": "k"})
    assert not (opp / "vendors/ascendfa_transformer").exists()
    assert inst.current() is None


def test_failed_install_restores_the_previous_tree(env, monkeypatch):
    tmp, opp, set_env = env
    p1, s1 = make_pkg(tmp, "1")
    installer(tmp, set_env, {"build_key": "k1"}).install(p1, s1, {"build_key": "k1", "recipe": "r1"})
    p2, s2 = make_pkg(tmp, "2")
    monkeypatch.setenv("FAIL", "1")
    inst = installer(tmp, set_env, {"build_key": "k2"})
    with pytest.raises(InstallError, match="simulated failure"):
        inst.install(p2, s2, {"build_key": "k2"})
    assert (opp / "vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so").read_text() == "lib 1\n"
    assert inst.current()["recipe"] == "r1"


def test_rollback_without_previous_removes_the_package(env):
    tmp, opp, set_env = env
    p1, s1 = make_pkg(tmp, "1")
    inst = installer(tmp, set_env, {"build_key": "k1"})
    inst.install(p1, s1, {"build_key": "k1", "recipe": "r1"})
    changed, manifest = inst.rollback()
    assert changed and manifest is None
    assert not (opp / "vendors/ascendfa_transformer").exists()
    assert "ascendfa_transformer" not in (opp / "vendors/config.ini").read_text()
    assert inst.current() is None


def test_drift_is_not_converged(env):
    tmp, opp, set_env = env
    p1, s1 = make_pkg(tmp, "1")
    meta = {"build_key": "k1", "cann_version": "9.0.0"}
    inst = installer(tmp, set_env, meta, sha256=s1)
    inst.install(p1, s1, meta)
    (opp / "vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so").write_text("garbage")
    assert not inst.is_converged(inst.current())
