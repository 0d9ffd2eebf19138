"""Tests of lib.estimators: identities, closed forms, explicit loops and standard errors."""

import itertools
import math

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Categorical

from lib.estimators import (
    enumerate_binary,
    exact_expectation_bernoulli,
    exact_expectation_categorical,
    exact_gradient_bernoulli,
    exact_gradient_categorical,
    leave_one_out_baseline,
    reinforce_surrogate,
    straight_through,
)
from tests._helpers import assert_close, gen

# ---------------------------------------------------------------- straight_through


def test_straight_through_value_is_forward_bit_for_bit_and_gradient_is_backwards():
    forward = torch.randn(10_000, generator=gen(0))
    backward = (torch.rand(10_000, generator=gen(1)) * 1e3).requires_grad_(True)
    y = straight_through(forward, backward)
    assert torch.equal(y, forward)
    upstream = torch.randn(10_000, generator=gen(2))
    (grad,) = torch.autograd.grad((y * upstream).sum(), backward)
    assert torch.equal(grad, upstream)
    # the often-copied form is not exact: rounding in (forward - b) + b
    naive = forward - backward.detach() + backward
    assert not torch.equal(naive, forward)


def test_straight_through_checks_shape_and_dtype():
    with pytest.raises(ValueError, match="forward and backward must have the same shape"):
        straight_through(torch.zeros(3), torch.zeros(3, 1))
    with pytest.raises(TypeError, match="dtype"):
        straight_through(torch.zeros(3, dtype=torch.float64), torch.zeros(3))
    with pytest.raises(TypeError, match="backward"):
        straight_through(torch.zeros(3), torch.zeros(3, dtype=torch.int64))


# ---------------------------------------------------------------- exact enumeration


LOGITS = torch.tensor([0.3, -1.2, 0.8, 0.0], dtype=torch.float64)
COSTS = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
OFFSET = 10.0  # a large shared offset: what a baseline removes


def categorical_cost(one_hot):
    return one_hot @ COSTS + OFFSET


def test_exact_categorical_against_closed_form():
    p = np.exp(LOGITS.numpy()) / np.exp(LOGITS.numpy()).sum()
    f = COSTS.numpy() + OFFSET
    expectation = float(p @ f)
    assert exact_expectation_categorical(LOGITS, categorical_cost).item() == pytest.approx(
        expectation, rel=1e-12
    )
    np.testing.assert_allclose(
        exact_gradient_categorical(LOGITS, categorical_cost).numpy(), p * (f - expectation),
        rtol=1e-10, atol=1e-14,
    )


def test_exact_categorical_is_differentiable_through_f_and_handles_masks():
    weights = COSTS.clone().requires_grad_(True)
    logits = LOGITS.clone().requires_grad_(True)
    expectation = exact_expectation_categorical(logits, lambda z: z @ weights)
    expectation.backward()
    assert_close(weights.grad, torch.softmax(LOGITS, 0))  # dE/dc_i = p_i
    # exact_gradient_* works on a detached copy: no .grad anywhere
    weights.grad = None
    exact_gradient_categorical(logits, lambda z: z @ weights)
    assert weights.grad is None and logits.grad is not None
    masked = torch.tensor([0.0, -math.inf, 1.0], dtype=torch.float64)
    grad = exact_gradient_categorical(masked, lambda z: z @ COSTS[:3])
    assert grad[1] == 0 and torch.isfinite(grad).all()


def test_enumerate_binary_matches_itertools_product():
    for n in (1, 3, 5):
        expected = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)))
        assert torch.equal(enumerate_binary(n), expected)
    assert enumerate_binary(3, dtype=torch.float64).dtype == torch.float64
    assert enumerate_binary(12).shape == (2**12, 12)
    with pytest.raises(ValueError, match="n must be <= 20"):
        enumerate_binary(21)
    with pytest.raises(TypeError, match="n must be an int"):
        enumerate_binary(3.0)


BERNOULLI_LOGITS = torch.tensor([0.4, -1.0, 2.0], dtype=torch.float64)


