"""The artifact cache's trust anchor: an HMAC-SHA256 key kept outside the cache, and the signed artifact record.

A package in the controller's artifact cache (or the shared store) runs as root on every host it is installed on.
Its sha256 alone proves nothing: it sits in ``artifact.json`` next to the file it protects, so whoever can write the
cache can replace both. This controller therefore signs each record it writes (``fa_build``'s "Record each
artifact") with a key that is not in the cache, and every reader checks the signature before the record counts:
the cache lookup (``artifacts.check``), the shared store's pull, the ``fa_install`` action right before it transfers
a package, the rollback's list of trusted sha256s and preflight's comparison of the installed package.

The key: ``$ASCEND_FA_CACHE_KEY`` (AWX: give it to jobs and slices as a credential), else the file
``$ASCEND_FA_CACHE_KEY_FILE`` (default ``~/.config/ascend-fa/cache.key``), created (0600, its folder 0700) by the
first build that needs it. A key file that others can read, or that another user owns, is refused. Rotate the key
by deleting the file: every entry then counts as unsigned and is rebuilt. ``docs/security.md`` has the threat model.

Standard library only (used by the action plugins, the filters and the CLI).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KEY_ENV = "ASCEND_FA_CACHE_KEY"
KEY_FILE_ENV = "ASCEND_FA_CACHE_KEY_FILE"
DEFAULT_KEY_FILE = "~/.config/ascend-fa/cache.key"
MIN_KEY_CHARS = 32
RECORD = "artifact.json"
# What the HMAC covers: every field of the record but these (the signature itself; the lookup's local path).
UNSIGNED = ("hmac", "path")
DOMAIN = b"ascend-fa artifact record v1\n"
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
FILE_RE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9._+-]*$")
KEY_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
NOT_SIGNED = "not signed by this controller's key, or tampered with"
UNTRUSTED_CODE = "untrusted_package"


class TrustError(Exception):
    """The key cannot be used (unsafe permissions, wrong owner, unreadable, too short): nothing can be trusted."""


# --- the key -------------------------------------------------------------------------------------------------------

def key_file(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(os.path.expanduser(env.get(KEY_FILE_ENV) or DEFAULT_KEY_FILE))


def key_source(env: Mapping[str, str] | None = None) -> str:
    """Where the key comes from, for messages (never the key)."""
    env = os.environ if env is None else env
    return f"${KEY_ENV}" if env.get(KEY_ENV) else str(key_file(env))


def _checked(text: str, where: str) -> bytes:
    key = text.strip()
    if len(key) < MIN_KEY_CHARS:
        raise TrustError(f"the artifact cache key in {where} is {len(key)} characters long; at least {MIN_KEY_CHARS} "
                         "are needed. Fix: a random key, e.g. `openssl rand -hex 32`, or delete the key file (a new "
                         "one is made by the next build, and every cache entry is rebuilt)")
    return key.encode()


def _read_key_file(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise TrustError(f"cannot read the artifact cache key {path}: {exc.strerror}. Fix: make it readable by the user "
                         f"who runs ascend-fa (mode 0600), or point ${KEY_FILE_ENV} at the right file") from exc
    with os.fdopen(fd, encoding="utf-8") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise TrustError(f"the artifact cache key {path} is not a regular file. Fix: point ${KEY_FILE_ENV} at the "
                             "key file")
        if st.st_uid != os.geteuid():
            raise TrustError(f"the artifact cache key {path} is owned by uid {st.st_uid}, not by the user running "
                             f"ascend-fa (uid {os.geteuid()}): refused, whoever owns it can sign packages that run as "
                             f"root on the fleet. Fix: chown {os.geteuid()} {path} (or delete it: a new key is made "
                             "and every cache entry is rebuilt)")
        if st.st_mode & 0o077:
            raise TrustError(f"the artifact cache key {path} has mode {stat.S_IMODE(st.st_mode):04o}: group or others "
                             "can read or change it, so anyone could sign packages that run as root on the fleet; "
                             f"refused. Fix: chmod 600 {path} (if others may have read it, delete it instead: a new "
                             "key is made and every cache entry is rebuilt)")
        return _checked(fh.read(), str(path))


def _create_key_file(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return   # another run made it first: use theirs
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_hex(32) + "\n")


def load_key(create: bool = False, env: Mapping[str, str] | None = None) -> bytes | None:
    """The key: ``$ASCEND_FA_CACHE_KEY``, else the key file (made when missing and ``create``). None when there is
    none (nothing is trusted then). Raises :class:`TrustError` for a key that must not be used."""
    env = os.environ if env is None else env
    if env.get(KEY_ENV):
        return _checked(env[KEY_ENV], f"${KEY_ENV}")
    path = key_file(env)
    if not path.exists() and not path.is_symlink():
        if not create:
            return None
        _create_key_file(path)
    return _read_key_file(path)


# --- the signed record ---------------------------------------------------------------------------------------------

def _norm(value: Any) -> Any:
    """One text form per value, so a record signs the same after a JSON or Ansible round trip (123 vs "123")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return str(value)


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes the HMAC covers: every field but ``hmac`` and ``path``, keys sorted, values in one text form."""
    body = {str(k): _norm(v) for k, v in record.items() if k not in UNSIGNED}
    return DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def mac(record: Mapping[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(record), hashlib.sha256).hexdigest()


def sign(record: Mapping[str, Any], key: bytes | None = None) -> dict:
    """``record`` with its ``hmac`` (the key made when missing)."""
    key = key if key is not None else load_key(create=True)
    if key is None:
        raise TrustError("no artifact cache key could be made")
    signed = {k: v for k, v in record.items() if k not in UNSIGNED}
    signed["hmac"] = mac(signed, key)
    return signed


def shape_problem(record: Any, build_key: str | None = None) -> str | None:
    """What is wrong with ``record`` before its signature is even looked at: not an object, a file name that is not
    a plain name, no sha256 digest, another build key than the entry's."""
    if not isinstance(record, Mapping):
        return f"{RECORD} is not a JSON object"
    name = str(record.get("file") or "")
    if not FILE_RE.match(name):
        return f"its file name {name!r} is not a plain file name"
    if not SHA256_RE.match(str(record.get("sha256") or "")):
        return f"its sha256 {record.get('sha256')!r} is not a sha256 digest"
    if not KEY_RE.match(str(record.get("build_key") or "")) or str(record.get("build_key")) in (".", ".."):
        return f"its build key {record.get('build_key')!r} is not a plain name"
    if build_key is not None and str(record.get("build_key") or "") != build_key:
        return f"its record is for build key {record.get('build_key')!r}, not {build_key!r} (moved or swapped)"
    return None


