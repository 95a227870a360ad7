"""Auditor checks over a manifest folder: verify, recheck, diff, explain.

`verify` trusts nothing but the files it is given: it recomputes every part's sha256 and the Merkle
digest (docs/manifest.md), checks that manifest.json's counts are those of the rows, and re-decides
every row from its stored evidence under the policy recorded in manifest.json. A kept row that the
policy should have dropped, a reason that its evidence does not support, or a doc_id that is not the
hash of its URL, date and payload is a failure that names the file, the row and the doc_id.

Everything here is a pure function of the files read; the Beam reader and the assessor are imported
only by `recheck`, which re-reads source records from the WARC files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from commonweights.config import GovernanceConfig, GovernanceMode, RobotsFallback, canonical_json
from commonweights.errors import InputError
from data_governance import ids, licence, manifest
from data_governance.ids import sha256_file
from data_governance.lookup import INDEX_DIR, domain_of

MANIFEST_JSON = "manifest.json"
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain"})
AIPREF_TRAINING = ("train-ai", "train-genai")

# Reason families that the stored evidence fully determines; the others (quality, duplicates,
# takedown, empty text) come from the text or from global stages and are checked for shape only.
DERIVED = (
    "robots:",
    "tdm_reserved",
    "aipref:",
    "meta:noai",
    "header:noai",
    "licence:",
    "http_status:",
    "content_type:",
)
# Reasons added after the per-record assessment, by stages that see other records or the eval tasks.
LATER_STAGES = ("duplicate_of:", "contaminated:")
OPT_OUT = ("robots:", "tdm_reserved", "aipref:", "meta:noai", "header:noai")


@dataclass(frozen=True)
class Problem:
    """One failed check: where (file, row index in that file, doc_id) and what."""

    check: str
    file: str
    message: str
    row: int | None = None
    doc_id: str | None = None

    def line(self) -> str:
        where = self.file + (f" row {self.row}" if self.row is not None else "")
        where += f" (doc_id {self.doc_id})" if self.doc_id else ""
        return f"{where}: [{self.check}] {self.message}"


# ---------------------------------------------------------------- reading


def load_meta(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_JSON
    if not folder.is_dir():
        raise InputError(f"{folder}: not a manifest folder (expected RUN/curate/manifest)")
    if not path.is_file():
        raise InputError(f"{path}: missing; a manifest folder holds manifest.json and part-*.parquet")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e}); the file is damaged or was edited") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: expected a JSON object at the top level")
    return meta


def recorded_policy(meta: dict[str, Any], where: str) -> GovernanceConfig:
    """The GovernanceConfig that manifest.json records (what every row was decided under)."""
    policy = meta.get("policy")
    if not isinstance(policy, dict):
        raise InputError(f"{where}: no `policy` object; cannot re-decide rows without it")
    try:
        # The recorded agents are what the rows were decided under, whatever list ships today.
        fields = {k: v for k, v in policy.items() if k != "policy_version"}
        if "agents" in fields and "agents_list" in GovernanceConfig.model_fields:
            fields["agents_list"] = "custom"
        return GovernanceConfig.model_validate(fields)
    except ValueError as e:
        raise InputError(f"{where}: the recorded policy is not valid under this version: {e}") from None


def read_rows(folder: Path, columns: list[str] | None = None) -> list[tuple[str, pa.Table]]:
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        raise InputError(f"{folder}: no manifest parts (part-*.parquet); run `commonweights curate` first")
    out = []
    for p in parts:
        try:
            out.append((p.name, pq.read_table(p, columns=columns)))
        except (pa.ArrowException, OSError) as e:
            raise InputError(f"{p}: not a readable Parquet file ({e})") from None
    return out


# ---------------------------------------------------------------- re-deciding a row from its evidence


def expected_reasons(row: dict[str, Any], policy: GovernanceConfig) -> tuple[set[str], list[str]]:
    """The evidence-determined reasons the policy gives this row, and evidence inconsistencies found."""
    issues: list[str] = []
    want: set[str] = set()
    status = row.get("http_status")
    if status is not None and not 200 <= status < 300:
        want.add(f"http_status:{status}")
    mime = row.get("content_type") or ""
    if mime not in HTML_TYPES and mime not in TEXT_TYPES:
        want.add(f"content_type:{mime or 'unknown'}")
    try:
        consent = json.loads(row.get("consent") or "{}")
        evidence = json.loads(row.get("licence_evidence") or "[]")
    except ValueError as e:
        return want, [f"evidence column is not valid JSON ({e})"]
    robots = consent.get("robots")
    if not isinstance(robots, dict):
        issues.append("no robots.txt evidence in `consent`")
    else:
        want |= _robots_reasons(robots, policy, issues)
    derive = _governance_derivation()
    if derive is not None:
        # the governance module's own evidence → reasons rules (one definition of the policy)
        want |= derive(consent, evidence, policy)
    else:
        want |= _signal_reasons(consent, evidence, policy)
    names = {f.name for f in dataclasses.fields(licence.Evidence)}
    ev = [licence.Evidence(**{k: v for k, v in e.items() if k in names}) for e in evidence]
    page = licence.page_licence(ev)
    got = (row.get("licence"), row.get("licence_location"))
    if got != ((page.spdx, page.location) if page else (None, None)):
        issues.append(f"licence {got[0]!r} at {got[1]!r} is not what its evidence states ({page})")
    return want, issues


def _governance_derivation() -> Any:
    """`data_governance.assess.consent_licence_reasons` where this version has it."""
    from data_governance import assess

    return getattr(assess, "consent_licence_reasons", None)


def _signal_reasons(
    consent: dict[str, Any], evidence: list[dict[str, Any]], policy: GovernanceConfig
) -> set[str]:
    """Evidence → reasons for manifests whose governance module has no derivation of its own."""
    want: set[str] = set()
    tdm = consent.get("tdmrep") or {}
    if ((tdm.get("header") or tdm.get("meta") or "").strip()) == "1" or _mentions_reservation(tdm):
        want.add("tdm_reserved")
    usage = ((consent.get("aipref") or {}).get("content_usage")) or {}
    for category in AIPREF_TRAINING:
        if usage.get(category) == "n":
            want.add(f"aipref:{category}=n")
    if "noai" in (consent.get("x_robots_tag") or []):
        want.add("header:noai")
    if "noai" in (consent.get("meta_robots") or []):
        want.add("meta:noai")
    page = licence.page_licence([licence.Evidence(e["location"], e["href"], e.get("spdx")) for e in evidence])
    if policy.mode == GovernanceMode.open_licence:
        if page is None or page.spdx is None:
            want.add("licence:missing")
        elif not licence.allowed(page.spdx, policy.licence_allowlist):
            want.add(f"licence:not_allowed:{page.spdx}")
    return want


def _robots_reasons(robots: dict[str, Any], policy: GovernanceConfig, issues: list[str]) -> set[str]:
    fallback = robots.get("fallback")
    verdicts = robots.get("verdicts") or {}
    if fallback:
        kind, _, applied = str(fallback).partition(":")
        rule = {
            "missing": policy.robots_missing,
            "4xx": policy.robots_4xx,
            "5xx": policy.robots_5xx,
            "3xx": policy.robots_5xx,
        }.get(kind)
        if rule is None:
            issues.append(f"unknown robots fallback {fallback!r}")
            return set()
        if applied != rule.value:
            issues.append(f"robots fallback {fallback!r} applied, but the policy says {kind}: {rule.value}")
        if rule == RobotsFallback.disallow:
            return {"robots:missing" if kind == "missing" else "robots:unavailable"}
        return set()
    missing = [a for a in policy.agents if a not in verdicts]
    if missing:
        issues.append(f"no robots.txt verdict for policy agent(s) {', '.join(missing)}")
    return {f"robots:{a}" for a in policy.agents if verdicts.get(a) is False}


def _mentions_reservation(obj: Any) -> bool:
    """True where TDMRep evidence other than header/meta (e.g. a well-known file) reserves rights."""
    # (loops, not generators: the audit facts call this for every manifest row)
    if isinstance(obj, dict):
        for k, v in obj.items():
            if v in (1, "1", True) and "reserv" in str(k).lower():
                return True
            if isinstance(v, (dict, list)) and _mentions_reservation(v):
                return True
        return False
    if isinstance(obj, list):
        for v in obj:
            if isinstance(v, (dict, list)) and _mentions_reservation(v):
                return True
    return False


def check_row(row: dict[str, Any], policy: GovernanceConfig, policy_hash: str) -> list[tuple[str, str]]:
    """(check, message) for everything wrong with one row, judged from the row alone."""
    out: list[tuple[str, str]] = []
    reasons_ = list(row.get("reasons") or [])
    decision = row.get("decision")
    malformed = [r for r in reasons_ if r.startswith("malformed:")]
    dup = [r for r in reasons_ if r.startswith("duplicate_of:")]
    # identity: the doc_id is the hash of what the row says it is
    payload = row.get("payload_sha256") or ids.sha256(b"")
    by_content = ids.doc_id(row.get("url") or "", row.get("crawl_date") or "", payload)
    by_place = ids.malformed_id(row.get("source_file") or "", int(row.get("source_offset") or 0))
    if row.get("doc_id") not in (by_content, by_place):
        out.append(
            ("identity", "doc_id is not sha256(url, crawl_date, payload_sha256) nor the id of its place")
        )
    elif row.get("doc_id") == by_place and not (malformed or dup):
        out.append(
            ("identity", "positional doc_id on a row that is neither malformed nor a repeated capture")
        )
    if row.get("policy_hash") != policy_hash:
        out.append(
            ("policy", f"row decided under policy {row.get('policy_hash')}, manifest says {policy_hash}")
        )
    if row.get("url") and row.get("domain") != domain_of(row["url"]):
        out.append(("identity", f"domain {row.get('domain')!r} is not the host of {row['url']!r}"))
    if decision not in ("kept", "dropped", "quarantined"):
        out.append(("decision", f"unknown decision {decision!r}"))
        return out
    if decision == "kept" and reasons_:
        out.append(("decision", f"kept although denied by {', '.join(reasons_)}"))
    if decision == "dropped" and not reasons_:
        out.append(("decision", "dropped without a reason"))
    if (decision == "quarantined") != bool(malformed):
        out.append(("decision", f"decision {decision} does not match malformed reasons {malformed}"))
    if decision == "quarantined":
        return out
    want, issues = expected_reasons(row, policy)
    out.extend(("evidence", m) for m in issues)
    have = {r for r in reasons_ if r.startswith(DERIVED)}
    if "takedown" in want and "takedown" not in reasons_:
        out.append(("policy", "a takedown matches (consent.takedown) but the row lacks the takedown reason"))
    want.discard("takedown")
    for r in sorted(want - have):
        what = "kept although the policy denies it" if decision == "kept" else "reason missing"
        out.append(("policy", f"{what}: evidence gives {r}"))
    for r in sorted(have - want):
        if r == "tdm_reserved" and _mentions_reservation(
            json.loads(row.get("consent") or "{}").get("tdmrep")
        ):
            continue
        out.append(("policy", f"reason {r} is not supported by the stored evidence"))
    return out


# ---------------------------------------------------------------- verify


def verify(folder: Path) -> dict[str, Any]:
    """Every check that needs only the manifest folder. `ok` is False when any problem is found."""
    meta_file = str(folder / MANIFEST_JSON)
    problems: list[Problem] = []
    try:
        meta = load_meta(folder)
    except InputError as e:
        if not (folder / MANIFEST_JSON).is_file():
            raise
        problem = Problem("bytes", meta_file, str(e))
        return {
            "ok": False,
            "manifest": str(folder),
            "rows": 0,
            "digest": None,
            "recorded_digest": None,
            "policy_hash": None,
            "problems": [asdict(problem) | {"text": problem.line()}],
        }
    raw = (folder / MANIFEST_JSON).read_bytes()
    if raw != canonical_bytes(meta):
        problems.append(
            Problem(
                "bytes",
                meta_file,
                "not byte-identical to its canonical form (JSON, indent 2, "
                "UTF-8, one final newline): the file was edited after curation",
            )
        )

    def fail(check: str, file: str, message: str, row: int | None = None, doc: str | None = None) -> None:
        problems.append(Problem(check, file, message, row, doc))

    if meta.get("schema_version") != manifest.SCHEMA_VERSION:
        fail(
            "schema",
            meta_file,
            f"schema_version {meta.get('schema_version')!r}, this tool reads {manifest.SCHEMA_VERSION}",
        )
    if meta.get("columns") != list(manifest.COLUMNS):
        fail("schema", meta_file, "`columns` differ from the schema's columns")
    policy = recorded_policy(meta, meta_file)
    recorded_hash = hashlib.sha256(canonical_json(meta.get("policy")).encode()).hexdigest()
    if meta.get("policy_hash") != recorded_hash:
        fail(
            "policy",
            meta_file,
            f"policy_hash {meta.get('policy_hash')} is not the sha256 of the recorded "
            f"policy ({recorded_hash})",
        )
    listed = {p.get("path"): p for p in meta.get("parts") or []}
    on_disk = sorted(folder.glob("part-*.parquet"))
    for p in on_disk:
        entry = listed.get(p.name)
        if entry is None:
            fail("parts", str(p), "part is not listed in manifest.json")
            continue
        actual = sha256_file(p)
        if actual != entry.get("sha256"):
            fail(
                "parts",
                str(p),
                f"sha256 {actual} differs from manifest.json ({entry.get('sha256')}): "
                "the file changed after curation",
            )
    for name in sorted(set(listed) - {p.name for p in on_disk}):
        fail("parts", str(folder / str(name)), "listed in manifest.json but missing")

    rows: list[dict[str, Any]] = []
    seen: dict[str, tuple[str, int]] = {}
    for p in on_disk:
        try:
            table = pq.read_table(p)
        except (pa.ArrowException, OSError) as e:
            fail("parts", str(p), f"not readable as Parquet ({e})")
            continue
        if table.schema.names != list(manifest.COLUMNS):
            fail("schema", str(p), f"columns {table.schema.names} differ from the manifest schema")
            continue
        entry = listed.get(p.name) or {}
        if entry.get("rows") is not None and entry["rows"] != table.num_rows:
            fail("parts", str(p), f"{table.num_rows} rows, manifest.json says {entry['rows']}")
        for i, row in enumerate(table.to_pylist()):
            doc = row.get("doc_id")
            if doc in seen:
                fail("identity", str(p), f"doc_id also at {seen[doc][0]} row {seen[doc][1]}", i, doc)
            seen[doc] = (p.name, i)
            for check, message in check_row(row, policy, str(meta.get("policy_hash"))):
                fail(check, str(p), message, i, doc)
            rows.append(row)
    for r in rows:
        for reason in r["reasons"] or []:
            if reason.startswith("duplicate_of:") and reason.split(":", 1)[1] not in seen:
                where = seen[r["doc_id"]]
                fail(
                    "identity",
                    str(folder / where[0]),
                    f"{reason} names no row of this manifest",
                    where[1],
                    r["doc_id"],
                )

    root = manifest.digest(rows)
    recorded = (meta.get("digest") or {}).get("root")
    if root != recorded:
        fail("digest", meta_file, f"digest.root {recorded} but the rows give {root}")
    summary = manifest.summarize(rows)
    for key, value in summary.items():
        if meta.get(key) != value:
            fail("counts", meta_file, f"`{key}` does not match the rows (recomputed: {_short(value)})")
    problems.extend(_check_derived(folder, root, len(rows)))
    return {
        "ok": not problems,
        "manifest": str(folder),
        "rows": len(rows),
        "digest": root,
        "recorded_digest": recorded,
        "policy_hash": meta.get("policy_hash"),
        "problems": [asdict(p) | {"text": p.line()} for p in problems],
    }


def canonical_bytes(meta: dict[str, Any]) -> bytes:
    """How the curate stage writes manifest.json; any other byte sequence was edited by hand."""
    return (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _check_derived(folder: Path, root: str, rows: int) -> list[Problem]:
    """The lookup index and the derived documents must describe these rows, not an older manifest."""
    out = []
    index = folder / INDEX_DIR / "index.json"
    if index.is_file():
        try:
            meta = json.loads(index.read_text())
        except ValueError as e:
            return [Problem("index", str(index), f"not valid JSON ({e})")]
        if meta.get("manifest_digest") != root or meta.get("rows") != rows:
            out.append(
                Problem(
                    "index",
                    str(index),
                    "lookup index was built from another manifest; rebuild it "
                    "with `commonweights audit index`",
                )
            )
    for name in ("croissant.json", "eu_summary.json"):
        path = folder / name
        if path.is_file() and root not in path.read_text(encoding="utf-8"):
            out.append(
                Problem("derived", str(path), "does not name this manifest's digest (stale or edited)")
            )
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) < 200 else text[:200] + "…"


# ---------------------------------------------------------------- recheck from the WARC files


def recheck(
    folder: Path,
    n: int,
    warc_root: Path,
    assess: Any,
    seed: int = 0,
) -> dict[str, Any]:
    """Re-read `n` random records at their file and offset, re-assess them, compare with the rows.

    `assess(RawRecord) -> row dict` is the curation's own assessor (built by the caller from the
    recorded policy and the robots/takedown inputs), so the comparison is against a from-scratch run.
    """
    from pipelines.warc import read_records  # (no Beam import: the reader is plain Python)

    rows = [r for _, t in read_rows(folder) for r in t.to_pylist()]
    pick = random.Random(seed).sample(rows, min(n, len(rows)))
    problems: list[Problem] = []
    for row in pick:
        path = warc_root / row["source_file"]
        if not path.is_file():
            raise InputError(
                f"{path}: source file of doc_id {row['doc_id']} not found under --warc-root {warc_root}"
            )
        with path.open("rb") as fh:
            fh.seek(row["source_offset"])
            rec = next(iter(read_records(fh, row["source_file"])), None)
        if rec is None:
            problems.append(
                Problem(
                    "recheck", str(path), f"no record at offset {row['source_offset']}", None, row["doc_id"]
                )
            )
            continue

        if rec.offset != row["source_offset"]:  # (offsets count from the file's start, seek or not)
            found = f"the record read starts at {rec.offset}, not at {row['source_offset']}"
            problems.append(Problem("recheck", str(path), found, None, row["doc_id"]))
            continue
        fresh = assess(rec)
        for msg in compare_assessed(row, fresh):
            problems.append(
                Problem("recheck", str(path), f"offset {row['source_offset']}: {msg}", None, row["doc_id"])
            )
    return {
        "ok": not problems,
        "rechecked": len(pick),
        "seed": seed,
        "doc_ids": [r["doc_id"] for r in pick],
        "problems": [asdict(p) | {"text": p.line()} for p in problems],
    }


def compare_assessed(stored: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    """Differences between a manifest row and a fresh assessment of its source record.

    Deduplication and decontamination look beyond the record, so their reasons are set aside: a
    repeated capture keeps its first copy's id in `duplicate_of:`, and a near duplicate or a document
    holding an evaluation item is dropped although alone it would be kept.
    """
    out = []
    dups = [r for r in stored["reasons"] if r.startswith("duplicate_of:")]
    later = [r for r in stored["reasons"] if r.startswith(LATER_STAGES)]
    expected_id = fresh["doc_id"]
    if fresh["decision"] != "quarantined" and stored["doc_id"] != expected_id:
        repeat = ids.malformed_id(stored["source_file"], stored["source_offset"])
        if not (stored["doc_id"] == repeat and f"duplicate_of:{expected_id}" in dups):
            out.append(f"doc_id {stored['doc_id']} but the record gives {expected_id}")
    for col in (
        "url",
        "payload_sha256",
        "text_sha256",
        "chars",
        "licence",
        "pii_email",
        "pii_phone",
        "pii_ip",
        "pii_iban",
    ):
        if stored.get(col) != fresh.get(col):
            out.append(f"{col} {stored.get(col)!r} but the record gives {fresh.get(col)!r}")
    own = [r for r in stored["reasons"] if not r.startswith(LATER_STAGES)]
    if own != list(fresh["reasons"]):
        out.append(f"reasons {own} but the record gives {fresh['reasons']}")
    decision = fresh["decision"]
    if later and decision == "kept":
        decision = "dropped"
    if stored["decision"] != decision:
        out.append(f"decision {stored['decision']} but the record gives {decision}")
    return out


# ---------------------------------------------------------------- diff


DIFF_COLUMNS = ["doc_id", "url", "decision", "reasons", "policy_hash", "consent", "text_sha256"]
CAUSES = ("takedown", "robots_snapshot", "policy_change", "new_crawl", "other")


def _diff_table(folder: Path) -> pa.Table:
    tables = [t for _, t in read_rows(folder, DIFF_COLUMNS)]
    t = pa.concat_tables(tables) if tables else pa.table({c: [] for c in DIFF_COLUMNS})
    snap = [_snapshot_date(c) for c in t["consent"].to_pylist()]
    return pa.table(
        {
            "doc_id": t["doc_id"],
            "url": t["url"],
            "decision": t["decision"],
            "reasons": pc.binary_join(t["reasons"], "\n"),
            "policy_hash": t["policy_hash"],
            "snapshot": pa.array(snap, pa.string()),
            "text_sha256": t["text_sha256"],
        }
    )


def _snapshot_date(consent: str | None) -> str | None:
    try:
        return (json.loads(consent or "{}").get("robots") or {}).get("snapshot_date")
    except ValueError:
        return None


def diff(a: Path, b: Path, limit: int = 100) -> dict[str, Any]:
    """What changed from manifest A to manifest B, per document, grouped by cause.

    `added`/`removed` are about the training data: a document is added when it is kept in B and was
    absent or not kept in A, removed when it was kept in A and is absent or not kept in B. `changed`
    documents keep their decision but their reasons or extracted text changed. A duplicate whose
    representative changed (so it is now kept, or now dropped) gets its representative's cause.
    Cause, most specific first: takedown (a `takedown` reason appeared or went away), robots_snapshot
    (the robots.txt snapshot date differs and the robots reasons changed), policy_change (the rows'
    policy hashes differ), new_crawl (the record is only in one manifest), other (e.g. new code or inputs).
    """
    ta, tb = _diff_table(a), _diff_table(b)
    j = ta.join(
        tb, keys="doc_id", join_type="full outer", left_suffix="_a", right_suffix="_b", coalesce_keys=True
    )
    same = pc.and_(
        pc.and_(pc.equal(j["decision_a"], j["decision_b"]), pc.equal(j["reasons_a"], j["reasons_b"])),
        pc.equal(pc.fill_null(j["text_sha256_a"], ""), pc.fill_null(j["text_sha256_b"], "")),
    )
    changed = j.filter(pc.invert(pc.fill_null(same, False)))
    summary = {c: {"added": 0, "removed": 0, "changed": 0} for c in CAUSES}
    examples: list[dict[str, Any]] = []
    rows = sorted(changed.to_pylist(), key=lambda r: r["doc_id"])
    causes = {r["doc_id"]: _cause(r) for r in rows}
    for r in rows:  # a duplicate whose representative changed shares that change's cause
        if causes[r["doc_id"]] == "other":
            moved = set(_split(r["reasons_a"])) ^ set(_split(r["reasons_b"]))
            reps = {x.split(":", 1)[1] for x in moved if x.startswith("duplicate_of:")}
            if reps and len(reps) == len(moved):
                inherited = {causes.get(x, "other") for x in reps} - {"other"}
                if len(inherited) == 1:
                    causes[r["doc_id"]] = inherited.pop()
    for r in rows:
        kept_a, kept_b = r["decision_a"] == "kept", r["decision_b"] == "kept"
        if kept_a == kept_b and (r["decision_a"] is None or r["decision_b"] is None):
            kind = "changed"
        else:
            kind = "added" if kept_b and not kept_a else "removed" if kept_a and not kept_b else "changed"
        cause = causes[r["doc_id"]]
        summary[cause][kind] += 1
        if len(examples) < limit:
            examples.append(
                {
                    "doc_id": r["doc_id"],
                    "url": r["url_b"] or r["url_a"],
                    "change": kind,
                    "cause": cause,
                    "before": None
                    if r["decision_a"] is None
                    else {"decision": r["decision_a"], "reasons": _split(r["reasons_a"])},
                    "after": None
                    if r["decision_b"] is None
                    else {"decision": r["decision_b"], "reasons": _split(r["reasons_b"])},
                }
            )
    ma, mb = load_meta(a), load_meta(b)
    totals = {k: sum(v[k] for v in summary.values()) for k in ("added", "removed", "changed")}
    return {
        "a": {
            "manifest": str(a),
            "digest": (ma.get("digest") or {}).get("root"),
            "rows": ta.num_rows,
            "policy_hash": ma.get("policy_hash"),
        },
        "b": {
            "manifest": str(b),
            "digest": (mb.get("digest") or {}).get("root"),
            "rows": tb.num_rows,
            "policy_hash": mb.get("policy_hash"),
        },
        "policy_changed": ma.get("policy_hash") != mb.get("policy_hash"),
        "policy_changes": _policy_delta(ma.get("policy") or {}, mb.get("policy") or {}),
        "totals": totals,
        "by_cause": {c: v for c, v in summary.items() if any(v.values())},
        "documents": examples,
        "documents_shown": len(examples),
        "documents_total": changed.num_rows,
    }


def _split(joined: str | None) -> list[str]:
    return joined.split("\n") if joined else []


def _cause(r: dict[str, Any]) -> str:
    if r["decision_a"] is None or r["decision_b"] is None:
        return "new_crawl"
    ra, rb = set(_split(r["reasons_a"])), set(_split(r["reasons_b"]))
    if ("takedown" in ra) != ("takedown" in rb):
        return "takedown"
    robots_a = {x for x in ra if x.startswith("robots:")}
    robots_b = {x for x in rb if x.startswith("robots:")}
    if r["snapshot_a"] != r["snapshot_b"] and robots_a != robots_b:
        return "robots_snapshot"
    if r["policy_hash_a"] != r["policy_hash_b"]:
        return "policy_change"
    return "other"


def _policy_delta(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out.update(_policy_delta(va, vb, f"{prefix}{key}."))
        elif va != vb:
            out[prefix + key] = {"a": va, "b": vb}
    return out


# ---------------------------------------------------------------- explain


REASON_TEXT = {
    "robots:unavailable": "robots.txt could not be fetched (5xx/unreachable) and the policy treats that as "
    "disallow-all (RFC 9309)",
    "robots:missing": "no robots.txt snapshot exists for the domain and the policy treats that as disallow",
    "tdm_reserved": "the publisher reserved text-and-data-mining rights (TDMRep tdm-reservation: 1)",
    "meta:noai": "the page's <meta name=robots> contains noai",
    "header:noai": "the HTTP X-Robots-Tag header contains noai",
    "licence:missing": "open-licence mode: no page-level licence was found",
    "takedown": "the takedown registry lists this document, its URL prefix or its domain",
    "empty_text": "text extraction produced no text",
}
PREFIX_TEXT = {
    "robots:": "robots.txt in the dated snapshot disallows this URL for the agent {}",
    "aipref:": "the Content-Usage header (IETF aipref) says {}",
    "licence:not_allowed:": "open-licence mode: the licence {} is not on the allowlist",
    "quality:": "quality filter failed: {}",
    "duplicate_of:": "duplicate of document {} (the group keeps its smallest doc_id)",
    "content_type:": "not a text document (content type {})",
    "http_status:": "the server answered HTTP {}, not a page",
    "malformed:": "the WARC record could not be read: {}",
}


def reason_text(code: str) -> str:
    if code in REASON_TEXT:
        return REASON_TEXT[code]
    for prefix in sorted(PREFIX_TEXT, key=len, reverse=True):
        if code.startswith(prefix):
            return PREFIX_TEXT[prefix].format(code[len(prefix) :])
    return code


def find_row(folder: Path, doc_id: str) -> tuple[str, int, dict[str, Any]] | None:
    """The full manifest row of a doc_id: (part name, row index, row)."""
    doc_id = doc_id.strip().lower()
    for name, table in read_rows(folder):
        hits = pc.indices_nonzero(pc.equal(table["doc_id"], doc_id)).to_pylist()
        if hits:
            return name, hits[0], table.slice(hits[0], 1).to_pylist()[0]
    return None


def explain(folder: Path, doc_id: str) -> dict[str, Any]:
    """The whole evidence for one document, structured; `render_explain` makes it readable."""
    found = find_row(folder, doc_id)
    if found is None:
        raise InputError(
            f"{folder}: no document with doc_id {doc_id!r} (doc_ids are 32 hex characters; "
            "find one with `commonweights audit lookup --url URL`)"
        )
    part, index, row = found
    meta = load_meta(folder)
    consent = json.loads(row["consent"] or "{}")
    evidence = json.loads(row["licence_evidence"] or "[]")
    policy = recorded_policy(meta, str(folder / MANIFEST_JSON))
    return {
        "doc_id": row["doc_id"],
        "url": row["url"],
        "domain": row["domain"],
        "used": row["decision"] == "kept",
        "decision": row["decision"],
        "reasons": [{"code": r, "meaning": reason_text(r)} for r in row["reasons"]],
        "source": {
            "file": row["source_file"],
            "offset": row["source_offset"],
            "record_id": row["record_id"],
            "crawl_date": row["crawl_date"],
            "http_status": row["http_status"],
            "content_type": row["content_type"],
        },
        "content": {
            "payload_sha256": row["payload_sha256"],
            "text_sha256": row["text_sha256"],
            "chars": row["chars"],
            "pii_redactions": {k: row[f"pii_{k}"] for k in ("email", "phone", "ip", "iban")},
        },
        "licence": {"spdx": row["licence"], "location": row["licence_location"], "evidence": evidence},
        "consent": consent,
        "policy": {
            "hash": row["policy_hash"],
            "mode": policy.mode.value,
            "agents_version": policy.agents_version,
        },
        "recheck": [m for _, m in check_row(row, policy, str(meta.get("policy_hash")))],
        "manifest": {"part": part, "row": index, "digest": (meta.get("digest") or {}).get("root")},
    }


def _compact(obj: Any) -> str:
    """`key value, …` for the non-empty leaves of nested evidence."""
    out: list[str] = []

    def walk(o: Any, path: str) -> None:
        if isinstance(o, dict):
            for k, v in o.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif o not in (None, [], {}, ""):
            out.append(f"{path} {json.dumps(o, ensure_ascii=False)}")

    walk(obj, "")
    return ", ".join(out) or "no signal"


def render_explain(e: dict[str, Any]) -> str:
    """A page of plain text an auditor or site owner can read."""
    lines = [
        f"Document {e['doc_id']}",
        f"  URL        {e['url']}",
        f"  used       {'YES — in the training data' if e['used'] else 'no'} (decision: {e['decision']})",
    ]
    if e["reasons"]:
        lines.append("  why not used:")
        lines += [f"    - {r['code']}: {r['meaning']}" for r in e["reasons"]]
    s = e["source"]
    lines += [
        f"  captured   {s['crawl_date']} — {s['file']} @ byte {s['offset']} ({s['record_id']})",
        f"  response   HTTP {s['http_status']}, {s['content_type']}",
    ]
    robots = e["consent"].get("robots") or {}
    if robots:
        verdicts = robots.get("verdicts") or {}
        denied = sorted(a for a, ok in verdicts.items() if ok is False)
        lines.append(
            f"  robots.txt snapshot {robots.get('snapshot_date')} (status {robots.get('status')}"
            + (f", fallback {robots['fallback']}" if robots.get("fallback") else "")
            + f"): {len(verdicts) - len(denied)} of {len(verdicts)} agents allowed"
            + (f"; disallowed: {', '.join(denied)}" if denied else "")
        )
    tdm = e["consent"].get("tdmrep") or {}
    if tdm:
        lines.append("  TDMRep     " + _compact(tdm))
    aipref = e["consent"].get("aipref")
    lines.append(
        f"  aipref     {json.dumps(aipref['content_usage']) if aipref else 'no Content-Usage header'}"
    )
    lines.append(
        f"  noai       meta robots {e['consent'].get('meta_robots') or []}, "
        f"X-Robots-Tag {e['consent'].get('x_robots_tag') or []}"
    )
    lic = e["licence"]
    lines.append(
        f"  licence    {lic['spdx'] or 'none stated'}"
        + (f" (from {lic['location']})" if lic["location"] else "")
    )
    for ev in lic["evidence"]:
        lines.append(f"    evidence {ev.get('location')}: {ev.get('href')} → {ev.get('spdx')}")
    c = e["content"]
    lines += [
        f"  text       {c['chars']} chars, sha256 {c['text_sha256']}; PII redacted {c['pii_redactions']}",
        f"  policy     {e['policy']['mode']} ({e['policy']['hash'][:16]}…, "
        f"agents {e['policy']['agents_version']})",
        f"  manifest   {e['manifest']['part']} row {e['manifest']['row']}, digest {e['manifest']['digest']}",
        "  re-decided from the evidence: " + ("consistent" if not e["recheck"] else "; ".join(e["recheck"])),
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- lookup answers


def lookup_answer(
    folder: Path, url: str | None = None, domain: str | None = None, doc_id: str | None = None
) -> dict[str, Any]:
    """`audit lookup`: used or not, decision, reasons, licence and robots snapshot date."""
    from data_governance.lookup import Index

    index = Index.of_manifest(folder)
    if url is not None:
        rows = index.url(url)
        tried = [url]
        if not rows:
            for alt in _url_variants(url):
                rows = index.url(alt)
                tried.append(alt)
                if rows:
                    break
        return {
            "query": {"url": url},
            "found": bool(rows),
            "used": any(r["decision"] == "kept" for r in rows),
            "documents": [_public(r) for r in rows],
            "tried": tried,
            "manifest_digest": index.digest,
        }
    if doc_id is not None:
        row = index.doc_id(doc_id)
        return {
            "query": {"doc_id": doc_id},
            "found": row is not None,
            "used": bool(row and row["decision"] == "kept"),
            "documents": [_public(row)] if row else [],
            "manifest_digest": index.digest,
        }
    if domain is None:
        raise InputError("audit lookup: give one of --url, --domain or --doc-id")
    ans = index.domain(domain)
    doms = ans["domains"]
    counts: Counter[str] = Counter()
    reasons_: Counter[str] = Counter()
    licences: Counter[str] = Counter()
    snaps: set[str] = set()
    for d in doms:
        counts.update(
            {"rows": d["rows"], "kept": d["kept"], "dropped": d["dropped"], "quarantined": d["quarantined"]}
        )
        reasons_.update(dict(zip(d["reason_names"] or [], d["reason_counts"] or [], strict=True)))
        licences.update(dict(zip(d["licence_names"] or [], d["licence_counts"] or [], strict=True)))
        snaps.update(s for s in d["robots_snapshots"] or [] if s)
    return {
        "query": {"domain": domain},
        "found": bool(doms),
        "used": counts["kept"] > 0,
        "counts": {k: counts[k] for k in ("rows", "kept", "dropped", "quarantined")},
        "reasons": dict(reasons_.most_common()),
        "licences": dict(licences.most_common()),
        "robots_snapshot_dates": sorted(snaps),
        "crawl_period": [
            min((d["first_crawl"] for d in doms), default=None),
            max((d["last_crawl"] for d in doms), default=None),
        ],
        "domains": [d["domain"] for d in doms],
        "examples": ans["examples"],
        "manifest_digest": index.digest,
    }


def _public(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "doc_id": r["doc_id"],
        "url": r["url"],
        "used": r["decision"] == "kept",
        "decision": r["decision"],
        "reasons": r["reasons"],
        "licence": r["licence"],
        "licence_location": r["licence_location"],
        "crawl_date": r["crawl_date"],
        "robots_snapshot_date": r["robots_snapshot"],
        "source": f"{r['source_file']}@{r['source_offset']}",
    }


def _url_variants(url: str) -> Iterable[str]:
    """The same page as people often type it: other scheme, trailing slash, www."""
    out = []
    for scheme_from, scheme_to in (("https://", "http://"), ("http://", "https://")):
        if url.startswith(scheme_from):
            out.append(scheme_to + url[len(scheme_from) :])
    out += [u[:-1] if u.endswith("/") else u + "/" for u in [url, *out]]
    out += [
        u.replace("://www.", "://", 1) if "://www." in u else u.replace("://", "://www.", 1) for u in [url]
    ]
    seen = {url}
    return [u for u in out if not (u in seen or seen.add(u))]  # type: ignore[func-returns-value]


def curation_assessor(
    policy: GovernanceConfig,
    robots: Path,
    takedowns: Path | None,
    warc_root: Path,
    tdmrep: Path | None = None,
) -> Any:
    """The curation's own per-record assessment (its Beam DoFn, run directly) under `policy`."""
    from commonweights.config import DataConfig, RunConfig
    from pipelines.curate import ApplyGovernancePolicy

    if not robots.is_file():
        raise InputError(
            f"{robots}: robots.txt snapshot not found (pass --robots, the snapshot the run used)"
        )
    if takedowns is not None and not takedowns.is_file():
        raise InputError(f"{takedowns}: takedown registry not found (pass the registry the run used)")
    if tdmrep is not None and not tdmrep.is_file():
        raise InputError(f"{tdmrep}: TDMRep well-known snapshot not found (pass the one the run used)")
    data: dict[str, Any] = {"warc": [warc_root], "robots": robots, "takedowns": takedowns}
    if tdmrep is not None:
        data["tdmrep"] = tdmrep
    cfg = RunConfig(
        name="audit-recheck",
        dir=warc_root,
        governance=policy,
        data=DataConfig(**data),
    )
    dofn = ApplyGovernancePolicy(cfg, str(robots), str(takedowns) if takedowns else None)
    dofn.setup()

    def assess(rec: Any) -> dict[str, Any]:
        return next(iter(dofn.process(rec))).row

    return assess


