"""Tests of lib.temperature against enumeration, SciPy quadrature and Monte Carlo oracles."""

import itertools
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.integrate  # noqa: E402
import scipy.special  # noqa: E402
import scipy.stats  # noqa: E402
import torch  # noqa: E402

from lib.temperature import (  # noqa: E402
    TemperatureExperiment,
    expected_empirical_tv,
    plot_temperature_grid,
    plot_tv_curves,
    temperature_experiment,
    total_variation,
    tv_noise_floor,
    tv_sd_bound,
)

P_MIN = 1e-3  # significance level of every goodness-of-fit test (fixed seeds: deterministic)
TAUS = (0.001, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0)
LOGITS = torch.tensor([1.2, 0.4, 0.0, -0.3, -1.0, 0.8], dtype=torch.float64)


def gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def experiment():
    return temperature_experiment(LOGITS, TAUS, 10_000, generator=gen(0))


# ---------------------------------------------------------------- distances


def test_total_variation_is_the_largest_difference_over_events():
    """TV = max over all events A of |p(A) - q(A)|: checked by enumerating the 2^K events."""
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(5))
    best = max(
        abs(p[list(a)].sum() - q[list(a)].sum())
        for r in range(6)
        for a in itertools.combinations(range(5), r)
    )
    tv = total_variation(torch.tensor(p), torch.tensor(q))
    assert math.isclose(float(tv), best, rel_tol=1e-12)


def test_total_variation_batches_and_validates():
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    torch.testing.assert_close(total_variation(p, torch.tensor([0.5, 0.5])),
                               torch.tensor([0.5, 0.0]))
    with pytest.raises(TypeError, match="p must be"):
        total_variation(np.array([1.0, 0.0]), p)
    with pytest.raises(ValueError, match=r"shapes of p \(3,\) and q \(2,\) do not broadcast"):
        total_variation(torch.ones(3) / 3, torch.ones(2) / 2)


def test_expected_empirical_tv_equals_multinomial_enumeration():
    """Oracle: sum over every possible count vector of a small multinomial (scipy pmf)."""
    p = np.array([0.5, 0.3, 0.2])
    q = np.array([0.1, 0.6, 0.3])
    n = 6
    expected = 0.0
    for c0 in range(n + 1):
        for c1 in range(n + 1 - c0):
            counts = np.array([c0, c1, n - c0 - c1])
            pmf = scipy.stats.multinomial.pmf(counts, n, p)
            expected += pmf * 0.5 * np.abs(counts / n - q).sum()
    ours = expected_empirical_tv(torch.tensor(p), torch.tensor(q), n)
    assert math.isclose(ours, expected, rel_tol=1e-10)


def test_expected_empirical_tv_matches_monte_carlo():
    p = torch.tensor([0.6, 0.25, 0.1, 0.05], dtype=torch.float64)
    q = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    n, reps = 300, 4000
    rng = np.random.default_rng(1)
    tvs = 0.5 * np.abs(rng.multinomial(n, p.numpy(), size=reps) / n - q.numpy()).sum(1)
    se = tvs.std() / math.sqrt(reps)  # standard error of the Monte Carlo mean
    assert abs(expected_empirical_tv(p, q, n) - tvs.mean()) < 4 * se


def test_expected_empirical_tv_handles_zero_and_tiny_probabilities():
    """softmax(x / 0.001) has probabilities that underflow to 0 or are denormal."""
    p = torch.softmax(LOGITS / 0.001, -1)
    q = torch.softmax(LOGITS, -1)
    value = expected_empirical_tv(p, q, 10_000)
    assert math.isclose(value, float(total_variation(p, q)), rel_tol=1e-9)
    one_hot = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    assert expected_empirical_tv(one_hot, one_hot, 50) == 0.0


def test_noise_floor_matches_the_normal_approximation_for_large_n():
    p = torch.softmax(LOGITS, -1)
    n = 10_000
    approx = 0.5 * np.sum(np.sqrt(2 * p.numpy() * (1 - p.numpy()) / (math.pi * n)))
    assert math.isclose(tv_noise_floor(p, n), approx, rel_tol=0.01)


def test_tv_sd_bound_bounds_the_monte_carlo_sd():
    n, reps = 200, 4000
    rng = np.random.default_rng(2)
    for p, q in [([0.5, 0.5], [0.5, 0.5]), ([0.7, 0.2, 0.1], [0.2, 0.3, 0.5])]:
        tvs = 0.5 * np.abs(rng.multinomial(n, p, size=reps) / n - np.array(q)).sum(1)
        # the sd estimate over 4000 replicates has relative error ~1/sqrt(2*4000) ~ 1.1%
        assert tvs.std() <= 1.05 * tv_sd_bound(n)
    assert math.isclose(tv_sd_bound(10_000), 1 / math.sqrt(20_000))


