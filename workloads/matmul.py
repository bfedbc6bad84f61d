"""GEMM throughput: GFLOP per joule, the figure accelerators are compared by."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carbontop.workload import Step, Workload
from carbontop.workload_torch import dtype_name, pick_device, pick_dtype, pick_size

if TYPE_CHECKING:
    import torch


class Matmul(Workload):
    """C = A @ B on square NxN matrices, float16 on CUDA and float32 on the CPU by default.

    Each step is one GEMM of 2*N^3 floating point operations; the unit is the GFLOP, so the session
    shows GFLOP/s and J/GFLOP (and GFLOP/J from the flops).
    """

    name = "matmul"
    description = "Square GEMM (fp16 on CUDA, fp32 on CPU); unit GFLOP"
    unit = "GFLOP"
    requires = ("torch",)
    defaults = {"size": 0, "dtype": "auto", "device": "auto"}  # size 0: 4096 on CUDA, 1024 on CPU

    def setup(self) -> None:
        import torch

        self.device = pick_device(self.str_param("device"))
        self.dtype = pick_dtype(self.str_param("dtype"), self.device, half_on_cuda=True)
        self.size = pick_size(self.int_param("size"), cuda=4096, cpu=1024, device=self.device)
        shape = (self.size, self.size)
        self.tensors: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = (
            torch.randn(shape, device=self.device, dtype=self.dtype),
            torch.randn(shape, device=self.device, dtype=self.dtype),
            torch.empty(shape, device=self.device, dtype=self.dtype),
        )
        self.flops_per_step = 2.0 * self.size**3

    def step(self) -> Step:
        import torch

        assert self.tensors is not None, "step() after teardown()"
        a, b, c = self.tensors
        torch.matmul(a, b, out=c)
        return Step(units=self.flops_per_step / 1e9, flops=self.flops_per_step)

    def teardown(self) -> None:
        self.tensors = None

    def info(self) -> dict[str, str]:
        dtype = dtype_name(self.dtype)
        return {**super().info(), "size": str(self.size), "dtype": dtype}
