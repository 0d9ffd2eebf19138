r"""A constraint on an expectation, enforced by a Lagrange multiplier learned during training.

A fixed penalty weight :math:`\lambda` in :math:`\min_\theta L(\theta) + \lambda\, g(\theta)`
sets the price of :math:`g` (a selection rate, a KL, ...), not its value: where :math:`g`
lands depends on :math:`\lambda`, on the data and on the run. To ask for a value instead,
constrain it, :math:`\min_\theta L(\theta)` subject to :math:`g(\theta) \le g^*`, and solve
the Lagrangian saddle point

.. math:: \min_\theta \max_{\lambda \ge 0}\ L(\theta) + \lambda\,\big(g(\theta) - g^*\big)

by gradient descent on :math:`\theta` and projected gradient **ascent** on :math:`\lambda`:
:math:`\partial/\partial\lambda` of the Lagrangian is the constraint :math:`c = g - g^*`, so
:math:`\lambda` grows while the constraint is violated (:math:`c > 0`) and shrinks, down to
exactly 0, while it holds with room to spare. Each minibatch gives a noisy estimate
:math:`\hat c`; as in Rezende and Viola (2018, Algorithm 1), which Bastings, Aziz and Titov
(2019) follow, the multiplier is updated with a moving average of the estimates,

.. math:: \bar c \leftarrow \alpha\, \bar c + (1 - \alpha)\, \hat c, \qquad
          \lambda \leftarrow \max(0,\ \lambda + \eta\, \bar c),

and the term added to the loss is :math:`\lambda\, \tilde c` with
:math:`\tilde c = \hat c + \mathrm{sg}(\bar c - \hat c)`: its value is
:math:`\lambda \bar c`, its gradient :math:`\lambda \nabla_\theta \hat c` (``sg``: stop
gradient). Bastings et al.'s code updates :math:`\lambda \leftarrow \lambda\, e^{\eta \bar c}`
instead (gradient ascent on :math:`\log \lambda`, clamped to :math:`[10^{-12}, 5]`), which
never reaches 0; the additive form here is the textbook one.

References:
    D. J. Rezende, F. Viola (2018), *Taming VAEs*, arXiv 1810.00597, section 3 and Algorithm 1.
    J. Bastings, W. Aziz, I. Titov (2019), *Interpretable Neural Predictions with
    Differentiable Binary Variables*, ACL, section 4 ("Controlled sparsity").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lib._validation import check_real, check_tensor, type_name
from lib.training import snap_

__all__ = ["LagrangeMultiplier"]

#: The grid of the multiplier: fine next to its steps, coarse next to rounding (see
#: :class:`LagrangeMultiplier`).
MULTIPLIER_GRID = 2.0**-24


class LagrangeMultiplier:
    r"""The multiplier of a constraint :math:`g \le g^*`, one per entry of ``shape``.

    Call :meth:`update` once per training step with the batch's estimate of :math:`g`; add
    what it returns to the loss. The multiplier and the moving average are detached tensors
    (no gradient flows into them); the multiplier is rounded to a grid of spacing
    :math:`2^{-24}` after every update, so that a run in float64 gives the same multipliers
    on every CPU (as :func:`lib.training.snap_` does for the weights).

    Args:
        target: :math:`g^*`, the value the constraint allows: a float, or a sequence of
            floats of the multiplier's ``shape`` (one target per constraint).
        lr: :math:`\eta > 0`, the step of the gradient ascent on :math:`\lambda`.
        smoothing: :math:`\alpha \in [0, 1)`, the weight of the past in the moving average
            (0: no averaging).
        init: the starting multiplier, >= 0.
        shape: the shape of the constraint (one independent multiplier per entry, e.g.
            ``(K,)`` for K models trained side by side); ``()`` for one.
        dtype, device: of the multiplier (default dtype; CPU).

    Attributes:
        multiplier: tensor ``shape``, :math:`\lambda \ge 0`.
        moving_average: tensor ``shape``, :math:`\bar c` (0 before the first update).

    Example:
        >>> lagrange = LagrangeMultiplier(0.25, lr=0.5, smoothing=0.0)
        >>> rate = torch.tensor(0.75, requires_grad=True)
        >>> term = lagrange.update(rate)  # the constraint is violated by 0.5
        >>> float(lagrange.multiplier), float(term.detach())
        (0.25, 0.125)
        >>> term.backward(); float(rate.grad)  # the gradient is the multiplier's
        0.25
    """

    def __init__(
        self,
        target: float,
        *,
        lr: float = 0.1,
        smoothing: float = 0.9,
        init: float = 0.0,
        shape: Sequence[int] = (),
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if isinstance(target, (list, tuple)):
            target = [check_real(t, f"target[{i}]") for i, t in enumerate(target)]
            if (len(target),) != tuple(shape):
                raise ValueError(f"target has {len(target)} entries but shape is "
                                 f"{tuple(shape)}; give one target per constraint")
            self.target: float | Tensor = torch.tensor(
                target, dtype=dtype or torch.get_default_dtype(), device=device)
        else:
            self.target = check_real(target, "target")
        self.lr = check_real(lr, "lr", gt=0.0)
        self.smoothing = check_real(smoothing, "smoothing", ge=0.0)
        if self.smoothing >= 1:
            raise ValueError(f"smoothing must be in [0, 1) (1 would never update), got "
                             f"{self.smoothing}")
        init = check_real(init, "init", ge=0.0)
        if not isinstance(shape, (tuple, list, torch.Size)) or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
            raise TypeError(f"shape must be a tuple of positive ints, got {type_name(shape)} "
                            f"{shape!r}")
        dtype = dtype or torch.get_default_dtype()
        self.multiplier = torch.full(tuple(shape), init, dtype=dtype, device=device)
        snap_([self.multiplier], MULTIPLIER_GRID)
        self.moving_average = torch.zeros(tuple(shape), dtype=dtype, device=device)

    def update(self, value: Tensor) -> Tensor:
        r"""One ascent step on the multiplier; returns the term to add to the loss.

        Args:
            value: the batch's estimate :math:`\hat g` of the constrained quantity, a
                floating tensor of the multiplier's shape, differentiable in the model's
                parameters.

        Returns:
            :math:`\lambda\,\big(\hat c + \mathrm{sg}(\bar c - \hat c)\big)`, tensor of the
            multiplier's shape (sum it into the loss): value :math:`\lambda \bar c`, gradient
            :math:`\lambda \nabla \hat g`. The multiplier used is the one after this step.
        """
        value = check_tensor(value, "value")
        if value.shape != self.multiplier.shape:
            raise ValueError(f"value must have the multiplier's shape "
                             f"{tuple(self.multiplier.shape)}, got {tuple(value.shape)}")
        c_hat = value - self.target
        with torch.no_grad():
            self.moving_average = (self.smoothing * self.moving_average
                                   + (1 - self.smoothing) * c_hat.detach())
            self.multiplier = (self.multiplier + self.lr * self.moving_average).clamp(min=0.0)
            snap_([self.multiplier], MULTIPLIER_GRID)  # the same multiplier on every CPU
        smoothed = c_hat + (self.moving_average - c_hat).detach()
        return self.multiplier * smoothed
