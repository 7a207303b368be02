#!/usr/bin/env python3
"""Build the ascend.fa execution environment (EE) on this machine, from Debian packages, with no registry.

    .venv/bin/python scripts/build_ee.py                    # prints the image: localhost/ascend-fa-ee:<version>-<hash>
    .venv/bin/python scripts/build_ee.py --base-image IMG --package-manager /usr/bin/microdnf   # a site's own base

Two images, each cached by a hash of its inputs in its tag and built under a lock (as the simulator's node image):

1. The base, ``localhost/ascend-fa-ee-base:<hash>``: ``debootstrap --variant=minbase bookworm`` with BASE_PACKAGES,
   imported with ``podman import`` (``ascend_sim.image.debootstrap_image``; podman's settings are the simulator's:
   runc and explicit ulimits through CONTAINERS_CONF, containers-recipe.md).
2. The EE, ``localhost/ascend-fa-ee:<version>-<hash>`` (also tagged ``:<version>``): ansible-builder 3 (pinned, in a
   throwaway venv under .work/ee) builds execution-environment.yml as it is, with the collection tarball from
   scripts/build_collection.py, and three build args: ``EE_BASE_IMAGE`` (the base above, instead of the definition's
   placeholder), ``PKGMGR=/usr/bin/apt-get`` (instead of ``options.package_manager_path``, microdnf) and ``PYCMD``
   (the base's Python environment, see below).

Why ansible-builder can drive apt here without a patched Containerfile (ansible-builder 3.2.0, _target_scripts/):
``assemble`` and ``install-from-bindep`` call ``$PKGMGR install -y <packages>`` only for what bindep reports missing,
and bindep reads the definition's ``[platform:dpkg]`` lines on Debian; the base already holds those packages, so
nothing is installed during the build (the base has no apt lists: a package that were missing would fail the build,
not go unnoticed). Their ``$PKGMGR clean all`` is ``apt-get clean`` (apt-get ignores the extra word).
``pip_install`` runs ``$PYCMD -m ensurepip --root /``, and Debian's patched ensurepip refuses the system Python
("ensurepip is disabled in Debian/Ubuntu for the system python", exit 1; tried) but not a venv's: so the base holds a
venv, VENV (made from Debian's python3 with python3-venv, first on PATH), and PYCMD is its python. The EE's Python
packages go into it; the base's ``$PKGMGR install $PYPKG`` (python3.11) finds Debian's python3.11 installed.

The build is offline (``--network=none``): every wheel the build's pip steps take (requirements-ee.txt, the builder
stage's bindep, ansible-builder's dumb-init) is downloaded once on this machine, with its pip settings (index,
proxy, CA), into a cache named by their hash (.work/ee/wheels/<hash>), and given to the build's RUN steps with a
read-only volume and an /etc/pip.conf that says ``no-index`` (build-time mounts: neither is in the image). A
container's own pip would not trust a TLS-intercepting proxy's CA, which this machine's pip is set up for.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ascend_sim import image  # noqa: E402  - the simulator's debootstrap/podman machinery, reused
from scripts import build_collection  # noqa: E402

ANSIBLE_BUILDER = "ansible-builder==3.2.0"
BASE_REPO = "localhost/ascend-fa-ee-base"
EE_REPO = "localhost/ascend-fa-ee"
LABEL = "io.ascend-fa.ee.inputs"
# What ansible-builder's scripts and an AWX job need on a Debian base (ssh/ssh-agent for the Machine credential,
# git for projects, ca-certificates for https). python3-venv brings ensurepip (pip_install) and venv (assemble).
BASE_PACKAGES = ("python3", "python3-venv", "openssh-client", "git", "ca-certificates")
VENV = "/opt/ascend-fa-ee"
BASE_CHANGES = ('CMD ["/bin/bash"]', "ENV LANG=C.UTF-8",
                f"ENV PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
APT_GET = "/usr/bin/apt-get"
# Installed by the build's pip steps besides requirements-ee.txt, pinned here: the builder stage's introspection
# tool with its dependencies (ansible-builder 3.2.0: containerfile.py "pip install ... bindep pyyaml packaging"; only
# in the builder stage) and the container init (ee_schema.py options.container_init default "dumb-init==1.2.5").
BUILD_EXTRAS = ("bindep==2.14.0", "pbr==7.1.3", "Parsley==1.3", "distro==1.9.0", "dumb-init==1.2.5")
WHEELS_IN_BUILD = "/ascend-fa-ee-wheels"
PIP_CONF = ("# scripts/build_ee.py: the build's pip takes only the wheels downloaded beforehand\n"
            f"[global]\nno-index = true\nfind-links = {WHEELS_IN_BUILD}\n")
# Bump when the build steps change in a way the inputs (definition, pins, collection, base) do not show.
BUILD_REVISION = "1"


class EEError(RuntimeError):
    """A step of the EE build failed."""


def ee_home() -> Path:
    home = ROOT / ".work" / "ee"
    home.mkdir(parents=True, exist_ok=True)
    return home


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    return h.hexdigest()


def base_tag() -> str:
    """The Debian base: the hash of the suite, packages, image settings and the build revision."""
    return f"{BASE_REPO}:{_digest(image.SUITE, ','.join(BASE_PACKAGES), VENV, *BASE_CHANGES, BUILD_REVISION)[:12]}"


def _prepare_base(rootfs: Path) -> None:
    """Drop apt's caches; make the venv the EE's Python packages go into (with Debian's python3, in the rootfs)."""
    image._drop_apt_caches(rootfs)  # noqa: SLF001 - the simulator's own step, shared
    _check(["chroot", str(rootfs), "/usr/bin/python3", "-m", "venv", VENV], f"python3 -m venv {VENV} in the base")


def ensure_base() -> str:
    tag = base_tag()
    if image.image_exists(tag):
        return tag
    with image.locked("ee-base"):
        if not image.image_exists(tag):
            print(f"build_ee: building the base {tag} (debootstrap, about a minute)", file=sys.stderr)
            image.debootstrap_image(tag, BASE_PACKAGES, _prepare_base, BASE_CHANGES)
    return tag


def ensure_builder() -> Path:
    """ansible-builder, pinned, in a throwaway venv (.work/ee/builder); made once."""
    venv = ee_home() / "builder"
    exe = venv / "bin" / "ansible-builder"
    stamp = venv / ".ascend-fa-builder"
    if exe.is_file() and stamp.is_file() and stamp.read_text().strip() == ANSIBLE_BUILDER:
        return exe
    with image.locked("ee-builder"):
        if not (exe.is_file() and stamp.is_file() and stamp.read_text().strip() == ANSIBLE_BUILDER):
            shutil.rmtree(venv, ignore_errors=True)
            _check([sys.executable, "-m", "venv", str(venv)], "python -m venv")
            _check([str(venv / "bin" / "pip"), "install", "-q", ANSIBLE_BUILDER], f"pip install {ANSIBLE_BUILDER}")
            stamp.write_text(ANSIBLE_BUILDER + "\n")
    return exe


def _check(argv: list[str], what: str, log: Path | None = None, **kw) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)
    if log is not None:
        log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        where = f" (log: {log})" if log else ""
        raise EEError(f"{what} failed ({proc.returncode}){where}:\n{(proc.stdout + proc.stderr)[-4000:]}")


