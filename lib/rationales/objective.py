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

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from lib import rng
from lib._validation import check_generator, check_int, check_real, check_tau, type_name
from lib.estimators import enumerate_binary, leave_one_out_baseline, reinforce_surrogate
from lib.rationales.model import RationaleModel, _selector_parameters
from lib.relaxed import relaxed_bernoulli

__all__ = [
    "ESTIMATORS",
    "ESTIMATOR_LABELS",
    "MAX_EXACT_LENGTH",
    "RationaleLoss",
    "rationale_loss",
    "rationale_penalty",
    "selector_gradients",
]


#: The training modes of :func:`rationale_loss`: four estimators of the selector's gradient,
#: and ``"full_text"``, a baseline that keeps every token (no selector, no penalties).
ESTIMATORS = ("exact", "reinforce", "relaxed", "straight_through", "full_text")

#: Names for tables and legends.
ESTIMATOR_LABELS = {
    "exact": "exact (enumeration)",
    "reinforce": "REINFORCE + LOO",
    "relaxed": "relaxed (Binary Concrete)",
    "straight_through": "straight-through",
    "full_text": "full text (no selection)",
}

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


def _cost(model: RationaleModel, tokens: Tensor, labels: Tensor, z: Tensor, mask: Tensor,
          lambda1: float, lambda2: float) -> tuple[Tensor, Tensor]:
    """(cost, cross-entropy), each ``[..., B]``, for masks ``z`` ``[..., B, L]``."""
    logits = model.classify(tokens, z)
    target = labels.expand(logits.shape[:-1])
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                         reduction="none").reshape(target.shape)
    return ce + rationale_penalty(z, mask, lambda1, lambda2), ce


def _bernoulli_log_prob(logits: Tensor, z: Tensor, valid: Tensor) -> Tensor:
    """log p(z) = sum over real tokens of z log g + (1 - z) log(1 - g), shape ``[..., B]``."""
    per_token = z * F.logsigmoid(logits) + (1 - z) * F.logsigmoid(-logits)
    return (per_token * valid).sum(-1)


