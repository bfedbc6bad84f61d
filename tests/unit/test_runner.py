"""WorkloadRunner with the real child process: every built-in on the CPU, failures, stops, OOM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from carbontop.events import parse_event
from carbontop.model import Phase, ProgressEvent
from carbontop.registry import find_workload
from carbontop.runner import WorkloadRunner, describe_exit
from tests.waiting import wait_until

DATA = Path(__file__).resolve().parents[1] / "data"
PLUGINS = DATA / "plugin_workloads.py"

# Tiny sizes: each built-in runs for real on the CPU in a second or so (plus torch's import).
TINY: dict[str, dict[str, object]] = {
    "gpu-stress": {"size": 64, "device": "cpu"},
    "cpu-stress": {"size": 64},
    "ram-stress": {"block_mb": 4, "max_mb": 16, "interval_s": 0.0},
    "stress-all": {"size": 64, "cpu_size": 64, "block_mb": 4, "max_mb": 16, "device": "cpu"},
    "matmul": {"size": 64, "device": "cpu"},
    "cnn-inference": {"batch": 2, "image_size": 32, "width": 4, "blocks": 1, "device": "cpu"},
    "transformer-inference": {
        "batch": 2,
        "seq_len": 8,
        "d_model": 16,
        "layers": 1,
        "heads": 2,
        "device": "cpu",
    },
    "training": {"batch": 8, "features": 16, "hidden": 16, "device": "cpu"},
    "idle": {"nap_s": 0.05},
}
UNITS = {
    "gpu-stress": "iteration",
    "cpu-stress": "iteration",
    "ram-stress": "MB",
    "stress-all": "iteration",
    "matmul": "GFLOP",
    "cnn-inference": "image",
    "transformer-inference": "token",
    "training": "sample",
    "idle": "second",
}


_STARTED: list[WorkloadRunner] = []


@pytest.fixture(autouse=True)
def _no_orphans() -> Iterator[None]:
    """Whatever a test does, no workload child outlives it."""
    yield
    while _STARTED:
        _STARTED.pop().stop(grace_s=1.0)


def tracked(runner: WorkloadRunner) -> WorkloadRunner:
    _STARTED.append(runner)
    return runner


class Recorder:
    """Collects events from the runner thread."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []
        self.lock = threading.Lock()
        self.measuring = threading.Event()

    def __call__(self, event: ProgressEvent) -> None:
        with self.lock:
            self.events.append(event)
        if event.kind == "phase" and event.phase is Phase.MEASURING:
            self.measuring.set()

    def kinds(self, kind: str) -> list[ProgressEvent]:
        with self.lock:
            return [event for event in self.events if event.kind == kind]

    def phases(self) -> list[Phase]:
        return [event.phase for event in self.kinds("phase") if event.phase is not None]


def plugin(class_name: str, tmp_path: Path, **kwargs: object) -> tuple[WorkloadRunner, Recorder]:
    recorder = Recorder()
    runner = tracked(
        WorkloadRunner(
            workload_file=PLUGINS,
            class_name=class_name,
            log_path=tmp_path / "workload.log",
            on_event=recorder,
            **kwargs,  # type: ignore[arg-type]
        )
    )
    return runner, recorder


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.05)
    return gone(pid)


@pytest.mark.parametrize("name", sorted(TINY))
def test_builtin_runs_for_real_on_cpu(name: str, tmp_path: Path) -> None:
    recorder = Recorder()
    log_path = tmp_path / "workload.log"
    params = {key: str(value) for key, value in TINY[name].items()}  # as the command line gives
    runner = tracked(
        WorkloadRunner(
            name,
            params={**params, "warmup_s": "0.1"},
            duration_s=0.5,
            log_path=log_path,
            on_event=recorder,
        )
    )
    runner.start()
    assert runner.wait(timeout=60) == 0, log_path.read_text()
    assert runner.failure_reason is None
    assert recorder.phases() == [Phase.LOADING, Phase.WARMUP, Phase.MEASURING]
    kinds = [event.kind for event in recorder.events]
    assert kinds[0] == "phase" and kinds[-1] == "done" and "error" not in kinds
    assert kinds.index("info") < kinds.index("done")

    measuring = [e for e in recorder.kinds("units") if e.phase is Phase.MEASURING]
    assert measuring and measuring[-1].units is not None and measuring[-1].units > 0
    assert all(event.unit == UNITS[name] for event in measuring)
    done = recorder.kinds("done")[0]
    assert done.units == measuring[-1].units and done.info["ended"] == "duration"
    assert 0.5 <= float(done.info["measured_s"]) < 5.0

    info = runner.info
    assert info["workload"] == name and info["unit"] == UNITS[name]
    assert info["warmup_s"] == "0.1" and info["duration_s"] == "0.5"
    assert info["device"] in ("cpu", "none")
    for key in TINY[name]:
        assert key in info, key
    # the window's edges: the measuring phase event and the done event, on the monotonic clock
    times = [event.t_unix_s for event in recorder.kinds("phase")] + [done.t_unix_s]
    assert times == sorted(times)
    start = float(recorder.kinds("phase")[-1].info["t_monotonic_s"])
    end = float(done.info["t_monotonic_s"])
    assert end - start == pytest.approx(float(done.info["measured_s"]), abs=0.01)


