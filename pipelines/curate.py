"""The curation job (Apache Beam): read WARC records → assess each under the policy → decontaminate →
deduplicate → write the manifest (one row per input record) and the kept documents.

    ListWarcFiles → CurateFiles (per file: ReadWarcRecords → ApplyGovernancePolicy → Decontaminate
        → SpillRows) → FindDuplicates → GroupByPart (documents, duplicates, part list) → WriteParts

Records are read by `pipelines.warc` (FastWARC for the common record, warcio for the rest). Each
record's manifest row, and a candidate's text, are written once to a spill file where they were made,
and so are the packs of light `Decided` records that dedup and the writers work on: the shuffles carry
references to those packs, and each writer reads its rows and copies its kept lines from the spill.

Only wiring lives here; every decision is made by `data_governance`. Inputs and outputs go through
Beam's FileSystems inside the pipeline (no state outside it), so the job runs unchanged on other Beam
runners (docs/runners.md). Parts are chosen by doc_id and sorted, so their bytes do not depend on the
runner or the number of workers. Outputs are written into `curate.tmp/` and renamed into place when
complete: a run killed mid-way leaves nothing half-written, and its restart starts over.
"""

from __future__ import annotations

import gc
import hashlib
import heapq
import io
import json
import logging
import math
import os
import pickle
import shutil
import sys
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import apache_beam as beam
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

from commonweights.config import CurateConfig, GovernanceConfig, RunConfig, policy_hash, policy_record
from commonweights.errors import InputError, StageError
from data_governance import decontam, dedup, ids, langid, manifest, quality, reasons
from data_governance.assess import Assessed, Assessor, RawRecord, engine_record
from data_governance.ids import sha256_file
from data_governance.robots import RobotsRule, Snapshot
from data_governance.signals import TdmSnapshot
from data_governance.takedowns import Takedowns
from pipelines.options import pipeline_options
from pipelines.warc import read_records

log = logging.getLogger(__name__)

SPILL = "spill"  # curate.tmp/spill/: rows and candidates' lines between assessment and the writers
STATS = "stats"  # curate.tmp/stats/: each manifest part's counts, audit facts and digest leaves
WARC_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz")


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


def load_tdmrep(path: str | None) -> dict[str, TdmSnapshot]:
    """The TDMRep /.well-known/tdmrep.json snapshot (JSONL, one line per domain), or {}."""
    if not path:
        return {}
    snaps: dict[str, TdmSnapshot] = {}
    with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as fh:
        for n, line in enumerate(fh.read().decode("utf-8").splitlines(), 1):
            if line.strip():
                snap = TdmSnapshot.from_json(line, f"{path}:{n}")
                snaps[snap.domain] = snap
    return snaps


# ---------------------------------------------------------------- reading


class ReadWarcRecords(beam.DoFn):
    """(path, source name) → RawRecord per response-like record; counts what it read."""

    def __init__(self) -> None:
        self.records = Metrics.counter("curate", "records_read")
        self.malformed = Metrics.counter("curate", "records_malformed")

    def process(self, element: tuple[str, str]) -> Iterable[RawRecord]:
        path, name = element

        # UNCOMPRESSED: WARC gzip is per record, and warcio must see member boundaries to give offsets.
        def reopen() -> Any:
            return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)

        with reopen() as fh:
            for rec in read_records(fh, name, reopen):
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
        self.tdmrep_file = str(cfg.data.tdmrep) if cfg.data.tdmrep else None
        self.decisions = {d: Metrics.counter("decision", d) for d in ("kept", "dropped", "quarantined")}
        self.assessor: Assessor | None = None

    def setup(self) -> None:
        rule = RobotsRule(load_snapshots(self.robots_file), self.policy)
        self.assessor = Assessor(
            self.policy,
            policy_hash(self.policy),
            rule,
            load_takedowns(self.takedowns_file),
            load_tdmrep(self.tdmrep_file),
        )
        # Heavy text tools are built here, once per worker, never per element.
        quality.prepare(self.policy.quality)
        if self.policy.languages:
            langid.identifier()

    def process(self, rec: RawRecord) -> Iterable[Assessed]:
        assert self.assessor is not None, "setup() runs before process()"
        result = self.assessor.assess(rec)
        self.decisions[result.row["decision"]].inc()
        yield result


