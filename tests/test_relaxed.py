"""Tests of lib.relaxed against torch.distributions, SciPy and closed forms."""

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
import torch
from torch.distributions import RelaxedBernoulli, RelaxedOneHotCategorical

import lib.relaxed
from lib.relaxed import concrete_log_prob, gumbel_softmax, relaxed_bernoulli, tempered_sample
from tests._helpers import P_MIN, assert_close, assert_counts_match, gen

LOGITS = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.0])

# ---------------------------------------------------------------- gumbel_softmax


@pytest.mark.parametrize("tau", [0.1, 1.0, 10.0])
def test_argmax_of_gumbel_softmax_is_softmax_distributed_for_every_tau(tau):
    samples = gumbel_softmax(LOGITS.expand(20_000, -1), tau, generator=gen(0))
    assert_counts_match(samples.argmax(-1), torch.softmax(LOGITS.double(), -1))


def test_hard_gumbel_softmax_is_an_exact_categorical_sample():
    samples = gumbel_softmax(LOGITS.expand(20_000, -1), 0.3, hard=True, generator=gen(1))
    assert_counts_match(samples.argmax(-1), torch.softmax(LOGITS.double(), -1))


def test_gumbel_softmax_matches_its_formula_computed_independently():
    """softmax((logits + G)/tau) with G = -log(-log U) recomputed in NumPy float64."""
    logits = torch.randn(4, 6, generator=gen(2), dtype=torch.float64)
    u = torch.rand(logits.shape, generator=gen(3), dtype=torch.float64).numpy()
    g = -np.log(-np.log(u))
    expected = scipy.special.softmax((logits.numpy() + g) / 0.7, axis=-1)
    actual = gumbel_softmax(logits, 0.7, generator=gen(3))
    np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-12)


def _sample_and_grad(logits, tau, hard, seed, **kwargs):
    leaf = logits.clone().requires_grad_(True)
    y = gumbel_softmax(leaf, tau, hard=hard, generator=gen(seed) if seed is not None else None,
                       **kwargs)
    weights = torch.linspace(-1.0, 2.0, y.shape[-1], dtype=y.dtype)
    (grad,) = torch.autograd.grad((y * weights).sum(), leaf)
    return y.detach(), grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tau", [0.5, 0.3, 2.7])
@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax_fast_path_gives_the_same_bits(monkeypatch, dtype, tau, hard):
    """The fast path for plain float32/float64 CPU tensors (cached 0-d tensors instead of
    Python numbers, the lower clamp only, torch.rand_like) against the general path, which
    torch.compile and other devices take: the same samples and gradients, bit for bit."""
    cases = [(torch.randn(1, 10, generator=gen(6), dtype=dtype), -1, 0),
             (torch.randn(64, 7, generator=gen(7), dtype=dtype), -1, 1),
             (torch.randn(5, 4, generator=gen(8), dtype=dtype).t(), 0, 2),  # non-contiguous
             (torch.randn(3, dtype=dtype).expand(4, 3), -1, None)]  # default generator
    fast = []
    for logits, dim, seed in cases:
        torch.manual_seed(9)
        fast.append(_sample_and_grad(logits, tau, hard, seed, dim=dim))
    monkeypatch.setattr(lib.relaxed, "_is_compiling", lambda: True)  # the general path
    for (logits, dim, seed), (y, grad) in zip(cases, fast):
        torch.manual_seed(9)
        y_general, grad_general = _sample_and_grad(logits, tau, hard, seed, dim=dim)
        assert torch.equal(y, y_general) and torch.equal(grad, grad_general)


def test_soft_sample_distribution_matches_relaxed_one_hot_categorical():
    logits, tau, n_samples = LOGITS[:3], 0.5, 4000
    ours = gumbel_softmax(logits.expand(n_samples, -1), tau, generator=gen(4))
    torch.manual_seed(5)
    theirs = RelaxedOneHotCategorical(torch.tensor(tau), logits=logits).sample((n_samples,))
    for k in range(3):
        assert scipy.stats.ks_2samp(ours[:, k].numpy(), theirs[:, k].numpy()).pvalue > P_MIN


def test_gumbel_softmax_rows_sum_to_one_and_keep_dtype():
    for dtype in (torch.float32, torch.float64):
        y = gumbel_softmax(torch.randn(8, 5, dtype=dtype, generator=gen(6)), 0.5, generator=gen(7))
        assert y.dtype == dtype
        assert_close(y.sum(-1), torch.ones(8, dtype=dtype))
    y = gumbel_softmax(torch.randn(5, 8, generator=gen(6)), 0.5, dim=0, generator=gen(7))
    assert_close(y.sum(0), torch.ones(8))


