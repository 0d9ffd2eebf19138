"""Tests of lib.gumbel against independent oracles (SciPy, enumeration, closed forms)."""

import itertools
import math

import numpy as np
import pytest
import scipy.stats
import torch

import lib.gumbel
from lib.gumbel import (
    gumbel_cdf,
    gumbel_log_prob,
    gumbel_max_sample,
    gumbel_topk_sample,
    sample_gumbel,
)
from tests._helpers import P_MIN, assert_counts_match, gen

# ---------------------------------------------------------------- sample_gumbel


def test_sample_gumbel_matches_scipy_gumbel_r():
    samples = sample_gumbel(20_000, generator=gen(0), dtype=torch.float64).numpy()
    assert scipy.stats.kstest(samples, scipy.stats.gumbel_r.cdf).pvalue > P_MIN


def test_sample_gumbel_mean_and_variance():
    n = 200_000
    g = sample_gumbel((n,), generator=gen(1), dtype=torch.float64)
    mean, var, _, excess_kurtosis = (float(m) for m in scipy.stats.gumbel_r.stats(moments="mvsk"))
    assert mean == pytest.approx(np.euler_gamma) and var == pytest.approx(math.pi**2 / 6)
    # 5 standard errors: SE(mean) = sqrt(var/n); SE(sample variance) = sqrt((mu4 - var^2)/n)
    # with mu4 = (excess kurtosis + 3) * var^2.
    se_mean = math.sqrt(var / n)
    se_var = math.sqrt((excess_kurtosis + 2) * var**2 / n)
    assert abs(g.mean().item() - np.euler_gamma) < 5 * se_mean
    assert abs(g.var().item() - math.pi**2 / 6) < 5 * se_var


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [7, (2, 3), torch.Size([4, 1, 2])])
def test_sample_gumbel_dtype_and_shape(dtype, shape):
    g = sample_gumbel(shape, generator=gen(2), dtype=dtype)
    expected = (shape,) if isinstance(shape, int) else tuple(shape)
    assert g.dtype == dtype and tuple(g.shape) == expected
    assert torch.isfinite(g).all()


def test_sample_gumbel_is_reproducible():
    assert torch.equal(sample_gumbel(50, generator=gen(3)), sample_gumbel(50, generator=gen(3)))
    assert not torch.equal(sample_gumbel(50, generator=gen(3)), sample_gumbel(50, generator=gen(4)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("value", [0.0, 1.0, 1.0 - 1e-12, 1e-300])
def test_sample_gumbel_finite_at_uniform_extremes(monkeypatch, dtype, value):
    """An exact 0 or 1 (or values rounding to them) from torch.rand must not give +-inf."""

    def fake_rand(*shape, generator=None, dtype=None, device=None):
        return torch.full(*shape, value, dtype=dtype, device=device)

    monkeypatch.setattr(lib.gumbel.torch, "rand", fake_rand)
    g = sample_gumbel((5,), dtype=dtype)
    assert torch.isfinite(g).all(), g
    assert torch.isfinite(gumbel_max_sample(torch.zeros(3, dtype=dtype)).float()).all()


@pytest.mark.parametrize(("dtype", "digits"), [(torch.float32, 24), (torch.float64, 53)])
def test_cpu_uniform_draws_lie_on_the_grid_below_one(dtype, digits):
    """lib.relaxed.gumbel_softmax's fast path clamps CPU uniforms from below only, because
    PyTorch's CPU uniform_ draws k * 2**-digits with an integer 0 <= k < 2**digits, whose
    largest value is 1 - eps/2. If a PyTorch release drew otherwise (a 32-bit integer scaled
    to float32 can round up to 1.0), these draws would show it: off-grid values appear at once."""
    assert 1.0 - torch.finfo(dtype).eps / 2 == 1.0 - 2.0**-digits
    for shape in ((1_000_000,), (7, 10)):  # the vectorised loop and a short tail
        u = torch.rand(shape, generator=gen(0), dtype=dtype).double()
        k = u * 2.0**digits  # exact in float64 for both dtypes (53 digits)
        assert torch.equal(k, k.floor()) and float(u.max()) <= 1.0 - 2.0**-digits


def test_gumbel_cdf_and_log_prob_match_scipy():
    x = torch.linspace(-4, 12, 101, dtype=torch.float64)
    for loc, scale in [(0.0, 1.0), (1.5, 2.0), (-3.0, 0.25)]:
        expected_cdf = scipy.stats.gumbel_r.cdf(x.numpy(), loc=loc, scale=scale)
        expected_logpdf = scipy.stats.gumbel_r.logpdf(x.numpy(), loc=loc, scale=scale)
        np.testing.assert_allclose(gumbel_cdf(x, loc, scale).numpy(), expected_cdf, rtol=1e-12)
        np.testing.assert_allclose(
            gumbel_log_prob(x, loc, scale).numpy(), expected_logpdf, rtol=1e-10
        )
    # tensor parameters broadcast
    loc, scale = torch.tensor([[0.0], [1.0]]), torch.tensor([[1.0], [3.0]])
    expected = scipy.stats.gumbel_r.logpdf(x.numpy(), loc=loc.numpy(), scale=scale.numpy())
    actual = gumbel_log_prob(x.float(), loc, scale)
    assert actual.shape == (2, 101) and actual.dtype == torch.float32
    np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- gumbel_max_sample


def test_gumbel_max_sample_matches_softmax():
    logits = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.0])
    n_samples = 20_000
    samples = gumbel_max_sample(logits.expand(n_samples, -1), generator=gen(5))
    assert samples.dtype == torch.int64 and samples.shape == (n_samples,)
    assert_counts_match(samples, torch.softmax(logits.double(), -1))


