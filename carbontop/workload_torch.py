"""torch helpers for workloads: the device, the dtype, sizes per device, and device facts.

The one carbontop module that imports torch, and only inside its functions, which run in the
workload child (a workload's ``setup()``, ``synchronize()``, ``info()``). Importing this module
costs nothing; the monitor imports it with :mod:`carbontop.workload` and never calls it
(pyproject.toml's contracts name it as the one exception). Example::

    from carbontop.workload import Step, Workload
    from carbontop.workload_torch import pick_device

    class MyModel(Workload):
        defaults = {"device": "auto"}

        def setup(self) -> None:
            self.device = pick_device(self.str_param("device"))  # synchronize() then uses it
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from carbontop.errors import BadInput

if TYPE_CHECKING:
    import torch

    Device = torch.device
    """What ``Workload.device`` holds: a torch device, named here so that the plugin API's own
    module needs no torch, not even for its annotations."""


def dtype_name(dtype: object) -> str:
    """``float16`` for ``torch.float16`` (no ``str.removeprefix``: the child may run on 3.8)."""
    return str(dtype).rsplit(".", 1)[-1]


def pick_device(requested: str = "auto") -> torch.device:
    """``auto``: CUDA when ``torch.cuda.is_available()``, else CPU; otherwise the named device."""
    import torch

    text = requested.strip().lower()
    if text in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError as exc:
        raise BadInput(f"device={requested!r} is not a device: use auto, cpu or cuda[:N]") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BadInput(f"device={requested!r} but torch sees no CUDA GPU: use device=cpu or auto")
    return device


def pick_dtype(requested: str, device: torch.device, *, half_on_cuda: bool = False) -> torch.dtype:
    """``auto``: float16 on CUDA when ``half_on_cuda``, else float32; or a named dtype."""
    import torch

    names = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "float16": torch.float16,
        "fp16": torch.float16,
        "half": torch.float16,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float64": torch.float64,
        "fp64": torch.float64,
    }
    text = requested.strip().lower()
    if text in ("", "auto"):
        return torch.float16 if (half_on_cuda and device.type == "cuda") else torch.float32
    if text not in names:
        raise BadInput(
            f"dtype={requested!r} is not supported: use auto, float32, float16 or bfloat16"
        )
    return names[text]


def pick_size(requested: int, *, cuda: int, cpu: int, device: torch.device) -> int:
    """A size param where 0 means "auto": the CUDA or the CPU default."""
    if requested > 0:
        return requested
    return cuda if device.type == "cuda" else cpu


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (CUDA); nothing to wait for elsewhere."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def torch_info(device: torch.device) -> dict[str, str]:
    """Device facts for the summary: resolved device, GPU name, torch version, CPU threads."""
    import torch

    out = {"device": str(device), "torch": torch.__version__}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    else:
        out["torch_threads"] = str(torch.get_num_threads())
    return out
