"""Gopher-style quality heuristics on extracted text, without spaCy.

Checks run cheapest first and each failure has its own reason code. Words are whitespace tokens with
surrounding punctuation stripped; this is the rule set of Rae et al. (2021, "Gopher", appendix A),
with thresholds from the policy.
"""

from __future__ import annotations

from commonweights.config import QualityConfig

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