def record_problem(record: Any, key: bytes | None, build_key: str | None = None) -> str | None:
    """Why ``record`` (an artifact.json, for cache entry ``build_key``) must not be trusted; None when it may."""
    why = shape_problem(record, build_key)
    if why:
        return why
    if not isinstance(record, Mapping):   # shape_problem says why for anything else
        return "the record is not a mapping"
    if key is None:
        return f"there is no artifact cache key ({KEY_ENV}, {KEY_FILE_ENV} or {DEFAULT_KEY_FILE}) to check its signature"
    given = record.get("hmac")
    if not given:
        return "its record carries no signature (hmac)"
    if not hmac.compare_digest(str(given), mac(record, key)):
        return "its record's signature (hmac) does not match"
    return None


def read_record(cache_dir: str | os.PathLike, build_key: str) -> dict | None:
    """``<cache>/<build_key>/artifact.json`` as data, None when absent or unreadable (the key must be a plain name)."""
    if not KEY_RE.match(str(build_key or "")) or build_key in (".", ".."):
        return None
    try:
        data = json.loads((Path(cache_dir) / build_key / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def trusted_record(cache_dir: str | os.PathLike, build_key: str, key: bytes | None) -> dict | None:
    """The record of ``build_key`` when this controller signed it (the package file itself is not read)."""
    record = read_record(cache_dir, build_key)
    if record is None or record_problem(record, key, build_key):
        return None
    return record


def trusted_sha256s(cache_dir: str | os.PathLike, key: bytes | None) -> list[str]:
    """The sha256s of every record in the cache that this controller signed: the packages a rollback may run."""
    root = Path(cache_dir)
    if key is None or not root.is_dir():
        return []
    found = set()
    for entry in sorted(root.iterdir()):
        record = trusted_record(root, entry.name, key) if entry.is_dir() else None
        if record:
            found.add(str(record["sha256"]))
    return sorted(found)


def installed_problems(facts: Mapping[str, Any], cache_dir: str | os.PathLike | None,
                       key: bytes | None) -> list[dict]:
    """Preflight: the installed package (``facts['fa_package']``, the host's manifest) against the record this
    controller signed for the same build key. A different sha256 is ``untrusted_package`` (a warning; the deploy
    reinstalls the signed package). No signed record for that key (cache cleaned, other controller): nothing to say."""
    manifest = (facts or {}).get("fa_package")
    if not cache_dir or not isinstance(manifest, Mapping) or not manifest.get("build_key"):
        return []
    record = trusted_record(cache_dir, str(manifest["build_key"]), key)
    found = str(manifest.get("sha256") or "")
    if record is None or record["sha256"] == found:
        return []
    where = Path(cache_dir) / str(manifest["build_key"]) / RECORD
    return [{"code": UNTRUSTED_CODE, "severity": "warning",
             "what": f"the installed package is not the one this controller built and signed for build "
                     f"{manifest['build_key']}",
             "found": f"sha256 {found or 'none'} ({manifest.get('recipe') or '?'})",
             "needed": f"sha256 {record['sha256']} (signed record {where})",
             "fix": "none needed: this deploy reinstalls the signed package (forced). If it comes back, find who "
                    "installs packages on this host outside ascend-fa"}]
