"""The columns of the three CSV files: name, unit and meaning. README's tables come from here.

gpu_log.csv and emissions.csv start with the original script's columns, in its order, so its
readers keep working; total_summary.csv starts with CodeCarbon's columns in the order the
installed CodeCarbon writes them, so tools made for CodeCarbon's CSV read it.
"""

from __future__ import annotations

from dataclasses import dataclass

GPU_LOG = "gpu_log.csv"
EMISSIONS = "emissions.csv"
TOTAL_SUMMARY = "total_summary.csv"


@dataclass(frozen=True)
class Column:
    name: str
    unit: str
    meaning: str


GPU_LOG_COLUMNS: tuple[Column, ...] = (
    Column("timestamp", "ISO 8601 UTC",
           "when carbontop received the sample (wall clock, a label; jtop read the rails "
           "20-40 ms before: docs/performance.md)"),
    Column("gpu_power_w", "W", "GPU power (rail or NVML); empty when no GPU is measured"),
    Column("gpu_energy_kwh", "kWh", "GPU energy since the session started (cumulative)"),
    Column("gpu_co2_kg", "kg CO2e", "GPU CO2 since the session started (cumulative)"),
    Column("run_id", "", "the session this row belongs to"),
    Column("workload", "", "the workload name"),
    Column("phase", "", "loading, warm-up, measuring or idle"),
    Column("gpu_rail", "", "the rail or sensor behind gpu_power_w"),
    Column("gpu_scope", "", "what the GPU figure contains: GPU only, CPU+GPU+CV shared, ..."),
    Column("board_power_w", "W", "module input rail, or jtop's sum of rails (see board_basis)"),
    Column("board_basis", "", "input rail or sum of rails"),
    Column("cpu_rail_power_w", "W", "the board's CPU rail, where it has one (measured)"),
    Column("gpu_load_pct", "%", "GPU load"),
    Column("sensor_time_s", "s", "when the power was read, on the session clock (monotonic): "
           "the time its energy is integrated over"),
)

