"""Every user-behaviour model drives DQN and DRR on ML-100K's registered environments.

Issue 11's "in the gym" contract: each of gru4rec, caser, sasrec, din, fdsa,
tisasrec and prnn plugs into DQN (discrete items) and DRR (item-embedding
actions) on ``recgym/ML100K-PMF-v0`` and ``recgym/ML100K-Behavior-v1``, both
from scratch (its parameters learn) and pretrained on the scenario's training
users and frozen (its parameters stay exactly the pretrained ones), through
the one interface ``agents.make(..., encoder=NAME, encoder_kwargs=...)``.

The pretraining here is one short epoch on a few training users: these tests
check the plumbing, not the quality (``docs/results/ubm.md`` does that).
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import agents
from recgym.data import load
from recgym.pretrain import NextItemTask, TrainerConfig, pretrain_encoder
from state_encoders.features import item_content_features
from state_encoders.weights import read_weights, save_pretrained

UBM = ["caser", "din", "fdsa", "gru4rec", "prnn", "sasrec", "tisasrec"]
ENVS = ["recgym/ML100K-PMF-v0", "recgym/ML100K-Behavior-v1"]
HISTORY = 6
SMALL = {"caser": {"horizontal_filters": 4}, "gru4rec": {"hidden_size": 8}, "prnn": {"hidden_size": 8}}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def vector_envs(data_dir):
    """One 2-user batched env of each id, in the mode each agent acts in."""
    envs = {(env_id, mode): gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point",
                                         history_length=HISTORY, action_mode=mode, data_dir=data_dir)
            for env_id in ENVS for mode in ("discrete", "embedding")}
    yield envs
    for env in envs.values():
        env.close()


def encoder_kwargs(name: str, data_dir: Path, **extra) -> dict:
    kwargs = {**extra, **SMALL.get(name, {})}
    if name in ("fdsa", "prnn"):
        kwargs["item_features"] = item_content_features(load("ml-100k", data_dir=data_dir))
    return kwargs


@pytest.fixture(scope="module")
def pretrained_folders(vector_envs, data_dir, tmp_path_factory) -> dict[str, Path]:
    """Each model pretrained (next item, one epoch) on 30 of the scenario's training users."""
    scenario = vector_envs[ENVS[0], "discrete"].scenario
    training = scenario.training_log()
    few = training.interactions[np.isin(training.interactions["user"], scenario.train_users[:30])]
    log = training.with_interactions(few)
    folders = {}
    for name in UBM:
        kwargs = encoder_kwargs(name, data_dir, embedding_dim=8)
        trained = pretrain_encoder(log, name, NextItemTask(), history_length=HISTORY, encoder_kwargs=kwargs,
                                   config=TrainerConfig(epochs=1, batch_size=512, progress=False))
        folders[name] = tmp_path_factory.mktemp(f"pre-{name}")
        save_pretrained(trained.encoder, kwargs, folders[name])
    return folders


def _encoder_state(model, agent: str) -> dict[str, torch.Tensor]:
    extractor = model.q_net.features_extractor if agent == "dqn" else model.actor.features_extractor
    return {k: v.detach().clone() for k, v in extractor.state_dict().items()}


@pytest.mark.parametrize("env_id", ENVS, ids=["pmf", "behavior"])
@pytest.mark.parametrize("agent", ["dqn", "drr"])
@pytest.mark.parametrize("name", UBM)
def test_model_drives_the_agent_from_scratch_and_pretrained_frozen(vector_envs, pretrained_folders, data_dir, env_id,
                                                                   agent, name):
    venv = vector_envs[env_id, agents.spec(agent).action_mode]
    small = {"learning_starts": 16, "batch_size": 8, "train_freq": 1, "gradient_steps": 1}
    for frozen in (False, True):
        # from scratch: the agent's default tables (the scenario's PMF item factors, d = 50) and a fresh model
        extra = {"weights": str(pretrained_folders[name]), "freeze": True} if frozen else encoder_kwargs(name, data_dir)
        model = agents.make(agent, venv, encoder=name, seed=0, encoder_kwargs=extra, **small)
        before = _encoder_state(model, agent)
        model.learn(48)
        after = _encoder_state(model, agent)
        changed = [k for k in before if not torch.equal(before[k], after[k])]
        if frozen:
            assert changed == [], f"frozen {name} changed {changed}"
            saved = read_weights(pretrained_folders[name])["state_dict"]
            for key, value in saved.items():
                torch.testing.assert_close(after[key], value, msg=key)
        else:
            assert changed, f"{name} learned nothing in {agent} on {env_id}"
        obs = venv.reset(seed=1)[0]
        actions, _ = model.predict(obs, deterministic=True)
        assert venv.action_space.contains(actions) and np.all(np.isfinite(actions))
