"""The estimator registry of lib.estimators: stochastic nodes, surrogate losses, registration.

Oracles are independent of the code under test: closed-form gradients of linear costs,
brute-force enumeration with torch.distributions and itertools, and z-tests of unbiasedness
whose tolerances are sized by the standard error of the mean estimate.
"""

import itertools
import math

import pytest
import torch

from lib.estimators import (
    MAX_EXACT_OUTCOMES,
    StochasticNode,
    Surrogate,
    bernoulli_log_prob,
    estimator_names,
    get_estimator_spec,
    register_estimator,
    surrogate,
)

BOOK_NAMES = ("exact", "reinforce", "reinforce_loo", "straight_through", "gumbel_softmax",
              "st_gumbel_softmax")


def gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def registered():
    """Register test estimators and remove them afterwards, so other tests never see them."""
    from lib import estimators

    before = dict(estimators._ESTIMATORS)
    yield
    estimators._ESTIMATORS.clear()
    estimators._ESTIMATORS.update(before)


def test_the_book_names_are_registered_once_each():
    assert estimator_names()[:len(BOOK_NAMES)] == BOOK_NAMES
    assert {n: get_estimator_spec(n).unbiased for n in BOOK_NAMES} == {
        "exact": True, "reinforce": True, "reinforce_loo": True, "straight_through": False,
        "gumbel_softmax": False, "st_gumbel_softmax": False}


def _linear_cost(c):
    return lambda z: (z * c).flatten(2).sum(-1)


@pytest.mark.parametrize("kind", ["categorical", "bernoulli"])
@pytest.mark.parametrize("name", BOOK_NAMES)
def test_shapes_of_every_estimator(name, kind):
    shape = (2, 4, 3)  # batch 2, event 4 variables (x 3 categories when categorical)
    logits = torch.randn(*shape if kind == "categorical" else shape[:2], generator=gen(0),
                         dtype=torch.float64).requires_grad_(True)
    c = torch.randn(logits.shape, generator=gen(1), dtype=torch.float64)
    out = surrogate(name, StochasticNode(kind, logits, event_dims=1), _linear_cost(c),
                    n_samples=3, generator=gen(2), tau=0.5) if "gumbel" in name else \
        surrogate(name, StochasticNode(kind, logits, event_dims=1), _linear_cost(c),
                  n_samples=3, generator=gen(2))
    assert isinstance(out, Surrogate)
    assert out.loss.shape == out.cost.shape == (2,)
    m = 3 ** 4 if (name == "exact" and kind == "categorical") else 2 ** 4 if name == "exact" \
        else 3
    assert out.samples.shape == (m, *logits.shape) and out.weights.shape == (m, 2)
    torch.testing.assert_close(out.weights.sum(0), torch.ones(2, dtype=torch.float64))
    out.loss.sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_exact_matches_the_closed_form_gradient_of_a_linear_cost():
    """d/dl sum_k softmax(l)_k c_k = p * (c - p.c): an oracle that needs no enumeration."""
    logits = torch.tensor([[0.3, -1.0, 2.0], [0.0, 0.0, 0.0]], dtype=torch.float64,
                          requires_grad=True)
    c = torch.tensor([1.0, -2.0, 4.0], dtype=torch.float64)
    surrogate("exact", StochasticNode("categorical", logits), lambda z: z @ c).loss.sum() \
        .backward()
    p = torch.softmax(logits.detach(), -1)
    torch.testing.assert_close(logits.grad, p * (c - (p * c).sum(-1, keepdim=True)))


def test_exact_on_a_product_of_categoricals_matches_brute_force():
    """Two 3-way variables per element, a cost that couples them: itertools enumeration."""
    logits = torch.randn(2, 2, 3, generator=gen(3), dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 3, generator=gen(4), dtype=torch.float64)

    def cost(z):  # z [M, B, 2, 3] -> [M, B]: w[i, j] for the chosen pair, squared
        return torch.einsum("mbi,ij,mbj->mb", z[..., 0, :], w, z[..., 1, :]) ** 2

    out = surrogate("exact", StochasticNode("categorical", logits, event_dims=1), cost)
    dist = torch.distributions.Categorical(logits=logits)
    brute = torch.zeros(2, dtype=torch.float64)
    for i, j in itertools.product(range(3), range(3)):
        p = dist.log_prob(torch.tensor([i, j])).sum(-1).exp()  # [B]
        brute = brute + p * w[i, j] ** 2
    torch.testing.assert_close(out.loss, brute)
    (g_reg,) = torch.autograd.grad(out.loss.sum(), logits)
    (g_brute,) = torch.autograd.grad(brute.sum(), logits)
    torch.testing.assert_close(g_reg, g_brute)


