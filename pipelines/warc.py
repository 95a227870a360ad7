"""Reading WARC/ARC input into `RawRecord`s: FastWARC for the common record, warcio for the rest.

`read_records(stream, name, reopen)` yields every response-like record of one file (`response`,
`resource`, `conversion`), or a RawRecord with `error` where reading fails. Its output is defined by
the warcio reader (`engine="warcio"`, the code that the conformance tests replay on real and
malformed files); the default `engine="fast"` yields the very same records — fields, offsets, errors
and their details — and only reads the common case faster.

The rule of the fast engine:

1. Only a seekable stream that starts with a gzip member is read with FastWARC. Uncompressed WARC,
   ARC and unseekable streams go to warcio from the start.
2. FastWARC iterates the records (`parse_http=False`); a record is *common* when its version line is
   `WARC/1.0` or `WARC/1.1`, its `Content-Length` is a plain number that FastWARC agrees with, and its
   gzip member holds exactly the record as warcio would frame it: the member starts at the record's
   offset, ends where the next record starts (or at the end of the file), and its decompressed size
   (the gzip ISIZE trailer, which FastWARC checks together with the CRC) equals the record written
   canonically — `Name: value` header lines with CRLF, the block of `Content-Length` bytes, then
   CRLF CRLF. Any header that warcio would read differently (folded lines, extra spaces, bytes that
   are not UTF-8, a second record in the member) changes that size; names and values must also have
   no whitespace at either end and no CR or LF (FastWARC trims spaces and tabs, warcio every
   whitespace character, and warcio splits lines on LF alone). A document record must also yield
   its whole block.
3. The first record that is not common — or any error FastWARC raises — hands the file over to
   warcio: the stream is sought back to that record's offset and warcio's iterator reads from there
   to the end, with the same error handling as the warcio engine (a single-stream gzip file is then
   re-read through `reopen()` exactly as before). Records are held back until the next record (or
   the end of the file) shows that their member was whole, so a hand-over never repeats or drops a
   record.
4. Within a common document record, the HTTP message is parsed in Python when it is *simple*: ASCII
   header lines ended by CRLF, none folded or blank, each with a colon, a numeric status code, no
   `Content-Encoding` and no `Transfer-Encoding` header, and a target URI that warcio would not
   rewrite. These are the inputs on which warcio's `StatusAndHeadersParser` reduces to splitting
   lines, so the result is the same string for string. Every other document record is read by the
   warcio code itself (`_read_one`) on a warcio record built around the block bytes FastWARC gave:
   chunked and compressed bodies, bad status lines and header blocks, wrong HTTP lengths.

Offsets are positions in the stream as given (warcio counts from the stream's position when reading
starts; FastWARC's `stream_pos` is the same for gzip members).

Two things both engines share, since the warcio code is theirs: an ARC record has no record id, and
the one warcio makes up for it (a random UUID, new on every read) is not kept: `record_id` is empty,
so a rerun over ARC input writes the same manifest and digest. And `Content-Encoding: br` bodies are
decoded through `_Brotli` below (warcio's own br hook fails with the Brotli module that FastWARC
installs).
"""

from __future__ import annotations

import gzip
import io
import logging
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, BinaryIO, cast

import brotli
from fastwarc.warc import ArchiveIterator as FastArchiveIterator
from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import BufferedReader
from warcio.exceptions import ArchiveLoadFailed
from warcio.limitreader import LimitReader
from warcio.recordloader import ARC2WARCHeadersParser, ArcWarcRecord, ArcWarcRecordLoader
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser, StatusAndHeadersParserException

from data_governance.assess import RawRecord

log = logging.getLogger(__name__)


class _Brotli:
    """warcio's decoder for `Content-Encoding: br`, for the Brotli module FastWARC depends on.

    warcio 1.8.1 was written for brotlipy: it sets `unused_data` on the decompressor, which Google's
    Brotli (the `brotli` module installed with FastWARC) refuses, so every br-encoded response raised
    AttributeError out of the reader (webrecorder/warcio#73). This gives warcio the interface it reads:
    `decompress`, `unused_data` (a br body is one stream: nothing follows it) and `flush`.
    """

    unused_data = None

    def __init__(self) -> None:
        self._inner = brotli.Decompressor()

    def decompress(self, data: bytes) -> bytes:
        return self._inner.process(data)

    def flush(self) -> bytes:
        return b""


