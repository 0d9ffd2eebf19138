"""Exercises for the chapter "REINFORCE for sequences: RLOO and GRPO".

q1  loo_advantage: RLOO's leave-one-out advantage of a group of rewards ([G] or [G, B]), detached;
    the group mean (the (1 - 1/G) shrinkage), the std normalisation, a division by G and the
    baseline itself must fail with their hints.
q2  loo_std_factor(p, G): the exact expected update factor of a GRPO-style advantage that keeps
    RLOO's baseline but divides by the group's std, for a 0/1 reward of success rate p: checked
    against the closed form at (p, G) pairs the notebook does not show.
q3  length_weights(tokens, eos, method): the weight of each token in the loss, GRPO's 1/|o_i|
    per response against Dr. GRPO's constant 1/T, on sequences with an end token and padding.

Every input is fixed here (seeded), so a notebook and the batch grader see the same checks; the
judge computes what is right from its own copy of the inputs, never from what the probe returns.
"""

from __future__ import annotations

import math

import numpy as np

from lib.grading.core import ExerciseSet, Mistake, as_float_array, expect_finite, expect_shape

SET = ExerciseSet("rloo_and_grpo", "REINFORCE for sequences: RLOO and GRPO")


def _close(a, b, rtol=1e-6, atol=1e-9) -> bool:
    return a is not None and np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------------------------
# q1: the leave-one-out advantage
# ----------------------------------------------------------------------------------------------
_rng = np.random.default_rng(1313)
#: Fresh groups: real rewards [7], binary rewards [6, 4] (one column all equal, one all but one),
#: the smallest group [2], and a large one [16, 3].
Q1_GROUPS = [
    _rng.normal(scale=2.0, size=7).round(3),
    np.array([[1, 0, 1, 1], [0, 0, 1, 0], [1, 0, 1, 0], [0, 0, 1, 1], [1, 0, 1, 0],
              [0, 0, 1, 0]], dtype=float),
    np.array([0.25, -1.5]),
    _rng.uniform(-3.0, 3.0, size=(16, 3)).round(3),
]
Q1_DELTA = 0.75  # the perturbation of one reward at a time (first group)
del _rng


def loo_advantage_reference(r: np.ndarray) -> np.ndarray:
    """The leave-one-out advantage, an independent formula: r_i - mean of the others."""
    g = r.shape[0]
    others = np.stack([np.delete(r, i, axis=0).mean(0) for i in range(g)])
    return r - others


def _std(r: np.ndarray, correction: int) -> np.ndarray:
    return r.std(0, ddof=correction, keepdims=True)


@SET.question("q1", points=3, answers=["loo_advantage"], title="the leave-one-out advantage",
              forbidden=("lib.sequences.group_advantages",
                         "lib.estimators.leave_one_out_baseline",
                         "lib.grading.sets.rloo_and_grpo.loo_advantage_reference"),
              forbidden_why="Write the advantage yourself (two lines).")
def q1(loo_advantage):
    import torch

    if not callable(loo_advantage):
        raise Mistake("`loo_advantage` should be a function of a tensor of rewards.")

    def call(r, what, grad=False):
        rewards = torch.tensor(r, dtype=torch.float64, requires_grad=grad)
        out = loo_advantage(rewards)
        connected = isinstance(out, torch.Tensor) and out.requires_grad
        return as_float_array(out, f"loo_advantage({what})"), connected

    values = [call(r, f"rewards of shape {list(r.shape)}")[0] for r in Q1_GROUPS]
    first = Q1_GROUPS[0]
    bumped = []
    for i in range(first.shape[0]):  # one reward changed at a time
        r = first.copy()
        r[i] += Q1_DELTA
        bumped.append(call(r, f"rewards of shape {list(r.shape)}")[0])
    # rewards connected to the graph (computed by a network): the advantage must be a constant
    _, connected = call(first, "rewards that require grad", grad=True)
    return {"values": values, "bumped": bumped, "connected": connected}


