"""Compute accounting for the transparency report: device-hours, energy and CO2 of a training run.

Device-hours come from Slurm's own records where the cluster keeps them (`sacct`, which needs
slurmdbd): the elapsed time of every attempt of every job that trained this run (requeued attempts
included, `sacct --duplicates`), times its GPUs (or, on a CPU-only allocation, its tasks). Where
there is no accounting, or outside Slurm, they come from the job's own timings: rank 0 records
each attempt (start, last checkpoint or end, processes) in `train/attempts.json`. Energy is
device-hours x `train.watts_per_device` x `train.pue`; CO2 is energy x `train.grid_gco2_per_kwh`.
These are estimates from configured figures, not meter readings, and are labelled so.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from commonweights.config import TrainConfig

ATTEMPTS = "attempts.json"
SACCT_FIELDS = "JobIDRaw,State,ElapsedRaw,AllocTRES,NNodes,Start,End"
_GPU = re.compile(r"gres/gpu(?::[^=,]+)?=(\d+)")
_CPU = re.compile(r"(?:^|,)cpu=(\d+)")


@dataclass
class Attempt:
    """One process group's life: a fresh start, a resume, or a requeued Slurm job."""

    job_id: str | None
    restart: int
    started_at: float  # epoch seconds
    ended_at: float
    processes: int
    gpus: int
    first_step: int
    last_step: int

    @property
    def device_hours(self) -> float:
        return max(0.0, self.ended_at - self.started_at) * (self.gpus or self.processes) / 3600


def read_attempts(train_dir: Path) -> list[Attempt]:
    path = train_dir / ATTEMPTS
    if not path.is_file():
        return []
    return [Attempt(**rec) for rec in json.loads(path.read_text())]


def record_attempt(train_dir: Path, attempt: Attempt) -> None:
    """Write or update this attempt (matched by start time) in attempts.json, atomically."""
    attempts = [a for a in read_attempts(train_dir) if a.started_at != attempt.started_at]
    attempts.append(attempt)
    attempts.sort(key=lambda a: a.started_at)
    tmp = train_dir / (ATTEMPTS + ".tmp")
    tmp.write_text(json.dumps([asdict(a) for a in attempts], indent=2) + "\n")
    tmp.replace(train_dir / ATTEMPTS)


def parse_sacct(text: str) -> list[dict[str, Any]]:
    """Rows of `sacct -n -P -X -D -o SACCT_FIELDS`: job id, state, elapsed seconds, GPUs, CPUs."""
    rows = []
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 4 or not parts[2].isdigit():
            continue
        tres = parts[3]
        gpu, cpu = _GPU.search(tres), _CPU.search(tres)
        rows.append(
            {
                "job_id": parts[0],
                "state": parts[1],
                "elapsed_s": int(parts[2]),
                "gpus": int(gpu.group(1)) if gpu else 0,
                "cpus": int(cpu.group(1)) if cpu else 0,
            }
        )
    return rows


def sacct_rows(job_ids: Iterable[str | None]) -> list[dict[str, Any]] | None:
    """Slurm's accounting records of these jobs, every attempt; None when accounting is unavailable."""
    ids = sorted({j for j in job_ids if j})
    if not ids:
        return None
    try:
        out = subprocess.run(
            ["sacct", "-n", "-P", "-X", "-D", "-j", ",".join(ids), "-o", SACCT_FIELDS],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:  # "Slurm accounting storage is disabled" and the like
        return None
    rows = parse_sacct(out.stdout)
    return rows or None


def compute_record(
    t: TrainConfig, attempts: list[Attempt], sacct: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """device_hours, energy_kwh, co2_kg and where the hours come from (for train.json)."""
    if sacct:
        hours = sum(r["elapsed_s"] * (r["gpus"] or _tasks(r, attempts)) for r in sacct) / 3600
        source = "sacct"
    else:
        hours = sum(a.device_hours for a in attempts)
        source = "job timings"
    energy = hours * t.watts_per_device * t.pue / 1000
    return {
        "device_hours": hours,
        "device_kind": "gpu" if any(a.gpus for a in attempts) else "cpu process",
        "attempts": len(sacct) if sacct else len(attempts),
        "restarts": max((a.restart for a in attempts), default=0),
        "source": source,
        "watts_per_device": t.watts_per_device,
        "pue": t.pue,
        "grid_gco2_per_kwh": t.grid_gco2_per_kwh,
        "energy_kwh": energy,
        "co2_kg": energy * t.grid_gco2_per_kwh / 1000,
        "method": "estimates: energy = device-hours x watts_per_device x PUE; CO2 = energy x grid intensity",
    }


def _tasks(row: dict[str, Any], attempts: list[Attempt]) -> int:
    """Processes of a CPU-only job: what its attempts recorded, else its allocated CPUs."""
    for a in attempts:
        if a.job_id == row["job_id"]:
            return a.processes
    return max(1, row["cpus"])


def now() -> float:
    return time.time()
