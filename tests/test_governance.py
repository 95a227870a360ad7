"""Per-document decisions: one case per reason code, evidence recorded, all denying reasons listed."""

from __future__ import annotations

import json

import pytest

from commonweights.config import GovernanceConfig, GovernanceMode, policy_hash
from data_governance import dedup, licence, manifest, pii, quality, signals
from data_governance.assess import Assessor, RawRecord
from data_governance.robots import RobotsRule, Snapshot
from data_governance.takedowns import Takedowns

SECOND = (
    "Later that evening the library hosted a reading by a local author whose novel follows three "
    "generations of a family that kept the lighthouse on the northern cape. She spoke about the letters "
    "she found in the archive and about how much of the town's history was never written down at all."
)
PROSE = (
    "The harbour committee met on Tuesday to discuss the new ferry timetable and the repairs to the "
    "old stone pier. Residents said that the early boats were often late, and that the waiting room "
    "needed better heating before the winter storms arrive. The chair promised a survey of all the "
    "passengers and a report to the town council with clear costs for each of the proposed changes. "
    "Several fishermen asked that the night moorings stay free of charge for local boats."
)

SNAPSHOTS = {
    "open.example": Snapshot("open.example", "2026-11-01", 200, "User-agent: *\nAllow: /\n"),
    "gpt.example": Snapshot("gpt.example", "2026-11-01", 200, "User-agent: GPTBot\nDisallow: /\n"),
    "ccpath.example": Snapshot(
        "ccpath.example", "2026-11-01", 200, "User-agent: CCBot\nDisallow: /private/\n"
    ),
    "star.example": Snapshot(
        "star.example", "2026-11-01", 200, "User-agent: Googlebot\nAllow: /\n\nUser-agent: *\nDisallow: /\n"
    ),
    "gone.example": Snapshot("gone.example", "2026-11-01", 404),
    "down.example": Snapshot("down.example", "2026-11-01", 503),
}


def page(body: str = PROSE, head: str = "", footer: str = "") -> bytes:
    return (
        f"<html><head><title>t</title>{head}</head><body><main><article><p>{body}</p>"
        f"<p>{SECOND}</p></article></main><footer>{footer}</footer></body></html>"
    ).encode()


def record(
    url: str = "https://open.example/a", payload: bytes | None = None, status: int = 200, **headers: str
):
    headers.setdefault("content_type", "text/html; charset=utf-8")
    hdrs = [(k.replace("_", "-").lower(), v) for k, v in headers.items()]
    return RawRecord(
        source_file="a.warc.gz",
        offset=0,
        record_id="<urn:uuid:1>",
        uri=url,
        warc_date="2026-10-01T00:00:00Z",
        http_status=status,
        headers=tuple(hdrs),
        payload=page() if payload is None else payload,
    )


def assess(rec: RawRecord, policy: GovernanceConfig | None = None, takedowns: Takedowns | None = None):
    policy = policy or GovernanceConfig()
    a = Assessor(policy, policy_hash(policy), RobotsRule(SNAPSHOTS, policy), takedowns or Takedowns())
    return a.assess(rec)


ALL_AGENTS = [f"robots:{a}" for a in GovernanceConfig().agents]

CASES = [
    ("kept", record(), "kept", []),
    ("robots agent", record("https://gpt.example/a"), "dropped", ["robots:GPTBot"]),
    ("robots path inside", record("https://ccpath.example/private/x"), "dropped", ["robots:CCBot"]),
    ("robots path outside", record("https://ccpath.example/public/x"), "kept", []),
    ("robots star", record("https://star.example/a"), "dropped", ALL_AGENTS),
    ("robots 404 allows", record("https://gone.example/a"), "kept", []),
    ("robots 503 disallows", record("https://down.example/a"), "dropped", ["robots:unavailable"]),
    ("robots missing", record("https://nowhere.example/a"), "dropped", ["robots:missing"]),
    ("tdm header", record(tdm_reservation="1"), "dropped", ["tdm_reserved"]),
    (
        "tdm meta",
        record(payload=page(head='<meta name="tdm-reservation" content="1">')),
        "dropped",
        ["tdm_reserved"],
    ),
    ("aipref", record(content_usage="train-ai=n, search=y"), "dropped", ["aipref:train-ai=n"]),
    (
        "noai meta",
        record(payload=page(head='<meta name="robots" content="noai, noimageai">')),
        "dropped",
        ["meta:noai"],
    ),
    ("noai header", record(x_robots_tag="noai"), "dropped", ["header:noai"]),
    ("http status", record(status=404), "dropped", ["http_status:404"]),
    ("content type", record(payload=b"\x89PNG", content_type="image/png"), "dropped", None),
    ("too short", record(payload=b"<html><body><p>Too short a page.</p></body></html>"), "dropped", None),
    ("empty", record(payload=b"<html><body></body></html>"), "dropped", ["empty_text"]),
]


