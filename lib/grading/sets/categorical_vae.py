"""Exercises for the chapter "Case study: a categorical VAE on digits".

q1  kl_to_uniform: KL(Categorical(softmax(logits)) || Uniform(K)) per variable (sign and log K).
q2  negative_elbo_discrete: the negative ELBO of a given tiny model with one-hot samples.
q3  st_gumbel_sample: the straight-through Gumbel-softmax sampling step from given noise, the
    step that is then swapped into the training loop.
"""

from __future__ import annotations

import math

import numpy as np

from lib.grading.core import ExerciseSet, Mistake, as_float_array, expect_finite
from lib.grading.probing import seed_all

SET = ExerciseSet("categorical_vae", "Case study: a categorical VAE on digits")


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _close(a: np.ndarray, b: np.ndarray, tol: float = 1e-4) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=tol, atol=tol))


# ----------------------------------------------------------------------------------------------
# q1: the KL divergence to a uniform prior
# ----------------------------------------------------------------------------------------------
Q1_LIBRARY = ("lib.vae.categorical_kl_uniform", "torch.distributions.kl.kl_divergence",
              "torch.nn.functional.kl_div")


def _q1_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "random": 2.5 * rng.normal(size=(6, 4, 10)),  # 24 variables, K = 10
        "uniform": np.full((3, 10), 1.7),  # any constant logits: q uniform, KL = 0
        "three": rng.normal(size=(5, 3)),  # K = 3: log K must follow K
        "confident": np.array([[200.0] + [0.0] * 9, [0.0] * 9 + [-200.0]]),
    }


@SET.question("q1", points=2, answers=["kl_to_uniform"], title="KL to a uniform prior",
              forbidden=Q1_LIBRARY,
              forbidden_why="A library KL is not allowed here: write the sum over categories "
                            "yourself.")
def q1(kl_to_uniform):
    import torch

    if not callable(kl_to_uniform):
        raise Mistake("`kl_to_uniform` should be a function of a tensor of logits [..., K].")
    out = {}
    for name, logits in _q1_inputs().items():
        # float32 for the confident logits: where a naive softmax underflows to exactly 0
        dtype = torch.float32 if name == "confident" else torch.float64
        value = kl_to_uniform(torch.tensor(logits, dtype=dtype))
        out[name] = as_float_array(value, f"kl_to_uniform on logits of shape {logits.shape}")
    return out


