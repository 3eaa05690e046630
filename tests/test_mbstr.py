"""Specification of MB-STR and the multi-behaviour data it learns from.

The generic encoder properties (shapes, padding, padding side, empty history,
gradients, PMF initialisation, SB3 DQN) are checked for ``mbstr`` by
``tests/test_state_encoders.py``; here: the paper's equations one by one, the
reduction to a bidirectional transformer without positions, the cloze
objective, the behaviour logs (recorded and read from ratings), the
target-behaviour splits, and MB-STR driving DQN and DRR on a behaviour
environment. Tiny dimensions, one torch thread.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import agents
import state_encoders
from recgym.cli import main
from recgym.data import make_synthetic_log
from recgym.data.rating_log import BEHAVIOR_COLUMN, STAR_SCALE, RatingLog
from recgym.envs.vector import RecommendationVectorEnv
from recgym.experiments.behavior_log import (
    PROPENSITY_COLUMN,
    LoggingSettings,
    SoftmaxLoggingPolicy,
    behavior_counts,
    load_behavior_log,
    rating_behavior_log,
    record_behavior_log,
)
from recgym.pretrain import (
    ClozeTask,
    NextItemTask,
    TrainerConfig,
    UserSequences,
    WindowBuilder,
    fit,
    leave_one_out,
    training_cuts,
    window_ends,
)
from simulators.base import Behavior
from simulators.behavior import BehaviorSimulator, behaviors_from_ratings
from simulators.pmf import PMFSimulator
from state_encoders.mbstr import (
    BehaviorAwareAttention,
    BehaviorExpertHead,
    BehaviorFeedForward,
    relative_position_buckets,
)
from tests.helpers import scenario_from_parts
from tests.test_state_encoders import DIM, LAYOUT, SPACE, as_sb3_tensors, random_observations

N = LAYOUT.history_length
SKIP, CLICK, PURCHASE = int(Behavior.SKIP), int(Behavior.CLICK), int(Behavior.PURCHASE)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(seed: int = 0, train: bool = False, **kwargs) -> state_encoders.MBSTREncoder:
    torch.manual_seed(seed)
    return state_encoders.make("mbstr", SPACE, **{"embedding_dim": DIM, **kwargs}).train(train)


def observations(seed: int = 0, batch: int = 6, fill: str = "random") -> dict[str, torch.Tensor]:
    return as_sb3_tensors(random_observations(np.random.default_rng(seed), batch=batch, fill=fill))


def permuted_history(obs: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """The same history slots (item, mask, behaviour travel together) in another order."""
    perm = torch.as_tensor(np.random.default_rng(seed).permutation(N))
    out = dict(obs)
    for key in ("history_items", "history_mask", "history_behavior", "history_feedback", "history_time"):
        out[key] = obs[key][:, perm]
    return out


# -- the equations, module by module --------------------------------------------------------------


def test_relative_position_buckets_follow_t5s_bidirectional_rule():
    def bucket(relative: int, n_buckets: int = 32, max_distance: int = 40) -> int:  # T5, scalar, from its paper's code
        half, exact = n_buckets // 2, n_buckets // 4
        base = half if relative > 0 else 0
        n = abs(relative)
        if n < exact:
            return base + n
        return base + min(half - 1, exact + int(math.log(n / exact) / math.log(max_distance / exact) * (half - exact)))

    buckets = relative_position_buckets(60, 32, 40)
    for i, j in [(5, 5), (10, 9), (9, 10), (20, 12), (12, 20), (50, 11), (0, 39), (0, 59), (59, 0)]:
        assert buckets[i, j] == bucket(j - i), (i, j)
    assert buckets[10, 9] == 1 and buckets[9, 10] == 17 and buckets[8, 0] == 8 and buckets[59, 0] == 15
    assert buckets.min() == 0 and buckets.max() == 31


def test_behavior_aware_attention_matches_the_equations():
    torch.manual_seed(0)
    dim, heads, n = 4, 2, 3
    attention = BehaviorAwareAttention(dim, heads, n, dropout=0.0).eval()
    with torch.no_grad():  # move every parameter away from its start so that each one matters
        for p in attention.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(1, 4, dim)
    types = torch.tensor([[0, 2, 1, 2]])
    allowed = torch.ones(1, 4, 4, dtype=torch.bool)
    allowed[0, :, 1] = False  # key 1 is padding
    bias = torch.randn(1, heads, 4, 4)
    with torch.no_grad():
        out = attention(x, types, allowed, bias)[0]  # [4, d]
        dh = dim // heads
        expected = torch.zeros(4, dim)
        for h in range(heads):
            cols = slice(h * dh, (h + 1) * dh)
            q = [x[0, i] @ attention.query[types[0, i]][:, cols] for i in range(4)]
            k = [x[0, j] @ attention.key[types[0, j]][:, cols] for j in range(4)]
            v = [x[0, j] @ attention.value[types[0, j]][:, cols] for j in range(4)]

            def mixed(bases, mix, a, b):  # W_c = sum_k softmax_k(alpha_c) W_k for the pair c = (a, b)
                weights = torch.softmax(mix[a * n + b, :, h], dim=0)
                return sum(weights[m] * bases[m, h] for m in range(n))

            for i in range(4):
                a = int(types[0, i])
                keys = [j for j in range(4) if allowed[0, i, j]]
                scores = torch.stack([q[i] @ mixed(attention.attention_bases, attention.attention_mix, a,
                                                   int(types[0, j])) @ k[j] / math.sqrt(dh) + bias[0, h, i, j]
                                      for j in keys])
                p = torch.softmax(scores, dim=0)
                expected[i, cols] = sum(p[m] * (v[j] @ mixed(attention.output_bases, attention.output_mix, a,
                                                             int(types[0, j]))) for m, j in enumerate(keys))
    torch.testing.assert_close(out, expected)


def test_pair_matrices_start_near_the_identity():
    attention = BehaviorAwareAttention(8, 2, 3, dropout=0.0)
    with torch.no_grad():
        att = attention.pair_matrices(attention.attention_bases, attention.attention_mix)
    assert att.shape == (3, 3, 2, 4, 4)
    torch.testing.assert_close(att, torch.eye(4).expand_as(att), atol=0.1, rtol=0)


def test_behavior_feed_forward_gives_each_type_its_own_layer():
    torch.manual_seed(1)
    ffn = BehaviorFeedForward(4, 8, 3, dropout=0.0).eval()
    x = torch.randn(2, 5, 4)
    types = torch.tensor([[0, 1, 2, 2, 0], [1, 1, 0, 2, 1]])
    with torch.no_grad():
        out = ffn(x, types)
        for b in range(2):
            for i in range(5):
                torch.testing.assert_close(out[b, i], ffn.experts[int(types[b, i])](x[b, i]))


def test_expert_head_matches_the_gate_equation():
    torch.manual_seed(2)
    head = BehaviorExpertHead(4, n_types=3, n_shared=2, n_specific=1)
    with torch.no_grad():
        head.gates.normal_()
        head.specific_bias.normal_()
        x = torch.randn(3, 4)
        types = torch.tensor([2, 0, 2])
        out = head(x, types)
        for m in range(3):
            b = int(types[m])
            experts = [x[m] @ head.shared_weight[s] + head.shared_bias[s] for s in range(2)]
            experts.append(x[m] @ head.specific_weight[b, 0] + head.specific_bias[b, 0])
            gate = torch.softmax(x[m] @ head.gates[b], dim=0)
            mix = sum(g * e for g, e in zip(gate, experts))
            torch.testing.assert_close(out[m], x[m] + head.norm(mix))


# -- the reduction: one type, behaviour-specific parts off ----------------------------------------


def reference_states(encoder: state_encoders.MBSTREncoder, obs: dict[str, torch.Tensor]) -> torch.Tensor:
    """torch.nn's post-LN TransformerEncoderLayer with the encoder's weights, no positions, over each
    row's valid items followed by [MASK]; the output at [MASK]."""
    d = encoder.embedding_dim
    layers = []
    for layer in encoder.layers:
        ref = nn.TransformerEncoderLayer(d, layer.attention.n_heads, dim_feedforward=4 * d, dropout=0.0,
                                         activation="gelu", batch_first=True, norm_first=False)
        attention = layer.attention
        with torch.no_grad():
            ref.self_attn.in_proj_weight.copy_(torch.cat([attention.query.weight, attention.key.weight,
                                                          attention.value.weight]))
            ref.self_attn.in_proj_bias.copy_(torch.cat([attention.query.bias, attention.key.bias,
                                                        attention.value.bias]))
            ref.self_attn.out_proj.weight.copy_(torch.eye(d))  # MB-STR's attention has no output projection
            ref.self_attn.out_proj.bias.zero_()
            ref.linear1.load_state_dict(layer.feed_forward[0].state_dict())
            ref.linear2.load_state_dict(layer.feed_forward[3].state_dict())
            ref.norm1.load_state_dict(layer.attention_norm.state_dict())
            ref.norm2.load_state_dict(layer.feed_forward_norm.state_dict())
        layers.append(ref.eval())
    states = []
    with torch.no_grad():
        for b in range(obs["history_items"].shape[0]):
            valid = obs["history_mask"][b] > 0.5
            items = obs["history_items"][b][valid].long()
            x = torch.cat([encoder.embed_items(items), encoder.mask_embedding[None]]).unsqueeze(0)  # [1, L + 1, d]
            for ref in layers:
                x = ref(x)
            states.append(x[0, -1])
    return torch.stack(states)


