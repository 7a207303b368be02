"""served_by: op-plugin's aclnn lookup replayed on tiny shared libraries compiled here.

The expected behaviour is read from Ascend/op-plugin ``op_plugin/utils/op_api_common.h`` (``GetOpApiFuncAddr``: custom
list, then vendor list, an entry without a library ends its list, dlopen before ``checkOwner``) and
``op_api_common.cpp`` (``get_custom_lib_path``, ``get_default_custom_lib_path``, ``checkOwner``), not from served_by.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

KERNELS = Path(__file__).resolve().parents[2] / "kernels"
if str(KERNELS) not in sys.path:
    sys.path.insert(0, str(KERNELS))

import served_by  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build the test libraries")

API = "aclnnFlashAttentionScore"
WS = API + "GetWorkspaceSize"
FA = (WS, API)


def compile_lib(path: Path, funcs: tuple[str, ...], extra: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    src = path.with_suffix(".c")
    src.write_text(extra + "".join(f"int {f}(void) {{ return 0; }}\n" for f in funcs))
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(path), str(src)], check=True)
    src.unlink()
    return path


class Node:
    """An OPP tree: vendors with libcust_opapi.so, config.ini, and CANN's libopapi.so."""

    def __init__(self, root: Path):
        self.root = root
        self.opp = root / "opp"
        (self.opp / "vendors").mkdir(parents=True)
        (self.opp / "built-in").mkdir()
        self.cann_lib = root / "cann" / "lib64"

    def vendor(self, name: str, funcs=FA, lib=True) -> Path:
        d = self.opp / "vendors" / name
        (d / "op_impl").mkdir(parents=True, exist_ok=True)
        if lib:
            compile_lib(d / "op_api" / "lib" / "libcust_opapi.so", funcs)
        return d

    def priority(self, *names: str) -> None:
        (self.opp / "vendors" / "config.ini").write_text("load_priority=" + ",".join(names) + "\n")

    def builtin(self, funcs=FA) -> Path:
        return compile_lib(self.cann_lib / "libopapi.so", funcs or ("aclnnAdd",))

    def env(self, custom: str | None = None) -> dict[str, str]:
        env = {"ASCEND_OPP_PATH": str(self.opp), "LD_LIBRARY_PATH": str(self.cann_lib)}
        if custom is not None:
            env["ASCEND_CUSTOM_OPP_PATH"] = custom
        return env


def lib_of(vendor_dir: Path) -> str:
    return os.path.realpath(vendor_dir / "op_api" / "lib" / "libcust_opapi.so")


def everything_mapped(node: Node) -> set[str]:
    """As if every library op-plugin reached was dlopen'ed (and libopapi.so, which torch_npu links)."""
    return {os.path.realpath(p) for p in node.root.rglob("*.so")}


@pytest.fixture
def node(tmp_path):
    return Node(tmp_path)


# ------------------------------------------------------------------------------------------------ ELF reader
def test_dynamic_symbols_lists_what_dlsym_finds(tmp_path):
    extra = ("static int hidden_static(void) { return 1; }\n"
             "__attribute__((visibility(\"hidden\"))) int hidden_vis(void) { return hidden_static(); }\n"
             "#include <stdio.h>\nint calls_puts(void) { return puts(\"x\"); }\n")
    lib = compile_lib(tmp_path / "libx.so", FA, extra)
    syms = served_by.dynamic_symbols(str(lib))
    assert {API, WS, "calls_puts"} <= syms
    assert not {"hidden_static", "hidden_vis", "puts"} & syms      # local, hidden, undefined
    handle = ctypes.CDLL(str(lib))
    for name in (API, WS, "calls_puts"):
        assert hasattr(handle, name)
    assert not hasattr(handle, "hidden_vis")


def test_dynamic_symbols_rejects_what_is_not_elf(tmp_path):
    bad = tmp_path / "libbad.so"
    bad.write_bytes(b"not an elf at all" * 4)
    with pytest.raises(served_by.ElfError):
        served_by.dynamic_symbols(str(bad))
    bad.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 20)
    with pytest.raises(served_by.ElfError):
        served_by.dynamic_symbols(str(bad))


# ------------------------------------------------------------------------------------------------ the order
def test_our_vendor_first_serves(node):
    ours = node.vendor("ascendfa_transformer")
    node.vendor("other_transformer")
    node.priority("ascendfa_transformer", "other_transformer")
    node.builtin()
    v = served_by.decide(served_by.snapshot(node.env()), everything_mapped(node), str(ours), uid=0)
    assert v["ok"] is True and v["source"] == "vendor" and v["vendor"] == "ascendfa_transformer"
    assert v["library"] == lib_of(ours) and v["builtin"]["exports"] is True
    assert v["reason"].startswith("served by vendor ascendfa_transformer")


