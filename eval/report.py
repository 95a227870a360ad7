"""The transparency report: one JSON document built from the stage outputs, and a static HTML view.

Everything here is pure (dicts in, dicts or text out); `eval.release` reads and writes the files.
The HTML page is self-contained: inline CSS, an inline SVG loss curve, no scripts, no external
resources, so it renders the same from a USB stick in ten years.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from commonweights.config import ReleaseConfig

SCHEMA_VERSION = 2
# Shipped as package data next to this module (pyproject: *.html, *.json).
TEMPLATE = Path(__file__).with_name("report.html")
SCHEMA_FILE = Path(__file__).with_name("report.schema.json")
# Reason code families, for "why documents were not kept" at a glance (docs/manifest.md lists codes).
OPT_OUT_SIGNALS = {
    "robots.txt (AI training agents)": lambda r: (
        r.startswith("robots:") and r not in ("robots:unavailable", "robots:missing")
    ),
    "robots.txt unavailable or missing": lambda r: r in ("robots:unavailable", "robots:missing"),
    "TDMRep reservation": lambda r: r == "tdm_reserved",
    "aipref Content-Usage": lambda r: r.startswith("aipref:"),
    "noai (meta robots)": lambda r: r == "meta:noai",
    "noai (X-Robots-Tag)": lambda r: r == "header:noai",
    "takedown request": lambda r: r == "takedown",
}
TOP_DOMAINS = 10
SHAPE_KEYS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "max_position_embeddings",
)


def model_section(release: ReleaseConfig, hf_config: dict[str, Any]) -> dict[str, Any]:
    """Name, licence and shape of the released model."""
    archs = hf_config.get("architectures") or [hf_config.get("model_type", "unknown")]
    return {
        "name": release.model_name,
        "version": release.version,
        "provider": release.provider,
        "licence": release.licence,
        "architecture": archs[0],
        "shape": {k: hf_config[k] for k in SHAPE_KEYS if k in hf_config},
    }


def _by_count(counts: dict[str, int]) -> dict[str, int]:
    """Largest first, then by name, so the order is stable across runs."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def reason_family(reason: str) -> str:
    """`robots:GPTBot` → `robots`, `duplicate_of:<id>` → `duplicate_of`, `tdm_reserved` → itself."""
    return reason.split(":", 1)[0]


def opt_out_counts(parts: list[Path]) -> dict[str, Any]:
    """Documents per opt-out signal and per reason family, counted from the manifest rows (a document
    denied for several reasons counts once in each of them, and once in `any_opt_out`)."""
    import pyarrow.parquet as pq

    signals: Counter[str] = Counter()
    families: Counter[str] = Counter()
    any_opt_out = 0
    for part in parts:
        for reasons in pq.read_table(part, columns=["reasons"]).column("reasons").to_pylist():
            reasons = reasons or []
            hit = {name for name, match in OPT_OUT_SIGNALS.items() if any(match(r) for r in reasons)}
            signals.update(hit)
            any_opt_out += bool(hit)
            families.update({reason_family(r) for r in reasons})
    return {
        "signals": {name: signals.get(name, 0) for name in OPT_OUT_SIGNALS},
        "any_opt_out": any_opt_out,
        "reason_families": _by_count(dict(families)),
    }


def data_section(
    manifest: dict[str, Any], top: int = TOP_DOMAINS, opt_outs: dict[str, Any] | None = None
) -> dict[str, Any]:
    counts = manifest["counts"]
    domains = sorted(manifest["domains"].items(), key=lambda kv: (-kv[1]["total"], kv[0]))
    return {
        "documents": {
            "in": manifest["rows"],
            "kept": counts.get("kept", 0),
            "dropped": counts.get("dropped", 0),
            "quarantined": counts.get("quarantined", 0),
        },
        "reasons": _by_count(manifest["reasons"]),
        "licences": _by_count(manifest["licences"]),
        "domains": len(domains),
        "top_domains": [{"domain": d, "total": v["total"], "kept": v["kept"]} for d, v in domains[:top]],
        "policy": manifest["policy"],
        "opt_outs": opt_outs,
    }


