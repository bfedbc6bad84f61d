"""Carbon intensity: one value per session, from one source, applied to every component.

The country figures are CodeCarbon's own data (``global_energy_mix.json``, the file that
``DataSource().get_global_energy_mix_data()`` loads), read straight from the installed package so
that resolving a country costs milliseconds instead of importing pandas. Regions (US states,
Canadian provinces, Chinese provinces, Nordic bidding zones) go through CodeCarbon's own
``Emissions.get_region_emissions`` so the factor is exactly the one CodeCarbon would apply.
CodeCarbon is imported lazily, only where a function needs it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbontop.errors import BadInput

log = logging.getLogger(__name__)

WORLD_AVERAGE_G_PER_KWH = 475.0  # CodeCarbon's "world_average" (carbon_intensity_per_source.json)
_GLOBAL_MIX_FILE = ("data", "private_infra", "global_energy_mix.json")
_ISO3_RE = re.compile(r"^[A-Z]{3}$")
_NORDIC_FALLBACK = {
    "SWE": ("SE1", "SE2", "SE3", "SE4"),
    "NOR": ("NO1", "NO2", "NO3", "NO4", "NO5"),
    "FIN": ("FI",),
}
REGION_COUNTRIES = ("USA", "CAN", "CHN", "SWE", "NOR", "FIN")


@dataclass(frozen=True)
class CarbonIntensity:
    """The grid carbon intensity of a session and where it came from."""

    g_per_kwh: float
    origin: str  # shown to the user, e.g. "CodeCarbon data: France (FRA)"
    source: str  # "country" | "region" | "override" | "world-average"
    country_iso3: str | None = None
    country_name: str | None = None
    region: str | None = None

    @property
    def kg_per_kwh(self) -> float:
        return self.g_per_kwh / 1000.0

    def describe(self) -> str:
        """One line: "56 g CO2e/kWh (CodeCarbon data: France (FRA))"."""
        return f"{self.g_per_kwh:.0f} g CO2e/kWh ({self.origin})"


def co2_kg(energy_kwh: float | None, intensity: CarbonIntensity) -> float | None:
    """kg CO2e of ``energy_kwh`` at ``intensity``; ``None`` (not measured) stays ``None``."""
    if energy_kwh is None:
        return None
    return energy_kwh * intensity.kg_per_kwh


def world_average() -> CarbonIntensity:
    return CarbonIntensity(
        g_per_kwh=WORLD_AVERAGE_G_PER_KWH,
        origin="world average (no --country given)",
        source="world-average",
    )


def resolve_intensity(
    country: str | None, region: str | None, override_g_per_kwh: float | None
) -> CarbonIntensity:
    """The session's intensity: the override, else the region, else the country, else the world.

    A country or region given with an override is still checked (a typo is an error) and kept
    for the CSV columns. Raises :class:`BadInput` with a one-line fix for any bad value.
    """
    if override_g_per_kwh is not None:
        _check_override(override_g_per_kwh)
    country = country.strip() if country else None
    region = " ".join(region.split()) if region else None
    if region and not country:
        raise BadInput(f"--region '{region}' needs --country too, e.g. --country USA")

    located: CarbonIntensity | None = None
    if country:
        iso3, entry = _country_entry(country)
        name = str(entry.get("country_name") or iso3)
        if region:
            canonical, g = _region_intensity(iso3, name, region)
            located = CarbonIntensity(
                g_per_kwh=g,
                origin=f"CodeCarbon data: {iso3} / {canonical}",
                source="region",
                country_iso3=iso3,
                country_name=name,
                region=canonical,
            )
        else:
            located = CarbonIntensity(
                g_per_kwh=_country_g_per_kwh(entry),
                origin=f"CodeCarbon data: {name} ({iso3})",
                source="country",
                country_iso3=iso3,
                country_name=name,
            )

    if override_g_per_kwh is not None:
        return CarbonIntensity(
            g_per_kwh=float(override_g_per_kwh),
            origin="user override (--carbon-intensity)",
            source="override",
            country_iso3=located.country_iso3 if located else None,
            country_name=located.country_name if located else None,
            region=located.region if located else None,
        )
    if located is not None:
        log.info("carbon intensity %.1f g/kWh (%s)", located.g_per_kwh, located.origin)
        return located
    log.info("no --country given: using the world average, %.0f g/kWh", WORLD_AVERAGE_G_PER_KWH)
    return world_average()


def list_countries() -> list[tuple[str, str]]:
    """(ISO3, name) of every country in CodeCarbon's data, sorted by code."""
    mix = _global_energy_mix()
    return sorted((iso3, str(entry.get("country_name") or iso3)) for iso3, entry in mix.items())


def list_regions(country: str) -> list[str]:
    """The regions CodeCarbon has data for in ``country`` (ISO3); empty if it has none."""
    iso3, _ = _country_entry(country)
    return _valid_regions(iso3)


# -- country ----------------------------------------------------------------------------------

def _check_override(value: float) -> None:
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value) and value > 0)
    if not ok:
        raise BadInput(
            f"--carbon-intensity must be a positive number of g CO2e/kWh, not {value!r}"
        )


def _unknown_country(code: str) -> BadInput:
    return BadInput(
        f"unknown country code '{code}': use an ISO 3166-1 alpha-3 code such as FRA, USA, DEU"
    )


