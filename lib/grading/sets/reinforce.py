"""Exercises for the chapter "REINFORCE: the score-function estimator".

q1  surrogate_loss: its gradient is the REINFORCE estimate; unbiased over many seeds.
q2  loo_baseline: the leave-one-out baseline (the batch mean that includes the sample's own
    reward must fail, with the (1 - 1/N) bias in the hint).
q3  a variance-reduction factor, measured (no baseline versus leave-one-out), against the exact
    value computed by enumeration.
q4  critic_loss: a regression loss that trains a learned baseline.
"""

from __future__ import annotations

import itertools
import math
from functools import cache

import numpy as np

from lib.grading.core import ExerciseSet, Mistake, as_float_array, expect_finite
from lib.grading.probing import seed_all

SET = ExerciseSet("reinforce", "REINFORCE: the score-function estimator")


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _close(a, b, rtol=1e-4, atol=1e-6) -> bool:
    return a is not None and np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------------------------
# q1: the surrogate loss
# ----------------------------------------------------------------------------------------------
Q1_LOGITS = np.array([0.5, -1.0, 0.0, 1.5, -0.5])
Q1_SAMPLES = np.array([0, 3, 3, 1, 4, 2])
Q1_REWARDS = np.array([1.0, 0.0, 2.5, -1.0, 0.5, 3.0])
_rng = np.random.default_rng(2024)
Q1_BATCHES = [(np.array([2]), np.array([-3.0]))] + [
    (z, r) for z, r in ((_rng.choice(5, size=n), _rng.normal(scale=4.0, size=n).round(3))
                        for n in (3, 20, 50))]
Q1_BATCHES.append((Q1_BATCHES[2][0], ((Q1_BATCHES[2][0] == 1) | (Q1_BATCHES[2][0] == 3))
                   .astype(float)))
del _rng



def _surrogate_gradient(surrogate_loss, logits_np, samples_np, rewards_fn):
    import torch

    logits = torch.tensor(logits_np, dtype=torch.float32, requires_grad=True)
    samples = torch.tensor(samples_np, dtype=torch.long)
    rewards = rewards_fn(logits)
    loss = surrogate_loss(logits, samples, rewards)
    if not isinstance(loss, torch.Tensor):
        raise Mistake(f"surrogate_loss returned a {type(loss).__name__}; return a scalar torch "
                      "tensor whose gradient autograd can take.")
    if loss.numel() != 1:
        raise Mistake(f"surrogate_loss returned shape {tuple(loss.shape)}; return a scalar (the "
                      "mean over the samples).")
    if not loss.requires_grad:
        return None
    (grad,) = torch.autograd.grad(loss.reshape(()), logits, allow_unused=True)
    return None if grad is None else grad.double().numpy()


@SET.question("q1", points=3, answers=["surrogate_loss"], title="REINFORCE surrogate loss",
              forbidden=("lib.estimators.reinforce_surrogate",),
              forbidden_why="Write the surrogate yourself (one line once you have the "
                            "log-probabilities).")
def q1(surrogate_loss):
    import torch

    if not callable(surrogate_loss):
        raise Mistake("`surrogate_loss` should be a function (logits, samples, rewards).")
    r0 = torch.tensor(Q1_REWARDS, dtype=torch.float32)

    def connected_rewards(logits):
        # value r0, but connected to the graph (as a reward computed by a network would be)
        total = logits.sum()
        return r0 * (1 + total - total.detach())

    grad = _surrogate_gradient(surrogate_loss, Q1_LOGITS, Q1_SAMPLES, connected_rewards)
    # Other batches: other sizes (1 to 50) and rewards (an indicator, negative, large). The
    # surrogate is deterministic, so each batch's gradient is checked exactly (issue 14: a
    # statistical unbiasedness check could not fail once the first batch was right).
    others = []
    for z, r in Q1_BATCHES:
        seed_all(len(z))
        g = _surrogate_gradient(surrogate_loss, Q1_LOGITS, z,
                                lambda _, r=r: torch.tensor(r, dtype=torch.float32))
        others.append(g)
    return {"grad": grad, "others": others}


