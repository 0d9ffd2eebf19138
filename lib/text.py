r"""Show token-level choices on text: which tokens a rationale mask keeps, and how likely each was.

A rationale model (Lei, Barzilay, Jaakkola 2016) draws one binary variable per token,

.. math:: Z_i \mid x \sim \mathrm{Bernoulli}\big(g_i(x, \phi)\big), \qquad
          Y \mid x \sim \mathrm{Categorical}\big(f(x \odot Z, \theta)\big),

and the classifier only sees the kept tokens. :func:`highlight_tokens` renders a sentence with
its sampled mask(s) as coloured tokens. The output is plain HTML with inline styles (no CSS
classes, no JavaScript), so it looks the same in Jupyter, in Colab and in the static HTML book.

References:
    T. Lei, R. Barzilay, T. Jaakkola (2016), *Rationalizing Neural Predictions*, EMNLP.
    J. Bastings, W. Aziz, I. Titov (2019), *Interpretable Neural Predictions with
    Differentiable Binary Variables*, ACL.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from IPython.display import HTML

from lib._validation import type_name
from lib.plotting import COLORS

__all__ = ["highlight_tokens"]

#: Background of a kept token (Okabe-Ito orange, the book's colour for relaxed/selected things).
KEPT_BACKGROUND = COLORS["relaxed"]
#: Text colour of a dropped token: a grey with a 4.5:1 contrast ratio on white (WCAG AA).
DROPPED_TEXT = "#767676"
#: Colour of the bar under each token whose opacity is the keep probability.
PROB_BAR = COLORS["empirical"]


def _as_array(x: Any, name: str) -> np.ndarray:
    """A list, tuple, NumPy array or tensor as a float64 NumPy array (TypeError otherwise)."""
    if isinstance(x, torch.Tensor):
        if x.dtype.is_complex:
            raise TypeError(f"{name} must be real-valued, got a tensor of dtype {x.dtype}")
        return x.detach().cpu().to(torch.float64).numpy()
    if isinstance(x, (list, tuple, np.ndarray)):
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must contain numbers only (0/1 or True/False for a mask), got {x!r}"
            ) from None
        return arr
    raise TypeError(
        f"{name} must be a list, NumPy array or torch.Tensor, got {type_name(x)}"
    )


def _check_tokens(tokens: Any) -> list[str]:
    if isinstance(tokens, str):
        raise TypeError(
            "tokens must be a sequence of strings, got a single str; split it first, "
            "for example tokens = sentence.split()"
        )
    if not isinstance(tokens, Sequence):
        raise TypeError(f"tokens must be a list or tuple of str, got {type_name(tokens)}")
    if len(tokens) == 0:
        raise ValueError("tokens must contain at least one token, got an empty sequence")
    for i, t in enumerate(tokens):
        if not isinstance(t, str):
            raise TypeError(f"tokens[{i}] must be a str, got {type_name(t)} {t!r}")
    return list(tokens)


def _check_mask(mask: Any, n: int) -> np.ndarray:
    arr = _as_array(mask, "mask")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(
            f"mask must have shape [n_tokens] or [n_samples, n_tokens], got shape "
            f"{tuple(arr.shape)}"
        )
    if arr.shape[1] != n:
        raise ValueError(
            f"mask must have one entry per token: {n} tokens but mask has shape "
            f"{tuple(arr.shape)} (last dimension {arr.shape[1]})"
        )
    if arr.shape[0] == 0:
        raise ValueError("mask must contain at least one sample, got shape (0, n_tokens)")
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        raise ValueError(
            f"mask entries must be 0 or 1 (or False/True), got {arr[i]!r} at index {i}; "
            f"threshold probabilities first, e.g. mask = probs > 0.5, or sample them"
        )
    return arr.astype(bool)


def _check_probs(probs: Any, n: int) -> np.ndarray:
    arr = _as_array(probs, "probs")
    if arr.shape != (n,):
        raise ValueError(
            f"probs must have shape [n_tokens] = ({n},), one keep probability per token, got "
            f"shape {tuple(arr.shape)}"
        )
    if not np.all(np.isfinite(arr)) or np.any((arr < 0) | (arr > 1)):
        i = int(np.argwhere(~(np.isfinite(arr) & (arr >= 0) & (arr <= 1)))[0, 0])
        raise ValueError(
            f"probs must lie in [0, 1], got {arr[i]!r} at index {i}; if these are logits, "
            f"pass torch.sigmoid(logits)"
        )
    return arr


def _check_labels(labels: Any, n_rows: int) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(f"labels must be a list of str (one per mask row), got {type_name(labels)}")
    if len(labels) != n_rows:
        raise ValueError(
            f"labels must have one entry per mask row: {n_rows} row(s) but {len(labels)} labels"
        )
    for i, lab in enumerate(labels):
        if not isinstance(lab, str):
            raise TypeError(f"labels[{i}] must be a str, got {type_name(lab)}")
    return list(labels)


def _token_span(token: str, kept: bool, prob: float | None,
                background: str = KEPT_BACKGROUND) -> str:
    style = [
        "display:inline-block",
        "margin:2px 1px",
        "padding:1px 5px",
        "border-radius:4px",
        "line-height:1.5",
    ]
    if kept:
        style += [f"background-color:{background}", "color:#000000", "font-weight:600"]
    else:
        style += ["background-color:transparent", f"color:{DROPPED_TEXT}"]
    title = "kept (z = 1)" if kept else "dropped (z = 0)"
    if prob is not None:
        # the bar under the token: opacity = keep probability, so a faint bar = rarely kept
        style.append(f"box-shadow:inset 0 -4px 0 {_rgba(PROB_BAR, prob)}")
        title += f", P(keep) = {prob:.2f}"
    return (
        f'<span style="{";".join(style)}" title="{html.escape(title)}">'
        f"{html.escape(token)}</span>"
    )


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha:.3f})"


def highlight_tokens(
    tokens: Sequence[str],
    mask: Any,
    probs: Any = None,
    *,
    labels: Sequence[str] | None = None,
    legend: bool = True,
    color: str | None = None,
) -> HTML:
    r"""Render tokens with a binary mask as coloured HTML: kept tokens highlighted, others grey.

    Each row shows one mask :math:`z \in \{0, 1\}^n` over the same tokens: a token with
    :math:`z_i = 1` (kept, part of the rationale) gets an orange background, a token with
    :math:`z_i = 0` is shown in grey. When ``probs`` is given, a blue bar under each token has
    opacity :math:`P(Z_i = 1)`, and hovering over a token shows its probability.

    Only inline styles are used, so the result renders identically in Jupyter, Colab and the
    static book (no stylesheet or script is needed). Tokens are HTML-escaped.

    Args:
        tokens: sequence of ``n`` strings.
        mask: 0/1 or boolean values of shape ``[n]`` (one mask) or ``[n_samples, n]`` (one row
            per sample); a list, NumPy array or tensor.
        probs: optional keep probabilities :math:`g_i(x, \phi) \in [0, 1]`, shape ``[n]``.
        labels: optional row labels (one str per mask row), e.g. ``["sample 1", ...]``.
        legend: add a one-line legend under the rows.
        color: background of kept tokens as ``"#rrggbb"`` (default ``KEPT_BACKGROUND``,
            orange), e.g. another colour for a ground-truth row.

    Returns:
        ``IPython.display.HTML``; the HTML string is its ``.data`` attribute.

    Raises:
        TypeError: if ``tokens`` is not a sequence of str, or ``mask``/``probs`` are not
            arrays of numbers.
        ValueError: if shapes disagree, a mask entry is not 0/1, or a probability is outside
            [0, 1].

    Example:
        >>> out = highlight_tokens(["a", "great", "film"], [0, 1, 1], probs=[0.1, 0.9, 0.6])
        >>> out.data.count("font-weight:600")  # two kept tokens
        2

    Reference:
        Lei, Barzilay, Jaakkola (2016), *Rationalizing Neural Predictions*, EMNLP.
    """
    tokens = _check_tokens(tokens)
    n = len(tokens)
    rows = _check_mask(mask, n)
    p = None if probs is None else _check_probs(probs, n)
    row_labels = _check_labels(labels, rows.shape[0])
    if not isinstance(legend, bool):
        raise TypeError(f"legend must be a bool, got {type_name(legend)}")
    if color is None:
        color = KEPT_BACKGROUND
    elif not (isinstance(color, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", color)):
        raise ValueError(f"color must be a hex colour such as '#56B4E9', got {color!r}")

    parts = ['<div style="font-family:sans-serif;font-size:15px;margin:6px 0">']
    for r, row in enumerate(rows):
        parts.append('<div style="margin:2px 0">')
        if row_labels is not None:
            parts.append(
                '<span style="display:inline-block;min-width:6.5em;color:#555555;'
                f'font-size:13px">{html.escape(row_labels[r])}</span>'
            )
        parts.append(
            " ".join(
                _token_span(t, bool(k), None if p is None else float(p[i]), color)
                for i, (t, k) in enumerate(zip(tokens, row))
            )
        )
        parts.append("</div>")
    if legend:
        key = (
            f'<span style="background-color:{color};color:#000000;padding:0 4px;'
            f'border-radius:3px">kept</span> token has z = 1; '
            f'<span style="color:{DROPPED_TEXT}">grey</span> token has z = 0'
        )
        if p is not None:
            key += "; the blue bar's opacity is P(z = 1) (hover for the value)"
        parts.append(f'<div style="font-size:12px;color:#555555;margin-top:4px">{key}</div>')
    parts.append("</div>")
    return HTML("".join(parts))

