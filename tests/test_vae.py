"""Tests of lib.vae against torch.distributions, exact enumeration and the raw scikit-learn data."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Categorical, kl_divergence

from lib import estimators
from lib.gumbel import gumbel_max_sample, sample_gumbel
from lib.relaxed import gumbel_softmax
from lib.schedules import jang_anneal
from lib.vae import (
    CategoricalVAE,
    DigitsData,
    all_codes,
    bernoulli_log_likelihood,
    categorical_kl_uniform,
    discrete_negative_elbo,
    exact_negative_elbo,
    importance_log_weights,
    load_binarized_digits,
    negative_iwae,
    plot_digit_grid,
    train_vae,
    vae_loss,
)
from tests._helpers import assert_close, gen

#: The estimators of chapter 10 (the registry holds more: every one of them works in vae_loss).
BOOK_ESTIMATORS = ("gumbel_softmax", "st_gumbel_softmax", "straight_through", "reinforce_loo")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny layers: one thread is faster, and far faster on a loaded machine. Restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

# ------------------------------------------------------------------------------------ data


@pytest.fixture(scope="module")
def data():
    return load_binarized_digits()


def test_digits_are_binarised_with_the_documented_threshold(data):
    from sklearn.datasets import load_digits

    raw = load_digits()
    assert data.threshold == 8
    assert tuple(data.train.shape) == (1437, 64) and tuple(data.test.shape) == (360, 64)
    assert data.train.dtype == data.test.dtype == torch.get_default_dtype()
    assert set(torch.cat([data.train, data.test]).unique().tolist()) == {0.0, 1.0}
    # every binarised image is (raw >= 8) of a raw image with the same label: rebuild the split
    rows = {tuple((img >= 8).astype(int)): set() for img in raw.data}
    for img, label in zip(raw.data, raw.target):
        rows[tuple((img >= 8).astype(int))].add(int(label))
    for x, y in zip(data.test, data.test_labels):
        assert int(y) in rows[tuple(x.int().tolist())]


def test_split_is_a_seeded_partition(data):
    again = load_binarized_digits()
    assert torch.equal(again.train, data.train) and torch.equal(again.test, data.test)
    other = load_binarized_digits(seed=1)
    assert not torch.equal(other.test, data.test)
    # a partition: the label counts of train + test equal those of the whole data set
    from sklearn.datasets import load_digits

    counts = np.bincount(load_digits().target, minlength=10)
    ours = np.bincount(torch.cat([data.train_labels, data.test_labels]).numpy(), minlength=10)
    np.testing.assert_array_equal(ours, counts)


def test_images_follow_the_default_dtype_so_float64_models_can_read_them():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        data = load_binarized_digits()
        model = CategoricalVAE(n_latent=2, n_categories=3, n_hidden=8)
        assert data.train.dtype == torch.float64
        assert discrete_negative_elbo(model, data.test[:4], n_samples=2).dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)


def test_threshold_changes_the_fraction_of_ink():
    low, high = load_binarized_digits(threshold=1), load_binarized_digits(threshold=16)
    assert low.train.mean() > high.train.mean()


@pytest.mark.parametrize("kwargs", [{"threshold": 0}, {"threshold": 17}, {"test_size": 0},
                                    {"test_size": 1797}, {"seed": -1}])
def test_load_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        load_binarized_digits(**kwargs)


# ------------------------------------------------------------------------------------ KL


def test_kl_matches_torch_distributions():
    logits = 3 * torch.randn(50, 8, 10, generator=gen(0), dtype=torch.float64)
    uniform = Categorical(probs=torch.full((10,), 0.1, dtype=torch.float64))
    expected = kl_divergence(Categorical(logits=logits), uniform)
    assert_close(categorical_kl_uniform(logits), expected)


def test_kl_gradient_matches_torch_distributions():
    logits = torch.randn(6, 5, generator=gen(1), dtype=torch.float64, requires_grad=True)
    uniform = Categorical(probs=torch.full((5,), 0.2, dtype=torch.float64))
    (ours,) = torch.autograd.grad(categorical_kl_uniform(logits).sum(), logits)
    (theirs,) = torch.autograd.grad(kl_divergence(Categorical(logits=logits), uniform).sum(),
                                    logits)
    assert_close(ours, theirs)


def test_kl_is_nonnegative_zero_at_uniform_and_log_k_at_one_hot():
    logits = 5 * torch.randn(1000, 7, generator=gen(2))
    assert bool((categorical_kl_uniform(logits) >= 0).all())
    assert_close(categorical_kl_uniform(torch.full((3, 7), 2.5)), torch.zeros(3), atol=1e-6)
    one_hot_like = torch.tensor([[100.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    assert_close(categorical_kl_uniform(one_hot_like),
                 torch.tensor([math.log(4)], dtype=torch.float64))
    assert bool((categorical_kl_uniform(logits) <= math.log(7) + 1e-5).all())


def test_kl_with_masked_category_is_finite_with_finite_gradient():
    logits = torch.tensor([[0.0, 1.0, -math.inf]], dtype=torch.float64, requires_grad=True)
    kl = categorical_kl_uniform(logits)
    q = torch.softmax(torch.tensor([0.0, 1.0], dtype=torch.float64), -1)
    expected = (q * q.log()).sum() + math.log(3)
    assert_close(kl, expected.reshape(1))
    kl.sum().backward()
    assert bool(torch.isfinite(logits.grad).all())


def test_kl_along_another_dim():
    logits = torch.randn(4, 6, generator=gen(3))
    assert_close(categorical_kl_uniform(logits, dim=0), categorical_kl_uniform(logits.T))


def test_kl_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        categorical_kl_uniform(torch.tensor([0.0, math.nan]))


# ------------------------------------------------------------------------- likelihood


def test_bernoulli_log_likelihood_matches_torch_distributions_and_broadcasts():
    pixel_logits = 4 * torch.randn(3, 5, 64, generator=gen(4), dtype=torch.float64)
    x = (torch.rand(5, 64, generator=gen(5)) < 0.4).double()
    expected = Bernoulli(logits=pixel_logits).log_prob(x.expand(3, 5, 64)).sum(-1)
    assert_close(bernoulli_log_likelihood(pixel_logits, x), expected)


def test_bernoulli_log_likelihood_is_finite_for_saturated_logits():
    out = bernoulli_log_likelihood(torch.tensor([200.0, -200.0]), torch.tensor([0.0, 1.0]))
    assert_close(out, torch.tensor(-400.0))


# ---------------------------------------------------------------------------- model


def tiny_model(seed=0, n_latent=2, n_categories=3):
    torch.manual_seed(seed)
    return CategoricalVAE(n_latent=n_latent, n_categories=n_categories, n_hidden=8).double()


def oracle_negative_elbo(model, x):
    """-ELBO of each image by enumerating every code (K**N of them): the oracle."""
    n, k = model.n_latent, model.n_categories
    codes = torch.stack([F.one_hot(torch.tensor(c), k) for c in
                         itertools.product(range(k), repeat=n)]).double()  # [K**N, N, K]
    logits = model.encode(x)  # [B, N, K]
    log_q = torch.log_softmax(logits, -1)
    log_q_codes = torch.einsum("cnk,bnk->cb", codes, log_q)  # [K**N, B]
    cost = -bernoulli_log_likelihood(model.decode(codes).unsqueeze(1), x)  # [K**N, B]
    expected_cost = (log_q_codes.exp() * cost).sum(0)
    log_prior = -n * math.log(k)
    kl = (log_q_codes.exp() * (log_q_codes - log_prior)).sum(0)  # KL of the joint, enumerated
    return expected_cost + kl


def test_encode_decode_shapes_and_no_activation_on_logits():
    model = CategoricalVAE()
    logits = model.encode(torch.rand(7, 64, generator=gen(6)).round())
    assert logits.shape == (7, 8, 10)
    assert bool((logits < 0).any()), "logits must be able to be negative (no ReLU)"
    assert model.decode(torch.zeros(3, 7, 8, 10)).shape == (3, 7, 64)
    with pytest.raises(ValueError, match="64 pixels"):
        model.encode(torch.zeros(2, 63))
    with pytest.raises(ValueError, match="must end in"):
        model.decode(torch.zeros(2, 10, 8))


def test_stacked_models_compute_what_separate_models_compute():
    torch.manual_seed(0)
    plain = [CategoricalVAE(n_latent=3, n_categories=4, n_hidden=16) for _ in range(2)]
    stacked = CategoricalVAE(n_latent=3, n_categories=4, n_hidden=16, n_models=2)
    with torch.no_grad():
        for i in (0, 2):  # copy each plain model's Linear layers into slot m
            for part in ("encoder", "decoder"):
                target = getattr(stacked, part)[i]
                for m, model in enumerate(plain):
                    source = getattr(model, part)[i]
                    target.weight[m] = source.weight.T
                    target.bias[m, 0] = source.bias
    x = torch.rand(2, 5, 64, generator=gen(29)).round()
    z = F.one_hot(torch.randint(4, (2, 5, 3), generator=gen(30)), 4).float()
    for m, model in enumerate(plain):
        assert_close(stacked.encode(x)[m], model.encode(x[m]), atol=1e-5)
        assert_close(stacked.decode(z)[m], model.decode(z[m]), atol=1e-5)
    # images without a model dimension are fed to every model
    assert_close(stacked.encode(x[0])[1], plain[1].encode(x[0]), atol=1e-5)


def test_stacked_models_share_nothing():
    """Each model's gradient is that of its own mean loss, untouched by the other's data."""
    torch.manual_seed(0)
    model = CategoricalVAE(n_latent=3, n_categories=4, n_hidden=16, n_models=2)
    x = torch.rand(2, 5, 64, generator=gen(31)).round()
    for estimator in estimators.estimator_names():  # every registered estimator
        out = vae_loss(model, x, estimator, tau=0.5, n_samples=2, generator=gen(32))
        if not estimator.startswith("reinforce"):  # loss = sum over models of models' means
            assert_close(out.loss.detach(), out.negative_elbo.mean(-1).sum(), rtol=1e-5)
        grads = torch.autograd.grad(out.loss, list(model.parameters()))
        other = x.clone()
        other[0] = 1 - other[0]  # change model 0's images only
        out2 = vae_loss(model, other, estimator, tau=0.5, n_samples=2, generator=gen(32))
        grads2 = torch.autograd.grad(out2.loss, list(model.parameters()))
        for g1, g2 in zip(grads, grads2):
            assert torch.equal(g1[1], g2[1]), estimator  # model 1: bit for bit the same
            assert not torch.equal(g1[0], g2[0])


def test_plain_model_loss_is_the_batch_mean():
    model = tiny_model(5)
    x = (torch.rand(4, 64, generator=gen(33)) < 0.3).double()
    out = vae_loss(model, x, "gumbel_softmax", tau=0.5, n_samples=3, generator=gen(34))
    assert_close(out.loss.detach(), out.negative_elbo.mean())


def test_stacked_model_needs_a_batch_dimension():
    with pytest.raises(ValueError, match="batch dimension"):
        CategoricalVAE(n_models=2).encode(torch.zeros(64))


def test_sample_prior_and_reconstruct_are_probabilities():
    model = CategoricalVAE()
    images = model.sample_prior(5, generator=gen(7))
    assert images.shape == (5, 64) and bool(((images > 0) & (images < 1)).all())
    assert model.reconstruct(torch.zeros(4, 64)).shape == (4, 64)
    stacked = CategoricalVAE(n_models=2)
    assert stacked.sample_prior(5, generator=gen(7)).shape == (2, 5, 64)


def test_discrete_negative_elbo_matches_enumeration():
    model = tiny_model(0)
    x = (torch.rand(4, 64, generator=gen(8)) < 0.3).double()
    exact = oracle_negative_elbo(model, x)
    n_samples = 20_000
    estimate = discrete_negative_elbo(model, x, n_samples=n_samples, generator=gen(9))
    # standard error of the Monte Carlo mean, from the spread of the per-sample costs
    logits = model.encode(x)
    q = torch.softmax(logits, -1)
    z = torch.distributions.OneHotCategorical(probs=q).sample((2000,))
    with torch.no_grad():
        sd = (-bernoulli_log_likelihood(model.decode(z), x)).std(0)
    se = sd / math.sqrt(n_samples)
    assert bool(((estimate - exact).abs() <= 5 * se + 1e-9).all()), (estimate, exact, se)


def test_exact_negative_elbo_matches_the_oracle_and_its_gradient():
    model = tiny_model(6, n_latent=3, n_categories=2)
    x = (torch.rand(5, 64, generator=gen(35)) < 0.4).double()
    ours, oracle = exact_negative_elbo(model, x), oracle_negative_elbo(model, x)
    assert_close(ours, oracle)
    g1 = torch.autograd.grad(ours.sum(), list(model.parameters()))
    g2 = torch.autograd.grad(oracle_negative_elbo(model, x).sum(), list(model.parameters()))
    for a, b in zip(g1, g2):
        assert_close(a, b)
    with pytest.raises(ValueError, match="too many"):
        exact_negative_elbo(CategoricalVAE(), x.float())


def test_all_codes_enumerates_every_code_once():
    codes = all_codes(3, 4)
    assert codes.shape == (64, 3, 4)
    index = codes.argmax(-1)
    expected = torch.tensor(list(itertools.product(range(4), repeat=3)))
    assert torch.equal(index, expected)
    assert bool((codes.sum(-1) == 1).all())


def test_elbo_is_a_lower_bound_on_log_likelihood():
    model = tiny_model(1)
    x = (torch.rand(3, 64, generator=gen(10)) < 0.5).double()
    n, k = model.n_latent, model.n_categories
    codes = torch.stack([F.one_hot(torch.tensor(c), k) for c in
                         itertools.product(range(k), repeat=n)]).double()
    log_px_z = bernoulli_log_likelihood(model.decode(codes).unsqueeze(1), x)
    log_px = torch.logsumexp(log_px_z - n * math.log(k), dim=0)
    assert bool((oracle_negative_elbo(model, x) >= -log_px - 1e-9).all())


def exact_negative_log_likelihood(model, x):
    """-log p(x) of each image by enumerating every code: the limit of the IWAE bound."""
    n, k = model.n_latent, model.n_categories
    codes = all_codes(n, k, dtype=torch.float64)
    with torch.no_grad():
        log_px_z = bernoulli_log_likelihood(model.decode(codes).unsqueeze(1), x)
    return -torch.logsumexp(log_px_z - n * math.log(k), dim=0)


def test_iwae_is_between_the_elbo_and_the_exact_likelihood_and_converges():
    model = tiny_model(3)
    x = (torch.rand(4, 64, generator=gen(40)) < 0.4).double()
    exact = exact_negative_log_likelihood(model, x)
    with torch.no_grad():
        elbo = exact_negative_elbo(model, x)
    log_w = importance_log_weights(model, x, n_samples=20_000, generator=gen(41), max_rows=999)
    assert log_w.shape == (20_000, 4)
    # E[w] = p(x): the mean of the weights estimates p(x) without bias
    w = (log_w + exact).exp()  # w / p(x), mean 1
    assert bool(((w.mean(0) - 1).abs() <= 5 * w.std(0) / math.sqrt(20_000)).all())
    # k = 1: the negative ELBO on average; large k: close to -log p(x), never far below it
    k1 = -log_w.mean(0)
    assert bool(((k1 - elbo).abs() <= 5 * log_w.std(0) / math.sqrt(20_000)).all())
    # large k: -log p(x) up to the noise of the mean weight (-log mean w = -log p(x) - log(w/p))
    big = negative_iwae(log_w)
    assert bool(((big - exact).abs() <= 5 * w.std(0) / math.sqrt(20_000)).all())
    # the bound loosens as k shrinks (on average over 2,000 bounds with k = 10)
    small = torch.stack([negative_iwae(chunk) for chunk in log_w.split(10)])
    assert bool((small.mean(0) > big).all()) and bool((small.mean(0) < k1 + 1e-9).all())
    assert bool((elbo >= exact - 1e-9).all())


def test_iwae_of_stacked_models_is_each_models_own():
    torch.manual_seed(5)
    stacked = CategoricalVAE(n_latent=2, n_categories=3, n_hidden=8, n_models=2).double()
    x = (torch.rand(3, 64, generator=gen(42)) < 0.4).double()
    log_w = importance_log_weights(stacked, x, n_samples=7, generator=gen(43), max_rows=5)
    assert log_w.shape == (7, 2, 3)
    for m in range(2):
        plain = CategoricalVAE(n_latent=2, n_categories=3, n_hidden=8).double()
        with torch.no_grad():
            for (layer, stack) in ((plain.encoder[0], stacked.encoder[0]),
                                   (plain.encoder[2], stacked.encoder[2]),
                                   (plain.decoder[0], stacked.decoder[0]),
                                   (plain.decoder[2], stacked.decoder[2])):
                layer.weight.copy_(stack.weight[m].T)
                layer.bias.copy_(stack.bias[m, 0])
        exact = exact_negative_log_likelihood(plain, x)
        assert bool((negative_iwae(log_w[:, m]) >= exact - 1.0).all())
    with pytest.raises(ValueError):
        negative_iwae(torch.zeros(0, 3))


# ------------------------------------------------------------------------ estimators


def old_style_loss(model, x, estimator, tau, n_samples, generator):
    """The loss as lib.vae computed it before the registry: its own samplers, written out."""
    logits = model.encode(x)
    expanded = logits.expand(n_samples, *logits.shape)
    if estimator == "gumbel_softmax":
        z = gumbel_softmax(expanded, tau, generator=generator)
    elif estimator == "st_gumbel_softmax":
        z = gumbel_softmax(expanded, tau, hard=True, generator=generator)
    else:
        index = gumbel_max_sample(expanded.detach(), generator=generator)
        z = F.one_hot(index, logits.shape[-1]).to(logits.dtype)
        if estimator == "straight_through":
            probs = torch.softmax(expanded, dim=-1)
            z = z + (probs - probs.detach())
    cost = -bernoulli_log_likelihood(model.decode(z), x)  # [S, B]
    loss = cost.mean() + categorical_kl_uniform(logits).sum(-1).mean()
    if estimator == "reinforce_loo":
        log_q = (z * torch.log_softmax(logits, dim=-1)).sum(dim=(-2, -1))
        baseline = (cost.sum(0) - cost) / (n_samples - 1)
        loss = loss + ((cost - baseline).detach() * log_q).mean()
    return loss


@pytest.mark.parametrize("estimator", BOOK_ESTIMATORS)
def test_vae_loss_draws_the_numbers_and_gives_the_gradient_of_the_samplers_it_replaced(estimator):
    """Through the registry, the chapter's four estimators draw the same random numbers from
    the generator as lib.vae's own samplers did, and give the same loss and gradient: the
    chapter's training runs do not change."""
    model = tiny_model(9, n_latent=3, n_categories=4)
    x = (torch.rand(6, 64, generator=gen(44)) < 0.3).double()
    g_new, g_old = gen(45), gen(45)
    new = vae_loss(model, x, estimator, tau=0.6, n_samples=3, generator=g_new).loss
    old = old_style_loss(model, x, estimator, 0.6, 3, g_old)
    assert torch.equal(g_new.get_state(), g_old.get_state())
    assert_close(new, old)
    for a, b in zip(torch.autograd.grad(new, list(model.parameters())),
                    torch.autograd.grad(old, list(model.parameters()))):
        assert_close(a, b, atol=1e-12)
    assert any(bool(a.abs().max() > 0) for a in torch.autograd.grad(
        vae_loss(model, x, estimator, tau=0.6, n_samples=3, generator=gen(45)).loss,
        list(model.encoder.parameters())))


