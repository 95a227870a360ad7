"""How far the fast path agrees with the quality-first reference, measured on the same records.

The fast path (resiliparse text + our rule implementation, `quality.mode: fast`) and the reference
(trafilatura text + datatrove's filters, `quality.mode: datatrove`) assess every record under the
same policy otherwise. The report gives:

- keep/drop agreement over every record, and over the records whose fate the text decides (neither
  mode denied them for consent, licence, status or type), which is where the two can differ;
- the confusion per reason code: the reference's first quality reason (mapped to our code names,
  `quality.REFERENCE_CODES`) against the fast path's first one, `kept` where there is none; and per
  code, how often it is the reference's reason, the fast path's first reason, any of the fast path's
  reasons, and the reference's reason also given by the fast path (`both`);
- the text similarity of the two extractors on every HTML page: word-multiset precision (share of the
  fast text's words also in the reference text), recall (the converse) and F1, mean and median;
- the records on which the decisions differ, with both modes' reasons, to investigate.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from commonweights.config import GovernanceConfig, QualityMode, policy_hash
from data_governance import extract, quality
from data_governance.assess import HTML_TYPES, Assessor, RawRecord, decode, denied_by_record, mime_and_charset
from data_governance.robots import RobotsRule, Snapshot
from data_governance.takedowns import Takedowns

TEXT_REASONS = ("quality:", "empty_text", extract.FAILED_PREFIX)


def _first_text_reason(reasons: list[str], reference: bool) -> str:
    for r in reasons:
        if r.startswith("quality:"):
            code = r.removeprefix("quality:")
            return quality.REFERENCE_CODES.get(code, code) if reference else code
        if r.startswith(TEXT_REASONS):
            return r
    return "kept"


def word_overlap(a: str, b: str) -> tuple[float, float, float]:
    """(precision of a against b, recall, F1) on word multisets; 1.0 for two empty texts."""
    wa, wb = Counter(a.split()), Counter(b.split())
    na, nb = sum(wa.values()), sum(wb.values())
    if na == 0 and nb == 0:
        return 1.0, 1.0, 1.0
    common = sum((wa & wb).values())
    p = common / na if na else 0.0
    r = common / nb if nb else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


@dataclass
class Agreement:
    records: int = 0
    same_decision: int = 0
    text_decided: int = 0  # records neither mode denied for anything but the text
    text_same: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)  # (reference, fast) first reasons
    # code -> {reference, fast_first, fast_any, both}
    by_code: dict[str, Counter[str]] = field(default_factory=dict)
    similarity: list[tuple[float, float, float]] = field(default_factory=list)
    disagreements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.same_decision / self.records if self.records else 1.0

    @property
    def text_rate(self) -> float:
        return self.text_same / self.text_decided if self.text_decided else 1.0

    def to_json(self) -> dict[str, Any]:
        def summary(i: int) -> dict[str, float]:
            values = [s[i] for s in self.similarity]
            if not values:
                return {"mean": 1.0, "median": 1.0}
            return {"mean": round(statistics.fmean(values), 4), "median": round(statistics.median(values), 4)}

        return {
            "records": self.records,
            "agreement": round(self.rate, 4),
            "text_decided": self.text_decided,
            "text_agreement": round(self.text_rate, 4),
            "confusion": [
                {"reference": ref, "fast": fast, "count": n}
                for (ref, fast), n in sorted(self.confusion.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "by_code": {code: dict(c) for code, c in sorted(self.by_code.items())},
            "extractor_similarity": {
                "pages": len(self.similarity),
                "precision": summary(0),
                "recall": summary(1),
                "f1": summary(2),
            },
            "disagreements": self.disagreements,
        }


def assessors(
    policy: GovernanceConfig,
    snapshots: dict[str, Snapshot],
    takedowns: Takedowns | None = None,
) -> tuple[Assessor, Assessor]:
    """(fast, reference) assessors that differ only in the quality mode."""
    out = []
    for mode in (QualityMode.fast, QualityMode.datatrove):
        p = policy.model_copy(update={"quality": policy.quality.model_copy(update={"mode": mode})})
        out.append(Assessor(p, policy_hash(p), RobotsRule(snapshots, p), takedowns or Takedowns()))
    if out[1].policy.quality.mode == QualityMode.datatrove:
        quality.prepare(out[1].policy.quality)
    return out[0], out[1]


def compare(records: Iterable[RawRecord], fast: Assessor, reference: Assessor) -> Agreement:
    """Assess every record in both modes and measure how the decisions and texts agree."""
    result = Agreement()
    timeout = reference.policy.quality.extract_timeout_s
    for rec in records:
        a, b = fast.assess(rec).row, reference.assess(rec).row
        result.records += 1
        same = (a["decision"] == "kept") == (b["decision"] == "kept")
        result.same_decision += same
        other_a = [r for r in a["reasons"] if not r.startswith(TEXT_REASONS)]
        other_b = [r for r in b["reasons"] if not r.startswith(TEXT_REASONS)]
        if not rec.error and not other_a and not other_b:
            result.text_decided += 1
            result.text_same += same
            ref_code = _first_text_reason(b["reasons"], reference=True)
            fast_code = _first_text_reason(a["reasons"], reference=False)
            result.confusion[(ref_code, fast_code)] += 1
            # The reference gives one reason (its first failing block); the fast path lists every
            # failing rule, the reference's first.
            fast_all = {r.removeprefix("quality:") for r in a["reasons"] if r.startswith("quality:")}
            for code in {ref_code, fast_code, *fast_all} - {"kept"}:
                c = result.by_code.setdefault(code, Counter())
                c["reference"] += code == ref_code
                c["fast_first"] += code == fast_code
                c["fast_any"] += code in fast_all or code == fast_code
                c["both"] += code == ref_code and (code in fast_all or code == fast_code)
            if not same:
                result.disagreements.append(
                    {"url": rec.uri, "fast": a["reasons"] or ["kept"], "reference": b["reasons"] or ["kept"]}
                )
        mime, charset = mime_and_charset(rec.header("content-type"))
        if not rec.error and mime in HTML_TYPES and not denied_by_record(a["reasons"]):
            html = decode(rec.payload, charset)
            try:
                fast_text = extract.resiliparse_text(extract.parse(html))
                ref_text = extract.trafilatura_text(html, timeout)
            except extract.ExtractionFailed:
                continue
            result.similarity.append(word_overlap(fast_text, ref_text))
    return result
