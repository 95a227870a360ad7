"""The embedded sample crawl: a small, seeded, fictional web crawl with its own ground truth.

`write_sample_crawl(out)` writes real WARC/1.1 files (gzip per record, via warcio), the robots.txt
snapshot of every domain and `expected.jsonl`, which says for each response record what the default
consent policy must decide and why. Every governance case the pipeline handles appears several
times: robots.txt variants, licences in each place they hide, TDMRep, aipref, noai, PII, exact and
near duplicates, low-quality pages, non-HTML and non-2xx responses, a windows-1252 page, and two
kinds of corrupt input. All text is generated from `pipelines.prose`; all domains are `.example`.

`build_sample_crawl` is pure (arguments in, bytes out); `write_sample_crawl` only puts the bytes on
disk, atomically. Same arguments, byte-identical files: dates come from the snapshot date and the
seed, record ids are uuid5 names, and gzip members carry mtime 0.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import math
import random
import re
import shutil
import struct
import unicodedata
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.utils import Digester
from warcio.warcwriter import GzippingWrapper, WARCWriter

from commonweights.config import APERTUS_AGENTS
from commonweights.errors import ConfigError
from pipelines.prose import MARKET, TOPICS, Article, Topic, Writer, cap, page_length

USER_AGENT = "commonweights-sample/0.1 (+https://commonweights.example/crawler)"
WARC_FILES = 4
CORRUPT_FILE = f"crawl-{WARC_FILES:05d}-corrupt.warc.gz"
MIN_DOMAINS = 20  # 12 role sites, and 8 open ones so that each open-site case lands on distinct sites
OUTPUTS = ("warc", "robots.jsonl", "expected.jsonl")
WARC_NAME = re.compile(r"crawl-\d{5}(-corrupt)?\.warc\.gz")

CC_BY_4 = "https://creativecommons.org/licenses/by/4.0/"
CC_BY_SA_4 = "https://creativecommons.org/licenses/by-sa/4.0/"
CC_BY_NC_4 = "https://creativecommons.org/licenses/by-nc/4.0/"
CC_BY_2 = "https://creativecommons.org/licenses/by/2.0/"
CC0 = "https://creativecommons.org/publicdomain/zero/1.0/"

HTTP_REASONS = {200: "OK", 301: "Moved Permanently", 404: "Not Found"}
ALL_AGENTS = frozenset(APERTUS_AGENTS)

# Site roles: which robots.txt a domain serves, or which licence every page of it carries.
GPTBOT, AGENT_GROUP, CCBOT, STAR, PATHS = "gptbot", "agent_group", "ccbot_private", "star", "path_rules"
R404, R503, RMISSING = "robots_404", "robots_503", "robots_missing"
LIC_BY, LIC_BY_SA, LIC_BY_NC, LIC_CC0 = "lic_by", "lic_by_sa", "lic_by_nc", "lic_cc0"
ALLOW = "allow"
SPECIAL_ROLES = (
    GPTBOT,
    AGENT_GROUP,
    CCBOT,
    STAR,
    PATHS,
    R404,
    R503,
    RMISSING,
    LIC_BY,
    LIC_BY_SA,
    LIC_BY_NC,
    LIC_CC0,
)

ROBOTS: dict[str, str] = {
    GPTBOT: "User-agent: GPTBot\nDisallow: /\n\nUser-agent: *\nAllow: /\n",
    AGENT_GROUP: (
        "# One group for two agents (RFC 9309 2.2.1)\nUser-agent: ClaudeBot\nUser-agent: Google-Extended\n"
        "Disallow: /\n\nUser-agent: *\nDisallow: /admin/\n"
    ),
    CCBOT: "User-agent: CCBot\nDisallow: /private/\n\nUser-agent: *\nAllow: /\n",
    STAR: "User-agent: Googlebot\nAllow: /\n\nUser-agent: *\nDisallow: /\n",
    PATHS: (
        "User-agent: *\nAllow: /drafts/public-\nDisallow: /drafts/\nDisallow: /*.php$\n\n"
        "Sitemap: https://{domain}/sitemap.xml\n"
    ),
}
ALLOW_ALL_ROBOTS = (
    "User-agent: *\nDisallow:\n",
    "User-agent: *\nAllow: /\n\nSitemap: https://{domain}/sitemap.xml\n",
    "# Crawlers welcome; please keep away from the shop.\n"
    "User-agent: *\nDisallow: /admin/\nDisallow: /basket\n",
    "User-agent: BadBot\nDisallow: /\n\nUser-agent: *\nDisallow:\n",
    "",
)
# What each role's robots.txt denies to the policy's agents, per page kind (hand-derived from RFC 9309).
ROBOTS_DENIED: dict[str, frozenset[str]] = {
    GPTBOT: frozenset({"GPTBot"}),
    AGENT_GROUP: frozenset({"ClaudeBot", "Google-Extended"}),
    STAR: ALL_AGENTS,
}

LICENCES: dict[str, tuple[str, str, str]] = {  # role -> (SPDX id, href, where the evidence sits)
    LIC_BY: ("CC-BY-4.0", CC_BY_4, "link_rel"),
    LIC_BY_SA: ("CC-BY-SA-4.0", CC_BY_SA_4, "footer"),
    LIC_BY_NC: ("CC-BY-NC-4.0", CC_BY_NC_4, "link_rel"),
    LIC_CC0: ("CC0-1.0", CC0, "link_rel"),
}
LICENCE_LABELS = {
    "CC-BY-4.0": "CC BY 4.0",
    "CC-BY-SA-4.0": "CC BY-SA 4.0",
    "CC-BY-NC-4.0": "CC BY-NC 4.0",
    "CC0-1.0": "CC0 1.0",
}
LICENCE_CASES = {
    LIC_BY: "licence_cc_by_link_rel",
    LIC_BY_SA: "licence_cc_by_sa_footer",
    LIC_BY_NC: "licence_cc_by_nc_link_rel",
    LIC_CC0: "licence_cc0_link_rel",
}

PLACES = (
    "harbour saltmarsh fenland millbrook ashgrove kestrel northfield riverside heather copperbeech larkrise "
    "stonebridge willowmere brackenhurst tidewater oakhollow elmstead marram foxglove greywell"
).split()
KINDS = "news gazette journal notes almanac club society review weekly observer bulletin diary".split()
SERVERS = ("nginx", "Apache", "Caddy", "lighttpd")
MONTHS = ("January February March April May June July August September October November December").split()


@dataclass(frozen=True)
class Site:
    domain: str
    name: str
    role: str
    topic: Topic
    server: str
    dated_urls: bool
    robots_status: int | None  # None: the snapshot has no line for this domain
    robots_body: str

    @property
    def licence(self) -> tuple[str, str, str] | None:
        return LICENCES.get(self.role)


@dataclass(frozen=True)
class Marks:
    """What a page carries besides its text: head tags, HTTP headers, a figure, a licence."""

    head: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    figure: str | None = None
    footer: str | None = None


@dataclass
class Doc:
    """One response record to write, with the ground truth for it."""

    url: str
    case: str
    body: bytes
    content_type: str
    status: int = 200
    server: str = "nginx"
    headers: tuple[tuple[str, str], ...] = ()
    reasons: list[str] = field(default_factory=list)
    licence: str | None = None
    licence_location: str | None = None
    dup_group: str | None = None
    pii: dict[str, int] = field(default_factory=lambda: {"email": 0, "phone": 0})
    defect: str | None = None  # "garbage_http" or "truncated": quarantined as malformed
    decision: str | None = "kept"

    def expected(self, warc_file: str, record_id: str) -> dict[str, Any]:
        return {
            "url": self.url,
            "warc_file": warc_file,
            "record_id": record_id,
            "case": self.case,
            "expected_decision": self.decision,
            "expected_reasons": self.reasons,
            "expected_licence": self.licence,
            "licence_location": self.licence_location,
            "dup_group": self.dup_group,
            "pii": self.pii,
        }


@dataclass(frozen=True)
class SampleCrawl:
    """Everything the sample crawl consists of, as bytes and rows, before it touches the disk."""

    warcs: dict[str, bytes]
    robots: list[dict[str, Any]]
    expected: list[dict[str, Any]]
    summary: dict[str, Any]


def licence_marks(site: Site, marks: Marks) -> Marks:
    """`marks` plus the site's licence where its role puts it: a `<link rel=license>` in the head, or
    a footer sentence naming the licence."""
    if site.licence is None:
        return marks
    spdx, href, where = site.licence
    if where == "link_rel":
        return replace(marks, head=marks.head + (f'<link rel="license" href="{href}">',))
    return replace(
        marks,
        footer=(
            f'<p class="licence">Text on this site is available under '
            f'<a href="{href}">{LICENCE_LABELS[spdx]}</a>.</p>'
        ),
    )


def robots_reasons(denied: frozenset[str]) -> list[str]:
    """Reason codes for the agents a robots.txt denies, in the policy's agent order."""
    return [f"robots:{a}" for a in APERTUS_AGENTS if a in denied]


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60].rstrip("-")


