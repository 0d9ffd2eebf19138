"""A bug museum: real bugs from public issue trackers, each a short function to fix.

Every question shows a buggy function (the notebook cites the public issue or code it comes
from) and asks for the fixed function under the same name. The checks are properties on fresh
inputs, so that any correct fix passes however it is written, and each typical wrong fix (the
original bug, and the plausible half-fixes) gets a hint that names the bug class without
printing the fix.

q1  encoder_logits: a ReLU on the encoder's logits of a categorical VAE.
q2  kl_per_example: the KL to a uniform prior with the wrong sign and without log K.
q3  policy_loss: a learned baseline that is not detached.
q4  ema_advantages: a moving-average baseline updated with the current batch before it is used.
q5  straight_through: ``hard - soft.detach() + soft`` with its terms misordered.
q6  sample_latent: probabilities passed where logits are expected.
q7  temperatures: a per-epoch temperature decay that compounds.
"""

from __future__ import annotations

import math

import numpy as np

from lib.grading.core import ExerciseSet, Mistake, as_float_array, expect_finite
from lib.grading.probing import seed_all

SET = ExerciseSet("bug_museum", "A bug museum: find and fix")


def _close(a, b, tol: float = 1e-6) -> bool:
    return (a is not None and np.shape(a) == np.shape(b)
            and bool(np.allclose(a, b, rtol=tol, atol=tol)))


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _grad_or_none(output, inputs):
    """Gradients of ``output`` (a scalar tensor) w.r.t. ``inputs``, None where none flows."""
    import torch

    if not output.requires_grad:
        return [None for _ in inputs]
    grads = torch.autograd.grad(output, inputs, allow_unused=True)
    return [None if g is None else g.detach().double().numpy() for g in grads]


def _is_zero(g) -> bool:
    return g is None or not np.any(g)


# ----------------------------------------------------------------------------------------------
# q1: a ReLU on the encoder's logits
# ----------------------------------------------------------------------------------------------
def _q1_inputs() -> dict:
    rng = np.random.default_rng(161)
    d, hidden, n, k, b = 5, 7, 3, 4, 6
    return {"x": rng.normal(size=(b, d)), "w_hidden": rng.normal(size=(d, hidden)) / 2,
            "b_hidden": rng.normal(size=hidden) / 2, "w_out": rng.normal(size=(hidden, n * k)),
            "b_out": rng.normal(size=n * k) - 0.5, "n_latents": n,
            "weights": rng.normal(size=(b, n, k))}


def _q1_reference(inputs: dict, out_relu: bool = False, hidden_relu: bool = True):
    """log_softmax of the logits and the gradients of sum(weights * log_softmax) w.r.t. the
    two weight matrices, for the encoder with or without each ReLU."""
    import torch

    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in inputs.items() if k != "n_latents"}
    w_hidden = t["w_hidden"].requires_grad_()
    w_out = t["w_out"].requires_grad_()
    pre = t["x"] @ w_hidden + t["b_hidden"]
    h = torch.relu(pre) if hidden_relu else pre
    logits = h @ w_out + t["b_out"]
    if out_relu:
        logits = torch.relu(logits)
    log_q = torch.log_softmax(logits.reshape(len(t["x"]), inputs["n_latents"], -1), -1)
    g_hidden, g_out = torch.autograd.grad((t["weights"] * log_q).sum(), [w_hidden, w_out])
    return log_q.detach().numpy(), g_hidden.numpy(), g_out.numpy()


@SET.question("q1", points=2, answers=["encoder_logits"], title="ReLU on the encoder logits")
def q1(encoder_logits):
    import torch

    if not callable(encoder_logits):
        raise Mistake("`encoder_logits` should be a function (x, w_hidden, b_hidden, w_out, "
                      "b_out, n_latents).")
    inputs = _q1_inputs()
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in inputs.items()
         if k not in ("n_latents", "weights")}
    w_hidden = t["w_hidden"].requires_grad_()
    w_out = t["w_out"].requires_grad_()
    logits = encoder_logits(t["x"], w_hidden, t["b_hidden"], w_out, t["b_out"],
                            inputs["n_latents"])
    if not isinstance(logits, torch.Tensor):
        raise Mistake(f"encoder_logits returned a {type(logits).__name__}; return a torch "
                      "tensor [B, N, K] connected to the weights (the encoder is trained "
                      "through it).")
    values = as_float_array(logits, "your logits")
    if values.shape != inputs["weights"].shape:
        return {"values": values}
    log_q = torch.log_softmax(logits.double(), -1)
    weights = torch.tensor(inputs["weights"], dtype=torch.float64)
    g_hidden, g_out = _grad_or_none((weights * log_q).sum(), [w_hidden, w_out])
    return {"values": values, "log_q": log_q.detach().numpy(), "g_hidden": g_hidden,
            "g_out": g_out}


