"""``recgym compare``: the grid from a file (``--config``) and/or flags, run, then tables and plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from recgym.devices import DEVICE_CHOICES

#: where cells run (recgym.experiments.compare.runner.BACKENDS; repeated here to keep `recgym --help` light)
BACKENDS = ("local", "ray")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` sub-command."""
    p = subparsers.add_parser(
        "compare", help="compare state encoders over environments, agents and seeds",
        description="Run every cell of encoders x environments x agents x seeds (each a `recgym train` run with its "
        "own run folder, plus the baselines), then write DIR/results.csv, DIR/summary.md and DIR/plots/. A rerun "
        "skips the finished cells and resumes the others.",
        epilog="Flags override the config file's settings. A rerun resumes interrupted cells from their checkpoints, "
        "which unpickles them: rerun only grids you trust.",
    )
    p.add_argument("--config", type=Path, help="YAML or TOML grid file (docs/compare.md)")
    p.add_argument("--out", type=Path, required=True, help="output folder (created, or reopened to resume)")
    p.add_argument("--encoders", nargs="+", metavar="NAME", help="encoder names")
    p.add_argument("--envs", nargs="+", metavar="ID", help="environment ids")
    p.add_argument("--agents", nargs="+", metavar="NAME", help="learning agents (dqn, drr, ddpg, deers)")
    p.add_argument("--seeds", nargs="+", type=int, metavar="S", help="seeds")
    p.add_argument("--reference", help="encoder the others are compared with (default: the first)")
    p.add_argument("--baselines", nargs="*", metavar="NAME",
                   help="baselines scored beside the agents (default random popularity greedy-pmf oracle-greedy)")
    p.add_argument("--steps", type=int, help="environment steps per cell (default 20000)")
    p.add_argument("--data-dir", help="local data directory (default: RECGYM_DATA_DIR, then the cache)")
    p.add_argument("--device", choices=DEVICE_CHOICES,
                   help="where the cells' agents train: auto (CUDA when available, else the CPU; default), cpu or "
                   "cuda (the grid file's `device`)")
    p.add_argument("--workers", type=int, default=None,
                   help="cells run at once (default 1; with --backend ray: the cluster's CPUs)")
    p.add_argument("--backend", choices=BACKENDS, default="local",
                   help="local: this process or N worker processes; ray: Ray tasks (pip install 'recgym[ray]')")
    p.add_argument("--address", help="with --backend ray: address of an existing Ray cluster (default: a local "
                   "instance)")
    p.add_argument("--check", action="store_true", help="validate the grid and list its cells; train nothing")
    p.add_argument("--report-only", action="store_true", help="rewrite the tables and plots from the finished cells (the grid: --config, else "
                   "OUT/grid.json)")
    p.add_argument("--no-display", action="store_true", help="no live display (finished cells are still listed)")
    p.set_defaults(func=run_compare)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The grid settings given as flags."""
    return {"encoders": args.encoders, "envs": args.envs, "agents": args.agents, "seeds": args.seeds,
            "reference": args.reference, "baselines": args.baselines, "steps": args.steps, "data_dir": args.data_dir,
            "device": args.device}


def run_compare(args: argparse.Namespace) -> int:
    from recgym.experiments.compare.grid import load_grid
    from recgym.experiments.compare.report import write_report
    from recgym.experiments.compare.cells import cell_status
    from recgym.experiments.compare.runner import (
        check_finished_cells,
        import_ray,
        load_records,
        run_grid,
        unreadable_records,
    )

    given = {k: v for k, v in overrides(args).items() if v is not None}
    if args.report_only and args.config is None and not given and (args.out / "grid.json").is_file():
        from recgym.experiments.compare.grid import make_grid
        from recgym.experiments.compare.runner import saved_grid

        # the grid the folder was last run with; only reported on, so its data need not be here
        grid = make_grid(saved_grid(args.out), check_environments=False)
    else:
        grid = load_grid(args.config, given, check_environments=not args.report_only)
    cells = grid.cells()
    if args.check:
        if args.out.is_dir():
            check_finished_cells(args.out, cells)
        skipped = [c for c in cells if c.skip_reason]
        finished = [c for c in cells if not c.skip_reason and cell_status(args.out, c) == "done"]
        print(f"grid OK: {len(cells)} cells ({len(cells) - len(skipped) - len(finished)} to run, "
              f"{len(finished)} finished before, {len(skipped)} skipped)")
        for cell in skipped:
            print(f"skipped {cell.key}: {cell.skip_reason}")
        return 0
    if args.report_only:
        unreadable = unreadable_records(args.out, grid)
        paths = write_report(grid, args.out, load_records(args.out, grid))
        for path in unreadable:
            print(f"left out of the report: {path} is not a readable cell record (rerun the grid to run that cell "
                  "again)", file=sys.stderr)
        print(f"summary: {paths['summary']}; results: {paths['csv']}")
        return 0
    if args.backend == "ray":
        import_ray()  # says how to install it, before anything is written
    else:
        from recgym.devices import resolve_device

        resolve_device(grid.device)  # CUDA asked for where torch has none: refused before any cell starts
    outcome = run_grid(grid, args.out, workers=args.workers, backend=args.backend, address=args.address,
                       display=not args.no_display)
    print(f"{outcome.count('done')} cells done ({len(outcome.ran)} run now, {len(outcome.reused)} finished before), "
          f"{outcome.count('failed')} failed, {outcome.count('skipped')} skipped in {outcome.seconds / 60:.1f} min")
    print(f"summary: {Path(args.out) / 'summary.md'}; results: {Path(args.out) / 'results.csv'}")
    return 1 if outcome.count("failed") else 0
