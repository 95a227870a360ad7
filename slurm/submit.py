"""A thin wrapper around the Slurm commands: submit a rendered script, read a job's state, wait for jobs.

Only `sbatch`, `scontrol` and the jobcomp file are used (no pyslurm, no sacct: clusters without
slurmdbd still work). The commands find the cluster the usual way: `SLURM_CONF`, else
`/etc/slurm/slurm.conf` (which slurm/cluster/start.sh links to the local test cluster).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TypedDict

from commonweights.errors import SubmissionError
from slurm.sbatch import SbatchSpec, render

# States a job never leaves (a requeued job goes back to PENDING, so REQUEUED is not among them).
TERMINAL_STATES = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "OUT_OF_MEMORY",
        "NODE_FAIL",
        "PREEMPTED",
        "DEADLINE",
        "BOOT_FAIL",
    }
)
# What `wait` reports for a job left pending forever because a dependency failed (submitted without
# --kill-on-invalid-dep=yes; with it, Slurm cancels the job and the state is CANCELLED).
NEVER_SATISFIED = "DEPENDENCY_NEVER_SATISFIED"

_TIMEOUT_S = 60  # for one Slurm command; the controller answers in milliseconds when it is up
_FIELD = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_/:]*)=")


class JobState(TypedDict):
    job_id: str
    state: str
    """Slurm's base state, e.g. PENDING, RUNNING, COMPLETED, FAILED, CANCELLED."""
    exit_code: str
    """`code:signal`, e.g. `0:0`, or `3:0` for `exit 3`."""
    restarts: int
    """Times the job was requeued."""
    reason: str
    """Why it is pending or ended (`None`, `Dependency`, `DependencyNeverSatisfied`, ...); empty when
    read from the jobcomp file, which does not record it."""
    source: str
    """`scontrol`, or `jobcomp` when the controller no longer knows the job."""


def submit(spec: SbatchSpec, script_path: Path) -> str:
    """Write the rendered script to `script_path` (atomically), submit it, return the job id.

    The folders of `--output`/`--error` are created first: Slurm does not create them, and a job whose
    log folder is missing fails without writing a word anywhere.
    """
    text = render(spec)
    script_path = Path(script_path)
    _write_atomic(script_path, text)
    for log in (spec.output, spec.error):
        if log is not None and "%" not in str(log.parent):
            log.parent.mkdir(parents=True, exist_ok=True)
    out = _run(["sbatch", "--parsable", str(script_path)], f"submitting {script_path}")
    if out.returncode != 0:
        raise SubmissionError(f"sbatch refused {script_path}: {_tail(out.stderr)}")
    # --parsable prints "jobid" or "jobid;cluster".
    job_id = out.stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise SubmissionError(f"sbatch accepted {script_path} but printed no job id: {out.stdout!r}")
    return job_id


def job_state(job_id: str) -> JobState:
    """The state of one job from `scontrol show job`, or from the jobcomp file once scontrol forgot it."""
    out = _run(["scontrol", "show", "job", "-o", str(job_id)], f"reading the state of job {job_id}")
    if out.returncode == 0 and out.stdout.strip():
        return state_from_scontrol(out.stdout.splitlines()[0])
    if "Invalid job id" not in out.stderr:
        raise SubmissionError(f"scontrol show job {job_id} failed: {_tail(out.stderr)}")
    return jobcomp_state(job_id)


def jobcomp_state(job_id: str) -> JobState:
    """The state of a finished job from the cluster's jobcomp file (`JobCompType=jobcomp/filetxt`)."""
    path = jobcomp_path()
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as e:
        raise SubmissionError(
            f"job {job_id}: unknown to scontrol and jobcomp file {path} unreadable: {e}"
        ) from e
    state = state_from_jobcomp(lines, str(job_id))
    if state is None:
        raise SubmissionError(f"job {job_id}: unknown to scontrol and absent from the jobcomp file {path}")
    return state