@q1.judge
def _(data):
    inputs = _q1_inputs()
    values = data["values"]
    if values.shape != inputs["weights"].shape:
        raise Mistake(f"Your logits have shape {values.shape}; the encoder must return "
                      f"[B, N, K] = {inputs['weights'].shape} (the batch, the N latent "
                      "variables, the K categories of each).")
    expect_finite(values, "your logits")
    log_q, g_hidden, g_out = _q1_reference(inputs)
    relu_log_q, *_ = _q1_reference(inputs, out_relu=True)
    if _close(data["log_q"], relu_log_q) and not _close(relu_log_q, log_q):
        raise Mistake("The distribution your logits define is that of ReLU(logits): this is "
                      "the bug of the museum piece, a ReLU on the encoder's logits. Every "
                      "category whose logit is negative gets the same probability and no "
                      "gradient, so the encoder cannot make a category less likely than the "
                      "clipped ones.")
    if _close(data["log_q"], _q1_reference(inputs, hidden_relu=False)[0]):
        raise Mistake("You removed the hidden layer's ReLU as well. That one is a normal "
                      "nonlinearity between two linear layers; only the output, the logits, "
                      "must stay unbounded.")
    if not _close(data["log_q"], log_q):
        if values.min() >= -1.0 - 1e-9:
            raise Mistake("Your logits never go below -1: the output still passes through a "
                          "nonlinearity that bounds it from below (a ReLU relative such as "
                          "softplus, ELU or a sigmoid). Logits are unnormalised log-"
                          "probabilities and must be free to take any real value.")
        raise Mistake("The categorical distribution your logits define, softmax over the K "
                      "categories of each latent, is not the one of the encoder's last linear "
                      "layer: something still transforms its output.")
    if _is_zero(data["g_out"]) or _is_zero(data["g_hidden"]):
        raise Mistake("Your logits have the right values but no gradient reaches the encoder's "
                      "weights (a detach, or a computation outside autograd): the encoder could "
                      "not be trained.")
    if not (_close(data["g_out"], g_out) and _close(data["g_hidden"], g_hidden)):
        raise Mistake("Your logits have the right values, but the gradient that reaches the "
                      "weights differs from that of the encoder's linear output.")


# ----------------------------------------------------------------------------------------------
# q2: the KL to a uniform prior (sign, log K)
# ----------------------------------------------------------------------------------------------
def _q2_inputs() -> dict:
    rng = np.random.default_rng(162)
    return {"random": 2.0 * rng.normal(size=(5, 3, 6)),   # B = 5, N = 3 latents, K = 6
            "three": rng.normal(size=(4, 2, 3)),          # K = 3: log K must follow K
            "uniform": np.zeros((2, 4, 5)),               # q uniform: KL = 0
            "weights_random": rng.normal(size=5)}


def _q2_parts(logits: np.ndarray):
    """Sum over the latents of sum q log q, and log K (per latent)."""
    log_q = _log_softmax(logits)
    return (np.exp(log_q) * log_q).sum(-1), math.log(logits.shape[-1])


@SET.question("q2", points=2, answers=["kl_per_example"], title="the KL sign and log K",
              forbidden=("torch.distributions.kl.kl_divergence", "torch.nn.functional.kl_div",
                         "lib.vae.categorical_kl_uniform"),
              forbidden_why="Fix the sum over categories itself; a library KL is not allowed.")
