"""The training loop for one process: `run(cfg)` (torchrun, Slurm and single-process alike).

Each process reads its rank from the environment (`dist_env`), joins the process group (gloo on CPU,
nccl on GPU), initialises megatron's model-parallel state, builds its share of the model, resumes
from the newest complete checkpoint if there is one, and trains `cfg.train.steps` optimizer steps:
gradient accumulation over micro-batches, data-parallel gradient averaging, tensor-parallel-aware
gradient clipping, AdamW with linear warmup and cosine decay. Rank 0 writes `train/metrics.jsonl`
(one line per step; `elapsed_s` is training time so far, continued across resumes), `train/train.json`
(summary) and the wandb run.

Pipeline parallelism needs megatron's pipeline schedules and is refused with a clear error here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from commonweights.config import RunConfig, TrainConfig, WandbMode
from commonweights.errors import ConfigError
from training import checkpoint, cpu_compat
from training.data import Tokens, batch, build_dataset, check_vocab, read_tokens
from training.model import Arch, arch_of, build_model, causal_mask, require

log = logging.getLogger("commonweights.train")

ADAM_BETAS = (0.9, 0.95)
ADAM_EPS = 1e-8
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)  # Slurm preemption / --signal=USR1@t before the limit


# ----------------------------------------------------------------------------------------- ranks


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int


def slurm_hostnames(nodelist: str) -> list[str]:
    out = subprocess.run(
        ["scontrol", "show", "hostnames", nodelist], check=True, capture_output=True, text=True
    )
    return out.stdout.split()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dist_env(environ: Mapping[str, str], hostnames: Callable[[str], list[str]] = slurm_hostnames) -> DistEnv:
    """This process's place in the job: torchrun's variables, else Slurm's, else a single process."""
    if "RANK" in environ and "WORLD_SIZE" in environ:
        return DistEnv(
            rank=int(environ["RANK"]),
            world_size=int(environ["WORLD_SIZE"]),
            local_rank=int(environ.get("LOCAL_RANK", "0")),
            master_addr=environ.get("MASTER_ADDR", "127.0.0.1"),
            master_port=int(environ.get("MASTER_PORT", "29500")),
        )
    if "SLURM_PROCID" in environ and "SLURM_NTASKS" in environ:
        addr = environ.get("MASTER_ADDR") or hostnames(environ["SLURM_JOB_NODELIST"])[0]
        # Every task derives the same port from the job id; a requeued job keeps its id, which is
        # fine since the previous step's sockets are gone by then.
        port = environ.get("MASTER_PORT") or str(15000 + int(environ.get("SLURM_JOB_ID", "0")) % 20000)
        return DistEnv(
            rank=int(environ["SLURM_PROCID"]),
            world_size=int(environ["SLURM_NTASKS"]),
            local_rank=int(environ.get("SLURM_LOCALID", "0")),
            master_addr=addr,
            master_port=int(port),
        )
    return DistEnv(0, 1, 0, "127.0.0.1", free_port())


@dataclass(frozen=True)
class Layout:
    world_size: int
    tensor_parallel: int
    pipeline_parallel: int

    @property
    def data_parallel(self) -> int:
        return self.world_size // (self.tensor_parallel * self.pipeline_parallel)

    def record(self) -> dict[str, int]:
        return {
            "world_size": self.world_size,
            "tensor_parallel": self.tensor_parallel,
            "pipeline_parallel": self.pipeline_parallel,
            "data_parallel": self.data_parallel,
        }


