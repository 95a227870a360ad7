"""`commonweights audit verify|explain|diff` and `takedown add` on real curations of the sample crawl:
the digest recomputed by an independent implementation, tampering caught and located, a forged
policy-violating row caught even when every hash was recomputed, a recheck from the WARC files, and
diffs grouped by cause after a takedown and after a policy change."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from commonweights import config
from data_governance import audit
from pipelines import curate

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commonweights", *args], capture_output=True, text=True, cwd=ROOT, check=False
    )


def copy_manifest(run: Path, dest: Path) -> Path:
    out = dest / "manifest"
    shutil.copytree(run / "curate" / "manifest", out)
    return out


def independent_root(folder: Path) -> str:
    """docs/manifest.md's digest, written from the text alone: pyarrow + json + hashlib."""
    rows = []
    for part in sorted(folder.glob("part-*.parquet")):
        rows.extend(pq.read_table(part).to_pylist())
    rows.sort(key=lambda r: r["doc_id"].encode())
    level = [
        hashlib.sha256(
            b"\x00" + json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        ).digest()
        for r in rows
    ]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        pairs = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
    return level[0].hex()


def forge(folder: Path, change) -> None:
    """Rewrite the manifest as a careful forger would: change rows, then recompute every part hash,
    the digest and the counts, so that only the content checks can catch it."""
    part = sorted(folder.glob("part-*.parquet"))[0]
    table = pq.read_table(part)
    rows = change(table.to_pylist())
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), part)
    meta = json.loads((folder / "manifest.json").read_text())
    from data_governance import manifest

    meta.update(manifest.summarize(rows))
    meta["digest"]["root"] = independent_root(folder)
    meta["parts"] = [
        {"path": part.name, "sha256": hashlib.sha256(part.read_bytes()).hexdigest(), "rows": len(rows)}
    ]
    (folder / "manifest.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    shutil.rmtree(folder / "index", ignore_errors=True)
    for name in ("croissant.json", "eu_summary.json"):
        (folder / name).unlink(missing_ok=True)


def test_digest_is_recomputed_by_an_independent_implementation(audited_run):
    _, run = audited_run
    folder = run / "curate" / "manifest"
    meta = json.loads((folder / "manifest.json").read_text())
    assert meta["digest"]["root"] == independent_root(folder)
    assert audit.verify(folder)["digest"] == meta["digest"]["root"]


def test_verify_passes_on_the_curated_manifest(audited_run):
    _, run = audited_run
    out = cli("--format", "json", "audit", "verify", str(run / "curate" / "manifest"))
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout)
    assert result["ok"] and result["problems"] == [] and result["rows"] == 250


def test_one_changed_byte_in_a_parquet_part_fails_naming_the_file(audited_run, tmp_path):
    _, run = audited_run
    folder = copy_manifest(run, tmp_path)
    part = sorted(folder.glob("part-*.parquet"))[0]
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x01
    part.write_bytes(bytes(data))
    out = cli("audit", "verify", str(folder))
    assert out.returncode == 1
    assert part.name in out.stdout and "sha256" in out.stdout
    assert part.name in out.stderr  # the one-line error names it too


def test_one_changed_byte_in_manifest_json_fails_naming_the_file(audited_run, tmp_path):
    _, run = audited_run
    folder = copy_manifest(run, tmp_path)
    meta_file = folder / "manifest.json"
    text = meta_file.read_text()
    kept = json.loads(text)["counts"]["kept"]
    needle = f'"kept": {kept},'
    assert needle in text
    meta_file.write_text(text.replace(needle, f'"kept": {kept + 1},', 1))
    out = cli("audit", "verify", str(folder))
    assert out.returncode == 1
    assert "manifest.json" in out.stdout and "counts" in out.stdout


@pytest.mark.parametrize("edit", ["whitespace", "syntax"])
def test_any_changed_byte_in_manifest_json_fails(audited_run, tmp_path, edit):
    _, run = audited_run
    folder = copy_manifest(run, tmp_path)
    meta_file = folder / "manifest.json"
    data = bytearray(meta_file.read_bytes())
    if edit == "whitespace":  # same JSON value, different bytes
        data[data.index(b"\n  ")] = ord(" ")
    else:  # no longer JSON at all
        data[0] = ord("[")
    meta_file.write_bytes(bytes(data))
    out = cli("audit", "verify", str(folder))
    assert out.returncode == 1 and "manifest.json" in out.stdout


