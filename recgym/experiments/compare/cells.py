"""One cell of a grid: a normal ``recgym train`` run, then its evaluation, then its record.

A grid's output folder::

    .recgym-compare          marker: recgym compare created this folder
    grid.json                the validated grid of the latest run
    runs/<env>/<agent>/<encoder>/seed-<s>/    each cell's run folder, exactly as `recgym train` writes it
    runs/<env>/baselines/<name>/seed-<s>/
    cells/<key>.json         the cell's record: status (done, failed, skipped), figures, learning curve, error
    cells/<key>.progress.json  steps trained so far, while the cell runs (the live display reads it)
    logs/                    what worker processes printed
    results.csv  summary.md  plots/

A cell is finished when its record says ``done``: a rerun skips it. A cell
killed midway has a run folder but no ``done`` record; the rerun resumes it
from its newest checkpoint (``recgym train --resume``), or starts it again
when it had none yet (``--overwrite``, which removes only what recgym wrote).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recgym.experiments.compare.grid import Cell
from recgym.experiments.config import TrainConfig
from recgym.experiments.run_dir import CorruptCheckpointError, RunDir, read_json, write_json

#: seconds between two writes of a running cell's progress file
PROGRESS_INTERVAL = 1.0
#: characters of a failed cell's traceback kept in its record
TRACEBACK_CHARS = 4_000


@dataclass(frozen=True)
class CellTask:
    """What a worker needs to run one cell (picklable: it travels to worker processes and Ray tasks).

    :param cell: the cell, with its training configuration.
    :param out: the grid's output folder (absolute).
    :param protocols: the protocols to evaluate (``online`` comes with training).
    """

    cell: Cell
    out: str
    protocols: tuple[str, ...]

    @property
    def run_dir(self) -> Path:
        return Path(self.out) / self.cell.run_path

    @property
    def record_path(self) -> Path:
        return record_path(self.out, self.cell)

    @property
    def progress_path(self) -> Path:
        return progress_path(self.out, self.cell)


def record_path(out: str | Path, cell: Cell) -> Path:
    return Path(out) / "cells" / f"{cell.key}.json"


def progress_path(out: str | Path, cell: Cell) -> Path:
    return Path(out) / "cells" / f"{cell.key}.progress.json"


def base_record(cell: Cell) -> dict[str, Any]:
    """The fields every record has, whatever became of the cell."""
    return {"key": cell.key, "env": cell.env, "agent": cell.agent, "encoder": cell.encoder_label, "seed": cell.seed,
            "baseline": cell.baseline, "row": cell.row, "run": str(cell.run_path), "config": cell.config.to_json()}


def skipped_record(cell: Cell) -> dict[str, Any]:
    return {**base_record(cell), "status": "skipped", "reason": cell.skip_reason}


def read_record(out: str | Path, cell: Cell) -> dict[str, Any] | None:
    """The cell's record, or None when it has none (or an unreadable one: the cell runs again)."""
    path = record_path(out, cell)
    try:
        record = read_json(path)
    except (FileNotFoundError, CorruptCheckpointError):
        return None
    return record if isinstance(record, dict) else None


def cell_status(out: str | Path, cell: Cell) -> str | None:
    """The status its record gives a cell (``done``, ``failed``, ``skipped``), or None without a readable record."""
    record = read_record(out, cell)
    return None if record is None else record.get("status")


def start_mode(run: RunDir, config: TrainConfig) -> tuple[dict[str, bool], TrainConfig]:
    """How ``train`` starts a cell's run folder: fresh, resumed from its checkpoint, or replaced.

    A folder without a checkpoint was killed before its first one; it is replaced with
    ``overwrite``, which ``train`` refuses for anything recgym did not write. A run whose
    last checkpoint is already past ``config.steps`` (batched rollouts end a few steps late;
    killed after training, before its record) is resumed with zero steps left.

    :returns: ``train``'s ``resume`` / ``overwrite`` flags, and the configuration to pass it.
    """
    if not run.root.exists() or not any(run.root.iterdir()):
        return {"resume": False, "overwrite": False}, config
    try:
        folder = run.latest_checkpoint()
    except CorruptCheckpointError:
        folder = None  # a broken pointer: start again (only recgym's entries are removed)
    if folder is None:
        return {"resume": False, "overwrite": True}, config
    done = int(folder.name.removeprefix("step-"))
    return {"resume": True, "overwrite": False}, config.model_copy(update={"steps": max(config.steps, done)})


class ProgressWriter:
    """Writes a running cell's steps to its progress file, at most every :data:`PROGRESS_INTERVAL` seconds."""

    def __init__(self, path: Path, total: int) -> None:
        self.path, self.total = path, total
        self._last = 0.0
        self(0, force=True)

    def __call__(self, steps: int, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            write_json(self.path, {"steps": int(steps), "total": self.total, "time": time.time()})


def execute_cell(task: CellTask, write_record: bool = True) -> dict[str, Any]:
    """Train one cell into its run folder, evaluate the trained model in memory, and return (and write) its record.

    The run folder is written for ``recgym evaluate`` and for a rerun that resumes the cell; the cell's own
    figures come from the model :func:`~recgym.experiments.train.train` returns, never from reading the folder
    back. Any error is caught and recorded (``status: failed``, the error and its traceback), so a failing cell
    never stops the grid.

    :param task: the cell and where the grid writes.
    :param write_record: write ``cells/<key>.json`` here (False when the caller writes it).
    """
    from recgym.evaluation.online import actor_saturation
    from recgym.experiments.evaluate import evaluate
    from recgym.experiments.setup import RunSetup
    from recgym.experiments.train import train

    cell = task.cell
    record = base_record(cell)
    tic = time.perf_counter()
    try:
        writer = ProgressWriter(task.progress_path, cell.config.steps)
        run = RunDir(task.run_dir)
        mode, config = start_mode(run, cell.config)
        trained = train(RunSetup.from_config(config), config, run.root, progress=False, report=writer, **mode)
        results = trained.results
        figures: dict[str, Any] = {"online": results["online"]}  # train ends with the online protocol
        if trained.setup.config.action_mode == "embedding":
            # an actor's health, from the model in memory: the share of its outputs at the tanh bounds
            figures["actor"] = {"saturated_fraction": actor_saturation(
                trained.model, trained.setup.scenario, trained.setup.config, seed=config.seed)}
        for protocol in (p for p in task.protocols if p != "online"):
            try:
                figures[protocol] = evaluate(trained.saved_policy(), trained.setup, (protocol,),
                                             seed=config.seed)[protocol]
            except ValueError as err:
                # the protocol is undefined here (say, no test user has a liked candidate): the trained cell
                # stands, its figures under it are missing, and the summary says why
                record.setdefault("protocol_errors", {})[protocol] = str(err)
        record.update(
            status="done", resumed=mode["resume"], scenario=results["scenario"], steps=results["steps"],
            gradient_updates=results["gradient_updates"], train_seconds=results["train_seconds"],
            figures=figures, curve=results["curve"],
        )
    except Exception as err:  # recorded, and the grid goes on
        record.update(status="failed", error=f"{type(err).__name__}: {err}",
                      traceback=traceback.format_exc()[-TRACEBACK_CHARS:])
    record["seconds"] = time.perf_counter() - tic
    record["finished"] = time.time()
    try:
        if write_record:
            write_json(task.record_path, record)
        task.progress_path.unlink(missing_ok=True)
    except OSError as err:  # the caller writes the record it is returned (a Ray node may not share the folder)
        record.setdefault("note", f"record not written by the worker: {err}")
    return record
