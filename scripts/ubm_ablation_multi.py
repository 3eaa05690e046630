"""MB-STR on the target behaviour: against itself with one behaviour type, and against our SASRec.

    python scripts/ubm_ablation_multi.py [--seeds 3] [--force]     # run (cached), print the report section
    python scripts/ubm_ablations.py multi | report                  # the same through the part-2 driver

The multi-type-behaviour half of issue 12's evidence. ``run`` caches one JSON
per source x model x seed under ``docs/results/ubm_long_multi/``
(``multi-<source>-<model>-seed<k>.json``); ``report_section`` turns the
cache into the markdown section of ``docs/results/ubm_long_multi.md``.

Data (built once, the same for every seed; ML-100K, the scenario's 80/20 user
split with split seed 0, **training users only**, as ``recgym pretrain``):

* ``sim``: ML-100K's behaviour user (``recgym/ML100K-Behavior-v0``: skip /
  click / purchase, boredom, patience) recorded under the fixed softmax
  logging policy (``recgym log-behavior`` with its defaults: 100 steps per
  user, temperature 0.2 stars, seed 0), start items included;
* ``ml``: ML-100K's ratings read as behaviours (1-3 stars skip "dislike",
  4 click "view", 5 purchase "like": what a noise-free behaviour user does).

Protocol (MB-STR's): the target behaviour is purchase (like); each user's last
purchase tests and the second-last validates; the model sees the ``N`` = 50
interactions of every behaviour before the target; every item is ranked
(items the user interacted with before are excluded: in both logs a user
never meets an item twice); HR@10 and NDCG@10. Models, all d = 16, 2 heads, 2
layers, dropout 0.2 (MB-STR's settings), Adam, the same batch size, learning
rate and epoch budget, the epoch with the best validation NDCG@10 tested:

* ``mbstr``: MB-STR with the three behaviour types, cloze training (mask 0.2);
* ``mbstr-1``: the same with one behaviour type (``n_behaviors=1``: the
  history's behaviours are not read; the relative-position bias and the
  expert head remain, shared by the one type);
* ``sasrec``: recgym's SASRec (causal, learned positions), next item at every
  position of the same windows (the SASRec paper's training); it reads no
  behaviour type either.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from script_utils import git_commit

REPO = Path(__file__).resolve().parents[1]
from recgym.pretrain import multi_behavior_report
from recgym.pretrain.multi_behavior_report import (
    EMBEDDING_DIM,
    MODELS,
    N_BLOCKS,
    N_HEADS,
    PREFIX,
    SOURCES,
)

OUT_DIR = REPO / "docs" / "results" / "ubm_long_multi"
HISTORY_LENGTH = 50
#: the loop, the same for every model: at most EPOCHS epochs, stopping after PATIENCE epochs without a
#: better validation NDCG@10 (RecBole's and `recgym pretrain`'s patience); about 5 minutes of one core per seed
EPOCHS = 40
PATIENCE = 10
BATCH_SIZE = 64
LEARNING_RATE = 3e-3
TARGET = "purchase"


_LOGS: dict[str, Any] = {}


def source_log(source: str) -> Any:
    """The multi-behaviour log of ``source`` (built once per process)."""
    from recgym.experiments.behavior_log import LoggingSettings, rating_behavior_log, record_behavior_log
    from recgym.scenario import make_scenario

    if source not in _LOGS:
        scenario = make_scenario("ml-100k", "behavior", split_seed=0)
        if source == "sim":
            _LOGS[source] = record_behavior_log(scenario, LoggingSettings())
        elif source == "ml":
            _LOGS[source] = rating_behavior_log(scenario.training_log())
        else:
            raise ValueError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    return _LOGS[source]


def run_one(source: str, model: str, seed: int) -> dict[str, Any]:
    """Train and test one model on one source with one seed; return the record that is cached."""
    import torch

    from recgym.experiments.behavior_log import behavior_counts
    from recgym.pretrain import ClozeTask, NextItemTask, TrainerConfig, pretrain_encoder
    from state_encoders.mbstr import behavior_code

    torch.set_num_threads(1)
    log = source_log(source)
    target = behavior_code(TARGET)
    if model == "sasrec":
        task = NextItemTask(exclude_seen=True, target_behavior=target, window_stride=HISTORY_LENGTH - 1)
        encoder, kwargs = "sasrec", {"n_heads": N_HEADS, "n_blocks": N_BLOCKS}
    else:
        task = ClozeTask(target_behavior=target, stride=HISTORY_LENGTH, exclude_seen=True)
        encoder = "mbstr"
        kwargs = {"n_heads": N_HEADS, "n_blocks": N_BLOCKS, "target_behavior": target,
                  "n_behaviors": 1 if model == "mbstr-1" else 3}
    kwargs["embedding_dim"] = EMBEDDING_DIM
    tic, cpu = time.perf_counter(), time.process_time()
    trained = pretrain_encoder(log, encoder, task, HISTORY_LENGTH, kwargs,
                               TrainerConfig(epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LEARNING_RATE, patience=PATIENCE,
                                             seed=seed, progress=False))
    r = trained.result
    return {
        "source": source, "model": model, "encoder": encoder, "encoder_kwargs": kwargs, "task": task.name,
        "seed": seed, "code_commit": git_commit(REPO), "target_behavior": TARGET,
        "history_length": HISTORY_LENGTH, "epochs": r.epochs, "epoch_budget": EPOCHS, "patience": PATIENCE,
        "stopped_early": r.stopped_early, "batch_size": BATCH_SIZE, "lr": LEARNING_RATE,
        "data": {"log": log.name, "users": int(log.interactions["user"].nunique()), "interactions": len(log),
                 "behaviors": behavior_counts(log), "logging": log.meta.get("behavior_log", {})},
        "targets": {k: int(v.size) for k, v in trained.split.items()},
        "parameters": sum(p.numel() for p in trained.encoder.parameters()),
        "test": r.test, "valid": r.valid, "best_epoch": r.best_epoch,
        "seconds_per_epoch": r.seconds_per_epoch, "train_seconds": r.train_seconds,
        "total_seconds": time.perf_counter() - tic, "cpu_seconds": time.process_time() - cpu,
        "valid_curve": [h[task.monitor] for h in r.history],
    }


def run(seeds: int, out_dir: Path, force: bool) -> None:
    """Run every source x model for seeds ``0 .. seeds - 1``, caching ``multi-<source>-<model>-seed<k>.json``."""
    from recgym.experiments.run_dir import write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for source in SOURCES:
        for model in MODELS:
            for seed in range(seeds):
                out = out_dir / f"{PREFIX}{source}-{model}-seed{seed}.json"
                if out.exists() and not force:
                    print(f"{source} {model} seed {seed}: cached", flush=True)
                    continue
                print(f"{source} {model} seed {seed} ...", flush=True)
                record = run_one(source, model, seed)
                write_json(out, record)
                print(f"  NDCG@10 {record['test']['NDCG@10']:.4f}, HR@10 {record['test']['HR@10']:.4f}, best epoch "
                      f"{record['best_epoch']}, {record['total_seconds']:.0f} s", flush=True)


# -- the report ---------------------------------------------------------------------------------


def report_section(out_dir: Path) -> str:
    """The markdown section of the multi-behaviour results (:mod:`recgym.pretrain.multi_behavior_report`)."""
    return multi_behavior_report.report_section(out_dir, repo=REPO)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. SEEDS-1 (default 3)")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help="where the JSON files are cached")
    parser.add_argument("--force", action="store_true", help="run again what is cached")
    parser.add_argument("--report-only", action="store_true", help="print the section from the cache, run nothing")
    args = parser.parse_args()
    if not args.report_only:
        run(args.seeds, args.out_dir, args.force)
    print(report_section(args.out_dir))


if __name__ == "__main__":
    main()
