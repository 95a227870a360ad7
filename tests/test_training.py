"""Training on generated text: loss falls, checkpoints are atomic and resume exactly, inputs are checked."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from commonweights.config import RunConfig, TrainConfig
from commonweights.errors import ConfigError, InputError
from training import checkpoint
from training.launch import torchrun_command
from training.model import Arch, arch_of, ffn_size, padded_vocab
from training.train import Layout, check_layout, dist_env, lr_at, micro_batches, run

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "num_layers": 2,
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_query_groups": 2,
    "seq_length": 64,
    "micro_batch_size": 4,
    "global_batch_size": 8,
    "wandb": "disabled",
}

SUBJECTS = ["the cat", "a dog", "the old farmer", "my sister", "the river", "a small bird", "the teacher"]
VERBS = ["sees", "follows", "paints", "likes", "carries", "finds", "watches"]
OBJECTS = ["the red ball", "a green field", "the quiet house", "an apple", "the long road", "the sun"]
TAILS = ["every day", "at night", "in the spring", "with care", "near the hill", "again and again"]


def corpus(docs: int, seed: int = 0) -> list[str]:
    """Documents of simple generated sentences: enough structure for a tiny model to learn fast."""
    r = random.Random(seed)
    return [
        " ".join(
            f"{r.choice(SUBJECTS)} {r.choice(VERBS)} {r.choice(OBJECTS)} {r.choice(TAILS)}."
            for _ in range(r.randint(4, 12))
        )
        for _ in range(docs)
    ]


def write_tokens(root: Path, vocab: int = 500, docs: int = 200) -> dict:
    """The tokenize stage's outputs (docs/run-layout.md tokens/), built from generated text."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    root.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = corpus(docs)
    tok.train_from_iterator(texts, trainer)
    tok.save(str(root / "tokenizer.json"))
    builder = IndexedDatasetBuilder(str(root / "text_document.bin"), dtype=np.uint16)
    count = 0
    for text in texts:
        ids = tok.encode(text).ids + [0]
        count += len(ids)
        builder.add_document(torch.tensor(ids), [len(ids)])
    builder.finalize(str(root / "text_document.idx"))
    # The tokenize stage's doc_id table: document i's id (here: from its text), 16 raw bytes each.
    ids = b"".join(hashlib.sha256(text.encode()).digest()[:16] for text in texts)
    (root / "doc_ids.bin").write_bytes(ids)
    meta = {
        "vocab_size": tok.get_vocab_size(),
        "eod_id": 0,
        "pad_id": 1,
        "documents": docs,
        "tokens": count,
        "doc_ids_sha256": hashlib.sha256(ids).hexdigest(),
    }
    (root / "tokens.json").write_text(json.dumps(meta))
    return meta


def make_cfg(root: Path, **train: object) -> RunConfig:
    return RunConfig.model_validate(
        {"name": "t", "dir": str(root), "data": {"sample": {}}, "train": {**TINY, **train}}
    )


