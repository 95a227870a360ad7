"""Main text of an HTML page, from the one parse that every HTML signal also reads.

Two extractors, chosen by the quality mode (`governance.quality.mode`):

- `resiliparse` (fast mode, default): `HTMLTree.parse` (lexbor, an HTML5-conformant parser) once per
  page; the consent and licence evidence (signals.py) is read from that tree first, then
  `extract_plain_text(main_content=True)` takes the text from the same tree. Block breaks come out as
  blank lines; `normalise` folds them to single line breaks and trims each line, which is the shape of
  trafilatura's output that the reference filters were tuned on (FineWeb), so line-based rules read
  both extractors' text alike.
- `trafilatura` (reference / quality-first mode): trafilatura's own extraction, with its per-process
  deduplication cache off (it makes output depend on sharding). Evidence still comes from one
  resiliparse parse of the page.

An extraction that raises never loses the document: `ExtractionFailed` carries a short machine reason
that the assessor records (`malformed:extract_<why>`, decision `quarantined`). The trafilatura extractor also
takes a per-document time limit (`quality.extract_timeout_s`), enforced with a real-time interval timer
where the worker runs on the main thread (datatrove instead forks a process per document and drops a
document that times out).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

RESILIPARSE = "resiliparse"
TRAFILATURA = "trafilatura"
EXTRACTORS = (RESILIPARSE, TRAFILATURA)
# Reason code prefix of a page whose extraction failed: quarantined (as unreadable input is, so the
# audit's rule "quarantined ⇔ malformed:*" holds), never lost.
FAILED_PREFIX = "malformed:extract_"


class ExtractionFailed(Exception):
    """Extraction of one page failed; `why` is a short machine reason (`timeout`, `error`)."""

    def __init__(self, why: str, detail: str = ""):
        super().__init__(f"{why}: {detail}" if detail else why)
        self.why = why
        self.detail = detail

    @property
    def reason(self) -> str:
        return FAILED_PREFIX + self.why


@dataclass(frozen=True)
class ExtractorInfo:
    name: str
    version: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


def info(name: str) -> ExtractorInfo:
    """The extractor and its installed version, as recorded in manifest.json."""
    if name not in EXTRACTORS:
        raise ValueError(f"unknown extractor {name!r}; known: {', '.join(EXTRACTORS)}")
    return ExtractorInfo(name, version(name))


def parse(html: str) -> HTMLTree:
    """The one parse of a page (lexbor never raises on malformed HTML; it repairs as browsers do)."""
    return HTMLTree.parse(html)


def normalise(text: str) -> str:
    """One line break between blocks, no blank lines, lines trimmed, no leading/trailing space."""
    return "\n".join(filter(None, map(str.strip, text.split("\n"))))


def resiliparse_text(tree: HTMLTree) -> str:
    """Main content of a parsed page: no navigation, footers, forms, alt texts or link targets."""
    text = extract_plain_text(
        tree,
        preserve_formatting=True,
        main_content=True,
        list_bullets=True,
        alt_texts=False,
        links=False,
        form_fields=False,
        noscript=False,
        comments=False,
    )
    return normalise(text)


def trafilatura_text(html: str, timeout_s: float = 0.0) -> str:
    """trafilatura's extraction (recall-oriented, tables kept, no per-process dedup cache)."""
    import trafilatura

    try:
        with _time_limit(timeout_s):
            text = trafilatura.extract(
                html, include_comments=False, include_tables=True, deduplicate=False, favor_recall=True
            )
    except _Timeout:
        raise ExtractionFailed("timeout", f"over {timeout_s:g} s") from None
    except Exception as e:  # any crash inside trafilatura/lxml is one page's failure, not the job's
        raise ExtractionFailed("error", f"{type(e).__name__}: {e}"[:300]) from None
    return text or ""


class _Timeout(BaseException):
    """Raised by the timer inside trafilatura; a BaseException so that no `except Exception` in the
    library swallows it."""


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread: no limit elsewhere (documented above)
        return

    def fire(signum: int, frame: Any) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, fire)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def main_text(name: str, html: str, tree: HTMLTree, timeout_s: float = 0.0) -> str:
    """The page's text with extractor `name` (the tree is the page's one parse)."""
    if name == RESILIPARSE:
        try:
            return resiliparse_text(tree)
        except Exception as e:
            raise ExtractionFailed("error", f"{type(e).__name__}: {e}"[:300]) from None
    if name == TRAFILATURA:
        return trafilatura_text(html, timeout_s)
    raise ValueError(f"unknown extractor {name!r}; known: {', '.join(EXTRACTORS)}")
