"""make_repo: deterministic simulated ops-transformer.git, tags, bundle; the sim recipes pin its commits."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from sim_upstream_helpers import ROOT, build, cann_env, clean_env, needs_tools

from ascend_sim.upstream import make_repo as mr

pytestmark = needs_tools
RECIPES = ROOT / "ascend_sim" / "recipes"


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=clean_env()).stdout


@pytest.fixture(scope="module")
def repo_dir(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    dest = tmp_path_factory.mktemp("upstream")
    return dest, mr.make_repo(dest)


def test_tags_and_deterministic_hashes(repo_dir):
    dest, commits = repo_dir
    assert set(commits) == {"v8.5.0", "v9.0.0", "v9.0.1", "v9.0.1-moved"}
    assert commits == mr.expected_commits()
    bare = dest / "ops-transformer.git"
    git("--git-dir", str(bare), "fsck", "--strict")
    for tag, commit in commits.items():
        assert git("--git-dir", str(bare), "rev-parse", f"{tag}^{{commit}}").strip() == commit
        assert git("--git-dir", str(bare), "cat-file", "-t", tag).strip() == "tag"  # annotated
    assert len(set(commits.values())) == 4
    assert git("--git-dir", str(bare), "rev-parse", "master").strip() == commits["v9.0.1-moved"]
    assert git("--git-dir", str(bare), "rev-parse", "9.0.0").strip() == commits["v9.0.0"]


def test_hashes_do_not_depend_on_the_machine(tmp_path, repo_dir):
    """A second build elsewhere, with another git identity in the environment, gives the same hashes."""
    env_commits = subprocess.run(
        [
            "python3",
            "-c",
            "import json,sys; sys.path.insert(0, sys.argv[1]);"
            "from ascend_sim.upstream.make_repo import make_repo; print(json.dumps(make_repo(sys.argv[2])))",
            str(ROOT),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(GIT_AUTHOR_NAME="someone", GIT_COMMITTER_DATE="2001-01-01T00:00:00", TZ="America/New_York"),
    ).stdout
    assert yaml.safe_load(env_commits) == repo_dir[1]


def test_idempotent(repo_dir):
    dest, commits = repo_dir
    bare = dest / "ops-transformer.git"
    before = (bare / "HEAD").stat().st_mtime_ns, sorted(p.name for p in (bare / "objects").iterdir())
    assert mr.make_repo(dest) == commits
    assert ((bare / "HEAD").stat().st_mtime_ns, sorted(p.name for p in (bare / "objects").iterdir())) == before


def test_rebuilds_a_stale_repo(tmp_path):
    commits = mr.make_repo(tmp_path)
    mr.retag(tmp_path / "ops-transformer.git", "v9.0.1", "v9.0.0")
    assert mr.make_repo(tmp_path) == commits
    bare = tmp_path / "ops-transformer.git"
    assert git("--git-dir", str(bare), "rev-parse", "v9.0.1^{commit}").strip() == commits["v9.0.1"]


def test_versions_per_tag(repo_dir):
    bare = str(repo_dir[0] / "ops-transformer.git")
    assert 'VERSION "9.0.0"' in git("--git-dir", bare, "show", "v9.0.0:version.cmake")
    assert 'VERSION "9.0.1"' in git("--git-dir", bare, "show", "v9.0.1:version.cmake")
    assert "Version=8.5.0-beta.1" in git("--git-dir", bare, "show", "v8.5.0:version.info")
    assert '"ascend910_95"' in git("--git-dir", bare, "show", "v8.5.0:build.sh")
    assert '"ascend950"' in git("--git-dir", bare, "show", "v9.0.1:build.sh")
    assert git("--git-dir", bare, "ls-tree", "v9.0.1", "build.sh").startswith("100755 ")
    diff = git("--git-dir", bare, "diff", "--stat", "v9.0.1", "v9.0.1-moved")
    assert "CHANGELOG.md" in diff


def test_recipes_pin_make_repo_commits(repo_dir):
    commits = repo_dir[1]
    for tag in ("v9.0.0", "v9.0.1"):
        recipe = yaml.safe_load((RECIPES / f"sim-ops-transformer-{tag}.yml").read_text())
        assert recipe["tag"] == tag
        assert recipe["commit"] == commits[tag], "re-pin with: python -m ascend_sim.upstream.make_repo --update-recipes"
        assert recipe["name"] == f"sim-ops-transformer-{tag}"
        assert recipe["repo_url"] == "file:///srv/ascend-sim/upstream/ops-transformer.git"
        assert recipe["build"]["ops"] == ["flash_attention_score"]
        for key in ("cann", "soc_families", "vendor", "build", "install"):
            assert key in recipe


def test_clone_by_tag_and_build(tmp_path, repo_dir, fake_cann):
    """What the fetch and build roles do: clone the pinned tag, check the commit, run the recipe command."""
    dest, commits = repo_dir
    work = tmp_path / "ops-transformer"
    git("clone", "--quiet", "--branch", "v9.0.1", f"file://{dest}/ops-transformer.git", str(work))
    assert git("rev-parse", "HEAD", cwd=work).strip() == commits["v9.0.1"]
    recipe = yaml.safe_load((RECIPES / "sim-ops-transformer-v9.0.1.yml").read_text())
    command = (
        recipe["build"]["command"]
        .replace("{{ soc_family }}", "ascend910_93")
        .replace("{{ ops | join(',') }}", ",".join(recipe["build"]["ops"]))
        .replace("{{ vendor }}", recipe["vendor"])
        .replace("{{ jobs }}", "2")
    )
    args = command.split()[2:]
    proc = build(work, cann_env(fake_cann), *args, "--jit")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(work.glob(recipe["build"]["output_glob"]))
    assert git("status", "--porcelain", cwd=work) == ""  # build outputs are ignored


def test_moved_tag_does_not_resolve_to_the_pin(tmp_path, repo_dir):
    dest, commits = repo_dir
    work = tmp_path / "moved"
    git("clone", "--quiet", "--branch", "v9.0.1-moved", f"file://{dest}/ops-transformer.git", str(work))
    assert git("rev-parse", "HEAD", cwd=work).strip() != commits["v9.0.1"]


def test_retag_simulates_a_moved_release(tmp_path, repo_dir):
    bare = tmp_path / "copy.git"
    git("clone", "--quiet", "--bare", str(repo_dir[0] / "ops-transformer.git"), str(bare))
    moved = mr.retag(bare, "v9.0.1", "master")
    assert moved == repo_dir[1]["v9.0.1-moved"]
    assert git("--git-dir", str(bare), "rev-parse", "v9.0.1^{commit}").strip() == moved
    # restore_tag puts back the very tag object make_repo wrote (same ref as the untouched repository)
    original = git("--git-dir", str(repo_dir[0] / "ops-transformer.git"), "rev-parse", "v9.0.1").strip()
    assert mr.restore_tag(bare, "v9.0.1") == repo_dir[1]["v9.0.1"]
    assert git("--git-dir", str(bare), "rev-parse", "v9.0.1").strip() == original


def test_bundle_for_air_gapped_hosts(tmp_path, repo_dir):
    bundle = mr.make_bundle(tmp_path / "ops-transformer.bundle", repo_dir[0] / "ops-transformer.git")
    git("bundle", "verify", str(bundle))
    work = tmp_path / "from-bundle"
    git("clone", "--quiet", str(bundle), str(work))
    git("checkout", "--quiet", "v9.0.0", cwd=work)
    assert git("rev-parse", "HEAD", cwd=work).strip() == repo_dir[1]["v9.0.0"]
    # without a repo argument, make_bundle builds one itself
    assert mr.make_bundle(tmp_path / "b2.bundle").is_file()
