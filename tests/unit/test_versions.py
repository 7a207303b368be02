"""Absurd version strings (ascend_fa/versions.py check_version) are errors naming where they came from and the
value: on the ``ascend-fa compat`` command line (exit 2, no traceback), in a host's facts given to compat.check
(an ``invalid_version`` problem), and in any comparison (VersionError, a ValueError)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ascend_fa import cli, compat, versions

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
