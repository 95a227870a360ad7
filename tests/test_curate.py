"""The curation job on the embedded sample crawl, checked against the generator's ground truth:
one manifest row per input record, the decisions and reasons expected for every case, a digest that
does not depend on reruns or on how the work was split."""

from __future__ import annotations

import fnmatch
import json
from collections import defaultdict
from pathlib import Path

import pytest

from commonweights import config
from commonweights.errors import StageError
from data_governance import manifest
from pipelines import curate

ROOT = Path(__file__).resolve().parents[1]


def load_cfg(tmp: Path, *overrides: str) -> config.RunConfig:
    return config.load(ROOT / "configs" / "tiny.yaml", [f"dir={tmp}", *overrides])


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    cfg = load_cfg(tmp_path_factory.mktemp("run"))
    summary = curate.run(cfg)
    rows = curate.read_manifest(cfg.paths.manifest)
    expected = [json.loads(line) for line in (cfg.paths.crawl / "expected.jsonl").read_text().splitlines()]
    return cfg, summary, rows, expected


def reasons_match(got: list[str], want: list[str]) -> bool:
    """Every reason is expected (patterns with '*' allowed), and every expected pattern is present."""
    return all(any(fnmatch.fnmatchcase(g, w) for w in want) for g in got) and all(
        any(fnmatch.fnmatchcase(g, w) for g in got) for w in want
    )


def test_one_row_per_input_record(curated):
    cfg, summary, rows, expected = curated
    assert len(rows) == len(expected) == summary["rows"]
    assert len({r["doc_id"] for r in rows}) == len(rows)
    keys = [(r["source_file"], r["url"], r["source_offset"]) for r in rows]
    assert len(set(keys)) == len(keys)
    quarantined = [r for r in rows if r["decision"] == "quarantined"]
    assert len(quarantined) == sum(e["expected_decision"] == "quarantined" for e in expected) >= 2
    assert all(r["reasons"][0].startswith("malformed:") for r in quarantined)


def test_every_case_decided_as_expected(curated):
    _, _, rows, expected = curated
    by_place = defaultdict(list)
    for r in rows:
        by_place[(r["source_file"], r["url"])].append(r)
    wrong = []
    for e in expected:
        (row,) = by_place[(e["warc_file"], e["url"])]
        if e["expected_decision"] is None:  # duplicate groups are checked below
            continue
        ok = row["decision"] == e["expected_decision"] and reasons_match(
            row["reasons"], e["expected_reasons"]
        )
        ok = ok and row["licence"] == e["expected_licence"]
        if e["expected_decision"] == "kept":
            ok = ok and (row["pii_email"], row["pii_phone"]) == (e["pii"]["email"], e["pii"]["phone"])
        if not ok:
            wrong.append((e["case"], e["url"], e["expected_reasons"], row["decision"], row["reasons"]))
    assert not wrong, wrong


def test_duplicate_groups_keep_exactly_one(curated):
    _, _, rows, expected = curated
    by_url = {(r["source_file"], r["url"]): r for r in rows}
    groups = defaultdict(list)
    for e in expected:
        if e["dup_group"]:
            groups[e["dup_group"]].append(by_url[(e["warc_file"], e["url"])])
    assert any(g.startswith("exact") for g in groups) and any(g.startswith("near") for g in groups)
    for name, members in groups.items():
        kept = [m for m in members if m["decision"] == "kept"]
        assert len(kept) == 1, name
        for m in members:
            if m is not kept[0]:
                assert m["reasons"] == [f"duplicate_of:{kept[0]['doc_id']}"], name
        assert kept[0]["doc_id"] == min(m["doc_id"] for m in members)


def test_kept_documents_match_manifest_and_are_redacted(curated):
    cfg, _, rows, _ = curated
    docs = [json.loads(line) for p in sorted(cfg.paths.documents.glob("*.jsonl")) for line in p.open()]
    kept = {r["doc_id"]: r for r in rows if r["decision"] == "kept"}
    assert {d["doc_id"] for d in docs} == set(kept) and len(docs) == len(kept)
    import hashlib

    for d in docs:
        assert hashlib.sha256(d["text"].encode()).hexdigest() == kept[d["doc_id"]]["text_sha256"]
        assert "@" not in d["text"] or "<EMAIL>" in d["text"]
    assert sum(r["pii_email"] for r in kept.values()) > 0


