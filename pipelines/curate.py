"""The curation job (Apache Beam): read WARC records → assess each under the policy → deduplicate →
write the manifest (one row per input record) and the kept documents.

    ListWarcFiles → ReadWarcRecords → ApplyGovernancePolicy → DropDuplicates → WriteManifest / WriteCorpus

Only wiring lives here; every decision is made by `data_governance`. Inputs and outputs go through
Beam's FileSystems, and outputs are written into `curate.tmp/` and renamed into place when complete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeadersParser, StatusAndHeadersParserException

from commonweights.config import RunConfig, policy_hash, policy_record
from commonweights.errors import InputError, StageError
from data_governance import dedup, ids, manifest, reasons
from data_governance.assess import Assessed, Assessor, RawRecord
from data_governance.robots import RobotsRule, Snapshot
from data_governance.takedowns import Takedowns
from pipelines.options import pipeline_options

log = logging.getLogger(__name__)

DOC_RECORD_TYPES = ("response", "resource", "conversion")
WARC_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz")
_HTTP = StatusAndHeadersParser(["HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/2.0"], verify=False)


# ---------------------------------------------------------------- inputs


def warc_inputs(cfg: RunConfig) -> list[Path]:
    """The WARC files of the run, sorted; directories are expanded one level deep."""
    sources = [cfg.paths.crawl / "warc"] if cfg.data.sample else list(cfg.data.warc)
    files: list[Path] = []
    for src in sources:
        if src.is_dir():
            files.extend(p for p in src.iterdir() if p.name.endswith(WARC_SUFFIXES))
        elif src.is_file():
            files.append(src)
        else:
            raise InputError(f"{src}: WARC input not found (check data.warc in the config)")
    if not files:
        raise InputError(f"no WARC files under {', '.join(map(str, sources))} (expected *.warc.gz)")
    return sorted(set(files))


def source_names(files: list[Path]) -> dict[Path, str]:
    """Names recorded in the manifest: paths relative to the inputs' common folder, so the digest does
    not depend on where the crawl sits on disk."""
    root = Path(os.path.commonpath([str(f.parent) for f in files]))
    return {f: str(f.relative_to(root)) for f in files}


def robots_path(cfg: RunConfig) -> Path:
    path = cfg.paths.crawl / "robots.jsonl" if cfg.data.sample else cfg.data.robots
    if path is None or not path.is_file():
        raise InputError(f"{path}: robots.txt snapshot not found (set data.robots to the snapshot JSONL)")
    return path


def load_snapshots(path: str) -> dict[str, Snapshot]:
    snaps: dict[str, Snapshot] = {}
    with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as fh:
        for n, line in enumerate(fh.read().decode("utf-8").splitlines(), 1):
            if line.strip():
                snap = Snapshot.from_json(line, f"{path}:{n}")
                snaps[snap.domain] = snap
    return snaps


def load_takedowns(path: str | None) -> Takedowns:
    if not path:
        return Takedowns()
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return Takedowns.parse(fh.read().decode("utf-8"), path)


# ---------------------------------------------------------------- reading


def read_records(stream: Any, name: str) -> Iterator[RawRecord]:
    """Every response-like record of one WARC stream, or a RawRecord with `error` where reading fails.

    HTTP headers are parsed per record (not by the iterator), so one bad header block quarantines one
    record and reading goes on; a truncated or corrupt gzip member ends the file with one quarantined
    row at the offset where reading stopped (nothing after it can be located).
    """
    it = ArchiveIterator(stream, no_record_parse=True, arc2warc=True)
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
    except zlib.error as e:
        yield RawRecord(name, _failed_at(it, offset), error="corrupt_gzip", error_detail=repr(e))
    except (ArchiveLoadFailed, OSError, EOFError, ValueError) as e:
        yield RawRecord(name, _failed_at(it, offset), error="truncated", error_detail=repr(e))


# Errors after which the stream position is unknown: reading the file cannot go on.
STREAM_ERRORS = frozenset({"truncated", "unreadable_block"})


def _failed_at(it: ArchiveIterator, offset: int) -> int:
    return offset if offset >= 0 else int(getattr(it, "offset", 0) or 0)


def _read_one(rec: Any, name: str, offset: int) -> RawRecord:
    h = rec.rec_headers
    uri = h.get_header("WARC-Target-URI") or ""
    meta = {
        "source_file": name,
        "offset": offset,
        "record_id": h.get_header("WARC-Record-ID") or "",
        "uri": uri,
        "warc_date": h.get_header("WARC-Date") or "",
    }
    declared = rec.length
    try:
        if rec.rec_type == "response" and uri.startswith(("http:", "https:")):
            try:
                http = _HTTP.parse(rec.raw_stream)
            except (StatusAndHeadersParserException, ValueError, IndexError) as e:
                rec.raw_stream.read()
                return RawRecord(**meta, error="http_headers", error_detail=repr(e))
            rec.http_headers = http
            code = http.get_statuscode() or ""
            if not code.isdigit():
                rec.raw_stream.read()
                return RawRecord(**meta, error="http_headers", error_detail=http.statusline[:200])
            status: int | None = int(code)
            headers = tuple((k.lower(), v) for k, v in http.headers)
            payload = rec.content_stream().read()
        else:
            status = None
            ctype = h.get_header("WARC-Identified-Payload-Type") or h.get_header("Content-Type") or ""
            headers = (("content-type", ctype),)
            payload = rec.raw_stream.read()
    except EOFError as e:
        return RawRecord(**meta, error="truncated", error_detail=f"block ends early: {e!r}")
    except (OSError, ValueError, zlib.error) as e:
        return RawRecord(**meta, error="unreadable_block", error_detail=repr(e))
    remaining = getattr(rec.raw_stream, "limit", 0)
    if declared is not None and remaining:
        return RawRecord(**meta, error="truncated", error_detail=f"{remaining} of {declared} bytes missing")
    return RawRecord(**meta, http_status=status, headers=headers, payload=payload)


class ReadWarcRecords(beam.DoFn):
    """(path, source name) → RawRecord per response-like record; counts what it read."""

    def __init__(self) -> None:
        self.records = Metrics.counter("curate", "records_read")
        self.malformed = Metrics.counter("curate", "records_malformed")

    def process(self, element: tuple[str, str]) -> Iterable[RawRecord]:
        path, name = element
        # UNCOMPRESSED: WARC gzip is per record, and warcio must see member boundaries to give offsets.
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            for rec in read_records(fh, name):
                self.records.inc()
                if rec.error:
                    self.malformed.inc()
                yield rec


# ---------------------------------------------------------------- policy


class ApplyGovernancePolicy(beam.DoFn):
    """RawRecord → Assessed (manifest row + redacted text while it can still be kept)."""

    def __init__(self, cfg: RunConfig, robots_file: str, takedowns_file: str | None):
        self.policy = cfg.governance
        self.robots_file = robots_file
        self.takedowns_file = takedowns_file
        self.decisions = {d: Metrics.counter("decision", d) for d in ("kept", "dropped", "quarantined")}
        self.assessor: Assessor | None = None

    def setup(self) -> None:
        rule = RobotsRule(load_snapshots(self.robots_file), self.policy)
        self.assessor = Assessor(
            self.policy, policy_hash(self.policy), rule, load_takedowns(self.takedowns_file)
        )

    def process(self, rec: RawRecord) -> Iterable[Assessed]:
        assert self.assessor is not None, "setup() runs before process()"
        result = self.assessor.assess(rec)
        self.decisions[result.row["decision"]].inc()
        yield result


# ---------------------------------------------------------------- dedup


def _split_repeated_captures(kv: tuple[str, Iterable[Assessed]]) -> Iterator[Assessed]:
    """The same capture (URI, date, payload) read twice is one document: the first by source position
    keeps the id, each repeat gets an id from its own position and points at the first."""
    doc, group = kv
    items = sorted(group, key=lambda a: (a.row["source_file"], a.row["source_offset"]))
    yield items[0]
    for a in items[1:]:
        a.row["doc_id"] = ids.malformed_id(a.row["source_file"], a.row["source_offset"])
        a.row["reasons"] = [*a.row["reasons"], reasons.duplicate_of(doc)]
        a.row["decision"] = "dropped" if a.row["decision"] != "quarantined" else "quarantined"
        a.text = None
        yield a


def _bucket_keys(a: Assessed) -> Iterator[tuple[str, str]]:
    assert a.text is not None
    doc = a.row["doc_id"]
    yield "exact:" + a.row["text_sha256"], doc
    for key in dedup.band_keys(dedup.signature(a.text)):
        yield key, doc


def _link(kv: tuple[str, Iterable[str]]) -> Iterator[tuple[str, str]]:
    members = sorted(set(kv[1]))
    for other in members[1:]:
        yield members[0], other


def _mark(kv: tuple[str, dict[str, list[Any]]]) -> Iterator[Assessed]:
    _, joined = kv
    rep = joined["rep"][0] if joined["rep"] else None
    for a in joined["doc"]:
        if rep is not None:
            a.row["reasons"] = [*a.row["reasons"], reasons.duplicate_of(rep)]
            a.row["decision"] = "dropped"
            a.text = None
        yield a


class DropDuplicates(beam.PTransform):
    """Exact and near-duplicate removal whose result does not depend on how the work was split."""

    def __init__(self, enabled: bool):
        super().__init__()
        self.enabled = enabled

    def expand(self, assessed: beam.PCollection) -> beam.PCollection:
        unique = (
            assessed
            | "KeyByDocId" >> beam.Map(lambda a: (a.row["doc_id"], a))
            | "GroupSameCapture" >> beam.GroupByKey()
            | "SplitRepeatedCaptures" >> beam.FlatMap(_split_repeated_captures)
        )
        if not self.enabled:
            return unique
        reps = (
            unique
            | "SelectCandidates" >> beam.Filter(lambda a: a.text is not None)
            | "ComputeBuckets" >> beam.FlatMap(_bucket_keys)
            | "GroupBuckets" >> beam.GroupByKey()
            | "LinkBucketMembers" >> beam.FlatMap(_link)
            | "CollectEdges" >> beam.combiners.ToList()
            | "FindComponents" >> beam.FlatMap(lambda edges: dedup.components(edges).items())
        )
        docs = unique | "KeyDocs" >> beam.Map(lambda a: (a.row["doc_id"], a))
        return (
            {"doc": docs, "rep": reps}
            | "JoinRepresentatives" >> beam.CoGroupByKey()
            | "MarkDuplicates" >> beam.FlatMap(_mark)
        )


# ---------------------------------------------------------------- outputs


def _corpus_line(a: Assessed) -> str:
    r = a.row
    return json.dumps(
        {
            "doc_id": r["doc_id"],
            "url": r["url"],
            "domain": r["domain"],
            "licence": r["licence"],
            "text": a.text,
        },
        ensure_ascii=False,
    )


def build(p: beam.Pipeline, cfg: RunConfig, files: list[Path], robots: Path, out: Path) -> None:
    names = source_names(files)
    takedowns = str(cfg.data.takedowns) if cfg.data.takedowns else None
    rows = (
        p
        | "ListWarcFiles" >> beam.Create([(str(f), names[f]) for f in files])
        | "ReadWarcRecords" >> beam.ParDo(ReadWarcRecords())
        | "ApplyGovernancePolicy" >> beam.ParDo(ApplyGovernancePolicy(cfg, str(robots), takedowns))
        | "DropDuplicates" >> DropDuplicates(cfg.governance.dedup_exact)
    )
    _ = (
        rows
        | "ToManifestRows" >> beam.Map(lambda a: a.row)
        | "WriteManifest"
        >> beam.io.WriteToParquet(
            str(out / "manifest" / "part"),
            manifest.SCHEMA,
            file_name_suffix=".parquet",
            num_shards=1,
            shard_name_template="-SSSSS-of-NNNNN",
        )
    )
    _ = (
        rows
        | "SelectKept" >> beam.Filter(lambda a: a.row["decision"] == "kept")
        | "ToCorpusLines" >> beam.Map(_corpus_line)
        | "WriteCorpus"
        >> beam.io.WriteToText(
            str(out / "documents" / "part"),
            file_name_suffix=".jsonl",
            num_shards=1,
            shard_name_template="-SSSSS-of-NNNNN",
        )
    )


def read_manifest(folder: Path) -> list[dict[str, Any]]:
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        raise InputError(f"{folder}: no manifest parts (run `commonweights curate` first)")
    return [row for part in parts for row in pq.read_table(part).to_pylist()]


def write_manifest_json(cfg: RunConfig, folder: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    parts = [
        {"path": p.name, "sha256": ids.sha256(p.read_bytes()), "rows": pq.read_metadata(p).num_rows}
        for p in sorted(folder.glob("part-*.parquet"))
    ]
    doc = {
        "schema_version": manifest.SCHEMA_VERSION,
        "columns": list(manifest.COLUMNS),
        "policy": policy_record(cfg.governance),
        "policy_hash": policy_hash(cfg.governance),
        "config_digest": cfg.digest(),
        **manifest.summarize(rows),
        "digest": {"algorithm": "merkle-sha256", "root": manifest.digest(rows), "order": "doc_id"},
        "parts": parts,
    }
    (folder / "manifest.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return doc


def run(cfg: RunConfig) -> dict[str, Any]:
    """Curate the run's WARC inputs into `curate/` (manifest + kept documents)."""
    if cfg.data.sample:
        from pipelines.sample_crawl import write_sample_crawl

        s = cfg.data.sample
        write_sample_crawl(
            cfg.paths.crawl, seed=s.seed, pages=s.pages, domains=s.domains, snapshot_date=s.snapshot_date
        )
    files = warc_inputs(cfg)
    robots = robots_path(cfg)
    load_snapshots(str(robots))  # a bad snapshot fails here, before any worker starts
    if cfg.data.takedowns:
        load_takedowns(str(cfg.data.takedowns))
    final = cfg.paths.curate
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    p = beam.Pipeline(options=pipeline_options(cfg.curate))
    build(p, cfg, files, robots, tmp)
    result = p.run()
    result.wait_until_finish()
    read = _counter(result, "records_read")
    rows = read_manifest(tmp / "manifest")
    if len(rows) != read:
        raise StageError(f"curate: {read} records read but {len(rows)} manifest rows written in {tmp}")
    if len({r["doc_id"] for r in rows}) != len(rows):
        raise StageError(f"curate: duplicate doc_id in the manifest written to {tmp}")
    doc = write_manifest_json(cfg, tmp / "manifest", rows)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    log.info("curate: %s rows, %s", doc["rows"], doc["counts"])
    return {
        "rows": doc["rows"],
        "counts": doc["counts"],
        "digest": doc["digest"]["root"],
        "inputs": len(files),
    }


def _counter(result: Any, name: str) -> int:
    found = result.metrics().query(MetricsFilter().with_name(name))["counters"]
    return int(sum(c.committed or c.attempted or 0 for c in found))


def manifest_digest_of(folder: Path) -> str:
    return manifest.digest(read_manifest(folder))
