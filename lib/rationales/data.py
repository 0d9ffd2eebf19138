r"""Data for the rationale model: tokens, a vocabulary, padded batches, and the reviews.

* :func:`tokenize` and :class:`Vocabulary` turn texts into word ids (0 padding, 1 unknown).
* :class:`RationaleData` holds padded token ids ``[N, L]``, the real-token mask, the labels and,
  when known, the true rationale of each text.
* :func:`make_synthetic_reviews` writes film reviews whose rationale is planted, so that a
  selection can be scored (:data:`SYNTHETIC_VOCABULARY`, the same for every seed).
* :func:`load_reviews_csv` reads your own texts and labels (:func:`sample_csv_path`: 30 reviews
  shipped with the package), and :func:`train_test_split` splits them, optionally rebuilding
  the vocabulary from the training texts alone.

Every data set is built on the CPU from Python lists; move its tensors with ``.to(device)``.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lib import rng
from lib._validation import check_bool, check_int, check_real, type_name

__all__ = [
    "CONNECTORS",
    "FILLERS",
    "NEGATIVE_WORDS",
    "NEGATORS",
    "OTHER_NOUNS",
    "POSITIVE_WORDS",
    "SYNTHETIC_VOCABULARY",
    "TOPIC_NOUNS",
    "ZIPF_FILLERS",
    "ZIPF_VOCABULARY",
    "RationaleData",
    "Vocabulary",
    "load_reviews_csv",
    "make_synthetic_reviews",
    "sample_csv_path",
    "tokenize",
    "train_test_split",
]


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
#: The vocabulary of every synthetic data set with ``fillers="uniform"`` (the same for every
#: seed).
SYNTHETIC_VOCABULARY = Vocabulary(
    POSITIVE_WORDS + NEGATIVE_WORDS + NEGATORS + TOPIC_NOUNS + OTHER_NOUNS + CONNECTORS
    + ("was",) + FILLERS
)
#: More filler words, for ``fillers="zipf"``: with :data:`FILLERS` first, 60 words whose
#: frequencies follow Zipf's law (the word of rank r has probability proportional to 1/r).
ZIPF_FILLERS = FILLERS + (
    "the", "a", "it", "of", "to", "in", "that", "with", "on", "for", "as", "at", "by",
    "from", "about", "just", "quite", "still", "even", "then", "there", "here", "we", "they",
    "you", "my", "our", "some", "many", "most", "first", "last", "night", "week", "friend",
    "family", "cinema", "screen", "hall", "evening", "sunday", "monday", "town", "city",
    "place", "people", "row", "sound",
)
#: The vocabulary of every synthetic data set with ``fillers="zipf"``: that of
#: :data:`SYNTHETIC_VOCABULARY` (same ids) followed by the other words of :data:`ZIPF_FILLERS`.
ZIPF_VOCABULARY = Vocabulary(SYNTHETIC_VOCABULARY.words[2:] + list(ZIPF_FILLERS))


def make_synthetic_reviews(
    n_reviews: int,
    *,
    seed: int = 0,
    p_distractor: float = 0.6,
    p_negation: float = 0.0,
    min_length: int = 5,
    max_length: int = 8,
    n_sentiment: int = 1,
    fillers: str = "uniform",
    label_noise: float = 0.0,
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

    Three options make the task harder (their defaults give the reviews above, draw for draw):

    * ``n_sentiment > 1``: every clause carries that many sentiment words of one polarity,
      joined by ``and`` (``plot was dull and boring``); the planted rationale is all of them
      (a multi-word rationale; the ``and`` between them is not part of it), and a negator
      negates the whole list.
    * ``fillers="zipf"``: the fillers are drawn from the 60 words of :data:`ZIPF_FILLERS`
      with Zipf's law (probability proportional to 1/rank) instead of uniformly from the 12
      of :data:`FILLERS`; the vocabulary is then :data:`ZIPF_VOCABULARY`.
    * ``label_noise > 0``: each label is flipped with that probability after the review is
      written (the planted rationale stays that of the clean label). Use it for training
      sets only: the best possible accuracy on noisy labels is ``1 - label_noise``.
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
            distractors, 9 with distractors and negation, 2 more per extra sentiment word
            and clause).
        n_sentiment: sentiment words per clause, >= 1.
        fillers: ``"uniform"`` (:data:`FILLERS`) or ``"zipf"`` (:data:`ZIPF_FILLERS`).
        label_noise: probability that a label is flipped, in [0, 1/2).

    Returns:
        A :class:`RationaleData` with labels 0 = ``negative``, 1 = ``positive`` and the planted
        ``rationales``; its vocabulary is :data:`SYNTHETIC_VOCABULARY` (uniform fillers) or
        :data:`ZIPF_VOCABULARY`.

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
    n_sentiment = check_int(n_sentiment, "n_sentiment", min_value=1)
    if fillers not in ("uniform", "zipf"):
        raise ValueError(f"fillers must be 'uniform' or 'zipf', got {fillers!r}")
    label_noise = _check_probability(label_noise, "label_noise")
    if label_noise >= 0.5:
        raise ValueError(f"label_noise must be < 0.5 (at 0.5 the labels carry no signal), got "
                         f"{label_noise}")
    clause_length = (4 if p_negation > 0 else 3) + 2 * (n_sentiment - 1)
    longest = 2 * clause_length + 1 if p_distractor > 0 else clause_length
    if max_length < longest:
        raise ValueError(
            f"max_length must be >= {longest}: with p_distractor={p_distractor}, "
            f"p_negation={p_negation} and n_sentiment={n_sentiment} a review can need "
            f"{longest} tokens, got {max_length}"
        )
    rng = np.random.default_rng(seed)
    # The options' draws come from streams of their own, so that the defaults reproduce the
    # reviews of the one-word recipe draw for draw.
    extra = np.random.default_rng([seed, 1])
    flips = np.random.default_rng([seed, 2])  # label noise: the same reviews at any rate
    if fillers == "zipf":
        vocab, filler_words = ZIPF_VOCABULARY, ZIPF_FILLERS
        filler_p = 1.0 / np.arange(1, len(ZIPF_FILLERS) + 1)
        filler_p /= filler_p.sum()
    else:
        vocab, filler_words, filler_p = SYNTHETIC_VOCABULARY, FILLERS, None
    encoded, truths, labels = [], [], []

    def clause(nouns: Sequence[str]) -> tuple[list[str], list[bool], bool]:
        positive = bool(rng.random() < 0.5)
        negated = bool(rng.random() < p_negation)
        words = [str(rng.choice(nouns)), "was"]
        if negated:
            words.append(str(rng.choice(NEGATORS)))
        polar = POSITIVE_WORDS if positive else NEGATIVE_WORDS
        words.append(str(rng.choice(polar)))
        truth = [False, False] + [True] * (len(words) - 2)
        if n_sentiment > 1:
            more = extra.choice([w for w in polar if w != words[-1]], size=n_sentiment - 1,
                                replace=False)
            for w in more:
                words += ["and", str(w)]
                truth += [False, True]
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
        if filler_p is None:
            before = [str(w) for w in rng.choice(filler_words, size=n_before)]
            after = [str(w) for w in rng.choice(filler_words, size=n_after)]
        else:
            drawn = extra.choice(filler_words, size=n_before + n_after, p=filler_p)
            before = [str(w) for w in drawn[:n_before]]
            after = [str(w) for w in drawn[n_before:]]
        encoded.append(vocab.encode(before + words + after))
        truths.append([False] * n_before + truth + [False] * n_after)
        labels.append(int(label) ^ int(label_noise > 0 and flips.random() < label_noise))
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
    return Path(__file__).resolve().parents[1] / "data" / "reviews_sample.csv"


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
