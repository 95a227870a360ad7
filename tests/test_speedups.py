"""The compiled helpers (data_governance/_speedups.c) give exactly what their numpy references give:
the Gopher n-gram statistics for every n and limit, early exits included, MinHash signatures bit for
bit, and the same quality decisions and band keys on crawled texts."""

from __future__ import annotations

import importlib
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commonweights.config import QualityConfig
from data_governance import dedup, extract, quality
from pipelines import curate
from pipelines.sample_crawl import write_sample_crawl, write_scale_crawl

BUILD_HINT = (
    "data_governance._speedups is not built: run `.venv/bin/pip install -e .` (or `make install`) in the "
    "repository root; it compiles data_governance/_speedups.c and needs a C compiler (gcc or clang) "
    "and Python's headers"
)


def speedups():
    try:
        return importlib.import_module("data_governance._speedups")
    except ImportError as exc:
        pytest.fail(f"{BUILD_HINT} ({exc})")


def test_extension_is_built_and_used():
    s = speedups()
    assert Path(s.__file__).parent == Path(quality.__file__).parent  # built in place, next to its source
    assert quality.COMPILED and dedup.COMPILED, BUILD_HINT
    assert quality.Grams is quality.CompiledGrams
    # Its n-gram hash constants are the numpy reference's.
    assert (s.NGRAM_MIX, s.NGRAM_ROLL) == (int(quality._MIX), int(quality._ROLL))


# ---------------------------------------------------------------- tokens

TOKENISH = st.lists(
    st.sampled_from(
        ["word", "Ünï", "3.5", "U.S", "don't", "l’été", "_", "__", "...", "--", "-", ".", ",", "'", "’", "#",
         "…", "•", "x1", "٣", "字", "😀", "\udc80", " ", "  ", "\n", "\t", "\u00a0", "\u2003", "\x1c",
         "\u0085", "\u200b", "\ufeff", "a,b", "a.,b", "a'", "'a"]
    ),
    max_size=80,
).map("".join)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.one_of(TOKENISH, st.text(st.characters(codec=None), max_size=300)))
def test_tokens_equal_the_pattern(text):
    s = speedups()
    got = s.tokens(text)
    assert got == quality.tokens_reference(text) == quality._TOKEN.findall(text)
    assert quality.tokens(text) == got
    assert s.count_chunks(text) == len(text.split())


# ---------------------------------------------------------------- n-gram statistics

# Few, short words of unequal lengths (one not ASCII): n-grams repeat, overlap and tie, blocks repeat
# verbatim, as boilerplate does.
SMALL_VOCAB = st.sampled_from(["a", "bb", "ccc", "a'b", "dd", "Ünï", "e", "字"])
REPETITIVE = st.lists(
    st.tuples(st.lists(SMALL_VOCAB, min_size=1, max_size=30), st.integers(1, 5)), max_size=12
).map(lambda blocks: [w for block, k in blocks for w in block * k])
LIMITS = (0.0, 0.01, 0.05, 0.1, 0.15, 0.2, 0.3, 0.6, 0.9)


def assert_same_statistics(ws: list[str]) -> None:
    """Every statistic of the C code equals numpy's WordGrams, for every n and limit."""
    s = speedups()
    ref = quality.WordGrams(ws)
    ids, lengths, chars = s.word_ids(ws)
    assert np.array_equal(np.frombuffer(ids, np.uint64), ref.ids)
    assert np.array_equal(np.frombuffer(lengths, np.int64), ref.lengths)
    assert chars == ref.total_chars == sum(map(len, ws))
    size = max(chars, 1)
    for n in range(1, 12):
        assert s.top_ngram(ids, lengths, n) == ref._top(n), n
        assert s.repeat_cover(ids, lengths, n) == ref.covered_by_repeats(n), n
        assert s.duplicated_chars(ids, lengths, n) == ref.duplicated_chars(n), n
        if len(ws) >= n:
            assert s.longest_ngram(lengths, n) == int((ref.cum[n:] - ref.cum[:-n]).max()), n
        for limit in LIMITS:
            # The early exit stops at the same point as numpy's bounded scan: the same partial count.
            assert s.duplicated_chars(ids, lengths, n, size, limit) == ref._scan(n, size, limit), (n, limit)
    for limit in LIMITS:
        # In the order the block runs them, so the top n-gram bound applies on both sides.
        ours, theirs = quality.CompiledGrams(ws), quality.WordGrams(ws)
        for n in (2, 3, 4):
            assert ours.top_over(n, size, limit) == theirs.top_over(n, size, limit), (n, limit)
        for n in range(5, 11):
            want = theirs.duplicated_over(n, size, limit, base=5)
            assert (
                ours.duplicated_over(n, size, limit, base=5)
                == want
                == (ref.duplicated_chars(n) / size > limit)
            )


