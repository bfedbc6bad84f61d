"""Connecting to the jtop service (jetson-stats): a started client at a pace the service keeps,
or one line saying what is wrong and how to fix it.

``jtop`` is imported lazily (jtop 7 forces the 'fork' start method at import). Every client is
started from a fresh thread: multiprocessing caches one connection per thread, so a thread that
talked to a service that has since restarted would reuse a dead connection. The service's first
client fixes its interval; a client asking for less gets one sample and then ``ok() == False``,
so :class:`JtopConnector` reconnects asking what the service delivers.

A service too slow for the asked interval (its first decode outlasts jtop's client wait of 3
intervals: "Error connection") is measured at a pace it keeps
(:meth:`JtopConnector._connect_at_served_pace`).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import itertools
import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from carbontop.sources.base import SourceUnavailable
from carbontop.sources.jtop_state import uptime_s

logger = logging.getLogger(__name__)

ClientFactory = Callable[[float], Any]

CONNECT_TIMEOUT_S = 30.0  # jtop's start() waits at most 3 x interval per step; this is a backstop
INTERVAL_TOLERANCE = 1.05  # a service this much slower than asked is adopted (see connect)
DEFAULT_SOCKET = "/run/jtop.sock"
# A service too slow for the asked interval (see _connect_at_served_pace):
SERVICE_IDLE_DROP_S = 3.0  # jtop's service stops its timer 3 s (TIMEOUT_GAIN) after the last
#                            message of its last client; the next first client sets the interval
PACE_PROBE_MIN_S = 1.0  # the probe client's interval: jtop waits 3 x this for each sample
PACE_PROBE_STEPS = 3  # sample steps timed to learn the pace the service keeps
PACE_PROBE_TIMEOUT_S = 15.0
PACE_MARGIN = 1.25  # ask this much more than the measured decode, so the service keeps it
PACE_ROUND_S = 0.05
_SERVICE_VERSION_RE = re.compile(r"service:\s*\[([^\]]*)\]")


def default_client_factory(interval: float) -> Any:
    """The real jetson-stats client: ``jtop(interval=interval)`` (imported here, lazily)."""
    try:
        from jtop import jtop
    except ImportError as exc:
        raise SourceUnavailable(
            "jetson-stats is not installed: pip install jetson-stats (its version must match the "
            "board's jtop service)"
        ) from exc
    return jtop(interval=interval)


def jetson_stats_version() -> str | None:
    """The installed jetson-stats client version (``jtop.__version__``), or None.

    Read from the package metadata: importing ``jtop`` just for this would force the 'fork'
    start method on the whole process.
    """
    try:
        return importlib.metadata.version("jetson-stats")
    except importlib.metadata.PackageNotFoundError:
        return None


class ServiceTooSlow(SourceUnavailable):
    """jtop's client got no first sample within 3 x the interval it asked ("Error connection"):
    the service's decode takes longer than that."""


def _major_minor(version: str) -> str:
    return ".".join(version.strip().split(".")[:2])


def jtop_socket_path() -> str:
    """Where the jtop client looks for the service's socket (``jtop.service.JTOP_PIPE``, read
    at call time; ``/run/jtop.sock`` unless a test pointed it elsewhere)."""
    service = sys.modules.get("jtop.service")
    return str(getattr(service, "JTOP_PIPE", DEFAULT_SOCKET))


def socket_is_directory(path: str | None = None) -> SourceUnavailable | None:
    """The one-line problem when the socket path is a directory: Docker creates one in its
    place when ``-v /run/jtop.sock:/run/jtop.sock`` is given while the socket does not exist."""
    path = path or jtop_socket_path()
    if not os.path.isdir(path):
        return None
    return SourceUnavailable(
        f"{path} is a directory, not the jtop service's socket (Docker makes one when the socket "
        "is missing at container start): on the host run `sudo systemctl restart jtop.service` "
        "(it replaces the directory with its socket), then restart the container"
    )


