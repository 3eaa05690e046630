"""Registration of the recgym environment ids (filled in by the environment module)."""


def register_envs() -> None:
    """Register every recgym environment id with Gymnasium (idempotent)."""
