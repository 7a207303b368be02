#!/usr/bin/env python3
"""Build the ``ascend.fa`` Ansible collection from this repo: stage it, then ``ansible-galaxy collection build``.

    .venv/bin/python scripts/build_collection.py                 # -> dist/ascend-fa-<version>.tar.gz
    .venv/bin/python scripts/build_collection.py --stage-only    # only build/collection/ansible_collections/ascend/fa
    ansible-galaxy collection install dist/ascend-fa-<version>.tar.gz -p <collections path>   # offline, from the file

The repo keeps the Ansible content in the layout ``ansible-playbook deploy_fa.yml`` uses from a checkout
(library/, module_utils/, filter_plugins/, roles/, playbooks/); the collection needs the collection layout:

=============================  ===============================================================================
repo                           collection (``ansible_collections/ascend/fa/``)
=============================  ===============================================================================
meta/galaxy.yml (template)     galaxy.yml, version from pyproject.toml (the template is not at the repo root:
                               there molecule would install the whole checkout as a collection)
meta/runtime.yml               meta/runtime.yml (requires_ansible)
library/*.py                   plugins/modules/*.py, ``from ansible.module_utils.<ours> import`` rewritten to
                               ``from ansible_collections.ascend.fa.plugins.module_utils.<ours> import``
module_utils/*.py              plugins/module_utils/*.py (same rewrite where they import each other)
action_plugins/*.py            plugins/action/*.py (same rewrite; fa_install, fa_report, fa_gate, fa_converged,
                               fa_lock); one that imports ascend_fa gets the vendored copy below
filter_plugins/ascend_fa.py    plugins/filter/ascend_fa.py, importing the vendored copy below
ascend_fa/<pure modules>       plugins/module_utils/ascend_fa/ (the filter's import closure: compat, checklist,
                               buildplan, recipes, artifacts, versions + data/compat.yml); stdlib, PyYAML and
                               Jinja2 only, so the collection needs no ``pip install ascend-fa``
roles/, playbooks/             roles/, playbooks/ with our filters' short names rewritten to FQCN
                               (``| fa_build_key`` -> ``| ascend.fa.fa_build_key``): Jinja plugins always need
                               their FQCN in a collection. Role and module short names stay: a playbook run from a
                               collection (by FQCN ``ascend.fa.deploy``, or by its path inside a collections path)
                               has ``ascend.fa`` as its default collection, and a collection role searches its own
                               collection first
recipes/, kernels/             recipes/, kernels/ (roles find them at ``role_path ~ '/../../recipes'`` and
                               ``'/../../kernels'``: the collection root)
-                              README.md, CHANGELOG.md
=============================  ===============================================================================

Standard library + PyYAML only.
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE, NAME = "ascend", "fa"
FQCN = f"{NAMESPACE}.{NAME}"
COLL_PKG = f"ansible_collections.{NAMESPACE}.{NAME}"
MU_PKG = f"{COLL_PKG}.plugins.module_utils"
VENDOR = "ascend_fa"  # the ascend_fa package, vendored as plugins/module_utils/ascend_fa/
VENDOR_PKG = f"{MU_PKG}.{VENDOR}"
# Third-party imports a vendored module may use: what every ansible-core controller already has.
VENDOR_ALLOWED = {"yaml", "jinja2"}
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", "*.retry")


class BuildError(RuntimeError):
    pass


# --- version -------------------------------------------------------------------------------------------------------

def project_version(root: Path = ROOT) -> str:
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        section = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        m = re.search(r'^version\s*=\s*"([^"]+)"', section.group(1) if section else "", re.M)
        if not m:
            raise BuildError("no [project] version in pyproject.toml") from None
        return m.group(1)
    return str(tomllib.loads(text)["project"]["version"])


# --- source rewrites -----------------------------------------------------------------------------------------------

def module_utils_names(root: Path = ROOT) -> list[str]:
    return sorted(p.stem for p in (root / "module_utils").glob("*.py") if p.stem != "__init__")


def rewrite_module_utils_imports(source: str, names: list[str]) -> str:
    """``ansible.module_utils.<ours>`` -> ``ansible_collections.ascend.fa.plugins.module_utils.<ours>``.

    Only our own helpers (files in module_utils/) are rewritten; ``ansible.module_utils.basic`` and the other
    ansible-core helpers stay as they are.
    """
    if not names:
        return source
    alt = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    pattern = re.compile(rf"(\b(?:from|import)\s+)ansible\.module_utils\.({alt})\b")
    return pattern.sub(rf"\1{MU_PKG}.\2", source)


def rewrite_vendor_imports(source: str) -> str:
    """``from ascend_fa(.x) import`` / ``import ascend_fa.x`` -> the vendored package; package-data lookups too."""
    source = re.sub(r"(^|\n)(\s*)from\s+ascend_fa(\.[\w.]+)?\s+import\b",
                    lambda m: f"{m.group(1)}{m.group(2)}from {VENDOR_PKG}{m.group(3) or ''} import", source)
    source = re.sub(r"(^|\n)(\s*)import\s+ascend_fa(\.[\w.]+)\b",
                    lambda m: f"{m.group(1)}{m.group(2)}import {VENDOR_PKG}{m.group(3)}", source)
    # importlib.resources on the package (compat.yml): use the vendored package's name
    return re.sub(r"""resources\.files\(\s*["']ascend_fa["']\s*\)""", "resources.files(__package__)", source)


_CHECKOUT_FALLBACK = re.compile(
    r"try:\n(?P<imp>(?:[ \t]+from ascend_fa[^\n]*\n)+)except ImportError:[^\n]*\n(?:[ \t]+[^\n]*\n)+?(?=\S|\n)")


def rewrite_filter_plugin(source: str) -> str:
    """The repo's filter imports ``ascend_fa`` (installed, else the checkout added to sys.path); the collection's
    imports the vendored copy, and the checkout fallback goes away."""
    source = _CHECKOUT_FALLBACK.sub(lambda m: "\n".join(
        line.strip() for line in m.group("imp").splitlines()) + "\n", source, count=1)
    out = rewrite_vendor_imports(source)
    # imports only needed by the checkout fallback
    tree = ast.parse(out)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    for mod in ("os", "sys"):
        if mod not in used:
            out = re.sub(rf"^import {mod}\n", "", out, flags=re.M)
    return out


def filter_names(source: str) -> list[str]:
    """Names a filter plugin file exports: the string keys of the dict ``FilterModule.filters()`` returns."""
    names: list[str] = []
    for cls in ast.walk(ast.parse(source)):
        if not (isinstance(cls, ast.ClassDef) and cls.name == "FilterModule"):
            continue
        for fn in cls.body:
            if isinstance(fn, ast.FunctionDef) and fn.name == "filters":
                for node in ast.walk(fn):
                    if isinstance(node, ast.Return) and isinstance(node.value, ast.Dict):
                        names += [k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    return names


def rewrite_filter_names(text: str, names: list[str]) -> str:
    """Short filter names -> ``ascend.fa.<name>`` in Jinja: ``| name`` and ``map('name', ...)``.

    A collection's roles and playbooks find its modules and roles by short name (the role's own collection and
    the playbook's default collection come first), but Jinja plugins (filters, tests, lookups) always need their
    FQCN outside ``ansible.builtin``; the repo's checkout finds them through ansible.cfg's filter_plugins.
    """
    if not names:
        return text
    alt = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    text = re.sub(rf"(\|\s*)({alt})\b(?!\.)", rf"\1{FQCN}.\2", text)
    return re.sub(rf"""(\bmap\(\s*)(["'])({alt})\2""", rf"\1\2{FQCN}.\3\2", text)


def _imports(source: str) -> list[tuple[str, list[str]]]:
    """(module, names) of every import statement (absolute ones; names empty for ``import x``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, [a.name for a in node.names]))
    return found


def vendor_closure(root: Path, start: str) -> list[str]:
    """Modules of the ascend_fa package that ``start`` (source) needs, transitively (``__init__`` excluded)."""
    pkg = root / VENDOR
    need: list[str] = []
    todo = [start]
    while todo:
        for mod, names in _imports(todo.pop()):
            cands = []
            if mod == VENDOR:
                cands = [n for n in names if (pkg / f"{n}.py").is_file()]
            elif mod.startswith(VENDOR + "."):
                cands = [mod.split(".")[1]]
            for c in cands:
                if c not in need and c != "__init__":
                    if not (pkg / f"{c}.py").is_file():
                        raise BuildError(f"{VENDOR}.{c} imported but {pkg / (c + '.py')} is missing")
                    need.append(c)
                    todo.append((pkg / f"{c}.py").read_text(encoding="utf-8"))
    return sorted(need)


def check_vendored(name: str, source: str) -> None:
    stdlib = set(sys.stdlib_module_names)
    for mod, _ in _imports(source):
        top = mod.split(".")[0]
        if top in stdlib or top in VENDOR_ALLOWED or top == "__future__" or mod.startswith(COLL_PKG):
            continue
        raise BuildError(f"{VENDOR}/{name}.py imports {mod}: the collection vendors only pure modules "
                         f"(stdlib, {', '.join(sorted(VENDOR_ALLOWED))})")


VENDOR_INIT = '''"""The pure part of the ascend_fa package (compat checker + data, checklist, build plan, recipes,
artifact cache), vendored into the ascend.fa collection by scripts/build_collection.py for its filter plugin.
Do not edit here."""

from pathlib import Path

__version__ = "{version}"

#: The collection root (ansible_collections/ascend/fa): recipes/ and kernels/ live here.
PROJECT_ROOT = Path(__file__).resolve().parents[3]
'''


# --- staging -------------------------------------------------------------------------------------------------------

def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def galaxy_yml(root: Path, version: str) -> str:
    """meta/galaxy.yml with pyproject's version, its header comment (about the template) replaced."""
    text = (root / "meta" / "galaxy.yml").read_text(encoding="utf-8")
    text, n = re.subn(r"^version:.*$", f"version: {version}", text, count=1, flags=re.M)
    data = yaml.safe_load(text)
    if n != 1 or data.get("namespace") != NAMESPACE or data.get("name") != NAME or str(data["version"]) != version:
        raise BuildError(f"meta/galaxy.yml must name {FQCN} and carry a top-level version: line")
    body = re.sub(r"\A(?:---\n)?(?:#[^\n]*\n)*", "", text)
    return f"---\n# {FQCN} {version}, written by ascend-fa's scripts/build_collection.py from its meta/galaxy.yml\n{body}"


def requires_ansible(root: Path = ROOT) -> str:
    data = yaml.safe_load((root / "meta" / "runtime.yml").read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not data.get("requires_ansible"):
        raise BuildError("meta/runtime.yml must set requires_ansible")
    return str(data["requires_ansible"])


def collection_readme(root: Path, version: str, modules: list[str], roles: list[str], playbooks: list[str]) -> str:
    lines = [
        f"# {FQCN} {version}",
        "",
        "Deploy the CANN ops-transformer FlashAttention operator (`FlashAttentionScore`) on fleets of Atlas NPU",
        "servers and prove on every card that it works. Built from the ascend-fa repository by",
        "`scripts/build_collection.py`; the repository's docs/ folder documents the pipeline (architecture.md), the",
        "inventory variables (variables.md), troubleshooting and the fault table.",
        "",
        "```bash",
        f"ansible-galaxy collection install ascend-fa-{version}.tar.gz -p ./collections   # offline, from the file",
        f"ANSIBLE_COLLECTIONS_PATH=./collections ansible-playbook {FQCN}.deploy -i inventory.yml",
        "```",
        "",
        "Playbooks: " + ", ".join(f"`{FQCN}.{p}`" for p in playbooks),
        "",
        "Roles: " + ", ".join(f"`{FQCN}.{r}`" for r in roles),
        "",
        "Modules: " + ", ".join(f"`{FQCN}.{m}`" for m in modules),
        "",
        "Controller: ansible-core " + requires_ansible(root) + ", Python 3.11, PyYAML and Jinja2 (the filter plugin uses a",
        "vendored copy of the `ascend_fa` compat checker, recipe loader and build planner in",
        "`plugins/module_utils/ascend_fa/`; no `pip install ascend-fa` needed).",
        "Set `ASCEND_FA_RESULTS` (or `fa_results_dir`) and `ASCEND_FA_CACHE` (or `fa_artifact_cache`): their defaults",
        "point inside the installed collection and at `~/.cache/ascend-fa/artifacts`.",
        "",
    ]
    return "\n".join(lines)


def stage(root: Path = ROOT, out: Path | None = None) -> Path:
    """Write the collection tree; return ``<out>/ansible_collections/ascend/fa``."""
    out = Path(out or root / "build" / "collection")
    coll = out / "ansible_collections" / NAMESPACE / NAME
    if coll.exists():
        shutil.rmtree(coll)
    coll.mkdir(parents=True)
    version = project_version(root)
    _write(coll / "galaxy.yml", galaxy_yml(root, version))
    requires_ansible(root)
    (coll / "meta").mkdir(parents=True, exist_ok=True)
    shutil.copy2(root / "meta" / "runtime.yml", coll / "meta" / "runtime.yml")

    mu_names = module_utils_names(root)
    modules = []
    for src in sorted((root / "library").glob("*.py")):
        _write(coll / "plugins" / "modules" / src.name, rewrite_module_utils_imports(src.read_text(encoding="utf-8"), mu_names))
        modules.append(src.stem)
    vendored: list[str] = []
    for src in sorted((root / "action_plugins").glob("*.py")):
        text = src.read_text(encoding="utf-8")
        if vendor_closure(root, text):   # an action plugin that uses ascend_fa (fa_install: trust) gets the vendored copy
            vendored += [m for m in vendor_closure(root, text) if m not in vendored]
            text = rewrite_filter_plugin(text)
        _write(coll / "plugins" / "action" / src.name, rewrite_module_utils_imports(text, mu_names))
    for src in sorted((root / "module_utils").glob("*.py")):
        _write(coll / "plugins" / "module_utils" / src.name,
               rewrite_module_utils_imports(src.read_text(encoding="utf-8"), mu_names))

    filters = sorted((root / "filter_plugins").glob("*.py"))
    jinja_names: list[str] = []
    for src in filters:
        text = src.read_text(encoding="utf-8")
        jinja_names += filter_names(text)
        vendored += [m for m in vendor_closure(root, text) if m not in vendored]
        _write(coll / "plugins" / "filter" / src.name, rewrite_filter_plugin(text))
    for name in vendored:
        text = rewrite_vendor_imports((root / VENDOR / f"{name}.py").read_text(encoding="utf-8"))
        check_vendored(name, text)
        _write(coll / "plugins" / "module_utils" / VENDOR / f"{name}.py", text)
    if vendored:
        _write(coll / "plugins" / "module_utils" / VENDOR / "__init__.py", VENDOR_INIT.format(version=version))
        if (root / VENDOR / "data").is_dir():
            shutil.copytree(root / VENDOR / "data", coll / "plugins" / "module_utils" / VENDOR / "data", ignore=IGNORE)
    for stray in coll.rglob("*.py"):
        leftover = [m for m, _ in _imports(stray.read_text(encoding="utf-8")) if m == VENDOR or m.startswith(VENDOR + ".")]
        if leftover:
            raise BuildError(f"{stray.relative_to(coll)} still imports {leftover[0]}")

    for sub in ("roles", "playbooks", "recipes", "kernels"):
        if (root / sub).is_dir():
            shutil.copytree(root / sub, coll / sub, ignore=IGNORE)
    for sub in ("roles", "playbooks"):
        for path in sorted((coll / sub).rglob("*")):
            if path.is_file() and path.suffix in (".yml", ".yaml", ".j2"):
                text = path.read_text(encoding="utf-8")
                new = rewrite_filter_names(text, jinja_names)
                if new != text:
                    path.write_text(new, encoding="utf-8")
    roles = sorted(p.name for p in (coll / "roles").iterdir() if p.is_dir())
    playbooks = sorted(p.stem for p in (coll / "playbooks").glob("*.yml"))
    _write(coll / "README.md", collection_readme(root, version, modules, roles, playbooks))
    _write(coll / "CHANGELOG.md", f"# Changelog of {FQCN}\n\n## {version}\n\nBuilt from ascend-fa {version} "
           "(pyproject.toml); the repository's git history holds the changes.\n")
    return coll


def ansible_galaxy() -> str:
    cand = Path(sys.executable).parent / "ansible-galaxy"
    if cand.is_file():
        return str(cand)
    found = shutil.which("ansible-galaxy")
    if not found:
        raise BuildError("ansible-galaxy not found (install ansible-core)")
    return found


def build(coll: Path, dist: Path) -> Path:
    dist.mkdir(parents=True, exist_ok=True)
    p = subprocess.run([ansible_galaxy(), "collection", "build", str(coll), "--output-path", str(dist), "--force"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise BuildError(f"ansible-galaxy collection build failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    version = yaml.safe_load((coll / "galaxy.yml").read_text(encoding="utf-8"))["version"]
    tarball = dist / f"{NAMESPACE}-{NAME}-{version}.tar.gz"
    if not tarball.is_file():
        raise BuildError(f"ansible-galaxy did not write {tarball}:\n{p.stdout}{p.stderr}")
    return tarball


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--staging", type=Path, default=ROOT / "build" / "collection",
                    help="staging root; the tree goes to <staging>/ansible_collections/ascend/fa (default build/collection)")
    ap.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the tarball goes (default dist/)")
    ap.add_argument("--stage-only", action="store_true", help="stage the tree, do not run ansible-galaxy")
    args = ap.parse_args(argv)
    try:
        coll = stage(ROOT, args.staging)
        print(f"staged {coll}")
        if not args.stage_only:
            print(build(coll, args.dist))
    except BuildError as exc:
        print(f"build_collection: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
