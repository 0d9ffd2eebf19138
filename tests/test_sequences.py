"""lib.sequences: the enumerable sequence policy and the group estimators (RLOO, GRPO, Dr. GRPO).

Statistical tests use fixed seeds; their tolerances are multiples of the standard error (4 SE
for a single statistic, 4.5 SE for the largest of up to ~150 coordinates, whose chance of
exceeding it under the null is about 1e-3 in all).
"""

import math

import pytest
import torch

from lib import sequences
from lib.sequences import (
    PAD,
    SequencePolicy,
    enumerate_sequences,
    expected_group_gradient,
    group_advantages,
    group_gradient_estimates,
    group_surrogate,
)

T, V, P = 4, 3, 3  # length, vocabulary, prompts


def make_policy(seed=0, eos=0, batch=(P,)):
    g = torch.Generator().manual_seed(seed)
    return SequencePolicy(torch.randn(*batch, T, V + 1, V, generator=g, dtype=torch.float64), eos)


def binary_rewards(policy):
    """Three binary rewards of different difficulty, one per prompt: [M, 3]."""
    out = policy.outcomes()
    return torch.stack([(out.tokens[:, 0] == 1), (out.lengths == 3),
                        ((out.tokens == 2).sum(-1) >= 2)], -1).double()


def z_scores(estimates, expected):
    """Per-coordinate (mean - expected) / SE over the first dimension; SE 0 must match exactly."""
    mean, se = estimates.mean(0), estimates.std(0) / math.sqrt(len(estimates))
    exact_where_constant = (mean - expected)[se == 0].abs().max() if (se == 0).any() else 0.0
    assert exact_where_constant < 1e-12
    return ((mean - expected) / se)[se > 0]


# --- enumeration --------------------------------------------------------------------------


def test_enumeration_counts_and_padding():
    assert enumerate_sequences(3, 4).tokens.shape == (81, 4)
    seqs = enumerate_sequences(3, 4, eos=0)
    assert seqs.tokens.shape == (sum(2 ** (n - 1) for n in range(1, 5)) + 2**4, 4)
    assert len({tuple(s) for s in seqs.tokens.tolist()}) == len(seqs.tokens)
    for row, length in zip(seqs.tokens.tolist(), seqs.lengths.tolist()):
        assert all(t != PAD for t in row[:length]) and all(t == PAD for t in row[length:])
        assert 0 not in row[:length - 1]  # the end token only ends a sequence
        assert row[length - 1] == 0 or length == 4


@pytest.mark.parametrize("eos", [None, 0, 2])
def test_probabilities_sum_to_one(eos):
    policy = make_policy(eos=eos, batch=(2, P))
    probs = policy.probs()
    assert probs.shape == (len(policy.outcomes().tokens), 2, P)
    assert torch.allclose(probs.sum(0), torch.ones(2, P, dtype=torch.float64), atol=1e-12)


def test_token_log_probs_follow_the_definition():
    policy = make_policy()
    tokens = torch.tensor([[2, 1, 0, PAD], [1, 1, 2, 2]])
    lp = policy.token_log_probs(tokens[:, None, :])  # [2, P, T]
    logp = torch.log_softmax(policy.logits, -1)
    for i, seq in enumerate(tokens.tolist()):
        prev = V
        for t, tok in enumerate(seq):
            want = 0.0 if tok == PAD else logp[:, t, prev, tok]
            assert torch.allclose(lp[i, :, t], torch.as_tensor(want, dtype=torch.float64))
            prev = max(tok, 0)


def test_sampling_matches_enumeration():
    policy = make_policy(seed=1)
    n = 40_000
    drawn = policy.sample(n, torch.Generator().manual_seed(0))
    assert drawn.tokens.shape == (n, P, T) and drawn.lengths.shape == (n, P)
    index = policy.index_of(drawn.tokens)
    probs = policy.probs()
    counts = torch.zeros_like(probs).scatter_add_(0, index, torch.ones(n, P, dtype=probs.dtype))
    se = (probs * (1 - probs) / n).sqrt()
    z = (counts / n - probs) / se
    assert z.abs().max() < 4.5, z.abs().max()
    assert torch.equal(policy.outcomes().lengths[index], drawn.lengths)


def test_same_seed_same_samples_and_generator_checks():
    policy = make_policy()
    a = policy.sample(7, torch.Generator().manual_seed(3)).tokens
    b = policy.sample(7, torch.Generator().manual_seed(3)).tokens
    assert torch.equal(a, b)
    with pytest.raises(TypeError, match="generator"):
        policy.sample(7, 3)


