"""recgym's user-behaviour models beside RecBole's, same data and protocol, on ML-100K.

    python scripts/compare_recbole.py recbole [--models GRU4Rec DIN ...] [--force]
    python scripts/compare_recbole.py ours [--seeds 3] [--models gru4rec ...]
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

The RecBole part runs under RecBole's interpreter and imports nothing from
recgym; everything else runs under recgym's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:  # imported from a test, not run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from script_utils import (  # noqa: E402
    DEVICE_TABLE_BATCH_SIZES,
    devices_to_time,
    git_commit,
    read_cached_json,
    synchronize,
    write_json,
)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"
RECBOLE_CACHE = RESULTS / "recbole"
OURS_CACHE = RECBOLE_CACHE / "ours"
REPORT = RESULTS / "ubm.md"
SPEED_CACHE = RECBOLE_CACHE / "speed.json"
RUNS = REPO / "runs" / "compare_recbole"
RECBOLE_VENV = Path.home() / ".cache" / "recgym" / "recbole-venv"
RECBOLE_SETUP = (
    f"python3 -m venv {RECBOLE_VENV} && {RECBOLE_VENV}/bin/pip install torch==2.13.0 recbole==1.2.1 "
    "'numpy<2' 'pandas<2.3' 'scipy<1.14' 'setuptools>=77.0.3,<81'"
)

#: the shared protocol
HISTORY_LENGTH = 50  # RecBole's MAX_ITEM_LIST_LENGTH
EMBEDDING_DIM = 64
BATCH_SIZE = 2048  # RecBole's train_batch_size
#: our sequential encoders train as their papers do: every position of a window predicts the next
#: item (``NextItemTask(window_stride=N - 1)``: consecutive windows share one item, so every
#: interaction is a label once per epoch, as under RecBole's prefix augmentation), with
#: ``BATCH_SIZE // N`` windows a batch, i.e. about as many labels per gradient step as RecBole's
#: 2,048 prefixes. RecBole recomputes the whole window for each prefix; this reads it once.
EVERY_POSITION = {"gru4rec", "sasrec", "tisasrec", "fdsa", "prnn"}
LEARNING_RATE = 1e-3  # RecBole's learning_rate
CONVERGED_EPOCHS = 200  # the cap of the runs "to convergence" (early stopping decides)
PATIENCE = 5  # ours "to convergence": stop after 5 epochs without a better validation figure (RecBole's stopping_step is 10; 5 fits 3 seeds of every model into an afternoon on 2 cores)

#: RecBole model -> (task, epoch budget, item features). Every budget is 10 epochs; the slow models
#: (measured seconds per epoch on the 2 shared cores: GRU4Rec 37, GRU4RecF 90, SASRec 216, FDSA 440,
#: Caser 735, DIN 56) run as many as fit in ``RECBOLE_MAX_SECONDS`` instead, and ours then get the
#: same number of epochs.
RECBOLE_MODELS: dict[str, tuple[str, int, bool]] = {
    "GRU4Rec": ("next-item", 10, False),
    "DIN": ("ctr", 10, False),
    "GRU4RecF": ("next-item", 10, True),
    "SASRec": ("next-item", 10, False),
    "FDSA": ("next-item", 10, True),
    "Caser": ("next-item", 10, False),
}
#: wall-clock cap of one RecBole run: after the epoch that passes it, the best epoch so far is tested
RECBOLE_MAX_SECONDS = 30 * 60
#: recgym encoder -> the RecBole model it is compared with
OURS: dict[str, str] = {
    "mean": "GRU4Rec",  # recgym's bag-of-items encoder: a check of the pipeline, not a sequential model
    "gru4rec": "GRU4Rec", "prnn": "GRU4RecF", "sasrec": "SASRec", "fdsa": "FDSA", "caser": "Caser",
    "din": "DIN", "tisasrec": "SASRec",
}
#: RecBole's archived ML-1M leaderboard (NDCG@10; DIN: AUC), recorded for reference (docs REFERENCES.md)
PUBLISHED_ML1M = {"GRU4Rec": ("NDCG@10", 0.1545), "GRU4RecF": ("NDCG@10", 0.1432), "FDSA": ("NDCG@10", 0.1294),
                  "SASRec": ("NDCG@10", 0.1286), "Caser": ("NDCG@10", 0.1061), "DIN": ("AUC", 0.9299)}


# -- RecBole (runs under RecBole's interpreter) ----------------------------------------------


def recbole_config(model: str, epochs: int, seed: int, workdir: Path) -> dict[str, Any]:
    """RecBole's settings for ``model`` under the shared protocol."""
    import recbole

    task, _, features = RECBOLE_MODELS[model]
    config: dict[str, Any] = {
        "data_path": str(Path(recbole.__file__).parent / "dataset_example"),
        "dataset": "ml-100k",
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": HISTORY_LENGTH,
        "epochs": epochs, "stopping_step": epochs + 1,  # a fixed budget: no early stop
        "train_batch_size": BATCH_SIZE, "eval_batch_size": 4096, "learning_rate": LEARNING_RATE,
        "seed": seed, "reproducibility": True, "device": "cpu", "use_gpu": False, "show_progress": False,
        "checkpoint_dir": str(workdir / "saved"), "worker": 0, "log_wandb": False,
        "train_neg_sample_args": None,
    }
    if features:
        config["load_col"]["item"] = ["item_id", "class"]
    if model in ("SASRec", "FDSA"):
        config["hidden_size"] = EMBEDDING_DIM
    else:
        config["embedding_size"] = EMBEDDING_DIM
    if task == "next-item":
        config.update({
            "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
            "loss_type": "CE", "metrics": ["Hit", "NDCG", "MRR"], "topk": [10], "valid_metric": "NDCG@10",
        })
    else:
        config["load_col"]["item"] = ["item_id"]
        config.update({
            "threshold": {"rating": 4},
            "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "TO", "mode": "labeled", "group_by": None},
            "metrics": ["AUC", "LogLoss"], "valid_metric": "AUC",
        })
    return config


