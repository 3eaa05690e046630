"""`recgym train` / `recgym evaluate`: configs, run folders, checkpoints, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from recgym.cli import main as cli_main
from recgym.experiments.config import ConfigError, load_config_file, make_config
from recgym.experiments.run_dir import CorruptCheckpointError, RunDir
from tests.helpers import train_run

SMALL_ENV = {"dataset_kwargs": {"n_users": 60, "n_items": 80, "seed": 1}, "max_steps": 10}


def small_config(**overrides):
    values = dict(env="recgym/Synthetic-PMF-v0", agent="dqn", encoder="mean", steps=400, seed=0, n_envs=8,
                  checkpoint_every=200, eval_every=200, eval_episodes=16, env_kwargs=SMALL_ENV,
                  agent_kwargs={"learning_starts": 50, "buffer_size": 2_000})
    values.update(overrides)
    return make_config(**values)


# -- configuration ---------------------------------------------------------------------------
def test_config_errors_name_the_field_and_the_choices():
    with pytest.raises(ConfigError, match="unknown agent 'dqm'.*dqn"):
        make_config(agent="dqm")
    with pytest.raises(ConfigError, match="unknown encoder 'drr-xyz'.*drr-att"):
        make_config(encoder="drr-xyz")
    with pytest.raises(ConfigError, match="unknown environment id.*ML100K-PMF-v0"):
        make_config(env="recgym/NoSuch-v0")
    with pytest.raises(ConfigError, match="steps"):
        make_config(steps=0)
    with pytest.raises(ConfigError, match="lerning_rate|Extra inputs"):
        make_config(lerning_rate=0.1)


def test_config_files_yaml_and_toml(tmp_path):
    (tmp_path / "run.yaml").write_text("agent: dqn\nsteps: 123\nenv_kwargs:\n  max_steps: 7\n")
    (tmp_path / "run.toml").write_text('agent = "drr"\nsteps = 321\n[env_kwargs]\nmax_steps = 9\n')
    assert make_config(**load_config_file(tmp_path / "run.yaml")).steps == 123
    cfg = make_config(**load_config_file(tmp_path / "run.toml"))
    assert (cfg.agent, cfg.env_kwargs["max_steps"]) == ("drr", 9)
    (tmp_path / "bad.yaml").write_text("agent: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config_file(tmp_path / "bad.yaml")
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(ConfigError, match="must end in"):
        load_config_file(tmp_path / "run.json")


# -- a run ----------------------------------------------------------------------------------------
def test_train_writes_results_curve_and_checkpoint(tmp_path):
    out = tmp_path / "run"
    results = train_run(small_config(), out, progress=False)
    saved = json.loads((out / "results.json").read_text())
    assert saved["online"]["episodes"] == results["online"]["episodes"] > 0
    assert saved["steps_per_second"] > 0
    assert [p["step"] for p in saved["curve"]] == [0, 200, 400]
    assert (out / "learning_curve.png").stat().st_size > 1000
    assert RunDir(out).latest_checkpoint().name == "step-000000400"
    assert any((out / "tensorboard").rglob("events.out.tfevents*"))
    with pytest.raises(FileExistsError, match="--resume.*--overwrite"):
        train_run(small_config(), out, progress=False)


def test_stop_at_reward_ends_training_at_the_first_evaluation_that_reaches_it(tmp_path):
    results = train_run(small_config(steps=2_000, stop_at_reward=-1.0), tmp_path / "run", progress=False)
    # the untrained policy already scores above -1: training stops at the first step, which is evaluated too
    assert [p["step"] for p in results["curve"]] == [0, 8] and results["steps"] == 8
    seconds = [p["train_seconds"] for p in train_run(small_config(), tmp_path / "full", progress=False)["curve"]]
    assert seconds[0] >= 0 and seconds == sorted(seconds)
    with pytest.raises(ConfigError, match="stop_at_reward"):
        make_config(stop_at_reward=float("nan"))


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "recgym.cli", "train", "--env", "recgym/Synthetic-PMF-v0", "--agent", "dqn",
           "--encoder", "mean", "--steps", "100000", "--n-envs", "8", "--checkpoint-every", "200",
           "--eval-every", "200", "--eval-episodes", "16", "--seed", "0", "--no-progress",
           "--env-kwarg", f"dataset_kwargs={json.dumps(SMALL_ENV['dataset_kwargs'])}",
           "--env-kwarg", "max_steps=10", "--agent-kwarg", "learning_starts=50", "--agent-kwarg", "buffer_size=2000",
           "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    latest = out / "checkpoints" / "latest.json"
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if latest.exists() and json.loads(latest.read_text())["step"] >= 400:
                break
            if proc.poll() is not None:
                pytest.fail(f"training exited early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint within the time limit")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # a hard kill: no handler, no cleanup
        proc.wait()
    checkpointed = json.loads(latest.read_text())["step"]
    config = make_config(**json.loads((out / "config.json").read_text()))
    resumed = config.model_copy(update={"steps": checkpointed + 200})
    with pytest.raises(ValueError, match="differs in: \\['seed'\\]"):
        train_run(resumed.model_copy(update={"seed": 1}), out, resume=True, progress=False)
    results = train_run(resumed, out, resume=True, progress=False)
    steps = [p["step"] for p in results["curve"]]
    assert steps[:2] == [0, 200]  # the curve before the kill is kept
    # SB3 collects whole rollouts, so the run may end a few steps past its target
    assert checkpointed + 200 <= steps[-1] < checkpointed + 200 + 64
    assert sorted(steps) == steps and len(set(steps)) == len(steps)
    assert RunDir(out).latest_checkpoint().name == f"step-{steps[-1]:09d}"


def test_corrupt_checkpoint_is_reported_not_loaded(tmp_path):
    out = tmp_path / "run"
    config = small_config(steps=200)
    train_run(config, out, progress=False)
    model = RunDir(out).latest_checkpoint() / "model.zip"
    model.write_bytes(model.read_bytes()[:100])  # truncated, as by a full disk
    with pytest.raises(CorruptCheckpointError, match="cannot be loaded"):
        train_run(config.model_copy(update={"steps": 400}), out, resume=True, progress=False)
    (out / "checkpoints" / "latest.json").write_text("{not json")
    with pytest.raises(CorruptCheckpointError, match="not valid JSON"):
        train_run(config, out, resume=True, progress=False)


# -- the command line ------------------------------------------------------------------------------
def test_cli_train_and_evaluate(tmp_path, capsys):
    out = tmp_path / "cli"
    code = cli_main(["train", "--env", "recgym/Synthetic-PMF-v0", "--agent", "popularity", "--steps", "50",
                     "--env-kwarg", 'dataset_kwargs={"n_users": 60, "n_items": 80}', "--out", str(out), "--no-progress"])
    assert code == 0 and "reward/step" in capsys.readouterr().out
    assert cli_main(["evaluate", "--run", str(out), "--json", "--baselines", "random", "oracle-greedy"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["policy"] for r in rows] == ["popularity", "random", "oracle-greedy"]
    by_name = {r["policy"]: r["avg_reward_per_step"] for r in rows}
    assert by_name["oracle-greedy"] > by_name["popularity"] and by_name["oracle-greedy"] > by_name["random"]
    assert cli_main(["evaluate", "--run", str(out), "--protocol", "offline"]) == 0
    assert "precision@20" in capsys.readouterr().out


def test_cli_reports_bad_input_with_exit_code_2(tmp_path, capsys):
    assert cli_main(["train", "--agent", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown agent 'nope'" in capsys.readouterr().err
    assert cli_main(["evaluate", "--run", str(tmp_path / "missing")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert cli_main(["train", "--env-kwarg", "max_steps", "--out", str(tmp_path / "y")]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_learning_curve_plot_moves_a_long_legend_beside_the_axes(tmp_path):
    import matplotlib.image as mpimg

    from recgym.experiments.plots import plot_learning_curve

    curve = [[{"step": s, "reward": float(s)} for s in (0, 10, 20)]]
    few = plot_learning_curve({f"agent {i}": curve for i in range(2)}, tmp_path / "few.png", metric="reward")
    many = plot_learning_curve({f"agent {i}": curve for i in range(6)}, tmp_path / "many.png", metric="reward",
                               reference={"greedy": 5.0})
    # 7 x 4.2 inches at 120 dpi inside; 9.5 inches wide when the legend goes beside the axes
    assert mpimg.imread(few).shape[:2] == (504, 840)
    assert mpimg.imread(many).shape[:2] == (504, 1140)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["few.png", "many.png"]  # no temporary left behind
