"""Power of desktop and server NVIDIA GPUs through NVML (nvidia-ml-py, ``import pynvml``).

Units as NVML gives them: ``nvmlDeviceGetPowerUsage`` in milliwatts,
``nvmlDeviceGetTotalEnergyConsumption`` in millijoules since the driver loaded (Volta and newer).
Where every selected GPU has the counter, samples carry it (``gpu_counter_j``) and the meter
reads energy at the window edges instead of integrating power (docs/measurement.md rule 2).

On JetPack 6/7 NVML initialises but every telemetry call is NotSupported: ``open()`` probes the
power reading and raises :class:`SourceUnavailable`, so ``auto`` moves on. ``pynvml`` is
imported lazily; tests inject a fake module shaped like it (tests/fake_nvml.py).
"""

from __future__ import annotations

import contextlib
import logging
import time
from types import ModuleType
from typing import Any

from carbontop.errors import BadInput
from carbontop.model import PowerSample, Scope, SourceInfo
from carbontop.sources.base import SourceUnavailable, ThreadedSource

logger = logging.getLogger(__name__)

NO_NVML = "NVML is not available (no NVIDIA driver): use --gpu-source none"
NOT_SUPPORTED = 3  # NVML_ERROR_NOT_SUPPORTED, when the module does not say
UNINITIALIZED = 1  # NVML_ERROR_UNINITIALIZED


