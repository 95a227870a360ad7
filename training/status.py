"""Where a run stands: each stage's Slurm job state and restarts, and training's last checkpoint.

Job ids come from `RUN/slurm/jobs.json` (written by the Slurm executor); states from `scontrol` /
the jobcomp file (`slurm.submit.job_state`). Without Slurm jobs a stage is reported from its output
files: done when they exist. Training also reports its newest complete checkpoint, the last step in
metrics.jsonl and, from train.json, the device-hours and energy accounted so far.
"""

from __future__ import annotations

import json
from typing import Any

from commonweights.config import RunConfig
from commonweights.errors import SubmissionError
from training import checkpoint

STAGES = ("curate", "tokenize", "train", "export", "evaluate", "release")


def _outputs(cfg: RunConfig) -> dict[str, bool]:
    p = cfg.paths
    return {
        "curate": (p.curate / "manifest" / "manifest.json").is_file(),
        "tokenize": (p.tokens / "tokens.json").is_file(),
        "train": (p.train / "train.json").is_file(),
        "export": (p.hf / "export.json").is_file(),
        "evaluate": (p.eval / "results.json").is_file(),
        "release": (p.release / "SHA256SUMS").is_file(),
    }


def _jobs(cfg: RunConfig) -> dict[str, str]:
    path = cfg.paths.slurm / "jobs.json"
    if not path.is_file():
        return {}
    try:
        rec = json.loads(path.read_text())
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in rec.items()} if isinstance(rec, dict) else {}


def _job(job_id: str) -> dict[str, Any]:
    from slurm.submit import job_state

    try:
        info = job_state(job_id)
    except (SubmissionError, FileNotFoundError) as e:
        return {"job": job_id, "state": "UNKNOWN", "restarts": None, "note": str(e)}
    return {
        "job": job_id,
        "state": info["state"],
        "restarts": info["restarts"],
        "exit_code": info["exit_code"],
    }


def training_progress(cfg: RunConfig) -> dict[str, Any]:
    """Newest complete checkpoint, last logged step, and train.json's accounting when written."""
    found = checkpoint.newest(cfg.paths.checkpoints)
    out: dict[str, Any] = {
        "last_checkpoint": str(found[1].relative_to(cfg.dir)) if found else None,
        "checkpoint_iteration": found[0] if found else None,
        "steps": cfg.train.steps,
    }
    metrics = cfg.paths.train / "metrics.jsonl"
    if metrics.is_file():
        lines = [ln for ln in metrics.read_text().splitlines() if ln.strip()]
        if lines:
            last = json.loads(lines[-1])
            out |= {"last_step": last["step"], "last_loss": last["loss"]}
    summary = cfg.paths.train / "train.json"
    if summary.is_file():
        rec = json.loads(summary.read_text())
        compute = rec.get("compute") or {}
        out |= {
            "device_hours": compute.get("device_hours"),
            "energy_kwh": compute.get("energy_kwh"),
            "co2_kg": compute.get("co2_kg"),
            "attempts": compute.get("attempts"),
        }
    return out


def status(cfg: RunConfig) -> dict[str, Any]:
    """One entry per stage: Slurm job state and restarts (or local progress), plus training progress."""
    jobs, done = _jobs(cfg), _outputs(cfg)
    stages: dict[str, Any] = {}
    for stage in STAGES:
        if stage in jobs:
            entry = _job(jobs[stage])
        else:
            entry = {"job": None, "state": "done" if done[stage] else "not run", "restarts": None}
        entry["outputs"] = done[stage]
        if stage == "train":
            entry |= training_progress(cfg)
        stages[stage] = entry
    return {"run_dir": str(cfg.dir), "stages": stages}
