"""The Gumbel distribution and the Gumbel-max trick.

If ``G_1, ..., G_K`` are independent standard Gumbel variables and ``logits`` are any real
scores, then ``argmax_k (logits_k + G_k)`` is distributed as ``Categorical(softmax(logits))``
(the Gumbel-max trick), and the indices of the ``k`` largest perturbed scores are ``k`` draws
without replacement (the Gumbel-top-k trick). Sampling becomes maximisation.

References:
    E. J. Gumbel (1954), *Statistical Theory of Extreme Values and Some Practical Applications*.
    C. J. Maddison, D. Tarlow, T. Minka (2014), *A* Sampling*, NeurIPS.
    W. Kool, H. van Hoof, M. Welling (2019), *Stochastic Beams and Where to Find Them: The
    Gumbel-Top-k Trick for Sampling Sequences Without Replacement*, ICML.
    M. B. Paulus, C. J. Maddison, A. Krause (2021), *Rao-Blackwellizing the Straight-Through
    Gumbel-Softmax Gradient Estimator*, ICLR (:func:`conditional_gumbel`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from lib import _validation, rng
from lib._validation import (
    _is_compiling,
    check_generator,
    check_int,
    check_logits,
    check_real,
    check_tensor,
    type_name,
    validating,
)

__all__ = [
    "conditional_gumbel",
    "gumbel_cdf",
    "gumbel_log_prob",
    "gumbel_max_sample",
    "gumbel_topk_sample",
    "sample_gumbel",
]

if TYPE_CHECKING:  # annotations only (postponed by the __future__ import): Python 3.9 is fine
    ShapeLike = int | Sequence[int] | torch.Size


def _as_shape(shape: ShapeLike) -> tuple[int, ...]:
    """Turn an int, tuple or ``torch.Size`` into a tuple of non-negative ints."""
    if type(shape) is torch.Size:  # fast path: sizes of an existing tensor are valid
        return tuple(shape)
    if isinstance(shape, bool):
        raise TypeError(f"shape must be an int, tuple of ints or torch.Size, got bool {shape!r}")
    if isinstance(shape, int):
        shape = (shape,)
    if not isinstance(shape, Sequence):
        raise TypeError(
            f"shape must be an int, tuple of ints or torch.Size, got {type_name(shape)}"
        )
    return tuple(check_int(s, "shape entries", min_value=0) for s in shape)


def _check_float_dtype(dtype: torch.dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(
            f"dtype must be a floating-point torch.dtype such as torch.float32 or "
            f"torch.float64, got {dtype!r}"
        )
    return dtype


# --- fast paths for small tensors ---------------------------------------------------------
# On a few numbers, a sampler's time is fixed per-call cost: each PyTorch operation costs
# microseconds whatever its size. The helpers below cut that cost for plain float32/float64 CPU
# tensors in eager mode without changing a single bit of the results (tests/test_relaxed.py
# compares with the plain forms).

_FLOAT32, _FLOAT64 = torch.float32, torch.float64


def _constants_ok(like: Tensor) -> bool:
    """Whether the fast paths apply to ``like``: a plain float32 or float64 CPU tensor, eager.

    Not while ``torch.compile`` traces (numbers are constants of the graph there), nor for
    tensor subclasses (the fake tensors of a tracer), other devices or other dtypes.
    """
    if type(like) is not Tensor or not like.is_cpu:
        return False
    dtype = like.dtype
    return (dtype is _FLOAT32 or dtype is _FLOAT64) and not _is_compiling()


@functools.lru_cache(maxsize=256)
def _cpu_constant(value: float, dtype: torch.dtype) -> Tensor:
    """``value`` as a 0-d CPU tensor of ``dtype`` (float32 or float64), made once.

    An operation with a Python number wraps it in a new tensor on every call, which costs more
    than the operation itself on a few numbers (about half of the division of ``[1, 10]``
    scores by ``tau``). With a 0-d tensor of the same dtype the result is the same, bit for bit:
    for float32 and float64 the number is converted to ``dtype`` either way (for float16 and
    bfloat16 it is not: the operation runs in float32 with the unrounded number). Made outside
    inference mode, so that autograd may save it whatever the mode of the first call; never
    modified.
    """
    with torch.inference_mode(False):
        return torch.tensor(value, dtype=dtype, device="cpu")


@functools.cache
def _open_bounds_cpu(dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """``(finfo.tiny, 1 - finfo.eps / 2)`` of ``dtype`` as :func:`_cpu_constant` tensors."""
    finfo = torch.finfo(dtype)
    return _cpu_constant(finfo.tiny, dtype), _cpu_constant(1.0 - finfo.eps / 2, dtype)


def _clamp_open_(u: Tensor, fast: bool | None = None) -> Tensor:
    """Clamp uniform draws ``u`` in place into ``[tiny, 1 - eps/2]``, strictly inside (0, 1).

    ``tiny`` is the smallest positive normal number of ``u.dtype`` and ``1 - eps/2`` the largest
    number below 1, so ``log(u)`` and ``log(1 - u)`` are finite (even if a generator returned
    an exact 0 or 1). ``fast``: the value of :func:`_constants_ok` for ``u``, if the caller has
    it already.
    """
    if fast if fast is not None else _constants_ok(u):
        return u.clamp_(*_open_bounds_cpu(u.dtype))
    finfo = torch.finfo(u.dtype)
    return u.clamp_(min=finfo.tiny, max=1.0 - finfo.eps / 2)


def _uniform_open(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device | str | None,
) -> Tensor:
    """Uniform draws strictly inside (0, 1) in ``dtype``: ``[tiny, 1 - eps/2]``.

    Drawn on the generator's device and moved to ``device`` (:func:`lib.rng.rand`), then
    clamped (:func:`_clamp_open_`), so ``log(u)`` and ``log(1 - u)`` are always finite.
    """
    return _clamp_open_(rng.rand(shape, generator=generator, dtype=dtype, device=device))


def _uniform_open_like(
    like: Tensor, generator: torch.Generator | None, fast: bool | None = None
) -> Tensor:
    """``_uniform_open(like.shape, generator, like.dtype, like.device)``, the same numbers.

    :func:`lib.rng.rand_like` is what ``torch.rand`` runs, minus the parsing of a shape, dtype
    and device (several microseconds per call, which dominate for small tensors). ``fast``: the
    value of ``_constants_ok(like)``, if the caller has it already.
    """
    return _clamp_open_(rng.rand_like(like, generator=generator), fast)


def sample_gumbel(
    shape: ShapeLike,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Draw standard Gumbel(0, 1) noise by inverse-CDF sampling.

    The standard Gumbel CDF is :math:`F(g) = \exp(-\exp(-g))`, so with
    :math:`U \sim \mathrm{Uniform}(0, 1)`

    .. math:: G = F^{-1}(U) = -\log(-\log U).

    ``U`` is clamped into ``[finfo(dtype).tiny, 1 - finfo(dtype).eps / 2]``, strictly inside
    (0, 1), so ``G`` is always finite (an exact 0 or 1 from the uniform generator would give
    ``-inf`` or ``+inf``). Mean: Euler's constant 0.5772...; variance: :math:`\pi^2/6`.

    Args:
        shape: output shape: an int, a tuple of ints or a ``torch.Size``.
        generator: optional ``torch.Generator`` for reproducible draws, on the CPU or on
            ``device`` (the numbers are drawn on the generator's device, see :mod:`lib.rng`).
        dtype: floating-point dtype of the output (float32 and float64 are tested).
        device: device of the output (None: the default device).

    Returns:
        Tensor of shape ``shape`` and dtype ``dtype`` with i.i.d. standard Gumbel entries.

    Example:
        >>> g = sample_gumbel((10000,), generator=torch.Generator().manual_seed(0))
        >>> abs(g.mean().item() - 0.5772) < 0.05
        True

    Reference:
        E. J. Gumbel (1954), *Statistical Theory of Extreme Values*.
    """
    shape = _as_shape(shape)
    dtype = _check_float_dtype(dtype)
    check_generator(generator, device=device)
    u = _uniform_open(shape, generator, dtype, device)
    return u.log_().neg_().log_().neg_()


