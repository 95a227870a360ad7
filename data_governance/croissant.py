"""Croissant 1.0 (JSON-LD) description of the curated dataset, with the Responsible-AI (RAI) fields.

Written to `curate/manifest/croissant.json` beside the parts it describes: the manifest parts (one
FileObject each, with its sha256, and a FileSet over them) and the kept documents (a FileSet of
JSONL). Two record sets: `manifest` (one record per input record, kept or not) and `documents` (the
kept text). The RAI fields are generated from the manifest and the recorded policy, so they state
what was done to this data and not what a template says.
"""

from __future__ import annotations

from typing import Any

from commonweights.config import RunConfig
from data_governance import manifest

CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
RAI_CONFORMS_TO = "http://mlcommons.org/croissant/RAI/1.0"

CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "equivalentProperty": "cr:equivalentProperty",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

_TYPES = {"string": "sc:Text", "int64": "sc:Integer", "int32": "sc:Integer"}
_DESCRIPTIONS = {
    "doc_id": "Stable id: sha256 of target URI, WARC date and payload digest, truncated to 32 hex.",
    "url": "WARC-Target-URI.",
    "domain": "Host of the URL, lower-case, without www.",
    "source_file": "WARC file, relative to the inputs' common folder.",
    "source_offset": "Byte offset of the record in its WARC file.",
    "decision": "kept, dropped or quarantined.",
    "licence": "SPDX id of the page licence, if stated.",
    "consent": "JSON: robots.txt snapshot and verdicts per agent, TDMRep, aipref, noai.",
    "policy_hash": "sha256 of the governance policy the row was decided under.",
}