BufferedReader.DECOMPRESSORS["br"] = _Brotli  # the registry warcio itself fills in at import

DOC_RECORD_TYPES = ("response", "resource", "conversion")
ENGINES = ("fast", "warcio")
_HTTP = StatusAndHeadersParser(["HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/2.0"], verify=False)


class NotChunked(Exception):
    """The file is one gzip stream around many records (not one gzip member per record)."""


def read_records(
    stream: Any,
    name: str,
    reopen: Callable[[], Any] | None = None,
    *,
    engine: str = "fast",
    tally: Counter[str] | None = None,
) -> Iterator[RawRecord]:
    """Every response-like record of one WARC/ARC stream, or a RawRecord with `error` where reading fails.

    HTTP headers are parsed per record (not by the iterator), so one bad header block quarantines one
    record and reading goes on; a truncated or corrupt gzip member ends the file with one quarantined
    row at the offset where reading stopped (nothing after it can be located).

    A gzip file that is one stream around all records ("non-chunked", which warcio refuses) is read
    again through `reopen()` as one decompressed stream; its offsets are then positions in the
    decompressed stream (FastWARC reads such files; warcio refuses them).

    `engine="fast"` (the default) reads common records with FastWARC and everything else with warcio,
    yielding the same records as `engine="warcio"` (see the module docstring for the rule). `tally`,
    if given, counts how each record was read: "fastwarc" (FastWARC and the plain-HTTP parse),
    "fastwarc_block" (FastWARC's block read by warcio's record code), "warcio"; and "handovers", the
    files handed to warcio part-way.
    """
    tally = tally if tally is not None else Counter()
    if engine not in ENGINES:
        raise ValueError(f"read_records: engine {engine!r} is not one of {', '.join(ENGINES)}")
    yielded = False
    try:
        records = _read_fast(stream, name, tally) if engine == "fast" else _read_warcio(stream, name, tally)
        for rec in records:
            yielded = True
            yield rec
    except NotChunked as e:
        if yielded or reopen is None:
            tally["warcio"] += 1
            yield RawRecord(name, 0, error="truncated", error_detail=f"single-stream gzip: {e}")
            return
        with gzip.GzipFile(fileobj=reopen()) as whole:
            yield from _read_warcio(whole, name, tally, decompressed=True)


def _read_warcio(
    stream: Any, name: str, tally: Counter[str], decompressed: bool = False
) -> Iterator[RawRecord]:
    for rec in _read_stream(stream, name, decompressed):
        tally["warcio"] += 1
        yield rec


# ---------------------------------------------------------------- warcio (the reference)


class _ArcHeaders(ARC2WARCHeadersParser):  # type: ignore[misc]
    """warcio's ARC → WARC header conversion without the WARC-Record-ID it makes up (a random UUID,
    new on every read): an ARC record has no id, and a made-up one would change the manifest on each
    run."""

    def _get_protocol_and_headers(self, headerline: str, parts: list[str]) -> tuple[str, list[Any]]:
        protocol, headers = super()._get_protocol_and_headers(headerline, parts)
        return protocol, [(k, v) for k, v in headers if k != "WARC-Record-ID"]


def _read_stream(stream: Any, name: str, decompressed: bool) -> Iterator[RawRecord]:
    it = ArchiveIterator(stream, no_record_parse=True, arc2warc=True)
    it.loader.arc_parser = _ArcHeaders()  # (the parser ArcWarcRecordLoader picks for arc2warc)
    offset = 0
    try:
        for rec in it:
            # it.offset is the record's start until the record is consumed; get_record_offset()
            # would read the record to its end first.
            offset = int(it.offset)
            if rec.rec_type not in DOC_RECORD_TYPES:
                continue
            raw = _read_one(rec, name, offset)
            yield raw
            if raw.error in STREAM_ERRORS:
                return
            offset = -1  # this record is accounted for; a failure now is in what follows it
    except ArchiveLoadFailed as e:
        if "non-chunked gzip" in str(e) and not decompressed:
            raise NotChunked(str(e).strip().splitlines()[0]) from None
        yield RawRecord(name, _failed_at(it, offset), error="truncated", error_detail=repr(e))
    except zlib.error as e:
        yield RawRecord(name, _failed_at(it, offset), error="corrupt_gzip", error_detail=repr(e))
    except (OSError, EOFError, ValueError) as e:
        yield RawRecord(name, _failed_at(it, offset), error="truncated", error_detail=repr(e))


