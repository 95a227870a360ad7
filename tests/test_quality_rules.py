"""The fast quality rules: each rule at its boundary on crafted texts, the n-gram statistics equal to
datatrove's definitions, and the same keep/drop as datatrove's filters on the crafted texts."""

from __future__ import annotations

import random
import re
from collections import Counter
from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commonweights.config import QualityConfig
from data_governance import quality

SYLLABLES = ["ka", "lo", "mer", "tin", "sa", "vor", "ne", "dus", "pil", "ro", "gan", "fe"]
# Distinct alphabetic words of 4-9 letters: no repeated n-grams unless a test makes them.
VOCAB = ["".join(p) for p in product(SYLLABLES, repeat=3)]


def words(n: int, start: int = 0) -> list[str]:
    return VOCAB[start : start + n]


def sentence(i: int, n: int = 9) -> str:
    """A sentence of n distinct words with two stop words, ending with a period."""
    w = words(n - 2, start=i * n)
    return f"The {' '.join(w[:3])} of {' '.join(w[3:])}."


def prose(sentences: int, start: int = 0, per_line: int = 1) -> str:
    lines = [" ".join(sentence(start + i * per_line + k) for k in range(per_line)) for i in range(sentences)]
    return "\n".join(lines)


def only(block: str, **kw: object) -> QualityConfig:
    return QualityConfig(blocks=[block], **kw)


def fails(text: str, q: QualityConfig) -> list[str]:
    return quality.fast(text, q)[1]


def test_tokens_split_punctuation_like_a_word_tokenizer():
    assert quality.tokens("The U.S. pier, (built 1872) costs 3.5 million... Isn't it?") == [
        "The", "U.S", ".", "pier", ",", "(", "built", "1872", ")", "costs", "3.5", "million", "...",
        "Isn't", "it", "?",
    ]  # fmt: skip


# ---------------------------------------------------------------- Gopher quality


def test_gopher_short_doc_boundary():
    q = only("gopher_quality")
    body = "the of " + " ".join(words(48))  # 50 words that are not punctuation
    assert fails(body + " .", q) == []
    assert fails("the of " + " ".join(words(47)) + " .", q) == ["gopher_short_doc"]


def test_gopher_long_doc_boundary():
    q = only("gopher_quality", max_words=60)
    assert "gopher_long_doc" not in fails("the of " + " ".join(words(58)), q)
    assert "gopher_long_doc" in fails("the of " + " ".join(words(59)), q)


def test_gopher_mean_word_length_bounds():
    q = only("gopher_quality")
    short = " ".join(["the", "of"] + ["ab"] * 60)  # mean ≈ 2.03
    assert "gopher_word_length_low" in fails(short, q)
    long = " ".join(["the", "of"] + ["abcdefghijk"] * 60)  # mean ≈ 10.7
    assert "gopher_word_length_high" in fails(long, q)
    exactly_three = " ".join(["the", "and"] + ["abc"] * 60)  # mean 3.0: inside the bounds
    assert not {"gopher_word_length_low", "gopher_word_length_high"} & set(fails(exactly_three, q))


@pytest.mark.parametrize(("mark", "code"), [("#", "gopher_hashes"), ("…", "gopher_ellipsis")])
def test_gopher_symbol_ratio_boundary(mark, code):
    q = only("gopher_quality")
    base = "the of " + " ".join(words(98))  # 100 words
    # The marks are tokens too: 11 / 111 ≤ 0.1 < 12 / 112.
    assert code not in fails(base + (" " + mark) * 11, q)
    assert code in fails(base + (" " + mark) * 12, q)


def test_gopher_bullet_and_ellipsis_lines():
    q = only("gopher_quality")
    items = [f"- {' '.join(words(6, start=6 * i))} the of" for i in range(10)]
    assert "gopher_bullet_lines" not in fails("\n".join(items[:9] + ["A plain line of the text."]), q)
    assert "gopher_bullet_lines" in fails("\n".join(items), q)  # 10 of 10 > 0.9
    lines = [" ".join(words(8, start=8 * i)) + " the of." for i in range(10)]
    trailing = [ln[:-1] + "..." for ln in lines]
    assert "gopher_ellipsis_lines" not in fails("\n".join(trailing[:3] + lines[3:]), q)  # 0.3
    assert "gopher_ellipsis_lines" in fails("\n".join(trailing[:4] + lines[4:]), q)  # 0.4


