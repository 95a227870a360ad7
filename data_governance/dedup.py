"""Exact and near-duplicate detection: MinHash over word 5-grams with LSH banding (FineWeb's
parameters: 14 bands of 8 hashes), plus the exact text hash as one more bucket.

The result never depends on how work was split: documents that share a bucket are linked, linked
documents form components, and every component keeps its smallest doc_id.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

NGRAM = 5
BANDS = 14
ROWS = 8
_PRIME = np.uint64((1 << 61) - 1)
_rng = np.random.default_rng(20260101)  # fixed: signatures must be identical on every worker and run
_A = _rng.integers(1, (1 << 61) - 1, size=BANDS * ROWS, dtype=np.uint64)
_B = _rng.integers(0, (1 << 61) - 1, size=BANDS * ROWS, dtype=np.uint64)
_WORD = re.compile(r"\w+")


def shingles(text: str) -> set[bytes]:
    words = _WORD.findall(text.lower())
    if len(words) < NGRAM:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + NGRAM]).encode() for i in range(len(words) - NGRAM + 1)}


def signature(text: str) -> np.ndarray:
    grams = shingles(text)
    if not grams:
        return np.full(BANDS * ROWS, np.iinfo(np.uint64).max, dtype=np.uint64)
    x = np.array(
        [int.from_bytes(hashlib.blake2b(g, digest_size=8).digest(), "little") for g in grams], dtype=np.uint64
    )
    # (a*x + b) mod p, products wrapping mod 2**64: still a fixed permutation-like family per hash,
    # and deterministic on every machine, which is what the signature needs.
    h = (np.outer(x, _A) + _B) % _PRIME
    return h.min(axis=0)


def band_keys(sig: np.ndarray) -> list[str]:
    return [
        f"b{b}:" + hashlib.blake2b(sig[b * ROWS : (b + 1) * ROWS].tobytes(), digest_size=12).hexdigest()
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
