"""Item 6 and 8 of issue 21: the installed-package check covers the kernel binaries and configs of the host's SoC
family, and the install is usable by non-root processes (--install-for-all) - with a small fake .run.

The layout is written from the DESTINATION lines of ops-transformer v9.0.1 cmake/func.cmake (quoted below), not from
the code's constant:
    install(DIRECTORY ${OP_BIN_OUT_DIR} DESTINATION ${_INSTALL_DIR}/${BINARY_COMPUTE_UNIT} OPTIONAL)
    install(FILES ${BIN_OUT_DIR}/${op_file}.json DESTINATION ${_INSTALL_DIR}/config/${BINARY_COMPUTE_UNIT} OPTIONAL)
    set(_INSTALL_DIR packages/vendors/${VENDOR_NAME}_transformer/op_impl/ai_core/tbe/kernel)
"""

from __future__ import annotations

import hashlib
import stat
import subprocess
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.module_utils.fa_install_lib import Installer, InstallError
from ansible_collections.ascend.fa.plugins.module_utils.fa_manifest import kernel_problems, package_state

INSTALL_DIR = "op_impl/ai_core/tbe/kernel"   # func.cmake _INSTALL_DIR, below packages/vendors/<vendor>_transformer

# install.sh v9.0.1 (cmake/scripts/custom/install.sh): config.ini created 640; --install-for-all: chmod 755 config.ini.
# The tree is made with root's umask: 027 here, so that only ascend-fa's own opening can make it readable by others.
FAKE_RUN = r"""#!/bin/bash
set -e
umask 027
[ -n "$ASCEND_OPP_PATH" ] || { echo "[ERROR] env ASCEND_OPP_PATH no exist"; exit 1; }
FOR_ALL=n
for a in "$@"; do [ "$a" = --install-for-all ] && FOR_ALL=y; done
echo "$@" > "$ASCEND_OPP_PATH/../installer_args"
V=$ASCEND_OPP_PATH/vendors/ascendfa_transformer
rm -rf "$V"; mkdir -p "$V/op_api/lib"
echo lib > "$V/op_api/lib/libcust_opapi.so"
K="$V/op_impl/ai_core/tbe/kernel"
mkdir -p "$K/@SOC@/flash_attention_score" "$K/config/@SOC@"
echo o > "$K/@SOC@/flash_attention_score/FlashAttentionScore_1a2b.o"
echo '{}' > "$K/@SOC@/flash_attention_score/FlashAttentionScore_1a2b.json"
echo '{}' > "$K/config/@SOC@/flash_attention_score.json"
echo '{}' > "$K/config/@SOC@/binary_info_config.json"
cfg=$ASCEND_OPP_PATH/vendors/config.ini
[ -f "$cfg" ] || { touch "$cfg"; chmod 640 "$cfg"; }
echo "load_priority=ascendfa_transformer" > "$cfg"
[ "$FOR_ALL" = y ] && chmod 755 "$cfg"
echo SUCCESS
"""


def make_pkg(tmp: Path, soc: str) -> tuple[str, str]:
    p = tmp / f"pkg-{soc}.run"
    p.write_text(FAKE_RUN.replace("@SOC@", soc))
    p.chmod(0o755)
    return str(p), hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def env(tmp_path):
    opp = tmp_path / "opp"
    (opp / "vendors").mkdir(parents=True)
    set_env = tmp_path / "set_env.sh"
    set_env.write_text(f"export ASCEND_OPP_PATH={opp}\n")
    return tmp_path, opp, str(set_env)


def installer(tmp: Path, set_env: str, soc: str | None, **over) -> Installer:
    meta = {"recipe": "r1", "build_key": "k1", **({"soc_family": soc} if soc else {})}
    params = {"state_dir": str(tmp / "state"), "set_env": [set_env], "flags": ["--quiet"], "install_path": "",
              "vendor": "ascendfa", "vendor_dir_name": "ascendfa_transformer",
              "libraries": ["op_api/lib/libcust_opapi.so"], "ld_library_dirs": ["op_api/lib"],
              "package_set_env": "bin/set_env.bash", "ldconfig_file": str(tmp / "ld.so.conf.d" / "ascend-fa.conf"),
              "success_marker": "SUCCESS", "force": False, "meta": meta, "sha256": None, "install_for_all": True,
              "check_kernels": True, "kernel_ops": ["flash_attention_score"]}
    params.update(over)

    def runner(cmd):
        if cmd == "ldconfig":
            return 0, "", ""
        p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
        return p.returncode, p.stdout, p.stderr
    return Installer(params, runner)


def lay_out(vendor: Path, soc: str, op: str = "flash_attention_score") -> None:
    kdir = vendor / INSTALL_DIR / soc / op
    kdir.mkdir(parents=True)
    (kdir / "FlashAttentionScore_9f.o").write_text("o")
    (kdir / "FlashAttentionScore_9f.json").write_text("{}")
    (vendor / INSTALL_DIR / "config" / soc).mkdir(parents=True)
    (vendor / INSTALL_DIR / "config" / soc / f"{op}.json").write_text("{}")


def test_kernel_layout_of_the_host_soc_passes(tmp_path):
    lay_out(tmp_path, "ascend910b")
    assert kernel_problems(str(tmp_path), "ascend910b", ["flash_attention_score"]) == []


def test_a_package_built_for_another_soc_is_named(tmp_path):
    lay_out(tmp_path, "ascend910_93")
    out = kernel_problems(str(tmp_path), "ascend910b", ["flash_attention_score"])
    assert len(out) == 2
    assert "ascend910b" in out[0] and str(tmp_path / INSTALL_DIR / "ascend910b") in out[0]
    assert "ascend910_93 only" in out[0]
    assert str(tmp_path / INSTALL_DIR / "config" / "ascend910b") in out[1]


