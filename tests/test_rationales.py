"""Tests of lib.rationales: data with planted rationales, the CSV loader, the model, the
objective and its four estimators (against enumeration), the metrics and the training loop."""

import csv
import doctest
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import precision_recall_fscore_support  # noqa: E402

import lib.rationales as R  # noqa: E402
from lib.estimators import exact_expectation_bernoulli  # noqa: E402
from lib.rationales.model import _SideBySide  # noqa: E402
from lib.relaxed import relaxed_bernoulli  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("module", [R.data, R.model, R.objective, R.metrics, R.training,
                                    R.display], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result


def test_the_package_re_exports_every_public_name_of_its_modules():
    """``from lib.rationales import X`` works for every public name of every submodule."""
    for module in (R.data, R.model, R.objective, R.metrics, R.training, R.display):
        assert module.__doc__, module.__name__
        for name in module.__all__:
            assert name in R.__all__ and getattr(R, name) is getattr(module, name), name


# ---------------------------------------------------------------------------- tokens, vocab
def test_tokenize():
    assert R.tokenize("Not GOOD, honestly.") == ["not", "good", ",", "honestly", "."]
    assert R.tokenize("I didn't  like it!") == ["i", "didn't", "like", "it", "!"]
    assert R.tokenize("   ") == []
    with pytest.raises(TypeError, match="text must be a str"):
        R.tokenize(["a"])


def test_vocabulary():
    vocab = R.Vocabulary.from_texts([["b", "a", "b"], ["c", "a", "b"]], min_count=2)
    assert vocab.words == ["<pad>", "<unk>", "b", "a"]  # most frequent first, then a-z
    assert vocab.encode(["a", "c", "b"]) == [3, 1, 2]
    assert vocab.decode([2, 3, 0]) == ["b", "a", "<pad>"]
    assert "a" in vocab and "c" not in vocab and len(vocab) == 4
    assert R.Vocabulary(["x", "x", "<pad>"]).words == ["<pad>", "<unk>", "x"]
    with pytest.raises(TypeError, match="strings"):
        R.Vocabulary([1])


# ---------------------------------------------------------------------------- synthetic data
def _parse(data, i):
    """Re-derive the label of review i from its words and its planted rationale."""
    words = data.words(i)
    truth = data.rationales[i, : len(words)].tolist()
    kept = [w for w, t in zip(words, truth) if t]
    sentiment = kept[-1]
    negated = len(kept) == 2
    assert kept[0] in R.NEGATORS if negated else len(kept) == 1
    start = truth.index(True)
    return words, start, sentiment, negated


@pytest.mark.parametrize("p_negation", [0.0, 0.4])
def test_synthetic_reviews_planted_rationale_decides_the_label(p_negation):
    max_length = 10 if p_negation else 8
    data = R.make_synthetic_reviews(400, seed=3, p_negation=p_negation, max_length=max_length)
    assert data.tokens.shape[0] == 400 and data.mask.shape == data.tokens.shape
    lengths = data.lengths
    assert int(lengths.min()) >= 5 and int(lengths.max()) <= max_length
    assert not data.rationales[~data.mask].any()
    n_negated = 0
    for i in range(len(data)):
        words, start, sentiment, negated = _parse(data, i)
        n_negated += negated
        positive = sentiment in R.POSITIVE_WORDS
        assert positive or sentiment in R.NEGATIVE_WORDS
        assert int(data.labels[i]) == int(positive != negated)
        # the rationale follows "TOPIC_NOUN was": it is the target clause's
        assert words[start - 1] == "was" and words[start - 2] in R.TOPIC_NOUNS
        assert sum(w in R.TOPIC_NOUNS for w in words) == 1
    # clause-level negation probability p: the target is negated in a fraction p of reviews
    se = math.sqrt(p_negation * (1 - p_negation) / 400) if p_negation else 0.0
    assert abs(n_negated / 400 - p_negation) <= 5 * se


def test_synthetic_reviews_frequencies_and_seeds():
    n = 2000
    data = R.make_synthetic_reviews(n, seed=0)
    has_distractor = torch.tensor([
        any(w in R.OTHER_NOUNS for w in data.words(i)) for i in range(n)
    ]).double()
    # binomial standard errors: a correct generator fails these with probability < 1e-6
    assert abs(float(has_distractor.mean()) - 0.6) < 5 * math.sqrt(0.24 / n)
    assert abs(float(data.labels.double().mean()) - 0.5) < 5 * math.sqrt(0.25 / n)
    assert not any(w in R.NEGATORS for i in range(50) for w in data.words(i))
    again = R.make_synthetic_reviews(n, seed=0)
    assert torch.equal(again.tokens, data.tokens) and torch.equal(again.labels, data.labels)
    other = R.make_synthetic_reviews(n, seed=1)
    assert not torch.equal(other.tokens[:50], data.tokens[:50])
    assert other.vocab is data.vocab is R.SYNTHETIC_VOCABULARY
    plain = R.make_synthetic_reviews(100, seed=0, p_distractor=0.0, min_length=3,
                                     max_length=3)
    assert plain.tokens.shape == (100, 3)


def test_synthetic_reviews_harder_options():
    """n_sentiment, Zipfian fillers and label noise: multi-word rationales that decide the clean
    label, filler frequencies that fall as 1/rank, flips at the stated rate; the defaults
    are unchanged draw for draw (the exercises depend on them)."""
    n = 2000
    data = R.make_synthetic_reviews(n, seed=4, min_length=13, max_length=18, n_sentiment=2,
                                    fillers="zipf")
    clean_noisy = R.make_synthetic_reviews(n, seed=4, min_length=13, max_length=18,
                                           n_sentiment=2, fillers="zipf", label_noise=0.2)
    assert data.vocab is R.ZIPF_VOCABULARY
    assert R.ZIPF_VOCABULARY.words[:len(R.SYNTHETIC_VOCABULARY)] == R.SYNTHETIC_VOCABULARY.words
    lengths = data.lengths
    assert int(lengths.min()) == 13 and int(lengths.max()) == 18
    counts = {w: 0 for w in R.ZIPF_FILLERS}
    for i in range(len(data)):
        words = data.words(i)
        kept = [w for w, t in zip(words, data.rationales[i].tolist()) if t]
        assert len(kept) == 2 and len(set(kept)) == 2  # two different words of one polarity
        positive = all(w in R.POSITIVE_WORDS for w in kept)
        assert positive or all(w in R.NEGATIVE_WORDS for w in kept)
        assert int(data.labels[i]) == int(positive)
        start = data.rationales[i].tolist().index(True)
        assert words[start - 1] == "was" and words[start - 2] in R.TOPIC_NOUNS
        assert words[start + 1] == "and" and words[start + 2] == kept[1]
        for w in words:
            if w in counts:
                counts[w] += 1
    # the same reviews, some labels flipped: a binomial rate within 5 standard errors
    assert torch.equal(clean_noisy.tokens, data.tokens)
    flipped = float((clean_noisy.labels != data.labels).double().mean())
    assert abs(flipped - 0.2) < 5 * math.sqrt(0.2 * 0.8 / n)
    # Zipf: the first filler about twice as frequent as the second, ten times the tenth
    c = np.array([counts[w] for w in R.ZIPF_FILLERS], dtype=float)
    for rank, ratio in ((2, 2.0), (10, 10.0)):
        se = ratio * math.sqrt(1 / c[0] + 1 / c[rank - 1])  # delta method, Poisson counts
        assert abs(c[0] / c[rank - 1] - ratio) < 5 * se
    # the defaults reproduce the one-word recipe, draw for draw
    default = R.make_synthetic_reviews(50, seed=0)
    explicit = R.make_synthetic_reviews(50, seed=0, n_sentiment=1, fillers="uniform",
                                        label_noise=0.0)
    assert torch.equal(default.tokens, explicit.tokens)
    assert torch.equal(default.labels, explicit.labels)
    with pytest.raises(ValueError, match="max_length must be >= 11"):
        R.make_synthetic_reviews(5, n_sentiment=2, max_length=10)
    with pytest.raises(ValueError, match="fillers must be"):
        R.make_synthetic_reviews(5, fillers="zipfian")
    with pytest.raises(ValueError, match="label_noise must be < 0.5"):
        R.make_synthetic_reviews(5, label_noise=0.5)
    with pytest.raises(ValueError, match="n_sentiment"):
        R.make_synthetic_reviews(5, n_sentiment=0)


def test_synthetic_reviews_arguments():
    with pytest.raises(ValueError, match="max_length must be >= 9"):
        R.make_synthetic_reviews(5, p_negation=0.5, max_length=8)
    with pytest.raises(ValueError, match="p_distractor must be a probability"):
        R.make_synthetic_reviews(5, p_distractor=1.5)
    with pytest.raises(TypeError, match="n_reviews"):
        R.make_synthetic_reviews(5.0)


def test_rationale_data_indexing():
    data = R.make_synthetic_reviews(10, seed=0)
    sub = data[torch.tensor([2, 5])]
    assert len(sub) == 2 and torch.equal(sub.tokens[1], data.tokens[5])
    assert sub.words(0) == data.words(2)
    assert len(data[3]) == 1 and len(data[-1]) == 1 and data[-1].words(0) == data.words(9)


# ---------------------------------------------------------------------------- CSV loader
def test_sample_csv_is_loaded():
    path = R.sample_csv_path()
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))  # independent reader
    data = R.load_reviews_csv(path)
    assert len(data) == len(rows) == 30
    assert data.label_names == ("negative", "positive")
    for i, row in enumerate(rows):
        assert data.label_names[int(data.labels[i])] == row["label"]
        assert data.words(i) == R.tokenize(row["text"])
    assert data.rationales is None
    assert int(data.lengths.max()) == data.tokens.shape[1]


