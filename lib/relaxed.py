"""Continuous relaxations of discrete samples: Gumbel-softmax / Concrete and Binary Concrete.

A relaxed sample replaces the argmax of the Gumbel-max trick with a tempered softmax,

.. math:: y = \\mathrm{softmax}\\big((\\ell + G)/\\tau\\big),

a differentiable function of the logits. Low temperatures give nearly one-hot samples (low
bias, high gradient variance); high temperatures give nearly uniform vectors. With
``hard=True`` the forward value is the exact one-hot sample and the gradient is the relaxed
one (straight-through Gumbel-softmax).

References:
    E. Jang, S. Gu, B. Poole (2017), *Categorical Reparameterization with Gumbel-Softmax*, ICLR.
    C. J. Maddison, A. Mnih, Y. W. Teh (2017), *The Concrete Distribution: A Continuous
    Relaxation of Discrete Random Variables*, ICLR.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lib import _validation, rng
from lib._validation import (
    _is_compiling,
    broadcast_shapes,
    check_bool,
    check_dim,
    check_generator,
    check_logits,
    check_tau,
    check_tensor,
    validating,
)
from lib.estimators import straight_through
from lib.gumbel import (
    _FLOAT32,
    _FLOAT64,
    _clamp_open_,
    _cpu_constant,
    _open_bounds_cpu,
    _uniform_open,
    sample_gumbel,
)

__all__ = [
    "concrete_log_prob",
    "gumbel_softmax",
    "relaxed_bernoulli",
    "tempered_sample",
]


def gumbel_softmax(
    logits: Tensor,
    tau: float | Tensor = 1.0,
    *,
    hard: bool = False,
    dim: int = -1,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Draw a Gumbel-softmax (Concrete) sample, optionally straight-through (``hard=True``).

    .. math:: y_k = \frac{\exp((\ell_k + G_k)/\tau)}{\sum_j \exp((\ell_j + G_j)/\tau)},
              \qquad G_k \sim \mathrm{Gumbel}(0, 1)\ \text{i.i.d.}

    The noise is drawn by inverse CDF (:func:`lib.gumbel.sample_gumbel`), which is faster on
    CPU than the exponential sampler of ``torch.nn.functional.gumbel_softmax``.

    With ``hard=True`` the forward value is the one-hot vector of
    :math:`\arg\max_k(\ell_k + G_k)`, an exact sample of ``Categorical(softmax(logits))`` for
    every ``tau``, equal bit for bit to a one-hot vector; the gradient is the gradient of the
    soft sample computed from the same noise (see :func:`lib.estimators.straight_through`).
    With the same ``generator`` state, ``hard=False`` and ``hard=True`` use the same noise.

    Args:
        logits: floating tensor ``[..., K]`` of unnormalised log-probabilities (``-inf`` masks
            a category).
        tau: temperature > 0: a float, or a tensor broadcastable to ``logits`` with size 1
            along ``dim``.
        hard: return the straight-through one-hot sample instead of the relaxed one.
        dim: the category dimension.
        generator: optional ``torch.Generator`` on the CPU or on the logits' device (numbers
            drawn on the generator's device, see :mod:`lib.rng`). Under ``torch.compile``
            leave it None and seed with ``torch.manual_seed``: a generator cannot be traced.

    Returns:
        Tensor of the shape and dtype of ``logits``: points of the simplex along ``dim``
        (one-hot vectors if ``hard``).

    Raises:
        TypeError, ValueError: with validation on (the default, see
            :func:`lib.set_default_validate_args`), for arguments of the wrong type, shape or
            value (:func:`lib._validation.check_logits`, ``check_tau``). The values of
            ``logits`` are read once (NaN, ``+inf``, an all ``-inf`` slice), which waits for
            the device, except while ``torch.compile`` traces. With validation off only
            ``tau``'s type and shape are checked, and bad values give NaN.

    Example:
        >>> logits = torch.zeros(2, 3, requires_grad=True)
        >>> y = gumbel_softmax(logits, tau=0.5, hard=True)
        >>> y.sum(-1)
        tensor([1., 1.], grad_fn=<SumBackward1>)

    Reference:
        Jang, Gu, Poole (2017), ICLR; Maddison, Mnih, Teh (2017), ICLR.
    """
    if _validation._validate_args:  # off: the caller vouches for the arguments (a hot path)
        check_logits(logits, dim=dim)
        check_bool(hard, "hard")
        check_generator(generator, like=logits)
    tau = check_tau(tau, like=logits, dim=dim)  # always: it also converts tau
    # lib.rng.rand_like and lib.gumbel._uniform_open_like written out: on a few numbers every
    # Python call shows in the time. The same bits
    if generator is None and logits.is_contiguous():
        u = torch.rand_like(logits)
    else:
        u = rng.rand_like(logits, generator=generator)
    dtype = logits.dtype
    if (type(logits) is Tensor and logits.is_cpu and (dtype is _FLOAT32 or dtype is _FLOAT64)
            and not _is_compiling()):  # lib.gumbel._constants_ok
        # the lower bound only: PyTorch's CPU uniform_ draws k * 2**-digits with k < 2**digits,
        # so u <= 1 - eps/2 already (tests/test_gumbel.py checks the grid)
        u.clamp_min_(_open_bounds_cpu(dtype)[0])
        if type(tau) is float:  # a cached 0-d tensor: the same bits, less fixed cost
            tau = _cpu_constant(tau, dtype)
    else:
        _clamp_open_(u, False)
    # logits - log(-log u) equals logits + sample_gumbel(...) bit for bit (a - b == a + (-b)
    # in IEEE arithmetic), with one pass over the noise fewer
    perturbed = logits - u.log_().neg_().log_()
    if hard:  # the argmax of the perturbed logits, before they are divided in place below
        index = perturbed.detach().argmax(dim=dim, keepdim=True)
    if isinstance(tau, Tensor) and tau.requires_grad:
        # a learned temperature: keep masked (-inf) entries out of d/dtau, where -inf * 0 = NaN
        finite = torch.isfinite(perturbed)
        safe = torch.where(finite, perturbed, perturbed.new_zeros(()))
        scores = torch.where(finite, safe / tau, perturbed)
    else:  # in place: the same values
        scores = perturbed.div_(tau)
    soft = scores.softmax(dim)
    if not hard:
        return soft
    # straight_through(one_hot, soft) in one pass instead of three (zeros, scatter, add):
    # soft - sg(soft) is exactly 0 and carries soft's gradient; adding 1.0 at the argmax makes
    # its value the one-hot vector bit for bit, and scatter_add_ passes the gradient unchanged
    out = soft - soft.detach()
    return out.scatter_add_(dim, index, torch.ones_like(index, dtype=soft.dtype))


