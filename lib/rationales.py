r"""Rationales for text classification: data, the selector/classifier model, four estimators.

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

* Data: :func:`make_synthetic_reviews` (reviews with planted, known rationales),
  :func:`load_reviews_csv` (your own texts and labels), :func:`tokenize`, :class:`Vocabulary`,
  :class:`RationaleData`, :func:`train_test_split`, :func:`sample_csv_path`.
* Model: :class:`RationaleModel`.
* Objective and estimators: :func:`rationale_penalty`, :func:`rationale_loss`,
  :func:`selector_gradients`.
* Metrics and training: :func:`precision_recall_f1`, :func:`evaluate_rationales`,
  :func:`train_rationale_model`, :class:`TrainHistory`, :func:`format_results`,
  :func:`train_side_by_side` (many seeds at once).
* Display: :func:`show_rationales` (planted and selected tokens as coloured HTML),
  :func:`plot_learning_curves`.

References:
    T. Lei, R. Barzilay, T. Jaakkola (2016), *Rationalizing Neural Predictions*, EMNLP.
    J. Bastings, W. Aziz, I. Titov (2019), *Interpretable Neural Predictions with
    Differentiable Binary Variables*, ACL.
    C. J. Maddison, A. Mnih, Y. W. Teh (2017), *The Concrete Distribution*, ICLR.
"""

from __future__ import annotations

import csv
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lib import rng
from lib._validation import (
    check_bool,
    check_generator,
    check_int,
    check_real,
    check_tau,
    type_name,
)
from lib.estimators import enumerate_binary, leave_one_out_baseline, reinforce_surrogate
from lib.relaxed import relaxed_bernoulli
from lib.training import snap_

__all__ = [
    "ESTIMATORS",
    "ESTIMATOR_LABELS",
    "MAX_EXACT_LENGTH",
    "METRICS",
    "PLANTED_COLOR",
    "SYNTHETIC_VOCABULARY",
    "RationaleData",
    "RationaleLoss",
    "RationaleModel",
    "TrainHistory",
    "Vocabulary",
    "evaluate_rationales",
    "format_results",
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
    "train_rationale_model",
    "train_side_by_side",
    "train_test_split",
]

#: The training modes of :func:`rationale_loss`: four estimators of the selector's gradient,
#: and ``"full_text"``, a baseline that keeps every token (no selector, no penalties).
ESTIMATORS = ("exact", "reinforce", "relaxed", "straight_through", "full_text")

#: Names for tables and legends.
ESTIMATOR_LABELS = {
    "exact": "exact (enumeration)",
    "reinforce": "REINFORCE + LOO",
    "relaxed": "relaxed (Binary Concrete)",
    "straight_through": "straight-through",
    "full_text": "full text (no selection)",
}

#: Longest text for ``estimator="exact"``: enumeration costs 2**length masks per text.
MAX_EXACT_LENGTH = 12

# --------------------------------------------------------------------------------------------
# Tokens and vocabulary
# --------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Split a text into lower-case tokens: words (with inner apostrophes) and punctuation.

    Args:
        text: a string.

    Returns:
        The list of tokens.

    Example:
        >>> tokenize("Didn't like it. Not GOOD!")
        ["didn't", 'like', 'it', '.', 'not', 'good', '!']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type_name(text)}")
    return _TOKEN.findall(text.lower())


class Vocabulary:
    """A bijection between words and integer ids; id 0 is padding, id 1 unknown words.

    Args:
        words: the words, in the order their ids should follow (duplicates and the two
            special tokens are skipped).

    Example:
        >>> vocab = Vocabulary(["good", "bad"])
        >>> vocab.encode(["good", "film"]), len(vocab)
        ([2, 1], 4)
    """

    PAD = "<pad>"
    UNK = "<unk>"
    pad_index = 0
    unk_index = 1

    def __init__(self, words: Iterable[str]) -> None:
        self.words: list[str] = [self.PAD, self.UNK]
        self._index = {self.PAD: 0, self.UNK: 1}
        for w in words:
            if not isinstance(w, str):
                raise TypeError(f"words must be strings, got {type_name(w)} {w!r}")
            if w not in self._index:
                self._index[w] = len(self.words)
                self.words.append(w)

    @classmethod
    def from_texts(cls, texts: Iterable[Sequence[str]], *, min_count: int = 1) -> Vocabulary:
        """A vocabulary of the words seen at least ``min_count`` times in tokenised texts,
        most frequent first (ties in alphabetical order, so the ids are reproducible)."""
        min_count = check_int(min_count, "min_count", min_value=1)
        counts = Counter(w for tokens in texts for w in tokens)
        kept = sorted((w for w, c in counts.items() if c >= min_count),
                      key=lambda w: (-counts[w], w))
        return cls(kept)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def index(self, word: str) -> int:
        """The id of ``word`` (the unknown id for a word outside the vocabulary)."""
        return self._index.get(word, self.unk_index)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Ids of a list of tokens."""
        return [self.index(t) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words of a sequence of ids."""
        return [self.words[int(i)] for i in ids]

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} words incl. {self.PAD} and {self.UNK})"


