"""Small helpers for reproducible notebooks: seeding, device choice, printing bounds."""

from __future__ import annotations

import random

import numpy as np
import torch

from lib._validation import check_int, check_real

__all__ = ["format_bound", "get_device", "set_seed"]


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


def format_bound(value: float, bound: float, fmt: str | None = None) -> str:
    """Print a rounding-level quantity as a bound, the same on every CPU.

    Errors at the level of floating-point rounding (``1.1e-16`` on one machine, ``5.6e-17`` on
    another) depend on which vectorised kernels the CPU runs, so the book prints that they are
    below a stated bound instead of their value. A value at or above the bound is printed as
    it is, so a real regression still shows (and fails strict nbval).

    Args:
        value: a non-negative number such as a maximum absolute error (NaN counts as above).
        bound: the bound to state, > 0.
        fmt: a format spec for values at or above the bound (``".3g"``): for a column whose
            entries are either real measurements or rounding-level.

    Returns:
        ``"< 1e-14"`` when ``value < bound``; else ``format(value, fmt)`` if ``fmt`` is given,
        or ``"2.3e-12 (not below 1e-14)"``.

    Example:
        >>> format_bound(1.1e-16, 1e-14)
        '< 1e-14'
    """
    value = float(value)
    bound = check_real(bound, "bound", gt=0.0)
    if value < bound:
        return f"< {bound:.0e}".replace("e-0", "e-").replace("e+0", "e+")
    if fmt is not None:
        return format(value, fmt)
    return f"{value:.2g} (not below {bound:.0e})".replace("e-0", "e-")
