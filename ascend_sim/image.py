"""SIMULATOR: the simulated Ascend node image, podman settings and the CPU torch folder.

Follows the measured recipe in ``containers-recipe.md``: rootful podman with ``runc`` and explicit ulimits
(selected through ``CONTAINERS_CONF``), a Debian bookworm ``debootstrap --variant=minbase`` root filesystem
imported with ``podman import`` (no registry), no torch inside the image (a CPU torch folder is bind-mounted).

Everything is cached under the sim home (``$ASCEND_SIM_HOME``, default ``<repo>/.work/sim``) and guarded by
``fcntl`` locks, so concurrent test processes never build twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGE_REPO = "localhost/ascend-sim-node"
SUITE = "bookworm"
PACKAGES = (
    "python3",
    "sudo",
    "openssh-server",
    "git",
    "gcc",
    "make",
    "python3-yaml",  # ops-transformer requirements.txt lists pyyaml (the build scripts import it)
    "cmake",  # ops-transformer's CMakeLists.txt needs CMake >= 3.16 (ascend-facts 9.4); bookworm ships 3.25
    "libc6-dev",
    "procps",
    "ca-certificates",
)
SSHD_CONF = (
    "# SIMULATOR (ascend-sim node image)\n"
    "PermitRootLogin prohibit-password\n"
    "PasswordAuthentication no\n"
    "KbdInteractiveAuthentication no\n"
    "UsePAM no\n"
    "MaxStartups 100:30:200\n"
    "MaxSessions 100\n"
)
# Bump when the build steps change in a way the inputs above do not show.
RECIPE_REVISION = "1"
TORCH_SPECS = ("torch==2.13.0", "numpy")
DEFAULT_MIRROR = "http://deb.debian.org/debian"


class SimError(RuntimeError):
    """A simulator set-up step failed."""


def sim_home() -> Path:
    """The simulator's cache and state folder (``$ASCEND_SIM_HOME`` or ``<repo>/.work/sim``)."""
    home = Path(os.environ.get("ASCEND_SIM_HOME") or REPO / ".work" / "sim")
    home.mkdir(parents=True, exist_ok=True)
    return home


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock named ``name`` under the sim home."""
    lock_dir = sim_home() / "locks"
    lock_dir.mkdir(exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def containers_conf_text() -> str:
    """containers.conf for this machine: runc, nofile at the hard limit, nproc 4096."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 20000 if hard == resource.RLIM_INFINITY else hard
    return (
        "# SIMULATOR (ascend-sim): podman settings for this machine, see containers-recipe.md\n"
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc=4096:4096"]\n'
        "\n[engine]\n"
        'runtime = "runc"\n'
    )


def ensure_containers_conf() -> Path:
    """Write (if changed) and return the containers.conf that every podman call selects."""
    path = sim_home() / "containers.conf"
    text = containers_conf_text()
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return path


def podman_env() -> dict[str, str]:
    """Environment for podman: the current one with ``CONTAINERS_CONF`` set to ours."""
    return {**os.environ, "CONTAINERS_CONF": str(ensure_containers_conf())}


