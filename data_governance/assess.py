"""One input record → one manifest row: a pure function of (record, evidence, policy).

Every consent and licence signal is gathered for every document and every denying reason is listed,
not only the first, so an auditor sees that a page was both opted out and unlicensed, and a later policy
can re-decide from the stored evidence. Global stages (deduplication) add their reasons afterwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import trafilatura

from commonweights.config import GovernanceConfig, GovernanceMode, canonical_json
from data_governance import ids, licence, pii, quality, reasons, signals
from data_governance.reasons import Decision, Reason
from data_governance.robots import RobotsRule
from data_governance.takedowns import Takedowns

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain"})  # WET conversion records carry extracted text


@dataclass(frozen=True)
class RawRecord:
    """A response-like WARC record as read, or the place where reading failed (`error` set)."""

    source_file: str
    offset: int
    record_id: str = ""
    uri: str = ""
    warc_date: str = ""
    http_status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()  # HTTP headers, names lower-cased, in order
    payload: bytes = b""
    error: str | None = None  # short machine reason, e.g. "http_headers", "truncated"
    error_detail: str = ""

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name]
        return ", ".join(values) if values else None


@dataclass
class Assessed:
    row: dict[str, Any]
    text: str | None = None  # redacted text, set while the document can still be kept
    extra: dict[str, Any] = field(default_factory=dict)


def domain_of(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return host.lower().removeprefix("www.")


def mime_and_charset(content_type: str | None) -> tuple[str, str | None]:
    if not content_type:
        return "", None
    parts = [p.strip() for p in content_type.split(";")]
    charset = None
    for p in parts[1:]:
        k, _, v = p.partition("=")
        if k.strip().lower() == "charset" and v:
            charset = v.strip().strip('"').lower()
    return parts[0].lower(), charset


def decode(payload: bytes, charset: str | None) -> str:
    for enc in (charset, "utf-8"):
        if not enc:
            continue
        try:
            return payload.decode(enc)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("utf-8", errors="replace")


def extract_text(html: str) -> str:
    # deduplicate=False: trafilatura's dedup cache is per process, which makes output depend on sharding.
    text = trafilatura.extract(
        html, include_comments=False, include_tables=True, deduplicate=False, favor_recall=True
    )
    return text or ""


def base_row(rec: RawRecord, policy_hash: str) -> dict[str, Any]:
    return {
        "doc_id": "",
        "url": rec.uri,
        "domain": domain_of(rec.uri),
        "source_file": rec.source_file,
        "source_offset": rec.offset,
        "record_id": rec.record_id,
        "crawl_date": rec.warc_date,
        "http_status": rec.http_status,
        "content_type": None,
        "payload_sha256": ids.sha256(rec.payload) if rec.payload else None,
        "text_sha256": None,
        "chars": 0,
        "decision": Decision.dropped.value,
        "reasons": [],
        "licence": None,
        "licence_location": None,
        "licence_evidence": "[]",
        "consent": "{}",
        "pii_email": 0,
        "pii_phone": 0,
        "pii_ip": 0,
        "policy_hash": policy_hash,
    }


class Assessor:
    """Applies the governance policy to records; holds only per-run lookups (robots, takedowns)."""

    def __init__(self, policy: GovernanceConfig, policy_hash: str, robots: RobotsRule, takedowns: Takedowns):
        self.policy = policy
        self.policy_hash = policy_hash
        self.robots = robots
        self.takedowns = takedowns

    def assess(self, rec: RawRecord) -> Assessed:
        row = base_row(rec, self.policy_hash)
        if rec.error:
            row["doc_id"] = ids.malformed_id(rec.source_file, rec.offset)
            row["decision"] = Decision.quarantined.value
            row["reasons"] = [reasons.malformed(rec.error)]
            row["consent"] = canonical_json({"error": rec.error_detail[:500]})
            return Assessed(row)
        payload_digest = row["payload_sha256"] or ids.sha256(b"")
        row["doc_id"] = ids.doc_id(rec.uri, rec.warc_date, payload_digest)
        mime, charset = mime_and_charset(rec.header("content-type"))
        row["content_type"] = mime or None
        denied: list[str] = []

        # Record-level gates: what is not a 2xx HTML/text page is not a document.
        if rec.http_status is not None and not 200 <= rec.http_status < 300:
            denied.append(reasons.http_status(rec.http_status))
        if mime not in HTML_TYPES and mime not in TEXT_TYPES:
            denied.append(reasons.content_type(mime or "unknown"))

        # Consent signals, all of them, cheapest first.
        robots_ev = self.robots.evaluate(row["domain"], rec.uri)
        denied.extend(robots_ev.reasons)
        if self.takedowns.matches(row["doc_id"], rec.uri, row["domain"]):
            denied.append(Reason.takedown.value)
        consent: dict[str, Any] = {"robots": robots_ev.to_json()}
        tdm_header = rec.header("tdm-reservation")
        usage = signals.parse_content_usage(rec.header("content-usage") or "")
        xrobots = signals.header_tokens(rec.header("x-robots-tag") or "")
        for category in signals.AIPREF_TRAINING:
            if usage.get(category) == "n":
                denied.append(reasons.aipref(category))
        if "noai" in xrobots:
            denied.append(Reason.header_noai.value)

        html_ev = signals.HtmlEvidence()
        text = ""
        if mime in HTML_TYPES and not denied_by_record(denied):
            html = decode(rec.payload, charset)
            html_ev = signals.parse_html(html)
            text = extract_text(html)
        elif mime in TEXT_TYPES and not denied_by_record(denied):
            text = decode(rec.payload, charset)
        tdm = (tdm_header or html_ev.tdm_reservation or "").strip()
        if tdm == "1":
            denied.append(Reason.tdm_reserved.value)
        if "noai" in html_ev.robots_meta:
            denied.append(Reason.meta_noai.value)
        consent.update(
            {
                "tdmrep": {
                    "header": tdm_header,
                    "meta": html_ev.tdm_reservation,
                    "policy": rec.header("tdm-policy") or html_ev.tdm_policy,
                },
                "aipref": {"vocab": signals.AIPREF_VOCAB, "content_usage": usage} if usage else None,
                "meta_robots": html_ev.robots_meta,
                "x_robots_tag": xrobots,
            }
        )
        row["consent"] = canonical_json(consent)

        # Licence: evidence by location; the page licence is the strongest page-level one.
        page = licence.page_licence(html_ev.licences)
        row["licence_evidence"] = canonical_json([e.to_json() for e in html_ev.licences])
        if page is not None:
            row["licence"], row["licence_location"] = page.spdx, page.location
        if self.policy.mode == GovernanceMode.open_licence:
            if page is None or page.spdx is None:
                denied.append(Reason.licence_missing.value)
            elif not licence.allowed(page.spdx, self.policy.licence_allowlist):
                denied.append(reasons.licence_not_allowed(page.spdx))

        # Text: PII redaction, then quality on what would be kept.
        if not denied_by_record(denied):
            if not text.strip():
                denied.append(Reason.empty_text.value)
            else:
                if self.policy.redact_pii:
                    text, counts = pii.redact(text)
                    row["pii_email"], row["pii_phone"], row["pii_ip"] = (
                        counts["email"],
                        counts["phone"],
                        counts["ip"],
                    )
                row["text_sha256"] = ids.sha256(text.encode())
                row["chars"] = len(text)
                denied.extend(reasons.quality(name) for name in quality.check(text, self.policy.quality))
        row["reasons"] = denied
        row["decision"] = Decision.dropped.value if denied else Decision.kept.value
        return Assessed(row, text if not denied else None)


def denied_by_record(denied: list[str]) -> bool:
    """True once the record itself is not a page (status or type): there is no HTML to look at."""
    return any(r.startswith(("http_status:", "content_type:")) for r in denied)


def parse_json_column(value: str) -> Any:
    return json.loads(value) if value else None
