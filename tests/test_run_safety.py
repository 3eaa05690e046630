"""Run folders are safe to overwrite, kill, resume and load: issue 9's regressions.

Each test states one guarantee of docs/guarantees.md: what ``--overwrite`` may
delete, what a kill can lose, which checkpoint a pointer may name, what a
failed start leaves behind, and that bad settings are refused before training.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recgym.cli import main as cli_main
from recgym.experiments import train as train_module
from recgym.experiments.config import ConfigError, load_config_file, make_config
from recgym.experiments.evaluate import evaluate_run
from recgym.experiments.run_dir import CorruptCheckpointError, RunDir
from tests.helpers import train_run
from tests.test_experiments import SMALL_ENV, small_config

REPO_ROOT = Path(__file__).resolve().parents[1]
SMALL_ENV_FLAGS = ["--env", "recgym/Synthetic-PMF-v0", "--agent", "dqn", "--encoder", "mean", "--n-envs", "8",
                   "--checkpoint-every", "200", "--eval-every", "200", "--eval-episodes", "16", "--no-progress",
                   "--env-kwarg", f"dataset_kwargs={json.dumps(SMALL_ENV['dataset_kwargs'])}",
                   "--env-kwarg", "max_steps=10", "--agent-kwarg", "learning_starts=50",
                   "--agent-kwarg", "buffer_size=2000"]


def one_error_line(capsys) -> str:
    """The CLI's stderr, checked to be one ``recgym: error:`` line (no traceback)."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("recgym: error: ") and "\n" not in err, err
    return err


# -- D1: --overwrite deletes only what recgym wrote -------------------------------------------------
def test_overwrite_refuses_a_folder_recgym_did_not_create(tmp_path, capsys, monkeypatch):
    mine = tmp_path / "my-project"
    mine.mkdir()
    (mine / "notes.txt").write_text("my own work")
    (mine / "data").mkdir()
    (mine / "data" / "ratings.csv").write_text("1,2,3\n")
    with pytest.raises(FileExistsError, match="not a recgym run folder"):
        train_run(small_config(steps=200), mine, overwrite=True, progress=False)
    monkeypatch.chdir(mine)  # `--out . --overwrite` in the user's own folder
    assert cli_main(["train", *SMALL_ENV_FLAGS, "--steps", "200", "--out", ".", "--overwrite"]) == 2
    assert "not a recgym run folder" in one_error_line(capsys)
    assert (mine / "notes.txt").read_text() == "my own work"
    assert (mine / "data" / "ratings.csv").exists()
    assert sorted(p.name for p in mine.iterdir()) == ["data", "notes.txt"]


def test_overwrite_through_a_symbolic_link_says_it_is_a_link(tmp_path, capsys):
    target = tmp_path / "real"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(FileExistsError, match=rf"--out {link} is a symbolic link \(to {target}\).*give the folder"):
        train_run(small_config(steps=200), link, overwrite=True, progress=False)
    assert cli_main(["train", *SMALL_ENV_FLAGS, "--steps", "200", "--out", str(link), "--overwrite"]) == 2
    assert "is not a folder" not in one_error_line(capsys)
    assert (target / "notes.txt").read_text() == "mine"


def test_overwrite_refuses_a_run_folder_holding_files_of_the_user(tmp_path):
    out = tmp_path / "run"
    train_run(small_config(steps=200), out, progress=False)
    (out / "analysis.ipynb").write_text("{}")
    with pytest.raises(FileExistsError, match="analysis.ipynb"):
        train_run(small_config(steps=200), out, overwrite=True, progress=False)
    assert (out / "analysis.ipynb").exists() and (out / "results.json").exists()


def test_overwrite_replaces_a_run_folder_recgym_created(tmp_path):
    out = tmp_path / "run"
    train_run(small_config(steps=400), out, progress=False)
    results = train_run(small_config(steps=200), out, overwrite=True, progress=False)
    assert [p["step"] for p in results["curve"]][:2] == [0, 200] and results["steps"] < 400
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest.json", f"step-{results['steps']:09d}"]
    assert json.loads((out / "config.json").read_text())["steps"] == 200


