"""State encoders: observation -> state vector, one model per file.

>>> import state_encoders
>>> state_encoders.available()
['caser', 'deers', 'din', 'drr-att', 'drr-ave', 'drr-p', 'drr-u', 'fdsa', 'gru4rec', 'hpmn', 'mbstr', 'mean',
 'prnn', 'sasrec', 'tisasrec', 'ubr']
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
    valid_order,
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
from state_encoders.gru4rec import GRU4RecEncoder
from state_encoders.caser import CaserEncoder
from state_encoders.sasrec import SASRecEncoder
from state_encoders.din import DINEncoder
from state_encoders.fdsa import FDSAEncoder
from state_encoders.tisasrec import TiSASRecEncoder
from state_encoders.prnn import ParallelRNNEncoder
from state_encoders.mbstr import MBSTREncoder
from state_encoders.hpmn import HPMNEncoder
from state_encoders.ubr import UBREncoder
from state_encoders.features import item_content_features
from state_encoders.sequential import SequentialEncoder

__all__ = [
    "DEFAULT_EMBEDDING_DIM",
    "CaserEncoder",
    "DEERSEncoder",
    "DINEncoder",
    "DRRAttentionEncoder",
    "DRRAveEncoder",
    "DRRPEncoder",
    "DRRUEncoder",
    "FDSAEncoder",
    "GRU4RecEncoder",
    "HPMNEncoder",
    "MBSTREncoder",
    "MeanEncoder",
    "ParallelRNNEncoder",
    "SASRecEncoder",
    "SequentialEncoder",
    "PretrainedWeightsError",
    "StateEncoder",
    "TiSASRecEncoder",
    "UBREncoder",
    "align_valid",
    "available",
    "encoder_class",
    "gather_last_valid",
    "item_content_features",
    "load_pretrained",
    "make",
    "masked_mean",
    "masked_softmax",
    "pairwise_products",
    "read_description",
    "register",
    "valid_order",
    "save_pretrained",
]
