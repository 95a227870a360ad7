"""Tokens/s of our training step against a bare megatron-core loop, same model and data, same process.

    .venv/bin/python benchmarks/train_step.py [--steps 20] [--rounds 3] [--out FILE.json]

"Ours" is `training.train._train_step` built by `training.train.build_training` (megatron DDP,
`get_megatron_optimizer`, `get_forward_backward_func`, plus our data slicing, loss-mask handling,
loss averaging over data-parallel ranks and gradient-norm reporting). "Bare" is the minimal loop a
megatron-core user writes with the same components: zero the grad buffer, run the schedule over the
micro-batches with a mean-token-loss function, step the optimizer. Both train identical models
(same seed) on the same GPTDataset, alternating in rounds so that machine noise hits both; the
figure is the median over rounds. Target: ours / bare >= 0.95. On a CPU both run through
`training.cpu_compat`; on a GPU through CUDA, unchanged.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from commonweights.config import RunConfig  # noqa: E402
from training.data import batch, build_dataset, read_tokens  # noqa: E402
from training.model import arch_of, causal_mask  # noqa: E402
from training.train import (  # noqa: E402
    DistEnv,
    _Step,
    _train_step,
    build_training,
    check_layout,
    free_port,
    lr_at,
    process_group,
)

SHAPE = {
    "num_layers": 4,
    "hidden_size": 256,
    "num_attention_heads": 8,
    "num_query_groups": 4,
    "seq_length": 256,
    "micro_batch_size": 4,
    "global_batch_size": 8,
    "wandb": "disabled",
}


def write_random_tokens(root: Path, vocab: int = 4096, tokens: int = 400_000) -> None:
    """Token files of uniformly random ids (throughput does not depend on the text)."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    root.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([f"word{i} token{i * 7} piece{i * 13}" for i in range(20_000)], trainer)
    tok.save(str(root / "tokenizer.json"))
    real_vocab = tok.get_vocab_size()
    rng = np.random.default_rng(0)
    builder = IndexedDatasetBuilder(str(root / "text_document.bin"), dtype=np.uint16)
    docs = 0
    for _ in range(tokens // 1000):
        ids = rng.integers(2, real_vocab, 1000).tolist() + [0]
        builder.add_document(torch.tensor(ids), [len(ids)])
        docs += 1
    builder.finalize(str(root / "text_document.idx"))
    meta = {"vocab_size": real_vocab, "eod_id": 0, "pad_id": 1, "documents": docs, "tokens": docs * 1001}
    (root / "tokens.json").write_text(json.dumps(meta))


def bare_step(model: Any, optimizer: Any, forward_backward: Any, s: _Step, step: int, t: Any) -> None:
    """The minimal megatron-core training step."""
    model.zero_grad_buffer()
    optimizer.zero_grad()
    n = t.global_batch_size // t.micro_batch_size
    first = step * t.global_batch_size
    mb = t.micro_batch_size
    data = iter(
        [{k: v.to(s.device) for k, v in batch(s.dataset, first + i * mb, mb).items()} for i in range(n)]
    )

    def forward(it: Any, m: Any) -> Any:
        b = next(it)
        out = m(b["tokens"], b["position_ids"], s.mask, labels=b["labels"])
        mask = b["loss_mask"]
        return out, lambda o: ((o * mask).sum() / mask.sum(), {})

    forward_backward(
        forward_step_func=forward,
        data_iterator=data,
        model=[model],
        num_microbatches=n,
        seq_length=t.seq_length,
        micro_batch_size=t.micro_batch_size,
        forward_only=False,
    )
    optimizer.step()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="timed steps per loop per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "train_step.json")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_random_tokens(root / "tokens")
        total = (args.steps * args.rounds + 2) * 2
        cfg = RunConfig.model_validate(
            {"name": "bench", "dir": str(root), "data": {"sample": {}}, "train": {**SHAPE, "steps": total}}
        )
        t = cfg.train
        tokens = read_tokens(cfg.paths)
        arch = arch_of(t, tokens.vocab_size)
        layout = check_layout(t, 1)
        with process_group(DistEnv(0, 1, 0, "127.0.0.1", free_port()), 1, 1, t.seed) as device:
            dataset = build_dataset(tokens, t.seq_length, total * t.global_batch_size, t.seed, root / "cache")
            s = _Step(dataset, causal_mask(t.seq_length, device), layout, 0, device)
            torch.manual_seed(t.seed)
            ours = build_training(arch, t, layout, device)
            torch.manual_seed(t.seed)
            bare = build_training(arch, t, layout, device)
            for name in ("ours", "bare"):  # one untimed warm-up step each
                m, o, fb = ours if name == "ours" else bare
                (_train_step if name == "ours" else bare_step)(m, o, fb, s, 0, t)
            rates: dict[str, list[float]] = {"ours": [], "bare": []}
            step = 1
            for _ in range(args.rounds):
                for name in ("bare", "ours"):
                    m, o, fb = ours if name == "ours" else bare
                    fn = _train_step if name == "ours" else bare_step
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    start = time.perf_counter()
                    for i in range(args.steps):
                        for g in o.param_groups:
                            g["lr"] = lr_at(step + i, t)
                        fn(m, o, fb, s, step + i, t)
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    seconds = time.perf_counter() - start
                    rates[name].append(args.steps * t.global_batch_size * t.seq_length / seconds)
                step += args.steps
    ours_tps, bare_tps = statistics.median(rates["ours"]), statistics.median(rates["bare"])
    result = {
        "benchmark": "train_step",
        "device": torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else f"cpu ({platform.processor() or platform.machine()})",
        "torch_threads": torch.get_num_threads(),
        "shape": SHAPE,
        "steps_per_round": args.steps,
        "rounds": args.rounds,
        "tokens_per_s": {"ours": ours_tps, "bare_megatron_core": bare_tps},
        "per_round": rates,
        "ratio_ours_over_bare": ours_tps / bare_tps,
        "target_ratio": 0.95,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