def check_layout(t: TrainConfig, world_size: int) -> Layout:
    """Validate the parallel layout against the real world size (Slurm may differ from train.nproc)."""
    if t.pipeline_parallel != 1:
        raise ConfigError(
            f"train.pipeline_parallel={t.pipeline_parallel}: this trainer has no pipeline schedule yet; "
            "set train.pipeline_parallel: 1 (tensor and data parallelism work)"
        )
    mp = t.tensor_parallel * t.pipeline_parallel
    if world_size % mp:
        raise ConfigError(
            f"world size {world_size} is not a multiple of train.tensor_parallel*pipeline_parallel={mp}"
        )
    layout = Layout(world_size, t.tensor_parallel, t.pipeline_parallel)
    if t.global_batch_size % (t.micro_batch_size * layout.data_parallel):
        raise ConfigError(
            f"train.global_batch_size={t.global_batch_size} is not divisible by "
            f"micro_batch_size*data_parallel={t.micro_batch_size}*{layout.data_parallel}"
        )
    return layout


@contextlib.contextmanager
def process_group(env: DistEnv, tensor_parallel: int, pipeline_parallel: int, seed: int) -> Iterator[str]:
    """Join the process group and megatron's model-parallel state; yields the device; always leaves."""
    require("megatron.core", "megatron-core", "training")
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel import model_parallel_cuda_manual_seed

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(env.local_rank)
    else:
        cpu_compat.enable()
    dist.init_process_group(
        "nccl" if cuda else "gloo",
        init_method=f"tcp://{env.master_addr}:{env.master_port}",
        rank=env.rank,
        world_size=env.world_size,
    )
    try:
        parallel_state.initialize_model_parallel(tensor_parallel, pipeline_parallel)
        torch.manual_seed(seed)
        # Per-TP-rank streams for dropout/init; on CPU the compat layer backs them with the CPU RNG.
        model_parallel_cuda_manual_seed(seed, force_reset_rng=True)
        yield f"cuda:{env.local_rank}" if cuda else "cpu"
    finally:
        parallel_state.destroy_model_parallel()
        dist.destroy_process_group()


# ------------------------------------------------------------------------------------ pure parts


def lr_at(step: int, t: TrainConfig) -> float:
    """LR for optimizer step `step` (1-based): linear warmup to lr, then cosine decay to min_lr."""
    if t.warmup_steps and step <= t.warmup_steps:
        return t.lr * step / t.warmup_steps
    span = max(1, t.steps - t.warmup_steps)
    progress = min(1.0, (step - t.warmup_steps) / span)
    return t.min_lr + 0.5 * (t.lr - t.min_lr) * (1 + math.cos(math.pi * progress))


def micro_batches(step: int, t: TrainConfig, layout: Layout, dp_rank: int) -> list[int]:
    """First sample index of each micro-batch this DP rank runs in optimizer step `step` (0-based).

    A step consumes samples [step*gbs, (step+1)*gbs); DP rank r takes the r-th contiguous slice.
    Consumed samples therefore equal step*gbs on every rank, which is what resume needs.
    """
    per_rank = t.global_batch_size // layout.data_parallel
    first = step * t.global_batch_size + dp_rank * per_rank
    return list(range(first, first + per_rank, t.micro_batch_size))


# -------------------------------------------------------------------------------- the loop itself


def _not_duplicate(p: torch.nn.Parameter) -> bool:
    from megatron.core.tensor_parallel import param_is_not_tensor_parallel_duplicate

    return bool(param_is_not_tensor_parallel_duplicate(p))


def _model_parallel_sum(x: torch.Tensor) -> torch.Tensor:
    from megatron.core import parallel_state

    dist.all_reduce(x, group=parallel_state.get_model_parallel_group())
    return x


def count_parameters(model: torch.nn.Module, device: str) -> int:
    local = sum(p.numel() for p in model.parameters() if _not_duplicate(p))
    return int(_model_parallel_sum(torch.tensor([local], dtype=torch.float64, device=device)).item())


def clip_gradients(params: list[torch.nn.Parameter], max_norm: float, device: str) -> float:
    """Global L2 norm over all model-parallel shards (each replica counted once), then clip."""
    sq = torch.zeros(1, dtype=torch.float64, device=device)
    for p in params:
        if p.grad is not None and _not_duplicate(p):
            sq += p.grad.detach().double().pow(2).sum()
    norm = float(_model_parallel_sum(sq).sqrt().item())
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        for p in params:
            if p.grad is not None:
                p.grad.mul_(coef)
    return norm


