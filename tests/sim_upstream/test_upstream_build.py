"""build.sh of the simulated ops-transformer: the real command-line rules, the CANN environment, real compilation."""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest
from sim_upstream_helpers import ARCH, BUILD_CMD, RUN_NAME, build, cann_env, clean_env, copy_tree, needs_tools

pytestmark = needs_tools


@pytest.fixture
def src(tmp_path):
    return copy_tree(tmp_path / "ops-transformer")


@pytest.mark.parametrize(
    "args",
    [
        ["--pkg", "--soc", "Ascend910", "--ops=flash_attention_score"],  # the blog: space-separated --soc
        ["--pkg", "--soc=ascend910b", "--typ", "release", "--ops=flash_attention_score"],  # the blog's --typ
        ["--pkg", "--soc=ascend910b", "--typ=release", "--ops=flash_attention_score"],
        ["--pkg", "--soc=ascend910b", "--ops=flash_attention_score", "-j"],
        ["--pkg", "--soc=ascend910b", "--ops=flash_attention_score", "-O4"],
        ["--pkg", "--soc=ascend910b", "--ops", "flash_attention_score"],
    ],
)
def test_unknown_arguments_print_help_and_exit_1(src, fake_cann, args):
    proc = build(src, cann_env(fake_cann), *args)
    assert proc.returncode == 1
    assert "Usage: bash build.sh" in proc.stdout
    assert not (src / "build_out").exists()


@pytest.mark.parametrize("soc", ["Ascend910B2", "ascend910b3", "Ascend910", "ascend910", "ascend910_95", "910b"])
def test_soc_must_equal_a_family_exactly(src, fake_cann, soc):
    proc = build(src, cann_env(fake_cann), "--pkg", f"--soc={soc}", "--ops=flash_attention_score")
    assert proc.returncode == 1
    assert f"[ERROR] The input soc {soc} is not supported." in proc.stdout


def test_soc_is_lower_cased(src, fake_cann):
    proc = build(src, cann_env(fake_cann), "--pkg", "--soc=ASCEND910B", "--ops=flash_attention_score", "--jit")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "soc_version=ascend910b" in _version_info(src / "build_out" / f"cann-ops-transformer-custom_linux-{ARCH}.run")


def test_unknown_op_is_rejected(src, fake_cann):
    proc = build(src, cann_env(fake_cann), "--pkg", "--soc=ascend910b", "--ops=flash_attention_v2")
    assert proc.returncode == 1
    assert "op flash_attention_v2 not found" in proc.stdout


def test_fa_is_not_built_for_310p(src, fake_cann):
    proc = build(src, cann_env(fake_cann), "--pkg", "--soc=ascend310p", "--ops=flash_attention_score")
    assert proc.returncode == 1
    assert "does not support soc ascend310p" in proc.stdout
    assert "[ERROR] no operator to build for soc ascend310p" in proc.stdout


def test_needs_bisheng_on_path(src, fake_cann):
    env = cann_env(fake_cann, PATH=os.environ["PATH"])  # CANN home set, but its bin dirs not on PATH
    proc = build(src, env, *BUILD_CMD[2:])
    assert proc.returncode == 1
    assert "bisheng compilation tool not found" in proc.stdout


def test_needs_the_cann_environment(src):
    proc = build(src, clean_env(), *BUILD_CMD[2:])
    assert proc.returncode == 1
    assert "ASCEND_HOME_PATH is not set" in proc.stdout


def test_builtin_package_is_not_simulated(src, fake_cann):
    proc = build(src, cann_env(fake_cann), "--pkg", "--soc=ascend910b")
    assert proc.returncode == 1
    assert "--vendor_name" in proc.stdout


def test_help_exits_0(src):
    proc = build(src, clean_env(), "--help")
    assert proc.returncode == 0
    assert "--vendor_name=name" in proc.stdout


