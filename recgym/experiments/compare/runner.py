"""Run a grid's cells: in this process, on N local worker processes, or as Ray tasks; then write the report.

Each backend keeps at most ``workers`` cells in flight, so "running" in the
live display means running. A cell's record is written as soon as it ends;
a rerun skips the cells whose record says ``done`` (see
:mod:`recgym.experiments.compare.cells`).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from recgym.experiments.compare.cells import (
    CellTask,
    execute_cell,
    read_record,
    record_path,
    skipped_record,
)
from recgym.experiments.compare.display import GridDisplay
from recgym.experiments.compare.grid import Cell, GridConfig
from recgym.experiments.compare.report import HISTORY_FILE, read_history, write_report
from recgym.experiments.config import changed_settings
from recgym.experiments.run_dir import read_json, write_json

BACKENDS = ("local", "ray")
MARKER = ".recgym-compare"
RAY_INSTALL_HINT = "--backend ray needs Ray, an optional extra: pip install 'recgym[ray]' (or pip install ray)"
#: object store of a local Ray instance: cells return small records, so Ray's default (30% of RAM) is not needed
RAY_OBJECT_STORE_BYTES = 200 * 1024**2
#: share of a GPU each Ray cell asks for when the grid's device is ``cuda`` (or ``auto`` on a cluster with
#: GPUs): Ray hides the GPUs from a task that asks for none, and one cell's small networks leave most of a
#: GPU idle, so four cells share one
RAY_GPU_SHARE = 0.25


@dataclass
class GridOutcome:
    """What a run of the grid did.

    :param records: every cell's record (done, failed or skipped), in grid order.
    :param ran: keys of the cells run this time.
    :param reused: keys of the cells finished before and skipped.
    :param seconds: wall time of this run.
    """

    records: list[dict[str, Any]]
    ran: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.records)


# -- the output folder ------------------------------------------------------------------------------------


def prepare_output(out: Path, grid: GridConfig) -> None:
    """Create (or reopen) the grid's output folder; refuse one recgym compare did not create.

    Nothing is ever deleted: a non-empty folder without the marker is refused.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file, not a folder: choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise FileExistsError(f"--out {out} is not empty and was not created by recgym compare (no {MARKER} marker); "
                              "choose a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / MARKER, {"written_by": "recgym compare",
                              "note": "recgym compare reruns skip the cells whose cells/<key>.json says done"})
    write_json(out / "grid.json", grid.to_json())


def check_finished_cells(out: Path, cells: list[Cell]) -> None:
    """Refuse a rerun whose settings differ from those a finished cell was trained with (all listed at once)."""
    changed = []
    for cell in cells:
        record = read_record(out, cell)
        if record is None or record.get("status") != "done":
            continue
        # where a cell computed (its device) is no setting of its result
        keys = changed_settings(record.get("config") or {}, cell.config.to_json())
        if keys:
            changed.append(f"{cell.key} (differs in {keys})")
    if changed:
        shown = "; ".join(changed[:5]) + (f"; and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise ValueError(f"{out} holds cells finished with other settings: {shown}. Use another --out for the new "
                         "settings (or move those records out of cells/ to run them again)")


# -- backends ---------------------------------------------------------------------------------------------


def _worker_init(log_dir: str) -> None:
    """Send a worker process's output to its own log file, so the live display stays readable."""
    path = Path(log_dir) / f"worker-{os.getpid()}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "a", buffering=1)  # noqa: SIM115  (open for the worker's lifetime)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log


def _run_serial(tasks: list[CellTask], display: GridDisplay, on_record: Callable[[CellTask, dict], None]) -> None:
    for task in tasks:
        display.started(task.cell)
        on_record(task, execute_cell(task))


def _worker_main(connection: Any, log_dir: str, run: Callable[[CellTask], dict[str, Any]]) -> None:
    """A worker process: run the cells it is sent, one at a time, until it is sent None (or its parent is gone)."""
    _worker_init(log_dir)
    while True:
        try:
            task = connection.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            record = run(task)
        except Exception as err:  # execute_cell records a cell's own errors; this is anything else
            record = _crashed_record(task, f"{type(err).__name__}: {err}")
        connection.send(record)


class _Worker:
    """One spawned worker process and its own pipe, so a worker that dies is known, with the cell it held."""

    def __init__(self, context: Any, log_dir: Path, run: Callable[[CellTask], dict[str, Any]]) -> None:
        self.connection, child = context.Pipe()
        # not a daemon: a cell may start processes of its own; a worker whose parent is gone stops at its next recv
        self.process = context.Process(target=_worker_main, args=(child, str(log_dir), run))
        self.process.start()
        child.close()  # the parent's copy: the pipe reports EOF once the worker is gone
        self.task: CellTask | None = None

    def send(self, task: CellTask) -> None:
        self.task = task
        self.connection.send(task)

    def stop(self) -> None:
        try:
            self.connection.send(None)
        except OSError:
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()
        self.connection.close()