# ---------------------------------------------------------------- takedowns


def add_takedown(
    registry: Path,
    reason: str,
    date: str,
    domain: str | None = None,
    url_prefix: str | None = None,
    doc_id: str | None = None,
) -> dict[str, Any]:
    """Append one entry (kind, value, date, reason) to the registry JSONL; returns the entry."""
    import datetime as dt
    import re

    from commonweights.errors import ConfigError
    from data_governance.takedowns import Takedowns

    given = [(k, v) for k, v in (("domain", domain), ("url_prefix", url_prefix), ("doc_id", doc_id)) if v]
    if len(given) != 1:
        raise ConfigError("takedown add: give exactly one of --domain, --url-prefix or --doc-id")
    kind, value = given[0][0], given[0][1].strip()
    if kind == "domain":
        value = value.lower().removeprefix("www.").rstrip(".")
        if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)*", value):
            raise ConfigError(f"takedown add: {given[0][1]!r} is not a domain name (e.g. example.org)")
    elif kind == "url_prefix" and not value.startswith(("http://", "https://")):
        raise ConfigError(f"takedown add: URL prefix {value!r} must start with http:// or https://")
    elif kind == "doc_id":
        value = value.lower()
        if not re.fullmatch(r"[0-9a-f]{32}", value):
            raise ConfigError(f"takedown add: doc_id {value!r} is not 32 hex characters")
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        raise ConfigError(f"takedown add: date {date!r} is not an ISO date (YYYY-MM-DD)") from None
    if not reason.strip():
        raise ConfigError("takedown add: --reason must say why (it is published with the release)")
    existing = registry.read_text(encoding="utf-8") if registry.is_file() else ""
    try:
        Takedowns.parse(existing, str(registry))
    except ValueError as e:
        raise InputError(f"{e} — fix the registry before adding to it") from None
    entry = {"kind": kind, "value": value, "date": date, "reason": reason.strip()}
    registry.parent.mkdir(parents=True, exist_ok=True)
    with registry.open("a", encoding="utf-8") as fh:
        if existing and not existing.endswith("\n"):
            fh.write("\n")
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    count = len(Takedowns.parse(registry.read_text(encoding="utf-8"), str(registry)).entries)
    return {"registry": str(registry), "entry": entry, "entries": count}


