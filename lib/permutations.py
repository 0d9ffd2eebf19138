r"""Permutations: the Gibbs law, Sinkhorn, Gumbel-Sinkhorn and Gumbel-matching.

A permutation :math:`\sigma` of ``n`` items (an assignment of rows to columns, a sorting, a
matching) is written as its permutation matrix :math:`P \in \{0,1\}^{n \times n}`,
:math:`P_{i\sigma(i)} = 1`. Scores :math:`X` (``log_alpha``, ``[..., n, n]``) give it the score
:math:`\langle P, X \rangle_F = \sum_i X_{i\sigma(i)}` and

* the **Gibbs law** :math:`p_X(\sigma) \propto \exp \sum_i X_{i\sigma(i)}`, a softmax over the
  :math:`n!` permutations (:func:`permutation_log_probs`, by enumeration, n <= 8), whose
  marginals :math:`\mu_{ij} = p_X(\sigma(i) = j)` are a ratio of permanents
  (:func:`permutation_marginals`): with :math:`A = e^X`,

  .. math:: \mu_{ij} = \frac{A_{ij}\,\mathrm{perm}(A_{\setminus i, \setminus j})}
            {\mathrm{perm}(A)};

* the **matching** :math:`M(X) = \arg\max_P \langle P, X \rangle_F`, a linear assignment
  problem (:func:`matching`, the Hungarian algorithm of SciPy);
* **Sinkhorn**: :math:`S(X/\tau)`, alternately normalising the rows and the columns of
  :math:`e^{X/\tau}` (:func:`sinkhorn`, in log space). Its limit is the doubly stochastic
  matrix

  .. math:: S(X/\tau) = \arg\max_{P \in \mathcal{B}_n} \langle P, X \rangle_F + \tau H(P),
            \qquad H(P) = -\sum_{ij} P_{ij} \log P_{ij},

  over the Birkhoff polytope :math:`\mathcal{B}_n` of doubly stochastic matrices (whose
  vertices are the permutation matrices): an entropy-regularised matching, as the softmax
  is an entropy-regularised argmax over the simplex, and :math:`S(X/\tau) \to M(X)` as
  :math:`\tau \to 0` when the matching is unique (Mena et al. 2018, Theorem 1);
* **Gumbel-matching** :math:`M(X + G)` with :math:`n^2` i.i.d. standard Gumbels
  (:func:`gumbel_matching_sample`) and its relaxation **Gumbel-Sinkhorn**
  :math:`S((X + G)/\tau)` (:func:`gumbel_sinkhorn`; ``hard=True``: the matching forward,
  the relaxation's gradient backward).

**Gumbel-matching is not the Gibbs law.** One Gumbel per *entry* (:math:`n^2` of them), not one
per permutation (:math:`n!`), is the perturb-and-MAP approximation of
:func:`lib.structured.perturb_and_map_chain`: a permutation's perturbed score is a sum of n
Gumbels, which is not Gumbel. Already for n = 2 the probability of the identity is
:math:`P(L_1 + L_2 > -D)`, with :math:`D = X_{11} + X_{22} - X_{12} - X_{21}` and two
independent standard logistics :math:`L_1, L_2`, not :math:`\mathrm{sigmoid}(D)`; the two laws
agree when every permutation has the same score (:math:`X_{ij} = a_i + b_j`: both uniform) and
for n = 1. Every Gumbel-Sinkhorn gradient targets the Gumbel-matching law.

Shapes: ``log_alpha`` is ``[..., n, n]`` (one permutation per leading index); permutation
matrices have the same shape; ``n_samples`` adds a leading dimension. Generators follow
:mod:`lib.rng` (a CPU generator works for tensors on any device). Validation: types, shapes
and integer arguments are always checked; values (finite scores) only with validation on.

References:
    G. Mena, D. Belanger, S. Linderman, J. Snoek (2018), *Learning Latent Permutations with
    Gumbel-Sinkhorn Networks*, ICLR (arXiv:1802.08665).
    M. B. Paulus, D. Choi, D. Tarlow, A. Krause, C. J. Maddison (2020), *Gradient Estimation
    with Stochastic Softmax Tricks*, NeurIPS.
    R. Sinkhorn (1964), *A Relationship Between Arbitrary Positive Matrices and Doubly
    Stochastic Matrices*, Ann. Math. Statist.
    G. Papandreou, A. Yuille (2011), *Perturb-and-MAP Random Fields*, ICCV.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import Tensor

from lib._validation import (
    check_bool,
    check_generator,
    check_int,
    check_tau,
    check_tensor,
    validating,
)
from lib.estimators import StochasticNode

__all__ = [
    "MAX_ENUMERATION_N",
    "PERMUTATION_LABELS",
    "PermutationNode",
    "gumbel_matching_sample",
    "gumbel_sinkhorn",
    "matching",
    "permutation_enumerate",
    "permutation_index",
    "permutation_log_probs",
    "permutation_marginals",
    "permutation_scores",
    "sinkhorn",
]

MAX_ENUMERATION_N = 8
"""Largest n for the enumeration functions: 8! = 40320 permutations."""


def _check_square(log_alpha: Tensor, name: str = "log_alpha") -> int:
    """Check a floating ``[..., n, n]`` tensor, n >= 1 (finite with validation on); return n."""
    check_tensor(log_alpha, name)
    shape = log_alpha.shape
    if log_alpha.dim() < 2 or shape[-1] != shape[-2] or shape[-1] == 0:
        raise ValueError(f"{name} must have shape [..., n, n] with n >= 1 (square in its last "
                         f"two dimensions), got {tuple(log_alpha.shape)}")
    if validating() and not bool(torch.isfinite(log_alpha).all()):
        raise ValueError(f"{name} must be finite")
    return log_alpha.shape[-1]


def _check_enumerable(n: int) -> None:
    if n > MAX_ENUMERATION_N:
        raise ValueError(f"enumeration needs n <= {MAX_ENUMERATION_N} (n! permutations), got "
                         f"n={n}")


def _gumbel_noise(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard Gumbel noise with ``like``'s shape, dtype and device (:mod:`lib.rng` rule)."""
    from lib.gumbel import _uniform_open_like

    return _uniform_open_like(like, generator).log_().neg_().log_().neg_()


