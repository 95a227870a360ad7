"""The EU AI Act public summary of training content (Art. 53(1)(d)), generated from the manifest.

It follows the sections of the European Commission's template of July 2025 ("Template for the
Public Summary of Training Content for general-purpose AI models"): 1 general information (provider,
model, modalities and size, languages, cut-off date), 2 data sources (public datasets, private
third-party data, crawled data with crawler, period, robots.txt behaviour and top domains by share,
user data, synthetic data, other), 3 data processing (respect of text-and-data-mining reservations,
removal of illegal content, other). Every value comes from manifest.json, the rows (via
`audit.derive_facts`) or the run config; dates are ISO 8601. `eu_summary.json` is the data and
`eu_summary.md` its rendering; both carry the summary version and the manifest digest.
"""

from __future__ import annotations

import math
from typing import Any

from commonweights.config import RunConfig

SUMMARY_VERSION = "1.0"
TEMPLATE = (
    "European Commission, Template for the Public Summary of Training Content for general-purpose AI "
    "models (July 2025)"
)
TOKEN_RANGES = (
    "less than 1 billion tokens",
    "1 billion to 10 trillion tokens",
    "more than 10 trillion tokens",
)


def size_range(kept_chars: int) -> tuple[str, str]:
    """The template's token range, and how it was decided, from the kept characters.

    Byte-level BPE yields at most one token per UTF-8 byte and a character is at most 4 bytes, so
    4 × characters bounds the tokens from above; the usual ~4 characters per token is the estimate.
    """
    upper = 4 * kept_chars
    estimate = math.ceil(kept_chars / 4)
    if upper < 1e9:
        return TOKEN_RANGES[0], f"at most {upper:,} tokens (4 × {kept_chars:,} characters)"
    index = 0 if estimate < 1e9 else 1 if estimate <= 1e13 else 2
    return TOKEN_RANGES[index], f"estimated {estimate:,} tokens (~4 characters per token)"