@pytest.mark.parametrize("name,rec,decision,expected", CASES, ids=[c[0] for c in CASES])
def test_decision_per_reason(name, rec, decision, expected):
    a = assess(rec)
    assert a.row["decision"] == decision, a.row["reasons"]
    if expected is not None:
        assert a.row["reasons"] == expected
    assert (a.text is not None) == (decision == "kept")


def test_content_type_and_quality_codes():
    png = assess(record(payload=b"\x89PNG\r\n", content_type="image/png"))
    assert "content_type:image/png" in png.row["reasons"]
    short = assess(record(payload=b"<html><body><p>Too short a page.</p></body></html>"))
    # Every failing rule is listed in the reference order (Gopher repetition first, as in FineWeb).
    assert "quality:gopher_short_doc" in short.row["reasons"]
    assert all(r.startswith("quality:") for r in short.row["reasons"])


def test_every_denying_reason_is_listed():
    rec = record("https://gpt.example/a", tdm_reservation="1", x_robots_tag="noai")
    reasons = assess(rec).row["reasons"]
    assert {"robots:GPTBot", "tdm_reserved", "header:noai"} <= set(reasons)


def test_takedown_by_domain_prefix_and_id():
    rec = record("https://open.example/news/1")
    doc = assess(rec).row["doc_id"]
    for kind, value in [
        ("domain", "open.example"),
        ("url_prefix", "https://open.example/news/"),
        ("doc_id", doc),
    ]:
        td = Takedowns.parse(json.dumps({"kind": kind, "value": value, "date": "2026-11-02"}), "t.jsonl")
        assert assess(rec, takedowns=td).row["reasons"] == ["takedown"], kind
    other = Takedowns.parse(
        json.dumps({"kind": "domain", "value": "elsewhere.example", "date": "2026-11-02"}), "t"
    )
    assert assess(rec, takedowns=other).row["decision"] == "kept"


def test_bad_takedown_line_names_file_and_line():
    with pytest.raises(ValueError, match=r"t\.jsonl:2"):
        Takedowns.parse('{"kind":"domain","value":"a","date":"2026-11-02"}\n{"kind":"planet"}', "t.jsonl")


def test_open_licence_mode():
    policy = GovernanceConfig(mode=GovernanceMode.open_licence)
    by = page(head='<link rel="license" href="https://creativecommons.org/licenses/by/4.0/">')
    nc = page(head='<link rel="license" href="https://creativecommons.org/licenses/by-nc/4.0/deed.fr">')
    credit = page(
        body=PROSE
        + ' The <a href="https://creativecommons.org/licenses/by/2.0/">photo is CC BY</a>, by a reader.'
    )
    kept = assess(record(payload=by), policy)
    assert kept.row["decision"] == "kept" and kept.row["licence"] == "CC-BY-4.0"
    assert kept.row["licence_location"] == "link_rel"
    assert assess(record(payload=nc), policy).row["reasons"] == ["licence:not_allowed:CC-BY-NC-4.0"]
    weak = assess(record(payload=credit), policy)
    assert weak.row["reasons"] == ["licence:missing"] and weak.row["licence"] is None
    assert json.loads(weak.row["licence_evidence"])[0]["location"] == "body_link"
    # In consent mode the same unlicensed page is kept.
    assert assess(record(payload=credit)).row["decision"] == "kept"


