"""The unbiased estimators of chapter 12: local expectations, ARM, DisARM, REBAR and RELAX.

Oracles: the exact gradient by enumeration (``lib.compare``'s ``measure`` and the ``exact``
estimator), closed forms (a separable cost's local-expectation gradient), distributional facts
(the conditional noise of REBAR has the unconditional marginal) and counts of cost calls.

Every z-test uses a fixed seed and R independent estimates; a coordinate's bias is tested in
units of its standard error SE = sqrt(Var / R). With at most 12 coordinates per problem and the
threshold |z| < 4.5, an unbiased estimator fails with probability about 12 x 6.8e-6 < 1e-4.
The RESOLUTION of each test (the smallest bias it would detect) is 4.5 SE per coordinate; each
test also asserts that this is below 10 % of the largest exact gradient coordinate, so a pass
means something.
"""

from __future__ import annotations

import math

import pytest
import torch

from lib.compare import BernoulliProblem, CategoricalProblem, get_estimator, measure
from lib.estimators import (
    StochasticNode,
    _conditional_noise,
    cost_evaluations,
    estimator_names,
    surrogate,
)
from tests._helpers import gen

NEW = ("local_baseline", "arm", "disarm", "rebar", "relax")
R = 20_000  # estimates per z-test
Z_MAX = 4.5  # per-coordinate threshold, in standard errors (see the module docstring)
DTYPE = torch.float64


