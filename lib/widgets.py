"""Interactive explorers for notebook readers (core ipywidgets only; ipywidgets 7 and 8).

Each explorer is a widget you display in a notebook; its state is also reachable from Python
(``explorer.tau_slider.value = 0.1``, ``explorer.new_scores_button.click()``,
``explorer.result``), which is how the tests drive it without a browser. The figure is an
ordinary matplotlib figure rendered to PNG bytes and shown in an ``Image`` widget: no extra
widget package (such as ipympl), no ``Output`` widget and no dependence on the matplotlib
backend, which keeps it working in Colab, in JupyterLab and in a plain Python process.
"""

from __future__ import annotations

import io
import math

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure
from torch import Tensor

from lib import rng
from lib._validation import check_int, check_logits, check_tau, validating
from lib.temperature import TemperatureExperiment, plot_temperature_grid, temperature_experiment

__all__ = ["TemperatureExplorer", "temperature_explorer"]

TAU_MIN, TAU_MAX = 1e-3, 1e2


class TemperatureExplorer(widgets.VBox):
    """The temperature experiment at one temperature, with a slider and a new-scores button.

    Build it with :func:`temperature_explorer`. Attributes:

    * ``tau_slider``: ``FloatLogSlider`` for the temperature (0.001 to 100);
    * ``new_scores_button``: ``Button`` drawing new random scores;
    * ``image``: the ``Image`` widget showing the figure (``image.value`` holds the PNG bytes);
    * ``figure``: the matplotlib ``Figure`` (one row of three bar charts);
    * ``logits``: the current scores ``[K]``;
    * ``result``: the current :class:`lib.temperature.TemperatureExperiment` (one temperature);
    * ``n_draws``: how many times the figure has been drawn.
    """

    def __init__(self, logits: Tensor, *, n_samples: int, tau: float, seed: int):
        self.generator = torch.Generator().manual_seed(seed)
        self.n_samples = n_samples
        self.n_categories = logits.numel()
        self.logits = logits.detach().double().cpu()
        self.result: TemperatureExperiment | None = None
        self.n_draws = 0
        self.tau_slider = widgets.FloatLogSlider(
            value=tau, base=10, min=math.log10(TAU_MIN), max=math.log10(TAU_MAX), step=0.05,
            description="tau", readout_format=".3g", continuous_update=False,
        )
        self.new_scores_button = widgets.Button(
            description="New scores", tooltip="draw new random scores (logits)"
        )
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.figure = Figure(figsize=(10, 3.2))
        self.tau_slider.observe(self._on_tau, names="value")
        self.new_scores_button.on_click(self._on_new_scores)
        super().__init__([widgets.HBox([self.tau_slider, self.new_scores_button]), self.image])
        self.redraw()

    def __repr__(self) -> str:  # short and deterministic (the default lists every child)
        return (
            f"TemperatureExplorer(tau={self.tau_slider.value:.3g}, "
            f"n_categories={self.n_categories}, n_samples={self.n_samples})"
        )

    def _on_tau(self, change) -> None:
        self.redraw()

    def _on_new_scores(self, button) -> None:
        self.logits = rng.randn(self.n_categories, generator=self.generator,
                                dtype=torch.float64)
        self.redraw()

    def redraw(self) -> None:
        """Re-sample at the slider's temperature and re-draw the figure."""
        self.result = temperature_experiment(
            self.logits, (float(self.tau_slider.value),), self.n_samples,
            generator=self.generator,
        )
        plot_temperature_grid(self.result, fig=self.figure)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=100)
        self.image.value = buffer.getvalue()
        self.n_draws += 1


def temperature_explorer(
    logits: Tensor | None = None,
    *,
    n_categories: int = 10,
    n_samples: int = 10_000,
    tau: float = 1.0,
    seed: int = 0,
) -> TemperatureExplorer:
    """Build the temperature explorer: slider for tau, button for new scores, three bar charts.

    At the slider's temperature it shows, against ``softmax(logits)``, the empirical
    distribution of tempered samples ``argmax(logits / tau + G)`` (with the exact
    ``softmax(logits / tau)``), of the argmax of Gumbel-softmax samples, and the mean
    Gumbel-softmax vector, each with its TV distance (see :mod:`lib.temperature`).

    Args:
        logits: initial finite scores ``[K]`` (finiteness is checked with validation on, see
            :func:`lib.set_default_validate_args`; default: ``n_categories`` standard normal
            scores drawn with ``seed``).
        n_categories: number of categories of the random scores, ``>= 2``.
        n_samples: samples per panel.
        tau: initial temperature, in [0.001, 100].
        seed: seed of the explorer's own ``torch.Generator``.

    Returns:
        A :class:`TemperatureExplorer` (an ``ipywidgets.VBox``): display it in a notebook.

    Example:
        >>> explorer = temperature_explorer(n_samples=1000)
        >>> explorer.tau_slider.value = 0.1
        >>> explorer.result.taus
        (0.1,)
    """
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    seed = check_int(seed, "seed", min_value=0)
    tau = check_tau(tau)
    if not TAU_MIN <= tau <= TAU_MAX:
        raise ValueError(f"tau must be in [{TAU_MIN}, {TAU_MAX}] (the slider's range), got {tau}")
    if logits is None:
        n_categories = check_int(n_categories, "n_categories", min_value=2)
        logits = rng.randn(n_categories, generator=torch.Generator().manual_seed(seed),
                           dtype=torch.float64)
    else:
        check_logits(logits)
        if logits.dim() != 1 or logits.numel() < 2 \
                or (validating() and not bool(torch.isfinite(logits).all())):
            raise ValueError(
                f"logits must be a 1-D tensor of K >= 2 finite scores, got shape "
                f"{tuple(logits.shape)}"
            )
    return TemperatureExplorer(logits, n_samples=n_samples, tau=tau, seed=seed)
