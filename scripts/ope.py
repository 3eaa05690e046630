"""Off-policy estimators and offline RL against the simulator's truth (issue #24's grid): writes docs/results/ope.md.

    OMP_NUM_THREADS=1 python scripts/ope.py            # the committed grid (see the doc's header for its settings)
    python scripts/ope.py --from-json docs/results/ope.json   # re-render the page from the saved numbers

Per environment: the targets (random, popularity, greedy-pmf, greedy-pmf-topics, and recgym's default DQN
trained on the training users for ``--dqn-steps`` environment steps, seed 0) have their true value on the
test users measured on-policy (``--truth-rollouts`` response seeds). Each logging policy (uniform,
softmax over greedy-pmf's predicted ratings at two temperatures, ε-greedy-pmf) is rolled over the same
test users ``--logs`` times (seeds 0..logs-1, :func:`recgym.evaluation.transitions.record_transitions`);
on each log the reward model is fitted and every target estimated by PDIS, WPDIS, DM, FQE, DR (with FQE's
Q-model) and the one-step DR
(:mod:`recgym.evaluation.ope`). Then BC (recgym's), CQL and BCQ (d3rlpy's DiscreteCQL / DiscreteBCQ,
:mod:`recgym.offline.d3rlpy_adapter`) are trained on each log for ``--offline-steps`` gradient steps,
their true value measured online on the test users, and estimated from the same log. The grading
(:mod:`recgym.evaluation.ope_grid`) and the page (:mod:`recgym.experiments.reports.ope`) are built from the
saved rows (``ope.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", nargs="+", default=["recgym/ML100K-PMF-v0", "recgym/ML100K-Behavior-v1"])
    parser.add_argument("--temperatures", type=float, nargs=2, default=[0.05, 0.5],
                        help="the two softmax logging policies' temperatures (rating units)")
    parser.add_argument("--epsilon", type=float, default=0.3, help="the ε-greedy-pmf logging policy's ε")
    parser.add_argument("--logs", type=int, default=5, help="logs per logging policy (seeds 0..logs-1)")
    parser.add_argument("--max-steps", type=int, default=5)
    parser.add_argument("--n-users", type=int, default=None, help="the first N test users (default: all)")
    parser.add_argument("--truth-rollouts", type=int, default=5)
    parser.add_argument("--samples", type=int, default=300, help="bootstrap resamples per interval")
    parser.add_argument("--dqn-steps", type=int, default=10_000)
    parser.add_argument("--offline-steps", type=int, default=100, help="gradient steps of each offline learner")
    parser.add_argument("--no-offline", action="store_true", help="skip the offline-RL rows")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "ope.md")
    parser.add_argument("--from-json", type=Path, default=None, help="re-render from saved rows, running nothing")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    json_path = args.out.with_suffix(".json")
    if args.from_json is not None:
        saved = json.loads(args.from_json.read_text())
    else:
        if os.environ.get("OMP_NUM_THREADS") is None:
            print("note: set OMP_NUM_THREADS=1 (the grid is sized for one thread)", file=sys.stderr)
        # one thread: the grid shares a small machine (recgym/threads.py)
        import logging

        import structlog

        from recgym.threads import set_threads
        set_threads(1)
        # d3rlpy reports each fit through structlog at info level; the grid prints its own progress
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        tic = time.perf_counter()
        saved = {"command": "python scripts/ope.py " + " ".join(sys.argv[1:]), "settings": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("out", "from_json")},
            "machine": f"{platform.machine()}, CPU, 1 thread", "envs": []}
        for env_id in args.envs:
            saved["envs"].append(run_env(env_id, args))
            saved["seconds"] = time.perf_counter() - tic
            write_json(json_path, saved)  # each finished environment is kept, should a later one fail
    from recgym.experiments.reports.ope import write_ope_report

    plot = write_ope_report(saved, args.out)
    print(f"wrote {args.out} and {plot}", flush=True)


def write_json(path: Path, saved: dict[str, Any]) -> None:
    from recgym.data.atomic import atomic_write

    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(saved, indent=1)))


def run_env(env_id: str, args: argparse.Namespace) -> dict[str, Any]:
    """One environment's grid: truths, estimates on every log, offline-RL rows (plain numbers)."""
    import agents
    from agents.update_counter import GradientUpdateCounter
    from agents.baselines import GreedyPMFAgent, PopularityAgent, TopicAwareGreedyAgent
    from recgym.evaluation.online import evaluate_online
    from recgym.evaluation.ope import ESTIMATORS, RatingRewardModel, decision_arrays, estimate, per_decision_weights
    from recgym.evaluation.ope_grid import policy_divergence
    from recgym.evaluation.transitions import (EpsilonMixture, GreedyProbabilities, SampledPolicy,
                                               SoftmaxProbabilities, UniformProbabilities, record_transitions)
    from recgym.experiments.setup import make_run_setup

    tic = time.perf_counter()

    def say(what: str) -> None:
        print(f"{env_id} {what} ({time.perf_counter() - tic:.0f} s)", flush=True)

    run = make_run_setup(env_id, {"max_steps": args.max_steps}, "discrete")
    n_items = run.scenario.n_items
    users = run.scenario.users("test")
    if args.n_users is not None:
        users = users[: args.n_users]
    env = run.training_env(1)
    pmf = GreedyPMFAgent(env, scenario=run.scenario)
    popularity = PopularityAgent(env, scenario=run.scenario)
    popularity.fit()
    dqn = agents.make("dqn", run.training_env(16), seed=0, scenario=run.scenario, n_threads=1)
    updates = GradientUpdateCounter()
    dqn.learn(args.dqn_steps, callback=updates)
    say(f"dqn trained ({args.dqn_steps} steps, {updates.count} gradient updates)")
    targets = {"random": UniformProbabilities(),
               "popularity": GreedyProbabilities(popularity, n_items),
               "greedy-pmf": GreedyProbabilities(pmf, n_items),
               "greedy-pmf-topics": GreedyProbabilities(TopicAwareGreedyAgent(env, scenario=run.scenario), n_items),
               "dqn": GreedyProbabilities(dqn, n_items)}
    t_low, t_high = args.temperatures
    logging = {f"softmax T={t_low:g}": SoftmaxProbabilities(pmf, t_low),
               f"ε-greedy-pmf ε={args.epsilon:g}": EpsilonMixture(GreedyProbabilities(pmf, n_items), args.epsilon),
               f"softmax T={t_high:g}": SoftmaxProbabilities(pmf, t_high),
               "uniform": UniformProbabilities()}

    def true_value(policy: Any, rollouts: int, seed: int) -> tuple[float, float]:
        values = [evaluate_online(policy if not hasattr(policy, "action_probabilities")
                                  else SampledPolicy(policy, seed=seed + r), run.scenario, run.config,
                                  users=users, seed=seed + 1000 * r).avg_reward_per_episode
                  for r in range(rollouts)]
        se = float(np.std(values, ddof=1) / np.sqrt(rollouts)) if rollouts > 1 else float("nan")
        return float(np.mean(values)), se

    truth = {name: true_value(t, args.truth_rollouts, 10_000) for name, t in targets.items()}
    logging_truth = {name: true_value(p, args.truth_rollouts, 10_000) for name, p in logging.items()}
    say("truths " + ", ".join(f"{k} {v[0]:.3f}" for k, v in truth.items()))
    estimates: list[dict[str, Any]] = []
    offline: list[dict[str, Any]] = []
    models: list[dict[str, Any]] = []
    for log_name, behaviour in logging.items():
        for seed in range(args.logs):
            log = record_transitions(behaviour, run.scenario, run.config, users, seed=seed)
            model = RatingRewardModel(pmf).fit(log)
            fitted = decision_arrays(log, behaviour, model)
            models.append({"logging": log_name, "seed": seed, "logged_return": float(log.episode_returns().mean()),
                           "decisions": len(log),
                           "reward_model_rmse": float(np.sqrt(np.mean((fitted.model_rewards - log.rewards) ** 2))),
                           "reward_std": float(np.std(log.rewards))})

            def grade(name: str, target: Any, kind: str) -> dict[str, Any]:
                d = decision_arrays(log, target, model)
                weights, _ = per_decision_weights(d)
                row = {"logging": log_name, "seed": seed, "target": name, "kind": kind,
                       "kl": policy_divergence(log, target, behaviour),
                       "full_weight_share": float(np.mean(weights[:, -1] > 0)),
                       # the model's value of the first state alone: what DR keeps of an episode whose weight
                       # is zero from its first step on
                       "first_step_model_value": float(np.mean(d.model_values[d.step == 0]))}
                for e in ESTIMATORS:
                    est = estimate(d, e, samples=args.samples, seed=seed)
                    row[e] = {"value": est.value, "low": est.low, "high": est.high,
                              "ess": est.effective_sample_size}
                return row

            for name, target in targets.items():
                estimates.append(grade(name, target, "target"))
            if not args.no_offline:
                from recgym.offline import OfflineDataset, train_offline
                from recgym.offline.d3rlpy_adapter import train_d3rlpy

                data = OfflineDataset.from_log(log, run.scenario, run.config)
                learnt = {"bc": train_offline("bc", data, run.scenario, run.config, steps=args.offline_steps,
                                              seed=seed)}
                for algorithm in ("cql", "bcq"):
                    learnt[algorithm] = train_d3rlpy(algorithm, data, run.scenario, run.config,
                                                     steps=args.offline_steps, seed=seed)
                for name, policy in learnt.items():
                    value = evaluate_online(policy, run.scenario, run.config, users=users,
                                            seed=20_000 + seed).avg_reward_per_episode
                    row = grade(name, GreedyProbabilities(policy, n_items), "learnt")
                    row["truth"] = float(value)
                    offline.append(row)
            say(f"{log_name} log {seed}")
    return {"env": env_id, "label": run.scenario.label, "users": int(users.size), "n_items": int(n_items),
            "dqn_gradient_updates": int(updates.count),
            "max_steps": args.max_steps, "truth": truth, "logging_truth": logging_truth,
            "logging": list(logging), "estimates": estimates, "offline": offline, "reward_models": models,
            "seconds": time.perf_counter() - tic}


if __name__ == "__main__":
    main()
