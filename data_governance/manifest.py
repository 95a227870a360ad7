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


class MerkleStream:
    """`merkle_root` of leaves fed one at a time, in O(log n) memory: a stack of complete subtrees
    (level, hash); two of the same level join as soon as they meet. At the end the subtrees left join
    from the right, which is where the level-by-level construction promotes its odd nodes (the same
    root: tested against `merkle_root` for every n up to several hundred)."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, bytes]] = []
        self.count = 0

    def add(self, leaf: bytes) -> None:
        self.count += 1
        level, node = 0, leaf
        while self.stack and self.stack[-1][0] == level:
            node = hashlib.sha256(b"\x01" + self.stack.pop()[1] + node).digest()
            level += 1
        self.stack.append((level, node))

    def root(self) -> str:
        if not self.stack:
            return hashlib.sha256(b"").hexdigest()
        node = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            node = hashlib.sha256(b"\x01" + left + node).digest()
        return node.hex()


def digest(rows: Iterable[dict[str, Any]]) -> str:
    ordered = sorted(rows, key=lambda r: r["doc_id"])
    return merkle_root([leaf(r) for r in ordered])


class Summary:
    """Counts per decision, reason, licence and domain (what manifest.json and the reports show),
    accumulated row by row and mergeable: each writer counts its part, the parts' counts add up."""

    def __init__(self) -> None:
        self.rows = 0
        self.decisions: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.licences: Counter[str] = Counter()
        self.domains: dict[str, dict[str, int]] = {}
        self.pii: Counter[str] = Counter()
        self.kept_chars = 0

    def add(self, r: dict[str, Any]) -> None:
        self.rows += 1
        self.decisions[r["decision"]] += 1
        self.reasons.update(r["reasons"])
        kept = r["decision"] == "kept"
        if kept:
            self.licences[r["licence"] or "none"] += 1
            self.pii.update({kind: r[f"pii_{kind}"] for kind in ("email", "phone", "ip", "iban")})
            self.kept_chars += r["chars"]
        d = self.domains.setdefault(r["domain"] or "(none)", {"total": 0, "kept": 0})
        d["total"] += 1
        d["kept"] += kept

    def merge(self, other: Summary) -> Summary:
        self.rows += other.rows
        self.kept_chars += other.kept_chars
        for mine, theirs in (
            (self.decisions, other.decisions),
            (self.reasons, other.reasons),
            (self.licences, other.licences),
            (self.pii, other.pii),
        ):
            mine.update(theirs)
        for name, counts in other.domains.items():
            d = self.domains.setdefault(name, {"total": 0, "kept": 0})
            d["total"] += counts["total"]
            d["kept"] += counts["kept"]
        return self

    def to_json(self) -> dict[str, Any]:
        return {k: dict(v) if isinstance(v, Counter) else v for k, v in vars(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Summary:
        out = cls()
        for k, v in data.items():
            setattr(out, k, Counter(v) if isinstance(getattr(out, k), Counter) else v)
        return out

    def result(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "counts": {k: self.decisions.get(k, 0) for k in ("kept", "dropped", "quarantined")},
            "reasons": dict(sorted(self.reasons.items())),
            "licences": dict(sorted(self.licences.items())),
            "domains": dict(sorted(self.domains.items())),
            "pii_redactions": dict(sorted(self.pii.items())),
            "kept_chars": self.kept_chars,
        }


def summarize(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts per decision, reason, licence and domain (what manifest.json and the reports show)."""
    summary = Summary()
    for r in rows:
        summary.add(r)
    return summary.result()
