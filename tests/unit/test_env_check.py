"""fa_env_check: the pure parts (placeholders, CANN set_env lookup, context, phases, the torch/torch_npu pairing rule
of module_utils/fa_torch_pair.py against literal expected results, every probe's evaluation, needs/ignore, the stdlib
pip check), the checks data, and the module end to end on a fake host laid out under a temporary folder (a real fresh
login shell, a real dlopen). Plus the simulator's env-not-sourced fault on a temporary root."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.ascend.fa.plugins.module_utils import fa_env_lib as ec
from ansible_collections.ascend.fa.plugins.module_utils import fa_torch_pair
from ansible_collections.ascend.fa.plugins.plugin_utils import compat

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "plugins" / "modules" / "fa_env_check.py"
DATA = yaml.safe_load((ROOT / "plugins" / "plugin_utils" / "data" / "env_checks.yml").read_text())
CHECKS = {c["id"]: c for c in DATA["checks"]}
TABLE = compat.load_matrix()["torch_npu"]
LIB = "op_api/lib/libcust_opapi.so"


def params(**kw):
    base = {"state_dir": "/var/lib/ascend-fa", "ascend_home": "/nonexistent-ascend", "cann_set_env": "",
            "nnal_set_env": "/nonexistent/nnal/set_env.sh", "python": "python3", "cann_version": "8.5.0",
            "compat_torch_npu": TABLE, "libraries": [LIB], "ignore": [], "host": "h1"}
    return {**base, **kw}


def ctx_for(vendor_dir="/opt/Ascend/cann/opp/vendors/ascendfa_transformer", **kw):
    manifest = {"vendor_dir": vendor_dir} if vendor_dir else None
    return ec.context(params(**kw), manifest)


# ------------------------------------------------------------------------------------------------ data
def test_checks_data_is_complete():
    for c in DATA["checks"]:
        assert c["id"] and c["what"] and c["problem"] and c["fix"] and c["severity"] in ("error", "warning")
        assert bool(c.get("probe")) != bool(c.get("command")), c["id"]
        assert set(c["phases"]) <= {"preflight", "verify", "doctor", "build"}
        assert all(n in CHECKS for n in c.get("needs") or [])
    for state in ("absent", "missing", "cann_changed", "kernels_missing", "files_changed"):
        assert {"code", "what", "needed", "fix"} <= set(DATA["drift"][state])
    assert DATA["drift"]["cann_changed"]["what"] == "CANN changed since install"
    assert DATA["drift"]["missing"]["what"].startswith("package missing")
    assert DATA["drift"]["files_changed"]["what"].startswith("files changed")


def test_phases_select_checks():
    pre = [c["id"] for c in ec.selected(DATA["checks"], "preflight")]
    assert "pip_check" not in pre and "torch_npu_import" not in pre and "vendor_first" in pre
    assert [c["id"] for c in ec.selected(DATA["checks"], "doctor")] == [
        c for c in CHECKS if not c.startswith("build_")]
    assert [c["id"] for c in ec.selected(DATA["checks"], "build")] == [
        "cann_env", "build_cmake", "build_compiler", "build_requirements"]


# ------------------------------------------------------------------------------------------------ helpers
def test_render_placeholders_and_regex_escape():
    ctx = {"lib_path": "/a/b+c/libx.so", "vendor_name": "v"}
    assert ec.render("put {vendor_name} first; keep {unknown}", ctx) == "put v first; keep {unknown}"
    assert ec.render(r"=>\s*{lib_path}\s*$", ctx, escape=True) == r"=>\s*/a/b\+c/libx\.so\s*$"
    assert ec.render(r"x{0,80}", ctx, escape=True) == r"x{0,80}"


def test_cann_set_env_either_layout(tmp_path):
    assert ec.find_cann_set_env(str(tmp_path)) is None
    (tmp_path / "ascend-toolkit").mkdir()
    (tmp_path / "ascend-toolkit" / "set_env.sh").write_text("")
    assert ec.find_cann_set_env(str(tmp_path)) == str(tmp_path / "ascend-toolkit/set_env.sh")
    (tmp_path / "cann").mkdir()
    (tmp_path / "cann" / "set_env.sh").write_text("")
    assert ec.find_cann_set_env(str(tmp_path)) == str(tmp_path / "cann/set_env.sh")
    assert ec.find_cann_set_env(str(tmp_path), "/given/set_env.sh") == "/given/set_env.sh"


def test_context_and_scripts(tmp_path):
    ctx = ctx_for()
    assert ctx["vendor_name"] == "ascendfa_transformer"
    assert ctx["lib_path"] == "/opt/Ascend/cann/opp/vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so"
    assert ctx["lib_dir"].endswith("/op_api/lib") and ctx["package_env"] == "/var/lib/ascend-fa/set_env.bash"
    names = [n for n, _p, _r in ec.scripts_to_source(ctx)]
    assert names == ["cann", "nnal", "package"]
    assert [n for n, _p, _r in ec.scripts_to_source(ctx_for(None))] == ["cann", "nnal"]
    argv = ec.shell_argv(ec.scripts_to_source(ctx), {"x": 1})
    assert argv[:3] == ["/bin/bash", "-l", "-c"] and "/nonexistent/nnal/set_env.sh" not in argv
    assert set(ec.fresh_env()) == {"HOME", "USER", "LOGNAME", "SHELL"}


# ------------------------------------------------------------------------------------------------ torch pair
# Rows of the Ascend Extension for PyTorch compatibility table (Ascend/pytorch README), written out here so the rule is
# tested against the published pairs, not against the data file it reads in production.
OFFICIAL = {
    "9.0.0": {"extension": "26.0.0", "torch_npu": ["2.9.0.post2"]},
    "8.5.0": {"extension": "7.3.0", "torch_npu": ["2.9.0", "2.8.0.post2", "2.7.1.post2", "2.6.0.post5"]},
    "8.3.RC1": {"extension": "7.2.0", "torch_npu": ["2.8.0", "2.7.1", "2.6.0.post3", "2.1.0.post17"]},
    "8.0.RC1": {"extension": "6.0.rc1", "torch_npu": ["2.2.0", "2.1.0.post4", "2.1.0.post3", "1.11.0.post11"]},
    "7.0.0": {"extension": "5.0.0", "torch_npu": ["2.1.0", "2.0.1.post1", "1.11.0.post8"]},
}
NPU_85 = "2.9.0 or 2.8.0.post2 or 2.7.1.post2 or 2.6.0.post5"
NPU_80RC1 = "2.2.0 or 2.1.0.post4 or 2.1.0.post3 or 1.11.0.post11"


def _npu(found, cann, needed, pick, torch, ext):
    return ("torch_npu_cann_mismatch", f"torch_npu {found} with CANN {cann}", needed,
            f"pip install torch_npu=={pick} torch=={torch} (Ascend Extension for PyTorch {ext})")


def _torch(torch, npu, base):
    return ("torch_torch_npu_mismatch", f"torch {torch} with torch_npu {npu}", f"torch {base}",
            f"pip install torch=={base} (torch_npu follows the torch version)")


# torch_npu 2.1.0.post4 (for torch 2.1.0) with CANN 8.5.0 and torch 2.8.0: both parts wrong
BOTH = [_npu("2.1.0.post4", "8.5.0", NPU_85, "2.8.0.post2", "2.8.0", "7.3.0"), _torch("2.8.0+cpu", "2.1.0.post4", "2.1.0")]
# (cann, torch, torch_npu) -> the problems, as a host's report words them
PAIRS = [
    (("8.5.0", "2.9.0", "2.9.0"), []),
    (("8.5", "2.9.0+cpu", "2.9"), []),                                     # 8.5 is 8.5.0, 2.9 is 2.9.0, +cpu ignored
    (("8.0.rc1", "2.1.0", "2.1.0.post3"), []),                             # CANN looked up case-insensitively
    (("7.0.0", "2.1.0", "2.1.0"), []),
    (("8.5.0", "2.7.1", "2.7.1.post2"), []),
    (("8.5.0", "2.9.0", None), []),                                        # no torch_npu: nothing to pair
    ((None, "2.1.0", "2.1.0.post4"), []),                                  # no CANN, torch fits: nothing
    (("8.5.0", "2.1.0", "2.1.0.post4"), [_npu("2.1.0.post4", "8.5.0", NPU_85, "2.9.0", "2.9.0", "7.3.0")]),
    (("8.5.0", "2.8.0+cpu", "2.1.0.post4"), BOTH),
    # a later .postN of a line listed for that CANN: a warning (fa_torch_pair.pair_warnings), not an error
    (("8.0.RC1", "2.1.0", "2.1.0.post5"), []),
    (("8.3.RC1", "2.1.0", "2.1.0.post4"), [_npu("2.1.0.post4", "8.3.RC1", "2.8.0 or 2.7.1 or 2.6.0.post3 or 2.1.0.post17",
                                                "2.1.0.post17", "2.1.0", "7.2.0")]),
    (("9.0.0", None, "2.9.0"), [_npu("2.9.0", "9.0.0", "2.9.0.post2", "2.9.0.post2", "2.9.0", "26.0.0")]),
    (("6.0.0", "2.13.0", "2.9.0"), [_torch("2.13.0", "2.9.0", "2.9.0")]),   # a CANN the table lacks: torch only
    (("7.0.0", "2.10.0", "2.1.0"), [_torch("2.10.0", "2.1.0", "2.1.0")]),    # 2.10 is not 2.1 (positions, not text)
]


@pytest.mark.parametrize(("versions", "want"), PAIRS, ids=[str(v) for v, _ in PAIRS])
def test_torch_pair_rule(versions, want):
    cann, torch, torch_npu = versions
    assert fa_torch_pair.torch_pair_problems(cann, torch, torch_npu, OFFICIAL) == want


def test_torch_pair_rule_bare_versions():
    """What compat.py words for the controller: the installed version at fault and the one(s) wanted."""
    assert fa_torch_pair.mismatches("8.5.0", "2.8.0+cpu", "2.1.0.post4", OFFICIAL) == [
        ("torch_npu_cann_mismatch", "2.1.0.post4", NPU_85,
         "pip install torch_npu==2.8.0.post2 torch==2.8.0 (Ascend Extension for PyTorch 7.3.0)"),
        ("torch_torch_npu_mismatch", "2.8.0+cpu", "2.1.0", "pip install torch==2.1.0 (torch_npu follows the torch version)")]
    assert fa_torch_pair.mismatches("8.5.0", "2.9.0", "2.9.0", {"8.5.0": {"torch_npu": []}}) == []   # no pairs listed


def test_torch_pair_check_uses_the_rule():
    """fa_env_lib's torch_pair check reports the rule's problems (same code, found, needed, fix)."""
    mism = probe()
    mism["python"].update(torch_npu_version="2.1.0.post4", torch_version="2.8.0+cpu")
    status, found, extra = ec.evaluate(CHECKS["torch_pair"], ctx_for(), mism, params(compat_torch_npu=OFFICIAL))
    assert status == ec.FAIL and found == "torch 2.8.0+cpu, torch_npu 2.1.0.post4, CANN 8.5.0"
    assert extra == BOTH


# ------------------------------------------------------------------------------------------------ evaluation
def probe(**kw):
    base = {"sourced": [], "env": {"ASCEND_OPP_PATH": "/opt/Ascend/cann/opp"},
            "config_ini": {"path": "/opt/Ascend/cann/opp/vendors/config.ini", "exists": True,
                           "load_priority": ["ascendfa_transformer", "customize"]},
            "commands": {}, "dlopen_path": {"ok": True}, "dlopen_name": {"ok": True, "resolved": None},
            "python": {"found": True, "torch_version": "2.9.0", "torch_npu_version": "2.9.0",
                       "pip_check": {"tool": "pip check", "rc": 0, "output": ""}, "import_torch_npu": {"rc": 0}}}
    base.update(kw)
    return base


def test_vendor_first_ok_fail_and_not_applicable():
    ctx = ctx_for()
    assert ec.evaluate(CHECKS["vendor_first"], ctx, probe(), params())[0] == ec.OK
    bad = probe(config_ini={"path": "/x/config.ini", "exists": True, "load_priority": ["customize", "ascendfa_transformer"]})
    status, found = ec.evaluate(CHECKS["vendor_first"], ctx, bad, params())
    assert status == ec.FAIL and found.startswith("load_priority=customize,ascendfa_transformer")
    custom = ctx_for("/srv/ops/vendors/ascendfa_transformer")
    assert ec.evaluate(CHECKS["vendor_first"], custom, probe(), params())[0] == ec.SKIP


def test_opp_path_default_and_custom_install():
    ctx = ctx_for()
    assert ec.evaluate(CHECKS["opp_path"], ctx, probe(), params())[0] == ec.OK
    custom = ctx_for("/srv/ops/vendors/ascendfa_transformer")
    status, found = ec.evaluate(CHECKS["opp_path"], custom, probe(), params())
    assert status == ec.FAIL and "ASCEND_CUSTOM_OPP_PATH=(unset)" in found
    env = {"ASCEND_OPP_PATH": "/opt/Ascend/cann/opp", "ASCEND_CUSTOM_OPP_PATH": "/srv/ops/vendors/ascendfa_transformer:"}
    assert ec.evaluate(CHECKS["opp_path"], custom, probe(env=env), params())[0] == ec.OK


def test_ld_cache_command_check():
    ctx = ctx_for()
    listed = f"\tlibcust_opapi.so (libc6,x86-64) => {ctx['lib_path']}\n"
    ok = probe(commands={"ld_cache": {"command": "ldconfig -p", "rc": 0, "stdout": "2 libs\n" + listed}})
    assert ec.evaluate(CHECKS["ld_cache"], ctx, ok, params())[0] == ec.OK
    other = probe(commands={"ld_cache": {"command": "ldconfig -p", "rc": 0,
                                         "stdout": "\tlibcust_opapi.so (libc6,x86-64) => /other/libcust_opapi.so\n"}})
    assert ec.evaluate(CHECKS["ld_cache"], ctx, other, params())[0] == ec.FAIL
    assert ec.evaluate(CHECKS["ld_cache"], ctx, probe(), params())[0] == ec.FAIL   # did not run


def test_scripts_missing_and_failing(tmp_path):
    ctx = ctx_for(state_dir=str(tmp_path))
    missing = probe(sourced=[{"path": ctx["package_env"], "status": "missing"}])
    status, found = ec.evaluate(CHECKS["package_env"], ctx, missing, params())
    assert status == ec.FAIL and found == f"{ctx['package_env']} is missing"
    failing = probe(sourced=[{"path": ctx["package_env"], "status": "1"}])
    assert ec.evaluate(CHECKS["package_env"], ctx, failing, params())[1].endswith("exited 1")
    assert ec.evaluate(CHECKS["cann_env"], ctx, probe(), params())[0] == ec.FAIL   # no CANN under ascend_home
    assert ec.evaluate(CHECKS["nnal_env"], ctx, probe(), params())[0] == ec.SKIP
    assert ec.evaluate(CHECKS["package_env"], ctx_for(None), probe(), params())[0] == ec.SKIP


def test_run_checks_needs_classify_and_ignore(tmp_path):
    vendor = tmp_path / "opp" / "vendors" / "ascendfa_transformer"
    (vendor / "op_api" / "lib").mkdir(parents=True)
    (vendor / "op_api" / "lib" / "libcust_opapi.so").write_text("x")
    ctx = ctx_for(str(vendor), state_dir=str(tmp_path), ascend_home=str(tmp_path))
    (tmp_path / "cann").mkdir()
    (tmp_path / "cann" / "set_env.sh").write_text("")
    ctx = ec.context(params(state_dir=str(tmp_path), ascend_home=str(tmp_path)), {"vendor_dir": str(vendor)})
    err = f"{ctx['lib_path']}: invalid ELF header"
    pr = probe(env={"ASCEND_OPP_PATH": str(tmp_path / "opp")},
               sourced=[{"path": ctx["cann_set_env"], "status": "0"}, {"path": ctx["package_env"], "status": "0"}],
               config_ini={"path": "c", "exists": True, "load_priority": ["ascendfa_transformer"]},
               commands={"ld_cache": {"command": "ldconfig -p", "rc": 0, "stdout": f" => {ctx['lib_path']}\n"}},
               dlopen_path={"ok": False, "error": err}, dlopen_name={"ok": False, "error": err})
    pr["python"]["torch_version"] = "2.13.0+cpu"
    # others_access: tests/unit/test_env_check_build.py (pytest's temporary folders are 0700, never open to others)
    checks = [c for c in DATA["checks"] if c["id"] != "others_access"]
    results = {r["id"]: r for r in ec.run_checks(checks, ctx, pr, params(ignore=["torch_torch_npu_mismatch"]))}
    assert results["dlopen"]["status"] == ec.FAIL and "[known error: library_corrupt]" in results["dlopen"]["found"]
    assert results["lib_on_path"]["status"] == ec.SKIP and "dlopen" in results["lib_on_path"]["found"]
    assert results["torch_pair"]["status"] == ec.IGNORED and results["torch_pair"]["problems"] == []
    assert results["torch_npu_import"]["status"] == ec.OK       # an ignored failure does not block
    out = ec.summarize(list(results.values()), "h1")
    assert [p["code"] for p in out["problems"]] == ["dlopen"] and out["repair"] and not out["ok"]
    assert out["lines"][0].startswith("h1: [error] libcust_opapi.so of the package does not load (dlopen) (found ")
    assert set(out["problems"][0]) == {"code", "severity", "what", "found", "needed", "fix"}   # = compat.Problem
    compat.Problem(**out["problems"][0])


def test_python_probes():
    ctx = ctx_for()
    bad = probe()
    bad["python"]["pip_check"] = {"tool": "pip check", "rc": 1, "output": "torch 2.9.0 requires sympy, which is not installed."}
    status, found = ec.evaluate(CHECKS["pip_check"], ctx, bad, params())
    assert status == ec.FAIL and "requires sympy" in found
    nopy = probe(python={"found": False})
    assert ec.evaluate(CHECKS["pip_check"], ctx, nopy, params())[1] == "python3 not found in the fresh shell's PATH"
    mism = probe()
    mism["python"]["torch_npu_version"] = "2.1.0.post4"
    out = ec.evaluate(CHECKS["torch_pair"], ctx, mism, params())
    assert out[0] == ec.FAIL and [e[0] for e in out[2]] == ["torch_npu_cann_mismatch", "torch_torch_npu_mismatch"]
    imp = probe()
    imp["python"]["import_torch_npu"] = {"rc": 1, "stderr": "ImportError: libhccl.so: cannot open shared object file"}
    (row,) = ec.run_checks([CHECKS["torch_npu_import"]], ctx, imp, params())
    assert "shared_object_missing" in row["found"] and row["fix"].startswith("source /usr/local/Ascend/cann/set_env.sh")


def test_one_versions_probe_for_facts_and_the_fresh_shell():
    """ascend_facts and the fresh shell's probe run the same versions script (fa_env_lib.VERSIONS_SCRIPT)."""
    assert "__VERSIONS_SCRIPT__" not in ec.PROBE and ec.PROBE.count(repr(ec.VERSIONS_SCRIPT)) == 1
    ns: dict = {}
    exec(compile(ec.PROBE, "probe", "exec"), {"__name__": "probe"}, ns)  # noqa: S102 - our own code
    assert ns["VERSIONS"] == ec.VERSIONS_SCRIPT
    run = subprocess.run([sys.executable, "-c", ec.VERSIONS_SCRIPT], capture_output=True, text=True, timeout=60)
    out = json.loads(run.stdout)
    assert set(out) == {"python_version", "executable", "torch_version", "torch_npu_version", "site_dirs"}
    assert out["python_version"] == ".".join(map(str, sys.version_info[:3])) and out["executable"] == sys.executable
    # where torch is installed (the fingerprint watches that folder for pip installs and removals)
    from importlib import metadata
    try:
        torch_dir = str(metadata.distribution("torch").locate_file(""))
    except metadata.PackageNotFoundError:
        torch_dir = None
    assert out["site_dirs"] == ([torch_dir] if torch_dir else [])


