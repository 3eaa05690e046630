"""PMF simulator fidelity on MovieLens-100K: RMSE and like/dislike AUC on held-out ratings.

Protocol: an 80/20 random split of the ratings (fixed seed), PMF fitted by ALS
on the 80%, scored on the 20% with the model prediction (never the logged
ratings). Published PMF / biased-MF figures on ML-100K are RMSE ~0.90-0.93.

Usage::

    python scripts/pmf_fidelity.py --data-dir ../shared/datasets --dim 50 --seed 0
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recgym.data import STAR_SCALE, RatingLog, build_rating_log
from simulators.pmf import DEFAULT_BIAS_REG, DEFAULT_N_ITERS, DEFAULT_REG, PMFSimulator

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_ml100k(data_dir: Path) -> RatingLog:
    """ML-100K with genres: the official loader when present, else ``u.data`` / ``u.item`` parsed here."""
    try:
        from recgym.data import load
    except ImportError:
        load = None
    if load is not None:
        return load("ml-100k", data_dir=data_dir, download=False)
    folder = data_dir / "ml-100k"
    raw = pd.read_csv(folder / "u.data", sep="\t", names=["user", "item", "rating", "timestamp"])
    return build_rating_log("ml-100k", raw, STAR_SCALE)


def random_split(log: RatingLog, test_fraction: float, seed: int) -> tuple[RatingLog, RatingLog]:
    """Hold out a random ``test_fraction`` of the ratings (the same users and items id space)."""
    try:
        from recgym.data import split_random_ratings
    except ImportError:
        split_random_ratings = None
    if split_random_ratings is not None:
        return split_random_ratings(log, test_fraction=test_fraction, seed=seed)
    n = len(log)
    test = np.zeros(n, dtype=bool)
    test[np.random.default_rng(seed).permutation(n)[: int(round(test_fraction * n))]] = True
    df = log.interactions
    return log.with_interactions(df[~test]), log.with_interactions(df[test])


def main(argv: list[str] | None = None) -> int:
    default_dir = os.environ.get("RECGYM_DATA_DIR") or str(REPO_ROOT.parent / "shared" / "datasets")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(default_dir),
                        help="directory holding ml-100k/ (default: $RECGYM_DATA_DIR or ../shared/datasets)")
    parser.add_argument("--dim", type=int, default=50, help="PMF dimension (default 50, DRR's)")
    parser.add_argument("--reg", type=float, default=DEFAULT_REG, help=f"factor L2 penalty (default {DEFAULT_REG})")
    parser.add_argument("--bias-reg", type=float, default=DEFAULT_BIAS_REG,
                        help=f"bias L2 penalty (default {DEFAULT_BIAS_REG})")
    parser.add_argument("--n-iters", type=int, default=DEFAULT_N_ITERS,
                        help=f"ALS sweeps (default {DEFAULT_N_ITERS})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and of the initial factors")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="held-out share of ratings")
    args = parser.parse_args(argv)

    if not (args.data_dir / "ml-100k" / "u.data").exists():
        print(f"ml-100k not found under {args.data_dir}: pass --data-dir or set RECGYM_DATA_DIR", file=sys.stderr)
        return 2
    log = load_ml100k(args.data_dir)
    train, test = random_split(log, args.test_fraction, args.seed)
    model = PMFSimulator(dim=args.dim, reg=args.reg, bias_reg=args.bias_reg, n_iters=args.n_iters, seed=args.seed)
    start = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - start
    scores = model.evaluate(test)
    baseline = float(np.sqrt(np.mean((test.interactions["rating"] - train.interactions["rating"].mean()) ** 2)))
    print(f"dataset      {log.name}: {len(train)} train / {len(test)} test ratings (seed {args.seed})")
    print(f"model        PMF dim={args.dim} reg={args.reg:g} bias_reg={args.bias_reg:g} n_iters={args.n_iters}")
    print(f"fit time     {fit_s:.2f} s")
    print(f"RMSE         {scores['rmse']:.4f}   (global-mean baseline {baseline:.4f})")
    print(f"AUC (liked)  {scores['auc']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
