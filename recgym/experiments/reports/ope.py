"""docs/results/ope.md from the rows ``scripts/ope.py`` saves (``ope.json``): issue #24's grid of off-policy
estimators and offline learners graded against the simulator's truth.

This module only reads the saved rows and writes the page and its plot (RMSE against the distance between the
logging and the target policy); ``scripts/ope.py`` runs the grid. The page's prose is built from the numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recgym.data.atomic import atomic_write
from recgym.evaluation.ope import ESTIMATORS, OPEEstimate
from recgym.evaluation.ope_grid import error_summary, ranking_agreement

#: the estimators' columns, in the order of recgym.evaluation.ope.ESTIMATORS
ESTIMATOR_NAMES = ESTIMATORS
#: the targets' rows
TARGETS = ("random", "popularity", "greedy-pmf", "greedy-pmf-topics", "dqn")
#: the offline learners' rows
LEARNERS = ("bc", "cql", "bcq")
#: the plot's file name, beside the page
PLOT_NAME = "ope_error_vs_kl.png"


def write_ope_report(saved: dict[str, Any], out: Path) -> Path:
    """Write the page ``out`` and its plot (:data:`PLOT_NAME`, beside it) from the saved rows; returns the plot."""
    plot = out.with_name(PLOT_NAME)
    plot_error_against_distance(saved, plot)
    text = render_page(saved, plot.name)
    atomic_write(out, lambda tmp: tmp.write_text(text))
    return plot


def cells(env: dict[str, Any]) -> list[dict[str, Any]]:
    """One graded cell per (logging policy, target): each estimator's error summary over the logs."""

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

    envs = saved["envs"]
    fig, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 4.2), squeeze=False)
    markers = {"pdis": "o", "wpdis": "s", "dm": "^", "fqe": "v", "dr": "D", "dr-myopic": "x"}
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
        f"{st['dqn_steps']} environment steps, seed 0"
        + (" (" + ", ".join(f"{e['dqn_gradient_updates']:,} gradient updates on {e['env']}" for e in envs
                             if "dqn_gradient_updates" in e) + ")" if any("dqn_gradient_updates" in e for e in envs)
           else "") + ".",
        f"* **Truth**: each target's mean on-policy return on the same test users over {st['truth_rollouts']} "
        "response seeds (± its standard error).",
        f"* **Estimates**: per log, the reward model (`RatingRewardModel` over greedy-pmf's scores) is fitted "
        "on that log; PDIS, WPDIS, DM (the one-step reward model summed over the logged states), FQE (fitted Q "
        "evaluation of the target by backward induction over the steps, in the reward model's features: a "
        "model of the return-to-go), DR (per-decision doubly robust with FQE's Q̂_t) and dr-myopic (the same "
        f"with the one-step model), with 95% bootstrap intervals ({st['samples']} resamples over episodes; FQE "
        f"refitted on each). Bias, RMSE and coverage are over the {st['logs']} logs.",
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
        summary_rows.append((env["env"], pooled, dr_cells, len(graded), graded))
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
    lines += ["## Summary", "", "Pooled RMSE over each environment's cells (the issue's acceptance: DR's RMSE at most "
              "IPS's (PDIS) and DM's on at least one environment):", "",
              "| environment | " + " | ".join(f"{e} RMSE" for e in ESTIMATOR_NAMES)
              + " | DR ≤ PDIS and DM (pooled) | cells where DR ≤ PDIS and DM |",
              "|---|" + "---|" * (len(ESTIMATOR_NAMES) + 2)]
    for env_id, pooled, dr_cells, n, _ in summary_rows:
        ok = pooled["dr"] <= min(pooled["pdis"], pooled["dm"])
        lines.append(f"| {env_id} | " + " | ".join(f"{pooled[e]:.3f}" for e in ESTIMATOR_NAMES)
                     + f" | {'yes' if ok else 'no'} | {dr_cells} of {n} |")
    lines += ["", acceptance_sentence(summary_rows), ""]
    return "\n".join(lines)


def acceptance_sentence(summary_rows: list[tuple[str, dict[str, float], int, int, list[dict[str, Any]]]]) -> str:
    """Where DR's pooled RMSE is at most PDIS's and DM's, and where not: by how much, and which cells make it."""
    met = [row[0] for row in summary_rows if row[1]["dr"] <= min(row[1]["pdis"], row[1]["dm"])]
    parts = []
    for env_id, pooled, _, _, graded in summary_rows:
        beaten = [e for e in ("pdis", "dm") if pooled[e] < pooled["dr"]]
        if not beaten:
            parts.append(f"on {env_id} DR's {pooled['dr']:.3f} is at most PDIS's {pooled['pdis']:.3f} and DM's "
                         f"{pooled['dm']:.3f}")
            continue
        text = (f"on {env_id} DR's {pooled['dr']:.3f} exceeds "
                + " and ".join(f"{e.upper()}'s {pooled[e]:.3f}" for e in beaten))
        if "dm" in beaten:
            # the cells whose squared error puts DR furthest above DM
            excess = sorted(graded, key=lambda c: c["dm"]["rmse"] ** 2 - c["dr"]["rmse"] ** 2)[:2]
            top = sum(c["dr"]["rmse"] ** 2 - c["dm"]["rmse"] ** 2 for c in excess)
            total = sum(c["dr"]["rmse"] ** 2 - c["dm"]["rmse"] ** 2 for c in graded)
            text += (f"; DR's squared error exceeds DM's by {total:.2f} summed over the {len(graded)} cells and by "
                     f"{top:.2f} in two of them, "
                     + " and ".join(f"{c['logging']} → {c['target']} (DR RMSE {c['dr']['rmse']:.3f}: SD over the "
                                    f"logs {c['dr']['sd']:.3f}, bias {c['dr']['bias']:+.3f}; DM {c['dm']['rmse']:.3f}; "
                                    f"full-weight share {c['full_weight_share']:.2f})" for c in excess))
        parts.append(text)
    verdict = (f"Met on {len(met)} of {len(summary_rows)} environments" if met
               else "Not met on any environment")
    return (f"{verdict}: " + "; ".join(parts) + ". Where DR's SD over the logs exceeds its bias, a few logged "
            "episodes that follow the deterministic target on a prefix carry a weight of 1/μ per matched step "
            "(the number of available items per step from the uniform logger), multiplying FQE's residual "
            "r − Q̂; where the bias "
            "dominates, it is FQE's (each environment's DR section). With the one-step model (dr-myopic) instead "
            "of FQE, DR's pooled RMSE would be " + ", ".join(f"{row[1]['dr-myopic']:.3f}" for row in summary_rows)
            + ".")


