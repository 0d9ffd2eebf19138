"""Benchmark `lib` against PyTorch's built-ins (issue 9): ``python -m tools.bench``.

Measures in one run, on the same inputs, forward and (where there is one) backward:

* ``lib.relaxed.gumbel_softmax`` (soft and hard; with lib's validation on, its default, and
  off: ``lib.validate_args(False)``) against ``torch.nn.functional.gumbel_softmax``;
* ``lib.gumbel.gumbel_max_sample`` against ``torch.multinomial`` and
  ``torch.distributions.Categorical.sample``, one sample per row and many samples from one row;
* ``lib.relaxed.concrete_log_prob`` against ``torch.distributions.RelaxedOneHotCategorical``'s
  ``log_prob`` (temperature passed as a tensor to both);
* the exact gradient by enumeration (``lib.estimators.exact_gradient_bernoulli``) against
  REINFORCE with a leave-one-out baseline at equal accuracy, as the number of Bernoulli
  variables ``n`` grows.

It prints the tables and writes them to ``assets/benchmark.md`` (for the book) and
``assets/benchmark.csv`` + ``assets/benchmark_estimators.csv`` (all statistics). Those files are
outputs of ``make bench`` only; do not edit them by hand.

How the times are taken, so that the conclusions survive a busy machine: one thread
(``torch.set_num_threads(1)``); the implementations being compared run alternately, round after
round (the starting one rotates), each round timing a block of calls of each; a time is the
median over rounds of the per-call **CPU time of the calling thread** (``time.thread_time``:
with one thread that is all the work, and time spent descheduled by other processes does not
count), and a ratio is the median over rounds of the ratio of two blocks measured back to back
in the same round. Wall-clock ratios are reported next to it as a check. With glibc, the run
first raises malloc's mmap and trim thresholds (``mallopt``), so that freed temporaries stay in
the process: with the defaults, multi-megabyte temporaries are returned to the kernel and
page-faulted back on the next call, depending on the allocator's history, which added 1.5-2x
system time to both sides of a comparison here and made repeated runs disagree
(``--default-allocator`` measures that way).
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import gc
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Categorical, RelaxedOneHotCategorical

from lib._validation import validate_args
from lib.estimators import (
    exact_gradient_bernoulli,
    leave_one_out_baseline,
    reinforce_surrogate,
)
from lib.gumbel import gumbel_max_sample
from lib.relaxed import concrete_log_prob, gumbel_softmax

ROOT = Path(__file__).resolve().parents[1]

#: batch x categories of the issue
SIZES = ((1, 10), (1024, 10), (1024, 1000), (64, 50_000))
#: "many samples from one distribution": this many samples, at these numbers of categories
N_SAMPLES_ONE_ROW = 1024
CATEGORIES_ONE_ROW = (10, 1000, 50_000)
#: numbers of Bernoulli variables for the exact-versus-REINFORCE comparison
N_VARIABLES = (2, 4, 8, 12, 14, 16, 18, 20)
TAU = 0.5
#: targets of issue 9 (largest allowed ratio lib / PyTorch)
TARGET_SAME = 1.0
TARGET_GUMBEL_SOFTMAX_BACKWARD = 0.75
#: targets of issue 15 at the smallest size, forward and forward + backward: fixed per-call
#: costs only, with lib's validation off (no check at all, as F.gumbel_softmax) and on
TINY_SIZE = (1, 10)
TARGET_TINY_VALIDATION_OFF = 1.0
TARGET_TINY_VALIDATION_ON = 1.5
#: the suffix of a pass measured with lib's validation off
VALIDATION_OFF = ", validation off"


def gumbel_softmax_target(size: tuple[int, int], mode: str) -> float:
    """The largest allowed ratio lib / F.gumbel_softmax for ``mode`` at ``size``."""
    if tuple(size) == TINY_SIZE:
        return (TARGET_TINY_VALIDATION_OFF if mode.endswith(VALIDATION_OFF)
                else TARGET_TINY_VALIDATION_ON)
    return TARGET_GUMBEL_SOFTMAX_BACKWARD if "backward" in mode else TARGET_SAME


# ---------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------


def steady_allocator() -> bool:
    """Keep freed memory in the process (glibc malloc only): see the module docstring.

    Returns True if the thresholds were set (False on other platforms: nothing changes).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    mmap_ok = any(mallopt(m_mmap_threshold, size) for size in (1 << 30, 32 << 20))
    return mmap_ok and bool(mallopt(m_trim_threshold, 1 << 30))


