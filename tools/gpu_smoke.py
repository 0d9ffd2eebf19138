"""Each chapter's core calls on a GPU, in a few seconds: ``make gpu-smoke``.

    python -m tools.gpu_smoke                 # on CUDA; says "skipped" and exits 0 without one
    python -m tools.gpu_smoke --device cpu    # the same checks on the CPU (tests the script)

Every check runs the book's calls on the device twice, with a CPU generator and with a
generator on the device (the two kinds the convention of :mod:`lib.rng` allows), and checks
that every tensor it returns is on the device and every number is finite. With the CPU
generator the random numbers are those of a CPU run with the same seed, so the results are
also compared with a CPU run: equal where they are discrete (indices, one-hot samples), equal
up to floating-point rounding otherwise (TF32 is switched off for the run so that matrix
products round as on the CPU). A short table is printed; the exit status is 1 if a check fails.

The checks: the Gumbel samplers, Gumbel-softmax (soft and hard, with gradients), the relaxed
Bernoulli, perturb-and-MAP, every estimator of :mod:`lib.compare` and ``measure`` on a small
problem, the temperature experiment, and a few training steps of the bottleneck autoencoder
(chapter 5), the rationale model (chapter 9) and the VAE (chapter 10).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lib import bottleneck, compare, gumbel, rationales, relaxed, structured, temperature, vae
from lib.estimators import estimator_names

SEED = 0

Outputs = dict[str, "Tensor | np.ndarray"]


@dataclass
class Check:
    """One row of the table: ``run(device, generator) -> named outputs``."""

    name: str
    run: Callable[[torch.device, torch.Generator | None], Outputs]
    rtol: float = 1e-5  # tolerance of the comparison with the CPU run (floating outputs)
    atol: float = 1e-6
    uses_generator: bool = True  # False: seeded inside (one row, no device generator)


@dataclass
class Row:
    check: str
    generator: str
    on_device: bool
    finite: bool
    versus_cpu: str
    seconds: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return (not self.error and self.on_device and self.finite
                and not self.versus_cpu.startswith("DIFFERENT"))


# ------------------------------------------------------------------------------------ inputs


def _logits(device: torch.device, rows: int = 256, k: int = 10) -> Tensor:
    scores = torch.randn(rows, k, generator=torch.Generator().manual_seed(123))
    return scores.to(device)


def _categorical_problem(device: torch.device) -> compare.CategoricalProblem:
    cost = torch.tensor([1.0, 2.0, 4.0, 0.5, 3.0], device=device)
    logits = torch.tensor([0.5, -1.0, 0.2, 0.0, 1.0], device=device)
    return compare.CategoricalProblem(logits, lambda z: z @ cost, name="linear")


def _bernoulli_problem(device: torch.device) -> compare.BernoulliProblem:
    target = torch.tensor([0.45, 0.55, 0.1, 0.9], device=device)
    logits = torch.tensor([0.3, -0.2, 1.0, 0.0], device=device)
    return compare.BernoulliProblem(logits, lambda b: ((b - target) ** 2).sum(-1), name="toy")


# ------------------------------------------------------------------------------------ checks


def _gumbel_samplers(device, g) -> Outputs:
    logits = _logits(device)
    return {
        "sample_gumbel": gumbel.sample_gumbel((64, 10), generator=g, device=device),
        "gumbel_max_sample": gumbel.gumbel_max_sample(logits, generator=g),
        "gumbel_topk_sample": gumbel.gumbel_topk_sample(logits, 3, generator=g),
        "tempered_sample": relaxed.tempered_sample(logits, 0.5, generator=g),
        "perturb_and_map_chain": structured.perturb_and_map_chain(
            logits[0], logits[1, :9], 32, generator=g),
    }


def _gumbel_softmax(device, g) -> Outputs:
    out = {}
    weights = torch.linspace(-1.0, 1.0, 10, device=device)
    for hard in (False, True):
        leaf = _logits(device).requires_grad_(True)
        y = relaxed.gumbel_softmax(leaf, 0.5, hard=hard, generator=g)
        (grad,) = torch.autograd.grad((y * weights).sum(), leaf)
        label = "hard" if hard else "soft"
        out[f"{label} sample"], out[f"{label} gradient"] = y.detach(), grad
    return out


def _relaxed_bernoulli(device, g) -> Outputs:
    out = {}
    for hard in (False, True):
        leaf = _logits(device, 64, 8).requires_grad_(True)
        z = relaxed.relaxed_bernoulli(leaf, 2 / 3, hard=hard, generator=g)
        (grad,) = torch.autograd.grad(z.sum(), leaf)
        label = "hard" if hard else "soft"
        out[f"{label} sample"], out[f"{label} gradient"] = z.detach(), grad
    return out


def _estimators(device, g) -> Outputs:
    out = {}
    for problem in (_categorical_problem(device), _bernoulli_problem(device)):
        for name in compare.ESTIMATORS:
            if name in estimator_names() and name not in estimator_names(problem.kind):
                continue  # e.g. ARM and DisARM exist for Bernoulli variables only
            out[f"{problem.kind} {name}"] = compare.get_estimator(name)(problem, None, 16, 8, g)
    return out


def _measure(device, g) -> Outputs:
    problem = _categorical_problem(device)
    m = compare.measure(problem, compare.get_estimator("st_gumbel_softmax", tau=0.5), 8, 64, g)
    path = compare.optimise(problem, compare.get_estimator("reinforce_moving_average"),
                            n_steps=5, lr=0.1, n_samples=4, n_runs=3, generator=g,
                            optimizer="adam")
    return {"mean": m.mean, "variance": m.variance, "mse": np.array(m.mse),
            "optimise logits": path.logits, "optimise value": path.value}


def _temperature(device, g) -> Outputs:
    r = temperature.temperature_experiment(torch.tensor([1.0, 0.0, -1.0], device=device),
                                           (0.5, 2.0), 500, generator=g)
    # the samples are drawn on the device; the results are on the CPU by contract
    return {"tempered": r.tempered.numpy(), "mean_relaxed": r.mean_relaxed.numpy()}


def _autoencoder(device, g) -> Outputs:
    run = bottleneck.train_autoencoder(["gumbel_softmax", "st_gumbel_softmax", "exact"], 1.0,
                                       n_steps=20, n_train=256, n_test=256, n_eval_samples=2,
                                       seed=SEED, device=device)
    out = {"train_loss": run.train_loss, **{f"test {k}": v for k, v in run.test.items()}}
    out.update({f"weight {k}": v.detach() for k, v in run.model.named_parameters()})
    return out


def _rationales(device, g) -> Outputs:
    train = rationales.make_synthetic_reviews(64, seed=0)
    test = rationales.make_synthetic_reviews(32, seed=1)
    out = {}
    for estimator in ("st_gumbel_softmax", "reinforce_loo"):
        torch.manual_seed(SEED)  # the same initial weights on every device
        model = rationales.RationaleModel(len(train.vocab)).to(device)
        history = rationales.train_rationale_model(
            model, train, test, estimator, n_steps=5, batch_size=16, eval_every=5,
            generator=g, progress=False)
        out[f"{estimator} train cost"] = np.array(history.train_cost[1:])
        out[f"{estimator} test accuracy"] = history.series("accuracy")
        out.update({f"{estimator} {k}": v.detach() for k, v in model.named_parameters()})
        out[f"{estimator} sampled-mask accuracy"] = np.array(rationales.evaluate_rationales(
            model, test, selection="sample", generator=g)["accuracy"])
    return out


_DIGITS: list[vae.DigitsData] = []


def _vae(device, g) -> Outputs:
    if not _DIGITS:
        _DIGITS.append(vae.load_binarized_digits(threshold=8, test_size=360, seed=0))
    data = _DIGITS[0]
    out = {}
    for estimator in ("st_gumbel_softmax", "reinforce_loo"):
        torch.manual_seed(SEED)  # the same initial weights on every device
        model = vae.CategoricalVAE(4, 5, 32, n_models=2).to(device)
        history = vae.train_vae(model, data, estimator, n_epochs=1, batch_size=200,
                                n_samples=2, eval_every=1, n_eval_samples=2, generator=g,
                                progress=False)
        out[f"{estimator} train objective"] = history.train_objective
        out[f"{estimator} test -ELBO"] = history.test_negative_elbo
        out[f"{estimator} -ELBO"] = vae.discrete_negative_elbo(
            model, data.test[:50].to(device), n_samples=2, generator=g)
        out[f"{estimator} prior samples"] = model.sample_prior(4, generator=g)
    return out


CHECKS = [
    Check("Gumbel samplers (ch. 3)", _gumbel_samplers),
    Check("Gumbel-softmax soft/hard (ch. 4-6)", _gumbel_softmax),
    Check("relaxed Bernoulli (ch. 6, 9)", _relaxed_bernoulli),
    Check("estimators (ch. 5-8)", _estimators, rtol=1e-4, atol=1e-5),
    Check("measure, optimise (ch. 5-8)", _measure, rtol=1e-4, atol=1e-5),
    Check("temperature experiment (ch. 4)", _temperature),
    # training: Adam turns rounding differences of tiny gradients into differences of up to
    # lr per step, so the tolerance is looser; another random stream (other mini-batches,
    # other noise) still differs by far more
    Check("autoencoder, 20 steps (ch. 5)", _autoencoder, rtol=1e-2, atol=1e-3,
          uses_generator=False),
    Check("rationale model, 5 steps (ch. 9)", _rationales, rtol=1e-2, atol=1e-3),
    Check("VAE, 1 epoch (ch. 10)", _vae, rtol=1e-2, atol=1e-3),
]


# ------------------------------------------------------------------------------- evaluation


def _tensors(outputs: Outputs) -> dict[str, Tensor]:
    return {k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v.detach().cpu()
            for k, v in outputs.items()}


def _compare(outputs: Outputs, reference: Outputs, rtol: float, atol: float) -> str:
    """``exact`` / ``max rel. diff 1e-07`` / ``DIFFERENT: <name> ...``, output by output."""
    worst = 0.0
    ours, theirs = _tensors(outputs), _tensors(reference)
    for name, a in ours.items():
        b = theirs[name]
        if a.shape != b.shape or a.dtype != b.dtype:
            return f"DIFFERENT: {name} {tuple(a.shape)} {a.dtype} vs {tuple(b.shape)} {b.dtype}"
        if not a.is_floating_point():
            if not torch.equal(a, b):
                return f"DIFFERENT: {name} ({int((a != b).sum())} of {a.numel()} entries)"
            continue
        a, b = a.double(), b.double()
        if not torch.allclose(a, b, rtol=rtol, atol=atol):
            excess = ((a - b).abs() - rtol * b.abs()).max().item()
            return f"DIFFERENT: {name} (by {excess:.2g} beyond rtol {rtol:g}, atol {atol:g})"
        if a.numel():
            worst = max(worst, ((a - b).abs() / b.abs().clamp_min(atol)).max().item())
    return "exact" if worst == 0 else f"max rel. diff {worst:.1e}"


def _check_outputs(outputs: Outputs, device: torch.device) -> tuple[bool, bool]:
    on_device = all(v.device.type == device.type for v in outputs.values()
                    if isinstance(v, Tensor))
    finite = all(bool(torch.isfinite(t).all()) for t in _tensors(outputs).values()
                 if t.is_floating_point())
    return on_device, finite


def run_checks(device: torch.device, checks: list[Check] = CHECKS) -> list[Row]:
    """Every check with a CPU generator (compared with a CPU run) and a device generator."""
    rows = []
    cpu = torch.device("cpu")
    for check in checks:
        kinds = [("cpu", lambda: torch.Generator().manual_seed(SEED))]
        if check.uses_generator:
            kinds.append(("device", lambda: torch.Generator(device=device).manual_seed(SEED)))
        for kind, make in kinds:
            start = time.perf_counter()
            label = kind if check.uses_generator else "seed (cpu)"
            try:
                outputs = check.run(device, make())
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - start
                on_device, finite = _check_outputs(outputs, device)
                versus = "n/a (another stream)"
                if kind == "cpu":
                    reference = check.run(cpu, torch.Generator().manual_seed(SEED))
                    versus = _compare(outputs, reference, check.rtol, check.atol)
                rows.append(Row(check.name, label, on_device, finite, versus, seconds))
            except Exception as error:  # a failing check is a row of the report, not a crash
                rows.append(Row(check.name, label, False, False, "", 0.0,
                                f"{type(error).__name__}: {error}"))
    return rows


def format_rows(rows: list[Row], device: torch.device) -> str:
    head = (f"{'check':36}{'generator':12}{'on ' + device.type:>9}{'finite':>8}  "
            f"{'vs CPU run':30}{'time':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.error:
            lines.append(f"{r.check:36}{r.generator:12}  FAILED: {r.error.splitlines()[0]}")
            continue
        lines.append(f"{r.check:36}{r.generator:12}{'yes' if r.on_device else 'NO':>9}"
                     f"{'yes' if r.finite else 'NO':>8}  {r.versus_cpu:30}{r.seconds:6.2f}s")
    failed = [r for r in rows if not r.ok]
    lines.append(f"{len(rows) - len(failed)} of {len(rows)} passed"
                 + ("" if not failed else ": " + "; ".join(
                     f"{r.check} [{r.generator}]" for r in failed)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda",
                        help="cuda (default), cuda:N, or cpu to test the script itself")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"no CUDA device: skipped (torch {torch.__version__}, "
              f"torch.cuda.is_available() is False)")
        return 0
    if device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device() if device.index is None
                              else device.index)
        torch.backends.cuda.matmul.allow_tf32 = False  # round like the CPU run
        torch.backends.cudnn.allow_tf32 = False
        name = torch.cuda.get_device_name(device)
    else:
        name = "the CPU (a test of this script: every comparison should be exact)"
    torch.set_num_threads(1)  # tiny tensors; the CPU reference runs are faster on one thread
    start = time.perf_counter()
    rows = run_checks(device)
    print(f"gpu-smoke on {device} ({name}), torch {torch.__version__}")
    print(format_rows(rows, device))
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