def test_changed_row_value_is_located_by_file_row_and_doc_id(audited_run, tmp_path):
    _, run = audited_run
    folder = copy_manifest(run, tmp_path)
    part = sorted(folder.glob("part-*.parquet"))[0]
    table = pq.read_table(part)
    rows = table.to_pylist()
    i = next(k for k, r in enumerate(rows) if r["decision"] == "kept")
    rows[i]["url"] = rows[i]["url"] + "?edited"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), part)
    result = audit.verify(folder)
    assert not result["ok"]
    located = [p for p in result["problems"] if p["row"] == i]
    assert located and located[0]["doc_id"] == rows[i]["doc_id"] and located[0]["file"].endswith(part.name)
    assert any(p["check"] == "digest" for p in result["problems"])


def test_injected_policy_violating_row_is_caught_even_with_every_hash_recomputed(audited_run, tmp_path):
    _, run = audited_run
    folder = copy_manifest(run, tmp_path)
    victims: dict[str, str] = {}

    def keep_opted_out(rows):
        robots = next(r for r in rows if r["reasons"] and all(x.startswith("robots:") for x in r["reasons"]))
        tdm = next(r for r in rows if r["reasons"] == ["tdm_reserved"])
        for r in (robots, tdm):
            victims[r["reasons"][0]] = r["doc_id"]
            r["decision"], r["reasons"] = "kept", []
        return rows

    forge(folder, keep_opted_out)
    assert len(victims) == 2
    out = cli("--format", "json", "audit", "verify", str(folder))
    assert out.returncode == 1
    problems = json.loads(out.stdout)["problems"]
    assert all(p["check"] not in ("digest", "parts", "counts") for p in problems)  # the forgery is consistent
    flagged = {p["doc_id"] for p in problems if "policy denies" in p["message"]}
    assert set(victims.values()) <= flagged


def test_policy_in_manifest_json_is_pinned_by_its_hash(audited_run, tmp_path):
    _, run = audited_run
    folder = copy_manifest(run, tmp_path)
    meta = json.loads((folder / "manifest.json").read_text())
    meta["policy"]["robots_5xx"] = "allow"  # loosen the recorded policy after the fact
    (folder / "manifest.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    problems = audit.verify(folder)["problems"]
    assert any(p["check"] == "policy" and p["file"].endswith("manifest.json") for p in problems)


@pytest.mark.slow
def test_recheck_rereads_records_from_the_warc_files(audited_run, tmp_path):
    _, run = audited_run
    warc = run / "crawl" / "warc"
    manifest_dir = str(run / "curate" / "manifest")
    ok = cli("--format", "json", "audit", "verify", manifest_dir, "--recheck", "80", "--warc-root", str(warc))
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-2000:]
    assert json.loads(ok.stdout)["recheck"]["rechecked"] == 80

    folder = copy_manifest(run, tmp_path)
    target: dict[str, str] = {}

    def forge_text(rows):  # a forged text digest cannot be seen from the manifest alone
        r = next(r for r in rows if r["decision"] == "kept")
        r["text_sha256"] = hashlib.sha256(b"other text").hexdigest()
        target["doc_id"] = r["doc_id"]
        return rows

    forge(folder, forge_text)
    assert audit.verify(folder)["ok"]
    bad = cli(
        "--format", "json", "audit", "verify", str(folder), "--recheck", "250", "--warc-root", str(warc)
    )
    assert bad.returncode == 1
    problems = json.loads(bad.stdout)["problems"]
    assert [p["doc_id"] for p in problems] == [target["doc_id"]]
    assert "text_sha256" in problems[0]["message"]


