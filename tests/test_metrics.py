"""Ranking and beyond-accuracy metrics against values worked out by hand.

Every expected value below is written as the arithmetic that produces it, so a
reader can check the convention without running anything. Positions are
1-based; the discount of position i is 1 / log2(i + 1).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from recgym.evaluation import (
    average_precision,
    coverage,
    hit_rate_at_k,
    intra_list_diversity,
    item_popularity,
    mean_average_precision,
    ndcg_at_k,
    novelty,
    precision_at_k,
    recall_at_k,
)

NAN = np.nan
L2 = math.log2


def close(actual, expected) -> None:
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=1e-12, atol=1e-12
    )


# --------------------------------------------------------------------------- #
# precision@k
# --------------------------------------------------------------------------- #


def test_precision_by_hand():
    rel = [[1, 0, 1, 0, 1]]
    close(precision_at_k(rel, 1), [1 / 1])  # top 1 = [1]
    close(precision_at_k(rel, 3), [2 / 3])  # top 3 = [1, 0, 1]
    close(precision_at_k(rel, 5), [3 / 5])  # all five


def test_precision_all_relevant_and_none_relevant():
    close(precision_at_k([[1, 1, 1]], 3), [3 / 3])
    close(precision_at_k([[0, 0, 0]], 3), [0 / 3])  # no relevant item: 0, not NaN


def test_precision_fewer_candidates_than_k():
    # Two candidates, both relevant, k = 5.
    rel = [[1, 1]]
    close(precision_at_k(rel, 5), [2 / 5])  # strict (default): divide by k
    close(precision_at_k(rel, 5, strict=False), [2 / 2])  # divide by min(k, L) = 2
    # [1, 0, 1] with k = 10: strict 2/10, non-strict 2/3.
    close(precision_at_k([[1, 0, 1]], 10), [2 / 10])
    close(precision_at_k([[1, 0, 1]], 10, strict=False), [2 / 3])


def test_precision_empty_list_is_zero():
    close(precision_at_k([[NAN, NAN]], 3), [0.0])
    close(precision_at_k([[NAN, NAN]], 3, strict=False), [0.0])


def test_padding_forms_agree():
    # User 0 has 2 candidates, user 1 has 4.
    padded = [[1, 1, NAN, NAN], [0, 1, 0, 1]]
    ragged = [[1, 1], [0, 1, 0, 1]]
    with_lengths = np.array([[1, 1, 7, -3], [0, 1, 0, 1]], dtype=float)  # junk after lengths is ignored
    expected = [2 / 4, 2 / 4]  # strict, k = 4: 2 hits each
    close(precision_at_k(padded, 4), expected)
    close(precision_at_k(ragged, 4), expected)
    close(precision_at_k(with_lengths, 4, lengths=[2, 4]), expected)
    # Non-strict: 2/min(4,2) = 1 and 2/4.
    close(precision_at_k(ragged, 4, strict=False), [1.0, 0.5])


def test_precision_mean_keeps_zero_users():
    # [1, 0] -> 1/2, [0, 0] -> 0/2; mean = (0.5 + 0) / 2
    assert precision_at_k([[1, 0], [0, 0]], 2, reduce="mean") == pytest.approx(0.25)


# --------------------------------------------------------------------------- #
# recall@k and hit rate@k
# --------------------------------------------------------------------------- #


def test_recall_by_hand():
    # Default n_relevant = relevant count of the whole list = 2; top 2 holds 1.
    close(recall_at_k([[1, 0, 0, 1]], 2), [1 / 2])
    close(recall_at_k([[1, 0, 0, 1]], 4), [2 / 2])
    # Truncated retrieval list: the user has 4 relevant items in the candidate set.
    close(recall_at_k([[1, 0, 1]], 3, n_relevant=4), [2 / 4])
    # k larger than list: still 2 / 4.
    close(recall_at_k([[1, 0, 1]], 50, n_relevant=4), [2 / 4])


def test_recall_no_relevant_is_nan_and_skipped_in_mean():
    out = recall_at_k([[1, 0], [0, 0]], 2)
    close(out[:1], [1.0])
    assert np.isnan(out[1])
    # mean over users with a relevant item only: 1.0, not (1 + 0) / 2
    assert recall_at_k([[1, 0], [0, 0]], 2, reduce="mean") == pytest.approx(1.0)


def test_hit_rate_by_hand():
    rel = [[0, 0, 1], [1, 0, 0], [0, 0, 0]]
    out = hit_rate_at_k(rel, 2)
    close(out[:2], [0.0, 1.0])  # user 0's hit is at position 3 > 2
    assert np.isnan(out[2])  # no relevant item
    close(hit_rate_at_k(rel, 3)[:2], [1.0, 1.0])
    assert hit_rate_at_k(rel, 2, reduce="mean") == pytest.approx(0.5)  # (0 + 1) / 2
    # Relevant items exist outside the list (n_relevant = 1) but none inside: 0, not NaN.
    close(hit_rate_at_k([[0, 0]], 2, n_relevant=[1]), [0.0])


# --------------------------------------------------------------------------- #
# average precision and MAP
# --------------------------------------------------------------------------- #


def test_average_precision_by_hand():
    rel = [[1, 0, 1, 0, 1]]
    # Hits at 1, 3, 5: P@1 = 1, P@3 = 2/3, P@5 = 3/5; normaliser min(5, 3) = 3
    close(average_precision(rel, 5), [(1 + 2 / 3 + 3 / 5) / 3])  # = 34/45
    # k = 3: hits at 1, 3; normaliser min(3, 3) = 3
    close(average_precision(rel, 3), [(1 + 2 / 3) / 3])  # = 5/9
    # k = 2: hit at 1; normaliser min(2, 3) = 2
    close(average_precision(rel, 2), [1 / 2])
    # [0, 1, 1]: P@2 = 1/2, P@3 = 2/3; normaliser min(3, 2) = 2
    close(average_precision([[0, 1, 1]], 3), [(1 / 2 + 2 / 3) / 2])  # = 7/12


def test_average_precision_normaliser_uses_min_k_n_relevant():
    # Perfect top 3 while the user has 10 relevant items: min(3, 10) = 3 -> AP = 1.
    close(average_precision([[1, 1, 1]], 3, n_relevant=10), [(1 + 1 + 1) / 3])
    # Same list, k = 5 > L: normaliser min(5, 10) = 5, hits at 1..3 -> 3/5.
    close(average_precision([[1, 1, 1]], 5, n_relevant=10), [(1 + 1 + 1) / 5])


def test_average_precision_edge_cases():
    assert np.isnan(average_precision([[0, 0, 0]], 3)[0])  # no relevant item
    close(average_precision([[1, 1, 1, 1]], 4), [1.0])  # all relevant
    # k > list length, one relevant at position 2: P@2 = 1/2, normaliser min(10, 1) = 1
    close(average_precision([[0, 1]], 10), [1 / 2])


def test_mean_average_precision():
    rel = [[1, 0, 1, 0, 1], [0, 1, 1, NAN, NAN], [0, 0, 0, 0, 0]]
    # AP = 34/45 and 7/12; the third user has no relevant item and is skipped.
    expected = (34 / 45 + 7 / 12) / 2
    assert mean_average_precision(rel, 5) == pytest.approx(expected)
    assert average_precision(rel, 5, reduce="mean") == pytest.approx(expected)


# --------------------------------------------------------------------------- #
# NDCG@k
# --------------------------------------------------------------------------- #


def test_ndcg_binary_by_hand():
    # Relevant at positions 2 and 4; N = 2.
    # DCG  = 1/log2(3) + 1/log2(5)            = 0.630930 + 0.430677 = 1.061606
    # IDCG = 1/log2(2) + 1/log2(3)            = 1        + 0.630930 = 1.630930
    dcg = 1 / L2(3) + 1 / L2(5)
    idcg = 1 / L2(2) + 1 / L2(3)
    close(ndcg_at_k([[0, 1, 0, 1]], 4), [dcg / idcg])
    assert dcg / idcg == pytest.approx(0.650921, abs=1e-6)
    # k = 2: DCG = 1/log2(3); IDCG = 1/log2(2) + 1/log2(3) (min(2, N=2) = 2 terms)
    close(ndcg_at_k([[0, 1, 0, 1]], 2), [(1 / L2(3)) / (1 + 1 / L2(3))])


def test_ndcg_all_relevant_and_none_relevant():
    close(ndcg_at_k([[1, 1, 1]], 3), [1.0])
    assert np.isnan(ndcg_at_k([[0, 0, 0]], 3)[0])


def test_ndcg_k_larger_than_list():
    # [1, 0], k = 10, N = 1: DCG = 1/log2(2) = 1 = IDCG.
    close(ndcg_at_k([[1, 0]], 10), [1.0])
    # With 3 relevant items in the candidate set, IDCG has min(10, 3) = 3 terms
    # (it depends on N, not on the list length):
    # IDCG = 1 + 1/log2(3) + 1/log2(4) = 1 + 0.630930 + 0.5 = 2.130930
    close(ndcg_at_k([[1, 0]], 10, n_relevant=3), [1 / (1 + 1 / L2(3) + 1 / L2(4))])


def test_ndcg_graded_by_hand():
    # Gains 2^rel - 1 for rel = [3, 2, 3, 0, 1, 2] -> [7, 3, 7, 0, 1, 3]
    # DCG  = 7/log2(2) + 3/log2(3) + 7/log2(4) + 0/log2(5) + 1/log2(6) + 3/log2(7)
    #      = 7 + 1.892789 + 3.5 + 0 + 0.386853 + 1.068622 = 13.848264
    # Ideal order [3, 3, 2, 2, 1, 0] -> gains [7, 7, 3, 3, 1, 0]
    # IDCG = 7 + 7/log2(3) + 3/log2(4) + 3/log2(5) + 1/log2(6) + 0
    #      = 7 + 4.416508 + 1.5 + 1.292030 + 0.386853 = 14.595391
    dcg = 7 + 3 / L2(3) + 7 / L2(4) + 0 + 1 / L2(6) + 3 / L2(7)
    idcg = 7 + 7 / L2(3) + 3 / L2(4) + 3 / L2(5) + 1 / L2(6)
    close(ndcg_at_k([[3, 2, 3, 0, 1, 2]], 6, gains="graded"), [dcg / idcg])
    assert dcg / idcg == pytest.approx(0.948811, abs=1e-6)


def test_ndcg_graded_vs_binary():
    rel = [[2, 0, 1]]
    # Binary: gains [1, 0, 1]; DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3)
    close(ndcg_at_k(rel, 3), [1.5 / (1 + 1 / L2(3))])
    # Graded: gains [3, 0, 1]; DCG = 3 + 1/log2(4) = 3.5; ideal [2, 1, 0] -> IDCG = 3 + 1/log2(3)
    close(ndcg_at_k(rel, 3, gains="graded"), [3.5 / (3 + 1 / L2(3))])
    # On 0/1 relevance, 2^rel - 1 = rel: the two forms coincide.
    rel01 = [[0, 1, 1, 0, 1], [1, 0, 0, 0, 0]]
    close(ndcg_at_k(rel01, 4, gains="graded"), ndcg_at_k(rel01, 4))


def test_ndcg_graded_with_ideal_relevance():
    # Ranked [2, 0]; the user's full pool is [3, 2, 0] (the 3 was not retrieved).
    # DCG = (2^2-1)/1 + 0 = 3; IDCG@2 = (2^3-1)/1 + (2^2-1)/log2(3) = 7 + 1.892789
    close(
        ndcg_at_k([[2, 0]], 2, gains="graded", ideal_relevance=[[3, 2, 0]]),
        [3 / (7 + 3 / L2(3))],
    )
    # The n_relevant consistency check passes when it matches the pool (2 positive).
    close(
        ndcg_at_k([[2, 0]], 2, gains="graded", ideal_relevance=[[3, 2, 0]], n_relevant=[2]),
        [3 / (7 + 3 / L2(3))],
    )


def test_ndcg_mean_skips_no_relevant_users():
    rel = [[1, 0], [0, 1], [0, 0]]
    # User 0: 1; user 1: (1/log2 3) / 1; user 2: NaN (skipped)
    assert ndcg_at_k(rel, 2, reduce="mean") == pytest.approx((1 + 1 / L2(3)) / 2)


def test_drr_rerank_ndcg_is_high_even_for_a_poor_order():
    # Re-ranking 5 rated items of which 4 are liked: the worst possible order
    # still gives NDCG@5 = (1/log2 3 + 1/log2 4 + 1/log2 5 + 1/log2 6) / (1 + 1/log2 3 + 1/log2 4 + 1/log2 5)
    worst = ndcg_at_k([[0, 1, 1, 1, 1]], 5)[0]
    expected = (1 / L2(3) + 1 / L2(4) + 1 / L2(5) + 1 / L2(6)) / (1 + 1 / L2(3) + 1 / L2(4) + 1 / L2(5))
    assert worst == pytest.approx(expected)
    assert worst > 0.75


# --------------------------------------------------------------------------- #
# coverage, diversity, novelty
# --------------------------------------------------------------------------- #


def test_coverage_by_hand():
    recs = [[0, 1, 2], [2, 3, NAN]]
    # union {0, 1, 2, 3} of 10 items
    assert coverage(recs, 10) == pytest.approx(4 / 10)
    # top 1: {0, 2}
    assert coverage(recs, 10, k=1) == pytest.approx(2 / 10)
    # duplicates count once; ragged input
    assert coverage([[5, 5], [5]], 10) == pytest.approx(1 / 10)
    assert coverage(np.array([[0, 1], [2, 3]]), 4) == pytest.approx(4 / 4)


FLAGS = np.array(
    [
        [1, 1, 0],  # item 0: genres {A, B}
        [0, 1, 0],  # item 1: {B}
        [0, 0, 1],  # item 2: {C}
        [0, 0, 0],  # item 3: no genre
    ],
    dtype=float,
)


def test_intra_list_diversity_jaccard_by_hand():
    recs = [[0, 1, 2], [3, 3, NAN], [3, 0, NAN], [0, NAN, NAN], [0, 0, NAN]]
    out = intra_list_diversity(recs, FLAGS)
    # [0, 1, 2]: d(0,1) = 1 - |{B}|/|{A,B}| = 1 - 1/2; d(0,2) = 1 - 0/3; d(1,2) = 1 - 0/2
    close(out[0], (0.5 + 1 + 1) / 3)
    close(out[1], 0.0)  # two featureless items: J(∅, ∅) = 1 -> distance 0
    close(out[2], 1.0)  # featureless vs {A, B}: J = 0/2 -> distance 1
    assert np.isnan(out[3])  # one item: no pair
    close(out[4], 0.0)  # repeated item
    # k = 2 keeps [0, 1] for the first user: 0.5
    close(intra_list_diversity(recs, FLAGS, k=2)[0], 0.5)
    # mean over the 4 defined users
    expected = ((2.5 / 3) + 0 + 1 + 0) / 4
    assert intra_list_diversity(recs, FLAGS, reduce="mean") == pytest.approx(expected)


def test_intra_list_diversity_cosine_by_hand():
    # cos(item0, item1) = (1*0 + 1*1 + 0*0) / (sqrt(2) * 1) = 1/sqrt(2)
    # cos(item0, item2) = 0; cos(item1, item2) = 0
    out = intra_list_diversity([[0, 1, 2], [3, 3], [3, 1]], FLAGS, distance="cosine")
    close(out[0], ((1 - 1 / math.sqrt(2)) + 1 + 1) / 3)
    close(out[1], 0.0)  # both zero vectors
    close(out[2], 1.0)  # zero vs non-zero
    # real-valued features: (1, 0) vs (-1, 0) -> cos = -1 -> distance 2
    close(intra_list_diversity([[0, 1]], [[1.0, 0.0], [-1.0, 0.0]], distance="cosine"), [2.0])


def test_item_popularity_by_hand():
    users = [0, 0, 1, 2, 3]
    items = [0, 0, 0, 1, 2]  # user 0 rated item 0 twice: counted once
    # item 0: users {0, 1} -> 2/4; item 1: {2} -> 1/4; item 2: {3} -> 1/4; item 3: none -> 0
    close(item_popularity(users, items, 4, 4), [2 / 4, 1 / 4, 1 / 4, 0 / 4])
    # add-one: (count + 1) / (4 + 1)
    close(item_popularity(users, items, 4, 4, pseudo_count=1), [3 / 5, 2 / 5, 2 / 5, 1 / 5])


def test_novelty_by_hand():
    pop = [1.0, 0.5, 0.25, 0.125, 0.0]
    out = novelty([[0, 1, 2], [3, NAN, NAN], [NAN, NAN, NAN]], pop)
    # -log2(1) = 0, -log2(1/2) = 1, -log2(1/4) = 2, -log2(1/8) = 3
    close(out[0], (0 + 1 + 2) / 3)
    close(out[1], 3 / 1)
    assert np.isnan(out[2])  # empty list
    close(novelty([[0, 1, 2]], pop, k=2), [(0 + 1) / 2])
    assert novelty([[0, 1, 2], [3]], pop, reduce="mean") == pytest.approx((1 + 3) / 2)
    with pytest.raises(ValueError, match="popularity 0"):
        novelty([[4]], pop)


# --------------------------------------------------------------------------- #
# vectorised == per-user loop
# --------------------------------------------------------------------------- #


def _naive(rel: list[float], k: int, n_rel: int) -> dict[str, float]:
    """Straight-line single-user reference implementation."""
    top = rel[:k]
    hits = [1.0 if r > 0 else 0.0 for r in top]
    nan = float("nan")
    ap = sum(sum(hits[: i + 1]) / (i + 1) * h for i, h in enumerate(hits))
    dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
    idcg = sum(1 / math.log2(i + 2) for i in range(min(k, n_rel)))
    g_dcg = sum((2**r - 1) / math.log2(i + 2) for i, r in enumerate(top))
    g_idcg = sum((2**r - 1) / math.log2(i + 2) for i, r in enumerate(sorted(rel, reverse=True)[:k]))
    return {
        "precision": sum(hits) / k,
        "recall": sum(hits) / n_rel if n_rel else nan,
        "hit": float(sum(hits) > 0) if n_rel else nan,
        "ap": ap / min(k, n_rel) if n_rel else nan,
        "ndcg": dcg / idcg if n_rel else nan,
        "ndcg_graded": g_dcg / g_idcg if g_idcg > 0 else nan,
    }


def test_vectorised_equals_per_user_loop():
    rng = np.random.default_rng(0)
    n_users, width = 40, 12
    lengths = rng.integers(0, width + 1, size=n_users)
    graded = rng.integers(0, 4, size=(n_users, width)).astype(float) * (rng.random((n_users, width)) < 0.5)
    padded = graded.copy()
    padded[np.arange(width)[None, :] >= lengths[:, None]] = np.nan
    ragged = [graded[u, : lengths[u]] for u in range(n_users)]
    for k in (1, 3, 5, 20):
        batch = {
            "precision": precision_at_k(padded, k),
            "recall": recall_at_k(padded, k),
            "hit": hit_rate_at_k(padded, k),
            "ap": average_precision(padded, k),
            "ndcg": ndcg_at_k(padded, k),
            "ndcg_graded": ndcg_at_k(padded, k, gains="graded"),
        }
        close(batch["ap"], average_precision(ragged, k))
        close(batch["ndcg_graded"], ndcg_at_k(graded, k, gains="graded", lengths=lengths))
        for u in range(n_users):
            row = list(ragged[u])
            ref = _naive(row, k, sum(r > 0 for r in row))
            single = {
                "precision": precision_at_k([row], k)[0],
                "recall": recall_at_k([row], k)[0],
                "hit": hit_rate_at_k([row], k)[0],
                "ap": average_precision([row], k)[0],
                "ndcg": ndcg_at_k([row], k)[0],
                "ndcg_graded": ndcg_at_k([row], k, gains="graded")[0],
            }
            for name, values in batch.items():
                np.testing.assert_allclose(values[u], single[name], rtol=1e-12, err_msg=f"{name} u={u} k={k}")
                np.testing.assert_allclose(values[u], ref[name], rtol=1e-12, err_msg=f"{name} u={u} k={k}")


def test_beyond_accuracy_vectorised_equals_per_user_loop():
    rng = np.random.default_rng(1)
    n_items, n_users, width = 15, 20, 6
    feats = (rng.random((n_items, 5)) < 0.4).astype(float)
    pop = rng.uniform(0.05, 1.0, size=n_items)
    ids = rng.integers(0, n_items, size=(n_users, width))
    lengths = rng.integers(0, width + 1, size=n_users)
    ragged = [ids[u, : lengths[u]] for u in range(n_users)]
    for dist in ("jaccard", "cosine"):
        batch = intra_list_diversity(ids, feats, lengths=lengths, distance=dist)
        for u in range(n_users):
            close(batch[u], intra_list_diversity([ragged[u]], feats, distance=dist)[0])
    batch = novelty(ragged, pop)
    for u in range(n_users):
        close(batch[u], novelty([ragged[u]], pop)[0])


# --------------------------------------------------------------------------- #
# input validation
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "3"])
def test_bad_k(k):
    with pytest.raises(ValueError, match="k must"):
        precision_at_k([[1, 0]], k)
    with pytest.raises(ValueError, match="k must"):
        ndcg_at_k([[1, 0]], k)


@pytest.mark.parametrize(
    "rel, match",
    [
        ([[1, NAN, 1]], "NaN is only allowed as trailing padding"),
        ([[1, -1, 0]], "negative gains"),
        ([[1, np.inf]], "finite"),
        ([1, 0, 1], "2-D"),
        (np.zeros((2, 2, 2)), "2-D"),
        ([[1, 0], [0]], None),  # ragged: valid, no error
    ],
)
def test_bad_relevance(rel, match):
    if match is None:
        recall_at_k(rel, 2)
        return
    with pytest.raises(ValueError, match=match):
        recall_at_k(rel, 2)


def test_nan_inside_lengths_is_an_error_and_beyond_is_ignored():
    with pytest.raises(ValueError, match="not padding"):
        precision_at_k([[1, NAN, 0]], 2, lengths=[3])
    close(precision_at_k([[1, NAN, 0]], 2, lengths=[1]), [1 / 2])
    # Ragged rows follow the same rule: trailing NaN pads, inner NaN is an error.
    close(precision_at_k([[1, NAN], [1, 1, 0]], 2), [1 / 2, 2 / 2])
    with pytest.raises(ValueError, match="trailing padding"):
        precision_at_k([[NAN, 1], [1, 1, 0]], 2)


def test_bad_lengths_and_n_relevant():
    with pytest.raises(ValueError, match="lengths"):
        precision_at_k([[1, 0]], 2, lengths=[3])
    with pytest.raises(ValueError, match="lengths"):
        precision_at_k([[1, 0]], 2, lengths=[1, 1])
    with pytest.raises(ValueError, match="smaller than"):
        recall_at_k([[1, 1, 0]], 2, n_relevant=[1])
    with pytest.raises(ValueError, match="non-negative integers"):
        recall_at_k([[1, 0]], 2, n_relevant=[1.5])
    with pytest.raises(ValueError, match="shape"):
        recall_at_k([[1, 0]], 2, n_relevant=[1, 1])


def test_bad_options():
    with pytest.raises(ValueError, match="reduce"):
        precision_at_k([[1]], 1, reduce="sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gains"):
        ndcg_at_k([[1]], 1, gains="linear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ideal_relevance"):
        ndcg_at_k([[1]], 1, ideal_relevance=[[1]])  # binary gains take n_relevant
    with pytest.raises(ValueError, match="does not cover"):
        ndcg_at_k([[3]], 1, gains="graded", ideal_relevance=[[1]])
    with pytest.raises(ValueError, match="n_relevant"):
        ndcg_at_k([[2, 0]], 2, gains="graded", n_relevant=[3])


def test_bad_item_inputs():
    with pytest.raises(ValueError, match="item ids"):
        coverage([[0, 10]], 10)
    with pytest.raises(ValueError, match="item ids"):
        coverage([[0.5]], 10)
    with pytest.raises(ValueError, match="n_items"):
        coverage([[0]], 0)
    with pytest.raises(ValueError, match="0/1"):
        intra_list_diversity([[0, 1]], [[0.5], [1.0]])
    with pytest.raises(ValueError, match="distance"):
        intra_list_diversity([[0, 1]], FLAGS, distance="euclid")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="popularity"):
        novelty([[0]], [1.5])


def test_mean_of_all_nan_is_nan_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(recall_at_k([[0, 0]], 2, reduce="mean"))
        assert math.isnan(mean_average_precision([], 2))
