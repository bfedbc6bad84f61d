"""The command line: options only; hands a Settings value to the engine.

Heavy modules (CodeCarbon, Textual, the engine) are imported inside the commands, so that
``carbontop --help`` and ``carbontop list`` start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from carbontop import __version__
from carbontop.errors import BadInput, CarbontopError
from carbontop.session_factory import build_engine, start_metrics
from carbontop.sim import DEFAULT_SIM_BOARD
from carbontop.source_names import AUTO, GPU_SOURCES
from carbontop.units import J_PER_KWH, human_co2, human_energy

log = logging.getLogger("carbontop.cli")

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad input as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadInput(f"{message} (see carbontop --help)")


def _positive_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None


def _gpu_indices(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a GPU index list like 0,1") from None


def _common_options() -> _Parser:
    p = _Parser(add_help=False)
    g = p.add_argument_group("measuring")
    g.add_argument("--gpu-source", choices=None, metavar="{" + ",".join(GPU_SOURCES) + "}",
                   help=f"where GPU power comes from (default: {AUTO})")
    g.add_argument("--demo", action="store_true", help="a simulated Jetson (= --gpu-source sim)")
    g.add_argument("--sim-board", metavar="BOARD",
                   help=f"simulated board (default: {DEFAULT_SIM_BOARD})")
    g.add_argument("--seed", type=int, help="noise seed of the simulated board")
    g.add_argument("--interval", dest="interval_s", type=_positive_float, metavar="S",
                   help="power sampling interval in seconds (default: 0.5)")
    g.add_argument("--gpu-index", dest="gpu_indices", type=_gpu_indices, metavar="I[,I]",
                   help="NVML GPUs to measure (default: all)")
    g.add_argument("--country", metavar="ISO3", help="grid country for carbon intensity, e.g. FRA")
    g.add_argument("--region", metavar="R", help="grid region within --country, e.g. california")
    g.add_argument("--carbon-intensity", type=_positive_float, metavar="G",
                   help="carbon intensity override, g CO2e per kWh")
    g.add_argument("--output-dir", type=Path, metavar="DIR",
                   help="where the CSVs go (default: the current directory)")
    g.add_argument("--workload-file", type=Path, metavar="PATH.py",
                   help="load workloads from this Python file too")
    g.add_argument("--duration", dest="duration_s", type=_positive_float, metavar="S",
                   help="measured window in seconds (default: 30)")
    g.add_argument("--baseline", dest="baseline_s", type=_positive_float, metavar="S",
                   help="measure S seconds idle first; report gross and net (above idle) energy")
    g.add_argument("--prometheus-port", dest="prometheus_port", type=int, metavar="PORT",
                   help="serve Prometheus metrics on PORT (0: any free port)")
    g.add_argument("--prometheus-host", dest="prometheus_host", metavar="HOST",
                   help="address for --prometheus-port (default 127.0.0.1; 0.0.0.0 for a "
                        "Prometheus on another machine)")
    g.add_argument("--workload-python", dest="workload_python", type=Path, metavar="PYTHON",
                   help="run the workload in this interpreter (3.8+), e.g. /usr/bin/python3 "
                        "with NVIDIA's torch on JetPack 5; carbontop's own Python by default")
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = _Parser(
        prog="carbontop", parents=[common],
        description="Watts, kWh and CO2 of PyTorch workloads on Jetson boards, NVIDIA GPUs and "
                    "CPUs. Without a command: the dashboard.")
    parser.add_argument("--version", action="version", version=f"carbontop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run = sub.add_parser("run", parents=[common], help="run one workload headless and summarise")
    run.add_argument("workload", nargs="?",
                     help="workload name (carbontop list); or `-- CMD ARGS...` to measure any "
                          "program")
    run.add_argument("--param", action="append", default=[], metavar="K=V",
                     help="workload parameter, repeatable (e.g. --param size=2048)")
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.add_argument("--repeat", type=int, default=1, metavar="N",
                     help="run N trials with a cool-down between them; report mean and spread")
    run.add_argument("--cooldown-max", type=_positive_float, default=60.0, metavar="S",
                     help="longest cool-down between trials, seconds (default: 60)")
    run.add_argument("--power-modes", metavar="MODE[,MODE...]",
                     help="run under each Jetson power mode (nvpmodel, through the jtop service) "
                          "and compare; the original mode is restored at the end")
    lst = sub.add_parser("list", parents=[common], help="list the workloads")
    lst.add_argument("--json", action="store_true")
    det = sub.add_parser("detect", parents=[common], help="which sources answer here")
    det.add_argument("--json", action="store_true")
    rep = sub.add_parser("report", parents=[common], help="the sessions of a results directory")
    rep.add_argument("directory", nargs="?", type=Path, metavar="DIR",
                     help="results directory (default: --output-dir, else the current one)")
    rep.add_argument("--sort", default="start", metavar="COLUMN",
                     help="start, workload, duration, energy, co2, throughput, j_per_unit, "
                          "status; prefix - for descending")
    fmt = rep.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")
    return parser


def settings_from(args: argparse.Namespace) -> Any:
    from carbontop.config import build_settings

    values = {k: getattr(args, k, None) for k in (
        "gpu_source", "sim_board", "seed", "interval_s", "country", "region", "carbon_intensity",
        "output_dir", "gpu_indices", "duration_s", "workload_file", "baseline_s",
        "prometheus_port", "prometheus_host", "workload_python")}
    values["carbon_intensity"] = getattr(args, "carbon_intensity", None)
    if getattr(args, "demo", False):
        values["gpu_source"] = "sim"
    return build_settings(values)


def main(argv: list[str] | None = None) -> int:
    from carbontop.logs import setup_logging

    log_path = setup_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] | None = None
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1:]
    try:
        args = build_parser().parse_args(argv)
        args.command_argv = command
        if command is not None and args.command != "run":
            raise BadInput("`-- CMD` works with `carbontop run`: carbontop run -- CMD ARGS")
        if args.command == "list":
            return cmd_list(args)
        settings = settings_from(args)
        if args.command == "report":
            from carbontop.report import report_main

            fmt = "json" if args.json else "csv" if args.csv else "table"
            return report_main(args.directory or settings.output_dir, args.sort, fmt)
        if args.command == "detect":
            return cmd_detect(settings, args.json)
        if args.command == "run":
            return cmd_run(settings, args)
        return cmd_dashboard(settings)
    except CarbontopError as exc:
        log.error("%s", exc)
        print(f"carbontop: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except Exception as exc:  # noqa: BLE001 - a traceback goes to the log file, not the user
        log.exception("unexpected error")
        print(f"carbontop: unexpected error: {exc} (details in {log_path})", file=sys.stderr)
        return EXIT_FAILED


# -- carbontop list ----------------------------------------------------------------------------

def cmd_list(args: argparse.Namespace) -> int:
    from carbontop.registry import list_workloads

    wf = args.workload_file
    if wf is not None and not wf.is_file():
        raise BadInput(f"workload file '{wf}' does not exist: give the path of a .py file")
    entries = list_workloads(wf)
    if args.json:
        print(json.dumps([e.__dict__ for e in entries], default=str))
        return EXIT_OK
    width = max(len(e.name) for e in entries) if entries else 10
    for e in entries:
        text = f"error: {e.error}" if e.error else e.description
        print(f"{e.name:<{width}}  {text}")
    return EXIT_OK


# -- carbontop detect --------------------------------------------------------------------------

def cmd_detect(settings: Any, as_json: bool) -> int:
    from carbontop.boards import board_label
    from carbontop.carbon import resolve_intensity
    from carbontop.sources.detect import open_source

    intensity = resolve_intensity(settings.country, settings.region, settings.carbon_intensity)
    opened = open_source(settings)
    try:
        info = opened.info
    finally:
        opened.source.close()
    cpu_mode = _codecarbon_cpu_mode()
    candidates = [f"{name}: {what}" for name, what in opened.candidates]
    report = {
        "gpu_source": info.kind, "device": info.device_name, "gpu_count": info.gpu_count,
        "gpu_rail": info.gpu_rail, "gpu_scope": info.gpu_scope.value if info.gpu_scope else None,
        "board": board_label(info.board_basis, info.board_rail),
        "cpu_rail": info.cpu_rail, "interval_s": info.interval_s,
        "energy_counter": info.has_energy_counter, "jetpack": info.jetpack, "l4t": info.l4t,
        "note": info.note, "not_chosen": opened.tried,
        "candidates": candidates,
        "codecarbon_cpu": cpu_mode,
        "codecarbon_ram": "estimated (CodeCarbon RAM model)",
        "carbon_intensity_g_per_kwh": intensity.g_per_kwh,
        "carbon_intensity_origin": intensity.origin,
    }
    if as_json:
        print(json.dumps(report))
        return EXIT_OK
    for key, value in report.items():
        if key == "not_chosen" or value in (None, "", []):
            continue  # not_chosen is for --json readers; the candidates below say it all
        if key == "candidates":
            for number, line in enumerate(candidates):
                print(f"{'candidates' if number == 0 else '':28} {line}")
            continue
        print(f"{key:28} {value}")
    return EXIT_OK


def _codecarbon_cpu_mode() -> str:
    try:
        from carbontop.cpu_ram import describe_cpu_mode

        return describe_cpu_mode()
    except Exception as exc:  # noqa: BLE001
        log.warning("cannot tell CodeCarbon's CPU mode", exc_info=True)
        return f"unknown ({exc})"


# -- carbontop run -----------------------------------------------------------------------------

def cmd_run(settings: Any, args: argparse.Namespace) -> int:
    from carbontop.registry import check_builtin_params, find_workload, parse_params

    command = args.command_argv
    if command is not None:
        if args.workload or not command:
            raise BadInput("give either a workload or `-- CMD ARGS`, e.g. carbontop run -- "
                           "python train.py")
        name = "command: " + " ".join(command)[:60]
    else:
        if not args.workload:
            raise BadInput("which workload? give its name (carbontop list) or `-- CMD ARGS`")
        entry = find_workload(args.workload, settings.workload_file)
        if entry.error:
            raise BadInput(f"workload '{entry.name}' is broken: {entry.error}")
        name = entry.name
        if settings.workload_python is not None:  # one line and exit 2 before the session
            from carbontop.workload_python import check_workload_python

            modules = [entry.target.partition(":")[0]] if entry.source != "file" else []
            version = check_workload_python(settings.workload_python, entry.name,
                                            entry.requires, modules)
            log.info("workload child in %s (Python %s)", settings.workload_python, version)
    params = parse_params(args.param)
    if command is None:
        check_builtin_params(entry, params)  # a bad param: one line, exit 2, nothing loaded
    if not 1 <= args.repeat <= 1000:
        raise BadInput(f"--repeat must be between 1 and 1000, not {args.repeat}")
    modes = [m.strip() for m in args.power_modes.split(",") if m.strip()] \
        if args.power_modes else []
    engine = build_engine(settings)
    if modes:
        _check_power_modes(engine.source, modes)
    out = sys.stderr if args.json else sys.stdout
    warning = jtop_not_used(engine.source.info)
    if warning:
        print(f"carbontop: {warning}", file=sys.stderr)
    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signum)
        engine.stop_session(_interrupted())

    plan: list[str | None] = list(modes) or [None]
    trials = args.repeat * len(plan)
    experiment_id = str(uuid.uuid4()) if trials > 1 else None
    summaries: list[Any] = []
    by_mode: dict[str, list[Any]] = {}
    exporter = None
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM,
                                                          signal.SIGHUP)}
    try:
        engine.open()
        engine.add_listener(lambda level, msg: log.info("%s: %s", level, msg))
        exporter = start_metrics(engine, settings)
        if exporter is not None:
            print(f"Prometheus metrics on {exporter.url}", file=sys.stderr)
        idle_w = _wait_idle_power(engine)
        with _restoring_mode(engine.source, bool(modes)):
            for mode in plan:
                if received or (summaries and summaries[-1].status.value == "failed"):
                    break
                if mode is not None:
                    print(f"power mode {mode}", file=out)
                    engine.source.set_power_mode(mode)
                for k in range(args.repeat):
                    if received:
                        break
                    if summaries:
                        _cool_down(engine, idle_w, args.cooldown_max, received, out)
                    label = f"{k + 1}/{args.repeat}" if experiment_id else None
                    if mode is not None:
                        label = f"{mode} {label}"
                    engine.start_session(name, params, settings.duration_s,
                                         settings.workload_file, command=command,
                                         baseline_s=settings.baseline_s,
                                         experiment_id=experiment_id, trial=label)
                    summary = _follow(engine, out, received)
                    if summary is None:
                        raise CarbontopError("the session ended without a summary (see the log)")
                    summaries.append(summary)
                    by_mode.setdefault(mode or "", []).append(summary)
                    if not args.json:
                        print(format_summary(summary, engine.store.paths()), file=out)
                    if summary.status.value == "failed":
                        break
    finally:
        engine.close()
        if exporter is not None:
            exporter.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    mode_stats = {m: trial_stats(s) for m, s in by_mode.items()} if modes else {}
    if args.json:
        if len(summaries) == 1 and trials == 1:
            print(json.dumps(summaries[0].to_json(), default=str))
        else:
            result: dict[str, Any] = {"trials": [s.to_json() for s in summaries],
                                      "stats": trial_stats(summaries)}
            if modes:
                result["power_modes"] = mode_stats
                result["best"] = best_modes(mode_stats)
            print(json.dumps(result, default=str))
    else:
        if args.repeat > 1 and not modes:
            print(format_trial_stats(trial_stats(summaries)), file=out)
        if modes:
            print(format_mode_comparison(mode_stats), file=out)
    if received:
        return 128 + received[0]
    failed = any(s.status.value == "failed" for s in summaries)
    return EXIT_FAILED if failed else EXIT_OK


def jtop_not_used(info: Any) -> str | None:
    """``auto`` measured without a jtop service that is there but unusable: the one line on
    what is wrong with it and its fix (from the source's note), else None."""
    for part in str(getattr(info, "note", "")).split("; "):
        if part.startswith("jtop not used: "):
            return f"measuring through {info.kind}; {part}"
    return None


def _check_power_modes(source: Any, modes: list[str]) -> None:
    """Every mode asked for exists on this board, before anything runs."""
    if not hasattr(source, "set_power_mode"):
        raise BadInput("--power-modes needs a Jetson (the jtop service sets nvpmodel): use "
                       "--gpu-source jtop, or --demo to try it on the simulated board")
    available = source.power_modes()
    if not available:
        raise BadInput("this board reports no nvpmodel power modes: drop --power-modes")
    known = {m.lower() for m in available} | {str(i) for i in range(len(available))}
    unknown = [m for m in modes if m.lower() not in known]
    if unknown:
        listed = ", ".join(f"{m} ({i})" for i, m in enumerate(available))
        raise BadInput(f"unknown power mode '{unknown[0]}': this board's modes are {listed}")


@contextlib.contextmanager
def _restoring_mode(source: Any, active: bool) -> Iterator[None]:
    """Puts the board's original power mode back, also on failure or interrupt."""
    if not active:
        yield
        return
    with source.restoring_power_mode() as original:
        log.info("power modes: original mode %s will be restored", original)
        yield


def best_modes(mode_stats: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    """Which mode gives the least energy per unit of work, and which the highest throughput."""
    def mean(mode: str, key: str) -> float | None:
        value = mode_stats[mode][key]["mean"]
        return float(value) if value is not None else None

    per_unit = {m: v for m in mode_stats if (v := mean(m, "energy_per_unit_j")) is not None}
    rate = {m: v for m in mode_stats if (v := mean(m, "throughput_per_s")) is not None}
    return {"least_energy_per_unit": min(per_unit, key=per_unit.__getitem__) if per_unit else None,
            "highest_throughput": max(rate, key=rate.__getitem__) if rate else None}


def format_mode_comparison(mode_stats: dict[str, dict[str, Any]]) -> str:
    best = best_modes(mode_stats)
    lines = ["power mode        energy per unit        throughput"]
    for mode, stats in mode_stats.items():
        unit = stats["unit"] or "unit"
        e, r = stats["energy_per_unit_j"], stats["throughput_per_s"]
        e_text = f"{e['mean']:.4g} J/{unit}" if e["mean"] is not None else "n/a"
        r_text = f"{r['mean']:.4g} {unit}/s" if r["mean"] is not None else "n/a"
        lines.append(f"{mode:<16}  {e_text:<21}  {r_text}")
    lines.append(f"least energy per unit: {best['least_energy_per_unit']}; "
                 f"highest throughput: {best['highest_throughput']}")
    return "\n".join(lines)


def _wait_idle_power(engine: Any, timeout_s: float = 5.0) -> float | None:
    """The idle figure a cool-down returns to, once the first reading has arrived."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = _idle_power(engine.snapshot())
        if value is not None:
            return value
        time.sleep(0.1)
    return None


def _idle_power(snap: Any) -> float | None:
    """The power figure a cool-down waits on: board, else GPU, else CodeCarbon's CPU."""
    live = snap.live
    for value in (live.board_w, live.gpu_w, live.cpu_w):
        if value is not None:
            return float(value)
    return None


def _cool_down(engine: Any, idle_w: float | None, cap_s: float, received: list[int],
               out: Any) -> None:
    """Waits until power is back near idle (within 10 % + 0.5 W), at most ``cap_s`` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < cap_s and not received:
        now_w = _idle_power(engine.snapshot())
        near_idle = idle_w is None or now_w is None or now_w <= idle_w * 1.1 + 0.5
        if near_idle and time.monotonic() - start >= 1.0:
            return
        time.sleep(0.25)
    print(f"cool-down capped at {cap_s:.0f} s: power has not returned to idle", file=out)


def trial_stats(summaries: list[Any]) -> dict[str, Any]:
    """Mean and standard deviation over the trials that finished."""
    done = [s for s in summaries if s.status.value == "finished"]

    def stat(values: list[float]) -> dict[str, float | int | None]:
        if not values:
            return {"n": 0, "mean": None, "stdev": None}
        return {"n": len(values), "mean": statistics.fmean(values),
                "stdev": statistics.stdev(values) if len(values) > 1 else 0.0}

    per_unit = [s.efficiency.energy_per_unit_j for s in done if s.efficiency.energy_per_unit_j]
    rate = [s.efficiency.throughput_per_s for s in done if s.efficiency.throughput_per_s]
    energy = [s.window.total_kwh * J_PER_KWH for s in done
              if s.window is not None and s.window.total_kwh is not None]
    unit = next((s.efficiency.unit for s in done if s.efficiency.unit), None)
    return {"trials": len(summaries), "finished": len(done), "unit": unit,
            "energy_per_unit_j": stat(per_unit), "throughput_per_s": stat(rate),
            "window_energy_j": stat(energy)}


def format_trial_stats(stats: dict[str, Any]) -> str:
    unit = stats["unit"] or "unit"

    def line(label: str, s: dict[str, Any], suffix: str) -> str:
        if not s["n"]:
            return f"  {label:<16} n/a"
        return f"  {label:<16} {s['mean']:.4g} ± {s['stdev']:.2g} {suffix} (n={s['n']})"

    return "\n".join([
        f"{stats['finished']}/{stats['trials']} trials finished (mean ± standard deviation):",
        line("energy per unit", stats["energy_per_unit_j"], f"J/{unit}"),
        line("throughput", stats["throughput_per_s"], f"{unit}/s"),
        line("window energy", stats["window_energy_j"], "J"),
    ])


def _interrupted() -> Any:
    from carbontop.model import FinalStatus

    return FinalStatus.INTERRUPTED


PLAIN_EVERY_S = 5.0  # a plain progress line (output not a terminal) this often


def _follow(engine: Any, out: Any, received: list[int] | None = None) -> Any:
    """A live status line on a terminal; plain periodic lines otherwise."""
    tty = out.isatty()
    last_plain = 0.0
    signalled_at: float | None = None
    while True:
        if received and signalled_at is None:
            signalled_at = time.monotonic()
        if signalled_at is not None and time.monotonic() - signalled_at > 60:
            raise CarbontopError("the session did not end within 60 s of the signal "
                                 "(see the log file)")
        # Not a terminal: wake only for the next plain line (the session's end wakes it at once).
        wait_s = 0.5 if tty else max(0.1, min(1.0 if received else PLAIN_EVERY_S,
                                              last_plain + PLAIN_EVERY_S - time.monotonic()))
        summary = engine.wait_session(timeout=wait_s)
        if summary is not None:
            if tty:
                out.write("\r\x1b[K")
                out.flush()
            return summary
        if tty:
            line = status_line(engine.snapshot())
            out.write("\r\x1b[K" + line[: os.get_terminal_size(out.fileno()).columns - 1])
            out.flush()
        elif time.monotonic() - last_plain >= PLAIN_EVERY_S - 0.05:
            print(status_line(engine.snapshot()), file=out, flush=True)
            last_plain = time.monotonic()


def _fmt(value: float | None, unit: str, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}"


def status_line(snap: Any) -> str:
    s = snap.session
    live = snap.live
    parts = [snap.state]
    if s is not None:
        parts.append(f"{s.elapsed_s:5.1f}s")
    parts.append(f"GPU {_fmt(live.gpu_w, 'W')}")
    if live.board_w is not None:
        parts.append(f"board {_fmt(live.board_w, 'W')}")
    parts.append(f"CPU~{_fmt(live.cpu_w, 'W')} RAM~{_fmt(live.ram_w, 'W')}")
    if s is not None:
        parts.append(f"total {human_energy(s.whole.total_kwh)} "
                     f"{human_co2(snap.co2_kg(s.whole.total_kwh))}")
        if s.efficiency.throughput_per_s:
            parts.append(f"{s.efficiency.throughput_per_s:.1f} {s.efficiency.unit}/s")
    if not snap.source_connected:
        parts.append("GPU SOURCE LOST")
    return " | ".join(parts)


def format_summary(summary: Any, paths: list[Path]) -> str:
    w, win, e, i = summary.whole, summary.window, summary.efficiency, summary.intensity
    src = summary.source
    lines = [
        f"{summary.workload}: {summary.status.value}"
        + (f" ({summary.failure_reason})" if summary.failure_reason else ""),
        f"  source      {src.kind}: {src.device_name}"
        + (f", GPU rail {src.gpu_rail} ({src.gpu_scope.value})" if src.gpu_scope else ""),
        f"  session     {w.duration_s:.1f} s, {w.gpu_samples} samples, "
        f"{w.cpu_ram_readings} CodeCarbon readings, {w.unmeasured_s:.1f} s unmeasured",
        f"  GPU         {human_energy(w.gpu_kwh)}  {human_co2(summary.co2_kg(w.gpu_kwh))}"
        " (measured)" if w.gpu_kwh is not None else "  GPU         not measured",
        f"  CPU         {human_energy(w.cpu_kwh)} ({summary.cpu_provenance}, CodeCarbon)",
        f"  RAM         {human_energy(w.ram_kwh)} (estimated, CodeCarbon)",
    ]
    if src.pace_note:
        lines.insert(3, f"  sampling    every {src.interval_s:g} s: {src.pace_note}")
    if w.cpu_rail_kwh is not None:
        lines.append(f"  CPU rail    {human_energy(w.cpu_rail_kwh)} (measured)")
    if w.board_kwh is not None:
        lines.append(f"  board       {human_energy(w.board_kwh)} (measured)")
    lines += [
        f"  total       {human_energy(w.total_kwh)}  {human_co2(summary.co2_kg(w.total_kwh))}"
        f"  [{w.total_basis}]",
        f"  original    GPU + CPU&RAM = {human_co2(summary.co2_kg(w.original_total_kwh))}",
    ]
    if win is not None:
        lines.append(f"  window      {win.duration_s:.1f} s measured, {win.gpu_samples} samples, "
                     f"{human_energy(win.total_kwh)}")
    if summary.baseline is not None and win is not None:
        net = summary.baseline.net_kwh(win)
        lines.append(f"  above idle  {human_energy(net)} net of {human_energy(win.total_kwh)} "
                     f"gross (idle {summary.baseline.idle_w:.2f} W over "
                     f"{summary.baseline.duration_s:.1f} s)")
    if e.too_short:
        lines.append(f"  throughput  none: {e.too_short}")
    elif e.throughput_per_s:
        lines.append(f"  throughput  {e.throughput_per_s:.2f} {e.unit}/s, "
                     + (f"{e.energy_per_unit_j:.4g} J/{e.unit}" if e.energy_per_unit_j else "")
                     + (f", {e.gflop_per_j:.3g} GFLOP/J" if e.gflop_per_j else ""))
    lines.append(f"  carbon      {i.g_per_kwh:.0f} g/kWh ({i.origin})")
    lines.append("  files       " + ", ".join(str(p) for p in paths))
    return "\n".join(lines)


# -- the dashboard -----------------------------------------------------------------------------

def cmd_dashboard(settings: Any) -> int:
    if settings.workload_python is not None:  # each workload's own modules: at its start
        from carbontop.workload_python import check_workload_python

        check_workload_python(settings.workload_python)
    try:
        from carbontop.tui.app import run_dashboard
    except ImportError:
        raise BadInput("the dashboard is not available in this build: use carbontop run") from None
    return int(run_dashboard(settings))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
