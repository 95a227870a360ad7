"""Consent and licence evidence from the HTTP headers, one HTML parse and the site's well-known files.

Signals and their standards:
- TDMRep (W3C TDM Reservation Protocol, final community group report): the `tdm-reservation` and
  `tdm-policy` HTTP headers, the same names as HTML meta, and `/.well-known/tdmrep.json` rules whose
  `location` patterns are matched against the URL path.
- IETF aipref: `Content-Usage` preferences (HTTP header or a robots.txt rule) in a versioned vocabulary.
- `noai` / `noimageai` tokens in `<meta name="robots">` or the `X-Robots-Tag` header.
- Licence links by location (see licence.py).
Every signal is gathered for every document so that an auditor sees all of them and a later policy can
re-decide from the evidence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from resiliparse.parse.html import DOMNode, HTMLTree, NodeType

from data_governance.licence import LICENCE_MARKUP, Evidence, find_licences
from data_governance.robots import matches, normalise_pattern, url_path

# ---------------------------------------------------------------- IETF aipref


@dataclass(frozen=True)
class Vocabulary:
    """One published version of the aipref vocabulary: each category and the category it refines."""

    version: str
    parents: dict[str, str | None]
    training: str  # the category that covers what we do (training a generative language model)

    def effective(self, prefs: dict[str, str], category: str) -> tuple[str | None, str | None]:
        """(y/n, the category that stated it) for `category`, inheriting from broader categories."""
        node: str | None = category
        while node is not None:
            if node in prefs:
                return prefs[node], node
            node = self.parents.get(node)
        return None, None


# Drafts change; each version the parser knows is kept, and the evidence records which one was used.
VOCABULARIES = {
    "draft-ietf-aipref-vocab-01": Vocabulary(
        "draft-ietf-aipref-vocab-01",
        {"bots": None, "train-ai": "bots", "train-genai": "train-ai", "search": "bots", "ai-use": "bots"},
        "train-genai",
    ),
}
AIPREF_VOCAB = "draft-ietf-aipref-vocab-01"
# Kept for callers that list the categories whose "n" denies training a generative LM.
AIPREF_TRAINING = ("bots", "train-ai", "train-genai")


def parse_content_usage(value: str) -> dict[str, str]:
    """`Content-Usage: train-ai=n, search=y` → {"train-ai": "n", "search": "y"} (a Structured Field
    dictionary; parameters after `;` are ignored, members that are not y/n are dropped)."""
    prefs: dict[str, str] = {}
    for item in value.split(","):
        member = item.split(";", 1)[0].strip()
        key, sep, val = member.partition("=")
        key, val = key.strip().lower(), val.strip().strip('"').lower()
        if sep and key and val in ("y", "n"):
            prefs[key] = val
    return prefs


@dataclass(frozen=True)
class AiprefDecision:
    vocab: str
    source: str  # "header" or "robots"
    prefs: dict[str, str]
    training: str | None  # effective y/n for the vocabulary's training category
    decided_by: str | None  # the category that stated it
    unknown: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "vocab": self.vocab,
            "source": self.source,
            "content_usage": self.prefs,
            "training": self.training,
            "decided_by": self.decided_by,
            "unknown": list(self.unknown),
        }


def aipref_decision(value: str, source: str, vocab: str = AIPREF_VOCAB) -> AiprefDecision | None:
    if vocab not in VOCABULARIES:
        raise ValueError(f"unknown aipref vocabulary {vocab!r}; known: {', '.join(VOCABULARIES)}")
    prefs = parse_content_usage(value)
    if not prefs:
        return None
    v = VOCABULARIES[vocab]
    training, by = v.effective(prefs, v.training)
    unknown = tuple(k for k in prefs if k not in v.parents)
    return AiprefDecision(vocab, source, prefs, training, by, unknown)


# ---------------------------------------------------------------- TDMRep


def _reservation(value: Any) -> int | None:
    text = str(value).strip() if value is not None else ""
    return int(text) if text in ("0", "1") else None


@dataclass(frozen=True)
class TdmRule:
    location: str
    reservation: int | None
    policy: str | None
    index: int  # position in tdmrep.json

    def to_json(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "tdm-reservation": self.reservation,
            "tdm-policy": self.policy,
            "index": self.index,
        }


@dataclass
class TdmRepFile:
    """A site's `/.well-known/tdmrep.json`: rules matched on the URL path. The longest matching
    `location` decides (as in RFC 9309); between equally long matches a reservation wins."""

    rules: list[TdmRule] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def parse(cls, text: str | bytes) -> TdmRepFile:
        try:
            data = json.loads(text)
        except ValueError as e:
            return cls([], f"not JSON: {e}")
        if not isinstance(data, list):
            return cls([], "expected a JSON array of rules")
        rules = []
        for i, item in enumerate(data):
            if not isinstance(item, dict) or not isinstance(item.get("location"), str):
                continue
            policy = item.get("tdm-policy")
            rules.append(
                TdmRule(
                    item["location"].strip(),
                    _reservation(item.get("tdm-reservation")),
                    str(policy) if policy else None,
                    i,
                )
            )
        return cls(rules)

    def lookup(self, url: str) -> TdmRule | None:
        path = url_path(url)
        best: TdmRule | None = None
        for r in self.rules:
            pattern = normalise_pattern(r.location if r.location.startswith(("/", "*")) else "/" + r.location)
            if not matches(pattern, path):
                continue
            if (
                best is None
                or len(r.location) > len(best.location)
                or (len(r.location) == len(best.location) and r.reservation == 1 and best.reservation != 1)
            ):
                best = r
        return best


@dataclass(frozen=True)
class TdmSnapshot:
    """One domain's /.well-known/tdmrep.json as fetched (status 404: the site has none)."""

    domain: str
    fetched_at: str
    status: int
    file: TdmRepFile

    @classmethod
    def from_json(cls, line: str, where: str) -> TdmSnapshot:
        try:
            d = json.loads(line)
            status = int(d["status"])
            body = str(d.get("body") or "")
            return cls(
                str(d["domain"]).lower().removeprefix("www."),
                str(d["fetched_at"]),
                status,
                TdmRepFile.parse(body) if 200 <= status < 300 else TdmRepFile(),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(
                f"{where}: bad tdmrep snapshot line ({e}); expected JSON with domain, fetched_at, status "
                "and body (the /.well-known/tdmrep.json text)"
            ) from None


@dataclass(frozen=True)
class TdmDecision:
    reserved: bool
    header: int | None
    meta: int | None
    well_known: TdmRule | None
    policy: str | None
    snapshot: str | None  # fetched_at of the well-known snapshot used, if any
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "reserved": self.reserved,
            "header": self.header,
            "meta": self.meta,
            "well_known": self.well_known.to_json() if self.well_known else None,
            "well_known_fetched_at": self.snapshot,
            "well_known_error": self.error,
            "policy": self.policy,
        }


