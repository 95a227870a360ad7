"""Curation throughput, in one run on one input: docs/s per core of the full curation job against
(a) bare WARC iteration with FastWARC (the physical floor of reading) and (b) datatrove's
LocalPipelineExecutor running the same extraction and quality filters; plus the speed-up of the
multi-process runner with 2 workers. Figures go to benchmarks/results/curate.json.

    .venv/bin/python benchmarks/curate.py [--pages 400] [--out benchmarks/results/curate.json]

The input is the embedded sample crawl at the requested size (its 4 readable WARC files; the
deliberately corrupt fifth file is left out because datatrove's reader stops at it). Our job does
more than (b) — consent, licence, PII, dedup, manifest — so (b) is a floor for it, not a twin.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "packages": {
            p: version(p) for p in ("apache-beam", "datatrove", "FastWARC", "trafilatura", "warcio")
        },
        "note": "shared machine: other jobs may have run at the same time; compare ratios, not absolutes",
    }


def bare_fastwarc(files: list[Path]) -> int:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    n = 0
    for f in files:
        with f.open("rb") as fh:
            for rec in ArchiveIterator(fh, record_types=WarcRecordType.response):
                rec.reader.read()
                n += 1
    return n


def datatrove_pipeline(files: list[Path], work: Path, workers: int) -> None:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers import JsonlWriter

    shutil.rmtree(work, ignore_errors=True)
    inputs = work / "in"
    inputs.mkdir(parents=True)
    for f in files:
        (inputs / f.name).symlink_to(f)
    LocalPipelineExecutor(
        pipeline=[
            WarcReader(str(inputs), glob_pattern="*.warc.gz"),
            # As our extraction: recall-favouring, no per-process dedup cache; a generous timeout
            # so that no document is dropped for time (datatrove drops timed-out documents).
            Trafilatura(
                favour_precision=False, deduplicate=False, timeout=60, favor_recall=True, include_tables=True
            ),
            GopherRepetitionFilter(),
            GopherQualityFilter(),
            C4QualityFilter(),
            FineWebQualityFilter(),
            JsonlWriter(str(work / "out")),
        ],
        tasks=len(files),
        workers=workers,
        logging_dir=str(work / "logs"),
        skip_completed=False,
    ).run()


def commonweights_run(files: list[Path], robots: Path, work: Path, *overrides: str) -> dict[str, Any]:
    from commonweights import config
    from pipelines import curate

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cfg_file = work / "bench.yaml"
    cfg_file.write_text(
        yaml.safe_dump(
            {
                "name": "bench",
                "dir": str(work / "run"),
                "data": {"warc": [str(f) for f in files], "robots": str(robots)},
            }
        )
    )
    return curate.run(config.load(cfg_file, list(overrides)))


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=400, help="HTML pages in the generated sample crawl")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "curate.json")
    args = ap.parse_args()

    from pipelines.curate import read_records
    from pipelines.sample_crawl import write_sample_crawl

    load_start = list(os.getloadavg())  # other work on the machine skews absolute figures
    tmp = Path(tempfile.mkdtemp(prefix="cw-bench-"))
    try:
        crawl = tmp / "crawl"
        write_sample_crawl(crawl, seed=0, pages=args.pages, domains=40)
        files = sorted(p for p in (crawl / "warc").glob("*.warc.gz") if "corrupt" not in p.name)
        docs = 0
        for f in files:
            with f.open("rb") as fh:
                docs += sum(1 for _ in read_records(fh, f.name))
        results: dict[str, dict[str, Any]] = {}

        def record(name: str, seconds: float, cores: int, **extra: Any) -> None:
            results[name] = {
                "seconds": round(seconds, 3),
                "cores": cores,
                "docs_per_s": round(docs / seconds, 2),
                "docs_per_s_per_core": round(docs / seconds / cores, 2),
                **extra,
            }
            print(f"{name:<40} {seconds:8.2f} s  {docs / seconds / cores:9.2f} docs/s/core", flush=True)

        s, n = timed(bare_fastwarc, files)
        record("fastwarc_bare_iteration", s, 1, records=n)
        s, _ = timed(datatrove_pipeline, files, tmp / "dt1", 1)
        record("datatrove_local_executor_1_worker", s, 1)
        s, _ = timed(datatrove_pipeline, files, tmp / "dt2", 2)
        record("datatrove_local_executor_2_workers", s, 2)
        robots = crawl / "robots.jsonl"
        for name, cores, overrides in (
            ("commonweights_fast_in_process", 1, ()),
            ("commonweights_reference_in_process", 1, ("governance.quality.mode=datatrove",)),
            ("commonweights_fast_2_workers", 2, ("curate.runner=multi-process", "curate.workers=2")),
            (
                "commonweights_reference_2_workers",
                2,
                ("governance.quality.mode=datatrove", "curate.runner=multi-process", "curate.workers=2"),
            ),
        ):
            s, out = timed(commonweights_run, files, robots, tmp / name, *overrides)
            record(name, s, cores, manifest_rows=out["rows"], counts=out["counts"], digest=out["digest"])

        def per_core(name: str) -> float:
            return results[name]["docs_per_s_per_core"]

        def wall(name: str) -> float:
            return results[name]["seconds"]

        summary = {
            "reference_vs_datatrove_per_core": round(
                per_core("commonweights_reference_in_process")
                / per_core("datatrove_local_executor_1_worker"),
                3,
            ),
            "fast_vs_datatrove_per_core": round(
                per_core("commonweights_fast_in_process") / per_core("datatrove_local_executor_1_worker"), 3
            ),
            "fast_vs_fastwarc_floor_per_core": round(
                per_core("commonweights_fast_in_process") / per_core("fastwarc_bare_iteration"), 5
            ),
            "reference_vs_fastwarc_floor_per_core": round(
                per_core("commonweights_reference_in_process") / per_core("fastwarc_bare_iteration"), 5
            ),
            "speedup_2_workers_fast": round(
                wall("commonweights_fast_in_process") / wall("commonweights_fast_2_workers"), 3
            ),
            "speedup_2_workers_reference": round(
                wall("commonweights_reference_in_process") / wall("commonweights_reference_2_workers"), 3
            ),
            "speedup_2_workers_datatrove": round(
                wall("datatrove_local_executor_1_worker") / wall("datatrove_local_executor_2_workers"), 3
            ),
            "same_digest_1_and_2_workers": (
                results["commonweights_fast_in_process"]["digest"]
                == results["commonweights_fast_2_workers"]["digest"]
                and results["commonweights_reference_in_process"]["digest"]
                == results["commonweights_reference_2_workers"]["digest"]
            ),
        }
        doc = {
            "benchmark": "curate",
            "load_average_at_start_and_end": [load_start, list(os.getloadavg())],
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(),
            "input": {
                "sample_crawl_pages": args.pages,
                "warc_files": len(files),
                "response_records": docs,
                "bytes": sum(f.stat().st_size for f in files),
            },
            "results": results,
            "summary": summary,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
        print(json.dumps(summary, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
