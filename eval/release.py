"""The release stage: gather the run's outputs into one folder the public can verify.

    release/
      model/                       copy of hf/ (weights, config, tokenizer, export.json)
      README.md                    model card (Hugging Face front matter)
      config.json                  the resolved run config; its canonical-JSON sha256 is the config digest
      transparency/report.json     data, training, evaluation, decontamination and lineage in one document
      transparency/report.html     the same, readable offline (no external resources)
      transparency/report.schema.json  JSON Schema of report.json (versioned)
      data/manifest/               manifest.json + part-*.parquet: every row, so the digest is recomputable
      data/summary.json            what was kept and why the rest was not
      data/eu_summary.md, eu_summary.json, data_report.html, data/manifest/croissant.json   when present
      eval/                        results.json, samples_*.jsonl, checkpoints.json, decontamination.json
      replay/                      data_order.jsonl, tokens/ and the newest checkpoints: what
                                   `commonweights verify --replay` re-runs (docs/replay.md)
      statement.json               every file above with sha256 and size, plus the lineage
      statement.sig                Ed25519 signature of statement.json's bytes (when a key is set)
      SHA256SUMS                   every file but itself and statement.sig, `sha256sum -c` format

Built in `release.tmp/` and renamed into place when complete. The signing key comes from
`COMMONWEIGHTS_SIGNING_KEY` (never from the config); without one the release is unsigned, which
`commonweights verify` reports (exit 1 unless --allow-unsigned), or refused when
`release.require_signature` is set. Before the rename every file is scanned for the values of secret
environment variables (API keys, tokens, the signing key itself): a match fails the stage naming the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from commonweights.config import RunConfig, canonical_json
from commonweights.errors import InputError, SigningError, StageError
from data_governance.ids import sha256_file
from eval import sign
from eval.card import render_card
from eval.report import (
    SCHEMA_FILE,
    build_report,
    data_summary,
    model_section,
    opt_out_counts,
    render_html,
)

log = logging.getLogger(__name__)

SUMS_FILE = "SHA256SUMS"
STATEMENT_FILE = "statement.json"
SIGNATURE_FILE = "statement.sig"
STATEMENT_SCHEMA = "commonweights.release-statement"
STATEMENT_VERSION = 1
CONFIG_FILE = "config.json"
MANIFEST_DIR = "data/manifest"
# Files the governance stage may add to curate/manifest/, copied when present to their place in the
# release: croissant.json beside the Parquet parts its relative contentUrls name, the others to data/.
DATA_EXTRAS = {
    "croissant.json": MANIFEST_DIR,
    "eu_summary.md": "data",
    "eu_summary.json": "data",
    "data_report.html": "data",
}
EVAL_EXTRAS = ("checkpoints.json", "decontamination.json")
# Environment variables whose values must never appear in a released file.
SECRET_ENV = re.compile(r"(API_KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|PRIVATE_KEY)$", re.IGNORECASE)
MIN_SECRET_LEN = 8

MANIFEST_KEYS = (
    "schema_version",
    "policy",
    "policy_hash",
    "config_digest",
    "rows",
    "counts",
    "reasons",
    "licences",
    "domains",
    "digest",
)
TRAIN_KEYS = (
    "steps",
    "first_loss",
    "final_loss",
    "tokens",
    "parameters",
    "world_size",
    "tensor_parallel",
    "pipeline_parallel",
    "data_parallel",
    "wall_s",
    "iteration",
    "checkpoint",
)
METRIC_KEYS = ("step", "loss")
RESULTS_KEYS = ("lm_eval_version", "model", "batch_size", "limit", "seeds", "tasks")


@dataclass(frozen=True)
class Inputs:
    manifest_file: Path
    manifest: dict[str, Any]
    manifest_parts: list[Path]
    train: dict[str, Any]
    metrics: list[dict[str, Any]]
    hf: Path
    hf_config: dict[str, Any]
    export: dict[str, Any]
    results_file: Path
    results: dict[str, Any]
    checkpoints: list[dict[str, Any]]
    decontamination: dict[str, Any] | None


def _missing(path: Path, stage: str) -> InputError:
    return InputError(f"{path}: not found; run `commonweights {stage}` first")


def _parse(text: str, where: str, stage: str, keys: tuple[str, ...]) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: not valid JSON ({e.msg}); rerun `commonweights {stage}`") from None
    if not isinstance(doc, dict):
        raise InputError(f"{where}: expected a JSON object; rerun `commonweights {stage}`")
    absent = [k for k in keys if k not in doc]
    if absent:
        raise InputError(f"{where}: missing {', '.join(absent)}; rerun `commonweights {stage}`")
    return doc


def read_json(path: Path, stage: str, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    if not path.is_file():
        raise _missing(path, stage)
    return _parse(path.read_text(encoding="utf-8"), str(path), stage, keys)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise _missing(path, "train")
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [
        _parse(line, f"{path}:{n}", "train", METRIC_KEYS) for n, line in enumerate(lines, 1) if line.strip()
    ]
    if not rows:
        raise InputError(f"{path}: no training steps logged; rerun `commonweights train`")
    return rows


def manifest_parts(folder: Path, manifest: dict[str, Any]) -> list[Path]:
    """The Parquet parts manifest.json lists, each present with the recorded sha256."""
    listed = manifest.get("parts")
    if not isinstance(listed, list) or not listed:
        raise InputError(f"{folder / 'manifest.json'}: lists no Parquet parts; rerun `commonweights curate`")
    parts = []
    for entry in listed:
        path = folder / entry["path"]
        if not path.is_file():
            raise InputError(f"{path}: manifest part not found; rerun `commonweights curate`")
        if sha256_file(path) != entry["sha256"]:
            raise InputError(
                f"{path}: sha256 differs from manifest.json's; the manifest changed after curation, "
                "rerun `commonweights curate`"
            )
        parts.append(path)
    return parts


def read_inputs(cfg: RunConfig) -> Inputs:
    p = cfg.paths
    manifest_file = p.manifest / "manifest.json"
    results_file = p.eval / "results.json"
    manifest = read_json(manifest_file, "curate", MANIFEST_KEYS)
    checkpoints_file = p.eval / "checkpoints.json"
    decon_file = p.eval / "decontamination.json"
    return Inputs(
        manifest_file=manifest_file,
        manifest=manifest,
        manifest_parts=manifest_parts(p.manifest, manifest),
        train=read_json(p.train / "train.json", "train", TRAIN_KEYS),
        metrics=read_metrics(p.train / "metrics.jsonl"),
        hf=p.hf,
        hf_config=read_json(p.hf / "config.json", "export"),
        export=read_json(p.hf / "export.json", "export", ("checkpoint", "iteration")),
        results_file=results_file,
        results=read_json(results_file, "evaluate", RESULTS_KEYS),
        checkpoints=(
            read_json(checkpoints_file, "evaluate", ("checkpoints",))["checkpoints"]
            if checkpoints_file.is_file()
            else []
        ),
        decontamination=read_json(decon_file, "evaluate", ("tasks",)) if decon_file.is_file() else None,
    )


def release_files(root: Path, exclude: tuple[str, ...]) -> list[str]:
    """Relative paths of every file under `root` except `exclude`, sorted; refuses odd names."""
    out = []
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise StageError(f"{path}: symbolic links cannot be released; copy the file instead")
        if not path.is_file() or rel in exclude:
            continue
        if "\n" in rel or "\\" in rel:
            raise StageError(f"{path}: file name not representable in {SUMS_FILE}")
        out.append(rel)
    return sorted(out)


def sha256sums(root: Path) -> str:
    """`sha256sum` text for every file under `root` except SHA256SUMS and the signature, sorted."""
    return "".join(
        f"{sha256_file(root / rel)}  {rel}\n" for rel in release_files(root, (SUMS_FILE, SIGNATURE_FILE))
    )


def code_provenance() -> dict[str, Any]:
    """Package version, and the git commit (plus whether the tree had local changes) when the code
    runs from a git checkout that has one; null where that cannot be known."""
    try:
        version: str | None = metadata.version("commonweights")
    except metadata.PackageNotFoundError:
        version = None
    repo = Path(__file__).resolve().parents[1]
    commit, dirty = None, None
    if (repo / ".git").exists():
        try:
            head = subprocess.run(
                ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
            )
            if head.returncode == 0:
                commit = head.stdout.strip()
                diff = subprocess.run(
                    ["git", "-C", str(repo), "diff", "--quiet", "HEAD"], capture_output=True
                )
                dirty = diff.returncode != 0
        except FileNotFoundError:  # no git executable
            pass
    return {"code_version": version, "code_commit": commit, "code_dirty": dirty}


def lineage(cfg: RunConfig, inputs: Inputs, data_order: dict[str, Any] | None = None) -> dict[str, Any]:
    """The chain a verifier checks: weights → checkpoint → data digest → policy → config → code, and
    the data-order log's head (what `verify --replay` re-runs against)."""
    m, t = inputs.manifest, inputs.train
    return {
        "data_order": data_order,
        "manifest_digest": m["digest"]["root"],
        "manifest_digest_algorithm": m["digest"]["algorithm"],
        "manifest_rows": m["rows"],
        "policy_hash": m["policy_hash"],
        "config_digest": cfg.digest(),
        "curate_config_digest": m["config_digest"],
        "checkpoint": inputs.export["checkpoint"],
        "iteration": inputs.export["iteration"],
        "train_iteration": t["iteration"],
        "weights_sha256": {f.name: sha256_file(f) for f in sorted(inputs.hf.glob("*.safetensors"))},
        **code_provenance(),
    }


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


