"""Offline top-k ranking and beyond-accuracy metrics, vectorised over users.

Conventions (shared by every function here; ``docs/metrics.md`` has the long
form):

* **Input.** A ranked list per user, given as a 2-D array ``(n_users, L)`` —
  relevance of the items in ranked order for the accuracy metrics, item ids for
  :func:`coverage`, :func:`intra_list_diversity` and :func:`novelty` — or a
  list of 1-D arrays (ragged). Lists shorter than ``L`` are padded either with
  trailing NaN or by passing ``lengths`` (entries at positions ``>= lengths[u]``
  are then ignored, whatever they hold). A NaN *before* a non-NaN is an error,
  not padding. Position ``i`` is 1-based in the formulas.
* **Relevance.** Non-negative and finite. The binary metrics (precision,
  recall, hit rate, AP, binary NDCG) count an item as relevant iff
  ``rel > 0``; pass relevance (``rating >= 4`` -> 1), not raw 1..5 ratings.
* **Cut-off.** ``k`` is an integer ``>= 1``; the top ``n_u = min(k, L_u)``
  items of user ``u`` are scored, so ``k`` larger than the list is allowed.
* **n_relevant.** The number of relevant items user ``u`` has in the candidate
  set. Default: the number of ``rel > 0`` entries in the *whole* given list
  (not only the top ``k``), which is exact when the list ranks the full
  candidate set (the DRR re-ranking protocol). Pass it when the list is a
  truncated top-k retrieved from a larger set.
* **No relevant item** (``n_relevant == 0``): precision is 0 (nothing relevant
  retrieved, a well-defined 0/k); recall, hit rate, AP and NDCG are NaN
  (0/0, undefined) and ``reduce="mean"`` skips NaN users. Beyond-accuracy
  metrics are NaN where undefined (diversity of < 2 items, novelty of 0 items).
* **Output.** Per-user ``float64`` arrays; ``reduce="mean"`` returns the mean
  over users as a Python float, skipping NaN (NaN if every user is NaN or
  there are no users).
"""

from __future__ import annotations

from typing import Literal, Sequence, Union

import numpy as np
import numpy.typing as npt

__all__ = [
    "average_precision",
    "coverage",
    "hit_rate_at_k",
    "intra_list_diversity",
    "item_popularity",
    "mean_average_precision",
    "ndcg_at_k",
    "novelty",
    "precision_at_k",
    "recall_at_k",
    "relevance_from_items",
]

RankedInput = Union[npt.ArrayLike, Sequence[npt.ArrayLike]]
Reduce = Literal["none", "mean"]
PerUser = Union[np.ndarray, float]


# --------------------------------------------------------------------------- #
# Input handling
# --------------------------------------------------------------------------- #


def _check_k(k: int) -> int:
    # bool is an int subclass; k=True is almost certainly a bug.
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return int(k)


def _is_ragged(values: object) -> bool:
    """A list/tuple whose entries are themselves sequences: one list per user."""
    if not isinstance(values, (list, tuple)):
        return False
    if len(values) == 0:
        return True
    return all(np.ndim(v) >= 1 for v in values)


