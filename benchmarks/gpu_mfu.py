"""Tokens/s per GPU and MFU of our training step on the `1b` preset in bf16 (prepared for H100/H200).

    # one GPU
    .venv/bin/python benchmarks/gpu_mfu.py --steps 300
    # all GPUs of a node (data parallel, DistributedOptimizer)
    .venv/bin/python -m torch.distributed.run --standalone --nproc-per-node 8 benchmarks/gpu_mfu.py

It runs exactly the training path (`training.train.build_training` + `_train_step`: megatron DDP,
`get_megatron_optimizer` with bf16 and float32 master weights, `get_forward_backward_func`) on
random token ids, so no token files are needed; the first `--warmup` steps are not timed.
Results go to benchmarks/results/gpu_mfu.json with the card's name. Refuses to run without CUDA.

FLOPs per trained token (Megatron-LM's accounting: matmuls only, forward + backward = 3x forward,
attention scores over the full sequence, no discount for the causal mask):

    F = 6 * (L * (2*h*h + 2*h*g*d + 3*h*f) + V*h)  +  12 * L * s * h

with L layers, h hidden size, g query groups (KV heads), d head dim, f SwiGLU width, V padded
vocabulary (output layer; the embedding lookup is no matmul), s sequence length. The first term is
6 x (matmul weights): 2 FLOPs per multiply-add, 3 passes; the second is QK^T and attention x V.
MFU = F * tokens/s/GPU / peak dense bf16 FLOPs of the card (H100 SXM and H200: 989.4e12; set
--peak-tflops for others).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from commonweights.config import TrainConfig  # noqa: E402
from training.model import Arch, arch_of, causal_mask  # noqa: E402
from training.train import (  # noqa: E402
    _Step,
    _train_step,
    build_training,
    check_layout,
    dist_env,
    lr_at,
    process_group,
)

PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12}


def flops_per_token(a: Arch) -> float:
    """Training FLOPs per token (see the module docstring)."""
    h, g, d, f = a.hidden_size, a.num_query_groups, a.head_dim, a.ffn_hidden_size
    weights = a.num_layers * (2 * h * h + 2 * h * g * d + 3 * h * f) + a.vocab_size * h
    return 6.0 * weights + 12.0 * a.num_layers * a.seq_length * h


class RandomTokens:
    """GPTDataset-shaped samples of random ids, deterministic per index."""

    def __init__(self, vocab: int, seq: int) -> None:
        self.vocab, self.seq = vocab, seq

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(i)
        ids = torch.randint(0, self.vocab, (self.seq + 1,), generator=g)
        return {
            "tokens": ids[:-1],
            "labels": ids[1:],
            "loss_mask": torch.ones(self.seq),
            "position_ids": torch.arange(self.seq),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="1b")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--micro-batch-size", type=int, default=4)
    ap.add_argument("--grad-accum", type=int, default=4, help="micro-batches per step per GPU")
    ap.add_argument("--seq-length", type=int, default=4096)
    ap.add_argument("--vocab", type=int, default=131072)
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument(
        "--fused-kernels",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train.fused_kernels: torch.compile-built SwiGLU and cross-entropy (--no-...: plain ops)",
    )
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "gpu_mfu.json")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu_mfu: no CUDA device here; run this on a GPU node (H100/H200)", file=sys.stderr)
        return 2
    env = dist_env(os.environ)
    dp = env.world_size
    t = TrainConfig.model_validate(
        {
            "preset": args.preset,
            "seq_length": args.seq_length,
            "micro_batch_size": args.micro_batch_size,
            "global_batch_size": args.micro_batch_size * args.grad_accum * dp,
            "nproc": dp,
            "steps": args.steps + args.warmup,
            "bf16": True,
            "distributed_optimizer": dp > 1,
            "lr": 3e-4,
            "min_lr": 3e-5,
            "warmup_steps": 10,
            "wandb": "disabled",
            "fused_kernels": args.fused_kernels,
        }
    )
    arch = arch_of(t, args.vocab, tied=t.tie_embeddings)
    layout = check_layout(t, dp)
    with process_group(env, 1, 1, t.seed) as device:
        from megatron.core import parallel_state

        model, optimizer, fb = build_training(arch, t, layout, device)
        s = _Step(
            RandomTokens(args.vocab, t.seq_length),
            causal_mask(t.seq_length, device),
            layout,
            parallel_state.get_data_parallel_rank(),
            device,
        )
        times: list[float] = []
        losses: list[float] = []
        began = time.perf_counter()
        warm_s = 0.0
        for step in range(t.steps):
            for g in optimizer.param_groups:
                g["lr"] = lr_at(step + 1, t)
            torch.cuda.synchronize()
            start = time.perf_counter()
            loss, _ = _train_step(model, optimizer, fb, s, step, t)
            torch.cuda.synchronize()
            losses.append(loss)
            if step >= args.warmup:
                times.append(time.perf_counter() - start)
            elif step == args.warmup - 1:
                warm_s = time.perf_counter() - began
        name = torch.cuda.get_device_name()
        peak = (
            (args.peak_tflops * 1e12)
            if args.peak_tflops
            else next((v for k, v in PEAK_BF16.items() if k in name), None)
        )
        tokens_per_gpu = t.global_batch_size * t.seq_length / dp * len(times) / sum(times)
        fpt = flops_per_token(arch)
        result: dict[str, Any] = {
            "benchmark": "gpu_mfu",
            "device": name,
            "gpus": dp,
            "preset": args.preset,
            "arch": arch.record(),
            "micro_batch_size": t.micro_batch_size,
            "global_batch_size": t.global_batch_size,
            "timed_steps": len(times),
            "fused_kernels": t.fused_kernels,
            "attention": "torch scaled_dot_product_attention (training.model.CausalSdpa)",
            "torch": torch.__version__,
            "megatron_core": version("megatron-core"),
            "warmup_steps_s": warm_s,
            "step_s_median": statistics.median(times),
            "step_s_min": min(times),
            "step_s_max": max(times),
            "first_loss": losses[0],
            "final_loss": loss,
            "tokens_per_s_per_gpu": tokens_per_gpu,
            "flops_per_token": fpt,
            "peak_flops": peak,
            "mfu": fpt * tokens_per_gpu / peak if peak else None,
            "memory_gib": torch.cuda.max_memory_allocated() / 2**30,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if not all(math.isfinite(x) for x in losses):
            print(f"gpu_mfu: a loss is not finite: {losses}", file=sys.stderr)
            return 1
        if env.rank == 0:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n")
            print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
