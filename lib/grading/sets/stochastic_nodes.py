"""Exercises for the chapter "Stochastic nodes in neural networks"."""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

from lib.grading.core import ExerciseSet, Mistake, as_float_array, expect_finite, expect_shape
from lib.grading.probing import attempt as _call
from lib.grading.probing import seed_all

SET = ExerciseSet("stochastic_nodes", "Stochastic nodes in neural networks")


def _close(a, b, rtol=1e-4, atol=1e-6) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


def _softmax(logits) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - x.max())
    return e / e.sum()


def _sigmoid(x) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


# ----------------------------------------------------------------------------------------------
# q1: which parameters receive a gradient?
# ----------------------------------------------------------------------------------------------
PARAMETERS = ("phi", "alpha", "theta", "psi")


def build_q1_model():
    """The network of question 1, exactly as the notebook shows it (used to derive the truth)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    phi = nn.Linear(3, 4)
    alpha = torch.tensor(2.0, requires_grad=True)
    theta = nn.Embedding(4, 1)
    psi = nn.Linear(3, 1)

    def loss_fn(x, y):
        logits = phi(x)
        z = torch.distributions.Categorical(logits=alpha * logits).sample()
        out = theta(z).squeeze(-1) + psi(x).squeeze(-1)
        return ((out - y) ** 2).mean() + 0.01 * (logits**2).mean()

    return {"phi": phi, "alpha": alpha, "theta": theta, "psi": psi}, loss_fn


@lru_cache(maxsize=1)
def true_receivers() -> dict:
    """Run the network once and read which parameters got a ``.grad`` (the ground truth)."""
    import torch

    params, loss_fn = build_q1_model()
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    loss_fn(x, torch.ones(8)).backward()
    out = {}
    for name, p in params.items():
        tensors = [p] if isinstance(p, torch.Tensor) else list(p.parameters())
        out[name] = any(t.grad is not None for t in tensors)
    return out


@SET.question("q1", points=2, answers=["receives_gradient"],
              title="which parameters receive a gradient")
def q1(receives_gradient):
    if not isinstance(receives_gradient, dict):
        raise Mistake("`receives_gradient` should be a dict mapping each parameter name "
                      f"({', '.join(PARAMETERS)}) to True or False.")
    keys = set(receives_gradient)
    if keys != set(PARAMETERS):
        missing = sorted(set(PARAMETERS) - keys)
        extra = sorted(keys - set(PARAMETERS))
        raise Mistake(f"`receives_gradient` must have exactly the keys {', '.join(PARAMETERS)}; "
                      f"missing: {missing or 'none'}, unexpected: {extra or 'none'}.")
    answer = {}
    for k in PARAMETERS:
        v = receives_gradient[k]
        if not isinstance(v, (bool, np.bool_)):
            raise Mistake(f"`receives_gradient[{k!r}]` is {v!r}; write True or False.")
        answer[k] = bool(v)
    return {"answer": answer}


Q1_HINTS = {
    # (parameter, what the student said) -> the kind of mistake, without naming the parameter
    ("theta", False): "A parameter used only AFTER the sample was marked False. Given z, "
                      "backpropagation treats z as a constant and differentiates the rest of "
                      "the network, so such a parameter gets a gradient.",
    ("psi", False): "A parameter that does not feed the sample at all was marked False. The "
                    "sample only cuts the paths that go through it.",
    ("alpha", True): "A parameter whose ONLY way to the loss is through the sampled z was "
                     "marked True. Sampling returns an integer with no grad_fn: no gradient "
                     "passes back through it.",
    ("phi", False): "A parameter that feeds the sample was marked False, although it also "
                    "reaches the loss by another path. Look at every term of the loss.",
}


@q1.judge
def _(data):
    truth = true_receivers()
    wrong = [k for k in PARAMETERS if data["answer"][k] != truth[k]]
    if wrong:
        hints = " ".join(Q1_HINTS[(k, data["answer"][k])] for k in wrong)
        verb = "is" if len(wrong) == 1 else "are"
        raise Mistake(f"{len(wrong)} of your {len(PARAMETERS)} answers {verb} wrong. {hints}")


# ----------------------------------------------------------------------------------------------
# q2 and q3: exact expected loss and its gradient, by enumeration
# ----------------------------------------------------------------------------------------------
Q2_CASES = [
    # (logits, theta, y)
    ([0.5, -1.0, 2.0, 0.0], [1.0, -0.5, 0.3, 2.0], 0.7),
    ([3.0, 0.0, -2.0], [0.0, 1.0, 2.0], 1.5),
    ([0.2, 0.1, -0.4, 1.3, -2.2, 0.0], [-1.0, 0.5, 2.5, -0.3, 1.1, 0.0], -0.4),
    ([8.0, -6.0, 1.0, 0.5], [2.0, -2.0, 0.0, 1.0], 0.0),
]


def _losses(theta, y):
    return (np.asarray(theta, dtype=np.float64) - y) ** 2


def reference_expected_loss(logits, theta, y) -> float:
    return float(_softmax(logits) @ _losses(theta, y))


def reference_gradient(logits, theta, y) -> np.ndarray:
    p, losses = _softmax(logits), _losses(theta, y)
    return p * (losses - p @ losses)


def _inputs(case):
    import torch

    logits, theta, y = case
    return (torch.tensor(logits, dtype=torch.float32), torch.tensor(theta, dtype=torch.float32),
            float(y))


def _run_cases(fn, name, shape):
    values = []
    for case in Q2_CASES:
        seed_all(0)
        first, error = _call(fn, *_inputs(case))
        if error is not None:
            raise Mistake(f"`{name}` raised an error on logits={case[0]}: {error}")
        seed_all(1)
        second, error = _call(fn, *_inputs(case))
        if error is not None:
            raise Mistake(f"`{name}` raised an error on logits={case[0]}: {error}")
        a = as_float_array(first, f"`{name}`'s result")
        b = as_float_array(second, f"`{name}`'s result")
        if shape(case) == () and a.size == 1 and b.size == 1:  # accept a 1-element tensor
            a, b = a.reshape(()), b.reshape(())
        expect_shape(a, shape(case), f"`{name}`'s result for {len(case[0])} outcomes")
        expect_finite(a, f"`{name}`'s result")
        values.append((a, b))
    return values


@SET.question("q2", points=2, answers=["expected_loss"], title="the exact expected loss")
def q2(expected_loss):
    if not callable(expected_loss):
        raise Mistake("`expected_loss` should be a function of (logits, theta, y).")
    pairs = _run_cases(expected_loss, "expected_loss", lambda case: ())
    return {"values": [float(a) for a, _ in pairs], "repeats": [float(b) for _, b in pairs]}


@q2.judge
def _(data):
    for case, value, repeat in zip(Q2_CASES, data["values"], data["repeats"]):
        logits, theta, y = case
        ref = reference_expected_loss(*case)
        if _close(value, ref):
            continue
        if not _close(value, repeat, rtol=1e-9, atol=1e-12):
            raise Mistake("Your function returns different values on two calls with the same "
                          "inputs: it samples. The exact expectation is a sum over all outcomes, "
                          "each loss weighted by its probability; no randomness is needed.")
        p, losses = _softmax(logits), _losses(theta, y)
        logit_arr = np.asarray(logits, dtype=np.float64)
        alternatives = [
            (losses.mean(), "Your value is the plain average of the losses of the outcomes. "
                            "Weight each loss by the probability of its outcome."),
            ((p @ np.asarray(theta) - y) ** 2,
             "Your value is the loss of the AVERAGE output (theta weighted by the "
             "probabilities), not the average of the losses. Square first, then average."),
            (logit_arr @ losses, "Your value weights the losses by the logits themselves. Turn "
                                 "the logits into probabilities with a softmax first."),
            (_sigmoid(logit_arr) @ losses, "Your value weights the losses by sigmoid(logits), "
                                           "which do not sum to 1. A categorical variable needs "
                                           "a softmax over the outcomes."),
            (losses[int(np.argmax(p))], "Your value is the loss of the most likely outcome "
                                        "only. The expectation sums over every outcome."),
        ]
        for alt, hint in alternatives:
            if _close(value, alt):
                raise Mistake(hint)
        raise Mistake(f"For logits={logits}, theta={theta}, y={y} your expected loss is "
                      f"{value:.6g}, which is not sum_i softmax(logits)_i * (theta_i - y)^2. "
                      f"Check the probabilities and the per-outcome loss.")


@SET.question("q3", points=2, answers=["expected_loss_grad"],
              title="the exact gradient with respect to the logits")
def q3(expected_loss_grad):
    if not callable(expected_loss_grad):
        raise Mistake("`expected_loss_grad` should be a function of (logits, theta, y).")
    pairs = _run_cases(expected_loss_grad, "expected_loss_grad", lambda case: (len(case[0]),))
    return {"values": [a for a, _ in pairs], "repeats": [b for _, b in pairs]}


@q3.judge
def _(data):
    for case, value, repeat in zip(Q2_CASES, data["values"], data["repeats"]):
        logits, theta, y = case
        ref = reference_gradient(*case)
        value = np.asarray(value, dtype=np.float64)
        if _close(value, ref, atol=1e-5):
            continue
        if np.all(value == 0):
            raise Mistake("Your gradient is all zeros. If you differentiated the loss of a "
                          "sampled z, no gradient reaches the logits (that is this chapter's "
                          "point); differentiate the exact expectation instead.")
        if not _close(value, repeat, rtol=1e-9, atol=1e-12):
            raise Mistake("Your function returns different gradients on two calls with the same "
                          "inputs: it samples. Differentiate the exact expectation (a sum over "
                          "all outcomes).")
        p, losses = _softmax(logits), _losses(theta, y)
        alternatives = [
            (-ref, "Your gradient has the right size but the wrong sign."),
            (losses, "Your gradient is the derivative with respect to the PROBABILITIES "
                     "(the loss of each outcome). The question asks for the derivative with "
                     "respect to the logits: chain it through the softmax."),
            (p * losses, "Your gradient is p_i * L_i: the softmax Jacobian also couples the "
                         "outcomes (raising one logit lowers every other probability). A term "
                         "is missing."),
            (2 * p * (np.asarray(theta) - y), "Your gradient is the derivative with respect to "
                                               "theta, not with respect to the logits."),
        ]
        for alt, hint in alternatives:
            if _close(value, alt, atol=1e-5):
                raise Mistake(hint)
        if abs(value.sum()) > 1e-4:
            raise Mistake(f"For logits={logits} your gradient sums to {value.sum():.4g}. Adding "
                          "the same constant to every logit does not change the softmax, so the "
                          "gradient with respect to the logits must sum to 0.")
        raise Mistake(f"For logits={logits}, theta={theta}, y={y} your gradient differs from "
                      "the exact one. Check it against torch.autograd on your expected loss.")


# ----------------------------------------------------------------------------------------------
# q4: exact expectation over all 2^n masks
# ----------------------------------------------------------------------------------------------
Q4_LOGITS = [
    [0.5, -1.0, 2.0],
    [1.2, -0.3, 0.0, -2.0, 0.7],
]
Q4_WEIGHTS = [
    [1.0, -2.0, 0.5],
    [0.8, -1.5, 2.0, 0.3, -0.7],
]


def _f_numpy(mask, weights):
    """The probe's loss on masks [..., n]: a nonlinear (squared, plus interaction) function."""
    mask = np.asarray(mask, dtype=np.float64)
    s = mask @ np.asarray(weights, dtype=np.float64)
    return (s - 1.0) ** 2 + mask[..., 0] * mask[..., -1]


