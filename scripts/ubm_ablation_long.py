"""Long-sequence ablations: HPMN and UBR4CTR against their ablations on ML-100K's long users.

Run through the driver (``python scripts/ubm_ablations.py long``); this module exposes
``run(seeds, out_dir, force)`` and ``report_section(out_dir)``.

The data: ML-100K's users with at least ``MIN_RATINGS`` (200) ratings, every one of their
ratings in time order (149 users, 44,122 ratings, up to 737 per user); item ids stay those of
ML-100K. The task is each paper's own, click-through (``recgym.pretrain.ClickThroughTask``, as
in part 1): liked = rating >= 4, every interaction with an earlier one is a target, 80/10/10 in
global time order, AUC and LogLoss, the best validation-AUC epoch tested. The window before a
target is the environment's observation with ``history_length`` N (``recgym.pretrain.windows``),
so the long history reaches the encoders exactly as it reaches them in the gym.

The rows (each model and its ablation read the same observations and differ in one thing):

* ``hpmn``: the hierarchical memory (4 layers, periods 1, 2, 4, 8), N = 256;
* ``hpmn-1-layer``: a single GRU over the same long histories (HPMN with one layer: one slot,
  read with weight 1), N = 256;
* ``hpmn-last-50``: HPMN over the last 50 interactions only, N = 50;
* ``ubr``: retrieval of the k = 20 most overlapping behaviours (item, genres, time bucket) out
  of N = 256, attention-pooled with the target as query;
* ``ubr-last-k``: the same pooling over the last k = 20 behaviours (retrieval by recency).

Settings: the papers' sizes (embedding 16, HPMN hidden 32), Adam lr 1e-3, batch
``BATCH_SIZE``, at most ``EPOCHS`` epochs with early stopping after ``PATIENCE`` epochs
without a better validation AUC (sized so that 3 seeds of all five rows take well under
30 minutes of one CPU core; the report gives the measured time). One JSON per row and seed is cached as
``long-<row>-seed<k>.json`` in the output folder; a cached run is not repeated unless
``force``, or its settings changed. ``long-data.json`` holds facts about the data (how bursty
the ratings are) and ``long-run.json`` the wall-clock and CPU time of the last complete run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recgym.evaluation.intervals import mean_std_text
from script_utils import git_commit, read_cached_json, write_json

REPO = Path(__file__).resolve().parents[1]

DATASET = "ml-100k"
#: "long users": at least this many ratings (the issue's threshold)
MIN_RATINGS = 200
LONG_HISTORY = 256  # N of the long rows: hundreds of steps (the HPMN paper uses T = 100 .. 300)
SHORT_HISTORY = 50  # the last-50 window of part 1 (RecBole's MAX_ITEM_LIST_LENGTH)
EMBEDDING_DIM = 16  # HPMN's and UBR4CTR's official code
RETRIEVED = 20  # UBR4CTR's official b_num
TASK = "ctr"
EPOCHS = 5
PATIENCE = 2
BATCH_SIZE = 512
EVAL_BATCH_SIZE = 2048
LEARNING_RATE = 1e-3
PREFIX = "long"
#: a user's ratings more than an hour apart start a new session (for the data facts of the report)
SESSION_GAP = 3600


@dataclass(frozen=True)
class Row:
    """One trained configuration.

    :param encoder: the registered encoder.
    :param history_length: N of the observations.
    :param kwargs: the encoder's own arguments (JSON-able).
    :param label: what the report calls it.
    :param ablation_of: the row this one is the ablation of (None for a model).
    """

    encoder: str
    history_length: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    ablation_of: str | None = None


#: what each ablation takes away from its model (everything else is the same)
ISOLATES = {
    "hpmn-1-layer": "the hierarchy: the same inputs and read, one memory slot instead of four",
    "hpmn-last-50": "the long history: the same model over the last 50 ratings only",
    "ubr-last-k": "the retrieval: the same k and pooling over the k newest behaviours instead of the k most overlapping",
}

ROWS: dict[str, Row] = {
    "hpmn": Row("hpmn", LONG_HISTORY, {}, f"HPMN, 4 memory layers, N = {LONG_HISTORY}"),
    "hpmn-1-layer": Row("hpmn", LONG_HISTORY, {"n_layers": 1},
                        f"single GRU over the same histories (HPMN, 1 layer), N = {LONG_HISTORY}", "hpmn"),
    "hpmn-last-50": Row("hpmn", SHORT_HISTORY, {}, f"HPMN over the last {SHORT_HISTORY}, N = {SHORT_HISTORY}", "hpmn"),
    "ubr": Row("ubr", LONG_HISTORY, {"k": RETRIEVED},
               f"UBR, top {RETRIEVED} by feature overlap out of N = {LONG_HISTORY}"),
    "ubr-last-k": Row("ubr", LONG_HISTORY, {"k": RETRIEVED, "retrieval": "recent"},
                      f"the last {RETRIEVED} behaviours (same pooling)", "ubr"),
}


def settings() -> dict[str, Any]:
    """What a cached run must match to be reused."""
    return {"dataset": DATASET, "min_ratings": MIN_RATINGS, "task": TASK, "embedding_dim": EMBEDDING_DIM,
            "epochs": EPOCHS, "patience": PATIENCE, "batch_size": BATCH_SIZE, "lr": LEARNING_RATE}


def long_user_log(min_ratings: int = MIN_RATINGS) -> Any:
    """ML-100K restricted to the users with at least ``min_ratings`` ratings (ids unchanged)."""
    from recgym.data import load

    log = load(DATASET)
    df = log.interactions
    counts = df.groupby("user").size()
    return log.with_interactions(df[df["user"].isin(counts.index[counts >= min_ratings])])


def run_row(name: str, seed: int, log: Any) -> dict[str, Any]:
    """Train row ``name`` with ``seed`` on ``log``; the record to cache."""
    import numpy as np
    import torch

    from recgym.pretrain import TrainerConfig, make_task, pretrain_encoder

    torch.set_num_threads(1)
    row = ROWS[name]
    kwargs: dict[str, Any] = {"embedding_dim": EMBEDDING_DIM, **row.kwargs}
    if row.encoder == "ubr":
        kwargs["item_features"] = log.item_genres().astype(np.float32)  # the genres: the overlap's features
    config = TrainerConfig(epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LEARNING_RATE, patience=PATIENCE, seed=seed,
                           progress=False)
    tic, cpu = time.perf_counter(), time.process_time()
    trained = pretrain_encoder(log, row.encoder, make_task(TASK), row.history_length, kwargs, config)
    r = trained.result
    diagnostics = analyse(trained, row)
    counts = np.bincount(log.interactions["user"].to_numpy(), minlength=log.n_users)
    return {
        "row": name, "encoder": row.encoder, "history_length": row.history_length, "kwargs": row.kwargs,
        "label": row.label, "ablation_of": row.ablation_of, "seed": seed, "settings": settings(),
        "status": "done",
        "data": {"users": int((counts > 0).sum()), "interactions": len(log), "items": int(log.n_items),
                 "longest_user": int(counts.max()), "targets": {k: int(v.size) for k, v in trained.split.items()}},
        "parameters": int(sum(p.numel() for p in trained.encoder.parameters())),
        "epochs": r.epochs, "best_epoch": r.best_epoch, "stopped_early": r.stopped_early,
        "seconds_per_epoch": r.seconds_per_epoch, "train_seconds": r.train_seconds,
        "total_seconds": time.perf_counter() - tic, "cpu_seconds": time.process_time() - cpu,
        "test": r.test, "valid": r.valid,
        "valid_curve": [h["AUC"] for h in r.history], **diagnostics,
    }


def analyse(trained: Any, row: Row) -> dict[str, Any]:
    """What explains a row's figure, on its test targets (the trained encoder, evaluation mode).

    * ``test_by_history``: AUC and LogLoss on the test targets with more than ``SHORT_HISTORY``
      earlier ratings (where N = 256 and N = 50 windows differ) and with at least ``LONG_HISTORY``
      (full long windows);
    * HPMN: ``read_weights``, the mean weight of each memory slot in the first and the last hop,
      with the target as query;
    * UBR: ``retrieval``, the mean overlap of what was retrieved and the share of it older than the
      last ``k`` behaviours (what the last-k window cannot see).
    """
    import numpy as np
    import torch

    from recgym.devices import module_device
    from recgym.pretrain import make_task

    task, encoder, head, windows = make_task(TASK), trained.encoder.eval(), trained.head.eval(), trained.windows
    device = module_device(encoder)  # where the trainer left it (the GPU when present)
    test = trained.split["test"]
    earlier = windows.sequences.positions()[test]  # ratings of the target's user before it
    out: dict[str, Any] = {"test_by_history": {}}
    for label, keep in ((f"> {SHORT_HISTORY}", earlier > SHORT_HISTORY), (f">= {LONG_HISTORY}", earlier >= LONG_HISTORY)):
        out["test_by_history"][label] = {"targets": int(keep.sum()),
                                         **task.evaluate(encoder, head, windows, test[keep], EVAL_BATCH_SIZE)}
    weights, overlaps, beyond, found = [], [], 0, 0
    with torch.no_grad():
        for chunk in np.array_split(test, max(1, -(-test.size // EVAL_BATCH_SIZE))):
            obs = windows.tensors(chunk, device)
            items = torch.as_tensor(windows.sequences.items[chunk], device=device).view(-1, 1)  # [B, 1] the targets
            if row.encoder == "hpmn":
                weights.append(encoder.read_weights(obs, items)[:, 0])  # [B, K, J]
            elif row.encoder == "ubr":
                hit = encoder.retrieve(obs, items)  # slots [B, 1, k]
                n = obs["history_items"].shape[1]
                age = (n - 1 - hit.positions)[hit.mask]  # behaviours between it and the target (windows are oldest first)
                beyond += int((age >= encoder.k).sum())
                found += int(hit.mask.sum())
                overlaps.append(hit.overlap[hit.mask])
    if weights:
        mean = torch.cat(weights).mean(dim=0)  # [K, J]
        out["read_weights"] = {"first_hop": mean[0].tolist(), "last_hop": mean[-1].tolist()}
    if found:
        out["retrieval"] = {"mean_overlap": float(torch.cat(overlaps).mean()),
                            "share_older_than_last_k": beyond / found}
    return out


def data_facts(log: Any) -> dict[str, float]:
    """How ML-100K's long users rated: the time between a user's consecutive ratings, and sessions.

    A session ends where a user's next rating is more than ``SESSION_GAP`` seconds later.
    """
    import numpy as np

    from recgym.pretrain import UserSequences

    seq = UserSequences.from_log(log)
    same_user = seq.users[1:] == seq.users[:-1]
    gaps = np.diff(seq.timestamps)[same_user]  # seconds between a user's consecutive ratings
    starts = np.r_[True, ~same_user | (np.diff(seq.timestamps) > SESSION_GAP)]
    return {"share_same_second": float(np.mean(gaps == 0)), "share_within_minute": float(np.mean(gaps <= 60)),
            "sessions_per_user": float(starts.sum() / np.unique(seq.users).size),
            "ratings_per_session": float(len(seq) / starts.sum())}


def cache_path(out_dir: Path, name: str, seed: int) -> Path:
    return Path(out_dir) / f"{PREFIX}-{name}-seed{seed}.json"


def run(seeds: int, out_dir: Path, force: bool) -> None:
    """Train every row for seeds ``0 .. seeds-1``; cached runs with the same settings are kept."""
    commit = git_commit(REPO)  # the code that runs: read now, edits made during the run do not count
    log = long_user_log()
    write_json(Path(out_dir) / f"{PREFIX}-data.json", data_facts(log))
    tic, cpu, load, trained = time.perf_counter(), time.process_time(), os.getloadavg()[0], 0
    for seed in range(seeds):
        for name in ROWS:
            out = cache_path(out_dir, name, seed)
            cached = read_cached_json(out)
            if not force and cached.get("status") == "done" and cached.get("settings") == settings():
                print(f"{name} seed {seed}: cached", flush=True)
                continue
            print(f"{name} seed {seed} ...", flush=True)
            record = {**run_row(name, seed, log), "code_commit": commit}
            write_json(out, record)
            trained += 1
            print(f"  AUC {record['test']['AUC']:.4f} in {record['epochs']} epochs (best {record['best_epoch']}), "
                  f"{record['total_seconds']:.0f} s", flush=True)
    if trained == seeds * len(ROWS):  # a complete run: how long all of it took, and on how busy a machine
        write_json(Path(out_dir) / f"{PREFIX}-run.json", {
            "seeds": seeds, "runs": trained, "wall_seconds": time.perf_counter() - tic,
            "cpu_seconds": time.process_time() - cpu, "cores": os.cpu_count(),
            "load_average_start": load, "load_average_end": os.getloadavg()[0], "code_commit": commit})


# -- the report ---------------------------------------------------------------------------------


def records(out_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The cached runs of each row, by seed."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name in ROWS:
        runs = [read_cached_json(p) for p in sorted(Path(out_dir).glob(f"{PREFIX}-{name}-seed*.json"))]
        found[name] = sorted((r for r in runs if r.get("status") == "done"), key=lambda r: r["seed"])
    return found


def has_results(out_dir: Path) -> bool:
    """Whether any row has a finished cached run."""
    return any(records(out_dir).values())


def report_section(out_dir: Path) -> str:
    """The markdown section of the long-sequence rows (from the cache)."""
    runs = records(out_dir)
    if not any(runs.values()):
        return ("## Long sequences (HPMN, UBR)\n\nNo cached runs yet: `python scripts/ubm_ablations.py long`.\n")
    any_run = next(r for rs in runs.values() for r in rs)
    data, used = any_run["data"], any_run["settings"]
    lines = [
        "## Long sequences (HPMN, UBR): click-through on ML-100K's long users",
        "",
        f"Data: the {data['users']} ML-100K users with at least {MIN_RATINGS} ratings, all their"
        f" {data['interactions']:,} ratings in time order (up to {data['longest_user']} per user). Task: click-through"
        " as in part 1 (liked = rating >= 4; every interaction with an earlier one is a target; 80/10/10 in global"
        f" time order: {data['targets']['train']:,} / {data['targets']['valid']:,} / {data['targets']['test']:,}"
        " targets; AUC and LogLoss of the best validation-AUC epoch). Both papers are click-through models, so"
        f" this is each model's own task. Embedding {used['embedding_dim']}, HPMN hidden 32, Adam lr"
        f" {used['lr']:g}, batch {used['batch_size']}, at most {used['epochs']} epochs, early stopping after"
        f" {used['patience']} epochs without a better validation AUC. Seeds:"
        f" {', '.join(str(s) for s in sorted({r['seed'] for rs in runs.values() for r in rs}))}."
        " Mean ± sample std over the seeds. Seconds are wall-clock on one thread of the shared machine this"
        " ran on (training epochs only for s/epoch; total includes building the windows and evaluating); CPU s"
        " is the process's CPU time for the same run, what one idle core would need.",
        "",
        "| row | N | seeds | epochs (best) | test AUC | test LogLoss | parameters (with the item table) | s/epoch | total s | CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in ROWS.items():
        rs = runs[name]
        if not rs:
            lines.append(f"| {name}: {row.label} | {row.history_length} | 0 | not run yet | - | - | - | - | - | - |")
            continue
        cpu = f"{_mean([r['cpu_seconds'] for r in rs]):.0f}" if all("cpu_seconds" in r for r in rs) else "-"
        lines.append(
            f"| {name}: {row.label} | {row.history_length} | {len(rs)} | {_mean([r['epochs'] for r in rs]):.1f}"
            f" ({_mean([r['best_epoch'] for r in rs]):.1f}) | {mean_std_text([r['test']['AUC'] for r in rs])}"
            f" | {mean_std_text([r['test']['LogLoss'] for r in rs])} | {rs[0]['parameters']:,}"
            f" | {_mean([r['seconds_per_epoch'] for r in rs]):.1f} | {_mean([r['total_seconds'] for r in rs]):.0f}"
            f" | {cpu} |"
        )
    summary = read_cached_json(Path(out_dir) / f"{PREFIX}-run.json")
    if summary:
        lines += ["", f"The last complete run ({summary['runs']} trainings, {summary['seeds']} seeds, one thread) took"
                  f" {summary['wall_seconds'] / 60:.1f} minutes wall-clock and {summary['cpu_seconds'] / 60:.1f}"
                  f" CPU-minutes on a {summary['cores']}-core machine shared with other jobs (load average"
                  f" {summary['load_average_start']:.1f} at the start, {summary['load_average_end']:.1f} at the end)."]
    lines += ["", "Each model against its ablation (test AUC, paired by seed: model minus ablation; the same"
              " difference on the test targets whose user has more than 50, and at least 256, earlier ratings):", ""]
    for name, row in ROWS.items():
        if row.ablation_of is None:
            continue
        model, ablation = runs[row.ablation_of], {r["seed"]: r for r in runs[name]}
        pairs = [(r, ablation[r["seed"]]) for r in model if r["seed"] in ablation]
        if not pairs:
            lines.append(f"* `{row.ablation_of}` against `{name}`: not run yet.")
            continue
        diffs = [a["test"]["AUC"] - b["test"]["AUC"] for a, b in pairs]
        wins = sum(d > 0 for d in diffs)
        verdict = "beats" if _mean(diffs) > 0 else "falls short of"
        by_length = ""
        if all("test_by_history" in r for pair in pairs for r in pair):
            parts = [f"{label}: {mean_std_text([a['test_by_history'][label]['AUC'] - b['test_by_history'][label]['AUC'] for a, b in pairs], signed=True)}"
                     for label in pairs[0][0]["test_by_history"]]
            by_length = f"; by earlier ratings {', '.join(parts)}"
        if verdict == "beats":
            how = "" if wins == len(diffs) else f" on average only, behind in {len(diffs) - wins} of {len(diffs)} seeds"
        else:
            how = f" by {-_mean(diffs):.4f} AUC"
        lines.append(f"* `{row.ablation_of}` {verdict} `{name}`{how} ({ISOLATES[name]}): ΔAUC"
                     f" {mean_std_text(diffs, signed=True)} over {len(diffs)} seed{'s' if len(diffs) != 1 else ''},"
                     f" ahead in {wins}{by_length}.")
    capped = [r for rs in runs.values() for r in rs if r["best_epoch"] == r["epochs"] == r["settings"]["epochs"]]
    total = sum(len(rs) for rs in runs.values())
    if capped:
        lines += ["", f"{len(capped)} of {total} runs had their best validation AUC in their last epoch, at the cap of"
                  f" {capped[0]['settings']['epochs']}: they were still improving, so every figure is for a budget"
                  " of that many epochs, the same for a model and its ablation, not for convergence."]
    facts = read_cached_json(Path(out_dir) / f"{PREFIX}-data.json")
    if facts:
        lines += ["", "What the order of these histories holds: ML-100K ratings come in bursts. Of a long user's"
                  f" consecutive ratings, {facts['share_same_second']:.0%} carry the same second and"
                  f" {facts['share_within_minute']:.0%} fall within a minute; a user's ratings form about"
                  f" {facts['sessions_per_user']:.0f} sessions (gaps over an hour) of"
                  f" {facts['ratings_per_session']:.0f} ratings. Inside a session the order is that of the rating"
                  " pages, not of consumption, so the periodic, multi-scale structure HPMN's hierarchy is built"
                  " to keep (the paper's setting: months of e-commerce clicks) is mostly absent here; what a long"
                  " history can add is a better estimate of the user's taste and rating habit. UBR's retrieval"
                  " does not depend on the order: it picks the past ratings that share the target's genres,"
                  " whose response types say how the user rates such films."]
    lines += ["", *diagnostics_section(runs)]
    return "\n".join(lines)


def diagnostics_section(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Where the figures come from: AUC by history length, HPMN's read weights, what UBR retrieved."""
    done = {name: rs for name, rs in runs.items() if rs and "test_by_history" in rs[0]}
    if not done:
        return []
    labels = list(next(iter(done.values()))[0]["test_by_history"])
    counts = next(iter(done.values()))[0]["test_by_history"]
    lines = [
        "Test AUC by how many earlier ratings the target's user has (a window of N = 50 and one of N = 256"
        " differ only above 50; N = 256 is full from 256 on):",
        "",
        "| row | " + " | ".join(f"{label} earlier ({counts[label]['targets']:,} targets)" for label in labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for name, rs in done.items():
        lines.append(f"| {name} | " + " | ".join(mean_std_text([r["test_by_history"][label]["AUC"] for r in rs])
                                                  for label in labels) + " |")
    hpmn = {name: rs for name, rs in done.items() if "read_weights" in rs[0]}
    if hpmn:
        lines += ["", "HPMN's mean read weight of each memory slot (layer 1 first: periods 1, 2, 4, 8) on the test"
                  " targets, target as query, first and last hop:", "",
                  "| row | first hop | last hop |", "|---|---|---|"]
        for name, rs in hpmn.items():
            first = [_mean([r["read_weights"]["first_hop"][j] for r in rs]) for j in range(len(rs[0]["read_weights"]["first_hop"]))]
            last = [_mean([r["read_weights"]["last_hop"][j] for r in rs]) for j in range(len(rs[0]["read_weights"]["last_hop"]))]
            lines.append(f"| {name} | {', '.join(f'{w:.2f}' for w in first)} | {', '.join(f'{w:.2f}' for w in last)} |")
    ubr = {name: rs for name, rs in done.items() if "retrieval" in rs[0]}
    if ubr:
        lines += ["", f"What UBR retrieved for the test targets (k = {RETRIEVED}):", "",
                  "| row | mean overlap of a retrieved behaviour | share older than the last k |", "|---|---|---|"]
        for name, rs in ubr.items():
            lines.append(f"| {name} | {_mean([r['retrieval']['mean_overlap'] for r in rs]):.2f}"
                         f" | {_mean([r['retrieval']['share_older_than_last_k'] for r in rs]):.2f} |")
    lines.append("")
    return lines


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)