def test_a_binary_without_its_json_or_a_missing_config_is_named(tmp_path):
    lay_out(tmp_path, "ascend910b")
    (tmp_path / INSTALL_DIR / "ascend910b/flash_attention_score/FlashAttentionScore_9f.json").unlink()
    (tmp_path / INSTALL_DIR / "config/ascend910b/flash_attention_score.json").unlink()
    (tmp_path / INSTALL_DIR / "config/ascend910b/other.json").write_text("{}")
    out = kernel_problems(str(tmp_path), "ascend910b", ["flash_attention_score"])
    assert any("has no *.o with its *.json" in o for o in out)
    assert any("flash_attention_score.json is missing" in o for o in out)


@pytest.mark.parametrize("soc", ["../ascend910b", "Ascend910B3", "a/b", "x" * 65])
def test_hostile_soc_family_is_refused_not_joined(tmp_path, soc):
    out = kernel_problems(str(tmp_path), soc)
    assert len(out) == 1 and "is not a --soc value" in out[0]


def test_install_for_the_wrong_soc_fails_naming_soc_and_path_and_restores(env):
    tmp, opp, set_env = env
    pkg, sha = make_pkg(tmp, "ascend910_93")
    inst = installer(tmp, set_env, "ascend910b")
    with pytest.raises(InstallError) as exc:
        inst.install(pkg, sha, inst.p["meta"])
    msg = str(exc.value)
    assert "ascend910b" in msg and str(opp / "vendors/ascendfa_transformer" / INSTALL_DIR / "ascend910b") in msg
    assert exc.value.extra["kernels_missing"]
    assert not (opp / "vendors/ascendfa_transformer").exists() and inst.current() is None


def test_removed_binaries_make_the_package_kernels_missing_and_the_next_install_repairs(env):
    tmp, opp, set_env = env
    pkg, sha = make_pkg(tmp, "ascend910b")
    inst = installer(tmp, set_env, "ascend910b", sha256=sha)
    manifest = inst.install(pkg, sha, inst.p["meta"])
    assert manifest["kernels"] == {"soc_family": "ascend910b", "ops": ["flash_attention_score"]}
    assert package_state(manifest, None, None)["state"] == "installed"
    kdir = opp / "vendors/ascendfa_transformer" / INSTALL_DIR / "ascend910b" / "flash_attention_score"
    for f in kdir.iterdir():
        f.unlink()
    st = package_state(inst.current(), None, None)
    assert st["state"] == "kernels_missing" and str(kdir) in st["detail"] and "ascend910b" in st["detail"]
    assert not inst.is_converged(inst.current())
    changed, _ = inst.present(None, sha, inst.p["meta"])   # the kept copy
    assert changed and package_state(inst.current(), None, None)["state"] == "installed"
    # the host's own SoC family (when the caller knows it) wins over the recorded one
    assert package_state(inst.current(), None, None, soc_family="ascend910_93")["state"] == "kernels_missing"


def test_no_soc_family_or_check_off_checks_nothing(env):
    tmp, opp, set_env = env
    pkg, sha = make_pkg(tmp, "ascend910_93")
    m = installer(tmp, set_env, None).install(pkg, sha, {"build_key": "k"})
    assert m["kernels"] is False and package_state(m, None, None)["state"] == "installed"
    m = installer(tmp, set_env, "ascend910b", check_kernels=False).install(pkg, sha, {"build_key": "k",
                                                                                      "soc_family": "ascend910b"})
    assert package_state(m, None, None)["state"] == "installed"


def _others(path: Path, bits: int) -> bool:
    return path.stat().st_mode & bits == bits


def test_install_for_all_opens_the_tree_and_config_ini(env):
    tmp, opp, set_env = env
    pkg, sha = make_pkg(tmp, "ascend910b")
    inst = installer(tmp, set_env, "ascend910b", flags=["--quiet", "--force"])
    m = inst.install(pkg, sha, inst.p["meta"])
    args = (tmp / "installer_args").read_text().split()
    assert "--install-for-all" in args and "--force" not in args   # v9.0.1's install.sh has no --force
    assert m["install_for_all"] is True
    # pytest's own temporary folders are 0700: reported (CANN's folders above the vendor are never changed)
    assert all("cannot enter" in w and str(opp) not in w.split("cannot enter")[1].split("(no o+x)")[0]
               for w in inst.messages)
    vendor = opp / "vendors/ascendfa_transformer"
    assert _others(opp / "vendors/config.ini", stat.S_IROTH)
    for p in [vendor, *vendor.rglob("*")]:
        assert _others(p, stat.S_IROTH | (stat.S_IXOTH if p.is_dir() else 0)), p


def test_root_only_install_keeps_install_sh_modes_and_warns(env):
    tmp, opp, set_env = env
    pkg, sha = make_pkg(tmp, "ascend910b")
    inst = installer(tmp, set_env, "ascend910b", install_for_all=False, flags=["--quiet", "--install-for-all"])
    m = inst.install(pkg, sha, inst.p["meta"])
    assert "--install-for-all" not in (tmp / "installer_args").read_text()
    assert m["install_for_all"] is False
    assert stat.S_IMODE((opp / "vendors/config.ini").stat().st_mode) == 0o640
    assert len(inst.messages) == 1 and "non-root" in inst.messages[0]
    # switching fa_install_for_all on makes the same package not converged: the next install opens it
    assert not installer(tmp, set_env, "ascend910b", sha256=sha).is_converged(inst.current())
