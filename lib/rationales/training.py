r"""Training the rationale model: one run with a history, or many seeds side by side.

* :func:`train_rationale_model`: Adam on random minibatches with one estimator, the test set
  evaluated every few steps (:class:`TrainHistory`), a progress bar whose text is the same on
  every run.
* :func:`train_side_by_side`: K models of the same shape trained at once, each on its own
  minibatches and masks (spreads over seeds for little more than the cost of one run).

Both round the weights to :func:`lib.training.snap_`'s grid after every step, so that a run in
float64 gives the same weights on every CPU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lib import rng
from lib._validation import check_bool, check_generator, check_int, check_real, type_name
from lib.rationales.data import RationaleData
from lib.rationales.metrics import evaluate_rationales
from lib.rationales.model import (
    RationaleModel,
    Rationalizer,
    _check_rationalizer,
    _selector_parameters,
    _SideBySide,
    _stacked_training,
)
from lib.rationales.objective import _check_estimator, rationale_loss
from lib.training import fit, snap_

__all__ = ["TrainHistory", "train_rationale_model", "train_side_by_side"]


@dataclass
class TrainHistory:
    """What :func:`train_rationale_model` records.

    Attributes:
        estimator: the estimator's name.
        steps: the steps at which the test set was evaluated (0 = before training).
        train_cost: per evaluation, the mean of the (estimated) expected training cost over
            the steps since the previous evaluation (NaN at step 0).
        test: per evaluation, the dict of :func:`evaluate_rationales`.
        seconds: wall-clock seconds spent in optimisation steps (evaluations excluded).
    """

    estimator: str
    steps: list[int] = field(default_factory=list)
    train_cost: list[float] = field(default_factory=list)
    test: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def series(self, key: str) -> np.ndarray:
        """One test metric (a key of :func:`evaluate_rationales`) at every evaluation."""
        return np.array([t[key] for t in self.test])

    @property
    def final(self) -> dict[str, float]:
        """The last evaluation."""
        return self.test[-1]


def train_rationale_model(
    model: Rationalizer,
    train: RationaleData,
    test: RationaleData,
    estimator: str,
    *,
    n_steps: int = 150,
    batch_size: int = 32,
    lr: float = 1e-2,
    selector_lr: float | None = 2e-3,
    lambda1: float = 0.02,
    lambda2: float = 0.02,
    tau: float = 0.5,
    n_samples: int = 4,
    params: Mapping[str, Any] | None = None,
    eval_every: int = 10,
    generator: torch.Generator | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> TrainHistory:
    r"""Train ``model`` with Adam and ``estimator`` on random minibatches; evaluate on ``test``.

    Each step draws ``batch_size`` training texts uniformly with replacement (from
    ``generator``), computes :func:`rationale_loss` and takes one Adam step: learning rate
    ``lr`` for the classifier, ``selector_lr`` for the selector. A selector that learns faster
    than the classifier tends to drop every token before the classifier has learned what the
    words mean (an empty selection is the cheapest once the penalties dominate), hence the
    smaller default. Before training and every ``eval_every`` steps,
    :func:`evaluate_rationales` runs on ``test`` with the argmax mask (``"all"`` for
    ``full_text``).

    The progress bar (tqdm, on stdout) shows the description, the percentage, the bar, the
    step count and the latest test accuracy and F1; it is refreshed only at evaluations and
    prints no rate or time, so its text is the same on every run.

    Args:
        model: the model to train (in place): a :class:`RationaleModel` or any module with
            the :class:`Rationalizer` methods.
        train: training :class:`RationaleData`.
        test: evaluation :class:`RationaleData` (same vocabulary).
        estimator: ``"full_text"`` or a registered estimator (:data:`ESTIMATORS` lists the
            book's; any name of :func:`lib.estimators.estimator_names` works).
        n_steps: optimisation steps.
        batch_size: texts per step.
        lr: Adam's learning rate for the classifier (and the selector if ``selector_lr`` is
            None).
        selector_lr: Adam's learning rate for the selector.
        lambda1, lambda2: the penalties' weights (:func:`rationale_penalty`).
        tau: temperature of the estimators that take one (``gumbel_softmax``,
            ``st_gumbel_softmax``).
        n_samples: masks per text per step (see :func:`rationale_loss`).
        params: further parameters of the estimator (see :func:`rationale_loss`).
        eval_every: steps between evaluations (the last step is always evaluated).
        generator: ``torch.Generator`` for the minibatches and the masks, on the CPU or on the
            model's device (a CPU generator gives the same minibatches and masks on every
            device, see :mod:`lib.rng`).
        progress: show the progress bar.
        desc: label of the progress bar (default: the estimator's name).

    Returns:
        A :class:`TrainHistory`.

    Example:
        >>> from lib.rationales import RationaleModel, make_synthetic_reviews
        >>> data = make_synthetic_reviews(64, seed=0)
        >>> model = RationaleModel(len(data.vocab))
        >>> h = train_rationale_model(model, data, data, "straight_through", n_steps=2,
        ...                           eval_every=1, progress=False)
        >>> h.steps
        [0, 1, 2]
    """
    estimator = _check_estimator(estimator)
    _check_rationalizer(model)
    for name, d in (("train", train), ("test", test)):
        if not isinstance(d, RationaleData):
            raise TypeError(f"{name} must be a RationaleData, got {type_name(d)}")
    n_steps = check_int(n_steps, "n_steps", min_value=1)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    lr = check_real(lr, "lr", gt=0.0)
    selector_lr = lr if selector_lr is None else check_real(selector_lr, "selector_lr", gt=0.0)
    eval_every = check_int(eval_every, "eval_every", min_value=1)
    check_bool(progress, "progress")
    selection = "all" if estimator == "full_text" else "argmax"
    device = next(model.parameters()).device
    check_generator(generator, device=device)
    selector = _selector_parameters(model)
    classifier = [p for n, p in model.named_parameters() if not n.startswith("selector")]
    optimizer = torch.optim.Adam([{"params": selector, "lr": selector_lr},
                                  {"params": classifier, "lr": lr}])
    history = TrainHistory(estimator)
    tokens, mask, labels = train.tokens.to(device), train.mask.to(device), train.labels.to(device)
    costs: list[float] = []

    def loss(step: int) -> Tensor:
        index = rng.randint(len(train), (batch_size,), generator=generator, device=device)
        out = rationale_loss(model, tokens[index], mask[index], labels[index], estimator,
                             lambda1=lambda1, lambda2=lambda2, tau=tau, n_samples=n_samples,
                             params=params, generator=generator)
        costs.append(float(out.cost))
        return out.loss

    def evaluate(step: int) -> str:
        history.steps.append(step)
        history.train_cost.append(float(np.mean(costs)) if costs else math.nan)
        history.test.append(evaluate_rationales(model, test, selection=selection))
        costs.clear()
        last = history.final
        f1 = "" if math.isnan(last["f1"]) else f", F1 {last['f1']:.2f}"
        return f"test acc {last['accuracy']:.3f}{f1}"

    history.seconds = fit(
        optimizer, loss, n_steps, evaluate=evaluate, eval_at=lambda step: step % eval_every == 0,
        progress=progress, desc=desc or estimator, advance="evaluation",
    ).seconds
    return history


def train_side_by_side(
    models: Sequence[RationaleModel],
    train: RationaleData,
    estimator: str,
    *,
    n_steps: int = 150,
    batch_size: int = 32,
    lr: float = 1e-2,
    selector_lr: float | None = 2e-3,
    lambda1: float = 0.02,
    lambda2: float = 0.02,
    tau: float = 0.5,
    n_samples: int = 4,
    params: Mapping[str, Any] | None = None,
    generator: torch.Generator | None = None,
    k: int | None = None,
) -> None:
    r"""Train several models of the same shape at once, each on its own minibatches and masks.

    The same training as :func:`train_rationale_model` (Adam with ``lr`` for the classifier
    and ``selector_lr`` for the selector, the weight grid of :func:`lib.training.snap_` after
    every step), for ``len(models)`` independent runs that share every tensor operation: the
    models' weights are stacked, each step draws ``batch_size`` texts per model (with
    replacement, from ``generator``) and calls :func:`rationale_loss` once on all of them.
    Adam acts on each weight separately, so model ``k`` follows its own run; the random draws
    differ from those of :func:`train_rationale_model` with the same seed. Many seeds cost
    little more than one, which makes spreads over seeds affordable. No evaluation is done
    during training (use :func:`evaluate_rationales` afterwards); the models are updated in
    place.

    Args:
        models: :class:`RationaleModel` objects of the same shape (for example one per seed).
        train: training :class:`RationaleData`.
        estimator: ``"full_text"`` or a registered estimator, as for
            :func:`train_rationale_model`.
        n_steps, batch_size, lr, selector_lr, lambda1, lambda2, tau, n_samples, params: as
            for :func:`train_rationale_model`.
        generator: ``torch.Generator`` for the minibatches and the masks.
        k: None for the Bernoulli selector, or an int: every model keeps exactly k tokens
            per text (``rationale_loss(..., k=k)``; evaluate with
            ``evaluate_rationales(..., k=k)``).

    Example:
        >>> from lib.rationales import RationaleModel, make_synthetic_reviews
        >>> data = make_synthetic_reviews(64, seed=0)
        >>> models = [RationaleModel(len(data.vocab)) for _ in range(3)]
        >>> train_side_by_side(models, data, "straight_through", n_steps=2)
        >>> len({str(m.selector_out.weight.tolist()) for m in models})  # three runs, three results
        3
    """
    estimator = _check_estimator(estimator)
    models = list(models)
    if not models or not all(isinstance(m, RationaleModel) for m in models):
        raise TypeError("models must be a non-empty sequence of RationaleModel")
    if any(m.selector_out.out_features != 1 for m in models):
        raise TypeError("models must have one keep-logit per token; train "
                        "HardKumaRationaleModel with train_hardkuma_side_by_side")
    shapes = [[tuple(p.shape) for p in m.parameters()] for m in models]
    if any(s != shapes[0] for s in shapes):
        raise ValueError("the models must all have the same shape (same constructor arguments)")
    if not isinstance(train, RationaleData):
        raise TypeError(f"train must be a RationaleData, got {type_name(train)}")
    stack, optimizer, device, n_steps, batch_size = _stacked_training(
        _SideBySide, models, n_steps=n_steps, batch_size=batch_size, lr=lr,
        selector_lr=selector_lr, generator=generator)
    tokens, mask, labels = train.tokens.to(device), train.mask.to(device), train.labels.to(device)
    n_models = len(models)
    for _ in range(n_steps):
        index = rng.randint(len(train), (n_models * batch_size,), generator=generator,
                            device=device)
        out = rationale_loss(stack, tokens[index], mask[index], labels[index], estimator,
                             lambda1=lambda1, lambda2=lambda2, tau=tau, n_samples=n_samples,
                             params=params, generator=generator, k=k)
        optimizer.zero_grad(set_to_none=True)
        (n_models * out.loss).backward()  # the sum of the models' own losses
        optimizer.step()
        snap_(stack.parameters())  # the same weights on every CPU (lib.training)
    stack.write_back(models)
