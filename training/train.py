"""The training loop for one process: `run(cfg)` (torchrun, Slurm and single-process alike).

Each process reads its rank from the environment (`dist_env`), joins the process group (gloo on CPU,
nccl on GPU), initialises megatron's model-parallel state, builds its pipeline stage of the model,
resumes from the newest complete checkpoint if there is one, and trains `cfg.train.steps` optimizer
steps on megatron-core's own training machinery: its `DistributedDataParallel` (gradient buffers,
data-parallel reduction), `get_megatron_optimizer` (AdamW or SGD, optionally the
DistributedOptimizer, bf16 with float32 master weights, gradient clipping over all model-parallel
shards), and `get_forward_backward_func` (1F1B pipeline schedule when pipeline_parallel > 1,
gradient accumulation over micro-batches) with `finalize_model_grads`. On a CPU the same code runs
through `training.cpu_compat`. Rank 0 writes `train/metrics.jsonl` (one line per step; `elapsed_s`
is training time so far, continued across resumes), `train/train.json` (summary) and the wandb run.

On SIGTERM or SIGUSR1 (Slurm preemption, `--signal=B:USR1@T`), or when the job's own end time is
near, every rank finishes the current step, the step is checkpointed, and under Slurm the job
requeues itself (`training.slurm_requeue`) so that it resumes by itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import secrets
import signal
import socket
import string
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from commonweights.config import LrSchedule, RunConfig, TrainConfig, WandbMode
from commonweights.errors import ConfigError
from training import accounting, checkpoint, cpu_compat, data_order, goldfish, slurm_requeue
from training.data import Tokens, batch, build_dataset, check_vocab, read_tokens
from training.model import Arch, arch_of, build_model, causal_mask, require, unwrap

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
    ours = not cuda and not cpu_compat.enabled() and cpu_compat.enable()
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
        if ours:  # leave the process as we found it (tests and notebooks train in-process)
            cpu_compat.disable()


# ------------------------------------------------------------------------------------ pure parts


def lr_at(step: int, t: TrainConfig) -> float:
    """LR for optimizer step `step` (1-based): linear warmup to lr, then the configured decay.

    cosine: from lr down to min_lr over the remaining steps. wsd (warmup-stable-decay): constant lr,
    then a linear decay to min_lr over the last `wsd_decay_fraction` of all steps.
    """
    if t.warmup_steps and step <= t.warmup_steps:
        return t.lr * step / t.warmup_steps
    if t.lr_schedule == LrSchedule.wsd:
        decay = max(1, round(t.steps * t.wsd_decay_fraction))
        start = max(t.warmup_steps, t.steps - decay)
        if step <= start:
            return t.lr
        progress = min(1.0, (step - start) / max(1, t.steps - start))
        return t.lr - (t.lr - t.min_lr) * progress
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

    def agreed(self, device: str, near_end: bool = False) -> bool:
        """Every rank stops at the same step if any rank got the signal (or sees the walltime near)."""
        mine = self.raised or near_end
        if dist.get_world_size() == 1:
            return mine
        flag = torch.tensor([1.0 if mine else 0.0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


def new_wandb_id() -> str:
    """A wandb run id (8 lowercase letters and digits, like wandb's own)."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def _wandb_run(cfg: RunConfig, run_id: str | None) -> Any:
    """The wandb run: a resumed job continues the run whose id its checkpoint recorded."""
    if cfg.train.wandb == WandbMode.disabled:
        return None
    require("wandb", "wandb", f"train.wandb={cfg.train.wandb.value}")
    import wandb

    cfg.paths.train.mkdir(parents=True, exist_ok=True)
    # The API key, if any, comes from the user's environment or netrc: never written by us.
    settings: dict[str, Any] = {
        "id": run_id or new_wandb_id(),
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
        summary = _train(cfg, tokens, layout, arch, device, env.rank, start)
    if summary["interrupted"] and env.rank == 0:
        # Under Slurm: back into the queue under the same job id, to resume from this checkpoint.
        summary["requeued"] = slurm_requeue.requeue_self(os.environ)
    return summary


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
    root: Path, model: Any, optimizer: Any, layout: Layout, rank: int, distributed_optimizer: bool
) -> tuple[int, Path] | None:
    """Load the newest complete checkpoint, if any; returns its (iteration, folder)."""
    found = checkpoint.newest(root)
    if found is None:
        return None
    marker = checkpoint.read_marker(found[1]) or {}
    saved = marker.get("layout", {})
    # RNG states are per (pipeline, tensor) rank: restorable only into the same grid.
    grid = (layout.tensor_parallel, layout.pipeline_parallel)
    same = (saved.get("tensor_parallel"), saved.get("pipeline_parallel")) == grid
    dist_opt = bool(marker.get("distributed_optimizer", False))
    if dist_opt != distributed_optimizer or (dist_opt and not same):
        raise ConfigError(
            f"{found[1]}: saved with distributed_optimizer={dist_opt} and tensor/pipeline parallel "
            f"{saved.get('tensor_parallel')}/{saved.get('pipeline_parallel')}; the config asks for "
            f"distributed_optimizer={distributed_optimizer} with {grid[0]}/{grid[1]}. The optimizer state "
            "of a DistributedOptimizer checkpoint reloads only with the same setting and the same TP/PP "
            "(any data-parallel size): restore those train.* values"
        )
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


def _loss_mask(b: dict[str, torch.Tensor], t: TrainConfig) -> torch.Tensor:
    mask = b["loss_mask"].float()
    if t.goldfish_k is not None:
        mask = mask * goldfish.keep_mask(b["tokens"], t.goldfish_k, t.goldfish_h)
    return mask


def forward_step_func(mask: torch.Tensor, t: TrainConfig) -> Callable[..., Any]:
    """Megatron's `forward_step_func(data_iterator, model)`: one micro-batch through this stage.

    Every stage reads the same micro-batch; the first uses the tokens, the last the labels. The loss
    function returns the micro-batch's mean token loss (megatron scales it by 1/num_microbatches).
    """

    def step(data_iterator: Iterator[dict[str, torch.Tensor]], model: Any) -> tuple[Any, Any]:
        b = next(data_iterator)
        output = model(b["tokens"], b["position_ids"], mask, labels=b["labels"])
        loss_mask = _loss_mask(b, t)

        def loss_func(per_token: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            loss = (per_token.float() * loss_mask).sum() / loss_mask.sum().clamp(min=1)
            return loss, {"lm loss": loss.detach().clone()}  # a clone: megatron divides in place

        return output, loss_func

    return step


def _train_step(
    model: Any, optimizer: Any, forward_backward: Callable[..., Any], s: _Step, step: int, t: TrainConfig
) -> tuple[float, float]:
    """One optimizer step (0-based `step`) through megatron's schedule and optimizer.

    Returns the loss averaged over micro-batches and data-parallel ranks, and the gradient norm.
    """
    from megatron.core import parallel_state

    model.zero_grad_buffer()
    optimizer.zero_grad()
    firsts = micro_batches(step, t, s.layout, s.dp_rank)
    batches = (
        {k: v.to(s.device) for k, v in batch(s.dataset, first, t.micro_batch_size).items()}
        for first in firsts
    )
    reports = forward_backward(
        forward_step_func=forward_step_func(s.mask, t),
        data_iterator=batches,
        model=[model],
        num_microbatches=len(firsts),
        seq_length=t.seq_length,
        micro_batch_size=t.micro_batch_size,
        forward_only=False,
    )
    _, grad_norm, _ = optimizer.step()
    loss = torch.zeros(1, dtype=torch.float64, device=s.device)
    if reports:  # the last pipeline stage
        loss += torch.stack([r["lm loss"] for r in reports]).double().mean()
    if parallel_state.get_pipeline_model_parallel_world_size() > 1:
        dist.all_reduce(loss, group=parallel_state.get_pipeline_model_parallel_group())
    return _mean_over_data_parallel(loss), float(grad_norm)


def build_training(
    arch: Arch, t: TrainConfig, layout: Layout, device: str
) -> tuple[Any, Any, Callable[..., Any]]:
    """Megatron DDP around this stage's model, the megatron optimizer and the forward-backward schedule."""
    from megatron.core.distributed import (
        DistributedDataParallel,
        DistributedDataParallelConfig,
        finalize_model_grads,
    )
    from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
    from megatron.core.pipeline_parallel import get_forward_backward_func

    module = build_model(
        arch,
        layout.tensor_parallel,
        layout.pipeline_parallel,
        cpu=device == "cpu",
        bf16=t.bf16,
        fused=t.fused_kernels,
    )
    module.to(device)
    config = unwrap(module).config
    ddp_config = DistributedDataParallelConfig(
        grad_reduce_in_fp32=True,
        overlap_grad_reduce=False,
        use_distributed_optimizer=t.distributed_optimizer,
    )
    model = DistributedDataParallel(config=config, ddp_config=ddp_config, module=module)
    opt_config = OptimizerConfig(
        optimizer=t.optimizer.value,
        lr=t.lr,
        min_lr=t.min_lr,
        weight_decay=t.weight_decay,
        adam_beta1=ADAM_BETAS[0],
        adam_beta2=ADAM_BETAS[1],
        adam_eps=ADAM_EPS,
        clip_grad=t.clip_grad,
        bf16=t.bf16,
        params_dtype=torch.bfloat16 if t.bf16 else torch.float32,
        use_distributed_optimizer=t.distributed_optimizer,
    )
    optimizer = get_megatron_optimizer(opt_config, [model])
    # What megatron's schedule calls after the backward passes: DP reduction, tied/embedding grads.
    config.finalize_model_grads_func = finalize_model_grads
    config.no_sync_func = model.no_sync
    if t.bf16:
        config.grad_scale_func = optimizer.scale_loss
    return model, optimizer, get_forward_backward_func()


@dataclass(frozen=True)
class _Order:
    """Rank 0's data-order log (training/data_order.py) and the doc_id table it names documents by."""

    log: data_order.Writer
    doc_ids: Any

    def on_saved(self, iteration: int) -> Callable[[str], dict[str, Any]]:
        def record(weights_sha256: str) -> dict[str, Any]:
            return {"data_order_head": self.log.checkpoint(iteration, weights_sha256)}

        return record


def _async_queue(t: TrainConfig, device: str) -> Any:
    """megatron's queue of background checkpoint writes, when saves are asynchronous (GPUs by default)."""
    if not (t.async_save if t.async_save is not None else device.startswith("cuda")):
        return None
    from megatron.core.dist_checkpointing.strategies.async_utils import AsyncCallsQueue

    return AsyncCallsQueue()


def _data_order(cfg: RunConfig, tokens: Tokens, marker: dict[str, Any] | None) -> _Order | None:
    """Open the log: fresh for a new run, cut back to the checkpoint's entry on a resume."""
    t = cfg.train
    meta = json.loads((cfg.paths.tokens / "tokens.json").read_text())
    ids = data_order.read_doc_ids(cfg.paths.tokens, tokens.documents)
    path = cfg.paths.train / data_order.FILE
    if marker is not None and "data_order_head" not in marker:
        log.warning("%s: the checkpoint predates the data-order log; this run writes none", path)
        return None
    head = data_order.header(
        tokens.sha256, meta.get("doc_ids_sha256"), t.seed, t.seq_length, t.global_batch_size,
        t.steps * t.global_batch_size,
    )
    resume = marker["data_order_head"] if marker is not None else None
    return _Order(data_order.Writer(path, head, resume), ids)


class _Metrics:
    """Rank 0's step log: metrics.jsonl (one JSON line per step) and the wandb run."""

    def __init__(
        self, cfg: RunConfig, resumed_at: int, wandb_id: str | None, stack: contextlib.ExitStack
    ) -> None:
        self.path = cfg.paths.train / "metrics.jsonl"
        cfg.paths.train.mkdir(parents=True, exist_ok=True)
        self.clock = _trim_metrics(self.path, resumed_at)
        self.out = stack.enter_context(self.path.open("a"))
        self.wandb = _wandb_run(cfg, wandb_id)
        self.wandb_id = self.wandb.id if self.wandb is not None else None
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
    t0_epoch = time.time() - (time.monotonic() - t0)
    from megatron.core import parallel_state

    t = cfg.train
    paths = cfg.paths
    model, optimizer, forward_backward = build_training(arch, t, layout, device)
    parameters = count_parameters(model, device)
    found = _resume(paths.checkpoints, unwrap(model), optimizer, layout, rank, t.distributed_optimizer)
    iteration = found[0] if found is not None else 0
    last_ckpt = found[1] if found is not None else None

    samples = t.steps * t.global_batch_size
    dataset = build_dataset(tokens, t.seq_length, samples, t.seed, paths.train / "cache")
    stop_at = min(t.steps, t.stop_after or t.steps)
    s = _Step(
        dataset, causal_mask(t.seq_length, device), layout, parallel_state.get_data_parallel_rank(), device
    )
    marker_base = {
        "config_digest": cfg.digest(),
        "tokens_sha256": tokens.sha256,
        "arch": arch.record(),
        "layout": layout.record(),
        "distributed_optimizer": t.distributed_optimizer,
        "rng": {"seed": t.seed, "key": checkpoint.RNG_KEY, "per": "pipeline x tensor rank"},
        "format": "megatron.core.dist_checkpointing torch_dist",
    }
    deadline = slurm_requeue.deadline(os.environ)
    attempt = accounting.Attempt(
        job_id=slurm_requeue.job_id(os.environ),
        restart=int(os.environ.get("SLURM_RESTART_COUNT", "0")),
        started_at=t0_epoch,
        ended_at=accounting.now(),
        processes=layout.world_size,
        gpus=layout.world_size if device.startswith("cuda") else 0,
        first_step=iteration,
        last_step=iteration,
    )
    saved_marker = checkpoint.read_marker(found[1]) if found is not None else None
    order = _data_order(cfg, tokens, saved_marker) if rank == 0 else None
    queue = _async_queue(t, device)
    interrupted = False
    model.train()
    with _StopFlag() as stop, contextlib.ExitStack() as stack:
        if queue is not None:
            # Normal exit: wait for the last write and finalise it. On an error the pending write is
            # abandoned: its folder stays `.tmp` and is never loaded.
            stack.push(lambda kind, *_: queue.close(abort=kind is not None))
        metrics = (
            _Metrics(cfg, iteration, (saved_marker or {}).get("wandb_run_id"), stack) if rank == 0 else None
        )
        if metrics is not None:
            marker_base["wandb_run_id"] = metrics.wandb_id
        started = time.monotonic() - (metrics.clock if metrics is not None else 0.0)
        step_started = time.monotonic()
        while iteration < stop_at:
            lr = lr_at(iteration + 1, t)
            for g in optimizer.param_groups:
                g["lr"] = lr
            loss, grad_norm = _train_step(model, optimizer, forward_backward, s, iteration, t)
            iteration += 1
            if queue is not None:
                queue.maybe_finalize_async_calls(blocking=False)
            if order is not None:
                first = (iteration - 1) * t.global_batch_size
                rec = data_order.batch_record(dataset, order.doc_ids, first, t.global_batch_size)
                order.log.step(iteration, rec, loss, grad_norm, lr)
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
            # Stop before the walltime: leave room for one more step and a checkpoint.
            step_s = time.monotonic() - step_started
            step_started = time.monotonic()
            near_end = (
                deadline is not None and time.time() + 2 * step_s + slurm_requeue.SAVE_MARGIN_S > deadline
            )
            interrupted = stop.agreed(device, near_end) and iteration < stop_at
            if iteration % t.save_interval == 0 or iteration == stop_at or interrupted:
                marker = {**marker_base, "consumed_samples": iteration * t.global_batch_size}
                if queue is not None:
                    queue.maybe_finalize_async_calls(blocking=True)  # one write in flight at a time
                    if order is not None:
                        order.log.hold()
                last_ckpt = checkpoint.save(
                    paths.checkpoints,
                    iteration,
                    unwrap(model),
                    optimizer,
                    marker,
                    t.keep_last,
                    on_saved=order.on_saved(iteration) if order is not None else None,
                    queue=queue,
                )
                if rank == 0:
                    attempt.ended_at, attempt.last_step = accounting.now(), iteration
                    accounting.record_attempt(paths.train, attempt)
            if interrupted:
                log.warning("stop: checkpointed at iteration %d of %d", iteration, t.steps)
                break

    resumed = found[0] if found is not None else None
    summary = _summary(
        cfg, paths.train / "metrics.jsonl", iteration, parameters, layout, last_ckpt, t0, interrupted, resumed
    )
    if rank == 0:
        attempt.ended_at, attempt.last_step = accounting.now(), iteration
        accounting.record_attempt(paths.train, attempt)
        attempts = accounting.read_attempts(paths.train)
        compute = accounting.compute_record(t, attempts, accounting.sacct_rows(a.job_id for a in attempts))
        summary.update(
            device_hours=compute["device_hours"],
            energy_kwh=compute["energy_kwh"],
            co2_kg=compute["co2_kg"],
            compute=compute,
            wandb_run_id=metrics.wandb_id if metrics is not None else None,
        )
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
