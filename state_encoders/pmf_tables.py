"""Encoder arguments that start its item and user tables from a scenario's embedding model (PMF).

``agents.make`` uses them for the PMF-initialised encoders (DRR's setting) and ``recgym pretrain
--init pmf`` starts from them; both sit above the encoders, so the function lives here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recgym.scenario import Scenario


def pmf_encoder_kwargs(scenario: Scenario, freeze: bool = True, normalize: bool = True) -> dict[str, Any]:
    """Encoder arguments that initialise its tables from the scenario's embedding model (as DRR).

    The user term is folded in from the observation's history (leak-free, see
    :class:`state_encoders.base.UserFoldIn`) unless the scenario is the DRR
    paper's all-data setting (``embedding_fit="all"``), where the fitted user
    factors are looked up by id, as the paper does.

    :param scenario: the scenario.
    :param freeze: keep the tables fixed (DRR pre-trains the embeddings with PMF and
        learns only the state module and the networks on top).
    :param normalize: divide the item and the user factors each by their overall
        standard deviation. Strongly regularised PMF factors are ~0.1 in size, so
        DRR's products ``u ⊗ h`` would be ~0.01; unit-scale inputs suit the default
        initialisation of the layers above. A global scale keeps every direction
        and every ranking by dot product.
    """
    model = scenario.embedding_model
    items = np.asarray(model.item_embeddings, dtype=np.float32)
    users = np.asarray(model.user_embeddings, dtype=np.float32)
    seen = scenario.seen_users()
    item_scale = max(float(items.std()), 1e-8) if normalize else 1.0
    user_scale = max(float(users[seen].std()), 1e-8) if normalize and seen.any() else 1.0
    kwargs: dict[str, Any] = {"item_embeddings": items / item_scale, "freeze_embeddings": bool(freeze)}
    if scenario.embedding_fit == "all":
        kwargs["user_embeddings"] = users / user_scale
    else:
        scale = scenario.log.scale
        kwargs["user_fold_in"] = {
            "item_factors": items, "item_bias": np.asarray(model.item_bias, dtype=np.float32),
            "global_mean": float(model.global_mean), "reg": float(model.reg), "bias_reg": float(model.bias_reg),
            "rating_midpoint": float(scale.midpoint), "rating_half_range": float(scale.half_range),
            "output_scale": user_scale,
        }
    return kwargs
