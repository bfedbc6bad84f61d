"""The Workload base class, its helpers, the child's pieces, and each built-in in-process."""

from __future__ import annotations

import importlib
import os
import signal
from pathlib import Path

import pytest

from carbontop.child.failure import describe
from carbontop.child.loading import load_workload_class
from carbontop.child.signals import Signals, Terminated
from carbontop.errors import BadInput
from carbontop.registry import list_workloads
from carbontop.workload import Step, Workload, coerce_param, resolve_params

DATA = Path(__file__).resolve().parents[1] / "data"
PLUGINS = DATA / "plugin_workloads.py"


class Demo(Workload):
    name = "demo"
    defaults = {"size": 8, "rate": 0.5, "fast": False, "device": "auto", "extra": None}
    warmup_s = 1.5

    def step(self) -> Step:
        return Step(units=2)


def test_params_from_the_command_line_are_coerced() -> None:
    demo = Demo({"size": "64", "rate": "2", "fast": "yes", "device": "cpu", "extra": "x"})
    assert demo.params == {"size": 64, "rate": 2.0, "fast": True, "device": "cpu", "extra": "x"}
    assert demo.int_param("size") == 64 and demo.float_param("rate") == 2.0
    assert demo.bool_param("fast") and demo.str_param("device") == "cpu"
    assert demo.warmup_s == 1.5 and Demo({"warmup_s": "0.25"}).warmup_s == 0.25
    assert Demo({"warmup_s": -3}).warmup_s == 0.0
    assert Demo().params["size"] == 8  # defaults when nothing is given
    assert Demo({"size": 16, "rate": 1}).params == {**Demo().params, "size": 16, "rate": 1.0}


def test_unknown_or_bad_params_name_the_fix() -> None:
    with pytest.raises(BadInput) as caught:
        Demo({"colour": "red"})
    assert str(caught.value) == (
        "unknown param 'colour' for workload 'demo': "
        "valid keys are size, rate, fast, device, extra, warmup_s"
    )
    with pytest.raises(BadInput, match="size='big' for workload 'demo' must be an integer"):
        Demo({"size": "big"})
    with pytest.raises(BadInput, match="must be true or false"):
        Demo({"fast": "maybe"})
    with pytest.raises(BadInput, match="must be a number"):
        resolve_params(Demo, {"rate": "fast"})
    assert coerce_param("k", "0", False) is False and coerce_param("k", " 7 ", 1) == 7
    with pytest.raises(BadInput, match="must be an integer"):
        coerce_param("k", True, 1)  # a bool is no count


def test_base_defaults() -> None:
    demo = Demo()
    demo.setup()
    assert demo.step() == Step(units=2, flops=None, last=False)
    demo.synchronize()  # no device: a no-op
    demo.teardown()
    assert demo.info()["warmup_s"] == "1.5" and demo.info()["size"] == "8"
    with pytest.raises(NotImplementedError):
        Workload().step()


def test_device_and_dtype_helpers() -> None:
    torch = pytest.importorskip("torch")
    from carbontop.workload_torch import pick_device, pick_dtype, pick_size

    auto = pick_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    cpu = pick_device("cpu")
    assert pick_dtype("auto", cpu, half_on_cuda=True) is torch.float32
    assert pick_dtype("fp16", cpu) is torch.float16 and pick_dtype("bf16", cpu) is torch.bfloat16
    assert pick_dtype("auto", torch.device("cuda"), half_on_cuda=True) is torch.float16
    assert pick_size(0, cuda=4096, cpu=512, device=cpu) == 512
    assert pick_size(64, cuda=4096, cpu=512, device=cpu) == 64
    with pytest.raises(BadInput, match="dtype='int3'"):
        pick_dtype("int3", cpu)
    with pytest.raises(BadInput, match="is not a device"):
        pick_device("toaster")
    if not torch.cuda.is_available():
        with pytest.raises(BadInput, match="no CUDA GPU"):
            pick_device("cuda")


TINY: dict[str, dict[str, object]] = {
    "gpu-stress": {"size": 32, "device": "cpu"},
    "cpu-stress": {"size": 32},
    "ram-stress": {"block_mb": 1, "max_mb": 2, "interval_s": 0.0},
    "stress-all": {"size": 32, "cpu_size": 32, "block_mb": 1, "max_mb": 2, "device": "cpu"},
    "matmul": {"size": 32, "device": "cpu"},
    "cnn-inference": {"batch": 1, "image_size": 16, "width": 4, "blocks": 1, "device": "cpu"},
    "transformer-inference": {"batch": 1, "seq_len": 4, "d_model": 8, "layers": 1, "heads": 2},
    "llm-generate": {"mode": "prefill", "layers": 1, "d_model": 8, "heads": 2, "vocab": 16,
                     "context": 8, "prompt_tokens": 4, "new_tokens": 2, "batch": 1,
                     "device": "cpu"},
    "training": {"batch": 4, "features": 8, "hidden": 8, "optimizer": "sgd", "device": "cpu"},
    "idle": {"nap_s": 0.001},
}


