"""ascend_facts on fake Ascend trees (both CANN layouts) with recorded npu-smi outputs; the preflight environment
checks it runs in the same call on a fake installed package (a real fresh login shell, a real dlopen)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.ascend.fa.plugins.module_utils import ascend_facts_lib as ascend_facts  # the module is a thin wrapper
from ansible_collections.ascend.fa.plugins.plugin_utils import compat
from test_ascend_detect import DRIVER_INFO, FIRMWARE_INFO, INSTALL_INFO
from test_env_check import make_fake_host

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent.parent / "data"
BOARD_A2 = "NPU ID                         : 0\nChip ID                        : 0\nChip Type                      : Ascend\n" \
           "Chip Name                      : 910B2\n"
BOARD_A3 = "NPU ID                         : 0\nNPU Name                       : 9392\nChip ID                        : 0\n" \
           "Chip Name                      : Ascend910\n"


def make_home(tmp: Path, layout: str, version: str, cfg: str | None = None, arch: str = "x86_64") -> Path:
    home = tmp / "Ascend"
    (home / "driver").mkdir(parents=True)
    (home / "driver" / "version.info").write_text(DRIVER_INFO)
    (home / "firmware").mkdir()
    (home / "firmware" / "version.info").write_text(FIRMWARE_INFO)
    if layout == "toolkit":
        real = home / "ascend-toolkit" / version
        real.mkdir(parents=True)
        (home / "ascend-toolkit" / "latest").symlink_to(version)
        (home / "ascend-toolkit" / "set_env.sh").write_text("export ASCEND_TOOLKIT_HOME=x\n")
    else:
        real = home / f"cann-{version}"
        real.mkdir(parents=True)
        (home / "cann").symlink_to(f"cann-{version}")
        (real / "set_env.sh").write_text("export ASCEND_HOME_PATH=x\n")
        (real / f"{arch}-linux").mkdir()
        (real / f"{arch}-linux" / "ascend_ops_install.info").write_text("package_name=Ascend-cann-910b-ops\n")
    (real / f"{arch}-linux").mkdir(exist_ok=True)
    (real / f"{arch}-linux" / "ascend_toolkit_install.info").write_text(
        f"package_name=Ascend-cann-toolkit\nversion={version}\ninnerversion=V100R001C19SPC001B155\n"
        f"compatible_version=[V100R001C13,V100R001C19],[V100R001C30]\narch={arch}\nos=linux\npath={real}\n")
    if cfg:
        (real / "version.cfg").write_text(cfg)
    return home


def fake_npu_smi(tmp: Path) -> str:
    exe = tmp / "npu-smi"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    return str(exe)


# `npu-smi info -t product -i 0`: per chip "Product Type" then "Chip ID" (layout of an npu-smi parser's test data for
# an Atlas 300I Duo; Huawei OMSDK reads the same field: `npu-smi info -t product -i 0 | grep 'Product Type'`).
PRODUCT_800T = "NPU ID                         : 0\nChip Count                     : 1\n\n" \
               "Product Type                   : Atlas 800T A2\nChip ID                        : 0\n"


def runner(table: str, board: str, versions: str = '{"python_version": "3.11.2", "torch_version": "2.9.0", '
                                                     '"torch_npu_version": "2.9.0.post2"}', product: str | None = PRODUCT_800T):
    def run(argv):
        if argv[1:4] == ["info", "-t", "product"]:
            return (0, product, "") if product is not None else (1, "", "This device does not support querying product.")
        if argv[1:] == ["info"]:
            return 0, table, ""
        if argv[1:] == ["info", "-m"]:
            return 1, "", "not supported"
        if argv[1:4] == ["info", "-t", "board"]:
            return 0, board, ""
        if argv[1] == "-c":
            return 0, versions, ""
        raise AssertionError(argv)
    return run


def params(tmp: Path, home: Path, smi: str) -> dict:
    return {"ascend_home": str(home), "npu_smi": smi, "install_info": str(tmp / "ascend_install.info"),
            "python": "python3", "state_dir": str(tmp / "state"), "disk_paths": [str(tmp)], "check_drift": True}


def test_toolkit_layout_a2(tmp_path):
    home = make_home(tmp_path, "toolkit", "8.0.0", cfg="toolkit_installed_version=[7.0.0.5.242:7.0.RC1][7.6.0.1.220:8.0.0]\n"
                                                    "toolkit_running_version=[7.6.0.1.220:8.0.0]\n")
    (tmp_path / "ascend_install.info").write_text(INSTALL_INFO)
    f = ascend_facts.Facts(params(tmp_path, home, fake_npu_smi(tmp_path)),
                           runner((DATA / "npu_smi_a2_910b2.txt").read_text(), BOARD_A2), arch="x86_64").collect()
    assert f["cann_layout"] == "toolkit" and f["cann_version"] == "8.0.0"
    assert f["cann_installed_versions"] == ["7.0.RC1", "8.0.0"]
    assert f["cann_set_env"].endswith("ascend-toolkit/set_env.sh")
    assert f["driver_version"] == "24.1.rc3" and f["firmware_version"] == "7.5.0.1.129"
    assert f["soc_version"] == "ascend910b2" and f["soc_family"] == "ascend910b" and f["fa_supported"]
    assert f["npu_count"] == 2 and f["device_count"] == 2
    assert f["chips"][1]["logic_id"] == 1
    assert f["torch_npu_version"] == "2.9.0.post2"
    assert f["fa_package"] is None and f["fa_package_state"] == "absent"
    assert f["errors"] == []
    assert f["cpu_count"] >= 1 and f["mem_total_mb"] > 0 and f["disk_free_mb"][str(tmp_path)] > 0


def test_cann_layout_a3(tmp_path):
    home = make_home(tmp_path, "cann", "8.5.0")
    f = ascend_facts.Facts(params(tmp_path, home, fake_npu_smi(tmp_path)),
                           runner((DATA / "npu_smi_a3.txt").read_text(), BOARD_A3), arch="x86_64").collect()
    assert f["cann_layout"] == "cann" and f["cann_version"] == "8.5.0"
    assert f["cann_home"] == os.path.realpath(home / "cann-8.5.0")
    assert f["cann_ops_package"] == "Ascend-cann-910b-ops"
    assert f["soc_version"] == "ascend910_9392" and f["soc_family"] == "ascend910_93"
    assert f["npu_count"] == 1 and f["device_count"] == 2
    assert [e["source"] for e in f["errors"]] == ["install_info"]


def test_missing_everything_is_reported_not_raised(tmp_path):
    (tmp_path / "Ascend").mkdir()
    p = params(tmp_path, tmp_path / "Ascend", "npu-smi-that-does-not-exist")
    f = ascend_facts.Facts(p, runner("", ""), arch="x86_64").collect()
    sources = {e["source"] for e in f["errors"]}
    assert {"driver", "firmware", "cann", "npu-smi"} <= sources
    assert f["cann_version"] is None and f["soc_family"] is None and f["fa_supported"] is False


def test_npu_smi_failure_and_310p(tmp_path):
    home = make_home(tmp_path, "cann", "8.5.0")

    def failing(argv):
        return (1, "", "dcmi module initialize failed. ret is -8005") if argv[1:] == ["info"] else (1, "", "")
    f = ascend_facts.Facts(params(tmp_path, home, fake_npu_smi(tmp_path)), failing, arch="x86_64").collect()
    assert any("dcmi module initialize failed" in e["reason"] for e in f["errors"])
    f = ascend_facts.Facts(params(tmp_path, home, fake_npu_smi(tmp_path)),
                           runner((DATA / "npu_smi_310p3.txt").read_text(),
                                  "Chip Type : Ascend\nChip Name : 310P3\n"), arch="x86_64").collect()
    assert f["soc_version"] == "ascend310p3" and f["fa_supported"] is False


@pytest.mark.parametrize("sample", ["npu_smi_a2_910b2.txt", "npu_smi_a3.txt", "npu_smi_310p3.txt"])
def test_every_sample_parses_through_the_module(tmp_path, sample):
    home = make_home(tmp_path, "cann", "8.5.0")
    f = ascend_facts.Facts(params(tmp_path, home, fake_npu_smi(tmp_path)),
                           runner((DATA / sample).read_text(), ""), arch="x86_64").collect()
    assert f["chips"], f["errors"]
    assert f["soc_version"] is not None or any(e["source"] == "npu-smi" for e in f["errors"])


# ------------------------------------------------------------------------------------------------ env checks
# The preflight environment checks run inside the facts call (one round trip per host) on hosts whose manifest
# says installed and matches env_when; the result is what fa_env_check phase=preflight returns, plus ran=true.
ENV_DATA = yaml.safe_load((ROOT / "plugins" / "plugin_utils" / "data" / "env_checks.yml").read_text())
# the fake host's library is not in this machine's ld.so cache: leave that command check out
ENV_CHECKS = [c for c in ENV_DATA["checks"] if c["id"] != "ld_cache"]


def env_params(h, **kw):
    return {"ascend_home": str(h["home"]), "state_dir": str(h["state"]), "env_checks": ENV_CHECKS,
            "env_when": {"recipe": "r1", "commit": "c1"}, "env_python": sys.executable, "env_libraries": [],
            "env_host": "fake1", "env_timeout": 120, **kw}


def installed_facts(h, **kw):
    manifest = json.loads((h["state"] / "manifest.json").read_text())
    return {"fa_package_state": "installed", "fa_package": manifest, "arch": "x86_64",
            "cann_set_env": str(h["home"] / "cann" / "set_env.sh"), "cann_version": "8.5.0", **kw}


def test_env_applies_only_to_the_wanted_installed_package():
    facts = {"fa_package_state": "installed", "fa_package": {"recipe": "r1", "commit": "c1", "vendor_dir": "/v"}}
    p = {"env_checks": [{"id": "x"}], "env_when": {"recipe": "r1", "commit": "c1"}}
    assert ascend_facts.env_applies(p, facts)
    assert ascend_facts.env_applies({**p, "env_when": {}}, facts)
    assert not ascend_facts.env_applies({**p, "env_when": {"recipe": "r1", "commit": "c2"}}, facts)
    assert not ascend_facts.env_applies({**p, "env_when": {"build_key": "k"}}, facts)      # key not in the manifest
    assert not ascend_facts.env_applies({**p, "env_checks": []}, facts)
    for state in ("absent", "missing", "cann_changed", "files_changed"):
        assert not ascend_facts.env_applies(p, {**facts, "fa_package_state": state})
    assert ascend_facts.env_result({**p, "env_checks": []}, facts) == {"ran": False, "problems": [], "repair": False}


def test_env_result_healthy_and_broken(tmp_path):
    h = make_fake_host(tmp_path, {"recipe": "r1", "commit": "c1"})
    env = ascend_facts.env_result(env_params(h), installed_facts(h))
    assert env["ran"] is True and env["problems"] == [] and env["ok"] is True, env.get("lines")
    status = {c["id"]: c["status"] for c in env["checks"]}
    assert set(status) == {"cann_env", "package_env", "package_present", "opp_path", "vendor_first", "dlopen",
                           "lib_on_path", "others_access"}                      # phase preflight only
    assert status["vendor_first"] == status["dlopen"] == status["lib_on_path"] == "ok"
    assert env["host"] == "fake1" and env["probe"]["env"]["ASCEND_OPP_PATH"] == str(h["opp"])

    # {arch} in env_libraries is the host's architecture; a library that is not there is a repairable problem
    libs = ["op_api/lib/libcust_opapi.so", "op_proto/lib/linux/{arch}/libcust_opsproto_rt2.0.so"]
    env = ascend_facts.env_result(env_params(h, env_libraries=libs), installed_facts(h, arch="aarch64"))
    assert [p["code"] for p in env["problems"]] == ["package_present"] and env["repair"] is True
    assert "op_proto/lib/linux/aarch64/libcust_opsproto_rt2.0.so" in env["problems"][0]["found"]
    assert env["lines"][0].startswith("fake1: [error] package missing")

    (h["opp"] / "vendors" / "config.ini").write_text("load_priority=customize,ascendfa_transformer\n")
    env = ascend_facts.env_result(env_params(h), installed_facts(h))
    assert [p["code"] for p in env["problems"]] == ["vendor_first"] and env["repair"] is True


def run_facts_module(tmp_path, args):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    module = ROOT / "plugins" / "modules" / "ascend_facts.py"
    boot = ("import runpy, sys; "
            f"sys.argv = [{str(module)!r}, {str(path)!r}]; runpy.run_path({str(module)!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", boot], capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


def test_module_returns_env_in_the_same_call(tmp_path):
    h = make_fake_host(tmp_path, {"recipe": "r1", "commit": "c1"})
    base = {**env_params(h), "npu_smi": "npu-smi-not-here", "python": sys.executable, "check_drift": True,
            "install_info": str(tmp_path / "none.info"), "disk_paths": [str(tmp_path)]}
    res = run_facts_module(tmp_path, base)
    facts = res["ansible_facts"]["ascend"]
    assert not res.get("failed") and res["changed"] is False and facts["fa_package_state"] == "installed"
    assert res["env"]["ran"] is True and res["env"]["problems"] == [], res["env"].get("lines")
    assert "env" not in facts                                               # no new facts
    assert facts["python_version"] == ".".join(map(str, sys.version_info[:3]))   # the shared versions probe
    assert facts["fa_last_verify"] is None
    manifest = {**facts["fa_package"], "sha256": "a" * 64}
    (h["state"] / "manifest.json").write_text(json.dumps(manifest))
    record = {"ok": False, "sha256": "a" * 64, "failed_cards": [0], "summary": "s"}
    (h["state"] / "verify.json").write_text(json.dumps(record))
    after = run_facts_module(tmp_path, base)["ansible_facts"]["ascend"]
    assert after["fa_last_verify"] == record and after["fa_last_verify_failed"] is True
    assert after["fa_verify_state"] == "failed"
    assert facts["fa_last_verify_failed"] is False and facts["fa_verify_state"] == "none"   # never verified
    (h["state"] / "verify.json").write_text(json.dumps({**record, "ok": True}))
    assert run_facts_module(tmp_path, base)["ansible_facts"]["ascend"]["fa_verify_state"] == "passed"
    (h["state"] / "verify.json").write_text(json.dumps({**record, "ok": True, "sha256": "b" * 64}))   # another package
    assert run_facts_module(tmp_path, base)["ansible_facts"]["ascend"]["fa_verify_state"] == "none"
    res = run_facts_module(tmp_path, {**base, "env_when": {"recipe": "r2"}})
    assert res["env"] == {"ran": False, "problems": [], "repair": False}
    res = run_facts_module(tmp_path, {**base, "env_checks": [{"id": "broken", "phases": ["preflight"]}]})
    assert res["failed"] is True and "every check needs an id and a probe" in res["msg"]


# ------------------------------------------------------------- reuse of npu-smi facts on a converged host (rerun)

def _counting(table: str, board: str):
    calls: list[list[str]] = []
    inner = runner(table, board)

    def run(argv):
        calls.append(list(argv))
        return inner(argv)
    return run, calls


def _converged(tmp_path):
    home = make_home(tmp_path, "cann", "8.5.0")
    p = params(tmp_path, home, fake_npu_smi(tmp_path))
    run, calls = _counting((DATA / "npu_smi_a2_910b2.txt").read_text(), BOARD_A2)
    first = ascend_facts.Facts(p, run, arch="x86_64").collect()
    smi_calls = [c for c in calls if c[0].endswith("npu-smi")]
    assert smi_calls and first["npu_facts_from"] == "npu-smi" and first["npu_probed_at"]
    return p, first


def test_converged_host_reuses_the_earlier_npu_facts(tmp_path):
    p, first = _converged(tmp_path)
    facts = {**first, "fa_package_state": "installed", "fa_package": {"recipe": "r1", "commit": "c1"},
             "fa_verify_state": "passed"}
    prm = {**p, "env_when": {"recipe": "r1", "commit": "c1"}, "reuse_npu_facts": first}
    assert ascend_facts.npu_facts_to_reuse(prm, facts, {"ran": True, "problems": []}) is first
    collector = ascend_facts.Facts(prm, lambda argv: pytest.fail(f"ran {argv}"), arch="x86_64")
    collector.facts.update({k: v for k, v in facts.items() if k not in ascend_facts.NPU_KEYS})
    collector.reuse_npu(first)
    assert collector.facts["npu_facts_from"] == "reused" and collector.facts["npu_probed_at"] == first["npu_probed_at"]
    assert collector.facts["chips"] == first["chips"] and collector.facts["soc_family"] == "ascend910b"


@pytest.mark.parametrize("change", ["other_recipe", "not_installed", "env_problem", "driver_changed", "no_chips",
                                    "no_env_when", "last_verify_failed", "never_verified"])
def test_npu_smi_runs_again_unless_the_host_looks_converged(tmp_path, change):
    p, first = _converged(tmp_path)
    facts = {**first, "fa_package_state": "installed", "fa_package": {"recipe": "r1", "commit": "c1"},
             "fa_verify_state": "passed"}
    prm = {**p, "env_when": {"recipe": "r1", "commit": "c1"}, "reuse_npu_facts": dict(first)}
    env = {"ran": True, "problems": []}
    if change == "other_recipe":
        prm["env_when"] = {"recipe": "r2", "commit": "c2"}
    elif change == "not_installed":
        facts["fa_package_state"] = "files_changed"
    elif change == "env_problem":
        env = {"ran": True, "problems": [{"code": "package_env"}], "repair": True}
    elif change == "driver_changed":
        prm["reuse_npu_facts"]["driver_version"] = "23.0.0"
    elif change == "no_chips":
        prm["reuse_npu_facts"]["chips"] = []
    elif change == "no_env_when":
        prm["env_when"] = {}
    elif change == "last_verify_failed":
        facts["fa_verify_state"] = "failed"
    elif change == "never_verified":
        facts["fa_verify_state"] = "none"
    assert ascend_facts.npu_facts_to_reuse(prm, facts, env) is None


# ------------------------------------------------------------- first-generation 910B and the product series

BARE_910B_TABLE = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 24.1.0                   Version: 24.1.0                                               |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B                | OK            | 68.2        37                0    / 0             |
| 0                         | 0000:C1:00.0  | 0           0    / 0          3000 / 32768         |
+===========================+===============+====================================================+
"""  # header and first row as in vllm-ascend issue #3010 (Atlas 800 Inference Server Model 3000); HBM cell ours


