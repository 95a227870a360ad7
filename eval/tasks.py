"""The project's own lm-eval task suite (`local`), generated from code: no third-party text.

Two tasks, each a JSONL file plus an lm-eval task YAML:
- `commonweights_cloze` (multiple_choice): a short context and four one-word continuations, one of
  them right by construction (counting, weekdays, months, alphabet, antonyms, copying a noun from
  earlier in the sentence). Chance is 0.25.
- `commonweights_paragraphs` (loglikelihood_rolling): held-out paragraphs from a small grammar;
  word/byte perplexity and bits per byte.

Items are a pure function of (seed, count); `SUITE_VERSION` goes into every task's metadata and
must change whenever the generator's output does.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

SUITE_VERSION = 1
SEED = 20261101
CLOZE_ITEMS = 200
PARAGRAPHS = 50

CLOZE_TASK = "commonweights_cloze"
PARAGRAPH_TASK = "commonweights_paragraphs"
LOCAL_TASKS: tuple[str, ...] = (CLOZE_TASK, PARAGRAPH_TASK)
# lm-eval's own task names; their data comes from the HF datasets cache (never downloaded here).
STANDARD_TASKS: tuple[str, ...] = (
    "arc_challenge",
    "arc_easy",
    "hellaswag",
    "lambada_openai",
    "piqa",
    "winogrande",
)
SUITES: dict[str, tuple[str, ...]] = {"local": LOCAL_TASKS, "standard": STANDARD_TASKS}

NUMBERS = (
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty"
).split()
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
MONTHS = ("January February March April May June July August September October November December").split()
LETTERS = list("abcdefghijklmnopqrstuvwxyz")
ANTONYMS = (
    ("hot", "cold"),
    ("up", "down"),
    ("early", "late"),
    ("wet", "dry"),
    ("open", "closed"),
    ("full", "empty"),
    ("light", "dark"),
    ("fast", "slow"),
    ("loud", "quiet"),
    ("old", "new"),
    ("high", "low"),
    ("near", "far"),
    ("soft", "hard"),
    ("thick", "thin"),
)
NAMES = "Ada Bram Cleo Dmitri Esme Farid Greta Hugo Ines Jonas Kira Lev Mina Noor Otto Priya".split()
ADJECTIVES = "blue small heavy wooden bright narrow round quiet golden painted".split()
NOUNS = "lamp kettle ladder basket compass violin blanket lantern mirror rope anchor bucket".split()
PLACES = "kitchen garden cellar attic barn workshop hallway boathouse".split()

SUBJECTS = (
    "The ferry keeper",
    "A young baker",
    "The village council",
    "Our neighbour",
    "The old carpenter",
    "A group of students",
    "The night nurse",
    "The river pilot",
    "My grandmother",
    "The librarian",
)
VERBS = ("repairs", "paints", "counts", "carries", "cleans", "measures", "sorts", "checks", "moves", "lists")
OBJECTS = (
    "the fishing nets",
    "every window on the street",
    "the wooden benches",
    "the winter apples",
    "a stack of letters",
    "the broken gate",
    "the copper pipes",
    "three heavy crates",
    "the garden tools",
    "the station clocks",
)
TIMES = (
    "before dawn",
    "every spring",
    "after the harvest",
    "on quiet Sundays",
    "when the rain stops",
    "at the end of each month",
    "during the long evenings",
)
REASONS = (
    "because nobody else remembers how",
    "so that the market can open on time",
    "while the children are at school",
    "as the rules of the town require",
    "to keep the work from piling up",
)
LINKS = ("Later,", "Afterwards,", "Meanwhile,", "In the end,", "Sometimes,")


@dataclass(frozen=True)
class ClozeItem:
    context: str
    choices: list[str]
    label: int
    kind: str


def _choose(rng: random.Random, answer: str, pool: list[str], context: str, kind: str) -> ClozeItem:
    distractors = rng.sample([w for w in pool if w != answer], 3)
    choices = [answer, *distractors]
    rng.shuffle(choices)
    return ClozeItem(context, choices, choices.index(answer), kind)


def _counting(rng: random.Random) -> ClozeItem:
    start = rng.randrange(len(NUMBERS) - 4)
    seen = NUMBERS[start : start + 3]
    context = "Counting up: " + ", ".join(seen) + ","
    return _choose(rng, NUMBERS[start + 3], NUMBERS, context, "counting")


def _cycle(rng: random.Random, seq: list[str], unit: str, kind: str) -> ClozeItem:
    i = rng.randrange(len(seq))
    return _choose(rng, seq[(i + 1) % len(seq)], seq, f"The {unit} after {seq[i]} is", kind)


def _alphabet(rng: random.Random) -> ClozeItem:
    start = rng.randrange(len(LETTERS) - 4)
    context = "The letters go " + ", ".join(LETTERS[start : start + 3]) + ","
    return _choose(rng, LETTERS[start + 3], LETTERS, context, "alphabet")


def _antonym(rng: random.Random) -> ClozeItem:
    pairs = [*ANTONYMS, *((b, a) for a, b in ANTONYMS)]
    word, answer = rng.choice(pairs)
    pool = [w for pair in ANTONYMS for w in pair if w != word]
    return _choose(rng, answer, pool, f"The opposite of {word} is", "antonym")


def _copy(rng: random.Random) -> ClozeItem:
    name, adj, noun, place = (
        rng.choice(NAMES),
        rng.choice(ADJECTIVES),
        rng.choice(NOUNS),
        rng.choice(PLACES),
    )
    context = f"{name} keeps a {adj} {noun} in the {place}. In the {place}, {name} keeps a {adj}"
    return _choose(rng, noun, list(NOUNS), context, "copy")


def cloze_items(n: int = CLOZE_ITEMS, seed: int = SEED) -> list[ClozeItem]:
    """`n` items cycling through the item kinds, each with its answer at a random position."""
    rng = random.Random(seed)
    makers = (
        _counting,
        lambda r: _cycle(r, DAYS, "day", "weekday"),
        lambda r: _cycle(r, MONTHS, "month", "month"),
        _alphabet,
        _antonym,
        _copy,
    )
    return [makers[i % len(makers)](rng) for i in range(n)]


def paragraphs(n: int = PARAGRAPHS, seed: int = SEED + 1) -> list[str]:
    """`n` paragraphs of three to six generated sentences."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        sentences = []
        for k in range(rng.randint(3, 6)):
            s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TIMES)}"
            if rng.random() < 0.5:
                s += f" {rng.choice(REASONS)}"
            if k and rng.random() < 0.3:
                s = f"{rng.choice(LINKS)} {s[0].lower()}{s[1:]}"
            sentences.append(s + ".")
        out.append(" ".join(sentences))
    return out