def bernoulli_cost(b):
    """Nonlinear cost with an offset (RELAX-style (b - 0.499)^2 terms)."""
    return ((b - 0.499) ** 2).sum(-1) + 2.0 * b[..., 0] * b[..., 1] + OFFSET


def test_exact_bernoulli_linear_against_closed_form():
    coefficients = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    s = 1 / (1 + np.exp(-BERNOULLI_LOGITS.numpy()))
    c = coefficients.numpy()
    expectation = exact_expectation_bernoulli(BERNOULLI_LOGITS, lambda b: b @ coefficients + 4.0)
    assert expectation.item() == pytest.approx(float(s @ c) + 4.0, rel=1e-12)
    grad = exact_gradient_bernoulli(BERNOULLI_LOGITS, lambda b: b @ coefficients + 4.0)
    np.testing.assert_allclose(grad.numpy(), s * (1 - s) * c, rtol=1e-10)


def test_exact_bernoulli_nonlinear_against_explicit_loop():
    s = (1 / (1 + np.exp(-BERNOULLI_LOGITS.numpy()))).tolist()
    expected = 0.0
    for bits in itertools.product([0, 1], repeat=3):
        p = math.prod(s[i] if bits[i] else 1 - s[i] for i in range(3))
        expected += p * float(bernoulli_cost(torch.tensor(bits, dtype=torch.float64)))
    actual = exact_expectation_bernoulli(BERNOULLI_LOGITS, bernoulli_cost).item()
    assert actual == pytest.approx(expected, rel=1e-12)


def test_exact_bernoulli_is_stable_for_large_logits():
    logits = torch.tensor([60.0, -60.0, 0.0])
    expectation = exact_expectation_bernoulli(logits, bernoulli_cost)
    grad = exact_gradient_bernoulli(logits, bernoulli_cost)
    assert torch.isfinite(expectation) and torch.isfinite(grad).all()


def test_exact_functions_reject_batched_logits_and_bad_f():
    with pytest.raises(ValueError, match="1-D"):
        exact_expectation_categorical(torch.zeros(2, 3), lambda z: z.sum(-1))
    with pytest.raises(ValueError, match="1-D"):
        exact_gradient_bernoulli(torch.zeros(2, 3), lambda b: b.sum(-1))
    with pytest.raises(ValueError, match="shape"):
        exact_expectation_categorical(torch.zeros(3), lambda z: z)
    with pytest.raises(TypeError, match="f must be a callable"):
        exact_expectation_bernoulli(torch.zeros(3), 1.0)


# ---------------------------------------------------------------- leave_one_out_baseline


def test_leave_one_out_baseline_matches_explicit_loop():
    rewards = torch.randn(5, 3, generator=gen(3), dtype=torch.float64, requires_grad=True)
    baseline = leave_one_out_baseline(rewards)
    assert not baseline.requires_grad
    r = rewards.detach().numpy()
    for s in range(5):
        for b in range(3):
            others = [r[j, b] for j in range(5) if j != s]
            assert baseline[s, b].item() == pytest.approx(sum(others) / len(others), rel=1e-12)
    assert_close(leave_one_out_baseline(rewards.T, dim=1), baseline.T)
    with pytest.raises(ValueError, match="at least 2 samples"):
        leave_one_out_baseline(torch.zeros(1, 3))


# ---------------------------------------------------------------- reinforce_surrogate


def reinforce_replicates(make_dist, cost, n_params, n_samples, n_replicates, baseline, seed):
    """Gradient estimates of n_replicates independent runs, each with n_samples samples.

    One leaf copy of the parameters per replicate ([R, n_params]); samples are [S, R, ...]
    with the sample dimension first. The surrogate averages over S * R elements, so the
    gradient of replicate r is R times the gradient w.r.t. its leaf.
    """
    torch.manual_seed(seed)
    leaf = make_dist.params.expand(n_replicates, n_params).clone().requires_grad_(True)
    dist = make_dist(leaf)
    z = dist.sample((n_samples,))
    log_prob = dist.log_prob(z)
    if log_prob.dim() == 3:  # independent Bernoullis: joint log-probability
        log_prob = log_prob.sum(-1)
    rewards = cost(z)
    b = {
        None: None,
        "leave-one-out": leave_one_out_baseline(rewards),
        "batch mean": rewards.mean(0, keepdim=True),  # includes each sample's own reward
    }[baseline]
    (grad,) = torch.autograd.grad(reinforce_surrogate(log_prob, rewards, b), leaf)
    return grad * n_replicates  # [R, n_params]


