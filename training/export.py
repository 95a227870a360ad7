"""Export the newest complete checkpoint to a Hugging Face `LlamaForCausalLM` folder (`hf/`).

The checkpoint is loaded through dist_checkpointing into a TP=1 megatron model (so any saved
tensor-parallel layout works), its state dict is renamed to Llama's (`to_llama`, pure), and the folder
is written next to `hf/` and renamed into place: config.json, model.safetensors,
generation_config.json, the tokenizer files and export.json (`{checkpoint, iteration}`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from commonweights.config import RunConfig
from commonweights.errors import InputError
from training import checkpoint
from training.data import TOKENIZE_HINT
from training.model import Arch, build_model, require
from training.train import DistEnv, free_port, process_group


def to_llama(sd: dict[str, torch.Tensor], arch: Arch) -> dict[str, torch.Tensor]:
    """Rename a TP=1 megatron GPTModel state dict to Llama's, splitting the fused projections.

    Megatron fuses Q, K and V per query group: for each group its query heads, then one key head and
    one value head ([ng * (np/ng + 2) * hn, h]); Llama keeps q/k/v separate with key/value head g
    serving query heads g*np/ng ... (g+1)*np/ng - 1, which is the same grouping. The SwiGLU input
    projection `linear_fc1` stacks [gate; up].
    """
    hn, ng = arch.head_dim, arch.num_query_groups
    per_group = arch.num_attention_heads // ng
    out: dict[str, torch.Tensor] = {"model.embed_tokens.weight": sd["embedding.word_embeddings.weight"]}
    for i in range(arch.num_layers):
        src, dst = f"decoder.layers.{i}.", f"model.layers.{i}."
        qkv = sd[src + "self_attention.linear_qkv.weight"].view(ng, (per_group + 2) * hn, arch.hidden_size)
        q, k, v = torch.split(qkv, [per_group * hn, hn, hn], dim=1)
        gate, up = torch.chunk(sd[src + "mlp.linear_fc1.weight"], 2, dim=0)
        out |= {
            dst + "input_layernorm.weight": sd[src + "input_layernorm.weight"],
            dst + "self_attn.q_proj.weight": q.reshape(-1, arch.hidden_size),
            dst + "self_attn.k_proj.weight": k.reshape(-1, arch.hidden_size),
            dst + "self_attn.v_proj.weight": v.reshape(-1, arch.hidden_size),
            dst + "self_attn.o_proj.weight": sd[src + "self_attention.linear_proj.weight"],
            dst + "post_attention_layernorm.weight": sd[src + "pre_mlp_layernorm.weight"],
            dst + "mlp.gate_proj.weight": gate,
            dst + "mlp.up_proj.weight": up,
            dst + "mlp.down_proj.weight": sd[src + "mlp.linear_fc2.weight"],
        }
    out["model.norm.weight"] = sd["decoder.final_layernorm.weight"]
    if not arch.tied:
        out["lm_head.weight"] = sd["output_layer.weight"]
    return {k: v.detach().to(torch.float32).contiguous().clone() for k, v in out.items()}


def llama_config(arch: Arch, eod_id: int, pad_id: int) -> dict[str, Any]:
    """Keyword arguments of transformers.LlamaConfig for this network."""
    return {
        "vocab_size": arch.vocab_size,
        "hidden_size": arch.hidden_size,
        "intermediate_size": arch.ffn_hidden_size,
        "num_hidden_layers": arch.num_layers,
        "num_attention_heads": arch.num_attention_heads,
        "num_key_value_heads": arch.num_query_groups,
        "head_dim": arch.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": arch.seq_length,
        "rms_norm_eps": arch.norm_eps,
        "rope_theta": arch.rope_base,
        "initializer_range": arch.init_std,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": arch.tied,
        # Documents are separated by EOD only; it doubles as BOS for generation prompts.
        "bos_token_id": eod_id,
        "eos_token_id": eod_id,
        "pad_token_id": pad_id,
        "torch_dtype": "float32",
        "architectures": ["LlamaForCausalLM"],
    }


def megatron_state(cfg: RunConfig, ckpt: Path, arch: Arch) -> dict[str, torch.Tensor]:
    """The checkpoint's weights in a TP=1 megatron model (single process, its own process group)."""
    env = DistEnv(0, 1, 0, "127.0.0.1", free_port())
    with process_group(env, 1, 1, cfg.train.seed) as device:
        model = build_model(arch, 1, 1, cpu=device == "cpu")
        model.to(device)
        checkpoint.load_weights(ckpt, model)
        return {k: v.cpu() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}


def _portable_tokenizer_class(path: Path) -> None:
    """Name the class both transformers 4 and 5 load from a bare tokenizer.json."""
    rec = json.loads(path.read_text())
    rec["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(rec, indent=2) + "\n")


def export(cfg: RunConfig) -> dict[str, Any]:
    """Write `cfg.paths.hf` from the newest complete checkpoint; returns export.json's content."""
    require("transformers", "transformers", "export")
    require("safetensors", "safetensors", "export")
    from safetensors.torch import save_file
    from transformers import GenerationConfig, LlamaConfig, PreTrainedTokenizerFast

    paths = cfg.paths
    iteration, ckpt, marker = checkpoint.require_newest(paths.checkpoints)
    tok_file = paths.tokens / "tokenizer.json"
    meta_file = paths.tokens / "tokens.json"
    for p in (tok_file, meta_file):
        if not p.is_file():
            raise InputError(f"{p}: needed to export the tokenizer; {TOKENIZE_HINT}")
    meta = json.loads(meta_file.read_text())
    eod_id, pad_id = int(meta["eod_id"]), int(meta["pad_id"])
    arch = Arch.from_record(marker["arch"])

    tensors = to_llama(megatron_state(cfg, ckpt, arch), arch)
    out = paths.hf
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    LlamaConfig(**llama_config(arch, eod_id, pad_id)).save_pretrained(tmp)
    save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    GenerationConfig(bos_token_id=eod_id, eos_token_id=eod_id, pad_token_id=pad_id).save_pretrained(tmp)
    from tokenizers import Tokenizer

    names = Tokenizer.from_file(str(tok_file))
    eod, pad = names.id_to_token(eod_id), names.id_to_token(pad_id)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tok_file),
        bos_token=eod,
        eos_token=eod,
        pad_token=pad,
        model_max_length=arch.seq_length,
    )
    tokenizer.save_pretrained(tmp)
    _portable_tokenizer_class(tmp / "tokenizer_config.json")
    (tmp / "model.safetensors").chmod(0o644)  # safetensors writes 0600; the release is public
    rel = str(ckpt.relative_to(cfg.dir)) if ckpt.is_relative_to(cfg.dir) else str(ckpt)
    record = {"checkpoint": rel, "iteration": iteration, "config_digest": marker.get("config_digest")}
    (tmp / "export.json").write_text(json.dumps(record, indent=2) + "\n")
    if out.exists():
        old = out.with_name(out.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)
    return record
