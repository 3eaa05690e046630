"""The result documents written from compare grids' records (recgym.experiments.reports), on synthetic records:
each must write the document its result script wrote before, in the same format."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from recgym.experiments.compare import load_grid
from recgym.experiments.reports import long_term

REPO = Path(__file__).resolve().parents[1]
TABLE_ROW = re.compile(r"\| (?P<name>[^|]+) \| (?P<seeds>\d+) \| (?P<reward>[\d.]+) ± [\d.]+ \| (?P<length>[\d.]+) ± "
                       r"[\d.]+ \| (?P<left>[\d.]+) ± [\d.]+% \| (?P<steps>[\d,]+|-) \| (?P<updates>[\d,]+|-) \| "
                       r"(?P<distinct>\d+) \|")


def masked(lines: list[str]) -> list[str]:
    """The lines with every number replaced: the format, not the figures."""
    return [re.sub(r"\d[\d,.]*", "#", line) for line in lines]


def section(text: str, start: str, end: str) -> list[str]:
    lines = text.splitlines()
    first = lines.index(start)
    last = next(i for i in range(first, len(lines)) if lines[i].startswith(end))
    return lines[first:last + 1]


def long_term_records(grid, env: str, doc_lines: list[str]) -> list[dict]:
    """Five seeds per table row of the document, spread around its means (so the means are the document's)."""
    records = []
    rows = {r.label: r for r in grid.rows}
    for line in doc_lines:
        match = TABLE_ROW.fullmatch(line)
        if not match:
            continue
        name = match["name"]
        row = rows.get(name)
        for seed, spread in enumerate(np.linspace(-0.02, 0.02, int(match["seeds"]))):
            key = f"{env}__{name}__seed-{seed}"
            record = {"key": key, "env": env, "seed": seed, "status": "done", "run": f"runs/{seed}",
                      "agent": row.agent if row else name, "encoder": row.encoder.label if row else None,
                      "baseline": row is None, "row": name if row else None, "seconds": 60.0,
                      "figures": {"online": {"avg_reward_per_episode": float(match["reward"]) * (1 + spread),
                                             "avg_episode_length": float(match["length"]) * (1 + spread),
                                             "left_fraction": float(match["left"]) / 100,
                                             "distinct_first_items": int(match["distinct"])}}}
            if row is not None:
                record.update(steps=int(match["steps"].replace(",", "")),
                              gradient_updates=int(match["updates"].replace(",", "")),
                              curve=[{"step": 100, "avg_reward_per_episode": 1.0}])
                if name == long_term.DRR_ROW:
                    record["figures"]["actor"] = {"saturated_fraction": 0.06 + spread}
            records.append(record)
    return records


def test_long_term_report_writes_the_documents_format_from_the_grids_records():
    doc = (REPO / "docs" / "results" / "long_term.md").read_text()
    grid = load_grid(REPO / "examples" / "long_term.yaml", check_environments=False)
    env = "recgym/ML100K-Behavior-v1"
    expected = section(doc, f"## `{env}`", "Run time")
    records = long_term_records(grid, env, expected)
    assert len(records) == 14 * 5  # every row of the document's table, five seeds each
    text = long_term.long_term_markdown(grid, records, "python scripts/long_term.py --seeds 5 --steps 30000",
                                        {env: "long_term_ML100K-Behavior-v1.png"})
    got = section(text, f"## `{env}`", "Run time")
    assert masked(got) == masked(expected)
    # the means are the document's, so the verdict's ratios are too
    verdict = [line for line in expected if line.startswith(("Best RL agent", "It meets", "0.8 ×"))]
    assert verdict and all(line in got for line in verdict)
    # the header and the closing section word for word; environments without records say so
    assert text.split("## `")[0] == doc.split("## `")[0]
    assert text.endswith(doc[doc.index("## Where this differs"):])
    assert "## `recgym/Jester4-Behavior-v1`\n\nNot run yet." in text


def test_long_term_verdict_follows_the_grids_rows():
    grid = load_grid(REPO / "examples" / "long_term.yaml", check_environments=False)
    reward = {"greedy-pmf": 10.0, "planner": 20.0, "DQN (drr-ave)": 12.0, "DQN (prior head)": 17.0}
    records = {name: [{"reward": value + d} for d in (-0.1, 0.0, 0.1)] for name, value in reward.items()}
    lines = long_term.verdict(grid, records)
    # the prior head (handed greedy-pmf's rating by its agent_kwargs) is best; the best agent without it is named too
    assert lines[0].startswith("Best RL agent: DQN (prior head), 1.70 × greedy-pmf's reward per episode (above it")
    assert "from the state (no greedy-pmf rating in its Q-function): DQN (drr-ave), 1.20 × greedy-pmf" in lines[0]
    assert lines[2] == "It meets the 1.10 × greedy-pmf goal (non-overlapping intervals), and reaches 0.8 × the planner."
    assert long_term.verdict(grid, {"planner": records["planner"]}) == []  # no greedy-pmf: nothing to say


def drr_records(grid, doc: str, fit_heading: str) -> list[dict]:
    """Five seeds per row of each dataset table under ``fit_heading`` in the document, around its means."""
    from recgym.experiments.reports import drr

    lines = doc.split(fit_heading, 1)[1].split("\n## ", 1)[0].splitlines()
    records, dataset = [], None
    learning = set(drr.rl_rows(grid))
    for line in lines:
        if line.startswith("### "):
            dataset = line[4:]
        updates = dict(re.findall(r"([\w-]+) ([\d,]+)(?:,|\.$)", line.split(": ", 1)[1])) \
            if line.startswith("RL rows:") else {}
        for r in records:
            if r["env"] == drr.ENV_IDS[dataset] and r["row"] in updates:
                r["gradient_updates"] = int(updates[r["row"]].replace(",", ""))
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != 11 or cells[0] in ("Model", "---"):
            continue
        name = cells[0]
        env = drr.ENV_IDS[dataset]
        for seed, spread in enumerate(np.linspace(-0.02, 0.02, 5)):
            offline = {}
            for key, text in zip(drr.OFFLINE_KEYS, (cells[1], cells[3], cells[4], cells[6])):
                mean, low, high = (float(x) for x in re.fullmatch(r"([\d.]+) ± [\d.]+ \[([\d.]+), ([\d.]+)\]",
                                                                    text).groups())
                offline.update({key: mean * (1 + spread), f"{key}_ci95": [low, high]})
            path = {"path": "/data/jester/jester5k-recommenderlab/jester5k-dataset1-layout.csv"} \
                if dataset == "jester" else {}
            records.append({
                "key": f"{env}__{name}__{seed}", "env": env, "seed": seed, "status": "done", "row": name,
                "agent": name, "encoder": "x" if name in learning else None, "baseline": name not in learning,
                "run": f"runs/{seed}", "seconds": 30.0, "config": {"env_kwargs": path}, "gradient_updates": 0,
                "figures": {"offline": offline,
                            "online": {"avg_reward_per_step": float(cells[8].split(" ± ")[0]) * (1 + spread),
                                       "distinct_first_items": int(cells[10])}},
                "curve": [{"step": 1000, "avg_reward_per_step": 0.5}]})
    return records


def test_drr_report_writes_the_documents_format_from_the_grids_records(tmp_path):
    from recgym.experiments.reports import drr

    doc = (REPO / "docs" / "results" / "drr.md").read_text()
    grids = []
    for name, fit in (("reproduce_drr.yaml", "train"), ("reproduce_drr_all_data.yaml", "all")):
        grid = load_grid(REPO / "examples" / name, check_environments=False)
        assert drr.scenario_of(grid) == fit
        grids.append((grid, drr_records(grid, doc, f"## {drr.SCENARIOS[fit]}")))
    assert [len(records) for _, records in grids] == [2 * 11 * 5] * 2  # two datasets, eleven rows, five seeds
    text = drr.drr_markdown(grids, ".venv/bin/python scripts/reproduce_drr.py --seeds 5 --steps 10000")
    assert masked(text.splitlines()) == masked(doc.splitlines())
    # the means are the document's, so are the sentences computed from them
    reading = [line for line in doc.splitlines() if line.startswith(("- Best RL row", "- Myopic greedy",
                                                                     "- Offline P@20 ordering", "- The RL rows"))]
    # per scenario: three lines on ML-100K, two on Jester (no paper figures to order against); the closing one
    assert len(reading) == 2 * (3 + 2) + 1 and all(line in text.splitlines() for line in reading)
    # the file, and the leak-free ML-100K learning curves beside it
    written = drr.write_drr_report(grids, tmp_path / "drr.md", ".venv/bin/python scripts/reproduce_drr.py --seeds 5 "
                                   "--steps 10000")
    assert written.read_text() == text and (tmp_path / "drr_ml100k.png").is_file()


def test_long_term_report_from_a_tiny_grid_run_measures_drrs_actor(tmp_path):
    from recgym.experiments.compare import make_grid, run_grid
    from recgym.experiments.compare.runner import load_records
    from tests.test_compare import SMALL_ENV

    grid = make_grid(dict(
        title="tiny long-term", envs=["recgym/Synthetic-PMF-v0"], seeds=[0], split_seed=0, env_kwargs=SMALL_ENV,
        protocols=["online"], metrics=["online/avg_reward_per_episode"], baselines=["greedy-pmf", "planner"],
        steps=200, n_envs=8, eval_every=100, eval_episodes=16, checkpoint_every=100,
        rows=[{"label": long_term.DRR_ROW, "agent": "drr", "encoder": "drr-ave", "agent_kwargs": {"action_penalty": 1.0}}]))
    run_grid(grid, tmp_path / "out", display=False)
    records = load_records(tmp_path / "out", grid)
    assert [r["status"] for r in records] == ["done"] * 3
    doc = long_term.write_long_term_report(grid, records, tmp_path / "docs" / "long_term.md", "cmd")
    text = doc.read_text()
    saturated = re.search(r"DRR's actor: \d+ distinct first items across the test users \(oracle-greedy 0, "
                          r"greedy-pmf \d+\); ([\d.]+) ± [\d.]+% of its action coordinates saturated", text)
    assert saturated and 0 <= float(saturated[1]) <= 100
    assert "| DRR (drr-ave) | 1 | " in text and (tmp_path / "docs" / "long_term_Synthetic-PMF-v0.png").is_file()
    # the cell measured its actor in memory; the checkpoint it saved, reloaded and measured again, agrees
    import agents
    from recgym.evaluation.online import actor_saturation
    from recgym.experiments.evaluate import run_config
    from recgym.experiments.run_dir import RunDir
    from recgym.experiments.setup import RunSetup

    drr_record = next(r for r in records if r["row"] == long_term.DRR_ROW)
    in_memory = drr_record["figures"]["actor"]["saturated_fraction"]
    assert in_memory == pytest.approx(float(saturated[1]) / 100, abs=5e-4)
    folder = RunDir(tmp_path / "out" / drr_record["run"])
    config = run_config(folder)
    setup = RunSetup.from_config(config)
    reloaded = agents.load(folder.latest_checkpoint() / "model.zip", setup.training_env(1), device="cpu")
    assert actor_saturation(reloaded, setup.scenario, setup.config, seed=config.seed) == pytest.approx(in_memory, abs=1e-12)
    assert all("actor" not in r["figures"] for r in records if r is not drr_record)  # baselines pick items
