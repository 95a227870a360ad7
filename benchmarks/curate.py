"""Curation throughput (issue #8): docs/s per core of the curation job in each quality mode, against
the FastWARC reading floor and a FineWeb-style datatrove pipeline, in one run on one input; the
speed-up of Beam's multi-process runner with 2 workers; peak memory per process; and where the time
of one document goes, stage by stage. Figures go to benchmarks/results/curate.json.

    .venv/bin/python benchmarks/curate.py                       # 20,000 pages, the committed figures
    .venv/bin/python benchmarks/curate.py --pages 2000 --slow-pages 500 --out /tmp/curate.json

Input: `pipelines.sample_crawl.write_scale_crawl` (realistic 2-50 KB article pages with boilerplate,
duplicates, opt-outs, PII, thin pages) in 16 gzip WARC files, generated once into `--cache` and
reused. Pages are dealt to the files in turn, so the first k files are a fair sample of the whole:
the slow measurements (datatrove, quality-first) run on the first files holding `--slow-pages` pages
and are compared per document.

Every measurement runs in a fresh Python process (`--child`), timed inside it from pipeline start to
outputs written (imports excluded, worker start-up included); the parent samples that process tree
every 0.2 s for peak RSS per process, and records the load average and the CPU time that other work
on the machine took while it ran (the machine is shared: compare ratios within one run).

Stage shares: the per-document work is run in plain Python over the same records, with no framework,
calling the library's own functions (`ApplyGovernancePolicy.setup` builds the same Assessor the
pipeline uses); each library function of a stage is timed exclusively (a stage nested in another is
not counted twice). The Beam end-to-end time minus that sum is framework overhead (runner, shuffles
of the dedup and the writers, pickling between steps), which the JSON reports as such.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FILES = 16
SEED = 0
QUALITY_FIRST = "governance.quality.mode=datatrove"  # the reference / quality-first mode
TWO_WORKERS = ("curate.runner=multi-process", "curate.workers=2")
ONE_WORKER_PROCESS = ("curate.runner=multi-process", "curate.workers=1")  # the same runner, 1 worker
# Every Beam measurement but the `default_parts_*` memory check writes 16 parts: with fewer parts than
# workers one worker writes while the other waits (a user with N workers sets curate.shards >= N).
PARTS = ("curate.shards=16",)


# ---------------------------------------------------------------- machine and input


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
    packages = ("apache-beam", "datatrove", "FastWARC", "Resiliparse", "trafilatura", "warcio", "spacy")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "packages": {p: version(p) for p in packages},
        "note": "shared 2-core VM: other jobs ran at the same time (see other_cpu_cores per measurement); "
        "compare ratios within this run, not absolute figures across runs",
    }


def code_digest() -> str:
    """One digest of the library code being measured (a run during which it changed says so)."""
    h = hashlib.sha256()
    for f in sorted([*ROOT.glob("data_governance/*.py"), *ROOT.glob("pipelines/*.py")]):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def scale_input(cache: Path, pages: int) -> Path:
    """The generated crawl for `pages`, made once and reused (its summary.json marks it complete)."""
    from pipelines.sample_crawl import write_scale_crawl

    folder = cache / f"pages-{pages}-files-{FILES}-seed-{SEED}"
    if not (folder / "summary.json").is_file():
        print(f"generating {pages} pages into {folder} ...", flush=True)
        write_scale_crawl(folder, seed=SEED, pages=pages, files=FILES)
    return folder


def warc_files(folder: Path, first: int | None = None) -> list[Path]:
    files = sorted((folder / "warc").glob("*.warc.gz"))
    return files[:first] if first else files


# ---------------------------------------------------------------- the children (one measurement each)


def _now() -> tuple[float, float]:
    """(wall clock, CPU seconds of this process and of its finished children: Beam's SDK workers,
    datatrove's pool and extraction sandbox)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _since(start: tuple[float, float]) -> dict[str, float]:
    wall, cpu = _now()
    return {"seconds": wall - start[0], "cpu_seconds": cpu - start[1]}


def child_fastwarc(files: list[Path], work: Path, _: list[str]) -> dict[str, Any]:
    """The floor: FastWARC iterating response records and reading each payload, nothing else."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    t = _now()
    n = 0
    for f in files:
        with f.open("rb") as fh:
            for rec in ArchiveIterator(fh, record_types=WarcRecordType.response):
                rec.reader.read()
                n += 1
    return {**_since(t), "docs": n}


def child_datatrove(files: list[Path], work: Path, args: list[str]) -> dict[str, Any]:
    """FineWeb's steps in datatrove's LocalPipelineExecutor, one task per WARC file."""
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

    workers = int(args[0])
    inputs = work / "in"
    inputs.mkdir(parents=True)
    for f in files:
        (inputs / f.name).symlink_to(f)
    executor = LocalPipelineExecutor(
        pipeline=[
            WarcReader(str(inputs), glob_pattern="*.warc.gz"),
            # As our quality-first extraction: recall-favouring, tables kept, no per-process dedup
            # cache; a generous timeout so that no document is dropped for time.
            Trafilatura(favour_precision=False, deduplicate=False, timeout=60, include_tables=True),
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
    )
    t = _now()
    executor.run()
    spent = _since(t)
    kept = 0
    for part in (work / "out").glob("*.jsonl.gz"):
        with gzip.open(part, "rt") as fh:
            kept += sum(1 for _ in fh)
    return {**spent, "kept": kept}


def bench_config(files: list[Path], robots: Path, work: Path, overrides: list[str]) -> Any:
    import yaml

    from commonweights import config

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
    return config.load(cfg_file, overrides)


def child_commonweights(files: list[Path], work: Path, args: list[str]) -> dict[str, Any]:
    """The whole curation job through Beam (`pipelines.curate.run`): consent, licence, extraction,
    PII, quality, dedup, manifest and documents written, then the audit artefacts of the manifest."""
    from data_governance import audit
    from pipelines import curate

    robots, overrides = Path(args[0]), args[1:]
    cfg = bench_config(files, robots, work, overrides)
    artefacts = [0.0]
    write_artefacts = audit.write_artefacts

    def timed_artefacts(*a: Any, **k: Any) -> Any:  # the real function, timed (runs in this process)
        t = time.perf_counter()
        try:
            return write_artefacts(*a, **k)
        finally:
            artefacts[0] += time.perf_counter() - t

    audit.write_artefacts = timed_artefacts  # type: ignore[assignment]
    t = _now()
    out = curate.run(cfg)
    spent = _since(t)
    return {
        **spent,
        "audit_artefacts_seconds": round(artefacts[0], 3),
        "manifest_rows": out["rows"],
        "counts": out["counts"],
        "digest": out["digest"],
    }


class StageClock:
    """Exclusive CPU time per stage (process time: what other work on a shared machine takes does not
    count): a timed function called inside another counts only for its own stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._inner: list[float] = []

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **k: Any) -> Any:
            self._inner.append(0.0)
            t = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                dt = time.process_time() - t
                inner = self._inner.pop()
                self.seconds[stage] += dt - inner
                self.calls[stage] += 1
                if self._inner:
                    self._inner[-1] += dt

        timed.__wrapped__ = fn  # type: ignore[attr-defined]
        return timed

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._inner.append(0.0)
        t = time.process_time()
        try:
            yield
        finally:
            dt = time.process_time() - t
            inner = self._inner.pop()
            self.seconds[name] += dt - inner
            self.calls[name] += 1
            if self._inner:
                self._inner[-1] += dt