def relaxed_bernoulli(
    logits: Tensor,
    tau: float | Tensor = 1.0,
    *,
    hard: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Draw a Binary Concrete (relaxed Bernoulli) sample, optionally straight-through.

    .. math:: y = \sigma\big((\ell + L)/\tau\big), \qquad L = \log U - \log(1 - U)
              \sim \mathrm{Logistic}(0, 1),\ U \sim \mathrm{Uniform}(0, 1).

    ``U`` is kept strictly inside (0, 1), and the logits are never turned into clamped
    probabilities, so unlike ``torch.distributions.RelaxedBernoulli`` (which saturates for
    float32 logits beyond about +-15.9) values and gradients stay finite and informative for
    any finite logits.

    With ``hard=True`` the forward value is exactly ``(logits + L > 0)`` as 0./1., an exact
    ``Bernoulli(sigmoid(logits))`` sample, and the gradient is that of the soft sample.

    Args:
        logits: finite floating tensor of any shape ``[...]``, one logit per variable.
        tau: temperature > 0: a float or a tensor broadcastable to ``logits``.
        hard: return the straight-through 0/1 sample instead of the relaxed one.
        generator: optional ``torch.Generator`` on the CPU or on the logits' device. Under
            ``torch.compile`` leave it None and seed with ``torch.manual_seed``.

    Returns:
        Tensor of the shape and dtype of ``logits`` with values in [0, 1] ({0, 1} if ``hard``).

    Raises:
        TypeError, ValueError: with validation on (the default, see
            :func:`lib.set_default_validate_args`), for arguments of the wrong type, shape or
            value; the logits' values are read once (NaN, infinities), which waits for the
            device, except while ``torch.compile`` traces. With validation off only ``tau``'s
            type and shape are checked.

    Example:
        >>> logits = torch.tensor([-2.0, 0.0, 2.0], requires_grad=True)
        >>> z = relaxed_bernoulli(logits, 2 / 3, hard=True)
        >>> set(z.tolist()) <= {0.0, 1.0}, z.requires_grad
        (True, True)

    Reference:
        Maddison, Mnih, Teh (2017), ICLR, section 3.3 (Binary Concrete).
    """
    if _validation._validate_args:  # off: the caller vouches for the arguments (a hot path)
        check_logits(logits, dim=None)
        check_bool(hard, "hard")
        check_generator(generator, like=logits)
    tau = check_tau(tau, like=logits)  # always: it also converts tau
    u = _uniform_open(tuple(logits.shape), generator, logits.dtype, logits.device)
    noise = torch.log(u) - torch.log1p(-u)
    perturbed = logits + noise
    soft = torch.sigmoid(perturbed / tau)
    if not hard:
        return soft
    return straight_through((perturbed.detach() > 0).to(soft.dtype), soft)


def concrete_log_prob(
    y: Tensor,
    logits: Tensor,
    tau: float | Tensor,
    *,
    dim: int = -1,
) -> Tensor:
    r"""Log density of the Concrete (Gumbel-softmax) distribution at a point of the simplex.

    For :math:`n` categories (Maddison, Mnih, Teh 2017, eq. 10, in log space):

    .. math::
        \log p(y) = \log\Gamma(n) + (n-1)\log\tau
            + \sum_{k=1}^{n}\big[\ell_k - (\tau+1)\log y_k\big]
            - n \log\sum_{k=1}^{n}\exp(\ell_k - \tau\log y_k).

    This is the density with respect to Lebesgue measure on the first :math:`n-1`
    coordinates (the last one being :math:`1 - \sum_{k<n} y_k`), the convention of
    ``torch.distributions.RelaxedOneHotCategorical.log_prob``, which it matches. It is
    invariant to adding a constant to the logits. Densities can exceed 1, so positive values
    are normal.

    Args:
        y: floating tensor ``[..., n]``, strictly positive and summing to 1 along ``dim``
            (checked with validation on, see :func:`lib.set_default_validate_args`, as the
            values of ``logits`` and a tensor ``tau``).
        logits: floating tensor ``[..., n]``; leading dimensions broadcast with ``y``'s.
        tau: temperature > 0: a float, or a tensor broadcastable to the broadcast shape of
            ``y`` and ``logits`` with size 1 along ``dim``.
        dim: the category dimension.

    Returns:
        Tensor of the broadcast leading shape ``[...]`` (``dim`` removed).

    Example:
        >>> logits = torch.tensor([0.0, 1.0], dtype=torch.float64)
        >>> y = torch.tensor([0.3, 0.7], dtype=torch.float64)
        >>> d = torch.distributions.RelaxedOneHotCategorical(torch.tensor(0.5), logits=logits)
        >>> torch.allclose(concrete_log_prob(y, logits, 0.5), d.log_prob(y))
        True

    Reference:
        Maddison, Mnih, Teh (2017), *The Concrete Distribution*, ICLR.
    """
    check_tensor(y, "y")
    check_logits(logits, dim=dim)
    check_dim(y, dim, tensor_name="y")
    if dim >= 0 and y.dim() != logits.dim():
        raise ValueError(
            f"with y of {y.dim()} and logits of {logits.dim()} dimensions, dim={dim} is "
            f"ambiguous; use a negative dim such as -1"
        )
    n = y.shape[dim]
    if logits.shape[dim] != n:
        raise ValueError(
            f"y and logits must have the same number of categories along dim={dim}, got "
            f"y.shape={tuple(y.shape)} and logits.shape={tuple(logits.shape)}"
        )
    shape = broadcast_shapes(y.shape, logits.shape)
    if shape is None:
        raise ValueError(
            f"the leading dimensions of y {tuple(y.shape)} and logits {tuple(logits.shape)} "
            f"must broadcast"
        )
    dtype = torch.promote_types(y.dtype, logits.dtype)
    tau = check_tau(tau, like=torch.empty(shape, dtype=dtype, device="meta"), dim=dim)
    if y.numel() > 0 and validating():
        _check_simplex_point(y, dim)
    y = y.to(dtype)
    logits = logits.to(dtype)
    log_y = torch.log(y)
    log_tau = torch.log(tau) if isinstance(tau, Tensor) else math.log(tau)
    out = (
        math.lgamma(n)
        + (n - 1) * log_tau
        + (logits - (tau + 1) * log_y).sum(dim=dim, keepdim=True)
        - n * torch.logsumexp(logits - tau * log_y, dim=dim, keepdim=True)
    )
    return out.squeeze(dim)


def _check_simplex_point(y: Tensor, dim: int) -> None:
    """ValueError unless ``y`` is strictly positive and sums to 1 along ``dim``."""
    y = y.detach()
    # fast path: one reduction (NaN propagates into the min) and one sync for both tests
    if not y.min().item() > 0:
        if bool(torch.isnan(y).any()):
            raise ValueError("y must not contain NaN")
        raise ValueError(
            f"y must be strictly positive (a point of the open simplex), got min "
            f"{float(y.min())}; Concrete samples at very low tau can underflow to exact "
            f"0 in float32: use float64 logits or a higher tau"
        )
    # rounding of a sum of n terms: a few n * eps; never tighter than 1e-6 (as the
    # simplex constraint of torch.distributions), so float32 data cast to float64 passes
    tol = max(1e-6, 8 * y.shape[dim] * torch.finfo(y.dtype).eps)
    # max |sum - 1| from the extreme sums: 2 kernels instead of 4 (sum - 1 is exact near 1)
    low, high = torch.aminmax(y.sum(dim=dim))
    error = max(high.item() - 1.0, 1.0 - low.item())
    if not error <= tol:
        raise ValueError(
            f"y must sum to 1 along dim={dim} (a point of the simplex), but a sum is off "
            f"by {error:.3g} (tolerance {tol:.3g}); normalise with "
            f"y / y.sum(dim, keepdim=True)"
        )


def tempered_sample(
    logits: Tensor,
    tau: float | Tensor,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Exact sample of ``Categorical(softmax(logits / tau))`` by the Gumbel-max trick.

    .. math:: z = \arg\max_k (\ell_k/\tau + G_k) = \arg\max_k (\ell_k + \tau G_k).

    Unlike the argmax of a Gumbel-softmax sample (distributed as ``softmax(logits)`` for every
    ``tau``), this sample depends on ``tau``: peakier for ``tau < 1``, flatter for ``tau > 1``.
    It is computed as ``argmax((logits - max(logits)) / tau + G)``: shifting by the maximum
    leaves the distribution unchanged, cannot overflow when ``logits / tau`` would, and keeps
    ties among the largest logits exact (with ``logits + tau * G`` instead, ``tau * G`` falls
    below the float spacing of large logits at small ``tau`` and ties go to the first index).

    Args:
        logits: floating tensor ``[..., K]`` (``-inf`` masks a category; NaN, ``+inf`` and all
            ``-inf`` slices are refused with validation on, see
            :func:`lib.set_default_validate_args`).
        tau: temperature > 0: a float, or a tensor broadcastable to ``logits`` with size 1
            along ``dim``.
        dim: the category dimension.
        generator: optional ``torch.Generator`` on the CPU or on the logits' device.

    Returns:
        LongTensor of indices with the shape of ``logits`` minus ``dim``.

    Example:
        >>> logits = torch.tensor([0.0, 1.0, 2.0])
        >>> tempered_sample(logits, 1e-3, generator=torch.Generator().manual_seed(0))
        tensor(2)

    Reference:
        Maddison, Tarlow, Minka (2014), *A* Sampling*, NeurIPS.
    """
    check_logits(logits, dim=dim)
    tau = check_tau(tau, like=logits, dim=dim)
    noise = sample_gumbel(
        logits.shape, generator=generator, dtype=logits.dtype, device=logits.device
    )
    logits = logits.detach()
    shifted = logits - logits.amax(dim=dim, keepdim=True)  # <= 0 and exact near the maximum
    return (shifted / tau + noise).argmax(dim=dim)
