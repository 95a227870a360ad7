"""Licence URLs to SPDX ids, and which licence a page states, by where the evidence sits.

A page licence is taken from the strongest location present: `link rel=license`, then licence meta
tags, then JSON-LD `license`, then a footer link. A licence link only in the body (an image or embed
credit) is recorded as evidence but does not license the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CC = re.compile(
    r"creativecommons\.org/(?:licenses|licences)/(by(?:-nc)?(?:-sa|-nd)?)/(\d\.\d)(?:/([a-z]{2,3}))?",
    re.IGNORECASE,
)
_CC_PD = re.compile(r"creativecommons\.org/publicdomain/(zero|mark)/(\d\.\d)", re.IGNORECASE)

# Locations from strongest to weakest; only the page-level ones can license a page.
LOCATIONS = ("link_rel", "meta", "json_ld", "footer", "body_link")
PAGE_LEVEL = frozenset(LOCATIONS[:4])


def spdx_from_url(url: str) -> str | None:
    """SPDX id of a Creative Commons licence or tool URL (any version, port or deed), else None."""
    m = _CC.search(url)
    if m:
        code, version = m.group(1).upper(), m.group(2)
        return f"CC-{code}-{version}"
    m = _CC_PD.search(url)
    if m:
        return "CC0-1.0" if m.group(1).lower() == "zero" else "CC-PDM-1.0"
    return None


@dataclass(frozen=True)
class Evidence:
    location: str
    href: str
    spdx: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"location": self.location, "href": self.href, "spdx": self.spdx}


def page_licence(evidence: list[Evidence]) -> Evidence | None:
    """The evidence that licenses the page: the strongest page-level location with a known licence."""
    ranked = sorted(
        (e for e in evidence if e.spdx and e.location in PAGE_LEVEL),
        key=lambda e: LOCATIONS.index(e.location),
    )
    return ranked[0] if ranked else None


def allowed(spdx: str, allowlist: list[str]) -> bool:
    """Allowlist entries are exact ids (CC0-1.0) or families (CC-BY matches CC-BY-4.0, not CC-BY-SA-4.0)."""
    for entry in allowlist:
        if spdx == entry:
            return True
        if spdx.startswith(entry + "-") and spdx[len(entry) + 1 : len(entry) + 2].isdigit():
            return True
    return False