def test_footer_licence_and_spdx_mapping():
    p = page(footer='<a href="https://creativecommons.org/licenses/by-sa/4.0/">CC BY-SA</a>')
    row = assess(record(payload=p)).row
    assert (row["licence"], row["licence_location"]) == ("CC-BY-SA-4.0", "footer")
    assert licence.spdx_from_url("http://creativecommons.org/publicdomain/zero/1.0/") == "CC0-1.0"
    assert (
        licence.spdx_from_url("https://creativecommons.org/licenses/by-nc-nd/3.0/de/") == "CC-BY-NC-ND-3.0-DE"
    )
    assert licence.spdx_from_url("https://creativecommons.org/publicdomain/mark/1.0/") == "CC-PDM-1.0"
    assert licence.spdx_from_url("https://example.org/licence") is None
    assert licence.allowed("CC-BY-4.0", ["CC-BY"]) and not licence.allowed("CC-BY-SA-4.0", ["CC-BY"])


def test_robots_evidence_records_snapshot_and_verdicts():
    row = assess(record("https://gpt.example/a")).row
    consent = json.loads(row["consent"])
    assert consent["robots"]["snapshot_date"] == "2026-11-01"
    assert consent["robots"]["verdicts"]["GPTBot"] is False and consent["robots"]["verdicts"]["CCBot"] is True


def test_robots_policy_override_is_recorded():
    policy = GovernanceConfig(robots_5xx="allow")
    row = assess(record("https://down.example/a"), policy).row
    assert row["decision"] == "kept"
    assert json.loads(row["consent"])["robots"]["fallback"] == "5xx:allow"


def test_malformed_record_is_quarantined():
    a = assess(RawRecord("b.warc.gz", 1234, error="http_headers", error_detail="bad status line"))
    assert a.row["decision"] == "quarantined" and a.row["reasons"] == ["malformed:http_headers"]
    assert a.row["source_offset"] == 1234 and len(a.row["doc_id"]) == 32


def test_pii_redaction_counts():
    text, counts = pii.redact(
        "Write to anna.berg@harbour.example or call +41 44 123 45 67 or (555) 123-4567; "
        "server 8.8.8.8, lan 192.168.1.1, on 2025-11-26 we had 1200 visitors."
    )
    assert {k: counts[k] for k in ("email", "phone", "ip")} == {"email": 1, "phone": 2, "ip": 1}
    assert "<EMAIL>" in text and "192.168.1.1" in text and "2025-11-26" in text and "1200" in text


def test_quality_filters():
    q = GovernanceConfig().quality
    assert quality.check(PROSE + "\nThe pier was built in 1872 and was repaired twice since.", q) == []
    assert "gopher_dup_5_gram" in quality.check(PROSE * 2, q)  # the same text twice repeats its n-grams
    assert "gopher_short_doc" in quality.check("word " * 10, q)
    repeated = "\n".join(["The same line of text and more here."] * 20)
    assert "gopher_dup_line_frac" in quality.check(repeated, q)
    assert "gopher_alpha_words" in quality.check(" ".join(["12 34 56 78 90 the and of"] * 20), q)


def test_content_usage_parsing():
    assert signals.parse_content_usage('train-ai=n, search="y"') == {"train-ai": "n", "search": "y"}
    assert signals.header_tokens("GPTBot: noai, noindex") == ["noai", "noindex"]


def test_near_duplicates_share_a_bucket_and_components_pick_smallest():
    other = PROSE.replace("Tuesday", "Wednesday")
    assert set(dedup.band_keys(dedup.signature(PROSE * 3))) & set(dedup.band_keys(dedup.signature(other * 3)))
    unrelated = "A completely different text about mountains, glaciers and the long history of rope. " * 5
    assert not set(dedup.band_keys(dedup.signature(PROSE))) & set(dedup.band_keys(dedup.signature(unrelated)))
    assert dedup.components([("b", "c"), ("a", "c"), ("x", "y")]) == {"b": "a", "c": "a", "y": "x"}


