"""recgym's user-behaviour models beside RecBole's, same data and protocol, on ML-100K.

    python scripts/compare_recbole.py recbole [--models GRU4Rec DIN ...] [--force]
    python scripts/compare_recbole.py ours [--seeds 3] [--models gru4rec ...]
    python scripts/compare_recbole.py speed [--models gru4rec sasrec] [--batches 8]
    python scripts/compare_recbole.py report
    python scripts/compare_recbole.py devices [--models sasrec gru4rec] [--devices cpu cuda] [--batch-sizes 64 256 1024]
    python scripts/compare_recbole.py all

``recbole`` runs RecBole 1.2.1, the reference implementation, in its own
virtual environment (``~/.cache/recgym/recbole-venv``, never a dependency of
recgym; see ``RECBOLE_SETUP``), one subprocess per model, and caches each
result as JSON under ``docs/results/recbole/`` (figures, epochs, seconds per
epoch, total time); a cached model is not run again unless ``--force``.
``ours`` trains recgym's encoders with :mod:`recgym.pretrain` on the same
protocol over several seeds, at RecBole's epoch budget and to convergence
(early stopping), caching under ``docs/results/recbole/ours/``. ``report``
writes ``docs/results/ubm.md`` from the caches. ``devices`` times our encoders' training
batches on the CPU and on the GPU (when torch sees one) in the same run, at batch sizes
64 / 256 / 1024 (training windows per step): seconds per batch, updates per second and
seconds per epoch; with ``--recbole`` RecBole's models on the same devices too, where its
virtual environment exists (``RECBOLE_SETUP``; a CUDA build of torch there for the GPU).

The shared protocol (RecBole's names in brackets):

* data: ML-100K, all 100,000 ratings of all 943 users, no filtering (RecBole
  reads its own bundled copy, ``recbole/dataset_example/ml-100k``; the same
  ratings as GroupLens' ``u.data``, which recgym loads). RecBole knows no RL
  user split, so here recgym trains on every user too (``recgym pretrain``
  itself uses the training users only);
* next item: chronological leave-one-out per user (``split: {LS:
  valid_and_test}, order: TO``), every prefix of the training part a training
  example (RecBole's augmentation), full ranking over all items without
  excluding the history (``mode: full``; RecBole masks nothing for sequential
  models), cross-entropy (``loss_type: CE``), history length 50
  (``MAX_ITEM_LIST_LENGTH``), embedding 64, Adam lr 1e-3, batch 2048, the best
  validation NDCG@10 epoch is tested;
* click-through (DIN): label rating >= 4 (``threshold: {rating: 4}``), every
  interaction but each user's first (RecBole's augmentation needs a history),
  80/10/10 in global time order (``split: {RS: [0.8, 0.1, 0.1]}, order: TO,
  group_by: None``), AUC and LogLoss, best validation AUC tested.

The logic lives in the package: the protocol's settings, RecBole's settings and
RecBole's side of a run in :mod:`recgym.pretrain.recbole_reference` (whose file
RecBole's interpreter runs as a child process: it imports nothing from recgym
and reports its records on its standard output, which this script stores), ours
in :mod:`recgym.pretrain.recbole_ours`, the report in
:mod:`recgym.pretrain.recbole_report`. Every timed run records its timing
conditions (load average at its start and end, niceness, torch threads: 1 on
both sides); the report lists the runs that started on a busy machine (load
average above 1.0) or under ``nice``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
from script_utils import (
    DEVICE_TABLE_BATCH_SIZES,
    devices_to_time,
    git_commit,
    read_cached_json,
    write_json,
)

from recgym.pretrain import recbole_reference as reference  # noqa: E402
from recgym.pretrain.recbole_reference import (  # noqa: E402
    FINISHED,
    OURS,
    PATIENCE,
    RECBOLE_MODELS,
    THREADS,
    child_command,
    child_environment,
    conditions_at_end,
    conditions_at_start,
    run_child,
    with_conditions,
)

RESULTS = REPO / "docs" / "results"
RECBOLE_CACHE = RESULTS / "recbole"
OURS_CACHE = RECBOLE_CACHE / "ours"
REPORT = RESULTS / "ubm.md"
ENCODERS_DOC = REPO / "docs" / "encoders.md"
SPEED_CACHE = RECBOLE_CACHE / "speed.json"
RUNS = REPO / "runs" / "compare_recbole"
RECBOLE_VENV = Path.home() / ".cache" / "recgym" / "recbole-venv"
RECBOLE_PYTHON = RECBOLE_VENV / "bin" / "python"
RECBOLE_SETUP = reference.recbole_setup_command(RECBOLE_VENV)


def _recbole_python() -> Path:
    if not RECBOLE_PYTHON.exists():
        sys.exit(f"RecBole's virtual environment is missing; create it with:\n  {RECBOLE_SETUP}")
    return RECBOLE_PYTHON


def _recbole_speed(model: str, batches: int, device: str = "cpu", batch_size: int | None = None) -> dict[str, Any]:
    """RecBole's seconds per training batch, from its child process (RuntimeError when it fails)."""
    records: list[dict[str, Any]] = []
    arguments = ["speed", model, "--batches", str(batches), "--workdir", str(RUNS / "recbole" / model),
                 "--device", device, "--threads", str(THREADS)]
    if batch_size:
        arguments += ["--batch-size", str(batch_size)]
    status = run_child(child_command(RECBOLE_PYTHON, *arguments), records.append)
    if status != 0 or not records:
        raise RuntimeError(f"RecBole's {model} on {device} failed (exit {status}); see its output above")
    return records[-1]


