"""Small helpers for reproducible notebooks: seeding and device choice."""

from __future__ import annotations

import random

import numpy as np
import torch

from lib._validation import check_int

__all__ = ["get_device", "set_seed"]


def set_seed(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy's global generator and torch; return a fresh generator.

    The returned generator is on the CPU on purpose. The book's convention for every
    ``generator=`` argument of :mod:`lib` (see :mod:`lib.rng` and CONTRIBUTING.md): it is None
    or a ``torch.Generator`` on the CPU or on the device of the tensors being sampled for; the
    numbers are drawn on the generator's device and moved to the tensors' device; with None,
    the target device's default generator draws them. So ``generator=set_seed(0)`` gives the
    same random numbers for a model on the CPU and on a GPU (results then agree up to
    floating-point rounding), and CPU results are exactly those of a plain CPU generator.

    Args:
        seed: an int in ``[0, 2**32)`` (NumPy's limit).

    Returns:
        A new CPU ``torch.Generator`` seeded with ``seed``, to pass as ``generator=`` so a cell's
        samples do not depend on what ran before it.

    Example:
        >>> g = set_seed(0)
        >>> torch.rand(1, generator=g).item() == torch.rand(1, generator=set_seed(0)).item()
        True
        >>> g.device
        device(type='cpu')
    """
    seed = check_int(seed, "seed", min_value=0, max_value=2**32 - 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def get_device() -> torch.device:
    """Return ``cuda`` when a CUDA device is available, ``cpu`` otherwise.

    Returns:
        A ``torch.device``.

    Example:
        >>> get_device().type in ("cpu", "cuda")
        True
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