def test_bernoulli_padding_is_never_sampled_and_never_counted():
    logits = torch.tensor([[0.5, -0.3, 2.0], [1.0, 0.2, -0.7]], dtype=torch.float64,
                          requires_grad=True)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    node = StochasticNode("bernoulli", logits, event_dims=1, mask=mask)
    z = node.sample(500, gen(5))
    assert (z[:, 0, 2] == 0).all() and z[:, 1, 2].mean() > 0.1
    # exact: expectations over the real variables only (independent oracle: sigmoid products)
    c = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    out = surrogate("exact", node, lambda s: s @ c)
    expected = (torch.sigmoid(logits.detach()) * mask * c).sum(-1)
    torch.testing.assert_close(out.loss.detach(), expected)
    torch.testing.assert_close(out.weights.sum(0), torch.ones(2, dtype=torch.float64))
    assert (out.samples[out.weights[:, 0] > 0][:, 0, 2] == 0).all()


@pytest.mark.parametrize("name", ["reinforce", "reinforce_loo"])
@pytest.mark.parametrize("kind", ["categorical", "bernoulli"])
def test_score_function_estimators_are_unbiased(name, kind):
    """Mean of 4000 estimates within 4.5 standard errors of the exact gradient, per coordinate
    (with 6 coordinates, a false alarm has probability about 4e-5)."""
    base = torch.tensor([0.4, -0.8, 1.2], dtype=torch.float64)
    logits = base.expand(4000, 3).clone().requires_grad_(True)
    cost = (lambda z: torch.exp(z @ torch.tensor([1.0, -0.5, 0.7], dtype=torch.float64))) \
        if kind == "categorical" else \
        (lambda z: ((z - 0.3) ** 3).sum(-1) + z[..., 0] * z[..., 2])
    node = StochasticNode(kind, logits, event_dims=0 if kind == "categorical" else 1)
    (g,) = torch.autograd.grad(surrogate(name, node, cost, 4, gen(6)).loss.sum(), logits)
    exact_leaf = base.clone().requires_grad_(True)
    exact_node = StochasticNode(kind, exact_leaf.unsqueeze(0),
                                event_dims=0 if kind == "categorical" else 1)
    (exact,) = torch.autograd.grad(surrogate("exact", exact_node, cost).loss.sum(), exact_leaf)
    z = (g.mean(0) - exact) / (g.std(0) / math.sqrt(g.shape[0]))
    assert z.abs().max() < 4.5, z


def test_cost_parameters_get_their_gradient():
    """A cost with its own parameter w: exact gives dE/dw exactly, REINFORCE without bias."""
    logits = torch.tensor([0.2, -0.4, 0.9], dtype=torch.float64)
    w = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    c = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)

    def cost(z):
        return (w * (z @ c) - 2.0) ** 2

    p = torch.softmax(logits, -1)
    true = (2 * (w.detach() * c - 2.0) * c * p).sum()  # d/dw sum_k p_k (w c_k - 2)^2
    node = StochasticNode("categorical", logits.expand(1, 3))
    (g_exact,) = torch.autograd.grad(surrogate("exact", node, cost).loss.sum(), w)
    torch.testing.assert_close(g_exact, true)
    node = StochasticNode("categorical", logits.expand(20000, 3))
    out = surrogate("reinforce", node, cost, 1, gen(7))
    (g,) = torch.autograd.grad(out.loss.mean(), w)
    per_sample = 2 * (w.detach() * (out.samples[0] @ c) - 2.0) * (out.samples[0] @ c)
    se = per_sample.std() / math.sqrt(per_sample.numel())
    assert abs(float(g - true)) < 4 * float(se)


def test_straight_through_is_the_no_noise_estimator():
    """Its gradient for a linear cost is that of E[z] = probs: the same for every sample."""
    logits = torch.tensor([[0.3, -0.2, 0.5]], dtype=torch.float64, requires_grad=True)
    c = torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64)
    out = surrogate("straight_through", StochasticNode("categorical", logits), lambda z: z @ c,
                    n_samples=7, generator=gen(8))
    (g,) = torch.autograd.grad(out.loss.sum(), logits)
    p = torch.softmax(logits.detach(), -1)
    torch.testing.assert_close(g, p * (c - (p * c).sum(-1, keepdim=True)))
    assert set(out.samples.sum(-1).flatten().tolist()) == {1.0}  # one-hot forward


def test_bernoulli_log_prob_is_stable_and_matches_torch_distributions():
    logits = torch.tensor([-30.0, -1.0, 0.0, 2.5, 40.0], dtype=torch.float64)
    z = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(bernoulli_log_prob(logits, z),
                               torch.distributions.Bernoulli(logits=logits).log_prob(z))


