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
import sys
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
from torch import Tensor

from lib._validation import check_bool, check_callable, check_int, check_real, type_name

__all__ = ["GRID_SPACING", "FitResult", "fit", "snap_"]

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


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
        steps: optimiser steps taken.
        seconds: wall time spent in the steps (the loss, backward, optimiser step and snap),
            evaluations excluded. Machine-dependent: never print it in a notebook.
    """

    steps: int
    seconds: float


def fit(
    optimizer: torch.optim.Optimizer,
    loss: Callable[[int], Tensor],
    n_steps: int,
    *,
    evaluate: Callable[[int], str] | None = None,
    eval_at: Callable[[int], bool] | None = None,
    progress: bool = True,
    desc: str = "",
    steps_per_tick: int = 1,
    mininterval: float = 0.0,
    advance: str = "tick",
) -> FitResult:
    r"""The book's one training loop: steps, weight snapping, evaluations, a progress bar, time.

    For ``step = 1 .. n_steps``: ``loss(step)`` builds the loss (it draws its own batch and
    samples, and may record what it likes), then ``zero_grad``, ``backward``, the optimiser
    step and :func:`snap_` of every parameter the optimiser holds (the same weights on every
    CPU). ``evaluate(0)`` runs before the first step, and ``evaluate(step)`` after each step
    for which ``eval_at(step)`` is true and after the last one; its return value becomes the
    progress bar's postfix. The case-study trainers (:func:`lib.vae.train_vae`,
    :func:`lib.rationales.train_rationale_model`, :func:`lib.bottleneck.train_autoencoder`)
    are this loop with a model-specific ``loss`` and ``evaluate``.

    Args:
        optimizer: a ``torch.optim`` optimiser over the trained parameters, or any object
            with its ``param_groups``, ``zero_grad(set_to_none=True)`` and ``step()`` (e.g.
            the element-wise Adam of :mod:`lib.bottleneck`).
        loss: ``loss(step) -> Tensor``, a scalar to minimise.
        n_steps: number of steps, >= 1.
        evaluate: optional ``evaluate(step) -> str`` (the progress text).
        eval_at: optional ``eval_at(step) -> bool``: when to evaluate besides the last step.
        progress: show a progress bar (tqdm, on stdout).
        desc: the bar's label.
        steps_per_tick: steps per unit of the bar (e.g. the batches of one epoch).
        mininterval: tqdm's minimum seconds between redraws.
        advance: when the bar moves: ``"tick"`` after every ``steps_per_tick`` steps, or
            ``"evaluation"`` only when ``evaluate`` runs (and after the last step), so that
            the count shown always goes with the evaluation shown beside it.

    Returns:
        A :class:`FitResult` ``(steps, seconds)``.

    Example:
        >>> w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        >>> opt = torch.optim.SGD([w], lr=0.1)
        >>> fit(opt, lambda step: ((w - 1.0) ** 2).sum(), 50, progress=False).steps
        50
        >>> round(float(w.detach()), 3)
        1.0
    """
    if not isinstance(optimizer, torch.optim.Optimizer) and not all(
            hasattr(optimizer, m) for m in ("param_groups", "zero_grad", "step")):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer (or have its param_groups, "
                        f"zero_grad and step), got {type_name(optimizer)}")
    check_callable(loss, "loss")
    n_steps = check_int(n_steps, "n_steps", min_value=1)
    steps_per_tick = check_int(steps_per_tick, "steps_per_tick", min_value=1)
    if evaluate is not None:
        check_callable(evaluate, "evaluate")
    if eval_at is not None:
        check_callable(eval_at, "eval_at")
    check_bool(progress, "progress")
    if advance not in ("tick", "evaluation"):
        raise ValueError(f"advance must be 'tick' or 'evaluation', got {advance!r}")
    from tqdm import tqdm

    params = [p for group in optimizer.param_groups for p in group["params"]]
    if evaluate is not None:
        evaluate(0)
    bar = tqdm(
        total=math.ceil(n_steps / steps_per_tick), desc=desc, disable=not progress,
        file=sys.stdout,
        bar_format="{desc}: {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt}{postfix}",
        mininterval=mininterval, miniters=1 if mininterval == 0 else None,
        maxinterval=math.inf if mininterval == 0 else 10.0, leave=True,
    )
    seconds, shown = 0.0, 0
    for step in range(1, n_steps + 1):
        start = time.perf_counter()
        value = loss(step)
        if not isinstance(value, Tensor) or value.dim() != 0:
            got = tuple(value.shape) if isinstance(value, Tensor) else type_name(value)
            raise ValueError(f"loss(step) must return a scalar tensor, got {got}")
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        snap_(params)  # the same weights on every CPU
        seconds += time.perf_counter() - start
        evaluated = evaluate is not None and (
            step == n_steps or (eval_at is not None and eval_at(step)))
        if evaluated:
            bar.set_postfix_str(evaluate(step) or "", refresh=False)
        if (evaluated if advance == "evaluation" else step % steps_per_tick == 0) or (
                step == n_steps):
            ticks = math.ceil(step / steps_per_tick)
            bar.update(ticks - shown)
            shown = ticks
    bar.close()
    return FitResult(n_steps, seconds)
