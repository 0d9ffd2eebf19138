"""Exercises for the chapter "Comparing gradient estimators (a lab)".

All three questions use the RELAX toy problem: minimise E_{b ~ Bern(theta)}[(b - t)^2] with
theta = sigmoid(logit), whose exact gradients and estimator variances can be computed by
enumerating every outcome (so the checks need no second Monte Carlo run of their own).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from lib.grading.core import ExerciseSet, Mistake, as_float_array, expect_finite
from lib.grading.probing import attempt as _attempt
from lib.grading.probing import seed_all

SET = ExerciseSet("estimator_lab", "Comparing gradient estimators (a lab)")

TARGET = 0.499


def _sigmoid(x: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * x))  # stable for any finite x


def _logit(theta: float) -> float:
    return math.log(theta / (1 - theta))


def _number(value, what: str) -> float:
    arr = as_float_array(value, what)
    if arr.size != 1:
        raise Mistake(f"{what} should be a single number, got an array of shape {arr.shape}.")
    return float(arr.reshape(-1)[0])


# ----------------------------------------------------------------------------------------------
# q1: the exact gradient of the toy, with respect to the logit
# ----------------------------------------------------------------------------------------------
Q1_CASES = [(0.0, 0.499), (-1.5, 0.499), (2.0, 0.3), (0.7, 0.9), (-30.0, 0.2), (25.0, 0.6),
            (0.0, 0.5), (800.0, 0.3), (-800.0, 0.3)]
Q1_EXTREME = 100.0  # |logit| beyond this: exp(|logit|) overflows in float64 past about 709
# float32 answers are right: relative 1e-5 (float32 rounding is ~1e-7) and absolute 1e-9 (at
# logit 25, sigmoid rounds to 1 in float32, so such an answer returns 0 for a 1e-12 gradient).
# The wrong answers below differ by O(1) relative or by far more than 1e-9.
Q1_RTOL, Q1_ATOL = 1e-5, 1e-9


@SET.question("q1", points=2, answers=["toy_gradient"],
              title="the exact gradient of the RELAX toy")
def q1(toy_gradient):
    if not callable(toy_gradient):
        raise Mistake("`toy_gradient` should be a function of (logit, t).")
    values = []
    for logit, t in Q1_CASES:
        out, error = _attempt(toy_gradient, logit, t)
        if error is not None:
            raise Mistake(f"toy_gradient({logit}, {t}) raised {error}")
        values.append(_number(out, f"toy_gradient({logit}, {t})"))
    return {"values": np.array(values)}


def _q1_reference(logit, t):
    theta = _sigmoid(logit)
    return theta * (1 - theta) * ((1 - t) ** 2 - t**2)


@q1.judge
def _(data):
    values = np.asarray(data["values"], dtype=np.float64)
    reference = np.array([_q1_reference(lg, t) for lg, t in Q1_CASES])
    extreme = np.array([abs(lg) > Q1_EXTREME for lg, _ in Q1_CASES])
    if not np.all(np.isfinite(values)):
        moderate_ok = np.all(np.abs(values[~extreme] - reference[~extreme])
                             <= Q1_ATOL + Q1_RTOL * np.abs(reference[~extreme]))
        if moderate_ok and np.all(np.isfinite(values[~extreme])):
            raise Mistake("Your gradient is right for moderate logits but NaN or infinite for "
                          "logit = +-800: exp(800) overflows. Compute sigmoid(logit) stably "
                          "(scipy.special.expit, torch.sigmoid, or exp(-|logit|)).")
        expect_finite(values, "your gradients")

    def matches(candidate):
        return bool(np.all(np.abs(values - candidate) <= Q1_ATOL + Q1_RTOL * np.abs(candidate)))

    if matches(reference):
        return
    wrong = {
        "is the derivative with respect to theta, not the logit: multiply by "
        "dtheta/dlogit = theta (1 - theta)":
            np.array([(1 - t) ** 2 - t**2 for _, t in Q1_CASES]),
        "has the wrong sign: E[(b - t)^2] = theta (1 - t)^2 + (1 - theta) t^2 grows with theta "
        "when t < 1/2":
            -reference,
        "differentiates (theta - t)^2, the cost at the MEAN of b, not the expected cost "
        "E[(b - t)^2]; that is exactly the mistake a relaxation or straight-through makes":
            np.array([2 * (_sigmoid(lg) - t) * _sigmoid(lg) * (1 - _sigmoid(lg))
                      for lg, t in Q1_CASES]),
    }
    for hint, candidate in wrong.items():
        if matches(candidate):
            raise Mistake(f"Your gradient {hint}.")
    if np.all(np.abs(values[~extreme] - reference[~extreme]) <= Q1_ATOL + Q1_RTOL
              * np.abs(reference[~extreme])):
        raise Mistake("Your gradient is right for moderate logits but wrong for logit = +-800: "
                      "compute sigmoid(logit) stably (e.g. scipy.special.expit or "
                      "torch.sigmoid), without exp of a large number.")
    # the first case that fails the tolerance (not the largest difference, which may be a
    # case within tolerance)
    bad = np.abs(values - reference) > Q1_ATOL + Q1_RTOL * np.abs(reference)
    first = int(np.argmax(bad))
    lg, t = Q1_CASES[first]
    raise Mistake(f"toy_gradient({lg}, {t}) = {values[first]:.6g} is not the derivative of "
                  "E[(b - t)^2] with respect to the logit. Write the expectation as a function "
                  "of theta = sigmoid(logit) and apply the chain rule.")


# ----------------------------------------------------------------------------------------------
# q2: a variance-reduction factor, measured
# ----------------------------------------------------------------------------------------------
Q2_SETTINGS = [(0.3, 4, 20_000), (0.7, 2, 20_000)]  # (theta, n_samples, n_repeats)
Q2_FACTOR_SETTING = (0.3, 4, 20_000)
Q2_Z = 5.0  # tolerance in standard errors of a sample variance


def q2_exact(theta: float, n_samples: int) -> dict:
    """Exact mean, variance and 4th central moment of single estimates of dL/dlogit.

    Enumerates the 2**S sample vectors; per sample the score of the logit is b - theta.
    Returns, per estimator name, (mean, variance, fourth central moment).
    """
    s = n_samples
    out = {}
    expected_cost = theta * (1 - TARGET) ** 2 + (1 - theta) * TARGET**2
    for name in ("plain", "loo", "batch_mean", "constant"):
        values, probs = [], []
        for bits in itertools.product([0.0, 1.0], repeat=s):
            b = np.array(bits)
            p = float(np.prod(np.where(b == 1, theta, 1 - theta)))
            cost = (b - TARGET) ** 2
            if name == "plain":
                base = np.zeros(s)
            elif name == "loo":
                base = (cost.sum() - cost) / (s - 1)
            elif name == "batch_mean":
                base = np.full(s, cost.mean())
            else:  # a fixed baseline at E[f]: unbiased, and about as variable as batch_mean
                base = np.full(s, expected_cost)
            values.append(float(((cost - base) * (b - theta)).mean()))
            probs.append(p)
        v, w = np.array(values), np.array(probs)
        mean = float(w @ v)
        var = float(w @ (v - mean) ** 2)
        m4 = float(w @ (v - mean) ** 4)
        out[name] = (mean, var, m4)
    return out


def _variance_se(var: float, m4: float, n: int) -> float:
    """Standard error of the sample variance of n i.i.d. draws."""
    return math.sqrt(max(m4 - var**2 * (n - 3) / (n - 1), 0.0) / n)


@SET.question("q2", points=3, answers=["estimator_variances", "reduction_factor"],
              title="a variance-reduction factor, measured")
def q2(estimator_variances, reduction_factor):
    if not callable(estimator_variances):
        raise Mistake("`estimator_variances` should be a function of "
                      "(logit, n_samples, n_repeats).")
    runs = []
    for k, (theta, n_samples, n_repeats) in enumerate(Q2_SETTINGS):
        seed_all(100 + k)
        out, error = _attempt(estimator_variances, _logit(theta), n_samples, n_repeats)
        what = f"estimator_variances(logit({theta}), {n_samples}, {n_repeats})"
        if error is not None:
            raise Mistake(f"{what} raised {error}")
        if isinstance(out, dict) or not hasattr(out, "__len__") or len(out) != 2:
            raise Mistake(f"{what} should return a pair (var_reinforce, var_loo).")
        runs.append([_number(out[0], f"the first value of {what}"),
                     _number(out[1], f"the second value of {what}")])
    return {"runs": np.array(runs),
            "factor": _number(reduction_factor, "`reduction_factor`")}


@q2.judge
def _(data):
    runs = np.asarray(data["runs"], dtype=np.float64)
    expect_finite(runs, "your variances")
    for (theta, n_samples, n_repeats), (plain, loo) in zip(Q2_SETTINGS, runs):
        where = f"At theta = {theta}, n_samples = {n_samples},"
        exact = q2_exact(theta, n_samples)
        _, var_p, m4_p = exact["plain"]
        _, var_l, m4_l = exact["loo"]
        se_p = _variance_se(var_p, m4_p, n_repeats)
        se_l = _variance_se(var_l, m4_l, n_repeats)
        if plain <= 0 or loo <= 0:
            raise Mistake(f"{where} your variances are {plain:.3g} and {loo:.3g}; variances are "
                          "positive.")

        def near(x, target, se, scale=1.0):
            return abs(x - target * scale) <= Q2_Z * se * scale

        plain_ok, loo_ok = near(plain, var_p, se_p), near(loo, var_l, se_l)
        if plain_ok and loo_ok:
            continue
        if near(plain, var_l, se_l) and near(loo, var_p, se_p):
            raise Mistake(f"{where} your two values are swapped: return (var_reinforce, "
                          "var_loo), the plain REINFORCE variance first.")
        theta_units = 1 / (theta * (1 - theta)) ** 2
        if near(plain, var_p, se_p, theta_units) and near(loo, var_l, se_l, theta_units):
            raise Mistake(f"{where} both variances are 1/(theta (1 - theta))^2 times too large: "
                          "you estimate the gradient with respect to theta. The score of the "
                          "LOGIT is d log p(b) / d logit = b - theta.")
        _, var_b, m4_b = exact["batch_mean"]
        _, var_c, m4_c = exact["constant"]
        near_b = near(loo, var_b, _variance_se(var_b, m4_b, n_repeats))
        near_c = near(loo, var_c, _variance_se(var_c, m4_c, n_repeats))
        if plain_ok and near_b and not near_c:
            raise Mistake(f"{where} your second variance matches a baseline equal to the batch "
                          "mean INCLUDING the sample's own cost: that estimator is biased (it "
                          f"is (1 - 1/S) = {1 - 1 / n_samples:.2f} times the unbiased one) and "
                          "so looks less variable. Leave the sample out: the mean of the OTHER "
                          "costs.")
        if plain_ok and near_c:
            raise Mistake(f"{where} your second variance matches a fixed baseline near E[f] "
                          "(one number for every sample)"
                          + (" or, as closely, the batch mean including the sample's own cost"
                             if near_b else "")
                          + ". The question asks for the leave-one-out baseline: each sample's "
                          "baseline is the mean cost of the OTHER samples of its batch.")
        if near(plain, var_p, se_p, n_samples) and (loo_ok or near(loo, var_l, se_l, n_samples)):
            raise Mistake(f"{where} your variances are about n_samples = {n_samples} times too "
                          "large: each estimate must AVERAGE n_samples per-sample terms; you "
                          "seem to measure the variance of single-sample terms.")
        s2 = n_samples**2
        if near(plain, var_p, se_p, s2) and (loo_ok or near(loo, var_l, se_l, s2)):
            raise Mistake(f"{where} your variances are about n_samples^2 = {s2} times too "
                          "large: you SUM the n_samples per-sample terms; each estimate must "
                          "AVERAGE them.")
        if abs(plain**2 / var_p - 1) < 0.1 and abs(loo**2 / var_l - 1) < 0.1:
            raise Mistake(f"{where} your values look like standard deviations; return the "
                          "variances (squares).")
        if not plain_ok:
            raise Mistake(f"{where} your plain REINFORCE variance {plain:.4g} is off by more "
                          f"than {Q2_Z:g} standard errors of a sample variance over "
                          f"{n_repeats} estimates. Each estimate is the mean over n_samples "
                          "draws b of (b - 0.499)^2 * (b - theta), with a FRESH batch per "
                          "estimate.")
        raise Mistake(f"{where} your leave-one-out variance {loo:.4g} is off by more than "
                      f"{Q2_Z:g} standard errors. Each sample's baseline is the mean cost of the "
                      "OTHER n_samples - 1 samples of the same batch.")
    theta, n_samples, n_repeats = Q2_FACTOR_SETTING
    exact = q2_exact(theta, n_samples)
    target = exact["plain"][1] / exact["loo"][1]
    factor = float(data["factor"])
    # relative SE of a ratio of two independent sample variances: add the relative SEs in
    # quadrature
    rel = math.hypot(_variance_se(exact["plain"][1], exact["plain"][2], n_repeats)
                     / exact["plain"][1],
                     _variance_se(exact["loo"][1], exact["loo"][2], n_repeats) / exact["loo"][1])
    if abs(factor / target - 1) <= Q2_Z * rel:
        return
    if factor > 0 and abs(factor * target - 1) <= Q2_Z * rel:
        raise Mistake("`reduction_factor` is inverted: it should be var_reinforce / var_loo, "
                      "how many times smaller the variance becomes with the baseline (> 1).")
    if factor > 0 and abs(factor**2 / target - 1) <= 2 * Q2_Z * rel:
        raise Mistake("`reduction_factor` looks like a ratio of standard deviations; use the "
                      "ratio of variances.")
    raise Mistake(f"`reduction_factor` = {factor:.4g} is not var_reinforce / var_loo at "
                  f"theta = {theta}, n_samples = {n_samples} (compared with the exact ratio, "
                  f"within {Q2_Z:g} standard errors of a measurement with {n_repeats} repeats). "
                  "Compute it from your function's two variances at exactly these settings.")


# ----------------------------------------------------------------------------------------------
# q3: solve the RELAX toy
# ----------------------------------------------------------------------------------------------
Q3_STEPS = 300
Q3_BUDGET = 2  # samples per step, on average
Q3_SEEDS = (7, 8, 9)
Q3_GOAL = 0.2
Q3_LAST_GAP = 0.1  # |returned theta - theta of the last sample_b call|: more than one step


class _CountingSampler:
    """``sample_b(logit, n)``: n draws of b ~ Bern(sigmoid(logit)) from a fixed generator."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.calls = 0
        self.samples = 0
        self.last_theta = float("nan")  # theta of the latest call: where the answer samples

    def __call__(self, logit, n):
        import torch

        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        try:
            value = float(logit.detach()) if isinstance(logit, torch.Tensor) else float(logit)
        except (TypeError, ValueError):
            raise TypeError("logit must be one number (a float or a 1-element tensor)") from None
        if not math.isfinite(value):
            raise ValueError(f"logit must be finite, got {value}")
        self.calls += 1
        self.samples += int(n)
        theta = _sigmoid(value)
        self.last_theta = theta
        draws = (self.rng.random(int(n)) < theta).astype(np.float64)
        return torch.from_numpy(draws)


