"""Sampling structures by perturbing scores and maximising ("perturb-and-max").

The Gumbel-max trick samples from a softmax over *any* finite set once a score is given to each
element: add independent standard Gumbel noise to every score and take the argmax. For sets of
structures (binary vectors, sequences, subsets) two things change:

* Ordered subsets: the ``k`` largest perturbed logits are ``k`` draws without replacement
  (:func:`lib.gumbel.gumbel_topk_sample`); :func:`without_replacement_log_prob` gives the exact
  probability of an ordered draw, the reference it is tested against.
* Binary vectors with a chain score :func:`chain_score`: there are :math:`2^n` structures, so one
  Gumbel per structure is exact but exponential. :func:`perturb_and_map_chain` perturbs only the
  per-variable scores and maximises with dynamic programming (:func:`chain_map`): cheap, exact
  when the variables do not interact, an approximation otherwise. :func:`chain_log_probs`
  enumerates the exact distribution for small ``n``.

References:
    G. Papandreou, A. Yuille (2011), *Perturb-and-MAP Random Fields: Using Discrete
    Optimization to Learn and Sample from Energy Models*, ICCV.
    T. Hazan, T. Jaakkola (2012), *On the Partition Function and Random Maximum A-Posteriori
    Perturbations*, ICML.
    W. Kool, H. van Hoof, M. Welling (2019), *Stochastic Beams and Where to Find Them*, ICML.

Validation: shapes and dtypes are always checked; the values (finite scores, 0/1 vectors,
distinct indices in range) only with validation on (:func:`lib.set_default_validate_args`),
as reading them waits for the device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lib._validation import check_broadcast, check_int, check_logits, check_tensor, validating
from lib.estimators import enumerate_binary
from lib.gumbel import sample_gumbel

__all__ = [
    "binary_index",
    "chain_log_probs",
    "chain_map",
    "chain_score",
    "perturb_and_map_chain",
    "without_replacement_log_prob",
]


def _check_chain(unary: Tensor, coupling: Tensor) -> tuple[Tensor, Tensor]:
    """Check chain potentials and broadcast their batch dimensions together."""
    check_tensor(unary, "unary")
    check_tensor(coupling, "coupling")
    if unary.dim() == 0 or unary.shape[-1] == 0:
        raise ValueError(
            f"unary must have shape [..., n] with n >= 1, got {tuple(unary.shape)}"
        )
    n = unary.shape[-1]
    if coupling.dim() == 0 or coupling.shape[-1] != n - 1:
        raise ValueError(
            f"coupling must have shape [..., n - 1] = [..., {n - 1}] for unary of shape "
            f"{tuple(unary.shape)} (one coupling per neighbouring pair), got "
            f"{tuple(coupling.shape)}"
        )
    for name, t in (("unary", unary), ("coupling", coupling)):
        if validating() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} must be finite everywhere")
    batch = check_broadcast(
        [unary.shape[:-1], coupling.shape[:-1]], ["unary", "coupling"], "batch shapes")
    dtype = torch.promote_types(unary.dtype, coupling.dtype)
    return (unary.to(dtype).expand(*batch, n), coupling.to(dtype).expand(*batch, n - 1))


def chain_score(z: Tensor, unary: Tensor, coupling: Tensor) -> Tensor:
    r"""Score of binary vectors under a chain model.

    .. math:: s(z) = \sum_{i=1}^{n} u_i z_i + \sum_{i=1}^{n-1} c_i z_i z_{i+1},
              \qquad z \in \{0, 1\}^n.

    The Gibbs distribution of this score, :math:`p(z) \propto e^{s(z)}`, is a chain-structured
    Markov random field (an Ising chain in 0/1 coordinates); ``coupling = 0`` makes the bits
    independent Bernoulli(sigmoid(u_i)).

    Args:
        z: tensor ``[..., n]`` of 0/1 values (any floating dtype).
        unary: per-variable scores :math:`u`, shape ``[n]`` or broadcastable to ``[..., n]``;
            finite (checked with validation on, as for ``coupling``).
        coupling: scores :math:`c` of neighbouring pairs, shape ``[n - 1]`` or broadcastable.

    Returns:
        Tensor ``[...]``: the score of each vector.

    Example:
        >>> chain_score(torch.tensor([1., 1., 0.]), torch.tensor([0.5, -1., 2.]),
        ...             torch.tensor([3., 0.]))
        tensor(2.5000)
    """
    check_tensor(z, "z")
    unary, coupling = _check_chain(unary, coupling)
    if z.dim() == 0 or z.shape[-1] != unary.shape[-1]:
        raise ValueError(
            f"z must have shape [..., n] with n = {unary.shape[-1]} (the length of unary), "
            f"got {tuple(z.shape)}"
        )
    pair = z[..., :-1] * z[..., 1:]
    return (z * unary).sum(-1) + (pair * coupling).sum(-1)


def chain_map(unary: Tensor, coupling: Tensor) -> Tensor:
    r"""The highest-scoring binary vector of a chain model, by dynamic programming (Viterbi).

    Computes :math:`\arg\max_{z \in \{0,1\}^n} s(z)` for the score of :func:`chain_score` in
    :math:`O(n)` operations per batch element instead of the :math:`2^n` of enumeration:

    .. math:: V_1(a) = u_1 a, \qquad
              V_i(b) = u_i b + \max_{a \in \{0, 1\}} \big(V_{i-1}(a) + c_{i-1} a b\big),

    then backtracking from :math:`\arg\max_b V_n(b)`. Ties (probability zero once continuous
    noise is added) go to the lower state.

    Args:
        unary: per-variable scores, shape ``[..., n]``; finite (checked with validation on, as
            for ``coupling``).
        coupling: pair scores, shape ``[..., n - 1]`` (batch dimensions broadcast with
            ``unary``'s).

    Returns:
        Tensor ``[..., n]`` of 0/1 values in the dtype of the scores: the maximiser.

    Example:
        >>> chain_map(torch.tensor([0.5, -1., 2.]), torch.tensor([3., 0.]))
        tensor([1., 1., 1.])
    """
    unary, coupling = _check_chain(unary, coupling)
    n = unary.shape[-1]
    states = torch.tensor([0.0, 1.0], dtype=unary.dtype, device=unary.device)
    pair = states.unsqueeze(1) * states.unsqueeze(0)  # [a, b] -> a * b
    value = unary[..., :1] * states  # V_1, shape [..., 2]
    backpointers = []
    for i in range(1, n):
        # candidates[..., a, b] = V_{i-1}(a) + c_{i-1} a b
        candidates = value.unsqueeze(-1) + coupling[..., i - 1, None, None] * pair
        best, argbest = candidates.max(dim=-2)
        backpointers.append(argbest)
        value = best + unary[..., i : i + 1] * states
    state = value.argmax(dim=-1)
    path = [state]
    for argbest in reversed(backpointers):
        state = argbest.gather(-1, state.unsqueeze(-1)).squeeze(-1)
        path.append(state)
    return torch.stack(path[::-1], dim=-1).to(unary.dtype)


def perturb_and_map_chain(
    unary: Tensor,
    coupling: Tensor,
    n_samples: int,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Approximate samples of a chain model by low-order perturbation and exact maximisation.

    Each variable :math:`i` gets independent standard Gumbel noise :math:`G_{i,0}, G_{i,1}` on
    its two values, so the unary score :math:`u_i` becomes :math:`u_i + G_{i,1} - G_{i,0}`
    (the difference of two Gumbels is standard Logistic), and :func:`chain_map` maximises
    the perturbed score:

    .. math:: \hat z = \arg\max_z \Big(s(z) + \sum_i G_{i, z_i}\Big).

    With ``coupling = 0`` this is exact: the maximisation splits into one Gumbel-max per bit.
    With interactions it is **not** a sample of :math:`p(z) \propto e^{s(z)}` in general: the
    exact Gumbel-max trick needs one independent Gumbel per *structure* (:math:`2^n` of them),
    and per-variable noise only approximates that (Papandreou and Yuille 2011; Hazan and
    Jaakkola 2012). Compare with :func:`chain_log_probs` to see the gap.

    Args:
        unary: per-variable scores, shape ``[..., n]``; finite (checked with validation on, as
            for ``coupling``).
        coupling: pair scores, shape ``[..., n - 1]``.
        n_samples: number of samples, ``>= 1``.
        generator: optional ``torch.Generator`` on the CPU or on the scores' device.

    Returns:
        Tensor ``[n_samples, ..., n]`` of 0/1 values.

    Example:
        >>> z = perturb_and_map_chain(torch.zeros(4), torch.zeros(3), 5,
        ...                           generator=torch.Generator().manual_seed(0))
        >>> z.shape
        torch.Size([5, 4])

    Reference:
        Papandreou, Yuille (2011), *Perturb-and-MAP Random Fields*, ICCV.
    """
    unary, coupling = _check_chain(unary, coupling)
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    noise = sample_gumbel(
        (n_samples, *unary.shape, 2), generator=generator, dtype=unary.dtype,
        device=unary.device,
    )
    perturbed = unary + noise[..., 1] - noise[..., 0]
    return chain_map(perturbed, coupling)


def chain_log_probs(unary: Tensor, coupling: Tensor) -> Tensor:
    r"""Exact log-probabilities of all :math:`2^n` vectors of a chain model, by enumeration.

    .. math:: \log p(z) = s(z) - \log \sum_{z'} e^{s(z')}.

    Args:
        unary: per-variable scores, shape ``[..., n]`` with ``n <= 20``; finite (checked with
            validation on, as for ``coupling``).
        coupling: pair scores, shape ``[..., n - 1]``.

    Returns:
        Tensor ``[..., 2**n]``; entry ``j`` belongs to row ``j`` of
        :func:`lib.estimators.enumerate_binary` (``n`` bits, most significant first), the
        numbering :func:`binary_index` computes.

    Example:
        >>> chain_log_probs(torch.zeros(2), torch.zeros(1)).exp()
        tensor([0.2500, 0.2500, 0.2500, 0.2500])
    """
    unary, coupling = _check_chain(unary, coupling)
    structures = enumerate_binary(unary.shape[-1], dtype=unary.dtype, device=unary.device)
    scores = chain_score(structures, unary.unsqueeze(-2), coupling.unsqueeze(-2))
    return torch.log_softmax(scores, dim=-1)


def binary_index(z: Tensor) -> Tensor:
    r"""The row of :func:`lib.estimators.enumerate_binary` equal to each binary vector.

    .. math:: j(z) = \sum_{i=1}^{n} z_i \, 2^{n - i}\quad\text{(most significant bit first).}

    Args:
        z: tensor ``[..., n]`` of 0/1 values (any dtype), ``n <= 62`` (the values are checked
            with validation on).

    Returns:
        LongTensor ``[...]``.

    Example:
        >>> binary_index(torch.tensor([[0., 1., 1.], [1., 0., 0.]]))
        tensor([3, 4])
    """
    check_tensor(z, "z", floating=False)
    if z.dim() == 0 or not 1 <= z.shape[-1] <= 62:
        raise ValueError(f"z must have shape [..., n] with 1 <= n <= 62, got {tuple(z.shape)}")
    if validating() and not bool(((z == 0) | (z == 1)).all()):
        raise ValueError("z must contain only 0 and 1")
    n = z.shape[-1]
    weights = 2 ** torch.arange(n - 1, -1, -1, device=z.device)
    return (z.long() * weights).sum(-1)


def without_replacement_log_prob(logits: Tensor, draws: Tensor) -> Tensor:
    r"""Log-probability of an ordered draw without replacement (the Plackett-Luce model).

    Drawing ``k`` distinct categories one after another, each from the softmax of the logits of
    the categories not drawn yet, gives the ordered tuple :math:`(i_1, \dots, i_k)` probability

    .. math:: P(i_1, \dots, i_k) = \prod_{j=1}^{k}
              \frac{e^{\ell_{i_j}}}{\sum_{m \notin \{i_1, \dots, i_{j-1}\}} e^{\ell_m}},

    the distribution of :func:`lib.gumbel.gumbel_topk_sample` (Kool et al. 2019).

    Args:
        logits: floating tensor ``[..., K]``; ``-inf`` marks a category that is never drawn.
        draws: integer tensor ``[..., k]`` of distinct indices in ``[0, K)``, ``1 <= k <= K``;
            its batch dimensions broadcast with those of ``logits`` (the indices are checked
            with validation on).

    Returns:
        Tensor ``[...]`` (the broadcast batch shape): :math:`\log P` (``-inf`` if a drawn
        category has a ``-inf`` logit).

    Example:
        >>> probs = torch.tensor([0.5, 0.3, 0.2])
        >>> without_replacement_log_prob(probs.log(), torch.tensor([0, 2])).exp()  # .5 * .2/.5
        tensor(0.2000)

    Reference:
        Kool, van Hoof, Welling (2019), *Stochastic Beams and Where to Find Them*, ICML.
    """
    check_logits(logits, dim=-1)
    check_tensor(draws, "draws", floating=False)
    if draws.dtype in (torch.bool,) or draws.is_floating_point() or draws.is_complex():
        raise TypeError(f"draws must be an integer tensor, got dtype {draws.dtype}")
    n_categories = logits.shape[-1]
    if draws.dim() == 0 or not 1 <= draws.shape[-1] <= n_categories:
        raise ValueError(
            f"draws must have shape [..., k] with 1 <= k <= K = {n_categories}, got "
            f"{tuple(draws.shape)}"
        )
    if validating():
        if bool(((draws < 0) | (draws >= n_categories)).any()):
            raise ValueError(f"draws must be indices in [0, {n_categories})")
        sorted_draws = draws.sort(dim=-1).values
        if bool((sorted_draws[..., 1:] == sorted_draws[..., :-1]).any()):
            raise ValueError(
                "draws must not repeat a category within one draw (no replacement)")
    batch = check_broadcast(
        [logits.shape[:-1], draws.shape[:-1]], ["logits", "draws"], "batch shapes")
    k = draws.shape[-1]
    logits = logits.expand(*batch, n_categories)
    draws = draws.long().expand(*batch, k)
    chosen = logits.gather(-1, draws)
    drawn = torch.zeros(logits.shape, dtype=torch.bool, device=logits.device)
    total = torch.zeros(batch, dtype=logits.dtype, device=logits.device)
    for j in range(k):
        log_norm = torch.logsumexp(logits.masked_fill(drawn, float("-inf")), dim=-1)
        step = chosen[..., j] - log_norm
        # a -inf logit drawn when only -inf logits remain would give -inf - (-inf) = NaN
        step = torch.where(torch.isneginf(chosen[..., j]), chosen[..., j], step)
        total = total + step
        drawn = drawn.scatter(-1, draws[..., j : j + 1], True)
    return total
