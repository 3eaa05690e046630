"""Specification of the state encoders (``state_encoders/``)."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.utils import obs_as_tensor

import state_encoders
from recgym.envs.spaces import ObservationLayout
from simulators.base import Behavior
from state_encoders import (
    DEERSEncoder,
    DRRAttentionEncoder,
    DRRAveEncoder,
    DRRPEncoder,
    DRRUEncoder,
    MeanEncoder,
    masked_softmax,
)

LAYOUT = ObservationLayout(n_users=7, n_items=30, history_length=5, consumed_length=12)
SPACE = LAYOUT.space()
DIM = 8
ENCODERS = state_encoders.available()
ITEM_PREFIXES = ("history", "positive", "negative")
#: content features for the encoders that need them (fdsa, prnn): 6 random 0/1 columns, some items without any.
ITEM_FEATURES = (np.random.default_rng(99).random((LAYOUT.n_items, 6)) < 0.3).astype(np.float32)
MODEL_KWARGS = {"fdsa": {"item_features": ITEM_FEATURES}, "prnn": {"item_features": ITEM_FEATURES},
                "ubr": {"item_features": ITEM_FEATURES}}


def model_kwargs(name: str) -> dict:
    """The arguments an encoder cannot do without (its side information)."""
    return dict(MODEL_KWARGS.get(name, {}))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- helpers -----------------------------------------------------------------------


def random_observations(
    rng: np.random.Generator, batch: int = 6, layout: ObservationLayout = LAYOUT, fill: str = "random"
) -> dict[str, np.ndarray]:
    """A batch of valid observations with the space's dtypes.

    ``fill``: ``"random"`` masks (holes, either side, some empty, some full),
    ``"full"`` all slots valid, ``"empty"`` no slot valid. Padded slots hold
    garbage ids (not only ``n_items``) so that tests catch encoders that read them.
    """
    n, pad = layout.history_length, layout.pad_item
    obs: dict[str, np.ndarray] = {"user": rng.integers(0, layout.n_users, size=(batch, 1)).astype(np.int64)}
    for prefix in ITEM_PREFIXES:
        if fill == "full":
            mask = np.ones((batch, n), dtype=np.int8)
        elif fill == "empty":
            mask = np.zeros((batch, n), dtype=np.int8)
        else:
            mask = (rng.random((batch, n)) < 0.6).astype(np.int8)
            mask[0] = 1  # one full row
            if batch > 1:
                mask[-1] = 0  # one empty row
        ids = rng.integers(0, layout.n_items, size=(batch, n)).astype(np.int64)
        garbage = rng.integers(0, pad + 1, size=(batch, n))
        obs[f"{prefix}_items"] = np.where(mask == 1, ids, garbage).astype(np.int64)
        obs[f"{prefix}_mask"] = mask
    hist = obs["history_mask"]
    obs["history_feedback"] = rng.uniform(-1, 1, size=hist.shape).astype(np.float32)
    obs["history_behavior"] = np.where(hist == 1, rng.integers(1, 4, size=hist.shape), 0).astype(np.int8)
    obs["history_time"] = rng.normal(size=hist.shape).astype(np.float32)
    obs["consumed"] = rng.integers(0, pad + 1, size=(batch, layout.consumed_length)).astype(np.int64)
    space = layout.space()
    assert all(space[k].contains(v[0]) for k, v in obs.items())
    return obs


def as_sb3_tensors(obs: dict[str, np.ndarray], space: spaces.Dict = SPACE) -> dict[str, torch.Tensor]:
    """What an SB3 policy hands its features extractor: float tensors via obs_as_tensor + preprocess_obs."""
    return preprocess_obs(obs_as_tensor(obs, torch.device("cpu")), space)


def build(name: str, seed: int = 0, **kwargs) -> state_encoders.StateEncoder:
    """An encoder in eval mode (dropout off, so that two calls give the same state)."""
    torch.manual_seed(seed)
    kwargs = {"embedding_dim": DIM, **model_kwargs(name), **kwargs}
    return state_encoders.make(name, SPACE, **kwargs).eval()


def corrupt_padding(obs: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Rewrite everything at padded slots (ids, feedback, behaviour, time)."""
    out = {k: v.copy() for k, v in obs.items()}
    for prefix in ITEM_PREFIXES:
        pad = out[f"{prefix}_mask"] == 0
        new_ids = rng.integers(0, LAYOUT.n_items, size=pad.shape)
        out[f"{prefix}_items"] = np.where(pad, new_ids, out[f"{prefix}_items"])
    pad = out["history_mask"] == 0
    out["history_feedback"] = np.where(pad, rng.uniform(-1, 1, size=pad.shape), out["history_feedback"]).astype(np.float32)
    out["history_behavior"] = np.where(pad, rng.integers(0, 4, size=pad.shape), out["history_behavior"]).astype(np.int8)
    out["history_time"] = np.where(pad, 99.0, out["history_time"]).astype(np.float32)
    return out


