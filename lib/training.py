r"""Training runs whose results do not depend on the CPU: float64 arithmetic and a weight grid.

Two machines that run the same seeded training loop do not compute the same numbers. PyTorch
picks vectorised kernels by CPU (``torch.backends.cpu.get_cpu_capability()``), MKL and OpenBLAS
pick their own code paths, and each choice rounds sums, ``exp`` and ``log`` differently in the
last bit. Training amplifies such differences. Measured on the book's bottleneck autoencoder:
with relaxed Gumbel-softmax at :math:`\tau = 0.1`, a first difference of
:math:`10^{-16}` at step 5 grows to :math:`10^{-8}` by step 50 and :math:`10^{-3}` by step 100,
in float64 as in float32. Low-temperature training is chaotic: a change of CPU acts like a
change of seed.

The remedy used by every training loop in :mod:`lib`:

1. compute in float64, so that the two machines' values differ by about :math:`10^{-16}`;
2. after every optimiser step, round each weight to the nearest multiple of a grid spacing
   :math:`h = 2^{-16}` (:func:`snap_`).

Rounding maps two values that differ by :math:`\delta \approx 10^{-16}` to the same grid point
unless they straddle the midpoint between two grid points, which happens with probability
about :math:`\delta / h \approx 10^{-11}` per weight and step. So the weights on the two machines
stay identical, bit for bit, and there is nothing for the dynamics to amplify. The grid is
fine next to the optimiser's steps (Adam moves a weight by about the learning rate, 1e-3 to
3e-2 in the book, against :math:`h \approx 1.5 \cdot 10^{-5}`), so the runs learn as they would
without it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

from lib._validation import check_real, type_name

__all__ = ["GRID_SPACING", "snap_"]

#: The spacing of the weight grid, :math:`2^{-16}`.
GRID_SPACING = 2.0**-16


@torch.no_grad()
def snap_(tensors: Iterable[Tensor], spacing: float = GRID_SPACING) -> None:
    r"""Round every tensor in place to the nearest multiple of ``spacing`` (ties to even).

    .. math:: w \leftarrow h \cdot \mathrm{round}(w / h)

    With ``spacing`` a power of two, the division and the multiplication are exact, and
    rounding is exact, so the result is the same on every CPU for the same input.

    Args:
        tensors: floating-point tensors (for example ``model.parameters()``), any shapes.
        spacing: the grid spacing :math:`h`, a power of two (``2.0 ** -16`` by default).

    Raises:
        TypeError: if an entry is not a floating-point tensor.
        ValueError: if ``spacing`` is not a positive power of two.

    Example:
        >>> w = torch.tensor([0.1, -1.0 / 3.0], dtype=torch.float64)
        >>> snap_([w], 2.0 ** -4)
        >>> w.tolist()
        [0.125, -0.3125]
    """
    spacing = check_real(spacing, "spacing", gt=0.0)
    mantissa, _ = math.frexp(spacing)
    if mantissa != 0.5:
        raise ValueError(f"spacing must be a power of two such as 2.0 ** -16 (got {spacing}); "
                         "other spacings make the rounding inexact")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(f"tensors[{i}] must be a floating-point torch.Tensor, got "
                            f"{type_name(t)}")
        t.copy_(torch.round(t / spacing) * spacing)
