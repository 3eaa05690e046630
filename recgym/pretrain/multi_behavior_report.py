"""The report of the MB-STR ablation: the markdown section of ``docs/results/ubm_long_multi.md``.

``scripts/ubm_ablation_multi.py`` trains MB-STR with three behaviour types, with
one, and recgym's SASRec on two multi-behaviour logs of ML-100K, and caches one
JSON record per source x model x seed (``multi-<source>-<model>-seed<k>.json``).
:func:`report_section` turns those records into the section: the data, one
table per source (HR@10 and NDCG@10, mean ± sample std over seeds, epochs,
size, time), and one line per comparison with the per-seed NDCG@10 difference
and on how many seeds it holds. The experiment's settings live here so that the
script that runs it and the report that describes it state the same ones.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from recgym.evaluation.intervals import mean_and_sample_std, mean_std_text
from recgym.experiments.run_dir import read_json

__all__ = ["EMBEDDING_DIM", "MODELS", "MODEL_LABELS", "N_BLOCKS", "N_HEADS", "PREFIX", "SOURCES", "SOURCE_LABELS",
           "report_section"]

#: the file-name prefix of the cached records
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


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _records(out_dir: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
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
    mean, std = mean_and_sample_std(diffs)
    return mean, std, sum(d > 0 for d in diffs), len(diffs)


def report_section(out_dir: Path, repo: Path | None = None) -> str:
    """The markdown section of the multi-behaviour results, from the JSON cached in ``out_dir``.

    :param out_dir: the folder of the ``multi-<source>-<model>-seed<k>.json`` records.
    :param repo: the checkout ``out_dir`` is shown relative to when it lies inside it.
    """
    records = _records(out_dir)
    if not records:
        shown = Path(out_dir).relative_to(repo) if repo is not None and Path(out_dir).is_relative_to(repo) else out_dir
        return ("## Multi-type behaviour: MB-STR\n\nNo results cached in "
                f"`{shown}` yet: run "
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
            rows.append([MODEL_LABELS[model], mean_std_text([r["test"]["HR@10"] for r in rs]),
                         mean_std_text([r["test"]["NDCG@10"] for r in rs]),
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
