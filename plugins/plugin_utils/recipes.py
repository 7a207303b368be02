"""Release recipes: one YAML file per upstream release (recipes/<name>.yml). Data, not code.

Recipe strings may hold placeholders (``{{ soc_family }}``, ``{{ jobs }}``, ``{{ vendor }}``, ``{{ arch }}``,
``{{ ops | join(',') }}``); they are rendered by :func:`render` with the values of one build (a sandboxed Jinja2),
never by Ansible itself. A recipe is input like any other: :func:`validate` checks every field that reaches a
command or a path against strict patterns (no shell syntax, no '..'), and the build command is split into argv words
BEFORE rendering (:func:`command_tokens`, :func:`render_argv`), each word rendered on its own: a value can never
become shell syntax or a second word.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox

from . import settings, yamlio

BUILTIN_DIR = Path(__file__).resolve().parents[2] / "recipes"   # the collection's recipes/
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
        names += [n for n in sorted(p.stem for p in d.glob("*.yml")) if n not in names]
    return names


def load(name: str, dirs: list[str] | None = None) -> dict:
    if not settings.recipe_name_ok(name):
        raise RecipeError(f"fa_recipe {name!r} is not a recipe name: a letter or digit, then letters, digits, '.', '_', "
                          "'-' (a file <name>.yml in fa_recipe_dirs or recipes/; no path, no '..'). Fix: set fa_recipe "
                          f"to one of: {', '.join(available(dirs))}")
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


# The placeholders a recipe may use, and the one filter: {{ name }} or {{ name | join(',') }}
NAMES = ("soc_family", "ops", "vendor", "jobs", "arch")
PLACEHOLDER = re.compile(r"\{\{\s*(?P<name>[A-Za-z_]\w*)\s*(?:\|\s*join\(\s*'(?P<sep>[,:])'\s*\)\s*)?\}\}")
# a word of a command (build command tokens, install flags) once its placeholders are set aside
TOKEN = re.compile(r"[A-Za-z0-9._/=,+:@%-]+")
WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*")       # a file name: vendor_dir
GLOB = re.compile(r"[A-Za-z0-9._+*?-][A-Za-z0-9._/+*?-]*")
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]*")
SOC = re.compile(r"[a-z0-9_]+")
OP = re.compile(r"[A-Za-z0-9_]+")
# values rendered into a recipe string (vendor, SoC family, arch, jobs, ops): one plain word each
VALUE = re.compile(r"[A-Za-z0-9._+-]*")
_MARK = "\ue000{}\ue001"


def _literal(template: str) -> str | None:
    """``template`` with each allowed placeholder replaced by ``x``; None when it holds other template syntax."""
    if "{%" in template or "{#" in template:
        return None
    bad = [m.group("name") for m in PLACEHOLDER.finditer(template) if m.group("name") not in NAMES]
    text = PLACEHOLDER.sub("x", template)
    return None if bad or "{" in text or "}" in text or "\ue000" in text else text


def _template_ok(template: Any, pattern: re.Pattern, path: bool = False) -> bool:
    if not isinstance(template, str) or not template or len(template) > 4096:
        return False
    text = _literal(template)
    if text is None or pattern.fullmatch(text) is None:
        return False
    return not path or ("//" not in text and ".." not in text.split("/") and not text.startswith("/"))


def command_tokens(command: str) -> list[str]:
    """The build command as argv words, split (shell rules) BEFORE rendering: placeholders stay inside their word."""
    if not isinstance(command, str) or "\ue000" in command or "\ue001" in command or settings.CONTROL.search(command):
        raise RecipeError(f"build.command {command!r} is not one command line (no newline or control character)")
    found: list[str] = []

    def hide(m: re.Match) -> str:
        found.append(m.group(0))
        return _MARK.format(len(found) - 1)

    try:
        words = shlex.split(PLACEHOLDER.sub(hide, command), comments=False, posix=True)
    except ValueError as exc:
        raise RecipeError(f"build.command {command!r}: {exc}") from exc
    return [re.sub("\ue000(\\d+)\ue001", lambda m: found[int(m.group(1))], w) for w in words]


def _field_problems(data: dict) -> list[str]:
    """Each field that reaches a command or a path, checked: '<field> = <value>: <what is allowed>'."""
    out: list[str] = []
    build, install = data["build"], data["install"]

    def need(ok: bool, field: str, value: Any, allowed: str) -> None:
        if not ok:
            out.append(f"{field} = {value!r}: {allowed}")

    need(settings.recipe_name_ok(data["name"]), "name", data["name"],
         "a letter or digit, then letters, digits, '.', '_', '-'")
    need(settings.repo_url_ok(data["repo_url"]), "repo_url", data["repo_url"],
         "an https://, ssh://, git:// or file:// URL (or user@host:path) of letters, digits and . _ ~ / : @ % + = -")
    need(TAG.fullmatch(data["tag"]) is not None and ".." not in data["tag"].split("/"), "tag", data["tag"],
         "a git tag: a letter or digit, then letters, digits and . _ / + -")
    for soc in data["soc_families"]:
        need(isinstance(soc, str) and SOC.fullmatch(soc) is not None, "soc_families[]", soc,
             "a lowercase SoC family, e.g. ascend910b")
    try:
        tokens = command_tokens(build.get("command"))
    except RecipeError as exc:
        out.append(str(exc))
        tokens = []
    need(bool(tokens), "build.command", build.get("command"), "a command line, e.g. bash build.sh --pkg ...")
    for token in tokens:
        need(_template_ok(token, TOKEN), "build.command word", token,
             "letters, digits and . _ / = , + : @ % - (no shell syntax: the command runs as argv words), "
             "placeholders {{ soc_family }} {{ ops | join(',') }} {{ vendor }} {{ jobs }} {{ arch }}")
    ops = build.get("ops", [])
    need(isinstance(ops, list), "build.ops", ops, "a list of operator names")
    for op in ops if isinstance(ops, list) else []:
        need(isinstance(op, str) and OP.fullmatch(op) is not None, "build.ops[]", op, "letters, digits and '_'")
    need(_template_ok(build.get("output_glob"), GLOB, path=True), "build.output_glob", build.get("output_glob"),
         "a glob relative to the source tree: letters, digits and . _ / + * ? - (no '..')")
    for key in ("mem_per_job_mb", "timeout"):
        if key in build:
            value = build[key]
            need(isinstance(value, int) and not isinstance(value, bool) and value > 0, f"build.{key}", value,
                 "an integer > 0")
    flags = install.get("flags", [])
    need(isinstance(flags, list), "install.flags", flags, "a list of installer flags, e.g. [--quiet]")
    for flag in flags if isinstance(flags, list) else []:
        need(_template_ok(flag, TOKEN) and not str(flag).startswith("--install-path"), "install.flags[]", flag,
             "one installer flag of letters, digits and . _ / = , + : @ % - (--install-path comes from fa_install_path)")
    if "vendor_dir" in install:
        need(_template_ok(install["vendor_dir"], WORD) and install["vendor_dir"] not in (".", ".."),
             "install.vendor_dir", install["vendor_dir"], "one folder name, e.g. '{{ vendor }}_transformer'")
    for key in ("libraries", "ld_library_dirs"):
        values = install.get(key, [])
        need(isinstance(values, list), f"install.{key}", values, "a list of paths relative to the vendor folder")
        for value in values if isinstance(values, list) else []:
            need(_template_ok(value, settings.REL_PATH_CHARS, path=True), f"install.{key}[]", value,
                 "a path relative to the vendor folder: letters, digits and . _ / + - (no '..')")
    for key in ("set_env", "config_ini"):
        if key in install:
            need(_template_ok(install[key], settings.REL_PATH_CHARS, path=True), f"install.{key}", install[key],
                 "a path relative to its folder: letters, digits and . _ / + - (no '..')")
    return out


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
    bad = _field_problems(data)
    if bad:
        raise RecipeError(f"{path}: field(s) that would reach a command or a path are not valid: " + "; ".join(bad)
                          + ". Fix: correct the recipe (strings are words and relative paths, never shell syntax)")


_ENV = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False,
                                                    keep_trailing_newline=False)


def render(template: str, **values: object) -> str:
    try:
        return _ENV.from_string(template).render(**values)
    except (jinja2.UndefinedError, jinja2.TemplateSyntaxError, jinja2.sandbox.SecurityError) as exc:
        raise RecipeError(f"recipe template {template!r}: {exc}") from exc


def _check_values(values: dict[str, object]) -> None:
    for name, value in values.items():
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (str, int)) or not VALUE.fullmatch(str(item)):
                raise RecipeError(f"the value {name}={value!r} rendered into the build command is not a plain word "
                                  "(letters, digits and . _ + -). Fix: correct fa_vendor, or the host's facts "
                                  "(SoC family, arch) that gave it")


def render_argv(command: str, **values: object) -> list[str]:
    """The build command as an argv list: split into words first, then each word rendered on its own."""
    _check_values(values)
    return [render(word, **values) for word in command_tokens(command)]
