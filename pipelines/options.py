"""Beam pipeline options from our typed config: one place that picks the runner.

The runner is always explicit: Beam's default DirectRunner first tries to download the Prism binary,
which hangs offline (STACK-FACTS). FnApiRunner runs in-process, or in worker processes when
`curate.runner` is multi-process; `dask` runs on a dask.distributed cluster; `external` takes the
runner and its flags from `curate.pipeline_args` (Flink, Spark, Dataflow: docs/runners.md).
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from commonweights.config import CurateConfig, Runner

# DaskRunner is refused under its short name (STACK-FACTS).
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"


def runner_flags(cfg: CurateConfig) -> list[str]:
    if cfg.runner == Runner.in_process:
        return ["--runner=FnApiRunner"]
    if cfg.runner == Runner.multi_process:
        return [
            "--runner=FnApiRunner",
            "--direct_running_mode=multi_processing",
            f"--direct_num_workers={cfg.workers}",
        ]
    if cfg.runner == Runner.dask:
        return [f"--runner={DASK_RUNNER}", f"--dask_client_address={cfg.dask_address}"]
    return []  # external: pipeline_args name the runner (validated by CurateConfig)


def pipeline_options(cfg: CurateConfig, extra: list[str] | None = None) -> PipelineOptions:
    return PipelineOptions(runner_flags(cfg) + list(cfg.pipeline_args) + list(extra or []))
