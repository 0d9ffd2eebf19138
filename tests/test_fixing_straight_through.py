"""Conditional Gumbels, Gumbel-Rao and ReinMax (chapter 11).

Statistical checks use fixed seeds. Goodness-of-fit tests reject at ``P_MIN`` (1e-3); their
resolution (the smallest difference they would see) is given beside each. Mean comparisons
allow 4 standard errors (a z beyond 4 has probability about 6e-5 per coordinate by chance).
"""

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F

from lib.compare import BernoulliProblem, CategoricalProblem, get_estimator, measure
from lib.estimators import StochasticNode, surrogate
from lib.gumbel import conditional_gumbel, gumbel_max_sample, sample_gumbel
from tests import _reinmax_reference
from tests._helpers import P_MIN, assert_counts_match, gen

LOGITS = torch.tensor([1.0, -0.5, 0.3, 0.0], dtype=torch.float64)
COST_TABLE = torch.tensor([1.0, 4.0, 2.0, 0.5], dtype=torch.float64)
COSTS = {
    "square": lambda z: (z @ COST_TABLE) ** 2,
    "exp": lambda z: torch.exp(z @ COST_TABLE) / 10,
    "quartic": lambda z: (z @ COST_TABLE) ** 4 / 100,
}


# ------------------------------------------------------------------ conditional Gumbels


def _rejection_sample(logits, winner, n, generator):
    """Perturbed logits ``logits + G`` of plain Gumbels, kept where the argmax is ``winner``."""
    x = logits + sample_gumbel((n, logits.shape[-1]), generator=generator, dtype=logits.dtype)
    return x[x.argmax(-1) == winner]


@pytest.mark.parametrize("winner", [0, 1])  # the most likely category, and the least likely
def test_conditional_gumbel_matches_rejection_sampling(winner):
    # each coordinate of logits + G given the winner, against rejection sampling, by a
    # two-sample KS test; with n1 rejection and n2 = 20,000 direct draws the test sees a
    # difference of CDFs of about 1.95 sqrt(1/n1 + 1/n2) at P_MIN: 0.03 for winner 1
    # (n1 about 10,000 of 100,000 draws) and 0.02 for winner 0
    rejected = _rejection_sample(LOGITS, winner, 100_000, gen(1))
    assert rejected.shape[0] > 5_000
    winners = torch.full((20_000,), winner)
    direct = LOGITS + conditional_gumbel(LOGITS, winners, generator=gen(2))
    assert bool((direct.argmax(-1) == winner).all())
    for j in range(4):
        result = scipy.stats.ks_2samp(direct[:, j].numpy(), rejected[:, j].numpy())
        assert result.pvalue > P_MIN, (j, result)


def test_conditional_gumbel_second_place_follows_the_remaining_softmax():
    # the joint law of the perturbed logits given the winner i: the runner-up is
    # softmax(logits without i) (Gumbel-top-2), a chi-square test on 20,000 draws (resolution:
    # a probability off by about 0.01 to 0.02)
    winner = 2
    direct = LOGITS + conditional_gumbel(LOGITS, torch.full((20_000,), winner),
                                         generator=gen(3))
    runner_up = direct.clone()
    runner_up[:, winner] = -torch.inf
    others = LOGITS.clone()
    others[winner] = -torch.inf
    assert_counts_match(runner_up.argmax(-1).numpy(), torch.softmax(others, 0).numpy())


