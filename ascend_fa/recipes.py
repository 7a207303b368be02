"""Release recipes: one YAML file per upstream release (recipes/<name>.yml). Data, not code.

Recipe strings may hold Jinja2 placeholders (``{{ soc_family }}``, ``{{ jobs }}``, ``{{ vendor }}``, ``{{ arch }}``,
``{{ ops }}``); they are rendered by :func:`render` with the values of one build, never by Ansible itself.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from ascend_fa import PROJECT_ROOT, yamlio

BUILTIN_DIR = PROJECT_ROOT / "recipes"
REQUIRED = {
    "name": str, "repo_url": str, "tag": str, "commit": str, "cann": dict, "soc_families": list,
    "build": dict, "install": dict,
}
REQUIRED_BUILD = ("command", "output_glob")
DEFAULTS = {
    "build": {"ops": ["flash_attention_score"], "mem_per_job_mb": 4096, "timeout": 7200},
    "install": {"flags": ["--quiet"], "vendor_dir": "{{ vendor }}_transformer", "libraries": [],
                "ld_library_dirs": ["op_api/lib"], "set_env": "bin/set_env.bash", "config_ini": "config.ini"},
}


class RecipeError(ValueError):
    pass


def search_path(dirs: list[str] | None = None) -> list[Path]:
    return [Path(d) for d in (dirs or []) if d] + [BUILTIN_DIR]


def available(dirs: list[str] | None = None) -> list[str]:
    names: list[str] = []
    for d in search_path(dirs):
        names += sorted(p.stem for p in d.glob("*.yml"))
    return names


def load(name: str, dirs: list[str] | None = None) -> dict:
    for d in search_path(dirs):
        path = d / f"{name}.yml"
        if path.is_file():
            data = yamlio.load(path.read_text(encoding="utf-8"))
            validate(data, path)
            for section, defaults in DEFAULTS.items():
                data[section] = {**defaults, **data[section]}
            return data
    where = ", ".join(str(d) for d in search_path(dirs))
    raise RecipeError(f"no recipe named '{name}' (searched {where}); available: {', '.join(available(dirs))}. "
                      f"Fix: set fa_recipe to one of these, or add {name}.yml to a recipe folder.")


def validate(data: object, path: Path | str) -> None:
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping")
    for key, typ in REQUIRED.items():
        if not isinstance(data.get(key), typ):
            raise RecipeError(f"{path}: '{key}' missing or not a {typ.__name__}")
    for key in REQUIRED_BUILD:
        if not data["build"].get(key):
            raise RecipeError(f"{path}: build.{key} missing")
    commit = data["commit"]
    if len(commit) != 40 or any(c not in "0123456789abcdef" for c in commit):
        raise RecipeError(f"{path}: commit must be a full 40-hex git commit id, got {commit!r}")


_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


def render(template: str, **values: object) -> str:
    try:
        return _ENV.from_string(template).render(**values)
    except jinja2.UndefinedError as exc:
        raise RecipeError(f"recipe template {template!r}: {exc}") from exc
