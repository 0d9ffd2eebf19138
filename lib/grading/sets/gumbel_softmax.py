"""Exercises for the chapter "Gumbel-softmax: the Concrete distribution"."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from lib.grading.core import ExerciseSet, Mistake, as_float_array, expect_finite, expect_shape
from lib.grading.probing import attempt as _attempt
from lib.grading.probing import seed_all

SET = ExerciseSet("gumbel_softmax", "Gumbel-softmax: the Concrete distribution")

P_REJECT = 1e-4  # overall level of each statistical check: a correct answer fails 1 in 10,000


def _softmax(logits) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def _chi2_pvalue(counts, probs) -> float:
    """Chi-square goodness of fit; cells with expected count < 5 are pooled into one."""
    counts = np.asarray(counts, dtype=np.float64)
    expected = counts.sum() * np.asarray(probs, dtype=np.float64)
    small = expected < 5
    if small.any():
        counts = np.append(counts[~small], counts[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
    if counts.size < 2:
        return 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(counts, expected).pvalue)


# ----------------------------------------------------------------------------------------------
# q1: implement Gumbel-softmax
# ----------------------------------------------------------------------------------------------
Q1_LOGITS = [1.0, -0.5, 0.3, 2.0]
Q1_TAUS = (0.5, 2.0)
N_Q1 = 20_000
N_REF = 20_000
Q1_LIBRARY = ("torch.nn.functional.gumbel_softmax", "torch.distributions.RelaxedOneHotCategorical",
              "torch.distributions.relaxed_categorical.ExpRelaxedCategorical", "lib.relaxed")


def _q1_call(gumbel_softmax, n, tau, seed):
    import torch

    seed_all(seed)
    logits = torch.tensor(Q1_LOGITS, dtype=torch.float64).expand(n, -1).clone()
    value, error = _attempt(gumbel_softmax, logits, tau)
    if error is not None:
        return {"error": error}
    try:
        return {"samples": as_float_array(value, f"gumbel_softmax(logits, tau={tau:g})")}
    except Mistake as exc:
        return {"error": str(exc)}


@SET.question("q1", points=3, answers=["gumbel_softmax"], title="implement Gumbel-softmax",
              forbidden=Q1_LIBRARY,
              forbidden_why="A library Gumbel-softmax is not allowed here. The task is to build "
                            "it: add Gumbel noise to the logits, divide by tau, take a softmax.")
def q1(gumbel_softmax):
    if not callable(gumbel_softmax):
        raise Mistake("`gumbel_softmax` should be a function of (logits, tau).")
    return {
        "runs": {str(tau): _q1_call(gumbel_softmax, N_Q1, tau, 20 + i)
                 for i, tau in enumerate(Q1_TAUS)},
    }


def _reference_samples(tau: float, n: int, seed: int) -> np.ndarray:
    """Gumbel-softmax samples from lib (the book's tested sampler), float64, fixed seed."""
    import torch

    from lib.relaxed import gumbel_softmax

    logits = torch.tensor(Q1_LOGITS, dtype=torch.float64).expand(n, -1)
    return gumbel_softmax(logits, tau, generator=torch.Generator().manual_seed(seed)).numpy()


def _log_density(y: np.ndarray, tau: float) -> np.ndarray:
    """Concrete log-density of the rows of y (clipped into the open simplex)."""
    import torch

    from lib.relaxed import concrete_log_prob

    y = np.clip(y, 1e-300, None)
    y = y / y.sum(-1, keepdims=True)
    logits = torch.tensor(Q1_LOGITS, dtype=torch.float64)
    return concrete_log_prob(torch.from_numpy(y), logits, tau).numpy()


def _same_law(y: np.ndarray, ref: np.ndarray, tau: float) -> float:
    """Smallest Bonferroni-corrected p-value of two-sample KS tests: each coordinate, and the
    Concrete log-density of the samples (which also sees how the coordinates move together)."""
    pvalues = [stats.ks_2samp(y[:, k], ref[:, k]).pvalue for k in range(y.shape[1])]
    pvalues.append(stats.ks_2samp(_log_density(y, tau), _log_density(ref, tau)).pvalue)
    return min(1.0, min(pvalues) * len(pvalues))


@q1.judge
def _(data):
    k = len(Q1_LOGITS)
    probs = _softmax(Q1_LOGITS)
    samples = {}
    for tau in Q1_TAUS:
        run = data["runs"][str(tau)]
        what = f"gumbel_softmax(logits of shape [{N_Q1}, {k}], tau={tau:g})"
        if "error" in run:
            raise Mistake(f"{what} raised {run['error']}")
        y = np.asarray(run["samples"])
        expect_shape(y, (N_Q1, k), what)
        expect_finite(y, f"the output of {what}")
        samples[tau] = y
    for tau, y in samples.items():
        what = f"at tau={tau:g}"
        if np.all((y == 0) | (y == 1)):
            raise Mistake(f"Your samples {what} are exactly one-hot: that is the Gumbel-max "
                          "sample (an argmax), which has no useful gradient. Replace the argmax "
                          "by a softmax of (logits + G) / tau.")
        rows, cols = y.sum(1), y.sum(0)
        if np.all(np.abs(cols - 1) < 1e-6) and not np.all(np.abs(rows - 1) < 1e-6):
            raise Mistake(f"Each column of your output {what} sums to 1, not each row: the "
                          "softmax runs over the wrong dimension (the samples, dim 0). Take it "
                          "over the categories, the last dimension.")
        if y.min() < -1e-12 or np.abs(rows - 1).max() > 1e-6:
            extra = ""
            if np.allclose(rows, rows.mean(), rtol=1e-6) and y.min() >= 0:
                extra = (f" All your rows sum to {rows.mean():.4g}: is tau applied outside the "
                         "softmax instead of inside it?")
            raise Mistake(f"Your rows {what} are not points of the simplex (entries >= 0 that "
                          f"sum to 1): row sums range over [{rows.min():.4g}, {rows.max():.4g}], "
                          f"smallest entry {y.min():.3g}.{extra}")
        if np.allclose(y, y[0]):
            raise Mistake(f"All your samples {what} are identical: the same noise is reused for "
                          "every row, or one noise value is shared by all categories (a shift, "
                          "which the softmax ignores). Draw fresh Gumbel noise with the full "
                          "shape of the logits, [n, K].")
        if np.unique(y.argmax(1)).size == 1:
            raise Mistake(f"All your samples {what} point to the same category: the noise is "
                          "too weak to ever change the winner. Use standard Gumbel noise, "
                          "-log(-log U) with U uniform on (0, 1).")
    for tau, y in samples.items():
        counts = np.bincount(y.argmax(1), minlength=k)
        p = _chi2_pvalue(counts, probs)
        if p * len(Q1_TAUS) >= P_REJECT:
            continue
        freqs = np.round(counts / N_Q1, 3)
        if _chi2_pvalue(counts, _softmax(np.array(Q1_LOGITS) / tau)) > 1e-3:
            raise Mistake(f"At tau={tau:g} the argmax of your samples follows "
                          "softmax(logits / tau), not softmax(logits) (frequencies "
                          f"{freqs.tolist()}): you divided only the logits by tau. Divide the "
                          "perturbed logits, (logits + G) / tau, so the argmax is unchanged.")
        if _chi2_pvalue(counts, _softmax(np.array(Q1_LOGITS) * tau)) > 1e-3:
            raise Mistake(f"At tau={tau:g} the argmax of your samples follows "
                          "softmax(logits * tau), not softmax(logits) (frequencies "
                          f"{freqs.tolist()}): only the noise is divided by tau. Divide the "
                          "perturbed logits, (logits + G) / tau.")
        raise Mistake(f"At tau={tau:g} the argmax of your samples does not follow "
                      f"softmax(logits): frequencies {freqs.tolist()} (chi-square p = "
                      f"{p:.1e}). The argmax of softmax((logits + G)/tau) must be a Gumbel-max "
                      "sample: check that the noise is standard Gumbel, -log(-log U) with U "
                      "uniform, and that it is added to the logits, not subtracted.")
    for i, (tau, y) in enumerate(samples.items()):
        ref = _reference_samples(tau, N_REF, 100 + i)
        p = _same_law(y, ref, tau)
        if p * len(Q1_TAUS) >= P_REJECT:
            continue
        if _same_law(y, _reference_samples(1.0, N_REF, 200 + i), 1.0) > 1e-3:
            raise Mistake(f"At tau={tau:g} your samples are distributed like Gumbel-softmax at "
                          "tau = 1: your function ignores tau. Divide (logits + G) by tau "
                          "inside the softmax.")
        if _same_law(y, _reference_samples(1.0 / tau, N_REF, 300 + i), 1.0 / tau) > 1e-3:
            raise Mistake(f"At tau={tau:g} your samples are distributed like Gumbel-softmax at "
                          f"temperature 1/tau = {1 / tau:g}: you multiplied by tau instead of "
                          "dividing.")
        spread = float(np.mean(y.max(1)))
        target = float(np.mean(ref.max(1)))
        raise Mistake(f"The argmax of your samples is right, but at tau={tau:g} the relaxed "
                      "vectors do not follow the Concrete distribution (two-sample KS tests "
                      f"against a reference sampler, p = {p:.1e}; mean largest entry "
                      f"{spread:.3f}, expected about {target:.3f}). Check where tau enters: "
                      "y = softmax((logits + G) / tau).")


# ----------------------------------------------------------------------------------------------
# q2: one cell of the temperature experiment
# ----------------------------------------------------------------------------------------------
Q2_LOGITS = [1.5, 0.8, 0.5, 0.0, -0.5, -1.0]
Q2_TAUS = (0.5, 3.0)
N_Q2 = 20_000


@SET.question("q2", points=2, answers=["tempered_frequencies"],
              title="one cell of the temperature experiment",
              forbidden=("lib.relaxed.tempered_sample",),
              forbidden_why="The task is to write the sampler yourself (Gumbel-max on the "
                            "scaled logits), not to call lib.relaxed.tempered_sample.")
def q2(tempered_frequencies):
    import torch

    if not callable(tempered_frequencies):
        raise Mistake("`tempered_frequencies` should be a function of (logits, tau, n_samples).")
    runs = {}
    for i, tau in enumerate(Q2_TAUS):
        seed_all(40 + i)
        logits = torch.tensor(Q2_LOGITS, dtype=torch.float64)
        value, error = _attempt(tempered_frequencies, logits, tau, N_Q2)
        if error is not None:
            runs[str(tau)] = {"error": error}
            continue
        try:
            runs[str(tau)] = {"freqs": as_float_array(
                value, f"tempered_frequencies(logits, {tau:g}, {N_Q2})")}
        except Mistake as exc:
            runs[str(tau)] = {"error": str(exc)}
    return {"runs": runs}


@q2.judge
def _(data):
    k = len(Q2_LOGITS)
    x = np.array(Q2_LOGITS)
    for tau in Q2_TAUS:
        run = data["runs"][str(tau)]
        what = f"tempered_frequencies(logits, tau={tau:g}, n_samples={N_Q2})"
        if "error" in run:
            raise Mistake(f"{what} raised {run['error']}")
        f = np.asarray(run["freqs"]).reshape(-1) if np.size(run["freqs"]) == k else None
        if f is None:
            expect_shape(run["freqs"], (k,), what)
        expect_finite(f, what)
        target = _softmax(x / tau)
        if abs(f.sum() - N_Q2) < 1e-6 * N_Q2:
            raise Mistake(f"{what} sums to {f.sum():g}, the number of samples: these are counts. "
                          "Divide by n_samples to get the empirical distribution.")
        if f.min() < 0 or abs(f.sum() - 1) > 1e-6:
            raise Mistake(f"{what} should be a distribution over the {k} categories "
                          f"(non-negative, summing to 1); it sums to {f.sum():.6g}.")
        counts = f * N_Q2
        # float32 frequencies (count / n in single precision) are off by up to ~1e-3 counts
        if np.abs(counts - np.round(counts)).max() > 0.01:
            if np.allclose(f, target, atol=1e-9):
                raise Mistake(f"{what} returned softmax(logits / tau) itself, the exact "
                              "probabilities. The experiment samples: draw n_samples "
                              "categories and return their frequencies (counts / n_samples).")
            raise Mistake(f"{what} is not a vector of frequencies (counts / n_samples are "
                          "multiples of 1/n_samples). Did you average relaxed Gumbel-softmax "
                          "vectors? Count tempered samples argmax(logits / tau + G) instead.")
        counts = np.round(counts)
        p = _chi2_pvalue(counts, target)
        if p * len(Q2_TAUS) >= P_REJECT:
            continue
        if _chi2_pvalue(counts, _softmax(x)) > 1e-3:
            raise Mistake(f"At tau={tau:g} your frequencies follow softmax(logits): they do not "
                          "depend on tau. The argmax of a Gumbel-softmax sample, "
                          "argmax((logits + G) / tau), never depends on tau. Scale the logits "
                          "only: argmax(logits / tau + G).")
        if _chi2_pvalue(counts, _softmax(x * tau)) > 1e-3:
            raise Mistake(f"At tau={tau:g} your frequencies follow softmax(logits * tau): the "
                          "temperature is applied the wrong way round (multiplying the logits, "
                          "or dividing the noise). Use argmax(logits / tau + G).")
        se = np.sqrt(target * (1 - target) / N_Q2)
        z = (f - target) / se
        j = int(np.argmax(np.abs(z)))
        raise Mistake(f"At tau={tau:g} your frequencies do not follow softmax(logits / tau): "
                      f"category {j} is {z[j]:+.1f} standard errors away (chi-square p = "
                      f"{p:.1e}). Check the noise (fresh standard Gumbel for every sample) and "
                      "that the argmax is taken over the categories.")


# ----------------------------------------------------------------------------------------------
# q3: the limits of the three quantities
# ----------------------------------------------------------------------------------------------
Q3_LOGITS = [2.0, 1.0, 0.0, -1.0]
Q3_ANSWERS = ["tempered_low", "argmax_high", "mean_low", "mean_high"]
Q3_TOL = 0.01  # loose enough for a Monte Carlo estimate with 10^5 samples


def q3_targets() -> dict:
    x = np.array(Q3_LOGITS)
    one_hot = np.eye(len(x))[np.argmax(x)]
    uniform = np.full(len(x), 1 / len(x))
    return {"tempered_low": one_hot, "argmax_high": _softmax(x), "mean_low": _softmax(x),
            "mean_high": uniform}


@SET.question("q3", points=2, answers=Q3_ANSWERS, title="limits of the three quantities")
def q3(tempered_low, argmax_high, mean_low, mean_high):
    values = dict(zip(Q3_ANSWERS, (tempered_low, argmax_high, mean_low, mean_high)))
    return {name: as_float_array(v, f"`{name}`") for name, v in values.items()}


Q3_HINTS = {
    "tempered_low": {
        "softmax": "is softmax(x), the distribution at tau = 1. As tau -> 0 the scaled scores "
                   "x / tau move infinitely far apart: which category then always wins?",
        "uniform": "is uniform, the limit as tau -> infinity. As tau -> 0 the scaled scores "
                   "x / tau move apart instead of together.",
    },
    "argmax_high": {
        "uniform": "is uniform. But the argmax of softmax((x + G)/tau) is argmax(x + G) for "
                   "every tau > 0: dividing by tau does not change which entry is largest.",
        "one_hot": "is one-hot. The argmax of softmax((x + G)/tau) is argmax(x + G), a "
                   "Gumbel-max sample: it is random, whatever tau.",
    },
    "mean_low": {
        "one_hot": "is the one-hot vector of argmax(x): that is the tempered categorical's "
                   "limit. Here each relaxed vector tends to onehot(argmax(x + G)), which is "
                   "random (it depends on the noise G): average over the noise.",
        "uniform": "is uniform, the high-temperature limit. At low temperature each relaxed "
                   "vector is nearly one-hot.",
    },
    "mean_high": {
        "softmax": "is softmax(x). But as tau grows every relaxed vector softmax((x + G)/tau) "
                   "itself tends to one fixed vector, whatever the noise.",
        "one_hot": "is one-hot. At high temperature the softmax flattens its input.",
    },
}


@q3.judge
def _(data):
    targets = q3_targets()
    x = np.array(Q3_LOGITS)
    k = len(x)
    known = {"softmax": _softmax(x), "uniform": np.full(k, 1 / k),
             "one_hot": np.eye(k)[np.argmax(x)]}
    for name in Q3_ANSWERS:
        v = np.asarray(data[name], dtype=np.float64).reshape(-1) if np.size(data[name]) == k \
            else np.asarray(data[name])
        expect_shape(v, (k,), f"`{name}`")
        expect_finite(v, f"`{name}`")
        if v.min() < -Q3_TOL or abs(v.sum() - 1) > Q3_TOL:
            raise Mistake(f"`{name}` should be a probability vector over the {k} categories "
                          f"(non-negative, summing to 1); it sums to {v.sum():.4g}.")
        if np.abs(v - targets[name]).max() <= Q3_TOL:
            continue
        for label, vector in known.items():
            if np.abs(v - vector).max() <= Q3_TOL and label in Q3_HINTS[name]:
                raise Mistake(f"`{name}` {Q3_HINTS[name][label]}")
        raise Mistake(f"`{name}` is not right (it is none of softmax(x), the uniform vector or "
                      "the one-hot vector of argmax(x) that the limits could be). Work out "
                      "what each quantity does as tau changes, then take the limit.")


# ----------------------------------------------------------------------------------------------
# q4: the Concrete log-density
# ----------------------------------------------------------------------------------------------
Q4_TAUS = (0.3, 2 / 3, 1.5)
Q4_KS = (2, 3, 5)


def q4_cases() -> list:
    """(y, logits, tau) triples: random logits, Dirichlet points and one point near a corner."""
    rng = np.random.default_rng(4)
    cases = []
    for k in Q4_KS:
        logits = rng.normal(size=k)
        corner = np.full(k, 0.01 / (k - 1))
        corner[0] = 0.99
        points = [rng.dirichlet(np.ones(k)) for _ in range(2)] + [corner]
        for tau in Q4_TAUS:
            cases += [(y, logits, tau) for y in points]
    return cases


def q4_reference(y, logits, tau) -> float:
    """The Concrete log-density by torch.distributions (an independent implementation)."""
    import torch
    from torch.distributions import RelaxedOneHotCategorical

    d = RelaxedOneHotCategorical(torch.tensor(tau, dtype=torch.float64),
                                 logits=torch.as_tensor(logits, dtype=torch.float64))
    return float(d.log_prob(torch.as_tensor(y, dtype=torch.float64)))


@SET.question("q4", points=2, answers=["concrete_log_prob"], title="the Concrete log-density",
              forbidden=("torch.distributions.RelaxedOneHotCategorical",
                         "torch.distributions.relaxed_categorical.ExpRelaxedCategorical",
                         "lib.relaxed"),
              forbidden_why="A library log_prob (RelaxedOneHotCategorical or lib.relaxed) is "
                            "not allowed here: write the formula yourself.")
def q4(concrete_log_prob):
    import torch

    if not callable(concrete_log_prob):
        raise Mistake("`concrete_log_prob` should be a function of (y, logits, tau).")
    values = []
    for y, logits, tau in q4_cases():
        value, error = _attempt(concrete_log_prob, torch.tensor(y), torch.tensor(logits), tau)
        if error is not None:
            return {"error": f"concrete_log_prob(y, logits, tau={tau:.3g}) with K={len(y)} "
                             f"raised {error}"}
        arr = as_float_array(value, "concrete_log_prob(y, logits, tau)").reshape(-1)
        if arr.size != 1:
            raise Mistake(f"concrete_log_prob(y, logits, tau) returned {arr.size} numbers for "
                          f"one point y with K={len(y)} categories; return one log-density "
                          "(sum over the categories).")
        values.append(float(arr[0]))
    return {"values": np.array(values)}


@q4.judge
def _(data):
    if "error" in data:
        raise Mistake(data["error"])
    cases = q4_cases()
    ours = np.asarray(data["values"])
    expect_shape(ours, (len(cases),), "your log-densities")
    truth = np.array([q4_reference(*c) for c in cases])
    k = np.array([len(c[0]) for c in cases], dtype=np.float64)
    tau = np.array([c[2] for c in cases])
    sum_log_y = np.array([np.log(c[0]).sum() for c in cases])
    lse = np.array([np.logaddexp.reduce(c[1] - c[2] * np.log(c[0])) for c in cases])
    if np.all(np.isfinite(ours)) and np.abs(ours - truth).max() <= 1e-6 * (1 + np.abs(truth)).max():
        return
    if np.all(np.isfinite(ours)) and np.allclose(ours, np.exp(truth), rtol=1e-6):
        raise Mistake("You returned the density itself; return its logarithm.")
    expect_finite(ours, "your log-densities")
    diff = ours - truth
    explained = {
        "the (K-1)! factor: its log, lgamma(K), is missing or wrong":
            np.array([-math.lgamma(n) for n in k]),
        "the power of tau: the factor is tau^(K-1), not tau^K":
            np.log(tau),
        "the factor tau^(K-1) is missing":
            -(k - 1) * np.log(tau),
        "the exponent of y_k in the numerator: it is -(tau + 1), not -tau":
            sum_log_y,
        "the denominator: the product has K factors, so the log of the sum is subtracted K "
        "times, not once": (k - 1) * lse,
    }
    for reason, expected_diff in explained.items():
        if np.allclose(diff, expected_diff, atol=1e-6):
            raise Mistake(f"Your log-densities are off by a term that points to {reason}.")
    if np.allclose(ours, -truth, atol=1e-6):
        raise Mistake("Your values have the right size but the wrong sign: return log p(y), "
                      "not -log p(y).")
    j = int(np.argmax(np.abs(diff)))
    raise Mistake(f"Your log-density differs from the Concrete log-density by up to "
                  f"{abs(diff[j]):.3g} (at K={int(k[j])}, tau={tau[j]:.3g}). Take the log of "
                  "the formula in the prompt and compare it with your code term by term: the "
                  "factorial, the power of tau, the exponent of y_k, and the denominator, "
                  "which appears once per category (K times).")