# -- D2: a kill at any moment of a checkpoint leaves a loadable run ---------------------------------
_PAUSING_RUN = r"""
import json, sys, time
from pathlib import Path
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.base_class import BaseAlgorithm
import recgym.experiments.train as train_module
from recgym.experiments.config import make_config

stage, out, flag, config = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), json.loads(sys.argv[4])
learned = False  # True once training is over: the final checkpoint is being written
original_learn, original_save, original_write_json = OffPolicyAlgorithm.learn, BaseAlgorithm.save, train_module.write_json

def pause():
    flag.write_text(stage)
    time.sleep(600)

def learn(self, *args, **kwargs):
    global learned
    result = original_learn(self, *args, **kwargs)
    learned = True
    return result

def save(self, *args, **kwargs):
    if learned and stage == "model":
        pause()
    return original_save(self, *args, **kwargs)

def write_json(path, data):
    final_pointer = learned and Path(path).name == "latest.json"
    if final_pointer and stage == "pointer":
        pause()
    original_write_json(path, data)
    if final_pointer and stage == "cleanup":
        pause()

OffPolicyAlgorithm.learn, BaseAlgorithm.save, train_module.write_json = learn, save, write_json
from recgym.experiments.setup import RunSetup
config = make_config(**config)
train_module.train(RunSetup.from_config(config), config, out, progress=False)
flag.write_text("finished")
"""