def _padded(
    values: RankedInput, lengths: npt.ArrayLike | None, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Bring ranked lists to a ``(n_users, L)`` float array and per-user lengths.

    Padding positions are returned as 0 so downstream arithmetic needs no NaN
    handling; callers use ``lengths`` to tell real entries from padding.
    """
    if _is_ragged(values):
        rows = []
        for u, v in enumerate(values):  # type: ignore[arg-type]
            row = np.asarray(v, dtype=np.float64)
            if row.ndim != 1:
                raise ValueError(f"{what}: ragged entry {u} must be 1-D, got shape {row.shape}")
            rows.append(row)
        # Short rows become trailing NaN, so a ragged list, a NaN-padded nested
        # list and a NaN-padded array all go through the same length rule below.
        width = max((r.size for r in rows), default=0)
        arr = np.full((len(rows), width), np.nan)
        for u, row in enumerate(rows):
            arr[u, : row.size] = row
    else:
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what}: cannot be read as a numeric array ({exc})") from exc
        if arr.ndim != 2:
            raise ValueError(
                f"{what}: expected a 2-D array (n_users, L) or a list of 1-D arrays, "
                f"got shape {arr.shape}; wrap a single user's list as [list]"
            )
        arr = arr.copy()
    n_users, width = arr.shape
    pos = np.arange(width)

    if lengths is None:
        nan = np.isnan(arr)
        # Length = index of the first NaN; anything non-NaN after it means the
        # NaN was not padding but a missing value.
        # (argmax of a zero-width axis raises, hence the width guard.)
        first_nan = (
            np.where(nan.any(axis=1), nan.argmax(axis=1), width) if width else np.zeros(n_users, np.int64)
        )
        if np.any(~nan & (pos[None, :] >= first_nan[:, None])):
            bad = int(np.flatnonzero((~nan & (pos[None, :] >= first_nan[:, None])).any(axis=1))[0])
            raise ValueError(
                f"{what}: NaN is only allowed as trailing padding; user {bad} has a value after a NaN"
            )
        lens = first_nan.astype(np.int64)
    else:
        lens_f = np.asarray(lengths)
        if lens_f.shape != (n_users,):
            raise ValueError(f"{what}: lengths must have shape ({n_users},), got {lens_f.shape}")
        if lens_f.size and (
            not np.issubdtype(lens_f.dtype, np.number)
            or np.any(lens_f != np.round(lens_f))
            or np.any(lens_f < 0)
            or np.any(lens_f > width)
        ):
            raise ValueError(f"{what}: lengths must be integers in [0, {width}]")
        lens = lens_f.astype(np.int64)

    valid = pos[None, :] < lens[:, None]
    if np.isnan(arr[valid]).any():
        bad = int(np.flatnonzero((np.isnan(arr) & valid).any(axis=1))[0])
        raise ValueError(f"{what}: NaN within the first lengths[u] entries (user {bad}) is not padding")
    if np.isinf(arr[valid]).any():
        raise ValueError(f"{what}: values must be finite")
    arr[~valid] = 0.0
    return arr, lens


class _Ranked:
    """Relevance lists, truncated at ``k``, plus what the metrics need."""

    def __init__(
        self,
        ranked_relevance: RankedInput,
        k: int,
        n_relevant: npt.ArrayLike | None,
        lengths: npt.ArrayLike | None,
    ) -> None:
        self.k = _check_k(k)
        full, lens = _padded(ranked_relevance, lengths, "ranked_relevance")
        if (full < 0).any():
            raise ValueError("ranked_relevance: relevance must be >= 0 (negative gains are not allowed)")
        self.full = full
        self.lengths = lens
        self.n_users = full.shape[0]
        # Padding is already 0, hence "not relevant"; no mask needed for sums.
        self.rel = full[:, : self.k]
        self.binary = (self.rel > 0).astype(np.float64)
        self.n_ranked = np.minimum(lens, self.k)  # n_u = min(k, L_u)
        observed = (full > 0).sum(axis=1)
        if n_relevant is None:
            self.n_relevant = observed.astype(np.int64)
            self.n_relevant_given = False
        else:
            nr = np.asarray(n_relevant)
            if nr.ndim == 0:
                nr = np.full(self.n_users, nr)
            if nr.shape != (self.n_users,):
                raise ValueError(
                    f"n_relevant must be a scalar or have shape ({self.n_users},), got {nr.shape}"
                )
            if nr.size and (
                not np.issubdtype(nr.dtype, np.number)
                or not np.all(np.isfinite(nr))
                or np.any(nr != np.round(nr))
                or np.any(nr < 0)
            ):
                raise ValueError("n_relevant must hold non-negative integers")
            nr = nr.astype(np.int64)
            # Fewer relevant items in the candidate set than visible in the list
            # is a contradiction and would give recall > 1.
            if np.any(nr < observed):
                bad = int(np.flatnonzero(nr < observed)[0])
                raise ValueError(
                    f"n_relevant[{bad}]={nr[bad]} is smaller than the {observed[bad]} relevant "
                    "items in that user's list"
                )
            self.n_relevant = nr
            self.n_relevant_given = True
        # 1 / log2(i + 1) for 1-based positions i = 1..k.
        self.discount = 1.0 / np.log2(np.arange(2, self.rel.shape[1] + 2))


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den == 0 (the undefined 0/0 cases)."""
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _reduce(values: np.ndarray, reduce: Reduce) -> PerUser:
    if reduce == "none":
        return values
    if reduce == "mean":
        finite = values[~np.isnan(values)]
        # Explicit instead of np.nanmean: no RuntimeWarning when all are NaN.
        return float(finite.mean()) if finite.size else float("nan")
    raise ValueError(f"reduce must be 'none' or 'mean', got {reduce!r}")


def _item_lists(
    recommended: RankedInput, k: int | None, lengths: npt.ArrayLike | None, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """Item-id lists as an int array (padding = 0) and per-user lengths after top-k."""
    ids, lens = _padded(recommended, lengths, "recommended")
    if k is not None:
        k = _check_k(k)
        ids = ids[:, :k]
        lens = np.minimum(lens, k)
    valid = np.arange(ids.shape[1])[None, :] < lens[:, None]
    vals = ids[valid]
    if np.any(vals != np.round(vals)) or np.any(vals < 0) or np.any(vals >= n_items):
        raise ValueError(f"recommended: item ids must be integers in [0, {n_items})")
    return ids.astype(np.int64), lens


def relevance_from_items(
    ranked_items: Sequence[npt.ArrayLike], relevant_items: Sequence[npt.ArrayLike]
) -> list[np.ndarray]:
    """Binary relevance lists (1.0 relevant, 0.0 not) of ranked item lists, refusing repeated items.

    A ranked list that shows an item twice is not a ranking of candidates (a
    metric would count the item twice); it raises instead of being scored.

    :param ranked_items: per user, item ids in ranked order.
    :param relevant_items: per user, the ids of the relevant items.
    :raises ValueError: a list with a repeated item, or mismatched user counts.
    """
    if len(ranked_items) != len(relevant_items):
        raise ValueError(f"ranked_items has {len(ranked_items)} users but relevant_items has {len(relevant_items)}")
    out = []
    for user, (items, relevant) in enumerate(zip(ranked_items, relevant_items)):
        items = np.asarray(items, dtype=np.int64).reshape(-1)
        unique, counts = np.unique(items, return_counts=True)
        if (counts > 1).any():
            raise ValueError(
                f"ranked list of user #{user} repeats item(s) {unique[counts > 1][:5].tolist()}: "
                "a ranking shows each candidate once"
            )
        out.append(np.isin(items, np.asarray(relevant, dtype=np.int64)).astype(np.float64))
    return out


# --------------------------------------------------------------------------- #
# Accuracy metrics
# --------------------------------------------------------------------------- #


def precision_at_k(
    ranked_relevance: RankedInput,
    k: int,
    *,
    lengths: npt.ArrayLike | None = None,
    strict: bool = True,
    reduce: Reduce = "none",
) -> PerUser:
    """Precision@k: the fraction of the top-k slots holding a relevant item.

    .. math:: P@k(u) = \\frac{1}{D_u} \\sum_{i=1}^{n_u} \\mathbb{1}[rel_{u,i} > 0]

    with ``n_u = min(k, L_u)`` and ``D_u = k`` when ``strict`` (default) or
    ``D_u = n_u`` otherwise.

    Edge cases: no relevant item -> 0 (kept in the mean). Fewer than ``k``
    candidates: ``strict=True`` divides by ``k``, so the missing slots count as
    misses (what DRR re-implementations do; it caps P@k at ``L_u / k``);
    ``strict=False`` divides by ``min(k, L_u)``. An empty list scores 0 in both.

    :param ranked_relevance: ``(n_users, L)`` relevance in ranked order, or a
        list of 1-D arrays; trailing NaN is padding.
    :param k: cut-off, integer >= 1.
    :param lengths: optional per-user list lengths (alternative to NaN padding).
    :param strict: divide by ``k`` (True) or by ``min(k, L_u)`` (False).
    :param reduce: ``"none"`` for per-user values, ``"mean"`` for their mean.
    :returns: per-user precision, or its mean.
    """
    r = _Ranked(ranked_relevance, k, None, lengths)
    hits = r.binary.sum(axis=1)
    if strict:
        out = hits / r.k
    else:
        # Empty list: 0 hits over 0 slots; call it 0 rather than NaN because
        # precision is defined (as 0) for users with nothing relevant too.
        out = np.divide(hits, r.n_ranked, out=np.zeros(r.n_users), where=r.n_ranked > 0)
    return _reduce(out, reduce)


def recall_at_k(
    ranked_relevance: RankedInput,
    k: int,
    *,
    n_relevant: npt.ArrayLike | None = None,
    lengths: npt.ArrayLike | None = None,
    reduce: Reduce = "none",
) -> PerUser:
    """Recall@k: the fraction of the user's relevant items found in the top k.

    .. math:: R@k(u) = \\frac{\\sum_{i=1}^{n_u} \\mathbb{1}[rel_{u,i} > 0]}{N_u}

    with ``N_u = n_relevant[u]``. Note ``R@k <= min(k, N_u) / N_u`` — recall is
    not normalised by ``min(k, N_u)``.

    Edge cases: ``N_u == 0`` -> NaN (skipped by ``reduce="mean"``).

    :param ranked_relevance: ``(n_users, L)`` relevance in ranked order, or a
        list of 1-D arrays; trailing NaN is padding.
    :param k: cut-off, integer >= 1.
    :param n_relevant: relevant items per user in the candidate set (scalar or
        ``(n_users,)``); default: the ``rel > 0`` count of the whole list.
    :param lengths: optional per-user list lengths (alternative to NaN padding).
    :param reduce: ``"none"`` for per-user values, ``"mean"`` for their mean.
    :returns: per-user recall, or its mean.
    """
    r = _Ranked(ranked_relevance, k, n_relevant, lengths)
    return _reduce(_divide(r.binary.sum(axis=1), r.n_relevant.astype(np.float64)), reduce)


def hit_rate_at_k(
    ranked_relevance: RankedInput,
    k: int,
    *,
    n_relevant: npt.ArrayLike | None = None,
    lengths: npt.ArrayLike | None = None,
    reduce: Reduce = "none",
) -> PerUser:
    """Hit rate@k: whether at least one relevant item is in the top k.

    .. math:: HR@k(u) = \\mathbb{1}\\left[\\sum_{i=1}^{n_u} \\mathbb{1}[rel_{u,i} > 0] > 0\\right]

    Edge cases: ``N_u == 0`` -> NaN: a hit is impossible, so counting the user
    as a 0 would measure the data, not the ranker (same rule as recall, of
    which hit rate is the leave-one-out special case).

    :param ranked_relevance: ``(n_users, L)`` relevance in ranked order, or a
        list of 1-D arrays; trailing NaN is padding.
    :param k: cut-off, integer >= 1.
    :param n_relevant: relevant items per user in the candidate set (scalar or
        ``(n_users,)``); only used to tell "no relevant item" users apart.
    :param lengths: optional per-user list lengths (alternative to NaN padding).
    :param reduce: ``"none"`` for per-user values, ``"mean"`` for their mean.
    :returns: per-user hit (0/1, NaN), or the mean hit rate.
    """
    r = _Ranked(ranked_relevance, k, n_relevant, lengths)
    out = (r.binary.sum(axis=1) > 0).astype(np.float64)
    out[r.n_relevant == 0] = np.nan
    return _reduce(out, reduce)


def average_precision(
    ranked_relevance: RankedInput,
    k: int,
    *,
    n_relevant: npt.ArrayLike | None = None,
    lengths: npt.ArrayLike | None = None,
    reduce: Reduce = "none",
) -> PerUser:
    """Average precision@k (AP@k).

    .. math:: AP@k(u) = \\frac{1}{\\min(k, N_u)} \\sum_{i=1}^{n_u} P@i(u)\\, \\mathbb{1}[rel_{u,i} > 0],
              \\qquad P@i(u) = \\frac{1}{i}\\sum_{j=1}^{i} \\mathbb{1}[rel_{u,j} > 0]

    The normaliser ``min(k, N_u)`` is the most relevant items the top k can
    hold, so a perfect ranking scores 1 even when ``N_u > k`` (dividing by
    ``N_u`` would cap it at ``k / N_u``). ``P@i`` here always divides by ``i``
    (positions exist up to ``n_u``, no short-list issue).

    Edge cases: ``N_u == 0`` -> NaN (skipped by the mean).

    :param ranked_relevance: ``(n_users, L)`` relevance in ranked order, or a
        list of 1-D arrays; trailing NaN is padding.
    :param k: cut-off, integer >= 1.
    :param n_relevant: relevant items per user in the candidate set (scalar or
        ``(n_users,)``); default: the ``rel > 0`` count of the whole list.
    :param lengths: optional per-user list lengths (alternative to NaN padding).
    :param reduce: ``"none"`` for per-user values, ``"mean"`` for their mean (MAP@k).
    :returns: per-user AP@k, or its mean.
    """
    r = _Ranked(ranked_relevance, k, n_relevant, lengths)
    positions = np.arange(1, r.binary.shape[1] + 1)
    precision_at_i = np.cumsum(r.binary, axis=1) / positions
    num = (precision_at_i * r.binary).sum(axis=1)
    den = np.minimum(r.k, r.n_relevant).astype(np.float64)
    return _reduce(_divide(num, den), reduce)


def mean_average_precision(
    ranked_relevance: RankedInput,
    k: int,
    *,
    n_relevant: npt.ArrayLike | None = None,
    lengths: npt.ArrayLike | None = None,
) -> float:
    """MAP@k: the mean of :func:`average_precision` over users with ``N_u > 0``.

    .. math:: MAP@k = \\frac{1}{|U^+|} \\sum_{u \\in U^+} AP@k(u), \\qquad U^+ = \\{u : N_u > 0\\}

    :param ranked_relevance: ``(n_users, L)`` relevance in ranked order, or a
        list of 1-D arrays; trailing NaN is padding.
    :param k: cut-off, integer >= 1.
    :param n_relevant: relevant items per user in the candidate set.
    :param lengths: optional per-user list lengths (alternative to NaN padding).
    :returns: MAP@k (NaN when no user has a relevant item).
    """
    out = average_precision(ranked_relevance, k, n_relevant=n_relevant, lengths=lengths, reduce="mean")
    assert isinstance(out, float)
    return out


def ndcg_at_k(
    ranked_relevance: RankedInput,
    k: int,
    *,
    gains: Literal["binary", "graded"] = "binary",
    n_relevant: npt.ArrayLike | None = None,
    ideal_relevance: RankedInput | None = None,
    normalise: Literal["candidates", "list"] = "candidates",
    lengths: npt.ArrayLike | None = None,
    reduce: Reduce = "none",
) -> PerUser:
    """NDCG@k with the log2 position discount.

    Two normalisations, which answer different questions (label which one a
    figure uses):

    * ``normalise="candidates"`` (default): IDCG is the best DCG over all of the
      user's candidates (``n_relevant`` / ``ideal_relevance``): how close the
      list is to the best possible list.
    * ``normalise="list"``: IDCG is the DCG of the returned top-k items
      themselves, re-sorted by relevance: how well the list orders what it
      retrieved, whatever it retrieved. A list without a relevant item scores 0.

    .. math:: DCG@k(u) = \\sum_{i=1}^{n_u} \\frac{g(rel_{u,i})}{\\log_2(i + 1)}, \\qquad
              NDCG@k(u) = \\frac{DCG@k(u)}{IDCG@k(u)}

    * ``gains="binary"``: ``g(r) = 1[r > 0]`` and
      ``IDCG@k = sum_{i=1}^{min(k, N_u)} 1 / log2(i + 1)`` (all relevant
      items first).
    * ``gains="graded"``: the exponential gain ``g(r) = 2^r - 1`` (Burges et
      al. 2005; equal to the binary gain for 0/1 relevance, and it stresses the
      top grades). IDCG is the DCG of the ideal pool sorted descending: the
      ``ideal_relevance`` row when given (the relevance of *every* candidate or
      every relevant item of the user), else the user's own list — exact when
      the list ranks the full candidate set.

    The DRR offline protocol uses binary gains (relevant = rating >= 4) over
    a re-ranking of the user's rated test items. Because that candidate set is
    small and often mostly relevant, even a random order scores a high NDCG;
    compare against a random/popularity baseline, not against 0.

    Edge cases: ``IDCG == 0`` (no relevant item, or all-zero graded pool) ->
    NaN, skipped by the mean. Lists shorter than ``k`` simply contribute fewer
    terms; IDCG is not shortened (it depends on ``N_u``, not ``L_u``).

    :param ranked_relevance: ``(n_users, L)`` relevance in ranked order, or a
        list of 1-D arrays; trailing NaN is padding.
    :param k: cut-off, integer >= 1.
    :param gains: ``"binary"`` or ``"graded"`` (``2^rel - 1``).
    :param n_relevant: binary: relevant items per user in the candidate set
        (default: the ``rel > 0`` count of the whole list). Graded: optional
        consistency check — it must equal the ``rel > 0`` count of the ideal pool.
    :param ideal_relevance: graded only: per-user relevance pool for IDCG
        (2-D NaN-padded or ragged); must include the ranked items' grades.
    :param lengths: optional per-user list lengths (alternative to NaN padding).
    :param reduce: ``"none"`` for per-user values, ``"mean"`` for their mean.
    :returns: per-user NDCG@k, or its mean.
    """
    if normalise == "list":
        if n_relevant is not None or ideal_relevance is not None:
            raise ValueError("normalise='list' takes its ideal from the list itself: drop n_relevant / ideal_relevance")
        r = _Ranked(ranked_relevance, k, None, lengths)
        top = -np.sort(-r.rel, axis=1)  # the returned top-k in their ideal order
        gain = (lambda x: (x > 0).astype(np.float64)) if gains == "binary" else (lambda x: np.exp2(x) - 1.0)
        if gains not in ("binary", "graded"):
            raise ValueError(f"gains must be 'binary' or 'graded', got {gains!r}")
        dcg = (gain(r.rel) * r.discount).sum(axis=1)
        idcg = (gain(top) * r.discount).sum(axis=1)
        out = np.zeros(r.n_users)
        np.divide(dcg, idcg, out=out, where=idcg > 0)
        return _reduce(out, reduce)
    if normalise != "candidates":
        raise ValueError(f"normalise must be 'candidates' or 'list', got {normalise!r}")
    r = _Ranked(ranked_relevance, k, n_relevant, lengths)
    if gains == "binary":
        if ideal_relevance is not None:
            raise ValueError("ideal_relevance is only used with gains='graded'; use n_relevant for binary")
        dcg = (r.binary * r.discount).sum(axis=1)
        # IDCG: cumulative discount up to min(k, N_u); index 0 means IDCG = 0.
        cum = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, r.k + 2)))])
        idcg = cum[np.minimum(r.k, r.n_relevant)]
    elif gains == "graded":
        dcg = ((np.exp2(r.rel) - 1.0) * r.discount).sum(axis=1)
        if ideal_relevance is None:
            pool = r.full  # padding is 0, which sorts last and adds no gain
        else:
            pool, _ = _padded(ideal_relevance, None, "ideal_relevance")
            if pool.shape[0] != r.n_users:
                raise ValueError(f"ideal_relevance must have {r.n_users} users, got {pool.shape[0]}")
            if (pool < 0).any():
                raise ValueError("ideal_relevance: relevance must be >= 0")
        if r.n_relevant_given and not np.array_equal(r.n_relevant, (pool > 0).sum(axis=1)):
            raise ValueError(
                "with gains='graded', n_relevant must equal the number of rel > 0 entries of the "
                "ideal pool; pass the missing items' grades via ideal_relevance"
            )
        top = -np.sort(-pool, axis=1)[:, : r.k]
        ideal_discount = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
        idcg = ((np.exp2(top) - 1.0) * ideal_discount).sum(axis=1)
        # A pool that misses some of the ranked items' grades could give NDCG > 1.
        if np.any(dcg > idcg * (1 + 1e-9) + 1e-12):
            raise ValueError("ideal_relevance does not cover the ranked list: DCG exceeds IDCG")
    else:
        raise ValueError(f"gains must be 'binary' or 'graded', got {gains!r}")
    return _reduce(_divide(dcg, idcg), reduce)


