"""The curation job on a real distributed engine: Beam's DaskRunner against a dask.distributed cluster
(one scheduler and two single-threaded worker processes on loopback, started and stopped here) writes
the same manifest, to the digest, as the in-process runner."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from commonweights import config
from commonweights.errors import ConfigError
from pipelines import curate

ROOT = Path(__file__).resolve().parents[1]
DASK = Path(sys.executable).with_name("dask")


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler and two workers as separate processes, like a cluster's nodes; yields its address."""
    if not DASK.exists() and shutil.which("dask") is None:
        pytest.skip("dask[distributed] is not installed (pip install 'dask[distributed]')")
    exe = str(DASK) if DASK.exists() else "dask"
    scheduler_file = tmp_path / "scheduler.json"
    logs = [(tmp_path / f"{name}.log").open("w") for name in ("scheduler", "worker-0", "worker-1")]
    procs = [
        subprocess.Popen(
            [
                exe,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            stdout=logs[0],
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            if time.monotonic() > deadline or procs[0].poll() is not None:
                pytest.fail(
                    f"dask scheduler did not start: {(tmp_path / 'scheduler.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        for i in (1, 2):
            procs.append(
                subprocess.Popen(
                    [
                        exe,
                        "worker",
                        "--scheduler-file",
                        str(scheduler_file),
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                    ],
                    stdout=logs[i],
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                )
            )
        from dask.distributed import Client

        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            address = client.scheduler.address
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in logs:
            log.close()


def parts_sha256(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("part-*"))}


# A crawl with every kind of record the job handles: distinct pages, repeated captures, copies under
# other URLs (dedup), blocks that are not HTTP (quarantine), and truncated file ends.
MIX = [
    ([("page", 0), ("page", 1), ("copy", 1), ("garbage", 2), ("page", 2), ("repeat", 0)], True),
    ([("page", 3), ("copy", 0), ("page", 4), ("repeat", 3), ("page", 5)], False),
    ([("garbage", 4), ("copy", 5), ("page", 1), ("page", 0)], True),
]


@pytest.mark.slow
def test_dask_runner_gives_the_in_process_manifest(dask_cluster, tmp_path):
    from test_curate_property import config_for, write_crawl

    written = write_crawl(tmp_path / "crawl", MIX)
    local = config_for(tmp_path / "crawl", tmp_path / "local", "curate.shards=2")
    dask = config_for(
        tmp_path / "crawl",
        tmp_path / "dask",
        "curate.shards=2",
        "curate.runner=dask",
        f"curate.dask_address={dask_cluster}",
    )
    on_dask = curate.run(dask)
    in_process = curate.run(local)
    assert on_dask["digest"] == in_process["digest"]
    assert on_dask["rows"] == in_process["rows"] == written
    counts = on_dask["counts"]
    assert counts["kept"] > 0 and counts["dropped"] > 0 and counts["quarantined"] > 0
    # Parts are written by doc_id, not by worker: the files themselves are identical.
    assert parts_sha256(dask.paths.manifest) == parts_sha256(local.paths.manifest)
    assert parts_sha256(dask.paths.documents) == parts_sha256(local.paths.documents)


def test_dask_runner_needs_a_scheduler_address(tmp_path):
    with pytest.raises(ConfigError, match="dask_address"):
        config.load(ROOT / "configs" / "tiny.yaml", [f"dir={tmp_path}", "curate.runner=dask"])


def test_external_runner_flags_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="--runner"):
        config.load(ROOT / "configs" / "tiny.yaml", [f"dir={tmp_path}", "curate.runner=external"])
    with pytest.raises(ConfigError, match="runner: external"):
        config.load(
            ROOT / "configs" / "tiny.yaml", [f"dir={tmp_path}", "curate.pipeline_args=[--runner=FlinkRunner]"]
        )
    cfg = config.load(
        ROOT / "configs" / "tiny.yaml",
        [
            f"dir={tmp_path}",
            "curate.runner=external",
            "curate.pipeline_args=[--runner=FlinkRunner, --flink_master=host:8081]",
        ],
    )
    from pipelines.options import pipeline_options

    flags = pipeline_options(cfg.curate).get_all_options(drop_default=True)
    assert flags["runner"] == "FlinkRunner" and flags["flink_master"] == "host:8081"
