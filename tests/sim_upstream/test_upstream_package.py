"""The self-extracting .run and its installer: CANN's flags, targets, config.ini, set_env.bash, checksum.

Expected behaviour is ops-transformer v9.0.1 ``cmake/scripts/custom/install.sh`` (mirror-cann/ops-transformer at tag
v9.0.1), quoted in the comments next to each assertion.
"""

from __future__ import annotations

import os
import stat
import subprocess

import pytest
from sim_upstream_helpers import ARCH, cann_env, install, needs_tools

pytestmark = needs_tools

VENDOR_DIR = "ascendfa_transformer"
LIBS = (
    "op_api/lib/libcust_opapi.so",
    f"op_impl/ai_core/tbe/op_tiling/lib/linux/{ARCH}/libcust_opmaster_rt2.0.so",
    f"op_proto/lib/linux/{ARCH}/libcust_opsproto_rt2.0.so",
)


def _assert_layout(vendor):
    for lib in LIBS:
        assert (vendor / lib).read_bytes()[:4] == b"\x7fELF", lib
    assert (vendor / "op_api" / "include" / "aclnnop" / "aclnn_flash_attention_score.h").is_file()
    assert "custom_opp_compiler_version=8.5.0.2.220" in (vendor / "version.info").read_text()


def test_install_path_writes_set_env_bash(tmp_path, fake_cann, built_run):
    target = tmp_path / "custom_opp"
    proc = install(built_run, cann_env(fake_cann), "--quiet", f"--install-path={target}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "SUCCESS"
    vendor = target / "vendors" / VENDOR_DIR
    _assert_layout(vendor)
    set_env = (vendor / "bin" / "set_env.bash").read_text()
    assert f"export ASCEND_CUSTOM_OPP_PATH={vendor}:${{ASCEND_CUSTOM_OPP_PATH}}" in set_env
    assert f"export LD_LIBRARY_PATH={vendor}/op_api/lib/:${{LD_LIBRARY_PATH}}" in set_env
    assert not (target / "vendors" / "config.ini").exists()
    assert not (fake_cann / "opp" / "vendors" / VENDOR_DIR).exists()
    # sourcing it really sets the variables
    out = subprocess.run(
        ["bash", "-c", f"source {vendor}/bin/set_env.bash && echo $ASCEND_CUSTOM_OPP_PATH"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    ).stdout.strip()
    assert out == f"{vendor}:"


def test_default_install_goes_to_ascend_opp_path_first_in_load_priority(tmp_path, fake_cann, built_run):
    opp = tmp_path / "opp"
    (opp / "vendors").mkdir(parents=True)
    (opp / "vendors" / "config.ini").write_text("load_priority=customize,ascendfa_transformer,other\n")
    (opp / "vendors" / "config.ini").chmod(0o600)
    proc = install(built_run, cann_env(fake_cann, ASCEND_OPP_PATH=str(opp)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout
    _assert_layout(opp / "vendors" / VENDOR_DIR)
    config = opp / "vendors" / "config.ini"
    assert config.read_text() == "load_priority=ascendfa_transformer,customize,other\n"
    # the real script chmods config.ini only when it creates it (`touch; chmod 640`): an existing file keeps its mode
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert not (opp / "vendors" / VENDOR_DIR / "bin").exists()
    # a second install replaces the files and keeps a single entry
    proc = install(built_run, cann_env(fake_cann, ASCEND_OPP_PATH=str(opp)), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert config.read_text() == "load_priority=ascendfa_transformer,customize,other\n"


@pytest.mark.parametrize("for_all, config_mode", [(False, 0o640), (True, 0o755)])
def test_new_config_ini(tmp_path, fake_cann, built_run, for_all, config_mode):
    """A new config.ini: `touch; chmod 640; echo load_priority=<vendor>`; --install-for-all: `chmod 755`."""
    opp = tmp_path / "opp"
    opp.mkdir()
    flags = ["--quiet", "--install-for-all"] if for_all else ["--quiet"]
    proc = install(built_run, cann_env(fake_cann, ASCEND_OPP_PATH=str(opp)), *flags)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = opp / "vendors" / "config.ini"
    assert config.read_text() == "load_priority=ascendfa_transformer\n"
    assert stat.S_IMODE(config.stat().st_mode) == config_mode


def test_config_ini_without_load_priority_is_left_alone(tmp_path, fake_cann, built_run):
    """The real script only rewrites a load_priority line it found: the vendor is not registered."""
    opp = tmp_path / "opp"
    (opp / "vendors").mkdir(parents=True)
    (opp / "vendors" / "config.ini").write_text("# vendors\n")
    proc = install(built_run, cann_env(fake_cann, ASCEND_OPP_PATH=str(opp)), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (opp / "vendors" / "config.ini").read_text() == "# vendors\n"


@pytest.mark.parametrize("umask, dir_mode, file_mode", [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_tree_modes_follow_the_installers_umask(tmp_path, fake_cann, built_run, umask, dir_mode, file_mode):
    """No chmod on the vendor tree (real script: mkdir -p and cp -rf only): archive modes masked by the umask.

    The archive holds cmake install() modes: directories 755, files 644, libraries 755."""
    opp = tmp_path / "opp"
    opp.mkdir()
    env = cann_env(fake_cann, ASCEND_OPP_PATH=str(opp))
    proc = subprocess.run(["bash", "-c", f"umask {umask:03o} && exec \"$0\" --quiet", str(built_run)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    vendor = opp / "vendors" / VENDOR_DIR
    assert stat.S_IMODE((vendor / "op_api" / "lib").stat().st_mode) == dir_mode
    assert stat.S_IMODE((vendor / "version.info").stat().st_mode) == file_mode
    assert stat.S_IMODE((vendor / "op_api" / "lib" / "libcust_opapi.so").stat().st_mode) == dir_mode
    assert stat.S_IMODE((opp / "vendors" / "config.ini").stat().st_mode) == 0o640


def test_install_path_is_created_without_parents(tmp_path, fake_cann, built_run):
    """`mkdir ${INSTALL_PATH}` (no -p): a missing parent fails with the real text."""
    target = tmp_path / "missing" / "custom_opp"
    proc = install(built_run, cann_env(fake_cann), "--quiet", f"--install-path={target}")
    assert proc.returncode == 1
    assert f"[ERROR] create {target} failed" in proc.stdout


def test_relative_install_path_fails(tmp_path, fake_cann, built_run):
    proc = install(built_run, cann_env(fake_cann), "--quiet", "--install-path=relative/opp")
    assert proc.returncode == 1
    assert "[ERROR] use absolute path for --install-path argument" in proc.stdout


def test_missing_ascend_opp_path_fails(fake_cann, built_run):
    env = cann_env(fake_cann)
    del env["ASCEND_OPP_PATH"]
    proc = install(built_run, env, "--quiet")
    assert proc.returncode == 1
    assert "[ERROR] env ASCEND_OPP_PATH no exist" in proc.stdout


def test_ascend_custom_opp_path_is_the_target(tmp_path, fake_cann, built_run):
    custom = tmp_path / "custom"
    proc = install(built_run, cann_env(fake_cann, ASCEND_CUSTOM_OPP_PATH=str(custom)), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _assert_layout(custom / "vendors" / VENDOR_DIR)
    assert (custom / "vendors" / "config.ini").read_text() == "load_priority=ascendfa_transformer\n"


def test_ascend_custom_opp_path_with_colon_fails(tmp_path, fake_cann, built_run):
    env = cann_env(fake_cann, ASCEND_CUSTOM_OPP_PATH=f"{tmp_path}/a:{tmp_path}/b")
    proc = install(built_run, env, "--quiet")
    assert proc.returncode == 1
    assert "is set and has multiple path in it (colon inside)" in proc.stdout


@pytest.mark.parametrize("flag", ["--force", "--full", "--upgrade"])
def test_the_run_rejects_options_help_info_does_not_name(tmp_path, fake_cann, built_run, flag):
    """The .run accepts only the options of help.info (--install-path, --install-for-all) besides its own; any other
    prints the help and exits 1 (Huawei's makeself header, Script_Args_Check). There is no --force."""
    target = tmp_path / "x"
    proc = install(built_run, cann_env(fake_cann), flag, "--quiet", f"--install-path={target}")
    assert proc.returncode == 1
    assert "--install-for-all" in proc.stdout
    assert not target.exists()


def test_installer_skips_unknown_options_and_has_no_library_check(tmp_path, fake_cann, built_run):
    """install.sh itself skips any other --* (`--*) shift`) and validates no library (v9.0.1 has no ELF check)."""
    src = tmp_path / "x"
    subprocess.run([str(built_run), f"--extract={src}", "--quiet"], check=True)
    lib = src / "packages" / "vendors" / VENDOR_DIR / "op_api" / "lib" / "libcust_opapi.so"
    lib.write_bytes(b"not an ELF file")
    opp = tmp_path / "opp"
    opp.mkdir()
    env = cann_env(fake_cann, ASCEND_OPP_PATH=str(opp))
    proc = subprocess.run(["bash", "./install.sh", "--force", "--quiet"], cwd=src, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (opp / "vendors" / VENDOR_DIR / "op_api" / "lib" / "libcust_opapi.so").read_bytes() == b"not an ELF file"
    assert "validat" not in proc.stdout.lower()


def test_check_list_help_extract(tmp_path, built_run):
    check = subprocess.run([str(built_run), "--check"], capture_output=True, text=True)
    assert check.returncode == 0
    assert "SHA256 checksums are OK" in check.stdout
    listing = subprocess.run([str(built_run), "--list"], capture_output=True, text=True, check=True).stdout
    assert "./packages/vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so" in listing
    helptext = subprocess.run([str(built_run), "--help"], capture_output=True, text=True, check=True).stdout
    assert "--install-path " in helptext and "--install-for-all " in helptext  # the real help.info lines
    dest = tmp_path / "extracted"
    proc = subprocess.run([str(built_run), f"--extract={dest}", "--quiet", "--install-path=/nowhere"])
    assert proc.returncode == 0
    assert (dest / "install.sh").is_file()
    assert not os.path.exists("/nowhere")
    # runs with `bash x.run` as well as `./x.run`
    assert subprocess.run(["bash", str(built_run), "--check"], capture_output=True).returncode == 0


@pytest.mark.parametrize("where", ["payload", "truncated"])
def test_tampered_run_fails_check_and_install(tmp_path, fake_cann, built_run, where):
    bad = tmp_path / built_run.name
    data = bytearray(built_run.read_bytes())
    if where == "payload":
        data[-100] ^= 0xFF
    else:
        data = data[:-500]
    bad.write_bytes(bytes(data))
    bad.chmod(0o755)
    check = subprocess.run([str(bad), "--check"], capture_output=True, text=True)
    assert check.returncode == 2
    assert "Error in SHA256 checksums" in check.stderr
    opp = tmp_path / "opp"
    opp.mkdir()
    proc = install(bad, cann_env(fake_cann, ASCEND_OPP_PATH=str(opp)), "--quiet")
    assert proc.returncode == 2
    assert not (opp / "vendors").exists()