def test_csv_with_given_vocab_and_errors(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text('review,y\n"Great, great film",1\nawful film,0\n', encoding="utf-8")
    data = R.load_reviews_csv(path, text_column="review", label_column="y",
                              label_names=["0", "1"], max_length=2)
    assert data.tokens.shape == (2, 2) and data.labels.tolist() == [1, 0]
    assert data.words(0) == ["great", ","]
    vocab = R.Vocabulary(["film"])
    encoded = R.load_reviews_csv(path, text_column="review", label_column="y", vocab=vocab)
    assert encoded.tokens[1].tolist() == [vocab.unk_index, vocab.index("film"), 0, 0]
    with pytest.raises(ValueError, match="not a column"):
        R.load_reviews_csv(path)
    with pytest.raises(ValueError, match="is not one of"):
        R.load_reviews_csv(path, text_column="review", label_column="y", label_names=["0"])
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n  ,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="text is empty"):
        R.load_reviews_csv(empty)


def test_train_test_split():
    data = R.load_reviews_csv(R.sample_csv_path())
    train, test = R.train_test_split(data, 0.2, seed=1)
    assert len(train) == 24 and len(test) == 6
    seen = sorted(tuple(d.words(i)) for d in (train, test) for i in range(len(d)))
    assert seen == sorted(tuple(data.words(i)) for i in range(len(data)))
    again, _ = R.train_test_split(data, 0.2, seed=1)
    assert torch.equal(again.tokens, train.tokens)
    with pytest.raises(ValueError, match="test_fraction must be < 1"):
        R.train_test_split(data, 1.0)


