"""A Jetson's performance envelope at one moment, and whether it changed during a session.

Two energy figures compare honestly only when the board ran under the same envelope: the same
nvpmodel power mode, jetson_clocks in the same state, and no thermal or current throttling.
:class:`BoardState` holds what jtop reports of that envelope; :func:`throttled` says, from a
session's start and end states (and optionally a :class:`BoardWatch` kept during the session),
why the envelope changed, or None.

Pure: no jtop import. :func:`~carbontop.sources.jtop_state.read_board_state` fills these from
jtop; :class:`~carbontop.sources.base.BoardControl` is how a source offers them.

Units: MHz, degrees Celsius, Unix seconds. ``None`` always means "not reported", never zero.
"""

from __future__ import annotations

from dataclasses import dataclass

# Heuristic thresholds of :func:`throttled` (tunable per call).
THROTTLE_TEMP_C = 90.0
"""A sensor at or above this is flagged: a margin below the thermal throttle trip points of
Jetson modules (they start in the mid-90s C and above), since jtop reads sensors once per tick
and the hottest moment can fall between two reads."""

FREQ_DROP_RATIO = 0.85
"""A frequency at the end below 85 % of the start (same power mode) is flagged. Jetson clock
steps are a few percent apart, so a governor hop between neighbouring steps stays above it."""


@dataclass(frozen=True)
class BoardState:
    """What jtop reports of the board's performance envelope at ``t_unix_s``.

    ``cpu_freq_mhz`` is the highest current frequency among online cores, ``gpu_freq_mhz`` the
    current iGPU frequency (the highest, when jtop lists several GPUs), ``max_temp_c`` the
    hottest online sensor (jtop reports -256 for an offline one: skipped). The ``*_max_freq_mhz``
    fields are the caps the kernel enforces right now (cpufreq ``scaling_max_freq``, devfreq
    ``max_freq``): nvpmodel sets them, and thermal cooling devices lower them when throttling.
    """

    nvpmodel_name: str | None
    nvpmodel_id: int | None
    jetson_clocks: bool | None
    cpu_freq_mhz: float | None
    gpu_freq_mhz: float | None
    max_temp_c: float | None
    t_unix_s: float
    cpu_max_freq_mhz: float | None = None
    gpu_max_freq_mhz: float | None = None
    cpu_online: int | None = None  # cores online (nvpmodel switches cores off in low modes)

    @property
    def power_mode(self) -> str | None:
        """The nvpmodel name, else ``"id N"``, else None: the mode as a person reads it."""
        if self.nvpmodel_name is None:
            return None if self.nvpmodel_id is None else f"id {self.nvpmodel_id}"
        return self.nvpmodel_name


@dataclass(frozen=True)
class BoardWatch:
    """Extremes of the board states seen over a span (a session): fold states in with
    :meth:`seen`. Catches throttling that came and went between the start and the end."""

    states: int = 0
    hottest_c: float | None = None
    lowest_cpu_max_freq_mhz: float | None = None
    lowest_gpu_max_freq_mhz: float | None = None
    modes: tuple[str, ...] = ()  # power modes seen, in order of first appearance
    jetson_clocks: tuple[bool, ...] = ()  # jetson_clocks states seen, in order

    def seen(self, state: BoardState) -> BoardWatch:
        """This watch with ``state`` folded in."""
        mode = state.power_mode
        modes = self.modes if mode is None or mode in self.modes else (*self.modes, mode)
        clocks = self.jetson_clocks
        if state.jetson_clocks is not None and state.jetson_clocks not in clocks:
            clocks = (*clocks, state.jetson_clocks)
        return BoardWatch(
            states=self.states + 1,
            hottest_c=_max(self.hottest_c, state.max_temp_c),
            lowest_cpu_max_freq_mhz=_min(self.lowest_cpu_max_freq_mhz, state.cpu_max_freq_mhz),
            lowest_gpu_max_freq_mhz=_min(self.lowest_gpu_max_freq_mhz, state.gpu_max_freq_mhz),
            modes=modes,
            jetson_clocks=clocks,
        )


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _fmt(x: float) -> str:
    return f"{x:.0f}"


def _dropped(
    what: str, start: float | None, end: float | None, ratio: float, unit: str = "MHz"
) -> str | None:
    if start is None or end is None or start <= 0:
        return None
    if end < start * ratio:
        return f"{what} fell from {_fmt(start)} to {_fmt(end)} {unit}"
    return None


