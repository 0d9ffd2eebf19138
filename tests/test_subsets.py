"""Tests of lib.subsets against independent oracles: enumeration, chi-square tests of the samplers'
laws, closed forms of the estimators' expectations, and the exact gradient.

Statistical checks use fixed seeds, P_MIN = 1e-3 for goodness of fit, and tolerances of 4-5
standard errors for means.
"""

import itertools
import math

import numpy as np
import pytest
import scipy.stats
import torch

from lib import validate_args
from lib.estimators import StochasticNode, surrogate
from lib.rationales import RationaleModel, make_synthetic_reviews, rationale_loss
from lib.subsets import (
    SUBSET_ESTIMATORS,
    KSubsetNode,
    gumbel_topk_mask,
    imle_topk,
    ksubset_enumerate,
    ksubset_expectation,
    ksubset_linear_expectation,
    ksubset_log_partition,
    ksubset_log_prob,
    ksubset_marginals,
    ksubset_outcomes,
    ksubset_sample,
    ksubset_sample_from,
    relaxed_topk,
    simple_topk,
    st_relaxed_topk,
    subset_surrogate,
    sum_of_gamma_noise,
    topk_mask,
    topk_subset_log_probs,
)
from tests._helpers import P_MIN, gen

D = torch.float64


def brute_log_partition(theta, k):
    """log sum over |S| = k of exp(sum theta_S), by itertools (independent of the DP)."""
    n = theta.shape[-1]
    terms = [theta[..., list(c)].sum(-1) for c in itertools.combinations(range(n), k)]
    return torch.logsumexp(torch.stack(terms, -1), -1)


def brute_marginals(theta, k):
    n = theta.shape[-1]
    combos = list(itertools.combinations(range(n), k))
    log_w = torch.stack([theta[..., list(c)].sum(-1) for c in combos], -1)
    p = torch.softmax(log_w, -1)
    mu = torch.zeros_like(theta)
    for j, c in enumerate(combos):
        for i in c:
            mu[..., i] += p[..., j]
    return mu


def subset_index(z):
    """Row of ksubset_enumerate(n, k) equal to each 0/1 subset (lexicographic combinations)."""
    n, k = z.shape[-1], int(z[0].sum())
    table = {c: r for r, c in enumerate(itertools.combinations(range(n), k))}
    return np.array([table[tuple(np.flatnonzero(row))] for row in z.numpy().astype(int)])


def chi_square_pvalue(counts, probs):
    counts = np.asarray(counts, dtype=float)
    expected = np.asarray(probs, dtype=float) * counts.sum()
    assert expected.min() >= 5, "test design: chi-square needs expected counts >= 5"
    return scipy.stats.chisquare(counts, expected).pvalue


# ---------------------------------------------------------------------- the DP vs enumeration

@pytest.mark.parametrize("n", range(1, 9))
def test_partition_and_marginals_match_enumeration_for_every_k(n):
    g = gen(100 + n)
    for k in range(1, n + 1):
        theta = torch.randn(3, n, generator=g, dtype=D) * 2.0  # fresh inputs per (n, k)
        assert torch.allclose(ksubset_log_partition(theta, k), brute_log_partition(theta, k),
                              rtol=1e-12, atol=1e-12)
        mu = ksubset_marginals(theta, k)
        assert torch.allclose(mu, brute_marginals(theta, k), rtol=1e-10, atol=1e-12)
        assert torch.allclose(mu.sum(-1), torch.full((3,), float(k), dtype=D), atol=1e-12)


def test_marginals_are_the_gradient_of_the_log_partition():
    theta = torch.randn(4, 7, generator=gen(1), dtype=D, requires_grad=True)
    grad = torch.autograd.grad(ksubset_log_partition(theta, 3).sum(), theta)[0]
    assert torch.allclose(ksubset_marginals(theta, 3), grad, rtol=1e-12, atol=1e-13)


