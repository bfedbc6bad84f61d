"""Prefill and decode side by side in the workload panel, through Pilot, on the REAL engine over
the simulated board sampled every 0.02 s, with llm-generate running in its real child.

The request shape makes the decode long (199 tokens, 0.3-0.5 s here: >= 10 samples per interval,
so its energy is resolved) and the prefill short (16 tokens, a few ms: under one sample, so "—"
and why). The child's torch runs one thread: with two on this 2-core machine, beside the
dashboard sampling at 0.02 s, a decode token took 44 ms instead of 2.5 ms (OpenMP threads waiting
for a core), and a 6 s window held one request.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbontop.config import Settings
from carbontop.model import Phase
from carbontop.report import human_joules
from carbontop.tui import format as fmt
from carbontop.tui.app import CarbontopApp, build_dashboard_engine
from carbontop.tui.widgets import WorkloadMenu, WorkloadPanel
from tests.tui.test_app import text, until

PROMPT, NEW, BATCH = 16, 200, 1
LLM = {"preset": "small", "layers": "2", "prompt_tokens": str(PROMPT), "new_tokens": str(NEW),
       "batch": str(BATCH), "context": "224", "warmup_s": "0.3"}


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CarbontopApp]:
    from functools import partial

    from carbontop.deferred_engine import DeferredEngine
    from carbontop.registry import list_workloads

    locks = tmp_path / "locks"
    locks.mkdir()
    monkeypatch.setenv("CARBONTOP_LOCK_DIR", str(locks))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the child's torch: one thread (docstring)
    settings = Settings(gpu_source="sim", seed=7, interval_s=0.02, country="FRA",
                        output_dir=tmp_path / "out", duration_s=6.0).validated()
    settings.output_dir.mkdir()
    app = CarbontopApp(DeferredEngine(partial(build_dashboard_engine, settings)),
                       list_workloads(), settings, params={"llm-generate": LLM})
    yield app
    app.close_engine()


def table_rows(app: CarbontopApp) -> dict[str, list[str]]:
    """The sub-phase table on screen: row label -> its cells (the header row under "")."""
    rows: dict[str, list[str]] = {}
    for line in text(app, "#workload-subphases").split("\n"):
        label, cells = line[:fmt.SUBPHASE_LABEL].strip(), line[fmt.SUBPHASE_LABEL:].split()
        rows[label] = [" ".join(cells[i:i + 2]) if i + 1 < len(cells) and cells[i + 1] in (
            "J", "mJ", "uJ", "kJ", "MJ") else cells[i] for i in range(len(cells))
            if cells[i] not in ("J", "mJ", "uJ", "kJ", "MJ")]
    return rows


def decode_resolved(app: CarbontopApp, requests: int) -> bool:
    """``requests`` decode intervals folded live, and their energy resolved."""
    s = app._snapshot.session
    report = s.subphases if s is not None else None
    decode = report.get("decode") if report is not None else None
    return decode is not None and decode.intervals >= requests and decode.energy_j is not None


@pytest.mark.slow
async def test_prefill_and_decode_side_by_side_while_measuring(app: CarbontopApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.opened, what="the engine to open")
        app.start_workload("llm-generate")
        await until(pilot, lambda: app._snapshot.session is not None
                    and app._snapshot.session.phase is Phase.MEASURING, 60, "measuring")
        await until(pilot, lambda: decode_resolved(app, 2), 30, "two decodes resolved")
        await pilot.pause(0.6)  # one refresh at 0.4 s, and the menu's fit after it
        rows = table_rows(app)
        live = app._snapshot.session.subphases  # what the last refresh showed
        assert live is not None
        prefill, decode = live.get("prefill"), live.get("decode")
        assert prefill is not None and decode is not None
        assert rows[""] == ["prefill", "decode"]
        # Every figure of both columns on screen; the tokens of the intervals folded so far (a
        # request's decode folds once a reading follows its end, its prefill sooner), by the
        # counting rule: a request's prefill yields BATCH tokens, its decode BATCH x (NEW - 1).
        prefill_tokens, decode_tokens = (float(v) for v in rows["tokens"])
        assert prefill_tokens == prefill.intervals * BATCH
        assert decode_tokens == decode.intervals * BATCH * (NEW - 1)
        assert decode.intervals >= 2 and prefill.intervals >= decode.intervals
        assert set(rows) >= {"J/tok", "GPU J/tok", "tok/s", "energy", "samples"}
        # Decode rests on >= 10 samples per interval: its figures, as the engine has them.
        assert decode.method.startswith("samples")
        j_tok, gpu_j_tok = rows["J/tok"][1], rows["GPU J/tok"][1]
        assert j_tok == human_joules(decode.energy_per_unit_j)
        assert gpu_j_tok == human_joules(decode.gpu_energy_per_unit_j)
        assert float(rows["samples"][1]) >= 10
        # The prefill lasts a few ms, under one 0.02 s sample: "—" and the short reason.
        assert rows["J/tok"][0] == rows["GPU J/tok"][0] == rows["energy"][0] == fmt.DASH
        assert float(rows["samples"][0]) < 10
        note = text(app, "#workload-note")
        assert "prefill: too short for 10 samples" in note and "mode=prefill" in note
        assert "decode" not in note
        # The whole panel on an 80x24 screen: the menu gave up rows for it.
        panel, menu = app.query_one(WorkloadPanel), app.query_one(WorkloadMenu)
        assert menu.folded_rows is not None
        assert panel.region.bottom <= app.query_one("#left").region.bottom
        assert "all " in text(app, "#workload-body")
        await until(pilot, lambda: app._snapshot.last_summary is not None
                    and app._snapshot.session is None, 60, "the session to finish")
        await pilot.pause(0.6)
        summary = app._snapshot.last_summary
        assert summary.status.value == "finished"
        final = table_rows(app)
        shown = {"decode_j_tok": final["J/tok"][1], "decode_gpu_j_tok": final["GPU J/tok"][1],
                 "decode_tokens": final["tokens"][1], "prefill_tokens": final["tokens"][0]}
    # The last run's table is the session's final figures, as written to emissions.csv.
    with (app.settings.output_dir / "emissions.csv").open(newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["run_id"] == summary.run_id)
    assert shown["decode_j_tok"] == human_joules(float(row["decode_energy_per_unit_j"]))
    assert shown["decode_gpu_j_tok"] == human_joules(float(row["decode_gpu_energy_per_unit_j"]))
    assert float(shown["decode_tokens"]) == float(row["decode_units"])
    assert float(shown["prefill_tokens"]) == float(row["prefill_units"])
    assert row["prefill_energy_j"] == ""  # not resolved: empty in the file too


def test_table_reasons_and_overall_line() -> None:
    """The pure text of a fixed report (tests/tui/fakes.py: decode resolved, prefill not)."""
    from tests.tui.fakes import llm_snapshot

    snap = llm_snapshot()
    assert snap.session is not None and snap.session.subphases is not None
    table, note = fmt.subphase_text(snap, 28)
    lines = table.split("\n")
    assert all(len(_plain(line)) <= 28 for line in lines)
    # decode: 31 W x 1.95 s per request / 127 tokens = 0.476 J; GPU 18 W -> 0.276 J
    # a 10-character label, then two 9-character columns, figures at their right
    assert _plain(lines[0]) == " " * 10 + "  prefill   decode"
    assert _plain(lines[1]) == "J/tok" + " " * 13 + "—" + " " * 3 + "476 mJ"
    assert _plain(lines[2]) == "GPU J/tok" + " " * 9 + "—" + " " * 3 + "276 mJ"
    assert _plain(lines[5]).split() == ["tokens", "17", "2159"]
    assert _plain(lines[6]).split() == ["samples", "6", "195"]
    # 0.061 s / 10 samples = 6.1 ms: faster than any source samples (0.01 s)
    assert note == "— prefill: too short for 10 samples each: measure it alone, mode=prefill"
    body = fmt.workload_text(snap, None)[1]
    assert "all 60.4 tok/s · 513 mJ/tok" in body  # 2176 tokens / 36 s; 1116 J / 2176 tokens
    narrow = fmt.subphase_table(snap.session.subphases, 20).split("\n")
    assert all(len(_plain(line)) <= 20 for line in narrow)
    assert _plain(narrow[1]).split() == ["J/tok", "—", "476mJ"]


def _plain(markup: str) -> str:
    from textual.content import Content

    return Content.from_markup(markup).plain


def test_reasons_by_cause() -> None:
    from carbontop.subphases import SubphaseFigures, SubphaseReport

    def fig(name: str, intervals: int, coverage: float | None, energy: float | None
            ) -> SubphaseFigures:
        return SubphaseFigures(name, intervals, 0.5 * intervals, 10.0, "token", energy, None,
                               intervals, coverage, "not resolved" if energy is None else "x")

    waiting = SubphaseReport((fig("prefill", 0, None, None), fig("decode", 0, None, None)),
                             None, "b")
    assert fmt.subphase_reasons(waiting, "llm-generate", live=True) == [
        "— prefill, decode: no interval closed yet"]
    assert fmt.subphase_reasons(waiting, "x", live=False) == [
        "— prefill, decode: no interval closed in the window"]
    blind = SubphaseReport((fig("load", 4, None, None), fig("decode", 4, 1.0, 3.0)), None, "b")
    assert fmt.subphase_reasons(blind, "llm-generate", live=True) == [
        "— load: CodeCarbon's 1 s readings cannot split them"]
    # 0.5 s intervals / 10 = 50 ms; both named, the shortest sets the pace
    sparse = SubphaseReport((fig("prefill", 2, 1.0, None), fig("decode", 3, 1.0, None)), None,
                            "b")
    assert fmt.subphase_reasons(sparse, "llm-generate", live=True) == [
        "— prefill, decode: under 10 samples each: sample every 50 ms, or mode=prefill / "
        "mode=decode"]
    # 0.05 s intervals need a sample every 5 ms: no source samples that fast
    short = SubphaseReport((SubphaseFigures("step", 4, 0.2, 4.0, "it", None, None, 4, 1.0,
                                            "not resolved"),), None, "b")
    assert fmt.subphase_reasons(short, "my-program", live=False) == [
        "— step: too short for 10 samples each: an energy counter (NVML) splits it"]


@pytest.mark.parametrize(("value", "expected"), [
    (None, "n/a"), (0, "0"), (17, "17"), (2159, "2159"), (16.42, "16.4"), (0.5, "0.5"),
    (123.4, "123"), (12345, "12.3k"), (1_234_567, "1.23M")])
def test_human_count(value: float | None, expected: str) -> None:
    assert fmt.human_count(value) == expected


def test_live_figures_rest_on_the_same_intervals() -> None:
    """A second request's edges have come (stamped 4, 5 and 7 s) but no reading after 7 s yet:
    its decode is not folded, so the live decode figures are the first request's alone.

    Power by request (period 4 s): prefill [0, 1] s at 10 W, decode [1, 3] s at 20 W, 5 W between
    requests, each last 0.01 s ramping to the next (tests/unit/test_subphases.py works out the
    joules: prefill 10.05 J, decode 39.925 J). Batch 4: 4 prefill tokens, 60 decode tokens.
    """
    from carbontop.meter import Traces, WindowMeter
    from carbontop.model import PowerSample, Scope, SourceInfo
    from carbontop.subphases import SubphaseMeter
    from tests.unit.test_subphases import power_at

    traces = Traces(SourceInfo(kind="sim", device_name="scripted", gpu_count=1, gpu_rail="GPU",
                               gpu_scope=Scope.GPU_ONLY, interval_s=0.01))
    window = WindowMeter(traces, 0.0, 0.0)
    meter = SubphaseMeter(traces, 0.0)
    meter.unit = "token"

    def request(start: float, prefill: float, decode: float) -> None:
        meter.edge("prefill", start, {"prefill": prefill - 4, "decode": decode - 60})
        meter.edge("decode", start + 1, {"prefill": prefill})
        meter.edge(None, start + 3, {"prefill": prefill, "decode": decode})

    for i in range(0, 700):  # readings up to 6.99 s
        t = round(i * 0.01, 2)
        if t == 3.01:  # the first request's edges come just after its end
            request(0.0, 4, 60)
        traces.add_sample(PowerSample(t_s=t, t_unix_s=t, gpu_w=power_at(round(t % 4, 2))))
        window.settle()
        meter.settle(t)
    request(4.0, 8, 120)  # the second request's edges; no reading after 7 s yet
    meter.settle(6.99)
    live = meter.report(window.totals(6.99), final=False)
    assert live is not None
    decode, prefill = live.get("decode"), live.get("prefill")
    assert decode is not None and prefill is not None
    assert (decode.intervals, decode.units) == (1, 60)  # 120 counted, 60 covered so far
    assert decode.energy_j == pytest.approx(39.925, rel=1e-9)
    assert decode.energy_per_unit_j == pytest.approx(39.925 / 60, rel=1e-9)
    assert (prefill.intervals, prefill.units) == (2, 8)  # [4, 5] s is placed: folded
    assert prefill.energy_per_unit_j == pytest.approx(2 * 10.05 / 8, rel=1e-6)
    table = fmt.subphase_table(live, 28).split("\n")
    assert _plain(table[1]).split() == ["J/tok", "2.51", "J", "665", "mJ"]  # 39.925 / 60
    assert _plain(table[5]).split() == ["tokens", "8", "60"]
