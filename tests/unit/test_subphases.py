"""Sub-phase energies from scripted power traces whose energy per phase is worked out by hand.

The scripted request: prefill on [0, 1] s (batch 4: 4 first tokens), decode on [1, 3] s (15 more
tokens per sequence: 60), then 1 s between requests ("other") up to the window's end at 4 s.
"""

from __future__ import annotations

import pytest

from carbontop.meter import Traces, WindowMeter
from carbontop.model import PowerSample, Scope, SourceInfo
from carbontop.subphases import SubphaseMeter
from carbontop.summary import Efficiency

GPU_ONLY = dict(kind="sim", device_name="scripted", gpu_count=1, gpu_rail="GPU",
                gpu_scope=Scope.GPU_ONLY)
PREFILL_W, DECODE_W, OTHER_W = 10.0, 20.0, 5.0


def power_at(t: float) -> float:
    """Constant in each phase; the last 0.01 s of prefill and of decode ramp linearly to the
    next phase's power (so a trapezoid over samples every 0.01 s integrates it exactly)."""
    if t <= 0.99:
        return PREFILL_W
    if t <= 1.0:
        return PREFILL_W + (DECODE_W - PREFILL_W) * (t - 0.99) / 0.01
    if t <= 2.99:
        return DECODE_W
    if t <= 3.0:
        return DECODE_W + (OTHER_W - DECODE_W) * (t - 2.99) / 0.01
    return OTHER_W


# By hand: prefill = 10 W x 0.99 s + (10 + 20) / 2 W x 0.01 s = 9.9 + 0.15 = 10.05 J;
# decode = 20 x 1.99 + (20 + 5) / 2 x 0.01 = 39.8 + 0.125 = 39.925 J; other = 5 x 1 = 5 J.
PREFILL_J, DECODE_J, OTHER_J = 10.05, 39.925, 5.0


def run_request(traces: Traces, meter: SubphaseMeter, window: WindowMeter,
                feed: list[tuple[float, PowerSample]]) -> None:
    """Feeds the samples in order, placing the sub-phase edges when their time has come."""
    edges = [(0.0, "prefill", {}), (1.0, "decode", {"prefill": 4.0}),
             (3.0, None, {"prefill": 4.0, "decode": 60.0})]
    for t, sample in feed:
        while edges and edges[0][0] <= t:
            at, name, units = edges.pop(0)
            meter.edge(name, at, units)
        traces.add_sample(sample)
        window.settle()
        meter.settle(t)
    window.close(4.0, 4.0)
    meter.close(4.0)
    window.finish()
    meter.finish()


def dense_feed() -> list[tuple[float, PowerSample]]:
    times = [round(i * 0.01, 2) for i in range(0, 401)]
    return [(t, PowerSample(t_s=t, t_unix_s=t, gpu_w=power_at(t))) for t in times]


def test_dense_samples_give_each_phase_its_exact_joules_per_token() -> None:
    traces = Traces(SourceInfo(**GPU_ONLY, interval_s=0.01))  # type: ignore[arg-type]
    window = WindowMeter(traces, 0.0, 0.0)
    meter = SubphaseMeter(traces, 0.0)
    meter.unit = "token"
    run_request(traces, meter, window, dense_feed())
    totals = window.totals(4.0)
    report = meter.report(totals, final=True)
    assert report is not None
    prefill, decode, other = report.get("prefill"), report.get("decode"), report.other
    assert prefill is not None and decode is not None and other is not None
    assert prefill.energy_j == pytest.approx(PREFILL_J, rel=1e-9)
    assert decode.energy_j == pytest.approx(DECODE_J, rel=1e-9)
    assert other.energy_j == pytest.approx(OTHER_J, rel=1e-9)
    assert prefill.energy_per_unit_j == pytest.approx(10.05 / 4, rel=1e-9)
    assert decode.energy_per_unit_j == pytest.approx(39.925 / 60, rel=1e-9)
    assert prefill.gpu_energy_per_unit_j == pytest.approx(10.05 / 4, rel=1e-9)  # GPU is the total
    # every joule of the window once: sub-phases + other = window
    assert totals.total_kwh is not None
    assert prefill.energy_j + decode.energy_j + other.energy_j == pytest.approx(
        totals.total_kwh * 3.6e6, rel=1e-12)
    assert prefill.method == "samples (100 per interval)" and prefill.samples == 100
    assert decode.samples == 200 and decode.coverage == pytest.approx(1.0)
    assert (prefill.units_per_s, decode.units_per_s) == (pytest.approx(4.0), pytest.approx(30.0))
    assert other.duration_s == pytest.approx(1.0)