def test_check_environment_rejects_bad_checks_and_defaults(tmp_path):
    with pytest.raises(ValueError, match="needs an id and a probe or a command"):
        ec.check_environment([{"id": "x", "phases": ["verify"]}], "verify", {})
    # a check of another phase is not even looked at; no check: the shell still runs and reports nothing
    out = ec.check_environment([{"id": "x", "phases": ["doctor"]}], "verify",
                               {"state_dir": str(tmp_path), "host": "h9", "timeout": None})
    assert out["problems"] == [] and out["checks"] == [] and out["host"] == "h9" and out["ok"] is True
    assert "changed" not in out and "ran" not in out
    assert ec.not_run() == {"ran": False, "problems": [], "repair": False}


@pytest.mark.parametrize("module", ["fa_env_check", "ascend_facts", "fa_verify"])
def test_module_docs_are_yaml(module):
    """The modules that run the checks document them in YAML that loads (ansible-doc reads it)."""
    tree = ast.parse((ROOT / "plugins" / "modules" / f"{module}.py").read_text())
    docs = {n.targets[0].id: n.value.value for n in tree.body
            if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
            and n.targets[0].id in ("DOCUMENTATION", "EXAMPLES", "RETURN")}
    assert set(docs) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    loaded = {k: yaml.safe_load(v) for k, v in docs.items()}
    if module != "fa_env_check":
        assert "env" in loaded["RETURN"] and "env_checks" in loaded["DOCUMENTATION"]["options"]


