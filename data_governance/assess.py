"""One input record → one manifest row: a pure function of (record, evidence, policy).

Every consent and licence signal is gathered for every document and every denying reason is listed,
not only the first, so an auditor sees that a page was both opted out and unlicensed, and a later policy
can re-decide from the stored evidence. Global stages (deduplication) add their reasons afterwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from commonweights.config import GovernanceConfig, GovernanceMode, QualityMode, canonical_json
from data_governance import extract, ids, langid, licence, pii, quality, reasons, signals
from data_governance.reasons import Decision, Reason
from data_governance.robots import RobotsRule
from data_governance.signals import TdmSnapshot
from data_governance.takedowns import Takedowns

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain"})  # WET conversion records carry extracted text
_NO_EVIDENCE = canonical_json([])  # (most pages state no licence)


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

    def header_map(self) -> dict[str, str]:
        """Every header as `header` gives it (repeated names' values joined by ", "), in one pass:
        for readers of several headers."""
        joined: dict[str, str] = {}
        for k, v in self.headers:
            joined[k] = f"{joined[k]}, {v}" if k in joined else v
        return joined


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


def extractor_for(policy: GovernanceConfig) -> str:
    """The text extractor the quality mode uses: resiliparse (fast) or trafilatura (quality-first)."""
    return extract.TRAFILATURA if policy.quality.mode == QualityMode.datatrove else extract.RESILIPARSE


def engine_record(policy: GovernanceConfig) -> dict[str, Any]:
    """What produced the text and the quality verdicts, with versions (manifest.json `engine`)."""
    from importlib.metadata import version

    reference = policy.quality.mode == QualityMode.datatrove
    return {
        "html_parser": extract.info(extract.RESILIPARSE).to_json(),  # the one parse every signal reads
        "extractor": extract.info(extractor_for(policy)).to_json(),
        "quality": (
            {"mode": "datatrove", "name": "datatrove", "version": version("datatrove")}
            if reference
            else {"mode": "fast", "name": "data_governance.quality", "blocks": list(policy.quality.blocks)}
        ),
    }


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
        "pii_iban": 0,
        "policy_hash": policy_hash,
    }


class Assessor:
    """Applies the governance policy to records; holds only per-run lookups (robots, TDMRep
    well-known files, takedowns)."""

    def __init__(
        self,
        policy: GovernanceConfig,
        policy_hash: str,
        robots: RobotsRule,
        takedowns: Takedowns,
        tdmrep: dict[str, TdmSnapshot] | None = None,
    ):
        self.policy = policy
        self.policy_hash = policy_hash
        self.robots = robots
        self.takedowns = takedowns
        self.tdmrep = tdmrep or {}
        self.extractor = extractor_for(policy)

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
        header = rec.header_map().get
        mime, charset = mime_and_charset(header("content-type"))
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
        takedown = self.takedowns.match(row["doc_id"], rec.uri, row["domain"])
        if takedown is not None:
            denied.append(Reason.takedown.value)
        consent: dict[str, Any] = {}  # ("robots" is added encoded, below)
        if takedown is not None:
            consent["takedown"] = takedown.to_json()
        aipref_header = signals.aipref_decision(header("content-usage") or "", "header")
        aipref_robots = {
            agent: d
            for agent, rule in robots_ev.content_usage.items()
            if (d := signals.aipref_decision(rule.value, "robots")) is not None
        }
        for d in [aipref_header, *aipref_robots.values()]:
            if d is not None and d.training == "n" and d.decided_by:
                code = reasons.aipref(d.decided_by)
                if code not in denied:
                    denied.append(code)
        xrobots = signals.header_tokens(header("x-robots-tag") or "")
        if "noai" in xrobots:
            denied.append(Reason.header_noai.value)

        html_ev = signals.HtmlEvidence()
        text = ""
        failure: extract.ExtractionFailed | None = None
        if mime in HTML_TYPES and not denied_by_record(denied):
            html = decode(rec.payload, charset)
            tree = extract.parse(html)  # the one parse: evidence first, then the text
            html_ev = signals.evidence(tree, html)
            try:
                text = extract.main_text(self.extractor, html, tree, self.policy.quality.extract_timeout_s)
            except extract.ExtractionFailed as e:
                failure = e
        elif mime in TEXT_TYPES and not denied_by_record(denied):
            text = decode(rec.payload, charset)
        tdm = signals.tdm_decision(
            header("tdm-reservation"),
            header("tdm-policy"),
            html_ev.tdm_reservation,
            html_ev.tdm_policy,
            rec.uri,
            self.tdmrep.get(row["domain"]),
        )
        if tdm.reserved:
            denied.append(Reason.tdm_reserved.value)
        if "noai" in html_ev.robots_meta:
            denied.append(Reason.meta_noai.value)
        consent.update(
            {
                "tdmrep": {
                    # header/meta/policy as first recorded (schema 1), then the full decision.
                    "header": header("tdm-reservation"),
                    "meta": html_ev.tdm_reservation,
                    "policy": tdm.policy,
                    "decision": tdm.to_json(),
                },
                "aipref": (
                    {
                        "vocab": signals.AIPREF_VOCAB,
                        "content_usage": aipref_header.prefs if aipref_header else {},
                        "header": aipref_header.to_json() if aipref_header else None,
                        "robots": {a: d.to_json() for a, d in aipref_robots.items()},
                    }
                    if aipref_header or aipref_robots
                    else None
                ),
                "meta_robots": html_ev.robots_meta,
                "x_robots_tag": xrobots,
                "noai": {
                    "meta": [t for t in signals.NOAI_TOKENS if t in html_ev.robots_meta],
                    "header": [t for t in signals.NOAI_TOKENS if t in xrobots],
                },
            }
        )
        if html_ev.parse_error:
            consent["html_parse_error"] = html_ev.parse_error[:200]
        if failure is not None:
            consent["extract_error"] = {"extractor": self.extractor, "detail": failure.detail[:200]}
        row["consent"] = _with_encoded(consent, "robots", self.robots.evidence_json(robots_ev))

        # Licence: evidence by location; the page licence is the strongest page-level one. Where the
        # page states several licences, open-licence mode needs every one of them on the allowlist.
        page = licence.page_licence(html_ev.licences)
        row["licence_evidence"] = (
            canonical_json([e.to_json() for e in html_ev.licences]) if html_ev.licences else _NO_EVIDENCE
        )
        if page is not None:
            row["licence"], row["licence_location"] = page.spdx, page.location
        if self.policy.mode == GovernanceMode.open_licence:
            if page is None or page.spdx is None:
                denied.append(Reason.licence_missing.value)
            else:
                stated = list(dict.fromkeys(e.spdx for e in licence.page_level(html_ev.licences) if e.spdx))
                for spdx in stated:
                    if not licence.allowed(spdx, self.policy.licence_allowlist):
                        denied.append(reasons.licence_not_allowed(spdx))

        # Text: PII redaction, then quality on what would be kept.
        if failure is not None:
            # Never lost: the page is quarantined with the reason, to be re-extracted or inspected.
            denied.append(failure.reason)
        elif not denied_by_record(denied):
            if not text.strip():
                denied.append(Reason.empty_text.value)
            else:
                if self.policy.redact_pii:
                    text, counts = pii.redact(text)
                    row.update({f"pii_{kind}": n for kind, n in counts.items()})
                text, failed = quality.evaluate(text, self.policy.quality)  # reference mode may trim
                denied.extend(reasons.quality(name) for name in failed)
                if self.policy.languages and not failed:
                    _, other = langid.check(text, self.policy.languages, self.policy.min_language_score)
                    if other is not None:
                        denied.append(langid.reason(other))
                row["text_sha256"] = ids.sha256(text.encode())
                row["chars"] = len(text)
        row["reasons"] = denied
        row["decision"] = Decision.dropped.value if denied else Decision.kept.value
        if failure is not None:
            row["decision"] = Decision.quarantined.value
        return Assessed(row, text if not denied else None)


def consent_licence_reasons(
    consent: dict[str, Any], evidence: list[dict[str, Any]], policy: GovernanceConfig
) -> set[str]:
    """The consent and licence reasons that the stored evidence of a row gives under `policy`.

    The same decisions `Assessor.assess` makes, re-derived from the manifest's `consent` and
    `licence_evidence` columns alone, so an auditor can re-check a row (robots fallbacks and verdicts,
    takedown, TDMRep in any carrier, aipref from the header or robots.txt, noai, licences).
    """
    want: set[str] = set()
    robots = consent.get("robots") or {}
    fallback = robots.get("fallback")
    if fallback:
        kind, _, applied = str(fallback).partition(":")
        if applied == "disallow":
            want.add(Reason.robots_missing.value if kind == "missing" else Reason.robots_unavailable.value)
    else:
        verdicts = robots.get("verdicts") or {}
        want |= {reasons.robots(a) for a in policy.agents if verdicts.get(a) is False}
    if consent.get("takedown"):
        want.add(Reason.takedown.value)
    tdm = consent.get("tdmrep") or {}
    decision = tdm.get("decision") or {}
    if decision.get("reserved") or str(tdm.get("header") or tdm.get("meta") or "").strip() == "1":
        want.add(Reason.tdm_reserved.value)
    aipref = consent.get("aipref") or {}
    for d in [aipref.get("header"), *(aipref.get("robots") or {}).values()]:
        if d and d.get("training") == "n" and d.get("decided_by"):
            want.add(reasons.aipref(d["decided_by"]))
    if "noai" in (consent.get("x_robots_tag") or []):
        want.add(Reason.header_noai.value)
    if "noai" in (consent.get("meta_robots") or []):
        want.add(Reason.meta_noai.value)
    if policy.mode == GovernanceMode.open_licence:
        ev = [licence.Evidence(e.get("location", ""), e.get("href", ""), e.get("spdx")) for e in evidence]
        stated = list(dict.fromkeys(e.spdx for e in licence.page_level(ev) if e.spdx))
        if not stated:
            want.add(Reason.licence_missing.value)
        want |= {
            reasons.licence_not_allowed(s) for s in stated if not licence.allowed(s, policy.licence_allowlist)
        }
    return want


def _with_encoded(obj: dict[str, Any], key: str, encoded: str) -> str:
    """`canonical_json({**obj, key: value})` where `encoded` is `canonical_json(value)`: the same text
    (sorted keys, no spaces), spliced at the key's place."""
    before = canonical_json({k: v for k, v in obj.items() if k < key})
    after = canonical_json({k: v for k, v in obj.items() if k > key})
    parts = [p for p in (before[1:-1], f"{_key_json(key)}:{encoded}", after[1:-1]) if p]
    return "{" + ",".join(parts) + "}"


@cache
def _key_json(key: str) -> str:
    return canonical_json(key)


def denied_by_record(denied: list[str]) -> bool:
    """True once the record itself is not a page (status or type): there is no HTML to look at."""
    return any(r.startswith(("http_status:", "content_type:")) for r in denied)


def parse_json_column(value: str) -> Any:
    return json.loads(value) if value else None
