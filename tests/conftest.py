"""Test set-up shared by every test: make library/, module_utils/ and kernels/ importable.

Ansible modules import their helpers as ``ansible.module_utils.<name>``; outside Ansible we alias those names
to the repo's module_utils files so tests call module functions directly.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for sub in ("library", "kernels"):
    p = str(ROOT / sub)
    if p not in sys.path:
        sys.path.insert(0, p)

import importlib.abc  # noqa: E402

MODULE_UTILS = ROOT / "module_utils"


class _RepoModuleUtils(importlib.abc.MetaPathFinder):
    """Resolve ``ansible.module_utils.<name>`` to ``module_utils/<name>.py`` of this repo."""

    def find_spec(self, fullname, path=None, target=None):
        prefix = "ansible.module_utils."
        if not fullname.startswith(prefix) or "." in fullname[len(prefix):]:
            return None
        candidate = MODULE_UTILS / f"{fullname[len(prefix):]}.py"
        if candidate.is_file():
            return importlib.util.spec_from_file_location(fullname, candidate)
        return None


sys.meta_path.insert(0, _RepoModuleUtils())

# The artifact cache key (ascend_fa/trust.py) of every test run, ansible-playbook and CLI subprocesses included: a
# throwaway file, never the real ~/.config/ascend-fa/cache.key. Tests of the key itself set their own.
if not os.environ.get("ASCEND_FA_CACHE_KEY"):
    os.environ.setdefault("ASCEND_FA_CACHE_KEY_FILE",
                          os.path.join(tempfile.mkdtemp(prefix="ascend-fa-test-key-"), "cache.key"))

# Under CI=true a skip for a missing podman or a non-root run fails the test (tests/ci_policy.py).
from ci_policy import pytest_runtest_makereport  # noqa: E402,F401


# ------------------------------------------------------------------------------------------------ headless browser
@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path):
    """A headless Chromium (tests/harness/browser.py): ``browser.render(html_file, screenshot="x.png")`` gives the DOM
    after the page's scripts ran and saves the screenshot in the test's output folder. No Chromium: skip with the
    reason, but under CI=true fail (a CI without the browser must not pass the browser checks)."""
    from ci_policy import in_ci
    from harness.browser import Browser, find_chromium, output_dir

    binary = find_chromium()
    if binary is None:
        why = ("headless Chromium not found: install Debian's chromium (scripts/setup.sh does) or set "
               "ASCEND_FA_CHROMIUM to the binary")
        if in_ci():
            pytest.fail(f"CI=true: {why}", pytrace=False)
        pytest.skip(why)
    return Browser(binary, tmp_path, output_dir(request.node.nodeid))
