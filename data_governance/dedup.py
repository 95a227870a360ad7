"""Exact and near-duplicate detection: MinHash over word 5-grams with LSH banding (FineWeb's
parameters: 14 bands of 8 hashes), plus the exact text hash as one more bucket.

Signatures are computed with numpy, no Python-level loop per shingle:
1. words: white-space tokens of the lower-cased text with leading/trailing punctuation stripped
   (tokens of punctuation only are dropped);
2. each word → its CRC-32 (stdlib zlib: identical on every machine and process, unlike Python's
   salted `hash`; two words that collide merely count as one word);
3. each 5-gram → a 64-bit polynomial combination of its words' hashes, finished with the splitmix64
   mixer; duplicates removed (MinHash is over the shingle *set*);
4. 112 hash functions from the multiply-shift family, h_k(x) = (a_k·x + b_k mod 2^64) >> 32 with odd
   a_k, applied as one broadcast (shingles × 112) — no division, unlike (a·x + b) mod p; the signature
   is the column-wise minimum.

A band (8 consecutive values) of two documents agrees with probability ≈ J^8 for Jaccard similarity J
of their shingle sets, so two documents share at least one of the 14 band keys with probability
1 − (1 − J^8)^14: ≈ 0.92 at J = 0.8, ≈ 0.56 at J = 0.7, ≈ 0.05 at J = 0.5 (FineWeb's choice: pairs
above ~0.75 are found). Texts of fewer than 5 words are one shingle (the whole text).

Where `data_governance._speedups` is built (`pip install -e .` compiles `_speedups.c`), steps 1-4 run
in C with bitwise the same result: `text_crc32` cuts the words of the lower-cased text as step 1 does
and hashes them without making them, `minhash` does the rest. The numpy code here stays the reference
the tests hold it to, and the fallback where the extension is not importable (`COMPILED` says which
runs; nothing is logged per document).

The result never depends on how work was split: documents that share a bucket are linked, linked
documents form components, and every component keeps its smallest doc_id.
"""

from __future__ import annotations

import hashlib
import string
import zlib
from itertools import repeat

import numpy as np

try:
    import data_governance._speedups as _speedups
except ImportError:  # not built (no C compiler at install): the numpy reference serves, slower
    _speedups = None  # type: ignore[assignment]
COMPILED = _speedups is not None

NGRAM = 5
BANDS = 14
ROWS = 8
_rng = np.random.default_rng(20260101)  # fixed: signatures must be identical on every worker and run
_A = _rng.integers(0, 1 << 63, size=BANDS * ROWS, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd
_B = _rng.integers(0, 1 << 63, size=BANDS * ROWS, dtype=np.uint64)
_POLY = np.uint64(0x100000001B3)  # FNV-1a 64-bit prime: the n-gram polynomial's base
# Stripped from both ends of a token: ASCII punctuation and the common typographic marks.
_PUNCT = string.punctuation + "«»“”‘’„‚–—…·•"
_POLY_INT = int(_POLY)
_EMPTY = np.full(BANDS * ROWS, np.iinfo(np.uint32).max, dtype=np.uint64)


def words(text: str) -> list[str]:
    return list(filter(None, map(str.strip, text.lower().split(), repeat(_PUNCT))))


def word_hashes(ws: list[str]) -> np.ndarray:
    """A hash per word (CRC-32), the same on every machine and process."""
    return np.fromiter(map(zlib.crc32, map(str.encode, ws)), np.uint64, len(ws))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads the polynomial's structure over all 64 bits."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _shingles(text: str) -> np.ndarray:
    """The 64-bit hashes of the text's word 5-grams in text order, repeats included."""
    ws = words(text)
    if not ws:
        return np.empty(0, np.uint64)
    h = word_hashes(ws)
    n = min(NGRAM, len(h))
    m = len(h) - n + 1
    grams = h[:m].copy()
    for k in range(1, n):
        grams = grams * _POLY + h[k : k + m]
    return _mix(grams + np.uint64(n))


def shingle_hashes(text: str) -> np.ndarray:
    """The distinct 64-bit hashes of the text's word 5-grams (one shingle for shorter texts)."""
    return np.unique(_shingles(text))


def signature(text: str) -> np.ndarray:
    """BANDS × ROWS MinHash values (uint64 holding 32-bit values) of the text's shingle set."""
    if _speedups is not None:
        out = np.empty(BANDS * ROWS, np.uint64)
        # word_hashes(words(text)), the words cut and hashed in C without making them
        _speedups.minhash(_speedups.text_crc32(text.lower(), _PUNCT), _A, _B, out, NGRAM, _POLY_INT)
        return out
    return signature_reference(text)


def signature_reference(text: str) -> np.ndarray:
    """`signature` by numpy alone: the reference of the compiled one, and its fallback."""
    x = _shingles(text)  # a repeated shingle cannot change a minimum: no need to remove repeats
    if len(x) == 0:
        return _EMPTY.copy()
    # The shift is monotone, so the minimum is taken before it: one (shingles × 112) array, in place.
    values = np.multiply.outer(x, _A)
    values += _B
    return values.min(axis=0) >> np.uint64(32)


def jaccard_estimate(a: np.ndarray, b: np.ndarray) -> float:
    """Share of equal signature values: an unbiased estimate of the shingle sets' Jaccard similarity."""
    return float(np.mean(a == b))


def band_keys(sig: np.ndarray) -> list[bytes]:
    """One 13-byte bucket key per band: the band's number, then a 96-bit hash of its 8 values (two
    documents share a key iff a band agrees, up to ~2^-96 per pair)."""
    raw = sig.tobytes()  # one copy, cut per band (the bytes of sig[b * ROWS : (b + 1) * ROWS])
    step = ROWS * sig.itemsize
    return [
        bytes((b,)) + hashlib.blake2b(raw[b * step : (b + 1) * step], digest_size=12).digest()
        for b in range(BANDS)
    ]


def components(edges: list[tuple[str, str]]) -> dict[str, str]:
    """Union-find over edges; maps every non-representative member to its component's smallest id."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            parent[hi] = lo
    return {x: find(x) for x in parent if find(x) != x}
