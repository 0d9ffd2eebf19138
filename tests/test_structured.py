"""Tests of lib.structured against independent oracles (enumeration, closed forms, chi-square)."""

import itertools
import math

import numpy as np
import pytest
import scipy.stats
import torch

from lib.estimators import enumerate_binary
from lib.gumbel import gumbel_topk_sample
from lib.structured import (
    binary_index,
    chain_log_probs,
    chain_map,
    chain_score,
    perturb_and_map_chain,
    without_replacement_log_prob,
)

P_MIN = 1e-3  # significance level of every goodness-of-fit test (fixed seeds: deterministic)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def chi_square_pvalue(counts, probs):
    counts = np.asarray(counts, dtype=float)
    probs = np.asarray(probs, dtype=float)
    expected = counts.sum() * probs / probs.sum()  # float32 probabilities sum to 1 +- 1e-7
    assert expected.min() >= 5, "test design: chi-square needs expected counts >= 5"
    return scipy.stats.chisquare(counts, expected).pvalue


def loop_score(z, u, c):
    """The chain score written as plain Python loops (the oracle)."""
    n = len(u)
    return sum(u[i] * z[i] for i in range(n)) + sum(c[i] * z[i] * z[i + 1] for i in range(n - 1))


# ---------------------------------------------------------------- chain_score / chain_map


def test_chain_score_matches_loops_on_every_vector():
    g = gen(0)
    u, c = torch.randn(5, generator=g), torch.randn(4, generator=g)
    z = enumerate_binary(5)
    expected = torch.tensor([loop_score(row.tolist(), u.tolist(), c.tolist()) for row in z])
    torch.testing.assert_close(chain_score(z, u, c), expected)


@pytest.mark.parametrize("n", [1, 2, 3, 6])
def test_chain_map_equals_enumeration_argmax(n):
    g = gen(n)
    batch = 200
    u = 2 * torch.randn(batch, n, generator=g, dtype=torch.float64)
    c = 2 * torch.randn(batch, n - 1, generator=g, dtype=torch.float64)
    z_all = enumerate_binary(n, dtype=torch.float64)
    scores = chain_score(z_all, u.unsqueeze(1), c.unsqueeze(1))  # [batch, 2**n]
    best = z_all[scores.argmax(-1)]
    z_map = chain_map(u, c)
    assert z_map.shape == (batch, n)
    torch.testing.assert_close(z_map, best)  # continuous scores: ties have probability 0


def test_chain_map_broadcasts_shared_coupling():
    u = torch.randn(7, 4, generator=gen(1))
    c = torch.tensor([1.0, -2.0, 0.5])
    torch.testing.assert_close(chain_map(u, c), chain_map(u, c.expand(7, 3)))


# ---------------------------------------------------------------- exact distribution


def test_chain_log_probs_match_loop_softmax_and_sum_to_one():
    u, c = torch.tensor([0.3, -1.0, 0.8]), torch.tensor([1.5, -0.7])
    scores = [loop_score(z, u.tolist(), c.tolist()) for z in itertools.product([0, 1], repeat=3)]
    expected = np.exp(scores) / np.sum(np.exp(scores))
    probs = chain_log_probs(u, c).exp()
    np.testing.assert_allclose(probs.numpy(), expected, rtol=1e-5)
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-6)


def test_chain_without_coupling_is_independent_bernoulli():
    u = torch.tensor([0.3, -1.0, 0.8, 2.0], dtype=torch.float64)
    probs = chain_log_probs(u, torch.zeros(3, dtype=torch.float64)).exp()
    p1 = torch.sigmoid(u)
    z = enumerate_binary(4, dtype=torch.float64)
    product = (z * p1 + (1 - z) * (1 - p1)).prod(-1)
    torch.testing.assert_close(probs, product)


def test_binary_index_inverts_enumerate_binary():
    z = enumerate_binary(6)
    assert torch.equal(binary_index(z), torch.arange(64))
    with pytest.raises(ValueError, match="only 0 and 1"):
        binary_index(torch.tensor([0.0, 2.0]))


# ---------------------------------------------------------------- perturb-and-MAP


def test_perturb_and_map_is_exact_without_coupling():
    u = torch.tensor([0.5, -1.0, 1.5, 0.0])
    c = torch.zeros(3)
    samples = perturb_and_map_chain(u, c, 40_000, generator=gen(2))
    assert samples.shape == (40_000, 4)
    counts = torch.bincount(binary_index(samples), minlength=16)
    assert chi_square_pvalue(counts, chain_log_probs(u, c).exp()) > P_MIN


