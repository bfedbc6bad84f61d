"""Building a session engine from settings: the one factory both faces use.

``carbontop run`` (carbontop/cli.py) and the dashboard (carbontop/tui/app.py) build their engine
here: the carbon intensity, the power source ``auto`` or the user chose, CodeCarbon's tracker and
the Prometheus exporter. Neither face imports the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from carbontop.config import Settings
    from carbontop.engine import Engine
    from carbontop.engine_api import SnapshotSource
    from carbontop.exporter import Exporter


def build_engine(settings: Settings, cpu_ram: bool = True) -> Engine:
    """Everything a session needs: intensity, source, CodeCarbon and the engine (not opened)."""
    from carbontop.carbon import resolve_intensity
    from carbontop.results.store import check_output_dir
    from carbontop.sources.detect import open_source

    intensity = resolve_intensity(settings.country, settings.region, settings.carbon_intensity)
    check_output_dir(settings.output_dir)
    opened = open_source(settings)  # first: on a board it mostly waits for samples
    try:
        from carbontop.engine import Engine

        tracker = None
        if cpu_ram:
            from carbontop.cpu_ram import CpuRamTracker

            tracker = CpuRamTracker(intensity, exclude_gpu=True, external_pacing=True)
        return Engine(settings, opened.source, intensity, cpu_ram=tracker,
                      sim_load=opened.sim_load)
    except BaseException:
        opened.source.close()  # the engine would have closed it
        raise


def start_metrics(engine: SnapshotSource, settings: Settings) -> Exporter | None:
    """The Prometheus exporter, when --prometheus-port asks for one."""
    if settings.prometheus_port is None:
        return None
    from carbontop.exporter import start_exporter

    return start_exporter(engine, settings.prometheus_host, settings.prometheus_port)
