"""SIMULATOR (ascend-fa): builds the simulated upstream ``ops-transformer.git`` with deterministic history.

The bare repository stands in for ``gitcode.com/cann/ops-transformer`` on simulated fleets (mounted at
``/srv/ascend-sim/upstream/ops-transformer.git``) and in tests. Every git object is computed here in
Python from the files under ``tree/`` with a fixed author, committer, tagger and dates, so the commit
hashes are the same on every machine and can be pinned in recipes (``ascend_sim/recipes/``).

History (first parent chain, branch ``master``):

====================  ===========================================================================
tag                   content
====================  ===========================================================================
``v8.5.0``            ``version.info`` ``Version=8.5.0-beta.1`` (as the real tag), older --soc list
``v9.0.0``            ``version.cmake`` ``9.0.0``
``v9.0.1``            ``version.cmake`` ``9.0.1``
``v9.0.1-moved``      a later commit (the tip of ``master``): a tag that does not resolve to the
                      commit pinned for ``v9.0.1``
====================  ===========================================================================

Branches: ``master`` (tip), ``8.5.0``, ``9.0.0`` (their release commits). Tags are annotated.

API::

    make_repo(dest_dir) -> {"v8.5.0": <commit>, "v9.0.0": ..., "v9.0.1": ..., "v9.0.1-moved": ...}
    expected_commits() -> the same mapping, computed without writing anything
    make_bundle(dest) -> a ``git bundle`` of the repository (for air-gapped tests)
    retag(repo, tag, target) -> re-points an annotated tag (simulates an upstream re-tag)
    restore_tag(repo, tag) -> undoes retag (the tag as make_repo wrote it)
    make_third_party_bundle(dest) -> a tar.gz for build.sh --cann_3rd_lib_path (offline build hosts)

Command line: ``python -m ascend_sim.upstream.make_repo [<dest_dir>] [--bundle <file>] [--update-recipes]
[--third-party-bundle <out.tar.gz>]``.

Third-party bundle: extract it into a directory and pass that directory as ``--cann_3rd_lib_path``. Top-level
entries: ``opbase/`` (cmake/third_party/opbase.cmake looks for ``<3rd>/opbase``) and ``pkg/`` with the archives
under the names the v9.0.1 cmake/third_party/*.cmake files look for in ``<3rd>/pkg/``: include.zip (json 3.11.3),
eigen-5.0.0.tar.gz, abseil-cpp-20230802.1.tar.gz, protobuf-25.1.tar.gz, makeself-release-2.5.0-patch1.tar.gz,
googletest-1.14.0.tar.gz (tests only). The archives are simulator stand-ins, not the real sources.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

TREE_DIR = Path(__file__).resolve().parent / "tree"
REPO_NAME = "ops-transformer.git"

AUTHOR_NAME = "ascend-fa simulator"
AUTHOR_EMAIL = "ascend-sim@ascend-fa.invalid"
TIMEZONE = "+0800"

# Files at the tree root that are build outputs, never part of the repository.
_SKIP_ROOT = {"build", "build_out", "third_party"}
_SKIP_ANY = {"__pycache__", ".pytest_cache"}

SOC_LIST_9 = (
    'SUPPORT_COMPUTE_UNIT_SHORT=("ascend910b" "ascend910_93" "ascend950" "ascend310p" "kirinx90" "kirin9030" "mc62cm12a")'
)
SOC_LIST_85 = 'SUPPORT_COMPUTE_UNIT_SHORT=("ascend910b" "ascend910_93" "ascend910_95" "ascend310p" "ascend910")'

VERSION_CMAKE = """# SIMULATOR (ascend-fa): version of the simulated ops-transformer, in the form the real repo uses
# from tag v9.0.0 on. make_repo.py rewrites the version per tag.
set_package(ops-transformer VERSION "{version}")
set_build_dependencies(runtime ">=8.5")
set_build_dependencies(opbase ">=8.5")
set_run_dependencies(runtime ">=8.5")
"""

VERSION_INFO_85 = """Version=8.5.0-beta.1
version_dir=cann
required_package_runtime_version=">=8.5.0"
required_package_opbase_version=">=8.5.0"
"""

CHANGELOG_ENTRIES = [
    ("8.5.0", "- First simulated release (version.info still reads 8.5.0-beta.1, as the real v8.5.0 tag)."),
    ("9.0.0", "- Version moves to version.cmake; --soc list of the 2026 build.sh (ascend950, kirin*, mc62cm12a)."),
    ("9.0.1", "- Maintenance release."),
]
UNRELEASED = "- Post-release change on master (the commit tag v9.0.1-moved points at)."

# (tag, branch also pointing at the commit or None, commit/tag time in unix seconds, commit message)
RELEASES = [
    ("v8.5.0", "8.5.0", 1767060000, "Release ops-transformer 8.5.0 (simulated)"),
    ("v9.0.0", "9.0.0", 1777514400, "Release ops-transformer 9.0.0 (simulated)"),
    ("v9.0.1", None, 1781485200, "Release ops-transformer 9.0.1 (simulated)"),
    ("v9.0.1-moved", None, 1782266400, "Post-release change on master (simulated)"),
]


# ---------------------------------------------------------------------------------------------------
# content of each release
# ---------------------------------------------------------------------------------------------------


def _base_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for root, dirs, names in os.walk(TREE_DIR):
        rel_root = Path(root).relative_to(TREE_DIR)
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_ANY and not (rel_root == Path(".") and d in _SKIP_ROOT))
        for name in sorted(names):
            if name.endswith((".pyc", ".o", ".so", ".run")):
                continue
            rel = (rel_root / name).as_posix()
            files[rel] = (Path(root) / name).read_bytes()
    return files


def _changelog(upto: int, unreleased: bool = False) -> bytes:
    lines = ["# Changelog (simulated ops-transformer)", ""]
    if unreleased:
        lines += ["## Unreleased", "", UNRELEASED, ""]
    for version, text in reversed(CHANGELOG_ENTRIES[: upto + 1]):
        lines += [f"## {version}", "", text, ""]
    return "\n".join(lines).encode()


def _replace_once(data: bytes, old: str, new: str, what: str) -> bytes:
    if data.count(old.encode()) != 1:
        raise RuntimeError(f"make_repo: cannot find exactly one {old!r} in {what}")
    return data.replace(old.encode(), new.encode())


def release_files(tag: str) -> dict[str, bytes]:
    """The files of the commit a tag points at."""
    files = _base_files()
    if tag == "v8.5.0":
        files.pop("version.cmake", None)
        files["version.info"] = VERSION_INFO_85.encode()
        files["build.sh"] = _replace_once(files["build.sh"], SOC_LIST_9, SOC_LIST_85, "build.sh")
        fa_def = "attention/flash_attention_score/op_host/flash_attention_score_def.c"
        files[fa_def] = _replace_once(files[fa_def], 'OP_ADD_CONFIG("ascend950")', 'OP_ADD_CONFIG("ascend910_95")', fa_def)
        files["CHANGELOG.md"] = _changelog(0)
    elif tag in ("v9.0.0", "v9.0.1", "v9.0.1-moved"):
        version = "9.0.0" if tag == "v9.0.0" else "9.0.1"
        files["version.cmake"] = VERSION_CMAKE.format(version=version).encode()
        files["CHANGELOG.md"] = _changelog(1 if tag == "v9.0.0" else 2, unreleased=tag == "v9.0.1-moved")
    else:
        raise KeyError(tag)
    return files


def _mode(path: str) -> str:
    # Deterministic: executable iff a shell script, whatever the checkout's file modes are.
    return "100755" if path.endswith(".sh") else "100644"


# ---------------------------------------------------------------------------------------------------
# git objects, computed in Python
# ---------------------------------------------------------------------------------------------------


def _obj(kind: str, body: bytes) -> tuple[str, bytes]:
    raw = kind.encode() + b" " + str(len(body)).encode() + b"\0" + body
    return hashlib.sha1(raw).hexdigest(), raw


class _Objects:
    def __init__(self) -> None:
        self.raw: dict[str, bytes] = {}

    def add(self, kind: str, body: bytes) -> str:
        sha, raw = _obj(kind, body)
        self.raw[sha] = raw
        return sha

    def tree(self, files: dict[str, bytes]) -> str:
        entries: dict[str, tuple[str, str]] = {}  # name -> (mode, sha)
        subdirs: dict[str, dict[str, bytes]] = {}
        for path, data in files.items():
            head, sep, rest = path.partition("/")
            if sep:
                subdirs.setdefault(head, {})[rest] = data
            else:
                entries[head] = (_mode(path), self.add("blob", data))
        for name, sub in subdirs.items():
            entries[name] = ("40000", self.tree(sub))

        def sort_key(name: str) -> bytes:
            return (name + "/" if entries[name][0] == "40000" else name).encode()

        body = b"".join(
            entries[n][0].encode() + b" " + n.encode() + b"\0" + bytes.fromhex(entries[n][1])
            for n in sorted(entries, key=sort_key)
        )
        return self.add("tree", body)

    def commit(self, tree: str, parent: str | None, when: int, message: str) -> str:
        ident = f"{AUTHOR_NAME} <{AUTHOR_EMAIL}> {when} {TIMEZONE}"
        lines = [f"tree {tree}"]
        if parent:
            lines.append(f"parent {parent}")
        lines += [f"author {ident}", f"committer {ident}", "", message, ""]
        return self.add("commit", "\n".join(lines).encode())

    def tag(self, target: str, name: str, when: int, message: str) -> str:
        ident = f"{AUTHOR_NAME} <{AUTHOR_EMAIL}> {when} {TIMEZONE}"
        body = f"object {target}\ntype commit\ntag {name}\ntagger {ident}\n\n{message}\n"
        return self.add("tag", body.encode())


def _build() -> tuple[_Objects, dict[str, str], dict[str, str], dict[str, str]]:
    """(objects, tag -> commit, tag -> tag object, branch -> commit)."""
    objs = _Objects()
    commits: dict[str, str] = {}
    tag_objs: dict[str, str] = {}
    branches: dict[str, str] = {}
    parent = None
    for tag, branch, when, message in RELEASES:
        commit = objs.commit(objs.tree(release_files(tag)), parent, when, message)
        commits[tag] = commit
        tag_objs[tag] = objs.tag(commit, tag, when, f"ops-transformer {tag} (simulated)")
        if branch:
            branches[branch] = commit
        parent = commit
    branches["master"] = parent
    return objs, commits, tag_objs, branches


def expected_commits() -> dict[str, str]:
    """tag -> commit hash of the repository make_repo builds, without writing anything."""
    return dict(_build()[1])


# ---------------------------------------------------------------------------------------------------
# writing the repository
# ---------------------------------------------------------------------------------------------------


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME=AUTHOR_NAME,
        GIT_AUTHOR_EMAIL=AUTHOR_EMAIL,
        GIT_COMMITTER_NAME=AUTHOR_NAME,
        GIT_COMMITTER_EMAIL=AUTHOR_EMAIL,
        LC_ALL="C",
    )
    return env


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", f"--git-dir={repo}", *args], env=_git_env(), check=check, capture_output=True, text=True)


def _current_refs(repo: Path) -> dict[str, str]:
    proc = _git(repo, "for-each-ref", "--format=%(refname) %(objectname)", check=False)
    if proc.returncode != 0:
        return {}
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)


def _wanted_refs(tag_objs: dict[str, str], branches: dict[str, str]) -> dict[str, str]:
    refs = {f"refs/tags/{t}": sha for t, sha in tag_objs.items()}
    refs.update({f"refs/heads/{b}": sha for b, sha in branches.items()})
    return refs


def make_repo(dest_dir: Path) -> dict[str, str]:
    """Create (or reuse) ``dest_dir/ops-transformer.git``; returns tag -> commit hash.

    Idempotent: an existing repository whose refs already match is left untouched; otherwise it is
    rebuilt in place of the old one.
    """
    dest_dir = Path(dest_dir)
    repo = dest_dir / REPO_NAME
    objs, commits, tag_objs, branches = _build()
    wanted = _wanted_refs(tag_objs, branches)
    if repo.is_dir() and _current_refs(repo) == wanted:
        head = _git(repo, "symbolic-ref", "HEAD", check=False).stdout.strip()
        if head == "refs/heads/master":
            return dict(commits)

    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".ops-transformer.", dir=dest_dir))
    try:
        subprocess.run(
            ["git", "init", "--bare", "--quiet", "--initial-branch=master", str(tmp)],
            env=_git_env(),
            check=True,
            capture_output=True,
        )
        for sha, raw in objs.raw.items():
            path = tmp / "objects" / sha[:2] / sha[2:]
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(zlib.compress(raw, 6))
        for ref, sha in sorted(wanted.items()):
            _git(tmp, "update-ref", ref, sha)
        _git(tmp, "symbolic-ref", "HEAD", "refs/heads/master")
        (tmp / "description").write_text("Simulated ops-transformer (ascend-fa simulator)\n")
        for tag, commit in commits.items():
            got = _git(tmp, "rev-parse", f"{tag}^{{commit}}").stdout.strip()
            if got != commit:
                raise RuntimeError(f"make_repo: {tag} resolves to {got}, expected {commit}")
        # readable by every user (the fleet mounts it read-only into the nodes)
        for root, _dirs, names in os.walk(tmp):
            os.chmod(root, 0o755)
            for name in names:
                os.chmod(os.path.join(root, name), 0o644)
        if repo.exists():
            shutil.rmtree(repo)
        tmp.rename(repo)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dict(commits)


def make_bundle(dest: Path, repo: Path | None = None) -> Path:
    """Write a ``git bundle`` with all refs of the simulated repository to ``dest``; returns ``dest``.

    ``repo`` is an existing ``ops-transformer.git``; without it one is built in a temporary directory.
    Clone it with ``git clone <dest> ops-transformer`` (tags included).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if repo is None:
            make_repo(Path(tmp))
            repo = Path(tmp) / REPO_NAME
        _git(Path(repo), "bundle", "create", str(dest.resolve()), "--all")
    return dest


