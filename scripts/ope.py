"""Off-policy estimators and offline RL against the simulator's truth (issue #24's grid): writes docs/results/ope.md.

    OMP_NUM_THREADS=1 python scripts/ope.py            # the committed grid (see the doc's header for its settings)
    python scripts/ope.py --from-json docs/results/ope.json   # re-render the page from the saved numbers

Per environment: the targets (random, popularity, greedy-pmf, greedy-pmf-topics, and recgym's default DQN
trained on the training users for ``--dqn-steps`` environment steps, seed 0) have their true value on the
test users measured on-policy (``--truth-rollouts`` response seeds). Each logging policy (uniform,
softmax over greedy-pmf's predicted ratings at two temperatures, ε-greedy-pmf) is rolled over the same
test users ``--logs`` times (seeds 0..logs-1, :func:`recgym.evaluation.transitions.record_transitions`);
on each log the reward model is fitted and every target estimated by PDIS, WPDIS, DM and DR
(:mod:`recgym.evaluation.ope`). Then BC (recgym's), CQL and BCQ (d3rlpy's DiscreteCQL / DiscreteBCQ,
:mod:`recgym.offline.d3rlpy_adapter`) are trained on each log for ``--offline-steps`` gradient steps,
their true value measured online on the test users, and estimated from the same log. The grading
(:mod:`recgym.evaluation.ope_grid`) and the page are built from the saved rows (``ope.json``).
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
ESTIMATOR_NAMES = ("pdis", "wpdis", "dm", "dr")
TARGETS = ("random", "popularity", "greedy-pmf", "greedy-pmf-topics", "dqn")
LEARNERS = ("bc", "cql", "bcq")


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
    from recgym.data.atomic import atomic_write

    plot = args.out.with_name("ope_error_vs_kl.png")
    plot_error_against_distance(saved, plot)
    text = render_page(saved, plot.name)
    atomic_write(args.out, lambda tmp: tmp.write_text(text))
    print(f"wrote {args.out} and {plot}", flush=True)


def write_json(path: Path, saved: dict[str, Any]) -> None:
    from recgym.data.atomic import atomic_write

    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(saved, indent=1)))


def run_env(env_id: str, args: argparse.Namespace) -> dict[str, Any]:
    """One environment's grid: truths, estimates on every log, offline-RL rows (plain numbers)."""
    import agents
    from agents.baselines import GreedyPMFAgent, PopularityAgent, TopicAwareGreedyAgent
    from recgym.evaluation.online import evaluate_online
    from recgym.evaluation.ope import RatingRewardModel, decision_arrays, estimate, per_decision_weights
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
    dqn.learn(args.dqn_steps)
    say(f"dqn trained ({args.dqn_steps} steps)")
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
                for e in ESTIMATOR_NAMES:
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
            "max_steps": args.max_steps, "truth": truth, "logging_truth": logging_truth,
            "logging": list(logging), "estimates": estimates, "offline": offline, "reward_models": models,
            "seconds": time.perf_counter() - tic}


# ---------------------------------------------------------------- the page, from the saved rows


def cells(env: dict[str, Any]) -> list[dict[str, Any]]:
    """One graded cell per (logging policy, target): each estimator's error summary over the logs."""
    from recgym.evaluation.ope import OPEEstimate
    from recgym.evaluation.ope_grid import error_summary

    out = []
    for log_name in env["logging"]:
        for target in TARGETS:
            rows = [r for r in env["estimates"] if r["logging"] == log_name and r["target"] == target]
            truth = env["truth"][target][0]
            cell = {"logging": log_name, "target": target, "truth": truth,
                    "kl": float(np.mean([r["kl"] for r in rows])),
                    "full_weight_share": float(np.mean([r["full_weight_share"] for r in rows])),
                    "first_step_model_value": float(np.mean([r.get("first_step_model_value", np.nan)
                                                             for r in rows]))}
            for e in ESTIMATOR_NAMES:
                estimates = [OPEEstimate(e, r[e]["value"], r[e]["low"], r[e]["high"], env["users"], r[e]["ess"],
                                         float("nan")) for r in rows]
                cell[e] = error_summary(estimates, truth)
                cell[e]["sd"] = float(np.std([x.value for x in estimates]))
            out.append(cell)
    return out


def pooled_rmse(graded: list[dict[str, Any]], estimator: str) -> float:
    """The root of the mean squared error over every graded cell (each cell's MSE over its logs)."""
    return float(np.sqrt(np.mean([c[estimator]["rmse"] ** 2 for c in graded])))


