"""Replay a window of a released training run and check it against the signed data-order log.

`commonweights verify --replay RELEASE --from-step N --steps K [--data DIR]` (docs/replay.md):

1. the release's data-order log (`replay/data_order.jsonl`) must chain line by line and end at the
   head that statement.json signs; the released checkpoint N must sit on that chain (its marker's
   head is the log's checkpoint entry at N, its weights hash the one logged there and recomputed from
   its files);
2. a fresh run folder is made from the release: its config (wandb off, `train.stop_after` = N + K),
   the token files (`replay/tokens/`, or `--data DIR` for corpora too large to publish) and
   checkpoint N; the ordinary training stage resumes from it and trains K steps in the original
   layout, writing its own data-order log from N's head;
3. every replayed step must read exactly the logged samples, doc_ids and token bytes (the data order
   is exact), its loss and gradient norm must equal the logged ones (bitwise, or within `tolerance`
   as a relative difference, reported), and the weights hash at N + K must equal the logged one;
   when it does not, the relative parameter distance to the logged checkpoint (if released) against
   the size of the window's update is reported and judged by the same tolerance.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commonweights.config import RunConfig
from commonweights.errors import InputError
from training import checkpoint, data_order

log = logging.getLogger("commonweights.replay")

LOG = data_order.RELEASE_LOG
TOKENS = data_order.RELEASE_TOKENS
CHECKPOINTS = data_order.RELEASE_CHECKPOINTS
TOKEN_FILES = (
    "tokens.json",
    "tokenizer.json",
    "text_document.idx",
    "text_document.bin",
    data_order.DOC_IDS_FILE,
)


@dataclass
class Replay:
    """What a replay found; `ok` is the verdict."""

    release: Path
    from_step: int | None = None
    steps: int | None = None
    problems: list[tuple[int | None, str]] = field(default_factory=list)
    bitwise: bool = False
    max_loss_rel_diff: float | None = None
    max_grad_norm_rel_diff: float | None = None
    weights: dict[str, Any] = field(default_factory=dict)
    chain_head: str | None = None
    tolerance: float = 0.0

    def fail(self, step: int | None, message: str) -> None:
        self.problems.append((step, message))

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_step(self) -> int | None:
        steps = [s for s, _ in self.problems if s is not None]
        return min(steps) if steps else None

    def to_record(self) -> dict[str, Any]:
        return {
            "release": str(self.release),
            "ok": self.ok,
            "from_step": self.from_step,
            "steps": self.steps,
            "chain_head": self.chain_head,
            "bitwise": self.bitwise,
            "max_loss_rel_diff": self.max_loss_rel_diff,
            "max_grad_norm_rel_diff": self.max_grad_norm_rel_diff,
            "tolerance": self.tolerance,
            "weights": self.weights,
            "first_bad_step": self.first_bad_step,
            "problems": [{"step": s, "problem": p} for s, p in self.problems],
        }


def pack(cfg: RunConfig, dest: Path) -> dict[str, Any] | None:
    """Copy what a replay needs into a release folder being built; returns the lineage's data_order.

    The log, the token files (the .bin only with release.replay_tokens) and the newest
    release.replay_checkpoints complete checkpoints. None when the run wrote no log.
    """
    from commonweights.errors import StageError

    src = cfg.paths.train / data_order.FILE
    if not src.is_file():
        log.warning("release: %s not found; the release cannot be replayed", src)
        return None
    chain = data_order.read(src)
    if not chain.ok:
        raise StageError(f"{src}: the data-order log is broken ({chain.problem}); it cannot be released")
    (dest / LOG).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest / LOG)
    (dest / TOKENS).mkdir(parents=True)
    for name in TOKEN_FILES:
        if name.endswith(".bin") and name != data_order.DOC_IDS_FILE and not cfg.release.replay_tokens:
            continue
        shutil.copyfile(cfg.paths.tokens / name, dest / TOKENS / name)
    shipped = (
        checkpoint.complete(cfg.paths.checkpoints)[-cfg.release.replay_checkpoints :]
        if cfg.release.replay_checkpoints
        else []
    )
    for it, path in shipped:
        if it not in chain.checkpoints:
            raise StageError(
                f"{path}: this checkpoint is not on {src}'s chain; it cannot be released for replay"
            )
        shutil.copytree(path, dest / CHECKPOINTS / path.name)
    return {
        "log": LOG,
        "head": chain.head,
        "last_step": max(chain.steps, default=0),
        "seed": cfg.train.seed,
        "checkpoints": {str(s): e["weights_sha256"] for s, e in sorted(chain.checkpoints.items())},
        "replayable_from": [it for it, _ in shipped],
    }


def rel_diff(a: float, b: float) -> float:
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def released_checkpoints(release: Path) -> dict[int, Path]:
    root = release / CHECKPOINTS
    return {it: p for it, p in checkpoint.complete(root)} if root.is_dir() else {}


def _window(
    chain: data_order.Chain, ckpts: dict[int, Path], from_step: int | None, steps: int | None
) -> tuple[int, int]:
    if not ckpts:
        raise InputError(f"no complete checkpoint under {CHECKPOINTS}: this release cannot be replayed")
    n = min(ckpts) if from_step is None else from_step
    if n not in ckpts:
        raise InputError(
            f"--from-step {n}: the release carries checkpoints {sorted(ckpts)} only; "
            "replay starts at one of them"
        )
    last = max(chain.steps) if chain.steps else n
    if steps is None:
        later = [s for s in chain.checkpoints if s > n]
        steps = (min(later) if later else last) - n
    if steps < 1 or n + steps > last:
        raise InputError(
            f"--steps {steps}: the log covers steps up to {last}, so from {n} replay 1..{last - n} steps"
        )
    return n, steps


def _stage(release: Path, work: Path, n: int, end: int, data: Path | None, one_process: bool) -> RunConfig:
    """A run folder for the replay: config, token files and checkpoint n."""
    record = json.loads((release / "config.json").read_text())
    record["dir"] = str(work)
    # Training reads only tokens/; the crawl inputs named on the publisher's disks are not needed here.
    record["data"] = {"sample": record["data"].get("sample") or {}}
    record["train"] = {**record["train"], "wandb": "disabled", "stop_after": end, "keep_last": 2}
    if one_process:  # checkpoints reshard; the sums run in another order, so results are not bitwise
        record["train"].update(nproc=1, tensor_parallel=1, pipeline_parallel=1)
    cfg = RunConfig.model_validate(record)
    tokens = cfg.paths.tokens
    tokens.mkdir(parents=True)
    source = data if data is not None else release / TOKENS
    for name in TOKEN_FILES:
        found = source / name
        if not found.is_file():
            hint = (
                "pass --data DIR (a copy of the run's tokens/ folder)"
                if data is None
                else "point --data at the run's tokens/ folder"
            )
            raise InputError(f"{found}: not found; {hint}")
        (tokens / name).symlink_to(found.resolve())
    cfg.paths.checkpoints.mkdir(parents=True)
    shutil.copytree(
        release / CHECKPOINTS / checkpoint.iter_name(n), cfg.paths.checkpoints / checkpoint.iter_name(n)
    )
    return cfg


def _compare(
    chain: data_order.Chain, mine: data_order.Chain, n: int, k: int, tolerance: float, r: Replay
) -> bool:
    """Step by step against the log; returns whether every loss and grad norm matched bitwise."""
    bitwise, loss_d, grad_d = True, 0.0, 0.0
    for s in range(n + 1, n + k + 1):
        want, got = chain.steps[s], mine.steps.get(s)
        if got is None:
            r.fail(s, f"step {s}: the replay did not reach it")
            break
        for key in ("samples", "doc_ids", "tokens_sha256"):
            if got[key] != want[key]:
                r.fail(s, f"step {s}: the batch's {key} differ from the log (the data or its order changed)")
                break
        ld, gd = rel_diff(got["loss"], want["loss"]), rel_diff(got["grad_norm"], want["grad_norm"])
        bitwise = bitwise and got["loss"] == want["loss"] and got["grad_norm"] == want["grad_norm"]
        loss_d, grad_d = max(loss_d, ld), max(grad_d, gd)
        if max(ld, gd) > tolerance:
            r.fail(
                s,
                f"step {s}: loss {got['loss']!r} vs logged {want['loss']!r} (relative difference {ld:.3g}), "
                f"grad norm relative difference {gd:.3g}, above the tolerance {tolerance:g}",
            )
    r.max_loss_rel_diff, r.max_grad_norm_rel_diff = loss_d, grad_d
    return bitwise


def _distance(replayed: Path, logged: Path, start: Path) -> dict[str, float]:
    """||replayed - logged|| and ||logged - start|| over all weights, and their ratio."""
    diff = update = 0.0
    for (ka, a), (kb, b), (kc, c) in zip(
        checkpoint.weights(replayed), checkpoint.weights(logged), checkpoint.weights(start), strict=True
    ):
        if not ka == kb == kc or a.shape != b.shape:
            raise InputError(f"{logged}: its weights do not have the replayed checkpoint's keys and shapes")
        diff += float(((a.double() - b.double()) ** 2).sum())
        update += float(((b.double() - c.double()) ** 2).sum())
    d, u = math.sqrt(diff), math.sqrt(update)
    return {"distance": d, "update": u, "relative": d / u if u else (0.0 if d == 0 else math.inf)}


def replay(
    release: Path,
    from_step: int | None = None,
    steps: int | None = None,
    data: Path | None = None,
    work: Path | None = None,
    tolerance: float = 1e-4,
    one_process: bool = False,
) -> Replay:
    release = Path(release)
    r = Replay(release=release, tolerance=tolerance)
    statement = json.loads((release / "statement.json").read_text())
    signed = statement.get("lineage", {}).get("data_order")
    chain, problems = data_order.check_release(release, signed)
    r.chain_head = chain.head
    for step, file, problem in problems:
        r.fail(step, f"{file}: {problem}")
    if not r.ok:
        return r
    ckpts = released_checkpoints(release)
    n, k = _window(chain, ckpts, from_step, steps)
    r.from_step, r.steps = n, k
    start = ckpts[n]
    start_hash = checkpoint.weights_sha256(start)
    if start_hash != chain.checkpoints[n]["weights_sha256"]:
        r.fail(n, f"{CHECKPOINTS}/{start.name}: its weights hash to {start_hash}, not the logged one")
        return r

    owned = work is None
    root = Path(tempfile.mkdtemp(prefix="commonweights-replay-")) if work is None else Path(work)
    try:
        if root.exists() and any(root.iterdir()):
            raise InputError(f"{root}: --work must be a new or empty folder")
        cfg = _stage(release, root, n, n + k, data, one_process)
        from training.launch import launch

        log.info("replay: steps %d..%d of %s in %s", n + 1, n + k, release, root)
        launch(cfg)
        head = (checkpoint.read_marker(cfg.paths.checkpoints / checkpoint.iter_name(n)) or {}).get(
            "data_order_head"
        )
        mine = data_order.read(cfg.paths.train / data_order.FILE, start_head=head, start_step=n)
        if not mine.ok:
            r.fail(mine.bad_step, f"the replay's own log: {mine.problem}")
            return r
        r.bitwise = _compare(chain, mine, n, k, tolerance, r)
        end = n + k
        ended = cfg.paths.checkpoints / checkpoint.iter_name(end)
        got = (checkpoint.read_marker(ended) or {}).get("weights_sha256")
        logged = chain.checkpoints.get(end, {}).get("weights_sha256")
        r.weights = {"step": end, "replayed_sha256": got, "logged_sha256": logged, "equal": got == logged}
        if logged is None:
            r.fail(end, f"step {end}: the log has no weights hash there; replay to a logged checkpoint")
        elif got != logged:
            if r.bitwise:
                r.fail(
                    end,
                    f"step {end}: every loss matched bit for bit but the weights hash differs from "
                    "the logged one: the logged hash does not come from these steps",
                )
            r.bitwise = False
            if end in ckpts:
                d = _distance(ended, ckpts[end], start)
                r.weights.update(d)
                if d["relative"] > tolerance:
                    r.fail(
                        end,
                        f"step {end}: replayed weights are {d['relative']:.3g} of the window's update "
                        f"away from the released checkpoint (tolerance {tolerance:g})",
                    )
            elif r.ok:
                r.fail(
                    end,
                    f"step {end}: the weights hash differs and the release lacks checkpoint {end} "
                    "to measure by how much",
                )
        return r
    finally:
        if owned:
            shutil.rmtree(root, ignore_errors=True)
