r"""Interactive figures for the web book, which runs no Python: lib computes, the browser draws.

Most readers read the book's static HTML and never start a kernel, so an ipywidgets explorer
(:mod:`lib.widgets`) shows them nothing. The figures of this module work there: the numbers
are computed here, by the book's own functions, over a small grid of settings, and the
browser only looks them up and draws them.

* :func:`temperature_figure`: the temperature experiment of :mod:`lib.temperature` on a
  log grid of temperatures (0.001 to 100) for a few sets of scores, plus one Gumbel-softmax
  sample per set (:func:`lib.relaxed.gumbel_softmax`);
* :func:`estimator_playground`: single-sample gradient estimates of REINFORCE (plain and with
  a moving-average baseline), straight-through, Gumbel-softmax and straight-through
  Gumbel-softmax (:mod:`lib.compare`) on two Bernoulli variables, for a few logits, three
  costs and a grid of temperatures, measured against the exact gradient
  (:func:`lib.compare.measure`).

Displayed in a notebook, an :class:`InteractiveFigure` writes one HTML block: a
``<div class="book-interactive" data-kind="...">`` that holds a short fallback text and the
data as ``<script type="application/json">``. In the built book, ``_static/book_interactive.js``
(plain JavaScript shipped in the repository; Jupyter Book loads every ``.js`` and ``.css`` file
of ``_static/`` on every page, and nothing comes from a CDN) finds the block and replaces the
fallback with SVG drawings and keyboard-usable controls. In a running notebook the fallback
text shows; the explorer of :mod:`lib.widgets` is the interactive version there.

The same on every CPU. The committed notebook outputs, and so this HTML, are compared by strict
nbval on CPUs that round the last bits of ``exp`` and ``log`` differently (CONTRIBUTING.md).
Everything here is computed in float64 with seeded generators and rounded far above float64
rounding before it is written: probabilities to 4 decimals, distances to 3, gradient estimates
to 4 significant digits of their cloud's largest value, printed statistics to 2 significant
digits (their standard errors support no more), and rounding-level values (the zero variance
of an exact estimator) are written as bounds (:func:`lib.utils.format_bound`).
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from lib import rng
from lib._validation import (
    check_callable,
    check_int,
    check_logits,
    check_tau,
    type_name,
    validating,
)
from lib.compare import BernoulliProblem, get_estimator, line_style, measure
from lib.relaxed import gumbel_softmax
from lib.temperature import temperature_experiment
from lib.utils import format_bound

__all__ = [
    "EstimatorPlayground",
    "InteractiveFigure",
    "PLAYGROUND_COSTS",
    "PLAYGROUND_ESTIMATORS",
    "PLAYGROUND_PRESETS",
    "PLAYGROUND_TAUS",
    "TEMPERATURE_TAUS",
    "TemperatureFigure",
    "estimator_playground",
    "temperature_figure",
]

#: The temperature figure's slider: 21 temperatures, four per decade from 0.001 to 100
#: (rounded to 3 significant digits, so the value shown is the value used).
TEMPERATURE_TAUS: tuple[float, ...] = tuple(float(f"{10 ** (e / 4):.3g}") for e in range(-12, 9))

#: The playground's slider: from 0.01 to 10, about two temperatures per decade.
PLAYGROUND_TAUS: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)

#: The playground's logits of the two Bernoulli variables (theta = sigmoid(logits)).
PLAYGROUND_PRESETS: tuple[tuple[float, float], ...] = ((0.0, 0.0), (1.5, -1.0), (-2.0, 2.0))

#: The playground's estimators (names of :data:`lib.compare.ESTIMATORS`). All of them work with
#: one sample per estimate; leave-one-out needs two, so the baseline shown is the moving average.
PLAYGROUND_ESTIMATORS: tuple[str, ...] = (
    "reinforce", "reinforce_moving_average", "straight_through", "gumbel_softmax",
    "st_gumbel_softmax",
)
_RELAXED = ("gumbel_softmax", "st_gumbel_softmax")


def _linear_cost(b: Tensor) -> Tensor:
    return b[..., 0] + 0.5 * b[..., 1]


def _quadratic_cost(b: Tensor) -> Tensor:
    return (b[..., 0] + 0.5 * b[..., 1] - 1.0) ** 2


def _exp_cost(b: Tensor) -> Tensor:
    return torch.exp(2.0 * b[..., 0] + b[..., 1]) / 10.0


#: The playground's costs of two Bernoulli variables ``b = (b1, b2)``: key -> (formula, f).
#: Straight-through is exact for the linear one; the relaxed estimators are biased for all
#: three; straight-through Gumbel-softmax's bias vanishes as tau -> 0 for the linear and
#: quadratic costs but not for the exponential one (chapter 8).
PLAYGROUND_COSTS: dict[str, tuple[str, Callable[[Tensor], Tensor]]] = {
    "linear": ("f(b) = b₁ + b₂/2", _linear_cost),
    "quadratic": ("f(b) = (b₁ + b₂/2 − 1)²", _quadratic_cost),
    "exp": ("f(b) = exp(2b₁ + b₂)/10", _exp_cost),
}

_TAU_RANGE = (1e-3, 1e2)
_MAX_JSON_BYTES = 1_000_000


# ----------------------------------------------------------------------------------- helpers


def _seed(seed: int, *keys: object) -> int:
    """A seed derived from ``seed`` and ``keys`` (sha256; independent of the order of calls)."""
    digest = hashlib.sha256(repr((seed, *keys)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFF_FFFF


def _generator(seed: int, *keys: object) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(_seed(seed, *keys))


def _rounded(values: Tensor | Sequence[float], decimals: int) -> list[float]:
    """Floats rounded to ``decimals`` decimals (``+ 0.0`` turns ``-0.0`` into ``0.0``)."""
    items = values.tolist() if isinstance(values, Tensor) else list(values)
    return [round(float(v), decimals) + 0.0 for v in items]


def _sig_text(value: float, digits: int = 2) -> str:
    """``value`` with ``digits`` significant digits, trailing zeros kept: 0.2 -> ``"0.20"``."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    return f"{value:.{decimals}f}"