def jobcomp_path() -> Path:
    """Where the controller writes finished jobs, from `scontrol show config`."""
    out = _run(["scontrol", "show", "config"], "reading the Slurm config")
    if out.returncode != 0:
        raise SubmissionError(f"scontrol show config failed: {_tail(out.stderr)}")
    conf = parse_config(out.stdout)
    if conf.get("JobCompType") != "jobcomp/filetxt" or not conf.get("JobCompLoc"):
        raise SubmissionError(
            f"this cluster has JobCompType={conf.get('JobCompType')!r}, so finished jobs older than "
            "MinJobAge cannot be looked up; set JobCompType=jobcomp/filetxt in slurm.conf"
        )
    return Path(conf["JobCompLoc"])


def wait(job_ids: Iterable[str], timeout_s: float, poll_s: float = 2.0) -> dict[str, str]:
    """Poll until every job is in a terminal state; return job id → state.

    A job whose dependency can never be met counts as ended and is reported as `NEVER_SATISFIED`
    (or CANCELLED, when it was submitted with --kill-on-invalid-dep=yes). Raises `SubmissionError`
    naming the jobs still going when `timeout_s` passes.
    """
    pending = list(dict.fromkeys(str(j) for j in job_ids))
    done: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while True:
        last: dict[str, JobState] = {}
        for job_id in pending:
            info = job_state(job_id)
            final = terminal_state(info)
            if final is None:
                last[job_id] = info
            else:
                done[job_id] = final
        pending = list(last)
        if not pending:
            return done
        if time.monotonic() >= deadline:
            going = ", ".join(f"{j}={s['state']}({s['reason']})" for j, s in last.items())
            raise SubmissionError(
                f"jobs not finished after {timeout_s:g}s: {going}; inspect with `scontrol show job <id>`"
            )
        time.sleep(poll_s)


def terminal_state(info: JobState) -> str | None:
    """The final state of a job, or None while it may still run."""
    if info["state"] in TERMINAL_STATES:
        return info["state"]
    if info["state"] == "PENDING" and info["reason"] == "DependencyNeverSatisfied":
        return NEVER_SATISFIED
    return None


def parse_record(line: str) -> dict[str, str]:
    """`Key=value Key=value ...` (scontrol -o, jobcomp) → dict.

    Values may contain blanks (job names, paths), so a value runs up to the next ` Key=`. When a key
    repeats, the last one wins: a job name that imitates ` JobState=X` comes before the real field.
    """
    marks = list(_FIELD.finditer(line))
    record: dict[str, str] = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(line)
        record[m.group(1)] = line[m.end() : end].strip()
    return record


def state_from_scontrol(line: str) -> JobState:
    r = parse_record(line)
    return JobState(
        job_id=r.get("JobId", ""),
        state=_base_state(r.get("JobState", "")),
        exit_code=r.get("ExitCode", ""),
        restarts=int(r.get("Restarts", "0") or 0),
        reason=r.get("Reason", ""),
        source="scontrol",
    )


def state_from_jobcomp(lines: Iterable[str], job_id: str) -> JobState | None:
    """The last record of `job_id` in jobcomp lines; each earlier record of it is one requeue."""
    records = [r for r in map(parse_record, lines) if r.get("JobId") == job_id]
    if not records:
        return None
    r = records[-1]
    return JobState(
        job_id=job_id,
        state=_base_state(r.get("JobState", "")),
        exit_code=r.get("ExitCode", ""),
        restarts=len(records) - 1,
        reason="",
        source="jobcomp",
    )


def parse_config(text: str) -> dict[str, str]:
    """`scontrol show config` output (`Key = value` lines) → dict."""
    conf: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            conf[key.strip()] = value.strip()
    return conf


def _base_state(state: str) -> str:
    # scontrol may print "CANCELLED by 0" in other fields; JobState itself is one word, maybe with
    # flags after '+' in newer versions.
    return state.split()[0].split("+")[0] if state else ""


def _run(argv: list[str], doing: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise SubmissionError(
            f"{doing}: `{argv[0]}` not found; install the Slurm client (locally: slurm/cluster/install.sh)"
        ) from None
    except subprocess.TimeoutExpired:
        raise SubmissionError(
            f"{doing}: `{' '.join(argv)}` gave no answer in {_TIMEOUT_S}s; is slurmctld up (`sinfo`)?"
        ) from None


def _tail(stderr: str) -> str:
    return " | ".join(stderr.strip().splitlines()[-5:]) or "(no message)"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
