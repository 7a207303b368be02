"""YAML loading for data files read once per host on the controller (compat matrix, recipes, env checks).

libyaml's C loader where PyYAML has it (about ten times faster than the pure-Python one: each Ansible worker parses
these files again), the pure-Python safe loader otherwise. Same result either way: safe types only.
"""

from __future__ import annotations

from typing import IO, Any

import yaml

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(stream: str | bytes | IO) -> Any:
    return yaml.load(stream, Loader=SafeLoader)  # noqa: S506 - a safe loader (C or Python)