class _BudgetReached(Exception):
    pass


def run_recbole_model(model: str, epochs: int, seed: int, out: Path, dry: bool = False) -> dict[str, Any]:
    """Train and test one RecBole model; write ``out`` (JSON) after every epoch and at the end."""
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    torch.set_num_threads(1)
    workdir = RUNS / "recbole" / model
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)  # RecBole writes log/ and log_tensorboard/ into the working directory
    task = RECBOLE_MODELS[model][0]
    config = Config(model=model, config_dict=recbole_config(model, epochs, seed, workdir))
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    tic = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"], config["reproducibility"])
    network = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, network)
    setup_seconds = time.perf_counter() - tic
    if dry:  # build everything and take one training batch: checks the settings in seconds
        batch = next(iter(train_data))
        loss = network.calculate_loss(batch)
        return {"model": model, "dry_run_loss": float(loss)}

    epoch_seconds: list[float] = []
    valid_curve: list[float] = []
    train_epoch = trainer._train_epoch
    start = time.perf_counter()

    def timed_epoch(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        loss = train_epoch(*args, **kwargs)
        epoch_seconds.append(time.perf_counter() - t)
        return loss

    record: dict[str, Any] = {
        "side": "recbole", "recbole_version": _recbole_version(), "model": model, "task": task,
        "dataset": "ml-100k", "seed": seed, "epoch_budget": epochs, "status": "running",
        "n_users": int(dataset.user_num - 1), "n_items": int(dataset.item_num - 1),
        "n_interactions": int(dataset.inter_num), "setup_seconds": setup_seconds,
    }

    def after_epoch(epoch: int, valid_score: float) -> None:
        valid_curve.append(float(valid_score))
        record.update(epochs=len(epoch_seconds), seconds_per_epoch=sum(epoch_seconds) / len(epoch_seconds),
                      epoch_seconds=epoch_seconds, valid_curve=valid_curve,
                      elapsed_seconds=time.perf_counter() - start)
        write_json(out, record)
        if time.perf_counter() - start > RECBOLE_MAX_SECONDS and len(epoch_seconds) < epochs:
            raise _BudgetReached

    trainer._train_epoch = timed_epoch
    stopped_early = False
    try:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=after_epoch)
    except _BudgetReached:
        stopped_early = True
    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    best = max(range(len(valid_curve)), key=valid_curve.__getitem__)
    record.update(
        status="stopped at the time cap" if stopped_early else "done",
        epochs=len(epoch_seconds), seconds_per_epoch=sum(epoch_seconds) / len(epoch_seconds),
        epoch_seconds=epoch_seconds, valid_curve=valid_curve, best_epoch=best + 1,
        total_seconds=time.perf_counter() - start, train_seconds=sum(epoch_seconds),
        test={_metric_name(k): float(v) for k, v in dict(test).items()},
    )
    write_json(out, record)
    return record


