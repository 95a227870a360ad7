"""Decontamination report: word n-gram overlap between each evaluation task and the training corpus.

lm-eval runs no decontamination itself, so we measure it: every evaluation example (its prompt and its
correct answer, as lm-eval renders them) is cut into word n-grams (lower-cased `\\w+` words, n =
`eval.decontamination_ngram`, 13 by default as in the GPT-3 paper); the kept training documents
(`curate/documents/*.jsonl`) are streamed once and every example sharing at least one n-gram with them
counts as overlapping. An example shorter than n words is compared whole when it has at least
`MIN_WORDS` words, and counted as `too_short` otherwise. A task with any overlapping example is flagged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

WORD = re.compile(r"\w+", re.UNICODE)
MIN_WORDS = 8
EXAMPLES_SHOWN = 5


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int) -> Iterator[tuple[str, ...]]:
    for i in range(len(tokens) - n + 1):
        yield tuple(tokens[i : i + n])


def example_text(task: Any, doc: Any) -> str:
    """Prompt plus correct answer of one lm-eval example, as the harness would show it to the model."""
    text = task.doc_to_text(doc)
    target = task.doc_to_target(doc)
    if task.OUTPUT_TYPE == "multiple_choice":
        choices = task.doc_to_choice(doc)
        if isinstance(target, int) and 0 <= target < len(choices):
            target = choices[target]
    if isinstance(target, list):
        target = " ".join(str(t) for t in target)
    return f"{text if isinstance(text, str) else ''} {target if isinstance(target, str) else ''}".strip()


def corpus_texts(documents: Path) -> Iterator[str]:
    """The `text` of every kept document, from curate's JSONL parts."""
    for part in sorted(documents.glob("part-*.jsonl")):
        with part.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)["text"]


def overlap(examples: dict[str, list[str]], corpus: Iterable[str], n: int) -> dict[str, Any]:
    """Per task: examples, overlapping examples (indices and one shared n-gram each), too-short ones."""
    index: dict[tuple[str, ...], list[tuple[str, int]]] = {}
    grams_of: dict[tuple[str, int], int] = {}
    too_short: dict[str, int] = {t: 0 for t in examples}
    lengths: set[int] = set()
    for task, texts in examples.items():
        for i, text in enumerate(texts):
            toks = words(text)
            size = n if len(toks) >= n else len(toks)
            if size < min(n, MIN_WORDS):
                too_short[task] += 1
                continue
            lengths.add(size)
            grams = set(ngrams(toks, size))
            grams_of[(task, i)] = len(grams)
            for g in grams:
                index.setdefault(g, []).append((task, i))
    hits: dict[tuple[str, int], tuple[str, ...]] = {}
    documents = 0
    for text in corpus:
        documents += 1
        toks = words(text)
        for size in lengths:
            for g in ngrams(toks, size):
                for key in index.get(g, ()):
                    hits.setdefault(key, g)
    tasks: dict[str, Any] = {}
    for task, texts in examples.items():
        found = sorted(i for (t, i) in hits if t == task)
        tasks[task] = {
            "examples": len(texts),
            "checked": len(texts) - too_short[task],
            "too_short": too_short[task],
            "contaminated": len(found),
            "fraction": len(found) / len(texts) if texts else 0.0,
            "flagged": bool(found),
            "overlapping": [{"index": i, "ngram": " ".join(hits[(task, i)])} for i in found[:EXAMPLES_SHOWN]],
        }
    return {"ngram": n, "min_words": MIN_WORDS, "corpus_documents": documents, "tasks": tasks}


def task_examples(tasks: list[Any]) -> dict[str, list[str]]:
    """Every evaluation example's text, per lm-eval task object."""
    return {task.config.task: [example_text(task, doc) for doc in task.eval_docs] for task in tasks}


def report(tasks: list[Any], documents: Path, n: int) -> dict[str, Any]:
    return overlap(task_examples(tasks), corpus_texts(documents), n)