def test_another_vendor_earlier_in_load_priority_serves(node):
    ours = node.vendor("ascendfa_transformer")
    other = node.vendor("other_transformer")
    node.priority("other_transformer", "ascendfa_transformer")
    node.builtin()
    v = served_by.decide(served_by.snapshot(node.env()), everything_mapped(node), str(ours), uid=0)
    assert v["ok"] is False and v["source"] == "vendor" and v["library"] == lib_of(other)
    assert "served by vendor other_transformer" in v["reason"] and "earlier in load_priority" in v["reason"]
    assert "put ascendfa_transformer first in load_priority" in v["fix"]


def test_a_vendor_without_the_api_is_passed_over(node):
    ours = node.vendor("ascendfa_transformer")
    node.vendor("math_ops", funcs=("aclnnAdd", "aclnnAddGetWorkspaceSize"))
    node.priority("math_ops", "ascendfa_transformer")
    v = served_by.decide(served_by.snapshot(node.env()), everything_mapped(node), str(ours), uid=0)
    assert v["ok"] is True and v["vendor"] == "ascendfa_transformer"
    assert [c["entry"] for c in v["candidates"]] == ["math_ops", "ascendfa_transformer"]


def test_custom_path_comes_before_every_vendor(node, tmp_path):
    ours = node.vendor("ascendfa_transformer")
    node.priority("ascendfa_transformer")
    elsewhere = tmp_path / "site" / "vendors" / "acme_transformer"
    compile_lib(elsewhere / "op_api" / "lib" / "libcust_opapi.so", FA)
    v = served_by.decide(served_by.snapshot(node.env(custom=str(elsewhere))), everything_mapped(node) | {
        lib_of(elsewhere)}, str(ours), uid=0)
    assert v["ok"] is False and v["source"] == "custom_path" and v["library"] == lib_of(elsewhere)
    assert "earlier in ASCEND_CUSTOM_OPP_PATH" in v["reason"] and "ASCEND_CUSTOM_OPP_PATH" in v["fix"]
    # op_api/lib/ is appended to the entry (get_custom_lib_path): a library directory itself is not a valid entry
    v = served_by.decide(served_by.snapshot(node.env(custom=str(elsewhere / "op_api" / "lib"))),
                         everything_mapped(node) | {lib_of(elsewhere)}, str(ours), uid=0)
    assert v["ok"] is True


def test_custom_path_pointing_at_our_vendor_serves(node):
    ours = node.vendor("ascendfa_transformer")
    node.priority("")
    v = served_by.decide(served_by.snapshot(node.env(custom=str(ours))), everything_mapped(node), str(ours), uid=0)
    assert v["ok"] is True and v["source"] == "custom_path" and v["vendor"] == "ascendfa_transformer"


def test_an_entry_without_a_library_ends_its_list(node):
    """GetOpApiFuncAddr: ``if (cust_opapi_lib.empty()) break;`` - the vendors after it are never tried."""
    ours = node.vendor("ascendfa_transformer")
    node.vendor("tbe_only", lib=False)
    node.priority("tbe_only", "ascendfa_transformer")
    node.builtin()
    v = served_by.decide(served_by.snapshot(node.env()), everything_mapped(node), str(ours), uid=0)
    assert v["ok"] is False and v["source"] == "builtin"
    assert v["reason"].startswith("served by CANN's built-in FlashAttentionScore (")
    assert "not by ascendfa_transformer" in v["reason"] and "stops the vendor list" in v["reason"]
    assert [c["entry"] for c in v["candidates"]] == ["tbe_only"]


def test_not_in_load_priority_falls_back_to_the_builtin(node):
    ours = node.vendor("ascendfa_transformer")
    node.vendor("other_transformer", funcs=("aclnnAdd",))
    node.priority("other_transformer")
    node.builtin()
    v = served_by.decide(served_by.snapshot(node.env()), everything_mapped(node), str(ours), uid=0)
    assert v["ok"] is False and v["source"] == "builtin" and v["library"] == os.path.realpath(
        node.cann_lib / "libopapi.so")
    assert "ascendfa_transformer is not in load_priority" in v["reason"] and "reinstall" in v["fix"]


