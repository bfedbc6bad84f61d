"""The jtop service process of tests/jtop_harness.py: ``jtop_serve.py PIPE HW VER OPTIONS``.

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
import time
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


def _slow_process_service(delay_s: float) -> type:
    """jtop's ProcessService whose scan takes ``delay_s`` longer (a busy board's slow decode)."""
    from jtop.core.processes import ProcessService

    class SlowProcessService(ProcessService):  # type: ignore[misc]
        def get_status(self) -> Any:
            time.sleep(delay_s)
            return super().get_status()

    return SlowProcessService


def _stamping_server(stamp_log: str) -> type:
    """jtop's JtopServer that appends each tick's clocks to ``stamp_log`` (one JSON line)."""
    import jtop.service

    marks: dict[str, float] = {}

    class StampedPowerService(jtop.service.PowerService):  # type: ignore[misc,name-defined]
        def get_status(self) -> Any:
            marks["power_start"] = time.monotonic()
            marks["boottime_power"] = time.clock_gettime(time.CLOCK_BOOTTIME)
            status = super().get_status()
            marks["power_end"] = time.monotonic()
            return status

    jtop.service.PowerService = StampedPowerService

    class StampingServer(jtop.service.JtopServer):  # type: ignore[misc,name-defined]
        def jtop_decode(self) -> Any:
            marks.clear()
            marks["decode_start"] = time.monotonic()
            data = super().jtop_decode()
            marks["uptime"] = float(data["uptime"])
            return data

        def jtop_stats(self) -> None:
            super().jtop_stats()  # decode, publish to the clients, wake them
            marks["published"] = time.monotonic()
            with open(stamp_log, "a") as out:
                out.write(json.dumps(marks) + "\n")

    return StampingServer


def _serve(pipe: str, hardware_json: str, version: str, options_json: str) -> None:
    """The subprocess: the stock service loop with hardware identification replaced."""
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(name)s - %(message)s")
    import jtop.service

    hardware = json.loads(hardware_json)
    options = json.loads(options_json)
    jtop.service.JTOP_PIPE = pipe
    jtop.service.get_hardware = lambda: dict(hardware)  # type: ignore[attr-defined]
    jtop.service.TemperatureService = _fake_sys_temperature_service()  # type: ignore[misc]
    if version:
        jtop.service.get_var = lambda _regex: version  # type: ignore[attr-defined]
    if options.get("decode_delay_s"):
        jtop.service.ProcessService = _slow_process_service(  # type: ignore[misc]
            float(options["decode_delay_s"])
        )
    server_class: Any = jtop.service.JtopServer
    if options.get("stamp_log"):
        server_class = _stamping_server(options["stamp_log"])

    def exit_signal(signum: int, frame: object) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, exit_signal)
    logging.getLogger(__name__).info("serving under Python %s", sys.version.split()[0])
    server = server_class(force=True)
    server.loop_for_ever()


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit("usage: jtop_serve.py PIPE HARDWARE_JSON VERSION OPTIONS_JSON")
    _serve(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4])
