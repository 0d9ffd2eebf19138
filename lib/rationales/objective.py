r"""The rationale model's objective, and the loss of each estimator of its gradient.

Training minimises the expected cost of Lei et al. (2016),

.. math:: \mathbb{E}_{z \sim g(x,\phi)}\Big[-\log f_y(x \odot z, \theta)
          + \lambda_1 \sum_t z_t + \lambda_2 \sum_{t \ge 2} |z_t - z_{t-1}|\Big]:

the cross-entropy of the classifier on the kept tokens plus the sparsity and coherence
penalties (:func:`rationale_penalty`). The mask is discrete, so the gradient with respect to
the selector's parameters :math:`\phi` needs an estimator: :func:`rationale_loss` gives the
loss whose gradient is the estimate, and :func:`selector_gradients` independent estimates of
the selector's gradient (to measure their bias and spread).

Reference:
    T. Lei, R. Barzilay, T. Jaakkola (2016), *Rationalizing Neural Predictions*, EMNLP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from lib._validation import check_generator, check_int, check_real, type_name
from lib.estimators import StochasticNode, estimator_names, get_estimator_spec, surrogate
from lib.rationales.model import Rationalizer, _selector_parameters

__all__ = [
    "ESTIMATORS",
    "ESTIMATOR_LABELS",
    "MAX_EXACT_LENGTH",
    "RationaleLoss",
    "estimator_label",
    "rationale_loss",
    "rationale_penalty",
    "selector_gradients",
]


#: The book's training modes for :func:`rationale_loss`: five estimators of the selector's
#: gradient, under their names in :mod:`lib.estimators` (Bernoulli, Binary Concrete forms), and
#: ``"full_text"``, a baseline that keeps every token (no selector, no penalties). Any other
#: name registered with :func:`lib.estimators.register_estimator` works as well.
ESTIMATORS = ("exact", "reinforce_loo", "gumbel_softmax", "st_gumbel_softmax",
              "straight_through", "full_text")

#: Names for tables and legends (:func:`estimator_label` falls back on the registry's label).
ESTIMATOR_LABELS = {
    "exact": "exact (enumeration)",
    "reinforce_loo": "REINFORCE + LOO",
    "gumbel_softmax": "Gumbel-softmax",
    "st_gumbel_softmax": "ST Gumbel-softmax",
    "straight_through": "straight-through",
    "full_text": "full text (no selection)",
}

FULL_TEXT = "full_text"

#: Longest text for ``estimator="exact"``: enumeration costs 2**length masks per text.
MAX_EXACT_LENGTH = 12


def rationale_penalty(z: Tensor, mask: Tensor, lambda1: float, lambda2: float) -> Tensor:
    r"""Sparsity and coherence penalties of Lei et al. (2016), per text.

    .. math:: \Omega(z) = \lambda_1 \sum_{t} z_t + \lambda_2 \sum_{t \ge 2} |z_t - z_{t-1}|,

    where the sums run over real tokens only: entries of ``z`` at padding are ignored, and a
    pair ``(t-1, t)`` counts only when both are real tokens. There is no boundary term: a
    selection that starts at the first token pays one switch fewer.

    Args:
        z: masks ``[..., B, L]`` (0/1, or relaxed values in [0, 1]).
        mask: boolean ``[B, L]`` (broadcastable to ``z``), True on real tokens.
        lambda1: weight of the number of kept tokens, >= 0.
        lambda2: weight of the number of switches between kept and dropped, >= 0.

    Returns:
        Tensor ``[..., B]``.

    Example:
        >>> z = torch.tensor([[0.0, 1.0, 1.0, 0.0, 1.0]])
        >>> mask = torch.tensor([[True, True, True, True, False]])
        >>> rationale_penalty(z, mask, 1.0, 10.0)  # 2 kept, 2 switches; padding ignored
        tensor([22.])

    Reference:
        Lei, Barzilay, Jaakkola (2016), *Rationalizing Neural Predictions*, EMNLP, eq. (3).
    """
    if not isinstance(z, Tensor) or not z.is_floating_point():
        raise TypeError(f"z must be a floating-point torch.Tensor, got {type_name(z)}")
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type_name(mask)}")
    lambda1 = check_real(lambda1, "lambda1", ge=0.0)
    lambda2 = check_real(lambda2, "lambda2", ge=0.0)
    valid = mask.to(z.dtype)
    z = z * valid
    pairs = valid[..., 1:] * valid[..., :-1]
    switches = ((z[..., 1:] - z[..., :-1]).abs() * pairs).sum(-1)
    return lambda1 * z.sum(-1) + lambda2 * switches


def _cost(model: Rationalizer, tokens: Tensor, labels: Tensor, z: Tensor, mask: Tensor,
          lambda1: float, lambda2: float) -> tuple[Tensor, Tensor]:
    """(cost, cross-entropy), each ``[..., B]``, for masks ``z`` ``[..., B, L]``."""
    logits = model.classify(tokens, z)
    target = labels.expand(logits.shape[:-1])
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                         reduction="none").reshape(target.shape)
    return ce + rationale_penalty(z, mask, lambda1, lambda2), ce


class RationaleLoss(NamedTuple):
    """What :func:`rationale_loss` returns.

    Attributes:
        loss: scalar to minimise. Its gradient is the estimator's; for score-function
            estimators (``reinforce_loo``) its value is not the cost (it includes the
            REINFORCE surrogate).
        cost: detached scalar: the batch mean of the (estimated) expected cost.
        cross_entropy: detached scalar: the batch mean of the (estimated) expected
            cross-entropy.
        kept: detached scalar: the (estimated) expected fraction of real tokens kept.
    """

    loss: Tensor
    cost: Tensor
    cross_entropy: Tensor
    kept: Tensor


def rationale_loss(
    model: Rationalizer,
    tokens: Tensor,
    mask: Tensor,
    labels: Tensor,
    estimator: str,
    *,
    lambda1: float = 0.02,
    lambda2: float = 0.02,
    tau: float = 0.5,
    n_samples: int = 4,
    generator: torch.Generator | None = None,
    params: Mapping[str, Any] | None = None,
    k: int | None = None,
) -> RationaleLoss:
    r"""The training loss of a batch, with any estimator of :mod:`lib.estimators`' registry.

    Every estimator targets the same objective,
    :math:`\frac1B\sum_b \mathbb{E}_{z\sim g(x_b)}[\mathrm{cost}(z)]` with cost =
    cross-entropy + :func:`rationale_penalty`. The mask of a batch is one stochastic node,
    ``StochasticNode("bernoulli", keep_logits [B, L], event_dims=1, mask=real_tokens)`` (one
    joint sample per text, padding never kept), and the cost maps masks ``[M, B, L]`` to costs
    ``[M, B]``; :func:`lib.estimators.surrogate` turns them into the loss, so that any
    registered name works, including one registered after this module was imported. The
    book's estimators (:data:`ESTIMATORS`), in their Bernoulli (Binary Concrete) forms:

    * ``exact``: every mask of the batch's longest text (:math:`2^L` of them,
      :math:`L \le` :data:`MAX_EXACT_LENGTH`), weighted by its probability (zero for masks
      that keep padding): exact gradients for the selector and the classifier, at a cost that
      doubles with every extra token.
    * ``reinforce_loo``: ``n_samples`` 0/1 masks per text (>= 2). The classifier gets the
      gradient of the mean sampled cost; the selector gets REINFORCE with the leave-one-out
      baseline over the masks of the same text. Unbiased.
    * ``gumbel_softmax``: Binary Concrete masks at temperature ``tau``, with values in (0, 1),
      used everywhere (classifier and penalties). Biased; the classifier learns on soft masks
      but is tested on 0/1 ones.
    * ``st_gumbel_softmax``: the same noise thresholded to exact 0/1 masks in the forward
      pass, the Binary Concrete gradient in the backward pass. Biased.
    * ``straight_through``: exact 0/1 masks forward, the gradient of the keep-probabilities
      :math:`g_i` backward (no noise, no temperature). Biased.
    * ``full_text`` is not an estimator but a baseline: no selection, ``z = mask``,
      cross-entropy only.

    The auxiliary outputs (expected cross-entropy, kept fraction) come from the estimator's
    :attr:`~lib.estimators.Surrogate.weights` over its :attr:`~lib.estimators.Surrogate.samples`
    (the probabilities of every mask for ``exact``, 1/S for S samples), so every estimator
    reports them the same way.

    Args:
        model: a :class:`RationaleModel`, or any module with its ``keep_logits`` and
            ``classify`` methods.
        tokens: LongTensor ``[B, L]``.
        mask: BoolTensor ``[B, L]``, True on real tokens.
        labels: LongTensor ``[B]``.
        estimator: ``"full_text"`` or a name from :func:`lib.estimators.estimator_names`.
        lambda1: sparsity weight (per kept token), >= 0.
        lambda2: coherence weight (per switch), >= 0.
        tau: temperature, for the estimators that take one (``gumbel_softmax``,
            ``st_gumbel_softmax``), > 0; ignored by the others.
        n_samples: masks per text for the sampling estimators (``reinforce_loo`` needs >= 2);
            ignored by ``exact``.
        generator: ``torch.Generator`` for the masks, on the CPU or on the model's device.
        params: further parameters of the estimator (see
            :func:`lib.estimators.estimator_params`), e.g. ``{"baseline": 0.5}`` for
            ``reinforce``.
        k: None (the default): the Bernoulli mask above. An int: the selector keeps
            **exactly k** tokens of every text, drawn from the k-subset law of the
            keep-logits (:class:`lib.subsets.KSubsetNode`, ``1 <= k <=`` the shortest text);
            the estimators are then those of :func:`lib.subsets.subset_surrogate` (the
            registry's names, ``imle`` among them, and ``"simple"``, the registry's
            ``straight_through`` on this node), and ``exact`` enumerates the
            :math:`\binom{L}{k}` subsets.

    Returns:
        A :class:`RationaleLoss`.

    Example:
        >>> from lib.rationales import RationaleModel, make_synthetic_reviews
        >>> data = make_synthetic_reviews(8, seed=0)
        >>> model = RationaleModel(len(data.vocab))
        >>> out = rationale_loss(model, data.tokens, data.mask, data.labels, "exact")
        >>> out.loss.backward()
    """
    estimator = _check_estimator(estimator, subsets=k is not None)
    if not isinstance(tokens, Tensor) or tokens.dtype != torch.long or tokens.dim() != 2:
        raise TypeError("tokens must be a 2-D LongTensor [B, L] of word ids")
    if not isinstance(mask, Tensor) or mask.shape != tokens.shape:
        raise ValueError(f"mask must be a tensor of the shape of tokens {tuple(tokens.shape)}")
    if not isinstance(labels, Tensor) or labels.shape != tokens.shape[:1]:
        raise ValueError(f"labels must be a tensor of shape [{tokens.shape[0]}]")
    lambda1 = check_real(lambda1, "lambda1", ge=0.0)
    lambda2 = check_real(lambda2, "lambda2", ge=0.0)
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    check_generator(generator, like=tokens)
    if params is not None and not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping of parameter names to values or None, got "
                        f"{type_name(params)}")
    mask = mask.bool()
    length = int(mask.sum(-1).max()) if mask.numel() else 0
    if length == 0:
        raise ValueError("the batch has no real token (mask is all False)")
    tokens, mask = tokens[:, :length], mask[:, :length]  # drop the all-padding columns
    valid = mask.to(torch.get_default_dtype())
    n_real = valid.sum()

    if estimator == FULL_TEXT:
        _, ce = _cost(model, tokens, labels, valid, mask, 0.0, 0.0)
        loss = ce.mean()
        return RationaleLoss(loss, loss.detach(), loss.detach(),
                             torch.tensor(1.0, device=loss.device))

    if k is not None:
        k = check_int(k, "k", min_value=1, max_value=length)
    if estimator == "exact" and k is None and length > MAX_EXACT_LENGTH:
        raise ValueError(
            f"estimator='exact' enumerates 2**L masks; the batch's longest text has "
            f"L={length} > MAX_EXACT_LENGTH={MAX_EXACT_LENGTH} tokens: use shorter texts "
            f"or a sampling estimator"
        )
    params = dict(params or {})
    if estimator in estimator_names() and "tau" in get_estimator_spec(estimator).params:
        params.setdefault("tau", tau)
    if k is None:
        node = StochasticNode("bernoulli", model.keep_logits(tokens, mask), event_dims=1,
                              mask=mask)
        entry = surrogate
    else:
        from lib.subsets import KSubsetNode, subset_surrogate

        node = KSubsetNode(model.keep_logits(tokens, mask), k, mask=mask)
        entry = subset_surrogate
    cross_entropies: list[Tensor] = []  # the cross-entropy of each call of the cost

    def cost(z: Tensor) -> Tensor:  # masks [M, B, L] -> costs [M, B]
        total, ce = _cost(model, tokens, labels, z, mask, lambda1, lambda2)
        cross_entropies.append(ce.detach())
        return total

    out = entry(estimator, node, cost, n_samples, generator, **params)
    if len(cross_entropies) == 1 and cross_entropies[0].shape == out.weights.shape:
        ce = cross_entropies[0]  # the cost was evaluated once, at the samples
    else:  # an estimator that evaluates the cost elsewhere too: the cross-entropy at samples
        with torch.no_grad():
            _, ce = _cost(model, tokens, labels, out.samples, mask, 0.0, 0.0)
    kept = (out.weights * (out.samples * valid).sum(-1)).sum() / n_real
    return RationaleLoss(out.loss.mean(), out.cost.mean(), (out.weights * ce).sum(0).mean(),
                         kept)


def _check_estimator(estimator: Any, subsets: bool = False) -> str:
    """``"full_text"`` or a registered estimator's name (looked up now, not at import);
    with ``subsets``, the subset-only names of :data:`lib.subsets.SUBSET_ESTIMATORS` too."""
    if estimator == FULL_TEXT:
        return FULL_TEXT
    if subsets:
        from lib.subsets import SUBSET_ESTIMATORS

        if estimator in SUBSET_ESTIMATORS:
            return estimator
    if not isinstance(estimator, str) or estimator not in estimator_names():
        raise ValueError(f"estimator must be '{FULL_TEXT}' or a registered estimator, one of "
                         f"{', '.join(estimator_names())}; got {estimator!r}")
    return estimator


def estimator_label(estimator: str) -> str:
    """The name of a training mode for tables and legends: :data:`ESTIMATOR_LABELS`, else the
    registry's label (:func:`lib.estimators.register_estimator`), else the name itself.

    Example:
        >>> estimator_label("reinforce_loo"), estimator_label("st_gumbel_softmax")
        ('REINFORCE + LOO', 'ST Gumbel-softmax')
    """
    if estimator in ESTIMATOR_LABELS:
        return ESTIMATOR_LABELS[estimator]
    if isinstance(estimator, str) and estimator in estimator_names():
        return get_estimator_spec(estimator).label
    return str(estimator)


def selector_gradients(
    model: Rationalizer,
    tokens: Tensor,
    mask: Tensor,
    labels: Tensor,
    estimator: str,
    *,
    n_repeats: int = 1,
    generator: torch.Generator | None = None,
    **loss_kwargs: Any,
) -> Tensor:
    r"""Independent estimates of the gradient of the batch's loss w.r.t. the selector's parameters.

    Each repeat calls :func:`rationale_loss` with fresh masks and backpropagates; the
    selector's gradient is flattened into one row. With ``estimator="exact"`` every row is the
    exact gradient of the expected cost. The model's ``.grad`` fields are left untouched.

    Args:
        model: a :class:`RationaleModel` or any :class:`Rationalizer`.
        tokens, mask, labels: one batch, as for :func:`rationale_loss`.
        estimator: a registered estimator, such as those of :data:`ESTIMATORS` (not
            ``full_text``, which has no selector).
        n_repeats: number of independent estimates.
        generator: ``torch.Generator`` for the masks, on the CPU or on the model's device.
        **loss_kwargs: ``lambda1``, ``lambda2``, ``tau``, ``n_samples``, ``params``.

    Returns:
        Tensor ``[n_repeats, P]``, P = number of selector parameters.

    Example:
        >>> from lib.rationales import RationaleModel, make_synthetic_reviews
        >>> data = make_synthetic_reviews(4, seed=0)
        >>> model = RationaleModel(len(data.vocab))
        >>> selector_gradients(model, data.tokens, data.mask, data.labels, "exact").shape[0]
        1
    """
    estimator = _check_estimator(estimator, subsets=loss_kwargs.get("k") is not None)
    if estimator == FULL_TEXT:
        raise ValueError("full_text has no selector gradient")
    n_repeats = check_int(n_repeats, "n_repeats", min_value=1)
    check_generator(generator, like=tokens)
    selector = _selector_parameters(model)
    rows = []
    for _ in range(n_repeats):
        out = rationale_loss(model, tokens, mask, labels, estimator, generator=generator,
                             **loss_kwargs)
        grads = torch.autograd.grad(out.loss, selector, allow_unused=True)
        rows.append(torch.cat([
            (torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(selector, grads)
        ]))
    return torch.stack(rows)