def metrics(cfg: RunConfig) -> list[dict]:
    return [json.loads(ln) for ln in (cfg.paths.train / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "RANK",
        "WORLD_SIZE",
        "LOCAL_RANK",
        "MASTER_ADDR",
        "MASTER_PORT",
        "SLURM_PROCID",
        "SLURM_NTASKS",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> RunConfig:
    """16 steps, checkpoints at 5, 10, 15, 16: the reference run that other tests copy and change."""
    root = tmp_path_factory.mktemp("ref")
    write_tokens(root / "tokens")
    cfg = make_cfg(root, steps=16, save_interval=5, keep_last=4)
    run(cfg)
    return cfg


def copy_run(cfg: RunConfig, dest: Path, **train: object) -> RunConfig:
    shutil.copytree(cfg.dir, dest)
    return make_cfg(dest, **{**cfg.train.model_dump(mode="json"), **train})


# ------------------------------------------------------------------------------------ pure parts


def test_sdpa_attention_equals_megatrons_and_honours_causality() -> None:
    """The fused core attention gives megatron's own DotProductAttention's outputs and gradients
    (grouped-query heads, the explicit causal mask on megatron's side), and no query sees a later key."""
    from megatron.core.transformer.dot_product_attention import DotProductAttention
    from megatron.core.transformer.enums import AttnMaskType
    from megatron.core.transformer.transformer_config import TransformerConfig

    from training.model import CausalSdpa, causal_mask
    from training.train import process_group

    s, b, heads, groups, d = 24, 3, 4, 2, 16
    with process_group(dist_env({}), 1, 1, seed=7) as device:
        config = TransformerConfig(
            num_layers=1,
            hidden_size=heads * d,
            num_attention_heads=heads,
            num_query_groups=groups,
            attention_dropout=0.0,
            masked_softmax_fusion=False,
            attention_softmax_in_fp32=True,
        )
        args = (config, 1, AttnMaskType.causal, "self")
        theirs, ours = DotProductAttention(*args), CausalSdpa(*args)
        g = torch.Generator().manual_seed(0)
        q = torch.randn(s, b, heads, d, generator=g).to(device)
        k, v = (torch.randn(s, b, groups, d, generator=g).to(device) for _ in range(2))
        outs, grads = [], []
        for attn in (theirs, ours):
            leaves = [x.clone().requires_grad_() for x in (q, k, v)]
            out = attn(*leaves, causal_mask(s, device))
            out.pow(2).sum().backward()
            outs.append(out.detach())
            grads.append([x.grad for x in leaves])
        assert outs[1].shape == (s, b, heads * d)
        torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-5)
        for mine, ref in zip(grads[1], grads[0], strict=True):
            torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-5)
        # Changing the last position's keys and values moves only the last query's output.
        k2, v2 = k.clone(), v.clone()
        k2[-1], v2[-1] = 5.0, -5.0
        changed = ours(q, k2, v2, None)
        torch.testing.assert_close(changed[:-1], outs[1][:-1])
        assert not torch.allclose(changed[-1], outs[1][-1])


def test_lr_warms_up_then_decays_to_min() -> None:
    t = TrainConfig.model_validate(dict(steps=60, warmup_steps=5, lr=3e-3, min_lr=3e-4))
    lrs = [lr_at(s, t) for s in range(1, 61)]
    assert lrs[:5] == pytest.approx([6e-4, 1.2e-3, 1.8e-3, 2.4e-3, 3e-3])
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:], strict=False))
    assert lrs[-1] == pytest.approx(3e-4)


def test_micro_batches_cover_each_global_batch_once() -> None:
    t = TrainConfig.model_validate(dict(nproc=4, micro_batch_size=2, global_batch_size=16))
    layout = Layout(world_size=4, tensor_parallel=1, pipeline_parallel=1)
    for step in (0, 3):
        starts = [s for r in range(4) for s in micro_batches(step, t, layout, r)]
        samples = sorted(i for s in starts for i in range(s, s + 2))
        assert samples == list(range(step * 16, step * 16 + 16))


def test_vocab_and_ffn_padding() -> None:
    assert padded_vocab(396, 1) == 512
    assert padded_vocab(512, 2) == 512
    assert padded_vocab(513, 2) == 768
    assert ffn_size(128) == 384  # 341.3 rounded up to a multiple of 64
    arch = arch_of(TrainConfig.model_validate(dict(num_query_groups=None)), 300)
    assert (arch.num_query_groups, arch.vocab_size, arch.head_dim) == (4, 384, 32)


def test_dist_env_reads_torchrun_and_slurm_variables() -> None:
    tr = dist_env(
        {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "n1", "MASTER_PORT": "4000"}
    )
    assert (tr.rank, tr.world_size, tr.local_rank, tr.master_addr, tr.master_port) == (3, 4, 1, "n1", 4000)
    slurm = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "77"}
    env = dist_env({**slurm, "MASTER_ADDR": "gpu01"})
    assert (env.rank, env.world_size, env.local_rank, env.master_addr) == (5, 8, 1, "gpu01")
    assert env.master_port == dist_env({**slurm, "MASTER_ADDR": "x"}).master_port  # same on every task
    single = dist_env({})
    assert (single.rank, single.world_size, single.master_addr) == (0, 1, "127.0.0.1")


def test_layout_must_fit_the_real_world_size() -> None:
    t = TrainConfig.model_validate(dict(pipeline_parallel=2, tensor_parallel=2, nproc=4, micro_batch_size=4))
    assert check_layout(t, 8).data_parallel == 2
    with pytest.raises(ConfigError, match="not a multiple of train.tensor_parallel"):
        check_layout(t, 6)


