"""Training steps of a small network on synthetic data: forward, loss, backward, optimizer step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carbontop.errors import BadInput
from carbontop.workload import Step, Workload
from carbontop.workload_torch import pick_device, pick_size

if TYPE_CHECKING:
    import torch
    from torch import nn


def build_mlp(features: int, hidden: int, layers: int, classes: int) -> nn.Module:
    """Linear + ReLU blocks ending in a classifier layer."""
    from torch import nn

    modules: list[nn.Module] = []
    width = features
    for _ in range(max(1, layers)):
        modules += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    modules.append(nn.Linear(width, classes))
    return nn.Sequential(*modules)


class Training(Workload):
    """Trains an MLP classifier on one fixed synthetic batch (float32; the data never changes, so
    only compute is measured, not data loading).

    ``flops`` counts the linear layers: 2 per multiply-add forward, twice that backward.
    """

    name = "training"
    description = "MLP training steps (forward, loss, backward, optimizer) on synthetic data"
    unit = "sample"
    requires = ("torch",)
    # 0 = auto: batch 512 / 64, features 1024 / 256, hidden 4096 / 512 (CUDA / CPU)
    defaults = {
        "batch": 0,
        "features": 0,
        "hidden": 0,
        "layers": 2,
        "classes": 10,
        "optimizer": "adam",
        "lr": 0.001,
        "device": "auto",
    }

    def setup(self) -> None:
        import torch
        from torch import nn

        self.device = pick_device(self.str_param("device"))
        self.batch = pick_size(self.int_param("batch"), cuda=512, cpu=64, device=self.device)
        self.features = pick_size(
            self.int_param("features"), cuda=1024, cpu=256, device=self.device
        )
        self.hidden = pick_size(self.int_param("hidden"), cuda=4096, cpu=512, device=self.device)
        classes = max(2, self.int_param("classes"))
        torch.manual_seed(0)
        model = build_mlp(self.features, self.hidden, self.int_param("layers"), classes)
        self.model: nn.Module | None = model.to(self.device).train()
        optimizer = self.str_param("optimizer").lower()
        lr = self.float_param("lr")
        if optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        elif optimizer == "sgd":
            self.optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        else:
            raise BadInput(f"optimizer={optimizer!r} is not supported: use adam or sgd")
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.inputs = torch.randn(self.batch, self.features, device=self.device)
        self.labels = torch.randint(0, classes, (self.batch,), device=self.device)
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        self.flops_per_step = (
            6.0 * sum(m.in_features * m.out_features for m in linears) * self.batch
        )
        self.last_loss: torch.Tensor | None = None

    def step(self) -> Step:
        assert self.model is not None, "step() after teardown()"
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(self.inputs), self.labels)
        loss.backward()
        self.optimizer.step()
        self.last_loss = loss.detach()  # no .item(): that would synchronize every step on CUDA
        return Step(units=self.batch, flops=self.flops_per_step)

    def teardown(self) -> None:
        self.model = None

    def info(self) -> dict[str, str]:
        return {
            **super().info(),
            "batch": str(self.batch),
            "features": str(self.features),
            "hidden": str(self.hidden),
            "dtype": "float32",
        }
