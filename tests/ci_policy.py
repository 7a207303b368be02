"""Skip or fail when the simulated fleet cannot run here.

Outside CI a missing podman or a non-root run skips the fleet tests, with the reason (``pytest -rs`` lists it).
Under ``CI=true`` the same condition fails them: a CI run that quietly tested nothing on the fleet must not pass.
``require_fleet()`` is the one decision for the fixtures; the ``pytest_runtest_makereport`` hook below (imported by
tests/conftest.py) also turns any other skip whose reason names podman or root into a failure under CI, so a skip
written elsewhere cannot slip through.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Mapping
from typing import Literal

import pytest

FLEET_FIX = "Fix: run scripts/setup.sh (as root), then run the tests as root"
# skip reasons that mean "the simulated fleet cannot run here"
_FLEET_REASON = re.compile(r"\bpodman\b|\broot\b", re.I)
_TRUE = {"true", "1", "yes", "on"}


def in_ci(env: Mapping[str, str] | None = None) -> bool:
    """``CI`` is set to true (GitHub Actions, GitLab CI and most others set ``CI=true``)."""
    return (os.environ if env is None else env).get("CI", "").strip().lower() in _TRUE


def fleet_problem(which: Callable[[str], str | None] = shutil.which, euid: Callable[[], int] = os.geteuid) -> str | None:
    """Why the simulated fleet cannot run on this machine, or None when it can."""
    problems = []
    if which("podman") is None:
        problems.append("podman is not installed")
    uid = euid()
    if uid != 0:
        problems.append(f"the tests run as uid {uid}, not root")
    if not problems:
        return None
    return f"{' and '.join(problems)}: the simulated fleet needs podman as root. {FLEET_FIX}"


def decide(problem: str | None, env: Mapping[str, str] | None = None) -> Literal["run", "skip", "fail"]:
    """``run`` without a problem; with one, ``fail`` under CI=true, else ``skip``."""
    if problem is None:
        return "run"
    return "fail" if in_ci(env) else "skip"


def require_fleet(check: Callable[[], str | None] = fleet_problem, env: Mapping[str, str] | None = None) -> None:
    """Return when the fleet can run; otherwise skip (outside CI) or fail (CI=true) with the reason."""
    problem = check()
    action = decide(problem, env)
    if action == "fail":
        pytest.fail(f"CI=true and {problem}", pytrace=False)
    if action == "skip":
        pytest.skip(problem)


def skip_must_fail(reason: str, env: Mapping[str, str] | None = None) -> bool:
    """A skip with this reason fails the run: under CI=true, when it names podman or root."""
    return in_ci(env) and bool(_FLEET_REASON.search(reason))


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if skip_must_fail(reason):
            report.outcome = "failed"
            report.longrepr = f"CI=true: this test may not be skipped ({reason.removeprefix('Skipped: ')})"
    return report
