"""Image classification inference with a ResNet-style network built in code (no download)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carbontop.workload import Step, Workload
from carbontop.workload_torch import dtype_name, pick_device, pick_dtype, pick_size

if TYPE_CHECKING:
    import torch
    from torch import nn


def build_resnet(width: int, blocks: int, classes: int = 1000) -> nn.Module:
    """A small ResNet: conv stem, four stages of basic residual blocks (BN, ReLU), pool, linear."""
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.shortcut: nn.Module = nn.Identity()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            result: torch.Tensor = self.relu(out + self.shortcut(x))
            return result

    layers: list[nn.Module] = [
        nn.Conv2d(3, width, 3, 2, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    ]
    cin = width
    for stage, cout in enumerate((width, width * 2, width * 4, width * 8)):
        for index in range(max(1, blocks)):
            stride = 2 if index == 0 and stage > 0 else 1
            layers.append(BasicBlock(cin, cout, stride))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


class CnnInference(Workload):
    """ResNet-style inference on synthetic images; float16 on CUDA, float32 on the CPU."""

    name = "cnn-inference"
    description = "ResNet-style CNN inference on synthetic images; unit image"
    unit = "image"
    requires = ("torch",)
    # 0 = auto: batch 64 / 8, image 224 / 64, width 64 / 16 (CUDA / CPU)
    defaults = {
        "batch": 0,
        "image_size": 0,
        "width": 0,
        "blocks": 2,
        "dtype": "auto",
        "device": "auto",
    }

    def setup(self) -> None:
        import torch

        self.device = pick_device(self.str_param("device"))
        self.dtype = pick_dtype(self.str_param("dtype"), self.device, half_on_cuda=True)
        self.batch = pick_size(self.int_param("batch"), cuda=64, cpu=8, device=self.device)
        self.image_size = pick_size(
            self.int_param("image_size"), cuda=224, cpu=64, device=self.device
        )
        self.width = pick_size(self.int_param("width"), cuda=64, cpu=16, device=self.device)
        torch.manual_seed(0)
        model = build_resnet(self.width, self.int_param("blocks")).eval()
        self.model: nn.Module | None = model.to(device=self.device, dtype=self.dtype)
        self.images = torch.randn(
            self.batch, 3, self.image_size, self.image_size, device=self.device, dtype=self.dtype
        )
        if self.device.type == "cuda":  # the layout cuDNN prefers for fp16 convolutions
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            self.images = self.images.contiguous(memory_format=torch.channels_last)
        self.n_parameters = sum(p.numel() for p in model.parameters())

    def step(self) -> Step:
        import torch

        assert self.model is not None, "step() after teardown()"
        with torch.inference_mode():
            self.model(self.images)
        return Step(units=self.batch)

    def teardown(self) -> None:
        self.model = None

    def info(self) -> dict[str, str]:
        return {
            **super().info(),
            "batch": str(self.batch),
            "image_size": str(self.image_size),
            "width": str(self.width),
            "dtype": dtype_name(self.dtype),
            "parameters": str(self.n_parameters),
        }
