r"""Computation graphs with stochastic nodes: where gradients flow, and a matplotlib drawing.

A computation graph is a directed acyclic graph whose edges point from an input to the
quantity computed from it. Backpropagation sends :math:`\partial L/\partial v` from the loss
:math:`L` backwards along every edge, except into the parameters of a **stochastic node**:
a sample :math:`z \sim p_\phi` is not a differentiable function of :math:`\phi`, so the edge
:math:`\phi \to z` carries no gradient. The node :math:`z` itself still gets
:math:`\partial L/\partial z`; it is its parents that are cut off.

The reparameterization trick moves the randomness into a parameter-free noise node
:math:`\epsilon` (a stochastic leaf) and makes :math:`z = h(\epsilon, \phi)` deterministic,
which reopens the path to :math:`\phi`. :func:`gradient_paths` computes which nodes receive a
gradient and which edges block it; :func:`draw_computation_graph` draws both.

References:
    J. Schulman, N. Heess, T. Weber, P. Abbeel (2015), *Gradient Estimation Using Stochastic
    Computation Graphs*, NeurIPS.
    D. P. Kingma, M. Welling (2014), *Auto-Encoding Variational Bayes*, ICLR.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Patch

from lib._validation import type_name
from lib.plotting import COLORS

__all__ = [
    "NODE_KINDS",
    "GradientPaths",
    "Node",
    "draw_computation_graph",
    "gradient_paths",
]

#: The kinds of node, and how each is drawn (face colour, shape).
NODE_KINDS = {
    "input": ("#E0E0E0", "box"),
    "parameter": (COLORS["other"], "box"),
    "deterministic": ("#FFFFFF", "box"),
    "stochastic": (COLORS["relaxed"], "circle"),
    "loss": ("#FFFFFF", "box"),
}
_KIND_LABELS = {
    "input": "input",
    "parameter": "parameter",
    "deterministic": "deterministic node",
    "stochastic": "stochastic node (sampled)",
    "loss": "loss",
}
GRADIENT_COLOR = COLORS["straight_through"]  # bluish green
BLOCKED_COLOR = COLORS["baseline"]  # vermillion


class Node(NamedTuple):
    """A node to draw: centre ``(x, y)`` in data units, its ``kind``, an optional label.

    ``kind`` is one of :data:`NODE_KINDS`. ``label`` defaults to the node's name and may use
    matplotlib mathtext (``r"$\\mu$"``). ``width`` is the box width or the circle diameter in
    data units (default 0.9 for boxes, 0.7 for circles; boxes are 0.5 high).
    """

    x: float
    y: float
    kind: str
    label: str | None = None
    width: float | None = None


class GradientPaths(NamedTuple):
    """The result of :func:`gradient_paths`.

    Attributes:
        receives: names of the nodes that receive :math:`\\partial L/\\partial v` (the loss
            included).
        flows: edges ``(parent, child)`` along which a gradient flows back to ``parent``.
        blocked: edges ``(parent, child)`` into a stochastic ``child`` that receives a
            gradient: backpropagation stops there.
    """

    receives: frozenset
    flows: tuple
    blocked: tuple


def _as_node(name: Any, spec: Any) -> Node:
    if not isinstance(name, str) or not name:
        raise TypeError(f"node names must be non-empty str, got {type_name(name)} {name!r}")
    if isinstance(spec, Mapping):
        try:
            spec = Node(**spec)
        except TypeError as err:
            raise TypeError(
                f"node {name!r}: a dict spec needs keys x, y, kind (and optionally label, "
                f"width): {err}"
            ) from None
    elif isinstance(spec, tuple) and not isinstance(spec, Node):
        if not 3 <= len(spec) <= 5:
            raise ValueError(
                f"node {name!r} must be (x, y, kind[, label[, width]]), got a tuple of length "
                f"{len(spec)}"
            )
        spec = Node(*spec)
    elif not isinstance(spec, Node):
        raise TypeError(
            f"node {name!r} must be a Node, a tuple (x, y, kind[, label]) or a dict, got "
            f"{type_name(spec)}"
        )
    for coord in ("x", "y"):
        v = getattr(spec, coord)
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"node {name!r}: {coord} must be a finite number, got {v!r}")
    if spec.kind not in NODE_KINDS:
        raise ValueError(
            f"node {name!r}: kind must be one of {', '.join(NODE_KINDS)}, got {spec.kind!r}"
        )
    if spec.label is not None and not isinstance(spec.label, str):
        raise TypeError(f"node {name!r}: label must be a str, got {type_name(spec.label)}")
    if spec.width is not None:
        w = spec.width
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not (0 < w < math.inf):
            raise ValueError(f"node {name!r}: width must be a finite number > 0, got {w!r}")
    return spec


def _check_graph(nodes: Any, edges: Any) -> tuple[dict[str, Node], list[tuple[str, str]]]:
    """Validate nodes and edges; return them normalised. Edges must form a DAG."""
    if not isinstance(nodes, Mapping):
        raise TypeError(f"nodes must be a dict name -> Node, got {type_name(nodes)}")
    if not nodes:
        raise ValueError("nodes must contain at least one node, got an empty dict")
    checked = {name: _as_node(name, spec) for name, spec in nodes.items()}
    if isinstance(edges, (str, bytes)) or not isinstance(edges, Sequence):
        raise TypeError(f"edges must be a list of (parent, child) pairs, got {type_name(edges)}")
    out: list[tuple[str, str]] = []
    for i, e in enumerate(edges):
        if not isinstance(e, (tuple, list)) or len(e) != 2:
            raise ValueError(f"edges[{i}] must be a pair (parent, child), got {e!r}")
        a, b = e
        for end in (a, b):
            if end not in checked:
                raise ValueError(
                    f"edges[{i}] = {tuple(e)!r} refers to an unknown node {end!r}; known "
                    f"nodes: {', '.join(checked)}"
                )
        if a == b:
            raise ValueError(f"edges[{i}] = {tuple(e)!r} is a self-loop; computation graphs "
                             f"are acyclic")
        if (a, b) in out:
            raise ValueError(f"edges[{i}] = {tuple(e)!r} is listed twice")
        out.append((a, b))
    # a cycle check by depth-first search (0 = unvisited, 1 = on the stack, 2 = done)
    children: dict[str, list[str]] = {n: [] for n in checked}
    for a, b in out:
        children[a].append(b)
    state = dict.fromkeys(checked, 0)

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for c in children[n]:
            if state[c] == 1:
                stack = path + [n]
                cycle = stack[stack.index(c):] + [c]
                raise ValueError(
                    "edges must form an acyclic graph, found the cycle " + " -> ".join(cycle)
                )
            if state[c] == 0:
                visit(c, path + [n])
        state[n] = 2

    for n in checked:
        if state[n] == 0:
            visit(n, [])
    return checked, out


def _find_loss(nodes: dict[str, Node], loss: str | None) -> str | None:
    if loss is not None:
        if loss not in nodes:
            raise ValueError(f"loss={loss!r} is not a node; known nodes: {', '.join(nodes)}")
        return loss
    losses = [n for n, s in nodes.items() if s.kind == "loss"]
    if len(losses) > 1:
        raise ValueError(f"several nodes have kind 'loss' ({', '.join(losses)}); pass loss=...")
    return losses[0] if losses else None


def gradient_paths(
    nodes: Mapping[str, Any],
    edges: Sequence[tuple[str, str]],
    loss: str | None = None,
) -> GradientPaths:
    r"""Which nodes backpropagation reaches from ``loss``, and which edges stop it.

    A node :math:`v` receives a gradient if it is the loss, or if it has an edge
    :math:`v \to w` to a node :math:`w` that receives a gradient and is **not** stochastic
    (sampling :math:`w \sim p_v` is not differentiable in :math:`v`). Edges into a stochastic
    node that receives a gradient are reported as blocked.

    Args:
        nodes: dict ``name -> Node`` (or a tuple ``(x, y, kind[, label[, width]])``, or a dict
            with those keys).
        edges: list of ``(parent, child)`` pairs, forming a directed acyclic graph.
        loss: the node gradients start from; by default the unique node of kind ``"loss"``.

    Returns:
        :class:`GradientPaths` with ``receives`` (frozenset of names), ``flows`` and
        ``blocked`` (tuples of edges, in the order given).

    Raises:
        TypeError, ValueError: on malformed nodes or edges, a cycle, or no loss node.

    Example:
        >>> nodes = {"mu": (0, 0, "parameter"), "z": (1, 0, "stochastic"),
        ...          "L": (2, 0, "loss")}
        >>> paths = gradient_paths(nodes, [("mu", "z"), ("z", "L")])
        >>> sorted(paths.receives), paths.blocked
        (['L', 'z'], (('mu', 'z'),))

    Reference:
        Schulman, Heess, Weber, Abbeel (2015), *Gradient Estimation Using Stochastic
        Computation Graphs*, NeurIPS.
    """
    checked, edge_list = _check_graph(nodes, edges)
    start = _find_loss(checked, loss)
    if start is None:
        raise ValueError("no loss node: give one node kind 'loss' or pass loss=<name>")
    receives = {start}
    changed = True
    while changed:  # a fixed point; graphs in a book are tiny
        changed = False
        for a, b in edge_list:
            if b in receives and checked[b].kind != "stochastic" and a not in receives:
                receives.add(a)
                changed = True
    flows = tuple(e for e in edge_list if e[1] in receives and checked[e[1]].kind != "stochastic")
    blocked = tuple(e for e in edge_list if e[1] in receives and checked[e[1]].kind == "stochastic")
    return GradientPaths(frozenset(receives), flows, blocked)


def _node_patch(spec: Node, name: str) -> Any:
    face, shape = NODE_KINDS[spec.kind]
    lw = 2.2 if spec.kind == "loss" else 1.2
    if shape == "circle":
        radius = (spec.width or 0.7) / 2
        return Circle((spec.x, spec.y), radius, facecolor=face, edgecolor="black", lw=lw,
                      zorder=3)
    w, h = spec.width or 0.9, 0.5
    return FancyBboxPatch((spec.x - w / 2, spec.y - h / 2), w, h,
                          boxstyle="round,pad=0,rounding_size=0.08", facecolor=face,
                          edgecolor="black", lw=lw, zorder=3)


def draw_computation_graph(
    ax: Axes,
    nodes: Mapping[str, Any],
    edges: Sequence[tuple[str, str]],
    *,
    loss: str | None = None,
    show_gradients: bool = True,
    title: str | None = None,
    legend: bool = True,
    fontsize: float = 12,
) -> Axes:
    r"""Draw a computation graph: forward edges, and the backward (gradient) path from the loss.

    Parameters and inputs are drawn as boxes, deterministic nodes as white boxes, stochastic
    (sampled) nodes as orange circles, the loss as a box with a thick border. Forward edges are
    solid black arrows. With ``show_gradients``, each edge along which the loss's gradient flows
    gets a dashed green arrow pointing backwards, and each edge where it is blocked (into a
    sampled node) gets a vermillion cross; both are computed by :func:`gradient_paths`, not
    drawn by hand.

    Args:
        ax: matplotlib axes to draw on (its aspect is set to equal and its axis hidden).
        nodes: dict ``name -> Node(x, y, kind, label=None, width=None)``; a plain tuple
            ``(x, y, kind[, label[, width]])`` or a dict with those keys also works. ``kind``
            is one of ``input``, ``parameter``, ``deterministic``, ``stochastic``, ``loss``.
        edges: ``(parent, child)`` pairs of a directed acyclic graph.
        loss: the node the gradient starts from (default: the unique ``loss`` node).
        show_gradients: draw the backward path and the blocked edges.
        title: axes title.
        legend: add a legend of node kinds and arrow styles under the axes.
        fontsize: font size of the node labels.

    Returns:
        ``ax``.

    Raises:
        TypeError: if ``ax`` is not a matplotlib ``Axes``, or a node is malformed.
        ValueError: on unknown node kinds, edges to unknown nodes, self-loops, cycles, two
            nodes at the same position, or ``show_gradients`` without a loss node.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> nodes = {"mu": Node(0, 0, "parameter", r"$\mu$"),
        ...          "z": Node(1.5, 0, "stochastic", "$z$"),
        ...          "L": Node(3, 0, "loss", "$L$")}
        >>> _ = draw_computation_graph(ax, nodes, [("mu", "z"), ("z", "L")])
        >>> plt.close(fig)

    Reference:
        Kingma, Welling (2014), *Auto-Encoding Variational Bayes*, ICLR (the "before/after"
        picture of the reparameterization trick).
    """
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes (e.g. from plt.subplots()), got "
                        f"{type_name(ax)}")
    checked, edge_list = _check_graph(nodes, edges)
    if not isinstance(show_gradients, bool) or not isinstance(legend, bool):
        raise TypeError("show_gradients and legend must be bool")
    seen: dict[tuple[float, float], str] = {}
    for name, spec in checked.items():
        key = (float(spec.x), float(spec.y))
        if key in seen:
            raise ValueError(f"nodes {seen[key]!r} and {name!r} are both at {key}; move one")
        seen[key] = name
    paths = gradient_paths(checked, edge_list, loss) if show_gradients else None

    patches = {}
    for name, spec in checked.items():
        patch = _node_patch(spec, name)
        ax.add_patch(patch)
        patches[name] = patch
        ax.text(spec.x, spec.y, spec.label if spec.label is not None else name,
                ha="center", va="center", fontsize=fontsize, zorder=4)

    for a, b in edge_list:
        ax.add_patch(FancyArrowPatch(
            (checked[a].x, checked[a].y), (checked[b].x, checked[b].y),
            patchA=patches[a], patchB=patches[b], arrowstyle="-|>", mutation_scale=14,
            color="black", lw=1.3, zorder=2, shrinkA=2, shrinkB=2))

    if paths is not None:
        for a, b in paths.flows:
            ax.add_patch(FancyArrowPatch(
                (checked[b].x, checked[b].y), (checked[a].x, checked[a].y),
                patchA=patches[b], patchB=patches[a], arrowstyle="-|>", mutation_scale=12,
                color=GRADIENT_COLOR, lw=1.4, ls=(0, (4, 3)), zorder=2, shrinkA=4, shrinkB=4,
                connectionstyle="arc3,rad=0.35"))
        for a, b in paths.blocked:
            mx = (checked[a].x + checked[b].x) / 2
            my = (checked[a].y + checked[b].y) / 2
            ax.plot([mx], [my], marker="X", markersize=15, color=BLOCKED_COLOR,
                    markeredgecolor="white", zorder=5, linestyle="none")

    xs = [s.x for s in checked.values()]
    ys = [s.y for s in checked.values()]
    ax.set_xlim(min(xs) - 0.9, max(xs) + 0.9)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.set_aspect("equal")
    ax.axis("off")
    if title is not None:
        ax.set_title(title)
    if legend:
        handles: list[Any] = []
        for kind in NODE_KINDS:
            if any(s.kind == kind for s in checked.values()):
                face, shape = NODE_KINDS[kind]
                if shape == "circle":
                    handles.append(Line2D([], [], marker="o", markersize=11, linestyle="none",
                                          markerfacecolor=face, markeredgecolor="black",
                                          label=_KIND_LABELS[kind]))
                else:
                    handles.append(Patch(facecolor=face, edgecolor="black",
                                         label=_KIND_LABELS[kind]))
        handles.append(Line2D([], [], color="black", label="forward computation"))
        if paths is not None:
            handles.append(Line2D([], [], color=GRADIENT_COLOR, ls=(0, (4, 3)),
                                  label="gradient flows back"))
            if paths.blocked:
                handles.append(Line2D([], [], marker="X", markersize=10, linestyle="none",
                                      color=BLOCKED_COLOR, label="gradient blocked by sampling"))
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2,
                  fontsize=8, frameon=False)
    return ax

