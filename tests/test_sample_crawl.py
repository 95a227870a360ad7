"""The embedded sample crawl: deterministic bytes, every governance case present, and ground truth that
agrees with the bytes (read back with warcio, protego and trafilatura, not with the generator's code)."""

from __future__ import annotations

import gzip
import json
import re
import struct
import zlib
from collections import Counter, defaultdict
from html.parser import HTMLParser
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import trafilatura
from protego import Protego
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeadersParserException

from commonweights.config import APERTUS_AGENTS, QualityConfig
from commonweights.errors import ConfigError
from pipelines.sample_crawl import CORRUPT_FILE, write_sample_crawl

REQUIRED_CASES = {
    # case: least count
    "plain": 50,
    "robots_gptbot": 2,
    "robots_agent_group": 2,
    "robots_ccbot_private": 2,
    "robots_ccbot_public": 2,
    "robots_star": 2,
    "robots_path_disallow": 2,
    "robots_path_allow": 2,
    "robots_404": 2,
    "robots_503": 2,
    "robots_missing": 2,
    "licence_cc_by_link_rel": 2,
    "licence_cc_by_sa_footer": 2,
    "licence_cc_by_2_body_link": 2,
    "licence_cc_by_nc_link_rel": 2,
    "licence_cc0_link_rel": 2,
    "tdm_header": 2,
    "tdm_meta": 2,
    "aipref_header": 2,
    "noai_meta": 2,
    "noai_header": 2,
    "multi_signal": 1,
    "tdm_header_unreserved": 2,
    "aipref_allow": 2,
    "meta_robots_index": 2,
    "pii": 2,
    "exact_duplicate": 4,
    "near_duplicate": 4,
    "quality_short": 2,
    "quality_repeated_lines": 2,
    "quality_symbols": 2,
    "empty_text": 1,
    "non_html_png": 1,
    "non_html_pdf": 1,
    "http_404": 1,
    "http_301": 1,
    "charset_windows_1252": 1,
    "corrupt_http_header": 1,
    "truncated_gzip": 1,
}
STOP_WORDS = {"the", "be", "to", "of", "and", "that", "have", "with"}
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"\+?\(?\d[\d ()-]{8,}\d")


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("sample") / "crawl"
    return out, write_sample_crawl(out)