def recbole_main(args: argparse.Namespace) -> None:
    """Run each RecBole model in a subprocess under RecBole's interpreter (cached results are kept)."""
    python = _recbole_python()
    for model in args.models or list(RECBOLE_MODELS):
        if model not in RECBOLE_MODELS:
            sys.exit(f"unknown RecBole model {model!r}; choose among {', '.join(RECBOLE_MODELS)}")
        out = RECBOLE_CACHE / f"{model}.json"
        if args.dry:
            out = RUNS / "recbole" / f"{model}-dry.json"
        elif out.exists() and not args.force and read_cached_json(out).get("status") in FINISHED:
            print(f"{model}: cached in {out.relative_to(REPO)}", flush=True)
            continue
        epochs = args.epochs or RECBOLE_MODELS[model][1]
        command = child_command(python, "one", model, "--epochs", str(epochs), "--seed", str(args.seed),
                                "--workdir", str(RUNS / "recbole" / model), "--threads", str(THREADS),
                                *(["--dry"] if args.dry else []))
        print(f"{model}: RecBole, {epochs} epochs ...", flush=True)
        conditions = conditions_at_start(THREADS)
        last: dict[str, Any] = {}

        def store(record: dict[str, Any]) -> None:
            nonlocal last
            last = with_conditions(record, conditions)
            write_json(out, last)

        status = run_child(command, store, child_environment(THREADS))
        if status != 0:
            print(f"{model}: RecBole failed (exit {status}); see the log above", flush=True)
        elif last:
            print(json.dumps({k: v for k, v in last.items() if k not in ("epoch_seconds", "valid_curve")}), flush=True)


