"""Off-policy estimators against the simulator's truth: bias, RMSE and interval coverage (a small grid).

    python scripts/ope.py [--envs recgym/ML100K-PMF-v0 recgym/ML100K-Behavior-v0] [--temperatures 0.02 0.2] [--seeds 3] [--max-steps 5]

For each logging temperature ``T`` and seed, a softmax over greedy-pmf's predicted ratings (temperature
``T`` stars) is logged on the test users (one episode each, ``--max-steps`` steps;
:func:`recgym.evaluation.transitions.record_transitions`), the reward model is fitted on that log, and
each target's value (random, popularity, greedy-pmf, greedy-pmf-topics) is estimated by PDIS, WPDIS, DM
and DR with 95% bootstrap intervals over episodes. The truth is each target's on-policy value on the
same users: the mean episode return of ``--truth-rollouts`` online rollouts (different response seeds).
Writes docs/results/ope.md: per logging temperature and target, the truth, each estimator's mean
estimate, bias, RMSE and interval coverage over the logs, and the effective sample size (how far the
target is from the logging policy). This is the small-scale grid; issue #24's full grid adds
ML100K-Behavior, more logging policies and logs, a trained DQN target and offline-RL rows.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from agents.baselines import GreedyPMFAgent, PopularityAgent, TopicAwareGreedyAgent
from recgym.data.atomic import atomic_write
from recgym.evaluation.online import evaluate_online
from recgym.evaluation.ope import ESTIMATORS, RatingRewardModel, estimate_all
from recgym.evaluation.transitions import (
    GreedyProbabilities,
    SampledPolicy,
    SoftmaxProbabilities,
    UniformProbabilities,
    record_transitions,
)
from recgym.experiments.setup import make_run_setup

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("random", "popularity", "greedy-pmf", "greedy-pmf-topics")


def make_targets(run: Any) -> dict[str, Any]:
    """Each target's action probabilities (the baselines are fitted on the training users' log)."""
    env = run.training_env(1)
    n_items = run.scenario.n_items
    popularity = PopularityAgent(env, scenario=run.scenario)
    popularity.fit()
    return {"random": UniformProbabilities(),
            "popularity": GreedyProbabilities(popularity, n_items),
            "greedy-pmf": GreedyProbabilities(GreedyPMFAgent(env, scenario=run.scenario), n_items),
            "greedy-pmf-topics": GreedyProbabilities(TopicAwareGreedyAgent(env, scenario=run.scenario), n_items)}


def true_values(run: Any, targets: dict[str, Any], users: np.ndarray, rollouts: int) -> dict[str, tuple[float, float]]:
    """Each target's mean on-policy episode return over ``rollouts`` response seeds, and its standard error."""
    out = {}
    for name, target in targets.items():
        values = [evaluate_online(SampledPolicy(target, seed=r), run.scenario, run.config, users=users,
                                  seed=10_000 + 1000 * r).avg_reward_per_episode for r in range(rollouts)]
        out[name] = (float(np.mean(values)), float(np.std(values, ddof=1) / np.sqrt(rollouts)) if rollouts > 1 else 0.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", nargs="+", default=["recgym/ML100K-PMF-v0", "recgym/ML100K-Behavior-v0"])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.02, 0.2])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=5)
    parser.add_argument("--n-users", type=int, default=None, help="the first N test users (default: all)")
    parser.add_argument("--truth-rollouts", type=int, default=10)
    parser.add_argument("--samples", type=int, default=500, help="bootstrap resamples per interval")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "ope.md")
    args = parser.parse_args()
    tic = time.perf_counter()
    sections = [run_env(env_id, args) for env_id in args.envs]
    text = header(args, time.perf_counter() - tic) + "".join(sections) + summary(args, sections)
    atomic_write(args.out, lambda tmp: tmp.write_text(text))
    print(f"wrote {args.out} in {time.perf_counter() - tic:.0f} s")


def run_env(env_id: str, args: argparse.Namespace) -> str:
    """One environment's grid: truths, logs, estimates; its Markdown section."""
    tic = time.perf_counter()
    run = make_run_setup(env_id, {"max_steps": args.max_steps}, "discrete")
    users = run.scenario.users("test")
    if args.n_users is not None:
        users = users[: args.n_users]
    targets = make_targets(run)
    truth = true_values(run, targets, users, args.truth_rollouts)
    print(f"{env_id} truths ({time.perf_counter() - tic:.0f} s): "
          + ", ".join(f"{k} {v[0]:.3f}" for k, v in truth.items()), flush=True)
    pmf = GreedyPMFAgent(run.training_env(1), scenario=run.scenario)
    rows: list[dict[str, Any]] = []
    logged: dict[float, list[float]] = {}
    for temperature in args.temperatures:
        for seed in range(args.seeds):
            log = record_transitions(SoftmaxProbabilities(pmf, temperature), run.scenario, run.config, users,
                                     seed=seed)
            logged.setdefault(temperature, []).append(float(log.episode_returns().mean()))
            model = RatingRewardModel(pmf).fit(log)
            for name, target in targets.items():
                for estimator, e in estimate_all(log, target, model, samples=args.samples, seed=seed).items():
                    rows.append({"temperature": temperature, "seed": seed, "target": name, "estimator": estimator,
                                 "value": e.value, "low": e.low, "high": e.high, "ess": e.effective_sample_size})
            print(f"{env_id} T={temperature:g} seed {seed} ({time.perf_counter() - tic:.0f} s)", flush=True)
    return report(args, env_id, run, users, truth, rows, logged)

