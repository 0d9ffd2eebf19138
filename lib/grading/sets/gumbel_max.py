"""Exercises for the chapter "The Gumbel distribution and the Gumbel-max trick"."""

from __future__ import annotations

import numpy as np
from scipy import stats

from lib.grading.core import ExerciseSet, Mistake, as_float_array, expect_finite, expect_shape
from lib.grading.probing import attempt as _attempt
from lib.grading.probing import resolve, seed_all

SET = ExerciseSet("gumbel_max", "The Gumbel distribution and the Gumbel-max trick")

def _exists(dotted: str) -> bool:
    try:
        resolve(dotted)
        return True
    except (ImportError, AttributeError):
        return False


EULER_GAMMA = float(np.euler_gamma)
GUMBEL_VAR = float(np.pi**2 / 6)


# ----------------------------------------------------------------------------------------------
# q1: a standard Gumbel sampler by inverse CDF
# ----------------------------------------------------------------------------------------------
N_GUMBEL = 20_000


#: Library Gumbel samplers and densities: forbidden while q1 and q4 are probed, however they
#: are reached (an alias, getattr, a helper); comments, docstrings and names never matter.
GUMBEL_LIBRARY = (
    "numpy.random.RandomState.gumbel", "numpy.random.Generator.gumbel", "numpy.random.gumbel",
    "scipy.stats.gumbel_r", "scipy.stats.gumbel_l", "torch.distributions.Gumbel",
    "torch.nn.functional.gumbel_softmax", "lib.gumbel",
)


@SET.question("q1", points=2, answers=["sample_gumbel"], title="sample_gumbel by inverse CDF",
              forbidden=GUMBEL_LIBRARY,
              forbidden_why="The task is to build a Gumbel sampler from uniform draws with the "
                            "inverse CDF, so a library Gumbel sampler cannot be used.")
def q1(sample_gumbel):
    if not callable(sample_gumbel):
        raise Mistake("`sample_gumbel` should be a function taking the number of samples n.")
    seed_all(0)
    small = as_float_array(sample_gumbel(3), "sample_gumbel(3)")
    seed_all(1)
    samples = as_float_array(sample_gumbel(N_GUMBEL), f"sample_gumbel({N_GUMBEL})")
    return {"small": small, "samples": samples}


@q1.judge
def _(data):
    expect_shape(data["small"], (3,), "sample_gumbel(3)")
    x = data["samples"]
    expect_shape(x, (N_GUMBEL,), f"sample_gumbel({N_GUMBEL})")
    expect_finite(x, "your samples")
    mean, var = float(x.mean()), float(x.var())
    se_mean = np.sqrt(GUMBEL_VAR / x.size)  # standard error of the mean of a correct sampler
    if np.ptp(x) == 0:
        raise Mistake(f"All your {x.size} samples are equal ({x[0]:.4g}): a sampler must "
                      "return random draws, fresh ones on every call.")
    if np.all((x >= 0) & (x <= 1)):
        raise Mistake("All your samples lie in [0, 1]: they look like the uniform draws U "
                      "themselves. Transform them with the inverse of the Gumbel CDF.")
    if np.all(x >= 0) and abs(mean - 1) < 0.05 and abs(var - 1) < 0.1:
        raise Mistake(f"Your samples have mean {mean:.2f} and variance {var:.2f}, like an "
                      "Exponential(1), but a standard Gumbel has mean 0.577 and variance 1.645. "
                      "Did you apply only one of the two logarithms?")
    if abs(mean + EULER_GAMMA) < 5 * se_mean:
        raise Mistake(f"Your samples have mean {mean:.3f}: the right spread, but mirrored. A "
                      "standard (max-)Gumbel has mean +0.577; check the signs in front of the "
                      "two logarithms.")
    if abs(mean) < 0.05 and abs(var - 1) < 0.1:
        raise Mistake(f"Your samples have mean {mean:.2f} and variance {var:.2f}: they look "
                      "normal, not Gumbel.")
    if abs(mean - EULER_GAMMA) > 5 * se_mean or abs(var / GUMBEL_VAR - 1) > 0.1:
        raise Mistake(f"Your samples have mean {mean:.3f} and variance {var:.3f}; a standard "
                      f"Gumbel has mean {EULER_GAMMA:.3f} (Euler's constant) and variance "
                      f"{GUMBEL_VAR:.3f} (pi^2/6). Check the location and scale.")
    p = stats.kstest(x, stats.gumbel_r.cdf).pvalue
    if p < 1e-4:
        raise Mistake(f"Mean and variance are right, but a Kolmogorov-Smirnov test rejects the "
                      f"Gumbel shape (p = {p:.1e}). Are the samples independent?")