def _run_local_pool(tasks: list[CellTask], workers: int, display: GridDisplay,
                    on_record: Callable[[CellTask, dict], None], log_dir: Path,
                    run: Callable[[CellTask], dict[str, Any]] | None = None) -> None:
    """Run ``tasks`` on ``workers`` worker processes; a worker that dies (killed, out of memory) fails only the
    cell it was running, and a fresh worker takes its place.

    :param run: what a worker does with a task (default :func:`execute_cell`; a module-level function: it
        travels to the spawned workers).
    """
    run = run or execute_cell
    # spawn, not fork: a forked copy of a process holding torch's thread pools can deadlock
    context = multiprocessing.get_context("spawn")
    queue = list(tasks)
    pool = [_Worker(context, log_dir, run) for _ in range(min(workers, len(queue)))]
    try:
        while True:
            for worker in pool:
                if worker.task is None and queue:
                    task = queue.pop(0)
                    worker.send(task)
                    display.started(task.cell)
            busy = [w for w in pool if w.task is not None]
            if not busy:
                return
            multiprocessing.connection.wait([w.connection for w in busy] + [w.process.sentinel for w in busy])
            survivors = []
            for worker in pool:
                task, record = worker.task, None
                if task is None:
                    survivors.append(worker)
                    continue
                if worker.connection.poll():
                    try:
                        record = worker.connection.recv()
                    except (EOFError, OSError):  # the pipe closed: the worker died
                        record = None
                elif worker.process.is_alive():
                    survivors.append(worker)
                    continue
                if record is not None:
                    worker.task = None
                    on_record(task, record)
                    survivors.append(worker)
                    continue
                # this worker died with its cell: only that cell fails, and a fresh worker takes the rest
                worker.process.join()
                on_record(task, _crashed_record(task, f"worker process died (exit code {worker.process.exitcode})"))
                worker.task = None
                worker.stop()
                if queue:
                    survivors.append(_Worker(context, log_dir, run))
            pool = survivors
    finally:
        for worker in pool:
            worker.stop()


def _crashed_record(task: CellTask, error: str) -> dict[str, Any]:
    from recgym.experiments.compare.cells import base_record

    record = {**base_record(task.cell), "status": "failed", "error": error, "seconds": 0.0, "finished": time.time()}
    task.progress_path.unlink(missing_ok=True)
    return record


def _ray_runtime_env() -> dict[str, Any]:
    """Make the local Ray workers import this recgym (a source checkout is not always the installed one)."""
    import recgym

    root = str(Path(recgym.__file__).resolve().parents[1])
    path = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
    return {"env_vars": {"PYTHONPATH": path}}


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RuntimeError(RAY_INSTALL_HINT) from None
    return ray


def _wants_gpu(tasks: list[CellTask], cluster_gpus: float) -> bool:
    """Whether the cells should ask Ray for a GPU share: ``cuda``, or ``auto`` where the cluster has GPUs."""
    devices = {task.cell.config.device for task in tasks}
    return any(d.startswith("cuda") for d in devices) or ("auto" in devices and cluster_gpus > 0)


def _run_ray(tasks: list[CellTask], workers: int | None, address: str | None, display: GridDisplay,
             on_record: Callable[[CellTask, dict], None]) -> None:
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        common = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(num_cpus=workers or os.cpu_count(), object_store_memory=RAY_OBJECT_STORE_BYTES,
                     runtime_env=_ray_runtime_env(), **common)
    try:
        capacity = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        # one CPU per cell (agents use one torch thread); retried once if its node or worker dies
        gpu = RAY_GPU_SHARE if _wants_gpu(tasks, ray.cluster_resources().get("GPU", 0)) else 0
        remote = ray.remote(num_cpus=1, num_gpus=gpu, max_retries=1)(execute_cell)
        queue = list(tasks)
        in_flight: dict[Any, CellTask] = {}
        while queue or in_flight:
            while queue and len(in_flight) < capacity:
                task = queue.pop(0)
                in_flight[remote.remote(task)] = task
                display.started(task.cell)
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                task = in_flight.pop(ref)
                try:
                    record = ray.get(ref)
                except Exception as err:  # the task's worker or node died (the cell's own errors are recorded)
                    record = _crashed_record(task, f"Ray task failed: {type(err).__name__}: {err}")
                on_record(task, record)
    finally:
        if started_here:
            ray.shutdown()


