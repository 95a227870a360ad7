"""Quality filters on extracted text, in two modes (`governance.quality.mode`).

`fast` (default): our implementation of the four rule blocks of FineWeb's pipeline, in its order —
Gopher repetition, Gopher quality (Rae et al. 2021, "Gopher", appendix A, table A1), C4 (Raffel et al.
2020, section 2.2) and FineWeb's own line rules — computing the same statistics as the reference
without spaCy. Every failing rule is listed, in the reference order, so the first reason is the one
the reference would give and the others tell an auditor what else is wrong (one exception: a text
under `min_words` gets only `gopher_short_doc` from the Gopher quality block, whose ratios mean little
on so few words). Codes are `quality:<block>_<rule>` (docs/manifest.md). Semantics, per rule, are
those of the published definitions as datatrove implements them (its punctuation and terminal
punctuation sets are imported, not copied):

- Words: one regex (`tokens`: compiled, or in Python run only on white-space chunks that are not all
  letters and digits) instead of spaCy's English tokenizer: runs of letters/digits
  (with inner apostrophes, periods and commas of numbers, e.g. "3.5", "U.S"), and each punctuation
  mark on its own except runs of periods or hyphens ("...", "--"). spaCy additionally splits clitics
  ("don't" → "do", "n't") and a few abbreviations differently, which shifts word counts slightly;
  the agreement test measures the effect on decisions.
- Sentences (C4's minimum of 5): a sentence ends at `.`, `!` or `?` (closing quotes/brackets may
  follow) that is followed by white space and more text, and at the end of each kept line; this is
  spaCy's sentencizer on lines that C4 keeps (they all end in terminal punctuation). Abbreviations
  such as "Dr." count as ends here and not in spaCy (tokenizer exceptions).
- Gopher repetition: paragraphs split on 2+ line breaks, lines on 1+; duplicate = a repeat of an
  earlier element; top n-gram (n=2..4) = the most frequent n-gram (first seen on ties) times its
  length, n-grams joined by spaces; duplicated n-grams (n=5..10) = greedy left-to-right scan that skips
  n words after each repeat, characters counted without spaces. n-grams are compared by 64-bit
  polynomial hashes of the words' hashes (numpy; one text at a time, so Python's per-process string
  hash serves), exact up to hash collisions (~2^-64 per pair). The greedy scan runs only where cheap
  bounds exceed the limit (characters of words covered by repeated n-grams of the smallest n; by
  windows of n words whose smallest-n-grams all repeat; by repeated n-grams of its own n), steps
  only through the positions of repeated n-grams, and stops as soon as its count is over the limit.
  A top n-gram is counted only where the top (n-1)-gram's count times the longest n-gram could
  exceed its limit.
- Gopher quality: counts and mean length over words with a non-punctuation character; `#` and
  ellipsis (`...`, `…`) counts per word (all tokens); bullet (`•`, `-`) and ellipsis line ratios over
  all lines; alpha ratio over all tokens; stop words = distinct members of {the, be, to, of, and, that,
  have, with}, case-sensitive.
- C4: per line: drop lines with a word over 1000 characters, remove `[1]`/`[edit]`/`[citation needed]`,
  drop lines not ending in `.`, `?`, `!`, `"`, `'` (or ending in `...`), lines under 3 words, lines
  with "javascript" and lines with cookie/terms/privacy phrases; a "lorem ipsum" or `{` in a line
  that survives drops the page. The kept text is C4's (`c4_rewrite`).
- FineWeb: over non-empty lines of C4's text: share ending in terminal punctuation (datatrove's
  set of sentence terminals across scripts) ≥ 0.12, share of lines of ≤ 30 characters ≤ 0.67,
  characters of duplicate lines over all non-newline characters ≤ 0.01, line breaks per word ≤ 0.3
  (words are counted only where the white-space count, a lower bound, leaves the ratio over 0.3).

Compiled helpers: where `data_governance._speedups` is built (`pip install -e .` builds it from
`_speedups.c`), the tokenizer and the n-gram statistics of the Gopher repetition block run in C
(`tokens`, `CompiledGrams`): the same tokens as the pattern, the same hashes of the same word ids,
the same tie-breaking and scan, hence the same numbers as the Python and numpy implementations
(`tokens_reference`, `WordGrams`), hash collisions included. So do the line and word passes of the
other blocks: the Gopher quality counts (`gopher_counts`, the word part counted by the tokenizer as it
makes the tokens: `tokens_counted`), C4's line filter (`c4`, whose reference is `c4_lines`) and
FineWeb's line counts (`fineweb_counts`); they reproduce Python's `splitlines`, `strip`, `split` and
`lower` on any text (Unicode white space and line breaks, the two non-ASCII letters whose lower case
is ASCII). The Python versions stay the reference the tests hold the C code to, and the fallback
where the extension is not importable (`COMPILED` says which one runs; nothing is logged per
document).

`datatrove` (reference): datatrove's own blocks in FineWeb's order, with their published defaults:
GopherRepetitionFilter → GopherQualityFilter → C4QualityFilter → FineWebQualityFilter. As in
datatrove, the first failing block decides and C4's line filter rewrites the text it keeps (the kept
text is then C4's). Reasons are `quality:<block>:<datatrove reason>`. The blocks are built once per
process (`prepare`, called from `DoFn.setup`); none of them downloads anything (spaCy's blank English
tokeniser ships with spaCy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from itertools import filterfalse
from typing import Any

import numpy as np
from datatrove.utils.text import PUNCTUATION_SET, TERMINAL_PUNCTUATION

from commonweights.config import QualityConfig, QualityMode

try:
    import data_governance._speedups as _speedups
except ImportError:  # not built (no C compiler at install): the numpy reference serves, slower
    _speedups = None  # type: ignore[assignment]
COMPILED = _speedups is not None

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
# The stop words between spaces, the most frequent in English first (a ValueError here names one
# missing from the order).
_STOP_SPACED = tuple(
    f" {w} " for w in sorted(STOP_WORDS, key=("the", "and", "of", "to", "that", "with", "be", "have").index)
)

_TOKEN = re.compile(r"[^\W_]+(?:['’.,][^\W_]+)*|_+|\.{2,}|-{2,}|[^\w\s]")
_findall = _TOKEN.findall
_HAS_ALPHA = re.compile(r"[^\W\d_]").search
# A token of letters only is never punctuation (datatrove's set holds no letter: checked here) and always
# has a letter, so the per-token tests of the Gopher quality block run only on the other tokens.
_LETTERS_NOT_PUNCT = not any(c.isalpha() for c in PUNCTUATION_SET)
_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")
_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*\s+(?=\S)")
_C4_END = (".", "?", "!", '"', "'")
_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
_FINEWEB_STOP = tuple(TERMINAL_PUNCTUATION)
_PUNCT_CHARS = "".join(sorted(PUNCTUATION_SET))  # (the compiled counts take the sets as one str)
_TERMINAL_CHARS = "".join(sorted(TERMINAL_PUNCTUATION))
assert all(len(c) == 1 for c in TERMINAL_PUNCTUATION), "datatrove's terminal punctuation: one character each"
_SHORT_LINE = 30

# Fixed multipliers: n-gram hashes must be the same on every worker.
_MIX = np.uint64(0x9E3779B97F4A7C15)
_ROLL = np.uint64(0xBF58476D1CE4E5B9)


def tokens(text: str) -> list[str]:
    """Words and punctuation marks, in order (our stand-in for spaCy's English tokenizer): the same
    list as `_TOKEN.findall(text)`, by the compiled scanner where built, else `tokens_reference`."""
    if _speedups is not None:
        return _speedups.tokens(text)
    return tokens_reference(text)


def tokens_counted(text: str) -> tuple[list[str], tuple[int, int, int] | None]:
    """(`tokens(text)`, their symbols, symbol characters and words with a letter as `gopher_counts`
    counts them, or None): the compiled scanner counts the tokens as it makes them."""
    if _speedups is not None:
        words, symbols, symbol_chars, with_letter = _speedups.tokens_counted(text, _PUNCT_CHARS)
        return words, (symbols, symbol_chars, with_letter)
    return tokens_reference(text), None


def tokens_reference(text: str) -> list[str]:
    """`tokens` in Python: the same list as `_TOKEN.findall(text)`, found chunk by chunk between
    white space (no token holds white space, `\\s` and `str.split` agree on what it is, and the
    pattern looks neither behind nor ahead); a chunk of letters and digits only (`str.isalnum`: the
    regex's `[^\\W_]`) is one token without running the regex."""
    out: list[str] = []
    keep = out.append
    for chunk in text.split():
        if chunk.isalnum():
            keep(chunk)
        else:
            out += _findall(chunk)
    return out


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(repeated elements, their characters): every element equal to an earlier one counts."""
    seen: set[str] = set()
    n = chars = 0
    for x in items:
        if x in seen:
            n += 1
            chars += len(x)
        else:
            seen.add(x)
    return n, chars


@dataclass
class WordGrams:
    """Word n-gram statistics of one token list, on hashed word ids."""

    words: list[str]
    ids: np.ndarray = field(init=False)
    cum: np.ndarray = field(init=False)  # cum[i] = characters of words[:i]

    def __post_init__(self) -> None:
        n = len(self.words)
        # Python's string hash: equal words, equal ids, within this process (only one text is compared).
        self.ids = np.fromiter(map(hash, self.words), np.int64, n).view(np.uint64)
        self.lengths = np.fromiter(map(len, self.words), np.int64, n)
        self.cum = np.zeros(n + 1, np.int64)
        np.cumsum(self.lengths, out=self.cum[1:])
        self._hashes = {1: (self.ids + np.uint64(1)) * _MIX}
        self._repeated: dict[int, np.ndarray] = {}
        self._sorted: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._covered: dict[int, int] = {}
        self._tops: dict[int, tuple[int, int]] = {}
        self._cum_list: list[int] | None = None
        self._run_lists: dict[int, list[tuple[int, int]]] = {}

    @property
    def total_chars(self) -> int:
        """Characters of all the words, without separators."""
        return int(self.cum[-1])

    def hashes(self, n: int) -> np.ndarray:
        if n not in self._hashes:
            prev = self.hashes(n - 1)
            self._hashes[n] = prev[:-1] * _ROLL + self._hashes[1][n - 1 :]
        return self._hashes[n]

    def repeated(self, n: int) -> np.ndarray:
        """Per n-gram position: True where the n-gram equals an earlier one (computed once per n)."""
        if n not in self._repeated:
            h = self.hashes(n)
            mask = np.ones(len(h), bool)
            if len(h):
                order = np.argsort(h)  # (not stable: the first position of each value is its minimum)
                s = h[order]
                starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
                first = np.minimum.reduceat(order, starts)
                mask[first] = False
                self._sorted[n] = order, starts, first
            self._repeated[n] = mask
        return self._repeated[n]

    def first_of(self, n: int) -> np.ndarray:
        """Per n-gram position: the first position holding the same n-gram."""
        self.repeated(n)
        order, starts, first = self._sorted[n]
        out = np.empty(len(order), np.int64)
        out[order] = np.repeat(first, np.diff(np.append(starts, len(order))))
        return out

    def chars(self, start: np.ndarray | int, n: int) -> Any:
        """Characters of the n-grams starting at `start`, without separators."""
        return self.cum[np.asarray(start) + n] - self.cum[start]

    def top_chars(self, n: int) -> int:
        """Length (words joined by spaces) of the most frequent n-gram times its count; first seen
        wins ties (as Counter.most_common does)."""
        return self._top(n)[0]

    def top_over(self, n: int, size: int, limit: float) -> bool:
        """`top_chars(n) / size > limit`, without counting the n-grams where a bound stays within the
        limit: an n-gram occurs at most as often as its first n - 1 words, so the top (n - 1)-gram's
        count (where already known) times the longest n-gram bounds `top_chars(n)`."""
        if n - 1 in self._tops and len(self.words) >= n:
            longest = int((self.cum[n:] - self.cum[:-n]).max()) + n - 1
            if self._tops[n - 1][1] * longest / size <= limit:
                return False
        return self._top(n)[0] / size > limit

    def _top(self, n: int) -> tuple[int, int]:
        """(top_chars(n), the top n-gram's count), computed once per n."""
        if n in self._tops:
            return self._tops[n]
        h = self.hashes(n)
        if len(h) == 0:
            self._tops[n] = 0, 0
            return self._tops[n]
        s = np.sort(h)
        bounds = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1], [True])))
        counts = np.diff(bounds)
        top = int(counts.max())
        if top == 1:
            at = 0  # every n-gram is unique: the first one
        else:
            values = s[bounds[:-1][counts == top]]  # sorted
            if len(values) <= 4:  # the usual case: one or a few tied n-grams
                at = min(int(np.argmax(h == v)) for v in values)
            else:  # the first position holding one of them, by binary search in the tied values
                pos = np.searchsorted(values, h)
                pos[pos == len(values)] = 0
                at = int(np.argmax(values[pos] == h))
        self._tops[n] = int(self.chars(at, n) + n - 1) * top, top
        return self._tops[n]

    def covered_by_repeats(self, n: int) -> int:
        """Characters (no separators) of the words covered by some n-gram that repeats an earlier one.

        An upper bound of `duplicated_chars(m)` for every m >= n: the greedy scan counts disjoint
        repeated m-grams, and each word of a repeated m-gram lies in a repeated n-gram (the
        same offset within the earlier copy). Vectorised, computed once per n."""
        if n not in self._covered:
            at = np.flatnonzero(self.repeated(n))
            if len(at) == 0:
                self._covered[n] = 0
            else:
                size = len(self.words) + 1
                edges = np.bincount(at, minlength=size) - np.bincount(at + n, minlength=size)
                covered = np.cumsum(edges[:-1]) > 0
                self._covered[n] = int(self.lengths[covered].sum())
        return self._covered[n]

    def covered_by_repeat_runs(self, n: int, base: int) -> int:
        """Characters (no separators) of the words covered by n-word windows whose every `base`-gram
        (base <= n) repeats an earlier one: an upper bound of `covered_by_repeats(n)` from the
        `base`-gram statistics, without hashing and sorting the n-grams. A repeated n-gram is such a
        window: each of its base-grams repeats the one at the same offset in the earlier copy.

        A maximal run of R repeated base-grams from position s holds such windows where
        R >= n - base + 1, and they cover the words [s, s + R + base - 1) whatever n is; runs are
        ordered, so each adds its words past the previous run's end."""
        k = n - base + 1  # base-grams in an n-gram
        if k == 1:
            return self.covered_by_repeats(base)
        runs = self._runs(base)
        if not runs:
            return 0
        cum = self._cum()
        total = end = 0
        for s, r in runs:
            if r >= k:
                stop = s + r + base - 1
                total += cum[stop] - cum[max(s, end)]
                end = stop
        return total

    def _runs(self, base: int) -> list[tuple[int, int]]:
        """(start, length) of the maximal runs of positions holding a repeated base-gram, in order."""
        if base not in self._run_lists:
            # Where the mask switches on and off: each run's start, then its end.
            switches = np.flatnonzero(np.diff(self.repeated(base).astype(np.int8), prepend=0, append=0))
            starts, ends = switches[::2], switches[1::2]
            self._run_lists[base] = list(zip(starts.tolist(), (ends - starts).tolist(), strict=True))
        return self._run_lists[base]

    def _cum(self) -> list[int]:
        if self._cum_list is None:
            self._cum_list = self.cum.tolist()
        return self._cum_list

    def duplicated_chars(self, n: int) -> int:
        """Characters (no separators) in repeated n-grams: a left-to-right scan that, on a repeat,
        counts it and jumps n words; otherwise remembers the n-gram and moves one word."""
        return self._scan(n)

    def duplicated_over(self, n: int, size: int, limit: float, base: int | None = None) -> bool:
        """`duplicated_chars(n) / size > limit`, deciding as early as possible: not at all where the
        bound `covered_by_repeat_runs(n, base)` (with a `base` <= n) or `covered_by_repeats(n)` stays
        within the limit, and the scan stops once its running count (which only grows) is over it."""
        if base is not None and self.covered_by_repeat_runs(n, base) / size <= limit:
            return False
        if self.covered_by_repeats(n) / size <= limit:
            return False
        return self._scan(n, size, limit) / size > limit

    def _scan(self, n: int, size: int = 0, limit: float = 0.0) -> int:
        """The greedy count of `duplicated_chars`; with a `size`, it returns as soon as the count over
        `size` exceeds `limit` (a partial count, already over the limit).

        The scan remembers every n-gram it visits; it visits every position except the n - 1 after
        each counted repeat. So it steps only through the positions whose n-gram occurred earlier
        (the others are new wherever visited): such an n-gram is remembered iff its first occurrence
        was visited or an earlier occurrence of it was visited and found new."""
        if len(self.hashes(n)) == 0:
            return 0
        at = np.flatnonzero(self.repeated(n))
        if len(at) == 0:
            return 0  # no n-gram occurs twice
        first_of = self.first_of(n)
        cum = self._cum()
        skipped = bytearray(len(first_of) + n)  # positions jumped over
        jump = b"\x01" * (n - 1)
        remembered: set[int] = set()  # first positions of n-grams remembered at a later visit
        total = i = 0
        for p, f in zip(at.tolist(), first_of[at].tolist(), strict=True):
            if p < i:
                continue  # jumped over
            if not skipped[f] or f in remembered:
                total += cum[p + n] - cum[p]
                if size and total / size > limit:
                    return total
                skipped[p + 1 : p + n] = jump
                i = p + n
            else:
                remembered.add(f)
                i = p + 1
        return total