def _stat_text(value: float, bound: float) -> str:
    """A measured statistic, or a bound when it is at the level of float64 rounding."""
    return format_bound(value, bound) if value < bound else _sig_text(value)


def _check_taus(taus: object, name: str, low: float, high: float) -> tuple[float, ...]:
    if isinstance(taus, (str, bytes)) or not isinstance(taus, Sequence) or len(taus) < 2:
        raise TypeError(
            f"{name} must be a sequence of at least 2 temperatures such as (0.1, 1.0, 10.0), got "
            f"{type_name(taus)}"
        )
    out = tuple(float(check_tau(t, f"{name} entries")) for t in taus)
    if any(b <= a for a, b in zip(out, out[1:])):
        raise ValueError(f"{name} must be strictly increasing (a slider's positions), got {out}")
    if out[0] < low or out[-1] > high:
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}], got {out[0]:g} .. {out[-1]:g}")
    return out


def _script_json(data: Mapping[str, Any]) -> str:
    """Compact JSON that is safe inside ``<script>`` (no ``<``, ``>`` or ``&`` left)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# ---------------------------------------------------------------------------------- the figure


@dataclass(frozen=True)
class InteractiveFigure:
    """Precomputed data for one of the book's JavaScript figures, and the HTML that carries it.

    Displaying it in a notebook (``_repr_html_``) writes the block that
    ``_static/book_interactive.js`` turns into a figure on the book's web pages.

    Attributes:
        kind: which drawing the JavaScript makes (``"temperature"`` or ``"estimators"``).
        title: the figure's title (also its accessible name).
        description: a text alternative: what the figure shows, in one paragraph.
        data: the JSON-ready data (``title`` and ``description`` are added to it).
    """

    kind: str
    title: str
    description: str
    data: dict[str, Any] = field(repr=False)

    def to_json(self) -> str:
        """The data as compact JSON (deterministic: the same data give the same text)."""
        return _script_json({"title": self.title, "description": self.description,
                             **self.data})

    @property
    def size_bytes(self) -> int:
        """Size of the JSON in bytes (UTF-8)."""
        return len(self.to_json().encode())

    @property
    def element_id(self) -> str:
        """The HTML id of the block: the kind and a hash of the data (stable across runs)."""
        digest = hashlib.sha256(self.to_json().encode()).hexdigest()[:10]
        return f"book-interactive-{self.kind}-{digest}"

    def to_html(self) -> str:
        """The HTML block: fallback text and data, drawn by ``_static/book_interactive.js``."""
        title = html.escape(self.title)
        return (
            f'<div class="book-interactive" id="{self.element_id}" data-kind="{self.kind}" '
            f'role="group" aria-label="{title}">\n'
            f'<p class="book-interactive-fallback"><strong>{title}.</strong> '
            f"{html.escape(self.description)} The interactive version of this figure runs in "
            f"the web edition of the book (its JavaScript is the book's "
            f"<code>_static/book_interactive.js</code>); in a running notebook, change the "
            f"arguments of the cell and run it again.</p>\n"
            f'<script type="application/json" class="book-interactive-data">'
            f"{self.to_json()}</script>\n</div>"
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:  # short and deterministic (printed as the cell's text/plain)
        return f"{type(self).__name__}({self.title!r}, {self.size_bytes / 1000:.1f} kB of data)"


# ---------------------------------------------------------------- the temperature experiment


class TemperatureFigure(InteractiveFigure):
    """The temperature explorer for the web book; build it with :func:`temperature_figure`."""

    def table(self, scores: int = 0) -> str:
        """The figure's TV distances for one set of scores, one row per temperature.

        Args:
            scores: index of the set of scores (0 is the first).

        Returns:
            A text table: temperature, then the TV distance to ``softmax(x)`` of the tempered
            samples, the argmax of Gumbel-softmax samples and their mean.
        """
        sets = self.data["sets"]
        scores = check_int(scores, "scores", min_value=0, max_value=len(sets) - 1)
        entry = sets[scores]
        lines = [f"scores set {scores + 1} of {len(sets)}: x = {entry['logits']}",
                 f"{'tau':>7} | {'tempered':>8} | {'argmax(GS)':>10} | {'mean(GS)':>8}"]
        for tau, row in zip(self.data["taus"], entry["rows"]):
            tempered, argmax, mean = row["tv"]
            lines.append(f"{tau:>7g} | {tempered:8.3f} | {argmax:10.3f} | {mean:8.3f}")
        lines.append(f"noise floor (exact draws from softmax(x)): {entry['noise_floor']:.3f}")
        return "\n".join(lines)


def temperature_figure(
    logits: Tensor | None = None,
    *,
    n_sets: int = 5,
    n_categories: int = 10,
    n_samples: int = 10_000,
    taus: Sequence[float] = TEMPERATURE_TAUS,
    seed: int = 0,
) -> TemperatureFigure:
    r"""The temperature explorer as a figure for the web book: a log slider and new scores.

    For every set of scores :math:`x` and every temperature :math:`\tau` of ``taus`` it runs
    :func:`lib.temperature.temperature_experiment` (``n_samples`` tempered samples
    :math:`\arg\max_k(x_k/\tau + G_k)` and as many Gumbel-softmax samples
    :math:`\mathrm{softmax}((x + G)/\tau)`, each with its TV distance to
    :math:`\mathrm{softmax}(x)`) and draws one Gumbel-softmax sample with
    :func:`lib.relaxed.gumbel_softmax`. Within a set, every temperature reuses the same
    Gumbel noise (common random numbers: each call starts from the same seed), so moving the
    slider changes the temperature and nothing else; in particular the argmax of the
    Gumbel-softmax samples, which is :math:`\arg\max_k (x_k + G_k)` at every temperature,
    does not move at all. The button of the figure steps through the sets.

    Args:
        logits: the first set's finite scores ``[K]`` (e.g. the ipywidgets explorer's
            ``explorer.logits``; finiteness is checked with validation on, see
            :func:`lib.set_default_validate_args`); default: standard normal scores drawn from
            ``seed``.
        n_sets: number of sets of scores, ``1 <= n_sets <= 20``; the sets after the first
            are standard normal scores drawn from ``seed``.
        n_categories: ``K`` when ``logits`` is None, ``2 <= K <= 20``.
        n_samples: samples per temperature and quantity, ``>= 100``.
        taus: the slider's temperatures, increasing, in [0.001, 100] (default: 21 values, four
            per decade).
        seed: seed of every draw (the scores, the noise of each set).

    Returns:
        A :class:`TemperatureFigure`: display it in a notebook; ``.table(scores)`` prints
        its numbers. Its data (about 35 kB for the defaults) hold, per set and temperature,
        the sample, the three empirical distributions and ``softmax(x / tau)`` to 4
        decimals, and the TV distances to 3 decimals.

    Example:
        >>> fig = temperature_figure(n_sets=1, n_categories=3, n_samples=200, taus=(0.1, 1.0))
        >>> fig.kind, len(fig.data["sets"][0]["rows"])
        ('temperature', 2)
    """
    n_sets = check_int(n_sets, "n_sets", min_value=1, max_value=20)
    n_samples = check_int(n_samples, "n_samples", min_value=100)
    seed = check_int(seed, "seed", min_value=0)
    taus = _check_taus(taus, "taus", *_TAU_RANGE)
    if logits is None:
        n_categories = check_int(n_categories, "n_categories", min_value=2, max_value=20)
    else:
        check_logits(logits)
        if logits.dim() != 1 or not 2 <= logits.numel() <= 20 \
                or (validating() and not bool(torch.isfinite(logits).all())):
            raise ValueError(
                f"logits must be a 1-D tensor of 2 to 20 finite scores, got shape "
                f"{tuple(logits.shape)}"
            )
        n_categories = logits.numel()
    score_sets = [] if logits is None else [logits.detach().to("cpu", torch.float64)]
    while len(score_sets) < n_sets:
        score_sets.append(rng.randn(n_categories, generator=_generator(seed, "scores",
                                                                        len(score_sets)),
                                    dtype=torch.float64, device="cpu"))
    sets = []
    for index, x in enumerate(score_sets):
        rows, noise_floor = [], 0.0
        for tau in taus:
            # the same seeds at every temperature: the same noise (common random numbers)
            sample = gumbel_softmax(x, tau, generator=_generator(seed, "sample", index))
            r = temperature_experiment(x, (tau,), n_samples,
                                       generator=_generator(seed, "experiment", index))
            noise_floor = r.noise_floor
            rows.append({
                "sample": _rounded(sample, 4),
                "tempered": _rounded(r.tempered[0], 4),
                "exact": _rounded(r.tempered_probs[0], 4),
                "argmax": _rounded(r.argmax_relaxed[0], 4),
                "mean": _rounded(r.mean_relaxed[0], 4),
                "tv": _rounded([r.tv_tempered[0], r.tv_argmax_relaxed[0],
                                r.tv_mean_relaxed[0]], 3),
            })
        sets.append({"logits": _rounded(x, 3), "probs": _rounded(torch.softmax(x, 0), 4),
                     "noise_floor": round(noise_floor, 3), "rows": rows})
    data = {"taus": list(taus), "n_samples": n_samples, "n_categories": n_categories,
            "start": min(range(len(taus)), key=lambda i: abs(math.log(taus[i]))), "sets": sets}
    description = (
        f"Four bar charts over {n_categories} categories for one set of random scores x at "
        f"the temperature chosen with the slider: one Gumbel-softmax sample "
        f"y = softmax((x + G)/τ); the frequencies of {n_samples:,} tempered samples "
        f"argmax(x/τ + G) with the exact softmax(x/τ) as ticks; the frequencies of the argmax "
        f"of {n_samples:,} Gumbel-softmax samples; and their mean. The last three are drawn "
        f"next to softmax(x) and print their total-variation distance (TV) to it. The same "
        f"noise is used at every temperature; the button steps through {len(sets)} sets of "
        f"scores and noise."
    )
    return TemperatureFigure("temperature", "Temperature explorer", description, data)


# --------------------------------------------------------------------- the estimator playground


class _Recorder:
    """Wraps an estimator for :func:`lib.compare.measure` and keeps the estimates it returns."""

    def __init__(self, estimator):
        self.estimator = estimator
        self.label = estimator.label
        self.estimates: Tensor | None = None

    def __call__(self, problem, logits, n_samples, n_repeats, generator):
        self.estimates = self.estimator(problem, logits, n_samples, n_repeats, generator)
        return self.estimates


def _quantised(values: Tensor, exponent: int) -> list[int]:
    """``values`` in units of ``10**exponent``, rounded to integers."""
    return [int(round(v / 10.0**exponent)) for v in values.tolist()]


class EstimatorPlayground(InteractiveFigure):
    """The estimator playground for the web book; build it with :func:`estimator_playground`."""

    def table(self, cost: str = "exp", preset: int = 0) -> str:
        """The playground's numbers for one cost and one set of logits, one row per estimate.

        Args:
            cost: a key of the playground's costs (e.g. ``"exp"``).
            preset: index of the logits preset (0 is the first).

        Returns:
            A text table: the exact gradient, then for each estimator (and temperature) the
            bias ``||mean - exact||``, the noise level of that bias (what an unbiased
            estimator shows), the variance (trace of the covariance) and whether a bias is
            detected (some coordinate more than 4 standard errors from the exact value).
        """
        keys = [c["key"] for c in self.data["costs"]]
        if cost not in keys:
            raise ValueError(f"cost must be one of {keys}, got {cost!r}")
        presets = self.data["presets"]
        preset = check_int(preset, "preset", min_value=0, max_value=len(presets) - 1)
        c = keys.index(cost)
        cell = self.data["cells"][preset][c]
        head = f"{'estimator':24s} {'tau':>5s} {'bias':>8s} {'noise':>8s} {'variance':>9s}  bias?"
        lines = [f"{self.data['costs'][c]['label']}, {presets[preset]['label']}",
                 f"exact gradient {cell['exact_text']}; "
                 f"{self.data['n_repeats']:,} single-sample estimates per row", head]
        for est in self.data["estimators"]:
            entries = cell["clouds"][est["key"]]
            taus = self.data["taus"] if est["relaxed"] else [None]
            for tau, e in zip(taus, entries):
                lines.append(
                    f"{est['label']:24s} {'-' if tau is None else f'{tau:g}':>5s} "
                    f"{e['bias']:>8s} {e['noise']:>8s} {e['variance']:>9s}  "
                    f"{'yes' if e['detected'] else 'no'}"
                )
        return "\n".join(lines)


def estimator_playground(
    *,
    presets: Sequence[Sequence[float]] = PLAYGROUND_PRESETS,
    costs: Mapping[str, tuple[str, Callable[[Tensor], Tensor]]] | None = None,
    taus: Sequence[float] = PLAYGROUND_TAUS,
    n_repeats: int = 10_000,
    n_points: int = 100,
    seed: int = 0,
) -> EstimatorPlayground:
    r"""Clouds of single-sample gradient estimates against the exact gradient, for the web book.

    The problem is two independent Bernoulli variables :math:`b_i \sim \mathrm{Bern}(\sigma
    (\ell_i))` and a cost :math:`f(b)` (:class:`lib.compare.BernoulliProblem`), so every
    gradient estimate :math:`\hat g \approx \nabla_\ell \mathbb{E}[f(b)]` is a point of the
    plane. For every preset of logits, every cost and (for the two Gumbel estimators) every
    temperature, each estimator of :data:`PLAYGROUND_ESTIMATORS` (:func:`lib.compare.
    get_estimator`) draws ``n_repeats`` independent one-sample estimates;
    :func:`lib.compare.measure` compares them with the exact gradient (by enumeration). The
    figure shows the first ``n_points`` estimates as dots, their mean and the exact gradient,
    and prints the bias with its noise level and the variance.

    Everything runs in float64 on the CPU; each measurement has its own seed derived from
    ``seed``, so a result does not depend on which others were computed.

    Args:
        presets: logits ``(l1, l2)`` to choose from (1 to 6 pairs of finite numbers;
            finiteness is checked with validation on).
        costs: key -> (formula shown to the reader, cost function mapping samples
            ``[..., 2]`` to costs ``[...]``; it must accept relaxed values in [0, 1]);
            default :data:`PLAYGROUND_COSTS`. The exact gradient must not vanish.
        taus: the temperatures of the slider, increasing, in [0.001, 100].
        n_repeats: estimates per measurement, ``>= 100``.
        n_points: estimates shown as dots, ``1 <= n_points <= min(n_repeats, 500)``.
        seed: seed of every draw.

    Returns:
        An :class:`EstimatorPlayground`: display it in a notebook; ``.table(cost, preset)``
        prints its numbers. With the defaults its data are about 160 kB.

    Example:
        >>> fig = estimator_playground(presets=[(0.0, 0.0)], taus=(0.1, 1.0), n_repeats=200,
        ...                            n_points=20)
        >>> fig.data["cells"][0][0]["clouds"]["straight_through"][0]["variance"]  # linear cost
        '< 1e-20'
    """
    taus = _check_taus(taus, "taus", *_TAU_RANGE)
    n_repeats = check_int(n_repeats, "n_repeats", min_value=100)
    n_points = check_int(n_points, "n_points", min_value=1, max_value=min(n_repeats, 500))
    seed = check_int(seed, "seed", min_value=0)
    costs = dict(PLAYGROUND_COSTS if costs is None else costs)
    if not isinstance(presets, Sequence) or not 1 <= len(presets) <= 6:
        raise TypeError(f"presets must be a sequence of 1 to 6 pairs of logits, got "
                        f"{type_name(presets)}")
    logits_list = []
    for p in presets:
        t = torch.as_tensor(p, dtype=torch.float64, device="cpu") \
            if not isinstance(p, Tensor) else p.detach().to("cpu", torch.float64)
        if t.shape != (2,) or (validating() and not bool(torch.isfinite(t).all())):
            raise ValueError(f"each preset must be 2 finite logits (l1, l2), got {p!r}")
        logits_list.append(t)
    if not 1 <= len(costs) <= 6:
        raise ValueError(f"costs must hold 1 to 6 entries, got {len(costs)}")
    for key, value in costs.items():
        if not isinstance(key, str) or not isinstance(value, tuple) or len(value) != 2 \
                or not isinstance(value[0], str):
            raise TypeError(f"costs must map a str key to (formula str, function), got "
                            f"{key!r}: {value!r}")
        check_callable(value[1], f"costs[{key!r}] function")

    estimators = []
    for name in PLAYGROUND_ESTIMATORS:
        relaxed = name in _RELAXED
        probe = get_estimator(name, tau=1.0) if relaxed else get_estimator(name)
        estimators.append({"key": name, "relaxed": relaxed,
                           "label": probe.label.removesuffix(" (tau=1)"),
                           "color": line_style(probe)["color"]})
    cells = []
    for p, logits in enumerate(logits_list):
        row = []
        for key, (_formula, f) in costs.items():
            problem = BernoulliProblem(logits, f, name=key)
            exact = problem.exact_gradient()
            scale = float(exact.abs().max())
            if scale < 1e-9 * max(problem._cost_scale(), 1e-300):
                raise ValueError(
                    f"the exact gradient of cost {key!r} at logits {logits.tolist()} is zero: "
                    f"the playground compares estimates with it, choose other logits or costs"
                )
            clouds = {}
            for est in estimators:
                entries = []
                for tau in (taus if est["relaxed"] else (None,)):
                    estimator = get_estimator(est["key"]) if tau is None \
                        else get_estimator(est["key"], tau=tau)
                    recorder = _Recorder(estimator)
                    m = measure(problem, recorder, 1, n_repeats,
                                _generator(seed, "playground", p, key, est["key"], tau))
                    shown = recorder.estimates[:n_points].double()
                    largest = max(float(shown.abs().max()), float(m.mean.abs().max()), scale)
                    exponent = math.floor(math.log10(largest)) - 3  # 4 significant digits
                    entries.append({
                        "e": exponent,
                        "x": _quantised(shown[:, 0], exponent),
                        "y": _quantised(shown[:, 1], exponent),
                        "mean": _quantised(m.mean, exponent),
                        "bias": _stat_text(m.bias_norm, 1e-12),
                        "noise": _stat_text(m.bias_noise, 1e-12),
                        "variance": _stat_text(m.variance_total, 1e-20),
                        "detected": m.max_abs_z >= 4.0,
                    })
                clouds[est["key"]] = entries
            exact4 = [float(f"{v:.4g}") for v in exact.tolist()]
            row.append({"exact": exact4,
                        "exact_text": f"({_sig_text(exact4[0], 3)}, {_sig_text(exact4[1], 3)}), "
                                      f"norm {_sig_text(float(exact.norm()), 3)}",
                        "clouds": clouds})
        cells.append(row)
    preset_labels = []
    for logits in logits_list:
        l1, l2 = logits.tolist()
        t1, t2 = torch.sigmoid(logits).tolist()
        preset_labels.append({"label": f"ℓ = ({l1:g}, {l2:g}), θ = ({t1:.2f}, {t2:.2f})",
                              "logits": [l1, l2]})
    data = {
        "taus": list(taus), "n_repeats": n_repeats, "n_points": n_points,
        "start": min(range(len(taus)), key=lambda i: abs(math.log(taus[i]))),
        "estimators": estimators, "presets": preset_labels,
        "costs": [{"key": k, "label": f"{k}: {v[0]}"} for k, v in costs.items()],
        "cells": cells,
    }
    description = (
        f"A scatter plot of gradient estimates for two Bernoulli variables: each dot is one "
        f"single-sample estimate of the gradient of E[f(b)] with respect to the logits "
        f"(ℓ₁, ℓ₂), {n_points} per estimator, coloured by estimator (REINFORCE, REINFORCE with "
        f"a moving-average baseline, straight-through, Gumbel-softmax, straight-through "
        f"Gumbel-softmax), with the mean of {n_repeats:,} estimates as a ring and the exact "
        f"gradient as a black cross. Controls choose the temperature τ (Gumbel estimators), "
        f"the logits, the cost and which estimators are shown; a table gives each "
        f"estimator's bias, its noise level and the variance."
    )
    return EstimatorPlayground("estimators", "Estimator playground", description, data)