@pytest.mark.parametrize("n_behaviors", [1, 3])
def test_one_type_without_behavior_parts_is_a_bidirectional_transformer_without_positions(n_behaviors):
    off = dict(position_bias=False, behavior_head=False)
    if n_behaviors == 3:  # with three types the behaviour-specific layers must be switched off too
        off.update(behavior_attention=False, behavior_feed_forward=False)
    encoder = build(n_behaviors=n_behaviors, **off)
    assert all(isinstance(layer.attention, state_encoders.layers.MaskedSelfAttention) for layer in encoder.layers)
    obs = observations(seed=3, batch=8)
    with torch.no_grad():
        state = encoder(obs)
        torch.testing.assert_close(state, reference_states(encoder, obs), rtol=1e-4, atol=1e-5)
        # no positions: the order of the history does not matter; nor do the behaviour types
        torch.testing.assert_close(encoder(permuted_history(obs, seed=4)), state, rtol=1e-5, atol=1e-5)
        other = dict(obs, history_behavior=torch.where(obs["history_mask"] > 0.5, 4 - obs["history_behavior"], 0))
        torch.testing.assert_close(encoder(other), state)


def test_position_bias_makes_the_order_matter_and_types_travel_with_their_items():
    obs = observations(seed=5, batch=8, fill="full")
    with torch.no_grad():
        ordered = build(seed=1)
        assert not torch.allclose(ordered(permuted_history(obs, 6)), ordered(obs))
        unordered = build(seed=1, position_bias=False)  # behaviour-aware, but no positions
        torch.testing.assert_close(unordered(permuted_history(obs, 6)), unordered(obs), rtol=1e-5, atol=1e-5)


