"""The data report page for auditors: one self-contained HTML file (inline CSS and SVG, no scripts, no
external resources) with counts per decision, reason, reason family, signal and licence, and the top
domains, drawn from manifest.json and the rows. Written to curate/manifest/data_report.html.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape

from commonweights.config import RunConfig

TEMPLATE = "data_report.html"
TOP = 25
COLOURS = {"kept": "#1b7f3b", "dropped": "#a4461a", "quarantined": "#6b4fa0", "bar": "#3465a4"}


def bar_chart(
    values: Mapping[str, int | float], chart_id: str, colour: str = COLOURS["bar"], top: int = TOP
) -> Markup:
    """A horizontal bar chart as inline SVG; each bar carries its label and value as text."""
    items = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    if not items:
        return Markup(f'<p class="empty" id="{escape(chart_id)}">none</p>')
    label_w, bar_w, row_h = 300, 330, 20
    peak = max(v for _, v in items) or 1
    height = row_h * len(items) + 6
    parts = [
        f'<svg id="{escape(chart_id)}" role="img" width="100%" style="max-width: {label_w + bar_w + 70}px" '
        f'viewBox="0 0 {label_w + bar_w + 70} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, value) in enumerate(items):
        y = i * row_h + 3
        w = max(1.0, bar_w * value / peak)
        short = label if len(label) <= 44 else label[:41] + "…"
        parts.append(
            f'<g class="bar"><title>{escape(label)}: {value}</title>'
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(short)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row_h - 5}" fill="{colour}"/>'
            f'<text x="{label_w + w + 5:.1f}" y="{y + 13}">{value}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def reason_codes(reasons: dict[str, int]) -> dict[str, int]:
    """Reason counts with the per-document `duplicate_of:<doc_id>` codes folded into one bar."""
    out: dict[str, int] = {}
    for code, n in reasons.items():
        key = "duplicate_of:*" if code.startswith("duplicate_of:") else code
        out[key] = out.get(key, 0) + n
    return out


def render(cfg: RunConfig, info: dict[str, Any]) -> str:
    """The page; `info` is manifest.json plus audit.derive_facts(rows)."""
    template = Environment(autoescape=True).from_string(
        resources.files("data_governance").joinpath(TEMPLATE).read_text(encoding="utf-8")
    )
    policy = info["policy"]
    shares = {d["domain"]: d for d in info.get("domain_shares") or []}
    counts_by_domain = info.get("domains") or {}
    domains = [
        {
            "domain": name,
            "total": counts_by_domain.get(name, {}).get("total", 0),
            "kept": counts_by_domain.get(name, {}).get("kept", 0),
            "kept_chars": d["kept_chars"],
            "share": f"{100 * d['share']:.2f}%",
        }
        for name, d in list(shares.items())[:TOP]
    ]
    charts = {
        "reasons": bar_chart(
            reason_codes(info.get("reasons") or {}), "chart-reasons", COLOURS["dropped"], top=80
        ),
        "families": bar_chart(info.get("reason_families") or {}, "chart-families", COLOURS["dropped"]),
        "signals": bar_chart(info.get("signals") or {}, "chart-signals"),
        "licences": bar_chart(info.get("licences") or {}, "chart-licences", COLOURS["kept"]),
        "domains": bar_chart(
            {d["domain"]: d["kept_chars"] for d in domains}, "chart-domains", COLOURS["kept"]
        ),
    }
    return template.render(
        name=f"{cfg.release.model_name} {cfg.release.version}",
        digest=info["digest"]["root"],
        policy_hash=info["policy_hash"],
        mode=policy.get("mode"),
        agents_version=policy.get("agents_version"),
        schema_version=info["schema_version"],
        first=(info["crawl_period"].get("first") or "?")[:10],
        last=(info["crawl_period"].get("last") or "?")[:10],
        snapshots=", ".join(info.get("robots_snapshots") or []) or "none",
        rows=info["rows"],
        counts=list(info["counts"].items()),
        kept_chars=info.get("kept_chars", 0),
        charts=charts,
        domains=domains,
    )