class CountingLoss:
    """f(mask) for masks [..., n] (tensor or array); counts how many masks it evaluates."""

    def __init__(self, weights):
        self.weights = weights
        self.masks_seen = 0

    def __call__(self, mask):
        import torch

        if isinstance(mask, torch.Tensor):
            m = mask.to(torch.float64)
            w = torch.tensor(self.weights, dtype=torch.float64)
            self.masks_seen += int(np.prod(m.shape[:-1])) if m.dim() > 1 else 1
            s = m @ w
            return (s - 1.0) ** 2 + m[..., 0] * m[..., -1]
        m = np.asarray(mask, dtype=np.float64)
        self.masks_seen += int(np.prod(m.shape[:-1])) if m.ndim > 1 else 1
        return _f_numpy(m, self.weights)


def reference_mask_expectation(logits, weights) -> float:
    p = _sigmoid(logits)
    total = 0.0
    for bits in itertools.product([0.0, 1.0], repeat=len(logits)):
        b = np.array(bits)
        total += float(np.prod(np.where(b == 1, p, 1 - p)) * _f_numpy(b, weights))
    return total


def _mask_alternative(logits, weights, probs_fn) -> float:
    p = probs_fn(np.asarray(logits, dtype=np.float64))
    total = 0.0
    for bits in itertools.product([0.0, 1.0], repeat=len(logits)):
        b = np.array(bits)
        total += float(np.prod(np.where(b == 1, p, 1 - p)) * _f_numpy(b, weights))
    return total