def test_the_state_reads_the_behaviour_types_unless_there_is_one():
    obs = observations(seed=7, batch=6, fill="full")
    flipped = dict(obs, history_behavior=4 - obs["history_behavior"])  # skip <-> purchase
    with torch.no_grad():
        assert not torch.allclose(build()(flipped), build()(obs))
        torch.testing.assert_close(build(n_behaviors=1)(flipped), build(n_behaviors=1)(obs))


def test_target_behavior_chooses_the_query_and_the_head():
    obs = observations(seed=8, batch=4, fill="full")
    with torch.no_grad():
        purchase = build(target_behavior="purchase")(obs)
        click = build(target_behavior=CLICK)(obs)
    assert build().target_behavior == PURCHASE
    assert not torch.allclose(purchase, click)


# -- the cloze objective ---------------------------------------------------------------------------


def test_masked_item_states_line_up_with_the_masked_items_and_ignore_them():
    encoder = build()
    obs = observations(seed=9, batch=6)
    masked = torch.rand(6, N, generator=torch.Generator().manual_seed(0)) < 0.5
    valid = obs["history_mask"] > 0.5
    with torch.no_grad():
        states = encoder.masked_item_states(obs, masked)
        assert states.shape == (int((masked & valid).sum()), DIM)
        # the ids at masked slots are replaced by [MASK]: changing them changes nothing
        other = dict(obs, history_items=torch.where(masked, (obs["history_items"] + 3) % LAYOUT.n_items,
                                                    obs["history_items"]))
        torch.testing.assert_close(encoder.masked_item_states(other, masked), states)
        # moving the valid slots to the other side moves nothing (rows follow the items)
        left = {k: v.clone() for k, v in obs.items()}
        left_masked = masked.clone()
        for b in range(6):
            order = torch.cat([torch.nonzero(~valid[b]).flatten(), torch.nonzero(valid[b]).flatten()])
            for key in ("history_items", "history_mask", "history_behavior"):
                left[key][b] = obs[key][b, order]
            left_masked[b] = masked[b, order]
        torch.testing.assert_close(encoder.masked_item_states(left, left_masked), states, rtol=1e-5, atol=1e-5)


