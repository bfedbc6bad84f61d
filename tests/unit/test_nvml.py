"""NvmlSource against a fake pynvml: units, GPU selection, NotSupported, lost and regained."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import pytest

from carbontop.errors import BadInput
from carbontop.model import PowerSample, Scope, SourceStatus
from carbontop.sources.base import SourceEvent, SourceUnavailable
from carbontop.sources.nvml import NO_NVML, NvmlSource
from tests import fake_nvml
from tests.fake_nvml import FakeGpu, FakeNvml

INTERVAL = 0.02


class Events:
    """Collects what a source delivers; waits for a condition."""

    def __init__(self) -> None:
        self.items: list[SourceEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: SourceEvent) -> None:
        with self._cond:
            self.items.append(event)
            self._cond.notify_all()

    def samples(self) -> list[PowerSample]:
        with self._cond:
            return [e for e in self.items if isinstance(e, PowerSample)]

    def statuses(self) -> list[SourceStatus]:
        with self._cond:
            return [e for e in self.items if isinstance(e, SourceStatus)]

    def wait(self, predicate: Callable[[], bool], timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                assert left > 0, f"timed out; got {self.items[-5:]}"
                self._cond.wait(left)

    def wait_samples(self, n: int) -> list[PowerSample]:
        self.wait(lambda: sum(isinstance(e, PowerSample) for e in self.items) >= n)
        return self.samples()


def running(fake: FakeNvml, gpu_indices: list[int] | None = None) -> tuple[NvmlSource, Events]:
    source = NvmlSource(gpu_indices=gpu_indices, interval_s=INTERVAL, nvml=fake)
    source.open()
    events = Events()
    source.start(events)
    return source, events


def test_fake_is_shaped_like_the_real_pynvml() -> None:
    pynvml = pytest.importorskip("pynvml")
    for name in ("nvmlInit", "nvmlShutdown", "nvmlDeviceGetCount", "nvmlDeviceGetHandleByIndex",
                 "nvmlDeviceGetName", "nvmlDeviceGetPowerUsage",
                 "nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetUtilizationRates",
                 "NVMLError", "NVMLError_NotSupported", "NVMLError_GpuIsLost"):
        assert hasattr(pynvml, name), name
        assert hasattr(FakeNvml(), name), name
    for name in dir(fake_nvml):
        if name.startswith("NVML_ERROR_") or name == "NVML_SUCCESS":
            assert getattr(pynvml, name) == getattr(fake_nvml, name), name
    real = pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
    fake = fake_nvml.NVMLError(fake_nvml.NVML_ERROR_NOT_SUPPORTED)
    assert type(real).__name__ == type(fake).__name__ == "NVMLError_NotSupported"
    assert real.value == fake.value and str(real) == str(fake) == "Not Supported"


def test_watts_not_milliwatts_and_counter_in_joules() -> None:
    fake = FakeNvml([FakeGpu(name="NVIDIA A100-SXM4-40GB", power_mw=123_456,
                             energy_mj=5_000_000, util=40)])
    source, events = running(fake)
    try:
        info = source.info
        assert info.kind == "nvml" and info.gpu_scope is Scope.GPU_ONLY
        assert info.device_name == "NVIDIA A100-SXM4-40GB" and info.gpu_count == 1
        assert info.has_energy_counter and info.gpu_rail == "NVML energy counter"
        assert info.measures_gpu
        first = events.wait_samples(1)[0]
        assert first.gpu_w == pytest.approx(123.456)  # 123456 mW, not 123456 W
        assert first.gpu_counter_j == pytest.approx(5000.0)  # 5e6 mJ
        assert first.gpu_load_pct == pytest.approx(40.0)
        assert first.board_w is None and first.cpu_rail_w is None
        fake.advance(2.0)  # 2 s at 123.456 W
        later = events.wait_samples(len(events.samples()) + 1)[-1]
        assert later.gpu_counter_j == pytest.approx(5000.0 + 246.912)
    finally:
        source.close()


def test_samples_use_the_monotonic_clock_and_the_interval() -> None:
    source, events = running(FakeNvml())
    try:
        samples = events.wait_samples(5)
    finally:
        source.close()
    ts = [s.t_sensor_s for s in samples]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    assert abs(samples[0].t_sensor_s - time.monotonic()) < 5
    assert abs(samples[0].t_unix_s - time.time()) < 5
    steps = [b - a for a, b in itertools.pairwise(ts)]
    assert min(steps) > INTERVAL * 0.5


def test_every_gpu_is_summed() -> None:
    fake = FakeNvml([FakeGpu(power_mw=100_000, energy_mj=1_000),
                     FakeGpu(power_mw=200_000, energy_mj=2_000),
                     FakeGpu(power_mw=50_000, energy_mj=3_000)])
    source, events = running(fake)
    try:
        sample = events.wait_samples(1)[0]
    finally:
        source.close()
    assert source.info.gpu_count == 3
    assert source.info.device_name == "3 x NVIDIA GeForce RTX 4090"
    assert sample.gpu_w == pytest.approx(350.0)
    assert sample.gpu_counter_j == pytest.approx(6.0)
    assert sample.gpu_load_pct == pytest.approx(50.0)


def test_gpu_index_selects_gpus() -> None:
    fake = FakeNvml([FakeGpu(name="A", power_mw=100_000), FakeGpu(name="B", power_mw=200_000),
                     FakeGpu(name="C", power_mw=50_000, util=10)])
    source, events = running(fake, gpu_indices=[2, 0, 2])
    try:
        sample = events.wait_samples(1)[0]
    finally:
        source.close()
    assert source.indices == [2, 0]
    assert source.info.gpu_count == 2 and source.info.device_name == "C + A"
    assert sample.gpu_w == pytest.approx(150.0)
    assert sample.gpu_load_pct == pytest.approx(30.0)


def test_bad_gpu_index_names_the_valid_ones() -> None:
    fake = FakeNvml([FakeGpu(), FakeGpu()])
    with pytest.raises(BadInput, match=r"--gpu-index 5: .*valid indices: 0, 1"):
        NvmlSource(gpu_indices=[5], nvml=fake).open()
    assert fake.refcount == 0  # NVML shut down again


def test_counter_missing_on_one_gpu_means_power_integration() -> None:
    fake = FakeNvml([FakeGpu(energy_mj=10_000), FakeGpu(energy_mj=None)])  # e.g. a Pascal
    source, events = running(fake)
    try:
        sample = events.wait_samples(1)[0]
    finally:
        source.close()
    assert not source.info.has_energy_counter and source.info.gpu_rail == "NVML power"
    assert sample.gpu_counter_j is None and sample.gpu_w == pytest.approx(200.0)


def test_no_utilisation_gives_no_load() -> None:
    source, events = running(FakeNvml([FakeGpu(util=None)]))
    try:
        sample = events.wait_samples(1)[0]
    finally:
        source.close()
    assert sample.gpu_load_pct is None and sample.gpu_w == pytest.approx(100.0)


def test_power_not_supported_is_unavailable() -> None:
    # JetPack 6/7: NVML initialises and names the GPU, but every telemetry call is NotSupported.
    fake = FakeNvml([FakeGpu(name="Orin (nvgpu)", power_mw=None, energy_mj=None, util=None)])
    with pytest.raises(SourceUnavailable, match="cannot read the power .*--gpu-source jtop"):
        NvmlSource(nvml=fake).open()
    assert fake.refcount == 0


@pytest.mark.parametrize("code", [fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED,
                                  fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND])
def test_no_driver_is_one_line(code: int) -> None:
    fake = FakeNvml(init_error=code)
    with pytest.raises(SourceUnavailable) as info:
        NvmlSource(nvml=fake).open()
    assert str(info.value) == NO_NVML


def test_no_gpu_is_unavailable() -> None:
    with pytest.raises(SourceUnavailable, match="no NVIDIA GPU"):
        NvmlSource(nvml=FakeNvml([])).open()


def test_errors_mid_run_are_lost_then_regained() -> None:
    fake = FakeNvml([FakeGpu(power_mw=80_000)])
    source, events = running(fake)
    try:
        events.wait_samples(2)
        fake.fail_with(fake_nvml.NVML_ERROR_GPU_IS_LOST)
        events.wait(lambda: len(events.statuses()) >= 1)
        lost = events.statuses()[0]
        assert not lost.connected and "GPU is lost" in lost.message and "retrying" in lost.message
        n = len(events.samples())
        time.sleep(INTERVAL * 6)  # still failing: no sample and no second "lost"
        assert len(events.samples()) == n and len(events.statuses()) == 1
        fake.recover()
        events.wait(lambda: len(events.statuses()) >= 2)
        back = events.statuses()[1]
        assert back.connected and "back" in back.message
        sample = events.wait_samples(n + 1)[-1]
        assert sample.gpu_w == pytest.approx(80.0)
        # order: the regained status comes before the next sample
        items = list(events.items)
        assert items.index(back) < items.index(sample)
    finally:
        source.close()


def test_driver_reload_mid_run_reinitialises() -> None:
    fake = FakeNvml([FakeGpu(power_mw=60_000)])
    source, events = running(fake)
    try:
        events.wait_samples(1)
        fake.unload_driver()  # calls raise Uninitialized, old handles are invalid
        events.wait(lambda: any(not s.connected for s in events.statuses()))
        events.wait(lambda: any(s.connected for s in events.statuses()))
        n = len(events.samples())
        assert events.wait_samples(n + 1)[-1].gpu_w == pytest.approx(60.0)
    finally:
        source.close()
    assert fake.refcount == 0


def test_close_stops_events_and_shuts_nvml_down() -> None:
    fake = FakeNvml()
    source, events = running(fake)
    events.wait_samples(2)
    source.close()
    n = len(events.items)
    reads = fake.power_reads
    time.sleep(INTERVAL * 5)
    assert len(events.items) == n and fake.power_reads == reads
    assert fake.refcount == 0


def test_a_raising_sink_does_not_stop_the_source() -> None:
    fake = FakeNvml()
    calls: list[SourceEvent] = []

    def sink(event: SourceEvent) -> None:
        calls.append(event)
        raise RuntimeError("broken sink")

    source = NvmlSource(interval_s=INTERVAL, nvml=fake)
    source.start(sink)  # opens on its own
    deadline = time.monotonic() + 3
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(INTERVAL)
    source.close()
    assert len(calls) >= 3


def test_real_pynvml_without_a_driver_says_so() -> None:
    pytest.importorskip("pynvml")
    source = NvmlSource()
    try:
        source.open()
    except SourceUnavailable as exc:
        assert "\n" not in str(exc) and "--gpu-source" in str(exc)
    else:  # a machine with an NVIDIA driver
        source.close()
        pytest.skip("an NVIDIA driver is present")


# -- NoneSource (no GPU) lives here too: the other source without a board -----------------------

def test_none_source_says_no_gpu_and_sends_nothing() -> None:
    from carbontop.sources.none import NoneSource

    source = NoneSource(interval_s=INTERVAL)
    info = source.open()
    assert info.kind == "none" and info.device_name == "no GPU measured"
    assert info.gpu_count == 0 and not info.measures_gpu and "CPU and RAM only" in info.note
    events = Events()
    source.start(events)
    time.sleep(INTERVAL * 5)
    source.close()
    assert events.items == []


def test_none_source_heartbeat_is_empty_samples() -> None:
    from carbontop.sources.none import NoneSource

    source = NoneSource(interval_s=INTERVAL, heartbeat=True)
    source.open()
    events = Events()
    source.start(events)
    samples = events.wait_samples(3)
    source.close()
    n = len(events.items)
    time.sleep(INTERVAL * 4)
    assert len(events.items) == n  # nothing after close()
    for s in samples:
        assert (s.gpu_w, s.board_w, s.cpu_rail_w, s.gpu_counter_j, s.gpu_load_pct) == (
            None, None, None, None, None)
    ts = [s.t_sensor_s for s in samples]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
