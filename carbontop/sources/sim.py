"""The ``sim`` source: a simulated Jetson (:mod:`carbontop.sim`) read through :class:`JtopSource`.

The demo and the tests exercise the real jtop logic (mW to W, rail choice, input rail vs sum,
repeated samples, lost and regained service, board state, power modes) without a board: the
simulated service stands in for jtop's, the source is the real one.
"""

from __future__ import annotations

from collections.abc import Callable

from carbontop.sim import DEFAULT_SIM_BOARD
from carbontop.sim.client import SimJtop
from carbontop.sim.load import SimLoad
from carbontop.sim.service import SimJtopService
from carbontop.sources.jtop import JtopSource


def make_sim_source(
    board: str = DEFAULT_SIM_BOARD,
    seed: int = 0,
    interval_s: float = 0.5,
    load: SimLoad | None = None,
    clock: Callable[[], float] | None = None,
    time_scale: float = 1.0,
    reconnect_delay_s: float | None = None,
    repeat_every: int = 0,
    power_mode: str | None = None,
) -> JtopSource:
    """A JtopSource (kind "sim") reading a simulated board through the real jtop logic.

    ``time_scale`` speeds the simulated clock up (tests); ``reconnect_delay_s`` is in real
    seconds (default: one simulated second). ``sim_service(source)`` gives the simulated service
    back, e.g. to call ``outage(seconds)``. The other arguments are :class:`SimJtopService`'s.
    """
    service = SimJtopService(board, seed, load, clock, time_scale, repeat_every, power_mode)
    delay_s = 1.0 / time_scale if reconnect_delay_s is None else reconnect_delay_s
    return JtopSource(interval_s, client_factory=SimJtop(service), kind="sim",
                      reconnect_delay_s=delay_s)


def sim_service(source: JtopSource) -> SimJtopService:
    """The simulated service behind a source made by :func:`make_sim_source`."""
    factory = source.client_factory
    if not isinstance(factory, SimJtop):
        raise TypeError("not a simulated source")
    return factory.service
