r"""How good a rationale model is: accuracy, and the selection against the true rationale.

* :func:`precision_recall_f1`: token-level precision, recall and F1 of a selection, pooled over
  texts (micro-average), padding excluded.
* :func:`evaluate_rationales`: test accuracy with the most likely, a sampled or the full mask,
  the selection's precision, recall and F1 against the planted rationale, the fraction of
  tokens kept and the mean keep-probability of planted and other tokens (:data:`METRICS`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lib._validation import check_generator, check_int, type_name
from lib.estimators import StochasticNode
from lib.rationales.data import RationaleData
from lib.rationales.model import Rationalizer

__all__ = ["METRICS", "evaluate_rationales", "precision_recall_f1"]


#: The metrics of :func:`evaluate_rationales`, as recorded in :class:`TrainHistory`.
METRICS = ("accuracy", "precision", "recall", "f1", "kept", "g_planted", "g_other")


def precision_recall_f1(
    selected: Tensor, truth: Tensor, mask: Tensor | None = None
) -> tuple[float, float, float]:
    r"""Token-level precision, recall and F1 of a selection, pooled over all texts.

    With :math:`TP` the number of real tokens both selected and in the true rationale,
    :math:`S` the number selected and :math:`T` the number in the truth, all counted over
    every text together (micro-average; padding excluded):

    .. math:: P = TP / S, \quad R = TP / T, \quad F_1 = 2PR / (P + R),

    where any 0/0 counts as 0 (nothing selected: :math:`P = 0`; empty truth: :math:`R = 0`;
    :math:`P = R = 0`: :math:`F_1 = 0`).

    Args:
        selected: 0/1 or boolean tensor ``[..., L]``: the selection.
        truth: 0/1 or boolean tensor of the same shape: the true rationale.
        mask: optional boolean tensor of the same shape, True on real tokens (None: all).

    Returns:
        ``(precision, recall, f1)`` as floats.

    Example:
        >>> precision_recall_f1(torch.tensor([1, 1, 0, 0]), torch.tensor([1, 0, 1, 0]))
        (0.5, 0.5, 0.5)
    """
    for name, x in (("selected", selected), ("truth", truth), ("mask", mask)):
        if x is not None and not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type_name(x)}")
    if selected.shape != truth.shape or (mask is not None and mask.shape != truth.shape):
        shapes = [tuple(x.shape) for x in (selected, truth, mask) if x is not None]
        raise ValueError(f"selected, truth and mask must have the same shape, got {shapes}")
    selected, truth = selected.bool(), truth.bool()
    if mask is not None:
        selected, truth = selected & mask.bool(), truth & mask.bool()
    tp = int((selected & truth).sum())
    n_selected, n_true = int(selected.sum()), int(truth.sum())
    precision = tp / n_selected if n_selected else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


@torch.no_grad()
def evaluate_rationales(
    model: Rationalizer,
    data: RationaleData,
    *,
    selection: str = "argmax",
    generator: torch.Generator | None = None,
    k: int | None = None,
) -> dict[str, float]:
    r"""Accuracy and rationale quality of ``model`` on ``data``.

    The mask used at test time is, for ``selection``:

    * ``"argmax"``: the most likely mask, :math:`z_i = 1` iff :math:`g_i > 1/2` (deterministic;
      what the book's tables report);
    * ``"sample"``: one mask drawn from the selector (with ``generator``);
    * ``"all"``: every real token (for the ``full_text`` baseline).

    The predicted class is the argmax of the classifier's logits (ties, such as the uniform
    prediction of an empty selection, go to class 0).

    Args:
        model: a :class:`RationaleModel` or any :class:`Rationalizer`.
        data: a :class:`RationaleData`; precision, recall and F1 are NaN when it has no
            ``rationales``.
        selection: ``"argmax"``, ``"sample"`` or ``"all"``.
        generator: ``torch.Generator`` for ``"sample"``, on the CPU or on the model's device.
        k: None for the Bernoulli selector; an int for a selector that keeps exactly k
            tokens (the k-subset law of the keep-logits, ``rationale_loss(..., k=k)``): the
            most likely mask is then the top k keep-logits of each text, ``"sample"`` draws
            from the k-subset law, and ``g_planted``/``g_other`` are its exact marginals.

    Returns:
        A dict with ``accuracy``, ``precision``, ``recall``, ``f1`` (pooled over the texts, see
        :func:`precision_recall_f1`), ``kept`` (fraction of real tokens selected), and
        ``g_planted`` and ``g_other``: the mean keep-probability :math:`g_i` of the true
        rationale's tokens and of the other real tokens (how sure the selector is; NaN
        without ``rationales`` or with ``selection="all"``).

    Example:
        >>> from lib.rationales import RationaleModel, make_synthetic_reviews
        >>> data = make_synthetic_reviews(20, seed=0)
        >>> model = RationaleModel(len(data.vocab), init_keep_prob=0.9)
        >>> evaluate_rationales(model, data)["kept"]
        1.0
    """
    if selection not in ("argmax", "sample", "all"):
        raise ValueError(f"selection must be 'argmax', 'sample' or 'all', got {selection!r}")
    if not isinstance(data, RationaleData):
        raise TypeError(f"data must be a RationaleData, got {type_name(data)}")
    device = next(model.parameters()).device
    check_generator(generator, device=device)
    tokens, mask = data.tokens.to(device), data.mask.to(device)
    valid = mask.to(torch.get_default_dtype())
    if k is not None:
        shortest = int(data.mask.sum(-1).min()) if len(data) else 0
        k = check_int(k, "k", min_value=1, max_value=max(shortest, 1))
    was_training = model.training
    model.eval()
    probs = None
    if selection == "all":
        z = valid
    else:
        logits = model.keep_logits(tokens, mask)
        if k is not None:
            from lib.subsets import KSubsetNode, topk_mask

            node = KSubsetNode(logits, k, mask=mask)
            probs = node.probs().detach().cpu()
            if selection == "argmax":  # the mode of the k-subset law: the top k scores
                z = topk_mask(logits.detach(), k, mask).to(valid.dtype)
            else:
                z = node.sample(1, generator)[0].to(valid.dtype)
        else:
            probs = torch.sigmoid(logits).cpu()
            if selection == "argmax":
                z = (logits > 0).to(valid.dtype) * valid
            else:
                node = StochasticNode("bernoulli", logits, event_dims=1, mask=mask)
                z = node.sample(1, generator)[0].to(valid.dtype)
    predicted = model.classify(tokens, z).argmax(-1).cpu()
    model.train(was_training)
    out = {"accuracy": float((predicted == data.labels).double().mean())}
    if data.rationales is None:
        out.update(precision=math.nan, recall=math.nan, f1=math.nan)
    else:
        p, r, f = precision_recall_f1(z.bool().cpu(), data.rationales, data.mask)
        out.update(precision=p, recall=r, f1=f)
    out["kept"] = float(z.sum() / valid.sum())
    out["g_planted"] = out["g_other"] = math.nan
    if probs is not None and data.rationales is not None:
        planted, other = data.rationales, data.mask & ~data.rationales
        out["g_planted"] = float(probs[planted].mean()) if planted.any() else math.nan
        out["g_other"] = float(probs[other].mean()) if other.any() else math.nan
    return out
