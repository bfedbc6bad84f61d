"""A fake ``pynvml`` (nvidia-ml-py), shaped like the real module for what NvmlSource uses.

Same names, same units and same error model as nvidia-ml-py 12/13: ``nvmlInit``,
``nvmlShutdown``, ``nvmlDeviceGetCount``, ``nvmlDeviceGetHandleByIndex``, ``nvmlDeviceGetName``
(``str``), ``nvmlDeviceGetPowerUsage`` (milliwatts, int), ``nvmlDeviceGetTotalEnergyConsumption``
(millijoules since the driver loaded, int), ``nvmlDeviceGetUtilizationRates`` (``.gpu``,
``.memory`` in %); ``NVMLError(value)`` returns the subclass for that value
(``NVMLError_NotSupported``...) with ``.value``, and the ``NVML_ERROR_*`` constants have
pynvml's values. Calls before ``nvmlInit`` raise Uninitialized, like the real library.

Scripting: set ``fake.gpus[i].power_mw`` / ``energy_mj`` / ``util``; ``None`` for a
``FakeGpu`` field makes that call NotSupported. ``fail_with(code)`` makes every device call raise
until ``recover()``; ``unload_driver()`` drops the initialisation (calls raise Uninitialized until
``nvmlInit`` is called again) and invalidates old handles; ``advance(s)`` adds power x s to the
energy counters.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_ALREADY_INITIALIZED = 5
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999

_TEXT = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_ALREADY_INITIALIZED: "Already Initialized",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_TIMEOUT: "Timeout",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    """Like pynvml's: ``NVMLError(value)`` is an instance of the subclass for ``value``."""

    _valClassMapping: dict[int, type[NVMLError]] = {}  # noqa: N815 - pynvml's name
    value: int

    def __new__(cls, value: int) -> NVMLError:
        if cls is NVMLError:
            cls = NVMLError._valClassMapping.get(value, cls)
        obj = Exception.__new__(cls)
        obj.value = value
        return obj

    def __init__(self, value: int) -> None:
        super().__init__(value)

    def __str__(self) -> str:
        return _TEXT.get(self.value, f"NVML Error with code {self.value}")


def _error_class(name: str, value: int) -> type[NVMLError]:
    cls = type(name, (NVMLError,), {})
    NVMLError._valClassMapping[value] = cls
    return cls


NVMLError_Uninitialized = _error_class("NVMLError_Uninitialized", NVML_ERROR_UNINITIALIZED)
NVMLError_InvalidArgument = _error_class("NVMLError_InvalidArgument",
                                         NVML_ERROR_INVALID_ARGUMENT)
NVMLError_NotSupported = _error_class("NVMLError_NotSupported", NVML_ERROR_NOT_SUPPORTED)
NVMLError_DriverNotLoaded = _error_class("NVMLError_DriverNotLoaded",
                                         NVML_ERROR_DRIVER_NOT_LOADED)
NVMLError_LibraryNotFound = _error_class("NVMLError_LibraryNotFound",
                                         NVML_ERROR_LIBRARY_NOT_FOUND)
NVMLError_GpuIsLost = _error_class("NVMLError_GpuIsLost", NVML_ERROR_GPU_IS_LOST)
NVMLError_Unknown = _error_class("NVMLError_Unknown", NVML_ERROR_UNKNOWN)


@dataclass
class FakeGpu:
    """One GPU. ``None`` in energy_mj / util / power_mw: that call is NotSupported."""

    name: str = "NVIDIA GeForce RTX 4090"
    power_mw: int | None = 100_000
    energy_mj: int | None = 1_000_000
    util: int | None = 50


@dataclass(frozen=True)
class FakeHandle:
    index: int
    generation: int


@dataclass(frozen=True)
class FakeUtilization:
    gpu: int
    memory: int


