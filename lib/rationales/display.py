r"""Showing what a rationale model does: a results table, learning curves, highlighted text.

* :func:`format_results`: the final test metrics of several runs as a text table.
* :func:`plot_learning_curves`: one test metric against the training step, one line per run,
  in the book's colours.
* :func:`show_rationales`: for chosen texts, the planted rationale (:data:`PLANTED_COLOR`) and
  the model's selection, as coloured HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lib._validation import type_name
from lib.rationales.data import RationaleData
from lib.rationales.metrics import METRICS
from lib.rationales.model import Rationalizer
from lib.rationales.objective import estimator_label
from lib.rationales.training import TrainHistory

__all__ = ["PLANTED_COLOR", "format_results", "plot_learning_curves", "show_rationales"]


_METRIC_LABELS = {"accuracy": "test accuracy", "precision": "test precision",
                  "recall": "test recall", "f1": "test F1", "kept": "fraction of tokens kept",
                  "g_planted": "mean g on planted tokens", "g_other": "mean g on other tokens"}

#: Background of planted (true) rationale tokens in :func:`show_rationales` (Okabe-Ito sky blue).
PLANTED_COLOR = "#56B4E9"

#: Role in :data:`lib.plotting.COLORS` of each training mode's line (others: ``"other"``).
_LINE_COLORS = {"exact": "exact", "reinforce": "reinforce", "reinforce_loo": "reinforce",
                "gumbel_softmax": "relaxed", "st_gumbel_softmax": "straight_through",
                "straight_through": "baseline", "full_text": "other"}


def format_results(histories: Sequence[TrainHistory]) -> str:
    """A text table of the final test metrics of several runs, one row per run.

    Columns: the estimator, test accuracy, rationale precision, recall and F1, the fraction of
    tokens kept, and the training time, last and written as ``12.3 s`` (the book's notebook
    checks ignore such times, which change from run to run).

    Args:
        histories: the :class:`TrainHistory` of each run.

    Returns:
        The table as a string (print it).

    Example:
        >>> import math
        >>> from lib.rationales import TrainHistory
        >>> h = TrainHistory("exact", [0], [math.nan], [dict(accuracy=1.0, precision=1.0,
        ...                  recall=0.5, f1=2 / 3, kept=0.1)], 1.5)
        >>> print(format_results([h]).splitlines()[-1])
        exact (enumeration)           1.000      1.000   0.500  0.667   0.100  1.5 s
    """
    header = (f"{'estimator':<27}{'accuracy':>8}{'precision':>11}{'recall':>8}{'F1':>7}"
              f"{'kept':>8}  time")
    rows = [header, "-" * len(header)]
    for h in histories:
        if not isinstance(h, TrainHistory):
            raise TypeError(f"histories must contain TrainHistory objects, got {type_name(h)}")
        r = h.final
        rows.append(f"{estimator_label(h.estimator):<27}"
                    f"{r['accuracy']:>8.3f}{r['precision']:>11.3f}{r['recall']:>8.3f}"
                    f"{r['f1']:>7.3f}{r['kept']:>8.3f}  {h.seconds:.1f} s")
    return "\n".join(rows)


def plot_learning_curves(ax: Any, histories: Sequence[TrainHistory], metric: str = "f1") -> Any:
    """Draw one test metric against the training step, one line per run, on ``ax``.

    Colours follow the book's palette (:data:`lib.plotting.COLORS`): exact black, REINFORCE
    purple, Gumbel-softmax orange, ST Gumbel-softmax green, plain straight-through vermilion,
    full text (dashed) and any other estimator sky blue.

    Args:
        ax: a matplotlib ``Axes``.
        histories: the :class:`TrainHistory` of each run.
        metric: one of :data:`METRICS` (``g_planted``: mean keep-probability of the planted
            tokens).

    Returns:
        ``ax``.
    """
    from lib.plotting import COLORS

    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    for h in histories:
        color = COLORS[_LINE_COLORS.get(h.estimator, "other")]
        style = "--" if h.estimator == "full_text" else "-"
        ax.plot(h.steps, h.series(metric), style, color=color, marker="o", markersize=2.5,
                label=estimator_label(h.estimator))
    ax.set_xlabel("training step")
    ax.set_ylabel(_METRIC_LABELS[metric])
    return ax


def show_rationales(model: Rationalizer, data: RationaleData, indices: Sequence[int]) -> Any:
    """HTML showing, for each chosen text, the planted rationale and the model's selection.

    For each text: a header with the true and predicted labels, a row ``planted`` (the true
    rationale, when known, in sky blue) and a row ``selected`` (the argmax mask
    :math:`g_i > 1/2`, in orange) with the keep-probability :math:`g_i` as the opacity of a
    blue bar under each token. Drawn with :func:`lib.text.highlight_tokens`.

    Args:
        model: a :class:`RationaleModel` or any :class:`Rationalizer`.
        data: a :class:`RationaleData`.
        indices: which texts to show.

    Returns:
        ``IPython.display.HTML``.
    """
    from IPython.display import HTML

    from lib.text import highlight_tokens

    device = next(model.parameters()).device
    parts = []
    with torch.no_grad():
        for i in indices:
            i = int(i)
            n = int(data.mask[i].sum())
            tokens = data.tokens[i : i + 1, :n].to(device)
            logits = model.keep_logits(tokens, torch.ones_like(tokens, dtype=torch.bool))[0]
            z = (logits > 0).to(torch.get_default_dtype())
            predicted = int(model.classify(tokens, z[None]).argmax(-1))
            truth_label = data.label_names[int(data.labels[i])]
            verdict = "right" if predicted == int(data.labels[i]) else "wrong"
            parts.append(
                '<div style="font-family:sans-serif;font-size:13px;color:#555555;'
                f'margin-top:10px">text {i}: label <b>{truth_label}</b>, predicted '
                f'<b>{data.label_names[predicted]}</b> ({verdict})</div>'
            )
            words = data.words(i)
            if data.rationales is not None:
                parts.append(highlight_tokens(words, data.rationales[i, :n], labels=["planted"],
                                              legend=False, color=PLANTED_COLOR).data)
            parts.append(highlight_tokens(words, z.cpu(), probs=torch.sigmoid(logits).cpu(),
                                          labels=["selected"], legend=False).data)
    return HTML("".join(parts))
