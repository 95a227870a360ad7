"""Lookup benchmark: `audit lookup` on generated manifests of 10^6, 10^7 (and 10^8) rows.

    .venv/bin/python benchmarks/lookup.py --rows 1000000 10000000 [--work /tmp/lookup-bench]

For each size it generates a manifest with the real schema (DuckDB, deterministic: domains with a
skewed size distribution, several captures per URL for some pages, every decision), builds the lookup
index (`data_governance.lookup.build`), and times, each from a fresh Python process (what an auditor's
command pays) and warm (a service answering many questions):

- baseline: DuckDB over the manifest parts as written (`WHERE url = ?`), i.e. no index;
- index: `Index.url`, `Index.domain`, `Index.doc_id`;
- cli: the whole `commonweights --format json audit lookup --url U MANIFEST` command.

Results go to benchmarks/results/lookup.json (one entry per size, ratios baseline/index). Not part of
the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data_governance import lookup, manifest  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "lookup.json"
REPEATS = 5


def generate(folder: Path, rows: int, parts: int) -> None:
    """A manifest of `rows` rows in `parts` Parquet files, in processing (not key) order."""
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET memory_limit='6GB'")
    con.execute("SET enable_progress_bar=false")
    domains = max(rows // 200, 10)
    per = rows // parts
    for p in range(parts):
        lo, hi = p * per, rows if p == parts - 1 else (p + 1) * per
        # domain sizes are skewed: the square of a uniform number concentrates rows on low ids
        con.execute(
            f"""COPY (
            WITH g AS (SELECT i, hash(i) AS h FROM range({lo}, {hi}) t(i)),
            d AS (SELECT i, h,
                     'site' || CAST(floor(power((h % 1000003) / 1000003.0, 2) * {domains}) AS BIGINT)
                     || '.example' AS domain, (i % 97 = 0) AS recrawl FROM g)
            SELECT md5(CAST(i AS VARCHAR)) AS doc_id,
                   'https://' || domain || '/p/'
                     || CAST(CASE WHEN recrawl AND i > 0 THEN i - 1 ELSE i END AS VARCHAR)
                     || '.html' AS url,
                   domain,
                   'crawl-' || lpad(CAST(i // 100000 AS VARCHAR), 5, '0') || '.warc.gz' AS source_file,
                   CAST((i % 100000) * 4096 AS BIGINT) AS source_offset,
                   '<urn:uuid:' || md5('r' || CAST(i AS VARCHAR)) || '>' AS record_id,
                   '2025-0' || CAST(1 + i % 9 AS VARCHAR) || '-15T12:00:00Z' AS crawl_date,
                   CAST(200 AS INTEGER) AS http_status, 'text/html' AS content_type,
                   sha256('p' || CAST(i AS VARCHAR)) AS payload_sha256,
                   sha256('t' || CAST(i AS VARCHAR)) AS text_sha256,
                   CAST(500 + h % 5000 AS BIGINT) AS chars,
                   CASE WHEN h % 10 < 7 THEN 'kept' WHEN h % 1000 = 999 THEN 'quarantined' ELSE 'dropped' END
                     AS decision,
                   CASE WHEN h % 10 < 7 THEN []::VARCHAR[]
                        WHEN h % 1000 = 999 THEN ['malformed:truncated']
                        WHEN h % 10 = 7 THEN ['robots:GPTBot', 'robots:CCBot']
                        WHEN h % 10 = 8 THEN ['tdm_reserved'] ELSE ['quality:too_short'] END AS reasons,
                   CASE WHEN h % 5 = 0 THEN 'CC-BY-4.0' ELSE NULL END AS licence,
                   CASE WHEN h % 5 = 0 THEN 'link_rel' ELSE NULL END AS licence_location,
                   '[]' AS licence_evidence,
                   '{{"robots":{{"snapshot_date":"2025-10-01","status":200,"fallback":null,"verdicts":{{}}}}}}'
                     AS consent,
                   CAST(0 AS INTEGER) AS pii_email, CAST(0 AS INTEGER) AS pii_phone,
                   CAST(0 AS INTEGER) AS pii_ip, CAST(0 AS INTEGER) AS pii_iban,
                   '{"0" * 64}' AS policy_hash
            FROM d) TO '{folder}/part-{p:05d}-of-{parts:05d}.parquet'
            (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)"""
        )


def probes(folder: Path, n: int) -> dict[str, list[str]]:
    """Existing URLs/doc_ids/domains spread over the manifest, plus one URL that is not in it."""
    import pyarrow.parquet as pq

    parts = sorted(folder.glob("part-*.parquet"))
    urls, ids, doms = [], [], []
    for k in range(n):
        f = pq.ParquetFile(parts[k % len(parts)])
        g = f.read_row_group((k * 7) % f.num_row_groups, columns=["url", "doc_id", "domain"])
        i = (k * 7919) % g.num_rows
        urls.append(g["url"][i].as_py())
        ids.append(g["doc_id"][i].as_py())
        doms.append(g["domain"][i].as_py())
    urls.append("https://site0.example/p/not-there.html")
    return {"url": urls, "doc_id": ids, "domain": doms}


def fresh(code: str) -> tuple[float, float]:
    """(wall, CPU) seconds for a new Python process to run `code`, imports included, measured inside it.

    CPU time (all threads) is reported beside wall time because this machine is shared: under load the
    wall time measures the queue for a core, the CPU time measures the work.
    """
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time; t0 = time.perf_counter(); c0 = time.process_time()\n"
            + code
            + "\nprint(time.perf_counter() - t0, time.process_time() - c0)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    wall_s, cpu_s = out.stdout.strip().splitlines()[-1].split()
    return float(wall_s), float(cpu_s)


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr[-2000:]}")
    return time.perf_counter() - t0


def bench(rows: int, work: Path, keep: bool) -> dict[str, object]:
    folder = work / f"m{rows}"
    shutil.rmtree(folder, ignore_errors=True)
    parts = max(1, rows // 5_000_000)
    t0 = time.perf_counter()
    generate(folder, rows, parts)
    gen_s = time.perf_counter() - t0
    # The CLI reads manifest.json; a generated manifest has no digest (computing one is not timed here).
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "schema_version": manifest.SCHEMA_VERSION,
                "generated_by": "benchmarks/lookup.py",
                "rows": rows,
                "digest": {"algorithm": "merkle-sha256", "root": "not computed for generated manifests"},
            }
        )
    )
    print(f"{rows} rows generated in {gen_s:.0f}s", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    built = lookup.build(folder, "not computed for generated manifests", memory_limit="8GB")
    build_s = time.perf_counter() - t0
    print(f"index built in {build_s:.0f}s", file=sys.stderr, flush=True)
    pr = probes(folder, REPEATS)
    glob = str(folder / "part-*.parquet")
    ix = str(folder / lookup.INDEX_DIR)

    base_fresh = [
        fresh(
            f"import duckdb; duckdb.sql(\"SELECT doc_id, decision, reasons FROM read_parquet('{glob}') "
            f"WHERE url = '{u}'\").fetchall()"
        )
        for u in pr["url"]
    ]
    idx_fresh = {
        kind: [
            fresh(
                f"from pathlib import Path; from data_governance.lookup import Index; "
                f"Index(Path('{ix}')).{kind}({v!r})"
            )
            for v in pr[kind]
        ]
        for kind in ("url", "doc_id", "domain")
    }
    cli = [
        wall(
            [
                sys.executable,
                "-m",
                "commonweights",
                "--format",
                "json",
                "audit",
                "lookup",
                "--url",
                u,
                str(folder),
            ]
        )
        for u in pr["url"][:3]
    ]
    import duckdb

    con = duckdb.connect()
    warm_base, warm_idx = [], []
    index = lookup.Index(Path(ix))
    for u in pr["url"]:
        t0, c0 = time.perf_counter(), time.process_time()
        con.execute(
            f"SELECT doc_id, decision, reasons FROM read_parquet('{glob}') WHERE url = ?", [u]
        ).fetchall()
        warm_base.append((time.perf_counter() - t0, time.process_time() - c0))
        t0, c0 = time.perf_counter(), time.process_time()
        index.url(u)
        warm_idx.append((time.perf_counter() - t0, time.process_time() - c0))

    def size(pattern: str) -> int:
        return sum(p.stat().st_size for p in folder.glob(pattern))

    med = statistics.median

    def stats(pairs: list[tuple[float, float]]) -> dict[str, float]:
        return {"wall_s": round(med(p[0] for p in pairs), 4), "cpu_s": round(med(p[1] for p in pairs), 4)}

    result = {
        "rows": rows,
        "domains": built["domains"],
        "manifest_parts": parts,
        "manifest_bytes": size("part-*.parquet"),
        "index_bytes": sum(p.stat().st_size for p in (folder / lookup.INDEX_DIR).iterdir()),
        "generate_s": round(gen_s, 1),
        "index_build_s": round(build_s, 1),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "fresh_process_median": {
            "baseline_duckdb_scan_url": stats(base_fresh),
            "index_url": stats(idx_fresh["url"]),
            "index_doc_id": stats(idx_fresh["doc_id"]),
            "index_domain": stats(idx_fresh["domain"]),
        },
        "cli_audit_lookup_url_wall_s": round(med(cli), 4),
        "warm_median": {"baseline_duckdb_scan_url": stats(warm_base), "index_url": stats(warm_idx)},
        "ratio_baseline_over_index_cpu": {
            "fresh_url": round(med(p[1] for p in base_fresh) / med(p[1] for p in idx_fresh["url"]), 1),
            "warm_url": round(med(p[1] for p in warm_base) / max(med(p[1] for p in warm_idx), 1e-6), 1),
        },
    }
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def key_table_cost(rows: int, work: Path) -> dict[str, object]:
    """The one part of a query that grows with the manifest: loading index.json's key table and
    bisecting it. Measured for an index.json with the row-group count `rows` would give (keys shaped
    like the generated manifests'), with the query's own code; CPU time of 5 repeats."""
    groups = -(-rows // lookup.ROW_GROUP)
    folder = work / f"keys{rows}"
    folder.mkdir(parents=True, exist_ok=True)

    def files(kind: str) -> list[dict[str, object]]:
        out = []
        per = lookup.FILE_ROWS // lookup.ROW_GROUP
        for f in range(-(-groups // per)):
            n = min(per, groups - f * per)
            out.append(
                {
                    "path": f"{kind}-{f:05d}.parquet",
                    "rows": n * lookup.ROW_GROUP,
                    "groups": [
                        (
                            [f"example.site{g:09d}", f"https://site{g:09d}.example/p/{g}.html"],
                            [f"example.site{g:09d}", f"https://site{g:09d}.example/p/{g + 1}.html"],
                        )
                        if kind != "doc_ids"
                        else ([f"{g:032x}"], [f"{g:032x}"])
                        for g in range(f * per, f * per + n)
                    ],
                }
            )
        return out

    meta = {
        "index_version": lookup.INDEX_VERSION,
        "manifest_digest": "key-table benchmark",
        "rows": rows,
        "urls": files("urls"),
        "doc_ids": files("doc_ids"),
        "domains_files": files("domains"),
    }
    (folder / "index.json").write_text(json.dumps(meta))
    key = [f"example.site{groups // 2:09d}", "https://x"]
    cpu = []
    for _ in range(REPEATS):
        c0 = time.process_time()
        ix = lookup.Index(folder)  # reads and parses index.json, builds the bisect tables
        list(ix.table("urls").candidates(key, key))
        cpu.append(time.process_time() - c0)
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "rows": rows,
        "row_groups": groups,
        "index_json_bytes": len(json.dumps(meta)),
        "key_table_load_and_bisect_cpu_s_min": round(min(cpu), 4),
        "key_table_load_and_bisect_cpu_s_median": round(statistics.median(cpu), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    ap.add_argument("--work", type=Path, default=Path("/tmp/commonweights-lookup-bench"))
    ap.add_argument("--keep", action="store_true", help="Keep the generated manifests.")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--key-table",
        type=int,
        nargs="*",
        default=[],
        help="Also measure index.json's key table alone for these row counts (e.g. 100000000).",
    )
    args = ap.parse_args()
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if args.key_table:
        previous["key_table"] = [key_table_cost(n, args.work) for n in args.key_table]
        print(json.dumps(previous["key_table"]), flush=True)
        if not args.rows:
            args.out.write_text(json.dumps(previous, indent=2) + "\n")
    runs = {str(r["rows"]): r for r in previous.get("runs", [])}
    for rows in args.rows:
        r = bench(rows, args.work, args.keep)
        print(json.dumps(r), flush=True)
        runs[str(rows)] = r
        doc = {
            "benchmark": "audit lookup",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "schema_version": manifest.SCHEMA_VERSION,
            "index_version": lookup.INDEX_VERSION,
            "row_group_rows": lookup.ROW_GROUP,
            "method": "medians of 5 probes (present URLs/doc_ids/domains spread over the manifest, plus one "
            "absent URL); fresh = a new Python process, timed inside it from its first import (wall and CPU "
            "of all threads); warm = repeated queries in one process; cli = wall time of the whole "
            "`commonweights audit lookup` command; ratios use CPU time (the machine is shared, see "
            "load_average_1min)",
            "runs": sorted(runs.values(), key=lambda x: int(x["rows"])),  # type: ignore[arg-type]
        }
        for key in ("key_table", "notes"):
            if key in previous:
                doc[key] = previous[key]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