def test_registering_one_function_makes_a_new_estimator(registered):
    @register_estimator("st_identity", unbiased=False, label="ST identity")
    def st_identity(node, cost, n_samples, generator):
        hard = node.sample(n_samples, generator)
        costs = cost(hard + (node.logits - node.logits.detach()))
        return Surrogate(costs.mean(0), costs.mean(0).detach(), hard,
                         torch.full_like(costs, 1 / n_samples).detach())

    assert "st_identity" in estimator_names()
    logits = torch.zeros(2, 3, requires_grad=True)
    out = surrogate("st_identity", StochasticNode("categorical", logits),
                    lambda z: z @ torch.tensor([1.0, 2.0, 3.0]), n_samples=5, generator=gen(9))
    out.loss.sum().backward()
    torch.testing.assert_close(logits.grad, torch.tensor([[1.0, 2.0, 3.0]] * 2))
    with pytest.raises(ValueError, match="already registered"):
        register_estimator("st_identity", unbiased=False)(st_identity)


def test_bad_input_gets_clear_errors(registered):
    node = StochasticNode("categorical", torch.zeros(2, 3))
    cost = lambda z: z.sum(-1)  # noqa: E731
    with pytest.raises(ValueError, match="unknown estimator 'relaxed'; choose one of exact"):
        surrogate("relaxed", node, cost)
    with pytest.raises(TypeError, match="estimator must be a str"):
        surrogate(3, node, cost)
    with pytest.raises(ValueError, match="needs n_samples >= 2"):
        surrogate("reinforce_loo", node, cost, n_samples=1)
    with pytest.raises(ValueError, match="does not take parameter"):
        surrogate("straight_through", node, cost, tau=0.5)
    with pytest.raises(ValueError, match=r"tau must be"):
        surrogate("gumbel_softmax", node, cost, tau=0.0)
    with pytest.raises(ValueError, match=r"cost must map samples \(1, 2, 3\) to costs \(1, 2\)"):
        surrogate("straight_through", node, lambda z: z.sum())
    with pytest.raises(TypeError, match="node must be a StochasticNode"):
        surrogate("exact", torch.zeros(3), cost)
    with pytest.raises(ValueError, match="kind must be 'categorical' or 'bernoulli'"):
        StochasticNode("gaussian", torch.zeros(3))
    with pytest.raises(ValueError, match="mask is supported for Bernoulli nodes only"):
        StochasticNode("categorical", torch.zeros(2, 3), mask=torch.ones(2, 3, dtype=bool))
    with pytest.raises(ValueError, match="need at least 2 dimensions"):
        StochasticNode("categorical", torch.zeros(3), event_dims=1)
    with pytest.raises(ValueError, match="MAX_EXACT_OUTCOMES"):
        n = int(math.log2(MAX_EXACT_OUTCOMES)) + 1
        surrogate("exact", StochasticNode("bernoulli", torch.zeros(1, n), event_dims=1),
                  lambda z: z.sum(-1))
    with pytest.raises(ValueError, match="Python identifier"):
        register_estimator("two words", unbiased=True)

    @register_estimator("broken", unbiased=True)
    def broken(node, cost, n_samples, generator):
        return cost(node.sample(n_samples, generator))

    with pytest.raises(TypeError, match="must return a Surrogate"):
        surrogate("broken", node, cost)


def test_uniforms_drive_hard_and_relaxed_samples_consistently():
    logits = torch.randn(4, 5, generator=gen(10), dtype=torch.float64)
    for kind in ("categorical", "bernoulli"):
        node = StochasticNode(kind, logits, event_dims=1)
        u = node.uniforms(300, gen(11))
        assert u.shape == (300, 4, 5) and (u > 0).all() and (u < 1).all()
        hard = node.sample_from(u)
        torch.testing.assert_close(node.relaxed_from(u, 0.3, hard=True), hard)
        soft = node.relaxed_from(u, 1e-3)
        assert ((soft > 0.5) == (hard > 0.5)).float().mean() > 0.99  # tau -> 0: the same sample
    # categorical: the very samples of node.sample (Gumbel-max on the same uniforms)
    node = StochasticNode("categorical", logits)
    torch.testing.assert_close(node.sample_from(node.uniforms(50, gen(12))),
                               node.sample(50, gen(12)))
    # Bernoulli: the right marginal, P(b = 1) = sigmoid(l) (4 SE of 20,000 draws)
    node = StochasticNode("bernoulli", logits[0])
    freq = node.sample_from(node.uniforms(20_000, gen(13))).mean(0)
    p = torch.sigmoid(logits[0])
    assert ((freq - p).abs() < 4 * (p * (1 - p) / 20_000).sqrt()).all()