def plot_error_against_distance(saved: dict[str, Any], path: Path) -> None:
    """Each (logging policy, target) cell's RMSE per estimator against the target's KL from the logging policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recgym.data.atomic import atomic_write

    envs = saved["envs"]
    fig, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 4.2), squeeze=False)
    markers = {"pdis": "o", "wpdis": "s", "dm": "^", "dr": "D"}
    for ax, env in zip(axes[0], envs):
        graded = cells(env)
        for e in ESTIMATOR_NAMES:
            ax.scatter([c["kl"] for c in graded], [c[e]["rmse"] for c in graded], marker=markers[e], label=e,
                       alpha=0.75)
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlabel("KL(target ‖ logging) per decision, nats")
        ax.set_ylabel("RMSE over logs (episode return)")
        ax.set_title(env["env"], fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def render_page(saved: dict[str, Any], plot_name: str) -> str:
    """docs/results/ope.md from the saved rows."""
    st = saved["settings"]
    envs = saved["envs"]
    lines = [
        "# Off-policy estimates and offline RL against the simulator's truth",
        "",
        f"Written by `OMP_NUM_THREADS=1 {saved['command'].strip()}` in {saved['seconds'] / 60:.0f} min "
        f"({saved['machine']}); the numbers are kept in [ope.json](ope.json) "
        "(`python scripts/ope.py --from-json docs/results/ope.json` re-renders this page). Estimators and "
        "intervals: [docs/offline.md](../offline.md).",
        "",
        "**Setting.** Per environment, the test users "
        "(" + ", ".join(f"{e['users']} on {e['env']}" for e in envs) + "), one episode"
        f" each of at most "
        f"{st['max_steps']} steps (`max_steps={st['max_steps']}`: short horizons keep the grid to "
        "minutes on one thread, and keep per-decision weights from vanishing entirely); the value is the "
        "expected undiscounted episode return, `avg_reward_per_episode` of the online protocol.",
        "",
        f"* **Logging policies** ({st['logs']} logs each, seeds 0-{st['logs'] - 1}, one episode per test "
        f"user, i.e. about {st['logs'] * envs[0]['users'] * st['max_steps']} environment steps per logging "
        f"policy): a softmax over greedy-pmf's predicted ratings at T = {st['temperatures'][0]:g} "
        f"(near greedy) and T = {st['temperatures'][1]:g}, ε-greedy-pmf with ε = {st['epsilon']:g} (greedy-pmf, "
        "else a uniform item), and uniform over the available items.",
        "* **Targets**: random (uniform), popularity, greedy-pmf, greedy-pmf-topics, and recgym's default "
        f"`dqn` (default encoder and hyperparameters) trained once per environment on the training users for "
        f"{st['dqn_steps']} environment steps, seed 0.",
        f"* **Truth**: each target's mean on-policy return on the same test users over {st['truth_rollouts']} "
        "response seeds (± its standard error).",
        f"* **Estimates**: per log, the reward model (`RatingRewardModel` over greedy-pmf's scores) is fitted "
        f"on that log; PDIS, WPDIS, DM and DR with 95% bootstrap intervals ({st['samples']} resamples over "
        f"episodes). Bias, RMSE and coverage are over the {st['logs']} logs.",
        "* **Distance**: KL = the mean over logged decisions of KL(target ‖ logging) over the available items "
        "(`recgym.evaluation.ope_grid.policy_divergence`; for a deterministic target, the mean of "
        "−log μ(target's item)); *full-weight share* = the share of logged episodes whose per-decision weight "
        "is still non-zero at the last step (the logged episode followed the target to the end).",
        f"* **Offline RL**: on each log, BC (recgym's `train_offline('bc')`), CQL and BCQ (d3rlpy 2.7's "
        f"DiscreteCQL and DiscreteBCQ via `recgym.offline.d3rlpy_adapter`), each {st['offline_steps']} "
        "gradient steps (batch 64, seed = the log's seed); their truth is one online rollout on the test "
        "users (seed 20000 + log seed); their estimates come from the same log they were trained on.",
        "",
        f"![RMSE against KL]({plot_name})",
        "",
    ]
    summary_rows = []
    for env in envs:
        graded = cells(env)
        lines += [f"## {env['env']} ({env['users']} test users, {env['n_items']} items; {env['label']})", "",
                  "True values (± standard error over response seeds):", "",
                  "| policy | kind | true value |", "|---|---|---|"]
        for name in TARGETS:
            v, se = env["truth"][name]
            lines.append(f"| {name} | target | {v:.3f} ± {se:.3f} |")
        for name in env["logging"]:
            v, se = env["logging_truth"][name]
            logged = np.mean([m["logged_return"] for m in env["reward_models"] if m["logging"] == name])
            lines.append(f"| {name} | logging (mean logged return {logged:.3f}) | {v:.3f} ± {se:.3f} |")
        lines += ["", "Reward model fit on each log (RMSE of q̂(s, a) against the logged reward, mean over "
                  "logs, beside the logged rewards' standard deviation):", "",
                  "| logging policy | reward-model RMSE | reward SD |", "|---|---|---|"]
        for name in env["logging"]:
            ms = [m for m in env["reward_models"] if m["logging"] == name]
            lines.append(f"| {name} | {np.mean([m['reward_model_rmse'] for m in ms]):.3f} | "
                         f"{np.mean([m['reward_std'] for m in ms]):.3f} |")
        lines.append("")
        for log_name in env["logging"]:
            lines += [f"### Logged by {log_name}", "",
                      "| target | truth | KL | full-weight share | " + " | ".join(
                          f"{e} bias / RMSE / cov." for e in ESTIMATOR_NAMES) + " | lowest RMSE |",
                      "|---|---|---|---|" + "---|" * (len(ESTIMATOR_NAMES) + 1)]
            for c in (c for c in graded if c["logging"] == log_name):
                best = min(ESTIMATOR_NAMES, key=lambda e: c[e]["rmse"])
                lines.append(f"| {c['target']} | {c['truth']:.3f} | {c['kl']:.2f} | {c['full_weight_share']:.2f} | "
                             + " | ".join(f"{c[e]['bias']:+.3f} / {c[e]['rmse']:.3f} / {c[e]['coverage']:.0%}"
                                          for e in ESTIMATOR_NAMES) + f" | {best} |")
            lines.append("")
        pooled = {e: pooled_rmse(graded, e) for e in ESTIMATOR_NAMES}
        dr_cells = sum(c["dr"]["rmse"] <= min(c["pdis"]["rmse"], c["dm"]["rmse"]) for c in graded)
        summary_rows.append((env["env"], pooled, dr_cells, len(graded)))
        lines += ["### Error against the distance between logging and target policy", "",
                  "RMSE pooled (root mean squared error) over the cells in each KL band:", "",
                  "| KL band (nats) | cells | " + " | ".join(ESTIMATOR_NAMES) + " |",
                  "|---|---|" + "---|" * len(ESTIMATOR_NAMES)]
        for low, high in ((0.0, 0.5), (0.5, 3.0), (3.0, 6.0), (6.0, np.inf)):
            band = [c for c in graded if low <= c["kl"] < high]
            if band:
                lines.append(f"| [{low:g}, {high:g}) | {len(band)} | "
                             + " | ".join(f"{pooled_rmse(band, e):.3f}" for e in ESTIMATOR_NAMES) + " |")
        lines += ["", f"Pooled over all {len(graded)} cells: "
                  + ", ".join(f"{e} {pooled[e]:.3f}" for e in ESTIMATOR_NAMES)
                  + f". DR's RMSE is at most both PDIS's and DM's in {dr_cells} of {len(graded)} cells.", ""]
        lines += dr_diagnosis(env, graded)
        lines += offline_section(env, st)
    lines += ["## Summary", "", "| environment | PDIS RMSE | WPDIS RMSE | DM RMSE | DR RMSE | DR ≤ PDIS and DM "
              "(pooled) | cells where DR ≤ PDIS and DM |", "|---|---|---|---|---|---|---|"]
    for env_id, pooled, dr_cells, n in summary_rows:
        ok = pooled["dr"] <= min(pooled["pdis"], pooled["dm"])
        lines.append(f"| {env_id} | {pooled['pdis']:.3f} | {pooled['wpdis']:.3f} | {pooled['dm']:.3f} | "
                     f"{pooled['dr']:.3f} | {'yes' if ok else 'no'} | {dr_cells} of {n} |")
    lines.append("")
    return "\n".join(lines)


def dr_diagnosis(env: dict[str, Any], graded: list[dict[str, Any]]) -> list[str]:
    """Where DR's RMSE exceeds PDIS's or DM's: its error split into bias² and variance, beside the weights' reach."""
    losing = [c for c in graded if c["dr"]["rmse"] > min(c["pdis"]["rmse"], c["dm"]["rmse"])]
    if not losing:
        return ["DR's RMSE is at most PDIS's and DM's in every cell.", ""]
    lines = ["Where DR's RMSE exceeds PDIS's or DM's, its mean squared error split into squared bias and "
             "variance over the logs, and the share of logged episodes that follow the target to the end:", "",
             "| logging | target | DR bias² | DR variance | DM RMSE | PDIS RMSE | full-weight share | KL |",
             "|---|---|---|---|---|---|---|---|"]
    for c in losing:
        lines.append(f"| {c['logging']} | {c['target']} | {c['dr']['bias'] ** 2:.3f} | {c['dr']['sd'] ** 2:.3f} | "
                     f"{c['dm']['rmse']:.3f} | {c['pdis']['rmse']:.3f} | {c['full_weight_share']:.2f} | "
                     f"{c['kl']:.2f} |")
    bias_led = [c for c in losing if c["dr"]["bias"] ** 2 > c["dr"]["sd"] ** 2]
    unreached = [c for c in losing if c["full_weight_share"] < 0.05 and c["truth"] > 0]
    lines += ["", f"Of these {len(losing)} cells, DR's error is mostly bias (bias² > variance over the logs) in "
              f"{len(bias_led)}, and in {len(unreached)} fewer than 5% of the logged episodes follow the target to "
              "the last step."]
    if unreached:
        dr_ratio = np.mean([c["dr"]["mean"] / c["truth"] for c in unreached])
        dm_ratio = np.mean([c["dm"]["mean"] / c["truth"] for c in unreached])
        first_ratio = np.mean([c["first_step_model_value"] / c["truth"] for c in unreached])
        lines += [f"In those {len(unreached)} cells (positive truth) DR's mean estimate is on average "
                  f"{dr_ratio:.2f} of the truth, DM's {dm_ratio:.2f}, and the reward model's value of the first "
                  f"state alone (the mean of v̂(s_0) over the logged episodes) {first_ratio:.2f}; one step of "
                  f"{env['max_steps']} is {1 / env['max_steps']:.2f}. The reason: recgym's DR uses the one-step reward model q̂ "
                  "(the myopic DM's), not a model of the return-to-go. Where a logged episode leaves the "
                  "target's item at its first step its weight is zero from then on, and DR keeps only "
                  "v̂(s_0), the model's value of that **first** step; the later steps' value, which DM adds "
                  "from the logged states, is lost. DR keeps the matched prefix and one step of model value and "
                  "falls well below the truth, as the ratio shows, while DM does not. It stays unbiased over all possible logs (a matched episode is "
                  "reweighted by up to 1/μ^T), but with few users and deterministic targets over "
                  f"{env['n_items']} items, the logs here almost never hold a matched one."]
    lines.append("")
    return lines


def offline_section(env: dict[str, Any], st: dict[str, Any]) -> list[str]:
    """The offline-RL rows: each learner's true value per logging policy, and whether the estimators rank them."""
    from recgym.evaluation.ope_grid import ranking_agreement

    if not env["offline"]:
        return []
    lines = ["### Offline RL trained on each log", "",
             f"BC (recgym), CQL and BCQ (d3rlpy), {st['offline_steps']} gradient steps each; true value (mean ± SD "
             "over the logs) and each estimator's mean estimate from the same log. A learnt policy is "
             "deterministic, so its importance weights are 1/μ per matched step: from the uniform logger up to "
             f"{env['n_items']}^k after k matched steps, which is why PDIS and DR run into the hundreds or "
             "thousands there.", "",
             "| logging | learner | true value | " + " | ".join(ESTIMATOR_NAMES) + " |",
             "|---|---|---|" + "---|" * len(ESTIMATOR_NAMES)]
    agreement = {e: [] for e in ESTIMATOR_NAMES}
    for log_name in env["logging"]:
        for learner in LEARNERS:
            rows = [r for r in env["offline"] if r["logging"] == log_name and r["target"] == learner]
            truths = [r["truth"] for r in rows]
            lines.append(f"| {log_name} | {learner} | {np.mean(truths):.3f} ± {np.std(truths):.3f} | "
                         + " | ".join(f"{np.mean([r[e]['value'] for r in rows]):.3f}" for e in ESTIMATOR_NAMES)
                         + " |")
        for seed in sorted({r["seed"] for r in env["offline"]}):
            rows = {r["target"]: r for r in env["offline"] if r["logging"] == log_name and r["seed"] == seed}
            truth = {k: r["truth"] for k, r in rows.items()}
            for e in ESTIMATOR_NAMES:
                agreement[e].append(ranking_agreement(truth, {k: r[e]["value"] for k, r in rows.items()}))
    n = len(agreement["dr"])
    lines += ["", f"Does each estimator rank the three learnt policies of a log as their true values do? Over the "
              f"{n} logs: mean Spearman correlation (logs where either side ties are left out) and the logs where "
              "the estimator's best is the truly best.", "",
              "| estimator | mean Spearman | top-1 agreement |", "|---|---|---|"]
    for e in ESTIMATOR_NAMES:
        rhos = [a["spearman"] for a in agreement[e] if np.isfinite(a["spearman"])]
        lines.append(f"| {e} | {np.mean(rhos) if rhos else float('nan'):+.2f} ({len(rhos)} logs) | "
                     f"{sum(a['top1'] for a in agreement[e])} of {n} |")
    lines.append("")
    return lines


if __name__ == "__main__":
    main()
