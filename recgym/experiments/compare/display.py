"""The live display of a running grid: cells done / running / failed / skipped and the running cells' steps.

On a terminal, rich's :class:`rich.live.Live` redraws the status block in place and prints each
finished cell's line above it. Elsewhere (a log file, CI) nothing can be redrawn, so a status
line is printed every :data:`LOG_SECONDS` seconds instead. Each finished or failed cell gets one
line either way.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from recgym.experiments.compare.cells import progress_path
from recgym.experiments.compare.grid import Cell, env_slug

#: seconds between two redraws of the live display on a terminal, and between two status lines otherwise
REDRAW_SECONDS, LOG_SECONDS = 1.0, 30.0


def describe(cell: Cell) -> str:
    """``"<label> on <env> seed <seed>"``: how the display names a cell."""
    return f"{cell.label} on {env_slug(cell.env)} seed {cell.seed}"


class GridDisplay:
    """Cells done / running / failed / skipped, and the running cells' steps, shown while the grid runs.

    A context manager: the backends call :meth:`started` and :meth:`finished` from the main thread;
    rich's refresh thread (on a terminal) or a heartbeat thread (otherwise) reads the counts under a lock.

    :param cells: the cells to run this time.
    :param out: the grid's output folder (the running cells' progress files).
    :param done_before: cells finished by an earlier run.
    :param skipped: cells skipped as incompatible.
    :param stream: where to write (default stderr).
    :param enabled: False: print nothing.
    """

    def __init__(self, cells: list[Cell], out: Path, done_before: int, skipped: int, stream: TextIO | None = None,
                 enabled: bool = True) -> None:
        self.out, self.enabled = out, enabled
        # markup and highlighting off: cell labels are printed as they are, brackets included
        self.console = Console(file=stream or sys.stderr, markup=False, highlight=False, soft_wrap=True)
        self.tty = self.console.is_terminal
        self.total = len(cells) + done_before + skipped
        self.done, self.failed, self.skipped = done_before, 0, skipped
        self.running: dict[str, Cell] = {}
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._live: Live | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def __enter__(self) -> "GridDisplay":
        if not self.enabled:
            return self
        self.console.print(f"recgym compare: {self.total} cells ({self.done} finished before, "
                           f"{self.skipped} skipped); results in {self.out}")
        if self.tty:
            self._live = Live(console=self.console, get_renderable=self._render, transient=True,
                              refresh_per_second=1 / REDRAW_SECONDS)
            self._live.start()
        else:
            self._heartbeat = threading.Thread(target=self._log_status, daemon=True)
            self._heartbeat.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if not self.enabled:
            return
        if self._live is not None:
            self._live.stop()  # transient: the block goes, the cells' lines stay
        if self._heartbeat is not None:
            self._heartbeat.join()
        with self._lock:
            self.console.print(self.status_line())

    def started(self, cell: Cell) -> None:
        """``cell`` began running."""
        with self._lock:
            self.running[cell.key] = cell

    def finished(self, cell: Cell, record: dict[str, Any]) -> None:
        """``cell`` ended with ``record`` (its status, figures or error): one line above the status block."""
        with self._lock:
            self.running.pop(cell.key, None)
            if record["status"] == "done":
                self.done += 1
                reward = record["figures"]["online"]["avg_reward_per_step"]
                line = f"done    {describe(cell)}: {reward:.4f} reward/step ({record['seconds']:.0f} s)"
            else:
                self.failed += 1
                line = f"FAILED  {describe(cell)}: {record.get('error', '?')}"
        if self.enabled:
            self.console.print(line)

    def status_line(self) -> str:
        """``[d/t done, r running, f failed, s skipped, w waiting; m min]``."""
        waiting = self.total - self.done - self.failed - self.skipped - len(self.running)
        minutes = (time.monotonic() - self._start) / 60
        return (f"[{self.done}/{self.total} done, {len(self.running)} running, {self.failed} failed, "
                f"{self.skipped} skipped, {waiting} waiting; {minutes:.1f} min]")

    def progress_lines(self) -> list[str]:
        """One line per running cell: its steps so far, from the progress file its run writes."""
        lines = []
        for cell in list(self.running.values()):
            try:
                progress = json.loads(progress_path(self.out, cell).read_text())
                steps = f"{progress['steps']:,}/{progress['total']:,} steps"
            except (OSError, ValueError, KeyError):
                steps = "starting"  # no progress file yet (or a remote node's, not visible here)
            lines.append(f"  running {describe(cell)}: {steps}")
        return lines

    def _render(self) -> Text:
        with self._lock:
            return Text("\n".join([self.status_line(), *self.progress_lines()]))

    def _log_status(self) -> None:
        while not self._stop.wait(LOG_SECONDS):
            with self._lock:
                lines = [self.status_line(), *self.progress_lines()]
            self.console.print("\n".join(lines))