def _q1_parts(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    log_q = _log_softmax(logits)
    q = np.exp(log_q)
    return (q * log_q).sum(-1), log_q, math.log(logits.shape[-1])


@q1.judge
def _(data):
    inputs = _q1_inputs()
    for name, logits in inputs.items():
        value = data[name]
        if value.shape != logits.shape[:-1]:
            raise Mistake(f"For logits of shape {logits.shape} your KL has shape {value.shape}; "
                          f"return one KL per variable, shape {logits.shape[:-1]}: sum over the "
                          "last (category) dimension only, and do not average over the batch.")
    for name in ("random", "uniform", "three"):
        expect_finite(data[name], "your KL")
    neg_entropy, log_q, log_k = _q1_parts(inputs["random"])
    value = data["random"]
    right = neg_entropy + log_k
    if not _close(value, right):
        if _close(value, -right):
            raise Mistake("Your KL is the negative of the right one (it is <= 0 everywhere): a "
                          "sign bug, sum q (log(1/K) - log q) instead of sum q (log q - log(1/K)).")
        if _close(value, neg_entropy - log_k):
            raise Mistake("Your KL is off by -2 log K: you subtracted log K where it should be "
                          "added (log q - log(1/K) = log q + log K). The log(1/K) bug makes "
                          "every KL negative.")
        if _close(value, neg_entropy):
            raise Mistake("Your values are sum_k q_k log q_k, the negative entropy: the log K "
                          "term (from log(1/K) in the prior) is missing.")
        if _close(value, -neg_entropy):
            raise Mistake("Your values are the entropy of q, -sum_k q_k log q_k, not the KL to "
                          "the uniform distribution.")
        reverse = (-log_k - log_q).mean(-1)  # KL(Uniform || q)
        if _close(value, reverse):
            raise Mistake("You computed KL(Uniform || q), the divergence in the other direction: "
                          "the ELBO needs KL(q || Uniform), weighted by q, not by 1/K.")
        raise Mistake("For random logits your values differ from KL(q || Uniform(K)) = "
                      "sum_k q_k (log q_k - log(1/K)) with q = softmax(logits) over the LAST "
                      "dimension. Check the softmax dimension and the formula.")
    if not _close(data["uniform"], np.zeros(3), tol=1e-6):
        raise Mistake("For constant logits q is uniform and the KL must be exactly 0; yours is "
                      f"{data['uniform'][0]:.4g}.")
    neg_entropy3, _, log_k3 = _q1_parts(inputs["three"])
    if not _close(data["three"], neg_entropy3 + log_k3):
        raise Mistake("Right for K = 10 but not for K = 3: the log K term must use the number "
                      "of categories of the input (logits.shape[-1]), not a constant.")
    confident = data["confident"]
    if not np.all(np.isfinite(confident)):
        raise Mistake("For very confident logits (one logit 200, the others 0, in float32) your "
                      "KL is NaN or infinite: softmax underflows to exactly 0 and log(0) * 0 is "
                      "NaN. Take log q from torch.log_softmax instead of log(softmax).")
    expected = np.array([math.log(10), _q1_parts(inputs["confident"][1:])[0][0] + math.log(10)])
    if not _close(confident, expected, tol=1e-4):
        raise Mistake("For very confident logits your KL is wrong (it should approach log K for "
                      "an almost one-hot q): check the numerics of log q for large logits.")


# ----------------------------------------------------------------------------------------------
# q2: the negative ELBO of a tiny model with discrete samples
# ----------------------------------------------------------------------------------------------
Q2_SEED, Q2_N_IMAGES, Q2_N_SAMPLES = 11, 6, 1000
Q2_LIBRARY = ("lib.vae.discrete_negative_elbo", "lib.vae.exact_negative_elbo", "lib.vae.vae_loss")


def q2_model_and_images():
    """The tiny model (2 variables x 3 classes, float64) and the 6 binary images of q2."""
    import torch

    from lib.vae import CategoricalVAE

    # The same model in the notebook's process (probe) and the grader's (reference), whatever
    # the notebook did to torch's global state: the weights are drawn with the default dtype
    # (float32, then converted), so a notebook that set float64 as the default (as the chapters
    # do) must not change them. The global generator is restored afterwards.
    state, dtype = torch.random.get_rng_state(), torch.get_default_dtype()
    try:
        torch.manual_seed(Q2_SEED)
        torch.set_default_dtype(torch.float32)
        model = CategoricalVAE(n_latent=2, n_categories=3, n_hidden=8).double()
    finally:
        torch.set_default_dtype(dtype)
        torch.random.set_rng_state(state)

    images = (np.random.default_rng(Q2_SEED).random((Q2_N_IMAGES, 64)) < 0.35).astype(float)
    return model, torch.tensor(images)


@SET.question("q2", points=3, answers=["negative_elbo_discrete"],
              title="the discrete-sample negative ELBO", forbidden=Q2_LIBRARY,
              forbidden_why="The library's ELBO is not allowed here: compute it from "
                            "model.encode and model.decode yourself.")
def q2(negative_elbo_discrete):
    import torch

    if not callable(negative_elbo_discrete):
        raise Mistake("`negative_elbo_discrete` should be a function (model, x, n_samples).")
    model, x = q2_model_and_images()
    out = {}
    # Observe what reaches the decoder, however it is called (model.decode or model.decoder):
    # the largest distance of a code entry from {0, 1}, and of a variable's sum from 1. The
    # untrained decoder barely depends on z, so relaxed codes give about the right ELBO; their
    # values cannot tell them apart from one-hot codes, their inputs to the decoder can.
    seen = {"off": 0.0}

    def look(module, inputs):
        z = inputs[0].detach().double().unflatten(-1, (2, 3))
        off = torch.minimum(z.abs(), (z - 1).abs()).amax().item() if z.numel() else 0.0
        total = (z.sum(-1) - 1).abs().amax().item() if z.numel() else 0.0
        seen["off"] = max(seen["off"], off, total)

    model.decoder.register_forward_pre_hook(look)
    seed_all(0)
    out["many"] = as_float_array(negative_elbo_discrete(model, x, Q2_N_SAMPLES),
                                 f"negative_elbo_discrete(model, x, {Q2_N_SAMPLES})")
    for i, seed in enumerate((1, 2, 3)):
        seed_all(seed)
        out[f"one_{i}"] = as_float_array(negative_elbo_discrete(model, x, 1),
                                         "negative_elbo_discrete(model, x, 1)")
    out["code_off"] = float(seen["off"])
    return out


def q2_reference() -> dict[str, np.ndarray]:
    """Exact quantities of the q2 model by enumerating its 9 codes (computed by the judge)."""
    import torch

    from lib.vae import all_codes, bernoulli_log_likelihood, categorical_kl_uniform

    model, x = q2_model_and_images()
    with torch.no_grad():
        logits = model.encode(x)
        q = torch.softmax(logits, -1)
        codes = all_codes(2, 3, dtype=torch.float64)  # [9, 2, 3]
        q_codes = torch.einsum("cnk,bnk->cb", codes, torch.log_softmax(logits, -1)).exp()
        cost = -bernoulli_log_likelihood(model.decode(codes).unsqueeze(1), x)  # [9, B]
        kl = categorical_kl_uniform(logits).sum(-1)
        mean_cost = (q_codes * cost).sum(0)
        var_cost = (q_codes * (cost - mean_cost) ** 2).sum(0)
        mode = torch.nn.functional.one_hot(logits.argmax(-1), 3).double()
        mode_cost = -bernoulli_log_likelihood(model.decode(mode), x)
        probs_cost = -bernoulli_log_likelihood(model.decode(q), x)
        pixel_mean_cost = (q_codes * cost / 64).sum(0)
    return {k: v.numpy() for k, v in {
        "exact": mean_cost + kl, "cost": mean_cost, "kl": kl, "sd": var_cost.sqrt(),
        "mode": mode_cost + kl, "probs": probs_cost + kl, "pixel_mean": pixel_mean_cost + kl,
    }.items()}


@q2.judge
def _(data):
    many = data["many"]
    if many.shape != (Q2_N_IMAGES,):
        raise Mistake(f"For a batch of {Q2_N_IMAGES} images your function returned shape "
                      f"{many.shape}; return one value per image (shape [B]): average over the "
                      "samples, not over the images.")
    expect_finite(many, "your negative ELBO")
    ref = q2_reference()
    se = ref["sd"] / math.sqrt(Q2_N_SAMPLES)
    tol = 5 * se + 1e-6  # Monte Carlo error of a right answer: at most 5 standard errors
    err = many - ref["exact"]
    if data.get("code_off", 0.0) > 1e-6 and np.all(np.abs(err) <= tol):
        raise Mistake("The decoder received codes that are not one-hot (an entry is "
                      f"{data['code_off']:.2g} away from 0 or 1): relaxed samples such as a "
                      "Gumbel-softmax at a low temperature are not discrete codes. Decode exact "
                      "one-hot samples from q.")
    if np.all(np.abs(err) <= tol):
        ones = np.stack([data[f"one_{i}"] for i in range(3)])
        if ones.shape[1:] != (Q2_N_IMAGES,):
            raise Mistake("With n_samples = 1 your function returned a different shape; it "
                          "must return one value per image for any n_samples.")
        if np.all(ones == ones[:1]):
            raise Mistake("With n_samples = 1 your function returns the same values on every "
                          "call: the codes are not random samples from q.")
        return

    def near(key, rel=2e-3):
        return bool(np.allclose(many, ref[key], rtol=rel, atol=5 * se.max() + 1e-6))

    if data.get("code_off", 0.0) > 1e-6 and not near("probs"):
        raise Mistake("The decoder received codes that are not one-hot (an entry is "
                      f"{data['code_off']:.2g} away from 0 or 1): relaxed samples such as a "
                      "Gumbel-softmax at a low temperature are not discrete codes. Decode exact "
                      "one-hot samples from q.")

    if np.allclose(-many, ref["exact"], rtol=2e-3, atol=5 * se.max()):
        raise Mistake("Your values are negative: you returned the ELBO itself. The task asks "
                      "for the NEGATIVE ELBO, reconstruction cost + KL, which is positive.")
    if np.allclose(many, ref["cost"], atol=5 * se.max() + 1e-6):
        raise Mistake("Your values match the expected reconstruction cost alone: the KL term "
                      "(summed over the latent variables) is missing.")
    if np.allclose(many, ref["cost"] - ref["kl"], atol=5 * se.max() + 1e-6):
        raise Mistake("Your values look like cost - KL: the KL enters the negative ELBO with a "
                      "PLUS sign (-ELBO = E[-log p(x|z)] + KL).")
    if np.allclose(many, ref["exact"] - 2 * 2 * math.log(3), atol=5 * se.max() + 1e-6):
        raise Mistake("Your values are 2 log K per variable too low: the KL has the log(1/K) "
                      "bug (log K subtracted instead of added).")
    if near("mode"):
        raise Mistake("Your values match the cost at the MOST PROBABLE code (argmax of q) for "
                      "every image: the ELBO averages over codes SAMPLED from q.")
    if near("probs"):
        raise Mistake("Your values match decoding the probabilities q themselves: the decoder "
                      "must get one-hot codes sampled from q (probabilities are not codes).")
    if near("pixel_mean"):
        raise Mistake("Your reconstruction term is the MEAN over pixels; the log-likelihood of "
                      "an image is the SUM over its 64 pixels (reduction='sum' or .sum(-1)).")
    z = err / ref["sd"]
    if np.all(np.abs(z) < 3) and np.any(np.abs(err) > tol):
        raise Mistake("Your values are within the noise of ONE sample per image, not of "
                      f"{Q2_N_SAMPLES}: average the cost over n_samples codes per image.")
    direction = "too high" if np.mean(err) > 0 else "too low"
    raise Mistake(f"Your values are {direction} by more than Monte Carlo noise allows (up to "
                  f"{np.max(np.abs(err / se)):.0f} standard errors). Check that z is one-hot "
                  "(not relaxed), sampled from softmax(model.encode(x)) per variable, that the "
                  "cost is BCE-with-logits summed over pixels, and the KL to Uniform(K).")


# ----------------------------------------------------------------------------------------------
# q3: the straight-through Gumbel-softmax sampling step, from given noise
# ----------------------------------------------------------------------------------------------
Q3_TAUS = (0.7, 2.0)
Q3_LIBRARY = ("lib.relaxed", "lib.estimators", "torch.nn.functional.gumbel_softmax",
              "torch.distributions.RelaxedOneHotCategorical",
              "torch.distributions.OneHotCategoricalStraightThrough")


def _q3_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(40, 3, 5))
    u = rng.uniform(1e-12, 1.0, size=logits.shape)
    return {"logits": logits, "noise": -np.log(-np.log(u)),
            "upstream": rng.normal(size=logits.shape)}