# (stage, module, function) timed inside Assessor.assess where the module has the function. Old and
# new names both appear: the list reads whichever the library has now.
STAGE_FUNCTIONS: tuple[tuple[str, str, str], ...] = (
    ("html_parse", "data_governance.extract", "parse"),
    ("extract", "data_governance.extract", "main_text"),
    ("extract", "data_governance.assess", "extract_text"),
    ("html_signals", "data_governance.signals", "evidence"),
    ("html_signals", "data_governance.signals", "parse_html"),
    ("decode", "data_governance.assess", "decode"),
    ("consent", "data_governance.signals", "aipref_decision"),
    ("consent", "data_governance.signals", "header_tokens"),
    ("consent", "data_governance.signals", "tdm_decision"),
    ("licence", "data_governance.licence", "page_licence"),
    ("licence", "data_governance.licence", "page_level"),
    ("licence", "data_governance.licence", "allowed"),
    ("pii", "data_governance.pii", "redact"),
    ("quality", "data_governance.quality", "evaluate"),
    ("langid", "data_governance.langid", "check"),
    ("ids_and_hashes", "data_governance.ids", "sha256"),
    ("ids_and_hashes", "data_governance.ids", "doc_id"),
    ("manifest_row", "data_governance.assess", "canonical_json"),
    ("manifest_row", "data_governance.assess", "base_row"),
)