class CompiledGrams:
    """`WordGrams`' statistics computed by the compiled helpers (`_speedups`): the same word ids
    (Python's hash, as uint64) and lengths, the same n-gram hashes, hence the same numbers. Each
    statistic is one pass over the words with a hash table, so the only bounds kept are those that
    save a pass: a top n-gram is counted only where the top (n-1)-gram's count times the longest
    n-gram could exceed its limit, and the greedy scan stops as soon as its count is over the limit
    (the caller skips it where `covered_by_repeats` of the smallest n stays within the limit)."""

    def __init__(self, words: list[str]) -> None:
        assert _speedups is not None, "data_governance._speedups is not built"
        self.words = words
        self.ids, self.lengths, self.total_chars = _speedups.word_ids(words)  # (chars: no separators)
        self._tops: dict[int, tuple[int, int]] = {}

    def top_chars(self, n: int) -> int:
        """As `WordGrams.top_chars`."""
        return self._top(n)[0]

    def _top(self, n: int) -> tuple[int, int]:
        if n not in self._tops:
            self._tops[n] = _speedups.top_ngram(self.ids, self.lengths, n)
        return self._tops[n]

    def top_over(self, n: int, size: int, limit: float) -> bool:
        """As `WordGrams.top_over`."""
        if n - 1 in self._tops and len(self.words) >= n:
            longest = _speedups.longest_ngram(self.lengths, n) + n - 1
            if self._tops[n - 1][1] * longest / size <= limit:
                return False
        return self._top(n)[0] / size > limit

    def covered_by_repeats(self, n: int) -> int:
        """As `WordGrams.covered_by_repeats`."""
        return _speedups.repeat_cover(self.ids, self.lengths, n)

    def duplicated_chars(self, n: int) -> int:
        """As `WordGrams.duplicated_chars`."""
        return _speedups.duplicated_chars(self.ids, self.lengths, n)

    def duplicated_over(self, n: int, size: int, limit: float, base: int | None = None) -> bool:
        """`duplicated_chars(n) / size > limit`; the scan stops once its count is over the limit
        (`base` is accepted for `WordGrams`' signature: a bound from it would cost a pass too)."""
        return _speedups.duplicated_chars(self.ids, self.lengths, n, size, limit) / size > limit


