"""A grid's tables and plots: ``results.csv``, ``summary.md`` and ``plots/``, from the cells' records.

Everything here reads only the records (``cells/<key>.json``), so the report can be
written again at any time (``recgym compare --report-only``), and a grid whose
run folders stayed on other machines (Ray without shared storage) still gets it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from recgym.data.atomic import atomic_write
from recgym.evaluation.intervals import paired_difference, student_t_interval
from recgym.experiments.compare.grid import CHEATING_BASELINES, GridConfig, env_slug

CSV_COLUMNS = ("env", "agent", "encoder", "baseline", "seed", "status", "protocol", "metric", "value", "steps",
               "gradient_updates", "train_seconds", "run", "note")
#: the grid's runs (start, wall time, workers, backend, cells run), appended by each `recgym compare` run
HISTORY_FILE = "history.json"
#: online figure the learning curves plot (what `recgym train` records at each evaluation)
CURVE_METRIC = "avg_reward_per_step"


def metric_value(record: dict[str, Any], metric: str) -> float:
    """``protocol/name`` of a finished cell's record (NaN when absent)."""
    protocol, _, name = metric.partition("/")
    value = (record.get("figures") or {}).get(protocol, {}).get(name)
    return float(value) if isinstance(value, (int, float)) and value is not None else float("nan")


def slug(metric: str) -> str:
    """A file-name form of a metric: ``offline/ndcg@10`` -> ``offline_ndcg10``."""
    return re.sub(r"[^A-Za-z0-9_]+", "", metric.replace("/", "_"))


def row_label(record: dict[str, Any]) -> str:
    """The table row of a record: its explicit row's label, else ``agent / encoder`` (or the baseline's name)."""
    if record.get("row") is not None:
        return str(record["row"])
    return record["agent"] if record["baseline"] else f"{record['agent']} / {record['encoder']}"


def _rows(grid: GridConfig, env: str | None = None) -> list[tuple[str, str, str | None, bool]]:
    """The table's rows in order, as (label, agent, encoder, baseline): each agent with each encoder, the explicit
    rows (those on ``env`` when given), then the baselines."""
    rows = [(f"{a} / {e.label}", a, e.label, False) for a in grid.agents for e in grid.encoders]
    rows += [(r.label, r.agent, None if r.encoder is None else r.encoder.label, r.encoder is None)
             for r in grid.rows if env is None or env in r.envs]
    return rows + [(b, b, None, True) for b in grid.baselines]


def collect(grid: GridConfig, records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[int, dict]]:
    """Finished records by (env, table row label), then by seed."""
    table: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for r in records:
        if r["status"] == "done":
            table[(r["env"], row_label(r))][int(r["seed"])] = r
    return table


# -- results.csv ----------------------------------------------------------------------------------------


