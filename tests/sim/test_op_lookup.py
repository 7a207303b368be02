"""SIMULATOR tests: the torch_npu stand-in finds aclnnFlashAttentionScore as op-plugin does (no containers).

Expected behaviour is taken from Ascend/op-plugin ``op_plugin/utils/op_api_common.cpp`` / ``op_api_common.h``
(read at 0083fe5; quoted in ascend-facts.md section 9.1), not from the stand-in's code:
- ``g_custom_lib_path``: each ``ASCEND_CUSTOM_OPP_PATH`` entry + ``/op_api/lib/``; ``g_default_custom_lib_path``:
  ``realpath($ASCEND_OPP_PATH/vendors/<load_priority name>/op_api/lib/)``; both global ``const`` (fixed at import);
- ``GetOpApiFuncAddr``: custom list, vendor list (a path that does not resolve: ``break``), then ``libopapi.so``;
  ``checkOwner``: root skips a library not owned by root ("... will skip this file."), a common user using a
  root-owned one gets "A common user is using the files of the root user.";
- not found: ``<api> or <api>GetWorkspaceSize not in libopapi.so, or libopapi.so not found.``
The C libraries are compiled with gcc into a temporary CANN; results are compared with a float64 reference.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NODE = Path(__file__).resolve().parents[2] / "ascend_sim" / "node"
API = "aclnnFlashAttentionScore"
NOT_FOUND = f"{API} or {API}GetWorkspaceSize not in libopapi.so, or libopapi.so not found."

pytestmark = pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc")


def gcc(src: Path, out: Path, *flags: str) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", *flags, "-o", str(out), str(src), "-lm", "-lpthread"], check=True)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """Two CANNs (8.5.0: libopapi.so with FlashAttentionScore; 8.3: without) and a vendor library."""
    root = tmp_path_factory.mktemp("oplookup")
    out = {}
    for name, flags in (("cann85", ["-DASCEND_SIM_BUILTIN_FA=1"]), ("cann83", [])):
        gcc(NODE / "cann" / "libascendcl.c", root / name / "lib64" / "libascendcl.so")
        out[name] = gcc(NODE / "cann" / "libopapi.c", root / name / "lib64" / "libopapi.so", *flags).parent.parent
    out["vendor_lib"] = gcc(NODE / "cann" / "libopapi.c", root / "vendorlib" / "libcust_opapi.so",
                            "-DASCEND_SIM_BUILTIN_FA=1", '-DASCEND_SIM_OPAPI_NAME="vendor kernel"')
    return out


def make_vendor(base: Path, name: str, lib: Path) -> Path:
    """<base>/<name>/op_api/lib/libcust_opapi.so (the installed vendor layout, ops-transformer install.sh)."""
    dest = base / name / "op_api" / "lib"
    dest.mkdir(parents=True)
    shutil.copy2(lib, dest / "libcust_opapi.so")
    return base / name


def make_opp(tmp: Path, priority: str) -> Path:
    opp = tmp / "opp"
    (opp / "vendors").mkdir(parents=True)
    (opp / "vendors" / "config.ini").write_text(f"load_priority={priority}\n")
    return opp


def run(tmp: Path, cann: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    host = tmp / "host.json"
    if not host.exists():
        host.write_text(json.dumps({"model": "910B3", "npu_count": 2, "cann_version": "8.5.0",
                                    "torch_npu_version": "2.9.0"}))
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ASCEND_", "LD_LIBRARY_PATH", "PYTHONPATH"))}
    clean.update(PYTHONPATH=str(NODE), ASCEND_SIM_HOST_JSON=str(host), LD_LIBRARY_PATH=str(cann / "lib64"), **env)
    return subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=300)


SERVED = r"""
import json, os, torch, torch_npu
from torch_npu import _aclnn
{before}
q = torch.randn(1, 2, 16, 32)
torch_npu.npu_fusion_attention(q, q, q, 2, "BNSD", scale=0.1)
pkg = _aclnn.find_package("aclnnFlashAttentionScore")
maps = open("/proc/self/maps").read()
print(json.dumps({"path": pkg.path, "kind": pkg.kind, "kernel": pkg.last_kernel(), "lists": _aclnn.search_lists(),
                  "mapped": sorted({l.split()[-1] for l in maps.splitlines() if "opapi" in l})}))