def test_cloze_only_parameters_never_change_the_state_and_the_cloze_loss_reaches_every_parameter():
    encoder = build()
    names = encoder.cloze_only_parameter_names()
    assert names and all(".feed_forward.experts." in name and name.startswith("layers.1.") for name in names)
    obs = observations(seed=10, batch=8, fill="full")
    with torch.no_grad():
        before = encoder(obs)
        for name, p in encoder.named_parameters():
            if name in names:
                p.add_(1.0)
        torch.testing.assert_close(encoder(obs), before)
    masked = torch.ones(8, N, dtype=torch.bool)
    states = encoder.masked_item_states(obs, masked)
    loss = nn.functional.cross_entropy(states @ encoder.item_embedding_table().T, obs["history_items"].long().flatten())
    loss.backward()
    for name, p in encoder.named_parameters():
        if name == "mask_embedding":
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for per_type in (encoder.head.specific_weight, encoder.head.gates, encoder.layers[0].attention.query):
        assert all(per_type.grad[t].abs().sum() > 0 for t in range(3))  # every behaviour's slice learns


def test_bad_behaviours_and_arguments_are_refused_with_the_fix():
    obs = observations(seed=11, batch=3, fill="full")
    with pytest.raises(ValueError, match="Behavior code there"):
        build()(dict(obs, history_behavior=torch.zeros_like(obs["history_behavior"])))
    build(n_behaviors=1)(dict(obs, history_behavior=torch.zeros_like(obs["history_behavior"])))  # ignored
    with pytest.raises(ValueError, match="n_behaviors must be 3"):
        build(n_behaviors=2)
    with pytest.raises(ValueError, match="skip, click, purchase"):
        build(target_behavior="buy")
    with pytest.raises(ValueError, match="divisible"):
        build(n_heads=3)


# -- multi-behaviour data ---------------------------------------------------------------------------


def behavior_log() -> RatingLog:
    """User 0: 8 items (C P S P C P S C), user 1: 3 (P S C), user 2: 2 (S C), one per time step."""
    codes = {0: [CLICK, PURCHASE, SKIP, PURCHASE, CLICK, PURCHASE, SKIP, CLICK], 1: [PURCHASE, SKIP, CLICK],
             2: [SKIP, CLICK]}
    rows, item = [], 0
    for user, behaviors in codes.items():
        for t, behavior in enumerate(behaviors):
            rows.append((user, item, 3.0, float(t), behavior))
            item += 1
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp", BEHAVIOR_COLUMN])
    return RatingLog("hand-behaviors", frame, STAR_SCALE, user_ids=np.arange(3), item_ids=np.arange(14))


def test_ratings_read_as_the_behaviours_a_noise_free_behaviour_user_shows():
    np.testing.assert_array_equal(behaviors_from_ratings(np.arange(1, 6), STAR_SCALE),
                                  [SKIP, SKIP, SKIP, CLICK, PURCHASE])
    log = make_synthetic_log(n_users=20, n_items=15, density=0.4, seed=0)
    mapped = rating_behavior_log(log)
    ratings = mapped.interactions["rating"].to_numpy()
    codes = mapped.interactions[BEHAVIOR_COLUMN].to_numpy()
    assert set(np.unique(codes[ratings >= 5])) <= {PURCHASE} and set(np.unique(codes[ratings <= 3])) <= {SKIP}
    assert sum(behavior_counts(mapped).values()) == len(log) and BEHAVIOR_COLUMN not in log.interactions


def test_windows_report_the_logs_behaviours_and_liked_means_not_skipped():
    seq = UserSequences.from_log(behavior_log())
    assert seq.behaviors[:8].tolist() == [CLICK, PURCHASE, SKIP, PURCHASE, CLICK, PURCHASE, SKIP, CLICK]
    np.testing.assert_array_equal(seq.liked, seq.behaviors != SKIP)
    windows = WindowBuilder(seq, n_users=3, history_length=3)
    before = windows.observations(np.array([3]))
    assert before["history_items"][0].tolist() == [0, 1, 2]
    assert before["history_behavior"][0].tolist() == [CLICK, PURCHASE, SKIP]
    through = windows.observations(np.array([3]), inclusive=True)  # the window that ends with the target
    assert through["history_items"][0].tolist() == [1, 2, 3] and through["history_behavior"][0, -1] == PURCHASE
    short = windows.observations(np.array([8]), inclusive=True)  # user 1's first item only
    assert short["history_items"][0].tolist() == [14, 14, 8] and short["history_mask"][0].tolist() == [0, 0, 1]