def top_domains(shares: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The template's list: the top 10% of domains by size of content (at least one)."""
    n = max(1, math.ceil(len(shares) * 0.10))
    return shares[:n]


def build(cfg: RunConfig, info: dict[str, Any]) -> dict[str, Any]:
    """The summary as data; `info` is manifest.json plus audit.derive_facts(rows)."""
    counts, policy = info["counts"], info["policy"]
    period = info["crawl_period"]
    cutoff = info.get("kept_cutoff") or period.get("last")
    size, size_basis = size_range(int(info.get("kept_chars") or 0))
    public = cfg.data.source_name
    crawler = cfg.data.crawler or (
        "commonweights sample-crawl (embedded, generated crawl)"
        if cfg.data.sample
        else "not stated in the run config (data.crawler)"
    )
    reasons = info.get("reasons") or {}
    opt_out = {
        k: v
        for k, v in sorted(reasons.items())
        if k.startswith(("robots:", "tdm_reserved", "aipref:", "meta:noai", "header:noai"))
    }
    crawled = {
        "used": public is None,
        "crawler": crawler,
        "purpose": "collect web text for language-model pretraining",
        "behaviour": _robots_behaviour(policy),
        "period": {"first": _day(period.get("first")), "last": _day(period.get("last"))},
        "robots_snapshot_dates": info.get("robots_snapshots") or [],
        "content": f"HTML and plain-text web pages ({_types(info)}); {info['rows']} records read, "
        f"{counts['kept']} kept",
        "top_domains": top_domains(info.get("domain_shares") or []),
        "domains_total": len(info.get("domain_shares") or []),
    }
    return {
        "summary_version": SUMMARY_VERSION,
        "template": TEMPLATE,
        "manifest_digest": info["digest"]["root"],
        "policy_hash": info["policy_hash"],
        "general_information": {
            "provider": {"name": cfg.release.provider, "contact": None, "authorised_representative": None},
            "model": {
                "name": cfg.release.model_name,
                "version": cfg.release.version,
                "versioned_name": f"{cfg.release.model_name}-{cfg.release.version}",
                "dependencies": None,
                "date_placed_on_market": None,
            },
            "modalities": ["text"],
            "training_data_size": {
                "text": size,
                "basis": size_basis,
                "documents": counts["kept"],
                "characters": info.get("kept_chars"),
            },
            "types_of_content": "web pages (text extracted from HTML, PII redacted)",
            "latest_data_collection": {
                "date": _day(cutoff),
                "month": (cutoff or "")[:7] or None,
                "continuous": False,
            },
            "languages": _languages(policy, reasons),
            "other_characteristics": f"{info['rows']} input records, "
            f"{crawled['domains_total']} domains with kept text; every record has a manifest row "
            "(kept, dropped or quarantined)",
        },
        "data_sources": {
            "public_datasets": {
                "used": public is not None,
                "datasets": [{"name": public, "modality": "text", "share_of_public_text": 1.0}]
                if public
                else [],
                "other": None,
            },
            "private_third_party": {"commercially_licensed": None, "other": None, "used": False},
            "crawled": crawled,
            "user_data": {"used": False},
            "synthetic_data": {"used": False},
            "other_sources": {"used": False},
        },
        "data_processing": {
            "tdm_reservations": {
                "measures": _measures(policy),
                "documents_dropped_for_opt_out": info.get("opted_out_rows", 0),
                "reason_counts": opt_out,
                "takedowns": reasons.get("takedown", 0),
            },
            "illegal_content": {
                "measures": "No dedicated classifier for illegal content ran in this release; pages are "
                "kept only from the crawled sources above after the consent, licence, quality and "
                "deduplication filters, and the takedown registry removes reported content from the "
                "next release.",
                "pii": {
                    "redaction": bool(policy.get("redact_pii")),
                    "redactions": info.get("pii_redactions") or {},
                },
            },
            "other": "Per-document decisions, reasons and evidence: manifest digest "
            f"{info['digest']['root']} "
            "(`commonweights audit verify`).",
        },
    }


def _languages(policy: dict[str, Any], reasons: dict[str, int]) -> dict[str, Any]:
    """What the policy and the rows say about the languages of the kept text."""
    dropped = {k.split(":", 1)[1]: v for k, v in reasons.items() if k.startswith("language:")}
    if policy.get("languages"):
        return {
            "description": ", ".join(policy["languages"]),
            "basis": "language identification (fastText lid.176) keeps only these languages "
            f"(min score {policy.get('min_language_score')}); dropped as other languages: "
            + (", ".join(f"{k}: {v}" for k, v in sorted(dropped.items())) or "none"),
        }
    quality = policy.get("quality") or {}
    if (quality.get("min_stop_words") or 0) > 0:
        return {
            "description": "predominantly English",
            "basis": "no language filter in the policy, but the quality filter requires English stop words "
            f"(quality.min_stop_words={quality.get('min_stop_words')})",
        }
    return {"description": "not determined", "basis": "no language filter in the policy"}


def _robots_behaviour(policy: dict[str, Any]) -> str:
    return (
        f"robots.txt is honoured for the AI-training agents of list {policy.get('agents_version')} "
        f"({len(policy.get('agents') or [])} agents incl. '*'), judged against a dated snapshot taken "
        "after the crawl, so later opt-outs apply retroactively; RFC 9309 fallbacks: "
        f"4xx → {policy.get('robots_4xx')}, "
        f"5xx/unreachable → {policy.get('robots_5xx')}, no snapshot → {policy.get('robots_missing')}"
    )


def _measures(policy: dict[str, Any]) -> list[str]:
    out = [
        _robots_behaviour(policy),
        "TDMRep: `tdm-reservation: 1` in an HTTP header or HTML meta tag drops the document",
        "IETF aipref: `Content-Usage` with train-ai=n or train-genai=n drops the document",
        "`noai` in <meta name=robots> or X-Robots-Tag drops the document",
        "takedown registry (domains, URL prefixes, document ids) applied on every curation",
    ]
    if policy.get("mode") == "open-licence":
        out.append(
            "open-licence mode: only documents with an allowlisted licence are kept "
            f"({', '.join(policy.get('licence_allowlist') or [])})"
        )
    return out


def _types(info: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in list((info.get("content_types") or {}).items())[:5])


def _day(stamp: str | None) -> str | None:
    return stamp[:10] if stamp else None


def render_markdown(s: dict[str, Any]) -> str:
    g, d, p = s["general_information"], s["data_sources"], s["data_processing"]
    c = d["crawled"]
    size, tdm = g["training_data_size"], p["tdm_reservations"]
    yn = {True: "Yes", False: "No"}
    lines = [
        f"# Public summary of training content — {g['model']['versioned_name']}",
        "",
        f"Summary version {s['summary_version']}, following the {s['template']}. Generated from the "
        f"curation manifest (digest `{s['manifest_digest']}`, policy `{s['policy_hash'][:16]}…`).",
        "",
        "## 1. General information",
        "### 1.1 Provider identification",
        f"- Provider: {g['provider']['name']}",
        f"- Contact details: {g['provider']['contact'] or 'not set in the run config'}",
        f"- Authorised representative: {g['provider']['authorised_representative'] or 'not applicable'}",
        "### 1.2 Model identification",
        f"- Versioned model name: {g['model']['versioned_name']}",
        f"- Model dependencies: {g['model']['dependencies'] or 'none (trained from scratch)'}",
        f"- Date of placement on the Union market: {g['model']['date_placed_on_market'] or 'not yet placed'}",
        "### 1.3 Modalities, overall training data size and other characteristics",
        f"- Modalities: {', '.join(g['modalities'])}",
        f"- Training data size (text): {size['text']} — {size['basis']}; "
        f"{size['documents']} documents, {size['characters']} characters",
        f"- Types of content: {g['types_of_content']}",
        f"- Latest date of data collection: {g['latest_data_collection']['date']} "
        f"(continuous collection: {yn[g['latest_data_collection']['continuous']]})",
        f"- Languages: {g['languages']['description']} ({g['languages']['basis']})",
        f"- Other characteristics: {g['other_characteristics']}",
        "",
        "## 2. List of data sources",
        "### 2.1 Publicly available datasets",
        f"- Used: {yn[d['public_datasets']['used']]}",
        *[f"- {x['name']} (modality {x['modality']})" for x in d["public_datasets"]["datasets"]],
        "### 2.2 Private non-publicly available datasets obtained from third parties",
        f"- Used: {yn[d['private_third_party']['used']]}",
        "### 2.3 Data crawled and scraped from online sources",
        f"- Crawlers used by or for the provider: {yn[c['used']]}",
        f"- Crawler: {c['crawler']}",
        f"- Purpose: {c['purpose']}",
        f"- Crawler behaviour: {c['behaviour']}",
        f"- Period of data collection: {c['period']['first']} to {c['period']['last']}; robots.txt snapshot "
        f"date(s): {', '.join(c['robots_snapshot_dates']) or 'none'}",
        f"- Content and sources: {c['content']}",
        f"- Most relevant domains (top 10% of {c['domains_total']} by kept text):",
        "",
        "| domain | kept characters | share |",
        "|---|---:|---:|",
        *[f"| {x['domain']} | {x['kept_chars']} | {100 * x['share']:.2f}% |" for x in c["top_domains"]],
        "",
        "### 2.4 User data",
        f"- Used: {yn[d['user_data']['used']]}",
        "### 2.5 Synthetic data",
        f"- Used: {yn[d['synthetic_data']['used']]}",
        "### 2.6 Other sources of data",
        f"- Used: {yn[d['other_sources']['used']]}",
        "",
        "## 3. Data processing aspects",
        "### 3.1 Respect of reservation of rights from the text and data mining exception",
        *[f"- {m}" for m in p["tdm_reservations"]["measures"]],
        "- Opt-out reasons recorded: "
        + (", ".join(f"{k}: {v}" for k, v in tdm["reason_counts"].items()) or "none"),
        f"- Documents dropped for an opt-out signal: {tdm['documents_dropped_for_opt_out']}",
        f"- Documents removed by takedown: {tdm['takedowns']}",
        "### 3.2 Removal of illegal content",
        f"- {p['illegal_content']['measures']}",
        f"- Personal data: redaction {'on' if p['illegal_content']['pii']['redaction'] else 'off'}; "
        f"redactions {p['illegal_content']['pii']['redactions']}",
        "### 3.3 Other information",
        f"- {p['other']}",
        "",
    ]
    return "\n".join(lines)