def test_train_test_split_refit_vocab_sees_only_the_training_texts():
    data = R.load_reviews_csv(R.sample_csv_path())
    train, test = R.train_test_split(data, 0.2, seed=1, refit_vocab=True)
    plain_train, plain_test = R.train_test_split(data, 0.2, seed=1)
    assert train.vocab is test.vocab
    train_words = {w for i in range(len(train)) for w in plain_train.words(i)}
    assert set(train.vocab.words[2:]) == train_words  # no word from the test texts
    assert torch.equal(train.labels, plain_train.labels)
    for i in range(len(test)):  # test words unseen in training become <unk>, the rest stay
        expected = [w if w in train_words else "<unk>" for w in plain_test.words(i)]
        assert test.words(i) == expected
    assert any("<unk>" in test.words(i) for i in range(len(test)))
    assert (train.tokens[train.mask] != train.vocab.unk_index).all()
    with pytest.raises(TypeError):
        R.train_test_split(data, 0.2, refit_vocab="yes")


# ---------------------------------------------------------------------------- model
def _tiny(seed=0, **kwargs):
    torch.manual_seed(seed)
    return R.RationaleModel(len(R.SYNTHETIC_VOCABULARY), embedding_dim=6, hidden_dim=5,
                            **kwargs)


def test_model_initial_keep_probability_and_padding_invariance():
    model = _tiny(init_keep_prob=0.3)
    data = R.make_synthetic_reviews(6, seed=0)
    probs = torch.sigmoid(model.keep_logits(data.tokens, data.mask))
    assert torch.allclose(probs, torch.full_like(probs, 0.3))
    with torch.no_grad():
        model.selector_out.weight.normal_()
    logits = model.keep_logits(data.tokens, data.mask)
    padded = torch.cat([data.tokens, torch.zeros(6, 3, dtype=torch.long)], 1)
    padded_mask = torch.cat([data.mask, torch.zeros(6, 3, dtype=torch.bool)], 1)
    more = model.keep_logits(padded, padded_mask)
    assert torch.allclose(more[:, : logits.shape[1]][data.mask], logits[data.mask], atol=1e-6)


def test_classifier_matches_pool_then_mlp_and_empty_is_uniform():
    model = _tiny()
    data = R.make_synthetic_reviews(4, seed=1)
    z = torch.rand(3, *data.tokens.shape) * data.mask
    out = model.classify(data.tokens, z)
    pooled = (z.unsqueeze(-1) * model.classifier_embedding(data.tokens)).sum(-2)
    expected = model.classifier_out(torch.tanh(model.classifier_hidden(pooled)))
    assert out.shape == (3, 4, 2) and torch.allclose(out, expected, atol=1e-6)
    empty = model.classify(data.tokens, torch.zeros_like(z))
    assert torch.equal(empty, torch.zeros_like(empty))


def test_model_arguments():
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        R.RationaleModel(10, kernel_size=4)
    with pytest.raises(ValueError, match="init_keep_prob"):
        R.RationaleModel(10, init_keep_prob=1.0)


# ---------------------------------------------------------------------------- penalty
def _penalty_loop(z, mask, lambda1, lambda2):
    """Oracle: the penalty of one text, by a Python loop over its real tokens."""
    real = [float(v) for v, m in zip(z, mask) if m]
    switches = sum(abs(real[t] - real[t - 1]) for t in range(1, len(real)))
    return lambda1 * sum(real) + lambda2 * switches