def ours_main(args: argparse.Namespace) -> None:
    """Our encoders, at RecBole's epoch budget over ``--seeds`` seeds, and to convergence over
    ``--converged-seeds`` (cached). ``--phase budget`` runs the budget runs of every model first."""
    import state_encoders

    from recgym.pretrain.recbole_ours import run_ours

    names = args.models or list(OURS)
    for name in names:
        if name not in OURS:
            sys.exit(f"no RecBole counterpart for {name!r}; choose among {', '.join(OURS)}")
    phases = ["budget", "converged"] if args.phase == "all" else [args.phase]
    for phase in phases:
        for name in names:
            if name not in state_encoders.available():
                print(f"{name}: not in state_encoders yet; skipped", flush=True)
                continue
            theirs = read_cached_json(RECBOLE_CACHE / f"{OURS[name]}.json")
            if theirs.get("status") not in FINISHED:
                print(f"{name}: RecBole's {OURS[name]} has not finished, so its epoch budget is unknown; skipped",
                      flush=True)
                continue
            budget = theirs["epochs"]
            for seed in range(args.seeds if phase == "budget" else args.converged_seeds):
                budget_out = OURS_CACHE / f"{name}-budget-seed{seed}.json"
                converged_out = OURS_CACHE / f"{name}-converged-seed{seed}.json"
                wanted = budget_out if phase == "budget" else converged_out
                cached = read_cached_json(wanted)
                if not args.force and cached.get("status") == "done" and read_cached_json(budget_out).get(
                        "epoch_budget") == budget:
                    print(f"{name} {phase} seed {seed}: cached", flush=True)
                    continue
                print(f"{name} {phase} seed {seed}: RecBole's budget {budget} epochs"
                      + (f", then on to early stopping (patience {PATIENCE})" if phase == "converged" else "")
                      + " ...", flush=True)
                at_budget = run_ours(name, budget, seed, budget_out, converged_out if phase == "converged" else None,
                                     code_commit=git_commit(REPO))
                print(f"  at the budget: {at_budget['test']}; {at_budget['seconds_per_epoch']:.1f} s/epoch", flush=True)


def speed_main(args: argparse.Namespace) -> None:
    """Both sides' training speed, model by model, back to back: the same load on the machine for each pair."""
    from recgym.pretrain.recbole_ours import ours_speed

    _recbole_python()
    records = read_cached_json(SPEED_CACHE).get("pairs", {})
    for name in args.models or [n for n in OURS if n != "mean"]:
        conditions = conditions_at_start(THREADS)
        try:
            theirs = _recbole_speed(OURS[name], args.batches)
        except RuntimeError as err:
            print(err, flush=True)
            continue
        ours = ours_speed(name, args.batches)
        records[name] = {"recbole": theirs, "recgym": ours, **conditions_at_end(conditions),
                         "code_commit": git_commit(REPO)}
        for flag in reference.timing_warnings(records[name]):
            print(f"  {name}: {flag}", flush=True)
        print(f"{name} vs {OURS[name]}: {ours['seconds_per_epoch']:.0f} s/epoch against "
              f"{theirs['seconds_per_epoch']:.0f} ({theirs['seconds_per_epoch'] / ours['seconds_per_epoch']:.1f}x)",
              flush=True)
        write_json(SPEED_CACHE, {"batches": args.batches, "pairs": records})


def devices_main(args: argparse.Namespace) -> None:
    """Seconds per epoch and updates per second of each encoder on each device and batch size, one run."""
    from recgym.pretrain.recbole_ours import ours_speed

    devices, note = devices_to_time(args.devices)
    with_recbole = args.recbole and RECBOLE_PYTHON.exists()
    if args.recbole and not with_recbole:
        note += f"; RecBole's virtual environment is missing ({RECBOLE_SETUP}): recgym's side only"
    print(f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}; {note}", flush=True)
    rows = []
    for name in args.models or ["gru4rec", "sasrec"]:
        for batch_size in args.batch_sizes or DEVICE_TABLE_BATCH_SIZES:
            for device in devices:
                sides = [ours_speed(name, args.batches, device, batch_size)]
                if with_recbole:
                    try:
                        sides.append(_recbole_speed(OURS[name], args.batches, device, batch_size))
                    except RuntimeError as err:
                        print(err, flush=True)
                for r in sides:
                    rows.append({**r, "encoder": name})
                    print(f"{r['side']:7s} {r['model']:9s} {device:4s} batch {batch_size:5d}: "
                          f"{1 / r['seconds_per_batch']:8,.1f} updates/s, {r['seconds_per_epoch']:8.2f} s/epoch "
                          f"({r['batches_per_epoch']} batches)", flush=True)
    print("| side | model | batch | device | updates/s | s/epoch |\n|---|---|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['side']} | {r['model']} | {r['batch_size']} | {r['device']} | {1 / r['seconds_per_batch']:,.1f} "
              f"| {r['seconds_per_epoch']:.2f} |")
    if args.out:
        write_json(args.out, {"note": note, "batches": args.batches, "code_commit": git_commit(REPO), "rows": rows})


