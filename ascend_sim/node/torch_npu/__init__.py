"""SIMULATOR (ascend-fa): stand-in for the ``torch_npu`` wheel on simulated Ascend hosts.

Used by tests, the demo and benchmarks only; never installed on a real Atlas host (the real wheel is
installed there by pip). Like the real wheel:

* ``import torch_npu`` fails with ``ImportError: libascendcl.so: cannot open shared object file: ...``
  unless CANN's ``set_env.sh`` was sourced (``libascendcl.so`` must load from ``LD_LIBRARY_PATH``);
* it fails to import (``undefined symbol``) when its version is built for another CANN release than the
  host's (table ``_host.TORCH_NPU_CANN``; versions not in the table load anywhere);
* it registers ``torch.npu`` (device count from the simulated host, ``ASCEND_RT_VISIBLE_DEVICES``,
  ``set_device``, events, memory statistics) and the ``npu`` device name;
* ``torch_npu.npu_fusion_attention`` (exact 2.14 schema) runs ``aclnnFlashAttentionScore`` from the library
  op-plugin's lookup picks (``_aclnn``: custom paths and config.ini vendors, computed once at import, with the
  owner check; then CANN's built-in ``libopapi.so``); there is no fallback to torch's own attention.

SIMULATION: host memory stands in for HBM. ``Tensor.npu()`` returns the tensor itself and
``Tensor.to("npu")`` keeps it on the CPU; factory functions with ``device="npu"`` are not supported.
``torch_npu.__version__`` comes from the installed dist-info (``torch_npu-<ver>.dist-info``), else from
host.json ``torch_npu_version``.
"""

from __future__ import annotations

import contextlib
import ctypes as _ctypes
import os as _os
import sys

try:
    _ctypes.CDLL("libascendcl.so", mode=_os.RTLD_NOW | _os.RTLD_GLOBAL)
except OSError as _exc:
    raise ImportError(str(_exc)) from None

import torch

# _aclnn computes op-plugin's two search lists now: global const vectors, fixed when the library loads.
from . import _aclnn, _host, npu  # noqa: F401
from ._ops import npu_fusion_attention, npu_prompt_flash_attention


def _read_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - python < 3.8
        PackageNotFoundError, version = Exception, None
    if version is not None:
        try:
            return version("torch_npu")
        except PackageNotFoundError:
            pass
    return str(_host.load_host().get("torch_npu_version") or "0.0.0+sim")


__version__ = _read_version()

# SIMULATED fault slow-host (what "check"): the device takes this long to initialise (a degraded card or driver
# under load), so a verification can run into fa_verify_timeout.
_delay = _host.slow_seconds("check")
if _delay:
    import time as _time

    _time.sleep(_delay)

_mismatch = _host.torch_npu_cann_mismatch(__version__)
if _mismatch:
    # what the real wheel does against the wrong CANN (e.g. triton-lang/triton-ascend #328)
    raise ImportError(
        f"{_os.path.join(_os.path.dirname(__file__), 'lib', 'libtorch_npu.so')}: undefined symbol: "
        f"MsprofSysCycleTime (SIMULATED: {_mismatch})"
    )


class _C:  # noqa: N801 - mirrors torch_npu._C
    @staticmethod
    def _npu_get_soc_version() -> int:
        return _host.soc_id()


def _tensor_npu(self, device=None, non_blocking=False, memory_format=torch.preserve_format):
    """SIMULATION: the tensor stays in host memory."""
    if device is not None:
        npu.check_device(npu._index(device))
    return self


def _is_npu_device(value) -> bool:
    if isinstance(value, str):
        return value.split(":")[0] == "npu"
    if isinstance(value, torch.device):
        return value.type in ("npu", "privateuseone")
    return False


_orig_to = torch.Tensor.to


def _tensor_to(self, *args, **kwargs):
    """Tensor.to with an npu device keeps the tensor on the CPU (SIMULATION); other uses unchanged."""
    if args and _is_npu_device(args[0]):
        args = ("cpu",) + args[1:]
    if "device" in kwargs and _is_npu_device(kwargs["device"]):
        kwargs["device"] = "cpu"
    return _orig_to(self, *args, **kwargs)


def _register() -> None:
    # RuntimeError when already done (torch_npu imported twice, or reloaded)
    with contextlib.suppress(RuntimeError):
        torch.utils.rename_privateuse1_backend("npu")
    with contextlib.suppress(RuntimeError):
        torch._register_device_module("npu", npu)

    sys.modules["torch.npu"] = npu
    torch.npu = npu
    torch.Tensor.npu = _tensor_npu
    if getattr(torch.Tensor.to, "__name__", "") != "_tensor_to":
        torch.Tensor.to = _tensor_to


_register()

__all__ = ["npu", "npu_fusion_attention", "npu_prompt_flash_attention", "__version__"]