# The n-gram statistics the fast mode uses: compiled where built, else the numpy reference.
Grams: type[WordGrams] | type[CompiledGrams] = CompiledGrams if COMPILED else WordGrams


def _gopher_repetition(text: str, grams: WordGrams | CompiledGrams, q: QualityConfig) -> list[str]:
    failed: list[str] = []
    size = len(text)
    # Without a blank line (extracted text has none) both splits are plain ones.
    blank = "\n\n" in text
    paragraphs = _PARAGRAPHS.split(text.strip()) if blank else [text.strip()]
    dup, chars = _duplicates(paragraphs)
    if dup / len(paragraphs) > q.max_duplicate_paragraph_fraction:
        failed.append("gopher_dup_para_frac")
    if chars / size > q.max_duplicate_paragraph_char_fraction:
        failed.append("gopher_dup_para_char_frac")
    lines = _LINES.split(text) if blank else text.split("\n")
    dup, chars = _duplicates(lines)
    if dup / len(lines) > q.max_duplicate_line_fraction:
        failed.append("gopher_dup_line_frac")
    if chars / size > q.max_duplicate_line_char_fraction:
        failed.append("gopher_dup_line_char_frac")
    for n, limit in sorted(q.top_ngram_char_fractions.items()):
        if grams.top_over(n, size, limit):
            failed.append(f"gopher_top_{n}_gram")
    dup_limits = sorted(q.duplicate_ngram_char_fractions.items())
    if dup_limits:
        # The exact greedy count runs only where the cheap bounds could exceed the limit: the words
        # covered by a repeated n-gram of the smallest n, then (numpy) by windows of n words made of
        # repeated smallest-n-grams (both from one sort of the smallest n's hashes).
        base = dup_limits[0][0]
        bound = grams.covered_by_repeats(base) / size
        for n, limit in dup_limits:
            if bound > limit and grams.duplicated_over(n, size, limit, base):
                failed.append(f"gopher_dup_{n}_gram")
    return failed


