"""SIMULATOR (ascend-fa): ``torch.npu`` / ``torch_npu.npu`` of the torch_npu stand-in.

Device management over the simulated host (host.json): the device count is ``npu_count`` x chips per
NPU (2 on A3 and 310P3 Duo boards), filtered by ``ASCEND_RT_VISIBLE_DEVICES``; a device whose NPU's
health is ``Alarm`` or ``Critical`` is refused. Work runs synchronously on
the host CPU (host memory stands in for HBM), so ``synchronize`` has nothing to wait for and events time
with ``time.perf_counter``. Memory statistics count the buffers the simulated operators allocate.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import torch

from .. import _host

_state = {"device": 0, "initialized": False, "peak": {}, "allocated": {}}


def _err(code: int, msg: str) -> RuntimeError:
    return RuntimeError(f"NPU function error: aclrtSetDevice, error code is {code}\n[ERROR] {msg}")


def _index(device=None) -> int:
    if device is None:
        return current_device()
    if isinstance(device, int):
        return device
    if isinstance(device, str):
        device = torch.device(device)
    if isinstance(device, torch.device):
        if device.type not in ("npu", "privateuseone"):
            raise ValueError(f"Expected an npu device, but got: {device}")
        return current_device() if device.index is None else device.index
    raise TypeError(f"invalid device: {device!r}")


def is_available() -> bool:
    return device_count() > 0


def device_count() -> int:
    return len(_host.visible_devices())


def check_device(index: int) -> int:
    """Physical device id of a logical device; RuntimeError when it is not usable."""
    host = _host.load_host()
    visible = _host.visible_devices(host)
    if not 0 <= index < len(visible):
        raise _err(
            107001,
            f"EE1001: The argument is invalid.Reason: Set device failed, invalid device, set device={index}, "
            f"valid device range is [0, {len(visible)})",
        )
    physical = visible[index]
    state = _host.health(physical, host)
    if state.lower() in _host.UNUSABLE_HEALTH:
        npu_id, chip_id = _host.npu_of(physical, host)
        raise _err(
            507899,
            f"EL0004: Failed to allocate memory or the device is unavailable. Device {index} "
            f"(NPU {npu_id} chip {chip_id}) health is {state}.",
        )
    return physical


def set_device(device) -> None:
    index = _index(device)
    check_device(index)
    _state["device"] = index
    _state["initialized"] = True


def current_device() -> int:
    return _state["device"]


def is_initialized() -> bool:
    return _state["initialized"]


def init() -> None:
    set_device(current_device())


def synchronize(device=None) -> None:
    """Operators run synchronously in the simulator: nothing to wait for."""
    return None


def get_device_name(device=None) -> str:
    _index(device)
    return _host.soc_version()


def get_device_properties(device=None):
    check_device(_index(device))
    host = _host.load_host()
    return SimpleNamespace(
        name=_host.soc_version(host),
        total_memory=_host.hbm_total_mb(host) * 1024 * 1024,
        cube_core_num=24,
        vector_core_num=48,
        L2_cache_size=192 * 1024 * 1024,
    )


def get_soc_version() -> int:
    return _host.soc_id()


def manual_seed(seed: int) -> None:
    """SIMULATION: random numbers come from the CPU generator."""
    torch.random.default_generator.manual_seed(int(seed))


def manual_seed_all(seed: int) -> None:
    manual_seed(seed)


def _is_in_bad_fork() -> bool:
    return False


def _track_alloc(nbytes: int, device=None) -> None:
    index = _index(device)
    now = _state["allocated"].get(index, 0) + nbytes
    _state["allocated"][index] = now
    if now > _state["peak"].get(index, 0):
        _state["peak"][index] = now


def _track_free(nbytes: int, device=None) -> None:
    index = _index(device)
    _state["allocated"][index] = max(0, _state["allocated"].get(index, 0) - nbytes)


def memory_allocated(device=None) -> int:
    return _state["allocated"].get(_index(device), 0)


def max_memory_allocated(device=None) -> int:
    return _state["peak"].get(_index(device), 0)


def reset_peak_memory_stats(device=None) -> None:
    index = _index(device)
    _state["peak"][index] = _state["allocated"].get(index, 0)


def reset_max_memory_allocated(device=None) -> None:
    reset_peak_memory_stats(device)


def empty_cache() -> None:
    return None


def mem_get_info(device=None) -> tuple[int, int]:
    index = _index(device)
    physical = check_device(index)
    host = _host.load_host()
    total = _host.hbm_total_mb(host) * 1024 * 1024
    used_mb = (host.get("hbm_used_mb") or {}).get(str(_host.npu_of(physical, host)[0]), 0)
    return max(0, total - int(used_mb) * 1024 * 1024 - memory_allocated(index)), total


class Event:
    """Timing event; the simulator's work is synchronous, so a host timestamp is exact."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False):
        self.enable_timing = enable_timing
        self._t: float | None = None

    def record(self, stream=None) -> None:
        self._t = time.perf_counter()

    def synchronize(self) -> None:
        return None

    def wait(self, stream=None) -> None:
        return None

    def query(self) -> bool:
        return True

    def elapsed_time(self, end_event: Event) -> float:
        if not (self.enable_timing and end_event.enable_timing):
            raise RuntimeError("Both events must be created with argument 'enable_timing=True'.")
        if self._t is None or end_event._t is None:
            raise RuntimeError("Both events must be recorded before calculating elapsed time.")
        return (end_event._t - self._t) * 1000.0


class Stream:
    def __init__(self, device=None, priority: int = 0):
        self.device = device

    def synchronize(self) -> None:
        return None

    def wait_event(self, event: Event) -> None:
        return None

    def record_event(self, event: Event | None = None) -> Event:
        event = event or Event()
        event.record(self)
        return event


_default_stream = Stream()


def current_stream(device=None) -> Stream:
    return _default_stream


def default_stream(device=None) -> Stream:
    return _default_stream


class utils:  # noqa: N801 - mirrors the torch_npu.npu.utils namespace
    @staticmethod
    def get_cann_version(module: str = "CANN") -> str:
        host = _host.load_host()
        if module.upper() == "DRIVER":
            return str(host.get("driver_version", ""))
        return str(host.get("cann_version", ""))
