"""recgym: a gym for reinforcement-learning recommenders.

``import recgym`` registers the environments (``recgym/ML100K-PMF-v0``, ...)
with Gymnasium through string entry points, so nothing heavy is built here.
"""

from recgym.envs.registration import register_envs

__version__ = "0.1.0"

register_envs()

__all__ = ["__version__"]
