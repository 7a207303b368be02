"""The ordering of version strings (module_utils/fa_versions.py, its one home) against literal orderings, on this
Python and on a Python 3.6 host's. Absurd version strings (plugin_utils/versions.py check_version) are errors naming
where they came from and the value: on the ``ascend-fa compat`` command line (exit 2, no traceback), in a host's facts
given to compat.check (an ``invalid_version`` problem), and in any comparison (VersionError, a ValueError)."""

from __future__ import annotations

import ast
import functools
import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.module_utils import fa_env_lib, fa_torch_pair, fa_versions
from ansible_collections.ascend.fa.plugins.plugin_utils import compat, versions

from ascend_fa import cli

ROOT = Path(__file__).resolve().parents[2]
DIGITS_5000 = "9" * 5000
ABSURD = {
    "5000 digits": (DIGITS_5000, "5000 characters, more than 64"),
    "65 characters": ("1." + "2" * 63, "65 characters, more than 64"),
    "9 components": ("1.2.3.4.5.6.7.8.9", "9 components, more than 8"),
    "9-digit number": ("8.123456789", "a number of 9 digits, more than 8"),
    "escape sequence": ("8.5.0\x1b[2J", "control character"),
    "newline": ("8.5.0\n9.0.0", "control character"),
    "NUL": ("8.5\x000", "control character"),
    "shell": ("8.5.0;id", "character ';' not allowed"),
    "command substitution": ("$(id)", "characters '$' '(' ')' not allowed"),
    "space inside": ("8.5 0", "character ' ' not allowed"),
    "empty": ("   ", "empty"),
    "leading dot": (".8.5", "it must start with a letter or a digit"),
    "a list": (["8.5.0"], "a list, not a string"),
}
REAL = ["8.5.0", "8.0.RC1", "8.0.rc3.alpha002", "8.5.0-beta.1", "24.1.rc1", "25.5.0", "7.5.0.1.129", "2.1.0.post4",
        "2.9.0+cpu", "2.5.0.dev20240801+cpu", "V100R001C19SPC001B124", "9.0.x", "23.0.0.", " 8.5.0 ", 8.5, 25]


@pytest.mark.parametrize("value", REAL, ids=str)
def test_real_versions_pass(value):
    assert versions.check_version(value, "--cann") == str(value).strip()


@pytest.mark.parametrize(("value", "reason"), ABSURD.values(), ids=list(ABSURD))
def test_absurd_versions_are_errors_naming_option_and_value(value, reason):
    with pytest.raises(versions.VersionError) as err:
        versions.check_version(value, "--driver")
    msg = str(err.value)
    assert msg.startswith("--driver: ") and reason in msg and "expected" in msg
    assert "\x1b" not in msg and "\n" not in msg and "\x00" not in msg     # the value is shown escaped
    assert len(msg) < 400                                                  # 5000 digits are not repeated


def test_comparisons_refuse_absurd_versions():
    with pytest.raises(versions.VersionError):
        versions.vcmp(DIGITS_5000, "8.5.0")
    with pytest.raises(ValueError):        # a VersionError is a ValueError: callers catching that keep working
        versions.Version("1" * 100)
    assert versions.vcmp("8.0.RC1", "8.0.0") < 0 and versions.vcmp("8.5", "8.5.0") == 0


# ------------------------------------------------------------------------------------------------ the ordering
# oldest first, as the Ascend release notes and PEP 440 order them; one line per group of equal versions
ORDERED = [["7.0.0"], ["8.0.RC1", "8.0.rc1"], ["8.0.RC2"], ["8.0.0", "8.0"], ["8.5.0.alpha001"], ["8.5.0-beta.1"],
           ["8.5", "8.5.0", " 8.5.0 "], ["8.5.2"], ["9.0.0"]]
TORCH_NPU = [["2.1.0", "2.1"], ["2.1.0.post3"], ["2.1.0.post4", "2.1.0.spc4"], ["2.1.0.post17"], ["2.9.0"]]
DRIVERS = [["23.0.3"], ["24.1.rc1", "24.1.RC1"], ["24.1.rc3"], ["24.1.0"], ["25.5.0"], ["25.5.1"]]
INNER = [["V100R001C13"], ["V100R001C19"], ["V100R001C19SPC001B124"], ["V100R001C19SPC002"], ["V100R001C30"]]