def _soc_problems(facts: dict) -> list:
    c = compat.Checker(compat.load_matrix())
    c.soc(facts, None)
    return c.problems


def test_bare_910b_read_from_the_host_is_refused_with_the_reason(tmp_path):
    home = make_home(tmp_path, "cann", "8.5.0")
    f = ascend_facts.Facts(params(tmp_path, home, fake_npu_smi(tmp_path)),
                           runner(BARE_910B_TABLE, "Chip Type : Ascend\nChip Name : 910B\n"), arch="x86_64").collect()
    assert f["chip_name"] == "910B" and f["soc_family"] is None and f["fa_supported"] is False
    assert "first-generation Ascend 910B" in f["fa_supported_reason"]
    [p] = _soc_problems(f)
    assert p.code == "soc_unsupported" and p.found == "910B" and "first-generation" in p.fix


@pytest.mark.parametrize("product,series,code", [
    (PRODUCT_800T, "training", None),
    (PRODUCT_800T.replace("Atlas 800T A2", "Atlas 800I A2"), "inference", "product_inference_unsupported"),
    (None, None, "product_unknown"),
    (PRODUCT_800T.replace("Atlas 800T A2", "NA"), None, "product_unknown"),
])
def test_product_series_from_npu_smi(tmp_path, product, series, code):
    home = make_home(tmp_path, "cann", "8.5.0")
    f = ascend_facts.Facts(params(tmp_path, home, fake_npu_smi(tmp_path)),
                           runner((DATA / "npu_smi_a2_910b2.txt").read_text(), BOARD_A2, product=product),
                           arch="x86_64").collect()
    assert f["product_series"] == series and f["soc_family"] == "ascend910b" and f["fa_supported"]
    codes = {p.code: p.severity for p in _soc_problems(f)}
    assert codes == ({} if code is None else {code: "error" if series == "inference" else "warning"})