def _stop_words_under(text: str, words: list[str], minimum: int) -> bool:
    """Whether fewer than `minimum` distinct stop words are tokens of `text`. A stop word between
    spaces is one whole white-space chunk of letters, hence a token: where enough of them are found
    that way (the most frequent first, stopping once there are enough), the token list is not
    searched."""
    found = 0
    for spaced in _STOP_SPACED:
        if spaced in text:
            found += 1
            if found >= minimum:
                return False
    return len(STOP_WORDS.intersection(words)) < minimum


def gopher_counts(
    text: str, words: list[str], counted: tuple[int, int, int] | None = None
) -> tuple[int, int, int, int, int, int, int, int]:
    """(symbols, their characters, words with a letter, '#', ellipses, lines, bullet lines, ellipsis
    lines): the counts of the Gopher quality block (see `gopher_counts_reference`), in one compiled
    pass over the words and one over the text where built. `counted`: the first three where
    `tokens_counted` already gave them."""
    if _speedups is None:
        return gopher_counts_reference(text, words)
    if counted is None:
        return _speedups.gopher_counts(text, words, _PUNCT_CHARS)
    return counted + _speedups.gopher_counts(text, (), _PUNCT_CHARS)[3:]


def gopher_counts_reference(text: str, words: list[str]) -> tuple[int, int, int, int, int, int, int, int]:
    """`gopher_counts` in Python: symbols are the tokens made of punctuation only, words with a letter
    those `_HAS_ALPHA` finds a letter in; `#` and ellipses (`...`, `…`) are counted in the text (as
    str.count does); lines are those of `str.splitlines` (at least one), bullet lines start with `•` or
    `-` after leading white space, ellipsis lines end in `...` or `…` before trailing white space."""
    others = list(filterfalse(str.isalpha, words)) if _LETTERS_NOT_PUNCT else words
    symbols = list(filter(PUNCTUATION_SET.issuperset, others))  # tokens made of punctuation only
    with_letter = len(words) - len(others) + len(list(filter(_HAS_ALPHA, others)))
    lines = text.splitlines() or [""]
    return (
        len(symbols),
        sum(map(len, symbols)),
        with_letter,
        text.count("#"),
        text.count("...") + text.count("…"),
        len(lines),
        sum(ln.lstrip().startswith(("•", "-")) for ln in lines),
        sum(ln.rstrip().endswith(("...", "…")) for ln in lines),
    )


