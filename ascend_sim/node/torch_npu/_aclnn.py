"""SIMULATOR (ascend-fa): how the torch_npu stand-in finds an aclnn API, as op-plugin does.

Source: Ascend/op-plugin ``op_plugin/utils/op_api_common.cpp`` (``get_custom_lib_path``,
``get_default_custom_lib_path``, ``checkOwner``, the global ``const`` vectors ``g_custom_lib_path`` and
``g_default_custom_lib_path``) and ``op_api_common.h`` (``GetOpApiFuncAddr``); ascend-facts.md section 9.1.

* Both search lists are computed ONCE, when ``import torch_npu`` loads this module (in the real wheel: global
  ``const`` vectors initialised when libtorch_npu.so loads). Changing ``ASCEND_CUSTOM_OPP_PATH``,
  ``ASCEND_OPP_PATH`` or ``config.ini`` later in the same process changes nothing.
* Custom list: every ``:``-separated entry of ``ASCEND_CUSTOM_OPP_PATH`` with ``/op_api/lib/`` appended (an
  entry is a vendor folder, never a library folder).
* Vendor list: for each name of the first ``load_priority=`` line of ``realpath($ASCEND_OPP_PATH/vendors/
  config.ini)``, ``realpath($ASCEND_OPP_PATH/vendors/<name>/op_api/lib/)`` ("" when it does not exist).
* Lookup of an API (``GetOpApiFuncAddr``), at its first use, then cached for the process (``static const``):
  for each list in order, ``realpath(<dir>/libcust_opapi.so)``; a path that does not resolve ends that list
  (``break``); the library is dlopen'ed (so it is mapped in ``/proc/self/maps`` even when it is not used; a
  failed dlopen is only logged, the search goes on); when it exports the API, ``checkOwner`` decides (a root
  process skips a library not owned by root, a non-root process skips another non-root user's library, both
  with a warning; a non-root process using a root-owned library only warns). Then CANN's ``libopapi.so``
  (dlopen by bare name, from ``LD_LIBRARY_PATH``). Nothing found: op-plugin's ``TORCH_CHECK`` text.
* ``ASCEND_LOGW``/``ASCEND_LOGI`` lines go to CANN's log, not to the console: printed here only with
  ``ASCEND_SLOG_PRINT_TO_STDOUT=1`` and a ``ASCEND_GLOBAL_LOG_LEVEL`` at or below their level (0 debug,
  1 info, 2 warning, 3 error; default 3).

Nothing here tells a caller which library served (the real torch_npu does not either); :func:`find_package`
is the stand-in's own helper for simulator tests, never used by the product.
The C ABI is documented in the package header ``aclnn_flash_attention_score.h``.
"""

from __future__ import annotations

import ctypes
import os
import threading
import warnings

ABI_VERSION = 1
CUST_LIB = "libcust_opapi.so"   # GetCustOpApiLibName()
OPAPI_LIB = "libopapi.so"       # GetOpApiLibName()
ROOT_UID = 0                    # OWNER_ROOT_UID


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


# ------------------------------------------------------------------------------------------- logging

_LEVELS = {"DEBUG": 0, "INFO": 1, "WARNING": 2, "ERROR": 3}


def _log(level: str, msg: str) -> None:
    """ASCEND_LOGx: CANN's log (plog); on the console only with ASCEND_SLOG_PRINT_TO_STDOUT=1."""
    if os.environ.get("ASCEND_SLOG_PRINT_TO_STDOUT") != "1":
        return
    try:
        threshold = int(os.environ.get("ASCEND_GLOBAL_LOG_LEVEL", "3"))
    except ValueError:
        threshold = 3
    if _LEVELS[level] >= threshold:
        print(f"[{level}] OP({os.getpid()},python):[op_api_common] {msg}", flush=True)


_warned: set[str] = set()


def _warn_once(site: str, msg: str) -> None:
    """TORCH_NPU_WARN_ONCE: once per call site and process, as a Python UserWarning."""
    if site not in _warned:
        _warned.add(site)
        warnings.warn(msg, UserWarning, stacklevel=3)