def test_wsd_schedule_is_stable_then_decays_linearly() -> None:
    t = TrainConfig.model_validate(
        dict(steps=100, warmup_steps=10, lr=1e-3, min_lr=1e-4, lr_schedule="wsd", wsd_decay_fraction=0.2)
    )
    lrs = [lr_at(s, t) for s in range(1, 101)]
    assert lrs[9] == pytest.approx(1e-3) and lrs[0] == pytest.approx(1e-4)
    assert lrs[10:80] == pytest.approx([1e-3] * 70)  # stable until the last 20 steps
    assert lrs[89] == pytest.approx(1e-3 - 0.9e-3 * 10 / 20)
    assert lrs[-1] == pytest.approx(1e-4)


def test_presets_fill_the_shape_and_explicit_keys_win() -> None:
    big = TrainConfig.model_validate(
        dict(
            preset="8b",
            tensor_parallel=8,
            pipeline_parallel=4,
            nproc=64,
            micro_batch_size=1,
            global_batch_size=512,
        )
    )
    assert (big.num_layers, big.hidden_size, big.num_attention_heads, big.num_query_groups) == (
        32,
        4096,
        32,
        8,
    )
    arch = arch_of(big, 131072)
    assert 7.0e9 < _param_count(arch) < 8.6e9
    small = TrainConfig.model_validate(dict(preset="125m", num_layers=3))
    assert (small.num_layers, small.hidden_size) == (3, 768)
    with pytest.raises(ValueError, match="preset='2b' is not one of tiny, 125m, 1b, 8b"):
        TrainConfig.model_validate(dict(preset="2b"))
    with pytest.raises(ValueError, match="num_query_groups=8 must divide"):
        TrainConfig.model_validate(dict(preset="8b", tensor_parallel=16, nproc=16))


def _param_count(a: Arch) -> int:
    """Weights of a Llama-style network of shape `a` (the formula the MFU benchmark uses too)."""
    attn = a.hidden_size * a.head_dim * (a.num_attention_heads * 2 + a.num_query_groups * 2)
    mlp = 3 * a.hidden_size * a.ffn_hidden_size
    embed = a.vocab_size * a.hidden_size * (1 if a.tied else 2)
    return a.num_layers * (attn + mlp + 2 * a.hidden_size) + embed + a.hidden_size