"""


def served(tmp: Path, cann: Path, before: str = "", **env: str) -> dict:
    proc = run(tmp, cann, SERVED.replace("{before}", before), **env)
    assert proc.returncode == 0, proc.stderr
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "stderr": proc.stderr}


def test_config_ini_vendor_serves_and_is_mapped(tmp_path, built):
    opp = make_opp(tmp_path, "ours")
    make_vendor(opp / "vendors", "ours", built["vendor_lib"])
    res = served(tmp_path, built["cann85"], ASCEND_OPP_PATH=str(opp))
    assert res["kind"] == "vendor" and res["kernel"] == "vendor kernel"
    assert res["path"] == str((opp / "vendors/ours/op_api/lib/libcust_opapi.so").resolve())
    assert res["path"] in res["mapped"]
    assert res["lists"] == {"custom": [], "vendor": [str((opp / "vendors/ours/op_api/lib").resolve())]}


def test_custom_entries_get_op_api_lib_appended_and_come_first(tmp_path, built):
    opp = make_opp(tmp_path, "ours")
    make_vendor(opp / "vendors", "ours", built["vendor_lib"])
    other = make_vendor(tmp_path / "custom", "other", built["vendor_lib"])
    res = served(tmp_path, built["cann85"], ASCEND_OPP_PATH=str(opp), ASCEND_CUSTOM_OPP_PATH=f"{other}:/nowhere")
    assert res["lists"]["custom"] == [f"{other}/op_api/lib/", "/nowhere/op_api/lib/"]
    assert res["kind"] == "custom" and res["path"] == str(other / "op_api/lib/libcust_opapi.so")
    # an entry naming the library folder itself is not a vendor folder: nothing there, the custom list ends
    res = served(tmp_path, built["cann85"], ASCEND_OPP_PATH=str(opp), ASCEND_CUSTOM_OPP_PATH=str(other / "op_api/lib"))
    assert res["kind"] == "vendor"


def test_lists_are_fixed_at_import(tmp_path, built):
    opp = make_opp(tmp_path, "ours")
    make_vendor(opp / "vendors", "ours", built["vendor_lib"])
    other = make_vendor(tmp_path / "custom", "other", built["vendor_lib"])
    late = f"os.environ['ASCEND_CUSTOM_OPP_PATH'] = {str(other)!r}; open({str(opp / 'vendors/config.ini')!r}, 'w')"
    res = served(tmp_path, built["cann85"], before=late, ASCEND_OPP_PATH=str(opp))
    assert res["kind"] == "vendor" and res["lists"]["custom"] == []
    unset = "os.environ.pop('ASCEND_CUSTOM_OPP_PATH')"
    res = served(tmp_path, built["cann85"], before=unset, ASCEND_OPP_PATH=str(opp), ASCEND_CUSTOM_OPP_PATH=str(other))
    assert res["kind"] == "custom"


def test_vendor_dirs_are_resolved_and_a_missing_one_ends_the_list(tmp_path, built):
    opp = make_opp(tmp_path, "ours")
    real = make_vendor(tmp_path / "elsewhere", "ours", built["vendor_lib"])
    (opp / "vendors" / "ours").symlink_to(real)
    res = served(tmp_path, built["cann85"], ASCEND_OPP_PATH=str(opp))
    assert res["path"] == str(real / "op_api/lib/libcust_opapi.so")
    (opp / "vendors" / "config.ini").write_text("load_priority=ghost,ours\n")
    res = served(tmp_path, built["cann85"], ASCEND_OPP_PATH=str(opp))
    assert res["kind"] == "builtin" and res["lists"]["vendor"] == ["", str(real / "op_api/lib")]
    assert str(real / "op_api/lib/libcust_opapi.so") not in res["mapped"]


@pytest.mark.skipif(os.getuid() != 0, reason="chown needs root")
def test_root_process_skips_a_library_not_owned_by_root(tmp_path, built):
    opp = make_opp(tmp_path, "ours")
    lib = make_vendor(opp / "vendors", "ours", built["vendor_lib"]) / "op_api/lib/libcust_opapi.so"
    os.chown(lib, 1000, 1000)
    res = served(tmp_path, built["cann85"], ASCEND_OPP_PATH=str(opp))
    assert res["kind"] == "builtin" and res["kernel"] == "cann built-in FlashAttentionScore"
    assert str(lib) in res["mapped"]   # dlopen'ed before the owner check
    assert (f"The {lib} owner does not match current owner or the root user is using the files of a common user, "
            "will skip this file.") in res["stderr"]


@pytest.mark.skipif(os.getuid() != 0, reason="chown needs root")
def test_owner_rule_for_common_users(tmp_path):
    sys.path.insert(0, str(NODE / "torch_npu"))
    try:
        import _aclnn  # the module alone (no torch needed); check_owner takes the process uid as a parameter
    finally:
        sys.path.pop(0)
    lib = tmp_path / "lib.so"
    lib.write_bytes(b"x")
    _aclnn._warned.clear()
    with pytest.warns(UserWarning, match="A common user is using the files of the root user."):
        assert _aclnn.check_owner(str(lib), uid=1000) is True
    os.chown(lib, 1001, 1001)
    with pytest.warns(UserWarning, match="will skip this file"):
        assert _aclnn.check_owner(str(lib), uid=1000) is False
    assert _aclnn.check_owner(str(lib), uid=1001) is True


def test_nothing_exports_the_api_before_cann_8_5(tmp_path, built):
    opp = make_opp(tmp_path, "")
    proc = run(tmp_path, built["cann83"], SERVED.replace("{before}", ""), ASCEND_OPP_PATH=str(opp))
    assert proc.returncode != 0 and f"RuntimeError: {NOT_FOUND}" in proc.stderr


BUILTIN_NUMBERS = r"""
import json, torch, torch_npu
torch.manual_seed(0)