# -- registry ----------------------------------------------------------------------


def test_registry_lists_every_encoder():
    assert ENCODERS == ["caser", "deers", "din", "drr-att", "drr-ave", "drr-p", "drr-u", "fdsa", "gru4rec", "hpmn",
                        "mbstr", "mean", "prnn", "sasrec", "tisasrec", "ubr"]
    expected = {
        "mean": MeanEncoder, "drr-p": DRRPEncoder, "drr-u": DRRUEncoder, "drr-ave": DRRAveEncoder,
        "drr-att": DRRAttentionEncoder, "deers": DEERSEncoder, "gru4rec": state_encoders.GRU4RecEncoder,
        "caser": state_encoders.CaserEncoder, "sasrec": state_encoders.SASRecEncoder, "din": state_encoders.DINEncoder,
        "fdsa": state_encoders.FDSAEncoder, "tisasrec": state_encoders.TiSASRecEncoder,
        "prnn": state_encoders.ParallelRNNEncoder, "mbstr": state_encoders.MBSTREncoder,
        "hpmn": state_encoders.HPMNEncoder, "ubr": state_encoders.UBREncoder,
    }
    assert set(expected) == set(ENCODERS)
    for name, cls in expected.items():
        assert state_encoders.encoder_class(name) is cls
        assert cls.name == name
        assert isinstance(state_encoders.make(name, SPACE, embedding_dim=4, **model_kwargs(name)), cls)


def test_unknown_name_error_lists_known_encoders():
    with pytest.raises(ValueError, match="unknown state encoder 'bert4rec'") as err:
        state_encoders.make("bert4rec", SPACE)
    for name in ENCODERS:
        assert name in str(err.value)


def test_register_refuses_a_second_class_under_a_taken_name():
    with pytest.raises(ValueError, match="already registered"):
        state_encoders.register("mean")(type("OtherMean", (MeanEncoder,), {}))


def test_deers_without_negative_queue_raises_clear_error():
    space = spaces.Dict({k: v for k, v in SPACE.spaces.items() if not k.startswith("negative_")})
    with pytest.raises(ValueError, match="negative_items"):
        state_encoders.make("deers", space)
    # encoders that do not need the queue still build on that space
    assert state_encoders.make("drr-ave", space, embedding_dim=4).features_dim == 12


def test_non_dict_space_raises():
    with pytest.raises(ValueError, match="Dict observation space"):
        state_encoders.make("mean", spaces.Box(0, 1, shape=(3,)))


# -- shapes ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ENCODERS)
def test_output_shape_matches_features_dim(name):
    encoder = build(name)
    rng = np.random.default_rng(0)
    for batch in (1, 6):
        out = encoder(as_sb3_tensors(random_observations(rng, batch=batch)))
        assert out.shape == (batch, encoder.features_dim)
        assert out.dtype == torch.float32