@SET.question("q4", points=2, answers=["exact_mask_expectation"],
              title="the exact expectation over all masks")
def q4(exact_mask_expectation):
    import torch

    if not callable(exact_mask_expectation):
        raise Mistake("`exact_mask_expectation` should be a function of (logits, f).")
    out = []
    for logits, weights in zip(Q4_LOGITS, Q4_WEIGHTS):
        runs = []
        for seed in (0, 1):
            f = CountingLoss(weights)
            seed_all(seed)
            value, error = _call(exact_mask_expectation, torch.tensor(logits), f)
            if error is not None:
                raise Mistake(f"`exact_mask_expectation` raised an error for n = {len(logits)}: "
                              f"{error}")
            v = as_float_array(value, "`exact_mask_expectation`'s result")
            expect_shape(v, (), f"`exact_mask_expectation`'s result for n = {len(logits)}")
            expect_finite(v, "`exact_mask_expectation`'s result")
            runs.append((float(v), f.masks_seen))
        out.append({"value": runs[0][0], "repeat": runs[1][0], "masks_seen": runs[0][1]})
    return {"runs": out}


@q4.judge
def _(data):
    for logits, weights, run in zip(Q4_LOGITS, Q4_WEIGHTS, data["runs"]):
        n = len(logits)
        value = run["value"]
        ref = reference_mask_expectation(logits, weights)
        if _close(value, ref):
            continue
        if not _close(value, run["repeat"], rtol=1e-9, atol=1e-12):
            raise Mistake("Your function returns different values on two calls with the same "
                          "inputs: it samples masks. Enumerate all 2^n masks instead.")
        f_at_mean = float(_f_numpy(_sigmoid(logits), weights))
        alternatives = [
            (_mask_alternative(logits, weights, lambda x: x),
             "Your value uses the logits as probabilities. The keep probabilities are "
             "sigmoid(logits)."),
            (_mask_alternative(logits, weights, lambda x: 1 - _sigmoid(x)),
             "Your value swaps P(Z_i = 1) and P(Z_i = 0): a mask entry 1 has probability "
             "sigmoid(logit_i)."),
            (float(np.mean([_f_numpy(np.array(b), weights)
                            for b in itertools.product([0.0, 1.0], repeat=n)])),
             "Your value is the plain average of f over the masks. Weight each mask by its "
             "probability, the product over i of p_i or 1 - p_i."),
            (f_at_mean, "Your value is f evaluated at the mean mask sigmoid(logits). For a "
                        "nonlinear f, E[f(Z)] is not f(E[Z])."),
        ]
        for alt, hint in alternatives:
            if _close(value, alt):
                raise Mistake(hint)
        if run["masks_seen"] != 2**n:
            raise Mistake(f"For n = {n} your function evaluated f on {run['masks_seen']} "
                          f"mask(s), but there are 2^{n} = {2**n} masks to sum over; "
                          f"itertools.product([0, 1], repeat=n) lists them all.")
        raise Mistake(f"For n = {n} your value {value:.6g} is not the exact expectation. The "
                      f"probability of a mask z is prod_i p_i^z_i (1 - p_i)^(1 - z_i) with "
                      f"p = sigmoid(logits).")