class Decontaminate(beam.DoFn):
    """Drops kept documents that contain an item of an evaluation task (`contaminated:<task>`).

    Runs before deduplication, so every copy of a leaked item names the task itself rather than
    pointing at another copy. The n-gram index of the tasks is built in `setup`, once per worker."""

    def __init__(self, policy: GovernanceConfig):
        self.tasks = list(policy.decontaminate)
        self.n = policy.decontam_ngram
        self.contaminated = Metrics.counter("curate", "contaminated")
        self.index: decontam.Index | None = None

    def setup(self) -> None:
        if self.tasks:
            self.index = decontam.build_index(self.tasks, self.n)

    def process(self, a: Assessed) -> Iterable[Assessed]:
        found = self.index.tasks_in(a.text) if self.index is not None and a.text is not None else []
        if not found:
            yield a
            return
        self.contaminated.inc()
        row = {
            **a.row,
            "reasons": [*a.row["reasons"], *(decontam.reason(t) for t in found)],
            "decision": "dropped",
        }
        yield Assessed(row, None, a.extra)


# ---------------------------------------------------------------- spilling rows and text


class Decided(NamedTuple):
    """A document on its way through deduplication to the writers, light: what dedup reads and changes,
    and where the rest waits. Its manifest row (pickled) and, for a candidate, its corpus line were
    written once to the spill file of its input file (`SpillRows`); the writers read them back.

    So a document weighs ~0.3 KB in the packs that dedup and the writers read, whatever the page and
    its consent record weigh (rows are ~2.3 KB, texts ~5 KB); the packs wait in the spill too and
    the shuffles carry references to them (`Ref`). The row's doc_id, decision and reasons are those
    given here.
    (A named tuple: a pack of them pickles in ~1.8 µs and loads in ~1.2 µs per document.)"""

    doc_id: str
    source: tuple[str, int]  # (source_file, source_offset): where the record is in the input
    decision: str
    reasons: tuple[str, ...]
    spill: str  # the spill file's name, in the run's spill folder
    row: tuple[int, int]  # (offset, length) of the pickled manifest row in it
    line: tuple[int, int] | None = None  # of the corpus line; None once the document cannot be kept
    keys: tuple[bytes, ...] = ()  # dedup buckets: `dedup_keys`


def dedup_keys(row: dict[str, Any], text: str) -> tuple[bytes, ...]:
    """The buckets a candidate falls into: its exact text hash and its MinHash bands."""
    return (b"=" + bytes.fromhex(row["text_sha256"]), *dedup.band_keys(dedup.signature(text)))


def corpus_line(row: dict[str, Any], text: str) -> bytes:
    """One line of the kept documents' JSONL: compact UTF-8 JSON, as `json.dumps` with compact
    separators writes it (orjson: 1.3 µs for a 3 KB text where `json.dumps` took 22.5 µs)."""
    doc = {"doc_id": row["doc_id"], "url": row["url"], "domain": row["domain"], "licence": row["licence"]}
    return orjson.dumps({**doc, "text": text}) + b"\n"


def final_row(d: Decided, stored: dict[str, Any]) -> dict[str, Any]:
    """The manifest row: as assessed, with dedup's doc_id, decision and reasons."""
    return {**stored, "doc_id": d.doc_id, "decision": d.decision, "reasons": list(d.reasons)}