def test_features_dims_follow_the_equations():
    n, d = LAYOUT.history_length, DIM
    assert build("mean").features_dim == 2 * d
    assert build("drr-p").features_dim == (n + n * (n - 1) // 2) * d
    assert build("drr-u").features_dim == (n + n * (n - 1) // 2) * d
    assert build("drr-ave").features_dim == 3 * d
    assert build("drr-att").features_dim == 3 * d
    assert build("deers", hidden_size=16).features_dim == 32
    assert build("mean", embedding_dim=None).features_dim == 2 * state_encoders.DEFAULT_EMBEDDING_DIM


# -- masking -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ENCODERS)
def test_padding_does_not_change_state(name):
    encoder = build(name)
    rng = np.random.default_rng(1)
    obs = random_observations(rng, batch=16)
    with torch.no_grad():
        before = encoder(as_sb3_tensors(obs))
        after = encoder(as_sb3_tensors(corrupt_padding(obs, rng)))
    torch.testing.assert_close(after, before, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ENCODERS)
def test_padding_side_does_not_change_state(name):
    """The same items (with their feedback, behaviour and time) padded on the left or on the right give the same state."""
    encoder = build(name)
    rng = np.random.default_rng(2)
    n = LAYOUT.history_length
    obs = random_observations(rng, batch=8, fill="full")
    lengths = np.array([0, 1, 2, 3, 4, 5, 2, 3])
    left, right = dict(obs), dict(obs)
    for prefix in ITEM_PREFIXES:
        ids = obs[f"{prefix}_items"]
        mask_r = (np.arange(n)[None] < lengths[:, None]).astype(np.int8)  # valid first
        mask_l = mask_r[:, ::-1].copy()  # valid last
        ids_l = np.full_like(ids, LAYOUT.pad_item)
        for b, k in enumerate(lengths):
            ids_l[b, n - k:] = ids[b, :k]
        right[f"{prefix}_items"], right[f"{prefix}_mask"] = np.where(mask_r == 1, ids, LAYOUT.pad_item), mask_r
        left[f"{prefix}_items"], left[f"{prefix}_mask"] = ids_l, mask_l
        if prefix == "history":  # the history's per-item values travel with their items
            for key in ("history_feedback", "history_behavior", "history_time"):
                values_l = np.zeros_like(obs[key])
                for b, k in enumerate(lengths):
                    values_l[b, n - k:] = obs[key][b, :k]
                right[key], left[key] = np.where(mask_r == 1, obs[key], 0).astype(obs[key].dtype), values_l
    with torch.no_grad():
        torch.testing.assert_close(encoder(as_sb3_tensors(left)), encoder(as_sb3_tensors(right)))


@pytest.mark.parametrize("name", ENCODERS)
def test_empty_history_gives_finite_state(name):
    encoder = build(name)
    obs = as_sb3_tensors(random_observations(np.random.default_rng(3), fill="empty"))
    out = encoder(obs)
    assert torch.isfinite(out).all()
    out.sum().backward()  # and finite gradients
    for p in encoder.parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all()


def test_empty_window_states_are_the_documented_ones():
    obs = as_sb3_tensors(random_observations(np.random.default_rng(4), fill="empty"))
    d = DIM
    for name in ("drr-ave", "drr-att", "mean"):
        encoder = build(name)
        with torch.no_grad():
            out = encoder(obs)
            u = encoder.embed_users(obs)
        torch.testing.assert_close(out[:, :d], u)
        assert torch.all(out[:, d:] == 0)
    for name in ("drr-p", "drr-u", "deers"):
        with torch.no_grad():
            assert torch.all(build(name)(obs) == 0)


def test_masked_softmax_all_masked_row_is_zero_without_nan():
    logits = torch.randn(2, 4, requires_grad=True)
    mask = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    weights = masked_softmax(logits, mask)
    assert torch.allclose(weights[0].sum(), torch.tensor(1.0)) and torch.all(weights[0, ~mask[0]] == 0)
    assert torch.all(weights[1] == 0)
    weights.sum().backward()
    assert torch.isfinite(logits.grad).all()


# -- gradients ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ENCODERS)
def test_gradients_reach_every_parameter(name):
    encoder = build(name)
    obs = as_sb3_tensors(random_observations(np.random.default_rng(5), batch=8, fill="full"))
    encoder(obs).sum().backward()
    params = dict(encoder.named_parameters())
    assert params
    # MB-STR's last layer trains some behaviours' parameters through its cloze objective only
    # (tests/test_mbstr.py checks that they cannot change the state and that the cloze loss reaches them)
    cloze_only = set(getattr(encoder, "cloze_only_parameter_names", list)())
    for pname, p in params.items():
        if pname in cloze_only:
            continue
        assert p.requires_grad
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: no gradient reaches {pname}"


# -- embeddings --------------------------------------------------------------------


@pytest.mark.parametrize("name", ENCODERS)
def test_pmf_initialisation_copies_arrays(name):
    rng = np.random.default_rng(6)
    items = rng.normal(size=(LAYOUT.n_items, 6))
    users = rng.normal(size=(LAYOUT.n_users, 6))
    encoder = state_encoders.make(name, SPACE, item_embeddings=items, user_embeddings=users, **model_kwargs(name))
    assert encoder.embedding_dim == 6
    table = encoder.item_embedding_table().detach().numpy()
    np.testing.assert_allclose(table, items.astype(np.float32))
    assert torch.all(encoder.embed_items(torch.tensor([float(LAYOUT.pad_item)])) == 0)
    if encoder.uses_user:
        np.testing.assert_allclose(encoder.user_embedding.weight.detach().numpy(), users.astype(np.float32))
    items[:] = 0.0  # a copy, not a view of the caller's array
    assert np.abs(encoder.item_embedding_table().detach().numpy()).sum() > 0


@pytest.mark.parametrize("name", ENCODERS)
def test_freeze_embeddings_keeps_tables_fixed(name):
    rng = np.random.default_rng(7)
    items = rng.normal(size=(LAYOUT.n_items, DIM)).astype(np.float32)
    users = rng.normal(size=(LAYOUT.n_users, DIM)).astype(np.float32)
    encoder = state_encoders.make(name, SPACE, item_embeddings=items, user_embeddings=users, freeze_embeddings=True,
                                  **model_kwargs(name))
    tables = [encoder.item_embedding.weight] + ([encoder.user_embedding.weight] if encoder.uses_user else [])
    assert not any(t.requires_grad for t in tables)
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    if trainable:
        before = [p.detach().clone() for p in trainable]
        optimiser = torch.optim.SGD(trainable, lr=0.1)
        encoder(as_sb3_tensors(random_observations(rng, fill="full"))).sum().backward()
        optimiser.step()
        assert any(not torch.equal(b, p) for b, p in zip(before, trainable))
    np.testing.assert_array_equal(encoder.item_embedding_table().detach().numpy(), items)


def test_embedding_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"item_embeddings must have shape \(30, d\)"):
        state_encoders.make("mean", SPACE, item_embeddings=np.zeros((29, 4)))
    with pytest.raises(ValueError, match="inconsistent embedding sizes"):
        state_encoders.make("mean", SPACE, item_embeddings=np.zeros((30, 4)), embedding_dim=5)
    with pytest.raises(ValueError, match="inconsistent embedding sizes"):
        state_encoders.make("mean", SPACE, item_embeddings=np.zeros((30, 4)), user_embeddings=np.zeros((7, 3)))


def test_item_embedding_table_and_embed_items_agree():
    encoder = build("drr-ave")
    table = encoder.item_embedding_table()
    assert table.shape == (LAYOUT.n_items, DIM)
    ids = torch.tensor([[3.0, 0.0], [29.0, 30.0]])  # floats, as SB3 hands them; 30 is padding
    emb = encoder.embed_items(ids)
    assert emb.shape == (2, 2, DIM)
    torch.testing.assert_close(emb[0, 0], table[3])
    torch.testing.assert_close(emb[1, 0], table[29])
    assert torch.all(emb[1, 1] == 0)


# -- model equations ----------------------------------------------------------------


def _single(layout: ObservationLayout, positives: list[int], user: int = 0, negatives: list[int] = ()):
    """One right-padded observation (valid first) as float tensors."""
    n, pad = layout.history_length, layout.pad_item
    obs = random_observations(np.random.default_rng(0), batch=1, layout=layout, fill="empty")
    obs["user"][:] = user
    for prefix, items in (("positive", positives), ("negative", list(negatives)), ("history", positives)):
        ids = np.full((1, n), pad, dtype=np.int64)
        ids[0, : len(items)] = items
        obs[f"{prefix}_items"] = ids
        obs[f"{prefix}_mask"] = (ids != pad).astype(np.int8)
    return as_sb3_tensors(obs, layout.space())


def test_drr_p_and_drr_u_match_hand_computed_states():
    layout = ObservationLayout(n_users=2, n_items=6, history_length=3, consumed_length=2)
    items = np.arange(12, dtype=np.float32).reshape(6, 2) / 10
    users = np.array([[1.0, -2.0], [0.5, 0.5]], dtype=np.float32)
    w = torch.tensor([0.5, 2.0, 3.0])
    drr_p = DRRPEncoder(layout.space(), item_embeddings=items)
    drr_u = DRRUEncoder(layout.space(), item_embeddings=items, user_embeddings=users)
    for enc in (drr_p, drr_u):
        with torch.no_grad():
            enc.position_weights.copy_(w)
    u, h = torch.tensor(users[0]), torch.tensor(items)
    # Full window (items 1, 4, 5 oldest first): positions 1..3.
    obs = _single(layout, [1, 4, 5])
    h1, h2, h3 = h[1], h[4], h[5]
    pairs = [w[0] * h1 * w[1] * h2, w[0] * h1 * w[2] * h3, w[1] * h2 * w[2] * h3]
    with torch.no_grad():
        torch.testing.assert_close(drr_p(obs)[0], torch.cat([h1, h2, h3, *pairs]))
        torch.testing.assert_close(drr_u(obs)[0], torch.cat([u * w[0] * h1, u * w[1] * h2, u * w[2] * h3, *pairs]))
    # Two positives (2 then 3): right-aligned to positions 2, 3 (the most recent at N);
    # position 1 is padded, so its terms are zero.
    obs = _single(layout, [2, 3])
    z = torch.zeros(2)
    with torch.no_grad():
        torch.testing.assert_close(drr_p(obs)[0], torch.cat([z, h[2], h[3], z, z, w[1] * h[2] * w[2] * h[3]]))


def test_drr_ave_matches_hand_computed_state():
    layout = ObservationLayout(n_users=2, n_items=6, history_length=3, consumed_length=2)
    rng = np.random.default_rng(8)
    items = rng.normal(size=(6, 4)).astype(np.float32)
    users = rng.normal(size=(2, 4)).astype(np.float32)
    u, h = torch.tensor(users[1]), torch.tensor(items)
    obs = _single(layout, [0, 5], user=1)  # right-aligned positions 2, 3
    # "renormalise": softmax of θ over the valid positions.
    enc = DRRAveEncoder(layout.space(), item_embeddings=items, user_embeddings=users)
    theta = torch.tensor([5.0, 0.0, 1.0])
    with torch.no_grad():
        enc.position_weights.copy_(theta)
        alpha = torch.softmax(theta[1:], dim=0)
        ave = alpha[0] * h[0] + alpha[1] * h[5]
        torch.testing.assert_close(enc(obs)[0], torch.cat([u, u * ave, ave]))
    # "zero": raw weights, padded position contributes nothing.
    enc = DRRAveEncoder(layout.space(), item_embeddings=items, user_embeddings=users, pooling="zero")
    with torch.no_grad():
        enc.position_weights.copy_(theta)
        ave = theta[1] * h[0] + theta[2] * h[5]
        torch.testing.assert_close(enc(obs)[0], torch.cat([u, u * ave, ave]))
    with pytest.raises(ValueError, match="pooling"):
        DRRAveEncoder(layout.space(), pooling="max")


def test_drr_ave_starts_as_a_plain_mean():
    encoder = build("drr-ave", embedding_dim=4)
    obs = as_sb3_tensors(random_observations(np.random.default_rng(9)))
    ids, mask = encoder._item_sequence(obs, "positive")
    with torch.no_grad():
        mean = state_encoders.masked_mean(encoder.embed_items(ids), mask)
        torch.testing.assert_close(encoder(obs)[:, 8:], mean)


def test_drr_att_weights_sum_to_one_over_valid_positions():
    encoder = build("drr-att")
    obs = as_sb3_tensors(random_observations(np.random.default_rng(10), batch=32))
    with torch.no_grad():
        alpha = encoder.attention_weights(obs)
    mask = obs["positive_mask"] > 0.5
    assert alpha.shape == mask.shape
    assert torch.all(alpha[~mask] == 0) and torch.all(alpha >= 0)
    valid_rows = mask.any(dim=1)
    torch.testing.assert_close(alpha[valid_rows].sum(dim=1), torch.ones(int(valid_rows.sum())))
    assert torch.all(alpha[~valid_rows] == 0)
    # and ave is the α-weighted item average
    with torch.no_grad():
        h = encoder.embed_items(obs["positive_items"].long().masked_fill(~mask, LAYOUT.pad_item))
        ave = (alpha.unsqueeze(-1) * h).sum(1)
        torch.testing.assert_close(encoder(obs)[:, 2 * DIM:], ave)


def test_drr_att_weights_depend_on_the_user():
    encoder = build("drr-att")
    a = _single(LAYOUT, [1, 2, 3], user=0)
    b = _single(LAYOUT, [1, 2, 3], user=5)
    with torch.no_grad():
        assert not torch.allclose(encoder.attention_weights(a), encoder.attention_weights(b))


@pytest.mark.parametrize("name", ["mean", "drr-att"])
def test_order_free_encoders_are_permutation_invariant(name):
    """mean (history) and drr-att (positives) ignore the order of the valid items."""
    encoder = build(name)
    rng = np.random.default_rng(11)
    obs = random_observations(rng, batch=8)
    perm = rng.permutation(LAYOUT.history_length)
    permuted = dict(obs)
    for prefix in ITEM_PREFIXES:
        permuted[f"{prefix}_items"] = obs[f"{prefix}_items"][:, perm]
        permuted[f"{prefix}_mask"] = obs[f"{prefix}_mask"][:, perm]
    with torch.no_grad():
        torch.testing.assert_close(encoder(as_sb3_tensors(permuted)), encoder(as_sb3_tensors(obs)))


@pytest.mark.parametrize("name", ["drr-p", "drr-u", "drr-ave", "deers"])
def test_order_aware_encoders_see_the_order(name):
    encoder = build(name)
    with torch.no_grad():
        if name == "drr-ave":  # start weights are uniform: make them positional
            encoder.position_weights.copy_(torch.arange(LAYOUT.history_length, dtype=torch.float32))
        if name in ("drr-p", "drr-u"):
            encoder.position_weights.copy_(torch.arange(1, LAYOUT.history_length + 1, dtype=torch.float32))
        a = encoder(_single(LAYOUT, [1, 2, 3], negatives=[4, 5]))
        b = encoder(_single(LAYOUT, [3, 2, 1], negatives=[5, 4]))
    assert not torch.allclose(a, b)


def test_deers_negative_queue_changes_the_state():
    encoder = build("deers", hidden_size=16)
    with torch.no_grad():
        base = encoder(_single(LAYOUT, [1, 2], negatives=[3]))
        other = encoder(_single(LAYOUT, [1, 2], negatives=[3, 7]))
        empty = encoder(_single(LAYOUT, [1, 2], negatives=[]))
    torch.testing.assert_close(other[:, :16], base[:, :16])  # positive half untouched
    assert not torch.allclose(other[:, 16:], base[:, 16:])
    assert torch.all(empty[:, 16:] == 0)  # empty queue -> initial zero state


def test_deers_state_is_the_gru_state_after_the_last_valid_item():
    encoder = build("deers", hidden_size=16)
    rng = np.random.default_rng(12)
    obs = random_observations(rng, batch=10)
    tensors = as_sb3_tensors(obs)
    with torch.no_grad():
        out = encoder(tensors)
        for b in range(10):
            for prefix, gru, half in (("positive", encoder.positive_gru, slice(0, 16)),
                                      ("negative", encoder.negative_gru, slice(16, 32))):
                valid = obs[f"{prefix}_items"][b][obs[f"{prefix}_mask"][b] == 1]
                if len(valid) == 0:
                    expected = torch.zeros(16)
                else:
                    x = encoder.embed_items(torch.as_tensor(valid)).unsqueeze(0)  # [1, k, d]
                    expected = gru(x)[1][0, 0]  # final hidden state [H]
                torch.testing.assert_close(out[b, half], expected)


# -- stable-baselines3 -----------------------------------------------------------------


class TinyRecEnv(gym.Env):
    """A minimal recommender env emitting valid recgym observations.

    Queues are left-padded (newest item at position N-1), as ``recgym.envs.core`` does.

    The user likes item ``a`` when ``(a + user) % 3 == 0``; likes go to the
    positive queue, the rest to the negative queue; episodes last 8 steps.
    """

    def __init__(self, layout: ObservationLayout = LAYOUT, episode_length: int = 8) -> None:
        self.layout = layout
        self.episode_length = episode_length
        self.observation_space = layout.space()
        self.action_space = spaces.Discrete(layout.n_items)

    def _queue(self, items: list[int]) -> tuple[np.ndarray, np.ndarray]:
        n, pad = self.layout.history_length, self.layout.pad_item
        recent = items[-n:]
        ids = np.full(n, pad, dtype=np.int64)
        ids[n - len(recent):] = recent
        return ids, (ids != pad).astype(np.int8)

    def _obs(self) -> dict[str, np.ndarray]:
        n = self.layout.history_length
        obs = {"user": np.array([self.user], dtype=np.int64)}
        for prefix, items in (("history", [i for i, _ in self.history]), ("positive", self.positives),
                              ("negative", self.negatives)):
            obs[f"{prefix}_items"], obs[f"{prefix}_mask"] = self._queue(items)
        recent = self.history[-n:]
        k = len(recent)
        feedback = np.zeros(n, dtype=np.float32)
        behavior = np.zeros(n, dtype=np.int8)
        time = np.zeros(n, dtype=np.float32)
        for j, (_, liked) in enumerate(recent, start=n - k):
            feedback[j] = 1.0 if liked else -1.0
            behavior[j] = Behavior.CLICK if liked else Behavior.SKIP
            time[j] = self.t - n + j
        obs.update(history_feedback=feedback, history_behavior=behavior, history_time=time)
        consumed = np.full(self.layout.consumed_length, self.layout.pad_item, dtype=np.int64)
        shown = [i for i, _ in self.history][-self.layout.consumed_length:]
        consumed[: len(shown)] = shown
        obs["consumed"] = consumed
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.user = int(self.np_random.integers(self.layout.n_users))
        self.t = 0
        self.history: list[tuple[int, bool]] = []
        self.positives: list[int] = []
        self.negatives: list[int] = []
        return self._obs(), {}

    def step(self, action):
        item = int(action)
        liked = (item + self.user) % 3 == 0
        self.history.append((item, liked))
        (self.positives if liked else self.negatives).append(item)
        self.t += 1
        return self._obs(), float(liked), False, self.t >= self.episode_length, {}


def test_tiny_env_emits_valid_observations():
    env = TinyRecEnv()
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    for action in itertools.islice(itertools.cycle(range(LAYOUT.n_items)), 12):
        obs, *_ = env.step(action)
        assert env.observation_space.contains(obs)


@pytest.mark.parametrize("name", ENCODERS)
def test_sb3_dqn_trains_with_encoder(name):
    from stable_baselines3 import DQN

    env = TinyRecEnv()
    model = DQN(
        "MultiInputPolicy",
        env,
        policy_kwargs=dict(
            features_extractor_class=state_encoders.encoder_class(name),
            features_extractor_kwargs=dict(embedding_dim=DIM, **model_kwargs(name)),
            net_arch=[16],
        ),
        learning_starts=50,
        buffer_size=500,
        batch_size=16,
        train_freq=4,
        target_update_interval=50,
        seed=0,
        device="cpu",
    )
    extractor = model.q_net.features_extractor
    assert isinstance(extractor, state_encoders.encoder_class(name))
    before = extractor.item_embedding_table().detach().clone()
    model.learn(200)
    assert not torch.equal(before, extractor.item_embedding_table().detach())  # the encoder is trained
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))


