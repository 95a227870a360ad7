"""Quality filters on extracted text, in two modes (`governance.quality.mode`).

`fast` (default): Gopher-style heuristics without spaCy. Checks run cheapest first and each failure
has its own reason code. Words are whitespace tokens with surrounding punctuation stripped; this is
the rule set of Rae et al. (2021, "Gopher", appendix A), with thresholds from the policy.

`datatrove` (reference): datatrove's own blocks in FineWeb's order, with their published defaults:
GopherRepetitionFilter → GopherQualityFilter → C4QualityFilter → FineWebQualityFilter. As in
datatrove, the first failing block decides and C4's line filter rewrites the text it keeps (the kept
text is then C4's). Reasons are `quality:<block>:<datatrove reason>`. The blocks are built once per
process (`prepare`, called from `DoFn.setup`); none of them downloads anything (spaCy's blank English
tokeniser ships with spaCy).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from commonweights.config import QualityConfig, QualityMode

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
_PUNCT = "\"'()[]{}.,;:!?«»“”‘’-–—"


def check(text: str, q: QualityConfig) -> list[str]:
    """Names of the failed filters ([] when the text passes)."""
    raw = text.split()
    n = len(raw)
    if n < q.min_words:
        return ["too_short"]
    if n > q.max_words:
        return ["too_long"]
    words = [w.strip(_PUNCT) for w in raw]
    failed: list[str] = []
    lengths = [len(w) for w in words if w]
    mean = sum(lengths) / len(lengths) if lengths else 0.0
    if not q.min_mean_word_length <= mean <= q.max_mean_word_length:
        failed.append("mean_word_length")
    symbols = sum(w.count("#") for w in raw) + text.count("...") + text.count("…")
    if symbols / n > q.max_symbol_word_ratio:
        failed.append("symbol_ratio")
    alpha = sum(1 for w in words if any(c.isalpha() for c in w))
    if alpha / n < q.min_alpha_word_ratio:
        failed.append("alpha_ratio")
    if sum(1 for w in words if w.lower() in STOP_WORDS) < q.min_stop_words:
        failed.append("stop_words")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lines:
        dup = len(lines) - len(set(lines))
        if dup / len(lines) > q.max_duplicate_line_fraction:
            failed.append("duplicate_lines")
    return failed


# (reason prefix, datatrove class), in FineWeb's order.
REFERENCE_BLOCKS: tuple[tuple[str, str], ...] = (
    ("gopher_repetition", "datatrove.pipeline.filters.gopher_repetition_filter.GopherRepetitionFilter"),
    ("gopher_quality", "datatrove.pipeline.filters.gopher_quality_filter.GopherQualityFilter"),
    ("c4", "datatrove.pipeline.filters.c4_filters.C4QualityFilter"),
    ("fineweb", "datatrove.pipeline.filters.fineweb_quality_filter.FineWebQualityFilter"),
)


class ReferenceFilters:
    """datatrove's quality blocks used as predicates on one text at a time."""

    def __init__(self) -> None:
        import importlib

        self.blocks: list[tuple[str, Any]] = []
        for name, dotted in REFERENCE_BLOCKS:
            module, _, cls = dotted.rpartition(".")
            self.blocks.append((name, getattr(importlib.import_module(module), cls)()))

    def apply(self, text: str) -> tuple[str, list[str]]:
        from datatrove.data import Document

        doc = Document(text=text, id="")
        for name, block in self.blocks:
            verdict = block.filter(doc)
            if verdict is not True and verdict is not None:
                why = verdict[1] if isinstance(verdict, tuple) else "failed"
                return doc.text, [f"{name}:{why}"]
        return doc.text, []


@cache
def reference_filters() -> ReferenceFilters:
    return ReferenceFilters()


def prepare(q: QualityConfig) -> None:
    """Build what the mode needs once per process (Beam calls this from DoFn.setup)."""
    if q.mode == QualityMode.datatrove:
        filters = reference_filters()
        filters.apply("Warm up the tokenisers once. " * 10)


def evaluate(text: str, q: QualityConfig) -> tuple[str, list[str]]:
    """(text to keep, names of the failed filters). Only the reference mode can change the text."""
    if q.mode == QualityMode.datatrove:
        return reference_filters().apply(text)
    return text, check(text, q)