class RationaleLoss(NamedTuple):
    """What :func:`rationale_loss` returns.

    Attributes:
        loss: scalar to minimise. Its gradient is the estimator's; for ``reinforce`` its
            value is not the cost (it includes the REINFORCE surrogate).
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
    model: RationaleModel,
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
) -> RationaleLoss:
    r"""The training loss of a batch for one of :data:`ESTIMATORS`.

    Every estimator targets the same objective,
    :math:`\frac1B\sum_b \mathbb{E}_{z\sim g(x_b)}[\mathrm{cost}(z)]` with cost =
    cross-entropy + :func:`rationale_penalty`; they differ in the gradient:

    * ``exact``: enumerate all :math:`2^L` masks of the batch's longest text
      (:math:`L \le` :data:`MAX_EXACT_LENGTH`), weight each by its probability (zero for masks
      that keep padding) and differentiate the exact expectation: exact gradients for the
      selector and the classifier, at a cost that doubles with every extra token.
    * ``reinforce``: ``n_samples`` masks per text (>= 2). The classifier gets the gradient of
      the mean sampled cost; the selector gets REINFORCE
      (:func:`lib.estimators.reinforce_surrogate`) with the leave-one-out baseline over the
      masks of the same text (:func:`lib.estimators.leave_one_out_baseline`). Unbiased.
    * ``relaxed``: Binary Concrete masks (:func:`lib.relaxed.relaxed_bernoulli` at
      temperature ``tau``) with values in (0, 1), used everywhere (classifier and penalties).
      Biased; the classifier learns on soft masks but is tested on 0/1 ones.
    * ``straight_through``: the same noise thresholded to exact 0/1 masks in the forward
      pass, the Binary Concrete gradient in the backward pass (``hard=True``). Biased.
    * ``full_text``: no selection, ``z = mask``; cross-entropy only (a baseline).

    Args:
        model: a :class:`RationaleModel`.
        tokens: LongTensor ``[B, L]``.
        mask: BoolTensor ``[B, L]``, True on real tokens.
        labels: LongTensor ``[B]``.
        estimator: one of :data:`ESTIMATORS`.
        lambda1: sparsity weight (per kept token), >= 0.
        lambda2: coherence weight (per switch), >= 0.
        tau: temperature of ``relaxed`` and ``straight_through``, > 0.
        n_samples: masks per text for ``reinforce`` (>= 2), ``relaxed`` and
            ``straight_through``.
        generator: ``torch.Generator`` for the masks, on the CPU or on the model's device.

    Returns:
        A :class:`RationaleLoss`.

    Example:
        >>> from lib.rationales import RationaleModel, make_synthetic_reviews
        >>> data = make_synthetic_reviews(8, seed=0)
        >>> model = RationaleModel(len(data.vocab))
        >>> out = rationale_loss(model, data.tokens, data.mask, data.labels, "exact")
        >>> out.loss.backward()
    """
    estimator = _check_estimator(estimator)
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
    mask = mask.bool()
    length = int(mask.sum(-1).max()) if mask.numel() else 0
    if length == 0:
        raise ValueError("the batch has no real token (mask is all False)")
    tokens, mask = tokens[:, :length], mask[:, :length]  # drop the all-padding columns
    valid = mask.to(torch.get_default_dtype())
    n_real = valid.sum()

    if estimator == "full_text":
        _, ce = _cost(model, tokens, labels, valid, mask, 0.0, 0.0)
        loss = ce.mean()
        return RationaleLoss(loss, loss.detach(), loss.detach(),
                             torch.tensor(1.0, device=loss.device))

    logits = model.keep_logits(tokens, mask)
    if estimator == "exact":
        if length > MAX_EXACT_LENGTH:
            raise ValueError(
                f"estimator='exact' enumerates 2**L masks; the batch's longest text has "
                f"L={length} > MAX_EXACT_LENGTH={MAX_EXACT_LENGTH} tokens: use shorter texts "
                f"or a sampling estimator"
            )
        configs = enumerate_binary(length, dtype=logits.dtype, device=logits.device)  # [C, L]
        z = configs.unsqueeze(1) * valid  # [C, B, L]
        log_p = _bernoulli_log_prob(logits, z, valid)  # [C, B]
        keeps_padding = (configs.unsqueeze(1) * (1 - valid)).sum(-1) > 0  # [C, B]
        weights = log_p.masked_fill(keeps_padding, -math.inf).exp()  # sums to 1 over C
        cost, ce = _cost(model, tokens, labels, z, mask, lambda1, lambda2)
        expected = (weights * cost).sum(0)
        kept = (torch.sigmoid(logits.detach()) * valid).sum() / n_real
        return RationaleLoss(expected.mean(), expected.mean().detach(),
                             (weights * ce).sum(0).mean().detach(), kept)

    shape = (n_samples, *logits.shape)
    if estimator == "reinforce":
        if n_samples < 2:
            raise ValueError("estimator='reinforce' needs n_samples >= 2 for the "
                             "leave-one-out baseline")
        u = rng.rand(shape, generator=generator, dtype=logits.dtype, device=logits.device)
        z = (u < torch.sigmoid(logits.detach())).to(logits.dtype) * valid
        cost, ce = _cost(model, tokens, labels, z, mask, lambda1, lambda2)  # [S, B]
        log_p = _bernoulli_log_prob(logits, z, valid)
        surrogate = reinforce_surrogate(log_p, cost, leave_one_out_baseline(cost))
        loss = cost.mean() + surrogate  # classifier: sampled cost; selector: REINFORCE
    else:
        tau = check_tau(tau)
        z = relaxed_bernoulli(logits.expand(shape), tau, hard=estimator == "straight_through",
                              generator=generator) * valid
        cost, ce = _cost(model, tokens, labels, z, mask, lambda1, lambda2)
        loss = cost.mean()
    kept = (z.detach() * valid).sum((-2, -1)).mean() / n_real
    return RationaleLoss(loss, cost.mean().detach(), ce.mean().detach(), kept)


def _check_estimator(estimator: Any) -> str:
    if not isinstance(estimator, str) or estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    return estimator


def selector_gradients(
    model: RationaleModel,
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
        model: a :class:`RationaleModel`.
        tokens, mask, labels: one batch, as for :func:`rationale_loss`.
        estimator: ``exact``, ``reinforce``, ``relaxed`` or ``straight_through``.
        n_repeats: number of independent estimates.
        generator: ``torch.Generator`` for the masks, on the CPU or on the model's device.
        **loss_kwargs: ``lambda1``, ``lambda2``, ``tau``, ``n_samples``.

    Returns:
        Tensor ``[n_repeats, P]``, P = number of selector parameters.

    Example:
        >>> from lib.rationales import RationaleModel, make_synthetic_reviews
        >>> data = make_synthetic_reviews(4, seed=0)
        >>> model = RationaleModel(len(data.vocab))
        >>> selector_gradients(model, data.tokens, data.mask, data.labels, "exact").shape[0]
        1
    """
    estimator = _check_estimator(estimator)
    if estimator == "full_text":
        raise ValueError("full_text has no selector gradient")
    n_repeats = check_int(n_repeats, "n_repeats", min_value=1)
    check_generator(generator, like=tokens)
    params = _selector_parameters(model)
    rows = []
    for _ in range(n_repeats):
        out = rationale_loss(model, tokens, mask, labels, estimator, generator=generator,
                             **loss_kwargs)
        grads = torch.autograd.grad(out.loss, params, allow_unused=True)
        rows.append(torch.cat([
            (torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads)
        ]))
    return torch.stack(rows)