def _gopher_quality(
    text: str,
    words: list[str],
    q: QualityConfig,
    chars: int | None = None,
    counted: tuple[int, int, int] | None = None,
) -> list[str]:
    """`chars`: the characters of `words`, `counted`: their counts from `tokens_counted`, where
    already known."""
    n_words = len(words)
    symbols, symbol_chars, with_letter, hashes, ellipses, lines, bullets, trailing = gopher_counts(
        text, words, counted
    )
    n_content = n_words - symbols
    if n_content < q.min_words:
        return ["gopher_short_doc"]  # the ratios below mean little on a text this short
    failed: list[str] = []
    if n_content > q.max_words:
        failed.append("gopher_long_doc")
    if chars is None:
        chars = sum(map(len, words))
    mean = (chars - symbol_chars) / n_content
    if mean < q.min_mean_word_length:
        failed.append("gopher_word_length_low")
    if mean > q.max_mean_word_length:
        failed.append("gopher_word_length_high")
    if hashes / n_words > q.max_symbol_word_ratio:
        failed.append("gopher_hashes")
    if ellipses / n_words > q.max_symbol_word_ratio:
        failed.append("gopher_ellipsis")
    if bullets / lines > q.max_bullet_lines_ratio:
        failed.append("gopher_bullet_lines")
    if trailing / lines > q.max_ellipsis_lines_ratio:
        failed.append("gopher_ellipsis_lines")
    if with_letter / n_words < q.min_alpha_word_ratio:
        failed.append("gopher_alpha_words")
    if _stop_words_under(text, words, q.min_stop_words):
        failed.append("gopher_stop_words")
    return failed


