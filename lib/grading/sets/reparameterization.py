"""Exercises for the chapter "The reparameterization trick"."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from lib.grading.core import ExerciseSet, Mistake, as_float_array, expect_finite, expect_shape
from lib.grading.probing import attempt as _call
from lib.grading.probing import seed_all

SET = ExerciseSet("reparameterization", "The reparameterization trick")


def _pair(value, what):
    """Two numbers (a tuple, list, array or tensor of 2 scalars) as a float array [2]."""
    if isinstance(value, (tuple, list)) and any(v is None for v in value):
        raise Mistake(f"{what} contains None: a gradient that autograd did not compute. "
                      "Is the sample connected to mu and sigma?")
    if isinstance(value, (tuple, list)):
        value = [as_float_array(v, what).reshape(-1) for v in value]
        value = np.concatenate(value) if value else np.zeros(0)
    arr = as_float_array(value, what).reshape(-1)
    expect_shape(arr, (2,), what)
    expect_finite(arr, what)
    return arr


# ----------------------------------------------------------------------------------------------
# q1: the exact gradient of E[(z - c)^2] for z ~ Normal(mu, sigma)
# ----------------------------------------------------------------------------------------------
Q1_CASES = [(0.5, 1.5, 2.0), (-1.0, 0.3, 0.5), (2.0, 2.5, -1.0), (0.0, 0.7, 0.4)]


def exact_gradient_reference(mu, sigma, c):
    return np.array([2 * (mu - c), 2 * sigma])


@SET.question("q1", points=2, answers=["exact_gradient"], title="the exact gradient")
def q1(exact_gradient):
    if not callable(exact_gradient):
        raise Mistake("`exact_gradient` should be a function of (mu, sigma, c).")
    values = []
    for case in Q1_CASES:
        value, error = _call(exact_gradient, *case)
        if error is not None:
            raise Mistake(f"`exact_gradient{case}` raised an error: {error}")
        values.append(_pair(value, f"`exact_gradient{case}`"))
    return {"values": values}


@q1.judge
def _(data):
    for (mu, sigma, c), value in zip(Q1_CASES, data["values"]):
        value = np.asarray(value, dtype=np.float64)
        ref = exact_gradient_reference(mu, sigma, c)
        if np.allclose(value, ref, rtol=1e-6, atol=1e-9):
            continue
        d_mu, d_sigma = value
        where = f"For mu={mu}, sigma={sigma}, c={c}"
        if np.allclose(value, ref[::-1], rtol=1e-6):
            raise Mistake(f"{where} your two numbers are in the wrong order: return "
                          "(d/dmu, d/dsigma).")
        if np.allclose(value, ref / 2, rtol=1e-6):
            raise Mistake(f"{where} both derivatives are half the right size: the derivative "
                          "of a square brings a factor 2.")
        if not math.isclose(d_mu, ref[0], rel_tol=1e-6, abs_tol=1e-9):
            if math.isclose(d_mu, -ref[0], rel_tol=1e-6):
                raise Mistake(f"{where} d/dmu has the wrong sign: E[(z - c)^2] grows when mu "
                              "moves away from c.")
            raise Mistake(f"{where} d/dmu is wrong. Write E[(z - c)^2] as (mu - c)^2 plus a "
                          "term that does not depend on mu, then differentiate.")
        if abs(d_sigma) < 1e-12:
            raise Mistake(f"{where} d/dsigma is 0, but E[(z - c)^2] = (E[z] - c)^2 + Var(z) "
                          "and Var(z) depends on sigma.")
        if math.isclose(d_sigma, 1.0):
            raise Mistake(f"{where} d/dsigma is 1: you treated sigma as the variance. Here "
                          "sigma is the standard deviation, so Var(z) = sigma^2.")
        raise Mistake(f"{where} d/dsigma is wrong. Which power of sigma is the variance of "
                      "z ~ Normal(mu, sigma)?")


# ----------------------------------------------------------------------------------------------
# q2: a pathwise Monte Carlo estimate of that gradient
# ----------------------------------------------------------------------------------------------
Q2_PARAMS = (-0.3, 0.8, 1.0)  # (mu, sigma, c)
Q2_N = 50
Q2_REPEATS = 400


def _single_sample_variances(mu, sigma, c):
    """Exact variances of the one-sample pathwise gradient (2(z - c), 2(z - c) eps)."""
    return np.array([4 * sigma**2, 4 * (mu - c) ** 2 + 8 * sigma**2])


@SET.question("q2", points=3, answers=["pathwise_gradient"],
              title="a pathwise Monte Carlo estimate")
def q2(pathwise_gradient):
    if not callable(pathwise_gradient):
        raise Mistake("`pathwise_gradient` should be a function of (mu, sigma, c, n_samples).")
    mu, sigma, c = Q2_PARAMS
    seed_all(0)
    out = {}
    for n in (Q2_N, 1):
        estimates = []
        for _ in range(Q2_REPEATS):
            value, error = _call(pathwise_gradient, mu, sigma, c, n)
            if error is not None:
                if "does not require grad" in error or "does not have a grad_fn" in error:
                    raise Mistake("Autograd found no path from your loss to mu and sigma: "
                                  f"{error}. A sample drawn with .sample() (or from a detached "
                                  "tensor) cuts the graph. Write z = mu + sigma * eps.")
                raise Mistake(f"`pathwise_gradient{(mu, sigma, c, n)}` raised an error: {error}")
            estimates.append(_pair(value, f"`pathwise_gradient(mu, sigma, c, {n})`"))
        out[f"n{n}"] = np.array(estimates)
    return out


@q2.judge
def _(data):
    mu, sigma, c = Q2_PARAMS
    exact = exact_gradient_reference(mu, sigma, c)
    var1 = _single_sample_variances(mu, sigma, c)
    est, est1 = np.asarray(data[f"n{Q2_N}"]), np.asarray(data["n1"])
    if np.allclose(est, 0):
        raise Mistake("Your estimates are all zero: the loss is not connected to mu and sigma "
                      "through the samples.")
    if np.all(np.ptp(est, axis=0) == 0):
        raise Mistake("Your function returns the same value on every call: it is not a "
                      "Monte Carlo estimate. Draw n_samples noise values, build the samples "
                      "from them, and average the gradients.")
    mean = est.mean(0)
    # standard error of the average of the estimates, from their own spread (so that an
    # unbiased but noisier estimator is judged unbiased here and caught by its variance below)
    se = np.sqrt(np.maximum(est.var(0, ddof=1), var1 / Q2_N) / len(est))
    names = ("d/dmu", "d/dsigma")
    ratio = est.var(0, ddof=1) / (var1 / Q2_N)
    for k in range(2):
        if abs(mean[k] - exact[k]) > 5 * se[k]:
            hint = ""
            if k == 1:
                hint = (" Check how sigma enters the sample: z ~ Normal(mu, sigma) has standard "
                        "deviation sigma, so z = mu + sigma * eps with eps ~ Normal(0, 1).")
            raise Mistake(f"Averaged over {len(est)} calls with n_samples={Q2_N}, your "
                          f"{names[k]} estimate is {mean[k]:.3f}, more than 5 standard errors "
                          f"from the exact gradient of Question 1: the estimate is biased."
                          + hint)
    shrink = est1.var(0, ddof=1) / est.var(0, ddof=1)
    if np.all(shrink < 3):
        raise Mistake(f"The variance of your estimate hardly changes between n_samples=1 and "
                      f"n_samples={Q2_N} (ratio {shrink.max():.1f}, expected about {Q2_N}): "
                      "average over all n_samples samples, not just one.")
    if np.any(ratio > 2.5):
        k = int(np.argmax(ratio))
        raise Mistake(f"Your estimate is unbiased, but the variance of its {names[k]} is "
                      f"{ratio[k]:.1f} times that of the pathwise estimator. Did you use the "
                      "score-function (REINFORCE) form instead of differentiating through "
                      "z = mu + sigma * eps?")


# ----------------------------------------------------------------------------------------------
# q3: a reparameterized Exponential sampler by inverse CDF
# ----------------------------------------------------------------------------------------------
Q3_RATE = 2.5
Q3_N = 100_000
# Library Exponential samplers (torch's Exponential and Tensor.exponential_, NumPy's
# exponential and gamma, Python's expovariate, torch's Gamma), forbidden while probing. A
# Uniform(0, 1) draw for U is fine (U does not depend on rate).
LIBRARY_SAMPLER = ("torch.distributions.Exponential", "torch.distributions.Gamma",
                   "torch.Tensor.exponential_", "numpy.random.exponential",
                   "numpy.random.Generator.exponential", "numpy.random.RandomState.exponential",
                   "numpy.random.gamma", "numpy.random.Generator.gamma",
                   "numpy.random.RandomState.gamma", "random.expovariate", "random.gammavariate")


@SET.question("q3", points=3, answers=["sample_exponential"],
              title="a reparameterized Exponential sampler", forbidden=LIBRARY_SAMPLER,
              forbidden_why="A library Exponential (or Gamma) sampler is not allowed here. "
                            "The task is to build the samples from uniform draws with the "
                            "inverse CDF, using torch operations on `rate`.")
def q3(sample_exponential):
    import torch

    if not callable(sample_exponential):
        raise Mistake("`sample_exponential` should be a function of (rate, n_samples).")
    rate = torch.tensor(Q3_RATE, requires_grad=True)
    seed_all(0)
    z, error = _call(sample_exponential, rate, Q3_N)
    if error is not None:
        raise Mistake(f"`sample_exponential(rate, {Q3_N})` raised an error: {error}")
    data = {"is_tensor": isinstance(z, torch.Tensor),
            "requires_grad": bool(getattr(z, "requires_grad", False))}
    if not data["is_tensor"] or not data["requires_grad"]:
        return data
    data["samples"] = as_float_array(z, "your samples")
    if data["samples"].shape != (Q3_N,) or not np.all(np.isfinite(data["samples"])):
        return data
    grads = []
    for loss in (z.mean(), (z**2).mean()):
        (g,) = torch.autograd.grad(loss, rate, retain_graph=True, allow_unused=True)
        grads.append(None if g is None else float(g))
    data["grad_mean"], data["grad_square"] = grads
    return data


@q3.judge
def _(data):
    if not data["is_tensor"]:
        raise Mistake("Your function does not return a torch tensor (a NumPy array?), so no "
                      "gradient can flow back to `rate`. Use torch operations on `rate`.")
    if not data["requires_grad"]:
        raise Mistake("Your samples carry no gradient (requires_grad is False): they were "
                      "detached from `rate`, e.g. by .detach(), rate.item(), float(rate) or a "
                      "sampler that cuts the graph. Compute them from `rate` with torch "
                      "operations.")
    x = data["samples"]
    expect_shape(x, (Q3_N,), f"sample_exponential(rate, {Q3_N})")
    expect_finite(x, "your samples")
    mean_target = 1 / Q3_RATE
    se_mean = mean_target / math.sqrt(Q3_N)  # an Exponential has standard deviation = mean
    mean, var = float(x.mean()), float(x.var())
    if np.any(x < 0):
        raise Mistake("Some of your samples are negative. log(U) is negative for U in (0, 1): "
                      "check the sign of the inverse CDF.")
    if abs(mean - Q3_RATE) < 0.05 * Q3_RATE:
        raise Mistake(f"With rate={Q3_RATE} your samples have mean {mean:.3f}, close to the "
                      "rate itself: you used the rate as the scale. An Exponential(rate) has "
                      "mean 1/rate.")
    if abs(mean - mean_target) > 5 * se_mean or abs(var * Q3_RATE**2 - 1) > 0.05:
        raise Mistake(f"With rate={Q3_RATE} your samples have mean {mean:.4f} and variance "
                      f"{var:.4f}; an Exponential(rate) has mean 1/rate and variance "
                      "1/rate^2. Check the inverse of F(t) = 1 - exp(-rate * t).")
    p = stats.kstest(x, stats.expon(scale=mean_target).cdf).pvalue
    if p < 1e-4:
        raise Mistake(f"Mean and variance are right, but a Kolmogorov-Smirnov test rejects the "
                      f"Exponential shape (p = {p:.1e}). Are the samples independent?")
    # A pathwise sampler has dz/drate = -z/rate for every sample (z = eps / rate), so the
    # gradient of mean(z^k) is -k mean(z^k) / rate. Standard errors of the averages:
    # sd(z/rate) = 1/rate^2 and sd(2 z^2/rate) = sqrt(80)/rate^3 per sample.
    checks = [
        ("mean(z)", data["grad_mean"], -mean / Q3_RATE, 1 / Q3_RATE**2),
        ("mean(z**2)", data["grad_square"], -2 * float((x**2).mean()) / Q3_RATE,
         math.sqrt(80) / Q3_RATE**3),
    ]
    for name, got, expected, sd in checks:
        if got is None:
            raise Mistake(f"The gradient of {name} with respect to rate is None: the samples "
                          "do not depend on rate.")
        if abs(got - expected) > 5 * sd / math.sqrt(Q3_N) + 1e-6:
            raise Mistake(f"The samples have the right distribution, but the gradient of {name} "
                          f"with respect to rate is {got:.4f}. For a sample z = eps / rate "
                          "(eps ~ Exponential(1)) the pathwise derivative is dz/drate = "
                          "-z/rate. Is the noise independent of rate?")


# ----------------------------------------------------------------------------------------------
# q4: a categorical sample by inverse CDF
# ----------------------------------------------------------------------------------------------
Q4_PROBS = [
    [0.1, 0.2, 0.3, 0.4],
    [0.05, 0.3, 0.15, 0.2, 0.25, 0.05],
]


def _q4_uniforms(probs):
    """Uniform values spread over (0, 1), kept away from the bin edges (where conventions
    differ) and from the top of the last bin (float round-off of the cumulative sum)."""
    cum = np.cumsum(probs)
    u = np.concatenate([np.linspace(0.0005, 0.9995, 400),
                        np.random.default_rng(len(probs)).random(600)])
    far = np.min(np.abs(u[:, None] - np.concatenate([[0.0], cum])[None, :]), axis=1) > 1e-6
    return u[far]


def categorical_reference(probs, u):
    return np.searchsorted(np.cumsum(probs), u, side="right")


@SET.question("q4", points=2, answers=["categorical_inverse_cdf"],
              title="a categorical sample by inverse CDF")
def q4(categorical_inverse_cdf):
    import torch

    if not callable(categorical_inverse_cdf):
        raise Mistake("`categorical_inverse_cdf` should be a function of (probs, u).")
    runs = []
    for probs in Q4_PROBS:
        u = _q4_uniforms(probs)
        results = []
        for seed in (0, 1):
            seed_all(seed)
            value, error = _call(categorical_inverse_cdf,
                                 torch.tensor(probs, dtype=torch.float64),
                                 torch.tensor(u, dtype=torch.float64))
            if error is not None:
                raise Mistake(f"`categorical_inverse_cdf` raised an error for probs={probs}: "
                              f"{error}")
            arr = as_float_array(value, "your indices")
            expect_shape(arr, u.shape, f"your indices for {len(u)} uniform values")
            expect_finite(arr, "your indices")
            results.append(arr)
        runs.append({"indices": results[0], "repeat": results[1]})
    return {"runs": runs}


@q4.judge
def _(data):
    for probs, run in zip(Q4_PROBS, data["runs"]):
        u = _q4_uniforms(probs)
        got = np.asarray(run["indices"], dtype=np.float64)
        ref = categorical_reference(probs, u)
        if np.array_equal(got, ref):
            continue
        if not np.array_equal(got, np.asarray(run["repeat"])):
            raise Mistake("Called twice with the same u, your function returns different "
                          "indices: it draws its own random numbers. h must be a deterministic "
                          "function of the noise u.")
        k = len(probs)
        if np.array_equal(got, ref + 1):
            raise Mistake("Your indices are shifted by one: categories are numbered from 0 "
                          f"to {k - 1}.")
        if np.array_equal(got, k - 1 - ref):
            raise Mistake("Your indices run in reverse order: category 0 should get the "
                          "smallest values of u, the interval [0, probs[0]).")
        thresholds = np.array([int(np.argmax(ui < np.asarray(probs))) if np.any(ui < probs)
                               else k - 1 for ui in u])
        counted = (np.asarray(probs)[None, :] < u[:, None]).sum(1)
        if np.array_equal(got, thresholds) or np.array_equal(got, counted):
            raise Mistake("Your function compares u with the probabilities themselves; compare "
                          "it with their cumulative sums, whose consecutive values are the "
                          "edges of the intervals of the categories.")
        wrong = int(np.sum(got != ref))
        raise Mistake(f"For probs={probs}, {wrong} of {len(u)} indices are wrong. Category i "
                      "must be returned exactly when cumsum(probs)[i-1] <= u < "
                      "cumsum(probs)[i].")