def load(target: str) -> type[Workload]:
    module, _, cls = target.partition(":")
    loaded = getattr(importlib.import_module(module), cls)
    assert issubclass(loaded, Workload)
    return loaded


@pytest.mark.parametrize(
    "entry", [e for e in list_workloads() if e.source == "builtin"], ids=lambda entry: entry.name
)
def test_builtin_steps_in_process(entry: object) -> None:
    from carbontop.registry import WorkloadEntry

    assert isinstance(entry, WorkloadEntry)
    cls = load(entry.target)
    # what the registry read from the source is what the class says
    assert (cls.name, cls.unit, cls.description) == (entry.name, entry.unit, entry.description)
    assert tuple(key for key, _ in entry.params) == tuple(cls.defaults)

    workload = cls(TINY[entry.name])
    workload.setup()
    try:
        steps = [workload.step() for _ in range(2)]
        workload.synchronize()
        info = workload.info()
    finally:
        workload.teardown()
    assert all(step.units > 0 for step in steps)
    assert info["device"] in ("cpu", "none")
    for key in TINY[entry.name]:
        assert key in info


def test_matmul_counts_gflop() -> None:
    matmul = load("workloads.matmul:Matmul")({"size": 16, "device": "cpu"})
    matmul.setup()
    step = matmul.step()
    assert step.flops == 2 * 16**3 and step.units == pytest.approx(2 * 16**3 / 1e9)
    assert matmul.info()["dtype"] == "float32"


def test_training_rejects_unknown_optimizer() -> None:
    training = load("workloads.training:Training")({"optimizer": "lion", "device": "cpu"})
    with pytest.raises(BadInput, match="optimizer='lion'"):
        training.setup()


def test_out_of_memory_is_recognised() -> None:
    class OutOfMemoryError(RuntimeError):  # torch.cuda.OutOfMemoryError's name
        pass

    assert describe(MemoryError()) == "out of memory: MemoryError"
    assert describe(OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")) == (
        "out of memory: OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB"
    )
    cpu = RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 9 bytes")
    assert describe(cpu).startswith("out of memory: RuntimeError")
    assert describe(ValueError("boom\nmore")) == "ValueError: boom"
    assert describe(BadInput("unknown param 'x': use y")) == "unknown param 'x': use y"


def test_loading_workload_classes() -> None:
    cls, target = load_workload_class("idle", None, None)
    assert cls.name == "idle" and target == "workloads.idle:Idle"
    with pytest.raises(BadInput, match="unknown workload 'nope': choose one of"):
        load_workload_class("nope", None, None)
    cls, target = load_workload_class(None, str(PLUGINS), "Counter")
    assert cls.__name__ == "Counter" and target.endswith("plugin_workloads.py:Counter")
    cls, _ = load_workload_class("failing", str(PLUGINS), None)
    assert cls.__name__ == "Failing"
    with pytest.raises(BadInput, match="pick one with --class-name"):
        load_workload_class(None, str(PLUGINS), None)
    with pytest.raises(BadInput, match="no Workload subclass named Nope"):
        load_workload_class(None, str(PLUGINS), "Nope")
    with pytest.raises(BadInput, match="does not exist"):
        load_workload_class(None, str(DATA / "missing.py"), None)


def test_child_notices_a_new_parent() -> None:
    Signals(parent_pid=os.getppid()).check()  # still our parent: nothing happens
    with pytest.raises(Terminated, match="parent process is gone"):
        Signals(parent_pid=-1).check()


def test_signals_interrupt_only_workload_code() -> None:
    signals = Signals()
    signals._handle(signal.SIGTERM, None)  # outside workload code: only recorded
    with pytest.raises(Terminated, match="stopped by SIGTERM"):
        signals.check()

    signals = Signals()

    def workload_code() -> None:
        signals._handle(signal.SIGINT, None)  # as if the signal arrived mid-step

    with pytest.raises(Terminated) as caught:
        signals.call(workload_code)
    assert caught.value.signum == signal.SIGINT and not signals.inside
