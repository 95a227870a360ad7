"""The shortcuts of the fast curation path decide exactly as the plain definitions do: robots rules
selected once per domain and agent, PII patterns skipped where a text cannot match them, the bounded
duplicate n-gram scan, MinHash's minimum taken before the shift, and DOM collections read in one pass."""

from __future__ import annotations

import random

import lxml.html
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commonweights.config import GovernanceConfig
from data_governance import dedup, pii, quality, signals
from data_governance.licence import find_licences
from data_governance.robots import DIGIT_TOKENS, RobotsRule, RobotsTxt, Snapshot

AGENTS = GovernanceConfig().agents


# ---------------------------------------------------------------- robots


def test_cached_robots_evidence_equals_per_agent_verdicts():
    """RobotsRule shares one rule set between agents whose groups are the same; its evidence is the
    one that calling the matcher for every agent and URL gives, content-usage rules included."""
    body = (
        b"User-agent: GPTBot\nUser-agent: CCBot\nDisallow: /private\nAllow: /private/open$\n"
        b"Content-Usage: /news train-ai=n\n\n"
        b"User-agent: ClaudeBot\nDisallow: /*.pdf$\nAllow: /\n\n"
        b"User-agent: *\nDisallow: /tmp/\nContent-Usage: train-genai=n\n"
    )
    snap = Snapshot("site.example", "2026-11-01", 200, body)
    rule = RobotsRule({"site.example": snap}, GovernanceConfig())
    robots = RobotsTxt.parse(body)
    urls = [
        "https://site.example/",
        "https://site.example/private/x",
        "https://site.example/private/open",
        "https://site.example/news/today",
        "https://site.example/report.pdf",
        "https://site.example/tmp/a?b=1",
    ]
    for url in urls * 2:  # the second round reads the cache
        ev = rule.evaluate("site.example", url)
        for agent in AGENTS:
            v = robots.verdict(url, agent, DIGIT_TOKENS)
            assert ev.verdicts[agent] == v.allowed
            assert ev.rules[agent] == {
                "matched": v.matched,
                "groups": list(v.groups),
                "rule": v.rule.to_json() if v.rule else None,
            }
            assert ev.content_usage.get(agent) == robots.content_usage(url, agent, DIGIT_TOKENS)
        assert ev.reasons == [f"robots:{a}" for a in AGENTS if not ev.verdicts[a]]
    shared = {id(rules) for _, rules in rule.compiled(snap)[1]}
    assert len(shared) == 3  # GPTBot+CCBot, ClaudeBot, and every other agent on the * group


# ---------------------------------------------------------------- PII

_PII_ALPHABET = "0123456789 .-+()@:/ABDEGZabcxyz\n"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_PII_ALPHABET, max_size=60))
def test_pii_hints_hold_wherever_a_pattern_matches(text):
    """A pattern is skipped only where its hint is absent; every match contains the hint."""
    for m in pii._EMAIL.finditer(text):
        assert "@" in m.group(0)
    for m in pii._IBAN.finditer(text):
        assert pii._IBAN_HINT(m.group(0))
    for m in pii._IPV4.finditer(text):
        assert pii._IPV4_HINT(m.group(0))
    for m in pii._PHONE.finditer(text):
        assert pii._PHONE_HINT(m.group(0))


def test_redaction_with_and_without_hints():
    text = (
        "Write to ana.lima@example.org or call +41 44 123 45 67; transfer to DE89 3704 0044 0532 0130 00 "
        "(not GB00 1234), server 8.8.8.8, router 192.168.0.1, order 2024-05-06, 3 items."
    )
    out, counts = pii.redact(text)
    assert counts == {"email": 1, "phone": 1, "ip": 1, "iban": 1}
    assert "<EMAIL>" in out and "<PHONE>" in out and "<IBAN>" in out and "<IP>" in out
    assert "192.168.0.1" in out and "2024-05-06" in out and "GB00 1234" in out
    plain = "No numbers here at all, only words and a date-like word."
    assert pii.redact(plain) == (plain, {"email": 0, "phone": 0, "ip": 0, "iban": 0})


