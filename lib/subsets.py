r"""Subsets of size k: the exact law, its samplers, and the estimators that train through it.

A choice of exactly ``k`` of ``n`` items (``k`` tokens of a text, ``k`` neighbours, ``k``
features) with scores :math:`\theta \in \mathbb{R}^n` has a natural exponential-family law, the
**k-subset** or **conditional Poisson** distribution:

.. math:: p_\theta(S) = \frac{\prod_{i \in S} e^{\theta_i}}{Z_k(\theta)}, \qquad |S| = k,
          \qquad Z_k(\theta) = e_k\big(e^{\theta_1}, \dots, e^{\theta_n}\big),

where :math:`e_k` is the elementary symmetric polynomial of degree k (a sum of
:math:`\binom{n}{k}` products). It is the law of n independent Bernoulli(sigmoid(θ_i)) bits
*conditioned* on exactly k ones. A subset is written as its 0/1 indicator
:math:`z \in \{0,1\}^n`, :math:`\sum_i z_i = k`.

* Exact quantities by dynamic programming in :math:`O(nk)`, in log space:
  :func:`ksubset_log_partition`, :func:`ksubset_marginals` (forward-backward),
  :func:`ksubset_log_prob`, :func:`ksubset_sample` (exact, sequential);
  :func:`ksubset_expectation` (any cost, by enumeration, small n) and
  :func:`ksubset_linear_expectation` (additive costs, by the marginals, any n).
* Enumeration, the reference the DP is tested against: :func:`ksubset_enumerate`,
  :func:`ksubset_outcomes`.
* **A different law**: the k largest perturbed scores :math:`\theta_i + G_i`
  (:func:`gumbel_topk_mask`) are k draws *without replacement* from the softmax (the
  Plackett-Luce model, :func:`lib.structured.without_replacement_log_prob`), and the set they
  form has the law of :func:`topk_subset_log_probs`: **not** the k-subset law above (the two
  agree for k = 1 and k = n only). Every Gumbel-based relaxation below targets that law.
* Relaxations and estimators:

  ============================  ========================  =================================
  function                      forward                   backward (law it targets)
  ============================  ========================  =================================
  :func:`relaxed_topk`          successive softmax of     the same (Plackett-Luce set,
                                :math:`\theta + G`        Xie & Ermon 2019)
  :func:`st_relaxed_topk`       hard Gumbel-top-k         relaxed top-k's (Plackett-Luce)
  :func:`simple_topk`           exact k-subset sample     gradient of the exact marginals
                                                          (k-subset; Ahmed et al. 2023)
  :func:`imle_topk`             top-k of :math:`\theta`   difference of two perturbed MAPs
                                + sum-of-Gamma noise      (perturb-and-MAP law; Niepert et
                                                          al. 2021)
  ============================  ========================  =================================

* :class:`KSubsetNode`: a :class:`lib.estimators.StochasticNode` whose joint sample is one
  k-subset per batch element, so the registry's estimators run on it by name;
  :func:`subset_surrogate` adds ``simple`` and ``imle`` (:data:`SUBSET_ESTIMATORS`).

Shapes: ``logits`` is ``[..., n]`` (one subset per leading index); ``mask`` (optional, bool,
the logits' shape) marks padding, which is never chosen; every row needs at least ``k`` real
items. Generators follow :mod:`lib.rng` (a CPU generator works for tensors on any device).
Validation: shapes, dtypes and ``k`` are always checked; values (finite logits, enough real
items per row, 0/1 subsets of size k) only with validation on.

References:
    S. M. Xie, S. Ermon (2019), *Reparameterizable Subset Sampling via Continuous
    Relaxations*, IJCAI.
    T. Plötz, S. Roth (2018), *Neural Nearest Neighbors Networks*, NeurIPS.
    K. Ahmed, Z. Zeng, M. Niepert, G. Van den Broeck (2023), *SIMPLE: A Gradient Estimator for
    k-Subset Sampling*, ICLR.
    M. Niepert, P. Minervini, L. Franceschi (2021), *Implicit MLE: Backpropagating Through
    Discrete Exponential Family Distributions*, NeurIPS.
    W. Kool, H. van Hoof, M. Welling (2019), *Stochastic Beams and Where to Find Them*, ICML.
    S. X. Chen, A. P. Dempster, J. S. Liu (1994), *Weighted Finite Population Sampling to
    Maximize Entropy*, Biometrika (the conditional Poisson law and its sequential sampler).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from lib import rng
from lib._validation import (
    check_generator,
    check_int,
    check_real,
    check_tau,
    check_tensor,
    validating,
)
from lib.estimators import MAX_EXACT_OUTCOMES, StochasticNode, straight_through

__all__ = [
    "KSubsetNode",
    "SUBSET_ESTIMATORS",
    "SUBSET_LABELS",
    "gumbel_topk_mask",
    "imle_topk",
    "ksubset_enumerate",
    "ksubset_expectation",
    "ksubset_linear_expectation",
    "ksubset_log_partition",
    "ksubset_log_prob",
    "ksubset_marginals",
    "ksubset_outcomes",
    "ksubset_sample",
    "ksubset_sample_from",
    "relaxed_topk",
    "simple_topk",
    "st_relaxed_topk",
    "subset_surrogate",
    "sum_of_gamma_noise",
    "topk_mask",
    "topk_subset_log_probs",
]


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------

def _check(logits: Tensor, k: object, mask: Tensor | None) -> tuple[int, Tensor | None]:
    """Check ``logits [..., n]``, ``1 <= k <= n`` and ``mask``; return ``(k, mask)``."""
    check_tensor(logits, "logits")
    if logits.dim() == 0 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have shape [..., n] with n >= 1, got "
                         f"{tuple(logits.shape)}")
    n = logits.shape[-1]
    k = check_int(k, "k", min_value=1, max_value=n)
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor or None, got "
                            f"{getattr(mask, 'dtype', type(mask).__name__)}")
        if mask.shape != logits.shape:
            raise ValueError(f"mask must have the logits' shape {tuple(logits.shape)}, got "
                             f"{tuple(mask.shape)}")
    if validating():
        finite = torch.isfinite(logits) if mask is None else torch.isfinite(logits) | ~mask
        if not bool(finite.all()):
            raise ValueError("logits must be finite (at the real items, where a mask is given)")
        if mask is not None and bool((mask.sum(-1) < k).any()):
            raise ValueError(f"every row needs at least k={k} real items (mask True); "
                             f"the shortest has {int(mask.sum(-1).min())}")
    return k, mask


def _neg(dtype: torch.dtype) -> float:
    """A finite stand-in for log 0: adding a few logits to it stays finite, exp of it is 0.

    -inf would do for the values, but ``logaddexp(-inf, -inf)`` has a NaN gradient.
    """
    return torch.finfo(dtype).min / 8


# --------------------------------------------------------------------------------------------
# The exact law by dynamic programming
# --------------------------------------------------------------------------------------------

def _forward_table(logits: Tensor, k: int, mask: Tensor | None) -> Tensor:
    r"""``alpha[..., i, j] = log e_j(exp(theta_1), ..., exp(theta_i))``, shape ``[..., n+1, k+1]``.

    The recursion of the elementary symmetric polynomials, item ``i`` in or out:
    :math:`e_j(x_{1:i}) = e_j(x_{1:i-1}) + x_i\, e_{j-1}(x_{1:i-1})`; a padding item leaves
    the row unchanged.
    """
    neg = _neg(logits.dtype)
    first = torch.full((*logits.shape[:-1], k + 1), neg, dtype=logits.dtype,
                       device=logits.device)
    first[..., 0] = 0.0
    rows = [first]
    for i in range(logits.shape[-1]):
        prev = rows[-1]
        taken = prev[..., :-1] + logits[..., i : i + 1]
        new = torch.cat([prev[..., :1], torch.logaddexp(prev[..., 1:], taken)], dim=-1)
        if mask is not None:
            new = torch.where(mask[..., i : i + 1], new, prev)
        rows.append(new)
    return torch.stack(rows, dim=-2)


def _backward_table(logits: Tensor, k: int, mask: Tensor | None) -> Tensor:
    """``beta[..., i, j] = log e_j(exp(theta_{i+1}), ..., exp(theta_n))``, ``[..., n+1, k+1]``."""
    flipped = _forward_table(logits.flip(-1), k, None if mask is None else mask.flip(-1))
    return flipped.flip(-2)


def ksubset_log_partition(logits: Tensor, k: int, mask: Tensor | None = None) -> Tensor:
    r"""Log-normaliser of the k-subset law, :math:`\log Z_k(\theta) = \log e_k(e^\theta)`.

    .. math:: \log Z_k(\theta) = \log \sum_{|S| = k} \exp\Big(\sum_{i \in S} \theta_i\Big),

    by the recursion :math:`e_j(x_{1:i}) = e_j(x_{1:i-1}) + x_i e_{j-1}(x_{1:i-1})` carried in
    log space (``logaddexp``), so it neither overflows nor underflows for logits of any size:
    :math:`O(nk)` operations instead of the :math:`\binom{n}{k}` terms of enumeration.
    Differentiable; its gradient is :func:`ksubset_marginals`.

    Args:
        logits: floating tensor ``[..., n]``; finite at the real items.
        k: subset size, ``1 <= k <= n``.
        mask: optional bool tensor of the logits' shape, False at padding (never chosen);
            every row needs at least ``k`` real items.

    Returns:
        Tensor ``[...]``.

    Example:
        >>> round(ksubset_log_partition(torch.zeros(4), 2).exp().item(), 4)  # C(4, 2) = 6
        6.0
    """
    k, mask = _check(logits, k, mask)
    return _forward_table(logits, k, mask)[..., -1, k]


def ksubset_marginals(logits: Tensor, k: int, mask: Tensor | None = None) -> Tensor:
    r"""Inclusion probabilities :math:`\mu_i = P(i \in S)` of the k-subset law, exactly.

    Forward-backward: with :math:`\alpha_{i}(j) = \log e_j(x_{1:i})` and
    :math:`\beta_{i}(j) = \log e_j(x_{i+1:n})`, :math:`x = e^\theta`,

    .. math:: \mu_i = \frac{x_i\, e_{k-1}(x_{-i})}{e_k(x)}
              = \exp\Big(\theta_i + \operatorname{logsumexp}_{j=0}^{k-1}
              \big[\alpha_{i-1}(j) + \beta_{i}(k-1-j)\big] - \log Z_k\Big).

    Equal to :math:`\nabla_\theta \log Z_k(\theta)` (tested), differentiable (SIMPLE
    backpropagates through it), and :math:`\sum_i \mu_i = k`.

    Args:
        logits: floating tensor ``[..., n]``.
        k: subset size, ``1 <= k <= n``.
        mask: optional bool padding mask (as for :func:`ksubset_log_partition`).

    Returns:
        Tensor ``[..., n]`` in [0, 1] (0 at padding).

    Example:
        >>> ksubset_marginals(torch.zeros(4), 2)
        tensor([0.5000, 0.5000, 0.5000, 0.5000])
    """
    k, mask = _check(logits, k, mask)
    alpha = _forward_table(logits, k, mask)  # [..., n+1, k+1]
    beta = _backward_table(logits, k, mask)
    log_z = alpha[..., -1, k]
    # rest[..., i] = log e_{k-1}(x without item i) = lse_j alpha[i-1, j] + beta[i, k-1-j]
    left = alpha[..., :-1, :k]  # alpha_{i-1}(j), i = 1..n
    right = beta[..., 1:, :k].flip(-1)  # beta_i(k-1-j)
    rest = torch.logsumexp(left + right, dim=-1)
    mu = torch.exp(logits + rest - log_z.unsqueeze(-1))
    if mask is not None:
        mu = torch.where(mask, mu, torch.zeros_like(mu))
    return mu


def _check_subsets(z: Tensor, logits: Tensor, k: int, mask: Tensor | None) -> None:
    check_tensor(z, "z")
    if z.dim() == 0 or z.shape[-1] != logits.shape[-1]:
        raise ValueError(f"z must have shape [..., n] with n = {logits.shape[-1]}, got "
                         f"{tuple(z.shape)}")
    if validating():
        if not bool(((z == 0) | (z == 1)).all()):
            raise ValueError("z must contain only 0 and 1")
        if not bool((z.sum(-1) == k).all()):
            raise ValueError(f"every subset z must have exactly k={k} ones")


def ksubset_log_prob(z: Tensor, logits: Tensor, k: int, mask: Tensor | None = None) -> Tensor:
    r""":math:`\log p_\theta(z) = \theta^\top z - \log Z_k(\theta)` of subsets ``z``.

    Args:
        z: 0/1 tensor ``[..., n]`` with k ones per row (leading sample dimensions broadcast
            against the logits' batch).
        logits: floating tensor ``[..., n]``.
        k: subset size.
        mask: optional bool padding mask; a subset that takes padding gets ``-inf``.

    Returns:
        Tensor: the broadcast batch shape of ``z`` and ``logits`` without ``n``.

    Example:
        >>> ksubset_log_prob(torch.tensor([1., 1., 0., 0.]), torch.zeros(4), 2).exp()
        tensor(0.1667)
    """
    k, mask = _check(logits, k, mask)
    _check_subsets(z, logits, k, mask)
    theta = logits if mask is None else logits.masked_fill(~mask, 0.0)
    log_p = (z * theta).sum(-1) - ksubset_log_partition(logits, k, mask)
    if mask is not None:
        takes_padding = (z * (~mask).to(z.dtype)).sum(-1) > 0
        log_p = log_p.masked_fill(takes_padding, -math.inf)
    return log_p


def ksubset_sample_from(u: Tensor, logits: Tensor, k: int,
                        mask: Tensor | None = None) -> Tensor:
    r"""The exact k-subset sample that uniforms ``u`` select, item by item from the last.

    Sequential (Chen, Dempster, Liu 1994): going from item n down to 1 with r items still to
    choose, item i is taken with its conditional probability

    .. math:: P(i \in S \mid r \text{ left among } 1..i) =
              \frac{x_i\, e_{r-1}(x_{1:i-1})}{e_r(x_{1:i})}
              = \exp\big(\theta_i + \alpha_{i-1}(r-1) - \alpha_i(r)\big),

    that is, iff :math:`u_i` is below it. This gives every subset exactly the probability
    :math:`p_\theta(S)` (tested by a chi-square test against enumeration). When the r items
    left must all be taken, they are, whatever rounding says. No gradient.

    Args:
        u: uniforms in (0, 1), shape ``[..., n]`` broadcastable with the logits
            (e.g. ``[S, *logits.shape]``).
        logits: floating tensor ``[..., n]``.
        k: subset size.
        mask: optional bool padding mask.

    Returns:
        0/1 tensor of the broadcast shape, in the logits' dtype, ``k`` ones per row.
    """
    k, mask = _check(logits, k, mask)
    check_tensor(u, "u")
    with torch.no_grad():
        logits = logits.detach()
        alpha = _forward_table(logits, k, mask)  # [..., n+1, k+1]
        shape = torch.broadcast_shapes(u.shape, logits.shape)
        u = u.expand(shape)
        n = logits.shape[-1]
        valid = (torch.ones_like(logits, dtype=torch.bool) if mask is None else mask)
        # real items among 1..i, for the "must take all that are left" rule
        count = valid.to(torch.long).cumsum(-1).expand(shape)
        valid = valid.expand(shape)
        alpha = alpha.expand(*shape[:-1], n + 1, k + 1)
        logits = logits.expand(shape)
        left = torch.full(shape[:-1], k, dtype=torch.long, device=logits.device)
        z = torch.zeros(shape, dtype=logits.dtype, device=logits.device)
        for i in range(n - 1, -1, -1):
            r = left.unsqueeze(-1)
            a_prev = alpha[..., i, :].gather(-1, (r - 1).clamp(min=0)).squeeze(-1)
            a_here = alpha[..., i + 1, :].gather(-1, r).squeeze(-1)
            p = torch.exp(logits[..., i] + a_prev - a_here).clamp(0.0, 1.0)
            take = (u[..., i] < p) | (count[..., i] <= left)
            take = take & (left > 0) & valid[..., i]
            z[..., i] = take.to(z.dtype)
            left = left - take.to(torch.long)
    return z


def ksubset_sample(logits: Tensor, k: int, n_samples: int, *, mask: Tensor | None = None,
                   generator: torch.Generator | None = None) -> Tensor:
    r"""``n_samples`` exact samples of the k-subset law, ``[n_samples, ..., n]`` (0/1).

    Draws uniforms and maps them with :func:`ksubset_sample_from` (the sequential sampler).

    Args:
        logits: floating tensor ``[..., n]``.
        k: subset size.
        n_samples: number of samples, >= 1.
        mask: optional bool padding mask.
        generator: optional ``torch.Generator`` on the CPU or on the logits' device.

    Example:
        >>> z = ksubset_sample(torch.zeros(5), 2, 3, generator=torch.Generator().manual_seed(0))
        >>> z.shape, z.sum(-1)
        (torch.Size([3, 5]), tensor([2., 2., 2.]))
    """
    from lib.gumbel import _uniform_open_like

    n_samples = check_int(n_samples, "n_samples", min_value=1)
    check_generator(generator, like=logits)
    like = logits.detach().expand(n_samples, *logits.shape)
    return ksubset_sample_from(_uniform_open_like(like, generator), logits, k, mask)


# --------------------------------------------------------------------------------------------
# Enumeration: the reference
# --------------------------------------------------------------------------------------------

def ksubset_enumerate(n: int, k: int, *, dtype: torch.dtype | None = None,
                      device: torch.device | str | None = None) -> Tensor:
    r"""Every subset of size k of n items, as 0/1 rows ``[C(n, k), n]``.

    Rows in the lexicographic order of :func:`itertools.combinations` (``{0, 1}`` first).

    Example:
        >>> ksubset_enumerate(3, 2)
        tensor([[1., 1., 0.],
                [1., 0., 1.],
                [0., 1., 1.]])
    """
    n = check_int(n, "n", min_value=1)
    k = check_int(k, "k", min_value=1, max_value=n)
    if math.comb(n, k) > MAX_EXACT_OUTCOMES:
        raise ValueError(f"C({n}, {k}) = {math.comb(n, k)} subsets exceed MAX_EXACT_OUTCOMES="
                         f"{MAX_EXACT_OUTCOMES}; use the DP or a sampling estimator")
    rows = torch.zeros(math.comb(n, k), n, dtype=dtype or torch.get_default_dtype(),
                       device=device)
    for r, combo in enumerate(itertools.combinations(range(n), k)):
        rows[r, list(combo)] = 1.0
    return rows


def ksubset_outcomes(logits: Tensor, k: int,
                     mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    r"""Every subset and its probability: ``(z [M, ..., n], p [M, ...])``, M = C(n, k).

    ``p`` is :math:`\exp(\theta^\top z - \log Z_k)` with :math:`\log Z_k` from the DP, so it is
    differentiable in the logits; subsets that take padding get 0.
    """
    k, mask = _check(logits, k, mask)
    rows = ksubset_enumerate(logits.shape[-1], k, dtype=logits.dtype, device=logits.device)
    z = rows.reshape(-1, *(1,) * (logits.dim() - 1), logits.shape[-1])
    z = z.expand(-1, *logits.shape)
    return z, ksubset_log_prob(z, logits, k, mask).exp()


def ksubset_expectation(logits: Tensor, k: int, cost: Callable[[Tensor], Tensor],
                        mask: Tensor | None = None) -> Tensor:
    r"""Exact :math:`\mathbb{E}_{z \sim p_\theta}[f(z)] = \sum_{|S| = k} p_\theta(S) f(S)`.

    By enumeration (small n): differentiable in the logits and in the cost's own parameters,
    so its gradient is the exact gradient every estimator is measured against.

    Args:
        logits: floating tensor ``[..., n]``.
        k: subset size.
        cost: maps subsets ``[M, ..., n]`` to costs ``[M, ...]``.
        mask: optional bool padding mask.

    Returns:
        Tensor ``[...]``.

    Example:
        >>> cost = lambda z: z @ torch.tensor([0., 3., 6.])
        >>> round(ksubset_expectation(torch.zeros(3), 1, cost).item(), 4)
        3.0
    """
    z, p = ksubset_outcomes(logits, k, mask)
    costs = cost(z)
    if not isinstance(costs, Tensor) or costs.shape != p.shape:
        raise ValueError(f"cost must map subsets {tuple(z.shape)} to costs {tuple(p.shape)}, "
                         f"got {getattr(costs, 'shape', type(costs).__name__)}")
    return (p * costs).sum(0)


def ksubset_linear_expectation(logits: Tensor, k: int, weights: Tensor,
                               mask: Tensor | None = None) -> Tensor:
    r"""Exact expected additive cost :math:`\mathbb{E}[w^\top z] = w^\top \mu(\theta)`, any n.

    Args:
        logits: floating tensor ``[..., n]``.
        k: subset size.
        weights: per-item costs ``[..., n]`` (broadcastable with the logits).
        mask: optional bool padding mask.

    Example:
        >>> w = torch.tensor([0., 3., 6.])
        >>> round(ksubset_linear_expectation(torch.zeros(3), 1, w).item(), 4)
        3.0
    """
    check_tensor(weights, "weights")
    return (ksubset_marginals(logits, k, mask) * weights).sum(-1)


# --------------------------------------------------------------------------------------------
# Top-k: Gumbel-top-k (a different law) and its relaxations
# --------------------------------------------------------------------------------------------

def topk_mask(scores: Tensor, k: int, mask: Tensor | None = None) -> Tensor:
    r"""The 0/1 indicator of the k largest scores per row (padding never chosen). No gradient.

    Example:
        >>> topk_mask(torch.tensor([0.3, 2.0, -1.0, 1.0]), 2)
        tensor([0., 1., 0., 1.])
    """
    k, mask = _check(scores, k, mask)
    scores = scores.detach()
    if mask is not None:
        scores = scores.masked_fill(~mask, -math.inf)
    index = scores.topk(k, dim=-1).indices
    return torch.zeros_like(scores).scatter(-1, index, 1.0)


def _gumbel_from(u: Tensor) -> Tensor:
    return -torch.log(-torch.log(u))


def gumbel_topk_mask(logits: Tensor, k: int, n_samples: int, *, mask: Tensor | None = None,
                     generator: torch.Generator | None = None) -> Tensor:
    r"""Gumbel-top-k subsets ``[n_samples, ..., n]``: the top k of :math:`\theta + G`.

    Their law is the Plackett-Luce set law of :func:`topk_subset_log_probs`, **not** the
    k-subset law of :func:`ksubset_sample` (they agree for k = 1 and k = n).
    """
    from lib.gumbel import _uniform_open_like

    n_samples = check_int(n_samples, "n_samples", min_value=1)
    check_generator(generator, like=logits)
    like = logits.detach().expand(n_samples, *logits.shape)
    noise = _gumbel_from(_uniform_open_like(like, generator))
    m = None if mask is None else mask.expand(like.shape)
    return topk_mask(like + noise, k, m)


def topk_subset_log_probs(logits: Tensor, k: int) -> Tensor:
    r"""Log-probability of every unordered set under Gumbel-top-k (Plackett-Luce), ``[..., M]``.

    The set :math:`S` comes out of Gumbel-top-k in any of its :math:`k!` orders:

    .. math:: P_{\mathrm{PL}}(S) = \sum_{\text{orders } (i_1..i_k) \text{ of } S}
              \prod_{j=1}^{k} \frac{e^{\theta_{i_j}}}
              {\sum_{m \notin \{i_1..i_{j-1}\}} e^{\theta_m}},

    by enumeration (small n and k). Rows follow :func:`ksubset_enumerate`. Compare with
    :func:`ksubset_outcomes`: the same logits give a different law.
    """
    from lib.structured import without_replacement_log_prob

    k, _ = _check(logits, k, None)
    n = logits.shape[-1]
    if math.comb(n, k) * math.factorial(k) > MAX_EXACT_OUTCOMES:
        raise ValueError(f"{math.comb(n, k)} sets x {k}! orders exceed MAX_EXACT_OUTCOMES")
    out = []
    for combo in itertools.combinations(range(n), k):
        orders = torch.tensor(list(itertools.permutations(combo)), device=logits.device)
        log_p = without_replacement_log_prob(logits.unsqueeze(-2), orders)  # [..., k!]
        out.append(torch.logsumexp(log_p, dim=-1))
    return torch.stack(out, dim=-1)


def relaxed_topk(logits: Tensor, k: int, tau: float | Tensor, *, noise: Tensor | None = None,
                 mask: Tensor | None = None, generator: torch.Generator | None = None,
                 method: str = "softmax") -> Tensor:
    r"""Relaxed top-k by successive softmax (Xie & Ermon 2019; Plötz & Roth 2018).

    With perturbed scores :math:`s = \theta + G` (standard Gumbel noise ``G``), k softmaxes,
    each one discouraging what the previous ones chose:

    .. math:: a^{(1)} = \mathrm{softmax}(s / \tau), \qquad
              s^{(j+1)} = s^{(j)} + \log\big(1 - a^{(j)}\big), \qquad
              a^{(j+1)} = \mathrm{softmax}\big(s^{(j+1)} / \tau\big), \qquad
              y = \sum_{j=1}^{k} a^{(j)}.

    ``y`` sums to k and tends to the hard top-k of ``s`` (Gumbel-top-k) as :math:`\tau \to 0`
    (tested; pointwise: :math:`\tau` must be small against every gap among the k + 1 largest
    scores), but an entry can **exceed 1**: at a near-tie one softmax splits its unit
    between two items and a later one gives one of them a whole unit again, and for
    :math:`\tau \gtrsim 1` the exclusion :math:`(1 - a)^{1/\tau}` is too weak to stop an
    item being chosen twice (the tests hold a counterexample).

    ``method="sigmoid"`` is the binary-entropy-regularised top-k of Paulus et al. (2020):

    .. math:: y = \arg\max_{0 \le y \le 1,\ \sum_i y_i = k}\ s^\top y
              + \tau \sum_i H_b(y_i), \qquad y_i = \sigma\big((s_i + b)/\tau\big),

    with the threshold :math:`b` found by bisection so that :math:`\sum_i y_i = k`; its
    gradient is the implicit one,
    :math:`\partial y_i / \partial s_j = \frac{v_i}{\tau}\big(\delta_{ij} -
    v_j / \textstyle\sum_m v_m\big)`, :math:`v = y(1 - y)`. Every entry lies in (0, 1), the
    sum is k (to the bisection's precision), and it too tends to the hard top-k as
    :math:`\tau \to 0`. Both relax the Plackett-Luce set law of
    :func:`topk_subset_log_probs` (their hard limit is Gumbel-top-k), not the k-subset law.

    Args:
        logits: floating tensor ``[..., n]``.
        k: subset size.
        tau: temperature, > 0.
        noise: Gumbel noise of the logits' (broadcast) shape; None draws it (pass zeros for
            the deterministic relaxation of ``topk_mask(logits)``).
        mask: optional bool padding mask (broadcastable to the noise-free shape).
        generator: for the noise, if drawn.
        method: ``"softmax"`` (successive softmax) or ``"sigmoid"`` (entropic top-k).

    Returns:
        Tensor of the broadcast shape of logits and noise, differentiable in the logits.

    Example:
        >>> y = relaxed_topk(torch.tensor([3., 2., 0., -1.]), 2, 0.1, noise=torch.zeros(4))
        >>> y.round(decimals=3)
        tensor([1., 1., 0., 0.])
    """
    k, _ = _check(logits, k, None)
    tau = check_tau(tau)
    if noise is None:
        from lib.gumbel import _uniform_open_like

        check_generator(generator, like=logits)
        noise = _gumbel_from(_uniform_open_like(logits.detach(), generator))
    if method not in ("softmax", "sigmoid"):
        raise ValueError(f"method must be 'softmax' or 'sigmoid', got {method!r}")
    scores = logits + noise
    if mask is not None:
        scores = scores.masked_fill(~mask, -math.inf)
    if method == "sigmoid":
        return _sigmoid_topk(scores, k, tau)
    tiny = torch.finfo(scores.dtype).tiny
    y = torch.zeros_like(scores)
    a = torch.zeros_like(scores)
    for _ in range(k):
        scores = scores + torch.log((1.0 - a).clamp(min=tiny))
        a = torch.softmax(scores / tau, dim=-1)
        y = y + a
    return y


def _sigmoid_topk(scores: Tensor, k: int, tau: Tensor) -> Tensor:
    """Entropic top-k: ``sigmoid((scores + b) / tau)`` with ``sum = k``; -inf scores give 0."""
    with torch.no_grad():
        s = scores.detach()
        finite = torch.isfinite(s)
        s_max = s.masked_fill(~finite, -math.inf).amax(-1, keepdim=True)
        s_min = s.masked_fill(~finite, math.inf).amin(-1, keepdim=True)
        lo = -s_max - 60 * tau
        hi = -s_min + 60 * tau
        for _ in range(100):
            mid = (lo + hi) / 2
            over = torch.sigmoid((s + mid) / tau).sum(-1, keepdim=True) > k
            hi = torch.where(over, mid, hi)
            lo = torch.where(over, lo, mid)
        b = (lo + hi) / 2
        v = torch.sigmoid((s + b) / tau)
        v = v * (1 - v)
    # first-order implicit gradient of b(s): db/ds_j = -v_j / sum(v)
    safe = scores.masked_fill(~finite, 0.0)
    db = -(v * (safe - safe.detach())).sum(-1, keepdim=True) / v.sum(-1, keepdim=True)
    return torch.sigmoid((scores + b + db) / tau)


def st_relaxed_topk(logits: Tensor, k: int, tau: float | Tensor, *,
                    noise: Tensor | None = None, mask: Tensor | None = None,
                    generator: torch.Generator | None = None) -> Tensor:
    r"""Straight-through top-k: the hard top-k of :math:`\theta + G` forward, the gradient of
    :func:`relaxed_topk` (same noise) backward. The forward value is a Gumbel-top-k subset
    (Plackett-Luce law). Arguments as for :func:`relaxed_topk`.
    """
    if noise is None:
        from lib.gumbel import _uniform_open_like

        check_generator(generator, like=logits)
        noise = _gumbel_from(_uniform_open_like(logits.detach(), generator))
    soft = relaxed_topk(logits, k, tau, noise=noise, mask=mask)
    m = None if mask is None else mask.expand(soft.shape)
    hard = topk_mask((logits + noise).expand(soft.shape), k, m)
    return straight_through(hard, soft)


def simple_topk(logits: Tensor, k: int, n_samples: int, *, mask: Tensor | None = None,
                generator: torch.Generator | None = None, u: Tensor | None = None) -> Tensor:
    r"""SIMPLE (Ahmed et al. 2023): exact k-subset samples forward, :math:`\partial\mu/\partial
    \theta` backward.

    .. math:: z \sim p_\theta, \qquad \text{value } z, \qquad
              \text{gradient } \nabla_\theta \approx J_\mu(\theta)^\top \nabla_z f(z),

    with :math:`\mu` the exact marginals (:func:`ksubset_marginals`). This is the book's
    straight-through estimator (Bengio et al.) for the k-subset law: the "probabilities" whose
    gradient it takes are the marginals. For an additive cost :math:`f(z) = w^\top z` it is the
    exact gradient with zero variance (:math:`\nabla\,\mathbb{E}[w^\top z] = J_\mu^\top w`);
    for other costs it is biased.

    Args:
        logits: floating tensor ``[..., n]``.
        k: subset size.
        n_samples: number of samples, >= 1.
        mask: optional bool padding mask.
        generator: for the samples.
        u: optional uniforms ``[n_samples, ..., n]`` instead of drawing them.

    Returns:
        Tensor ``[n_samples, ..., n]``: 0/1 values, differentiable in the logits.
    """
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    if u is None:
        hard = ksubset_sample(logits, k, n_samples, mask=mask, generator=generator)
    else:
        hard = ksubset_sample_from(u, logits, k, mask)
    mu = ksubset_marginals(logits, k, mask)
    return straight_through(hard, mu.expand(hard.shape))


# --------------------------------------------------------------------------------------------
# I-MLE
# --------------------------------------------------------------------------------------------

def sum_of_gamma_noise(shape: tuple[int, ...] | torch.Size, k: int, *, n_terms: int = 10,
                       dtype: torch.dtype | None = None,
                       device: torch.device | str | None = None,
                       generator: torch.Generator | None = None) -> Tensor:
    r"""Sum-of-Gamma noise of Niepert et al. (2021) for k-subsets.

    .. math:: \epsilon = \frac{1}{k}\Big(\sum_{s=1}^{S} \mathrm{Gamma}\big(\tfrac1k,
              \tfrac{s}{k}\big) - \log S\Big)

    (shape :math:`1/k`, rate :math:`s/k`; ``S = n_terms``). As :math:`S \to \infty`,
    :math:`\sum_{i=1}^{k} \epsilon_i` (k independent copies) is a standard Gumbel: the noise
    that makes the *sum* of k perturbed scores Gumbel, as perturb-and-MAP of a structure with
    k parts asks.
    """
    k = check_int(k, "k", min_value=1)
    n_terms = check_int(n_terms, "n_terms", min_value=1)
    check_generator(generator, device=device)
    dtype = dtype or torch.get_default_dtype()
    where = rng.draw_device(generator, device)
    total = torch.zeros(shape, dtype=dtype, device=where)
    for s in range(1, n_terms + 1):
        conc = torch.full(shape, 1.0 / k, dtype=dtype, device=where)
        total = total + rng.standard_gamma(conc, generator=generator) * (k / s)
    return ((total - math.log(n_terms)) / k).to(device=device)


class _IMLE(torch.autograd.Function):
    """Forward: top-k of logits + noise. Backward: (z - z') / lambda, z' of the target."""

    @staticmethod
    def forward(ctx, logits, noise, k, lam, mask):  # noqa: D102
        z = topk_mask(logits + noise, k, mask)
        ctx.save_for_backward(logits, noise, z)
        ctx.k, ctx.lam, ctx.mask = k, lam, mask
        return z

    @staticmethod
    def backward(ctx, dz):  # noqa: D102
        logits, noise, z = ctx.saved_tensors
        target = topk_mask(logits - ctx.lam * dz + noise, ctx.k, ctx.mask)
        return (z - target) / ctx.lam, None, None, None, None


def imle_topk(logits: Tensor, k: int, n_samples: int, *, lam: float = 1.0,
              noise_temperature: float = 1.0, n_terms: int = 10, mask: Tensor | None = None,
              generator: torch.Generator | None = None) -> Tensor:
    r"""I-MLE (Niepert et al. 2021) for k-subsets: perturb-and-MAP forward, a finite
    difference of two MAPs backward.

    Forward, :math:`z = \mathrm{topk}(\theta + \epsilon)` with sum-of-Gamma noise
    :math:`\epsilon` (:func:`sum_of_gamma_noise`, scaled by ``noise_temperature``). Backward,
    given :math:`g = \nabla_z f(z)`, the *target* parameters
    :math:`\theta' = \theta - \lambda g` and

    .. math:: \nabla_\theta \approx \frac{1}{\lambda}\Big(\mathrm{topk}(\theta + \epsilon)
              - \mathrm{topk}(\theta' + \epsilon)\Big)

    with the same noise (the paper's estimator divided by :math:`\lambda`, so that it is on
    the scale of a gradient: for small :math:`\lambda` it is a finite difference of the
    perturbed MAP along :math:`-g`). The forward samples follow the perturb-and-MAP law, which
    is neither the k-subset law nor the Plackett-Luce one; the gradient is biased, and zero
    whenever the step :math:`\lambda g` is too small to change the top k.

    Args:
        logits: floating tensor ``[..., n]``.
        k: subset size.
        n_samples: number of samples, >= 1.
        lam: :math:`\lambda > 0`, the step towards the target distribution.
        noise_temperature: scale of the noise, >= 0 (0: deterministic top-k).
        n_terms: terms of the sum-of-Gamma noise.
        mask: optional bool padding mask.
        generator: for the noise.

    Returns:
        Tensor ``[n_samples, ..., n]``: 0/1 values, with the I-MLE gradient.

    Reference:
        Niepert, Minervini, Franceschi (2021), *Implicit MLE*, NeurIPS, Algorithms 1-2;
        the sum-of-Gamma noise of their Theorem 1.
    """
    k, mask = _check(logits, k, mask)
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    lam = check_real(lam, "lam", gt=0.0)
    noise_temperature = check_real(noise_temperature, "noise_temperature", ge=0.0)
    check_generator(generator, like=logits)
    shape = (n_samples, *logits.shape)
    noise = sum_of_gamma_noise(shape, k, n_terms=n_terms, dtype=logits.dtype,
                               device=logits.device, generator=generator) * noise_temperature
    m = None if mask is None else mask.expand(shape)
    return _IMLE.apply(logits.expand(shape), noise, k, lam, m)


# --------------------------------------------------------------------------------------------
# The stochastic node
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, init=False)
class KSubsetNode(StochasticNode):
    r"""A stochastic node whose joint sample is one k-subset per batch element.

    ``KSubsetNode(logits [*batch, n], k, mask=None)``: the k-subset law
    :math:`p(z) \propto \exp(\theta^\top z)`, :math:`\sum_i z_i = k`, along the last
    dimension (``kind == "ksubset"``, ``event_dims == 1``). It has the methods of
    :class:`lib.estimators.StochasticNode`, so the registry's estimators run on it:

    * :meth:`sample`, :meth:`sample_from`: exact k-subset samples (sequential sampler, one
      uniform per item); :meth:`log_prob`; :meth:`outcomes` (every subset, for ``exact``);
    * :meth:`probs`: the exact marginals, so ``straight_through`` on this node **is SIMPLE**;
    * :meth:`relaxed`, :meth:`relaxed_from`: relaxed top-k of :math:`\theta + G`
      (``gumbel_softmax``); with ``hard=True`` the hard Gumbel-top-k forward
      (``st_gumbel_softmax``, straight-through top-k). Their hard values are Gumbel-top-k
      sets: the Plackett-Luce law, not this node's law.

    Args:
        logits: floating tensor ``[*batch, n]``.
        k: subset size, ``1 <= k <= n``.
        mask: optional bool tensor of the logits' shape, False at padding.
        fixed_uniforms: optional uniforms ``[S, *shape]``, as for ``StochasticNode``.

    Example:
        >>> from lib.estimators import surrogate
        >>> logits = torch.zeros(4, requires_grad=True)
        >>> node = KSubsetNode(logits, 2)
        >>> out = surrogate("exact", node, lambda z: z @ torch.tensor([1., 2., 3., 4.]))
        >>> round(out.loss.item(), 4)  # each item is in half of the 6 subsets
        5.0
    """

    k: int = 1

    def __init__(self, logits: Tensor, k: int, mask: Tensor | None = None,
                 fixed_uniforms: Tensor | None = None) -> None:
        object.__setattr__(self, "kind", "ksubset")
        object.__setattr__(self, "logits", logits)
        object.__setattr__(self, "event_dims", 1)
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "fixed_uniforms", fixed_uniforms)
        object.__setattr__(self, "k", k)
        self.__post_init__()

    def __post_init__(self) -> None:
        k, _ = _check(self.logits, self.k, self.mask)
        object.__setattr__(self, "k", k)
        if self.fixed_uniforms is not None:
            u = check_tensor(self.fixed_uniforms, "fixed_uniforms")
            if u.dim() != self.logits.dim() + 1:
                raise ValueError(f"fixed_uniforms must have shape [S, *logits.shape] = "
                                 f"[S, {', '.join(map(str, self.logits.shape))}], got "
                                 f"{tuple(u.shape)}")

    @property
    def batch_shape(self) -> torch.Size:
        """The logits' shape without the item dimension."""
        return self.logits.shape[:-1]

    def sample_from(self, u: Tensor) -> Tensor:
        """The exact k-subset sample of uniforms ``u`` ``[..., *logits.shape]``, no gradient."""
        return ksubset_sample_from(u, self.logits.detach(), self.k, self.mask)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` exact k-subset samples ``[n, *logits.shape]`` (0/1), without gradient."""
        return self.sample_from(self.uniforms(n, generator))

    def relaxed_from(self, u: Tensor, tau: float | Tensor, hard: bool = False) -> Tensor:
        """Relaxed top-k of ``logits - log(-log u)``; ``hard``: Gumbel-top-k forward."""
        fn = st_relaxed_topk if hard else relaxed_topk
        m = None if self.mask is None else self.mask.expand(u.shape)
        return fn(self.logits, self.k, tau, noise=_gumbel_from(u), mask=m)

    def relaxed(self, n: int, tau: float | Tensor, hard: bool,
                generator: torch.Generator | None = None) -> Tensor:
        """``n`` relaxed top-k samples (``hard``: straight-through top-k), differentiable."""
        return self.relaxed_from(self.uniforms(n, generator), tau, hard)

    def probs(self) -> Tensor:
        """The exact marginals :math:`P(i \\in S)`, ``logits.shape``, differentiable."""
        return ksubset_marginals(self.logits, self.k, self.mask)

    def log_prob(self, z: Tensor) -> Tensor:
        """:math:`\\log p(z)` ``[..., *batch]`` of subsets ``z`` ``[..., *logits.shape]``."""
        m = None if self.mask is None else self.mask.expand(z.shape)
        return ksubset_log_prob(z, self.logits.expand(z.shape), self.k, m)

    def outcomes(self) -> tuple[Tensor, Tensor]:
        """Every subset and its probability: ``(z [C(n,k), *logits.shape], p [C(n,k), *batch])``."""
        return ksubset_outcomes(self.logits, self.k, self.mask)


# --------------------------------------------------------------------------------------------
# Estimators through a cost: the registry's names, plus SIMPLE and I-MLE
# --------------------------------------------------------------------------------------------

#: The estimators of a k-subset choice, in the order of the book's tables. All are names of
#: the registry (:mod:`lib.estimators`), which runs them on a :class:`KSubsetNode` by its
#: methods (``imle`` is registered for k-subset nodes only), except ``simple``: the name
#: chapter 15 uses for the registry's ``straight_through`` on this node.
SUBSET_ESTIMATORS = ("exact", "reinforce_loo", "simple", "gumbel_softmax",
                     "st_gumbel_softmax", "imle")

#: Names for tables and legends, saying which law each method's samples follow.
SUBSET_LABELS = {
    "exact": "exact (enumeration)",
    "reinforce": "REINFORCE",
    "reinforce_loo": "REINFORCE + LOO",
    "straight_through": "SIMPLE",
    "simple": "SIMPLE",
    "gumbel_softmax": "relaxed top-k",
    "st_gumbel_softmax": "ST top-k",
    "imle": "I-MLE",
}

#: Names that :func:`subset_surrogate` takes besides the registry's, with their parameters.
_OWN_PARAMS = {"simple": {}}


def subset_surrogate(estimator: str, node: KSubsetNode, cost: Callable[[Tensor], Tensor],
                     n_samples: int = 1, generator: torch.Generator | None = None,
                     **params: object):
    r"""The loss whose gradient is ``estimator``'s estimate, for a k-subset node.

    The registry's entry point (:func:`lib.estimators.surrogate`) for a
    :class:`KSubsetNode`, which also takes ``simple`` (the registry's ``straight_through``
    on this node):

    * ``exact``, ``reinforce``, ``reinforce_loo``: as for any node (exact by enumeration of
      the :math:`\binom{n}{k}` subsets; score function with exact k-subset samples);
    * ``straight_through`` and ``simple``: the same estimator, SIMPLE (:func:`simple_topk`);
    * ``gumbel_softmax``: relaxed top-k (:func:`relaxed_topk`) at temperature ``tau``;
    * ``st_gumbel_softmax``: straight-through top-k (:func:`st_relaxed_topk`);
    * ``imle``: :func:`imle_topk` with parameters ``lam`` and ``noise_temperature``,
      registered for k-subset nodes only. It draws its sum-of-Gamma noise from
      ``generator``, so a node's ``fixed_uniforms`` do not reach it (the other estimators
      draw through the node and use them).

    Args:
        estimator: a name of :data:`SUBSET_ESTIMATORS` or of the registry.
        node: a :class:`KSubsetNode`.
        cost: subsets ``[S, *logits.shape]`` -> costs ``[S, *batch]``.
        n_samples: samples per batch element.
        generator: optional ``torch.Generator``.
        **params: the estimator's parameters (``tau``, ``lam``, ...).

    Returns:
        A :class:`lib.estimators.Surrogate`.

    Example:
        >>> logits = torch.zeros(4, requires_grad=True)
        >>> out = subset_surrogate("simple", KSubsetNode(logits, 2),
        ...                        lambda z: z @ torch.tensor([1., 2., 3., 4.]))
        >>> out.loss.backward(); logits.grad  # additive cost: SIMPLE is exact
        tensor([-0.5000, -0.1667,  0.1667,  0.5000])
    """
    from lib.estimators import surrogate

    if not isinstance(node, KSubsetNode):
        raise TypeError(f"node must be a KSubsetNode, got {type(node).__name__}")
    if estimator not in _OWN_PARAMS:
        return surrogate(estimator, node, cost, n_samples, generator, **params)
    unknown = sorted(set(params) - set(_OWN_PARAMS[estimator]))
    if unknown:
        raise ValueError(f"estimator {estimator!r} does not take parameter(s) "
                         f"{', '.join(unknown)} (allowed: "
                         f"{', '.join(_OWN_PARAMS[estimator]) or 'none'})")
    return surrogate("straight_through", node, cost, n_samples, generator)  # SIMPLE
