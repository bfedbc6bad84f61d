"""Human-readable energy, CO2, power and time, shared by the command line and the dashboard.

``None`` means "not measured" and prints as ``n/a``, never as zero.
"""

from __future__ import annotations

J_PER_KWH = 3.6e6


# A ladder of steps: below ``bound`` (by magnitude), show ``value x scale`` with ``spec`` (a format
# spec; "" for the compact form) and ``suffix``. The last bound is infinite.
Step = tuple[float, float, str, str]
_INF = float("inf")
_ENERGY_J: tuple[Step, ...] = ((3600.0, 1.0, ".1f", " J"), (J_PER_KWH, 1 / 3600, ".3f", " Wh"),
                              (_INF, 1 / J_PER_KWH, ".3f", " kWh"))
_JOULES: tuple[Step, ...] = ((1e-3, 1e6, "", " uJ"), (1.0, 1e3, "", " mJ"), (1e3, 1.0, "", " J"),
                             (1e6, 1e-3, "", " kJ"), (_INF, 1e-6, "", " MJ"))
_POWER_W: tuple[Step, ...] = ((1000.0, 1.0, ".1f", " W"), (_INF, 1e-3, ".2f", " kW"))
_COMPACT: tuple[Step, ...] = ((10.0, 1.0, ".2f", ""), (100.0, 1.0, ".1f", ""),
                              (1e4, 1.0, ".0f", ""), (1e6, 1e-3, ".1f", "k"),
                              (_INF, 1e-6, ".1f", "M"))


def _mass(per: str = "") -> tuple[Step, ...]:
    """Milligrams below 1 g, grams below 1 kg, then kilograms (``per``: "/h" for a rate)."""
    return ((0.001, 1e6, ".1f", f" mg{per}"), (1.0, 1e3, ".2f", f" g{per}"),
            (_INF, 1.0, ".3f", f" kg{per}"))


def on_ladder(value: float, steps: tuple[Step, ...]) -> str:
    """``value`` on the first step whose bound its magnitude is below."""
    for bound, scale, spec, suffix in steps:
        if abs(value) < bound:
            shown = value * scale
            return (format(shown, spec) if spec else compact(shown)) + suffix
    raise ValueError("a ladder ends with an infinite bound")


def compact(v: float) -> str:
    """Three or four significant characters: ``1.23``, ``12.3``, ``123``, ``12.3k``, ``1.2M``."""
    return on_ladder(v, _COMPACT)


def human_energy(kwh: float | None) -> str:
    """Joules below 1 Wh, then Wh below 1 kWh, then kWh."""
    return "n/a" if kwh is None else on_ladder(kwh * J_PER_KWH, _ENERGY_J)


def human_joules(j: float | None) -> str:
    """uJ, mJ, J, kJ or MJ, compact: a figure per unit of work (``84.2 mJ``)."""
    return "n/a" if j is None else on_ladder(j, _JOULES)


def human_co2(kg: float | None) -> str:
    """Milligrams below 1 g, grams below 1 kg, then kilograms (CO2-equivalent)."""
    return "n/a" if kg is None else on_ladder(kg, _mass())


def human_power(w: float | None) -> str:
    return "n/a" if w is None else on_ladder(w, _POWER_W)


def human_rate(kg_per_s: float | None) -> str:
    """An emission rate per hour: ``12.3 g/h``."""
    return "n/a" if kg_per_s is None else on_ladder(kg_per_s * 3600.0, _mass("/h"))


_UNIT_ABBREV = {"iteration": "it", "image": "img", "token": "tok", "prompt token": "ptok",
                "sample": "smp", "second": "s", "batch": "bat", "request": "req"}


def abbreviated_unit(unit: str | None) -> str:
    """``tok`` for token, ``img`` for image...; ``u`` when the unit is not known."""
    if not unit:
        return "u"
    return _UNIT_ABBREV.get(unit, unit[:5])


def human_throughput(v: float | None, unit: str | None) -> str:
    return "n/a" if v is None else f"{compact(v)} {abbreviated_unit(unit)}/s"


def human_duration(s: float | None) -> str:
    """``mm:ss`` below an hour, ``h:mm:ss`` above."""
    if s is None:
        return "--:--"
    total = max(0, int(s))
    h, rest = divmod(total, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"
