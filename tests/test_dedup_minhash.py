"""The vectorised MinHash: signatures are the same in every process, estimate Jaccard similarity,
and their LSH bands link near-duplicates but not different documents."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data_governance import dedup

ROOT = Path(__file__).resolve().parents[1]


def article(seed: int, sentences: int = 40) -> str:
    rng = random.Random(seed)
    vocab = [f"w{rng.randrange(10**6)}" for _ in range(3000)]
    return "\n".join(" ".join(rng.choice(vocab) for _ in range(12)) + "." for _ in range(sentences))


def true_jaccard(a: str, b: str) -> float:
    def grams(t: str) -> set[tuple[str, ...]]:
        w = dedup.words(t)
        return {tuple(w[i : i + dedup.NGRAM]) for i in range(len(w) - dedup.NGRAM + 1)}

    ga, gb = grams(a), grams(b)
    return len(ga & gb) / len(ga | gb)


def shares_band(a: str, b: str) -> bool:
    return bool(set(dedup.band_keys(dedup.signature(a))) & set(dedup.band_keys(dedup.signature(b))))


def test_shingles_are_the_distinct_word_5grams():
    text = "One two three four five six. One two three four five six!"
    ws = dedup.words(text)
    assert ws[:6] == ["one", "two", "three", "four", "five", "six"]  # case and punctuation ignored
    distinct = {tuple(ws[i : i + 5]) for i in range(len(ws) - 4)}
    assert len(dedup.shingle_hashes(text)) == len(distinct) == 6  # 8 five-grams, 2 repeated
    assert len(dedup.shingle_hashes("just three words")) == 1  # shorter texts: one shingle
    assert len(dedup.shingle_hashes("")) == 0 and dedup.signature("").shape == (dedup.BANDS * dedup.ROWS,)


def test_signature_is_the_same_in_another_process():
    """Workers must agree: no salted hashes (Python's str hash differs per process)."""
    text = article(7)
    here = dedup.signature(text)
    code = (
        "import sys; from data_governance import dedup; "
        "sys.stdout.write(dedup.signature(sys.stdin.read()).tobytes().hex())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=text, capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert np.frombuffer(bytes.fromhex(out), dtype=np.uint64).tolist() == here.tolist()


@pytest.mark.parametrize("seed", range(6))
def test_signature_agreement_estimates_jaccard(seed):
    rng = random.Random(seed)
    a = article(seed).splitlines()
    b = list(a)
    for i in rng.sample(range(len(b)), rng.randint(2, 25)):  # edit some sentences
        b[i] = article(1000 + seed * 100 + i, 1)
    ta, tb = "\n".join(a), "\n".join(b)
    j = true_jaccard(ta, tb)
    est = dedup.jaccard_estimate(dedup.signature(ta), dedup.signature(tb))
    # 112 hash functions: the standard error is at most sqrt(0.25 / 112) ≈ 0.047.
    assert abs(est - j) < 0.15, (est, j)


def test_near_duplicates_share_a_band_and_different_documents_do_not():
    base = article(1)
    lines = base.splitlines()
    near = "\n".join(lines[:-1] + ["A different closing line for this copy of the story."])
    assert true_jaccard(base, near) > 0.9 and shares_band(base, near)
    others = [article(100 + k) for k in range(30)]
    assert not any(shares_band(base, o) for o in others)
    # Half the text replaced: J ≈ 0.33, a band matches with probability < 1e-3.
    half = "\n".join(lines[:20] + article(2).splitlines()[:20])
    assert true_jaccard(base, half) < 0.5 and not shares_band(base, half)


def test_exact_copy_has_the_same_signature():
    text = article(3)
    assert dedup.signature(text).tolist() == dedup.signature(text.upper().replace(".", " .")).tolist()


def test_components_keep_the_smallest_id():
    assert dedup.components([("b", "c"), ("a", "c"), ("d", "e")]) == {"b": "a", "c": "a", "e": "d"}
