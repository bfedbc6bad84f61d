"""Settings from the config file, ``CARBONTOP_*`` variables and the command line (which wins).

The config file is TOML at ``$XDG_CONFIG_HOME/carbontop/config.toml`` (or ``$CARBONTOP_CONFIG``)::

    country = "FRA"
    interval = 0.5
    output_dir = "~/carbontop-results"

A broken file is an error naming its path and line; its defaults are never used silently instead.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from carbontop.errors import BadInput
from carbontop.sim import DEFAULT_SIM_BOARD
from carbontop.source_names import AUTO, GPU_SOURCES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (JetPack 6 ships 3.10)
    import tomli as tomllib

MAX_DURATION_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Settings:
    """Everything a session needs to know, validated."""

    gpu_source: str = AUTO
    sim_board: str = DEFAULT_SIM_BOARD
    seed: int = 0
    interval_s: float = 0.5
    country: str | None = None
    region: str | None = None
    carbon_intensity: float | None = None  # g CO2e / kWh, overrides the country's
    output_dir: Path = field(default_factory=Path.cwd)
    gpu_indices: tuple[int, ...] | None = None
    duration_s: float = 30.0
    workload_file: Path | None = None
    baseline_s: float = 0.0  # idle seconds measured before each workload (0: none)
    prometheus_port: int | None = None  # serve metrics on this port (0: any free port)
    prometheus_host: str = "127.0.0.1"
    # The interpreter the workload child runs in (None: carbontop's own); see workload_python.py.
    workload_python: Path | None = None

    def validated(self) -> Settings:
        if self.gpu_source not in GPU_SOURCES:
            raise BadInput(
                f"unknown --gpu-source '{self.gpu_source}': choose one of {', '.join(GPU_SOURCES)}"
            )
        check_positive("--interval", self.interval_s, maximum=60.0)
        check_positive("--duration", self.duration_s, maximum=MAX_DURATION_S)
        if self.prometheus_port is not None and not 0 <= self.prometheus_port <= 65535:
            raise BadInput(f"--prometheus-port {self.prometheus_port} is not a port: use 1-65535")
        if self.baseline_s != 0:
            check_positive("--baseline", self.baseline_s, maximum=3600.0)
        if self.carbon_intensity is not None:
            check_positive("--carbon-intensity", self.carbon_intensity, maximum=5000.0)
        if self.region and not self.country:
            raise BadInput(f"--region '{self.region}' needs --country too, e.g. --country USA")
        if self.workload_file is not None and not self.workload_file.is_file():
            raise BadInput(
                f"workload file '{self.workload_file}' does not exist: give the path of a .py file"
            )
        return self


def check_positive(option: str, value: float, maximum: float) -> None:
    if not isinstance(value, (int, float)) or math.isnan(value) or value <= 0:
        raise BadInput(f"{option} must be a positive number of seconds, not {value!r}"
                       if option != "--carbon-intensity"
                       else f"{option} must be a positive number of g CO2e/kWh, not {value!r}")
    if value > maximum or math.isinf(value):
        raise BadInput(f"{option} {value} is out of range: use at most {maximum:g}")


# Keys accepted in the config file and as CARBONTOP_<KEY> variables, with their converters.
_KEYS: dict[str, tuple[str, type]] = {
    "gpu_source": ("gpu_source", str),
    "sim_board": ("sim_board", str),
    "seed": ("seed", int),
    "interval": ("interval_s", float),
    "country": ("country", str),
    "region": ("region", str),
    "carbon_intensity": ("carbon_intensity", float),
    "output_dir": ("output_dir", Path),
    "duration": ("duration_s", float),
    "baseline": ("baseline_s", float),
    "prometheus_port": ("prometheus_port", int),
    "prometheus_host": ("prometheus_host", str),
    "workload_python": ("workload_python", Path),
}


def default_config_path() -> Path:
    override = os.environ.get("CARBONTOP_CONFIG")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "carbontop" / "config.toml"


def _convert(origin: str, key: str, raw: Any, kind: type) -> Any:
    try:
        if kind is Path:
            return Path(str(raw)).expanduser()
        if kind is int and isinstance(raw, float):
            raise ValueError
        return kind(raw)
    except (TypeError, ValueError):
        raise BadInput(f"{origin}: '{key}' must be {kind.__name__}, not {raw!r}") from None


def _line_of(path: Path, key: str) -> int | None:
    try:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip().startswith(key):
                return number
    except OSError:
        return None
    return None


def load_config_file(path: Path | None = None) -> dict[str, Any]:
    """Reads the config file if it exists; a broken one raises BadInput with its path and line."""
    path = path or default_config_path()
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"config file {path} is broken ({exc}): fix or remove that line") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"config file {path} cannot be read ({exc}): fix or remove it") from None
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key not in _KEYS:
            line = _line_of(path, key)
            where = f"{path}:{line}" if line else str(path)
            raise BadInput(
                f"config file {where}: unknown setting '{key}': use one of {', '.join(_KEYS)}"
            )
        attr, kind = _KEYS[key]
        line = _line_of(path, key)
        values[attr] = _convert(f"config file {path}:{line}", key, raw, kind)
    return values


def load_environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    environ = dict(os.environ) if environ is None else environ
    values: dict[str, Any] = {}
    for key, (attr, kind) in _KEYS.items():
        name = f"CARBONTOP_{key.upper()}"
        if name in environ and environ[name] != "":
            values[attr] = _convert(f"environment variable {name}", name, environ[name], kind)
    return values


def build_settings(cli_values: dict[str, Any], config_path: Path | None = None,
                   environ: dict[str, str] | None = None) -> Settings:
    """Config file, then environment, then command line; validated."""
    merged: dict[str, Any] = {}
    merged.update(load_config_file(config_path))
    merged.update(load_environment(environ))
    merged.update({k: v for k, v in cli_values.items() if v is not None})
    known = {f.name for f in fields(Settings)}
    settings = replace(Settings(), **{k: v for k, v in merged.items() if k in known})
    return settings.validated()