def test_exact_estimator_gives_the_exact_negative_elbo_and_its_gradient():
    model = tiny_model(10, n_latent=2, n_categories=3)
    x = (torch.rand(5, 64, generator=gen(46)) < 0.4).double()
    out = vae_loss(model, x, "exact")
    exact = exact_negative_elbo(model, x)
    assert_close(out.loss, exact.mean())
    assert_close(out.negative_elbo, exact.detach())
    for a, b in zip(torch.autograd.grad(out.loss, list(model.parameters())),
                    torch.autograd.grad(exact.mean(), list(model.parameters()))):
        assert_close(a, b)
    # the book's model has 10 ** 8 codes: the registry refuses to enumerate them
    with pytest.raises(ValueError, match="MAX_EXACT_OUTCOMES"):
        vae_loss(CategoricalVAE(), torch.ones(2, 64), "exact")


@pytest.fixture
def registry_copy(monkeypatch):
    """Estimators registered in a test go into a copy of the registry, dropped after it."""
    monkeypatch.setattr(estimators, "_ESTIMATORS", dict(estimators._ESTIMATORS))


def test_an_estimator_registered_later_trains_the_vae_unchanged(registry_copy):
    @estimators.register_estimator("st_identity", unbiased=False,
                                   label="ST, identity backward")
    def st_identity(node, cost, n_samples, generator):
        hard = node.sample(n_samples, generator)
        z = hard + (node.logits - node.logits.detach())  # hard forward, identity backward
        costs = cost(z)
        return estimators.Surrogate(costs.mean(0), costs.mean(0).detach(), hard,
                                    torch.full_like(costs.detach(), 1 / n_samples))

    model = tiny_model(11, n_latent=3, n_categories=4)
    x = (torch.rand(6, 64, generator=gen(47)) < 0.3).double()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    out = vae_loss(model, x, "st_identity", tau=0.5, n_samples=2, generator=gen(48))
    out.loss.backward()
    encoder = torch.cat([p.grad.flatten() for p in model.encoder.parameters()])
    assert bool(torch.isfinite(encoder).all()) and float(encoder.abs().max()) > 0
    # the same one-hot codes as plain straight-through (the same draws), so the same decoder
    # gradient and value; a different encoder gradient (identity, not softmax, backward)
    st = vae_loss(model, x, "straight_through", n_samples=2, generator=gen(48))
    st_grads = torch.autograd.grad(st.loss, list(model.parameters()))
    n_enc = len(list(model.encoder.parameters()))
    assert torch.equal(st.negative_elbo, out.negative_elbo)
    for p, g in zip(list(model.parameters())[n_enc:], st_grads[n_enc:]):
        assert_close(p.grad, g)
    assert not torch.allclose(encoder, torch.cat([g.flatten() for g in st_grads[:n_enc]]))
    optimizer.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    # and the training loop takes it by name, with plain tensors as data
    images = (torch.rand(30, 64, generator=gen(49)) < 0.3).double()
    history = train_vae(model, (images[:20], images[20:]), "st_identity", n_epochs=1,
                        batch_size=10, n_samples=2, generator=gen(50), progress=False)
    assert history.estimator == "st_identity" and np.isfinite(history.test_negative_elbo).all()


