"""Build prerequisites of the simulated ops-transformer: CMake >= 3.16, requirements.txt, third-party sources.

Independent data (ops-transformer v9.0.1, mirror-cann/ops-transformer): ``CMakeLists.txt``
``cmake_minimum_required(VERSION 3.16)``; ``build.sh`` ``--cann_3rd_lib_path=<PATH>`` "default ./third_party";
the archive names and URLs of ``cmake/third_party/{json,eigen,abseil-cpp,ascend_protobuf,makeself-fetch}.cmake`` and
``opbase.cmake`` (typed below, not taken from the simulator's code); CMake's download-failure text as quoted in
OSGeo/gdal#11883 ("Each download failed!", status_code 6, "Couldn't resolve host name").
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile

import pytest
from sim_upstream_helpers import BUILD_CMD, build, cann_env, copy_tree, needs_tools

from ascend_sim.upstream import make_repo as mr

pytestmark = needs_tools

# <3rd>/pkg/<file> per the v9.0.1 cmake/third_party files, and the URL each downloads from
REAL_PKG = {
    "include.zip": "https://gitcode.com/cann-src-third-party/json/releases/download/v3.11.3/include.zip",
    "eigen-5.0.0.tar.gz": "https://gitcode.com/cann-src-third-party/eigen/releases/download/5.0.0-h0.trunk/eigen-5.0.0.tar.gz",
    "abseil-cpp-20230802.1.tar.gz":
        "https://gitcode.com/cann-src-third-party/abseil-cpp/releases/download/20230802.1/abseil-cpp-20230802.1.tar.gz",
    "protobuf-25.1.tar.gz": "https://gitcode.com/cann-src-third-party/protobuf/releases/download/v25.1/protobuf-25.1.tar.gz",
    "makeself-release-2.5.0-patch1.tar.gz": "https://gitcode.com/cann-src-third-party/makeself/releases/download/"
                                            "release-2.5.0-patch1.0/makeself-release-2.5.0-patch1.tar.gz",
}
GTEST = "googletest-1.14.0.tar.gz"  # gtest.cmake, only for ENABLE_TEST builds
OPBASE_GIT = "https://gitcode.com/cann/opbase.git"


@pytest.fixture
def src(tmp_path):
    return copy_tree(tmp_path / "ops-transformer")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return mr.make_third_party_bundle(tmp_path_factory.mktemp("bundle") / "third_party.tar.gz")


def host_env(tmp_path, fake_cann, network: str, proxy_url: str = "", **extra):
    host = tmp_path / "host.json"
    host.write_text(json.dumps({"model": "910B3", "network": network, "proxy_url": proxy_url}))
    return cann_env(fake_cann, ASCEND_SIM_HOST_JSON=str(host), **extra)


def extract(bundle, dest):
    dest.mkdir(parents=True)
    with tarfile.open(bundle) as tar:
        tar.extractall(dest, filter="data")
    return dest


def test_bundle_layout_is_what_cann_3rd_lib_path_expects(bundle, tmp_path):
    with tarfile.open(bundle) as tar:
        names = set(tar.getnames())
    assert {n.split("/")[0] for n in names} == {"pkg", "opbase"}
    assert {f"pkg/{f}" for f in REAL_PKG} | {f"pkg/{GTEST}"} <= names
    assert mr.make_third_party_bundle(tmp_path / "again.tar.gz").read_bytes() == bundle.read_bytes()


def test_offline_build_without_bundle_fails_like_cmake(src, tmp_path, fake_cann):
    proc = build(src, host_env(tmp_path, fake_cann, "offline"), *BUILD_CMD[2:])
    assert proc.returncode == 1
    # opbase comes first (CMakeLists.txt includes opbase.cmake before the others): FetchContent's git clone fails
    assert f"fatal: unable to access '{OPBASE_GIT}/': Could not resolve host: gitcode.com" in proc.stdout
    assert f"Failed to clone repository: '{OPBASE_GIT}'" in proc.stdout
    assert not (src / "build_out").exists()


def test_offline_download_failure_text(src, tmp_path, fake_cann):
    (src / "third_party" / "opbase").mkdir(parents=True)  # opbase present, json missing
    proc = build(src, host_env(tmp_path, fake_cann, "offline"), *BUILD_CMD[2:])
    assert proc.returncode == 1
    assert "Each download failed!" in proc.stdout
    assert f"error: downloading '{REAL_PKG['include.zip']}' failed" in proc.stdout
    assert "status_code: 6" in proc.stdout
    assert 'status_string: "Couldn\'t resolve host name"' in proc.stdout


def test_offline_build_with_bundle_succeeds(src, tmp_path, fake_cann, bundle):
    third = extract(bundle, tmp_path / "3rd")
    proc = build(src, host_env(tmp_path, fake_cann, "offline"), *BUILD_CMD[2:], f"--cann_3rd_lib_path={third}", "--jit")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list((src / "build_out").glob("*.run"))
    assert not (src / "third_party").exists()


def test_relative_cann_3rd_lib_path_is_resolved(src, tmp_path, fake_cann, bundle):
    extract(bundle, src / "deps")
    proc = build(src, host_env(tmp_path, fake_cann, "offline"), *BUILD_CMD[2:], "--cann_3rd_lib_path=deps", "--jit")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cann_3rd_lib_path_goes_through_realpath(src, tmp_path, fake_cann):
    """build.sh: CANN_3RD_LIB_PATH="$(realpath ...)" under set -e: a path whose parent is missing stops the build."""
    proc = build(src, host_env(tmp_path, fake_cann, "online"), *BUILD_CMD[2:], f"--cann_3rd_lib_path={tmp_path}/a/b")
    assert proc.returncode == 1
    assert "No such file or directory" in proc.stderr


def test_online_build_downloads_into_third_party(src, tmp_path, fake_cann):
    proc = build(src, host_env(tmp_path, fake_cann, "online"), *BUILD_CMD[2:], "--jit")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p.name for p in (src / "third_party" / "pkg").iterdir()} == set(REAL_PKG)
    assert (src / "third_party" / "opbase").is_dir()
    # a second build finds them: the network is no longer needed
    proc = build(src, host_env(tmp_path, fake_cann, "offline"), *BUILD_CMD[2:], "--jit")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "variables, ok",
    [
        ({}, False),                                                        # no proxy: direct access fails
        ({"https_proxy": "http://proxy.corp:3128"}, True),
        ({"HTTPS_PROXY": "http://proxy.corp:3128/"}, True),
        ({"http_proxy": "http://proxy.corp:3128"}, False),                 # libcurl: http_proxy is for http:// only
        ({"https_proxy": "http://other:3128"}, False),
        ({"https_proxy": "http://proxy.corp:3128", "no_proxy": "gitcode.com"}, False),
        ({"all_proxy": "http://proxy.corp:3128"}, True),
    ],
)
def test_proxy_only_network(src, tmp_path, fake_cann, variables, ok):
    env = host_env(tmp_path, fake_cann, "proxy", "http://proxy.corp:3128")
    for name in ("http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        env.pop(name, None)
    env.update(variables)
    proc = build(src, env, *BUILD_CMD[2:], "--jit")
    assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr


def _fake_cmake(tmp_path, version: str | None):
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    if version is not None:
        (bindir / "cmake").write_text(f"#!/bin/sh\necho 'cmake version {version}'\necho\n")
        (bindir / "cmake").chmod(0o755)
    return bindir


def _path_without_cmake(bindir):
    """PATH dirs that hold a cmake are replaced by one dir of links to all their other programs."""
    links = bindir.parent / "nocmake"
    links.mkdir(exist_ok=True)
    keep = []
    for d in os.environ["PATH"].split(":"):
        if not d or not os.path.isdir(d):
            continue
        if not os.path.exists(os.path.join(d, "cmake")):
            keep.append(d)
            continue
        for name in os.listdir(d):
            if name != "cmake" and not (links / name).exists():
                (links / name).symlink_to(os.path.join(d, name))
    return ":".join([str(bindir), *keep, str(links)])


def test_old_cmake_fails_with_cmakes_text(src, tmp_path, fake_cann):
    bindir = _fake_cmake(tmp_path, "3.13.4")
    env = cann_env(fake_cann)
    env["PATH"] = f"{fake_cann / 'compiler' / 'ccec_compiler' / 'bin'}:{_path_without_cmake(bindir)}"
    proc = build(src, env, *BUILD_CMD[2:])
    assert proc.returncode == 1
    assert "CMake 3.16 or higher is required.  You are running version 3.13.4" in proc.stdout


def test_missing_cmake_fails(src, tmp_path, fake_cann):
    bindir = _fake_cmake(tmp_path, None)
    env = cann_env(fake_cann)
    env["PATH"] = f"{fake_cann / 'compiler' / 'ccec_compiler' / 'bin'}:{_path_without_cmake(bindir)}"
    proc = build(src, env, *BUILD_CMD[2:])
    assert proc.returncode == 127
    assert "cmake: command not found" in proc.stderr


def test_missing_python_requirement_fails_at_import(src, tmp_path, fake_cann):
    """requirements.txt (pyyaml): a python3 without it fails with Python's own ModuleNotFoundError."""
    blocker = tmp_path / "noyaml"
    blocker.mkdir()
    (blocker / "yaml.py").write_text("raise ModuleNotFoundError(\"No module named 'yaml'\", name='yaml')\n")
    env = cann_env(fake_cann, PYTHONPATH=str(blocker))
    proc = build(src, env, *BUILD_CMD[2:])
    assert proc.returncode == 1
    assert "ModuleNotFoundError: No module named 'yaml'" in proc.stderr
    assert "pyyaml" in (src / "requirements.txt").read_text().split()


def test_third_party_is_not_part_of_the_repository(tmp_path):
    files = mr.release_files("v9.0.1")
    assert not [f for f in files if f.startswith("third_party/")]
    assert "/third_party/" in files[".gitignore"].decode()
    assert "requirements.txt" in files
    assert subprocess.run(["git", "--version"], capture_output=True).returncode == 0
