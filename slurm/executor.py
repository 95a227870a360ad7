"""The Slurm executor: each stage of a run becomes an sbatch job depending (afterok) on the previous one.

Jobs run `python -m commonweights <stage> --config RUN/config.resolved.yaml`, the same command the
local executor runs; nothing is pickled. Job ids go to `RUN/slurm/jobs.json`.
"""

from __future__ import annotations

import json
from typing import Any

from commonweights.config import RunConfig
from commonweights.errors import SubmissionError
from pipelines.stages import STAGES, log_event, stage_command
from slurm.sbatch import stage_spec
from slurm.submit import submit, wait

# What stage jobs need on top of the submitting shell's environment (sbatch exports it by default).
JOB_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def submit_run(
    cfg: RunConfig, *, wait_for: bool = False, timeout_s: float = 3600, stages: tuple[str, ...] = STAGES
) -> dict[str, Any]:
    """Submit the stages as a dependency chain; with `wait_for`, wait and fail naming the first bad job."""
    if "train" in stages:
        from training.launch import preflight

        # Fail here, not in a queued job: layout, token files and vocabulary (unless tokenize runs first).
        spec = stage_spec(cfg, "train", ["train"], training=True)
        world = (spec.nodes or 1) * (spec.ntasks_per_node or 1)
        preflight(cfg, world, tokens_exist="tokenize" not in stages[: stages.index("train")])
    config = cfg.write_resolved()
    jobs: dict[str, str] = {}
    previous: list[str] = []
    for stage in stages:
        spec = stage_spec(
            cfg, stage, stage_command(stage, config), dependency=previous, training=stage == "train"
        )
        spec = spec.model_copy(update={"env": {**JOB_ENV, **spec.env}})
        job = submit(spec, cfg.paths.slurm / f"{stage}.sbatch")
        jobs[stage] = job
        previous = [job]
        log_event(cfg, f"stage {stage}: submitted as Slurm job {job}")
    (cfg.paths.slurm / "jobs.json").write_text(json.dumps(jobs, indent=2) + "\n")
    result: dict[str, Any] = {"run_dir": str(cfg.dir), "jobs": jobs}
    if not wait_for:
        return result
    states = wait(list(jobs.values()), timeout_s=timeout_s)
    result["states"] = {stage: states[job] for stage, job in jobs.items()}
    for stage, job in jobs.items():
        if states[job] != "COMPLETED":
            log_event(cfg, f"stage {stage}: Slurm job {job} ended {states[job]}")
            raise SubmissionError(
                f"stage {stage} (Slurm job {job}) ended {states[job]}; "
                f"log: {cfg.paths.slurm / f'{stage}-{job}.out'}"
            )
    log_event(cfg, f"run {cfg.name}: all Slurm jobs completed; release in {cfg.paths.release}")
    return result