def test_nothing_serves_without_a_builtin(node):
    ours = node.vendor("ascendfa_transformer")
    node.priority("other")
    node.builtin(funcs=())               # CANN < 8.5: libopapi.so without FlashAttentionScore
    v = served_by.decide(served_by.snapshot(node.env()), everything_mapped(node), str(ours), uid=0)
    assert v["ok"] is False and v["source"] == "none" and v["builtin"]["exports"] is False
    assert "no library" in v["reason"]


def test_not_mapped_means_its_dlopen_failed(node):
    ours = node.vendor("ascendfa_transformer")
    node.priority("ascendfa_transformer")
    node.builtin()
    mapped = everything_mapped(node) - {lib_of(ours)}
    v = served_by.decide(served_by.snapshot(node.env()), mapped, str(ours), uid=0)
    assert v["ok"] is False and v["source"] == "builtin" and "dlopen failed" in v["reason"]


def test_workspace_and_api_from_different_libraries_fail(node):
    ours = node.vendor("ascendfa_transformer", funcs=(API,))
    node.priority("ascendfa_transformer")
    node.builtin()
    v = served_by.decide(served_by.snapshot(node.env()), everything_mapped(node), str(ours), uid=0)
    assert v["ok"] is False and WS in v["reason"] and "CANN's built-in" in v["reason"]


# ------------------------------------------------------------------------------------------------ checkOwner
@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
@pytest.mark.parametrize(("owner", "uid", "served"), [
    (0, 0, True),            # root process, root library
    (1000, 0, False),        # root process, non-root library: skipped
    (1000, 1000, True),      # its own library
    (1000, 1001, False),     # another user's library: skipped
    (0, 1000, True),         # a common user using a root-owned library: only a warning
])
def test_owner_check_as_op_plugin(node, owner, uid, served):
    ours = node.vendor("ascendfa_transformer")
    node.priority("ascendfa_transformer")
    node.builtin()
    os.chown(lib_of(ours), owner, 0)
    v = served_by.decide(served_by.snapshot(node.env()), everything_mapped(node), str(ours), uid=uid)
    assert v["ok"] is served and v["uid"] == uid
    if not served:
        assert v["source"] == "builtin" and "skipped by the owner check" in v["reason"]
        assert f"owned by uid {owner}, process uid {uid}" in v["reason"]


