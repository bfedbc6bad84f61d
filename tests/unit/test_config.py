"""Settings: config file, environment, command line, validation (one-line errors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbontop.config import build_settings
from carbontop.errors import BadInput


def settings(cli: dict, tmp_path: Path, config: str | None = None, env: dict | None = None):
    path = tmp_path / "config.toml"
    if config is not None:
        path.write_text(config)
    return build_settings(cli, config_path=path, environ=env or {})


def test_command_line_wins_over_environment_and_file(tmp_path: Path) -> None:
    s = settings({"interval_s": 0.25}, tmp_path, 'interval = 2.0\ncountry = "FRA"\n',
                 {"CARBONTOP_INTERVAL": "1.0", "CARBONTOP_COUNTRY": "DEU"})
    assert s.interval_s == 0.25
    assert s.country == "DEU"


def test_file_values_apply(tmp_path: Path) -> None:
    s = settings({}, tmp_path, 'duration = 12\noutput_dir = "~/x"\n')
    assert s.duration_s == 12.0
    assert s.output_dir == Path("~/x").expanduser()


def test_workload_python_from_file_environment_and_command_line(tmp_path: Path) -> None:
    from_file = settings({}, tmp_path, 'workload_python = "/usr/bin/python3"\n')
    assert from_file.workload_python == Path("/usr/bin/python3")
    from_env = settings({}, tmp_path, None, {"CARBONTOP_WORKLOAD_PYTHON": "~/py38/bin/python"})
    assert from_env.workload_python == Path.home() / "py38" / "bin" / "python"
    from_cli = settings({"workload_python": Path("/opt/py")}, tmp_path,
                        'workload_python = "/usr/bin/python3"\n')
    assert from_cli.workload_python == Path("/opt/py")
    (tmp_path / "none").mkdir()
    assert settings({}, tmp_path / "none").workload_python is None


def test_broken_config_names_path_and_line(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as err:
        settings({}, tmp_path, 'country = "FRA"\ninterval = = 3\n')
    assert "config.toml" in str(err.value) and "line 2" in str(err.value)


def test_unknown_config_key_names_line(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as err:
        settings({}, tmp_path, 'country = "FRA"\nintervall = 3\n')
    assert "config.toml:2" in str(err.value) and "intervall" in str(err.value)


def test_wrong_type_in_config(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="interval"):
        settings({}, tmp_path, 'interval = "fast"\n')


@pytest.mark.parametrize("cli, fragment", [
    ({"interval_s": 0.0}, "--interval"),
    ({"interval_s": -1.0}, "--interval"),
    ({"interval_s": float("nan")}, "--interval"),
    ({"duration_s": -5.0}, "--duration"),
    ({"duration_s": 1e12}, "--duration"),
    ({"carbon_intensity": 0.0}, "--carbon-intensity"),
    ({"gpu_source": "cuda"}, "--gpu-source"),
    ({"region": "california"}, "--country"),
])
def test_bad_values_are_one_line_errors(cli: dict, fragment: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput) as err:
        settings(cli, tmp_path)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_workload_file(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        settings({"workload_file": tmp_path / "nope.py"}, tmp_path)
