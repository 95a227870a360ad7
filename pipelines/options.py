"""Beam pipeline options from our typed config: one place that picks the runner.

The runner is always explicit: Beam's default DirectRunner first tries to download the Prism binary,
which hangs offline (STACK-FACTS). FnApiRunner runs in-process, or in worker processes when
`curate.runner` is multi-process.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from commonweights.config import CurateConfig, Runner


def pipeline_options(cfg: CurateConfig, extra: list[str] | None = None) -> PipelineOptions:
    flags = ["--runner=FnApiRunner"]
    if cfg.runner == Runner.multi_process:
        flags += ["--direct_running_mode=multi_processing", f"--direct_num_workers={cfg.workers}"]
    return PipelineOptions(flags + list(extra or []))