def results_csv(grid: GridConfig, records: list[dict[str, Any]]) -> str:
    """One row per cell and metric (every figure of the online and offline protocols); failed and skipped
    cells get one row with the reason in ``note``."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in records:
        common = {"env": r["env"], "agent": r["agent"], "encoder": r["encoder"] or "", "baseline": r["baseline"],
                  "seed": r["seed"], "status": r["status"], "run": r["run"]}
        if r["status"] != "done":
            writer.writerow({**common, "note": r.get("reason") or r.get("error") or ""})
            continue
        extra = {"steps": r["steps"], "gradient_updates": r["gradient_updates"],
                 "train_seconds": f"{r['train_seconds']:.1f}"}
        for protocol, figures in r["figures"].items():
            for name, value in figures.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    writer.writerow({**common, **extra, "protocol": protocol, "metric": name, "value": value})
    return out.getvalue()


# -- summary.md -----------------------------------------------------------------------------------------


def _cell(values: list[float], digits: int = 4) -> str:
    """``mean ± std [low, high]`` over seeds (the 95% Student-t interval of the mean)."""
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if x.size == 0:
        return "–"
    mean, half = student_t_interval(x)
    std = x.std(ddof=1) if x.size > 1 else 0.0
    text = f"{mean:.{digits}f} ± {std:.{digits}f} [{mean - half:.{digits}f}, {mean + half:.{digits}f}]"
    return text + (f" (n={x.size})" if x.size < 2 else "")


def environment_table(grid: GridConfig, env: str, table: dict) -> list[str]:
    """Mean ± std [95% interval] per policy and metric; the best honest mean of each column in bold."""
    head = "| policy | " + " | ".join(grid.metrics) + " |"
    lines = [head, "|---" * (len(grid.metrics) + 1) + "|"]
    means: dict[str, list[float]] = {}
    agent_of: dict[str, str] = {}
    for label, agent, encoder, baseline in _rows(grid, env):
        seeds = table.get((env, label), {})
        agent_of[label] = agent
        means[label] = [float(np.nanmean([metric_value(r, m) for r in seeds.values()]))
                        if seeds else float("nan") for m in grid.metrics]
    best = []
    for j in range(len(grid.metrics)):
        # cheating baselines read the live simulator: a reference line, never the best of a column
        honest = [v[j] for label, v in means.items()
                  if agent_of[label] not in CHEATING_BASELINES and not math.isnan(v[j])]
        best.append(max(honest) if honest else float("nan"))
    for label, agent, encoder, baseline in _rows(grid, env):
        seeds = table.get((env, label), {})
        if not seeds:
            continue
        cells = []
        for j, metric in enumerate(grid.metrics):
            text = _cell([metric_value(r, metric) for r in seeds.values()])
            if agent not in CHEATING_BASELINES and means[label][j] == best[j]:
                text = f"**{text}**"
            cells.append(text)
        lines.append(f"| {label}{' (baseline)' if baseline else ''} | " + " | ".join(cells) + " |")
    # the baselines may hold the bold figures: name the best encoder of each agent too
    for agent in grid.agents:
        best_rows = []
        for j, metric in enumerate(grid.metrics):
            scored = [(means[f"{agent} / {e.label}"][j], e.label) for e in grid.encoders
                      if not math.isnan(means[f"{agent} / {e.label}"][j])]
            if scored:
                value, encoder = max(scored)
                best_rows.append(f"{metric} `{encoder}` ({value:.4f})")
        if best_rows:
            lines += ["", f"Best encoder with `{agent}`: " + "; ".join(best_rows) + "."]
    return lines


def paired_table(grid: GridConfig, env: str, table: dict) -> list[str]:
    """Each encoder minus the reference encoder, paired by seed: mean [95% t interval]; * = excludes 0."""
    lines = ["| agent / encoder | " + " | ".join(f"Δ {m}" for m in grid.metrics) + " | pairs |",
             "|---" * (len(grid.metrics) + 2) + "|"]
    for agent in grid.agents:
        reference = table.get((env, f"{agent} / {grid.reference}"), {})
        for choice in grid.encoders:
            if choice.label == grid.reference:
                continue
            seeds = table.get((env, f"{agent} / {choice.label}"), {})
            common = sorted(set(seeds) & set(reference))
            if not common:
                continue
            cells = []
            for metric in grid.metrics:
                mean, low, high, n = paired_difference([metric_value(seeds[s], metric) for s in common],
                                                       [metric_value(reference[s], metric) for s in common])
                if n == 0:
                    cells.append("–")
                    continue
                star = "*" if n > 1 and (low > 0 or high < 0) else ""
                cells.append(f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]{star}")
            lines.append(f"| {agent} / {choice.label} | " + " | ".join(cells) + f" | {len(common)} |")
    return lines


def _explicit_rows(grid: GridConfig) -> list[str]:
    """One line per explicit row: what it runs, and its settings beyond the grid's."""
    lines = []
    for row in grid.rows:
        what = row.agent if row.encoder is None else f"`{row.agent}` with `{row.encoder.label}`"
        extra = [f"{k} {dict(v)}" for k, v in (("agent_kwargs", row.agent_kwargs), ("env_kwargs", row.env_kwargs)) if v]
        extra += [f"{row.steps:,} steps"] if row.steps is not None else []
        where = "" if row.envs == grid.envs else " on " + ", ".join(f"`{e}`" for e in row.envs)
        lines.append(f"- Row `{row.label}`: {what}{where}" + (f" ({'; '.join(extra)})" if extra else "") + ".")
    return lines


def _budget(grid: GridConfig, records: list[dict[str, Any]]) -> list[str]:
    """Environment steps and gradient updates per cell, by agent (measured, from the records)."""
    lines = []
    for agent in dict.fromkeys([*grid.agents, *(r.agent for r in grid.rows if r.encoder is not None)]):
        done = [r for r in records if r["status"] == "done" and r["agent"] == agent and not r["baseline"]]
        if done:
            steps = np.mean([r["steps"] for r in done])
            updates = np.mean([r["gradient_updates"] for r in done])
            seconds = np.mean([r["train_seconds"] for r in done])
            lines.append(f"- `{agent}`: {steps:,.0f} environment steps and {updates:,.0f} gradient updates per cell "
                         f"(mean over {len(done)} cells), {seconds:.0f} s of training per cell.")
    return lines


