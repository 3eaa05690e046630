"""Plots of runs: learning curves with seed bands; for grids, bars with error bars and heat maps.

Every figure of ``recgym compare`` is written as PNG and SVG (a paper takes the
vector one), each atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or assumed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

#: the formats of a grid's figures
FIGURE_FORMATS = ("png", "svg")


def _draw_curves(ax: Any, curves: dict[str, list[list[dict]]], metric: str) -> None:
    """One line per label (mean over seeds) and a band of +/- one std over seeds."""
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
    outside = len(curves) > 4  # many bands: a legend inside the axes would hide some of them
    fig, ax = plt.subplots(figsize=(9.5 if outside else 7, 4.2), dpi=120)
    _draw_curves(ax, curves, metric)
    for label, value in (reference or {}).items():
        ax.axhline(value, linestyle="--", linewidth=1, color="grey")
        ax.annotate(label, (ax.get_xlim()[0], value), fontsize=7, va="bottom", color="dimgrey")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if outside:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    from recgym.data.atomic import atomic_write

    # write, then rename: a kill mid-write leaves the previous plot, not half a PNG
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip(".") or "png"))
    plt.close(fig)
    return path


def save_figure(fig: Any, stem: str | Path, formats: Sequence[str] = FIGURE_FORMATS) -> list[Path]:
    """Write ``fig`` as ``stem.png`` and ``stem.svg``, each atomically, and close it."""
    from recgym.data.atomic import atomic_write

    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        atomic_write(path, lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt))
        paths.append(path)
    plt.close(fig)
    return paths


def plot_curve_panels(
    panels: dict[str, dict[str, list[list[dict]]]],
    stem: str | Path,
    title: str = "",
    metric: str = "avg_reward_per_step",
    reference: dict[str, float] | None = None,
) -> list[Path]:
    """Learning curves side by side, one panel per key (an agent), seed bands, baselines as dashed lines.

    :param panels: panel title -> (label -> one curve per seed).
    :param stem: output path without suffix (PNG and SVG are written).
    :param reference: horizontal lines drawn in every panel, label -> value.
    """
    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 4.4), dpi=120, sharey=True, squeeze=False)
    for ax, (name, curves) in zip(axes[0], panels.items()):
        _draw_curves(ax, curves, metric)
        for label, value in (reference or {}).items():
            ax.axhline(value, linestyle="--", linewidth=1, color="grey")
            ax.annotate(label, (0, value), xycoords=("axes fraction", "data"), fontsize=7, va="bottom",
                        color="dimgrey")
        ax.set_title(name)
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel(metric.replace("_", " "))
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, stem)


def plot_metric_bars(
    groups: dict[str, dict[str, tuple[float, float]]],
    stem: str | Path,
    title: str = "",
    ylabel: str = "",
) -> list[Path]:
    """Bars with error bars: one panel per group (an environment), one bar per label.

    :param groups: panel title -> (label -> (mean, half-width of the 95% interval)); labels
        ``agent / encoder`` are coloured by agent, other labels (baselines) grey.
    :param stem: output path without suffix (PNG and SVG are written).
    """
    n = max(1, len(groups))
    width = max(6.0, 0.45 * max((len(g) for g in groups.values()), default=1) + 2)
    fig, axes = plt.subplots(1, n, figsize=(width * n, 4.6), dpi=120, squeeze=False)
    for ax, (name, bars) in zip(axes[0], groups.items()):
        labels = list(bars)
        means = np.array([bars[k][0] for k in labels], dtype=float)
        errors = np.array([bars[k][1] for k in labels], dtype=float)
        x = np.arange(len(labels))
        # one colour per agent ("agent / encoder"); single-name bars (the baselines) in grey
        agents = list(dict.fromkeys(k.split(" / ")[0] for k in labels if " / " in k))
        colors = [f"C{agents.index(k.split(' / ')[0]) % 10}" if " / " in k else "grey" for k in labels]
        ax.bar(x, means, yerr=np.nan_to_num(errors), capsize=3, color=colors, alpha=0.8)
        ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
        ax.set_title(name)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, stem)


def plot_heatmap(
    values: np.ndarray,
    rows: Sequence[str],
    columns: Sequence[str],
    stem: str | Path,
    title: str = "",
    label: str = "",
    per_column: bool = False,
) -> list[Path]:
    """A heat map with the value in each square (NaN squares left blank), e.g. encoder x environment.

    :param values: ``(len(rows), len(columns))``.
    :param stem: output path without suffix (PNG and SVG are written).
    :param per_column: colour each column on its own scale (0 its lowest value, 1 its highest), for
        columns whose figures are not comparable (rewards of different environments); the squares
        still show the values.
    """
    values = np.asarray(values, dtype=float)
    shade = values
    if per_column:
        with np.errstate(invalid="ignore", divide="ignore"):
            low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
            shade = np.where(high > low, (values - low) / (high - low), 0.5)
        label = "within each column: 0 = lowest, 1 = highest"
    fig, ax = plt.subplots(figsize=(1.6 * len(columns) + 3, 0.45 * len(rows) + 1.8), dpi=120)
    image = ax.imshow(np.ma.masked_invalid(shade), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=20, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    finite = shade[np.isfinite(shade)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.3f}", ha="center", va="center", fontsize=7,
                        color="black" if shade[i, j] > middle else "white")
    fig.colorbar(image, ax=ax, label=label)
    ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, stem)