def test_hard_forward_is_one_hot_and_gradient_is_the_soft_ones():
    logits = torch.randn(16, 6, generator=gen(8), requires_grad=True)
    weights = torch.randn(16, 6, generator=gen(9))
    soft = gumbel_softmax(logits, 0.5, generator=gen(10))
    hard = gumbel_softmax(logits, 0.5, hard=True, generator=gen(10))
    one_hot = torch.nn.functional.one_hot(soft.argmax(-1), 6).float()
    assert torch.equal(hard, one_hot)  # same noise: the one-hot of the soft sample's argmax
    (grad_soft,) = torch.autograd.grad((soft * weights).sum(), logits)
    (grad_hard,) = torch.autograd.grad((hard * weights).sum(), logits)
    assert torch.equal(grad_hard, grad_soft)


def test_same_seed_same_noise_and_tau_tensor():
    logits = torch.randn(3, 4, generator=gen(11))
    first = gumbel_softmax(logits, generator=gen(1))
    assert torch.equal(first, gumbel_softmax(logits, generator=gen(1)))
    tau = torch.tensor([[0.5], [1.0], [2.0]])
    y = gumbel_softmax(logits, tau, generator=gen(12))
    for i in range(3):
        expected = gumbel_softmax(logits, float(tau[i]), generator=gen(12))[i]
        assert_close(y[i], expected)


def test_gumbel_softmax_extreme_inputs_stay_finite():
    logits = torch.tensor([[1e4, -1e4, 0.0, -math.inf], [-1e4, -1e4, -math.inf, 3.0]])
    logits.requires_grad_(True)
    weights = torch.randn(2, 4, generator=gen(13))
    for hard in (False, True):
        for tau in (1e-3, 1.0, 1e3):
            y = gumbel_softmax(logits, tau, hard=hard, generator=gen(14))
            (grad,) = torch.autograd.grad((y * weights).sum(), logits)
            assert torch.isfinite(y).all() and torch.isfinite(grad).all()
            assert y[0, 3] == 0 and y[1, 2] == 0 and grad[0, 3] == 0 and grad[1, 2] == 0


def test_learned_temperature_gets_a_finite_gradient_with_masked_logits():
    """A masked (-inf) category must act like a very negative logit, also for d/dtau."""
    masked = torch.tensor([[0.0, 1.0, -math.inf, 0.5]])
    very_negative = torch.tensor([[0.0, 1.0, -1e30, 0.5]])
    weights = torch.tensor([1.0, 2.0, 3.0, -1.0])
    grads = []
    for logits in (masked, very_negative):
        tau = torch.tensor([[0.7]], requires_grad=True)
        y = gumbel_softmax(logits, tau, generator=gen(30))
        (grad,) = torch.autograd.grad((y * weights).sum(), tau)
        grads.append(grad)
    assert torch.isfinite(grads[0]).all()
    assert_close(grads[0], grads[1])


def test_hard_gumbel_softmax_along_dim_0():
    logits = torch.randn(5, 7, generator=gen(31))
    hard = gumbel_softmax(logits, 0.5, hard=True, dim=0, generator=gen(32))
    soft = gumbel_softmax(logits, 0.5, dim=0, generator=gen(32))
    expected = torch.nn.functional.one_hot(soft.argmax(0), 5).T.float()
    assert torch.equal(hard, expected)


# ---------------------------------------------------------------- tempered_sample


@pytest.mark.parametrize("tau", [0.1, 0.5, 2.0, 10.0])
def test_tempered_sample_is_softmax_of_scaled_logits(tau):
    logits = torch.tensor([0.0, 0.1, 0.2, 0.3, 0.5])
    samples = tempered_sample(logits.expand(20_000, -1), tau, generator=gen(15))
    assert samples.dtype == torch.int64
    assert_counts_match(samples, torch.softmax(logits.double() / tau, -1))


def test_tempered_sample_huge_logits_small_tau_do_not_overflow():
    logits = torch.tensor([3e38, 1e38, -math.inf])
    assert torch.isinf(logits / 1e-3).any()  # the naive logits / tau would overflow
    assert (tempered_sample(logits.expand(100, -1), 1e-3, generator=gen(16)) == 0).all()


def test_tempered_sample_keeps_ties_exact_for_large_float32_logits():
    # Two tied maxima: each must be drawn with probability 1/2 even when tau * G is far below
    # the float32 spacing of the logits (1e4 has spacing ~1e-3; tau * G ~ 1e-4).
    logits = torch.tensor([1e4, 1e4, 0.0], dtype=torch.float32)
    n = 20_000
    samples = tempered_sample(logits.expand(n, -1), 1e-4, generator=gen(17))
    share = (samples == 1).double().mean().item()
    assert (samples != 2).all()
    assert abs(share - 0.5) < 5 * math.sqrt(0.25 / n)  # 5 standard errors


