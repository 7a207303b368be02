"""Which library served ``aclnnFlashAttentionScore`` in this process: op-plugin's lookup, replayed.

Standard library only; shipped to the hosts next to ``fa_check.py`` and used by it. The argument follows Ascend/op-plugin
``op_plugin/utils/op_api_common.cpp`` and ``op_api_common.h`` (read at commits 0083fe5 / 17b84b2; facts 9.1):

1. ``g_custom_lib_path`` = each ``ASCEND_CUSTOM_OPP_PATH`` entry (split on ``:``) + ``/op_api/lib/``;
   ``g_default_custom_lib_path`` = ``realpath($ASCEND_OPP_PATH/vendors/<name>/op_api/lib/)`` for each name of the
   first ``load_priority=`` line of ``vendors/config.ini`` (split on ``,``, nothing stripped). Both are global
   ``const`` vectors: computed once when torch_npu's library loads, so :func:`snapshot` must run before
   ``import torch_npu``.
2. ``GetOpApiFuncAddr(api)``: for each custom entry, then each vendor entry, ``lib = realpath(<dir>/libcust_opapi.so)``;
   an empty ``lib`` (no such file) **ends that list** (``break``); ``dlopen(lib)`` (a failure goes on to the next);
   ``dlsym(api)``; found -> ``checkOwner(lib)``: false goes on to the next, true serves. Nothing found: CANN's
   ``libopapi.so`` (dlopen'ed by bare name), then the feature libraries.
3. ``checkOwner``: ``stat(lib).st_uid`` against ``getuid()``: root using a non-root library, or a non-root user using
   another non-root user's library, skips it; a non-root user using a root-owned library only warns.
4. ``aclnnXxxGetWorkspaceSize`` and ``aclnnXxx`` are looked up separately (``DO_COMPATIBILITY`` / ``EXEC_NPU_CMD``),
   so both must come from the same library.

A library is dlopen'ed before its owner check, so being mapped proves nothing by itself; CANN's ``libopapi.so`` is
always mapped (torch_npu links it). What is decided here: the order as the process saw it at import, each
candidate's ELF dynamic symbols (no dlopen, no binutils), its owner, and whether it is in ``/proc/self/maps``.
"""

from __future__ import annotations

import os
import struct

API = "aclnnFlashAttentionScore"
CUST_LIB = "libcust_opapi.so"
BUILTIN_LIB = "libopapi.so"
OWNER_ROOT_UID = 0

__all__ = ["API", "ElfError", "decide", "dynamic_symbols", "make_overlay", "owner_check", "read_maps", "snapshot"]


# ------------------------------------------------------------------------------------------------ ELF .dynsym
class ElfError(ValueError):
    """Not an ELF file, or one whose dynamic symbol table cannot be read."""


def _read(fh, offset: int, size: int) -> bytes:
    fh.seek(offset)
    data = fh.read(size)
    if len(data) != size:
        raise ElfError(f"truncated at offset {offset}")
    return data


def _sections(fh, ident: bytes) -> tuple[str, list[tuple[int, ...]]]:
    """(byte-order prefix, section headers as (type, offset, size, link, entsize))."""
    is64, end = ident[4] == 2, {1: "<", 2: ">"}.get(ident[5])
    if ident[4] not in (1, 2) or end is None:
        raise ElfError("unknown ELF class or byte order")
    hdr = _read(fh, 0, 64 if is64 else 52)
    if is64:
        shoff, = struct.unpack_from(end + "Q", hdr, 0x28)
        shentsize, shnum, _shstrndx = struct.unpack_from(end + "HHH", hdr, 0x3A)
        fmt, idx = end + "IIQQQQIIQQ", (1, 4, 5, 6, 9)
    else:
        shoff, = struct.unpack_from(end + "I", hdr, 0x20)
        shentsize, shnum, _shstrndx = struct.unpack_from(end + "HHH", hdr, 0x2E)
        fmt, idx = end + "IIIIIIIIII", (1, 4, 5, 6, 9)
    if not shoff:
        raise ElfError("no section headers")
    if shnum == 0:  # extended numbering: the count is in section 0's sh_size
        shnum = struct.unpack(fmt, _read(fh, shoff, struct.calcsize(fmt)))[5]
    if shentsize < struct.calcsize(fmt) or shnum > 65536:
        raise ElfError("bad section header table")
    table = _read(fh, shoff, shentsize * shnum)
    out = []
    for i in range(shnum):
        sh = struct.unpack_from(fmt, table, i * shentsize)
        out.append(tuple(sh[j] for j in idx))
    return ("64" if is64 else "32") + end, out