def test_scores_equal_autograd():
    policy = make_policy()
    scores = sequences._scores(policy)  # [M, P, D]
    leaf = policy.logits.clone().requires_grad_(True)
    tokens = policy.outcomes().tokens
    for m in [0, 5, 17, len(tokens) - 1]:
        log_p = SequencePolicy(leaf, 0).log_prob(tokens[m]).sum()
        (grad,) = torch.autograd.grad(log_p, leaf)
        assert torch.allclose(scores[m], grad.flatten(-3), atol=1e-12)


def test_exact_gradient_matches_finite_differences():
    policy = make_policy()
    rewards = binary_rewards(policy)
    grad = policy.exact_gradient(rewards)
    h = 1e-6
    for index in [(0, 0, V, 1), (1, 2, 1, 0), (2, 1, 2, 2)]:
        up, down = policy.logits.clone(), policy.logits.clone()
        up[index] += h
        down[index] -= h
        fd = (SequencePolicy(up, 0).expected_reward(rewards)
              - SequencePolicy(down, 0).expected_reward(rewards))[index[0]] / (2 * h)
        assert abs(float(fd) - float(grad[index])) < 1e-8


# --- advantages ---------------------------------------------------------------------------


def test_group_advantages_by_hand():
    r = torch.tensor([1.0, 0.0, 0.0, 3.0])
    assert torch.allclose(group_advantages(r, "loo"), r - (r.sum() - r) / 3)
    assert torch.allclose(group_advantages(r, "mean"), r - 1.0)
    assert torch.allclose(group_advantages(r, "mean", std=True), (r - 1) / r.std())
    assert torch.allclose(group_advantages(r, "mean", std=True, correction=0),
                          (r - 1) / r.std(correction=0))
    assert torch.equal(group_advantages(r, "none"), r)
    # the identity behind the (1 - 1/G) bias: mean-baseline = (1 - 1/G) * leave-one-out
    assert torch.allclose(group_advantages(r, "mean"), 0.75 * group_advantages(r, "loo"))


@pytest.mark.parametrize("value", [0.0, 1.0, 0.1, -2.7])
@pytest.mark.parametrize("baseline,std", [("loo", False), ("mean", False), ("mean", True)])
def test_equal_rewards_give_exactly_zero_advantage(value, baseline, std):
    r = torch.full((5, 3), value, dtype=torch.float64)
    assert torch.equal(group_advantages(r, baseline, std), torch.zeros_like(r))


def test_fraction_of_all_equal_binary_groups_matches_closed_form():
    g = torch.Generator().manual_seed(0)
    n_groups = 20_000
    for p in [0.05, 0.3, 0.5, 0.9]:
        for G in [2, 4, 8, 16]:
            r = (torch.rand(n_groups, G, generator=g) < p).double()
            zero = (group_advantages(r, "mean", std=True, dim=1) == 0).all(1)
            equal = (r == r[:, :1]).all(1)
            assert torch.equal(zero, equal)  # zero advantage exactly when all are equal
            q = p**G + (1 - p) ** G
            se = math.sqrt(q * (1 - q) / n_groups)
            assert abs(float(zero.double().mean()) - q) < 4 * se + 1e-12, (p, G)


def test_all_equal_groups_contribute_no_gradient():
    """A prompt whose reward is the same for every sequence gets a zero estimate, always."""
    policy = make_policy()
    rewards = torch.ones(len(policy.outcomes().tokens), P, dtype=torch.float64)
    for method in ["rloo", "grpo", "dr_grpo"]:
        est = group_gradient_estimates(policy, rewards, 4, 50, method,
                                       torch.Generator().manual_seed(0))
        assert torch.equal(est, torch.zeros_like(est))


def test_group_surrogate_gradient_is_the_estimate():
    policy = make_policy()
    drawn = policy.sample(5, torch.Generator().manual_seed(2))  # a group of 5, per prompt
    rewards = binary_rewards(policy)
    index = policy.index_of(drawn.tokens)
    r = rewards.gather(0, index)
    a = group_advantages(r, "mean", std=True)
    leaf = policy.logits.clone().requires_grad_(True)
    lp = SequencePolicy(leaf, 0).token_log_probs(drawn.tokens)
    loss = group_surrogate(lp, a, drawn.tokens != PAD, length_normalise=True)
    (grad,) = torch.autograd.grad(loss * P, leaf)  # the surrogate also averages over prompts
    scores = sequences._scores(policy)  # [M, P, D]
    by_hand = sum((a[i] / drawn.lengths[i])[:, None] * scores[index[i], torch.arange(P)]
                  for i in range(5)) / 5
    assert torch.allclose(grad.flatten(-3), by_hand, atol=1e-12)