def test_tau_reaches_exactly_the_estimators_that_take_it(registry_copy):
    seen = []

    @estimators.register_estimator("relaxed_probe", unbiased=False, params={"tau": 1.0})
    def relaxed_probe(node, cost, n_samples, generator, tau):
        seen.append(tau)
        z = node.relaxed(n_samples, tau, False, generator)
        costs = cost(z)
        return estimators.Surrogate(costs.mean(0), costs.mean(0).detach(), z.detach(),
                                    torch.full_like(costs.detach(), 1 / n_samples))

    model = tiny_model(12)
    x = torch.ones(3, 64, dtype=torch.float64)
    vae_loss(model, x, "relaxed_probe", tau=0.25, generator=gen(51)).loss.backward()
    assert seen == [0.25]
    # an estimator without a tau parameter is not given one (it would refuse it)
    vae_loss(model, x, "straight_through", tau=0.25, generator=gen(51))


def flat_grad(model):
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def test_reinforce_loo_gradient_is_unbiased_for_every_parameter():
    """The mean of many REINFORCE-LOO gradients matches the exact gradient of the -ELBO."""
    model = tiny_model(2)
    x = (torch.rand(3, 64, generator=gen(20)) < 0.3).double()
    model.zero_grad()
    oracle_negative_elbo(model, x).mean().backward()
    exact = flat_grad(model).clone()
    estimates = []
    g = gen(21)
    for _ in range(40):  # 40 independent estimates, each averaging 500 samples per image
        model.zero_grad()
        vae_loss(model, x, "reinforce_loo", n_samples=500, generator=g).loss.backward()
        estimates.append(flat_grad(model).clone())
    estimates = torch.stack(estimates)
    mean, se = estimates.mean(0), estimates.std(0) / math.sqrt(len(estimates))
    z = (mean - exact) / (se + 1e-12)
    # tolerance sized by the standard error: no coordinate (about 1,200 of them) is more than
    # 5.5 SE away (t with 39 degrees of freedom), and the mean squared z-score is near 1
    assert bool((z.abs() < 5.5).all()), float(z.abs().max())
    assert 0.6 < float((z[se > 0] ** 2).mean()) < 1.6
    # and the estimator is not trivially right: the gradient is far from zero
    assert float(exact.abs().max()) > 10 * float(se.max())


