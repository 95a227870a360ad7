"""The evaluate stage: the real lm-eval harness on a tiny random Llama, offline."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import lm_eval
import pytest
import torch
import yaml
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from commonweights.config import RunConfig, TokenizeConfig
from commonweights.errors import ConfigError, InputError
from eval import evaluate, tasks
from pipelines.tokenize import EOD, PAD, train_tokenizer


def save_tiny_model(folder: Path) -> Path:
    """A random 2-layer Llama and a BPE tokenizer trained on generated text, in HF format."""
    texts = tasks.paragraphs(40, seed=7) + [i.context for i in tasks.cloze_items(60, seed=7)]
    tok = train_tokenizer(texts, TokenizeConfig(vocab_size=300, min_frequency=2))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOD, bos_token=EOD, pad_token=PAD)
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=256,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=1,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("model"))


def config(root: Path, **eval_: object) -> RunConfig:
    return RunConfig.model_validate(
        {
            "name": "t",
            "dir": str(root),
            "data": {"sample": {}},
            "eval": {"limit": 20, "batch_size": 8, **eval_},
        }
    )


def write_documents(cfg: RunConfig, texts: list[str]) -> None:
    """curate/documents/ as the curate stage leaves it: kept documents, one JSON line each."""
    cfg.paths.documents.mkdir(parents=True, exist_ok=True)
    lines = (json.dumps({"doc_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    (cfg.paths.documents / "part-00000-of-00001.jsonl").write_text("".join(lines))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_local_suite_runs_and_results_match_the_samples(tmp_path: Path, model_dir: Path) -> None:
    cfg = config(tmp_path / "run")
    cfg.paths.root.mkdir()
    (cfg.paths.root / "hf").symlink_to(model_dir)
    # The training corpus quotes one evaluation paragraph inside unrelated text.
    leaked = tasks.paragraphs()[7]
    write_documents(
        cfg, ["A note about boats and harbours, nothing else.", f"Found online: {leaked} The end."]
    )

    record = evaluate.run(cfg)

    out = cfg.paths.eval
    results = json.loads((out / "results.json").read_text())
    assert results == record
    assert results["lm_eval_version"] == lm_eval.__version__
    assert results["model"] == str(cfg.paths.hf)
    assert (results["batch_size"], results["limit"]) == (8, 20)
    assert results["seeds"] == evaluate.SEEDS
    assert set(results["tasks"]) == {tasks.CLOZE_TASK, tasks.PARAGRAPH_TASK}
    for task in results["tasks"].values():
        assert task["n"] == 20
        assert task["version"] == tasks.SUITE_VERSION

    cloze = results["tasks"][tasks.CLOZE_TASK]["metrics"]
    samples = read_jsonl(out / f"samples_{tasks.CLOZE_TASK}.jsonl")
    assert len(samples) == 20
    assert cloze["acc"] == pytest.approx(sum(s["acc"] for s in samples) / 20)
    assert cloze["acc_norm"] == pytest.approx(sum(s["acc_norm"] for s in samples) / 20)
    p = cloze["acc"]
    assert cloze["acc_stderr"] == pytest.approx(math.sqrt(p * (1 - p) / 19))

    ppl = results["tasks"][tasks.PARAGRAPH_TASK]["metrics"]
    samples = read_jsonl(out / f"samples_{tasks.PARAGRAPH_TASK}.jsonl")
    ll = sum(s["resps"][0][0] for s in samples)
    nbytes = sum(len(s["doc"]["text"].encode()) for s in samples)
    assert ppl["bits_per_byte"] == pytest.approx(-ll / nbytes / math.log(2))
    assert ppl["byte_perplexity"] == pytest.approx(math.exp(-ll / nbytes))
    assert ppl["word_perplexity"] > ppl["byte_perplexity"] > 1
    assert ppl["bits_per_byte_stderr"] is None  # lm-eval reports N/A for corpus-level perplexity

    # The finished run's task files point at themselves, and the HF cache stayed in the run folder.
    for name in (tasks.CLOZE_TASK, tasks.PARAGRAPH_TASK):
        doc = yaml.safe_load((out / "tasks" / f"{name}.yaml").read_text())
        data = Path(doc["dataset_kwargs"]["data_files"]["test"])
        assert data == out / "tasks" / f"{name}.jsonl" and data.is_file()
    assert not out.with_name("eval.tmp").exists()

    # Decontamination: the quoted paragraph's task is flagged, the cloze task is not.
    decon = json.loads((out / "decontamination.json").read_text())
    assert decon["ngram"] == cfg.eval.decontamination_ngram == 13 and decon["corpus_documents"] == 2
    para, cloze_d = decon["tasks"][tasks.PARAGRAPH_TASK], decon["tasks"][tasks.CLOZE_TASK]
    assert para["examples"] == tasks.PARAGRAPHS and para["flagged"] and para["contaminated"] >= 1
    assert 7 in [o["index"] for o in para["overlapping"]] or para["contaminated"] > 5
    assert para["fraction"] == para["contaminated"] / tasks.PARAGRAPHS
    assert (
        not cloze_d["flagged"] and cloze_d["contaminated"] == 0 and cloze_d["examples"] == tasks.CLOZE_ITEMS
    )
    # No training checkpoints in this run folder: the curve has no extra points.
    assert json.loads((out / "checkpoints.json").read_text()) == {"checkpoints": []}
    assert (cfg.paths.root / "cache" / "huggingface" / "datasets").is_dir()
    assert os.environ.get("HF_HOME") != str(cfg.paths.root / "cache" / "huggingface")


def test_the_labelled_choice_decides_accuracy(tmp_path: Path, model_dir: Path) -> None:
    # A random model gives a one-token continuation a far higher log-likelihood than a ten-token
    # one, so which index `label` names decides each item's acc: 15 of 20 point at the short choice.
    short, longs = "x", ["x " * 9 + "x", "y " * 9 + "y", "z " * 9 + "z"]
    items = []
    for i in range(20):
        choices = [*longs]
        choices.insert(i % 4, short)
        gold = i % 4 if i < 15 else (i % 4 + 1) % 4
        items.append(tasks.ClozeItem(f"Item {i} says", choices, gold, "fixed"))
    folder = tmp_path / "tasks"
    tasks.write_task_data(folder, items, ["A short paragraph."])
    tasks.write_task_yamls(folder, folder, tmp_path / "cache" / "datasets")

    report = evaluate.evaluate(
        model_dir,
        [tasks.CLOZE_TASK],
        tmp_path / "out",
        include_path=folder,
        batch_size=4,
        limit=None,
        hf_home=tmp_path / "cache",
    )

    assert report.tasks[tasks.CLOZE_TASK].metrics["acc"] == 0.75
    samples = read_jsonl(tmp_path / "out" / f"samples_{tasks.CLOZE_TASK}.jsonl")
    assert [s["acc"] for s in samples] == [1.0] * 15 + [0.0] * 5
    assert [s["target"] for s in samples] == [it.label for it in items]


def test_unknown_suite_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown suite 'mmlu'; known suites: local, standard"):
        evaluate.run(config(tmp_path, suites=["local", "mmlu"]))


def test_missing_model_says_to_run_export(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"hf/config\.json: no exported model; run `commonweights export`"):
        evaluate.run(config(tmp_path))


@pytest.mark.slow  # lm-eval indexes its ~14k built-in task configs (~40 s here)
def test_standard_suite_fails_clearly_without_cached_datasets(tmp_path: Path, model_dir: Path) -> None:
    cfg = config(tmp_path / "run", suites=["standard"])
    cfg.paths.root.mkdir()
    (cfg.paths.root / "hf").symlink_to(model_dir)
    write_documents(cfg, ["Some kept text."])
    with pytest.raises(InputError) as err:
        evaluate.run(cfg)
    msg = str(err.value)
    assert "not found in the Hugging Face cache" in msg
    for name in tasks.STANDARD_TASKS:
        assert name in msg
    assert "remove 'standard' from eval.suites" in msg
    assert not cfg.paths.eval.exists()


def test_suite_tasks_keep_order_without_repeats() -> None:
    assert evaluate.suite_tasks(["local", "local"]) == list(tasks.LOCAL_TASKS)
    assert evaluate.suite_tasks(["standard", "local"])[-2:] == list(tasks.LOCAL_TASKS)
    with pytest.raises(ConfigError, match="eval.suites is empty"):
        evaluate.suite_tasks([])


def test_generated_items_are_well_formed_and_reproducible() -> None:
    items = tasks.cloze_items()
    assert items == tasks.cloze_items() and len(items) == tasks.CLOZE_ITEMS
    assert {i.kind for i in items} == {"counting", "weekday", "month", "alphabet", "antonym", "copy"}
    for it in items:
        assert len(set(it.choices)) == 4 and 0 <= it.label < 4
    # Right answers sit at every position, so always picking one index scores chance.
    assert {it.label for it in items} == {0, 1, 2, 3}
    by_kind = {i.kind: i for i in items}
    assert by_kind["copy"].choices[by_kind["copy"].label] in by_kind["copy"].context
    texts = tasks.paragraphs()
    assert texts == tasks.paragraphs() and len(set(texts)) == len(texts) == tasks.PARAGRAPHS


def test_overlap_counts_examples_sharing_an_ngram_with_the_corpus() -> None:
    from eval.decontaminate import overlap

    examples = {
        "quoted": [
            "one two three four five six seven eight nine",  # in the corpus, as a whole 9-gram
            "alpha beta gamma delta epsilon zeta eta theta iota",  # nowhere
            "Seven, Eight! nine ten eleven twelve thirteen fourteen",  # case and punctuation ignored
        ],
        "short": ["too short to say anything"],
    }
    corpus = [
        "zero one two three four five six seven eight nine ten",
        "SEVEN eight nine ten eleven twelve thirteen fourteen",
    ]
    rep = overlap(examples, corpus, 8)
    quoted, short = rep["tasks"]["quoted"], rep["tasks"]["short"]
    assert rep["corpus_documents"] == 2 and rep["ngram"] == 8
    assert (quoted["examples"], quoted["contaminated"], quoted["flagged"]) == (3, 2, True)
    assert [o["index"] for o in quoted["overlapping"]] == [0, 2]
    assert quoted["overlapping"][1]["ngram"] == "seven eight nine ten eleven twelve thirteen fourteen"
    assert (short["too_short"], short["checked"], short["flagged"]) == (1, 0, False)
    clean = overlap(examples, ["unrelated words only, many of them, in a long enough line here"], 8)
    assert not any(t["flagged"] for t in clean["tasks"].values())