# ------------------------------------------------------------------------------------------------ stdlib pip check
def _pip_check_code() -> str:
    ns: dict = {}
    exec(compile(ec.PROBE, "probe", "exec"), {"__name__": "probe"}, ns)  # noqa: S102 - our own code, to unit-test it
    return ns["PIP_CHECK"].replace('importlib.util.find_spec("pip") is not None', "False")


def _dist(site: Path, name: str, version: str, requires: list[str]) -> None:
    d = site / f"{name}-{version}.dist-info"
    d.mkdir(parents=True)
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"] + [f"Requires-Dist: {r}" for r in requires]
    (d / "METADATA").write_text("\n".join(meta) + "\n")


def test_stdlib_pip_check(tmp_path):
    site = tmp_path / "site"
    _dist(site, "alpha", "1.0", ["beta>=2.0", "gamma", 'delta; extra == "all"', 'eps; python_version < "3"',
                                 'zeta>=1; sys_platform == "linux" and python_version >= "3.8"'])
    _dist(site, "beta", "1.5", [])
    _dist(site, "zeta", "0.5", [])
    run = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path[:0] = [{str(site)!r}]\n" + _pip_check_code()],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    res = json.loads(run.stdout)
    assert res["rc"] == 1 and res["tool"].startswith("stdlib")
    lines = res["output"].splitlines()
    assert "alpha 1.0 has requirement beta>=2.0, but you have beta 1.5." in lines
    assert "alpha 1.0 requires gamma, which is not installed." in lines
    assert not any("delta" in x or "eps" in x for x in lines)
    assert any("zeta" in x for x in lines) == sys.platform.startswith("linux")
    ok = tmp_path / "ok"
    _dist(ok, "alpha", "1.0", ["beta~=1.4"])
    _dist(ok, "beta", "1.5", [])
    run = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path[:0] = [{str(ok)!r}]\n" + _pip_check_code()],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert json.loads(run.stdout)["rc"] == 0