def ref(q, k, v, scale, visible):
    # float64 softmax(q k^T * scale) v with an explicit visibility matrix [Sq, Skv] (True = attended)
    g = q.shape[1] // k.shape[1]
    k = k.double().repeat_interleave(g, 1); v = v.double().repeat_interleave(g, 1)
    s = torch.einsum("bnid,bnjd->bnij", q.double(), k) * scale
    s = s.masked_fill(~visible, float("-inf"))
    return torch.einsum("bnij,bnjd->bnid", torch.softmax(s, -1), v)

def err(a, b):
    return (a.double() - b).abs().max().item()

fa = lambda *a, **kw: torch_npu.npu_fusion_attention(*a, **kw)[0]
res = {}
q, k, v = torch.randn(2, 4, 33, 24), torch.randn(2, 4, 47, 24), torch.randn(2, 4, 47, 24)
res["plain"] = err(fa(q, k, v, 4, "BNSD", scale=0.2), ref(q, k, v, 0.2, torch.ones(33, 47, dtype=torch.bool)))
tri = torch.ones(33, 47, dtype=torch.bool).tril(47 - 33)
cmask = torch.triu(torch.ones(2048, 2048, dtype=torch.bool), 1)
res["right_down_causal"] = err(fa(q, k, v, 4, "BNSD", scale=0.2, atten_mask=cmask, sparse_mode=3), ref(q, k, v, 0.2, tri))
q, k, v = torch.randn(1, 8, 20, 16), torch.randn(1, 2, 20, 16), torch.randn(1, 2, 20, 8)
res["gqa_dv"] = err(fa(q, k, v, 8, "BNSD", scale=0.25), ref(q, k, v, 0.25, torch.ones(20, 20, dtype=torch.bool)))
m = torch.rand(20, 20) < 0.3
m.fill_diagonal_(False)
res["mask"] = err(fa(q, k, v, 8, "BNSD", scale=0.25, atten_mask=m), ref(q, k, v, 0.25, ~m))
print(json.dumps(res))
"""


def test_builtin_flash_attention_equals_a_float64_reference(tmp_path, built):
    proc = run(tmp_path, built["cann85"], BUILTIN_NUMBERS, ASCEND_OPP_PATH=str(make_opp(tmp_path, "")))
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(e < 1e-5 for e in res.values()), res


def soc_name(tmp_path: Path, lib: Path, host: dict) -> str | None:
    path = tmp_path / "host.json"
    path.write_text(json.dumps(host))
    os.environ["ASCEND_SIM_HOST_JSON"] = str(path)
    try:
        fn = ctypes.CDLL(str(lib)).aclrtGetSocName
        fn.restype = ctypes.c_char_p
        value = fn()
    finally:
        del os.environ["ASCEND_SIM_HOST_JSON"]
    return value.decode() if value else None


@pytest.mark.parametrize(("host", "want"), [
    # ascend-facts section 3: soc_version = "Ascend" + npu-smi Name (A2, 310P); A3: Chip Name + "_" + NPU Name
    ({"model": "910B3"}, "Ascend910B3"),
    ({"model": "A3-9392"}, "Ascend910_9392"),
    ({"model": "310P3"}, "Ascend310P3"),
    ({"model": "910B4", "soc_version": "Ascend910B4-1"}, "Ascend910B4-1"),
    ({}, None),
])
def test_acl_get_soc_name(tmp_path, built, host, want):
    assert soc_name(tmp_path, built["cann85"] / "lib64" / "libascendcl.so", host) == want
