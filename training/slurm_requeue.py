"""What a training job does about its Slurm allocation: its end time, and requeueing itself.

Slurm ends a job at its time limit, and preempts it with SIGTERM (or `--signal=B:USR1@T` shortly
before the limit). The loop checkpoints first; then the job's rank 0 calls `requeue_self`:
`scontrol requeue` puts the job back in the queue under the same id (SLURM_RESTART_COUNT grows), and
since Slurm holds a requeued job's start for a while, the job also sets its own StartTime to now
once it is pending, so the next allocation starts as soon as resources allow. The requeued job runs
the same batch script, finds the newest complete checkpoint and resumes.

Outside Slurm (no SLURM_JOB_ID) nothing here runs a command.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
from collections.abc import Mapping
from datetime import datetime

log = logging.getLogger("commonweights.train")

SAVE_MARGIN_S = 30.0  # seconds kept free before the walltime for the final checkpoint and exit


def job_id(environ: Mapping[str, str]) -> str | None:
    return environ.get("SLURM_JOB_ID") if "SLURM_PROCID" in environ else None


def _scontrol(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=30, check=False)


def job_fields(job: str) -> dict[str, str]:
    """`scontrol show job -o JOB` as key → value (empty when Slurm does not know the job)."""
    out = _scontrol("show", "job", "-o", job)
    fields: dict[str, str] = {}
    for word in out.stdout.split():
        key, sep, value = word.partition("=")
        if sep:
            fields.setdefault(key, value)
    return fields


def parse_end_time(value: str) -> float | None:
    """Slurm's EndTime (local time, ISO without zone) as epoch seconds; None for Unknown/None."""
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def deadline(environ: Mapping[str, str]) -> float | None:
    """Epoch seconds at which Slurm ends this job, or None outside Slurm or without a time limit."""
    job = job_id(environ)
    if job is None:
        return None
    fields = job_fields(job)
    if fields.get("TimeLimit") in (None, "UNLIMITED", "Partition_Limit"):
        return None
    return parse_end_time(fields.get("EndTime", ""))


def requeue_self(environ: Mapping[str, str]) -> bool:
    """Requeue this job and let it start again at once; True when Slurm accepted the requeue."""
    job = job_id(environ)
    if job is None:
        return False
    # The requeue makes Slurm send TERM to this job's processes: this one is done and exits cleanly,
    # rather than being counted by the batch supervisor as a failed step.
    with contextlib.suppress(ValueError):  # not the main thread: keep the handler
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    done = _scontrol("requeue", job)
    if done.returncode != 0:
        log.error("scontrol requeue %s failed: %s", job, done.stderr.strip())
        return False
    release_hold_detached(job)
    log.warning("requeued Slurm job %s; it resumes from the newest checkpoint", job)
    return True


# Polls until the requeued job is pending (only after every process of the old allocation ended),
# then lifts the start delay. It runs detached (own session, parent gone), so it outlives the job's
# processes where Slurm tracks them by process tree; under cgroup tracking it is ended with the job
# and the requeued job simply starts after Slurm's delay.
# The 3 s pause matters: slurmd revokes the old allocation's credential with one-second resolution,
# and a restart within the same second is refused ("Job credential revoked", the job then FAILS).
RELEASE_HOLD = (
    'for _ in $(seq 1 240); do '
    'if scontrol show job -o "$1" 2>/dev/null | grep -q "JobState=PENDING"; then '
    'sleep 3; scontrol update JobId="$1" StartTime=now; exit 0; fi; sleep 0.5; done'
)


def release_hold_detached(job: str) -> None:
    """Start the detached poller that sets the requeued job's StartTime to now once it is pending."""
    subprocess.Popen(
        ["bash", "-c", RELEASE_HOLD, "release-hold", job],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
