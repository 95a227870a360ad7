"""Training through Slurm: rendered training jobs, bad configs refused before submission, and on the
real local cluster a 2-task job, preemption by signal, and a killed process, each resuming exactly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from test_training import make_cfg, metrics, write_tokens

from commonweights.config import RunConfig
from commonweights.errors import ConfigError, InputError
from slurm.sbatch import directives, render, stage_spec
from slurm.submit import job_state
from training import checkpoint
from training.slurm_requeue import parse_end_time
from training.status import status

REPO = Path(__file__).resolve().parents[1]
# Long enough that a signal sent a few steps in lands mid-run; short enough for a test.
TRAIN = {"steps": 60, "save_interval": 10, "keep_last": 3, "nproc": 2}


def slurm_cfg(root: Path, **slurm: object) -> RunConfig:
    cfg = make_cfg(root, **TRAIN)
    return RunConfig.model_validate({**cfg.to_record(), "slurm": {"time": "00:10:00", **slurm}})


# ---------------------------------------------------------------------------- rendering (no cluster)


def test_training_job_has_requeue_signal_switches_container_and_nccl(tmp_path: Path) -> None:
    cfg = slurm_cfg(
        tmp_path,
        nodes=2,
        gpus_per_node=4,
        exclusive=True,
        signal_seconds=300,
        switches=1,
        switches_max_wait="00:30:00",
        container_image="nvcr.io#nvidia/pytorch:25.01-py3",
        container_mounts=["/scratch:/scratch", "/data with space:/data"],
        nccl_env={"NCCL_IB_HCA": "mlx5", "NCCL_DEBUG": "WARN"},
        max_requeues=5,
    )
    spec = stage_spec(cfg, "train", ["commonweights", "train"], training=True)
    d = directives(spec)
    assert (d["nodes"], d["ntasks-per-node"], d["gpus-per-node"]) == ("2", "4", "4")
    assert d["signal"] == "B:USR1@300" and d["switches"] == "1@00:30:00"
    assert "requeue" in d and "exclusive" in d
    text = render(spec)
    assert "export NCCL_IB_HCA=mlx5\nexport NCCL_DEBUG=WARN\n" in text
    assert (
        "exec srun --kill-on-bad-exit=1 '--container-image=nvcr.io#nvidia/pytorch:25.01-py3' "
        "'--container-mounts=/scratch:/scratch,/data with space:/data' -- commonweights train\n"
    ) in text
    assert '[ "${SLURM_RESTART_COUNT:-0}" -lt 5 ]' in text
    # The supervisor comes before the setup lines, so only the supervised copy runs them.
    assert text.index("COMMONWEIGHTS_SUPERVISED=1") < text.index("MASTER_ADDR=")


def test_bad_switches_and_nccl_names_are_refused(tmp_path: Path) -> None:
    cfg = slurm_cfg(tmp_path, switches=1, switches_max_wait="soon")
    with pytest.raises(ConfigError, match="--switches='1@soon' is not a valid Slurm switches value"):
        stage_spec(cfg, "train", ["commonweights", "train"], training=True)
    cfg = slurm_cfg(tmp_path, nccl_env={"NCCL DEBUG": "WARN"})
    with pytest.raises(ConfigError, match="env name 'NCCL DEBUG' is not a shell variable name"):
        stage_spec(cfg, "train", ["commonweights", "train"], training=True)


def test_slurm_end_time_parses_and_unknown_is_none() -> None:
    end = parse_end_time("2026-11-26T03:00:00")
    assert end == datetime(2026, 11, 26, 3, 0, 0).timestamp()
    assert parse_end_time("Unknown") is None


# ------------------------------------------------------------------------------ the local cluster


def _submit_train(cfg: RunConfig) -> str:
    from slurm.executor import submit_run

    return str(submit_run(cfg, stages=("train",))["jobs"]["train"])


def _wait_done(job: str, timeout_s: float = 600) -> dict:
    """Wait until the job (requeues included) COMPLETED; fail with its state otherwise."""
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        info = job_state(job)
        if info["state"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
            return dict(info)
        time.sleep(1)
    raise AssertionError(f"job {job} not finished after {timeout_s}s: {job_state(job)}")


def _wait_steps(cfg: RunConfig, n: int, job: str, timeout_s: float = 300) -> None:
    log = cfg.paths.train / "metrics.jsonl"
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        if log.is_file() and len(log.read_text().splitlines()) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"job {job} logged fewer than {n} steps in {timeout_s}s: {job_state(job)}")


def _job_log(cfg: RunConfig, job: str) -> str:
    path = cfg.paths.slurm / f"train-{job}.out"
    return path.read_text(errors="replace") if path.is_file() else "(no log)"


def _new_run(root: Path, reference: RunConfig) -> RunConfig:
    shutil.copytree(reference.paths.tokens, root / "tokens")
    return slurm_cfg(root)


@pytest.fixture(scope="module")
def reference_job(tmp_path_factory: pytest.TempPathFactory, slurm_cluster: str) -> RunConfig:
    """The uninterrupted reference: 2 tasks (DP=2 over gloo) through sbatch + srun to completion."""
    root = tmp_path_factory.mktemp("slurm-ref")
    write_tokens(root / "tokens", docs=120)
    cfg = slurm_cfg(root)
    job = _submit_train(cfg)
    try:
        info = _wait_done(job)
    finally:
        subprocess.run(["scancel", job], capture_output=True, timeout=30, check=False)
    assert info["state"] == "COMPLETED", _job_log(cfg, job)
    return cfg


@pytest.fixture
def cancel_after():
    ids: list[str] = []
    yield ids
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30, check=False)


def _same_losses(a: RunConfig, b: RunConfig) -> None:
    ref, got = metrics(a), metrics(b)
    assert [r["step"] for r in got] == [r["step"] for r in ref] == list(range(1, TRAIN["steps"] + 1))
    for x, y in zip(ref, got, strict=True):
        assert y["loss"] == pytest.approx(x["loss"], abs=1e-6), (x["step"], x["loss"], y["loss"])


@pytest.mark.slurm
@pytest.mark.slow
def test_two_task_training_job_runs_to_completion(reference_job: RunConfig) -> None:
    summary = json.loads((reference_job.paths.train / "train.json").read_text())
    assert (summary["world_size"], summary["data_parallel"], summary["iteration"]) == (2, 2, TRAIN["steps"])
    assert summary["first_loss"] - summary["final_loss"] > 1.0 and summary["interrupted"] is False
    compute = summary["compute"]
    assert compute["attempts"] == 1 and compute["device_hours"] > 0 and summary["energy_kwh"] > 0
    st = status(reference_job)["stages"]["train"]
    assert st["state"] == "COMPLETED" and st["restarts"] == 0
    assert st["checkpoint_iteration"] == TRAIN["steps"] and st["last_step"] == TRAIN["steps"]


@pytest.mark.slurm
@pytest.mark.slow
def test_usr1_checkpoints_requeues_and_resumes_with_the_same_losses(
    reference_job: RunConfig, tmp_path: Path, cancel_after: list[str]
) -> None:
    cfg = _new_run(tmp_path / "run", reference_job)
    job = _submit_train(cfg)
    cancel_after.append(job)
    _wait_steps(cfg, 5, job)
    # What Slurm does before the time limit with --signal=B:USR1@T: USR1 to the batch shell.
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], check=True, timeout=30)
    info = _wait_done(job)
    log = _job_log(cfg, job)
    assert info["state"] == "COMPLETED" and info["restarts"] == 1, log
    assert "stop: checkpointed at iteration" in log and "requeued Slurm job" in log, log
    summary = json.loads((cfg.paths.train / "train.json").read_text())
    assert summary["resumed_from"] is not None and 5 <= summary["resumed_from"] < TRAIN["steps"]
    assert f"stop: checkpointed at iteration {summary['resumed_from']} of" in log  # the signal's own save
    assert summary["compute"]["attempts"] == 2 and summary["compute"]["restarts"] == 1
    _same_losses(reference_job, cfg)
    assert status(cfg)["stages"]["train"]["restarts"] == 1


def _training_pids(cfg: RunConfig) -> list[int]:
    """Pids of this run's training processes (their command line names its resolved config)."""
    needle = str(cfg.paths.resolved_config).encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in cmd and b"train" in cmd and b"commonweights" in cmd and not cmd[0].endswith(b"srun"):
            pids.append(int(proc.name))
    return pids


