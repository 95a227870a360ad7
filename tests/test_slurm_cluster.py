"""Rendered jobs through a real Slurm cluster (the local one that `make test` starts).

Every job writes under the test's tmp_path; the fixture skips these tests when no cluster answers.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from commonweights.errors import SubmissionError
from slurm.sbatch import Launch, SbatchSpec
from slurm.submit import NEVER_SATISFIED, job_state, jobcomp_state, parse_record, submit, wait

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

TIMEOUT_S = 45  # per wait; jobs on the local cluster start within seconds


def job(tmp_path: Path, name: str, shell: str, **kw: object) -> SbatchSpec:
    """A job that runs `shell` with bash in tmp_path and logs to tmp_path/<name>-<jobid>.out."""
    return SbatchSpec(
        job_name=f"cw-test-{name}",
        command=["bash", "-c", shell],
        output=tmp_path / f"{name}-%j.out",
        chdir=tmp_path,
        time="00:02:00",
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def cancel_after():
    """Collects job ids and cancels them after the test, so no test leaves work on the cluster."""
    ids: list[str] = []
    yield ids
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30, check=False)


def test_a_job_runs_and_writes_its_output(tmp_path, cancel_after):
    job_id = submit(job(tmp_path, "hello", 'echo "hello from job $SLURM_JOB_ID"'), tmp_path / "hello.sbatch")
    cancel_after.append(job_id)
    assert wait([job_id], TIMEOUT_S, poll_s=0.5) == {job_id: "COMPLETED"}
    assert (tmp_path / f"hello-{job_id}.out").read_text() == f"hello from job {job_id}\n"
    state = job_state(job_id)
    assert (state["state"], state["exit_code"], state["source"]) == ("COMPLETED", "0:0", "scontrol")
    assert (tmp_path / "hello.sbatch").read_text().startswith("#!/bin/bash\n#SBATCH --job-name=cw-test-hello")


def test_a_two_task_srun_job_sees_both_ranks(tmp_path, cancel_after):
    spec = job(
        tmp_path,
        "ranks",
        'echo "rank $SLURM_PROCID of $SLURM_NTASKS"',
        nodes=1,
        ntasks_per_node=2,
        launch=Launch.srun,
    )
    job_id = submit(spec, tmp_path / "ranks.sbatch")
    cancel_after.append(job_id)
    assert wait([job_id], TIMEOUT_S, poll_s=0.5) == {job_id: "COMPLETED"}
    lines = (tmp_path / f"ranks-{job_id}.out").read_text().splitlines()
    assert sorted(lines) == ["rank 0 of 2", "rank 1 of 2"]


def test_afterok_chain_runs_in_order(tmp_path, cancel_after):
    a = submit(job(tmp_path, "a", "sleep 1; date +%s.%N > a.end"), tmp_path / "a.sbatch")
    cancel_after.append(a)
    b = submit(job(tmp_path, "b", "date +%s.%N > b.start", dependency=[a]), tmp_path / "b.sbatch")
    cancel_after.append(b)
    assert wait([a, b], TIMEOUT_S, poll_s=0.5) == {a: "COMPLETED", b: "COMPLETED"}
    assert float((tmp_path / "b.start").read_text()) >= float((tmp_path / "a.end").read_text())


def test_failed_job_cancels_its_dependent_which_never_runs(tmp_path, cancel_after):
    a = submit(job(tmp_path, "a", "exit 3"), tmp_path / "a.sbatch")
    cancel_after.append(a)
    b_spec = job(tmp_path, "b", "touch b.ran", dependency=[a], kill_on_invalid_dep=True)
    b = submit(b_spec, tmp_path / "b.sbatch")
    cancel_after.append(b)
    assert wait([a, b], TIMEOUT_S, poll_s=0.5) == {a: "FAILED", b: "CANCELLED"}
    assert job_state(a)["exit_code"] == "3:0"
    assert job_state(b)["reason"] == "DependencyNeverSatisfied"
    assert not (tmp_path / "b.ran").exists()


def test_wait_reports_a_dependency_that_can_never_be_met(tmp_path, cancel_after):
    a = submit(job(tmp_path, "a", "exit 1"), tmp_path / "a.sbatch")
    cancel_after.append(a)
    b = submit(job(tmp_path, "b", "true", dependency=[a], kill_on_invalid_dep=False), tmp_path / "b.sbatch")
    cancel_after.append(b)
    assert wait([a, b], TIMEOUT_S, poll_s=0.5) == {a: "FAILED", b: NEVER_SATISFIED}
    assert job_state(b)["state"] == "PENDING"


def test_wait_raises_when_jobs_outlast_the_timeout(tmp_path, cancel_after):
    job_id = submit(job(tmp_path, "long", "sleep 60"), tmp_path / "long.sbatch")
    cancel_after.append(job_id)
    with pytest.raises(SubmissionError, match=f"not finished after 1s: {job_id}="):
        wait([job_id], timeout_s=1, poll_s=0.2)


def test_hostile_names_and_paths_reach_slurm_verbatim(tmp_path, cancel_after):
    marker = tmp_path / "pwned"
    name = f'x"; touch {marker} # $(touch {marker}) `touch {marker}` back\\slash'
    out = tmp_path / "o $(touch pwned) #.out"
    spec = SbatchSpec(job_name=name, command=["echo", "ok"], output=out, chdir=tmp_path, time="00:02:00")
    job_id = submit(spec, tmp_path / "hostile.sbatch")
    cancel_after.append(job_id)
    assert wait([job_id], TIMEOUT_S, poll_s=0.5) == {job_id: "COMPLETED"}
    shown = subprocess.run(
        ["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, check=True
    ).stdout
    record = parse_record(shown)
    assert record["JobName"] == name
    assert record["StdOut"] == str(out)
    assert out.read_text() == "ok\n"
    assert not marker.exists() and not (tmp_path / "pwned").exists()


def test_refused_submission_names_the_script_and_sbatch_error(tmp_path):
    script = tmp_path / "bad.sbatch"
    with pytest.raises(SubmissionError, match=r"sbatch refused .*bad\.sbatch: .*[Ii]nvalid partition"):
        submit(job(tmp_path, "bad", "true", partition="no-such-partition"), script)
    assert script.is_file()  # kept, so the user can read what was refused


def test_finished_jobs_are_found_in_the_jobcomp_file(tmp_path, cancel_after):
    ok = submit(job(tmp_path, "ok", "true"), tmp_path / "ok.sbatch")
    bad = submit(job(tmp_path, "bad", "exit 4"), tmp_path / "bad.sbatch")
    cancel_after.extend([ok, bad])
    assert wait([ok, bad], TIMEOUT_S, poll_s=0.5) == {ok: "COMPLETED", bad: "FAILED"}
    done, failed = jobcomp_state(ok), jobcomp_state(bad)
    assert (done["state"], done["exit_code"], done["source"]) == ("COMPLETED", "0:0", "jobcomp")
    assert (failed["state"], failed["exit_code"]) == ("FAILED", "4:0")
