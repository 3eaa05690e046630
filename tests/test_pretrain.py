"""Specifications of supervised pretraining: windows, splits, metrics, the loop, ``recgym pretrain``, loading.

Small hand-made logs and one synthetic scenario (120 users x 100 items), one torch thread.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

import agents
import state_encoders
from recgym.cli import main
from recgym.data import make_synthetic_log
from recgym.data.rating_log import STAR_SCALE, RatingLog
from recgym.envs.recommendation import RecommendationEnv
from recgym.envs.vector import RecommendationVectorEnv
from recgym.experiments.config import ConfigError, make_config
from state_encoders.features import content_kwargs
from recgym.pretrain import (
    ClickThroughTask,
    NextItemTask,
    TrainerConfig,
    UserSequences,
    WindowBuilder,
    click_metrics,
    fit,
    leave_one_out,
    pretrain_encoder,
    ranking_metrics,
    time_ordered_split,
)
from recgym.pretrain.tasks import seen_before, target_ranks
from state_encoders import MeanEncoder, PretrainedWeightsError
from tests.helpers import scenario_from_parts
from simulators.pmf import PMFSimulator

N = 3  # history length of the hand-made cases


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def hand_log() -> RatingLog:
    """User 0 rates items 0..4 (written out of time order), user 1 items 5, 6; user 2 item 7 only."""
    rows = [  # (user, item, rating, timestamp)
        (0, 2, 2, 30), (0, 0, 5, 10), (0, 4, 4, 50), (0, 1, 4, 20), (0, 3, 1, 40),
        (1, 6, 5, 200), (1, 5, 3, 100),
        (2, 7, 4, 5),
    ]
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"]).astype(
        {"user": np.int64, "item": np.int64, "rating": np.float64, "timestamp": np.float64})
    return RatingLog("hand", df, STAR_SCALE, user_ids=np.arange(3), item_ids=np.arange(8))


@pytest.fixture(scope="module")
def scenario():
    log = make_synthetic_log(n_users=120, n_items=100, density=0.15, seed=0)
    sim = PMFSimulator(dim=8).fit(log)
    perm = np.random.default_rng(0).permutation(120)
    return scenario_from_parts(log, sim, perm[:96], perm[96:], dim=8)


# -- windows ----------------------------------------------------------------------------------


def test_sequences_are_in_time_order_per_user():
    seq = UserSequences.from_log(hand_log())
    assert seq.items.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert seq.starts.tolist() == [0, 5, 7] and seq.lengths.tolist() == [5, 2, 1]
    assert seq.liked.tolist() == [True, True, False, False, True, False, True, True]
    assert seq.feedback[:5].tolist() == pytest.approx([1.0, 0.5, -0.5, -1.0, 0.5])


def test_window_holds_the_items_before_the_target_in_the_environment_layout():
    windows = WindowBuilder(UserSequences.from_log(hand_log()), n_users=3, history_length=N)
    obs = windows.observations(np.array([4, 1]))  # user 0's 5th item, user 0's 2nd item
    pad = 8
    assert obs["history_items"].tolist() == [[1, 2, 3], [pad, pad, 0]]
    assert obs["history_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    np.testing.assert_allclose(obs["history_feedback"], [[0.5, -0.5, -1.0], [0, 0, 1.0]])
    assert obs["history_behavior"].tolist() == [[2, 1, 1], [0, 0, 2]]  # CLICK liked, SKIP not, PAD
    assert obs["history_time"].tolist() == [[-3, -2, -1], [0, 0, -1]]
    assert obs["positive_items"].tolist() == [[pad, 0, 1], [pad, pad, 0]]
    assert obs["negative_items"].tolist() == [[pad, 2, 3], [pad, pad, pad]]
    assert obs["negative_mask"].tolist() == [[0, 1, 1], [0, 0, 0]]
    assert obs["user"].tolist() == [[0], [0]]
    assert obs["consumed"][0, -4:].tolist() == [0, 1, 2, 3] and (obs["consumed"][0, :-4] == pad).all()
    for row in range(2):
        assert windows.observation_space.contains({k: v[row] for k, v in obs.items()})


def test_window_of_the_first_liked_items_is_the_environment_start_observation(scenario):
    env = RecommendationEnv(scenario=scenario, history_length=N, users="train")
    windows = WindowBuilder(UserSequences.from_log(scenario.training_log()), scenario.n_users, history_length=N)
    assert windows.observation_space == env.observation_space
    seq = windows.sequences
    # a training user whose first N interactions are all liked: the window before the (N+1)-th is the start state
    user = next(u for u in scenario.train_users if seq.lengths[u] > N and seq.liked[seq.starts[u]: seq.starts[u] + N].all())
    start_obs, _ = env.reset(seed=0, options={"user": int(user)})
    window = {k: v[0] for k, v in windows.observations(np.array([seq.starts[user] + N])).items()}
    assert window.keys() == start_obs.keys()
    for key in start_obs:
        np.testing.assert_array_equal(window[key], start_obs[key], err_msg=key)
        assert window[key].dtype == start_obs[key].dtype, key


@pytest.mark.parametrize("name", state_encoders.available())
def test_every_encoder_reads_windows_and_environment_observations_alike(scenario, name):
    env = RecommendationVectorEnv(4, scenario=scenario, history_length=N, users="train")
    windows = WindowBuilder(UserSequences.from_log(scenario.training_log()), scenario.n_users, history_length=N)
    encoder = state_encoders.make(name, windows.observation_space, embedding_dim=8,
                                  **content_kwargs(state_encoders.encoder_class(name), scenario.log))  # content-aware encoders take item features
    env_obs, _ = env.reset(seed=0)
    from_env = encoder({k: torch.as_tensor(v).float() for k, v in env_obs.items()})
    from_log = encoder(windows.tensors(np.arange(4) + 10))
    assert from_env.shape == from_log.shape == (4, encoder.features_dim)
    assert torch.isfinite(from_log).all()


# -- splits -----------------------------------------------------------------------------------


def test_leave_one_out_tests_the_last_validates_the_second_last_and_trains_on_the_rest():
    split = leave_one_out(UserSequences.from_log(hand_log()))
    # user 0 (5 items, global 0..4): train targets 1, 2 (position 0 has no history), valid 3, test 4;
    # user 1 (2 items, 5..6): test 6 only (its second-last has no history); user 2 (1 item): nothing
    assert split["train"].tolist() == [1, 2]
    assert split["valid"].tolist() == [3]
    assert split["test"].tolist() == [4, 6]


def test_leave_one_out_test_window_includes_the_validation_item():
    seq = UserSequences.from_log(hand_log())
    windows = WindowBuilder(seq, n_users=3, history_length=N)
    test = windows.observations(leave_one_out(seq)["test"][:1])
    assert test["history_items"][0, -1] == seq.items[leave_one_out(seq)["valid"][0]]


def test_time_ordered_split_cuts_the_targets_in_global_time_order():
    seq = UserSequences.from_log(hand_log())
    split = time_ordered_split(seq, (0.5, 0.25, 0.25))
    # targets with a history: global 1..4 (times 20, 30, 40, 50) and 6 (time 200)
    assert {k: v.tolist() for k, v in split.items()} == {"train": [1, 2, 3], "valid": [4], "test": [6]}
    with pytest.raises(ValueError, match="sum"):
        time_ordered_split(seq, (0.5, 0.5, 0.5))


def test_pretraining_sees_no_rating_of_a_test_user(scenario, monkeypatch, tmp_path):
    import recgym.pretrain
    from recgym.experiments import pretrain as wiring

    seen = {}

    def spy(log, *args, **kwargs):
        seen["users"] = np.unique(log.interactions["user"].to_numpy())
        seen["n"] = len(log)
        return real(log, *args, **kwargs)

    real = recgym.pretrain.pretrain_encoder
    monkeypatch.setattr(recgym.pretrain, "pretrain_encoder", spy)
    monkeypatch.setattr("recgym.scenario.make_scenario", lambda *a, **k: scenario)
    wiring.pretrain(wiring.PretrainConfig(encoder="mean", dataset="synthetic", epochs=1, history_length=N,
                                          embedding_dim=8), tmp_path / "run", progress=False)
    assert set(seen["users"]) <= set(scenario.train_users.tolist())
    assert not set(seen["users"]) & set(scenario.test_users.tolist())
    train_rows = np.isin(scenario.log.interactions["user"], scenario.train_users).sum()
    assert seen["n"] == train_rows
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["users"] == {"pretrained_on": "train", "n_train_users": 96, "n_test_users_excluded": 24}


# -- metrics ----------------------------------------------------------------------------------


def test_ranking_metrics_match_hand_computed_values():
    ranks = np.array([0, 1, 9, 10, 3])
    figures = ranking_metrics(ranks, k=10)
    assert figures["HR@10"] == pytest.approx(4 / 5)
    assert figures["NDCG@10"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(11) + 0 + 1 / math.log2(5)) / 5)
    assert figures["MRR@10"] == pytest.approx((1 + 1 / 2 + 1 / 10 + 0 + 1 / 4) / 5)


def test_target_rank_counts_the_items_scored_strictly_higher():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.3], [0.4, 0.4, 0.2, 0.0]])
    assert target_ranks(scores, torch.tensor([2, 1])).tolist() == [1, 0]


def test_click_metrics_match_hand_computed_values():
    logits = np.array([2.0, -1.0, 0.5, -3.0])
    labels = np.array([1, 0, 0, 1])
    p = 1 / (1 + np.exp(-logits))
    figures = click_metrics(logits, labels)
    assert figures["AUC"] == pytest.approx(0.5)  # (2 > -1) and (2 > 0.5); -3 beats neither
    assert figures["LogLoss"] == pytest.approx(-np.mean([np.log(p[0]), np.log(1 - p[1]), np.log(1 - p[2]), np.log(p[3])]))


def test_exclude_seen_masks_the_earlier_items_but_never_the_target():
    seq = UserSequences.from_log(hand_log())
    mask = seen_before(seq, np.array([4]))
    assert np.flatnonzero(mask[0]).tolist() == [0, 1, 2, 3]
    # user 0 rated item 2 earlier; if the target repeats an earlier item it still stays rankable
    repeat = UserSequences(**{**seq.__dict__, "items": np.array([0, 1, 2, 3, 2, 5, 6, 7])})
    assert not seen_before(repeat, np.array([4]))[0, 2]


# -- heads and the loop -----------------------------------------------------------------------


class TargetAwareMean(MeanEncoder):
    """A test encoder with DIN's hook: candidates [B, M] -> target-aware states [B, M, F + 1] (another width)."""

    def target_state(self, observations, items):
        state = self(observations).unsqueeze(1).expand(-1, items.shape[1], -1)  # [B, M, F]
        return torch.cat([state, self.embed_items(items).sum(-1, keepdim=True)], dim=-1)


