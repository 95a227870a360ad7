"""Replay audit: the data-order hash chain, the layout-free weights hash and `verify --replay`.

A tiny run trains through the real training stage; `pack` puts its log, token files and checkpoints
into a release-shaped folder (statement.json's lineage + config.json: what replay reads), and the
replay re-trains a window from it with real megatron-core.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_training import hermetic, make_cfg, write_tokens  # noqa: F401  (hermetic: autouse)

from commonweights.config import RunConfig
from commonweights.errors import InputError
from training import checkpoint, data_order
from training.replay import pack, replay
from training.train import run


def release_of(cfg: RunConfig, dest: Path) -> Path:
    """What `commonweights release` writes that a replay reads (signing is tested in test_e2e)."""
    dest.mkdir(parents=True)
    lineage = {"data_order": pack(cfg, dest)}
    (dest / "statement.json").write_text(json.dumps({"lineage": lineage}))
    (dest / "config.json").write_text(json.dumps(cfg.to_record()))
    return dest


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunConfig, Path]:
    """12 steps with checkpoints at 4, 8, 12; the release ships 8 and 12."""
    root = tmp_path_factory.mktemp("run")
    write_tokens(root / "tokens", docs=80)
    cfg = make_cfg(root, steps=12, save_interval=4, keep_last=3)
    cfg = RunConfig.model_validate({**cfg.to_record(), "release": {"replay_checkpoints": 2}})
    run(cfg)
    return cfg, release_of(cfg, tmp_path_factory.mktemp("pub") / "release")


def lines(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text().splitlines()]


def copy_of(release: Path, tmp: Path) -> tuple[Path, Path, list[dict]]:
    """A copy of the release to tamper with: its folder, its log and the log's entries."""
    copy = tmp / "release"
    shutil.copytree(release, copy)
    return copy, copy / data_order.RELEASE_LOG, lines(copy / data_order.RELEASE_LOG)


def write_lines(path: Path, entries: list[dict]) -> None:
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))


def test_log_chains_every_step_and_checkpoint(released: tuple[RunConfig, Path]) -> None:
    cfg, _ = released
    log = cfg.paths.train / data_order.FILE
    entries = lines(log)
    assert entries[0]["kind"] == "header" and entries[0]["seed"] == cfg.train.seed
    steps = [e for e in entries if e["kind"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, 13))
    assert [e["samples"] for e in steps[:2]] == [[0, 8], [8, 16]]
    metrics = [json.loads(ln) for ln in (cfg.paths.train / "metrics.jsonl").read_text().splitlines()]
    assert [e["loss"] for e in steps] == [m["loss"] for m in metrics]  # the same floats, bit for bit
    ids = np.fromfile(cfg.paths.tokens / "doc_ids.bin", dtype=np.uint8).reshape(-1, 16)
    known = {row.tobytes().hex() for row in ids}
    assert all(e["doc_ids"] and set(e["doc_ids"]) <= known for e in steps)
    for prev, e in zip(entries, entries[1:], strict=False):
        assert e["prev"] == prev["hash"] and e["hash"] == data_order.entry_hash(e)
    # Each checkpoint's marker holds its weights hash and the chain head right after its step.
    ckpts = {e["step"]: e for e in entries if e["kind"] == "checkpoint"}
    assert sorted(ckpts) == [4, 8, 12]
    for it, e in ckpts.items():
        marker = checkpoint.read_marker(cfg.paths.checkpoints / checkpoint.iter_name(it))
        assert marker is not None and marker["data_order_head"] == e["hash"]
        path = cfg.paths.checkpoints / checkpoint.iter_name(it)
        assert marker["weights_sha256"] == e["weights_sha256"] == checkpoint.weights_sha256(path)
    assert data_order.read(log).head == entries[-1]["hash"]


def test_steps_held_during_an_async_save_follow_its_checkpoint_line(tmp_path: Path) -> None:
    log = tmp_path / data_order.FILE
    w = data_order.Writer(log, data_order.header("t", "d", 1, 8, 2, 8), resume_head=None)
    rec = {"samples": [0, 2], "doc_ids": ["ab"], "tokens_sha256": "00"}
    w.step(1, rec, 2.0, 1.0, 0.1)
    w.hold()  # a background save of step 1 is in flight; steps 2 and 3 run meanwhile
    w.step(2, rec, 1.5, 1.0, 0.1)
    w.step(3, rec, 1.2, 1.0, 0.1)
    assert [e["kind"] for e in lines(log)] == ["header", "step"]
    head = w.checkpoint(1, "f" * 64)
    entries = lines(log)
    assert [(e["kind"], e.get("step")) for e in entries] == [
        ("header", None),
        ("step", 1),
        ("checkpoint", 1),
        ("step", 2),
        ("step", 3),
    ]
    assert entries[2]["hash"] == head and entries[3]["prev"] == head
    assert data_order.read(log).ok