def test_dp_is_stable_for_large_logits():
    """Shifting every logit by c multiplies each subset's weight by e^{kc}: log Z moves by kc,
    the marginals not at all, for shifts that overflow exp."""
    theta = torch.randn(6, generator=gen(2), dtype=D)
    for c in (-800.0, 800.0):
        assert torch.allclose(ksubset_log_partition(theta + c, 2),
                              ksubset_log_partition(theta, 2) + 2 * c, rtol=1e-14)
        assert torch.allclose(ksubset_marginals(theta + c, 2), ksubset_marginals(theta, 2),
                              atol=1e-12)
    spread = torch.tensor([500.0, -500.0, 0.0, 499.0], dtype=D)  # weights e^1000 apart
    mu = ksubset_marginals(spread, 2)
    assert torch.isfinite(mu).all() and torch.allclose(mu.sum(), torch.tensor(2.0, dtype=D))
    assert torch.allclose(mu, brute_marginals(spread, 2), atol=1e-12)


def test_padding_is_never_chosen_and_matches_the_shorter_row():
    theta = torch.randn(2, 7, generator=gen(3), dtype=D)
    mask = torch.tensor([[1, 1, 0, 1, 1, 0, 1], [1] * 7], dtype=torch.bool)
    mu = ksubset_marginals(theta, 3, mask)
    short = theta[0, mask[0]]
    assert torch.allclose(mu[0, mask[0]], brute_marginals(short, 3), atol=1e-12)
    assert bool((mu[0, ~mask[0]] == 0).all())
    assert torch.allclose(ksubset_log_partition(theta, 3, mask)[0],
                          brute_log_partition(short, 3), atol=1e-12)
    grad = torch.autograd.grad(ksubset_marginals(theta.requires_grad_(), 3, mask).sum(),
                               theta)[0]
    assert torch.isfinite(grad).all()


def test_outcomes_log_prob_and_expectations():
    theta = torch.randn(2, 5, generator=gen(4), dtype=D, requires_grad=True)
    z, p = ksubset_outcomes(theta, 2)
    assert z.shape == (10, 2, 5) and p.shape == (10, 2)
    assert torch.allclose(p.sum(0), torch.ones(2, dtype=D))
    assert torch.allclose(z[:, 0], ksubset_enumerate(5, 2, dtype=D))
    w = torch.randn(5, generator=gen(5), dtype=D)
    assert torch.allclose(ksubset_expectation(theta, 2, lambda z: z @ w),
                          ksubset_linear_expectation(theta, 2, w))
    assert torch.allclose(ksubset_log_prob(z, theta, 2).exp(), p)
    with validate_args(True), pytest.raises(ValueError, match="exactly k=2 ones"):
        ksubset_log_prob(torch.ones(5, dtype=D), theta, 2)


def test_argument_checks():
    theta = torch.zeros(4)
    with pytest.raises(ValueError, match="k"):
        ksubset_marginals(theta, 5)
    with pytest.raises(ValueError, match="k"):
        ksubset_marginals(theta, 0)
    with pytest.raises(TypeError, match="k"):
        ksubset_marginals(theta, 2.0)
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        ksubset_marginals(theta, 2, torch.ones(4))
    with pytest.raises(ValueError, match="mask must have the logits' shape"):
        ksubset_marginals(theta, 2, torch.ones(3, dtype=torch.bool))
    with validate_args(True), pytest.raises(ValueError, match="at least k=2 real items"):
        ksubset_marginals(theta, 2, torch.tensor([True, False, False, False]))
    with validate_args(True), pytest.raises(ValueError, match="finite"):
        ksubset_marginals(torch.tensor([0.0, math.inf, 0.0]), 1)


# ------------------------------------------------------------------------- the samplers' laws

