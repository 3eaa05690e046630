"""Item content features for the side-information encoders (``fdsa``, ``prnn``).

:func:`item_content_features` turns a :class:`~recgym.data.rating_log.RatingLog`'s
item side information into one ``(n_items, F)`` float32 matrix:

* **genres** (MovieLens, the synthetic log): the 0/1 genre flags
  (``log.item_genres()``), one column per genre;
* **words** of the title (MovieLens; the year in brackets dropped) or of the
  joke (Jester with its texts): a binary bag of words over a small vocabulary
  (lower-cased alphanumeric tokens of at least two characters, minus a few
  English stop words, kept if they occur in at least ``min_count`` items and
  in at most ``max_share`` of them, the ``max_words`` most frequent), each
  item's word part L2-normalised so long texts do not outweigh the genres.

Items without any feature have a zero row. A log with neither genres nor
texts raises ``ValueError``: pass a matrix of your own to the encoder.

>>> features = item_content_features(scenario.log)   # doctest: +SKIP
>>> agents.make("dqn", env, encoder="prnn", encoder_kwargs={"item_features": features})  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import torch

from recgym.data.rating_log import RatingLog

#: vocabulary size cap (ML-100K titles give a few hundred words seen in >= 2 titles).
DEFAULT_MAX_WORDS = 500
#: a word must occur in at least this many items (a word of one item says nothing shared).
DEFAULT_MIN_COUNT = 2
#: and in at most this share of the items (a word in every title says nothing either).
DEFAULT_MAX_SHARE = 0.5

_TOKEN = re.compile(r"[a-z0-9]{2,}")
_YEAR = re.compile(r"\(\d{4}\)\s*$")
_STOP_WORDS = frozenset(
    "a an and are as at be but by for from has he her his i in is it its of on or she that the their "
    "there they this to was were what when where which who will with you your".split()
)


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric tokens of >= 2 characters, stop words dropped."""
    return [t for t in _TOKEN.findall(str(text).lower()) if t not in _STOP_WORDS]


def item_texts(log: RatingLog) -> list[str] | None:
    """One text per item: the title without its year (MovieLens) or the joke (Jester); None without texts."""
    features = log.item_features
    if features is None:
        return None
    for column in ("text", "title"):
        if column in features.columns:
            texts = features[column].reindex(range(log.n_items)).fillna("").astype(str)
            return [_YEAR.sub("", t) for t in texts]
    return None


def bag_of_words(
    texts: list[str],
    max_words: int = DEFAULT_MAX_WORDS,
    min_count: int = DEFAULT_MIN_COUNT,
    max_share: float = DEFAULT_MAX_SHARE,
) -> tuple[np.ndarray, list[str]]:
    """Binary bag of words ``(len(texts), V)`` float32 with L2-normalised rows, and its vocabulary.

    :param texts: one text per item.
    :param max_words: keep the ``max_words`` words found in most items (ties: alphabetical).
    :param min_count: drop words found in fewer items.
    :param max_share: drop words found in more than this share of the items.
    """
    token_sets = [set(tokenize(t)) for t in texts]
    counts = Counter(word for tokens in token_sets for word in tokens)
    limit = max_share * len(texts)
    kept = [w for w, c in counts.items() if min_count <= c <= limit]
    vocabulary = sorted(sorted(kept), key=lambda w: -counts[w])[:max_words]
    column = {w: j for j, w in enumerate(vocabulary)}
    matrix = np.zeros((len(texts), len(vocabulary)), dtype=np.float32)
    for i, tokens in enumerate(token_sets):
        matrix[i, [column[w] for w in tokens if w in column]] = 1.0
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1.0), vocabulary


def item_content_features(
    log: RatingLog,
    genres: bool = True,
    words: bool = True,
    max_words: int = DEFAULT_MAX_WORDS,
    min_count: int = DEFAULT_MIN_COUNT,
    max_share: float = DEFAULT_MAX_SHARE,
) -> np.ndarray:
    """``(n_items, F)`` float32 content features: genre flags, then the text's bag of words.

    :param log: the rating log whose ``item_features`` to read.
    :param genres: include the genre flags (when the log has genres).
    :param words: include the title / joke words (when the log has texts).
    :param max_words: see :func:`bag_of_words`.
    :param min_count: see :func:`bag_of_words`.
    :param max_share: see :func:`bag_of_words`.
    :raises ValueError: when no feature is left (no genres and no texts).
    """
    blocks = []
    flags = log.item_genres() if genres else None
    if flags is not None and flags.shape[1] > 0:
        blocks.append(flags.astype(np.float32))
    texts = item_texts(log) if words else None
    if texts is not None:
        matrix, vocabulary = bag_of_words(texts, max_words, min_count, max_share)
        if vocabulary:
            blocks.append(matrix)
    if not blocks:
        raise ValueError(
            f"log {log.name!r} has no item genres or texts to build content features from "
            f"(item_features columns: {[] if log.item_features is None else list(log.item_features.columns)}); "
            "pass an (n_items, F) item_features array of your own"
        )
    return np.concatenate(blocks, axis=1)


def content_kwargs(encoder_class: type, log: RatingLog) -> dict[str, np.ndarray]:
    """``{"item_features": (n_items, F) array}`` for an encoder class whose constructor takes it, else ``{}``.

    Content-aware encoders (FDSA, p-RNN) need the dataset's item content; whoever builds one
    from a scenario (an agent, the pretraining pipeline) passes this down.

    :raises ValueError: the encoder needs content and the log has none.
    """
    import inspect

    if "item_features" not in inspect.signature(encoder_class.__init__).parameters:
        return {}
    try:
        return {"item_features": item_content_features(log)}
    except ValueError as err:
        raise ValueError(f"encoder {getattr(encoder_class, 'name', encoder_class.__name__)!r} needs item content "
                         f"features: {err}; or choose an encoder without side information") from None


def feature_table(item_features: np.ndarray, n_items: int, what: str = "item_features") -> torch.Tensor:
    """``[n_items + 1, F]`` float32 tensor of ``item_features`` with a zero row for the padding id.

    :raises ValueError: for a wrong shape, no column, or non-finite values.
    """
    array = np.asarray(item_features, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != n_items or array.shape[1] < 1:
        raise ValueError(
            f"{what} must be an (n_items, F) array with n_items = {n_items} and F >= 1, got shape {array.shape}; "
            "build one with state_encoders.features.item_content_features(scenario.log)"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or infinite values")
    return torch.from_numpy(np.vstack([array, np.zeros((1, array.shape[1]), np.float32)]))