@SET.question("q3", points=3, answers=["solve_relax_toy"], title="solve the RELAX toy")
def q3(solve_relax_toy):
    if not callable(solve_relax_toy):
        raise Mistake("`solve_relax_toy` should be a function of (sample_b, n_steps).")
    runs = []
    for seed in Q3_SEEDS:
        seed_all(seed)
        sampler = _CountingSampler(seed)
        out, error = _attempt(solve_relax_toy, sampler, Q3_STEPS)
        if error is not None:
            raise Mistake(f"solve_relax_toy(sample_b, {Q3_STEPS}) raised {error}")
        runs.append({"theta": _number(out, f"solve_relax_toy(sample_b, {Q3_STEPS})"),
                     "calls": sampler.calls, "samples": sampler.samples,
                     "last_theta": sampler.last_theta})
    return {"runs": runs}


@q3.judge
def _(data):
    runs = data["runs"]
    thetas = np.array([r["theta"] for r in runs], dtype=np.float64)
    expect_finite(thetas, "your final theta")
    calls = min(r["calls"] for r in runs)
    samples = max(r["samples"] for r in runs)
    if calls == 0:
        raise Mistake("Your function never calls sample_b: every gradient estimate must come "
                      "from samples of b drawn with sample_b.")
    if samples > Q3_BUDGET * Q3_STEPS:
        raise Mistake(f"Your function drew {samples} samples in {Q3_STEPS} steps; the budget "
                      f"is {Q3_BUDGET * Q3_STEPS} ({Q3_BUDGET} per step on average).")
    if np.any((thetas < 0) | (thetas > 1)):
        raise Mistake(f"Your function returned {thetas.round(3).tolist()}; return theta = "
                      "sigmoid(logit), a probability, not the logit.")
    shown = ", ".join(f"{t:.3f}" for t in thetas)
    # The returned theta must be the one the updates reached, i.e. (within a step) the one the
    # function last sampled at: a function that samples once and returns a constant is not
    # solving the toy (issue 14).
    if np.all(thetas < Q3_GOAL):
        last = np.array([r.get("last_theta", float("nan")) for r in runs], dtype=np.float64)
        off = ~(np.abs(thetas - last) <= Q3_LAST_GAP)
        if np.any(off):
            k = int(np.argmax(off))
            raise Mistake(f"Your function returned theta = {thetas[k]:.3f}, but its last call "
                          f"to sample_b was at theta = {last[k]:.3f}: return the theta your "
                          "updates reached, the one you draw samples at.")
        return
    if np.all(thetas > 0.5):
        raise Mistake(f"theta ends at {shown} in three runs from theta = 0.5: it went UP. "
                      "You are ascending the gradient; to minimise the cost, move the logit in the "
                      "direction opposite to the gradient estimate.")
    if np.all(np.abs(thetas - 0.5) < 1e-9):
        raise Mistake("theta never moved from 0.5: your updates are zero or far too small. "
                      "The true gradient is tiny (0.0005 with respect to the logit at "
                      "theta = 0.5), so plain SGD needs a large learning rate; Adam's steps are "
                      "about its learning rate whatever the gradient's size.")
    if np.all(np.abs(thetas - 0.5) < 0.15):
        raise Mistake(f"theta ends at {shown}, close to 0.5. That is the fixed point of the "
                      "BIASED estimators on this problem (straight-through, Gumbel-softmax: "
                      "their expected estimate is about 2 (theta - 0.499), which vanishes at "
                      "0.499), or of steps too small to move. Use an unbiased estimator "
                      "(REINFORCE) with a baseline that does not use the sample's own cost.")
    if np.any(thetas > 1 - 1e-3):
        raise Mistake(f"theta ends at {shown}: a run jumped to theta = 1 and stayed there "
                      "(the gradient with respect to the logit vanishes at 0 and 1). Your steps "
                      "are too large for your estimator's noise.")
    raise Mistake(f"theta ends at {shown}: not below {Q3_GOAL} in every run. Either the "
                  "estimates are too noisy for this budget (plain REINFORCE's noise is about "
                  "250 times the gradient here; a baseline that does not use the sample's own "
                  "cost reduces it), or the step size does not suit your estimator (a run that "
                  "jumps to theta = 0 or 1 stays there, because the gradient with respect to "
                  "the logit vanishes; one that moves too little stays near 0.5).")
