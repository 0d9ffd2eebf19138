r"""The Kumaraswamy distribution and the HardKuma: exact zeros and ones, reparameterised.

A **Kumaraswamy** variable :math:`K \sim \mathrm{Kuma}(a, b)`, :math:`a, b > 0`, lives on
(0, 1) like a Beta variable, but its cdf and inverse cdf have closed forms:

.. math:: F(x) = 1 - (1 - x^a)^b, \qquad
          F^{-1}(u) = \big(1 - (1 - u)^{1/b}\big)^{1/a}, \qquad
          f(x) = a b\, x^{a-1} (1 - x^a)^{b-1},

so :math:`K = F^{-1}(U)`, :math:`U \sim \mathrm{Uniform}(0, 1)`, is a sample that is a
differentiable function of :math:`(a, b)`: a reparameterised sample.

The **HardKuma** of Bastings, Aziz and Titov (2019) stretches it to an interval
:math:`(l, r) \supset [0, 1]` and rectifies the result into :math:`[0, 1]`:

.. math:: T = l + (r - l) K, \qquad Z = \min\big(1, \max(0, T)\big).

Every :math:`T \le 0` becomes an exact 0 and every :math:`T \ge 1` an exact 1, so :math:`Z`
has two point masses and a continuous part in between, all in closed form through the cdf:

.. math:: P(Z = 0) = F\Big(\frac{-l}{r - l}\Big), \qquad
          P(Z = 1) = 1 - F\Big(\frac{1 - l}{r - l}\Big), \qquad
          P(0 < Z < 1) = 1 - P(Z = 0) - P(Z = 1).

The sample is still reparameterised (the rectifier's gradient is 1 inside (0, 1) and 0
outside), and the expected number of non-zero entries, the expected :math:`L_0` norm
:math:`\sum_i P(Z_i \ne 0)`, is a differentiable function of the parameters: a sparsity
penalty or constraint needs no gradient estimator. The paper and its code use
:math:`(l, r) = (-0.1, 1.1)` (:data:`DEFAULT_SUPPORT`).

Numerics: everything is computed in log space, with :math:`\log(1 - e^{y})` evaluated as
``log(-expm1(y))`` or ``log1p(-exp(y))`` whichever is accurate, so the point masses keep
their relative precision when they are tiny. The uniforms come from :mod:`lib.rng` under the
book's generator convention (``lib.gumbel``'s open-interval draws, ``[tiny, 1 - eps/2]``).

References:
    P. Kumaraswamy (1980), *A generalized probability density function for double-bounded
    random processes*, Journal of Hydrology 46.
    J. Bastings, W. Aziz, I. Titov (2019), *Interpretable Neural Predictions with
    Differentiable Binary Variables*, ACL (arXiv 1905.08160), section 3.
    C. Louizos, M. Welling, D. P. Kingma (2018), *Learning Sparse Neural Networks through L0
    Regularization*, ICLR (the stretch-and-rectify construction, with the Binary Concrete).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from lib._validation import (
    check_broadcast,
    check_generator,
    check_int,
    check_real,
    check_tensor,
    type_name,
    validating,
)
from lib.gumbel import _uniform_open

__all__ = ["DEFAULT_SUPPORT", "HardKuma", "Kumaraswamy"]

#: The stretch interval (l, r) of Bastings et al. (2019) and of their code (``KumaGate``).
DEFAULT_SUPPORT = (-0.1, 1.1)


def _log1mexp(y: Tensor) -> Tensor:
    r""":math:`\log(1 - e^{y})` for :math:`y \le 0`, accurate at both ends (Maechler 2012).

    Each branch gets a harmless input where the other is used, so that the branch not taken
    cannot put an infinite derivative (``log1p(-exp(0))``) into the gradient as NaN.
    """
    near_zero = y > -math.log(2.0)
    safe = torch.full_like(y, -1.0)
    return torch.where(near_zero, torch.log(-torch.expm1(torch.where(near_zero, y, safe))),
                       torch.log1p(-torch.exp(torch.where(near_zero, safe, y))))


def _check_shape_parameter(x: Any, name: str) -> Tensor:
    x = check_tensor(x, name)
    if validating() and x.numel() and not bool(((x > 0) & torch.isfinite(x)).all()):
        raise ValueError(f"{name} must be finite and > 0 everywhere (a Kumaraswamy shape "
                         f"parameter); got min {float(x.min())}; map a network's output "
                         f"through softplus or exp")
    return x


def _check_n(n: Any) -> int | None:
    return None if n is None else check_int(n, "n", min_value=1)


class Kumaraswamy:
    r"""The Kumaraswamy distribution :math:`\mathrm{Kuma}(a, b)` on (0, 1).

    .. math:: f(x) = a b\, x^{a-1}(1 - x^a)^{b-1}, \qquad F(x) = 1 - (1 - x^a)^b, \qquad
              \mathbb{E}[K] = b\, \mathrm{B}(1 + 1/a,\, b).

    Args:
        a: floating tensor ``[*batch]`` of shape parameters > 0 (checked with validation on).
        b: floating tensor broadcastable with ``a``, > 0.

    Example:
        >>> kuma = Kumaraswamy(torch.tensor(2.0), torch.tensor(3.0))
        >>> round(float(kuma.cdf(torch.tensor(0.5))), 6)  # 1 - (1 - 0.25)^3
        0.578125
        >>> float(kuma.icdf(kuma.cdf(torch.tensor(0.5))))
        0.5
    """

    def __init__(self, a: Tensor, b: Tensor) -> None:
        a = _check_shape_parameter(a, "a")
        b = _check_shape_parameter(b, "b")
        check_broadcast([a.shape, b.shape], ["a", "b"])
        self.a, self.b = torch.broadcast_tensors(a, b)

    @property
    def batch_shape(self) -> torch.Size:
        """The shape of ``a`` and ``b`` broadcast together."""
        return self.a.shape

    def _log_xa(self, x: Tensor) -> Tensor:
        return self.a * torch.log(x)  # log(x^a)

    def log_survival(self, x: Tensor) -> Tensor:
        r""":math:`\log(1 - F(x)) = b \log(1 - x^a)` for x in (0, 1), shape: ``x`` and the
        batch broadcast; 0 for x <= 0 and -inf for x >= 1.

        Args:
            x: floating tensor broadcastable with the batch shape.
        """
        x = check_tensor(x, "x")
        inside = (x > 0) & (x < 1)
        safe = torch.where(inside, x, torch.full_like(x, 0.5))  # no log(0) in the gradient
        value = self.b * _log1mexp(self._log_xa(safe))
        outside = torch.where(x <= 0, torch.zeros_like(x), torch.full_like(x, -math.inf))
        return torch.where(inside, value, outside)

    def cdf(self, x: Tensor) -> Tensor:
        r""":math:`F(x) = 1 - (1 - x^a)^b`, clamped to 0 below 0 and 1 above 1.

        Args:
            x: floating tensor broadcastable with the batch shape.

        Returns:
            Tensor of the broadcast shape.
        """
        return -torch.expm1(self.log_survival(x))

    def icdf(self, u: Tensor) -> Tensor:
        r"""The inverse cdf :math:`F^{-1}(u) = (1 - (1 - u)^{1/b})^{1/a}` for u in [0, 1).

        Computed as :math:`\exp\big(\tfrac1a \log(-\mathrm{expm1}(\log(1 - u)/b))\big)`, so
        that a tiny :math:`u` or a large :math:`b` does not round :math:`(1-u)^{1/b}` to 1.

        Args:
            u: floating tensor of probabilities, broadcastable with the batch shape.

        Returns:
            Tensor of the broadcast shape, values in [0, 1].
        """
        u = check_tensor(u, "u")
        if validating() and u.numel() and not bool(((u >= 0) & (u < 1)).all()):
            raise ValueError("u must be in [0, 1) everywhere (probabilities)")
        inner = -torch.expm1(torch.log1p(-u) / self.b)  # 1 - (1 - u)^(1/b)
        tiny = torch.finfo(inner.dtype).tiny
        return torch.exp(torch.log(inner.clamp(min=tiny)) / self.a)

    def log_prob(self, x: Tensor) -> Tensor:
        r"""The log-density :math:`\log a + \log b + (a-1)\log x + (b-1)\log(1 - x^a)` on
        (0, 1); -inf outside.

        Args:
            x: floating tensor broadcastable with the batch shape.
        """
        x = check_tensor(x, "x")
        inside = (x > 0) & (x < 1)
        safe = torch.where(inside, x, torch.full_like(x, 0.5))
        value = (torch.log(self.a) + torch.log(self.b) + (self.a - 1) * torch.log(safe)
                 + (self.b - 1) * _log1mexp(self._log_xa(safe)))
        return torch.where(inside, value, torch.full_like(value, -math.inf))

    @property
    def mean(self) -> Tensor:
        r""":math:`\mathbb{E}[K] = b\,\Gamma(1 + 1/a)\Gamma(b) / \Gamma(1 + 1/a + b)`."""
        c = 1 + 1 / self.a
        return self.b * torch.exp(torch.lgamma(c) + torch.lgamma(self.b)
                                  - torch.lgamma(c + self.b))

    def rsample(self, n: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        r"""Reparameterised samples :math:`F^{-1}(U)`, :math:`U \sim \mathrm{Uniform}(0, 1)`.

        Args:
            n: number of samples, or None for one sample without a sample dimension.
            generator: None or a ``torch.Generator`` on the CPU or on the parameters' device
                (the uniforms are drawn there, see :mod:`lib.rng`).

        Returns:
            Tensor ``[n, *batch]`` (``[*batch]`` for ``n=None``) with gradients to ``a`` and
            ``b``.
        """
        n = _check_n(n)
        check_generator(generator, like=self.a)
        shape = tuple(self.batch_shape) if n is None else (n, *self.batch_shape)
        u = _uniform_open(shape, generator, self.a.dtype, self.a.device)
        return self.icdf(u)


def _check_support(support: Any) -> tuple[float, float]:
    if not isinstance(support, (tuple, list)) or len(support) != 2:
        raise TypeError(f"support must be a pair (l, r) of real numbers, got "
                        f"{type_name(support)} {support!r}")
    left = check_real(support[0], "support[0]")
    right = check_real(support[1], "support[1]")
    if not (left < 0 and right > 1):
        raise ValueError(f"support (l, r) must satisfy l < 0 and r > 1, so that both 0 and 1 "
                         f"have probability mass; got {(left, right)} (the paper's is "
                         f"{DEFAULT_SUPPORT})")
    return left, right


class HardKuma:
    r"""The HardKuma of Bastings et al. (2019): a stretched and rectified Kumaraswamy.

    .. math:: K \sim \mathrm{Kuma}(a, b), \quad T = l + (r - l) K, \quad
              Z = \min(1, \max(0, T)) \in [0, 1].

    With :math:`x_0 = -l/(r - l)` and :math:`x_1 = (1 - l)/(r - l)`, the Kumaraswamy points
    that the stretch maps to 0 and 1:

    .. math:: P(Z = 0) = F(x_0), \quad P(Z = 1) = 1 - F(x_1), \quad
              P(0 < Z < 1) = F(x_1) - F(x_0),

    and on (0, 1) :math:`Z` has the density :math:`f((z - l)/(r - l)) / (r - l)`. The
    expected :math:`L_0` contribution of one variable is :math:`P(Z \ne 0) = 1 - F(x_0)`.

    Args:
        a: floating tensor ``[*batch]`` of Kumaraswamy shape parameters > 0.
        b: floating tensor broadcastable with ``a``, > 0.
        support: the stretch interval ``(l, r)`` with ``l < 0`` and ``r > 1``.

    Example:
        >>> hk = HardKuma(torch.tensor(1.0), torch.tensor(1.0))  # uniform K: T on (-0.1, 1.1)
        >>> [round(float(p), 4) for p in (hk.prob_zero(), hk.prob_one(), hk.prob_continuous())]
        [0.0833, 0.0833, 0.8333]
        >>> z = hk.rsample(1000, generator=torch.Generator().manual_seed(0))
        >>> bool(((z == 0) | (z == 1)).any()), bool(((z >= 0) & (z <= 1)).all())
        (True, True)

    Reference:
        Bastings, Aziz, Titov (2019), ACL, section 3 and equations (8)-(10); their code,
        github.com/bastings/interpretable_predictions, ``latent_rationale/nn/kuma.py``.
    """

    def __init__(self, a: Tensor, b: Tensor,
                 support: tuple[float, float] = DEFAULT_SUPPORT) -> None:
        self.support = _check_support(support)
        self.kuma = Kumaraswamy(a, b)
        self.a, self.b = self.kuma.a, self.kuma.b

    @property
    def batch_shape(self) -> torch.Size:
        """The shape of ``a`` and ``b`` broadcast together."""
        return self.kuma.batch_shape

    def _edges(self) -> tuple[Tensor, Tensor]:
        """The Kumaraswamy points x0, x1 that the stretch maps to 0 and 1, as tensors."""
        left, right = self.support
        like = self.a
        return (torch.tensor(-left / (right - left), dtype=like.dtype, device=like.device),
                torch.tensor((1 - left) / (right - left), dtype=like.dtype, device=like.device))

    def stretch(self, k: Tensor) -> Tensor:
        """``l + (r - l) k``: Kumaraswamy values to the stretched interval (l, r)."""
        left, right = self.support
        return left + (right - left) * k

    def rsample(self, n: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        r"""Reparameterised samples :math:`Z = \min(1, \max(0, l + (r - l) F^{-1}(U)))`.

        Exact zeros and ones occur with the probabilities of :meth:`prob_zero` and
        :meth:`prob_one`; their gradient with respect to ``a`` and ``b`` is 0, that of the
        continuous values is the Kumaraswamy's pathwise gradient times ``r - l``.

        Args:
            n: number of samples, or None for one sample without a sample dimension.
            generator: None or a ``torch.Generator`` on the CPU or on the parameters' device.

        Returns:
            Tensor ``[n, *batch]`` (``[*batch]`` for ``n=None``), values in [0, 1].
        """
        return self.stretch(self.kuma.rsample(n, generator)).clamp(0.0, 1.0)

    def log_prob_zero(self) -> Tensor:
        r""":math:`\log P(Z = 0) = \log F(x_0)`, shape ``[*batch]``."""
        x0, _ = self._edges()
        return _log1mexp(self.kuma.log_survival(x0))

    def log_prob_nonzero(self) -> Tensor:
        r""":math:`\log P(Z \ne 0) = \log(1 - F(x_0)) = b \log(1 - x_0^a)`, ``[*batch]``."""
        x0, _ = self._edges()
        return self.kuma.log_survival(x0)

    def prob_zero(self) -> Tensor:
        r""":math:`P(Z = 0) = F(x_0) = 1 - (1 - x_0^a)^b`, shape ``[*batch]``."""
        return torch.exp(self.log_prob_zero())

    def prob_one(self) -> Tensor:
        r""":math:`P(Z = 1) = 1 - F(x_1) = (1 - x_1^a)^b`, shape ``[*batch]``."""
        _, x1 = self._edges()
        return torch.exp(self.kuma.log_survival(x1))

    def prob_continuous(self) -> Tensor:
        r""":math:`P(0 < Z < 1) = (1 - x_0^a)^b - (1 - x_1^a)^b`, shape ``[*batch]``."""
        return (self.expected_l0() - self.prob_one()).clamp(min=0.0)

    def expected_l0(self) -> Tensor:
        r"""The expected :math:`L_0` contribution :math:`P(Z \ne 0) = (1 - x_0^a)^b`,
        ``[*batch]``: sum it over the variables for the expected number of non-zeros."""
        return torch.exp(self.log_prob_nonzero())

    def nonzero_logit(self) -> Tensor:
        r""":math:`\log P(Z \ne 0) - \log P(Z = 0)`, ``[*batch]``: positive where a variable
        is more likely non-zero than zero."""
        return self.log_prob_nonzero() - self.log_prob_zero()

    def continuous_log_density(self, z: Tensor) -> Tensor:
        r"""The log-density of the continuous part on (0, 1),
        :math:`\log f\big((z - l)/(r - l)\big) - \log(r - l)`; it integrates to
        :meth:`prob_continuous` over (0, 1). -inf outside (0, 1).

        Args:
            z: floating tensor broadcastable with the batch shape.
        """
        z = check_tensor(z, "z")
        left, right = self.support
        inside = (z > 0) & (z < 1)
        value = self.kuma.log_prob((z - left) / (right - left)) - math.log(right - left)
        return torch.where(inside, value, torch.full_like(value, -math.inf))