def _members(run) -> list[str]:
    proc = subprocess.run([str(run), "--list"], capture_output=True, text=True, check=True)
    return [line.split()[-1] for line in proc.stdout.splitlines()]


def _version_info(run) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(run), f"--extract={tmp}", "--quiet"], check=True, capture_output=True)
        (info,) = Path(tmp).glob("packages/vendors/*/version.info")
        return info.read_text()


def test_real_command_builds_the_package(built_run):
    assert built_run.name == RUN_NAME
    assert built_run.parent.name == "build_out"
    members = _members(built_run)
    vendor = "./packages/vendors/ascendfa_transformer"
    for path in (
        f"{vendor}/op_api/lib/libcust_opapi.so",
        f"{vendor}/op_impl/ai_core/tbe/op_tiling/lib/linux/{ARCH}/libcust_opmaster_rt2.0.so",
        f"{vendor}/op_proto/lib/linux/{ARCH}/libcust_opsproto_rt2.0.so",
        f"{vendor}/op_api/include/aclnnop/aclnn_flash_attention_score.h",
        f"{vendor}/version.info",
        "./install.sh",
        "./help.info",
    ):
        assert path in members
    info = _version_info(built_run)
    assert "custom_opp_compiler_version=8.5.0.2.220" in info
    assert "ops_transformer_version=9.0.1" in info
    assert "kernel_binaries=true" in info


def test_build_compiles_and_is_reproducible(src, fake_cann, built_run):
    proc = build(src, cann_env(fake_cann), *BUILD_CMD[2:], "-j2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f'Self-extractable archive "{RUN_NAME}" successfully created.' in proc.stdout
    assert "Building C object build/gen/kernels/fa_kernel_d128_bc64.o" in proc.stdout
    vendor = src / "build" / "package" / "packages" / "vendors" / "ascendfa_transformer"
    lib = vendor / "op_api" / "lib" / "libcust_opapi.so"
    assert lib.read_bytes()[:4] == b"\x7fELF"
    nm = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True)
    if nm.returncode == 0:
        for sym in ("aclnnFlashAttentionScoreGetWorkspaceSize", "aclnnFlashAttentionScore", "ascendfa_sim_package_soc"):
            assert sym in nm.stdout
        assert "fa_kernel_d128_bc64" not in nm.stdout  # kernel variants stay internal
    # same sources, same compiler: byte-identical package (the artifact cache relies on stable builds)
    assert (src / "build_out" / RUN_NAME).read_bytes() == built_run.read_bytes()


def test_jit_package_has_only_the_generic_kernel(built_jit_run):
    assert "kernel_binaries=false" in _version_info(built_jit_run)


def test_payload_is_a_gzip_tar_after_the_header(built_run, tmp_path):
    data = built_run.read_bytes()
    lines = int(next(line for line in data.split(b"\n") if line.startswith(b"HEADER_LINES=")).split(b"=")[1])
    payload = b"\n".join(data.split(b"\n")[lines:])
    (tmp_path / "p.tgz").write_bytes(payload)
    with tarfile.open(tmp_path / "p.tgz") as tar:
        assert "./install.sh" in tar.getnames()


def test_jobs_scale_the_build(tmp_path, fake_cann):
    """-j2 against -j1 on this machine; printed, not asserted (timing depends on the host)."""
    times = {}
    for jobs in (1, 2):
        src = copy_tree(tmp_path / f"j{jobs}")
        start = time.perf_counter()
        proc = build(src, cann_env(fake_cann), *BUILD_CMD[2:], f"-j{jobs}")
        times[jobs] = time.perf_counter() - start
        assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"\nbuild -j1 {times[1]:.2f}s, -j2 {times[2]:.2f}s, ratio j1/j2 {times[1] / times[2]:.2f} ({os.cpu_count()} CPUs)")


def test_jobs_are_capped(src, fake_cann):
    proc = build(src, cann_env(fake_cann, MAX_JOBS="1"), *BUILD_CMD[2:], "-j64")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "make -j1" in proc.stdout
