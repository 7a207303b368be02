"""tests/ci_policy.py: outside CI a missing podman or a non-root run skips the fleet tests; under CI=true it fails
them, also where a skip with such a reason is written elsewhere (the report hook)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ci_policy
import pytest

TESTS = Path(ci_policy.__file__).resolve().parent


@pytest.mark.parametrize(("value", "want"), [("true", True), ("TRUE", True), ("1", True), (" yes ", True),
                                             ("false", False), ("0", False), ("", False), (None, False)])
def test_in_ci(value, want):
    env = {} if value is None else {"CI": value}
    assert ci_policy.in_ci(env) is want


@pytest.mark.parametrize(("podman", "uid", "words"), [
    ("/usr/bin/podman", 0, None),
    (None, 0, ["podman is not installed"]),
    ("/usr/bin/podman", 1000, ["uid 1000, not root"]),
    (None, 1000, ["podman is not installed", "uid 1000, not root"]),
])
def test_fleet_problem_names_what_is_missing(podman, uid, words):
    problem = ci_policy.fleet_problem(which=lambda name: podman if name == "podman" else "/bin/x", euid=lambda: uid)
    if words is None:
        assert problem is None
    else:
        assert all(w in problem for w in words) and "scripts/setup.sh" in problem, problem


@pytest.mark.parametrize(("problem", "env", "want"), [
    (None, {"CI": "true"}, "run"), (None, {}, "run"),
    ("podman is not installed", {}, "skip"), ("podman is not installed", {"CI": "false"}, "skip"),
    ("podman is not installed", {"CI": "true"}, "fail"), ("the tests run as uid 1000, not root", {"CI": "1"}, "fail"),
])
def test_decide(problem, env, want):
    assert ci_policy.decide(problem, env) == want


def test_require_fleet_skips_outside_ci_and_fails_in_ci():
    missing = "podman is not installed"
    with pytest.raises(pytest.skip.Exception, match=missing):
        ci_policy.require_fleet(lambda: missing, env={})
    with pytest.raises(pytest.fail.Exception, match=f"CI=true and {missing}"):
        ci_policy.require_fleet(lambda: missing, env={"CI": "true"})
    assert ci_policy.require_fleet(lambda: None, env={"CI": "true"}) is None


@pytest.mark.parametrize(("reason", "env", "want"), [
    ("podman (as root) is needed for the simulated fleet", {"CI": "true"}, True),
    ("needs podman, debootstrap and ssh (scripts/setup.sh)", {"CI": "true"}, True),
    ("the tests run as uid 1000, not root", {"CI": "true"}, True),
    ("podman (as root) is needed for the simulated fleet", {}, False),
    ("needs gcc, make, tar, gzip, sha256sum, git", {"CI": "true"}, False),
    ("set ASCEND_FA_ROLE_TESTS=1 (slow)", {"CI": "true"}, False),
])
def test_skip_must_fail(reason, env, want):
    assert ci_policy.skip_must_fail(reason, env) is want


SAMPLE = """
import pytest

def test_needs_the_fleet():
    pytest.skip("podman (as root) is needed for the simulated fleet: run scripts/setup.sh")

@pytest.mark.skipif(True, reason="needs podman, debootstrap and ssh")
def test_marked():
    pass

def test_other_skip():
    pytest.skip("needs gcc")
"""


def _run_sample(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(TESTS)}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "ci_policy", "-p", "no:cacheprovider", "-rs", "-q",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_sample.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_hook_fails_fleet_skips_under_ci(tmp_path):
    run = _run_sample(tmp_path, "true")
    assert run.returncode == 1, run.stdout + run.stderr
    # a skip in the call fails the test; one in the set-up (a skipif mark, a fixture) is an error: both exit 1
    assert "1 failed, 1 skipped, 1 error" in run.stdout, run.stdout
    assert "CI=true: this test may not be skipped (podman (as root) is needed" in run.stdout
    assert "CI=true: this test may not be skipped (needs podman, debootstrap" in run.stdout
    assert "SKIPPED [1]" in run.stdout and "needs gcc" in run.stdout


def test_hook_leaves_skips_alone_outside_ci(tmp_path):
    run = _run_sample(tmp_path, None)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 skipped" in run.stdout and "podman (as root) is needed" in run.stdout, run.stdout
