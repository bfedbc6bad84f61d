"""Language-model style inference with a small transformer encoder built in code (no download)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carbontop.workload import Step, Workload
from carbontop.workload_torch import dtype_name, pick_device, pick_dtype, pick_size

if TYPE_CHECKING:
    import torch
    from torch import nn


def build_transformer(vocab: int, d_model: int, heads: int, layers: int, seq_len: int) -> nn.Module:
    """Token + position embedding, ``nn.TransformerEncoder``, a linear head over the vocabulary."""
    import torch
    from torch import nn

    class TinyLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(vocab, d_model)
            self.positions = nn.Embedding(seq_len, d_model)
            layer = nn.TransformerEncoderLayer(
                d_model, heads, dim_feedforward=4 * d_model, dropout=0.0, batch_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.head = nn.Linear(d_model, vocab)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            where = torch.arange(ids.shape[1], device=ids.device)
            hidden = self.encoder(self.tokens(ids) + self.positions(where))
            out: torch.Tensor = self.head(hidden)
            return out

    return TinyLM()


class TransformerInference(Workload):
    """Forward passes of a small transformer over synthetic token ids; float16 on CUDA.

    ``flops`` is the usual analytic estimate: 2 x non-embedding parameters x tokens, plus attention.
    """

    name = "transformer-inference"
    description = "Small transformer encoder inference on synthetic tokens; unit token"
    unit = "token"
    requires = ("torch",)
    # 0 = auto: batch 32 / 4, seq_len 256 / 64, d_model 512 / 128, layers 6 / 2 (CUDA / CPU)
    defaults = {
        "batch": 0,
        "seq_len": 0,
        "d_model": 0,
        "layers": 0,
        "heads": 4,
        "vocab": 1000,
        "dtype": "auto",
        "device": "auto",
    }

    def setup(self) -> None:
        import torch

        self.device = pick_device(self.str_param("device"))
        self.dtype = pick_dtype(self.str_param("dtype"), self.device, half_on_cuda=True)
        self.batch = pick_size(self.int_param("batch"), cuda=32, cpu=4, device=self.device)
        self.seq_len = pick_size(self.int_param("seq_len"), cuda=256, cpu=64, device=self.device)
        self.d_model = pick_size(self.int_param("d_model"), cuda=512, cpu=128, device=self.device)
        self.layers = pick_size(self.int_param("layers"), cuda=6, cpu=2, device=self.device)
        self.vocab = max(2, self.int_param("vocab"))
        heads = max(1, self.int_param("heads"))
        torch.manual_seed(0)
        model = build_transformer(self.vocab, self.d_model, heads, self.layers, self.seq_len).eval()
        self.model: nn.Module | None = model.to(device=self.device, dtype=self.dtype)
        self.ids = torch.randint(0, self.vocab, (self.batch, self.seq_len), device=self.device)
        embedding = self.vocab * self.d_model + self.seq_len * self.d_model
        self.n_parameters = sum(p.numel() for p in model.parameters())
        tokens = self.batch * self.seq_len
        attention = 4.0 * self.layers * self.seq_len**2 * self.d_model * self.batch
        self.flops_per_step = 2.0 * (self.n_parameters - embedding) * tokens + attention

    def step(self) -> Step:
        import torch

        assert self.model is not None, "step() after teardown()"
        with torch.inference_mode():
            self.model(self.ids)
        return Step(units=self.batch * self.seq_len, flops=self.flops_per_step)

    def teardown(self) -> None:
        self.model = None

    def info(self) -> dict[str, str]:
        return {
            **super().info(),
            "batch": str(self.batch),
            "seq_len": str(self.seq_len),
            "d_model": str(self.d_model),
            "layers": str(self.layers),
            "dtype": dtype_name(self.dtype),
            "parameters": str(self.n_parameters),
            "flops": "analytic estimate",
        }