def test_conditional_gumbel_with_a_sampled_winner_gives_back_iid_gumbels():
    # the joint law: winner ~ softmax(logits), then G given the winner, is G ~ iid Gumbel(0, 1)
    # whatever the winner. KS per coordinate on 40,000 draws (resolution: a CDF off by about
    # 0.01) and no correlation between coordinates (|r| < 4 / sqrt(n) = 0.02)
    n = 40_000
    logits = LOGITS.expand(n, 4)
    winner = gumbel_max_sample(logits, generator=gen(4))
    noise = conditional_gumbel(logits, winner, generator=gen(5))
    for j in range(4):
        assert scipy.stats.kstest(noise[:, j].numpy(), "gumbel_r").pvalue > P_MIN
    r = np.corrcoef(noise.numpy().T)
    assert np.abs(r[np.triu_indices(4, 1)]).max() < 4 / np.sqrt(n)
    # the maximum is Gumbel(logsumexp(logits)) whoever wins
    top = (logits + noise).max(-1).values - torch.logsumexp(LOGITS, 0)
    assert scipy.stats.kstest(top.numpy(), "gumbel_r").pvalue > P_MIN


def test_conditional_gumbel_shapes_masks_dtype_and_generator():
    logits = torch.randn(3, 5, generator=gen(0))
    winner = gumbel_max_sample(logits, generator=gen(1))  # [3]
    noise = conditional_gumbel(logits, winner.expand(7, 3), generator=gen(2))
    assert noise.shape == (7, 3, 5) and noise.dtype == torch.float32
    assert torch.equal((logits + noise).argmax(-1), winner.expand(7, 3))
    assert torch.equal(noise, conditional_gumbel(logits, winner.expand(7, 3), generator=gen(2)))
    masked = torch.tensor([0.0, -torch.inf, 2.0, -torch.inf])
    g = conditional_gumbel(masked, torch.zeros(100, dtype=torch.long), generator=gen(3))
    assert bool((g[:, [1, 3]] == 0).all()) and bool(torch.isfinite(g).all())
    assert bool(((masked + g).argmax(-1) == 0).all())
    leaf = logits.clone().requires_grad_(True)
    assert not conditional_gumbel(leaf, winner).requires_grad


def test_conditional_gumbel_argument_checks():
    logits = torch.zeros(2, 3)
    with pytest.raises(TypeError, match="winner must be an integer"):
        conditional_gumbel(logits, torch.zeros(2))
    with pytest.raises(TypeError, match="winner must be an integer"):
        conditional_gumbel(logits, [0, 1])
    with pytest.raises(ValueError, match=r"winner must hold category indices in \[0, 3\)"):
        conditional_gumbel(logits, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="must broadcast"):
        conditional_gumbel(logits, torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="finite logit"):
        conditional_gumbel(torch.tensor([0.0, -torch.inf]), torch.tensor(1))
    with pytest.raises(TypeError, match="logits"):
        conditional_gumbel(torch.zeros(3, dtype=torch.long), torch.tensor(0))


# ------------------------------------------------------------------ Gumbel-Rao


def _gradients(name, node_fn, cost, n, uniforms, generator=None, **params):
    logits = LOGITS.clone().requires_grad_(True)
    out = surrogate(name, node_fn(logits, uniforms), cost, n, generator, **params)
    (grad,) = torch.autograd.grad(out.loss.sum(), logits)
    return out, grad


@pytest.mark.parametrize("kind", ["categorical", "bernoulli"])
def test_gumbel_rao_forward_is_st_gumbel_softmax_forward(kind):
    # on the same uniforms, the same samples and the same costs (the value of the loss)
    event = 1 if kind == "bernoulli" else 0
    u = StochasticNode(kind, LOGITS).uniforms(50, gen(0))

    def node_fn(logits, u):
        return StochasticNode(kind, logits, event_dims=event, fixed_uniforms=u)

    cost = COSTS["exp"] if kind == "categorical" else (lambda b: torch.exp(b @ COST_TABLE) / 10)
    rao, _ = _gradients("gumbel_rao", node_fn, cost, 50, u, gen(1), tau=0.5, n_conditional=3)
    st, _ = _gradients("st_gumbel_softmax", node_fn, cost, 50, u, tau=0.5)
    assert torch.equal(rao.samples, st.samples)
    assert torch.equal(rao.loss, st.loss) and torch.equal(rao.cost, st.cost)