@q1.judge
def _(data):
    values = data["values"]
    for r, a in zip(Q1_GROUPS, values):
        expect_shape(a, r.shape, f"your advantage for rewards of shape {list(r.shape)}")
        expect_finite(a, "your advantage")
    want = [loo_advantage_reference(r) for r in Q1_GROUPS]
    r, a, w = Q1_GROUPS[0], values[0], want[0]  # the 1-D group first: the formula itself
    g = r.shape[0]
    if not _close(a, w):
        if _close(a, r - w):
            raise Mistake("You returned the baseline (the mean of the other rewards); return "
                          "the advantage, the reward minus that baseline.")
        if _close(a, w * (1 - 1 / g)):
            raise Mistake("Your advantage is the reward minus the group mean, which includes the "
                          "response's own reward: that is the leave-one-out advantage times "
                          "(1 - 1/G), the shrinkage of chapter 13. Subtract the mean of the "
                          "OTHER G - 1 rewards.")
        if _close(a, r - (r.sum(0) - r) / g):
            raise Mistake("Your baseline sums the other G - 1 rewards but divides by G: divide "
                          "by G - 1 to get their mean.")
        if any(_close(a, w / _std(r, c)) or _close(a, (r - r.mean(0)) / _std(r, c))
               for c in (0, 1)):
            raise Mistake("Your advantage is divided by the group's standard deviation (as "
                          "GRPO does). That is not a constant scale: it reweights prompts by "
                          "their success rate (chapter 13). RLOO subtracts the baseline and "
                          "stops there.")
        raise Mistake(f"For rewards of shape [{g}] your advantage differs from each reward "
                      "minus the mean of the other rewards of the group.")
    for r, a, w in zip(Q1_GROUPS[1:], values[1:], want[1:]):
        if _close(a, w):
            continue
        shape = list(r.shape)
        if r.ndim == 2 and _close(a, loo_advantage_reference(r.T).T):
            raise Mistake("For rewards of shape [G, B] the group is along dim 0 (B independent "
                          "groups, one per column); you took the mean along the last dim.")
        if r.ndim == 2:
            raise Mistake(f"Your advantage is right for rewards of shape [{g}] but not for shape "
                          f"{shape}: there each column is one group, and each entry's baseline "
                          "is the mean of the other entries of its column.")
        raise Mistake(f"Your advantage is right for a group of {g} but not for a group of "
                      f"{shape[0]}: compute it for any group size G >= 2.")
    # the perturbation test: the baseline r_i - A_i of sample i ignores r_i
    first, a0 = Q1_GROUPS[0], values[0]
    for i, a in enumerate(data["bumped"]):
        expect_shape(a, first.shape, "your advantage")
        if np.array_equal(a, a0):
            raise Mistake("Your function returned the same advantages after one reward changed: "
                          "compute them from the rewards passed in (no cached results).")
        r = first.copy()
        r[i] += Q1_DELTA
        if not math.isclose(r[i] - a[i], first[i] - a0[i], rel_tol=1e-6, abs_tol=1e-9):
            raise Mistake(f"Changing reward {i} changed that response's own baseline (its reward "
                          "minus its advantage): the baseline must not depend on the response's "
                          "own reward, or REINFORCE is biased.")
        if not _close(a, loo_advantage_reference(r)):
            raise Mistake("Your advantage is right for the first rewards but not after one "
                          "reward changes: compute it from the rewards passed in.")
    if data["connected"]:
        raise Mistake("Your advantage is still connected to the autograd graph of the rewards "
                      "(a baseline that is not detached): with rewards computed by a network, "
                      "the loss would push gradients into them. Detach the rewards (the baseline "
                      "included) before computing the advantage.")


# ----------------------------------------------------------------------------------------------
# q2: the update factor of RLOO's baseline divided by the std
# ----------------------------------------------------------------------------------------------
#: (p, G) pairs the notebook does not show: small and large groups, rare and frequent success.
Q2_POINTS = [(0.5, 2), (0.137, 3), (0.5, 4), (0.9, 5), (0.031, 8), (0.62, 11), (0.25, 16),
             (0.07, 40)]


def _factor(p: float, g: int, baseline: str = "loo", correction: int = 1) -> float:
    """c(1) - c(0) for A_i = (r_i - b_i) / s, the sum over k successes among the others."""
    def s(m):
        return math.sqrt(m * (g - m) / g / (g - correction))

    total = 0.0
    for k in range(g):
        weight = math.comb(g - 1, k) * p**k * (1 - p) ** (g - 1 - k)
        if baseline == "loo":
            a1, a0 = 1 - k / (g - 1), -k / (g - 1)
        else:
            a1, a0 = 1 - (k + 1) / g, -k / g
        if 0 < k + 1 < g:
            total += weight * a1 / s(k + 1)
        if k > 0:
            total -= weight * a0 / s(k)
    return total


def loo_std_factor_reference(p: float, g: int) -> float:
    """The exact factor w such that E[update] = w * grad J (one prompt, 0/1 reward, rate p)."""
    return _factor(p, g)