def test_failing_workload_reports_the_exception(tmp_path: Path) -> None:
    runner, recorder = plugin("Failing", tmp_path, duration_s=10)
    runner.start()
    assert runner.wait(timeout=20) == 1
    assert runner.failure_reason == "ValueError: boom: the workload broke"
    errors = recorder.kinds("error")
    assert len(errors) == 1 and errors[0].phase is Phase.MEASURING
    assert errors[0].info["type"] == "ValueError"
    assert not recorder.kinds("done")
    assert "Traceback" in (tmp_path / "workload.log").read_text()  # the detail is in the log


def test_unknown_workload_fails_in_the_child(tmp_path: Path) -> None:
    runner = tracked(WorkloadRunner("no-such-workload", log_path=tmp_path / "w.log"))
    runner.start()
    assert runner.wait(timeout=20) == 1
    assert runner.failure_reason is not None
    assert runner.failure_reason.startswith("unknown workload 'no-such-workload': choose one of")


def test_bad_param_fails_naming_valid_keys(tmp_path: Path) -> None:
    runner = tracked(WorkloadRunner("idle", params={"colour": "red"}, log_path=tmp_path / "w.log"))
    runner.start()
    assert runner.wait(timeout=20) == 1
    assert "unknown param 'colour'" in (runner.failure_reason or "")
    assert "nap_s" in (runner.failure_reason or "")


def test_sigkill_is_reported_as_such(tmp_path: Path) -> None:
    runner, recorder = plugin("Counter", tmp_path)
    runner.start()
    assert recorder.measuring.wait(10)
    assert runner.pid is not None
    os.kill(runner.pid, signal.SIGKILL)
    assert runner.wait(timeout=10) == -signal.SIGKILL
    assert runner.failure_reason == "killed by signal SIGKILL"


def test_workload_that_ends_by_itself(tmp_path: Path) -> None:
    exits: list[int] = []
    runner, recorder = plugin(
        "Counter", tmp_path, params={"steps": 30, "warmup_s": 0}, on_exit=exits.append
    )
    runner.start()
    assert runner.wait(timeout=20) == 0 and runner.failure_reason is None
    assert exits == [0]
    done = recorder.kinds("done")[0]
    assert done.info["ended"] == "workload finished"
    assert done.units == 30 and done.flops == 300.0 and done.unit == "nap"


def test_stop_during_measuring_reports_what_was_done(tmp_path: Path) -> None:
    runner, recorder = plugin("Counter", tmp_path)  # no duration: runs until stopped
    runner.start()
    assert recorder.measuring.wait(10)
    time.sleep(0.3)
    assert 0.0 <= runner.cpu_fraction() <= 1.0
    start = time.monotonic()
    assert runner.stop() == -signal.SIGTERM
    assert time.monotonic() - start < 2.0
    assert runner.failure_reason is None and runner.stop_requested
    done = recorder.kinds("done")[0]
    assert done.info["ended"] == "stopped" and done.units is not None and done.units > 0
    assert float(done.info["measured_s"]) > 0.2


def test_hung_workload_is_stopped_promptly(tmp_path: Path) -> None:
    runner, recorder = plugin("Hanging", tmp_path)
    runner.start()
    assert recorder.measuring.wait(10)
    start = time.monotonic()
    runner.stop(grace_s=3.0)
    assert time.monotonic() - start < 3.0
    assert runner.returncode == -signal.SIGTERM and runner.failure_reason is None
    assert runner.pid is not None and gone(runner.pid)


def test_workload_deaf_to_sigterm_is_killed_after_grace(tmp_path: Path) -> None:
    runner, recorder = plugin("Hanging", tmp_path, params={"ignore_sigterm": "true"})
    runner.start()
    assert recorder.measuring.wait(10)
    start = time.monotonic()
    assert runner.stop(grace_s=0.5) == -signal.SIGKILL
    assert time.monotonic() - start < 3.0
    assert runner.failure_reason is None  # we asked for it
    assert runner.pid is not None and gone(runner.pid)


