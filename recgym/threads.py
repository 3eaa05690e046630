"""The one thread policy: how many threads torch and numpy's BLAS use, set through ``threadpoolctl``.

recgym's numpy work comes in small pieces (an environment step is a few small
matrix products; a PMF fit is thousands of tiny ridge solves) and its networks
are small. On a few cores one thread each is fastest: BLAS threads busy-wait
between calls and fight the agent's torch thread for the cores (measured on a
busy 2-core machine: environment steps 3-5x slower with two BLAS threads, DRR
training at half speed, DQN training 10x slower with two torch threads).

Nothing here runs on import, and building an environment changes no thread
count: the limit is set where work is launched (the trainer, once its
environments are built; ``agents.make``/``agents.load``; the benchmark scripts), and a library
user who builds environments directly chooses with :func:`set_threads` or
``threadpoolctl`` themselves.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits

__all__ = ["WORK_THREADS", "limit_blas_threads", "set_threads"]

#: threads for torch and for BLAS wherever recgym launches work (see the module docstring)
WORK_THREADS = 1


def _checked(n_threads: int) -> int:
    if isinstance(n_threads, bool) or int(n_threads) != n_threads or int(n_threads) < 1:
        raise ValueError(f"n_threads must be a whole number >= 1, got {n_threads!r}")
    return int(n_threads)


def limit_blas_threads(n_threads: int) -> threadpool_limits:
    """Hold every BLAS library loaded in this process (numpy's OpenBLAS, MKL, BLIS) to ``n_threads`` threads.

    The limit applies at once, process-wide. The returned ``threadpoolctl`` controller is
    also a context manager: ``with limit_blas_threads(1): ...`` restores the earlier counts
    on exit (for a stretch of work that must not change the caller's setting).

    :param n_threads: threads per BLAS library, at least 1.
    :raises ValueError: ``n_threads`` is not a whole number of at least 1.
    """
    n_threads = _checked(n_threads)
    import numpy  # noqa: F401  (threadpoolctl reaches only loaded libraries: load numpy's BLAS first)

    return threadpool_limits(limits=n_threads, user_api="blas")


def set_threads(n_threads: int | None = WORK_THREADS) -> None:
    """Use ``n_threads`` threads for torch and for every loaded BLAS, process-wide (``None`` leaves both).

    :param n_threads: threads for each, at least 1; default :data:`WORK_THREADS`.
    :raises ValueError: ``n_threads`` is not a whole number of at least 1.
    """
    if n_threads is None:
        return
    n_threads = _checked(n_threads)
    import torch  # here, not at module level: the simulators use this module without torch

    torch.set_num_threads(n_threads)
    limit_blas_threads(n_threads)
