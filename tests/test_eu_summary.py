"""The EU AI Act training-content summary has every section of the Commission's July 2025 template,
with values recomputed here from the manifest parts and the run config."""

from __future__ import annotations

import json
import re
from collections import Counter

import pyarrow.parquet as pq

from data_governance import eu_summary

SECTIONS = (
    "## 1. General information",
    "### 1.1 Provider identification",
    "### 1.2 Model identification",
    "### 1.3 Modalities, overall training data size and other characteristics",
    "## 2. List of data sources",
    "### 2.1 Publicly available datasets",
    "### 2.2 Private non-publicly available datasets",
    "### 2.3 Data crawled and scraped from online sources",
    "### 2.4 User data",
    "### 2.5 Synthetic data",
    "### 2.6 Other sources of data",
    "## 3. Data processing aspects",
    "### 3.1 Respect of reservation of rights",
    "### 3.2 Removal of illegal content",
    "### 3.3 Other information",
)


def test_summary_has_every_template_section_with_values_from_the_manifest(audited_run):
    cfg, run = audited_run
    folder = run / "curate" / "manifest"
    md = (folder / "eu_summary.md").read_text()
    s = json.loads((folder / "eu_summary.json").read_text())
    for heading in SECTIONS:
        assert heading in md, heading
    rows = [r for p in sorted(folder.glob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]
    kept = [r for r in rows if r["decision"] == "kept"]
    meta = json.loads((folder / "manifest.json").read_text())
    assert s["manifest_digest"] == meta["digest"]["root"] and s["manifest_digest"] in md
    g = s["general_information"]
    assert g["model"]["versioned_name"] == f"{cfg.release.model_name}-{cfg.release.version}"
    assert g["provider"]["name"] == cfg.release.provider and g["modalities"] == ["text"]
    assert g["training_data_size"]["documents"] == len(kept)
    assert g["training_data_size"]["characters"] == sum(r["chars"] for r in kept)
    assert g["training_data_size"]["text"] == "less than 1 billion tokens"
    assert g["latest_data_collection"]["date"] == max(r["crawl_date"] for r in kept)[:10]
    crawled = s["data_sources"]["crawled"]
    assert crawled["period"] == {
        "first": min(r["crawl_date"] for r in rows)[:10],
        "last": max(r["crawl_date"] for r in rows)[:10],
    }
    snaps = {json.loads(r["consent"]).get("robots", {}).get("snapshot_date") for r in rows} - {None}
    assert crawled["robots_snapshot_dates"] == sorted(snaps)
    chars = Counter()
    for r in kept:
        chars[r["domain"]] += r["chars"]
    top = [d for d, _ in chars.most_common()][: max(1, -(-len(chars) // 10))]
    assert [d["domain"] for d in crawled["top_domains"]] == top
    for d in top:
        assert f"| {d} | {chars[d]} |" in md
    opted = sum(
        any(
            x.startswith(("robots:", "tdm_reserved", "aipref:", "meta:noai", "header:noai"))
            for x in r["reasons"]
        )
        for r in rows
    )
    assert s["data_processing"]["tdm_reservations"]["documents_dropped_for_opt_out"] == opted > 0
    for value in re.findall(r"\b\d{4}-\d{2}-\d{2}\b", md):  # every date is ISO 8601
        assert re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", value)
    assert s["summary_version"] == eu_summary.SUMMARY_VERSION


def test_size_range_follows_the_template_thresholds():
    assert eu_summary.size_range(10_000)[0] == "less than 1 billion tokens"
    assert eu_summary.size_range(400_000_000_000)[0] == "1 billion to 10 trillion tokens"
    assert eu_summary.size_range(50_000_000_000_000)[0] == "more than 10 trillion tokens"