def test_pathwise_estimators_give_the_exact_decoder_gradient_in_the_one_hot_case():
    """With one-hot forward samples the decoder's gradient is unbiased (ST and ST-Gumbel)."""
    model = tiny_model(3)
    x = (torch.rand(2, 64, generator=gen(22)) < 0.3).double()
    model.zero_grad()
    oracle_negative_elbo(model, x).mean().backward()
    n_dec = sum(p.numel() for p in model.decoder.parameters())
    exact = flat_grad(model)[-n_dec:].clone()
    for estimator in ("straight_through", "st_gumbel_softmax"):
        model.zero_grad()
        vae_loss(model, x, estimator, n_samples=40_000, generator=gen(23)).loss.backward()
        decoder = flat_grad(model)[-n_dec:]
        scale = float(exact.abs().max())
        # 40,000 one-hot samples per image: the Monte Carlo error is about sd / 200 per
        # coordinate, far below 5% of the largest coordinate
        assert float((decoder - exact).abs().max()) < 0.05 * scale, estimator


def test_a_sampler_function_can_replace_the_estimator():
    """A user's own ST-Gumbel sampler gives exactly what the built-in one gives."""

    def my_st_gumbel(logits, tau, generator):
        noise = sample_gumbel(logits.shape, generator=generator, dtype=logits.dtype)
        soft = torch.softmax((logits + noise) / tau, dim=-1)
        hard = F.one_hot(soft.argmax(-1), logits.shape[-1]).to(soft.dtype)
        return hard + (soft - soft.detach())

    model = tiny_model(7)
    x = (torch.rand(4, 64, generator=gen(36)) < 0.3).double()
    mine = vae_loss(model, x, my_st_gumbel, tau=0.6, n_samples=2, generator=gen(37))
    g1 = torch.autograd.grad(mine.loss, list(model.parameters()))
    builtin = vae_loss(model, x, "st_gumbel_softmax", tau=0.6, n_samples=2, generator=gen(37))
    g2 = torch.autograd.grad(builtin.loss, list(model.parameters()))
    assert_close(mine.loss, builtin.loss)
    for a, b in zip(g1, g2):
        assert_close(a, b)
    with pytest.raises(ValueError, match="must return a tensor"):
        vae_loss(model, x, lambda logits, tau, generator: logits[0], n_samples=2)


