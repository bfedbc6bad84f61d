"""Text generation with a decoder-only transformer built in code: energy per token, prefill and
decode measured apart.

The model has random weights (energy per token depends on the shapes, not on the values), a KV
cache, greedy decoding and no early stop, so every request does exactly the same work.

Counting (README, "Energy per token"): prefill processes ``prompt_tokens`` per sequence and yields
the first generated token; decode yields the remaining ``new_tokens - 1``; a request generates
``new_tokens x batch`` tokens. Each ``step()`` is one piece of a request (the prefill, or one decode
token), so the measured window ends between pieces: a request still running at the window's end is
not counted and its time goes to "other", with the time between requests. A finished request
reports its sub-phase edges (prefill, decode, other), each stamped where it happened, and its
tokens per sub-phase, through the same calls a user's program makes
(:mod:`carbontop.progress`); CUDA work is synchronised at every sub-phase edge so the stamps are
true.

``mode=prefill`` runs prefills only (unit: prompt token), ``mode=decode`` decode steps only at a
fixed KV length ``decode_kv`` (unit: generated token): whole windows of one kind of work, the method
that is right whatever the sampling.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from carbontop.clock import session_time_s
from carbontop.errors import BadInput
from carbontop.workload import Step, Workload
from carbontop.workload_torch import dtype_name, pick_device, torch_info

if TYPE_CHECKING:
    import torch
    from torch import nn

MODES = ("generate", "prefill", "decode")
PRESET = "preset"  # a size param's default: the preset's value
TTFT_KEPT = 1024  # the median time to first token is taken over the last this many requests


@dataclass(frozen=True)
class Shape:
    layers: int
    d_model: int
    heads: int
    vocab: int
    context: int  # length of the position table: prompt + generated tokens must fit
    prompt_tokens: int
    new_tokens: int
    batch: int

    @property
    def parameters(self) -> int:
        """Embeddings, positions, per layer 4 d^2 attention + 8 d^2 MLP (+ norms, biases), head."""
        d = self.d_model
        per_layer = 12 * d * d + 13 * d
        return self.vocab * d * 2 + self.context * d + self.layers * per_layer + 2 * d

    def kv_cache_elements(self) -> int:
        return 2 * self.layers * self.batch * self.context * self.d_model


PRESETS: dict[str, Shape] = {
    # a few seconds per request on a 2-core CPU in fp32
    "small": Shape(layers=4, d_model=384, heads=6, vocab=8192, context=512, prompt_tokens=256,
                   new_tokens=128, batch=1),
    # GPT-2-small-like, ~125 M parameters: 250 MB in fp16, fits a 4 GB Jetson Nano with room
    "nano": Shape(layers=12, d_model=768, heads=12, vocab=32000, context=1024, prompt_tokens=256,
                  new_tokens=128, batch=1),
    # ~1.1 B parameters (2.2 GB in fp16): Orin-class boards
    "orin": Shape(layers=18, d_model=2048, heads=16, vocab=32000, context=2048, prompt_tokens=512,
                  new_tokens=256, batch=1),
}

_SIZE_KEYS = ("layers", "d_model", "heads", "vocab", "context", "prompt_tokens", "new_tokens",
              "batch")


def resolve_shape(params: dict[str, object]) -> Shape:
    """The preset's shape with every non-zero size param over it; BadInput for a bad one."""
    preset = str(params.get("preset", "small")).strip().lower()
    if preset not in PRESETS:
        raise BadInput(f"preset={preset!r} is unknown: use one of {', '.join(PRESETS)}")
    base = PRESETS[preset]
    sizes: dict[str, int] = {}
    for key in _SIZE_KEYS:
        text = str(params.get(key, PRESET)).strip().lower()
        if text in ("", PRESET):
            sizes[key] = getattr(base, key)
            continue
        try:
            value = int(text)
        except ValueError:
            raise BadInput(f"{key}={text!r} must be a whole number, e.g. {key}="
                           f"{getattr(base, key)}") from None
        if value < 1:
            raise BadInput(f"{key}={value} must be at least 1 (the {preset} preset has "
                           f"{key}={getattr(base, key)})")
        sizes[key] = value
    shape = Shape(**sizes)
    if shape.d_model % shape.heads:
        raise BadInput(f"heads={shape.heads} does not divide d_model={shape.d_model}: pick heads "
                       f"among the divisors of d_model (e.g. heads={_divisor(shape.d_model)})")
    if shape.prompt_tokens + shape.new_tokens > shape.context:
        raise BadInput(f"prompt_tokens + new_tokens = {shape.prompt_tokens + shape.new_tokens} "
                       f"exceeds the position table (context={shape.context}): raise context or "
                       "generate fewer tokens")
    return shape