def q2(kl_per_example):
    import torch

    if not callable(kl_per_example):
        raise Mistake("`kl_per_example` should be a function of logits [B, N, K].")
    out = {}
    for name, logits in _q2_inputs().items():
        if name.startswith("weights"):
            continue
        x = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
        value = kl_per_example(x)
        out[name] = as_float_array(value, f"kl_per_example on logits of shape {logits.shape}")
        if name == "random" and isinstance(value, torch.Tensor) and value.shape == (5,):
            w = torch.tensor(_q2_inputs()["weights_random"], dtype=torch.float64)
            (g,) = _grad_or_none((w * value).sum(), [x])
            out["grad"] = g
    return out


@q2.judge
def _(data):
    inputs = _q2_inputs()
    for name in ("random", "three", "uniform"):
        logits, value = inputs[name], data[name]
        if value.shape != logits.shape[:1]:
            raise Mistake(f"For logits of shape {logits.shape} your KL has shape "
                          f"{value.shape}; return one number per example, shape "
                          f"{logits.shape[:1]}: the sum of the KLs of its N latent variables.")
        expect_finite(value, "your KL")
    for name in ("random", "three", "uniform"):
        logits, value = inputs[name], data[name]
        neg_entropy, log_k = _q2_parts(logits)
        n = logits.shape[1]
        want = neg_entropy.sum(-1) + n * log_k
        if _close(value, want):
            continue
        if _close(value, -want):
            raise Mistake("Your KL has the wrong sign: it is never positive, so minimising it "
                          "pushes q away from the prior (the sign bug of the museum piece).")
        if _close(value, neg_entropy.sum(-1)):
            raise Mistake("Your values are the KL minus N log K: the constant log K of each "
                          "latent is missing (the prior's log-probability is log(1/K), not 0). "
                          "The gradient is right, but the value is negative where q is near "
                          "uniform, and a KL is never negative.")
        if _close(value, -neg_entropy.sum(-1) + n * log_k):
            raise Mistake("Your KL adds log K to the entropy: the term sum q log q has the wrong "
                          "sign. The KL to a uniform prior is log K minus the entropy, so it is "
                          "0 when q is uniform.")
        if _close(value, -neg_entropy.sum(-1)):
            raise Mistake("You return the entropy of q: both bugs of the museum piece are still "
                          "there, the sign of sum q log q and the missing log K.")
        if _close(value, neg_entropy.sum(-1) - n * log_k):
            raise Mistake("Your log K has the wrong sign: the prior's log-probability is "
                          "log(1/K) = -log K, and the KL subtracts it.")
        if _close(value, want / n) or _close(value, want / logits.shape[-1]):
            raise Mistake("Your KL is an average: sum over the categories and over the N latent "
                          "variables of each example instead.")
        reverse = (-(_log_softmax(logits)).sum(-1) / logits.shape[-1] - log_k).sum(-1)
        if _close(value, reverse):
            raise Mistake("You computed KL(prior || q), the other direction; the ELBO has "
                          "KL(q || prior), an expectation under q.")
        raise Mistake(f"On logits of shape {logits.shape} your KL differs from KL(q || "
                      "Uniform(K)) summed over the latents.")
    if _is_zero(data.get("grad")):
        raise Mistake("Your KL has the right values but no gradient reaches the logits: the "
                      "encoder would not be regularised.")
    logits = inputs["random"]
    log_q = _log_softmax(logits)
    q = np.exp(log_q)
    kl_latent = (q * log_q).sum(-1, keepdims=True)
    w = inputs["weights_random"][:, None, None]
    if not _close(data["grad"], w * q * (log_q - kl_latent)):
        raise Mistake("Your KL has the right values but not the right gradient with respect "
                      "to the logits.")


# ----------------------------------------------------------------------------------------------
# q3: a baseline that is not detached
# ----------------------------------------------------------------------------------------------
def _q3_inputs() -> dict:
    rng = np.random.default_rng(163)
    b, k = 8, 5
    return {"logits": rng.normal(size=(b, k)), "actions": rng.integers(0, k, size=b),
            "rewards": rng.normal(size=b).round(3) + 1.0, "critic": rng.normal(size=b)}


def _q3_baseline(logits, critic):
    # a critic head on the policy's own features: the baseline depends on the logits too
    return critic + 0.3 * logits.sum(-1)