def test_vae_loss_values():
    model = tiny_model(4)
    x = (torch.rand(5, 64, generator=gen(24)) < 0.3).double()
    for estimator in estimators.estimator_names():
        out = vae_loss(model, x, estimator, tau=0.5, n_samples=3, generator=gen(25))
        assert out.loss.dim() == 0 and out.negative_elbo.shape == (5,)
        assert_close(out.kl, categorical_kl_uniform(model.encode(x)).sum(-1))
        assert bool((out.negative_elbo > out.kl).all())  # the reconstruction cost is positive
    with pytest.raises(ValueError, match="n_samples >= 2"):
        vae_loss(model, x, "reinforce_loo", n_samples=1)
    with pytest.raises(ValueError, match="unknown estimator 'gumbel'; choose one of"):
        vae_loss(model, x, "gumbel")
    with pytest.raises(TypeError, match="registered name .* or a sampler function"):
        vae_loss(model, x, 3)


# -------------------------------------------------------------------------- training


def test_training_improves_the_test_bound_and_is_reproducible(data):
    small = DigitsData(data.train[:300], data.test[:100], data.train_labels[:300],
                       data.test_labels[:100], data.threshold, data.seed)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = CategoricalVAE(n_latent=4, n_categories=5, n_hidden=32)
        runs.append(train_vae(model, small, "st_gumbel_softmax", n_epochs=6, batch_size=50,
                              lr=3e-3, tau=jang_anneal(36), eval_every=3,
                              generator=gen(26), progress=False))
    a, b = runs
    np.testing.assert_array_equal(a.test_negative_elbo, b.test_negative_elbo)
    assert a.eval_epochs.tolist() == [0, 3, 6] and a.steps == 36 and a.taus.shape == (6,)
    assert a.test_negative_elbo.shape == (3, 1) and a.train_objective.shape == (6, 1)
    assert a.test_kl.shape == (3, 1) and bool((a.test_kl >= 0).all())
    assert bool((a.test_kl < a.test_negative_elbo).all())
    assert a.test_negative_elbo[-1, 0] < a.test_negative_elbo[0, 0] - 5
    assert a.taus[0] == 1.0 and a.taus[-1] < 1.0


