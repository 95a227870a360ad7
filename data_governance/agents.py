"""The dated, versioned list of AI crawler user agents whose robots.txt verdicts the policy honours.

`agents_v1.json` ships with the project. It holds two lists:
- `apertus`: the 12 agents the Apertus pretraining data honoured retroactively, plus `*`;
- `ai-robots-txt`: every crawler that the ai.robots.txt project (robots.json) describes as collecting
  data for AI training or datasets, plus `*`.
Each crawler entry keeps the facts it was classified from (operator, function, respects robots.txt)
and our category (`training`, `search`, `user-fetch`, `undocumented`, `other`), so a reviewer can
check every inclusion. `build_list` rebuilds the file from a robots.json; a test checks that the
shipped file is exactly what it yields from the pinned copy in the conformance data.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from commonweights.config import APERTUS_AGENTS
from data_governance.robots import product_token

AGENTS_FILE = "agents_v1.json"
LIST_VERSION = "commonweights-agents-1"
LIST_DATE = "2026-11-26"
SOURCE = "ai-robots-txt/ai.robots.txt @ 738c80df, robots.json (MIT)"
LISTS = ("apertus", "ai-robots-txt")

_TRAINING = re.compile(
    r"\btrain|\bLLMs?\b|dataset|data ?sets|machine learning|crawl dataset|data scraper|scrapes data|"
    r"data providers|download(?:s|ed)? data|AI LLM Scraper|scrapes images",
    re.IGNORECASE,
)
_USER = re.compile(
    r"AI Assistants|AI Agents|AI Coding Agents|user[- ]initiated|user prompts|on behalf of", re.I
)
_SEARCH = re.compile(r"\bsearch", re.IGNORECASE)


def _markdown_text(value: str) -> str:
    """`[Ai2](https://allenai.org/crawler)` → `Ai2`."""
    return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", value).strip()


def categorise(function: str, description: str) -> str:
    """Our category for one robots.json entry, from its `function` first, then its description."""
    if function.startswith("Undocumented"):
        return "undocumented"
    if _USER.search(function):
        return "user-fetch"
    if _TRAINING.search(function) or _TRAINING.search(description):
        return "training"
    if _SEARCH.search(function):
        return "search"
    return "other"


def build_list(robots_json: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The project agent list built from ai.robots.txt's robots.json facts (deterministic)."""
    crawlers = []
    for name in sorted(robots_json, key=str.lower):
        facts = robots_json[name]
        crawlers.append(
            {
                "name": name,
                "operator": _markdown_text(facts.get("operator", "")),
                "function": facts.get("function", ""),
                "respects_robots_txt": facts.get("respect", ""),
                "category": categorise(facts.get("function", ""), facts.get("description", "")),
            }
        )
    # robots.txt groups match on the product token (RFC 9309 §2.2.1): "Kangaroo Bot" is "Kangaroo";
    # names that share a token (case-insensitively) are one agent.
    tokens: dict[str, str] = {}
    for c in crawlers:
        c["product_token"] = product_token(c["name"], digits=True)
        if c["category"] == "training" and c["product_token"]:
            tokens.setdefault(c["product_token"].lower(), c["product_token"])
    apertus = {a.lower(): a for a in APERTUS_AGENTS}
    training = [apertus.get(low, token) for low, token in tokens.items()]
    missing = [a for a in APERTUS_AGENTS if a != "*" and a not in robots_json]
    if missing:
        raise ValueError(f"robots.json lacks the Apertus agents {missing}: is it the right file?")
    return {
        "version": LIST_VERSION,
        "date": LIST_DATE,
        "source": SOURCE,
        "lists": {"apertus": list(APERTUS_AGENTS), "ai-robots-txt": [*training, "*"]},
        "crawlers": crawlers,
    }


@cache
def shipped() -> dict[str, Any]:
    text = resources.files("data_governance").joinpath(AGENTS_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def agents(list_name: str) -> list[str]:
    """The user agents of one shipped list (`apertus` or `ai-robots-txt`)."""
    lists = shipped()["lists"]
    if list_name not in lists:
        raise ValueError(f"unknown agent list {list_name!r}; choose one of {', '.join(lists)}")
    return list(lists[list_name])


def version(list_name: str) -> str:
    data = shipped()
    return f"{data['version']}:{list_name}@{data['date']}"


def write_list(robots_json: Path, out: Path) -> None:
    """Regenerate the shipped file: `python -m data_governance.agents ROBOTS_JSON OUT`."""
    data = build_list(json.loads(robots_json.read_text(encoding="utf-8")))
    out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    import sys

    write_list(Path(sys.argv[1]), Path(sys.argv[2]))