def podman(*args: str, check: bool = True, timeout: float | None = 300) -> subprocess.CompletedProcess[str]:
    """Run ``podman ARGS`` with our containers.conf; raise :class:`SimError` on failure when ``check``."""
    proc = subprocess.run(
        ["podman", *args], env=podman_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise SimError(f"podman {' '.join(args[:3])} ... failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def image_tag() -> str:
    """Tag of the node image; the suffix is a hash of everything that goes into the build."""
    digest = hashlib.sha256()
    for part in (SUITE, ",".join(PACKAGES), SSHD_CONF, RECIPE_REVISION):
        digest.update(part.encode() + b"\0")
    return f"{IMAGE_REPO}:{digest.hexdigest()[:12]}"


def image_exists(tag: str) -> bool:
    return podman("image", "exists", tag, check=False).returncode == 0


def apt_mirror(sources: Path = Path("/etc/apt/sources.list.d/debian.sources")) -> str:
    """The Debian mirror apt already uses on this machine (first ``URIs:`` line), else deb.debian.org."""
    with contextlib.suppress(OSError):
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and len(line.split()) > 1:
                return line.split()[1]
    return DEFAULT_MIRROR


def _run(argv: Sequence[str], what: str, timeout: float = 900) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise SimError(f"{what} failed ({proc.returncode}):\n{tail}")


def _debootstrap(rootfs: Path, packages: Sequence[str] = PACKAGES) -> None:
    if shutil.which("debootstrap") is None:
        raise SimError("debootstrap not found: run scripts/setup.sh (apt-get install debootstrap podman runc)")
    _run(
        ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", SUITE, str(rootfs), apt_mirror()],
        "debootstrap",
    )


def _drop_apt_caches(rootfs: Path) -> None:
    """Drop apt's downloaded packages and lists, and any ssh host keys (each container makes its own)."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", "etc/ssh/ssh_host_*"):
        for path in rootfs.glob(pattern):
            if path.is_file() or path.is_symlink():
                path.unlink()


def _trim_rootfs(rootfs: Path) -> None:
    """Drop apt caches and host keys; add the sshd settings and root's .ssh."""
    _drop_apt_caches(rootfs)
    (rootfs / "run/sshd").mkdir(parents=True, exist_ok=True)
    ssh_dir = rootfs / "root/.ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    ssh_dir.chmod(0o700)
    conf_dir = rootfs / "etc/ssh/sshd_config.d"
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "ascend-sim.conf").write_text(SSHD_CONF)
    (rootfs / "etc/ascend-sim-image").write_text(f"SIMULATOR image {image_tag()}\n")


def _import(rootfs: Path, tag: str, changes: Sequence[str] = ('CMD ["/bin/bash"]',)) -> None:
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    try:
        proc = subprocess.run(
            ["podman", "import", *(a for c in changes for a in ("--change", c)), "-", tag],
            stdin=tar.stdout,
            env=podman_env(),
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        if tar.stdout:
            tar.stdout.close()
        tar.wait()
    if proc.returncode != 0 or tar.returncode != 0:
        raise SimError(f"podman import failed ({proc.returncode}/{tar.returncode}): {proc.stderr.strip()}")


def debootstrap_image(tag: str, packages: Sequence[str], prepare: Callable[[Path], None] = _drop_apt_caches,
                      changes: Sequence[str] = ('CMD ["/bin/bash"]',)) -> None:
    """debootstrap bookworm with ``packages``, ``prepare(rootfs)``, ``podman import`` into ``tag`` (about a minute).

    The node image and the execution environment's base image (scripts/build_ee.py) are both made this way.
    """
    work = Path(tempfile.mkdtemp(prefix="image-", dir=sim_home()))
    try:
        rootfs = work / "rootfs"
        _debootstrap(rootfs, packages)
        prepare(rootfs)
        _import(rootfs, tag, changes)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_image(tag: str) -> None:
    """debootstrap + trim + ``podman import`` into ``tag`` (about a minute)."""
    debootstrap_image(tag, PACKAGES, _trim_rootfs)


def ensure_image() -> str:
    """Return the node image tag, building it once (cached by content hash, locked against parallel builds)."""
    tag = image_tag()
    if image_exists(tag):
        return tag
    with locked("image"):
        if not image_exists(tag):
            print(f"ascend-sim: building node image {tag} (debootstrap, about a minute)", file=sys.stderr)
            build_image(tag)
    return tag


def _venv_python() -> str:
    candidate = REPO / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def torch_dir() -> Path:
    return sim_home() / "torch"


def ensure_torch() -> Path:
    """Install CPU torch 2.13.0 + numpy once into ``<sim home>/torch`` (mounted read-only into every node).

    The version is pinned: an unpinned ``torch`` resolves to a CUDA build (5.5 GB). The folder is filled
    under a temporary name and renamed when complete, so a crash never leaves a half-installed torch.
    """
    target = torch_dir()
    stamp = target / ".ascend-sim-complete"
    want = " ".join(TORCH_SPECS)
    if stamp.exists() and stamp.read_text().strip() == want:
        return target
    with locked("torch"):
        if stamp.exists() and stamp.read_text().strip() == want:
            return target
        tmp = sim_home() / "torch.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        argv = [_venv_python(), "-m", "pip", "install", "-q", "--no-warn-script-location", "--target", str(tmp)]
        constraints = REPO / "constraints.txt"
        if constraints.exists():
            argv += ["-c", str(constraints)]
        print(f"ascend-sim: installing {want} into {target}", file=sys.stderr)
        _run([*argv, *TORCH_SPECS], "pip install torch")
        (tmp / stamp.name).write_text(want + "\n")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return target


def main() -> int:
    """``python -m ascend_sim.image``: build (or find) the image and the torch folder, print the tag."""
    print(ensure_image())
    print(ensure_torch())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