def test_training_stacked_models(data):
    small = DigitsData(data.train[:200], data.test[:50], data.train_labels[:200],
                       data.test_labels[:50], data.threshold, data.seed)
    torch.manual_seed(1)
    model = CategoricalVAE(n_latent=4, n_categories=5, n_hidden=32, n_models=3)
    history = train_vae(model, small, "reinforce_loo", n_epochs=4, batch_size=50, n_samples=3,
                        eval_every=2, generator=gen(28), progress=False)
    assert history.test_negative_elbo.shape == (3, 3)
    assert history.train_objective.shape == (4, 3)
    assert bool((history.test_negative_elbo[-1] < history.test_negative_elbo[0]).all())
    # the three models differ (own initial weights, own samples, own order of images)
    assert len(set(history.test_negative_elbo[-1].round(6).tolist())) == 3


def test_train_vae_takes_plain_tensors_and_gives_what_digits_data_gives(data):
    small = DigitsData(data.train[:100], data.test[:40], data.train_labels[:100],
                       data.test_labels[:40], data.threshold, data.seed)
    histories = []
    for images in (small, (small.train, small.test)):
        torch.manual_seed(2)
        model = CategoricalVAE(n_latent=3, n_categories=4, n_hidden=16)
        histories.append(train_vae(model, images, "gumbel_softmax", n_epochs=2, batch_size=50,
                                   tau=0.7, eval_every=1, generator=gen(52), progress=False))
    a, b = histories
    np.testing.assert_array_equal(a.test_negative_elbo, b.test_negative_elbo)
    np.testing.assert_array_equal(a.train_objective, b.train_objective)