def curly_quotes(text: str) -> str:
    """Straight double quotes to typographic ones (the windows-1252 page shows its 0x93/0x94 bytes)."""
    out, opening = [], True
    for ch in text:
        if ch == '"':
            out.append("\u201c" if opening else "\u201d")
            opening = not opening
        else:
            out.append(ch)
    return "".join(out)


def tiny_png(rng: random.Random, size: int = 8) -> bytes:
    """A valid RGB PNG of random pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(size * 3)) for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def tiny_pdf(lines: list[str]) -> bytes:
    """A valid one-page PDF 1.4 showing `lines` in Helvetica, with a correct xref table."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    text = " ".join(f"({esc(line)}) Tj 0 -22 Td" for line in lines)
    stream = f"BT /F1 14 Tf 72 770 Td {text} ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, obj)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def render_page(
    site: Site, article: Article, *, author: str, published: date, marks: Marks, charset: str = "utf-8"
) -> str:
    """A realistic article page: head, site header with nav, main/article, footer."""
    e = html.escape
    first = article.paragraphs[0][0]
    head = "\n".join(
        [
            f'  <meta charset="{charset}">',
            f"  <title>{e(article.title)} | {e(site.name)}</title>",
            '  <meta name="viewport" content="width=device-width, initial-scale=1">',
            f'  <meta name="description" content="{e(first)}">',
            f'  <meta name="author" content="{e(author)}">',
            *(f"  {tag}" for tag in marks.head),
            '  <link rel="stylesheet" href="/static/site.css">',
        ]
    )
    section = site.topic.section
    nav = "".join(
        f'<li><a href="{href}">{label}</a></li>'
        for href, label in (
            ("/", "Home"),
            ("/news/", "News"),
            (f"/{section}/", cap(section)),
            ("/events/", "Events"),
            ("/about/", "About"),
        )
    )
    paragraphs = [f"      <p>{e(' '.join(p), quote=False)}</p>" for p in article.paragraphs]
    if marks.figure:
        paragraphs.insert(1, f"      {marks.figure}")
    footer = [f"    <p>&copy; {published.year} {e(site.name)}. All rights reserved unless stated.</p>"]
    if marks.footer:
        footer.append(f"    {marks.footer}")
    footer.append('    <p><a href="/contact/">Contact</a> &middot; <a href="/privacy/">Privacy</a></p>')
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            head,
            "</head>",
            "<body>",
            '  <header class="site-header">',
            f'    <a class="brand" href="/">{e(site.name)}</a>',
            f"    <nav><ul>{nav}</ul></nav>",
            "  </header>",
            "  <main>",
            "    <article>",
            f"      <h1>{e(article.title)}</h1>",
            f'      <p class="byline">By {e(author)} &middot; <time datetime="{published.isoformat()}">'
            f"{published.day} {MONTHS[published.month - 1]} {published.year}</time></p>",
            *paragraphs,
            "    </article>",
            "  </main>",
            "  <footer>",
            *footer,
            "  </footer>",
            "</body>",
            "</html>",
            "",
        ]
    )


