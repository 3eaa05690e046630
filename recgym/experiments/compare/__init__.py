"""``recgym compare``: plug-in encoder comparisons over encoders x environments x agents x seeds.

::

    from recgym.experiments.compare import load_grid, run_grid
    grid = load_grid("examples/encoder_grid.yaml")
    outcome = run_grid(grid, "runs/encoder_grid", workers=2)       # or backend="ray"

Modules: :mod:`~recgym.experiments.compare.grid` (the validated grid and its
cells), :mod:`~recgym.experiments.compare.cells` (one cell: a ``recgym train``
run, its evaluation and its record), :mod:`~recgym.experiments.compare.runner`
(backends, resume, the live display), :mod:`~recgym.experiments.compare.report`
(``results.csv``, ``summary.md``, plots), :mod:`~recgym.experiments.compare.cli`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# imported on first use, so that `recgym --help` does not load numpy, matplotlib and the evaluation
_EXPORTS = {"Cell": "grid", "EncoderChoice": "grid", "GridConfig": "grid", "load_grid": "grid", "make_grid": "grid",
            "write_report": "report", "BACKENDS": "runner", "GridOutcome": "runner", "load_records": "runner",
            "run_grid": "runner"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