# --------------------------------------------------------------------------------------------
# Data sets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RationaleData:
    """Padded token ids, labels and (when known) the true rationale of each text.

    Attributes:
        tokens: LongTensor ``[N, L]`` of word ids, ``vocab.pad_index`` after each text's end.
        mask: BoolTensor ``[N, L]``: True on real tokens, False on padding.
        labels: LongTensor ``[N]`` of class ids in ``0 .. len(label_names) - 1``.
        vocab: the :class:`Vocabulary` of ``tokens``.
        label_names: the name of each class id.
        rationales: BoolTensor ``[N, L]`` marking the true rationale tokens, or None when
            unknown (your own data).
    """

    tokens: Tensor
    mask: Tensor
    labels: Tensor
    vocab: Vocabulary
    label_names: tuple[str, ...]
    rationales: Tensor | None = None

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def lengths(self) -> Tensor:
        """LongTensor ``[N]``: number of real tokens of each text."""
        return self.mask.sum(-1)

    def __getitem__(self, index: Any) -> RationaleData:
        """A subset (``data[:100]``, ``data[torch.tensor([3, 5])]``) as a new RationaleData."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return RationaleData(
            self.tokens[index], self.mask[index], self.labels[index], self.vocab,
            self.label_names, None if self.rationales is None else self.rationales[index],
        )

    def words(self, i: int) -> list[str]:
        """The tokens of text ``i`` (padding removed)."""
        n = int(self.mask[i].sum())
        return self.vocab.decode(self.tokens[i, :n].tolist())


def _pad(encoded: Sequence[Sequence[int]], pad_index: int) -> tuple[Tensor, Tensor]:
    length = max((len(e) for e in encoded), default=0)
    tokens = torch.full((len(encoded), length), pad_index, dtype=torch.long)
    mask = torch.zeros((len(encoded), length), dtype=torch.bool)
    for i, e in enumerate(encoded):
        tokens[i, : len(e)] = torch.tensor(e, dtype=torch.long)
        mask[i, : len(e)] = True
    return tokens, mask


#: Word lists of the synthetic reviews (see :func:`make_synthetic_reviews`).
POSITIVE_WORDS = ("good", "great", "superb", "wonderful", "fun", "moving")
NEGATIVE_WORDS = ("bad", "awful", "boring", "dull", "poor", "terrible")
NEGATORS = ("not", "never")
TOPIC_NOUNS = ("film", "movie", "plot", "acting", "story")
OTHER_NOUNS = ("popcorn", "seat", "parking", "ticket", "weather", "crowd")
CONNECTORS = ("but", "and", "while")
FILLERS = ("honestly", "overall", "well", "frankly", "really", "today", "again", "so",
           "i", "think", "this", "time")
#: The vocabulary of every synthetic data set (the same for every seed).
SYNTHETIC_VOCABULARY = Vocabulary(
    POSITIVE_WORDS + NEGATIVE_WORDS + NEGATORS + TOPIC_NOUNS + OTHER_NOUNS + CONNECTORS
    + ("was",) + FILLERS
)


def make_synthetic_reviews(
    n_reviews: int,
    *,
    seed: int = 0,
    p_distractor: float = 0.6,
    p_negation: float = 0.0,
    min_length: int = 5,
    max_length: int = 8,
) -> RationaleData:
    r"""Synthetic film reviews whose rationale is known: the words that decide the label.

    Each review is built from clauses ``NOUN was [NEGATOR] SENTIMENT``:

    1. A **target clause** about the film: ``NOUN`` from ``film movie plot acting story``,
       ``SENTIMENT`` from 6 positive and 6 negative words, preceded with probability
       ``p_negation`` by ``not``/``never``. The label is the polarity of the sentiment word,
       flipped by a negator (``plot was not dull`` is positive).
    2. With probability ``p_distractor``, a **distractor clause** about something else
       (``popcorn seat parking ticket weather crowd``) with its own sentiment word (and
       negation), drawn independently of the label. The two clauses come in a random order,
       joined by ``but``/``and``/``while``.
    3. Filler words (``honestly overall well ...``) before and after, up to a length drawn
       uniformly from ``min_length .. max_length`` (never shorter than the clauses).

    The **planted rationale** is the target clause's sentiment word and its negator if any
    (1 or 2 adjacent tokens); nouns, ``was``, connectors and fillers are not part of it.
    Because the target's position is random and the distractor uses the same sentiment
    words, neither a position rule nor a word list finds it: a selector must read the context
    (which noun precedes). A bag-of-words classifier over ALL tokens cannot tell which clause a
    sentiment word belongs to; over the rationale alone it can.

    Every draw comes from ``numpy.random.default_rng(seed)``, so a seed gives the same reviews
    on every machine; use different seeds for the training and test sets. The vocabulary
    (:data:`SYNTHETIC_VOCABULARY`: 41 words, padding and unknown) is the same for every seed.

    Args:
        n_reviews: number of reviews, >= 1.
        seed: seed of the NumPy generator, >= 0.
        p_distractor: probability that a review has a distractor clause.
        p_negation: probability that a clause's sentiment word is negated.
        min_length: shortest review in tokens, >= 3.
        max_length: longest review; at least the longest pair of clauses (7 tokens with
            distractors, 9 with distractors and negation).

    Returns:
        A :class:`RationaleData` with labels 0 = ``negative``, 1 = ``positive`` and the planted
        ``rationales``.

    Example:
        >>> data = make_synthetic_reviews(3, seed=0)
        >>> len(data), data.label_names
        (3, ('negative', 'positive'))
    """
    n_reviews = check_int(n_reviews, "n_reviews", min_value=1)
    seed = check_int(seed, "seed", min_value=0)
    p_distractor = _check_probability(p_distractor, "p_distractor")
    p_negation = _check_probability(p_negation, "p_negation")
    min_length = check_int(min_length, "min_length", min_value=3)
    max_length = check_int(max_length, "max_length", min_value=min_length)
    clause_length = 4 if p_negation > 0 else 3
    longest = 2 * clause_length + 1 if p_distractor > 0 else clause_length
    if max_length < longest:
        raise ValueError(
            f"max_length must be >= {longest}: with p_distractor={p_distractor} and "
            f"p_negation={p_negation} a review can need {longest} tokens, got {max_length}"
        )
    rng = np.random.default_rng(seed)
    vocab = SYNTHETIC_VOCABULARY
    encoded, truths, labels = [], [], []

    def clause(nouns: Sequence[str]) -> tuple[list[str], list[bool], bool]:
        positive = bool(rng.random() < 0.5)
        negated = bool(rng.random() < p_negation)
        words = [str(rng.choice(nouns)), "was"]
        if negated:
            words.append(str(rng.choice(NEGATORS)))
        words.append(str(rng.choice(POSITIVE_WORDS if positive else NEGATIVE_WORDS)))
        truth = [False, False] + [True] * (len(words) - 2)
        return words, truth, positive != negated

    for _ in range(n_reviews):
        words, truth, label = clause(TOPIC_NOUNS)
        if rng.random() < p_distractor:
            other, _, _ = clause(OTHER_NOUNS)
            joined = [str(rng.choice(CONNECTORS))] + other
            if rng.random() < 0.5:
                words, truth = words + joined, truth + [False] * len(joined)
            else:
                words, truth = other + joined[:1] + words, [False] * len(joined) + truth
        length = max(len(words), int(rng.integers(min_length, max_length + 1)))
        n_before = int(rng.integers(0, length - len(words) + 1))
        n_after = length - len(words) - n_before
        before = [str(w) for w in rng.choice(FILLERS, size=n_before)]
        after = [str(w) for w in rng.choice(FILLERS, size=n_after)]
        encoded.append(vocab.encode(before + words + after))
        truths.append([False] * n_before + truth + [False] * n_after)
        labels.append(int(label))
    tokens, mask = _pad(encoded, vocab.pad_index)
    rationales = torch.zeros_like(mask)
    for i, t in enumerate(truths):
        rationales[i, : len(t)] = torch.tensor(t, dtype=torch.bool)
    return RationaleData(tokens, mask, torch.tensor(labels, dtype=torch.long), vocab,
                         ("negative", "positive"), rationales)


def _check_probability(p: Any, name: str) -> float:
    p = check_real(p, name, ge=0.0)
    if p > 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    return p


def sample_csv_path() -> Path:
    """Path of ``lib/data/reviews_sample.csv``: 30 short film reviews (columns ``text,label``)
    written for the book and shipped with the package, to try :func:`load_reviews_csv` on.

    Example:
        >>> sample_csv_path().name
        'reviews_sample.csv'
    """
    return Path(__file__).resolve().parent / "data" / "reviews_sample.csv"


def load_reviews_csv(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    vocab: Vocabulary | None = None,
    label_names: Sequence[str] | None = None,
    min_count: int = 1,
    max_length: int | None = None,
) -> RationaleData:
    """Load your own texts and labels from a CSV file with a header row.

    Each text is split by :func:`tokenize`. Without ``vocab``, the vocabulary is built from
    these texts (words seen at least ``min_count`` times; the others become ``<unk>``). To
    load a separate test file, pass the training set's ``vocab`` and ``label_names``.

    Args:
        path: the CSV file (UTF-8, comma separated, quoted fields allowed).
        text_column: name of the column holding the texts.
        label_column: name of the column holding the labels (any strings, such as
            ``positive``/``negative`` or ``0``/``1``; surrounding spaces are ignored).
        vocab: an existing vocabulary to encode with, or None to build one.
        label_names: the class names in id order, or None for the sorted distinct labels.
        min_count: minimum count of a word to enter a new vocabulary.
        max_length: keep only the first ``max_length`` tokens of each text (None: all).

    Returns:
        A :class:`RationaleData` with ``rationales=None`` (the true rationale is unknown).

    Raises:
        ValueError: for a missing column, a file without rows, an empty text, or a label
            outside ``label_names``.

    Example:
        >>> data = load_reviews_csv(sample_csv_path())
        >>> len(data), data.label_names
        (30, ('negative', 'positive'))
    """
    path = Path(path)
    min_count = check_int(min_count, "min_count", min_value=1)
    if max_length is not None:
        max_length = check_int(max_length, "max_length", min_value=1)
    if vocab is not None and not isinstance(vocab, Vocabulary):
        raise TypeError(f"vocab must be a Vocabulary or None, got {type_name(vocab)}")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        for name, column in (("text_column", text_column), ("label_column", label_column)):
            if column not in columns:
                raise ValueError(f"{name}={column!r} is not a column of {path.name}; its "
                                 f"columns are {columns}")
        rows = [(row[text_column] or "", (row[label_column] or "").strip()) for row in reader]
    if not rows:
        raise ValueError(f"{path.name} has a header but no rows")
    texts = []
    for line, (text, _) in enumerate(rows, start=2):
        tokens = tokenize(text)
        if not tokens:
            raise ValueError(f"{path.name}, line {line}: the text is empty")
        texts.append(tokens if max_length is None else tokens[:max_length])
    if label_names is None:
        label_names = sorted({label for _, label in rows})
    label_names = tuple(str(n) for n in label_names)
    label_index = {n: i for i, n in enumerate(label_names)}
    labels = []
    for line, (_, label) in enumerate(rows, start=2):
        if label not in label_index:
            raise ValueError(f"{path.name}, line {line}: label {label!r} is not one of "
                             f"{list(label_names)}")
        labels.append(label_index[label])
    if vocab is None:
        vocab = Vocabulary.from_texts(texts, min_count=min_count)
    tokens, mask = _pad([vocab.encode(t) for t in texts], vocab.pad_index)
    return RationaleData(tokens, mask, torch.tensor(labels, dtype=torch.long), vocab,
                         label_names, None)


def train_test_split(
    data: RationaleData, test_fraction: float = 0.2, *, seed: int = 0,
    refit_vocab: bool = False,
) -> tuple[RationaleData, RationaleData]:
    """Shuffle ``data`` with ``seed`` and split it into a training and a test set.

    A vocabulary built from all the texts (as :func:`load_reviews_csv` builds one without
    ``vocab``) has seen the test texts: words that occur only there get ids of their own,
    which training never updates. ``refit_vocab=True`` rebuilds the vocabulary from the
    training texts alone (:meth:`Vocabulary.from_texts`, most frequent first) and encodes both
    parts with it, so that test words never seen in training become ``<unk>``, as they would
    for new texts. Leave it False for the synthetic reviews, whose vocabulary is fixed.

    Args:
        data: a :class:`RationaleData`.
        test_fraction: share of the texts in the test set, in (0, 1).
        seed: seed of the shuffle.
        refit_vocab: rebuild the vocabulary from the training texts only.

    Returns:
        ``(train, test)``; the test set has ``round(test_fraction * N)`` texts (at least 1).

    Example:
        >>> train, test = train_test_split(load_reviews_csv(sample_csv_path()), 0.2)
        >>> len(train), len(test)
        (24, 6)
    """
    if not isinstance(data, RationaleData):
        raise TypeError(f"data must be a RationaleData, got {type_name(data)}")
    test_fraction = check_real(test_fraction, "test_fraction", gt=0.0)
    if test_fraction >= 1:
        raise ValueError(f"test_fraction must be < 1, got {test_fraction}")
    seed = check_int(seed, "seed", min_value=0)
    n_test = max(1, round(test_fraction * len(data)))
    if n_test >= len(data):
        raise ValueError(f"{len(data)} texts are too few to split with test_fraction="
                         f"{test_fraction}")
    check_bool(refit_vocab, "refit_vocab")
    order = rng.randperm(len(data), generator=torch.Generator().manual_seed(seed),
                         device=data.tokens.device)
    train, test = data[order[n_test:]], data[order[:n_test]]
    if not refit_vocab:
        return train, test
    vocab = Vocabulary.from_texts(
        [w for w in train.words(i) if w != data.vocab.UNK] for i in range(len(train))
    )

    def encode(part: RationaleData) -> RationaleData:
        tokens, mask = _pad([vocab.encode(part.words(i)) for i in range(len(part))],
                            vocab.pad_index)
        return RationaleData(tokens, mask, part.labels, vocab, part.label_names,
                             part.rationales)

    return encode(train), encode(test)


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


class RationaleModel(nn.Module):
    r"""Selector (the lecture's generator) and bag-of-words classifier.

    * Selector: word embeddings, two 1-D convolutions over the sequence with ReLU (each
      token's keep-logit sees ``kernel_size - 1`` neighbours on each side), then one linear
      unit: :math:`g_i(x, \phi) = \sigma(\ell_i)`. Its output layer starts at zero weights
      and bias :math:`\mathrm{logit}(p_0)`, so every token starts with keep-probability
      ``init_keep_prob``.
    * Classifier: its own embeddings :math:`e(x_i)`, pooled by the mask as a weighted sum,
      then a hidden ``tanh`` layer and a linear output, both without bias terms:

      .. math:: f(x \odot z, \theta) = \mathrm{softmax}\big(W_2 \tanh(W_1 \textstyle\sum_i
                z_i\, e(x_i))\big).

      ``z`` may be 0/1 (a sampled mask) or in [0, 1] (a relaxed one). Without bias terms the
      empty selection gives logits 0, a uniform prediction: selecting nothing cannot stand
      for a class.

    The classifier is deliberately order-blind: all it knows is which words were kept, so it
    needs a good selection to tell the film's sentiment word from a distractor's.

    Args:
        vocab_size: number of word ids (``len(vocab)``).
        n_classes: number of labels.
        embedding_dim: size of both embeddings.
        hidden_dim: channels of the convolutions and width of the classifier's hidden layer.
        kernel_size: odd width of the convolutions.
        pad_index: id of the padding word (its embeddings are zero).
        init_keep_prob: keep-probability of every token at initialisation, in (0, 1).

    Example:
        >>> model = RationaleModel(vocab_size=10)
        >>> tokens, mask = torch.tensor([[2, 3, 4, 0]]), torch.tensor([[1, 1, 1, 0]]).bool()
        >>> model.keep_logits(tokens, mask).shape, model.classify(tokens, mask.float()).shape
        (torch.Size([1, 4]), torch.Size([1, 2]))
    """

    def __init__(
        self,
        vocab_size: int,
        n_classes: int = 2,
        *,
        embedding_dim: int = 16,
        hidden_dim: int = 32,
        kernel_size: int = 5,
        pad_index: int = 0,
        init_keep_prob: float = 0.5,
    ) -> None:
        super().__init__()
        vocab_size = check_int(vocab_size, "vocab_size", min_value=2)
        n_classes = check_int(n_classes, "n_classes", min_value=2)
        embedding_dim = check_int(embedding_dim, "embedding_dim", min_value=1)
        hidden_dim = check_int(hidden_dim, "hidden_dim", min_value=1)
        kernel_size = check_int(kernel_size, "kernel_size", min_value=1)
        pad_index = check_int(pad_index, "pad_index", min_value=0, max_value=vocab_size - 1)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (a same-length convolution), got "
                             f"{kernel_size}")
        init_keep_prob = _check_probability(init_keep_prob, "init_keep_prob")
        if not 0 < init_keep_prob < 1:
            raise ValueError(f"init_keep_prob must be in (0, 1), got {init_keep_prob}")
        pad = kernel_size // 2
        self.selector_embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_index)
        self.selector_conv1 = nn.Conv1d(embedding_dim, hidden_dim, kernel_size, padding=pad)
        self.selector_conv2 = nn.Conv1d(hidden_dim, hidden_dim, kernel_size, padding=pad)
        self.selector_out = nn.Linear(hidden_dim, 1)
        with torch.no_grad():
            self.selector_out.weight.zero_()
            self.selector_out.bias.fill_(math.log(init_keep_prob / (1 - init_keep_prob)))
        self.classifier_embedding = nn.Embedding(vocab_size, embedding_dim,
                                                 padding_idx=pad_index)
        self.classifier_hidden = nn.Linear(embedding_dim, hidden_dim, bias=False)
        self.classifier_out = nn.Linear(hidden_dim, n_classes, bias=False)

    def keep_logits(self, tokens: Tensor, mask: Tensor) -> Tensor:
        r"""Keep-logits :math:`\ell_i` with :math:`g_i = \sigma(\ell_i)`, shape ``[B, L]``.

        Padding is zeroed before each convolution (as the convolution's own zero padding
        does beyond the ends), so a text's logits do not depend on how much padding follows
        it. Logits at padded positions are meaningless: multiply every mask by ``mask``.

        Args:
            tokens: LongTensor ``[B, L]``.
            mask: BoolTensor ``[B, L]``, True on real tokens.
        """
        valid = mask.unsqueeze(1).to(torch.get_default_dtype())  # [B, 1, L]
        x = self.selector_embedding(tokens).transpose(1, 2) * valid  # [B, E, L]
        h = torch.relu(self.selector_conv1(x)) * valid
        h = torch.relu(self.selector_conv2(h))
        return self.selector_out(h.transpose(1, 2)).squeeze(-1)

    def classify(self, tokens: Tensor, z: Tensor) -> Tensor:
        """Class logits ``[..., B, n_classes]`` from the kept tokens.

        Args:
            tokens: LongTensor ``[B, L]``.
            z: masks ``[..., B, L]`` (leading sample dimensions allowed), zero on padding.
        """
        # W1 (sum_i z_i e_i) = sum_i z_i (W1 e_i): project each token once, then pool. Same
        # function as pooling first, and much cheaper when z holds many masks per text
        # (2**L of them for estimator="exact").
        per_token = self.classifier_hidden(self.classifier_embedding(tokens))  # [B, L, H]
        hidden = torch.tanh(torch.einsum("...bl,blh->...bh", z, per_token))
        return self.classifier_out(hidden)


def _selector_parameters(model: RationaleModel) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if n.startswith("selector")]


# --------------------------------------------------------------------------------------------
# Objective
# --------------------------------------------------------------------------------------------


def rationale_penalty(z: Tensor, mask: Tensor, lambda1: float, lambda2: float) -> Tensor:
    r"""Sparsity and coherence penalties of Lei et al. (2016), per text.

    .. math:: \Omega(z) = \lambda_1 \sum_{t} z_t + \lambda_2 \sum_{t \ge 2} |z_t - z_{t-1}|,

    where the sums run over real tokens only: entries of ``z`` at padding are ignored, and a
    pair ``(t-1, t)`` counts only when both are real tokens. There is no boundary term: a
    selection that starts at the first token pays one switch fewer.

    Args:
        z: masks ``[..., B, L]`` (0/1, or relaxed values in [0, 1]).
        mask: boolean ``[B, L]`` (broadcastable to ``z``), True on real tokens.
        lambda1: weight of the number of kept tokens, >= 0.
        lambda2: weight of the number of switches between kept and dropped, >= 0.

    Returns:
        Tensor ``[..., B]``.

    Example:
        >>> z = torch.tensor([[0.0, 1.0, 1.0, 0.0, 1.0]])
        >>> mask = torch.tensor([[True, True, True, True, False]])
        >>> rationale_penalty(z, mask, 1.0, 10.0)  # 2 kept, 2 switches; padding ignored
        tensor([22.])

    Reference:
        Lei, Barzilay, Jaakkola (2016), *Rationalizing Neural Predictions*, EMNLP, eq. (3).
    """
    if not isinstance(z, Tensor) or not z.is_floating_point():
        raise TypeError(f"z must be a floating-point torch.Tensor, got {type_name(z)}")
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type_name(mask)}")
    lambda1 = check_real(lambda1, "lambda1", ge=0.0)
    lambda2 = check_real(lambda2, "lambda2", ge=0.0)
    valid = mask.to(z.dtype)
    z = z * valid
    pairs = valid[..., 1:] * valid[..., :-1]
    switches = ((z[..., 1:] - z[..., :-1]).abs() * pairs).sum(-1)
    return lambda1 * z.sum(-1) + lambda2 * switches


def _cost(model: RationaleModel, tokens: Tensor, labels: Tensor, z: Tensor, mask: Tensor,
          lambda1: float, lambda2: float) -> tuple[Tensor, Tensor]:
    """(cost, cross-entropy), each ``[..., B]``, for masks ``z`` ``[..., B, L]``."""
    logits = model.classify(tokens, z)
    target = labels.expand(logits.shape[:-1])
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                         reduction="none").reshape(target.shape)
    return ce + rationale_penalty(z, mask, lambda1, lambda2), ce


def _bernoulli_log_prob(logits: Tensor, z: Tensor, valid: Tensor) -> Tensor:
    """log p(z) = sum over real tokens of z log g + (1 - z) log(1 - g), shape ``[..., B]``."""
    per_token = z * F.logsigmoid(logits) + (1 - z) * F.logsigmoid(-logits)
    return (per_token * valid).sum(-1)


class RationaleLoss(NamedTuple):
    """What :func:`rationale_loss` returns.

    Attributes:
        loss: scalar to minimise. Its gradient is the estimator's; for ``reinforce`` its
            value is not the cost (it includes the REINFORCE surrogate).
        cost: detached scalar: the batch mean of the (estimated) expected cost.
        cross_entropy: detached scalar: the batch mean of the (estimated) expected
            cross-entropy.
        kept: detached scalar: the (estimated) expected fraction of real tokens kept.
    """

    loss: Tensor
    cost: Tensor
    cross_entropy: Tensor
    kept: Tensor


def rationale_loss(
    model: RationaleModel,
    tokens: Tensor,
    mask: Tensor,
    labels: Tensor,
    estimator: str,
    *,
    lambda1: float = 0.02,
    lambda2: float = 0.02,
    tau: float = 0.5,
    n_samples: int = 4,
    generator: torch.Generator | None = None,
) -> RationaleLoss:
    r"""The training loss of a batch for one of :data:`ESTIMATORS`.

    Every estimator targets the same objective,
    :math:`\frac1B\sum_b \mathbb{E}_{z\sim g(x_b)}[\mathrm{cost}(z)]` with cost =
    cross-entropy + :func:`rationale_penalty`; they differ in the gradient:

    * ``exact``: enumerate all :math:`2^L` masks of the batch's longest text
      (:math:`L \le` :data:`MAX_EXACT_LENGTH`), weight each by its probability (zero for masks
      that keep padding) and differentiate the exact expectation: exact gradients for the
      selector and the classifier, at a cost that doubles with every extra token.
    * ``reinforce``: ``n_samples`` masks per text (>= 2). The classifier gets the gradient of
      the mean sampled cost; the selector gets REINFORCE
      (:func:`lib.estimators.reinforce_surrogate`) with the leave-one-out baseline over the
      masks of the same text (:func:`lib.estimators.leave_one_out_baseline`). Unbiased.
    * ``relaxed``: Binary Concrete masks (:func:`lib.relaxed.relaxed_bernoulli` at
      temperature ``tau``) with values in (0, 1), used everywhere (classifier and penalties).
      Biased; the classifier learns on soft masks but is tested on 0/1 ones.
    * ``straight_through``: the same noise thresholded to exact 0/1 masks in the forward
      pass, the Binary Concrete gradient in the backward pass (``hard=True``). Biased.
    * ``full_text``: no selection, ``z = mask``; cross-entropy only (a baseline).

    Args:
        model: a :class:`RationaleModel`.
        tokens: LongTensor ``[B, L]``.
        mask: BoolTensor ``[B, L]``, True on real tokens.
        labels: LongTensor ``[B]``.
        estimator: one of :data:`ESTIMATORS`.
        lambda1: sparsity weight (per kept token), >= 0.
        lambda2: coherence weight (per switch), >= 0.
        tau: temperature of ``relaxed`` and ``straight_through``, > 0.
        n_samples: masks per text for ``reinforce`` (>= 2), ``relaxed`` and
            ``straight_through``.
        generator: ``torch.Generator`` for the masks, on the CPU or on the model's device.

    Returns:
        A :class:`RationaleLoss`.

    Example:
        >>> data = make_synthetic_reviews(8, seed=0)
        >>> model = RationaleModel(len(data.vocab))
        >>> out = rationale_loss(model, data.tokens, data.mask, data.labels, "exact")
        >>> out.loss.backward()
    """
    estimator = _check_estimator(estimator)
    if not isinstance(tokens, Tensor) or tokens.dtype != torch.long or tokens.dim() != 2:
        raise TypeError("tokens must be a 2-D LongTensor [B, L] of word ids")
    if not isinstance(mask, Tensor) or mask.shape != tokens.shape:
        raise ValueError(f"mask must be a tensor of the shape of tokens {tuple(tokens.shape)}")
    if not isinstance(labels, Tensor) or labels.shape != tokens.shape[:1]:
        raise ValueError(f"labels must be a tensor of shape [{tokens.shape[0]}]")
    lambda1 = check_real(lambda1, "lambda1", ge=0.0)
    lambda2 = check_real(lambda2, "lambda2", ge=0.0)
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    check_generator(generator, like=tokens)
    mask = mask.bool()
    length = int(mask.sum(-1).max()) if mask.numel() else 0
    if length == 0:
        raise ValueError("the batch has no real token (mask is all False)")
    tokens, mask = tokens[:, :length], mask[:, :length]  # drop the all-padding columns
    valid = mask.to(torch.get_default_dtype())
    n_real = valid.sum()

    if estimator == "full_text":
        _, ce = _cost(model, tokens, labels, valid, mask, 0.0, 0.0)
        loss = ce.mean()
        return RationaleLoss(loss, loss.detach(), loss.detach(),
                             torch.tensor(1.0, device=loss.device))

    logits = model.keep_logits(tokens, mask)
    if estimator == "exact":
        if length > MAX_EXACT_LENGTH:
            raise ValueError(
                f"estimator='exact' enumerates 2**L masks; the batch's longest text has "
                f"L={length} > MAX_EXACT_LENGTH={MAX_EXACT_LENGTH} tokens: use shorter texts "
                f"or a sampling estimator"
            )
        configs = enumerate_binary(length, dtype=logits.dtype, device=logits.device)  # [C, L]
        z = configs.unsqueeze(1) * valid  # [C, B, L]
        log_p = _bernoulli_log_prob(logits, z, valid)  # [C, B]
        keeps_padding = (configs.unsqueeze(1) * (1 - valid)).sum(-1) > 0  # [C, B]
        weights = log_p.masked_fill(keeps_padding, -math.inf).exp()  # sums to 1 over C
        cost, ce = _cost(model, tokens, labels, z, mask, lambda1, lambda2)
        expected = (weights * cost).sum(0)
        kept = (torch.sigmoid(logits.detach()) * valid).sum() / n_real
        return RationaleLoss(expected.mean(), expected.mean().detach(),
                             (weights * ce).sum(0).mean().detach(), kept)

    shape = (n_samples, *logits.shape)
    if estimator == "reinforce":
        if n_samples < 2:
            raise ValueError("estimator='reinforce' needs n_samples >= 2 for the "
                             "leave-one-out baseline")
        u = rng.rand(shape, generator=generator, dtype=logits.dtype, device=logits.device)
        z = (u < torch.sigmoid(logits.detach())).to(logits.dtype) * valid
        cost, ce = _cost(model, tokens, labels, z, mask, lambda1, lambda2)  # [S, B]
        log_p = _bernoulli_log_prob(logits, z, valid)
        surrogate = reinforce_surrogate(log_p, cost, leave_one_out_baseline(cost))
        loss = cost.mean() + surrogate  # classifier: sampled cost; selector: REINFORCE
    else:
        tau = check_tau(tau)
        z = relaxed_bernoulli(logits.expand(shape), tau, hard=estimator == "straight_through",
                              generator=generator) * valid
        cost, ce = _cost(model, tokens, labels, z, mask, lambda1, lambda2)
        loss = cost.mean()
    kept = (z.detach() * valid).sum((-2, -1)).mean() / n_real
    return RationaleLoss(loss, cost.mean().detach(), ce.mean().detach(), kept)


def _check_estimator(estimator: Any) -> str:
    if not isinstance(estimator, str) or estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    return estimator


def selector_gradients(
    model: RationaleModel,
    tokens: Tensor,
    mask: Tensor,
    labels: Tensor,
    estimator: str,
    *,
    n_repeats: int = 1,
    generator: torch.Generator | None = None,
    **loss_kwargs: Any,
) -> Tensor:
    r"""Independent estimates of the gradient of the batch's loss w.r.t. the selector's parameters.

    Each repeat calls :func:`rationale_loss` with fresh masks and backpropagates; the
    selector's gradient is flattened into one row. With ``estimator="exact"`` every row is the
    exact gradient of the expected cost. The model's ``.grad`` fields are left untouched.

    Args:
        model: a :class:`RationaleModel`.
        tokens, mask, labels: one batch, as for :func:`rationale_loss`.
        estimator: ``exact``, ``reinforce``, ``relaxed`` or ``straight_through``.
        n_repeats: number of independent estimates.
        generator: ``torch.Generator`` for the masks, on the CPU or on the model's device.
        **loss_kwargs: ``lambda1``, ``lambda2``, ``tau``, ``n_samples``.

    Returns:
        Tensor ``[n_repeats, P]``, P = number of selector parameters.

    Example:
        >>> data = make_synthetic_reviews(4, seed=0)
        >>> model = RationaleModel(len(data.vocab))
        >>> selector_gradients(model, data.tokens, data.mask, data.labels, "exact").shape[0]
        1
    """
    estimator = _check_estimator(estimator)
    if estimator == "full_text":
        raise ValueError("full_text has no selector gradient")
    n_repeats = check_int(n_repeats, "n_repeats", min_value=1)
    check_generator(generator, like=tokens)
    params = _selector_parameters(model)
    rows = []
    for _ in range(n_repeats):
        out = rationale_loss(model, tokens, mask, labels, estimator, generator=generator,
                             **loss_kwargs)
        grads = torch.autograd.grad(out.loss, params, allow_unused=True)
        rows.append(torch.cat([
            (torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads)
        ]))
    return torch.stack(rows)


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def precision_recall_f1(
    selected: Tensor, truth: Tensor, mask: Tensor | None = None
) -> tuple[float, float, float]:
    r"""Token-level precision, recall and F1 of a selection, pooled over all texts.

    With :math:`TP` the number of real tokens both selected and in the true rationale,
    :math:`S` the number selected and :math:`T` the number in the truth, all counted over
    every text together (micro-average; padding excluded):

    .. math:: P = TP / S, \quad R = TP / T, \quad F_1 = 2PR / (P + R),

    where any 0/0 counts as 0 (nothing selected: :math:`P = 0`; empty truth: :math:`R = 0`;
    :math:`P = R = 0`: :math:`F_1 = 0`).

    Args:
        selected: 0/1 or boolean tensor ``[..., L]``: the selection.
        truth: 0/1 or boolean tensor of the same shape: the true rationale.
        mask: optional boolean tensor of the same shape, True on real tokens (None: all).

    Returns:
        ``(precision, recall, f1)`` as floats.

    Example:
        >>> precision_recall_f1(torch.tensor([1, 1, 0, 0]), torch.tensor([1, 0, 1, 0]))
        (0.5, 0.5, 0.5)
    """
    for name, x in (("selected", selected), ("truth", truth), ("mask", mask)):
        if x is not None and not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type_name(x)}")
    if selected.shape != truth.shape or (mask is not None and mask.shape != truth.shape):
        shapes = [tuple(x.shape) for x in (selected, truth, mask) if x is not None]
        raise ValueError(f"selected, truth and mask must have the same shape, got {shapes}")
    selected, truth = selected.bool(), truth.bool()
    if mask is not None:
        selected, truth = selected & mask.bool(), truth & mask.bool()
    tp = int((selected & truth).sum())
    n_selected, n_true = int(selected.sum()), int(truth.sum())
    precision = tp / n_selected if n_selected else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


@torch.no_grad()
def evaluate_rationales(
    model: RationaleModel,
    data: RationaleData,
    *,
    selection: str = "argmax",
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    r"""Accuracy and rationale quality of ``model`` on ``data``.

    The mask used at test time is, for ``selection``:

    * ``"argmax"``: the most likely mask, :math:`z_i = 1` iff :math:`g_i > 1/2` (deterministic;
      what the book's tables report);
    * ``"sample"``: one mask drawn from the selector (with ``generator``);
    * ``"all"``: every real token (for the ``full_text`` baseline).

    The predicted class is the argmax of the classifier's logits (ties, such as the uniform
    prediction of an empty selection, go to class 0).

    Args:
        model: a :class:`RationaleModel`.
        data: a :class:`RationaleData`; precision, recall and F1 are NaN when it has no
            ``rationales``.
        selection: ``"argmax"``, ``"sample"`` or ``"all"``.
        generator: ``torch.Generator`` for ``"sample"``, on the CPU or on the model's device.

    Returns:
        A dict with ``accuracy``, ``precision``, ``recall``, ``f1`` (pooled over the texts, see
        :func:`precision_recall_f1`), ``kept`` (fraction of real tokens selected), and
        ``g_planted`` and ``g_other``: the mean keep-probability :math:`g_i` of the true
        rationale's tokens and of the other real tokens (how sure the selector is; NaN
        without ``rationales`` or with ``selection="all"``).

    Example:
        >>> data = make_synthetic_reviews(20, seed=0)
        >>> model = RationaleModel(len(data.vocab), init_keep_prob=0.9)
        >>> evaluate_rationales(model, data)["kept"]
        1.0
    """
    if selection not in ("argmax", "sample", "all"):
        raise ValueError(f"selection must be 'argmax', 'sample' or 'all', got {selection!r}")
    if not isinstance(data, RationaleData):
        raise TypeError(f"data must be a RationaleData, got {type_name(data)}")
    device = next(model.parameters()).device
    check_generator(generator, device=device)
    tokens, mask = data.tokens.to(device), data.mask.to(device)
    valid = mask.to(torch.get_default_dtype())
    was_training = model.training
    model.eval()
    probs = None
    if selection == "all":
        z = valid
    else:
        logits = model.keep_logits(tokens, mask)
        probs = torch.sigmoid(logits).cpu()
        if selection == "argmax":
            z = (logits > 0).to(valid.dtype) * valid
        else:
            u = rng.rand(logits.shape, generator=generator, device=device)
            z = (u < torch.sigmoid(logits)).to(valid.dtype) * valid
    predicted = model.classify(tokens, z).argmax(-1).cpu()
    model.train(was_training)
    out = {"accuracy": float((predicted == data.labels).double().mean())}
    if data.rationales is None:
        out.update(precision=math.nan, recall=math.nan, f1=math.nan)
    else:
        p, r, f = precision_recall_f1(z.bool().cpu(), data.rationales, data.mask)
        out.update(precision=p, recall=r, f1=f)
    out["kept"] = float(z.sum() / valid.sum())
    out["g_planted"] = out["g_other"] = math.nan
    if probs is not None and data.rationales is not None:
        planted, other = data.rationales, data.mask & ~data.rationales
        out["g_planted"] = float(probs[planted].mean()) if planted.any() else math.nan
        out["g_other"] = float(probs[other].mean()) if other.any() else math.nan
    return out


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@dataclass
class TrainHistory:
    """What :func:`train_rationale_model` records.

    Attributes:
        estimator: the estimator's name.
        steps: the steps at which the test set was evaluated (0 = before training).
        train_cost: per evaluation, the mean of the (estimated) expected training cost over
            the steps since the previous evaluation (NaN at step 0).
        test: per evaluation, the dict of :func:`evaluate_rationales`.
        seconds: wall-clock seconds spent in optimisation steps (evaluations excluded).
    """

    estimator: str
    steps: list[int] = field(default_factory=list)
    train_cost: list[float] = field(default_factory=list)
    test: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def series(self, key: str) -> np.ndarray:
        """One test metric (a key of :func:`evaluate_rationales`) at every evaluation."""
        return np.array([t[key] for t in self.test])

    @property
    def final(self) -> dict[str, float]:
        """The last evaluation."""
        return self.test[-1]


def train_rationale_model(
    model: RationaleModel,
    train: RationaleData,
    test: RationaleData,
    estimator: str,
    *,
    n_steps: int = 150,
    batch_size: int = 32,
    lr: float = 1e-2,
    selector_lr: float | None = 2e-3,
    lambda1: float = 0.02,
    lambda2: float = 0.02,
    tau: float = 0.5,
    n_samples: int = 4,
    eval_every: int = 10,
    generator: torch.Generator | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> TrainHistory:
    r"""Train ``model`` with Adam and ``estimator`` on random minibatches; evaluate on ``test``.

    Each step draws ``batch_size`` training texts uniformly with replacement (from
    ``generator``), computes :func:`rationale_loss` and takes one Adam step: learning rate
    ``lr`` for the classifier, ``selector_lr`` for the selector. A selector that learns faster
    than the classifier tends to drop every token before the classifier has learned what the
    words mean (an empty selection is the cheapest once the penalties dominate), hence the
    smaller default. Before training and every ``eval_every`` steps,
    :func:`evaluate_rationales` runs on ``test`` with the argmax mask (``"all"`` for
    ``full_text``).

    The progress bar (tqdm, on stdout) shows the description, the percentage, the bar, the
    step count and the latest test accuracy and F1; it is refreshed only at evaluations and
    prints no rate or time, so its text is the same on every run.

    Args:
        model: the :class:`RationaleModel` to train (in place).
        train: training :class:`RationaleData`.
        test: evaluation :class:`RationaleData` (same vocabulary).
        estimator: one of :data:`ESTIMATORS`.
        n_steps: optimisation steps.
        batch_size: texts per step.
        lr: Adam's learning rate for the classifier (and the selector if ``selector_lr`` is
            None).
        selector_lr: Adam's learning rate for the selector.
        lambda1, lambda2: the penalties' weights (:func:`rationale_penalty`).
        tau: temperature of ``relaxed`` and ``straight_through``.
        n_samples: masks per text per step (see :func:`rationale_loss`).
        eval_every: steps between evaluations (the last step is always evaluated).
        generator: ``torch.Generator`` for the minibatches and the masks, on the CPU or on the
            model's device (a CPU generator gives the same minibatches and masks on every
            device, see :mod:`lib.rng`).
        progress: show the progress bar.
        desc: label of the progress bar (default: the estimator's name).

    Returns:
        A :class:`TrainHistory`.

    Example:
        >>> data = make_synthetic_reviews(64, seed=0)
        >>> model = RationaleModel(len(data.vocab))
        >>> h = train_rationale_model(model, data, data, "straight_through", n_steps=2,
        ...                           eval_every=1, progress=False)
        >>> h.steps
        [0, 1, 2]
    """
    from tqdm import tqdm

    estimator = _check_estimator(estimator)
    if not isinstance(model, RationaleModel):
        raise TypeError(f"model must be a RationaleModel, got {type_name(model)}")
    for name, d in (("train", train), ("test", test)):
        if not isinstance(d, RationaleData):
            raise TypeError(f"{name} must be a RationaleData, got {type_name(d)}")
    n_steps = check_int(n_steps, "n_steps", min_value=1)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    lr = check_real(lr, "lr", gt=0.0)
    selector_lr = lr if selector_lr is None else check_real(selector_lr, "selector_lr", gt=0.0)
    eval_every = check_int(eval_every, "eval_every", min_value=1)
    check_bool(progress, "progress")
    selection = "all" if estimator == "full_text" else "argmax"
    device = next(model.parameters()).device
    check_generator(generator, device=device)
    selector = _selector_parameters(model)
    classifier = [p for n, p in model.named_parameters() if not n.startswith("selector")]
    optimizer = torch.optim.Adam([{"params": selector, "lr": selector_lr},
                                  {"params": classifier, "lr": lr}])
    history = TrainHistory(estimator)

    def evaluate(step: int, costs: list[float]) -> None:
        history.steps.append(step)
        history.train_cost.append(float(np.mean(costs)) if costs else math.nan)
        history.test.append(evaluate_rationales(model, test, selection=selection))

    evaluate(0, [])
    bar = tqdm(
        total=n_steps, desc=desc or estimator, disable=not progress, file=sys.stdout,
        bar_format="{desc}: {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt}{postfix}",
        mininterval=0, miniters=1, maxinterval=math.inf, leave=True,
    )
    tokens, mask, labels = train.tokens.to(device), train.mask.to(device), train.labels.to(device)
    costs: list[float] = []
    shown = 0
    for step in range(1, n_steps + 1):
        start = time.perf_counter()
        index = rng.randint(len(train), (batch_size,), generator=generator, device=device)
        out = rationale_loss(model, tokens[index], mask[index], labels[index], estimator,
                             lambda1=lambda1, lambda2=lambda2, tau=tau, n_samples=n_samples,
                             generator=generator)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        snap_(model.parameters())  # the same weights on every CPU (lib.training)
        history.seconds += time.perf_counter() - start
        costs.append(float(out.cost))
        if step % eval_every == 0 or step == n_steps:
            evaluate(step, costs)
            costs = []
            last = history.final
            f1 = "" if math.isnan(last["f1"]) else f", F1 {last['f1']:.2f}"
            bar.set_postfix_str(f"test acc {last['accuracy']:.3f}{f1}", refresh=False)
            bar.update(step - shown)
            shown = step
    bar.close()
    return history


def format_results(histories: Sequence[TrainHistory]) -> str:
    """A text table of the final test metrics of several runs, one row per run.

    Columns: the estimator, test accuracy, rationale precision, recall and F1, the fraction of
    tokens kept, and the training time, last and written as ``12.3 s`` (the book's notebook
    checks ignore such times, which change from run to run).

    Args:
        histories: the :class:`TrainHistory` of each run.

    Returns:
        The table as a string (print it).

    Example:
        >>> h = TrainHistory("exact", [0], [math.nan], [dict(accuracy=1.0, precision=1.0,
        ...                  recall=0.5, f1=2 / 3, kept=0.1)], 1.5)
        >>> print(format_results([h]).splitlines()[-1])
        exact (enumeration)           1.000      1.000   0.500  0.667   0.100  1.5 s
    """
    header = (f"{'estimator':<27}{'accuracy':>8}{'precision':>11}{'recall':>8}{'F1':>7}"
              f"{'kept':>8}  time")
    rows = [header, "-" * len(header)]
    for h in histories:
        if not isinstance(h, TrainHistory):
            raise TypeError(f"histories must contain TrainHistory objects, got {type_name(h)}")
        r = h.final
        rows.append(f"{ESTIMATOR_LABELS.get(h.estimator, h.estimator):<27}"
                    f"{r['accuracy']:>8.3f}{r['precision']:>11.3f}{r['recall']:>8.3f}"
                    f"{r['f1']:>7.3f}{r['kept']:>8.3f}  {h.seconds:.1f} s")
    return "\n".join(rows)


class _SideBySide(nn.Module):
    """K :class:`RationaleModel` of the same shape as one module whose batch is K batches.

    Rows ``k*B .. (k+1)*B - 1`` of a batch of ``K*B`` texts go through model ``k``'s weights
    (stacked along a new first dimension), so :func:`rationale_loss` trains all K at once: each
    text's cost depends on its own model only, and ``K`` times the batch mean is the sum of the
    K models' own batch means.
    """

    def __init__(self, models: Sequence[RationaleModel]) -> None:
        super().__init__()
        self.k = len(models)
        self.pad = models[0].selector_conv1.padding[0]
        self.names = [n for n, _ in models[0].named_parameters()]
        self.stacked = nn.ParameterDict({
            n.replace(".", "__"): nn.Parameter(torch.stack([m.get_parameter(n).detach()
                                                            for m in models]))
            for n in self.names
        })

    def p(self, name: str) -> Tensor:
        return self.stacked[name.replace(".", "__")]

    def _split(self, tokens: Tensor) -> Tensor:
        return tokens.reshape(self.k, -1, tokens.shape[-1])  # [K, B, L]

    def _conv(self, x: Tensor, layer: str) -> Tensor:
        """x [K, B, C, L] through model k's conv1d ``layer``, as one batched matrix product of
        the windows (a grouped convolution takes a slower path in float64)."""
        w, bias = self.p(f"{layer}.weight"), self.p(f"{layer}.bias")  # [K, H, C, w], [K, H]
        k, b, c, length = x.shape
        windows = F.pad(x, (self.pad, self.pad)).unfold(-1, w.shape[-1], 1)  # [K, B, C, L, w]
        columns = windows.permute(0, 1, 3, 2, 4).reshape(k, b * length, -1)
        out = torch.bmm(columns, w.reshape(k, w.shape[1], -1).transpose(1, 2))  # [K, B*L, H]
        return out.reshape(k, b, length, -1).transpose(2, 3) + bias[:, None, :, None]

    def keep_logits(self, tokens: Tensor, mask: Tensor) -> Tensor:
        t = self._split(tokens)
        valid = self._split(mask).unsqueeze(2).to(torch.get_default_dtype())  # [K, B, 1, L]
        rows = torch.arange(self.k, device=tokens.device)[:, None, None]
        x = self.p("selector_embedding.weight")[rows, t].transpose(2, 3) * valid  # [K,B,E,L]
        h = torch.relu(self._conv(x, "selector_conv1")) * valid
        h = torch.relu(self._conv(h, "selector_conv2"))
        logits = (torch.einsum("kbhl,kh->kbl", h, self.p("selector_out.weight")[:, 0])
                  + self.p("selector_out.bias")[:, :, None])
        return logits.reshape(tokens.shape)

    def classify(self, tokens: Tensor, z: Tensor) -> Tensor:
        t = self._split(tokens)
        rows = torch.arange(self.k, device=tokens.device)[:, None, None]
        e = self.p("classifier_embedding.weight")[rows, t]  # [K, B, L, E]
        per_token = torch.einsum("kble,khe->kblh", e, self.p("classifier_hidden.weight"))
        zk = z.reshape(*z.shape[:-2], self.k, -1, z.shape[-1])
        hidden = torch.tanh(torch.einsum("...kbl,kblh->...kbh", zk, per_token))
        out = torch.einsum("...kbh,kch->...kbc", hidden, self.p("classifier_out.weight"))
        return out.reshape(*z.shape[:-1], out.shape[-1])

    @torch.no_grad()
    def write_back(self, models: Sequence[RationaleModel]) -> None:
        for i, m in enumerate(models):
            for n in self.names:
                m.get_parameter(n).copy_(self.p(n)[i])


def train_side_by_side(
    models: Sequence[RationaleModel],
    train: RationaleData,
    estimator: str,
    *,
    n_steps: int = 150,
    batch_size: int = 32,
    lr: float = 1e-2,
    selector_lr: float | None = 2e-3,
    lambda1: float = 0.02,
    lambda2: float = 0.02,
    tau: float = 0.5,
    n_samples: int = 4,
    generator: torch.Generator | None = None,
) -> None:
    r"""Train several models of the same shape at once, each on its own minibatches and masks.

    The same training as :func:`train_rationale_model` (Adam with ``lr`` for the classifier
    and ``selector_lr`` for the selector, the weight grid of :func:`lib.training.snap_` after
    every step), for ``len(models)`` independent runs that share every tensor operation: the
    models' weights are stacked, each step draws ``batch_size`` texts per model (with
    replacement, from ``generator``) and calls :func:`rationale_loss` once on all of them.
    Adam acts on each weight separately, so model ``k`` follows its own run; the random draws
    differ from those of :func:`train_rationale_model` with the same seed. Many seeds cost
    little more than one, which makes spreads over seeds affordable. No evaluation is done
    during training (use :func:`evaluate_rationales` afterwards); the models are updated in
    place.

    Args:
        models: :class:`RationaleModel` objects of the same shape (for example one per seed).
        train: training :class:`RationaleData`.
        estimator: one of :data:`ESTIMATORS`.
        n_steps, batch_size, lr, selector_lr, lambda1, lambda2, tau, n_samples: as for
            :func:`train_rationale_model`.
        generator: ``torch.Generator`` for the minibatches and the masks.

    Example:
        >>> data = make_synthetic_reviews(64, seed=0)
        >>> models = [RationaleModel(len(data.vocab)) for _ in range(3)]
        >>> train_side_by_side(models, data, "straight_through", n_steps=2)
        >>> len({str(m.selector_out.weight.tolist()) for m in models})  # three runs, three results
        3
    """
    estimator = _check_estimator(estimator)
    models = list(models)
    if not models or not all(isinstance(m, RationaleModel) for m in models):
        raise TypeError("models must be a non-empty sequence of RationaleModel")
    shapes = [[tuple(p.shape) for p in m.parameters()] for m in models]
    if any(s != shapes[0] for s in shapes):
        raise ValueError("the models must all have the same shape (same constructor arguments)")
    if not isinstance(train, RationaleData):
        raise TypeError(f"train must be a RationaleData, got {type_name(train)}")
    n_steps = check_int(n_steps, "n_steps", min_value=1)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    lr = check_real(lr, "lr", gt=0.0)
    selector_lr = lr if selector_lr is None else check_real(selector_lr, "selector_lr", gt=0.0)
    device = next(models[0].parameters()).device
    check_generator(generator, device=device)
    stack = _SideBySide(models).to(device)
    selector = [stack.p(n) for n in stack.names if n.startswith("selector")]
    classifier = [stack.p(n) for n in stack.names if not n.startswith("selector")]
    optimizer = torch.optim.Adam([{"params": selector, "lr": selector_lr},
                                  {"params": classifier, "lr": lr}])
    tokens, mask, labels = train.tokens.to(device), train.mask.to(device), train.labels.to(device)
    k = len(models)
    for _ in range(n_steps):
        index = rng.randint(len(train), (k * batch_size,), generator=generator, device=device)
        out = rationale_loss(stack, tokens[index], mask[index], labels[index], estimator,
                             lambda1=lambda1, lambda2=lambda2, tau=tau, n_samples=n_samples,
                             generator=generator)
        optimizer.zero_grad(set_to_none=True)
        (k * out.loss).backward()  # the sum of the K models' own losses
        optimizer.step()
        snap_(stack.parameters())  # the same weights on every CPU (lib.training)
    stack.write_back(models)


# --------------------------------------------------------------------------------------------
# Display
# --------------------------------------------------------------------------------------------

#: The metrics of :func:`evaluate_rationales`, as recorded in :class:`TrainHistory`.
METRICS = ("accuracy", "precision", "recall", "f1", "kept", "g_planted", "g_other")
_METRIC_LABELS = {"accuracy": "test accuracy", "precision": "test precision",
                  "recall": "test recall", "f1": "test F1", "kept": "fraction of tokens kept",
                  "g_planted": "mean g on planted tokens", "g_other": "mean g on other tokens"}

#: Background of planted (true) rationale tokens in :func:`show_rationales` (Okabe-Ito sky blue).
PLANTED_COLOR = "#56B4E9"

_LINE_COLORS = {"exact": "exact", "reinforce": "reinforce", "relaxed": "relaxed",
                "straight_through": "straight_through", "full_text": "other"}


def plot_learning_curves(ax: Any, histories: Sequence[TrainHistory], metric: str = "f1") -> Any:
    """Draw one test metric against the training step, one line per run, on ``ax``.

    Colours follow the book's palette (:data:`lib.plotting.COLORS`): exact black, REINFORCE
    purple, relaxed orange, straight-through green, full text sky blue.

    Args:
        ax: a matplotlib ``Axes``.
        histories: the :class:`TrainHistory` of each run.
        metric: one of :data:`METRICS` (``g_planted``: mean keep-probability of the planted
            tokens).

    Returns:
        ``ax``.
    """
    from lib.plotting import COLORS

    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    for h in histories:
        color = COLORS[_LINE_COLORS.get(h.estimator, "other")]
        style = "--" if h.estimator == "full_text" else "-"
        ax.plot(h.steps, h.series(metric), style, color=color, marker="o", markersize=2.5,
                label=ESTIMATOR_LABELS.get(h.estimator, h.estimator))
    ax.set_xlabel("training step")
    ax.set_ylabel(_METRIC_LABELS[metric])
    return ax


def show_rationales(model: RationaleModel, data: RationaleData, indices: Sequence[int]) -> Any:
    """HTML showing, for each chosen text, the planted rationale and the model's selection.

    For each text: a header with the true and predicted labels, a row ``planted`` (the true
    rationale, when known, in sky blue) and a row ``selected`` (the argmax mask
    :math:`g_i > 1/2`, in orange) with the keep-probability :math:`g_i` as the opacity of a
    blue bar under each token. Drawn with :func:`lib.text.highlight_tokens`.

    Args:
        model: a :class:`RationaleModel`.
        data: a :class:`RationaleData`.
        indices: which texts to show.

    Returns:
        ``IPython.display.HTML``.
    """
    from IPython.display import HTML

    from lib.text import highlight_tokens

    device = next(model.parameters()).device
    parts = []
    with torch.no_grad():
        for i in indices:
            i = int(i)
            n = int(data.mask[i].sum())
            tokens = data.tokens[i : i + 1, :n].to(device)
            logits = model.keep_logits(tokens, torch.ones_like(tokens, dtype=torch.bool))[0]
            z = (logits > 0).to(torch.get_default_dtype())
            predicted = int(model.classify(tokens, z[None]).argmax(-1))
            truth_label = data.label_names[int(data.labels[i])]
            verdict = "right" if predicted == int(data.labels[i]) else "wrong"
            parts.append(
                '<div style="font-family:sans-serif;font-size:13px;color:#555555;'
                f'margin-top:10px">text {i}: label <b>{truth_label}</b>, predicted '
                f'<b>{data.label_names[predicted]}</b> ({verdict})</div>'
            )
            words = data.words(i)
            if data.rationales is not None:
                parts.append(highlight_tokens(words, data.rationales[i, :n], labels=["planted"],
                                              legend=False, color=PLANTED_COLOR).data)
            parts.append(highlight_tokens(words, z.cpu(), probs=torch.sigmoid(logits).cpu(),
                                          labels=["selected"], legend=False).data)
    return HTML("".join(parts))