# ------------------------------------------------------------------------------------------------ the module
@pytest.fixture()
def fake_host(tmp_path):
    return make_fake_host(tmp_path)


def _let_others_enter(path):
    """pytest's temp folders are 0700: open them (o+x) up to /tmp as /usr/local is on a real node, so the
    others_access check judges the package, not the test's sandbox."""
    for d in [path, *path.parents]:
        if str(d) in ("/", "/tmp") or not str(d).startswith("/tmp/"):
            break
        d.chmod(d.stat().st_mode | 0o005)


def make_fake_host(tmp_path, manifest_extra=None):
    """A CANN-like layout: set_env.sh exporting ASCEND_OPP_PATH, a vendor with a real .so, config.ini, manifest
    (also used by the ascend_facts and fa_verify tests, whose modules run the same checks)."""
    if not shutil.which("gcc"):
        pytest.skip("gcc is needed to build a loadable library")
    _let_others_enter(tmp_path)
    home = tmp_path / "Ascend"
    opp = home / "cann" / "opp"
    vendor = opp / "vendors" / "ascendfa_transformer"
    (vendor / "op_api" / "lib").mkdir(parents=True)
    src = tmp_path / "lib.c"
    src.write_text("int ascendfa_probe(void) { return 42; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(vendor / "op_api/lib/libcust_opapi.so"), str(src)], check=True)
    (opp / "vendors" / "config.ini").write_text("load_priority=ascendfa_transformer,customize\n")
    (home / "cann" / "set_env.sh").write_text(f"export ASCEND_OPP_PATH={opp}\n")
    state = tmp_path / "state"
    state.mkdir()
    (state / "set_env.bash").write_text(f"source {home}/cann/set_env.sh\n"
                                        f"export LD_LIBRARY_PATH={vendor}/op_api/lib:$LD_LIBRARY_PATH\n")
    (state / "manifest.json").write_text(json.dumps({"vendor_dir": str(vendor), **(manifest_extra or {})}))
    return {"home": home, "state": state, "vendor": vendor, "opp": opp}


def run_module(tmp_path, args):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    # as Ansible runs it: a script whose helpers are imported by their collection names
    boot = ("import runpy, sys; "
            f"sys.argv = [{str(MODULE)!r}, {str(path)!r}]; runpy.run_path({str(MODULE)!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", boot], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "ASCEND_OPP_PATH": "/leaked/from/ansible"})
    return json.loads(proc.stdout)