def test_expected_empirical_tv_validates():
    p = torch.tensor([0.5, 0.5], dtype=torch.float64)
    with pytest.raises(ValueError, match="sum to 1"):
        expected_empirical_tv(torch.tensor([0.5, 0.6]), p, 10)
    with pytest.raises(ValueError, match="same shape"):
        expected_empirical_tv(torch.ones(3) / 3, p, 10)
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        expected_empirical_tv(p, p, 0)
    with pytest.raises(ValueError, match="1-D"):
        expected_empirical_tv(torch.ones(2, 2) / 2, p, 10)


# ---------------------------------------------------------------- the experiment


def test_tempered_probs_are_the_softmax_of_scaled_logits(experiment):
    for i, tau in enumerate(TAUS):
        expected = scipy.special.softmax(LOGITS.numpy() / tau)
        np.testing.assert_allclose(experiment.tempered_probs[i].numpy(), expected, atol=1e-15)


def test_tempered_tv_matches_its_exact_expectation_within_a_few_standard_errors(experiment):
    # The empirical TV has sd <= tv_sd_bound(n) (Efron-Stein), so 4 bounds is >= 4 sd.
    diff = (experiment.tv_tempered - experiment.tv_tempered_expected).abs()
    assert bool((diff < 4 * experiment.sd_bound).all()), diff
    # and the expectation tracks the exact TV once it is well above the noise floor
    far = experiment.tv_tempered_exact > 0.1
    torch.testing.assert_close(experiment.tv_tempered_expected[far],
                               experiment.tv_tempered_exact[far], atol=2e-3, rtol=0)


def test_tempered_samples_follow_softmax_of_scaled_logits_by_chi_square(experiment):
    n = experiment.n_samples
    for i in range(len(TAUS)):
        expected = n * experiment.tempered_probs[i].numpy()
        counts = (experiment.tempered[i].numpy() * n).round()
        keep = expected >= 5  # chi-square needs expected counts >= 5: pool the rest
        if keep.sum() >= 2:
            smallest = np.flatnonzero(keep)[np.argmin(expected[keep])]
            obs, exp = counts.copy(), expected.copy()
            obs[smallest] += counts[~keep].sum()
            exp[smallest] += expected[~keep].sum()
            assert scipy.stats.chisquare(obs[keep], exp[keep]).pvalue > P_MIN, TAUS[i]
        else:  # one category holds nearly all the mass: Poisson tail of the others' count
            rest = expected[~keep].sum()
            assert scipy.stats.poisson.sf(counts[~keep].sum() - 1, rest) > P_MIN, TAUS[i]


def test_argmax_of_gumbel_softmax_follows_softmax_at_every_tau(experiment):
    n = experiment.n_samples
    expected = n * experiment.probs.numpy()
    assert expected.min() >= 5  # test design
    for i, tau in enumerate(TAUS):
        counts = (experiment.argmax_relaxed[i].numpy() * n).round()
        assert counts.sum() == n
        assert scipy.stats.chisquare(counts, expected).pvalue > P_MIN, tau
    # its TV is pure noise: within 4 sd bounds of the noise floor at every tau
    assert bool(((experiment.tv_argmax_relaxed - experiment.noise_floor).abs()
                 < 4 * experiment.sd_bound).all())


def test_mean_relaxed_limits(experiment):
    # tau -> 0: the relaxed vectors are one-hot, so their mean is the argmax frequencies,
    # which follow softmax(logits): within 4 binomial standard errors
    low = TAUS.index(0.001)
    n = experiment.n_samples
    probs = experiment.probs
    se = torch.sqrt(probs * (1 - probs) / n)
    assert bool(((experiment.mean_relaxed[low] - probs).abs() < 4 * se).all())
    # tau -> infinity: uniform. At tau = 100 the relaxed vectors are within ~1/100 of uniform
    high = TAUS.index(100.0)
    uniform = torch.full_like(probs, 1 / probs.numel())
    assert float(total_variation(experiment.mean_relaxed[high], uniform)) < 0.01
    # in between, the mean is NOT softmax(logits): a bias far beyond its standard error
    mid = TAUS.index(1.0)
    z = (experiment.mean_relaxed[mid] - probs).abs() / experiment.mean_relaxed_se[mid]
    assert float(z.max()) > 10


