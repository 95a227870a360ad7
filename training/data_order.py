"""The data-order log: what each optimizer step trained on, hash-chained so that nothing can be
changed, removed or reordered without breaking the chain (docs/replay.md).

`train/data_order.jsonl` holds one JSON object per line:

    {"kind": "header", "schema": "commonweights.data-order", "version": 1, "tokens_sha256": ..,
     "doc_ids_sha256": .., "seed": .., "seq_length": .., "global_batch_size": .., "samples": ..,
     "prev": null, "hash": ..}
    {"kind": "step", "step": N, "samples": [first, end], "doc_ids": [..], "tokens_sha256": ..,
     "loss": .., "grad_norm": .., "lr": .., "prev": .., "hash": ..}
    {"kind": "checkpoint", "step": N, "weights_sha256": .., "prev": .., "hash": ..}

`hash` is the sha256 of the entry's canonical JSON without `hash` (keys sorted, no spaces, floats in
Python's shortest round-trip form, so a loss survives the file bit for bit); `prev` is the previous
line's hash. A step's samples are the global sample indices [first, end) of megatron's GPTDataset;
`tokens_sha256` covers each sample's seq_length+1 token ids (int64 little-endian, in sample order,
padding included) and `doc_ids` the documents those samples read, in order of first use. A
checkpoint line follows the step it saved; the checkpoint's marker records that line's hash, so a
resume continues the chain from exactly there. No torch in here: the checker and the lookup run
without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from commonweights.errors import InputError

SCHEMA = "commonweights.data-order"
VERSION = 1
FILE = "data_order.jsonl"
DOC_IDS_FILE = "doc_ids.bin"  # written by the tokenize stage (pipelines/tokenize.py)
MARKER = "commonweights.json"  # a checkpoint's completion marker (training/checkpoint.py)
# Where a release carries the replay inputs (eval/release.py, training/replay.py).
RELEASE_LOG = "replay/" + FILE
RELEASE_TOKENS = "replay/tokens"
RELEASE_CHECKPOINTS = "replay/checkpoints"


def entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def read_doc_ids(tokens_dir: Path, documents: int) -> np.ndarray:
    """The (documents, 16) uint8 doc_id table of the token files, memory-mapped."""
    path = tokens_dir / DOC_IDS_FILE
    if not path.is_file():
        raise InputError(f"{path}: not found; re-run `commonweights tokenize` (it writes the doc_id table)")
    if path.stat().st_size != 16 * documents:
        raise InputError(
            f"{path}: {path.stat().st_size} bytes, expected 16 per document ({documents} documents): "
            "the file belongs to another tokenization; re-run `commonweights tokenize`"
        )
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(documents, 16))


def batch_record(dataset: Any, doc_ids: np.ndarray, first: int, size: int) -> dict[str, Any]:
    """samples, doc_ids and tokens_sha256 of global samples [first, first + size) of a GPTDataset."""
    h = hashlib.sha256()
    seen: dict[str, None] = {}
    for i in range(first, first + size):
        # megatron's own lookup (shuffle index → sample index → document index): what __getitem__ reads
        text, documents = dataset._query_document_sample_shuffle_indices(i)
        h.update(np.ascontiguousarray(text, dtype="<i8").tobytes())
        for d in documents:
            seen.setdefault(doc_ids[int(d)].tobytes().hex(), None)
    return {"samples": [first, first + size], "doc_ids": list(seen), "tokens_sha256": h.hexdigest()}


def header(
    tokens_sha256: str, doc_ids_sha256: str | None, seed: int, seq_length: int, gbs: int, samples: int
) -> dict[str, Any]:
    return {
        "kind": "header",
        "schema": SCHEMA,
        "version": VERSION,
        "tokens_sha256": tokens_sha256,
        "doc_ids_sha256": doc_ids_sha256,
        "seed": seed,
        "seq_length": seq_length,
        "global_batch_size": gbs,
        "samples": samples,
    }


class Writer:
    """Rank 0's appender. `head` is the hash of the last line written (what the next line chains to)."""

    def __init__(self, path: Path, head_record: dict[str, Any], resume_head: str | None):
        self.path = path
        self.pending: list[dict[str, Any]] | None = None  # steps held back while a save is in flight
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_head is None:  # a fresh run: any older log belongs to a run that no checkpoint continues
            self.head = ""
            self._rewrite([])
            self._append(head_record | {"prev": None})
        else:
            self.head = resume_head
            self._rewrite(self._upto(resume_head))

    def _upto(self, head: str) -> list[str]:
        """The existing lines up to the one whose hash is `head` (a resume drops steps after it)."""
        if not self.path.is_file():
            return []  # a replay, or a log lost with its run folder: the chain continues from the marker
        kept: list[str] = []
        for line in self.path.read_text().splitlines():
            kept.append(line)
            try:
                if json.loads(line).get("hash") == head:
                    return kept
            except ValueError:
                break
        raise InputError(
            f"{self.path}: no entry has the hash {head} that the checkpoint records: the log was changed "
            "or belongs to another run; move it away to start a new log from this checkpoint"
        )

    def _rewrite(self, lines: list[str]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(ln + "\n" for ln in lines))
        tmp.replace(self.path)

    def _append(self, entry: dict[str, Any]) -> str:
        entry = {**entry, "prev": entry.get("prev", self.head)}
        entry["hash"] = entry_hash(entry)
        with self.path.open("a") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False, allow_nan=False) + "\n")
        self.head = entry["hash"]
        return self.head

    def hold(self) -> None:
        """Keep later steps in memory until the in-flight checkpoint's line is written (async saves), so
        the file reads as if the save had been synchronous: the checkpoint line right after its step."""
        self.pending = []

    def step(self, step: int, record: dict[str, Any], loss: float, grad_norm: float, lr: float) -> None:
        entry = {"kind": "step", "step": step, **record, "loss": loss, "grad_norm": grad_norm, "lr": lr}
        if self.pending is not None:
            self.pending.append(entry)
        else:
            self._append(entry)

    def checkpoint(self, step: int, weights_sha256: str) -> str:
        head = self._append({"kind": "checkpoint", "step": step, "weights_sha256": weights_sha256})
        held, self.pending = self.pending or [], None
        for entry in held:
            self._append(entry)
        return head