@pytest.mark.slurm
@pytest.mark.slow
def test_killed_process_requeues_and_resumes_from_the_last_complete_checkpoint(
    reference_job: RunConfig, tmp_path: Path, cancel_after: list[str]
) -> None:
    cfg = _new_run(tmp_path / "run", reference_job)
    job = _submit_train(cfg)
    cancel_after.append(job)
    _wait_steps(cfg, TRAIN["save_interval"] + 3, job)
    pids = _training_pids(cfg)
    assert len(pids) == 2, pids
    os.kill(pids[-1], signal.SIGKILL)
    info = _wait_done(job)
    log = _job_log(cfg, job)
    assert info["state"] == "COMPLETED" and info["restarts"] == 1, log
    assert "requeueing job" in log, log
    summary = json.loads((cfg.paths.train / "train.json").read_text())
    resumed = summary["resumed_from"]
    assert resumed is not None and resumed % TRAIN["save_interval"] == 0 and resumed >= TRAIN["save_interval"]
    assert checkpoint.newest(cfg.paths.checkpoints)[0] == TRAIN["steps"]
    _same_losses(reference_job, cfg)


def test_bad_configs_fail_before_anything_is_submitted(tmp_path: Path) -> None:
    from slurm.executor import submit_run

    # TP not dividing the heads: refused when the config is read.
    with pytest.raises(ValueError, match="num_attention_heads=4 is not divisible by train.tensor_parallel=3"):
        make_cfg(tmp_path, tensor_parallel=3, nproc=3, micro_batch_size=8, global_batch_size=8)
    # Missing token files and a tokenizer/vocab mismatch: refused by the pre-submission check.
    cfg = slurm_cfg(tmp_path / "missing")
    with pytest.raises(InputError, match="tokens.json: token file not found"):
        submit_run(cfg, stages=("train",))
    assert not (cfg.paths.slurm / "jobs.json").exists()
    meta = write_tokens(tmp_path / "mismatch" / "tokens", docs=30)
    (tmp_path / "mismatch" / "tokens" / "tokens.json").write_text(
        json.dumps({**meta, "vocab_size": meta["vocab_size"] + 5})
    )
    cfg = slurm_cfg(tmp_path / "mismatch")
    with pytest.raises(InputError, match="different tokenizer runs"):
        submit_run(cfg, stages=("train",))
    assert not (cfg.paths.slurm / "jobs.json").exists()