def build(cfg: RunConfig, meta: dict[str, Any]) -> dict[str, Any]:
    """The Croissant document for a manifest folder; `meta` is manifest.json plus `facts.derive`."""
    counts, policy = meta["counts"], meta["policy"]
    reasons = meta.get("reasons") or {}
    denied = sum(
        v for k, v in reasons.items() if k.startswith(("robots:", "tdm_", "aipref:", "meta:", "header:"))
    )
    dates = _crawl_period(meta)
    parts = meta.get("parts") or []
    distribution: list[dict[str, Any]] = [
        {
            "@type": "cr:FileObject",
            "@id": f"manifest-part-{i}",
            "name": p["path"],
            "contentUrl": p["path"],
            "encodingFormat": "application/x-parquet",
            "sha256": p["sha256"],
        }
        for i, p in enumerate(parts)
    ]
    distribution.append(
        {
            "@type": "cr:FileSet",
            "@id": "manifest-parts",
            "name": "manifest-parts",
            "encodingFormat": "application/x-parquet",
            "includes": "part-*.parquet",
        }
    )
    docs = meta.get("document_files") or []
    distribution += [
        {
            "@type": "cr:FileObject",
            "@id": f"documents-part-{i}",
            "name": f"documents/{d['path']}",
            "description": "Kept documents, PII redacted: doc_id, url, domain, licence, text.",
            "contentUrl": f"../documents/{d['path']}",
            "encodingFormat": "application/jsonlines",
            "sha256": d["sha256"],
        }
        for i, d in enumerate(docs)
    ]
    fields = [
        {
            "@type": "cr:Field",
            "@id": f"manifest/{name}",
            "name": name,
            "description": _DESCRIPTIONS.get(name, f"Manifest column {name} (docs/manifest.md)."),
            "dataType": _TYPES[str(manifest.SCHEMA.field(name).type)],
            "source": {"fileSet": {"@id": "manifest-parts"}, "extract": {"column": name}},
        }
        for name in manifest.COLUMNS
        if str(manifest.SCHEMA.field(name).type) in _TYPES
    ]
    doc_fields = [
        {
            "@type": "cr:Field",
            "@id": f"documents/{name}",
            "name": name,
            "dataType": "sc:Text",
            # one documents file per run (the curate stage writes a single shard)
            "source": {"fileObject": {"@id": "documents-part-0"}, "extract": {"column": name}},
        }
        for name in ("doc_id", "url", "domain", "licence", "text")
    ]
    name = f"{cfg.release.model_name}-training-data"
    mode = policy.get("mode")
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": [CONFORMS_TO, RAI_CONFORMS_TO],
        "name": name,
        "description": (
            f"Web text curated by commonweights for {cfg.release.model_name} {cfg.release.version}: "
            f"{counts['kept']} documents kept out of {meta['rows']} input records under the `{mode}` policy. "
            f"Every input record has a manifest row with its decision and reasons; manifest digest "
            f"{meta['digest']['root']} (merkle-sha256 over rows by doc_id)."
        ),
        "version": cfg.release.version,
        "license": "https://spdx.org/licenses/" + _dataset_licence(meta),
        "url": "https://github.com/commonweights",
        "creator": {"@type": "sc:Organization", "name": cfg.release.provider},
        "datePublished": dates[1][:10] if dates[1] else None,
        "citeAs": f"{cfg.release.provider}. {name} {cfg.release.version}. "
        f"Manifest digest {meta['digest']['root']}.",
        "keywords": ["web text", "consent", "robots.txt", "TDMRep", "manifest"],
        "isLiveDataset": False,
        "distribution": distribution,
        "recordSet": [
            {
                "@type": "cr:RecordSet",
                "@id": "manifest",
                "name": "manifest",
                "description": "One record per input WARC record, kept or not (docs/manifest.md).",
                "key": {"@id": "manifest/doc_id"},
                "field": fields,
            },
        ]
        + (
            [
                {
                    "@type": "cr:RecordSet",
                    "@id": "documents",
                    "name": "documents",
                    "description": "The kept, PII-redacted text.",
                    "field": doc_fields,
                }
            ]
            if len(docs) == 1
            else []
        ),
        "rai:dataCollection": (
            f"WARC captures from {_crawler(cfg)}; {meta['rows']} response records read, "
            f"{len(meta.get('domains') or {})} domains, crawl dates {dates[0]} to {dates[1]}."
        ),
        "rai:dataCollectionType": ["Web Scraping"],
        "rai:dataCollectionTimeframe": [d for d in dates if d],
        "rai:dataPreprocessingProtocol": [
            f"robots.txt evaluated from a dated snapshot for the agents {policy.get('agents_version')} "
            f"(RFC 9309; 4xx {policy.get('robots_4xx')}, 5xx {policy.get('robots_5xx')}, missing "
            f"{policy.get('robots_missing')})",
            "TDMRep tdm-reservation (header, meta), IETF aipref Content-Usage, noai in meta robots and "
            "X-Robots-Tag: any opt-out drops the document",
            f"licence detection by location; policy mode {mode}"
            + (
                f", allowlist {', '.join(policy.get('licence_allowlist') or [])}"
                if mode == "open-licence"
                else ""
            ),
            "takedown registry (domains, URL prefixes, doc_ids) applied on every run",
            "text extraction (trafilatura), Gopher-style quality filters, exact and MinHash "
            "near-duplicate removal",
            f"PII redaction: {'on' if policy.get('redact_pii') else 'off'}",
            f"{counts['dropped']} dropped, {counts['quarantined']} quarantined (unreadable), "
            f"{denied} opt-out reasons recorded",
        ],
        "rai:personalSensitiveInformation": (
            "Web pages can contain personal data. Email addresses, phone numbers and public IP addresses are "
            f"replaced in kept text ({_pii(meta)}); names, postal addresses and other personal or sensitive "
            "information are not removed."
        ),
        "rai:dataLimitations": (
            "Only pages whose owners did not opt out (as seen in the snapshot) are kept, which skews the "
            "data towards sites without AI-crawler rules; robots.txt is judged at the snapshot date, not "
            "the crawl date; licence detection covers Creative Commons marks only; quality filters are "
            "English-centric."
        ),
        "rai:dataBiases": (
            "Domain shares follow the crawl, not the population of the web; the top domains are listed in "
            "the EU training-content summary (eu_summary.md) beside this file."
        ),
        "rai:dataUseCases": "Pretraining of language models; auditing of consent decisions.",
        "rai:dataReleaseMaintenancePlan": (
            "Takedowns filed with `commonweights takedown add` are honoured by the next curation; "
            "`commonweights audit diff` lists what each release removed and why."
        ),
        "rai:hasSyntheticData": False,
    }


def _crawl_period(meta: dict[str, Any]) -> tuple[str | None, str | None]:
    period = meta.get("crawl_period") or {}
    return period.get("first"), period.get("last")


def _crawler(cfg: RunConfig) -> str:
    crawler = getattr(cfg.data, "crawler", None)
    if crawler:
        return str(crawler)
    return (
        "the embedded sample crawl (commonweights sample-crawl)"
        if cfg.data.sample
        else "the configured WARC files"
    )


def _pii(meta: dict[str, Any]) -> str:
    pii = meta.get("pii_redactions") or {}
    return ", ".join(f"{k}: {v}" for k, v in pii.items()) or "none found"


def _dataset_licence(meta: dict[str, Any]) -> str:
    mode = (meta.get("policy") or {}).get("mode")
    # Each document keeps its own licence (manifest column `licence`); the compilation is offered under
    # the most permissive terms only in open-licence mode, otherwise per-document terms apply.
    return "CC-BY-4.0" if mode == "open-licence" else "NOASSERTION"
