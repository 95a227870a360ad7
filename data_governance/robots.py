"""robots.txt consent for AI training agents under RFC 9309, evaluated against a dated snapshot.

The parser and matcher are our own (RFC 9309 §2): groups of `user-agent` lines followed by rules,
product tokens compared case-insensitively, groups for the same token merged, the `*` group used only
when no group names the agent, the longest matching pattern deciding with `allow` winning ties, `*`
and a final `$` in patterns, percent-encoding of non-ASCII octets, a UTF-8 BOM (or part of one) skipped,
CR, LF and CRLF line ends, and at most `MAX_BYTES` parsed. Every verdict names the rule that decided
it: its group (first `user-agent` line), line number, kind and pattern.

The snapshot date, not the crawl date, decides (retroactive opt-out). Fetch status follows RFC 9309
§2.3.1: 4xx means no rules (allow all), 5xx or unreachable means disallow all; the policy may
override either, and the evidence records which fallback applied.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Literal

from commonweights.config import GovernanceConfig, RobotsFallback, canonical_json
from data_governance import reasons

# RFC 9309 §2.5: crawlers must parse at least 500 kibibytes; we parse exactly that much.
MAX_BYTES = 500 * 1024
_BOM = b"\xef\xbb\xbf"
_HEX = "0123456789ABCDEF"
# Google's parser also accepts these misspellings of the rule names; they are common in the wild.
_KEYS = {
    "user-agent": "user-agent",
    "useragent": "user-agent",
    "user agent": "user-agent",
    "allow": "allow",
    "disallow": "disallow",
    "dissallow": "disallow",
    "dissalow": "disallow",
    "disalow": "disallow",
    "diasllow": "disallow",
    "disallaw": "disallow",
    "content-usage": "content-usage",  # IETF aipref (draft-ietf-aipref-attach): [path] preferences
}

Level = Literal["all", "some", "none"]


@dataclass(frozen=True)
class Rule:
    """One `allow`, `disallow` or `content-usage` line: `pattern` is percent-normalised, `line` is
    1-based, `value` holds a content-usage rule's preferences."""

    kind: str
    pattern: str
    line: int
    value: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "pattern": self.pattern, "line": self.line}
        if self.value:
            out["value"] = self.value
        return out


@dataclass(frozen=True)
class Group:
    """Consecutive `user-agent` lines and the rules after them, up to the next `user-agent` line."""

    agents: tuple[str, ...]  # raw values as written
    line: int  # line of the group's first user-agent line
    rules: tuple[Rule, ...]

    def is_global(self) -> bool:
        return any(_is_star(a) for a in self.agents)

    def names(self, agent: str, digit_tokens: bool = False) -> bool:
        """Whether a user-agent line of this group names `agent`. RFC 9309 tokens stop at a digit
        ("XYZ123bot" names XYZ); with `digit_tokens` the token "AI2Bot" also names AI2Bot."""
        token = agent.lower()
        return any(
            not _is_star(a)
            and (
                product_token(a).lower() == token
                or (digit_tokens and product_token(a, digits=True).lower() == token)
            )
            for a in self.agents
        )


@dataclass(frozen=True)
class Verdict:
    """Whether `agent` may fetch `path`, and why."""

    agent: str
    path: str
    allowed: bool
    matched: str  # "specific" (a group names the agent), "global" (the * group) or "none"
    groups: tuple[int, ...]  # lines of the groups whose rules applied
    rule: Rule | None  # the deciding rule; None when no rule matched (allowed)

    def to_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "path": self.path,
            "allowed": self.allowed,
            "matched": self.matched,
            "groups": list(self.groups),
            "rule": self.rule.to_json() if self.rule else None,
        }


def _is_star(value: str) -> bool:
    # A '*' followed by whitespace and more text still names every crawler (as Google reads it).
    return value == "*" or (value.startswith("*") and value[1:2].isspace())


def product_token(value: str, digits: bool = False) -> str:
    """The product token of a user-agent value: its leading run of [A-Za-z_-] (RFC 9309 §2.2.1), or of
    [A-Za-z0-9_-] with `digits`."""
    end = 0
    while (
        end < len(value)
        and value[end].isascii()
        and (value[end].isalpha() or value[end] in "-_" or (digits and value[end].isdigit()))
    ):
        end += 1
    return value[:end]