# -- the grid ---------------------------------------------------------------------------------------------


def run_grid(grid: GridConfig, out: str | Path, workers: int | None = 1, backend: str = "local",
             address: str | None = None, display: bool = True, stream: TextIO | None = None,
             report: bool = True) -> GridOutcome:
    """Run every cell of ``grid`` not finished yet, then write ``results.csv``, ``summary.md`` and the plots.

    :param grid: the validated grid.
    :param out: the grid's output folder (created, or reopened to resume).
    :param workers: cells run at once: 1 runs them one after another in this process; N > 1 on N worker
        processes (``local``) or N Ray tasks at a time (``ray``; None: as many as the cluster has CPUs).
    :param backend: ``local`` or ``ray``.
    :param address: with ``ray``: an existing cluster's address (default: start a local instance).
    :param display: show the live display.
    :param stream: where the display writes (default stderr).
    :param report: write the tables and plots at the end.
    :returns: every cell's record and what this run did.
    :raises ValueError: a bad backend or worker count, or finished cells whose settings changed.
    :raises RuntimeError: ``ray`` without Ray installed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"--workers must be a positive integer, got {workers!r}")
    if workers is None and backend == "local":
        workers = 1
    if address is not None and backend != "ray":
        raise ValueError("--address names a Ray cluster: use it with --backend ray")
    if backend == "ray":
        import_ray()  # before anything is written
    out = Path(out).resolve()
    cells = grid.cells()
    if out.is_dir():
        check_finished_cells(out, cells)
    prepare_output(out, grid)
    tic, started = time.perf_counter(), time.time()
    # the machine's load when the run starts: wall times on a shared machine mean little without it
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    records: dict[str, dict[str, Any]] = {}
    outcome = GridOutcome(records=[])
    tasks: list[CellTask] = []
    for cell in cells:
        if cell.skip_reason is not None:
            records[cell.key] = skipped_record(cell)
            write_json(record_path(out, cell), records[cell.key])
            continue
        previous = read_record(out, cell)
        if previous is not None and previous.get("status") == "done":
            records[cell.key] = previous
            outcome.reused.append(cell.key)
            continue
        tasks.append(CellTask(cell, str(out), grid.protocols))

    # this run's entry in history.json, brought up to date as cells end: a killed run keeps its time so far
    previous_runs = read_history(out)
    run_entry = {"start": started, "seconds": 0.0, "workers": workers, "backend": backend, "ran": 0,
                 "reused": len(outcome.reused), "load_average": load, "finished": False}

    def log_run(finished: bool = False) -> None:
        run_entry.update(seconds=time.perf_counter() - tic, ran=len(outcome.ran), finished=finished)
        write_json(out / HISTORY_FILE, [*previous_runs, run_entry])

    def on_record(task: CellTask, record: dict[str, Any]) -> None:
        # written here too: a Ray task on another node wrote its record on that node's disk
        write_json(task.record_path, record)
        records[task.cell.key] = record
        outcome.ran.append(task.cell.key)
        log_run()
        live.finished(task.cell, record)

    skipped = sum(r["status"] == "skipped" for r in records.values())
    with GridDisplay([t.cell for t in tasks], out, len(outcome.reused), skipped, stream, display) as live:
        if backend == "ray":
            _run_ray(tasks, workers, address, live, on_record)
        elif workers == 1:
            _run_serial(tasks, live, on_record)
        else:
            _run_local_pool(tasks, int(workers), live, on_record, out / "logs")
    outcome.records = [records[c.key] for c in cells if c.key in records]
    outcome.seconds = time.perf_counter() - tic
    if tasks:
        log_run(finished=True)
    if report:
        write_report(grid, out, outcome.records)
    return outcome


def load_records(out: str | Path, grid: GridConfig) -> list[dict[str, Any]]:
    """The records of a grid's output folder (the cells that have one), in grid order."""
    return [r for r in (read_record(out, c) for c in grid.cells()) if r is not None]


def unreadable_records(out: str | Path, grid: GridConfig) -> list[Path]:
    """The record files of a grid's cells that exist but cannot be read (what :func:`load_records` leaves out)."""
    return [record_path(out, c) for c in grid.cells()
            if record_path(out, c).exists() and read_record(out, c) is None]


def saved_grid(out: str | Path) -> dict[str, Any]:
    """The ``grid.json`` of an output folder."""
    return read_json(Path(out) / "grid.json")