@pytest.mark.parametrize("groups", [ORDERED, TORCH_NPU, DRIVERS, INNER], ids=["cann", "torch_npu", "driver", "inner"])
def test_ordering_matches_the_literal_order(groups):
    flat = [v for g in groups for v in g]
    rank = {v: i for i, g in enumerate(groups) for v in g}
    for a in flat:
        for b in flat:
            want = (rank[a] > rank[b]) - (rank[a] < rank[b])
            assert fa_versions.vcmp(a, b) == want, (a, b)
            assert fa_versions.vequal(a, b) == (want == 0), (a, b)
    shuffled = sorted(flat, key=str.lower, reverse=True)
    assert [rank[v] for v in sorted(shuffled, key=functools.cmp_to_key(fa_versions.vcmp))] == sorted(rank.values())


def test_same_prefix_is_by_position():
    assert fa_versions.same_prefix("2.1.0.post4", "2.1") and fa_versions.same_prefix("9.0.1", "9.0")
    assert fa_versions.same_prefix("8.0.RC1", "8.0.rc1") and fa_versions.same_prefix("24.1-rc3", "24.1")
    assert not fa_versions.same_prefix("2.10.0", "2.1") and not fa_versions.same_prefix("9.1.0", "9.0")


def test_one_home_for_the_ordering_and_the_torch_pair():
    """The controller and the hosts' modules use the same functions (not copies); the controller validates first."""
    assert versions.compare_keys is fa_versions.compare_keys and versions.same_prefix is fa_versions.same_prefix
    assert versions._key(" 8.0.RC1 ") == fa_versions.key("8.0.RC1") == ((3, 8), (3, 0), (-1, 2, 1))
    assert fa_env_lib.torch_pair_problems is fa_torch_pair.torch_pair_problems


HOST_SIDE = ("fa_versions", "fa_torch_pair", "fa_known_errors_data")   # what this project ships to Python 3.6+ hosts
_MU = Path(fa_versions.__file__).parent
_ON_36 = """
import functools, json
from ansible_collections.ascend.fa.plugins.module_utils import fa_known_errors_data, fa_torch_pair, fa_versions
table = {"8.5.0": {"extension": "7.3.0", "torch_npu": ["2.9.0", "2.8.0.post2"]}}
print(json.dumps({"sorted": sorted(["8.0.0", "8.5", "8.0.RC1", "2.1.0.post4", "2.1.0"],
                                   key=functools.cmp_to_key(fa_versions.vcmp)),
                  "pair": fa_torch_pair.torch_pair_problems("8.5", "2.8.0+cpu", "2.1.0.post4", table),
                  "signatures": len(fa_known_errors_data.SIGNATURES)}))
"""


def _python36() -> str | None:
    """A Python 3.6 interpreter that runs (a pyenv shim on PATH may not), or None."""
    candidates = sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.6*/bin/python"))) + [shutil.which("python3.6")]
    for python in filter(None, candidates):
        try:
            run = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2] == (3, 6))"], capture_output=True,
                                 text=True, timeout=30)
        except OSError:
            continue
        if run.stdout.strip() == "True":
            return python
    return None


@pytest.mark.parametrize("name", HOST_SIDE)
def test_host_side_modules_are_python36_syntax(name):
    source = (_MU / f"{name}.py").read_text()
    ast.parse(source, feature_version=(3, 6))          # no walrus, no positional-only parameters, ...
    assert "from __future__ import annotations" not in source     # a SyntaxError before Python 3.7


