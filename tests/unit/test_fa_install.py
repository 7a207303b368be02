"""fa_install_lib: install, idempotence, checksum refusal, failure restore, rollback — with a small fake .run."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.module_utils.fa_install_lib import Installer, InstallError

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


def test_rollback_goes_to_the_last_package_that_passed_verification(env):
    """1 passes, 2 is installed and never verified (an interrupted upgrade), 3 fails: back to 1, not to 2 (the
    manifest's "previous"); 1's kept copy survived two installs because it is the verified one."""
    from ansible_collections.ascend.fa.plugins.module_utils.fa_manifest import (
        read_verify_record,
        record_verification,
        verification_state,
    )

    tmp, opp, set_env = env
    lib = opp / "vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so"
    state = str(tmp / "state")
    pkgs = {v: make_pkg(tmp, v) for v in "123"}
    metas = {v: {"recipe": f"r{v}", "build_key": f"k{v}", "cann_version": "9.0.0"} for v in "123"}

    def install(v):
        inst = installer(tmp, set_env, metas[v], sha256=pkgs[v][1])
        return inst, inst.install(pkgs[v][0], pkgs[v][1], metas[v])

    inst, m1 = install("1")
    assert record_verification(state, True, "ok", [], "t1")
    assert verification_state(m1, read_verify_record(state)) == "passed"
    inst, m2 = install("2")
    assert verification_state(m2, read_verify_record(state)) == "none"      # the record is 1's
    inst, m3 = install("3")
    assert m3["previous"]["recipe"] == "r2"
    assert record_verification(state, False, "card 0 wrong", [0], "t3")
    record = read_verify_record(state)
    assert verification_state(m3, record) == "failed" and record["verified"]["recipe"] == "r1"
    assert sorted(os.listdir(tmp / "state/packages")) == sorted(f"{pkgs[v][1]}.run" for v in "123")

    changed, manifest, msg = inst.rollback_to_verified()
    assert changed and manifest["recipe"] == "r1" and manifest["sha256"] == pkgs["1"][1] and "r1" in msg
    assert lib.read_text() == "lib 1\n"
    # 1 is installed and is the verified one: nothing further to go back to
    changed, manifest, msg = inst.rollback_to_verified()
    assert not changed and manifest["recipe"] == "r1" and "stays" in msg


def test_rollback_to_verified_removes_ours_when_none_ever_passed(env):
    tmp, opp, set_env = env
    p1, s1 = make_pkg(tmp, "1")
    meta = {"recipe": "r1", "build_key": "k1", "cann_version": "9.0.0"}
    inst = installer(tmp, set_env, meta, sha256=s1)
    inst.install(p1, s1, meta)
    changed, manifest, msg = inst.rollback_to_verified()
    assert changed and manifest is None and "removed" in msg
    assert not (opp / "vendors/ascendfa_transformer").exists() and inst.current() is None


def test_rollback_to_verified_fails_when_the_verified_package_is_gone(env):
    from ansible_collections.ascend.fa.plugins.module_utils.fa_manifest import record_verification

    tmp, opp, set_env = env
    (p1, s1), (p2, s2) = make_pkg(tmp, "1"), make_pkg(tmp, "2")
    m1 = {"recipe": "r1", "build_key": "k1"}
    installer(tmp, set_env, m1, sha256=s1).install(p1, s1, m1)
    record_verification(str(tmp / "state"), True, "ok", [], "t1")
    inst = installer(tmp, set_env, {"recipe": "r2", "build_key": "k2"}, sha256=s2)
    inst.install(p2, s2, {"recipe": "r2", "build_key": "k2"})
    os.remove(tmp / "state/packages" / f"{s1}.run")
    with pytest.raises(InstallError, match="no longer kept"):
        inst.rollback_to_verified()
    assert inst.current()["recipe"] == "r2"       # nothing changed


def test_a_second_run_on_the_same_host_waits_for_the_lock_then_fails_naming_the_holder(tmp_path):
    from ansible_collections.ascend.fa.plugins.module_utils.fa_install_lib import host_lock

    with (host_lock(str(tmp_path)),
          pytest.raises(InstallError, match=r"another ascend-fa run holds .*\.lock \(pid \d+ since"),
          host_lock(str(tmp_path), timeout=0.3, poll=0.1)):
        pass
    with host_lock(str(tmp_path), timeout=0.3, poll=0.1):     # released with the first holder
        pass


def test_a_full_state_folder_is_a_clear_failure_and_leaves_no_partial_copy(env, monkeypatch):
    """ENOSPC while keeping the package (a .run larger than the free space) was an uncaught OSError: 'MODULE
    FAILURE' and a packages/<sha>.run.partial left behind."""
    import errno
    import shutil as sh

    tmp, opp, set_env = env
    p1, s1 = make_pkg(tmp, "1")
    meta = {"recipe": "r1", "build_key": "k1"}
    inst = installer(tmp, set_env, meta, sha256=s1)
    real_copy = sh.copy2

    def full_disk(src, dst, *a, **kw):
        real_copy(src, dst, *a, **kw)
        raise OSError(errno.ENOSPC, "No space left on device", dst)

    monkeypatch.setattr(sh, "copy2", full_disk)
    with pytest.raises(InstallError, match=r"No space left on device.*nothing was installed. Fix: free space"):
        inst.install(p1, s1, meta)
    assert not [n for n in os.listdir(tmp / "state/packages") if n.endswith(".partial")]
    assert inst.current() is None and not (opp / "vendors/ascendfa_transformer").exists()


# install.sh v9.0.1 (cmake/scripts/custom/install.sh): rewrites load_priority only when other vendors remain on
# the line, and leaves an emptied line as it is. A stand-in that does exactly that:
KEEPS_EMPTY_RUN = r"""#!/bin/bash
set -e
V=$ASCEND_OPP_PATH/vendors/ascendfa_transformer
rm -rf "$V"; mkdir -p "$V/op_api/lib"
echo "lib" > "$V/op_api/lib/libcust_opapi.so"
echo SUCCESS
"""


@pytest.mark.parametrize("before", ["load_priority=\n", "", "[vendors]\n", "load_priority=acme,ascendfa_transformer\n"])
def test_install_puts_our_vendor_first_where_install_sh_leaves_it_out(env, before):
    tmp, opp, set_env = env
    cfg = opp / "vendors/config.ini"
    if before:
        cfg.write_text(before)
    pkg = tmp / "keeps.run"
    pkg.write_text(KEEPS_EMPTY_RUN)
    pkg.chmod(0o755)
    sha = hashlib.sha256(pkg.read_bytes()).hexdigest()
    meta = {"recipe": "r1", "build_key": "k1", "cann_version": "9.0.0"}
    inst = installer(tmp, set_env, meta, sha256=sha)
    inst.install(str(pkg), sha, meta)
    lines = cfg.read_text().splitlines()
    prio = [ln for ln in lines if ln.startswith("load_priority=")]
    assert prio[0].split("=", 1)[1].split(",")[0] == "ascendfa_transformer", lines
    if "acme" in before:
        assert prio[0] == "load_priority=ascendfa_transformer,acme"
    assert any("put ascendfa_transformer first" in m for m in inst.messages)


def test_a_library_chowned_away_from_the_installer_is_drift_repaired_by_a_reinstall(env):
    """op-plugin's checkOwner (op_api_common.cpp): a root process skips a library root does not own."""
    from ansible_collections.ascend.fa.plugins.module_utils.fa_manifest import package_state
    tmp, opp, set_env = env
    p1, s1 = make_pkg(tmp, "1")
    meta = {"recipe": "r1", "build_key": "k1", "cann_version": "9.0.0"}
    inst = installer(tmp, set_env, meta, sha256=s1)
    m = inst.install(p1, s1, meta)
    assert package_state(m, "9.0.0", None)["state"] == "installed"
    lib = opp / "vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so"
    os.chown(lib, os.getuid() + 1, -1) if os.geteuid() == 0 else pytest.skip("chown needs root")
    st = package_state(m, "9.0.0", None)
    assert st["state"] == "files_changed" and "owner check" in st["detail"] and str(lib) in st["detail"]
    assert not inst.is_converged(inst.current())
