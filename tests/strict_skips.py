"""CI never passes silently without its strongest tests (a pytest plugin, loaded by conftest.py).

Some tests skip where the machine cannot run them: not root (the real jtop service, dropping to
an unprivileged user), no ``prometheus`` binary, no jetson-stats. On a developer's laptop those
skips are right. In CI they are not: ``.ci/run`` runs as root and installs Prometheus and
carbontop's dependencies itself, so such a skip there means the strongest tests silently did not
run. With ``CARBONTOP_STRICT_SKIPS=1`` (set by ``.ci/run``) and running as root, a skip whose
reason names one of those wants fails the test instead, with the reason. Skips for things a
machine may lack (an old Python, a GPU, an optional extra) stay skips with their reason.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

STRICT_ENV = "CARBONTOP_STRICT_SKIPS"

# The skip reasons that CI running as root must never see. Skip sites build their reasons from
# these (or contain them verbatim), so the text and the check cannot drift apart.
NEEDS_ROOT = "needs root"
NO_PROMETHEUS = "no prometheus binary"
NO_PROMTOOL = "no promtool"
NO_JETSON_STATS = "jetson-stats (jtop) is not installed"  # a dependency of carbontop
CI_REQUIRED = (NEEDS_ROOT, NO_PROMETHEUS, NO_PROMTOOL, NO_JETSON_STATS)


def strict() -> bool:
    """True when skips for want of root or of what .ci/run installs must fail."""
    return (os.environ.get(STRICT_ENV) == "1" and hasattr(os, "geteuid")
            and os.geteuid() == 0)


def skip_reason_of(report: pytest.TestReport) -> str | None:
    """The reason text of a skipped report (pytest keeps it as (path, line, "Skipped: why"))."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return None if longrepr is None else str(longrepr)


def ci_required(reason: str) -> bool:
    return any(marker in reason for marker in CI_REQUIRED)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]
                              ) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.skipped or not strict() or hasattr(report, "wasxfail"):
        return
    reason = skip_reason_of(report)
    if reason is None or not ci_required(reason):
        return
    report.outcome = "failed"
    report.longrepr = (f"{STRICT_ENV}=1 as root: this test must run here, but it was skipped "
                       f"({reason}); .ci/run runs as root and installs Prometheus and carbontop's "
                       "dependencies, so fix the environment instead of skipping")