def test_a_bad_behaviour_column_is_refused():
    log = behavior_log()
    log.interactions.loc[2, BEHAVIOR_COLUMN] = 7
    with pytest.raises(ValueError, match="behaviour codes are"):
        UserSequences.from_log(log)


def test_target_behaviour_split_holds_out_the_last_two_purchases():
    seq = UserSequences.from_log(behavior_log())
    split = leave_one_out(seq, target_behavior=PURCHASE)
    # user 0 buys at 1, 3, 5: test 5, valid 3, train before 3; user 1's only purchase is its first item (no
    # history: not a target) and nothing precedes it; user 2 never buys: everything trains
    assert split["test"].tolist() == [5] and split["valid"].tolist() == [3]
    assert split["train"].tolist() == [1, 2, 12]
    assert training_cuts(seq, PURCHASE).tolist() == [3, 8, 13]
    assert window_ends(seq, training_cuts(seq, PURCHASE), stride=2).tolist() == [0, 2, 12]
    assert leave_one_out(seq)["test"].tolist() == [7, 10, 12]  # without a target behaviour: as before


def test_cloze_task_splits_trains_and_checks_its_encoder():
    seq = UserSequences.from_log(behavior_log())
    windows = WindowBuilder(seq, n_users=3, history_length=3)
    task = ClozeTask(stride=3)
    assert task.split(seq)["train"].tolist() == [2, 12]
    torch.manual_seed(0)
    encoder = state_encoders.make("mbstr", windows.observation_space, embedding_dim=4)
    head = task.make_head(encoder, windows)
    assert not list(head.parameters())  # the state is scored against the item table as it is
    loss = task.loss(encoder, head, windows, np.array([2, 12]))
    assert loss.ndim == 0 and torch.isfinite(loss)
    with pytest.raises(ValueError, match="masked_item_states"):
        task.make_head(state_encoders.make("sasrec", windows.observation_space, embedding_dim=4), windows)
    with pytest.raises(ValueError, match="target_behavior=2"):
        ClozeTask(target_behavior=CLICK).make_head(encoder, windows)
    with pytest.raises(ValueError, match="stride <= N"):
        ClozeTask(stride=4).make_head(encoder, windows)


def test_next_item_on_every_position_is_the_mean_of_the_prefix_losses():
    seq = UserSequences.from_log(behavior_log())
    windows = WindowBuilder(seq, n_users=3, history_length=8)
    torch.manual_seed(0)
    encoder = state_encoders.make("sasrec", windows.observation_space, embedding_dim=4, dropout=0.0)
    every = NextItemTask(window_stride=7)
    head = every.make_head(encoder, windows)
    # user 0's window ending at item 7 holds all 8 items: positions 0..6 predict items 1..7
    combined = every.loss(encoder, head, windows, np.array([7]))
    prefixes = NextItemTask().loss(encoder, head, windows, np.arange(1, 8))
    torch.testing.assert_close(combined, prefixes)
    with pytest.raises(ValueError, match="sequence_states"):
        every.make_head(state_encoders.make("mbstr", windows.observation_space, embedding_dim=4), windows)


def test_cloze_training_learns_a_sequential_pattern():
    """Each user walks the catalogue in steps of one from a random start: the masked item is its neighbour's + 1."""
    rng = np.random.default_rng(0)
    rows = [(u, (start + t) % 30, 3.0, float(t), (SKIP, CLICK, PURCHASE)[t % 3])
            for u, start in enumerate(rng.integers(0, 30, size=60)) for t in range(12)]
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp", BEHAVIOR_COLUMN])
    log = RatingLog("walks", frame, STAR_SCALE, user_ids=np.arange(60), item_ids=np.arange(30))
    seq = UserSequences.from_log(log)
    windows = WindowBuilder(seq, n_users=60, history_length=N)
    task = ClozeTask(stride=1)
    torch.manual_seed(0)
    encoder = state_encoders.make("mbstr", windows.observation_space, embedding_dim=8, dropout=0.0)
    result = fit(encoder, task.make_head(encoder, windows), task, windows, task.split(seq),
                 TrainerConfig(epochs=8, batch_size=64, lr=1e-2, patience=None, progress=False))
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] - 0.5  # from about log(30) = 3.4
    assert result.test["HR@10"] > 0.6  # chance: 1/3


