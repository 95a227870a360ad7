"""Decontamination: word n-gram overlap between a document and the evaluation tasks named in the policy.

An evaluation item contaminates a document when the document contains one of the item's word n-grams
(n = `governance.decontam_ngram`, 13 by default as in GPT-3's analysis); an item shorter than n
words counts as one gram of its own length if it has at least `MIN_ITEM_WORDS` words (shorter items,
such as "The day after Monday is Tuesday", are everyday language, not evidence of a leak). Words are
lower-cased runs of letters and digits, so punctuation and spacing do not hide a copy.

Task texts come from the project's local suite (`eval/tasks.py`, read-only: the generator is the
source of truth), each item as the evaluator shows it: context plus the correct continuation.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from commonweights.errors import ConfigError

MIN_ITEM_WORDS = 8
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _key(gram: Sequence[str]) -> bytes:
    return hashlib.blake2b(" ".join(gram).encode(), digest_size=8).digest()


@dataclass
class Index:
    """Hashed n-grams of every task item, by gram length, each mapped to the tasks it came from."""

    n: int
    grams: dict[int, dict[bytes, set[str]]] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)  # task → items indexed
    skipped: dict[str, int] = field(default_factory=dict)  # task → items too short to index

    def add(self, task: str, item: str) -> None:
        w = words(item)
        if len(w) < MIN_ITEM_WORDS:
            self.skipped[task] = self.skipped.get(task, 0) + 1
            return
        size = min(self.n, len(w))
        table = self.grams.setdefault(size, {})
        for i in range(len(w) - size + 1):
            table.setdefault(_key(w[i : i + size]), set()).add(task)
        self.items[task] = self.items.get(task, 0) + 1

    def tasks_in(self, text: str) -> list[str]:
        """Sorted names of the tasks whose items overlap `text`."""
        w = words(text)
        found: set[str] = set()
        for size, table in self.grams.items():
            for i in range(len(w) - size + 1):
                hit = table.get(_key(w[i : i + size]))
                if hit:
                    found |= hit
        return sorted(found)


def reason(task: str) -> str:
    """The manifest reason code of a document that contains an item of `task`."""
    return f"contaminated:{task}"


def local_task_items(task: str) -> Iterable[str]:
    """The texts of one local-suite task as lm-eval presents them (context + correct answer)."""
    from eval import tasks

    if task == tasks.CLOZE_TASK:
        return (f"{item.context} {item.choices[item.label]}" for item in tasks.cloze_items())
    if task == tasks.PARAGRAPH_TASK:
        return tasks.paragraphs()
    raise ConfigError(
        f"governance.decontaminate: {task!r} is not a task this project can read offline; "
        f"local tasks: {', '.join(tasks.LOCAL_TASKS)}"
    )


def build_index(task_names: Iterable[str], n: int) -> Index:
    index = Index(n)
    for task in task_names:
        for item in local_task_items(task):
            index.add(task, item)
    return index