@SET.question("q2", points=3, answers=["loo_std_factor"], title="the bias of a std-normalised "
              "RLOO advantage",
              forbidden=("lib.sequences.expected_group_gradient",
                         "lib.sequences.group_gradient_estimates",
                         "lib.grading.sets.rloo_and_grpo.loo_std_factor_reference"),
              forbidden_why="Compute the factor from its expectation over the group (a sum "
                            "over the successes of the other responses), not with lib.sequences.")
def q2(loo_std_factor):
    if not callable(loo_std_factor):
        raise Mistake("`loo_std_factor` should be a function of p and G.")
    out = []
    for p, g in Q2_POINTS:
        value = as_float_array(loo_std_factor(p, g), f"loo_std_factor({p}, {g})")
        if value.size != 1:
            raise Mistake(f"loo_std_factor({p}, {g}) should be one number, got shape "
                          f"{value.shape}.")
        out.append(float(value.reshape(-1)[0]))
    return {"values": out}


@q2.judge
def _(data):
    got = np.array(data["values"])
    if not np.all(np.isfinite(got)):
        bad = [f"(p = {p}, G = {g})" for (p, g), a in zip(Q2_POINTS, got) if not np.isfinite(a)]
        raise Mistake(f"Your factor is NaN or infinite at {bad[0]}. A group whose rewards are "
                      "all equal has std 0: its advantage is 0 by convention (chapter 13), so "
                      "its term contributes 0 instead of a division by zero.")
    want = np.array([_factor(p, g) for p, g in Q2_POINTS])
    if _close(got, want, rtol=1e-6):
        return
    ps = np.array([p for p, _ in Q2_POINTS])
    gs = np.array([g for _, g in Q2_POINTS], dtype=float)
    if _close(got, np.ones_like(got), rtol=1e-3):
        raise Mistake("Your factor is 1: the leave-one-out baseline alone is unbiased, but the "
                      "division by the group's std is not a constant scale. Take the "
                      "expectation of the std-normalised advantage over the other G - 1 rewards.")
    if _close(got, 1 / np.sqrt(ps * (1 - ps)), rtol=1e-3) or _close(
            got, gs / (gs - 1) / np.sqrt(ps * (1 - ps)), rtol=1e-3):
        raise Mistake("Your factor is a large-G limit (the std replaced by that of the reward, "
                      "sqrt(p(1 - p))). The question asks for the exact factor at a finite G, "
                      "where the group's std is random.")
    if _close(got, [_factor(p, g, correction=0) for p, g in Q2_POINTS]):
        raise Mistake("Your factor uses the std with G in the denominator. Use torch.std's "
                      "default, correction=1 (G - 1 in the denominator), as GRPO's code does.")
    if _close(got, [_factor(p, g, baseline="mean") for p, g in Q2_POINTS]):
        raise Mistake("That is the factor for GRPO's group mean divided by the std. Here the "
                      "baseline is leave-one-out: redo c(1) - c(0) with the mean of the OTHER "
                      "rewards as the baseline.")
    if _close(got, 1 - 1 / gs) or _close(got, gs / (gs - 1)):
        raise Mistake("Your factor depends on G only: it leaves out the division by the "
                      "group's standard deviation, whose effect depends on p too.")
    if np.all(np.abs(got / want - 1) < 0.05):
        raise Mistake("Your factor is within 5% of the exact value but not equal to it: an "
                      "estimate (Monte Carlo?) instead of the exact sum over the number of "
                      "successes among the other responses.")
    bad = [f"(p = {p}, G = {g})" for (p, g), a, b in zip(Q2_POINTS, got, want)
           if not math.isclose(a, b, rel_tol=1e-6)]
    raise Mistake(f"Your factor is not the exact expected update factor at {', '.join(bad[:3])}"
                  f"{' and others' if len(bad) > 3 else ''}. Check the groups whose rewards are "
                  "all equal (advantage 0) and the sum over the successes among the other "
                  "G - 1 responses.")


# ----------------------------------------------------------------------------------------------
# q3: length normalisation, GRPO against Dr. GRPO
# ----------------------------------------------------------------------------------------------
Q3_EOS = 2
#: Fresh sequences from a vocabulary of 4 (end token 2), the positions after the first end token
#: holding arbitrary tokens: [5, 6] with an end at position 0, a row without an end token and a
#: row whose padding repeats the end token; random tokens [3, 2, 4] (two leading dims); [3, 5].
Q3_TOKENS = [
    np.array([[2, 0, 2, 1, 2, 3], [1, 3, 0, 1, 3, 0], [0, 1, 2, 2, 2, 2], [3, 2, 0, 3, 1, 0],
              [1, 1, 1, 3, 3, 2]]),
    np.random.default_rng(2025).integers(0, 4, size=(3, 2, 4)),
    np.array([[0, 2, 2, 2, 2], [2, 2, 1, 1, 0], [1, 0, 3, 1, 2]]),
]
Q3_METHODS = ("grpo", "dr_grpo")