def _softmax(logits) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    z = np.exp(logits - logits.max())
    return z / z.sum()


def _gumbel_cdf(z):
    return np.exp(-np.exp(-np.asarray(z, dtype=np.float64)))


def _close(value, reference, rtol=1e-6, atol=1e-10) -> bool:
    return bool(np.all(np.abs(np.asarray(value) - np.asarray(reference))
                       <= atol + rtol * np.abs(reference)))


# ----------------------------------------------------------------------------------------------
# q2: Gumbel-max sampling from logits
# ----------------------------------------------------------------------------------------------
Q2_LOGITS = [1.5, -0.5, 0.3, 2.2, -1.0, 0.0]  # category 3 has the largest logit
Q2_SHIFT = 1000.0
Q2_MASKED = 3
N_Q2 = 20_000
P_REJECT = 1e-4  # chi-square level: a correct sampler fails one check in 10,000 runs
CATEGORICAL_LIBRARY = (
    "numpy.random.RandomState.choice", "numpy.random.Generator.choice", "numpy.random.choice",
    "numpy.random.RandomState.multinomial", "numpy.random.Generator.multinomial",
    "numpy.random.multinomial", "numpy.searchsorted", "torch.multinomial",
    "torch.distributions.Categorical", "torch.distributions.OneHotCategorical",
    "torch.nn.functional.gumbel_softmax", "lib.gumbel",
)


def _draws(gumbel_max_sample, logits, n, seed):
    seed_all(seed)
    value, error = _attempt(gumbel_max_sample, np.array(logits, dtype=np.float64), n)
    if error is not None:
        return {"error": error}
    try:
        return {"samples": as_float_array(value, f"gumbel_max_sample(logits, {n})")}
    except Mistake as exc:
        return {"error": str(exc)}


@SET.question("q2", points=2, answers=["gumbel_max_sample"], title="Gumbel-max sampling",
              forbidden=CATEGORICAL_LIBRARY,
              forbidden_why="It is a library categorical sampler (or inverse-CDF search); the "
                            "task is the Gumbel-max trick: add Gumbel noise to the logits and "
                            "take the argmax.")
def q2(gumbel_max_sample):
    if not callable(gumbel_max_sample):
        raise Mistake("`gumbel_max_sample` should be a function of (logits, n_samples).")
    masked = list(Q2_LOGITS)
    masked[Q2_MASKED] = -np.inf
    return {
        "small": _draws(gumbel_max_sample, Q2_LOGITS, 5, 10),
        "base": _draws(gumbel_max_sample, Q2_LOGITS, N_Q2, 11),
        "shifted": _draws(gumbel_max_sample, [x + Q2_SHIFT for x in Q2_LOGITS], N_Q2, 12),
        "masked": _draws(gumbel_max_sample, masked, N_Q2, 13),
    }


def _q2_samples(case, what, n, k):
    if "error" in case:
        raise Mistake(f"On {what}, your function raised {case['error']}")
    x = np.asarray(case["samples"])
    if x.shape == (k,) and n != k:
        raise Mistake(f"On {what}, your function returned {k} values, one per category, "
                      f"instead of {n} samples: did you take the argmax over the samples axis "
                      "instead of the categories axis?")
    expect_shape(x, (n,), f"gumbel_max_sample(logits, {n}) on {what}")
    expect_finite(x, f"your samples on {what}")
    if not np.all(x == np.round(x)):
        raise Mistake(f"On {what}, your samples are not whole numbers: return category "
                      "indices (the argmax), not the perturbed scores or probabilities.")
    if x.min() < 0 or x.max() >= k:
        raise Mistake(f"On {what}, your samples include {int(x.min())}..{int(x.max())}, "
                      f"outside the categories 0..{k - 1}: is the argmax taken over the "
                      "right axis?")
    return x.astype(int)


