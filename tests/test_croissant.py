"""croissant.json of a real curation validates with mlcroissant (Croissant 1.0 + RAI), and its record
sets load: every manifest row and every kept document, with the parts' hashes as recorded."""

from __future__ import annotations

import json
import logging

import pyarrow.parquet as pq
import pytest

mlc = pytest.importorskip("mlcroissant", reason="mlcroissant is a project dependency: pip install -e .")

RAI = (
    "rai:dataCollection",
    "rai:dataPreprocessingProtocol",
    "rai:personalSensitiveInformation",
    "rai:dataLimitations",
    "rai:dataCollectionTimeframe",
    "rai:dataBiases",
    "rai:dataUseCases",
)


def test_croissant_validates_and_loads(audited_run):
    logging.getLogger("absl").setLevel(logging.ERROR)
    _, run = audited_run
    folder = run / "curate" / "manifest"
    doc = json.loads((folder / "croissant.json").read_text())
    meta = json.loads((folder / "manifest.json").read_text())
    assert "http://mlcommons.org/croissant/1.0" in doc["conformsTo"]
    for key in RAI:
        assert doc.get(key), key
    assert meta["digest"]["root"] in doc["description"]
    ds = mlc.Dataset(jsonld=str(folder / "croissant.json"))
    issues = ds.metadata.ctx.issues
    assert not issues.errors and not issues.warnings, (issues.errors, issues.warnings)
    records = list(ds.records("manifest"))
    parts = sorted(folder.glob("part-*.parquet"))
    rows = [r for p in parts for r in pq.read_table(p).to_pylist()]
    assert len(records) == meta["rows"] == len(rows)
    assert {r["manifest/doc_id"].decode() for r in records} == {r["doc_id"] for r in rows}
    kept = list(ds.records("documents"))
    assert len(kept) == meta["counts"]["kept"]
    assert {d["documents/doc_id"].decode() for d in kept} == {
        r["doc_id"] for r in rows if r["decision"] == "kept"
    }
    files = {f["contentUrl"]: f.get("sha256") for f in doc["distribution"] if f["@type"] == "cr:FileObject"}
    for part in meta["parts"]:
        assert files[part["path"]] == part["sha256"]


def test_personal_information_statement_reports_the_redactions(audited_run):
    _, run = audited_run
    folder = run / "curate" / "manifest"
    doc = json.loads((folder / "croissant.json").read_text())
    pii = json.loads((folder / "manifest.json").read_text())["pii_redactions"]
    assert f"email: {pii['email']}" in doc["rai:personalSensitiveInformation"]