@pytest.mark.parametrize("k", [1, 2, 3])
def test_sampler_law_matches_the_exact_law(k):
    """Chi-square over the C(6, k) subsets (6 to 20 cells), 40,000 samples: at P_MIN = 1e-3
    the test has power about 1/2 against a law at noncentrality N sum (p' - p)^2 / p of about
    20 to 25, e.g. one subset of probability 0.05 drawn with probability 0.055."""
    theta = torch.randn(6, generator=gen(10 + k), dtype=D)
    z = ksubset_sample(theta, k, 40_000, generator=gen(20 + k))
    assert bool((z.sum(-1) == k).all())
    counts = np.bincount(subset_index(z), minlength=math.comb(6, k))
    assert chi_square_pvalue(counts, ksubset_outcomes(theta, k)[1].detach()) > P_MIN


def test_sampler_law_with_padding_and_a_batch():
    theta = torch.randn(2, 6, generator=gen(30), dtype=D)
    mask = torch.tensor([[1, 0, 1, 1, 0, 1], [1] * 6], dtype=torch.bool)
    z = ksubset_sample(theta, 2, 30_000, mask=mask, generator=gen(31))
    assert bool((z[:, 0, ~mask[0]] == 0).all()) and bool((z.sum(-1) == 2).all())
    for row in range(2):
        z_row = z[:, row]
        _, p = ksubset_outcomes(theta[row], 2, mask[row])
        keep = p.detach() > 0
        counts = np.bincount(subset_index(z_row), minlength=15)
        assert counts[~keep.numpy()].sum() == 0
        assert chi_square_pvalue(counts[keep.numpy()], p.detach()[keep]) > P_MIN


def test_the_sampler_takes_every_item_when_k_is_the_number_of_real_items():
    theta = torch.tensor([40.0, -40.0, 3.0], dtype=D)
    z = ksubset_sample_from(torch.full((5, 3), 1 - 1e-16, dtype=D), theta, 3)
    assert bool((z == 1).all())


def test_gumbel_topk_follows_plackett_luce_not_the_ksubset_law():
    theta = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5], dtype=D)
    pl = topk_subset_log_probs(theta, 2).exp()
    cp = ksubset_outcomes(theta, 2)[1].detach()
    assert torch.allclose(pl.sum(), torch.tensor(1.0, dtype=D))
    assert 0.5 * (pl - cp).abs().sum() > 0.05  # two different laws on the same logits
    z = gumbel_topk_mask(theta, 2, 40_000, generator=gen(40))
    counts = np.bincount(subset_index(z), minlength=10)
    assert chi_square_pvalue(counts, pl) > P_MIN
    assert chi_square_pvalue(counts, cp) < 1e-12  # and clearly not the k-subset law
    # k = 1: both are the softmax
    assert torch.allclose(topk_subset_log_probs(theta, 1).exp(),
                          ksubset_outcomes(theta, 1)[1].detach())


def test_sum_of_gamma_noise_sums_to_about_a_gumbel():
    """k copies of the noise add up to a Gumbel as n_terms grows: with n_terms = 100 the mean
    and variance of the sum are those of a standard Gumbel up to 0.01 (truncation, O(1/100))
    plus 5 standard errors of 20,000 draws (SE of a Gumbel's variance: var sqrt((2 + 2.4)/N))."""
    n = 20_000
    total = sum_of_gamma_noise((n, 3), 3, n_terms=100, dtype=D, generator=gen(50)).sum(-1)
    gumbel_var = math.pi**2 / 6
    assert abs(total.mean().item() - 0.5772156649) < 0.01 + 5 * math.sqrt(gumbel_var / n)
    assert abs(total.var().item() - gumbel_var) < 0.01 + 5 * gumbel_var * math.sqrt(4.4 / n)


# ------------------------------------------------------------------------------ relaxations

