"""The release stage: a verifiable folder built from the run's real output files."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import torch
from huggingface_hub import ModelCard, metadata_load
from transformers import LlamaConfig, LlamaForCausalLM

from commonweights.config import RunConfig, policy_hash, policy_record
from commonweights.errors import InputError
from data_governance import manifest
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


CHECKPOINTS = [
    {
        "iteration": 10,
        "tasks": {"commonweights_cloze": {"acc": 0.25}, "commonweights_paragraphs": {"bits_per_byte": 3.5}},
    },
    {
        "iteration": 20,
        "tasks": {"commonweights_cloze": {"acc": 0.3}, "commonweights_paragraphs": {"bits_per_byte": 2.6}},
    },
]
DECONTAMINATION = {
    "ngram": 13,
    "min_words": 8,
    "corpus_documents": 1,
    "tasks": {
        "commonweights_cloze": {
            "examples": 200,
            "checked": 150,
            "too_short": 50,
            "contaminated": 0,
            "fraction": 0.0,
            "flagged": False,
            "overlapping": [],
        },
        "commonweights_paragraphs": {
            "examples": 50,
            "checked": 50,
            "too_short": 0,
            "contaminated": 3,
            "fraction": 0.06,
            "flagged": True,
            "overlapping": [{"index": 4, "ngram": "the harbour committee met"}],
        },
    },
}


def write_json(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def manifest_rows(policy: str) -> list[dict[str, Any]]:
    """57 rows matching the counts below: 40 kept, 15 dropped (6 by robots.txt, 3 of those also by TDMRep,
    4 without a licence, 5 too short) and 2 quarantined."""
    plan = (
        [("kept", [])] * 40
        + [("dropped", ["robots:GPTBot", "tdm_reserved"])] * 3
        + [("dropped", ["robots:GPTBot"])] * 3
        + [("dropped", ["licence:missing"])] * 4
        + [("dropped", ["quality:too_short"])] * 5
        + [("quarantined", ["malformed:no_html"])] * 2
    )
    rows = []
    for i, (decision, reasons) in enumerate(plan):
        url = f"https://site{i % 12:02d}.example/page/{i}"
        rows.append(
            {
                "doc_id": hashlib.sha256(url.encode()).hexdigest()[:32],
                "url": url,
                "domain": f"site{i % 12:02d}.example",
                "source_file": "crawl/warc/part-0.warc.gz",
                "source_offset": 1000 * i,
                "record_id": f"<urn:uuid:{i:08d}-0000-0000-0000-000000000000>",
                "crawl_date": "2026-10-01T00:00:00Z",
                "http_status": 200,
                "content_type": "text/html",
                "payload_sha256": hashlib.sha256(f"payload {i}".encode()).hexdigest(),
                "text_sha256": hashlib.sha256(f"text {i}".encode()).hexdigest(),
                "chars": 1200 + i,
                "decision": decision,
                "reasons": reasons,
                "licence": "CC-BY-4.0" if i % 3 == 0 else None,
                "licence_location": "link_rel" if i % 3 == 0 else None,
                "licence_evidence": "[]",
                "consent": "{}",
                "pii_email": 0,
                "pii_phone": 0,
                "pii_ip": 0,
                "pii_iban": 0,
                "policy_hash": policy,
            }
        )
    return rows


def write_manifest(cfg: RunConfig) -> str:
    """curate/manifest/: one Parquet part of real rows and manifest.json with their digest."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = cfg.paths.manifest
    folder.mkdir(parents=True, exist_ok=True)
    rows = manifest_rows(policy_hash(cfg.governance))
    part = folder / "part-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=manifest.SCHEMA), part)
    root = manifest.digest(rows)
    write_json(
        folder / "manifest.json",
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
            "digest": {"algorithm": "merkle-sha256", "root": root, "order": "doc_id"},
            "parts": [
                {"path": part.name, "sha256": hashlib.sha256(part.read_bytes()).hexdigest(), "rows": 57}
            ],
        },
    )
    return root


