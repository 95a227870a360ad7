"""The release stage: gather the run's outputs into one verifiable folder.

    release/
      model/                    copy of hf/ (weights, config, tokenizer)
      README.md                 model card (Hugging Face front matter)
      transparency/report.json  data, training, evaluation and lineage in one document
      transparency/report.html  the same, readable offline (no external resources)
      data/manifest.json        copy of the curation manifest summary
      data/summary.json         what was kept and why the rest was not
      eval/results.json         copy of the evaluation results
      SHA256SUMS                every file above, in `sha256sum -c` format, sorted by path

Built in `release.tmp/` and renamed into place when complete. Signing is a separate step.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from commonweights.config import RunConfig
from commonweights.errors import InputError, StageError
from eval.card import render_card
from eval.report import build_report, data_summary, model_section, render_html

log = logging.getLogger(__name__)

SUMS_FILE = "SHA256SUMS"
MANIFEST_KEYS = (
    "schema_version",
    "policy",
    "policy_hash",
    "config_digest",
    "rows",
    "counts",
    "reasons",
    "licences",
    "domains",
    "digest",
)
TRAIN_KEYS = (
    "steps",
    "first_loss",
    "final_loss",
    "tokens",
    "parameters",
    "world_size",
    "tensor_parallel",
    "pipeline_parallel",
    "data_parallel",
    "wall_s",
    "iteration",
    "checkpoint",
)
METRIC_KEYS = ("step", "loss")
RESULTS_KEYS = ("lm_eval_version", "model", "batch_size", "limit", "seeds", "tasks")


@dataclass(frozen=True)
class Inputs:
    manifest_file: Path
    manifest: dict[str, Any]
    train: dict[str, Any]
    metrics: list[dict[str, Any]]
    hf: Path
    hf_config: dict[str, Any]
    results_file: Path
    results: dict[str, Any]


def _missing(path: Path, stage: str) -> InputError:
    return InputError(f"{path}: not found; run `commonweights {stage}` first")


def _parse(text: str, where: str, stage: str, keys: tuple[str, ...]) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: not valid JSON ({e.msg}); rerun `commonweights {stage}`") from None
    if not isinstance(doc, dict):
        raise InputError(f"{where}: expected a JSON object; rerun `commonweights {stage}`")
    absent = [k for k in keys if k not in doc]
    if absent:
        raise InputError(f"{where}: missing {', '.join(absent)}; rerun `commonweights {stage}`")
    return doc


def read_json(path: Path, stage: str, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    if not path.is_file():
        raise _missing(path, stage)
    return _parse(path.read_text(encoding="utf-8"), str(path), stage, keys)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise _missing(path, "train")
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [
        _parse(line, f"{path}:{n}", "train", METRIC_KEYS) for n, line in enumerate(lines, 1) if line.strip()
    ]
    if not rows:
        raise InputError(f"{path}: no training steps logged; rerun `commonweights train`")
    return rows


def read_inputs(cfg: RunConfig) -> Inputs:
    p = cfg.paths
    manifest_file = p.manifest / "manifest.json"
    results_file = p.eval / "results.json"
    return Inputs(
        manifest_file=manifest_file,
        manifest=read_json(manifest_file, "curate", MANIFEST_KEYS),
        train=read_json(p.train / "train.json", "train", TRAIN_KEYS),
        metrics=read_metrics(p.train / "metrics.jsonl"),
        hf=p.hf,
        hf_config=read_json(p.hf / "config.json", "export"),
        results_file=results_file,
        results=read_json(results_file, "evaluate", RESULTS_KEYS),
    )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256sums(root: Path) -> str:
    """`sha256sum` text for every file under `root` except SHA256SUMS, sorted by relative path."""
    lines = []
    for path in sorted(root.rglob("*"), key=lambda q: q.relative_to(root).as_posix()):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or rel == SUMS_FILE:
            continue
        if "\n" in rel or "\\" in rel:
            raise StageError(f"{path}: file name not representable in {SUMS_FILE}")
        lines.append(f"{sha256_file(path)}  {rel}\n")
    return "".join(lines)


def code_provenance() -> dict[str, Any]:
    """Package version, and the git commit (plus whether the tree had local changes) when the code
    runs from a git checkout that has one; null where that cannot be known."""
    try:
        version: str | None = metadata.version("commonweights")
    except metadata.PackageNotFoundError:
        version = None
    repo = Path(__file__).resolve().parents[1]
    commit, dirty = None, None
    if (repo / ".git").exists():
        try:
            head = subprocess.run(
                ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
            )
            if head.returncode == 0:
                commit = head.stdout.strip()
                diff = subprocess.run(
                    ["git", "-C", str(repo), "diff", "--quiet", "HEAD"], capture_output=True
                )
                dirty = diff.returncode != 0
        except FileNotFoundError:  # no git executable
            pass
    return {"code_version": version, "code_commit": commit, "code_dirty": dirty}


def lineage(cfg: RunConfig, inputs: Inputs) -> dict[str, Any]:
    m, t = inputs.manifest, inputs.train
    return {
        "manifest_digest": m["digest"]["root"],
        "manifest_digest_algorithm": m["digest"]["algorithm"],
        "policy_hash": m["policy_hash"],
        "config_digest": cfg.digest(),
        "curate_config_digest": m["config_digest"],
        "checkpoint": t["checkpoint"],
        "iteration": t["iteration"],
        "weights_sha256": {f.name: sha256_file(f) for f in sorted(inputs.hf.glob("*.safetensors"))},
        **code_provenance(),
    }


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


def run(cfg: RunConfig) -> dict[str, Any]:
    """Build `release/` from the manifest, training summary, HF export and evaluation results."""
    inputs = read_inputs(cfg)
    report = build_report(
        model=model_section(cfg.release, inputs.hf_config),
        manifest=inputs.manifest,
        train_config=cfg.train.model_dump(mode="json"),
        train=inputs.train,
        metrics=inputs.metrics,
        results=inputs.results,
        lineage=lineage(cfg, inputs),
    )
    final = cfg.paths.release
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    shutil.copytree(inputs.hf, tmp / "model")
    (tmp / "data").mkdir()
    shutil.copyfile(inputs.manifest_file, tmp / "data" / "manifest.json")
    _write_json(tmp / "data" / "summary.json", data_summary(inputs.manifest))
    (tmp / "eval").mkdir()
    shutil.copyfile(inputs.results_file, tmp / "eval" / "results.json")
    _write_json(tmp / "transparency" / "report.json", report)
    (tmp / "transparency" / "report.html").write_text(render_html(report), encoding="utf-8")
    (tmp / "README.md").write_text(render_card(report, cfg.release), encoding="utf-8")
    sums = sha256sums(tmp)
    (tmp / SUMS_FILE).write_text(sums, encoding="utf-8")

    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    log.info("release: %d files in %s", sums.count("\n"), final)
    return {
        "path": str(final),
        "files": sums.count("\n"),
        "sha256sums": hashlib.sha256(sums.encode()).hexdigest(),
        "manifest_digest": report["lineage"]["manifest_digest"],
    }