def test_perturb_and_map_is_biased_with_strong_coupling():
    # Low-order perturbation is not exact once the bits interact: a test that could pass only
    # if the sampler were exact. With 40k samples the standard error of a frequency is below
    # 0.0025, while the total-variation gap here is about 0.16 (400k samples, two other seeds).
    u = torch.tensor([-1.0, 0.5, -0.5, 1.0])
    c = torch.tensor([2.0, -2.0, 2.0])
    samples = perturb_and_map_chain(u, c, 40_000, generator=gen(3))
    freqs = torch.bincount(binary_index(samples), minlength=16).double() / 40_000
    exact = chain_log_probs(u.double(), c.double()).exp()
    assert 0.5 * (freqs - exact).abs().sum().item() > 0.08


def test_perturb_and_map_batched_output_shape():
    out = perturb_and_map_chain(torch.zeros(3, 5), torch.zeros(4), 6, generator=gen(4))
    assert out.shape == (6, 3, 5)
    assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_chain_argument_checks():
    with pytest.raises(ValueError, match="coupling must have shape"):
        chain_map(torch.zeros(4), torch.zeros(4))
    with pytest.raises(TypeError, match="unary must be"):
        chain_map(np.zeros(4), torch.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        chain_map(torch.tensor([0.0, float("nan")]), torch.zeros(1))
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        perturb_and_map_chain(torch.zeros(2), torch.zeros(1), 0)


# ---------------------------------------------------------------- without replacement


def test_without_replacement_closed_form():
    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    lp = without_replacement_log_prob(p.log(), torch.tensor([[0, 2], [1, 0], [2, 1]]))
    expected = torch.tensor(
        [0.5 * 0.2 / 0.5, 0.3 * 0.5 / 0.7, 0.2 * 0.3 / 0.8], dtype=torch.float64
    )
    torch.testing.assert_close(lp.exp(), expected)


def test_without_replacement_k1_is_log_softmax_and_sums_to_one():
    logits = torch.randn(6, generator=gen(5), dtype=torch.float64)
    lp1 = without_replacement_log_prob(logits, torch.arange(6).unsqueeze(-1))
    torch.testing.assert_close(lp1, torch.log_softmax(logits, -1))
    draws = torch.tensor(list(itertools.permutations(range(6), 3)))
    total = without_replacement_log_prob(logits, draws).exp().sum().item()
    assert total == pytest.approx(1.0, abs=1e-12)


def test_gumbel_topk_frequencies_match_without_replacement_probs():
    logits = torch.tensor([1.0, 0.0, -0.5, 0.5])
    draws = list(itertools.permutations(range(4), 2))
    exact = without_replacement_log_prob(logits, torch.tensor(draws)).exp()
    n = 30_000
    samples = gumbel_topk_sample(logits.expand(n, 4), 2, generator=gen(6))
    index = {d: j for j, d in enumerate(draws)}
    counts = np.bincount([index[tuple(s)] for s in samples.tolist()], minlength=len(draws))
    assert chi_square_pvalue(counts, exact) > P_MIN


def test_without_replacement_masked_and_argument_checks():
    logits = torch.tensor([0.0, float("-inf"), 0.0])
    assert without_replacement_log_prob(logits, torch.tensor([1, 0])).item() == -math.inf
    assert without_replacement_log_prob(logits, torch.tensor([0, 2])).exp().item() == (
        pytest.approx(0.5)
    )
    with pytest.raises(ValueError, match="must not repeat"):
        without_replacement_log_prob(torch.zeros(3), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="indices in"):
        without_replacement_log_prob(torch.zeros(3), torch.tensor([3]))
    with pytest.raises(TypeError, match="integer"):
        without_replacement_log_prob(torch.zeros(3), torch.tensor([0.0]))


def test_batch_shapes_that_do_not_broadcast_are_named():
    with pytest.raises(ValueError, match=r"batch shapes of unary \(2,\) and coupling \(3,\)"):
        chain_map(torch.zeros(2, 4), torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"batch shapes of logits \(2,\) and draws \(3,\)"):
        without_replacement_log_prob(torch.zeros(2, 4), torch.tensor([[0, 1]] * 3))
