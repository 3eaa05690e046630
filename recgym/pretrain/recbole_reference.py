"""RecBole 1.2.1 as the reference for recgym's user-behaviour encoders: the shared protocol and RecBole's side.

``scripts/compare_recbole.py`` compares recgym's encoders with RecBole's models on ML-100K
(the protocol in full is in that script's docstring; the report is
:mod:`recgym.pretrain.recbole_report`). This module holds:

* the shared protocol's settings (history 50, embedding 64, Adam lr 1e-3, batch 2048) and
  which RecBole model each of recgym's encoders is compared with;
* :func:`recbole_config`: RecBole's settings for a model under that protocol;
* the RecBole side of a run (:func:`run_recbole_model`, :func:`recbole_speed`). RecBole is never
  a dependency of recgym: it lives in its own virtual environment, whose interpreter runs *this
  file* as a child process (:func:`child_command`). So the module imports only the standard
  library at its top (RecBole and torch inside the functions that run there), and the child
  reports each record as a marked line on its standard output (:func:`record_line`,
  :func:`parse_record_line`) for the parent, under recgym's interpreter, to store;
* the timing conditions of a run (:func:`conditions_at_start`, :func:`conditions_at_end`,
  :func:`timing_warnings`): the load average at its start and end, the niceness and the
  thread count, so that a timing taken on a busy machine or under ``nice`` says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: the RecBole release the reference runs use
RECBOLE_VERSION = "1.2.1"

#: the shared protocol
HISTORY_LENGTH = 50  # RecBole's MAX_ITEM_LIST_LENGTH
EMBEDDING_DIM = 64
BATCH_SIZE = 2048  # RecBole's train_batch_size
#: our sequential encoders train as their papers do: every position of a window predicts the next
#: item (``NextItemTask(window_stride=N - 1)``: consecutive windows share one item, so every
#: interaction is a label once per epoch, as under RecBole's prefix augmentation), with
#: ``BATCH_SIZE // N`` windows a batch, i.e. about as many labels per gradient step as RecBole's
#: 2,048 prefixes. RecBole recomputes the whole window for each prefix; this reads it once.
EVERY_POSITION = frozenset({"gru4rec", "sasrec", "tisasrec", "fdsa", "prnn"})
#: RecBole's SASRec choices that our SASRec takes in the comparison (issue 22; ``scripts/sasrec_gap.py``
#: measured each): its initialisation (every weight N(0, 0.02), ``initializer_range``), post-LN blocks after a
#: LayerNorm of the input (eps 1e-12) and items scored by ``s . e_j`` without our head's projection. Alone each
#: changes little; together they are why RecBole's SASRec learned about twice as much in its first two epochs.
#: Our dropout stays 0.2 (the paper's): RecBole's 0.5 slowed ours. The encoder's defaults are unchanged.
RECBOLE_SASREC_SETTINGS: dict[str, dict[str, Any]] = {
    "sasrec": {"norm_first": False, "layer_norm_eps": 1e-12, "init_std": 0.02},
}
#: our encoders whose next-item head scores ``s . e_j`` in the comparison, as RecBole's (``NextItemTask(project=False)``)
NO_PROJECTION = frozenset({"sasrec"})
LEARNING_RATE = 1e-3  # RecBole's learning_rate
CONVERGED_EPOCHS = 200  # the cap of the runs "to convergence" (early stopping decides)
PATIENCE = 5  # ours "to convergence": stop after 5 epochs without a better validation figure (RecBole's stopping_step is 10; 5 fits 3 seeds of every model into an afternoon on 2 cores)
#: torch threads of every timed run, on both sides (and ``OMP_NUM_THREADS`` of RecBole's process)
THREADS = 1
#: a run whose one-minute load average at its start is above this timed a busy machine
LOAD_AVERAGE_LIMIT = 1.0

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
#: a finished RecBole record's status (the run tested its best epoch)
FINISHED = ("done", "stopped at the time cap")

#: the start of a line of the child's standard output that carries a record (the rest is RecBole's own output)
RECORD_MARKER = "@recbole-record "


def recbole_setup_command(venv: Path) -> str:
    """The shell command that creates RecBole's virtual environment at ``venv`` (pinned versions)."""
    return (f"python3 -m venv {venv} && {venv}/bin/pip install torch==2.13.0 recbole=={RECBOLE_VERSION} "
            "'numpy<2' 'pandas<2.3' 'scipy<1.14' 'setuptools>=77.0.3,<81'")


