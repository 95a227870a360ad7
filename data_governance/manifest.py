"""The manifest: one row per input record, its Parquet schema, counts and the Merkle digest.

Digest construction (docs/manifest.md): rows sorted by doc_id; leaf = sha256(0x00 || canonical JSON of
the row); node = sha256(0x01 || left || right); an odd node at the end of a level is promoted
unchanged; the root of an empty manifest is sha256 of the empty string. Canonical JSON: keys sorted,
no whitespace, UTF-8, lists kept in order.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from commonweights.config import canonical_json

SCHEMA_VERSION = 2  # 2: pii_iban

SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("url", pa.string()),
        ("domain", pa.string()),
        ("source_file", pa.string()),
        ("source_offset", pa.int64()),
        ("record_id", pa.string()),
        ("crawl_date", pa.string()),
        ("http_status", pa.int32()),
        ("content_type", pa.string()),
        ("payload_sha256", pa.string()),
        ("text_sha256", pa.string()),
        ("chars", pa.int64()),
        ("decision", pa.string()),
        ("reasons", pa.list_(pa.string())),
        ("licence", pa.string()),
        ("licence_location", pa.string()),
        ("licence_evidence", pa.string()),  # JSON list of {location, href, spdx}
        ("consent", pa.string()),  # JSON: robots snapshot + per-agent verdicts, tdmrep, aipref, noai
        ("pii_email", pa.int32()),
        ("pii_phone", pa.int32()),
        ("pii_ip", pa.int32()),
        ("pii_iban", pa.int32()),
        ("policy_hash", pa.string()),
    ]
)
COLUMNS = tuple(SCHEMA.names)


def leaf(row: dict[str, Any]) -> bytes:
    return hashlib.sha256(b"\x00" + canonical_json({k: row[k] for k in COLUMNS}).encode()).digest()


def merkle_root(leaves: list[bytes]) -> str:
    if not leaves:
        return hashlib.sha256(b"").hexdigest()
    level = leaves
    while len(level) > 1:
        nxt = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


def digest(rows: Iterable[dict[str, Any]]) -> str:
    ordered = sorted(rows, key=lambda r: r["doc_id"])
    return merkle_root([leaf(r) for r in ordered])


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts per decision, reason, licence and domain (what manifest.json and the reports show)."""
    decisions: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    licences: Counter[str] = Counter()
    domains: dict[str, dict[str, int]] = {}
    pii: Counter[str] = Counter()
    for r in rows:
        decisions[r["decision"]] += 1
        reasons.update(r["reasons"])
        if r["decision"] == "kept":
            licences[r["licence"] or "none"] += 1
            pii.update({kind: r[f"pii_{kind}"] for kind in ("email", "phone", "ip", "iban")})
        d = domains.setdefault(r["domain"] or "(none)", {"total": 0, "kept": 0})
        d["total"] += 1
        d["kept"] += r["decision"] == "kept"
    return {
        "rows": len(rows),
        "counts": {k: decisions.get(k, 0) for k in ("kept", "dropped", "quarantined")},
        "reasons": dict(sorted(reasons.items())),
        "licences": dict(sorted(licences.items())),
        "domains": dict(sorted(domains.items())),
        "pii_redactions": dict(sorted(pii.items())),
        "kept_chars": sum(r["chars"] for r in rows if r["decision"] == "kept"),
    }