class SpillFile:
    """A bundle's spill file in `folder`, opened on its first write.

    Every bundle writes its own file under a fresh name, so a retried one never overwrites what a
    committed one points at; a file is read only behind a shuffle, after the step that wrote it has
    closed it (`finish_bundle`). The folder is removed once the outputs are written."""

    def __init__(self, folder: str):
        self.folder = folder
        self.out: Any = None
        self.name = ""
        self.offset = 0

    def start_bundle(self) -> None:
        self.out = None

    def write(self, data: bytes) -> tuple[int, int]:
        if self.out is None:
            self.name = f"{uuid.uuid4().hex}.bin"
            path = FileSystems.join(self.folder, self.name)
            self.out = FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
            self.offset = 0
        self.out.write(data)
        at = (self.offset, len(data))
        self.offset += len(data)
        return at

    def pack(self, items: list[Any]) -> Ref:
        """`items` as one pack in this file; the reference crosses the shuffle in its place."""
        offset, length = self.write(pack(items))
        return self.name, offset, length

    def finish_bundle(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None


class SpillRows(SpillFile):
    """Assessed → Decided: the manifest row, and a candidate's corpus line, go to this bundle's spill
    file (in `CurateFiles`: one per input file)."""

    def __init__(self, folder: str, dedup_enabled: bool):
        super().__init__(folder)
        self.dedup_enabled = dedup_enabled

    def process(self, a: Assessed) -> Iterator[Decided]:
        r = a.row
        row = self.write(pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL))
        base = (r["doc_id"], (r["source_file"], r["source_offset"]), r["decision"], tuple(r["reasons"]))
        if a.text is None:
            yield Decided(*base, self.name, row)
            return
        line = self.write(corpus_line(r, a.text))
        yield Decided(*base, self.name, row, line, dedup_keys(r, a.text) if self.dedup_enabled else ())


class Spill:
    """Reads spilled bytes back, keeping up to `handles` spill files open (least recently used
    closed first): a part's documents come from every bundle's file."""

    def __init__(self, folder: str, handles: int = 64):
        self.folder = folder
        self.handles = handles
        self.open: OrderedDict[str, Any] = OrderedDict()

    def read(self, name: str, at: tuple[int, int]) -> bytes:
        fh = self.open.get(name)
        if fh is None:
            if len(self.open) >= self.handles:
                self.open.popitem(last=False)[1].close()
            path = FileSystems.join(self.folder, name)
            fh = self.open[name] = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
        else:
            self.open.move_to_end(name)
        offset, length = at
        fh.seek(offset)
        data = fh.read(length)
        if len(data) != length:
            short = f"spilled bytes at {offset} are short ({len(data)} of {length})"
            raise StageError(f"{self.folder}/{name}: {short}")
        return bytes(data)

    def unpack(self, refs: Iterable[Ref]) -> Iterator[Any]:
        """The items of the packs `refs` point at, pack after pack."""
        for name, offset, length in refs:
            yield from unpack(self.read(name, (offset, length)))

    def close(self) -> None:
        while self.open:
            self.open.popitem()[1].close()


# ---------------------------------------------------------------- packed shuffles

# Shuffles move packs: lists of items of one group (a hash of their key), sorted out by key after the
# shuffle. A step sees the grouping an element per key would give, but Beam's per-element cost (~5 µs
# in-process, more across processes) is paid per pack: with an element per document and 15 dedup
# keys per document it was the job's largest cost after the per-document work. Documents travel in
# packs per output part (`shard_of`); dedup keys in packs per key group (`group_of`), a shuffle of
# them moving at most groups² packs (groups: `pack_groups`). Results never depend on either number.
#
# A pack waits in its bundle's spill file and the shuffle moves its reference (`Ref`, ~70 bytes), so
# the runner never holds or relays the documents: a worker reads one group's packs at a time, which
# bounds its memory by the largest part or key group, not by its share of the input (the FnApiRunner
# delivers a worker its whole share of a grouped collection at once), and a multi-process driver
# relays references only.
Ref = tuple[str, int, int]  # (spill file name, offset, length) of a pack


