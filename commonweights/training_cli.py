"""`commonweights status CONFIG`: each stage's job state and restarts, and training's last checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("status")(status_cmd)


def status_cmd(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="Run config YAML (or RUN/config.resolved.yaml).")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key, e.g. --set dir=/scratch/run.")
    ] = None,
) -> None:
    """Show where a run stands: per stage its Slurm job, state and restarts (or local outputs), and
    for training the newest complete checkpoint, last step and compute accounted so far."""
    from commonweights.cli import emit, load
    from training.status import status

    emit(ctx, status(load(config, set_)), "run status")