def compute_section(train: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Compute, energy and CO2, all estimates. FLOPs are the usual 6·N·D. Energy and CO2 are taken from
    train.json when the training stage wrote them (`energy_kwh`, `co2_kg`), else estimated here as
    process-hours × train.watts_per_device × train.pue and energy × train.grid_gco2_per_kwh; they stay
    null (reported as not stated) when neither is available."""
    process_hours = train["wall_s"] * train["world_size"] / 3600
    watts, pue, grid = (config.get(k) for k in ("watts_per_device", "pue", "grid_gco2_per_kwh"))
    energy, co2 = train.get("energy_kwh"), train.get("co2_kg")
    source = "train.json" if energy is not None else None
    if energy is None and watts is not None:
        energy = process_hours * watts * (pue or 1.0) / 1000
        source = "process-hours × train.watts_per_device × train.pue"
    if co2 is None and energy is not None and grid is not None:
        co2 = energy * grid / 1000
    return {
        "approx_flops": 6 * train["parameters"] * train["tokens"],
        "process_hours": process_hours,
        "watts_per_device": watts,
        "pue": pue,
        "energy_kwh": energy,
        "grid_gco2_per_kwh": grid,
        "co2_kg": co2,
        "method": (
            f"estimates, not meter readings: energy from {source}; CO2 = energy × grid intensity"
            if source
            else "not stated: the training config sets no power figure (train.watts_per_device)"
        ),
    }


def training_section(
    config: dict[str, Any], train: dict[str, Any], metrics: list[dict[str, Any]]
) -> dict[str, Any]:
    compute = compute_section(train, config)
    return {
        "config": config,
        "steps": train["steps"],
        "first_loss": train["first_loss"],
        "final_loss": train["final_loss"],
        "losses": [{"step": m["step"], "loss": m["loss"]} for m in metrics],
        "tokens": train["tokens"],
        "parameters": train["parameters"],
        "wall_s": train["wall_s"],
        "approx_flops": compute["approx_flops"],
        "compute": compute,
        "parallel": {
            k: train[k] for k in ("world_size", "tensor_parallel", "pipeline_parallel", "data_parallel")
        },
        "iteration": train["iteration"],
        "checkpoint": train["checkpoint"],
    }


def headline_metric(metrics: dict[str, Any]) -> str | None:
    """The metric a curve shows for a task: accuracy where there is one, else bits per byte, else the
    first finite metric."""
    for name in ("acc", "acc_norm", "exact_match", "bits_per_byte", "word_perplexity"):
        if metrics.get(name) is not None:
            return name
    finite = [k for k, v in metrics.items() if v is not None and not k.endswith("_stderr")]
    return finite[0] if finite else None


def eval_curve(
    results: dict[str, Any], checkpoints: list[dict[str, Any]], final_iteration: int
) -> list[dict[str, Any]]:
    """Per task: its headline metric at every evaluated checkpoint, by iteration (final model last)."""
    points: dict[int, dict[str, Any]] = {c["iteration"]: c["tasks"] for c in checkpoints}
    points[final_iteration] = {t: r["metrics"] for t, r in results["tasks"].items()}
    curves = []
    for task, r in results["tasks"].items():
        metric = headline_metric(r["metrics"])
        if metric is None:
            continue
        series = [
            {"iteration": it, "value": points[it][task][metric]}
            for it in sorted(points)
            if task in points[it] and points[it][task].get(metric) is not None
        ]
        curves.append({"task": task, "metric": metric, "points": series})
    return curves


def evaluation_section(
    results: dict[str, Any], checkpoints: list[dict[str, Any]], final_iteration: int
) -> dict[str, Any]:
    keys = ("lm_eval_version", "batch_size", "limit", "seeds", "tasks")
    out = {k: results[k] for k in keys}
    out["task_versions"] = {t: r.get("version") for t, r in results["tasks"].items()}
    out["num_fewshot"] = results.get("num_fewshot", 0)
    out["curve"] = eval_curve(results, checkpoints, final_iteration)
    return out


def verification_section(signed: bool, replayable: bool = False) -> dict[str, Any]:
    replay = [
        ".venv/bin/commonweights verify RELEASE_DIR --key PUBLISHER_KEY.pub --replay"
        "   # re-train a window against the signed data-order log (docs/replay.md)"
    ]
    return {
        "signed": signed,
        "steps": [
            "make install   # in a checkout of the commonweights code at lineage.code_commit",
            ".venv/bin/commonweights verify RELEASE_DIR --key PUBLISHER_KEY.pub",
            "sha256sum -c SHA256SUMS      # inside RELEASE_DIR; needs nothing but coreutils",
            *(replay if replayable else []),
        ],
        "openssl": "openssl pkeyutl -verify -pubin -inkey PUBLISHER_KEY.pub -rawin -in statement.json "
        "-sigfile statement.sig",
    }


def build_report(
    *,
    model: dict[str, Any],
    manifest: dict[str, Any],
    train_config: dict[str, Any],
    train: dict[str, Any],
    metrics: list[dict[str, Any]],
    results: dict[str, Any],
    lineage: dict[str, Any],
    opt_outs: dict[str, Any] | None = None,
    checkpoints: list[dict[str, Any]] | None = None,
    decontamination: dict[str, Any] | None = None,
    signed: bool = False,
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "model": model,
        "data": data_section(manifest, opt_outs=opt_outs),
        "training": training_section(train_config, train, metrics),
        "evaluation": evaluation_section(results, checkpoints or [], lineage["iteration"]),
        "decontamination": decontamination,
        "lineage": lineage,
        "verification": verification_section(signed, replayable=lineage.get("data_order") is not None),
    }


def data_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """data/summary.json: what was kept and why the rest was not, pinned by the manifest digest."""
    return {
        "schema_version": SCHEMA_VERSION,
        **data_section(manifest),
        "policy_hash": manifest["policy_hash"],
        "digest": manifest["digest"],
    }


# ------------------------------------------------------------------------------------------ charts
COLOURS = ("#1f5fa8", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#0e7490")


def line_chart_svg(
    series: list[tuple[str, list[tuple[float, float]]]],
    *,
    label: str,
    x_label: str,
    css: str = "loss",
    width: int = 640,
    height: int = 240,
) -> str:
    """An inline SVG line chart (one polyline per series) with the axis ranges written on it."""
    pad_l, pad_r, pad_t, pad_b = 64, 16, 16, 36
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts]
    x0, x1, lo, hi = min(xs), max(xs), min(ys), max(ys)
    dx, dy = (x1 - x0) or 1.0, (hi - lo) or 1.0
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    bottom, right = pad_t + plot_h, pad_l + plot_w
    parts = [
        f'<svg role="img" aria-label="{label}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{label}</title>',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{bottom}" class="axis"/>',
        f'<line x1="{pad_l}" y1="{bottom}" x2="{right}" y2="{bottom}" class="axis"/>',
        f'<text x="{pad_l - 6}" y="{pad_t + 4}" text-anchor="end">{hi:.3f}</text>',
        f'<text x="{pad_l - 6}" y="{bottom}" text-anchor="end">{lo:.3f}</text>',
        f'<text x="{pad_l}" y="{bottom + 16}" text-anchor="middle">{x0:g}</text>',
        f'<text x="{right}" y="{bottom + 16}" text-anchor="middle">{x1:g}</text>',
        f'<text x="{pad_l + plot_w / 2:.0f}" y="{bottom + 30}" text-anchor="middle">{x_label}</text>',
    ]
    for i, (_, pts) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        coords = [(pad_l + (x - x0) / dx * plot_w, pad_t + (hi - y) / dy * plot_h) for x, y in pts]
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        # Dots mark each point while they stay readable; long runs get the line alone.
        dots = (
            "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2"/>' for x, y in coords)
            if len(coords) <= 120
            else ""
        )
        parts.append(
            f'<polyline points="{line}" class="{css}" style="stroke:{colour}"/>'
            f'<g class="{css}" style="fill:{colour}">{dots}</g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def loss_curve_svg(losses: list[dict[str, Any]], width: int = 640, height: int = 240) -> str:
    """Training loss against step."""
    pts = [(float(p["step"]), float(p["loss"])) for p in losses]
    s0, s1 = pts[0][0], pts[-1][0]
    label = f"Training loss from {pts[0][1]:.4f} to {pts[-1][1]:.4f} over steps {s0:g}-{s1:g}"
    return line_chart_svg([("loss", pts)], label=label, x_label="step", width=width, height=height)


def eval_curve_svg(curve: dict[str, Any], width: int = 420, height: int = 200) -> str:
    pts = [(float(p["iteration"]), float(p["value"])) for p in curve["points"]]
    label = f"{curve['task']}: {curve['metric']} by training iteration"
    return line_chart_svg(
        [(curve["task"], pts)], label=label, x_label="iteration", css="curve", width=width, height=height
    )


def bar_chart_svg(rows: list[tuple[str, int]], *, label: str, width: int = 640, bar: int = 18) -> str:
    """Horizontal bars, one per row, each labelled with its name and count."""
    pad_l, pad_r, gap = 230, 60, 6
    height = len(rows) * (bar + gap) + gap
    top = max((n for _, n in rows), default=0) or 1
    plot_w = width - pad_l - pad_r
    parts = [
        f'<svg role="img" aria-label="{label}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{label}</title>'
    ]
    for i, (name, n) in enumerate(rows):
        y = gap + i * (bar + gap)
        w = n / top * plot_w
        parts.append(
            f'<text x="{pad_l - 8}" y="{y + bar - 5}" text-anchor="end">{_esc(name)}</text>'
            f'<rect x="{pad_l}" y="{y}" width="{w:.1f}" height="{bar}" class="bar"/>'
            f'<text x="{pad_l + w + 6:.1f}" y="{y + bar - 5}">{n:,}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_html(report: dict[str, Any]) -> str:
    template = TEMPLATE.read_text(encoding="utf-8")
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    data = report["data"]
    docs = data["documents"]
    decisions = bar_chart_svg(
        [("kept", docs["kept"]), ("dropped", docs["dropped"]), ("quarantined", docs["quarantined"])],
        label="documents by decision",
    )
    opt = data.get("opt_outs")
    families = (
        bar_chart_svg(list(opt["reason_families"].items()), label="documents not kept, by reason family")
        if opt and opt["reason_families"]
        else ""
    )
    signals = (
        bar_chart_svg(list(opt["signals"].items()), label="documents denied by each opt-out signal")
        if opt
        else ""
    )
    return env.from_string(template).render(
        r=report,
        loss_svg=Markup(loss_curve_svg(report["training"]["losses"])),
        curve_svgs=[Markup(eval_curve_svg(c)) for c in report["evaluation"]["curve"] if c["points"]],
        decisions_svg=Markup(decisions),
        families_svg=Markup(families),
        signals_svg=Markup(signals),
    )