def _lengths(tokens: np.ndarray, eos: int, include_end: bool = True, first: bool = True):
    t = tokens.shape[-1]
    is_end = tokens == eos
    if first:
        idx = np.where(is_end.any(-1), is_end.argmax(-1), t)
    else:  # the last end token
        idx = np.where(is_end.any(-1), t - 1 - is_end[..., ::-1].argmax(-1), t)
    return np.minimum(idx + (1 if include_end else 0), t)


def length_weights_reference(tokens: np.ndarray, eos: int, method: str, **variant) -> np.ndarray:
    lengths = _lengths(tokens, eos, **variant)
    t = tokens.shape[-1]
    real = np.arange(t) < lengths[..., None]
    scale = 1.0 / np.maximum(lengths, 1) if method == "grpo" else np.full(lengths.shape, 1.0 / t)
    return real * scale[..., None]


@SET.question("q3", points=2, answers=["length_weights"], title="length normalisation",
              forbidden=("lib.sequences.group_surrogate",
                         "lib.grading.sets.rloo_and_grpo.length_weights_reference"),
              forbidden_why="Write the weights yourself.")
def q3(length_weights):
    import torch

    if not callable(length_weights):
        raise Mistake("`length_weights` should be a function (tokens, eos, method).")
    out = {}
    for method in Q3_METHODS:
        out[method] = [as_float_array(
            length_weights(torch.tensor(tok, dtype=torch.long), Q3_EOS, method),
            f"length_weights(tokens of shape {list(tok.shape)}, eos={Q3_EOS}, {method!r})")
            for tok in Q3_TOKENS]
    return out


@q3.judge
def _(data):
    for method in Q3_METHODS:
        for tok, w in zip(Q3_TOKENS, data[method]):
            expect_shape(w, tok.shape, f"your weights for tokens of shape {list(tok.shape)}")
            expect_finite(w, "your weights")
    for method in Q3_METHODS:
        got = data[method]
        want = [length_weights_reference(t, Q3_EOS, method) for t in Q3_TOKENS]
        if all(_close(a, b) for a, b in zip(got, want)):
            continue
        name = "GRPO" if method == "grpo" else "Dr. GRPO"
        if all(_close(a, length_weights_reference(t, Q3_EOS, other))
               for t, a in zip(Q3_TOKENS, got) for other in Q3_METHODS if other != method):
            raise Mistake(f"Your weights for method={method!r} are those of the other method: "
                          "GRPO divides each response's tokens by that response's own length; "
                          "Dr. GRPO by one constant for every response.")
        if all(_close(a, length_weights_reference(t, Q3_EOS, method, include_end=False))
               for t, a in zip(Q3_TOKENS, got)):
            raise Mistake(f"{name}: your weights leave out the end token itself. It is a token "
                          "the policy chose (stopping is a decision), so it is part of the "
                          "response and of its length.")
        if all(_close(a, length_weights_reference(t, Q3_EOS, method, first=False))
               for t, a in zip(Q3_TOKENS, got)):
            raise Mistake(f"{name}: a response ends at its FIRST end token; what follows is "
                          "padding, even when the padding repeats the end token.")
        if all(_close(a, np.broadcast_to(a.reshape(-1)[0], a.shape)) for a in got):
            raise Mistake(f"{name}: your weights are the same at every position, padding "
                          "included: the positions after a response's end token get weight 0.")
        if method == "grpo" and all(
                _close(a, (b > 0) / np.maximum((b > 0).sum(), 1))
                for a, b in zip(got, want)):
            raise Mistake("GRPO: your weights divide by the number of real tokens of the whole "
                          "batch (a token-level mean, as DAPO does), not by each response's own "
                          "length.")
        if method == "dr_grpo" and all(_close(a, (b > 0).astype(float)) for a, b in zip(got,
                                                                                      want)):
            raise Mistake("Dr. GRPO: your weights are 1 per real token; the question asks for "
                          "the constant 1/T (T the maximum length, tokens.shape[-1]).")
        shapes = [list(t.shape) for t, a, b in zip(Q3_TOKENS, got, want) if not _close(a, b)]
        raise Mistake(f"{name}: your weights are wrong for tokens of shape {shapes[0]}: each "
                      "real token (up to and including the first end token) of a response "
                      "gets its response's weight, every later position 0.")
