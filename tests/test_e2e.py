"""The main job end to end, through the real CLI: the tiny config on the local executor, and the same
run as dependent jobs on the local Slurm cluster. Every stage runs its real engine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commonweights", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=1500,
        env={**os.environ, **(env or {})},
    )


def signing_key(tmp: Path) -> tuple[dict[str, str], Path]:
    """A fresh key pair; the private key reaches the run through the environment, never the config."""
    proc = cli("keygen", str(tmp / "release.key"), cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    public = next(p for p in tmp.glob("release.key*") if p.name != "release.key")
    return {"COMMONWEIGHTS_SIGNING_KEY": str(tmp / "release.key")}, public


def check_release(run: Path, public: Path) -> None:
    """What a user relies on after `commonweights run`: every stage's output, consistent."""
    expected = (run / "crawl" / "expected.jsonl").read_text().splitlines()
    manifest = json.loads((run / "curate" / "manifest" / "manifest.json").read_text())
    assert manifest["rows"] == len(expected)
    assert manifest["counts"]["quarantined"] >= 2 and manifest["counts"]["kept"] > 100

    tokens = json.loads((run / "tokens" / "tokens.json").read_text())
    assert tokens["documents"] == manifest["counts"]["kept"]

    train = json.loads((run / "train" / "train.json").read_text())
    assert train["steps"] == 60 and train["final_loss"] < 0.7 * train["first_loss"]
    steps = [json.loads(line) for line in (run / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == list(range(1, 61))
    assert (run / "train" / "checkpoints" / "latest").read_text().strip() == "60"

    release = run / "release"
    for name in ("README.md", "SHA256SUMS", "transparency/report.json", "transparency/report.html"):
        assert (release / name).is_file(), name
    assert list((release / "model").glob("*.safetensors"))
    check = subprocess.run(
        ["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=release, capture_output=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    listed = {line.split("  ", 1)[1] for line in (release / "SHA256SUMS").read_text().splitlines()}
    # The signature signs statement.json (which lists every file); it cannot list itself.
    on_disk = {str(p.relative_to(release)) for p in release.rglob("*") if p.is_file()}
    assert "statement.sig" in on_disk
    on_disk -= {"SHA256SUMS", "statement.sig"}
    assert listed == on_disk

    verify = cli("verify", str(release), "--key", str(public), cwd=run)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    report = json.loads((release / "transparency" / "report.json").read_text())
    assert report["lineage"]["manifest_digest"] == manifest["digest"]["root"]
    results = json.loads((run / "eval" / "results.json").read_text())
    assert results["tasks"] and all(t["metrics"] for t in results["tasks"].values())

    # The exported weights load offline with transformers and produce a finite loss on kept text.
    probe = (
        "import json,sys,torch;from transformers import AutoModelForCausalLM,AutoTokenizer;"
        "m=AutoModelForCausalLM.from_pretrained(sys.argv[1]);t=AutoTokenizer.from_pretrained(sys.argv[1]);"
        "ids=t('The harbour committee met on Tuesday.',return_tensors='pt').input_ids;"
        "print(float(m(ids,labels=ids).loss))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(release / "model")],
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert 0 < float(out.stdout.strip().splitlines()[-1]) < 20


@pytest.mark.slow
def test_tiny_run_local(tmp_path):
    env, public = signing_key(tmp_path)
    proc = cli("run", str(TINY), "--set", f"dir={tmp_path / 'run'}", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = tmp_path / "run"
    check_release(run, public)
    log = (run / "run.log").read_text()
    for stage in ("curate", "tokenize", "train", "export", "evaluate", "release"):
        assert f"stage {stage}: done" in log and (run / "logs" / f"{stage}.log").is_file()
    check_replay(run, public, tmp_path / "auditor")


def check_replay(run: Path, public: Path, auditor: Path) -> None:
    """An outside auditor, with only the published release and the public key, replays its last window
    bit for bit, and a site owner learns which training steps read their site."""
    release = auditor / "release"
    shutil.copytree(run / "release", release)
    proc = cli("--format", "json", "verify", str(release), "--key", str(public), "--replay", cwd=auditor)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    replayed = json.loads(proc.stdout)["replay"]
    assert replayed["ok"] and replayed["bitwise"] and (replayed["from_step"], replayed["steps"]) == (40, 20)
    assert replayed["weights"]["equal"] and replayed["max_loss_rel_diff"] == 0.0

    order = [json.loads(ln) for ln in (release / "replay" / "data_order.jsonl").read_text().splitlines()]
    read_by: dict[str, list[int]] = {}
    for e in order:
        for d in e.get("doc_ids", []):
            read_by.setdefault(d, []).append(e["step"])
    kept = next(r for r in manifest_rows(run) if r["decision"] == "kept" and r["doc_id"] in read_by)
    proc = cli("--format", "json", "audit", "lookup", str(run), "--url", kept["url"], cwd=auditor)
    assert proc.returncode == 0, proc.stderr
    training = json.loads(proc.stdout)["training"]
    assert training["by_document"][kept["doc_id"]] == read_by[kept["doc_id"]]
    proc = cli("--format", "json", "audit", "lookup", str(run), "--domain", kept["domain"], cwd=auditor)
    steps = json.loads(proc.stdout)["training"]["steps"]
    assert set(read_by[kept["doc_id"]]) <= set(steps)


def manifest_rows(run: Path) -> list[dict]:
    import pyarrow.parquet as pq

    parts = sorted((run / "curate" / "manifest").glob("part-*.parquet"))
    return [r for part in parts for r in pq.read_table(part).to_pylist()]


@pytest.mark.slow
@pytest.mark.slurm
def test_tiny_run_on_slurm(tmp_path, slurm_cluster):
    env, public = signing_key(tmp_path)
    proc = cli(
        "run",
        str(TINY),
        "--executor",
        "slurm",
        "--wait",
        "--set",
        f"dir={tmp_path / 'run'}",
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = tmp_path / "run"
    jobs = json.loads((run / "slurm" / "jobs.json").read_text())
    assert list(jobs) == ["curate", "tokenize", "train", "export", "evaluate", "release"]
    scripts = {s: (run / "slurm" / f"{s}.sbatch").read_text() for s in jobs}
    assert f"--dependency=afterok:{jobs['curate']}" in scripts["tokenize"]
    assert "srun" in scripts["train"]
    check_release(run, public)


def test_bad_config_fails_before_any_work(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("num_attention_heads: 4", "num_attention_heads: 3"))
    proc = cli("run", str(bad), "--set", f"dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2
    assert "train.hidden_size=128 is not divisible by train.num_attention_heads=3" in proc.stderr
    assert not (tmp_path / "run").exists()