# --------------------------------------------------------------------------- #
# Beyond-accuracy metrics
# --------------------------------------------------------------------------- #


def coverage(
    recommended: RankedInput,
    n_items: int,
    *,
    k: int | None = None,
    lengths: npt.ArrayLike | None = None,
) -> float:
    """Catalogue coverage: the fraction of items recommended at least once.

    .. math:: Cov@k = \\frac{|\\bigcup_u \\mathrm{top}_k(u)|}{|I|}

    Duplicates (within or across lists) count once. A set-level metric, so it
    returns one float, not a per-user array.

    :param recommended: ``(n_users, L)`` item ids in ranked order, or a list of
        1-D arrays; trailing NaN is padding.
    :param n_items: catalogue size ``|I|``; ids must lie in ``[0, n_items)``.
    :param k: optional cut-off (integer >= 1); default: the whole lists.
    :param lengths: optional per-user list lengths (alternative to NaN padding).
    :returns: coverage in ``[0, 1]``.
    """
    if isinstance(n_items, (bool, np.bool_)) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ValueError(f"n_items must be an integer >= 1, got {n_items!r}")
    ids, lens = _item_lists(recommended, k, lengths, int(n_items))
    valid = np.arange(ids.shape[1])[None, :] < lens[:, None]
    return float(np.unique(ids[valid]).size / n_items)