# --- exact expectations against Monte Carlo -----------------------------------------------


def test_rloo_is_unbiased():
    policy = make_policy(seed=2)
    rewards = binary_rewards(policy)
    exact = policy.exact_gradient(rewards)
    assert torch.allclose(expected_group_gradient(policy, rewards, 4, "rloo"), exact, atol=1e-14)
    est = group_gradient_estimates(policy, rewards, 4, 20_000, "rloo",
                                   torch.Generator().manual_seed(0))
    z = z_scores(est, exact)
    assert z.abs().max() < 4.5, z.abs().max()


@pytest.mark.parametrize("G", [2, 4, 8])
def test_group_mean_scales_the_gradient_by_one_minus_one_over_g(G):
    """E[(r_i - mean) s_i] = (1 - 1/G) E[r_i s_i] - (1/G) sum_(j != i) E[r_j] E[s_i]
    = (1 - 1/G) grad J, because E[s_i] = 0 and o_j is independent of o_i."""
    policy = make_policy(seed=3)
    rewards = binary_rewards(policy)
    exact = policy.exact_gradient(rewards)
    expected = expected_group_gradient(policy, rewards, G, "dr_grpo")
    assert torch.allclose(expected, (1 - 1 / G) * exact, atol=1e-14)
    est = group_gradient_estimates(policy, rewards, G, 20_000, "dr_grpo",
                                   torch.Generator().manual_seed(G))
    direction = exact.flatten()
    rho = est.flatten(1) @ direction / (direction @ direction)
    se = float(rho.std()) / math.sqrt(len(rho))
    assert abs(float(rho.mean()) - (1 - 1 / G)) < 4 * se
    assert abs(float(rho.mean()) - 1) > 4 * se  # the bias is resolved, not only consistent


def std_weight(p, G, correction=1):
    """Closed form of E[grpo estimate of one prompt] / grad J for a binary reward of rate p:
    c(1) - c(0), c(a) = E[A_1 | r_1 = a] over k ~ Binomial(G - 1, p) successes among the others."""
    total = 0.0
    for k in range(G):  # successes among the G - 1 others
        pk = math.comb(G - 1, k) * p**k * (1 - p) ** (G - 1 - k)
        for own in (0, 1):
            s = k + own
            var = s * (G - s) / G / (G - correction)  # std of s ones among G, with correction
            if 0 < s < G:
                total += pk * (own - s / G) / math.sqrt(var) * (1 if own else -1)
    return total


@pytest.mark.parametrize("G", [2, 4, 8, 16])
def test_std_normalisation_reweights_prompts_by_the_closed_form(G):
    policy = make_policy(seed=7)
    rewards = binary_rewards(policy)
    exact = policy.exact_gradient(rewards)
    rates = policy.expected_reward(rewards)  # 0.50, 0.12, 0.04
    expected = expected_group_gradient(policy, rewards, G, "grpo", length_normalise=False)
    weights = [std_weight(float(rates[q]), G) for q in range(P)]
    for q in range(P):
        assert torch.allclose(expected[q], weights[q] * exact[q], atol=1e-12), q
    cosine = torch.nn.functional.cosine_similarity(expected.flatten(), exact.flatten(), 0)
    if G == 2:  # one success and one failure, A = +-1/sqrt(2): the same scale for every prompt
        assert weights == pytest.approx([math.sqrt(0.5)] * P, abs=1e-12)
        assert cosine > 1 - 1e-12
    if G >= 8:  # a reweighting of prompts: the direction changes, not only the scale
        assert max(weights) / min(weights) > 1.2
        assert cosine < 1 - 1e-3


def test_std_weight_closed_form_examples():
    assert std_weight(0.5, 2) == pytest.approx(math.sqrt(2) / 2)  # A = +-1/sqrt(2), half the time
    # the population-std limit for large G is 1 / sqrt(p (1 - p))
    assert std_weight(0.2, 400, correction=0) == pytest.approx(1 / math.sqrt(0.16), rel=0.01)