def _country_entry(country: str) -> tuple[str, dict[str, Any]]:
    iso3 = country.strip().upper()
    if not _ISO3_RE.match(iso3):
        raise _unknown_country(country.strip())
    entry = _global_energy_mix().get(iso3)
    if not isinstance(entry, dict):
        raise _unknown_country(iso3)
    return iso3, entry


def _country_g_per_kwh(entry: dict[str, Any]) -> float:
    value = entry.get("carbon_intensity")
    if isinstance(value, (int, float)) and math.isfinite(value) and value >= 0:
        return float(value)
    # No published figure: let CodeCarbon compute it from the mix, as it would at run time.
    from codecarbon.core.emissions import Emissions

    return float(Emissions._global_energy_mix_to_emissions_rate(entry).kgs_per_kWh * 1000.0)


@functools.lru_cache(maxsize=1)
def _global_energy_mix() -> dict[str, Any]:
    """CodeCarbon's global energy mix, read from the installed package without importing it."""
    path = _codecarbon_data_path(*_GLOBAL_MIX_FILE)
    if path is not None:
        try:
            with path.open(encoding="utf-8") as f:
                data = json.load(f)
            if isinstance(data, dict) and data:
                return data
        except (OSError, ValueError):
            log.warning("cannot read %s; asking CodeCarbon", path, exc_info=True)
    from codecarbon.input import DataSource

    data = DataSource().get_global_energy_mix_data()
    return dict(data)


def _codecarbon_data_path(*parts: str) -> Path | None:
    try:
        spec = importlib.util.find_spec("codecarbon")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        path = Path(base).joinpath(*parts)
        if path.is_file():
            return path
    return None


# -- region -----------------------------------------------------------------------------------

def _valid_regions(iso3: str) -> list[str]:
    """Region names accepted for ``iso3`` (as CodeCarbon spells them), or [] if none."""
    if iso3 not in REGION_COUNTRIES:
        return []
    from codecarbon.input import DataSource

    ds = DataSource()
    if iso3 == "USA":
        return sorted(k for k in ds.get_country_emissions_data("usa") if not k.startswith("_"))
    if iso3 == "CAN":
        return sorted(ds.get_country_energy_mix_data("can"))
    if iso3 == "CHN":
        data = ds.get_china_provincial_emissions_data().get("data", {})
        names = [str(p.get("names", [k])[0]) for k, p in data.items() if p.get("names")]
        return sorted(names)
    try:
        from codecarbon.core.emissions import _NORDIC_REGIONS_BY_COUNTRY as nordic
    except ImportError:  # pragma: no cover - a CodeCarbon that moved it
        return list(_NORDIC_FALLBACK[iso3])
    return sorted(nordic.get(iso3, _NORDIC_FALLBACK[iso3]))


def _bad_region(iso3: str, region: str, valid: list[str]) -> BadInput:
    shown = ", ".join(valid)
    return BadInput(f"unknown region '{region}' for {iso3}: use one of {shown}")


def _china_province_name(region: str) -> str:
    """The first name CodeCarbon lists for a province ("Guangdong Province" -> "guangdong")."""
    from codecarbon.input import DataSource

    try:
        from codecarbon.core.emissions import _CHINA_REGION_SUFFIX as suffix
    except ImportError:  # pragma: no cover - a CodeCarbon that moved it
        return region
    name = suffix.sub("", " ".join(region.lower().split()))
    for province in DataSource().get_china_provincial_emissions_data().get("data", {}).values():
        names = province.get("names") or []
        if name in names:
            return str(names[0])
    return region


def _region_intensity(iso3: str, country_name: str, region: str) -> tuple[str, float]:
    """(canonical region, g/kWh) with CodeCarbon's own regional computation."""
    if iso3 not in REGION_COUNTRIES:
        raise BadInput(
            f"CodeCarbon has no regional data for {iso3} (only {', '.join(REGION_COUNTRIES)}):"
            f" drop --region '{region}'"
        )
    from codecarbon.core.emissions import Emissions
    from codecarbon.core.units import Energy
    from codecarbon.external.geography import GeoMetadata
    from codecarbon.input import DataSource

    valid = _valid_regions(iso3)
    canonical = region.lower()
    if iso3 in ("SWE", "NOR", "FIN"):
        canonical = region.upper()
        if canonical not in valid:
            raise _bad_region(iso3, region, valid)
    elif iso3 in ("USA", "CAN") and canonical not in valid:
        raise _bad_region(iso3, region, valid)

    emissions = Emissions(DataSource())  # no token, no forced value: the offline data only
    geo = GeoMetadata(country_iso_code=iso3, country_name=country_name, region=canonical)
    one_kwh = Energy.from_energy(kWh=1.0)
    if iso3 == "CHN":
        kg = emissions._try_get_china_province_emissions(one_kwh, geo)
        if kg is None:
            raise _bad_region(iso3, region, valid)
        canonical = _china_province_name(canonical)
    else:
        try:
            kg = emissions.get_region_emissions(one_kwh, geo)
        except Exception as exc:  # noqa: BLE001 - CodeCarbon's data for it is broken
            log.warning("CodeCarbon regional data failed for %s/%s", iso3, canonical,
                        exc_info=True)
            raise BadInput(
                f"CodeCarbon cannot compute the intensity of {iso3} / {canonical} ({exc}):"
                " drop --region or give --carbon-intensity"
            ) from None
    g = float(kg) * 1000.0
    if not math.isfinite(g) or g < 0:
        raise BadInput(
            f"CodeCarbon gives no usable intensity for {iso3} / {canonical}: "
            "give --carbon-intensity"
        )
    return canonical, g