# --------------------------------------------------------------------------------------------
# Sinkhorn and Gumbel-Sinkhorn
# --------------------------------------------------------------------------------------------

def sinkhorn(log_alpha: Tensor, n_iters: int = 20, tau: float | Tensor = 1.0) -> Tensor:
    r"""Sinkhorn normalisation :math:`S(X/\tau)` in log space: a doubly stochastic matrix.

    Starting from :math:`L = X/\tau`, each of the ``n_iters`` iterations normalises the rows,
    then the columns:

    .. math:: L \leftarrow L - \operatorname{logsumexp}_j L_{ij}, \qquad
              L \leftarrow L - \operatorname{logsumexp}_i L_{ij},

    and returns :math:`e^L`. Its columns sum to 1 exactly (up to rounding), its rows to 1 up
    to the error left after ``n_iters`` iterations (it falls geometrically for a positive
    matrix; more iterations are needed for small ``tau``). As ``n_iters`` grows the result
    tends to :math:`\arg\max_{P \in \mathcal{B}_n} \langle P, X\rangle_F + \tau H(P)`, and as
    :math:`\tau \to 0` to the matching :func:`matching` (Mena et al. 2018).

    Args:
        log_alpha: scores :math:`X`, ``[..., n, n]``.
        n_iters: number of row-then-column iterations, >= 1.
        tau: temperature > 0 (a number, or a tensor broadcastable to ``[..., 1, 1]``).

    Returns:
        ``[..., n, n]``, differentiable in ``log_alpha``.

    Example:
        >>> s = sinkhorn(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), n_iters=50)
        >>> bool(torch.allclose(s.sum(-1), torch.ones(2))), bool(torch.allclose(s, s.T))
        (True, True)
    """
    _check_square(log_alpha)
    n_iters = check_int(n_iters, "n_iters", min_value=1)
    tau = check_tau(tau, "tau", like=log_alpha)
    log_p = log_alpha / tau
    for _ in range(n_iters):
        log_p = log_p - torch.logsumexp(log_p, dim=-1, keepdim=True)
        log_p = log_p - torch.logsumexp(log_p, dim=-2, keepdim=True)
    return log_p.exp()