@settings(max_examples=300, deadline=None)
@given(REPETITIVE)
def test_ngram_statistics_equal_numpy_on_repetitive_word_lists(ws):
    assert_same_statistics(ws)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=8), max_size=200))
def test_ngram_statistics_equal_numpy_on_arbitrary_words(ws):
    assert_same_statistics(ws)


@pytest.mark.parametrize(
    "ws", [[], ["a"], ["a", "a"], ["x", "y", "x"], ["w"] * 11, ["ab", "c"] * 6, ["é"] * 3]
)
def test_ngram_statistics_on_empty_and_short_texts(ws):
    assert_same_statistics(ws)
    s = speedups()
    ids, lengths, _ = s.word_ids(ws)
    for n in range(len(ws) + 1, 12):  # no n-gram at all
        assert s.top_ngram(ids, lengths, n) == (0, 0)
        assert s.repeat_cover(ids, lengths, n) == s.duplicated_chars(ids, lengths, n, 1, 0.0) == 0


@settings(max_examples=100, deadline=None)
@given(REPETITIVE, REPETITIVE)
def test_ngram_statistics_of_interleaved_texts_and_any_arrays(a, b):
    """The arrays of the last text are kept between calls (for bytes, which cannot change): calls that
    alternate between two texts, numpy arrays (never kept) and n beyond the kept rows all give what
    a fresh computation gives."""
    s = speedups()
    ta, tb = s.word_ids(a), s.word_ids(b)
    for n in (2, 3, 1, 5, 14, 4, 13, 12, 6):
        for ids, lengths, _ in (ta, tb, ta):
            arrays = np.frombuffer(ids, np.uint64).copy(), np.frombuffer(lengths, np.int64).copy()
            for args in ((ids, lengths), arrays):
                ref = quality.WordGrams(a if ids is ta[0] else b)
                assert s.top_ngram(*args, n) == ref._top(n), n
                assert s.repeat_cover(*args, n) == ref.covered_by_repeats(n), n
                assert s.duplicated_chars(*args, n) == ref.duplicated_chars(n), n


def test_ngram_statistics_of_a_known_text():
    """By hand: "a b a b a b": the top 2-gram "a b" thrice (3 × 3 characters), "a b a b" repeated once
    after the greedy scan remembers "a b a b" at 0 and "b a b a" at 1 and finds "a b a b" at 2."""
    s = speedups()
    ids, lengths, chars = s.word_ids(["a", "b"] * 3)
    assert chars == 6
    assert s.top_ngram(ids, lengths, 2) == (9, 3)
    assert s.duplicated_chars(ids, lengths, 4) == 4
    assert s.repeat_cover(ids, lengths, 2) == 4  # words 1-4 lie in a repeat of an earlier 2-gram
    assert s.longest_ngram(lengths, 3) == 3


def test_bad_arrays_get_clear_errors():
    s = speedups()
    ids, lengths, _ = s.word_ids(["a", "b", "c"])
    with pytest.raises(ValueError, match="differ in length"):
        s.top_ngram(ids, lengths[:8], 2)
    with pytest.raises(ValueError, match="64-bit integers"):
        s.top_ngram(np.zeros(3, np.int32), np.zeros(3, np.int32), 2)
    with pytest.raises(ValueError, match="n must be at least 1"):
        s.duplicated_chars(ids, lengths, 0)
    with pytest.raises(TypeError, match="buffer of 64-bit integers"):
        s.repeat_cover([1, 2, 3], lengths, 2)
    out = np.empty(dedup.BANDS * dedup.ROWS, np.uint64)
    with pytest.raises(ValueError, match="same length"):
        s.minhash(s.word_crc32(["a"]), dedup._A, dedup._B[:5], out, dedup.NGRAM, int(dedup._POLY))
    with pytest.raises(TypeError, match="writable"):
        s.minhash(s.word_crc32(["a"]), dedup._A, dedup._B, bytes(out.nbytes), dedup.NGRAM, int(dedup._POLY))
    with pytest.raises(TypeError, match="not str"):
        s.word_crc32(["a", 3])


