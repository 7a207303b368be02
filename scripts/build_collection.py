#!/usr/bin/env python3
"""Build the ``ascend.fa`` collection tarball: dist/ascend-fa-<version>.tar.gz.

    .venv/bin/python scripts/build_collection.py [--dist DIR] [--staging DIR]
    ansible-galaxy collection install dist/ascend-fa-<version>.tar.gz -p <collections path>   # offline, from the file

This checkout is the collection (ansible.cfg reaches it as ``.collections/ansible_collections/ascend/fa``): the
build copies the collection's parts (CONTENT) unchanged into a staging folder, adds galaxy.yml (meta/galaxy.yml
with pyproject.toml's version; the template is not at the repo root, where molecule and ansible-lint would take
the whole checkout, .venv included, for the collection) and runs ``ansible-galaxy collection build``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the collection holds (tests/sanity: ansible-test's ignore file, a reason on each line); everything else (the
# CLI, the simulator, the other tests, docs, molecule) is not Ansible content.
CONTENT = ("README.md", "meta/runtime.yml", "plugins", "roles", "playbooks", "recipes", "kernels", "tests/sanity")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "*.retry")


def project_version(root: Path = ROOT) -> str:
    m = re.search(r'^\[project\][^\[]*?^version\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(), re.M | re.S)
    if not m:
        raise SystemExit("build_collection: no [project] version in pyproject.toml")
    return m.group(1)


def stage(staging: Path, root: Path = ROOT) -> Path:
    coll = staging / "ansible_collections" / "ascend" / "fa"
    shutil.rmtree(coll, ignore_errors=True)
    for part in CONTENT:
        src, dst = root / part, coll / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst, ignore=IGNORE) if src.is_dir() else shutil.copy2(src, dst)
    galaxy = (root / "meta" / "galaxy.yml").read_text(encoding="utf-8")
    (coll / "galaxy.yml").write_text(re.sub(r"^version:.*$", f"version: {project_version(root)}", galaxy, count=1,
                                            flags=re.M), encoding="utf-8")
    return coll


def build(dist: Path, staging: Path | None = None) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        coll = stage(Path(staging or tmp))
        galaxy = Path(sys.executable).parent / "ansible-galaxy"
        subprocess.run([str(galaxy) if galaxy.is_file() else "ansible-galaxy", "collection", "build", str(coll),
                        "--output-path", str(dist), "--force"], check=True, stdout=subprocess.DEVNULL)
    return dist / f"ascend-fa-{project_version()}.tar.gz"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the tarball goes (default dist/)")
    ap.add_argument("--staging", type=Path, help="keep the staged tree here (default: a temporary folder)")
    print(build(**vars(ap.parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
