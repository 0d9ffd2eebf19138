"""lib.hardkuma against independent oracles: quadrature, Monte Carlo, finite differences.

* The Kumaraswamy cdf, mean and the HardKuma's point masses against numerical integration of
  the density (scipy.integrate.quad), which shares no code with the closed forms.
* P(Z = 0) and P(Z = 1) against the frequencies of exact zeros and ones in samples: fixed
  seeds, tolerance 4 standard errors of a binomial proportion.
* The reparameterised gradient of E[f(Z)] for a smooth f against a central finite
  difference of the exact expectation (quadrature over the continuous part plus the two
  point masses): tolerance 4 standard errors of the Monte Carlo mean, per parameter.
* The generator convention of lib.rng, and the argument checks.
"""

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from lib._validation import validate_args
from lib.gumbel import _uniform_open
from lib.hardkuma import DEFAULT_SUPPORT, HardKuma, Kumaraswamy

D = torch.float64
PARAMS = [(0.3, 0.5), (1.0, 1.0), (2.0, 3.0), (0.7, 6.0), (5.0, 0.4)]


def t(x):
    return torch.tensor(x, dtype=D)


def kuma_pdf(a, b):
    """The Kumaraswamy density written out in NumPy: the oracle shares no code with lib."""
    return lambda x: a * b * x ** (a - 1) * (1 - x**a) ** (b - 1)