def test_manifest_json_pins_the_rows(curated):
    cfg, summary, rows, _ = curated
    doc = json.loads((cfg.paths.manifest / "manifest.json").read_text())
    assert doc["digest"]["root"] == manifest.digest(rows) == summary["digest"]
    assert doc["rows"] == len(rows) and sum(doc["counts"].values()) == len(rows)
    assert doc["policy_hash"] == config.policy_hash(cfg.governance)
    assert {r["policy_hash"] for r in rows} == {doc["policy_hash"]}
    assert doc["reasons"]["robots:GPTBot"] >= 5 and doc["reasons"]["tdm_reserved"] >= 2
    assert len(doc["domains"]) >= 20


def test_rerun_and_two_workers_give_the_same_digest(curated, tmp_path):
    _, summary, _, _ = curated
    again = curate.run(load_cfg(tmp_path / "a"))
    split = curate.run(load_cfg(tmp_path / "b", "curate.runner=multi-process", "curate.workers=2"))
    assert again["digest"] == summary["digest"] == split["digest"]


def test_listed_file_hashes_are_those_of_the_files(curated, tmp_path):
    """manifest.json and croissant.json list every part with the sha256 its writer hashed while
    writing it (the finish reads no part again): equal to hashing the files, rows as in the part."""
    import hashlib

    import pyarrow.parquet as pq

    cfg = load_cfg(tmp_path / "parts", "curate.shards=3")
    curate.run(cfg)
    meta = json.loads((cfg.paths.manifest / "manifest.json").read_text())
    assert [p["path"] for p in meta["parts"]] == [curate.part_name(k, 3, ".parquet") for k in range(3)]
    for p in meta["parts"]:
        part = cfg.paths.manifest / p["path"]
        assert p["sha256"] == hashlib.sha256(part.read_bytes()).hexdigest()
        assert p["rows"] == pq.read_metadata(part).num_rows
    croissant = json.loads((cfg.paths.manifest / "croissant.json").read_text())
    listed = {d["name"]: d["sha256"] for d in croissant["distribution"] if d["name"].endswith(".jsonl")}
    files = sorted(cfg.paths.documents.glob("*.jsonl"))
    assert len(files) == 3
    assert listed == {f"documents/{f.name}": hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def test_unset_shards_give_one_part_per_slice_of_input_whatever_the_runner(curated, tmp_path, monkeypatch):
    """Without curate.shards the part count follows the input's size alone (one part per
    PART_INPUT_BYTES), so a larger input gets more parts (more writers, less held per writer) and
    the parts do not depend on the runner; the digest is the one-part run's."""
    cfg0, summary, _, _ = curated
    size = sum(f.stat().st_size for f in curate.warc_inputs(cfg0))
    assert curate.part_count(cfg0.curate, size) == 1  # the sample is far below 64 MiB
    for runner in ("in-process", "multi-process"):
        c = load_cfg(tmp_path / runner, f"curate.runner={runner}").curate
        assert curate.part_count(c, 0) == 1
        assert curate.part_count(c, curate.PART_INPUT_BYTES) == 1
        assert curate.part_count(c, curate.PART_INPUT_BYTES + 1) == 2
        assert curate.part_count(c, 10 * curate.PART_INPUT_BYTES) == 10
    assert curate.part_count(load_cfg(tmp_path / "x", "curate.shards=5").curate, 10**12) == 5
    monkeypatch.setattr(curate, "PART_INPUT_BYTES", -(-size // 3))
    cfg = load_cfg(tmp_path / "sliced")
    assert curate.run(cfg)["digest"] == summary["digest"]
    assert len(list(cfg.paths.manifest.glob("part-*-of-00003.parquet"))) == 3


def test_parts_are_written_a_row_group_at_a_time_from_the_spill(curated, tmp_path, monkeypatch):
    """A writer holds one row group of its part, not the part: with small row groups and several
    parts, the rows, the digest and the kept documents are those of the one-part run, every part's
    rows are sorted by doc_id, and the spill is gone."""
    import pyarrow.parquet as pq

    cfg0, summary, rows, _ = curated
    monkeypatch.setattr(curate, "ROW_GROUP", 7)
    cfg = load_cfg(tmp_path / "small-groups", "curate.shards=3")
    out = curate.run(cfg)
    assert out["digest"] == summary["digest"]
    parts = sorted(cfg.paths.manifest.glob("part-*.parquet"))
    assert len(parts) == 3
    for part in parts:
        meta = pq.read_metadata(part)
        assert meta.num_row_groups == -(-meta.num_rows // 7)
        ids = pq.read_table(part, columns=["doc_id"]).column("doc_id").to_pylist()
        assert ids == sorted(ids) and all(curate.shard_of(i, 3) == parts.index(part) for i in ids)
    assert sorted(curate.read_manifest(cfg.paths.manifest), key=lambda r: r["doc_id"]) == sorted(
        rows, key=lambda r: r["doc_id"]
    )

    def lines(folder: Path) -> list[str]:
        return sorted(line for f in folder.glob("part-*.jsonl") for line in f.read_text().splitlines())

    assert lines(cfg.paths.documents) == lines(cfg0.paths.documents)
    assert not (cfg.paths.curate / curate.SPILL).exists()


def test_shuffles_carry_references_to_spilled_packs(curated, tmp_path):
    """What leaves the per-file step is (part, reference) pairs, never documents: each reference
    points at a pack in that file's spill file, the packs hold one Decided per record of the file in
    the part its doc_id names, and a reference past the end of its file fails naming the file."""
    cfg, _, rows, _ = curated
    spill = tmp_path / "spill"
    spill.mkdir()
    files = curate.warc_inputs(cfg)
    names = curate.source_names(files)
    step = curate.CurateFiles(cfg, str(curate.robots_path(cfg)), None, str(spill), 3)
    step.setup()
    out = [kv for f in files for kv in step.process((str(f), names[f]))]
    step.teardown()
    assert all(isinstance(part, int) and len(ref) == 3 for part, ref in out)
    assert {name for _, (name, _, _) in out} == {p.name for p in spill.iterdir()}  # one file per input
    reader = curate.Spill(str(spill))
    docs = [(part, d) for part, ref in out for d in reader.unpack([ref])]
    assert all(part == curate.shard_of(d.doc_id, 3) for part, d in docs)
    assert sorted(d.source for _, d in docs) == sorted((r["source_file"], r["source_offset"]) for r in rows)
    name, _, length = out[0][1]
    end = (spill / name).stat().st_size
    with pytest.raises(StageError, match=f"{spill}/{name}"):
        list(reader.unpack([(name, end - length // 2, length)]))
    reader.close()


def test_takedown_removes_a_domain_and_open_licence_mode(curated, tmp_path):
    _, _, rows, _ = curated
    victim = next(r for r in rows if r["decision"] == "kept")["domain"]
    registry = tmp_path / "takedowns.jsonl"
    registry.write_text(
        json.dumps({"kind": "domain", "value": victim, "date": "2026-11-20", "reason": "owner"})
    )
    cfg = load_cfg(tmp_path / "t", f"data.takedowns={registry}", "governance.mode=open-licence")
    curate.run(cfg)
    after = curate.read_manifest(cfg.paths.manifest)
    # Quarantined records are unreadable, so no policy is applied to them (they are never kept).
    assessed = [r for r in after if r["domain"] == victim and r["decision"] != "quarantined"]
    assert assessed and all("takedown" in r["reasons"] for r in assessed)
    kept = [r for r in after if r["decision"] == "kept"]
    assert kept and all(r["licence"] in {"CC-BY-4.0", "CC-BY-SA-4.0", "CC0-1.0"} for r in kept)
    assert any(r["reasons"] == ["licence:not_allowed:CC-BY-NC-4.0"] for r in after)


# ---------------------------------------------------------------- text: PII, quality, language, leaks

from data_governance import decontam, langid, pii, quality  # noqa: E402


@pytest.mark.parametrize(
    ("text", "kind", "count"),
    [
        ("Pay DE89 3704 0044 0532 0130 00 by Friday.", "iban", 1),  # grouped, valid check digits
        ("IBAN: GB82WEST12345698765432.", "iban", 1),  # compact
        ("NL91ABNA0417164300 and BE68 5390 0754 7034", "iban", 2),
        ("Order DE89 3704 0044 0532 0130 01 (check digits wrong)", "iban", 0),
        ("Code XY12ABCD1234EFGH56 (no such country)", "iban", 0),
        ("Write to ferry@harbour.example today", "email", 1),
        ("Server 8.8.8.8 answered, 192.168.1.1 did not", "ip", 1),
        ("Call +41 44 123 45 67 after 2026-11-02", "phone", 1),
    ],
)
def test_pii_redaction_counts_each_kind(text, kind, count):
    redacted, counts = pii.redact(text)
    assert counts[kind] == count
    assert redacted.count(pii.PLACEHOLDERS[kind]) == count
    assert sum(counts.values()) == count  # nothing else is mistaken for PII


def test_iban_redaction_leaves_what_follows():
    redacted, counts = pii.redact("Account FR14 2004 1010 0505 0001 3M02 606 ABCD and more.")
    assert counts["iban"] == 1 and redacted == "Account <IBAN> ABCD and more."


def test_datatrove_reference_quality_mode():
    q = config.QualityConfig(mode="datatrove")
    quality.prepare(q)
    repeated = "\n".join(["The ferry keeper repairs the fishing nets before dawn every day."] * 12)
    text, failed = quality.evaluate(repeated, q)
    assert failed == ["gopher_repetition:dup_line_frac"]
    body = (
        "The harbour town has a small ferry that crosses the river twice an hour during the summer.\n"
        "In the morning it carries children to the school on the far bank of the wide brown water.\n"
        "Market traders ride it home in the evening with their empty crates and a few unsold apples.\n"
        "Its keeper has worked on the boat for thirty years and knows nearly every family by name.\n"
        "When winter storms close the crossing, the bakery sends bread over the old stone bridge.\n"
        "Visitors often ask why nobody has built a second bridge, and the answer is always money.\n"
        "Click here to enable javascript\n"
    )
    text, failed = quality.evaluate(body, q)
    assert failed == [] and "javascript" not in text  # C4's line filter rewrote the kept text
    # The fast mode applies C4's line filter too (as FineWeb does), to the same kept text, unless told not to.
    assert quality.evaluate(body, config.QualityConfig()) == (text, [])
    assert quality.evaluate(body, config.QualityConfig(c4_rewrite=False))[0] == body


def test_language_identification_is_offline_and_recorded_as_a_reason():
    en = "The ferry keeper repairs the fishing nets before dawn because nobody else remembers how."
    de = "Der Fährmann repariert die Fischernetze vor der Morgendämmerung, weil sich niemand erinnert."
    assert langid.check(en, ["en"], 0.65) == (langid.identifier().identify(en), None)
    lang, denied = langid.check(de, ["en"], 0.65)
    assert lang.code == "de" and denied == "de" and langid.reason(denied) == "language:de"
    assert langid.check(de, ["en", "de"], 0.65)[1] is None
    assert langid.check("1234 5678", ["en"], 0.99)[1] is not None


def test_decontamination_finds_eval_items_in_documents():
    from eval import tasks

    index = decontam.build_index([tasks.CLOZE_TASK, tasks.PARAGRAPH_TASK], 13)
    paragraph = tasks.paragraphs()[7]
    leaked = f"Some blog text first. {paragraph.upper()} And a comment after it."  # case and spacing differ
    assert index.tasks_in(leaked) == [tasks.PARAGRAPH_TASK]
    item = tasks.cloze_items()[5]  # a 'copy' item: long enough to index whole
    shown = f"{item.context} {item.choices[item.label]}"
    assert len(decontam.words(shown)) >= decontam.MIN_ITEM_WORDS
    assert index.tasks_in(f"Quiz of the day: {shown}!") == [tasks.CLOZE_TASK]
    assert index.tasks_in("The ferry keeper paints the wooden benches, as he does.") == []
    assert index.skipped[tasks.CLOZE_TASK] > 0  # short items ("The day after Monday is Tuesday")
    with pytest.raises(Exception, match="local tasks"):
        decontam.build_index(["hellaswag"], 13)


def test_decontaminate_step_drops_leaked_documents():
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from data_governance.assess import Assessed
    from eval import tasks

    policy = config.GovernanceConfig(decontaminate=[tasks.PARAGRAPH_TASK])
    leaked = Assessed({"doc_id": "a", "reasons": [], "decision": "kept"}, tasks.paragraphs()[0])
    clean = Assessed({"doc_id": "b", "reasons": [], "decision": "kept"}, "Harbour news: the ferry runs late.")
    dropped = Assessed({"doc_id": "c", "reasons": ["takedown"], "decision": "dropped"}, None)
    with BeamTestPipeline(runner="FnApiRunner") as p:
        out = (
            p
            | "Create" >> beam.Create([leaked, clean, dropped])
            | "Decontaminate" >> beam.ParDo(curate.Decontaminate(policy))
            | "Summarize"
            >> beam.Map(
                lambda a: (a.row["doc_id"], a.row["decision"], tuple(a.row["reasons"]), a.text is None)
            )
        )
        assert_that(
            out,
            equal_to(
                [
                    ("a", "dropped", ("contaminated:commonweights_paragraphs",), True),
                    ("b", "kept", (), False),
                    ("c", "dropped", ("takedown",), True),
                ]
            ),
        )


@pytest.mark.slow
def test_language_filter_and_reference_quality_through_the_pipeline(curated, tmp_path):
    """Language ID on (the sample crawl is English: nothing more is dropped for language) and the
    datatrove reference mode run inside the Beam job; every row is still accounted for."""
    _, summary, rows, _ = curated
    cfg = load_cfg(tmp_path / "lang", "governance.languages=[de]")
    german_only = curate.run(cfg)
    after = curate.read_manifest(cfg.paths.manifest)
    assert german_only["rows"] == summary["rows"] and german_only["counts"]["kept"] == 0
    was_kept = {r["doc_id"] for r in rows if r["decision"] == "kept"}
    assert all("language:en" in r["reasons"] for r in after if r["doc_id"] in was_kept)
    ref = curate.run(load_cfg(tmp_path / "ref", "governance.quality.mode=datatrove"))
    assert ref["rows"] == summary["rows"] and 0 < ref["counts"]["kept"]


def test_streamed_merkle_root_is_the_level_by_level_root():
    import hashlib

    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(600)]
    for n in [*range(0, 70), 127, 128, 129, 255, 256, 257, 600]:
        tree = manifest.MerkleStream()
        for leaf in leaves[:n]:
            tree.add(leaf)
        assert tree.root() == manifest.merkle_root(leaves[:n]) and tree.count == n


def test_part_counts_facts_and_leaves_add_up_to_those_of_all_rows(curated, tmp_path):
    """Each writer counts its part; the run adds the parts up (in part order) instead of reading the
    rows again: the same manifest.json counts, the same derived facts (ties in the same order) and the
    same digest as from all rows at once; a doc_id in two parts fails the run."""
    import random

    from commonweights.errors import StageError
    from data_governance import audit

    _, summary, rows, _ = curated
    ordered = sorted(rows, key=lambda r: r["doc_id"])
    parts: list[list[dict]] = [[], [], []]
    for r in ordered:
        parts[random.Random(r["doc_id"]).randrange(3)].append(r)
    folder, stats = tmp_path / "manifest", tmp_path / "stats"
    folder.mkdir(), stats.mkdir()
    for k, part in enumerate(parts):
        with (folder / curate.part_name(k, 3, ".parquet")).open("wb") as out:
            (stats / curate.part_name(k, 3, ".stats")).write_bytes(curate.write_part([part], out))
    done = curate.finish_parts(folder, stats)
    by_part = [r for part in parts for r in part]  # the order the rows are read back in
    assert done.rows == len(rows) and done.root == summary["digest"] == manifest.digest(rows)
    assert json.dumps(done.summary) == json.dumps(manifest.summarize(by_part))
    assert json.dumps(done.facts) == json.dumps(audit.derive_facts(by_part))
    again = sorted([parts[0][0], *parts[1]], key=lambda r: r["doc_id"])  # part 0's first row in part 1 too
    with (folder / curate.part_name(1, 3, ".parquet")).open("wb") as out:
        (stats / curate.part_name(1, 3, ".stats")).write_bytes(curate.write_part([again], out))
    with pytest.raises(StageError, match="twice"):
        curate.finish_parts(folder, stats)


def test_part_table_holds_the_rows_as_arrow_would(curated):
    """The writer's column-at-a-time table equals pyarrow's row-wise conversion, a missing key null."""
    import pyarrow as pa

    _, _, rows, _ = curated
    without = [{k: v for k, v in r.items() if k != "licence"} for r in rows[:5]]
    for batch in (rows, without):
        assert curate._table(batch).equals(pa.Table.from_pylist(batch, schema=manifest.SCHEMA))
