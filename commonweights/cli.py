"""The `commonweights` command line: thin commands that load the config, call one library function and
render its result. Data goes to stdout, diagnostics to stderr; exit codes 0 ok, 1 check failed,
2 usage or input error.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from commonweights import config as config_mod
from commonweights.config import Executor, RunConfig
from commonweights.errors import CommonweightsError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Consent-aware data-to-release pipeline: curate WARC data, train with Megatron-core, "
    "evaluate with lm-eval, publish a verifiable release.",
)
err = Console(stderr=True)


class Format(StrEnum):
    human = "human"
    json = "json"


ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Run config YAML.")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a config key, e.g. --set train.steps=10.")
]


@app.callback()
def main_options(
    ctx: typer.Context,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.human,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    ctx.obj = {"format": fmt, "debug": debug}
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("apache_beam", "root", "trafilatura", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def emit(ctx: typer.Context, result: dict[str, Any], title: str) -> None:
    if ctx.obj["format"] == Format.json:
        typer.echo(json.dumps(result, indent=2, default=str))
        return
    err.print(f"[bold green]{title}[/]")
    for key, value in result.items():
        typer.echo(f"{key}: {json.dumps(value, default=str) if isinstance(value, dict | list) else value}")


def load(path: Path, overrides: list[str] | None) -> RunConfig:
    return config_mod.load(path, overrides or [])


def _stage(name: str, title: str, doc: str) -> None:
    def command(ctx: typer.Context, config: ConfigOpt, set_: SetOpt = None) -> None:
        from pipelines.stages import stage_function

        cfg = load(config, set_)
        emit(ctx, stage_function(name)(cfg), title)

    command.__doc__ = doc
    app.command(name)(command)


_stage("curate", "curated", "Curate the WARC inputs: manifest (one row per record) + kept documents.")
_stage("tokenize", "tokenized", "Train the BPE tokenizer on kept text and write Megatron .bin/.idx files.")
_stage("train", "trained", "Train the Megatron-core model on the token files; checkpoints in train/.")
_stage("export", "exported", "Export the newest checkpoint to Hugging Face Llama format (hf/).")
_stage("evaluate", "evaluated", "Evaluate the exported model with lm-eval on the configured suites.")
_stage("release", "released", "Build the release folder: weights, card, transparency report, SHA256SUMS.")


@app.command()
def run(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="Run config YAML, e.g. configs/tiny.yaml.")],
    executor: Annotated[Executor, typer.Option(help="local: stages in turn here; slurm: sbatch jobs.")] = (
        Executor.local
    ),
    set_: SetOpt = None,
    wait: Annotated[bool, typer.Option(help="Slurm: wait for the jobs and report their states.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Validate and show the plan; run nothing.")] = False,
) -> None:
    """Run the whole pipeline: curate → tokenize → train → export → evaluate → release."""
    from pipelines.stages import STAGES, run_local

    cfg = load(config, set_)
    if dry_run:
        emit(ctx, {"run_dir": str(cfg.dir), "executor": executor.value, "stages": list(STAGES)}, "plan")
        return
    if executor == Executor.slurm:
        from slurm.executor import submit_run

        emit(ctx, submit_run(cfg, wait_for=wait), "submitted")
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=False
    ) as progress:
        tasks: dict[str, Any] = {}

        def start(stage: str) -> None:
            tasks[stage] = progress.add_task(f"{stage} (log: {cfg.paths.logs / (stage + '.log')})", total=1)

        def end(stage: str, seconds: float) -> None:
            progress.update(tasks[stage], completed=1, description=f"{stage} done in {seconds:.1f}s")

        timings = run_local(cfg, on_start=start, on_end=end)
    emit(
        ctx, {"run_dir": str(cfg.dir), "release": str(cfg.paths.release), "seconds": timings}, "run complete"
    )


@app.command("sample-crawl")
def sample_crawl(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="Folder to write warc/, robots.jsonl, expected.jsonl into.")],
    seed: int = 0,
    pages: int = 240,
    domains: int = 24,
) -> None:
    """Write the embedded sample crawl (deterministic WARC files + robots.txt snapshot)."""
    from pipelines.sample_crawl import write_sample_crawl

    emit(ctx, write_sample_crawl(out, seed=seed, pages=pages, domains=domains), "sample crawl written")


from commonweights.audit_cli import register as register_audit  # noqa: E402

register_audit(app)

from commonweights.consent_cli import register as register_consent  # noqa: E402

register_consent(app)

from commonweights.release_cli import register as register_release  # noqa: E402

register_release(app)

from commonweights.training_cli import register as register_training  # noqa: E402

register_training(app)


def main() -> None:
    """Console entry point: map our errors to one line and an exit code; --debug shows the traceback."""
    debug = "--debug" in sys.argv or os.environ.get("COMMONWEIGHTS_DEBUG") == "1"
    try:
        # Without standalone mode click returns the code of a typer.Exit instead of exiting with it.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except CommonweightsError as e:
        if debug:
            traceback.print_exc()
        err.print(f"[bold red]Error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        if not debug:
            err.print("(run with --debug for the traceback)", style="dim")
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as e:  # click's usage errors carry their own exit code (2)
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise
