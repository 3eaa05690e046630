"""Probabilistic matrix factorisation (PMF): the user model of DRR.

DRR (Liu et al., arXiv 1810.12027, section 4.1) pre-trains user and item
embeddings with PMF and uses the same PMF to answer recommendations of items a
user never rated. :class:`PMFSimulator` is that simulator.

The model is PMF of Salakhutdinov & Mnih (NIPS 2007), section 2:

* eq. 1, likelihood: ``p(R | U, V, sigma^2) = prod_ij N(R_ij | U_i^T V_j, sigma^2)^{I_ij}``
* eq. 2, priors: ``p(U | sigma_U^2) = prod_i N(U_i | 0, sigma_U^2 I)`` and the same for ``V``
* eq. 3, log-posterior: ``-1/(2 sigma^2) sum_ij I_ij (R_ij - U_i^T V_j)^2
  - 1/(2 sigma_U^2) sum_i U_i^T U_i - 1/(2 sigma_V^2) sum_j V_j^T V_j + const``
* eq. 4, so the MAP estimate minimises
  ``E = 1/2 sum_ij I_ij (R_ij - U_i^T V_j)^2 + lambda_U/2 sum_i ||U_i||^2 + lambda_V/2 sum_j ||V_j||^2``
  with ``lambda_U = sigma^2 / sigma_U^2`` and ``lambda_V = sigma^2 / sigma_V^2``.

What this implementation adds or changes, and why:

* **Biases and global mean.** The prediction is
  ``R_ij ~ mu + b_i + c_j + U_i^T V_j`` with ``mu`` the mean training rating
  (not regularised) and Gaussian priors ``N(0, sigma^2 / lambda_b)`` on the user
  and item biases ``b_i``, ``c_j``; this is the standard "biased MF" (Koren et
  al. 2009) and lowers the RMSE noticeably on MovieLens.
* **No logistic link.** The paper maps ratings to ``[0, 1]`` and passes
  ``U_i^T V_j`` through a sigmoid (its eq. 5); we fit raw ratings with the
  linear-Gaussian model of eq. 1 and clip predictions to the rating scale.
* **Fitting by alternating least squares** instead of gradient descent: with
  ``V`` and the item biases fixed, eq. 4 is a ridge regression per user with the
  closed form ``[U_i; b_i] = (Y_i^T Y_i + diag(lambda, lambda_b))^{-1} Y_i^T (r_i - mu - c)``
  where the rows of ``Y_i`` are ``[V_j, 1]`` for the items ``j`` user ``i``
  rated; symmetrically for items. Each half-step exactly minimises ``E`` in one
  block, so ``E`` never increases. Users or items without ratings get the prior
  mean (zero factors, zero bias), i.e. the prediction ``mu + c_j`` (or ``mu + b_i``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recgym.data.rating_log import RatingLog
from recgym.threads import limit_blas_threads
from simulators.base import Behavior, Feedback, NotFittedError, UserSimulator

#: Default PMF dimension: DRR's embedding size (section 4.1; 50 in reimplementations).
DEFAULT_DIM = 50
#: Default L2 penalty on the factors (lambda_U = lambda_V in eq. 4), tuned on ML-100K.
DEFAULT_REG = 15.0
#: Default L2 penalty on the user and item biases, tuned on ML-100K.
DEFAULT_BIAS_REG = 5.0
#: Default number of ALS sweeps (users then items); RMSE is flat after about 5-10 on ML-100K.
DEFAULT_N_ITERS = 10
#: Standard deviation of the random initial factors.
INIT_STD = 0.1


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error of two equally shaped arrays."""
    diff = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return float(np.sqrt(np.mean(diff * diff))) if diff.size else float("nan")


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (:func:`sklearn.metrics.roc_auc_score`), NaN when one class is empty.

    The probability that a random positive scores above a random negative, ties counting one
    half (the Mann-Whitney U statistic over ``n_pos n_neg``).

    :param scores: ``(n,)`` real scores, higher = more likely positive.
    :param labels: ``(n,)`` booleans (or 0/1), True for positives.
    :returns: the AUC, or NaN when one class is empty (scikit-learn raises there; an evaluation
        on a user set without a liked item reports NaN instead of stopping).
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels differ in size: {scores.shape} vs {labels.shape}")
    if labels.all() or not labels.any():
        return float("nan")
    # imported here: sklearn.metrics takes about a second to import, and only fidelity reports need it
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def _raise_bad_ids(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, who: str) -> None:
    """Raise a ValueError naming the out-of-range ids, if there are any."""
    bad_u = users[(users < 0) | (users >= n_users)]
    if bad_u.size:
        raise ValueError(f"{who}: user ids out of range [0, {n_users}): {bad_u[:5].tolist()}")
    bad_i = items[(items < 0) | (items >= n_items)]
    if bad_i.size:
        raise ValueError(f"{who}: item ids out of range [0, {n_items}): {bad_i[:5].tolist()}")


