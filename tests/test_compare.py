"""Tests of lib.compare: estimators against closed forms and enumeration, measurement, errors.

Statistical tests use fixed seeds; tolerances are sized by the standard error (z-scores of the
measured bias), never by hard-coded results.
"""

import itertools
import math

import pytest
import torch

from lib.compare import (
    ESTIMATORS,
    BernoulliProblem,
    CategoricalProblem,
    Estimator,
    Measurement,
    Reference,
    get_estimator,
    line_style,
    measure,
    optimise,
    time_per_estimate,
)
from lib.training import snap_


def gen(seed):
    return torch.Generator().manual_seed(seed)


LOGITS = torch.tensor([0.3, -1.2, 0.8, 0.0])
COSTS = torch.tensor([1.0, -2.0, 0.5, 3.0])
OFFSET = 10.0  # a shared offset: what a baseline removes


def linear_categorical(offset=0.0):
    return CategoricalProblem(LOGITS, lambda z: z @ COSTS + offset, name="linear")


def categorical_closed_form():
    """d/dl_i sum_k p_k c_k = p_i (c_i - E[c])."""
    p = torch.softmax(LOGITS.double(), 0)
    return p * (COSTS.double() - (p * COSTS.double()).sum())


B_LOGITS = torch.tensor([0.5, -0.7, 1.1])


def nonlinear_cost(b):
    # interaction plus a non-linearity: f is not linear in b, so relaxations are biased
    return (b.sum(-1) - 1.5) ** 2 + 2.0 * b[..., 0] * b[..., 2]


def bernoulli_closed_form(f, logits):
    """d/dl_i E[f] = sigma'(l_i) (E[f | b_i=1] - E[f | b_i=0]), by explicit loops."""
    theta = torch.sigmoid(logits.double()).tolist()
    n = len(theta)
    grad = []
    for i in range(n):
        diff = 0.0
        for rest in itertools.product([0.0, 1.0], repeat=n - 1):
            p_rest = math.prod(t if r else 1 - t for t, r in zip(theta[:i] + theta[i + 1:], rest))
            b1 = torch.tensor(list(rest[:i]) + [1.0] + list(rest[i:]))
            b0 = torch.tensor(list(rest[:i]) + [0.0] + list(rest[i:]))
            diff += p_rest * float(f(b1) - f(b0))
        grad.append(theta[i] * (1 - theta[i]) * diff)
    return torch.tensor(grad, dtype=torch.float64)


def bernoulli_problem(offset=0.0):
    return BernoulliProblem(B_LOGITS, lambda b: nonlinear_cost(b) + offset, name="nonlinear")


ALL = [
    ("exact", {}),
    ("reinforce", {}),
    ("reinforce_moving_average", {}),
    ("reinforce_loo", {}),
    ("straight_through", {}),
    ("gumbel_softmax", {"tau": 0.5}),
    ("st_gumbel_softmax", {"tau": 0.5}),
    ("gumbel_rao", {"tau": 0.5, "n_conditional": 4}),
    ("reinmax", {"tau": 1.0}),
]


# ---------------------------------------------------------------- problems


def test_exact_gradients_match_closed_forms():
    cat = linear_categorical()
    torch.testing.assert_close(cat.exact_gradient().double(), categorical_closed_form(),
                               atol=1e-6, rtol=1e-5)
    p = torch.softmax(LOGITS, 0)
    assert cat.exact_value() == pytest.approx(float(p @ COSTS), rel=1e-6)
    bern = bernoulli_problem()
    torch.testing.assert_close(bern.exact_gradient().double(),
                               bernoulli_closed_form(nonlinear_cost, B_LOGITS),
                               atol=1e-6, rtol=1e-5)


def test_relax_toy_gradient_is_0002_in_theta():
    # d/dtheta [theta (1-0.499)^2 + (1-theta) 0.499^2] = 0.501^2 - 0.499^2 = 0.002; times
    # dtheta/dlogit = theta (1 - theta) for the logit gradient
    for logit in (-1.0, 0.0, 2.0):
        toy = BernoulliProblem(torch.tensor([logit], dtype=torch.float64),
                               lambda b: ((b - 0.499) ** 2).sum(-1))
        theta = 1 / (1 + math.exp(-logit))
        assert float(toy.exact_gradient()[0]) == pytest.approx(0.002 * theta * (1 - theta),
                                                               rel=1e-9)


