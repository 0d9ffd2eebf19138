"""Exercises for the chapter "Subsets of size k".

q1  log_partition(logits, k): log Z_k, the log of the sum over every size-k subset S of
    exp(sum_{i in S} logits_i), for 1-D logits and 0 <= k <= n, by a recursion carried in log
    space. Checked against enumeration on fresh logits (every k of several n), against the
    shift identity log Z_k(theta + c) = log Z_k(theta) + k c at c = +-800, on logits 900 apart
    (where rescaling by the largest logit underflows) and at n = 60, k = 30 (no enumeration
    possible) against the grader's own DP. The probability-space recursion, subsets of size
    <= k, the in-place update that takes an item twice, an index off by one and the sum of the
    top-k logits get their hints.
q2  sample_subset(logits, k, n_samples): exact samples of the k-subset law. Statistical: a
    chi-square test over the 20 subsets of 3 of 6 items and a test of the 40 inclusion
    frequencies at n = 40, k = 12 (no enumeration possible). Gumbel-top-k (the Plackett-Luce
    law, chapter 15) is rejected by many standard errors and gets its own hint.
q3  relaxed_topk(scores, k, tau): the entropic (sigmoid) relaxation of top-k, y_i =
    sigmoid((s_i + b) / tau) with the threshold b that makes sum(y) = k: checked against the
    grader's bisection on fresh scores (a near-tie, k = 1, shifted scores, a small tau); the
    successive softmax (entries above 1), k * softmax, a missing threshold or temperature and a
    bisection bracket that misses the threshold get their hints.

Every input is fixed here (seeded), so a notebook and the batch grader see the same checks; the
judge computes what is right from its own copy of the inputs, never from what the probe returns.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats

from lib.grading.core import ExerciseSet, Mistake, as_float_array, expect_finite, expect_shape
from lib.grading.probing import seed_all

SET = ExerciseSet("subsets", "Subsets of size k")

#: Every question implements a piece of lib.subsets: calling it (or the grader's references)
#: while the answer is probed scores 0.
LIBRARY = ("lib.subsets",)


def _lse(a: np.ndarray, axis: int = -1) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True)), axis)


def _esp_table(logits: np.ndarray, upto: int) -> np.ndarray:
    """log e_j(exp(logits)) for j = 0..upto (-inf where e_j = 0), by the log-space recursion."""
    e = np.full(upto + 1, -np.inf)
    e[0] = 0.0
    for x in logits:
        taken = np.concatenate([[-np.inf], e[:-1] + x])
        e = np.logaddexp(e, taken)
    return e


def log_partition_reference(logits, k: int) -> float:
    """log Z_k(logits) by the log-space recursion (the grader's own DP)."""
    logits = np.asarray(logits, dtype=np.float64)
    return float(_esp_table(logits, k)[k])


def _complete_homogeneous(logits: np.ndarray, k: int) -> float:
    """log h_k(exp(logits)): the sum over multisets of size k (an item may be taken twice),
    which is what an in-place update in increasing j computes."""
    h = np.full(k + 1, -np.inf)
    h[0] = 0.0
    for x in logits:
        for j in range(1, k + 1):
            h[j] = np.logaddexp(h[j], x + h[j - 1])
    return float(h[k])


# ----------------------------------------------------------------------------------------------
# q1: the log-partition function
# ----------------------------------------------------------------------------------------------
_rng = np.random.default_rng(1515)
#: Fresh logits: n = 1, 3, 5 and 7, every k from 0 to n.
Q1_BASE = [_rng.normal(scale=1.5, size=n).round(4) for n in (1, 3, 5, 7)]
#: One vector of 6 logits, shifted by +800 and -800 (exp overflows and underflows there).
Q1_SHIFT_BASE = _rng.normal(size=6).round(4)
Q1_SHIFTS = (800.0, -800.0)
#: Logits 900 apart: rescaling by the largest logit leaves exp(-900) = 0 in float64.
Q1_WIDE = np.array([400.0, -350.0, 120.0, -500.0, 10.5, 260.0, -90.0, 30.25])
#: n = 60: C(60, 30) ~ 1.2e17 subsets, no enumeration; k = 1, 30, 60, and the logits - 800.
Q1_LARGE = _rng.normal(scale=3.0, size=60).round(4)
Q1_LARGE_KS = (1, 30, 60)
Q1_LARGE_SHIFT = -800.0
del _rng

#: An answer is right within this relative error (of max(1, |log Z|)): a float32 computation of
#: a right recursion passes (its rounding is ~1e-7 relative per step), while each wrong answer
#: below is off by more than 1e-3 on the base logits.
Q1_RTOL = 1e-5


def _q1_cases():
    """(label, logits, k) in the order the probe calls them."""
    cases = []
    for theta in Q1_BASE:
        cases += [("base", theta, k) for k in range(len(theta) + 1)]
    for c in Q1_SHIFTS:
        cases += [(f"shift{c:+g}", Q1_SHIFT_BASE + c, k) for k in range(7)]
    cases += [("wide", Q1_WIDE, k) for k in range(len(Q1_WIDE) + 1)]
    cases += [("large", Q1_LARGE, k) for k in Q1_LARGE_KS]
    cases += [("large_shift", Q1_LARGE + Q1_LARGE_SHIFT, k) for k in Q1_LARGE_KS]
    return cases


def _q1_close(got: np.ndarray, want: np.ndarray) -> bool:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        return False
    both_inf = np.isneginf(want) & ((got < -1e30) | np.isneginf(got))
    with np.errstate(invalid="ignore"):
        ok = np.abs(got - want) <= Q1_RTOL * np.maximum(1.0, np.abs(want))
    return bool(np.all(ok | both_inf))


@SET.question("q1", points=3, answers=["log_partition"], title="the log-partition function",
              forbidden=LIBRARY + ("lib.grading.sets.subsets.log_partition_reference",),
              forbidden_why="Write the recursion yourself (lib.subsets holds the chapter's).")
def q1(log_partition):
    import torch

    if not callable(log_partition):
        raise Mistake("`log_partition` should be a function of (logits, k).")
    values = []
    for _, theta, k in _q1_cases():
        logits = torch.tensor(theta, dtype=torch.float64)
        value = as_float_array(log_partition(logits, k),
                               f"log_partition(logits of shape [{len(theta)}], k={k})")
        if value.size != 1:
            raise Mistake(f"log_partition(logits of shape [{len(theta)}], k={k}) should be one "
                          f"number, got shape {value.shape}.")
        values.append(float(value.reshape(-1)[0]))
    return {"values": values}


@q1.judge
def _(data):
    cases = _q1_cases()
    got = np.asarray(data["values"], dtype=float)
    expect_shape(got, (len(cases),), "the number of your values")
    labels = np.array([label for label, _, _ in cases])
    want = np.array([log_partition_reference(theta, k) for _, theta, k in cases])
    base = labels == "base"
    g, w = got[base], want[base]
    ks = np.array([k for label, _, k in cases if label == "base"])
    thetas = [theta for label, theta, _ in cases if label == "base"]
    if not _q1_close(g, w):
        def variant(fn):
            return np.array([fn(theta, k) for theta, k in zip(thetas, ks)])

        if _q1_close(g, variant(lambda t, k: np.sort(t)[::-1][:k].sum())):
            raise Mistake("Your value is the sum of the k largest logits: the score of the best "
                          "subset, a max. log Z adds up every subset's weight: a log-sum-exp "
                          "over the subsets, not a max.")
        if _q1_close(g, variant(lambda t, k: _lse(_esp_table(t, k)))):
            raise Mistake("Your value sums over the subsets of size at most k (sizes 0, 1, ..., "
                          "k); log Z_k counts the subsets of size exactly k only.")
        if _q1_close(g, variant(_complete_homogeneous)):
            raise Mistake("Your recursion lets an item be taken more than once: the table is "
                          "updated in place for increasing j, so the entry j - 1 it reads "
                          "already includes the current item. Each item may enter a subset "
                          "once: read the previous item's row (a copy, or j decreasing).")
        ns = np.array([len(t) for t in thetas])
        for shift, what in ((1, "k - 1"), (-1, "k + 1")):
            j = ks - shift
            ok = (j >= 0) & (j <= ns)
            alt = np.array([_esp_table(t, len(t))[jj] if o else 0.0
                            for t, jj, o in zip(thetas, j, ok)])
            if _q1_close(g[ok], alt[ok]):
                raise Mistake(f"Your value is log Z for subsets of size {what}: an index off by "
                              "one (the table's column j holds the subsets of size j, and column "
                              "0, the empty subset, has weight 1).")
        for cut, what in ((slice(None, -1), "last"), (slice(1, None), "first")):
            small = ks < ns
            if _q1_close(g[small], variant(lambda t, k, cut=cut: _esp_table(t[cut], k)[k])[small]):
                raise Mistake(f"Your recursion leaves out the {what} item (a loop bound off by "
                              "one): every one of the n items must pass through the recursion.")
        if _q1_close(g[ks > 0], w[ks > 0]):
            raise Mistake("Your value is right for k >= 1 but not for k = 0: the only subset of "
                          "size 0 is the empty one, whose weight is exp(0) = 1, so log Z_0 = 0.")
        bad = [(len(t), int(k)) for t, k, a, b in zip(thetas, ks, g, w)
               if not _q1_close(np.array([a]), np.array([b]))]
        n, k = bad[0]
        raise Mistake(f"Your log Z differs from the sum over every subset (enumeration) at "
                      f"n = {n}, k = {k}{' and elsewhere' if len(bad) > 1 else ''}. Check the "
                      "recursion: item i is either out of the subset or in it, and when it is "
                      "in, it adds its logit and takes one place of the k.")
    for c in Q1_SHIFTS:
        mask = labels == f"shift{c:+g}"
        if _q1_close(got[mask], want[mask]):
            continue
        plus = f"{'+' if c > 0 else '-'} {abs(c):g} k"
        if not np.all(np.isfinite(got[mask])):
            raise Mistake(f"With every logit {c:+g} your log Z is infinite or NaN, while it is "
                          f"simply log Z(logits) {plus}. exp({c:g}) "
                          f"{'overflows' if c > 0 else 'underflows to 0'} in floating point: "
                          "carry the whole recursion in log space (logaddexp / logsumexp) "
                          "instead of computing products of exp(logits).")
        raise Mistake(f"With every logit {c:+g} your log Z is not log Z(logits) {plus}: "
                      "adding a constant c to every logit multiplies each subset's weight by "
                      "exp(k c). Carry the recursion in log space.")
    wide = labels == "wide"
    if not _q1_close(got[wide], want[wide]):
        raise Mistake("On logits that are 900 apart (from -500 to 400) your log Z is wrong "
                      f"{'(infinite or NaN)' if not np.all(np.isfinite(got[wide])) else ''}. "
                      "Subtracting the largest logit before exponentiating is not enough: "
                      "exp(-900) is 0 in float64. Carry the recursion itself in log space.")
    for label, what in (("large", "n = 60"), ("large_shift", f"n = 60 with logits {-800:+g}")):
        mask = labels == label
        if _q1_close(got[mask], want[mask]):
            continue
        if not np.all(np.isfinite(got[mask])):
            raise Mistake(f"At {what} (k = 1, 30, 60) your log Z is infinite or NaN: carry the "
                          "recursion in log space so that no weight overflows or underflows.")
        raise Mistake(f"Your log Z is right on small n but not at {what} (k = 1, 30, 60), "
                      "against the grader's own recursion and the shift identity "
                      "log Z(logits + c) = log Z(logits) + k c.")


# ----------------------------------------------------------------------------------------------
# q2: an exact sampler
# ----------------------------------------------------------------------------------------------
#: 3 of 6 items: the k-subset and Plackett-Luce (Gumbel-top-k) laws are 0.115 apart in total
#: variation here. With N_SMALL samples the chi-square statistic of Gumbel-top-k samples against
#: the k-subset law has noncentrality about 1,500 (2,800 the other way round), against a critical
#: value of 51 at P_REJECT: the two laws are separated by far more than the test's noise.
Q2_SMALL = np.array([2.1, -0.7, 1.7, 0.4, -1.4, -0.1])
Q2_SMALL_K = 3
N_SMALL = 20_000
#: 12 of 40 items: C(40, 12) ~ 5.6e9 subsets, no enumeration. The inclusion frequency of item i
#: has standard error sqrt(mu_i (1 - mu_i) / N_LARGE) (at most 0.008); Gumbel-top-k's frequencies
#: are up to 16 SE from the k-subset marginals.
Q2_LARGE = np.random.default_rng(1516).normal(scale=1.5, size=40).round(4)
Q2_LARGE_K = 12
N_LARGE = 4_000
#: Each test rejects a right sampler with probability P_REJECT (the chi-square level; the 40
#: frequencies at P_REJECT / 40 each, Bonferroni), so a right answer fails one run in 5,000.
P_REJECT = 1e-4
Q2_SEEDS = (150, 151, 152)


def _subset_laws(theta: np.ndarray, k: int):
    """Every subset (rows of itertools.combinations), its k-subset and its Plackett-Luce
    (Gumbel-top-k) probability."""
    combos = list(itertools.combinations(range(len(theta)), k))
    log_w = np.array([theta[list(c)].sum() for c in combos])
    p_k = np.exp(log_w - _lse(log_w))
    p_pl = []
    for c in combos:
        total = 0.0
        for order in itertools.permutations(c):
            prob, left = 1.0, list(range(len(theta)))
            for i in order:
                prob *= math.exp(theta[i] - _lse(theta[left]))
                left.remove(i)
            total += prob
        p_pl.append(total)
    return combos, p_k, np.array(p_pl)


def ksubset_marginals_reference(theta, k: int) -> np.ndarray:
    """P(i in S) = exp(theta_i + log Z_{k-1}(theta without i) - log Z_k(theta))."""
    theta = np.asarray(theta, dtype=np.float64)
    log_z = log_partition_reference(theta, k)
    return np.array([math.exp(theta[i] + log_partition_reference(np.delete(theta, i), k - 1)
                              - log_z) for i in range(len(theta))])


def _chisq_p(counts: np.ndarray, probs: np.ndarray) -> float:
    """Chi-square p-value, the cells whose expected count is below 5 pooled into one."""
    expected = counts.sum() * probs
    small = expected < 5
    if small.sum() > 1 or (small.sum() == 1 and len(probs) > 2):
        counts = np.append(counts[~small], counts[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
    return float(stats.chisquare(counts, expected).pvalue)


def _p_text(p: float) -> str:
    return "< 1e-10" if p < 1e-10 else f"= {p:.1e}"


def _draw(sample_subset, theta, k, n, seed):
    import torch

    seed_all(seed)
    value = sample_subset(torch.tensor(theta, dtype=torch.float64), k, n)
    return as_float_array(value, f"sample_subset(logits of shape [{len(theta)}], k={k}, {n})")


@SET.question("q2", points=3, answers=["sample_subset"], title="an exact k-subset sampler",
              forbidden=LIBRARY + ("lib.grading.sets.subsets.ksubset_marginals_reference",),
              forbidden_why="Write the sampler yourself (lib.subsets holds the chapter's).")
def q2(sample_subset):
    if not callable(sample_subset):
        raise Mistake("`sample_subset` should be a function of (logits, k, n_samples).")
    return {"tiny": _draw(sample_subset, Q2_SMALL, Q2_SMALL_K, 3, Q2_SEEDS[0]),
            "small": _draw(sample_subset, Q2_SMALL, Q2_SMALL_K, N_SMALL, Q2_SEEDS[1]),
            "large": _draw(sample_subset, Q2_LARGE, Q2_LARGE_K, N_LARGE, Q2_SEEDS[2])}


def _q2_structure(z: np.ndarray, n_samples: int, n: int, k: int) -> None:
    what = f"sample_subset(logits of shape [{n}], k={k}, {n_samples})"
    if z.shape == (n_samples, k) and n != k and np.all(z == np.round(z)):
        raise Mistake(f"{what} returned shape {z.shape}: item indices, it seems. Return each "
                      f"subset as a 0/1 indicator of its items, shape [n_samples, n] = "
                      f"[{n_samples}, {n}].")
    expect_shape(z, (n_samples, n), what)
    expect_finite(z, "your samples")
    if not np.all((z == 0) | (z == 1)):
        raise Mistake(f"{what} has entries other than 0 and 1: return hard subsets (0/1 "
                      "indicators), not probabilities or relaxed values.")
    sizes = z.sum(1)
    if not np.all(sizes == k):
        raise Mistake(f"Some of your subsets do not have exactly k = {k} items (sizes from "
                      f"{int(sizes.min())} to {int(sizes.max())}). Independent coins "
                      "Bernoulli(sigmoid(logit)) give subsets of any size; the k-subset law is "
                      "their law conditioned on exactly k ones.")


@q2.judge
def _(data):
    n, k = len(Q2_SMALL), Q2_SMALL_K
    _q2_structure(data["tiny"], 3, n, k)
    z = data["small"]
    _q2_structure(z, N_SMALL, n, k)
    combos, p_k, p_pl = _subset_laws(Q2_SMALL, k)
    index = {c: r for r, c in enumerate(combos)}
    counts = np.bincount([index[tuple(np.flatnonzero(row))] for row in z.astype(int)],
                         minlength=len(combos))
    p = _chisq_p(counts, p_k)
    if p < P_REJECT:
        if np.count_nonzero(counts) == 1:
            raise Mistake(f"All {N_SMALL} of your samples are the same subset: each sample needs "
                          "fresh randomness (or there is none: the top k of the logits is the "
                          "most likely subset, not a sample).")
        if _chisq_p(counts, p_pl) >= P_REJECT:
            raise Mistake("Your samples follow the Plackett-Luce law of sets, not the k-subset "
                          f"law (chi-square p {_p_text(p)} against the k-subset law): that is what "
                          "Gumbel-top-k gives, or drawing k items one after another from the "
                          "softmax of those left (chapter 15). The k-subset law weighs a set by "
                          "the product of its items' exp(logit), whatever the order: sample it "
                          "item by item with the probabilities of the dynamic program.")
        top = int(np.argmax(p_k))
        freq, se = counts[top] / N_SMALL, math.sqrt(p_k[top] * (1 - p_k[top]) / N_SMALL)
        direction = "too often" if freq > p_k[top] else "too rarely"
        raise Mistake(f"Your samples do not follow the k-subset law (chi-square "
                      f"p {_p_text(p)} over the {len(combos)} subsets of {k} of {n} items; "
                      f"the most likely subset is drawn {direction}: frequency {freq:.3f} "
                      f"against {p_k[top]:.3f}, {abs(freq - p_k[top]) / se:.0f} standard "
                      "errors apart). Going through the items with r places still to fill, "
                      "item i must be taken with its conditional probability given those r "
                      "places, a ratio of two entries of the dynamic program's table "
                      "(chapter 15).")
    n, k = len(Q2_LARGE), Q2_LARGE_K
    z = data["large"]
    _q2_structure(z, N_LARGE, n, k)
    mu = ksubset_marginals_reference(Q2_LARGE, k)
    se = np.sqrt(mu * (1 - mu) / N_LARGE)
    zscores = np.abs(z.mean(0) - mu) / se
    limit = stats.norm.isf(P_REJECT / 2 / n)  # each frequency's two-sided test at P_REJECT / n
    if zscores.max() > limit:
        i = int(np.argmax(zscores))
        raise Mistake(f"Your sampler is right on 6 items but not on {n} items (k = {k}): item "
                      f"{i} is chosen with frequency {z[:, i].mean():.3f} where its exact "
                      f"marginal is {mu[i]:.3f} ({zscores[i]:.0f} standard errors apart). Is "
                      "every probability computed in log space, and does the sampler use the "
                      "logits it is given?")


# ----------------------------------------------------------------------------------------------
# q3: the entropic relaxation of top-k
# ----------------------------------------------------------------------------------------------
_rng = np.random.default_rng(1517)
#: (scores, k, tau): fresh scores at three temperatures, a near-tie (where the successive
#: softmax exceeds 1), k = 1, scores shifted by +-300, 50 items, and a small tau.
Q3_CASES = [
    (_rng.normal(scale=1.5, size=7).round(4), 3, 0.5),
    (np.array([1.3, 1.25, -0.4, 0.6, -1.2]), 2, 0.3),
    (_rng.normal(size=4).round(4), 1, 1.0),
    (_rng.normal(scale=1.5, size=7).round(4), 3, 2.0),
    (_rng.normal(size=6).round(4) + 300.0, 2, 0.7),
    (_rng.normal(size=6).round(4) - 300.0, 4, 0.7),
    (_rng.normal(scale=2.0, size=50).round(4), 10, 0.25),
    (np.array([0.9, -0.5, 2.4, 0.1, 1.6, -1.8, 0.5]), 3, 0.02),
]
del _rng
#: An entry is right within Q3_ATOL: a bisection to 1e-8 in the threshold is far inside it,
#: and every wrong answer below is off by more than 1e-2 somewhere.
Q3_ATOL = 1e-5


def relaxed_topk_reference(scores, k: int, tau: float) -> np.ndarray:
    """sigmoid((s + b) / tau) with sum k, b by bisection (200 halvings of a bracket that holds
    b: at b = -max(s) - 40 tau every entry is below e^-40, at -min(s) + 40 tau above 1 - e^-40)."""
    s = np.asarray(scores, dtype=np.float64)
    lo, hi = -s.max() - 40 * tau, -s.min() + 40 * tau
    for _ in range(200):
        mid = (lo + hi) / 2
        if stats.logistic.cdf((s + mid) / tau).sum() > k:
            hi = mid
        else:
            lo = mid
    return stats.logistic.cdf((s + (lo + hi) / 2) / tau)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _successive_softmax(s: np.ndarray, k: int, tau: float) -> np.ndarray:
    y, a = np.zeros_like(s), np.zeros_like(s)
    for _ in range(k):
        with np.errstate(divide="ignore"):
            s = s + np.log(np.maximum(1 - a, 1e-300))
        a = _softmax(s / tau)
        y = y + a
    return y


@SET.question("q3", points=2, answers=["relaxed_topk"], title="relaxed top-k in [0, 1]",
              forbidden=LIBRARY + ("lib.grading.sets.subsets.relaxed_topk_reference",),
              forbidden_why="Write the relaxation yourself (lib.subsets holds the chapter's).")
def q3(relaxed_topk):
    import torch

    if not callable(relaxed_topk):
        raise Mistake("`relaxed_topk` should be a function of (scores, k, tau).")
    out = []
    for s, k, tau in Q3_CASES:
        y = relaxed_topk(torch.tensor(s, dtype=torch.float64), k, tau)
        out.append(as_float_array(y, f"relaxed_topk(scores of shape [{len(s)}], k={k}, "
                                     f"tau={tau})"))
    return {"values": out}


@q3.judge
def _(data):
    got = data["values"]
    for (s, k, tau), y in zip(Q3_CASES, got):
        expect_shape(y, s.shape, f"relaxed_topk(scores of shape [{len(s)}], k={k}, tau={tau})")
        expect_finite(y, "your relaxed top-k")
    want = [relaxed_topk_reference(s, k, tau) for s, k, tau in Q3_CASES]

    def close(a, b):
        return np.shape(a) == np.shape(b) and bool(np.all(np.abs(a - b) <= Q3_ATOL))

    def everywhere(fn):
        return all(close(y, fn(s, k, tau)) for (s, k, tau), y in zip(Q3_CASES, got))

    if all(close(y, w) for y, w in zip(got, want)):
        return
    if everywhere(_successive_softmax):
        raise Mistake("This is the successive softmax of Xie and Ermon: it sums to k, but at a "
                      "near-tie an entry goes above 1 (chapter 15). The entropic relaxation "
                      "asked for keeps every entry in [0, 1] by construction.")
    if everywhere(lambda s, k, tau: k * _softmax(s / tau)):
        raise Mistake("Your y is k times a softmax: it sums to k, but its entries can exceed "
                      "1, and it is not the entropic relaxation, whose entries are sigmoids of "
                      "the shifted scores.")
    if any(y.max() > 1 + 1e-9 or y.min() < -1e-9 for y in got):
        raise Mistake("Some of your entries are outside [0, 1]: a relaxed inclusion is a "
                      "number between 0 and 1 (the entropic form, a sigmoid, is inside by "
                      "construction).")
    if everywhere(lambda s, k, tau: (np.argsort(np.argsort(-s)) < k).astype(float)):
        raise Mistake("Your y is the hard top-k, whatever tau: the relaxation is smooth in the "
                      "scores, and only tends to the hard top-k as tau -> 0.")
    if everywhere(lambda s, k, tau: relaxed_topk_reference(s, k, 1.0)):
        raise Mistake("Your y does not depend on tau: divide the shifted scores by the "
                      "temperature tau inside the sigmoid.")
    if everywhere(lambda s, k, tau: relaxed_topk_reference(s, k, 1.0 / tau)):
        raise Mistake("Your y sharpens as tau grows: divide the shifted scores by tau, do not "
                      "multiply them.")
    if everywhere(lambda s, k, tau: relaxed_topk_reference(-s, k, tau)):
        raise Mistake("Your y favours the smallest scores: the largest scores must get the "
                      "largest inclusions (check the sign of the scores inside the sigmoid).")
    sums = np.array([y.sum() for y in got])
    ks = np.array([k for _, k, _ in Q3_CASES])
    off = np.abs(sums - ks)
    if off.max() > Q3_ATOL:
        i = int(np.argmax(off))
        s, k, tau = Q3_CASES[i]
        shifted = abs(s.mean()) > 100
        raise Mistake(f"Your y sums to {sums[i]:.4f}, not k = {k}, for scores of shape "
                      f"[{len(s)}]{' around ' + format(s.mean(), '.0f') if shifted else ''} at "
                      f"tau = {tau}. The threshold b must make the sum exactly k: "
                      + ("the bracket of the bisection must contain it, and with scores near "
                         "300 or -300 it is near -300 or 300 (start from the scores' range)."
                         if shifted else "find it by bisection, to well below tau * 1e-5.")
                      )
    bad = [f"[{len(s)}] with k = {k}, tau = {tau}" for (s, k, tau), y, w
           in zip(Q3_CASES, got, want) if not close(y, w)]
    raise Mistake(f"Your y sums to k but is not sigmoid((s + b) / tau) with one threshold b for "
                  f"every item: it differs for scores of shape {bad[0]}.")