def header(args: argparse.Namespace, seconds: float) -> str:
    """The page's title and settings."""
    return "\n".join([
        "# Off-policy estimates against the simulator's truth (small grid)",
        "",
        f"Written by `scripts/ope.py --envs {' '.join(args.envs)} --temperatures "
        f"{' '.join(f'{t:g}' for t in args.temperatures)} --seeds {args.seeds} --max-steps {args.max_steps} "
        f"--truth-rollouts {args.truth_rollouts}` in {seconds:.0f} s ({platform.machine()}, CPU). Test users of "
        f"each environment, episodes of at most {args.max_steps} steps; the value is the expected undiscounted "
        "episode return.",
        "",
        "Logging policy: a softmax over greedy-pmf's predicted ratings at temperature T (stars), one log per "
        f"seed ({args.seeds} logs per T). Truth: the target's mean on-policy return on the same users over "
        f"{args.truth_rollouts} response seeds (± its standard error). Estimators and intervals: "
        f"[docs/offline.md](../offline.md) (95% bootstrap over episodes, {args.samples} resamples). Bias and "
        f"RMSE are over the {args.seeds} logs; coverage counts the logs whose interval holds the truth. ESS: the "
        "mean over logs of the smallest per-step effective sample size of the per-decision weights; the "
        "smaller, the farther the target is from the logging policy (0: no logged episode follows the target "
        "to the end).",
        "",
    ]) + "\n"


def report(args: argparse.Namespace, env_id: str, run: Any, users: np.ndarray,
           truth: dict[str, tuple[float, float]], rows: list[dict[str, Any]], logged: dict[float, list[float]]) -> str:
    """One environment's section: a table per logging temperature, each target's lowest-RMSE estimator."""
    lines = [f"## {env_id} ({users.size} test users; {run.scenario.label})", ""]
    best: list[tuple[float, str, str]] = []
    for temperature in args.temperatures:
        mean_logged = np.mean(logged[temperature])
        lines += [f"### Logging temperature {temperature:g} (mean logged return {mean_logged:.3f})", "",
                  "| target | truth | estimator | mean estimate | bias | RMSE | coverage | ESS |",
                  "|---|---|---|---|---|---|---|---|"]
        for name in TARGETS:
            value, se = truth[name]
            rmse = {}
            for estimator in ESTIMATORS:
                cell = [r for r in rows if r["temperature"] == temperature and r["target"] == name
                        and r["estimator"] == estimator]
                estimates = np.array([r["value"] for r in cell])
                covered = sum(r["low"] <= value <= r["high"] for r in cell)
                errors = estimates - value
                rmse[estimator] = float(np.sqrt(np.mean(errors ** 2)))
                ess = np.mean([r["ess"] for r in cell])
                lines.append(f"| {name} | {value:.3f} ± {se:.3f} | {estimator} | {estimates.mean():.3f} | "
                             f"{errors.mean():+.3f} | {rmse[estimator]:.3f} | {covered}/{len(cell)} | "
                             f"{'—' if np.isnan(ess) else f'{ess:.1f}'} |")
            winner = min(rmse, key=rmse.get)
            best.append((temperature, name, winner))
            dr_wins = rmse["dr"] <= min(rmse["pdis"], rmse["dm"])
            lines.append(f"| {name} | | **lowest RMSE** | {winner} | | DR ≤ PDIS and DM: "
                         f"{'yes' if dr_wins else 'no'} | | |")
        lines.append("")
    lines += [f"Lowest RMSE per (temperature, target): " + ", ".join(
        f"{e} {sum(1 for _, _, w in best if w == e)}" for e in ESTIMATORS) + f" of {len(best)}.", "", ""]
    return "\n".join(lines)


def summary(args: argparse.Namespace, sections: list[str]) -> str:
    """Where DR's RMSE is at most both PDIS's and DM's, counted from the sections' rows."""
    cells = sum(s.count("DR ≤ PDIS and DM:") for s in sections)
    yes = sum(s.count("DR ≤ PDIS and DM: yes") for s in sections)
    return ("## Summary\n\n"
            f"DR's RMSE is at most both PDIS's and DM's in {yes} of {cells} (environment, temperature, target) "
            "cells; each cell's row **lowest RMSE** names the best estimator there.\n")

if __name__ == "__main__":
    main()