def recbole_speed(model: str, batches: int, device: str = "cpu", batch_size: int | None = None) -> dict[str, Any]:
    """Seconds per training batch of RecBole's ``model`` (its dataloader, loss, backward and optimiser step).

    :param device: ``cpu`` or ``cuda`` (RecBole's ``use_gpu``).
    :param batch_size: RecBole's ``train_batch_size`` (default the shared protocol's).
    """
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    torch.set_num_threads(1)
    workdir = RUNS / "recbole" / model
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)
    settings = recbole_config(model, 1, 0, workdir)
    settings.update({"device": device, "use_gpu": device != "cpu", "train_batch_size": batch_size or BATCH_SIZE})
    config = Config(model=model, config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    train_data, _, _ = data_preparation(config, create_dataset(config))
    network = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, network)
    network.train()
    seconds = []
    tic = time.perf_counter()
    for i, interaction in enumerate(train_data):  # the loop of RecBole's Trainer._train_epoch
        trainer.optimizer.zero_grad()
        loss = network.calculate_loss(interaction)
        loss.backward()
        trainer.optimizer.step()
        if device != "cpu":
            torch.cuda.synchronize()  # the batch's queued GPU work belongs to its time
        seconds.append(time.perf_counter() - tic)
        tic = time.perf_counter()
        if i + 1 > batches:  # the first batch warms up and is not counted
            break
    per_batch = sum(seconds[1:]) / len(seconds[1:])
    return {"side": "recbole", "model": model, "device": device, "batch_size": config["train_batch_size"],
            "batches_timed": len(seconds) - 1, "seconds_per_batch": per_batch,
            "batches_per_epoch": len(train_data), "seconds_per_epoch": per_batch * len(train_data)}


def _metric_name(key: str) -> str:
    """RecBole's lower-case names -> ours: hit@10 -> HR@10, ndcg@10 -> NDCG@10, auc -> AUC."""
    names = {"hit": "HR", "ndcg": "NDCG", "mrr": "MRR", "auc": "AUC", "logloss": "LogLoss"}
    base, _, k = key.partition("@")
    return names.get(base.lower(), base) + (f"@{k}" if k else "")


def _recbole_version() -> str:
    import recbole

    return str(getattr(recbole, "__version__", "unknown"))


def recbole_main(args: argparse.Namespace) -> None:
    """Run each RecBole model in a subprocess under RecBole's interpreter (cached results are kept)."""
    python = RECBOLE_VENV / "bin" / "python"
    if not python.exists():
        sys.exit(f"RecBole's virtual environment is missing; create it with:\n  {RECBOLE_SETUP}")
    for model in args.models or list(RECBOLE_MODELS):
        if model not in RECBOLE_MODELS:
            sys.exit(f"unknown RecBole model {model!r}; choose among {', '.join(RECBOLE_MODELS)}")
        out = RECBOLE_CACHE / f"{model}.json"
        if out.exists() and not args.force and not args.dry:
            if read_cached_json(out).get("status") in ("done", "stopped at the time cap"):
                print(f"{model}: cached in {out.relative_to(REPO)}", flush=True)
                continue
        epochs = args.epochs or RECBOLE_MODELS[model][1]
        command = [str(python), str(Path(__file__).resolve()), "_recbole-one", model, "--epochs", str(epochs),
                   "--seed", str(args.seed)] + (["--dry"] if args.dry else [])
        env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "OMP_NUM_THREADS": "1"}
        print(f"{model}: RecBole, {epochs} epochs ...", flush=True)
        result = subprocess.run(command, env=env)
        if result.returncode != 0:
            print(f"{model}: RecBole failed (exit {result.returncode}); see the log above", flush=True)


def recbole_one_main(args: argparse.Namespace) -> None:
    out = RECBOLE_CACHE / f"{args.model}.json"
    if args.dry:
        out = RUNS / "recbole" / f"{args.model}-dry.json"
    record = run_recbole_model(args.model, args.epochs, args.seed, out, dry=args.dry)
    print(json.dumps({k: v for k, v in record.items() if k not in ("epoch_seconds", "valid_curve")}), flush=True)


# -- ours (runs under recgym's interpreter) ---------------------------------------------------


def our_encoder_kwargs(name: str, log: Any) -> dict[str, Any]:
    """Embedding 64; item genres for encoders whose constructor takes ``item_features`` (FDSA, p-RNN)."""
    import inspect

    import state_encoders

    kwargs: dict[str, Any] = {"embedding_dim": EMBEDDING_DIM}
    parameters = inspect.signature(state_encoders.encoder_class(name).__init__).parameters
    if "item_features" in parameters and log.item_genres() is not None:
        kwargs["item_features"] = log.item_genres()
    return kwargs