class Planner:
    """Decides every record of the crawl (pure: all randomness comes from one seeded generator)."""

    def __init__(self, seed: int, n_domains: int) -> None:
        self.rng = random.Random(seed)
        self.urls: set[str] = set()
        self.sites = self._sites(n_domains)
        self.by_role: dict[str, list[Site]] = {}
        for s in self.sites:
            self.by_role.setdefault(s.role, []).append(s)
        self.open_sites = self.by_role[ALLOW]  # allow-all, no licence: where single-signal cases live

    # -- sites --------------------------------------------------------------------------------------
    def _sites(self, n: int) -> list[Site]:
        names = self.rng.sample([f"{p}-{k}" for p in PLACES for k in KINDS], n)
        topics = list(TOPICS)
        self.rng.shuffle(topics)
        roles = list(SPECIAL_ROLES) + [ALLOW] * (n - len(SPECIAL_ROLES))
        sites = []
        for i, (name, role) in enumerate(zip(names, roles, strict=True)):
            domain = f"{name}.example"
            if role in ROBOTS:
                status, body = 200, ROBOTS[role]
            elif role == R404:
                status, body = 404, ""
            elif role == R503:
                status, body = 503, ""
            elif role == RMISSING:
                status, body = None, ""
            else:
                status, body = 200, ALLOW_ALL_ROBOTS[i % len(ALLOW_ALL_ROBOTS)]
            sites.append(
                Site(
                    domain=domain,
                    name=" ".join(w.capitalize() for w in name.split("-")),
                    role=role,
                    topic=topics[i % len(topics)],
                    server=self.rng.choice(SERVERS),
                    dated_urls=self.rng.random() < 0.5,
                    robots_status=status,
                    robots_body=body.format(domain=domain),
                )
            )
        return sites

    def robots_lines(self, snapshot_date: str) -> list[dict[str, Any]]:
        return [
            {
                "domain": s.domain,
                "url": f"https://{s.domain}/robots.txt",
                "fetched_at": snapshot_date,
                "status": s.robots_status,
                "body": s.robots_body if s.robots_status == 200 else "",
            }
            for s in sorted(self.sites, key=lambda s: s.domain)
            if s.robots_status is not None
        ]

    # -- pages --------------------------------------------------------------------------------------
    def url(self, site: Site, path: str) -> str:
        url = f"https://{site.domain}{path}"
        if url in self.urls:
            stem, dot, ext = path.rpartition(".")
            return self.url(site, f"{stem}-2.{ext}" if dot and "/" not in ext else f"{path.rstrip('/')}-2/")
        self.urls.add(url)
        return url

    def path(self, site: Site, title: str) -> str:
        slug = slugify(title)
        if site.dated_urls:
            year, month = self.rng.choice((2025, 2026)), self.rng.randint(1, 12)
            return f"/{site.topic.section}/{year}/{month:02d}/{slug}.html"
        return f"/{site.topic.section}/{slug}/"

    def published(self) -> date:
        return date(2025, 1, 1) + timedelta(days=self.rng.randint(0, 640))

    def article(self, topic: Topic, words: int | None = None) -> tuple[Writer, Article]:
        w = Writer(topic, self.rng)
        return w, w.article(words if words is not None else page_length(self.rng))

    def html_doc(
        self,
        site: Site,
        case: str,
        *,
        path: str | None = None,
        marks: Marks = Marks(),
        reasons: list[str] | None = None,
        article: Article | None = None,
        author: str | None = None,
        topic: Topic | None = None,
        charset: str = "utf-8",
    ) -> Doc:
        """An article page on `site`; a licensed site puts its licence where its role says."""
        writer = Writer(topic or site.topic, self.rng)
        art = article or writer.article(page_length(self.rng))
        marks = licence_marks(site, marks)
        if marks.figure is None and self.rng.random() < 0.3:
            marks = replace(
                marks,
                figure=(
                    f'<figure><img src="/media/{slugify(art.title)}.jpg" alt="" width="640" height="427">'
                    f"<figcaption>{html.escape(writer.title())}.</figcaption></figure>"
                ),
            )
        page = render_page(
            site,
            art,
            author=author or writer.person(),
            published=self.published(),
            marks=marks,
            charset=charset,
        )
        doc = Doc(
            url=self.url(site, path or self.path(site, art.title)),
            case=case,
            body=page.encode(charset),
            content_type=f"text/html; charset={charset}",
            server=site.server,
            headers=marks.headers,
            reasons=list(reasons or []),
        )
        if site.licence is not None:
            doc.licence, doc.licence_location = site.licence[0], site.licence[2]
        return doc

    def pick_open(self, k: int = 1) -> list[Site]:
        return self.rng.sample(self.open_sites, k)

    # -- the cases ----------------------------------------------------------------------------------
    def robots_cases(self) -> list[Doc]:
        docs = []
        for role, case, n in (
            (GPTBOT, "robots_gptbot", 5),
            (AGENT_GROUP, "robots_agent_group", 3),
            (STAR, "robots_star", 5),
        ):
            site = self.by_role[role][0]
            docs += [self.html_doc(site, case, reasons=robots_reasons(ROBOTS_DENIED[role])) for _ in range(n)]
        gpt = self.by_role[GPTBOT][0]
        docs.append(
            self.html_doc(
                gpt,
                "multi_signal",
                reasons=robots_reasons(ROBOTS_DENIED[GPTBOT]) + ["tdm_reserved", "meta:noai"],
                marks=Marks(
                    head=(
                        '<meta name="tdm-reservation" content="1">',
                        '<meta name="robots" content="noai, noimageai">',
                    )
                ),
            )
        )
        cc = self.by_role[CCBOT][0]
        for i in range(3):
            docs.append(
                self.html_doc(
                    cc,
                    "robots_ccbot_private",
                    path=f"/private/members-note-{i + 1}.html",
                    reasons=robots_reasons(frozenset({"CCBot"})),
                )
            )
            docs.append(self.html_doc(cc, "robots_ccbot_public"))
        ps = self.by_role[PATHS][0]
        every = robots_reasons(ALL_AGENTS)
        for i in range(2):
            docs.append(
                self.html_doc(ps, "robots_path_disallow", path=f"/drafts/chapter-{i + 1}.html", reasons=every)
            )
            docs.append(
                self.html_doc(ps, "robots_path_disallow", path=f"/archive/item-{i + 1}.php", reasons=every)
            )
            docs.append(self.html_doc(ps, "robots_path_allow", path=f"/drafts/public-chapter-{i + 1}.html"))
        docs.append(self.html_doc(ps, "robots_path_allow", path="/archive/item-1.php?print=1"))
        for role, case, n, reasons in (
            (R404, "robots_404", 4, []),
            (R503, "robots_503", 4, ["robots:unavailable"]),
            (RMISSING, "robots_missing", 3, ["robots:missing"]),
        ):
            site = self.by_role[role][0]
            docs += [self.html_doc(site, case, reasons=reasons) for _ in range(n)]
        return docs

    def signal_cases(self) -> list[Doc]:
        specs: list[tuple[str, Marks, list[str], int]] = [
            ("tdm_header", Marks(headers=(("tdm-reservation", "1"),)), ["tdm_reserved"], 3),
            ("tdm_meta", Marks(head=('<meta name="tdm-reservation" content="1">',)), ["tdm_reserved"], 3),
            ("aipref_header", Marks(headers=(("Content-Usage", "train-ai=n"),)), ["aipref:train-ai=n"], 3),
            ("noai_meta", Marks(head=('<meta name="robots" content="noai, noimageai">',)), ["meta:noai"], 3),
            ("noai_header", Marks(headers=(("X-Robots-Tag", "noai"),)), ["header:noai"], 3),
            # Controls: the same places saying yes, which must not be read as an opt-out.
            ("tdm_header_unreserved", Marks(headers=(("tdm-reservation", "0"),)), [], 2),
            ("aipref_allow", Marks(headers=(("Content-Usage", "train-ai=y"),)), [], 2),
            (
                "meta_robots_index",
                Marks(
                    head=('<meta name="robots" content="index, follow">',),
                    headers=(("X-Robots-Tag", "noarchive"),),
                ),
                [],
                2,
            ),
        ]
        docs = []
        for case, marks, reasons, n in specs:
            for site in self.pick_open(n):
                m = marks
                if case == "tdm_header":
                    policy = f"https://{site.domain}/.well-known/tdm-policy.json"
                    m = replace(marks, headers=marks.headers + (("tdm-policy", policy),))
                docs.append(self.html_doc(site, case, marks=m, reasons=reasons))
        for _ in range(3):
            w = Writer(self.rng.choice(TOPICS), self.rng)
            credit = (
                f'<figure><img src="/media/photo-{self.rng.randint(100, 999)}.jpg" alt="" width="800" '
                f'height="533"><figcaption>{html.escape(w.title())}. Photo: {w.person()}, '
                f'<a href="{CC_BY_2}">CC BY 2.0</a></figcaption></figure>'
            )
            doc = self.html_doc(self.pick_open()[0], "licence_cc_by_2_body_link", marks=Marks(figure=credit))
            doc.licence_location = "body_link"
            docs.append(doc)
        return docs

    def pii_cases(self, n: int = 6) -> list[Doc]:
        docs = []
        for site in self.pick_open(n):
            writer, art = self.article(site.topic)
            host = site.domain
            counts = {"email": 0, "phone": 0}
            extra = []
            for _ in range(self.rng.randint(1, 3)):
                first, last = writer.draw("first"), writer.draw("last")
                email = f"{first.lower()}.{last.lower()}@{host}"
                phone = self.rng.choice(
                    (
                        f"+44 20 7946 0{self.rng.randint(100, 999)}",
                        f"020 7946 0{self.rng.randint(100, 999)}",
                        f"+1 202 555 01{self.rng.randint(10, 99)}",
                    )
                )
                template = self.rng.randrange(3)
                if template == 0:
                    extra.append(
                        f"Anyone who wants to help can email {email} or ring {phone} in the evening."
                    )
                    counts["email"] += 1
                    counts["phone"] += 1
                elif template == 1:
                    extra.append(f"Questions about the programme can be sent to {first} {last} at {email}.")
                    counts["email"] += 1
                else:
                    extra.append(f"The secretary, {first} {last}, can be reached on {phone} most weekdays.")
                    counts["phone"] += 1
            paragraphs = list(art.paragraphs)
            for sentence in extra:
                i = self.rng.randrange(len(paragraphs))
                paragraphs[i] = paragraphs[i] + (sentence,)
            doc = self.html_doc(site, "pii", article=Article(art.title, tuple(paragraphs)))
            doc.pii = counts
            docs.append(doc)
        return docs

    def duplicate_cases(self) -> list[Doc]:
        docs = []
        for g, size in enumerate((2, 3, 2), 1):
            group = f"exact-{g}"
            first_site = self.pick_open()[0]
            original = self.html_doc(first_site, "exact_duplicate")
            original.dup_group = group
            docs.append(original)
            if g == 3:  # the same page again under a tracking query: same domain, another URL
                copy_urls = [original.url + "?utm_source=newsletter"]
            else:  # mirrored verbatim by other sites
                others = [s for s in self.open_sites if s is not first_site]
                slug = original.url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".html")
                copy_urls = [self.url(s, f"/mirror/{slug}.html") for s in self.rng.sample(others, size - 1)]
            for url in copy_urls:
                self.urls.add(url)
                docs.append(replace(original, url=url, reasons=[], pii=dict(original.pii)))
        for g in range(1, 4):
            group = f"near-{g}"
            a, b = self.pick_open(2)
            # Long articles, no figure: one rewritten sentence then changes a small share of the text.
            writer, art = self.article(a.topic, self.rng.randint(550, 850))
            author, plain = writer.person(), Marks(figure="")
            first = self.html_doc(a, "near_duplicate", article=art, author=author, marks=plain)
            # One sentence rewritten, the rest verbatim: a syndicated copy with a local edit.
            paragraphs = [list(p) for p in art.paragraphs]
            p = self.rng.randrange(len(paragraphs))
            paragraphs[p][self.rng.randrange(len(paragraphs[p]))] = writer.sentence()
            edited = Article(art.title, tuple(tuple(p) for p in paragraphs))
            second = self.html_doc(b, "near_duplicate", article=edited, author=author, marks=plain)
            docs += [replace(first, dup_group=group), replace(second, dup_group=group)]
        return docs

    def quality_cases(self) -> list[Doc]:
        docs = []
        for site in self.pick_open(3):
            w = Writer(site.topic, self.rng)
            art = Article(w.title(), ((w.draw("short"),),))
            docs.append(
                self.html_doc(
                    site, "quality_short", article=art, marks=Marks(figure=""), reasons=["quality:*"]
                )
            )
        for site in self.pick_open(3):
            w = Writer(site.topic, self.rng)
            line = w.sentence()
            art = Article(w.title(), tuple((line,) for _ in range(40)))
            docs.append(
                self.html_doc(
                    site, "quality_repeated_lines", article=art, marks=Marks(figure=""), reasons=["quality:*"]
                )
            )
        for site in self.pick_open(3):
            rows = []
            for _ in range(30):
                nums = [f"{self.rng.randint(0, 9999):04d}" for _ in range(4)]
                rows.append(
                    (
                        f"## {nums[0]} | {nums[1]}.{self.rng.randint(0, 99)} ... {nums[2]} # {nums[3]} "
                        f"%{self.rng.randint(0, 99)} ...",
                    )
                )
            art = Article(f"Table {self.rng.randint(1, 99)}: {self.rng.randint(1000, 9999)}", tuple(rows))
            docs.append(
                self.html_doc(
                    site, "quality_symbols", article=art, marks=Marks(figure=""), reasons=["quality:*"]
                )
            )
        for site in self.pick_open(2):
            shell = (
                '<!DOCTYPE html>\n<html lang="en">\n<head>\n  <meta charset="utf-8">\n'
                '  <meta name="viewport" content="width=device-width, initial-scale=1">\n'
                '  <script src="/static/app.js" defer></script>\n</head>\n<body>\n'
                '  <div id="root"></div>\n  <noscript></noscript>\n</body>\n</html>\n'
            )
            docs.append(
                Doc(
                    url=self.url(site, f"/app/{self.rng.randint(1000, 9999)}/"),
                    case="empty_text",
                    body=shell.encode(),
                    content_type="text/html; charset=utf-8",
                    reasons=["empty_text"],
                )
            )
        return docs

    def charset_cases(self, n: int = 2) -> list[Doc]:
        docs = []
        for site in self.pick_open(n):
            w, art = self.article(MARKET)
            paragraphs = [tuple(curly_quotes(s) for s in p) for p in art.paragraphs]
            paragraphs[-1] = paragraphs[-1] + ("The market \u2013 open since 1987 \u2013 draws crowds.",)
            docs.append(
                self.html_doc(
                    site,
                    "charset_windows_1252",
                    article=Article(art.title, tuple(paragraphs)),
                    author=w.person(),
                    topic=MARKET,
                    charset="windows-1252",
                )
            )
        return docs

    def other_responses(self) -> list[Doc]:
        docs = []
        for site in self.pick_open(2):
            docs.append(
                Doc(
                    url=self.url(site, f"/media/chart-{self.rng.randint(100, 999)}.png"),
                    case="non_html_png",
                    body=tiny_png(self.rng),
                    content_type="image/png",
                    reasons=["content_type:image/png"],
                    decision="dropped",
                )
            )
        for site in self.pick_open(2):
            w = Writer(site.topic, self.rng)
            pdf = tiny_pdf([f"{site.name}: annual report", w.sentence(), w.sentence()])
            docs.append(
                Doc(
                    url=self.url(site, f"/reports/annual-report-{self.rng.randint(2019, 2025)}.pdf"),
                    case="non_html_pdf",
                    body=pdf,
                    content_type="application/pdf",
                    reasons=["content_type:application/pdf"],
                    decision="dropped",
                )
            )
        for site in self.pick_open(2):
            body = (
                '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Page not found</title>'
                "</head><body><h1>Page not found</h1><p>Nothing lives at this address any more. Try the "
                '<a href="/">front page</a>.</p></body></html>\n'
            )
            docs.append(
                Doc(
                    url=self.url(site, f"/old/{self.rng.randint(1000, 9999)}.html"),
                    case="http_404",
                    body=body.encode(),
                    content_type="text/html; charset=utf-8",
                    status=404,
                    reasons=["http_status:404"],
                    decision="dropped",
                )
            )
        for site in self.pick_open(2):
            path = f"/{site.topic.section}/moved-{self.rng.randint(1000, 9999)}"
            target = f"https://{site.domain}{path}/"
            body = (
                f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Moved</title></head>'
                f'<body><p>This page now lives at <a href="{target}">{target}</a>.</p></body></html>\n'
            )
            docs.append(
                Doc(
                    url=self.url(site, path),
                    case="http_301",
                    body=body.encode(),
                    content_type="text/html; charset=utf-8",
                    status=301,
                    headers=(("Location", target),),
                    reasons=["http_status:301"],
                    decision="dropped",
                )
            )
        return docs

    def plain_pages(self, n: int) -> list[Doc]:
        hosts = [self.by_role[r][0] for r in LICENCES] + self.open_sites
        docs = []
        for i in range(n):
            site = hosts[i % len(hosts)] if i < len(hosts) else self.rng.choice(hosts)
            docs.append(self.html_doc(site, LICENCE_CASES.get(site.role, "plain")))
        return docs

    def corrupt_cases(self) -> list[Doc]:
        """A response whose HTTP block is garbage, and a long page whose gzip member gets cut."""
        a, b = self.pick_open(2)
        garbage = bytes(self.rng.choice([c for c in range(256) if c not in (10, 13)]) for _ in range(512))
        bad = Doc(
            url=self.url(a, self.path(a, Writer(a.topic, self.rng).title())),
            case="corrupt_http_header",
            body=garbage,
            content_type="",
            reasons=["malformed:*"],
            defect="garbage_http",
            decision="quarantined",
        )
        cut = self.html_doc(
            b, "truncated_gzip", article=self.article(b.topic, 900)[1], reasons=["malformed:*"]
        )
        cut.defect, cut.decision, cut.licence, cut.licence_location = "truncated", "quarantined", None, None
        return [bad, cut]