def test_click_head_uses_target_state_when_the_encoder_has_one():
    windows = WindowBuilder(UserSequences.from_log(hand_log()), n_users=3, history_length=N)
    encoder = TargetAwareMean(windows.observation_space, embedding_dim=4)
    head = ClickThroughTask().make_head(encoder, windows)
    assert head.mlp[0].in_features == (encoder.features_dim + 1) + 4
    logits = head(encoder, windows.tensors(np.array([1, 4])), torch.tensor([1, 4]))
    assert logits.shape == (2,)


class FlatTask(NextItemTask):
    """Next item whose validation figure never improves after epoch 1."""

    def evaluate(self, encoder, head, windows, targets, batch_size):
        return {**super().evaluate(encoder, head, windows, targets, batch_size), "NDCG@10": 0.5}


def test_early_stopping_stops_after_patience_epochs_without_improvement(scenario):
    seq = UserSequences.from_log(scenario.training_log())
    windows = WindowBuilder(seq, scenario.n_users, history_length=N)
    task = FlatTask()
    encoder = state_encoders.make("mean", windows.observation_space, embedding_dim=8)
    result = fit(encoder, task.make_head(encoder, windows), task, windows, task.split(seq),
                 TrainerConfig(epochs=20, patience=2, batch_size=512, progress=False))
    assert (result.epochs, result.best_epoch, result.stopped_early) == (3, 1, True)
    assert len(result.history) == 3 and result.seconds_per_epoch > 0