def test_torchrun_command_runs_the_training_module() -> None:
    cmd = torchrun_command(2, Path("/r/config.resolved.yaml"))
    assert cmd[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert cmd[-4:] == ["-m", "training", "--config", "/r/config.resolved.yaml"]


# -------------------------------------------------------------------------------- input checking


@pytest.mark.parametrize("name", ["tokens.json", "tokenizer.json", "text_document.bin", "text_document.idx"])
def test_missing_token_file_names_path_and_fix(tmp_path: Path, name: str) -> None:
    write_tokens(tmp_path / "tokens", docs=30)
    (tmp_path / "tokens" / name).unlink()
    with pytest.raises(InputError, match="commonweights tokenize") as e:
        run(make_cfg(tmp_path, steps=2))
    assert str(tmp_path / "tokens" / name) in str(e.value)


def test_tokenizer_vocab_mismatch_is_an_input_error(tmp_path: Path) -> None:
    meta = write_tokens(tmp_path / "tokens", docs=30)
    (tmp_path / "tokens" / "tokens.json").write_text(
        json.dumps({**meta, "vocab_size": meta["vocab_size"] + 7})
    )
    with pytest.raises(InputError, match="tokenizer.json") as e:
        run(make_cfg(tmp_path, steps=2))
    assert "different tokenizer" in str(e.value)


def test_checkpoint_with_smaller_vocab_is_refused(trained: RunConfig, tmp_path: Path) -> None:
    cfg = copy_run(trained, tmp_path / "run")
    marker_path = cfg.paths.checkpoints / "iter_0000016" / checkpoint.MARKER
    marker = json.loads(marker_path.read_text())
    marker["arch"]["vocab_size"] = 256  # below the tokenizer's vocabulary
    marker_path.write_text(json.dumps(marker))
    with pytest.raises(ConfigError, match="iter_0000016") as e:
        run(cfg)
    assert "vocabulary rows" in str(e.value)


def test_changed_model_shape_is_refused_on_resume(trained: RunConfig, tmp_path: Path) -> None:
    cfg = copy_run(trained, tmp_path / "run", hidden_size=128)
    with pytest.raises(ConfigError, match="hidden_size: checkpoint 64 vs config 128"):
        run(cfg)


# ---------------------------------------------------------------------------- training behaviour


def test_loss_falls_and_outputs_follow_the_run_layout(tmp_path: Path) -> None:
    write_tokens(tmp_path / "tokens")
    cfg = make_cfg(tmp_path, steps=30, save_interval=10, keep_last=2, wandb="offline")
    summary = run(cfg)

    rows = metrics(cfg)
    assert [r["step"] for r in rows] == list(range(1, 31))
    assert set(rows[0]) == {"step", "loss", "lr", "grad_norm", "tokens", "elapsed_s"}
    assert rows[-1]["tokens"] == 30 * 8 * 64
    assert summary["first_loss"] == rows[0]["loss"] and summary["final_loss"] == rows[-1]["loss"]
    assert summary["final_loss"] < summary["first_loss"] - 2.0  # ~5.9 → ~2.5 on this text
    assert json.loads((cfg.paths.train / "train.json").read_text()) == summary
    assert summary["checkpoint"] == "train/checkpoints/iter_0000030"
    assert (summary["world_size"], summary["data_parallel"], summary["iteration"]) == (1, 1, 30)
    assert summary["parameters"] == sum(p.numel() for p in _megatron_params(cfg))
    assert any((cfg.paths.train / "wandb").glob("offline-run-*"))

    ckpts = cfg.paths.checkpoints
    assert sorted(p.name for p in ckpts.iterdir()) == ["iter_0000020", "iter_0000030", "latest"]
    assert (ckpts / "latest").read_text().strip() == "30"
    marker = json.loads((ckpts / "iter_0000030" / checkpoint.MARKER).read_text())
    assert marker["iteration"] == 30 and marker["consumed_samples"] == 30 * 8
    assert marker["config_digest"] == cfg.digest()
    assert marker["rng"]["seed"] == cfg.train.seed


def _megatron_params(cfg: RunConfig) -> list[torch.Tensor]:
    """Weights of the saved checkpoint, read back with dist_checkpointing's plain-tensor loader."""
    from training.export import megatron_state

    _, path, marker = checkpoint.require_newest(cfg.paths.checkpoints)
    return list(megatron_state(cfg, path, Arch.from_record(marker["arch"])).values())


def test_resume_is_exact_and_skips_incomplete_checkpoints(trained: RunConfig, tmp_path: Path) -> None:
    reference = metrics(trained)
    cfg = copy_run(trained, tmp_path / "run")
    ckpts = cfg.paths.checkpoints
    # Killed while saving step 10: its folder lost the marker, and a later save left a .tmp with one.
    shutil.rmtree(ckpts / "iter_0000015")
    shutil.rmtree(ckpts / "iter_0000016")
    shutil.copytree(ckpts / "iter_0000010", ckpts / "iter_0000015.tmp")
    json_marker = ckpts / "iter_0000015.tmp" / checkpoint.MARKER
    json_marker.write_text(json_marker.read_text().replace('"iteration": 10', '"iteration": 15'))
    (ckpts / "iter_0000010" / checkpoint.MARKER).unlink()
    assert checkpoint.newest(ckpts) == (5, ckpts / "iter_0000005")

    summary = run(cfg)

    assert summary["resumed_from"] == 5  # 11 steps redone after the resume
    resumed = metrics(cfg)
    assert [r["step"] for r in resumed] == list(range(1, 17))
    assert all(a["elapsed_s"] < b["elapsed_s"] for a, b in zip(resumed, resumed[1:], strict=False))
    for a, b in zip(reference, resumed, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-6)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], abs=1e-6)
    names = ["iter_0000005", "iter_0000010", "iter_0000015", "iter_0000016", "latest"]
    assert sorted(p.name for p in ckpts.iterdir()) == names
    assert checkpoint.read_marker(ckpts / "iter_0000010") is not None


