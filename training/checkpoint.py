"""Atomic, resumable megatron dist_checkpointing checkpoints under `train/checkpoints/`.

Layout: `iter_NNNNNNN/` holds megatron's torch_dist files plus `commonweights.json`, the completion
marker. A save writes `iter_NNNNNNN.tmp/`, adds the marker last, renames the folder into place and
then replaces `latest` (the newest iteration, as text) through a temp file, so a crash at any point
leaves either the previous complete checkpoint or the new one. Only folders named `iter_NNNNNNN`
holding a marker are ever loaded; a `.tmp` folder or one without a marker is ignored.

What a checkpoint restores: model weights, optimizer moments (as sharded tensors mirroring the
weights, so a TP=2 checkpoint loads into TP=1), the iteration and consumed samples, and each rank's
RNG states (one sharded object per pipeline x tensor rank). The LR schedule is a pure function of the
iteration (`train.lr_at`), so restoring the iteration restores it. `model` arguments are megatron
modules (they provide `sharded_state_dict()`), typed `Any` so that megatron's types stay in here.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from commonweights.errors import InputError
from training.data_order import MARKER

LATEST = "latest"
RNG_KEY = "rng_state"
_NAME = re.compile(r"^iter_(\d{7})$")
_TMP = re.compile(r"^iter_(\d{7})\.tmp$")


def iter_name(iteration: int) -> str:
    return f"iter_{iteration:07d}"


def read_marker(path: Path) -> dict[str, Any] | None:
    """The marker of a complete checkpoint folder, or None when the folder is not complete."""
    m = _NAME.match(path.name)
    marker = path / MARKER
    if not (m and path.is_dir() and marker.is_file()):
        return None
    try:
        rec = json.loads(marker.read_text())
    except ValueError:
        return None
    if not isinstance(rec, dict) or rec.get("iteration") != int(m.group(1)):
        return None
    return rec


def complete(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under root, oldest first."""
    if not root.is_dir():
        return []
    found = [(int(p.name[5:]), p) for p in root.iterdir() if read_marker(p) is not None]
    return sorted(found)


def newest(root: Path) -> tuple[int, Path] | None:
    done = complete(root)
    return done[-1] if done else None


def require_newest(root: Path) -> tuple[int, Path, dict[str, Any]]:
    """The newest complete checkpoint, or an InputError that says how to make one."""
    found = newest(root)
    if found is None:
        raise InputError(
            f"{root}: no complete checkpoint (a folder iter_NNNNNNN with {MARKER}); "
            "run `commonweights train --config CONFIG` first"
        )
    it, path = found
    return it, path, read_marker(path) or {}


