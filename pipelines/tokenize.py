"""The tokenize job: kept documents → byte-level BPE tokenizer → Megatron IndexedDataset.

    train the tokenizer (HF tokenizers, in the driver)
    ReadDocuments → EncodeDocuments → WriteEncoded   (Apache Beam)
    sort by doc_id → tokens/text_document.bin/.idx + tokens/tokens.json

Beam encodes the documents in whatever order its workers finish; the driver then writes them in
doc_id order, so the .bin/.idx bytes depend only on the documents and the config. Outputs are built
in `tokens.tmp/` and renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from commonweights.config import CurateConfig, RunConfig, Runner, TokenizeConfig
from commonweights.errors import InputError, StageError
from data_governance.ids import sha256_file
from pipelines.options import pipeline_options

log = logging.getLogger(__name__)

EOD = "<|endoftext|>"
PAD = "<|pad|>"
# Order fixes the ids: the trainer assigns special tokens first, so EOD = 0 and PAD = 1.
SPECIAL_TOKENS = (EOD, PAD)
EOD_ID = 0
PAD_ID = 1
PREFIX = "text_document"
TOKENIZER_FILE = "tokenizer.json"
SUMMARY_FILE = "tokens.json"
# Document i of the .bin is the i-th doc_id of this file: 16 raw bytes each (the 128-bit hex doc_id),
# so a sample's megatron document indices map back to manifest rows (training/data_order.py).
DOC_IDS_FILE = "doc_ids.bin"
DOC_ID = re.compile(r"[0-9a-f]{32}")


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Corpus:
    """What the driver learns from one validating pass over the kept documents."""

    files: list[Path]
    documents: int
    sha256: str


def document_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("part-*.jsonl"))
    if not files:
        raise InputError(f"{folder}: no kept documents (part-*.jsonl); run `commonweights curate` first")
    return files


def parse_document(line: str, where: str) -> tuple[str, str]:
    """(doc_id, text) of one corpus line; `where` (file:line) goes into the error message."""
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: not valid JSON ({e.msg}); rerun `commonweights curate`") from None
    if not isinstance(doc, dict):
        raise InputError(f"{where}: expected a JSON object; rerun `commonweights curate`")
    doc_id, text = doc.get("doc_id"), doc.get("text")
    if not isinstance(doc_id, str) or not doc_id or not isinstance(text, str):
        raise InputError(f"{where}: needs a string doc_id and text; rerun `commonweights curate`")
    if not DOC_ID.fullmatch(doc_id):
        raise InputError(
            f"{where}: doc_id {doc_id!r} is not 32 lowercase hex digits (the 128-bit ids curate writes); "
            "rerun `commonweights curate`"
        )
    return doc_id, text


def iter_documents(files: list[Path]) -> Iterator[tuple[str, str]]:
    for f in files:
        with f.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    yield parse_document(line, f"{f}:{n}")


def documents_digest(entries: Iterable[tuple[str, str]]) -> str:
    """sha256 over `doc_id<TAB>sha256(text)` lines in doc_id order: independent of sharding."""
    h = hashlib.sha256()
    for doc_id, text_sha in sorted(entries):
        h.update(f"{doc_id}\t{text_sha}\n".encode())
    return h.hexdigest()


# ---------------------------------------------------------------- tokenizer


def new_tokenizer() -> Tokenizer:
    """Byte-level BPE without normalisation, so decode(encode(text)) == text for any text."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def train_tokenizer(texts: Iterable[str], cfg: TokenizeConfig) -> Tokenizer:
    tok = new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        # All 256 byte symbols, seen in the corpus or not: no text is ever out of vocabulary.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    for token, want in ((EOD, EOD_ID), (PAD, PAD_ID)):
        if tok.token_to_id(token) != want:
            raise StageError(f"tokenize: {token} got id {tok.token_to_id(token)}, expected {want}")
    return tok


def _scan_and_train(files: list[Path], cfg: TokenizeConfig) -> tuple[Tokenizer, Corpus]:
    """Train on the corpus while validating every line and fingerprinting it (one pass)."""
    seen: dict[str, str] = {}

    def texts() -> Iterator[str]:
        for doc_id, text in iter_documents(files):
            if doc_id in seen:
                raise InputError(
                    f"{doc_id}: duplicate doc_id in {files[0].parent}; rerun `commonweights curate`"
                )
            seen[doc_id] = hashlib.sha256(text.encode()).hexdigest()
            yield text

    tok = train_tokenizer(texts(), cfg)
    return tok, Corpus(files, len(seen), documents_digest(seen.items()))


# ---------------------------------------------------------------- Beam


class EncodeDocuments(beam.DoFn):
    """Corpus line → (doc_id, token ids), with the tokenizer loaded once per worker."""

    def __init__(self, tokenizer_file: str):
        self._file = tokenizer_file
        self._tok: Tokenizer | None = None
        self.documents = Metrics.counter(self.__class__, "documents_encoded")
        self.tokens = Metrics.counter(self.__class__, "tokens_encoded")

    def setup(self) -> None:
        self._tok = Tokenizer.from_file(self._file)

    def process(self, line: str) -> Iterable[str]:
        if not line.strip():
            return
        if self._tok is None:
            raise StageError("EncodeDocuments.process ran before setup loaded the tokenizer")
        doc_id, text = parse_document(line, "documents")
        ids = self._tok.encode(text, add_special_tokens=False).ids
        self.documents.inc()
        self.tokens.inc(len(ids))
        yield json.dumps({"doc_id": doc_id, "ids": ids}, separators=(",", ":"))


