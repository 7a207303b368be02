"""SIMULATOR tests: the ``wrong-results`` fault (a host whose FlashAttention numbers go wrong for one package
version only, as after a bad upgrade). Pure parts without containers; the numeric check builds the simulated
package and runs the torch_npu stand-in against it (needs gcc, make, git; no containers)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ascend_sim import fleet

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "sim_upstream"))  # sim_upstream_helpers (plain module, no fixtures)

# The stand-in's host module is stdlib-only; load it by path (importing the torch_npu package needs libascendcl.so).
_spec = importlib.util.spec_from_file_location("_sim_torch_npu_host", ROOT / "ascend_sim/node/torch_npu/_host.py")
_host = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_host)


def _config() -> dict:
    return {"model": "910B3", "npu_count": 1, "faults": []}


@pytest.mark.parametrize(
    ("faults", "version", "wrong"),
    [
        ([], "9.0.1", False),
        (["wrong-results:9.0.1"], "9.0.1", True),
        (["wrong-results:9.0.1"], "9.0.0", False),
        (["wrong-results:v9.0.1"], "9.0.1", True),
        (["no-cann", "wrong-results"], "9.0.0", True),
        (["wrong-results:9.0.1"], "", False),
    ],
)
def test_wrong_results_matches_the_package_version(faults: list, version: str, wrong: bool) -> None:
    assert _host.wrong_results(version, {"faults": faults}) is wrong


def test_wrong_results_reads_host_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host_json = tmp_path / "host.json"
    host_json.write_text(json.dumps({"model": "910B3", "faults": ["wrong-results:9.0.1"]}))
    monkeypatch.setenv("ASCEND_SIM_HOST_JSON", str(host_json))
    assert _host.wrong_results("9.0.1") and not _host.wrong_results("9.0.0")


def test_fault_wrong_results_in_host_json() -> None:
    config, actions = fleet.apply_fault(_config(), "wrong-results", version="v9.0.1")
    assert actions == [] and config["faults"] == ["wrong-results:9.0.1"]
    config, _ = fleet.apply_fault(config, "wrong-results", version="9.0.1")
    assert config["faults"] == ["wrong-results:9.0.1"]
    config, _ = fleet.apply_fault(config, "wrong-results")
    assert config["faults"] == ["wrong-results", "wrong-results:9.0.1"]
    assert config["fault_log"][0] == {"fault": "wrong-results", "version": "v9.0.1"}
    config, _ = fleet.apply_fault(config, "clear")
    assert config["faults"] == []


def test_cli_accepts_wrong_results_with_a_version() -> None:
    args = fleet._parser().parse_args(["inject-fault", "/tmp/f", "2", "wrong-results", "--version", "9.0.1"])
    assert args.fault == "wrong-results" and fleet._cli_fault_kw(args) == {"version": "9.0.1"}


# ------------------------------------------------------------------------------ numbers from a built package

RUN_CHECK = r"""
import json, torch, torch_npu
import torch.nn.functional as F
from torch_npu import _aclnn
torch.manual_seed(0)
q, k, v = torch.randn(1, 2, 32, 64), torch.randn(1, 2, 32, 64), torch.randn(1, 2, 32, 64)
out = torch_npu.npu_fusion_attention(q, k, v, 2, "BNSD", scale=0.125)[0]
ref = F.scaled_dot_product_attention(q, k, v, scale=0.125)
pkg = _aclnn.find_package("aclnnFlashAttentionScore")
print(json.dumps({"err": (out - ref).abs().max().item(), "version": pkg.version}))
"""


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    helpers = pytest.importorskip("sim_upstream_helpers")
    if not helpers.have_tools():
        pytest.skip("needs gcc, make, tar, gzip, sha256sum, git")
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("wrong_results")
    cann = root / "cann-8.5.0"
    bindir = cann / "compiler" / "ccec_compiler" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "bisheng").write_bytes((helpers.NODE / "cann" / "bisheng").read_bytes())
    (bindir / "bisheng").chmod(0o755)
    (cann / "compiler" / "version.info").write_text("Version=8.5.0.2.220\n")
    (cann / "lib64").mkdir()
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-O2",
            "-o",
            str(cann / "lib64" / "libascendcl.so"),
            str(helpers.NODE / "cann" / "libascendcl.c"),
        ],
        check=True,
    )
    src = helpers.copy_tree(root / "ops-transformer")
    proc = subprocess.run(
        [*helpers.BUILD_CMD, "-j2"], cwd=src, env=helpers.cann_env(cann), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    opp = root / "opp"
    (opp / "vendors").mkdir(parents=True)
    proc = helpers.install(src / "build_out" / helpers.RUN_NAME, helpers.cann_env(cann, ASCEND_OPP_PATH=str(opp)), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return helpers.StandIn(root / "standin", cann, opp)


def test_only_the_named_version_computes_wrong_numbers(standin) -> None:
    clean = standin.json(RUN_CHECK)
    version = clean["version"]
    assert version and clean["err"] < 1e-4
    standin.host_json.write_text(
        json.dumps({**json.loads(standin.host_json.read_text()), "faults": [f"wrong-results:{version}"]})
    )
    assert standin.json(RUN_CHECK)["err"] > 0.2
    standin.host_json.write_text(json.dumps({**json.loads(standin.host_json.read_text()), "faults": ["wrong-results:0.0.1"]}))
    assert standin.json(RUN_CHECK)["err"] < 1e-4