def _finish(docs: list[Doc]) -> None:
    """Decisions from reasons. In a duplicate group, copies after the first (in file order) get
    `duplicate_of:*`, and every member's decision stays open: the survivor is the lowest doc_id."""
    seen: set[str] = set()
    for d in docs:
        if d.defect:
            continue
        if d.dup_group is not None:
            if d.dup_group in seen:
                d.reasons = ["duplicate_of:*"]
            seen.add(d.dup_group)
            d.decision = None
        else:
            d.decision = "dropped" if d.reasons else "kept"


class _Clock:
    """Crawl time: starts two weeks before the robots snapshot and advances a seeded few seconds a fetch."""

    def __init__(self, snapshot: date, rng: random.Random) -> None:
        self.now = datetime(snapshot.year, snapshot.month, snapshot.day, 6, tzinfo=UTC) - timedelta(days=14)
        self.rng = rng

    def tick(self) -> datetime:
        self.now += timedelta(seconds=self.rng.randint(3, 45))
        return self.now


def _warc_date(dt: datetime) -> str:
    return str(datetime_to_iso_date(dt.replace(tzinfo=None)))


def _request(writer: WARCWriter, doc: Doc, rid: str, info_id: str, concurrent: str, when: str) -> Any:
    url = doc.url
    target = url.split("/", 3)[3] if url.count("/") >= 3 else ""
    host = url.split("/")[2]
    http = StatusAndHeaders(
        f"GET /{target} HTTP/1.1",
        [
            ("Host", host),
            ("User-Agent", USER_AGENT),
            ("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
            ("Accept-Language", "en"),
            ("Accept-Encoding", "identity"),
            ("Connection", "close"),
        ],
        is_http_request=True,
    )
    return writer.create_warc_record(
        url,
        "request",
        http_headers=http,
        warc_headers_dict={
            "WARC-Type": "request",
            "WARC-Record-ID": rid,
            "WARC-Date": when,
            "WARC-Warcinfo-ID": info_id,
            "WARC-Concurrent-To": concurrent,
        },
    )


def _response(
    writer: WARCWriter, doc: Doc, rid: str, info_id: str, fetched: datetime, rng: random.Random
) -> Any:
    headers = [
        ("Date", format_datetime(fetched, usegmt=True)),
        ("Server", doc.server),
        ("Content-Type", doc.content_type),
        ("Content-Length", str(len(doc.body))),
    ]
    if doc.status == 200 and doc.content_type.startswith("text/html"):
        modified = fetched - timedelta(days=rng.randint(1, 400), seconds=rng.randint(0, 86399))
        headers += [
            ("Last-Modified", format_datetime(modified, usegmt=True)),
            ("Cache-Control", "max-age=600"),
        ]
    headers += list(doc.headers)
    http = StatusAndHeaders(f"{doc.status} {HTTP_REASONS[doc.status]}", headers, protocol="HTTP/1.1")
    return writer.create_warc_record(
        doc.url,
        "response",
        payload=io.BytesIO(doc.body),
        length=len(doc.body),
        http_headers=http,
        warc_headers_dict={
            "WARC-Type": "response",
            "WARC-Record-ID": rid,
            "WARC-Date": _warc_date(fetched),
            "WARC-Warcinfo-ID": info_id,
        },
    )


def _garbage_response(out: io.BytesIO, doc: Doc, rid: str, info_id: str, when: str) -> None:
    """A well-formed WARC record (valid block digest) whose HTTP block is unparseable bytes.

    Written by hand because warcio's builder parses the HTTP block of every response it creates. There
    is no WARC-Payload-Digest: with no parseable HTTP headers, the record has no defined payload.
    """
    digest = Digester("sha1")
    digest.update(doc.body)
    head = StatusAndHeaders(
        "",
        [
            ("WARC-Type", "response"),
            ("WARC-Record-ID", rid),
            ("WARC-Date", when),
            ("WARC-Target-URI", doc.url),
            ("WARC-Warcinfo-ID", info_id),
            ("Content-Type", "application/http; msgtype=response"),
            ("WARC-Block-Digest", str(digest)),
            ("Content-Length", str(len(doc.body))),
        ],
        protocol="WARC/1.1",
    )
    gz = GzippingWrapper(out)
    gz.write(head.to_bytes() + doc.body + b"\r\n\r\n")
    gz.flush()


def _write_warc(
    name: str,
    docs: list[Doc],
    *,
    seed: int,
    clock: _Clock,
    rng: random.Random,
    expected: list[dict[str, Any]],
) -> bytes:
    def rid(part: str) -> str:
        return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'commonweights-sample/{seed}/{name}/{part}')}>"

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True, warc_version="1.1")
    info_id = rid("warcinfo")
    fields = {
        "software": "commonweights sample-crawl",
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "isPartOf": f"commonweights-sample-seed-{seed}",
        "description": "Generated crawl for tests and demos; every site, page and person in it is fictional.",
        "http-header-user-agent": USER_AGENT,
        "robots": "classic",
    }
    payload = "".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode()
    start = clock.now
    writer.write_record(
        writer.create_warc_record(
            "",
            "warcinfo",
            payload=io.BytesIO(payload),
            length=len(payload),
            warc_headers_dict={
                "WARC-Type": "warcinfo",
                "WARC-Record-ID": info_id,
                "WARC-Date": _warc_date(start),
                "WARC-Filename": name,
            },
        )
    )
    cut_at: int | None = None
    for i, doc in enumerate(docs):
        fetched = clock.tick()
        when = _warc_date(fetched)
        resp_id = rid(f"{i}/response")
        writer.write_record(_request(writer, doc, rid(f"{i}/request"), info_id, resp_id, when))
        begin = buf.tell()
        if doc.defect == "garbage_http":
            _garbage_response(buf, doc, resp_id, info_id, when)
        else:
            writer.write_record(_response(writer, doc, resp_id, info_id, fetched, rng))
        if doc.defect == "truncated":
            cut_at = begin + (buf.tell() - begin) // 2  # mid-member: WARC headers survive, the body does not
        expected.append(doc.expected(name, resp_id))
    data = buf.getvalue()
    return data[:cut_at] if cut_at is not None else data