def _problem(kind, cost_name):
    if kind == "categorical":
        return CategoricalProblem(LOGITS, COSTS[cost_name])
    # four Bernoullis with the same logits and a cost of the same shape in c.b
    return BernoulliProblem(LOGITS, COSTS[cost_name])


@pytest.mark.parametrize("kind, cost_name", [("categorical", "exp"), ("categorical", "square"),
                                             ("bernoulli", "quartic")])
def test_gumbel_rao_keeps_the_mean_and_lowers_the_variance(kind, cost_name):
    # Rao-Blackwellisation: E[gumbel_rao] = E[st_gumbel_softmax] at the same tau (theorem: the
    # tower property), and a smaller variance. Independent measurements of 20,000 estimates
    # each: every coordinate's difference within 4 standard errors of the difference
    problem = _problem(kind, cost_name)
    st = measure(problem, get_estimator("st_gumbel_softmax", tau=0.3), 1, 20_000, gen(10))
    rao = measure(problem, get_estimator("gumbel_rao", tau=0.3, n_conditional=10), 1, 20_000,
                  gen(11))
    se = torch.sqrt(st.variance / 20_000 + rao.variance / 20_000)
    z = (rao.mean - st.mean) / se
    assert z.abs().max() < 4, z
    # the biases are real (the check could fail): |bias| >> its noise for ST Gumbel here
    assert st.bias_norm > 4 * st.bias_noise
    # the variance with K = 10 conditional draws: measured at under half of ST Gumbel's;
    # the relative standard error of a variance from 20,000 draws is a few percent
    assert rao.variance_total < 0.6 * st.variance_total, (rao.variance_total,
                                                          st.variance_total)


def test_gumbel_rao_variance_falls_with_more_conditional_draws():
    problem = _problem("categorical", "exp")
    totals = [measure(problem, get_estimator("gumbel_rao", tau=0.3, n_conditional=k), 1,
                      20_000, gen(20 + k)).variance_total for k in (1, 4, 16)]
    assert totals[0] > 1.5 * totals[1] > 1.5 * 1.2 * totals[2], totals


def test_gumbel_rao_with_one_draw_has_st_gumbel_softmax_law():
    # n_conditional=1 is ST Gumbel-softmax in distribution (mean and variance, 4 SE)
    problem = _problem("categorical", "square")
    st = measure(problem, get_estimator("st_gumbel_softmax", tau=0.5), 1, 20_000, gen(30))
    one = measure(problem, get_estimator("gumbel_rao", tau=0.5, n_conditional=1), 1, 20_000,
                  gen(31))
    z = (one.mean - st.mean) / torch.sqrt((st.variance + one.variance) / 20_000)
    assert z.abs().max() < 4, z
    # the variance of a variance estimate: sqrt(2 / R) relative for a Gaussian; the
    # estimates are heavy-tailed, so allow 15%
    assert abs(one.variance_total / st.variance_total - 1) < 0.15


def test_gumbel_rao_parameters_are_checked_and_it_trains_with_tensor_tau():
    node = StochasticNode("categorical", LOGITS.clone().requires_grad_(True))
    with pytest.raises(ValueError, match="n_conditional"):
        surrogate("gumbel_rao", node, COSTS["square"], 2, n_conditional=0)
    with pytest.raises(TypeError, match="n_conditional"):
        surrogate("gumbel_rao", node, COSTS["square"], 2, n_conditional=2.0)
    with pytest.raises(ValueError, match="tau"):
        surrogate("gumbel_rao", node, COSTS["square"], 2, tau=0.0)
    # a batch of nodes with one tau per row (as the autoencoder passes them)
    logits = torch.randn(3, 2, 4, generator=gen(0), requires_grad=True)
    out = surrogate("gumbel_rao", StochasticNode("categorical", logits, event_dims=1),
                    lambda z: (z ** 2).sum((-1, -2)), 5, gen(1),
                    tau=torch.tensor([0.5, 1.0, 2.0]).view(3, 1, 1))
    out.loss.sum().backward()
    assert out.loss.shape == (3,) and torch.isfinite(logits.grad).all()