def module_args(h, **kw):
    # others_access: tests/unit/test_env_check_build.py (pytest's temporary folders are 0700, never open to others)
    return {"checks": [c for c in DATA["checks"] if c["id"] not in ("ld_cache", "pip_check", "torch_pair",
                                                                    "torch_npu_import", "others_access")],
            "host": "fake1", "state_dir": str(h["state"]), "ascend_home": str(h["home"]), "python": sys.executable,
            **kw}


def test_module_healthy_host_reports_nothing(tmp_path, fake_host):
    res = run_module(tmp_path, module_args(fake_host))
    assert res["ok"] is True and res["problems"] == [] and res["changed"] is False, res.get("lines")
    status = {c["id"]: c["status"] for c in res["checks"]}
    assert status["vendor_first"] == status["lib_on_path"] == status["dlopen"] == "ok"
    # nothing leaked from the calling environment into the fresh shell
    assert res["probe"]["env"]["ASCEND_OPP_PATH"] == str(fake_host["opp"])


def test_module_names_each_broken_state(tmp_path, fake_host):
    h = fake_host
    (h["opp"] / "vendors" / "config.ini").write_text("load_priority=customize,ascendfa_transformer\n")
    res = run_module(tmp_path, module_args(h))
    assert [p["code"] for p in res["problems"]] == ["vendor_first"]
    assert "load_priority=customize,ascendfa_transformer" in res["lines"][0] and "Fix: " in res["lines"][0]

    (h["opp"] / "vendors" / "config.ini").write_text("load_priority=ascendfa_transformer\n")
    (h["state"] / "set_env.bash").unlink()
    res = run_module(tmp_path, module_args(h, fail_on_findings=True))
    assert res["failed"] is True
    assert {p["code"] for p in res["problems"]} == {"package_env", "lib_on_path"}
    assert "shared_object_missing" in next(p["found"] for p in res["problems"] if p["code"] == "lib_on_path")

    (h["state"] / "set_env.bash").write_text(f"export LD_LIBRARY_PATH={h['vendor']}/op_api/lib\n")
    (h["vendor"] / LIB).write_bytes(b"garbage, not an ELF file")
    res = run_module(tmp_path, module_args(h))
    codes = [p["code"] for p in res["problems"]]
    assert codes == ["dlopen"] and "library_corrupt" in res["problems"][0]["found"]

    import shutil as sh
    sh.rmtree(h["vendor"])
    res = run_module(tmp_path, module_args(h))
    assert [p["code"] for p in res["problems"]] == ["package_present"]   # the rest is skipped (needs)
    assert res["repair"] is True


