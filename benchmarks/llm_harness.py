"""Workload harness for ``llm-generate``: generated tokens/s through the child's measuring loop vs
a bare generation loop of the same model.

One process, the same model, KV cache and prompt. Harness side: the ``llm-generate`` workload
driven by the child's own loop (``workloads.child.Runner``: one ``step()`` per prefill or decode
token, the signal wrapper, a clock read per step, a ``units`` event every 0.25 s and, per finished
request, its three sub-phase edges, its units and its results, all written to ``/dev/null`` exactly
as to carbontop's pipe). Bare side: the model called in plain ``for`` loops (prefill, argmax, then
``new_tokens - 1`` decode calls with argmax), as many requests as last one block. Every block ends
with its last request whole, so both sides count finished requests only. Blocks alternate (AB, BA,
...) after a warm-up; each pair's ratio is harness / bare, in tokens per wall-clock second and in
tokens per CPU second of this process (the second barely moves when other programs take a core,
which on a shared 2-core machine halves the first).
Run: ``python -m benchmarks.llm_harness [--quick] [--pairs N] [--threads N] [--param key=value]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from benchmarks._common import (
    CpuSampler,
    machine_info,
    markdown_table,
    save_csv,
    save_json,
    stats,
)

TARGET_RATIO = 0.95
QUIET_CORES = 0.15  # a pair is quiet when other programs used less than this meanwhile
DEFAULT_PARAMS = {"preset": "small", "device": "cpu"}  # the CPU default: 256 + 128 tokens


def run(quick: bool = False, pairs: int | None = None, block_s: float | None = None,
        params: dict[str, str] | None = None, threads: int | None = None) -> dict[str, Any]:
    import torch

    if threads:
        torch.set_num_threads(threads)

    from carbontop.child.loop import HookProgress, WorkloadLoop
    from carbontop.child.phases import Phases
    from carbontop.child.signals import Signals
    from carbontop.child.writer import EventWriter
    from carbontop.model import Phase
    from workloads.llm import LlmGenerate

    pairs = pairs or (3 if quick else 40)
    block_s = block_s or (0.5 if quick else 1.0)
    chosen = {**DEFAULT_PARAMS, **(params or {}), "mode": "generate", "warmup_s": 0.0}
    workload = LlmGenerate(chosen)
    null = os.open(os.devnull, os.O_WRONLY)
    phases = Phases(EventWriter(null, unit=LlmGenerate.unit))
    loop = WorkloadLoop(phases, Signals(), duration_s=block_s)
    workload.progress = HookProgress(phases)
    workload.setup()
    shape = workload.shape
    model = workload.model
    assert model is not None
    tokens_per_request = shape.new_tokens * shape.batch

    def harness_block() -> tuple[float, float]:
        """Tokens per wall-clock second and per CPU second."""
        phases.enter(Phase.MEASURING)
        done = workload.requests
        t0, c0 = time.perf_counter(), time.process_time()
        loop.steps(workload, block_s, at_least_one=True)
        while workload._request is not None:  # the last request whole, one step per call
            loop.steps(workload, 0.0, at_least_one=True)
        workload.synchronize()
        phases.report_units()
        tokens = (workload.requests - done) * tokens_per_request
        return (tokens / (time.perf_counter() - t0), tokens / (time.process_time() - c0))

    def bare_block(n: int) -> tuple[float, float]:
        cache, prompt, first = workload.cache, workload.prompt, shape.prompt_tokens
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            for _ in range(n):
                ids = model(prompt, cache, 0).argmax(dim=-1, keepdim=True)
                for pos in range(first, first + shape.new_tokens - 1):
                    ids = model(ids, cache, pos).argmax(dim=-1, keepdim=True)
        workload.synchronize()
        tokens = n * tokens_per_request
        return (tokens / (time.perf_counter() - t0), tokens / (time.process_time() - c0))

    # warm-up (both paths); the bare loop's length for one block from its quickest request, as
    # the harness block ends after block_s plus the rest of its last request
    harness_block()
    fastest = bare_block(1)[0]
    end = time.monotonic() + (0.5 if quick else 3.0)
    while time.monotonic() < end:
        fastest = max(fastest, bare_block(1)[0])
    n_bare = max(1, round(block_s * fastest / tokens_per_request + 0.5))
    raw: list[dict[str, Any]] = []
    sampler = CpuSampler(os.getpid())
    try:
        for i in range(pairs):
            order = ("harness", "bare") if i % 2 == 0 else ("bare", "harness")
            got: dict[str, tuple[float, float]] = {}
            t_start = time.time()
            for side in order:
                got[side] = harness_block() if side == "harness" else bare_block(n_bare)
            foreign, _ = sampler.cores(t_start, time.time())
            ratio = got["harness"][0] / got["bare"][0]
            cpu_ratio = got["harness"][1] / got["bare"][1]
            raw.append({"pair": i, "order": "/".join(order),
                        "harness_tokens_s": got["harness"][0], "bare_tokens_s": got["bare"][0],
                        "ratio": ratio, "harness_tokens_cpu_s": got["harness"][1],
                        "bare_tokens_cpu_s": got["bare"][1], "cpu_ratio": cpu_ratio,
                        "foreign_cores": foreign,
                        "quiet": foreign is not None and foreign < QUIET_CORES,
                        "loadavg_1min": os.getloadavg()[0]})
            print(f"  pair {i}: harness {got['harness'][0]:.1f}  bare {got['bare'][0]:.1f} "
                  f"tokens/s  ratio {ratio:.3f}  per CPU s {cpu_ratio:.3f}  others used "
                  f"{foreign} cores", file=sys.stderr, flush=True)
    finally:
        sampler.stop()
        workload.teardown()
        os.close(null)
    quiet = [r["ratio"] for r in raw if r["quiet"]]
    extra = (f" --threads {threads}" if threads else "") + "".join(
        f" --param {k}={v}" for k, v in (params or {}).items())
    return {"benchmark": "llm_harness", "machine": machine_info(),
            "command": "python -m benchmarks.llm_harness" + (" --quick" if quick else "") + extra,
            "settings": {**{k: getattr(shape, k) for k in (
                "layers", "d_model", "heads", "vocab", "prompt_tokens", "new_tokens", "batch")},
                "preset": chosen["preset"], "parameters": workload.n_parameters,
                "dtype": str(workload.dtype).removeprefix("torch."), "pairs": pairs,
                "block_s": block_s, "bare_requests_per_block": n_bare,
                "torch_threads": torch.get_num_threads()},
            "summary": {"harness": stats([r["harness_tokens_s"] for r in raw]),
                        "bare": stats([r["bare_tokens_s"] for r in raw]),
                        "ratio": stats([r["ratio"] for r in raw]),
                        "ratio_quiet": stats(quiet) if quiet else None,
                        "cpu_ratio": stats([r["cpu_ratio"] for r in raw])},
            "raw": raw}


def table(result: dict[str, Any]) -> str:
    s, st = result["summary"], result["settings"]
    r, q, c = s["ratio"], s.get("ratio_quiet"), s["cpu_ratio"]
    return markdown_table(
        ["llm-generate (CPU)", "workload harness, median", "bare loop, median", "pairs",
         "ratio, median", "ratio IQR", "ratio min–max",
         f"quiet pairs (others < {QUIET_CORES:g} core): ratio median (min–max)",
         "per CPU second: ratio median (IQR)"],
        [[f"{st['layers']} layers, d_model {st['d_model']}, prompt {st['prompt_tokens']}, "
          f"{st['new_tokens']} new x {st['batch']}, {st['dtype']}, {st['torch_threads']} threads",
          f"{s['harness']['median']:.1f} tokens/s", f"{s['bare']['median']:.1f} tokens/s",
          r["n"], f"**{r['median']:.3f}**", f"{r['q1']:.3f}–{r['q3']:.3f}",
          f"{r['min']:.3f}–{r['max']:.3f}",
          f"{q['median']:.3f} ({q['min']:.3f}–{q['max']:.3f}, n={q['n']})" if q
          else "none quiet", f"{c['median']:.3f} ({c['q1']:.3f}–{c['q3']:.3f})"]])


def verdicts(result: dict[str, Any]) -> list[str]:
    med = result["summary"]["ratio"]["median"]
    ok = "met" if med >= TARGET_RATIO else "MISSED"
    return [f"llm-generate harness / bare generation loop: {med:.3f} (target >= "
            f"{TARGET_RATIO}): {ok}"]


def _param(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--param {text!r}: give key=value, e.g. layers=2")
    return key.strip(), value.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pairs", type=int)
    parser.add_argument("--block", type=float, help="seconds per block (default 1, quick 0.5)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    parser.add_argument("--param", type=_param, action="append", default=[],
                        help="an llm-generate parameter over the default "
                             f"({', '.join(f'{k}={v}' for k, v in DEFAULT_PARAMS.items())})")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    result = run(args.quick, args.pairs, args.block, dict(args.param), args.threads)
    if not args.no_save:
        name = "llm_harness" + (f"-threads{args.threads}" if args.threads else "")
        save_json(name, result)
        save_csv(name, result["raw"])
    print(table(result))
    print("\n".join(verdicts(result)))


if __name__ == "__main__":
    main()
