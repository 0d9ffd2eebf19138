"""Exercises for the chapter "Unbiased and low-variance estimators" (local baselines, ARM, DisARM).

q1  disarm(logits, cost, u): the DisARM estimate of the gradient of E[f(b)] with respect to the
    logits of independent Bernoullis, one estimate per antithetic pair (row of ``u``). Checked on
    problems the notebook does not show (3, 5 and 1 Bernoullis, a quadratic and a non-quadratic
    cost, logits of both signs up to |8|): equal, on the SAME uniforms, to an independent
    formula written here from the paper; and on 10,000 pairs, unbiased against the exact
    gradient by enumeration (a z-test sized by the standard error) with a variance no larger
    than ARM's on the same pairs. ARM's formula, the missing 1/2, the flipped sign,
    sigma(l) for sigma(|l|), independent uniforms, the missing indicator, the gradient with
    respect to the probabilities and an estimate still on the autograd graph get their hints.
q2  pair_variances(logit, f0, f1): the exact variances of one ARM and one DisARM estimate for
    a single Bernoulli, at (logit, f0, f1) triples the notebook does not show.

Every input is fixed here (seeded), so a notebook and the batch grader see the same checks; the
judge computes what is right from its own copy of the inputs, never from what the probe returns.
"""

from __future__ import annotations

import math

import numpy as np

from lib.grading.core import ExerciseSet, Mistake, as_float_array, expect_finite, expect_shape
from lib.grading.probing import seed_all

SET = ExerciseSet("unbiased_estimators", "Unbiased and low-variance estimators")


def _close(a, b, rtol=1e-6, atol=1e-9) -> bool:
    return a is not None and np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=rtol, atol=atol)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


# ----------------------------------------------------------------------------------------------
# q1: DisARM
# ----------------------------------------------------------------------------------------------
def _quadratic(z: np.ndarray) -> np.ndarray:
    """f(b) = sum_i (b_i - t_i)^2 with t = (0.45, 0.6, 0.2)."""
    return ((z - np.array([0.45, 0.6, 0.2])) ** 2).sum(-1)


def _exp_product(z: np.ndarray) -> np.ndarray:
    """A non-quadratic cost of 5 bits with interactions: exp(w.b) - 1.5 b0 b1 b3 + 0.7 b2 b4."""
    w = np.array([0.6, -0.4, 0.9, 0.5, -0.8])
    return np.exp(z @ w) - 1.5 * z[..., 0] * z[..., 1] * z[..., 3] + 0.7 * z[..., 2] * z[..., 4]


def _one_bit(z: np.ndarray) -> np.ndarray:
    """f(b) = (b - 0.499)^2 scaled: the RELAX toy's cost times 100, on one bit."""
    return 100.0 * ((z - 0.499) ** 2).sum(-1)


def _uniforms(rng: np.random.Generator, n: int, logits: np.ndarray) -> np.ndarray:
    """Uniforms [n, D] kept at least 1e-4 from the thresholds sigma(l) and 1 - sigma(l), so that
    an answer computing b in float32 draws the same bits (a measure-zero change of the law)."""
    u = rng.random((n, len(logits)))
    theta = _sigmoid(logits)
    for _ in range(100):
        near = (np.abs(u - theta) < 1e-4) | (np.abs(u - (1 - theta)) < 1e-4)
        if not near.any():
            return u
        u = np.where(near, (u + 0.01) % 1.0, u)
    raise AssertionError("could not keep the uniforms away from the thresholds")


_rng = np.random.default_rng(1212)
#: (name, logits [D], cost, uniforms [P, D]): the formula on 8 pairs of 3 bits (quadratic cost);
#: 10,000 pairs of 5 bits with logits of both signs up to |8| and a non-quadratic cost (the
#: statistical checks run here); 7 pairs of one bit at a negative logit.
Q1_PROBLEMS = []
for _name, _logits, _cost, _n in (
        ("3 bits, quadratic cost", np.array([0.4, -1.1, 2.0]), _quadratic, 8),
        ("5 bits, exp-product cost", np.array([-6.0, -0.7, 0.3, 1.3, 8.0]), _exp_product, 10_000),
        ("1 bit", np.array([-2.5]), _one_bit, 7)):
    Q1_PROBLEMS.append((_name, _logits, _cost, _uniforms(_rng, _n, _logits)))
del _rng, _name, _logits, _cost, _n
Q1_STATS = 1  # the problem whose 10,000 pairs decide unbiasedness and variance