# Errors after which the stream position is unknown: reading the file cannot go on.
STREAM_ERRORS = frozenset({"truncated"})


def _failed_at(it: ArchiveIterator, offset: int) -> int:
    return offset if offset >= 0 else int(getattr(it, "offset", 0) or 0)


def _read_one(rec: Any, name: str, offset: int) -> RawRecord:
    h = rec.rec_headers
    uri = h.get_header("WARC-Target-URI") or ""
    # Where the record is and what it names; every outcome below is this plus what was read.
    base = RawRecord(
        source_file=name,
        offset=offset,
        record_id=h.get_header("WARC-Record-ID") or "",
        uri=uri,
        warc_date=h.get_header("WARC-Date") or "",
    )
    declared = rec.length
    try:
        if rec.rec_type == "response" and uri.startswith(("http:", "https:")):
            if declared == 0:
                return replace(base, error="http_headers", error_detail="empty record block")
            try:
                http = _HTTP.parse(rec.raw_stream)
            except EOFError:
                if declared is None or int(getattr(rec.raw_stream, "limit", 0)):
                    raise  # the file ends inside the record: truncated
                return replace(base, error="http_headers", error_detail="block ends inside HTTP headers")
            except (StatusAndHeadersParserException, ValueError, IndexError) as e:
                rec.raw_stream.read()
                return replace(base, error="http_headers", error_detail=repr(e))
            rec.http_headers = http
            code = http.get_statuscode() or ""
            if not code.isdigit():
                rec.raw_stream.read()
                why = f"status line {http.statusline[:200]!r}"
                return replace(base, error="http_headers", error_detail=why)
            status: int | None = int(code)
            headers = tuple((k.lower(), v) for k, v in http.headers)
            payload = rec.content_stream().read()
        else:
            status = None
            ctype = h.get_header("WARC-Identified-Payload-Type") or h.get_header("Content-Type") or ""
            headers = (("content-type", ctype),)
            payload = rec.raw_stream.read()
    except EOFError as e:
        return replace(base, error="truncated", error_detail=f"block ends early: {e!r}")
    except (OSError, ValueError, zlib.error) as e:
        rec.raw_stream.read()
        return replace(base, error="unreadable_block", error_detail=repr(e))
    remaining = getattr(rec.raw_stream, "limit", 0)
    if declared is not None and remaining:
        unread = rec.raw_stream.read()  # whatever the file still has of this block
        whole = _http_length(headers, payload)
        if whole is not None:  # the HTTP message is whole by its own account: the container length is off
            payload = payload[:whole]
        elif remaining > len(unread) and "transfer-encoding" not in dict(headers):
            # (a chunked decoder buffers what it read, so only an identity body can be measured short)
            missing = remaining - len(unread)
            return replace(base, error="truncated", error_detail=f"{missing} of {declared} bytes missing")
        else:
            return replace(
                base,
                error="unreadable_block",
                error_detail=f"payload decoding stopped {len(unread)} bytes before the block's end",
            )
    return replace(base, http_status=status, headers=headers, payload=payload)


def _http_length(headers: tuple[tuple[str, str], ...], payload: bytes) -> int | None:
    """The body length of an identity-encoded HTTP message whose `Content-Length` the payload read
    covers (ARC files often declare a record length that disagrees with the message inside)."""
    values = dict(headers)
    length = values.get("content-length", "").strip()
    if not length.isdigit() or "transfer-encoding" in values or "content-encoding" in values:
        return None
    return int(length) if int(length) <= len(payload) else None


# ---------------------------------------------------------------- FastWARC (the common record)

_GZIP_MAGIC = b"\x1f\x8b\x08"
_VERSIONS = ("WARC/1.0", "WARC/1.1")
_LOADER = ArcWarcRecordLoader(verify_http=False, arc2warc=True)
_CODED = ("content-encoding", "transfer-encoding")