@pytest.mark.parametrize("tau", [0.1, 1.0, 10.0])
def test_mean_relaxed_matches_quadrature_for_two_categories(tau):
    """K = 2: y_0 = sigmoid((x_0 - x_1 + L)/tau) with L = G_0 - G_1 ~ Logistic(0, 1)."""
    logits = torch.tensor([0.7, -0.4], dtype=torch.float64)
    d = float(logits[0] - logits[1])
    exact, _ = scipy.integrate.quad(
        lambda t: scipy.special.expit((d + t) / tau) * scipy.stats.logistic.pdf(t),
        -np.inf, np.inf, epsabs=1e-12,
    )
    r = temperature_experiment(logits, (tau,), 20_000, generator=gen(3))
    assert abs(float(r.mean_relaxed[0, 0]) - exact) < 4 * float(r.mean_relaxed_se[0, 0])


def test_experiment_is_reproducible_and_float64():
    a = temperature_experiment(LOGITS.float(), (0.5, 2.0), 500, generator=gen(4))
    b = temperature_experiment(LOGITS.float(), [0.5, 2.0], 500, generator=gen(4))
    assert a.taus == (0.5, 2.0)
    assert a.tempered.dtype == torch.float64 and a.logits.dtype == torch.float64
    torch.testing.assert_close(a.tempered, b.tempered)
    torch.testing.assert_close(a.mean_relaxed, b.mean_relaxed)
    torch.testing.assert_close(a.tempered.sum(-1), torch.ones(2, dtype=torch.float64))
    single = temperature_experiment(LOGITS, 0.5, 100, generator=gen(5))
    assert single.taus == (0.5,)


def test_table_lists_every_tau_and_value(experiment):
    table = experiment.table()
    for i, tau in enumerate(TAUS):
        assert f"{tau:g}" in table
        assert f"{float(experiment.tv_mean_relaxed[i]):.3f}" in table
    assert f"{experiment.noise_floor:.4f}" in table


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"logits": torch.zeros(2, 3)}, ValueError, "1-D"),
        ({"logits": torch.zeros(1)}, ValueError, "K >= 2"),
        ({"logits": torch.tensor([0.0, -math.inf])}, ValueError, "finite"),
        ({"logits": [0.0, 1.0]}, TypeError, "logits"),
        ({"taus": ()}, TypeError, "non-empty"),
        ({"taus": (1.0, 0.0)}, ValueError, "> 0"),
        ({"taus": "1"}, TypeError, "taus"),
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"n_samples": 10.0}, TypeError, "n_samples"),
        ({"generator": 0}, TypeError, "generator"),
    ],
)
def test_experiment_validates_arguments(kwargs, error, match):
    args = {"logits": LOGITS, "taus": (1.0,), "n_samples": 10, "generator": None}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        temperature_experiment(args.pop("logits"), args.pop("taus"), args.pop("n_samples"),
                               generator=args["generator"])


# ---------------------------------------------------------------- figures


def test_grid_draws_every_quantity_with_its_tv(experiment):
    axes = plot_temperature_grid(experiment, taus=(0.5, 10.0))
    assert axes.shape == (2, 3)
    i = TAUS.index(10.0)
    texts = [t.get_text() for t in axes[1, 2].texts]
    assert f"TV = {float(experiment.tv_mean_relaxed[i]):.3f}" in texts
    heights = [p.get_height() for p in axes[1, 0].patches][LOGITS.numel():]
    np.testing.assert_allclose(heights, experiment.tempered[i].numpy())
    with pytest.raises(ValueError, match="not one of"):
        plot_temperature_grid(experiment, taus=(3.0,))
    with pytest.raises(TypeError, match="TemperatureExperiment"):
        plot_temperature_grid({"taus": TAUS})
    plt.close("all")


def test_tv_curves_draw_the_exact_curve(experiment):
    fig, ax = plt.subplots()
    plot_tv_curves(ax, experiment)
    exact_line = ax.lines[0]
    x, y = exact_line.get_data()
    tv = total_variation(torch.softmax(LOGITS / float(x[50]), -1), experiment.probs)
    assert math.isclose(float(y[50]), float(tv), rel_tol=1e-12)
    assert len(ax.get_legend().get_texts()) == 6
    plt.close(fig)


def test_result_is_a_frozen_dataclass(experiment):
    assert isinstance(experiment, TemperatureExperiment)
    with pytest.raises(AttributeError):
        experiment.n_samples = 3
