"""The transparency page as a reader sees it: rendered by headless Chromium, offline, from a real release."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from test_release import make_run

from eval import release, sign


class _Text(HTMLParser):
    """Visible text per element id, and every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, list[str]] = {}
        self.stack: list[str | None] = []
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "data", "xlink:href")]
        if tag not in ("br", "meta", "link", "img", "input", "circle", "line", "rect", "polyline"):
            self.stack.append(a.get("id"))

    def handle_endtag(self, tag: str) -> None:
        if (
            tag not in ("br", "meta", "link", "img", "input", "circle", "line", "rect", "polyline")
            and self.stack
        ):
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for ident in self.stack:
            if ident:
                self.ids.setdefault(ident, []).append(data)

    def by_id(self, ident: str) -> str:
        return " ".join(" ".join(self.ids.get(ident, [])).split())


@pytest.fixture(scope="module")
def page(chromium, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, _Text, Path]:
    root = tmp_path_factory.mktemp("page")
    keys = sign.keygen(root / "k")
    cfg = make_run(root / "run")
    release.run(cfg, key_path=Path(keys["private_key"]))
    html = cfg.paths.release / "transparency" / "report.html"
    png = root / "report.png"
    dom = chromium(html, png, width=1280, height=5200)
    parsed = _Text()
    parsed.feed(dom)
    report = json.loads((cfg.paths.release / "transparency" / "report.json").read_text())
    return report, parsed, png


def test_every_section_is_rendered(page: tuple[dict, _Text, Path]) -> None:
    _, dom, _ = page
    text = " ".join("".join(dom.text).split())
    for heading in (
        "Model",
        "Data",
        "Opt-out signals honoured",
        "Training",
        "Compute, energy and CO₂",
        "Evaluation",
        "During training",
        "Decontamination",
        "Lineage",
        "How to verify this release",
    ):
        assert heading in text, heading
    # Nothing is fetched: only in-page anchors (the page was loaded with every host unresolvable).
    assert dom.urls and all(u.startswith("#") for u in dom.urls), dom.urls


def test_the_numbers_a_reader_sees_are_the_report_s(page: tuple[dict, _Text, Path]) -> None:
    report, dom, _ = page
    docs = report["data"]["documents"]
    assert dom.by_id("docs-in") == f"{docs['in']:,}" == "57"
    assert dom.by_id("docs-kept") == "40" and dom.by_id("docs-dropped") == "15"
    assert dom.by_id("card-optout") == "Opted out 6"
    assert dom.by_id("card-signed") == "Signature signed"
    assert dom.by_id("final-loss") == f"{report['training']['final_loss']:.4f}"
    assert dom.by_id("flops") == f"{report['training']['compute']['approx_flops']:.3e} FLOPs"

    table = dom.by_id("eval-table")
    for task, t in report["evaluation"]["tasks"].items():
        assert task in table
        for metric, value in t["metrics"].items():
            if value is not None and not metric.endswith("_stderr"):
                assert f"{metric} {value:.4f}" in table, (task, metric)
    decon = dom.by_id("decon-table")
    assert re.search(r"commonweights_paragraphs 50 3 6\.0% flagged", decon), decon
    assert re.search(r"commonweights_cloze 200 0 0\.0% clean", decon), decon
    lineage = dom.by_id("lineage") + " ".join("".join(dom.text).split())
    assert report["lineage"]["manifest_digest"] in lineage and report["lineage"]["policy_hash"] in lineage
    assert "commonweights verify RELEASE_DIR --key PUBLISHER_KEY.pub" in " ".join(dom.text)


def test_the_screenshot_shows_the_page_and_its_charts(page: tuple[dict, _Text, Path]) -> None:
    _, _, png = page
    img = Image.open(png).convert("RGB")
    assert img.size == (1280, 5200)
    pixels = list(img.getdata())
    # Text on the first screen, and the charts' blue (#1f5fa8) bars and lines somewhere on the page.
    top = img.crop((0, 0, 1280, 400)).getdata()
    assert sum(1 for p in top if p[0] < 100 and p[1] < 100 and p[2] < 100) > 500
    blue = sum(1 for r, g, b in pixels if abs(r - 0x1F) < 30 and abs(g - 0x5F) < 30 and abs(b - 0xA8) < 30)
    assert blue > 5000