def average_over_data_parallel(params: list[torch.nn.Parameter]) -> None:
    """Average gradients over data-parallel replicas in one flat all-reduce."""
    from megatron.core import parallel_state

    dp = parallel_state.get_data_parallel_world_size()
    if dp == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, group=parallel_state.get_data_parallel_group())
    flat /= dp
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def _mean_over_data_parallel(x: torch.Tensor) -> float:
    from megatron.core import parallel_state

    if parallel_state.get_data_parallel_world_size() > 1:
        dist.all_reduce(x, group=parallel_state.get_data_parallel_group())
        x = x / parallel_state.get_data_parallel_world_size()
    return float(x.item())


class _StopFlag:
    """Set by SIGTERM/SIGUSR1; checked after each step so that a stop ends in a checkpoint."""

    def __init__(self) -> None:
        self.raised = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        for sig in STOP_SIGNALS:
            with contextlib.suppress(ValueError):  # not the main thread: no handler, no early stop
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.raised = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def agreed(self, device: str) -> bool:
        """Every rank stops at the same step if any rank got the signal."""
        if dist.get_world_size() == 1:
            return self.raised
        flag = torch.tensor([1.0 if self.raised else 0.0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


def _wandb_run(cfg: RunConfig) -> Any:
    if cfg.train.wandb == WandbMode.disabled:
        return None
    require("wandb", "wandb", f"train.wandb={cfg.train.wandb.value}")
    import wandb

    cfg.paths.train.mkdir(parents=True, exist_ok=True)
    # The API key, if any, comes from the user's environment or netrc: never written by us.
    settings: dict[str, Any] = {
        "project": cfg.train.wandb_project,
        "name": cfg.name,
        "dir": str(cfg.paths.train),
        "mode": cfg.train.wandb.value,
        "config": cfg.to_record(),
        "resume": "allow",
    }
    return wandb.init(**settings)


def _trim_metrics(path: Path, upto: int) -> float:
    """Drop lines of steps after the checkpoint we resume from (they are about to be redone).

    Returns the kept lines' last `elapsed_s`, so that the clock continues across resumes.
    """
    if not path.is_file():
        return 0.0
    rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    keep = [r for r in rows if r["step"] <= upto]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
    tmp.replace(path)
    return float(keep[-1]["elapsed_s"]) if keep else 0.0


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def run(cfg: RunConfig) -> dict[str, Any]:
    """Train (or resume) on this process's rank; returns the summary written to train/train.json."""
    t = cfg.train
    tokens = read_tokens(cfg.paths)
    env = dist_env(os.environ)
    layout = check_layout(t, env.world_size)
    arch = resolve_arch(cfg, tokens.vocab_size)
    found = checkpoint.newest(cfg.paths.checkpoints)
    if found is not None:
        check_vocab(tokens, arch.vocab_size, found[1])
    start = time.monotonic()
    with process_group(env, t.tensor_parallel, t.pipeline_parallel, t.seed) as device:
        return _train(cfg, tokens, layout, arch, device, env.rank, start)


def resolve_arch(cfg: RunConfig, vocab_size: int) -> Arch:
    """The config's network shape, or the checkpoint's when resuming (refusing a changed shape)."""
    t = cfg.train
    # The tie switch is not a config field yet; honoured as soon as the config grows one.
    wanted = arch_of(t, vocab_size, tied=t.tie_embeddings)
    found = checkpoint.newest(cfg.paths.checkpoints)
    if found is None:
        return wanted
    marker = checkpoint.read_marker(found[1]) or {}
    saved = Arch.from_record(marker["arch"])
    # The padded vocabulary may differ only through tensor_parallel's rounding: keep the saved rows.
    changed = {
        k: (v, getattr(wanted, k))
        for k, v in saved.record().items()
        if k != "vocab_size" and v != getattr(wanted, k)
    }
    if changed:
        diff = ", ".join(f"{k}: checkpoint {a} vs config {b}" for k, (a, b) in changed.items())
        raise ConfigError(
            f"{found[1]}: the config changes the model shape ({diff}); restore those train.* values "
            "or train into a fresh run folder"
        )
    if saved.vocab_size % t.tensor_parallel:
        raise ConfigError(
            f"{found[1]}: {saved.vocab_size} vocabulary rows cannot be split over "
            f"train.tensor_parallel={t.tensor_parallel}"
        )
    return saved


def _resume(
    root: Path, model: Any, optimizer: torch.optim.Optimizer, layout: Layout, rank: int
) -> tuple[int, Path] | None:
    """Load the newest complete checkpoint, if any; returns its (iteration, folder)."""
    found = checkpoint.newest(root)
    if found is None:
        return None
    saved = (checkpoint.read_marker(found[1]) or {}).get("layout", {})
    # RNG states are per (pipeline, tensor) rank: restorable only into the same grid.
    grid = (layout.tensor_parallel, layout.pipeline_parallel)
    same = (saved.get("tensor_parallel"), saved.get("pipeline_parallel")) == grid
    checkpoint.init_optimizer_state(optimizer)
    checkpoint.load(found[1], model, optimizer, restore_rng=same)
    if rank == 0:
        log.info("resumed from %s (iteration %d)", found[1], found[0])
    return found


@dataclass(frozen=True)
class _Step:
    """What one optimizer step needs besides the model and optimizer."""

    dataset: Any
    mask: torch.Tensor
    layout: Layout
    dp_rank: int
    device: str


def _train_step(
    model: Any,
    optimizer: torch.optim.Optimizer,
    params: list[torch.nn.Parameter],
    s: _Step,
    step: int,
    t: TrainConfig,
) -> tuple[float, float]:
    """One optimizer step (0-based `step`): accumulate micro-batches, average, clip, update.

    Returns the loss averaged over micro-batches and data-parallel ranks, and the gradient norm.
    """
    optimizer.zero_grad(set_to_none=True)
    firsts = micro_batches(step, t, s.layout, s.dp_rank)
    loss_sum = torch.zeros(1, dtype=torch.float64, device=s.device)
    for first in firsts:
        b = {k: v.to(s.device) for k, v in batch(s.dataset, first, t.micro_batch_size).items()}
        per_token = model(b["tokens"], b["position_ids"], s.mask, labels=b["labels"])
        loss = (per_token * b["loss_mask"]).sum() / b["loss_mask"].sum().clamp(min=1)
        (loss / len(firsts)).backward()
        loss_sum += loss.detach().clone().double()  # a clone: never alias what backward reuses
    average_over_data_parallel(params)
    grad_norm = clip_gradients(params, t.clip_grad, s.device)
    optimizer.step()
    return _mean_over_data_parallel(loss_sum / len(firsts)), grad_norm


class _Metrics:
    """Rank 0's step log: metrics.jsonl (one JSON line per step) and the wandb run."""

    def __init__(self, cfg: RunConfig, resumed_at: int, stack: contextlib.ExitStack) -> None:
        self.path = cfg.paths.train / "metrics.jsonl"
        cfg.paths.train.mkdir(parents=True, exist_ok=True)
        self.clock = _trim_metrics(self.path, resumed_at)
        self.out = stack.enter_context(self.path.open("a"))
        self.wandb = _wandb_run(cfg)
        if self.wandb is not None:
            stack.callback(self.wandb.finish)

    def log(self, rec: dict[str, Any]) -> None:
        self.out.write(json.dumps(rec) + "\n")
        self.out.flush()
        if self.wandb is not None:
            self.wandb.log({k: v for k, v in rec.items() if k != "step"}, step=rec["step"])


def _train(
    cfg: RunConfig, tokens: Tokens, layout: Layout, arch: Arch, device: str, rank: int, t0: float
) -> dict[str, Any]:
    from megatron.core import parallel_state

    t = cfg.train
    paths = cfg.paths
    model = build_model(arch, layout.tensor_parallel, layout.pipeline_parallel, cpu=device == "cpu")
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=lr_at(1, t), betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=t.weight_decay
    )
    parameters = count_parameters(model, device)
    found = _resume(paths.checkpoints, model, optimizer, layout, rank)
    iteration = found[0] if found is not None else 0
    last_ckpt = found[1] if found is not None else None

    samples = t.steps * t.global_batch_size
    dataset = build_dataset(tokens, t.seq_length, samples, t.seed, paths.train / "cache")
    s = _Step(
        dataset, causal_mask(t.seq_length, device), layout, parallel_state.get_data_parallel_rank(), device
    )
    marker_base = {
        "config_digest": cfg.digest(),
        "tokens_sha256": tokens.sha256,
        "arch": arch.record(),
        "layout": layout.record(),
        "rng": {"seed": t.seed, "key": checkpoint.RNG_KEY, "per": "pipeline x tensor rank"},
        "format": "megatron.core.dist_checkpointing torch_dist",
    }
    interrupted = False
    model.train()
    with _StopFlag() as stop, contextlib.ExitStack() as stack:
        metrics = _Metrics(cfg, iteration, stack) if rank == 0 else None
        started = time.monotonic() - (metrics.clock if metrics is not None else 0.0)
        while iteration < t.steps:
            lr = lr_at(iteration + 1, t)
            for g in optimizer.param_groups:
                g["lr"] = lr
            loss, grad_norm = _train_step(model, optimizer, params, s, iteration, t)
            iteration += 1
            if metrics is not None:
                metrics.log(
                    {
                        "step": iteration,
                        "loss": loss,
                        "lr": lr,
                        "grad_norm": grad_norm,
                        "tokens": iteration * t.global_batch_size * t.seq_length,
                        "elapsed_s": round(time.monotonic() - started, 6),
                    }
                )
                log.info("step %d/%d loss %.4f lr %.2e", iteration, t.steps, loss, lr)
            interrupted = stop.agreed(device) and iteration < t.steps
            if iteration % t.save_interval == 0 or iteration == t.steps or interrupted:
                marker = {**marker_base, "consumed_samples": iteration * t.global_batch_size}
                last_ckpt = checkpoint.save(
                    paths.checkpoints, iteration, model, optimizer, marker, t.keep_last
                )
            if interrupted:
                log.warning("stop signal: checkpointed at iteration %d of %d", iteration, t.steps)
                break

    resumed = found[0] if found is not None else None
    summary = _summary(
        cfg, paths.train / "metrics.jsonl", iteration, parameters, layout, last_ckpt, t0, interrupted, resumed
    )
    if rank == 0:
        tmp = paths.train / "train.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
        tmp.replace(paths.train / "train.json")
    return summary


def _summary(
    cfg: RunConfig,
    metrics_path: Path,
    iteration: int,
    parameters: int,
    layout: Layout,
    ckpt: Path | None,
    t0: float,
    interrupted: bool,
    resumed_from: int | None,
) -> dict[str, Any]:
    losses: dict[int, float] = {}
    if metrics_path.is_file():
        for ln in metrics_path.read_text().splitlines():
            if ln.strip():
                rec = json.loads(ln)
                losses[rec["step"]] = rec["loss"]
    t = cfg.train
    return {
        "steps": t.steps,
        "iteration": iteration,
        "first_loss": losses[min(losses)] if losses else None,
        "final_loss": losses[max(losses)] if losses else None,
        "tokens": iteration * t.global_batch_size * t.seq_length,
        "parameters": parameters,
        **layout.record(),
        "wall_s": round(time.monotonic() - t0, 3),
        "checkpoint": _relative(ckpt, cfg.dir) if ckpt is not None else None,
        "resumed_from": resumed_from,
        "interrupted": interrupted,
    }