def _rng_states() -> dict[str, Any]:
    from megatron.core.tensor_parallel import get_cuda_rng_tracker

    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "tracker": get_cuda_rng_tracker().get_states(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    from megatron.core.tensor_parallel import get_cuda_rng_tracker

    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"])
    get_cuda_rng_tracker().set_states(states["tracker"])


def _rng_object(data: Any) -> Any:
    """This rank's RNG states as one shard of a (pipeline x tensor) grid, replicated over DP."""
    from megatron.core import parallel_state as ps
    from megatron.core.dist_checkpointing.mapping import ShardedObject

    shape = (ps.get_pipeline_model_parallel_world_size(), ps.get_tensor_model_parallel_world_size())
    offset = (ps.get_pipeline_model_parallel_rank(), ps.get_tensor_model_parallel_rank())
    return ShardedObject(RNG_KEY, data, shape, offset, replica_id=ps.get_data_parallel_rank())


# DistributedOptimizer state layout in checkpoints. With plain-torch Adam (no Apex/TE) the inner state
# carries a per-parameter `step` that only megatron's `dp_reshardable` layout round-trips: such
# checkpoints reload into another data-parallel size, not another TP/PP layout (checked on resume).
OPTIMIZER_METADATA = {"distrib_optim_sharding_type": "dp_reshardable"}


def _parts(optimizer: Any) -> list[Any]:
    return list(getattr(optimizer, "chained_optimizers", [optimizer]))


def _set_steps(optimizer: Any, iteration: int) -> None:
    """Per-parameter Adam step counts equal the iteration (torch keeps one per parameter)."""
    for part in _parts(optimizer):
        inner = getattr(part, "optimizer", None)
        for st in getattr(inner, "state", {}).values():
            if "step" in st:
                st["step"] = torch.tensor(float(iteration))


def _init_distributed_state(optimizer: Any) -> None:
    """Give a fresh DistributedOptimizer (plain-torch Adam) state to load into, changing no weight.

    Its `sharded_state_dict(is_loading=True)` reads the inner optimizer's per-parameter `step`,
    which torch creates only on a first step; megatron's own dummy step does that, here at lr=0 so
    that weight decay is a no-op as well. The checkpoint then overwrites moments and step counts.
    """
    for part in _parts(optimizer):
        if not hasattr(part, "_init_optimizer_states_with_dummy_values") or part.optimizer.state:
            continue
        lrs = [g["lr"] for g in part.optimizer.param_groups]
        for g in part.optimizer.param_groups:
            g["lr"] = 0.0
        part._init_optimizer_states_with_dummy_values()
        for g, lr in zip(part.optimizer.param_groups, lrs, strict=True):
            g["lr"] = lr


def _optimizer_sharded(model_sd: Any, optimizer: Any, is_loading: bool) -> Any:
    """The megatron optimizer's state as sharded tensors laid out like the weights they belong to."""
    return optimizer.sharded_state_dict(model_sd, is_loading=is_loading, metadata=OPTIMIZER_METADATA)


def _barrier() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def _rank() -> int:
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def weights(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """(key, global float32 tensor) of each model weight of a checkpoint folder, keys sorted.

    dist_checkpointing stores every weight as one global tensor under a layout-free key (layers
    stacked on a leading axis), so what this yields does not depend on the TP/PP/DP layout that saved
    it. Optimizer state, RNG states and `_extra_state` objects are not weights and are left out.
    Tensors are read one at a time, so memory stays at the largest one.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    meta = dcp.FileSystemReader(str(path)).read_metadata().state_dict_metadata
    for key in sorted(meta):
        info = meta[key]
        if not isinstance(info, TensorStorageMetadata) or key.startswith(("optimizer.", RNG_KEY)):
            continue
        one = {key: torch.empty(tuple(info.size), dtype=info.properties.dtype)}
        dcp.load(one, checkpoint_id=str(path), no_dist=True)
        yield key, one[key].to(torch.float32).contiguous()


def weights_sha256(path: Path) -> str:
    """Canonical hash of a checkpoint's model weights, the same for any layout that saved them.

    For each of `weights(path)` in order: the key, a NUL, the global shape as a JSON list, a NUL, then
    the values as float32 little-endian in C order (docs/replay.md).
    """
    h = hashlib.sha256()
    for key, tensor in weights(path):
        h.update(f"{key}\0{list(tensor.shape)}\0".encode())
        h.update(tensor.numpy().astype("<f4", copy=False).tobytes())
    return h.hexdigest()


def save(
    root: Path,
    iteration: int,
    model: Any,
    optimizer: Any,
    marker: dict[str, Any],
    keep_last: int,
    on_saved: Callable[[str], dict[str, Any]] | None = None,
    queue: Any = None,
) -> Path:
    """Write one checkpoint atomically (collective: every rank calls it); returns the final folder.

    Rank 0 hashes the written weights (`weights_sha256`, recorded in the marker) and, before the
    marker makes the checkpoint complete, calls `on_saved(weights_sha256)`; what it returns joins the
    marker (the data-order log's head at this checkpoint).

    With `queue` (megatron's `AsyncCallsQueue`) the tensors are copied to host memory here and written
    by a background process while training goes on; the finalisation above (hash, marker, rename,
    `latest`, pruning) runs when `queue.maybe_finalize_async_calls` finds the write done, so until then
    the folder is `iter_NNNNNNN.tmp/` and is never loaded. The caller finalises (blocking) before
    the next save and before it exits.
    """
    from megatron.core import dist_checkpointing

    final = root / iter_name(iteration)
    tmp = root / f"{final.name}.tmp"
    if _rank() == 0:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    _barrier()
    model_sd = model.sharded_state_dict()
    state = {
        "model": model_sd,
        "optimizer": _optimizer_sharded(model_sd, optimizer, is_loading=False),
        RNG_KEY: _rng_object(_rng_states()),
    }

    def finish() -> None:
        _barrier()
        if _rank() == 0:
            weights = weights_sha256(tmp)
            extra = on_saved(weights) if on_saved is not None else {}
            _write_json(tmp / MARKER, {**marker, **extra, "iteration": iteration, "weights_sha256": weights})
            if final.exists():  # a leftover without a marker (never loaded), or an older copy of this step
                shutil.rmtree(final)
            tmp.rename(final)
            latest = root / f"{LATEST}.tmp"
            latest.write_text(f"{iteration}\n")
            latest.replace(root / LATEST)
            prune(root, keep_last)
        _barrier()

    if queue is None:
        dist_checkpointing.save(state, str(tmp))
        finish()
    else:
        request = dist_checkpointing.save(state, str(tmp), async_sharded_save=True)
        request.add_finalize_fn(finish)
        queue.schedule_async_request(request)
    return final


def prune(root: Path, keep_last: int) -> None:
    """Keep the newest `keep_last` complete checkpoints; drop older ones and `.tmp` leftovers.

    Called by rank 0 right after its own save, when no other save of this run can be in flight.
    """
    for _, path in complete(root)[:-keep_last]:
        shutil.rmtree(path)
    for p in root.iterdir():
        if _TMP.match(p.name) and p.is_dir():
            shutil.rmtree(p)


def load(path: Path, model: Any, optimizer: Any, restore_rng: bool) -> dict[str, Any]:
    """Restore weights, optimizer state and (same layout only) RNG states; returns the marker.

    `optimizer` is a megatron optimizer: its `sharded_state_dict(is_loading=True)` allocates the
    state that the load fills, and its `load_state_dict` copies the loaded weights into its master
    copies and restores the moments and step counts.
    """
    from megatron.core import dist_checkpointing

    marker = read_marker(path)
    if marker is None:
        raise InputError(f"{path}: not a complete checkpoint (no valid {MARKER})")
    model_sd = model.sharded_state_dict()
    _init_distributed_state(optimizer)
    state: dict[str, Any] = {
        "model": model_sd,
        "optimizer": _optimizer_sharded(model_sd, optimizer, is_loading=True),
    }
    if restore_rng:
        state[RNG_KEY] = _rng_object(None)
    with torch.no_grad():
        loaded = dist_checkpointing.load(state, str(path))
        model.load_state_dict(loaded["model"])
        optimizer.load_state_dict(loaded["optimizer"])
        _set_steps(optimizer, int(marker["iteration"]))
    if restore_rng:
        _set_rng_states(loaded[RNG_KEY])
    return marker


def load_weights(path: Path, model: Any) -> None:
    """Load only the model weights (export, evaluation), into any tensor-parallel layout."""
    from megatron.core import dist_checkpointing

    with torch.no_grad():
        loaded = dist_checkpointing.load({"model": model.sharded_state_dict()}, str(path))
    model.load_state_dict(loaded["model"])


def _write_json(path: Path, rec: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