def report_main(args: argparse.Namespace) -> None:
    """Write docs/results/ubm.md and the supervised scores of docs/encoders.md from the cached JSON files."""
    from recgym.data.atomic import atomic_write
    from recgym.pretrain.recbole_report import encoder_table_with_scores, report_markdown

    try:
        import state_encoders
        registered = state_encoders.available()
    except ImportError:
        registered = []
    text = report_markdown(RECBOLE_CACHE, OURS_CACHE, SPEED_CACHE, registered)
    atomic_write(REPORT, lambda tmp: tmp.write_text(text))
    print(f"wrote {REPORT.relative_to(REPO)}")
    if ENCODERS_DOC.exists():
        table = encoder_table_with_scores(ENCODERS_DOC.read_text(), OURS_CACHE)
        atomic_write(ENCODERS_DOC, lambda tmp: tmp.write_text(table))
        print(f"updated the supervised scores in {ENCODERS_DOC.relative_to(REPO)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    recbole_parser = sub.add_parser("recbole", help="run RecBole's models (cached)")
    recbole_parser.add_argument("--models", nargs="*", help=f"default: {' '.join(RECBOLE_MODELS)}")
    recbole_parser.add_argument("--epochs", type=int, help="override the per-model epoch budget")
    recbole_parser.add_argument("--seed", type=int, default=0)
    recbole_parser.add_argument("--force", action="store_true", help="run again even when cached")
    recbole_parser.add_argument("--dry", action="store_true", help="build each model and take one batch only")
    ours_parser = sub.add_parser("ours", help="run recgym's encoders on the same protocol (cached)")
    ours_parser.add_argument("--models", nargs="*", help=f"default: {' '.join(OURS)} (missing ones are skipped)")
    ours_parser.add_argument("--seeds", type=int, default=3, help="seeds at RecBole's budget")
    ours_parser.add_argument("--converged-seeds", type=int, default=1, help="seeds trained to convergence")
    ours_parser.add_argument("--phase", choices=["budget", "converged", "all"], default="all",
                             help="budget runs only, convergence runs only, or both (budget first)")
    ours_parser.add_argument("--force", action="store_true", help="run again even when cached")
    speed_parser = sub.add_parser("speed", help="time both sides' training batches back to back, model by model")
    speed_parser.add_argument("--models", nargs="*", help="recgym encoders (default: all but mean)")
    speed_parser.add_argument("--batches", type=int, default=8, help="batches timed per side, after one warm-up")
    devices_parser = sub.add_parser("devices", help="our training batches on the CPU and the GPU (when present) "
                                    "per batch size, in one run")
    devices_parser.add_argument("--models", nargs="*", help="recgym encoders (default: gru4rec sasrec)")
    devices_parser.add_argument("--devices", nargs="+", choices=["cpu", "cuda"], default=None,
                                help="default: cpu, and cuda when torch sees a GPU")
    devices_parser.add_argument("--batch-sizes", nargs="+", type=int, default=None,
                                help="training windows per step (default 64 256 1024)")
    devices_parser.add_argument("--batches", type=int, default=8, help="batches timed per row, after one warm-up")
    devices_parser.add_argument("--recbole", action="store_true",
                                help="also time RecBole's models on the same devices (needs its virtual environment)")
    devices_parser.add_argument("--out", type=Path, help="also write the rows to this JSON file")
    sub.add_parser("report", help="write docs/results/ubm.md from the caches")
    all_parser = sub.add_parser("all", help="recbole, ours, report")
    all_parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    if args.command == "recbole":
        recbole_main(args)
    elif args.command == "ours":
        ours_main(args)
    elif args.command == "speed":
        speed_main(args)
    elif args.command == "devices":
        devices_main(args)
    elif args.command == "report":
        report_main(args)
    else:
        recbole_main(argparse.Namespace(models=None, epochs=None, seed=0, force=False, dry=False))
        ours_main(argparse.Namespace(models=None, seeds=args.seeds, converged_seeds=1, phase="all", force=False))
        report_main(args)


if __name__ == "__main__":
    main()
