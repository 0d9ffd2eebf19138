r"""The rationale model with HardKuma gates (Bastings, Aziz, Titov 2019), and its training.

The selector of :class:`HardKumaRationaleModel` gives every token the two shape parameters
:math:`(a_i, b_i)` of a :class:`lib.hardkuma.HardKuma` gate instead of a keep-logit. A mask
:math:`z \in [0, 1]^L` is a reparameterised sample, with exact zeros (the token is gone) and
exact ones; the classifier reads :math:`\sum_i z_i e(x_i)` as in chapter 9. Three things
follow:

* the gradient of the cross-entropy reaches the selector by the pathwise derivative: no
  gradient estimator, no temperature;
* the expected number of kept (non-zero) tokens, :math:`\sum_i P(z_i \ne 0)`, and the
  expected number of switches between zero and non-zero neighbours,
  :math:`\sum_t P(z_t = 0)P(z_{t+1} \ne 0) + P(z_t \ne 0)P(z_{t+1} = 0)`, are closed-form,
  differentiable functions of :math:`(a, b)` (:func:`hardkuma_rationale_terms`);
* the selection rate can be constrained to a target with a Lagrange multiplier
  (:class:`lib.lagrangian.LagrangeMultiplier`) instead of priced with a fixed
  :math:`\lambda_1` (:func:`train_hardkuma_side_by_side`).

The model follows the :class:`lib.rationales.Rationalizer` protocol: ``keep_logits`` is the
logit of :math:`P(z_i \ne 0)`, so :func:`lib.rationales.evaluate_rationales` scores it
unchanged (the most likely mask keeps token i iff :math:`P(z_i \ne 0) > 1/2`; kept tokens
enter the classifier with weight 1).

Reference:
    J. Bastings, W. Aziz, I. Titov (2019), *Interpretable Neural Predictions with
    Differentiable Binary Variables*, ACL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lib import rng
from lib._validation import check_generator, check_int, check_real, type_name
from lib.hardkuma import DEFAULT_SUPPORT, HardKuma, _check_support
from lib.lagrangian import LagrangeMultiplier
from lib.rationales.data import RationaleData
from lib.rationales.model import (
    RationaleModel,
    _check_rationalizer,
    _SideBySide,
    _stacked_training,
)
from lib.training import fit

__all__ = [
    "HardKumaRationaleModel",
    "HardKumaRun",
    "HardKumaTerms",
    "hardkuma_rationale_terms",
    "train_hardkuma_side_by_side",
]

#: Bounds on the shape parameters, as in Bastings et al.'s code (``KumaGate``): extreme
#: values give NaNs.
SHAPE_BOUNDS = (1e-6, 100.0)


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class HardKumaRationaleModel(RationaleModel):
    r""":class:`RationaleModel` whose selector outputs HardKuma parameters per token.

    The selector's convolutions are those of :class:`RationaleModel`; its output layer has
    two units, :math:`a_i = \mathrm{softplus}(u_i)` and :math:`b_i = \mathrm{softplus}(v_i)`
    (clamped to :data:`SHAPE_BOUNDS`). The output layer starts at zero weights and biases
    such that :math:`a = 1` and :math:`P(z_i \ne 0) =` ``init_keep_prob`` for every token.
    The classifier is :class:`RationaleModel`'s.

    Args:
        vocab_size, n_classes, embedding_dim, hidden_dim, kernel_size, pad_index: as for
            :class:`RationaleModel`.
        init_keep_prob: :math:`P(z_i \ne 0)` of every token at initialisation, in (0, 1).
        support: the stretch interval ``(l, r)`` of the gates
            (:data:`lib.hardkuma.DEFAULT_SUPPORT`).

    Example:
        >>> model = HardKumaRationaleModel(vocab_size=10)
        >>> tokens, mask = torch.tensor([[2, 3, 4, 0]]), torch.tensor([[1, 1, 1, 0]]).bool()
        >>> with torch.no_grad():
        ...     gates = model.hardkuma(tokens, mask)
        >>> [round(float(p), 3) for p in gates.expected_l0()[0, :3]]
        [0.5, 0.5, 0.5]
    """

    def __init__(
        self,
        vocab_size: int,
        n_classes: int = 2,
        *,
        embedding_dim: int = 16,
        hidden_dim: int = 32,
        kernel_size: int = 5,
        pad_index: int = 0,
        init_keep_prob: float = 0.5,
        support: tuple[float, float] = DEFAULT_SUPPORT,
    ) -> None:
        super().__init__(vocab_size, n_classes, embedding_dim=embedding_dim,
                         hidden_dim=hidden_dim, kernel_size=kernel_size, pad_index=pad_index,
                         init_keep_prob=init_keep_prob)
        self.support = _check_support(support)
        left, right = self.support
        keep = float(init_keep_prob)
        # a = 1: P(z != 0) = (1 - x0)^b with x0 = -l / (r - l)
        b0 = math.log(keep) / math.log1p(left / (right - left))
        self.selector_out = nn.Linear(hidden_dim, 2)
        with torch.no_grad():
            self.selector_out.weight.zero_()
            bias = self.selector_out.bias
            bias.copy_(torch.tensor([_inverse_softplus(1.0), _inverse_softplus(b0)],
                                    dtype=bias.dtype, device=bias.device))

    def hardkuma(self, tokens: Tensor, mask: Tensor) -> HardKuma:
        """The gates of a batch: a :class:`lib.hardkuma.HardKuma` with ``a``, ``b`` ``[B, L]``.

        Args:
            tokens: LongTensor ``[B, L]``.
            mask: BoolTensor ``[B, L]``, True on real tokens (gates at padding are meaningless).
        """
        raw = self.selector_out(self._selector_hidden(tokens, mask))  # [B, L, 2]
        return _gates(raw, self.support)

    def keep_logits(self, tokens: Tensor, mask: Tensor) -> Tensor:
        r"""The logit of :math:`P(z_i \ne 0)`, ``[B, L]`` (the :class:`Rationalizer` protocol)."""
        return self.hardkuma(tokens, mask).nonzero_logit()


def _gates(raw: Tensor, support: tuple[float, float]) -> HardKuma:
    shapes = F.softplus(raw).clamp(*SHAPE_BOUNDS)
    return HardKuma(shapes[..., 0], shapes[..., 1], support)


class _HardKumaSideBySide(_SideBySide):
    """K :class:`HardKumaRationaleModel` as one module (see ``_SideBySide``)."""

    def __init__(self, models: Sequence[HardKumaRationaleModel]) -> None:
        super().__init__(models)
        self.support = models[0].support

    def hardkuma(self, tokens: Tensor, mask: Tensor) -> HardKuma:
        h = self._selector_hidden(tokens, mask)  # [K, B, H, L]
        raw = (torch.einsum("kbhl,koh->kblo", h, self.p("selector_out.weight"))
               + self.p("selector_out.bias")[:, None, None, :])
        return _gates(raw.reshape(*tokens.shape, 2), self.support)

    def keep_logits(self, tokens: Tensor, mask: Tensor) -> Tensor:
        return self.hardkuma(tokens, mask).nonzero_logit()


class HardKumaTerms(NamedTuple):
    """What :func:`hardkuma_rationale_terms` returns, each ``[B]`` (one value per text).

    Attributes:
        cross_entropy: the cross-entropy of the classifier on sampled masks (the mean over
            the ``n_samples`` masks), differentiable in the selector by reparameterisation.
        l0: the expected number of kept (non-zero) tokens, :math:`\\sum_i P(z_i \\ne 0)`.
        switches: the expected number of switches between zero and non-zero neighbours.
        n_tokens: the number of real tokens.
    """

    cross_entropy: Tensor
    l0: Tensor
    switches: Tensor
    n_tokens: Tensor


def hardkuma_rationale_terms(
    model: HardKumaRationaleModel,
    tokens: Tensor,
    mask: Tensor,
    labels: Tensor,
    *,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> HardKumaTerms:
    r"""The terms of the HardKuma rationale objective for a batch, per text.

    With gates :math:`Z_i \sim \mathrm{HardKuma}(a_i, b_i)` from the selector and
    :math:`p^0_i = P(Z_i = 0)`:

    .. math:: \mathrm{CE} = \frac1S \sum_{s=1}^S -\log f_y(x \odot z^{(s)}), \qquad
              L_0 = \sum_i (1 - p^0_i), \qquad
              \mathrm{switches} = \sum_{t} p^0_t (1 - p^0_{t+1}) + (1 - p^0_t)\, p^0_{t+1},

    sums over real tokens (pairs of real neighbours), :math:`z^{(s)}` reparameterised
    samples (zero on padding). The objective of chapter 9 with a fixed price is
    ``cross_entropy + lambda1 * l0 + lambda2 * switches``; with a constraint on the selection
    rate, see :func:`train_hardkuma_side_by_side`.

    Args:
        model: a :class:`HardKumaRationaleModel` (or any module with its ``hardkuma`` and
            ``classify`` methods).
        tokens: LongTensor ``[B, L]``.
        mask: BoolTensor ``[B, L]``, True on real tokens.
        labels: LongTensor ``[B]``.
        n_samples: masks per text, >= 1.
        generator: ``torch.Generator`` for the masks, on the CPU or on the model's device.

    Returns:
        A :class:`HardKumaTerms` of ``[B]`` tensors.

    Example:
        >>> from lib.rationales import make_synthetic_reviews
        >>> data = make_synthetic_reviews(4, seed=0)
        >>> model = HardKumaRationaleModel(len(data.vocab))
        >>> terms = hardkuma_rationale_terms(model, data.tokens, data.mask, data.labels)
        >>> torch.allclose(terms.l0, 0.5 * terms.n_tokens)
        True
    """
    _check_rationalizer(model)
    if not callable(getattr(model, "hardkuma", None)):
        raise TypeError(f"model must have a hardkuma(tokens, mask) method, such as a "
                        f"HardKumaRationaleModel; got {type_name(model)}")
    if not isinstance(tokens, Tensor) or tokens.dtype != torch.long or tokens.dim() != 2:
        raise TypeError("tokens must be a 2-D LongTensor [B, L] of word ids")
    if not isinstance(mask, Tensor) or mask.shape != tokens.shape:
        raise ValueError(f"mask must be a tensor of the shape of tokens {tuple(tokens.shape)}")
    if not isinstance(labels, Tensor) or labels.shape != tokens.shape[:1]:
        raise ValueError(f"labels must be a tensor of shape [{tokens.shape[0]}]")
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    check_generator(generator, like=tokens)
    mask = mask.bool()
    valid = mask.to(torch.get_default_dtype())
    gates = model.hardkuma(tokens, mask)
    z = gates.rsample(n_samples, generator) * valid  # [S, B, L]
    logits = model.classify(tokens, z)  # [S, B, C]
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                         labels.expand(n_samples, -1).reshape(-1),
                         reduction="none").reshape(n_samples, -1).mean(0)
    kept = gates.expected_l0() * valid  # P(z != 0), zero on padding
    dropped = gates.prob_zero() * valid
    pairs = valid[:, 1:] * valid[:, :-1]
    switches = ((dropped[:, :-1] * kept[:, 1:] + kept[:, :-1] * dropped[:, 1:]) * pairs).sum(-1)
    return HardKumaTerms(ce, kept.sum(-1), switches, valid.sum(-1))


def _per_model(value: object, name: str, k: int) -> list:
    """``[value]`` for a number, ``list(value)`` for a sequence of length ``k``."""
    if isinstance(value, (list, tuple)):
        if len(value) != k:
            raise ValueError(f"{name} has {len(value)} entries for {k} models; give one "
                             f"value, or one per model")
        return list(value)
    return [value]


@dataclass
class HardKumaRun:
    """What :func:`train_hardkuma_side_by_side` records, per step and model.

    Attributes:
        rate: ``[n_steps, K]``: each model's expected selection rate on its minibatch
            (expected kept tokens over real tokens), before the step.
        multiplier: ``[n_steps, K]``: the Lagrange multiplier after each step's update (NaN
            for a fixed ``lambda1``).
        cross_entropy: ``[n_steps, K]``: each model's mean cross-entropy on its minibatch.
    """

    rate: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    multiplier: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    cross_entropy: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))


def train_hardkuma_side_by_side(
    models: Sequence[HardKumaRationaleModel],
    train: RationaleData,
    *,
    target_rate: float | Sequence[float] | None = None,
    lambda1: float | Sequence[float] = 0.02,
    lambda2: float = 0.02,
    n_steps: int = 150,
    batch_size: int = 16,
    lr: float = 1e-2,
    selector_lr: float | None = 2e-3,
    lagrange_lr: float = 0.1,
    smoothing: float = 0.9,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> HardKumaRun:
    r"""Train K HardKuma rationale models at once, with a fixed price or a target rate.

    Each step draws ``batch_size`` training texts per model (with replacement, from
    ``generator``), computes :func:`hardkuma_rationale_terms` for all of them in one call (the
    models' weights stacked) and takes one Adam step (``lr`` for the classifiers,
    ``selector_lr`` for the selectors) through :func:`lib.training.fit`, which rounds the
    weights to its grid. Model k minimises, on its own minibatch :math:`\mathcal{B}_k`:

    * ``target_rate=None``: the fixed-price objective of chapter 9 with closed-form
      penalties, :math:`\overline{\mathrm{CE}} + \lambda_1 \overline{L_0} + \lambda_2
      \overline{\mathrm{switches}}` (bars: means over the texts);
    * ``target_rate=r``: :math:`\overline{\mathrm{CE}} + \lambda_2
      \overline{\mathrm{switches}} + \mu_k\,(\rho_k - r)`, with :math:`\rho_k` the expected
      selection rate of the minibatch (expected kept tokens over real tokens) and
      :math:`\mu_k \ge 0` the model's own :class:`lib.lagrangian.LagrangeMultiplier`
      (``lagrange_lr``, ``smoothing``, starting at 0). ``lambda1`` is then unused.

    Args:
        models: :class:`HardKumaRationaleModel` objects of the same shape (trained in place).
        train: training :class:`RationaleData`.
        target_rate: the selection rate to constrain to, in (0, 1), or None; a sequence
            gives model k the target ``target_rate[k]`` (one call for a sweep).
        lambda1: price per expected kept token (fixed-price mode), >= 0; a sequence gives
            model k the price ``lambda1[k]``.
        lambda2: price per expected switch, >= 0 (both modes).
        n_steps, batch_size, lr, selector_lr: as for :func:`lib.rationales.train_side_by_side`.
        lagrange_lr: the multiplier's ascent step (target mode).
        smoothing: the moving average's weight of the past (target mode).
        n_samples: masks per text per step.
        generator: ``torch.Generator`` for the minibatches and the masks.

    Returns:
        A :class:`HardKumaRun`.

    Example:
        >>> from lib.rationales import make_synthetic_reviews
        >>> data = make_synthetic_reviews(64, seed=0)
        >>> models = [HardKumaRationaleModel(len(data.vocab)) for _ in range(2)]
        >>> run = train_hardkuma_side_by_side(models, data, target_rate=0.2, n_steps=3)
        >>> run.rate.shape, bool((run.multiplier >= 0).all())
        ((3, 2), True)
    """
    models = list(models)
    if not models or not all(isinstance(m, HardKumaRationaleModel) for m in models):
        raise TypeError("models must be a non-empty sequence of HardKumaRationaleModel")
    shapes = [[tuple(p.shape) for p in m.parameters()] for m in models]
    if any(s != shapes[0] for s in shapes) or any(m.support != models[0].support
                                                  for m in models):
        raise ValueError("the models must all have the same shape and support (same "
                         "constructor arguments)")
    if not isinstance(train, RationaleData):
        raise TypeError(f"train must be a RationaleData, got {type_name(train)}")
    k = len(models)
    if target_rate is not None:
        targets = _per_model(target_rate, "target_rate", k)
        for i, r in enumerate(targets):
            r = check_real(r, f"target_rate[{i}]" if len(targets) > 1 else "target_rate",
                           gt=0.0)
            if r >= 1:
                raise ValueError(f"target_rate must be in (0, 1), got {r}")
    lambdas = [check_real(x, "lambda1", ge=0.0) for x in _per_model(lambda1, "lambda1", k)]
    lambda2 = check_real(lambda2, "lambda2", ge=0.0)
    stack, optimizer, device, n_steps, batch_size = _stacked_training(
        _HardKumaSideBySide, models, n_steps=n_steps, batch_size=batch_size, lr=lr,
        selector_lr=selector_lr, generator=generator)
    lagrange = None
    if target_rate is not None:
        lagrange = LagrangeMultiplier(list(targets) if len(targets) > 1 else targets[0],
                                      lr=lagrange_lr, smoothing=smoothing, shape=(k,),
                                      device=device)
    price = torch.tensor(lambdas, device=device)  # [K] or [1]
    tokens, mask, labels = train.tokens.to(device), train.mask.to(device), train.labels.to(device)
    rates, multipliers, ces = [], [], []

    def loss(step: int) -> Tensor:
        index = rng.randint(len(train), (k * batch_size,), generator=generator, device=device)
        terms = hardkuma_rationale_terms(stack, tokens[index], mask[index], labels[index],
                                         n_samples=n_samples, generator=generator)
        per_model = [x.reshape(k, batch_size) for x in terms]
        ce, l0, switches, n_tokens = per_model
        rate = l0.sum(1) / n_tokens.sum(1)  # [K]
        total = ce.mean(1) + lambda2 * switches.mean(1)
        if lagrange is None:
            total = total + price * l0.mean(1)
            multipliers.append(np.full(k, np.nan))
        else:
            total = total + lagrange.update(rate)
            multipliers.append(lagrange.multiplier.cpu().numpy().copy())
        rates.append(rate.detach().cpu().numpy())
        ces.append(ce.detach().mean(1).cpu().numpy())
        return total.sum()  # the sum of the K models' own objectives

    fit(optimizer, loss, n_steps, progress=False)
    stack.write_back(models)
    return HardKumaRun(np.array(rates), np.array(multipliers), np.array(ces))