def test_digest_is_order_independent_and_sensitive():
    rows = [assess(record(f"https://open.example/{i}")).row for i in range(5)]
    assert manifest.digest(rows) == manifest.digest(list(reversed(rows)))
    changed = [dict(r) for r in rows]
    changed[2]["reasons"] = ["takedown"]
    assert manifest.digest(changed) != manifest.digest(rows)


def test_agent_lists_are_shipped_dated_and_rebuildable():
    from pathlib import Path

    from data_governance import agents

    data = agents.shipped()
    assert data["version"] == "commonweights-agents-1" and data["date"] == "2026-11-26"
    assert agents.agents("apertus") == list(GovernanceConfig().agents)
    wide = agents.agents("ai-robots-txt")
    assert {"GPTBot", "CCBot", "AI2Bot", "Bytespider", "Google-Extended"} <= set(wide) and wide[-1] == "*"
    assert not {"ChatGPT-User", "OAI-SearchBot", "PerplexityBot", "Claude-User"} & set(wide)
    source = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "agents" / "ai_robots_txt.json"
    if source.is_file():  # the shipped file is exactly what the facts yield
        assert agents.build_list(json.loads(source.read_text())) == data
    policy = GovernanceConfig(agents_list="ai-robots-txt")
    assert (
        policy.agents == wide and policy.agents_version == "commonweights-agents-1:ai-robots-txt@2026-11-26"
    )
    assert policy_hash(policy) != policy_hash(GovernanceConfig())
    with pytest.raises(ValueError, match="agents_list: custom"):
        GovernanceConfig(agents=["MyBot"])
    assert GovernanceConfig(agents_list="custom", agents=["MyBot", "*"]).agents == ["MyBot", "*"]


def test_robots_evidence_names_deciding_rule_and_list_version():
    consent = json.loads(assess(record("https://ccpath.example/private/x")).row["consent"])
    assert consent["robots"]["agents_version"] == GovernanceConfig().agents_version
    assert consent["robots"]["rules"]["CCBot"] == {
        "matched": "specific",
        "groups": [1],
        "rule": {"kind": "disallow", "pattern": "/private/", "line": 2},
    }
    assert consent["robots"]["rules"]["GPTBot"] == {"matched": "none", "groups": [], "rule": None}


def test_open_licence_needs_every_stated_licence_allowed():
    policy = GovernanceConfig(mode=GovernanceMode.open_licence)
    both = page(
        head='<link rel="license" href="https://creativecommons.org/licenses/by/4.0/">',
        footer='<a href="https://creativecommons.org/licenses/by-nc/4.0/">CC BY-NC</a>',
    )
    row = assess(record(payload=both), policy).row
    assert row["licence"] == "CC-BY-4.0" and row["reasons"] == ["licence:not_allowed:CC-BY-NC-4.0"]
    ported = page(head='<link rel="license" href="https://creativecommons.org/licenses/by-sa/3.0/de/">')
    row = assess(record(payload=ported), policy).row
    assert (row["decision"], row["licence"]) == ("kept", "CC-BY-SA-3.0-DE")


def test_takedown_evidence_and_url_normalisation():
    td = Takedowns.parse(
        json.dumps(
            {
                "kind": "url_prefix",
                "value": "https://www.Open.example/news/",
                "date": "2026-12-01",
                "reason": "owner request #12",
            }
        ),
        "t.jsonl",
    )
    row = assess(record("http://open.example/news/1"), takedowns=td).row
    assert row["reasons"] == ["takedown"]
    assert json.loads(row["consent"])["takedown"] == {
        "kind": "url_prefix",
        "value": "https://www.Open.example/news/",
        "date": "2026-12-01",
        "reason": "owner request #12",
    }
    assert assess(record("http://open.example/newsletter"), takedowns=td).row["decision"] == "kept"
    sub = Takedowns.parse(json.dumps({"kind": "domain", "value": "example", "date": "2026-12-01"}), "t")
    assert sub.matches("x", "https://a.open.example/", "a.open.example")
    with pytest.raises(ValueError, match=r"t:1: takedown date 'soon' is not an ISO date"):
        Takedowns.parse(json.dumps({"kind": "domain", "value": "a", "date": "soon"}), "t")


