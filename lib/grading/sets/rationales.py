"""Exercises for the chapter "Case study: rationales for text classification".

q1  rationale_prf: token-level precision, recall and F1 of a selection, pooled over a padded
    batch, with the 0/0 = 0 convention (empty selection, empty truth).
q2  rationale_penalty: the sparsity and coherence penalty of Lei et al. for a padded batch,
    with optional leading sample dimensions, differentiable in z.
q3  reinforce_mask_loss: the selector's REINFORCE surrogate with a leave-one-out baseline over
    the masks of each review; its gradient is checked on fixed masks and, averaged over many
    draws, against the exact gradient by enumeration of all masks.
q4  st_mask: the mask of the straight-through Gumbel-softmax estimator (the chapter's
    ``st_gumbel_softmax``, in its Binary Concrete form) from given uniform noise: exact 0/1
    forward, the relaxed sample's gradient backward.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np

from lib.grading.core import ExerciseSet, Mistake, as_float_array, expect_finite
from lib.grading.probing import attempt, seed_all

SET = ExerciseSet("rationales", "Case study: rationales for text classification")

#: The book's own implementations: forbidden while any question here is probed, however they
#: are reached (comments, docstrings and the student's own names never matter).
BOOK_LIB = ("lib.rationales", "lib.estimators", "lib.relaxed")


def _close(a, b, rtol=1e-5, atol=1e-7) -> bool:
    return (a is not None and np.shape(a) == np.shape(b)
            and bool(np.allclose(a, b, rtol=rtol, atol=atol)))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ----------------------------------------------------------------------------------------------
# q1: precision, recall, F1
# ----------------------------------------------------------------------------------------------
def _q1_cases():
    """(name, selected, truth, mask) as boolean arrays [N, L]; padding at the end of each row."""
    lengths = np.array([7, 3, 5, 6, 2, 7])
    mask = np.arange(7)[None, :] < lengths[:, None]
    truth = np.zeros((6, 7), bool)
    selected = np.zeros((6, 7), bool)
    for row, (true_at, selected_at) in enumerate([
        ([3, 4], [3, 4, 5]), ([0], [0]), ([2], [1, 2, 3]), ([5], []), ([1], [1]), ([0, 1], [0, 6]),
    ]):
        truth[row, true_at] = True
        selected[row, selected_at] = True
    # pooled: TP 6, 10 selected, 8 true (P 0.6, R 0.75); per-review averages differ
    padded = selected.copy(), truth.copy()
    padded[0][1, 3:] = True  # selected AND true at padding, which must be ignored
    padded[1][1, 3:] = True
    padded[0][4, 2:] = True
    nothing = np.zeros_like(selected)
    return [
        ("a batch of 6 reviews", selected, truth, mask),
        ("a batch with 1s at padded positions (which must be ignored)", *padded, mask),
        ("an empty selection", nothing, truth, mask),
        ("an empty truth", selected, nothing, mask),
        ("an empty selection and an empty truth", nothing, nothing, mask),
    ]


def q1_reference(selected, truth, mask):
    s, t = selected & mask, truth & mask
    tp, n_s, n_t = (s & t).sum(), s.sum(), t.sum()
    p = tp / n_s if n_s else 0.0
    r = tp / n_t if n_t else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return np.array([p, r, f], dtype=float)


def _q1_wrong(selected, truth, mask):
    """Typical mistakes (hint -> (precision, recall, f1)) on one case."""
    out = {}
    ones = np.ones_like(mask)
    out["Padding is counted: mask the selection and the truth with `mask` before counting "
        "(a 1 at a padded position is not a token)."] = q1_reference(selected, truth, ones)
    p, r, f = q1_reference(selected, truth, mask)
    out["Precision and recall are swapped: precision is TP / (number selected), recall is TP "
        "/ (number in the truth)."] = np.array([r, p, f])
    out["F1 is the harmonic mean 2PR / (P + R), not the arithmetic mean (P + R) / 2."] = (
        np.array([p, r, (p + r) / 2]))
    per_review = np.array([q1_reference(s[None], t[None], m[None])
                           for s, t, m in zip(selected, truth, mask)])
    out["You averaged per-review scores (a macro average). Pool the counts over all reviews "
        "first (TP, selected and true tokens summed over the batch), then divide."] = (
        per_review.mean(0))
    pr = per_review[:, :2].mean(0)
    out["You averaged per-review precision and recall. Pool the counts over all reviews first "
        "(TP, selected and true tokens summed over the batch), then divide."] = np.array(
        [pr[0], pr[1], 2 * pr[0] * pr[1] / (pr.sum()) if pr.sum() else 0.0])
    return out


@SET.question("q1", points=2, answers=["rationale_prf"],
              title="rationale precision, recall and F1",
              forbidden=BOOK_LIB,
              forbidden_why="Compute precision, recall and F1 yourself (sklearn.metrics is "
                            "fine), not with the book's lib.")
def q1(rationale_prf):
    import torch

    if not callable(rationale_prf):
        raise Mistake("`rationale_prf` should be a function (selected, truth, mask).")
    results = []
    for name, selected, truth, mask in _q1_cases():
        value, error = attempt(rationale_prf, torch.tensor(selected), torch.tensor(truth),
                               torch.tensor(mask))
        if error is None:
            try:
                if isinstance(value, (tuple, list)):
                    value = [as_float_array(v, "each returned value") for v in value]
                value = as_float_array(value, f"rationale_prf on {name}").reshape(-1)
            except Mistake as exc:
                value, error = None, str(exc)
        results.append({"name": name, "selected": selected, "truth": truth, "mask": mask,
                        "value": value, "error": error or ""})
    return {"results": results}


@q1.judge
def _(data):
    for case in data["results"]:
        name = case["name"]
        if case["error"]:
            raise Mistake(f"On {name}, your function raised {case['error']}")
        value = np.asarray(case["value"], dtype=float)
        if value.shape != (3,):
            raise Mistake(f"On {name}, you returned {value.size} number(s); return the three "
                          "numbers (precision, recall, f1).")
        selected, truth, mask = (np.asarray(case[k], bool) for k in ("selected", "truth", "mask"))
        reference = q1_reference(selected, truth, mask)
        if np.any(np.isnan(value)):
            raise Mistake(f"On {name}, you returned NaN. A ratio 0/0 counts as 0 here (nothing "
                          "selected: precision 0; empty truth: recall 0; P = R = 0: F1 = 0).")
        if _close(value, reference, rtol=1e-6, atol=1e-9):
            continue
        for hint, wrong in _q1_wrong(selected, truth, mask).items():
            if _close(value, wrong, rtol=1e-6, atol=1e-9):
                raise Mistake(f"On {name}: {hint}")
        raise Mistake(f"On {name}, your (precision, recall, F1) = "
                      f"({value[0]:.4f}, {value[1]:.4f}, {value[2]:.4f}) is not right. Count "
                      "TP (selected and true), the selected and the true real tokens over the "
                      "whole batch, then P = TP / selected, R = TP / true, F1 = 2PR / (P + R).")


# ----------------------------------------------------------------------------------------------
# q2: the sparsity and coherence penalty
# ----------------------------------------------------------------------------------------------
Q2_LAMBDAS = (0.3, 1.7)


def _q2_inputs():
    rng = np.random.default_rng(12)
    lengths = np.array([6, 3, 1, 5])
    mask = np.arange(6)[None, :] < lengths[:, None]
    soft = rng.uniform(0.02, 0.98, size=(4, 6))
    hard = (rng.random((3, 4, 6)) < 0.5).astype(float)
    hard[:, :, -1] = 1.0  # 1s at padding (rows 1-3), which must be ignored
    return mask, soft, hard


def q2_reference(z, mask, lambda1, lambda2):
    valid = mask.astype(float)
    z = z * valid
    pairs = valid[..., 1:] * valid[..., :-1]
    switches = (np.abs(z[..., 1:] - z[..., :-1]) * pairs).sum(-1)
    return lambda1 * z.sum(-1) + lambda2 * switches


def q2_reference_grad(z, mask, lambda1, lambda2):
    """d/dz of the sum over the batch of the penalty (z strictly inside (0, 1), no ties)."""
    valid = mask.astype(float)
    zm = z * valid
    pairs = valid[..., 1:] * valid[..., :-1]
    sign = np.sign(zm[..., 1:] - zm[..., :-1]) * pairs
    grad = lambda1 * np.ones_like(z)
    grad[..., 1:] += lambda2 * sign
    grad[..., :-1] -= lambda2 * sign
    return grad * valid


def _q2_wrong(z, mask, l1, l2):
    valid = mask.astype(float)
    zm = z * valid
    diffs = np.abs(zm[..., 1:] - zm[..., :-1])
    n_real = valid.sum(-1)
    out = {
        "A switch between the last real token and the padding is counted: a pair (t-1, t) "
        "counts only when both tokens are real.":
            l1 * zm.sum(-1) + l2 * diffs.sum(-1),
        "Values of z at padded positions are counted: multiply z by the mask first.":
            l1 * z.sum(-1) + l2 * (np.abs(z[..., 1:] - z[..., :-1]) * valid[..., 1:]
                                   * valid[..., :-1]).sum(-1),
        "The mask is ignored: padded positions count as tokens (both in the number kept and "
        "in the switches). Use only the real tokens of each review.":
            q2_reference(z, np.ones_like(mask), l1, l2),
        "The two weights are swapped: lambda1 multiplies the number of kept tokens, lambda2 "
        "the number of switches.": q2_reference(z, mask, l2, l1),
        "You averaged over the tokens; the penalty sums over them (a longer selection costs "
        "more).": q2_reference(z, mask, l1, l2) / n_real,
        "The coherence term uses squared differences; Lei et al. use absolute values "
        "|z_t - z_(t-1)|.":
            l1 * zm.sum(-1) + l2 * ((zm[..., 1:] - zm[..., :-1]) ** 2
                                     * valid[..., 1:] * valid[..., :-1]).sum(-1),
    }
    with_boundary = q2_reference(z, mask, l1, l2) + l2 * zm[..., 0]
    last = np.take_along_axis(zm, (n_real.astype(int) - 1)[..., None] * np.ones_like(
        zm[..., :1], dtype=int), -1)[..., 0]
    out["There are boundary terms (a switch before the first or after the last token); the "
        "sum runs over pairs of neighbouring real tokens only."] = with_boundary + l2 * last
    return out


@SET.question("q2", points=2, answers=["rationale_penalty"],
              title="sparsity and coherence penalty",
              forbidden=BOOK_LIB,
              forbidden_why="Write the penalty yourself, not with the book's lib.")
def q2(rationale_penalty):
    import torch

    if not callable(rationale_penalty):
        raise Mistake("`rationale_penalty` should be a function (z, mask, lambda1, lambda2).")
    mask, soft, hard = _q2_inputs()
    out = {}
    z = torch.tensor(soft, dtype=torch.float64, requires_grad=True)
    value, error = attempt(rationale_penalty, z, torch.tensor(mask), *Q2_LAMBDAS)
    if error is not None:
        raise Mistake(f"On z of shape [4, 6], your function raised {error}")
    out["soft"] = as_float_array(value, "rationale_penalty(z [4, 6], ...)")
    grad = None
    if isinstance(value, torch.Tensor) and value.requires_grad:
        (g,) = torch.autograd.grad(value.sum(), z, allow_unused=True)
        grad = None if g is None else g.numpy()
    out["grad"] = grad
    value, error = attempt(rationale_penalty, torch.tensor(hard, dtype=torch.float32),
                           torch.tensor(mask), *Q2_LAMBDAS)
    if error is not None:
        raise Mistake(f"On z of shape [3, 4, 6] (3 masks per review, mask of shape [4, 6]), "
                      f"your function raised {error}")
    out["hard"] = as_float_array(value, "rationale_penalty(z [3, 4, 6], ...)")
    return out


@q2.judge
def _(data):
    mask, soft, hard = _q2_inputs()
    for key, z, shape in (("soft", soft, (4,)), ("hard", hard, (3, 4))):
        value = np.asarray(data[key])
        if value.shape != shape:
            raise Mistake(f"For z of shape {list(z.shape)} your penalty has shape "
                          f"{list(value.shape)}; return one value per review, shape "
                          f"{list(shape)} (sum over the token dimension only).")
        expect_finite(value, "your penalty")
        if _close(value, q2_reference(z, mask, *Q2_LAMBDAS), rtol=1e-5):
            continue
        for hint, wrong in _q2_wrong(z, mask, *Q2_LAMBDAS).items():
            if _close(value, wrong, rtol=1e-5):
                raise Mistake(hint)
        raise Mistake(f"For z of shape {list(z.shape)} your penalties are not "
                      "lambda1 * sum_t z_t + lambda2 * sum_(t>=2) |z_t - z_(t-1)| over the real "
                      "tokens of each review.")
    grad = data["grad"]
    if grad is None:
        raise Mistake("Your penalty has the right values but no gradient reaches z: the "
                      "pathwise estimators backpropagate through it. Use torch operations only "
                      "(no .item(), .numpy() or Python floats).")
    if not _close(np.asarray(grad), q2_reference_grad(soft, mask, *Q2_LAMBDAS), rtol=1e-5):
        raise Mistake("Your penalty has the right values but the wrong gradient with respect "
                      "to z. Is a part of it computed from a detached copy of z?")


# ----------------------------------------------------------------------------------------------
# q3: REINFORCE with a leave-one-out baseline for the mask
# ----------------------------------------------------------------------------------------------
Q3_LOGITS = np.array([[0.4, -0.8, 1.2, 0.0], [-0.3, 0.9, 0.5, 0.0]])
Q3_MASK = np.array([[True, True, True, True], [True, True, True, False]])
Q3_WEIGHTS = np.array([[1.0, -2.0, 0.5, 1.5], [0.8, 0.3, -1.2, 0.0]])
Q3_S, Q3_DRAWS = 2, 4000


def q3_cost(z):
    """A non-linear cost of masks [..., 2, 4] (0/1): what the classifier and penalties give."""
    lin = (z * Q3_WEIGHTS).sum(-1)
    return np.sin(2.0 * lin) + 0.5 * z.sum(-1)


def q3_reference(logits, samples, costs, mask):
    """(1/(S B)) sum_{s,b} (c - b_loo) (z - sigmoid(logits)) on real tokens."""
    s = samples.shape[0]
    baseline = (costs.sum(0, keepdims=True) - costs) / (s - 1)
    score = (samples - _sigmoid(logits)) * mask
    return ((costs - baseline)[..., None] * score).sum(0) / (s * logits.shape[0])


@cache
def q3_exact_gradient():
    """The exact gradient of mean_b E[cost_b] w.r.t. the logits, by enumerating every mask."""
    grad = np.zeros_like(Q3_LOGITS)
    for b in range(Q3_LOGITS.shape[0]):
        n = int(Q3_MASK[b].sum())
        p = _sigmoid(Q3_LOGITS[b, :n])
        for bits in itertools.product([0.0, 1.0], repeat=n):
            z = np.zeros((2, 4))
            z[b, :n] = bits
            prob = float(np.prod(np.where(np.array(bits) > 0, p, 1 - p)))
            cost = float(q3_cost(z)[b])
            grad[b, :n] += prob * cost * (np.array(bits) - p)
    return grad / Q3_LOGITS.shape[0]


def _q3_draw(rng, s, copies=1):
    """s masks per review for ``copies`` copies of the 2-review batch: [s, 2 * copies, 4]."""
    probs = np.tile(_sigmoid(Q3_LOGITS), (copies, 1))
    u = rng.random((s, *probs.shape))
    return ((u < probs) & np.tile(Q3_MASK, (copies, 1))).astype(float)


def _q3_call(fn, samples, costs, connected=False, copies=1):
    """The student's gradient w.r.t. the logits (and w.r.t. the costs' source if connected)."""
    import torch

    logits = torch.tensor(np.tile(Q3_LOGITS, (copies, 1)), dtype=torch.float64,
                          requires_grad=True)
    source = torch.ones((), dtype=torch.float64, requires_grad=True)
    c = torch.tensor(costs, dtype=torch.float64)
    if connected:  # value unchanged, but connected to a parameter, as a classifier's cost is
        c = c * source
    mask = torch.tensor(np.tile(Q3_MASK, (copies, 1)))
    loss = fn(logits, torch.tensor(samples, dtype=torch.float64), c, mask)
    if not isinstance(loss, torch.Tensor):
        raise Mistake(f"reinforce_mask_loss returned a {type(loss).__name__}; return a scalar "
                      "torch tensor.")
    if loss.numel() != 1:
        raise Mistake(f"reinforce_mask_loss returned shape {tuple(loss.shape)}; return a "
                      "scalar (the mean over masks and reviews).")
    if not loss.requires_grad:
        return None, None
    inputs = [logits, source] if connected else [logits]
    grads = torch.autograd.grad(loss.reshape(()), inputs, allow_unused=True)
    grads = [None if g is None else g.detach().numpy() for g in grads]
    return grads[0], (grads[1] if connected else None)


@SET.question("q3", points=3, answers=["reinforce_mask_loss"],
              title="REINFORCE with a leave-one-out baseline for the mask",
              forbidden=BOOK_LIB,
              forbidden_why="Write the surrogate and the baseline yourself, not with the "
                            "book's lib.")
def q3(reinforce_mask_loss):
    if not callable(reinforce_mask_loss):
        raise Mistake("`reinforce_mask_loss` should be a function (logits, samples, costs, "
                      "mask).")
    rng = np.random.default_rng(33)
    fixed = _q3_draw(rng, 5)
    fixed_costs = q3_cost(fixed) + rng.normal(0.0, 0.1, size=(5, 2))
    seed_all(0)
    grad, source_grad = _q3_call(reinforce_mask_loss, fixed, fixed_costs, connected=True)
    draws = None
    if grad is not None:
        # Q3_DRAWS independent copies of the 2-review batch in one call: the gradient of copy k
        # times Q3_DRAWS is an independent estimate for the 2-review batch (the loss averages
        # over all 2 * Q3_DRAWS reviews)
        z = _q3_draw(rng, Q3_S, Q3_DRAWS)
        costs = q3_cost(z.reshape(Q3_S, Q3_DRAWS, 2, 4)).reshape(Q3_S, 2 * Q3_DRAWS)
        g, _ = _q3_call(reinforce_mask_loss, z, costs, copies=Q3_DRAWS)
        if g is not None:
            draws = (g * Q3_DRAWS).reshape(Q3_DRAWS, 2, 4)
    return {"samples": fixed, "costs": fixed_costs, "grad": grad, "source_grad": source_grad,
            "draws": draws}


def _q3_wrong(samples, costs):
    s, b = samples.shape[0], Q3_LOGITS.shape[0]
    p = _sigmoid(Q3_LOGITS)
    score = (samples - p) * Q3_MASK
    loo = (costs.sum(0, keepdims=True) - costs) / (s - 1)
    ref = q3_reference(Q3_LOGITS, samples, costs, Q3_MASK)

    def grad_with(baseline, sc=score, scale=1.0):
        return scale * ((costs - baseline)[..., None] * sc).sum(0) / (s * b)

    return {
        "The gradient has the wrong sign: minimise mean((cost - baseline) * log p(z)), with "
        "the costs as constants.": -ref,
        "Your gradient is REINFORCE without a baseline: subtract the leave-one-out baseline "
        "(the mean cost of the OTHER masks of the same review) from each cost.":
            grad_with(0.0),
        "Your baseline is the mean over all S masks of the review, which includes the mask's "
        f"own cost: that biases the gradient by a factor (1 - 1/S), here {1 - 1 / s:g} "
        f"(S = {s}). Average the OTHER masks only.": grad_with(costs.mean(0, keepdims=True)),
        "The baseline is taken over the reviews of the batch (dim 1) instead of over the S "
        "masks of the same review (dim 0).":
            grad_with((costs.sum(1, keepdims=True) - costs) / (b - 1)),
        "log p(z) includes the padded positions: sum the per-token log-probabilities over the "
        "real tokens only (multiply by the mask).":
            grad_with(loo, sc=samples - p),
        "log p(z) averages the per-token log-probabilities; it is their SUM over the real "
        "tokens (the mask's probability is the product of the tokens').":
            ((costs - loo)[..., None] * score / Q3_MASK.sum(-1)[:, None]).sum(0) / (s * b),
        "Your loss sums over the masks and reviews; average it (divide by S * B).":
            ref * s * b,
    }


@q3.judge
def _(data):
    grad = data["grad"]
    if grad is None or not np.any(grad):
        raise Mistake("No gradient reaches the logits. The surrogate is built from log p(z), "
                      "the sum over real tokens of z log sigmoid(l) + (1 - z) log sigmoid(-l), "
                      "which depends on the logits.")
    grad = np.asarray(grad)
    expect_finite(grad, "the gradient of your loss")
    samples, costs = np.asarray(data["samples"]), np.asarray(data["costs"])
    if data["source_grad"] is not None and abs(float(data["source_grad"])) > 1e-12:
        raise Mistake("A gradient flows into the costs. They come from the classifier (connected "
                      "to its parameters) and must be constants in this surrogate: detach them "
                      "(the classifier is trained by its own loss).")
    if not _close(grad, q3_reference(Q3_LOGITS, samples, costs, Q3_MASK)):
        if np.any(grad[~Q3_MASK] != 0):
            raise Mistake("Your gradient is not zero at the padded position (review 2, token "
                          "4): log p(z) must sum over the real tokens only.")
        for hint, wrong in _q3_wrong(samples, costs).items():
            if _close(grad, wrong):
                raise Mistake(hint)
        raise Mistake("On 5 fixed masks per review, the gradient of your loss is not "
                      "mean over masks and reviews of (cost - leave-one-out baseline) * "
                      "grad log p(mask).")
    draws = data["draws"]
    if draws is None:
        raise Mistake(f"On a batch of {2 * Q3_DRAWS} reviews no gradient reached the logits.")
    draws = np.asarray(draws)
    exact = q3_exact_gradient()
    mean = draws.mean(0)
    se = draws.std(0, ddof=1) / np.sqrt(Q3_DRAWS)
    real = Q3_MASK
    z_scores = np.abs(mean - exact)[real] / np.maximum(se[real], 1e-12)
    if np.max(z_scores) > 5:
        raise Mistake(f"Averaged over {Q3_DRAWS} independent draws of {Q3_S} masks per "
                      f"review (a batch of {2 * Q3_DRAWS} copies), your gradient differs "
                      f"from the exact one (enumeration of all masks) by up to "
                      f"{np.max(z_scores):.1f} standard errors: the estimator is biased.")


# ----------------------------------------------------------------------------------------------
# q4: the straight-through Gumbel-softmax mask
# ----------------------------------------------------------------------------------------------
Q4_TAUS = (0.5, 2.0)


def _q4_inputs():
    rng = np.random.default_rng(44)
    logits = rng.normal(0.0, 1.5, size=(3, 5))
    u = rng.uniform(0.01, 0.99, size=(3, 5))
    weights = rng.normal(size=(3, 5))
    return logits, u, weights


def q4_reference(logits, u, tau, flip=False):
    """(forward value, d sum(w * z) / d logits divided by w) for noise L or -L."""
    noise = np.log(u) - np.log1p(-u)
    if flip:
        noise = -noise
    hard = (logits + noise > 0).astype(float)
    soft = _sigmoid((logits + noise) / tau)
    return hard, soft * (1 - soft) / tau, soft


@SET.question("q4", points=2, answers=["st_mask"], title="the straight-through Gumbel-softmax mask",
              forbidden=BOOK_LIB,
              forbidden_why="Write the sampler yourself, not with the book's lib.")
def q4(st_mask):
    import torch

    if not callable(st_mask):
        raise Mistake("`st_mask` should be a function (logits, u, tau).")
    logits_np, u_np, w = _q4_inputs()
    out = {}
    for tau in Q4_TAUS:
        logits = torch.tensor(logits_np, dtype=torch.float32, requires_grad=True)
        z, error = attempt(st_mask, logits, torch.tensor(u_np, dtype=torch.float32), tau)
        if error is not None:
            raise Mistake(f"st_mask(logits [3, 5], u, tau={tau}) raised {error}")
        if not isinstance(z, torch.Tensor):
            raise Mistake(f"st_mask returned a {type(z).__name__}; return a torch tensor.")
        grad = None
        if z.requires_grad:
            (g,) = torch.autograd.grad((z * torch.tensor(w, dtype=z.dtype)).sum(), logits,
                                       allow_unused=True)
            grad = None if g is None else g.double().numpy()
        out[str(tau)] = {"value": z.detach().double().numpy(), "grad": grad}
    return out


@q4.judge
def _(data):
    logits, u, w = _q4_inputs()
    for tau in Q4_TAUS:
        case = data[str(tau)]
        value, grad = np.asarray(case["value"]), case["grad"]
        if value.shape != logits.shape:
            raise Mistake(f"st_mask returned shape {value.shape}; return one value per logit, "
                          f"shape {logits.shape}.")
        expect_finite(value, "your mask")
        if np.max(np.abs(value - np.round(value))) > 1e-6 or not np.all(
                np.isin(np.round(value), (0.0, 1.0))):
            soft = [q4_reference(logits, u, tau, flip)[2] for flip in (False, True)]
            if any(_close(value, s, rtol=1e-4, atol=1e-6) for s in soft):
                raise Mistake("Your mask is the relaxed (soft) sample. The forward value must "
                              "be exactly 0 or 1: the hard sample, with the soft one's "
                              "gradient (straight-through Gumbel-softmax).")
            raise Mistake(f"At tau={tau} your mask has values other than 0 and 1 (for example "
                          f"{value.flat[np.argmax(np.abs(value - np.round(value)))]:.4f}).")
        matches = [flip for flip in (False, True)
                   if np.array_equal(np.round(value), q4_reference(logits, u, tau, flip)[0])]
        if not matches:
            if np.array_equal(np.round(value), (logits > 0).astype(float)):
                raise Mistake("Your mask ignores the noise: it is 1 where the logit is positive. "
                              "Add the logistic noise L = log u - log(1 - u) to the logits "
                              "before thresholding.")
            raise Mistake(f"At tau={tau}, your 0/1 values are not 1[logits + L > 0] with "
                          "L = log u - log(1 - u) for the given u.")
        if grad is None or not np.any(grad):
            raise Mistake("No gradient reaches the logits: the forward value is the hard "
                          "sample, but the backward pass must use the soft sample's gradient "
                          "(add a term whose value is 0 but whose gradient is the soft "
                          "sample's).")
        grad = np.asarray(grad)
        expect_finite(grad, "your gradient")
        ok = False
        for flip in matches:
            _, dsoft, _ = q4_reference(logits, u, tau, flip)
            no_tau = q4_reference(logits, u, 1.0, flip)[1]
            no_noise = _sigmoid(logits / tau) * (1 - _sigmoid(logits / tau)) / tau
            if _close(grad, w * dsoft, rtol=1e-3, atol=1e-6):
                ok = True
            elif _close(grad, w * no_tau, rtol=1e-3, atol=1e-6):
                raise Mistake("The gradient is that of sigmoid(logits + L): the soft sample is "
                              "sigmoid((logits + L) / tau), divided by the temperature.")
            elif _close(grad, w * no_noise, rtol=1e-3, atol=1e-6) or _close(
                    grad, w * _sigmoid(logits) * (1 - _sigmoid(logits)), rtol=1e-3, atol=1e-6):
                raise Mistake("The gradient is that of a soft value without the noise. The "
                              "soft sample is sigmoid((logits + L) / tau), with the same noise "
                              "L as the hard one.")
        if not ok:
            other = [q4_reference(logits, u, tau, not f)[1] for f in matches]
            if any(_close(grad, w * d, rtol=1e-3, atol=1e-6) for d in other):
                raise Mistake("The hard and the soft samples use different noise (L in one, -L "
                              "in the other). Use the same perturbed logits for both.")
            raise Mistake(f"At tau={tau}, the gradient is not that of the soft sample "
                          "sigmoid((logits + L) / tau) with the same noise as the hard one.")