@SET.question("q3", points=3, answers=["st_gumbel_sample"],
              title="straight-through Gumbel-softmax from given noise", forbidden=Q3_LIBRARY,
              forbidden_why="A library Gumbel-softmax or straight-through helper is not allowed "
                            "here: build it from the noise, a softmax and the detach trick.")
def q3(st_gumbel_sample):
    import torch

    if not callable(st_gumbel_sample):
        raise Mistake("`st_gumbel_sample` should be a function (logits, tau, gumbel_noise).")
    inputs = _q3_inputs()
    out = {}
    for i, tau in enumerate(Q3_TAUS):
        logits = torch.tensor(inputs["logits"], requires_grad=True)
        noise = torch.tensor(inputs["noise"])
        y = st_gumbel_sample(logits, tau, noise)
        if y is None:
            raise Mistake("st_gumbel_sample returned None: did you forget a `return`?")
        if not isinstance(y, torch.Tensor):
            raise Mistake(f"st_gumbel_sample returned a {type(y).__name__}; return a "
                          "torch.Tensor connected to `logits` (NumPy carries no gradient).")
        out[f"values_{i}"] = as_float_array(y, "st_gumbel_sample(...)")
        grad = None
        if y.requires_grad:
            (g,) = torch.autograd.grad((y * torch.tensor(inputs["upstream"], dtype=y.dtype)).sum(),
                                       logits, allow_unused=True)
            grad = None if g is None else g.detach().double().numpy()
        out[f"grad_{i}"] = grad
    return out


