"""Make megatron-core 0.16.1 run on a CPU-only torch (gloo), by an explicit `enable()` call.

megatron-core assumes a GPU in a few places that the TP/DP training path reaches (measured, see
shared/notes/STACK-FACTS.md "Megatron-core 0.16.1 on CPU"):

- `torch.cuda.current_device()` places the attention scratch buffer (`GlobalMemoryBuffer`) and
  `DotProductAttention` tensors: here it answers "cpu".
- `torch.cuda.synchronize()` runs inside `dist_checkpointing.save` and `parallel_state`: here a no-op.
- The model-parallel RNG tracker (`model_parallel_cuda_manual_seed`, `get_cuda_rng_tracker().fork()`)
  seeds, reads and writes the CUDA generator; on a CPU torch those calls are queued lazily and never
  run, so the tracker would hold no state. Here they act on the CPU generator, which keeps the real
  tracker: per-tensor-parallel-rank seeds for dropout, and states that a checkpoint can save.

The default causal mask is built on `device="cuda"` too; we never rely on it (the training loop passes
an explicit boolean mask), so it is not patched. Nothing happens at import time, and `enable()` does
nothing where CUDA is available: the real GPU path stays untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

_saved: list[tuple[Any, str, Any]] = []


def _cpu_get_rng_state(device: Any = "cuda") -> torch.Tensor:
    return torch.get_rng_state()


def _cpu_set_rng_state(new_state: torch.Tensor, device: Any = -1, graph_safe: bool = False) -> None:
    torch.set_rng_state(new_state)


def _cpu_manual_seed(seed: int) -> None:
    torch.random.default_generator.manual_seed(int(seed))


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


def _patch(owner: Any, name: str, value: Callable[..., Any]) -> None:
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

    _patch(torch.cuda, "current_device", lambda: "cpu")
    _patch(torch.cuda, "synchronize", _noop)
    _patch(torch.cuda, "get_rng_state", _cpu_get_rng_state)
    _patch(torch.cuda.random, "get_rng_state", _cpu_get_rng_state)
    _patch(torch.cuda, "manual_seed", _cpu_manual_seed)
    _patch(mrandom, "_set_cuda_rng_state", _cpu_set_rng_state)
    return True


def disable() -> None:
    """Undo `enable()` (tests and in-process reuse); the originals come back in reverse order."""
    while _saved:
        owner, name, original = _saved.pop()
        setattr(owner, name, original)
