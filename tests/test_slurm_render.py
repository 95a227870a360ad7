"""The sbatch renderer: golden scripts, safe quoting, and what the rendered script does when bash runs it.

Regenerate the golden files after an intended change with `UPDATE_GOLDEN=1 pytest tests/test_slurm_render.py`
and review the diff.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from commonweights.config import RunConfig
from commonweights.errors import ConfigError
from slurm.sbatch import Launch, SbatchSpec, directives, render, stage_spec

GOLDEN = Path(__file__).parent / "golden" / "slurm"


def cpu_stage() -> SbatchSpec:
    return SbatchSpec(
        job_name="tiny-curate",
        command=["commonweights", "curate", "--config", "/runs/tiny/config.resolved.yaml"],
        output=Path("/runs/tiny/slurm/curate-%j.out"),
        chdir=Path("/runs/tiny"),
        time="00:30:00",
        partition="cpu",
        account="proj-42",
        cpus_per_task=4,
        mem="8G",
        open_mode="append",
        setup=["module load python/3.11", "source /opt/venvs/commonweights/bin/activate"],
        env={"WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"},
    )


def gpu_training() -> SbatchSpec:
    return SbatchSpec(
        job_name="tiny-train",
        command=["commonweights", "train", "--config", "/runs/tiny/config.resolved.yaml"],
        output=Path("/runs/tiny/slurm/train-%j.out"),
        chdir=Path("/runs/tiny"),
        time="1-00:00:00",
        partition="gpu",
        account="proj-42",
        qos="normal",
        nodes=2,
        ntasks_per_node=4,
        cpus_per_task=8,
        gpus_per_node=4,
        mem="0",
        exclusive=True,
        requeue=True,
        signal="B:USR1@120",
        dependency=["101", "102"],
        kill_on_invalid_dep=True,
        open_mode="append",
        extra={"mail-type": "END,FAIL", "constraint": "a100"},
        setup=['MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"'],
        env={"OMP_NUM_THREADS": "8", "NCCL_DEBUG": "WARN"},
        launch=Launch.srun,
        srun_args=["--kill-on-bad-exit=1"],
    )


@pytest.mark.parametrize(
    ("name", "spec"), [("cpu_stage.sbatch", cpu_stage), ("gpu_training.sbatch", gpu_training)]
)
def test_render_matches_golden(name, spec):
    text = render(spec())
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{path} differs; if intended, rerun with UPDATE_GOLDEN=1"


def test_dependency_list_becomes_one_afterok_directive():
    d = directives(gpu_training())
    assert d["dependency"] == "afterok:101:102"
    assert d["kill-on-invalid-dep"] == "yes"


def test_extra_directives_are_merged_last():
    extra = {"time": "02:00:00", "mail-type": "FAIL", "hold": None}
    spec = SbatchSpec(**{**cpu_stage().model_dump(), "extra": extra})
    d = directives(spec)
    assert d["time"] == "02:00:00"  # the user's value wins over the typed field
    assert list(d)[-2:] == ["mail-type", "hold"]
    assert "#SBATCH --hold\n" in render(spec)


def test_unset_fields_leave_directives_out():
    d = directives(SbatchSpec(job_name="j", command=["true"], gpus_per_node=0))
    assert d == {"job-name": "j"}


# --- quoting and injection ------------------------------------------------------------------------


def sbatch_words(line: str) -> list[str]:
    """Split a `#SBATCH` line the way sbatch does (blanks separate words, double quotes group, a
    backslash escapes the next character, an unquoted '#' ends the line). The cluster tests check the
    same values against the real sbatch."""
    words: list[str] = []
    word, quoted, escaped, started = [], False, False, False
    for ch in line.removeprefix("#SBATCH"):
        if escaped:
            word.append(ch)
            escaped = False
        elif ch == "\\":
            escaped, started = True, True
        elif ch == '"':
            quoted, started = not quoted, True
        elif ch == "#" and not quoted:
            break
        elif ch.isspace() and not quoted:
            if started:
                words.append("".join(word))
            word, started = [], False
        else:
            word.append(ch)
            started = True
    if started:
        words.append("".join(word))
    return words


HOSTILE = [
    'x"; rm -rf / #',
    "$(touch /tmp/pwned)",
    "`touch /tmp/pwned`",
    "a b --partition=evil",
    "it's; echo hi",
    'back\\slash"quote',
    "# comment",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_is_one_directive_with_its_exact_text(value):
    spec = SbatchSpec(job_name=value, command=["true"], output=Path("/logs") / value, partition=value)
    lines = [line for line in render(spec).splitlines() if line.startswith("#SBATCH")]
    assert len(lines) == len(directives(spec)) == 3
    for line, key in zip(lines, ["job-name", "output", "partition"], strict=True):
        expected = str(Path("/logs") / value) if key == "output" else value
        assert sbatch_words(line) == [f"--{key}={expected}"]


@pytest.mark.parametrize("value", ["a\nb", "a\r#SBATCH --x", "tab\there", "nul\x00"])
@pytest.mark.parametrize("field", ["job_name", "partition", "output", "extra"])
def test_control_characters_in_directives_are_refused(field, value):
    kwargs: dict[str, object] = {"job_name": "j", "command": ["true"]}
    kwargs[field] = {"comment": value} if field == "extra" else value
    with pytest.raises(ConfigError, match="newline or control character"):
        SbatchSpec(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"extra": {"--mail-type": "END"}},
        {"extra": {"mail type": "END"}},
        {"env": {"A;touch x": "1"}},
        {"dependency": ["12; touch x"]},
        {"time": "30 minutes"},
        {"mem": "8 GB"},
        {"signal": "USR1@60; touch x"},
        {"srun_args": ["--mpi=pmix"]},  # without launch=srun
    ],
)
def test_invalid_values_are_refused_with_config_error(kwargs):
    with pytest.raises(ConfigError, match="sbatch spec for job 'j'"):
        SbatchSpec(job_name="j", command=["true"], **kwargs)


def run_script(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run a rendered script with bash outside Slurm (no SLURM_* variables), in tmp_path."""
    script = tmp_path / "job.sbatch"
    script.write_text(text)
    subprocess.run(["bash", "-n", str(script)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM")}
    return subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)


def test_hostile_values_never_execute(tmp_path):
    marker = tmp_path / "pwned"
    payloads = [
        f'x"; touch {marker} #',
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"'; touch {marker}; '",
        f"a\\'; touch {marker} #",
    ]
    spec = SbatchSpec(
        job_name=payloads[0],
        output=tmp_path / f"out-$(touch {marker}).log",
        error=tmp_path / f"err-`touch {marker}`.log",
        partition=payloads[3],
        account=payloads[4],
        env={f"V{i}": p for i, p in enumerate(payloads)},
        command=[
            sys.executable,
            "-c",
            "import json, os, sys; "
            "print(json.dumps([sys.argv[1:], [os.environ[f'V{i}'] for i in range(5)]]))",
            *payloads,
        ],
    )
    done = run_script(render(spec), tmp_path)
    assert done.returncode == 0, done.stderr
    assert not marker.exists()
    # The command received every word, and the env every value, byte for byte.
    assert json.loads(done.stdout) == [payloads, payloads]


def test_setup_runs_before_the_command_and_sees_exported_env(tmp_path):
    spec = SbatchSpec(
        job_name="j",
        setup=["echo setup > order.txt", 'GREETING="hello from setup"'],
        env={"STAGE": "curate"},
        command=["bash", "-c", 'echo "$STAGE" >> order.txt'],
    )
    done = run_script(render(spec), tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "order.txt").read_text() == "setup\ncurate\n"


def test_failing_setup_line_stops_the_job_before_the_command(tmp_path):
    spec = SbatchSpec(job_name="j", setup=["false"], command=["touch", "ran"])
    done = run_script(render(spec), tmp_path)
    assert done.returncode != 0
    assert not (tmp_path / "ran").exists()


def test_unset_variable_in_setup_stops_the_job(tmp_path):
    spec = SbatchSpec(job_name="j", setup=['echo "$NOT_SET_ANYWHERE_42"'], command=["touch", "ran"])
    done = run_script(render(spec), tmp_path)
    assert done.returncode != 0 and "NOT_SET_ANYWHERE_42" in done.stderr
    assert not (tmp_path / "ran").exists()


# --- stage jobs from a run config -------------------------------------------------------------------


def run_config(tmp_path: Path, **slurm: object) -> RunConfig:
    return RunConfig.model_validate(
        {"name": "tiny", "dir": str(tmp_path / "run"), "data": {"sample": {}}, "slurm": slurm}
    )


def test_stage_spec_for_a_cpu_stage(tmp_path):
    cfg = run_config(tmp_path, partition="cpu", time="01:00:00", setup=["module load python"])
    spec = stage_spec(cfg, "curate", ["commonweights", "curate"], dependency=["7"])
    d = directives(spec)
    assert d["job-name"] == "tiny-curate"
    assert d["output"] == str(cfg.paths.slurm / "curate-%j.out")
    assert d["chdir"] == str(cfg.dir)
    assert (d["partition"], d["time"], d["nodes"]) == ("cpu", "01:00:00", "1")
    assert (d["dependency"], d["kill-on-invalid-dep"]) == ("afterok:7", "yes")
    assert spec.launch is Launch.exec and spec.setup == ["module load python"]


def test_stage_spec_for_multi_node_gpu_training(tmp_path):
    cfg = run_config(tmp_path, nodes=2, gpus_per_node=4, extra={"constraint": "a100"})
    spec = stage_spec(cfg, "train", ["commonweights", "train"], training=True)
    d = directives(spec)
    assert (d["nodes"], d["ntasks-per-node"], d["gpus-per-node"]) == ("2", "4", "4")
    assert d["signal"] == "B:USR1@120" and "requeue" in d and d["constraint"] == "a100"
    text = render(spec)
    assert "exec srun --kill-on-bad-exit=1 -- commonweights train\n" in text
    assert "export MASTER_ADDR MASTER_PORT" in text


def test_stage_spec_refuses_cpu_training_that_does_not_split_over_nodes(tmp_path):
    cfg = RunConfig.model_validate(
        {
            "name": "tiny",
            "dir": str(tmp_path),
            "data": {"sample": {}},
            "train": {"nproc": 3, "micro_batch_size": 1, "global_batch_size": 3},
            "slurm": {"nodes": 2},
        }
    )
    with pytest.raises(ConfigError, match="slurm.nodes=2 does not divide train.nproc=3"):
        stage_spec(cfg, "train", ["commonweights", "train"], training=True)
