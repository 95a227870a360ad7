"""The fast WARC reader (FastWARC for the common record) yields exactly the records of the warcio reader
— same fields, offsets, errors and error details — on real, generated and deliberately broken input,
and reads the common record with FastWARC rather than quietly handing everything to warcio."""

from __future__ import annotations

import gzip
import io
import uuid
import zlib
from collections import Counter
from pathlib import Path

import brotli
import pytest
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.sample_crawl import write_sample_crawl
from pipelines.warc import read_records

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "warc"
SKIP = f"{CONFORMANCE}: conformance data absent (CI provides ../shared/conformance; see its README)"
HTML = b"<html><body><p>Hello harbour.</p></body></html>"


# ---------------------------------------------------------------- building records


def warc_record(
    rec_type: str,
    uri: str,
    block: bytes,
    n: int,
    *,
    extra: bytes = b"",
    version: bytes = b"WARC/1.1",
    length: bytes | None = None,
    trailer: bytes = b"\r\n\r\n",
) -> bytes:
    """One uncompressed WARC record; `extra` is inserted verbatim among the header lines."""
    head = (
        version + b"\r\n"
        b"WARC-Type: " + rec_type.encode() + b"\r\n"
        b"WARC-Target-URI: " + uri.encode() + b"\r\n"
        b"WARC-Date: 2026-10-01T00:00:00Z\r\n"
        b"WARC-Record-ID: <urn:uuid:" + str(uuid.UUID(int=n)).encode() + b">\r\n" + extra + b"Content-Type: "
        b"application/http; msgtype=" + rec_type.encode() + b"\r\n"
        b"Content-Length: " + (length if length is not None else str(len(block)).encode()) + b"\r\n\r\n"
    )
    return head + block + trailer


def member(rec_type: str, uri: str, block: bytes, n: int, **kw: object) -> bytes:
    """One record as one gzip member (how WARC files are compressed)."""
    return gzip.compress(warc_record(rec_type, uri, block, n, **kw), mtime=0)  # type: ignore[arg-type]


def http(body: bytes, status: str = "200 OK", headers: bytes = b"") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n".encode() + headers + b"\r\n" + body
    )


def chunked(body: bytes, size: int = 7) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts) + b"0\r\n\r\n"


def crawl(*middle: bytes) -> bytes:
    """A request, a good response, `middle`, then a good response and a metadata record."""
    return (
        member("request", "https://a.example/1", b"GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\n", 100)
        + member("response", "https://a.example/1", http(HTML), 101)
        + b"".join(middle)
        + member("response", "https://a.example/9", http(HTML, "404 Not Found"), 109)
        + member("metadata", "https://a.example/9", b"fetchTimeMs: 12\r\n", 110)
    )


# ---------------------------------------------------------------- reading with both engines


def both(data: bytes, name: str = "t.warc.gz", reopen: bool = True) -> tuple[list, Counter[str]]:
    """The fast reader's records and tally, after checking them against the warcio reader's."""
    tally: Counter[str] = Counter()
    again = (lambda: io.BytesIO(data)) if reopen else None
    fast = list(read_records(io.BytesIO(data), name, again, tally=tally))
    oracle = list(read_records(io.BytesIO(data), name, again, engine="warcio"))
    assert fast == oracle
    return fast, tally


def test_common_records_are_read_by_fastwarc_alone():
    recs, tally = both(crawl(member("revisit", "https://a.example/1", b"", 102)))
    assert [(r.uri, r.http_status, r.error) for r in recs] == [
        ("https://a.example/1", 200, None),
        ("https://a.example/9", 404, None),
    ]
    assert recs[0].payload == HTML and recs[0].headers[0] == ("content-type", "text/html; charset=utf-8")
    assert recs[0].record_id == f"<urn:uuid:{uuid.UUID(int=101)}>"
    assert tally == Counter(fastwarc=2)