def summary_markdown(grid: GridConfig, records: list[dict[str, Any]], plots: dict[str, list[Path]],
                     history: list[dict[str, Any]] | None = None) -> str:
    """The summary: settings and budget, per environment the table and the paired differences, plots, and
    the skipped and failed cells.

    :param history: the runs of the grid (``history.json``: start, seconds, workers, backend, cells run).
    """
    table = collect(grid, records)
    status = defaultdict(int)
    for r in records:
        status[r["status"]] += 1
    cell_seconds = sum(r.get("seconds", 0.0) for r in records if r["status"] == "done")
    lines = [
        f"# {grid.title}",
        "",
        "Written by `recgym compare` from the cells' records (rerun `recgym compare --config GRID --out DIR "
        "--report-only` to rewrite it).",
        "",
        f"- Encoders: {', '.join(f'`{e.label}`' + (f' (pretrained: {e.weights})' if e.weights else '') for e in grid.encoders)}; "
        f"reference `{grid.reference}`." if grid.encoders else "- Encoders: none beyond the explicit rows'.",
        f"- Environments: {', '.join(f'`{e}`' for e in grid.all_envs)}. "
        f"Agents: {', '.join(f'`{a}`' for a in grid.agents) or 'none beyond the explicit rows'}. "
        f"Seeds: {', '.join(map(str, grid.seeds))} (seed s seeds the agent, the evaluation and "
        + ("the 80/20 user split" if grid.split_seed == "seed" else f"nothing else; one user split, split_seed {grid.split_seed}")
        + "). Baselines: " + (", ".join(f"`{b}`" for b in grid.baselines) or "none") + ".",
        *_explicit_rows(grid),
        f"- Each cell is a `recgym train` run of {grid.steps:,} environment steps ({grid.n_envs} training users in "
        f"parallel), evaluated online on the held-out test users every {grid.eval_every:,} steps "
        f"({grid.eval_episodes} episodes) and at the end (one episode per test user), then offline (DRR's re-ranking "
        "of each test user's rated items), frozen." if "offline" in grid.protocols else
        f"- Each cell is a `recgym train` run of {grid.steps:,} environment steps, evaluated online on the test users.",
        *_budget(grid, records),
        f"- Cells: {status['done']} done, {status['failed']} failed, {status['skipped']} skipped"
        f" (of {len(grid.cells())}).",
    ]
    for run in history or []:
        lines.append(f"- A `recgym compare` run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(run['start']))}: "
                     f"{run['ran']} cells in {run['seconds'] / 60:.1f} min of wall time with "
                     f"{run['workers'] or 'all CPUs as'} worker(s), backend `{run['backend']}`"
                     + ("" if run.get("finished", True) else ", interrupted")
                     + (f", load average {run['load_average']:.1f} at its start" if run.get("load_average") else "")
                     + f" ({run['reused']} cells finished before).")
    lines.append(f"- The finished cells' own times add up to {cell_seconds / 60:.1f} min.")
    lines += [
        "",
        "Each figure is mean ± std over seeds, then the 95% Student-t interval of the mean in brackets. The best "
        "mean of each column is in bold; `oracle-greedy` (and `planner`) read the live simulator, so they are "
        "reference lines and never bold. Paired differences subtract the reference encoder's figure of the same "
        "agent, environment and seed; `*` marks an interval that excludes 0 (a paired t-test at 5%).",
        "",
    ]
    for env in grid.all_envs:
        lines += [f"## {env}", "", *environment_table(grid, env, table), ""]
        paired = paired_table(grid, env, table)
        if len(paired) > 2:
            lines += [f"Against the reference encoder `{grid.reference}` (paired by seed):", "", *paired, ""]
        for path in plots.get(env, []):
            lines += [f"![{path.stem}]({path.as_posix()})", ""]
    for path in plots.get("", []):
        lines += [f"![{path.stem}]({path.as_posix()})", ""]
    skipped = [r for r in records if r["status"] == "skipped"]
    failed = [r for r in records if r["status"] == "failed"]
    if skipped:
        lines += ["## Skipped cells", ""]
        seen: set[tuple[str, str]] = set()
        for r in skipped:  # one line per encoder and environment: the reason does not depend on agent or seed
            if (r["env"], r["encoder"]) not in seen:
                seen.add((r["env"], r["encoder"]))
                lines.append(f"- `{r['encoder']}` on `{r['env']}`: {r['reason']}")
        lines.append("")
    undefined = [r for r in records if r["status"] == "done" and r.get("protocol_errors")]
    if undefined:
        lines += ["## Protocols undefined for some cells", ""]
        lines += [f"- `{r['key']}`: {p}: {e}" for r in undefined for p, e in r["protocol_errors"].items()] + [""]
    if failed:
        lines += ["## Failed cells", ""] + [f"- `{r['key']}`: {r['error']}" for r in failed] + [""]
    return "\n".join(lines)


