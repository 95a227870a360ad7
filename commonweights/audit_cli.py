"""`commonweights audit verify|lookup|diff|explain|index` and `commonweights takedown add`.

Thin commands: each resolves its paths, calls one function of data_governance.audit (or .lookup,
.takedown_registry) and renders the result. Exit codes: 0 ok, 1 a check failed, 2 usage or input error.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from commonweights.errors import CommonweightsError, ConfigError, InputError


class AuditFailed(CommonweightsError):
    """A check failed (exit code 1); the message names the file and row."""

    exit_code = 1


audit_app = typer.Typer(no_args_is_help=True, help="Check a manifest: verify, look up, diff, explain.")
takedown_app = typer.Typer(no_args_is_help=True, help="The takedown registry that every curation applies.")

ManifestArg = Annotated[
    Path, typer.Argument(help="Manifest folder (RUN/curate/manifest) or a run folder that holds one.")
]


def manifest_dir(path: Path) -> Path:
    """Accept the manifest folder itself or a run folder above it."""
    for candidate in (path, path / "curate" / "manifest"):
        if (candidate / "manifest.json").is_file():
            return candidate
    raise InputError(
        f"{path}: no manifest.json here or in {path / 'curate' / 'manifest'} "
        "(pass RUN/curate/manifest of a finished curate stage)"
    )


def _is_json(ctx: typer.Context) -> bool:
    return str(ctx.obj["format"]) == "json"


def _out(ctx: typer.Context, result: dict[str, Any], title: str, human: str | None = None) -> None:
    from commonweights.cli import emit

    if human is not None and not _is_json(ctx):
        typer.echo(human)
        return
    emit(ctx, result, title)


@audit_app.command("verify")
def verify_cmd(
    ctx: typer.Context,
    manifest: ManifestArg,
    recheck: Annotated[
        int, typer.Option(help="Also re-read N random source records and re-assess them.")
    ] = 0,
    warc_root: Annotated[
        Path | None, typer.Option(help="Folder the manifest's source_file paths are under.")
    ] = None,
    robots: Annotated[
        Path | None,
        typer.Option(help="robots.txt snapshot the run used (default: robots.jsonl beside --warc-root)."),
    ] = None,
    takedowns: Annotated[Path | None, typer.Option(help="Takedown registry the run used, if any.")] = None,
    tdmrep: Annotated[
        Path | None, typer.Option(help="TDMRep /.well-known snapshot the run used (data.tdmrep), if any.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed that picks the records to recheck.")] = 0,
) -> None:
    """Recompute the digest and every part hash; re-decide every row from its evidence under the
    recorded policy; with --recheck N --warc-root DIR, re-read N records from the WARC files."""
    from data_governance import audit

    folder = manifest_dir(manifest)
    result = audit.verify(folder)
    if recheck:
        if warc_root is None:
            raise ConfigError("--recheck needs --warc-root DIR, the folder the source WARC files are in")
        policy = audit.recorded_policy(audit.load_meta(folder), str(folder / "manifest.json"))
        robots = robots or warc_root.parent / "robots.jsonl"
        assess = audit.curation_assessor(policy, robots, takedowns, warc_root, tdmrep)
        result["recheck"] = audit.recheck(folder, recheck, warc_root, assess, seed=seed)
        result["problems"] += result["recheck"].pop("problems")
        result["ok"] = not result["problems"]
    human = None
    if not _is_json(ctx):
        status = "OK" if result["ok"] else "FAILED"
        head = f"{status}: {folder} — {result['rows']} rows, digest {result['digest']}"
        if "recheck" in result:
            head += f"; {result['recheck']['rechecked']} records re-read from {warc_root}"
        human = "\n".join([head, *(p["text"] for p in result["problems"])])
    _out(ctx, result, "verify", human)
    if not result["ok"]:
        first = result["problems"][0]["text"]
        raise AuditFailed(f"audit verify: {len(result['problems'])} problem(s) in {folder}; first: {first}")


@audit_app.command("lookup")
def lookup_cmd(
    ctx: typer.Context,
    manifest: ManifestArg,
    url: Annotated[
        str | None, typer.Option(help="Exact URL (http/https, slash and www variants are tried).")
    ] = None,
    domain: Annotated[str | None, typer.Option(help="Domain; its subdomains are included.")] = None,
    doc_id: Annotated[str | None, typer.Option(help="32-hex document id.")] = None,
    data_order: Annotated[
        Path | None,
        typer.Option(
            help="A data-order log (train/data_order.jsonl or RELEASE/replay/data_order.jsonl): also say "
            "which training steps read the documents. Default: the run folder's, when there is one."
        ),
    ] = None,
) -> None:
    """Was this URL, domain or document used? Decision, reasons, licence, robots snapshot date, and
    the training steps that read it."""
    from data_governance.audit import lookup_answer

    if sum(x is not None for x in (url, domain, doc_id)) != 1:
        raise ConfigError("audit lookup: give exactly one of --url, --domain or --doc-id")
    folder = manifest_dir(manifest)
    answer = lookup_answer(folder, url=url, domain=domain, doc_id=doc_id)
    log = data_order or _run_data_order(folder)
    if log is not None:
        answer["training"] = training_steps(folder, log, answer, domain)
    _out(ctx, answer, "lookup")


def _run_data_order(folder: Path) -> Path | None:
    """RUN/train/data_order.jsonl beside RUN/curate/manifest, when it exists."""
    from training.data_order import FILE

    found = folder.parent.parent / "train" / FILE
    return found if folder.parent.name == "curate" and found.is_file() else None


def training_steps(folder: Path, log: Path, answer: dict[str, Any], domain: str | None) -> dict[str, Any]:
    """Which steps of the data-order log read the answer's kept documents (through its doc_id index)."""
    from data_governance.lookup import Index
    from training.data_order import steps_of

    if not log.is_file():
        raise InputError(f"{log}: data-order log not found (train/data_order.jsonl of the run)")
    if domain is not None:
        kept = Index.of_manifest(folder).kept_doc_ids(domain)
    else:
        kept = [d["doc_id"] for d in answer["documents"] if d["used"]]
    steps = steps_of(log, kept)
    every = sorted({s for found in steps.values() for s in found})
    return {
        "data_order": str(log),
        "documents_kept": len(kept),
        "documents_trained_on": sum(1 for found in steps.values() if found),
        "steps": every,
        "by_document": {d: found for d, found in sorted(steps.items()) if found} if domain is None else None,
    }


