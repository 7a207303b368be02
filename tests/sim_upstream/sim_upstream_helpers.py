"""Helpers for the simulated upstream tests (no containers): a fake CANN directory, a build of the simulated
ops-transformer, an installed package and a runner for python snippets that import the torch_npu stand-in.

Builds always happen in copies of ``ascend_sim/upstream/tree`` under tmp dirs, never in the source tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREE = ROOT / "ascend_sim" / "upstream" / "tree"
NODE = ROOT / "ascend_sim" / "node"
ARCH = os.uname().machine
VENDOR = "ascendfa"
RUN_NAME = f"cann-ops-transformer-{VENDOR}_linux-{ARCH}.run"
BUILD_CMD = ["bash", "build.sh", "--pkg", "--soc=ascend910b", "--ops=flash_attention_score", f"--vendor_name={VENDOR}"]

# variables of a sourced CANN environment that must not leak from the machine running the tests
_SCRUB = (
    "ASCEND_HOME_PATH",
    "ASCEND_OPP_PATH",
    "ASCEND_CUSTOM_OPP_PATH",
    "ASCEND_TOOLKIT_HOME",
    "ASCEND_RT_VISIBLE_DEVICES",
    "ASCEND_SIM_HOST_JSON",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(extra)
    return env


TOOLS = ("gcc", "make", "tar", "gzip", "sha256sum", "git", "cmake")


def have_tools() -> bool:
    """The build's tools; cmake because build.sh checks CMake >= 3.16 as the real build does."""
    return all(shutil.which(t) for t in TOOLS)


needs_tools = pytest.mark.skipif(not have_tools(), reason=f"needs {', '.join(TOOLS)}")


def cann_env(cann: Path, **extra: str) -> dict[str, str]:
    """Environment as after ``source <cann>/set_env.sh`` (the parts the build and installer use)."""
    env = clean_env(
        ASCEND_HOME_PATH=str(cann),
        ASCEND_TOOLKIT_HOME=str(cann),
        ASCEND_OPP_PATH=str(cann / "opp"),
        PATH=f"{cann / 'compiler' / 'ccec_compiler' / 'bin'}:{os.environ['PATH']}",
        LD_LIBRARY_PATH=str(cann / "lib64"),
    )
    env.update(extra)
    return env


def copy_tree(dest: Path) -> Path:
    shutil.copytree(TREE, dest, ignore=shutil.ignore_patterns("build", "build_out", "__pycache__"))
    return dest


def build(src: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "build.sh", *args], cwd=src, env=env, capture_output=True, text=True, timeout=300)


def install(run: Path, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(run), *flags], env=env, capture_output=True, text=True, timeout=120)


def write_host_json(path: Path, **fields) -> Path:
    host = {
        "model": "910B3",
        "npu_count": 8,
        "driver_version": "25.5.0",
        "cann_version": "8.5.0",
        "torch_npu_version": "2.9.0",
        "health": {},
        "hbm_used_mb": {},
        "faults": [],
    }
    host.update(fields)
    path.write_text(json.dumps(host))
    return path


class StandIn:
    """Runs python snippets that import the torch_npu stand-in, in a fresh process each."""

    def __init__(self, root: Path, cann: Path, opp: Path | None):
        self.root = root
        self.cann = cann
        self.opp = opp
        self.site = root / "site"
        self.site.mkdir(parents=True, exist_ok=True)
        self.set_version("2.9.0")
        self.host_json = write_host_json(root / "host.json")

    def set_version(self, version: str) -> None:
        for old in self.site.glob("torch_npu-*.dist-info"):
            shutil.rmtree(old)
        info = self.site / f"torch_npu-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: torch_npu\nVersion: {version}\n")

    def env(self, ld_library_path: bool = True, **extra: str) -> dict[str, str]:
        env = clean_env(
            PYTHONPATH=f"{self.site}:{NODE}",
            ASCEND_SIM_HOST_JSON=str(self.host_json),
            ASCEND_HOME_PATH=str(self.cann),
        )
        if self.opp is not None:
            env["ASCEND_OPP_PATH"] = str(self.opp)
        if ld_library_path:
            env["LD_LIBRARY_PATH"] = str(self.cann / "lib64")
        env.update(extra)
        return env

    def run(self, code: str, ld_library_path: bool = True, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code],
            env=self.env(ld_library_path, **extra),
            capture_output=True,
            text=True,
            timeout=300,
        )

    def json(self, code: str, **extra: str):
        """Run ``code`` (which prints one JSON document last) and return it; fails on a non-zero exit."""
        proc = self.run(code, **extra)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])
