"""StochasticNode(fixed_uniforms=...): every estimator that draws through the node uses the
given noise, so several nodes (models side by side) can share one draw."""

import pytest
import torch

from lib.estimators import StochasticNode, estimator_names, get_estimator_spec, surrogate
from tests._helpers import gen

KINDS = ["categorical", "bernoulli"]


def _logits(kind, *batch, seed=0):
    shape = (*batch, 5) if kind == "categorical" else batch
    return torch.randn(*shape, generator=gen(seed), dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("kind", KINDS)
def test_fixed_uniforms_are_what_the_node_draws_and_transforms(kind):
    logits = _logits(kind, 30)
    u = StochasticNode(kind, logits).uniforms(3, gen(1))
    fixed = StochasticNode(kind, logits, fixed_uniforms=u)
    assert torch.equal(fixed.uniforms(3), u)
    assert torch.equal(fixed.sample(3), fixed.sample_from(u))
    for hard in (False, True):
        assert torch.equal(fixed.relaxed(3, 0.5, hard), fixed.relaxed_from(u, 0.5, hard))
    if kind == "categorical":  # the generator's own samples, bit for bit
        drawn = StochasticNode(kind, logits)
        assert torch.equal(fixed.sample(3), drawn.sample(3, gen(1)))
        for hard in (False, True):
            w = torch.randn(3, 30, 5, generator=gen(2), dtype=torch.float64)
            a, b = fixed.relaxed(3, 0.5, hard), drawn.relaxed(3, 0.5, hard, gen(1))
            assert torch.equal(a, b)
            (ga,) = torch.autograd.grad((w * a).sum(), logits)
            (gb,) = torch.autograd.grad((w * b).sum(), logits)
            assert torch.equal(ga, gb)


@pytest.mark.parametrize("kind", KINDS)
def test_one_draw_shared_by_several_models(kind):
    logits = _logits(kind, 4, 30)  # 4 models, 30 points
    u = StochasticNode(kind, logits[0]).uniforms(2, gen(3))  # [2, 30(, 5)]
    shared = StochasticNode(kind, logits, fixed_uniforms=u.unsqueeze(1))
    tau = torch.tensor([0.2, 0.5, 1.0, 3.0], dtype=torch.float64)
    tau = tau.view(4, 1, 1) if kind == "categorical" else tau.view(4, 1)
    for m in range(4):
        own = StochasticNode(kind, logits[m], fixed_uniforms=u)
        assert torch.equal(shared.sample(2)[:, m], own.sample(2))
        for hard in (False, True):  # a temperature per model
            # the same noise; up to rounding, since vectorised kernels (sigmoid) can round a
            # value differently by its position in a larger tensor
            a = shared.relaxed(2, tau, hard)[:, m]
            b = own.relaxed(2, float(tau[m].flatten()[0]), hard)
            assert torch.allclose(a, b, rtol=1e-13, atol=0.0)


#: Rows of uniforms per sample: REBAR and RELAX draw a second row for the conditional sample.
UNIFORM_ROWS = {"rebar": 2, "relax": 2}


@pytest.mark.parametrize("name", estimator_names())
@pytest.mark.parametrize("kind", KINDS)
def test_every_estimator_uses_the_fixed_uniforms(name, kind):
    """Deterministic without a generator, the generator left untouched, and the samples are
    those of the fixed uniforms."""
    if name not in estimator_names(kind):
        pytest.skip(f"{name} does not support {kind} nodes")
    logits = _logits(kind, 6, seed=4)
    n = max(2, get_estimator_spec(name).min_samples)
    rows = UNIFORM_ROWS.get(name, 1)
    u = StochasticNode(kind, logits).uniforms(rows * n, gen(5))
    weights = torch.linspace(-1.0, 2.0, 5 if kind == "categorical" else 6, dtype=torch.float64)

    def cost(z):
        return (z * weights).sum(-1) ** 2 if kind == "categorical" else (z * weights).sum(-1)

    batch = (6,) if kind == "categorical" else ()
    node = StochasticNode(kind, logits, event_dims=0 if kind == "categorical" else 1,
                          fixed_uniforms=u)
    g = gen(6)
    before = g.get_state()
    runs = [surrogate(name, node, cost, n_samples=n, generator=g) for _ in range(2)]
    assert torch.equal(g.get_state(), before)
    assert torch.equal(runs[0].loss, runs[1].loss) and runs[0].loss.shape == batch
    if name != "exact":
        samples = runs[0].samples
        hard = node.sample_from(u[:n])
        if name in ("arm", "disarm"):  # antithetic pairs: the samples of u, then of 1 - u
            assert torch.equal(samples, torch.cat([hard, node.sample_from(1 - u)]))
        elif name in UNIFORM_ROWS or get_estimator_spec(name).params.get("tau") is None \
                or name == "st_gumbel_softmax":
            assert torch.equal(samples, hard)
        else:  # gumbel_softmax evaluates the cost at relaxed samples of the same noise
            assert torch.equal(samples.argmax(-1) if kind == "categorical" else samples > 0.5,
                               hard.argmax(-1) if kind == "categorical" else hard > 0.5)


@pytest.mark.parametrize(
    ("fixed", "match"),
    [
        (torch.full((4, 5), 0.5), "shape"),  # no sample dimension
        (torch.full((2, 3, 5), 0.5), "shape"),  # does not broadcast to the logits
    ],
)
def test_fixed_uniforms_shape_is_checked(fixed, match):
    with pytest.raises(ValueError, match=match):
        StochasticNode("categorical", torch.zeros(4, 5), fixed_uniforms=fixed)


def test_fixed_uniforms_must_match_the_number_of_samples_and_be_a_tensor():
    node = StochasticNode("categorical", torch.zeros(4, 5), fixed_uniforms=torch.full((1, 4, 5),
                                                                                      0.5))
    for draw in (lambda: node.sample(2), lambda: node.relaxed(2, 1.0, False),
                 lambda: node.uniforms(2)):
        with pytest.raises(ValueError, match="fixed_uniforms hold 1 sample"):
            draw()
    with pytest.raises(TypeError, match="fixed_uniforms"):
        StochasticNode("categorical", torch.zeros(4, 5), fixed_uniforms=[[[0.5] * 5] * 4])
