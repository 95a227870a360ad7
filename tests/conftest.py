"""Shared pytest fixtures."""

from __future__ import annotations

import os
import subprocess

import pytest


def absent(message: str) -> None:
    """Skip where a service is missing, except in CI, where `make test` provides it: there it fails."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI=true: make test should have provided it)")
    pytest.skip(message)


SLURM_SKIP = "local Slurm cluster not running: start it with `make slurm-up` (slurm/cluster/start.sh)"


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """The default partition of a reachable Slurm cluster; skips the test when `sinfo` reaches none.

    `make test` starts the local cluster (slurm/cluster/start.sh), which links /etc/slurm/slurm.conf to
    its config; elsewhere set SLURM_CONF to the cluster's slurm.conf.
    """
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%P %a"], capture_output=True, text=True, timeout=15, check=False
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        absent(SLURM_SKIP)
    # The default partition is printed with a '*' suffix; it must be up to run anything.
    parts = [line.split() for line in out.stdout.splitlines() if line.strip()]
    default = [p[0].rstrip("*") for p in parts if p[0].endswith("*") and p[1:] == ["up"]]
    if out.returncode != 0 or not default:
        absent(SLURM_SKIP)
    return default[0]


CHROMIUM_SKIP = "Debian's chromium is missing: run `sudo bash eval/install_chromium.sh` (make test does)"


@pytest.fixture(scope="session")
def chromium():
    """`eval.browser.render(html, png, ...) -> DOM`; skips the test when /usr/bin/chromium is absent.

    `make test` installs Chromium with eval/install_chromium.sh; set COMMONWEIGHTS_CHROMIUM to use
    another Chromium binary.
    """
    from eval.browser import BrowserError, chromium_path, render

    try:
        chromium_path()
    except BrowserError:
        absent(CHROMIUM_SKIP)
    return render


@pytest.fixture(scope="session")
def audited_run(tmp_path_factory):
    """One curation of the embedded sample crawl (configs/tiny.yaml) shared by the audit tests:
    returns (config, run folder). Tests copy the manifest before changing it."""
    from pathlib import Path

    from commonweights import config
    from pipelines.curate import run as curate

    root = tmp_path_factory.mktemp("audited")
    repo = Path(__file__).resolve().parents[1]
    cfg = config.load(repo / "configs" / "tiny.yaml", [f"dir={root / 'run'}"])
    curate(cfg)
    return cfg, root / "run"