class FakeNvml(ModuleType):
    """A module object standing in for ``pynvml``; pass it as ``NvmlSource(nvml=...)``."""

    NVMLError = NVMLError
    NVML_SUCCESS = NVML_SUCCESS
    NVML_ERROR_UNINITIALIZED = NVML_ERROR_UNINITIALIZED
    NVML_ERROR_INVALID_ARGUMENT = NVML_ERROR_INVALID_ARGUMENT
    NVML_ERROR_NOT_SUPPORTED = NVML_ERROR_NOT_SUPPORTED
    NVML_ERROR_NO_PERMISSION = NVML_ERROR_NO_PERMISSION
    NVML_ERROR_ALREADY_INITIALIZED = NVML_ERROR_ALREADY_INITIALIZED
    NVML_ERROR_NOT_FOUND = NVML_ERROR_NOT_FOUND
    NVML_ERROR_DRIVER_NOT_LOADED = NVML_ERROR_DRIVER_NOT_LOADED
    NVML_ERROR_TIMEOUT = NVML_ERROR_TIMEOUT
    NVML_ERROR_LIBRARY_NOT_FOUND = NVML_ERROR_LIBRARY_NOT_FOUND
    NVML_ERROR_FUNCTION_NOT_FOUND = NVML_ERROR_FUNCTION_NOT_FOUND
    NVML_ERROR_GPU_IS_LOST = NVML_ERROR_GPU_IS_LOST
    NVML_ERROR_UNKNOWN = NVML_ERROR_UNKNOWN
    NVMLError_Uninitialized = NVMLError_Uninitialized
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_DriverNotLoaded = NVMLError_DriverNotLoaded
    NVMLError_GpuIsLost = NVMLError_GpuIsLost

    def __init__(self, gpus: list[FakeGpu] | None = None, init_error: int | None = None) -> None:
        super().__init__("pynvml")
        self.gpus: list[FakeGpu] = list(gpus) if gpus is not None else [FakeGpu()]
        self.init_error = init_error  # nvmlInit raises NVMLError(init_error) when set
        self.refcount = 0  # nvmlInit minus nvmlShutdown, like pynvml's _nvmlLib_refcount
        self.init_calls = 0
        self.power_reads = 0
        self._error: int | None = None
        self._generation = 0
        self._lock = threading.RLock()

    # -- scripting ------------------------------------------------------------------------
    def fail_with(self, code: int = NVML_ERROR_GPU_IS_LOST) -> None:
        """Every device call raises NVMLError(code) until recover()."""
        with self._lock:
            self._error = code

    def recover(self) -> None:
        with self._lock:
            self._error = None

    def unload_driver(self) -> None:
        """As if the driver reloaded: uninitialised, and old handles no longer valid."""
        with self._lock:
            self.refcount = 0
            self._generation += 1

    def advance(self, seconds: float) -> None:
        """Adds power x seconds to every counter (mJ = mW x s)."""
        with self._lock:
            for gpu in self.gpus:
                if gpu.energy_mj is not None and gpu.power_mw is not None:
                    gpu.energy_mj += int(round(gpu.power_mw * seconds))

    # -- the pynvml API -------------------------------------------------------------------
    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        with self._lock:
            self.init_calls += 1
            if self.init_error is not None:
                raise NVMLError(self.init_error)
            self.refcount += 1

    def nvmlShutdown(self) -> None:  # noqa: N802
        with self._lock:
            self._check_init()
            self.refcount -= 1

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        with self._lock:
            self._check_init()
            return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:  # noqa: N802
        with self._lock:
            self._check_device_call()
            if not 0 <= index < len(self.gpus):
                raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
            return FakeHandle(index, self._generation)

    def nvmlDeviceGetName(self, handle: FakeHandle) -> str:  # noqa: N802
        return self._gpu(handle).name

    def nvmlDeviceGetPowerUsage(self, handle: FakeHandle) -> int:  # noqa: N802
        with self._lock:
            gpu = self._gpu(handle)
            self.power_reads += 1
            return int(self._supported(gpu.power_mw))

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeHandle) -> int:  # noqa: N802
        return int(self._supported(self._gpu(handle).energy_mj))

    def nvmlDeviceGetUtilizationRates(self, handle: FakeHandle) -> FakeUtilization:  # noqa: N802
        util = int(self._supported(self._gpu(handle).util))
        return FakeUtilization(gpu=util, memory=util // 2)

    # -- internals ------------------------------------------------------------------------
    def _check_init(self) -> None:
        if self.refcount <= 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)

    def _check_device_call(self) -> None:
        self._check_init()
        if self._error is not None:
            raise NVMLError(self._error)

    def _gpu(self, handle: FakeHandle) -> FakeGpu:
        with self._lock:
            self._check_device_call()
            if handle.generation != self._generation:
                raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
            return self.gpus[handle.index]

    @staticmethod
    def _supported(value: Any) -> Any:
        if value is None:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return value
