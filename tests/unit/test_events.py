"""The event lines between the workload child and the monitor: one definition, both directions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from carbontop import events
from carbontop.events import encode_event, parse_event
from carbontop.model import Phase, ProgressEvent

ROOT = Path(__file__).resolve().parents[2]


def test_event_lines_round_trip() -> None:
    event = ProgressEvent("units", 12.5, Phase.WARMUP, 3.0, "token", 1e9, "", {"a": "b"},
                          t_s=4.25, subphase="decode", subphase_units={"decode": 2.0})
    line = encode_event(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert b'"phase":"warm-up"' in line  # the phase's value, not the enum's name
    assert parse_event(line) == event
    assert parse_event(line.decode()) == event


def test_a_line_from_the_child_as_written() -> None:
    """Worked out by hand: what the child writes for the end of a 2-unit window."""
    line = (b'{"kind":"done","t_unix_s":1700000000.5,"phase":"done","units":2,"unit":"image",'
            b'"flops":null,"message":"","info":{"ended":"duration"},"t_s":100.25,'
            b'"subphase":null,"subphase_units":{"prefill":1}}')
    assert parse_event(line) == ProgressEvent(
        events.DONE, 1700000000.5, Phase.DONE, 2.0, "image", None, "", {"ended": "duration"},
        t_s=100.25, subphase=None, subphase_units={"prefill": 1.0})


@pytest.mark.parametrize(("line", "problem"), [
    (b"not json", "Expecting value"),
    (b"[1, 2]", "not an event object"),
    (b'{"kind": "party"}', "unknown event kind 'party'"),
    (b'{"t_unix_s": 1}', "unknown event kind None"),
    (b'{"kind": "phase", "phase": "nonsense"}', "'nonsense' is not a valid Phase"),
    (b'{"kind": "units", "units": "many"}', "could not convert string to float: 'many'"),
    (b'{"kind": "info", "info": [1, 2]}', "cannot convert dictionary update sequence"),
])
def test_a_bad_line_is_a_value_error_naming_the_problem(line: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_event(line)


def test_the_kinds_are_the_ones_the_child_sends() -> None:
    """Every kind the child emits is a constant of carbontop.events, and every constant is sent."""
    child = "\n".join(path.read_text() for path in (ROOT / "carbontop" / "child").glob("*.py"))
    sent = set(re.findall(r"emit\(\s*events\.([A-Z]+)", child))
    assert {getattr(events, name) for name in sent} == set(events.KINDS)


def test_nobody_else_writes_or_reads_event_lines() -> None:
    """The lines' own keys ("kind", "subphase_units") appear as strings in carbontop.events only
    (the journal and the CSV files have keys like "t_unix_s" of their own)."""
    others = [p for p in (ROOT / "carbontop").rglob("*.py") if p.name != "events.py"]
    others += list((ROOT / "workloads").rglob("*.py"))
    copies = re.compile(r"""["'](kind|subphase_units)["']""")
    assert [str(p) for p in others if copies.search(p.read_text())] == []
    assert copies.search('data.get("subphase_units")')  # what a copy would look like