# ---------------------------------------------------------------- Gopher quality counts and C4 lines

# Line soup: every line break str.splitlines() knows ("\r\n" one of them), white space that is not
# ASCII, citation marks whole and broken, C4's phrases in either case and with the two non-ASCII
# letters that lower-case to ASCII (the Kelvin sign, İ), bullets and ellipses at line ends.
LINEISH = st.lists(
    st.sampled_from(
        ["The ferry left.", "word", "Ünï", "x", "a b c", "ok!", "why?", 'he said "yes."', "it's'", "...", "…",
         ". . .", "•", "-", "#", "##", "{", "}", "[1]", "[12]", "[]", "[edit]", "[Edit]", "[citation needed]",
         "[citation", "[٣]", "[x]", "lorem ipsum", "LOREM IPSUM", "lorem İpsum", "JavaScript", "javascrİpt",
         "terms of use", "Terms Of Use", "privacy policy", "cookie policy", "COOKIE POLICY", "uses cookies",
         "use of cookies", "use cookies", "use coo\u212aies", "COO\u212aIE POLICY", "polic", "cookies",
         "Dr. Who.", "end.)", "end.’", 'end!" Next', "3.5", " ", "  ", "\t", "\u00a0", "\u2003", "\u3000",
         "\n", "\n\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028",
         "\u2029", "字", "😀", "aaaaaaaa"]
    ),
    max_size=60,
).map("".join)  # fmt: skip


def c4_configs():
    base = QualityConfig()
    for max_word, min_words in ((1000, 3), (4, 3), (1, 0), (6, 1), (1000, 5)):
        yield base.model_copy(update={"c4_max_word_length": max_word, "c4_min_words_per_line": min_words})


@settings(max_examples=400, deadline=None)
@given(st.one_of(LINEISH, TOKENISH, st.text(st.characters(codec=None), max_size=200)))
def test_gopher_counts_equal_the_reference(text):
    s = speedups()
    words = quality.tokens(text)
    want = quality.gopher_counts_reference(text, words)
    assert s.gopher_counts(text, words, quality._PUNCT_CHARS) == want
    assert quality.gopher_counts(text, words) == want


@settings(max_examples=400, deadline=None)
@given(st.one_of(LINEISH, TOKENISH, st.text(st.characters(codec=None), max_size=200)))
def test_tokens_are_counted_as_gopher_counts_counts_them(text):
    """The tokenizer's own counts of the tokens it makes are those gopher_counts takes afterwards."""
    s = speedups()
    words, symbols, symbol_chars, with_letter = s.tokens_counted(text, quality._PUNCT_CHARS)
    assert words == quality.tokens_reference(text)
    assert (symbols, symbol_chars, with_letter) == quality.gopher_counts_reference(text, words)[:3]
    assert quality.tokens_counted(text) == (words, (symbols, symbol_chars, with_letter))
    assert quality.gopher_counts(text, words, (symbols, symbol_chars, with_letter)) == quality.gopher_counts(
        text, words
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(SMALL_VOCAB, st.text(st.characters(codec=None), max_size=6)), max_size=60))
def test_gopher_counts_of_any_word_list(words):
    """Words the tokenizer would not make (empty ones, mixed punctuation and letters) count alike."""
    text = " ".join(words)
    assert quality.gopher_counts(text, words) == quality.gopher_counts_reference(text, words)