def gather_user_items(matrix: np.ndarray, users: np.ndarray, items: np.ndarray, who: str) -> np.ndarray:
    """``matrix[users[:, None], items]`` with the ids checked.

    Negative ids would silently wrap around in numpy indexing, so they are
    checked first (two cheap reductions); ids past the end make the gather raise
    IndexError, rewritten here as a ValueError that names them.

    :param matrix: ``(n_users, n_items)`` array.
    :param users: ``(B,)`` integer user ids.
    :param items: ``(B, k)`` integer item ids.
    :param who: simulator name for the error message.
    """
    n_users, n_items = matrix.shape
    if (users.size and users.min() < 0) or (items.size and items.min() < 0):
        _raise_bad_ids(users, items, n_users, n_items, who)
    try:
        return matrix[users[:, None], items]
    except IndexError:
        _raise_bad_ids(users, items, n_users, n_items, who)
        raise


def _ridge_sweep(
    indptr: np.ndarray,
    other_idx: np.ndarray,
    target: np.ndarray,
    other: np.ndarray,
    reg_diag: np.ndarray,
) -> np.ndarray:
    """Solve one ALS half-step: the ridge regression of every row on its ratings.

    :param indptr: ``(n + 1,)`` CSR row pointers of the rows being solved.
    :param other_idx: ``(nnz,)`` column (other side) index of each rating, CSR order.
    :param target: ``(nnz,)`` residual rating each row must explain, CSR order.
    :param other: ``(n_other, D)`` fixed design rows ``[V_j, 1]``.
    :param reg_diag: ``(D,)`` ridge penalty per coordinate.
    :returns: ``(n, D)`` solutions; zero (the prior mean) for rows without ratings.
    """
    n = indptr.size - 1
    dim = other.shape[1]
    gram = np.empty((n, dim, dim))
    rhs = np.zeros((n, dim))
    # The per-row Gram matrices have different supports: a Python loop of BLAS
    # calls (nnz * D^2 flops in all) beats every dense or batched trick here.
    for row in range(n):
        lo, hi = indptr[row], indptr[row + 1]
        y = other[other_idx[lo:hi]]
        np.matmul(y.T, y, out=gram[row])
        if hi > lo:
            np.matmul(target[lo:hi], y, out=rhs[row])
    gram[:, np.arange(dim), np.arange(dim)] += reg_diag
    return np.linalg.solve(gram, rhs[..., None])[..., 0]