def _q2_fit(x, probs, what):
    n, k = x.size, probs.size
    counts = np.bincount(x, minlength=k)
    if np.any(counts[probs == 0] > 0):
        raise Mistake(f"On {what}, your sampler drew a category whose logit is -inf "
                      f"({int(counts[probs == 0].sum())} times). A -inf logit plus any noise "
                      "stays -inf and must never win the argmax.")
    if np.unique(x).size == 1:
        raise Mistake(f"On {what}, all {n} samples are category {int(x[0])}: the same noise "
                      "seems to be reused for every sample (or no noise is added). Draw fresh "
                      "Gumbel noise of shape (n_samples, K).")
    support = probs > 0
    p = stats.chisquare(counts[support], n * probs[support]).pvalue
    if p >= P_REJECT:
        return
    freqs = counts / n
    top, bottom = int(np.argmax(probs)), int(np.argmin(np.where(support, probs, np.inf)))
    se = np.sqrt(probs[top] * (1 - probs[top]) / n)
    if np.argmax(counts) == bottom:
        raise Mistake(f"On {what}, the category with the lowest logit is drawn most often: "
                      "is there an argmin, or a minus sign in front of the logits?")
    if freqs[top] > probs[top] + 5 * se:
        raise Mistake(f"On {what}, the category with the largest logit is drawn with frequency "
                      f"{freqs[top]:.3f}, far above softmax(logits) = {probs[top]:.3f} "
                      f"(chi-square p = {p:.1e}): the noise is too small. Is it standard Gumbel "
                      "noise -log(-log U), and is it added to the logits (not multiplied)?")
    if freqs[top] < probs[top] - 5 * se:
        raise Mistake(f"On {what}, the category with the largest logit is drawn with frequency "
                      f"{freqs[top]:.3f}, far below softmax(logits) = {probs[top]:.3f} "
                      f"(chi-square p = {p:.1e}): the samples are too uniform. Add the noise to "
                      "the logits, not to probabilities, and check its scale.")
    raise Mistake(f"On {what}, your frequencies do not match softmax(logits) (chi-square "
                  f"p = {p:.1e}). Check that each sample is argmax_i(logits_i + G_i) with fresh, "
                  "independent standard Gumbel G_i.")


@q2.judge
def _(data):
    k = len(Q2_LOGITS)
    _q2_samples(data["small"], "logits with n_samples=5", 5, k)
    probs = _softmax(Q2_LOGITS)
    base = _q2_samples(data["base"], "the base logits", N_Q2, k)
    _q2_fit(base, probs, "the base logits")
    try:
        shifted = _q2_samples(data["shifted"], f"logits + {Q2_SHIFT:g}", N_Q2, k)
        _q2_fit(shifted, probs, f"logits + {Q2_SHIFT:g}")
    except Mistake:
        shifted = data["shifted"]
        evidence = (f"it raised {shifted['error']}" if "error" in shifted else
                    "its samples there do not follow softmax(logits)")
        raise Mistake(f"Your sampler works on the base logits but not after adding "
                      f"{Q2_SHIFT:g} to every logit, which must not change the distribution "
                      f"({evidence}). exp(logits) overflows for large logits: work with the "
                      "logits directly (Gumbel-max needs no exponential).") from None
    masked = np.array(Q2_LOGITS)
    masked[Q2_MASKED] = -np.inf
    x = _q2_samples(data["masked"], "logits with a -inf entry", N_Q2, k)
    _q2_fit(x, _softmax(masked), "logits with a -inf entry (a masked category)")


# ----------------------------------------------------------------------------------------------
# q3: the chi-square goodness-of-fit check
# ----------------------------------------------------------------------------------------------
def _q3_cases():
    """(name, samples, probs): fixed data sets, including a biased one and missing categories."""
    rng = np.random.default_rng(2024)
    p5 = np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    biased = np.array([0.13, 0.2, 0.27, 0.25, 0.15])
    cases = [
        ("a fair sample", rng.choice(5, size=2000, p=p5), p5),
        ("a biased sample", rng.choice(5, size=5000, p=biased), p5),
    ]
    for name, counts, probs in (
        ("a sample where the last category never appears", [70, 60, 55, 15, 0],
         [0.3, 0.3, 0.3, 0.05, 0.05]),
        ("a sample where category 1 never appears", [50, 0, 80, 70], [0.25, 0.1, 0.35, 0.3]),
    ):
        samples = np.repeat(np.arange(len(counts)), counts)
        cases.append((name, rng.permutation(samples), np.array(probs)))
    return cases