def explain_failure(exc: BaseException) -> SourceUnavailable:
    """Maps a failure to start a jtop client to a one-line problem-and-fix message."""
    if isinstance(exc, SourceUnavailable):
        return exc
    text = " ".join(str(exc).split())
    low = text.lower()
    if "not active" in low or isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):
        directory = socket_is_directory()
        if directory is not None:
            return directory
    if "not active" in low:
        return SourceUnavailable(
            "the jtop service is not running: start it with `sudo systemctl restart jtop.service` "
            "(or install it with `sudo pip3 install -U jetson-stats`)"
        )
    if "can't access" in low or isinstance(exc, PermissionError):
        return SourceUnavailable(
            "no permission to talk to jtop.service (not root and not in group jtop): run "
            "`sudo usermod -aG jtop $USER`, then log out and in again"
        )
    if "mismatch version" in low:
        found = _SERVICE_VERSION_RE.search(text)
        service = _major_minor(found.group(1)) if found else "of the board"
        client = _major_minor(jetson_stats_version() or "?")
        pin = f"pip install 'jetson-stats=={service}.*'" if found else "pip install jetson-stats"
        return SourceUnavailable(
            f"jetson-stats client {client} does not match the jtop service {service}: install "
            f"carbontop in a venv with --system-site-packages, or {pin}"
        )
    if "mismatch of python" in low:
        return SourceUnavailable(
            "the jtop service runs another Python major version than this client: install "
            "carbontop with the Python the service uses (python3)"
        )
    if "authentication" in low:
        return SourceUnavailable(
            "the jtop service refused this client's key: install the same jetson-stats version "
            "as the service, or `sudo systemctl restart jtop.service`"
        )
    if low == "error connection":
        return ServiceTooSlow(
            "the jtop service sent no first sample within 3 intervals (its decode is slower than "
            "that): use a longer --interval, or check `systemctl status jtop.service`"
        )
    if isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):
        return SourceUnavailable(
            "the jtop service is not running: start it with `sudo systemctl restart jtop.service`"
        )
    return SourceUnavailable(
        f"cannot read the jtop service ({type(exc).__name__}: {text or 'no message'}): check "
        "`systemctl status jtop.service`"
    )


def close_client(client: Any) -> None:
    """``client.close()``, whatever state the service is in (a dead one makes it fail)."""
    try:
        client.close()
    except Exception:  # nothing to do about it
        logger.debug("closing the jtop client failed", exc_info=True)