def test_gopher_alpha_words_boundary():
    q = only("gopher_quality")
    text = "the of " + " ".join(words(78))  # 80 alphabetic words
    assert "gopher_alpha_words" not in fails(text + " 12" * 20, q)  # 80 / 100
    assert "gopher_alpha_words" in fails(text + " 12" * 21, q)  # 80 / 101


def test_gopher_stop_words_are_distinct_and_case_sensitive():
    q = only("gopher_quality")
    body = " ".join(words(60))
    assert "gopher_stop_words" in fails(body + " the the the", q)
    assert "gopher_stop_words" in fails(body + " The Of", q)
    assert "gopher_stop_words" not in fails(body + " the of", q)


# ---------------------------------------------------------------- Gopher repetition


def test_gopher_duplicate_lines_boundary():
    q = only("gopher_repetition", max_duplicate_line_char_fraction=1.0, max_duplicate_paragraph_fraction=1.0)
    unique = [sentence(i) for i in range(7)]
    assert "gopher_dup_line_frac" not in fails("\n".join(unique + unique[:3]), q)  # 3 / 10
    assert "gopher_dup_line_frac" in fails("\n".join(unique[:6] + unique[:4]), q)  # 4 / 10


def test_gopher_duplicate_paragraph_chars_boundary():
    q = only("gopher_repetition", max_duplicate_paragraph_fraction=1.0, duplicate_ngram_char_fractions={})
    para = sentence(0)  # 48 characters
    other = "\n\n".join(sentence(i) for i in range(1, 5))
    # Repeated paragraph characters over all characters: 20% of the text is the limit.
    text_ok = other + "\n\n" + para + "\n\n" + para
    assert len(para) / len(text_ok) <= 0.2
    assert "gopher_dup_para_char_frac" not in fails(text_ok, q)
    text_bad = sentence(1) + "\n\n" + para + "\n\n" + para
    assert len(para) / len(text_bad) > 0.2
    assert "gopher_dup_para_char_frac" in fails(text_bad, q)


def test_gopher_top_ngram_boundary():
    q = only("gopher_repetition")
    filler = " ".join(words(200))
    # "zebra crossing" repeated k times: its share of characters against the 20% limit for 2-grams.
    for k, expect in ((20, False), (90, True)):
        text = filler + " " + " ".join(["zebra crossing"] * k)
        share = len("zebra crossing") * k / len(text)
        assert (share > 0.2) == expect
        assert ("gopher_top_2_gram" in fails(text, q)) == expect


def _datatrove_stats():
    from datatrove.pipeline.filters import gopher_repetition_filter as g

    return g


@pytest.mark.parametrize("seed", range(12))
def test_ngram_statistics_equal_datatrove_definitions(seed):
    """Our hashed, vectorised statistics give the numbers of datatrove's string-based functions."""
    g = _datatrove_stats()
    rng = random.Random(seed)
    vocab = VOCAB[: rng.choice([5, 20, 200])]
    ws = [rng.choice(vocab) for _ in range(rng.randint(0, 400))]
    if seed % 3 == 0 and ws:  # a block repeated verbatim, as boilerplate is
        ws = ws + ws[: len(ws) // 2]
    grams = quality.WordGrams(ws)
    for n in (2, 3, 4):
        ngrams = g.get_n_grams(ws, n)
        assert grams.top_chars(n) == (g.find_top_duplicate(ngrams) if ngrams else 0), n
    for n in range(5, 11):
        exact = g.find_all_duplicate(ws, n)
        assert grams.duplicated_chars(n) == exact, n
        assert grams.covered_by_repeats(5) >= exact  # the bound that lets most texts skip the scan


# Plain definitions of the statistics, on tuples of words: what the hashed, vectorised ones must equal.
def plain_top_chars(ws: list[str], n: int) -> int:
    grams = [tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)]
    if not grams:
        return 0
    gram, count = Counter(grams).most_common(1)[0]  # first seen wins ties
    return len(" ".join(gram)) * count


def plain_duplicated_chars(ws: list[str], n: int) -> int:
    seen: set[tuple[str, ...]] = set()
    total = i = 0
    while i <= len(ws) - n:
        gram = tuple(ws[i : i + n])
        if gram in seen:
            total += sum(map(len, gram))
            i += n
        else:
            seen.add(gram)
            i += 1
    return total


# Few, short words of unequal lengths: n-grams repeat, overlap and tie; blocks repeat verbatim.
SMALL_VOCAB = st.sampled_from(["a", "bb", "ccc", "a'b", "dd", "Ünï", "e"])
REPETITIVE = st.lists(
    st.tuples(st.lists(SMALL_VOCAB, min_size=1, max_size=30), st.integers(1, 4)), max_size=12
).map(lambda blocks: [w for block, k in blocks for w in block * k])