def test_module_fresh_shell_that_dies(tmp_path, fake_host):
    (fake_host["home"] / "cann" / "set_env.sh").write_text("exit 3\n")
    res = run_module(tmp_path, module_args(fake_host))
    assert res["problems"][0]["code"] == "fresh_shell" and res["ok"] is False


# ------------------------------------------------------------------------------------------------ simulator fault
def test_sim_env_not_sourced_fault(tmp_path):
    from ascend_sim.node import sim_apply
    from ascend_sim.node.simnode import normalize

    node_dir = tmp_path / "node"
    node_dir.mkdir()
    root = tmp_path / "root"
    host = normalize({"npu_count": 1, "arch": "x86_64"})
    sim_apply.apply(host, root, node_dir)
    with pytest.raises(sim_apply.ActionError):
        sim_apply.apply(host, root, node_dir, ("env-not-sourced",))
    conf = root / "etc/ld.so.conf.d"
    conf.mkdir(parents=True)
    (conf / "ascend-fa.conf").write_text("/usr/local/Ascend/cann/opp/vendors/ascendfa_transformer/op_api/lib\n")
    (conf / "other.conf").write_text("/usr/lib/other\n")
    env = root / "var/lib/ascend-fa/set_env.bash"
    env.parent.mkdir(parents=True)
    env.write_text("export X=1\n")
    changes = sim_apply.apply(host, root, node_dir, ("env-not-sourced",))
    assert not (conf / "ascend-fa.conf").exists() and (conf / "other.conf").exists() and not env.exists()
    assert any("ascend-fa.conf" in c for c in changes)


def test_sim_fault_is_known_to_the_fleet():
    from ascend_sim import fleet

    config = {"model": "910B3", "npu_count": 1, "cann_version": "8.5.0", "cann_layout": "cann",
              "torch_npu_version": "2.9.0", "driver_version": "25.5.0", "firmware_version": "7.8.0.2.212"}
    from ascend_sim.node.simnode import DEFAULTS
    _new, actions = fleet.apply_fault({**DEFAULTS, **config}, "env-not-sourced")
    assert actions == ["env-not-sourced"]