def c4_lines(text: str, q: QualityConfig, enough: int | None = None) -> tuple[list[str], int, list[str]]:
    """(lines C4 keeps, sentences in them, page-level failures). With `enough`, sentences are counted
    only up to at least that many (all the minimum-sentence rule needs)."""
    kept: list[str] = []
    sentences = 0
    failed: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) > q.c4_max_word_length and any(len(w) > q.c4_max_word_length for w in line.split()):
            continue
        # Whether the line has `c4_min_words_per_line` words (before citations go): splitting at most
        # that many times tells, without cutting the whole line into words.
        few = len(line.split(None, max(q.c4_min_words_per_line - 1, 0))) < q.c4_min_words_per_line
        if "[" in line:
            line = _CITATION.sub("", line)
        if not line.endswith(_C4_END) or line.endswith("..."):
            continue
        if few:
            continue
        low = line.lower()
        if "lorem ipsum" in low and "c4_lorem_ipsum" not in failed:
            failed.append("c4_lorem_ipsum")
        if "javascript" in low:
            continue
        if "{" in line and "c4_curly_bracket" not in failed:
            failed.append("c4_curly_bracket")
        # (each policy phrase holds one of these three: most lines skip the phrase-by-phrase test)
        if ("polic" in low or "cookies" in low or "terms of use" in low) and any(p in low for p in _POLICY):
            continue
        if enough is None or sentences < enough:
            sentences += 1 + len(_SENTENCE_END.findall(line))
        kept.append(line)
    return kept, sentences, failed