def dr_diagnosis(env: dict[str, Any], graded: list[dict[str, Any]]) -> list[str]:
    """Where DR's RMSE exceeds PDIS's or DM's: its error split into bias² and variance, beside FQE and the
    one-step DR, and the weights' reach."""
    losing = [c for c in graded if c["dr"]["rmse"] > min(c["pdis"]["rmse"], c["dm"]["rmse"])]
    if not losing:
        return ["DR's RMSE is at most PDIS's and DM's in every cell.", ""]
    lines = ["Where DR's RMSE exceeds PDIS's or DM's, its mean squared error split into squared bias and "
             "variance over the logs, beside FQE's (DR's own model) and the one-step DR's RMSE, and the share of "
             "logged episodes that follow the target to the end:", "",
             "| logging | target | DR bias² | DR variance | FQE RMSE | dr-myopic RMSE | DM RMSE | PDIS RMSE | "
             "full-weight share | KL |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c in losing:
        lines.append(f"| {c['logging']} | {c['target']} | {c['dr']['bias'] ** 2:.3f} | {c['dr']['sd'] ** 2:.3f} | "
                     f"{c['fqe']['rmse']:.3f} | {c['dr-myopic']['rmse']:.3f} | {c['dm']['rmse']:.3f} | "
                     f"{c['pdis']['rmse']:.3f} | {c['full_weight_share']:.2f} | {c['kl']:.2f} |")
    bias_led = [c for c in losing if c["dr"]["bias"] ** 2 > c["dr"]["sd"] ** 2]
    unreached = [c for c in losing if c["full_weight_share"] < 0.05 and c["truth"] > 0]
    reached = [c for c in losing if c["full_weight_share"] >= 0.05]
    lines += ["", f"Of these {len(losing)} cells, DR's error is mostly bias (bias² > variance over the logs) in "
              f"{len(bias_led)}; in {len(unreached)} (positive truth) fewer than 5% of the logged episodes follow "
              f"the target to the last step, in {len(reached)} at least 5% do."]
    if unreached:
        ratio = {e: np.mean([c[e]["mean"] / c["truth"] for c in unreached]) for e in ("dr", "fqe", "dm", "dr-myopic")}
        first_ratio = np.mean([c["first_step_model_value"] / c["truth"] for c in unreached])
        gap = np.mean([abs(c["dr"]["mean"] - c["fqe"]["mean"]) / c["truth"] for c in unreached])
        fqe_worse = sum(c["fqe"]["rmse"] > c["dm"]["rmse"] for c in unreached)
        lines += [f"In those {len(unreached)} cells the mean estimate is on average {ratio['dr']:.2f} of the truth "
                  f"for DR, {ratio['fqe']:.2f} for FQE, {ratio['dm']:.2f} for DM and {ratio['dr-myopic']:.2f} for "
                  f"the one-step DR (whose first-step model value v̂(s_0) alone is {first_ratio:.2f}; one step of "
                  f"{env['max_steps']} is {1 / env['max_steps']:.2f}). Where a logged episode leaves the target's "
                  "item its weight is zero from then on and DR keeps the model's value of the state it reached: "
                  "with FQE that is V̂_t, a return-to-go, where the one-step DR keeps one step's worth. DR's mean "
                  f"estimate differs from FQE's by {gap:.2f} of the truth on average there, so its error in these "
                  f"cells is mostly FQE's. FQE's RMSE exceeds DM's in {fqe_worse} of them: its feature is the "
                  "logged item's score alone, so the part of the return-to-go that belongs to the user (a user "
                  "whose logged item scores high is one whose later items score high too) is credited to the "
                  "item's score and carried to the target's items, and boredom, topics and leaving are not in the "
                  "score at all; DM sums a one-step model at each logged state instead."]
    if reached:
        mean_of = (lambda e, key: float(np.mean([c[e][key] for c in reached])))
        lines += [f"In the {len(reached)} losing cells where at least 5% of the logged episodes follow the target to "
                  f"the end, DR's RMSE is on average {mean_of('dr', 'rmse'):.3f} against PDIS's "
                  f"{mean_of('pdis', 'rmse'):.3f}, FQE's {mean_of('fqe', 'rmse'):.3f} and DM's "
                  f"{mean_of('dm', 'rmse'):.3f}, with an effective sample size of {mean_of('dr', 'ess'):.1f} "
                  f"episodes of {env['users']}: there the importance weights carry DR's correction "
                  "w_t (r_t − Q̂_t), and its error is theirs."]
    lines.append("")
    return lines


def offline_section(env: dict[str, Any], st: dict[str, Any]) -> list[str]:
    """The offline-RL rows: each learner's true value per logging policy, and whether the estimators rank them."""
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