# -- the leak-free user term ------------------------------------------------------------------


def _fold_in_model():
    from recgym.data import make_synthetic_log
    from simulators.pmf import PMFSimulator

    log = make_synthetic_log(n_users=40, n_items=30, density=0.4, seed=5)
    return log, PMFSimulator(dim=8, reg=2.0).fit(log)


def test_user_fold_in_matches_the_numpy_ridge_solution_and_ignores_the_user_id():
    from recgym.scenario import fold_in_users
    from state_encoders.base import UserFoldIn

    log, model = _fold_in_model()
    module = UserFoldIn(n_items=30, item_factors=model.item_embeddings, item_bias=model.item_bias,
                        global_mean=model.global_mean, reg=model.reg, bias_reg=model.bias_reg,
                        rating_midpoint=3.0, rating_half_range=2.0)
    rng = np.random.default_rng(0)
    items = rng.integers(30, size=(6, 5))
    mask = rng.random((6, 5)) < 0.7
    feedback = rng.uniform(-1, 1, size=(6, 5)).astype(np.float32)
    ids = np.where(mask, items, 30)  # padding id where masked
    with torch.no_grad():
        folded = module(torch.as_tensor(ids), torch.as_tensor(feedback), torch.as_tensor(mask)).numpy()
    expected, _ = fold_in_users(model, items, feedback * 2.0 + 3.0, mask)
    np.testing.assert_allclose(folded, expected, rtol=1e-3, atol=1e-5)
    # padding never changes the folded-in factor
    garbage = np.where(mask, items, rng.integers(30, size=items.shape))
    feedback_garbage = np.where(mask, feedback, 0.9).astype(np.float32)
    with torch.no_grad():
        again = module(torch.as_tensor(np.where(mask, garbage, 30)), torch.as_tensor(feedback_garbage),
                       torch.as_tensor(mask)).numpy()
    np.testing.assert_allclose(again, folded, rtol=1e-6)


def test_encoders_with_fold_in_give_the_same_state_whatever_the_user_id():
    log, model = _fold_in_model()
    fold_in = {"item_factors": model.item_embeddings, "item_bias": model.item_bias, "global_mean": model.global_mean,
               "reg": model.reg, "bias_reg": model.bias_reg, "rating_midpoint": 3.0, "rating_half_range": 2.0}
    from recgym.envs.spaces import ObservationLayout

    space = ObservationLayout(n_users=40, n_items=30, history_length=5, consumed_length=8).space()
    rng = np.random.default_rng(1)
    obs = {k: torch.as_tensor(np.stack([v.sample() for _ in range(4)]).astype(np.float32)) for k, v in space.spaces.items()}
    for name in ("drr-u", "drr-ave", "drr-att", "mean"):
        encoder = state_encoders.make(name, space, item_embeddings=model.item_embeddings, user_fold_in=fold_in)
        assert encoder.user_embedding is None
        with torch.no_grad():
            out = encoder(obs)
            obs2 = dict(obs, user=torch.as_tensor(rng.integers(40, size=(4, 1)).astype(np.float32)))
            torch.testing.assert_close(encoder(obs2), out)
