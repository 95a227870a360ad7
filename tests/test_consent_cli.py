"""`commonweights consent robots|licence`: JSON verdicts naming the deciding rule or evidence; exit codes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROBOTS = (
    b"User-agent: *\nDisallow: /private/\n\n"
    b"User-agent: GPTBot\nUser-agent: CCBot\nAllow: /open/\nDisallow: /\n"
)
GOOGLE = (
    Path(__file__).resolve().parents[2] / "shared" / "conformance" / "robots" / "google_spec_vectors.jsonl"
)


def cw(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commonweights", "consent", *args], capture_output=True, text=True, cwd=cwd
    )


def lines(proc: subprocess.CompletedProcess[str]) -> list[dict]:
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_robots_one_agent_names_the_rule(tmp_path):
    (tmp_path / "robots.txt").write_bytes(ROBOTS)
    [v] = lines(cw("robots", "robots.txt", "https://ex.example/news/1", "--agent", "GPTBot", cwd=tmp_path))
    assert v["allowed"] is False and v["matched"] == "specific" and v["groups"] == [4]
    assert v["rule"] == {"kind": "disallow", "pattern": "/", "line": 7}
    [v] = lines(cw("robots", "robots.txt", "https://ex.example/open/x", "--agent", "ccbot", cwd=tmp_path))
    assert v["allowed"] is True and v["rule"]["kind"] == "allow"


def test_robots_policy_agents(tmp_path):
    (tmp_path / "robots.txt").write_bytes(ROBOTS)
    [v] = lines(cw("robots", "robots.txt", "https://ex.example/private/a", cwd=tmp_path))
    assert v["agents_version"].startswith("commonweights-agents-1:apertus@")
    assert len(v["disallowed_agents"]) == 13 and v["allowed"] is False
    assert v["verdicts"]["ClaudeBot"]["rule"]["pattern"] == "/private/"
    [v] = lines(cw("robots", "robots.txt", "/public", "--agents-list", "ai-robots-txt", cwd=tmp_path))
    assert set(v["disallowed_agents"]) == {"GPTBot", "CCBot"} and len(v["verdicts"]) > 60


def test_robots_batch_in_order(tmp_path):
    (tmp_path / "robots.txt").write_bytes(ROBOTS)
    batch = [
        {"robots_path": "robots.txt", "url": "https://ex.example/a", "agent": "GPTBot"},
        {
            "robots_b64": base64.b64encode(b"User-agent: *\nAllow: /\n").decode(),
            "url": "/a",
            "agent": "GPTBot",
        },
        {"robots_path": "robots.txt", "url": "https://ex.example/private/", "agent": "Bytespider"},
    ]
    if GOOGLE.is_file():  # the spec vectors through the CLI give the same answers as the library
        batch += [
            {
                "robots_b64": r["robotstxt_b64"],
                "url": r["url"],
                "agent": r["user_agent"],
                "expected": r["expected"],
            }
            for r in map(json.loads, GOOGLE.read_text().splitlines())
            if r["test_type"] == "STANDARD" and r["url"] and r["user_agent"]
        ]
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(b) for b in batch) + "\n")
    out = lines(cw("robots", "--batch", "b.jsonl", "--strict-tokens", cwd=tmp_path))
    assert len(out) == len(batch)
    assert [o["allowed"] for o in out[:3]] == [False, True, False]
    for b, o in zip(batch[3:], out[3:], strict=True):
        assert o["allowed"] == (b["expected"] == "ALLOWED"), b


def test_licence_page_and_batch(tmp_path):
    (tmp_path / "a.html").write_text(
        '<html><head><link rel="license" href="https://creativecommons.org/licenses/by/4.0/">'
        '<meta name="tdm-reservation" content="1"><meta name="robots" content="noai"></head><body>'
        '<figure><img src="x.jpg"><figcaption><a href="https://creativecommons.org/licenses/by-nc/2.0/">'
        "CC BY-NC</a></figcaption></figure></body></html>"
    )
    (tmp_path / "b.html").write_text(
        '<html><body><footer><a href="/terms">CC BY-SA 4.0</a></footer></body></html>'
    )
    [v] = lines(cw("licence", "a.html", "--url", "https://ex.example/p", cwd=tmp_path))
    assert (v["licence"], v["licence_location"]) == ("CC-BY-4.0", "link_rel")
    assert v["tdm_reservation"] is True and v["noai"] is True
    assert [(e["location"], e["spdx"], e["page_level"]) for e in v["evidence"]] == [
        ("link_rel", "CC-BY-4.0", True),
        ("body_link", "CC-BY-NC-2.0", False),
    ]
    [v] = lines(
        cw(
            "licence",
            "b.html",
            "--header",
            "X-Robots-Tag: noai",
            "--header",
            "Content-Usage: train-ai=n",
            cwd=tmp_path,
        )
    )
    assert v["licence"] == "CC-BY-SA-4.0" and v["noai"] is True and v["aipref"]["training"] == "n"
    (tmp_path / "b.jsonl").write_text(
        json.dumps({"html_path": "b.html"})
        + "\n"
        + json.dumps({"html_path": "a.html", "url": "https://x.example/"})
    )
    out = lines(cw("licence", "--batch", "b.jsonl", cwd=tmp_path))
    assert [o["licence"] for o in out] == ["CC-BY-SA-4.0", "CC-BY-4.0"] and out[1][
        "url"
    ] == "https://x.example/"


@pytest.mark.parametrize(
    "args,message",
    [
        (("robots", "missing.txt", "/a"), "missing.txt: cannot read the robots.txt"),
        (("robots", "--batch", "bad.jsonl"), "bad.jsonl:2: missing url"),
        (("licence", "--batch", "notjson.jsonl"), "notjson.jsonl:1: not a JSON object"),
        (("robots",), "give ROBOTS_FILE and URL"),
        (("licence", "x.html", "--header", "novalue"), "expected 'Name: value'"),
    ],
)
def test_input_errors_exit_2_naming_the_file(tmp_path, args, message):
    (tmp_path / "bad.jsonl").write_text(
        '{"robots_b64": "", "robots_path": "r", "url": "/"}\n{"robots_path": "r"}\n'
    )
    (tmp_path / "notjson.jsonl").write_text("html_path: a.html\n")
    (tmp_path / "x.html").write_text("<html></html>")
    proc = cw(*args, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert message in " ".join(proc.stderr.split()), proc.stderr