# -- the recorded log -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scenario():
    log = make_synthetic_log(n_users=60, n_items=40, density=0.3, seed=1)
    perm = np.random.default_rng(1).permutation(60)
    rating_model = PMFSimulator(dim=8).fit(log)
    return scenario_from_parts(log, BehaviorSimulator(rating_model=rating_model).fit(log), perm[:48], perm[48:], dim=8)


def test_recorded_log_is_seeded_and_is_what_the_episodes_showed(scenario):
    settings = LoggingSettings(max_steps=12, batch_size=20, seed=3)
    log = record_behavior_log(scenario, settings)
    df = log.interactions
    pd.testing.assert_frame_equal(df, record_behavior_log(scenario, settings).interactions)
    assert not df.equals(record_behavior_log(scenario, LoggingSettings(max_steps=12, seed=4)).interactions)
    assert set(df["user"]) <= set(scenario.train_users.tolist()) and (log.n_users, log.n_items) == (60, 40)
    start = df[df[PROPENSITY_COLUMN].isna()]
    assert (start["timestamp"] < 0).all() and (start[BEHAVIOR_COLUMN] == CLICK).all()
    shown = df[df[PROPENSITY_COLUMN].notna()]
    assert shown[PROPENSITY_COLUMN].between(0, 1, inclusive="right").all()
    assert set(shown[BEHAVIOR_COLUMN]) <= {SKIP, CLICK, PURCHASE}
    assert shown.groupby("user").size().max() <= 12
    assert not df.duplicated(["user", "item"]).any()  # no repeats within an episode, start items blocked
    # each user's steps are in order, after the start items
    for _, rows in df.groupby("user"):
        assert rows["timestamp"].is_monotonic_increasing


def test_softmax_logging_policy_probabilities(scenario):
    env = RecommendationVectorEnv(3, scenario=scenario)
    obs, _ = env.reset(seed=0)
    policy = SoftmaxLoggingPolicy(env, temperature=0.5, seed=0)
    available = env.action_masks()
    probs = policy.probabilities(obs, available)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert np.all(probs[~available] == 0) and np.all(probs[available] > 0)
    ratings = policy.scorer.predicted_ratings(obs)
    i, j = np.flatnonzero(available[0])[:2]
    assert probs[0, i] / probs[0, j] == pytest.approx(np.exp((ratings[0, i] - ratings[0, j]) / 0.5))
    items, propensity = policy.act(obs, available)
    assert available[np.arange(3), items].all() and np.allclose(propensity, probs[np.arange(3), items])


def test_log_behavior_command_writes_a_log_that_loads_and_pretrains(tmp_path, capsys):
    out = tmp_path / "log.csv"
    assert main(["log-behavior", "--env", "recgym/Synthetic-Behavior-v0", "--out", str(out), "--max-steps", "6"]) == 0
    assert "recorded" in capsys.readouterr().out and (tmp_path / "log.csv.json").exists()
    assert main(["log-behavior", "--env", "recgym/Synthetic-Behavior-v0", "--out", str(out)]) == 2  # exists
    assert main(["log-behavior", "--env", "recgym/Synthetic-PMF-v0", "--out", str(tmp_path / "x.csv")]) == 2
    assert "behaviour environment" in capsys.readouterr().err
    from recgym.scenario import make_scenario

    scenario = make_scenario("synthetic", "behavior")
    log = load_behavior_log(out, scenario.log)
    assert set(np.unique(log.interactions[BEHAVIOR_COLUMN])) <= {SKIP, CLICK, PURCHASE}
    pre = tmp_path / "pre"
    assert main(["pretrain", "--encoder", "mbstr", "--task", "cloze", "--dataset", "synthetic", "--behavior-log",
                 str(out), "--epochs", "1", "--embedding-dim", "8", "--out", str(pre), "--no-progress"]) == 0
    space = RecommendationVectorEnv(2, scenario=scenario).single_observation_space
    loaded = state_encoders.make("mbstr", space, weights=pre)
    assert loaded.target_behavior == PURCHASE


