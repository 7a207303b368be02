"""SIMULATOR (ascend-fa): finds and binds the installed custom operator package the way CANN does.

Search order (read once per process, at the first operator call, as CANN reads it at initialisation):
 1. every entry of ``ASCEND_CUSTOM_OPP_PATH`` (colon-separated), in order: a vendor directory
    (``<entry>/op_api/lib/libcust_opapi.so``) or a library directory (``<entry>/libcust_opapi.so``);
 2. ``$ASCEND_OPP_PATH/vendors/<vendor>/op_api/lib/libcust_opapi.so`` for each vendor of
    ``$ASCEND_OPP_PATH/vendors/config.ini`` ``load_priority=``, in order.
The first library that exports the requested aclnn API is used. A library that fails to load raises
the loader's error. The C ABI is documented in the package header ``aclnn_flash_attention_score.h``.
"""

from __future__ import annotations

import ctypes
import os
import threading

ABI_VERSION = 1


class FaParams(ctypes.Structure):
    """ascendfa_sim_fa_params (see aclnn_flash_attention_score.h)."""

    _fields_ = [
        ("abi_version", ctypes.c_uint32),
        ("causal", ctypes.c_int32),
        ("batch", ctypes.c_int64),
        ("heads_q", ctypes.c_int64),
        ("heads_kv", ctypes.c_int64),
        ("seq_q", ctypes.c_int64),
        ("seq_kv", ctypes.c_int64),
        ("head_dim", ctypes.c_int64),
        ("head_dim_v", ctypes.c_int64),
        ("scale", ctypes.c_double),
        ("pre_tokens", ctypes.c_int64),
        ("next_tokens", ctypes.c_int64),
        ("query", ctypes.c_void_p),
        ("key", ctypes.c_void_p),
        ("value", ctypes.c_void_p),
        ("atten_mask", ctypes.c_void_p),
        ("mask_stride_b", ctypes.c_int64),
        ("mask_stride_n", ctypes.c_int64),
        ("mask_stride_s", ctypes.c_int64),
        ("actual_seq_qlen", ctypes.c_void_p),
        ("actual_seq_kvlen", ctypes.c_void_p),
        ("out", ctypes.c_void_p),
        ("softmax_max", ctypes.c_void_p),
        ("softmax_sum", ctypes.c_void_p),
    ]


class OpPackage:
    """One loaded libcust_opapi.so."""

    def __init__(self, path: str, lib: ctypes.CDLL):
        self.path = path
        self.lib = lib
        self.vendor_dir = os.path.dirname(os.path.dirname(os.path.dirname(path)))
        for name, restype in (
            ("ascendfa_sim_package_soc", ctypes.c_char_p),
            ("ascendfa_sim_package_version", ctypes.c_char_p),
            ("ascendfa_sim_last_error", ctypes.c_char_p),
            ("ascendfa_sim_last_kernel", ctypes.c_char_p),
        ):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = restype
                fn.argtypes = []

    def _str(self, name: str) -> str:
        fn = getattr(self.lib, name, None)
        if fn is None:
            return ""
        value = fn()
        return value.decode() if value else ""

    @property
    def soc(self) -> str:
        return self._str("ascendfa_sim_package_soc")

    @property
    def version(self) -> str:
        return self._str("ascendfa_sim_package_version")

    def last_error(self) -> str:
        return self._str("ascendfa_sim_last_error")

    def last_kernel(self) -> str:
        return self._str("ascendfa_sim_last_kernel")

    def has(self, api: str) -> bool:
        return hasattr(self.lib, api) and hasattr(self.lib, api + "GetWorkspaceSize")


def candidate_libraries() -> list[str]:
    """libcust_opapi.so files in CANN's search order (existing files only)."""
    found: list[str] = []
    for entry in (os.environ.get("ASCEND_CUSTOM_OPP_PATH") or "").split(":"):
        if not entry:
            continue
        for path in (os.path.join(entry, "op_api", "lib", "libcust_opapi.so"), os.path.join(entry, "libcust_opapi.so")):
            if os.path.isfile(path) and path not in found:
                found.append(path)
    opp = os.environ.get("ASCEND_OPP_PATH")
    if opp:
        config = os.path.join(opp, "vendors", "config.ini")
        vendors: list[str] = []
        try:
            with open(config, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip().startswith("load_priority="):
                        vendors = [v.strip() for v in line.split("=", 1)[1].split(",") if v.strip()]
                        break
        except OSError:
            vendors = []
        for vendor in vendors:
            path = os.path.join(opp, "vendors", vendor, "op_api", "lib", "libcust_opapi.so")
            if os.path.isfile(path) and path not in found:
                found.append(path)
    return found


_lock = threading.Lock()
_cache: dict[str, OpPackage | None] = {}
_loaded: dict[str, OpPackage] = {}
_search: list[str] | None = None


def find_package(api: str) -> OpPackage:
    """The custom package exporting ``api`` (e.g. aclnnFlashAttentionScore); RuntimeError otherwise."""
    global _search
    with _lock:
        if api in _cache and _cache[api] is not None:
            return _cache[api]
        if _search is None:
            _search = candidate_libraries()
        for path in _search:
            pkg = _loaded.get(path)
            if pkg is None:
                try:
                    lib = ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL)
                except OSError as exc:
                    raise RuntimeError(f"dlopen {path} failed, error:{exc}") from None
                pkg = _loaded[path] = OpPackage(path, lib)
            if pkg.has(api):
                _bind(pkg, api)
                _cache[api] = pkg
                return pkg
        searched = ", ".join(_search) if _search else "none"
        raise RuntimeError(
            f"{api} or {api}GetWorkspaceSize not in libopapi.so, or libopapi.so not found. "
            f"No installed custom operator package provides it (libcust_opapi.so searched: {searched}; "
            f"ASCEND_CUSTOM_OPP_PATH={os.environ.get('ASCEND_CUSTOM_OPP_PATH', '')!r}, "
            f"ASCEND_OPP_PATH={os.environ.get('ASCEND_OPP_PATH', '')!r})."
        )


def _bind(pkg: OpPackage, api: str) -> None:
    get_ws = getattr(pkg.lib, api + "GetWorkspaceSize")
    get_ws.restype = ctypes.c_int
    get_ws.argtypes = [ctypes.POINTER(FaParams), ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_void_p)]
    run = getattr(pkg.lib, api)
    run.restype = ctypes.c_int
    run.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p]
