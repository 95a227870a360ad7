"""The lookup index answers exactly what a full scan of the manifest answers: on a generated manifest
spread over many row groups and files (URLs captured several times, subdomains, keys on group
boundaries, absent URLs) and through `commonweights audit lookup` on the curated sample."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_governance import lookup, manifest
from data_governance.audit import lookup_answer

ROOT = Path(__file__).resolve().parents[1]


def generated_rows(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    hosts = [f"site{i}.example" for i in range(60)] + [f"blog.site{i}.example" for i in range(0, 60, 7)]
    hosts += ["www.site3.example", "site3.example.org", "site3-mirror.example"]
    rows = []
    for i in range(n):
        host = hosts[min(int(rng.paretovariate(1.2)) - 1, len(hosts) - 1)] if i % 3 else rng.choice(hosts)
        page = rng.randrange(n // 3)  # pages repeat: several captures of one URL
        url = f"https://{host}/p/{page}.html"
        decision = rng.choice(["kept", "kept", "dropped", "quarantined"])
        reasons = {
            "kept": [],
            "dropped": [rng.choice(["robots:GPTBot", "tdm_reserved", "quality:too_short"])],
            "quarantined": ["malformed:truncated"],
        }[decision]
        date = f"2025-{1 + i % 12:02d}-01T00:00:00Z"
        rows.append(
            {
                "doc_id": hashlib.sha256(f"{url}\n{date}\n{i}".encode()).hexdigest()[:32],
                "url": url,
                "domain": host.removeprefix("www."),
                "source_file": f"f{i % 4}.warc.gz",
                "source_offset": i * 10,
                "record_id": f"<urn:uuid:{i}>",
                "crawl_date": date,
                "http_status": 200,
                "content_type": "text/html",
                "payload_sha256": None,
                "text_sha256": None,
                "chars": i % 900,
                "decision": decision,
                "reasons": reasons,
                "licence": rng.choice([None, "CC-BY-4.0"]) if decision == "kept" else None,
                "licence_location": None,
                "licence_evidence": "[]",
                "consent": json.dumps({"robots": {"snapshot_date": f"2025-1{i % 2}-01"}}),
                "pii_email": 0,
                "pii_phone": 0,
                "pii_ip": 0,
                "pii_iban": 0,
                "policy_hash": "p",
            }
        )
    return rows


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generated")
    rows = generated_rows(12_000)
    half = len(rows) // 2
    for k, chunk in enumerate((rows[:half], rows[half:])):
        pq.write_table(
            pa.Table.from_pylist(chunk, schema=manifest.SCHEMA), folder / f"part-{k:05d}-of-00002.parquet"
        )
    mp = pytest.MonkeyPatch()
    mp.setattr(lookup, "ROW_GROUP", 500)  # many row groups ...
    mp.setattr(lookup, "FILE_ROWS", 4_000)  # ... over several files
    try:
        meta = lookup.build(folder, "digest-of-test")
    finally:
        mp.undo()
    return folder, rows, meta


def test_index_layout_spans_files_and_groups(generated):
    _, rows, meta = generated
    assert meta["rows"] == len(rows) and len(meta["urls"]) == 3 and len(meta["doc_ids"]) == 3
    keys = [tuple(g) for f in meta["urls"] for grp in f["groups"] for g in grp]
    assert keys == sorted(keys)


def test_url_lookup_equals_a_full_scan(generated):
    folder, rows, _ = generated
    index = lookup.Index(folder / "index")
    by_url: dict[str, list[str]] = {}
    for r in rows:
        by_url.setdefault(r["url"], []).append(r["doc_id"])
    sample = random.Random(1).sample(sorted(by_url), 300)
    for url in sample:
        got = index.url(url)
        assert sorted(x["doc_id"] for x in got) == sorted(by_url[url]), url
    assert index.url("https://site1.example/p/not-there.html") == []
    assert index.url("https://unknown.example/") == []
    assert any(len(v) > 1 for v in by_url.values())  # repeated captures were exercised


def test_doc_id_lookup_returns_the_row(generated):
    folder, rows, _ = generated
    index = lookup.Index(folder / "index")
    for r in random.Random(2).sample(rows, 200):
        got = index.doc_id(r["doc_id"])
        assert got is not None and (got["url"], got["decision"], got["reasons"]) == (
            r["url"],
            r["decision"],
            r["reasons"],
        )
    assert index.doc_id("f" * 32) is None


def test_domain_lookup_covers_subdomains_only(generated):
    folder, rows, _ = generated
    answer = lookup_answer(folder, domain="site0.example")
    mine = [r for r in rows if r["domain"] == "site0.example" or r["domain"].endswith(".site0.example")]
    counts = Counter(r["decision"] for r in mine)
    assert answer["counts"] == {
        "rows": len(mine),
        "kept": counts["kept"],
        "dropped": counts["dropped"],
        "quarantined": counts["quarantined"],
    }
    assert set(answer["domains"]) == {"site0.example", "blog.site0.example"}
    assert answer["reasons"] == dict(Counter(x for r in mine for x in r["reasons"]))
    assert answer["robots_snapshot_dates"] == ["2025-10-01", "2025-11-01"]
    # a neighbour whose name merely starts the same is not included; www. is folded into the domain
    s3 = lookup_answer(folder, domain="www.site3.example")
    assert set(s3["domains"]) == {"site3.example"}
    assert s3["counts"]["rows"] == sum(r["domain"] == "site3.example" for r in rows)
    assert lookup_answer(folder, domain="nowhere.example")["found"] is False


def test_cli_lookup_on_the_curated_sample(audited_run):
    _, run = audited_run
    folder = run / "curate" / "manifest"
    rows = pq.read_table(sorted(folder.glob("part-*.parquet"))[0]).to_pylist()
    index = lookup.Index.of_manifest(folder)
    for r in rows:  # every row is found by URL and by doc_id
        assert r["doc_id"] in {x["doc_id"] for x in index.url(r["url"])}
        assert index.doc_id(r["doc_id"])["doc_id"] == r["doc_id"]
    dropped = next(r for r in rows if r["decision"] == "dropped" and r["reasons"][0].startswith("robots:"))

    def run_cli(*args: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-m", "commonweights", "--format", "json", "audit", "lookup", *args, str(run)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    ans = run_cli("--url", dropped["url"].replace("https://", "http://"))  # scheme variant still found
    doc = ans["documents"][0]
    assert ans["found"] and ans["used"] is False and doc["reasons"] == dropped["reasons"]
    assert doc["robots_snapshot_date"] == "2026-11-01" and doc["licence"] == dropped["licence"]
    kept = next(r for r in rows if r["decision"] == "kept")
    assert run_cli("--doc-id", kept["doc_id"])["used"] is True
    dom = run_cli("--domain", kept["domain"])
    assert dom["counts"]["rows"] == sum(r["domain"] == kept["domain"] for r in rows)
    bad = subprocess.run(
        [sys.executable, "-m", "commonweights", "audit", "lookup", str(run)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert bad.returncode == 2 and "--url" in bad.stderr
