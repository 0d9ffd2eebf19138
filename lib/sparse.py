r"""Sparse probability mappings: sparsemax, 1.5-entmax, and sparse marginalisation.

Softmax gives every category a positive probability. Sparsemax (Martins & Astudillo, 2016) is
the Euclidean projection of the scores onto the probability simplex,

.. math::

    \mathrm{sparsemax}(z) = \arg\min_{p \in \Delta} \lVert p - z\rVert^2 = [z - \tau]_+,

with the threshold :math:`\tau` chosen so that the entries sum to one: low scores get an exact
zero. 1.5-entmax (Peters, Niculae & Martins, 2019) sits between softmax and sparsemax,

.. math::

    \mathrm{entmax}_{1.5}(z) = \arg\max_{p \in \Delta} \langle p, z\rangle + H^T_{1.5}(p)
    = \big[z/2 - \tau\big]_+^2,
    \qquad H^T_{1.5}(p) = \tfrac{4}{3}\Big(1 - \sum_k p_k^{3/2}\Big),

also sparse, and smoother. Both thresholds are found exactly by sorting, in
:math:`O(K \log K)`; both Jacobians live on the support :math:`S = \{k : p_k > 0\}`:

.. math::

    J_{\mathrm{sparsemax}} = \mathrm{diag}(s) - \frac{s s^\top}{|S|},
    \qquad
    J_{\mathrm{entmax}_{1.5}} = \mathrm{diag}(g) - \frac{g g^\top}{\sum_k g_k},
    \quad g = \sqrt{p},

with :math:`s` the 0/1 indicator of the support (custom backward passes below).

A sparse distribution makes an expectation cheap and exact: :func:`sparse_expected_cost`
evaluates a cost only on the support (Correia, Niculae, Aziz & Martins, 2020).

References:
    A. F. T. Martins, R. F. Astudillo (2016), *From Softmax to Sparsemax: A Sparse Model of
    Attention and Multi-Label Classification*, ICML.
    B. Peters, V. Niculae, A. F. T. Martins (2019), *Sparse Sequence-to-Sequence Models*, ACL.
    G. M. Correia, V. Niculae, W. Aziz, A. F. T. Martins (2020), *Efficient Marginalization of
    Discrete and Structured Latent Variables via Sparsity*, NeurIPS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from lib._validation import check_callable, check_dim, check_tensor, validating

__all__ = ["MAPPINGS", "SparseExpectation", "entmax15", "sparse_expected_cost", "sparsemax"]

#: The names :func:`sparse_expected_cost` accepts.
MAPPINGS: tuple[str, ...] = ("sparsemax", "entmax15")


def _check_scores(z: Tensor, dim: int, name: str = "z") -> int:
    check_tensor(z, name)
    dim = check_dim(z, dim, tensor_name=name)
    if validating() and not bool(torch.isfinite(z).all()):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return dim


def _sparsemax_last(z: Tensor) -> Tensor:
    """sparsemax over the last dimension (exact, by sorting)."""
    srt, _ = torch.sort(z, dim=-1, descending=True)
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype, device=z.device)
    cumsum = srt.cumsum(-1) - 1
    support = (k * srt > cumsum).sum(-1, keepdim=True)  # the entry k = 1 always qualifies
    tau = cumsum.gather(-1, support - 1) / support.to(z.dtype)
    return (z - tau).clamp_min(0)


class _Sparsemax(torch.autograd.Function):
    generate_vmap_rule = True  # torch.func transforms (jacrev, vmap) work through it

    @staticmethod
    def forward(z):  # noqa: D102
        return _sparsemax_last(z)

    @staticmethod
    def setup_context(ctx, inputs, output):  # noqa: D102
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, dp):  # noqa: D102
        (p,) = ctx.saved_tensors
        s = (p > 0).to(dp.dtype)
        mean = (dp * s).sum(-1, keepdim=True) / s.sum(-1, keepdim=True)
        return s * (dp - mean)


def _entmax15_last(z: Tensor) -> Tensor:
    """1.5-entmax over the last dimension (exact, by sorting: Peters et al. 2019, Alg. 2)."""
    x = z / 2
    x = x - x.max(-1, keepdim=True).values
    srt, _ = torch.sort(x, dim=-1, descending=True)
    rho = torch.arange(1, x.shape[-1] + 1, dtype=x.dtype, device=x.device)
    mean = srt.cumsum(-1) / rho
    mean_sq = (srt ** 2).cumsum(-1) / rho
    ss = rho * (mean_sq - mean ** 2)
    delta = (1 - ss) / rho
    # tau_k solves sum_{j <= k} (x_(j) - tau)^2 = 1 if the support is the k largest
    tau = mean - delta.clamp_min(0).sqrt()
    support = (tau <= srt).sum(-1, keepdim=True)
    tau_star = tau.gather(-1, support - 1)
    return (x - tau_star).clamp_min(0) ** 2


class _Entmax15(torch.autograd.Function):
    generate_vmap_rule = True  # torch.func transforms (jacrev, vmap) work through it

    @staticmethod
    def forward(z):  # noqa: D102
        return _entmax15_last(z)

    @staticmethod
    def setup_context(ctx, inputs, output):  # noqa: D102
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, dp):  # noqa: D102
        (p,) = ctx.saved_tensors
        g = p.sqrt()
        dz = dp * g
        q = dz.sum(-1, keepdim=True) / g.sum(-1, keepdim=True)
        return dz - q * g


def sparsemax(z: Tensor, dim: int = -1) -> Tensor:
    r"""Sparsemax: the Euclidean projection of ``z`` onto the probability simplex along ``dim``.

    :math:`p = [z - \tau]_+` with :math:`\tau = (\sum_{j \le k^*} z_{(j)} - 1)/k^*`, where
    :math:`z_{(1)} \ge z_{(2)} \ge \dots` are the sorted scores and :math:`k^* = \max\{k : 1 +
    k z_{(k)} > \sum_{j \le k} z_{(j)}\}` the support size (Martins & Astudillo, 2016, Alg. 1).
    Backward: :math:`J^\top \bar p = s \odot (\bar p - \langle s, \bar p\rangle/|S|)`.

    Args:
        z: floating tensor ``[..., K, ...]`` of scores.
        dim: the category dimension.

    Returns:
        Probabilities of ``z``'s shape (non-negative, summing to 1 along ``dim``, with exact
        zeros below the threshold).

    Raises:
        TypeError: ``z`` not a floating tensor, ``dim`` not an int.
        ValueError: a bad ``dim``; with validation on, a non-finite ``z``.

    Example:
        >>> sparsemax(torch.tensor([1.0, 0.8, -1.0]))
        tensor([0.6000, 0.4000, 0.0000])
    """
    dim = _check_scores(z, dim)
    return _Sparsemax.apply(z.movedim(dim, -1)).movedim(-1, dim)


def entmax15(z: Tensor, dim: int = -1) -> Tensor:
    r"""1.5-entmax: :math:`p = [z/2 - \tau]_+^2` with :math:`\sum_k p_k = 1`, along ``dim``.

    The maximiser of :math:`\langle p, z\rangle + \frac43(1 - \sum_k p_k^{3/2})` over the
    simplex. The threshold is exact: for each candidate support (the :math:`k` largest
    scores) :math:`\tau_k` solves the quadratic :math:`\sum_{j \le k}(z_{(j)}/2 - \tau)^2 = 1`,
    and the support is the largest :math:`k` with :math:`\tau_k \le z_{(k)}/2` (Peters et al.,
    2019, Alg. 2). Backward: :math:`J^\top \bar p = g \odot \bar p - g \langle g, \bar
    p\rangle / \sum_k g_k` with :math:`g = \sqrt p`.

    Args:
        z: floating tensor ``[..., K, ...]`` of scores.
        dim: the category dimension.

    Returns:
        Probabilities of ``z``'s shape, with exact zeros.

    Raises:
        TypeError, ValueError: as :func:`sparsemax`.

    Example:
        >>> entmax15(torch.tensor([2.0, 1.0, -2.0]))
        tensor([0.8307, 0.1693, 0.0000])
    """
    dim = _check_scores(z, dim)
    return _Entmax15.apply(z.movedim(dim, -1)).movedim(-1, dim)


class SparseExpectation(NamedTuple):
    """What :func:`sparse_expected_cost` returns."""

    #: the exact expected cost ``[*batch]``, differentiable in the logits and the cost
    value: Tensor
    #: the support size of each row ``[*batch]`` (long)
    support_size: Tensor
    #: how many outcomes the cost was evaluated on per row: the largest support size
    n_evaluations: int


def sparse_expected_cost(
    logits: Tensor,
    cost: Callable[[Tensor], Tensor],
    mapping: str = "sparsemax",
) -> SparseExpectation:
    r"""Exact :math:`\mathbb{E}_{k \sim p}[c(e_k)]` for sparse :math:`p`, summing over the support.

    .. math::

        \mathbb{E}_{p}[c] = \sum_{k \in S} p_k\, c(e_k), \qquad p = \mathrm{sparsemax}(\ell)
        \text{ or } \mathrm{entmax}_{1.5}(\ell),

    exact in value and in gradient (outside the support :math:`p_k = 0` and so is its
    gradient), at the cost of :math:`|S|` evaluations of the cost instead of :math:`K`
    (Correia et al., 2020). Rows of a batch are evaluated together on their ``M`` most probable
    categories, ``M`` the largest support in the batch: a row with a smaller support gives its
    extra outcomes the weight 0.

    Args:
        logits: floating tensor ``[*batch, K]``.
        cost: maps one-hot outcomes ``[M, *batch, K]`` to costs ``[M, *batch]`` (the registry's
            convention, :func:`lib.estimators.surrogate`); it may carry its own parameters.
        mapping: ``"sparsemax"`` or ``"entmax15"``.

    Returns:
        :class:`SparseExpectation` ``(value, support_size, n_evaluations)``.

    Raises:
        TypeError: ``logits`` not a floating tensor, ``cost`` not callable, ``mapping`` not a
            str.
        ValueError: 0-d ``logits``, an unknown ``mapping``, a cost of the wrong shape; with
            validation on, non-finite logits.

    Example:
        >>> logits = torch.tensor([2.0, 1.9, -1.0, -3.0])
        >>> out = sparse_expected_cost(logits, lambda z: (z * torch.arange(4.0)).sum(-1))
        >>> out.value, out.n_evaluations
        (tensor(0.4500), 2)
    """
    check_tensor(logits, "logits")
    if logits.dim() < 1:
        raise ValueError("logits must have at least one dimension (the categories), got 0-d")
    check_callable(cost, "cost")
    if not isinstance(mapping, str):
        raise TypeError(f"mapping must be a str, one of {MAPPINGS}, got {type(mapping).__name__}")
    if mapping not in MAPPINGS:
        raise ValueError(f"mapping must be one of {MAPPINGS}, got {mapping!r}")
    p = (sparsemax if mapping == "sparsemax" else entmax15)(logits, -1)
    support_size = (p > 0).sum(-1)
    m = int(support_size.max())
    index = p.detach().topk(m, dim=-1).indices  # [*batch, M]: the support first
    weights = p.gather(-1, index).movedim(-1, 0)  # [M, *batch], 0 beyond a row's support
    outcomes = torch.zeros((m, *logits.shape), dtype=logits.dtype, device=logits.device)
    outcomes.scatter_(-1, index.movedim(-1, 0).unsqueeze(-1), 1.0)
    costs = cost(outcomes)
    if not isinstance(costs, Tensor) or costs.shape != weights.shape:
        got = tuple(costs.shape) if isinstance(costs, Tensor) else type(costs).__name__
        raise ValueError(f"cost must map outcomes {tuple(outcomes.shape)} to costs of shape "
                         f"{tuple(weights.shape)} ([M, *batch]), got {got}")
    return SparseExpectation((weights * costs).sum(0), support_size, m)