def pack_groups(input_bytes: int) -> int:
    """Groups for an input of this size: about sqrt(0.3 × documents) (≈6 KB of gzip WARC each), a
    power of two in [16, 65536], so a shuffle moves a few packs per 50 items and one group holds at
    most ~15 × documents / groups dedup keys (a few million at 10^10 documents)."""
    docs = max(input_bytes // 6000, 1)
    return 1 << min(max(round(math.log2(math.sqrt(0.3 * docs))), 4), 16)


# Input per output part when curate.shards is unset: ~11,000 documents of ~6 KB of gzip WARC. One writer
# holds a part's light records (~1 KB each as Python objects: ~11 MB); a part's documents file is
# ~60 MB; two workers have two parts to write from ~130 MB of input on.
PART_INPUT_BYTES = 64 << 20


def part_count(curate: CurateConfig, input_bytes: int) -> int:
    """`curate.shards`, or where it is unset one part per PART_INPUT_BYTES of input. A function of the
    input alone, not of the runner or its workers, so that the part files are the same everywhere."""
    if curate.shards is not None:
        return curate.shards
    return max(1, -(-input_bytes // PART_INPUT_BYTES))


def group_of(key: bytes, groups: int) -> int:
    """The group of a dedup key (uniformly random bytes)."""
    return int.from_bytes(key[-4:], "little") % groups


def pack(items: list[Any]) -> bytes:
    """A pack as it waits in the spill: one pickle of the list (named tuples and builtins), written and
    read in one call instead of encoding each item (~3 µs each for a dataclass)."""
    return pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(data: bytes) -> list[Any]:
    return pickle.loads(data)  # (packs are this job's own, written by `pack`)


def sdk_worker_process() -> bool:
    """Whether this process is a Beam SDK worker (started as `-m apache_beam.runners.worker.sdk_worker_main`
    by the multi-process runner and by portable runners' process environments), which ends with the job."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None) == "apache_beam.runners.worker.sdk_worker_main"


class CurateFiles(beam.DoFn):
    """(path, source name) → (shard, reference to a pack of [Decided, ...]): every record of one WARC
    file read, assessed under the policy, checked for evaluation items and spilled (one spill file
    per input file, which also holds its packs), then sent as one pack per output part (`shard_of`
    its doc_id). The steps are the DoFns above, run per record; they meet per file so that a file's
    documents leave in a few packs, not one element each."""

    def __init__(self, cfg: RunConfig, robots_file: str, takedowns_file: str | None, spill: str, shards: int):
        self.read = ReadWarcRecords()
        self.assess = ApplyGovernancePolicy(cfg, robots_file, takedowns_file)
        self.decontaminate = Decontaminate(cfg.governance)
        self.spill = SpillRows(spill, cfg.governance.dedup_exact)
        self.shards = shards

    def setup(self) -> None:
        self.assess.setup()
        self.decontaminate.setup()
        # In an SDK worker process, what is loaded now (Beam, the engines, the policy's tables) lives
        # as long as the process: the permanent generation keeps the collector from scanning it again
        # in each full collection (~0.1 s per worker per run).
        if sdk_worker_process():
            gc.freeze()

    def teardown(self) -> None:
        # The worker process exits next: without this its interpreter scans every object once more at
        # exit (~0.2 s), and the multi-process runner stops its workers one after another. (Not in a
        # process that goes on, such as the in-process runner's: what is frozen is never collected.)
        if sdk_worker_process():
            gc.freeze()

    def process(self, element: tuple[str, str]) -> Iterator[tuple[int, Ref]]:
        packs: defaultdict[int, list[Decided]] = defaultdict(list)
        self.spill.start_bundle()  # a spill file per input file, closed before its packs leave
        try:
            for rec in self.read.process(element):
                for a in self.assess.process(rec):
                    for b in self.decontaminate.process(a):
                        for d in self.spill.process(b):
                            packs[shard_of(d.doc_id, self.shards)].append(d)
            refs = [(shard, self.spill.pack(docs)) for shard, docs in sorted(packs.items())]
        finally:
            self.spill.finish_bundle()
        yield from refs


# ---------------------------------------------------------------- dedup


def split_repeated_captures(docs: Iterable[Decided]) -> list[Decided]:
    """The same capture (URI, date, payload) read twice is one document: the first by source position
    keeps the id, each repeat gets an id from its own position and points at the first.

    Deterministic, so the dedup step and the writer each apply it to a part's documents (every
    capture of a doc_id is in the same part) and documents cross one shuffle, not two. Elements are
    never changed in place (a runner may hand the same object to several steps): changes are made on
    copies."""
    captures: defaultdict[str, list[Decided]] = defaultdict(list)
    for d in docs:
        captures[d.doc_id].append(d)
    out: list[Decided] = []
    for doc, group in captures.items():
        if len(group) == 1:
            out.append(group[0])
            continue
        items = sorted(group, key=lambda d: d.source)
        out.append(items[0])
        for d in items[1:]:
            out.append(
                d._replace(
                    doc_id=ids.malformed_id(*d.source),
                    reasons=(*d.reasons, reasons.duplicate_of(doc)),
                    decision="dropped" if d.decision != "quarantined" else "quarantined",
                    line=None,
                    keys=(),
                )
            )
    return out


Bucket = tuple[bytes, str]  # (dedup key, doc_id)


class PackBuckets(beam.DoFn):
    """(shard, packs of a part's documents) → the candidates' (dedup key, doc_id) pairs, one pack per
    key group, spilled to this bundle's file."""

    def __init__(self, spill: str, groups: int):
        self.folder, self.groups = spill, groups

    def start_bundle(self) -> None:
        self.spill = Spill(self.folder)
        self.out = SpillFile(self.folder)

    def process(self, kv: tuple[int, Iterable[Ref]]) -> Iterator[tuple[int, Ref]]:
        packs: defaultdict[int, list[Bucket]] = defaultdict(list)
        for d in split_repeated_captures(self.spill.unpack(kv[1])):
            if d.line is not None:
                for key in d.keys:
                    packs[group_of(key, self.groups)].append((key, d.doc_id))
        for group, pairs in sorted(packs.items()):
            yield group, self.out.pack(pairs)

    def finish_bundle(self) -> None:
        self.spill.close()
        self.out.finish_bundle()


class LinkBuckets(beam.DoFn):
    """(group, packs of (dedup key, doc_id) pairs) → edges from the smallest member of each bucket to
    the others, all under one key: edges exist only between duplicates, so one group holds them all
    (a keyed group, not a global combine: DaskRunner re-evaluates a combine's side input once per
    reader)."""

    def __init__(self, spill: str):
        self.folder = spill

    def start_bundle(self) -> None:
        self.spill = Spill(self.folder)

    def process(self, kv: tuple[int, Iterable[Ref]]) -> Iterator[tuple[str, tuple[str, str]]]:
        buckets: defaultdict[bytes, set[str]] = defaultdict(set)
        for key, doc in self.spill.unpack(kv[1]):
            buckets[key].add(doc)
        for members in buckets.values():
            if len(members) > 1:
                first, *others = sorted(members)
                for other in others:
                    yield "edges", (first, other)

    def finish_bundle(self) -> None:
        self.spill.close()


def mark_duplicates(docs: list[Decided], rep: dict[str, str]) -> list[Decided]:
    """Each document whose doc_id has a representative (`rep`: member → the doc_id it duplicates)
    dropped as a duplicate of it."""
    return [
        d
        if d.doc_id not in rep
        else d._replace(
            reasons=(*d.reasons, reasons.duplicate_of(rep[d.doc_id])),
            decision="dropped",
            line=None,
            keys=(),
        )
        for d in docs
    ]


class FindDuplicates(beam.PTransform):
    """Exact and near-duplicate detection whose result does not depend on how the work was split.

    (shard, reference to a pack of Decided) in, the packs in the spill folder `spill`; (shard,
    (member doc_id, representative doc_id)) out, for every candidate that duplicates another, keyed
    by the member's part. Dedup decides from the keys (`dedup_keys`) that stand for the text, after
    repeated captures are set apart."""

    def __init__(self, spill: str, groups: int, shards: int):
        super().__init__()
        self.spill = spill
        self.groups = groups
        self.shards = shards

    def expand(self, packs: beam.PCollection) -> beam.PCollection:
        g, n = self.groups, self.shards
        return (
            packs
            | "GroupPart" >> beam.GroupByKey()
            | "PackBuckets" >> beam.ParDo(PackBuckets(self.spill, g))
            | "GroupBuckets" >> beam.GroupByKey()
            | "LinkBucketMembers" >> beam.ParDo(LinkBuckets(self.spill))
            | "GroupEdges" >> beam.GroupByKey()
            | "FindComponents" >> beam.FlatMap(_reps_by_part, n)
        )


def _reps_by_part(
    kv: tuple[str, Iterable[tuple[str, str]]], shards: int
) -> Iterator[tuple[int, tuple[str, str]]]:
    """All edges → (member's part, (member, representative)) for every member of a component but its
    smallest id."""
    for member, rep in dedup.components(list(kv[1])).items():
        yield shard_of(member, shards), (member, rep)


# ---------------------------------------------------------------- outputs


def shard_of(doc_id: str, shards: int) -> int:
    """The output part of a document: a function of its id only, so parts do not depend on workers."""
    return int(doc_id[:8], 16) % shards


def part_name(shard: int, shards: int, suffix: str) -> str:
    return f"part-{shard:05d}-of-{shards:05d}{suffix}"


class WriteParts(beam.DoFn):
    """(shard, {"doc": pack references, "rep": duplicates, "shard": [None]}) → that part of the
    manifest (every document in it) and of the corpus (its kept documents), sorted by doc_id, plus
    the manifest part's sidecar (`write_part`) in `stats`. Every file is written to a temporary
    name and renamed into place (a retried bundle rewrites the same bytes)."""

    def __init__(self, manifest: str, corpus: str, stats: str, spill: str, shards: int):
        self.manifest, self.corpus, self.stats = manifest, corpus, stats
        self.spill = spill
        self.shards = shards

    def process(self, element: tuple[int, dict[str, Iterable[Any]]]) -> Iterator[str]:
        shard, joined = element
        spill = Spill(self.spill)
        try:
            docs = split_repeated_captures(spill.unpack(joined["doc"]))
            docs = sorted(mark_duplicates(docs, dict(joined.get("rep", ()))), key=lambda d: d.doc_id)
            name = part_name(shard, self.shards, "")
            manifest = FileSystems.join(self.manifest, name + ".parquet")
            sidecar, manifest_sha = _replace(manifest, lambda out: _encode_manifest(docs, spill, out))
            corpus = FileSystems.join(self.corpus, name + ".jsonl")
            _, corpus_sha = _replace(corpus, lambda out: _copy_lines(docs, spill, out))
        finally:
            spill.close()
        _replace(FileSystems.join(self.stats, name + ".stats"), lambda out: out.write(sidecar))
        files = json.dumps({"manifest": manifest_sha, "documents": corpus_sha}).encode()
        _replace(FileSystems.join(self.stats, name + FILES), lambda out: out.write(files))
        yield manifest
        yield corpus


# A part's sidecar of its two files' sha256, hashed as they were written (`_replace`): the run's finish
# never reads the manifest or the documents again to list them.
FILES = ".files"


class _Hashed:
    """A write stream that hashes what goes through it."""

    def __init__(self, out: Any):
        self.out = out
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> Any:
        self.sha256.update(data)
        return self.out.write(data)

    def __getattr__(self, name: str) -> Any:  # (tell, flush, closed, ... as the stream has them)
        return getattr(self.out, name)


def _replace(final: str, write: Callable[[Any], Any]) -> tuple[Any, str]:
    """Writes `final` through a temporary name with `write(stream)`; returns what it returned and the
    sha256 of the bytes written."""
    tmp = f"{final}.{uuid.uuid4().hex}.tmp"
    with FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        out = _Hashed(fh)
        result = write(out)
    if FileSystems.exists(final):
        FileSystems.delete([final])
    FileSystems.rename([tmp], [final])
    return result, out.sha256.hexdigest()


# Rows per row group of a manifest part: a writer holds at most this many rows (~2.3 KB each as Arrow
# data), whatever the part's size.
ROW_GROUP = 50_000


def _encode_manifest(docs: list[Decided], spill: Spill, out: Any) -> bytes:
    """The part's rows in doc_id order, one row group at a time, each read from the spill in file order."""

    def groups() -> Iterator[list[dict[str, Any]]]:
        for start in range(0, len(docs), ROW_GROUP):
            group = docs[start : start + ROW_GROUP]
            rows: list[dict[str, Any]] = [{}] * len(group)
            for i in sorted(range(len(group)), key=lambda i: (group[i].spill, group[i].row)):
                rows[i] = final_row(group[i], pickle.loads(spill.read(group[i].spill, group[i].row)))
            yield rows

    return write_part(groups(), out)


def write_part(groups: Iterable[list[dict[str, Any]]], out: Any) -> bytes:
    """Writes a manifest part, a row group per list of rows (in doc_id order), and returns its sidecar:
    the part's share of manifest.json and of the derived documents — its counts (`manifest.Summary`),
    audit facts (`audit.Facts`) and digest leaves (doc_id, leaf) in doc_id order — so the run can
    finish the manifest without reading its rows again (`finish_parts`)."""
    from data_governance.audit import Facts

    summary, facts, leaves = manifest.Summary(), Facts(), bytearray()
    with pq.ParquetWriter(out, manifest.SCHEMA) as writer:
        for rows in groups:
            for row in rows:
                summary.add(row)
                facts.add(row)
                leaves += bytes.fromhex(row["doc_id"]) + manifest.leaf(row)
            writer.write_table(_table(rows), row_group_size=ROW_GROUP)
        if summary.rows == 0:  # an empty part still has the schema
            writer.write_table(pa.Table.from_pylist([], schema=manifest.SCHEMA))
    return pickle.dumps({"summary": summary.to_json(), "facts": facts.to_json(), "leaves": bytes(leaves)})


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    """`pa.Table.from_pylist(rows, schema=manifest.SCHEMA)` built a column at a time (half its cost: 5.5
    against 10.6 µs per row); a missing key is null in both."""
    columns = [pa.array([r.get(f.name) for r in rows], type=f.type) for f in manifest.SCHEMA]
    return pa.Table.from_arrays(columns, schema=manifest.SCHEMA)


def _copy_lines(docs: list[Decided], spill: Spill, out: Any) -> None:
    """The kept documents' lines, copied from the spill in doc_id order (never all in memory)."""
    for d in docs:
        if d.decision == "kept":
            assert d.line is not None, "a kept document has its line in the spill"
            out.write(spill.read(d.spill, d.line))


def build(p: beam.Pipeline, cfg: RunConfig, files: list[Path], robots: Path, out: Path) -> None:
    names = source_names(files)
    takedowns = str(cfg.data.takedowns) if cfg.data.takedowns else None
    input_bytes = sum(f.stat().st_size for f in files)
    shards = part_count(cfg.curate, input_bytes)
    spill = str(out / SPILL)
    docs = (
        p
        | "ListWarcFiles" >> beam.Create([(str(f), names[f]) for f in files])
        | "CurateFiles" >> beam.ParDo(CurateFiles(cfg, str(robots), takedowns, spill, shards))
    )
    # Every part is written, even one no document falls into: the parts are joined with their list.
    joined: dict[str, beam.PCollection] = {
        "doc": docs,
        # (no reshuffle: the list is only joined, never worked on)
        "shard": p | "ListParts" >> beam.Create([(k, None) for k in range(shards)], reshuffle=False),
    }
    if cfg.governance.dedup_exact:
        groups = pack_groups(input_bytes)
        joined["rep"] = docs | "FindDuplicates" >> FindDuplicates(spill, groups, shards)
    writer = WriteParts(str(out / "manifest"), str(out / "documents"), str(out / STATS), spill, shards)
    _ = joined | "GroupByPart" >> beam.CoGroupByKey() | "WriteParts" >> beam.ParDo(writer)


def read_manifest(folder: Path) -> list[dict[str, Any]]:
    """Every row of the manifest parts in `folder` (read through Beam's FileSystems)."""
    parts = sorted(m.path for m in FileSystems.match([str(folder / "part-*.parquet")])[0].metadata_list)
    if not parts:
        raise InputError(f"{folder}: no manifest parts (run `commonweights curate` first)")
    rows: list[dict[str, Any]] = []
    for part in parts:
        with FileSystems.open(part, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            rows.extend(pq.read_table(io.BytesIO(fh.read())).to_pylist())
    return rows


class Finished(NamedTuple):
    """What the manifest parts' sidecars add up to."""

    summary: dict[str, Any]  # manifest.Summary.result()
    facts: dict[str, Any]  # audit.Facts.result()
    root: str  # the Merkle root of all rows in doc_id order
    rows: int
    parts: list[dict[str, Any]]  # manifest.json's "parts": path, sha256 and rows of each
    documents: list[dict[str, Any]]  # path and sha256 of each documents part that exists


def finish_parts(folder: Path, stats: Path) -> Finished:
    """Adds up the parts' sidecars (in part order) and joins their digest leaves in doc_id order, in
    O(parts + log rows) memory: no row is read again. A doc_id in two places fails the run. The files'
    sha256 come from their `FILES` sidecars; a part without one (a sidecar from `write_part` alone)
    is hashed here."""
    from data_governance.audit import Facts

    summary, facts, sidecars = manifest.Summary(), Facts(), []
    parts, documents = [], []
    for part in sorted(folder.glob("part-*.parquet")):
        stem = part.name.removesuffix(".parquet")
        side = pickle.loads((stats / (stem + ".stats")).read_bytes())
        summary.merge(manifest.Summary.from_json(side["summary"]))
        facts.merge(Facts.from_json(side["facts"]))
        sidecars.append(side["leaves"])
        listed = stats / (stem + FILES)
        files = json.loads(listed.read_text()) if listed.exists() else {}
        sha = files.get("manifest") or sha256_file(part)
        parts.append({"path": part.name, "sha256": sha, "rows": len(side["leaves"]) // 48})
        lines = folder.parent / "documents" / (stem + ".jsonl")
        if lines.exists():
            documents.append({"path": lines.name, "sha256": files.get("documents") or sha256_file(lines)})
    tree, last = manifest.MerkleStream(), b""
    for doc, leaf in heapq.merge(*(_leaves(data) for data in sidecars)):
        if doc == last:
            raise StageError(f"curate: doc_id {doc.hex()} is in the manifest twice ({folder})")
        tree.add(leaf)
        last = doc
    return Finished(summary.result(), facts.result(), tree.root(), tree.count, parts, documents)


def _leaves(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    for i in range(0, len(data), 48):
        yield data[i : i + 16], data[i + 16 : i + 48]


def write_manifest_json(
    cfg: RunConfig, folder: Path, summary: dict[str, Any], root: str, parts: list[dict[str, Any]]
) -> dict[str, Any]:
    doc = {
        "schema_version": manifest.SCHEMA_VERSION,
        "columns": list(manifest.COLUMNS),
        "policy": policy_record(cfg.governance),
        "policy_hash": policy_hash(cfg.governance),
        "engine": engine_record(cfg.governance),
        "config_digest": cfg.digest(),
        **summary,
        "digest": {"algorithm": "merkle-sha256", "root": root, "order": "doc_id"},
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
    if cfg.data.tdmrep:
        load_tdmrep(str(cfg.data.tdmrep))  # likewise for the TDMRep well-known snapshot
    final = cfg.paths.curate
    tmp = final.with_name(final.name + ".tmp")
    # A run killed mid-way leaves only curate.tmp/ behind (and, at worst, curate.old/): a restart
    # starts over from the inputs, so its manifest is that of an uninterrupted run.
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("manifest", "documents", SPILL, STATS):
        (tmp / sub).mkdir(parents=True)
    p = beam.Pipeline(options=pipeline_options(cfg.curate))
    build(p, cfg, files, robots, tmp)
    result = p.run()
    try:
        result.wait_until_finish()
    finally:
        client = getattr(result, "client", None)  # DaskRunner's dask.distributed client
        if client is not None:
            client.close()
    shutil.rmtree(tmp / SPILL)  # every kept line has been copied into its part
    read = _counter(result, "records_read")
    done = finish_parts(tmp / "manifest", tmp / STATS)
    shutil.rmtree(tmp / STATS)
    if read is not None and done.rows != read:
        raise StageError(f"curate: {read} records read but {done.rows} manifest rows written in {tmp}")
    doc = write_manifest_json(cfg, tmp / "manifest", done.summary, done.root, done.parts)
    from data_governance.audit import write_artefacts  # index, Croissant, EU summary, data report

    write_artefacts(cfg, tmp / "manifest", doc, done.facts, done.documents)
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    log.info("curate: %s rows, %s", doc["rows"], doc["counts"])
    return {
        "rows": doc["rows"],
        "counts": doc["counts"],
        "digest": doc["digest"]["root"],
        "inputs": len(files),
    }


def _counter(result: Any, name: str) -> int | None:
    """A counter's value, or None where the runner reports no metrics (DaskRunner does not)."""
    try:
        found = result.metrics().query(MetricsFilter().with_name(name))["counters"]
    except NotImplementedError:
        return None
    return int(sum(c.committed or c.attempted or 0 for c in found))
