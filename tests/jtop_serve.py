"""The jtop service process of tests/jtop_harness.py: ``python tests/jtop_serve.py PIPE HW VER``.

Kept apart from the harness because it runs under the service's Python, which on JetPack 5 is
the system's 3.8 while carbontop's client runs in 3.10+: this file uses nothing newer than 3.8
(the harness itself is test code for carbontop's Python). It runs jetson-stats' stock service
loop with hardware identification replaced and thermal zones read under ``/fake_sys``.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

THERMAL = Path("/fake_sys") / "devices" / "virtual" / "thermal"


def _fake_sys_temperature_service() -> type:
    """jtop's TemperatureService, discovering thermal zones under /fake_sys instead of /sys."""
    from jtop.core import temperature

    class FakeSysTemperatureService(temperature.TemperatureService):  # type: ignore[misc]
        def __init__(self) -> None:
            found: dict[str, Any] = {}
            if THERMAL.is_dir():
                found = temperature.get_virtual_thermal_temperature(str(THERMAL))
            self._temperature = dict(sorted(found.items(), key=lambda item: item[0].lower()))

    return FakeSysTemperatureService


def serve(pipe: str, hardware_json: str, version: str) -> None:
    """The stock service loop with hardware identification replaced."""
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(name)s - %(message)s")
    import jtop.service

    hardware = json.loads(hardware_json)
    jtop.service.JTOP_PIPE = pipe
    jtop.service.get_hardware = lambda: dict(hardware)  # type: ignore[attr-defined]
    jtop.service.TemperatureService = _fake_sys_temperature_service()  # type: ignore[misc]
    if version:
        jtop.service.get_var = lambda _regex: version  # type: ignore[attr-defined]

    def exit_signal(signum: int, frame: object) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, exit_signal)
    logging.getLogger(__name__).info("serving under Python %s", sys.version.split()[0])
    server = jtop.service.JtopServer(force=True)
    server.loop_for_ever()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit("usage: jtop_serve.py PIPE HARDWARE_JSON VERSION")
    serve(sys.argv[1], sys.argv[2], sys.argv[3])
