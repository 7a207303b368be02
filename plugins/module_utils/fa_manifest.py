"""Install manifest and installed-tree digest, shared by ascend_facts (drift) and fa_install.

Standard library only (shipped to hosts as ``plugins/module_utils/fa_manifest.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re

MANIFEST_NAME = "manifest.json"
# The last verification of the installed package (fa_verify): {"ok", "recipe", "sha256", "summary", "failed_cards",
# "at", "verified"}. "verified" is the manifest entry (without "previous") of the last package that PASSED on this
# host, kept across later failures: the rollout rolls back to it, and fa_install keeps its .run until a newer package
# passes. Rewritten only when its outcome, package or "verified" changes, so a passing re-check leaves it (and the
# fingerprint, which watches it) alone.
# Verification is a state, not an event: an installed package counts as verified only while this record says it
# passed (same sha256). No record, a record of another package (an upgrade interrupted before or during its
# verification: host lost, controller killed) or a failed record: preflight never takes the host as converged.
VERIFY_NAME = "verify.json"
VERIFY_PASSED, VERIFY_FAILED, VERIFY_NONE = "passed", "failed", "none"


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


def foreign_libraries(vendor_dir: str) -> str | None:
    """Our op API libraries owned by someone else than the installer (root on a node): op-plugin's ``checkOwner`` makes a
    root process skip such a library (Ascend/op-plugin op_plugin/utils/op_api_common.cpp; ascend-facts 9.1), and a
    non-root process skips it unless it owns it. A reinstall (install.sh copies the files anew) puts root back."""
    lib_dir = os.path.join(vendor_dir, "op_api", "lib")
    try:
        names = sorted(os.listdir(lib_dir))
        # the owner of the vendors folder installed the package (root on a node; CANN's opp/vendors)
        installer_uid = os.stat(os.path.dirname(vendor_dir.rstrip("/"))).st_uid
    except OSError:
        return None
    bad = []
    for name in names:
        path = os.path.join(lib_dir, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if name.endswith(".so") and st.st_uid != installer_uid:
            bad.append(f"{path} (uid {st.st_uid})")
    if not bad:
        return None
    return (f"{', '.join(bad)} not owned by uid {installer_uid}, who owns {os.path.dirname(vendor_dir.rstrip('/'))}: "
            "op-plugin's owner check skips it (a root process uses only root-owned libraries)")


def read_load_priority(config_ini: str) -> list[str] | None:
    """The vendor names of the first ``load_priority=`` line of ``vendors/config.ini`` (op-plugin reads that line),
    or None without the file or the line. Raises OSError when the file exists but cannot be read. (The fresh-shell
    probe of fa_env_lib runs as a separate program and reads the line the same way.)"""
    if not os.path.isfile(config_ini):
        return None
    with open(config_ini, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip().startswith("load_priority="):
                return [v.strip() for v in line.split("=", 1)[1].split(",") if v.strip()]
    return None


def read_manifest(state_dir: str) -> dict | None:
    path = os.path.join(state_dir, MANIFEST_NAME)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_verify_record(state_dir: str) -> dict | None:
    """The host's record of the last verification (``VERIFY_NAME``), or None."""
    try:
        with open(os.path.join(state_dir, VERIFY_NAME), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def verification_state(manifest: dict | None, record: dict | None) -> str:
    """Whether the installed package (``manifest``) passed its last verification (``record``): ``passed``,
    ``failed`` or ``none`` (no record for this package: never verified, or the verification was interrupted)."""
    sha = (manifest or {}).get("sha256")
    if not sha or not record or record.get("sha256") != sha or not isinstance(record.get("ok"), bool):
        return VERIFY_NONE
    return VERIFY_PASSED if record["ok"] else VERIFY_FAILED


def verified_entry(record: dict | None) -> dict | None:
    """The last package that passed verification on this host (``record["verified"]``), or None.

    A record written before "verified" existed that says ok stands for its own package (sha256 and recipe only)."""
    if not record:
        return None
    entry = record.get("verified")
    if isinstance(entry, dict) and entry.get("sha256"):
        return entry
    if record.get("ok") is True and record.get("sha256"):
        return {"sha256": record["sha256"], "recipe": record.get("recipe")}
    return None


def manifest_entry(manifest: dict) -> dict:
    """A manifest as a kept entry (previous / verified): everything but its own "previous"."""
    return {k: v for k, v in manifest.items() if k != "previous"}


def record_verification(state_dir: str, ok: bool, summary: str, failed_cards: list, at: str) -> bool:
    """Keep the outcome of a verification of the installed package in ``state_dir`` (nothing without a manifest).

    A pass makes the installed package the host's ``verified`` one; a failure keeps the earlier ``verified``.
    Written only when the outcome, the package or ``verified`` differs from the record already there. Returns
    whether it wrote.
    """
    manifest = read_manifest(state_dir)
    if not manifest:
        return False
    old = read_verify_record(state_dir) or {}
    verified = manifest_entry(manifest) if ok else verified_entry(old)
    if old.get("ok") is ok and old.get("sha256") == manifest.get("sha256") and old.get("verified") == verified:
        return False
    write_json_atomic(os.path.join(state_dir, VERIFY_NAME), {
        "ok": ok, "recipe": manifest.get("recipe"), "sha256": manifest.get("sha256"), "summary": (summary or "")[:2000],
        "failed_cards": list(failed_cards or []), "at": at, "verified": verified})
    return True


def write_json_atomic(path: str, data: dict, mode: int = 0o644) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# Where ops-transformer's custom package puts the kernel binaries of an operator and their configs, per --soc value
# (ops-transformer v9.0.1 cmake/func.cmake add_bin_compile_target: install(DIRECTORY ${OP_BIN_OUT_DIR} DESTINATION
# packages/vendors/${VENDOR_NAME}_transformer/op_impl/ai_core/tbe/kernel/${BINARY_COMPUTE_UNIT}) and install(FILES
# ${BIN_OUT_DIR}/${op_file}.json DESTINATION .../kernel/config/${BINARY_COMPUTE_UNIT}); ascend-facts.md 9.4). A package
# built with another --soc has no folder for this host's SoC, and the aclnn call fails at run time with "EZ9999 ...
# Cannot find bin of op" (ascend-facts.md 9.5).
KERNEL_ROOT = "op_impl/ai_core/tbe/kernel"
SOC_FAMILY_RE = re.compile(r"\A[a-z0-9_]{1,64}\Z")


def _entries(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def kernel_soc_families(vendor_dir: str) -> list[str]:
    """The SoC families the installed package has kernel binaries for (folders of ``kernel/`` but ``config``)."""
    root = os.path.join(vendor_dir, KERNEL_ROOT)
    return [n for n in _entries(root) if n != "config" and os.path.isdir(os.path.join(root, n)) and _entries(
        os.path.join(root, n))]


def _op_binaries(folder: str) -> list[str]:
    """``*.o`` files of ``folder`` that have their ``*.json`` beside them (the kernel and its description)."""
    names = set(_entries(folder))
    return [n for n in sorted(names) if n.endswith(".o") and n[:-2] + ".json" in names
            and os.path.isfile(os.path.join(folder, n))]


def kernel_problems(vendor_dir: str, soc_family: str | None, ops: list | tuple = ()) -> list[str]:
    """What the package lacks to run ``ops`` on ``soc_family``: its kernel binaries
    (``kernel/<soc_family>/<op>/*.o`` with their ``*.json``) and configs (``kernel/config/<soc_family>/<op>.json``).
    Without ``ops`` both folders must only be non-empty. ``[]``: nothing missing (or no SoC family to check)."""
    if not soc_family:
        return []
    if not SOC_FAMILY_RE.match(str(soc_family)):
        return [f"SoC family {soc_family!r} is not a --soc value (lower-case letters, digits, _)"]
    kdir = os.path.join(vendor_dir, KERNEL_ROOT, soc_family)
    cdir = os.path.join(vendor_dir, KERNEL_ROOT, "config", soc_family)
    have = [f for f in kernel_soc_families(vendor_dir) if f != soc_family]
    other = f" (the package has kernels for {', '.join(have)} only: built with another --soc?)" if have else ""
    out = []
    if not _entries(kdir):
        out.append(f"no kernel binaries for {soc_family}: {kdir} is missing or empty{other}")
    else:
        for op in ops:
            if not _op_binaries(os.path.join(kdir, op)):
                out.append(f"no kernel binary of {op} for {soc_family}: {os.path.join(kdir, op)} has no *.o with "
                           "its *.json")
    if not _entries(cdir):
        out.append(f"no kernel configs for {soc_family}: {cdir} is missing or empty")
    else:
        for op in ops:
            if not os.path.isfile(os.path.join(cdir, f"{op}.json")):
                out.append(f"no kernel config of {op} for {soc_family}: {os.path.join(cdir, op + '.json')} is missing")
    return out


def manifest_kernels(manifest: dict, soc_family: str | None = None) -> tuple[str | None, list]:
    """(SoC family, ops) whose kernels the installed package must have: ``soc_family`` (the host's, when the caller
    knows it) else the manifest's ``kernels`` record (written by fa_install), else its ``soc_family`` (a manifest of an
    older ascend-fa: folders only). ``(None, [])`` when fa_install recorded that kernels are not checked."""
    rec = manifest.get("kernels")
    if rec is False:
        return None, []
    rec = rec if isinstance(rec, dict) else {}
    fam = soc_family or rec.get("soc_family") or manifest.get("soc_family")
    return (str(fam) if fam else None), [str(o) for o in rec.get("ops") or []]


def package_state(manifest: dict | None, cann_version: str | None, cann_install_time: str | None,
                  soc_family: str | None = None) -> dict:
    """Drift of an installed package against its manifest.

    Returns ``{"state": ..., "detail": ...}`` with state one of ``absent`` (no manifest), ``missing``
    (manifest but vendor tree gone), ``cann_changed`` (CANN version or install time differs from install),
    ``kernels_missing`` (no kernel binaries or configs for the SoC family: ``soc_family``, the host's, when given,
    else the one recorded at install), ``files_changed`` (tree digest differs) or ``installed``.
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
    fam, ops = manifest_kernels(manifest, soc_family)
    missing = kernel_problems(vendor_dir, fam, ops)
    if missing:
        return {"state": "kernels_missing", "detail": "; ".join(missing)}
    owner = foreign_libraries(vendor_dir)
    if owner:
        return {"state": "files_changed", "detail": owner}
    digest = tree_digest(vendor_dir)
    if manifest.get("tree_sha256") and digest != manifest["tree_sha256"]:
        return {"state": "files_changed",
                "detail": f"files under {vendor_dir} differ from the manifest (sha256 of the tree)"}
    return {"state": "installed", "detail": f"{manifest.get('recipe')} ({manifest.get('build_key')})"}
