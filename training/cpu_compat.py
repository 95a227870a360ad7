"""Make megatron-core 0.16.1's full training path run on a CPU-only torch (gloo), by `enable()`.

megatron-core assumes a GPU in places that the training path reaches (measured, see
shared/notes/STACK-FACTS.md "Megatron-core 0.16.1 on CPU"). What this module changes, and why:

- Device literals. Megatron DDP's grad buffers, the DistributedOptimizer's shard buffers, the
  pipeline schedules' token counters and p2p shape tensors, grad clipping's norm tensors and the
  mixed-precision optimizer's loss scale are created with `device="cuda"` or
  `torch.cuda.current_device()`. A `TorchFunctionMode` (`_CpuDevices`) rewrites a CUDA `device=`
  argument of any torch call to "cpu", makes `Tensor.cuda()` return the tensor itself, and answers
  `Tensor.type()` (no argument) with the `torch.cuda.*Tensor` name that megatron's optimizer
  asserts on. `torch.cuda.current_device()` answers "cpu".
- Streams, events, synchronisation, empty_cache, nvtx: no CUDA runtime here; they become no-ops
  (`synchronize` is also called by `dist_checkpointing.save`).
- RNG. The model-parallel RNG tracker (`model_parallel_cuda_manual_seed`, `get_cuda_rng_tracker()`)
  seeds, reads and writes the CUDA generator; on a CPU torch those calls are queued lazily and never
  run, so the tracker would hold no state. Here they act on the CPU generator, which keeps the real
  tracker: per-tensor-parallel-rank seeds, and states that a checkpoint can save.

The default causal mask is built on `device="cuda"` too; the mode would fix it, but the training loop
passes an explicit boolean mask anyway. Nothing happens at import time, `enable()` does nothing where
CUDA is available (the real GPU path stays untouched), and `disable()` undoes everything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

_saved: list[tuple[Any, str, Any]] = []
_mode: list[TorchFunctionMode] = []

_CUDA_TYPE = {
    "torch.FloatTensor": "torch.cuda.FloatTensor",
    "torch.HalfTensor": "torch.cuda.HalfTensor",
    "torch.BFloat16Tensor": "torch.cuda.BFloat16Tensor",
}


def _is_cuda(device: Any) -> bool:
    if isinstance(device, torch.device):
        return device.type == "cuda"
    if isinstance(device, str):
        return device.startswith("cuda")
    return isinstance(device, int) and not isinstance(device, bool)  # a bare CUDA ordinal


class _CpuDevices(TorchFunctionMode):
    """Send every tensor that megatron asks for on CUDA to the CPU instead."""

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        if func is torch.Tensor.cuda:
            return args[0]
        if func is torch.Tensor.type and len(args) == 1 and not kwargs:
            name = func(*args)
            return _CUDA_TYPE.get(name, name)
        if func is torch.Tensor.to and args and _is_cuda(args[1] if len(args) > 1 else kwargs.get("device")):
            if len(args) > 1:
                args = (args[0], "cpu", *args[2:])
            else:
                kwargs = {**kwargs, "device": "cpu"}
        elif "device" in kwargs and _is_cuda(kwargs["device"]):
            kwargs = {**kwargs, "device": "cpu"}
        return func(*args, **kwargs)


class _NoStream:
    """Stands in for torch.cuda.Stream/Event: every method is a no-op, usable as a context."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Callable[..., None]:
        return _noop

    def __enter__(self) -> _NoStream:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _cpu_get_rng_state(device: Any = "cuda") -> torch.Tensor:
    return torch.get_rng_state()


def _cpu_set_rng_state(new_state: torch.Tensor, device: Any = -1, graph_safe: bool = False) -> None:
    torch.set_rng_state(new_state)


def _cpu_manual_seed(seed: int) -> None:
    torch.random.default_generator.manual_seed(int(seed))


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


def _noop_named(name: str) -> Callable[..., None]:
    def noop(*args: Any, **kwargs: Any) -> None:
        return None

    noop.__name__ = noop.__qualname__ = f"cpu_compat_{name}"
    return noop


def _patch(owner: Any, name: str, value: Any) -> None:
    _saved.append((owner, name, getattr(owner, name)))
    setattr(owner, name, value)


def enabled() -> bool:
    return bool(_saved)


def enable() -> bool:
    """Apply the CPU patches once; returns whether they are active (False when CUDA is available)."""
    if torch.cuda.is_available():
        return False
    if _saved:
        return True
    from megatron.core.tensor_parallel import random as mrandom

    # Each patch gets its own function object: torch.compile's rule table (built when megatron's
    # fused kernels are defined) refuses one object registered under two torch names.
    _patch(torch.cuda, "current_device", lambda: "cpu")
    for name in ("synchronize", "empty_cache", "set_device"):
        _patch(torch.cuda, name, _noop_named(name))
    for name in ("Stream", "Event", "current_stream", "default_stream"):
        _patch(torch.cuda, name, type(name, (_NoStream,), {}))
    _patch(torch.cuda, "stream", lambda *a, **k: contextlib.nullcontext())
    _patch(torch.cuda.nvtx, "range_push", _noop_named("range_push"))
    _patch(torch.cuda.nvtx, "range_pop", _noop_named("range_pop"))
    _patch(torch.cuda, "get_rng_state", _cpu_get_rng_state)
    _patch(torch.cuda.random, "get_rng_state", lambda device="cuda": torch.get_rng_state())
    _patch(torch.cuda, "manual_seed", _cpu_manual_seed)
    _patch(mrandom, "_set_cuda_rng_state", _cpu_set_rng_state)
    mode = _CpuDevices()
    mode.__enter__()
    _mode.append(mode)
    return True


def disable() -> None:
    """Undo `enable()` (tests and in-process reuse); the originals come back in reverse order."""
    while _mode:
        _mode.pop().__exit__(None, None, None)
    while _saved:
        owner, name, original = _saved.pop()
        setattr(owner, name, original)