@dataclass(frozen=True)
class Settings:
    """How long to measure: rounds per comparison and the CPU-time budget of each."""

    rounds_min: int = 7
    # many rounds where calls are short: at fixed-cost sizes the per-round ratios scatter
    # widely on a busy machine, and the median of 41 moves by about 0.05 (the budget decides)
    rounds_max: int = 201
    budget: float = 1.2  # CPU seconds per comparison group, warm-up excluded
    block: float = 0.004  # CPU seconds per timed block (several calls when calls are short)


QUICK = Settings(rounds_min=3, rounds_max=3, budget=0.02, block=0.0005)


@dataclass
class Timing:
    """Per-call times of one implementation, one entry per round."""

    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    calls_per_block: int = 1

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)


def _calibrate(fn: Callable[[], object], block: float) -> tuple[int, float]:
    """Calls per block so that a block lasts about ``block`` CPU seconds, and the per-call time."""
    number = 1
    while True:
        start = time.thread_time()
        for _ in range(number):
            fn()
        elapsed = time.thread_time() - start
        if elapsed >= block / 4 or number >= 1 << 16:
            per_call = max(elapsed / number, 1e-9)
            return max(1, round(block / per_call)), per_call
        number *= 4


def time_interleaved(fns: dict[str, Callable[[], object]], settings: Settings) -> dict[str, Timing]:
    """Time the callables alternately, round after round; see the module docstring."""
    names = list(fns)
    timings = {name: Timing() for name in names}
    per_round = 0.0
    for name in names:
        fns[name]()  # warm-up: first-call allocations, lazy initialisation
        number, per_call = _calibrate(fns[name], settings.block)
        timings[name].calls_per_block = number
        per_round += number * per_call
    rounds = int(min(settings.rounds_max, max(settings.rounds_min, settings.budget // per_round)))
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                fn, timing = fns[name], timings[name]
                number = timing.calls_per_block
                cpu0, wall0 = time.thread_time(), time.perf_counter()
                for _ in range(number):
                    fn()
                wall1, cpu1 = time.perf_counter(), time.thread_time()
                timing.cpu.append((cpu1 - cpu0) / number)
                timing.wall.append((wall1 - wall0) / number)
    finally:
        if gc_enabled:
            gc.enable()
    return timings


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    values = sorted(values)
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


@dataclass
class Comparison:
    """``ours`` against ``theirs`` in one setting, from the same interleaved rounds."""

    section: str
    case: str
    mode: str
    ours_name: str
    theirs_name: str
    ours: Timing | None
    theirs: Timing | None
    target: float | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.ours is not None and self.theirs is not None

    def _paired(self, attr: str) -> list[float]:
        return [a / b for a, b in zip(getattr(self.ours, attr), getattr(self.theirs, attr))]

    @property
    def ratio(self) -> float:
        """Median over rounds of ours / theirs (CPU time, blocks measured back to back)."""
        return statistics.median(self._paired("cpu")) if self.ok else math.nan

    @property
    def ratio_quartiles(self) -> tuple[float, float]:
        if not self.ok:
            return math.nan, math.nan
        q1, _, q3 = _quartiles(self._paired("cpu"))
        return q1, q3

    @property
    def wall_ratio(self) -> float:
        return statistics.median(self._paired("wall")) if self.ok else math.nan

    @property
    def met(self) -> bool | None:
        if self.target is None or not self.ok:
            return None
        return self.ratio <= self.target


# ---------------------------------------------------------------------------------------------
# the comparisons
# ---------------------------------------------------------------------------------------------


def _size(batch: int, categories: int) -> str:
    return f"{batch:,} x {categories:,}"


def _grad(
    fn: Callable[..., Tensor], leaves: Tensor | tuple[Tensor, ...], grad_out: Tensor
) -> Callable[[], object]:
    """A call of ``fn(*leaves)`` and its backward pass for the upstream gradient ``grad_out``."""
    args = leaves if isinstance(leaves, tuple) else (leaves,)
    return lambda: torch.autograd.grad(fn(*args), args, grad_out)


def bench_gumbel_softmax(
    sizes: Sequence[tuple[int, int]] = SIZES, settings: Settings = Settings(), tau: float = TAU
) -> list[Comparison]:
    """``lib.relaxed.gumbel_softmax`` vs ``F.gumbel_softmax``: forward, forward + backward.

    Each pass is timed twice, with lib's validation on (its default) and off
    (``lib.validate_args(False)`` around the whole timing, so no switching inside the calls).
    """
    rows = []
    for batch, categories in sizes:
        generator = torch.Generator().manual_seed(batch * 100_003 + categories)
        logits = torch.randn(batch, categories, generator=generator)
        grad_out = torch.randn(batch, categories, generator=generator)
        leaf = logits.clone().requires_grad_(True)
        for validate in (True, False):
            for hard in (False, True):
                kind = "hard" if hard else "soft"
                ours = partial(gumbel_softmax, tau=tau, hard=hard)
                theirs = partial(F.gumbel_softmax, tau=tau, hard=hard)
                settings_fns = {
                    f"forward ({kind})": (partial(ours, logits), partial(theirs, logits)),
                    f"forward + backward ({kind})": (
                        _grad(ours, leaf, grad_out), _grad(theirs, leaf, grad_out)),
                }
                for mode, (fo, ft) in settings_fns.items():
                    with validate_args(validate):
                        t = time_interleaved({"lib": fo, "torch": ft}, settings)
                    mode = mode if validate else mode + VALIDATION_OFF
                    rows.append(Comparison(
                        "gumbel_softmax", _size(batch, categories), mode,
                        "lib.relaxed.gumbel_softmax", "F.gumbel_softmax",
                        t["lib"], t["torch"], gumbel_softmax_target((batch, categories), mode)))
    return rows


def bench_sampling(
    sizes: Sequence[tuple[int, int]] = SIZES,
    categories_one_row: Sequence[int] = CATEGORIES_ONE_ROW,
    n_samples: int = N_SAMPLES_ONE_ROW,
    settings: Settings = Settings(),
) -> list[Comparison]:
    """``gumbel_max_sample`` vs ``torch.multinomial`` and ``Categorical.sample``, from logits.

    Samplers that need probabilities get ``softmax(logits)`` inside the timed call (as in the
    Gumbel chapter). Two settings: one sample from each row of ``[batch, categories]`` logits,
    and ``n_samples`` samples from one row of logits.
    """
    rows = []
    settings_list = []
    for batch, categories in sizes:
        generator = torch.Generator().manual_seed(batch * 7 + categories)
        logits = torch.randn(batch, categories, generator=generator)
        settings_list.append((
            _size(batch, categories), "one sample per row",
            {
                "lib": lambda x=logits: gumbel_max_sample(x),
                "torch.multinomial": lambda x=logits: torch.multinomial(torch.softmax(x, -1), 1),
                "Categorical.sample": lambda x=logits: Categorical(logits=x).sample(),
            },
        ))
    for categories in categories_one_row:
        generator = torch.Generator().manual_seed(categories)
        row = torch.randn(categories, generator=generator)
        settings_list.append((
            f"{n_samples:,} from 1 x {categories:,}", f"{n_samples:,} samples from one row",
            {
                "lib": lambda x=row: gumbel_max_sample(x.expand(n_samples, -1)),
                "torch.multinomial": lambda x=row: torch.multinomial(
                    torch.softmax(x, -1), n_samples, replacement=True),
                "Categorical.sample": lambda x=row: Categorical(logits=x).sample((n_samples,)),
            },
        ))
    for case, mode, fns in settings_list:
        t = time_interleaved(fns, settings)
        for baseline in ("torch.multinomial", "Categorical.sample"):
            rows.append(Comparison("sampling", case, mode, "lib.gumbel.gumbel_max_sample",
                                   baseline, t["lib"], t[baseline]))
    return rows


def _lib_concrete(logits: Tensor, y: Tensor, tau: Tensor) -> Tensor:
    return concrete_log_prob(y, logits, tau)


def _torch_concrete(logits: Tensor, y: Tensor, tau: Tensor, validate: bool | None) -> Tensor:
    return RelaxedOneHotCategorical(tau, logits=logits, validate_args=validate).log_prob(y)


def bench_concrete_log_prob(
    sizes: Sequence[tuple[int, int]] = SIZES, settings: Settings = Settings(), tau: float = TAU
) -> list[Comparison]:
    """``concrete_log_prob`` vs ``RelaxedOneHotCategorical(tau, logits=...).log_prob``.

    The distribution is built inside the timed call (its logits are an input). Two baselines:
    PyTorch's defaults (``validate_args`` on, like lib's default) and ``validate_args=False``.
    Forward + backward differentiates with respect to the logits and the point ``y``.
    """
    rows = []
    temperature = torch.tensor(tau)
    for batch, categories in sizes:
        generator = torch.Generator().manual_seed(batch * 31 + categories)
        logits = torch.randn(batch, categories, generator=generator)
        y = gumbel_softmax(logits, tau, generator=generator)
        grad_out = torch.randn(batch, generator=generator)
        leaves = (logits.clone().requires_grad_(True), y.clone().requires_grad_(True))

        candidates = {
            "lib": partial(_lib_concrete, tau=temperature),
            "torch (defaults)": partial(_torch_concrete, tau=temperature, validate=None),
            "torch (no validation)": partial(_torch_concrete, tau=temperature, validate=False),
        }
        note = ""
        try:
            candidates["torch (defaults)"](logits, y)
        except ValueError as error:  # PyTorch rejects the input: say so, compare with the rest
            del candidates["torch (defaults)"]
            what = str(error).split(" but ")[0].rstrip(", ")
            note = (f"at {_size(batch, categories)}, PyTorch with its default `validate_args` "
                    f"raises ValueError: \"{what}\"; its Simplex check requires |sum - 1| < "
                    f"1e-6; whether a float32 sum of {categories:,} terms meets it depends on "
                    f"the CPU's summation kernels")
        for mode in ("forward", "forward + backward"):
            if mode == "forward":
                fns = {k: partial(f, logits, y) for k, f in candidates.items()}
            else:
                fns = {k: _grad(f, leaves, grad_out) for k, f in candidates.items()}
            t = time_interleaved(fns, settings)
            for baseline in ("torch (defaults)", "torch (no validation)"):
                rows.append(Comparison(
                    "concrete_log_prob", _size(batch, categories), mode,
                    "lib.relaxed.concrete_log_prob",
                    f"RelaxedOneHotCategorical.log_prob, {baseline[7:-1]}",
                    t["lib"], t.get(baseline), TARGET_SAME,
                    note if baseline not in t else ""))
    return rows


# --- exact enumeration versus REINFORCE + leave-one-out ---------------------------------------


def _problem(n: int) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """Logits ~ N(0, 1) and targets t ~ U(0, 1) (seeded by n); f(b) = sum_i (b_i - t_i)^2."""
    generator = torch.Generator().manual_seed(1000 + n)
    logits = torch.randn(n, generator=generator)
    targets = torch.rand(n, generator=generator)
    return logits, lambda b: ((b - targets.to(b.dtype)) ** 2).sum(-1)


def reinforce_loo_gradient(
    logits: Tensor,
    f: Callable[[Tensor], Tensor],
    n_samples: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """REINFORCE estimate of grad E_b[f(b)], b_i ~ Bernoulli(sigmoid(logits_i)), with a
    leave-one-out baseline from ``n_samples`` samples, through lib and autograd (as a reader
    would write it: this is what is timed)."""
    samples = torch.bernoulli(torch.sigmoid(logits.detach()).expand(n_samples, -1),
                              generator=generator)
    return reinforce_loo_from_samples(logits, f, samples)


def reinforce_loo_from_samples(
    logits: Tensor, f: Callable[[Tensor], Tensor], samples: Tensor
) -> Tensor:
    """The estimate of :func:`reinforce_loo_gradient` from given samples ``[S, n]``."""
    leaf = logits.detach().requires_grad_(True)
    rewards = f(samples)
    log_prob = -F.binary_cross_entropy_with_logits(
        leaf.expand_as(samples), samples, reduction="none").sum(-1)
    surrogate = reinforce_surrogate(log_prob, rewards, leave_one_out_baseline(rewards))
    (grad,) = torch.autograd.grad(surrogate, leaf)
    return grad


def loo_estimates(
    logits: Tensor,
    f: Callable[[Tensor], Tensor],
    n_samples: int,
    replicates: int,
    generator: torch.Generator,
    max_elements: int = 1 << 22,
) -> Tensor:
    """``replicates`` independent REINFORCE + leave-one-out estimates ``[replicates, n]``, in
    float64, vectorised: the closed form of :func:`reinforce_loo_gradient` (the score of a
    Bernoulli logit is ``b - sigmoid(logit)``)."""
    logits = logits.detach().double()
    n = logits.shape[0]
    probs = torch.sigmoid(logits)
    chunk = max(1, max_elements // (n_samples * n))
    out = []
    for start in range(0, replicates, chunk):
        r = min(chunk, replicates - start)
        samples = torch.bernoulli(probs.expand(r, n_samples, n), generator=generator)
        out.append(loo_from_samples(logits, f, samples))
    return torch.cat(out)


def loo_from_samples(logits: Tensor, f: Callable[[Tensor], Tensor], samples: Tensor) -> Tensor:
    """Closed form of the REINFORCE + leave-one-out estimate from given 0/1 ``samples``
    ``[..., S, n]``: mean_s (f(b_s) - mean_{j != s} f(b_j)) (b_s - sigmoid(logits))."""
    rewards = f(samples)
    n_samples = samples.shape[-2]
    baseline = (rewards.sum(-1, keepdim=True) - rewards) / (n_samples - 1)
    score = samples - torch.sigmoid(logits.detach().to(samples.dtype))
    return ((rewards - baseline).unsqueeze(-1) * score).mean(-2)


def relative_rmse(
    logits: Tensor, f: Callable[[Tensor], Tensor], exact: Tensor, n_samples: int,
    replicates: int, generator: torch.Generator,
) -> float:
    """Measured sqrt(E ||g_hat - g||^2) / ||g|| of the estimator with ``n_samples`` samples."""
    estimates = loo_estimates(logits, f, n_samples, replicates, generator)
    mse = ((estimates - exact.double()) ** 2).sum(-1).mean()
    return float(mse.sqrt() / exact.double().norm())


def samples_for_accuracy(
    logits: Tensor, f: Callable[[Tensor], Tensor], exact: Tensor, accuracy: float,
    replicates: int, generator: torch.Generator, pilot: int = 64,
) -> tuple[int, float]:
    """Smallest sample size S with relative RMSE ~ ``accuracy``, and the RMSE measured at S.

    The mean squared error of the leave-one-out estimator is A/S + O(1/S^2), so
    S = S0 * mse(S0) / target, applied twice from a pilot S0 (the second step removes the
    O(1/S^2) error of the first), then measured with fresh replicates.
    """
    n_samples = pilot
    for _ in range(2):
        rmse = relative_rmse(logits, f, exact, n_samples, replicates, generator)
        n_samples = max(2, math.ceil(n_samples * (rmse / accuracy) ** 2))
    return n_samples, relative_rmse(logits, f, exact, n_samples, replicates, generator)


@dataclass
class EstimatorRow:
    n: int
    n_samples: int
    achieved: float
    exact: Timing
    reinforce: Timing

    @property
    def ratio(self) -> float:
        """Median over rounds of REINFORCE time / exact time."""
        return statistics.median(a / b for a, b in zip(self.reinforce.cpu, self.exact.cpu))


def bench_estimators(
    ns: Sequence[int] = N_VARIABLES, settings: Settings = Settings(), accuracy: float = 0.1,
    replicates: int = 200,
) -> list[EstimatorRow]:
    """Exact gradient by enumeration vs REINFORCE + leave-one-out with the samples it needs to
    reach relative RMSE ``accuracy`` (measured), for each number of variables ``n``."""
    rows = []
    for n in ns:
        logits, f = _problem(n)
        exact = exact_gradient_bernoulli(logits, f)
        n_samples, achieved = samples_for_accuracy(
            logits, f, exact, accuracy, replicates, torch.Generator().manual_seed(n))
        t = time_interleaved({
            "exact": lambda x=logits, f=f: exact_gradient_bernoulli(x, f),
            "reinforce": lambda x=logits, f=f, s=n_samples: reinforce_loo_gradient(x, f, s),
        }, settings)
        rows.append(EstimatorRow(n, n_samples, achieved, t["exact"], t["reinforce"]))
    return rows


def growth(xs: Sequence[float], ys: Sequence[float], log_x: bool) -> float:
    """Least-squares slope of log(y) against x (log_x=False) or log(x) (log_x=True)."""
    u = [math.log(x) if log_x else float(x) for x in xs]
    v = [math.log(y) for y in ys]
    mu, mv = sum(u) / len(u), sum(v) / len(v)
    return sum((a - mu) * (b - mv) for a, b in zip(u, v)) / sum((a - mu) ** 2 for a in u)


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------


def fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "n/a"
    unit, scale = next(((u, s) for u, s in (("s", 1.0), ("ms", 1e-3)) if seconds >= s),
                       ("µs", 1e-6))
    return f"{seconds / scale:.3g} {unit}"


def _ratio_cell(c: Comparison) -> str:
    if not c.ok:
        return "n/a"
    q1, q3 = c.ratio_quartiles
    return f"**{c.ratio:.2f}** ({q1:.2f}-{q3:.2f})"


def _met_cell(c: Comparison) -> str:
    if c.met is None:
        return "" if c.target is None else "n/a"
    return f"<= {c.target:g}: {'yes' if c.met else '**no**'}"


def comparison_table(rows: Sequence[Comparison], with_target: bool = True) -> list[str]:
    head = ["size", "pass", "lib", "PyTorch", "PyTorch function", "lib / PyTorch (IQR)",
            "wall-clock ratio"] + (["target"] if with_target else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in rows:
        cells = [c.case, c.mode, fmt_time(c.ours.cpu_median) if c.ours else "n/a",
                 fmt_time(c.theirs.cpu_median) if c.theirs else "n/a", f"`{c.theirs_name}`",
                 _ratio_cell(c), f"{c.wall_ratio:.2f}" if c.ok else "n/a"]
        if with_target:
            cells.append(_met_cell(c))
        lines.append("| " + " | ".join(cells) + " |")
    notes = sorted({c.note for c in rows if c.note})
    if notes:
        lines += [""] + [f"Note: {note}." for note in notes]
    return lines


def estimator_table(rows: Sequence[EstimatorRow], accuracy: float) -> list[str]:
    lines = [
        "| n | configurations 2^n | exact gradient | REINFORCE+LOO samples S | measured "
        "relative RMSE | REINFORCE+LOO time | REINFORCE / exact |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.n} | {2 ** r.n:,} | {fmt_time(r.exact.cpu_median)} | {r.n_samples:,} | "
            f"{r.achieved:.3f} | {fmt_time(r.reinforce.cpu_median)} | {r.ratio:.3g} |")
    if len(rows) >= 3:
        big = [r for r in rows if r.n >= 12]  # past the fixed per-call costs
        big = big if len(big) >= 2 else list(rows)
        per_variable = math.exp(growth([r.n for r in big], [r.exact.cpu_median for r in big],
                                       log_x=False))
        s_power = growth([r.n for r in rows], [r.n_samples for r in rows], log_x=True)
        t_power = growth([r.n for r in big], [r.reinforce.cpu_median for r in big], log_x=True)
        lines += ["", (
            f"Growth (least-squares fits): the exact gradient's time is multiplied by "
            f"{per_variable:.2f} per extra variable for n >= {big[0].n} (it enumerates 2^n "
            f"configurations of n entries); the samples REINFORCE+LOO needs for a relative "
            f"RMSE of {accuracy:g} grow like n^{s_power:.2f}, and its time like "
            f"n^{t_power:.2f} for n >= {big[0].n} (S samples of n entries each).")]
        cheaper = [r.n for i, r in enumerate(rows) if all(s.ratio < 1 for s in rows[i:])]
        if cheaper:
            lines.append(f"REINFORCE+LOO is cheaper than enumeration for every measured n >= "
                         f"{cheaper[0]}.")
    return lines


def gumbel_chapter_check(rows: Sequence[Comparison]) -> list[str]:
    """Compare the sampling numbers with what chapters/03_gumbel_max.ipynb says."""
    multi = [c for c in rows if c.section == "sampling" and c.theirs_name == "torch.multinomial"]
    per_row = [c for c in multi if c.mode == "one sample per row"]
    one_row = [c for c in multi if c.mode != "one sample per row"]
    lines = []
    if per_row:
        lines.append("One sample per row: all three run the Gumbel-max trick, lib with a "
                     "uniform draw and two logarithms per category, `torch.multinomial(probs, "
                     "1)` and `Categorical.sample()` (which calls `torch.multinomial(probs, 1, "
                     "True)`, the same path) with an exponential draw and a division; "
                     "lib / multinomial = "
                     + ", ".join(f"{c.ratio:.2f} at {c.case}" for c in per_row) + ".")
    if one_row:
        ratios = [c.ratio for c in one_row]
        widening = all(b > a for a, b in zip(ratios, ratios[1:]))
        lines.append(
            "Many samples from one row (`torch.multinomial` with replacement: one cumulative "
            "sum, then a binary search per sample; Gumbel-max draws K noise values per "
            "sample): lib / multinomial = "
            + ", ".join(f"{c.ratio:.3g} at {c.case}" for c in one_row)
            + (": the gap widens with K, as chapter 3 says." if widening and ratios[-1] > 1
               else ": NOT the widening gap chapter 3 describes; check the chapter."))
    return lines


def targets_summary(rows: Sequence[Comparison]) -> list[str]:
    """Which targets were met; for misses at tiny sizes, the reason (fixed per-call costs)."""
    judged = [c for c in rows if c.met is not None]
    missed = [c for c in judged if not c.met]
    if not judged:
        return []
    if not missed:
        return [f"All {len(judged)} targets met."]
    lines = [f"{len(judged) - len(missed)} of {len(judged)} targets met; missed: "
             + "; ".join(f"{c.section} at {c.case}, {c.mode} ({c.ratio:.2f} > {c.target:g})"
                         for c in missed) + "."]
    tiny = [c for c in missed if c.section == "gumbel_softmax"
            and math.prod(int(v.replace(",", "")) for v in c.case.split(" x ")) <= 100]
    if tiny:
        lines.append(
            "At the tiny size(s) the time is fixed per-call cost, a few microseconds per "
            "PyTorch operation and per Python call whatever the size: lib makes eight "
            "operations (a uniform draw, a `clamp_` that keeps it strictly inside (0, 1), two "
            "logarithms and a negation, the subtraction, the division by tau, the softmax) "
            "where `F.gumbel_softmax` makes seven, and with validation on it also reads the "
            "logits back once (`.tolist()`, the price of a ValueError instead of a silent "
            "NaN).")
    other = sorted({c.case for c in missed if c.section == "gumbel_softmax" and c not in tiny})
    if other:
        lines.append(
            f"At {', '.join(other)}: the operations both implementations share (the softmax "
            "and its backward along only a few categories, the division by tau and its "
            "backward, autograd's bookkeeping and, for hard samples, the argmax and the "
            "scatter) cost as much as the noise there, so drawing the noise by inverse CDF (a "
            "uniform draw and two logarithms instead of an exponential draw and one) saves "
            "less than a quarter of the total.")
    return lines


def machine_description() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}, "
            f"torch {torch.__version__}, {torch.get_num_threads()} thread")


def render_markdown(
    gumbel_rows: Sequence[Comparison], sampling_rows: Sequence[Comparison],
    concrete_rows: Sequence[Comparison], estimator_rows: Sequence[EstimatorRow],
    meta: dict[str, str], accuracy: float = 0.1,
) -> str:
    lines = [
        "# Benchmark: `lib` against PyTorch's built-ins",
        "",
        f"Generated by `make bench` (`python -m tools.bench`) on {meta.get('date', '?')} in "
        f"{meta.get('duration', '?')}: {meta.get('machine', '?')}, "
        f"{meta.get('allocator', '?')}. Load average (1 min) {meta.get('load', '?')} during "
        "the run.",
        "",
        "Times are medians over interleaved rounds of the per-call CPU time of the calling "
        "thread (`time.thread_time`; one thread does all the work, and time lost to other "
        "processes does not count). A ratio is the median over rounds of lib / PyTorch for "
        "two blocks measured back to back, with its interquartile range; below 1 means lib "
        "is faster. The wall-clock ratio is the same statistic on `time.perf_counter`. "
        f"Relaxed samples use tau = {TAU}; forward + backward is `torch.autograd.grad` of "
        "the output against a fixed random upstream gradient.",
        "",
    ]
    if gumbel_rows:
        lines += ["## Gumbel-softmax: `lib.relaxed.gumbel_softmax` vs "
                  "`torch.nn.functional.gumbel_softmax`", "",
                  f"Targets: from {_size(1024, 10)} up (issue 9), at most {TARGET_SAME:g}x "
                  f"forward and {TARGET_GUMBEL_SOFTMAX_BACKWARD:g}x forward + backward; at "
                  f"{_size(*TINY_SIZE)}, where the time is fixed per-call cost (issue 15), at "
                  f"most {TARGET_TINY_VALIDATION_OFF:g}x with lib's validation off and "
                  f"{TARGET_TINY_VALIDATION_ON:g}x with it on, forward and forward + backward. "
                  "Rows marked \"validation off\" are timed inside `lib.validate_args(False)` "
                  "(lib then checks nothing, as `F.gumbel_softmax`); the others with lib's "
                  "default, validation on (the arguments checked, the logits read once for "
                  "NaN and infinities).", ""]
        lines += comparison_table(gumbel_rows) + [""]
        lines += targets_summary(gumbel_rows) + [""]
    if sampling_rows:
        lines += ["## Categorical sampling: `lib.gumbel.gumbel_max_sample` vs "
                  "`torch.multinomial` and `Categorical.sample`", "",
                  "From logits; samplers that need probabilities include the softmax. No "
                  "target: these are different algorithms (see below).", ""]
        lines += comparison_table(sampling_rows, with_target=False) + [""]
        lines += gumbel_chapter_check(sampling_rows) + [""]
    if concrete_rows:
        lines += ["## Concrete log-density: `lib.relaxed.concrete_log_prob` vs "
                  "`RelaxedOneHotCategorical.log_prob`", "",
                  "Temperature passed as a tensor to both; the distribution is built inside "
                  "the timed call (its logits are an input). lib is timed with its default, "
                  "validation on; PyTorch with its defaults (`validate_args` on) and "
                  "without validation. Target: at most 1x.", ""]
        lines += comparison_table(concrete_rows) + [""]
        lines += targets_summary(concrete_rows) + [""]
    if estimator_rows:
        lines += [
            "## Exact gradient by enumeration vs REINFORCE with a leave-one-out baseline",
            "",
            "Problem: n independent Bernoulli(sigmoid(logits_i)) variables, logits ~ N(0, 1) "
            "and targets t ~ U(0, 1) (seeded by n), cost f(b) = sum_i (b_i - t_i)^2. Exact: "
            "`lib.estimators.exact_gradient_bernoulli` (all 2^n configurations). REINFORCE: "
            "S samples, `leave_one_out_baseline`, `reinforce_surrogate`, autograd. Equal "
            f"accuracy: S is the sample size whose relative RMSE, sqrt(E||g_hat - g||^2) / "
            f"||g||, is {accuracy:g}, found from measured errors (200 independent estimates "
            "per S, against the exact gradient) and measured again at S.",
            "",
        ]
        lines += estimator_table(estimator_rows, accuracy) + [""]
    return "\n".join(lines)


def write_csv(rows: Sequence[Comparison], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["section", "case", "mode", "ours", "baseline", "ours_cpu_s",
                         "baseline_cpu_s", "ratio_cpu", "ratio_q25", "ratio_q75",
                         "ours_wall_s", "baseline_wall_s", "ratio_wall", "rounds", "target",
                         "met", "note"])
        for c in rows:
            q1, q3 = c.ratio_quartiles
            writer.writerow([
                c.section, c.case, c.mode, c.ours_name, c.theirs_name,
                f"{c.ours.cpu_median:.4g}" if c.ours else "",
                f"{c.theirs.cpu_median:.4g}" if c.theirs else "",
                f"{c.ratio:.4g}", f"{q1:.4g}", f"{q3:.4g}",
                f"{c.ours.wall_median:.4g}" if c.ours else "",
                f"{c.theirs.wall_median:.4g}" if c.theirs else "",
                f"{c.wall_ratio:.4g}", len(c.ours.cpu) if c.ours else 0,
                "" if c.target is None else c.target,
                "" if c.met is None else c.met, c.note])


def write_estimator_csv(rows: Sequence[EstimatorRow], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["n", "configurations", "reinforce_samples", "relative_rmse",
                         "exact_cpu_s", "reinforce_cpu_s", "reinforce_over_exact", "rounds"])
        for r in rows:
            writer.writerow([r.n, 2 ** r.n, r.n_samples, f"{r.achieved:.4g}",
                             f"{r.exact.cpu_median:.4g}", f"{r.reinforce.cpu_median:.4g}",
                             f"{r.ratio:.4g}", len(r.exact.cpu)])


SECTIONS = ("gumbel_softmax", "sampling", "concrete_log_prob", "estimators")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(ROOT / "assets"),
                        help="where benchmark.md and the CSV files go (default: assets/)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="run only these sections")
    parser.add_argument("--default-allocator", action="store_true",
                        help="do not change glibc malloc's thresholds (see the docstring)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few rounds: checks that the script runs")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    torch.manual_seed(0)
    allocator = "default malloc settings" if args.default_allocator else (
        "malloc thresholds raised" if steady_allocator() else "default allocator")
    settings = QUICK if args.quick else Settings()
    sizes = ((1, 10), (64, 100)) if args.quick else SIZES
    one_row = (10, 100) if args.quick else CATEGORIES_ONE_ROW
    ns = (2, 4, 6) if args.quick else N_VARIABLES
    load0, start = os.getloadavg()[0], time.perf_counter()

    def run(name, fn):
        if name not in args.only:
            return []
        t0 = time.perf_counter()
        result = fn()
        print(f"[{name}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)
        return result

    gumbel_rows = run("gumbel_softmax", lambda: bench_gumbel_softmax(sizes, settings))
    sampling_rows = run("sampling", lambda: bench_sampling(sizes, one_row, settings=settings))
    concrete_rows = run("concrete_log_prob", lambda: bench_concrete_log_prob(sizes, settings))
    estimator_rows = run("estimators", lambda: bench_estimators(
        ns, settings, replicates=50 if args.quick else 200))

    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "duration": f"{time.perf_counter() - start:.0f} s",
        "machine": machine_description(),
        "load": f"{load0:.1f} -> {os.getloadavg()[0]:.1f}",
        "allocator": allocator,
    }
    text = render_markdown(gumbel_rows, sampling_rows, concrete_rows, estimator_rows, meta)
    print(text)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.md").write_text(text + "\n")
    write_csv([*gumbel_rows, *sampling_rows, *concrete_rows], out / "benchmark.csv")
    write_estimator_csv(estimator_rows, out / "benchmark_estimators.csv")
    print(f"wrote {out / 'benchmark.md'}, benchmark.csv, benchmark_estimators.csv",
          file=sys.stderr)
    missed = [c for c in [*gumbel_rows, *concrete_rows] if c.met is False]
    if missed:
        print(f"{len(missed)} target(s) missed: "
              + "; ".join(f"{c.section} {c.case} {c.mode} vs {c.theirs_name} "
                          f"({c.ratio:.2f} > {c.target:g})" for c in missed), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