@pytest.fixture(scope="module")
def recorded_log(tmp_path_factory):
    """A log recorded by `recgym log-behavior` on Synthetic-Behavior, with its description."""
    out = tmp_path_factory.mktemp("recorded") / "log.csv"
    assert main(["log-behavior", "--env", "recgym/Synthetic-Behavior-v0", "--out", str(out), "--max-steps", "6"]) == 0
    return out


def copy_log(recorded, folder, text: str | None = None, description: bool = True):
    """A copy of the recorded log (its text replaced by ``text``), with or without its description."""
    copy = folder / "copy.csv"
    copy.write_text(recorded.read_text() if text is None else text)
    if description:
        (folder / "copy.csv.json").write_text((recorded.parent / "log.csv.json").read_text())
    return copy


def test_log_behavior_keeps_an_existing_description_without_overwrite(recorded_log, tmp_path, capsys):
    out = tmp_path / "u.csv"
    mine = tmp_path / "u.csv.json"
    mine.write_text('{"mine": true}')  # the user's file, under the name the description would take
    assert main(["log-behavior", "--env", "recgym/Synthetic-Behavior-v0", "--out", str(out), "--max-steps", "2"]) == 2
    assert mine.read_text() == '{"mine": true}' and not out.exists()
    err = capsys.readouterr().err
    assert "u.csv.json exists" in err and "pass --overwrite" in err


def test_a_saved_log_reads_back_as_recorded(recorded_log, tmp_path):
    from recgym.scenario import make_scenario

    base = make_scenario("synthetic", "behavior").log
    loaded = load_behavior_log(copy_log(recorded_log, tmp_path), base)
    frame = pd.read_csv(recorded_log)
    assert len(loaded) == len(frame) and loaded.name == "synthetic:behavior-log"
    np.testing.assert_array_equal(loaded.interactions[BEHAVIOR_COLUMN].to_numpy(), frame[BEHAVIOR_COLUMN].to_numpy())


def _cut_in_last_line(text: str) -> str:
    return text[:-3]  # inside the last row's propensity: every row is still there, the last value shortened


