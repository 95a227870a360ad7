"""Fast path against the quality-first reference on the same records: keep/drop agreement, the
confusion per reason code and the two extractors' text similarity (`data_governance.agreement`).

    .venv/bin/python benchmarks/agreement.py [--pages 2000] [--out benchmarks/results/agreement.json]

Two inputs: the realistic 2-50 KB pages of `write_scale_crawl` (cached in /tmp/curate-bench-input,
shared with benchmarks/curate.py) and the embedded sample crawl. The CI test
(tests/test_curate_agreement.py) asserts >= 98% on a smaller sample crawl; this records the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from commonweights.config import GovernanceConfig  # noqa: E402
from data_governance import agreement  # noqa: E402
from data_governance.assess import RawRecord  # noqa: E402
from pipelines import curate  # noqa: E402
from pipelines.sample_crawl import write_sample_crawl, write_scale_crawl  # noqa: E402

CACHE = Path("/tmp/curate-bench-input")


def records(folder: Path) -> list[RawRecord]:
    out: list[RawRecord] = []
    for f in sorted((folder / "warc").iterdir()):
        with open(f, "rb") as fh:
            out.extend(curate.read_records(fh, f.name))
    return out


def measure(folder: Path) -> dict[str, Any]:
    fast, reference = agreement.assessors(
        GovernanceConfig(), curate.load_snapshots(str(folder / "robots.jsonl"))
    )
    started = time.perf_counter()
    report = agreement.compare(records(folder), fast, reference).to_json()
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=2000, help="Realistic pages (write_scale_crawl).")
    ap.add_argument("--sample-pages", type=int, default=400, help="Pages of the embedded sample crawl.")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "agreement.json")
    args = ap.parse_args()
    scale = CACHE / f"pages-{args.pages}-files-16-seed-0"
    if not (scale / "robots.jsonl").is_file():
        write_scale_crawl(scale, seed=0, pages=args.pages, files=16)
    sample = CACHE / f"sample-{args.sample_pages}-seed-0"
    if not (sample / "robots.jsonl").is_file():
        write_sample_crawl(sample, seed=0, pages=args.sample_pages, domains=30)
    result = {
        "benchmark": "curation agreement: fast path vs quality-first reference",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "method": "the same records through both modes' Assessor (data_governance.agreement.compare): "
        "keep/drop agreement over all records and over those decided by their text, confusion of the "
        "first reason per mode, and word-overlap precision/recall/F1 of the two extractors' text",
        "inputs": {
            f"scale_crawl_{args.pages}": measure(scale),
            f"sample_crawl_{args.sample_pages}": measure(sample),
        },
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, r in result["inputs"].items():
        print(
            f"{name}: {r['records']} records, agreement {r['agreement']}, text-decided {r['text_decided']} "
            f"agreement {r['text_agreement']}, extractor F1 {r['extractor_similarity']['f1']['mean']}"
        )


if __name__ == "__main__":
    main()
