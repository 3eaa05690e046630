"""Result documents written from a ``recgym compare`` grid's records: the reports of docs/results/.

Each module turns the records of one grid file under ``examples/`` into the markdown (and plots) a
result script writes: :mod:`~recgym.experiments.reports.long_term` (``examples/long_term.yaml``,
docs/results/long_term.md) and :mod:`~recgym.experiments.reports.drr` (``examples/reproduce_drr.yaml``,
docs/results/drr.md). The cells themselves are run, cached and resumed by ``recgym compare``; the
scripts under ``scripts/`` only parse their arguments and call the two.
"""