def _pairs(logits: np.ndarray, u: np.ndarray):
    """The antithetic pair of the paper: b = 1[u < sigma(l)], b~ = 1[1 - u < sigma(l)]."""
    theta = _sigmoid(logits)
    return (u < theta).astype(np.float64), (1.0 - u < theta).astype(np.float64)


def _disarm_variant(logits, cost, u, half=True, sign=1.0, abs_logits=True, indicator=True,
                    complement=False, swap=False):
    """DisARM and its typical mistakes; ``swap`` labels the pair the other way round (b from
    1 - u, as the chapter does), which only the mistakes notice."""
    b, b_anti = _pairs(logits, u)
    if swap:
        b, b_anti = b_anti, b
    if complement:  # b~ = 1 - b instead of the antithetic sample
        b_anti = 1.0 - b
    diff = (cost(b) - cost(b_anti))[:, None]
    weight = _sigmoid(np.abs(logits) if abs_logits else logits)
    out = diff * (1.0 - 2.0 * b_anti) * weight
    if indicator:
        out = out * (b != b_anti)
    return sign * (0.5 if half else 1.0) * out


def disarm_reference(logits: np.ndarray, cost, u: np.ndarray) -> np.ndarray:
    r"""DisARM per pair (Dong, Mnih & Tucker 2020, one pair per estimate), [P, D]:
    :math:`\frac12 (f(b) - f(\tilde b)) (-1)^{\tilde b_i} 1[b_i \ne \tilde b_i] \sigma(|l_i|)`."""
    return _disarm_variant(logits, cost, u)


def arm_reference(logits: np.ndarray, cost, u: np.ndarray) -> np.ndarray:
    r"""ARM per pair (Yin & Zhou 2019), [P, D]: :math:`(f(1[u > \sigma(-l)]) - f(1[u <
    \sigma(l)])) (u - \frac12)`, i.e. :math:`(f(\tilde b) - f(b))(u - \frac12)` here."""
    b, b_anti = _pairs(logits, u)
    return (cost(b_anti) - cost(b))[:, None] * (u - 0.5)


def exact_gradient_reference(logits: np.ndarray, cost) -> np.ndarray:
    """d/dl E[f(b)] by enumeration of the 2^D outcomes, [D]."""
    d = len(logits)
    outcomes = ((np.arange(2**d)[:, None] >> np.arange(d)) & 1).astype(np.float64)  # [2^D, D]
    theta = _sigmoid(logits)
    prob = np.prod(np.where(outcomes > 0, theta, 1 - theta), axis=1)
    score = outcomes - theta  # d log p / d l
    return (prob * cost(outcomes)) @ score


class _Cost:
    """The cost as the student's function receives it: samples [..., D] (a torch tensor or a
    NumPy array, of any dtype, 0/1 values) -> costs [...], of the same kind (float64)."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, z):
        import torch

        if isinstance(z, torch.Tensor):
            values = self.fn(z.detach().cpu().to(torch.float64).numpy())
            return torch.as_tensor(values, dtype=torch.float64)
        return self.fn(np.asarray(z, dtype=np.float64))


@SET.question("q1", points=4, answers=["disarm"], title="DisARM on fresh problems",
              forbidden=("lib.estimators", "lib.compare",
                         "lib.grading.sets.unbiased_estimators.disarm_reference",
                         "lib.grading.sets.unbiased_estimators.arm_reference",
                         "lib.grading.sets.unbiased_estimators.exact_gradient_reference",
                         "lib.grading.sets.unbiased_estimators._disarm_variant",
                         "lib.grading.sets.unbiased_estimators._pairs"),
              forbidden_why="Write the estimator yourself, from the pair of samples.")
def q1(disarm):
    import torch

    if not callable(disarm):
        raise Mistake("`disarm` should be a function (logits, cost, u).")
    seed_all(1212)  # an answer that draws its own numbers draws the same ones in every grader

    def call(logits, cost, u, what, grad=False):
        lt = torch.tensor(logits, dtype=torch.float64, requires_grad=grad)
        out = disarm(lt, _Cost(cost), torch.tensor(u, dtype=torch.float64))
        connected = isinstance(out, torch.Tensor) and out.requires_grad
        return as_float_array(out, f"disarm({what})"), connected

    values = []
    for name, logits, cost, u in Q1_PROBLEMS:
        values.append(call(logits, cost, u, f"{name}, u of shape {list(u.shape)}")[0])
    name, logits, cost, u = Q1_PROBLEMS[0]
    again, _ = call(logits, cost, u, f"{name}, called again")
    _, connected = call(logits, cost, u, "logits that require grad", grad=True)
    return {"values": values, "again": again, "connected": connected}


def _z_scores(est: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Per-coordinate z-scores of the mean of ``est`` [P, D] against ``mean`` [D]; a coordinate
    whose estimates are all equal gets 0 when it hits the mean and inf otherwise."""
    n = est.shape[0]
    se = est.std(0, ddof=1) / math.sqrt(n)
    gap = est.mean(0) - mean
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, gap / np.where(se > 0, se, 1.0),
                     np.where(np.abs(gap) <= 1e-12 * (1 + np.abs(mean)), 0.0, np.inf))
    return z


