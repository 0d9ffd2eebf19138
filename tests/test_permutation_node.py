"""PermutationNode (the Gibbs law over permutations as a registry node) and the lab's
KSubsetProblem and PermutationProblem, against brute-force oracles written here with
itertools and NumPy (independent of lib's enumeration)."""

import itertools
import math

import numpy as np
import pytest
import scipy.stats
import torch

from lib.compare import KSubsetProblem, PermutationProblem, get_estimator, measure, optimise
from lib.estimators import NODE_KINDS, estimator_names, surrogate
from lib.permutations import PERMUTATION_LABELS, PermutationNode, matching


def gen(seed):
    return torch.Generator().manual_seed(seed)


def scores(n, seed, batch=()):
    return torch.randn(*batch, n, n, generator=gen(seed), dtype=torch.float64)


def brute_gibbs(x):
    """Every permutation (tuple sigma) and its Gibbs probability, for one n x n array."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    perms = list(itertools.permutations(range(n)))
    s = np.array([sum(x[i, p[i]] for i in range(n)) for p in perms])
    w = np.exp(s - s.max())
    return perms, w / w.sum()


def as_matrix(sigma):
    n = len(sigma)
    m = np.zeros((n, n))
    m[np.arange(n), list(sigma)] = 1.0
    return m


X4 = torch.tensor([[2.0, 0.0, 0.0, 0.0],
                   [0.0, 1.0, 0.5, 0.0],
                   [0.0, 0.0, 0.0, 1.5],
                   [0.5, 0.0, 0.0, 0.0]], dtype=torch.float64)
VALUES = torch.tensor([0.3, -1.2, 2.0, 0.7], dtype=torch.float64)
TARGET = VALUES.sort().values
COSTS = {  # two shapes: a quadratic and a distance
    "squared": lambda p: ((p @ VALUES - TARGET) ** 2).sum(-1),
    "absolute": lambda p: (p @ VALUES - TARGET).abs().sum(-1),
}


# ------------------------------------------------------------------------- the node itself


def test_permutation_is_a_registry_kind_with_the_six_generic_estimators():
    assert "permutation" in NODE_KINDS
    assert estimator_names("permutation") == (
        "exact", "reinforce", "reinforce_loo", "straight_through", "gumbel_softmax",
        "st_gumbel_softmax")
    assert set(PERMUTATION_LABELS) == set(estimator_names("permutation"))
    node = PermutationNode(scores(3, 0))
    with pytest.raises(ValueError, match="supports bernoulli nodes only"):
        surrogate("arm", node, lambda p: p.sum((-1, -2)))
    with pytest.raises(ValueError, match="kind must be one of"):
        estimator_names("tree")


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_log_prob_outcomes_and_marginals_match_brute_force(n):
    x = scores(n, 10 + n, batch=(2,))
    node = PermutationNode(x)
    z, p = node.outcomes()
    assert z.shape == (math.factorial(n), 2, n, n) and p.shape == (math.factorial(n), 2)
    for b in range(2):
        perms, probs = brute_gibbs(x[b])
        got = {tuple(z[r, b].argmax(-1).tolist()): float(p[r, b]) for r in range(len(perms))}
        for sigma, q in zip(perms, probs):
            assert got[sigma] == pytest.approx(q, rel=1e-12, abs=1e-15)
        mats = torch.tensor(np.stack([as_matrix(s) for s in perms]))  # [n!, n, n]
        log_p = node.log_prob(mats.unsqueeze(1).expand(-1, 2, n, n))[:, b]
        assert torch.allclose(log_p.exp(), torch.tensor(probs), rtol=1e-12, atol=1e-15)
        marg = (torch.tensor(probs)[:, None, None] * mats).sum(0)
        assert torch.allclose(node.probs()[b], marg, rtol=1e-12, atol=1e-15)


def test_log_prob_broadcasts_samples_against_a_batch_of_scores():
    x = scores(3, 3, batch=(5,))
    z, _ = PermutationNode(x[0]).outcomes()  # [6, 3, 3]
    got = PermutationNode(x).log_prob(z.unsqueeze(1))  # [6, 1, 3, 3] against [5, 3, 3]
    assert got.shape == (6, 5)
    for b in range(5):
        assert torch.allclose(got[:, b], PermutationNode(x[b]).log_prob(z), rtol=1e-12)


def test_sampler_draws_the_gibbs_law():
    """Chi-square over the 24 permutations of n = 4 (fixed seed; p-value, not a tolerance)."""
    n_draws = 60_000
    draws = PermutationNode(X4).sample(n_draws, gen(1))
    assert draws.shape == (n_draws, 4, 4)
    assert torch.equal(draws.sum(-1), torch.ones(n_draws, 4))
    assert torch.equal(draws.sum(-2), torch.ones(n_draws, 4))
    perms, probs = brute_gibbs(X4)
    index = {s: r for r, s in enumerate(perms)}
    counts = np.bincount([index[tuple(s)] for s in draws.argmax(-1).tolist()], minlength=24)
    assert scipy.stats.chisquare(counts, probs * n_draws).pvalue > 1e-3
    # and it is not the Gumbel-matching law, which the same test rejects
    gm = matching(X4 + -torch.log(-torch.log(torch.rand(n_draws, 4, 4, generator=gen(2),
                                                        dtype=torch.float64))))
    counts_gm = np.bincount([index[tuple(s)] for s in gm.argmax(-1).tolist()], minlength=24)
    assert scipy.stats.chisquare(counts_gm, probs * n_draws).pvalue < 1e-12


def test_sample_from_is_the_inverse_distribution_function():
    x = scores(3, 4)
    perms, probs = brute_gibbs(x)
    cdf = np.cumsum(probs)
    node = PermutationNode(x)
    for r in range(6):  # a uniform just inside each permutation's interval selects it
        lo = 0.0 if r == 0 else cdf[r - 1]
        for v in (lo + 1e-9, 0.5 * (lo + cdf[r]), cdf[r] - 1e-9):
            u = torch.full((1, 3, 3), v, dtype=torch.float64)
            assert tuple(node.sample_from(u)[0].argmax(-1).tolist()) == perms[r]


def test_relaxed_samples_are_gumbel_sinkhorn_and_their_hard_values_the_matching():
    x = scores(4, 5).requires_grad_()
    node = PermutationNode(x, n_iters=200)
    u = node.uniforms(3, gen(6))
    perturbed = x.detach() - torch.log(-torch.log(u))
    soft = node.relaxed_from(u, 0.5)
    one = torch.ones(3, 4, dtype=torch.float64)
    assert torch.allclose(soft.sum(-2), one, atol=1e-12)  # columns: exact
    assert torch.allclose(soft.sum(-1), one, atol=1e-6)  # rows: 200 iterations
    hard = node.relaxed_from(u, 0.5, hard=True)
    assert torch.allclose(hard.detach(), matching(perturbed), rtol=0, atol=1e-12)
    (g_soft,) = torch.autograd.grad((soft * VALUES).sum(), x)
    (g_hard,) = torch.autograd.grad((hard * VALUES).sum(), x)
    assert torch.allclose(g_soft, g_hard, rtol=1e-12, atol=1e-14)  # straight-through
    assert torch.equal(node.relaxed(3, 0.5, False, gen(6)).detach(), soft.detach())


def test_fixed_uniforms_give_several_nodes_one_draw():
    x = scores(4, 7, batch=(3,))
    u = PermutationNode(x[0]).uniforms(5, gen(8))  # [5, 4, 4]
    shared = PermutationNode(x, fixed_uniforms=u.unsqueeze(1))
    for m in range(3):
        own = PermutationNode(x[m], fixed_uniforms=u)
        assert torch.equal(shared.sample(5)[:, m], own.sample(5))
        assert torch.allclose(shared.relaxed(5, 0.3, True)[:, m], own.relaxed(5, 0.3, True),
                              rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("bad, match", [
    (lambda: PermutationNode(torch.zeros(3, 4)), r"log_alpha must have shape \[\.\.\., n, n\]"),
    (lambda: PermutationNode(torch.zeros(9, 9)), r"enumeration needs n <= 8"),
    (lambda: PermutationNode(torch.zeros(3, 3), n_iters=0), r"n_iters must be"),
    (lambda: PermutationNode(torch.zeros(3, 3), fixed_uniforms=torch.rand(2, 4, 4)),
     r"fixed_uniforms must have shape \[S, \*shape\]"),
    (lambda: PermutationNode(torch.zeros(3, 3)).sample_from(torch.rand(2, 3)),
     r"u must have shape \[\.\.\., 3, 3\]"),
    (lambda: PermutationProblem(torch.zeros(3, 4), lambda p: p.sum((-1, -2))),
     r"log_alpha must be a square \[n, n\] tensor"),
    (lambda: KSubsetProblem(torch.zeros(3), 4, lambda z: z.sum(-1)), r"k must be at most n"),
    (lambda: KSubsetProblem(torch.zeros(3), 0, lambda z: z.sum(-1)), r"k must be"),
])
def test_bad_input_is_refused_with_the_argument_named(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_nan_scores_are_refused():
    with pytest.raises(ValueError, match="log_alpha must be finite"):
        PermutationNode(torch.full((3, 3), float("nan")))


# ----------------------------------------------------------------------- the registry on it


@pytest.mark.parametrize("cost", sorted(COSTS))
def test_exact_gradient_matches_a_brute_force_expectation(cost):
    f = COSTS[cost]
    perms, _ = brute_gibbs(X4)
    mats = torch.tensor(np.stack([as_matrix(s) for s in perms]))
    leaf = X4.clone().requires_grad_()
    score = (leaf.unsqueeze(0) * mats).sum((-1, -2))
    expected = (torch.softmax(score, 0) * f(mats)).sum()
    (oracle,) = torch.autograd.grad(expected, leaf)
    leaf2 = X4.clone().requires_grad_()
    out = surrogate("exact", PermutationNode(leaf2), f)
    (got,) = torch.autograd.grad(out.loss, leaf2)
    assert float(out.loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-12)
    assert torch.allclose(got, oracle, rtol=1e-10, atol=1e-12)
    problem = PermutationProblem(X4, f)
    assert torch.allclose(problem.exact_gradient(), oracle, rtol=1e-10, atol=1e-12)
    assert problem.exact_value() == pytest.approx(float(expected.detach()), rel=1e-12)


@pytest.mark.parametrize("cost", sorted(COSTS))
@pytest.mark.parametrize("name", ["reinforce", "reinforce_loo"])
def test_score_function_estimators_are_unbiased_on_the_gibbs_law(name, cost):
    """Every coordinate of the mean of 4,000 estimates within 4.5 of its standard errors
    (fixed seed; 16 coordinates, so a false alarm has probability about 1e-4)."""
    m = measure(PermutationProblem(X4, COSTS[cost]), get_estimator(name), 4, 4000, gen(9))
    assert m.max_abs_z < 4.5
    assert m.bias_norm < 3 * m.bias_noise


@pytest.mark.parametrize("cost", sorted(COSTS))
@pytest.mark.parametrize("name, params", [("straight_through", {}),
                                          ("gumbel_softmax", {"tau": 0.5}),
                                          ("st_gumbel_softmax", {"tau": 0.5})])
def test_the_lab_detects_the_bias_of_the_relaxed_and_straight_through_estimators(
        name, params, cost):
    """On the sorting problem both costs give each of them a bias far outside its noise."""
    m = measure(PermutationProblem(X4, COSTS[cost]), get_estimator(name, **params), 4, 2000,
                gen(10))
    assert m.max_abs_z > 10
    assert m.bias_norm > 5 * m.bias_noise


def test_optimise_lowers_the_exact_expected_cost_of_a_permutation():
    problem = PermutationProblem(X4, COSTS["squared"])
    out = optimise(problem, get_estimator("reinforce_loo"), n_steps=200, lr=0.1, n_samples=4,
                   n_runs=4, generator=gen(11), optimizer="adam")
    assert out.value.shape == (201, 4)
    assert bool((out.value[-1] < 0.5 * out.value[0]).all())


# ------------------------------------------------------------------------ k-subsets in the lab


def brute_ksubset(theta, k):
    subsets = list(itertools.combinations(range(len(theta)), k))
    w = np.exp([sum(theta[i] for i in s) for s in subsets])
    return subsets, w / w.sum()


def test_ksubset_problem_exact_value_and_gradient_match_brute_force():
    theta = torch.tensor([0.5, -1.0, 0.3, 2.0, 0.0], dtype=torch.float64)
    weights = torch.tensor([1.0, 3.0, -2.0, 0.5, 1.0], dtype=torch.float64)
    f = lambda z: torch.exp(z @ weights / 2)  # noqa: E731 (a non-quadratic cost)
    problem = KSubsetProblem(theta, 2, f)
    subsets, probs = brute_ksubset(theta.tolist(), 2)
    values = [math.exp(sum(weights[i].item() for i in s) / 2) for s in subsets]
    assert problem.n_outcomes == 10
    assert problem.exact_value() == pytest.approx(float(np.dot(probs, values)), rel=1e-12)
    # d/dtheta_j E[f] = E[f (z_j - E z_j)]
    z = np.array([[1.0 if i in s else 0.0 for i in range(5)] for s in subsets])
    mean_z = probs @ z
    oracle = (probs * np.array(values)) @ (z - mean_z)
    assert np.allclose(problem.exact_gradient().numpy(), oracle, rtol=1e-10, atol=1e-12)
    m = measure(problem, get_estimator("reinforce_loo"), 4, 4000, gen(12))
    assert m.max_abs_z < 4.5  # 5 coordinates; see the permutation test above
    assert repr(problem) == "KSubsetProblem(D=5, k=2)"


def test_imle_is_a_registry_estimator_for_ksubsets_only():
    """The lab measures I-MLE through the registry; it is biased on a non-additive cost, and
    the registry's name gives the same estimates as lib.subsets.imle_topk on the same noise."""
    from lib.subsets import KSubsetNode, imle_topk

    assert estimator_names("ksubset")[-1] == "imle"
    assert "imle" not in estimator_names("categorical") + estimator_names("bernoulli")
    theta = torch.tensor([0.5, -1.0, 0.3, 2.0, 0.0], dtype=torch.float64)
    weights = torch.tensor([1.0, 3.0, -2.0, 0.5, 1.0], dtype=torch.float64)
    problem = KSubsetProblem(theta, 2, lambda z: (z @ weights) ** 2)
    m = measure(problem, get_estimator("imle", lam=0.5), 4, 2000, gen(13))
    assert m.max_abs_z > 10
    leaf = theta.clone().requires_grad_()
    out = surrogate("imle", KSubsetNode(leaf, 2), lambda z: (z @ weights) ** 2, 3, gen(14),
                    lam=0.5)
    (g_registry,) = torch.autograd.grad(out.loss, leaf)
    leaf2 = theta.clone().requires_grad_()
    z = imle_topk(leaf2, 2, 3, lam=0.5, generator=gen(14))
    (g_direct,) = torch.autograd.grad(((z @ weights) ** 2).mean(0), leaf2)
    assert torch.equal(g_registry, g_direct)
    with pytest.raises(ValueError, match="lam must be"):
        surrogate("imle", KSubsetNode(leaf, 2), lambda z: z.sum(-1), lam=0.0)


def test_cost_evaluations_of_structured_nodes():
    from lib.estimators import cost_evaluations
    from lib.subsets import KSubsetNode

    assert cost_evaluations("exact", PermutationNode(torch.zeros(4, 4)), 3) == 24
    assert cost_evaluations("st_gumbel_softmax", PermutationNode(torch.zeros(4, 4)), 3) == 3
    assert cost_evaluations("exact", KSubsetNode(torch.zeros(5), 2), 3) == 10
    assert cost_evaluations("imle", KSubsetNode(torch.zeros(5), 2), 3) == 3