def _divisor(d_model: int) -> int:
    return next(h for h in (16, 12, 8, 6, 4, 2, 1) if d_model % h == 0)


def check_params(params: dict[str, object]) -> Shape:
    """Everything that can be checked without torch: the shape, the mode, decode_kv, dtype names.

    Called by ``carbontop run`` before anything starts (a bad param: one line, exit 2) and again
    by ``setup()`` in the child, before the model is built.
    """
    shape = resolve_shape(params)
    mode = str(params.get("mode", "generate")).strip().lower()
    if mode not in MODES:
        raise BadInput(f"mode={mode!r} is unknown: use generate, prefill or decode")
    kv = int(str(params.get("decode_kv", 0)))
    if mode == "decode" and not 0 <= kv < shape.context:
        raise BadInput(f"decode_kv={kv} must be below the position table (context="
                       f"{shape.context}): the decoded token's position is decode_kv")
    dtype = str(params.get("dtype", "auto")).strip().lower()
    if dtype not in ("auto", "float32", "fp32", "float16", "fp16", "half", "bfloat16", "bf16"):
        raise BadInput(f"dtype={dtype!r} is not supported: use auto, float32, float16 or bfloat16")
    device = str(params.get("device", "auto")).strip().lower()
    if device == "cpu" and dtype in ("float16", "fp16", "half"):
        raise BadInput("dtype=float16 on the CPU is not supported (slow, and not what a CPU "
                       "runs): use dtype=float32 or bfloat16, or device=cuda")
    return shape


