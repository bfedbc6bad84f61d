"""What the simulated board is doing: the workload's phase and CPU use, set by the session.

:class:`SimLoad` is what the session writes (from its own thread); :class:`LoadLevels` is how
the simulated service reads it: how hard the GPU and the CPU are driven at a simulated moment.
"""

from __future__ import annotations

import threading

from carbontop.model import Phase

WARMUP_RAMP_S = 8.0  # simulated seconds for the warm-up ramp to reach full load


class SimLoad:
    """What the simulated board is doing; thread-safe, updated by the session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._phase: Phase | None = None
        self._cpu_fraction = 0.0
        self._gpu_intensity = 1.0

    def set_phase(self, phase: Phase | None) -> None:
        """The workload's phase (None: no workload)."""
        with self._lock:
            self._phase = phase
            if phase is None:  # no workload: what the last one drove does not linger
                self._cpu_fraction = 0.0
                self._gpu_intensity = 1.0

    def set_cpu_fraction(self, f: float) -> None:
        """The workload's real CPU use, 0..1 of the whole machine."""
        with self._lock:
            self._cpu_fraction = min(1.0, max(0.0, float(f)))

    def set_gpu_intensity(self, x: float) -> None:
        """How hard the workload drives the GPU when measuring, 0..1 (default 1)."""
        with self._lock:
            self._gpu_intensity = min(1.0, max(0.0, float(x)))

    def snapshot(self) -> tuple[Phase | None, float, float]:
        """(phase, cpu fraction, gpu intensity), read together."""
        with self._lock:
            return self._phase, self._cpu_fraction, self._gpu_intensity


class LoadLevels:
    """The GPU and CPU levels (0..1 each) a :class:`SimLoad` drives at simulated times.

    Loading keeps the GPU at 12 %; warm-up ramps it from 35 % to 90 % over WARMUP_RAMP_S
    simulated seconds since the phase began; measuring holds it at 95 %; all scaled by the
    workload's GPU intensity. The CPU level is the workload's CPU use plus 5 % of the GPU level
    (the driver's share). Not thread-safe: its owner serialises the calls.
    """

    def __init__(self, load: SimLoad) -> None:
        self.load = load
        self._phase: Phase | None = None
        self._phase_t0 = 0.0

    def at(self, at_s: float) -> tuple[float, float]:
        """(GPU level, CPU level) at simulated time ``at_s``."""
        phase, cpu_fraction, intensity = self.load.snapshot()
        if phase != self._phase:
            self._phase, self._phase_t0 = phase, at_s
        if phase is Phase.LOADING:
            gpu = 0.12
        elif phase is Phase.WARMUP:
            ramp = min(1.0, max(0.0, (at_s - self._phase_t0) / WARMUP_RAMP_S))
            gpu = (0.35 + 0.55 * ramp) * intensity
        elif phase is Phase.MEASURING:
            gpu = 0.95 * intensity
        else:
            gpu = 0.0
        cpu = min(1.0, cpu_fraction + 0.05 * gpu)
        return gpu, cpu