def test_penalty_against_a_loop():
    gen = torch.Generator().manual_seed(0)
    z = torch.rand(3, 5, 7, generator=gen)
    lengths = torch.tensor([7, 4, 1, 5, 2])
    mask = torch.arange(7) < lengths[:, None]
    out = R.rationale_penalty(z, mask, 0.3, 1.7)
    assert out.shape == (3, 5)
    for s in range(3):
        for b in range(5):
            assert math.isclose(float(out[s, b]), _penalty_loop(z[s, b], mask[b], 0.3, 1.7),
                                rel_tol=1e-6)
    hard = (z > 0.5).float()
    hard[..., -1] = 1.0  # a 1 at padding must not count
    ref = R.rationale_penalty(hard * mask, mask, 0.3, 1.7)
    assert torch.allclose(R.rationale_penalty(hard, mask, 0.3, 1.7), ref)
    with pytest.raises(ValueError, match="lambda1"):
        R.rationale_penalty(z, mask, -1.0, 0.0)


# ---------------------------------------------------------------------------- objective
def _batch(n=3, seed=4):
    data = R.make_synthetic_reviews(n, seed=seed, min_length=4, max_length=7)
    return data.tokens, data.mask, data.labels


def test_exact_cost_equals_enumeration_review_by_review():
    model = _tiny()
    with torch.no_grad():
        model.selector_out.weight.normal_()
    tokens, mask, labels = _batch()
    out = R.rationale_loss(model, tokens, mask, labels, "exact", lambda1=0.2, lambda2=0.3)
    logits = model.keep_logits(tokens, mask)
    costs = []
    for b in range(tokens.shape[0]):
        n = int(mask[b].sum())

        def cost(configs, b=b, n=n):
            t = tokens[b : b + 1, :n]
            ce = torch.nn.functional.cross_entropy(
                model.classify(t, configs[:, None, :])[:, 0],
                labels[b].expand(configs.shape[0]), reduction="none")
            ones = torch.ones(1, n, dtype=torch.bool)
            return ce + R.rationale_penalty(configs[:, None, :], ones, 0.2, 0.3)[:, 0]

        costs.append(exact_expectation_bernoulli(logits[b, :n], cost))
    assert math.isclose(float(out.cost), float(torch.stack(costs).detach().mean()), rel_tol=1e-5)
    # trailing all-padding columns change nothing
    padded = torch.cat([tokens, torch.zeros(3, 2, dtype=torch.long)], 1)
    padded_mask = torch.cat([mask, torch.zeros(3, 2, dtype=torch.bool)], 1)
    again = R.rationale_loss(model, padded, padded_mask, labels, "exact", lambda1=0.2,
                             lambda2=0.3)
    assert math.isclose(float(again.cost), float(out.cost), rel_tol=1e-6)


def test_reinforce_gradient_is_unbiased_against_exact():
    model = _tiny(seed=2)
    with torch.no_grad():
        model.selector_out.weight.normal_()
    tokens, mask, labels = _batch(n=3, seed=5)
    kwargs = dict(lambda1=0.2, lambda2=0.2)
    exact = R.selector_gradients(model, tokens, mask, labels, "exact", **kwargs)[0]
    gen = torch.Generator().manual_seed(0)
    rows = R.selector_gradients(model, tokens, mask, labels, "reinforce_loo", n_repeats=20,
                                n_samples=4000, generator=gen, **kwargs)
    mean, se = rows.mean(0), rows.std(0) / math.sqrt(rows.shape[0])
    # each coordinate within 5 standard errors (plus float32 rounding) of the exact gradient
    assert torch.all((mean - exact).abs() <= 5 * se + 1e-5), (mean - exact).abs().max()
    assert float(exact.norm()) > 0.01  # the comparison is not vacuous


def test_classifier_gradient_of_sampling_estimators_is_unbiased():
    model = _tiny(seed=3)
    tokens, mask, labels = _batch(n=2, seed=6)
    params = [p for n, p in model.named_parameters() if n.startswith("classifier")]

    def grad(estimator, **kw):
        out = R.rationale_loss(model, tokens, mask, labels, estimator, **kw)
        return torch.cat([g.flatten() for g in torch.autograd.grad(out.loss, params)])

    exact = grad("exact")
    gen = torch.Generator().manual_seed(1)
    rows = torch.stack([grad("reinforce_loo", n_samples=2000, generator=gen)
                        for _ in range(20)])
    mean, se = rows.mean(0), rows.std(0) / math.sqrt(20)
    assert torch.all((mean - exact).abs() <= 5 * se + 1e-5)


