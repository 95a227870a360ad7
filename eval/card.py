"""The model card (README.md): Hugging Face YAML front matter plus a body written from the report.

The front matter is built with huggingface_hub's `ModelCardData`, so the Hub (and `metadata_load`)
read it as they read any model card; `model-index` carries every finite evaluation metric.
Pure: the transparency report and release config in, Markdown out.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from commonweights.config import ReleaseConfig

TASK_TYPE = "text-generation"


def eval_results(evaluation: dict[str, Any]) -> list[EvalResult]:
    out = []
    for task, result in evaluation["tasks"].items():
        for metric, value in result["metrics"].items():
            if value is None or metric.endswith("_stderr"):
                continue
            out.append(
                EvalResult(
                    task_type=TASK_TYPE,
                    dataset_type=task,
                    dataset_name=task,
                    dataset_split="test",
                    metric_type=metric,
                    metric_name=metric,
                    metric_value=value,
                )
            )
    return out


def corpus_name(report: dict[str, Any]) -> str:
    """The training corpus is not on the Hub; it is named by its manifest digest instead."""
    return f"commonweights-corpus-{report['lineage']['manifest_digest'][:16]}"


def card_data(report: dict[str, Any], release: ReleaseConfig) -> ModelCardData:
    mode = report["data"]["policy"].get("mode", "consent")
    return ModelCardData(
        model_name=release.model_name,
        license=release.licence,
        language=["en"],
        library_name="transformers",
        pipeline_tag=TASK_TYPE,
        tags=["commonweights", "llama", "megatron-core", "lm-eval", f"data-policy-{mode}"],
        datasets=[corpus_name(report)],
        eval_results=eval_results(report["evaluation"]) or None,
    )


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _policy_lines(policy: dict[str, Any]) -> list[str]:
    lines = []
    mode = policy.get("mode")
    if mode == "consent":
        lines.append(
            "- Mode `consent`: web text is kept unless an opt-out signal says no (robots.txt for AI "
            "training agents, TDMRep, aipref, `noai`, takedowns)."
        )
    elif mode == "open-licence":
        allow = ", ".join(policy.get("licence_allowlist", []))
        lines.append(f"- Mode `open-licence`: only documents under an allowed licence are kept ({allow}).")
    if "agents" in policy:
        lines.append(
            f"- robots.txt honoured for {len(policy['agents'])} AI training agents "
            f"(list `{policy.get('agents_version', 'unversioned')}`): {', '.join(policy['agents'])}."
        )
    fallbacks = [
        f"{k.removeprefix('robots_')} → {policy[k]}"
        for k in ("robots_4xx", "robots_5xx", "robots_missing")
        if k in policy
    ]
    if fallbacks:
        lines.append(
            "- robots.txt fetch outcomes: " + ", ".join(fallbacks) + " (RFC 9309: 4xx allow, 5xx disallow)."
        )
    if "redact_pii" in policy:
        lines.append(
            f"- PII redaction (emails, phone numbers, IPs) in kept text: {_yes(policy['redact_pii'])}."
        )
    if "dedup_exact" in policy:
        lines.append(f"- Exact-duplicate removal: {_yes(policy['dedup_exact'])}.")
    return lines


def render_card(report: dict[str, Any], release: ReleaseConfig) -> str:
    data, train, ev, lin = report["data"], report["training"], report["evaluation"], report["lineage"]
    docs = data["documents"]
    par = train["parallel"]
    name = f"{release.model_name} {release.version}"
    eval_rows = [
        (f"`{task}`", t["n"], metric, f"{v:.4f}", _fmt(t["metrics"].get(f"{metric}_stderr")))
        for task, t in ev["tasks"].items()
        for metric, v in t["metrics"].items()
        if v is not None and not metric.endswith("_stderr")
    ]
    intro = (
        f"A {train['parameters']:,}-parameter Llama-style causal language model trained by "
        f"{release.provider} with the commonweights pipeline on {docs['kept']:,} curated web "
        f"documents ({train['tokens']:,} tokens). Every number in this card is taken from "
        "`transparency/report.json` in this release."
    )
    body = [
        f"# {name}",
        "",
        intro,
        "",
        "## Intended use",
        "",
        "Research on data governance and training pipelines: reproducing a consent-aware data-to-release "
        "run end to end, auditing which documents were used and why, and comparing releases. The model is "
        "small and trained briefly; it is a pipeline artefact, not an assistant.",
        "",
        "## Limitations",
        "",
        "- Not suitable for any decision about people, for factual questions, or for production use.",
        f"- Trained on {train['tokens']:,} tokens of web text; it reproduces the style and "
        "biases of that text and will generate false or incoherent statements.",
        "- Evaluation covers only the tasks listed below; absent tasks say nothing about ability.",
        "- Consent signals are honoured as they stood at the robots.txt snapshot date; later opt-outs "
        "are honoured by the next release (takedown registry).",
        "",
        "## Training data",
        "",
        f"{docs['in']:,} input records were assessed one by one: {docs['kept']:,} kept, "
        f"{docs['dropped']:,} dropped, {docs['quarantined']:,} quarantined, from {data['domains']:,} "
        f"domains. The manifest (`data/manifest/`: manifest.json and one Parquet row per record) "
        "records every decision; its Merkle digest "
        f"`{lin['manifest_digest']}` pins the exact corpus, and the policy hash `{lin['policy_hash']}` "
        "pins the rules.",
        "",
        "Policy:",
        "",
        *_policy_lines(data["policy"]),
        "",
        "Why documents were not kept:",
        "",
        _table(("reason", "documents"), [(f"`{k}`", f"{v:,}") for k, v in data["reasons"].items()])
        if data["reasons"]
        else "No document was dropped or quarantined.",
        "",
        "Licences of the assessed documents:",
        "",
        _table(("licence", "documents"), [(f"`{k}`", f"{v:,}") for k, v in data["licences"].items()]),
        "",
        "## Training procedure and compute",
        "",
        _table(
            ("quantity", "value"),
            [
                ("optimizer steps", f"{train['steps']:,}"),
                ("tokens", f"{train['tokens']:,}"),
                ("parameters", f"{train['parameters']:,}"),
                ("first / final loss", f"{train['first_loss']:.4f} / {train['final_loss']:.4f}"),
                ("wall time", f"{train['wall_s']:.1f} s"),
                ("compute (6·N·D estimate)", f"{train['approx_flops']:.3e} FLOPs"),
                ("process-hours", f"{train['compute']['process_hours']:.4f}"),
                ("energy (estimate)", _energy(train["compute"])),
                ("CO₂e (estimate)", _co2(train["compute"])),
                (
                    "processes (TP × PP × DP)",
                    f"{par['world_size']} ({par['tensor_parallel']} × {par['pipeline_parallel']} × "
                    f"{par['data_parallel']})",
                ),
            ],
        ),
        "",
        "Trained with megatron-core; the loss curve is in `transparency/report.html`.",
        "",
        "## Evaluation",
        "",
        f"lm-eval {ev['lm_eval_version']}, zero-shot, batch size {ev['batch_size']}, "
        + (f"at most {ev['limit']} examples per task." if ev["limit"] else "all examples.")
        + " Per-task results are in `eval/results.json`.",
        "",
        _table(("task", "examples", "metric", "value", "stderr"), eval_rows)
        if eval_rows
        else "No evaluation results.",
        "",
        "## Decontamination",
        "",
        *_decontamination_lines(report.get("decontamination")),
        "",
        "## Verification",
        "",
        (
            "This release is signed with Ed25519: `statement.json` lists every file with its sha256 and the "
            "lineage below, `statement.sig` is its signature."
            if report["verification"]["signed"]
            else "**This release is not signed**: its hashes can be checked, not who made it."
        ),
        " Get the publisher's public key from a channel you trust, then:",
        "",
        "```bash",
        *report["verification"]["steps"],
        "```",
        "",
        "`commonweights verify` checks the signature, every file's hash, that no file is missing or added, "
        "and the chain weights → checkpoint → data digest (recomputed from `data/manifest/`) → policy → "
        "config → the signed data-order log; `--replay` re-trains a window of steps from a released "
        "checkpoint and checks each batch's data, the losses and the weights against that log.",
        "",
        _table(("link", "value"), [(k, f"`{_fmt(v)}`") for k, v in lin.items() if not isinstance(v, dict)]),
        "",
    ]
    return f"---\n{card_data(report, release).to_yaml()}\n---\n\n" + "\n".join(body)


def _energy(c: dict[str, Any]) -> str:
    if c["energy_kwh"] is None:
        return "not stated (train.watts_per_device unset)"
    return f"{c['energy_kwh']:.6f} kWh"


def _co2(c: dict[str, Any]) -> str:
    if c["co2_kg"] is None:
        return "not stated (no energy figure or train.grid_gco2_per_kwh unset)"
    return f"{c['co2_kg']:.6f} kg at {c['grid_gco2_per_kwh']:g} gCO2e/kWh"


def _decontamination_lines(decon: dict[str, Any] | None) -> list[str]:
    if not decon:
        return ["No decontamination report was produced for this release."]
    rows = [
        (
            f"`{task}`",
            d["examples"],
            d["contaminated"],
            f"{100 * d['fraction']:.1f}%",
            "**flagged**" if d["flagged"] else "clean",
        )
        for task, d in decon["tasks"].items()
    ]
    return [
        f"Word {decon['ngram']}-gram overlap between each evaluation task and the "
        f"{decon['corpus_documents']:,} kept training documents (`eval/decontamination.json`):",
        "",
        _table(("task", "examples", "overlapping", "share", "status"), rows),
    ]


def _yes(flag: Any) -> str:
    return "yes" if flag else "no"


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