def test_the_pixel_count_is_a_parameter():
    model = CategoricalVAE(n_latent=3, n_categories=4, n_hidden=16, n_pixels=20)
    assert model.n_pixels == 20 and CategoricalVAE().n_pixels == 64
    assert model.encode(torch.zeros(5, 20)).shape == (5, 3, 4)
    assert model.decode(torch.zeros(2, 5, 3, 4)).shape == (2, 5, 20)
    assert model.sample_prior(7, generator=gen(53)).shape == (7, 20)
    with pytest.raises(ValueError, match="20 pixels"):
        model.encode(torch.zeros(5, 64))
    images = (torch.rand(60, 20, generator=gen(54)) < 0.5).float()
    history = train_vae(model, (images[:40], images[40:]), "st_gumbel_softmax", n_epochs=3,
                        batch_size=10, lr=1e-2, n_samples=2, eval_every=3, generator=gen(55),
                        progress=False)
    assert history.test_negative_elbo.shape == (2, 1)
    assert history.test_negative_elbo[-1, 0] < history.test_negative_elbo[0, 0]
    with pytest.raises(ValueError, match=r"n_pixels"):
        train_vae(model, (images[:40, :10], images[40:]), "st_gumbel_softmax")


def test_train_vae_rejects_bad_arguments(data):
    model = CategoricalVAE()
    with pytest.raises(TypeError, match="DigitsData"):
        train_vae(model, data.train, "gumbel_softmax")
    with pytest.raises(TypeError, match="train must be a floating-point"):
        train_vae(model, (data.train.long(), data.test), "gumbel_softmax")
    with pytest.raises(ValueError, match=r"test images must be a tensor \[n, 64\]"):
        train_vae(model, (data.train, data.test[:0]), "gumbel_softmax")
    with pytest.raises(ValueError, match="estimator"):
        train_vae(model, data, "sf")
    with pytest.raises(TypeError, match="estimator"):
        train_vae(model, data, 3)


