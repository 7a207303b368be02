"""Controller-side artifact cache, content-addressed by build key: <cache>/<build_key>/{<pkg>.run, artifact.json}.

An entry counts only when its record (artifact.json) carries this controller's signature (``plugin_utils/trust.py``:
an HMAC with a key kept outside the cache), names this build key and a plain file name, and the package file's
sha256 equals the signed one. A half-written, corrupted, replaced, swapped or foreign entry is never served: the
lookup says why (``check``), the build rebuilds it, and the run warns.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from . import trust

REBUILT = f"{trust.NOT_SIGNED}: refused, it is rebuilt"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check(cache_dir: str, key: str, secret: bytes | None) -> tuple[dict | None, str | None]:
    """(record with ``path``, None) for a trusted entry; (None, None) when there is no entry; (None, why) when an
    entry is there and refused."""
    meta_path = Path(cache_dir) / str(key) / trust.RECORD
    if not meta_path.exists():
        return None, None
    meta = trust.read_record(cache_dir, key)
    if meta is None:
        return None, f"{trust.RECORD} is unreadable or not a JSON object"
    why = trust.record_problem(meta, secret, key)
    if why:
        return None, why
    pkg = meta_path.parent / str(meta["file"])
    if not pkg.is_file():
        return None, f"its package {pkg.name} is missing"
    got = sha256_file(pkg)
    if got != meta["sha256"]:
        return None, f"its package {pkg.name} has sha256 {got}, not the signed {meta['sha256']} (corrupted or replaced)"
    return {**meta, "path": str(pkg)}, None


def refusal_line(cache_dir: str, key: str, why: str) -> str:
    """The warning for a refused entry (names the entry, the reason and what happens)."""
    return f"artifact cache entry {Path(cache_dir) / str(key)}: {why}; {REBUILT}"


def fetched_problem(record: dict, cache_dir: str) -> str | None:
    """Why ``record`` (an artifact.json about to be written) must not be signed: its shape, or the package fetched
    into ``<cache_dir>/<build_key>/<file>`` not having the sha256 the build reported. None: sign it."""
    pkg = Path(cache_dir) / str(record.get("build_key", "")) / str(record.get("file", ""))
    why = trust.shape_problem(record, str(record.get("build_key", "")))
    if why:
        return why
    try:
        got = sha256_file(pkg)
    except OSError as exc:
        return str(exc.strerror)
    if got != record.get("sha256"):
        return f"the fetched package has sha256 {got}, the build reported {record.get('sha256')}"
    return None


def store_untrusted(results: list[dict], secret: bytes | None) -> list[dict]:
    """The shared store's claim results (fa_artifact_store, one per build key in ``item.key``) that are ``present``
    with a record this controller did not sign (or not for that key), each with ``untrusted`` (why)."""
    bad = []
    for res in results or []:
        if res.get("state") != "present":
            continue
        why = trust.record_problem(res.get("meta"), secret, _claim_key(res))
        if why:
            bad.append({**res, "untrusted": why})
    return bad


def store_claims(results: list[dict], reclaimed: list[dict] | None, secret: bytes | None) -> list[dict]:
    """The claim results with the entries claimed again (:func:`store_untrusted`'s, looped over by a task: each
    result's ``item`` is the first result) replaced by that second claim; a ``present`` answer still not signed by
    this controller becomes ``untrusted`` (neither pulled nor built)."""
    again = {}
    for res in reclaimed or []:
        first = res.get("item") or {}
        again[_claim_key(first)] = {**res, "item": first.get("item")}
    out = []
    for res in results or []:
        res = again.get(_claim_key(res), res)
        if res.get("state") == "present" and trust.record_problem(res.get("meta"), secret, _claim_key(res)):
            res = {**res, "state": "untrusted"}
        out.append(res)
    return out


def _claim_key(result: dict) -> str:
    return str((result.get("item") or {}).get("key", ""))


def lookup(cache_dir: str, key: str, secret: bytes | None = None) -> dict | None:
    """The trusted record of ``key`` (with ``path``) or None. ``secret``: the key (default: the controller's)."""
    meta, _unused = check(cache_dir, key, secret if secret is not None else trust.load_key())
    return meta


def lookup_many(cache_dir: str, keys: list[str], secret: bytes | None = None,
                refused: dict[str, str] | None = None) -> dict[str, dict]:
    """Build key -> trusted record for the ``keys`` in the cache; the refused ones (key -> why) go to ``refused``."""
    secret = secret if secret is not None else trust.load_key()
    found = {}
    for key in keys:
        meta, why = check(cache_dir, key, secret)
        if meta:
            found[key] = meta
        elif why and refused is not None:
            refused[key] = why
    return found


def kept_sha256s(facts: dict | None) -> set[str]:
    """The sha256s the host keeps as ``packages/<sha256>.run``, according to its ``ascend`` facts (the manifest: the
    installed package and the previous one)."""
    manifest = ((facts or {}).get("ascend") or {}).get("fa_package") or {}
    if not isinstance(manifest, dict):
        return set()
    shas = {manifest.get("sha256")}
    previous = manifest.get("previous")
    if isinstance(previous, dict):
        shas.add(previous.get("sha256"))
    return {s for s in shas if isinstance(s, str) and s}


def _needing(hostvars, hosts: list[str]):
    """(host, its variables) of the hosts of ``hosts`` that the run's first play found needing the package
    (``fa_needs_install``); a host without variables (ansible-playbook --syntax-check has none) is left out."""
    for host in hosts:
        try:
            hv = hostvars[host]
        except KeyError:
            continue
        if str(hv.get("fa_needs_install")).lower() == "true":
            yield host, hv


def pull_keys(hostvars, hosts: list[str], cached: dict) -> list[str]:
    """The build keys (sorted) that a host of ``hosts`` needs (``fa_needs_install``) and the controller's cache has
    (``cached``): the keys a seed must serve. Also for a host whose facts say it keeps the package (a verification
    again, a repair): its manifest names the kept copy, but the copy may be gone, and then the host pulls too."""
    return sorted({hv.get("fa_build_key") for _host, hv in _needing(hostvars, hosts)
                   if hv.get("fa_build_key") in (cached or {})})


def rollout_targets(hostvars, hosts: list[str], install: bool = True) -> list[str]:
    """The hosts of ``hosts`` to hand to the install play: the run's first play found that each needs the package
    (``fa_needs_install``) and its build key is in the controller's cache (``fa_cached``, signed and intact). Hosts
    the first play stopped are left out by Ansible itself (a failed host runs no later play). None when ``install``
    is false (the run's tags leave the install out)."""
    if not install:
        return []
    return [host for host, hv in _needing(hostvars, hosts) if hv.get("fa_build_key") in (hv.get("fa_cached") or {})]