def gumbel_max_sample(
    logits: Tensor,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Sample categorical indices with the Gumbel-max trick.

    .. math:: z = \arg\max_k (\ell_k + G_k), \quad G_k \sim \mathrm{Gumbel}(0, 1)
              \ \Rightarrow\ P(z = k) = \mathrm{softmax}(\ell)_k.

    ``logits`` may be unnormalised (softmax is shift-invariant, so log-probabilities give the
    same distribution). Entries equal to ``-inf`` have probability 0 and are never chosen.

    Args:
        logits: floating tensor of shape ``[..., K]`` (categories along ``dim``).
        dim: the category dimension.
        generator: optional ``torch.Generator`` on the CPU or on the logits' device. Noise has
            the logits' dtype and device.

    Returns:
        LongTensor of indices in ``[0, K)`` with the shape of ``logits`` minus ``dim``.

    Raises:
        TypeError, ValueError: with validation on (the default, see
            :func:`lib.set_default_validate_args`), for logits that are not a floating tensor,
            a bad ``dim`` or ``generator``, or logits with NaN, ``+inf`` or an all ``-inf``
            slice (their values are read once, which waits for the device). With validation
            off nothing is checked.

    Example:
        >>> logits = torch.log(torch.tensor([0.1, 0.2, 0.7]))
        >>> gumbel_max_sample(logits.expand(5, 3), generator=torch.Generator().manual_seed(0))
        tensor([1, 2, 1, 2, 2])

    Reference:
        Maddison, Tarlow, Minka (2014), *A* Sampling*, NeurIPS.
    """
    if _validation._validate_args:  # off: the caller vouches for the arguments (a hot path)
        check_logits(logits, dim=dim)
        check_generator(generator, like=logits)
    u = _uniform_open_like(logits, generator)
    # logits - log(-log u) equals logits + sample_gumbel(...) bit for bit (a - b == a + (-b)
    # in IEEE arithmetic), with one pass over the noise fewer
    return (logits.detach() - u.log_().neg_().log_()).argmax(dim=dim)


def gumbel_topk_sample(
    logits: Tensor,
    k: int,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Sample ``k`` categories without replacement with the Gumbel-top-k trick.

    The indices of the ``k`` largest perturbed logits :math:`\ell_j + G_j`, in decreasing order
    of perturbed value, are distributed as ``k`` successive draws without replacement, each
    from the softmax of the logits of the categories not drawn yet:

    .. math:: P(i_1, \dots, i_k) = \prod_{j=1}^{k}
              \frac{e^{\ell_{i_j}}}{\sum_{m \notin \{i_1,\dots,i_{j-1}\}} e^{\ell_m}}.

    Args:
        logits: floating tensor of shape ``[..., K]`` (categories along ``dim``).
        k: number of distinct categories to draw, ``1 <= k <= K``; every slice needs at
            least ``k`` finite logits (``-inf`` entries can never be drawn; checked with
            validation on, see :func:`lib.set_default_validate_args`).
        dim: the category dimension.
        generator: optional ``torch.Generator`` on the CPU or on the logits' device.

    Returns:
        LongTensor of shape ``[..., k]``: the ``logits`` shape with ``dim`` resized to ``k``
        (as in ``torch.topk``); first index = the first draw, and so on.

    Example:
        >>> logits = torch.zeros(6)
        >>> gumbel_topk_sample(logits, 3, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([3])

    Reference:
        Kool, van Hoof, Welling (2019), *Stochastic Beams and Where to Find Them*, ICML.
    """
    check_logits(logits, dim=dim)
    n_categories = logits.shape[dim]
    k = check_int(k, "k", min_value=1, max_value=n_categories)
    check_generator(generator, like=logits)
    if validating():
        _check_enough_finite(logits, k, dim)
    noise = sample_gumbel(
        logits.shape, generator=generator, dtype=logits.dtype, device=logits.device
    )
    return torch.topk(logits.detach() + noise, k, dim=dim, largest=True, sorted=True).indices


def _check_enough_finite(logits: Tensor, k: int, dim: int) -> None:
    """ValueError unless every slice of ``logits`` along ``dim`` has ``k`` finite entries."""
    n_finite = torch.isfinite(logits).sum(dim=dim)
    if bool((n_finite < k).any()):
        raise ValueError(
            f"k={k} exceeds the number of categories with finite logits "
            f"(min {int(n_finite.min())} in some slice along dim={dim}); -inf categories "
            f"cannot be drawn, so lower k or unmask more categories"
        )


def _gumbel_z(x: Tensor, loc: float | Tensor, scale: float | Tensor) -> Tensor:
    check_tensor(x, "x")
    if isinstance(loc, Tensor):
        check_tensor(loc, "loc")
    else:
        loc = check_real(loc, "loc")
    if isinstance(scale, Tensor):
        check_tensor(scale, "scale")
        if validating() and not bool(((scale > 0) & torch.isfinite(scale)).all()):
            raise ValueError(f"scale must be finite and > 0 everywhere (got {scale.detach()})")
    else:
        scale = check_real(scale, "scale", gt=0.0)
    return (x - loc) / scale


def gumbel_cdf(x: Tensor, loc: float | Tensor = 0.0, scale: float | Tensor = 1.0) -> Tensor:
    r"""Cumulative distribution function of :math:`\mathrm{Gumbel}(\mu, \beta)`.

    .. math:: F(x) = \exp\!\big(-\exp(-(x - \mu)/\beta)\big).

    Args:
        x: floating tensor of any shape ``[...]``.
        loc: location :math:`\mu` (float or tensor broadcastable with ``x``).
        scale: scale :math:`\beta > 0` (float or tensor broadcastable with ``x``; a tensor's
            values are checked with validation on, see :func:`lib.set_default_validate_args`).

    Returns:
        Tensor of broadcast shape with values in ``[0, 1]``.

    Example:
        >>> gumbel_cdf(torch.tensor([0.0]))  # exp(-1)
        tensor([0.3679])

    Reference:
        Gumbel (1954).
    """
    z = _gumbel_z(x, loc, scale)
    return torch.exp(-torch.exp(-z))


def gumbel_log_prob(
    x: Tensor, loc: float | Tensor = 0.0, scale: float | Tensor = 1.0
) -> Tensor:
    r"""Log density of :math:`\mathrm{Gumbel}(\mu, \beta)`.

    .. math:: \log p(x) = -z - e^{-z} - \log\beta, \qquad z = (x - \mu)/\beta.

    Args:
        x: floating tensor of any shape ``[...]``.
        loc: location :math:`\mu` (float or tensor broadcastable with ``x``).
        scale: scale :math:`\beta > 0` (float or tensor broadcastable with ``x``; a tensor's
            values are checked with validation on, see :func:`lib.set_default_validate_args`).

    Returns:
        Tensor of broadcast shape (``-inf`` far in the left tail, where the density underflows).

    Example:
        >>> gumbel_log_prob(torch.tensor([0.0]))  # log density at the mode: -1
        tensor([-1.])

    Reference:
        Gumbel (1954).
    """
    z = _gumbel_z(x, loc, scale)
    log_scale = torch.log(scale) if isinstance(scale, Tensor) else math.log(scale)
    return -z - torch.exp(-z) - log_scale


def conditional_gumbel(
    logits: Tensor,
    winner: Tensor,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Gumbel noise conditioned on the Gumbel-max winner: :math:`G \mid \arg\max(\ell + G) = i`.

    The perturbed logits :math:`X_j = \ell_j + G_j` of i.i.d. standard Gumbels, conditioned on
    :math:`\arg\max_j X_j = i`, are drawn by the truncated-Gumbel construction (Maddison,
    Tarlow, Minka 2014; Paulus, Maddison, Krause 2021). The maximum is
    :math:`\mathrm{Gumbel}(\operatorname{logsumexp}(\ell))` whoever wins, and independent of
    the winner; given the maximum :math:`M`, each other :math:`X_j` is a
    :math:`\mathrm{Gumbel}(\ell_j)` truncated below :math:`M`. With :math:`E_j` i.i.d.
    standard exponentials (:math:`E = -\log U`),

    .. math::
        X_i = M = \operatorname{logsumexp}(\ell) - \log E_i, \qquad
        X_j = -\log\big(e^{-M} + E_j\, e^{-\ell_j}\big) \quad (j \ne i),

    since :math:`-\log(e^{-M} + e^{-Y})` with :math:`Y \sim \mathrm{Gumbel}(\ell_j)` is
    :math:`\mathrm{Gumbel}(\ell_j)` truncated to :math:`(-\infty, M)`. The function returns the
    noise :math:`G = X - \ell`. Averaging a function of :math:`\ell + G` over these draws is
    the Rao-Blackwellisation of Gumbel-Rao (``gumbel_rao`` in :mod:`lib.estimators`). Chapter 11
    checks the construction against rejection sampling.

    The noise is a constant: no gradient flows through it into ``logits`` (add it to the
    logits to get perturbed logits that carry the logits' gradient). Categories with logit
    ``-inf`` get noise 0 (their perturbed logit stays ``-inf``). In floating point a
    non-winner can tie with the maximum when its truncated value rounds to :math:`M`
    (:math:`e^{-\ell_j} E_j` below the rounding of :math:`e^{-M}`, probability about
    ``eps``); ``argmax`` then returns the first of the tied indices.

    Args:
        logits: floating tensor ``[..., K]`` (categories on the last dimension), unnormalised;
            ``-inf`` masks a category.
        winner: integer tensor of category indices in ``[0, K)``, of a shape that broadcasts
            with ``logits.shape[:-1]``, such as ``gumbel_max_sample(logits)`` or, with extra
            leading dimensions, several draws per winner (``winner.expand(n, *batch)``). Each
            winner must have a finite logit (checked with validation on, see
            :func:`lib.set_default_validate_args`).
        generator: optional ``torch.Generator`` on the CPU or on the logits' device. Noise has
            the logits' dtype and device.

    Returns:
        Tensor ``[*broadcast(logits.shape[:-1], winner.shape), K]`` of noise ``G`` with
        ``argmax(logits + G) == winner``, detached.

    Raises:
        TypeError: for logits that are not a floating tensor, a ``winner`` that is not an
            integer tensor, or a bad ``generator``.
        ValueError: for shapes that do not broadcast; with validation on, also for winners
            outside ``[0, K)`` or with logit ``-inf``, and for logits with NaN or ``+inf``.

    Example:
        >>> logits = torch.log(torch.tensor([0.1, 0.2, 0.7]))
        >>> winner = torch.tensor([0, 0, 0, 0])
        >>> g = conditional_gumbel(logits, winner, generator=torch.Generator().manual_seed(0))
        >>> (logits + g).argmax(-1)
        tensor([0, 0, 0, 0])

    References:
        C. J. Maddison, D. Tarlow, T. Minka (2014), *A* Sampling*, NeurIPS (truncated Gumbels).
        M. B. Paulus, C. J. Maddison, A. Krause (2021), *Rao-Blackwellizing the
        Straight-Through Gumbel-Softmax Gradient Estimator*, ICLR.
    """
    check_logits(logits)
    if not isinstance(winner, Tensor):
        raise TypeError(f"winner must be an integer torch.Tensor of category indices, got "
                        f"{type_name(winner)}")
    if winner.is_floating_point() or winner.is_complex() or winner.dtype == torch.bool:
        raise TypeError(f"winner must be an integer tensor of category indices, got dtype "
                        f"{winner.dtype}; convert with winner.long() (or argmax a one-hot)")
    check_generator(generator, like=logits)
    try:
        batch = torch.broadcast_shapes(logits.shape[:-1], winner.shape)
    except RuntimeError:
        raise ValueError(f"winner's shape {tuple(winner.shape)} must broadcast with the "
                         f"logits' shape without its last dimension "
                         f"{tuple(logits.shape[:-1])}") from None
    n_categories = logits.shape[-1]
    winner = winner.to(logits.device)
    if validating():
        if bool(((winner < 0) | (winner >= n_categories)).any()):
            raise ValueError(f"winner must hold category indices in [0, {n_categories}), got "
                             f"values from {int(winner.min())} to {int(winner.max())}")
    logits = logits.detach().expand(*batch, n_categories)
    index = winner.expand(batch).unsqueeze(-1)
    if validating() and not bool(torch.isfinite(logits.gather(-1, index)).all()):
        raise ValueError("every winner must have a finite logit: a category with logit -inf "
                         "has probability 0 and never wins")
    log_e = torch.log(-torch.log(_uniform_open_like(logits, generator)))  # log E, E ~ Exp(1)
    # M = logsumexp(logits) - log E_winner
    top = torch.logsumexp(logits, dim=-1, keepdim=True) - log_e.gather(-1, index)
    # X_j = -log(exp(-M) + E_j exp(-logits_j)) = -logaddexp(-M, log E_j - logits_j)
    others = -torch.logaddexp(-top, log_e - logits)
    is_winner = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, index, True)
    perturbed = torch.where(is_winner, top.expand_as(logits), others)
    return torch.where(torch.isfinite(logits), perturbed - logits, torch.zeros_like(logits))