def _fit_mean(scenario, **config):
    torch.manual_seed(0)
    seq = UserSequences.from_log(scenario.training_log())
    windows = WindowBuilder(seq, scenario.n_users, history_length=N)
    task = NextItemTask()
    encoder = state_encoders.make("mean", windows.observation_space, embedding_dim=8)
    return fit(encoder, task.make_head(encoder, windows), task, windows, task.split(seq),
               TrainerConfig(batch_size=512, lr=1e-2, progress=False, **config))


def test_a_snapshot_reports_the_budget_without_changing_the_run(scenario):
    plain = _fit_mean(scenario, epochs=5, patience=None)
    with_snapshot = _fit_mean(scenario, epochs=5, patience=None, snapshot_epoch=3)
    assert with_snapshot.test == plain.test and with_snapshot.best_epoch == plain.best_epoch
    three = _fit_mean(scenario, epochs=3, patience=None)
    snap = with_snapshot.snapshot
    assert snap["epochs"] == 3 and snap["best_epoch"] == three.best_epoch
    assert snap["test"] == pytest.approx(three.test)
    assert plain.snapshot is None
    with pytest.raises(ValueError, match="snapshot-epoch"):
        TrainerConfig(snapshot_epoch=0)


def test_training_improves_next_item_ranking_over_chance(scenario):
    task = NextItemTask()
    trained = pretrain_encoder(scenario.training_log(), "mean", task, history_length=N,
                               encoder_kwargs={"embedding_dim": 16},
                               config=TrainerConfig(epochs=15, patience=15, batch_size=256, lr=1e-2, progress=False))
    chance_hr = 10 / scenario.n_items
    assert trained.result.valid["HR@10"] > chance_hr
    assert trained.result.history[-1]["train_loss"] < trained.result.history[0]["train_loss"]