@SET.question("q3", points=2, answers=["policy_loss"], title="a baseline that is not detached")
def q3(policy_loss):
    import torch

    if not callable(policy_loss):
        raise Mistake("`policy_loss` should be a function (logits, actions, rewards, baseline).")
    inputs = _q3_inputs()
    logits = torch.tensor(inputs["logits"], dtype=torch.float64, requires_grad=True)
    critic = torch.tensor(inputs["critic"], dtype=torch.float64, requires_grad=True)
    baseline = _q3_baseline(logits, critic)
    loss = policy_loss(logits, torch.tensor(inputs["actions"]),
                       torch.tensor(inputs["rewards"], dtype=torch.float64), baseline)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise Mistake("policy_loss should return a scalar torch tensor (the mean over the "
                      "batch), as the original did.")
    g_logits, g_critic = _grad_or_none(loss.reshape(()), [logits, critic])
    return {"g_logits": g_logits, "g_critic": g_critic}


@q3.judge
def _(data):
    inputs = _q3_inputs()
    logits, a, r = inputs["logits"], inputs["actions"], inputs["rewards"]
    p = np.exp(_log_softmax(logits))
    score = np.eye(logits.shape[1])[a] - p
    b = _q3_baseline(logits, inputs["critic"])
    want = -((r - b)[:, None] * score) / len(r)
    g, gc = data["g_logits"], data["g_critic"]
    if not _is_zero(gc):
        raise Mistake("A gradient flows from your policy loss into the baseline's parameters: "
                      "the baseline is not detached. The policy loss then also trains the "
                      "critic, to make the advantage as large as it can, and where the critic "
                      "shares parameters with the policy the policy's gradient is biased.")
    if _is_zero(g):
        raise Mistake("No gradient reaches the logits: the log-probabilities must stay in the "
                      "graph; only the advantage (reward minus baseline) is a constant.")
    expect_finite(g, "the gradient of your loss")
    if _close(g, want):
        return
    if _close(g, -want):
        raise Mistake("The gradient has the wrong sign: the loss must be minimised to increase "
                      "the expected reward, as the original was.")
    if _close(g, -(r[:, None] * score) / len(r)):
        raise Mistake("You dropped the baseline: the gradient is that of REINFORCE without it. "
                      "Keep the baseline (it reduces the variance), as a constant.")
    if _close(g, want * len(r)):
        raise Mistake("The gradient is batch-size times too large: average over the batch, as "
                      "the original did.")
    raise Mistake("The gradient with respect to the logits is not the REINFORCE estimate "
                  "with this baseline, mean(-(reward - baseline) * grad log p(action)).")


# ----------------------------------------------------------------------------------------------
# q4: a moving average updated with the current batch before it is used
# ----------------------------------------------------------------------------------------------
def _q4_runs() -> list:
    rng = np.random.default_rng(164)
    return [(0.9, 0.0, [rng.normal(loc=2.0, size=n).round(3) for n in (4, 6, 3, 8, 5)]),
            (0.5, 1.5, [rng.normal(loc=-1.0, size=n).round(3) for n in (7, 2, 6)])]


def _q4_reference(decay: float, start: float, batches: list, mode: str = "right"):
    baseline, advs, baselines = start, [], []
    for r in batches:
        new = decay * baseline + (1 - decay) * r.mean()
        if mode == "swapped":
            new = (1 - decay) * baseline + decay * r.mean()
        used = new if mode == "early" else baseline
        advs.append(r - used)
        baseline = new
        baselines.append(new)
    return advs, baselines


@SET.question("q4", points=2, answers=["ema_advantages"],
              title="a moving average updated before use")
def q4(ema_advantages):
    import torch

    if not callable(ema_advantages):
        raise Mistake("`ema_advantages` should be a function (rewards, baseline, decay).")
    out = []
    for decay, start, batches in _q4_runs():
        baseline = torch.tensor(start, dtype=torch.float64)
        run = {"advs": [], "baselines": []}
        for r in batches:
            result = ema_advantages(torch.tensor(r, dtype=torch.float64), baseline, decay)
            if not isinstance(result, tuple) or len(result) != 2:
                raise Mistake("ema_advantages should return a pair (advantages, new_baseline), "
                              "as the original did.")
            adv, baseline = result
            run["advs"].append(as_float_array(adv, "the advantages"))
            run["baselines"].append(float(as_float_array(baseline, "the new baseline")
                                          .reshape(-1)[0]))
            baseline = torch.as_tensor(baseline, dtype=torch.float64)
        out.append(run)
    return {"runs": out}