def task_config(task: str, data_file: Path, cache_dir: Path) -> dict[str, Any]:
    """The lm-eval YAML of one local task. Paths are absolute: lm-eval resolves relative data_files
    from the working directory, not from the YAML (STACK-FACTS); cache_dir keeps the datasets cache
    in the run folder even if `datasets` was imported before HF_HOME was set."""
    common: dict[str, Any] = {
        "task": task,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}, "cache_dir": str(cache_dir)},
        "test_split": "test",
        "metadata": {"version": SUITE_VERSION},
    }
    if task == CLOZE_TASK:
        return {
            **common,
            "output_type": "multiple_choice",
            "doc_to_text": "{{context}}",
            "doc_to_choice": "choices",
            "doc_to_target": "label",
            "metric_list": [
                {"metric": m, "aggregation": "mean", "higher_is_better": True} for m in ("acc", "acc_norm")
            ],
        }
    if task == PARAGRAPH_TASK:
        return {
            **common,
            "output_type": "loglikelihood_rolling",
            "doc_to_text": "",
            "doc_to_target": "{{text}}",
            "metric_list": [
                {
                    "metric": "word_perplexity",
                    "aggregation": "weighted_perplexity",
                    "higher_is_better": False,
                },
                {
                    "metric": "byte_perplexity",
                    "aggregation": "weighted_perplexity",
                    "higher_is_better": False,
                },
                {"metric": "bits_per_byte", "aggregation": "bits_per_byte", "higher_is_better": False},
            ],
        }
    raise ValueError(f"{task!r} is not a local task; local tasks: {', '.join(LOCAL_TASKS)}")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def write_task_data(folder: Path, cloze: list[ClozeItem], texts: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / f"{CLOZE_TASK}.jsonl", [asdict(item) for item in cloze])
    write_jsonl(folder / f"{PARAGRAPH_TASK}.jsonl", [{"text": t} for t in texts])


def write_task_yamls(folder: Path, data_root: Path, cache_dir: Path) -> None:
    """Write the YAMLs into `folder`, pointing at the JSONL files under `data_root`.

    The evaluate stage runs lm-eval from its temporary folder, then rewrites the YAMLs to point at the
    final location, so `lm_eval --include_path RUN/eval/tasks` works on the finished run."""
    for task in LOCAL_TASKS:
        doc = task_config(task, data_root / f"{task}.jsonl", cache_dir)
        (folder / f"{task}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def write_local_suite(folder: Path, cache_dir: Path) -> list[str]:
    """Generate the `local` suite into `folder` (JSONL + YAML); returns its task names."""
    write_task_data(folder, cloze_items(), paragraphs())
    write_task_yamls(folder, folder, cache_dir)
    return list(LOCAL_TASKS)