def normalise_pattern(raw: str) -> str:
    """Percent-encode octets outside US-ASCII and upper-case existing escapes (RFC 9309 §2.2.2)."""
    data = raw.encode("utf-8", errors="surrogateescape")
    out: list[str] = []
    i = 0
    while i < len(data):
        b = data[i]
        if b == 0x25 and _is_hex(data[i + 1 : i + 3]):
            out.append("%" + data[i + 1 : i + 3].decode().upper())
            i += 3
            continue
        if b >= 0x80:
            out.append("%" + _HEX[b >> 4] + _HEX[b & 15])
        else:
            out.append(chr(b))
        i += 1
    return "".join(out)


def _is_hex(two: bytes) -> bool:
    return len(two) == 2 and all(c in b"0123456789abcdefABCDEF" for c in two)


def url_path(url: str) -> str:
    """The path, params and query of a URL (or of a bare path), without the fragment; '/' if empty."""
    start = 2 if url.startswith("//") else 0
    first = min((i for i in (url.find(c, start) for c in "/?;") if i >= 0), default=-1)
    scheme_end = url.find("://", start)
    if scheme_end < 0 or (0 <= first < scheme_end):
        authority_from = start
    else:
        authority_from = scheme_end + 3
    path_start = min((i for i in (url.find(c, authority_from) for c in "/?;") if i >= 0), default=-1)
    if path_start < 0:
        return "/"
    hash_at = url.find("#", start)
    if 0 <= hash_at < path_start:
        return "/"
    end = hash_at if hash_at >= 0 else len(url)
    path = url[path_start:end]
    return path if path.startswith("/") else "/" + path


def matches(pattern: str, path: str) -> bool:
    """RFC 9309 §2.2.3 matching: prefix match, `*` any run of characters, a final `$` the path end."""
    anchored = pattern.endswith("$")
    if anchored:
        pattern = pattern[:-1]
    if "*" not in pattern:
        return path == pattern if anchored else path.startswith(pattern)
    # Positions in `path` reachable after consuming the pattern so far (no backtracking blow-up).
    positions = {0}
    n = len(path)
    for ch in pattern:
        if ch == "*":
            lo = min(positions)
            positions = set(range(lo, n + 1))
        else:
            positions = {p + 1 for p in positions if p < n and path[p] == ch}
            if not positions:
                return False
    return n in positions if anchored else True


def _split_lines(data: bytes) -> list[bytes]:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")


def _key_value(line: str) -> tuple[str, str] | None:
    line = line.split("#", 1)[0].strip()
    if not line:
        return None
    key, sep, value = line.partition(":")
    if not sep:
        # Accepted mistake: "key value" with whitespace instead of the colon, exactly two words.
        parts = line.split()
        if len(parts) != 2:
            return None
        key, value = parts
    return key.strip().lower(), value.strip()


