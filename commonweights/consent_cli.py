"""`commonweights consent …`: what our policy reads in one robots.txt or one HTML page, for auditors and
site owners. JSON out (one object, or one per line with --batch); each verdict names the deciding rule
or the evidence. Exit codes: 0 ok, 2 usage or input error.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urljoin

import typer

from commonweights.config import AgentList
from commonweights.errors import ConfigError, InputError
from data_governance import agents as agent_lists
from data_governance import licence, signals
from data_governance.robots import DIGIT_TOKENS, MAX_BYTES, RobotsTxt, url_path

consent_app = typer.Typer(
    no_args_is_help=True,
    help="Explain consent and licence verdicts: robots.txt for AI agents, licence/TDMRep/noai in a page.",
)


def _out(obj: dict[str, Any]) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, sort_keys=False))


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read the {what} ({e.strerror or e}); check the path") from None


def _batch_lines(path: Path, required: tuple[str, ...], any_of: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every line of a batch file, validated before any verdict is printed."""
    rows = []
    for n, line in enumerate(_read(path, "batch file").decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise InputError(f"{path}:{n}: not a JSON object ({e}); write one JSON object per line") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
        missing = [k for k in required if not row.get(k)]
        if any_of and not any(row.get(k) is not None for k in any_of):
            missing.append(" or ".join(any_of))
        if missing:
            raise InputError(f"{path}:{n}: missing {', '.join(missing)}")
        row["_where"] = f"{path}:{n}"
        rows.append(row)
    return rows


# ---------------------------------------------------------------- robots


def robots_verdict(
    body: bytes, url: str, agent: str | None, agents: list[str], agents_version: str, digit_tokens: bool
) -> dict[str, Any]:
    """One robots.txt verdict: for `agent`, or for every policy agent (with `disallowed_agents`)."""
    robots = RobotsTxt.parse(body)
    base = {
        "url": url,
        "path": url_path(url),
        "bytes": len(body),
        "truncated": robots.truncated,
        "parsed_bytes": min(len(body), MAX_BYTES),
        "group_count": len(robots.groups),
    }
    if agent:
        v = robots.verdict(url, agent, digit_tokens)
        usage = robots.content_usage(url, agent, digit_tokens)
        return {**base, **v.to_json(), "content_usage": usage.to_json() if usage else None}
    verdicts = {a: robots.verdict(url, a, digit_tokens) for a in agents}
    return {
        **base,
        "allowed": all(v.allowed for v in verdicts.values()),
        "agents_version": agents_version,
        "disallowed_agents": [a for a, v in verdicts.items() if not v.allowed],
        "verdicts": {a: v.to_json() for a, v in verdicts.items()},
    }


def _robots_body(row: dict[str, Any], batch: Path) -> bytes:
    if row.get("robots_b64") is not None:
        try:
            return base64.b64decode(row["robots_b64"], validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"{row['_where']}: robots_b64 is not valid base64") from None
    p = Path(row["robots_path"])
    return _read(p if p.is_absolute() else batch.parent / p, "robots.txt")


def robots(
    robots_file: Annotated[Path | None, typer.Argument(help="robots.txt file (raw bytes are read).")] = None,
    url: Annotated[str | None, typer.Argument(help="URL (or path) to check.")] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="User agent product token, e.g. GPTBot.")
    ] = None,
    batch: Annotated[
        Path | None, typer.Option("--batch", help="JSONL: robots_path or robots_b64, url, agent (optional).")
    ] = None,
    agents_list: Annotated[
        AgentList, typer.Option("--agents-list", help="Agents checked without --agent.")
    ] = AgentList.apertus,
    strict_tokens: Annotated[
        bool, typer.Option("--strict-tokens", help="RFC 9309 token grammar only: 'AI2Bot' names AI.")
    ] = False,
) -> None:
    """Is URL allowed for an AI agent under ROBOTS_FILE (RFC 9309)? Names the deciding group and rule."""
    name = agents_list.value if agents_list != AgentList.custom else AgentList.apertus.value
    agents, version = agent_lists.agents(name), agent_lists.version(name)
    digits = DIGIT_TOKENS and not strict_tokens
    if batch is not None:
        for row in _batch_lines(batch, ("url",), ("robots_path", "robots_b64")):
            _out(
                robots_verdict(
                    _robots_body(row, batch), row["url"], row.get("agent") or agent, agents, version, digits
                )
            )
        return
    if robots_file is None or url is None:
        raise ConfigError("give ROBOTS_FILE and URL, or --batch FILE.jsonl")
    _out(robots_verdict(_read(robots_file, "robots.txt"), url, agent, agents, version, digits))


# ---------------------------------------------------------------- licence


def licence_verdict(html: bytes, url: str | None, headers: dict[str, str]) -> dict[str, Any]:
    """Licence, TDMRep, noai and aipref as the pipeline reads them from one page (and its headers)."""
    text = html.decode("utf-8", errors="replace")
    ev = signals.parse_html(text)
    page = licence.page_licence(ev.licences)
    xrobots = signals.header_tokens(headers.get("x-robots-tag", ""))
    tdm = signals.tdm_decision(
        headers.get("tdm-reservation"),
        headers.get("tdm-policy"),
        ev.tdm_reservation,
        ev.tdm_policy,
        url or "/",
        None,
    )
    aipref = signals.aipref_decision(headers.get("content-usage", ""), "header")

    def entry(e: licence.Evidence) -> dict[str, Any]:
        d = e.to_json()
        if url and e.href:
            d["href"] = urljoin(url, e.href)
        d["page_level"] = e.location in licence.PAGE_LEVEL
        return d

    return {
        "url": url,
        "licence": page.spdx if page else None,
        "licence_location": page.location if page else None,
        "conflicting_licences": licence.conflicting(ev.licences),
        "evidence": [entry(e) for e in ev.licences],
        "tdm_reservation": tdm.reserved,
        "tdm": tdm.to_json(),
        "noai": "noai" in ev.robots_meta or "noai" in xrobots,
        "noimageai": "noimageai" in ev.robots_meta or "noimageai" in xrobots,
        "meta_robots": ev.robots_meta,
        "aipref": aipref.to_json() if aipref else None,
        "html_parse_error": ev.parse_error,
    }


def _headers(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"--header {item!r}: expected 'Name: value', e.g. 'X-Robots-Tag: noai'")
        key = name.strip().lower()
        out[key] = f"{out[key]}, {value.strip()}" if key in out else value.strip()
    return out


def licence_cmd(
    html_file: Annotated[Path | None, typer.Argument(help="HTML file of the page.")] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="The page's URL (resolves relative links).")
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            help="HTTP response header 'Name: value' (X-Robots-Tag, tdm-reservation, "
            "Content-Usage); repeatable.",
        ),
    ] = None,
    batch: Annotated[Path | None, typer.Option("--batch", help="JSONL: html_path, url (optional).")] = None,
) -> None:
    """Which licence HTML_FILE states and where, plus its TDMRep reservation and noai tokens."""
    headers = _headers(header)
    if batch is not None:
        for row in _batch_lines(batch, ("html_path",)):
            p = Path(row["html_path"])
            body = _read(p if p.is_absolute() else batch.parent / p, "HTML file")
            _out(licence_verdict(body, row.get("url") or url, headers))
        return
    if html_file is None:
        raise ConfigError("give HTML_FILE, or --batch FILE.jsonl")
    _out(licence_verdict(_read(html_file, "HTML file"), url, headers))


def register(app: typer.Typer) -> None:
    consent_app.command("robots")(robots)
    consent_app.command("licence")(licence_cmd)
    app.add_typer(consent_app, name="consent")
