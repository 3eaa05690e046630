"""Trained agents against myopic policies and the planner, where long-term reward differs from greedy reward.

    python scripts/long_term.py [--seeds 5] [--steps 30000] [--envs recgym/ML100K-Behavior-v1 ...] [--workers 2]
    python scripts/long_term.py --report     # rewrite the doc from the finished cells

The grid is examples/long_term.yaml (the behaviour environments, the learning agents as explicit rows with
their settings, the myopic baselines, the oracles and the planner): this runs it with ``recgym compare``
into ``--out`` (each cell cached there, an interrupted run resumes), then writes docs/results/long_term.md
and its learning-curve plots with :func:`recgym.experiments.reports.long_term.write_long_term_report`.
``recgym compare --config examples/long_term.yaml --out runs/long_term`` runs the same cells.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recgym.experiments.compare import load_grid, run_grid
from recgym.experiments.compare.runner import load_records
from recgym.experiments.reports.long_term import write_long_term_report

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "examples" / "long_term.yaml")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    parser.add_argument("--steps", type=int, default=None, help="environment steps of training per agent and seed "
                        "(default: the grid's, 30,000)")
    parser.add_argument("--envs", nargs="*", default=None, help="default: the grid's")
    parser.add_argument("--data-dir", default=None, help="default: RECGYM_DATA_DIR, then the cache")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "long_term", help="the grid's output folder")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "results" / "long_term.md")
    parser.add_argument("--report", action="store_true", help="only rewrite the doc from the finished cells")
    args = parser.parse_args()
    overrides = {"seeds": list(range(args.seeds)), "steps": args.steps, "envs": args.envs, "data_dir": args.data_dir}
    grid = load_grid(args.config, overrides, check_environments=not args.report)
    if not args.report:
        run_grid(grid, args.out, workers=args.workers)
    command = f"python scripts/long_term.py --seeds {args.seeds} --steps {args.steps or grid.steps}"
    print(f"wrote {write_long_term_report(grid, load_records(args.out, grid), args.doc, command)}")


if __name__ == "__main__":
    main()
