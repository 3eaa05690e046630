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
import math
import sys
import time
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:  # imported from a test, not run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from script_utils import git_commit  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "docs" / "results" / "ubm_long_multi"
PREFIX = "multi-"

SOURCES = ("sim", "ml")
MODELS = ("mbstr", "mbstr-1", "sasrec")
MODEL_LABELS = {"mbstr": "MB-STR (3 behaviour types)", "mbstr-1": "MB-STR, one behaviour type",
                "sasrec": "SASRec (no behaviour types)"}
SOURCE_LABELS = {"sim": "behaviour user, logged (skip / click / purchase)",
                 "ml": "ML-100K ratings (dislike / view / like)"}
#: MB-STR's settings (official code, REFERENCES.md): d 16, 2 heads, 2 layers, sequences of 50
EMBEDDING_DIM = 16
N_HEADS = 2
N_BLOCKS = 2
HISTORY_LENGTH = 50
#: the loop, the same for every model: at most EPOCHS epochs, stopping after PATIENCE epochs without a
#: better validation NDCG@10 (RecBole's and `recgym pretrain`'s patience); about 5 minutes of one core per seed
EPOCHS = 40
PATIENCE = 10
BATCH_SIZE = 64
LEARNING_RATE = 3e-3
TARGET = "purchase"