# ---------------------------------------------------------------- quality

_WORDS = "the cat sat on mat and a dog ran far away from home".split()


def _repetitive(seed: int) -> str:
    rng = random.Random(seed)
    base = [rng.choice(_WORDS) for _ in range(rng.randint(5, 60))]
    out: list[str] = []
    while len(out) < rng.randint(20, 400):
        out += base[: rng.randint(1, len(base))] if rng.random() < 0.5 else [rng.choice(_WORDS)]
    return " ".join(out)


@pytest.mark.parametrize("seed", range(40))
def test_bounded_duplicate_scan_decides_as_the_full_count(seed):
    text = _repetitive(seed)
    grams = quality.WordGrams(quality.tokens(text))
    for n in range(5, 11):
        full = grams.duplicated_chars(n)
        assert grams.covered_by_repeats(n) >= full
        for limit in (0.0, 0.05, 0.1, 0.15, 0.3, 0.6, 0.9):
            assert grams.duplicated_over(n, len(text), limit) == (full / len(text) > limit)


@pytest.mark.parametrize(
    "text",
    ["one\ntwo\n\n\nthree\none\n\n\n\ntwo", "a\nb\na\nb\nc", "x\n\ny\n\nx", "\n\nlead and trail\n\n"],
)
def test_repetition_rules_with_and_without_blank_lines(text):
    """Paragraph and line splits take a plain split only where the text has no blank line."""
    q = GovernanceConfig().quality
    grams = quality.WordGrams(quality.tokens(text))
    got = quality._gopher_repetition(text, grams, q)
    paragraphs = quality._PARAGRAPHS.split(text.strip())
    lines = quality._LINES.split(text)
    size = len(text)
    want_para = quality._duplicates(paragraphs)
    want_line = quality._duplicates(lines)
    assert ("gopher_dup_para_frac" in got) == (
        want_para[0] / len(paragraphs) > q.max_duplicate_paragraph_fraction
    )
    assert ("gopher_dup_para_char_frac" in got) == (
        want_para[1] / size > q.max_duplicate_paragraph_char_fraction
    )
    assert ("gopher_dup_line_frac" in got) == (want_line[0] / len(lines) > q.max_duplicate_line_fraction)
    assert ("gopher_dup_line_char_frac" in got) == (want_line[1] / size > q.max_duplicate_line_char_fraction)


# ---------------------------------------------------------------- MinHash


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(_WORDS + ["Ferry,", "(harbour)", "—", "x"]), max_size=80))
def test_minhash_minimum_before_the_shift(words):
    text = " ".join(words)
    x = dedup.shingle_hashes(text)
    sig = dedup.signature(text)
    if len(x) == 0:
        assert np.array_equal(sig, dedup._EMPTY)
        return
    assert sig.dtype == np.uint64 and sig.shape == (dedup.BANDS * dedup.ROWS,)
    assert np.array_equal(sig, ((x[:, None] * dedup._A + dedup._B) >> np.uint64(32)).min(axis=0))


# ---------------------------------------------------------------- one HTML parse


def _big_page(links: int) -> str:
    items = "".join(
        f'<li><a href="/p/{i}" class="c{i % 7}">item {i}</a></li>'
        + ("<meta name=x content=y>" if i % 50 == 0 else "")
        for i in range(links)
    )
    return (
        '<html><head><meta name="robots" content="index, NoAI"><meta name="tdm-reservation" content="1">'
        '<link rel="license" href="https://creativecommons.org/licenses/by/4.0/"></head><body>'
        f"<nav><ul>{items}</ul></nav><article><p>Text.</p></article>"
        '<footer><a href="https://creativecommons.org/licenses/by-sa/4.0/">CC BY-SA 4.0</a>'
        '<a href="/terms">Licensed under CC BY 4.0</a></footer></body></html>'
    )