def build_sample_crawl(
    *, seed: int = 0, pages: int = 240, domains: int = 24, snapshot_date: str = "2026-11-01"
) -> SampleCrawl:
    """Generate the whole sample crawl in memory (pure: same arguments, same bytes)."""
    try:
        snapshot = date.fromisoformat(snapshot_date)
    except ValueError:
        raise ConfigError(
            f"data.sample.snapshot_date={snapshot_date!r} is not an ISO date (YYYY-MM-DD)"
        ) from None
    most = len(PLACES) * len(KINDS)
    if not MIN_DOMAINS <= domains <= most:
        raise ConfigError(
            f"data.sample.domains={domains}: the sample crawl needs {MIN_DOMAINS} to {most} "
            "domains (one per robots.txt and licence case, plus open sites)"
        )
    plan = Planner(seed, domains)
    special = (
        plan.robots_cases()
        + plan.signal_cases()
        + plan.pii_cases()
        + plan.duplicate_cases()
        + plan.quality_cases()
        + plan.charset_cases()
    )
    reserved = 3  # plain pages that share the corrupt file with the two broken records
    least = len(special) + len(LICENCES) + reserved
    if pages < least:
        raise ConfigError(f"data.sample.pages={pages}: the sample crawl needs at least {least} pages")
    plain = plan.plain_pages(pages - len(special))
    extra = plan.other_responses()
    corrupt = plan.corrupt_cases()

    body = special + plain[:-reserved] + extra
    plan.rng.shuffle(body)
    per_file = [body[i::WARC_FILES] for i in range(WARC_FILES)]
    last = [plain[-3], plain[-2], corrupt[0], plain[-1], corrupt[1]]
    layout = {f"crawl-{i:05d}.warc.gz": docs for i, docs in enumerate(per_file)}
    layout[CORRUPT_FILE] = last
    _finish([d for docs in layout.values() for d in docs])

    clock = _Clock(snapshot, plan.rng)
    expected: list[dict[str, Any]] = []
    warcs = {
        name: _write_warc(name, docs, seed=seed, clock=clock, rng=plan.rng, expected=expected)
        for name, docs in layout.items()
    }
    robots = plan.robots_lines(snapshot_date)

    decisions = Counter(str(row["expected_decision"]) for row in expected)
    groups = {row["dup_group"] for row in expected if row["dup_group"]}
    html_pages = sum(
        1
        for docs in layout.values()
        for d in docs
        if d.status == 200 and d.content_type.startswith("text/html") and not d.defect
    )
    summary = {
        "seed": seed,
        "snapshot_date": snapshot_date,
        "domains": len(plan.sites),
        "robots_lines": len(robots),
        "html_pages": html_pages,
        "responses": len(expected),
        "warc_files": list(warcs),
        "expected": {
            "kept": decisions["kept"],
            "dropped": decisions["dropped"],
            "quarantined": decisions["quarantined"],
            "duplicate_groups": len(groups),
            "duplicate_members": sum(1 for row in expected if row["dup_group"]),
        },
        "cases": dict(sorted(Counter(row["case"] for row in expected).items())),
    }
    return SampleCrawl(warcs=warcs, robots=robots, expected=expected, summary=summary)


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def write_sample_crawl(
    out: Path, *, seed: int = 0, pages: int = 240, domains: int = 24, snapshot_date: str = "2026-11-01"
) -> dict[str, Any]:
    """Write the sample crawl into `out` (warc/, robots.jsonl, expected.jsonl); return a JSON-able summary.

    `out` may be missing, empty, or an earlier sample crawl (which is replaced). The files appear all at
    once: they are written into a sibling folder that is then renamed into place.
    """
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"{out}: exists and is not a folder; choose a folder for the sample crawl")
        foreign = sorted(p.name for p in out.iterdir() if p.name not in OUTPUTS)
        if (out / "warc").is_dir():  # never replace WARC files that this generator did not write
            foreign += sorted(
                f"warc/{p.name}" for p in (out / "warc").iterdir() if not WARC_NAME.fullmatch(p.name)
            )
        if foreign:
            raise ConfigError(
                f"{out}: holds files that are not a sample crawl ({', '.join(foreign[:3])}); "
                "choose an empty or new folder"
            )
    crawl = build_sample_crawl(seed=seed, pages=pages, domains=domains, snapshot_date=snapshot_date)
    files = {f"warc/{name}": data for name, data in crawl.warcs.items()}
    files["robots.jsonl"] = _jsonl(crawl.robots)
    files["expected.jsonl"] = _jsonl(crawl.expected)

    tmp = out.with_name(f".{out.name}.writing")
    if tmp.exists():
        shutil.rmtree(tmp)  # left by an interrupted earlier write of ours
    (tmp / "warc").mkdir(parents=True)
    for rel, data in files.items():
        (tmp / rel).write_bytes(data)
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)
    return {
        "out": str(out),
        **crawl.summary,
        "sha256": {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()},
    }