# -- recgym pretrain ----------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["next-item", "ctr"])
def test_recgym_pretrain_writes_weights_encoder_json_and_results(tmp_path, task, capsys):
    out = tmp_path / f"pre-{task}"
    rc = main(["pretrain", "--encoder", "deers", "--dataset", "synthetic", "--task", task, "--out", str(out),
               "--epochs", "2", "--batch-size", "256", "--embedding-dim", "8", "--history-length", str(N),
               "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert {p.name for p in out.iterdir()} == {".recgym-run", "config.json", "tensorboard", "weights.pt",
                                               "encoder.json", "results.json"}
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == task and results["epochs"] <= 2
    assert set(results["test"]) == ({"HR@10", "NDCG@10", "MRR@10"} if task == "next-item" else {"AUC", "LogLoss"})
    for key in ("seconds_per_epoch", "train_seconds", "total_seconds", "best_epoch", "history"):
        assert key in results
    described = json.loads((out / "encoder.json").read_text())
    assert described["encoder"] == "deers" and described["kwargs"] == {"embedding_dim": 8}
    assert described["layout"]["history_length"] == N
    assert list((out / "tensorboard" / "run_1").iterdir())
    # a second run into the same folder needs --overwrite, and then replaces it
    assert main(["pretrain", "--encoder", "deers", "--dataset", "synthetic", "--out", str(out), "--no-progress"]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--encoder", "nope"], "unknown encoder 'nope'; choose one of " + ", ".join(state_encoders.available())),
    (["--encoder", "mean", "--task", "ranking"], "unknown task 'ranking'; choose one of next-item, cloze, ctr"),
    (["--encoder", "mean", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["--encoder", "mean", "--epochs", "0"], "epochs must be a positive integer"),
    (["--encoder", "mean", "--history-length", "0"], "history-length must be a positive integer"),
    (["--encoder", "mean", "--lr", "-1"], "lr must be a finite number > 0"),
    (["--encoder", "mean", "--init", "glove"], "unknown init 'glove'"),
    (["--encoder", "mbstr", "--behaviors", "stars"], "unknown behaviours 'stars'"),
    (["--encoder", "mbstr", "--task", "cloze", "--target-behavior", "buy"], "unknown behaviour 'buy'"),
    (["--encoder", "din", "--task", "ctr", "--target-behavior", "click"], "not to ctr"),
    (["--encoder", "mbstr", "--behaviors", "ratings", "--behavior-log", "x.csv"], "leave --behaviors at liked"),
])
def test_recgym_pretrain_refuses_bad_input_with_one_error_line(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert main(["pretrain", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("recgym: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_recgym_pretrain_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep")
    argv = ["pretrain", "--encoder", "mean", "--dataset", "synthetic", "--out", str(tmp_path), "--overwrite"]
    assert main(argv) == 2
    assert "not a recgym run folder" in capsys.readouterr().err
    assert (tmp_path / "mine.txt").read_text() == "keep"


# -- loading ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pretrained(scenario, tmp_path_factory):
    """drr-ave pretrained on the scenario's training users with the environment's history length."""
    from state_encoders.weights import save_pretrained

    folder = tmp_path_factory.mktemp("pre-drr-ave")
    kwargs = {"embedding_dim": 8}
    trained = pretrain_encoder(scenario.training_log(), "drr-ave", NextItemTask(), history_length=N,
                               encoder_kwargs=kwargs, config=TrainerConfig(epochs=2, batch_size=256, progress=False))
    save_pretrained(trained.encoder, kwargs, folder)
    return folder, trained.encoder


def test_make_with_weights_rebuilds_the_pretrained_encoder(scenario, pretrained):
    folder, encoder = pretrained
    env = RecommendationEnv(scenario=scenario, history_length=N)
    loaded = state_encoders.make("drr-ave", env.observation_space, weights=folder, freeze=True)
    for (name, a), b in zip(encoder.state_dict().items(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    assert not any(p.requires_grad for p in loaded.parameters())
    assert all(p.requires_grad for p in state_encoders.make("drr-ave", env.observation_space, weights=folder).parameters())


def test_make_with_weights_refuses_another_encoder_or_other_sizes(scenario, pretrained, tmp_path):
    folder, _ = pretrained
    space = RecommendationEnv(scenario=scenario, history_length=N).observation_space
    with pytest.raises(PretrainedWeightsError, match="for encoder 'drr-ave', not 'drr-p'"):
        state_encoders.make("drr-p", space, weights=folder)
    longer = RecommendationEnv(scenario=scenario, history_length=N + 2).observation_space
    with pytest.raises(PretrainedWeightsError, match="history_length 3 there, 5 here"):
        state_encoders.make("drr-ave", longer, weights=folder)
    with pytest.raises(PretrainedWeightsError, match="give a folder written by `recgym pretrain`"):
        state_encoders.make("drr-ave", space, weights=tmp_path)
    with pytest.raises(ValueError, match="freeze=True needs weights"):
        state_encoders.make("drr-ave", space, freeze=True)


def _encoder_params(model):
    return {k: v.detach().clone() for k, v in model.policy.q_net.features_extractor.state_dict().items()}


@pytest.mark.parametrize("freeze", [True, False])
def test_pretrained_encoder_in_dqn_stays_fixed_when_frozen_and_learns_when_fine_tuned(scenario, pretrained, freeze):
    folder, encoder = pretrained
    env = RecommendationVectorEnv(8, scenario=scenario, history_length=N)
    model = agents.make("dqn", env, encoder="drr-ave", seed=0, learning_starts=16, batch_size=16,
                        encoder_kwargs={"weights": str(folder), "freeze": freeze})
    before = _encoder_params(model)
    for key, value in encoder.state_dict().items():
        torch.testing.assert_close(before[key], value, msg=key)  # starts from the pretrained weights
    model.learn(96)
    after = _encoder_params(model)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert (changed == []) if freeze else changed


def test_train_config_checks_the_pretrained_weights_encoder(pretrained):
    folder, _ = pretrained
    config = make_config(env="recgym/Synthetic-PMF-v0", agent="dqn", encoder="drr-ave",
                         encoder_weights=str(folder), freeze_encoder=False)
    assert config.all_encoder_kwargs() == {"weights": str(folder), "freeze": False}
    with pytest.raises(ConfigError, match="are for encoder 'drr-ave', not 'deers'"):
        make_config(env="recgym/Synthetic-PMF-v0", agent="dqn", encoder="deers", encoder_weights=str(folder))
    with pytest.raises(ConfigError, match="holds no pretrained encoder"):
        make_config(env="recgym/Synthetic-PMF-v0", agent="dqn", encoder_weights=str(folder / "nope"))
    with pytest.raises(ConfigError, match="needs encoder_weights"):
        make_config(env="recgym/Synthetic-PMF-v0", agent="dqn", freeze_encoder=False)


def test_pretrained_encoder_starts_both_drr_actor_and_critic(scenario, pretrained):
    folder, encoder = pretrained
    env = RecommendationVectorEnv(8, scenario=scenario, history_length=N, action_mode="embedding")
    model = agents.make("drr", env, encoder="drr-ave", seed=0, encoder_kwargs={"weights": str(folder), "freeze": True})
    for extractor in (model.actor.features_extractor, model.critic.features_extractor):
        for key, value in encoder.state_dict().items():
            torch.testing.assert_close(extractor.state_dict()[key], value, msg=key)
        assert not any(p.requires_grad for p in extractor.parameters())


def test_recgym_train_plugs_in_pretrained_weights_from_the_command_line(tmp_path, capsys):
    from state_encoders.weights import read_weights

    pre, run = tmp_path / "pre", tmp_path / "run"
    assert main(["pretrain", "--encoder", "deers", "--dataset", "synthetic", "--out", str(pre), "--epochs", "1",
                 "--embedding-dim", "8", "--history-length", str(N), "--no-progress"]) == 0
    argv = ["train", "--env", "recgym/Synthetic-PMF-v0", "--agent", "dqn", "--encoder", "deers",
            "--encoder-weights", str(pre), "--env-kwarg", f"history_length={N}", "--steps", "64", "--n-envs", "4",
            "--eval-every", "64", "--eval-episodes", "4", "--checkpoint-every", "64", "--out", str(run),
            "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert config["encoder_weights"] == str(pre) and config["freeze_encoder"] is True
    env = RecommendationVectorEnv(4, dataset="synthetic", history_length=N)
    model = agents.load(next((run / "checkpoints").glob("step-*")) / "model.zip", env)
    saved = read_weights(pre)["state_dict"]
    for key, value in model.policy.q_net.features_extractor.state_dict().items():
        torch.testing.assert_close(value, saved[key], msg=key)  # frozen: still the pretrained weights
    # weights of another catalogue are refused before anything is written
    other = [*argv[:-3], "--env-kwarg", 'dataset_kwargs={"n_items": 250}', "--out", str(tmp_path / "other")]
    assert main(other) == 2
    assert "n_items 300 there, 250 here" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_recgym_train_refuses_weights_pretrained_on_another_user_split(tmp_path, capsys):
    pre = tmp_path / "pre-split-3"
    assert main(["pretrain", "--encoder", "deers", "--dataset", "synthetic", "--split-seed", "3", "--out", str(pre),
                 "--epochs", "1", "--embedding-dim", "8", "--history-length", str(N), "--no-progress"]) == 0
    argv = ["train", "--env", "recgym/Synthetic-PMF-v0", "--agent", "dqn", "--encoder", "deers",
            "--encoder-weights", str(pre), "--env-kwarg", f"history_length={N}", "--steps", "64", "--n-envs", "4",
            "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(argv) == 2  # split 0's test users are among split 3's training users: the weights saw their ratings
    err = capsys.readouterr().err
    assert "split_seed 3" in err and "test users would have been seen" in err and "--split-seed" in err
    assert not (tmp_path / "run").exists()
    # on the split it was pretrained on, the same folder is accepted
    from recgym.experiments.train import check_pretrained_weights

    check_pretrained_weights(make_config(env="recgym/Synthetic-PMF-v0", agent="dqn", encoder="deers",
                                         encoder_weights=str(pre), env_kwargs={"history_length": N, "split_seed": 3}))


def test_pmf_initialised_encoder_round_trips_through_the_weights_files(tmp_path):
    out = tmp_path / "pre"
    assert main(["pretrain", "--encoder", "drr-ave", "--dataset", "synthetic", "--init", "pmf", "--out", str(out),
                 "--epochs", "1", "--no-progress"]) == 0
    described = json.loads((out / "encoder.json").read_text())
    assert described["kwargs_in_weights_only"] == ["item_embeddings", "user_fold_in"]
    space = RecommendationEnv(dataset="synthetic").observation_space
    loaded = state_encoders.make("drr-ave", space, weights=out)
    assert loaded.user_fold_in is not None  # the user term is folded in from the history: no user-id table
    assert loaded.user_embedding is None


def test_evaluating_a_run_whose_encoder_weights_folder_is_gone_says_the_run_needs_it(tmp_path, capsys):
    pre, run = tmp_path / "pre", tmp_path / "run"
    assert main(["pretrain", "--encoder", "mean", "--dataset", "synthetic", "--out", str(pre), "--epochs", "1",
                 "--history-length", str(N), "--no-progress"]) == 0
    assert main(["train", "--env", "recgym/Synthetic-PMF-v0", "--agent", "dqn", "--encoder", "mean",
                 "--encoder-weights", str(pre), "--env-kwarg", f"history_length={N}", "--steps", "32", "--n-envs",
                 "4", "--eval-every", "32", "--eval-episodes", "4", "--checkpoint-every", "32", "--out", str(run),
                 "--no-progress"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    pre.rename(tmp_path / "moved")
    assert main(["evaluate", "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("recgym: error: ") and "\n" not in err
    assert f"was trained with --encoder-weights {pre}" in err and f"Put the folder back at {pre}" in err
    assert "Valid agent arguments" not in err


def test_sasrec_every_position_training_counts_each_label_once_at_any_stride():
    """Windows every 2 interactions overlap by N - 2 items: only each window's newest 2 labels count, so the loss
    is the mean over the training labels, each once, as one prefix per label gives (histories shorter than N:
    every label reads the same items either way)."""
    log = make_synthetic_log(n_users=12, n_items=40, density=0.25, seed=0)
    seq = UserSequences.from_log(log)
    windows = WindowBuilder(seq, n_users=log.n_users, history_length=int(seq.lengths.max()) + 1)
    torch.manual_seed(0)
    encoder = state_encoders.make("sasrec", windows.observation_space, embedding_dim=8, dropout=0.0)
    strided = NextItemTask(window_stride=2)
    head = strided.make_head(encoder, windows)
    prefixes = NextItemTask()
    combined = strided.loss(encoder, head, windows, strided.split(seq)["train"])
    one_per_label = prefixes.loss(encoder, head, windows, prefixes.split(seq)["train"])
    torch.testing.assert_close(combined, one_per_label)