def make_run(root: Path) -> RunConfig:
    """A run folder holding what curate, train, export and evaluate leave behind."""
    cfg = RunConfig.model_validate({"name": "t", "dir": str(root), "data": {"sample": {}}})
    p = cfg.paths
    write_manifest(cfg)
    p.documents.mkdir(parents=True)
    (p.documents / "part-00000-of-00001.jsonl").write_text(
        json.dumps({"doc_id": "d0", "text": "The harbour committee met on Tuesday to count the boats."})
        + "\n"
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
    write_json(p.hf / "export.json", {"checkpoint": "train/checkpoints/iter_0000030", "iteration": 30})
    # What the governance stage adds beside the manifest (Croissant, EU AI Act summary, data report).
    write_json(p.manifest / "croissant.json", {"@type": "sc:Dataset", "distribution": []})
    (p.manifest / "eu_summary.md").write_text("# Public summary of training content\n")
    write_json(p.manifest / "eu_summary.json", {"sections": []})
    (p.manifest / "data_report.html").write_text("<!DOCTYPE html><title>data</title>\n")
    write_json(p.eval / "results.json", RESULTS)
    write_json(p.eval / "checkpoints.json", {"checkpoints": CHECKPOINTS})
    write_json(p.eval / "decontamination.json", DECONTAMINATION)
    (p.eval / "samples_commonweights_cloze.jsonl").write_text('{"doc_id": 0, "acc": 1.0}\n')
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
    # Unsigned (no key in the environment): no statement.sig, and SHA256SUMS lists all but itself.
    assert listed == [f for f in on_disk if f != "SHA256SUMS"] and listed == sorted(listed)
    assert result["files"] == len(on_disk) and result["signed"] is False
    assert {
        "README.md",
        "SHA256SUMS",
        "statement.json",
        "config.json",
        "data/manifest/manifest.json",
        "data/manifest/part-00000-of-00001.parquet",
        "data/summary.json",
        "eval/checkpoints.json",
        "eval/decontamination.json",
        "eval/samples_commonweights_cloze.jsonl",
        "transparency/report.schema.json",
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
    for name in ("manifest.json", "part-00000-of-00001.parquet", "croissant.json"):
        assert (out / "data" / "manifest" / name).read_bytes() == (p.manifest / name).read_bytes()
    for name in ("eu_summary.md", "eu_summary.json", "data_report.html"):
        assert (out / "data" / name).read_bytes() == (p.manifest / name).read_bytes()
    for name in ("checkpoints.json", "decontamination.json", "samples_commonweights_cloze.jsonl"):
        assert (out / "eval" / name).read_bytes() == (p.eval / name).read_bytes()
    assert (out / "eval" / "results.json").read_bytes() == (p.eval / "results.json").read_bytes()


def test_report_json_holds_the_input_numbers(built: tuple[RunConfig, dict]) -> None:
    cfg, result = built
    report = json.loads((cfg.paths.release / "transparency" / "report.json").read_text())
    train = json.loads((cfg.paths.train / "train.json").read_text())
    manifest = json.loads((cfg.paths.manifest / "manifest.json").read_text())
    assert report["schema_version"] == 2
    schema = json.loads((cfg.paths.release / "transparency" / "report.schema.json").read_text())
    jsonschema.validate(report, schema)  # the shipped schema describes the shipped report
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
    # Counted from the manifest rows: a document denied by robots.txt and TDMRep counts in both.
    assert data["opt_outs"]["signals"]["robots.txt (AI training agents)"] == 6
    assert data["opt_outs"]["signals"]["TDMRep reservation"] == 3
    assert data["opt_outs"]["signals"]["takedown request"] == 0
    assert data["opt_outs"]["any_opt_out"] == 6
    assert data["opt_outs"]["reason_families"] == {
        "robots": 6,
        "quality": 5,
        "licence": 4,
        "tdm_reserved": 3,
        "malformed": 2,
    }

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

    compute = tr["compute"]
    hours = train["wall_s"] * train["world_size"] / 3600
    assert compute["process_hours"] == pytest.approx(hours)
    watts = cfg.train.model_dump().get("watts_per_device")
    if watts is None:  # the training config states no power: energy is not invented
        assert compute["energy_kwh"] is None and compute["co2_kg"] is None
    else:
        assert compute["energy_kwh"] == pytest.approx(hours * watts * cfg.train.model_dump()["pue"] / 1000)

    ev = report["evaluation"]
    assert ev["tasks"] == RESULTS["tasks"]
    assert ev["task_versions"] == {"commonweights_cloze": 1, "commonweights_paragraphs": 1}
    curves = {c["task"]: c for c in ev["curve"]}
    assert curves["commonweights_cloze"]["metric"] == "acc"
    assert curves["commonweights_cloze"]["points"] == [
        {"iteration": 10, "value": 0.25},
        {"iteration": 20, "value": 0.3},
        {"iteration": 30, "value": 0.35},
    ]
    assert curves["commonweights_paragraphs"]["metric"] == "bits_per_byte"
    assert [p["value"] for p in curves["commonweights_paragraphs"]["points"]] == [3.5, 2.6, 2.0661]
    assert report["decontamination"] == DECONTAMINATION
    assert report["verification"]["signed"] is False
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
    root = json.loads((cfg.paths.manifest / "manifest.json").read_text())["digest"]["root"]
    assert meta["datasets"] == [f"commonweights-corpus-{root[:16]}"]
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
    assert "`robots:GPTBot` | 6" in body and "GPTBot" in body and cfg.governance.agents_version in body
    assert "| wall time | 12.5 s |" in body and "2 (2 × 1 × 1)" in body
    # Compute and energy, decontamination and how to verify are in the card, not only on the page.
    assert "| energy (estimate) |" in body and "| CO₂e (estimate) |" in body
    assert "## Decontamination" in body
    assert "| `commonweights_paragraphs` | 50 | 3 | 6.0% | **flagged** |" in body
    assert "**This release is not signed**" in body
    assert "commonweights verify RELEASE_DIR --key PUBLISHER_KEY.pub" in body


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
    # Nothing to fetch: no scripts, stylesheets, images or links, only in-page anchors.
    assert parser.refs and all(v.startswith("#") for _, _, v in parser.refs), parser.refs
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
        json.loads((cfg.paths.manifest / "manifest.json").read_text())["digest"]["root"],
    ):
        assert text in html, text
    # Charts: decisions, opt-out signals, reason families (bars), the loss curve, one eval curve per task.
    assert html.count("<svg") == 6 and html.count("<polyline") == 3
    loss = html.split('aria-label="Training loss')[1]
    points = loss.split('<polyline points="')[1].split('"')[0].split()
    assert len(points) == train["steps"]
    assert 'aria-label="commonweights_cloze: acc by training iteration"' in html
    decon = html.split('id="decon-table"')[1].split("</table>")[0]
    assert "flagged" in decon and "6.0%" in decon and "clean" in decon
    assert "commonweights verify RELEASE_DIR --key PUBLISHER_KEY.pub" in html
    assert "not signed" in html


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