def test_async_save_writes_the_same_checkpoints_and_log(trained: RunConfig, tmp_path: Path) -> None:
    """megatron's async dist_checkpointing (the GPU default) forced on here: background writes, the
    same losses, complete checkpoints with the same weights, the same data-order log, exact resume."""
    root = tmp_path / "run"
    shutil.copytree(trained.paths.tokens, root / "tokens")
    cfg = make_cfg(root, **{**trained.train.model_dump(mode="json"), "async_save": True})
    run(cfg)
    assert [m["loss"] for m in metrics(cfg)] == [m["loss"] for m in metrics(trained)]
    for it in (5, 10, 15, 16):
        mine = checkpoint.read_marker(cfg.paths.checkpoints / checkpoint.iter_name(it))
        ref = checkpoint.read_marker(trained.paths.checkpoints / checkpoint.iter_name(it))
        assert mine is not None and ref is not None and mine["weights_sha256"] == ref["weights_sha256"]
    assert not list(cfg.paths.checkpoints.glob("*.tmp"))
    log = (cfg.paths.train / "data_order.jsonl").read_text()
    assert log == (trained.paths.train / "data_order.jsonl").read_text()

    for it in (15, 16):
        shutil.rmtree(cfg.paths.checkpoints / checkpoint.iter_name(it))
    summary = run(cfg)
    assert summary["resumed_from"] == 10
    assert [m["loss"] for m in metrics(cfg)] == [m["loss"] for m in metrics(trained)]
    assert (cfg.paths.train / "data_order.jsonl").read_text() == log


def test_finished_run_is_not_trained_again(trained: RunConfig, tmp_path: Path) -> None:
    cfg = copy_run(trained, tmp_path / "run")
    summary = run(cfg)
    assert summary["resumed_from"] == 16 and summary["iteration"] == 16
    assert [r["step"] for r in metrics(cfg)] == list(range(1, 17))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("layout", "resume"),
    [
        ({"nproc": 2}, {"nproc": 1}),
        ({"nproc": 2, "tensor_parallel": 2}, {"nproc": 1, "tensor_parallel": 1}),
        ({"nproc": 2, "distributed_optimizer": True}, {"nproc": 2, "distributed_optimizer": True}),
    ],
    ids=["dp2-then-1", "tp2-then-tp1", "dp2-distributed-optimizer"],
)
def test_two_processes_match_one_and_resume_in_another_layout(
    trained: RunConfig, tmp_path: Path, layout: dict, resume: dict
) -> None:
    """Megatron DDP / TP=2 / DistributedOptimizer over gloo give the single process's losses, and
    their checkpoints (model and optimizer state) continue the run in another layout."""
    from training.launch import launch

    meta = json.loads((trained.paths.tokens / "tokens.json").read_text())
    assert padded_vocab(meta["vocab_size"], 1) == padded_vocab(meta["vocab_size"], 2)
    root = tmp_path / "run"
    shutil.copytree(trained.paths.tokens, root / "tokens")
    cfg = make_cfg(root, steps=16, save_interval=5, keep_last=4, **layout)
    summary = launch(cfg)
    assert summary["world_size"] == 2
    assert summary["parameters"] == json.loads((trained.paths.train / "train.json").read_text())["parameters"]
    reference = metrics(trained)
    for a, b in zip(reference, metrics(cfg), strict=True):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-5)

    for it in (15, 16):
        shutil.rmtree(cfg.paths.checkpoints / checkpoint.iter_name(it))
    more = make_cfg(root, steps=16, save_interval=5, keep_last=4, **resume)
    summary = launch(more)
    assert summary["resumed_from"] == 10 and summary["iteration"] == 16
    for a, b in zip(reference, metrics(more), strict=True):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-4)


