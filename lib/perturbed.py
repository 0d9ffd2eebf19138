r"""Perturbed optimizers: a differentiable layer from any argmax oracle (Berthet et al., 2020).

For structures :math:`\mathcal{C}` (one-hot vectors, k-subsets, ...) with convex hull
:math:`C`, an argmax oracle :math:`y^*(\theta) = \arg\max_{y \in C} \langle y, \theta\rangle`
is piecewise constant in :math:`\theta`: its Jacobian is zero almost everywhere. Perturbing the
scores with noise :math:`Z` of density :math:`\mu(z) \propto \exp(-\nu(z))` and averaging
smooths it:

.. math::

    F_\sigma(\theta) = \mathbb{E}\big[\max_{y \in C} \langle y, \theta + \sigma Z\rangle\big],
    \qquad
    y_\sigma(\theta) = \mathbb{E}\big[y^*(\theta + \sigma Z)\big] = \nabla_\theta F_\sigma(\theta),

and, integrating by parts (Berthet et al., 2020, Proposition 3.1),

.. math::

    J_\theta\, y_\sigma(\theta)
    = \frac{1}{\sigma}\,\mathbb{E}\big[y^*(\theta + \sigma Z)\, \nabla_z \nu(Z)^\top\big].

Gumbel noise (:math:`\nu(z) = z + e^{-z}`, :math:`\nabla\nu(z) = 1 - e^{-z}`) and normal noise
(:math:`\nu(z) = \lVert z\rVert^2/2`, :math:`\nabla\nu(z) = z`) are the two of the authors' code
(google-research/google-research, ``perturbations/perturbations.py``: ``noise_gradient``).
With Gumbel noise, :math:`\sigma = 1` and the one-hot argmax, :math:`y_\sigma(\theta) =
\mathrm{softmax}(\theta)` exactly (the Gumbel-max trick) and :math:`F_1(\theta) =
\mathrm{logsumexp}(\theta) + \gamma` (Euler's constant); this is the oracle the tests use.

:func:`perturbed_argmax` returns the Monte Carlo estimate of :math:`y_\sigma(\theta)` from
``n_samples`` draws with a backward pass that uses the Jacobian estimate above on the same
draws; :func:`perturbed_max` the estimate of :math:`F_\sigma(\theta)`, whose pathwise gradient is
the same average of argmaxes.

Reference:
    Q. Berthet, M. Blondel, O. Teboul, M. Cuturi, J.-P. Vert, F. Bach (2020), *Learning with
    Differentiable Perturbed Optimizers*, NeurIPS (arXiv:2002.08676).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lib import rng
from lib._validation import (
    check_callable,
    check_generator,
    check_int,
    check_real,
    check_tensor,
    validating,
)
from lib.gumbel import sample_gumbel

__all__ = ["NOISES", "argmax_one_hot", "perturbed_argmax", "perturbed_max", "sample_noise"]

#: The noise distributions: name -> gradient of :math:`\nu = -\log \mu` (up to a constant).
NOISES: tuple[str, ...] = ("gumbel", "normal")


def argmax_one_hot(scores: Tensor) -> Tensor:
    """The one-hot argmax over the last dimension (ties: the first maximum). No gradient.

    Args:
        scores: floating tensor ``[..., K]``.

    Returns:
        Tensor of the shape and dtype of ``scores`` with one 1 per row.

    Example:
        >>> argmax_one_hot(torch.tensor([0.3, 2.0, -1.0]))
        tensor([0., 1., 0.])
    """
    scores = scores.detach()
    index = scores.argmax(dim=-1, keepdim=True)
    return torch.zeros_like(scores).scatter_(-1, index, 1.0)


def sample_noise(
    noise: str,
    shape: tuple[int, ...],
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Draw noise ``Z`` and :math:`\nabla\nu(Z)`, the gradient of its negative log-density.

    Gumbel: :math:`Z = -\log(-\log U)`, :math:`\nabla\nu(Z) = 1 - e^{-Z}`; normal:
    :math:`\nabla\nu(Z) = Z`. Drawn through :mod:`lib.rng` (the book's generator convention).

    Args:
        noise: ``"gumbel"`` or ``"normal"``.
        shape: shape of the draw.
        generator: None or a ``torch.Generator`` on the CPU or on ``device``.
        dtype: floating dtype.
        device: device of the output.

    Returns:
        ``(z, grad_nu)``, both of shape ``shape``.

    Example:
        >>> z, g = sample_noise("normal", (3,), generator=torch.Generator().manual_seed(0))
        >>> bool(torch.equal(z, g))
        True
    """
    if noise == "gumbel":
        z = sample_gumbel(shape, generator=generator, dtype=dtype, device=device)
        return z, -torch.expm1(-z)
    if noise == "normal":
        z = rng.randn(shape, generator=generator, dtype=dtype, device=device)
        return z, z
    raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")


