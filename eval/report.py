"""The transparency report: one JSON document built from the stage outputs, and a static HTML view.

Everything here is pure (dicts in, dicts or text out); `eval.release` reads and writes the files.
The HTML page is self-contained: inline CSS, an inline SVG loss curve, no scripts, no external
resources, so it renders the same from a USB stick in ten years.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from commonweights.config import ReleaseConfig

SCHEMA_VERSION = 1
# Shipped as package data next to this module (pyproject: *.html).
TEMPLATE = Path(__file__).with_name("report.html")
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


def data_section(manifest: dict[str, Any], top: int = TOP_DOMAINS) -> dict[str, Any]:
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
    }


def training_section(
    config: dict[str, Any], train: dict[str, Any], metrics: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "config": config,
        "steps": train["steps"],
        "first_loss": train["first_loss"],
        "final_loss": train["final_loss"],
        "losses": [{"step": m["step"], "loss": m["loss"]} for m in metrics],
        "tokens": train["tokens"],
        "parameters": train["parameters"],
        "wall_s": train["wall_s"],
        # The usual 6·N·D estimate of training compute (forward + backward), not a measurement.
        "approx_flops": 6 * train["parameters"] * train["tokens"],
        "parallel": {
            k: train[k] for k in ("world_size", "tensor_parallel", "pipeline_parallel", "data_parallel")
        },
        "iteration": train["iteration"],
        "checkpoint": train["checkpoint"],
    }


def evaluation_section(results: dict[str, Any]) -> dict[str, Any]:
    keys = ("lm_eval_version", "batch_size", "limit", "seeds", "tasks")
    return {k: results[k] for k in keys}


def build_report(
    *,
    model: dict[str, Any],
    manifest: dict[str, Any],
    train_config: dict[str, Any],
    train: dict[str, Any],
    metrics: list[dict[str, Any]],
    results: dict[str, Any],
    lineage: dict[str, Any],
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "model": model,
        "data": data_section(manifest),
        "training": training_section(train_config, train, metrics),
        "evaluation": evaluation_section(results),
        "lineage": lineage,
    }


def data_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """data/summary.json: what was kept and why the rest was not, pinned by the manifest digest."""
    return {
        "schema_version": SCHEMA_VERSION,
        **data_section(manifest),
        "policy_hash": manifest["policy_hash"],
        "digest": manifest["digest"],
    }


def loss_curve_svg(losses: list[dict[str, Any]], width: int = 640, height: int = 240) -> str:
    """An inline SVG line chart of loss against step, with the axis ranges written on it."""
    pad_l, pad_r, pad_t, pad_b = 64, 16, 16, 36
    steps = [float(p["step"]) for p in losses]
    values = [float(p["loss"]) for p in losses]
    s0, s1 = min(steps), max(steps)
    lo, hi = min(values), max(values)
    ds, dv = (s1 - s0) or 1.0, (hi - lo) or 1.0
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b

    coords = [
        (pad_l + (s - s0) / ds * plot_w, pad_t + (hi - v) / dv * plot_h)
        for s, v in zip(steps, values, strict=True)
    ]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    # Dots mark each logged step while they stay readable; long runs get the line alone.
    marks = (
        "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2"/>' for x, y in coords) if len(coords) <= 120 else ""
    )
    bottom, right = pad_t + plot_h, pad_l + plot_w
    return (
        f'<svg role="img" aria-label="training loss by step" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
        f"<title>Training loss from {values[0]:.4f} to {values[-1]:.4f} over steps {s0:g}-{s1:g}</title>"
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{bottom}" class="axis"/>'
        f'<line x1="{pad_l}" y1="{bottom}" x2="{right}" y2="{bottom}" class="axis"/>'
        f'<text x="{pad_l - 6}" y="{pad_t + 4}" text-anchor="end">{hi:.3f}</text>'
        f'<text x="{pad_l - 6}" y="{bottom}" text-anchor="end">{lo:.3f}</text>'
        f'<text x="{pad_l}" y="{bottom + 16}" text-anchor="middle">{s0:g}</text>'
        f'<text x="{right}" y="{bottom + 16}" text-anchor="middle">{s1:g}</text>'
        f'<text x="{pad_l + plot_w / 2:.0f}" y="{bottom + 30}" text-anchor="middle">step</text>'
        f'<polyline points="{points}" class="loss"/><g class="loss">{marks}</g></svg>'
    )


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
    return env.from_string(template).render(
        r=report, loss_svg=Markup(loss_curve_svg(report["training"]["losses"]))
    )