@q1.judge
def _(data):
    grad = data["grad"]
    p = _softmax(Q1_LOGITS)
    onehot = np.eye(len(p))[Q1_SAMPLES]
    r = Q1_REWARDS
    target = (r[:, None] * (onehot - p)).mean(0)
    if grad is None or np.all(grad == 0):
        raise Mistake("No gradient reaches the logits. The surrogate must be built from the "
                      "log-probabilities of the samples, log_softmax(logits)[samples], which "
                      "depend on the logits.")
    expect_finite(grad, "the gradient of your surrogate")
    if _close(grad, target):
        pass
    elif _close(grad, -target):
        raise Mistake("The gradient has the wrong sign: the surrogate's gradient must be "
                      "+mean(reward * grad log p(sample)) (minimise the surrogate of a cost).")
    elif _close(grad, len(r) * target):
        raise Mistake(f"The gradient is {len(r)} (the number of samples) times too large: "
                      "average over the samples instead of summing.")
    elif _close(grad, (r[:, None] * onehot).mean(0)):
        raise Mistake("The gradient is mean(reward * e_z): you differentiated the raw logit "
                      "of the sample. The log-probability is log_softmax(logits)[z]; its "
                      "gradient e_z - p includes the normaliser.")
    elif _close(grad, (r[:, None] * p[Q1_SAMPLES, None] * (onehot - p)).mean(0)):
        raise Mistake("The gradient is that of reward * p(z), the probability itself. "
                      "REINFORCE weights the gradient of log p(z) (the log-derivative trick).")
    elif _close(grad - target, np.full_like(target, (grad - target)[0])):
        raise Mistake("The gradient contains an extra term from the rewards: they are "
                      "connected to the graph here (as rewards computed by a network are) and "
                      "must be treated as constants. Detach them.")
    else:
        raise Mistake("The gradient of your surrogate is not mean(reward * grad log p(sample)) "
                      "for a fixed batch of samples and rewards.")
    for (z, r), g in zip(Q1_BATCHES, data["others"]):
        want = (r[:, None] * (np.eye(len(p))[z] - p)).mean(0)
        if g is None or not _close(g, want):
            raise Mistake(f"Your surrogate is right on the first batch but not on a batch of "
                          f"{len(z)} sample(s) with other rewards: its gradient must be "
                          "mean(reward * grad log p(sample)) for any batch size and any "
                          "rewards (no constants fitted to one batch).")


# ----------------------------------------------------------------------------------------------
# q2: the leave-one-out baseline
# ----------------------------------------------------------------------------------------------
Q2_R1 = np.array([1.0, 0.0, 3.0, 2.0, -1.0])
Q2_R2 = np.random.default_rng(3).normal(size=(6, 3)).round(3)


def loo_reference(r: np.ndarray) -> np.ndarray:
    return (r.sum(0, keepdims=True) - r) / (r.shape[0] - 1)


@SET.question("q2", points=3, answers=["loo_baseline"], title="leave-one-out baseline",
              forbidden=("lib.estimators.leave_one_out_baseline",),
              forbidden_why="Write the baseline yourself.")
def q2(loo_baseline):
    import torch

    if not callable(loo_baseline):
        raise Mistake("`loo_baseline` should be a function of a tensor of rewards.")
    bumped = Q2_R1.copy()
    bumped[0] += 1.0
    out = {}
    for name, r in [("r1", Q2_R1), ("bumped", bumped), ("r2", Q2_R2)]:
        value = loo_baseline(torch.tensor(r, dtype=torch.float64))
        out[name] = as_float_array(value, f"loo_baseline(rewards of shape {r.shape})")
    return out