@settings(max_examples=300, deadline=None)
@given(REPETITIVE)
def test_ngram_statistics_equal_their_plain_definitions(ws):
    grams = quality.WordGrams(ws)
    size = max(sum(map(len, ws)), 1)
    for n in (2, 3, 4):
        assert grams.top_chars(n) == plain_top_chars(ws, n), n
    bound = grams.covered_by_repeats(5)
    for n in range(5, 11):
        exact = plain_duplicated_chars(ws, n)
        assert grams.duplicated_chars(n) == exact, n
        assert bound >= grams.covered_by_repeat_runs(n, 5) >= grams.covered_by_repeats(n) >= exact, n
        for limit in (0.0, 0.05, 0.1, 0.3, 0.6):
            assert grams.duplicated_over(n, size, limit) == (exact / size > limit), (n, limit)
    for limit in (0.0, 0.05, 0.1, 0.2, 0.4, 0.8):
        fresh = quality.WordGrams(ws)  # the tests in order, as the block runs them: the bounds apply
        for n in (2, 3, 4):
            assert fresh.top_over(n, size, limit) == (plain_top_chars(ws, n) / size > limit), (n, limit)


# The tokeniser's documented pattern, run over the whole text in one pass.
PLAIN_TOKEN = re.compile(r"[^\W_]+(?:['’.,][^\W_]+)*|_+|\.{2,}|-{2,}|[^\w\s]")
UNICODE_TEXT = st.text(st.characters(codec=None, exclude_categories=("Cs",)), max_size=300)
MIXED_TEXT = st.lists(
    st.sampled_from(["word", "Ünï", "3.5", "U.S", "don't", "l’été", "_", "__", "...", "--", "-", ".", ",",
                     "#", "…", "•", "'", "’", "x1", "٣", "字", " ", "  ", "\n", "\t", "\u00a0", "\u2003",
                     "\x1c", "\u0085", "\u200b", "\ufeff"]),
    max_size=80,
).map("".join)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.one_of(UNICODE_TEXT, MIXED_TEXT))
def test_tokens_equal_one_regex_pass_on_any_text(text):
    assert quality.tokens(text) == PLAIN_TOKEN.findall(text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["the", "of", "and", "The", "to.", "(with", "that's", "have", "be", "x", "bathe", "into", "ofa"]
        ),
        max_size=12,
    ),
    st.lists(st.sampled_from([" ", "  ", "\n", "\t", ", "]), min_size=1),
    st.integers(0, 4),
)
def test_stop_word_count_is_that_of_the_tokens(ws, seps, minimum):
    text = "".join(w + seps[i % len(seps)] for i, w in enumerate(ws))
    plain = len(quality.STOP_WORDS & set(PLAIN_TOKEN.findall(text)))
    assert quality._stop_words_under(text, quality.tokens(text), minimum) == (plain < minimum)


@settings(max_examples=200, deadline=None)
@given(REPETITIVE, st.sampled_from([" ", "\n", ". ", ".\n", "\n\n"]))
def test_repetitive_texts_get_the_statistics_of_their_tokens(ws, sep):
    """The whole fast mode on repetitive text: the Gopher repetition block reports exactly the n-gram
    rules whose plain statistic is over its limit, in the reference order."""
    text = sep.join(ws)
    if not text.strip():
        return
    q = only("gopher_repetition")
    words = PLAIN_TOKEN.findall(text)
    size = len(text)
    expected = [
        f"gopher_top_{n}_gram"
        for n, limit in sorted(q.top_ngram_char_fractions.items())
        if plain_top_chars(words, n) / size > limit
    ]
    expected += [f"gopher_dup_{n}_gram" for n, limit in sorted(q.duplicate_ngram_char_fractions.items())
                 if plain_duplicated_chars(words, n) / size > limit]  # fmt: skip
    got = [r for r in fails(text, q) if r.startswith(("gopher_top_", "gopher_dup_")) and "_gram" in r]
    assert got == expected


# ---------------------------------------------------------------- C4


def test_c4_sentence_minimum_boundary():
    q = only("c4")
    assert fails(prose(5), q) == []
    assert fails(prose(4), q) == ["c4_few_sentences"]
    assert fails(prose(2, per_line=3), q) == []  # sentences are counted within lines too