def tdm_decision(
    header: str | None,
    header_policy: str | None,
    meta: str | None,
    meta_policy: str | None,
    url: str,
    snapshot: TdmSnapshot | None,
) -> TdmDecision:
    """Combine the three carriers. Any carrier that reserves TDM rights reserves them: the most
    protective reading, so a site-wide reservation is not undone by a page that omits or zeroes it."""
    h, m = _reservation(header), _reservation(meta)
    rule = snapshot.file.lookup(url) if snapshot else None
    w = rule.reservation if rule else None
    policy = header_policy or meta_policy or (rule.policy if rule else None)
    return TdmDecision(
        reserved=1 in (h, m, w),
        header=h,
        meta=m,
        well_known=rule,
        policy=policy,
        snapshot=snapshot.fetched_at if snapshot else None,
        error=snapshot.file.error if snapshot else None,
    )


# ---------------------------------------------------------------- HTML


@dataclass
class HtmlEvidence:
    """What one HTML parse yields for every signal."""

    tdm_reservation: str | None = None  # meta content, "1" reserves
    tdm_policy: str | None = None
    robots_meta: list[str] = field(default_factory=list)  # tokens of <meta name=robots>
    licences: list[Evidence] = field(default_factory=list)
    parse_error: str | None = None


class Element:
    """The part of lxml's element interface that licence.find_licences reads, over a resiliparse node,
    so the licence finder runs on the page's one parse."""

    __slots__ = ("node",)

    def __init__(self, node: DOMNode):
        self.node: Any = node  # (resiliparse's type stubs do not list the DOM methods)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Element) and other.node == self.node

    def __hash__(self) -> int:
        return hash(self.node)

    @property
    def tag(self) -> str:
        return self.node.tag or ""

    @property
    def text(self) -> str:
        return self.node.text or ""

    def get(self, name: str) -> str | None:
        value = self.node.getattr(name)
        return str(value) if value is not None else None

    def itertext(self) -> Iterator[str]:
        yield self.text

    def getparent(self) -> Element | None:
        parent = self.node.parent
        return Element(parent) if parent is not None and parent.type == NodeType.ELEMENT else None

    def iterancestors(self) -> Iterator[Element]:
        parent = self.getparent()
        while parent is not None:
            yield parent
            parent = parent.getparent()

    def iter(self, *tags: str) -> Iterator[Element]:
        """This element (if it matches) and its descendants, in document order."""
        if not tags or self.node.tag in tags:
            yield self
        yield from self.select(", ".join(tags) if tags else "*")

    def select(self, css: str) -> Iterator[Element]:
        """The descendants matching a CSS selector list, in document order, each once."""
        for node in nodes(self.node.query_selector_all(css)):
            yield Element(node)