def test_a_counter_read_at_the_edges_gives_the_exact_split() -> None:
    """NVML's energy counter read only at the four edges (0, 1, 3, 4 s): 10, 40 and 5 J."""
    info = SourceInfo(kind="nvml", device_name="GPU", gpu_count=1, gpu_scope=Scope.GPU_ONLY,
                      interval_s=1.0, has_energy_counter=True)
    traces = Traces(info)
    window = WindowMeter(traces, 0.0, 0.0)
    meter = SubphaseMeter(traces, 0.0)
    counter = {0.0: 1000.0, 1.0: 1010.0, 3.0: 1050.0, 4.0: 1055.0}
    feed = [(t, PowerSample(t_s=t, t_unix_s=t, gpu_w=5.0, gpu_counter_j=j))
            for t, j in counter.items()]
    run_request(traces, meter, window, feed)
    report = meter.report(window.totals(4.0), final=True)
    assert report is not None
    prefill, decode, other = report.get("prefill"), report.get("decode"), report.other
    assert prefill is not None and decode is not None and other is not None
    assert prefill.method == decode.method == "energy counter at the edges"
    assert prefill.samples == 1  # one read per interval: the counter, not the samples, resolves
    assert prefill.energy_per_unit_j == pytest.approx(10.0 / 4)
    assert decode.energy_per_unit_j == pytest.approx(40.0 / 60)
    assert other.energy_j == pytest.approx(5.0)


def test_sparse_samples_leave_the_split_empty_and_say_what_would_resolve_it() -> None:
    """Samples every 0.5 s: 2 per prefill interval, fewer than 10: no per-phase figure."""
    traces = Traces(SourceInfo(**GPU_ONLY, interval_s=0.5))  # type: ignore[arg-type]
    window = WindowMeter(traces, 0.0, 0.0)
    meter = SubphaseMeter(traces, 0.0)
    feed = [(t, PowerSample(t_s=t, t_unix_s=t, gpu_w=power_at(t)))
            for t in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)]
    run_request(traces, meter, window, feed)
    report = meter.report(window.totals(4.0), final=True)
    assert report is not None
    prefill, other = report.get("prefill"), report.other
    assert prefill is not None and other is not None
    assert prefill.energy_j is None and prefill.energy_per_unit_j is None
    assert prefill.gpu_energy_j is None and other.energy_j is None
    assert prefill.method == "not resolved" and prefill.samples == 2
    assert prefill.units == 4.0 and prefill.units_per_s == pytest.approx(4.0)
    # 1 s intervals / 10 samples: a sampling interval of 0.1 s would resolve them
    assert "sample every 0.1 s or faster" in report.note
    assert "mode=prefill" in report.note


def test_whole_window_mode_gives_joules_per_prompt_token() -> None:
    """mode=prefill: the window holds prefills only, 0.5 s samples suffice: 12 W x 4 s / 2048."""
    traces = Traces(SourceInfo(**GPU_ONLY, interval_s=0.5))  # type: ignore[arg-type]
    window = WindowMeter(traces, 0.0, 0.0)
    for i in range(9):
        traces.add_sample(PowerSample(t_s=i * 0.5, t_unix_s=i * 0.5, gpu_w=12.0))
    window.close(4.0, 4.0)
    window.finish()
    eff = Efficiency.compute(2048.0, "prompt token", None, window.totals(4.0),
                             sample_period_s=0.5)
    assert eff.energy_per_unit_j == pytest.approx(48.0 / 2048)


def test_an_interval_open_at_the_windows_end_goes_to_other_uncounted() -> None:
    traces = Traces(SourceInfo(**GPU_ONLY, interval_s=0.01))  # type: ignore[arg-type]
    window = WindowMeter(traces, 0.0, 0.0)
    meter = SubphaseMeter(traces, 0.0)
    for t, sample in dense_feed():
        if t == 0.0:
            meter.edge("prefill", 0.0)
        if t == 1.0:
            meter.edge("decode", 1.0, {"prefill": 4.0})
        if t == 2.0:
            meter.set_units({"prefill": 4.0, "decode": 28.0})  # mid-request when the window ends
        traces.add_sample(sample)
        meter.settle(t)
    window.close(4.0, 4.0)
    meter.close(4.0)
    window.finish()
    meter.finish()
    report = meter.report(window.totals(4.0), final=True)
    assert report is not None
    decode, other = report.get("decode"), report.other
    assert decode is not None and other is not None
    assert decode.intervals == 0 and decode.units is None  # its 28 tokens are not counted
    assert report.get("prefill").units == 4.0  # type: ignore[union-attr]
    assert other.energy_j == pytest.approx(DECODE_J + OTHER_J, rel=1e-9)


def test_millions_of_intervals_keep_memory_flat() -> None:
    """Intervals are folded as soon as a reading past their end arrives."""
    traces = Traces(SourceInfo(**GPU_ONLY, interval_s=0.01))  # type: ignore[arg-type]
    meter = SubphaseMeter(traces, 0.0)
    longest = 0
    for i in range(20000):
        t = i * 0.01
        meter.edge("decode" if i % 2 else "prefill", t - 0.005 if i else 0.0)
        traces.add_sample(PowerSample(t_s=t, t_unix_s=t, gpu_w=1.0))
        meter.settle(t)
        longest = max(longest, len(meter._pending))
    assert longest <= 2
