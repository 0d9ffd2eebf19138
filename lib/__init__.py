"""The code of the book *Gradients Through Discrete Choices*.

Modules, one concept each:

- :mod:`lib.gumbel`: the Gumbel distribution, the Gumbel-max trick, Gumbel-top-k.
- :mod:`lib.relaxed`: Gumbel-softmax (Concrete), the relaxed Bernoulli, tempered sampling.
- :mod:`lib.temperature`: the temperature experiment and total-variation distances.
- :mod:`lib.widgets`: the interactive temperature explorer (ipywidgets 7 and 8).
- :mod:`lib.interactive`: figures that stay interactive in the static web book (data from
  ``lib``, drawn by the book's ``_static/book_interactive.js``).
- :mod:`lib.structured`: perturb-and-MAP over structures, ordered draws without replacement.
- :mod:`lib.estimators`: straight-through, REINFORCE, baselines, exact gradients by enumeration.
- :mod:`lib.schedules`: temperature annealing.
- :mod:`lib.compare`: gradient estimators with one signature, measured against the exact gradient.
- :mod:`lib.bottleneck`: a discrete-bottleneck autoencoder for training experiments.
- :mod:`lib.rationales`: the rationales case study, a package with one module per concept:
  ``data`` (synthetic reviews, CSV loader), ``model``, ``objective`` (the loss, with any
  registered estimator), ``metrics``, ``training`` and ``display``.
- :mod:`lib.vae`: the categorical VAE case study on scikit-learn's 8x8 digits.
- :mod:`lib.plotting`: the book's figure style and plot helpers.
- :mod:`lib.text`: tokens highlighted as coloured HTML (rationales).
- :mod:`lib.graphs`: computation graphs drawn with matplotlib, with their gradient paths.
- :mod:`lib.training`: training runs whose results do not depend on the CPU.
- :mod:`lib.rng`: random numbers for tensors on any device from one generator.
- :mod:`lib.utils`: seeding, device choice, printing rounding-level values as bounds.
- :mod:`lib.grading`: the exercise checker and the batch grader.
"""

__version__ = "0.1.0"
#: Tells this package from any other module named ``lib`` (checked by every notebook's set-up
#: cell, see tools/setup_cell.py).
__book__ = "discrete-choices-book"
