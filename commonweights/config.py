"""Typed run config: one pydantic model per YAML section, mirroring the file one to one.

`load(path, overrides)` reads a YAML file, applies dot-path overrides (`train.steps=10`), resolves
relative paths against the current directory and validates everything before any work starts.
`RunConfig.paths` gives the run folder layout that every stage reads and writes (docs/run-layout.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from commonweights.errors import ConfigError

# The agents Apertus honoured retroactively (Apertus tech report, 2025), plus the catch-all group.
APERTUS_AGENTS: tuple[str, ...] = (
    "AI2Bot",
    "Applebot-Extended",
    "Bytespider",
    "CCBot",
    "ClaudeBot",
    "cohere-training-data-crawler",
    "Diffbot",
    "FacebookBot",
    "Meta-ExternalAgent",
    "Google-Extended",
    "GPTBot",
    "PanguBot",
    "*",
)

# Open Definition 2.1 conformant licences, as SPDX ids (prefix match on the family, any version).
OPEN_DEFINITION_ALLOWLIST: tuple[str, ...] = ("CC0-1.0", "CC-BY", "CC-BY-SA", "CC-PDM-1.0")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class GovernanceMode(StrEnum):
    consent = "consent"
    open_licence = "open-licence"


class AgentList(StrEnum):
    apertus = "apertus"
    ai_robots_txt = "ai-robots-txt"
    custom = "custom"


class RobotsFallback(StrEnum):
    allow = "allow"
    disallow = "disallow"


class Runner(StrEnum):
    in_process = "in-process"
    multi_process = "multi-process"
    dask = "dask"  # Beam's DaskRunner on a dask.distributed cluster (curate.dask_address)
    external = "external"  # any Beam runner, flags in curate.pipeline_args (Flink, Spark, Dataflow)


class QualityMode(StrEnum):
    fast = "fast"  # our Gopher-style checks (no spaCy), thresholds below
    datatrove = "datatrove"  # datatrove's Gopher repetition + quality, C4 and FineWeb filters


class WandbMode(StrEnum):
    offline = "offline"
    online = "online"
    disabled = "disabled"


class Executor(StrEnum):
    local = "local"
    slurm = "slurm"


class SampleConfig(_Model):
    seed: int = Field(0, description="Seed of the generated sample crawl; same seed, same bytes.")
    pages: int = Field(240, ge=200, description="HTML pages to generate (at least 200).")
    domains: int = Field(24, ge=20, description="Domains to spread them over (at least 20).")
    snapshot_date: str = Field("2026-11-01", description="Date recorded for the robots.txt snapshot.")


class DataConfig(_Model):
    sample: SampleConfig | None = Field(
        None, description="Generate the embedded sample crawl into the run folder and use it as input."
    )
    warc: list[Path] = Field(
        default_factory=list, description="WARC/WET files (or directories of them) to curate."
    )
    robots: Path | None = Field(None, description="robots.txt snapshot (JSONL, one line per domain).")
    takedowns: Path | None = Field(None, description="Takedown registry (JSONL); applied to every run.")
    source_name: str | None = Field(
        None,
        description="Public dataset the WARC files come from (e.g. 'Common Crawl CC-MAIN-2025-26'), for the "
        "EU AI Act training-content summary; None: the provider crawled them itself.",
    )
    crawler: str | None = Field(
        None,
        description="Crawler that fetched the WARC files (user agent and operator, e.g. 'CCBot/2.0 "
        "(Common Crawl)'), for the EU summary and Croissant.",
    )
    tdmrep: Path | None = Field(
        None,
        description="TDMRep /.well-known/tdmrep.json snapshot (JSONL, one line per domain: domain, "
        "fetched_at, status, body); without it only the header and meta carriers are seen.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if self.sample is None and not self.warc:
            raise ValueError("set either data.sample (embedded sample crawl) or data.warc (WARC paths)")
        if self.sample is not None and self.warc:
            raise ValueError("data.sample and data.warc are exclusive: keep one of them")
        if self.warc and self.robots is None:
            raise ValueError("data.warc needs data.robots, the robots.txt snapshot of the crawled domains")
        return self


class QualityConfig(_Model):
    mode: QualityMode = Field(
        QualityMode.fast,
        description="fast (default): resiliparse extraction and our spaCy-free implementation of the "
        "blocks below (data_governance/quality.py); datatrove (quality-first reference): trafilatura "
        "extraction and datatrove's GopherRepetition, GopherQuality, C4Quality and FineWebQuality filters "
        "with their published defaults (the threshold fields below apply to the fast mode only).",
    )
    blocks: list[str] = Field(
        default_factory=lambda: ["gopher_repetition", "gopher_quality", "c4", "fineweb"],
        description="Fast mode: rule blocks applied, in this order (FineWeb's): gopher_repetition, "
        "gopher_quality, c4, fineweb.",
    )
    min_words: int = Field(50, ge=0, description="Gopher: fewer non-symbol words: gopher_short_doc.")
    max_words: int = Field(100_000, ge=1, description="Gopher: more non-symbol words: gopher_long_doc.")
    min_mean_word_length: float = Field(3.0, description="Gopher: mean word length lower bound.")
    max_mean_word_length: float = Field(10.0, description="Gopher: mean word length upper bound.")
    max_symbol_word_ratio: float = Field(0.1, description="Gopher: '#', and apart '...', per word.")
    max_bullet_lines_ratio: float = Field(0.9, description="Gopher: lines starting with a bullet or '-'.")
    max_ellipsis_lines_ratio: float = Field(0.3, description="Gopher: lines ending with an ellipsis.")
    min_alpha_word_ratio: float = Field(0.8, description="Gopher: share of words with a letter.")
    min_stop_words: int = Field(2, ge=0, description="Gopher: distinct English stop words required.")
    max_duplicate_line_fraction: float = Field(0.3, description="Gopher repetition: duplicate lines.")
    max_duplicate_paragraph_fraction: float = Field(0.3, description="Gopher repetition: repeated paras.")
    max_duplicate_line_char_fraction: float = Field(
        0.2, description="Gopher repetition: characters in duplicate lines."
    )
    max_duplicate_paragraph_char_fraction: float = Field(
        0.2, description="Gopher repetition: characters in duplicate paragraphs."
    )
    top_ngram_char_fractions: dict[int, float] = Field(
        default_factory=lambda: {2: 0.2, 3: 0.18, 4: 0.16},
        description="Gopher repetition: n → highest share of characters in the most frequent word n-gram.",
    )
    duplicate_ngram_char_fractions: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        description="Gopher repetition: n → highest share of characters in repeated word n-grams.",
    )
    c4_min_sentences: int = Field(5, ge=0, description="C4: sentences required in the kept lines.")
    c4_min_words_per_line: int = Field(3, ge=0, description="C4: lines with fewer words are removed.")
    c4_max_word_length: int = Field(1000, ge=1, description="C4: lines with a longer word are removed.")
    c4_rewrite: bool = Field(
        True,
        description="C4: keep only the lines C4 keeps (as FineWeb and the reference mode do); false: the "
        "line filter only counts sentences and the text is kept whole.",
    )
    fineweb_min_line_punct_ratio: float = Field(0.12, description="FineWeb: lines ending in punctuation.")
    fineweb_max_short_line_ratio: float = Field(0.67, description="FineWeb: lines of at most 30 characters.")
    fineweb_max_char_dup_ratio: float = Field(0.01, description="FineWeb: characters in duplicate lines.")
    fineweb_max_list_ratio: float = Field(0.3, description="FineWeb: line breaks per word.")
    extract_timeout_s: float = Field(
        10.0,
        ge=0,
        description="datatrove mode: time limit per page for trafilatura (0: none); a page over it is "
        "quarantined as malformed:extract_timeout, never dropped silently.",
    )

    @model_validator(mode="after")
    def _known_blocks(self) -> QualityConfig:
        known = ("gopher_repetition", "gopher_quality", "c4", "fineweb")
        bad = [b for b in self.blocks if b not in known]
        if bad or len(set(self.blocks)) != len(self.blocks):
            raise ValueError(
                f"governance.quality.blocks: unknown or repeated {bad or self.blocks}; "
                f"known: {', '.join(known)}"
            )
        return self


class GovernanceConfig(_Model):
    mode: GovernanceMode = Field(GovernanceMode.consent, description="consent or open-licence.")
    agents_list: AgentList = Field(
        AgentList.apertus,
        description="Shipped agent list that sets `agents` and `agents_version` "
        "(data_governance/agents_v1.json): apertus (the 12 agents Apertus honoured, plus *), "
        "ai-robots-txt (every AI training crawler in ai.robots.txt, plus *), or custom (as written).",
    )
    agents: list[str] = Field(
        default_factory=lambda: list(APERTUS_AGENTS),
        description="AI training user agents whose robots.txt verdict is honoured ('*' included).",
    )
    agents_version: str = Field("apertus-2025", description="Version label of the agent list.")

    @model_validator(mode="before")
    @classmethod
    def _agent_list(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        name = str(data.get("agents_list", AgentList.apertus.value))
        if name == AgentList.custom.value:
            return data
        from data_governance import agents as shipped

        agents, version = shipped.agents(name), shipped.version(name)
        if data.get("agents", agents) != agents or data.get("agents_version", version) != version:
            raise ValueError(
                f"governance.agents and agents_version come from agents_list {name!r}; "
                "set governance.agents_list: custom to give your own"
            )
        return {**data, "agents": agents, "agents_version": version}
    licence_allowlist: list[str] = Field(
        default_factory=lambda: list(OPEN_DEFINITION_ALLOWLIST),
        description="SPDX ids (or family prefixes such as CC-BY) kept in open-licence mode.",
    )
    robots_4xx: RobotsFallback = Field(RobotsFallback.allow, description="RFC 9309: 4xx means allow all.")
    robots_5xx: RobotsFallback = Field(
        RobotsFallback.disallow, description="RFC 9309: 5xx or unreachable means disallow all."
    )
    robots_missing: RobotsFallback = Field(
        RobotsFallback.disallow, description="No snapshot for a domain: treated like unreachable."
    )
    quality: QualityConfig = Field(default_factory=QualityConfig)
    redact_pii: bool = Field(True, description="Replace emails, phone numbers and public IPs in kept text.")
    dedup_exact: bool = Field(True, description="Drop exact duplicates of the extracted text.")
    languages: list[str] = Field(
        default_factory=list,
        description="Keep only text identified (fastText lid.176, offline) as one of these ISO 639 codes, "
        "e.g. [en, de]; empty: no language filter. Others are dropped as language:<code>.",
    )
    min_language_score: float = Field(
        0.65, ge=0, le=1, description="Lowest lid.176 probability that counts as an identification."
    )
    decontaminate: list[str] = Field(
        default_factory=list,
        description="Evaluation tasks whose items must not appear in the kept text (local suite: "
        "commonweights_cloze, commonweights_paragraphs); a match drops it as contaminated:<task>.",
    )
    decontam_ngram: int = Field(
        13, ge=5, description="Word n-gram length of the overlap test (GPT-3 used 13); shorter items "
        "count whole if they have at least 8 words.",
    )


class CurateConfig(_Model):
    runner: Runner = Field(Runner.in_process, description="Beam runner: in-process or multi-process.")
    workers: int = Field(2, ge=1, description="Worker processes for the multi-process runner.")
    shards: int | None = Field(
        None,
        ge=1,
        description="Part files of the manifest and of the documents (by doc_id, not by worker); None: one "
        "per 64 MiB of WARC input (so more parts, and parallel writers, as the input grows).",
    )
    dask_address: str | None = Field(
        None, description="Scheduler of the dask.distributed cluster for runner: dask (tcp://host:8786)."
    )
    pipeline_args: list[str] = Field(
        default_factory=list,
        description="More Beam pipeline flags; with runner: external they must name the runner "
        "(--runner=FlinkRunner ..., see docs/runners.md).",
    )

    @model_validator(mode="after")
    def _runner_flags(self) -> CurateConfig:
        if self.runner == Runner.dask and not self.dask_address:
            raise ValueError("curate.runner=dask needs curate.dask_address (the scheduler, tcp://host:8786)")
        named = any(a.startswith("--runner") for a in self.pipeline_args)
        if self.runner == Runner.external and not named:
            raise ValueError("curate.runner=external needs --runner=... in curate.pipeline_args")
        if self.runner != Runner.external and named:
            raise ValueError(
                f"curate.pipeline_args names a runner but curate.runner={self.runner.value}; "
                "set curate.runner: external"
            )
        return self


class TokenizeConfig(_Model):
    vocab_size: int = Field(2048, ge=260, description="BPE vocabulary size (byte-level, incl. specials).")
    min_frequency: int = Field(2, ge=1, description="Minimum pair frequency for a BPE merge.")


class LrSchedule(StrEnum):
    cosine = "cosine"
    wsd = "wsd"


class OptimizerName(StrEnum):
    adam = "adam"
    sgd = "sgd"


# Model shapes by name (`train.preset`); keys set explicitly in the config win over the preset's.
# 8b follows Apertus-8B's depth, width and head layout with a Llama SwiGLU MLP of Llama-3-8B's width.
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(num_layers=2, hidden_size=128, num_attention_heads=4, num_query_groups=None, seq_length=128),
    "125m": dict(
        num_layers=12, hidden_size=768, num_attention_heads=12, num_query_groups=None, seq_length=2048
    ),
    "1b": dict(
        num_layers=16, hidden_size=2048, num_attention_heads=32, num_query_groups=8,
        ffn_hidden_size=8192, seq_length=4096, tie_embeddings=True,
    ),
    "8b": dict(
        num_layers=32, hidden_size=4096, num_attention_heads=32, num_query_groups=8,
        ffn_hidden_size=14336, seq_length=4096,
    ),
}


class TrainConfig(_Model):
    preset: str | None = Field(
        None, description="Model shape by name: tiny, 125m, 1b or 8b; explicit train.* keys override it."
    )
    num_layers: int = Field(2, ge=1)
    hidden_size: int = Field(128, ge=8)
    num_attention_heads: int = Field(4, ge=1)
    num_query_groups: int | None = Field(None, description="Grouped-query attention; None means MHA.")
    ffn_hidden_size: int | None = Field(
        None, description="SwiGLU width; None means 8/3 * hidden, rounded up to a multiple of 64."
    )
    tie_embeddings: bool = Field(False, description="Share the input embedding and output layer weights.")
    seq_length: int = Field(128, ge=8)
    micro_batch_size: int = Field(8, ge=1)
    global_batch_size: int = Field(8, ge=1)
    steps: int = Field(60, ge=1, description="Optimizer steps to run.")
    async_save: bool | None = Field(
        None,
        description="Write checkpoints in a background process while training goes on (megatron's async "
        "dist_checkpointing); None: on GPUs only.",
    )
    stop_after: int | None = Field(
        None,
        ge=1,
        description="Stop with a checkpoint after this step, short of train.steps (the LR schedule and "
        "data order still follow train.steps); a later run without it continues. Replay uses it.",
    )
    lr: float = Field(3e-3, gt=0)
    min_lr: float = Field(3e-4, ge=0)
    warmup_steps: int = Field(5, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    clip_grad: float = Field(1.0, gt=0, description="Global gradient-norm clip.")
    seed: int = Field(1234)
    save_interval: int = Field(20, ge=1, description="Checkpoint every N steps (and at the end).")
    keep_last: int = Field(2, ge=1, description="Checkpoints kept on disk.")
    tensor_parallel: int = Field(1, ge=1)
    pipeline_parallel: int = Field(1, ge=1)
    nproc: int = Field(1, ge=1, description="Processes on the local executor (world size).")
    wandb: WandbMode = Field(WandbMode.offline)
    wandb_project: str = Field("commonweights")
    lr_schedule: LrSchedule = Field(
        LrSchedule.cosine, description="cosine: warmup then cosine to min_lr; wsd: warmup, stable, decay."
    )
    wsd_decay_fraction: float = Field(
        0.2, gt=0, le=1, description="WSD: share of the steps spent decaying linearly to min_lr at the end."
    )
    optimizer: OptimizerName = Field(
        OptimizerName.adam, description="Megatron optimizer: adam (AdamW) or sgd."
    )
    distributed_optimizer: bool = Field(
        False, description="Megatron DistributedOptimizer: optimizer state sharded over data-parallel ranks."
    )
    bf16: bool = Field(False, description="bf16 weights and compute with float32 master weights (GPUs).")
    fused_kernels: bool = Field(
        True,
        description="GPUs: SwiGLU and the cross-entropy loss as megatron's torch.compile-built fusions "
        "(off: plain torch ops, e.g. where torch.compile fails on a cluster). CPUs always use plain ops.",
    )
    goldfish_k: int | None = Field(
        None, ge=2, description="Goldfish loss: drop about 1/k of token positions from the loss (None: off)."
    )
    goldfish_h: int = Field(
        13, ge=1, description="Goldfish loss: tokens hashed to choose a dropped position."
    )
    watts_per_device: float = Field(
        700.0, gt=0, description="Average power per GPU (or per CPU process) for the energy estimate, W."
    )
    pue: float = Field(
        1.2, ge=1, description="Data-centre power usage effectiveness for the energy estimate."
    )
    grid_gco2_per_kwh: float = Field(
        400.0, ge=0, description="Grid carbon intensity for the CO2 estimate, gCO2e per kWh."
    )

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("preset") is None:
            return data
        name = data["preset"]
        if name not in TRAIN_PRESETS:
            raise ValueError(f"train.preset={name!r} is not one of {', '.join(TRAIN_PRESETS)}")
        return {**TRAIN_PRESETS[name], **data}

    @model_validator(mode="after")
    def _shapes(self) -> TrainConfig:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"train.hidden_size={self.hidden_size} is not divisible by "
                f"train.num_attention_heads={self.num_attention_heads}"
            )
        if self.num_attention_heads % self.tensor_parallel:
            raise ValueError(
                f"train.num_attention_heads={self.num_attention_heads} is not divisible by "
                f"train.tensor_parallel={self.tensor_parallel}"
            )
        groups = self.num_query_groups or self.num_attention_heads
        if self.num_attention_heads % groups or groups % self.tensor_parallel:
            raise ValueError(
                f"train.num_query_groups={groups} must divide num_attention_heads="
                f"{self.num_attention_heads} and be divisible by tensor_parallel={self.tensor_parallel}"
            )
        if self.num_layers % self.pipeline_parallel:
            raise ValueError(
                f"train.num_layers={self.num_layers} is not divisible by "
                f"train.pipeline_parallel={self.pipeline_parallel}"
            )
        model_parallel = self.tensor_parallel * self.pipeline_parallel
        if self.nproc % model_parallel:
            raise ValueError(
                f"train.nproc={self.nproc} is not a multiple of tensor_parallel*pipeline_parallel="
                f"{model_parallel}"
            )
        dp = self.nproc // model_parallel
        if self.global_batch_size % (self.micro_batch_size * dp):
            raise ValueError(
                f"train.global_batch_size={self.global_batch_size} is not divisible by "
                f"micro_batch_size*data_parallel={self.micro_batch_size}*{dp}"
            )
        if self.min_lr > self.lr:
            raise ValueError(f"train.min_lr={self.min_lr} is above train.lr={self.lr}")
        return self

    @property
    def data_parallel(self) -> int:
        return self.nproc // (self.tensor_parallel * self.pipeline_parallel)


class EvalConfig(_Model):
    suites: list[str] = Field(default_factory=lambda: ["local"], description="lm-eval suites to run.")
    limit: int | None = Field(None, ge=1, description="Examples per task (None: all).")
    batch_size: int = Field(8, ge=1)
    checkpoints: bool = Field(
        True, description="Also evaluate every kept intermediate checkpoint (the report's eval curve)."
    )
    decontamination_ngram: int = Field(
        13, ge=3, le=50, description="Word n-gram length of the task/training-corpus overlap report."
    )


class ReleaseConfig(_Model):
    model_name: str = Field("commonweights-tiny", pattern=r"^[A-Za-z0-9._-]+$")
    version: str = Field("0.1.0")
    provider: str = Field("commonweights contributors")
    licence: str = Field("apache-2.0", description="Licence of the released weights (HF licence id).")
    require_signature: bool = Field(
        False, description="Fail the release when no signing key is set (COMMONWEIGHTS_SIGNING_KEY)."
    )
    replay_checkpoints: int = Field(
        2,
        ge=0,
        description="Ship the newest N complete checkpoints (optimizer and RNG included) with the data-order "
        "log, so anyone can replay the steps between them (`commonweights verify --replay`); 0 ships none.",
    )
    replay_tokens: bool = Field(
        True,
        description="Ship the token files (.bin/.idx, doc_id table) for replay; turn off when the corpus is "
        "too large to publish: replayers then pass --data with their copy.",
    )


class SlurmConfig(_Model):
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str = Field("00:30:00", description="Walltime per stage job (HH:MM:SS).")
    cpus_per_task: int = Field(1, ge=1)
    mem: str | None = Field(None, description="Memory per node, e.g. '8G'; None: cluster default.")
    gpus_per_node: int = Field(0, ge=0)
    nodes: int = Field(1, ge=1, description="Nodes for the training job.")
    exclusive: bool = False
    extra: dict[str, str] = Field(default_factory=dict, description="More #SBATCH directives.")
    setup: list[str] = Field(
        default_factory=list, description="Shell lines run before each stage (module load, env)."
    )
    signal_seconds: int = Field(
        120, ge=10, description="Training gets SIGUSR1 this long before its time limit, to checkpoint."
    )
    max_requeues: int = Field(
        3, ge=0, description="Times a failed training job (e.g. a killed process) requeues itself."
    )
    switches: int | None = Field(
        None, ge=1, description="--switches: keep the training nodes under this many leaf switches."
    )
    switches_max_wait: str = Field("01:00:00", description="--switches: longest wait for that placement.")
    container_image: str | None = Field(
        None, description="pyxis/enroot image for the training tasks (srun --container-image)."
    )
    container_mounts: list[str] = Field(
        default_factory=list, description="srun --container-mounts entries, e.g. /scratch:/scratch."
    )
    nccl_env: dict[str, str] = Field(
        default_factory=dict,
        description="NCCL settings exported to training tasks, e.g. {NCCL_IB_HCA: mlx5, NCCL_DEBUG: WARN}.",
    )


class RunConfig(_Model):
    name: str = Field(..., pattern=r"^[A-Za-z0-9._-]+$", description="Run name (used in job names).")
    dir: Path = Field(..., description="Run folder; every stage writes under it.")
    data: DataConfig
    governance: GovernanceConfig = Field(default_factory=GovernanceConfig)
    curate: CurateConfig = Field(default_factory=CurateConfig)
    tokenize: TokenizeConfig = Field(default_factory=TokenizeConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    release: ReleaseConfig = Field(default_factory=ReleaseConfig)
    slurm: SlurmConfig = Field(default_factory=SlurmConfig)

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.dir)

    def to_record(self) -> dict[str, Any]:
        """JSON-safe record of the resolved config (written next to every output)."""
        return self.model_dump(mode="json")

    def digest(self) -> str:
        return hashlib.sha256(canonical_json(self.to_record()).encode()).hexdigest()

    def write_resolved(self) -> Path:
        """Write the resolved config to the run folder (what stage jobs and Slurm read)."""
        path = self.paths.resolved_config
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(self.to_record(), sort_keys=False))
        tmp.replace(path)
        return path


def policy_record(g: GovernanceConfig) -> dict[str, Any]:
    """The governance policy as hashed into every manifest row."""
    return {"policy_version": 1, **g.model_dump(mode="json")}


def policy_hash(g: GovernanceConfig) -> str:
    return hashlib.sha256(canonical_json(policy_record(g)).encode()).hexdigest()


# One encoder for every call: `json.dumps` with options builds a new one each time (~2 µs of the ~14 µs
# a manifest row's digest leaf takes).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(obj: Any) -> str:
    return _CANONICAL.encode(obj)


@dataclass(frozen=True)
class RunPaths:
    """Where each stage reads and writes, under the run folder (documented in docs/run-layout.md)."""

    root: Path

    @property
    def resolved_config(self) -> Path:
        return self.root / "config.resolved.yaml"

    @property
    def log(self) -> Path:
        return self.root / "run.log"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def crawl(self) -> Path:
        return self.root / "crawl"

    @property
    def curate(self) -> Path:
        return self.root / "curate"

    @property
    def documents(self) -> Path:
        return self.curate / "documents"

    @property
    def manifest(self) -> Path:
        return self.curate / "manifest"

    @property
    def tokens(self) -> Path:
        return self.root / "tokens"

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def checkpoints(self) -> Path:
        return self.train / "checkpoints"

    @property
    def hf(self) -> Path:
        return self.root / "hf"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def release(self) -> Path:
        return self.root / "release"

    @property
    def slurm(self) -> Path:
        return self.root / "slurm"


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {key!r} is not a section")
        node = child
    node[keys[-1]] = value


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Make the config's paths absolute, so stage jobs on other nodes read the same files."""

    def absolute(p: Any) -> Any:
        return str((base / p).resolve()) if isinstance(p, str) else p

    data["dir"] = absolute(data.get("dir"))
    section = data.get("data")
    if isinstance(section, dict):
        for key in ("robots", "takedowns", "tdmrep"):
            if section.get(key) is not None:
                section[key] = absolute(section[key])
        if isinstance(section.get("warc"), list):
            section["warc"] = [absolute(p) for p in section["warc"]]


def _format_validation(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid config"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = (
            "unknown key (check spelling; see configs/tiny.yaml)"
            if e["type"] == "extra_forbidden"
            else e["msg"]
        )
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def load(path: Path | str, overrides: list[str] | None = None, base: Path | None = None) -> RunConfig:
    """Load and validate a run config; relative paths resolve against `base` (default: the CWD)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (try configs/tiny.yaml)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. train.steps=10")
        key, raw = item.split("=", 1)
        _set_dotted(data, key.strip(), yaml.safe_load(raw))
    _resolve_paths(data, (base or Path.cwd()))
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_validation(path, e)) from None
    check_inputs(cfg, path)
    return cfg


def check_inputs(cfg: RunConfig, source: Path) -> None:
    """Fail before any work starts if an input file the config names does not exist."""
    missing: list[str] = []
    for i, p in enumerate(cfg.data.warc):
        if not p.exists():
            missing.append(f"data.warc[{i}] = {p}")
    for key in ("robots", "takedowns", "tdmrep"):
        p = getattr(cfg.data, key)
        if p is not None and not p.exists():
            missing.append(f"data.{key} = {p}")
    if missing:
        raise ConfigError(f"{source}: input path not found: " + "; ".join(missing))