class _PerturbedArgmax(torch.autograd.Function):
    """Forward: the mean of the oracle's answers; backward: Berthet's Jacobian estimate."""

    @staticmethod
    def forward(ctx, theta, ys, grad_nu, sigma, event_dims):  # noqa: D102
        ctx.save_for_backward(ys, grad_nu)
        ctx.sigma = sigma
        ctx.event_dims = event_dims
        return ys.mean(0)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):  # noqa: D102
        ys, grad_nu = ctx.saved_tensors
        dims = tuple(range(-ctx.event_dims, 0)) if ctx.event_dims else ()
        # <dy, y*(theta + sigma Z)> per draw and per structure: [n, *batch, 1, ...]
        inner = (ys * dy).sum(dim=dims, keepdim=True) if dims else ys * dy
        return (inner * grad_nu).mean(0) / ctx.sigma, None, None, None, None


def _check_common(theta, n_samples, sigma, noise, oracle, generator, event_dims):
    check_tensor(theta, "theta")
    if theta.dim() < 1:
        raise ValueError("theta must have at least one dimension (the scores), got a 0-d tensor")
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    sigma = check_real(sigma, "sigma", gt=0.0)
    if not isinstance(noise, str):
        raise TypeError(f"noise must be a str, one of {NOISES}, got {type(noise).__name__}")
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
    if oracle is not None:
        check_callable(oracle, "oracle")
    event_dims = check_int(event_dims, "event_dims", min_value=0, max_value=theta.dim())
    check_generator(generator, like=theta)
    if validating() and not bool(torch.isfinite(theta).all()):
        raise ValueError("theta must be finite (no NaN or inf)")
    return n_samples, sigma, event_dims


def _solve(theta, n_samples, sigma, noise, oracle, generator):
    z, grad_nu = sample_noise(noise, (n_samples, *theta.shape), generator=generator,
                              dtype=theta.dtype, device=theta.device)
    perturbed = theta.detach().unsqueeze(0) + sigma * z
    ys = (argmax_one_hot if oracle is None else oracle)(perturbed)
    if not isinstance(ys, Tensor) or ys.shape != perturbed.shape:
        got = tuple(ys.shape) if isinstance(ys, Tensor) else type(ys).__name__
        raise ValueError(f"oracle must return a tensor of the shape of its input "
                         f"{tuple(perturbed.shape)} ([n_samples, *theta.shape]), got {got}")
    return z, grad_nu, perturbed, ys.detach().to(theta.dtype)


