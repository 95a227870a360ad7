"""Export to Hugging Face Llama: the reloaded model computes the Megatron model's logits; tokenizer intact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_training import corpus, make_cfg, write_tokens

from commonweights.config import RunConfig
from commonweights.errors import InputError
from training import checkpoint
from training.export import export, llama_config, to_llama
from training.model import Arch, arch_of, build_model, causal_mask
from training.train import DistEnv, free_port, process_group, run


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> RunConfig:
    root = tmp_path_factory.mktemp("run")
    write_tokens(root / "tokens")
    cfg = make_cfg(root, steps=6, save_interval=3)  # 4 query heads over 2 KV groups
    run(cfg)
    export(cfg)
    export(cfg)  # a second export replaces hf/ in place
    return cfg


def megatron_logits(
    arch: Arch, ckpt: Path | None, ids: torch.Tensor, init: dict | None = None
) -> torch.Tensor:
    with process_group(DistEnv(0, 1, 0, "127.0.0.1", free_port()), 1, 1, seed=7):
        model = build_model(arch, 1, 1, cpu=True)
        if ckpt is not None:
            checkpoint.load_weights(ckpt, model)
        model.eval()
        with torch.no_grad():
            pos = torch.arange(ids.shape[1])[None].expand(ids.shape[0], -1)
            logits = model(ids, pos, causal_mask(ids.shape[1]))
            if init is not None:
                init.update({k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)})
        return logits


def text_ids(cfg: RunConfig) -> torch.Tensor:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(cfg.paths.tokens / "tokenizer.json"))
    ids = tok.encode(" ".join(corpus(4, seed=99))).ids[:96]
    return torch.tensor(ids).view(2, 48)


def test_export_layout_and_record(exported: RunConfig) -> None:
    hf = exported.paths.hf
    names = {p.name for p in hf.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "export.json",
    } <= names
    assert json.loads((hf / "export.json").read_text())["checkpoint"] == "train/checkpoints/iter_0000006"
    assert json.loads((hf / "export.json").read_text())["iteration"] == 6
    assert not list(hf.parent.glob("hf.*"))  # no .tmp or .old left next to it
    config = json.loads((hf / "config.json").read_text())
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (4, 2)
    assert (config["eos_token_id"], config["pad_token_id"]) == (0, 1)


def test_reloaded_model_computes_megatron_logits(exported: RunConfig) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(exported.paths.hf)
    assert type(model).__name__ == "LlamaForCausalLM"
    ids = text_ids(exported)
    _, ckpt, marker = checkpoint.require_newest(exported.paths.checkpoints)
    expected = megatron_logits(Arch.from_record(marker["arch"]), ckpt, ids)
    with torch.no_grad():
        got = model(ids).logits
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-4, rtol=0)


def test_tokenizer_round_trips(exported: RunConfig) -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    hf_tok = AutoTokenizer.from_pretrained(exported.paths.hf)
    source = Tokenizer.from_file(str(exported.paths.tokens / "tokenizer.json"))
    for text in corpus(3, seed=5) + ["Unseen words: quokka, 2026, naïve café!"]:
        ids = hf_tok(text)["input_ids"]
        assert ids == source.encode(text).ids
        assert hf_tok.decode(ids) == text
    assert (hf_tok.eos_token, hf_tok.eos_token_id, hf_tok.bos_token_id) == ("<|endoftext|>", 0, 0)
    assert (hf_tok.pad_token, hf_tok.pad_token_id) == ("<|pad|>", 1)


def test_fused_projections_split_per_query_group() -> None:
    """Megatron's QKV rows are [q heads of group g, k_g, v_g] per group; fc1 rows are [gate; up]."""
    arch = Arch(
        num_layers=1,
        hidden_size=8,
        num_attention_heads=4,
        num_query_groups=2,
        ffn_hidden_size=6,
        vocab_size=16,
        seq_length=8,
    )
    hn = arch.head_dim  # 2
    row = torch.arange(2 * (2 + 2) * hn, dtype=torch.float32)[:, None].expand(-1, 8)  # value = row index
    sd = {
        "embedding.word_embeddings.weight": torch.zeros(16, 8),
        "decoder.layers.0.input_layernorm.weight": torch.ones(8),
        "decoder.layers.0.self_attention.linear_qkv.weight": row,
        "decoder.layers.0.self_attention.linear_proj.weight": torch.zeros(8, 8),
        "decoder.layers.0.pre_mlp_layernorm.weight": torch.ones(8),
        "decoder.layers.0.mlp.linear_fc1.weight": torch.arange(12.0)[:, None].expand(-1, 8),
        "decoder.layers.0.mlp.linear_fc2.weight": torch.zeros(8, 6),
        "decoder.final_layernorm.weight": torch.ones(8),
        "output_layer.weight": torch.zeros(16, 8),
    }
    out = to_llama(sd, arch)
    first_col = {k: v[:, 0].tolist() for k, v in out.items() if v.dim() == 2}
    assert first_col["model.layers.0.self_attn.q_proj.weight"] == [0, 1, 2, 3, 8, 9, 10, 11]
    assert first_col["model.layers.0.self_attn.k_proj.weight"] == [4, 5, 12, 13]
    assert first_col["model.layers.0.self_attn.v_proj.weight"] == [6, 7, 14, 15]
    assert first_col["model.layers.0.mlp.gate_proj.weight"] == [0, 1, 2, 3, 4, 5]
    assert first_col["model.layers.0.mlp.up_proj.weight"] == [6, 7, 8, 9, 10, 11]
    assert "lm_head.weight" in out


def test_tied_embeddings_export_to_tied_llama(tmp_path: Path) -> None:
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, LlamaConfig

    arch = arch_of(make_cfg(tmp_path).train, vocab_size=300, tied=True)
    ids = torch.randint(2, 300, (2, 24))
    state: dict = {}
    expected = megatron_logits(arch, None, ids, init=state)
    tensors = to_llama(state, arch)
    assert "lm_head.weight" not in tensors
    LlamaConfig(**llama_config(arch, 0, 1)).save_pretrained(tmp_path)
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, expected, atol=1e-4, rtol=0)


def test_export_without_checkpoint_says_to_train(tmp_path: Path) -> None:
    write_tokens(tmp_path / "tokens", docs=20)
    with pytest.raises(InputError, match="commonweights train"):
        export(make_cfg(tmp_path))