def test_gumbel_rao_respects_the_bernoulli_mask():
    logits = torch.zeros(2, 3, requires_grad=True)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    out = surrogate("gumbel_rao", StochasticNode("bernoulli", logits, event_dims=1, mask=mask),
                    lambda b: b.sum(-1), 20, gen(0))
    out.loss.sum().backward()
    assert bool((out.samples[..., ~mask] == 0).all())
    assert bool((logits.grad[~mask] == 0).all()) and bool((logits.grad[mask] != 0).all())


# ------------------------------------------------------------------ ReinMax


def _reference_reinmax_gradient(logits, index, tau, upstream):
    """The reinmax package's gradient (tests/_reinmax_reference.py) for the sample ``index``."""
    leaf = logits.detach().clone().requires_grad_(True)
    real = torch.multinomial
    torch.multinomial = lambda probs, num_samples, replacement: index.reshape(-1, 1)
    try:
        sample, _ = _reinmax_reference.reinmax(leaf, tau)
    finally:
        torch.multinomial = real
    (grad,) = torch.autograd.grad((sample * upstream).sum(), leaf)
    return sample.detach(), grad


@pytest.mark.parametrize("shape, tau", [((5, 4), 1.0), ((3, 2, 6), 0.5), ((8, 3), 2.0)])
def test_reinmax_matches_the_reinmax_package(shape, tau):
    g = gen(sum(shape))
    logits = 2 * torch.randn(*shape, generator=g, dtype=torch.float64)
    upstream = torch.randn(*shape, generator=g, dtype=torch.float64)
    leaf = logits.clone().requires_grad_(True)
    node = StochasticNode("categorical", leaf, event_dims=len(shape) - 1)
    out = surrogate("reinmax", node, lambda z: (z * upstream).flatten(1).sum(-1), 1, g,
                    tau=tau)
    (grad,) = torch.autograd.grad(out.loss.sum(), leaf)
    sample, expected = _reference_reinmax_gradient(logits, out.samples[0].argmax(-1), tau,
                                                    upstream)
    assert torch.equal(out.samples[0], sample)
    # the same formula, summed in another order: equal to rounding
    assert (grad - expected).abs().max() < 1e-12 * (1 + expected.abs().max())


