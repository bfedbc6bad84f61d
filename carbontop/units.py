"""Human-readable energy, CO2, power and time, shared by the command line and the dashboard.

``None`` means "not measured" and prints as ``n/a``, never as zero.
"""

from __future__ import annotations

J_PER_KWH = 3.6e6


def human_energy(kwh: float | None) -> str:
    """Joules below 1 Wh, then Wh below 1 kWh, then kWh."""
    if kwh is None:
        return "n/a"
    j = kwh * J_PER_KWH
    if j < 3600:
        return f"{j:.1f} J"
    if kwh < 1:
        return f"{kwh * 1000:.3f} Wh"
    return f"{kwh:.3f} kWh"


def human_co2(kg: float | None) -> str:
    """Milligrams below 1 g, grams below 1 kg, then kilograms (CO2-equivalent)."""
    if kg is None:
        return "n/a"
    if kg < 0.001:
        return f"{kg * 1e6:.1f} mg"
    if kg < 1:
        return f"{kg * 1000:.2f} g"
    return f"{kg:.3f} kg"


def human_power(w: float | None) -> str:
    if w is None:
        return "n/a"
    if w >= 1000:
        return f"{w / 1000:.2f} kW"
    return f"{w:.1f} W"


def human_rate(kg_per_s: float | None) -> str:
    """An emission rate per hour: ``12.3 g/h``."""
    if kg_per_s is None:
        return "n/a"
    per_h = kg_per_s * 3600.0
    if per_h < 0.001:
        return f"{per_h * 1e6:.1f} mg/h"
    if per_h < 1:
        return f"{per_h * 1000:.2f} g/h"
    return f"{per_h:.3f} kg/h"


def human_duration(s: float | None) -> str:
    """``mm:ss`` below an hour, ``h:mm:ss`` above."""
    if s is None:
        return "--:--"
    total = max(0, int(s))
    h, rest = divmod(total, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"