# -------------------------------------------------------------------------------- the search lists


def real_path(path: str) -> str:
    """op_api_common.cpp real_path(): realpath(3), "" when the path does not resolve."""
    if not path or len(path) > 4096:
        return ""
    try:
        return os.path.realpath(path, strict=True)
    except (OSError, TypeError):
        return ""


def get_custom_lib_path(environ: dict[str, str] | None = None) -> list[str]:
    """ASCEND_CUSTOM_OPP_PATH split on ':' (empty entries kept, as split_str does), each + '/op_api/lib/'."""
    env = os.environ if environ is None else environ
    value = env.get("ASCEND_CUSTOM_OPP_PATH")
    if value is None:
        _log("WARNING", "ASCEND_CUSTOM_OPP_PATH is not exists")
        return []
    return [entry + "/op_api/lib/" for entry in value.split(":")]


def _load_priority(config: str) -> str:
    """The text after ``load_priority=`` of the first line that starts with it ("" when none)."""
    with open(config, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith("load_priority="):
                return line[len("load_priority="):]
    return ""


def get_default_custom_lib_path(environ: dict[str, str] | None = None) -> list[str]:
    """realpath($ASCEND_OPP_PATH/vendors/<name>/op_api/lib/) for each load_priority name ("" if missing)."""
    env = os.environ if environ is None else environ
    opp = env.get("ASCEND_OPP_PATH")
    if opp is None:
        _log("WARNING", "ASCEND_OPP_PATH is not exists")
        return []
    vendors = opp + "/vendors"
    config = real_path(vendors + "/config.ini")
    if not config:
        _log("WARNING", "config.ini is not exists")
        return []
    try:
        names = _load_priority(config).split(",")
    except OSError:
        names = [""]   # std::ifstream on an unreadable file reads nothing: one empty name
    return [real_path(f"{vendors}/{name}/op_api/lib/") for name in names]


# Computed once at import (import torch_npu imports this module): op-plugin's global const vectors.
g_custom_lib_path: tuple[str, ...] = tuple(get_custom_lib_path())
g_default_custom_lib_path: tuple[str, ...] = tuple(get_default_custom_lib_path())


# ------------------------------------------------------------------------------------ the libraries


class OpPackage:
    """One dlopen'ed op API library (a vendor's libcust_opapi.so or CANN's libopapi.so)."""

    def __init__(self, path: str, lib: ctypes.CDLL, kind: str):
        self.path = path
        self.lib = lib
        self.kind = kind   # "custom" (ASCEND_CUSTOM_OPP_PATH), "vendor" (config.ini) or "builtin" (CANN)
        self.vendor_dir = os.path.dirname(os.path.dirname(os.path.dirname(path))) if kind != "builtin" else ""
        for name in ("ascendfa_sim_package_soc", "ascendfa_sim_package_version", "ascendfa_sim_last_error",
                     "ascendfa_sim_last_kernel"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                fn.argtypes = []

    def _str(self, name: str) -> str:
        fn = getattr(self.lib, name, None)
        if fn is None:
            return ""
        value = fn()
        return value.decode(errors="replace") if value else ""

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


_lock = threading.RLock()
_handles: dict[str, OpPackage | None] = {}
_resolved: dict[str, OpPackage | None] = {}


def _dlopen(path: str, kind: str) -> OpPackage | None:
    """GetOpApiLibHandler: dlopen(RTLD_LAZY); a failure is only logged (ASCEND_LOGW)."""
    if path not in _handles:
        try:
            _handles[path] = OpPackage(path, ctypes.CDLL(path, mode=os.RTLD_LAZY | os.RTLD_LOCAL), kind)
        except OSError as exc:
            _log("WARNING", f"dlopen {path} failed, error:{exc}.")
            _handles[path] = None
    return _handles[path]


def check_owner(path: str, uid: int | None = None) -> bool:
    """op_api_common.cpp checkOwner(): may a process of ``uid`` use the library at ``path``?"""
    try:
        owner = os.stat(path).st_uid
    except OSError:
        owner = ROOT_UID   # stat() fails: op-plugin reads an uninitialised struct; treated as root-owned here
    uid = os.getuid() if uid is None else uid
    if uid != ROOT_UID and owner == ROOT_UID:
        _warn_once("common-user", "A common user is using the files of the root user.")
        return True
    if (uid == ROOT_UID and owner != ROOT_UID) or (uid != ROOT_UID and uid != owner):
        _warn_once("skip", f"The {path} owner does not match current owner or the root user is using the files "
                           "of a common user, will skip this file.")
        return False
    return True


def _search_list(dirs: tuple[str, ...], kind: str, api: str) -> OpPackage | None:
    for directory in dirs:
        lib = real_path(directory + "/" + CUST_LIB)
        if not lib:
            break   # op-plugin: a custom/vendor entry without the library ends this list
        pkg = _dlopen(lib, kind)
        if pkg is None or not hasattr(pkg.lib, api):
            if pkg is not None:
                _log("WARNING", f"dlsym {api} from {CUST_LIB} failed")
            continue
        if not check_owner(lib):
            continue
        _log("INFO", f"{api} is found in {lib}.")
        return pkg
    if dirs:
        _log("INFO", f"{api} is not in {'custom' if kind == 'custom' else 'default custom'} lib.")
    return None


def get_op_api_func(api: str) -> OpPackage | None:
    """GetOpApiFuncAddr: the library whose ``api`` symbol op-plugin would use (None: not found). Cached."""
    with _lock:
        if api not in _resolved:
            _resolved[api] = (_search_list(g_custom_lib_path, "custom", api)
                              or _search_list(g_default_custom_lib_path, "vendor", api)
                              or _builtin(api))
        return _resolved[api]


def _builtin(api: str) -> OpPackage | None:
    """CANN's libopapi.so, dlopen'ed by bare name (LD_LIBRARY_PATH), once per process."""
    pkg = _dlopen(OPAPI_LIB, "builtin")
    if pkg is not None and hasattr(pkg.lib, api):
        return pkg
    return None   # GetOpApiFuncAddrFromFeatureLib: no feature libraries are simulated


def not_found_message(api: str) -> str:
    """op-plugin EXEC_NPU_CMD's TORCH_CHECK text, with OPS_ERROR(ErrCode::PTR)'s suffix."""
    return (f"{api} or {api}GetWorkspaceSize not in {OPAPI_LIB}, or {OPAPI_LIB} not found.\n"
            f"[ERROR] (PID:{os.getpid()}) ERR01004 OPS invalid pointer")


def find_package(api: str) -> OpPackage:
    """The library serving ``api`` for this process (both entry points resolved as op-plugin resolves each);
    RuntimeError with op-plugin's text when none. Simulator tests only."""
    run = get_op_api_func(api)
    get_ws = get_op_api_func(api + "GetWorkspaceSize")
    if run is None or get_ws is None:
        raise RuntimeError(not_found_message(api))
    if run is not get_ws:
        # SIMULATION: a real process would pair one library's executor with another's run function.
        raise RuntimeError(f"{api} resolves to {run.path} but {api}GetWorkspaceSize to {get_ws.path} "
                           "(SIMULATED: mixed libraries, undefined behaviour on a real node)")
    _bind(run, api)
    return run


def _bind(pkg: OpPackage, api: str) -> None:
    get_ws = getattr(pkg.lib, api + "GetWorkspaceSize")
    get_ws.restype = ctypes.c_int
    get_ws.argtypes = [ctypes.POINTER(FaParams), ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_void_p)]
    run = getattr(pkg.lib, api)
    run.restype = ctypes.c_int
    run.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p]


def search_lists() -> dict[str, list[str]]:
    """The two lists as computed at import (simulator tests and debugging)."""
    return {"custom": list(g_custom_lib_path), "vendor": list(g_default_custom_lib_path)}