def our_task_and_batch(name: str) -> tuple[Any, int]:
    """Our task object and batch size (windows) for encoder ``name`` (see ``EVERY_POSITION``)."""
    from recgym.pretrain import make_task

    task = RECBOLE_MODELS[OURS[name]][0]
    if name in EVERY_POSITION:
        return make_task(task, window_stride=HISTORY_LENGTH - 1), BATCH_SIZE // HISTORY_LENGTH
    return make_task(task), BATCH_SIZE


def run_ours(name: str, budget: int, seed: int, budget_out: Path, converged_out: Path | None,
             max_epochs: int = CONVERGED_EPOCHS, patience: int = PATIENCE) -> dict[str, Any]:
    """Train recgym encoder ``name`` on ML-100K (all users, as RecBole) under the shared protocol.

    With ``converged_out``, one run with early stopping writes both records: the best epoch among
    the first ``budget`` (RecBole's budget, a snapshot taken during the run) and the best epoch at
    convergence. Without it, the run stops at ``budget`` epochs and writes the first only. The
    same seed gives the same first ``budget`` epochs either way (same initialisation and shuffling;
    the patience decides nothing before then).
    """
    import torch

    from recgym.data import load
    from recgym.pretrain import TrainerConfig, make_task, pretrain_encoder

    torch.set_num_threads(1)
    task = RECBOLE_MODELS[OURS[name]][0]
    log = load("ml-100k")
    tic = time.perf_counter()
    converging = converged_out is not None
    task_object, batch_size = our_task_and_batch(name)
    trained = pretrain_encoder(
        log, name, task_object, HISTORY_LENGTH, our_encoder_kwargs(name, log),
        TrainerConfig(epochs=max_epochs if converging else budget, batch_size=batch_size, lr=LEARNING_RATE,
                      patience=patience if converging else None, seed=seed, progress=False, snapshot_epoch=budget),
    )
    r = trained.result
    total = time.perf_counter() - tic
    common = {
        "side": "recgym", "code_commit": git_commit(REPO), "encoder": name, "compared_with": OURS[name],
        "task": task, "dataset": "ml-100k", "seed": seed, "status": "done",
        "n_users": int(log.n_users), "n_items": int(log.n_items), "n_interactions": len(log),
        "targets": {k: int(v.size) for k, v in trained.split.items()},
        "seconds_per_epoch": r.seconds_per_epoch, "batch_size": batch_size,
        "training": "every position" if name in EVERY_POSITION else "one prefix per label",
        "valid_curve": [h[task_object.monitor] for h in r.history],
    }
    snap = r.snapshot or {}
    at_budget = {**common, "epoch_budget": budget, "patience": None, "epochs": snap["epochs"],
                 "best_epoch": snap["best_epoch"], "stopped_early": snap["epochs"] < budget,
                 "train_seconds": snap["train_seconds"],
                 "total_seconds": snap["train_seconds"] * total / max(r.train_seconds, 1e-9),
                 "test": snap["test"], "valid": snap["valid"]}
    write_json(budget_out, at_budget)
    if converging:
        write_json(converged_out, {**common, "epoch_budget": max_epochs, "patience": patience, "epochs": r.epochs,
                                   "best_epoch": r.best_epoch, "stopped_early": r.stopped_early,
                                   "train_seconds": r.train_seconds, "total_seconds": total, "test": r.test,
                                   "valid": r.valid})
    return at_budget


