"""Exercises for the chapter "Training with Gumbel-softmax"."""

from __future__ import annotations

import functools
import math

import numpy as np

from lib.grading.core import ExerciseSet, Mistake, as_float_array, expect_finite
from lib.grading.probing import attempt as _call

SET = ExerciseSet("training_gumbel_softmax", "Training with Gumbel-softmax")


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| relative to the size of b (with a floor for tiny references)."""
    scale = max(float(np.abs(b).max()), 1e-12)
    return float(np.abs(a - b).max()) / scale


# ----------------------------------------------------------------------------------------------
# q1: straight-through Gumbel-softmax from given noise
# ----------------------------------------------------------------------------------------------
Q1_ROWS, Q1_K = 2000, 5
Q1_TAUS = (0.5, 2.0)
GRAD_TOL = 1e-4  # relative; float32 softmax gradients computed in another order differ ~1e-7


def _q1_inputs(seed: int):
    import torch

    from lib.gumbel import sample_gumbel

    g = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(Q1_ROWS, Q1_K, generator=g)
    gumbels = sample_gumbel((Q1_ROWS, Q1_K), generator=g)
    w = torch.randn(Q1_ROWS, Q1_K, generator=g)  # cotangent of a linear downstream loss
    m = torch.randn(Q1_K, 3, generator=g)  # weights of a nonlinear downstream loss
    return logits, gumbels, w, m


def _q1_references(logits, gumbels, w, m, tau):
    """Gradients w.r.t. the logits of the right answer and of typical wrong answers."""
    import torch

    def grad_of(fn):
        leaf = logits.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(fn(leaf), leaf)
        return g.double().numpy()

    def nonlinear(y):
        return ((y @ m) ** 2).sum()

    perturbed = logits + gumbels
    hard = torch.nn.functional.one_hot(perturbed.argmax(-1), Q1_K).to(logits.dtype)
    hard_leaf = hard.clone().requires_grad_(True)
    (dz,) = torch.autograd.grad(nonlinear(hard_leaf), hard_leaf)  # dL/dy at the one-hot code

    def soft(leaf, t=tau, noise=True):
        return torch.softmax((leaf + (gumbels if noise else 0)) / t, dim=-1)

    return {
        "ref_linear": grad_of(lambda leaf: (w * soft(leaf)).sum()),
        "ref_nonlinear": grad_of(lambda leaf: (dz * soft(leaf)).sum()),
        "plain_st_linear": grad_of(lambda leaf: (w * torch.softmax(leaf, dim=-1)).sum()),
        "no_tau_linear": grad_of(lambda leaf: (w * soft(leaf, t=1.0)).sum()),
        "soft_nonlinear": grad_of(lambda leaf: nonlinear(soft(leaf))),
        "argmax_noisy": perturbed.argmax(-1).numpy(),
        "argmax_clean": logits.argmax(-1).numpy(),
        "soft_values": soft(logits).double().numpy(),
    }


@SET.question("q1", points=3, answers=["st_gumbel_softmax"],
              title="straight-through Gumbel-softmax")
def q1(st_gumbel_softmax):
    import torch

    if not callable(st_gumbel_softmax):
        raise Mistake("`st_gumbel_softmax` should be a function (logits, tau, gumbels) -> tensor.")
    out = {}
    for j, tau in enumerate(Q1_TAUS):
        logits, gumbels, w, m = _q1_inputs(100 + j)
        # y.to(w.dtype): a float64 answer is right too; the loss must not fail on it
        for name, loss in (("linear", lambda y, w=w: (w * y.to(w.dtype)).sum()),
                           ("nonlinear", lambda y, m=m: ((y.to(m.dtype) @ m) ** 2).sum())):
            leaf = logits.clone().requires_grad_(True)
            y, err = _call(st_gumbel_softmax, leaf, tau, gumbels.clone())
            if err:
                raise Mistake(f"st_gumbel_softmax(logits, {tau}, gumbels) raised {err}")
            if not isinstance(y, torch.Tensor):
                raise Mistake(f"st_gumbel_softmax returned a {type(y).__name__}; it must return a "
                              "torch tensor, so that gradients can flow back to the logits.")
            if tuple(y.shape) != (Q1_ROWS, Q1_K):
                raise Mistake(f"For logits of shape {(Q1_ROWS, Q1_K)} your function returned "
                              f"shape {tuple(y.shape)}; it should return the same shape.")
            value = y.detach().double().numpy()
            if not y.requires_grad:
                grad = None
            else:
                (grad,) = torch.autograd.grad(loss(y), leaf, allow_unused=True)
            out[f"value_{j}"] = value
            out[f"grad_{name}_{j}"] = None if grad is None else grad.double().numpy()
        out.update({f"{k}_{j}": v for k, v in
                    _q1_references(logits, gumbels, w, m, tau).items()})
    return out


@q1.judge
def _(data):
    for j in range(len(Q1_TAUS)):
        v = data[f"value_{j}"]
        expect_finite(v, "your output")
        not_binary = (v != 0) & (v != 1)
        if not_binary.any():
            if np.abs(v - data[f"soft_values_{j}"]).max() < 1e-5:
                raise Mistake("Your forward value is the relaxed sample softmax((logits + "
                              "gumbels) / tau) itself. Straight-through Gumbel-softmax must "
                              "return the exact one-hot vector in the forward pass.")
            near = np.minimum(np.abs(v), np.abs(v - 1)).max()
            if near < 1e-5:
                raise Mistake(f"{int(not_binary.sum())} entries of your output are one-hot only "
                              f"up to rounding (off by up to {near:.1e}). The forward value must "
                              "be exactly 0 or 1: take the forward value from the exact one-hot "
                              "vector and let only the gradient come from the relaxed sample.")
            raise Mistake(f"{int(not_binary.sum())} entries of your output are not exactly 0 or "
                          "1: the forward value must be a one-hot vector.")
        ones = v.sum(1)
        if not np.all(ones == 1):
            raise Mistake(f"Some rows of your output have {int(ones.min())} to {int(ones.max())} "
                          "ones; each row must be one-hot (exactly one 1).")
        picked = v.argmax(1)
        if not np.array_equal(picked, data[f"argmax_noisy_{j}"]):
            share = float(np.mean(picked == data[f"argmax_clean_{j}"]))
            if share == 1.0:
                raise Mistake("Your one-hot vector sits at the argmax of the logits, without the "
                              "Gumbel noise: that is not a sample. Take the argmax of "
                              "logits + gumbels.")
            raise Mistake("Your one-hot vector is not at argmax(logits + gumbels) in "
                          f"{int(np.sum(picked != data[f'argmax_noisy_{j}']))} of {len(picked)} "
                          "rows. Use the gumbels passed in; do not draw new noise.")
    for j, tau in enumerate(Q1_TAUS):
        for name in ("linear", "nonlinear"):
            g = data[f"grad_{name}_{j}"]
            if g is None:
                raise Mistake("No gradient reaches the logits from your output: the one-hot "
                              "vector alone (argmax, one_hot) is not differentiable. The "
                              "gradient must come from the relaxed sample while the forward "
                              "value stays one-hot (the straight-through trick of the chapter).")
            expect_finite(g, "the gradient of your output")
            if not np.any(g):
                raise Mistake("The gradient that reaches the logits is exactly zero: the relaxed "
                              "part of your output seems detached.")
        g = data[f"grad_linear_{j}"]
        if _rel_err(g, -data[f"ref_linear_{j}"]) < GRAD_TOL:
            raise Mistake(f"At tau = {tau} your gradient is exactly the NEGATIVE of the relaxed "
                          "sample's gradient: the stop-gradient (detach) is on the wrong term, "
                          "so the relaxed sample is subtracted instead of added.")
        if _rel_err(g, data[f"ref_linear_{j}"]) > GRAD_TOL:
            if _rel_err(g, data[f"plain_st_linear_{j}"]) < GRAD_TOL:
                raise Mistake("Your backward pass uses softmax(logits): plain straight-through, "
                              "without the Gumbel noise and the temperature. Use the gradient of "
                              "softmax((logits + gumbels) / tau).")
            if tau != 1.0 and _rel_err(g, data[f"no_tau_linear_{j}"]) < GRAD_TOL:
                raise Mistake(f"At tau = {tau} your gradient is the one of the relaxed sample at "
                              "temperature 1: divide logits + gumbels by the temperature tau.")
            raise Mistake(f"At tau = {tau} the gradient of sum(w * y) with respect to the logits "
                          "differs from the gradient of the relaxed sample "
                          f"softmax((logits + gumbels) / tau) (relative error "
                          f"{_rel_err(g, data[f'ref_linear_{j}']):.1e}).")
        g = data[f"grad_nonlinear_{j}"]
        if _rel_err(g, data[f"ref_nonlinear_{j}"]) > GRAD_TOL:
            raise Mistake(f"At tau = {tau}, for a nonlinear loss of y, your gradient is not "
                          "the straight-through one (dL/dy at the one-hot value, times the "
                          "Jacobian of the relaxed sample).")


# ----------------------------------------------------------------------------------------------
# q2: Jang et al.'s annealing schedule
# ----------------------------------------------------------------------------------------------
Q2_STEPS = [0, 1, 500, 999, 1000, 1001, 1999, 2000, 2500, 5000, 12_345, 23_000, 23_999,
            24_000, 30_000, 50_000, 10**6]
Q2_PARAMS = [
    {"tau0": 1.0, "rate": 3e-5, "tau_min": 0.5, "every": 1000},
    {"tau0": 2.0, "rate": 1e-3, "tau_min": 0.1, "every": 100},
    {"tau0": 1.5, "rate": 2e-4, "tau_min": 0.25, "every": 1},
    {"tau0": 5.0, "rate": 5e-3, "tau_min": 0.5, "every": 6},
]
Q2_PARAM_STEPS = [0, 1, 5, 6, 7, 50, 99, 100, 101, 150, 250, 999, 1000, 1500, 3000, 10_000]


def jang_schedule(step, tau0, rate, tau_min, every):
    """The reference: max(tau_min, tau0 exp(-rate t)), t = step rounded down to every."""
    return max(tau_min, tau0 * math.exp(-rate * (step // every) * every))


def _variants(step, tau0, rate, tau_min, every):
    """What typical wrong schedules give."""
    n = step // every
    return {
        "no_floor": tau0 * math.exp(-rate * n * every),
        "no_rounding": max(tau_min, tau0 * math.exp(-rate * step)),
        "per_update_rate": max(tau_min, tau0 * math.exp(-rate * n)),
        "nearest": max(tau_min, tau0 * math.exp(-rate * math.floor(step / every + 0.5) * every)),
        "ceil": max(tau_min, tau0 * math.exp(-rate * math.ceil(step / every) * every)),
        "compounding": max(tau_min, tau0 * math.exp(-rate * every * n * (n + 1) / 2)),
        "min_floor": min(tau_min, tau0 * math.exp(-rate * n * every)),
    }


@SET.question("q2", points=2, answers=["anneal"], title="the annealing schedule")
def q2(anneal):
    if not callable(anneal):
        raise Mistake("`anneal` should be a function anneal(step, tau0, rate, tau_min, every).")
    values = []
    for params in Q2_PARAMS:
        steps = Q2_STEPS if params == Q2_PARAMS[0] else Q2_PARAM_STEPS
        row = []
        for step in steps:
            value, err = _call(anneal, step, **params)
            if err:
                raise Mistake(f"anneal({step}, **{params}) raised {err}")
            try:
                row.append(float(value))
            except (TypeError, ValueError):
                raise Mistake(f"anneal({step}, ...) returned {type(value).__name__}; a number was "
                              "expected.") from None
        values.append(row)
    default_value, err = _call(anneal, 1000)
    return {"values": values, "default_1000": err or float(default_value)}


@q2.judge
def _(data):
    names = {
        "no_floor": "the temperature goes below tau_min: the floor max(tau_min, ...) is "
                    "missing.",
        "min_floor": "the temperature never exceeds tau_min: use max(tau_min, ...), not min.",
        "no_rounding": "the temperature changes between updates: the step must be rounded "
                       "down to a multiple of `every` (t = every * (step // every)) before "
                       "the exponential.",
        "per_update_rate": "the temperature decays `every` times too slowly: the rate is per "
                           "STEP, so use t = every * (step // every), not step // every.",
        "nearest": "the step is rounded to the nearest multiple of `every`; round it down.",
        "ceil": "the step is rounded up; round it down (the temperature changes AT multiples "
                "of `every`).",
        "compounding": "the decay compounds: the temperature is a function of the global step, "
                       "tau0 * exp(-rate * t), not the previous temperature times a decay "
                       "factor at each update.",
    }
    for params, row in zip(Q2_PARAMS, data["values"]):
        steps = Q2_STEPS if params == Q2_PARAMS[0] else Q2_PARAM_STEPS
        got = np.array(row)
        expect_finite(got, "your temperatures")
        want = np.array([jang_schedule(s, **params) for s in steps])
        if np.allclose(got, want, rtol=1e-6, atol=0):
            continue
        for key, message in names.items():
            variant = np.array([_variants(s, **params)[key] for s in steps])
            if np.allclose(got, variant, rtol=1e-6, atol=0):
                raise Mistake(f"With {params}, {message}")
        if params is not Q2_PARAMS[0]:
            for name, default in Q2_PARAMS[0].items():
                swapped = {**params, name: default}
                alt = np.array([jang_schedule(s, **swapped) for s in steps])
                if np.allclose(got, alt, rtol=1e-6, atol=0):
                    raise Mistake(f"With {params} your function behaves as if {name} were "
                                  f"{default}: it ignores the argument {name}.")
        bad = int(np.argmax(~np.isclose(got, want, rtol=1e-6, atol=0)))
        raise Mistake(f"With {params}, anneal({steps[bad]}) = {got[bad]:.6g} is not Jang et "
                      "al.'s max(tau_min, tau0 * exp(-rate * t)) with t the step rounded down "
                      "to a multiple of every.")
    default = data["default_1000"]
    if isinstance(default, str):
        raise Mistake(f"anneal(1000) with the default arguments raised {default}: give tau0, "
                      "rate, tau_min and every the defaults of Jang et al. (1.0, 3e-5, 0.5, 1000).")
    if not math.isclose(default, jang_schedule(1000, **Q2_PARAMS[0]), rel_tol=1e-6):
        raise Mistake(f"anneal(1000) with the default arguments gives {default:.6g}: the "
                      "defaults should be Jang et al.'s constants tau0=1.0, rate=3e-5, "
                      "tau_min=0.5, every=1000.")


# ----------------------------------------------------------------------------------------------
# q3: the temperature range in which relaxed training works
# ----------------------------------------------------------------------------------------------
Q3_TAUS = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
Q3_SEEDS = (0, 1, 2)
Q3_PROBE_TAUS = (0.7, 3.0)  # temperatures the student does not report
Q3_PROBE_SEED = 3  # and a seed the student does not use
Q3_FACTOR = 1.2  # "works": argmax test loss within 20% of the best possible discrete loss
RUN_TOL = 1e-5  # relative; a fresh run with the same seed reproduces the numbers exactly


@functools.lru_cache(maxsize=8)
def _reference(estimators: tuple, taus: tuple, seed: int) -> dict:
    """Test losses of a reference run (deterministic, so cached across checks)."""
    from lib.bottleneck import train_autoencoder

    run = train_autoencoder(list(estimators), list(taus), seed=seed)
    return {k: v.tolist() for k, v in run.test.items()}


def _lookup(sweep, tau):
    """``sweep[tau]``, matching float keys up to rounding; None if absent."""
    for key, value in sweep.items():
        try:
            if abs(float(key) - tau) <= 1e-9 * max(1.0, tau):
                return value
        except (TypeError, ValueError):
            continue
    return None


def _losses_of(result, taus, what):
    if not isinstance(result, dict):
        raise Mistake(f"{what} returned a {type(result).__name__}; it must return a dict "
                      "{tau: loss}.")
    out = []
    for tau in taus:
        value = _lookup(result, tau)
        if value is None:
            raise Mistake(f"{what} has no entry for tau = {tau}: it must map every temperature "
                          "it was given to a loss.")
        out.append(float(as_float_array(value, f"the loss at tau = {tau}").reshape(-1)[0]))
    return out


# 120 s, not the default 60: one model per temperature (24 runs, then 26 more in the check) is a
# correct answer that takes about 20 s on an idle 2-core machine and exceeded 60 s under load.
@SET.question("q3", points=3, answers=["relaxed_sweep", "sweeps", "working_taus"],
              title="where relaxed training works", seconds=120)
def q3(relaxed_sweep, sweeps, working_taus):
    from lib.bottleneck import optimal_circle_loss

    if not callable(relaxed_sweep):
        raise Mistake("`relaxed_sweep` should be a function (taus, seed) -> dict.")
    if not isinstance(sweeps, dict):
        raise Mistake(f"`sweeps` is a {type(sweeps).__name__}; it must be a dict "
                      "{seed: relaxed_sweep(TAUS, seed=seed)} for the seeds 0, 1 and 2.")
    reported = []
    for seed in Q3_SEEDS:
        if seed not in sweeps:
            raise Mistake(f"`sweeps` has no entry for seed {seed}: it must map each of the seeds "
                          f"{list(Q3_SEEDS)} to relaxed_sweep(TAUS, seed=seed).")
        reported.append(_losses_of(sweeps[seed], Q3_TAUS, f"`sweeps[{seed}]`"))
    if isinstance(working_taus, (int, float)) or working_taus is None:
        raise Mistake("`working_taus` must be a list of temperatures from TAUS.")
    try:
        working = sorted(float(t) for t in working_taus)
    except (TypeError, ValueError):
        raise Mistake("`working_taus` must be a list of numbers (temperatures from TAUS).") \
            from None
    fresh = []
    for seed in Q3_SEEDS:
        result, err = _call(relaxed_sweep, list(Q3_TAUS), seed=seed)
        if err:
            raise Mistake(f"relaxed_sweep(TAUS, seed={seed}) raised {err}")
        fresh.append(_losses_of(result, Q3_TAUS, f"relaxed_sweep(TAUS, seed={seed})"))
    call = f"relaxed_sweep({list(Q3_PROBE_TAUS)}, seed={Q3_PROBE_SEED})"
    result, err = _call(relaxed_sweep, list(Q3_PROBE_TAUS), seed=Q3_PROBE_SEED)
    if err:
        raise Mistake(f"{call} raised {err}")
    probe = _losses_of(result, Q3_PROBE_TAUS, call)
    both = _reference(("gumbel_softmax",) * 2 + ("st_gumbel_softmax",) * 2, Q3_PROBE_TAUS * 2,
                      Q3_PROBE_SEED)
    seed0 = _reference(("gumbel_softmax",) * 2, Q3_PROBE_TAUS, 0)
    return {
        "reported": reported,
        "fresh": fresh,
        "probe": probe,
        "ref_argmax": both["argmax"][:2],
        "ref_sample": both["sample"][:2],
        "ref_relaxed": both["relaxed"][:2],
        "ref_st_argmax": both["argmax"][2:],
        "ref_seed0_argmax": seed0["argmax"],
        "working": working,
        "best": optimal_circle_loss(4),
    }


@q3.judge
def _(data):
    reported, fresh = np.array(data["reported"]), np.array(data["fresh"])  # [seeds, taus]
    expect_finite(reported, "the losses in `sweeps`")
    probe = np.array(data["probe"])
    expect_finite(probe, "the losses returned by relaxed_sweep")
    mismatch = np.abs(reported - fresh) > RUN_TOL * np.abs(fresh)
    if mismatch.any():
        s, i = np.unravel_index(int(np.argmax(mismatch)), mismatch.shape)
        raise Mistake(f"Your reported `sweeps` do not match a fresh run of relaxed_sweep(TAUS, "
                      f"seed={Q3_SEEDS[s]}): at tau = {Q3_TAUS[i]} you report "
                      f"{reported[s, i]:.6g}, the fresh run gives {fresh[s, i]:.6g}. Rebuild "
                      "`sweeps` by calling your function after its last change, and do not "
                      "round or type the numbers.")

    def close(key):
        ref = np.array(data[key])
        return bool(np.all(np.abs(probe - ref) <= RUN_TOL * np.abs(ref)))

    if not close("ref_argmax"):
        diagnoses = [
            ("ref_relaxed", "relaxed_sweep returns the relaxed loss (the training objective of "
                            "Approach 1), not the loss with the argmax code."),
            ("ref_sample", "relaxed_sweep returns the loss with a SAMPLED code; the question "
                           "asks for the loss with the argmax code."),
            ("ref_st_argmax", "relaxed_sweep trains with straight-through Gumbel-softmax "
                              "('st_gumbel_softmax'); the question is about relaxed training "
                              "(Approach 1, 'gumbel_softmax')."),
            ("ref_seed0_argmax", f"relaxed_sweep ignores its `seed` argument: with "
                                 f"seed={Q3_PROBE_SEED} it returns the numbers of seed 0."),
        ]
        for key, message in diagnoses:
            if close(key):
                raise Mistake(message)
        raise Mistake(f"relaxed_sweep({list(Q3_PROBE_TAUS)}, seed={Q3_PROBE_SEED}) does not "
                      "match the argmax test loss of fresh train_autoencoder('gumbel_softmax', "
                      f"tau, seed={Q3_PROBE_SEED}) runs with the default settings. Did you change "
                      "n_steps or another setting, or evaluate on other data than run.test_x?")
    threshold = Q3_FACTOR * data["best"]
    got = data["working"]
    for tau in got:
        if not any(abs(tau - t) <= 1e-9 * max(1.0, t) for t in Q3_TAUS):
            raise Mistake(f"`working_taus` contains {tau}, which is not one of TAUS.")
    for i, tau in enumerate(Q3_TAUS):
        listed = any(abs(tau - t) <= 1e-9 * max(1.0, t) for t in got)
        worst = float(reported[:, i].max())
        seed = Q3_SEEDS[int(reported[:, i].argmax())]
        if worst <= threshold and not listed:
            raise Mistake(f"By your own sweeps, tau = {tau} reaches an argmax test loss of at "
                          f"most {worst:.4f} for every seed, within 20% of the best possible "
                          f"{data['best']:.4f} (limit {threshold:.4f}), but it is not in "
                          "`working_taus`.")
        if listed and worst > threshold:
            raise Mistake(f"`working_taus` lists tau = {tau}, but with seed {seed} your sweep "
                          f"gives it an argmax test loss of {worst:.4f}, more than 20% above the "
                          f"best possible {data['best']:.4f} (limit {threshold:.4f}). Training "
                          "must work for every seed.")