def recbole_config(model: str, epochs: int, seed: int, workdir: Path, data_path: Path) -> dict[str, Any]:
    """RecBole's settings for ``model`` under the shared protocol.

    :param model: a key of :data:`RECBOLE_MODELS`.
    :param epochs: the epoch budget (RecBole's early stop is set past it: a fixed budget).
    :param seed: RecBole's ``seed``.
    :param workdir: the run's folder (RecBole's checkpoints go to ``workdir/saved``).
    :param data_path: the folder holding RecBole's ``ml-100k`` atomic files (its bundled
        ``recbole/dataset_example``).
    """
    if model not in RECBOLE_MODELS:
        raise ValueError(f"unknown RecBole model {model!r}; choose among {', '.join(RECBOLE_MODELS)}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a whole number >= 1, got {epochs!r}")
    task, _, features = RECBOLE_MODELS[model]
    config: dict[str, Any] = {
        "data_path": str(data_path),
        "dataset": "ml-100k",
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": HISTORY_LENGTH,
        "epochs": epochs, "stopping_step": epochs + 1,  # a fixed budget: no early stop
        "train_batch_size": BATCH_SIZE, "eval_batch_size": 4096, "learning_rate": LEARNING_RATE,
        "seed": seed, "reproducibility": True, "device": "cpu", "use_gpu": False, "show_progress": False,
        "checkpoint_dir": str(Path(workdir) / "saved"), "worker": 0, "log_wandb": False,
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


def metric_name(key: str) -> str:
    """RecBole's lower-case metric names -> ours: ``hit@10`` -> ``HR@10``, ``ndcg@10`` -> ``NDCG@10``, ``auc`` -> ``AUC``."""
    names = {"hit": "HR", "ndcg": "NDCG", "mrr": "MRR", "auc": "AUC", "logloss": "LogLoss"}
    base, _, k = key.partition("@")
    return names.get(base.lower(), base) + (f"@{k}" if k else "")


def epoch_progress(record: dict[str, Any], epoch_seconds: list[float], valid_curve: list[float],
                   elapsed_seconds: float) -> dict[str, Any]:
    """``record`` with the epochs run so far: their count, mean training seconds, each epoch's seconds
    and validation figure, and the wall-clock seconds since training began."""
    if not epoch_seconds or len(epoch_seconds) != len(valid_curve):
        raise ValueError(f"one validation figure per timed epoch is needed, got {len(epoch_seconds)} epoch(s) "
                         f"timed and {len(valid_curve)} validation figure(s)")
    return {**record, "epochs": len(epoch_seconds), "seconds_per_epoch": sum(epoch_seconds) / len(epoch_seconds),
            "epoch_seconds": list(epoch_seconds), "valid_curve": list(valid_curve),
            "elapsed_seconds": elapsed_seconds}


def finished_record(record: dict[str, Any], epoch_seconds: list[float], valid_curve: list[float],
                    total_seconds: float, test: dict[str, float], stopped_at_cap: bool) -> dict[str, Any]:
    """``record`` once the best validation epoch is tested: status, best epoch (1-based; the first of
    equal bests, as RecBole keeps), training and total seconds, and the test figures under our names."""
    out = epoch_progress(record, epoch_seconds, valid_curve, record.get("elapsed_seconds", total_seconds))
    best = max(range(len(valid_curve)), key=valid_curve.__getitem__)
    out.update(status="stopped at the time cap" if stopped_at_cap else "done", best_epoch=best + 1,
               total_seconds=total_seconds, train_seconds=sum(epoch_seconds),
               test={metric_name(k): float(v) for k, v in dict(test).items()})
    return out


# -- the timing conditions of a run ------------------------------------------------------------


def load_average() -> float | None:
    """The one-minute load average, or None where the system reports none (Windows)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def niceness() -> int | None:
    """This process's niceness (0 normally; 19 under ``nice -n 19``), or None where the system has none."""
    try:
        return os.nice(0)
    except (AttributeError, OSError):
        return None


def conditions_at_start(threads: int = THREADS) -> dict[str, Any]:
    """What a timed run records as it starts: the load average, the niceness and its torch thread count.

    :param threads: the torch threads the run uses (both sides of a comparison should state the same).
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a whole number >= 1, got {threads!r}")
    return {"threads": threads, "niceness": niceness(), "load_average_start": load_average()}


def conditions_at_end(start: dict[str, Any]) -> dict[str, Any]:
    """``start`` (from :func:`conditions_at_start`) with the load average at the run's end."""
    if "load_average_start" not in start:
        raise ValueError("conditions_at_end needs the record of conditions_at_start (no load_average_start in "
                         f"{sorted(start)})")
    return {**start, "load_average_end": load_average()}


def with_conditions(record: dict[str, Any], start: dict[str, Any]) -> dict[str, Any]:
    """``record`` (a RecBole run's, as its child reports it) with the run's timing conditions: those at
    its start while it runs, and the load average at its end too once it is finished (:data:`FINISHED`)."""
    return {**record, **(conditions_at_end(start) if record.get("status") in FINISHED else start)}


def timing_warnings(conditions: dict[str, Any], limit: float = LOAD_AVERAGE_LIMIT) -> list[str]:
    """Why a run's seconds may not compare: a busy machine at its start (load average above ``limit``),
    a raised niceness, an unrecorded load average. Empty when the timing is clean.

    :param conditions: a record holding the fields of :func:`conditions_at_start` (and maybe
        :func:`conditions_at_end`).
    """
    if limit < 0:
        raise ValueError(f"the load-average limit must be >= 0, got {limit}")
    out = []
    start = conditions.get("load_average_start")
    if start is None:
        out.append("no load average recorded at the start")
    elif start > limit:
        out.append(f"load average {start:.2f} at the start (above {limit:g}): the machine was busy")
    if conditions.get("niceness"):
        out.append(f"ran under nice {conditions['niceness']}")
    return out


def thread_mismatch(records: list[dict[str, Any]]) -> str | None:
    """A sentence when the records of one comparison state different thread counts (or none), else None."""
    stated = [r.get("threads") for r in records]
    if len(set(stated)) <= 1 and None not in stated:
        return None
    return f"the runs compared state different thread counts: {', '.join(map(str, stated))}"


# -- the parent <-> child protocol -----------------------------------------------------------


def record_line(record: dict[str, Any]) -> str:
    """One line of the child's standard output that carries ``record`` to the parent."""
    return RECORD_MARKER + json.dumps(record)


def parse_record_line(line: str) -> dict[str, Any] | None:
    """The record a child's output line carries, or None for any other line (RecBole's own output)."""
    if not line.startswith(RECORD_MARKER):
        return None
    return json.loads(line[len(RECORD_MARKER):])


def child_command(python: Path, *arguments: str) -> list[str]:
    """The command that runs this file's RecBole side under RecBole's interpreter ``python``."""
    return [str(python), str(Path(__file__).resolve()), *arguments]


def child_environment(threads: int = THREADS) -> dict[str, str]:
    """The child's environment: ours, with OpenMP at ``threads`` and torch's pre-2.6 checkpoint loading
    (RecBole 1.2.1 loads its best epoch with ``torch.load`` and pickled settings)."""
    return {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "OMP_NUM_THREADS": str(threads)}


def run_child(command: list[str], on_record: Callable[[dict[str, Any]], None],
              env: dict[str, str] | None = None) -> int:
    """Run a child, hand each record it reports to ``on_record`` as it comes, echo its other output.

    :returns: the child's exit status.
    """
    with subprocess.Popen(command, env=env if env is not None else child_environment(), stdout=subprocess.PIPE,
                          text=True, bufsize=1) as child:
        assert child.stdout is not None
        for line in child.stdout:
            record = parse_record_line(line.rstrip("\n"))
            if record is None:
                print(line, end="", flush=True)
            else:
                on_record(record)
    return child.returncode


# -- RecBole's side (runs under RecBole's interpreter: this file, not the package) -------------


class _BudgetReached(Exception):
    pass


def _recbole_data_path() -> Path:
    import recbole

    return Path(recbole.__file__).parent / "dataset_example"


def _recbole_version() -> str:
    import recbole

    return str(getattr(recbole, "__version__", "unknown"))


def run_recbole_model(model: str, epochs: int, seed: int, workdir: Path, report: Callable[[dict[str, Any]], None],
                      dry: bool = False, threads: int = THREADS) -> dict[str, Any]:
    """Train and test one RecBole model; hand the record to ``report`` after every epoch and at the end.

    Each epoch's training seconds are taken around RecBole's ``Trainer._train_epoch`` (its
    ``epoch N training [time]``); after the epoch that passes :data:`RECBOLE_MAX_SECONDS`, the best
    epoch so far is tested.
    """
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    torch.set_num_threads(threads)
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)  # RecBole writes log/ and log_tensorboard/ into the working directory
    task = RECBOLE_MODELS[model][0]
    config = Config(model=model, config_dict=recbole_config(model, epochs, seed, workdir, _recbole_data_path()))
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
        record = {"model": model, "dry_run_loss": float(loss)}
        report(record)
        return record

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
        nonlocal record
        valid_curve.append(float(valid_score))
        record = epoch_progress(record, epoch_seconds, valid_curve, time.perf_counter() - start)
        report(record)
        if time.perf_counter() - start > RECBOLE_MAX_SECONDS and len(epoch_seconds) < epochs:
            raise _BudgetReached

    trainer._train_epoch = timed_epoch
    stopped_early = False
    try:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=after_epoch)
    except _BudgetReached:
        stopped_early = True
    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    record = finished_record(record, epoch_seconds, valid_curve, time.perf_counter() - start, dict(test),
                             stopped_early)
    report(record)
    return record