def instrument(clock: StageClock, assessor: Any) -> list[str]:
    """Wrap the stage functions where they are looked up (their module, and any module that imported
    them by name into the assessor), and the assessor's per-run lookups. Returns what was wrapped."""
    import importlib

    from data_governance import assess

    wrapped = []
    for stage, module_name, attr in STAGE_FUNCTIONS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        fn = getattr(module, attr, None)
        if fn is None:
            continue
        timed = clock.wrap(stage, fn)
        setattr(module, attr, timed)
        for name, value in list(vars(assess).items()):
            if value is fn:
                setattr(assess, name, timed)
        wrapped.append(f"{stage}={module_name}.{attr}")
    for stage, owner, attr in (("consent", "robots", "evaluate"), ("consent", "takedowns", "match")):
        obj = getattr(assessor, owner, None)
        if obj is not None and hasattr(obj, attr):
            setattr(obj, attr, clock.wrap(stage, getattr(obj, attr)))
            wrapped.append(f"{stage}=assessor.{owner}.{attr}")
    return wrapped


def child_stages(files: list[Path], work: Path, args: list[str]) -> dict[str, Any]:
    """The per-document work of the job in plain Python over the same records, stage by stage."""
    from pipelines import curate
    from pipelines.curate import read_records, source_names

    robots, overrides = Path(args[0]), args[1:]
    cfg = bench_config(files, robots, work, overrides)
    policy = curate.ApplyGovernancePolicy(cfg, str(robots), None)
    policy.setup()  # the same Assessor (and warmed-up filters) as each pipeline worker builds
    assessor = policy.assessor
    assert assessor is not None
    clock = StageClock()
    wrapped = instrument(clock, assessor)
    names = source_names(files)
    rows: list[dict[str, Any]] = []
    lines: list[bytes] = []
    docs = 0
    t = _now()
    for f in files:
        with f.open("rb") as fh:
            records = read_records(fh, names[f])
            while True:
                with clock.stage("read"):
                    rec = next(records, None)
                if rec is None:
                    break
                docs += 1
                with clock.stage("assess_other"):
                    a = assessor.assess(rec)
                rows.append(a.row)
                if a.text is not None:
                    with clock.stage("minhash"):
                        curate.dedup_keys(a.row, a.text)
                    with clock.stage("documents_write"):
                        lines.append(curate.corpus_line(a.row, a.text))
    with clock.stage("manifest_write"), (work / "manifest.parquet").open("wb") as out:
        curate.write_part([rows], out)  # (with the counts, audit facts and digest leaves of the rows)
    with clock.stage("documents_write"):
        (work / "documents.jsonl").write_bytes(b"".join(lines))
    return {
        **_since(t),
        "docs": docs,
        "kept": len(lines),
        "stage_seconds": {k: round(v, 4) for k, v in sorted(clock.seconds.items(), key=lambda kv: -kv[1])},
        "wrapped": wrapped,
    }


CHILDREN: dict[str, Callable[[list[Path], Path, list[str]], dict[str, Any]]] = {
    "fastwarc": child_fastwarc,
    "datatrove": child_datatrove,
    "commonweights": child_commonweights,
    "stages": child_stages,
}


def child_main(kind: str, input_dir: Path, first: int, work: Path, args: list[str], out: Path) -> None:
    files = warc_files(input_dir, first or None)
    result = CHILDREN[kind](files, work, args)
    out.write_text(json.dumps(result))