@pytest.mark.slow
def test_pipeline_parallel_trains_resumes_exactly_and_exports(trained: RunConfig, tmp_path: Path) -> None:
    """PP=2 through megatron's 1F1B schedule: the loss falls like one process's, and a resume is exact."""
    from training.launch import launch

    root = tmp_path / "run"
    shutil.copytree(trained.paths.tokens, root / "tokens")
    cfg = make_cfg(root, steps=16, save_interval=5, keep_last=4, nproc=2, pipeline_parallel=2)
    summary = launch(cfg)
    assert (summary["pipeline_parallel"], summary["data_parallel"]) == (2, 1)
    first = metrics(cfg)
    # Each stage draws its own layers' initial weights, so the curve is close to, not equal to, TP=1's.
    assert first[-1]["loss"] < first[0]["loss"] - 1.0
    assert first[-1]["loss"] == pytest.approx(metrics(trained)[-1]["loss"], abs=0.1)

    for it in (10, 15, 16):
        shutil.rmtree(cfg.paths.checkpoints / checkpoint.iter_name(it))
    summary = launch(cfg)
    assert summary["resumed_from"] == 5
    for a, b in zip(first, metrics(cfg), strict=True):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-6)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], abs=1e-6)

    # Export reshards the two stages into one Llama model: same logits as megatron's, every layer trained.
    from test_export import megatron_logits, text_ids
    from transformers import AutoModelForCausalLM

    from training.export import export

    export(cfg)
    hf = AutoModelForCausalLM.from_pretrained(cfg.paths.hf)
    ids = text_ids(cfg)
    _, ckpt, marker = checkpoint.require_newest(cfg.paths.checkpoints)
    init: dict = {}
    expected = megatron_logits(Arch.from_record(marker["arch"]), ckpt, ids)
    megatron_logits(Arch.from_record(marker["arch"]), None, ids, init)
    with torch.no_grad():
        assert torch.allclose(hf(ids).logits, expected, atol=1e-4, rtol=0)
    for i in range(2):
        w = hf.model.layers[i].mlp.down_proj.weight
        assert not torch.allclose(w, init[f"decoder.layers.{i}.mlp.linear_fc2.weight"])


@pytest.mark.slow
def test_stop_signal_ends_in_a_checkpoint(tmp_path: Path) -> None:
    """SIGUSR1 (Slurm's warning before the time limit) stops after the current step with a checkpoint."""
    write_tokens(tmp_path / "tokens", docs=60)
    cfg = make_cfg(tmp_path, steps=5000, save_interval=1000)
    config = cfg.write_resolved()
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "SLURM_PROCID")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "training", "--config", str(config)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    log = cfg.paths.train / "metrics.jsonl"
    while not (log.is_file() and len(log.read_text().splitlines()) >= 3):
        assert proc.poll() is None, "training exited before the signal"
        time.sleep(0.2)
    proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["interrupted"] is True and summary["iteration"] < 5000
    newest = checkpoint.newest(cfg.paths.checkpoints)
    assert newest is not None and newest[0] == summary["iteration"] == metrics(cfg)[-1]["step"]


def test_dataset_tokenizer_round_trips_text(tmp_path: Path) -> None:
    from training.data import _megatron_tokenizer, read_tokens

    write_tokens(tmp_path / "tokens", docs=30)
    tok = _megatron_tokenizer(read_tokens(make_cfg(tmp_path, steps=2).paths))
    text = "the ferry left the harbour at noon"
    ids = tok.tokenize(text)
    assert ids and tok.detokenize(ids) == text
    with pytest.raises(TypeError, match="no chat template"):
        tok.apply_chat_template()


# ------------------------------------------------------------------------- goldfish and accounting


def test_goldfish_drops_about_one_in_k_positions_chosen_by_the_text() -> None:
    from training.goldfish import keep_mask

    tokens = torch.randint(0, 50_000, (16, 2048), generator=torch.Generator().manual_seed(0))
    for k in (2, 4, 8):
        dropped = 1 - keep_mask(tokens, k, 13)[:, 12:].mean().item()
        assert abs(dropped - 1 / k) < 0.02, (k, dropped)
    mask = keep_mask(tokens, 4, 13)
    assert mask[:, :12].eq(1).all()  # fewer than h preceding tokens: always kept
    assert torch.equal(mask, keep_mask(tokens.clone(), 4, 13))  # deterministic
    # The same passage elsewhere (another sequence, another offset) loses the same positions.
    passage = tokens[0, 100:400]
    moved = torch.randint(0, 50_000, (1, 1000), generator=torch.Generator().manual_seed(1))
    moved[0, 537:837] = passage
    assert torch.equal(keep_mask(moved, 4, 13)[0, 549:837], mask[0, 112:400])
    # A different context window changes the choice.
    assert not torch.equal(keep_mask(tokens, 4, 5), mask)