def perturbed_argmax(
    theta: Tensor,
    n_samples: int,
    sigma: float = 1.0,
    *,
    noise: str = "gumbel",
    oracle: Callable[[Tensor], Tensor] | None = None,
    event_dims: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Monte Carlo perturbed argmax :math:`\hat y_\sigma(\theta)`, differentiable in ``theta``.

    .. math::

        \hat y_\sigma(\theta) = \frac{1}{n}\sum_{i=1}^n y^*(\theta + \sigma Z_i),
        \qquad
        \widehat{J} = \frac{1}{n\sigma}\sum_{i=1}^n y^*(\theta + \sigma Z_i)\,
        \nabla\nu(Z_i)^\top,

    and the backward pass returns :math:`\widehat{J}^\top \bar y` for an incoming gradient
    :math:`\bar y`, on the same draws as the forward value (Berthet et al., 2020, Prop. 3.1;
    the sign: :math:`\nabla_\theta \mu(z - \theta) = \mu(\cdot)\nabla\nu`, so the estimate is
    :math:`+\mathbb{E}[y^* \nabla\nu^\top]/\sigma`). Both are unbiased for :math:`y_\sigma` and its
    Jacobian. The oracle is called once, on all ``n_samples`` perturbed scores.

    Args:
        theta: scores, floating tensor ``[*batch, *event]``; the last ``event_dims``
            dimensions form one structure, the others are independent problems.
        n_samples: number of noise draws ``n >= 1``.
        sigma: noise scale, ``> 0``.
        noise: ``"gumbel"`` or ``"normal"``.
        oracle: maps perturbed scores ``[n, *theta.shape]`` to points of the convex hull of
            the structures of the same shape (no gradient needed); None: the one-hot argmax
            over the last dimension (:func:`argmax_one_hot`).
        event_dims: how many trailing dimensions of ``theta`` one structure spans (1 for the
            argmax and a top-k over the last dimension; 0 treats every entry on its own).
        generator: None or a ``torch.Generator`` on the CPU or on ``theta``'s device (the book's
            convention, :mod:`lib.rng`). Noise has ``theta``'s dtype and device.

    Returns:
        Tensor of ``theta``'s shape, dtype and device.

    Raises:
        TypeError: ``theta`` not a floating tensor, a non-int ``n_samples``/``event_dims``,
            ``sigma`` not a real number, ``noise`` not a str, ``oracle`` not callable, a bad
            ``generator``.
        ValueError: 0-d ``theta``, ``n_samples < 1``, ``sigma <= 0``, an unknown ``noise``,
            ``event_dims`` outside ``[0, theta.dim()]``, an oracle answer of the wrong shape;
            with validation on, a non-finite ``theta``.

    Example:
        >>> theta = torch.tensor([0.0, 1.0, 2.0], requires_grad=True)
        >>> y = perturbed_argmax(theta, 1000, generator=torch.Generator().manual_seed(0))
        >>> y.shape, float(y.detach().sum())
        (torch.Size([3]), 1.0)

    Reference:
        Berthet et al. (2020), *Learning with Differentiable Perturbed Optimizers*, NeurIPS.
    """
    n_samples, sigma, event_dims = _check_common(theta, n_samples, sigma, noise, oracle,
                                                 generator, event_dims)
    _, grad_nu, _, ys = _solve(theta, n_samples, sigma, noise, oracle, generator)
    return _PerturbedArgmax.apply(theta, ys, grad_nu, sigma, event_dims)


def perturbed_max(
    theta: Tensor,
    n_samples: int,
    sigma: float = 1.0,
    *,
    noise: str = "gumbel",
    oracle: Callable[[Tensor], Tensor] | None = None,
    event_dims: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Monte Carlo perturbed max :math:`\hat F_\sigma(\theta) = \frac1n \sum_i \langle y^*(\theta +
    \sigma Z_i), \theta + \sigma Z_i\rangle`.

    Its gradient (pathwise, the maximiser held fixed: Danskin) is
    :math:`\frac1n\sum_i y^*(\theta + \sigma Z_i)`, the forward value of
    :func:`perturbed_argmax` on the same draws. With Gumbel noise, :math:`\sigma = 1` and the
    one-hot argmax, :math:`F_1(\theta) = \mathrm{logsumexp}(\theta) + \gamma`.

    Args:
        theta, n_samples, sigma, noise, oracle, event_dims, generator: as in
            :func:`perturbed_argmax`.

    Returns:
        Tensor ``[*batch]`` (``theta``'s shape without the last ``event_dims`` dimensions).

    Raises:
        TypeError, ValueError: as :func:`perturbed_argmax`.

    Example:
        >>> theta = torch.zeros(2, dtype=torch.float64)
        >>> f = perturbed_max(theta, 100000, generator=torch.Generator().manual_seed(0))
        >>> abs(float(f) - (0.6931 + 0.5772)) < 0.02  # log 2 + Euler's gamma
        True
    """
    n_samples, sigma, event_dims = _check_common(theta, n_samples, sigma, noise, oracle,
                                                 generator, event_dims)
    z, _, _, ys = _solve(theta, n_samples, sigma, noise, oracle, generator)
    values = ys * (theta.unsqueeze(0) + sigma * z)
    if event_dims:
        values = values.sum(dim=tuple(range(-event_dims, 0)))
    return values.mean(0)