def test_owner_check_function(tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    me = os.stat(f).st_uid
    assert served_by.owner_check(str(f), me)[0] is True
    assert served_by.owner_check(str(tmp_path / "missing"), me)[0] is False


# ------------------------------------------------------------------------------------------------ the snapshot
def test_the_lists_are_fixed_at_snapshot_time(node, monkeypatch):
    ours = node.vendor("ascendfa_transformer")
    node.vendor("other_transformer")
    node.priority("ascendfa_transformer", "other_transformer")
    node.builtin()
    for k, v in node.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("ASCEND_CUSTOM_OPP_PATH", raising=False)
    snap = served_by.snapshot()
    # after "import torch_npu": a later config.ini or variable changes nothing in this process
    node.priority("other_transformer")
    monkeypatch.setenv("ASCEND_CUSTOM_OPP_PATH", str(node.opp / "vendors" / "other_transformer"))
    v = served_by.decide(snap, everything_mapped(node), str(ours), uid=0)
    assert v["ok"] is True and v["load_priority"] == ["ascendfa_transformer", "other_transformer"]
    # a process that starts now sees the new lists
    v = served_by.decide(served_by.snapshot(), everything_mapped(node), str(ours), uid=0)
    assert v["ok"] is False and v["source"] == "custom_path"


def test_load_priority_is_taken_verbatim(node):
    """split_str on ',' without trimming: ' ascendfa_transformer' is another (missing) vendor, which ends the list."""
    ours = node.vendor("ascendfa_transformer")
    node.priority("", "ascendfa_transformer")
    node.builtin()
    (node.opp / "vendors" / "config.ini").write_text("# vendors\nload_priority= ascendfa_transformer\n")
    v = served_by.decide(served_by.snapshot(node.env()), everything_mapped(node), str(ours), uid=0)
    assert v["ok"] is False and v["load_priority"] == [" ascendfa_transformer"]


def test_real_process_maps(node):
    """dlopen for real, then read /proc/self/maps: the library op-plugin loaded is mapped, one never loaded is not."""
    if not os.path.exists("/proc/self/maps"):
        pytest.skip("no /proc")
    ours = node.vendor("ascendfa_transformer")
    never = node.vendor("never_loaded")
    ctypes.CDLL(lib_of(ours))
    mapped = served_by.read_maps()
    assert lib_of(ours) in mapped and lib_of(never) not in mapped


# ------------------------------------------------------------------------------------------------ baseline
def test_expect_builtin_for_the_baseline(node):
    node.vendor("other_transformer", funcs=("aclnnAdd",))
    node.priority("other_transformer")
    node.builtin()
    v = served_by.decide(served_by.snapshot(node.env()), everything_mapped(node), None, expect="builtin", uid=0)
    assert v["ok"] is True and v["source"] == "builtin"
    v = served_by.decide(served_by.snapshot(node.env()), everything_mapped(node), None, uid=0)
    assert v["ok"] is None and "not judged" in v["reason"]


def test_overlay_hides_our_vendor_and_leaves_the_system_alone(node, tmp_path):
    ours = node.vendor("ascendfa_transformer")
    other = node.vendor("other_transformer")
    node.priority("ascendfa_transformer", "other_transformer")
    node.builtin()
    before = (node.opp / "vendors" / "config.ini").read_text()
    root = served_by.make_overlay(str(node.opp), [str(ours)], str(tmp_path / "ovl"))
    assert (Path(root) / "built-in").resolve() == (node.opp / "built-in").resolve()
    assert sorted(os.listdir(Path(root) / "vendors")) == ["config.ini", "other_transformer"]
    assert (Path(root) / "vendors" / "config.ini").read_text() == "load_priority=other_transformer\n"
    assert (node.opp / "vendors" / "config.ini").read_text() == before
    env = dict(node.env(), ASCEND_OPP_PATH=root)
    v = served_by.decide(served_by.snapshot(env), everything_mapped(node), None, expect="builtin", uid=0)
    assert v["ok"] is False and v["library"] == lib_of(other)   # other vendor exports it: not CANN's kernel
    node.priority("ascendfa_transformer")
    root = served_by.make_overlay(str(node.opp), [str(ours)], str(tmp_path / "ovl2"))
    v = served_by.decide(served_by.snapshot(dict(node.env(), ASCEND_OPP_PATH=root)), everything_mapped(node), None,
                         expect="builtin", uid=0)
    assert v["ok"] is True and v["source"] == "builtin"


# ------------------------------------------------------------------------------------------------ fa_check end to end
def _fa_check(args, env):
    proc = subprocess.run([sys.executable, str(KERNELS / "fa_check.py"), "--quick", "--device", "npu", "--cases",
                           "aligned_fp16", "--repeats", "1", *args], capture_output=True, text=True, env=env,
                          timeout=120)
    return proc.returncode, __import__("json").loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_fa_check_served_by_save_and_baseline(node, tmp_path):
    """The fake torch_npu computes right but loads no library: with our vendor expected the card fails on served_by;
    the baseline run sees the overlay (no vendor of ours, no custom path) and compares with the saved outputs."""
    ours = node.vendor("ascendfa_transformer")
    node.priority("ascendfa_transformer")
    node.builtin()
    fake = Path(__file__).resolve().parent / "fake_npu"
    env = dict(os.environ, PYTHONPATH=str(fake), ASCEND_CUSTOM_OPP_PATH=str(ours), **node.env())
    saved = tmp_path / "card0.pt"
    rc, rep, err = _fa_check(["--expect-vendor-dir", str(ours), "--save-outputs", str(saved)], env)
    assert rc == 1 and rep["ok"] is False and rep["passed"] == 1, err
    sb = rep["served_by"]
    assert sb["ok"] is False and sb["source"] == "builtin" and "dlopen failed" in sb["reason"]
    assert rep["errors"][0].startswith("served_by: served by CANN's built-in FlashAttentionScore")
    assert saved.is_file()
    rc, rep, err = _fa_check(["--baseline", "--compare-outputs", str(saved), "--expect-vendor-dir", str(ours)], env)
    assert rc == 0 and rep["ok"] is True and rep["baseline"] is True, err
    sb = rep["served_by"]
    assert sb["source"] == "builtin" and sb["ok"] is True and sb["ASCEND_CUSTOM_OPP_PATH"] is None
    assert sb["ASCEND_OPP_PATH"] != str(node.opp) and sb["load_priority"] == [""]
    assert rep["compare"]["max_diff"] == 0.0 and rep["compare"]["cases"] == {"aligned_fp16": 0.0}
    assert (node.opp / "vendors" / "config.ini").read_text() == "load_priority=ascendfa_transformer\n"
    assert not os.path.exists(sb["ASCEND_OPP_PATH"])              # the overlay is removed after the run
