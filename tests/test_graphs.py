"""Tests of lib.graphs: gradient paths checked against autograd, drawing and input checks."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch  # noqa: E402

from lib.graphs import Node, draw_computation_graph, gradient_paths  # noqa: E402

BEFORE = {
    "mu": Node(0, 1, "parameter", r"$\mu$"),
    "sigma": Node(0, -1, "parameter", r"$\sigma$"),
    "z": Node(2, 0, "stochastic", "$z$"),
    "L": Node(4, 0, "loss", "$L$"),
}
BEFORE_EDGES = [("mu", "z"), ("sigma", "z"), ("z", "L")]
AFTER = {
    "mu": Node(0, 1, "parameter"),
    "sigma": Node(0, -1, "parameter"),
    "eps": Node(2, -1.5, "stochastic"),
    "z": Node(2, 0, "deterministic"),
    "L": Node(4, 0, "loss"),
}
AFTER_EDGES = [("mu", "z"), ("sigma", "z"), ("eps", "z"), ("z", "L")]


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def autograd_receivers(reparameterize):
    """The oracle: which of mu, sigma get a .grad from a real PyTorch computation."""
    mu = torch.tensor(0.5, requires_grad=True)
    sigma = torch.tensor(1.5, requires_grad=True)
    dist = torch.distributions.Normal(mu, sigma)
    z = dist.rsample() if reparameterize else dist.sample()
    z.requires_grad_(True)  # so that the loss is differentiable at all
    loss = (z - 2.0) ** 2
    loss.backward()
    return {name for name, p in (("mu", mu), ("sigma", sigma)) if p.grad is not None}


def test_gradient_paths_agree_with_autograd_before_and_after():
    before = gradient_paths(BEFORE, BEFORE_EDGES)
    after = gradient_paths(AFTER, AFTER_EDGES)
    params = {"mu", "sigma"}
    assert before.receives & params == autograd_receivers(reparameterize=False) == set()
    assert after.receives & params == autograd_receivers(reparameterize=True) == params
    assert set(before.blocked) == {("mu", "z"), ("sigma", "z")} and before.flows == (("z", "L"),)
    assert after.blocked == () and set(after.flows) == set(AFTER_EDGES)


def test_a_path_around_the_sample_still_carries_gradient():
    # phi feeds the sampled z AND a regulariser on the logits: it gets a gradient from the latter
    nodes = {"x": (0, 0, "input"), "phi": (0, 1, "parameter"),
             "logits": (1, 0, "deterministic"), "z": (2, 0, "stochastic"),
             "theta": (2, 1, "parameter"), "out": (3, 0, "deterministic"),
             "reg": (2, -1, "deterministic"), "L": (4, 0, "loss")}
    edges = [("x", "logits"), ("phi", "logits"), ("logits", "z"), ("z", "out"),
             ("theta", "out"), ("out", "L"), ("logits", "reg"), ("reg", "L")]
    paths = gradient_paths(nodes, edges)
    assert {"phi", "theta", "logits", "x"} <= paths.receives
    assert paths.blocked == (("logits", "z"),)
    without_reg = [e for e in edges if "reg" not in e]
    nodes_wo = {k: v for k, v in nodes.items() if k != "reg"}
    assert gradient_paths(nodes_wo, without_reg).receives == frozenset({"L", "out", "z", "theta"})


def test_stochastic_nodes_downstream_of_the_loss_path_are_not_reported_blocked():
    nodes = {"a": (0, 0, "parameter"), "s": (1, 0, "stochastic"), "L": (2, 1, "loss"),
             "b": (1, 1, "parameter")}
    paths = gradient_paths(nodes, [("a", "s"), ("b", "L")])
    assert paths.receives == frozenset({"L", "b"}) and paths.blocked == ()


def test_explicit_loss_and_node_formats():
    nodes = {"p": {"x": 0, "y": 0, "kind": "parameter"}, "q": (1, 0, "deterministic", "$q$")}
    assert gradient_paths(nodes, [("p", "q")], loss="q").receives == frozenset({"p", "q"})


def test_drawing_has_one_patch_per_node_and_the_computed_arrows(ax):
    draw_computation_graph(ax, BEFORE, BEFORE_EDGES, title="before")
    circles = [p for p in ax.patches if isinstance(p, Circle)]
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(circles) == 1 and len(boxes) == 3
    assert len(arrows) == len(BEFORE_EDGES) + 1  # 3 forward + 1 gradient (z <- L)
    crosses = [ln for ln in ax.lines if ln.get_marker() == "X"]
    assert len(crosses) == 2  # mu -> z and sigma -> z are blocked
    assert ax.get_title() == "before"
    assert sorted(t.get_text() for t in ax.texts) == sorted(n.label for n in BEFORE.values())
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "gradient blocked by sampling" in labels


def test_drawing_after_reparameterization_has_no_cross(ax):
    draw_computation_graph(ax, AFTER, AFTER_EDGES)
    assert not [ln for ln in ax.lines if ln.get_marker() == "X"]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 2 * len(AFTER_EDGES)
    assert sorted(t.get_text() for t in ax.texts) == sorted(AFTER)  # default label = name


def test_drawing_without_gradients_or_legend(ax):
    draw_computation_graph(ax, BEFORE, BEFORE_EDGES, show_gradients=False, legend=False)
    assert len([p for p in ax.patches if isinstance(p, FancyArrowPatch)]) == len(BEFORE_EDGES)
    assert ax.get_legend() is None


@pytest.mark.parametrize("nodes,edges,error,match", [
    ({}, [], ValueError, "at least one node"),
    ([("a", (0, 0, "input"))], [], TypeError, "dict"),
    ({"a": (0, 0, "random")}, [], ValueError, "kind must be one of"),
    ({"a": (0, float("nan"), "input")}, [], ValueError, "finite"),
    ({"a": (0, 0)}, [], ValueError, "x, y, kind"),
    ({"a": [0, 0, "input"]}, [], TypeError, "must be a Node"),
    ({"a": {"x": 0, "kind": "input"}}, [], TypeError, "keys x, y, kind"),
    ({"a": (0, 0, "input", None, -1.0)}, [], ValueError, "width"),
    ({"a": (0, 0, "input")}, [("a", "b")], ValueError, "unknown node 'b'"),
    ({"a": (0, 0, "input")}, [("a", "a")], ValueError, "self-loop"),
    ({"a": (0, 0, "input"), "b": (1, 0, "loss")}, [("a", "b"), ("a", "b")], ValueError, "twice"),
    ({"a": (0, 0, "input"), "b": (1, 0, "loss")}, [("a",)], ValueError, "pair"),
    ({"a": (0, 0, "input"), "b": (1, 0, "loss")}, "ab", TypeError, "edges"),
    ({"a": (0, 0, "parameter"), "b": (1, 0, "deterministic"), "c": (2, 0, "loss")},
     [("a", "b"), ("b", "c"), ("c", "b")], ValueError, "b -> c -> b"),
])
def test_malformed_graphs_are_refused(nodes, edges, error, match):
    with pytest.raises(error, match=match):
        gradient_paths(nodes, edges, loss="a" if isinstance(nodes, dict) and nodes else None)


def test_loss_must_exist_and_be_unique():
    with pytest.raises(ValueError, match="no loss node"):
        gradient_paths({"a": (0, 0, "input")}, [])
    with pytest.raises(ValueError, match="several nodes"):
        gradient_paths({"a": (0, 0, "loss"), "b": (1, 0, "loss")}, [])
    with pytest.raises(ValueError, match="not a node"):
        gradient_paths({"a": (0, 0, "loss")}, [], loss="L")


def test_draw_refuses_a_non_axes_and_overlapping_nodes(ax):
    with pytest.raises(TypeError, match="matplotlib Axes"):
        draw_computation_graph(plt.gcf(), BEFORE, BEFORE_EDGES)
    with pytest.raises(ValueError, match="both at"):
        draw_computation_graph(ax, {"a": (0, 0, "input"), "b": (0, 0, "loss")}, [("a", "b")])
    with pytest.raises(TypeError, match="bool"):
        draw_computation_graph(ax, BEFORE, BEFORE_EDGES, show_gradients="yes")
