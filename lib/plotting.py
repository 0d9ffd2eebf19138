"""The book's figure style and small plot helpers (each takes an ``ax`` so figures compose)."""

from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["use_book_style", "bar_compare", "COLORS", "simplex_scatter"]

#: Colour-blind-safe palette (Okabe-Ito), used for the same roles throughout the book.
COLORS = {
    "exact": "#000000",
    "empirical": "#0072B2",
    "relaxed": "#E69F00",
    "straight_through": "#009E73",
    "reinforce": "#CC79A7",
    "baseline": "#D55E00",
    "other": "#56B4E9",
    "rao_blackwellised": "#882255",
    "second_order": "#999933",
}


def use_book_style() -> None:
    """Set the book's matplotlib defaults (size, grid, fonts); call once per notebook."""
    plt.rcParams.update({
        "figure.figsize": (6.4, 3.6),
        "figure.dpi": 100,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
        "font.size": 10,
        "svg.hashsalt": "book",  # stable SVG ids
    })


def bar_compare(ax: plt.Axes, exact: Sequence[float], empirical: Sequence[float], *,
                labels: Optional[Sequence[str]] = None, exact_label: str = "exact",
                empirical_label: str = "empirical") -> plt.Axes:
    """Side-by-side bars: an exact distribution and an empirical one over the same categories.

    Args:
        ax: the axes to draw on.
        exact: probabilities, shape ``[K]``.
        empirical: frequencies, shape ``[K]``.
        labels: category names (default ``0..K-1``).
    """
    exact = np.asarray(exact, dtype=float)
    empirical = np.asarray(empirical, dtype=float)
    if exact.shape != empirical.shape or exact.ndim != 1:
        raise ValueError(f"exact and empirical must be 1-D of the same length; got shapes "
                         f"{exact.shape} and {empirical.shape}")
    k = np.arange(exact.size)
    ax.bar(k - 0.2, exact, width=0.4, color=COLORS["exact"], label=exact_label)
    ax.bar(k + 0.2, empirical, width=0.4, color=COLORS["empirical"], label=empirical_label)
    ax.set_xticks(k)
    ax.set_xticklabels(labels if labels is not None else [str(i) for i in k])
    ax.set_xlabel("category")
    ax.set_ylabel("probability")
    ax.legend()
    return ax


#: Corners of the equilateral triangle used by :func:`simplex_scatter` (category 0, 1, 2).
SIMPLEX_CORNERS = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])


def simplex_scatter(ax: plt.Axes, points, *, labels: Optional[Sequence[str]] = None,
                    color: Optional[str] = None, size: float = 4.0, alpha: float = 0.4,
                    label: Optional[str] = None, marker: str = "o") -> plt.Axes:
    """Scatter points of the 3-category simplex in a triangle (a ternary plot).

    A point :math:`y = (y_0, y_1, y_2)` with :math:`y_k \\ge 0`, :math:`\\sum_k y_k = 1` is drawn
    at :math:`\\sum_k y_k c_k`, where :math:`c_k` are the corners of an equilateral triangle
    (``SIMPLEX_CORNERS``): a one-hot vector sits on corner :math:`k`, the uniform vector at the
    centre, and the distance to the edge opposite corner :math:`k` is proportional to
    :math:`y_k`. Draws the triangle and labels its corners; calling it again on the same ``ax``
    adds points only.

    Args:
        ax: the axes to draw on.
        points: array or tensor ``[N, 3]`` of points of the simplex (rows summing to 1).
        labels: names of the three corners (default ``"category 0"``, ...).
        color: marker colour (default ``COLORS["relaxed"]``).
        size: marker size (points squared).
        alpha: marker opacity.
        label: legend label of the points.
        marker: matplotlib marker.

    Returns:
        ``ax``.
    """
    if hasattr(points, "detach"):
        points = points.detach().cpu().double().numpy()
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must have shape [N, 3] (points of the 3-category simplex), "
                         f"got {pts.shape}")
    if pts.size and (not np.all(np.isfinite(pts)) or pts.min() < -1e-9
                     or np.abs(pts.sum(1) - 1).max() > 1e-6):
        raise ValueError("points must be finite, >= 0 and have rows summing to 1 "
                         "(normalise with points / points.sum(1, keepdims=True))")
    if labels is not None and len(labels) != 3:
        raise ValueError(f"labels must name the 3 corners, got {len(labels)} labels")
    if not getattr(ax, "_book_simplex", False):
        tri = np.vstack([SIMPLEX_CORNERS, SIMPLEX_CORNERS[:1]])
        ax.plot(tri[:, 0], tri[:, 1], color=COLORS["exact"], linewidth=0.8)
        names = labels if labels is not None else [f"category {k}" for k in range(3)]
        offsets = [(-0.03, -0.05, "right"), (0.03, -0.05, "left"), (0.0, 0.04, "center")]
        for (x, y), (dx, dy, ha), name in zip(SIMPLEX_CORNERS, offsets, names):
            ax.text(x + dx, y + dy, name, ha=ha, va="center", fontsize=9)
        ax.set_aspect("equal")
        ax.set_xlim(-0.15, 1.15)
        ax.set_ylim(-0.12, np.sqrt(3) / 2 + 0.1)
        ax.axis("off")
        ax._book_simplex = True
    xy = pts @ SIMPLEX_CORNERS
    filled = marker in ("o", "s", "^", "v", "<", ">", "D", "d", "p", "h", "H", "8", "*", "P", "X")
    ax.scatter(xy[:, 0], xy[:, 1], s=size, alpha=alpha, marker=marker,
               linewidths=0 if filled else 1.5,  # line markers (+, x) need a line width
               color=color if color is not None else COLORS["relaxed"], label=label)
    return ax