@q4.judge
def _(data):
    for (decay, start, batches), run in zip(_q4_runs(), data["runs"]):
        for r, adv in zip(batches, run["advs"]):
            if adv.shape != r.shape:
                raise Mistake(f"For rewards of shape {r.shape} your advantages have shape "
                              f"{adv.shape}: return one advantage per sample.")
        advs, baselines = _q4_reference(decay, start, batches)

        def same(candidate, got=run["advs"]):
            return all(_close(a, b) for a, b in zip(got, candidate))

        if same(advs) and _close(np.array(run["baselines"]), np.array(baselines)):
            continue
        early, _ = _q4_reference(decay, start, batches, "early")
        if same(early):
            raise Mistake("Your advantages subtract a moving average that has already been "
                          "updated with the current batch: the baseline then depends on the "
                          "batch's own rewards, which biases the gradient estimate (as a batch "
                          "mean that includes the sample does). Use the average of the earlier "
                          "batches, and update it only after it has been used.")
        if same(advs):
            if all(math.isclose(b, start) for b in run["baselines"]):
                raise Mistake("The advantages are right, but the baseline you return is never "
                              "updated: the next batch would use a stale average.")
            raise Mistake("The advantages are right, but the new baseline is not the moving "
                          "average decay * old + (1 - decay) * mean(current rewards) (are the "
                          "two weights swapped?).")
        swapped, _ = _q4_reference(decay, start, batches, "swapped")
        if same(swapped):
            raise Mistake("Your moving average gives the weight `decay` to the new batch and "
                          "1 - decay to the old average: the two weights are swapped.")
        if same([r - start for r in batches]):
            raise Mistake("Your baseline never moves from its starting value: the moving "
                          "average is not carried from one batch to the next.")
        raise Mistake(f"With decay {decay} your advantages are not reward minus the moving "
                      "average of the earlier batches.")


# ----------------------------------------------------------------------------------------------
# q5: straight-through with misordered terms
# ----------------------------------------------------------------------------------------------
def _q5_inputs() -> dict:
    rng = np.random.default_rng(165)
    logits = 2.0 * rng.normal(size=(7, 5))
    return {"soft": np.exp(_log_softmax(logits / 0.7)), "cotangent": rng.normal(size=(7, 5))}


@SET.question("q5", points=2, answers=["straight_through"],
              title="straight-through, terms misordered")
def q5(straight_through):
    import torch

    if not callable(straight_through):
        raise Mistake("`straight_through` should be a function of a relaxed sample [B, K].")
    inputs = _q5_inputs()
    soft = torch.tensor(inputs["soft"], dtype=torch.float64, requires_grad=True)
    out = straight_through(soft)
    if not isinstance(out, torch.Tensor):
        raise Mistake(f"straight_through returned a {type(out).__name__}; return a torch "
                      "tensor connected to `soft`.")
    values = as_float_array(out, "your output")
    if values.shape != inputs["soft"].shape:
        return {"values": values}
    v = torch.tensor(inputs["cotangent"], dtype=torch.float64)
    (grad,) = _grad_or_none((out.double() * v).sum(), [soft])
    return {"values": values, "grad": grad}