def test_memory_limit_gives_out_of_memory(tmp_path: Path) -> None:
    recorder = Recorder()
    runner = tracked(
        WorkloadRunner(
            "ram-stress",
            params={"block_mb": 32, "max_mb": 100_000, "max_share": 0.9, "interval_s": 0},
            duration_s=20,
            log_path=tmp_path / "w.log",
            on_event=recorder,
            memory_limit_bytes=768 * 1024 * 1024,
        )
    )
    runner.start()
    assert runner.wait(timeout=30) == 1
    reason = runner.failure_reason or ""
    assert reason.startswith("out of memory: "), reason
    assert "MemoryError" in reason
    assert runner.info["memory_limit_bytes"] == str(768 * 1024 * 1024)


def test_started_from_a_short_lived_thread_survives_it(tmp_path: Path) -> None:
    # PR_SET_PDEATHSIG fires when the spawning *thread* exits: the runner spawns from its own.
    runner, recorder = plugin("Counter", tmp_path)
    thread = threading.Thread(target=runner.start)
    thread.start()
    thread.join()
    assert recorder.measuring.wait(10)
    time.sleep(0.3)
    assert runner.pid is not None and not gone(runner.pid) and runner.running
    runner.stop()
    assert runner.failure_reason is None


PARENT = """
import sys, threading, time
from pathlib import Path
from carbontop.model import Phase
from carbontop.runner import WorkloadRunner
measuring = threading.Event()
runner = WorkloadRunner(
    workload_file=Path(sys.argv[1]),
    class_name="Hanging",
    on_event=lambda event: event.phase == Phase.MEASURING and measuring.set(),
)
runner.start()
measuring.wait(20)  # the child now sleeps forever inside step()
print(runner.pid, flush=True)
time.sleep(60)
"""


def test_child_exits_when_its_parent_dies() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(PLUGINS)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert not gone(child_pid)
        parent.kill()
        parent.wait(timeout=5)
        assert wait_gone(child_pid, timeout=5), "the workload child outlived its parent"
    finally:
        parent.kill()
        parent.wait(timeout=5)


def test_log_file_is_appended(tmp_path: Path) -> None:
    log_path = tmp_path / "workload.log"
    log_path.write_text("earlier session\n")
    runner, _ = plugin("Counter", tmp_path, params={"steps": 2, "warmup_s": 0})
    runner.start()
    runner.wait(timeout=20)
    text = log_path.read_text()
    assert text.startswith("earlier session\n") and "phase: measuring" in text


def command_runner(
    argv: list[str], tmp_path: Path, **kwargs: object
) -> tuple[WorkloadRunner, Recorder]:
    recorder = Recorder()
    runner = WorkloadRunner.for_command(
        argv, log_path=tmp_path / "command.log", on_event=recorder, **kwargs
    )
    return tracked(runner), recorder


def command_pid_of(runner: WorkloadRunner) -> int:
    wait_until(lambda: "command_pid" in runner.info, 30, "the command's pid", poll_s=0.02)
    return int(runner.info["command_pid"])


def test_command_is_one_measured_run(tmp_path: Path) -> None:
    script = "import time; print('hello from the command'); time.sleep(0.3)"
    runner, recorder = command_runner([sys.executable, "-c", script], tmp_path, params={"x": 1})
    runner.start()
    assert runner.wait(timeout=20) == 0 and runner.failure_reason is None
    assert recorder.phases() == [Phase.LOADING, Phase.MEASURING]
    done = recorder.kinds("done")[0]
    assert done.units == 1 and done.unit == "run" and done.info["ended"] == "command exited"
    assert float(done.info["measured_s"]) >= 0.3
    assert runner.info["command"].endswith("time.sleep(0.3)'")
    assert "hello from the command" in (tmp_path / "command.log").read_text()


def test_failing_or_missing_command(tmp_path: Path) -> None:
    runner, _ = command_runner([sys.executable, "-c", "raise SystemExit(3)"], tmp_path)
    runner.start()
    assert runner.wait(timeout=20) == 1
    assert runner.failure_reason == "the command exited with code 3"
    runner, _ = command_runner(["/nonexistent/carbontop-test-cmd"], tmp_path)
    runner.start()
    assert runner.wait(timeout=20) == 1
    assert "No such file or directory" in (runner.failure_reason or "")


