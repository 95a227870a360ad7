"""Stable reason codes recorded in the manifest's `reasons` column.

Fixed codes are `Reason` members; parameterised ones (`robots:<agent>`, `quality:<filter>`,
`duplicate_of:<doc_id>`, ...) are built by the functions below, so a typo cannot mint a new code.
"""

from enum import StrEnum


class Decision(StrEnum):
    kept = "kept"
    dropped = "dropped"
    quarantined = "quarantined"


class Reason(StrEnum):
    robots_unavailable = "robots:unavailable"  # snapshot status 5xx / unreachable, policy disallows
    robots_missing = "robots:missing"  # no snapshot for the domain, policy disallows
    tdm_reserved = "tdm_reserved"  # TDMRep tdm-reservation: 1 (header or meta)
    meta_noai = "meta:noai"  # <meta name="robots" content="noai">
    header_noai = "header:noai"  # X-Robots-Tag: noai
    licence_missing = "licence:missing"  # open-licence mode, no page-level licence found
    takedown = "takedown"
    empty_text = "empty_text"  # extraction produced no text


def robots(agent: str) -> str:
    return f"robots:{agent}"


def aipref(category: str) -> str:
    return f"aipref:{category}=n"


def licence_not_allowed(spdx: str) -> str:
    return f"licence:not_allowed:{spdx}"


def quality(name: str) -> str:
    return f"quality:{name}"


def duplicate_of(doc_id: str) -> str:
    return f"duplicate_of:{doc_id}"


def content_type(mime: str) -> str:
    return f"content_type:{mime}"


def http_status(code: int) -> str:
    return f"http_status:{code}"


def malformed(why: str) -> str:
    return f"malformed:{why}"