@dataclass
class RobotsTxt:
    """A parsed robots.txt: its groups in order, and whether the input was cut at `MAX_BYTES`."""

    groups: list[Group] = field(default_factory=list)
    truncated: bool = False

    @classmethod
    def parse(cls, body: bytes | str) -> RobotsTxt:
        data = body.encode("utf-8", errors="surrogateescape") if isinstance(body, str) else body
        truncated = len(data) > MAX_BYTES
        data = data[:MAX_BYTES]
        # A BOM, or the first bytes of one, is not part of the first line.
        for k in (3, 2, 1):
            if data[:k] == _BOM[:k]:
                data = data[k:]
                break
        groups: list[Group] = []
        agents: list[str] = []
        agents_line = 0
        rules: list[Rule] = []
        in_rules = False
        for n, raw in enumerate(_split_lines(data), 1):
            kv = _key_value(raw.decode("utf-8", errors="surrogateescape"))
            if kv is None:
                continue
            key = _KEYS.get(kv[0])
            if key == "user-agent":
                if in_rules:
                    groups.append(Group(tuple(agents), agents_line, tuple(rules)))
                    agents, rules, in_rules = [], [], False
                if not agents:
                    agents_line = n
                agents.append(kv[1])
            elif key in ("allow", "disallow"):
                if not agents:
                    continue  # a rule before any user-agent line belongs to no group
                in_rules = True
                rules.append(Rule(key, normalise_pattern(kv[1]), n))
            elif key == "content-usage":
                if not agents:
                    continue
                in_rules = True
                path, _, prefs = kv[1].partition(" ") if kv[1].startswith("/") else ("/", "", kv[1])
                rules.append(Rule(key, normalise_pattern(path), n, prefs.strip()))
            # Other records (sitemap, crawl-delay, ...) neither end nor belong to a group.
        if agents:
            groups.append(Group(tuple(agents), agents_line, tuple(rules)))
        return cls(groups, truncated)

    @classmethod
    def from_groups(cls, groups: dict[str, dict[str, list[str]]]) -> RobotsTxt:
        """Build from {agent: {"Allow": [...], "Disallow": [...]}}: one group per agent, lines numbered
        in order (used to replay rule tables such as the Consent in Crisis vectors)."""
        out: list[Group] = []
        n = 0
        for agent, table in groups.items():
            n += 1
            first = n
            rules: list[Rule] = []
            for kind, patterns in table.items():
                if kind.lower() not in ("allow", "disallow"):
                    n += len(patterns)
                    continue
                for p in patterns:
                    n += 1
                    rules.append(Rule(kind.lower(), normalise_pattern(p.strip()), n))
            if agent.strip():
                out.append(Group((agent,), first, tuple(rules)))
        return cls(out)

    def applicable(self, agent: str, digit_tokens: bool = False) -> tuple[str, list[Group]]:
        """The groups that apply to `agent`: those naming it (merged), else the `*` groups, else none."""
        named = [g for g in self.groups if g.names(agent, digit_tokens)] if agent != "*" else []
        if named:
            return "specific", named
        star = [g for g in self.groups if g.is_global()]
        return ("global", star) if star else ("none", [])

    def verdict(self, url: str, agent: str, digit_tokens: bool = False) -> Verdict:
        """May `agent` fetch `url`? `digit_tokens`: see `Group.names` (off: RFC 9309 exactly)."""
        path = url_path(url)
        rules = self.rules_for(agent, digit_tokens)
        best = rules.decide(path)
        return Verdict(agent, path, best is None or best.kind == "allow", rules.matched, rules.groups, best)

    def content_usage(self, url: str, agent: str, digit_tokens: bool = False) -> Rule | None:
        """The aipref `Content-Usage` rule for `url` in the groups that apply to `agent` (longest path)."""
        return self.rules_for(agent, digit_tokens).usage_rule(url_path(url))

    def allowed(self, url: str, agent: str, digit_tokens: bool = False) -> bool:
        return self.verdict(url, agent, digit_tokens).allowed

    def rules_for(self, agent: str, digit_tokens: bool = False) -> AgentRules:
        """The rules that apply to `agent`, selected once: `verdict` and `content_usage` on many URLs
        of the site then cost one pass over these rules each, not a scan of every group."""
        matched, groups = self.applicable(agent, digit_tokens)
        rules = [r for g in groups for r in g.rules]
        return AgentRules(
            matched,
            tuple(g.line for g in groups),
            tuple(r for r in rules if r.kind != "content-usage" and r.pattern),
            tuple(r for r in rules if r.kind == "content-usage"),
        )

    def level(self, agent: str, digit_tokens: bool = False) -> Level:
        """How much of the site's path space `agent` may not crawl: all, some or none.

        Evaluated over URLs without a query: a pattern with a literal `?` can only match a URL with a
        query, so it neither restricts nor frees a page path. `all`: a disallow matching every path
        (`/`, `/*`, `*`) that every allow is too short to beat; `none`: every disallow is matched
        by an allow of at least its length on every path it matches (same pattern, or universal).
        """
        _, groups = self.applicable(agent, digit_tokens)
        rules = [
            r
            for g in groups
            for r in g.rules
            if r.kind != "content-usage" and r.pattern and "?" not in r.pattern
        ]
        allows = [r for r in rules if r.kind == "allow"]
        disallows = [r for r in rules if r.kind == "disallow"]
        universal = [d for d in disallows if _universal(d.pattern)]
        if universal:
            longest = max(len(d.pattern) for d in universal)
            if all(len(a.pattern) < longest for a in allows):
                return "all"

        def freed(d: Rule) -> bool:
            return any(
                len(a.pattern) >= len(d.pattern) and (a.pattern == d.pattern or _universal(a.pattern))
                for a in allows
            )

        return "some" if any(not freed(d) for d in disallows) else "none"


@dataclass(frozen=True)
class AgentRules:
    """The groups of a robots.txt that apply to one agent and their rules, in file order. The one
    place where RFC 9309's precedence is decided: `RobotsTxt.verdict` and `content_usage` use it, and
    a worker that keeps it per (domain, agent) decides many URLs without selecting the groups again."""

    matched: str  # as Verdict.matched
    groups: tuple[int, ...]  # as Verdict.groups
    rules: tuple[Rule, ...]  # allow and disallow rules with a pattern
    usage: tuple[Rule, ...]  # content-usage rules

    def decide(self, path: str) -> Rule | None:
        """The deciding rule for `path` (a `url_path`): the longest match, `allow` winning ties."""
        best: Rule | None = None
        for r in self.rules:
            if not matches(r.pattern, path):
                continue
            if (
                best is None
                or len(r.pattern) > len(best.pattern)
                or (len(r.pattern) == len(best.pattern) and r.kind == "allow" and best.kind != "allow")
            ):
                best = r
        return best

    def usage_rule(self, path: str) -> Rule | None:
        """The content-usage rule for `path`: the longest matching path, the first on ties."""
        found = [r for r in self.usage if matches(r.pattern, path)]
        return max(found, key=lambda r: len(r.pattern)) if found else None


