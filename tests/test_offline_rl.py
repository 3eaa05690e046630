"""Offline RL from a recgym transition log (recgym.offline): BC, discrete CQL and BCQ, scored by the online protocol."""

from __future__ import annotations

import numpy as np
import pytest

from recgym.evaluation import evaluate_online
from recgym.evaluation.transitions import SoftmaxProbabilities, available_items, record_transitions
from recgym.offline import ALGORITHMS, OfflineDataset, train_offline
from tests.helpers import AvailabilityWatch, greedy_pmf_for, logged_data_run


@pytest.fixture(scope="module")
def run():
    return logged_data_run()


@pytest.fixture(scope="module")
def pmf(run):
    return greedy_pmf_for(run)


@pytest.fixture(scope="module")
def train_log(run, pmf):
    # logged on the training users; the learnt policies are scored on the test users
    return record_transitions(SoftmaxProbabilities(pmf, 0.5), run.scenario, run.config, users="train", seed=3)


@pytest.fixture(scope="module")
def dataset(run, train_log):
    return OfflineDataset.from_log(train_log, run.scenario, run.config)


@pytest.fixture(scope="module")
def random_value(run):
    from agents.baselines import RandomAgent

    return evaluate_online(RandomAgent(run.training_env(1)), run.scenario, run.config, users="test",
                           seed=0).avg_reward_per_episode




def test_the_dataset_flattens_the_log_with_the_feature_maps_user_block(run, train_log, dataset):
    assert len(dataset) == len(train_log)
    assert dataset.features.dtype == np.float32 and dataset.features.shape[1] == len(dataset.feature_names)
    assert "progress" in dataset.feature_names and not any(n.startswith("candidate") for n in dataset.feature_names)
    # within an episode the next state's features are the next decision's
    inner = np.flatnonzero(np.diff(train_log.episode) == 0)
    assert np.array_equal(dataset.next_features[inner], dataset.features[inner + 1])
    assert np.array_equal(dataset.next_available[inner], dataset.available[inner + 1])
    assert np.array_equal(dataset.dones, train_log.terminated | train_log.truncated)
    assert dataset.available[np.arange(len(dataset)), dataset.actions].all()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_policy_trained_from_a_log_is_scored_by_the_online_protocol_on_test_users(
        algorithm, run, dataset, random_value):
    policy = train_offline(algorithm, dataset, run.scenario, run.config, steps=300, seed=0)
    watched = AvailabilityWatch(policy)
    result = evaluate_online(watched, run.scenario, run.config, users="test", seed=0)
    assert result.episodes == run.scenario.users("test").size
    assert watched.choices >= result.episodes and watched.unavailable == 0
    # a log of a softmax over greedy-pmf carries what random lacks (measured: BC 0.28, CQL 0.53, BCQ 0.55,
    # random -0.60 per episode)
    assert result.avg_reward_per_episode > random_value + 0.5


def test_training_is_seeded(run, dataset, train_log):
    first = train_offline("cql", dataset, run.scenario, run.config, steps=50, seed=4)
    second = train_offline("cql", dataset, run.scenario, run.config, steps=50, seed=4)
    obs, masks = train_log.observations, train_log.action_masks
    assert np.array_equal(first.scores(obs, masks), second.scores(obs, masks))


def test_training_leaves_the_callers_torch_seed_as_it_was(run, dataset):
    import torch

    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    for algorithm in ALGORITHMS:
        train_offline(algorithm, dataset, run.scenario, run.config, steps=5, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_behaviour_cloning_a_near_greedy_log_reproduces_the_logging_policy(run, pmf):
    log = record_transitions(SoftmaxProbabilities(pmf, 0.01), run.scenario, run.config, users="train", seed=3)
    data = OfflineDataset.from_log(log, run.scenario, run.config)
    bc = train_offline("bc", data, run.scenario, run.config, steps=300, seed=0)
    agreement = np.mean(bc.predict(log.observations, action_masks=log.action_masks)[0] == log.actions)
    assert agreement > 0.8  # measured 0.88
    played = evaluate_online(bc, run.scenario, run.config, users="test", seed=0).avg_reward_per_episode
    truth = evaluate_online(pmf, run.scenario, run.config, users="test", seed=0).avg_reward_per_episode
    assert played == pytest.approx(truth, abs=0.15)


def test_the_policy_never_plays_a_masked_or_consumed_item_even_where_it_scores_best(run, dataset, train_log):
    policy = train_offline("cql", dataset, run.scenario, run.config, steps=20, seed=0)
    obs = {k: v[:8] for k, v in train_log.observations.items()}
    masks = train_log.action_masks[:8].copy()
    best = policy.scores(obs, masks).argmax(axis=1)
    masks[np.arange(8), best] = False
    chosen = policy.predict(obs, action_masks=masks)[0]
    assert not np.any(chosen == best)
    assert available_items(obs, masks)[np.arange(8), chosen].all()


def test_bad_input_is_refused_with_the_fix(run, dataset, train_log):
    with pytest.raises(ValueError, match="choose one of bc, cql, bcq"):
        train_offline("dqn", dataset, run.scenario, run.config)
    with pytest.raises(ValueError, match="steps must be a whole number"):
        train_offline("bc", dataset, run.scenario, run.config, steps=0)
    with pytest.raises(ValueError, match="bcq_threshold"):
        train_offline("bcq", dataset, run.scenario, run.config, bcq_threshold=1.0)
    import dataclasses

    consumed_again = dataclasses.replace(train_log, actions=train_log.actions.copy())
    inner = np.flatnonzero(np.diff(train_log.episode) == 0)[0]
    consumed_again.actions[inner + 1] = train_log.actions[inner]  # the item the episode consumed a step before
    with pytest.raises(ValueError, match="actions that were not available"):
        OfflineDataset.from_log(consumed_again, run.scenario, run.config)
    other = OfflineDataset.from_log(train_log, run.scenario, run.config)
    other.available = other.available[:, :10]
    with pytest.raises(ValueError, match="pass the scenario and config the log was recorded on"):
        train_offline("bc", other, run.scenario, run.config)