# ---------------------------------------------------------------- derived documents


@lru_cache(maxsize=4096)
def _consent_facts(consent: str) -> tuple[str | None, tuple[str, ...]]:
    """(robots snapshot date, consent signals) of a row's consent JSON. Cached: the rows of one site
    mostly carry the same consent text, and parsing it (~2 KB) was most of what a row's facts cost."""
    data = json.loads(consent)
    robots = data.get("robots") or {}
    snap = str(robots["snapshot_date"]) if robots.get("snapshot_date") else None
    found: list[str] = []
    if robots.get("fallback"):
        found.append("robots.txt fallback (" + str(robots["fallback"]) + ")")
    if any(v is False for v in (robots.get("verdicts") or {}).values()):
        found.append("robots.txt disallows ≥1 AI agent")
    tdm = data.get("tdmrep") or {}
    if (tdm.get("header") or tdm.get("meta") or "").strip() == "1" or _mentions_reservation(tdm):
        found.append("TDMRep reservation")
    if data.get("aipref"):
        found.append("aipref Content-Usage header")
    if "noai" in (data.get("meta_robots") or []):
        found.append("noai in meta robots")
    if "noai" in (data.get("x_robots_tag") or []):
        found.append("noai in X-Robots-Tag")
    return snap, tuple(found)