def test_host_side_modules_run_on_python36(tmp_path):
    python = _python36()
    if python is None:
        pytest.skip("no Python 3.6 interpreter here (python3.6 on PATH or ~/.pyenv/versions/3.6*)")
    pkg = tmp_path / "ansible_collections" / "ascend" / "fa" / "plugins" / "module_utils"
    pkg.mkdir(parents=True)
    for folder in (pkg, *pkg.parents[:4]):
        (folder / "__init__.py").write_text("")
    for name in HOST_SIDE:
        shutil.copy(_MU / f"{name}.py", pkg)
    run = subprocess.run([python, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n" + _ON_36],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["sorted"] == ["2.1.0", "2.1.0.post4", "8.0.RC1", "8.0.0", "8.5"]
    assert [p[0] for p in out["pair"]] == ["torch_npu_cann_mismatch", "torch_torch_npu_mismatch"]
    assert out["pair"][0][3] == "pip install torch_npu==2.8.0.post2 torch==2.8.0 (Ascend Extension for PyTorch 7.3.0)"
    assert out["signatures"] == len(__import__(
        "ansible_collections.ascend.fa.plugins.module_utils.fa_known_errors_data", fromlist=["x"]).SIGNATURES)


def test_show_value_cuts_and_escapes():
    assert versions.show_value("a\x1b[31m") == "'a\\x1b[31m'"
    assert versions.show_value("7" * 50) == repr("7" * 40) + "... (50 characters)"


# ------------------------------------------------------------------------------------------------ compat
STACK = {"driver_version": "25.5.0", "cann_version": "8.5.0", "soc_version": "ascend910b3", "soc_family": "ascend910b",
         "fa_supported": True, "torch_version": "2.9.0", "torch_npu_version": "2.9.0"}


@pytest.mark.parametrize("key", sorted(compat.STACK_VERSIONS))
def test_host_facts_with_an_absurd_version_are_a_problem_not_a_traceback(key):
    assert compat.check({**STACK, "firmware_version": "7.8.0.2.212"}, tag="v9.0.1") is not None   # sane: no raise
    problems = compat.check({**STACK, "firmware_version": "7.8.0.2.212", key: DIGITS_5000}, tag="v9.0.1")
    assert [p.code for p in problems] == ["invalid_version"] and problems[0].severity == compat.ERROR
    assert compat.STACK_VERSIONS[key] in problems[0].what and "5000 characters" in problems[0].found


def test_damaged_compatible_version_ranges_are_a_problem():
    problems = compat.check({**STACK, "firmware_version": "7.8.0.2.212", "driver_compatible_fw": f"[{DIGITS_5000},8.0]"})
    assert "invalid_version_range" in [p.code for p in problems]
    assert compat.inner_in_ranges("V100R001C19", f"[V{DIGITS_5000}R001C13,V100R001C19]") is False   # no int() of it


@pytest.mark.parametrize(("option", "value"), [("--driver", DIGITS_5000), ("--cann", "8.5.0\x1b]0;pwned\x07"),
                                               ("--firmware", "1.2.3.4.5.6.7.8.9"), ("--torch-npu", "2.1.0;id"),
                                               ("--torch", "2.1.0.1234567890"), ("--soc", "ascend910b3\x1b[2J"),
                                               ("--tag", "v" + "9" * 80)])
def test_cli_compat_absurd_values_exit_2_with_message(capsys, option, value):
    args = {"--driver": "25.5.0", "--cann": "8.5.0", "--soc": "ascend910b3", option: value}
    code = cli.main(["compat", *[x for kv in args.items() for x in kv]])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith(f"ascend-fa compat: {option}: ") and "Traceback" not in err
    assert "\x1b" not in err and len(err) < 500


def test_cli_compat_5000_digit_driver_in_a_subprocess():
    p = subprocess.run([sys.executable, "-m", "ascend_fa.cli", "compat", "--driver", DIGITS_5000, "--cann", "8.5.0",
                        "--soc", "ascend910b3"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "--driver: '9999" in p.stderr and "(5000 characters) is not a version" in p.stderr


def test_cli_compat_still_accepts_a_sane_stack(capsys):
    assert cli.main(["compat", "--driver", "25.5.0", "--cann", "8.5.0", "--soc", "ascend910b3"]) == 0
    assert "ok: driver 25.5.0" in capsys.readouterr().out