def _universal(pattern: str) -> bool:
    return pattern.rstrip("*") in ("", "/")


# ---------------------------------------------------------------- snapshots and the policy

# The policy reads "User-agent: AI2Bot" as naming AI2Bot (see Group.names): for consent, the site
# owner's evident intent wins over the RFC grammar, which would cut the token at the digit.
DIGIT_TOKENS = True


@dataclass(frozen=True)
class Snapshot:
    """One domain's robots.txt as fetched on `fetched_at` (status 0 means unreachable)."""

    domain: str
    fetched_at: str
    status: int
    body: bytes | str = b""
    url: str = ""

    @classmethod
    def from_json(cls, line: str, where: str) -> Snapshot:
        try:
            d = json.loads(line)
            body = base64.b64decode(d["body_b64"]) if d.get("body_b64") else str(d.get("body") or "").encode()
            return cls(
                domain=str(d["domain"]).lower().removeprefix("www."),
                fetched_at=str(d["fetched_at"]),
                status=int(d["status"]),
                body=body,
                url=str(d.get("url") or ""),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(
                f"{where}: bad robots snapshot line ({e}); expected JSON with domain, fetched_at, "
                "status and body (or body_b64 for the exact bytes)"
            ) from None


@dataclass
class RobotsEvidence:
    snapshot_date: str | None
    status: int | None
    fallback: str | None  # "4xx:allow", "5xx:disallow", "missing:disallow", ... or None when parsed
    verdicts: dict[str, bool] = field(default_factory=dict)  # agent -> allowed
    rules: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # agent -> deciding rule
    content_usage: dict[str, Rule] = field(default_factory=dict)  # agent -> aipref rule in robots.txt
    agents_version: str | None = None
    truncated: bool = False
    reasons: list[str] = field(default_factory=list)
    # What `to_json()` follows from, for the RobotsRule that made the evidence (the domain, and the
    # rules it decided the URL by, by identity), or None: lets that RobotsRule encode it once per key.
    key: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot_date": self.snapshot_date,
            "status": self.status,
            "fallback": self.fallback,
            "agents_version": self.agents_version,
            "verdicts": self.verdicts,
            "rules": self.rules,
            "content_usage": {a: r.to_json() for a, r in self.content_usage.items()},
            "truncated": self.truncated,
        }


_KEPT = 1 << 12  # robots evidence, and its encoding, kept per RobotsRule (one per domain and rule set)