CHISQUARE_LIBRARY = ("scipy.stats.chisquare", "scipy.stats.power_divergence",
                     "scipy.stats.chi2_contingency")


@SET.question("q3", points=2, answers=["chi_square_pvalue"],
              title="the chi-square goodness-of-fit check", forbidden=CHISQUARE_LIBRARY,
              forbidden_why="It is a library chi-square test: compute the statistic "
                            "sum (O - E)^2 / E yourself; scipy.stats.chi2 for the p-value is "
                            "fine.")
def q3(chi_square_pvalue):
    if not callable(chi_square_pvalue):
        raise Mistake("`chi_square_pvalue` should be a function of (samples, probs).")
    results = []
    for name, samples, probs in _q3_cases():
        value, error = _attempt(chi_square_pvalue, samples.copy(), probs.copy())
        if error is None:
            try:
                value = as_float_array(value, f"chi_square_pvalue on {name}")
            except Mistake as exc:
                value, error = None, str(exc)
        results.append({
            "name": name,
            "counts": np.bincount(samples, minlength=probs.size).astype(np.float64),
            "probs": probs,
            "value": value if value is not None else np.array(np.nan),
            "error": error or "",
        })
    return {"results": results}


@q3.judge
def _(data):
    for case in data["results"]:
        name = case["name"]
        missing = "never appears" in name
        if case["error"]:
            hint = (" A category with no samples still counts, with observed count 0: count "
                    "every category of probs, also those that never occur.") if missing else ""
            raise Mistake(f"On {name}, {case['error']}{hint}")
        value = np.asarray(case["value"])
        if value.size != 1:
            raise Mistake(f"On {name}, your function returned an array of shape "
                          f"{value.shape}; return one number, the p-value.")
        value = float(value.reshape(()))
        counts, probs = np.asarray(case["counts"]), np.asarray(case["probs"])
        n, k = counts.sum(), probs.size
        expected = n * probs
        statistic = float(((counts - expected) ** 2 / expected).sum())
        reference = float(stats.chi2.sf(statistic, k - 1))
        if _close(value, reference, rtol=1e-5, atol=1e-9):
            continue
        if not np.isfinite(value):
            raise Mistake(f"On {name}, your p-value is {value}. Dividing by observed counts "
                          "(which can be 0) instead of expected counts gives this: the "
                          "statistic is sum (O - E)^2 / E.")
        if value > 1 or value < 0:
            raise Mistake(f"On {name}, you returned {value:.4g}, which is not a probability: "
                          "return the p-value P(chi2_{K-1} >= statistic), not the statistic.")
        if _close(value, 1 - reference, rtol=1e-5, atol=1e-9):
            raise Mistake(f"On {name}, your value is 1 minus the p-value: use the survival "
                          "function chi2.sf (the upper tail), not chi2.cdf.")
        if _close(value, stats.chi2.sf(statistic, k), rtol=1e-5, atol=1e-9):
            raise Mistake(f"On {name}, your p-value uses {k} degrees of freedom; with K "
                          "categories and probabilities that sum to 1 there are K - 1.")
        if _close(value, stats.chi2.sf(statistic / n, k - 1), rtol=1e-5, atol=1e-9):
            raise Mistake(f"On {name}, your statistic seems computed from frequencies; the "
                          "chi-square statistic uses counts: O = counts, E = n * probs.")
        neyman = float(((counts - expected) ** 2 / np.where(counts > 0, counts, np.nan)).sum())
        if np.all(counts > 0) and _close(value, stats.chi2.sf(neyman, k - 1), 1e-5, 1e-9):
            raise Mistake(f"On {name}, your statistic divides by the observed counts; "
                          "Pearson's statistic divides by the expected counts E = n * probs.")
        if missing:
            raise Mistake(f"On {name}, your p-value differs from Pearson's chi-square test: a "
                          "category with no samples must still be counted (observed 0, "
                          "expected n * p) and kept aligned with its probability (np.bincount "
                          "has an argument for the number of categories).")
        raise Mistake(f"On {name}, your p-value {value:.4g} differs from that of Pearson's "
                      "chi-square test: statistic sum over categories of (O - E)^2 / E with "
                      "counts O and E = n * probs, p-value = chi2.sf(statistic, K - 1).")