def gumbel_sinkhorn(
    log_alpha: Tensor,
    tau: float | Tensor = 1.0,
    n_iters: int = 20,
    n_samples: int = 1,
    *,
    hard: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Gumbel-Sinkhorn samples :math:`S((X + G)/\tau)`, ``[n_samples, ..., n, n]``.

    :math:`G` has ``n * n`` i.i.d. standard Gumbel entries per sample (Mena et al. 2018, with
    their noise factor 1). As :math:`\tau \to 0` a sample tends to the Gumbel-matching sample
    :math:`M(X + G)` of the same noise (:func:`gumbel_matching_sample`), whose law is **not**
    the Gibbs law :func:`permutation_log_probs` (see the module docstring).

    With ``hard=True`` the forward value is that matching :math:`M(X + G)` and the gradient is
    the relaxed sample's (straight-through: ``hard + soft - soft.detach()``).

    Args:
        log_alpha: scores :math:`X`, ``[..., n, n]``.
        tau: temperature > 0.
        n_iters: Sinkhorn iterations, >= 1.
        n_samples: number of samples, >= 1 (a new leading dimension).
        hard: forward the matching of the perturbed scores (straight-through).
        generator: optional ``torch.Generator`` (CPU or ``log_alpha``'s device).

    Returns:
        ``[n_samples, ..., n, n]``: doubly stochastic (up to ``n_iters``) matrices, or
        permutation matrices if ``hard``; differentiable in ``log_alpha``.
    """
    _check_square(log_alpha)
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    hard = check_bool(hard, "hard")
    check_generator(generator, like=log_alpha)
    tau = check_tau(tau, "tau", like=log_alpha)
    noise = _gumbel_noise(log_alpha.detach().expand(n_samples, *log_alpha.shape), generator)
    return _perturbed_sinkhorn(log_alpha + noise, tau, n_iters, hard)


def _perturbed_sinkhorn(perturbed: Tensor, tau: Tensor, n_iters: int, hard: bool) -> Tensor:
    """``S(perturbed / tau)``, or with ``hard`` the matching forward and its gradient backward."""
    soft = sinkhorn(perturbed, n_iters, tau)
    if not hard:
        return soft
    return matching(perturbed.detach()) + soft - soft.detach()


# --------------------------------------------------------------------------------------------
# Hard permutations
# --------------------------------------------------------------------------------------------

def matching(log_alpha: Tensor) -> Tensor:
    r"""The matching :math:`M(X) = \arg\max_P \sum_i X_{i\sigma(i)}` as permutation matrices.

    Solved per leading index by :func:`scipy.optimize.linear_sum_assignment` (the Hungarian
    algorithm, ``maximize=True``) in float64 on the CPU; ties are broken by SciPy. No gradient.

    Args:
        log_alpha: scores :math:`X`, ``[..., n, n]``.

    Returns:
        ``[..., n, n]`` 0/1 matrices, one 1 per row and per column, in ``log_alpha``'s dtype
        and device.

    Example:
        >>> matching(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        tensor([[0., 1.],
                [1., 0.]])
    """
    from scipy.optimize import linear_sum_assignment

    n = _check_square(log_alpha)
    x = log_alpha.detach().double().reshape(-1, n, n).cpu().numpy()
    cols = np.empty((x.shape[0], n), dtype=np.int64)
    for b in range(x.shape[0]):
        _, cols[b] = linear_sum_assignment(x[b], maximize=True)
    index = torch.as_tensor(cols, device=log_alpha.device).reshape(*log_alpha.shape[:-1], 1)
    out = torch.zeros_like(log_alpha, memory_format=torch.contiguous_format).detach()
    return out.scatter_(-1, index, 1.0)


def gumbel_matching_sample(
    log_alpha: Tensor,
    n_samples: int = 1,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Gumbel-matching samples :math:`M(X + G)`, ``[n_samples, ..., n, n]`` (no gradient).

    :math:`G`: ``n * n`` i.i.d. standard Gumbels per sample, the same draws as
    :func:`gumbel_sinkhorn` with the same generator state. Perturb-and-MAP with one Gumbel per
    entry: its law is **not** the Gibbs law :func:`permutation_log_probs` (they agree for
    n = 1 and when every permutation has the same score).

    Args:
        log_alpha: scores :math:`X`, ``[..., n, n]``.
        n_samples: number of samples, >= 1.
        generator: optional ``torch.Generator`` (CPU or ``log_alpha``'s device).

    Returns:
        ``[n_samples, ..., n, n]`` permutation matrices in ``log_alpha``'s dtype.
    """
    _check_square(log_alpha)
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    check_generator(generator, like=log_alpha)
    like = log_alpha.detach().expand(n_samples, *log_alpha.shape)
    return matching(like + _gumbel_noise(like, generator))


# --------------------------------------------------------------------------------------------
# The Gibbs law by enumeration
# --------------------------------------------------------------------------------------------

def permutation_enumerate(n: int, *, device: torch.device | str | None = None) -> Tensor:
    """All ``n!`` permutations of ``range(n)`` as an int64 tensor ``[n!, n]``.

    Row ``r`` is the ``r``-th tuple of ``itertools.permutations(range(n))`` (lexicographic);
    entry ``[r, i]`` is :math:`\\sigma_r(i)`, the column of row ``i``. ``1 <= n <= 8``.
    """
    n = check_int(n, "n", min_value=1)
    _check_enumerable(n)
    return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.int64, device=device)


def permutation_index(perm: Tensor) -> Tensor:
    """Row of :func:`permutation_enumerate` of each permutation matrix, ``[...]`` (int64).

    Args:
        perm: permutation matrices ``[..., n, n]`` (0/1, one 1 per row and column; checked
            with validation on), ``n <= 8``.

    Returns:
        ``[...]`` int64 indices: the lexicographic rank of :math:`(\\sigma(0), ..., \\sigma(n-1))`.
    """
    n = _check_square(perm, "perm")
    _check_enumerable(n)
    if validating():
        ok = ((perm == 0) | (perm == 1)).all() and (perm.sum(-1) == 1).all() and (
            perm.sum(-2) == 1).all()
        if not bool(ok):
            raise ValueError("perm must hold permutation matrices (0/1, one 1 per row and "
                             "column)")
    sigma = perm.argmax(-1)  # [..., n]
    # Lehmer code: rank = sum_i (number of later entries smaller than sigma(i)) * (n-1-i)!
    smaller_later = (sigma.unsqueeze(-1) > sigma.unsqueeze(-2)).long().triu(1).sum(-1)  # [..., n]
    weights = torch.tensor([math.factorial(n - 1 - i) for i in range(n)], device=perm.device)
    return (smaller_later * weights).sum(-1)


def permutation_scores(log_alpha: Tensor) -> Tensor:
    r"""Score :math:`\sum_i X_{i\sigma(i)}` of every permutation, ``[..., n!]`` (rows as in
    :func:`permutation_enumerate`); differentiable. ``n <= 8``.
    """
    n = _check_square(log_alpha)
    _check_enumerable(n)
    perms = permutation_enumerate(n, device=log_alpha.device)  # [n!, n]
    rows = torch.arange(n, device=log_alpha.device)
    return log_alpha[..., rows, perms].sum(-1)  # [..., n!, n] -> [..., n!]


def permutation_log_probs(log_alpha: Tensor) -> Tensor:
    r"""Log-probabilities of the Gibbs law over permutations, ``[..., n!]``, by enumeration.

    .. math:: \log p_X(\sigma) = \sum_i X_{i\sigma(i)} - \log \sum_{\sigma'} \exp \sum_i
              X_{i\sigma'(i)}

    (the log-partition is the log-permanent of :math:`e^X`). Rows as in
    :func:`permutation_enumerate`; differentiable in ``log_alpha``.

    Args:
        log_alpha: scores :math:`X`, ``[..., n, n]`` with ``n <= 8``.

    Returns:
        ``[..., n!]``; ``exp`` of it sums to 1 over the last dimension.

    Raises:
        ValueError: if n > 8 (enumeration of n! permutations).
    """
    return torch.log_softmax(permutation_scores(log_alpha), dim=-1)


def permutation_marginals(log_alpha: Tensor) -> Tensor:
    r"""Marginals :math:`\mu_{ij} = p_X(\sigma(i) = j)` of the Gibbs law, ``[..., n, n]``.

    Equal to the permanent ratio :math:`A_{ij}\,\mathrm{perm}(A_{\setminus i,\setminus j}) /
    \mathrm{perm}(A)` with :math:`A = e^X`, and to the gradient of the log-permanent
    :math:`\log \mathrm{perm}(e^X)` in :math:`X`; computed by enumeration (``n <= 8``). A
    doubly stochastic matrix, differentiable in ``log_alpha``.
    """
    n = _check_square(log_alpha)
    _check_enumerable(n)
    p = permutation_log_probs(log_alpha).exp()  # [..., n!]
    onehot = torch.nn.functional.one_hot(permutation_enumerate(n, device=log_alpha.device), n)
    return torch.einsum("...r,rij->...ij", p, onehot.to(p.dtype))


# --------------------------------------------------------------------------------------------
# A stochastic node over permutations: the registry's estimators on the Gibbs law
# --------------------------------------------------------------------------------------------

#: Readable names of the registry's estimators on a :class:`PermutationNode`, for tables.
PERMUTATION_LABELS = {
    "exact": "exact (enumeration)",
    "reinforce": "REINFORCE",
    "reinforce_loo": "REINFORCE + LOO",
    "straight_through": "ST with exact marginals",
    "gumbel_softmax": "relaxed Gumbel-Sinkhorn",
    "st_gumbel_softmax": "ST Gumbel-Sinkhorn",
}


class PermutationNode(StochasticNode):
    r"""A stochastic node whose joint sample is one permutation matrix per batch element.

    ``PermutationNode(log_alpha [*batch, n, n])`` is the **Gibbs law**
    :math:`p_X(\sigma) \propto \exp \sum_i X_{i\sigma(i)}` (``kind == "permutation"``,
    ``event_dims == 2``, ``n <= 8`` so that the n! permutations can be enumerated). It has the
    methods of :class:`lib.estimators.StochasticNode`, so the registry's six generic estimators
    run on it (:data:`PERMUTATION_LABELS` names them for permutations):

    * :meth:`sample`, :meth:`sample_from`: exact samples of the Gibbs law, by the inverse of
      its distribution function over the permutations in the order of
      :func:`permutation_enumerate` (one uniform per sample: entry ``[0, 0]`` of ``u``);
      :meth:`log_prob`; :meth:`outcomes` (every permutation, for ``exact``), so ``exact``,
      ``reinforce`` and ``reinforce_loo`` are exact or unbiased for
      :math:`\nabla_X \mathbb{E}_{p_X}[f]`;
    * :meth:`probs`: the exact marginals :func:`permutation_marginals`, so
      ``straight_through`` forwards a Gibbs sample and passes the marginals' Jacobian back;
    * :meth:`relaxed`, :meth:`relaxed_from`: Gumbel-Sinkhorn :math:`S((X + G)/\tau)` with
      ``n_iters`` Sinkhorn iterations (``gumbel_softmax``); with ``hard=True`` the matching
      :math:`M(X + G)` forward (``st_gumbel_softmax``). Their hard values follow the
      Gumbel-matching law, **not** the Gibbs law, so these two are biased for the Gibbs
      gradient by the gap between the laws as well as by the relaxation.

    Args:
        log_alpha: scores :math:`X`, floating ``[*batch, n, n]`` with ``1 <= n <= 8``.
        n_iters: Sinkhorn iterations of the relaxed samples, >= 1 (Mena et al.'s 20).
        fixed_uniforms: optional uniforms ``[S, *shape]`` (``shape`` broadcastable to
            ``log_alpha``'s), as for ``StochasticNode``: common noise for several nodes.

    Example:
        >>> from lib.estimators import surrogate
        >>> X = torch.zeros(3, 3, requires_grad=True)
        >>> node = PermutationNode(X)
        >>> out = surrogate("exact", node, lambda P: P.diagonal(dim1=-2, dim2=-1).sum(-1))
        >>> round(out.loss.item(), 4)  # each row keeps its column with probability 1/3
        1.0
    """

    n_iters: int = 20

    def __init__(self, log_alpha: Tensor, n_iters: int = 20,
                 fixed_uniforms: Tensor | None = None) -> None:
        object.__setattr__(self, "kind", "permutation")
        object.__setattr__(self, "logits", log_alpha)
        object.__setattr__(self, "event_dims", 2)
        object.__setattr__(self, "mask", None)
        object.__setattr__(self, "fixed_uniforms", fixed_uniforms)
        object.__setattr__(self, "n_iters", n_iters)
        self.__post_init__()

    def __post_init__(self) -> None:
        n = _check_square(self.logits, "log_alpha")
        _check_enumerable(n)
        object.__setattr__(self, "n_iters", check_int(self.n_iters, "n_iters", min_value=1))
        if self.fixed_uniforms is not None:
            u = check_tensor(self.fixed_uniforms, "fixed_uniforms")
            shape = self.logits.shape
            if u.dim() != self.logits.dim() + 1 or any(
                    a not in (1, b) for a, b in zip(u.shape[1:], shape)):
                raise ValueError(f"fixed_uniforms must have shape [S, *shape] with shape "
                                 f"broadcastable to log_alpha's {tuple(shape)}, got "
                                 f"{tuple(u.shape)}")

    @property
    def batch_shape(self) -> torch.Size:
        """The scores' shape without the two n dimensions."""
        return self.logits.shape[:-2]

    @property
    def n(self) -> int:
        """The number of items permuted."""
        return self.logits.shape[-1]

    def sample_from(self, u: Tensor) -> Tensor:
        """The exact Gibbs sample of uniforms ``u`` ``[..., *log_alpha.shape]``, no gradient.

        Inverse transform: the first permutation (in :func:`permutation_enumerate`'s order)
        whose cumulative probability exceeds ``u[..., 0, 0]``, computed in float64.
        """
        check_tensor(u, "u")
        n = self.n
        if u.dim() < 2 or u.shape[-2:] != (n, n):
            raise ValueError(f"u must have shape [..., {n}, {n}], got {tuple(u.shape)}")
        v = u[..., 0, 0].detach().double()  # [..., *batch]
        cdf = permutation_log_probs(self.logits.detach().double()).exp().cumsum(-1)
        cdf = cdf.expand(*v.shape, cdf.shape[-1]).contiguous()
        index = torch.searchsorted(cdf, v.unsqueeze(-1).contiguous()).squeeze(-1)
        index = index.clamp_(max=cdf.shape[-1] - 1)  # v above a cdf that rounded below 1
        sigma = permutation_enumerate(n, device=u.device)[index]  # [..., *batch, n]
        return torch.nn.functional.one_hot(sigma, n).to(self.logits.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` exact Gibbs samples ``[n, *log_alpha.shape]`` (permutation matrices)."""
        return self.sample_from(self.uniforms(n, generator))

    def relaxed_from(self, u: Tensor, tau: float | Tensor, hard: bool = False) -> Tensor:
        """Gumbel-Sinkhorn of ``log_alpha - log(-log u)``; ``hard``: the matching forward."""
        check_tensor(u, "u")
        tau = check_tau(tau, "tau", like=self.logits)
        noise = -torch.log(-torch.log(u.to(self.logits.dtype)))
        return _perturbed_sinkhorn(self.logits + noise, tau, self.n_iters,
                                   check_bool(hard, "hard"))

    def relaxed(self, n: int, tau: float | Tensor, hard: bool,
                generator: torch.Generator | None = None) -> Tensor:
        """``n`` Gumbel-Sinkhorn samples (``hard``: ST Gumbel-Sinkhorn), differentiable."""
        return self.relaxed_from(self.uniforms(n, generator), tau, hard)

    def probs(self) -> Tensor:
        r"""The Gibbs marginals :math:`P(\sigma(i) = j)`, ``log_alpha.shape``, differentiable."""
        return permutation_marginals(self.logits)

    def log_prob(self, z: Tensor) -> Tensor:
        r""":math:`\log p_X(\sigma)` ``[..., *batch]`` of permutation matrices ``z``
        ``[..., *log_alpha.shape]``; differentiable in ``log_alpha``."""
        index = permutation_index(z.detach())  # [..., *batch]
        log_p = permutation_log_probs(self.logits)  # [*batch, n!]
        shape = torch.broadcast_shapes(index.shape, log_p.shape[:-1])
        index = index.expand(shape)
        log_p = log_p.expand(*shape, log_p.shape[-1])
        return log_p.gather(-1, index.unsqueeze(-1)).squeeze(-1)

    def outcomes(self) -> tuple[Tensor, Tensor]:
        """Every permutation and its probability: ``(z [n!, *log_alpha.shape], p [n!, *batch])``."""
        n, batch = self.n, self.batch_shape
        perms = torch.nn.functional.one_hot(permutation_enumerate(n, device=self.logits.device),
                                            n).to(self.logits.dtype)  # [n!, n, n]
        z = perms.reshape(-1, *(1,) * len(batch), n, n).expand(-1, *self.logits.shape)
        p = permutation_log_probs(self.logits).exp().movedim(-1, 0)  # [n!, *batch]
        return z, p