def ensure_wheels() -> Path:
    """Every wheel the build installs, downloaded once with this machine's pip into .work/ee/wheels/<hash>."""
    req = (ROOT / "requirements-ee.txt").read_bytes()
    target = ee_home() / "wheels" / _digest(req, *BUILD_EXTRAS, BUILD_REVISION)[:12]
    stamp = target / ".complete"
    if stamp.is_file():
        return target
    with image.locked("ee-wheels"):
        if not stamp.is_file():
            tmp = target.with_name(target.name + ".partial")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            (tmp / "requirements-ee.txt").write_bytes(req)
            pip = ensure_builder().parent / "pip"
            _check([str(pip), "download", "-q", "--only-binary=:all:", "-d", str(tmp), "-r", str(tmp / "requirements-ee.txt"),
                    *BUILD_EXTRAS], "pip download (the EE's wheels)", timeout=900)
            (tmp / ".complete").write_text("\n".join(sorted(p.name for p in tmp.glob("*.whl"))) + "\n")
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
    return target


def collection_digest(tarball: Path) -> str:
    """The collection's content: MANIFEST.json and FILES.json (every file's sha256), not the tarball's mtimes."""
    with tarfile.open(tarball) as tar:
        parts = [tar.extractfile(name).read() for name in ("MANIFEST.json", "FILES.json")]  # type: ignore[union-attr]
    json.loads(parts[1])
    return _digest(*parts)


