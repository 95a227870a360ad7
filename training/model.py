"""The one adapter from our `TrainConfig` to a megatron-core Llama-style `GPTModel`.

`Arch` is the plain, JSON-safe shape of the network (what a checkpoint records and what export maps to
Hugging Face Llama); `build_model` turns it into megatron's `TransformerConfig` + local (non-TE) layer
spec + `GPTModel`: RMSNorm, SwiGLU, RoPE, no linear biases, grouped-query attention, untied embeddings
by default. Attention runs through torch's fused `scaled_dot_product_attention` (`CausalSdpa`), so
neither Transformer Engine nor Apex is needed for a long context on GPUs. Megatron is imported inside
the functions so that importing `training` stays cheap and a missing package is reported when a model
is built, with the pip name.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from commonweights.config import TrainConfig
from commonweights.errors import ConfigError, StageError

VOCAB_MULTIPLE = 128  # Megatron's make-vocab-size-divisible-by default, times tensor_parallel
FFN_MULTIPLE = 64  # SwiGLU width rounded up to this, as Llama does (multiple_of)


def require(module: str, pip_name: str, why: str) -> None:
    """Fail with the pip name when an optional package is missing (at construction, not import)."""
    if importlib.util.find_spec(module) is None:
        raise StageError(f"{why} needs the Python package {pip_name!r}: pip install {pip_name}")


def padded_vocab(vocab_size: int, tensor_parallel: int) -> int:
    """Round the tokenizer's vocabulary up so that every tensor-parallel shard is 128-aligned."""
    multiple = VOCAB_MULTIPLE * tensor_parallel
    return -(-vocab_size // multiple) * multiple


def ffn_size(hidden_size: int) -> int:
    """SwiGLU width when the config leaves it unset: 8/3 of hidden, rounded up to a multiple of 64."""
    return -(-math.ceil(8 * hidden_size / 3) // FFN_MULTIPLE) * FFN_MULTIPLE


@dataclass(frozen=True)
class Arch:
    """The network's shape, independent of how it is parallelised."""

    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_query_groups: int
    ffn_hidden_size: int
    vocab_size: int  # padded: rows of the embedding and output matrices
    seq_length: int
    tied: bool = False
    norm_eps: float = 1e-5
    rope_base: float = 10000.0
    init_std: float = 0.02

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Arch:
        return cls(**rec)


def arch_of(train: TrainConfig, vocab_size: int, tied: bool = False) -> Arch:
    """Resolve the derived sizes once: padded vocab, query groups, SwiGLU width."""
    ffn = train.ffn_hidden_size or ffn_size(train.hidden_size)
    if ffn % train.tensor_parallel:
        raise ConfigError(
            f"train.ffn_hidden_size={ffn} is not divisible by train.tensor_parallel={train.tensor_parallel}"
        )
    return Arch(
        num_layers=train.num_layers,
        hidden_size=train.hidden_size,
        num_attention_heads=train.num_attention_heads,
        num_query_groups=train.num_query_groups or train.num_attention_heads,
        ffn_hidden_size=ffn,
        vocab_size=padded_vocab(vocab_size, train.tensor_parallel),
        seq_length=train.seq_length,
        tied=tied,
    )


class CausalSdpa(torch.nn.Module):
    """Megatron's core-attention slot filled by torch's fused `scaled_dot_product_attention`.

    megatron-core's own local `DotProductAttention` materialises the [batch, heads, s, s] scores and
    keeps them for the backward pass: at s=4096 that is 1 GiB per layer and sample in bf16 (plus a
    float32 softmax); the `1b` preset ran out of memory with it on an 80 GB H100 even at micro-batch 1
    (docs/training.md). Its fused kernels need Transformer Engine. torch picks flash attention on
    Ampere/Hopper and a blocked kernel on CPU.
    Causal only: megatron's explicit mask is not read, which is exact because every training sequence
    is one causal stream (see `causal_mask`). Takes megatron's core-attention arguments; has no weights,
    so checkpoints are the same as with megatron's module.
    """

    def __init__(
        self,
        config: Any,
        layer_number: int,
        attn_mask_type: Any,
        attention_type: str,
        attention_dropout: float | None = None,
        softmax_scale: float | None = None,
        cp_comm_type: str | None = None,
        pg_collection: Any = None,
    ) -> None:
        super().__init__()
        dropout = config.attention_dropout if attention_dropout is None else attention_dropout
        if attn_mask_type.name != "causal" or dropout or config.context_parallel_size != 1:
            raise StageError(
                "CausalSdpa supports causal self-attention without dropout or context parallelism; "
                f"got mask {attn_mask_type.name}, dropout {dropout}, CP {config.context_parallel_size}"
            )
        # Query heads per KV head (the same on every TP rank); megatron's own module repeats K/V too.
        self.repeat = config.num_attention_heads // config.num_query_groups
        self.scale = softmax_scale  # None: 1/sqrt(head_dim), as megatron's default

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        attn_mask_type: Any = None,
        attention_bias: torch.Tensor | None = None,
        packed_seq_params: Any = None,
    ) -> torch.Tensor:
        """[s, b, heads, d] queries and [s, b, groups, d] keys/values -> [s, b, heads*d]."""
        if attention_bias is not None or packed_seq_params is not None:
            raise StageError("CausalSdpa takes neither an attention bias nor packed sequences")
        if self.repeat > 1:
            key = key.repeat_interleave(self.repeat, dim=2)
            value = value.repeat_interleave(self.repeat, dim=2)
        q, k, v = (x.permute(1, 2, 0, 3) for x in (query, key, value))  # -> [b, heads, s, d]
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        s, b = query.shape[:2]
        return out.permute(2, 0, 1, 3).reshape(s, b, -1)


def build_model(
    arch: Arch,
    tensor_parallel: int,
    pipeline_parallel: int,
    cpu: bool,
    bf16: bool = False,
    fused: bool = False,
) -> torch.nn.Module:
    """A megatron-core GPTModel for this rank's pipeline stage (parallel_state must be initialised).

    With `bf16` the weights are bf16 and the model is wrapped in megatron's `Float16Module`; megatron's
    mixed-precision optimizer keeps float32 master copies of them. With `fused` (GPUs only) SwiGLU and
    the cross-entropy loss run as megatron's native fusions, which torch.compile builds (no CUDA
    extension needed): the loss over a 131k vocabulary otherwise makes ~10 passes over float32 logits.
    """
    require("megatron.core", "megatron-core", "training")
    import torch.nn.functional as F
    from megatron.core import parallel_state
    from megatron.core.models.gpt import GPTModel
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
    from megatron.core.transformer.torch_norm import WrappedTorchNorm
    from megatron.core.transformer.transformer_block import (
        TransformerBlockSubmodules,
        get_num_layers_to_build,
    )
    from megatron.core.transformer.transformer_config import TransformerConfig

    fuse = fused and not cpu
    config = TransformerConfig(
        num_layers=arch.num_layers,
        hidden_size=arch.hidden_size,
        num_attention_heads=arch.num_attention_heads,
        num_query_groups=arch.num_query_groups,
        ffn_hidden_size=arch.ffn_hidden_size,
        kv_channels=arch.head_dim,
        tensor_model_parallel_size=tensor_parallel,
        pipeline_model_parallel_size=pipeline_parallel,
        pipeline_dtype=torch.bfloat16 if bf16 else torch.float32,
        params_dtype=torch.bfloat16 if bf16 else torch.float32,
        bf16=bf16,
        normalization="RMSNorm",
        layernorm_epsilon=arch.norm_eps,
        gated_linear_unit=True,
        activation_func=F.silu,
        add_bias_linear=False,
        add_qkv_bias=False,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        init_method_std=arch.init_std,
        attention_softmax_in_fp32=True,
        # These fused kernels need CUDA extensions (Apex/TE); the plain torch ops run on any device.
        bias_dropout_fusion=False,
        masked_softmax_fusion=False,
        persist_layer_norm=False,
        apply_rope_fusion=False,
        gradient_accumulation_fusion=False,
        # These two are torch.compile'd functions inside megatron-core.
        bias_activation_fusion=fuse,
        cross_entropy_loss_fusion=fuse and bf16,  # its gradient is bf16 by construction
        cross_entropy_fusion_impl="native",
        # Build the master weights on the CPU generator: same init for any TP degree, no CUDA RNG.
        use_cpu_initialization=cpu,
    )
    layer = get_gpt_layer_local_spec(normalization="RMSNorm")
    layer.submodules.self_attention.submodules.core_attention = CausalSdpa
    # The final norm is named here, not left to megatron's import-time pick (Apex's fused LayerNorm).
    # Each layer numbers itself from the stage's offset; the block only needs this stage's count.
    count = get_num_layers_to_build(config)
    block = TransformerBlockSubmodules(layer_specs=[layer] * count, layer_norm=WrappedTorchNorm)
    model = GPTModel(
        config=config,
        transformer_layer_spec=block,
        vocab_size=arch.vocab_size,
        max_sequence_length=arch.seq_length,
        pre_process=parallel_state.is_pipeline_first_stage(),
        post_process=parallel_state.is_pipeline_last_stage(),
        share_embeddings_and_output_weights=arch.tied,
        position_embedding_type="rope",
        rotary_base=int(arch.rope_base),
        parallel_output=True,
    )
    if bf16:
        from megatron.core.transformer.module import Float16Module

        return Float16Module(config, model)
    return model


def unwrap(model: torch.nn.Module) -> Any:
    """The GPTModel inside megatron's DDP and Float16Module wrappers (what checkpoints address)."""
    inner: Any = model
    while not hasattr(inner, "decoder") and hasattr(inner, "module"):
        inner = inner.module
    return inner


def causal_mask(seq_length: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Boolean [1, 1, s, s] mask, True where a query must not see a key (megatron's convention).

    Passed explicitly because megatron's default causal mask is allocated on `device="cuda"`.
    """
    return torch.triu(torch.ones(seq_length, seq_length, dtype=torch.bool, device=device), 1)[None, None]
