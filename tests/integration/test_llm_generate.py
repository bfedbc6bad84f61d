"""Energy per token end to end on the CPU (`--demo`): llm-generate's sub-phases, its whole-window
modes, and a plain-Python program speaking the protocol with sub-phases."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.integration.test_cli_run import carbontop

J_PER_KWH = 3.6e6
BATCH, PROMPT, NEW = 8, 448, 48  # prefill ~0.4 s, decode ~0.4 s here: >= 10 samples at 0.02 s


@pytest.fixture(autouse=True)
def one_torch_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workload child on one torch thread: beside the simulated board sampling every 0.02 s
    on a 2-core machine, torch's two threads fight the monitor and a decode token took 44 ms
    instead of 2.5 ms (a window then held no finished request)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def run_json(out: Path, *args: str) -> dict:
    proc = carbontop("run", "--demo", "--seed", "5", "--output-dir", str(out), "--json", *args,
                     cwd=out, timeout=180)
    assert proc.returncode == 0, proc.stderr
    data: dict = json.loads(proc.stdout)
    return data


@pytest.mark.slow
def test_generate_splits_the_window_into_prefill_decode_and_other(tmp_path: Path) -> None:
    s = run_json(tmp_path, "llm-generate", "--interval", "0.02", "--duration", "6",
                 "--param", "warmup_s=0.5", "--param", f"batch={BATCH}",
                 "--param", f"prompt_tokens={PROMPT}", "--param", f"new_tokens={NEW}")
    assert s["status"] == "finished" and s["unit"] == "token"
    requests = int(s["requests"])
    assert requests >= 2
    # the counting rule: prefill yields 1 token per sequence, decode the other NEW - 1
    assert s["prefill_units"] == requests * BATCH
    assert s["decode_units"] == requests * BATCH * (NEW - 1)
    assert s["units"] == requests * BATCH * NEW
    assert s["ttft_median_s"] > 0
    sub = s["subphases"]["phases"]
    assert sub["prefill"]["intervals"] == sub["decode"]["intervals"] == requests
    assert s["prefill_method"].startswith("samples") and s["decode_method"].startswith("samples")
    # no joule twice, none lost: prefill + decode + other = the window's total
    window_j = s["window_total_energy_kwh"] * J_PER_KWH
    assert s["prefill_energy_j"] + s["decode_energy_j"] + s["other_energy_j"] == pytest.approx(
        window_j, rel=1e-9)
    assert s["other_energy_j"] >= 0
    assert s["prefill_energy_per_unit_j"] == pytest.approx(s["prefill_energy_j"]
                                                           / s["prefill_units"])
    # labelled: J/token on the total's basis and for the GPU figure
    assert s["window_gpu_energy_per_unit_j"] == pytest.approx(
        s["window_gpu_energy_kwh"] * J_PER_KWH / s["units"])
    assert sub["prefill"]["gpu_energy_j"] < sub["prefill"]["energy_j"]  # board > GPU rail
    # the report shows the sub-phase figures
    proc = carbontop("report", str(tmp_path), "--sort", "decode", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "decode J/u" in proc.stdout and "llm-generate" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "unit", "per_step"), [
    ("prefill", "prompt token", BATCH * PROMPT), ("decode", "token", BATCH)])
def test_one_phase_modes_give_whole_window_figures(tmp_path: Path, mode: str, unit: str,
                                                   per_step: int) -> None:
    s = run_json(tmp_path, "llm-generate", "--interval", "0.1", "--duration", "2",
                 "--param", "warmup_s=0.3", "--param", f"mode={mode}", "--param", "decode_kv=200",
                 "--param", f"new_tokens={NEW}", "--param", f"batch={BATCH}",
                 "--param", f"prompt_tokens={PROMPT}")
    assert s["status"] == "finished" and s["unit"] == unit
    assert s["units"] > 0 and s["units"] % per_step == 0
    assert s["energy_per_unit_j"] == pytest.approx(
        s["window_total_energy_kwh"] * J_PER_KWH / s["units"])
    assert s["subphases"] is None  # one kind of work: the whole window is the figure


PROTOCOL_SCRIPT = textwrap.dedent("""
    import os, time

    def say(line):
        os.write(int(os.environ["CARBONTOP_PROGRESS_FD"]),
                 (line + " t=%.6f\\n" % time.monotonic()).encode())

    def busy(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass

    say("carbontop:phase=warmup")
    busy(0.3)
    say("carbontop:phase=measure")
    for request in range(4):
        say("carbontop:subphase=prefill")
        busy(0.3)
        say("carbontop:units=1 unit=token")
        say("carbontop:subphase=decode")
        busy(0.4)
        say("carbontop:units=9 unit=token")
        say("carbontop:subphase=other")
        time.sleep(0.2)
""")


@pytest.mark.slow
def test_a_plain_python_program_reports_its_subphases(tmp_path: Path) -> None:
    script = tmp_path / "gen.py"
    script.write_text(PROTOCOL_SCRIPT)
    s = run_json(tmp_path, "--interval", "0.02", "--", "python3", str(script))
    assert s["status"] == "finished"
    assert (s["units"], s["prefill_units"], s["decode_units"]) == (40, 4, 36)
    sub = s["subphases"]["phases"]
    assert sub["prefill"]["intervals"] == sub["decode"]["intervals"] == 4
    assert sub["prefill"]["duration_s"] == pytest.approx(1.2, abs=0.1)
    assert sub["decode"]["duration_s"] == pytest.approx(1.6, abs=0.1)
    assert s["prefill_method"].startswith("samples")
    window_j = s["window_total_energy_kwh"] * J_PER_KWH
    assert s["prefill_energy_j"] + s["decode_energy_j"] + s["other_energy_j"] == pytest.approx(
        window_j, rel=1e-9)