class Facts:
    """What the derived documents need beyond manifest.json (dates, snapshots, signals, domain shares),
    accumulated row by row and mergeable: each manifest writer collects its part's, the run adds them."""

    def __init__(self) -> None:
        self.first: str | None = None  # crawl dates
        self.last: str | None = None
        self.kept_last: str | None = None
        self.snaps: set[str] = set()
        self.signals: Counter[str] = Counter()
        self.families: Counter[str] = Counter()
        self.chars: Counter[str] = Counter()
        self.types: Counter[str] = Counter()
        self.opted_out = 0

    def add(self, r: dict[str, Any]) -> None:
        date = r.get("crawl_date")
        if date:
            self.first = date if self.first is None else min(self.first, date)
            self.last = date if self.last is None else max(self.last, date)
            if r["decision"] == "kept":
                self.kept_last = date if self.kept_last is None else max(self.kept_last, date)
        self.types[r.get("content_type") or "(none)"] += 1
        self.opted_out += any(x.startswith(OPT_OUT) for x in r["reasons"] or [])
        for code in set(x.split(":", 1)[0] if ":" in x else x for x in r["reasons"] or []):
            self.families[code] += 1
        if r["decision"] == "kept":
            self.chars[r.get("domain") or "(none)"] += r.get("chars") or 0
        try:
            snap, found = _consent_facts(r.get("consent") or "{}")
            evidence = r.get("licence_evidence") or "[]"
            listed = bool(json.loads(evidence)) if evidence != "[]" else False  # (most rows: none)
        except ValueError:
            return
        if snap is not None:
            self.snaps.add(snap)
        self.signals.update(found)
        if listed:
            self.signals["licence link found"] += 1

    def merge(self, other: Facts) -> Facts:
        for mine in ("first", "last", "kept_last"):
            a, b = getattr(self, mine), getattr(other, mine)
            pick = min if mine == "first" else max
            setattr(self, mine, b if a is None else a if b is None else pick(a, b))
        self.snaps |= other.snaps
        for name in ("signals", "families", "chars", "types"):
            getattr(self, name).update(getattr(other, name))
        self.opted_out += other.opted_out
        return self

    def to_json(self) -> dict[str, Any]:
        out = {k: dict(v) if isinstance(v, Counter) else v for k, v in vars(self).items()}
        return {**out, "snaps": sorted(self.snaps)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Facts:
        out = cls()
        for k, v in data.items():
            kind = type(getattr(out, k))
            setattr(out, k, Counter(v) if kind is Counter else set(v) if kind is set else v)
        return out

    def result(self) -> dict[str, Any]:
        total = sum(self.chars.values()) or 1
        return {
            "crawl_period": {"first": self.first, "last": self.last},
            "kept_cutoff": self.kept_last,
            "robots_snapshots": sorted(self.snaps),
            "signals": dict(self.signals.most_common()),
            "opted_out_rows": self.opted_out,
            "reason_families": dict(self.families.most_common()),
            "content_types": dict(self.types.most_common()),
            "domain_shares": [
                {"domain": d, "kept_chars": c, "share": round(c / total, 6)}
                for d, c in self.chars.most_common()
            ],
        }


def derive_facts(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """What the derived documents need beyond manifest.json: dates, snapshots, signals, domain shares."""
    facts = Facts()
    for r in rows:
        facts.add(r)
    return facts.result()


def write_artefacts(
    cfg: Any,
    folder: Path,
    meta: dict[str, Any],
    facts: dict[str, Any],
    files: list[dict[str, Any]],
) -> dict[str, str]:
    """Write the lookup index, croissant.json, eu_summary.{md,json} and data_report.html into `folder`
    (the curate stage's temporary manifest folder, so they appear atomically with the manifest);
    `facts`: `Facts.result()` (or `derive_facts`) of the manifest's rows; `files`: path and sha256 of
    each documents file (`curate.finish_parts`, hashed as they were written)."""
    from data_governance import croissant, data_report, eu_summary, lookup

    info = {**meta, **facts, "document_files": files}
    lookup.build(folder, meta["digest"]["root"])
    (folder / "croissant.json").write_text(
        json.dumps(croissant.build(cfg, info), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    summary = eu_summary.build(cfg, info)
    (folder / "eu_summary.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (folder / "eu_summary.md").write_text(eu_summary.render_markdown(summary), encoding="utf-8")
    (folder / "data_report.html").write_text(data_report.render(cfg, info), encoding="utf-8")
    return {
        name: str(folder / name)
        for name in ("index", "croissant.json", "eu_summary.json", "eu_summary.md", "data_report.html")
    }