class JtopConnector:
    """Starts jtop clients from ``factory`` at an interval the service delivers.

    After :meth:`connect`, :attr:`pace_s` and :attr:`pace_note` say the pace measured when the
    service cannot keep the interval asked (None and "" otherwise). ``stop`` set ends a wait
    for the service (the source is closing).
    """

    def __init__(self, factory: ClientFactory, interval_s: float, stop: threading.Event) -> None:
        self.factory = factory
        self.requested_s = float(interval_s)
        self._stop = stop
        self.pace_s: float | None = None  # the pace the service keeps, when not as asked
        self.pace_note = ""

    def connect(self) -> Any:
        """Starts a client (in a fresh thread) at an interval the service will deliver.

        Sets :attr:`pace_s` and :attr:`pace_note` when that is not the interval asked because
        the service cannot keep it (see :meth:`_connect_at_served_pace`).
        """
        self.pace_s, self.pace_note = None, ""
        try:
            client = self._connect_once(self.requested_s)
        except ServiceTooSlow as exc:
            logger.warning("jtop service too slow for %.3f s: %s", self.requested_s, exc)
            return self._connect_at_served_pace()
        served = self.served_interval(client)
        if served > self.requested_s * INTERVAL_TOLERANCE:
            # The service's first client fixed a slower interval. A client asking for less gets
            # one sample and then ok() == False: reconnect asking for what the service delivers.
            logger.info(
                "jtop service runs at %.3f s (asked %.3f s): reconnecting at its interval",
                served,
                self.requested_s,
            )
            close_client(client)
            client = self._connect_once(served)
        return client

    def _connect_at_served_pace(self) -> Any:
        """A client at a pace the service keeps, after a first sample that never came in time.

        jtop's service starts its timer at the interval of its first client and then decodes
        back to back when the decode takes longer; the client, waiting 3 intervals for its
        first sample, gave up ("Error connection"), the timer still runs. A probe client asking
        a long interval (its waits are 3 x that) times the pace the service keeps. When it is
        close to the asked interval (only the first decode was slow) carbontop connects as
        asked. Otherwise it waits until the service has stopped its timer (3 s after the last
        client message) and connects asking the measured pace with a margin: the service then
        sleeps between decodes instead of decoding back to back. If the service still serves
        another interval (another client holds it), the measured pace is what it keeps.
        """
        requested = self.requested_s
        probe = self._connect_once(max(PACE_PROBE_MIN_S, 4 * requested))
        try:
            pace = self._measure_pace(probe, PACE_PROBE_STEPS)
        finally:
            close_client(probe)
        if pace is None:
            raise SourceUnavailable(
                "the jtop service answered but sent no steady samples: restart it with "
                "`sudo systemctl restart jtop.service`"
            )
        if pace <= requested * INTERVAL_TOLERANCE:
            logger.info("jtop service keeps %.3f s after a slow first decode", pace)
            return self._connect_once(requested)
        ask = max(requested, math.ceil(pace * PACE_MARGIN / PACE_ROUND_S - 1e-9) * PACE_ROUND_S)
        ask = round(ask, 6)
        logger.info(
            "jtop service keeps %.3f s, not the %.3f s asked: waiting for it to drop that pace, "
            "then asking %.3f s", pace, requested, ask,
        )
        if self._stop.wait(SERVICE_IDLE_DROP_S + pace + 0.5):
            raise SourceUnavailable("the jtop source was closed while connecting")
        client = self._connect_once(ask)
        served = self.served_interval(client)
        if abs(served - ask) < 1e-6:
            self.pace_s = ask
            self.pace_note = (
                f"the jtop service cannot keep {requested:g} s (its decode takes about "
                f"{pace:.2f} s): measuring every {ask:g} s"
            )
        else:
            self.pace_s = max(served, pace)
            self.pace_note = (
                f"the jtop service cannot keep {requested:g} s (its decode takes about "
                f"{pace:.2f} s) and another client holds it at {served:g} s: measuring at its "
                f"pace, about {self.pace_s:.2f} s"
            )
        logger.warning("%s", self.pace_note)
        return client

    @staticmethod
    def _measure_pace(client: Any, steps: int) -> float | None:
        """The median step (s) of the service's uptime over ``steps`` new samples; None when
        the client stops or the samples do not come within PACE_PROBE_TIMEOUT_S."""
        times: list[float] = []
        deadline = time.monotonic() + PACE_PROBE_TIMEOUT_S
        with contextlib.suppress(Exception):
            times.append(uptime_s(client.uptime))
        while len(times) <= steps and time.monotonic() < deadline:
            try:
                if not client.ok():
                    return None
                now = uptime_s(client.uptime)
            except Exception:
                logger.debug("pace probe failed", exc_info=True)
                return None
            if not times or now > times[-1]:
                times.append(now)
        if len(times) <= steps:
            return None
        diffs = sorted(b - a for a, b in itertools.pairwise(times))
        return diffs[len(diffs) // 2]

    def _connect_once(self, interval: float) -> Any:
        """``factory(interval)``, ``start()`` and a first ``ok()``, all in a NEW thread."""
        result: dict[str, Any] = {}

        def attempt() -> None:
            client = None
            try:
                client = self.factory(interval)
                client.start()
                if not client.ok():
                    raise SourceUnavailable(
                        "the jtop service answered but sent no sample: restart it with "
                        "`sudo systemctl restart jtop.service`"
                    )
                result["client"] = client
            except BaseException as exc:  # mapped to SourceUnavailable below
                result["error"] = exc
                if client is not None:
                    close_client(client)

        thread = threading.Thread(target=attempt, name="carbontop-jtop-connect", daemon=True)
        thread.start()
        thread.join(CONNECT_TIMEOUT_S)
        if thread.is_alive():
            raise SourceUnavailable(
                f"the jtop service did not answer within {CONNECT_TIMEOUT_S:.0f} s: restart it "
                "with `sudo systemctl restart jtop.service`"
            )
        if "error" in result:
            error = result["error"]
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise error
            raise explain_failure(error) from error
        return result["client"]

    def served_interval(self, client: Any) -> float:
        """The interval the service serves ``client`` at (the asked one when it does not say)."""
        try:
            served = float(client.interval)
        except Exception:
            return self.requested_s
        return served if served > 0 else self.requested_s
