"""The simulator's package-size knob: host.json "package_pad_mib" makes the build add an incompressible kernel binary.

Independent data: the size the test asks for (N MiB = N * 2**20 bytes), gzip's inability to shrink random bytes (the
.run grows by at least that much), sha256 computed here of the installed file, and the unpadded build of conftest.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sim_upstream_helpers import BUILD_CMD, RUN_NAME, TREE, cann_env, copy_tree, install, needs_tools, write_host_json

pytestmark = needs_tools

MIB = 2**20
GEN = TREE / "scripts" / "util" / "gen_kernel_config.py"
SPEC = TREE / "attention" / "flash_attention_score" / "op_host" / "flash_attention_score_binary.yaml"
PAD = "FlashAttentionScore_sim_pad"


@pytest.fixture(scope="module")
def padded_run(tmp_path_factory, fake_cann) -> Path:
    root = tmp_path_factory.mktemp("padded")
    host = write_host_json(root / "host.json", package_pad_mib=2)
    src = copy_tree(root / "ops-transformer")
    proc = subprocess.run([*BUILD_CMD, "-j2"], cwd=src, env=cann_env(fake_cann, ASCEND_SIM_HOST_JSON=str(host)),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return src / "build_out" / RUN_NAME


def test_padded_package_grows_by_the_pad_and_installs(tmp_path, fake_cann, built_run, padded_run):
    assert padded_run.stat().st_size - built_run.stat().st_size >= 2 * MIB
    assert padded_run.stat().st_size - built_run.stat().st_size < 2 * MIB + 64 * 1024
    opp = tmp_path / "opp"
    opp.mkdir()
    proc = install(padded_run, cann_env(fake_cann, ASCEND_OPP_PATH=str(opp)), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kernel = opp / "vendors" / "ascendfa_transformer" / "op_impl" / "ai_core" / "tbe" / "kernel"
    pad = kernel / "ascend910b" / "flash_attention_score" / f"{PAD}.o"
    data = pad.read_bytes()
    assert data[:4] == b"\x7fELF"                     # a kernel binary like the others, with the pad after it
    assert 2 * MIB < len(data) < 2 * MIB + 1024 * 1024
    meta = json.loads(pad.with_suffix(".json").read_text())
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    config = json.loads((kernel / "config" / "ascend910b" / "flash_attention_score.json").read_text())
    listed = [b["binInfo"]["jsonFilePath"] for b in config["FlashAttentionScore"]["binList"]]
    assert f"ascend910b/flash_attention_score/{PAD}.json" in listed


def _layout(tmp_path: Path, name: str, host: Path | None) -> subprocess.CompletedProcess:
    obj = tmp_path / "fa_kernel_d16_bc32.o"
    if not obj.exists():
        obj.write_bytes(b"\x7fELF" + bytes(60))
    env = {"PATH": "/usr/bin:/bin", **({"ASCEND_SIM_HOST_JSON": str(host)} if host else
                                        {"ASCEND_SIM_HOST_JSON": str(tmp_path / "absent.json")})}
    return subprocess.run([sys.executable, str(GEN), "layout", str(SPEC), "ascend910b", str(tmp_path / name), str(obj)],
                          env=env, capture_output=True, text=True, timeout=60)


def test_pad_is_reproducible_and_follows_the_size(tmp_path):
    one = write_host_json(tmp_path / "one.json", package_pad_mib=1)
    two = write_host_json(tmp_path / "two.json", package_pad_mib=2)
    for name, host in (("a", one), ("b", one), ("c", two), ("none", None)):
        proc = _layout(tmp_path, name, host)
        assert proc.returncode == 0, proc.stderr
    pad = Path("ascend910b") / "flash_attention_score" / f"{PAD}.o"
    a, b, c = ((tmp_path / d / pad).read_bytes() for d in "abc")
    assert a == b and len(a) == 64 + MIB and len(c) == 64 + 2 * MIB and c[:64 + MIB] != a
    assert not (tmp_path / "none" / pad).exists()


@pytest.mark.parametrize("bad", [-1, "2", 1025, True])
def test_bad_pad_stops_the_build_naming_it(tmp_path, bad):
    host = write_host_json(tmp_path / "host.json", package_pad_mib=bad)
    proc = _layout(tmp_path, "x", host)
    assert proc.returncode != 0
    assert "package_pad_mib" in proc.stderr and str(host) in proc.stderr