@pytest.fixture(scope="module")
def expected(crawl: tuple[Path, dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (crawl[0] / "expected.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def responses(crawl: tuple[Path, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every response record warcio yields, in file order, with its parsed parts."""
    out = []
    for path in sorted((crawl[0] / "warc").iterdir()):
        with path.open("rb") as f:
            for rec in ArchiveIterator(f):
                if rec.rec_type != "response":
                    continue
                http = rec.http_headers
                out.append(
                    {
                        "warc_file": path.name,
                        "url": rec.rec_headers.get_header("WARC-Target-URI"),
                        "record_id": rec.rec_headers.get_header("WARC-Record-ID"),
                        "protocol": http.protocol if http else None,
                        "status": http.get_statuscode() if http else None,
                        "headers": dict(http.headers) if http else {},
                        "declared": rec.payload_length,
                        "body": rec.content_stream().read(),
                    }
                )
    return out


@pytest.fixture(scope="module")
def pages(expected: list[dict[str, Any]], responses: list[dict[str, Any]]) -> list[tuple[dict, dict]]:
    """(expected row, record) for intact 200 text/html responses."""
    return [
        (row, rec)
        for row, rec in zip(expected, responses, strict=True)
        if rec["status"] == "200"
        and rec["headers"].get("Content-Type", "").startswith("text/html")
        and row["case"] not in ("corrupt_http_header", "truncated_gzip")
    ]


def charset(rec: dict[str, Any]) -> str:
    return rec["headers"]["Content-Type"].split("charset=")[1]


def html_of(rec: dict[str, Any]) -> str:
    return rec["body"].decode(charset(rec))


class Evidence(HTMLParser):
    """Licence links, meta tags and article text, found where a licence detector would look."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.link_rel: list[str] = []
        self.meta: dict[str, str] = {}
        self.footer_links: list[str] = []
        self.body_links: list[str] = []
        self.article: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "link" and a.get("rel") == "license":
            self.link_rel.append(a["href"])
        elif tag == "meta" and "name" in a:
            self.meta[a["name"]] = a.get("content", "")
        elif tag == "a":
            (self.footer_links if "footer" in self.stack else self.body_links).append(a.get("href", ""))
        if tag not in ("link", "meta", "img"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            del self.stack[len(self.stack) - 1 - self.stack[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        if "article" in self.stack and self.stack[-1] == "p":
            self.article.append(data)


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    w = text.lower().split()
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def test_same_arguments_give_identical_bytes(tmp_path: Path, crawl: tuple[Path, dict[str, Any]]) -> None:
    again = write_sample_crawl(tmp_path / "again")
    assert again["sha256"] == crawl[1]["sha256"]
    first = sorted(p.relative_to(crawl[0]) for p in crawl[0].rglob("*") if p.is_file())
    second = sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file())
    assert first == second
    for rel in first:
        assert (crawl[0] / rel).read_bytes() == (tmp_path / "again" / rel).read_bytes(), rel
    other = write_sample_crawl(tmp_path / "other", seed=1)
    assert other["sha256"]["expected.jsonl"] != crawl[1]["sha256"]["expected.jsonl"]


def test_rewrites_an_earlier_crawl_but_refuses_a_foreign_folder(tmp_path: Path) -> None:
    out = tmp_path / "crawl"
    first = write_sample_crawl(out, seed=3)
    assert write_sample_crawl(out, seed=3)["sha256"] == first["sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crawl"]  # no temporary folders left behind
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="notes.txt"):
        write_sample_crawl(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    (out / "warc" / "theirs.warc.gz").write_bytes(b"not ours")
    with pytest.raises(ConfigError, match="theirs.warc.gz"):
        write_sample_crawl(out)
    assert (out / "warc" / "theirs.warc.gz").read_bytes() == b"not ours"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"domains": 12}, "domains=12"),
        ({"pages": 50}, "pages=50"),
        ({"snapshot_date": "1 Nov 2026"}, "snapshot_date"),
    ],
)
def test_rejects_arguments_it_cannot_honour(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        write_sample_crawl(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_counts(crawl: tuple[Path, dict[str, Any]], pages: list[tuple[dict, dict]]) -> None:
    out, summary = crawl
    assert len(pages) == summary["html_pages"] == 240
    domains = {row["url"].split("/")[2] for row, _ in pages}
    robots = [json.loads(line) for line in (out / "robots.jsonl").read_text().splitlines()]
    assert len(domains) >= 20
    assert len(robots) == len({r["domain"] for r in robots}) == summary["domains"] - 1  # one has no line
    assert domains - {r["domain"] for r in robots}, "one crawled domain must be missing from the snapshot"
    assert all(d.endswith(".example") for d in domains)
    assert len(list((out / "warc").glob("*.warc.gz"))) == 5


def test_every_case_is_present(expected: list[dict[str, Any]]) -> None:
    counts = Counter(row["case"] for row in expected)
    missing = {case: (counts[case], least) for case, least in REQUIRED_CASES.items() if counts[case] < least}
    assert not missing


def test_expected_rows_are_the_response_records_in_file_order(
    expected: list[dict[str, Any]], responses: list[dict[str, Any]]
) -> None:
    keys = ("warc_file", "url", "record_id")
    assert [tuple(r[k] for k in keys) for r in expected] == [tuple(r[k] for k in keys) for r in responses]
    assert len({r["url"] for r in expected}) == len(expected)
    for row in expected:
        assert row["expected_decision"] in ("kept", "dropped", "quarantined", None)
        assert (row["expected_decision"] == "kept") == (
            row["expected_reasons"] == [] and not row["dup_group"]
        )
        assert row["licence_location"] in ("link_rel", "footer", "body_link", None)
        assert set(row["pii"]) == {"email", "phone"}


def test_intact_files_read_cleanly_with_digests(crawl: tuple[Path, dict[str, Any]]) -> None:
    for path in sorted((crawl[0] / "warc").iterdir()):
        if path.name == CORRUPT_FILE:
            continue
        kinds = []
        with path.open("rb") as f:
            for rec in ArchiveIterator(f, check_digests=True, verify_http=True):
                rec.content_stream().read()
                assert rec.digest_checker.passed is True, (path.name, rec.rec_headers)
                kinds.append(rec.rec_type)
                if rec.rec_type == "response":
                    assert rec.http_headers.protocol == "HTTP/1.1"
                    assert rec.http_headers.get_header("Date")
                    assert rec.http_headers.get_header("Content-Type")
        assert kinds[0] == "warcinfo"
        assert kinds[1:] == ["request", "response"] * ((len(kinds) - 1) // 2)


def test_corrupt_file_has_a_garbage_http_block_and_ends_mid_gzip_member(
    crawl: tuple[Path, dict[str, Any]], expected: list[dict[str, Any]], responses: list[dict[str, Any]]
) -> None:
    path = crawl[0] / "warc" / CORRUPT_FILE
    rows = {
        r["case"]: (r, rec) for r, rec in zip(expected, responses, strict=True) if r["warc_file"] == path.name
    }
    assert {r["expected_decision"] for r, _ in rows.values() if r["case"] != "plain"} == {"quarantined"}
    garbage_row, garbage = rows["corrupt_http_header"]
    assert garbage_row["expected_reasons"] == ["malformed:*"]
    assert garbage["protocol"] not in ("HTTP/1.0", "HTTP/1.1")  # lenient parse: nonsense status line
    cut_row, cut = rows["truncated_gzip"]
    assert cut_row["expected_reasons"] == ["malformed:*"]
    assert cut["status"] == "200" and 0 < len(cut["body"]) < cut["declared"]
    # Strict HTTP parsing stops the iterator at the garbage record; the rest of the file is then unread.
    with path.open("rb") as f, pytest.raises(StatusAndHeadersParserException):
        for _ in ArchiveIterator(f, verify_http=True):
            pass
    with pytest.raises(EOFError):
        gzip.decompress(path.read_bytes())
    # Records after the garbage one are intact and still read.
    after = [r for r in expected if r["warc_file"] == path.name]
    assert [r["case"] for r in after] == ["plain", "plain", "corrupt_http_header", "plain", "truncated_gzip"]


def test_robots_snapshot_parses_and_agrees_with_expected_reasons(
    crawl: tuple[Path, dict[str, Any]], expected: list[dict[str, Any]]
) -> None:
    snapshot = {
        (r := json.loads(line))["domain"]: r for line in (crawl[0] / "robots.jsonl").read_text().splitlines()
    }
    assert {r["status"] for r in snapshot.values()} == {200, 404, 503}
    parsers = {d: Protego.parse(r["body"]) for d, r in snapshot.items() if r["status"] == 200}
    assert all(r["body"] == "" for r in snapshot.values() if r["status"] != 200)
    disallowed_somewhere = 0
    for row in expected:
        if (
            row["case"] in ("corrupt_http_header", "truncated_gzip")
            or "duplicate_of:*" in row["expected_reasons"]
        ):
            continue
        domain = row["url"].split("/")[2]
        entry = snapshot.get(domain)
        if entry is None:
            want = ["robots:missing"]
        elif entry["status"] >= 500:
            want = ["robots:unavailable"]
        elif entry["status"] >= 400:
            want = []
        else:
            want = [f"robots:{a}" for a in APERTUS_AGENTS if not parsers[domain].can_fetch(row["url"], a)]
        got = [r for r in row["expected_reasons"] if r.startswith("robots:")]
        assert got == want, row["url"]
        disallowed_somewhere += bool(want)
    assert disallowed_somewhere >= 20


def test_licence_and_opt_out_evidence_is_in_the_bytes(pages: list[tuple[dict, dict]]) -> None:
    for row, rec in pages:
        ev, headers, case = Evidence(html_of(rec)), rec["headers"], row["case"]
        cc = [h for h in ev.link_rel + ev.footer_links + ev.body_links if "creativecommons.org" in h]
        where = row["licence_location"]
        if where == "link_rel":
            assert len(ev.link_rel) == 1 and cc == ev.link_rel
        elif where == "footer":
            assert not ev.link_rel and cc and all(h in ev.footer_links for h in cc)
        elif where == "body_link":
            assert row["expected_licence"] is None and cc == ["https://creativecommons.org/licenses/by/2.0/"]
        else:
            assert not cc
        spdx = {
            "https://creativecommons.org/licenses/by/4.0/": "CC-BY-4.0",
            "https://creativecommons.org/licenses/by-sa/4.0/": "CC-BY-SA-4.0",
            "https://creativecommons.org/licenses/by-nc/4.0/": "CC-BY-NC-4.0",
            "https://creativecommons.org/publicdomain/zero/1.0/": "CC0-1.0",
        }
        if where in ("link_rel", "footer"):
            assert spdx[cc[0]] == row["expected_licence"]
        reasons = set(row["expected_reasons"])
        assert ("tdm_reserved" in reasons) == (
            headers.get("tdm-reservation") == "1" or ev.meta.get("tdm-reservation") == "1"
        )
        assert ("aipref:train-ai=n" in reasons) == (headers.get("Content-Usage") == "train-ai=n")
        assert ("meta:noai" in reasons) == ("noai" in ev.meta.get("robots", ""))
        assert ("header:noai" in reasons) == (headers.get("X-Robots-Tag") == "noai")
        if case in ("tdm_header_unreserved", "aipref_allow", "meta_robots_index"):
            assert row["expected_decision"] == "kept"
    assert {spdx for spdx in (row["expected_licence"] for row, _ in pages) if spdx} == {
        "CC-BY-4.0",
        "CC-BY-SA-4.0",
        "CC-BY-NC-4.0",
        "CC0-1.0",
    }


def test_pii_counts_match_the_article_text(pages: list[tuple[dict, dict]]) -> None:
    with_pii = 0
    for row, rec in pages:
        text = " ".join(Evidence(html_of(rec)).article)
        assert row["pii"] == {"email": len(EMAIL.findall(text)), "phone": len(PHONE.findall(text))}, row[
            "url"
        ]
        with_pii += row["pii"]["email"] + row["pii"]["phone"] > 0
    assert with_pii >= 5


def test_windows_1252_page_is_declared_and_not_utf8(pages: list[tuple[dict, dict]]) -> None:
    found = [(row, rec) for row, rec in pages if row["case"] == "charset_windows_1252"]
    assert found
    for row, rec in found:
        assert charset(rec) == "windows-1252" and row["expected_decision"] == "kept"
        with pytest.raises(UnicodeDecodeError):
            rec["body"].decode("utf-8")
        text = rec["body"].decode("windows-1252")
        assert '<meta charset="windows-1252">' in text
        assert re.search("[éèêëçñöåâ]", text) and "\u201c" in text


def test_quality_of_extracted_text(pages: list[tuple[dict, dict]]) -> None:
    """Keepable pages pass the policy's Gopher thresholds with room to spare; low-quality ones fail."""
    q = QualityConfig.model_validate({})  # the policy's defaults

    def failures(text: str) -> list[str]:
        words = text.split()
        if len(words) < q.min_words:
            return ["too_short"]
        lines = [ln for ln in text.splitlines() if ln.strip()]
        mean = sum(map(len, words)) / len(words)
        checks = {
            "alpha": sum(any(c.isalpha() for c in w) for w in words) / len(words) < q.min_alpha_word_ratio,
            "symbols": (text.count("#") + text.count("...")) / len(words) > q.max_symbol_word_ratio,
            "dup_lines": 1 - len(set(lines)) / len(lines) > q.max_duplicate_line_fraction,
            "stop_words": sum(w.lower() in STOP_WORDS for w in words) < q.min_stop_words,
            "word_length": not q.min_mean_word_length <= mean <= q.max_mean_word_length,
        }
        return [name for name, failed in checks.items() if failed]

    for row, rec in pages:
        text = trafilatura.extract(html_of(rec)) or ""
        if row["case"] == "empty_text":
            assert text == ""
        elif row["case"].startswith("quality_"):
            assert failures(text), row["case"]
        else:
            words = text.split()
            assert len(words) >= 3 * q.min_words, row["url"]
            assert not failures(text), row["url"]
            assert sum(any(c.isalpha() for c in w) for w in words) / len(words) > 0.95


def test_duplicates(pages: list[tuple[dict, dict]]) -> None:
    groups: dict[str, list[dict]] = defaultdict(list)
    for row, rec in pages:
        if row["dup_group"]:
            groups[row["dup_group"]].append({**row, "rec": rec})
    assert (
        sum(g.startswith("exact-") for g in groups) >= 2 and sum(g.startswith("near-") for g in groups) >= 2
    )
    for name, members in groups.items():
        assert len(members) >= 2
        assert [m["expected_reasons"] for m in members] == [[]] + [["duplicate_of:*"]] * (len(members) - 1)
        assert {m["expected_decision"] for m in members} == {None}
        bodies = [m["rec"]["body"] for m in members]
        if name.startswith("exact-"):
            assert len(set(bodies)) == 1
        else:
            sa, sb = (shingles(" ".join(Evidence(body.decode()).article)) for body in bodies)
            assert bodies[0] != bodies[1] and len(sa & sb) / len(sa | sb) > 0.85
    # Unrelated pages must not look like near-duplicates of each other: count shared 5-grams per pair.
    texts = {row["url"]: " ".join(Evidence(html_of(rec)).article) for row, rec in pages}
    sets = {u: shingles(t) for u, t in texts.items() if t}
    group_of = {row["url"]: row["dup_group"] for row, _ in pages}
    index: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for url, s in sets.items():
        for sh in s:
            index[sh].append(url)
    shared: Counter[tuple[str, str]] = Counter()
    for urls in index.values():
        shared.update(combinations(sorted(urls), 2))
    for (a, b), n in shared.items():
        if not (group_of[a] and group_of[a] == group_of[b]):
            assert n / len(sets[a] | sets[b]) < 0.3, (a, b)


def test_most_pages_are_kept(pages: list[tuple[dict, dict]]) -> None:
    kept = sum(row["expected_decision"] == "kept" for row, _ in pages)
    survivors = len({row["dup_group"] for row, _ in pages if row["dup_group"]})
    assert (kept + survivors) / len(pages) >= 0.6


def test_non_html_payloads_are_real_files(
    expected: list[dict[str, Any]], responses: list[dict[str, Any]]
) -> None:
    seen = set()
    for row, rec in zip(expected, responses, strict=True):
        body, ctype = rec["body"], rec["headers"].get("Content-Type")
        if row["case"] == "non_html_png":
            assert ctype == "image/png" and row["expected_reasons"] == ["content_type:image/png"]
            assert body[:8] == b"\x89PNG\r\n\x1a\n"
            pos = 8
            while pos < len(body):  # every chunk's CRC checks out, ending with IEND
                (length,) = struct.unpack(">I", body[pos : pos + 4])
                kind, data = body[pos + 4 : pos + 8], body[pos + 8 : pos + 8 + length]
                assert struct.unpack(">I", body[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(
                    kind + data
                )
                pos += 12 + length
            assert kind == b"IEND"
        elif row["case"] == "non_html_pdf":
            assert ctype == "application/pdf" and row["expected_reasons"] == ["content_type:application/pdf"]
            xref = int(body.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
            assert body.startswith(b"%PDF-1.4") and body[xref:].startswith(b"xref")
        elif row["case"] in ("http_404", "http_301"):
            code = row["case"][-3:]
            assert rec["status"] == code and row["expected_reasons"] == [f"http_status:{code}"]
            if code == "301":
                assert rec["headers"]["Location"].startswith("https://")
        else:
            continue
        seen.add(row["case"])
    assert seen == {"non_html_png", "non_html_pdf", "http_404", "http_301"}