def secret_values(extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Name → value of every secret-looking environment variable (values of 8+ characters)."""
    found = {
        k: v.encode()
        for k, v in os.environ.items()
        if SECRET_ENV.search(k) and len(v.strip()) >= MIN_SECRET_LEN
    }
    return {**found, **(extra or {})}


def scan_for_secrets(root: Path, secrets: dict[str, bytes]) -> None:
    """Fail naming the file (and the variable, never its value) if any released file holds a secret."""
    if not secrets:
        return
    for rel in release_files(root, ()):
        data = (root / rel).read_bytes()
        for name, value in secrets.items():
            if value in data:
                raise StageError(
                    f"release/{rel} contains the value of {name}: a secret would be published; find where "
                    "it entered that file (config, logs, eval outputs) and remove it, then rerun the release"
                )


def build_statement(root: Path, release_meta: dict[str, Any], lineage_: dict[str, Any], signer: Any) -> bytes:
    """statement.json's bytes: every file under `root` (but the statement, signature and SHA256SUMS)."""
    files = {
        rel: {"sha256": sha256_file(root / rel), "size": (root / rel).stat().st_size}
        for rel in release_files(root, (STATEMENT_FILE, SIGNATURE_FILE, SUMS_FILE))
    }
    doc = {
        "schema": STATEMENT_SCHEMA,
        "schema_version": STATEMENT_VERSION,
        "release": release_meta,
        "signer": None if signer is None else {"algorithm": sign.ALGORITHM, "key_id": sign.key_id(signer)},
        "lineage": lineage_,
        "files": files,
    }
    return (json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def _signing_key(cfg: RunConfig, key_path: Path | None) -> tuple[Any, bytes]:
    """The private key (or None) and its PEM bytes (for the secret scan)."""
    path = sign.signing_key_path(key_path)
    if path is None:
        if cfg.release.require_signature:
            raise SigningError(
                f"release.require_signature is set but no signing key was given: set {sign.KEY_ENV} to a "
                "private key made with `commonweights keygen KEY`"
            )
        return None, b""
    key = sign.load_private(path)
    return key, path.read_bytes()


def copy_inputs(cfg: RunConfig, inputs: Inputs, report: dict[str, Any], tmp: Path) -> None:
    p = cfg.paths
    shutil.copytree(inputs.hf, tmp / "model")
    _write_json(tmp / CONFIG_FILE, cfg.to_record())
    manifest_dir = tmp / MANIFEST_DIR
    manifest_dir.mkdir(parents=True)
    shutil.copyfile(inputs.manifest_file, manifest_dir / "manifest.json")
    for part in inputs.manifest_parts:
        shutil.copyfile(part, manifest_dir / part.name)
    _write_json(tmp / "data" / "summary.json", data_summary(inputs.manifest))
    for name, folder in DATA_EXTRAS.items():
        if (p.manifest / name).is_file():
            shutil.copyfile(p.manifest / name, tmp / folder / name)
    (tmp / "eval").mkdir()
    shutil.copyfile(inputs.results_file, tmp / "eval" / "results.json")
    for name in EVAL_EXTRAS:
        if (p.eval / name).is_file():
            shutil.copyfile(p.eval / name, tmp / "eval" / name)
    for samples in sorted(p.eval.glob("samples_*.jsonl")):
        shutil.copyfile(samples, tmp / "eval" / samples.name)
    _write_json(tmp / "transparency" / "report.json", report)
    shutil.copyfile(SCHEMA_FILE, tmp / "transparency" / SCHEMA_FILE.name)
    (tmp / "transparency" / "report.html").write_text(render_html(report), encoding="utf-8")
    (tmp / "README.md").write_text(render_card(report, cfg.release), encoding="utf-8")


def run(cfg: RunConfig, key_path: Path | None = None) -> dict[str, Any]:
    """Build `release/` from the manifest, training summary, HF export and evaluation results; sign it
    when a key is given (`key_path`, else $COMMONWEIGHTS_SIGNING_KEY)."""
    inputs = read_inputs(cfg)
    key, key_pem = _signing_key(cfg, key_path)
    final = cfg.paths.release
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    from training.replay import pack

    lin = lineage(cfg, inputs, pack(cfg, tmp))
    report = build_report(
        model=model_section(cfg.release, inputs.hf_config),
        manifest=inputs.manifest,
        opt_outs=opt_out_counts(inputs.manifest_parts),
        train_config=cfg.train.model_dump(mode="json"),
        train=inputs.train,
        metrics=inputs.metrics,
        results=inputs.results,
        checkpoints=inputs.checkpoints,
        decontamination=inputs.decontamination,
        lineage=lin,
        signed=key is not None,
    )
    copy_inputs(cfg, inputs, report, tmp)

    meta = {"name": cfg.release.model_name, "version": cfg.release.version, "provider": cfg.release.provider}
    statement = build_statement(tmp, meta, lin, None if key is None else key.public_key())
    (tmp / STATEMENT_FILE).write_bytes(statement)
    if key is not None:
        (tmp / SIGNATURE_FILE).write_bytes(sign.sign(key, statement))
    sums = sha256sums(tmp)
    (tmp / SUMS_FILE).write_text(sums, encoding="utf-8")
    scan_for_secrets(tmp, secret_values({sign.KEY_ENV: key_pem} if key_pem else None))

    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    files = len(json.loads(statement)["files"]) + 1 + (key is not None) + 1
    log.info("release: %d files in %s (%s)", files, final, "signed" if key else "UNSIGNED")
    return {
        "path": str(final),
        "files": files,
        "signed": key is not None,
        "key_id": sign.key_id(key.public_key()) if key is not None else None,
        "statement_sha256": hashlib.sha256(statement).hexdigest(),
        "manifest_digest": lin["manifest_digest"],
    }


def config_digest(record: dict[str, Any]) -> str:
    """What `RunConfig.digest` computes, from a config record (used by verify on config.json)."""
    return hashlib.sha256(canonical_json(record).encode()).hexdigest()


def sign_release(release: Path, key_path: Path | None = None) -> dict[str, Any]:
    """Sign (or re-sign) a finished release with the key at `key_path` (else $COMMONWEIGHTS_SIGNING_KEY):
    its files must still match the statement; the statement's signer, statement.sig and SHA256SUMS are
    rewritten."""
    from eval.verify import verify

    path = sign.signing_key_path(key_path)
    if path is None:
        raise SigningError(f"no signing key: pass --key PRIVATE_KEY or set {sign.KEY_ENV}")
    key = sign.load_private(path)
    v = verify(release, None, allow_unsigned=True) if not (release / SIGNATURE_FILE).exists() else None
    if v is not None and not v.ok:
        file, problem = v.problems[0]
        raise SigningError(f"{release / file}: {problem}; refusing to sign a release that does not verify")
    if v is None:
        raise SigningError(
            f"{release / SIGNATURE_FILE}: the release is already signed; it cannot be re-signed"
        )
    doc = json.loads((release / STATEMENT_FILE).read_text(encoding="utf-8"))
    doc["signer"] = {"algorithm": sign.ALGORITHM, "key_id": sign.key_id(key.public_key())}
    statement = (json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()
    (release / STATEMENT_FILE).write_bytes(statement)
    (release / SIGNATURE_FILE).write_bytes(sign.sign(key, statement))
    (release / SUMS_FILE).write_text(sha256sums(release), encoding="utf-8")
    return {"path": str(release), "signed": True, "key_id": doc["signer"]["key_id"]}
