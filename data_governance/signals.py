"""Consent and licence evidence from one HTML parse and the HTTP headers.

Signals: TDMRep (`tdm-reservation` header or meta), IETF aipref `Content-Usage` header, `noai` in meta
robots or X-Robots-Tag, and licence links by location (see licence.py). Every signal is gathered for
every document so that an auditor sees all of them and a later policy can re-decide from the evidence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import lxml.html
from lxml import etree

from data_governance.licence import Evidence, spdx_from_url

# aipref vocabulary version the parser implements; categories whose "n" denies training a generative LM.
AIPREF_VOCAB = "draft-ietf-aipref-vocab-01"
AIPREF_TRAINING = ("train-ai", "train-genai")


@dataclass
class HtmlEvidence:
    """What one HTML parse yields for every signal."""

    tdm_reservation: str | None = None  # meta content, "1" reserves
    tdm_policy: str | None = None
    robots_meta: list[str] = field(default_factory=list)  # tokens of <meta name=robots>
    licences: list[Evidence] = field(default_factory=list)
    parse_error: str | None = None


def parse_html(html: str) -> HtmlEvidence:
    ev = HtmlEvidence()
    if not html.strip():
        return ev
    try:
        root = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError) as e:
        ev.parse_error = str(e) or type(e).__name__
        return ev
    for meta in root.iter("meta"):
        name = (meta.get("name") or "").strip().lower()
        content = (meta.get("content") or "").strip()
        if name == "tdm-reservation":
            ev.tdm_reservation = content
        elif name == "tdm-policy":
            ev.tdm_policy = content
        elif name == "robots":
            ev.robots_meta.extend(t.strip().lower() for t in content.split(",") if t.strip())
        elif name in ("dc.rights", "dcterms.license", "dc.license", "dcterms.rights", "license"):
            spdx = spdx_from_url(content)
            if spdx:
                ev.licences.append(Evidence("meta", content, spdx))
    for script in root.iter("script"):
        if (script.get("type") or "").lower() == "application/ld+json" and script.text:
            for href in _json_ld_licences(script.text):
                ev.licences.append(Evidence("json_ld", href, spdx_from_url(href)))
    for a in root.iter("a", "link"):
        href = (a.get("href") or "").strip()
        if not href:
            continue
        rels = (a.get("rel") or "").lower().split()
        spdx = spdx_from_url(href)
        if "license" in rels:
            ev.licences.append(Evidence("link_rel", href, spdx))
        elif spdx and a.tag == "a":
            ev.licences.append(Evidence("footer" if _in_footer(a) else "body_link", href, spdx))
    return ev


def _in_footer(el: Any) -> bool:
    for anc in el.iterancestors():
        if anc.tag == "footer":
            return True
        marks = f"{anc.get('id') or ''} {anc.get('class') or ''}".lower()
        if "footer" in marks:
            return True
    return False


def _json_ld_licences(text: str) -> list[str]:
    try:
        data = json.loads(text)
    except ValueError:
        return []
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "license" and isinstance(v, str):
                    found.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(data)
    return found


def parse_content_usage(value: str) -> dict[str, str]:
    """`Content-Usage: train-ai=n, search=y` → {"train-ai": "n", "search": "y"} (unknown keys kept)."""
    prefs: dict[str, str] = {}
    for item in value.split(","):
        key, sep, val = item.strip().partition("=")
        if sep and key.strip():
            prefs[key.strip().lower()] = val.strip().strip('"').lower()[:1]
    return prefs


def header_tokens(value: str) -> list[str]:
    """Directive tokens of an X-Robots-Tag value (an optional `agent:` prefix is dropped)."""
    out = []
    for item in value.split(","):
        token = item.strip().lower()
        if ":" in token:
            token = token.split(":", 1)[1].strip()
        if token:
            out.append(token)
    return out
