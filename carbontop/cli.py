"""The command line: options, dispatch and exit codes; hands a Settings value to the engine.

Heavy modules (CodeCarbon, Textual, the engine) are imported inside the commands, so that
``carbontop --help`` and ``carbontop list`` start fast. ``carbontop run``'s trials are run by
carbontop/trials.py, compared by carbontop/comparison.py and written out by carbontop/text.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from carbontop import __version__
from carbontop.errors import BadInput, CarbontopError
from carbontop.sim import DEFAULT_SIM_BOARD
from carbontop.source_names import AUTO, GPU_SOURCES

if TYPE_CHECKING:
    from carbontop.config import Settings

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
                          "and compare J per unit and throughput; the original mode is restored "
                          "at the end")
    run.add_argument("--min-throughput", dest="min_throughput", type=_positive_float,
                     metavar="X",
                     help="with --power-modes: name the cheapest mode (J per unit) that keeps at "
                          "least X units/s")
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


def settings_from(args: argparse.Namespace) -> Settings:
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

def cmd_detect(settings: Settings, as_json: bool) -> int:
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

def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from carbontop.comparison import comparison_json, trial_stats
    from carbontop.engine_api import SessionRequest
    from carbontop.model import FinalStatus
    from carbontop.registry import check_builtin_params, find_workload, parse_params
    from carbontop.session_factory import build_engine, start_metrics
    from carbontop.summary import SessionSummary
    from carbontop.text import (
        format_mode_comparison,
        format_summary,
        format_trial_stats,
        jtop_not_used,
    )
    from carbontop.trials import TrialPlan, check_power_modes, run_trials

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
    modes = tuple(m.strip() for m in args.power_modes.split(",") if m.strip()) \
        if args.power_modes else ()
    min_throughput = args.min_throughput
    if min_throughput is not None:
        if not modes:
            raise BadInput("--min-throughput chooses among power modes: give --power-modes too")
        if not (math.isfinite(min_throughput) and min_throughput > 0):
            raise BadInput(f"--min-throughput must be a positive number of units/s, not "
                           f"{min_throughput:g}")
    plan = TrialPlan(repeat=args.repeat, modes=modes, cooldown_max_s=args.cooldown_max)
    request = SessionRequest.from_settings(settings, name, params, command=command)
    engine = build_engine(settings)
    if modes:
        check_power_modes(engine.source, list(modes))
    out = sys.stderr if args.json else sys.stdout
    warning = jtop_not_used(engine.source.info)
    if warning:
        print(f"carbontop: {warning}", file=sys.stderr)
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        engine.stop_session(FinalStatus.INTERRUPTED)

    def show(summary: SessionSummary) -> None:
        if not args.json:
            print(format_summary(summary, engine.store.paths()), file=out)

    exporter = None
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM,
                                                          signal.SIGHUP)}
    try:
        engine.open()
        engine.add_listener(lambda level, msg: log.info("%s: %s", level, msg))
        exporter = start_metrics(engine, settings)
        if exporter is not None:
            print(f"Prometheus metrics on {exporter.url}", file=sys.stderr)
        results = run_trials(engine, request, plan, received, out, show)
    finally:
        engine.close()
        if exporter is not None:
            exporter.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    summaries = results.summaries
    mode_stats = {m: trial_stats(s) for m, s in results.by_mode.items()} if modes else {}
    if args.json:
        if len(summaries) == 1 and plan.trials == 1 and not modes:  # one plain session
            print(json.dumps(summaries[0].to_json(), default=str))
        else:
            result: dict[str, object] = {"trials": [s.to_json() for s in summaries],
                                      "stats": trial_stats(summaries)}
            if modes:
                result.update(comparison_json(mode_stats, min_throughput))
            print(json.dumps(result, default=str))
    else:
        if args.repeat > 1 and not modes:
            print(format_trial_stats(trial_stats(summaries)), file=out)
        if modes:
            print(format_mode_comparison(mode_stats, min_throughput), file=out)
    if received:
        return 128 + received[0]
    failed = any(s.status is FinalStatus.FAILED for s in summaries)
    return EXIT_FAILED if failed else EXIT_OK


# -- the dashboard -----------------------------------------------------------------------------

def cmd_dashboard(settings: Settings) -> int:
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