EMISSIONS_COLUMNS: tuple[Column, ...] = (
    # The original script's columns, first and in its order.
    Column("gpu_energy_kwh", "kWh", "GPU energy over the whole session (measured)"),
    Column("cpu_ram_co2_kg", "kg CO2e", "CodeCarbon's CPU + RAM CO2 over the whole session"),
    Column("gpu_co2_kg", "kg CO2e", "GPU CO2, same carbon intensity as everything else"),
    Column("total_co2_kg", "kg CO2e", "session total CO2 on total_basis (no joule twice)"),
    Column("gpu_count", "", "GPUs measured"),
    Column("gpu_name", "", "board/module or GPU name"),
    # carbontop's own.
    Column("run_id", "", "unique id of the session; readers take the last row of each run_id"),
    Column("status", "", "finished, stopped, interrupted, failed, partial, idle, recovered"),
    Column("start_time", "ISO 8601 UTC", "session start"),
    Column("end_time", "ISO 8601 UTC", "session end (or time of a partial export)"),
    Column("duration_s", "s", "whole session: [idle baseline +] loading + warm-up + window"),
    Column("workload", "", "workload name"),
    Column("params", "JSON", "workload parameters as resolved by the workload"),
    Column("cpu_energy_kwh", "kWh", "CodeCarbon CPU energy (see cpu_provenance)"),
    Column("ram_energy_kwh", "kWh", "CodeCarbon RAM energy (always estimated)"),
    Column("cpu_rail_energy_kwh", "kWh", "board CPU rail energy where measured"),
    Column("board_energy_kwh", "kWh", "module input rail or sum of rails (board_basis)"),
    Column("board_basis", "", "input rail NAME, carrier input VIN (INA238) or sum of rails"),
    Column("total_energy_kwh", "kWh", "session total energy on total_basis"),
    Column("total_basis", "", "what the total is: board input, sum of rails, GPU + CPU + RAM..."),
    Column("original_total_co2_kg", "kg CO2e", "the original formula: GPU + CodeCarbon CPU&RAM"),
    Column("window_duration_s", "s", "the measured window (warm-up excluded)"),
    Column("window_gpu_energy_kwh", "kWh", "GPU energy in the measured window"),
    Column("window_total_energy_kwh", "kWh", "total energy in the measured window"),
    Column("window_total_co2_kg", "kg CO2e", "total CO2 in the measured window"),
    Column("window_gpu_samples", "", "sensor samples the window's GPU figure rests on"),
    Column("gpu_samples", "", "sensor samples the session's GPU figure rests on"),
    Column("cpu_ram_readings", "", "CodeCarbon readings (1 s each) the session rests on"),
    Column("unmeasured_s", "s", "seconds of sensor gaps not integrated (source lost, stalls)"),
    Column("units", "", "units of work done in the measured window"),
    Column("unit", "", "what a unit is: image, token, sample, iteration, GFLOP..."),
    Column("throughput_per_s", "units/s", "units in the window / window duration"),
    Column("energy_per_unit_j", "J/unit", "window total energy / units"),
    Column("units_per_j", "units/J", "units / window total energy"),
    Column("units_per_s_per_w", "units/s/W", "throughput / mean window power"),
    Column("gflop_per_j", "GFLOP/J", "floating point work per joule, where the workload counts it"),
    Column("gross_energy_kwh", "kWh", "window total energy including idle power (with --baseline)"),
    Column("net_energy_kwh", "kWh", "window energy above the idle baseline (with --baseline)"),
    Column("net_co2_kg", "kg CO2e", "window CO2 above the idle baseline (with --baseline)"),
    Column("idle_power_w", "W", "idle baseline power used for net energy (with --baseline)"),
    Column("net_energy_per_unit_j", "J/unit", "net (above idle) window energy / units"),
    Column("window_gpu_energy_per_unit_j", "J/unit",
           "window GPU energy / units (the GPU figure; energy_per_unit_j is on total_basis)"),
    Column("prefill_energy_j", "J", "energy of the window's prefill sub-phase on total_basis; "
           "empty where the sampling cannot resolve it (see subphase_note)"),
    Column("prefill_gpu_energy_j", "J", "the GPU figure over the prefill sub-phase"),
    Column("prefill_units", "", "units done in the prefill sub-phase (closed intervals only)"),
    Column("prefill_energy_per_unit_j", "J/unit",
           "prefill_energy_j / prefill_units (total_basis)"),
    Column("prefill_gpu_energy_per_unit_j", "J/unit", "prefill_gpu_energy_j / prefill_units"),
    Column("prefill_units_per_s", "units/s", "prefill_units / time spent in prefill"),
    Column("prefill_samples", "", "sensor readings inside the prefill intervals (on the total's "
           "channels)"),
    Column("prefill_method", "", "energy counter at the edges, samples (N per interval), or not "
           "resolved"),
    Column("decode_energy_j", "J", "energy of the window's decode sub-phase on total_basis; empty "
           "where the sampling cannot resolve it (see subphase_note)"),
    Column("decode_gpu_energy_j", "J", "the GPU figure over the decode sub-phase"),
    Column("decode_units", "", "units done in the decode sub-phase (closed intervals only)"),
    Column("decode_energy_per_unit_j", "J/unit", "decode_energy_j / decode_units (total_basis)"),
    Column("decode_gpu_energy_per_unit_j", "J/unit", "decode_gpu_energy_j / decode_units"),
    Column("decode_units_per_s", "units/s", "decode_units / time spent in decode"),
    Column("decode_samples", "", "sensor readings inside the decode intervals (total's channels)"),
    Column("decode_method", "", "energy counter at the edges, samples (N per interval), or not "
           "resolved"),
    Column("other_energy_j", "J", "window energy outside every sub-phase: between requests, a "
           "request unfinished at the window's end (window - sub-phases)"),
    Column("other_duration_s", "s", "window time outside every sub-phase"),
    Column("subphase_note", "", "why sub-phase energies are empty, and what would resolve them"),
    Column("subphases", "JSON", "every sub-phase: intervals, duration, units, energy, J/unit, "
           "units/s, samples, coverage, method"),
    Column("requests", "", "requests completed in the window (llm-generate)"),
    Column("ttft_median_s", "s", "median time to first token over those requests (llm-generate)"),
    Column("experiment_id", "", "shared by the trials of one --repeat"),
    Column("trial", "", "trial number of --repeat, as k/N"),
    Column("carbon_intensity_g_per_kwh", "g CO2e/kWh", "one value for every component"),
    Column("carbon_intensity_origin", "", "where that value came from"),
    Column("country_iso_code", "", "ISO 3166-1 alpha-3, when given"),
    Column("region", "", "region, when given"),
    Column("gpu_source", "", "jtop, sysfs, tegrastats, nvml, sim or none"),
    Column("gpu_rail", "", "the rail or sensor behind the GPU figure"),
    Column("gpu_scope", "", "GPU only, CPU+GPU+CV shared, GPU+SOC shared, ..."),
    Column("cpu_provenance", "", "measured (RAPL) or estimated (CodeCarbon's TDP model)"),
    Column("power_mode", "", "Jetson nvpmodel mode in the window ('A -> B' if it changed)"),
    Column("power_mode_id", "", "its nvpmodel id"),
    Column("jetson_clocks", "", "whether jetson_clocks was on"),
    Column("cpu_freq_mhz_start", "MHz", "highest CPU core clock as the window started"),
    Column("cpu_freq_mhz_end", "MHz", "the same as the window ended"),
    Column("gpu_freq_mhz_start", "MHz", "GPU clock as the window started"),
    Column("gpu_freq_mhz_end", "MHz", "the same as the window ended"),
    Column("max_temp_c_start", "C", "hottest sensor as the window started"),
    Column("max_temp_c_end", "C", "the same as the window ended"),
    Column("throttled", "", "why the board throttled during the window (empty: it did not)"),
    Column("failure_reason", "", "why a failed session failed"),
    Column("device", "", "torch device the workload ran on"),
    Column("carbontop_version", "", ""),
    Column("jetson_stats_version", "", ""),
    Column("jetpack", "", ""),
    Column("l4t", "", ""),
    Column("torch_version", "", "reported by the workload child"),
    Column("cuda_version", "", "reported by the workload child"),
    Column("workload_python_version", "", "the Python the workload child ran in "
           "(--workload-python, else carbontop's); empty for `run -- CMD`"),
)