class RobotsRule:
    """Per-domain robots verdicts for the policy's agent list. Each snapshot is parsed, and the rules
    that apply to each agent are selected, once per worker (`compiled`); a URL then costs one pass
    over the rules per distinct set of groups (most agents share the `*` group), not one per agent."""

    def __init__(
        self, snapshots: dict[str, Snapshot], policy: GovernanceConfig, agents: list[str] | None = None
    ):
        self._snapshots = snapshots
        self._policy = policy
        self.agents = list(agents if agents is not None else policy.agents)
        # Per domain: (truncated, [(agent, its rules)]), agents whose groups are the same sharing one
        # AgentRules, so a URL is decided once per distinct set of groups, not once per agent.
        self._compiled: dict[str, tuple[bool, list[tuple[str, AgentRules]]]] = {}
        self._json: dict[tuple[Any, ...], str] = {}  # evidence key -> its canonical JSON
        self._evidence: dict[tuple[Any, ...], RobotsEvidence] = {}  # evidence key -> the evidence

    def compiled(self, snap: Snapshot) -> tuple[bool, list[tuple[str, AgentRules]]]:
        """A parsed snapshot's rules per agent (parsed and selected once per domain and worker)."""
        found = self._compiled.get(snap.domain)
        if found is None:
            parsed = RobotsTxt.parse(snap.body)
            shared: dict[tuple[str, tuple[int, ...]], AgentRules] = {}
            plans = []
            for agent in self.agents:
                rules = parsed.rules_for(agent, DIGIT_TOKENS)
                plans.append((agent, shared.setdefault((rules.matched, rules.groups), rules)))
            found = self._compiled[snap.domain] = (parsed.truncated, plans)
        return found

    def evaluate(self, domain: str, url: str) -> RobotsEvidence:
        """The evidence for one URL. It is shared with every other URL decided by the same rules (a
        domain's pages mostly are): read it, never change it."""
        domain = domain.lower()
        snap = self._snapshots.get(domain)
        if snap is not None and 200 <= snap.status < 300:
            return self._decide(snap, domain, url)
        key = (domain,)  # a fallback's evidence follows from the domain's snapshot alone
        ev = self._evidence.get(key)
        if ev is None:
            ev = self._keep(key, self._fallback_for(snap))
        return ev

    def _fallback_for(self, snap: Snapshot | None) -> RobotsEvidence:
        if snap is None:
            return self._fallback(None, "missing", self._policy.robots_missing, reasons.Reason.robots_missing)
        if 400 <= snap.status < 500:
            return self._fallback(snap, "4xx", self._policy.robots_4xx, reasons.Reason.robots_unavailable)
        if snap.status == 0 or snap.status >= 500:
            return self._fallback(snap, "5xx", self._policy.robots_5xx, reasons.Reason.robots_unavailable)
        # A redirect the crawler did not resolve (RFC 9309 §2.3.1.2): treated as unreachable.
        return self._fallback(snap, "3xx", self._policy.robots_5xx, reasons.Reason.robots_unavailable)

    def _keep(self, key: tuple[Any, ...], ev: RobotsEvidence) -> RobotsEvidence:
        if len(self._evidence) >= _KEPT:
            self._evidence.clear()
        ev.key = key
        self._evidence[key] = ev
        return ev

    def evidence_json(self, ev: RobotsEvidence) -> str:
        """`canonical_json(ev.to_json())` for evidence this RobotsRule made, encoded once per domain
        and set of deciding rules (the rules live as long as this object, so their identities stay
        unique). At most `_KEPT` encodings are kept."""
        if ev.key is None:
            return canonical_json(ev.to_json())
        got = self._json.get(ev.key)
        if got is None:
            if len(self._json) >= _KEPT:
                self._json.clear()
            got = self._json[ev.key] = canonical_json(ev.to_json())
        return got

    def _decide(self, snap: Snapshot, domain: str, url: str) -> RobotsEvidence:
        truncated, plans = self.compiled(snap)
        path = url_path(url)
        decided: dict[int, tuple[Rule | None, Rule | None]] = {}
        for _, rules in plans:
            if id(rules) not in decided:
                decided[id(rules)] = (rules.decide(path), rules.usage_rule(path))
        # The compiled plan is fixed per domain: the deciding rules of each distinct group set say all,
        # so the evidence (~30 µs to build for the policy's agents) is built once per such key.
        key = (domain, *map(id, chain.from_iterable(decided.values())))
        ev = self._evidence.get(key)
        if ev is not None:
            return ev
        ev = RobotsEvidence(
            snap.fetched_at,
            snap.status,
            None,
            agents_version=self._policy.agents_version,
            truncated=truncated,
        )
        for agent, rules in plans:
            rule, usage = decided[id(rules)]
            allowed = rule is None or rule.kind == "allow"
            ev.verdicts[agent] = allowed
            ev.rules[agent] = {
                "matched": rules.matched,
                "groups": list(rules.groups),
                "rule": rule.to_json() if rule else None,
            }
            if not allowed:
                ev.reasons.append(reasons.robots(agent))
            if usage is not None:
                ev.content_usage[agent] = usage
        return self._keep(key, ev)

    def _fallback(
        self, snap: Snapshot | None, kind: str, rule: RobotsFallback, reason: reasons.Reason
    ) -> RobotsEvidence:
        allowed = rule == RobotsFallback.allow
        ev = RobotsEvidence(
            snap.fetched_at if snap else None,
            snap.status if snap else None,
            f"{kind}:{rule.value}",
            agents_version=self._policy.agents_version,
        )
        ev.verdicts = {agent: allowed for agent in self.agents}
        ev.rules = {agent: None for agent in self.agents}
        if not allowed:
            ev.reasons.append(reason.value)
        return ev


def domain_summary(robots: RobotsTxt, agents: list[str], digit_tokens: bool = False) -> dict[str, Level]:
    """Per-agent restriction level for a domain (Consent in Crisis semantics), `*` always included."""
    return {a: robots.level(a, digit_tokens) for a in dict.fromkeys(["*", *agents])}
