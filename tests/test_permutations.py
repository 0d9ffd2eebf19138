"""Tests of lib.permutations against independent oracles: itertools brute force for the Gibbs
law and its marginals, brute-force permanents, SciPy's assignment solver and brute-force argmax
for the matching, a quadrature for the n = 2 Gumbel-matching law, and chi-square tests of the
sampler's law.

Statistical checks use fixed seeds (deterministic outcomes) and P_MIN = 1e-3 for goodness of
fit; a test that two laws DIFFER asks for a p-value below 1e-12 and a TV gap of many SEs.
"""

import itertools
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.special
import scipy.stats
import torch

from lib import validate_args
from lib.permutations import (
    MAX_ENUMERATION_N,
    gumbel_matching_sample,
    gumbel_sinkhorn,
    matching,
    permutation_enumerate,
    permutation_index,
    permutation_log_probs,
    permutation_marginals,
    permutation_scores,
    sinkhorn,
)
from tests._helpers import assert_counts_match, gen

D = torch.float64


def brute_log_probs(x):
    """Gibbs log-probabilities of one [n, n] matrix, in itertools order, with Python floats."""
    n = x.shape[0]
    scores = [sum(float(x[i, s[i]]) for i in range(n)) for s in itertools.permutations(range(n))]
    log_z = scipy.special.logsumexp(scores)
    return np.array(scores) - log_z


def brute_permanent(a):
    """perm(A) = sum over permutations of prod_i A[i, s(i)] (numpy, any n <= 7)."""
    n = a.shape[0]
    if n == 0:
        return 1.0
    return sum(math.prod(a[i, s[i]] for i in range(n)) for s in itertools.permutations(range(n)))


def brute_matching(x):
    """The permutation maximising sum_i x[i, s(i)], by trying all of them."""
    n = x.shape[0]
    return max(itertools.permutations(range(n)), key=lambda s: sum(float(x[i, s[i]])
                                                                   for i in range(n)))


def to_matrix(sigma, dtype=D):
    return torch.nn.functional.one_hot(torch.as_tensor(sigma), len(sigma)).to(dtype)


# ------------------------------------------------------------------------------- Sinkhorn

@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_sinkhorn_is_doubly_stochastic(n):
    x = torch.randn(3, 2, n, n, generator=gen(n), dtype=D) * 2.0
    s = sinkhorn(x, n_iters=200)
    assert s.shape == x.shape and bool((s > 0).all())
    ones = torch.ones(3, 2, n, dtype=D)
    assert torch.allclose(s.sum(-2), ones, atol=1e-12)   # columns: normalised last
    assert torch.allclose(s.sum(-1), ones, atol=1e-9)    # rows: converged


def test_sinkhorn_is_a_diagonal_scaling_of_exp_x_over_tau():
    """Sinkhorn's theorem: S = diag(u) e^{X/tau} diag(v), so log S - X/tau = a_i + b_j, whose
    double centring is zero (an independent check of what the iterations converge to)."""
    x = torch.randn(4, 5, 5, generator=gen(1), dtype=D)
    for tau in (0.5, 1.0, 3.0):
        r = sinkhorn(x, n_iters=300, tau=tau).log() - x / tau
        centred = r - r.mean(-1, keepdim=True) - r.mean(-2, keepdim=True) + r.mean((-2, -1),
                                                                                   keepdim=True)
        assert centred.abs().max() < 1e-10


def test_sinkhorn_maximises_the_entropy_regularised_score():
    """S(X/tau) maximises <P, X> + tau H(P) over doubly stochastic P: random doubly stochastic
    competitors (mixtures of permutation matrices) all score lower."""
    x = torch.randn(4, 4, generator=gen(2), dtype=D)
    tau = 0.7

    def objective(p):
        return float((p * x).sum() - tau * (p * p.clamp_min(1e-300).log()).sum())

    best = objective(sinkhorn(x, 500, tau))
    perms = torch.nn.functional.one_hot(permutation_enumerate(4), 4).to(D)  # [24, 4, 4]
    w = torch.distributions.Dirichlet(torch.ones(24, dtype=D)).sample((200,))
    for p in torch.einsum("mr,rij->mij", w, perms):
        assert objective(p) < best


