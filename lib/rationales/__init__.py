r"""Rationales for text classification: data, the selector/classifier model, its estimators.

The model of Lei, Barzilay, Jaakkola (2016), as in the lecture: for a text
:math:`x = (x_1, \dots, x_n)` a **generator** gives every token a keep-probability, a mask is
sampled, and a **classifier** sees only the kept tokens,

.. math:: Z_i \mid x \sim \mathrm{Bernoulli}\big(g_i(x, \phi)\big), \qquad
          Y \mid x, Z \sim \mathrm{Categorical}\big(f(x \odot Z, \theta)\big).

In code the generator network is called the **selector**, because ``generator`` is the
random-number generator everywhere in the book. Training minimises the expected cost

.. math:: \mathbb{E}_{z \sim g(x,\phi)}\Big[-\log f_y(x \odot z, \theta)
          + \lambda_1 \sum_t z_t + \lambda_2 \sum_{t \ge 2} |z_t - z_{t-1}|\Big],

the cross-entropy plus the sparsity and coherence penalties of Lei et al. The mask is discrete,
so the gradient with respect to :math:`\phi` needs an estimator (:data:`ESTIMATORS`).

One module per concept; every public name is re-exported here, so ``from lib.rationales import
X`` works for all of them:

* :mod:`lib.rationales.data`: :func:`make_synthetic_reviews` (reviews with planted, known
  rationales), :func:`load_reviews_csv` (your own texts and labels), :func:`tokenize`,
  :class:`Vocabulary`, :class:`RationaleData`, :func:`train_test_split`,
  :func:`sample_csv_path`.
* :mod:`lib.rationales.model`: :class:`RationaleModel`.
* :mod:`lib.rationales.objective`: :func:`rationale_penalty`, :func:`rationale_loss` (with
  any estimator of :mod:`lib.estimators`' registry), :func:`selector_gradients`,
  :func:`estimator_label`.
* :mod:`lib.rationales.metrics`: :func:`precision_recall_f1`, :func:`evaluate_rationales`.
* :mod:`lib.rationales.training`: :func:`train_rationale_model`, :class:`TrainHistory`,
  :func:`train_side_by_side` (many seeds at once).
* :mod:`lib.rationales.hardkuma`: :class:`HardKumaRationaleModel` (HardKuma gates, Bastings
  et al. 2019), :func:`hardkuma_rationale_terms` (cross-entropy by reparameterisation, the
  expected kept tokens and switches in closed form), :func:`train_hardkuma_side_by_side`
  (a fixed price or a target selection rate held by a Lagrange multiplier),
  :class:`HardKumaRun`.
* :mod:`lib.rationales.display`: :func:`format_results`, :func:`show_rationales` (planted and
  selected tokens as coloured HTML), :func:`plot_learning_curves`.

References:
    T. Lei, R. Barzilay, T. Jaakkola (2016), *Rationalizing Neural Predictions*, EMNLP.
    J. Bastings, W. Aziz, I. Titov (2019), *Interpretable Neural Predictions with
    Differentiable Binary Variables*, ACL.
    C. J. Maddison, A. Mnih, Y. W. Teh (2017), *The Concrete Distribution*, ICLR.
"""

from lib.rationales.data import (
    CONNECTORS,
    FILLERS,
    NEGATIVE_WORDS,
    NEGATORS,
    OTHER_NOUNS,
    POSITIVE_WORDS,
    SYNTHETIC_VOCABULARY,
    TOPIC_NOUNS,
    ZIPF_FILLERS,
    ZIPF_VOCABULARY,
    RationaleData,
    Vocabulary,
    load_reviews_csv,
    make_synthetic_reviews,
    sample_csv_path,
    tokenize,
    train_test_split,
)
from lib.rationales.display import (
    PLANTED_COLOR,
    format_results,
    plot_learning_curves,
    show_rationales,
)
from lib.rationales.hardkuma import (
    HardKumaRationaleModel,
    HardKumaRun,
    HardKumaTerms,
    hardkuma_rationale_terms,
    train_hardkuma_side_by_side,
)
from lib.rationales.metrics import METRICS, evaluate_rationales, precision_recall_f1
from lib.rationales.model import RationaleModel, Rationalizer
from lib.rationales.objective import (
    ESTIMATOR_LABELS,
    ESTIMATORS,
    MAX_EXACT_LENGTH,
    RationaleLoss,
    estimator_label,
    rationale_loss,
    rationale_penalty,
    selector_gradients,
)
from lib.rationales.training import TrainHistory, train_rationale_model, train_side_by_side

__all__ = [
    "CONNECTORS",
    "ESTIMATORS",
    "ESTIMATOR_LABELS",
    "FILLERS",
    "HardKumaRationaleModel",
    "HardKumaRun",
    "HardKumaTerms",
    "MAX_EXACT_LENGTH",
    "METRICS",
    "NEGATIVE_WORDS",
    "NEGATORS",
    "OTHER_NOUNS",
    "PLANTED_COLOR",
    "POSITIVE_WORDS",
    "SYNTHETIC_VOCABULARY",
    "TOPIC_NOUNS",
    "ZIPF_FILLERS",
    "ZIPF_VOCABULARY",
    "RationaleData",
    "RationaleLoss",
    "RationaleModel",
    "Rationalizer",
    "TrainHistory",
    "Vocabulary",
    "estimator_label",
    "evaluate_rationales",
    "format_results",
    "hardkuma_rationale_terms",
    "load_reviews_csv",
    "make_synthetic_reviews",
    "plot_learning_curves",
    "precision_recall_f1",
    "rationale_loss",
    "rationale_penalty",
    "sample_csv_path",
    "selector_gradients",
    "show_rationales",
    "tokenize",
    "train_hardkuma_side_by_side",
    "train_rationale_model",
    "train_side_by_side",
    "train_test_split",
]
