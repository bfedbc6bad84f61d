"""A simulated Jetson, shaped like jtop's service and client, for the demo and the tests.

- :mod:`~carbontop.sim.boards`: the catalogue (modules, rails, nvpmodel modes, sensors);
- :mod:`~carbontop.sim.load`: what the board is doing (the workload's phase and CPU use);
- :mod:`~carbontop.sim.physics`: rail watts, clocks and the die temperature;
- :mod:`~carbontop.sim.service`: the jtop service (clock, ticks, outages, mode switches);
- :mod:`~carbontop.sim.client`: jtop's client over it.

``--gpu-source sim`` reads it through the real JtopSource (:mod:`carbontop.sources.sim`), so the
demo and the tests exercise the real jtop logic without a board. No jtop import anywhere here.
"""

from __future__ import annotations

DEFAULT_SIM_BOARD = "agx-orin"  # what --sim-board defaults to (a key of boards.toml)