def test_st_gumbel_softmax_uses_hard_masks_and_gumbel_softmax_soft_ones():
    model = _tiny()
    tokens, mask, labels = _batch()
    length = int(mask.sum(-1).max())
    valid = mask[:, :length].float()
    logits = model.keep_logits(tokens[:, :length], mask[:, :length]).expand(4, -1, -1)
    for hard in (True, False):
        gen = torch.Generator().manual_seed(7)
        out = R.rationale_loss(model, tokens, mask, labels,
                               "st_gumbel_softmax" if hard else "gumbel_softmax", n_samples=4,
                               tau=0.5, generator=gen, lambda1=0.1, lambda2=0.1)
        z = relaxed_bernoulli(logits, 0.5, hard=hard,
                              generator=torch.Generator().manual_seed(7)) * valid
        ce = torch.nn.functional.cross_entropy(
            model.classify(tokens[:, :length], z).reshape(-1, 2), labels.repeat(4),
            reduction="none")
        cost = ce + R.rationale_penalty(z, mask[:, :length], 0.1, 0.1).reshape(-1)
        assert math.isclose(float(out.cost), float(cost.detach().mean()), rel_tol=1e-5)
        values = set(z.flatten().tolist())
        assert (values <= {0.0, 1.0}) == hard


def test_full_text_and_argument_errors():
    model = _tiny()
    tokens, mask, labels = _batch()
    out = R.rationale_loss(model, tokens, mask, labels, "full_text")
    ref = torch.nn.functional.cross_entropy(model.classify(tokens, mask.float()), labels)
    assert math.isclose(float(out.loss.detach()), float(ref.detach()), rel_tol=1e-6)
    with pytest.raises(ValueError, match="n_samples >= 2"):
        R.rationale_loss(model, tokens, mask, labels, "reinforce_loo", n_samples=1)
    with pytest.raises(ValueError, match="estimator must be 'full_text' or a registered "
                                         "estimator, one of exact, .*st_gumbel_softmax"):
        R.rationale_loss(model, tokens, mask, labels, "relaxed")  # the old name, gone
    with pytest.raises(ValueError, match="does not take parameter"):
        R.rationale_loss(model, tokens, mask, labels, "exact", params={"tau": 0.5})
    long = R.make_synthetic_reviews(4, seed=0, min_length=13, max_length=13)
    with pytest.raises(ValueError, match="MAX_EXACT_LENGTH"):
        R.rationale_loss(model, long.tokens, long.mask, long.labels, "exact")
    with pytest.raises(ValueError, match="full_text has no selector"):
        R.selector_gradients(model, tokens, mask, labels, "full_text")


def test_plain_straight_through_hard_masks_forward_probabilities_backward():
    """The registry's ``straight_through`` (no noise, no tau): 0/1 masks drawn as
    ``rand < sigmoid`` forward, the gradient of the keep-probabilities backward."""
    model = _tiny(seed=1)
    with torch.no_grad():
        model.selector_out.weight.normal_()
    tokens, mask, labels = _batch()
    length = int(mask.sum(-1).max())
    tokens, mask = tokens[:, :length], mask[:, :length]
    selector = [p for n, p in model.named_parameters() if n.startswith("selector")]
    out = R.rationale_loss(model, tokens, mask, labels, "straight_through", n_samples=3,
                           generator=torch.Generator().manual_seed(5), lambda1=0.1,
                           lambda2=0.1)
    ours = torch.autograd.grad(out.loss, selector)
    # by hand: the same uniforms, the probabilities' gradient
    logits = model.keep_logits(tokens, mask)
    probs = torch.sigmoid(logits) * mask
    u = torch.rand(3, *logits.shape, generator=torch.Generator().manual_seed(5))
    hard = (u < probs.detach()).float() * mask
    z = hard + (probs - probs.detach())
    ce = torch.nn.functional.cross_entropy(model.classify(tokens, z).reshape(-1, 2),
                                           labels.repeat(3), reduction="none").reshape(3, -1)
    cost = ce + R.rationale_penalty(z, mask, 0.1, 0.1)
    manual = torch.autograd.grad(cost.mean(), selector)
    assert math.isclose(float(out.cost), float(cost.detach().mean()), rel_tol=1e-6)
    assert math.isclose(float(out.cross_entropy), float(ce.detach().mean()), rel_tol=1e-6)
    assert math.isclose(float(out.kept), float(hard.sum() / (3 * mask.sum())), rel_tol=1e-6)
    for a, b in zip(ours, manual):
        assert torch.allclose(a, b, atol=1e-6)
    assert sum(float(g.abs().sum()) for g in ours) > 0