@settings(max_examples=400, deadline=None)
@given(st.one_of(LINEISH, st.text(st.characters(codec=None), max_size=200)))
def test_c4_lines_equal_the_reference(text):
    """The compiled line filter keeps the same text, counts the same sentences and reports the same
    page failures in the same order as `c4_lines`, for any line limits and sentence target."""
    speedups()
    for q in c4_configs():
        kept, sentences, failed = quality.c4_lines(text, q)
        assert quality.c4(text, q) == ("\n".join(kept).strip(), sentences, failed)
        for enough in (0, 1, 5):
            kept, sentences, failed = quality.c4_lines(text, q, enough=enough)
            assert quality.c4(text, q, enough=enough) == ("\n".join(kept).strip(), sentences, failed)


def test_c4_page_failures_keep_their_order():
    """A '{' on an earlier line than 'lorem ipsum' is reported first, and the other way round."""
    q = QualityConfig()
    curly_first = "Code {like this} is here, see.\nSome lorem ipsum filler text here.\n"
    lorem_first = "Some lorem ipsum filler {text} here.\nCode {like this} is here, see.\n"
    assert quality.c4(curly_first, q)[2] == ["c4_curly_bracket", "c4_lorem_ipsum"]
    assert quality.c4(lorem_first, q)[2] == ["c4_lorem_ipsum", "c4_curly_bracket"]
    assert quality.c4("Enable JavaScript, or lorem ipsum {x} is all.\n", q)[2] == ["c4_lorem_ipsum"]


@pytest.mark.parametrize(
    "line, dropped, lorem",
    [
        ("This site uses COO\u212aIES to work well.", True, False),  # KELVIN SIGN lowers to "k"
        ("Read our COO\u212aIE POLICY first, please.", True, False),
        ("Some LOREM \u0130PSUM text is here.", False, False),  # İ lowers to "i" and a combining dot
        ("Some LOREM IPSUM text is here.", False, True),
        ("Enable JAVASCRIPT to see the rest.", True, False),
    ],
)
def test_c4_lower_cases_as_python_does(line, dropped, lorem):
    q = QualityConfig()
    kept, sentences, failed = quality.c4_lines(line, q)
    assert quality.c4(line, q) == ("\n".join(kept).strip(), sentences, failed)
    assert (kept == []) == dropped and ("c4_lorem_ipsum" in failed) == lorem


# Lines that repeat, some only in white space or in one character in the middle (equal length and
# ends: the compiled table compares such lines in full).
REPEATED_LINES = st.lists(
    st.sampled_from(
        ["The ferry left.", "The ferry left. ", " The ferry left.", "x", "", " ", "\u3000", "ok!", "字。",
         "a" * 20 + "X" + "a" * 20, "a" * 20 + "Y" + "a" * 20, "b" * 31, "b" * 30, "end…", "«quote»", "\r"]
    ),
    max_size=40,
).map("\n".join)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.one_of(REPEATED_LINES, LINEISH, st.text(st.characters(codec=None), max_size=200)))
def test_fineweb_counts_equal_the_reference(text):
    speedups()
    assert quality.fineweb_counts(text) == quality.fineweb_counts_reference(text)


def test_fineweb_duplicates_are_whole_lines_not_hashes():
    """Lines of one length with the same 16 characters at each end differ; only true repeats count."""
    a, b = "a" * 20 + "X" + "a" * 20, "a" * 20 + "Y" + "a" * 20
    assert quality.fineweb_counts("\n".join([a, b, a, " ", b + " "])) == (4, 0, 0, len(a))
    assert quality.fineweb_counts_reference("\n".join([a, b, a, " ", b + " "])) == (4, 0, 0, len(a))


def test_counts_refuse_words_that_are_not_str():
    s = speedups()
    with pytest.raises(TypeError, match="gopher_counts: expected str"):
        s.gopher_counts("a b", ["a", 3], quality._PUNCT_CHARS)
    with pytest.raises(TypeError, match="c4_filter: expected str"):
        s.c4_filter(b"a b c.", 1000, 3, 5)


# ---------------------------------------------------------------- MinHash

WORDISH = st.lists(
    st.sampled_from(
        ["harbour", "Ferry,", "(ferry)", "the", "The", "—", "…", "«quay»", "x", "ÉTÉ", "İstanbul", "ß", "字",
         "😀", "'", "...", "a.b", " ", "\n", "\t", "\u00a0", "\u2003", "\x1c", "\u0085"]
    ),
    max_size=120,
).map("".join)  # fmt: skip
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=("Cs",)), max_size=400)