def test_sinkhorn_tends_to_the_matching_as_tau_falls():
    """Each row's argmax is the matching's column at tau = 0.01; where the best permutation
    beats the second best by >= 0.2 (3 of 24 random matrices here are closer ties, which need
    smaller tau), S(X/tau) is within 0.05 of the permutation matrix."""
    g = gen(3)
    close = 0
    for n in (2, 3, 4, 5):
        x = torch.randn(6, n, n, generator=g, dtype=D)
        s = sinkhorn(x, n_iters=2000, tau=0.01)
        top2 = permutation_scores(x).topk(min(2, math.factorial(n)), dim=-1).values
        for b in range(6):
            rows, cols = scipy.optimize.linear_sum_assignment(x[b].numpy(), maximize=True)
            assert (s[b].argmax(-1).numpy() == cols).all()
            if float(top2[b, 0] - top2[b, -1]) >= 0.2:
                close += 1
                assert float((s[b] - to_matrix(cols)).abs().max()) < 0.05
        err = [float((sinkhorn(x, 2000, tau) - matching(x)).abs().max()) for tau in (1, .1, .01)]
        assert err[0] > err[1] > err[2]
    assert close == 21


def test_sinkhorn_tau_tensor_and_float32():
    x = torch.randn(3, 4, 4, generator=gen(4))
    tau = torch.tensor([0.5, 1.0, 2.0]).view(3, 1, 1)
    s = sinkhorn(x, 30, tau)
    assert s.dtype == torch.float32
    for b in range(3):
        assert torch.allclose(s[b], sinkhorn(x[b], 30, float(tau[b])))


# ------------------------------------------------------------------------------- matching

def test_matching_matches_scipy_and_brute_force_in_a_batch():
    x = torch.randn(2, 3, 5, 5, generator=gen(5), dtype=D)
    m = matching(x)
    assert m.shape == x.shape and m.dtype == D
    for idx in itertools.product(range(2), range(3)):
        sigma = brute_matching(x[idx])
        assert torch.equal(m[idx], to_matrix(sigma))
        assert permutation_index(m[idx]) == permutation_scores(x[idx]).argmax()
    assert not matching(x.requires_grad_()).requires_grad


def test_permutation_enumerate_and_index_round_trip():
    for n in range(1, 7):
        perms = permutation_enumerate(n)
        assert perms.tolist() == [list(s) for s in itertools.permutations(range(n))]
        mats = torch.nn.functional.one_hot(perms, n).to(D)
        assert permutation_index(mats).tolist() == list(range(math.factorial(n)))


# ------------------------------------------------------------------------------- Gibbs law

@pytest.mark.parametrize("n", range(1, 7))
def test_log_probs_and_marginals_match_brute_force(n):
    x = torch.randn(2, n, n, generator=gen(10 + n), dtype=D) * 1.5
    lp = permutation_log_probs(x)
    assert lp.shape == (2, math.factorial(n))
    mu = permutation_marginals(x)
    for b in range(2):
        assert np.allclose(lp[b].numpy(), brute_log_probs(x[b]), atol=1e-12)
        p = np.exp(brute_log_probs(x[b]))
        brute_mu = np.zeros((n, n))
        for r, s in enumerate(itertools.permutations(range(n))):
            for i in range(n):
                brute_mu[i, s[i]] += p[r]
        assert np.allclose(mu[b].numpy(), brute_mu, atol=1e-12)
    ones = torch.ones(2, n, dtype=D)
    assert torch.allclose(mu.sum(-1), ones) and torch.allclose(mu.sum(-2), ones)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_marginals_are_a_permanent_ratio_and_the_log_permanent_gradient(n):
    x = torch.randn(n, n, generator=gen(20 + n), dtype=D, requires_grad=True)
    a = x.detach().exp().numpy()
    perm_a = brute_permanent(a)
    mu = permutation_marginals(x)
    for i, j in itertools.product(range(n), range(n)):
        minor = np.delete(np.delete(a, i, 0), j, 1)
        assert abs(float(mu[i, j].detach()) - a[i, j] * brute_permanent(minor) / perm_a) < 1e-12
    log_perm = torch.logsumexp(permutation_scores(x), -1)
    assert abs(float(log_perm.detach()) - math.log(perm_a)) < 1e-12
    grad = torch.autograd.grad(log_perm, x)[0]
    assert torch.allclose(grad, mu.detach(), atol=1e-12)