@pytest.mark.parametrize("method", ["softmax", "sigmoid"])
def test_relaxed_topk_sums_to_k_and_tends_to_the_hard_top_k(method):
    x = torch.randn(200, 7, generator=gen(60), dtype=D) * 2
    sorted_x = x.sort(-1, descending=True).values
    gap = (sorted_x[:, 2] - sorted_x[:, 3]).min()  # margin of the top 3
    zero = torch.zeros(7, dtype=D)
    for tau in (2.0, 1.0, 0.3):
        y = relaxed_topk(x, 3, tau, noise=zero, method=method)
        assert torch.allclose(y.sum(-1), torch.full((200,), 3.0, dtype=D), atol=1e-9)
        assert bool((y >= 0).all())
    # the limit is pointwise: tau must be small against every gap among the top k + 1 (the
    # successive softmax splits a unit between near-tied items at any rank)
    clear = (sorted_x[:, :3] - sorted_x[:, 1:4]).min(-1).values > 0.5
    assert 20 <= int(clear.sum()) < 200 and gap > 0
    y = relaxed_topk(x[clear], 3, 0.01, noise=zero, method=method)
    assert (y - topk_mask(x[clear], 3)).abs().max() < 1e-6


def test_sigmoid_relaxation_stays_in_the_unit_interval_and_its_gradient_is_implicit():
    x = torch.randn(50, 6, generator=gen(61), dtype=D) * 3
    for tau in (5.0, 1.0, 0.1):
        y = relaxed_topk(x, 2, tau, noise=torch.zeros(6, dtype=D), method="sigmoid")
        assert bool(((y >= 0) & (y <= 1)).all())
    x0 = x[0].clone().requires_grad_()

    def f(v):
        return relaxed_topk(v, 2, 0.7, noise=torch.zeros(6, dtype=D), method="sigmoid")

    jac = torch.autograd.functional.jacobian(f, x0)
    eye = torch.eye(6, dtype=D) * 1e-6
    numeric = torch.stack([(f(x0.detach() + e) - f(x0.detach() - e)) / 2e-6 for e in eye], 1)
    assert torch.allclose(jac, numeric, atol=1e-7)


def test_successive_softmax_can_exceed_one():
    """The documented counterexample: a near-tie at the second pick, then a third pick that
    gives the first row's item a whole unit again."""
    x = torch.tensor([-0.15476, -2.4409, -1.4767, 0.023140, 1.7092, -3.8039, -0.00045, -4.1681],
                     dtype=D)
    y = relaxed_topk(x, 3, 0.1, noise=torch.zeros(8, dtype=D))
    assert y.max() > 1.01
    assert relaxed_topk(x, 3, 0.1, noise=torch.zeros(8, dtype=D), method="sigmoid").max() <= 1


def test_relaxed_top_1_is_the_gumbel_softmax():
    logits = torch.randn(4, 5, generator=gen(62), dtype=D)
    u = StochasticNode("categorical", logits).uniforms(3, gen(63))
    cat = StochasticNode("categorical", logits).relaxed_from(u, 0.5)
    sub = KSubsetNode(logits, 1).relaxed_from(u, 0.5)
    assert torch.allclose(cat, sub, atol=1e-14)


def test_st_relaxed_topk_is_hard_forward_and_relaxed_backward():
    logits = torch.randn(6, generator=gen(64), dtype=D, requires_grad=True)
    noise = -torch.log(-torch.log(torch.rand(6, generator=gen(65), dtype=D)))
    z = st_relaxed_topk(logits, 2, 0.5, noise=noise)
    assert torch.equal(z.detach(), topk_mask(logits + noise, 2))
    w = torch.randn(6, generator=gen(66), dtype=D)
    g_st = torch.autograd.grad((z * w).sum(), logits)[0]
    g_soft = torch.autograd.grad((relaxed_topk(logits, 2, 0.5, noise=noise) * w).sum(), logits)[0]
    assert torch.allclose(g_st, g_soft)


# ---------------------------------------------------------- estimators vs the exact gradient

def _exact_gradient(theta, k, cost):
    leaf = theta.detach().clone().requires_grad_()
    return torch.autograd.grad(ksubset_expectation(leaf, k, cost).sum(), leaf)[0]


def _estimates(name, theta, k, cost, repeats, seed, n_samples=1, **params):
    """[repeats, *theta.shape] independent estimates, one backward pass."""
    leaf = theta.detach().expand(repeats, *theta.shape).clone().requires_grad_()
    out = subset_surrogate(name, KSubsetNode(leaf, k), cost, n_samples, gen(seed), **params)
    return torch.autograd.grad(out.loss.sum(), leaf)[0]


W = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0, 0.0], dtype=D)
THETA = torch.tensor([0.3, -0.5, 1.0, 0.0, -1.2, 0.7], dtype=D)


def quadratic(z):
    return ((z * W).sum(-1) - 1.0) ** 2


def linear(z):
    return (z * W).sum(-1)


def test_simple_is_exact_with_zero_variance_for_additive_costs():
    exact = _exact_gradient(THETA, 3, linear)
    est = _estimates("simple", THETA, 3, linear, 50, 70)
    assert torch.allclose(est, exact.expand_as(est), atol=1e-12)


def test_simple_is_straight_through_on_a_subset_node():
    a = _estimates("simple", THETA, 3, quadratic, 20, 71)
    b = _estimates("straight_through", THETA, 3, quadratic, 20, 71)
    assert torch.equal(a, b)


def test_simple_mean_is_its_closed_form_and_differs_from_the_exact_gradient():
    """E[SIMPLE] = J_mu^T E[grad f(z)], by enumeration; on the quadratic it is not the exact
    gradient (the test shows a bias of > 10 SE), and the sample mean meets the closed form."""
    theta = THETA.clone().requires_grad_()
    z, p = ksubset_outcomes(THETA, 3)
    zz = z.clone().requires_grad_()
    grad_f = torch.autograd.grad(quadratic(zz).sum(), zz)[0]  # [M, n]
    mean_grad_f = (p.detach().unsqueeze(-1) * grad_f).sum(0)
    closed = torch.autograd.grad((ksubset_marginals(theta, 3) * mean_grad_f).sum(), theta)[0]
    est = _estimates("simple", THETA, 3, quadratic, 20_000, 72)
    se = est.std(0) / math.sqrt(est.shape[0])
    assert bool(((est.mean(0) - closed).abs() < 5 * se + 1e-12).all())
    exact = _exact_gradient(THETA, 3, quadratic)
    assert ((closed - exact).abs() / (se + 1e-12)).max() > 10


@pytest.mark.parametrize("cost", [quadratic, linear], ids=["quadratic", "linear"])
def test_reinforce_loo_is_unbiased_for_subsets(cost):
    exact = _exact_gradient(THETA, 3, cost)
    est = _estimates("reinforce_loo", THETA, 3, cost, 20_000, 73, n_samples=2)
    se = est.std(0) / math.sqrt(est.shape[0])
    assert bool(((est.mean(0) - exact).abs() < 5 * se).all())


@pytest.mark.parametrize("name", ["st_gumbel_softmax", "gumbel_softmax"])
def test_top_k_relaxations_are_biased_for_the_ksubset_law_even_on_additive_costs(name):
    """ST top-k and relaxed top-k differentiate a relaxation of the Plackett-Luce law: on the
    linear cost, where SIMPLE is exact, their mean misses the exact k-subset gradient by more
    than 10 SE in some coordinate, while still pointing the same way (cosine > 0.9)."""
    exact = _exact_gradient(THETA, 3, linear)
    est = _estimates(name, THETA, 3, linear, 20_000, 79, tau=0.5)
    se = est.std(0) / math.sqrt(est.shape[0])
    assert ((est.mean(0) - exact).abs() / se).max() > 10
    assert torch.nn.functional.cosine_similarity(est.mean(0), exact, 0) > 0.9


def test_imle_forward_and_backward_by_hand():
    """No noise: forward top-k(theta); backward (top-k(theta) - top-k(theta - lam g)) / lam."""
    theta = torch.tensor([2.0, 1.0, 0.0, -1.0], dtype=D, requires_grad=True)
    z = imle_topk(theta, 2, 1, lam=2.0, noise_temperature=0.0)
    assert torch.equal(z.detach(), torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=D))
    g = torch.tensor([[0.0, 1.0, -1.0, 0.0]], dtype=D)  # target: 2, 3->? theta' = [2,-1,2,-1]
    grad = torch.autograd.grad((z * g).sum(), theta)[0]
    assert torch.equal(grad, torch.tensor([0.0, 0.5, -0.5, 0.0], dtype=D))
    small = torch.autograd.grad((imle_topk(theta, 2, 1, lam=0.1, noise_temperature=0.0)
                                 * g).sum(), theta)[0]
    assert bool((small == 0).all())  # a step too small to change the top k: zero gradient


