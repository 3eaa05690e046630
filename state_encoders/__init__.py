"""State encoders: observation -> state vector, one model per file.

>>> import state_encoders
>>> state_encoders.available()
['deers', 'drr-att', 'drr-ave', 'drr-p', 'drr-u', 'mean']
>>> encoder = state_encoders.make("drr-ave", env.observation_space, embedding_dim=50)  # doctest: +SKIP

Every encoder is a stable-baselines3 features extractor; see ``docs/encoders.md``.
"""

from state_encoders.base import (
    DEFAULT_EMBEDDING_DIM,
    StateEncoder,
    align_valid,
    gather_last_valid,
    masked_mean,
    masked_softmax,
    pairwise_products,
)
from state_encoders.registry import available, encoder_class, make, register
from state_encoders.weights import PretrainedWeightsError, load_pretrained, read_description, save_pretrained

# Importing the model modules registers them.
from state_encoders.mean import MeanEncoder
from state_encoders.drr_p import DRRPEncoder
from state_encoders.drr_u import DRRUEncoder
from state_encoders.drr_ave import DRRAveEncoder
from state_encoders.drr_att import DRRAttentionEncoder
from state_encoders.deers import DEERSEncoder

__all__ = [
    "DEFAULT_EMBEDDING_DIM",
    "DEERSEncoder",
    "DRRAttentionEncoder",
    "DRRAveEncoder",
    "DRRPEncoder",
    "DRRUEncoder",
    "MeanEncoder",
    "PretrainedWeightsError",
    "StateEncoder",
    "align_valid",
    "available",
    "encoder_class",
    "gather_last_valid",
    "load_pretrained",
    "make",
    "masked_mean",
    "masked_softmax",
    "pairwise_products",
    "read_description",
    "register",
    "save_pretrained",
]