@q2.judge
def _(data):
    for name, r in [("r1", Q2_R1), ("r2", Q2_R2)]:
        b = data[name]
        expect_finite(b, "your baseline")
        if b.shape != r.shape:
            raise Mistake(f"For rewards of shape {r.shape} your baseline has shape {b.shape}; "
                          "return one baseline per sample (the shape of the rewards).")
    b1, b2, bumped = data["r1"], data["r2"], data["bumped"]
    own = "It includes the sample's own reward"
    bias = ("so it depends on the sample and REINFORCE becomes biased: the expected gradient "
            "shrinks by a factor (1 - 1/N) for N samples. Average the OTHER samples only.")
    if _close(b1, bumped) and _close(b1, np.full_like(b1, b1.reshape(-1)[0])):
        raise Mistake("Your baseline is the same number for every sample and does not change "
                      "when a reward changes: a constant. The leave-one-out baseline of each "
                      "sample is computed from the rewards of the OTHER samples.")
    if _close(b1, np.full_like(Q2_R1, Q2_R1.mean())) or _close(b2, np.broadcast_to(
            Q2_R2.mean(0), Q2_R2.shape)):
        raise Mistake(f"Your baseline is the batch mean. {own}, {bias}")
    if _close(b1, Q2_R1 - loo_reference(Q2_R1)):
        raise Mistake("You returned the advantage reward - baseline; return the baseline itself.")
    if not math.isclose(bumped[0], b1[0], abs_tol=1e-9):
        raise Mistake(f"Changing the first reward changed the first sample's baseline. {own}, "
                      f"{bias}")
    if _close(b1, loo_reference(Q2_R1) * (len(Q2_R1) - 1) / len(Q2_R1)):
        raise Mistake("Your baseline sums the other S - 1 rewards but divides by S: divide by "
                      "S - 1 to get their mean.")
    if not _close(b1, loo_reference(Q2_R1)):
        raise Mistake("For rewards of shape [5], each sample's baseline should be the mean of "
                      "the other four rewards; yours differs.")
    if not _close(b2, loo_reference(Q2_R2)):
        if _close(b2, loo_reference(Q2_R2.T).T):
            raise Mistake("For rewards of shape [S, B] the samples are along dim 0; you "
                          "averaged along the last dimension.")
        raise Mistake("For rewards of shape [6, 3] (samples along dim 0, three independent "
                      "groups) your baseline is wrong; it should be the mean of the other "
                      "samples of the same column.")


# ----------------------------------------------------------------------------------------------
# q3: measure a variance-reduction factor
# ----------------------------------------------------------------------------------------------
Q3_LOGITS = np.array([0.0, 1.0, -1.0, 0.5])
Q3_COSTS = np.array([5.0, 6.0, 4.0, 5.5])
Q3_S = 4
Q3_RTOL = 0.10  # a measurement from >= 20,000 estimates is within ~3% of the exact value


@cache
def q3_exact() -> dict:
    """Exact total variances by enumerating all K**S sample tuples (4**4 = 256)."""
    p = _softmax(Q3_LOGITS)
    k = len(p)
    eye = np.eye(k)
    out = {}
    for name in ("plain", "loo", "batch_mean"):
        first, second = np.zeros(k), 0.0
        for tup in itertools.product(range(k), repeat=Q3_S):
            idx = list(tup)
            weight = float(np.prod(p[idx]))
            r = Q3_COSTS[idx]
            if name == "plain":
                b = np.zeros_like(r)
            elif name == "loo":
                b = (r.sum() - r) / (Q3_S - 1)
            else:
                b = np.full_like(r, r.mean())
            g = ((r - b)[:, None] * (eye[idx] - p)).mean(0)
            first += weight * g
            second += weight * float(g @ g)
        out[name] = second - float(first @ first)
    return out


@SET.question("q3", points=2, answers=["var_plain", "var_loo", "vr_factor"],
              title="a variance-reduction factor")
def q3(var_plain, var_loo, vr_factor):
    out = {}
    for name, value in [("var_plain", var_plain), ("var_loo", var_loo), ("vr_factor", vr_factor)]:
        arr = as_float_array(value, f"`{name}`")
        if arr.size != 1:
            raise Mistake(f"`{name}` should be a single number (the total variance is summed "
                          f"over the K coordinates), got shape {arr.shape}.")
        out[name] = float(arr.reshape(-1)[0])
    return out