def ours_speed(name: str, batches: int, device: str = "cpu", batch_size: int | None = None) -> dict[str, Any]:
    """Seconds per training batch of our ``name`` under the shared protocol (window building included).

    :param device: where the encoder trains (``cpu``, ``cuda``).
    :param batch_size: training windows per step (default the shared protocol's, ``our_task_and_batch``).
    """
    import numpy as np
    import torch

    import state_encoders
    from recgym.data import load
    from recgym.pretrain.windows import UserSequences, WindowBuilder

    torch.set_num_threads(1)
    from recgym.devices import resolve_device

    task, protocol_batch = our_task_and_batch(name)
    batch_size = batch_size or protocol_batch
    log = load("ml-100k")
    sequences = UserSequences.from_log(log)
    windows = WindowBuilder(sequences, n_users=log.n_users, history_length=HISTORY_LENGTH)
    split = task.split(sequences)
    torch.manual_seed(0)
    encoder = state_encoders.make(name, windows.observation_space, **our_encoder_kwargs(name, log))
    head = task.make_head(encoder, windows)
    encoder.to(resolve_device(device))  # as recgym.pretrain.trainer.fit places them
    head.to(resolve_device(device))
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=LEARNING_RATE)
    order = np.random.default_rng(0).permutation(split["train"])
    n_batches = -(-order.size // batch_size)
    encoder.train()
    head.train()
    seconds = []
    for b in range(min(batches + 1, n_batches)):  # the loop of recgym.pretrain.trainer.fit
        tic = time.perf_counter()
        loss = task.loss(encoder, head, windows, order[b * batch_size : (b + 1) * batch_size])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize(device)  # the batch's queued GPU work belongs to its time
        seconds.append(time.perf_counter() - tic)
    per_batch = sum(seconds[1:]) / len(seconds[1:])
    return {"side": "recgym", "model": name, "device": device, "batch_size": batch_size,
            "batches_timed": len(seconds) - 1, "seconds_per_batch": per_batch,
            "batches_per_epoch": n_batches, "seconds_per_epoch": per_batch * n_batches}


def speed_main(args: argparse.Namespace) -> None:
    """Both sides' training speed, model by model, back to back: the same load on the machine for each pair."""
    _use_this_checkout()
    python = RECBOLE_VENV / "bin" / "python"
    if not python.exists():
        sys.exit(f"RecBole's virtual environment is missing; create it with:\n  {RECBOLE_SETUP}")
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "OMP_NUM_THREADS": "1"}
    records = read_cached_json(SPEED_CACHE).get("pairs", {})
    for name in args.models or [n for n in OURS if n != "mean"]:
        reference = OURS[name]
        load = os.getloadavg()[0]
        command = [str(python), str(Path(__file__).resolve()), "_recbole-speed", reference,
                   "--batches", str(args.batches)]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{reference}: RecBole failed:\n{done.stderr[-2000:]}", flush=True)
            continue
        theirs = json.loads(done.stdout.strip().splitlines()[-1])
        ours = ours_speed(name, args.batches)
        records[name] = {"recbole": theirs, "recgym": ours, "load_average_before": load,
                         "load_average_after": os.getloadavg()[0], "code_commit": git_commit(REPO)}
        print(f"{name} vs {reference}: {ours['seconds_per_epoch']:.0f} s/epoch against "
              f"{theirs['seconds_per_epoch']:.0f} ({theirs['seconds_per_epoch'] / ours['seconds_per_epoch']:.1f}x)",
              flush=True)
        write_json(SPEED_CACHE, {"batches": args.batches, "pairs": records})



def devices_main(args: argparse.Namespace) -> None:
    """Seconds per epoch and updates per second of each encoder on each device and batch size, one run."""
    _use_this_checkout()
    devices, note = devices_to_time(args.devices)
    python = RECBOLE_VENV / "bin" / "python"
    with_recbole = args.recbole and python.exists()
    if args.recbole and not with_recbole:
        note += f"; RecBole's virtual environment is missing ({RECBOLE_SETUP}): recgym's side only"
    print(f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}; {note}", flush=True)
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "OMP_NUM_THREADS": "1"}
    rows = []
    for name in args.models or ["gru4rec", "sasrec"]:
        for batch_size in args.batch_sizes or DEVICE_TABLE_BATCH_SIZES:
            for device in devices:
                sides = [ours_speed(name, args.batches, device, batch_size)]
                if with_recbole:
                    command = [str(python), str(Path(__file__).resolve()), "_recbole-speed", OURS[name], "--batches",
                               str(args.batches), "--device", device, "--batch-size", str(batch_size)]
                    done = subprocess.run(command, env=env, capture_output=True, text=True)
                    if done.returncode == 0:
                        sides.append(json.loads(done.stdout.strip().splitlines()[-1]))
                    else:
                        print(f"{OURS[name]} on {device}: RecBole failed:\n{done.stderr[-2000:]}", flush=True)
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


