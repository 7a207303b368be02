"""Controller-side artifact cache, content-addressed by build key: <cache>/<build_key>/{<pkg>.run, artifact.json}.

An entry counts only when its package file exists and its sha256 equals the one recorded in artifact.json, so
a half-written or corrupted file is never served.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def lookup(cache_dir: str, key: str) -> dict | None:
    meta_path = Path(cache_dir) / key / "artifact.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pkg = meta_path.parent / str(meta.get("file", ""))
    if not meta.get("file") or not pkg.is_file() or sha256_file(pkg) != meta.get("sha256"):
        return None
    meta["path"] = str(pkg)
    return meta


def lookup_many(cache_dir: str, keys: list[str]) -> dict[str, dict]:
    found = {}
    for key in keys:
        meta = lookup(cache_dir, key)
        if meta:
            found[key] = meta
    return found
