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


class RobotsFallback(StrEnum):
    allow = "allow"
    disallow = "disallow"


class Runner(StrEnum):
    in_process = "in-process"
    multi_process = "multi-process"


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
    min_words: int = Field(50, ge=0, description="Fewer words than this: dropped as quality:too_short.")
    max_words: int = Field(100_000, ge=1, description="More words than this: dropped as quality:too_long.")
    min_mean_word_length: float = Field(3.0, description="Gopher: mean word length lower bound.")
    max_mean_word_length: float = Field(10.0, description="Gopher: mean word length upper bound.")
    max_symbol_word_ratio: float = Field(0.1, description="Gopher: '#' and '...' per word.")
    min_alpha_word_ratio: float = Field(0.8, description="Gopher: share of words with a letter.")
    max_duplicate_line_fraction: float = Field(0.3, description="Gopher repetition: duplicate lines.")
    min_stop_words: int = Field(2, ge=0, description="Gopher: English stop words required.")


class GovernanceConfig(_Model):
    mode: GovernanceMode = Field(GovernanceMode.consent, description="consent or open-licence.")
    agents: list[str] = Field(
        default_factory=lambda: list(APERTUS_AGENTS),
        description="AI training user agents whose robots.txt verdict is honoured ('*' included).",
    )
    agents_version: str = Field("apertus-2025", description="Version label of the agent list.")
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


class CurateConfig(_Model):
    runner: Runner = Field(Runner.in_process, description="Beam runner: in-process or multi-process.")
    workers: int = Field(2, ge=1, description="Worker processes for the multi-process runner.")


class TokenizeConfig(_Model):
    vocab_size: int = Field(2048, ge=260, description="BPE vocabulary size (byte-level, incl. specials).")
    min_frequency: int = Field(2, ge=1, description="Minimum pair frequency for a BPE merge.")


class TrainConfig(_Model):
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


class ReleaseConfig(_Model):
    model_name: str = Field("commonweights-tiny", pattern=r"^[A-Za-z0-9._-]+$")
    version: str = Field("0.1.0")
    provider: str = Field("commonweights contributors")
    licence: str = Field("apache-2.0", description="Licence of the released weights (HF licence id).")


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


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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
        for key in ("robots", "takedowns"):
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
    for key in ("robots", "takedowns"):
        p = getattr(cfg.data, key)
        if p is not None and not p.exists():
            missing.append(f"data.{key} = {p}")
    if missing:
        raise ConfigError(f"{source}: input path not found: " + "; ".join(missing))