@pytest.mark.parametrize("stage", ["model", "pointer", "cleanup"])
def test_kill_while_writing_the_final_checkpoint_leaves_a_resumable_run(tmp_path, stage):
    # 400 steps with a checkpoint every 200: the final step is a checkpoint step,
    # the case where the old code deleted step-400 while latest.json named it
    out, flag = tmp_path / "run", tmp_path / "paused"
    config = small_config(steps=400)
    proc = subprocess.Popen([sys.executable, "-c", _PAUSING_RUN, stage, str(out), str(flag), json.dumps(config.to_json())],
                            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + 240
        while not flag.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        if proc.poll() is not None and not flag.exists():
            pytest.fail(f"the run exited early: {proc.stderr.read().decode()[-2000:]}")
        assert flag.exists() and flag.read_text() == stage, "the run never paused in the final checkpoint"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # a hard kill inside the window: no handler, no cleanup
        proc.wait()
    latest = RunDir(out).latest_checkpoint()
    assert latest is not None and (latest / "model.zip").is_file() and (latest / "state.json").is_file()
    assert evaluate_run(out, n_episodes=8)[0]["episodes"] == 8
    results = train_run(config.model_copy(update={"steps": 600}), out, resume=True, progress=False)
    assert results["curve"][-1]["step"] == results["steps"] >= 600
    leftovers = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert leftovers == ["latest.json", f"step-{results['steps']:09d}"]  # temporary and older folders are gone


def test_old_checkpoint_cleanup_removes_only_step_folders_recgym_wrote(tmp_path):
    out = tmp_path / "run"
    config = small_config(steps=200)
    train_run(config, out, progress=False)
    keep = out / "checkpoints" / "step-best-by-hand"
    keep.mkdir()
    (keep / "model.zip").write_bytes(b"mine")
    results = train_run(config.model_copy(update={"steps": 400}), out, resume=True, progress=False)
    assert (keep / "model.zip").read_bytes() == b"mine"
    left = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert left == ["latest.json", f"step-{results['steps']:09d}", "step-best-by-hand"]


# -- D14: latest.json may only name a checkpoint of its own run -------------------------------------
@pytest.mark.parametrize("pointer", ["absolute", "relative"])
def test_pointer_to_another_runs_checkpoint_is_refused(tmp_path, pointer):
    mine, other = tmp_path / "mine", tmp_path / "other"
    config = small_config(steps=200)
    train_run(config, mine, progress=False)
    train_run(config.model_copy(update={"steps": 400}), other, progress=False)
    target = other / "checkpoints" / "step-000000400"
    folder = str(target) if pointer == "absolute" else "../../other/checkpoints/step-000000400"
    (mine / "checkpoints" / "latest.json").write_text(json.dumps({"folder": folder, "step": 400}))
    with pytest.raises(CorruptCheckpointError, match="step-NNNNNNNNN"):
        RunDir(mine).latest_checkpoint()
    with pytest.raises(CorruptCheckpointError, match="step-NNNNNNNNN"):
        train_run(config.model_copy(update={"steps": 400}), mine, resume=True, progress=False)
    with pytest.raises(CorruptCheckpointError, match="step-NNNNNNNNN"):
        evaluate_run(mine)


# -- issue 21 P12: a checkpoint's model must be the run's agent and encoder ----------------------------
def test_a_model_copied_from_a_run_with_another_encoder_is_refused(tmp_path):
    mean_run, ave_run = tmp_path / "dqn-mean", tmp_path / "dqn-drr-ave"
    train_run(small_config(steps=200), mean_run, progress=False)
    ave_config = small_config(steps=200, encoder="drr-ave")
    train_run(ave_config, ave_run, progress=False)
    copied = RunDir(ave_run).latest_checkpoint() / "model.zip"
    copied.write_bytes((RunDir(mean_run).latest_checkpoint() / "model.zip").read_bytes())
    match = r"holds agent 'dqn' with encoder 'mean', but the run's config.json records agent 'dqn' with encoder 'drr-ave'"
    with pytest.raises(ValueError, match=match):  # it loaded on the same environment and was reported as drr-ave
        evaluate_run(ave_run)
    with pytest.raises(ValueError, match=match):
        train_run(ave_config.model_copy(update={"steps": 400}), ave_run, resume=True, progress=False)
    assert evaluate_run(mean_run)[0]["policy"] == "dqn (mean)"  # the run it came from still evaluates


# -- D16: a start that fails writes nothing ---------------------------------------------------------
def test_failed_starts_leave_the_run_folder_untouched(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_main(["train", *SMALL_ENV_FLAGS, "--steps", "200", "--agent-kwarg", "no_such_setting=1",
                     "--out", str(out)]) == 2
    assert "no_such_setting" in one_error_line(capsys)
    assert cli_main(["train", *SMALL_ENV_FLAGS, "--steps", "200", "--resume", "--out", str(out)]) == 2
    assert "nothing to resume" in one_error_line(capsys)
    assert not out.exists()
    out.mkdir()  # an empty folder made by the user stays empty too
    assert cli_main(["train", *SMALL_ENV_FLAGS, "--steps", "200", "--resume", "--out", str(out)]) == 2
    one_error_line(capsys)
    assert list(out.iterdir()) == []
    assert cli_main(["train", *SMALL_ENV_FLAGS, "--steps", "200", "--out", str(out)]) == 0
    assert (out / "results.json").exists()


# -- D8: steps/s counts training only ---------------------------------------------------------------
def test_steps_per_second_excludes_the_final_evaluation(tmp_path, monkeypatch):
    pause = 3.0
    evaluate = train_module.evaluate

    def slow_evaluation(*args, **kwargs):
        time.sleep(pause)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate", slow_evaluation)
    # 300 steps, evaluations every 200: the last evaluation (at the end) is not on the eval grid
    results = train_run(small_config(steps=300, eval_every=200, checkpoint_every=1_000), tmp_path / "run", progress=False)
    assert [p["step"] for p in results["curve"]][-1] == results["steps"] >= 300
    assert results["train_seconds"] < pause
    assert results["steps_per_second"] == pytest.approx(results["steps"] / results["train_seconds"])


# -- D17: the reported steps are the steps trained --------------------------------------------------
def test_resume_below_the_steps_already_done_is_refused(tmp_path):
    out = tmp_path / "run"
    config = small_config(steps=400)
    train_run(config, out, progress=False)
    with pytest.raises(ValueError, match="already trained 400 steps.*--steps"):
        train_run(config.model_copy(update={"steps": 200}), out, resume=True, progress=False)
    assert json.loads((out / "config.json").read_text())["steps"] == 400
    assert json.loads((out / "results.json").read_text())["steps"] == 400


def test_results_report_the_steps_actually_trained(tmp_path):
    out = tmp_path / "run"
    # 8 users step together, so 396 requested steps end at 400
    results = train_run(small_config(steps=396, checkpoint_every=1_000), out, progress=False)
    assert results["steps"] == 400 == results["curve"][-1]["step"]
    assert RunDir(out).latest_checkpoint().name == "step-000000400"
    again = train_run(small_config(steps=400, checkpoint_every=1_000), out, resume=True, progress=False)
    assert again["steps"] == 400 and again["steps_per_second"] is None  # nothing left to train
    # a resume that trains nothing logs no update count: the checkpoint's is reported
    assert again["gradient_updates"] == results["gradient_updates"] > 0


def test_gradient_updates_count_on_across_a_resume_and_old_checkpoints_read_as_zero(tmp_path):
    out = tmp_path / "run"
    config = small_config(steps=400, checkpoint_every=200)
    whole = train_run(config, tmp_path / "whole", progress=False)
    half = train_run(config.model_copy(update={"steps": 200}), out, progress=False)
    state_path = RunDir(out).latest_checkpoint() / "state.json"
    assert 0 < json.loads(state_path.read_text())["gradient_updates"] == half["gradient_updates"]
    resumed = train_run(config, out, resume=True, progress=False)
    assert resumed["gradient_updates"] == whole["gradient_updates"] > half["gradient_updates"]
    # a checkpoint from before the count was recorded resumes (0 where nothing is trained)
    state_path = RunDir(out).latest_checkpoint() / "state.json"
    state = json.loads(state_path.read_text())
    del state["gradient_updates"]
    state_path.write_text(json.dumps(state))
    assert train_run(config, out, resume=True, progress=False)["gradient_updates"] == 0


def test_run_killed_after_its_final_checkpoint_resumes_with_the_command_that_started_it(tmp_path, capsys):
    # 8 users step together, so --steps 396 ends at 400; the kill came after the final checkpoint, before
    # results.json (the state a kill in that window leaves)
    out = tmp_path / "run"
    command = ["train", *SMALL_ENV_FLAGS, "--steps", "396", "--out", str(out)]
    assert cli_main(command) == 0
    (out / "results.json").unlink()
    (out / "learning_curve.png").unlink()
    assert cli_main([*command, "--resume"]) == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 400 and results["steps_per_second"] is None  # nothing left to train
    # a real overshoot is still refused
    with pytest.raises(ValueError, match="already trained 400 steps, more than --steps 392"):
        train_run(make_config(**{**json.loads((out / "config.json").read_text()), "steps": 392}), out, resume=True,
              progress=False)


def test_checkpoint_state_of_the_wrong_shape_is_a_corrupt_checkpoint(tmp_path):
    out = tmp_path / "run"
    config = small_config(steps=200)
    train_run(config, out, progress=False)
    for state in ({"curve": 5}, [], {"curve": [{"reward": 1}]}, {"curve": [3]}, "x",
                  {"curve": [], "gradient_updates": -1}, {"curve": [], "gradient_updates": "12"}):
        (RunDir(out).latest_checkpoint() / "state.json").write_text(json.dumps(state))
        with pytest.raises(CorruptCheckpointError, match="state.json is not a recgym checkpoint state.*--overwrite"):
            train_run(config.model_copy(update={"steps": 400}), out, resume=True, progress=False)


# -- D19: no silent coercions -----------------------------------------------------------------------
@pytest.mark.parametrize("text", ["steps: true\n", "seed: false\n", "n_envs: 8.0\n", "eval_every: '200'\n"])
def test_config_numbers_are_not_coerced(tmp_path, text):
    (tmp_path / "run.yaml").write_text(text)
    with pytest.raises(ConfigError, match=text.split(":")[0]):
        make_config(**load_config_file(tmp_path / "run.yaml"))


@pytest.mark.parametrize("users", ["test", [1, 2], [1.5], [1, True], ["1"]])
def test_users_in_a_run_configuration_is_refused_once_saying_why(users, tmp_path, capsys):
    # the one check of a run's users (TrainConfig): whatever the selection, a run trains on its split's training
    # users and is evaluated on its test users
    with pytest.raises(ConfigError, match="env_kwargs may not set users.*training users.*test users.*split_seed"):
        make_config(env_kwargs={"users": users})
    out = tmp_path / "run"
    assert cli_main(["train", *SMALL_ENV_FLAGS, "--env-kwarg", f"users={json.dumps(users)}", "--out", str(out)]) == 2
    assert "may not set users" in one_error_line(capsys)
    assert not out.exists()


# -- D12: agent and encoder settings are checked before training ------------------------------------
@pytest.mark.parametrize(
    "settings, named",
    [
        ({"agent_kwargs": {"lerning_rate": 0.1}}, "lerning_rate"),
        ({"agent_kwargs": {"learning_rate": "fast"}}, "learning_rate"),
        ({"agent_kwargs": {"learning_rate": float("nan")}}, "learning_rate"),
        ({"agent_kwargs": {"batch_size": 0}}, "batch_size"),
        ({"agent_kwargs": {"batch_size": -1}}, "batch_size"),
        ({"agent_kwargs": {"gamma": 1.5}}, "gamma"),
        ({"agent_kwargs": {"gamma": -0.1}}, "gamma"),
        ({"agent_kwargs": {"buffer_size": True}}, "buffer_size"),
        ({"encoder_kwargs": {"hidden": 3}}, "hidden"),
        ({"agent": "drr", "encoder": "drr-att", "encoder_kwargs": {"attention_hidden": 0}}, "attention_hidden"),
        ({"agent": "popularity", "encoder": None, "agent_kwargs": {"alpha": 1.0}}, "alpha"),
    ],
)
def test_bad_agent_settings_are_refused_before_training(settings, named):
    values = dict(env="recgym/Synthetic-PMF-v0", agent="dqn", encoder="mean")
    values.update(settings)
    with pytest.raises(ConfigError, match=named):
        make_config(**values)


def test_agent_argument_errors_list_every_bad_argument_and_the_valid_names():
    from agents.arguments import validate_agent_kwargs

    with pytest.raises(ValueError) as err:
        validate_agent_kwargs("dqn", {"lerning_rate": 0.1, "batch_size": 0, "gamma": 0.9}, "mean", {"hidden": 3})
    message = str(err.value)
    for expected in ("lerning_rate", "batch_size", "hidden", "learning_rate", "buffer_size", "embedding_dim"):
        assert expected in message
    assert "gamma" not in message.split("Valid")[0]  # a good argument is not reported
    # gamma 0 (myopic play, right for a stateless simulator) and 1 are valid bounds
    validate_agent_kwargs("dqn", {"gamma": 0.0}, "mean", {})
    validate_agent_kwargs("dqn", {"gamma": 1.0}, "mean", {})


def test_documented_agent_defaults_are_valid_arguments():
    import agents
    from agents.arguments import validate_agent_kwargs

    for name in agents.available():
        spec = agents.spec(name)
        validate_agent_kwargs(name, dict(spec.defaults), spec.default_encoder, {})


def test_cli_reports_bad_settings_in_one_line(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    for text, named in [("agent_kwargs:\n  batch_size: 0\n", "batch_size"),
                        ("agent_kwargs:\n  learning_rate: fast\n", "learning_rate"),
                        ("encoder_kwargs:\n  nope: 1\n", "nope"),
                        ("env_kwargs:\n  - max_steps\n", "env_kwargs"),
                        ("agent_kwargs: [1, 2]\n", "agent_kwargs")]:
        config.write_text("agent: dqn\nencoder: mean\n" + text)
        assert cli_main(["train", "--config", str(config), "--out", str(tmp_path / "x")]) == 2
        assert named in one_error_line(capsys)
    assert not (tmp_path / "x").exists()


# -- D15: loading a run is trusting it --------------------------------------------------------------
def test_help_and_docs_say_to_load_only_runs_you_trust(capsys):
    for command in (["evaluate", "--help"], ["train", "--help"]):
        with pytest.raises(SystemExit):
            cli_main(command)
        assert "only runs you trust" in " ".join(capsys.readouterr().out.split())
    assert "load only runs you trust" in (REPO_ROOT / "docs" / "cli.md").read_text().lower()


# -- the offline demo -------------------------------------------------------------------------------
def test_demo_runs_on_synthetic_data_when_ml100k_cannot_be_fetched(tmp_path, monkeypatch, capsys):
    import pooch

    def offline(*args, **kwargs):
        raise ConnectionError("network is unreachable")

    monkeypatch.setenv("RECGYM_DATA_DIR", str(tmp_path / "empty-data"))
    monkeypatch.setenv("RECGYM_CACHE_DIR", str(tmp_path / "empty-cache"))
    (tmp_path / "empty-data").mkdir()
    monkeypatch.setattr(pooch, "retrieve", offline)  # downloads disabled
    assert cli_main(["demo", "--steps", "100", "--out", str(tmp_path / "demo"), "--no-progress"]) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if line.strip()]
    assert len(notes) == 1, captured.err
    assert "ML-100K could not be fetched" in notes[0]
    assert "RECGYM_DATA_DIR" in notes[0] and "recgym datasets fetch ml-100k" in notes[0]
    assert "recgym/Synthetic-PMF-v0" in captured.out and "oracle-greedy" in captured.out
    assert json.loads((tmp_path / "demo" / "config.json").read_text())["env"] == "recgym/Synthetic-PMF-v0"


def test_demo_uses_ml100k_when_it_is_available(data_dir, monkeypatch):
    from recgym.experiments.demo import DEMO_ENV, demo_env

    monkeypatch.setenv("RECGYM_DATA_DIR", str(data_dir))
    assert demo_env() == DEMO_ENV == "recgym/ML100K-PMF-v0"
