"""Perturbed optimizers (lib.perturbed) against exact oracles.

Statistical checks use fixed seeds (deterministic) and tolerances of a few standard errors,
each estimated from the same draws: with Gumbel noise, sigma = 1 and the one-hot argmax, the
perturbed argmax is exactly softmax(theta), its Jacobian softmax's Jacobian and the perturbed
max logsumexp(theta) + Euler's gamma (the Gumbel-max trick, chapter 03).
"""

import math

import pytest
import torch

from lib.perturbed import argmax_one_hot, perturbed_argmax, perturbed_max, sample_noise
from lib.subsets import topk_mask
from tests._helpers import assert_close, gen

THETA = torch.tensor([0.5, -1.0, 1.5, 0.0], dtype=torch.float64)
EULER_GAMMA = 0.5772156649015329
Z_TOL = 5.0  # tolerance in standard errors, for every z-test below (fixed seeds)


def _per_draw_jacobians(theta, n, seed, noise="gumbel", sigma=1.0, oracle=None):
    """The n per-draw Jacobian estimates y*(theta + sigma z) grad_nu(z)^T / sigma, [n, K, K]."""
    z, grad_nu = sample_noise(noise, (n, *theta.shape), generator=gen(seed), dtype=theta.dtype)
    ys = (argmax_one_hot if oracle is None else oracle)(theta + sigma * z)
    return ys, ys.unsqueeze(-1) * grad_nu.unsqueeze(-2) / sigma