def test_length_normalisation_matches_its_closed_form_and_biases_lengths():
    """E[(r_i - mean)/|o_i| s_i] = (1 - 1/G) sum_o p(o) (r(o) - J) s(o) / |o|. With a reward
    that depends on the first token only, the true gradient of the later positions is 0."""
    g = torch.Generator().manual_seed(5)
    policy = SequencePolicy(0.3 * torch.randn(T, V + 1, V, generator=g, dtype=torch.float64), 0)
    out = policy.outcomes()
    rewards = (out.tokens[:, 0] == 1).double()  # "answer 1 first", then anything
    G = 4
    exact = policy.exact_gradient(rewards)
    assert exact[1:].abs().max() < 1e-15
    expected = expected_group_gradient(policy, rewards, G, "dr_grpo", length_normalise=True)
    probs, j = policy.probs(), policy.expected_reward(rewards)
    scores = sequences._scores(policy)
    closed = (1 - 1 / G) * ((probs * (rewards - j) / out.lengths)[:, None] * scores).sum(0)
    assert torch.allclose(expected.flatten(), closed, atol=1e-14)
    assert expected[1:].abs().max() > 1e-3  # a bias where the true gradient is 0
    # wrong answers start with token 2: their end-token logit at t = 1 is pushed down (longer)
    assert expected[1, 2, 0] < 0
    # and correct answers (first token 1) are pushed towards ending at t = 1 (shorter)
    assert expected[1, 1, 0] > 0
    # Dr. GRPO (no length normalisation) leaves them alone
    assert expected_group_gradient(policy, rewards, G, "dr_grpo")[1:].abs().max() < 1e-15


@pytest.mark.parametrize("method", ["grpo", "dr_grpo", "reinforce"])
def test_monte_carlo_matches_the_exact_expectation(method):
    policy = make_policy(seed=6)
    rewards = binary_rewards(policy)
    expected = expected_group_gradient(policy, rewards, 4, method)
    est = group_gradient_estimates(policy, rewards, 4, 20_000, method,
                                   torch.Generator().manual_seed(1))
    z = z_scores(est, expected)
    assert z.abs().max() < 4.5, z.abs().max()


def test_expected_gradient_with_several_reward_values():
    """The std path enumerates tuples of distinct reward values; check it on 3 values."""
    policy = make_policy(seed=7, batch=())
    out = policy.outcomes()
    rewards = (out.lengths.double() - 2.5).sign() + (out.tokens[:, 0] == 2).double()
    expected = expected_group_gradient(policy, rewards, 3, "grpo")
    est = group_gradient_estimates(policy, rewards, 3, 20_000, "grpo",
                                   torch.Generator().manual_seed(2))
    z = z_scores(est, expected)
    assert z.abs().max() < 4.5, z.abs().max()


# --- argument checks ----------------------------------------------------------------------


def test_argument_checks_name_the_argument():
    with pytest.raises(ValueError, match=r"\[\*batch, T, V \+ 1, V\]"):
        SequencePolicy(torch.zeros(4, 3, 3))
    with pytest.raises(ValueError, match="eos"):
        SequencePolicy(torch.zeros(4, 4, 3), eos=3)
    with pytest.raises(TypeError, match="logits"):
        SequencePolicy([[0.0]])
    policy = make_policy()
    with pytest.raises(ValueError, match="rewards"):
        policy.expected_reward(torch.zeros(5))
    with pytest.raises(ValueError, match="tokens"):
        policy.log_prob(torch.zeros(2, T))
    with pytest.raises(ValueError, match="cannot produce"):
        policy.index_of(torch.tensor([[0, 1, PAD, PAD]]))
    with pytest.raises(ValueError, match="baseline"):
        group_advantages(torch.zeros(3), "median")
    with pytest.raises(ValueError, match="at least 2"):
        group_advantages(torch.zeros(1), "loo")
    with pytest.raises(ValueError, match="method"):
        expected_group_gradient(policy, binary_rewards(policy), 4, "ppo")
    with pytest.raises(TypeError, match="unexpected keyword"):
        expected_group_gradient(policy, binary_rewards(policy), 4, "grpo", clip=0.2)
    with pytest.raises(ValueError, match="group_size"):
        expected_group_gradient(policy, binary_rewards(policy), 1, "rloo")
    with pytest.raises(ValueError, match="MAX_REWARD_TUPLES"):
        expected_group_gradient(policy, torch.arange(31.0, dtype=torch.float64), 6, "grpo")
