"""The power sources by name (``--gpu-source``): the one list that the settings, the command
line, ``auto`` (:mod:`carbontop.sources.detect`) and the dashboard read.

A new source is added here (its name, its label, and its place in :data:`AUTO_ORDER` if ``auto``
should try it) and in ``detect.OPENERS``; a test checks that the two agree.
"""

from __future__ import annotations

AUTO = "auto"  # not a source: the first of AUTO_ORDER that really answers

# Every source, with how the dashboard labels it.
SOURCE_LABELS: dict[str, str] = {
    "jtop": "jtop",
    "sysfs": "sysfs",
    "tegrastats": "tegrastats",
    "nvml": "NVML",
    "sim": "sim",
    "none": "no GPU sensor",
}
SOURCE_NAMES: tuple[str, ...] = tuple(SOURCE_LABELS)
GPU_SOURCES: tuple[str, ...] = (AUTO, *SOURCE_NAMES)  # what --gpu-source accepts

# The order in which ``auto`` probes the sources, most specific first (`auto`, `carbontop
# detect` and the tests read it): never `sim`.
AUTO_ORDER: tuple[str, ...] = ("jtop", "sysfs", "tegrastats", "nvml")
# What ``auto`` opens when no source of AUTO_ORDER answers: no GPU figure, CPU and RAM only.
AUTO_FALLBACK = "none"
