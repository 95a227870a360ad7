"""Reliability of the curation job: for any mix of valid, duplicate and corrupt records the manifest has
one row per input record with unique doc_ids and a digest that reruns (and other shardings) reproduce;
a run killed mid-way and restarted writes the manifest of an uninterrupted run."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commonweights import config
from pipelines import curate

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ("alder.example", "birch.example", "cedar.example")
WORDS = (
    "the of and to with that have harbour ferry market river bakery stone oven town morning people "
    "boat water light bridge garden school winter summer council library street window"
).split()


def page_text(seed: int) -> str:
    rng = random.Random(seed)
    sentences = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(9, 16))).capitalize() + f" {seed}x{i}."
        for i in range(12)
    ]
    return "\n".join(f"<p>{s}</p>" for s in sentences)


def http_block(body: bytes, status: str = "200 OK") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def member(uri: str, date: str, block: bytes, n: int) -> bytes:
    head = (
        "WARC/1.1\r\nWARC-Type: response\r\n"
        f"WARC-Target-URI: {uri}\r\nWARC-Date: {date}\r\n"
        f"WARC-Record-ID: <urn:uuid:{uuid.UUID(int=n)}>\r\n"
        "Content-Type: application/http; msgtype=response\r\n"
        f"Content-Length: {len(block)}\r\n\r\n"
    ).encode()
    return gzip.compress(head + block + b"\r\n\r\n", mtime=0)


# A record is (kind, k): "page" k-th distinct page; "repeat" the same capture as page k (same URI,
# date, payload); "copy" page k's HTML under another URI; "garbage" a block that is not HTTP.
# Each file may end in a truncated record.
RECORD = st.tuples(st.sampled_from(["page", "repeat", "copy", "garbage"]), st.integers(0, 5))
FILES = st.lists(st.tuples(st.lists(RECORD, max_size=8), st.booleans()), min_size=1, max_size=3)


def write_crawl(folder: Path, files: list[tuple[list[tuple[str, int]], bool]]) -> int:
    """Write the WARC files and an allow-all robots snapshot; returns the records written."""
    folder.mkdir(parents=True)
    n = 0
    for f, (records, truncated) in enumerate(files):
        data = b""
        for kind, k in records:
            n += 1
            domain = DOMAINS[k % len(DOMAINS)]
            html = f"<html><body>{page_text(k)}</body></html>".encode()
            if kind == "page" or kind == "repeat":
                data += member(f"https://{domain}/p{k}", "2026-10-01T00:00:00Z", http_block(html), n)
            elif kind == "copy":
                data += member(f"https://{domain}/copy{n}", "2026-10-02T00:00:00Z", http_block(html), n)
            else:
                data += member(
                    f"https://{domain}/bad{n}", "2026-10-03T00:00:00Z", b"\x00\x01 not http\r\n", n
                )
        if truncated:
            n += 1
            cut = member(f"https://{DOMAINS[0]}/cut{n}", "2026-10-04T00:00:00Z", http_block(b"x" * 4000), n)
            data += cut[: len(cut) // 2]
        (folder / f"crawl-{f}.warc.gz").write_bytes(data)
    robots = [
        {"domain": d, "url": f"https://{d}/robots.txt", "fetched_at": "2026-11-01", "status": 404, "body": ""}
        for d in DOMAINS
    ]
    (folder / "robots.jsonl").write_text("".join(json.dumps(r) + "\n" for r in robots))
    return n


def config_for(crawl: Path, run: Path, *overrides: str) -> config.RunConfig:
    path = run.with_suffix(".yaml")
    path.write_text(
        yaml.safe_dump(
            {
                "name": "prop",
                "dir": str(run),
                "data": {
                    "warc": [str(p) for p in sorted(crawl.glob("*.warc.gz"))],
                    "robots": str(crawl / "robots.jsonl"),
                },
            }
        )
    )
    return config.load(path, list(overrides))


@pytest.mark.slow
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=FILES)
def test_any_mix_of_records_gives_one_row_each_and_a_stable_digest(tmp_path_factory, files):
    base = tmp_path_factory.mktemp("prop")
    written = write_crawl(base / "crawl", files)
    first = curate.run(config_for(base / "crawl", base / "a"))
    rows = curate.read_manifest(base / "a" / "curate" / "manifest")
    assert len(rows) == first["rows"] == written
    assert len({r["doc_id"] for r in rows}) == len(rows)
    assert all(r["reasons"] for r in rows if r["decision"] != "kept")
    again = curate.run(config_for(base / "crawl", base / "b", "curate.shards=3"))
    assert again["digest"] == first["digest"]


def parts_sha256(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("part-*"))}


@pytest.mark.slow
def test_run_killed_midway_and_restarted_matches_uninterrupted_run(tmp_path):
    whole = config.load(ROOT / "configs" / "tiny.yaml", [f"dir={tmp_path / 'whole'}"])
    curate.run(whole)
    killed = config.load(ROOT / "configs" / "tiny.yaml", [f"dir={tmp_path / 'killed'}"])
    resolved = killed.write_resolved()
    cmd = [sys.executable, "-m", "commonweights", "curate", "--config", str(resolved)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    tmp_out = killed.paths.curate.with_name("curate.tmp")
    spill = tmp_out / curate.SPILL
    # Killed once the first bundle has spilled rows: inside the Beam job, before any part is written.
    while not (spill.is_dir() and any(spill.iterdir())) and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not killed.paths.curate.exists()  # killed before it finished: nothing half-written in place
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not tmp_out.exists()
    assert parts_sha256(killed.paths.manifest) == parts_sha256(whole.paths.manifest)
    assert parts_sha256(killed.paths.documents) == parts_sha256(whole.paths.documents)
    a = json.loads((whole.paths.manifest / "manifest.json").read_text())
    b = json.loads((killed.paths.manifest / "manifest.json").read_text())
    assert a["digest"] == b["digest"] and a["counts"] == b["counts"]
