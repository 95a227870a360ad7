"""WARC/ARC ingestion replayed on third-party files (../shared/conformance/warc): every response-like
record is accounted for, counts match a reference parser wherever one succeeds, and broken files
become quarantined rows with a reason — never a crash, never silent loss."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from commonweights import config
from pipelines import curate

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "warc"
SKIP = f"{CONFORMANCE}: conformance data absent (CI provides ../shared/conformance; see its README)"
DOC_TYPES = ("response", "resource")
# Dolma's two sample files are not in MANIFEST.json; their warcio counts are in dolma/EXPECTED.json.
DOLMA = "dolma/tests/data/warc/"


def conformance_files() -> list[Path]:
    if not CONFORMANCE.is_dir():
        pytest.skip(SKIP)
    skip = {"MANIFEST.json", "EXPECTED.json", "LICENSE", "NOTICE"}
    return sorted(p for p in CONFORMANCE.rglob("*") if p.is_file() and p.name not in skip)


def reference_counts(rel: str) -> tuple[str, Counter[str]] | None:
    """(parser, record counts) of the first reference parser that read the file without error."""
    manifest = json.loads((CONFORMANCE / "MANIFEST.json").read_text())
    if rel in manifest:
        entry = manifest[rel]
        for parser in ("warcio", "fastwarc"):
            if entry[f"{parser}_error"] is None and entry[f"{parser}_counts"] is not None:
                return parser, Counter(entry[f"{parser}_counts"])
        return None
    if rel.startswith(DOLMA):
        expected = json.loads((CONFORMANCE / "dolma" / "EXPECTED.json").read_text())
        counts = expected["warcio_1_8_1_record_counts (derived here)"][rel.removeprefix(DOLMA)]
        return "warcio", Counter({k: v for k, v in counts.items() if k != "html_responses"})
    return None


def read_file(path: Path) -> list:
    rel = str(path.relative_to(CONFORMANCE))
    with path.open("rb") as fh:
        return list(curate.read_records(fh, rel, lambda: path.open("rb")))


def test_every_file_replays_with_reference_counts(capsys):
    scores = []
    for path in conformance_files():
        rel = str(path.relative_to(CONFORMANCE))
        recs = read_file(path)  # must not raise, whatever the file holds
        located = [r for r in recs if r.uri]  # records whose headers could be read
        tail = [r for r in recs if not r.uri]  # an unreadable rest of the file, from an offset on
        assert all(r.error for r in tail), rel
        assert all(r.error is None or r.error_detail for r in recs), rel  # every quarantine says why
        ref = reference_counts(rel)
        if ref is not None:
            parser, counts = ref
            want = sum(counts[t] for t in DOC_TYPES) + counts["conversion"]
            assert len(located) == want, (rel, parser, counts, [(r.uri, r.error) for r in recs])
        scores.append((rel, ref[0] if ref else "-", len(located), sum(bool(r.error) for r in recs)))
    with capsys.disabled():
        print(
            f"\nWARC conformance: {len(scores)} files replayed (file, reference parser, records, quarantined)"
        )
        for row in scores:
            print("  {:<58} {:<8} {:>3} {:>3}".format(*row))
    assert len(scores) >= 25


@pytest.mark.parametrize(
    ("rel", "why"),
    [
        ("resiliparse/tests/data/clipped.warc.gz", "truncated"),  # block ends before its length
        ("warcio/test/data/bad.arc", "http_headers"),  # ARC records without an HTTP message
    ],
)
def test_broken_records_are_quarantined_with_their_reason(rel, why):
    conformance_files()
    recs = read_file(CONFORMANCE / rel)
    assert recs and all(r.error == why for r in recs)


def test_single_stream_gzip_is_read_like_fastwarc():
    """warcio refuses a gzip file that is not one member per record; FastWARC reads it, and so do we."""
    conformance_files()
    for rel in (
        "warcio/test/data/example-bad-non-chunked.warc.gz",
        "warcio/test/data/example-bad.warc.gz.bad",
    ):
        recs = read_file(CONFORMANCE / rel)
        _, counts = reference_counts(rel) or ("", Counter())
        assert [r.error for r in recs] == [None] * counts["response"], rel
        assert all(r.http_status in (200, 302) and b"<html" in r.payload.lower() for r in recs), rel


def test_arc_files_become_documents():
    conformance_files()
    for rel in ("warcio/test/data/example.arc", "warcio/test/data/example.arc.gz"):
        (rec,) = read_file(CONFORMANCE / rel)
        assert rec.error is None and rec.uri == "http://example.com/" and rec.http_status == 200
        assert rec.warc_date == "2014-02-16T05:02:21Z" and b"Example Domain" in rec.payload
        # ARC has no record id: none is made up, so every read (and the manifest) is the same
        assert rec.record_id == "" and read_file(CONFORMANCE / rel) == [rec]


@pytest.mark.slow
def test_whole_conformance_set_through_the_pipeline(tmp_path):
    """Every file through `curate.run`: one manifest row per record read, quarantined rows carry a
    `malformed:` reason, and nothing crashes."""
    files = conformance_files()
    robots = tmp_path / "robots.jsonl"
    robots.write_text("")  # no snapshot: every domain falls back to robots:missing (disallow)
    cfg_file = tmp_path / "conformance.yaml"
    cfg_file.write_text(
        yaml.safe_dump(
            {
                "name": "conformance",
                "dir": str(tmp_path / "run"),
                "data": {"warc": [str(f) for f in files], "robots": str(robots)},
            }
        )
    )
    cfg = config.load(cfg_file)
    summary = curate.run(cfg)
    rows = curate.read_manifest(cfg.paths.manifest)
    expected = sum(len(read_file(f)) for f in files)
    assert summary["rows"] == len(rows) == expected
    assert len({r["doc_id"] for r in rows}) == len(rows)
    quarantined = [r for r in rows if r["decision"] == "quarantined"]
    assert quarantined and all(r["reasons"][0].startswith("malformed:") for r in quarantined)
    by_file = Counter(r["source_file"] for r in rows)
    assert by_file["resiliparse/tests/data/warcfile.warc.gz"] == 16
    assert by_file["resiliparse/tests/data/clueweb-quirk.warc.gz"] == 29
    assert all(
        r["decision"] == "dropped" and "robots:missing" in r["reasons"]
        for r in rows
        if r["decision"] != "quarantined"
    )