# ----------------------------------------------------------------------------------------------
# q4-q6: the proof of the Gumbel-max trick, in steps checked numerically
# ----------------------------------------------------------------------------------------------
Q4_GRID = np.linspace(-3.0, 8.0, 23)
Q4_LOCS = [0.0, 1.5, -2.0]
Q4_TAILS = [-1000.0, 1000.0]
TAIL_HINT = ("scipy.integrate.quad evaluates the density far out in the tails (g = -1000 and "
             "beyond), where exp(-z) overflows to inf. Write the density as one exponential, "
             "exp(-z - exp(-z)), which correctly gives 0 there (numpy may warn; "
             "`with np.errstate(over='ignore'):` silences it), and avoid math.exp, which "
             "raises OverflowError.")


@SET.question("q4", points=1, answers=["gumbel_density"],
              title="proof step (a): the density of Gumbel(loc, 1)", forbidden=GUMBEL_LIBRARY,
              forbidden_why="It is a library Gumbel density: derive it yourself by "
                            "differentiating the CDF exp(-exp(-(g - loc))).")
def q4(gumbel_density):
    if not callable(gumbel_density):
        raise Mistake("`gumbel_density` should be a function of (g, loc).")
    values = np.full((len(Q4_LOCS), Q4_GRID.size), np.nan)
    for a, loc in enumerate(Q4_LOCS):
        for b, g in enumerate(Q4_GRID):
            out = as_float_array(gumbel_density(float(g), loc), "gumbel_density(g, loc)")
            if out.size != 1:
                raise Mistake(f"gumbel_density({g:g}, {loc:g}) returned shape {out.shape}; "
                              "for a number g it should return one number.")
            values[a, b] = float(out.reshape(()))
    tails = []  # quad evaluates the density far out in both tails, where it is 0
    for g in Q4_TAILS:
        out, error = _attempt(gumbel_density, g, 0.0)
        if error is None:
            try:
                out = float(as_float_array(out, "gumbel_density(g, loc)").reshape(-1)[0])
            except (Mistake, IndexError) as exc:
                out, error = None, str(exc)
        tails.append({"g": g, "value": np.nan if out is None else out, "error": error or ""})
    return {"values": values, "tails": tails}


@q4.judge
def _(data):
    values = np.asarray(data["values"])
    expect_finite(values, "your densities")
    z = Q4_GRID[None, :] - np.array(Q4_LOCS)[:, None]
    reference = stats.gumbel_r.pdf(z)
    if _close(values, reference):
        _check_tails(data["tails"])
        return
    if np.any(values < 0):
        raise Mistake("Some of your densities are negative: a density is never negative.")
    wrong = {
        "is the CDF exp(-exp(-z)), not the density; differentiate it with respect to g":
            _gumbel_cdf(z),
        "returns only the derivative of the inner function -exp(-z): the chain rule also "
        "multiplies by the outer exponential, evaluated at the same point":
            np.exp(-z),
        "is the mirrored (min-)Gumbel density exp(z - exp(z)); with z = g - loc the density "
        "is exp(-z - exp(-z))": stats.gumbel_l.pdf(z),
        "ignores the location: use z = g - loc":
            stats.gumbel_r.pdf(np.broadcast_to(Q4_GRID, z.shape)),
        "shifts in the wrong direction: use z = g - loc, not g + loc":
            stats.gumbel_r.pdf(Q4_GRID[None, :] + np.array(Q4_LOCS)[:, None]),
    }
    for hint, candidate in wrong.items():
        if _close(values, candidate):
            raise Mistake(f"Your function {hint}.")
    worst = np.unravel_index(np.argmax(np.abs(values - reference)), values.shape)
    raise Mistake(f"Your density differs from the Gumbel(loc, 1) density, most at "
                  f"g = {Q4_GRID[worst[1]]:g}, loc = {Q4_LOCS[worst[0]]:g}. The density is the "
                  "derivative of exp(-exp(-(g - loc))).")