@q5.judge
def _(data):
    inputs = _q5_inputs()
    soft, v = inputs["soft"], inputs["cotangent"]
    values = data["values"]
    if values.shape != soft.shape:
        raise Mistake(f"Your output has shape {values.shape}; return the shape of the relaxed "
                      f"sample, {soft.shape}.")
    hard = np.eye(soft.shape[1])[soft.argmax(-1)]
    grad = data.get("grad")
    if not _close(values, hard):
        if _close(values, soft):
            raise Mistake("The forward value is the relaxed sample itself, not the one-hot "
                          "sample: the terms that cancel in value are the wrong ones (the hard "
                          "sample is added and subtracted, so only the soft one is left). "
                          "Straight-through must output the hard one-hot sample.")
        raise Mistake("The forward value is not the one-hot vector of the argmax of the relaxed "
                      "sample: the terms of the straight-through sum do not cancel to it.")
    if _is_zero(grad):
        raise Mistake("The forward value is the hard sample, but no gradient reaches the relaxed "
                      "sample: every soft term is detached (or the hard sample was returned "
                      "alone).")
    if _close(grad, -v):
        raise Mistake("The forward value is right but the gradient has the wrong sign: the "
                      "detach is on the wrong soft term, so backpropagation sees minus the "
                      "identity and training goes uphill. The museum piece's misordering.")
    if not _close(grad, v):
        raise Mistake("The forward value is right, but the backward pass is not the identity: "
                      "straight-through passes the incoming gradient to the relaxed sample "
                      "unchanged.")


# ----------------------------------------------------------------------------------------------
# q6: probabilities passed as logits
# ----------------------------------------------------------------------------------------------
Q6_PROBS = np.array([[0.85, 0.10, 0.04, 0.01],
                     [0.25, 0.25, 0.25, 0.25],
                     [0.05, 0.50, 0.15, 0.30]])
Q6_REPEATS = 4000
# |z| per cell. At 5 (the first threshold) a right answer failed 2 times in 1,032 graded runs
# (tools/grading_error_rates.py): with the rare categories (p = 0.01, 0.04) the binomial tail is
# heavier than the normal one. At 6.5 the normal tail is 8e-11 per cell and the binomial one at
# p = 0.01 (81 or more draws where 40 are expected) about 1e-8; every wrong answer in the cases is
# more than 20 SE off in some cell, so nothing is lost against them.
Q6_Z = 6.5


@SET.question("q6", points=2, answers=["sample_latent"], title="probabilities passed as logits")
def q6(sample_latent):
    import torch

    if not callable(sample_latent):
        raise Mistake("`sample_latent` should be a function (probs, tau).")
    seed_all(166)
    probs = torch.tensor(np.repeat(Q6_PROBS, Q6_REPEATS, axis=0), dtype=torch.float64,
                         requires_grad=True)
    out = sample_latent(probs, 0.5)
    if not isinstance(out, torch.Tensor):
        raise Mistake(f"sample_latent returned a {type(out).__name__}; return a torch tensor.")
    values = as_float_array(out, "your samples")
    if values.shape != tuple(probs.shape):
        raise Mistake(f"For probs of shape {tuple(probs.shape)} your samples have shape "
                      f"{values.shape}; return one one-hot sample per row.")
    w = torch.linspace(-1.0, 1.0, probs.shape[1], dtype=torch.float64)
    (grad,) = _grad_or_none((out.double() * w).sum(), [probs])
    again = as_float_array(sample_latent(probs, 0.5), "your second samples")
    rounded = values.round()  # hard + soft - soft.detach() is one-hot up to rounding
    return {"values": rounded.reshape(len(Q6_PROBS), Q6_REPEATS, -1).mean(1),
            "one_hot": bool(np.all(np.abs(values - rounded) < 1e-6)
                            and np.all((rounded == 0) | (rounded == 1))
                            and np.all(rounded.sum(-1) == 1)),
            "grad_ok": grad is not None and bool(np.all(np.isfinite(grad)) and np.any(grad)),
            # a second call on the same probs: 12,000 fresh draws cannot all repeat the first
            "repeats": again.shape == values.shape and bool(np.array_equal(again, values))}


def _q6_z(freq: np.ndarray, p: np.ndarray) -> float:
    se = np.sqrt(np.maximum(p * (1 - p), 1e-4) / Q6_REPEATS)
    return float(np.abs((freq - p) / se).max())