def test_command_duration_and_stop(tmp_path: Path) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    runner, recorder = command_runner(sleeper, tmp_path, duration_s=0.5)
    runner.start()
    assert runner.wait(timeout=10) == 0
    assert recorder.kinds("done")[0].info["ended"] == "duration"
    assert wait_gone(int(runner.info["command_pid"]), timeout=5)

    runner, recorder = command_runner(sleeper, tmp_path)
    runner.start()
    command_pid = command_pid_of(runner)
    assert runner.stop() == -signal.SIGTERM and runner.failure_reason is None
    assert wait_gone(command_pid, timeout=5)


def test_command_dies_with_its_wrapper(tmp_path: Path) -> None:
    runner, recorder = command_runner(
        [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path
    )
    runner.start()
    command_pid = command_pid_of(runner)
    assert runner.pid is not None
    os.kill(runner.pid, signal.SIGKILL)
    assert runner.wait(timeout=10) == -signal.SIGKILL
    assert wait_gone(command_pid, timeout=5), "the command outlived its wrapper"


# --- edges at the moment they happened -----------------------------------------------------

MEASURED_PHASE = """
import json, os, sys, time
from carbontop import progress
progress.phase("warmup")
time.sleep(0.2)
before = time.monotonic()
progress.phase("measure")
after = time.monotonic()
time.sleep(float(sys.argv[1]))
progress.units(32, "sample")
end = time.monotonic()
with open(sys.argv[2], "w") as out:
    json.dump({"before": before, "after": after, "end": end}, out)
os._exit(0)  # no interpreter shutdown: the window ends right after the measured phase
"""


def last_phase(recorder: Recorder, phase: Phase) -> ProgressEvent:
    return [event for event in recorder.kinds("phase") if event.phase is phase][-1]


@pytest.mark.parametrize("measured_s", [4.0, 0.3])
def test_a_programs_measured_phase_keeps_its_length(measured_s: float, tmp_path: Path) -> None:
    """The window is the program's own measured phase: start at its stamp, end at its exit."""
    (tmp_path / "prog.py").write_text(MEASURED_PHASE)
    times = tmp_path / "times.json"
    runner, recorder = command_runner(
        [sys.executable, str(tmp_path / "prog.py"), str(measured_s), str(times)], tmp_path
    )
    runner.start()
    assert runner.wait(timeout=30) == 0 and runner.failure_reason is None
    written = json.loads(times.read_text())
    measure = last_phase(recorder, Phase.MEASURING)
    done = recorder.kinds("done")[0]
    assert measure.t_s is not None and done.t_s is not None
    assert written["before"] <= measure.t_s <= written["after"]  # the program's own stamp
    assert written["end"] <= done.t_s <= written["end"] + 0.02  # its exit, seen at once
    assert measured_s <= done.t_s - measure.t_s <= measured_s + 0.02
    assert done.units == 32 and done.unit == "sample"
    assert float(done.info["measured_s"]) == pytest.approx(done.t_s - measure.t_s, abs=2e-6)


RAW_LINES = """
import json, os, sys, time
fd = int(os.environ["CARBONTOP_PROGRESS_FD"])
time.sleep(0.5)
stamp = time.monotonic() - 0.4  # a stamp the reader cannot have made: 0.4 s before the write
os.write(fd, ("carbontop:phase=warmup t=%.6f\\n" % stamp).encode())
time.sleep(0.3)
before = time.monotonic()
os.write(fd, b"carbontop:phase=measure\\n")  # no stamp: counts when read
after = time.monotonic()
time.sleep(0.3)
wall_stamp = time.time()  # another clock's time: not believable, so read time counts
before_units = time.monotonic()
os.write(fd, ("carbontop:units=5 unit=sample t=%.6f\\n" % wall_stamp).encode())
after_units = time.monotonic()
time.sleep(0.3)
with open(sys.argv[1], "w") as out:
    json.dump({"stamp": stamp, "before": before, "after": after,
               "before_units": before_units, "after_units": after_units}, out)
"""


def test_a_line_counts_at_its_stamp_else_when_it_is_written(tmp_path: Path) -> None:
    (tmp_path / "raw.py").write_text(RAW_LINES)
    times = tmp_path / "times.json"
    runner, recorder = command_runner([sys.executable, str(tmp_path / "raw.py"), str(times)],
                                      tmp_path)
    runner.start()
    assert runner.wait(timeout=30) == 0 and runner.failure_reason is None
    written = json.loads(times.read_text())
    warmup = last_phase(recorder, Phase.WARMUP)
    measure = last_phase(recorder, Phase.MEASURING)
    assert warmup.t_s == pytest.approx(written["stamp"], abs=1e-6)
    # the wall label moved back with the stamp: both times name the same moment
    assert warmup.t_unix_s - warmup.t_s == pytest.approx(measure.t_unix_s - measure.t_s, abs=0.005)
    assert measure.t_s is not None
    assert written["before"] <= measure.t_s <= written["after"] + 0.02
    units = [e for e in recorder.kinds("units") if e.phase is Phase.MEASURING and e.units == 5]
    assert units and units[0].t_s is not None
    assert written["before_units"] <= units[0].t_s <= written["after_units"] + 0.02
    assert "is not a CLOCK_MONOTONIC time" in (tmp_path / "command.log").read_text()


def test_without_a_pidfd_the_commands_exit_is_still_seen_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.8 or a kernel before 5.3 has no pidfd: the exit is polled (every 10 ms)."""
    from carbontop.child import command
    from carbontop.child.phases import Phases
    from carbontop.child.signals import Signals
    from carbontop.child.writer import EventWriter

    monkeypatch.setattr(command, "exit_fd_of", lambda pid: None)
    read_fd, write_fd = os.pipe()
    try:
        runner = Phases(EventWriter(write_fd))
        script = ("import os, time; from carbontop import progress; progress.phase('measure'); "
                  "time.sleep(0.3); os._exit(0)")
        run = command.CommandRun(runner, Signals(), None)
        assert run.run([sys.executable, "-c", script]) == "command exited"
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        events = [parse_event(line) for line in pipe.read().splitlines()]
    measuring = [e for e in events if e.kind == "phase" and e.phase is Phase.MEASURING]
    assert len(measuring) == 2  # the command's start, then the program's own "measure" line
    measure = measuring[-1]
    assert measure.t_s is not None and runner.window_end_s is not None
    assert 0.3 <= runner.window_end_s - measure.t_s <= 0.3 + 0.03
    assert runner.measured == (0.0, None, pytest.approx(runner.window_end_s - measure.t_s))


def test_a_workloads_done_is_stamped_at_the_end_of_its_measured_loop(tmp_path: Path) -> None:
    """After the last step's queued work (synchronize), before teardown."""
    runner, recorder = plugin("SlowEdges", tmp_path, duration_s=1.0)
    runner.start()
    assert runner.wait(timeout=30) == 0
    exited = time.monotonic()
    measure = last_phase(recorder, Phase.MEASURING)
    done = recorder.kinds("done")[0]
    assert measure.t_s is not None and done.t_s is not None
    # steps of 0.05 s until 1.0 s have passed (the last may end up to 0.05 s late), then the
    # 0.2 s synchronize: 1.2 to 1.25 s, plus scheduling slack
    assert 1.2 <= done.t_s - measure.t_s <= 1.25 + 0.05
    assert float(done.info["measured_s"]) == pytest.approx(done.t_s - measure.t_s, abs=2e-6)
    assert recorder.kinds("units")[-1].t_s == done.t_s  # the window's units, as of its end
    assert exited - done.t_s >= 0.6  # the 0.6 s teardown came after the end


async def test_usable_from_asyncio(tmp_path: Path) -> None:
    runner, recorder = plugin("Counter", tmp_path, params={"steps": 3, "warmup_s": 0})
    runner.start()
    assert await runner.wait_async(timeout=20) == 0
    assert recorder.kinds("done")[0].units == 3


def test_parse_event_and_exit_descriptions() -> None:
    line = (
        b'{"kind":"units","t_unix_s":1.5,"phase":"measuring","units":3,"unit":"image",'
        b'"flops":null,"message":"","info":{}}'
    )
    event = parse_event(line)
    assert event == ProgressEvent("units", 1.5, Phase.MEASURING, 3.0, "image", None, "", {})
    with pytest.raises(ValueError, match="Expecting value"):
        parse_event(b"not json")
    with pytest.raises(ValueError, match="'nonsense' is not a valid Phase"):
        parse_event(b'{"kind": "phase", "phase": "nonsense"}')
    assert describe_exit(-9) == "killed by signal SIGKILL"
    assert describe_exit(3) == "exited with code 3"


def test_for_entry_and_wait_before_start(tmp_path: Path) -> None:
    entry = find_workload("counter", PLUGINS)
    runner = tracked(WorkloadRunner.for_entry(entry, params={"steps": 1, "warmup_s": 0}))
    with pytest.raises(RuntimeError):
        runner.wait()
    assert "--class-name" in runner.child_argv(5) and "Counter" in runner.child_argv(5)
    runner.start()
    assert runner.wait(timeout=20) == 0
    with pytest.raises(RuntimeError):
        runner.start()
