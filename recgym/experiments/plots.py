"""Plots of runs: learning curves with seed bands."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or assumed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_learning_curve(
    curves: dict[str, list[list[dict]]],
    path: str | Path,
    title: str = "",
    metric: str = "avg_reward_per_step",
    reference: dict[str, float] | None = None,
) -> Path:
    """Plot ``metric`` over training steps, one line per label, a band of +/- one std over seeds.

    :param curves: label -> one curve per seed; a curve is a list of points ``{"step": s, metric: v}``.
    :param path: output PNG.
    :param title: figure title.
    :param metric: the key plotted on the y axis.
    :param reference: optional horizontal lines (e.g. baselines), label -> value.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for label, seeds in curves.items():
        seeds = [c for c in seeds if c]
        if not seeds:
            continue
        steps = sorted({p["step"] for c in seeds for p in c})
        # align seeds on a common grid (runs may evaluate at slightly different steps)
        values = np.array([np.interp(steps, [p["step"] for p in c], [p[metric] for p in c]) for c in seeds])
        mean, std = values.mean(axis=0), values.std(axis=0)
        (line,) = ax.plot(steps, mean, marker="o", markersize=3, label=f"{label} (n={len(seeds)})")
        if len(seeds) > 1:
            ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    for label, value in (reference or {}).items():
        ax.axhline(value, linestyle="--", linewidth=1, color="grey")
        ax.annotate(label, (ax.get_xlim()[0], value), fontsize=7, va="bottom", color="dimgrey")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