def stage_sources(src: Path) -> Path:
    """The definition, its pins and the collection tarball in ``src`` (as the definition's relative paths expect)."""
    shutil.rmtree(src, ignore_errors=True)
    (src / "dist").mkdir(parents=True)
    for name in ("execution-environment.yml", "requirements-ee.txt"):
        shutil.copy2(ROOT / name, src / name)
    return build_collection.build(src / "dist")


def ee_tag(base: str, build_args: str, tarball: Path) -> str:
    digest = _digest(base, build_args, ANSIBLE_BUILDER, BUILD_REVISION, collection_digest(tarball),
                     *((ROOT / n).read_bytes() for n in ("execution-environment.yml", "requirements-ee.txt")))
    return f"{EE_REPO}:{build_collection.project_version()}-{digest[:12]}"


def build_ee(base: str | None = None, pkgmgr: str | None = APT_GET, pycmd: str | None = None, force: bool = False) -> str:
    """Build (or find) the EE; return its tag. ``base`` None: the Debian base made here (and its venv's Python)."""
    if base is None:
        base, pycmd = ensure_base(), f"{VENV}/bin/python3"
    home = ee_home()
    with image.locked("ee"):
        tarball = stage_sources(home / "src")
        tag = ee_tag(base, f"{pkgmgr or ''} {pycmd or ''}", tarball)
        plain = f"{EE_REPO}:{build_collection.project_version()}"
        if force or not image.image_exists(tag):
            print(f"build_ee: building {tag} on {base} with {ANSIBLE_BUILDER}", file=sys.stderr)
            wheels, conf = ensure_wheels(), home / "pip.conf"
            conf.write_text(PIP_CONF)
            argv = [str(ensure_builder()), "build", "-f", str(home / "src" / "execution-environment.yml"),
                    "-c", str(home / "context"), "-t", tag, "--container-runtime", "podman", "-v", "3",
                    "--build-arg", f"EE_BASE_IMAGE={base}",
                    "--extra-build-cli-args=" + shlex.join(
                        ["--network=none", f"--volume={wheels}:{WHEELS_IN_BUILD}:ro", f"--volume={conf}:/etc/pip.conf:ro",
                         "--label", f"{LABEL}={tag.rsplit(':', 1)[1]}"])]
            argv += [f"--build-arg={k}={v}" for k, v in (("PKGMGR", pkgmgr), ("PYCMD", pycmd)) if v]
            if force:
                argv.append("--no-cache")
            _check(argv, "ansible-builder build", log=home / "build.log", env=image.podman_env(), cwd=home, timeout=1800)
        image.podman("tag", tag, plain)
    return tag


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-image", help="build on this base instead of the Debian one made here (a site's own base)")
    ap.add_argument("--package-manager", help="the base's package manager (default: /usr/bin/apt-get for the Debian "
                    "base; with --base-image, the definition's options.package_manager_path)")
    ap.add_argument("--python", help="with --base-image: the base's Python (default: the definition's python_path)")
    ap.add_argument("--force", action="store_true", help="rebuild even when the image of these inputs exists")
    args = ap.parse_args(argv)
    pkgmgr = args.package_manager or (None if args.base_image else APT_GET)
    try:
        print(build_ee(args.base_image, pkgmgr, args.python, args.force))
    except (EEError, image.SimError, subprocess.TimeoutExpired) as exc:
        print(f"build_ee: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