# carbontop's columns appended after CodeCarbon's in total_summary.csv.
TOTAL_SUMMARY_EXTRA: tuple[Column, ...] = (
    Column("status", "", "as in emissions.csv"),
    Column("workload", "", "workload name"),
    Column("total_basis", "", "what emissions/energy_consumed are"),
    Column("gpu_source", "", "jtop, sysfs, tegrastats, nvml, sim or none"),
    Column("gpu_scope", "", "what gpu_energy contains"),
    Column("carbon_intensity_g_per_kwh", "g CO2e/kWh", "the one intensity applied"),
    Column("carbon_intensity_origin", "", "where it came from"),
)

# CodeCarbon 3.3.2's order; replaced at run time by the installed CodeCarbon's own order.
CODECARBON_FALLBACK_COLUMNS: tuple[str, ...] = (
    "timestamp", "project_name", "run_id", "experiment_id", "duration", "emissions",
    "emissions_rate", "cpu_power", "gpu_power", "ram_power", "cpu_energy", "gpu_energy",
    "ram_energy", "energy_consumed", "water_consumed", "country_name", "country_iso_code",
    "region", "cloud_provider", "cloud_region", "os", "python_version", "codecarbon_version",
    "cpu_count", "cpu_model", "gpu_count", "gpu_model", "longitude", "latitude",
    "ram_total_size", "tracking_mode", "cpu_utilization_percent", "gpu_utilization_percent",
    "ram_utilization_percent", "ram_used_gb", "on_cloud", "pue", "wue",
)


def codecarbon_columns() -> tuple[str, ...]:
    """The column order of the installed CodeCarbon's emissions.csv."""
    try:
        import dataclasses

        from codecarbon.output_methods.emissions_data import EmissionsData

        return tuple(f.name for f in dataclasses.fields(EmissionsData))
    except Exception:  # noqa: BLE001 - an old or broken CodeCarbon: keep the known order
        return CODECARBON_FALLBACK_COLUMNS


def total_summary_columns() -> tuple[str, ...]:
    cc = codecarbon_columns()
    return cc + tuple(c.name for c in TOTAL_SUMMARY_EXTRA if c.name not in cc)


# Identity columns: every carbontop version has written them to that file and every later one
# must (tests check they stay in the schema). A file holding them, with the columns it shares
# with today's schema in today's order, is an earlier carbontop's and is upgraded in place
# (carbontop/results/upgrade.py). They include run_id and, for total_summary.csv, carbontop's
# own columns, so that the original script's files and CodeCarbon's own CSV stay foreign.
GPU_LOG_IDENTITY: tuple[str, ...] = (
    "timestamp", "gpu_power_w", "gpu_energy_kwh", "gpu_co2_kg", "run_id")
EMISSIONS_IDENTITY: tuple[str, ...] = (
    "gpu_energy_kwh", "cpu_ram_co2_kg", "gpu_co2_kg", "total_co2_kg", "gpu_count", "gpu_name",
    "run_id")
TOTAL_SUMMARY_IDENTITY: tuple[str, ...] = ("run_id", "status", "workload", "total_basis")


def names(columns: tuple[Column, ...]) -> tuple[str, ...]:
    return tuple(c.name for c in columns)
