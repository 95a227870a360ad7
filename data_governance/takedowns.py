"""The takedown registry: domains, URL prefixes and doc_ids that must not be used, with date and reason.

A takedown filed after release N removes the content from release N+1, because every curation run
applies the whole registry, whatever the crawl or snapshot date. A domain covers its subdomains; a URL
prefix matches regardless of `http`/`https`, host case and a leading `www.`; a doc_id matches exactly.
The matching entry (kind, value, date, reason) is recorded in the manifest row.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

KINDS = ("domain", "url_prefix", "doc_id")


@dataclass(frozen=True)
class Takedown:
    kind: str
    value: str
    date: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def normalise_url(url: str) -> str:
    """`HTTPS://www.Example.org/a?b` → `example.org/a?b`: the form URL prefixes are compared in."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    port = f":{parts.port}" if parts.port and parts.port not in (80, 443) else ""
    rest = url.strip()[len(f"{parts.scheme}://{parts.netloc}") :] if parts.netloc else url.strip()
    return f"{host}{port}{rest}"


class Takedowns:
    def __init__(self, entries: list[Takedown] | None = None):
        entries = entries or []
        self.entries = entries
        self._domains = {e.value.lower().removeprefix("www."): e for e in entries if e.kind == "domain"}
        self._prefixes = [(normalise_url(e.value), e) for e in entries if e.kind == "url_prefix"]
        self._ids = {e.value: e for e in entries if e.kind == "doc_id"}

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
            try:
                dt.date.fromisoformat(entry.date[:10])
            except ValueError:
                raise ValueError(
                    f"{where}:{n}: takedown date {entry.date!r} is not an ISO date (YYYY-MM-DD)"
                ) from None
            if not entry.value.strip():
                raise ValueError(f"{where}:{n}: takedown value is empty")
            entries.append(entry)
        return cls(entries)

    def match(self, doc_id: str, url: str, domain: str) -> Takedown | None:
        """The first registry entry that covers the document, or None."""
        if doc_id in self._ids:
            return self._ids[doc_id]
        if self._prefixes:
            norm = normalise_url(url)
            for prefix, entry in self._prefixes:
                if norm.startswith(prefix):
                    return entry
        labels = domain.lower().split(".")
        for i in range(len(labels)):
            covering = self._domains.get(".".join(labels[i:]))
            if covering is not None:
                return covering
        return None

    def matches(self, doc_id: str, url: str, domain: str) -> bool:
        return self.match(doc_id, url, domain) is not None
