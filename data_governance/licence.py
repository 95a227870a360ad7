"""Licences: Creative Commons URLs and mentions to SPDX ids, and which licence a page states, by where
the evidence sits.

Locations, strongest first: `link_rel` (`<link rel=license>` or `<a rel=license>` outside a media
credit), `meta` (`license`, `dc.rights`, `dcterms.license`, ...), `json_ld` (`license` of a page
node), `footer` (a licence link in a footer), `footer_text` (a versioned licence named in a footer
link's text). Weak evidence never licenses a page: `body_link` (a licence link in the body, such as an
image or embed credit), `json_ld_media` (`license` of an ImageObject/VideoObject/...).

SPDX mapping: every CC licence code and version (1.0 to 4.0, incl. the legacy `by-nd-nc` order), the
CC0 and Public Domain Mark tools, the old public-domain certification (`CC-PDDC`), `deed.xx` and
`legalcode[.xx]` URLs. A ported licence gets its own SPDX id where SPDX lists the port
(`by-sa/3.0/de/` → `CC-BY-SA-3.0-DE`), else the id of its licence and version, with the port recorded.
A CC URL whose code or version is unknown yields evidence with no id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_CC_URL = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*:)?(?://)?(?:www\.)?creativecommons\.org/"
    r"(?P<kind>licenses|licences|publicdomain)/(?P<code>[a-z+-]+)/?(?P<rest>[^?#]*)",
    re.IGNORECASE,
)
_VERSION = re.compile(r"^(\d\.\d)(?:/|$)")
_VERSIONS = {
    "by": ("1.0", "2.0", "2.5", "3.0", "4.0"),
    "by-sa": ("1.0", "2.0", "2.5", "3.0", "4.0"),
    "by-nd": ("1.0", "2.0", "2.5", "3.0", "4.0"),
    "by-nc": ("1.0", "2.0", "2.5", "3.0", "4.0"),
    "by-nc-sa": ("1.0", "2.0", "2.5", "3.0", "4.0"),
    "by-nc-nd": ("2.0", "2.5", "3.0", "4.0"),
    "by-nd-nc": ("1.0",),  # CC's 1.0 spelling of BY-NC-ND
}
# Versions that exist only as ports (e.g. 2.1 for Japan and a few others).
_PORT_ONLY_VERSIONS = ("2.1",)
# Ported licences on the SPDX list (license-list-XML), by (code, version, port).
_SPDX_PORTS = {
    ("by", "2.5", "au"),
    ("by", "3.0", "at"),
    ("by", "3.0", "au"),
    ("by", "3.0", "de"),
    ("by", "3.0", "igo"),
    ("by", "3.0", "nl"),
    ("by", "3.0", "us"),
    ("by-nc", "3.0", "de"),
    ("by-nc-nd", "3.0", "de"),
    ("by-nc-nd", "3.0", "igo"),
    ("by-nc-sa", "2.0", "de"),
    ("by-nc-sa", "2.0", "fr"),
    ("by-nc-sa", "2.0", "uk"),
    ("by-nc-sa", "3.0", "de"),
    ("by-nc-sa", "3.0", "igo"),
    ("by-nd", "3.0", "de"),
    ("by-sa", "2.0", "uk"),
    ("by-sa", "2.1", "jp"),
    ("by-sa", "3.0", "at"),
    ("by-sa", "3.0", "de"),
    ("by-sa", "3.0", "igo"),
}
_LANG = re.compile(r"^(?:deed|legalcode)\.([a-z]{2,3}(?:[-_][a-z0-9]{2,8})?)$", re.IGNORECASE)

# "CC BY-NC-SA 4.0", "CC-BY 3.0", "CC0 1.0": a licence named in link text.
_CC_TEXT = re.compile(
    r"\bCC[ -]?(?P<code>0|BY(?:[ -](?:NC|SA|ND)){0,2})(?![A-Za-z-])(?:[ -]?(?P<version>[1-4]\.[05]))?"
)

LOCATIONS = ("link_rel", "meta", "json_ld", "footer", "footer_text", "body_link", "json_ld_media")
PAGE_LEVEL = frozenset(LOCATIONS[:5])


@dataclass(frozen=True)
class CcLicence:
    """What a Creative Commons URL names."""

    spdx: str | None  # None: a CC URL with an unknown code or version
    family: str | None  # CC-BY-SA, CC0, CC-PDM, ... (None when unknown)
    version: str | None
    port: str | None = None
    language: str | None = None


def _family(code: str) -> str:
    if code == "by-nd-nc":
        code = "by-nc-nd"
    return "CC-" + code.upper()


def parse_cc_url(url: str) -> CcLicence | None:
    """The licence a creativecommons.org URL names, or None for any other URL."""
    m = _CC_URL.match(url.strip())
    if not m:
        return None
    kind, code = m.group("kind").lower(), m.group("code").lower()
    rest = m.group("rest").strip("/")
    parts = [p for p in rest.split("/") if p]
    vm = _VERSION.match(rest)
    version = vm.group(1) if vm else None
    tail = parts[1:] if version else parts
    port = (
        tail[0].lower()
        if tail and not _LANG.match(tail[0]) and tail[0].lower() not in ("legalcode",)
        else None
    )
    language = None
    for p in tail:
        lm = _LANG.match(p)
        if lm:
            language = lm.group(1).lower()
    if kind == "publicdomain" or code in ("zero", "mark", "publicdomain"):
        if code == "zero" and version == "1.0":
            return CcLicence("CC0-1.0", "CC0", version, None, language)
        if code == "mark" and version == "1.0":
            return CcLicence("CC-PDM-1.0", "CC-PDM", version, None, language)
        if code == "publicdomain" and kind != "publicdomain":
            return CcLicence("CC-PDDC", "CC-PDDC", None, None, language)
        return CcLicence(None, None, version, None, language)
    if code not in _VERSIONS or version is None:
        return CcLicence(None, None, version, port, language)
    family = _family(code)
    if port and (code, version, port) in _SPDX_PORTS:
        return CcLicence(f"{family}-{version}-{port.upper()}", family, version, port, language)
    if version in _VERSIONS[code] or (version in _PORT_ONLY_VERSIONS and port):
        return CcLicence(f"{family}-{version}", family, version, port, language)
    return CcLicence(None, family, version, port, language)


def spdx_from_url(url: str) -> str | None:
    """SPDX id of a Creative Commons licence or tool URL (any version, port or deed), else None."""
    cc = parse_cc_url(url)
    return cc.spdx if cc else None


def licence_from_text(text: str) -> tuple[str | None, str | None]:
    """(SPDX id or None, family or None) of a licence named in text such as "CC BY-SA 4.0"."""
    m = _CC_TEXT.search(text)
    if not m:
        return None, None
    code = m.group("code").upper().replace(" ", "-")
    version = m.group("version")
    if code == "0":
        return ("CC0-1.0" if version in (None, "1.0") else None), "CC0"
    elements = code.split("-")[1:]
    ordered = "-".join(["BY", *[e for e in ("NC", "SA", "ND") if e in elements]])
    family = "CC-" + ordered
    if ordered == "BY-SA-ND" or ordered == "BY-NC-SA-ND":
        return None, None
    if version and version in _VERSIONS.get(ordered.lower(), ()):
        return f"{family}-{version}", family
    return None, family


@dataclass(frozen=True)
class Evidence:
    location: str
    href: str
    spdx: str | None
    family: str | None = None
    port: str | None = None
    language: str | None = None
    text: str | None = None  # for footer_text: the words that named the licence

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"location": self.location, "href": self.href, "spdx": self.spdx}
        for key in ("family", "port", "language", "text"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def evidence_for(location: str, href: str) -> Evidence:
    cc = parse_cc_url(href)
    if cc is None:
        return Evidence(location, href, None)
    return Evidence(location, href, cc.spdx, cc.family, cc.port, cc.language)


def is_licence_url(href: str) -> bool:
    return parse_cc_url(href) is not None


# ---------------------------------------------------------------- finding licences in a page

_META_NAMES = frozenset(
    {
        "license",
        "licence",
        "dc.rights",
        "dc.license",
        "dcterms.license",
        "dcterms.rights",
        "dc.rights.license",
    }
)
_MEDIA_TYPES = frozenset(
    {"imageobject", "videoobject", "audioobject", "mediaobject", "photograph", "3dmodel", "musicrecording"}
)
_CREDIT_TAGS = frozenset({"figure", "figcaption", "picture", "video", "audio"})


# The elements `find_licences` reads.
LICENCE_TAGS = ("meta", "link", "a", "script", "area")
# Those of them that can state a licence other than by their text (CSS): the rest are links that
# could only name one in their text ("CC BY 4.0" in a footer link).
LICENCE_MARKUP = (
    "meta[name], meta[property], link[rel], script[type], a[rel], area[rel], "
    'a[href*="creativecommons.org" i], area[href*="creativecommons.org" i]'
)


def find_licences(root: Any, elements: Any = None) -> list[Evidence]:
    """Every licence statement under `root`, in document order, each with its location. `root` is an
    lxml element or a `signals.Element` over the page's one resiliparse parse (the pipeline's case).
    `elements`: the elements to read, in document order (default: every one of LICENCE_TAGS); a
    caller that knows no link text can name a licence passes those matching LICENCE_MARKUP."""
    import json

    found: list[Evidence] = []
    for el in root.iter(*LICENCE_TAGS) if elements is None else elements:
        tag = el.tag
        if tag == "meta":
            name = (el.get("name") or el.get("property") or "").strip().lower()
            content = (el.get("content") or "").strip()
            if name in _META_NAMES and content:
                ev = evidence_for("meta", content)
                if ev.spdx or is_licence_url(content) or name in ("license", "licence", "dcterms.license"):
                    found.append(ev)
        elif tag == "script":
            if (el.get("type") or "").strip().lower() == "application/ld+json" and el.text:
                try:
                    data = json.loads(el.text)
                except ValueError:
                    continue
                for href, media in _json_ld_licences(data):
                    found.append(evidence_for("json_ld_media" if media else "json_ld", href))
        else:
            href = (el.get("href") or "").strip()
            rels = (el.get("rel") or "").lower().split()
            is_rel = "license" in rels or "cc:license" in rels or "licence" in rels
            if not href and not is_rel:
                continue
            if is_rel and (tag == "link" or not _is_credit(el)):
                found.append(evidence_for("link_rel", href))
                continue
            if tag == "link":
                continue
            if is_licence_url(href) or is_rel:
                found.append(evidence_for("footer" if _in_footer(el) else "body_link", href))
                continue
            # Cheapest test first: most links name no licence, and the ancestor walk costs more.
            # White space collapsed: "CC&nbsp;BY", a line break inside the link, or the space
            # lxml's text pieces add around an inline element (`<abbr>CC</abbr> BY`) still name it.
            text = " ".join(" ".join(el.itertext()).split())
            spdx, family = licence_from_text(text)
            if family and _in_footer(el):
                found.append(Evidence("footer_text", href, spdx, family, text=text[:200]))
    return found


def _in_footer(el: Any) -> bool:
    for anc in el.iterancestors():
        if anc.tag == "footer":
            return True
        marks = f"{anc.get('id') or ''} {anc.get('class') or ''} {anc.get('role') or ''}".lower()
        if "footer" in marks or "contentinfo" in marks:
            return True
    return False


def _is_credit(el: Any) -> bool:
    """A licence link that credits a media object or another work, not the page: inside a figure or
    caption, or next to CC-REL markup that names another work (`dct:title` / `cc:attributionURL`)."""
    for anc in el.iterancestors():
        if anc.tag in _CREDIT_TAGS:
            return True
    parent = el.getparent()
    if parent is None:
        return False
    for sib in parent.iter():
        if sib == el:  # (wrappers over one parse compare by node, lxml elements by identity)
            continue
        rel = (sib.get("rel") or "").lower()
        prop = (sib.get("property") or "").lower()
        if "dct:title" in prop or "cc:attributionurl" in rel or sib.get("about"):
            return True
    return False


def _json_ld_licences(data: Any) -> list[tuple[str, bool]]:
    """(licence URL, belongs to a media node) for every `license` in a JSON-LD document."""
    found: list[tuple[str, bool]] = []

    def types(node: dict[str, Any]) -> set[str]:
        t = node.get("@type")
        items = t if isinstance(t, list) else [t]
        return {str(x).lower() for x in items if x}

    def walk(node: Any, media: bool) -> None:
        if isinstance(node, dict):
            here = media or bool(types(node) & _MEDIA_TYPES)
            for k, v in node.items():
                if k.lower() == "license":
                    for href in _urls(v):
                        found.append((href, here))
                else:
                    walk(v, here)
        elif isinstance(node, list):
            for v in node:
                walk(v, media)

    walk(data, False)
    return found


def _urls(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        for key in ("url", "@id", "id"):
            if isinstance(value.get(key), str):
                return [value[key]]
        return []
    if isinstance(value, list):
        return [u for v in value for u in _urls(v)]
    return []


# ---------------------------------------------------------------- the page licence and the allowlist


def page_level(evidence: list[Evidence]) -> list[Evidence]:
    """Page-level evidence with an identified licence, strongest location first (stable)."""
    return sorted(
        (e for e in evidence if e.spdx and e.location in PAGE_LEVEL),
        key=lambda e: LOCATIONS.index(e.location),
    )


def page_licence(evidence: list[Evidence]) -> Evidence | None:
    """The evidence that licenses the page: the strongest page-level location with a known licence."""
    ranked = page_level(evidence)
    return ranked[0] if ranked else None


def conflicting(evidence: list[Evidence]) -> list[str]:
    """Distinct page-level licence ids when the page states more than one, else []."""
    ids = list(dict.fromkeys(e.spdx for e in page_level(evidence) if e.spdx))
    return ids if len(ids) > 1 else []


def allowed(spdx: str, allowlist: list[str]) -> bool:
    """Allowlist entries are exact ids (CC0-1.0) or families (CC-BY matches CC-BY-4.0 and CC-BY-3.0-DE,
    not CC-BY-SA-4.0)."""
    for entry in allowlist:
        if spdx == entry:
            return True
        if spdx.startswith(entry + "-") and spdx[len(entry) + 1 : len(entry) + 2].isdigit():
            return True
    return False