def c4(text: str, q: QualityConfig, enough: int | None = None) -> tuple[str, int, list[str]]:
    """(C4's text: the lines C4 keeps joined by line breaks and stripped, sentences in them, page-level
    failures): what `c4_lines` (the reference) gives, by one compiled pass where built."""
    if _speedups is None:
        kept, sentences, failed = c4_lines(text, q, enough)
        return "\n".join(kept).strip(), sentences, failed
    out, sentences, lorem, curly = _speedups.c4_filter(
        text, q.c4_max_word_length, q.c4_min_words_per_line, -1 if enough is None else enough
    )
    # In the order c4_lines finds them: by line, and within a line the lorem ipsum test first.
    found = sorted(
        (at, k, name)
        for k, (at, name) in enumerate(((lorem, "c4_lorem_ipsum"), (curly, "c4_curly_bracket")))
        if at >= 0
    )
    return out, sentences, [name for _, _, name in found]


def fineweb_counts(text: str) -> tuple[int, int, int, int]:
    """(lines, lines ending in terminal punctuation, short lines, characters of duplicate lines) over
    the lines of `text.split("\\n")` that hold more than white space (see `fineweb_counts_reference`),
    in one compiled pass where built."""
    if _speedups is not None:
        return _speedups.fineweb_counts(text, _TERMINAL_CHARS, _SHORT_LINE)
    return fineweb_counts_reference(text)


def fineweb_counts_reference(text: str) -> tuple[int, int, int, int]:
    """`fineweb_counts` in Python: a line ends in terminal punctuation when its last character is in
    datatrove's set, is short at `_SHORT_LINE` characters or fewer (white space included), and is a
    duplicate when equal to an earlier line."""
    lines = [ln for ln in text.split("\n") if ln.strip()]
    return (
        len(lines),
        sum(ln.endswith(_FINEWEB_STOP) for ln in lines),
        sum(len(ln) <= _SHORT_LINE for ln in lines),
        _duplicates(lines)[1],
    )