def test_exact_and_sampling_estimators_report_the_same_expectations():
    """Surrogate.weights give the auxiliary outputs of every estimator: exactly for ``exact``
    (the expected fraction kept is the mean keep-probability), within sampling error for the
    others."""
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        model = _tiny(seed=4)
        with torch.no_grad():
            model.selector_out.weight.normal_()
        tokens, mask, labels = _batch(n=4, seed=3)
        exact = R.rationale_loss(model, tokens, mask, labels, "exact")
        with torch.no_grad():
            probs = torch.sigmoid(model.keep_logits(tokens, mask))[mask]
        assert math.isclose(float(exact.kept), float(probs.mean()), rel_tol=1e-12)
        gen = torch.Generator().manual_seed(0)
        for name in ("reinforce_loo", "straight_through", "st_gumbel_softmax"):
            rows = torch.stack([torch.stack(R.rationale_loss(
                model, tokens, mask, labels, name, n_samples=500, generator=gen)[1:])
                for _ in range(10)])  # cost, cross-entropy, kept, of 10 x 500 x 4 masks
            mean, se = rows.mean(0), rows.std(0) / math.sqrt(10)
            target = torch.stack([exact.cost, exact.cross_entropy, exact.kept])
            assert torch.all((mean - target).abs() <= 5 * se), (name, mean, target, se)
    finally:
        torch.set_default_dtype(dtype)


@pytest.fixture
def private_registry(monkeypatch):
    """Registrations made in a test go into a copy of the registry, dropped afterwards."""
    from lib import estimators

    monkeypatch.setattr(estimators, "_ESTIMATORS", dict(estimators._ESTIMATORS))
    return estimators


