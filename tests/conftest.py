"""Test set-up shared by every test: make kernels/ importable (scripts that run on the hosts, not a package).

Everything else is imported by its installed name: ``ascend_fa`` (the CLI), ``ascend_sim`` (the simulator) and the
collection as ``ansible_collections.ascend.fa.plugins.*``, through Ansible's collection loader (set up by importing
ascend_fa, as in the CLI): the same files under the same names as in an ansible-playbook run.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

import ascend_fa  # noqa: F401  - first: sets up Ansible's collection loader, which then imports ascend.fa's code

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "kernels") not in sys.path:
    sys.path.insert(0, str(ROOT / "kernels"))

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
