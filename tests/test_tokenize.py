"""The tokenize stage: kept documents in, a BPE tokenizer and a Megatron IndexedDataset out."""

from __future__ import annotations

import json
import random
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from megatron.core.datasets.indexed_dataset import IndexedDataset
from tokenizers import Tokenizer

from commonweights.config import RunConfig, TokenizeConfig
from commonweights.errors import InputError
from data_governance.ids import sha256_file
from pipelines import tokenize

WORDS = "river valley lantern orchard harbour meadow copper thistle granite willow ember quarry".split()
# Text a byte-level tokenizer must survive: accents, CJK, emoji, tabs, blank lines, trailing spaces.
ODD = ["Crème brûlée à la carte.", "東京の川と橋。", "tabs\tand  double  spaces ", "emoji 🌲🌊\n\nend\n", ""]


def make_docs(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 60)))
        text = f"{body}. {ODD[i % len(ODD)]}"
        doc_id = f"{rng.getrandbits(128):032x}"  # 128-bit, as curate writes them
        docs.append(
            {
                "doc_id": doc_id,
                "url": f"https://d{i % 3}.example/{i}",
                "domain": f"d{i % 3}.example",
                "licence": "CC-BY-4.0",
                "text": text,
            }
        )
    return docs


def write_parts(folder: Path, docs: list[dict[str, str]], parts: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(parts):
        lines = [json.dumps(d, ensure_ascii=False) for d in docs[k::parts]]
        (folder / f"part-{k:05d}-of-{parts:05d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def config(root: Path, **tokenize: int) -> RunConfig:
    return RunConfig.model_validate(
        {"name": "t", "dir": str(root), "data": {"sample": {}}, "tokenize": {"vocab_size": 300, **tokenize}}
    )


def test_round_trip_in_doc_id_order(tmp_path: Path) -> None:
    cfg = config(tmp_path / "run")
    docs = make_docs(40, seed=1)
    write_parts(cfg.paths.documents, docs, parts=3)

    summary = tokenize.run(cfg)

    out = cfg.paths.tokens
    assert sorted(p.name for p in out.iterdir()) == [
        "doc_ids.bin",
        "text_document.bin",
        "text_document.idx",
        "tokenizer.json",
        "tokens.json",
    ]
    assert not out.with_name("tokens.tmp").exists()
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    assert tok.token_to_id("<|endoftext|>") == 0 and tok.token_to_id("<|pad|>") == 1
    ds = IndexedDataset(str(out / "text_document"))
    assert ds.index.dtype.__name__ == "uint16"
    want = sorted(docs, key=lambda d: d["doc_id"])
    assert len(ds) == len(want)
    for i, doc in enumerate(want):
        ids = ds[i].tolist()
        assert ids[-1] == 0 and 0 not in ids[:-1]
        assert tok.decode(ids[:-1], skip_special_tokens=False) == doc["text"]
    assert json.loads((out / "tokens.json").read_text()) == summary
    assert summary["documents"] == 40
    assert summary["tokens"] == int(ds.sequence_lengths.sum())
    assert summary["vocab_size"] == tok.get_vocab_size() <= 300
    assert (summary["eod_id"], summary["pad_id"]) == (0, 1)
    # The doc_id table maps each .bin document back to its manifest row (the data-order log uses it).
    assert (out / "doc_ids.bin").read_bytes() == b"".join(bytes.fromhex(d["doc_id"]) for d in want)


def test_bytes_are_deterministic_and_independent_of_sharding(tmp_path: Path) -> None:
    docs = make_docs(30, seed=2)
    a, b = config(tmp_path / "a"), config(tmp_path / "b")
    write_parts(a.paths.documents, docs, parts=1)
    write_parts(b.paths.documents, list(reversed(docs)), parts=4)

    sa, sb = tokenize.run(a), tokenize.run(b)

    for name in ("tokenizer.json", "text_document.bin", "text_document.idx", "doc_ids.bin", "tokens.json"):
        assert (a.paths.tokens / name).read_bytes() == (b.paths.tokens / name).read_bytes(), name
    assert sa == sb
    assert sa["tokenizer_sha256"] == sha256_file(a.paths.tokens / "tokenizer.json")


def test_documents_digest_tracks_content(tmp_path: Path) -> None:
    docs = make_docs(10, seed=3)
    a, b = config(tmp_path / "a"), config(tmp_path / "b")
    write_parts(a.paths.documents, docs, parts=1)
    changed = [dict(d) for d in docs]
    changed[4]["text"] += " one more word"
    write_parts(b.paths.documents, changed, parts=1)
    assert tokenize.run(a)["documents_sha256"] != tokenize.run(b)["documents_sha256"]


def test_rerun_replaces_previous_output(tmp_path: Path) -> None:
    cfg = config(tmp_path / "run")
    write_parts(cfg.paths.documents, make_docs(12, seed=4), parts=2)
    tokenize.run(cfg)
    (cfg.paths.tokens / "stale.txt").write_text("from an older run")
    write_parts(cfg.paths.documents, make_docs(5, seed=5), parts=2)
    assert tokenize.run(cfg)["documents"] == 5
    assert not (cfg.paths.tokens / "stale.txt").exists()


def test_missing_documents_say_to_run_curate(tmp_path: Path) -> None:
    cfg = config(tmp_path / "run")
    with pytest.raises(InputError, match=r"curate/documents.*commonweights curate"):
        tokenize.run(cfg)
    assert not cfg.paths.tokens.exists()


def test_empty_parts_say_to_run_curate(tmp_path: Path) -> None:
    cfg = config(tmp_path / "run")
    cfg.paths.documents.mkdir(parents=True)
    (cfg.paths.documents / "part-00000-of-00001.jsonl").write_text("\n")
    with pytest.raises(InputError, match="hold no documents; run `commonweights curate`"):
        tokenize.run(cfg)
    assert not cfg.paths.tokens.exists() and not cfg.paths.root.joinpath("tokens.tmp").exists()


def test_bad_line_is_named(tmp_path: Path) -> None:
    cfg = config(tmp_path / "run")
    write_parts(cfg.paths.documents, make_docs(3, seed=6), parts=1)
    part = cfg.paths.documents / "part-00000-of-00001.jsonl"
    part.write_text(part.read_text() + '{"doc_id": "x"}\n')
    with pytest.raises(InputError, match=r"part-00000-of-00001\.jsonl:4: needs a string doc_id and text"):
        tokenize.run(cfg)


def test_doc_id_that_is_not_128_bit_hex_is_named(tmp_path: Path) -> None:
    cfg = config(tmp_path / "run")
    write_parts(cfg.paths.documents, make_docs(3, seed=6), parts=1)
    part = cfg.paths.documents / "part-00000-of-00001.jsonl"
    part.write_text(part.read_text() + '{"doc_id": "ABC", "text": "some text"}\n')
    with pytest.raises(InputError, match=r"00001\.jsonl:4: doc_id 'ABC' is not 32 lowercase hex"):
        tokenize.run(cfg)


def test_duplicate_doc_id_is_refused(tmp_path: Path) -> None:
    cfg = config(tmp_path / "run")
    docs = make_docs(4, seed=7)
    docs[3]["doc_id"] = docs[0]["doc_id"]
    write_parts(cfg.paths.documents, docs, parts=2)
    with pytest.raises(InputError, match=f"{docs[0]['doc_id']}: duplicate doc_id"):
        tokenize.run(cfg)


def test_documents_digest_ignores_order() -> None:
    entries = [("b", "2"), ("a", "1"), ("c", "3")]
    assert tokenize.documents_digest(entries) == tokenize.documents_digest(sorted(entries))
    assert tokenize.documents_digest(entries) != tokenize.documents_digest([("a", "1"), ("b", "2")])


def test_multi_process_runner_gives_the_same_bytes(tmp_path: Path) -> None:
    docs = make_docs(60, seed=8)
    a = config(tmp_path / "a")
    b = RunConfig.model_validate(
        {**a.to_record(), "dir": str(tmp_path / "b"), "curate": {"runner": "multi-process", "workers": 2}}
    )
    write_parts(a.paths.documents, docs, parts=3)
    write_parts(b.paths.documents, docs, parts=3)
    assert tokenize.run(a) == tokenize.run(b)
    for name in ("text_document.bin", "text_document.idx"):
        assert (a.paths.tokens / name).read_bytes() == (b.paths.tokens / name).read_bytes()


def test_encode_documents_dofn(tmp_path: Path) -> None:
    docs = make_docs(6, seed=9)
    tok = tokenize.train_tokenizer([d["text"] for d in docs], TokenizeConfig(vocab_size=300, min_frequency=2))
    tok.save(str(tmp_path / "tokenizer.json"))
    lines = [json.dumps(d, ensure_ascii=False) for d in docs] + ["   "]
    want = [
        json.dumps({"doc_id": d["doc_id"], "ids": tok.encode(d["text"]).ids}, separators=(",", ":"))
        for d in docs
    ]
    # An explicit runner: the default DirectRunner first tries to download Prism (STACK-FACTS).
    with TestPipeline(runner="FnApiRunner") as p:
        out = (
            p
            | "CreateLines" >> beam.Create(lines)
            | "EncodeDocuments" >> beam.ParDo(tokenize.EncodeDocuments(str(tmp_path / "tokenizer.json")))
        )
        assert_that(out, equal_to(want))
