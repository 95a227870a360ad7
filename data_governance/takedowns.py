"""The takedown registry: domains, URL prefixes and doc_ids that must not be used, with date and reason.

A takedown filed after release N removes the content from release N+1, because every curation run
applies the whole registry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

KINDS = ("domain", "url_prefix", "doc_id")


@dataclass(frozen=True)
class Takedown:
    kind: str
    value: str
    date: str
    reason: str


class Takedowns:
    def __init__(self, entries: list[Takedown] | None = None):
        entries = entries or []
        self.entries = entries
        self._domains = {e.value.lower().removeprefix("www.") for e in entries if e.kind == "domain"}
        self._prefixes = tuple(e.value for e in entries if e.kind == "url_prefix")
        self._ids = {e.value for e in entries if e.kind == "doc_id"}

    @classmethod
    def parse(cls, text: str, where: str) -> Takedowns:
        entries = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                entry = Takedown(str(d["kind"]), str(d["value"]), str(d["date"]), str(d.get("reason", "")))
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(
                    f"{where}:{n}: bad takedown entry ({e}); expected kind, value, date"
                ) from None
            if entry.kind not in KINDS:
                raise ValueError(
                    f"{where}:{n}: takedown kind {entry.kind!r} is not one of {', '.join(KINDS)}"
                )
            entries.append(entry)
        return cls(entries)

    def matches(self, doc_id: str, url: str, domain: str) -> bool:
        if doc_id in self._ids or url.startswith(self._prefixes) and self._prefixes:
            return True
        # A domain takedown covers its subdomains too.
        return any(domain == d or domain.endswith("." + d) for d in self._domains)