def _use_this_checkout() -> None:
    """Import recgym from this checkout (``python scripts/...`` puts only ``scripts/`` on the path)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def ours_main(args: argparse.Namespace) -> None:
    """Our encoders, at RecBole's epoch budget over ``--seeds`` seeds, and to convergence over
    ``--converged-seeds`` (cached). ``--phase budget`` runs the budget runs of every model first."""
    _use_this_checkout()
    import state_encoders

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
            reference = OURS[name]
            theirs = read_cached_json(RECBOLE_CACHE / f"{reference}.json")
            if theirs.get("status") not in ("done", "stopped at the time cap"):
                print(f"{name}: RecBole's {reference} has not finished, so its epoch budget is unknown; skipped",
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
                at_budget = run_ours(name, budget, seed, budget_out, converged_out if phase == "converged" else None)
                print(f"  at the budget: {at_budget['test']}; {at_budget['seconds_per_epoch']:.1f} s/epoch", flush=True)


# -- the report ---------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "-" if value is None else (f"{value:,.0f}" if value >= 10 else f"{value:.1f}")


def report_main(args: argparse.Namespace) -> None:
    """Write docs/results/ubm.md from the cached JSON files."""
    _use_this_checkout()
    from recgym.evaluation.intervals import mean_std_text

    lines = [
        "# User-behaviour models: recgym beside RecBole on ML-100K",
        "",
        "Written by `scripts/compare_recbole.py report` from the JSON cached under `docs/results/recbole/`"
        " (RecBole) and `docs/results/recbole/ours/` (recgym). Same data, split, sequence length (50),"
        " embedding size (64), optimiser (Adam, lr 1e-3, batch 2048) and epoch budget on both sides; the"
        " protocol is in the script's docstring; both sides use all 943 users (RecBole has no RL user split)."
        " RecBole runs are one seed (0); ours are mean ± sample std"
        " over the seeds cached. Both sides test the epoch with the best validation figure.",
        "",
        "Seconds are wall-clock on the shared 2-core CPU machine this was run on, one thread per run, beside other"
        " jobs (GRU4Rec, GRU4RecF and DIN on RecBole's side ran under `nice -n 19`, SASRec, FDSA and Caser at"
        " normal priority, as all of ours): they say how long a run took here, and compare the two sides only"
        " roughly. Each JSON records its seconds per epoch. RecBole's seconds per epoch count training only"
        " (its `epoch N training [time]`), as ours do.",
        "",
    ]
    next_rows, ctr_rows = [], []
    for model, (task, budget, _) in RECBOLE_MODELS.items():
        theirs = read_cached_json(RECBOLE_CACHE / f"{model}.json")
        ours = [name for name, ref in OURS.items() if ref == model]
        rows = next_rows if task == "next-item" else ctr_rows
        metrics = ["HR@10", "NDCG@10", "MRR@10"] if task == "next-item" else ["AUC", "LogLoss"]
        key = metrics[1] if task == "next-item" else metrics[0]  # NDCG@10, or AUC for DIN
        if theirs:
            status = theirs.get("status", "?")
            epochs = theirs.get("epochs", 0)
            figures = [f"{theirs['test'][m]:.4f}" if "test" in theirs else "-" for m in metrics]
            note = "" if status == "done" else f" ({status}{'' if 'test' in theirs else ', no test yet'})"
            if "best_epoch" in theirs:
                best = theirs["best_epoch"]
                note += "; still improving" if best == epochs else f"; best {best}"
            rows.append([f"RecBole {model}", f"{epochs}/{budget}{note}", *figures, "1", "1",
                         _seconds(theirs.get("seconds_per_epoch")),
                         _seconds(theirs.get("total_seconds") or theirs.get("elapsed_seconds"))])
        else:
            rows.append([f"RecBole {model}", "not run yet", *["-"] * len(metrics), "-", "-", "-", "-"])
        for name in ours:
            for label in ("budget", "converged"):
                records = [read_cached_json(p) for p in sorted(OURS_CACHE.glob(f"{name}-{label}-seed*.json"))]
                records = [r for r in records if r.get("status") == "done"]
                if not records:
                    continue
                epochs = sum(r["epochs"] for r in records) / len(records)
                best = sum(r["best_epoch"] for r in records) / len(records)
                what = f"{epochs:.0f}" + (f" (early stopping; best {best:.0f})" if label == "converged" else "")
                seeds = f"{len(records)} seed{'s' if len(records) != 1 else ''}"
                label_note = " — bag of items, a pipeline check" if name == "mean" else ""
                speed = sum(r["seconds_per_epoch"] for r in records) / len(records)
                ratio = speedup = "-"
                if "test" in theirs and label == "budget":
                    ratio = f"{sum(r['test'][key] for r in records) / len(records) / theirs['test'][key]:.2f}"
                    speedup = f"{theirs['seconds_per_epoch'] / speed:.1f}"
                rows.append([f"recgym {name}{label_note} ({seeds})", what,
                             *[mean_std_text([r["test"][m] for r in records]) for m in metrics], ratio, speedup,
                             _seconds(speed), _seconds(sum(r["total_seconds"] for r in records) / len(records))])
        for name in ours:
            if not any(OURS_CACHE.glob(f"{name}-*-seed*.json")):
                state = "not run yet" if name in _registered() else "not in state_encoders yet"
                rows.append([f"recgym {name}", state, *["-"] * len(metrics), "-", "-", "-", "-"])
    header = ["model", "epochs", "HR@10", "NDCG@10", "MRR@10", "NDCG@10 ÷ RecBole's", "× faster per epoch",
              "s/epoch", "total s"]
    lines += ["## Next item (chronological leave-one-out, full ranking over all 1,682 items)", "",
              *_table(header, next_rows), ""]
    lines += ["## Click-through (DIN: liked = rating >= 4, 80/10/10 in time order)", "",
              *_table(["model", "epochs", "AUC", "LogLoss", "AUC ÷ RecBole's", "× faster per epoch", "s/epoch",
                       "total s"], ctr_rows), ""]
    lines += ["## Where ours fall short of 0.95 × RecBole's at the budget", ""] + _shortfalls() + [""]
    lines += ["## TiSASRec against our SASRec", ""] + _tisasrec_vs_sasrec() + [""]
    speed = read_cached_json(SPEED_CACHE)
    if speed.get("pairs"):
        lines += ["## Training speed, timed back to back",
                  "",
                  f"Written by `scripts/compare_recbole.py speed`: for each model, {speed['batches']} training batches"
                  " of 2,048 (after one warm-up batch) on each side, one right after the other, so that both"
                  " share the machine's load at that moment; seconds per epoch = seconds per batch × batches per"
                  " epoch. These are the figures to compare the two implementations by; the seconds per epoch in"
                  " the tables above were measured at different times under different loads.",
                  "",
                  *_table(["recgym", "RecBole", "recgym s/epoch", "RecBole s/epoch", "× faster", "load average"],
                          [[f"`{name}`", p["recbole"]["model"], _seconds(p["recgym"]["seconds_per_epoch"]),
                            _seconds(p["recbole"]["seconds_per_epoch"]),
                            f"{p['recbole']['seconds_per_epoch'] / p['recgym']['seconds_per_epoch']:.1f}",
                            f"{p['load_average_before']:.1f}"] for name, p in speed["pairs"].items()]),
                  ""]
    lines += [
        "`epochs` for RecBole is epochs run / budget. A run that reached its wall-clock cap"
        f" ({RECBOLE_MAX_SECONDS // 60} minutes) before its budget tested its best epoch so far and says so;"
        " ours then train the same number of epochs. Ours at the budget are"
        " `--seeds` seeds; ours converged (early stopping, patience"
        f" {PATIENCE}, at most {CONVERGED_EPOCHS} epochs) the seeds that fitted in the time (the row says how many)."
        " `÷ RecBole's`: our mean at the budget over RecBole's figure; `× faster`: RecBole's seconds per epoch over"
        " ours. TiSASRec has no RecBole version: its rows sit under SASRec, compared with RecBole's SASRec"
        " there and with our SASRec below.",
        "",
        "## RecBole's published ML-1M figures, for reference",
        "",
        "From RecBole's archived leaderboard (ML-1M, rating >= 3, 10-core; DIN: drop rating 3, label >= 4,"
        " random 80/10/10): another dataset and filtering than the runs above, so not comparable figure for"
        " figure; they show the expected order of the models.",
        "",
        *_table(["model", "metric", "ML-1M"], [[m, k, f"{v:.4f}"] for m, (k, v) in PUBLISHED_ML1M.items()]),
        "",
    ]
    REPORT.write_text("\n".join(lines))
    print(f"wrote {REPORT.relative_to(REPO)}")
    _update_encoder_table()


def _shortfalls() -> list[str]:
    """A line for each of ours under 0.95 × RecBole's figure at the budget, with its converged figure."""
    out = []
    for name, reference in OURS.items():
        if name == "mean":
            continue
        theirs = read_cached_json(RECBOLE_CACHE / f"{reference}.json")
        budget = [r for r in map(read_cached_json, sorted(OURS_CACHE.glob(f"{name}-budget-seed*.json")))
                  if r.get("status") == "done"]
        if "test" not in theirs or not budget:
            continue
        key = "NDCG@10" if theirs["task"] == "next-item" else "AUC"
        ratio = sum(r["test"][key] for r in budget) / len(budget) / theirs["test"][key]
        if ratio >= 0.95:
            continue
        line = (f"- `{name}`: {ratio:.3f} × RecBole's {reference} after {theirs['epochs']} epoch(s), the budget"
                f" RecBole's {RECBOLE_MAX_SECONDS // 60}-minute cap left.")
        if theirs.get("best_epoch") == theirs.get("epochs"):
            line += " RecBole's run was still improving"
            line += (", and so were all of ours." if all(r["best_epoch"] == r["epochs"] for r in budget)
                     else ".")
        converged = [r for r in map(read_cached_json, sorted(OURS_CACHE.glob(f"{name}-converged-seed*.json")))
                     if r.get("status") == "done"]
        if converged:
            best = sum(r["test"][key] for r in converged) / len(converged)
            epochs = sum(r["best_epoch"] for r in converged) / len(converged)
            line += (f" Trained to convergence, ours reach {key} {best:.4f} (best epoch {epochs:.0f},"
                     f" {len(converged)} seed(s)), {best / theirs['test'][key]:.2f} × RecBole's figure at its budget.")
        else:
            line += " Ours to convergence: not run yet."
        if name in EVERY_POSITION:
            line += (" A likely cause at so small a budget: ours train on every position of a window, the same labels"
                     " per epoch as RecBole's prefixes but in fewer, shorter contexts (a window's early positions see"
                     " few items), which may teach less in one or two epochs; the converged figure is the fairer"
                     " comparison.")
        out.append(line)
    return out or ["- None."]


