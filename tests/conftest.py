"""Test set-up shared by every test: make library/, module_utils/ and kernels/ importable.

Ansible modules import their helpers as ``ansible.module_utils.<name>``; outside Ansible we alias those names
to the repo's module_utils files so tests call module functions directly.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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