def test_goldfish_option_masks_the_loss_in_training(tmp_path: Path) -> None:
    from training.train import _loss_mask

    t = TrainConfig.model_validate(dict(goldfish_k=3, goldfish_h=4))
    tokens = torch.arange(2 * 64).view(2, 64) * 7919 % 500
    b = {"tokens": tokens, "loss_mask": torch.ones(2, 64)}
    mask = _loss_mask(b, t)
    assert 0.2 < 1 - mask.mean().item() < 0.45 and mask[:, :3].eq(1).all()
    assert torch.equal(_loss_mask(b, TrainConfig()), b["loss_mask"])


def test_sacct_records_give_gpu_hours_energy_and_co2() -> None:
    from training.accounting import Attempt, compute_record, parse_sacct

    # `sacct -n -P -X -D -o JobIDRaw,State,ElapsedRaw,AllocTRES,NNodes,Start,End` of a job requeued once.
    text = (
        "4711|REQUEUED|1800|billing=64,cpu=64,gres/gpu=8,mem=512G,node=2|2|2026-11-01T10:00:00|2026-11-01T10:30:00\n"
        "4711|COMPLETED|5400|billing=64,cpu=64,gres/gpu:h100=8,mem=512G,node=2|2|2026-11-01T10:33:00|2026-11-01T12:03:00\n"
    )
    rows = parse_sacct(text)
    assert [(r["state"], r["elapsed_s"], r["gpus"]) for r in rows] == [
        ("REQUEUED", 1800, 8),
        ("COMPLETED", 5400, 8),
    ]
    t = TrainConfig.model_validate(dict(watts_per_device=700, pue=1.25, grid_gco2_per_kwh=100))
    rec = compute_record(t, [], rows)
    assert rec["device_hours"] == pytest.approx(16.0)  # (0.5 h + 1.5 h) x 8 GPUs
    assert rec["energy_kwh"] == pytest.approx(16.0 * 0.7 * 1.25)
    assert rec["co2_kg"] == pytest.approx(14.0 * 0.1)
    assert (rec["source"], rec["attempts"]) == ("sacct", 2)
    own = [Attempt(None, 0, 0.0, 3600.0, 2, 0, 0, 10), Attempt(None, 1, 4000.0, 5800.0, 2, 0, 10, 20)]
    rec = compute_record(t, own, None)
    assert rec["device_hours"] == pytest.approx(3.0) and rec["source"] == "job timings"


def test_resumed_run_continues_the_wandb_run_and_counts_both_attempts(tmp_path: Path) -> None:
    write_tokens(tmp_path / "tokens", docs=60)
    first = run(make_cfg(tmp_path, steps=4, save_interval=4, wandb="offline"))
    second = run(make_cfg(tmp_path, steps=6, save_interval=4, wandb="offline"))
    assert second["resumed_from"] == 4 and first["wandb_run_id"] == second["wandb_run_id"]
    runs = sorted((tmp_path / "train" / "wandb").glob("offline-run-*"))
    # wandb names each attempt's folder by start time and run id (adding "-1" when two start
    # in the same second); the run file inside carries the id either way.
    assert len(runs) == 2 and all((r / f"run-{first['wandb_run_id']}.wandb").is_file() for r in runs)
    marker = checkpoint.read_marker(tmp_path / "train" / "checkpoints" / "iter_0000006")
    assert marker is not None and marker["wandb_run_id"] == first["wandb_run_id"]
    compute = json.loads((tmp_path / "train" / "train.json").read_text())["compute"]
    assert compute["attempts"] == 2 and compute["source"] == "job timings"
    assert second["energy_kwh"] == pytest.approx(compute["device_hours"] * 0.7 * 1.2)
    # No secret reaches the files we write (the key comes from the environment only).
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".yaml", ".txt", ".log"):
            assert "WANDB_API_KEY" not in path.read_text(errors="replace")


@pytest.mark.slow
def test_bf16_mixed_precision_tracks_float32(trained: RunConfig, tmp_path: Path) -> None:
    """bf16 weights/compute with megatron's float32 master weights follow the float32 run closely."""
    root = tmp_path / "run"
    shutil.copytree(trained.paths.tokens, root / "tokens")
    cfg = make_cfg(root, steps=16, save_interval=16, bf16=True)
    run(cfg)
    for a, b in zip(metrics(trained)[:6], metrics(cfg)[:6], strict=True):
        assert b["loss"] == pytest.approx(a["loss"], abs=0.02)
    assert metrics(cfg)[-1]["loss"] < metrics(cfg)[0]["loss"] - 1.0