def nodes(collection: Any) -> tuple[DOMNode, ...]:
    """The nodes of a resiliparse DOMCollection, in document order. Resiliparse 2.0 builds the node
    objects of the whole collection for each item that iteration or indexing asks for (quadratic:
    ~0.1 s for a page with a few hundred links); a slice builds each of them once."""
    return tuple(collection[:])


# Pre-filters on the page source: every signal below needs one of these strings, so a page without
# them has no such evidence and its tree is not walked (building Python nodes is the costly part).
# Where a link's text could name a licence ("CC BY-SA 4.0", "CC0"): the source holds "CC" as a word
# start (case-sensitive, as licence._CC_TEXT), followed by 0, BY or anything that ends the word — also
# where markup, an entity or a line break stands between the name's pieces (`<abbr>CC</abbr> BY`,
# `CC&nbsp;BY`). A page without a licence word is searched for licence evidence only if it holds one;
# a page with a licence word but without it has only its LICENCE_MARKUP elements read: most pages that
# mention "licence" somewhere (a script's licence comment, a footer word) have many links and no CC name.
_CC_WORD = re.compile(r"\bCC(?:0|BY|\b)")


try:
    from data_governance._speedups import html_hints as _compiled_hints
except ImportError:  # not built (no C compiler at install): the substring tests below serve, slower
    _compiled_hints = None  # type: ignore[assignment]


def _hints(html: str) -> tuple[bool, bool]:
    """(may hold a robots/TDM meta tag, may hold licence evidence): the substring tests of
    `_hints_reference` in one compiled pass where built (~70 µs less per page)."""
    if _compiled_hints is None:
        return _hints_reference(html)
    meta, lic, cc = _compiled_hints(html)
    return meta, lic or (cc and bool(_CC_WORD.search(html)))


def _hints_reference(html: str) -> tuple[bool, bool]:
    """`_hints` in Python: the reference of the compiled pre-scan, and its fallback."""
    low = html.lower()
    meta = "robots" in low or "tdm" in low
    lic = (
        "licen" in low
        or "creativecommons" in low
        or ".rights" in low
        # (a plain substring test first: the pattern, led by `\b`, is tried at every position)
        or ("CC" in html and bool(_CC_WORD.search(html)))
    )
    return meta, lic


def evidence(tree: HTMLTree, html: str | None = None) -> HtmlEvidence:
    """Every HTML consent and licence signal, read from the page's one parse (`html`, the source the
    tree was parsed from, lets pages without any hint of a signal skip the tree walk)."""
    ev = HtmlEvidence()
    root = tree.document
    if root is None:
        return ev
    meta_hint, licence_hint = _hints(html) if html is not None else (True, True)
    # elements (the stubs type collection items as the base Node, which lacks getattr)
    metas: tuple[Any, ...] = nodes(root.query_selector_all("meta[name]")) if meta_hint else ()
    for meta in metas:
        name = (meta.getattr("name") or "").strip().lower()
        content = (meta.getattr("content") or "").strip()
        if name in ("tdm-reservation", "tdm:reservation"):
            ev.tdm_reservation = content
        elif name in ("tdm-policy", "tdm:policy"):
            ev.tdm_policy = content
        elif name == "robots":
            ev.robots_meta.extend(t.strip().lower() for t in content.split(",") if t.strip())
    if licence_hint:
        top = root.query_selector("html")
        if top is not None:
            link_text = html is None or ("CC" in html and _CC_WORD.search(html) is not None)
            el = Element(top)
            ev.licences = find_licences(el, None if link_text else el.select(LICENCE_MARKUP))
    return ev


def parse_html(html: str) -> HtmlEvidence:
    """Parse a page and read its evidence (assess.py parses once and shares the tree instead)."""
    if not html.strip():
        return HtmlEvidence()
    return evidence(HTMLTree.parse(html), html)


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


NOAI_TOKENS = ("noai", "noimageai")
