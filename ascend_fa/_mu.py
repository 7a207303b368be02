"""Load the repo's Ansible ``module_utils`` (stdlib-only parsers) as ordinary Python modules."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from ascend_fa import PROJECT_ROOT


def load(name: str) -> ModuleType:
    full = f"ascend_fa._mu_{name}"
    if full in sys.modules:
        return sys.modules[full]
    path = PROJECT_ROOT / "module_utils" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(full, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[full] = mod
    spec.loader.exec_module(mod)
    return mod
