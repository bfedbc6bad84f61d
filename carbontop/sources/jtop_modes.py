"""The board's nvpmodel power modes through the jtop service: list them, switch to one (and wait
until jtop reports it), and set the one in force back afterwards.

jtop's client exposes ``nvpmodel`` (``name``, ``id``, ``models``, ``status``) and the setter
``jetson.nvpmodel = id``, which hands the request to the service (it runs ``nvpmodel -m``, as
root). A mode whose ``status`` flag is False needs a reboot (a different GPU power-gating mask)
or failed before: the service will not set it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from carbontop.errors import BadInput, CarbontopError
from carbontop.sources.jtop_state import nvpmodel_of

logger = logging.getLogger(__name__)

SET_MODE_TIMEOUT_S = 30.0
SET_MODE_SEND_TIMEOUT_S = 10.0  # handing the request to the service (one queue put)


def _mode_status(nvp: Any, ident: int) -> bool | None:
    """jtop's per-mode flag (``nvpmodel.status[id]``): False when the service will not or
    could not set that mode (a different GPU power-gating mask: needs a reboot; or nvpmodel
    failed on it); None when unknown."""
    try:
        status = list(nvp.status)
    except Exception:
        return None
    if 0 <= ident < len(status) and isinstance(status[ident], bool):
        return status[ident]
    return None


def _mode_list(models: Sequence[str]) -> str:
    return ", ".join(f"{name} ({idx})" for idx, name in enumerate(models))


class JtopPowerModes:
    """Power-mode control over the client ``client()`` returns (None while not connected).

    ``changed(client)`` is called once the board is in the mode asked (the source reads its
    board state again); ``interval_s()`` paces the wait for jtop to report the switch.
    """

    def __init__(self, client: Callable[[], Any], changed: Callable[[Any], object],
                 interval_s: Callable[[], float]) -> None:
        self._client = client
        self._changed = changed
        self._interval_s = interval_s

    def _nvp(self) -> tuple[Any, Any]:
        """(client, its ``nvpmodel``); CarbontopError when not connected, BadInput when absent."""
        client = self._client()
        if client is None:
            raise CarbontopError(
                "not connected to the jtop service: power modes need a running jtop service "
                "(`systemctl status jtop.service`)"
            )
        try:
            nvp = getattr(client, "nvpmodel", None)  # a client without one: no nvpmodel
        except Exception as exc:
            raise CarbontopError(f"cannot read the board's power mode from jtop ({exc})") from exc
        if nvp is None or isinstance(nvp, str):
            raise BadInput(
                "power modes are not available: the jtop service reports no nvpmodel on this "
                "board (is `nvpmodel` installed? `sudo nvpmodel -q`)"
            )
        return client, nvp

    def power_modes(self) -> list[str]:
        """The board's nvpmodel modes, by id (index = id); [] when jtop reports none."""
        client = self._client()
        if client is None:
            return []
        try:
            nvp = client.nvpmodel
            models = list(nvp.models) if nvp is not None and not isinstance(nvp, str) else []
        except Exception:
            logger.debug("nvpmodel modes unreadable", exc_info=True)
            return []
        return [str(m) for m in models]

    def _resolve_mode(self, mode: str | int, models: Sequence[str]) -> int:
        """The id of ``mode`` (a name, its id, or the id as text); BadInput listing the modes."""
        if isinstance(mode, int) and not isinstance(mode, bool):
            if 0 <= mode < len(models):
                return mode
        elif isinstance(mode, str):
            text = mode.strip()
            if text in models:
                return list(models).index(text)
            folded = [m.casefold() for m in models]
            if text.casefold() in folded:
                return folded.index(text.casefold())
            if text.isdigit() and int(text) < len(models):
                return int(text)
        raise BadInput(
            f"unknown power mode {mode!r}: this board's modes are {_mode_list(models)}"
        )

    def set_power_mode(self, mode: str | int, timeout_s: float = SET_MODE_TIMEOUT_S) -> None:
        """Switches the board to nvpmodel ``mode`` (name or id) through the jtop service.

        Returns once jtop reports the new mode. BadInput (naming the valid modes) for an unknown
        mode or a board without nvpmodel; CarbontopError when the service refuses (nvpmodel
        failed, or the mode needs a reboot) or the board did not switch within ``timeout_s``.
        """
        client, nvp = self._nvp()
        models = [str(m) for m in nvp.models]
        target = self._resolve_mode(mode, models)
        name = models[target]
        current = nvpmodel_of(client)
        if current[1] == target:
            self._changed(client)
            return
        if _mode_status(nvp, target) is False:
            raise CarbontopError(
                f"the jtop service will not switch to power mode {name}: nvpmodel needs a reboot "
                f"for it (or failed on it before); set it with `sudo nvpmodel -m {target}` and "
                "reboot"
            )
        logger.info("switching power mode %s -> %s (id %d)", current[0], name, target)
        self._send_power_mode(client, target)
        deadline = time.monotonic() + max(0.0, float(timeout_s))
        poll_s = min(0.1, max(0.01, self._interval_s() / 4))
        while True:
            client = self._client() or client
            try:
                nvp = client.nvpmodel
            except Exception:
                nvp = None
            now_name, now_id = nvpmodel_of(client)
            if now_id == target:
                self._changed(client)
                logger.info("power mode is now %s (id %d)", name, target)
                return
            if nvp is not None and _mode_status(nvp, target) is False:
                raise CarbontopError(
                    f"the jtop service could not switch to power mode {name}: nvpmodel reported "
                    "an error (see `journalctl -u jtop.service`)"
                )
            if time.monotonic() >= deadline:
                raise CarbontopError(
                    f"the board did not switch to power mode {name} within {timeout_s:g} s "
                    f"(jtop still reports {now_name}): check `sudo nvpmodel -q` and "
                    "`journalctl -u jtop.service`"
                )
            time.sleep(poll_s)

    @staticmethod
    def _send_power_mode(client: Any, target: int) -> None:
        """``jetson.nvpmodel = target`` from a fresh thread (a caller's thread may hold a cached
        connection to a service that has restarted since); CarbontopError when it fails."""
        result: dict[str, BaseException] = {}

        def send() -> None:
            try:
                client.nvpmodel = target
            except BaseException as exc:  # reported to the caller below
                result["error"] = exc

        thread = threading.Thread(target=send, name="carbontop-jtop-nvpmodel", daemon=True)
        thread.start()
        thread.join(SET_MODE_SEND_TIMEOUT_S)
        if thread.is_alive():
            raise CarbontopError(
                "the jtop service did not take the power mode request: restart it with "
                "`sudo systemctl restart jtop.service`"
            )
        error = result.get("error")
        if error is not None:
            text = " ".join(str(error).split()) or type(error).__name__
            raise CarbontopError(f"the jtop service refused the power mode request: {text}")

    @contextlib.contextmanager
    def restoring_power_mode(self, timeout_s: float = SET_MODE_TIMEOUT_S) -> Iterator[str | None]:
        """Remembers the power mode now and sets it back on leaving, even on an error or Ctrl-C.

        Yields the mode's name (None where the board has no nvpmodel: nothing to restore).
        A failure to restore raises CarbontopError, unless another exception is already on its
        way out (it is then logged and noted on that exception, which goes on).
        """
        client = self._client()
        name, ident = nvpmodel_of(client) if client is not None else (None, None)
        if ident is None and name is not None:
            with contextlib.suppress(ValueError):
                ident = self.power_modes().index(name)
        try:
            yield name
        except BaseException as exc:
            if ident is not None:
                try:
                    self.set_power_mode(ident, timeout_s)
                except BaseException as restore_exc:  # never hide the first error
                    message = f"could not restore power mode {name}: {restore_exc}"
                    logger.error("%s", message)
                    exc.add_note(message)
            raise
        if ident is not None:
            try:
                self.set_power_mode(ident, timeout_s)
            except CarbontopError as exc:
                raise CarbontopError(
                    f"could not restore power mode {name} (set it with `sudo nvpmodel -m "
                    f"{ident}`): {exc}"
                ) from exc