def test_dom_collections_read_whole_and_in_document_order():
    html = _big_page(600)
    tree = signals.HTMLTree.parse(html)
    collection = tree.document.query_selector_all("a")
    got = signals.nodes(collection)
    assert [n.getattr("href") for n in got] == [collection[i].getattr("href") for i in range(len(collection))]
    assert len(got) == 602
    top = signals.Element(tree.document.query_selector("html"))
    assert [e.get("href") for e in top.iter("a", "link")][:3] == [
        "https://creativecommons.org/licenses/by/4.0/",
        "/p/0",
        "/p/1",
    ]


def test_licence_evidence_on_a_big_page_equals_lxml():
    """The licence finder reads the same evidence from the one resiliparse parse as from lxml."""
    html = _big_page(600)
    ev = signals.parse_html(html)
    assert ev.licences == find_licences(lxml.html.fromstring(html))
    assert [e.location for e in ev.licences] == ["link_rel", "footer", "footer_text"]
    assert ev.robots_meta == ["index", "noai"] and ev.tdm_reservation == "1"


@pytest.mark.parametrize("seed", range(40))
def test_top_ngram_is_the_most_frequent_first_seen(seed):
    """top_chars: the most frequent n-gram (first seen on ties, as Counter.most_common) times its count,
    its length with spaces; many-way ties included."""
    from collections import Counter

    words = _repetitive(seed).split() if seed % 2 else [f"w{i % (seed + 3)}" for i in range(seed * 7 + 10)]
    grams = quality.WordGrams(words)
    for n in (2, 3, 4):
        counted = Counter(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
        if not counted:
            assert grams.top_chars(n) == 0
            continue
        gram, count = counted.most_common(1)[0]
        assert grams.top_chars(n) == len(gram) * count


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=6))
def test_letter_tokens_are_words_with_a_letter_and_never_punctuation(token):
    """What lets the Gopher quality block test only the tokens that are not all letters."""
    from datatrove.utils.text import PUNCTUATION_SET

    if quality._LETTERS_NOT_PUNCT and token.isalpha():
        assert quality._HAS_ALPHA(token) and not PUNCTUATION_SET.issuperset(token)


@pytest.mark.parametrize("words", [["１", "²", "½", "_", "...", "--", "word", "ab’cd", "3.5", "Ⅻ"] * 12])
def test_gopher_quality_counts_on_unusual_tokens(words):
    """Symbols (punctuation-only tokens, the fullwidth digit one among them) and tokens with a letter
    are counted as their plain definitions say."""
    from datatrove.utils.text import PUNCTUATION_SET

    q = GovernanceConfig().quality.model_copy(update={"min_words": 1, "min_alpha_word_ratio": 0.45})
    text = " ".join(words)
    symbols = [w for w in words if PUNCTUATION_SET.issuperset(w)]
    with_letter = [w for w in words if quality._HAS_ALPHA(w)]
    assert "１" in symbols and "Ⅻ" in with_letter
    failed = quality._gopher_quality(text, words, q)
    assert ("gopher_alpha_words" in failed) == (len(with_letter) / len(words) < 0.45)
    mean = (sum(map(len, words)) - sum(map(len, symbols))) / (len(words) - len(symbols))
    assert ("gopher_word_length_low" in failed) == (mean < q.min_mean_word_length)


def test_c4_counts_sentences_only_as_far_as_needed():
    q = GovernanceConfig().quality
    lines = [
        "The ferry left at dawn. It was cold! Was it late? Nobody knew.",
        "This site uses cookies to improve your visit, as you know.",
        "Read our privacy policy before you go any further here.",
        "Short line.",
        "The harbour master wrote it down in the book. Then he slept.",
        "Enable JavaScript to see the timetable of the ferry today.",
    ]
    for k in range(1, len(lines) + 1):
        text = "\n".join(lines[:k])
        kept, full, failed = quality.c4_lines(text, q)
        for enough in (1, 3, 5, 50):
            k2, counted, f2 = quality.c4_lines(text, q, enough=enough)
            assert (k2, f2) == (kept, failed)
            assert counted == full if full < enough else enough <= counted <= full
    kept, full, _ = quality.c4_lines("\n".join(lines), q)
    assert kept == [lines[0], lines[4]] and full == 6