# ---------------------------------------------------------------- the parent (sampling, figures)


def _cpu_busy() -> float:
    import psutil

    c = psutil.cpu_times()
    return float(c.user + c.nice + c.system + c.irq + c.softirq + getattr(c, "steal", 0.0))


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _role(proc: Any, root_pid: int) -> str:
    if proc.pid == root_pid:
        return "main"
    try:
        cmd = proc.cmdline()
    except Exception:
        return "helper"
    if cmd and Path(cmd[0]).name in ("sh", "bash", "dash"):
        return "shell"  # the `sh -c` wrapper Beam starts each SDK worker through: not a worker
    return "beam_worker" if "sdk_worker_main" in " ".join(cmd) else "helper"


def measure(
    label: str, kind: str, input_dir: Path, first: int, args: list[str], scratch: Path
) -> dict[str, Any]:
    """Run one measurement in a fresh process; sample its process tree for memory and CPU time."""
    import psutil

    work = scratch / label
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    result_file, log_file = work / "result.json", scratch / f"{label}.log"
    cmd = [sys.executable, __file__, "--child", kind, "--input", str(input_dir), "--first", str(first)]
    cmd += ["--work", str(work), "--result", str(result_file), "--", *args]
    load_start = os.getloadavg()
    busy0, ours0, wall0 = _cpu_busy(), _children_cpu(), time.perf_counter()
    with log_file.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        seen: dict[int, dict[str, Any]] = {}  # pid -> role, peak rss, last cpu seconds
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                tree = []
            for p in tree:
                try:
                    if p.pid not in seen:
                        seen[p.pid] = {"role": _role(p, proc.pid), "rss": 0, "cpu": 0.0, "samples": 0}
                    rss, cpu = p.memory_info().rss, sum(p.cpu_times()[:2])
                except psutil.Error:
                    continue
                seen[p.pid]["rss"] = max(seen[p.pid]["rss"], rss)
                seen[p.pid]["cpu"] = cpu
                seen[p.pid]["samples"] += 1
            time.sleep(0.2)
    wall = time.perf_counter() - wall0
    busy, ours = _cpu_busy() - busy0, _children_cpu() - ours0
    if proc.returncode != 0:
        sys.stderr.write(log_file.read_text(errors="replace")[-6000:])
        raise SystemExit(f"{label}: the measurement process failed (exit {proc.returncode}); log above")
    result = json.loads(result_file.read_text())
    # Left out: Beam's `sh -c` wrappers, and processes seen once (a fork caught before its exec).
    kept = [v for v in seen.values() if v["role"] != "shell" and v["samples"] > 1]
    procs = sorted(kept, key=lambda v: (v["role"], -v["rss"]))
    by_role: dict[str, list[float]] = defaultdict(list)
    cpu_by_role: dict[str, list[float]] = defaultdict(list)
    for v in procs:
        by_role[v["role"]].append(round(v["rss"] / 2**20, 1))
        cpu_by_role[v["role"]].append(round(v["cpu"], 2))
    result["process_wall_seconds"] = round(wall, 2)
    result["cpu_seconds_process_lifetime"] = round(ours, 2)
    result["cpu_seconds_by_process"] = dict(cpu_by_role)
    result["other_cpu_cores"] = round(max(0.0, busy - ours) / wall, 2)
    result["load_average_start_end"] = [round(load_start[0], 2), round(os.getloadavg()[0], 2)]
    result["peak_rss_mib"] = dict(by_role)
    shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=20_000, help="pages of the generated input")
    ap.add_argument(
        "--slow-pages",
        type=int,
        default=5_000,
        help="pages for the slow measurements (datatrove, quality-first); 0: all",
    )
    ap.add_argument(
        "--memory-pages",
        type=int,
        default=5_000,
        help="a smaller input for the memory-growth check (0: skip)",
    )
    ap.add_argument(
        "--bounded-pages",
        type=int,
        help="a larger input for the memory check with the default part size (default: 2 x --pages; 0: skip)",
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help="runs of each fast-path measurement (the median is kept)"
    )
    ap.add_argument("--datatrove-2-workers", action="store_true", help="also datatrove with 2 workers")
    ap.add_argument("--markdown", type=Path, help="print the tables of a results file and exit")
    ap.add_argument("--only", help="comma-separated measurement labels to run (quick iteration)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/curate-bench-input"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "curate.json")
    ap.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    ap.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())), end="")
        return
    if args.child:
        child_main(args.child, args.input, args.first, args.work, args.rest, args.result)
        return

    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    code_at_start = code_digest()
    full = scale_input(args.cache, args.pages)
    summary = json.loads((full / "summary.json").read_text())
    per_file = math.ceil(args.pages / FILES)
    slow_first = FILES if not args.slow_pages else max(1, min(FILES, math.ceil(args.slow_pages / per_file)))
    robots = full / "robots.jsonl"
    scratch = Path(tempfile.mkdtemp(prefix="cw-bench-"))
    results: dict[str, dict[str, Any]] = {}

    def run(label: str, kind: str, first: int, *rest: str, cores: int = 1, folder: Path = full) -> None:
        # The short measurements are taken `--repeat` times and the run of median wall time is kept
        # (all runs' times beside it): on a shared VM one 20-second run can be 5-8% off its neighbours.
        times = args.repeat if label.startswith("fast") else 1  # (fastwarc_floor too)
        runs = sorted(
            (measure(label, kind, folder, first, list(rest), scratch) for _ in range(times)),
            key=lambda m: m["seconds"],
        )
        r = runs[len(runs) // 2]
        if times > 1:
            r["runs"] = {
                "kept": "median wall time",
                "seconds": [round(m["seconds"], 3) for m in runs],
                "cpu_seconds": [round(m["cpu_seconds"], 3) for m in runs],
            }
        docs = r.get("docs") or r.get("manifest_rows") or count_docs(folder, first)
        r.update(
            docs=docs,
            files=first or FILES,
            cores=cores,
            seconds=round(r["seconds"], 3),
            cpu_seconds=round(r["cpu_seconds"], 3),
            docs_per_s=round(docs / r["seconds"], 2),
            # Per core = per CPU-second the measurement's processes used (the machine is shared: a wall
            # clock rate would count other jobs' time); the wall rate over its cores is kept beside it.
            docs_per_s_per_core=round(docs / r["cpu_seconds"], 2),
            docs_per_s_per_core_wall=round(docs / r["seconds"] / cores, 2),
        )
        results[label] = r
        print(
            f"{label:<36} {r['seconds']:8.2f} s {r['cpu_seconds']:8.2f} cpu-s {docs:6d} docs "
            f"{r['docs_per_s_per_core']:9.2f} docs/cpu-s (others {r['other_cpu_cores']} cores) "
            f"rss {r['peak_rss_mib']}",
            flush=True,
        )

    only = set(args.only.split(",")) if args.only else None

    def wanted(*labels: str) -> bool:  # (an extra input is generated only if a measurement reads it)
        return only is None or bool(only & set(labels))

    small = (
        scale_input(args.cache, args.memory_pages)
        if args.memory_pages and wanted("fast_beam_1_worker_small_input", "fast_beam_2_workers_small_input")
        else None
    )
    fast, quality = (str(robots), *PARTS), (str(robots), QUALITY_FIRST, *PARTS)
    small_fast = (str(small / "robots.jsonl"), *PARTS) if small else ()
    # The memory bound: with the default part size (no curate.shards) a part holds the documents of
    # PART_INPUT_BYTES of input whatever the input's size, so a worker's peak should not grow with it.
    bounded = 2 * args.pages if args.bounded_pages is None else args.bounded_pages
    large = (
        scale_input(args.cache, bounded)
        if bounded and wanted("default_parts_2_workers", "default_parts_2_workers_large_input")
        else None
    )
    large_fast = (str(large / "robots.jsonl"),) if large else ()
    # (label, child, files (0: all), child arguments, cores, input folder)
    plan: list[tuple[str, str, int, tuple[str, ...], int, Path | None]] = [
        ("fastwarc_floor", "fastwarc", 0, (), 1, full),
        ("fast_stages_plain_python", "stages", 0, (str(robots),), 1, full),
        ("fast_beam_1_worker", "commonweights", 0, fast, 1, full),
        ("fast_beam_1_worker_process", "commonweights", 0, fast + ONE_WORKER_PROCESS, 1, full),
        ("fast_beam_2_workers", "commonweights", 0, fast + TWO_WORKERS, 2, full),
        ("fast_beam_1_worker_small_input", "commonweights", 0, small_fast, 1, small),
        ("fast_beam_2_workers_small_input", "commonweights", 0, small_fast + TWO_WORKERS, 2, small),
        (
            "default_parts_2_workers",
            "commonweights",
            0,
            (str(robots), *TWO_WORKERS),
            2,
            full if large else None,
        ),
        ("default_parts_2_workers_large_input", "commonweights", 0, large_fast + TWO_WORKERS, 2, large),
        ("datatrove_1_worker", "datatrove", slow_first, ("1",), 1, full),
        (
            "datatrove_2_workers",
            "datatrove",
            slow_first,
            ("2",),
            2,
            full if args.datatrove_2_workers else None,
        ),
        ("quality_first_stages_plain_python", "stages", slow_first, (str(robots), QUALITY_FIRST), 1, full),
        ("quality_first_beam_1_worker", "commonweights", slow_first, quality, 1, full),
        ("quality_first_beam_2_workers", "commonweights", slow_first, quality + TWO_WORKERS, 2, full),
    ]
    try:
        for label, kind, first, rest, cores, folder in plan:
            if folder is None or (only is not None and label not in only):
                continue
            run(label, kind, first, *rest, cores=cores, folder=folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    doc = {
        "benchmark": "curate",
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "code": {
            "sha256_at_start": code_at_start,
            "changed_during_run": code_digest() != code_at_start,
            "files": "data_governance/*.py, pipelines/*.py (the code measured)",
        },
        "input": {
            "generator": "pipelines.sample_crawl.write_scale_crawl",
            **summary,
            "slow_measurements": {
                "files": slow_first,
                "pages": count_docs(full, slow_first),
                "why": "datatrove and the quality-first mode are an order of magnitude slower than the fast "
                "path; they are measured on the first files of the same input (pages are dealt to "
                "files in turn, so these are a fair sample) and compared per document",
            },
        },
        "method": {
            "timing": "each measurement in a fresh process; seconds from pipeline start to outputs "
            "written (interpreter start and imports excluded, Beam worker start-up included)",
            "repeats": f"each fast_* and fastwarc measurement run {args.repeat} times, the run of median "
            "wall time kept (`runs` lists them all); the slow ones once",
            "cores": "1 for in-process runs (datatrove 1 worker, FnApiRunner in-process, plain Python); "
            "N for N worker processes",
            "stages": "the per-document work in plain Python over the same records, each library "
            "function timed exclusively; the Beam figure minus the stage sum is framework overhead",
            "memory": "peak RSS of every process of the measurement's process tree, sampled every 0.2 s "
            "(main: the runner/driver process; beam_worker: Beam SDK worker processes; helper: other "
            "child processes, e.g. datatrove's pool and its extraction sandbox)",
            "other_cpu_cores": "CPU time other work on the machine used while the measurement ran, in "
            "cores (machine busy time minus this measurement's CPU time, over its wall time)",
        },
        "results": results,
        "summary": summarise(results),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc["summary"], indent=2))


def count_docs(folder: Path, first: int) -> int:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    n = 0
    for f in warc_files(folder, first or None):
        with f.open("rb") as fh:
            n += sum(1 for _ in ArchiveIterator(fh, record_types=WarcRecordType.response, parse_http=False))
    return n


def summarise(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ratios between measurements of this run; an entry whose measurements were not run is left out."""

    def rate(label: str) -> float:
        return float(results[label]["docs_per_s_per_core"])

    def wall(label: str) -> float:
        return float(results[label]["seconds"])

    def idle_bound(one: str, two: str) -> float:
        """Speed-up two workers would give on an otherwise idle 2-core machine, from CPU time: the
        1-worker run's CPU seconds over the least wall time the 2-worker run's processes allow (its
        total CPU over 2 cores, or its busiest process, whichever is longer). An upper estimate: it
        assumes the runner's own work overlaps the workers'."""
        cpu2 = results[two]["cpu_seconds_by_process"]
        busiest = max(c for cs in cpu2.values() for c in cs)
        return float(results[one]["cpu_seconds"]) / max(float(results[two]["cpu_seconds"]) / 2, busiest)

    entries: dict[str, Callable[[], Any]] = {
        "fast_docs_per_s_per_core": lambda: rate("fast_beam_1_worker"),
        "fast_vs_datatrove": lambda: round(rate("fast_beam_1_worker") / rate("datatrove_1_worker"), 2),
        "fast_vs_fastwarc_floor": lambda: round(rate("fast_beam_1_worker") / rate("fastwarc_floor"), 4),
        "quality_first_docs_per_s_per_core": lambda: rate("quality_first_beam_1_worker"),
        "quality_first_vs_datatrove": lambda: round(
            rate("quality_first_beam_1_worker") / rate("datatrove_1_worker"), 3
        ),
        "speedup_2_workers_fast": lambda: round(wall("fast_beam_1_worker") / wall("fast_beam_2_workers"), 3),
        # Scaling within one runner: the multi-process runner with 2 workers against itself with 1 (both
        # pay for worker processes); the figure above compares with the in-process runner instead.
        "speedup_2_workers_fast_same_runner": lambda: round(
            wall("fast_beam_1_worker_process") / wall("fast_beam_2_workers"), 3
        ),
        "worker_process_cost_1_worker": lambda: round(
            wall("fast_beam_1_worker_process") / wall("fast_beam_1_worker"), 3
        ),
        "speedup_2_workers_fast_idle_machine_estimate": lambda: round(
            idle_bound("fast_beam_1_worker", "fast_beam_2_workers"), 3
        ),
        "cpu_inflation_2_workers_fast": lambda: round(
            results["fast_beam_2_workers"]["cpu_seconds"] / results["fast_beam_1_worker"]["cpu_seconds"], 3
        ),
        "speedup_2_workers_quality_first": lambda: round(
            wall("quality_first_beam_1_worker") / wall("quality_first_beam_2_workers"), 3
        ),
        "speedup_2_workers_quality_first_idle_machine_estimate": lambda: round(
            idle_bound("quality_first_beam_1_worker", "quality_first_beam_2_workers"), 3
        ),
        "speedup_2_workers_datatrove": lambda: round(
            wall("datatrove_1_worker") / wall("datatrove_2_workers"), 3
        ),
        "same_digest_fast_1_and_2_workers": lambda: (
            results["fast_beam_1_worker"]["digest"] == results["fast_beam_2_workers"]["digest"]
        ),
        "same_digest_quality_first_1_and_2_workers": lambda: (
            results["quality_first_beam_1_worker"]["digest"]
            == results["quality_first_beam_2_workers"]["digest"]
        ),
    }
    for mode, stages, beam in (
        ("fast", "fast_stages_plain_python", "fast_beam_1_worker"),
        ("quality_first", "quality_first_stages_plain_python", "quality_first_beam_1_worker"),
    ):

        def shares(stages: str = stages, beam: str = beam) -> dict[str, float]:
            st = results[stages]
            per_doc_beam = results[beam]["cpu_seconds"] / results[beam]["docs"]
            out = {k: round(v / st["docs"] / per_doc_beam, 4) for k, v in st["stage_seconds"].items()}
            out["framework_overhead"] = round(
                1 - sum(st["stage_seconds"].values()) / st["docs"] / per_doc_beam, 4
            )
            return out

        def ms_per_doc(stages: str = stages) -> dict[str, float]:
            st = results[stages]
            return {k: round(1000 * v / st["docs"], 3) for k, v in st["stage_seconds"].items()}

        def plain_rate(stages: str = stages) -> float:
            return rate(stages)

        entries[f"{mode}_plain_python_docs_per_s"] = plain_rate
        entries[f"{mode}_stage_ms_per_doc"] = ms_per_doc
        entries[f"{mode}_share_of_beam_time"] = shares
    s: dict[str, Any] = {}
    for key, fn in entries.items():
        try:
            s[key] = fn()
        except KeyError:
            continue
    targets = {
        "fast_500_docs_per_s_per_core": ("fast_docs_per_s_per_core", 500),
        "fast_25x_datatrove": ("fast_vs_datatrove", 25),
        "quality_first_1x_datatrove": ("quality_first_vs_datatrove", 1.0),
        "two_workers_1_8x_same_runner": ("speedup_2_workers_fast_same_runner", 1.8),
        "two_workers_1_8x_vs_in_process": ("speedup_2_workers_fast", 1.8),
        "two_workers_1_8x_idle_machine_estimate": ("speedup_2_workers_fast_idle_machine_estimate", 1.8),
    }
    s["targets_met"] = {name: s[key] >= bar for name, (key, bar) in targets.items() if key in s}
    s["memory_peak_rss_mib"] = {
        label: {"docs": r["docs"], **r["peak_rss_mib"]}
        for label, r in results.items()
        if label.startswith(("fast_beam", "default_parts"))
    }

    def growth(small: str, full: str, role: str) -> float:
        """MiB of peak RSS per 1,000 more documents, from the smaller input to the full one (the largest
        process of the role): ~0 where memory does not depend on the input's size."""
        a, b = results[small], results[full]
        return round(
            (max(b["peak_rss_mib"][role]) - max(a["peak_rss_mib"][role])) / ((b["docs"] - a["docs"]) / 1000),
            2,
        )

    growths = {
        "1_worker_process": lambda: growth("fast_beam_1_worker_small_input", "fast_beam_1_worker", "main"),
        "2_workers_driver": lambda: growth("fast_beam_2_workers_small_input", "fast_beam_2_workers", "main"),
        "2_workers_worker": lambda: growth(
            "fast_beam_2_workers_small_input", "fast_beam_2_workers", "beam_worker"
        ),
        "2_workers_driver_default_parts": lambda: growth(
            "default_parts_2_workers", "default_parts_2_workers_large_input", "main"
        ),
        "2_workers_worker_default_parts": lambda: growth(
            "default_parts_2_workers", "default_parts_2_workers_large_input", "beam_worker"
        ),
    }
    s["memory_growth_mib_per_1000_docs"] = {}
    for key, fn in growths.items():
        try:
            s["memory_growth_mib_per_1000_docs"][key] = fn()
        except KeyError:
            continue
    return s


def markdown(doc: dict[str, Any]) -> str:
    """The figures of a results file as the Markdown tables of docs/performance.md."""
    res, s = doc["results"], doc["summary"]
    out = [
        "| measurement | docs | wall s | CPU s | docs/s | docs per CPU-s | other jobs (cores) | "
        "peak RSS MiB (main / workers) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, r in res.items():
        rss = r["peak_rss_mib"]
        workers = rss.get("beam_worker") or rss.get("helper") or []
        out.append(
            f"| {label} | {r['docs']} | {r['seconds']} | {r['cpu_seconds']} | {r['docs_per_s']} | "
            f"{r['docs_per_s_per_core']} | {r['other_cpu_cores']} | "
            f"{rss.get('main', ['-'])[0]} / {', '.join(map(str, workers)) or '-'} |"
        )
    out += ["", "| ratio | value |", "|---|---:|"]
    out += [f"| {k} | {v} |" for k, v in s.items() if not isinstance(v, dict)]
    for mode in ("fast", "quality_first"):
        ms, share = s.get(f"{mode}_stage_ms_per_doc"), s.get(f"{mode}_share_of_beam_time")
        if ms and share:
            out += ["", f"| {mode} stage | ms per doc (CPU) | share of Beam CPU time |", "|---|---:|---:|"]
            out += [f"| {k} | {v} | {share.get(k, '')} |" for k, v in ms.items()]
            out.append(f"| framework_overhead | | {share['framework_overhead']} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
