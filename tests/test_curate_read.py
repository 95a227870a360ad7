"""Reading WARC input accounts for every record: good ones are read, broken ones become one
quarantined record each, and reading goes on after a bad header block."""

from __future__ import annotations

import gzip
import io
import uuid

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.curate import (
    Decided,
    FindDuplicates,
    SpillFile,
    dedup_keys,
    mark_duplicates,
    read_records,
    shard_of,
    split_repeated_captures,
)

HTML = b"<html><body><p>Hello harbour.</p></body></html>"


def member(rec_type: str, uri: str, block: bytes, n: int) -> bytes:
    head = (
        "WARC/1.1\r\n"
        f"WARC-Type: {rec_type}\r\n"
        f"WARC-Target-URI: {uri}\r\n"
        "WARC-Date: 2026-10-01T00:00:00Z\r\n"
        f"WARC-Record-ID: <urn:uuid:{uuid.UUID(int=n)}>\r\n"
        "Content-Type: application/http; msgtype=response\r\n"
        f"Content-Length: {len(block)}\r\n\r\n"
    ).encode()
    return gzip.compress(head + block + b"\r\n\r\n", mtime=0)


def http(body: bytes, status: str = "200 OK") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n".encode() + body


def test_bad_header_block_is_one_quarantined_record_and_reading_goes_on():
    data = (
        member("request", "https://a.example/1", b"GET /1 HTTP/1.1\r\n\r\n", 0)
        + member("response", "https://a.example/1", http(HTML), 1)
        + member("response", "https://a.example/2", b"\x00\x01garbage, not HTTP\r\nzz\r\n\r\nbody", 2)
        + member("response", "https://a.example/3", http(HTML, "404 Not Found"), 3)
    )
    recs = list(read_records(io.BytesIO(data), "a.warc.gz"))
    assert [r.uri for r in recs] == ["https://a.example/1", "https://a.example/2", "https://a.example/3"]
    assert recs[0].error is None and recs[0].payload == HTML and recs[0].http_status == 200
    assert recs[1].error == "http_headers"
    assert recs[2].http_status == 404
    assert len({r.offset for r in recs}) == 3


def test_truncated_file_ends_with_one_quarantined_record():
    good = member("response", "https://a.example/1", http(HTML), 1)
    cut = member("response", "https://a.example/2", http(HTML * 50), 2)
    data = good + cut[: len(cut) // 2]
    recs = list(read_records(io.BytesIO(data), "t.warc.gz"))
    assert recs[0].error is None
    assert len(recs) == 2 and recs[1].error in {"truncated", "corrupt_gzip"}
    assert recs[1].offset >= len(good) - 1


def test_short_block_is_truncated_not_silently_short():
    block = http(HTML)
    head = (
        "WARC/1.1\r\nWARC-Type: response\r\nWARC-Target-URI: https://a.example/x\r\n"
        "WARC-Date: 2026-10-01T00:00:00Z\r\nWARC-Record-ID: <urn:uuid:1>\r\n"
        f"Content-Length: {len(block) + 500}\r\n\r\n"
    ).encode()
    recs = list(read_records(io.BytesIO(gzip.compress(head + block, mtime=0)), "s.warc.gz"))
    assert len(recs) == 1 and recs[0].error in {"truncated", "corrupt_gzip"}


def _cand(doc: str, text: str) -> Decided:
    import hashlib

    row = {"doc_id": doc, "text_sha256": hashlib.sha256(text.encode()).hexdigest()}
    # (the spill is never read here: dedup decides from the keys)
    keys = dedup_keys(row, text)
    return Decided(doc, ("f", int(doc, 16)), "kept", (), "spill", (0, 0), (0, len(text)), keys)


# A page-length text (300 distinct words) with one word changed: Jaccard of 5-grams ≈ 0.97.
LONG = " ".join(f"{w}{i}" for i, w in enumerate(["harbour", "ferry", "market", "river"] * 75))
NEAR = LONG.replace("market10 ", "bakery10 ")
OTHER = "Bakers in the old town explain how rye sourdough is fed, folded and baked in stone ovens each day. "


@pytest.mark.parametrize(("groups", "shards"), [(1, 1), (2, 3), (16, 16)])
def test_find_duplicates_keeps_smallest_id(groups, shards, tmp_path):
    """The same decisions whatever the number of key groups and output parts, and whichever input
    pack a document arrives in (two packs of one part, as two files give)."""
    docs = [_cand("0a", LONG), _cand("0b", LONG), _cand("0c", NEAR), _cand("0d", OTHER * 3)]
    packs: dict[tuple[int, int], list[Decided]] = {}
    for i, d in enumerate(docs):
        packs.setdefault((shard_of(d.doc_id, shards), i % 2), []).append(d)
    spill = SpillFile(str(tmp_path))  # the packs wait in a spill file, as CurateFiles leaves them
    spill.start_bundle()
    refs = [(s, spill.pack(docs)) for (s, _), docs in sorted(packs.items())]
    spill.finish_bundle()
    with BeamTestPipeline(runner="FnApiRunner") as p:
        reps = (
            p
            | "Create" >> beam.Create(refs)
            | "Dedup" >> FindDuplicates(str(tmp_path), groups=groups, shards=shards)
        )
        want = [("0b", "0a"), ("0c", "0a")]
        assert_that(reps, equal_to([(shard_of(m, shards), (m, r)) for m, r in want]))
    marked = mark_duplicates(docs, dict(want))
    assert [(d.doc_id, d.decision, d.reasons) for d in marked] == [
        ("0a", "kept", ()),
        ("0b", "dropped", ("duplicate_of:0a",)),
        ("0c", "dropped", ("duplicate_of:0a",)),
        ("0d", "kept", ()),
    ]


def test_repeated_capture_keeps_first_and_leaves_dedup():
    """A capture read twice: the first by position keeps the doc_id; the repeat gets its own id,
    points at the first, and brings no dedup keys (it cannot be kept)."""
    first = _cand("0a", LONG)._replace(source=("b.warc.gz", 10))
    again = _cand("0a", LONG)._replace(source=("a.warc.gz", 99))
    out = split_repeated_captures([first, again])
    assert out[0] == again  # ("a.warc.gz", 99) comes first
    assert out[1].doc_id != "0a" and out[1].reasons == ("duplicate_of:0a",)
    assert (out[1].decision, out[1].line, out[1].keys) == ("dropped", None, ())
