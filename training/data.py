"""Training data: the tokenize stage's files (docs/run-layout.md `tokens/`) as a megatron GPTDataset.

`read_tokens` checks the files and their agreement before any process group starts, so a missing or
mismatched input is one clear error naming the file; `build_dataset` wraps megatron's
`BlendedMegatronDatasetBuilder` + `GPTDatasetConfig` (its prebuilt C++ helpers; never compiled here).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from commonweights.config import RunPaths
from commonweights.errors import ConfigError, InputError

PREFIX = "text_document"
TOKENIZE_HINT = "run `commonweights tokenize --config CONFIG` first"


@dataclass(frozen=True)
class Tokens:
    """What training needs to know about the token files."""

    prefix: Path  # .bin/.idx without the suffix, as megatron's IndexedDataset takes it
    tokenizer: Path
    vocab_size: int  # the tokenizer's, before padding
    eod_id: int
    pad_id: int
    documents: int
    tokens: int
    sha256: str  # of tokens.json, which pins the inputs: recorded in every checkpoint


def read_tokens(paths: RunPaths) -> Tokens:
    """Read tokens.json and check that the tokenizer and the IndexedDataset agree with it."""
    root = paths.tokens
    meta_path = root / "tokens.json"
    tok_path = root / "tokenizer.json"
    prefix = root / PREFIX
    for p in (meta_path, tok_path, prefix.with_suffix(".bin"), prefix.with_suffix(".idx")):
        if not p.is_file():
            raise InputError(f"{p}: token file not found; {TOKENIZE_HINT}")
    raw = meta_path.read_bytes()
    try:
        meta = json.loads(raw)
        vocab, eod, pad = int(meta["vocab_size"]), int(meta["eod_id"]), int(meta["pad_id"])
        docs, count = int(meta["documents"]), int(meta["tokens"])
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{meta_path}: not a valid tokens.json ({e!r}); {TOKENIZE_HINT}") from None

    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(tok_path))
    except Exception as e:  # the tokenizers library raises a bare Exception on a bad file
        raise InputError(f"{tok_path}: not a valid tokenizers file ({e}); {TOKENIZE_HINT}") from None
    tok_vocab = tok.get_vocab_size(with_added_tokens=True)
    if tok_vocab != vocab:
        raise InputError(
            f"{tok_path}: the tokenizer has {tok_vocab} tokens but {meta_path} says vocab_size={vocab}: "
            f"the token files come from different tokenizer runs; {TOKENIZE_HINT}"
        )
    for name, idx in (("eod_id", eod), ("pad_id", pad)):
        if not 0 <= idx < vocab:
            raise InputError(f"{meta_path}: {name}={idx} is outside the vocabulary (size {vocab})")

    from megatron.core.datasets.indexed_dataset import IndexedDataset

    dtype = IndexedDataset(str(prefix)).index.dtype
    if vocab - 1 > np.iinfo(dtype).max:
        raise InputError(
            f"{prefix}.idx: token ids are stored as {np.dtype(dtype).name}, too small for "
            f"vocab_size={vocab}; {TOKENIZE_HINT}"
        )
    return Tokens(prefix, tok_path, vocab, eod, pad, docs, count, hashlib.sha256(raw).hexdigest())


def check_vocab(tokens: Tokens, model_vocab: int, source: Path | str) -> None:
    """The model's (padded) vocabulary must cover every token id the tokenizer can produce."""
    if tokens.vocab_size > model_vocab:
        raise ConfigError(
            f"{source}: the model has {model_vocab} vocabulary rows but {tokens.tokenizer} has "
            f"{tokens.vocab_size} tokens: the checkpoint was trained with another tokenizer; train into a "
            "fresh run folder (or remove train/checkpoints) after re-tokenizing"
        )


def _megatron_tokenizer(tokens: Tokens) -> Any:
    """The ids GPTDataset reads from its tokenizer (vocab size, EOD, pad); no text is tokenized here."""
    from megatron.core.tokenizers import MegatronTokenizerBase

    class _Ids(MegatronTokenizerBase):
        def __init__(self) -> None:
            super().__init__(str(tokens.tokenizer), {})

        # Training reads token ids; these serve Megatron utilities that print or inspect samples.
        def tokenize(self, text: str) -> list[int]:
            return list(self._hf().encode(text, add_special_tokens=False).ids)

        def detokenize(self, ids: list[int]) -> str:
            return str(self._hf().decode(list(ids), skip_special_tokens=False))

        def apply_chat_template(self) -> None:
            raise TypeError(f"{tokens.tokenizer}: a pretraining tokenizer has no chat template")

        def _hf(self) -> Any:
            from tokenizers import Tokenizer

            if not hasattr(self, "_loaded"):
                self._loaded = Tokenizer.from_file(str(tokens.tokenizer))
            return self._loaded

        @property
        def unique_identifiers(self) -> dict[str, Any]:
            # Part of the dataset cache key: a new tokenization must not reuse old sample indices.
            return {"class": "commonweights.tokens", "tokens_sha256": tokens.sha256}

        @property
        def vocab(self) -> dict[str, int]:
            return {}

        @property
        def vocab_size(self) -> int:
            return tokens.vocab_size

        @property
        def eod(self) -> int:
            return tokens.eod_id

        @property
        def pad(self) -> int:
            return tokens.pad_id

    return _Ids()


def build_dataset(tokens: Tokens, seq_length: int, samples: int, seed: int, cache: Path) -> Any:
    """A GPTDataset of `samples` sequences of `seq_length`+1 tokens (call on every rank)."""
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    config = GPTDatasetConfig(
        random_seed=seed,
        sequence_length=seq_length,
        blend=([str(tokens.prefix)], None),
        split="100,0,0",
        path_to_cache=str(cache),
        tokenizer=_megatron_tokenizer(tokens),
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
        create_attention_mask=False,  # the loop passes one causal mask (see model.causal_mask)
    )
    train, _, _ = BlendedMegatronDatasetBuilder(
        GPTDataset, [samples, None, None], lambda: True, config
    ).build()
    return train


def batch(dataset: Any, start: int, size: int) -> dict[str, torch.Tensor]:
    """Samples [start, start + size) stacked: tokens, labels, loss_mask, position_ids."""
    items = [dataset[i] for i in range(start, start + size)]
    keys = ("tokens", "labels", "loss_mask", "position_ids")
    return {k: torch.stack([it[k] for it in items]) for k in keys}
