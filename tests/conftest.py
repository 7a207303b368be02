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

import ansible.module_utils  # noqa: E402  (the real package, so the alias below sits beside it)

for path in sorted((ROOT / "module_utils").glob("*.py")):
    if path.name == "__init__.py":
        continue
    name = f"ansible.module_utils.{path.stem}"
    if name in sys.modules:
        continue
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    setattr(ansible.module_utils, path.stem, mod)
