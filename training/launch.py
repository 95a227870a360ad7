"""Start training: one process in-process, several through torchrun, or one task of a Slurm step.

Under Slurm (`srun` sets SLURM_PROCID/SLURM_NTASKS) every task is already a process of the job, so
each runs `train.run` in-process. Elsewhere `train.nproc > 1` starts that many local processes with
`python -m torch.distributed.run --standalone`, each running `python -m training --config PATH`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from commonweights.config import RunConfig
from commonweights.errors import StageError


def under_slurm(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    return "SLURM_PROCID" in environ and "SLURM_NTASKS" in environ


def torchrun_command(nproc: int, config_path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(nproc),
        "-m",
        "training",
        "--config",
        str(config_path),
    ]


def preflight(cfg: RunConfig, world_size: int, tokens_exist: bool = True) -> dict[str, Any]:
    """Check a training job before it is submitted: layout against the job's world size and, when the
    token files should already exist, the token files and the tokenizer/model vocabulary agreement."""
    from training.data import check_vocab, read_tokens
    from training.train import check_layout, resolve_arch

    layout = check_layout(cfg.train, world_size)
    out: dict[str, Any] = {"layout": layout.record()}
    if tokens_exist:
        tokens = read_tokens(cfg.paths)
        arch = resolve_arch(cfg, tokens.vocab_size)
        check_vocab(tokens, arch.vocab_size, cfg.paths.tokens / "tokens.json")
        out["vocab_size"] = arch.vocab_size
    return out


def launch(cfg: RunConfig, config_path: Path | None = None) -> dict[str, Any]:
    """Train per the config's layout; returns train/train.json's summary.

    `config_path` is the config the torchrun workers load; by default the resolved config is written
    to the run folder (absolute paths, overrides applied) and used, so workers see exactly `cfg`.
    """
    if under_slurm() or cfg.train.nproc == 1:
        from training.train import run

        return run(cfg)
    path = config_path or cfg.write_resolved()
    cmd = torchrun_command(cfg.train.nproc, path)
    done = subprocess.run(cmd, check=False)
    summary = cfg.paths.train / "train.json"
    if done.returncode != 0:
        raise StageError(
            f"train: {cfg.train.nproc} torchrun workers exited with code {done.returncode} "
            f"(command: {' '.join(cmd)}); their output is above"
        )
    if not summary.is_file():
        raise StageError(f"train: workers finished but wrote no {summary}")
    result: dict[str, Any] = json.loads(summary.read_text())
    return result
