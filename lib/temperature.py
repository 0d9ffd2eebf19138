r"""What the temperature does: the lecture's experiment, made precise.

Three quantities built from the same scores :math:`x` and Gumbel noise :math:`G` are easy to
confuse, and they react to the temperature :math:`\tau` in three different ways:

* **tempered sample** :math:`\arg\max_k (x_k/\tau + G_k)`: an exact sample of
  :math:`\mathrm{softmax}(x/\tau)` (Gumbel-max applied to the scaled scores). Peakier than
  :math:`\mathrm{softmax}(x)` for :math:`\tau < 1`, flatter for :math:`\tau > 1`;
* **argmax of a Gumbel-softmax sample** :math:`\arg\max_k \mathrm{softmax}((x + G)/\tau)_k =
  \arg\max_k (x_k + G_k)`: distributed as :math:`\mathrm{softmax}(x)` for *every* :math:`\tau`;
* **mean of the relaxed vectors** :math:`\mathbb{E}[\mathrm{softmax}((x + G)/\tau)]`: tends to
  :math:`\mathrm{softmax}(x)` as :math:`\tau \to 0` and to the uniform vector as
  :math:`\tau \to \infty`.

:func:`temperature_experiment` samples all three for a list of temperatures and measures their
total-variation distance to :math:`\mathrm{softmax}(x)`. To tell an effect from sampling
noise it also returns, computed exactly from the probabilities, the expected distance of an
empirical distribution of ``n_samples`` draws (:func:`expected_empirical_tv`) and the noise
floor (:func:`tv_noise_floor`).

References:
    E. Jang, S. Gu, B. Poole (2017), *Categorical Reparameterization with Gumbel-Softmax*, ICLR.
    C. J. Maddison, A. Mnih, Y. W. Teh (2017), *The Concrete Distribution*, ICLR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import special
from torch import Tensor

from lib._validation import (
    check_broadcast,
    check_generator,
    check_int,
    check_logits,
    check_tau,
    check_tensor,
    type_name,
    validating,
)
from lib.relaxed import gumbel_softmax, tempered_sample

__all__ = [
    "QUANTITIES",
    "TemperatureExperiment",
    "expected_empirical_tv",
    "plot_temperature_grid",
    "plot_tv_curves",
    "temperature_experiment",
    "total_variation",
    "tv_noise_floor",
    "tv_sd_bound",
]

#: The three quantities of the experiment: attribute name -> (short label, formula label).
QUANTITIES = {
    "tempered": ("tempered sample", r"$\arg\max_k\,(x_k/\tau + G_k)$"),
    "argmax_relaxed": ("argmax of Gumbel-softmax", r"$\arg\max_k\,\mathrm{softmax}((x+G)/\tau)_k$"),
    "mean_relaxed": ("mean of Gumbel-softmax", r"mean of $\mathrm{softmax}((x+G)/\tau)$"),
}


def _check_probs(p: Tensor, name: str) -> Tensor:
    check_tensor(p, name)
    if p.dim() != 1 or p.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D tensor [K], got shape {tuple(p.shape)}")
    if not validating():
        return p.double()
    if not bool(torch.isfinite(p).all()) or not bool((p >= 0).all()):
        raise ValueError(f"{name} must be finite and >= 0, got {p.tolist()}")
    if abs(float(p.double().sum()) - 1.0) > 1e-6:
        raise ValueError(
            f"{name} must sum to 1 (a probability vector), got sum {float(p.double().sum()):.8g}"
        )
    return p.double()


def total_variation(p: Tensor, q: Tensor, *, dim: int = -1) -> Tensor:
    r"""Total-variation distance between probability vectors.

    .. math:: \mathrm{TV}(p, q) = \tfrac12 \sum_k |p_k - q_k| = \max_A |p(A) - q(A)|,

    a number in [0, 1]: 0 for equal distributions, 1 for disjoint supports.

    Args:
        p: floating tensor ``[..., K]``.
        q: floating tensor broadcastable with ``p``.
        dim: the category dimension.

    Returns:
        Tensor of the broadcast shape with ``dim`` removed.

    Example:
        >>> total_variation(torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5]))
        tensor(0.5000)
    """
    check_tensor(p, "p")
    check_tensor(q, "q")
    check_broadcast([p.shape, q.shape], ["p", "q"])
    return 0.5 * (p - q).abs().sum(dim=dim)


def expected_empirical_tv(probs: Tensor, reference: Tensor, n_samples: int) -> float:
    r"""Exact expected TV between the empirical distribution of ``n_samples`` draws and a target.

    If :math:`\hat p` is the empirical distribution of :math:`n` i.i.d. draws from ``probs``
    (:math:`p`), each count :math:`n\hat p_k` is :math:`\mathrm{Binomial}(n, p_k)`, so by
    linearity of expectation

    .. math:: \mathbb{E}\,\mathrm{TV}(\hat p, q) = \tfrac12 \sum_k \sum_{j=0}^{n}
              \binom{n}{j} p_k^j (1-p_k)^{n-j}\, \Big|\frac{j}{n} - q_k\Big|,

    computed here by summing over every count (exact up to float64 rounding). With
    ``reference = probs`` this is the noise floor (:func:`tv_noise_floor`); with
    ``reference`` far from ``probs`` it approaches :math:`\mathrm{TV}(p, q)`.

    Args:
        probs: probabilities ``[K]`` the draws come from (finite, >= 0, summing to 1: checked
            with validation on, see :func:`lib.set_default_validate_args`).
        reference: probabilities ``[K]`` the empirical distribution is compared with (as
            ``probs``).
        n_samples: number of draws ``n >= 1``.

    Returns:
        The expectation as a float.

    Example:
        >>> p = torch.tensor([0.5, 0.5])
        >>> expected_empirical_tv(p, p, 1)  # one draw: the empirical law is a corner
        0.5
    """
    p = _check_probs(probs, "probs")
    q = _check_probs(reference, "reference")
    if p.shape != q.shape:
        raise ValueError(
            f"probs {tuple(p.shape)} and reference {tuple(q.shape)} must have the same shape"
        )
    n = check_int(n_samples, "n_samples", min_value=1)
    counts = np.arange(n + 1, dtype=np.float64)[None, :]
    pk = p.cpu().numpy()[:, None]
    # log Binomial(n, p_k) pmf of every count, [K, n+1]; xlogy/xlog1py give 0 * log 0 = 0, so
    # p_k = 0 or 1 (and tiny p_k, where scipy.stats.binom.pmf overflows) are handled exactly.
    log_pmf = (
        special.gammaln(n + 1.0)
        - special.gammaln(counts + 1.0)
        - special.gammaln(n - counts + 1.0)
        + special.xlogy(counts, pk)
        + special.xlog1py(n - counts, -pk)
    )
    pmf = np.exp(log_pmf)
    deviation = np.abs(counts / n - q.cpu().numpy()[:, None])
    return float(0.5 * (pmf * deviation).sum())


def tv_noise_floor(probs: Tensor, n_samples: int) -> float:
    r"""Expected TV between ``probs`` and the empirical distribution of ``n_samples`` draws from it.

    A sampler that is exactly right still shows this distance on average: differences of this
    size are sampling noise, not an effect. For large :math:`n` it is close to
    :math:`\tfrac12\sum_k \sqrt{2 p_k (1 - p_k)/(\pi n)}`.

    Args:
        probs: probabilities ``[K]``.
        n_samples: number of draws ``n >= 1``.

    Returns:
        :func:`expected_empirical_tv` ``(probs, probs, n_samples)``.

    Example:
        >>> round(tv_noise_floor(torch.full((4,), 0.25), 10_000), 4)
        0.0069
    """
    return expected_empirical_tv(probs, probs, n_samples)


def tv_sd_bound(n_samples: int) -> float:
    r"""Upper bound :math:`1/\sqrt{2n}` on the standard deviation of :math:`\mathrm{TV}(\hat p, q)`.

    Replacing one of the :math:`n` draws changes the empirical distribution by at most
    :math:`1/n` in TV, so the Efron-Stein inequality gives
    :math:`\mathrm{Var}\,\mathrm{TV}(\hat p, q) \le \tfrac12\, n\, (1/n)^2 = 1/(2n)`, whatever
    the distributions (0.0071 for :math:`n = 10{,}000`).

    Args:
        n_samples: number of draws ``n >= 1``.

    Returns:
        :math:`1/\sqrt{2n}` as a float.

    Example:
        >>> round(tv_sd_bound(10_000), 4)
        0.0071
    """
    n = check_int(n_samples, "n_samples", min_value=1)
    return 1.0 / math.sqrt(2.0 * n)


@dataclass(frozen=True)
class TemperatureExperiment:
    """Results of :func:`temperature_experiment` (``T`` temperatures, ``K`` categories).

    All tensors are float64 and on the CPU.

    Attributes:
        logits: the scores ``[K]``.
        taus: the temperatures, a tuple of ``T`` floats.
        n_samples: draws per temperature and quantity.
        probs: ``softmax(logits)``, shape ``[K]``.
        tempered_probs: ``softmax(logits / tau)`` per temperature, ``[T, K]``.
        tempered: empirical distribution of ``argmax(logits / tau + G)``, ``[T, K]``.
        argmax_relaxed: empirical distribution of the argmax of a Gumbel-softmax sample,
            ``[T, K]``.
        mean_relaxed: mean of the Gumbel-softmax samples, ``[T, K]``.
        mean_relaxed_se: standard error of each entry of ``mean_relaxed``, ``[T, K]``.
        tv_tempered, tv_argmax_relaxed, tv_mean_relaxed: TV distance of each quantity to
            ``probs``, ``[T]``.
        tv_tempered_exact: ``TV(softmax(logits / tau), probs)``: what ``tv_tempered`` estimates
            (without sampling noise), ``[T]``.
        tv_tempered_expected: exact expected value of ``tv_tempered`` at ``n_samples`` draws
            (:func:`expected_empirical_tv`), ``[T]``.
        noise_floor: expected TV of ``n_samples`` exact draws from ``probs`` to ``probs``;
            the expected value of ``tv_argmax_relaxed`` at every temperature.
        sd_bound: upper bound on the standard deviation of each empirical TV
            (:func:`tv_sd_bound`).
    """

    logits: Tensor
    taus: tuple[float, ...]
    n_samples: int
    probs: Tensor
    tempered_probs: Tensor
    tempered: Tensor
    argmax_relaxed: Tensor
    mean_relaxed: Tensor
    mean_relaxed_se: Tensor
    tv_tempered: Tensor
    tv_tempered_exact: Tensor
    tv_tempered_expected: Tensor
    tv_argmax_relaxed: Tensor
    tv_mean_relaxed: Tensor
    noise_floor: float
    sd_bound: float

    def table(self, digits: int = 3) -> str:
        """The TV distances to ``softmax(logits)`` per temperature, as a text table."""
        head = (
            f"{'tau':>7} | {'tempered':>8} {'exact':>6} {'E[emp]':>6} | "
            f"{'argmax(GS)':>10} | {'mean(GS)':>8}"
        )
        lines = [
            f"TV distance to softmax(logits), n_samples = {self.n_samples:,} per cell",
            head,
            "-" * len(head),
        ]
        f = f"{{:.{digits}f}}"
        for i, tau in enumerate(self.taus):
            lines.append(
                f"{tau:>7g} | {f.format(float(self.tv_tempered[i])):>8} "
                f"{f.format(float(self.tv_tempered_exact[i])):>6} "
                f"{f.format(float(self.tv_tempered_expected[i])):>6} | "
                f"{f.format(float(self.tv_argmax_relaxed[i])):>10} | "
                f"{f.format(float(self.tv_mean_relaxed[i])):>8}"
            )
        lines.append(
            f"noise floor (exact draws from softmax(logits)): {self.noise_floor:.{digits + 1}f}"
            f"; sd of any empirical TV <= {self.sd_bound:.{digits + 1}f}"
        )
        return "\n".join(lines)


def _check_taus(taus: object) -> tuple[float, ...]:
    if isinstance(taus, (int, float)) and not isinstance(taus, bool):
        taus = (taus,)
    if isinstance(taus, Tensor):
        taus = taus.detach().reshape(-1).tolist()
    if not isinstance(taus, Sequence) or isinstance(taus, str) or len(taus) == 0:
        raise TypeError(
            f"taus must be a non-empty sequence of temperatures such as (0.5, 1.0, 2.0), got "
            f"{type_name(taus)}"
        )
    return tuple(check_tau(t, "taus entries") for t in taus)


def temperature_experiment(
    logits: Tensor,
    taus: Sequence[float],
    n_samples: int = 10_000,
    *,
    generator: torch.Generator | None = None,
) -> TemperatureExperiment:
    r"""Sample the three temperature-dependent quantities and measure their TV to softmax(logits).

    For each temperature :math:`\tau` in ``taus``, with fresh standard Gumbel noise:

    1. ``n_samples`` tempered samples :math:`\arg\max_k(x_k/\tau + G_k)`
       (:func:`lib.relaxed.tempered_sample`), exact draws from
       :math:`\mathrm{softmax}(x/\tau)`, and their empirical distribution;
    2. ``n_samples`` Gumbel-softmax samples :math:`y = \mathrm{softmax}((x + G)/\tau)`
       (:func:`lib.relaxed.gumbel_softmax`), the empirical distribution of their argmax and
       their mean.

    The tempered samples and the Gumbel-softmax samples use independent noise. Computations
    are in float64; the samples are drawn on the logits' device, the results are on the CPU.

    Args:
        logits: floating tensor ``[K]`` of finite scores, ``K >= 2`` (the values are checked
            with validation on, see :func:`lib.set_default_validate_args`).
        taus: temperatures > 0 (a sequence of floats, or one float).
        n_samples: draws per temperature and quantity.
        generator: optional ``torch.Generator`` on the CPU or on the logits' device.

    Returns:
        A :class:`TemperatureExperiment`.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> r = temperature_experiment(torch.tensor([1.0, 0.0, -1.0]), (0.1, 1.0), 1000,
        ...                            generator=g)
        >>> r.tempered.shape, bool(r.tv_tempered[0] > r.tv_tempered[1])
        (torch.Size([2, 3]), True)

    Reference:
        Jang, Gu, Poole (2017); Maddison, Mnih, Teh (2017).
    """
    check_logits(logits)
    if logits.dim() != 1 or logits.numel() < 2:
        raise ValueError(
            f"logits must be a 1-D tensor of K >= 2 scores, got shape {tuple(logits.shape)}"
        )
    if validating() and not bool(torch.isfinite(logits).all()):
        raise ValueError("logits must be finite in the temperature experiment (no -inf masks)")
    taus = _check_taus(taus)
    n = check_int(n_samples, "n_samples", min_value=1)
    check_generator(generator, like=logits)

    x = logits.detach().to(dtype=torch.float64)  # the samples are drawn on the logits' device
    k = x.numel()
    batch = x.expand(n, k)
    x = x.cpu()  # the exact quantities and the results are on the CPU
    probs = torch.softmax(x, dim=-1)
    rows: dict[str, list[Tensor]] = {
        "tempered_probs": [],
        "tempered": [],
        "argmax_relaxed": [],
        "mean_relaxed": [],
        "mean_relaxed_se": [],
    }
    for tau in taus:
        rows["tempered_probs"].append(torch.softmax(x / tau, dim=-1))
        z = tempered_sample(batch, tau, generator=generator)
        rows["tempered"].append(torch.bincount(z, minlength=k).double().cpu() / n)
        y = gumbel_softmax(batch, tau, generator=generator)
        rows["argmax_relaxed"].append(
            torch.bincount(y.argmax(-1), minlength=k).double().cpu() / n
        )
        rows["mean_relaxed"].append(y.mean(0).cpu())
        se = y.std(0).cpu() / math.sqrt(n) if n > 1 else torch.full((k,), float("nan"))
        rows["mean_relaxed_se"].append(se.double())
    t = {name: torch.stack(v) for name, v in rows.items()}
    return TemperatureExperiment(
        logits=x,
        taus=taus,
        n_samples=n,
        probs=probs,
        tempered_probs=t["tempered_probs"],
        tempered=t["tempered"],
        argmax_relaxed=t["argmax_relaxed"],
        mean_relaxed=t["mean_relaxed"],
        mean_relaxed_se=t["mean_relaxed_se"],
        tv_tempered=total_variation(t["tempered"], probs),
        tv_tempered_exact=total_variation(t["tempered_probs"], probs),
        tv_tempered_expected=torch.tensor(
            [expected_empirical_tv(p, probs, n) for p in t["tempered_probs"]],
            dtype=torch.float64,
        ),
        tv_argmax_relaxed=total_variation(t["argmax_relaxed"], probs),
        tv_mean_relaxed=total_variation(t["mean_relaxed"], probs),
        noise_floor=tv_noise_floor(probs, n),
        sd_bound=tv_sd_bound(n),
    )


# ---------------------------------------------------------------------------------- figures


def plot_temperature_grid(result: TemperatureExperiment, *, fig=None, taus=None):
    """Bar charts of the three quantities against ``softmax(logits)``: one row per temperature.

    Columns: the tempered sample (with the exact ``softmax(logits / tau)`` as markers), the
    argmax of a Gumbel-softmax sample, the mean Gumbel-softmax vector. Each panel shows its TV
    distance to ``softmax(logits)``; panels of a row share their y axis.

    Args:
        result: a :class:`TemperatureExperiment`.
        fig: a matplotlib ``Figure`` to draw on (cleared first); a new one by default.
        taus: the temperatures to show, a subset of ``result.taus`` (default: all).

    Returns:
        The figure's axes, a NumPy array of shape ``[len(taus), 3]``.
    """
    import matplotlib.pyplot as plt

    from lib.plotting import COLORS

    if not isinstance(result, TemperatureExperiment):
        raise TypeError(f"result must be a TemperatureExperiment, got {type_name(result)}")
    shown = result.taus if taus is None else _check_taus(taus)
    index = []
    for tau in shown:
        matches = [i for i, t in enumerate(result.taus) if math.isclose(t, tau, rel_tol=1e-9)]
        if not matches:
            raise ValueError(f"tau={tau} is not one of the experiment's taus {result.taus}")
        index.append(matches[0])
    n_rows = len(index)
    if fig is None:
        fig = plt.figure(figsize=(10, 1.9 * n_rows + 0.9))
    else:
        fig.clear()
    axes = np.atleast_2d(fig.subplots(n_rows, 3, sharey="row", sharex=True, squeeze=False))
    k = np.arange(result.probs.numel())
    colours = {
        "tempered": COLORS["empirical"],
        "argmax_relaxed": COLORS["straight_through"],
        "mean_relaxed": COLORS["relaxed"],
    }
    probs = result.probs.numpy()
    for row, i in enumerate(index):
        tau = result.taus[i]
        for col, name in enumerate(QUANTITIES):
            ax = axes[row, col]
            values = getattr(result, name)[i].numpy()
            tv = float(getattr(result, f"tv_{name}")[i])
            ax.bar(k - 0.2, probs, width=0.4, color=COLORS["exact"], label="softmax(x)")
            ax.bar(k + 0.2, values, width=0.4, color=colours[name],
                   label=QUANTITIES[name][0] + (" (empirical)" if col < 2 else ""))
            if name == "tempered":
                ax.plot(k + 0.2, result.tempered_probs[i].numpy(), linestyle="none",
                        marker="_", markersize=9, markeredgewidth=2,
                        color=COLORS["baseline"], label=r"softmax(x/$\tau$) (exact)")
            ax.text(0.97, 0.93, f"TV = {tv:.3f}", transform=ax.transAxes, ha="right",
                    va="top", fontsize=9)
            if row == 0:
                ax.set_title(QUANTITIES[name][1], fontsize=10)
            if col == 0:
                ax.set_ylabel(f"$\\tau$ = {tau:g}\nprobability")
            if row == n_rows - 1:
                ax.set_xlabel("category")
            ax.set_xticks(k)
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    order = sorted(range(len(labels)), key=lambda j: (labels[j] != "softmax(x)",
                                                      labels[j].startswith("softmax")))
    fig.legend([handles[j] for j in order], [labels[j] for j in order], loc="upper center",
               ncol=3, fontsize=9, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.6 / fig.get_figheight()))
    return axes


def plot_tv_curves(ax, result: TemperatureExperiment, *, dense_taus=None):
    """TV distance to ``softmax(logits)`` against the temperature (log axis), all quantities.

    Draws the three empirical TVs as markers, the exact ``TV(softmax(logits/tau),
    softmax(logits))`` as a line over ``dense_taus`` (default: 200 log-spaced values across the
    experiment's range), the TV of the uniform distribution, and the noise floor.

    Args:
        ax: matplotlib axes.
        result: a :class:`TemperatureExperiment`.
        dense_taus: temperatures for the exact curve.

    Returns:
        ``ax``.
    """
    from lib.plotting import COLORS

    if not isinstance(result, TemperatureExperiment):
        raise TypeError(f"result must be a TemperatureExperiment, got {type_name(result)}")
    taus = np.asarray(result.taus)
    if dense_taus is None:
        dense_taus = np.logspace(np.log10(taus.min()), np.log10(taus.max()), 200)
    dense = torch.as_tensor(np.asarray(dense_taus, dtype=np.float64))
    exact = total_variation(torch.softmax(result.logits / dense[:, None], dim=-1), result.probs)
    uniform = torch.full_like(result.probs, 1.0 / result.probs.numel())
    ax.plot(dense.numpy(), exact.numpy(), color=COLORS["empirical"], linewidth=1,
            label=r"exact TV(softmax(x/$\tau$), softmax(x))")
    styles = {"tempered": "o", "argmax_relaxed": "s", "mean_relaxed": "^"}
    colours = {"tempered": COLORS["empirical"], "argmax_relaxed": COLORS["straight_through"],
               "mean_relaxed": COLORS["relaxed"]}
    for name, (label, _) in QUANTITIES.items():
        ax.plot(taus, getattr(result, f"tv_{name}").numpy(), linestyle="none",
                marker=styles[name], color=colours[name], label=label)
    ax.axhline(float(total_variation(uniform, result.probs)), color=COLORS["other"],
               linestyle=":", label="TV(uniform, softmax(x))")
    ax.axhline(result.noise_floor, color=COLORS["exact"], linestyle="--", linewidth=1,
               label=f"noise floor at n = {result.n_samples:,}")
    ax.set_xscale("log")
    ax.set_xlabel(r"temperature $\tau$")
    ax.set_ylabel("TV distance to softmax(x)")
    ax.legend(fontsize=8)
    return ax