@q3.judge
def _(data):
    exact = q3_exact()
    plain, loo, factor = data["var_plain"], data["var_loo"], data["vr_factor"]
    for name in data:
        if not (math.isfinite(data[name]) and data[name] > 0):
            raise Mistake(f"`{name}` must be a positive number, got {data[name]}.")

    def near(x, y):
        return abs(x / y - 1) <= Q3_RTOL

    if not math.isclose(factor, plain / loo, rel_tol=1e-3):
        raise Mistake("`vr_factor` should be var_plain / var_loo (the variance without a "
                      "baseline divided by the variance with leave-one-out).")
    if not near(plain, exact["plain"]):
        if near(plain, exact["plain"] * Q3_S):
            raise Mistake("`var_plain` is about S = 4 times too large: each estimate should "
                          "average 4 samples (you measured single-sample estimates).")
        if near(plain, exact["plain"] / Q3_S):
            raise Mistake("`var_plain` is about 4 times too small: did you divide by the "
                          "number of samples twice?")
        if near(plain, math.sqrt(exact["plain"])):
            raise Mistake("`var_plain` looks like a standard deviation; report variances.")
        raise Mistake(f"`var_plain` = {plain:.4g} is not the total variance of REINFORCE "
                      "estimates (4 samples each, no baseline) for this problem, summed over "
                      "the 4 logits. Use at least 20,000 estimates.")
    if not near(loo, exact["loo"]):
        if near(loo, exact["batch_mean"]):
            raise Mistake("`var_loo` matches a baseline that includes the sample's own reward "
                          "(the batch mean), which is biased by (1 - 1/N) and looks smaller. "
                          "Use the mean of the OTHER samples.")
        raise Mistake(f"`var_loo` = {loo:.4g} is not the total variance of REINFORCE with the "
                      "leave-one-out baseline (4 samples per estimate). Use at least 20,000 "
                      "estimates.")
    if factor < 1:
        raise Mistake("The factor is below 1: it is inverted.")


# ----------------------------------------------------------------------------------------------
# q4: a critic loss that learns
# ----------------------------------------------------------------------------------------------
Q4_VALUES = np.array([0.5, -1.0, 2.0, 0.0, 1.5, -0.5, 3.0, 1.0])
Q4_REWARDS = np.array([1.0, 0.0, 1.0, 1.0, 0.0, -1.0, 2.0, 1.0])


@SET.question("q4", points=2, answers=["critic_loss"], title="a critic loss that learns")
def q4(critic_loss):
    import torch

    if not callable(critic_loss):
        raise Mistake("`critic_loss` should be a function (values, rewards).")
    values = torch.tensor(Q4_VALUES, dtype=torch.float32, requires_grad=True)
    rewards = torch.tensor(Q4_REWARDS, dtype=torch.float32, requires_grad=True)
    loss = critic_loss(values, rewards)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise Mistake("critic_loss should return a scalar torch tensor.")
    if not loss.requires_grad:
        return {"grad_values": None, "grad_rewards": None}
    g_values, g_rewards = torch.autograd.grad(loss.reshape(()), [values, rewards],
                                              allow_unused=True)
    return {"grad_values": None if g_values is None else g_values.double().numpy(),
            "grad_rewards": None if g_rewards is None else g_rewards.double().numpy()}


@q4.judge
def _(data):
    gv, gr = data["grad_values"], data["grad_rewards"]
    if gv is None or np.all(gv == 0):
        raise Mistake("No gradient reaches the critic's predictions: a critic trained with "
                      "this loss never learns (a detach on the prediction is the usual "
                      "cause). Only the target should be detached.")
    expect_finite(gv, "the gradient of your critic loss")
    if gr is not None and np.any(gr != 0):
        raise Mistake("Your loss also sends a gradient into the rewards: the regression target "
                      "must be a constant (detach it), or the critic loss will push on whatever "
                      "computed the rewards.")
    residual = Q4_VALUES - Q4_REWARDS
    scale = float(gv @ residual / (residual @ residual))
    if not np.allclose(gv, scale * residual, rtol=1e-4, atol=1e-6):
        raise Mistake("The gradient with respect to the predictions is not proportional to "
                      "prediction - reward: use a squared-error regression loss.")
    if scale <= 0:
        raise Mistake("Minimising your loss would move the predictions AWAY from the rewards: "
                      "check the sign.")