def test_steps_index_answers_as_a_scan_of_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The steps that read a document, from the log's doc_id index, equal one pass over the log, across
    row groups that split a document's steps; the index follows the log as it grows, and lives in the
    user's cache, never beside the log (a release folder holds only what it lists)."""
    import random

    from data_governance import lookup

    monkeypatch.setattr(lookup, "ROW_GROUP", 7)  # many small row groups, documents across their edges
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    r = random.Random(3)
    docs = [f"{r.getrandbits(128):032x}" for _ in range(40)]
    log = tmp_path / "train" / data_order.FILE
    w = data_order.Writer(log, data_order.header("t", "d", 1, 8, 2, 8), resume_head=None)

    def steps(first: int, last: int) -> None:
        for step in range(first, last + 1):
            rec = {"samples": [step, step + 1], "doc_ids": r.sample(docs, 6), "tokens_sha256": "00"}
            w.step(step, rec, 1.0, 1.0, 0.1)
            if step % 10 == 0:
                w.checkpoint(step, "f" * 64)

    steps(1, 30)
    asked = set(r.sample(docs, 15)) | {"0" * 32}  # one that no step read
    want = data_order.scan_steps(log, asked)
    assert sum(map(len, want.values())) > 15 and want["0" * 32] == []
    assert data_order.steps_of(log, asked) == want
    index = data_order.index_folder(log)
    assert index.is_relative_to(tmp_path / "cache")
    assert [p.name for p in log.parent.iterdir()] == [data_order.FILE]  # nothing beside the log
    files = json.loads((index / "index.json").read_text())["files"]
    assert sum(len(f["groups"]) for f in files) == -(-30 * 6 // 7)  # every pair, in groups of 7
    built = (index / "index.json").stat().st_mtime_ns
    assert data_order.steps_of(log, asked) == want and (index / "index.json").stat().st_mtime_ns == built
    steps(31, 45)  # the log grew: the index is rebuilt and answers for the new steps too
    assert data_order.steps_of(log, set(docs)) == data_order.scan_steps(log, set(docs))
    assert any(s > 30 for found in data_order.steps_of(log, set(docs)).values() for s in found)
    with log.open("a") as fh:  # a line that is not JSON: an error naming the log, nothing half-built
        fh.write('{"kind": "step", "step": 46, "doc_ids": [\n')
    with pytest.raises(InputError, match=r"data_order\.jsonl: not a data-order log that can be read"):
        data_order.steps_of(log, set(docs))
    assert not index.with_name(index.name + ".tmp").exists()


def test_a_resumed_run_writes_the_same_log(released: tuple[RunConfig, Path], tmp_path: Path) -> None:
    """Interrupted after 6 steps (log cut back to the checkpoint at 4) and resumed: the same bytes."""
    cfg, _ = released
    root = tmp_path / "run"
    shutil.copytree(cfg.paths.tokens, root / "tokens")
    first = make_cfg(root, steps=12, save_interval=4, keep_last=3, stop_after=6)
    run(first)
    shutil.rmtree(first.paths.checkpoints / checkpoint.iter_name(6))  # lost before it completed
    run(make_cfg(root, steps=12, save_interval=4, keep_last=3))
    mine = (root / "train" / data_order.FILE).read_text()
    assert mine == (cfg.paths.train / data_order.FILE).read_text()


def test_replay_of_a_window_is_bitwise(released: tuple[RunConfig, Path], tmp_path: Path) -> None:
    _, release = released
    r = replay(release, work=tmp_path / "work")
    assert r.ok, r.problems
    assert (r.from_step, r.steps) == (8, 4)
    assert r.bitwise and r.max_loss_rel_diff == 0.0 and r.max_grad_norm_rel_diff == 0.0
    assert r.weights["equal"] and r.weights["replayed_sha256"] == r.weights["logged_sha256"]
    replayed = lines(tmp_path / "work" / "train" / data_order.FILE)
    logged = [e for e in lines(release / data_order.RELEASE_LOG) if e.get("step", 0) > 8]
    assert replayed == logged  # same entries, same hashes: the chain recomputes to the signed head


@pytest.mark.parametrize("tamper", ["loss", "removed", "reordered"])
def test_a_changed_log_fails_at_its_first_bad_step(
    released: tuple[RunConfig, Path], tmp_path: Path, tamper: str
) -> None:
    release, log, entries = copy_of(released[1], tmp_path)
    at = next(i for i, e in enumerate(entries) if e.get("step") == 10 and e["kind"] == "step")
    if tamper == "loss":
        entries[at]["loss"] += 1e-7
    elif tamper == "removed":
        del entries[at]
    else:
        entries[at], entries[at + 1] = entries[at + 1], entries[at]
    write_lines(log, entries)
    r = replay(release, work=tmp_path / "work")
    assert not r.ok and r.first_bad_step == 10, r.problems
    assert "step 10" in r.problems[0][1]


def test_a_rehashed_log_no_longer_matches_the_signed_head(
    released: tuple[RunConfig, Path], tmp_path: Path
) -> None:
    """Re-chaining after an edit keeps every line valid, but the head is signed."""
    release, log, entries = copy_of(released[1], tmp_path)
    for i, e in enumerate(entries):
        if e.get("step") == 11 and e["kind"] == "step":
            e["loss"] = e["loss"] * 0.5
        if i:
            e["prev"] = entries[i - 1]["hash"]
        e["hash"] = data_order.entry_hash(e)
    write_lines(log, entries)
    r = replay(release, work=tmp_path / "work")
    assert not r.ok and "signed head" in r.problems[0][1]


def test_changed_training_data_fails_at_the_first_step_that_reads_it(
    released: tuple[RunConfig, Path], tmp_path: Path
) -> None:
    cfg, release = released
    logged = data_order.read(release / data_order.RELEASE_LOG)
    doc = logged.steps[10]["doc_ids"][0]
    first_use = min(s for s, e in logged.steps.items() if s > 8 and doc in e["doc_ids"])
    data = tmp_path / "tokens"
    shutil.copytree(cfg.paths.tokens, data)
    ids = np.fromfile(data / "doc_ids.bin", dtype=np.uint8).reshape(-1, 16)
    position = next(i for i, row in enumerate(ids) if row.tobytes().hex() == doc)

    from megatron.core.datasets.indexed_dataset import IndexedDataset

    index = IndexedDataset(str(data / "text_document"))
    start = int(index.index.sequence_pointers[position])
    item = np.dtype(index.index.dtype).itemsize
    with (data / "text_document.bin").open("r+b") as fh:  # one token of that document, another id
        fh.seek(start + item)
        old = int.from_bytes(fh.read(item), "little")
        fh.seek(start + item)
        fh.write(((old + 1) % 300 + 2).to_bytes(item, "little"))

    r = replay(release, data=data, work=tmp_path / "work")
    assert not r.ok and r.first_bad_step == first_use, r.problems
    assert "tokens_sha256" in r.problems[0][1]


@pytest.fixture(scope="module")
def tp2_released(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunConfig, Path]:
    """8 steps in two tensor-parallel processes, checkpoints at 4 and 8, both released."""
    from training.launch import launch

    root = tmp_path_factory.mktemp("tp2")
    write_tokens(root / "tokens", docs=80)
    cfg = make_cfg(root, steps=8, save_interval=4, keep_last=2, nproc=2, tensor_parallel=2)
    launch(cfg)
    return cfg, release_of(cfg, tmp_path_factory.mktemp("pub") / "release")


def test_weights_hash_is_the_same_for_tp2_and_tp1_saves(
    tp2_released: tuple[RunConfig, Path], tmp_path: Path
) -> None:
    """A TP=2 checkpoint loaded into one process and saved again in TP=1 hashes the same."""
    from training.model import arch_of, unwrap
    from training.train import DistEnv, Layout, build_training, free_port, process_group

    cfg, _ = tp2_released
    tp2 = cfg.paths.checkpoints / checkpoint.iter_name(4)
    marker = checkpoint.read_marker(tp2)
    assert marker is not None and marker["layout"]["tensor_parallel"] == 2

    one = make_cfg(tmp_path / "tp1", steps=8)
    vocab = json.loads((cfg.paths.tokens / "tokens.json").read_text())["vocab_size"]
    with process_group(DistEnv(0, 1, 0, "127.0.0.1", free_port()), 1, 1, one.train.seed) as device:
        model, optimizer, _ = build_training(arch_of(one.train, vocab), one.train, Layout(1, 1, 1), device)
        checkpoint.load(tp2, unwrap(model), optimizer, restore_rng=False)
        tp1 = checkpoint.save(tmp_path / "tp1" / "ckpt", 4, unwrap(model), optimizer, {}, keep_last=1)
    again = checkpoint.read_marker(tp1)
    assert again is not None and again["weights_sha256"] == marker["weights_sha256"]
    assert checkpoint.weights_sha256(tp1) == checkpoint.weights_sha256(tp2)
    later = checkpoint.read_marker(cfg.paths.checkpoints / checkpoint.iter_name(8))
    assert later is not None and later["weights_sha256"] != marker["weights_sha256"]


def test_a_tp2_release_replays_in_one_process_within_tolerance(
    tp2_released: tuple[RunConfig, Path], tmp_path: Path
) -> None:
    """Someone with one device replays a tensor-parallel run: same data, losses and weights close."""
    _, release = tp2_released
    r = replay(release, work=tmp_path / "work", one_process=True)
    assert r.ok, r.problems
    assert (r.from_step, r.steps) == (4, 4)
    assert r.max_loss_rel_diff is not None and r.max_loss_rel_diff < 1e-5
    if not r.weights["equal"]:
        assert not r.bitwise and r.weights["relative"] < 1e-4 and r.weights["update"] > 0
    same = replay(release, work=tmp_path / "strict", tolerance=0.0, one_process=True)
    assert same.ok == (same.bitwise and same.weights["equal"])  # tolerance 0 accepts only bitwise