def _text(value: Any) -> str:
    """NVML strings are ``str`` in nvidia-ml-py >= 11.515 and ``bytes`` before."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _describe_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class NvmlSource(ThreadedSource):
    """Sum of the selected NVIDIA GPUs' power, sampled every ``interval_s`` on a thread.

    ``gpu_indices`` are NVML indices (``nvidia-smi`` order); ``None`` selects every GPU.
    """

    def __init__(
        self,
        gpu_indices: list[int] | None = None,
        interval_s: float = 0.5,
        nvml: ModuleType | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        super().__init__()
        self._requested = None if gpu_indices is None else list(gpu_indices)
        self.interval_s = float(interval_s)
        self._nvml: Any = nvml
        self.info = SourceInfo(kind="nvml", device_name="NVIDIA GPU (not opened)",
                               interval_s=self.interval_s)
        self.indices: list[int] = []
        self.names: list[str] = []
        self._handles: list[Any] | None = None
        self._inits = 0  # successful nvmlInit calls, each balanced by nvmlShutdown in close()
        self._has_util = True

    # -- PowerSource --------------------------------------------------------------------------
    def open(self) -> SourceInfo:
        """Initialises NVML, selects the GPUs and checks that their power can be read."""
        if self._handles is not None:
            return self.info
        nvml = self._module()
        self._init()
        try:
            self.info = self._describe(nvml)
        except BaseException:
            self._shutdown_nvml()
            raise
        logger.info("NVML source open: %s, GPUs %s, energy counter %s, interval %.3f s",
                    self.info.device_name, self.indices, self.info.has_energy_counter,
                    self.interval_s)
        return self.info

    def _release(self) -> None:
        """NVML shut down once the thread has ended."""
        self._handles = None
        self._shutdown_nvml()

    # -- opening ------------------------------------------------------------------------------
    def _module(self) -> Any:
        if self._nvml is None:
            try:
                import pynvml
            except ImportError as exc:
                raise SourceUnavailable(
                    "nvidia-ml-py is not installed: pip install nvidia-ml-py, "
                    "or use --gpu-source none"
                ) from exc
            self._nvml = pynvml
        return self._nvml

    def _init(self) -> None:
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except Exception as exc:  # NVMLError (driver, library), OSError
            logger.info("nvmlInit failed: %s", _describe_error(exc))
            raise SourceUnavailable(NO_NVML) from exc
        self._inits += 1

    def _shutdown_nvml(self) -> None:
        while self._inits > 0:
            self._inits -= 1
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001 - nothing to do about it
                logger.debug("nvmlShutdown failed", exc_info=True)

    def _is_error(self, exc: BaseException, code_name: str, default: int) -> bool:
        nvml = self._nvml
        error_type = getattr(nvml, "NVMLError", None)
        if error_type is None or not isinstance(exc, error_type):
            return False
        return getattr(exc, "value", None) == getattr(nvml, code_name, default)

    def _describe(self, nvml: Any) -> SourceInfo:
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except Exception as exc:
            raise SourceUnavailable(
                f"NVML cannot count the GPUs ({_describe_error(exc)}): use --gpu-source none"
            ) from exc
        if count <= 0:
            raise SourceUnavailable("NVML found no NVIDIA GPU: use --gpu-source none")
        indices = self._select(count)
        handles = []
        for i in indices:
            try:
                handles.append(nvml.nvmlDeviceGetHandleByIndex(i))
            except Exception as exc:
                raise SourceUnavailable(
                    f"NVML cannot open GPU {i} ({_describe_error(exc)}): use --gpu-source none"
                ) from exc
        names = []
        for i, handle in zip(indices, handles, strict=True):
            try:
                names.append(_text(nvml.nvmlDeviceGetName(handle)))
            except Exception:  # noqa: BLE001 - a name is only a label
                names.append(f"GPU {i}")
        for i, handle, name in zip(indices, handles, names, strict=True):
            try:
                nvml.nvmlDeviceGetPowerUsage(handle)
            except Exception as exc:
                if self._is_error(exc, "NVML_ERROR_NOT_SUPPORTED", NOT_SUPPORTED):
                    raise SourceUnavailable(
                        f"NVML answers but cannot read the power of GPU {i} ({name}): "
                        "on a Jetson use --gpu-source jtop, else --gpu-source none"
                    ) from exc
                raise SourceUnavailable(
                    f"NVML cannot read the power of GPU {i} ({name}: {_describe_error(exc)}): "
                    "use --gpu-source none"
                ) from exc
        has_counter = True
        for handle in handles:
            try:
                nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            except Exception:  # noqa: BLE001 - NotSupported before Volta
                has_counter = False
                break
        try:
            for handle in handles:
                nvml.nvmlDeviceGetUtilizationRates(handle)
        except Exception:  # noqa: BLE001
            self._has_util = False
        self.indices, self.names, self._handles = indices, names, handles
        gpus = ", ".join(str(i) for i in indices)
        how = ("energy from the hardware counter" if has_counter
               else "energy integrated from power samples")
        return SourceInfo(
            kind="nvml",
            device_name=_device_name(names),
            gpu_count=len(indices),
            gpu_rail="NVML energy counter" if has_counter else "NVML power",
            gpu_scope=Scope.GPU_ONLY,
            interval_s=self.interval_s,
            has_energy_counter=has_counter,
            note=f"NVML, GPU{'s' if len(indices) > 1 else ''} {gpus} of {count}; {how}",
        )

    def _select(self, count: int) -> list[int]:
        if self._requested is None:
            return list(range(count))
        valid = ", ".join(str(i) for i in range(count))
        chosen: list[int] = []
        for i in self._requested:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < count:
                raise BadInput(f"--gpu-index {i}: no such GPU; valid indices: {valid}")
            if i not in chosen:
                chosen.append(i)
        if not chosen:
            raise BadInput(f"--gpu-index selects no GPU; valid indices: {valid}")
        return chosen

    # -- sampling -----------------------------------------------------------------------------
    def _handles_now(self) -> list[Any]:
        """The handles, fetched again after a failure (NVML re-initialised if it must be)."""
        if self._handles is not None:
            return self._handles
        nvml = self._nvml
        try:
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in self.indices]
        except Exception as exc:
            if not self._is_error(exc, "NVML_ERROR_UNINITIALIZED", UNINITIALIZED):
                raise
            nvml.nvmlInit()
            self._inits += 1
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in self.indices]
        self._handles = handles
        return handles

    def _sample(self) -> PowerSample:
        nvml = self._nvml
        handles = self._handles_now()
        t_sensor = time.monotonic()
        t_unix = time.time()
        power_w = 0.0
        for handle in handles:
            power_w += max(0, int(nvml.nvmlDeviceGetPowerUsage(handle))) / 1000.0
        counter_j: float | None = None
        if self.info.has_energy_counter:
            try:
                total_mj = 0
                for handle in handles:
                    total_mj += int(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
                counter_j = total_mj / 1000.0
            except Exception:  # noqa: BLE001 - this sample has no counter; power still counts
                logger.debug("NVML energy counter read failed", exc_info=True)
        load: float | None = None
        if self._has_util:
            loads = []
            for handle in handles:
                with contextlib.suppress(Exception):  # load is only shown
                    loads.append(float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
            load = sum(loads) / len(loads) if loads else None
        return PowerSample(
            t_s=t_sensor,
            t_sensor_s=t_sensor,
            t_unix_s=t_unix,
            gpu_w=power_w,
            gpu_load_pct=load,
            gpu_counter_j=counter_j,
        )

    def _run(self) -> None:
        connected = True
        for _ in self._ticks(self.interval_s):
            try:
                sample = self._sample()
            except Exception as exc:  # NVMLError mid-run: GPU lost, driver reloaded...
                self._handles = None
                if connected:
                    connected = False
                    reason = _describe_error(exc)
                    logger.warning("lost NVML: %s", reason)
                    self._status(False, f"lost NVML ({reason}); retrying every "
                                        f"{self.interval_s:g} s")
                else:
                    logger.debug("NVML still failing: %s", _describe_error(exc))
            else:
                if not connected:
                    connected = True
                    logger.info("NVML back")
                    self._status(True, "NVML back: GPU power readable again")
                self._emit(sample)


def _device_name(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    if len(set(names)) == 1:
        return f"{len(names)} x {names[0]}"
    return " + ".join(names)
