"""Install manifest and installed-tree digest, shared by ascend_facts (drift) and fa_install.

Standard library only (shipped to hosts as ``ansible.module_utils.fa_manifest``).
"""

from __future__ import annotations

import hashlib
import json
import os

MANIFEST_NAME = "manifest.json"


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def tree_digest(root: str) -> str | None:
    """sha256 over (relative path, mode bits, content sha256) of every regular file under ``root``."""
    if not os.path.isdir(root):
        return None
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            rel = os.path.relpath(path, root)
            h.update(rel.encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return h.hexdigest()


def read_manifest(state_dir: str) -> dict | None:
    path = os.path.join(state_dir, MANIFEST_NAME)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json_atomic(path: str, data: dict, mode: int = 0o644) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def package_state(manifest: dict | None, cann_version: str | None, cann_install_time: str | None) -> dict:
    """Drift of an installed package against its manifest.

    Returns ``{"state": ..., "detail": ...}`` with state one of ``absent`` (no manifest), ``missing``
    (manifest but vendor tree gone), ``cann_changed`` (CANN version or install time differs from install),
    ``files_changed`` (tree digest differs) or ``installed``.
    """
    if not manifest:
        return {"state": "absent", "detail": "no ascend-fa manifest on this host"}
    vendor_dir = manifest.get("vendor_dir") or ""
    if not os.path.isdir(vendor_dir):
        detail = f"package {manifest.get('recipe')} recorded in the manifest but {vendor_dir} is gone"
        if manifest.get("cann_version") and cann_version and manifest["cann_version"] != cann_version:
            detail += f" (CANN changed {manifest['cann_version']} -> {cann_version}: a toolkit upgrade removes custom ops)"
            return {"state": "cann_changed", "detail": detail}
        return {"state": "missing", "detail": detail}
    if manifest.get("cann_version") and cann_version and manifest["cann_version"] != cann_version:
        return {"state": "cann_changed",
                "detail": f"installed against CANN {manifest['cann_version']}, CANN is now {cann_version}"}
    if (manifest.get("cann_install_time") and cann_install_time
            and manifest["cann_install_time"] != cann_install_time):
        return {"state": "cann_changed",
                "detail": f"CANN reinstalled at {cann_install_time} after the package was installed"}
    digest = tree_digest(vendor_dir)
    if manifest.get("tree_sha256") and digest != manifest["tree_sha256"]:
        return {"state": "files_changed",
                "detail": f"files under {vendor_dir} differ from the manifest (sha256 of the tree)"}
    return {"state": "installed", "detail": f"{manifest.get('recipe')} ({manifest.get('build_key')})"}