# ---------------------------------------------------------------- the crawl at scale (benchmarks)

SCALE_MIN_BYTES = 2 * 1024  # HTML body size range of a scale-crawl page
SCALE_MAX_BYTES = 50 * 1024
# Share of pages per case (the rest are plain article pages). Robots opt-outs come on top of these,
# from the pages that land on the sites whose robots.txt denies the policy's agents.
SCALE_CASES: tuple[tuple[str, float], ...] = (
    ("near_duplicate", 0.04),
    ("exact_duplicate", 0.02),
    ("noai_meta", 0.02),
    ("tdm_header", 0.02),
    ("aipref_header", 0.01),
    ("pii", 0.03),
    ("quality_listing", 0.03),
)
_SCRIPT_CONFIG = (
    "window.dataLayer = window.dataLayer || [];\n"
    "    function gtag(){{dataLayer.push(arguments);}}\n"
    "    gtag('js', new Date()); gtag('config', 'G-{tag}', {{anonymize_ip: true, page_path: '{path}'}});"
)
_STYLE = (
    "body{{margin:0;font:16px/1.6 Georgia,serif;color:#1b1b1b}}.site-header{{display:flex;gap:1rem;"
    "padding:.5rem {pad}rem;background:#{bg}}}nav ul{{list-style:none;display:flex;gap:.75rem}}"
    "article{{max-width:42rem;margin:2rem auto}}aside.related li{{margin:.25rem 0}}"
    ".cookie-banner{{position:fixed;bottom:0;width:100%;background:#222;color:#eee}}"
    "footer .columns{{display:grid;grid-template-columns:repeat(4,1fr)}}"
)


