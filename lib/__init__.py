"""The code of the book *Gradients Through Discrete Choices*.

Modules, one concept each:

- :mod:`lib.gumbel`: the Gumbel distribution, the Gumbel-max trick, Gumbel-top-k.
- :mod:`lib.relaxed`: Gumbel-softmax (Concrete), the relaxed Bernoulli, tempered sampling.
- :mod:`lib.temperature`: the temperature experiment and total-variation distances.
- :mod:`lib.widgets`: the interactive temperature explorer (ipywidgets 7 and 8).
- :mod:`lib.interactive`: figures that stay interactive in the static web book (data from
  ``lib``, drawn by the book's ``_static/book_interactive.js``).
- :mod:`lib.structured`: perturb-and-MAP over structures, ordered draws without replacement.
- :mod:`lib.subsets`: subsets of size k: the k-subset law by dynamic programming, relaxed
  and straight-through top-k, SIMPLE, I-MLE.
- :mod:`lib.hardkuma`: the Kumaraswamy distribution and the HardKuma (stretched and rectified:
  exact zeros and ones with reparameterised samples, point masses in closed form).
- :mod:`lib.perturbed`: perturbed optimizers: a differentiable layer from any argmax oracle.
- :mod:`lib.sparse`: sparsemax, 1.5-entmax, and exact expectations over their sparse support.
- :mod:`lib.permutations`: permutations: Sinkhorn, Gumbel-Sinkhorn, Gumbel-matching, the
  exact Gibbs law and its marginals by enumeration (n <= 8), and ``PermutationNode``, the
  registry's stochastic node over permutations.
- :mod:`lib.estimators`: straight-through, REINFORCE, baselines, exact gradients by enumeration.
- :mod:`lib.schedules`: temperature annealing.
- :mod:`lib.compare`: gradient estimators with one signature, measured against the exact gradient
  (categorical, Bernoulli, k-subset and permutation problems).
- :mod:`lib.sequences`: REINFORCE for token sequences (RLOO, GRPO, Dr. GRPO), exact by
  enumeration on a tiny autoregressive policy.
- :mod:`lib.bottleneck`: a discrete-bottleneck autoencoder for training experiments.
- :mod:`lib.rationales`: the rationales case study, a package with one module per concept:
  ``data`` (synthetic reviews, CSV loader), ``model``, ``objective`` (the loss, with any
  registered estimator), ``metrics``, ``training``, ``hardkuma`` (HardKuma gates, Bastings et
  al. 2019) and ``display``.
- :mod:`lib.vae`: the categorical VAE case study on scikit-learn's 8x8 digits.
- :mod:`lib.plotting`: the book's figure style and plot helpers.
- :mod:`lib.text`: tokens highlighted as coloured HTML (rationales).
- :mod:`lib.graphs`: computation graphs drawn with matplotlib, with their gradient paths.
- :mod:`lib.training`: training runs whose results do not depend on the CPU.
- :mod:`lib.lagrangian`: a constraint on an expectation held by a Lagrange multiplier
  (projected gradient ascent on a moving average).
- :mod:`lib.rng`: random numbers for tensors on any device from one generator.
- :mod:`lib.utils`: seeding, device choice, printing rounding-level values as bounds.
- :mod:`lib.grading`: the exercise checker and the batch grader.

Validation, as in ``torch.distributions``: every function checks its arguments' types and
shapes, and (by default) their values too, which reads tensor data back from the device.
:func:`set_default_validate_args` turns the value checks off for the process (and all the
checks of the per-sample samplers, as in ``torch.nn.functional``), the context manager
:class:`validate_args` for a block; :func:`get_default_validate_args` reads the setting. The
value checks are also left out while ``torch.compile`` traces a function (see
:mod:`lib._validation`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
#: Tells this package from any other module named ``lib`` (checked by every notebook's set-up
#: cell, see tools/setup_cell.py).
__book__ = "discrete-choices-book"

#: The validation switch, from :mod:`lib._validation`: attributes of ``lib``, imported on first
#: use so that ``import lib`` (the set-up cell's check of ``__book__``) does not import torch.
__all__ = ["get_default_validate_args", "set_default_validate_args", "validate_args"]
_VALIDATION_NAMES = frozenset(__all__)

if TYPE_CHECKING:
    from lib._validation import (
        get_default_validate_args,
        set_default_validate_args,
        validate_args,
    )


def __getattr__(name: str) -> Any:
    if name in _VALIDATION_NAMES:
        from lib import _validation

        return getattr(_validation, name)
    raise AttributeError(f"module 'lib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_VALIDATION_NAMES])