def throttled(
    start: BoardState,
    end: BoardState,
    watch: BoardWatch | None = None,
    *,
    loaded: bool = False,
    temp_limit_c: float = THROTTLE_TEMP_C,
    freq_ratio: float = FREQ_DROP_RATIO,
) -> str | None:
    """Why the board's envelope changed between ``start`` and ``end``, or None. The heuristic:

    1. the power mode or jetson_clocks differ between the states (or ``watch`` saw several):
       the session did not run under one envelope;
    2. the hottest sensor at start, at end, or seen by ``watch`` reached ``temp_limit_c``;
    3. a frequency cap (CPU ``scaling_max_freq``, GPU devfreq ``max_freq``) at the end, or the
       lowest ``watch`` saw, is below ``freq_ratio`` x the cap at the start: thermal cooling or
       an over-current limit lowered it;
    4. only with ``loaded=True`` (both states taken while the workload ran, e.g. when measuring
       starts and just before it ends): the current CPU or GPU frequency at the end is below
       ``freq_ratio`` x the start. Without load the governors park the clocks anywhere, so
       comparing an idle end with a busy start would cry wolf.

    Frequency rules apply only under the same power mode (rule 1 already flags a change).
    The reasons found are joined with "; ".
    """
    reasons: list[str] = []
    same_mode = start.power_mode == end.power_mode
    if not same_mode:
        reasons.append(f"power mode changed from {start.power_mode} to {end.power_mode}")
    elif watch is not None and len(watch.modes) > 1:
        reasons.append(f"power mode changed during the session ({' -> '.join(watch.modes)})")
    clocks_changed = (
        start.jetson_clocks is not None
        and end.jetson_clocks is not None
        and start.jetson_clocks != end.jetson_clocks
    ) or (watch is not None and len(watch.jetson_clocks) > 1)
    if clocks_changed:
        reasons.append("jetson_clocks changed during the session")
    hottest = _max(_max(start.max_temp_c, end.max_temp_c), watch.hottest_c if watch else None)
    if hottest is not None and hottest >= temp_limit_c:
        reasons.append(f"a sensor reached {hottest:.1f} C (limit {temp_limit_c:g} C)")
    if same_mode and not (watch is not None and len(watch.modes) > 1):
        watch_cpu = watch.lowest_cpu_max_freq_mhz if watch else None
        watch_gpu = watch.lowest_gpu_max_freq_mhz if watch else None
        lowest_cpu_cap = _min(end.cpu_max_freq_mhz, watch_cpu)
        lowest_gpu_cap = _min(end.gpu_max_freq_mhz, watch_gpu)
        for reason in (
            _dropped("CPU frequency cap", start.cpu_max_freq_mhz, lowest_cpu_cap, freq_ratio),
            _dropped("GPU frequency cap", start.gpu_max_freq_mhz, lowest_gpu_cap, freq_ratio),
        ):
            if reason:
                reasons.append(reason)
        if loaded:
            for reason in (
                _dropped("CPU frequency", start.cpu_freq_mhz, end.cpu_freq_mhz, freq_ratio),
                _dropped("GPU frequency", start.gpu_freq_mhz, end.gpu_freq_mhz, freq_ratio),
            ):
                if reason:
                    reasons.append(reason)
    return "; ".join(reasons) or None


def _round(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)


CsvValue = str | int | float | bool | None

BOARD_STATE_COLUMNS: tuple[str, ...] = (
    "power_mode",
    "power_mode_id",
    "jetson_clocks",
    "cpu_freq_mhz_start",
    "cpu_freq_mhz_end",
    "gpu_freq_mhz_start",
    "gpu_freq_mhz_end",
    "max_temp_c_start",
    "max_temp_c_end",
    "throttled",
)


def board_state_columns(
    start: BoardState | None,
    end: BoardState | None,
    watch: BoardWatch | None = None,
    *,
    loaded: bool = False,
) -> dict[str, CsvValue]:
    """The session's CSV fields (:data:`BOARD_STATE_COLUMNS`, in that order).

    ``power_mode`` is the start's mode, or ``"A -> B"`` when it changed (``power_mode_id`` is
    then None); ``jetson_clocks`` likewise is None when it changed or is unknown. ``throttled``
    is :func:`throttled`'s reason, ``""`` when none, None when a state is missing (unknown).
    Every field is None where the source reports no board state (NVML, sim-less tests...).
    """
    if start is None and end is None:
        return dict.fromkeys(BOARD_STATE_COLUMNS)
    first = start or end
    last = end or start
    assert first is not None and last is not None
    if first.power_mode == last.power_mode:
        mode, mode_id = first.power_mode, first.nvpmodel_id
    else:
        mode, mode_id = f"{first.power_mode} -> {last.power_mode}", None
    clocks = first.jetson_clocks if first.jetson_clocks == last.jetson_clocks else None
    reason: str | None
    if start is None or end is None:
        reason = None
    else:
        reason = throttled(start, end, watch, loaded=loaded) or ""
    return {
        "power_mode": mode,
        "power_mode_id": mode_id,
        "jetson_clocks": clocks,
        "cpu_freq_mhz_start": _round(start.cpu_freq_mhz) if start else None,
        "cpu_freq_mhz_end": _round(end.cpu_freq_mhz) if end else None,
        "gpu_freq_mhz_start": _round(start.gpu_freq_mhz) if start else None,
        "gpu_freq_mhz_end": _round(end.gpu_freq_mhz) if end else None,
        "max_temp_c_start": _round(start.max_temp_c) if start else None,
        "max_temp_c_end": _round(end.max_temp_c) if end else None,
        "throttled": reason,
    }
