"""A bad config fails before any work starts, with a message naming the key or path and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from commonweights import config
from commonweights.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def tiny() -> dict:
    return yaml.safe_load(TINY.read_text())


def test_tiny_config_loads_with_absolute_paths(tmp_path):
    cfg = config.load(TINY, base=tmp_path)
    assert cfg.dir == tmp_path / "runs" / "tiny"
    assert cfg.paths.manifest == tmp_path / "runs" / "tiny" / "curate" / "manifest"
    assert cfg.governance.agents[-1] == "*" and "GPTBot" in cfg.governance.agents


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda d: d["train"].update(bogus=1), r"train\.bogus: unknown key"),
        (lambda d: d["train"].update(steps="many"), r"train\.steps"),
        (lambda d: d["train"].update(tensor_parallel=3), r"num_attention_heads=4 is not divisible by .*=3"),
        (lambda d: d["governance"].update(mode="anything-goes"), r"governance\.mode"),
        (lambda d: d.pop("data"), r"data: Field required"),
        (lambda d: d["data"].update(warc=["x.warc.gz"]), r"exclusive"),
    ],
)
def test_bad_config_names_the_key(tmp_path, edit, message):
    data = tiny()
    edit(data)
    with pytest.raises(ConfigError, match=message):
        config.load(write(tmp_path, data), base=tmp_path)


def test_missing_input_path_is_named(tmp_path):
    data = tiny()
    data["data"] = {"warc": ["crawl/missing.warc.gz"], "robots": "crawl/robots.jsonl"}
    with pytest.raises(ConfigError, match=r"data\.warc\[0\] = .*missing\.warc\.gz.*data\.robots"):
        config.load(write(tmp_path, data), base=tmp_path)


def test_overrides_apply_dot_paths(tmp_path):
    cfg = config.load(TINY, ["train.steps=7", "governance.mode=open-licence"], base=tmp_path)
    assert cfg.train.steps == 7 and cfg.governance.mode == config.GovernanceMode.open_licence
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        config.load(TINY, ["train.steps"], base=tmp_path)


def test_resolved_config_round_trips(tmp_path):
    cfg = config.load(TINY, base=tmp_path)
    path = cfg.write_resolved()
    again = config.load(path)
    assert again == cfg and again.digest() == cfg.digest()


def test_policy_hash_changes_with_policy(tmp_path):
    a = config.load(TINY, base=tmp_path)
    b = config.load(TINY, ["governance.mode=open-licence"], base=tmp_path)
    assert config.policy_hash(a.governance) != config.policy_hash(b.governance)


def test_cli_exit_code_and_one_line_error(tmp_path):
    data = tiny()
    data["train"]["bogus"] = 1
    proc = subprocess.run(
        [sys.executable, "-m", "commonweights", "run", str(write(tmp_path, data)), "--dry-run"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "train.bogus: unknown key" in proc.stderr and proc.stdout == ""
    missing = subprocess.run(
        [sys.executable, "-m", "commonweights", "run", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "config file not found" in missing.stderr