# HTTP messages FastWARC's block and the plain-line parse read alone ("fastwarc"), and those that the
# warcio record code reads from the block ("fastwarc_block"); the result is warcio's either way.
HTTP_CASES = {
    "plain": ("fastwarc", http(HTML)),
    "identity_upper": ("fastwarc_block", http(HTML, headers=b"CONTENT-ENCODING: identity\r\n")),
    "http_length_short": ("fastwarc", http(HTML, headers=b"Content-Length: 10\r\n")),
    "http_length_long": ("fastwarc", http(HTML, headers=b"Content-Length: 9999\r\n")),
    "spaces": ("fastwarc", b"HTTP/1.1   200   OK  \r\nA :  b  \r\nC:d\r\n\r\n" + HTML),
    "http2": ("fastwarc", b"HTTP/2 200\r\ncontent-type: text/html\r\n\r\n" + HTML),
    "headers_only": ("fastwarc", b"HTTP/1.1 204 No Content\r\nA: b\r\n\r\n"),
    "chunked": ("fastwarc_block", http(chunked(HTML), headers=b"Transfer-Encoding: chunked\r\n")),
    "chunked_bad": ("fastwarc_block", http(b"zz\r\n" + HTML, headers=b"Transfer-Encoding: chunked\r\n")),
    "gzip": ("fastwarc_block", http(gzip.compress(HTML, mtime=0), headers=b"Content-Encoding: gzip\r\n")),
    "gzip_bad": ("fastwarc_block", http(b"\x1f\x8b\x08\x00garbage", headers=b"Content-Encoding: gzip\r\n")),
    "deflate": ("fastwarc_block", http(zlib.compress(HTML), headers=b"Content-Encoding: deflate\r\n")),
    "br": ("fastwarc_block", http(brotli.compress(HTML), headers=b"Content-Encoding: br\r\n")),
    "garbage_status": ("fastwarc_block", b"\x00\x01garbage, not HTTP\r\nzz\r\n\r\nbody"),
    "no_code": ("fastwarc_block", b"HTTP/1.1\r\nA: b\r\n\r\nbody"),
    "word_code": ("fastwarc_block", b"HTTP/1.1 OK fine\r\nA: b\r\n\r\nbody"),
    "no_blank_line": ("fastwarc_block", b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"),
    "empty_block": ("fastwarc_block", b""),
    "lf_only": ("fastwarc_block", b"HTTP/1.1 200 OK\nContent-Type: text/html\n\n" + HTML),
    "folded": ("fastwarc_block", http(HTML, headers=b"X-Long: one\r\n  two\r\n")),
    "blank_with_space": ("fastwarc_block", b"HTTP/1.1 200 OK\r\nA: b\r\n \r\nC: d\r\n\r\n" + HTML),
    "colon_less": ("fastwarc_block", http(HTML, headers=b"Broken header line\r\n")),
    "latin1_header": ("fastwarc_block", http(HTML, headers=b"X-Name: caf\xe9\r\n")),
    "utf8_header": ("fastwarc_block", http(HTML, headers="X-Name: café\r\n".encode())),
    "bare_cr": ("fastwarc_block", b"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n" + HTML),
}


@pytest.mark.parametrize("case", sorted(HTTP_CASES))
def test_http_messages_read_as_warcio_reads_them(case):
    how, block = HTTP_CASES[case]
    recs, tally = both(crawl(member("response", "https://a.example/5", block, 105)))
    assert len(recs) == 3 and recs[1].uri == "https://a.example/5"
    assert tally == Counter({"fastwarc": 2, how: 1} if how != "fastwarc" else {"fastwarc": 3}), tally
    if case in ("plain", "chunked", "gzip", "deflate", "br"):
        assert recs[1].error is None and recs[1].payload == HTML and recs[1].http_status == 200


@pytest.mark.parametrize(
    "record",
    [
        warc_record("resource", "file:///tmp/a.txt", b"plain text", 5),
        warc_record("conversion", "https://a.example/5", b"converted text", 5),
        warc_record("response", "dns:a.example", b"20261001000000\na.example. 300 IN A 1.2.3.4\n", 5),
        warc_record("response", "<https://a.example/5>", http(HTML), 5),
        warc_record("response", "https://a.example/a page", http(HTML), 5),
        warc_record(
            "response", "https://a.example/5", http(HTML), 5, extra=b"WARC-Target-URI: https://b.example/\r\n"
        ),
        warc_record("resource", "urn:x", b"text", 5, extra=b"WARC-Identified-Payload-Type: text/plain\r\n"),
    ],
    ids=["resource", "conversion", "dns", "angle_uri", "space_uri", "two_uris", "payload_type"],
)
def test_other_document_records_are_read_by_warcio_code(record):
    recs, tally = both(crawl(gzip.compress(record, mtime=0)))
    assert tally == Counter(fastwarc=2, fastwarc_block=1), tally
    assert len(recs) == 3 and recs[1].error is None
    if b"Identified-Payload" in record:
        assert recs[1].headers == (("content-type", "text/plain"),)


@pytest.mark.parametrize(
    "middle",
    [
        member("response", "https://a.example/5", http(HTML), 5, extra=b"X-Folded: a\r\n b\r\n"),
        member("response", "https://a.example/5", http(HTML), 5, extra=b"X-Spaced:   a   \r\n"),
        member("response", "https://a.example/5", http(HTML), 5, extra=b"X-Latin: caf\xe9\r\n"),
        member("response", "https://a.example/5", http(HTML), 5, extra=b"WARC-Type: request\r\n"),
        member("response", "https://a.example/5", http(HTML), 5, extra=b"Content-Length: 50\r\n"),
        member("response", "https://a.example/5", http(HTML), 5, version=b"WARC/0.18"),
        member("response", "https://a.example/5", http(HTML), 5, version=b"WARC/1.0 extra"),
        member("response", "https://a.example/5", http(HTML), 5, length=b"12x"),
        member("response", "https://a.example/5", http(HTML), 5, length=b"+56"),
        member("response", "https://a.example/5", http(HTML), 5, length=b"20"),  # too short
        member("response", "https://a.example/5", http(HTML), 5, trailer=b"\r\n"),
        member("response", "https://a.example/5", http(HTML), 5, trailer=b""),
        member("request", "https://a.example/5", b"GET / HTTP/1.1\r\n\r\n", 5, extra=b"X: a\r\n\tb\r\n"),
        gzip.compress(b"", mtime=0),  # an empty member between records
        gzip.compress(
            warc_record("response", "https://a.example/5", http(HTML), 5)
            + warc_record("response", "https://a.example/6", http(HTML), 6),
            mtime=0,
        ),  # two records in one member
        gzip.compress(b"\r\n" + warc_record("response", "https://a.example/5", http(HTML), 5), mtime=0),
        gzip.compress(b"not a WARC record at all\r\n\r\n", mtime=0),
    ],
    ids=[
        "folded_warc_header",
        "spaced_warc_header",
        "latin1_warc_header",
        "two_types",
        "two_lengths",
        "warc_0_18",
        "version_suffix",
        "length_not_number",
        "length_plus",
        "length_short",
        "short_trailer",
        "no_trailer",
        "folded_request",
        "empty_member",
        "two_records_one_member",
        "leading_blank_line",
        "garbage_member",
    ],
)
def test_unusual_records_hand_the_rest_of_the_file_to_warcio(middle):
    recs, tally = both(crawl(middle))
    # warcio reads from the first record not yet shown whole: the first response at the latest
    assert tally["handovers"] == 1 and tally["fastwarc"] <= 1 and tally["warcio"] >= len(recs) - 1, tally
    assert recs[0].error is None and recs[0].uri == "https://a.example/1"


# WARC header lines that FastWARC reads into values of the same length as the line (so the member
# size alone cannot tell them apart) but not always into warcio's values: FastWARC trims spaces and
# tabs, warcio every whitespace character Python knows, and warcio splits lines on LF alone.
FIELDS = (b"WARC-Type", b"WARC-Target-URI", b"WARC-Date", b"WARC-Record-ID")
SAME_LENGTH = {
    "vt_lead": lambda n, v: n + b": \x0b" + v,
    "ff_lead": lambda n, v: n + b":\x0c" + v,
    "fs_tail": lambda n, v: n + b": " + v + b"\x1c",
    "space_before_colon": lambda n, v: n + b" :" + v,
    "space_tail": lambda n, v: n + b":" + v + b" ",
    "nbsp_lead": lambda n, v: n + b": \xc2\xa0" + v[:-1],
    "us_lead": lambda n, v: n + b":\x1f" + v,
    "bare_cr": lambda n, v: n + b": " + v[:3] + b"\r" + v[4:],
    "vt_in_name": lambda n, v: n + b"\x0b:" + v,
    "vt_before_name": lambda n, v: b"\x0b" + n + b":" + v,
    "broken_utf8": lambda n, v: n + b": " + v[:-1] + b"\xc2",
}


@pytest.mark.parametrize("field", FIELDS, ids=[f.decode() for f in FIELDS])
@pytest.mark.parametrize("variant", sorted(SAME_LENGTH))
def test_header_lines_of_canonical_length_read_as_warcio_reads_them(field, variant):
    record = warc_record("response", "https://a.example/5", http(HTML), 5)
    line = next(x for x in record.split(b"\r\n") if x.startswith(field + b": "))
    odd = SAME_LENGTH[variant](field, line.split(b": ", 1)[1])
    recs, tally = both(crawl(gzip.compress(record.replace(line, odd), mtime=0)))
    assert tally["fastwarc"] + tally["warcio"] == len(recs)
    assert recs[0].uri == "https://a.example/1" and recs[-1].uri == "https://a.example/9"


def test_short_block_and_truncated_file():
    block = http(HTML)
    short = member("response", "https://a.example/x", block, 1, length=str(len(block) + 500).encode())
    recs, tally = both(short)
    assert len(recs) == 1 and recs[0].error == "truncated" and tally["handovers"] == 1
    first = member("response", "https://a.example/1", http(HTML), 1)
    second = member("response", "https://a.example/2", http(HTML * 30), 2)
    meta = member("metadata", "https://a.example/2", b"fetchTimeMs: 12\r\n", 3)
    for cut in (10, 40, len(second) // 2, len(second) - 8, len(second) - 1):
        recs, tally = both(first + second[:cut] + meta)
        assert [r.error for r in recs][0] is None and recs[-1].error in {"truncated", "corrupt_gzip"}, cut
        assert tally["fastwarc"] <= 1 and tally["handovers"] == 1, (cut, tally)
    for cut in (3, 11):  # inside the first member's gzip header
        recs, _ = both(first[:cut])
        assert [r.error for r in recs] in ([], ["truncated"], ["corrupt_gzip"]), cut


def test_corrupt_gzip_and_trailing_bytes():
    data = crawl(member("response", "https://a.example/5", http(HTML * 20), 105))
    second = len(member("request", "https://a.example/1", b"GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\n", 100))
    for at in (second + 30, second + 60, len(data) - 100, len(data) - 6):
        bad = bytearray(data)
        bad[at] ^= 0x55
        recs, tally = both(bytes(bad))
        assert tally["handovers"] == 1, at
        assert recs[-1].error in {"truncated", "corrupt_gzip"} or len(recs) < 3, at
    for tail in (b"\x00" * 7, b"\n", b"garbage after the last member", gzip.compress(b"", mtime=0)):
        recs, tally = both(data + tail)
        assert [r.uri for r in recs if r.uri][:3] == [
            "https://a.example/1",
            "https://a.example/5",
            "https://a.example/9",
        ]


def test_single_stream_gzip_is_reopened_as_before():
    plain = b"".join(
        warc_record(t, f"https://a.example/{n}", http(HTML) if t == "response" else b"x", n)
        for n, t in enumerate(["warcinfo", "response", "request", "response"])
    )
    data = gzip.compress(plain, mtime=0)
    recs, tally = both(data)
    assert [r.error for r in recs] == [None, None] and tally["handovers"] == 1
    recs, _ = both(data, reopen=False)
    assert [r.error for r in recs] == ["truncated"]
    # a response first: it is yielded before the file shows it is one stream
    starts_with_response = gzip.compress(plain[plain.index(b"WARC/1.1", 10) :], mtime=0)
    recs, _ = both(starts_with_response)
    assert [r.error for r in recs] == [None, "truncated"] and recs[1].offset == 0


def test_uncompressed_and_unseekable_input_is_read_by_warcio():
    plain = b"".join(
        warc_record("response", f"https://a.example/{n}", http(HTML), n) for n in range(3)
    ) + warc_record("response", "https://a.example/3", http(HTML), 3, length=b"900")
    recs, tally = both(plain, "p.warc")
    assert len(recs) == 4 and recs[-1].error == "truncated" and tally == Counter(warcio=4)

    class Unseekable(io.RawIOBase):
        def __init__(self, data: bytes):
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            data = self.inner.read(len(b))
            b[: len(data)] = data
            return len(data)

    data = crawl()
    tally = Counter()
    fast = list(read_records(io.BufferedReader(Unseekable(data)), "u.warc.gz", tally=tally))
    assert fast == list(read_records(io.BytesIO(data), "u.warc.gz", engine="warcio"))
    assert tally == Counter(warcio=2)


class Trickle(io.RawIOBase):
    """A seekable stream that returns at most `most` bytes per read, as some file systems do."""

    def __init__(self, data: bytes, most: int):
        self.inner = io.BytesIO(data)
        self.most = most

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.inner.seek(offset, whence)

    def tell(self) -> int:
        return self.inner.tell()

    def read(self, n: int = -1) -> bytes:
        return self.inner.read(self.most if n < 0 else min(n, self.most))


@pytest.mark.parametrize("most", [1, 7, 300, 70_000])
def test_short_reads_from_the_stream(most):
    data = crawl(*(member("response", f"https://a.example/{n}", http(HTML * n), n) for n in range(2, 40)))
    tally: Counter[str] = Counter()
    fast = list(read_records(Trickle(data, most), "t.warc.gz", tally=tally))
    # (warcio's line reading itself goes wrong on one-byte reads, so the oracle reads the same stream)
    assert fast == list(read_records(Trickle(data, most), "t.warc.gz", engine="warcio"))
    if most == 1:  # FastWARC 2.0.1 fails on one-byte reads ("Invalid WARC header"): warcio reads it all
        assert tally == Counter(warcio=40, handovers=1), tally
    else:
        assert tally == Counter(fastwarc=40), tally


def test_offsets_are_positions_in_the_stream_as_given():
    """A stream sought to a record (as `audit verify --recheck` does) reads from there, offsets as warcio."""
    data = crawl(member("response", "https://a.example/5", http(HTML), 105))
    recs, _ = both(data)
    for rec in recs:
        streams = [io.BytesIO(data), io.BytesIO(data)]
        for s in streams:
            s.seek(rec.offset)
        tally: Counter[str] = Counter()
        fast = list(read_records(streams[0], "t.warc.gz", tally=tally))
        assert fast == list(read_records(streams[1], "t.warc.gz", engine="warcio"))
        assert fast[0] == rec and tally["fastwarc"] == len(fast)


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine 'fastest'"):
        list(read_records(io.BytesIO(crawl()), "t.warc.gz", engine="fastest"))


# ---------------------------------------------------------------- generated and third-party files


def test_generated_sample_crawl_reads_the_same_through_beam_filesystems(tmp_path):
    write_sample_crawl(tmp_path / "crawl", pages=120, domains=20)
    files = sorted((tmp_path / "crawl" / "warc").iterdir())
    total: Counter[str] = Counter()
    for path in files:
        with FileSystems.open(str(path), compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            fast = list(read_records(fh, path.name, tally=total))
        with path.open("rb") as fh:
            assert fast == list(read_records(fh, path.name, engine="warcio")), path.name
    corrupt = sum("corrupt" in p.name for p in files)  # the crawl's deliberately broken file(s)
    assert corrupt and total["handovers"] == corrupt and total["fastwarc"] >= 120, total


def conformance_files() -> list[Path]:
    if not CONFORMANCE.is_dir():
        pytest.skip(SKIP)
    skip = {"MANIFEST.json", "EXPECTED.json", "LICENSE", "NOTICE"}
    return sorted(p for p in CONFORMANCE.rglob("*") if p.is_file() and p.name not in skip)


def test_every_conformance_file_reads_the_same():
    total: Counter[str] = Counter()
    for path in conformance_files():
        rel = str(path.relative_to(CONFORMANCE))
        with path.open("rb") as fh:
            fast = list(read_records(fh, rel, lambda p=path: p.open("rb"), tally=total))
        with path.open("rb") as fh:
            oracle = list(read_records(fh, rel, lambda p=path: p.open("rb"), engine="warcio"))
        assert fast == oracle, rel  # ARC files too: no random record id differs between reads
    # all three ways of reading are exercised by real files
    assert total["fastwarc"] >= 20 and total["fastwarc_block"] >= 40 and total["handovers"] >= 5, total