def test_an_estimator_registered_later_trains_the_model_unchanged(private_registry):
    """Issue 15: any registered name works in rationale_loss, without touching lib.rationales:
    a straight-through with identity backward, registered here, gives the selector a nonzero,
    finite gradient, and one Adam step moves it."""
    est = private_registry
    calls = []

    @est.register_estimator("st_identity_test", unbiased=False, label="ST (identity)")
    def st_identity(node, cost, n_samples, generator):
        calls.append(node.kind)
        hard = node.sample(n_samples, generator)
        z = hard + (node.logits - node.logits.detach())  # value: the hard mask; grad: identity
        costs = cost(z)
        return est.Surrogate(costs.mean(0), costs.mean(0).detach(), hard,
                             torch.full_like(costs, 1 / n_samples).detach())

    assert "st_identity_test" not in R.ESTIMATORS
    model = _tiny(seed=5)
    tokens, mask, labels = _batch(n=6, seed=7)
    selector = [p for n, p in model.named_parameters() if n.startswith("selector")]
    before = [p.detach().clone() for p in selector]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    out = R.rationale_loss(model, tokens, mask, labels, "st_identity_test", n_samples=3,
                           generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert calls == ["bernoulli"]
    grad = torch.cat([p.grad.flatten() for p in selector])
    assert torch.isfinite(grad).all() and float(grad.abs().sum()) > 0
    assert 0 < float(out.kept) < 1 and math.isfinite(float(out.cross_entropy))
    optimizer.step()
    assert any(not torch.equal(p, b) for p, b in zip(selector, before))
    # the trainers and the tables take it too, by name
    h = R.train_rationale_model(model, R.make_synthetic_reviews(16, seed=0),
                                R.make_synthetic_reviews(8, seed=1), "st_identity_test",
                                n_steps=2, eval_every=1, progress=False)
    assert h.steps == [0, 1, 2] and R.estimator_label("st_identity_test") == "ST (identity)"
    assert R.format_results([h]).splitlines()[-1].startswith("ST (identity)")


def test_estimator_evaluating_the_cost_twice_reports_the_cross_entropy_at_its_samples(
        private_registry):
    """An estimator may evaluate the cost at other points too (a control variate, say); the
    reported cross-entropy is then recomputed at the samples it returns."""
    est = private_registry

    @est.register_estimator("two_calls_test", unbiased=False)
    def two_calls(node, cost, n_samples, generator):
        soft = node.relaxed(n_samples, 1.0, False, generator)
        hard = node.sample(n_samples, generator)
        costs = cost(hard) + 0 * cost(soft)
        return est.Surrogate(costs.mean(0), costs.mean(0).detach(), hard,
                             torch.full_like(costs, 1 / n_samples).detach())

    model = _tiny(seed=6)
    tokens, mask, labels = _batch()
    out = R.rationale_loss(model, tokens, mask, labels, "two_calls_test", n_samples=2,
                           generator=torch.Generator().manual_seed(1), lambda1=0.3,
                           lambda2=0.0)
    # cost = cross-entropy + 0.3 * kept tokens, averaged: recover the cross-entropy from both
    n_tokens = float(out.kept) * float(mask.sum()) / mask.shape[0]  # kept tokens per text
    assert math.isclose(float(out.cross_entropy), float(out.cost) - 0.3 * n_tokens,
                        rel_tol=1e-5)


# ---------------------------------------------------------------------------- metrics
def _sklearn_prf(selected, truth, mask):
    s, t = selected[mask].numpy().astype(int), truth[mask].numpy().astype(int)
    p, r, f, _ = precision_recall_fscore_support(t, s, average="binary", zero_division=0)
    return p, r, f


def test_precision_recall_f1_against_sklearn():
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        selected = torch.rand(4, 9, generator=gen) < 0.3
        truth = torch.rand(4, 9, generator=gen) < 0.2
        mask = torch.arange(9) < torch.randint(1, 10, (4, 1), generator=gen)
        ours = R.precision_recall_f1(selected, truth, mask)
        assert np.allclose(ours, _sklearn_prf(selected, truth, mask))


def test_precision_recall_f1_edge_cases():
    truth = torch.tensor([[0, 1, 1, 0]])
    nothing = torch.zeros(1, 4)
    assert R.precision_recall_f1(nothing, truth) == (0.0, 0.0, 0.0)
    assert R.precision_recall_f1(truth, nothing) == (0.0, 0.0, 0.0)
    assert R.precision_recall_f1(nothing, nothing) == (0.0, 0.0, 0.0)
    assert R.precision_recall_f1(truth, truth) == (1.0, 1.0, 1.0)
    mask = torch.tensor([[True, True, False, False]])
    assert R.precision_recall_f1(torch.ones(1, 4), truth, mask) == (0.5, 1.0, 2 / 3)
    with pytest.raises(ValueError, match="same shape"):
        R.precision_recall_f1(torch.ones(3), torch.ones(4))


def test_evaluate_rationales():
    data = R.make_synthetic_reviews(300, seed=2)
    model = _tiny(init_keep_prob=0.9)
    everything = R.evaluate_rationales(model, data)
    truth_share = int(data.rationales.sum()) / int(data.mask.sum())
    assert everything["kept"] == 1.0 and everything["recall"] == 1.0
    assert math.isclose(everything["g_planted"], 0.9, rel_tol=1e-6)
    assert math.isclose(everything["g_other"], 0.9, rel_tol=1e-6)
    assert math.isclose(everything["precision"], truth_share, rel_tol=1e-9)
    full = R.evaluate_rationales(model, data, selection="all")
    assert math.isnan(full.pop("g_planted")) and math.isnan(full.pop("g_other"))
    assert full == {k: v for k, v in everything.items() if not k.startswith("g_")}
    sampled = R.evaluate_rationales(model, data, selection="sample",
                                    generator=torch.Generator().manual_seed(0))
    n = int(data.mask.sum())
    assert abs(sampled["kept"] - 0.9) < 5 * math.sqrt(0.09 / n)  # binomial standard error
    with torch.no_grad():
        predicted = model.classify(data.tokens, data.mask.float()).argmax(-1)
    assert everything["accuracy"] == float((predicted == data.labels).double().mean())
    csv_data = R.load_reviews_csv(R.sample_csv_path())
    no_truth = R.evaluate_rationales(R.RationaleModel(len(csv_data.vocab)), csv_data)
    assert math.isnan(no_truth["f1"])


# ---------------------------------------------------------------------------- training
def test_training_is_reproducible_and_the_bar_prints_no_times(capsys):
    train = R.make_synthetic_reviews(200, seed=0)
    test = R.make_synthetic_reviews(50, seed=1)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = R.RationaleModel(len(train.vocab))
        runs.append(R.train_rationale_model(model, train, test, "reinforce_loo", n_steps=12,
                                            eval_every=5, generator=torch.Generator()
                                            .manual_seed(3), desc="run"))
    assert runs[0].steps == [0, 5, 10, 12] and runs[0].test == runs[1].test
    assert runs[0].train_cost[1:] == runs[1].train_cost[1:] and math.isnan(runs[0].train_cost[0])
    printed = capsys.readouterr().out
    assert "run: 100%" in printed and "12/12" in printed
    assert "it/s" not in printed and "s/it" not in printed and "<" not in printed


@pytest.mark.slow
def test_st_gumbel_softmax_finds_the_planted_rationale():
    train = R.make_synthetic_reviews(1000, seed=0)
    test = R.make_synthetic_reviews(300, seed=1)
    torch.manual_seed(0)
    model = R.RationaleModel(len(train.vocab))
    h = R.train_rationale_model(model, train, test, "st_gumbel_softmax", n_steps=150,
                                generator=torch.Generator().manual_seed(0), progress=False)
    torch.manual_seed(0)
    full = R.RationaleModel(len(train.vocab))
    f = R.train_rationale_model(full, train, test, "full_text", n_steps=150,
                                generator=torch.Generator().manual_seed(0), progress=False)
    assert h.final["f1"] > 0.8 and h.final["kept"] < 0.3
    assert h.final["accuracy"] > f.final["accuracy"] + 0.05  # the selection resolves distractors


def test_format_results_plot_and_html():
    train = R.make_synthetic_reviews(40, seed=0)
    model = _tiny()
    hs = [R.train_rationale_model(model, train, train, e, n_steps=2, eval_every=1,
                                  progress=False) for e in ("full_text", "gumbel_softmax")]
    table = R.format_results(hs)
    lines = table.splitlines()
    assert len(lines) == 4 and lines[2].startswith("full text") and lines[3].endswith(" s")
    fig, ax = plt.subplots()
    R.plot_learning_curves(ax, hs, "accuracy")
    assert len(ax.lines) == 2 and ax.get_ylabel() == "test accuracy"
    plt.close(fig)
    html = R.show_rationales(model, train, [0, 3]).data
    assert html.count(">planted<") == 2 and html.count(">selected<") == 2
    assert html.count("text 3: label") == 1
    assert html.count(R.PLANTED_COLOR) == int(train.rationales[[0, 3]].sum())  # planted tokens


def test_highlight_colour_parameter():
    from lib.text import KEPT_BACKGROUND, highlight_tokens

    html = highlight_tokens(["a", "b", "c"], [1, 0, 1], color=R.PLANTED_COLOR).data
    assert html.count(f"background-color:{R.PLANTED_COLOR}") == 3  # two tokens and the legend
    assert KEPT_BACKGROUND not in html
    with pytest.raises(ValueError, match="hex colour"):
        highlight_tokens(["a"], [1], color="blue")


# ---------------------------------------------------------------------------- side by side
def test_side_by_side_is_each_model_on_its_own_rows():
    data = R.make_synthetic_reviews(6, seed=0)
    models = [_tiny(seed) for seed in range(3)]
    stack = _SideBySide(models)
    tokens, mask = data.tokens.repeat(3, 1), data.mask.repeat(3, 1)
    logits = stack.keep_logits(tokens, mask).reshape(3, 6, -1)
    z = torch.rand(2, 18, tokens.shape[1], generator=torch.Generator().manual_seed(0))
    classes = stack.classify(tokens, z).reshape(2, 3, 6, -1)
    for k, m in enumerate(models):
        expected = m.keep_logits(data.tokens, data.mask)
        assert torch.allclose(logits[k][data.mask], expected[data.mask], atol=1e-5)
        assert torch.allclose(classes[:, k], m.classify(data.tokens, z[:, 6 * k: 6 * (k + 1)]),
                              atol=1e-5)
    # exact estimator: K times the joint loss has each model's own gradient
    labels = data.labels.repeat(3)
    (3 * R.rationale_loss(stack, tokens, mask, labels, "exact").loss).backward()
    for k, m in enumerate(models):
        R.rationale_loss(m, data.tokens, data.mask, data.labels, "exact").loss.backward()
        for n, p in m.named_parameters():
            assert torch.allclose(stack.p(n).grad[k], p.grad, atol=1e-5), n


def test_train_side_by_side_trains_each_model_in_place():
    data = R.make_synthetic_reviews(64, seed=0)
    models = [_tiny(seed) for seed in range(2)]
    def weights(m):
        return torch.cat([p.detach().flatten() for p in m.parameters()])

    before = [weights(m) for m in models]
    R.train_side_by_side(models, data, "reinforce_loo", n_steps=3,
                         generator=torch.Generator().manual_seed(0))
    after = [weights(m) for m in models]
    assert not torch.equal(after[0], before[0]) and not torch.equal(after[1], before[1])
    assert not torch.equal(after[0] - before[0], after[1] - before[1])  # two different runs
    with pytest.raises(ValueError, match="same shape"):
        R.train_side_by_side([_tiny(), R.RationaleModel(len(R.SYNTHETIC_VOCABULARY))], data,
                             "exact", n_steps=1)
    with pytest.raises(ValueError, match="estimator"):
        R.train_side_by_side(models, data, "gumbel", n_steps=1)


class _LinearRationalizer(torch.nn.Module):
    """Not a RationaleModel: a per-token linear selector and a mean-pooling classifier."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.selector_table = torch.nn.Embedding(vocab_size, 1)
        self.classifier_table = torch.nn.Embedding(vocab_size, 2)

    def keep_logits(self, tokens, mask):
        return self.selector_table(tokens).squeeze(-1)

    def classify(self, tokens, z):
        return torch.einsum("...bl,blc->...bc", z, self.classifier_table(tokens))


def test_the_trainer_takes_any_module_with_the_rationalizer_methods():
    data = R.make_synthetic_reviews(64, seed=0)
    model = _LinearRationalizer(len(data.vocab))
    assert isinstance(model, R.Rationalizer) and not isinstance(model, R.RationaleModel)
    before = [p.detach().clone() for p in model.parameters()]
    history = R.train_rationale_model(model, data, data, "reinforce_loo", n_steps=3,
                                      eval_every=1, progress=False,
                                      generator=torch.Generator().manual_seed(0))
    assert history.steps == [0, 1, 2, 3] and len(history.test) == 4
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))

    class NoClassifier(torch.nn.Module):
        def keep_logits(self, tokens, mask):
            return tokens.double()

    with pytest.raises(TypeError, match="Rationalizer.*lacks classify"):
        R.train_rationale_model(NoClassifier(), data, data, "exact", n_steps=1)
