"""Deprecated: the plugin API moved into carbontop. Plugins written against this module keep
working in this release, with a FutureWarning; it goes in the next one.

Write instead::

    from carbontop.workload import Step, Workload
    from carbontop.workload_torch import pick_device, pick_dtype, pick_size  # if you use them
"""

from __future__ import annotations

import warnings

from carbontop.workload import (
    LEGACY_MESSAGE,
    Progress,
    Step,
    Workload,
    coerce_param,
    resolve_params,
)
from carbontop.workload_torch import pick_device, pick_dtype, pick_size, torch_info

__all__ = [
    "Progress", "Step", "Workload", "coerce_param", "pick_device", "pick_dtype", "pick_size",
    "resolve_params", "torch_info",
]

# FutureWarning, not DeprecationWarning: Python shows it by default (it is for the people who run
# the code, here a plugin's author), where a DeprecationWarning outside __main__ is hidden.
# stacklevel 2: the line that imports this module (Python skips importlib's own frames).
warnings.warn(LEGACY_MESSAGE, FutureWarning, stacklevel=2)