def test_reinmax_bernoulli_is_the_two_category_categorical():
    # a Bernoulli with logit l is a categorical over {0, 1} with logits (0, l): on the same
    # samples, the gradients agree
    logits = torch.tensor([0.7, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    out = surrogate("reinmax", StochasticNode("bernoulli", logits, event_dims=1),
                    lambda b: torch.exp(b @ w), 64, gen(0), tau=1.5)
    (grad,) = torch.autograd.grad(out.loss.sum(), logits)
    pair = torch.stack([torch.zeros_like(logits), logits], -1).detach().requires_grad_(True)
    index = out.samples.long()  # [64, 3]
    u = torch.where(F.one_hot(index, 2) > 0, 1 - 1e-12, 0.5)
    cat = surrogate("reinmax", StochasticNode("categorical", pair, event_dims=1,
                                              fixed_uniforms=u),
                    lambda z: torch.exp(z[..., 1] @ w), 64, tau=1.5)
    assert torch.equal(cat.samples[..., 1], out.samples)
    (grad_pair,) = torch.autograd.grad(cat.loss.sum(), pair)
    assert (grad_pair[:, 1] - grad).abs().max() < 1e-12


def test_reinmax_is_exact_for_a_quadratic_at_tau_one_but_not_for_other_costs():
    # Liu et al.: second-order (Heun) accuracy, so no bias for a quadratic cost of one
    # categorical at tau = 1 (z-test, 4 SE on every coordinate; resolution: |bias| about 2
    # SE, printed by measure as bias_noise); the exp and quartic costs show a bias of many SE
    for cost_name, unbiased in [("square", True), ("exp", False), ("quartic", False)]:
        m = measure(CategoricalProblem(LOGITS, COSTS[cost_name]),
                    get_estimator("reinmax", tau=1.0), 1, 40_000, gen(40))
        if unbiased:
            assert m.max_abs_z < 4, m.bias_z
        else:
            assert m.bias_norm > 8 * m.bias_noise, (cost_name, m.bias_norm, m.bias_noise)


def test_reinmax_forward_is_the_exact_sample_and_respects_the_mask():
    u = StochasticNode("categorical", LOGITS).uniforms(30, gen(0))
    logits = LOGITS.clone().requires_grad_(True)
    out = surrogate("reinmax", StochasticNode("categorical", logits, fixed_uniforms=u),
                    COSTS["exp"], 30)
    st = surrogate("straight_through", StochasticNode("categorical", logits, fixed_uniforms=u),
                   COSTS["exp"], 30)
    assert torch.equal(out.samples, st.samples) and torch.equal(out.loss, st.loss)
    b_logits = torch.zeros(2, 3, requires_grad=True)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    out = surrogate("reinmax", StochasticNode("bernoulli", b_logits, event_dims=1, mask=mask),
                    lambda b: b.sum(-1), 20, gen(0))
    out.loss.sum().backward()
    assert bool((b_logits.grad[~mask] == 0).all()) and bool((b_logits.grad[mask] != 0).all())


@pytest.mark.parametrize("name, params", [("gumbel_rao", {"tau": 0.5, "n_conditional": 4}),
                                          ("reinmax", {"tau": 1.0})])
def test_the_new_estimators_run_through_the_lab(name, params):
    for problem in (CategoricalProblem(LOGITS.expand(2, 4), lambda z: (z @ COST_TABLE).sum(-1)),
                    BernoulliProblem(LOGITS, COSTS["square"])):
        est = get_estimator(name, **params)
        assert est.label.startswith({"gumbel_rao": "Gumbel-Rao", "reinmax": "ReinMax"}[name])
        m = measure(problem, est, 3, 200, gen(0))
        assert np.isfinite(m.mse) and m.variance_total > 0


def test_gradient_through_the_conditional_noise_would_change_the_mean():
    # gumbel_rao holds the conditional noise fixed. Differentiating through it as well (the
    # reading of Paulus et al.'s text that their released code does not follow) gives another
    # mean: on the exponential cost at tau = 0.5 it differs from ST Gumbel-softmax's by many
    # standard errors (measured: z of about 40), while the same construction with the noise
    # held fixed does not (z of about 1)
    n, k, tau = 20_000, 4, 0.5
    st = measure(_problem("categorical", "exp"), get_estimator("st_gumbel_softmax", tau=tau), 1,
                 n, gen(51))
    for through_noise in (True, False):
        g = gen(50)
        rows = LOGITS.expand(n, 4).clone().requires_grad_(True)  # one leaf row per estimate
        winner = gumbel_max_sample(rows.detach(), generator=g)
        hard = F.one_hot(winner, 4).to(rows.dtype)
        log_e = torch.log(-torch.log(torch.rand(k, n, 4, generator=g, dtype=rows.dtype)))
        top = (torch.logsumexp(rows, -1, keepdim=True)
               - log_e.gather(-1, winner.expand(k, n)[..., None]))
        perturbed = torch.where(hard > 0, top, -torch.logaddexp(-top, log_e - rows))
        if not through_noise:
            perturbed = rows + (perturbed - rows).detach()
        soft = torch.softmax(perturbed / tau, -1).mean(0)
        z = hard + (soft - soft.detach())
        (grads,) = torch.autograd.grad(COSTS["exp"](z).sum(), rows)
        se = torch.sqrt(grads.var(0) / n + st.variance / n)
        z_max = ((grads.mean(0) - st.mean) / se).abs().max()
        assert (z_max > 8) if through_noise else (z_max < 4), (through_noise, z_max)