def test_imle_points_downhill_on_average():
    """On the linear cost, the mean I-MLE estimate has a positive inner product with the exact
    gradient (a descent direction), by more than 5 standard errors."""
    exact = _exact_gradient(THETA, 3, linear)
    est = _estimates("imle", THETA, 3, linear, 4000, 74, lam=1.0)
    dots = est @ exact
    assert dots.mean() > 5 * dots.std() / math.sqrt(dots.shape[0])


def test_every_subset_estimator_runs_and_returns_subsets():
    for name in SUBSET_ESTIMATORS:
        params = {"tau": 0.5} if "gumbel" in name else {}
        leaf = THETA.expand(3, 6).clone().requires_grad_()
        out = subset_surrogate(name, KSubsetNode(leaf, 2), quadratic, 2, gen(75), **params)
        assert out.loss.shape == (3,) and out.weights.shape[1:] == (3,)
        assert torch.allclose(out.weights.sum(0), torch.ones(3, dtype=D))
        g = torch.autograd.grad(out.loss.sum(), leaf)[0]
        assert torch.isfinite(g).all()
    with pytest.raises(ValueError, match="does not take"):
        subset_surrogate("imle", KSubsetNode(THETA, 2), quadratic, tau=1.0)
    with pytest.raises(TypeError, match="KSubsetNode"):
        subset_surrogate("simple", StochasticNode("bernoulli", THETA), quadratic)


def test_registry_exact_on_a_subset_node_is_the_enumeration():
    leaf = THETA.clone().requires_grad_()
    out = surrogate("exact", KSubsetNode(leaf, 3), quadratic)
    assert torch.allclose(out.loss, ksubset_expectation(THETA, 3, quadratic))
    assert out.samples.shape == (20, 6)


def test_node_fixed_uniforms_give_the_same_samples():
    u = KSubsetNode(THETA, 2).uniforms(4, gen(76))
    node = KSubsetNode(THETA, 2, fixed_uniforms=u)
    assert torch.equal(node.sample(4), node.sample(4))
    assert torch.equal(node.sample(4), ksubset_sample_from(u, THETA, 2))
    with pytest.raises(ValueError, match="fixed_uniforms"):
        KSubsetNode(THETA, 2, fixed_uniforms=torch.rand(6))


def test_simple_topk_with_uniforms_matches_the_node():
    u = KSubsetNode(THETA, 2).uniforms(5, gen(77))
    assert torch.equal(simple_topk(THETA, 2, 5, u=u).detach(), ksubset_sample_from(u, THETA, 2))


# ------------------------------------------------------------------------------ rationales

def test_rationale_loss_keeps_exactly_k_tokens():
    data = make_synthetic_reviews(6, seed=0)
    torch.manual_seed(0)
    model = RationaleModel(len(data.vocab)).double()
    exact = rationale_loss(model, data.tokens, data.mask, data.labels, "exact", k=2)
    real = data.mask.sum()
    assert torch.allclose(exact.kept, torch.tensor(2 * 6 / real.item(), dtype=exact.kept.dtype))
    for name in SUBSET_ESTIMATORS:
        out = rationale_loss(model, data.tokens, data.mask, data.labels, name, k=2,
                             n_samples=2, generator=gen(78))
        assert torch.allclose(out.kept, exact.kept)
        out.loss.backward()
    with pytest.raises(ValueError, match="supports ksubset nodes only, got a bernoulli node"):
        rationale_loss(model, data.tokens, data.mask, data.labels, "imle")