def _tisasrec_vs_sasrec() -> list[str]:
    """TiSASRec has no RecBole version: our TiSASRec against our SASRec, same data, budget and seeds."""
    _use_this_checkout()
    from recgym.evaluation.intervals import mean_std_text

    out = []
    for label in ("budget", "converged"):
        figures = {}
        for name in ("tisasrec", "sasrec"):
            records = [r for r in map(read_cached_json, sorted(OURS_CACHE.glob(f"{name}-{label}-seed*.json")))
                       if r.get("status") == "done"]
            if records:
                figures[name] = (mean_std_text([r["test"]["NDCG@10"] for r in records]), len(records))
        if len(figures) == 2:
            (t, nt), (s_, ns) = figures["tisasrec"], figures["sasrec"]
            out.append(f"- {'At RecBole SASRec' + chr(39) + 's budget' if label == 'budget' else 'To convergence'}:"
                       f" TiSASRec NDCG@10 {t} ({nt} seed(s)) against SASRec {s_} ({ns} seed(s)).")
    return out or ["- Not run yet."]


def _update_encoder_table(path: Path = REPO / "docs" / "encoders.md") -> None:
    """Fill the "supervised scores" column of docs/encoders.md's overview from our cached runs at the budget."""
    _use_this_checkout()
    from recgym.evaluation.intervals import mean_std_text

    if not path.exists():
        return
    out = []
    for line in path.read_text().splitlines():
        name = line.split("`")[1] if line.startswith("| `") else None
        records = [read_cached_json(p) for p in sorted(OURS_CACHE.glob(f"{name}-budget-seed*.json"))] if name else []
        records = [r for r in records if r.get("status") == "done"]
        if records:
            metric = "NDCG@10" if records[0]["task"] == "next-item" else "AUC"
            task = "next item" if records[0]["task"] == "next-item" else "click-through"
            cell = (f"{metric} {mean_std_text([r['test'][metric] for r in records])} (ML-100K {task}, "
                    f"{records[0]['epoch_budget']} epochs, {len(records)} seeds; docs/results/ubm.md)")
            cells = line.rstrip().rstrip("|").split(" | ")
            line = " | ".join(cells[:-1] + [cell]) + " |"
        out.append(line)
    path.write_text("\n".join(out) + "\n")
    print(f"updated the supervised scores in {path.relative_to(REPO)}")


