"""`recgym compare`: grid validation, skipped and failing cells, resume after a kill, the report, Ray."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from recgym.cli import main as cli_main
from recgym.evaluation.intervals import paired_difference, student_t_interval
from recgym.experiments.compare import load_grid, make_grid, run_grid
from recgym.experiments.compare.report import slug
from recgym.experiments.config import ConfigError

REPO = Path(__file__).resolve().parents[1]
SMALL_ENV = {"dataset_kwargs": {"n_users": 120, "n_items": 150, "density": 0.15, "seed": 0}, "max_steps": 10}


def tiny_grid(**overrides):
    """A grid of cells that each train in about a second."""
    values = dict(encoders=["mean", "drr-ave"], envs=["recgym/Synthetic-PMF-v0"], agents=["dqn"], seeds=[0, 1],
                  baselines=["random"], protocols=["online"], metrics=["online/avg_reward_per_step"], steps=200,
                  n_envs=8, eval_every=100, eval_episodes=16, checkpoint_every=100, env_kwargs=SMALL_ENV,
                  agent_kwargs={"dqn": {"learning_starts": 50, "buffer_size": 2_000}})
    values.update(overrides)
    return values


# -- the grid ---------------------------------------------------------------------------------------------


def test_grid_lists_every_bad_name_at_once():
    with pytest.raises(ConfigError) as err:
        make_grid(tiny_grid(encoders=["mean", "nosuch"], envs=["recgym/Nope-v0", "CartPole-v1"],
                            agents=["dqn", "popularity", "zzz"], baselines=["random", "foo"],
                            metrics=["online/avg_reward_per_step", "offline/prec@10"], reference="drr-ave"))
    message = str(err.value)
    for bad in ("'nosuch'", "'recgym/Nope-v0'", "'CartPole-v1'", "'popularity' (a baseline", "'zzz'", "'foo'",
                "offline/prec@10", "reference 'drr-ave'"):
        assert bad in message, bad


def test_grid_checks_every_cells_run_settings_before_training():
    with pytest.raises(ConfigError, match="batch_size=0"):
        make_grid(tiny_grid(agent_kwargs={"dqn": {"batch_size": 0}}))
    with pytest.raises(ConfigError, match="agent_kwargs names 'drr'"):
        make_grid(tiny_grid(agent_kwargs={"drr": {}}))


@pytest.mark.parametrize("key,value", [("envs", ["recgym/Synthetic-PMF-v0", "recgym/Synthetic-PMF-v0"]),
                                       ("agents", ["dqn", "dqn"]), ("baselines", ["random", "popularity", "random"])])
def test_grid_refuses_a_repeated_environment_agent_or_baseline(key, value):
    # two cells with one run folder: two workers would train into it at once
    with pytest.raises(ConfigError, match=rf"{key} repeat: \[.*listed more than once"):
        make_grid(tiny_grid(**{key: value}))


@pytest.mark.parametrize("key,value,expected", [
    ("baselines", "random", ("random",)), ("protocols", "online", ("online",)),
    ("metrics", "online/avg_reward_per_step", ("online/avg_reward_per_step",)), ("envs", "recgym/Synthetic-PMF-v0",
                                                                                ("recgym/Synthetic-PMF-v0",)),
    ("agents", "dqn", ("dqn",)), ("seeds", 3, (3,))])
def test_a_single_name_where_a_list_is_expected_is_a_list_of_one(key, value, expected):
    grid = make_grid(tiny_grid(**{key: value}))
    assert getattr(grid, key) == expected  # never split into characters ('r', 'a', 'n', ...)


def test_empty_baselines_and_a_bad_list_setting():
    assert make_grid(tiny_grid(baselines=[])).baselines == ()
    with pytest.raises(ConfigError, match=r"metrics: must be a list, got 5.0"):
        make_grid(tiny_grid(metrics=5.0))


@pytest.mark.parametrize("env_kwargs,message", [
    ({**SMALL_ENV, "bogus": 1}, r"unknown environment keyword\(s\) \['bogus'\]"),
    ({**SMALL_ENV, "users": [1, 2]}, "may not set users"),
    ({**SMALL_ENV, "slate_size": 5000}, "smaller slate_size"),
    ({**SMALL_ENV, "max_steps": 0}, "max_steps must be a positive integer"),
    ({**SMALL_ENV, "split_seed": 3}, "use the grid's own split_seed"),
    ([1, 2], r"env_kwargs must map environment settings to values.*got \[1, 2\]"),
])
def test_grid_checks_the_environment_settings_before_training(env_kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_grid(tiny_grid(env_kwargs=env_kwargs))


def test_grid_checks_seeds_and_the_data_before_training(tmp_path):
    with pytest.raises(ConfigError, match=r"seeds must be integers in 0\.\.4294967295"):
        make_grid(tiny_grid(seeds=[0, 2**32]))
    with pytest.raises(ConfigError, match=r"data_dir \S*nowhere is not a folder"):
        make_grid(tiny_grid(data_dir=str(tmp_path / "nowhere")))


def test_cli_check_refuses_bad_environment_settings_and_writes_nothing(tmp_path, capsys):
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(yaml.safe_dump(tiny_grid(env_kwargs={**SMALL_ENV, "bogus": 1})))
    assert cli_main(["compare", "--config", str(grid_file), "--out", str(tmp_path / "x"), "--check"]) == 2
    err = capsys.readouterr().err
    assert "recgym: error:" in err and "bogus" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_cells_cover_the_grid_with_their_own_run_folders():
    grid = make_grid(tiny_grid(encoders=["mean", "drr-ave", "sasrec"], agents=["dqn", "drr"], seeds=[0, 1, 2]))
    cells = grid.cells()
    learning = [c for c in cells if not c.baseline]
    assert len(learning) == 3 * 2 * 3 and len(cells) - len(learning) == 3  # one baseline per env and seed
    assert len({c.run_path for c in cells}) == len(cells) and len({c.key for c in cells}) == len(cells)
    cell = next(c for c in learning if (c.agent, c.encoder_label, c.seed) == ("drr", "sasrec", 2))
    assert (cell.config.agent, cell.config.encoder, cell.config.seed) == ("drr", "sasrec", 2)
    assert cell.config.env_kwargs["split_seed"] == 2  # seed s has its own user split by default
    assert make_grid(tiny_grid(split_seed=0)).cells()[-1].config.env_kwargs["split_seed"] == 0


def pretrained_mean(folder: Path, split_seed: int) -> Path:
    """A weights folder as `recgym pretrain` writes it (untrained: only its description matters here)."""
    import gymnasium as gym

    import state_encoders
    from state_encoders.weights import save_pretrained

    env = gym.make("recgym/Synthetic-PMF-v0", **SMALL_ENV)
    encoder = state_encoders.make("mean", env.observation_space, embedding_dim=8)
    save_pretrained(encoder, {"embedding_dim": 8}, folder,
                    extra={"dataset": "synthetic", "split_seed": split_seed, "history_length": 5})
    return folder


def test_pretrained_encoder_runs_on_its_own_split_and_is_skipped_on_others(tmp_path):
    weights = pretrained_mean(tmp_path / "pre-mean", split_seed=0)
    grid = make_grid(tiny_grid(encoders=["mean", {"weights": str(weights)}], baselines=[]))
    outcome = run_grid(grid, tmp_path / "grid", display=False)
    status = {(r["encoder"], r["seed"]): r for r in outcome.records}
    assert status[("pre-mean", 0)]["status"] == "done"  # named by its weights folder
    assert status[("pre-mean", 0)]["config"]["encoder_weights"] == str(weights)
    skipped = status[("pre-mean", 1)]
    assert skipped["status"] == "skipped" and "split_seed 0" in skipped["reason"]
    summary = (tmp_path / "grid" / "summary.md").read_text()
    assert "## Skipped cells" in summary and "`pre-mean` on `recgym/Synthetic-PMF-v0`: weights" in summary


def test_content_encoder_is_skipped_on_a_log_without_item_content(monkeypatch, synthetic_log):
    import dataclasses

    from recgym.experiments.compare import grid as grid_module

    bare = dataclasses.replace(synthetic_log, item_features=None)
    monkeypatch.setattr(grid_module, "environment_log", lambda env, kwargs: bare)
    cells = make_grid(tiny_grid(encoders=["mean", "fdsa"], seeds=[0], baselines=[])).cells()
    reasons = {c.encoder_label: c.skip_reason for c in cells}
    assert reasons["mean"] is None and "needs item content features" in reasons["fdsa"]


# -- running, failing, resuming -----------------------------------------------------------------------------


def test_failing_cell_is_reported_and_the_rest_go_on(tmp_path):
    out = tmp_path / "grid"
    grid = make_grid(tiny_grid(seeds=[0], baselines=[]))
    # a file of the user's where a cell's run folder goes: recgym refuses to overwrite it (and never deletes it)
    blocked = out / "runs" / "Synthetic-PMF-v0" / "dqn" / "mean" / "seed-0"
    blocked.mkdir(parents=True)
    (blocked / "notes.txt").write_text("mine")
    (out / ".recgym-compare").write_text("{}")
    outcome = run_grid(grid, out, display=False)
    status = {r["encoder"]: r for r in outcome.records}
    assert status["mean"]["status"] == "failed" and "not a recgym run folder" in status["mean"]["error"]
    assert status["drr-ave"]["status"] == "done"
    assert (blocked / "notes.txt").read_text() == "mine"
    assert "## Failed cells" in (out / "summary.md").read_text()


def test_output_folder_of_someone_else_is_refused(tmp_path):
    (tmp_path / "mine.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not created by recgym compare"):
        run_grid(make_grid(tiny_grid()), tmp_path, display=False)
    assert (tmp_path / "mine.txt").exists()


def test_killed_grid_reruns_only_the_missing_cells(tmp_path):
    out = tmp_path / "grid"
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(yaml.safe_dump(tiny_grid(seeds=[0, 1, 2])))
    cmd = [sys.executable, "-m", "recgym.cli", "compare", "--config", str(grid_file), "--out", str(out),
           "--no-display"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    cells = out / "cells"
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            done = [p for p in cells.glob("*.json") if not p.name.endswith(".progress.json")] if cells.is_dir() else []
            if len(done) >= 3:
                break
            if proc.poll() is not None:
                pytest.fail(f"the grid exited early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        else:
            pytest.fail("no finished cell within the time limit")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # a hard kill, midway
        proc.wait()
    finished = {p.stem: p.stat().st_mtime_ns for p in cells.glob("*.json") if not p.name.endswith(".progress.json")}
    grid = load_grid(grid_file)
    assert 3 <= len(finished) < len(grid.cells())
    outcome = run_grid(grid, out, display=False)
    assert sorted(outcome.reused) == sorted(finished)
    assert sorted(outcome.ran) == sorted(c.key for c in grid.cells() if c.key not in finished)
    assert outcome.count("done") == len(grid.cells())
    # the finished cells' records were not touched
    assert {k: (cells / f"{k}.json").stat().st_mtime_ns for k in finished} == finished
    again = run_grid(grid, out, display=False)
    assert again.ran == [] and len(again.reused) == len(grid.cells())


def test_rerun_with_other_settings_is_refused_before_training(tmp_path):
    out = tmp_path / "grid"
    run_grid(make_grid(tiny_grid(seeds=[0], encoders=["mean"], baselines=[])), out, display=False)
    with pytest.raises(ValueError, match="finished with other settings.*steps"):
        run_grid(make_grid(tiny_grid(seeds=[0], encoders=["mean"], baselines=[], steps=300)), out, display=False)


def test_check_counts_finished_cells_and_report_only_names_a_corrupt_record(tmp_path, capsys):
    out = tmp_path / "grid"
    values = tiny_grid(seeds=[0], encoders=["mean"])
    run_grid(make_grid(values), out, display=False)  # 2 cells: random and dqn / mean, seed 0
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(yaml.safe_dump({**values, "seeds": [0, 1]}))
    assert cli_main(["compare", "--config", str(grid_file), "--out", str(out), "--check"]) == 0
    assert "grid OK: 4 cells (2 to run, 2 finished before, 0 skipped)" in capsys.readouterr().out
    record = out / "cells" / "Synthetic-PMF-v0__dqn__mean__seed-0.json"
    record.write_text('{"status": "done", ')  # cut short
    assert cli_main(["compare", "--out", str(out), "--report-only"]) == 0
    assert f"left out of the report: {record} is not a readable cell record" in capsys.readouterr().err


def test_two_workers_and_the_report(tmp_path, monkeypatch):
    import recgym.experiments.plots as plots

    drawn = {}  # what the report hands the plotting functions
    for name in ("plot_metric_bars", "plot_heatmap"):
        real = getattr(plots, name)
        monkeypatch.setattr(plots, name, lambda *a, _real=real, _name=name, **k: drawn.setdefault(_name, []).append(a) or _real(*a, **k))
    out = tmp_path / "grid"
    grid = make_grid(tiny_grid(protocols=["online", "offline"], metrics=["online/avg_reward_per_step",
                                                                          "offline/precision@10"]))
    outcome = run_grid(grid, out, workers=2, display=False)
    assert outcome.count("done") == len(grid.cells()) == 6
    rows = list(csv.DictReader((out / "results.csv").open()))
    # one row per cell and metric, both protocols
    assert {r["protocol"] for r in rows} == {"online", "offline"}
    assert len({(r["agent"], r["encoder"], r["seed"]) for r in rows}) == 6
    assert sum(r["metric"] == "avg_reward_per_step" for r in rows) == 6
    # results.csv holds each cell's own figures: the online one its run folder's results.json recorded
    for record in outcome.records:
        mine = {(r["protocol"], r["metric"]): float(r["value"]) for r in rows if r["run"] == record["run"]}
        trained = json.loads((out / record["run"] / "results.json").read_text())
        assert mine[("online", "avg_reward_per_step")] == pytest.approx(trained["online"]["avg_reward_per_step"])
        assert mine[("offline", "precision@10")] == pytest.approx(record["figures"]["offline"]["precision@10"])
    # per seed, from results.csv: policy -> metric -> {seed: value}
    values: dict[str, dict[str, dict[int, float]]] = {}
    for r in rows:
        policy = f"{r['agent']} (baseline)" if r["baseline"] == "True" else f"{r['agent']} / {r['encoder']}"
        values.setdefault(policy, {}).setdefault(f"{r['protocol']}/{r['metric']}", {})[int(r["seed"])] = float(r["value"])
    assert set(values) == {"dqn / mean", "dqn / drr-ave", "random (baseline)"}

    def cell(xs):  # mean ± std [95% Student-t interval], as docs/compare.md describes the table
        mean, half = student_t_interval(xs)
        return f"{mean:.4f} ± {np.std(xs, ddof=1):.4f} [{mean - half:.4f}, {mean + half:.4f}]"

    summary = (out / "summary.md").read_text()
    lines = {}  # the environment table's row of each policy (the paired table comes after it)
    for line in summary.splitlines():
        if line.startswith("| "):
            lines.setdefault(line.split(" | ")[0][2:], line)
    for policy, metrics in values.items():
        expected = []
        for metric in grid.metrics:
            xs = [metrics[metric][s] for s in (0, 1)]
            best = max(np.mean(list(v[metric].values())) for v in values.values())
            expected.append(f"**{cell(xs)}**" if np.mean(xs) == best else cell(xs))
        assert lines[policy] == f"| {policy} | " + " | ".join(expected) + " |", policy
    assert summary.count("**") == 2 * len(grid.metrics)  # one bold figure per column
    # the paired table: drr-ave minus the reference encoder `mean`, seed by seed
    assert "Against the reference encoder `mean`" in summary
    paired = []
    for metric in grid.metrics:
        mean, low, high, n = paired_difference([values["dqn / drr-ave"][metric][s] for s in (0, 1)],
                                               [values["dqn / mean"][metric][s] for s in (0, 1)])
        assert n == 2
        paired.append(f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]" + ("*" if low > 0 or high < 0 else ""))
    assert "| dqn / drr-ave | " + " | ".join(paired) + " | 2 |" in summary.splitlines()
    # the bars are the same means and intervals, the heat map the same means
    bars = {args[1].name: args[0]["Synthetic-PMF-v0"] for args in drawn["plot_metric_bars"]}
    for metric in grid.metrics:
        for policy, metrics in values.items():
            label = policy.removesuffix(" (baseline)")
            np.testing.assert_allclose(bars[f"bars_{slug(metric)}"][label],
                                       student_t_interval([metrics[metric][s] for s in (0, 1)]))
    (heat, rows_, columns, *_), = drawn["plot_heatmap"]
    assert list(rows_) == ["dqn / mean", "dqn / drr-ave"] and list(columns) == ["Synthetic-PMF-v0"]
    np.testing.assert_allclose(heat[:, 0], [np.mean(list(values[p]["online/avg_reward_per_step"].values()))
                                            for p in rows_])
    for stem in ("curves_Synthetic-PMF-v0", "bars_online_avg_reward_per_step", "bars_offline_precision10",
                 "heatmap_online_avg_reward_per_step"):
        for suffix in (".png", ".svg"):
            assert (out / "plots" / f"{stem}{suffix}").stat().st_size > 1000, stem
    assert list((out / "logs").glob("worker-*.log"))  # what the worker processes printed


def test_a_killed_worker_fails_only_its_own_cell(tmp_path, monkeypatch):
    from recgym.experiments.compare import runner
    from tests.helpers import cell_whose_seed_1_worker_is_killed

    # the workers run this stand-in (it travels to them by name): the seed-1 cell's worker is killed with -9
    monkeypatch.setattr(runner, "execute_cell", cell_whose_seed_1_worker_is_killed)
    grid = make_grid(tiny_grid(encoders=["mean"], baselines=[], seeds=[0, 1, 2]))
    outcome = run_grid(grid, tmp_path / "grid", workers=2, display=False, report=False)
    status = {r["seed"]: r["status"] for r in outcome.records}
    assert status == {0: "done", 1: "failed", 2: "done"}  # a fresh worker ran the cell after the killed one
    failed = next(r for r in outcome.records if r["seed"] == 1)
    assert "worker process died" in failed["error"]


def test_cli_compare_from_flags(tmp_path, capsys):
    args = ["compare", "--encoders", "mean", "nope", "--envs", "recgym/Synthetic-PMF-v0", "--agents", "dqn",
            "--out", str(tmp_path / "x"), "--check"]
    assert cli_main(args) == 2
    assert "unknown encoder 'nope'" in capsys.readouterr().err
    args[3] = "sasrec"
    assert cli_main(args) == 0
    assert "grid OK: 6 cells (6 to run, 0 finished before, 0 skipped)" in capsys.readouterr().out  # 2 encoders + 4 baselines
    assert not (tmp_path / "x").exists()  # --check writes nothing


def test_ray_backend_without_ray_says_how_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    args = ["compare", "--encoders", "mean", "--envs", "recgym/Synthetic-PMF-v0", "--agents", "dqn",
            "--out", str(tmp_path / "x"), "--backend", "ray"]
    assert cli_main(args) == 2
    assert "pip install 'recgym[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_two_cell_grid_on_a_local_ray_instance(tmp_path):
    pytest.importorskip("ray")
    grid = make_grid(tiny_grid(seeds=[0], baselines=[]))
    outcome = run_grid(grid, tmp_path / "grid", workers=2, backend="ray", display=False)
    assert outcome.count("done") == 2 and len(outcome.ran) == 2
    for record in outcome.records:
        assert (tmp_path / "grid" / record["run"] / "results.json").is_file()  # the same folder layout
    assert (tmp_path / "grid" / "summary.md").is_file()


# -- statistics ---------------------------------------------------------------------------------------------


def test_student_t_interval_matches_hand_computed_value():
    mean, half = student_t_interval([1.0, 2.0, 3.0])
    # std (ddof 1) = 1, t(0.975, 2) = 4.302653 (tables): half-width 4.302653 / sqrt(3)
    assert mean == 2.0 and half == pytest.approx(4.302653 / np.sqrt(3), abs=1e-6)
    assert student_t_interval([5.0]) == (5.0, 0.0)


def test_t_quantile_is_exact_past_the_old_table():
    from recgym.evaluation.intervals import t_quantile_975

    # printed tables: t(0.975) = 12.706 at 1 dof, 2.021 at 40, 2.000 at 60 (not the normal's 1.96)
    assert t_quantile_975(1) == pytest.approx(12.7062, abs=1e-4)
    assert t_quantile_975(40) == pytest.approx(2.0211, abs=1e-4)
    assert t_quantile_975(60) == pytest.approx(2.0003, abs=1e-4)
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_quantile_975(0)


def test_paired_difference_removes_the_seed_effect():
    reference = [0.1, 0.5, 0.9]  # seeds differ a lot
    better = [0.2, 0.61, 0.99]  # but each is about 0.1 higher
    mean, low, high, n = paired_difference(better, reference)
    assert n == 3 and mean == pytest.approx(0.1, abs=1e-9) and low > 0  # significant paired...
    _, unpaired_half = student_t_interval(better)
    assert unpaired_half > mean  # ...though the seeds' spread alone would hide it


def test_live_display_counts_cells_and_lists_each_finished_one(tmp_path):
    import io

    stream = io.StringIO()  # not a terminal: status lines, no redrawing
    grid = make_grid(tiny_grid(encoders=["mean"], seeds=[0]))
    run_grid(grid, tmp_path / "grid", stream=stream)
    text = stream.getvalue()
    assert "recgym compare: 2 cells (0 finished before, 0 skipped)" in text
    assert "done    dqn / mean on Synthetic-PMF-v0 seed 0:" in text and "done    random on" in text
    assert text.rstrip().splitlines()[-1].startswith("[2/2 done, 0 running, 0 failed, 0 skipped, 0 waiting;")


# -- the live display -------------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _display_run(stream, tmp_path):
    from recgym.experiments.compare.display import GridDisplay

    cells = make_grid(tiny_grid(seeds=[0], baselines=[])).cells()
    with GridDisplay(cells, tmp_path, done_before=0, skipped=0, stream=stream) as display:
        display.started(cells[0])
        display.started(cells[1])
        display.finished(cells[0], {"status": "done", "seconds": 3.0,
                                    "figures": {"online": {"avg_reward_per_step": 0.5}}})
        display.finished(cells[1], {"status": "failed", "error": "ValueError: [boom]"})
    return cells, stream.getvalue()


def test_grid_display_prints_each_cell_and_the_final_count_in_a_log(tmp_path):
    cells, text = _display_run(io.StringIO(), tmp_path)
    assert "\x1b[" not in text  # a log file gets plain lines, no cursor movement
    assert "recgym compare: 2 cells (0 finished before, 0 skipped)" in text
    assert "done    dqn" in text and ": 0.5000 reward/step (3 s)" in text
    assert "FAILED  " in text and "ValueError: [boom]" in text  # brackets printed as they are, not as markup
    assert text.rstrip().splitlines()[-1].startswith("[1/2 done, 0 running, 1 failed, 0 skipped, 0 waiting;")


def test_grid_display_on_a_terminal_redraws_in_place_and_keeps_the_cells_lines(tmp_path):
    cells, text = _display_run(_Terminal(), tmp_path)
    assert "\x1b[" in text  # rich's live block: cursor movement on a terminal
    assert "ValueError: [boom]" in text and "0.5000 reward/step" in text
    assert "[1/2 done, 0 running, 1 failed" in text


# -- explicit rows ----------------------------------------------------------------------------------------


def test_rows_run_beside_the_cross_product_with_their_own_settings_and_folders():
    grid = make_grid(tiny_grid(rows=[
        {"label": "DQN (lr 1e-2)", "agent": "dqn", "encoder": "mean", "agent_kwargs": {"learning_rate": 0.01},
         "env_kwargs": {"max_steps": 5}, "steps": 100},
        {"agent": "popularity"}]))
    cells = grid.cells()
    assert len(cells) == 2 * (1 + 2 + 2)  # per seed: the baseline, the cross product's two, the two rows
    assert len({c.key for c in cells}) == len(cells) and len({c.run_path for c in cells}) == len(cells)
    row = next(c for c in cells if c.row == "DQN (lr 1e-2)" and c.seed == 1)
    assert row.key == "Synthetic-PMF-v0__row__DQN-lr-1e-2__seed-1" and row.label == "DQN (lr 1e-2)"
    assert row.run_path.as_posix() == "runs/Synthetic-PMF-v0/rows/DQN-lr-1e-2/seed-1"
    # the row's settings over the grid's; the grid's own cells keep the grid's
    assert row.config.agent_kwargs == {"learning_starts": 50, "buffer_size": 2_000, "learning_rate": 0.01}
    assert (row.config.env_kwargs["max_steps"], row.config.steps, row.config.env_kwargs["split_seed"]) == (5, 100, 1)
    plain = next(c for c in cells if (c.agent, c.encoder_label, c.row, c.seed) == ("dqn", "mean", None, 1))
    assert (plain.config.env_kwargs["max_steps"], plain.config.steps) == (10, 200)
    baseline = next(c for c in cells if c.row == "popularity")
    assert baseline.baseline and baseline.encoder_label is None and baseline.label == "popularity"
    # a grid of rows alone (no encoders, no agents) is a grid
    alone = make_grid(tiny_grid(encoders=None, agents=None, baselines=[], rows=[{"agent": "dqn", "encoder": "mean"}]))
    assert [c.label for c in alone.cells()] == ["dqn / mean"] * 2 and alone.reference is None


@pytest.mark.parametrize("rows,message", [
    ([{"agent": "dqn", "encoder": "mean", "agent_kwarg": {}}], r"rows\[0\]: unknown keys \['agent_kwarg'\].*agent_kwargs"),
    ([{"agent": "dqn"}], r"rows\[0\]: agent 'dqn' learns from an encoder's state: give `encoder`"),
    ([{"agent": "random", "encoder": "mean"}], r"rows\[0\]: 'random' is a baseline.*leave `encoder` out"),
    ([{"agent": "dqn", "encoder": "mean"}], r"row 'dqn / mean' repeats the cross product"),
    ([{"agent": "random"}], r"row 'random' repeats the baselines"),
    ([{"agent": "dqn", "encoder": "sasrec"}, {"agent": "dqn", "encoder": "sasrec", "agent_kwargs": {"gamma": 0.5}}],
     r"row 'dqn / sasrec' repeats another row"),
    ([{"label": "a b", "agent": "popularity"}, {"label": "a-b", "agent": "greedy-pmf"}], r"share the folder name 'a-b'"),
    ([{"agent": "zzz"}], r"unknown agent 'zzz'"),
    ([{"agent": "dqn", "encoder": "nosuch"}], r"unknown encoder 'nosuch'"),
    ([{"agent": "popularity", "envs": ["recgym/Nope-v0"]}], r"unknown environment 'recgym/Nope-v0'"),
    ([{"agent": "popularity", "env_kwargs": {"split_seed": 1}}], r"rows\[0\]: env_kwargs sets split_seed"),
    ([{"agent": "popularity", "steps": 0}], r"rows\[0\]: steps must be a positive integer"),
    ([{"label": "DQN", "agent": "dqn", "encoder": "mean", "agent_kwargs": {"batch_size": 0}}],
     r"row 'DQN': .*batch_size=0"),
    (["dqn"], r"rows\[0\]: give a mapping with `agent`"),
])
def test_bad_rows_are_refused_before_training(rows, message):
    with pytest.raises(ConfigError, match=message):
        make_grid(tiny_grid(rows=rows))


def test_per_env_kwargs_reach_only_their_environments_cells():
    grid = make_grid(tiny_grid(per_env_kwargs={"recgym/Synthetic-PMF-v0": {"max_steps": 4}}))
    assert {c.config.env_kwargs["max_steps"] for c in grid.cells()} == {4}
    with pytest.raises(ConfigError, match="per_env_kwargs names 'recgym/ML100K-PMF-v0', which is not among"):
        make_grid(tiny_grid(per_env_kwargs={"recgym/ML100K-PMF-v0": {"max_steps": 4}}))


def test_grid_of_rows_runs_resumes_and_reports_by_row_label(tmp_path, capsys):
    values = tiny_grid(encoders=None, agents=None, baselines=[], seeds=[0], rows=[
        {"label": "DQN (fast)", "agent": "dqn", "encoder": "mean", "agent_kwargs": {"learning_rate": 0.01}},
        {"label": "DQN (slow)", "agent": "dqn", "encoder": "mean", "agent_kwargs": {"learning_rate": 1e-4}},
        {"agent": "random"}])
    grid = make_grid(values)
    outcome = run_grid(grid, tmp_path / "out", display=False)
    assert outcome.count("done") == 3 and len(outcome.ran) == 3
    records = {r["row"]: r for r in outcome.records}
    assert records["DQN (fast)"]["config"]["agent_kwargs"]["learning_rate"] == 0.01
    summary = (tmp_path / "out" / "summary.md").read_text()
    for line in ("| DQN (fast) | ", "| DQN (slow) | ", "| random (baseline) | ", "- Row `DQN (fast)`: `dqn` with `mean`",
                 "gradient updates per cell (mean over 2 cells)"):  # the rows' training budget
        assert line in summary, line
    assert make_grid(values) == grid and run_grid(grid, tmp_path / "out", display=False).ran == []  # resumed: nothing to run
    # grid.json holds the rows: the folder is reported on without the grid file
    (tmp_path / "out" / "summary.md").unlink()
    assert cli_main(["compare", "--out", str(tmp_path / "out"), "--report-only"]) == 0
    assert "| DQN (slow) | " in (tmp_path / "out" / "summary.md").read_text()


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "examples").glob("*.yaml") if p.name != "run.yaml"))
def test_every_example_grid_is_a_valid_grid(name):
    # examples/run.yaml is `recgym train --config`'s (tests/test_run_config_keys.py); the rest are grids
    grid = load_grid(REPO / "examples" / name, check_environments=False)
    assert grid.cells()