# ---------------------------------------------------------------- estimators


@pytest.mark.parametrize("name, params", ALL)
@pytest.mark.parametrize("problem_fn", [linear_categorical, bernoulli_problem])
def test_shapes_dtype_and_reproducibility(name, params, problem_fn):
    problem = problem_fn()
    est = get_estimator(name, **params)
    out = est(problem, None, 5, 7, gen(0))
    assert out.shape == (7, problem.dim)
    assert out.dtype == problem.logits.dtype
    assert not out.requires_grad
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, est(problem, None, 5, 7, gen(0)), rtol=0, atol=0)


def test_registry_lists_every_estimator_and_labels():
    # the lab lists the book's estimators first, then those of chapter 12 (issue 16), then
    # I-MLE (k-subsets only)
    assert ESTIMATORS[:len(ALL)] == tuple(n for n, _ in ALL)
    assert ESTIMATORS[len(ALL):] == ("local_baseline", "arm", "disarm", "rebar", "relax", "imle")
    assert get_estimator("gumbel_softmax", tau=0.5).label == "Gumbel-softmax (tau=0.5)"
    assert get_estimator("reinforce").unbiased
    assert not get_estimator("st_gumbel_softmax").unbiased
    assert get_estimator("gumbel_softmax").params == {"tau": 1.0}
    assert isinstance(get_estimator("exact"), Estimator)


@pytest.mark.parametrize("name", ["reinforce", "reinforce_moving_average", "reinforce_loo"])
@pytest.mark.parametrize("problem_fn", [linear_categorical, bernoulli_problem])
def test_score_function_estimators_are_unbiased(name, problem_fn):
    problem = problem_fn(OFFSET)
    m = measure(problem, get_estimator(name), 4, 20_000, gen(1))
    # each coordinate's bias within 4.5 standard errors (D <= 4 coordinates)
    assert m.max_abs_z < 4.5, m.bias_z
    assert m.bias_norm < 4 * m.bias_noise


def test_baselines_reduce_variance_with_an_offset():
    problem = linear_categorical(OFFSET)
    var = {n: measure(problem, get_estimator(n), 4, 4000, gen(2)).variance_total
           for n in ("reinforce", "reinforce_moving_average", "reinforce_loo")}
    # the offset of 10 dominates REINFORCE's variance; any reasonable baseline removes it
    assert var["reinforce_loo"] < 0.1 * var["reinforce"]
    assert var["reinforce_moving_average"] < 0.1 * var["reinforce"]


def test_reinforce_variance_falls_as_one_over_n_samples():
    problem = bernoulli_problem()
    v1 = measure(problem, get_estimator("reinforce"), 1, 20_000, gen(3)).variance_total
    v10 = measure(problem, get_estimator("reinforce"), 10, 20_000, gen(4)).variance_total
    # sample variances of 20,000 draws: relative SE about 2-5% here; 20% is far outside it
    assert v10 * 10 / v1 == pytest.approx(1.0, rel=0.2)


def test_straight_through_is_exact_for_a_linear_cost():
    # E[c.z] = c.probs, so the ST gradient (c through d probs/d logits) is exact, zero variance
    est = get_estimator("straight_through")
    out = est(linear_categorical(), None, 3, 5, gen(5)).double()
    torch.testing.assert_close(out, categorical_closed_form().expand(5, -1), atol=1e-6, rtol=1e-5)
    weights = torch.tensor([1.0, -2.0, 0.5])
    bern = BernoulliProblem(B_LOGITS, lambda b: b @ weights)
    out = est(bern, None, 3, 5, gen(5)).double()
    expected = (torch.sigmoid(B_LOGITS) * torch.sigmoid(-B_LOGITS) * weights).double()
    torch.testing.assert_close(out, expected.expand(5, -1), atol=1e-6, rtol=1e-5)
    # measure's z-test must call this exact (round-off only), not infinitely biased
    m = measure(linear_categorical(), est, 3, 50, gen(5))
    assert m.max_abs_z < 1 and m.bias_norm < 1e-6