def test_gumbel_sigma_one_forward_is_softmax():
    n = 200_000
    y = perturbed_argmax(THETA, n, generator=gen(0))
    p = torch.softmax(THETA, -1)
    se = (p * (1 - p) / n).sqrt()  # SE of a mean of Bernoulli(p) indicators
    assert float(((y - p).abs() / se).max()) < Z_TOL
    assert_close(y.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_gumbel_sigma_one_jacobian_is_softmax_jacobian():
    n = 200_000
    _, per_draw = _per_draw_jacobians(THETA, n, seed=1)
    estimate, se = per_draw.mean(0), per_draw.std(0) / math.sqrt(n)
    exact = torch.func.jacrev(lambda t: torch.softmax(t, -1))(THETA)
    assert float(((estimate - exact).abs() / se).max()) < Z_TOL
    # and the tolerance is tight enough to tell softmax's Jacobian from a wrong sign or scale
    assert float(((estimate + exact).abs() / se).max()) > 10 * Z_TOL
    assert float(((estimate - 2 * exact).abs() / se).max()) > 10 * Z_TOL


def test_custom_backward_is_the_jacobian_estimator_on_the_same_draws():
    theta = THETA.clone().requires_grad_(True)
    weights = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    for noise, sigma in [("gumbel", 1.0), ("gumbel", 0.5), ("normal", 2.0)]:
        y = perturbed_argmax(theta, 500, sigma, noise=noise, generator=gen(3))
        (grad,) = torch.autograd.grad((weights * y).sum(), theta)
        ys, per_draw = _per_draw_jacobians(THETA, 500, 3, noise, sigma)
        assert_close(y.detach(), ys.mean(0))
        assert_close(grad, weights @ per_draw.mean(0))


def test_batch_dimensions_are_independent_problems():
    theta = torch.stack([THETA, THETA.flip(0)]).requires_grad_(True)
    y = perturbed_argmax(theta, 100, generator=gen(4))
    assert y.shape == theta.shape
    y[0].sum().backward()
    assert torch.equal(theta.grad[1], torch.zeros(4, dtype=torch.float64))  # row 1: none
    # row 0: every draw's <1, y*> is 1, so the estimate is the mean of grad_nu(Z) of row 0
    _, grad_nu = sample_noise("gumbel", (100, 2, 4), generator=gen(4), dtype=torch.float64)
    assert_close(theta.grad[0], grad_nu[:, 0].mean(0))


def test_normal_noise_against_a_large_monte_carlo_reference():
    # reference: P(argmax(theta + sigma Z) = k) from 2 million independent draws
    sigma, n_ref, n = 0.7, 2_000_000, 100_000
    z = torch.randn((n_ref, 4), generator=gen(5), dtype=torch.float64)
    ref = argmax_one_hot(THETA + sigma * z).mean(0)
    y = perturbed_argmax(THETA, n, sigma, noise="normal", generator=gen(6))
    se = (ref * (1 - ref) * (1 / n + 1 / n_ref)).sqrt()
    assert float(((y - ref).abs() / se).max()) < Z_TOL
    # its Jacobian: finite differences of the reference on common noise (smooth in theta)
    theta = THETA.clone().requires_grad_(True)
    yj = perturbed_argmax(theta, n, sigma, noise="normal", generator=gen(7))
    (grad,) = torch.autograd.grad(yj[2], theta)
    _, per_draw = _per_draw_jacobians(THETA, n, 7, "normal", sigma)
    se_j = per_draw[:, 2, :].std(0) / math.sqrt(n)
    h = 0.05
    fd = torch.stack([(argmax_one_hot(THETA + h * e + sigma * z)[:, 2].mean()
                       - argmax_one_hot(THETA - h * e + sigma * z)[:, 2].mean()) / (2 * h)
                      for e in torch.eye(4, dtype=torch.float64)])
    # finite-difference reference: SE of a difference of indicator means over 2h, plus O(h^2)
    assert float(((grad - fd).abs() / (se_j + 0.02)).max()) < Z_TOL


def test_perturbed_max_value_and_gradient():
    n = 200_000
    theta = THETA.clone().requires_grad_(True)
    f = perturbed_max(theta, n, generator=gen(8))
    assert f.shape == ()
    se = math.sqrt(math.pi ** 2 / 6 / n)  # max(theta + G) is Gumbel(logsumexp, 1): var pi^2/6
    exact = float(torch.logsumexp(THETA, -1)) + EULER_GAMMA
    assert abs(float(f.detach()) - exact) < Z_TOL * se
    (grad,) = torch.autograd.grad(f, theta)
    assert_close(grad, perturbed_argmax(THETA, n, generator=gen(8)))


def test_topk_oracle_runs_and_keeps_k():
    k = 2
    theta = THETA.clone().requires_grad_(True)
    y = perturbed_argmax(theta, 1000, 0.5, oracle=lambda s: topk_mask(s, k), generator=gen(9))
    assert_close(y.sum(), torch.tensor(float(k), dtype=torch.float64))
    assert bool(((y >= 0) & (y <= 1)).all())
    (y * torch.arange(4.0, dtype=torch.float64)).sum().backward()
    assert bool(torch.isfinite(theta.grad).all()) and float(theta.grad.abs().sum()) > 0


def test_generator_convention_and_dtype():
    a = perturbed_argmax(THETA, 50, generator=gen(10))
    b = perturbed_argmax(THETA, 50, generator=gen(10))
    assert torch.equal(a, b) and a.dtype == torch.float64
    c = perturbed_argmax(THETA.float(), 50, generator=gen(10))
    assert c.dtype == torch.float32 and c.device == THETA.device
    # with no generator: the default one (torch.manual_seed reproduces it)
    torch.manual_seed(0)
    d = perturbed_argmax(THETA, 50)
    torch.manual_seed(0)
    assert torch.equal(d, perturbed_argmax(THETA, 50))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_with_a_cpu_generator():
    theta = THETA.cuda().requires_grad_(True)
    y = perturbed_argmax(theta, 200, generator=gen(11))
    assert y.device == theta.device
    y[0].backward()
    assert theta.grad.device == theta.device
    assert_close(y.cpu(), perturbed_argmax(THETA, 200, generator=gen(11)))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(theta=[0.0, 1.0]), TypeError, "theta"),
    (dict(theta=torch.tensor([1, 2])), TypeError, "theta"),
    (dict(theta=torch.tensor(1.0)), ValueError, "theta"),
    (dict(theta=torch.tensor([0.0, float("nan")])), ValueError, "theta must be finite"),
    (dict(n_samples=0), ValueError, "n_samples must be >= 1"),
    (dict(n_samples=2.0), TypeError, "n_samples"),
    (dict(sigma=0.0), ValueError, "sigma must be > 0"),
    (dict(sigma="1"), TypeError, "sigma"),
    (dict(noise="laplace"), ValueError, "noise must be one of"),
    (dict(noise=1), TypeError, "noise"),
    (dict(oracle=3), TypeError, "oracle must be a callable"),
    (dict(oracle=lambda s: s[..., :1]), ValueError, "oracle must return"),
    (dict(event_dims=2), ValueError, "event_dims must be <= 1"),
    (dict(generator=0), TypeError, "generator"),
])
@pytest.mark.parametrize("fn", [perturbed_argmax, perturbed_max])
def test_bad_arguments(fn, kwargs, error, match):
    args = dict(theta=torch.tensor([0.0, 1.0]), n_samples=4)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        fn(args.pop("theta"), args.pop("n_samples"), **args)