def assert_same_signature(text: str) -> None:
    s = speedups()
    ws = dedup.words(text)
    hashes = dedup.word_hashes(ws)
    assert np.frombuffer(s.text_crc32(text.lower(), dedup._PUNCT), np.uint64).tolist() == hashes.tolist()
    assert np.frombuffer(s.word_crc32(ws), np.uint64).tolist() == [zlib.crc32(w.encode()) for w in ws]
    ours, ref = dedup.signature(text), dedup.signature_reference(text)
    assert ours.dtype == ref.dtype == np.uint64 and ours.shape == ref.shape == (dedup.BANDS * dedup.ROWS,)
    assert ours.tobytes() == ref.tobytes()
    assert dedup.band_keys(ours) == dedup.band_keys(ref)


@settings(max_examples=300, deadline=None)
@given(WORDISH)
def test_signature_bitwise_equal_on_word_soup(text):
    assert_same_signature(text)


@settings(max_examples=200, deadline=None)
@given(ANY_TEXT)
def test_signature_bitwise_equal_on_any_text(text):
    assert_same_signature(text)


@pytest.mark.parametrize(
    "text", ["", "   \n\t", "...", "one", "one two", "a b c d", "a b c d e", "a b c d e f"]
)
def test_signature_on_empty_and_short_texts(text):
    assert_same_signature(text)
    if not dedup.words(text):
        assert np.array_equal(dedup.signature(text), dedup._EMPTY)


def test_band_keys_are_those_of_the_sliced_signature():
    sig = dedup.signature("the ferry leaves the harbour at dawn and returns at dusk with the tide")
    import hashlib

    bands = [sig[b * dedup.ROWS : (b + 1) * dedup.ROWS].tobytes() for b in range(dedup.BANDS)]
    want = [bytes((b,)) + hashlib.blake2b(band, digest_size=12).digest() for b, band in enumerate(bands)]
    assert dedup.band_keys(sig) == want


def test_a_lone_surrogate_raises_as_encoding_does():
    text = "good words \udc80bad here"
    with pytest.raises(UnicodeEncodeError):
        dedup.signature_reference(text)
    with pytest.raises(UnicodeEncodeError):
        dedup.signature(text)


# ---------------------------------------------------------------- crawled texts


def extracted_texts(folder: Path) -> list[str]:
    texts: list[str] = []
    for f in sorted((folder / "warc").glob("*.warc*")):
        with open(f, "rb") as fh:
            for r in curate.read_records(fh, f.name):
                if not r.payload:
                    continue
                html = r.payload.decode("utf-8", "replace")
                try:
                    text = extract.main_text("resiliparse", html, extract.parse(html))
                except Exception:  # pages that are not HTML: the pipeline drops them before the rules
                    continue
                if text:
                    texts.append(text)
    return texts


@pytest.fixture(scope="module")
def crawl_texts(tmp_path_factory) -> list[str]:
    """The sample crawl's extracted texts and those of a small realistic crawl (boilerplate, near and
    exact duplicates, thin listing pages)."""
    sample, scale = tmp_path_factory.mktemp("sample"), tmp_path_factory.mktemp("scale")
    write_sample_crawl(sample, seed=0, pages=240)
    write_scale_crawl(scale, seed=5, pages=240, files=2)
    texts = extracted_texts(sample) + extracted_texts(scale)
    assert len(texts) >= 400
    return texts


def test_crawled_texts_get_the_same_statistics(crawl_texts):
    for text in crawl_texts[::4]:
        assert quality.tokens(text) == quality.tokens_reference(text)
        assert_same_statistics(quality.tokens(text))
        assert_same_signature(text)


