"""The release stage: a verifiable folder built from the run's real output files."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import torch
from huggingface_hub import ModelCard, metadata_load
from transformers import LlamaConfig, LlamaForCausalLM

from commonweights.config import RunConfig, policy_hash, policy_record
from commonweights.errors import InputError
from eval import release
from eval.report import loss_curve_svg

REASONS = {
    "robots:GPTBot": 6,
    "licence:missing": 4,
    "quality:too_short": 5,
    "malformed:no_html": 2,
    "tdm_reserved": 3,
}
LICENCES = {"CC-BY-4.0": 20, "none": 30, "CC0-1.0": 7}
DOMAINS = {f"site{i:02d}.example": {"total": 20 - i, "kept": (20 - i) // 2} for i in range(12)}
RESULTS: dict[str, Any] = {
    "lm_eval_version": "0.4.13",
    "model": "/runs/t/hf",
    "batch_size": 8,
    "limit": 20,
    "seeds": {"random": 0, "numpy": 1234, "torch": 1234, "fewshot": 1234},
    "tasks": {
        "commonweights_cloze": {
            "version": 1,
            "n": 20,
            "metrics": {"acc": 0.35, "acc_stderr": 0.1094, "acc_norm": 0.3, "acc_norm_stderr": 0.1051},
        },
        "commonweights_paragraphs": {
            "version": 1,
            "n": 20,
            "metrics": {
                "word_perplexity": 812.25,
                "word_perplexity_stderr": None,
                "byte_perplexity": 4.1875,
                "byte_perplexity_stderr": None,
                "bits_per_byte": 2.0661,
                "bits_per_byte_stderr": None,
            },
        },
    },
}


def write_json(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def make_run(root: Path) -> RunConfig:
    """A run folder holding what curate, train, export and evaluate leave behind."""
    cfg = RunConfig.model_validate({"name": "t", "dir": str(root), "data": {"sample": {}}})
    p = cfg.paths
    write_json(
        p.manifest / "manifest.json",
        {
            "schema_version": 1,
            "policy": policy_record(cfg.governance),
            "policy_hash": policy_hash(cfg.governance),
            "config_digest": cfg.digest(),
            "rows": 57,
            "counts": {"kept": 40, "dropped": 15, "quarantined": 2},
            "reasons": REASONS,
            "licences": LICENCES,
            "domains": DOMAINS,
            "digest": {"algorithm": "merkle-sha256", "root": hashlib.sha256(b"rows").hexdigest()},
        },
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=320,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=128,
        )
    )
    model.save_pretrained(p.hf)
    losses = [round(1.5 + 4.5 * math.exp(-s / 8), 6) for s in range(1, 31)]
    p.train.mkdir(parents=True)
    (p.train / "metrics.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "step": s,
                    "loss": loss,
                    "lr": 3e-3,
                    "grad_norm": 1.0,
                    "tokens": s * 1024,
                    "elapsed_s": s * 0.4,
                }
            )
            + "\n"
            for s, loss in enumerate(losses, 1)
        )
    )
    write_json(
        p.train / "train.json",
        {
            "steps": 30,
            "first_loss": losses[0],
            "final_loss": losses[-1],
            "tokens": 30 * 1024,
            "parameters": sum(t.numel() for t in model.parameters()),
            "world_size": 2,
            "tensor_parallel": 2,
            "pipeline_parallel": 1,
            "data_parallel": 1,
            "wall_s": 12.5,
            "iteration": 30,
            "checkpoint": str(p.checkpoints / "iter_0000030"),
        },
    )
    write_json(p.eval / "results.json", RESULTS)
    return cfg


@pytest.fixture
def built(tmp_path: Path) -> tuple[RunConfig, dict]:
    cfg = make_run(tmp_path / "run")
    return cfg, release.run(cfg)


def test_sha256sums_covers_every_file_and_verifies(built: tuple[RunConfig, dict]) -> None:
    cfg, result = built
    out = cfg.paths.release
    assert result["path"] == str(out) and not out.with_name("release.tmp").exists()
    listed = [line.split("  ", 1)[1] for line in (out / "SHA256SUMS").read_text().splitlines()]
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert listed == [f for f in on_disk if f != "SHA256SUMS"] and listed == sorted(listed)
    assert result["files"] == len(listed)
    assert {
        "README.md",
        "SHA256SUMS",
        "data/manifest.json",
        "data/summary.json",
        "eval/results.json",
        "model/config.json",
        "model/model.safetensors",
        "transparency/report.json",
        "transparency/report.html",
    } <= set(on_disk)
    ok = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr

    with (out / "model" / "model.safetensors").open("r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 1]))
    bad = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True)
    assert bad.returncode == 1 and "model/model.safetensors: FAILED" in bad.stdout


def test_copies_are_byte_identical(built: tuple[RunConfig, dict]) -> None:
    cfg, _ = built
    out, p = cfg.paths.release, cfg.paths
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        assert (out / "model" / name).read_bytes() == (p.hf / name).read_bytes()
    assert (out / "data" / "manifest.json").read_bytes() == (p.manifest / "manifest.json").read_bytes()
    assert (out / "eval" / "results.json").read_bytes() == (p.eval / "results.json").read_bytes()


def test_report_json_holds_the_input_numbers(built: tuple[RunConfig, dict]) -> None:
    cfg, result = built
    report = json.loads((cfg.paths.release / "transparency" / "report.json").read_text())
    train = json.loads((cfg.paths.train / "train.json").read_text())
    manifest = json.loads((cfg.paths.manifest / "manifest.json").read_text())
    assert report["schema_version"] == 1
    assert report["model"]["architecture"] == "LlamaForCausalLM"
    assert report["model"]["shape"]["hidden_size"] == 32
    assert report["model"]["name"] == cfg.release.model_name

    data = report["data"]
    assert data["documents"] == {"in": 57, "kept": 40, "dropped": 15, "quarantined": 2}
    assert data["reasons"] == REASONS and list(data["reasons"])[:2] == ["robots:GPTBot", "quality:too_short"]
    assert data["licences"] == LICENCES and list(data["licences"])[0] == "none"
    assert [d["domain"] for d in data["top_domains"]] == [f"site{i:02d}.example" for i in range(10)]
    assert data["top_domains"][0] == {"domain": "site00.example", "total": 20, "kept": 10}
    assert data["domains"] == 12

    tr = report["training"]
    metrics = [json.loads(line) for line in (cfg.paths.train / "metrics.jsonl").read_text().splitlines()]
    assert tr["losses"] == [{"step": m["step"], "loss": m["loss"]} for m in metrics]
    for key in (
        "steps",
        "first_loss",
        "final_loss",
        "tokens",
        "parameters",
        "wall_s",
        "iteration",
        "checkpoint",
    ):
        assert tr[key] == train[key]
    assert tr["parallel"] == {
        "world_size": 2,
        "tensor_parallel": 2,
        "pipeline_parallel": 1,
        "data_parallel": 1,
    }
    assert tr["config"] == cfg.train.model_dump(mode="json")
    assert tr["approx_flops"] == 6 * train["parameters"] * train["tokens"]

    assert report["evaluation"]["tasks"] == RESULTS["tasks"]
    lin = report["lineage"]
    assert lin["manifest_digest"] == manifest["digest"]["root"] == result["manifest_digest"]
    assert lin["policy_hash"] == policy_hash(cfg.governance)
    assert lin["config_digest"] == lin["curate_config_digest"] == cfg.digest()
    safetensors = cfg.paths.hf / "model.safetensors"
    assert lin["weights_sha256"] == {
        "model.safetensors": hashlib.sha256(safetensors.read_bytes()).hexdigest()
    }

    summary = json.loads((cfg.paths.release / "data" / "summary.json").read_text())
    assert summary["documents"] == data["documents"] and summary["digest"] == manifest["digest"]
    assert summary["policy"] == manifest["policy"]


def test_model_card_front_matter_parses(built: tuple[RunConfig, dict]) -> None:
    cfg, _ = built
    readme = cfg.paths.release / "README.md"
    meta = metadata_load(readme)
    assert meta is not None
    assert meta["license"] == "apache-2.0"
    assert meta["language"] == ["en"]
    assert meta["library_name"] == "transformers"
    assert "commonweights" in meta["tags"] and "data-policy-consent" in meta["tags"]
    assert meta["datasets"] == [f"commonweights-corpus-{hashlib.sha256(b'rows').hexdigest()[:16]}"]
    card = ModelCard.load(readme)
    found = {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    want = {
        (task, metric): value
        for task, t in RESULTS["tasks"].items()
        for metric, value in t["metrics"].items()
        if value is not None and not metric.endswith("_stderr")
    }
    assert found == want
    assert card.data.model_name == cfg.release.model_name
    body = card.text
    for heading in (
        "## Intended use",
        "## Limitations",
        "## Training data",
        "## Training procedure",
        "## Evaluation",
    ):
        assert heading in body
    assert "40 kept, 15 dropped, 2 quarantined" in body
    assert "`robots:GPTBot` | 6" in body and "GPTBot" in body and "apertus-2025" in body
    assert "| wall time | 12.5 s |" in body and "2 (2 × 1 × 1)" in body


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.refs += [
            (tag, k, v or "") for k, v in attrs if k in ("src", "href", "srcset", "data", "xlink:href")
        ]


def test_html_report_is_self_contained_and_shows_the_numbers(built: tuple[RunConfig, dict]) -> None:
    cfg, _ = built
    html = (cfg.paths.release / "transparency" / "report.html").read_text()
    parser = _Refs()
    parser.feed(html)
    assert parser.refs == []  # nothing to fetch: no scripts, stylesheets, images or links
    assert "script" not in parser.tags and "http://" not in html.split("<body>")[0]
    assert "url(" not in html and "@import" not in html

    train = json.loads((cfg.paths.train / "train.json").read_text())
    for text in (
        "57",
        "40",
        "15",
        "robots:GPTBot",
        "CC-BY-4.0",
        "site00.example",
        f"{train['final_loss']:.4f}",
        f"{train['first_loss']:.4f}",
        f"{train['parameters']:,}",
        "0.3500",
        "0.1094",
        "2.0661",
        "commonweights_cloze",
        hashlib.sha256(b"rows").hexdigest(),
    ):
        assert text in html, text
    assert html.count("<svg") == 1 and "<polyline" in html
    points = html.split('<polyline points="')[1].split('"')[0].split()
    assert len(points) == train["steps"]


def test_loss_curve_goes_down_when_the_loss_does() -> None:
    svg = loss_curve_svg([{"step": 1, "loss": 5.0}, {"step": 2, "loss": 3.0}, {"step": 3, "loss": 1.0}])
    pts = [tuple(map(float, p.split(","))) for p in svg.split('points="')[1].split('"')[0].split()]
    xs, ys = zip(*pts, strict=True)
    assert xs == tuple(sorted(xs)) and ys == tuple(sorted(ys))  # SVG y grows downwards
    assert "5.000" in svg and "1.000" in svg
    single = loss_curve_svg([{"step": 7, "loss": 2.0}])  # one logged step still draws
    assert single.count("<circle") == 1


@pytest.mark.parametrize(
    ("path", "stage"),
    [
        ("curate/manifest/manifest.json", "curate"),
        ("train/train.json", "train"),
        ("train/metrics.jsonl", "train"),
        ("hf/config.json", "export"),
        ("eval/results.json", "evaluate"),
    ],
)
def test_missing_input_names_file_and_stage(tmp_path: Path, path: str, stage: str) -> None:
    cfg = make_run(tmp_path / "run")
    (cfg.paths.root / path).unlink()
    with pytest.raises(InputError, match=rf"{path}: not found; run `commonweights {stage}` first"):
        release.run(cfg)
    assert not cfg.paths.release.exists()


def test_incomplete_inputs_are_refused(tmp_path: Path) -> None:
    cfg = make_run(tmp_path / "run")
    train = cfg.paths.train / "train.json"
    doc = json.loads(train.read_text())
    del doc["parameters"], doc["wall_s"]
    train.write_text(json.dumps(doc))
    with pytest.raises(
        InputError, match=r"train\.json: missing parameters, wall_s; rerun `commonweights train`"
    ):
        release.run(cfg)
    (cfg.paths.train / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\nnot json\n')
    train.write_text(json.dumps({**doc, "parameters": 1, "wall_s": 1.0}))
    with pytest.raises(InputError, match=r"metrics\.jsonl:2: not valid JSON"):
        release.run(cfg)


def test_rerun_replaces_the_release(tmp_path: Path) -> None:
    cfg = make_run(tmp_path / "run")
    release.run(cfg)
    (cfg.paths.release / "stale.bin").write_bytes(b"old")
    release.run(cfg)
    assert not (cfg.paths.release / "stale.bin").exists()
    assert "stale.bin" not in (cfg.paths.release / "SHA256SUMS").read_text()
