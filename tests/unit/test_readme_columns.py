"""README's column tables name every column carbontop writes (carbontop/results/schema.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbontop.results import schema

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("columns", ["GPU_LOG_COLUMNS", "EMISSIONS_COLUMNS", "TOTAL_SUMMARY_EXTRA"])
def test_every_column_is_documented(columns: str) -> None:
    missing = [c.name for c in getattr(schema, columns) if f"| `{c.name}` |" not in README]
    assert not missing, f"README lacks rows for {columns}: {missing}"
