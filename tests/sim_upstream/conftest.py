"""Fixtures for the simulated upstream tests (no containers); the helpers live in sim_upstream_helpers.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from sim_upstream_helpers import (
    ARCH,
    BUILD_CMD,
    NODE,
    RUN_NAME,
    StandIn,
    build,
    cann_env,
    copy_tree,
    have_tools,
    install,
)


@pytest.fixture(scope="session")
def fake_cann(tmp_path_factory) -> Path:
    """<tmp>/cann: compiler/ccec_compiler/bin/bisheng, compiler/version.info, lib64/libascendcl.so, opp/."""
    if not have_tools():
        pytest.skip("needs gcc, make, tar, gzip, sha256sum, git, cmake")
    cann = tmp_path_factory.mktemp("cann") / "cann-8.5.0"
    bindir = cann / "compiler" / "ccec_compiler" / "bin"
    bindir.mkdir(parents=True)
    shutil.copy2(NODE / "cann" / "bisheng", bindir / "bisheng")
    (bindir / "bisheng").chmod(0o755)
    (cann / "compiler" / "version.info").write_text("Version=8.5.0.2.220\n")
    (cann / "lib64").mkdir()
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O2", "-o", str(cann / "lib64" / "libascendcl.so"), str(NODE / "cann" / "libascendcl.c")],
        check=True,
    )
    (cann / "opp" / "vendors").mkdir(parents=True)
    return cann


@pytest.fixture(scope="session")
def built_run(tmp_path_factory, fake_cann) -> Path:
    """The .run of the documented build command (-j2), built once per session."""
    src = copy_tree(tmp_path_factory.mktemp("build") / "ops-transformer")
    proc = subprocess.run([*BUILD_CMD, "-j2"], cwd=src, env=cann_env(fake_cann), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = src / "build_out" / RUN_NAME
    assert run.is_file()
    return run


@pytest.fixture(scope="session")
def built_jit_run(tmp_path_factory, fake_cann) -> Path:
    """A --jit package (generic kernel only)."""
    src = copy_tree(tmp_path_factory.mktemp("build_jit") / "ops-transformer")
    proc = build(src, cann_env(fake_cann), "--jit", "--soc=ascend910b", "--ops=flash_attention_score", "--vendor_name=jit", "-j2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return src / "build_out" / f"cann-ops-transformer-jit_linux-{ARCH}.run"


@pytest.fixture(scope="session")
def installed_opp(tmp_path_factory, fake_cann, built_run) -> Path:
    """An ASCEND_OPP_PATH with the package installed the default way (vendors/config.ini)."""
    opp = tmp_path_factory.mktemp("opp_installed") / "opp"
    opp.mkdir()
    proc = install(built_run, cann_env(fake_cann, ASCEND_OPP_PATH=str(opp)), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return opp


@pytest.fixture
def standin(tmp_path, fake_cann, installed_opp) -> StandIn:
    return StandIn(tmp_path, fake_cann, installed_opp)