# ---------------------------------------------------------------- relaxed_bernoulli


def test_hard_relaxed_bernoulli_is_exact_bernoulli():
    logits = torch.tensor([-2.0, -0.3, 0.0, 1.5, 4.0])
    n_samples = 20_000
    z = relaxed_bernoulli(logits.expand(n_samples, -1), 0.5, hard=True, generator=gen(17))
    assert ((z == 0) | (z == 1)).all()
    p = torch.sigmoid(logits.double())
    # 5 standard errors: SE = sqrt(p (1 - p) / n)
    se = torch.sqrt(p * (1 - p) / n_samples)
    assert ((z.double().mean(0) - p).abs() < 5 * se).all()


def test_hard_relaxed_bernoulli_gradient_is_the_soft_ones():
    logits = torch.randn(50, generator=gen(18), requires_grad=True)
    soft = relaxed_bernoulli(logits, 0.7, generator=gen(19))
    hard = relaxed_bernoulli(logits, 0.7, hard=True, generator=gen(19))
    assert torch.equal(hard, (soft > 0.5).float())
    weights = torch.randn(50, generator=gen(20))
    (grad_soft,) = torch.autograd.grad((soft * weights).sum(), logits)
    (grad_hard,) = torch.autograd.grad((hard * weights).sum(), logits)
    assert torch.equal(grad_hard, grad_soft)
    # pathwise derivative of sigmoid((l + L)/tau): y (1 - y) / tau
    assert_close(grad_soft, weights * soft.detach() * (1 - soft.detach()) / 0.7)


@pytest.mark.parametrize(("logit", "tau"), [(0.0, 1.0), (1.5, 0.5), (-2.0, 2 / 3)])
def test_soft_relaxed_bernoulli_matches_torch_distribution(logit, tau):
    n_samples = 4000
    ours = relaxed_bernoulli(torch.full((n_samples,), logit), tau, generator=gen(21))
    torch.manual_seed(22)
    theirs = RelaxedBernoulli(torch.tensor(tau), logits=torch.tensor(logit)).sample((n_samples,))
    assert scipy.stats.ks_2samp(ours.numpy(), theirs.numpy()).pvalue > P_MIN


def test_relaxed_bernoulli_extremes_are_finite_and_do_not_saturate():
    logits = torch.tensor([1e4, -1e4, 20.0, -20.0, 0.0], requires_grad=True)
    for hard in (False, True):
        for tau in (1e-3, 1.0):
            y = relaxed_bernoulli(logits, tau, hard=hard, generator=gen(23))
            (grad,) = torch.autograd.grad(y.sum(), logits)
            assert torch.isfinite(y).all() and torch.isfinite(grad).all()
    # beyond +-15.9, torch's RelaxedBernoulli clamps the probability (float32) and its samples
    # lose their gradient; at a high temperature ours is far from saturation and keeps it
    big = torch.full((100,), 20.0, requires_grad=True)
    y = relaxed_bernoulli(big, 10.0, generator=gen(24))
    (grad,) = torch.autograd.grad(y.sum(), big)
    assert (grad > 1e-3).all()
    assert_close(grad, y.detach() * (1 - y.detach()) / 10.0)


# ---------------------------------------------------------------- concrete_log_prob


@pytest.mark.parametrize("tau", [0.1, 2 / 3, 1.0, 5.0])
def test_concrete_log_prob_matches_torch(tau):
    torch.manual_seed(25)
    logits = torch.randn(3, 4, dtype=torch.float64)
    dist = RelaxedOneHotCategorical(torch.tensor(tau, dtype=torch.float64), logits=logits)
    y = dist.sample((10,))  # [10, 3, 4]
    y = y[(y > 0).all(-1).all(-1)]  # at low tau a sample may touch the boundary (torch #18254)
    assert len(y) > 0
    assert_close(concrete_log_prob(y, logits, tau), dist.log_prob(y))
    # shift-invariance in the logits
    assert_close(concrete_log_prob(y, logits + 7.0, tau), dist.log_prob(y))
    # same gradients with respect to y and the logits
    y_leaf, logits_leaf = y.clone().requires_grad_(True), logits.clone().requires_grad_(True)
    ours = torch.autograd.grad(
        concrete_log_prob(y_leaf, logits_leaf, tau).sum(), (y_leaf, logits_leaf)
    )
    leaf_dist = RelaxedOneHotCategorical(dist.temperature, logits=logits_leaf)
    theirs = torch.autograd.grad(leaf_dist.log_prob(y_leaf).sum(), (y_leaf, logits_leaf))
    assert_close(ours[0], theirs[0])  # d/dy
    assert_close(ours[1], theirs[1])  # d/dlogits