def recbole_speed(model: str, batches: int, workdir: Path, device: str = "cpu", batch_size: int | None = None,
                  threads: int = THREADS) -> dict[str, Any]:
    """Seconds per training batch of RecBole's ``model`` (its dataloader, loss, backward and optimiser step).

    :param device: ``cpu`` or ``cuda`` (RecBole's ``use_gpu``).
    :param batch_size: RecBole's ``train_batch_size`` (default the shared protocol's).
    """
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    torch.set_num_threads(threads)
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)
    settings = recbole_config(model, 1, 0, workdir, _recbole_data_path())
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
            "batches_per_epoch": len(train_data), "seconds_per_epoch": per_batch * len(train_data),
            "threads": threads}


def _child_main(argv: list[str] | None = None) -> None:
    """The child's command line: ``one MODEL --epochs N --seed S --workdir DIR [--dry]`` or
    ``speed MODEL --batches N --workdir DIR [--device D] [--batch-size B]``; records go to stdout."""
    parser = argparse.ArgumentParser(description="RecBole's side of scripts/compare_recbole.py")
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("one")
    one.add_argument("model", choices=list(RECBOLE_MODELS))
    one.add_argument("--epochs", type=int, required=True)
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--workdir", type=Path, required=True)
    one.add_argument("--threads", type=int, default=THREADS)
    one.add_argument("--dry", action="store_true")
    speed = sub.add_parser("speed")
    speed.add_argument("model", choices=list(RECBOLE_MODELS))
    speed.add_argument("--batches", type=int, required=True)
    speed.add_argument("--workdir", type=Path, required=True)
    speed.add_argument("--device", default="cpu")
    speed.add_argument("--batch-size", type=int, default=None)
    speed.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args(argv)

    def report(record: dict[str, Any]) -> None:
        print(record_line(record), flush=True)

    if args.command == "one":
        run_recbole_model(args.model, args.epochs, args.seed, args.workdir, report, dry=args.dry,
                          threads=args.threads)
    else:
        report(recbole_speed(args.model, args.batches, args.workdir, args.device, args.batch_size, args.threads))


if __name__ == "__main__":
    # run as a file by RecBole's interpreter: this folder first on the path would let its modules
    # (tasks.py, trainer.py, ...) shadow any same-named top-level module RecBole's stack imports
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path.pop(0)
    _child_main()
