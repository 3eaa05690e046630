"""recgym: a gym for reinforcement-learning recommenders.

``import recgym`` registers the environments (``recgym/ML100K-PMF-v0``, ...)
with Gymnasium through string entry points, so nothing heavy is built here.
"""

from typing import Any

from recgym.top_level import check_top_level_packages

# before anything imports `agents`: another distribution's (the OpenAI Agents SDK's) fails here, with the fix
check_top_level_packages()

from recgym.envs.registration import register_envs  # noqa: E402

__version__ = "0.1.0"

register_envs()


def __getattr__(name: str) -> Any:
    # the scenario API, imported on first use so that ``import recgym`` stays cheap
    if name in ("Scenario", "ScenarioSpec", "make_scenario"):
        import recgym.scenario

        return getattr(recgym.scenario, name)
    if name == "EpisodeConfig":
        from recgym.envs.config import EpisodeConfig

        return EpisodeConfig
    raise AttributeError(f"module 'recgym' has no attribute {name!r}")


__all__ = ["EpisodeConfig", "Scenario", "ScenarioSpec", "__version__", "make_scenario"]
