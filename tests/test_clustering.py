"""recgym's one k-means (recgym/clustering.py): both callers keep the clusters they had before sharing it.

The labels below were recorded from the two k-means that existed before (``agents.categories.kmeans``,
Euclidean with k-means++ seeding, and the spherical one inside ``simulators.behavior.embedding_topics``)
at commit e5d1c91; DEERS's and the topic rules' categories and the behaviour simulators' topics for logs
without genres (Jester) come from them, so any change here moves those results.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.categories import item_categories
from recgym.clustering import kmeans
from simulators.behavior import embedding_topics


def _points() -> np.ndarray:
    points = np.random.default_rng(23).normal(size=(48, 6))
    points[5] = 0.0  # a zero row: the spherical k-means leaves it at zero length
    points[7] = points[8]  # duplicates
    return points


def _digits(labels: np.ndarray) -> str:
    return "".join(map(str, labels))


RECORDED = {  # (metric, seed) -> labels for k = 6
    ("euclidean", 0): "323402344501432442022224242440200533522402245252",
    ("euclidean", 1): "244404233153320414245001040315425145040100431505",
    ("spherical", 0): "341120300520023010244351013014424214543123005454",
    ("spherical", 1): "453000422042241225033110521203543033131201522313",
}


@pytest.mark.parametrize("metric, seed", sorted(RECORDED))
def test_kmeans_labels_are_the_ones_recorded_before_the_two_kmeans_became_one(metric, seed):
    if metric == "euclidean":  # agents.categories' default: 50 iterations
        labels, centroids = kmeans(_points(), 6, seed=seed)
    else:  # embedding_topics': 30 iterations
        labels, centroids = kmeans(_points(), 6, seed=seed, n_iter=30, metric="spherical")
        np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0)
    assert _digits(labels) == RECORDED[(metric, seed)]
    assert centroids.shape == (6, 6)


def test_embedding_topics_are_the_recorded_spherical_clusters():
    topics = embedding_topics(_points(), 20, seed=2)
    assert topics.shape == (48, 20) and topics.dtype == np.float32 and (topics.sum(axis=1) == 1).all()
    assert topics.argmax(axis=1).tolist() == [
        17, 6, 11, 16, 5, 0, 17, 3, 3, 4, 10, 3, 12, 17, 0, 19, 8, 14, 16, 11, 14, 13, 13, 16, 1, 9, 0, 8, 9, 15, 14,
        18, 15, 4, 11, 7, 2, 6, 0, 8, 5, 0, 1, 8, 12, 10, 2, 14]
    # the Euclidean k-means on the same points, k = 20: an emptied cluster takes the farthest point
    assert kmeans(_points(), 20, seed=2)[0].tolist() == [
        19, 7, 3, 3, 0, 15, 19, 11, 11, 6, 16, 8, 1, 19, 4, 3, 18, 15, 14, 3, 12, 4, 4, 0, 10, 15, 4, 11, 18, 9, 15, 5,
        9, 13, 17, 3, 2, 7, 4, 18, 0, 16, 15, 1, 1, 16, 2, 15]


class _NoGenres:
    """A rating log without genres (as Jester's): its categories are k-means clusters of the item factors."""

    def item_genres(self) -> None:
        return None


def test_deers_categories_without_genres_are_the_recorded_clusters():
    factors = np.random.default_rng(5).normal(size=(200, 8))
    flags, source = item_categories(_NoGenres(), factors, seed=3)
    assert source == "kmeans" and flags.shape == (200, 10) and (flags.sum(axis=1) == 1).all()
    assert _digits(flags.argmax(axis=1)) == (
        "70701012211918728841180097659797988997812161716281792779286677191161710707628563778791151762686761996826"
        "127051755793722978950662927992857178858025158979212207221607522972895196017969025667896032001520")


def test_kmeans_refuses_an_unknown_metric_and_no_points():
    with pytest.raises(ValueError, match="unknown k-means metric 'cosine'; choose one of euclidean, spherical"):
        kmeans(_points(), 3, metric="cosine")
    with pytest.raises(ValueError, match="at least one point"):
        kmeans(np.zeros((0, 3)), 3)


def test_k_is_clipped_to_the_number_of_points():
    labels, centroids = kmeans(_points()[:4], 10, seed=0)
    assert centroids.shape == (4, 6) and sorted(labels.tolist()) == [0, 1, 2, 3]
