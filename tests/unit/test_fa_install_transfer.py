"""fa_install without a package file on the host (the action plugin transfers it only when needed): a converged
host needs none, the kept copy serves a reinstall, a missing package is a clear ``package_needed`` failure, and a
transferred temporary file is moved into packages/ and its folder removed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.module_utils.fa_install_lib import InstallError
from ansible_collections.ascend.fa.plugins.modules import fa_install
from test_fa_install import env, installer, make_pkg, run  # noqa: F401  (env is a fixture)

LIB = "vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so"


def module_params(tmp: Path, set_env: str, **over) -> dict:
    inst = installer(tmp, set_env, {})
    params = dict(inst.p, state="present", package=None, _transfer_dir=None)
    params.update(over)
    return params


def runner(cmd):
    return (0, "", "") if cmd == "ldconfig" else run(cmd)


def test_converged_host_needs_no_package(env):  # noqa: F811
    tmp, opp, set_env = env
    p1, s1 = make_pkg(tmp, "1")
    meta = {"build_key": "k1", "cann_version": "9.0.0"}
    installer(tmp, set_env, meta, sha256=s1).install(p1, s1, meta)
    os.remove(p1)
    changed, manifest = installer(tmp, set_env, meta, sha256=s1).present(None, s1, meta)
    assert not changed and manifest["sha256"] == s1
    # through the module's entry point too: unchanged, not a failure
    failed, result = fa_install.execute(module_params(tmp, set_env, sha256=s1, meta=meta,
                                                      package=str(tmp / "absent.run")), runner, False)
    assert not failed and result["changed"] is False and result["manifest"]["sha256"] == s1


def test_broken_tree_is_reinstalled_from_the_kept_copy(env):  # noqa: F811
    tmp, opp, set_env = env
    p1, s1 = make_pkg(tmp, "1")
    meta = {"build_key": "k1", "cann_version": "9.0.0"}
    installer(tmp, set_env, meta, sha256=s1).install(p1, s1, meta)
    (opp / LIB).write_text("garbage")
    changed, manifest = installer(tmp, set_env, meta, sha256=s1).present(None, s1, meta)
    assert changed and manifest["package"] == str(tmp / f"state/packages/{s1}.run")
    assert (opp / LIB).read_text() == "lib 1\n"


def test_no_package_and_no_kept_copy_is_a_clear_error(env):  # noqa: F811
    tmp, opp, set_env = env
    p1, s1 = make_pkg(tmp, "1")
    meta = {"build_key": "k1", "cann_version": "9.0.0"}
    installer(tmp, set_env, meta, sha256=s1).install(p1, s1, meta)
    (opp / LIB).write_text("garbage")
    os.remove(tmp / f"state/packages/{s1}.run")
    with pytest.raises(InstallError, match="is not on the host .*no kept copy") as exc:
        installer(tmp, set_env, meta, sha256=s1).present(str(tmp / "absent.run"), s1, meta)
    assert exc.value.extra == {"package_needed": True}
    failed, result = fa_install.execute(module_params(tmp, set_env, sha256=s1, meta=meta), runner, False)
    assert failed and result["package_needed"] and "Fix: give src" in result["msg"]


def test_corrupted_kept_copy_asks_for_the_package(env):  # noqa: F811
    tmp, opp, set_env = env
    p1, s1 = make_pkg(tmp, "1")
    meta = {"build_key": "k1"}
    installer(tmp, set_env, meta, sha256=s1).install(p1, s1, meta)
    (tmp / f"state/packages/{s1}.run").write_text("#!/bin/bash\necho tampered\n")
    with pytest.raises(InstallError, match="corrupted kept copy") as exc:
        installer(tmp, set_env, meta, sha256=s1, force=True).present(None, s1, meta)
    assert exc.value.extra == {"package_needed": True}


def test_check_mode_needs_no_package(env):  # noqa: F811
    tmp, opp, set_env = env
    _, s1 = make_pkg(tmp, "1")
    inst = installer(tmp, set_env, {"build_key": "k1"}, sha256=s1)
    inst.check_mode = True
    changed, manifest = inst.present(None, s1, {"build_key": "k1"})
    assert changed and manifest["would_install"].endswith(f"packages/{s1}.run")
    assert not (opp / "vendors/ascendfa_transformer").exists()


def test_transferred_package_is_moved_and_its_folder_removed(env):  # noqa: F811
    tmp, opp, set_env = env
    p1, s1 = make_pkg(tmp, "1")
    folder = tmp / "ansible-tmp-1700000000.1-42-4242"
    folder.mkdir()
    moved = folder / "cann-ops-transformer.run"
    os.rename(p1, moved)
    meta = {"build_key": "k1", "recipe": "r1"}
    failed, result = fa_install.execute(module_params(tmp, set_env, sha256=s1, meta=meta, package=str(moved),
                                                      _transfer_dir=str(folder)), runner, False)
    assert not failed and result["changed"] and result["transfer_dir_removed"] is True
    assert not folder.exists()
    kept = tmp / f"state/packages/{s1}.run"
    assert result["manifest"]["package"] == str(kept) and os.access(kept, os.X_OK)
    assert (opp / LIB).read_text() == "lib 1\n"


def test_transfer_dir_removed_on_failure_too(env):  # noqa: F811
    tmp, opp, set_env = env
    p1, s1 = make_pkg(tmp, "1")
    folder = tmp / "ansible-tmp-1700000000.1-42-4243"
    folder.mkdir()
    moved = folder / "pkg.run"
    os.rename(p1, moved)
    with open(moved, "a") as fh:
        fh.write("# tampered\n")
    failed, result = fa_install.execute(module_params(tmp, set_env, sha256=s1, meta={"build_key": "k"},
                                                      package=str(moved), _transfer_dir=str(folder)), runner, False)
    assert failed and "checksum mismatch" in result["msg"] and result["transfer_dir_removed"] is True
    assert not folder.exists() and not (tmp / "state/packages").exists()


@pytest.mark.parametrize("name,inside", [("not-a-tmp", True), ("ansible-tmp-1-2-3", False)])
def test_only_an_ansible_tmp_holding_the_package_is_removed(tmp_path, name, inside):
    folder = tmp_path / name
    folder.mkdir()
    pkg = (folder if inside else tmp_path) / "pkg.run"
    pkg.write_text("x")
    assert fa_install.transfer_dir({"_transfer_dir": str(folder), "package": str(pkg)}) is None
    assert fa_install.remove_transfer_dir(None) is False
    assert folder.exists()


def test_previous_state_is_unchanged_by_the_transfer_options(env):  # noqa: F811
    tmp, opp, set_env = env
    p1, s1 = make_pkg(tmp, "1")
    p2, s2 = make_pkg(tmp, "2")
    m1 = {"build_key": "k1", "recipe": "r1"}
    m2 = {"build_key": "k2", "recipe": "r2"}
    installer(tmp, set_env, m1).install(p1, s1, m1)
    installer(tmp, set_env, m2).install(p2, s2, m2)
    failed, result = fa_install.execute(module_params(tmp, set_env, state="previous", meta={}), runner, False)
    assert not failed and result["rolled_back"] and result["manifest"]["recipe"] == "r1"
    assert "transfer_dir_removed" not in result
    assert (opp / LIB).read_text() == "lib 1\n"


def test_the_old_incoming_folder_is_cleaned_up(env):  # noqa: F811
    tmp, opp, set_env = env
    p1, s1 = make_pkg(tmp, "1")
    (tmp / "state/incoming").mkdir(parents=True)
    (tmp / "state/incoming/old.run").write_text("old")
    installer(tmp, set_env, {"build_key": "k1"}).install(p1, s1, {"build_key": "k1"})
    assert not (tmp / "state/incoming").exists()


# --- trust: a rollback runs a kept package only when the controller signed its sha256 (trusted_sha256) -------------
def two_releases(tmp, set_env):
    p1, s1 = make_pkg(tmp, "1")
    p2, s2 = make_pkg(tmp, "2")
    m1 = {"build_key": "k1", "recipe": "r1"}
    m2 = {"build_key": "k2", "recipe": "r2"}
    installer(tmp, set_env, m1).install(p1, s1, m1)
    installer(tmp, set_env, m2).install(p2, s2, m2)
    return s1, s2


def test_rollback_refuses_a_kept_package_the_controller_did_not_sign(env):  # noqa: F811
    tmp, opp, set_env = env
    s1, s2 = two_releases(tmp, set_env)
    manifest_before = (tmp / "state/manifest.json").read_text()
    failed, result = fa_install.execute(module_params(tmp, set_env, state="previous", meta={},
                                                      trusted_sha256=[s2]), runner, False)
    assert failed and "is not one the controller built and signed" in result["msg"] and s1 in result["msg"]
    assert result["untrusted_sha256"] == s1
    assert (opp / LIB).read_text() == "lib 2\n"                              # nothing ran, nothing changed
    assert (tmp / "state/manifest.json").read_text() == manifest_before
    # an empty list (the controller's cache has no signed record) trusts nothing either
    failed, result = fa_install.execute(module_params(tmp, set_env, state="previous", meta={}, trusted_sha256=[]),
                                        runner, False)
    assert failed and (opp / LIB).read_text() == "lib 2\n"


def test_rollback_runs_a_signed_kept_package(env):  # noqa: F811
    tmp, opp, set_env = env
    s1, s2 = two_releases(tmp, set_env)
    failed, result = fa_install.execute(module_params(tmp, set_env, state="previous", meta={},
                                                      trusted_sha256=[s1, s2]), runner, False)
    assert not failed and result["rolled_back"] and result["manifest"]["sha256"] == s1
    assert (opp / LIB).read_text() == "lib 1\n"


def test_rollback_refuses_a_signed_kept_package_swapped_on_the_host(env):  # noqa: F811
    tmp, opp, set_env = env
    s1, s2 = two_releases(tmp, set_env)
    marker = tmp / "pwned"
    (tmp / f"state/packages/{s1}.run").write_text(f"#!/bin/bash\ntouch {marker}\necho SUCCESS\n")
    failed, result = fa_install.execute(module_params(tmp, set_env, state="previous", meta={},
                                                      trusted_sha256=[s1, s2]), runner, False)
    assert failed and "checksum mismatch" in result["msg"]
    assert not marker.exists() and (opp / LIB).read_text() == "lib 2\n"