def build_decoder(shape: Shape) -> nn.Module:
    """Token + position embeddings, pre-norm decoder blocks with a KV cache, a vocabulary head."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    heads, d = shape.heads, shape.d_model
    head_dim = d // heads

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1 = nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d)
            self.proj = nn.Linear(d, d)
            self.norm2 = nn.LayerNorm(d)
            self.up = nn.Linear(d, 4 * d)
            self.down = nn.Linear(4 * d, d)

        def forward(self, x: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                    pos: int) -> torch.Tensor:
            b, n, _ = x.shape
            q, k, v = self.qkv(self.norm1(x)).split(d, dim=-1)
            q = q.view(b, n, heads, head_dim).transpose(1, 2)
            k_cache[:, :, pos:pos + n] = k.view(b, n, heads, head_dim).transpose(1, 2)
            v_cache[:, :, pos:pos + n] = v.view(b, n, heads, head_dim).transpose(1, 2)
            keys, values = k_cache[:, :, :pos + n], v_cache[:, :, :pos + n]
            # causal over the prompt; a single decoded token sees the whole cache
            attn = F.scaled_dot_product_attention(q, keys, values, is_causal=n > 1 and pos == 0)
            x = x + self.proj(attn.transpose(1, 2).reshape(b, n, d))
            return x + self.down(F.gelu(self.up(self.norm2(x))))

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(shape.vocab, d)
            self.positions = nn.Embedding(shape.context, d)
            self.blocks = nn.ModuleList(Block() for _ in range(shape.layers))
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, shape.vocab, bias=False)

        def forward(self, ids: torch.Tensor, cache: list[tuple[torch.Tensor, torch.Tensor]],
                    pos: int) -> torch.Tensor:
            """Logits of the last position; the cache holds keys/values of positions < pos."""
            where = torch.arange(pos, pos + ids.shape[1], device=ids.device)
            x = self.tokens(ids) + self.positions(where)
            for block, (k_cache, v_cache) in zip(self.blocks, cache):  # one cache per block
                x = block(x, k_cache, v_cache, pos)
            out: torch.Tensor = self.head(self.norm(x[:, -1]))
            return out

    return Decoder()


class LlmGenerate(Workload):
    """Greedy generation with a KV cache; J per generated token, prefill and decode apart."""

    name = "llm-generate"
    description = "Decoder-only LM generation with a KV cache (random weights); unit token"
    unit = "token"
    # the sizes default to the preset's ("preset", literal: carbontop list reads them); a number
    # replaces it
    defaults = {
        "preset": "small",
        "mode": "generate",
        "layers": "preset",
        "d_model": "preset",
        "heads": "preset",
        "vocab": "preset",
        "context": "preset",
        "prompt_tokens": "preset",
        "new_tokens": "preset",
        "batch": "preset",
        "decode_kv": 0,
        "dtype": "auto",
        "device": "auto",
    }

    @classmethod
    def check_params(cls, params: Mapping[str, object]) -> None:
        check_params(dict(params))

    def setup(self) -> None:
        import torch

        self.shape = check_params(self.params)
        self.mode = self.str_param("mode").strip().lower()
        self.device = pick_device(self.str_param("device"))
        self.dtype = self._pick_dtype(self.device)
        self._check_memory()
        torch.manual_seed(0)
        shape = self.shape
        model = build_decoder(shape).eval()
        self.model: nn.Module | None = model.to(device=self.device, dtype=self.dtype)
        self.n_parameters = sum(p.numel() for p in model.parameters())
        head_dim = shape.d_model // shape.heads
        cache_shape = (shape.batch, shape.heads, shape.context, head_dim)
        self.cache = [(torch.zeros(cache_shape, device=self.device, dtype=self.dtype),
                       torch.zeros(cache_shape, device=self.device, dtype=self.dtype))
                      for _ in range(shape.layers)]
        self.prompt = torch.randint(0, shape.vocab, (shape.batch, shape.prompt_tokens),
                                    device=self.device)
        self.decode_kv = self.int_param("decode_kv")
        self.next_ids = torch.zeros((shape.batch, 1), dtype=torch.long, device=self.device)
        self._request: _Request | None = None
        self.ttft_s: deque[float] = deque(maxlen=TTFT_KEPT)
        self.requests = 0

    def _pick_dtype(self, device: torch.device) -> torch.dtype:
        """fp16 on CUDA, bf16 only where the GPU supports it, fp32 on the CPU."""
        import torch

        text = self.str_param("dtype").strip().lower()
        if text in ("", "auto"):
            return torch.float16 if device.type == "cuda" else torch.float32
        if text in ("float16", "fp16", "half"):
            if device.type != "cuda":
                raise BadInput("dtype=float16 on the CPU is not supported: use dtype=float32")
            return torch.float16
        if text in ("bfloat16", "bf16"):
            if device.type == "cuda" and not torch.cuda.is_bf16_supported():
                raise BadInput(f"this GPU ({torch.cuda.get_device_name(device)}) has no bfloat16:"
                               " use dtype=float16")
            return torch.bfloat16
        return torch.float32

    def _check_memory(self) -> None:
        """A preset too large for the device: one line before anything is allocated."""
        import torch

        bytes_per = torch.tensor([], dtype=self.dtype).element_size()
        need = (self.shape.parameters + self.shape.kv_cache_elements()) * bytes_per
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
        else:
            import psutil

            free = psutil.virtual_memory().available
        if need > 0.9 * free:
            millions = self.shape.parameters / 1e6
            raise BadInput(f"the model needs {need / 2**30:.2f} GiB ({millions:.0f} M parameters "
                           f"+ KV cache) but {self.device} has {free / 2**30:.2f} GiB free: pick "
                           "a smaller preset or fewer layers / a smaller d_model")

    # -- the work ------------------------------------------------------------------------------

    def step(self) -> Step:
        import torch

        assert self.model is not None, "step() after teardown()"
        with torch.inference_mode():
            if self.mode == "prefill":
                self._logits = self.model(self.prompt, self.cache, 0)
                return Step(units=self.shape.prompt_tokens * self.shape.batch)
            if self.mode == "decode":
                self._logits = self.model(self.next_ids, self.cache, self.decode_kv)
                return Step(units=self.shape.batch)
            return self._generate_piece()

    def _generate_piece(self) -> Step:
        """The prefill of a new request, or its next decode token; the request's tokens are
        counted (per sub-phase) when it ends."""
        shape = self.shape
        assert self.model is not None
        request = self._request
        if request is None:
            self.synchronize()
            start = session_time_s()
            logits = self.model(self.prompt, self.cache, 0)
            self.next_ids = logits.argmax(dim=-1, keepdim=True)
            self.synchronize()  # the first token exists: the prefill edge is true
            request = self._request = _Request(start, session_time_s(), shape.prompt_tokens)
        else:
            logits = self.model(self.next_ids, self.cache, request.position)
            self.next_ids = logits.argmax(dim=-1, keepdim=True)
            request.position += 1
        if request.position - shape.prompt_tokens < shape.new_tokens - 1:
            return Step(units=0)
        self.synchronize()
        end = session_time_s()
        self._request = None
        window = self.progress.window_start_s
        if window is None or request.start_s < window:
            return Step(units=0)  # warm-up, or begun before the window: not the window's work
        self.requests += 1
        self.ttft_s.append(request.first_token_s - request.start_s)
        # The sub-phases of a finished request, each at its own stamp (an unfinished one never
        # gets here: its time stays in "other").
        self.progress.subphase("prefill", t_s=request.start_s)
        self.progress.units(shape.batch)
        self.progress.subphase("decode", t_s=request.first_token_s)
        self.progress.units((shape.new_tokens - 1) * shape.batch)
        self.progress.subphase(None, t_s=end)
        self.progress.results(self.results())
        return Step(units=0)

    def teardown(self) -> None:
        self.model = None
        self.cache = []

    def info(self) -> dict[str, str]:
        shape = self.shape
        out = {
            **super().info(),
            **{key: str(getattr(shape, key)) for key in _SIZE_KEYS},
            "mode": self.mode,
            "dtype": dtype_name(self.dtype),
            "parameters": str(self.n_parameters),
            # what a unit is in this mode (the child reports units under this name)
            "unit": "prompt token" if self.mode == "prefill" else "token",
        }
        if self.mode == "decode":
            out["decode_kv"] = str(self.decode_kv)
        else:
            out.pop("decode_kv", None)
        out.update(torch_info(self.device))
        return out

    def results(self) -> dict[str, str]:
        """Figures known only at the end: requests done and the median time to first token."""
        if self.mode != "generate" or not self.ttft_s:
            return {}
        return {"requests": str(self.requests),
                "ttft_median_s": f"{statistics.median(self.ttft_s):.6f}"}


@dataclass
class _Request:
    start_s: float  # session clock: the prefill started
    first_token_s: float  # the prefill ended: the first token is there
    position: int  # the next token's position (KV length)


def describe_counting(shape: Shape) -> dict[str, Any]:
    """Tokens per request by the counting rule (tests and README)."""
    return {"prefill": shape.batch, "decode": (shape.new_tokens - 1) * shape.batch,
            "generated": shape.new_tokens * shape.batch,
            "prompt": shape.prompt_tokens * shape.batch}