def _softmax_vjp(scores: np.ndarray, upstream: np.ndarray, tau: float) -> np.ndarray:
    """Gradient of sum(upstream * softmax(scores / tau)) with respect to ``scores``."""
    y = np.exp(_log_softmax(scores / tau))
    return y * (upstream - (y * upstream).sum(-1, keepdims=True)) / tau


def _snap(x: np.ndarray) -> np.ndarray:
    """Values within 1e-6 of 0 or 1 onto it (``hard - soft.detach() + soft`` may be 1 ulp off)."""
    out = x.copy()
    for level in (0.0, 1.0):
        out[np.abs(out - level) <= 1e-6] = level
    return out


@q3.judge
def _(data):
    inputs = _q3_inputs()
    logits, noise, up = inputs["logits"], inputs["noise"], inputs["upstream"]
    k = logits.shape[-1]
    hard = np.eye(k)[(logits + noise).argmax(-1)]
    for i, tau in enumerate(Q3_TAUS):
        values, grad = data[f"values_{i}"], data[f"grad_{i}"]
        if values.shape != logits.shape:
            raise Mistake(f"Your output has shape {values.shape}; it must have the shape of the "
                          f"logits, {logits.shape}.")
        expect_finite(values, "your sample")
        values = _snap(values)
        soft = np.exp(_log_softmax((logits + noise) / tau))
        if not np.array_equal(values, hard):
            if np.allclose(values, soft, atol=1e-6):
                raise Mistake("The forward value is the relaxed sample softmax((logits + G)/tau). "
                              "Straight-through Gumbel must output the ONE-HOT vector of "
                              "argmax(logits + G) forward; only the backward pass uses the "
                              "relaxed sample.")
            if np.all((values == 0) | (values == 1)) and np.all(values.sum(-1) == 1):
                if np.array_equal(values, np.eye(k)[logits.argmax(-1)]):
                    raise Mistake("Your one-hot vector is argmax(logits): the Gumbel noise is "
                                  "ignored, so the 'sample' is always the mode.")
                raise Mistake("Your output is one-hot but not at argmax(logits + gumbel_noise) "
                              "for every row: use the noise you are given, added to the logits.")
            raise Mistake("The forward value must be exactly one-hot (one entry 1, the others 0) "
                          "at argmax(logits + gumbel_noise).")
        if grad is None or np.all(grad == 0):
            raise Mistake("No gradient reaches the logits: argmax and one_hot have no gradient. "
                          "Add to the one-hot vector a term whose value is 0 but whose "
                          "gradient is the relaxed sample's.")
        right = _softmax_vjp(logits + noise, up, tau)
        if np.allclose(grad, right, rtol=1e-4, atol=1e-8):
            continue
        if np.allclose(grad, -right, rtol=1e-4, atol=1e-8):
            raise Mistake("The gradient has the wrong sign: the detach is on the wrong term "
                          "(hard + soft.detach() - soft).")
        if np.allclose(grad, _softmax_vjp(logits, up, 1.0), rtol=1e-4, atol=1e-8):
            raise Mistake("The gradient is that of softmax(logits): plain straight-through. "
                          "Straight-through GUMBEL differentiates the relaxed sample "
                          "softmax((logits + G)/tau) built from the same noise.")
        if np.allclose(grad, _softmax_vjp(logits + noise, up, 1.0), rtol=1e-4, atol=1e-8):
            raise Mistake(f"The gradient does not depend on tau (checked at tau = {tau}): the "
                          "relaxed sample must be softmax((logits + G) / tau).")
        if np.allclose(grad, _softmax_vjp(logits / tau + noise, up, 1.0) / tau, rtol=1e-4,
                       atol=1e-8):
            raise Mistake("The relaxed sample looks like softmax(logits / tau + G): the noise "
                          "must be divided by tau too, softmax((logits + G) / tau).")
        raise Mistake(f"At tau = {tau} the gradient is not that of the relaxed sample "
                      "softmax((logits + G)/tau) from the same noise G.")