# ------------------------------------------------------------------------------------ checking


@dataclass
class Chain:
    """A log read back: its entries by kind and step, its head, and the first problem found."""

    header: dict[str, Any] | None = None
    steps: dict[int, dict[str, Any]] = field(default_factory=dict)
    checkpoints: dict[int, dict[str, Any]] = field(default_factory=dict)
    hashes: set[str] = field(default_factory=set)
    head: str | None = None
    problem: str | None = None
    bad_step: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def read(path: Path, start_head: str | None = None, start_step: int = 0) -> Chain:
    """Check the chain of `path` line by line; stops at the first bad line.

    `start_head` is the hash the first line must chain to when the log starts mid-run after step
    `start_step` (a replay's); otherwise the first line must be the header.
    """
    c = Chain()
    if not path.is_file():
        c.problem = f"{path}: not found"
        return c
    prev, last_step = start_head, start_step
    for n, line in enumerate(path.read_text().splitlines(), 1):
        where = f"{path.name} line {n}"
        try:
            e = json.loads(line)
        except ValueError:
            c.problem, c.bad_step = f"{where}: not JSON", last_step + 1
            return c
        step: Any = e.get("step") if isinstance(e, dict) else None
        kind = e.get("kind") if isinstance(e, dict) else None
        expected_step = last_step + (1 if kind == "step" else 0)
        if n == 1 and start_head is None:
            if kind != "header" or e.get("schema") != SCHEMA or e.get("prev") is not None:
                c.problem, c.bad_step = f"{where}: the log does not start with its header", 0
                return c
            c.header = e
            last_step = 0
        elif kind not in ("step", "checkpoint") or step != expected_step:
            c.problem = (
                f"{where}: expected step {expected_step}, found {kind} {step} "
                "(an entry is missing or out of order)"
            )
            c.bad_step = expected_step
            return c
        if e.get("prev") != prev:
            c.problem = (
                f"{where} (step {step}): prev does not chain to the line before "
                "(an entry was removed or reordered)"
            )
            c.bad_step = step if step is not None else 0
            return c
        if e.get("hash") != entry_hash(e):
            c.problem = f"{where} (step {step}): the hash does not match the entry (it was changed)"
            c.bad_step = step if step is not None else 0
            return c
        if kind == "step":
            c.steps[int(step)] = e
            last_step = int(step)
        elif kind == "checkpoint":
            c.checkpoints[int(step)] = e
        prev = e["hash"]
        c.hashes.add(prev)
    c.head = prev
    return c


def steps_of(path: Path, doc_ids: Iterable[str]) -> dict[str, list[int]]:
    """For each doc_id, the steps whose batches read it, in step order. Answered from the log's
    doc_id → step index (`steps_index`: built on first use, rebuilt when the log changed), which reads
    only the row groups that hold the documents asked about; by one pass over the log where the index
    cannot be written."""
    wanted = set(doc_ids)
    folder = steps_index(path) if wanted else None
    if folder is None:
        return scan_steps(path, wanted)
    import pyarrow.parquet as pq

    from data_governance.lookup import GroupTable

    meta = json.loads((folder / "index.json").read_text())
    table = GroupTable(meta["files"])
    found: dict[str, list[int]] = {d: [] for d in wanted}
    groups: dict[tuple[str, int], dict[str, list[int]]] = {}  # each row group read once
    for doc in sorted(wanted):
        for where in table.candidates([doc], [doc]):
            if where not in groups:
                t = pq.ParquetFile(folder / where[0]).read_row_group(where[1])
                by_doc: dict[str, list[int]] = {}
                for d, step in zip(t.column("doc_id").to_pylist(), t.column("step").to_pylist(), strict=True):
                    by_doc.setdefault(d, []).append(step)
                groups[where] = by_doc
            found[doc] += groups[where].get(doc, [])
    return found


