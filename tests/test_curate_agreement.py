"""The fast path against the quality-first reference on the same records: keep/drop agreement of at
least 98%, the confusion per reason code and the extractors' text similarity in the report; and the
reference mode never loses a page whose extraction fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commonweights.config import GovernanceConfig, QualityConfig
from data_governance import agreement, extract
from data_governance.assess import Assessor, RawRecord
from data_governance.robots import RobotsRule
from data_governance.takedowns import Takedowns
from pipelines import curate
from pipelines.sample_crawl import write_sample_crawl


def crawl_records(folder: Path) -> list[RawRecord]:
    records: list[RawRecord] = []
    for f in sorted((folder / "warc").iterdir()):
        with open(f, "rb") as fh:
            records.extend(curate.read_records(fh, f.name))
    return records


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crawl")
    write_sample_crawl(folder, seed=3, pages=320, domains=30)
    fast, reference = agreement.assessors(
        GovernanceConfig(), curate.load_snapshots(str(folder / "robots.jsonl"))
    )
    return agreement.compare(crawl_records(folder), fast, reference).to_json()


@pytest.mark.slow
def test_fast_and_reference_agree_on_keep_or_drop(report):
    assert report["records"] >= 320
    assert report["text_decided"] >= 250  # most pages reach the text rules in both modes
    assert report["agreement"] >= 0.98, report["disagreements"]
    assert report["text_agreement"] >= 0.98, report["disagreements"]


@pytest.mark.slow
def test_report_has_the_confusion_per_reason_code(report):
    confusion = report["confusion"]
    assert sum(c["count"] for c in confusion) == report["text_decided"]
    pairs = {(c["reference"], c["fast"]) for c in confusion}
    assert ("kept", "kept") in pairs
    dropped_by_reference = [c for c in confusion if c["reference"] != "kept"]
    assert dropped_by_reference  # the sample crawl's low-quality pages
    # Every code is named in our vocabulary (reference reasons mapped through REFERENCE_CODES).
    for code, counts in report["by_code"].items():
        assert not code.startswith(("gopher_repetition:", "gopher_quality:", "c4:", "fineweb:")), code
        assert set(counts) == {"reference", "fast_first", "fast_any", "both"}
        assert counts["both"] <= min(counts["reference"], counts["fast_any"])
        assert counts["fast_first"] <= counts["fast_any"]
    # Where both modes drop a page, the fast path names the reference's reason (first or among others).
    for code, counts in report["by_code"].items():
        assert counts["both"] == counts["reference"], code
    json.dumps(report)  # the report is plain JSON


@pytest.mark.slow
def test_report_has_the_extractors_text_similarity(report):
    sim = report["extractor_similarity"]
    assert sim["pages"] >= 250
    for key in ("precision", "recall", "f1"):
        assert 0.0 <= sim[key]["mean"] <= 1.0 and 0.0 <= sim[key]["median"] <= 1.0
    # Both extractors find the article: most words agree.
    assert sim["f1"]["mean"] >= 0.9


def test_word_overlap():
    assert agreement.word_overlap("a b c d", "a b c d") == (1.0, 1.0, 1.0)
    p, r, f = agreement.word_overlap("a b c d", "a b")
    assert (p, r) == (0.5, 1.0) and abs(f - 2 / 3) < 1e-9
    assert agreement.word_overlap("", "") == (1.0, 1.0, 1.0)
    assert agreement.word_overlap("a", "")[2] == 0.0


PAGE = (
    "<html><head><title>Ferry</title></head><body><article>"
    + "".join(
        f"<p>The harbour committee met on day {i} to discuss the timetable and the stone pier {i}.</p>"
        for i in range(60)
    )
    + "</article></body></html>"
).encode()


def _record(payload: bytes) -> RawRecord:
    return RawRecord(
        "x.warc.gz",
        0,
        "<urn:uuid:1>",
        "https://open.example/a",
        "2026-10-01T00:00:00Z",
        200,
        (("content-type", "text/html; charset=utf-8"),),
        payload,
    )


def test_reference_mode_quarantines_a_page_whose_extraction_times_out():
    """datatrove drops a page whose trafilatura run times out without a trace; we quarantine it with
    the reason (and the same page passes with a realistic limit)."""
    policy = GovernanceConfig(quality=QualityConfig(mode="datatrove", extract_timeout_s=0.000001))
    robots = RobotsRule({}, GovernanceConfig(robots_missing="allow"))
    a = Assessor(policy, "h", robots, Takedowns()).assess(_record(PAGE))
    assert a.row["decision"] == "quarantined" and a.text is None
    assert a.row["reasons"] == ["malformed:extract_timeout"]
    assert json.loads(a.row["consent"])["extract_error"]["extractor"] == extract.TRAFILATURA
    relaxed = policy.model_copy(update={"quality": QualityConfig(mode="datatrove")})
    assert Assessor(relaxed, "h", robots, Takedowns()).assess(_record(PAGE)).row["decision"] != "quarantined"


def test_engine_record_names_extractor_and_versions():
    from data_governance.assess import engine_record

    fast = engine_record(GovernanceConfig())
    assert fast["extractor"]["name"] == "resiliparse" and fast["extractor"]["version"]
    assert fast["quality"]["mode"] == "fast"
    ref = engine_record(GovernanceConfig(quality=QualityConfig(mode="datatrove")))
    assert ref["extractor"]["name"] == "trafilatura" and ref["quality"]["name"] == "datatrove"
    assert ref["html_parser"]["name"] == "resiliparse"  # evidence comes from one parse in both modes