# -- plots ----------------------------------------------------------------------------------------------


def write_plots(grid: GridConfig, records: list[dict[str, Any]], folder: Path) -> dict[str, list[Path]]:
    """Learning curves per environment, bars per metric, the encoder x environment heat map of the main metric.

    :returns: environment (or ``""`` for grid-wide figures) -> the PNG files, relative to ``folder``'s parent.
    """
    from recgym.experiments.plots import plot_curve_panels, plot_heatmap, plot_metric_bars

    table = collect(grid, records)
    made: dict[str, list[Path]] = defaultdict(list)
    rel = lambda paths: paths[0].relative_to(folder.parent)  # noqa: E731  (the PNG, for the summary)
    for env in grid.all_envs:
        panels = {}
        for agent in grid.agents:
            curves = {e.label: [r["curve"] for r in table.get((env, f"{agent} / {e.label}"), {}).values()
                                if r.get("curve")] for e in grid.encoders}
            curves = {k: v for k, v in curves.items() if v}
            if curves:
                panels[agent] = curves
        # the explicit learning rows: one panel of their own
        curves = {row.label: [r["curve"] for r in table.get((env, row.label), {}).values() if r.get("curve")]
                  for row in grid.rows if row.encoder is not None and env in row.envs}
        curves = {k: v for k, v in curves.items() if v}
        if curves:
            panels["rows"] = curves
        reference = {}
        for name in [*grid.baselines, *(r.label for r in grid.rows if r.encoder is None and env in r.envs)]:
            seeds = table.get((env, name), {})
            if seeds:
                reference[name] = float(np.mean([metric_value(r, f"online/{CURVE_METRIC}") for r in seeds.values()]))
        if panels:
            made[env].append(rel(plot_curve_panels(panels, folder / f"curves_{env_slug(env)}",
                                                   title=f"{env}: online reward per step on the test users "
                                                   "(mean and ±1 std over seeds; dashed: baselines)",
                                                   metric=CURVE_METRIC, reference=reference)))
    for metric in grid.metrics:
        groups = {}
        for env in grid.all_envs:
            bars = {}
            for label, _, _, _ in _rows(grid, env):
                values = [metric_value(r, metric) for r in table.get((env, label), {}).values()]
                if values:
                    bars[label] = student_t_interval(values)
            if bars:
                groups[env_slug(env)] = bars
        if groups:
            made[""].append(rel(plot_metric_bars(groups, folder / f"bars_{slug(metric)}",
                                                 title=f"{metric}: mean over seeds, 95% interval", ylabel=metric)))
    rows = [f"{a} / {e.label}" for a in grid.agents for e in grid.encoders]
    values = np.full((len(rows), len(grid.envs)), np.nan)
    for i, (agent, choice) in enumerate((a, e) for a in grid.agents for e in grid.encoders):
        for j, env in enumerate(grid.envs):
            seeds = table.get((env, f"{agent} / {choice.label}"), {})
            if seeds:
                values[i, j] = np.nanmean([metric_value(r, grid.main_metric) for r in seeds.values()])
    if np.isfinite(values).any():
        made[""].append(rel(plot_heatmap(values, rows, [env_slug(e) for e in grid.envs],
                                         folder / f"heatmap_{slug(grid.main_metric)}",
                                         title=f"{grid.main_metric} (mean over seeds)", label=grid.main_metric,
                                         # environments' rewards are on different scales: colour each its own
                                         per_column=len(grid.envs) > 1)))
    return made


def read_history(out: Path) -> list[dict[str, Any]]:
    """The runs of the grid recorded in ``history.json`` (empty when there is none or it is unreadable)."""
    try:
        history = json.loads((out / HISTORY_FILE).read_text())
    except (OSError, ValueError):
        return []
    return history if isinstance(history, list) else []


def write_report(grid: GridConfig, out: str | Path, records: list[dict[str, Any]]) -> dict[str, Path]:
    """Write ``results.csv``, ``plots/`` and ``summary.md`` into ``out`` (each file atomically).

    :returns: the paths written (``csv``, ``summary``).
    """
    out = Path(out)
    csv_path, summary_path = out / "results.csv", out / "summary.md"
    atomic_write(csv_path, lambda tmp: tmp.write_text(results_csv(grid, records)))
    plots = write_plots(grid, records, out / "plots")
    text = summary_markdown(grid, records, plots, read_history(out))
    atomic_write(summary_path, lambda tmp: tmp.write_text(text + "\n"))
    return {"csv": csv_path, "summary": summary_path}