def _registered() -> list[str]:
    _use_this_checkout()
    try:
        import state_encoders
    except ImportError:
        return []
    return state_encoders.available()


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


# -- small shared helpers ---------------------------------------------------------------------




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    recbole_parser = sub.add_parser("recbole", help="run RecBole's models (cached)")
    recbole_parser.add_argument("--models", nargs="*", help=f"default: {' '.join(RECBOLE_MODELS)}")
    recbole_parser.add_argument("--epochs", type=int, help="override the per-model epoch budget")
    recbole_parser.add_argument("--seed", type=int, default=0)
    recbole_parser.add_argument("--force", action="store_true", help="run again even when cached")
    recbole_parser.add_argument("--dry", action="store_true", help="build each model and take one batch only")
    one = sub.add_parser("_recbole-one", help=argparse.SUPPRESS)
    one.add_argument("model")
    one.add_argument("--epochs", type=int, required=True)
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--dry", action="store_true")
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
    one_speed = sub.add_parser("_recbole-speed", help=argparse.SUPPRESS)
    one_speed.add_argument("model")
    one_speed.add_argument("--batches", type=int, required=True)
    one_speed.add_argument("--device", default="cpu")
    one_speed.add_argument("--batch-size", type=int, default=None)
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
    elif args.command == "_recbole-one":
        recbole_one_main(args)
    elif args.command == "ours":
        ours_main(args)
    elif args.command == "speed":
        speed_main(args)
    elif args.command == "_recbole-speed":
        print(json.dumps(recbole_speed(args.model, args.batches, args.device, args.batch_size)), flush=True)
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