def test_plot_digit_grid_lays_out_images():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    images = torch.rand(12, 64, generator=gen(27))
    drawn = plot_digit_grid(ax, images, n_cols=5, title="t")
    canvas = drawn.get_array()
    assert canvas.shape == (3 * 9 + 1, 5 * 9 + 1)
    assert np.allclose(canvas[1:9, 1:9], images[0].reshape(8, 8).numpy())
    plt.close(fig)


def test_docstring_examples():
    import doctest

    import lib.vae

    result = doctest.testmod(lib.vae, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result


class _TinyVAE(torch.nn.Module):
    """Not a CategoricalVAE: a VAE of another architecture with the VAEModel members."""

    n_pixels, n_latent, n_categories, n_models = 16, 2, 3, None

    def __init__(self) -> None:
        super().__init__()
        self.enc = torch.nn.Linear(16, 6)
        self.dec = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(),
                                       torch.nn.Linear(8, 16))

    def encode(self, x):
        return self.enc(x).unflatten(-1, (2, 3))

    def decode(self, z):
        return self.dec(z.flatten(-2))


def test_train_vae_takes_any_module_with_the_protocol_members():
    from lib.vae import VAEModel

    g = torch.Generator().manual_seed(0)
    images = (torch.rand(40, 16, generator=g) < 0.5).double()
    model = _TinyVAE().double()
    assert isinstance(model, VAEModel)
    before = [p.detach().clone() for p in model.parameters()]
    history = train_vae(model, (images[:30], images[30:]), "st_gumbel_softmax", n_epochs=2,
                        batch_size=10, eval_every=1, generator=g, progress=False)
    assert history.steps == 6 and history.test_negative_elbo.shape == (3, 1)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))

    class NoDecoder(torch.nn.Module):
        n_pixels, n_latent, n_categories, n_models = 16, 2, 3, None

        def encode(self, x):
            return x

    with pytest.raises(TypeError, match="VAEModel.*lacks decode"):
        train_vae(NoDecoder(), (images[:30], images[30:]), "st_gumbel_softmax", n_epochs=1)
    with pytest.raises(TypeError, match="VAEModel"):
        vae_loss(object(), images, "st_gumbel_softmax")