def retag(repo: Path, tag: str, target: str) -> str:
    """Point the annotated tag ``tag`` of ``repo`` at ``target`` (a commit-ish); returns the commit.

    Simulates an upstream that moved a release tag, for "tag does not resolve to the pinned commit" tests.
    Use it on a copy of the repository, not on a shared one (a simulated fleet's ``upstream/`` is its own copy);
    ``restore_tag`` undoes it.
    """
    repo = Path(repo)
    commit = _git(repo, "rev-parse", f"{target}^{{commit}}").stdout.strip()
    env = _git_env()
    env["GIT_COMMITTER_DATE"] = "1783000000 +0800"
    subprocess.run(
        ["git", f"--git-dir={repo}", "tag", "-f", "-a", "-m", f"{tag} (moved, simulated)", tag, commit],
        env=env,
        check=True,
        capture_output=True,
    )
    return commit


def restore_tag(repo: Path, tag: str) -> str:
    """Undo ``retag``: point ``tag`` back at the annotated tag object make_repo wrote; returns its commit.

    The original tag object is still in the repository (``git tag -f`` leaves it), so the ref is exactly as
    make_repo made it and ``make_repo`` sees the repository as up to date again.
    """
    repo = Path(repo)
    _objs, commits, tag_objs, _branches = _build()
    _git(repo, "update-ref", f"refs/tags/{tag}", tag_objs[tag])
    got = _git(repo, "rev-parse", f"{tag}^{{commit}}").stdout.strip()
    if got != commits[tag]:
        raise RuntimeError(f"restore_tag: {tag} of {repo} resolves to {got}, expected {commits[tag]}")
    return got


RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"


def update_recipes(recipes_dir: Path = RECIPES_DIR) -> list[Path]:
    """Rewrite the ``commit:`` pin of every ``sim-ops-transformer-<tag>.yml`` to make_repo's hash."""
    changed = []
    for tag, commit in expected_commits().items():
        path = Path(recipes_dir) / f"sim-ops-transformer-{tag}.yml"
        if not path.is_file():
            continue
        lines = path.read_text().splitlines(keepends=True)
        new = [f"commit: {commit}\n" if line.startswith("commit:") else line for line in lines]
        if new != lines:
            path.write_text("".join(new))
            changed.append(path)
    return changed


def make_third_party_bundle(dest: Path) -> Path:
    """Write the offline third-party bundle (see the module doc) to ``dest``; deterministic bytes."""
    import importlib.util

    script = TREE_DIR / "scripts" / "util" / "fetch_third_party.py"
    spec = importlib.util.spec_from_file_location("ascendfa_sim_fetch_third_party", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    module.write_bundle(str(dest))
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the simulated ops-transformer.git (ascend-fa simulator)")
    parser.add_argument("dest_dir", type=Path, nargs="?", help="directory that receives ops-transformer.git")
    parser.add_argument("--bundle", type=Path, help="also write a git bundle to this file")
    parser.add_argument("--update-recipes", action="store_true", help="re-pin ascend_sim/recipes/sim-*.yml")
    parser.add_argument("--third-party-bundle", type=Path, metavar="OUT", help="write the --cann_3rd_lib_path bundle")
    args = parser.parse_args(argv)
    if args.third_party_bundle:
        print(f"third-party bundle {make_third_party_bundle(args.third_party_bundle)}")
    if args.update_recipes:
        for path in update_recipes():
            print(f"updated {path}")
    if args.dest_dir is None:
        if not (args.update_recipes or args.third_party_bundle):
            parser.error("dest_dir is required")
        return 0
    commits = make_repo(args.dest_dir)
    for tag, commit in commits.items():
        print(f"{tag} {commit}")
    if args.bundle:
        make_bundle(args.bundle, args.dest_dir / REPO_NAME)
        print(f"bundle {args.bundle}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