def test_explain_gives_the_evidence_in_words(audited_run):
    _, run = audited_run
    folder = run / "curate" / "manifest"
    rows = curate.read_manifest(folder)
    row = next(r for r in rows if "tdm_reserved" in r["reasons"])
    out = cli("audit", "explain", str(folder), "--doc-id", row["doc_id"])
    assert out.returncode == 0, out.stderr
    assert row["url"] in out.stdout and "used       no" in out.stdout and "why not used" in out.stdout
    assert "reserved text-and-data-mining rights" in out.stdout
    assert "robots.txt snapshot 2026-11-01" in out.stdout
    structured = audit.explain(folder, row["doc_id"])
    assert structured["used"] is False and structured["recheck"] == []
    assert cli("audit", "explain", str(folder), "--doc-id", "0" * 32).returncode == 2


def test_takedown_add_validates_and_appends(tmp_path):
    registry = tmp_path / "takedowns.jsonl"
    ok = cli(
        "--format",
        "json",
        "takedown",
        "add",
        "--registry",
        str(registry),
        "--domain",
        "WWW.Example.ORG",
        "--reason",
        "owner request",
        "--date",
        "2026-11-20",
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(registry.read_text()) == {
        "kind": "domain",
        "value": "example.org",
        "date": "2026-11-20",
        "reason": "owner request",
    }
    assert (
        cli("takedown", "add", "--registry", str(registry), "--doc-id", "xyz", "--reason", "r").returncode
        == 2
    )
    assert cli("takedown", "add", "--registry", str(registry), "--reason", "r").returncode == 2
    assert len(registry.read_text().splitlines()) == 1


@pytest.mark.slow
def test_diff_after_a_takedown_shows_the_removal(audited_run, tmp_path):
    cfg, run = audited_run
    rows = curate.read_manifest(run / "curate" / "manifest")
    domain = max(
        {r["domain"] for r in rows},
        key=lambda d: sum(r["domain"] == d and r["decision"] == "kept" for r in rows),
    )
    kept = sum(r["domain"] == domain and r["decision"] == "kept" for r in rows)
    registry = tmp_path / "takedowns.jsonl"
    added = cli(
        "takedown", "add", "--registry", str(registry), "--domain", domain, "--reason", "owner request"
    )
    assert added.returncode == 0, added.stderr
    second = config.load(
        ROOT / "configs" / "tiny.yaml", [f"dir={tmp_path / 'run2'}", f"data.takedowns={registry}"]
    )
    curate.run(second)
    out = cli("--format", "json", "audit", "diff", str(run), str(tmp_path / "run2"))
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert set(d["by_cause"]) == {"takedown"} and d["by_cause"]["takedown"]["removed"] == kept
    removed = [x for x in d["documents"] if x["change"] == "removed"]
    assert len(removed) == kept and all("takedown" in x["after"]["reasons"] for x in removed)
    # near duplicates of taken-down pages are kept now: their change is the takedown's knock-on
    for x in d["documents"]:
        if x["change"] == "added":
            assert any(r.startswith("duplicate_of:") for r in x["before"]["reasons"])
    lookup = cli("--format", "json", "audit", "lookup", "--domain", domain, str(tmp_path / "run2"))
    assert json.loads(lookup.stdout)["used"] is False


@pytest.mark.slow
def test_diff_after_a_policy_change_groups_it_as_policy_change(audited_run, tmp_path):
    _, run = audited_run
    second = config.load(
        ROOT / "configs" / "tiny.yaml", [f"dir={tmp_path / 'run2'}", "governance.mode=open-licence"]
    )
    curate.run(second)
    d = audit.diff(run / "curate" / "manifest", second.paths.manifest)
    assert d["policy_changed"] and d["policy_changes"]["mode"] == {"a": "consent", "b": "open-licence"}
    assert set(d["by_cause"]) == {"policy_change"}
    a = {r["doc_id"]: r for r in curate.read_manifest(run / "curate" / "manifest")}
    b = {r["doc_id"]: r for r in curate.read_manifest(second.paths.manifest)}
    lost = sum(a[k]["decision"] == "kept" and b[k]["decision"] != "kept" for k in a)
    assert lost > 0 and d["by_cause"]["policy_change"]["removed"] == lost
    assert audit.verify(second.paths.manifest)["ok"]


@pytest.mark.parametrize(
    "args", [["audit", "verify", "/nonexistent"], ["audit", "diff", "/nonexistent", "/x"]]
)
def test_missing_manifest_is_an_input_error(args):
    out = cli(*args)
    assert out.returncode == 2 and "manifest.json" in out.stderr


def _row(doc: str, decision: str, reasons: list[str], snapshot: str, policy: str = "p1") -> dict:
    return {
        "doc_id": doc, "url": f"https://a.example/{doc}", "domain": "a.example", "source_file": "f.warc.gz",
        "source_offset": 0, "record_id": "", "crawl_date": "2026-01-01T00:00:00Z", "http_status": 200,
        "content_type": "text/html", "payload_sha256": None, "text_sha256": "t" + doc, "chars": 10,
        "decision": decision, "reasons": reasons, "licence": None, "licence_location": None,
        "licence_evidence": "[]", "consent": json.dumps({"robots": {"snapshot_date": snapshot}}),
        "pii_email": 0, "pii_phone": 0, "pii_ip": 0, "pii_iban": 0, "policy_hash": policy,
    }  # fmt: skip


def test_diff_names_new_robots_snapshots_and_new_crawls(tmp_path):
    from data_governance import manifest

    def write(name: str, rows: list[dict]) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        pq.write_table(
            pa.Table.from_pylist(rows, schema=manifest.SCHEMA), folder / "part-00000-of-00001.parquet"
        )
        (folder / "manifest.json").write_text(json.dumps({"policy_hash": "p1", "policy": {}, "digest": {}}))
        return folder

    a = write("a", [_row("1", "kept", [], "2026-01-01"), _row("2", "kept", [], "2026-01-01"),
                    _row("3", "kept", [], "2026-01-01")])  # fmt: skip
    b = write("b", [_row("1", "dropped", ["robots:GPTBot"], "2026-06-01"),
                    _row("2", "kept", [], "2026-06-01"), _row("4", "kept", [], "2026-06-01")])  # fmt: skip
    d = audit.diff(a, b)
    assert d["by_cause"] == {
        "robots_snapshot": {"added": 0, "removed": 1, "changed": 0},
        "new_crawl": {"added": 1, "removed": 1, "changed": 0},
    }
    assert {x["doc_id"]: x["cause"] for x in d["documents"]} == {"1": "robots_snapshot", "3": "new_crawl",
                                                                  "4": "new_crawl"}  # fmt: skip


def test_facts_count_each_consent_signal_per_row():
    """The data report's signal counts: per row, from its consent JSON and licence evidence, the same
    for rows that repeat one site's consent text; a row whose JSON does not parse adds no signal."""
    robots = {"snapshot_date": "2026-11-01", "fallback": None, "verdicts": {"GPTBot": False, "*": True}}
    plain = json.dumps({"robots": robots, "tdmrep": {"header": None, "meta": None}})
    well_known = {"well_known": {"tdm-reservation": 1}}
    reserved = json.dumps({"robots": robots, "tdmrep": {"header": None, **well_known}})
    noai = json.dumps({"robots": {"fallback": "missing:disallow"}, "meta_robots": ["noai"], "aipref": "x"})
    base = {"crawl_date": "2026-10-01", "decision": "kept", "reasons": [], "domain": "a.example", "chars": 5}
    rows = [
        {**base, "consent": plain, "licence_evidence": "[]"},
        {**base, "consent": plain, "licence_evidence": '[{"spdx": "CC-BY-4.0"}]'},
        {**base, "consent": reserved, "licence_evidence": "[]"},
        {**base, "consent": noai, "licence_evidence": "null"},
        {**base, "consent": "{not json", "licence_evidence": '[{"spdx": "CC0-1.0"}]'},
    ]
    facts = audit.derive_facts(rows)
    assert facts["signals"] == {
        "robots.txt disallows ≥1 AI agent": 3,
        "licence link found": 1,
        "TDMRep reservation": 1,
        "robots.txt fallback (missing:disallow)": 1,
        "aipref Content-Usage header": 1,
        "noai in meta robots": 1,
    }