@pytest.mark.parametrize(
    "html, hints",
    [
        ("<p>Text under CC BY-SA 4.0 terms.</p>", (False, True)),
        ("<p>Public domain: CC0.</p>", (False, True)),
        ("<p>ACCBY and CCTV name no terms.</p>", (False, False)),
        ('<meta name="ROBOTS" content="noai"><p>All rights reserved.</p>', (True, False)),
        ('<meta name="DC.Rights" content="x">', (False, True)),
    ],
)
def test_html_hints(html, hints):
    """Pages without a hint skip the tree walk; every page with evidence has its hint."""
    assert signals._hints(html) == hints
    if not hints[1]:
        assert signals.parse_html(html).licences == []


_CC = "https://creativecommons.org/licenses"
_LINKS = "".join(f'<a href="/p/{i}">page {i}</a>' for i in range(50))
_MARKUP_PAGES = {
    # No "CC" name anywhere: only the elements of LICENCE_MARKUP are read.
    "markup_only": f"""<html><head><meta name="license" content="{_CC}/by/4.0/">
        <meta property="dc.rights" content="{_CC}/by-nc/4.0/"><link rel="license" href="{_CC}/by-sa/4.0/">
        <script>/* @license MIT */</script><script type="application/ld+json">
        {{"@type": "Article", "license": "{_CC}/by-nd/4.0/"}}</script></head><body style="color:#CCCCCC">
        {_LINKS}<p><a href="HTTPS://CreativeCommons.org/licenses/by/3.0/">a licence</a></p>
        <map><area href="{_CC}/by/2.0/"></map><figure><a rel="license" href="{_CC}/by/2.5/">x</a></figure>
        <footer>{_LINKS}<a href="{_CC}/by-sa/3.0/">terms</a></footer></body></html>""",
    # A licence named by a footer link's text, the name split by markup: every link is read.
    "split_name": f"""<html><body><p>licensed content</p>{_LINKS}<footer>
        <a href="/terms"><abbr>CC</abbr> BY-SA 4.0</a></footer></body></html>""",
    "cc0_text": f"""<html><body>{_LINKS}<div class="site-footer"><a href="/t">CC0 1.0</a> licence</div>
        </body></html>""",
}


@pytest.mark.parametrize("name", sorted(_MARKUP_PAGES))
def test_licence_markup_selection_finds_what_reading_every_element_finds(name):
    """Where no link text can name a licence, reading only LICENCE_MARKUP elements finds the same
    evidence, in the same order, as reading every element; where one can, every link is read."""
    from resiliparse.parse.html import HTMLTree

    html = _MARKUP_PAGES[name]
    ev = signals.parse_html(html)
    top = signals.Element(HTMLTree.parse(html).document.query_selector("html"))
    assert ev.licences == find_licences(top)  # every element of the one parse, as before
    assert ev.licences, name
    assert (signals._CC_WORD.search(html) is None) == (name == "markup_only")
    if name == "markup_only":
        assert ev.licences == find_licences(lxml.html.fromstring(html))
        locations = [e.location for e in ev.licences]
        assert locations == ["meta", "meta", "link_rel", "json_ld", *["body_link"] * 3, "footer"]


@pytest.mark.parametrize(
    "link",
    [
        "<abbr>CC</abbr> BY-SA 4.0",  # lxml's text pieces: "CC", " BY-SA 4.0", joined with a space
        "CC&nbsp;BY-SA 4.0",
        "CC BY-SA\n        4.0",
        "CC  BY-SA 4.0",
    ],
)
def test_footer_link_text_names_a_licence_whatever_its_white_space(link):
    """A footer link's text names its licence however the page spaces it, and the one parse and lxml
    agree on it (evidence text with white space collapsed)."""
    html = f"<html><body><p>An article.</p><footer><a href='/terms'>{link}</a></footer></body></html>"
    want = [("footer_text", "CC-BY-SA-4.0", "CC BY-SA 4.0")]
    for got in (signals.parse_html(html).licences, find_licences(lxml.html.fromstring(html))):
        assert [(e.location, e.spdx, e.text) for e in got] == want
