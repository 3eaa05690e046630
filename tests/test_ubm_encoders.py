"""Specification of the user-behaviour-modelling encoders: gru4rec, caser, sasrec, din, fdsa, tisasrec, prnn.

The generic properties every registered encoder shares (shapes, masking in
eval mode, empty history, gradients, PMF initialisation, SB3 DQN) are also
checked by ``tests/test_state_encoders.py``; here: the same with dropout on,
causality, each model's own equations, the content featuriser, and training
with recgym's DQN and DRR agents on a small synthetic scenario.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

import agents
import state_encoders
from recgym.data import make_synthetic_log
from recgym.envs.vector import RecommendationVectorEnv
from simulators.pmf import PMFSimulator
from state_encoders import din as din_module
from state_encoders.features import bag_of_words, item_content_features, item_texts
from tests.helpers import scenario_from_parts
from tests.test_state_encoders import (
    DIM,
    LAYOUT,
    SPACE,
    as_sb3_tensors,
    corrupt_padding,
    model_kwargs,
    random_observations,
)

UBM = ["caser", "din", "fdsa", "gru4rec", "prnn", "sasrec", "tisasrec"]
CAUSAL = ["fdsa", "gru4rec", "prnn", "sasrec", "tisasrec"]
N = LAYOUT.history_length


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(name: str, train: bool = False, seed: int = 0, **kwargs) -> state_encoders.StateEncoder:
    torch.manual_seed(seed)
    kwargs = {"embedding_dim": DIM, **model_kwargs(name), **kwargs}
    return state_encoders.make(name, SPACE, **kwargs).train(train)


def full_history(rng: np.random.Generator, batch: int = 4) -> dict[str, np.ndarray]:
    """Observations whose history is full, oldest first, time stamps increasing (steps with gaps)."""
    obs = random_observations(rng, batch=batch, fill="full")
    obs["history_time"] = np.cumsum(rng.integers(0, 3, size=(batch, N)), axis=1).astype(np.float32) - N
    return obs


def prefix(obs: dict[str, np.ndarray], length: int) -> dict[str, np.ndarray]:
    """The first ``length`` history items of ``obs`` (padded on the left, as the environment pads)."""
    out = {k: v.copy() for k, v in obs.items()}
    keep = np.zeros(N, dtype=bool)
    keep[:length] = True
    order = np.r_[np.flatnonzero(~keep), np.flatnonzero(keep)]  # padding first, then the kept items
    for key in ("history_items", "history_mask", "history_feedback", "history_behavior", "history_time"):
        out[key] = out[key][:, order]
    out["history_mask"] = np.broadcast_to(keep[order], out["history_mask"].shape).astype(np.int8).copy()
    out["history_items"] = np.where(out["history_mask"] == 1, out["history_items"], LAYOUT.pad_item)
    return out


# -- shapes ------------------------------------------------------------------------------


def test_features_dims_follow_the_models():
    d = DIM
    assert build("gru4rec", hidden_size=12).features_dim == 12
    assert build("caser").features_dim == 2 * d
    assert build("caser", use_user=False).features_dim == d
    assert build("caser", use_user=False).user_embedding is None
    assert build("sasrec").features_dim == d
    assert build("din").features_dim == 3 * d
    assert build("fdsa").features_dim == d
    assert build("tisasrec").features_dim == d
    assert build("prnn", hidden_size=12).features_dim == 24


@pytest.mark.parametrize("name", UBM)
def test_output_shape_matches_features_dim(name):
    encoder = build(name)
    rng = np.random.default_rng(0)
    for batch in (1, 5):
        out = encoder(as_sb3_tensors(random_observations(rng, batch=batch)))
        assert out.shape == (batch, encoder.features_dim) and out.dtype == torch.float32


@pytest.mark.parametrize("name", CAUSAL)
def test_sequence_states_have_one_state_per_position_and_zero_padding(name):
    encoder = build(name)
    obs = as_sb3_tensors(random_observations(np.random.default_rng(1), batch=6))
    with torch.no_grad():
        states, mask = encoder.sequence_states(obs)
    assert states.shape == (6, N, encoder.features_dim) and mask.shape == (6, N)
    assert torch.equal(mask, torch.sort(mask.int(), dim=1, descending=True).values.bool())  # valid slots first
    assert torch.all(states[~mask] == 0)


def test_every_encoder_takes_the_common_arguments_by_keyword():
    items = np.random.default_rng(2).normal(size=(LAYOUT.n_items, 6))
    for name in UBM:
        encoder = state_encoders.make(name, SPACE, item_embeddings=items, freeze_embeddings=True, **model_kwargs(name))
        assert encoder.embedding_dim == 6 and not encoder.item_embedding.weight.requires_grad
    with pytest.raises(TypeError, match="hiden_size"):
        state_encoders.make("gru4rec", SPACE, hiden_size=4)


# -- masking -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", UBM)
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train-dropout"])
def test_padding_does_not_change_state(name, train):
    """Ids, feedback, behaviour and time at masked slots never matter, with dropout on too (same seed)."""
    encoder = build(name, train=train)
    rng = np.random.default_rng(3)
    obs = random_observations(rng, batch=12)
    corrupted = corrupt_padding(obs, rng)
    with torch.no_grad():
        torch.manual_seed(7)
        before = encoder(as_sb3_tensors(obs))
        torch.manual_seed(7)
        after = encoder(as_sb3_tensors(corrupted))
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["fdsa", "prnn"])
def test_features_of_items_at_masked_slots_do_not_change_state(name):
    obs = random_observations(np.random.default_rng(4), batch=8)
    masked_only = np.setdiff1d(np.arange(LAYOUT.n_items), obs["history_items"][obs["history_mask"] == 1])
    features = model_kwargs(name)["item_features"].copy()
    other = features.copy()
    other[masked_only] = 1.0 - other[masked_only]
    with torch.no_grad():
        a = build(name, item_features=features)(as_sb3_tensors(obs))
        b = build(name, item_features=other)(as_sb3_tensors(obs))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", UBM)
def test_empty_history_gives_finite_state_and_gradients(name):
    encoder = build(name, train=True)
    out = encoder(as_sb3_tensors(random_observations(np.random.default_rng(5), fill="empty")))
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in encoder.parameters() if p.grad is not None)


# -- causality -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CAUSAL)
def test_causal_models_never_read_the_future(name):
    """The output at position t ignores later items, and equals the state of the history cut after t."""
    encoder = build(name)
    rng = np.random.default_rng(6)
    obs = full_history(rng)
    changed = {k: v.copy() for k, v in obs.items()}
    changed["history_items"][:, 3:] = (obs["history_items"][:, 3:] + 7) % LAYOUT.n_items
    changed["history_time"][:, 3:] += 2.0
    with torch.no_grad():
        states, _ = encoder.sequence_states(as_sb3_tensors(obs))
        other, _ = encoder.sequence_states(as_sb3_tensors(changed))
        torch.testing.assert_close(other[:, :3], states[:, :3])
        assert not torch.allclose(other[:, 3:], states[:, 3:])
        for t in range(N):
            torch.testing.assert_close(encoder(as_sb3_tensors(prefix(obs, t + 1))), states[:, t])


def test_caser_reads_only_the_last_l_items():
    encoder = build("caser", markov_order=3)
    obs = random_observations(np.random.default_rng(7), batch=4, fill="full")
    older = {k: v.copy() for k, v in obs.items()}
    older["history_items"][:, : N - 3] = (obs["history_items"][:, : N - 3] + 5) % LAYOUT.n_items
    recent = {k: v.copy() for k, v in obs.items()}
    recent["history_items"][:, -1] = (obs["history_items"][:, -1] + 5) % LAYOUT.n_items
    with torch.no_grad():
        base = encoder(as_sb3_tensors(obs))
        torch.testing.assert_close(encoder(as_sb3_tensors(older)), base)
        assert not torch.allclose(encoder(as_sb3_tensors(recent)), base)


def test_caser_markov_order_is_capped_at_the_window():
    assert build("caser", markov_order=50).markov_order == N


# -- DIN --------------------------------------------------------------------------------------


@pytest.mark.parametrize("normalise", [True, False])
def test_din_gives_padding_zero_attention_weight(normalise):
    encoder = build("din", normalise_weights=normalise)
    obs = as_sb3_tensors(random_observations(np.random.default_rng(8), batch=16))
    mask = obs["positive_mask"] > 0.5
    items = torch.randint(0, LAYOUT.n_items, (16, 4))
    with torch.no_grad():
        default = encoder.attention_weights(obs)  # [B, N]
        targeted = encoder.attention_weights(obs, items)  # [B, 4, N]
    assert default.shape == (16, N) and targeted.shape == (16, 4, N)
    assert torch.all(default[~mask] == 0) and torch.all(targeted.transpose(1, 2)[~mask] == 0)
    if normalise:
        rows = mask.any(dim=1)
        torch.testing.assert_close(default[rows].sum(-1), torch.ones(int(rows.sum())))
        assert torch.all(default >= 0)


def test_din_target_state_uses_the_candidate_as_query():
    encoder = build("din")
    obs = as_sb3_tensors(random_observations(np.random.default_rng(9), batch=3, fill="full"))
    items = torch.tensor([[1, 2], [3, 4], [5, 5]])
    with torch.no_grad():
        states = encoder.target_state(obs, items)  # [B, 2, 3d]
        h = encoder.embed_items(obs["positive_items"])
        w = encoder.attention_weights(obs, items)
    assert states.shape == (3, 2, 3 * DIM)
    interest = w @ h  # [B, 2, d]
    query = encoder.embed_items(items)
    torch.testing.assert_close(states, torch.cat([interest, query, interest * query], dim=-1))
    assert not torch.allclose(w[0, 0], w[0, 1])  # the weights depend on the candidate
    torch.testing.assert_close(states[2, 0], states[2, 1])


def test_din_default_query_is_the_mean_liked_item():
    encoder = build("din")
    obs = as_sb3_tensors(random_observations(np.random.default_rng(10), batch=6))
    with torch.no_grad():
        out = encoder(obs)
        query = encoder.default_query(obs)
        ids, mask = encoder._item_sequence(obs, "positive")
        torch.testing.assert_close(query, state_encoders.masked_mean(encoder.embed_items(ids), mask))
    torch.testing.assert_close(out[:, DIM : 2 * DIM], query)


def test_din_target_state_is_the_same_in_chunks(monkeypatch):
    encoder = build("din")
    obs = as_sb3_tensors(random_observations(np.random.default_rng(11), batch=2))
    items = torch.arange(LAYOUT.n_items).expand(2, -1)
    with torch.no_grad():
        whole = encoder.target_state(obs, items)
        monkeypatch.setattr(din_module, "TARGET_CHUNK", 7)
        torch.testing.assert_close(encoder.target_state(obs, items), whole)


def test_din_rejects_dice_with_a_reason():
    with pytest.raises(ValueError, match="sigmoid"):
        build("din", activation="dice")


# -- TiSASRec -------------------------------------------------------------------------------------


def test_tisasrec_intervals_are_clipped_steps():
    encoder = build("tisasrec", time_span=3)
    time = torch.tensor([[0.0, 1.0, 1.0, 2.5, 9.0]])
    r = encoder.intervals(time)[0]
    assert r[0].tolist() == [0, 1, 1, 2, 3] and r[4].tolist() == [3, 3, 3, 3, 0]
    assert torch.equal(r, r.T)
    # the table never has rows no observation can reach: |Δt| <= N + C steps
    assert build("tisasrec").time_span == N + LAYOUT.consumed_length
    assert build("tisasrec", time_unit=2.0).time_span == (N + LAYOUT.consumed_length + 1) // 2


def test_time_changes_tisasrec_but_not_sasrec():
    obs = full_history(np.random.default_rng(12))
    later = dict(obs, history_time=obs["history_time"] * 3.0)
    with torch.no_grad():
        for name, sees_time in (("tisasrec", True), ("sasrec", False)):
            encoder = build(name)
            a, b = encoder(as_sb3_tensors(obs)), encoder(as_sb3_tensors(later))
            assert torch.allclose(a, b) != sees_time, name


# -- FDSA and p-RNN ------------------------------------------------------------------------------


def test_fdsa_pools_only_the_present_features():
    features = np.zeros((LAYOUT.n_items, 3), dtype=np.float32)
    features[0] = [1, 0, 0]
    features[1] = [1, 1, 0]
    encoder = build("fdsa", item_features=features)
    with torch.no_grad():
        pooled = encoder.pooled_features(torch.tensor([0, 1, 2, LAYOUT.pad_item]))
        a = encoder.feature_embedding
        alpha = torch.softmax(encoder.feature_score(a[:2]).squeeze(-1), dim=0)
    torch.testing.assert_close(pooled[0], a[0])
    torch.testing.assert_close(pooled[1], alpha[0] * a[0] + alpha[1] * a[1])
    assert torch.all(pooled[2:] == 0)  # an item without features, and the padding id


@pytest.mark.parametrize("name", ["fdsa", "prnn"])
def test_side_information_changes_the_state(name):
    obs = random_observations(np.random.default_rng(13), batch=4, fill="full")
    features = model_kwargs(name)["item_features"]
    with torch.no_grad():
        a = build(name, item_features=features)(as_sb3_tensors(obs))
        b = build(name, item_features=np.roll(features, 1, axis=1))(as_sb3_tensors(obs))
    if name == "prnn":  # the id half is untouched, the content half moves
        torch.testing.assert_close(a[:, : a.shape[1] // 2], b[:, : b.shape[1] // 2])
    assert not torch.allclose(a, b)


def test_item_features_are_checked():
    with pytest.raises(ValueError, match=r"\(n_items, F\).*item_content_features"):
        build("fdsa", item_features=np.ones((LAYOUT.n_items - 1, 2)))
    with pytest.raises(ValueError, match="NaN"):
        build("prnn", item_features=np.full((LAYOUT.n_items, 2), np.nan))
    with pytest.raises(TypeError, match="item_features"):
        state_encoders.make("prnn", SPACE)


# -- the content featuriser --------------------------------------------------------------------------


def _log_with_texts(column: str, texts: list[str], genres: bool):
    log = make_synthetic_log(n_users=10, n_items=len(texts), density=0.5, seed=0)
    frame = pd.DataFrame({column: texts})
    if genres:
        frame = pd.concat([frame, log.item_features.filter(like="genre:")], axis=1)
    return dataclasses.replace(log, item_features=frame)


def test_movielens_features_are_genres_then_title_words():
    titles = ["Star Wars (1977)", "Star Trek: The Movie (1979)", "The Godfather (1972)", "Godfather II, The (1974)",
              "Toy Story (1995)", "Heat (1995)"]
    log = _log_with_texts("title", titles, genres=True)
    features = item_content_features(log)
    genres = log.item_genres()
    assert features.dtype == np.float32 and features.shape == (6, genres.shape[1] + 2)
    np.testing.assert_array_equal(features[:, : genres.shape[1]], genres)
    words = features[:, genres.shape[1] :]  # vocabulary: 'godfather', 'star' (in 2 items each; years dropped)
    assert item_texts(log)[0] == "Star Wars "
    _, vocabulary = bag_of_words(item_texts(log))
    assert sorted(vocabulary) == ["godfather", "star"]
    np.testing.assert_array_equal(words.sum(axis=1), [1, 1, 1, 1, 0, 0])


def test_bag_of_words_rows_are_l2_normalised_and_frequent_words_dropped():
    texts = ["red apple pie", "red apple tart", "red pear pie", "red plum"]
    matrix, vocabulary = bag_of_words(texts, max_share=0.75)
    assert "red" not in vocabulary  # in every text
    assert vocabulary == ["apple", "pie"]
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), [1, 1, 1, 0])


def test_jester_features_are_joke_words_and_synthetic_ones_are_genres():
    jokes = ["A man walks into a bar.", "Another man walks home.", "A dog in a bar.", "Knock knock."]
    features = item_content_features(_log_with_texts("text", jokes, genres=False))
    assert features.shape == (4, 3)  # 'bar', 'man', 'walks'
    synthetic = make_synthetic_log(n_users=10, n_items=12, density=0.5, seed=0)
    np.testing.assert_array_equal(item_content_features(synthetic), synthetic.item_genres())  # "Item i" titles say nothing
    with pytest.raises(ValueError, match="no item genres or texts"):
        item_content_features(dataclasses.replace(synthetic, item_features=None))


# -- agents ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scenario():
    log = make_synthetic_log(n_users=60, n_items=40, density=0.3, seed=1)
    perm = np.random.default_rng(1).permutation(60)
    return scenario_from_parts(log, PMFSimulator(dim=8).fit(log), perm[:48], perm[48:], dim=8)


def _encoder_kwargs(scenario, name: str) -> dict:
    small = {"caser": {"horizontal_filters": 4}, "gru4rec": {"hidden_size": 16}, "prnn": {"hidden_size": 16}}
    kwargs = dict(small.get(name, {}))
    if name in ("fdsa", "prnn"):
        kwargs["item_features"] = item_content_features(scenario.log)
    return kwargs


def _trainable_encoder_params(model, name: str) -> list[torch.Tensor]:
    extractor = model.q_net.features_extractor if name == "dqn" else model.critic.features_extractor
    return [p.detach().clone() for p in extractor.parameters() if p.requires_grad]


@pytest.mark.parametrize("agent", ["dqn", "drr"])
@pytest.mark.parametrize("name", UBM)
def test_encoder_trains_inside_recgym_agents(scenario, agent, name):
    mode = agents.spec(agent).action_mode
    env = RecommendationVectorEnv(4, scenario=scenario, action_mode=mode)
    model = agents.make(agent, env, encoder=name, seed=0, encoder_kwargs=_encoder_kwargs(scenario, name),
                        learning_starts=64, batch_size=16, train_freq=1, gradient_steps=1)
    assert model.encoder_name == name
    before = _trainable_encoder_params(model, agent)
    model.learn(240)
    after = _trainable_encoder_params(model, agent)
    assert any(not torch.equal(b, a) for b, a in zip(before, after))  # the encoder learned
    obs, _ = env.reset(seed=3)
    actions, _ = model.predict(obs, deterministic=True)
    assert np.all(np.isfinite(actions))


@pytest.mark.parametrize("name", ["fdsa", "prnn"])
def test_agents_pass_the_scenarios_item_content_to_content_aware_encoders(scenario, name):
    env = RecommendationVectorEnv(2, scenario=scenario, action_mode="discrete")
    model = agents.make("dqn", env, encoder=name, seed=0)  # no item_features given: the scenario's are used
    table = model.q_net.features_extractor.item_features
    expected = item_content_features(scenario.log)
    assert table.shape[0] >= expected.shape[0]
    np.testing.assert_allclose(table[: expected.shape[0]].numpy(), expected)


def test_dqn_target_head_scores_candidates_through_din(scenario):
    env = RecommendationVectorEnv(4, scenario=scenario, action_mode="discrete")
    model = agents.make("dqn", env, encoder="din", seed=0, policy_kwargs={"q_head": "target"},
                        learning_starts=32, batch_size=16, train_freq=1, gradient_steps=1)
    obs = model.policy.obs_to_tensor(env.reset(seed=0)[0])[0]
    with torch.no_grad():
        every = model.q_net.q_values(obs)
        some = model.q_net.q_values(obs, torch.tensor([[5, 9]] * 4))
    assert every.shape == (4, scenario.log.n_items)
    torch.testing.assert_close(every[:, [5, 9]], some)
    model.learn(96)
    with pytest.raises(ValueError, match="target-aware"):
        agents.make("dqn", env, encoder="sasrec", policy_kwargs={"q_head": "target"})


def test_sasrec_recbole_options_post_layer_norm_and_normal_init():
    """``norm_first=False``: every block ends with a LayerNorm (RecBole's post-LN), so each valid output is
    normalised (mean 0, variance 1 before the affine part, which starts at 1 and 0); ``init_std``: the
    blocks' and tables' weights are drawn N(0, std) with zero biases, given item embeddings kept."""
    encoder = build("sasrec", norm_first=False, layer_norm_eps=1e-12, init_std=0.02)
    states, mask = encoder.sequence_states(as_sb3_tensors(full_history(np.random.default_rng(0))))
    valid = states[mask]
    torch.testing.assert_close(valid.mean(-1), torch.zeros(valid.size(0)), atol=1e-5, rtol=0)
    torch.testing.assert_close(valid.var(-1, unbiased=False), torch.ones(valid.size(0)), atol=1e-3, rtol=0)
    query = encoder.blocks.blocks[0].attention.query
    assert abs(float(query.weight.detach().std()) - 0.02) < 0.004 and not query.bias.detach().any()
    given = np.random.default_rng(0).normal(size=(LAYOUT.n_items, DIM)).astype(np.float32)
    kept = build("sasrec", init_std=0.02, item_embeddings=given)
    np.testing.assert_allclose(kept.item_embedding_table().detach().numpy(), given)
    with pytest.raises(ValueError, match="init_std"):
        build("sasrec", init_std=0.0)