def test_gumbel_max_sample_log_probs_and_shift_give_same_distribution():
    logits = torch.tensor([3.0, 1.0, 2.0])
    a = gumbel_max_sample(logits.expand(1000, -1), generator=gen(6))
    b = gumbel_max_sample((logits + 100.0).expand(1000, -1), generator=gen(6))
    c = gumbel_max_sample(torch.log_softmax(logits, -1).expand(1000, -1), generator=gen(6))
    assert torch.equal(a, b) and torch.equal(a, c)


def test_gumbel_max_sample_never_picks_masked_categories():
    logits = torch.tensor([-math.inf, 0.0, 1.0, -math.inf, -1.0])
    samples = gumbel_max_sample(logits.expand(20_000, -1), generator=gen(7))
    assert_counts_match(samples, torch.softmax(logits.double(), -1))  # masked counts are 0


def test_gumbel_max_sample_along_other_dim_and_batches():
    logits = torch.tensor([0.0, 1.0, -0.5, 2.0])
    n_samples = 20_000
    samples = gumbel_max_sample(logits[:, None].expand(-1, n_samples), dim=0, generator=gen(8))
    assert samples.shape == (n_samples,)
    assert_counts_match(samples, torch.softmax(logits.double(), -1))
    batch = torch.randn(2, 3, 4, generator=gen(9))
    assert gumbel_max_sample(batch).shape == (2, 3)
    assert gumbel_max_sample(batch, dim=1).shape == (2, 4)
    assert gumbel_max_sample(batch, dim=1).max() < 3


def test_gumbel_max_sample_float64_and_grad_input():
    logits = torch.randn(3, 5, dtype=torch.float64, generator=gen(10), requires_grad=True)
    samples = gumbel_max_sample(logits, generator=gen(11))
    assert samples.dtype == torch.int64 and not samples.requires_grad


# ---------------------------------------------------------------- gumbel_topk_sample


def without_replacement_probs(probs, k):
    """P(ordered tuple) for k draws without replacement, by enumeration of all tuples."""
    out = {}
    for items in itertools.permutations(range(len(probs)), k):
        p, remaining = 1.0, 1.0
        for i in items:
            p *= probs[i] / remaining
            remaining -= probs[i]
        out[items] = p
    return out


def test_gumbel_topk_first_second_and_joint():
    logits = torch.tensor([1.0, 0.0, -0.5, 0.7])
    probs = torch.softmax(logits.double(), -1).tolist()
    n_samples, k = 20_000, 2
    samples = gumbel_topk_sample(logits.expand(n_samples, -1), k, generator=gen(12))
    assert samples.shape == (n_samples, k) and samples.dtype == torch.int64
    assert (samples[:, 0] != samples[:, 1]).all()
    joint = without_replacement_probs(probs, k)
    second = [sum(p for (_, j), p in joint.items() if j == c) for c in range(4)]
    assert_counts_match(samples[:, 0], probs)
    assert_counts_match(samples[:, 1], second)
    pairs = list(joint)
    codes = samples[:, 0] * 4 + samples[:, 1]
    codes_to_pair = {a * 4 + b: i for i, (a, b) in enumerate(pairs)}
    assert_counts_match([codes_to_pair[int(c)] for c in codes], [joint[p] for p in pairs])


def test_gumbel_topk_full_permutation_has_no_repeats_and_respects_mask():
    logits = torch.tensor([[0.0, -math.inf, 1.0, 2.0, 0.5]]).expand(500, -1)
    samples = gumbel_topk_sample(logits, 4, generator=gen(13))
    assert torch.equal(samples.sort(-1).values, torch.tensor([0, 2, 3, 4]).expand(500, -1))
    with pytest.raises(ValueError, match="k=5"):
        gumbel_topk_sample(logits, 5)
    along_0 = gumbel_topk_sample(logits.T.contiguous(), 2, dim=0, generator=gen(13))
    assert along_0.shape == (2, 500)