@pytest.mark.parametrize("name, params", [
    ("straight_through", {}),
    ("gumbel_softmax", {"tau": 0.5}),
    ("st_gumbel_softmax", {"tau": 0.5}),
])
def test_relaxed_and_straight_through_are_biased_on_a_nonlinear_cost(name, params):
    m = measure(bernoulli_problem(), get_estimator(name, **params), 4, 20_000, gen(6))
    assert m.bias_norm > 8 * m.bias_noise
    assert m.max_abs_z > 8


def test_gumbel_softmax_is_biased_even_for_a_linear_cost():
    # E[softmax((l + G)/tau)] != softmax(l), so the relaxed objective differs from the true one
    m = measure(linear_categorical(), get_estimator("gumbel_softmax", tau=1.0), 4, 20_000, gen(7))
    assert m.bias_norm > 8 * m.bias_noise


def test_reinforce_handles_masked_categories():
    logits = torch.tensor([0.0, -math.inf, 1.0])
    problem = CategoricalProblem(logits, lambda z: z @ torch.tensor([1.0, 5.0, 2.0]))
    for name in ("reinforce", "reinforce_loo", "straight_through", "gumbel_softmax"):
        out = get_estimator(name)(problem, None, 8, 16, gen(8))
        assert torch.isfinite(out).all(), name
        assert (out[:, 1] == 0).all(), name