def _scale_chrome(planner: Planner, site: Site, writer: Writer, path: str) -> tuple[list[str], list[str]]:
    """Head extras (style, scripts) and the page furniture above the article (cookie banner, mega-menu,
    breadcrumb): what a content management system puts on every page."""
    rng = planner.rng
    e = html.escape
    head = [
        f"  <style>{_STYLE.format(pad=rng.randint(1, 3), bg=f'{rng.randrange(16**6):06x}')}</style>",
        f'  <script async src="https://analytics.{site.domain}/gtag/js?id=G-{rng.randrange(10**8)}"></script>',
        f"  <script>\n    {_SCRIPT_CONFIG.format(tag=rng.randrange(10**8), path=path)}\n  </script>",
    ]
    all_sections = sorted({t.section for t in TOPICS})
    sections = sorted(rng.sample(all_sections, rng.randint(3, min(7, len(all_sections)))))
    menu = "".join(
        f'<li class="menu-item"><a href="/{s}/">{e(cap(s))}</a><ul class="sub">'
        + "".join(
            f'<li><a href="/{s}/{slugify(issue)}/">{e(cap(issue))}</a></li>'
            for issue in (writer.draw("issue") for _ in range(rng.randint(0, 3)))
        )
        + "</ul></li>"
        for s in sections
    )
    above = [
        '  <div class="cookie-banner" role="dialog"><p>We use cookies to measure how the site is read. '
        '<button type="button">Accept</button> <button type="button">Refuse</button> '
        '<a href="/privacy/">Read more</a></p></div>',
        f'  <nav class="mega-menu" aria-label="Sections"><ul>{menu}</ul></nav>',
        f'  <nav class="breadcrumb"><a href="/">Home</a> &rsaquo; <a href="/{site.topic.section}/">'
        f"{e(cap(site.topic.section))}</a></nav>",
    ]
    return head, above


def _scale_filler(planner: Planner, site: Site, writer: Writer, kind: int) -> str:
    """One piece of boilerplate around the article: a related-article teaser, a footer column, a
    share bar or a tracking script. Pages grow to their size by adding these."""
    rng = planner.rng
    e = html.escape
    if kind == 0:
        title = writer.title()
        return (
            f'      <li><a href="/{site.topic.section}/{slugify(title)}-{rng.randrange(10**5)}/">'
            f'{e(title)}</a> <span class="teaser">{e(writer.draw("short"))}</span></li>'
        )
    if kind == 1:
        links = "".join(
            f'<li><a href="/{slugify(writer.draw("thing"))}/">{e(cap(writer.draw("thing")))}</a></li>'
            for _ in range(rng.randint(4, 8))
        )
        return f'      <div class="column"><h4>{e(cap(writer.draw("issue")))}</h4><ul>{links}</ul></div>'
    if kind == 2:
        u, n = rng.randrange(10**9), rng.randint(0, 120)
        return (
            f'      <div class="share"><a href="https://social.example/share?u={u}">Share</a> '
            f'<a href="mailto:?subject={u}">Email</a> <a href="#comments">Comments ({n})</a></div>'
        )
    blob = "".join(f"{rng.randrange(16**8):08x}" for _ in range(rng.randint(8, 40)))
    return f'  <script>window.__STATE__ = {{"v": {rng.randint(1, 9)}, "h": "{blob}"}};</script>'