def categorical(logits):
    return Categorical(logits=logits)


categorical.params = LOGITS


def bernoulli(logits):
    return Bernoulli(logits=logits)


bernoulli.params = BERNOULLI_LOGITS


CASES = {
    "categorical": (categorical, lambda z: COSTS[z] + OFFSET, categorical_cost, 4),
    "bernoulli": (bernoulli, bernoulli_cost, bernoulli_cost, 3),
}


@pytest.mark.parametrize("case", list(CASES))
def test_reinforce_is_unbiased_and_the_baseline_reduces_variance(case):
    make_dist, sample_cost, enum_cost, n_params = CASES[case]
    exact = (
        exact_gradient_categorical(LOGITS, enum_cost)
        if case == "categorical"
        else exact_gradient_bernoulli(BERNOULLI_LOGITS, enum_cost)
    )
    n_replicates, n_samples = 4000, 8
    variances = {}
    for seed, baseline in enumerate((None, "leave-one-out", "batch mean")):
        estimates = reinforce_replicates(
            make_dist, sample_cost, n_params, n_samples, n_replicates, baseline, seed=seed
        )
        # 5 standard errors per component: SE = sqrt(var / n_replicates)
        se = estimates.std(0) / math.sqrt(n_replicates)
        error = (estimates.mean(0) - exact).abs()
        if baseline == "batch mean":  # biased: shrinks the gradient by (1 - 1/S)
            assert (error > 5 * se).any()
            scaled_error = (estimates.mean(0) - (1 - 1 / n_samples) * exact).abs()
            assert (scaled_error < 5 * se).all()
        else:
            assert (error < 5 * se).all(), (estimates.mean(0), exact)
        variances[baseline] = estimates.var(0).sum().item()
    # the offset dominates the variance without a baseline
    assert variances["leave-one-out"] / variances[None] < 0.1


def test_reinforce_surrogate_value_and_detached_reward():
    log_prob = torch.randn(6, 2, generator=gen(4), requires_grad=True)
    weight = torch.tensor(2.0, requires_grad=True)
    reward = weight * torch.randn(6, 2, generator=gen(5))
    baseline = weight * torch.ones(1, 2)
    surrogate = reinforce_surrogate(log_prob, reward, baseline)
    expected = ((reward - baseline).detach() * log_prob.detach()).mean()
    assert surrogate.shape == () and surrogate.item() == pytest.approx(expected.item())
    surrogate.backward()
    assert weight.grad is None  # no gradient into the reward or the baseline
    assert_close(log_prob.grad, (reward - baseline).detach() / 12)
    assert reinforce_surrogate(log_prob, 1.0, 0.5).item() == pytest.approx(
        0.5 * log_prob.mean().item()
    )


def test_reinforce_surrogate_shape_errors():
    with pytest.raises(ValueError, match=r"\[S, 1\]"):
        reinforce_surrogate(torch.zeros(5), torch.zeros(5, 1))
    with pytest.raises(ValueError, match="broadcast"):
        reinforce_surrogate(torch.zeros(5), torch.zeros(4))
    with pytest.raises(ValueError, match="baseline"):
        reinforce_surrogate(torch.zeros(5), torch.zeros(5), torch.zeros(3))
    with pytest.raises(TypeError, match="reward"):
        reinforce_surrogate(torch.zeros(5), "1")
    with pytest.raises(TypeError, match="log_prob"):
        reinforce_surrogate(np.zeros(5), torch.zeros(5))