def build(p: beam.Pipeline, files: list[Path], tokenizer_file: Path, out_prefix: Path) -> None:
    _ = (
        p
        | "ListDocumentFiles" >> beam.Create([str(f) for f in files])
        | "ReadDocuments" >> beam.io.ReadAllFromText()
        | "EncodeDocuments" >> beam.ParDo(EncodeDocuments(str(tokenizer_file)))
        | "WriteEncoded" >> beam.io.WriteToText(str(out_prefix), file_name_suffix=".jsonl")
    )


def _counter(result: Any, name: str) -> int:
    found = result.metrics().query(MetricsFilter().with_name(name))["counters"]
    return int(sum(c.committed or c.attempted or 0 for c in found))


# ---------------------------------------------------------------- IndexedDataset


def index_encoded(files: list[Path]) -> list[tuple[str, int, int]]:
    """(doc_id, file number, byte offset) of every encoded line, sorted by doc_id."""
    entries: list[tuple[str, int, int]] = []
    for i, f in enumerate(files):
        with f.open("rb") as fh:
            offset = 0
            for line in fh:
                entries.append((json.loads(line)["doc_id"], i, offset))
                offset += len(line)
    entries.sort()
    return entries


def write_indexed_dataset(encoded: list[Path], prefix: Path, vocab_size: int) -> tuple[int, int, str]:
    """Write `prefix`.bin/.idx in doc_id order, EOD after each document, and DOC_IDS_FILE beside them.

    Only the (doc_id, offset) index is held in memory; token ids are read back one line at a time.
    Returns (documents, tokens, numpy dtype name).
    """
    import torch
    from megatron.core.datasets.indexed_dataset import DType, IndexedDatasetBuilder

    dtype = DType.optimal_dtype(vocab_size)
    entries = index_encoded(encoded)
    # parse_document checked every doc_id is 32 hex digits
    (prefix.parent / DOC_IDS_FILE).write_bytes(b"".join(bytes.fromhex(d) for d, _, _ in entries))
    builder = IndexedDatasetBuilder(str(prefix.with_suffix(".bin")), dtype=dtype)
    tokens = 0
    handles = [f.open("rb") for f in encoded]
    try:
        for _, i, offset in entries:
            handles[i].seek(offset)
            ids = json.loads(handles[i].readline())["ids"]
            ids.append(EOD_ID)
            builder.add_item(torch.tensor(ids, dtype=torch.int64))
            builder.end_document()
            tokens += len(ids)
    finally:
        for h in handles:
            h.close()
    builder.finalize(str(prefix.with_suffix(".idx")))
    return len(entries), tokens, np.dtype(dtype).name


# ---------------------------------------------------------------- stage


def run(cfg: RunConfig) -> dict[str, Any]:
    """Tokenize `curate/documents/` into `tokens/` (tokenizer, .bin/.idx, tokens.json)."""
    files = document_files(cfg.paths.documents)
    tok, corpus = _scan_and_train(files, cfg.tokenize)
    if corpus.documents == 0:
        raise InputError(
            f"{cfg.paths.documents}: the part files hold no documents; run `commonweights curate`"
        )
    final = cfg.paths.tokens
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tok_file = tmp / TOKENIZER_FILE
    tok.save(str(tok_file))
    vocab = tok.get_vocab_size()
    log.info("tokenize: trained a %d-token BPE on %d documents", vocab, corpus.documents)

    encoded_dir = tmp / "encoded"
    # Encoding the kept text is small next to curation and uses Beam's file writers, which do not run
    # on Dask (docs/runners.md): it runs on the local runners only, multi-process when curation is.
    local = cfg.curate.runner in (Runner.in_process, Runner.multi_process)
    p = beam.Pipeline(options=pipeline_options(cfg.curate if local else CurateConfig()))
    build(p, files, tok_file, encoded_dir / "part")
    result = p.run()
    result.wait_until_finish()
    encoded = _counter(result, "documents_encoded")
    if encoded != corpus.documents:
        raise StageError(
            f"tokenize: {corpus.documents} documents read but {encoded} encoded in {encoded_dir}"
        )

    docs, tokens, dtype = write_indexed_dataset(sorted(encoded_dir.glob("part*")), tmp / PREFIX, vocab)
    if docs != corpus.documents:
        raise StageError(f"tokenize: {corpus.documents} documents read but {docs} written to {tmp / PREFIX}")
    shutil.rmtree(encoded_dir)

    summary = {
        "vocab_size": vocab,
        "eod_id": EOD_ID,
        "pad_id": PAD_ID,
        "dtype": dtype,
        "documents": docs,
        "tokens": tokens,
        "tokenizer_sha256": sha256_file(tok_file),
        "documents_sha256": corpus.sha256,
        "doc_ids_sha256": sha256_file(tmp / DOC_IDS_FILE),
    }
    (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    log.info("tokenize: %d documents, %d tokens (EOD included) in %s", docs, tokens, final)
    return summary