def test_gibbs_law_is_stable_for_large_scores():
    x = torch.randn(4, 4, generator=gen(6), dtype=D)
    for c in (-800.0, 800.0):
        assert torch.allclose(permutation_log_probs(x + c), permutation_log_probs(x), atol=1e-10)
    big = x * 300.0
    assert torch.isfinite(permutation_marginals(big)).all()


# ---------------------------------------------------------------- the Gumbel-matching law

def _sample_indices(x, n_samples, seed):
    return permutation_index(gumbel_matching_sample(x, n_samples, generator=gen(seed))).numpy()


def gm_identity_probability(d):
    """P(identity) under Gumbel-matching for n = 2: P(L1 + L2 > -d) = E[sigmoid(d + L)] with
    L, L1, L2 standard logistic (differences of two Gumbels), by quadrature."""
    def integrand(t):
        return scipy.special.expit(d + t) * scipy.special.expit(t) * scipy.special.expit(-t)
    return scipy.integrate.quad(integrand, -math.inf, math.inf)[0]


def test_gumbel_matching_for_n2_is_the_logistic_sum_law_not_gibbs():
    # fixed seed, 40000 samples: SE of a frequency <= 0.0025; the two laws are 0.086 apart
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=D)  # D = 2
    idx = _sample_indices(x, 40_000, seed=7)
    p_gm = gm_identity_probability(2.0)
    assert_counts_match(idx, [p_gm, 1 - p_gm])
    p_gibbs = float(permutation_log_probs(x)[0].exp())
    assert abs(p_gibbs - scipy.special.expit(2.0)) < 1e-12
    freq = float((idx == 0).mean())
    se = math.sqrt(p_gm * (1 - p_gm) / idx.size)
    assert p_gibbs - freq > 20 * se


def test_gumbel_matching_differs_from_gibbs_for_n4():
    """A chosen score matrix: the Gumbel-matching frequencies reject the Gibbs law (fixed
    seed; chi-square p < 1e-12, and the TV distance is above 10 of its SEs)."""
    x = torch.tensor([[2.0, 0.0, 0.0, 0.0],
                      [0.0, 1.0, 0.5, 0.0],
                      [0.0, 0.0, 0.0, 1.5],
                      [0.5, 0.0, 0.0, 0.0]], dtype=D)
    m = 40_000
    idx = _sample_indices(x, m, seed=8)
    p = permutation_log_probs(x).exp().numpy()
    counts = np.bincount(idx, minlength=24)
    assert scipy.stats.chisquare(counts, p * m).pvalue < 1e-12
    freq = counts / m
    tv = 0.5 * np.abs(freq - p).sum()
    se = math.sqrt(np.sum(p * (1 - p)) / m)  # SE of the sum of |freq - p|'s terms, a bound
    assert tv > 10 * se


@pytest.mark.parametrize("n", [2, 3, 4])
def test_gumbel_matching_is_uniform_when_every_permutation_scores_the_same(n):
    """X_ij = a_i + b_j gives every permutation the same score: both laws are uniform (the
    Gumbels are exchangeable)."""
    a = torch.randn(n, 1, generator=gen(30), dtype=D)
    b = torch.randn(1, n, generator=gen(31), dtype=D)
    x = a + b
    k = math.factorial(n)
    assert torch.allclose(permutation_log_probs(x).exp(), torch.full((k,), 1 / k, dtype=D))
    assert_counts_match(_sample_indices(x, 200 * k, seed=32 + n), np.full(k, 1 / k))


# ---------------------------------------------------------------------- Gumbel-Sinkhorn