def _cut_half(text: str) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(lines[: len(lines) // 2])  # whole lines: it parses, with half the rows


def _empty_behavior(text: str) -> str:
    lines = text.splitlines(keepends=True)
    fields = lines[3].split(",")
    fields[4] = ""  # the behavior column: pandas read NaN and failed with IntCastingNaNError
    return "".join(lines[:3] + [",".join(fields)] + lines[4:])


@pytest.mark.parametrize("tamper, match", [
    (_cut_in_last_line, r"ends inside a line: the file was cut short"),
    (_cut_half, r"holds [\d,]+ rows but [\d,]+ were recorded .*cut short or edited"),
    (_empty_behavior, r"line 4 has no valid 'behavior'"),
])
def test_a_cut_or_edited_log_is_refused_against_its_description(recorded_log, tmp_path, tamper, match):
    from recgym.scenario import make_scenario

    base = make_scenario("synthetic", "behavior").log
    with pytest.raises(ValueError, match=match + r".*recgym log-behavior"):
        load_behavior_log(copy_log(recorded_log, tmp_path, tamper(recorded_log.read_text())), base)


def test_a_log_of_another_dataset_or_without_description_is_refused(recorded_log, tmp_path):
    from recgym.scenario import make_scenario

    synthetic = make_scenario("synthetic", "behavior").log
    other = synthetic.with_interactions(synthetic.interactions, name="ml-100k")  # ids fit: only the name differs
    with pytest.raises(ValueError, match=r"recorded on 'synthetic' .* not on dataset 'ml-100k'"):
        load_behavior_log(copy_log(recorded_log, tmp_path), other)
    (tmp_path / "bare").mkdir()
    bare = copy_log(recorded_log, tmp_path / "bare", description=False)
    with pytest.raises(ValueError, match=r"its description .*copy.csv.json is missing"):
        load_behavior_log(bare, synthetic)


def test_pretrain_refuses_a_cut_log_with_the_reason(recorded_log, tmp_path, capsys):
    cut = copy_log(recorded_log, tmp_path, _cut_half(recorded_log.read_text()))
    assert main(["pretrain", "--encoder", "mbstr", "--task", "cloze", "--dataset", "synthetic", "--behavior-log",
                 str(cut), "--epochs", "1", "--embedding-dim", "8", "--out", str(tmp_path / "pre"),
                 "--no-progress"]) == 2
    assert "were recorded" in capsys.readouterr().err and not (tmp_path / "pre" / "weights.pt").exists()


# -- in the gym -------------------------------------------------------------------------------------


@pytest.mark.parametrize("agent", ["dqn", "drr"])
def test_mbstr_drives_dqn_and_drr_on_a_behavior_environment(scenario, agent):
    env = RecommendationVectorEnv(4, scenario=scenario, action_mode=agents.spec(agent).action_mode)
    model = agents.make(agent, env, encoder="mbstr", seed=0, learning_starts=48, batch_size=16, train_freq=1,
                        gradient_steps=1)
    extractor = model.q_net.features_extractor if agent == "dqn" else model.critic.features_extractor
    before = [p.detach().clone() for p in extractor.parameters() if p.requires_grad]
    model.learn(160)
    assert any(not torch.equal(b, p) for b, p in zip(before, (p for p in extractor.parameters() if p.requires_grad)))
    obs, _ = env.reset(seed=1)
    for _ in range(3):
        obs, *_ = env.step(model.predict(obs, deterministic=True)[0])
    tensors = as_sb3_tensors(obs, env.single_observation_space)
    reported = tensors["history_behavior"][tensors["history_mask"] > 0.5]
    assert set(reported.long().tolist()) <= {SKIP, CLICK, PURCHASE}
    with torch.no_grad():  # the state reads the behaviour the environment reported
        flipped = dict(tensors, history_behavior=torch.where(tensors["history_mask"] > 0.5,
                                                             4 - tensors["history_behavior"], 0))
        assert not torch.allclose(extractor(flipped), extractor(tensors))


# -- the ablation's report ------------------------------------------------------------------------


def test_ablation_report_states_each_comparison_with_its_sign(tmp_path):
    import json

    from recgym.pretrain import multi_behavior_report as module

    ndcg = {"mbstr": [0.15, 0.17], "mbstr-1": [0.13, 0.14], "sasrec": [0.16, 0.18]}
    for model, values in ndcg.items():
        for seed, value in enumerate(values):
            record = {
                "source": "sim", "model": model, "seed": seed, "history_length": 50, "lr": 3e-3, "batch_size": 64,
                "epoch_budget": 40, "patience": 10, "epochs": 40 if seed else 20, "best_epoch": 39 if seed else 10,
                "stopped_early": not seed, "parameters": 100, "seconds_per_epoch": 1.0, "total_seconds": 60.0,
                "cpu_seconds": 50.0, "test": {"NDCG@10": value, "HR@10": 2 * value},
                "targets": {"train": 10, "valid": 5, "test": 6},
                "data": {"users": 3, "interactions": 30, "behaviors": {"skip": 1, "click": 2, "purchase": 3},
                         "logging": {"max_steps": 100, "temperature": 0.2, "seed": 0, "history_length": 5}},
            }
            (tmp_path / f"multi-sim-{model}-seed{seed}.json").write_text(json.dumps(record))
    section = module.report_section(tmp_path)
    assert "| MB-STR (3 behaviour types) | 0.3200 ± 0.0283 | 0.1600 ± 0.0141 | 10/20, 39/40* |" in section
    assert "MB-STR beats its one-behaviour-type ablation by 0.0250 ± 0.0071 NDCG@10" in section
    assert "better on 2 of 2 seeds" in section
    assert "MB-STR falls short of SASRec by 0.0100 ± 0.0000 NDCG@10" in section
    assert "Still improving at the end of the budget on some seeds: MB-STR (3 behaviour types)" in section
    assert "ML-100K ratings" not in section  # no figures, no section
    assert "No results" in module.report_section(tmp_path / "empty")


def test_log_behavior_out_a_folder_says_to_give_a_file_with_or_without_overwrite(tmp_path, capsys):
    folder = tmp_path / "logs"
    folder.mkdir()
    for extra in ([], ["--overwrite"]):
        assert main(["log-behavior", "--env", "recgym/Synthetic-Behavior-v0", "--out", str(folder), *extra]) == 2
        err = capsys.readouterr().err
        assert f"--out {folder} is a folder: give the path of the CSV file to write" in err, err
        assert "Errno" not in err and "--overwrite" not in err
    assert list(folder.iterdir()) == []
