"""Where torch computes: ``auto`` (CUDA when available, else the CPU), ``cpu`` or ``cuda``.

One resolution rule for every entry point (``agents.make`` / ``agents.load``, the
pretraining trainer, ``recgym train`` / ``pretrain`` / ``compare``): ``auto`` takes
the GPU when torch sees one, and ``cuda`` asked for on a machine without one is
an error that says what to do, not a silent fall-back to the CPU (which is what
stable-baselines3's own ``get_device`` does). The device is a runtime choice: a
model trained on one loads and runs on the other (its tensors are mapped on load).

torch is imported where a device is resolved, not with this module, so that the
command line's argument parsers can list :data:`DEVICE_CHOICES` without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

#: what ``--device`` and the ``device`` settings accept
DEVICE_CHOICES = ("auto", "cpu", "cuda")


def check_device_name(device: str) -> str:
    """``device`` if it names a device recgym can resolve (``auto``, ``cpu``, ``cuda`` or ``cuda:N``).

    Checks the spelling only, not that the machine has the device: a run configuration
    written on a GPU machine must still read on a CPU-only one.

    :raises ValueError: for anything else, listing the choices.
    """
    if isinstance(device, str) and (device in DEVICE_CHOICES or _is_cuda_index(device)):
        return device
    raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICE_CHOICES)} (or cuda:N)")


def _is_cuda_index(device: str) -> bool:
    prefix, _, index = device.partition(":")
    return prefix == "cuda" and index.isdigit()


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device ``device`` names on this machine.

    :param device: ``"auto"`` (CUDA when ``torch.cuda.is_available()``, else the CPU), ``"cpu"``,
        ``"cuda"``, ``"cuda:N"`` or a ``torch.device``.
    :raises ValueError: an unknown name, or CUDA asked for where torch has none (the message says why
        and what to do instead).
    """
    import torch

    if isinstance(device, torch.device):
        name = str(device)
    else:
        name = check_device_name(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(name)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            build = f"torch {torch.__version__} " + ("has no CUDA support (a CPU-only build)"
                                                    if torch.version.cuda is None else "sees no GPU")
            raise ValueError(
                f"device {name!r} was asked for, but {build}: use device 'auto' or 'cpu' (--device auto), "
                "or run on a machine with an NVIDIA GPU and a CUDA build of torch "
                "(https://pytorch.org/get-started/locally/)"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} was asked for, but torch sees {torch.cuda.device_count()} GPU(s): "
                             f"use cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    elif resolved.type != "cpu":
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)} (or cuda:N)")
    return resolved


def module_device(module: nn.Module) -> torch.device:
    """The device of ``module``'s parameters (else buffers); the CPU for a module that has neither."""
    import torch

    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")