def render_scale_page(
    planner: Planner,
    site: Site,
    article: Article,
    *,
    target: int,
    url_path: str,
    marks: Marks = Marks(),
) -> str:
    """An article page grown with realistic boilerplate to about `target` bytes (within
    SCALE_MIN_BYTES..SCALE_MAX_BYTES): the article of `render_page`, plus inline style and scripts,
    a cookie banner, a mega-menu, related-article teasers, share bars and footer link columns."""
    writer = Writer(site.topic, planner.rng)
    head, above = _scale_chrome(planner, site, writer, url_path)
    marks = licence_marks(site, marks)
    marks = replace(marks, head=marks.head + tuple(h.strip() for h in head))
    paragraphs = list(article.paragraphs)
    while True:
        page = render_page(
            site,
            Article(article.title, tuple(paragraphs)),
            author=writer.person(),
            published=planner.published(),
            marks=marks,
        )
        if len(page.encode()) <= SCALE_MAX_BYTES - 4096 or len(paragraphs) <= 3:
            break
        paragraphs = paragraphs[: max(3, len(paragraphs) * 3 // 4)]  # an article too long for its page
    top, _, rest = page.partition("  <main>\n")
    main, _, bottom = rest.partition("  </main>\n")
    related: list[str] = []
    columns: list[str] = []
    scripts: list[str] = []
    size = len(page.encode()) + sum(len(a) + 1 for a in above) + 200
    while size < min(target, SCALE_MAX_BYTES - 1024):
        kind = planner.rng.randrange(4)
        piece = _scale_filler(planner, site, writer, kind)
        (related if kind == 0 else columns if kind in (1, 2) else scripts).append(piece)
        size += len(piece.encode()) + 1
    aside = ['    <aside class="related"><h3>Read next</h3><ul>', *related, "    </ul></aside>"]
    extra_footer = ['    <div class="columns">', *columns, "    </div>"]
    bottom = bottom.replace("  <footer>\n", "  <footer>\n" + "\n".join(extra_footer) + "\n", 1)
    body_end = "\n".join(scripts) + "\n</body>" if scripts else "</body>"
    bottom = bottom.replace("</body>", body_end, 1)
    return "".join(
        [
            top.replace("<body>\n", "<body>\n" + "\n".join(above) + "\n", 1),
            "  <main>\n",
            main,
            "\n".join(aside) + "\n",
            "  </main>\n",
            bottom,
        ]
    )


def _scale_docs(plan: Planner, pages: int, files: int) -> list[list[Doc]]:
    """`pages` HTML responses split over `files` WARC files; sizes log-uniform over 2-50 KB."""
    rng = plan.rng
    sites = plan.sites
    weights = [rng.uniform(0.5, 2.0) for _ in sites]
    recent: list[tuple[Site, Article, Doc]] = []  # originals that later pages copy
    docs: list[Doc] = []
    cases = [c for c, _ in SCALE_CASES]
    shares = [s for _, s in SCALE_CASES]
    plain = 1.0 - sum(shares)
    for n in range(pages):
        case = rng.choices([*cases, "plain"], weights=[*shares, plain])[0]
        if case in ("near_duplicate", "exact_duplicate") and not recent:
            case = "plain"
        site = rng.choices(sites, weights=weights)[0]
        target = int(math.exp(rng.uniform(math.log(SCALE_MIN_BYTES + 512), math.log(SCALE_MAX_BYTES - 1024))))
        if case == "exact_duplicate":
            src_site, _, src = rng.choice(recent)
            copy_site = rng.choice(plan.open_sites)
            url = f"https://{copy_site.domain}/mirror/{n:06d}.html"
            docs.append(replace(src, url=url, case=case, server=copy_site.server, reasons=[]))
            continue
        writer = Writer(site.topic, rng)
        text_share = rng.uniform(0.12, 0.45)
        words = max(120, int(target * text_share / 6.3))
        if case == "near_duplicate":
            _, base, _ = rng.choice(recent)
            paragraphs = [list(p) for p in base.paragraphs]
            p = rng.randrange(len(paragraphs))
            paragraphs[p][rng.randrange(len(paragraphs[p]))] = writer.sentence()
            article = Article(base.title, tuple(tuple(p) for p in paragraphs))
        elif case == "quality_listing":
            title = writer.title()
            article = Article(title, tuple((writer.draw("short"),) for _ in range(rng.randint(1, 3))))
        else:
            article = writer.article(words)
        marks = Marks()
        if case == "noai_meta":
            marks = Marks(head=('<meta name="robots" content="noai, noimageai">',))
        elif case == "tdm_header":
            marks = Marks(headers=(("tdm-reservation", "1"),))
        elif case == "aipref_header":
            marks = Marks(headers=(("Content-Usage", "train-ai=n"),))
        elif case == "pii":
            first, last = writer.draw("first"), writer.draw("last")
            contact = (
                f"Anyone who wants to help can email {first.lower()}.{last.lower()}@{site.domain} "
                f"or ring 020 7946 0{rng.randint(100, 999)} in the evening."
            )
            with_contact = list(article.paragraphs)
            i = rng.randrange(len(with_contact))
            with_contact[i] = with_contact[i] + (contact,)
            article = Article(article.title, tuple(with_contact))
        year, month = rng.choice((2025, 2026)), rng.randint(1, 12)
        path = f"/{site.topic.section}/{year}/{month:02d}/{slugify(article.title)}-{n:06d}.html"
        page = render_scale_page(plan, site, article, target=target, url_path=path, marks=marks)
        doc = Doc(
            url=f"https://{site.domain}{path}",
            case=case,
            body=page.encode(),
            content_type="text/html; charset=utf-8",
            server=site.server,
            headers=marks.headers,
        )
        docs.append(doc)
        if case == "plain" and len(article.paragraphs) >= 4:
            recent.append((site, article, doc))
            if len(recent) > 200:
                recent.pop(rng.randrange(len(recent)))
    return [docs[i::files] for i in range(files)]


def write_scale_crawl(
    out: Path,
    *,
    seed: int = 0,
    pages: int = 20_000,
    files: int = 16,
    domains: int = 60,
    snapshot_date: str = "2026-11-01",
) -> dict[str, Any]:
    """A large crawl for benchmarks: `pages` realistic article pages of 2-50 KB HTML (boilerplate
    navigation, scripts, teasers and footers around varied prose; near and exact duplicates; noai,
    TDM and aipref opt-outs; robots.txt opt-outs on the sample crawl's role sites; PII; thin listing
    pages) in `files` gzip WARC files, plus robots.jsonl and summary.json. Deterministic for the same
    arguments. The sample crawl (`write_sample_crawl`) is not changed by this: it is the test fixture,
    this is load.
    """
    out = Path(out)
    most = len(PLACES) * len(KINDS)
    if not MIN_DOMAINS <= domains <= most:
        raise ConfigError(f"domains={domains}: the scale crawl needs {MIN_DOMAINS} to {most} domains")
    if pages < files or files < 1:
        raise ConfigError(f"pages={pages}, files={files}: need at least one page per WARC file")
    try:
        snapshot = date.fromisoformat(snapshot_date)
    except ValueError:
        raise ConfigError(f"snapshot_date={snapshot_date!r} is not an ISO date (YYYY-MM-DD)") from None
    if out.exists() and any(p.name not in ("warc", "robots.jsonl", "summary.json") for p in out.iterdir()):
        raise ConfigError(f"{out}: holds files that are not a scale crawl; choose an empty or new folder")
    plan = Planner(seed, domains)
    layout = _scale_docs(plan, pages, files)
    tmp = out.with_name(f".{out.name}.writing")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "warc").mkdir(parents=True)
    clock = _Clock(snapshot, plan.rng)
    sizes: list[int] = []
    for i, docs in enumerate(layout):
        name = f"scale-{i:05d}.warc.gz"
        data = _write_warc(name, docs, seed=seed, clock=clock, rng=plan.rng, expected=[])
        (tmp / "warc" / name).write_bytes(data)
        sizes += [len(d.body) for d in docs]
    robots = plan.robots_lines(snapshot_date)
    (tmp / "robots.jsonl").write_bytes(_jsonl(robots))
    sizes.sort()
    summary = {
        "seed": seed,
        "pages": pages,
        "files": files,
        "domains": domains,
        "snapshot_date": snapshot_date,
        "html_bytes": {
            "min": sizes[0],
            "median": sizes[len(sizes) // 2],
            "max": sizes[-1],
            "total": sum(sizes),
        },
        "warc_bytes": sum(p.stat().st_size for p in (tmp / "warc").iterdir()),
        "cases": dict(sorted(Counter(d.case for docs in layout for d in docs).items())),
        "robots_denying_sites": sorted(s.domain for s in plan.sites if s.role in ROBOTS_DENIED),
    }
    (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return {"out": str(out), **summary}