def dynamic_symbols(path: str) -> set[str]:
    """Names a dlsym() on ``path`` can find: defined GLOBAL/WEAK/UNIQUE symbols of ``.dynsym`` (SHT_DYNSYM)."""
    try:
        with open(path, "rb") as fh:
            ident = fh.read(16)
            if len(ident) < 16 or ident[:4] != b"\x7fELF":
                raise ElfError("not an ELF file")
            kind, sections = _sections(fh, ident)
            end = kind[2:]
            found: set[str] = set()
            for sh_type, off, size, link, entsize in sections:
                if sh_type != 11 or link >= len(sections):  # SHT_DYNSYM
                    continue
                _t, str_off, str_size, _l, _e = sections[link]
                strtab = _read(fh, str_off, str_size)
                fmt = end + ("IBBHQQ" if kind.startswith("64") else "IIIBBH")
                entsize = entsize or struct.calcsize(fmt)
                data = _read(fh, off, size)
                for i in range(size // entsize):
                    fields = struct.unpack_from(fmt, data, i * entsize)
                    if kind.startswith("64"):
                        name, info, other, shndx = fields[0], fields[1], fields[2], fields[3]
                    else:
                        name, info, other, shndx = fields[0], fields[3], fields[4], fields[5]
                    if shndx == 0 or (info >> 4) not in (1, 2, 10) or (other & 3) in (1, 2):
                        continue  # undefined, local, or hidden/internal
                    stop = strtab.find(b"\0", name)
                    found.add(strtab[name:stop if stop >= 0 else None].decode("utf-8", "replace"))
            return found
    except (OSError, struct.error) as exc:
        raise ElfError(str(exc)) from None


def _exports(path: str | None, names: tuple[str, ...]) -> tuple[dict[str, bool] | None, str | None]:
    if not path:
        return None, None
    try:
        syms = dynamic_symbols(path)
    except ElfError as exc:
        return None, f"cannot read its dynamic symbols: {exc}"
    return {n: n in syms for n in names}, None


# ------------------------------------------------------------------------------------------------ the process
def _real_path(path: str) -> str:
    """op-plugin's ``real_path``: realpath(3), or "" when the path does not exist."""
    if not path or not os.path.exists(path):
        return ""
    return os.path.realpath(path)


def _load_priority(config_ini: str) -> tuple[list[str] | None, str | None]:
    """The names of the first line starting with ``load_priority=`` (None: no readable config.ini)."""
    if not _real_path(config_ini):
        return None, f"{config_ini} does not exist"
    try:
        with open(config_ini, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().split("\n")
    except OSError as exc:
        return None, f"cannot read {config_ini}: {exc.strerror or exc}"
    line = next((ln for ln in lines if ln.startswith("load_priority=")), "")
    return line[len("load_priority="):].split(","), None


def snapshot(environ: dict[str, str] | None = None) -> dict:
    """The two search lists as op-plugin computes them when torch_npu loads. Call before ``import torch_npu``."""
    env = os.environ if environ is None else environ
    custom = env.get("ASCEND_CUSTOM_OPP_PATH")
    opp = env.get("ASCEND_OPP_PATH")
    snap = {"ASCEND_CUSTOM_OPP_PATH": custom, "ASCEND_OPP_PATH": opp, "config_ini": None, "load_priority": None,
            "config_error": None, "custom": [], "vendors": [],
            "LD_LIBRARY_PATH": env.get("LD_LIBRARY_PATH", "")}
    if custom is not None:
        snap["custom"] = [{"entry": e, "dir": e + "/op_api/lib/"} for e in custom.split(":")]
    if opp is not None:
        vendors = opp + "/vendors"
        snap["config_ini"] = vendors + "/config.ini"
        names, snap["config_error"] = _load_priority(snap["config_ini"])
        snap["load_priority"] = names
        snap["vendors"] = [{"entry": n, "dir": _real_path(vendors + "/" + n + "/op_api/lib/")} for n in names or []]
    return snap


def read_maps(path: str = "/proc/self/maps") -> set[str] | None:
    """Real paths of the files mapped into this process (None when the maps cannot be read)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    mapped = set()
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/"):
            name = parts[5]
            if name.endswith(" (deleted)"):
                name = name[: -len(" (deleted)")]
            mapped.add(os.path.realpath(name))
    return mapped


def owner_check(path: str, uid: int) -> tuple[bool, int | None, str]:
    """op-plugin's ``checkOwner`` for a process whose ``getuid()`` is ``uid``: (passes, owner uid, note)."""
    try:
        owner = os.stat(path).st_uid
    except OSError as exc:
        return False, None, f"cannot stat: {exc.strerror or exc}"
    if uid != OWNER_ROOT_UID and owner == OWNER_ROOT_UID:
        return True, owner, "a common user using a root-owned library: op-plugin only warns"
    if (uid == OWNER_ROOT_UID and owner != OWNER_ROOT_UID) or (uid != OWNER_ROOT_UID and uid != owner):
        return False, owner, (f"owned by uid {owner}, process uid {uid}: op-plugin's checkOwner skips it "
                              "(\"will skip this file\")")
    return True, owner, ""


def _builtin_path(mapped: set[str] | None, ld_library_path: str) -> str | None:
    """CANN's libopapi.so: the one mapped, else the first on LD_LIBRARY_PATH (what dlopen("libopapi.so") finds)."""
    for p in sorted(mapped or ()):
        if os.path.basename(p) == BUILTIN_LIB:
            return p
    for d in ld_library_path.split(":"):
        if d and os.path.isfile(os.path.join(d, BUILTIN_LIB)):
            return os.path.realpath(os.path.join(d, BUILTIN_LIB))
    return None


def _candidates(snap: dict, names: tuple[str, ...], uid: int, mapped: set[str] | None) -> list[dict]:
    """Every library op-plugin's walk reaches, in order; an entry without a library ends its list."""
    out: list[dict] = []
    for source in ("custom_path", "vendor"):
        for e in snap["custom" if source == "custom_path" else "vendors"]:
            lib = _real_path(e["dir"] + "/" + CUST_LIB)
            c = {"source": source, "entry": e["entry"], "library": lib or None, "exports": None,
                 "owner_ok": None, "owner_uid": None, "mapped": None, "note": ""}
            out.append(c)
            if not lib:
                c["note"] = f"no {e['dir']}{CUST_LIB}: op-plugin stops the {source.replace('_', ' ')} list here"
                break
            c["exports"], err = _exports(lib, names)
            c["owner_ok"], c["owner_uid"], c["note"] = owner_check(lib, uid)
            c["note"] = err or c["note"]
            c["mapped"] = None if mapped is None else lib in mapped
    return out


def _served(cands: list[dict], builtin: dict, name: str) -> dict | None:
    """The candidate (or the built-in) that serves ``name``: reached, mapped (dlopen worked), exports, owner ok."""
    for c in cands:
        if c["library"] and c["mapped"] is not False and c["owner_ok"] and (c["exports"] or {}).get(name):
            return c
    if (builtin["exports"] or {}).get(name):
        return builtin
    return None


def _vendor_of(c: dict | None) -> str | None:
    if c is None or not c.get("library"):
        return None
    if c["source"] == "vendor":
        return c["entry"]
    return os.path.basename(os.path.dirname(os.path.dirname(os.path.dirname(c["library"]))))


def _why_not_ours(snap: dict, cands: list[dict], ours: str, name: str) -> tuple[str, str]:
    """(cause, fix) when our library did not serve ``name``."""
    vendor = os.path.basename(os.path.dirname(os.path.dirname(os.path.dirname(ours))))
    mine = next((c for c in cands if c["library"] == ours), None)
    restart = " Then start the training process again (op-plugin reads the lists once, at import torch_npu)."
    if mine is None:
        stop = next((c for c in cands if not c["library"] and c["source"] == "vendor"), None)
        listed = vendor in (snap["load_priority"] or [])
        if listed and stop is not None:
            return (f"vendor {stop['entry']!r} comes before {vendor} in load_priority but has no op_api/lib/{CUST_LIB}; "
                    f"op-plugin stops the vendor list there, so {vendor} is never tried",
                    f"put {vendor} before {stop['entry']} in load_priority of {snap['config_ini']} (reinstall the "
                    "package) or remove the stale entry." + restart)
        if snap["ASCEND_OPP_PATH"] is None:
            return ("ASCEND_OPP_PATH was not set when torch_npu was imported",
                    "source CANN's set_env.sh before starting Python." + restart)
        if snap["load_priority"] is None:
            return (f"no vendors/config.ini ({snap['config_error']})", "reinstall the package." + restart)
        return (f"{vendor} is not in load_priority of {snap['config_ini']} (seen: {','.join(snap['load_priority'])})"
                + ("" if snap["ASCEND_CUSTOM_OPP_PATH"] is None else " nor in ASCEND_CUSTOM_OPP_PATH"),
                f"reinstall the package (its install.sh puts {vendor} first in load_priority)." + restart)
    if not (mine["exports"] or {}).get(name):
        return (f"our {ours} does not export {name}" + (f" ({mine['note']})" if mine["exports"] is None else ""),
                "rebuild with --ops=flash_attention_score and reinstall.")
    if not mine["owner_ok"]:
        return (f"our library skipped by the owner check: {mine['note']}",
                f"chown root:root {ours} when training runs as root, or install as the user who runs it.")
    if mine["mapped"] is False:
        return (f"our {ours} is not mapped in the process: its dlopen failed (op-plugin goes on to the next)",
                f"run ldd {ours} in the training environment and fix the missing dependency, or reinstall.")
    return ("an earlier library in op-plugin's order exports it", "see candidates.")


def decide(snap: dict, mapped: set[str] | None, expect_vendor_dir: str | None = None, expect: str = "vendor",
           uid: int | None = None, api: str = API) -> dict:
    """The verdict: which library served ``api`` (and its GetWorkspaceSize) in this process, and whether it is ours.

    ``expect``: ``vendor`` (our ``<expect_vendor_dir>/op_api/lib/libcust_opapi.so`` must serve) or ``builtin``
    (CANN's ``libopapi.so`` must serve: the baseline run). ``ok`` is None when there is nothing to expect.
    ``uid``: the process's ``getuid()`` (default: this process's), what checkOwner compares.
    """
    uid = os.getuid() if uid is None else uid
    names = (api + "GetWorkspaceSize", api)
    cands = _candidates(snap, names, uid, mapped)
    bpath = _builtin_path(mapped, snap.get("LD_LIBRARY_PATH") or "")
    bexp, berr = _exports(bpath, names)
    builtin = {"source": "builtin", "entry": BUILTIN_LIB, "library": bpath, "exports": bexp, "note": berr or "",
               "mapped": None if mapped is None or bpath is None else bpath in mapped}
    served = {n: _served(cands, builtin, n) for n in names}
    top = served[api]
    out = {"api": api, "library": top["library"] if top else None, "vendor": _vendor_of(top),
           "source": top["source"] if top else "none", "ok": None, "reason": "", "fix": "",
           "builtin": {"library": bpath, "exports": bool(bexp and bexp.get(api))},
           "candidates": cands, "uid": uid, "load_priority": snap["load_priority"],
           "ASCEND_CUSTOM_OPP_PATH": snap["ASCEND_CUSTOM_OPP_PATH"], "ASCEND_OPP_PATH": snap["ASCEND_OPP_PATH"]}
    what = _describe(top, api)
    if served[names[0]] is not top:
        out.update(ok=False if (expect_vendor_dir or expect == "builtin") else None,
                   reason=f"{names[0]} served by {_describe(served[names[0]], api)}, {api} by {what}",
                   fix="make one library first in op-plugin's order for both (see candidates).")
        return out
    if expect == "builtin":
        ok = top is builtin
        out.update(ok=ok, reason=f"served by {what}" if ok else f"baseline not served by CANN's built-in: {what}",
                   fix="" if ok else "the overlay must hide every vendor that exports it (see candidates).")
        return out
    if not expect_vendor_dir:
        out["reason"] = f"served by {what} (no expected vendor given: not judged)"
        return out
    ours = _real_path(os.path.join(expect_vendor_dir, "op_api", "lib", CUST_LIB)) or os.path.join(
        expect_vendor_dir, "op_api", "lib", CUST_LIB)
    if top is not None and top["library"] == ours:
        out.update(ok=True, reason=f"served by {what}")
        return out
    cause, fix = _why_not_ours(snap, cands, ours, api)
    if top is not None and top is not builtin and top["library"] != ours:
        mine = next((c for c in cands if c["library"] == ours), None)
        if mine is not None and cands.index(top) < cands.index(mine):
            cause = f"it comes earlier in {'ASCEND_CUSTOM_OPP_PATH' if top['source'] == 'custom_path' else 'load_priority'}"
            fix = (f"remove {top['entry']} from ASCEND_CUSTOM_OPP_PATH in the users' environment"
                   if top["source"] == "custom_path" else
                   f"put {_vendor_of(mine)} first in load_priority (reinstall the package)") + \
                ". Then start the training process again."
    out.update(ok=False, reason=f"served by {what}, not by {os.path.basename(expect_vendor_dir.rstrip('/'))}: {cause}",
               fix=fix)
    return out


def _describe(c: dict | None, api: str) -> str:
    if c is None:
        return f"no library (nothing exports {api})"
    if c["source"] == "builtin":
        return f"CANN's built-in {api[len('aclnn'):]} ({c['library']})"
    where = "ASCEND_CUSTOM_OPP_PATH entry" if c["source"] == "custom_path" else "vendor"
    return f"{where} {_vendor_of(c) if c['source'] == 'vendor' else c['entry']} ({c['library']})"


# ------------------------------------------------------------------------------------------------ baseline overlay
def make_overlay(opp_path: str, drop: list[str], dest: str) -> str:
    """A private OPP tree in ``dest`` without the vendors ``drop`` (names, or paths compared by realpath).

    Every entry of ``opp_path`` but ``vendors/`` is a symlink; ``vendors/`` holds symlinks to the other vendors and a
    ``config.ini`` whose ``load_priority`` lacks the dropped names. The system's files are only read. Returns the
    new ASCEND_OPP_PATH."""
    root = os.path.join(dest, "opp")
    os.makedirs(os.path.join(root, "vendors"))
    for name in os.listdir(opp_path):
        if name != "vendors":
            os.symlink(os.path.join(opp_path, name), os.path.join(root, name))
    src = os.path.join(opp_path, "vendors")
    real_drop = {os.path.realpath(d) for d in drop if os.sep in d}
    names_drop = {os.path.basename(d.rstrip("/")) for d in drop}
    dropped = set()
    for name in (os.listdir(src) if os.path.isdir(src) else []):
        path = os.path.join(src, name)
        if name == "config.ini":
            continue
        if name in names_drop or os.path.realpath(path) in real_drop:
            dropped.add(name)
            continue
        os.symlink(path, os.path.join(root, "vendors", name))
    lines = []
    if os.path.isfile(os.path.join(src, "config.ini")):
        with open(os.path.join(src, "config.ini"), encoding="utf-8", errors="replace") as fh:
            lines = fh.read().split("\n")
    out = []
    for ln in lines:
        if ln.startswith("load_priority="):
            kept = [n for n in ln[len("load_priority="):].split(",") if n not in dropped | names_drop]
            ln = "load_priority=" + ",".join(kept)
        out.append(ln)
    with open(os.path.join(root, "vendors", "config.ini"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(out))
    return root