def _control(width: int, seed: int):
    """A small random control network r(s) for RELAX: relaxed samples [..., width] -> [...]."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(width, 8), torch.nn.Tanh(),
                              torch.nn.Linear(8, 1)).to(DTYPE)
    with torch.no_grad():  # start near 0 (REINFORCE): a large random control only adds noise
        net[2].weight.mul_(0.1)
    return net, (lambda s: net(s.flatten(-2) if s.dim() > 3 else s).squeeze(-1))


def bernoulli_problem(seed: int) -> BernoulliProblem:
    """Four Bernoullis, a non-quadratic cost with an interaction term, and a cost parameter."""
    g = gen(seed)
    logits = torch.randn(4, generator=g, dtype=DTYPE)
    w = torch.rand(4, generator=g, dtype=DTYPE) - 0.3

    def f(b, params=None):
        scale = 1.0 if params is None else params[..., 0]
        return scale * torch.exp(b @ w) + 0.5 * b[..., 0] * b[..., 2]

    return BernoulliProblem(logits, f, name="4 Bernoullis",
                            params=torch.tensor([1.3], dtype=DTYPE))


def categorical_problem(seed: int) -> CategoricalProblem:
    """Two 4-way categoricals (8 logits), a non-quadratic cost of both."""
    g = gen(seed)
    logits = torch.randn(2, 4, generator=g, dtype=DTYPE)
    table = torch.rand(2, 4, generator=g, dtype=DTYPE)
    # centred near 0 so that a score-function term (RELAX's control starts near 0) is not
    # drowned by an offset: the test's resolution stays below 10 % of the gradient
    return CategoricalProblem(logits, lambda z: torch.exp((z * table).sum((-1, -2))) - 2.5,
                              name="2 x 4-way")


def _params(name, problem):
    if name != "relax":
        return {}
    width = problem.dim
    _, control = _control(width, seed=3)
    return {"control": control, "eta": 0.0}


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("problem_fn", [bernoulli_problem, categorical_problem])
def test_every_new_estimator_is_unbiased_against_enumeration(name, problem_fn):
    problem = problem_fn(11)
    if name not in estimator_names(problem.kind):
        pytest.skip(f"{name} does not support {problem.kind} nodes")
    m = measure(problem, get_estimator(name, **_params(name, problem)), 2, R, gen(12))
    # resolution: a bias of Z_MAX standard errors per coordinate, asserted to be small
    assert Z_MAX * float(m.bias_se.max()) < 0.1 * float(m.reference.abs().max())
    assert m.max_abs_z < Z_MAX, (m.bias_z, m.bias_se)  # <= 8 coordinates (+1 parameter)


def test_relax_with_both_control_terms_and_rebar_with_other_settings_are_unbiased():
    problem = bernoulli_problem(21)
    _, control = _control(problem.dim, seed=4)
    for est in (get_estimator("relax", control=control, eta=0.7, tau=1.5),
                get_estimator("rebar", eta=0.3, tau=0.2)):
        m = measure(problem, est, 1, R, gen(22))
        assert Z_MAX * float(m.bias_se.max()) < 0.1 * float(m.reference.abs().max())
        assert m.max_abs_z < Z_MAX, (est, m.bias_z)


def test_local_baseline_has_zero_variance_for_a_sum_cost():
    """f(b) = sum_i f_i(b_i): the local-expectation gradient is exactly
    theta_i (1 - theta_i) (f_i(1) - f_i(0)) for every sample. Integer costs keep every sum
    and difference exact in float64, so the variance is exactly 0, not rounding-small."""
    logits = torch.tensor([0.3, -1.2, 2.0, 0.0, -0.4], dtype=DTYPE)
    values = torch.tensor([[3.0, -1.0], [0.0, 4.0], [2.0, 2.0], [-5.0, 1.0], [7.0, -2.0]],
                          dtype=DTYPE)  # f_i(0), f_i(1)

    def f(b):
        return (values[:, 0] * (1 - b) + values[:, 1] * b).sum(-1)

    problem = BernoulliProblem(logits, f)
    estimates = get_estimator("local_baseline")(problem, None, 1, 500, gen(31))
    assert float(estimates.var(0).max()) == 0.0
    theta = torch.sigmoid(logits)
    closed_form = theta * (1 - theta) * (values[:, 1] - values[:, 0])
    assert torch.allclose(estimates[0], closed_form, rtol=1e-12, atol=0)
    # the same for a sum over categorical variables, f(z) = sum_i c_i[z_i]
    table = torch.tensor([[1.0, 4.0, -2.0], [0.0, 3.0, 5.0]], dtype=DTYPE)
    cat = CategoricalProblem(torch.tensor([[0.1, -0.5, 0.9], [1.0, 0.0, -1.0]], dtype=DTYPE),
                             lambda z: (z * table).sum((-1, -2)))
    estimates = get_estimator("local_baseline")(cat, None, 1, 500, gen(32))
    # here the softmax's gradient p_k (f_k - sum_m p_m f_m) rounds differently as the other
    # variable's cost shifts every f_k: zero up to float64 round-off (eps^2 x f^2 ~ 1e-30)
    assert float(estimates.var(0).max()) < 1e-28
    assert torch.allclose(estimates[0], cat.exact_gradient(), rtol=1e-12, atol=1e-15)
    # ... while REINFORCE + LOO at the same number of cost evaluations (6 per estimate) is not
    loo = get_estimator("reinforce_loo")(problem, None, 6, 500, gen(33))
    assert float(loo.var(0).min()) > 0.01


def test_local_baseline_on_one_categorical_is_the_exact_gradient():
    """For one K-way variable the K cost evaluations are every outcome: zero error."""
    problem = CategoricalProblem(torch.tensor([0.2, -1.0, 0.5, 1.5], dtype=DTYPE),
                                 lambda z: torch.exp(z @ torch.tensor([1.0, -2.0, 0.3, 0.9],
                                                                      dtype=DTYPE)))
    estimates = get_estimator("local_baseline")(problem, None, 1, 20, gen(34))
    assert torch.allclose(estimates, problem.exact_gradient().expand(20, 4), rtol=1e-12,
                          atol=1e-15)


def test_disarm_has_lower_variance_than_arm():
    """DisARM is ARM's estimate conditioned on the pair (b, b~) (Dong et al. 2020, Sec. 3), so
    per coordinate Var[DisARM] <= Var[ARM]. Far from theta = 1/2 the gap is large: the pair
    then agrees on most coordinates, where DisARM is exactly 0 and ARM is not."""
    logits = torch.tensor([2.5, -2.0, 1.5, -3.0], dtype=DTYPE)
    w = torch.tensor([1.0, -0.5, 0.7, 0.2], dtype=DTYPE)
    problem = BernoulliProblem(logits, lambda b: torch.exp(b @ w))
    arm = measure(problem, get_estimator("arm"), 1, R, gen(41))
    disarm = measure(problem, get_estimator("disarm"), 1, R, gen(42))
    assert arm.max_abs_z < Z_MAX and disarm.max_abs_z < Z_MAX  # both unbiased
    # paired on the same uniforms (same seed: both draw the node's uniforms first): both have
    # the same mean, so Var[ARM] - Var[DisARM] = E[g_arm^2 - g_disarm^2], tested against its
    # own standard error in every coordinate (one-sided, 4.5 SE)
    g_arm = get_estimator("arm")(problem, None, 1, R, gen(43))
    g_dis = get_estimator("disarm")(problem, None, 1, R, gen(43))
    diff = g_arm**2 - g_dis**2
    z = diff.mean(0) / (diff.std(0) / math.sqrt(R))
    assert bool((z > Z_MAX).all()), z
    assert bool((disarm.variance < arm.variance).all())


def test_relax_training_its_control_reduces_the_variance():
    """RELAX's control is trained on d E||g||^2 / d phi (the variance gradient, since the
    estimator is unbiased) on the RELAX toy, E[(b - 0.499)^2] at theta = 0.3."""
    toy = BernoulliProblem(torch.tensor([math.log(0.3 / 0.7)], dtype=DTYPE),
                           lambda b: ((b - 0.499) ** 2).sum(-1))
    net, control = _control(1, seed=5)
    est = get_estimator("relax", control=control, eta=0.0)
    before = measure(toy, est, 1, R, gen(51))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    g = gen(52)
    for _ in range(200):
        logits = toy.logits.expand(64, 1).clone().requires_grad_(True)
        out = surrogate("relax", StochasticNode("bernoulli", logits, event_dims=1), toy.f, 1, g,
                        control=control, eta=0.0)
        grad, = torch.autograd.grad(out.loss.sum(), logits, create_graph=True)
        opt.zero_grad()
        (grad**2).mean().backward()
        opt.step()
    after = measure(toy, est, 1, R, gen(53))
    # variance estimates of 20,000 draws are good to a few percent: a factor 10 is no accident
    assert after.variance_total < 0.1 * before.variance_total, (before.variance_total,
                                                                after.variance_total)
    assert after.max_abs_z < Z_MAX  # still unbiased with the trained control


@pytest.mark.parametrize("kind", ["bernoulli", "categorical"])
def test_conditional_noise_matches_the_hard_sample_and_the_marginal(kind):
    """z~ ~ p(z | b): it selects the same b, and mixed over b it has z's own distribution
    (logistic around the logits, or log p + Gumbel): means and a quantile within 5 SE."""
    n = 200_000
    logits = (torch.tensor([0.7, -1.3]) if kind == "bernoulli"
              else torch.tensor([0.5, -0.2, 1.0])).to(DTYPE)
    node = StochasticNode(kind, logits)
    u = node.uniforms(2 * n, gen(61))
    b = node.sample_from(u[:n])
    z_cond = _conditional_noise(node, b, u[n:])
    if kind == "bernoulli":
        assert torch.equal((z_cond > 0).to(DTYPE), b)
        z = logits + node._noise(u[:n])
    else:
        assert torch.equal(z_cond.argmax(-1), b.argmax(-1))
        z = torch.log_softmax(logits, -1) + node._noise(u[:n])
    se = (z.var(0) / n).sqrt()
    assert bool(((z_cond.mean(0) - z.mean(0)).abs() < 5 * math.sqrt(2) * se).all())
    # share below the unconditional median: 1/2 with SE sqrt(1/4n)
    median = z.median(0).values
    share = (z_cond < median).to(DTYPE).mean(0)
    assert bool(((share - 0.5).abs() < 5 * math.sqrt(0.25 / n) * math.sqrt(2)).all())


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("kind", ["bernoulli", "categorical"])
def test_cost_evaluations_counts_every_call(name, kind):
    if name not in estimator_names(kind):
        pytest.skip(f"{name} does not support {kind} nodes")
    shape = (2, 5) if kind == "bernoulli" else (2, 3, 4)
    logits = torch.randn(*shape, generator=gen(71), dtype=DTYPE)
    node = StochasticNode(kind, logits, event_dims=1)
    calls = []

    def cost(z):
        calls.append(z.shape[0])
        return z.flatten(2).sum(-1) ** 2

    params = {"control": lambda s: s.flatten(2).sum(-1)} if name == "relax" else {}
    for eta in ((0.0, 1.0) if name == "relax" else (None,)):
        calls.clear()
        extra = {} if eta is None else {"eta": eta}
        surrogate(name, node, cost, 3, gen(72), **params, **extra)
        assert sum(calls) == cost_evaluations(name, node, 3, **params, **extra)
    v, k = (5, 2) if kind == "bernoulli" else (3, 4)
    expected = {"local_baseline": 3 * (1 + v * (k - 1)), "arm": 6, "disarm": 6, "rebar": 9,
                "relax": 9}
    assert cost_evaluations(name, node, 3) == expected[name]


def test_the_new_estimators_refuse_what_they_cannot_do():
    node = StochasticNode("categorical", torch.zeros(2, 3), event_dims=1)
    with pytest.raises(ValueError, match="supports bernoulli nodes only"):
        surrogate("disarm", node, lambda z: z.flatten(1).sum(-1), 2)
    bern = StochasticNode("bernoulli", torch.zeros(3), event_dims=1)
    with pytest.raises(ValueError, match="needs a control"):
        surrogate("relax", bern, lambda z: z.sum(-1), 2, eta=0.0)
    with pytest.raises(TypeError, match="control"):
        surrogate("relax", bern, lambda z: z.sum(-1), 2, control=3)
    with pytest.raises(ValueError, match="control must map relaxed samples"):
        surrogate("relax", bern, lambda z: z.sum(-1), 2, control=lambda s: s)
    assert estimator_names("bernoulli")[-5:] == NEW
    assert "arm" not in estimator_names("categorical")


def test_padding_variables_get_no_gradient_and_do_not_bias_the_rest():
    """A masked (padding) Bernoulli variable is never flipped or relaxed into existence."""
    logits = torch.tensor([[0.4, -0.7, 1.1, 0.0], [0.2, 0.5, -1.0, 0.9]], dtype=DTYPE,
                          requires_grad=True)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    node = StochasticNode("bernoulli", logits, event_dims=1, mask=mask)
    w = torch.tensor([0.8, -0.4, 0.6, 0.3], dtype=DTYPE)

    def f(b):
        return torch.exp(b @ w)

    exact, = torch.autograd.grad(surrogate("exact", node, f).loss.sum(), logits)
    _, control = _control(4, seed=8)
    for name in NEW:
        params = {"control": control} if name == "relax" else {}
        out = surrogate(name, node, f, 4000, gen(81), **params)
        grad, = torch.autograd.grad(out.loss.sum(), logits)
        assert float(grad[0, 2:].abs().max()) == 0.0, name
        # one estimate from 4,000 samples: within 0.05 of the exact gradient (its SE here is
        # below 0.01 for every estimator; checked, and the z-tests above are the real test)
        assert float((grad - exact).abs().max()) < 0.05, (name, grad, exact)
