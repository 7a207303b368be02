"""Item 7 and 8 of issue 21 on the host side: the build host checks (phase build: CMake, compilers, the tag's
requirements.txt) and the non-root access check, run through fa_env_lib in a real fresh login shell with fake tools.

Independent data: the lines of ops-transformer v9.0.1 (commit 8038339a) quoted as they are in the tag:
CMakeLists.txt line 11 and requirements.txt (8 lines, no newline after the last).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.ascend.fa.plugins.module_utils import fa_env_lib

ROOT = Path(__file__).resolve().parents[2]
CHECKS = yaml.safe_load((ROOT / "plugins/plugin_utils/data/env_checks.yml").read_text())["checks"]
V901_CMAKE = "cmake_minimum_required(VERSION 3.16)\n\nproject(cann_ops-transformer)\n"
V901_REQUIREMENTS = "pyyaml\nnumpy\ndecorator\nsympy\nscipy\nattrs\nprotobuf\npsutil"


def test_the_tags_needs_are_read_from_its_files(tmp_path):
    (tmp_path / "CMakeLists.txt").write_text("# header\n" + V901_CMAKE)
    (tmp_path / "requirements.txt").write_text(V901_REQUIREMENTS)
    assert fa_env_lib.cmake_needs(str(tmp_path)) == ("3.16", ["C", "CXX"])
    assert fa_env_lib.requirement_lines(str(tmp_path)) == V901_REQUIREMENTS.split("\n")
    (tmp_path / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.18.4)\nproject(x LANGUAGES C)\n")
    assert fa_env_lib.cmake_needs(str(tmp_path)) == ("3.18.4", ["C"])
    (tmp_path / "requirements.txt").write_text("# c\n-r other.txt\n\nnumpy>=1.2 # pin\n")
    assert fa_env_lib.requirement_lines(str(tmp_path)) == ["numpy>=1.2"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert fa_env_lib.cmake_needs(str(empty)) == (None, ["C"]) and fa_env_lib.requirement_lines(str(empty)) is None


def _tool(folder: Path, name: str, output: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(0o755)


@pytest.fixture
def build_host(tmp_path):
    """A CANN home whose set_env.sh puts fake cmake/gcc/g++ first on the PATH, and a checkout of the tag."""
    home, tools, src = tmp_path / "Ascend", tmp_path / "tools", tmp_path / "src"
    (home / "cann").mkdir(parents=True)
    tools.mkdir()
    src.mkdir()
    (home / "cann" / "set_env.sh").write_text(f'export PATH={tools}:"$PATH"\n')
    (src / "CMakeLists.txt").write_text(V901_CMAKE)
    (src / "requirements.txt").write_text("pyyaml\nsurely-not-installed-ascendfa>=1.0\n")
    return {"home": home, "tools": tools, "src": src, "state": tmp_path / "state"}


def _run(h, **over):
    params = {"host": "build1", "state_dir": str(h["state"]), "ascend_home": str(h["home"]), "src": str(h["src"]),
              "build_python": sys.executable, **over}
    out = fa_env_lib.check_environment(CHECKS, "build", params)
    return out, {c["id"]: c for c in out["checks"]}


def test_old_cmake_old_gcc_and_a_missing_requirement_are_each_named(build_host):
    h = build_host
    _tool(h["tools"], "cmake", "cmake version 3.10.2")
    _tool(h["tools"], "gcc", "6.5.0")
    _tool(h["tools"], "g++", "6.5.0")
    out, by_id = _run(h)
    assert [c["id"] for c in out["checks"]] == ["cann_env", "build_cmake", "build_compiler", "build_requirements"]
    assert by_id["build_cmake"]["status"] == "fail" and "3.10.2" in by_id["build_cmake"]["found"]
    assert "3.16" in by_id["build_cmake"]["needed"]
    assert by_id["build_compiler"]["status"] == "fail" and "6.5.0" in by_id["build_compiler"]["found"]
    req = by_id["build_requirements"]
    assert req["status"] == "fail" and "surely-not-installed-ascendfa>=1.0 (not installed)" in req["found"]
    assert "pyyaml" not in req["found"]
    assert out["ok"] is False and all(line.startswith("build1: [error]") for line in out["lines"])
    assert any(f"-m pip install -r {h['src']}/requirements.txt" in line for line in out["lines"])


def test_good_tools_pass(build_host):
    h = build_host
    (h["src"] / "requirements.txt").write_text("pyyaml\n")
    _tool(h["tools"], "cmake", "cmake version 3.28.3")
    _tool(h["tools"], "gcc", "12.2.0")
    _tool(h["tools"], "g++", "12.2.0")
    out, by_id = _run(h)
    assert out["ok"] is True, out["lines"]
    assert by_id["build_cmake"]["found"].startswith("cmake 3.28.3")


def test_missing_tools_are_named(build_host):
    h = build_host
    (h["home"] / "cann" / "set_env.sh").write_text('export PATH=/nonexistent-ascendfa\n')
    out, by_id = _run(h, build_python="python3")
    assert by_id["build_cmake"]["found"] == "cmake is not on the PATH"
    assert "gcc (C compiler) is not on the PATH" in by_id["build_compiler"]["found"]
    assert "g++ (CXX compiler) is not on the PATH" in by_id["build_compiler"]["found"]
    assert "python3 not found" in by_id["build_requirements"]["found"]


def test_no_cmakelists_skips_cmake(build_host):
    h = build_host
    (h["src"] / "CMakeLists.txt").unlink()
    _, by_id = _run(h)
    assert by_id["build_cmake"]["status"] == "skip"


# --- non-root access (item 8) --------------------------------------------------------------------------------------
def _vendor(tmp_path: Path, dir_mode: int, ini_mode: int) -> dict:
    opp = tmp_path / "opp"
    vendor = opp / "vendors" / "ascendfa_transformer"
    (vendor / "op_api/lib").mkdir(parents=True)
    (vendor / "op_api/lib/libcust_opapi.so").write_text("x")
    kdir = vendor / "op_impl/ai_core/tbe/kernel"
    (kdir / "ascend910b/flash_attention_score").mkdir(parents=True)
    (kdir / "config/ascend910b").mkdir(parents=True)
    (kdir / "ascend910b/flash_attention_score/a.o").write_text("o")
    (kdir / "ascend910b/flash_attention_score/a.json").write_text("{}")
    (kdir / "config/ascend910b/flash_attention_score.json").write_text("{}")
    ini = opp / "vendors" / "config.ini"
    ini.write_text("load_priority=ascendfa_transformer\n")
    for p in [tmp_path, *tmp_path.rglob("*")]:
        p.chmod(dir_mode if p.is_dir() else 0o644)
    ini.chmod(ini_mode)
    manifest = {"vendor_dir": str(vendor), "install_for_all": dir_mode & 0o005 == 0o005,
                "kernels": {"soc_family": "ascend910b", "ops": ["flash_attention_score"]}}
    ctx = fa_env_lib.context({**fa_env_lib.DEFAULTS, "state_dir": str(tmp_path / "state")}, manifest)
    return {"ctx": ctx, "env": {"ASCEND_OPP_PATH": str(opp)}, "ini": ini, "vendor": vendor}


def test_others_access_names_what_a_non_root_process_cannot_read(tmp_path):
    # ancestors of pytest's tmp_path (0700) are out of our hands: only paths from tmp_path on are judged here
    v = _vendor(tmp_path, 0o750, 0o640)
    status, found = fa_env_lib.evaluate_access(v["ctx"], v["env"])
    assert status == "fail" and "fa_install_for_all: false" in found and str(tmp_path / "opp") in found


def test_others_access_passes_on_an_open_tree(tmp_path):
    v = _vendor(tmp_path, 0o755, 0o755)
    blocked = [p for p, how in fa_env_lib.access_paths(v["ctx"], v["env"])
               if p.startswith(str(tmp_path)) and fa_env_lib.access_blocked(p, how)]
    assert blocked == []
    paths = [p for p, _ in fa_env_lib.access_paths(v["ctx"], v["env"])]
    assert str(v["ini"]) in paths and str(v["vendor"] / "op_api/lib/libcust_opapi.so") in paths
    assert str(v["vendor"] / "op_impl/ai_core/tbe/kernel/ascend910b/flash_attention_score/a.o") in paths


def test_package_present_reports_missing_kernels(tmp_path):
    v = _vendor(tmp_path, 0o755, 0o644)
    check = next(c for c in CHECKS if c["id"] == "package_present")
    assert fa_env_lib.evaluate(check, v["ctx"], {}, {})[0] == "ok"
    for f in (v["vendor"] / "op_impl/ai_core/tbe/kernel/ascend910b/flash_attention_score").iterdir():
        f.unlink()
    status, found = fa_env_lib.evaluate(check, v["ctx"], {}, {})[:2]
    assert status == "fail" and "ascend910b" in found and "flash_attention_score" in found


def test_every_build_check_has_a_fix_naming_the_host():
    build = [c for c in CHECKS if "build" in (c.get("phases") or [])]
    assert {c["id"] for c in build} == {"cann_env", "build_cmake", "build_compiler", "build_requirements"}
    assert all("{host}" in c["fix"] for c in build if c["id"] != "cann_env")
