"""Reproduce the DRR paper's results table (Liu et al. 2018, Tables 2-4) with recgym.

    python scripts/reproduce_drr.py [--seeds 5] [--steps 10000] [--datasets ml-100k jester] [--workers 2]
    python scripts/reproduce_drr.py --report-only      # rewrite the doc from the finished cells

The grids are examples/reproduce_drr.yaml (leak-free: the embedding model agents use is fitted on the training
users only) and examples/reproduce_drr_all_data.yaml (all-data: the DRR paper's setting, fitted on every
rating): the paper's rows (Popularity, PMF, LinUCB, DQN, DDPG, DEERS, DRR-p/u/ave/att, oracle-greedy) as
explicit rows, trained on the training users of the PMF-simulated environments and evaluated on the test
users offline (DRR's re-ranking: Precision@20, two NDCG@20, MAP@20 with 95% bootstrap intervals over users) and
online (average reward per step). Each grid runs with ``recgym compare`` into ``--runs/<scenario>`` (each cell
cached there, an interrupted run resumes); then
:func:`recgym.experiments.reports.drr.write_drr_report` writes docs/results/drr.md (our mean ± std beside the
paper's figures, the settings, a reading of the comparison) and docs/results/drr_ml100k.png. Datasets whose
files are not in the data folder are left out (Jester falls back to its 5,000-user sample).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recgym.experiments.compare import load_grid, run_grid
from recgym.experiments.compare.runner import load_records
from recgym.experiments.reports.drr import ENV_IDS, dataset_settings, write_drr_report

REPO = Path(__file__).resolve().parents[1]
GRIDS = {"train": REPO / "examples" / "reproduce_drr.yaml", "all": REPO / "examples" / "reproduce_drr_all_data.yaml"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    parser.add_argument("--steps", type=int, default=None, help="training steps per RL run (default: the grid's)")
    parser.add_argument("--n-envs", type=int, default=None)
    parser.add_argument("--eval-episodes", type=int, default=None)
    parser.add_argument("--datasets", nargs="*", default=["ml-100k", "jester", "ml-1m", "yahoo-r3"],
                        choices=list(ENV_IDS))
    parser.add_argument("--embedding-fits", nargs="*", default=list(GRIDS), choices=list(GRIDS))
    parser.add_argument("--data-dir", type=Path, default=None, help="local data directory (default: RECGYM_DATA_DIR)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "reproduce_drr",
                        help="the grids' output folders: RUNS/train and RUNS/all")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "drr.md")
    parser.add_argument("--report-only", action="store_true", help="only write the report from finished cells")
    args = parser.parse_args()
    envs, per_env_kwargs, missing = dataset_settings(args.datasets, args.data_dir)
    for dataset in missing:
        print(f"{dataset}: files not found; skipped")
    overrides = {"seeds": list(range(args.seeds)), "steps": args.steps, "n_envs": args.n_envs,
                 "eval_episodes": args.eval_episodes, "envs": envs, "per_env_kwargs": per_env_kwargs,
                 "data_dir": None if args.data_dir is None else str(args.data_dir)}
    grids = []
    for fit in args.embedding_fits:
        grid = load_grid(GRIDS[fit], overrides, check_environments=not args.report_only)
        if not args.report_only:
            run_grid(grid, args.runs / fit, workers=args.workers)
        grids.append((grid, load_records(args.runs / fit, grid)))
    command = f".venv/bin/python scripts/reproduce_drr.py --seeds {args.seeds} --steps {args.steps or grids[0][0].steps}"
    print(f"wrote {write_drr_report(grids, args.out, command)}")


if __name__ == "__main__":
    main()
