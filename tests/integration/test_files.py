"""Output files under real faults that root cannot bypass: /dev/full, an unprivileged process."""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from carbontop.carbon import world_average
from carbontop.config import Settings
from carbontop.engine import Engine
from carbontop.engine_api import SessionRequest
from carbontop.errors import BadInput
from carbontop.results import schema
from carbontop.results.store import check_output_dir
from carbontop.sim.load import SimLoad
from carbontop.sources.sim import make_sim_source


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_disk_full_keeps_rows_and_writes_them_to_a_named_fallback(tmp_path: Path) -> None:
    out = tmp_path / "results"
    fallback_state = Path(os.environ["XDG_STATE_HOME"]) / "carbontop" / "unsaved-results"
    load = SimLoad()
    source = make_sim_source(interval_s=0.1, load=load, seed=1)
    source.open()
    engine = Engine(Settings(gpu_source="sim", interval_s=0.1, output_dir=out), source,
                    world_average(), sim_load=load)
    notices: list[str] = []
    engine.add_listener(lambda level, message: notices.append(message))
    engine.open()
    engine.start_session(SessionRequest("idle", {"warmup_s": "0"}, duration_s=4.0))
    deadline = time.monotonic() + 30
    gpu_log = out / schema.GPU_LOG
    while not gpu_log.exists():
        assert time.monotonic() < deadline, "no gpu_log.csv within 30 s"
        time.sleep(0.1)
    # The disk fills: from one instant on, every write to gpu_log.csv fails with ENOSPC. What was
    # written until then stays readable under a second name (a hard link to the same file), and
    # /dev/full takes the name in one atomic rename: no row can land between the count and the
    # switch, and none is lost with an unlinked file.
    written_file = out / "gpu_log.before-disk-full.csv"
    os.link(gpu_log, written_file)
    full = out / "gpu_log.full.tmp"
    full.symlink_to("/dev/full")
    os.replace(full, gpu_log)
    summary = engine.wait_session(60)
    engine.close()
    assert summary is not None and summary.status.value == "finished"
    assert any("cannot write" in n and "kept in memory" in n for n in notices), notices
    saved = fallback_state / schema.GPU_LOG
    assert any(str(saved) in n for n in notices), notices
    written_rows, fallback_rows = rows(written_file), rows(saved)
    assert written_rows and fallback_rows
    on_disk = written_rows + fallback_rows
    assert {r["run_id"] for r in on_disk} == {summary.run_id}
    # Every sample of the session is on disk somewhere, none twice.
    samples = [(r["timestamp"], r["sensor_time_s"]) for r in on_disk]
    assert len(set(samples)) == len(samples), "a sample was written twice"
    assert samples == sorted(samples), "rows out of order: a kept row was written late or twice"
    assert len(on_disk) >= summary.whole.gpu_samples
    assert rows(out / schema.EMISSIONS)[0]["run_id"] == summary.run_id


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to an unprivileged user")
def test_unwritable_output_dir_for_an_unprivileged_process() -> None:
    # Under /tmp itself: pytest's own tmp_path sits below a directory only root may enter.
    base = Path(tempfile.mkdtemp(prefix="carbontop-unpriv-"))
    os.chmod(base, 0o755)
    target = base / "root-only"
    target.mkdir(mode=0o755)
    pid = os.fork()
    if pid == 0:  # the child drops to nobody, then checks the directory as carbontop does
        code = 3
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                check_output_dir(target)
                code = 0
            except BadInput as exc:
                code = 2 if "not writable" in str(exc) and "--output-dir" in str(exc) else 4
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    shutil.rmtree(base)
    assert os.waitstatus_to_exitcode(status) == 2