class _Tap:
    """The raw stream as FastWARC reads it, keeping its last few chunks so that the bytes at member
    boundaries (gzip magic, ISIZE trailer) can be looked at without reading the file twice."""

    KEEP = 1 << 18  # bytes of history held (FastWARC reads 64 KiB at a time; other streams may read less)

    def __init__(self, raw: Any, start: int):
        self.raw = raw
        self.pos = start
        self.eof = False
        self.chunks: deque[tuple[int, bytes]] = deque()
        self.held = 0

    def tell(self) -> int:
        return self.pos

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self.chunks.append((self.pos, data))
            self.pos += len(data)
            self.held += len(data)
            while self.held - len(self.chunks[0][1]) >= self.KEEP:
                self.held -= len(self.chunks.popleft()[1])
        else:
            self.eof = True
        return data

    def at(self, pos: int, n: int) -> bytes | None:
        """Bytes [pos, pos + n) if they are still held, else None."""
        for start, data in reversed(self.chunks):  # most often in the last chunk read
            if start <= pos:
                if pos + n <= start + len(data):
                    return data[pos - start : pos - start + n]
                break
        parts = []
        want, stop = pos, pos + n
        for start, data in self.chunks:
            end = start + len(data)
            if end <= want:
                continue
            if start > want:
                return None
            piece = data[want - start : stop - start]
            parts.append(piece)
            want += len(piece)
            if want == stop:
                return b"".join(parts)
        return None


class _Pending:
    """A record FastWARC read, held until the next record shows where its gzip member ended."""

    __slots__ = ("pos", "magic", "size", "raw", "how")

    def __init__(self, pos: int, magic: bytes | None, size: int, raw: RawRecord | None, how: str):
        self.pos = pos
        self.magic = magic
        self.size = size  # the canonical decompressed size of the member
        self.raw = raw  # the RawRecord to yield (None for records that are not documents)
        self.how = how  # which code read it (a key of read_records' tally)

    def whole(self, tap: _Tap, end: int) -> bool:
        trailer = tap.at(end - 4, 4) if end - self.pos >= 18 else None
        return (
            self.magic == _GZIP_MAGIC
            and trailer is not None
            and int.from_bytes(trailer, "little") == self.size & 0xFFFFFFFF
        )


def _seekable_start(stream: Any) -> int | None:
    """The stream's position if it can be sought back to, else None."""
    try:
        if not stream.seekable():
            return None
        return int(stream.tell())
    except (AttributeError, OSError, ValueError):
        return None


def _read_fast(stream: Any, name: str, tally: Counter[str]) -> Iterator[RawRecord]:
    start = _seekable_start(stream)
    if start is None:
        yield from _read_warcio(stream, name, tally)
        return
    head = b""
    while len(head) < len(_GZIP_MAGIC):  # (a stream may return fewer bytes than asked for)
        more = stream.read(len(_GZIP_MAGIC) - len(head))
        if not more:
            break
        head += more
    stream.seek(start)
    if head != _GZIP_MAGIC:
        yield from _read_warcio(stream, name, tally)
        return
    tap = _Tap(stream, start)
    resume = start  # where warcio takes over: the first record not yet yielded
    pending: _Pending | None = None
    try:
        # (FastWARC only calls tell() once and read(); it never seeks or closes a Python stream)
        for rec in FastArchiveIterator(cast(BinaryIO, tap), parse_http=False):
            pos = rec.stream_pos
            if pending is not None:
                if not pending.whole(tap, pos):
                    break
                if pending.raw is not None:
                    tally[pending.how] += 1
                    yield pending.raw
                pending = None
            resume = pos
            pending = _common(rec, tap, name)
            if pending is None:
                break
        else:
            # (no record at all, or a last member that is not whole: warcio below says what it holds)
            if pending is not None and tap.eof and pending.whole(tap, tap.pos):
                if pending.raw is not None:
                    tally[pending.how] += 1
                    yield pending.raw
                return
    except Exception as e:  # whatever FastWARC or the stream raised, warcio meets it again and says what
        log.debug("%s: FastWARC stopped at offset %d (%r); warcio reads on", name, resume, e)
    tally["handovers"] += 1
    stream.seek(resume)
    yield from _read_warcio(stream, name, tally)