def hardkuma_expectation(f, a, b, support=DEFAULT_SUPPORT):
    """E[f(Z)] by quadrature: f(0) P(T <= 0) + f(1) P(T >= 1) + the integral over (0, 1)."""
    left, right = support
    pdf = kuma_pdf(a, b)
    x0, x1 = -left / (right - left), (1 - left) / (right - left)
    p0 = integrate.quad(pdf, 0, x0, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
    p1 = integrate.quad(pdf, x1, 1, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
    middle = integrate.quad(lambda z: f(z) * pdf((z - left) / (right - left)) / (right - left),
                            0, 1, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
    return f(0.0) * p0 + f(1.0) * p1 + middle


@pytest.mark.parametrize("a, b", PARAMS)
def test_kumaraswamy_cdf_is_the_integral_of_its_density(a, b):
    kuma = Kumaraswamy(t(a), t(b))
    pdf = kuma_pdf(a, b)
    for x in [1e-4, 0.05, 0.3, 0.5, 0.8, 0.99]:
        expected = integrate.quad(pdf, 0, x, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
        assert abs(float(kuma.cdf(t(x))) - expected) < 1e-9, (a, b, x)
        assert math.isclose(float(kuma.log_prob(t(x)).exp()), pdf(x), rel_tol=1e-12)
    mean = integrate.quad(lambda x: x * pdf(x), 0, 1, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
    assert abs(float(kuma.mean) - mean) < 1e-9
    # outside (0, 1): the cdf is 0 and 1, the density 0
    assert kuma.cdf(t([-0.5, 0.0, 1.0, 1.5])).tolist() == [0.0, 0.0, 1.0, 1.0]
    assert kuma.log_prob(t([-0.5, 1.5])).tolist() == [-math.inf, -math.inf]


@pytest.mark.parametrize("a, b", PARAMS)
def test_kumaraswamy_icdf_inverts_the_cdf(a, b):
    kuma = Kumaraswamy(t(a), t(b))
    x = torch.linspace(0.01, 0.99, 50, dtype=D)
    assert torch.allclose(kuma.icdf(kuma.cdf(x)), x, atol=1e-9)


# a < 1 or b < 1 puts an integrable singularity at an end of (0, 1): quad warns that it
# cannot reach 1e-14 there, and still meets the 1e-9 asserted below
@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("a, b", PARAMS)
def test_point_masses_match_quadrature(a, b):
    hk = HardKuma(t(a), t(b))
    pdf = kuma_pdf(a, b)
    p0 = integrate.quad(pdf, 0, 1 / 12, epsabs=1e-14, epsrel=1e-12, limit=200)[0]
    p1 = integrate.quad(pdf, 11 / 12, 1, epsabs=1e-14, epsrel=1e-12, limit=200)[0]
    assert abs(float(hk.prob_zero()) - p0) < 1e-9
    assert abs(float(hk.prob_one()) - p1) < 1e-9
    continuous = integrate.quad(lambda z: math.exp(float(hk.continuous_log_density(t(z)))),
                                0, 1, epsabs=1e-12, limit=200)[0]
    assert abs(float(hk.prob_continuous()) - continuous) < 1e-8
    total = hk.prob_zero() + hk.prob_one() + hk.prob_continuous()
    assert abs(float(total) - 1) < 1e-12
    assert torch.allclose(hk.expected_l0(), 1 - hk.prob_zero(), atol=1e-14)
    assert torch.allclose(torch.sigmoid(hk.nonzero_logit()), hk.expected_l0(), atol=1e-14)


def test_tiny_point_masses_keep_their_relative_precision():
    # a large b puts almost no mass at 1: (1 - (11/12)^a)^b, here about 1e-22, not 0
    hk = HardKuma(t(1.0), t(20.0))
    assert math.isclose(float(hk.prob_one()), (1 / 12) ** 20, rel_tol=1e-10)
    assert math.isclose(float(hk.expected_l0()), (11 / 12) ** 20, rel_tol=1e-12)


@pytest.mark.parametrize("a, b", PARAMS)
def test_point_masses_match_monte_carlo(a, b):
    # fixed seed; 200,000 samples; each frequency within 4 binomial standard errors
    n = 200_000
    hk = HardKuma(t(a), t(b))
    z = hk.rsample(n, generator=torch.Generator().manual_seed(11))
    assert z.shape == (n,) and bool(((z >= 0) & (z <= 1)).all())
    for frequency, p in [((z == 0).double().mean(), hk.prob_zero()),
                         ((z == 1).double().mean(), hk.prob_one()),
                         (((z > 0) & (z < 1)).double().mean(), hk.prob_continuous())]:
        p = float(p)
        se = math.sqrt(max(p * (1 - p), 1e-12) / n)
        assert abs(float(frequency) - p) < 4 * se + 1e-12, (a, b, float(frequency), p)


def smooth_f(z):
    return (z - 0.3) ** 2 + 0.5 * np.sin(3 * z) if isinstance(z, float) else (
        (z - 0.3) ** 2 + 0.5 * torch.sin(3 * z))


@pytest.mark.parametrize("a, b", [(0.7, 1.5), (2.0, 3.0), (1.0, 0.6)])
def test_reparameterised_gradient_matches_finite_difference_of_exact_expectation(a, b):
    h = 1e-5
    exact = [(hardkuma_expectation(smooth_f, a + h, b) - hardkuma_expectation(smooth_f, a - h, b))
             / (2 * h),
             (hardkuma_expectation(smooth_f, a, b + h) - hardkuma_expectation(smooth_f, a, b - h))
             / (2 * h)]
    # per-sample gradients: every sample has its own copy of (a, b); fixed seed
    n = 200_000
    pa, pb = t(a).expand(n).clone().requires_grad_(), t(b).expand(n).clone().requires_grad_()
    z = HardKuma(pa, pb).rsample(generator=torch.Generator().manual_seed(5))
    smooth_f(z).sum().backward()
    for g, e in zip([pa.grad, pb.grad], exact):
        assert torch.isfinite(g).all()
        se = float(g.std()) / math.sqrt(n)
        assert abs(float(g.mean()) - e) < 4 * se, (a, b, float(g.mean()), e, se)
    # and the expectation itself, as a check of the oracle
    value_se = float(smooth_f(z.detach()).std()) / math.sqrt(n)
    assert abs(float(smooth_f(z.detach()).mean()) - hardkuma_expectation(smooth_f, a, b)) < (
        4 * value_se)


def test_expected_l0_gradient_is_the_derivative_of_the_closed_form():
    # independent of autograd: d/da and d/db of (1 - x0^a)^b written out by hand
    a, b = t(1.3).requires_grad_(), t(2.5).requires_grad_()
    HardKuma(a, b).expected_l0().backward()
    x0 = 1 / 12
    s = 1 - x0**1.3
    assert math.isclose(float(a.grad), 2.5 * s**1.5 * (-(x0**1.3) * math.log(x0)), rel_tol=1e-10)
    assert math.isclose(float(b.grad), s**2.5 * math.log(s), rel_tol=1e-10)


def test_other_supports():
    hk = HardKuma(t(1.0), t(1.0), support=(-0.5, 2.0))  # uniform K: T uniform on (-0.5, 2)
    assert math.isclose(float(hk.prob_zero()), 0.2, rel_tol=1e-12)
    assert math.isclose(float(hk.prob_one()), 0.4, rel_tol=1e-12)


def test_samples_follow_the_generator_convention():
    a, b = t([0.5, 2.0]), t([1.0, 3.0])
    z1 = HardKuma(a, b).rsample(3, generator=torch.Generator().manual_seed(0))
    z2 = HardKuma(a, b).rsample(3, generator=torch.Generator().manual_seed(0))
    assert z1.shape == (3, 2) and torch.equal(z1, z2)
    # the uniforms are lib.gumbel's open-interval draws from lib.rng: the same numbers
    u = _uniform_open((3, 2), torch.Generator().manual_seed(0), D, "cpu")
    k = Kumaraswamy(a, b).icdf(u)
    left, right = DEFAULT_SUPPORT
    assert torch.equal(z1, (left + (right - left) * k).clamp(0, 1))
    assert HardKuma(a, b).rsample(generator=torch.Generator()).shape == (2,)
    # a CPU generator draws for tensors on another device (meta stands in for a GPU; meta
    # tensors hold no values to check)
    with validate_args(False):
        meta = HardKuma(a.to("meta"), b.to("meta")).rsample(4, generator=torch.Generator())
    assert meta.device.type == "meta" and meta.shape == (4, 2)


def test_float32_gradients_stay_finite_at_extreme_parameters():
    a = torch.tensor([1e-3, 50.0, 0.05, 80.0], requires_grad=True)
    b = torch.tensor([1e3, 1e-3, 0.05, 80.0], requires_grad=True)
    hk = HardKuma(a, b)
    z = hk.rsample(20_000, generator=torch.Generator().manual_seed(1))
    (z.sum() + hk.expected_l0().sum() + hk.prob_one().sum()).backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


def test_bad_arguments():
    one = t(1.0)
    with pytest.raises(ValueError, match="a must be finite and > 0"):
        HardKuma(t(-1.0), one)
    with pytest.raises(ValueError, match="b must be finite and > 0"):
        Kumaraswamy(one, t([1.0, 0.0]))
    with pytest.raises(TypeError, match="a must be a floating-point"):
        HardKuma(torch.tensor(1), one)
    with pytest.raises(TypeError, match="b must be a floating-point torch.Tensor"):
        HardKuma(one, 2.0)
    with pytest.raises(ValueError, match="do not broadcast"):
        HardKuma(t([1.0, 2.0]), t([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="l < 0 and r > 1"):
        HardKuma(one, one, support=(0.0, 1.1))
    with pytest.raises(TypeError, match="support must be a pair"):
        HardKuma(one, one, support=1.1)
    with pytest.raises(ValueError, match="n must be >= 1"):
        HardKuma(one, one).rsample(0)
    with pytest.raises(TypeError, match="generator must be None or a torch.Generator"):
        HardKuma(one, one).rsample(2, generator=0)
    with pytest.raises(ValueError, match="u must be in"):
        Kumaraswamy(one, one).icdf(t(1.0))
    with validate_args(False):  # value checks off: no error, and no value is read
        HardKuma(t(-1.0), one)


def test_gradients_stay_finite_where_a_point_mass_vanishes():
    # b -> 0 sends P(Z = 0) to 0: log(1 - e^y) at y ~ 0; the branch not taken once gave NaN
    a = torch.tensor([20.0, 1.0], dtype=D, requires_grad=True)
    b = torch.tensor([1e-6, 1e-6], dtype=D, requires_grad=True)
    hk = HardKuma(a, b)
    (hk.prob_zero().sum() + hk.log_prob_zero().sum() + hk.prob_one().sum()).backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
