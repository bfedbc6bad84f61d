"""Carbon intensity: CodeCarbon's country and regional data, overrides, the world average."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from carbontop.carbon import (
    WORLD_AVERAGE_G_PER_KWH,
    CarbonIntensity,
    _global_energy_mix,
    co2_kg,
    list_countries,
    list_regions,
    resolve_intensity,
)
from carbontop.errors import BadInput


def codecarbon_region_g_per_kwh(iso3: str, region: str) -> float:
    """What CodeCarbon's offline tracker itself applies for a country/region (g/kWh)."""
    from codecarbon.core.emissions import Emissions
    from codecarbon.core.units import Energy
    from codecarbon.external.geography import GeoMetadata
    from codecarbon.input import DataSource

    geo = GeoMetadata(country_iso_code=iso3, region=region)
    kg = Emissions(DataSource()).get_private_infra_emissions(Energy.from_energy(kWh=1.0), geo)
    return float(kg) * 1000.0


def test_country_from_codecarbon_data() -> None:
    from codecarbon.input import DataSource

    i = resolve_intensity("FRA", None, None)
    expected = DataSource().get_global_energy_mix_data()["FRA"]["carbon_intensity"]
    assert i.g_per_kwh == pytest.approx(expected)
    assert 20 < i.g_per_kwh < 150  # France: nuclear
    assert i.source == "country"
    assert i.origin == "CodeCarbon data: France (FRA)"
    assert (i.country_iso3, i.country_name, i.region) == ("FRA", "France", None)
    assert i.kg_per_kwh == pytest.approx(i.g_per_kwh / 1000)


def test_fast_path_reads_the_same_data_as_codecarbon() -> None:
    from codecarbon.input import DataSource

    assert _global_energy_mix() == DataSource().get_global_energy_mix_data()


def test_resolving_a_country_does_not_import_codecarbon() -> None:
    code = ("import sys; from carbontop.carbon import resolve_intensity; "
            "i = resolve_intensity('DEU', None, None); "
            "print(i.g_per_kwh, 'codecarbon' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    g, cc, pd = out.stdout.split()
    assert float(g) > 0 and cc == "False" and pd == "False"
    assert out.stderr == ""


@pytest.mark.parametrize("given", ["fra", " Fra ", "FRA"])
def test_country_code_case_and_spaces(given: str) -> None:
    assert resolve_intensity(given, None, None).country_iso3 == "FRA"


@pytest.mark.parametrize(("iso3", "region", "canonical"), [
    ("USA", "california", "california"),
    ("usa", "New  York", "new york"),
    ("CAN", "Quebec", "quebec"),
    ("SWE", "se3", "SE3"),
])
def test_region_is_what_codecarbon_applies(iso3: str, region: str, canonical: str) -> None:
    i = resolve_intensity(iso3, region, None)
    assert i.source == "region" and i.region == canonical
    assert i.origin == f"CodeCarbon data: {iso3.upper()} / {canonical}"
    assert i.g_per_kwh == pytest.approx(codecarbon_region_g_per_kwh(iso3.upper(), canonical))


def test_regions_differ_from_their_country() -> None:
    usa = resolve_intensity("USA", None, None).g_per_kwh
    california = resolve_intensity("USA", "california", None).g_per_kwh
    quebec = resolve_intensity("CAN", "quebec", None).g_per_kwh
    assert california < usa
    assert 1 < quebec < 20  # hydro (the value CodeCarbon falls back on without network)


def test_china_province_name_is_normalised() -> None:
    i = resolve_intensity("CHN", "Guangdong Province", None)
    assert i.region == "guangdong" and i.g_per_kwh > 100


@pytest.mark.parametrize("code", ["XYZ", "FR", "FRANCE", "12A"])
def test_unknown_country_is_bad_input(code: str) -> None:
    with pytest.raises(BadInput) as info:
        resolve_intensity(code, None, None)
    assert str(info.value) == (
        f"unknown country code '{code}': use an ISO 3166-1 alpha-3 code such as FRA, USA, DEU"
    )


def test_unknown_region_names_the_valid_ones() -> None:
    with pytest.raises(BadInput, match=r"unknown region 'atlantis' for USA: .*california"):
        resolve_intensity("USA", "atlantis", None)
    with pytest.raises(BadInput, match=r"unknown region 'SE9' for SWE: use one of SE1, SE2"):
        resolve_intensity("SWE", "SE9", None)
    with pytest.raises(BadInput, match=r"'mars' for CHN: .*beijing"):
        resolve_intensity("CHN", "mars", None)
    assert "california" in list_regions("usa") and "_unit" not in list_regions("USA")


def test_region_of_a_country_without_regional_data() -> None:
    with pytest.raises(BadInput, match="no regional data for FRA .*drop --region"):
        resolve_intensity("FRA", "bretagne", None)


def test_region_without_country() -> None:
    with pytest.raises(BadInput, match="needs --country"):
        resolve_intensity(None, "california", None)


def test_override_wins_and_keeps_the_location() -> None:
    i = resolve_intensity("usa", "california", 123.4)
    assert i.g_per_kwh == 123.4 and i.source == "override"
    assert i.origin == "user override (--carbon-intensity)"
    assert (i.country_iso3, i.region) == ("USA", "california")
    bare = resolve_intensity(None, None, 50)
    assert bare.g_per_kwh == 50.0 and bare.country_iso3 is None


def test_override_still_checks_the_country() -> None:
    with pytest.raises(BadInput, match="unknown country code"):
        resolve_intensity("XYZ", None, 100.0)


@pytest.mark.parametrize("bad", [0, -5.0, math.nan, math.inf, True])
def test_bad_override(bad: float) -> None:
    with pytest.raises(BadInput, match="--carbon-intensity must be a positive number"):
        resolve_intensity(None, None, bad)


def test_world_average_when_nothing_given() -> None:
    from codecarbon.input import DataSource

    i = resolve_intensity(None, None, None)
    assert i.g_per_kwh == WORLD_AVERAGE_G_PER_KWH == 475.0
    assert DataSource().get_carbon_intensity_per_source_data()["world_average"] == 475
    assert i.source == "world-average" and "no --country" in i.origin
    assert i.country_iso3 is None and i.region is None
    assert "475 g CO2e/kWh" in i.describe()


def test_co2_kg() -> None:
    i = CarbonIntensity(g_per_kwh=500.0, origin="test", source="override")
    assert co2_kg(None, i) is None
    assert co2_kg(0.0, i) == 0.0
    assert co2_kg(2.0, i) == pytest.approx(1.0)


def test_list_countries() -> None:
    countries = list_countries()
    assert len(countries) > 200 and ("FRA", "France") in countries
    assert [c for c, _ in countries] == sorted(c for c, _ in countries)
