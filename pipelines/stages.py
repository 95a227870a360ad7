"""The stages of a run, in order, and the local executor that runs them one after another.

Each stage is a separate process (`python -m commonweights <stage> --config RUN/config.resolved.yaml`),
exactly as a Slurm job runs it: stages share nothing but files, a crash in one cannot corrupt the
state of another, and any stage can be rerun alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from commonweights.config import RunConfig
from commonweights.errors import StageError

STAGES: tuple[str, ...] = ("curate", "tokenize", "train", "export", "evaluate", "release")


def stage_function(name: str) -> Callable[[RunConfig], dict[str, Any]]:
    """The library function behind a stage (imported lazily: each pulls in a heavy engine)."""
    if name == "curate":
        from pipelines.curate import run as curate

        return curate
    if name == "tokenize":
        from pipelines.tokenize import run as tokenize

        return tokenize
    if name == "train":
        from training.launch import launch

        return lambda cfg: launch(cfg, cfg.paths.resolved_config)
    if name == "export":
        from training.export import export

        return export
    if name == "evaluate":
        from eval.evaluate import run as evaluate

        return evaluate
    if name == "release":
        from eval.release import run as release

        return release
    raise ValueError(f"unknown stage {name!r}; stages are {', '.join(STAGES)}")


def stage_command(name: str, config: Path) -> list[str]:
    return [sys.executable, "-m", "commonweights", name, "--config", str(config)]


def stage_env() -> dict[str, str]:
    """Environment of stage processes: hermetic hub access, offline wandb unless configured."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def log_event(cfg: RunConfig, message: str) -> None:
    cfg.paths.log.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with cfg.paths.log.open("a") as fh:
        fh.write(f"{stamp} {message}\n")


def run_local(
    cfg: RunConfig,
    stages: tuple[str, ...] = STAGES,
    on_start: Callable[[str], None] | None = None,
    on_end: Callable[[str, float], None] | None = None,
) -> dict[str, float]:
    """Run the stages in order as subprocesses; stop at the first failure with its log's tail."""
    config = cfg.write_resolved()
    cfg.paths.logs.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    log_event(cfg, f"run {cfg.name}: local executor, stages {', '.join(stages)}")
    for name in stages:
        log_path = cfg.paths.logs / f"{name}.log"
        if on_start:
            on_start(name)
        log_event(cfg, f"stage {name}: started (log: {log_path})")
        t0 = time.monotonic()
        with log_path.open("w") as out:
            proc = subprocess.run(
                stage_command(name, config), stdout=out, stderr=subprocess.STDOUT, env=stage_env()
            )
        elapsed = time.monotonic() - t0
        timings[name] = elapsed
        if proc.returncode != 0:
            log_event(cfg, f"stage {name}: FAILED with exit code {proc.returncode} after {elapsed:.1f}s")
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
            raise StageError(f"stage {name} failed (exit {proc.returncode}); full log: {log_path}\n{tail}")
        log_event(cfg, f"stage {name}: done in {elapsed:.1f}s")
        if on_end:
            on_end(name, elapsed)
    log_event(cfg, f"run {cfg.name}: complete; release in {cfg.paths.release}")
    return timings