def test_an_antithetic_estimator_written_with_the_uniforms_is_unbiased_in_the_lab(registered):
    """ARM (Yin and Zhou 2019), registered in one function: for Bernoulli logits l,
    g_i = (f(1[u > sigma(-l)]) - f(1[u < sigma(l)])) (u_i - 1/2), one uniform vector u per
    sample. The lab's z-test against the exact gradient finds no bias."""
    from lib.compare import BernoulliProblem, get_estimator, measure

    @register_estimator("arm_example", unbiased=True, label="ARM (example)")
    def arm(node, cost, n_samples, generator):
        u = node.uniforms(n_samples, generator)
        f1, f2 = cost(node.sample_from(u)), cost(node.sample_from(1 - u))  # antithetic pair
        # sample_from(1 - u) = 1[l - logit(u) > 0] = 1[u < sigmoid(l)]
        weight = ((f1 - f2).detach().unsqueeze(-1) * (u - 0.5)).detach()
        loss = (weight * node.logits).sum(-1).mean(0) + 0.5 * (f1 + f2).mean(0)
        cost_mean = (0.5 * (f1 + f2)).mean(0).detach()
        samples = torch.cat([node.sample_from(u), node.sample_from(1 - u)])
        weights = torch.full((2 * n_samples, *node.batch_shape), 0.5 / n_samples,
                             dtype=u.dtype)
        return Surrogate(loss, cost_mean, samples, weights)

    problem = BernoulliProblem(torch.tensor([0.3, -1.0, 0.8, 0.1], dtype=torch.float64),
                               lambda b: torch.exp(b @ torch.tensor(
                                   [1.0, -0.5, 0.7, 0.2], dtype=torch.float64)) * b[..., 0])
    m = measure(problem, get_estimator("arm_example"), 2, 20_000, gen(14))
    assert m.max_abs_z < 4.5, m.bias_z  # 4 coordinates: false alarm about 3e-5
    loo = measure(problem, get_estimator("reinforce_loo"), 2, 20_000, gen(15))
    assert m.variance_total < loo.variance_total  # what coupling is for, on this cost
    # the registry's own "arm" (chapter 12) gives the same estimate on the same uniforms
    assert torch.allclose(get_estimator("arm_example")(problem, None, 2, 50, gen(16)),
                          get_estimator("arm")(problem, None, 2, 50, gen(16)),
                          rtol=1e-12, atol=1e-15)


def test_one_registered_function_runs_unchanged_in_the_lab_and_every_model(registered):
    """Issue 15's promise: register one function, and the lab's measure, the VAE, the
    rationale model and the autoencoder all train or measure with it, by name."""
    from lib.bottleneck import train_autoencoder
    from lib.compare import BernoulliProblem, CategoricalProblem, get_estimator, measure
    from lib.rationales import RationaleModel, make_synthetic_reviews, rationale_loss
    from lib.vae import CategoricalVAE, vae_loss

    @register_estimator("st_identity", unbiased=False, label="ST identity")
    def st_identity(node, cost, n_samples, generator):
        """Straight-through with an identity backward: d cost / d z passed to the logits."""
        hard = node.sample(n_samples, generator)
        costs = cost(hard + (node.logits - node.logits.detach()))
        return Surrogate(costs.mean(0), costs.mean(0).detach(), hard,
                         torch.full_like(costs, 1 / n_samples).detach())

    # the lab: a categorical and a Bernoulli problem (the identity backward is the gradient
    # of a linear cost in z, c, so its mean is c exactly: an oracle)
    c = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    for problem in (CategoricalProblem(torch.zeros(3, dtype=torch.float64), lambda z: z @ c),
                    BernoulliProblem(torch.zeros(3, dtype=torch.float64), lambda b: b @ c)):
        m = measure(problem, get_estimator("st_identity"), 2, 50, gen(20))
        torch.testing.assert_close(m.mean, c)
        assert m.estimator == "ST identity"
    # the VAE: one step moves the encoder
    torch.manual_seed(0)
    vae = CategoricalVAE(n_latent=2, n_categories=3, n_hidden=8)
    x = (torch.rand(6, 64, generator=gen(21)) < 0.5).float()
    vae_loss(vae, x, "st_identity", n_samples=2, generator=gen(22)).loss.backward()
    enc = [p.grad for n, p in vae.named_parameters() if n.startswith("enc")]
    assert enc and all(g is not None and torch.isfinite(g).all() for g in enc)
    assert any(g.abs().sum() > 0 for g in enc)
    # the rationale model: the selector gets a gradient
    data = make_synthetic_reviews(8, seed=0)
    model = RationaleModel(len(data.vocab))
    rationale_loss(model, data.tokens, data.mask, data.labels, "st_identity",
                   generator=gen(23)).loss.backward()
    selector = [p.grad for n, p in model.named_parameters() if n.startswith("selector")]
    assert any(g is not None and g.abs().sum() > 0 for g in selector)
    # the autoencoder: trains a few steps with a finite loss
    run = train_autoencoder("st_identity", 1.0, n_steps=3, n_train=16, n_test=8,
                            n_eval_samples=1, device="cpu")
    assert run.estimators[0] == "st_identity"