def _common(rec: Any, tap: _Tap, name: str) -> _Pending | None:
    """The record as a `_Pending` if FastWARC read it as warcio would frame it, else None."""
    h = rec.headers
    version = h.status_line
    if version not in _VERSIONS:
        return None
    items = h.to_tuples()
    first = {k.lower(): v for k, v in reversed(items)}  # warcio's get_header: the first value of a name
    length = first.get("content-length", "")
    if not (length.isascii() and length.isdigit()) or int(length) != rec.content_length:
        return None
    declared = int(length)
    text = "".join([k + v for k, v in items])
    # FastWARC trims spaces and tabs around names and values; warcio trims every whitespace character
    # Python knows (and splits lines on LF alone): where those could differ, warcio reads the record
    if "\r" in text or "\n" in text or any(k != k.strip() or v != v.strip() for k, v in items):
        return None
    # the record written canonically: version line, `Name: value` lines, blank line, block, CRLF CRLF
    size = len(version) + len(text.encode()) + 4 * len(items) + 8 + declared
    pos = rec.stream_pos
    raw, how = None, ""
    rec_type = first.get("warc-type")
    if rec_type in DOC_RECORD_TYPES:
        block = rec.reader.read()
        if len(block) != declared:
            return None
        raw, how = _document(rec_type, items, first, block, declared, name, pos)
    return _Pending(pos, tap.at(pos, len(_GZIP_MAGIC)), size, raw, how)


def _document(
    rec_type: str,
    items: tuple[tuple[str, str], ...],
    first: dict[str, str],
    block: bytes,
    declared: int,
    name: str,
    offset: int,
) -> tuple[RawRecord, str]:
    """The RawRecord of a document record and which code read it."""
    uri = first.get("warc-target-uri")
    if (
        rec_type == "response"
        and uri is not None
        and uri.startswith(("http:", "https:"))
        and " " not in uri
        and len(first) == len(items)  # no name twice (warcio rewrites the last URI but reads the first)
    ):
        simple = _simple_http(block)
        if simple is not None:
            status, headers, payload = simple
            fast = RawRecord(
                source_file=name,
                offset=offset,
                record_id=first.get("warc-record-id") or "",
                uri=uri,
                warc_date=first.get("warc-date") or "",
                http_status=status,
                headers=headers,
                payload=payload,
            )
            return fast, "fastwarc"
    # warcio's own reading of the record, on the block FastWARC decompressed
    rec_headers = StatusAndHeaders("", list(items), protocol="WARC/1.0")
    _LOADER._ensure_target_uri_format(rec_headers)  # what warcio's loader does to every WARC record
    record = ArcWarcRecord(
        "warc",
        rec_type,
        rec_headers,
        LimitReader.wrap_stream(io.BytesIO(block), declared),
        None,
        rec_headers.get_header("Content-Type"),
        declared,
    )
    return _read_one(record, name, offset), "fastwarc_block"


def _simple_http(block: bytes) -> tuple[int, tuple[tuple[str, str], ...], bytes] | None:
    """(status, headers, payload) of an HTTP message that warcio's parser reads as plain lines, else
    None. Every string operation below is the one warcio applies to the same line."""
    end = block.find(b"\r\n\r\n")
    if end <= 0:
        return None
    head = block[:end]
    if not head.isascii():
        return None
    lines = head.decode("ascii").split("\r\n")
    if head.count(b"\n") != len(lines) - 1 or head.count(b"\r") != len(lines) - 1:
        return None  # a bare CR or LF: warcio splits lines on LF only
    statusline = lines[0].rstrip()
    if not statusline:
        return None
    parts = statusline.split(" ", 1)
    code = (parts[1].strip() if len(parts) > 1 else "").split(" ", 1)[0]
    if not code.isdigit():
        return None
    # a folded (leading space or tab), blank or colon-less line is read otherwise by warcio
    if any(line[:1] in " \t" or ":" not in line for line in lines[1:]):
        return None
    pairs = [line.rstrip().split(":", 1) for line in lines[1:]]
    headers = tuple([(key.rstrip(" \t").lower(), value.lstrip()) for key, value in pairs])
    if any(key in _CODED for key, _ in headers):
        return None
    return int(code), headers, block[end + 4 :]