def test_gumbel_sinkhorn_shares_noise_with_the_matching_sampler_and_tends_to_it():
    x = torch.randn(3, 4, 4, generator=gen(40), dtype=D)
    hard = gumbel_matching_sample(x, 50, generator=gen(41))
    soft = gumbel_sinkhorn(x, tau=0.01, n_iters=2000, n_samples=50, generator=gen(41))
    assert soft.shape == (50, 3, 4, 4)
    assert torch.equal(soft.argmax(-1), hard.argmax(-1))
    st = gumbel_sinkhorn(x, tau=0.5, n_iters=20, n_samples=50, hard=True, generator=gen(41))
    assert torch.allclose(st, hard, rtol=0, atol=1e-15)  # hard + soft - soft: rounding only


def test_straight_through_gumbel_sinkhorn_has_the_relaxed_gradient():
    x = torch.randn(4, 4, generator=gen(42), dtype=D, requires_grad=True)
    w = torch.randn(4, 4, generator=gen(43), dtype=D)
    kw = dict(tau=0.5, n_iters=30, n_samples=5)
    g_soft = torch.autograd.grad((gumbel_sinkhorn(x, generator=gen(44), **kw) * w).sum(), x)[0]
    g_st = torch.autograd.grad((gumbel_sinkhorn(x, hard=True, generator=gen(44), **kw) * w)
                               .sum(), x)[0]
    assert torch.allclose(g_soft, g_st, atol=1e-12) and g_soft.abs().max() > 0.01


def test_generator_convention():
    x = torch.randn(4, 4, generator=gen(50))
    a = gumbel_sinkhorn(x, n_samples=3, generator=gen(51))
    assert torch.equal(a, gumbel_sinkhorn(x, n_samples=3, generator=gen(51)))
    assert not torch.equal(a, gumbel_sinkhorn(x, n_samples=3, generator=gen(52)))
    torch.manual_seed(0)
    b = gumbel_matching_sample(x, 2)  # generator=None: the global generator
    torch.manual_seed(0)
    assert torch.equal(b, gumbel_matching_sample(x, 2))
    # type and device checks of the generator: tests/test_devices.py (GENERATOR_CALLS)


# ------------------------------------------------------------------------------ bad input

def test_bad_input_is_refused_with_a_message():
    x = torch.zeros(3, 3)
    with pytest.raises(TypeError, match="log_alpha must be a floating-point"):
        sinkhorn(torch.zeros(3, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="log_alpha must be a floating-point torch.Tensor"):
        matching([[0.0]])
    for bad in (torch.zeros(3), torch.zeros(2, 3), torch.zeros(0, 0)):
        with pytest.raises(ValueError, match=r"shape \[..., n, n\]"):
            sinkhorn(bad)
    with pytest.raises(ValueError, match="n_iters must be >= 1"):
        sinkhorn(x, n_iters=0)
    with pytest.raises(TypeError, match="n_iters must be an int"):
        sinkhorn(x, n_iters=2.0)
    with pytest.raises(ValueError, match="tau"):
        sinkhorn(x, tau=0.0)
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        gumbel_sinkhorn(x, n_samples=0)
    with pytest.raises(TypeError, match="hard must be a bool"):
        gumbel_sinkhorn(x, hard=1)
    n = MAX_ENUMERATION_N + 1
    for f in (permutation_log_probs, permutation_marginals, permutation_scores):
        with pytest.raises(ValueError, match="enumeration needs n <= 8"):
            f(torch.zeros(n, n))
    with pytest.raises(ValueError, match="enumeration needs n <= 8"):
        permutation_enumerate(n)
    with validate_args(True):
        with pytest.raises(ValueError, match="log_alpha must be finite"):
            sinkhorn(torch.tensor([[0.0, float("nan")], [0.0, 0.0]]))
        with pytest.raises(ValueError, match="perm must hold permutation matrices"):
            permutation_index(torch.ones(2, 2))
    with validate_args(False):
        assert sinkhorn(torch.tensor([[0.0, float("nan")], [0.0, 0.0]])).isnan().any()