@q6.judge
def _(data):
    if not data["one_hot"]:
        raise Mistake("Your samples are not one-hot vectors: the original returned a hard "
                      "sample in the forward pass (hard=True); keep that.")
    freq = data["values"]
    if data["repeats"]:
        raise Mistake("A second call on the same probabilities returned exactly the same "
                      "samples: your sampler is not random (a deterministic rule can match the "
                      "frequencies, but each call must draw fresh samples).")
    if _q6_z(freq, Q6_PROBS) <= Q6_Z:
        if not data["grad_ok"]:
            raise Mistake("Your samples have the right distribution, but no (finite) gradient "
                          "reaches `probs`: the encoder would not be trained through them.")
        return
    soft = np.exp(_log_softmax(Q6_PROBS))
    if _q6_z(freq, soft) <= Q6_Z:
        raise Mistake("Your samples are drawn from softmax(probs), not from probs: "
                      "probabilities are passed where logits (log-probabilities) are expected, "
                      f"which flattens the distribution (a probability of {Q6_PROBS[0, 0]:g} is "
                      f"drawn {soft[0, 0]:.0%} of the time).")
    raise Mistake(f"The frequencies of your samples over {Q6_REPEATS} draws per row differ "
                  "from `probs` by more than sampling noise explains "
                  f"(largest |z| = {_q6_z(freq, Q6_PROBS):.0f}).")


# ----------------------------------------------------------------------------------------------
# q7: a compounding per-epoch temperature decay
# ----------------------------------------------------------------------------------------------
Q7_CASES = [(12, 2.0, 0.15, 0.3), (30, 1.0, 0.05, 0.5), (6, 5.0, 1.0, 0.5), (1, 0.8, 0.2, 0.1),
            (40, 3.0, 0.02, 0.25)]


def _q7_schedule(n, tau0, rate, tau_min, mode="right"):
    e = np.arange(n, dtype=np.float64)
    if mode == "compound":  # tau_e = tau0 * exp(-rate * (0 + 1 + ... + (e - 1)))
        return np.maximum(tau0 * np.exp(-rate * e * (e - 1) / 2), tau_min)
    if mode == "compound_late":  # the product updated before it is used
        return np.maximum(tau0 * np.exp(-rate * e * (e + 1) / 2), tau_min)
    if mode == "shift":
        e = e + 1
    if mode == "no_floor":
        return tau0 * np.exp(-rate * e)
    return np.maximum(tau0 * np.exp(-rate * e), tau_min)


@SET.question("q7", points=1, answers=["temperatures"], title="a compounding temperature decay")
def q7(temperatures):
    if not callable(temperatures):
        raise Mistake("`temperatures` should be a function (n_epochs, tau0, rate, tau_min).")
    return {"runs": [as_float_array(temperatures(n, tau0, rate, tau_min),
                                    f"temperatures({n}, {tau0}, {rate}, {tau_min})")
                     for n, tau0, rate, tau_min in Q7_CASES]}


@q7.judge
def _(data):
    for (n, tau0, rate, tau_min), got in zip(Q7_CASES, data["runs"]):
        if got.shape != (n,):
            raise Mistake(f"temperatures({n}, ...) returned shape {got.shape}; return one "
                          f"temperature per epoch, {n} in all.")
        expect_finite(got, "your temperatures")
        if _close(got, _q7_schedule(n, tau0, rate, tau_min)):
            continue
        for mode in ("compound", "compound_late"):
            bad = _q7_schedule(max(n, 200), tau0, rate, tau_min, mode)
            if _close(got, bad[:n]):
                at = int(np.argmax(bad <= tau_min))
                meant = math.ceil(math.log(tau0 / tau_min) / rate)
                raise Mistake("Your schedule compounds: each epoch multiplies the already "
                              "decayed temperature by exp(-rate * epoch), so the exponent grows "
                              "like epoch squared / 2 and tau reaches its floor far too early "
                              f"(with tau0 = {tau0}, rate = {rate} and tau_min = {tau_min}: at "
                              f"epoch {at} instead of epoch {meant}). The decay must be "
                              "exponential in the epoch.")
        if _close(got, _q7_schedule(n, tau0, rate, tau_min, "shift")):
            raise Mistake("Your schedule is one epoch ahead: epoch 0 must train at tau0 (the "
                          "decay is applied after an epoch, not before the first).")
        if _close(got, _q7_schedule(n, tau0, rate, tau_min, "no_floor")):
            raise Mistake("Your temperatures go below tau_min: the floor is lost.")
        raise Mistake(f"temperatures({n}, {tau0}, {rate}, {tau_min}) is not max(tau_min, "
                      "tau0 * exp(-rate * epoch)) for epochs 0, 1, ...")