def test_crawled_texts_get_the_same_decisions(crawl_texts, monkeypatch):
    """quality.fast with the compiled statistics and with numpy's: the same kept text and reasons."""
    speedups()
    q = QualityConfig()
    ours = [quality.fast(t, q) for t in crawl_texts]
    monkeypatch.setattr(quality, "Grams", quality.WordGrams)
    monkeypatch.setattr(quality, "_speedups", None)  # tokens_reference too
    theirs = [quality.fast(t, q) for t in crawl_texts]
    assert ours == theirs
    failed = {r for _, reasons in ours for r in reasons}
    assert {"gopher_top_2_gram", "gopher_dup_5_gram"} & failed  # the n-gram rules decide some pages
    assert any(not reasons for _, reasons in ours)  # and most pages pass
    for text in crawl_texts:
        assert dedup.signature(text).tobytes() == dedup.signature_reference(text).tobytes()


def test_modules_fall_back_to_numpy_without_the_extension(crawl_texts):
    """Where the extension cannot be imported the numpy reference runs, with the same results."""
    import json
    import subprocess
    import sys

    texts = crawl_texts[:40] + ["", "a b a b a b a b a b a b"]
    code = (
        "import json, sys\n"
        "sys.modules['data_governance._speedups'] = None  # an import of it now raises ImportError\n"
        "from commonweights.config import QualityConfig\n"
        "from data_governance import dedup, quality\n"
        "texts = json.load(sys.stdin)\n"
        "print(json.dumps({'compiled': [quality.COMPILED, dedup.COMPILED],\n"
        "    'grams': quality.Grams.__name__,\n"
        "    'fast': [quality.fast(t, QualityConfig()) for t in texts],\n"
        "    'signatures': [dedup.signature(t).tobytes().hex() for t in texts]}))\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd=root,
        check=True,
    )
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["compiled"] == [False, False] and got["grams"] == "WordGrams"
    assert got["fast"] == [list(quality.fast(t, QualityConfig())) for t in texts]
    assert got["signatures"] == [dedup.signature(t).tobytes().hex() for t in texts]


PIIISH = st.text(st.sampled_from("AZaz09 .-_<>\n+@٣٤۵"), max_size=80)


@settings(max_examples=500, deadline=None)
@given(st.one_of(PIIISH, st.text(st.characters(codec=None), max_size=200)))
def test_pii_hints_are_those_of_the_three_patterns(text):
    from data_governance import pii

    want = (bool(pii._IBAN_HINT(text)), bool(pii._IPV4_HINT(text)), bool(pii._PHONE_HINT(text)))
    assert pii._compiled_hints is not None, "data_governance._speedups is not built"
    assert pii._compiled_hints(text) == want


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "call +41 44 123 45 67",
                "IBAN DE89 3704 0044 0532 0130 00",
                "from 8.8.8.8",
                "or 10.0.0.1",
                "on 2026-01-02",
                "mail a.b@example.org",
                "ref GB82WEST12345698765432!",
                "room 12",
                "x",
                "\n",
            ]
        ),
        max_size=12,
    ).map(" ".join)
)
def test_redaction_is_the_same_with_the_compiled_hints_and_without(text):
    """The hints are taken once before the substitutions (compiled) instead of before each pattern:
    the redacted text and the counts do not change."""
    from data_governance import pii

    compiled = pii.redact(text)
    saved, pii._compiled_hints = pii._compiled_hints, None
    try:
        assert pii.redact(text) == compiled
    finally:
        pii._compiled_hints = saved


HTMLISH = st.text(st.sampled_from("robtsdmlicenaveg.RIGHTSCLDMBO İKKẞ<>= \n-"), max_size=60)


@settings(max_examples=500, deadline=None)
@given(st.one_of(HTMLISH, st.text(st.characters(codec=None), max_size=120)))
def test_html_hints_are_those_of_the_substring_tests(html):
    """The compiled pre-scan of the page source says what `str.lower()` and the substring tests say,
    non-ASCII letters that lower-case to ASCII (İ, the Kelvin sign) included."""
    from data_governance import signals

    assert signals._compiled_hints is not None, "data_governance._speedups is not built"
    assert signals._hints(html) == signals._hints_reference(html)
    words = ("robots", "TDM", "Licence", "creativecommons", ".RIGHTS")
    for word in words:
        assert signals._hints(f"<p>{html}{word}</p>") == signals._hints_reference(f"<p>{html}{word}</p>")