def scan_steps(path: Path, wanted: set[str]) -> dict[str, list[int]]:
    """`steps_of` by one pass over the log (the reference of the index, and its fallback)."""
    found: dict[str, list[int]] = {d: [] for d in wanted}
    for e in _entries(path):
        if e.get("kind") == "step":
            for d in wanted.intersection(e.get("doc_ids", ())):
                found[d].append(int(e["step"]))
    return found


_INDEX_VERSION = 1


def index_folder(path: Path) -> Path:
    """Where the doc_id index of a log lives: in the user's cache, keyed by the log's resolved path.
    Never beside the log: a release's folder must hold only what its signed statement lists."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    return cache / "commonweights" / "data-order-index" / key


def _stamp(path: Path) -> dict[str, Any]:
    """What identifies the log's content cheaply: its size and a hash of its last 4 KiB (the last
    line's own hash is there, so an append or a rewrite of the same size changes the stamp)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(0, size - 4096))
        tail = fh.read()
    return {"size": size, "tail_sha256": hashlib.sha256(tail).hexdigest(), "version": _INDEX_VERSION}


def steps_index(path: Path, memory_limit: str = "2GB") -> Path | None:
    """The log's doc_id → step index (`index_folder`): (doc_id, step) rows sorted by doc_id then
    step, in row groups whose first and last doc_id index.json records (as the manifest's lookup
    index). Built with DuckDB (an external sort, spilling beyond `memory_limit`) when missing or
    stale, through a temporary folder renamed into place. None where the cache cannot be written."""
    folder = index_folder(path)
    stamp = _stamp(path)
    try:
        if json.loads((folder / "index.json").read_text()).get("log") == stamp:
            return folder
    except (OSError, ValueError):
        pass
    tmp = folder.with_name(folder.name + ".tmp")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    except OSError:
        return None
    import duckdb

    from data_governance.lookup import write_sorted

    con = duckdb.connect()
    con.execute(f"SET memory_limit='{memory_limit}'")
    con.execute("SET enable_progress_bar=false")
    con.execute(f"SET temp_directory='{tmp / 'spill'}'")
    log = "'" + str(path).replace("'", "''") + "'"
    try:
        pairs = con.sql(
            f"""SELECT d AS doc_id, step FROM (
                   SELECT step, unnest(doc_ids) AS d FROM read_json({log}, format='newline_delimited',
                       columns={{'kind': 'VARCHAR', 'step': 'BIGINT', 'doc_ids': 'VARCHAR[]'}})
                   WHERE kind = 'step')
               ORDER BY doc_id, step"""
        ).to_arrow_reader(16_384)
        files = write_sorted(pairs, tmp, "steps", ("doc_id",))
    except duckdb.Error as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(
            f"{path}: not a data-order log that can be read ({e}); it is the train/data_order.jsonl "
            "that training writes, one JSON object per line"
        ) from None
    shutil.rmtree(tmp / "spill", ignore_errors=True)
    (tmp / "index.json").write_text(json.dumps({"log": stamp, "files": files}) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def _entries(path: Path) -> Iterator[dict[str, Any]]:
    with path.open() as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def check_release(
    root: Path, signed: dict[str, Any] | None
) -> tuple[Chain, list[tuple[int | None, str, str]]]:
    """A release's log against itself, the signed lineage and the released checkpoints' markers.

    Returns the chain and the problems as (step or None, file, message), first bad step first.
    """
    problems: list[tuple[int | None, str, str]] = []
    chain = read(root / RELEASE_LOG)
    if not chain.ok:
        problems.append((chain.bad_step, RELEASE_LOG, str(chain.problem)))
        return chain, problems
    if signed is None:
        problems.append(
            (None, RELEASE_LOG, "the signed lineage has no data_order: nothing to check it against")
        )
        return chain, problems
    if signed.get("head") != chain.head:
        problems.append(
            (
                None,
                RELEASE_LOG,
                f"the chain ends at {chain.head}, not at the signed head {signed.get('head')}",
            )
        )
    logged = {str(s): e["weights_sha256"] for s, e in sorted(chain.checkpoints.items())}
    if logged != signed.get("checkpoints"):
        problems.append((None, RELEASE_LOG, "its checkpoint weights hashes differ from the signed lineage's"))
    for it in signed.get("replayable_from", []):
        rel = f"{RELEASE_CHECKPOINTS}/iter_{it:07d}/{MARKER}"
        try:
            marker = json.loads((root / rel).read_text())
        except (OSError, ValueError):
            problems.append((it, rel, "missing or not JSON: the checkpoint cannot be placed on the chain"))
            continue
        entry = chain.checkpoints.get(it)
        if entry is None or marker.get("data_order_head") != entry["hash"]:
            problems.append((it, rel, f"the checkpoint does not sit on the log's chain at step {it}"))
        elif marker.get("weights_sha256") != entry["weights_sha256"]:
            problems.append((it, rel, "its weights hash differs from the one logged at that step"))
    return chain, problems