def _csr(rows: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Row pointers and the stable order that sorts ratings by ``rows``."""
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, order


class PMFSimulator(UserSimulator):
    """DRR's simulated user: a PMF rating model (with biases) fitted by ALS.

    The simulated user answers item ``j`` with the PMF-predicted rating, clipped
    to the rating scale, or with the logged rating where the user rated ``j`` in
    the fitted log (``use_logged_ratings``). Reward = the normalised rating
    (:meth:`RatingScale.to_reward`, ``(r - 3) / 2`` on 1..5 stars); behaviour =
    CLICK when the reward is positive (liked), else SKIP; users never leave.
    After :meth:`fit` the answers live in a dense float32 ``(n_users, n_items)``
    matrix, so :meth:`respond` is one gather.

    :param dim: latent dimension ``d`` of ``U_i`` and ``V_j`` (DRR: 50).
    :param reg: ``lambda_U = lambda_V`` of eq. 4 (ridge penalty on the factors).
    :param bias_reg: ridge penalty on the user and item biases.
    :param n_iters: number of ALS sweeps (each solves all users, then all items).
    :param seed: seed of the random initial item factors.
    :param use_logged_ratings: answer with the logged rating where one exists.
    :param rating_noise: standard deviation of Gaussian noise added to every
        answered rating (in rating units, then clipped to the scale; 0 = none).
    """

    name = "PMF"

    def __init__(
        self,
        dim: int = DEFAULT_DIM,
        reg: float = DEFAULT_REG,
        bias_reg: float = DEFAULT_BIAS_REG,
        n_iters: int = DEFAULT_N_ITERS,
        seed: int = 0,
        use_logged_ratings: bool = True,
        rating_noise: float = 0.0,
    ) -> None:
        if int(dim) < 1:
            raise ValueError(f"PMFSimulator: dim must be >= 1, got {dim}")
        if not (np.isfinite(reg) and reg > 0):
            raise ValueError(f"PMFSimulator: reg must be > 0 (a Gaussian prior), got {reg}")
        if not (np.isfinite(bias_reg) and bias_reg > 0):
            raise ValueError(f"PMFSimulator: bias_reg must be > 0, got {bias_reg}")
        if int(n_iters) < 1:
            raise ValueError(f"PMFSimulator: n_iters must be >= 1, got {n_iters}")
        if not (np.isfinite(rating_noise) and rating_noise >= 0):
            raise ValueError(f"PMFSimulator: rating_noise must be >= 0, got {rating_noise}")
        self.dim = int(dim)
        self.reg = float(reg)
        self.bias_reg = float(bias_reg)
        self.n_iters = int(n_iters)
        self.seed = int(seed)
        self.use_logged_ratings = bool(use_logged_ratings)
        self.rating_noise = float(rating_noise)
        self.user_embeddings = None  # type: ignore[assignment]
        self.item_embeddings = None  # type: ignore[assignment]
        self.user_bias: np.ndarray | None = None
        self.item_bias: np.ndarray | None = None
        self.global_mean: float = 0.0
        self._logged: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._ratings: np.ndarray | None = None

    # -- fitting -------------------------------------------------------------------
    def fit(self, log: RatingLog) -> "PMFSimulator":
        """Fit the factors and biases by ALS on every rating of ``log``.

        :param log: the training ratings; ``n_users`` / ``n_items`` come from it.
        """
        df = log.interactions
        users = df["user"].to_numpy(np.int64)
        items = df["item"].to_numpy(np.int64)
        ratings = df["rating"].to_numpy(np.float64)
        if ratings.size == 0:
            raise ValueError(f"PMFSimulator.fit: log {log.name!r} has no ratings")
        if not np.all(np.isfinite(ratings)):
            raise ValueError(f"PMFSimulator.fit: log {log.name!r} has non-finite ratings")
        self.scale = log.scale
        self.n_users, self.n_items = log.n_users, log.n_items
        d = self.dim
        mu = float(ratings.mean())
        centred = ratings - mu

        u_ptr, u_order = _csr(users, self.n_users)
        i_ptr, i_order = _csr(items, self.n_items)
        items_by_user, users_by_item = items[u_order], users[i_order]
        reg_diag = np.r_[np.full(d, self.reg), self.bias_reg]

        rng = np.random.default_rng(self.seed)
        # Augmented factors: user x = [U_i, b_i], item y = [V_j, c_j]. The user
        # solve regresses on [V_j, 1], the item solve on [U_i, 1].
        user_x = np.zeros((self.n_users, d + 1))
        item_y = np.zeros((self.n_items, d + 1))
        item_y[:, :d] = rng.normal(0.0, INIT_STD, size=(self.n_items, d))
        design = np.empty((max(self.n_users, self.n_items), d + 1))
        # thousands of tiny BLAS calls: threads only hurt (a d=100 fit took 4x longer on 2 busy cores)
        with limit_blas_threads(1):
            for _ in range(self.n_iters):
                # Users: residual r - mu - c_j, design [V_j, 1].
                design[: self.n_items, :d] = item_y[:, :d]
                design[: self.n_items, d] = 1.0
                target = centred[u_order] - item_y[items_by_user, d]
                user_x = _ridge_sweep(u_ptr, items_by_user, target, design[: self.n_items], reg_diag)
                # Items: residual r - mu - b_i, design [U_i, 1].
                design[: self.n_users, :d] = user_x[:, :d]
                design[: self.n_users, d] = 1.0
                target = centred[i_order] - user_x[users_by_item, d]
                item_y = _ridge_sweep(i_ptr, users_by_item, target, design[: self.n_users], reg_diag)

        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported just below
            fitted = {
                "user factors": np.ascontiguousarray(user_x[:, :d], dtype=np.float32),
                "item factors": np.ascontiguousarray(item_y[:, :d], dtype=np.float32),
                "user biases": user_x[:, d].astype(np.float32),
                "item biases": item_y[:, d].astype(np.float32),
                "global mean": np.float32(mu),
            }
        # Huge ratings overflow ALS (float64) or the float32 copies; refuse here,
        # before a NaN or inf answer turns into NaN rewards during training.
        broken = [what for what, values in fitted.items() if not np.all(np.isfinite(values))]
        if broken:
            raise ValueError(
                f"PMFSimulator.fit: the fitted {', '.join(broken)} of log {log.name!r} are not finite (float32 "
                f"overflow): its ratings span [{ratings.min():g}, {ratings.max():g}]. Rescale the ratings to a "
                "moderate range (recgym.data.from_dataframe refuses ratings beyond float32's comfort) and fit again."
            )
        self.global_mean = mu
        self.user_embeddings = fitted["user factors"]
        self.item_embeddings = fitted["item factors"]
        self.user_bias = fitted["user biases"]
        self.item_bias = fitted["item biases"]
        self._logged = (users, items, ratings)
        self._build_response_matrix()
        return self

    def _build_response_matrix(self) -> None:
        """The dense float32 matrix of answered ratings that :meth:`respond` gathers from."""
        assert self.user_embeddings is not None and self.item_embeddings is not None
        m = self.user_embeddings @ self.item_embeddings.T  # (n_users, n_items) float32
        m += self.user_bias[:, None]
        m += self.item_bias[None, :]
        m += np.float32(self.global_mean)
        np.clip(m, self.scale.low, self.scale.high, out=m)
        if self.use_logged_ratings and self._logged is not None:
            users, items, ratings = self._logged
            m[users, items] = ratings
        self._ratings = m

    # -- the model -------------------------------------------------------------------
    def predict(self, users: np.ndarray | int, items: np.ndarray | int) -> np.ndarray:
        """Model-predicted ratings (never the logged ones), clipped to the scale.

        ``users`` and ``items`` broadcast against each other (``(B, 1)`` with
        ``(B, m)``, ``(n,)`` with ``(n,)``, ...). Computes ``mu + b_i + c_j + U_i^T V_j``.

        :returns: float64 array of the broadcast shape.
        """
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if (users.size and (users.min() < 0 or users.max() >= self.n_users)) or (
            items.size and (items.min() < 0 or items.max() >= self.n_items)
        ):
            _raise_bad_ids(users, items, self.n_users, self.n_items, self.name)
        u = self.user_embeddings[users].astype(np.float64)
        v = self.item_embeddings[items].astype(np.float64)
        dot = np.einsum("...d,...d->...", u, v)
        pred = dot + self.user_bias[users] + self.item_bias[items] + self.global_mean
        return np.clip(pred, self.scale.low, self.scale.high)

    def response_ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Noise-free answered ratings (logged where allowed, else predicted), float32.

        :param users: ``(B,)`` user ids.
        :param items: ``(B, k)`` item ids.
        """
        if self._ratings is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call .fit(log) first")
        return gather_user_items(self._ratings, users, items, self.name)

    @property
    def rating_matrix(self) -> np.ndarray:
        """The dense ``(n_users, n_items)`` float32 answered ratings (read-only view)."""
        self._check_fitted()
        view = self._ratings.view()
        view.flags.writeable = False
        return view

    # -- the simulator contract ---------------------------------------------------
    def respond(
        self,
        state: dict[str, np.ndarray],
        users: np.ndarray,
        items: np.ndarray,
        rng: np.random.Generator,
    ) -> Feedback:
        """Answer ``items`` ``(B, k)`` for ``users`` ``(B,)``: a gather, plus optional noise."""
        users = np.asarray(users)
        items = np.asarray(items)
        rating = self.response_ratings(users, items).astype(np.float64)
        if self.rating_noise > 0.0:
            rating += rng.normal(0.0, self.rating_noise, size=rating.shape)
            np.clip(rating, self.scale.low, self.scale.high, out=rating)
        reward = rating - self.scale.midpoint  # exactly scale.to_reward(rating)
        reward /= self.scale.half_range
        # SKIP = 1, CLICK = 2: liked (reward > 0) adds one.
        behavior = (reward > 0.0).view(np.int8) + np.int8(Behavior.SKIP)
        return Feedback(rating, reward, behavior, np.zeros(users.shape[0], dtype=bool))

    def response_rating_one(self, user: int, item: int) -> float:
        """Noise-free answered rating of one (user, item) pair, as a Python float."""
        if self._ratings is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call .fit(log) first")
        if not (0 <= user < self.n_users and 0 <= item < self.n_items):
            _raise_bad_ids(np.array([user]), np.array([item]), self.n_users, self.n_items, self.name)
        return float(self._ratings[user, item])

    def respond_one(
        self, state: dict[str, np.ndarray], user: int, item: int, rng: np.random.Generator
    ) -> tuple[float, float, int, bool]:
        """Scalar :meth:`respond` for one user and one item (same random draws, same numbers)."""
        rating = self.response_rating_one(int(user), int(item))
        if self.rating_noise > 0.0:
            rating += rng.normal(0.0, self.rating_noise)
            rating = min(max(rating, self.scale.low), self.scale.high)
        reward = (rating - self.scale.midpoint) / self.scale.half_range
        return rating, reward, int(Behavior.CLICK if reward > 0.0 else Behavior.SKIP), False

    def expected_reward(
        self, state: dict[str, np.ndarray], users: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        """Normalised noise-free answered rating ``(B, m)`` (logged where allowed, else predicted).

        With ``rating_noise > 0`` this ignores the small bias that clipping the
        noisy rating adds near the ends of the scale.
        """
        users = np.asarray(users)
        items = np.asarray(items)
        rating = self.response_ratings(users, items)
        return (rating - self.scale.midpoint) / self.scale.half_range

    # -- fidelity ---------------------------------------------------------------------
    def evaluate(self, test_log: RatingLog) -> dict[str, float]:
        """RMSE of the predicted ratings and AUC of liked vs not on held-out ratings.

        Uses the model prediction only (never the logged ratings of the fitted
        log). AUC: the predicted rating as a score for ``scale.is_liked(rating)``
        (reward > 0), see :func:`roc_auc`.

        :param test_log: held-out ratings in the same id space as the fitted log.
        :returns: ``{"rmse": ..., "auc": ...}``.
        """
        self._check_fitted()
        df = test_log.interactions
        users = df["user"].to_numpy(np.int64)
        items = df["item"].to_numpy(np.int64)
        actual = df["rating"].to_numpy(np.float64)
        pred = self.predict(users, items)
        return {"rmse": rmse(pred, actual), "auc": roc_auc(pred, self.scale.is_liked(actual))}

    # -- persistence -------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "reg": self.reg,
            "bias_reg": self.bias_reg,
            "n_iters": self.n_iters,
            "seed": self.seed,
            "use_logged_ratings": self.use_logged_ratings,
            "rating_noise": self.rating_noise,
        }

    def state_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        users, items, ratings = self._logged
        return {
            "user_factors": self.user_embeddings,
            "item_factors": self.item_embeddings,
            "user_bias": self.user_bias,
            "item_bias": self.item_bias,
            "global_mean": np.array(self.global_mean),
            "logged_users": users,
            "logged_items": items,
            "logged_ratings": ratings,
        }

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        try:
            self.user_embeddings = arrays["user_factors"].astype(np.float32)
            self.item_embeddings = arrays["item_factors"].astype(np.float32)
            self.user_bias = arrays["user_bias"].astype(np.float32)
            self.item_bias = arrays["item_bias"].astype(np.float32)
            self.global_mean = float(arrays["global_mean"])
            self._logged = (
                arrays["logged_users"].astype(np.int64),
                arrays["logged_items"].astype(np.int64),
                arrays["logged_ratings"].astype(np.float64),
            )
        except KeyError as err:
            raise ValueError(f"not a PMFSimulator file: missing array {err}; refit and save") from err
        self.n_users, self.n_items = len(self.user_embeddings), len(self.item_embeddings)
        self._build_response_matrix()