def _use_this_checkout() -> None:
    """Import recgym from this checkout (``python scripts/...`` puts only ``scripts/`` on the path)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


_LOGS: dict[str, Any] = {}


def source_log(source: str) -> Any:
    """The multi-behaviour log of ``source`` (built once per process)."""
    _use_this_checkout()
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
    _use_this_checkout()
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


def _stats(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    mean, std = _stats(values)
    return f"{mean:.4f} ± {std:.4f}" if len(values) > 1 else f"{mean:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _records(out_dir: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    _use_this_checkout()
    from recgym.experiments.run_dir import read_json

    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in sorted(Path(out_dir).glob(f"{PREFIX}*.json")):
        record = read_json(path)
        found.setdefault((record["source"], record["model"]), []).append(record)
    return found


def _compare(mine: list[dict[str, Any]], other: list[dict[str, Any]], metric: str) -> tuple[float, float, int, int]:
    """Mean and std of the per-seed difference ``mine - other`` in ``metric``, seeds won, seeds paired."""
    by_seed = {r["seed"]: r["test"][metric] for r in other}
    diffs = [r["test"][metric] - by_seed[r["seed"]] for r in mine if r["seed"] in by_seed]
    if not diffs:
        return math.nan, math.nan, 0, 0
    mean, std = _stats(diffs)
    return mean, std, sum(d > 0 for d in diffs), len(diffs)


def report_section(out_dir: Path) -> str:
    """The markdown section of the multi-behaviour results, from the JSON cached in ``out_dir``."""
    records = _records(out_dir)
    if not records:
        return ("## Multi-type behaviour: MB-STR\n\nNo results cached in "
                f"`{Path(out_dir).relative_to(REPO) if Path(out_dir).is_relative_to(REPO) else out_dir}` yet: run "
                "`python scripts/ubm_ablations.py multi`.\n")
    any_record = next(iter(records.values()))[0]
    seeds = sorted({r["seed"] for rs in records.values() for r in rs})
    total = sum(r["total_seconds"] for rs in records.values() for r in rs)
    cpu = sum(r["cpu_seconds"] for rs in records.values() for r in rs)
    lines = [
        "## Multi-type behaviour: MB-STR",
        "",
        f"Written by `scripts/ubm_ablation_multi.py` (`python scripts/ubm_ablations.py multi`) from "
        f"`docs/results/ubm_long_multi/{PREFIX}*.json`. Target behaviour: purchase (like). Each user's last purchase "
        "tests and the second-last validates; the model reads the "
        f"{any_record['history_length']} interactions of every behaviour before it; every item is ranked, items "
        "met before excluded; HR@10 and NDCG@10, mean ± sample std over seeds "
        f"{', '.join(map(str, seeds))} (seeds change the initialisation, the shuffling and the masks; the data are "
        f"fixed). Every model: d {EMBEDDING_DIM}, {N_HEADS} heads, {N_BLOCKS} layers, dropout 0.2, Adam lr "
        f"{any_record['lr']:g}, batch {any_record['batch_size']}, at most {any_record['epoch_budget']} epochs, "
        f"stopping after {any_record['patience']} without a better validation NDCG@10; the best epoch is tested "
        "(a `*` marks a run still improving when the budget ran out: its best epoch is among the last three). MB-STR trains by cloze (mask 0.2) on windows tiling each user's training "
        "part; SASRec by next item at every position of the same windows. Training users of ML-100K's 80/20 "
        "split (seed 0) only. Seconds: wall-clock on one torch thread of the shared 2-core CPU machine this ran "
        "on, beside other jobs, and the process's CPU time (what one free core would take; data preparation "
        f"apart): all runs took {total / 60:.1f} minutes wall-clock, {cpu / 60:.1f} minutes of CPU.",
        "",
    ]
    data_rows = []
    for source in SOURCES:
        rs = records.get((source, "mbstr")) or records.get((source, "sasrec")) or []
        if not rs:
            continue
        data, targets = rs[0]["data"], rs[0]["targets"]
        counts = data["behaviors"]
        data_rows.append([SOURCE_LABELS[source], f"{data['users']:,}", f"{data['interactions']:,}",
                          f"{counts['skip']:,} / {counts['click']:,} / {counts['purchase']:,}",
                          f"{targets['valid']:,} / {targets['test']:,}"])
    lines += _table(["source", "users", "interactions", "skip / click / purchase", "valid / test targets"], data_rows)
    logging = next((rs[0]["data"]["logging"] for (s, _), rs in records.items() if s == "sim"), {})
    if logging:
        lines += ["", f"The `sim` log: `record_behavior_log` (`recgym log-behavior`) on `recgym/ML100K-Behavior-v0`, "
                  f"one episode of at most {logging.get('max_steps')} steps per training user, softmax logging "
                  f"policy over the predicted ratings at temperature {logging.get('temperature')} stars, seed "
                  f"{logging.get('seed')}; each user's {logging.get('history_length')} start items (their first "
                  "liked items in the ratings, reported click as the environment does) come first and are counted "
                  "above."]
    for source in SOURCES:
        rows = []
        for model in MODELS:
            rs = records.get((source, model), [])
            if not rs:
                continue
            rows.append([MODEL_LABELS[model], _mean_std([r["test"]["HR@10"] for r in rs]),
                         _mean_std([r["test"]["NDCG@10"] for r in rs]),
                         ", ".join(_epochs(r) for r in sorted(rs, key=lambda r: r["seed"])),
                         f"{rs[0]['parameters']:,}",
                         f"{sum(r['seconds_per_epoch'] for r in rs) / len(rs):.1f}",
                         f"{sum(r['total_seconds'] for r in rs) / len(rs):.0f}",
                         f"{sum(r['cpu_seconds'] for r in rs) / len(rs):.0f}"])
        if not rows:
            continue
        lines += ["", f"### {SOURCE_LABELS[source]} (`{source}`)", ""]
        lines += _table(["model", "HR@10", "NDCG@10", "best / run epochs per seed", "parameters", "s / epoch",
                         "s / run", "CPU s / run"], rows)
        lines += [""] + _verdicts(source, records)
        improving = [MODEL_LABELS[m] for m in MODELS if any("*" in _epochs(r) for r in records.get((source, m), []))]
        if improving:
            lines.append(f"* Still improving at the end of the budget on some seeds: {'; '.join(improving)}. These "
                         "figures compare the models at an equal budget, not at convergence.")
    return "\n".join(lines) + "\n"


def _epochs(record: dict[str, Any]) -> str:
    """``best/run`` epochs, ``*`` when the run was still improving at the end of its budget."""
    improving = not record["stopped_early"] and record["best_epoch"] > record["epochs"] - 3
    return f"{record['best_epoch']}/{record['epochs']}{'*' if improving else ''}"


def _verdicts(source: str, records: dict[tuple[str, str], list[dict[str, Any]]]) -> list[str]:
    """One line per comparison: the per-seed NDCG@10 difference, and whether it holds on every seed."""
    out = []
    mine = records.get((source, "mbstr"), [])
    for other, what in (("mbstr-1", "its one-behaviour-type ablation"), ("sasrec", "SASRec")):
        theirs = records.get((source, other), [])
        mean, std, won, paired = _compare(mine, theirs, "NDCG@10")
        if not paired:
            continue
        hr, _, hr_won, _ = _compare(mine, theirs, "HR@10")
        verb = "beats" if mean > 0 else "falls short of"
        out.append(f"* MB-STR {verb} {what} by {abs(mean):.4f} ± {std:.4f} NDCG@10 (HR@10: {hr:+.4f}); "
                   f"better on {won} of {paired} seeds (HR@10: {hr_won} of {paired}).")
    return out



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
