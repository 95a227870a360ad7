"""robots.txt consent for AI training agents, evaluated against a dated snapshot.

The snapshot date, not the crawl date, decides (retroactive opt-out). Fetch status follows RFC 9309:
4xx means no rules (allow all), 5xx or unreachable means disallow all; the policy may override either,
and the evidence records which fallback applied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from protego import Protego

from commonweights.config import GovernanceConfig, RobotsFallback
from data_governance import reasons


@dataclass(frozen=True)
class Snapshot:
    """One domain's robots.txt as fetched on `fetched_at` (status 0 means unreachable)."""

    domain: str
    fetched_at: str
    status: int
    body: str = ""
    url: str = ""

    @classmethod
    def from_json(cls, line: str, where: str) -> Snapshot:
        try:
            d = json.loads(line)
            return cls(
                domain=str(d["domain"]).lower(),
                fetched_at=str(d["fetched_at"]),
                status=int(d["status"]),
                body=str(d.get("body") or ""),
                url=str(d.get("url") or ""),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(
                f"{where}: bad robots snapshot line ({e}); "
                "expected JSON with domain, fetched_at, status and body"
            ) from None


@dataclass
class RobotsEvidence:
    snapshot_date: str | None
    status: int | None
    fallback: str | None  # "4xx:allow", "5xx:disallow", "missing:disallow", ... or None when parsed
    verdicts: dict[str, bool] = field(default_factory=dict)  # agent -> allowed
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot_date": self.snapshot_date,
            "status": self.status,
            "fallback": self.fallback,
            "verdicts": self.verdicts,
        }


class RobotsRule:
    """Per-domain robots verdicts for the policy's agent list; parses each snapshot once."""

    def __init__(self, snapshots: dict[str, Snapshot], policy: GovernanceConfig):
        self._snapshots = snapshots
        self._policy = policy
        self._parsed: dict[str, Protego] = {}

    def evaluate(self, domain: str, url: str) -> RobotsEvidence:
        snap = self._snapshots.get(domain.lower())
        agents = self._policy.agents
        if snap is None:
            return self._fallback(None, "missing", self._policy.robots_missing, reasons.Reason.robots_missing)
        if 400 <= snap.status < 500:
            return self._fallback(snap, "4xx", self._policy.robots_4xx, reasons.Reason.robots_unavailable)
        if snap.status == 0 or snap.status >= 500:
            return self._fallback(snap, "5xx", self._policy.robots_5xx, reasons.Reason.robots_unavailable)
        if not 200 <= snap.status < 300:
            # 3xx that the crawler could not follow: RFC 9309 treats it like unreachable after 5 hops.
            return self._fallback(snap, "3xx", self._policy.robots_5xx, reasons.Reason.robots_unavailable)
        parser = self._parsed.get(snap.domain)
        if parser is None:
            parser = self._parsed[snap.domain] = Protego.parse(snap.body)
        ev = RobotsEvidence(snap.fetched_at, snap.status, None)
        for agent in agents:
            allowed = bool(parser.can_fetch(url, agent))
            ev.verdicts[agent] = allowed
            if not allowed:
                ev.reasons.append(reasons.robots(agent))
        return ev

    def _fallback(
        self, snap: Snapshot | None, kind: str, rule: RobotsFallback, reason: reasons.Reason
    ) -> RobotsEvidence:
        allowed = rule == RobotsFallback.allow
        ev = RobotsEvidence(
            snap.fetched_at if snap else None, snap.status if snap else None, f"{kind}:{rule.value}"
        )
        ev.verdicts = {agent: allowed for agent in self._policy.agents}
        if not allowed:
            ev.reasons.append(reason.value)
        return ev