def test_reasons_rederive_from_stored_evidence():
    """Every consent/licence reason of a row follows from its stored evidence alone (what audit re-checks)."""
    from data_governance.assess import consent_licence_reasons

    derived = ("robots:", "takedown", "tdm_reserved", "aipref:", "meta:noai", "header:noai", "licence:")
    policies = [GovernanceConfig(), GovernanceConfig(mode=GovernanceMode.open_licence)]
    td = Takedowns.parse(json.dumps({"kind": "domain", "value": "open.example", "date": "2026-12-01"}), "t")
    for policy in policies:
        for _, rec, _, _ in CASES:
            for takedowns in (None, td):
                row = assess(rec, policy, takedowns).row
                if row["decision"] == "quarantined" or any(
                    r.startswith(("http_status", "content_type")) for r in row["reasons"]
                ):
                    continue
                have = {r for r in row["reasons"] if r.startswith(derived)}
                got = consent_licence_reasons(
                    json.loads(row["consent"]), json.loads(row["licence_evidence"]), policy
                )
                assert got == have, (rec.uri, row["reasons"])


def test_header_map_gives_what_header_gives():
    """The assessor reads its headers from one map: repeated names joined in order, absent ones None."""
    headers = (
        ("content-type", "text/html"),
        ("x-robots-tag", "noai"),
        ("x-robots-tag", "googlebot: noindex"),
        ("tdm-reservation", ""),
        ("x-robots-tag", ""),
    )
    rec = RawRecord("f.warc.gz", 0, headers=headers)
    got = rec.header_map()
    for name in ("content-type", "x-robots-tag", "tdm-reservation", "tdm-policy", "content-usage"):
        assert got.get(name) == rec.header(name), name
    assert got["x-robots-tag"] == "noai, googlebot: noindex, "


def test_robots_evidence_is_encoded_once_per_domain_and_rules():
    """The consent column is canonical JSON, and a domain's robots evidence is encoded once per set of
    deciding rules: the same text as encoding it afresh, different where the rules differ by path."""
    from commonweights.config import canonical_json

    rule = RobotsRule(SNAPSHOTS, GovernanceConfig())
    urls = [
        "https://ccpath.example/private/x",
        "https://ccpath.example/public/y",
        "https://ccpath.example/private/z",
        "https://gone.example/a",
        "https://GONE.example/b",
        "https://nowhere.example/c",
        "https://star.example/d",
        "https://open.example/e",
    ]
    texts = {}
    for url in urls:
        ev = rule.evaluate(url.split("/")[2], url)
        texts[url] = rule.evidence_json(ev)
        assert texts[url] == canonical_json(ev.to_json())
        assert RobotsRule(SNAPSHOTS, GovernanceConfig()).evaluate(url.split("/")[2], url) == ev
        assert rule.evaluate(url.split("/")[2], url).key == ev.key
    assert texts[urls[0]] == texts[urls[2]] != texts[urls[1]]
    assert '"CCBot":false' in texts[urls[0]] and '"CCBot":true' in texts[urls[1]]
    assert texts[urls[3]] == texts[urls[4]]
    # The evidence itself is built once per key and shared by the URLs decided by the same rules.
    evidence = {url: rule.evaluate(url.split("/")[2], url) for url in urls}
    assert evidence[urls[0]] is evidence[urls[2]] is not evidence[urls[1]]
    assert evidence[urls[3]] is evidence[urls[4]]
    for url in urls:
        row = assess(record(url)).row
        consent = json.loads(row["consent"])
        assert canonical_json(consent) == row["consent"]
        assert canonical_json(consent["robots"]) == texts[url]


@pytest.mark.parametrize(
    "obj",
    [{}, {"aipref": None}, {"x_robots_tag": ["noai"]}, {"aipref": {"robots": {}}, "tdmrep": {"header": "1"}}],
)
def test_encoded_value_is_spliced_where_sorting_puts_it(obj):
    from commonweights.config import canonical_json
    from data_governance.assess import _with_encoded

    value = {"verdicts": {"GPTBot": False}, "fallback": None}
    assert _with_encoded(obj, "robots", canonical_json(value)) == canonical_json({**obj, "robots": value})