@audit_app.command("diff")
def diff_cmd(
    ctx: typer.Context,
    a: Annotated[Path, typer.Argument(help="Older manifest folder (or run folder).")],
    b: Annotated[Path, typer.Argument(help="Newer manifest folder (or run folder).")],
    limit: Annotated[int, typer.Option(help="Documents to list (all are counted).")] = 100,
) -> None:
    """Documents added, removed and changed from A to B, grouped by cause."""
    from data_governance.audit import diff

    result = diff(manifest_dir(a), manifest_dir(b), limit=limit)
    human = None
    if not _is_json(ctx):
        lines = [f"{a} → {b}: {result['totals']}"]
        if result["policy_changed"]:
            lines.append("policy changed: " + json.dumps(result["policy_changes"]))
        for cause, counts in result["by_cause"].items():
            lines.append(
                f"  {cause:16} added {counts['added']:6}  removed {counts['removed']:6}  "
                f"changed {counts['changed']:6}"
            )
        for d in result["documents"]:
            lines.append(f"  {d['change']:8} {d['cause']:16} {d['doc_id']} {d['url']}")
        human = "\n".join(lines)
    _out(ctx, result, "diff", human)


@audit_app.command("explain")
def explain_cmd(
    ctx: typer.Context,
    manifest: ManifestArg,
    doc_id: Annotated[str, typer.Option(help="32-hex document id (see `audit lookup`).")],
) -> None:
    """The full evidence for one document, readable by a person."""
    from data_governance.audit import explain, render_explain

    result = explain(manifest_dir(manifest), doc_id)
    _out(ctx, result, "explain", None if _is_json(ctx) else render_explain(result))


@audit_app.command("index")
def index_cmd(ctx: typer.Context, manifest: ManifestArg) -> None:
    """(Re)build the lookup index under MANIFEST/index/ from the parts."""
    from data_governance import audit, lookup

    folder = manifest_dir(manifest)
    meta = audit.load_meta(folder)
    built = lookup.build(folder, str((meta.get("digest") or {}).get("root")))
    _out(ctx, {k: built[k] for k in ("rows", "domains", "manifest_digest")}, "index built")


@takedown_app.command("add")
def takedown_add(
    ctx: typer.Context,
    registry: Annotated[Path, typer.Option(help="Takedown registry JSONL (data.takedowns of the config).")],
    reason: Annotated[str, typer.Option(help="Why, e.g. 'owner request 2026-11-20, ticket 42'.")],
    domain: Annotated[str | None, typer.Option(help="A domain (its subdomains are covered too).")] = None,
    url_prefix: Annotated[str | None, typer.Option(help="Every URL starting with this prefix.")] = None,
    doc_id: Annotated[str | None, typer.Option(help="One document id.")] = None,
    date: Annotated[str | None, typer.Option(help="ISO date of the request (default: today, UTC).")] = None,
) -> None:
    """Append a takedown to the registry; the next curation drops what it covers."""
    from data_governance.audit import add_takedown

    when = date or datetime.now(UTC).date().isoformat()
    _out(
        ctx,
        add_takedown(registry, reason, when, domain=domain, url_prefix=url_prefix, doc_id=doc_id),
        "takedown added",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
    app.add_typer(takedown_app, name="takedown")