def test_estimates_at_other_logits():
    problem = linear_categorical()
    other = torch.tensor([1.0, 1.0, -1.0, 0.5])
    out = get_estimator("exact")(problem, other, 1, 2, None)
    p = torch.softmax(other, 0)
    torch.testing.assert_close(out[0], p * (COSTS - p @ COSTS), atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------- measure and optimise


def test_measure_of_exact_and_of_a_shifted_estimator():
    problem = linear_categorical()
    m = measure(problem, get_estimator("exact"), 1, 10, gen(9))
    # the exact estimator (vectorised enumeration) matches lib.estimators up to float32 round-off
    assert m.bias_norm < 1e-6 and m.variance_total == 0 and m.mse < 1e-12
    assert m.max_abs_z < 1
    assert isinstance(m, Measurement) and m.reference_method == "exact" and m.n_params == 0
    assert (m.reference_se == 0).all()

    def shifted(problem, logits, n_samples, n_repeats, generator):
        return problem.exact_gradient(logits).expand(n_repeats, -1) + 0.1

    m = measure(problem, shifted, 1, 10)
    assert m.bias_norm == pytest.approx(0.2, rel=1e-5)  # 0.1 * sqrt(4)
    assert m.max_abs_z > 1e3  # a wrong zero-variance estimate: only the round-off floor
    assert m.mse == pytest.approx(0.04, rel=1e-4)


def test_measure_mse_is_bias_squared_plus_variance():
    m = measure(bernoulli_problem(), get_estimator("gumbel_softmax", tau=1.0), 2, 5000, gen(10))
    r = m.n_repeats
    # mse = ||bias||^2 + (R-1)/R * trace(variance) exactly (an algebraic identity)
    assert m.mse == pytest.approx(m.bias_norm ** 2 + (r - 1) / r * m.variance_total,
                                     rel=1e-9)


def test_optimise_descends_on_the_relax_toy():
    toy = BernoulliProblem(torch.zeros(1), lambda b: ((b - 0.499) ** 2).sum(-1))
    exact = optimise(toy, get_estimator("exact"), n_steps=50, lr=200.0)
    assert exact.logits.shape == (51, 1, 1) and exact.value.shape == (51, 1)
    assert exact.value[-1, 0] < exact.value[0, 0]
    assert exact.logits[-1, 0, 0] < -1.0
    # the objective along the path is theta * 0.501^2 + (1 - theta) * 0.499^2
    theta = torch.sigmoid(exact.logits[:, 0, 0].double())
    torch.testing.assert_close(exact.value[:, 0].double(),
                               theta * 0.501**2 + (1 - theta) * 0.499**2, atol=1e-6, rtol=0)
    # with Adam the step size is about lr whatever the gradient's scale; the baselines make the
    # sign of the estimate reliable, so every run must head to theta -> 0
    loo = optimise(toy, get_estimator("reinforce_loo"), n_steps=100, lr=0.1, n_samples=4,
                   n_runs=8, generator=gen(11), optimizer="adam")
    assert loo.logits.shape == (101, 8, 1)
    assert (torch.sigmoid(loo.logits[-1, :, 0]) < 0.1).all()
    ma = optimise(toy, get_estimator("reinforce_moving_average"), n_steps=300, lr=0.1,
                  n_samples=4, n_runs=8, generator=gen(12), optimizer="adam")
    assert (torch.sigmoid(ma.logits[-1, :, 0]) < 0.3).all()
    # straight-through follows E[2 (b - 0.499)] sigma'(logit): it settles at theta ~ 0.499
    st = optimise(toy, get_estimator("straight_through"), n_steps=300, lr=0.1, n_samples=4,
                  n_runs=8, generator=gen(13), optimizer="adam")
    assert (torch.sigmoid(st.logits[-1, :, 0]) > 0.3).all()


def test_parallel_runs_are_independent_and_match_exact_gradients():
    problem = bernoulli_problem()
    points = torch.randn(5, 3, generator=gen(20))
    out = get_estimator("exact")(problem, points, 1, 5, None)
    for r in range(5):
        torch.testing.assert_close(out[r], problem.exact_gradient(points[r]), atol=1e-6,
                                   rtol=1e-5)
    values = problem.exact_values(points)
    for r in range(5):
        assert float(values[r]) == pytest.approx(problem.exact_value(points[r]), rel=1e-5)


def test_moving_average_state_is_carried_over_calls():
    toy = BernoulliProblem(torch.zeros(1), lambda b: ((b - 0.499) ** 2).sum(-1))
    est = get_estimator("reinforce_moving_average", decay=0.5)
    state = est.new_state()
    est(toy, None, 3, 4, gen(13), state=state)
    est(toy, None, 3, 4, gen(14), state=state)
    mean, steps = state["carry"]
    # one average per run, of costs that are 0.249001 or 0.251001
    assert steps == 2 and mean.shape == (4,)
    assert ((0.2489 <= mean / (1 - 0.5**2)) & (mean / (1 - 0.5**2) <= 0.2511)).all()
    with pytest.raises(ValueError, match="one average per run"):
        est(toy, None, 3, 2, gen(15), state=state)


def test_one_shot_moving_average_needs_one_point_and_the_check_follows_the_switch():
    from lib import validate_args

    toy = BernoulliProblem(torch.zeros(1), lambda b: ((b - 0.499) ** 2).sum(-1))
    est = get_estimator("reinforce_moving_average")
    two_points = torch.tensor([[0.0], [1.0]])
    with pytest.raises(ValueError, match="same logits for every repeat"):
        est(toy, two_points, 3, 2, gen(16))
    # with validation off this check (it reads tensor values) is skipped, as in torch.distributions
    with validate_args(False):
        out = est(toy, two_points, 3, 2, gen(16))
    assert out.shape == (2, 1)


# ---------------------------------------------------------------- errors


def test_error_cases():
    problem = linear_categorical()
    with pytest.raises(ValueError, match="unknown estimator"):
        get_estimator("reinforce_plus")
    with pytest.raises(ValueError, match="does not take parameter"):
        get_estimator("reinforce", tau=1.0)
    with pytest.raises(ValueError, match="tau must be > 0"):
        get_estimator("gumbel_softmax", tau=0.0)
    with pytest.raises(ValueError, match="decay"):
        get_estimator("reinforce_moving_average", decay=1.0)
    with pytest.raises(ValueError, match="n_samples >= 2"):
        get_estimator("reinforce_loo")(problem, None, 1, 3, gen(0))
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        get_estimator("reinforce")(problem, None, 0, 3, gen(0))
    with pytest.raises(TypeError, match="problem must be"):
        get_estimator("reinforce")("not a problem", None, 2, 3, gen(0))
    with pytest.raises(ValueError, match="problem's shape"):
        get_estimator("reinforce")(problem, torch.zeros(3), 2, 3, gen(0))
    with pytest.raises(ValueError, match="n_repeats must be >= 2"):
        measure(problem, get_estimator("reinforce"), 2, 1)
    with pytest.raises(ValueError, match=r"shape \[n_repeats, 4\] = \[3, 4\], got \(3,\)"):
        measure(problem, lambda p, lg, s, r, g: torch.zeros(r), 2, 3)
    with pytest.raises(ValueError, match="reduce over the sample's own dimension"):
        CategoricalProblem(LOGITS, lambda z: (z @ COSTS).sum())
    with pytest.raises(TypeError, match="f must return a torch.Tensor"):
        CategoricalProblem(LOGITS, lambda z: 1.0)
    with pytest.raises(ValueError, match=r"logits must be \[K\] \(one categorical\) or \[N, K\]"):
        CategoricalProblem(torch.zeros(2, 3, 4), lambda z: z.sum((-2, -1)))
    big = BernoulliProblem(torch.zeros(21), lambda b: b.sum(-1))  # allowed, but not enumerable
    with pytest.raises(ValueError, match="more than MAX_EXACT_OUTCOMES.*reference_gradient"):
        big.exact_gradient()
    with pytest.raises(ValueError, match="more than MAX_EXACT_OUTCOMES"):
        measure(big, get_estimator("reinforce"), 2, 3)
    with pytest.raises(ValueError, match="finite"):
        BernoulliProblem(torch.tensor([math.inf]), lambda b: b.sum(-1))
    with pytest.raises(ValueError, match="lr must be > 0"):
        optimise(problem, get_estimator("exact"), n_steps=3, lr=0.0)
    with pytest.raises(ValueError, match="optimizer"):
        optimise(problem, get_estimator("exact"), n_steps=3, lr=0.1, optimizer="lbfgs")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_optimise_matches_torch_optim_with_exact_gradients(optimizer):
    problem = bernoulli_problem()
    out = optimise(problem, get_estimator("exact"), n_steps=20, lr=0.1, optimizer=optimizer)
    param = problem.logits.clone().requires_grad_(True)
    cls = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
    opt = cls([param], lr=0.1)
    for step in range(20):
        opt.zero_grad()
        problem.exact_values(param.unsqueeze(0)).sum().backward()
        opt.step()
        snap_([param])  # optimise keeps its logits on lib.training's grid, the same on every CPU
        torch.testing.assert_close(out.logits[step + 1, 0], param.detach(), atol=1e-6,
                                   rtol=1e-5)


def test_line_style_is_stable_per_family_and_temperature():
    from lib.plotting import COLORS

    a = line_style(get_estimator("gumbel_softmax", tau=0.1))
    b = line_style(get_estimator("gumbel_softmax", tau=1.0))
    assert a["color"] == b["color"] == COLORS["relaxed"]
    assert a["linestyle"] != b["linestyle"]
    assert line_style(get_estimator("reinforce"))["label"] == "REINFORCE"
    # one colour per family for the estimators before chapter 12; later ones share "other"
    colors = {line_style(get_estimator(n))["color"] for n, _ in ALL}
    assert len(colors) == len(ALL)
    assert line_style(get_estimator("disarm"))["color"] == COLORS["other"]
    with pytest.raises(TypeError, match="Estimator"):
        line_style("reinforce")


def test_time_per_estimate_is_positive_and_grows_with_samples():
    problem = bernoulli_problem()
    est = get_estimator("reinforce")
    small = time_per_estimate(problem, est, 2, 50, gen(0), trials=3)
    large = time_per_estimate(problem, est, 2000, 50, gen(0), trials=3)
    assert 0 < small < large  # 1000 times the samples cannot be cheaper
    with pytest.raises(ValueError, match="trials must be >= 1"):
        time_per_estimate(problem, est, 2, 50, trials=0)


# ------------------------------------------------------------------ the lab for real problems


def _pair_cost(z):
    """Two 3-way choices that interact: [..., 2, 3] -> [...] (not a sum over the variables)."""
    w = torch.tensor([[1.0, -2.0, 0.5], [0.3, 1.5, -1.0], [2.0, 0.0, -0.7]],
                     dtype=z.dtype, device=z.device)
    return torch.einsum("...i,ij,...j->...", z[..., 0, :], w, z[..., 1, :]) ** 2


def test_a_product_of_categoricals_against_brute_force():
    logits = torch.tensor([[0.2, -0.5, 1.0], [0.0, 0.7, -0.3]], dtype=torch.float64)
    problem = CategoricalProblem(logits, _pair_cost, "pair")
    assert problem.shape == (2, 3) and problem.n_outcomes == 9 and problem.enumerable
    leaf = logits.clone().requires_grad_(True)
    p = torch.softmax(leaf, -1)
    brute = sum(p[0, i] * p[1, j] * _pair_cost(torch.eye(3, dtype=torch.float64)[[i, j]])
                for i in range(3) for j in range(3))
    (g,) = torch.autograd.grad(brute, leaf)
    torch.testing.assert_close(problem.exact_gradient(), g)
    assert problem.exact_value() == pytest.approx(float(brute.detach()))
    for name in ("reinforce_loo", "st_gumbel_softmax"):
        est = get_estimator(name, tau=0.5) if "gumbel" in name else get_estimator(name)
        assert est(problem, None, 4, 5, gen(0)).shape == (5, 2, 3)
    m = measure(problem, get_estimator("reinforce_loo"), 4, 4000, gen(1))
    assert m.max_abs_z < 4.5  # unbiased: every |z| below 4.5 SE (6 coordinates)
    out = optimise(problem, get_estimator("exact"), n_steps=30, lr=0.5)
    assert out.logits.shape == (31, 1, 2, 3) and out.value[-1, 0] < out.value[0, 0]


def test_a_cost_with_parameters_gets_its_gradient_measured():
    """f(z, w) = (z . w - 1)^2: E[df/dw_k] = 2 p_k (w_k - 1), an independent oracle."""
    logits = torch.tensor([0.3, -0.2, 0.8], dtype=torch.float64)
    w = torch.tensor([0.5, 2.0, -1.0], dtype=torch.float64)
    problem = CategoricalProblem(logits, lambda z, th: ((z * th).sum(-1) - 1.0) ** 2,
                                 params=w)
    p = torch.softmax(logits, -1)
    torch.testing.assert_close(problem.exact_param_gradient(), 2 * p * (w - 1.0))
    for name in ("exact", "reinforce_loo", "straight_through"):
        m = measure(problem, get_estimator(name), 4, 4000, gen(2))
        assert m.n_params == 3 and m.mean.shape == (6,)
        torch.testing.assert_close(m.reference[3:], 2 * p * (w - 1.0))
        # the parameters' gradient is unbiased for every estimator: the decoder sees exact
        # samples (z-test, 4.5 SE)
        assert (m.bias_z[3:].abs() < 4.5).all(), (name, m.bias_z)
    with pytest.raises(ValueError, match="params must be a non-empty 1-D tensor"):
        CategoricalProblem(logits, lambda z, th: z.sum(-1), params=torch.zeros(2, 2))


def test_a_monte_carlo_reference_when_enumeration_is_impossible():
    """30 Bernoullis and f = sum((b - t)^2): the exact gradient is known in closed form,
    sigma'(l) (1 - 2 t), so the Monte Carlo reference is checked against it."""
    n = 30
    logits = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)
    t = torch.linspace(0.1, 0.9, n, dtype=torch.float64)
    problem = BernoulliProblem(logits, lambda b: ((b - t) ** 2).sum(-1))
    assert not problem.enumerable
    ref = problem.reference_gradient(200_000, gen(3))
    s = torch.sigmoid(logits)
    truth = s * (1 - s) * (1 - 2 * t)
    z = (ref.values - truth) / ref.se
    assert z.abs().max() < 4.5 and ref.method.startswith("REINFORCE + LOO")
    m = measure(problem, get_estimator("reinforce_loo"), 8, 2000, gen(4), reference=ref)
    assert m.reference_method == ref.method and m.max_abs_z < 4.5
    m = measure(problem, get_estimator("straight_through"), 8, 2000, gen(5), reference=ref)
    # straight-through differentiates f at the sample: its mean is E[2 (b - t)] sigma'(l) =
    # 2 (s - t) s (1 - s), not the exact (1 - 2 t) s (1 - s): biased, and the lab sees it
    st_mean = 2 * (s - t) * s * (1 - s)
    assert ((m.mean - st_mean) / (m.variance / m.n_repeats).sqrt()).abs().max() < 4.5
    assert m.bias_norm > 8 * m.bias_noise
    with pytest.raises(ValueError, match="needs an unbiased estimator"):
        problem.reference_gradient(1000, gen(6), estimator="gumbel_softmax")
    with pytest.raises(TypeError, match="reference must be a Reference"):
        measure(problem, get_estimator("reinforce"), 2, 3, reference=truth)
    with pytest.raises(ValueError, match="reference has 3 coordinates; this problem has 30"):
        measure(problem, get_estimator("reinforce"), 2, 3,
                reference=Reference(torch.zeros(3), torch.zeros(3), "x"))