def _fineweb(text: str, q: QualityConfig) -> list[str]:
    lines, punct, short, dup_chars = fineweb_counts(text)
    if not lines:
        return ["fineweb_empty"]
    failed: list[str] = []
    if punct / lines < q.fineweb_min_line_punct_ratio:
        failed.append("fineweb_line_punct")
    if short / lines > q.fineweb_max_short_line_ratio:
        failed.append("fineweb_short_lines")
    breaks = text.count("\n")
    body = len(text) - breaks
    if body and dup_chars / body > q.fineweb_max_char_dup_ratio:
        failed.append("fineweb_char_dup")
    # Every white-space token holds at least one word token, so the split count bounds the ratio
    # from above: the tokenizer runs only where the bound exceeds the limit.
    chunks = _speedups.count_chunks(text) if _speedups is not None else len(text.split())
    if breaks / max(chunks, 1) > q.fineweb_max_list_ratio:
        n_words = len(tokens(text))
        if n_words and breaks / n_words > q.fineweb_max_list_ratio:
            failed.append("fineweb_list_ratio")
    return failed


def fast(text: str, q: QualityConfig) -> tuple[str, list[str]]:
    """(text to keep, every failed rule in reference order) for the fast mode."""
    if not text.strip():
        return text, ["empty"]
    failed: list[str] = []
    words: list[str] | None = None
    counted: tuple[int, int, int] | None = None
    grams: WordGrams | CompiledGrams | None = None
    for block in q.blocks:
        if block == "gopher_repetition":
            if words is None:
                words, counted = tokens_counted(text)
            grams = Grams(words)
            failed += _gopher_repetition(text, grams, q)
        elif block == "gopher_quality":
            if words is None:
                words, counted = tokens_counted(text)
            chars = grams.total_chars if grams is not None else None
            failed += _gopher_quality(text, words, q, chars, counted)
        elif block == "c4":
            kept, sentences, page = c4(text, q, enough=q.c4_min_sentences)
            failed += page
            if sentences < q.c4_min_sentences:
                failed.append("c4_few_sentences")
            if q.c4_rewrite:
                text = kept
        elif block == "fineweb":
            failed += _fineweb(text, q)
    return text, failed


def check(text: str, q: QualityConfig) -> list[str]:
    """Names of the failed fast-mode rules ([] when the text passes)."""
    return fast(text, q)[1]


# Reference (datatrove) reason → fast-mode rule name, for the agreement report.
REFERENCE_CODES = {
    "gopher_repetition:empty": "empty",
    "gopher_repetition:dup_para_frac": "gopher_dup_para_frac",
    "gopher_repetition:dup_para_char_frac": "gopher_dup_para_char_frac",
    "gopher_repetition:dup_line_frac": "gopher_dup_line_frac",
    "gopher_repetition:dup_line_char_frac": "gopher_dup_line_char_frac",
    **{f"gopher_repetition:top_{n}_gram": f"gopher_top_{n}_gram" for n in (2, 3, 4)},
    **{f"gopher_repetition:duplicated_{n}_n_grams": f"gopher_dup_{n}_gram" for n in range(5, 11)},
    "gopher_quality:gopher_short_doc": "gopher_short_doc",
    "gopher_quality:gopher_long_doc": "gopher_long_doc",
    "gopher_quality:gopher_below_avg_threshold": "gopher_word_length_low",
    "gopher_quality:gopher_above_avg_threshold": "gopher_word_length_high",
    "gopher_quality:gopher_too_many_hashes": "gopher_hashes",
    "gopher_quality:gopher_too_many_ellipsis": "gopher_ellipsis",
    "gopher_quality:gopher_too_many_bullets": "gopher_bullet_lines",
    "gopher_quality:gopher_too_many_end_ellipsis": "gopher_ellipsis_lines",
    "gopher_quality:gopher_below_alpha_threshold": "gopher_alpha_words",
    "gopher_quality:gopher_enough_stop_words": "gopher_stop_words",  # datatrove's name says the opposite
    "c4:lorem_ipsum": "c4_lorem_ipsum",
    "c4:curly_bracket": "c4_curly_bracket",
    "c4:too_few_sentences": "c4_few_sentences",
    "fineweb:empty": "fineweb_empty",
    "fineweb:line_punct_ratio": "fineweb_line_punct",
    "fineweb:short_line_ratio": "fineweb_short_lines",
    "fineweb:char_dup_ratio": "fineweb_char_dup",
    "fineweb:list_ratio": "fineweb_list_ratio",
}


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
    """(text to keep, names of the failed rules). C4's line filter may shorten the text (both modes;
    in the fast mode unless `c4_rewrite` is off)."""
    if q.mode == QualityMode.datatrove:
        return reference_filters().apply(text)
    return fast(text, q)