def test_concrete_log_prob_tensor_tau_and_broadcast():
    """A tensor tau has size 1 along dim (as for gumbel_softmax); y [5, 3, 4], logits [3, 4]."""
    logits = torch.randn(3, 4, dtype=torch.float64, generator=gen(26))
    taus = [0.5, 1.0, 2.0]
    dists = [
        RelaxedOneHotCategorical(torch.tensor(t), logits=logits[i]) for i, t in enumerate(taus)
    ]
    torch.manual_seed(27)
    y = torch.stack([d.sample((5,)) for d in dists], dim=1)
    expected = torch.stack([d.log_prob(y[:, i]) for i, d in enumerate(dists)], dim=1)
    tau = torch.tensor(taus, dtype=torch.float64)[:, None]
    assert_close(concrete_log_prob(y, logits, tau), expected)
    single = concrete_log_prob(y[:, 0], logits[0], 0.5)  # y [5, 4] against logits [4]
    assert_close(single, expected[:, 0])


@pytest.mark.parametrize(
    ("logits", "tau"), [((0.0, 0.0), 1.0), ((1.0, -0.5), 0.5), ((2.0, 0.0), 2.0)]
)
def test_concrete_density_for_two_categories_integrates_to_one(logits, tau):
    """torch's convention: density w.r.t. y_1 alone (y_2 = 1 - y_1), so it integrates to 1."""
    logits = torch.tensor(logits, dtype=torch.float64)

    def density(y1):
        y = torch.tensor([y1, 1.0 - y1], dtype=torch.float64)
        return math.exp(concrete_log_prob(y, logits, tau))

    total, _ = scipy.integrate.quad(density, 0.0, 1.0, points=[0.5], limit=200)
    assert total == pytest.approx(1.0, abs=1e-6)


def test_concrete_density_for_three_categories_integrates_to_one():
    """Density w.r.t. (y_1, y_2): integrate over the triangle with y_1 = s, y_2 = (1 - s) t
    (Jacobian 1 - s) by a 200 x 200 Gauss-Legendre rule, evaluated in one batched call."""
    logits, tau = torch.tensor([0.5, 0.0, -0.5], dtype=torch.float64), 1.0
    nodes, weights = np.polynomial.legendre.leggauss(200)
    nodes, weights = (nodes + 1) / 2, weights / 2  # rule on (0, 1)
    s, t = np.meshgrid(nodes, nodes, indexing="ij")
    y1, y2 = s, (1 - s) * t
    y = torch.tensor(np.stack([y1, y2, 1 - y1 - y2], axis=-1))
    density = concrete_log_prob(y, logits, tau).exp().numpy()
    total = np.einsum("i,j,ij->", weights, weights, density * (1 - s))
    # quadrature error ~6e-6 here, shrinking as O(n^-2) (the density has kinks at the corners)
    assert total == pytest.approx(1.0, abs=1e-4)


def test_concrete_log_density_can_be_positive():
    logits = torch.zeros(2, dtype=torch.float64)
    y = torch.tensor([0.99, 0.01], dtype=torch.float64)
    assert concrete_log_prob(y, logits, 0.1) > 0  # densities can exceed 1


def test_concrete_log_prob_rejects_boundary_points_of_low_tau_float32_samples():
    y = gumbel_softmax(torch.randn(100, 5, generator=gen(28)), 0.01, generator=gen(29))
    assert (y == 0).any()  # float32 underflow at low tau puts samples on the boundary
    with pytest.raises(ValueError, match=r"y must be strictly positive.*float64"):
        concrete_log_prob(y, torch.zeros(5), 0.01)


def test_concrete_log_prob_value_errors():
    y = torch.tensor([0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="sum to 1"):
        concrete_log_prob(torch.tensor([0.2, 0.3, 0.6]), torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match="same number of categories"):
        concrete_log_prob(y, torch.zeros(4), 1.0)
    with pytest.raises(ValueError, match="broadcast"):
        concrete_log_prob(y.expand(2, 3), torch.zeros(3, 3), 1.0)
    with pytest.raises(ValueError, match="tau"):
        concrete_log_prob(y, torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="NaN"):
        concrete_log_prob(torch.tensor([0.5, math.nan, 0.5]), torch.zeros(3), 1.0)
