"""The stress tests of the original script: GPU matmul, CPU numpy dot, RAM blocks, and all three."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from carbontop.workload import Step, Workload
from carbontop.workload_torch import pick_device, pick_size

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

MIB = 1024 * 1024


class GpuStress(Workload):
    """Repeated NxN float32 matmul, ReLU and sum, synchronized each iteration (the original)."""

    name = "gpu-stress"
    description = "NxN float32 matmul + ReLU + sum, synchronized each iteration"
    unit = "iteration"
    requires = ("torch",)
    defaults = {"size": 0, "device": "auto"}  # size 0: 4096 on CUDA, 512 on CPU

    def setup(self) -> None:
        import torch

        self.device = pick_device(self.str_param("device"))
        self.size = pick_size(self.int_param("size"), cuda=4096, cpu=512, device=self.device)
        shape = (self.size, self.size)
        self.tensors: tuple[torch.Tensor, torch.Tensor] | None = (
            torch.randn(shape, device=self.device, dtype=torch.float32),
            torch.randn(shape, device=self.device, dtype=torch.float32),
        )
        self.flops_per_step = 2.0 * self.size**3

    def step(self) -> Step:
        import torch

        assert self.tensors is not None, "step() after teardown()"
        a, b = self.tensors
        torch.relu(a @ b).sum()
        self.synchronize()
        return Step(units=1, flops=self.flops_per_step)

    def teardown(self) -> None:
        self.tensors = None

    def info(self) -> dict[str, str]:
        return {**super().info(), "size": str(self.size), "dtype": "float32"}


class CpuStress(Workload):
    """numpy NxN randn, dot, maximum with 0, sum, repeated (the original; CPU-friendly size)."""

    name = "cpu-stress"
    description = "numpy NxN randn + dot + max(0) + sum on the CPU"
    unit = "iteration"
    requires = ("numpy",)
    defaults = {"size": 1024}

    def setup(self) -> None:
        import numpy as np

        self.size = max(1, self.int_param("size"))
        self.rng = np.random.default_rng(0)

    def step(self) -> Step:
        import numpy as np

        n = self.size
        a = self.rng.standard_normal((n, n))
        b = self.rng.standard_normal((n, n))
        np.maximum(np.dot(a, b), 0).sum()
        return Step(units=1, flops=2.0 * n**3)

    def info(self) -> dict[str, str]:
        return {**super().info(), "device": "cpu", "dtype": "float64", "library": "numpy"}


class RamStress(Workload):
    """Allocates and touches blocks up to a cap, releases them, repeats.

    The original took 256 MB every 0.1 s up to 2 GB; here the cap is also at most ``max_share`` of
    the memory available at start, so the machine never swaps.
    """

    name = "ram-stress"
    description = "Allocates and touches RAM blocks up to a safe cap, releases, repeats"
    unit = "MB"
    requires = ("numpy", "psutil")
    defaults = {"block_mb": 256, "max_mb": 2048, "interval_s": 0.1, "max_share": 0.25}

    def setup(self) -> None:
        import psutil

        self.block_mb = max(1, self.int_param("block_mb"))
        available_mb = psutil.virtual_memory().available / MIB
        share = min(max(self.float_param("max_share"), 0.0), 0.9)
        self.cap_mb = max(self.block_mb, int(min(self.int_param("max_mb"), share * available_mb)))
        self.interval_s = max(0.0, self.float_param("interval_s"))
        self.blocks: list[Any] = []
        log.info("ram-stress: %d MB blocks up to %d MB", self.block_mb, self.cap_mb)

    def step(self) -> Step:
        import numpy as np

        start = time.monotonic()
        if (len(self.blocks) + 1) * self.block_mb > self.cap_mb:
            self.blocks.clear()
        # np.ones writes every page, so the block is really resident (np.empty/zeros would not be).
        self.blocks.append(np.ones(self.block_mb * MIB, dtype=np.uint8))
        rest = self.interval_s - (time.monotonic() - start)
        if rest > 0:
            time.sleep(rest)
        return Step(units=self.block_mb)

    def teardown(self) -> None:
        self.blocks = []

    def info(self) -> dict[str, str]:
        return {**super().info(), "cap_mb": str(self.cap_mb), "device": "cpu"}


class StressAll(Workload):
    """gpu-stress in the main loop with cpu-stress and ram-stress in background threads, as the
    original ran them. Units are gpu-stress iterations."""

    name = "stress-all"
    description = "gpu-stress + cpu-stress + ram-stress at once (units: GPU iterations)"
    unit = "iteration"
    requires = ("torch", "numpy", "psutil")
    defaults = {
        "size": 0,
        "device": "auto",
        "cpu_size": 1024,
        "block_mb": 256,
        "max_mb": 2048,
        "interval_s": 0.1,
        "max_share": 0.25,
    }

    def setup(self) -> None:
        self.gpu = GpuStress({"size": self.params["size"], "device": self.params["device"]})
        self.cpu = CpuStress({"size": self.params["cpu_size"]})
        ram_keys = ("block_mb", "max_mb", "interval_s", "max_share")
        self.ram = RamStress({key: self.params[key] for key in ram_keys})
        for part in (self.gpu, self.cpu, self.ram):
            part.setup()
        self.device = self.gpu.device
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def _background(self, part: Workload) -> None:
        try:
            while not self._stop.is_set():
                part.step()
        except BaseException as exc:  # handed to the main loop, which reports it
            self._errors.append(exc)

    def step(self) -> Step:
        if not self._threads:
            for part in (self.cpu, self.ram):
                thread = threading.Thread(
                    target=self._background, args=(part,), name=f"stress-{part.name}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        if self._errors:
            raise self._errors[0]
        return self.gpu.step()

    def teardown(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5.0)
        for part in (self.gpu, self.cpu, self.ram):
            part.teardown()

    def info(self) -> dict[str, str]:
        gpu = self.gpu.info()
        out = {**gpu, **super().info(), "size": gpu["size"]}  # our params win, but size resolved
        out["cpu_size"] = str(self.cpu.size)
        out["ram_cap_mb"] = str(self.ram.cap_mb)
        return out