def intra_list_diversity(
    recommended: RankedInput,
    item_features: npt.ArrayLike,
    *,
    k: int | None = None,
    distance: Literal["jaccard", "cosine"] = "jaccard",
    lengths: npt.ArrayLike | None = None,
    reduce: Reduce = "none",
) -> PerUser:
    """Intra-list diversity: the mean pairwise distance within each list.

    .. math:: ILD(u) = \\frac{2}{n_u (n_u - 1)} \\sum_{i < j \\le n_u} d(x_{u,i}, x_{u,j})

    with ``x`` the item's feature (genre) vector and

    * ``distance="jaccard"`` (default, for 0/1 genre flags such as
      :meth:`RatingLog.item_genres`): ``d = 1 - |A ∩ B| / |A ∪ B|``;
    * ``distance="cosine"`` (any real vectors): ``d = 1 - a·b / (|a| |b|)``,
      in ``[0, 2]`` (``[0, 1]`` for non-negative features).

    Featureless items (all-zero vector): two of them are at distance 0 (the
    usual ``J(∅, ∅) = 1``), a featureless and a featured item at distance 1 —
    for both distances, so the two agree on flags. A repeated item is at
    distance 0 from itself.

    Edge cases: lists with fewer than 2 items -> NaN (no pair), skipped by the mean.

    :param recommended: ``(n_users, L)`` item ids in ranked order, or a list of
        1-D arrays; trailing NaN is padding.
    :param item_features: ``(n_items, n_features)`` feature matrix.
    :param k: optional cut-off (integer >= 1); default: the whole lists.
    :param distance: ``"jaccard"`` (needs 0/1 features) or ``"cosine"``.
    :param lengths: optional per-user list lengths (alternative to NaN padding).
    :param reduce: ``"none"`` for per-user values, ``"mean"`` for their mean.
    :returns: per-user ILD, or its mean.
    """
    feats = np.asarray(item_features, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 1:
        raise ValueError(f"item_features must be a 2-D (n_items, n_features) array, got shape {feats.shape}")
    if not np.isfinite(feats).all():
        raise ValueError("item_features must be finite")
    ids, lens = _item_lists(recommended, k, lengths, feats.shape[0])
    x = feats[ids]  # (n_users, w, n_features); padding rows are masked below
    dot = np.einsum("uif,ujf->uij", x, x)
    if distance == "jaccard":
        if not np.isin(feats, (0.0, 1.0)).all():
            raise ValueError("distance='jaccard' needs 0/1 item_features; use distance='cosine' otherwise")
        size = x.sum(axis=2)
        union = size[:, :, None] + size[:, None, :] - dot
        sim = np.divide(dot, union, out=np.ones_like(dot), where=union > 0)  # J(∅, ∅) = 1
    elif distance == "cosine":
        norm = np.linalg.norm(x, axis=2)
        nn = norm[:, :, None] * norm[:, None, :]
        zero = norm == 0
        both_zero = zero[:, :, None] & zero[:, None, :]
        sim = np.divide(dot, nn, out=np.where(both_zero, 1.0, 0.0), where=nn > 0)
        sim = np.clip(sim, -1.0, 1.0)  # rounding can push |cos| a hair past 1
    else:
        raise ValueError(f"distance must be 'jaccard' or 'cosine', got {distance!r}")
    dist = 1.0 - sim
    w = ids.shape[1]
    valid = np.arange(w)[None, :] < lens[:, None]
    pairs = valid[:, :, None] & valid[:, None, :] & np.triu(np.ones((w, w), dtype=bool), k=1)[None]
    n_pairs = lens * (lens - 1) / 2.0
    return _reduce(_divide((dist * pairs).sum(axis=(1, 2)), n_pairs), reduce)


def item_popularity(
    user_ids: npt.ArrayLike,
    item_ids: npt.ArrayLike,
    n_users: int,
    n_items: int,
    *,
    pseudo_count: float = 0.0,
) -> np.ndarray:
    """Item popularity: the fraction of users who interacted with each item.

    .. math:: pop(i) = \\frac{|\\{u : (u, i) \\in \\mathcal{D}\\}| + a}{|U| + a}

    Repeat interactions of a user with an item count once. ``a = pseudo_count``
    (default 0) smooths items nobody interacted with away from 0, whose
    self-information would be infinite in :func:`novelty`.

    :param user_ids: user id of each interaction, in ``[0, n_users)``.
    :param item_ids: item id of each interaction, in ``[0, n_items)``.
    :param n_users: number of users ``|U|``.
    :param n_items: number of items.
    :param pseudo_count: additive smoothing ``a >= 0``.
    :returns: ``(n_items,)`` popularity in ``[0, 1]``.
    """
    users = np.asarray(user_ids)
    items = np.asarray(item_ids)
    if users.shape != items.shape or users.ndim != 1:
        raise ValueError("user_ids and item_ids must be 1-D arrays of the same length")
    if n_users < 1 or n_items < 1:
        raise ValueError("n_users and n_items must be >= 1")
    out_of_range = users.size and (
        users.min() < 0 or users.max() >= n_users or items.min() < 0 or items.max() >= n_items
    )
    if out_of_range:
        raise ValueError("user_ids / item_ids out of range")
    if not np.isfinite(pseudo_count) or pseudo_count < 0:
        raise ValueError(f"pseudo_count must be >= 0, got {pseudo_count}")
    pairs = np.unique(users.astype(np.int64) * n_items + items.astype(np.int64))
    counts = np.bincount(pairs % n_items, minlength=n_items)
    return (counts + pseudo_count) / (n_users + pseudo_count)


def novelty(
    recommended: RankedInput,
    popularity: npt.ArrayLike,
    *,
    k: int | None = None,
    lengths: npt.ArrayLike | None = None,
    reduce: Reduce = "none",
) -> PerUser:
    """Novelty: the mean self-information of the recommended items.

    .. math:: Nov(u) = \\frac{1}{n_u} \\sum_{i=1}^{n_u} -\\log_2 pop(item_{u,i})

    ``pop`` is the fraction of users who interacted with the item (see
    :func:`item_popularity`), normally measured on the training log. An item
    every user saw adds 0 bits; one seen by 1 user in 1024 adds 10.

    Edge cases: an empty list -> NaN (skipped by the mean). Recommending an
    item of popularity 0 raises ValueError (infinite self-information); smooth
    with ``item_popularity(..., pseudo_count=1)``.

    :param recommended: ``(n_users, L)`` item ids in ranked order, or a list of
        1-D arrays; trailing NaN is padding.
    :param popularity: ``(n_items,)`` popularity in ``[0, 1]``.
    :param k: optional cut-off (integer >= 1); default: the whole lists.
    :param lengths: optional per-user list lengths (alternative to NaN padding).
    :param reduce: ``"none"`` for per-user values, ``"mean"`` for their mean.
    :returns: per-user novelty in bits, or its mean.
    """
    pop = np.asarray(popularity, dtype=np.float64)
    if pop.ndim != 1 or pop.size < 1:
        raise ValueError(f"popularity must be a non-empty 1-D array, got shape {pop.shape}")
    if not np.isfinite(pop).all() or (pop < 0).any() or (pop > 1).any():
        raise ValueError("popularity must be a fraction in [0, 1] for every item")
    ids, lens = _item_lists(recommended, k, lengths, pop.size)
    valid = np.arange(ids.shape[1])[None, :] < lens[:, None]
    p = np.where(valid, pop[ids], 1.0)  # padding: -log2(1) = 0 bits
    if (p == 0).any():
        raise ValueError(
            "a recommended item has popularity 0 (infinite self-information); "
            "use item_popularity(..., pseudo_count=1)"
        )
    info = -np.log2(p)
    return _reduce(_divide(info.sum(axis=1), lens.astype(np.float64)), reduce)