def _check_tails(tails):
    for tail in tails:
        if tail["error"]:
            raise Mistake(f"gumbel_density({tail['g']:g}, 0) raised {tail['error']}. "
                          + TAIL_HINT)
        if not np.isfinite(tail["value"]) or abs(tail["value"]) > 1e-300:
            raise Mistake(f"gumbel_density({tail['g']:g}, 0) returned {tail['value']}, but "
                          "the density there is 0 (to double precision). " + TAIL_HINT)


Q5_CASES = [
    ([0.5, -1.0, 2.0], 0, 1.0),
    ([0.5, -1.0, 2.0], 2, 3.5),
    ([0.0, 0.0, 0.0, 0.0], 1, -0.5),
    ([1.0, -0.5, 0.3, 2.0, -2.0], 3, 2.5),
    ([1.0, -0.5, 0.3, 2.0, -2.0], 4, 0.0),
    ([3.0, 1.0], 1, 4.0),
]


def _others_below(g, logits, i, include_self=False):
    logits = np.asarray(logits, dtype=np.float64)
    keep = np.ones(logits.size, bool)
    if not include_self:
        keep[i] = False
    return float(np.prod(_gumbel_cdf(g - logits[keep])))


@SET.question("q5", points=1, answers=["prob_others_below"],
              title="proof step (b): all other perturbed logits are below g")
def q5(prob_others_below):
    if not callable(prob_others_below):
        raise Mistake("`prob_others_below` should be a function of (g, logits, i).")
    values = []
    for logits, i, g in Q5_CASES:
        out = as_float_array(prob_others_below(g, np.array(logits), i),
                             "prob_others_below(g, logits, i)")
        if out.size != 1:
            raise Mistake(f"prob_others_below returned shape {out.shape}; it should return "
                          "one probability.")
        values.append(float(out.reshape(())))
    return {"values": np.array(values)}


@q5.judge
def _(data):
    values = np.asarray(data["values"])
    expect_finite(values, "your probabilities")
    reference = np.array([_others_below(g, lg, i) for lg, i, g in Q5_CASES])
    if _close(values, reference):
        return
    others = [np.arange(len(lg)) != i for lg, i, _ in Q5_CASES]
    wrong = {
        "multiplies over all categories, including i itself; the product runs over j != i":
            np.array([_others_below(g, lg, i, include_self=True) for lg, i, g in Q5_CASES]),
        "computes the probability that the others are ABOVE g; you need P(x_j + G_j < g)":
            np.array([float(np.prod(1 - _gumbel_cdf(g - np.asarray(lg)[m])))
                      for (lg, _, g), m in zip(Q5_CASES, others)]),
        "adds the probabilities; the events are independent, so multiply the CDFs":
            np.array([float(np.sum(_gumbel_cdf(g - np.asarray(lg)[m])))
                      for (lg, _, g), m in zip(Q5_CASES, others)]),
        "uses densities instead of CDFs: P(x_j + G_j < g) is the CDF of Gumbel(x_j, 1) at g":
            np.array([float(np.prod(stats.gumbel_r.pdf(g - np.asarray(lg)[m])))
                      for (lg, _, g), m in zip(Q5_CASES, others)]),
        "shifts in the wrong direction: x_j + G_j < g means G_j < g - x_j":
            np.array([float(np.prod(_gumbel_cdf(g + np.asarray(lg)[m])))
                      for (lg, _, g), m in zip(Q5_CASES, others)]),
    }
    for hint, cand in wrong.items():
        if _close(values, cand):
            raise Mistake(f"Your function {hint}.")
    if np.any(values < 0) or np.any(values > 1 + 1e-12):
        raise Mistake("Some of your values are outside [0, 1]; they should be probabilities.")
    raise Mistake("Your probabilities are wrong for some (g, logits, i). Each x_j + G_j is "
                  "Gumbel(x_j, 1), the G_j are independent, and the product runs over j != i.")


Q6_LOGITS = [
    [0.5, -1.0, 2.0],
    [0.0, 0.0, 0.0, 0.0],
    [3.0, 1.0, -2.0, 0.5, 0.0],
    [6.0, 4.5, 5.0],
]
Q6_TOL = 2e-5  # scipy.integrate.quad reaches about 1e-8 here; a careful grid rule, 1e-6
#: Numerical integrators; the judge requires that prob_argmax calls one while it is probed
#: (observed, so functools.partial, exec and aliases all count, and a comment does not).
INTEGRATORS = ("scipy.integrate.quad", "scipy.integrate.quad_vec", "scipy.integrate.fixed_quad",
               "scipy.integrate.trapezoid", "scipy.integrate.simpson", "scipy.integrate.romb",
               "numpy.trapezoid")