#: The unbiasedness check's threshold: |z| of the mean of 10,000 estimates against the exact
#: gradient, per coordinate (5 coordinates). An unbiased answer exceeds 5 SE by chance with
#: probability about 5 * 6e-7 (normal tails; the coordinate at logit 8 has few nonzero
#: estimates, and its z is checked on this fixed draw in tests/grading_cases).
Q1_Z = 5.0
#: Variance no larger than ARM's: the paired difference E[g_ARM^2 - g^2] (equal means, so it is
#: the difference of the variances) may not be below -Q1_Z_VAR of its standard errors.
Q1_Z_VAR = 3.0


def _scale(want: np.ndarray) -> float:
    return float(np.abs(want).max()) if want.size else 1.0


def _near(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to float32 round-off (a right answer may compute in float32)."""
    return _close(a, b, rtol=1e-4, atol=1e-5 * max(_scale(b), 1e-12))


@q1.judge
def _(data):
    values = data["values"]
    for (name, logits, _cost, u), g in zip(Q1_PROBLEMS, values):
        if g.shape == (len(logits),) and u.shape[0] > 1:
            raise Mistake(f"For {name} and u of shape {list(u.shape)} your estimate has shape "
                          f"{list(g.shape)}: return ONE estimate per pair (per row of u), shape "
                          f"{list(u.shape)}, not their mean.")
        expect_shape(g, u.shape, f"your estimate for {name} (u of shape {list(u.shape)})")
        expect_finite(g, "your estimate")
    if not _near(data["again"], values[0]):
        raise Mistake("Called twice with the same logits, cost and uniforms u, your function "
                      "returned different estimates: it draws random numbers of its own. All "
                      "the randomness must come from u: both samples of the pair are computed "
                      "from the SAME uniforms (the second one from 1 - u), which is what makes "
                      "them antithetic.")
    wrong = []
    for (name, logits, cost, u), g in zip(Q1_PROBLEMS, values):
        if not _near(g, disarm_reference(logits, cost, u)):
            _known_mistakes(g, name, logits, cost, u)
            wrong.append((name, list(u.shape)))
    # unbiasedness and variance on the 10,000 pairs (both hold for the reference on this draw)
    name, logits, cost, u = Q1_PROBLEMS[Q1_STATS]
    _statistics(values[Q1_STATS], logits, cost, u, name)
    if wrong:
        name, shape = wrong[0]
        raise Mistake(f"{name}: for u of shape {shape} your estimates differ from DisARM's on "
                      "the same uniforms. Build b and b~ from u as in the chapter, evaluate "
                      "the cost once at each, and weight each coordinate on which they differ.")
    if data["connected"]:
        raise Mistake("Your estimate is still connected to the autograd graph of the logits: "
                      "it is a value (what .grad would hold), not something to differentiate "
                      "further. Detach what you compute from the logits.")


def _known_mistakes(g, name, logits, cost, u):
    """Raise the hint of a typical mistake that ``g`` [P, D] is, on these uniforms."""
    want = disarm_reference(logits, cost, u)
    if _near(g, _disarm_variant(logits, cost, u, half=False)):
        raise Mistake(f"{name}: your estimates are twice DisARM's: the formula's factor 1/2 "
                      "is missing (the two samples of a pair share one estimate).")
    if _near(g, -want):
        raise Mistake(f"{name}: your estimates have the wrong sign, so their mean is minus "
                      "the gradient. Check which sample's cost comes first in the difference "
                      "and whose bit gives the sign (-1)^(b~_i): the two must match.")
    if _near(g, _disarm_variant(logits, cost, u, abs_logits=False)):
        raise Mistake(f"{name}: your estimates are right for positive logits and wrong for "
                      "negative ones: the weight is the sigmoid of the ABSOLUTE value of "
                      "the logit (the chance that the pair disagrees is symmetric in l).")
    if any(_near(g, _disarm_variant(logits, cost, u, indicator=False, swap=s))
           for s in (False, True)):
        raise Mistake(f"{name}: a coordinate on which the two samples of the pair agree "
                      "must contribute exactly 0; yours contributes the cost difference "
                      "caused by the OTHER coordinates (the indicator 1[b_i != b~_i] is "
                      "missing).")
    theta = _sigmoid(logits)
    if _near(g, want / (theta * (1 - theta))):
        raise Mistake(f"{name}: your estimates are DisARM's divided by theta (1 - theta): "
                      "a gradient with respect to the probabilities theta. The question "
                      "asks for the gradient with respect to the logits.")
    if _near(g, want * theta * (1 - theta)):
        raise Mistake(f"{name}: your estimates are DisARM's times theta (1 - theta) (the "
                      "derivative of the sigmoid applied once too often): the weight "
                      "sigma(|l|) already includes it.")
    if _near(g, want / _sigmoid(np.abs(logits))):
        raise Mistake(f"{name}: your estimates are DisARM's without the weight sigma(|l_i|): "
                      "half the cost difference of the pair times the score of each sample. The "
                      "two samples are dependent, so neither is a baseline for the other: that "
                      "estimate is biased, and the weight corrects it.")
    arm = arm_reference(logits, cost, u)
    if _near(g, arm) or _near(g, -arm):
        flipped = "" if _near(g, arm) else ", with the sign flipped"
        raise Mistake(f"{name}: these are ARM's estimates{flipped} (the cost difference "
                      "times u - 1/2). DisARM replaces u - 1/2 by its average over the "
                      "uniforms that give the same pair.")
    if any(_near(g, _disarm_variant(logits, cost, u, complement=True, swap=s))
           for s in (False, True)):
        raise Mistake(f"{name}: your second sample is the complement 1 - b of the first. "
                      "The antithetic sample is the same rule applied to 1 - u: the two "
                      "agree on the coordinates where both uniforms fall on the same side.")
    exact = exact_gradient_reference(logits, cost)
    if _near(g, np.broadcast_to(exact, g.shape)):
        raise Mistake(f"{name}: every row of your answer is the exact gradient (by "
                      "enumeration). The question asks for the DisARM estimate of each "
                      "pair of u: two cost evaluations per estimate.")


def _statistics(g, logits, cost, u, name):
    """Unbiasedness (z-test against enumeration) and variance against ARM on the same pairs."""
    n = u.shape[0]
    exact = exact_gradient_reference(logits, cost)
    z = _z_scores(g, exact)
    if np.any(np.abs(z) > Q1_Z):
        i = int(np.argmax(np.abs(z)))
        size = "more than 100" if abs(z[i]) > 100 else f"{abs(z[i]):.0f}"
        raise Mistake(f"{name}: the mean of your {n:,} estimates misses the exact gradient (by "
                      f"enumeration) by {size} standard errors at coordinate {i} (logit "
                      f"{logits[i]:g}): your estimator is biased. Check that b~ is computed "
                      "from 1 - u, the cost difference, the sign (-1)^(b~_i), the indicator and "
                      "the weight sigma(|l_i|).")
    arm = arm_reference(logits, cost, u)
    diff = arm**2 - g**2  # both unbiased: E[diff] = Var[ARM] - Var[yours]
    se = diff.std(0, ddof=1) / math.sqrt(n)
    if np.any(diff.mean(0) < -Q1_Z_VAR * np.maximum(se, 1e-300)):
        raise Mistake(f"{name}: your estimates look unbiased, but their variance is larger "
                      "than ARM's on the same uniforms. DisARM is ARM averaged over the "
                      "uniforms that give the same pair, so its variance is never larger.")


# ----------------------------------------------------------------------------------------------
# q2: the variances of one ARM and one DisARM estimate, one Bernoulli
# ----------------------------------------------------------------------------------------------
#: (logit, f0, f1) triples the notebook does not show: logit 0 (DisARM exact), both signs, large
#: logits, a cost that does not depend on b, a negative cost difference.
Q2_POINTS = [(0.0, 1.0, 3.0), (0.9, -1.0, 0.5), (-1.7, 2.0, -0.3), (3.2, 0.0, 1.0),
             (-4.5, 1.2, 1.9), (0.35, 5.0, 5.0), (-0.05, -2.0, 4.0), (6.0, 0.3, -0.7)]


def _moments(logit: float, f0: float, f1: float, abs_logit: bool = True):
    """(mean, ARM second moment, DisARM second moment) of one estimate."""
    s = float(_sigmoid(abs(logit) if abs_logit else logit))
    d2 = (f1 - f0) ** 2
    mean = (f1 - f0) * s * (1 - s)
    arm2 = d2 * 2.0 / 3.0 * (0.125 - (s - 0.5) ** 3)
    dis2 = d2 * s * s * (1 - s) / 2.0
    return mean, arm2, dis2


def pair_variances_reference(logit: float, f0: float, f1: float):
    """(Var ARM, Var DisARM) of the estimate of one antithetic pair, one Bernoulli."""
    mean, arm2, dis2 = _moments(logit, f0, f1)
    return arm2 - mean**2, dis2 - mean**2


@SET.question("q2", points=3, answers=["pair_variances"],
              title="the variances of ARM and DisARM for one Bernoulli",
              forbidden=("lib.estimators", "lib.compare",
                         "lib.grading.sets.unbiased_estimators.pair_variances_reference",
                         "lib.grading.sets.unbiased_estimators._moments"),
              forbidden_why="Derive the variances from the pair's cases (an integral over u).")
def q2(pair_variances):
    if not callable(pair_variances):
        raise Mistake("`pair_variances` should be a function of logit, f0 and f1.")
    out = []
    for logit, f0, f1 in Q2_POINTS:
        what = f"pair_variances({logit}, {f0}, {f1})"
        value = as_float_array(pair_variances(logit, f0, f1), what)
        if value.shape != (2,):
            raise Mistake(f"{what} should be a pair of numbers (Var ARM, Var DisARM), got "
                          f"shape {value.shape}.")
        out.append(value)
    return {"values": np.stack(out)}


@q2.judge
def _(data):
    got = data["values"]
    expect_shape(got, (len(Q2_POINTS), 2), "your variances")
    if not np.all(np.isfinite(got)):
        raise Mistake("Some of your variances are NaN or infinite (a division by a cost "
                      "difference or a logit that can be 0?).")
    want = np.array([pair_variances_reference(*p) for p in Q2_POINTS])
    scale = np.array([(f1 - f0) ** 2 for _, f0, f1 in Q2_POINTS])[:, None]

    def close(a, b, rtol=1e-6):
        return _close(a, b, rtol=rtol, atol=1e-12 * max(float(scale.max()), 1.0))

    if close(got, want):
        return
    if close(got, want[:, ::-1]):
        raise Mistake("Your two variances are in the other order: return (Var ARM, Var DisARM).")
    if np.any(got < -1e-12):
        raise Mistake("One of your variances is negative, which a variance never is: for a "
                      "negative logit the pair's cases swap, and the formula must be written "
                      "with |l| (or sigma(|l|)).")
    second = np.array([_moments(*p)[1:] for p in Q2_POINTS])
    if close(got, second):
        raise Mistake("These are the second moments E[g^2]. The variance subtracts the square "
                      "of the mean, and the mean is the exact gradient (both are unbiased).")
    for j, est in enumerate(("ARM", "DisARM")):
        if close(got[:, j], want[:, j]):
            continue
        if close(got[:, j], second[:, j]):
            raise Mistake(f"Your {est} variance is its second moment E[g^2]: subtract the "
                          "square of the mean (the exact gradient).")
        signed = np.array([_moments(*p, abs_logit=False) for p in Q2_POINTS])
        if close(got[:, j], signed[:, 1 + j] - signed[:, 0] ** 2):
            raise Mistake(f"Your {est} variance is right for positive logits only: for a "
                          "negative logit the cases of the pair swap; write it with |l|.")
        delta = np.array([f1 - f0 for _, f0, f1 in Q2_POINTS])
        if close(got[:, j] * np.abs(delta), want[:, j]) or close(got[:, j] * delta, want[:, j]):
            raise Mistake(f"Your {est} variance scales like the cost difference f1 - f0; a "
                          "variance scales like its square.")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = got[:, j] / want[:, j]
        usable = np.abs(want[:, j]) > 1e-12
        if np.all(np.abs(ratio[usable] - 1) < 0.05):
            raise Mistake(f"Your {est} variance is within 5% of the exact value but not equal "
                          "to it: an estimate (Monte Carlo?) instead of the exact integral over "
                          "u of the pair's cases.")
        bad = [f"(logit {p[0]:g}, f0 {p[1]:g}, f1 {p[2]:g})" for p, a, b in
               zip(Q2_POINTS, got[:, j], want[:, j]) if not close(a, b)]
        raise Mistake(f"Your {est} variance is not the exact one at {', '.join(bad[:3])}"
                      f"{' and others' if len(bad) > 3 else ''}. Split the interval of u by "
                      "the cases of the pair (both 1, both 0, b = 1 and b~ = 0, the reverse) "
                      "and integrate the square of the estimate over each.")
    raise Mistake("Your variances are not the exact ones.")