def test_c4_line_filter_rewrites_the_kept_text():
    q = only("c4")
    text = "\n".join(
        [
            "A Heading Without Punctuation",
            sentence(0),
            "Please enable JavaScript to see the comments below.",
            sentence(1) + "[12]",
            "This site uses cookies to improve your experience.",
            "Too short.",
            sentence(2),
            "It trails off...",
            sentence(3),
            sentence(4),
        ]
    )
    kept, failed = quality.fast(text, q)
    assert failed == []
    assert kept.splitlines() == [sentence(0), sentence(1), sentence(2), sentence(3), sentence(4)]
    whole = quality.fast(text, only("c4", c4_rewrite=False))[0]
    assert whole == text


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("Lorem ipsum dolor sit amet, consectetur.", "c4_lorem_ipsum"),
        ("The value is {x} here.", "c4_curly_bracket"),
    ],
)
def test_c4_page_level_drops(line, code):
    q = only("c4")
    assert code in fails(prose(6) + "\n" + line, q)
    assert code not in fails(prose(6) + "\n" + line.rstrip("."), q)  # a line C4 removes first


# ---------------------------------------------------------------- FineWeb


def test_fineweb_line_punctuation_boundary():
    q = only("fineweb", fineweb_max_short_line_ratio=1.0, fineweb_max_list_ratio=10.0)
    bare = [" ".join(words(8, start=8 * i)) for i in range(100)]
    ok = [ln + "." for ln in bare[:12]] + bare[12:]  # 12% end in punctuation
    assert "fineweb_line_punct" not in fails("\n".join(ok), q)
    bad = [ln + "." for ln in bare[:11]] + bare[11:]
    assert "fineweb_line_punct" in fails("\n".join(bad), q)


def test_fineweb_short_lines_boundary():
    q = only("fineweb", fineweb_max_list_ratio=10.0)
    long = [sentence(i) for i in range(33)]  # over 30 characters each
    short = [f"Item {VOCAB[i]} here." for i in range(67)]  # at most 30 characters
    assert all(len(s) <= 30 for s in short) and all(len(s) > 30 for s in long)
    assert "fineweb_short_lines" not in fails("\n".join(long + short), q)  # 0.67
    assert "fineweb_short_lines" in fails("\n".join(long[:32] + short), q)  # 67 / 99


def test_fineweb_duplicate_line_characters():
    q = only("fineweb")
    lines = [sentence(i) for i in range(40)]
    assert "fineweb_char_dup" not in fails("\n".join(lines), q)
    assert "fineweb_char_dup" in fails("\n".join(lines + lines[:1]), q)  # 48 / ~1970 chars > 1%


def test_fineweb_list_ratio_boundary():
    q = only("fineweb", fineweb_max_short_line_ratio=1.0)
    # 10 lines of 3 words + a period: 4 tokens per line, 9 breaks over 40 tokens ≤ 0.3.
    lines = [" ".join(words(3, start=3 * i)) + "." for i in range(10)]
    assert "fineweb_list_ratio" not in fails("\n".join(lines), q)
    # 10 lines of 2 words + period: 9 breaks over 30 tokens = 0.3, 12 lines: 11 / 36 > 0.3.
    two = [" ".join(words(2, start=2 * i)) + "." for i in range(12)]
    assert "fineweb_list_ratio" in fails("\n".join(two), q)


# ---------------------------------------------------------------- the same verdicts as datatrove


CRAFTED = {
    "clean prose": prose(8, per_line=2),
    "short": prose(2),
    "repeated lines": "\n".join([sentence(0)] * 8 + [sentence(i) for i in range(1, 5)]),
    "hashes": prose(6) + " #" * 20,
    "no stop words": "\n".join(" ".join(words(9, start=9 * i)) + "." for i in range(8)),
    "few sentences": "\n".join(" ".join(words(30, start=30 * i)) + " the of" for i in range(3)) + ".",
    "curly": prose(7) + "\nThe config is {a: 1} for the of them.",
    "list": "\n".join(f"{VOCAB[i]} the of." for i in range(60)),
    "numbers": prose(6) + "\n" + " ".join(str(i) for i in range(200)) + ".",
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_texts_get_the_reference_verdict(name):
    reference = QualityConfig(mode="datatrove")
    quality.prepare(reference)
    _, ref_failed = quality.evaluate(CRAFTED[name], reference)
    fast_text, fast_failed = quality.evaluate(CRAFTED[name], QualityConfig())
    assert bool(fast_failed) == bool(ref_failed), (fast_failed, ref_failed)
    if ref_failed:
        # The reference stops at its first failing rule; the fast mode lists that rule first.
        assert fast_failed[0] == quality.REFERENCE_CODES[ref_failed[0]]
