"""The benchmark crawl at scale (`write_scale_crawl`): deterministic, pages of 2-50 KB of HTML, and the
cases a curation job must handle (duplicates, opt-outs, PII, thin pages) all present."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fastwarc.warc import ArchiveIterator, WarcRecordType

from commonweights.errors import ConfigError
from pipelines.sample_crawl import SCALE_MAX_BYTES, SCALE_MIN_BYTES, write_scale_crawl


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _responses(folder: Path) -> list[tuple[str, dict[str, str], bytes]]:
    out = []
    for f in sorted((folder / "warc").glob("*.warc.gz")):
        with f.open("rb") as fh:
            for rec in ArchiveIterator(fh, record_types=WarcRecordType.response):
                headers = {k.lower(): v for k, v in rec.http_headers.astuples()}
                out.append((rec.headers["WARC-Target-URI"], headers, rec.reader.read()))
    return out


@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("scale") / "crawl"
    return out, write_scale_crawl(out, seed=1, pages=400, files=4)


def test_same_arguments_give_the_same_bytes_and_another_seed_does_not(
    scale: tuple[Path, dict], tmp_path: Path
) -> None:
    out, _ = scale
    again = tmp_path / "again"
    write_scale_crawl(again, seed=1, pages=400, files=4)
    assert _digests(again) == _digests(out)
    other = tmp_path / "other"
    write_scale_crawl(other, seed=2, pages=400, files=4)
    assert _digests(other)["warc/scale-00000.warc.gz"] != _digests(out)["warc/scale-00000.warc.gz"]


def test_pages_are_html_of_2_to_50_kb_spread_over_the_range(scale: tuple[Path, dict]) -> None:
    out, summary = scale
    pages = _responses(out)
    assert len(pages) == 400 == summary["pages"]
    assert len(list((out / "warc").glob("*.warc.gz"))) == 4
    sizes = sorted(len(body) for _, _, body in pages)
    assert SCALE_MIN_BYTES <= sizes[0] and sizes[-1] <= SCALE_MAX_BYTES
    assert sizes[len(sizes) // 10] < 8 * 1024 and sizes[-len(sizes) // 10] > 25 * 1024  # not one size
    assert summary["html_bytes"]["min"] == sizes[0] and summary["html_bytes"]["max"] == sizes[-1]
    for url, headers, body in pages[:50]:
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert url.startswith("https://") and ".example/" in url
        html = body.decode()
        # Boilerplate around the article, as crawled pages have.
        for part in ("<script", "<nav", "<footer>", "<article>", '<aside class="related">'):
            assert part in html


def test_the_crawl_holds_duplicates_opt_outs_pii_and_thin_pages(scale: tuple[Path, dict]) -> None:
    out, summary = scale
    pages = _responses(out)
    cases = summary["cases"]
    for case in ("near_duplicate", "exact_duplicate", "noai_meta", "tdm_header", "pii", "quality_listing"):
        assert cases.get(case, 0) > 0, case
    assert sum(cases.values()) == 400
    bodies = [body for _, _, body in pages]
    assert len(set(bodies)) < len(bodies)  # exact copies under other URLs
    assert len({url for url, _, _ in pages}) == len(pages)
    assert sum(1 for _, _, b in pages if b'content="noai, noimageai"' in b) == cases["noai_meta"]
    assert sum(1 for _, h, _ in pages if h.get("tdm-reservation") == "1") == cases["tdm_header"]
    robots = [json.loads(line) for line in (out / "robots.jsonl").read_text().splitlines()]
    denying = set(summary["robots_denying_sites"])
    assert denying and denying <= {r["domain"] for r in robots}
    assert any(url.split("/")[2] in denying for url, _, _ in pages)  # robots.txt opt-outs in the input


def test_bad_arguments_are_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="domains=5"):
        write_scale_crawl(tmp_path / "a", pages=10, files=2, domains=5)
    with pytest.raises(ConfigError, match="one page per WARC file"):
        write_scale_crawl(tmp_path / "b", pages=2, files=4)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a scale crawl"):
        write_scale_crawl(busy, pages=8, files=2)