@SET.question("q6", points=2, answers=["prob_argmax"],
              title="proof step (c): the integral, evaluated numerically",
              watch=tuple(n for n in INTEGRATORS if _exists(n)))
def q6(prob_argmax):
    if not callable(prob_argmax):
        raise Mistake("`prob_argmax` should be a function of (logits, i).")
    values = []
    for logits in Q6_LOGITS:
        row = []
        for i in range(len(logits)):
            out, error = _attempt(prob_argmax, np.array(logits), i)
            if error is not None:
                hint = (" quad evaluates the integrand far out in the tails, where math.exp "
                        "overflows: use numpy's exp (which returns inf, and exp(-inf) = 0).")
                raise Mistake(f"prob_argmax({logits}, {i}) raised {error}."
                              + (hint if "Overflow" in error else ""))
            out = as_float_array(out, "prob_argmax(logits, i)")
            if out.size != 1:
                raise Mistake(f"prob_argmax returned shape {out.shape}; it should return one "
                              "probability.")
            row.append(float(out.reshape(())))
        values.append(np.array(row))
    return {"values": values}


@q6.judge
def _(data):
    if not data.get("__called__"):
        raise Mistake("Your prob_argmax does not integrate numerically. The point of this step "
                      "is to evaluate the integral of density x probability-others-below with "
                      "scipy.integrate.quad, not to return a formula for the answer.")
    for logits, values in zip(Q6_LOGITS, data["values"]):
        values = np.asarray(values, dtype=np.float64)
        if np.any(np.isnan(values)):
            raise Mistake(f"For logits {logits} some probabilities are NaN. quad evaluates the "
                          "integrand far out in the tails; there exp(-z) overflows to inf and "
                          "inf * 0 = NaN. Write the density as one exponential, "
                          "exp(-z - exp(-z)), which gives 0 there.")
        expect_finite(values, f"your probabilities for logits {logits}")
        reference = _softmax(logits)
        if np.all(np.abs(values - reference) <= Q6_TOL):
            continue
        for hint, candidate in _q6_wrong(logits).items():
            if np.all(np.abs(values - candidate) <= Q6_TOL):
                raise Mistake(f"For logits {logits}: {hint}")
        total = float(values.sum())
        if abs(total - 1) > Q6_TOL:
            raise Mistake(f"For logits {logits} your probabilities over i sum to {total:.6f}, "
                          "not 1. Check the three pieces: the winner's density is that of "
                          "Gumbel(x_i, 1), the product of CDFs runs over j != i only, and the "
                          "integral runs over the whole real line.")
        worst = int(np.argmax(np.abs(values - reference)))
        raise Mistake(f"For logits {logits} your probabilities sum to 1 but category {worst} "
                      f"gets {values[worst]:.5f}, which is not softmax(logits). Is the density "
                      "of the winner centred at its own logit x_i?")


def _q6_wrong(logits):
    """Typical wrong integrals (name -> probabilities), evaluated with quad."""
    from scipy.integrate import quad

    x = np.asarray(logits, dtype=np.float64)

    def density(g, loc):
        return float(stats.gumbel_r.pdf(g - loc))

    def below(g, i, include_self=False):
        keep = np.ones(x.size, bool)
        keep[i] = include_self
        return float(np.prod(_gumbel_cdf(g - x[keep])))

    def integral(f, lo=-np.inf):
        return np.array([quad(lambda g, i=i: f(g, i), lo, np.inf)[0] for i in range(x.size)])

    return {
        "the product of CDFs includes category i itself (it must run over j != i), so the "
        "probabilities sum to less than 1.":
            integral(lambda g, i: density(g, x[i]) * below(g, i, include_self=True)),
        "the integral starts at 0, but a Gumbel variable can be negative: integrate over "
        "the whole real line, (-inf, inf).":
            integral(lambda g, i: density(g, x[i]) * below(g, i), lo=0.0),
        "the winner's density is centred at 0; x_i + G_i is Gumbel(x_i, 1), centred at the "
        "winner's own logit.":
            integral(lambda g, i: density(g, 0.0) * below(g, i)),
    }
