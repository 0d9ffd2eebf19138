"""Tests of lib.bottleneck against independent oracles (closed forms, quadrature, enumeration,
torch.optim.Adam, Monte Carlo with standard errors)."""

import doctest
import functools
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import torch

from lib import estimators as registry
from lib.bottleneck import (
    DiscreteAutoencoder,
    _Adam,
    _losses,
    circle_data,
    evaluate_autoencoder,
    optimal_circle_loss,
    train_autoencoder,
    train_autoencoder_seeds,
)
from lib.estimators import (
    StochasticNode,
    Surrogate,
    estimator_names,
    exact_expectation_categorical,
    register_estimator,
)
from lib.gumbel import gumbel_max_sample, sample_gumbel
from lib.schedules import exponential_anneal
from tests._helpers import P_MIN, assert_close, gen

# ---------------------------------------------------------------------------------------------
# data and the optimal quantiser
# ---------------------------------------------------------------------------------------------


def test_circle_data_is_uniform_on_the_circle():
    x = circle_data(20_000, generator=gen(0))
    assert x.shape == (20_000, 2) and x.dtype == torch.float32
    assert_close(x.norm(dim=1), torch.ones(20_000))
    angles = (torch.atan2(x[:, 1], x[:, 0]).double().numpy() + 2 * np.pi) % (2 * np.pi)
    assert scipy.stats.kstest(angles, scipy.stats.uniform(0, 2 * np.pi).cdf).pvalue > P_MIN


def arc_loss(alpha):
    """Mean squared distance of a uniform point on an arc of angle alpha to its centroid,
    by quadrature (the centroid is also found by quadrature)."""
    cx = scipy.integrate.quad(np.cos, -alpha / 2, alpha / 2)[0] / alpha
    return scipy.integrate.quad(lambda t: (np.cos(t) - cx) ** 2 + np.sin(t) ** 2,
                                -alpha / 2, alpha / 2)[0] / alpha


@pytest.mark.parametrize("k", [1, 2, 3, 4, 8])
def test_optimal_circle_loss_matches_quadrature_of_equal_arcs(k):
    assert optimal_circle_loss(k) == pytest.approx(arc_loss(2 * np.pi / k), rel=1e-9)


def test_equal_arcs_beat_random_partitions():
    rng = np.random.default_rng(0)
    for _ in range(200):
        alphas = rng.dirichlet(np.ones(4)) * 2 * np.pi
        total = sum(a / (2 * np.pi) * arc_loss(a) for a in alphas)
        assert total >= optimal_circle_loss(4) - 1e-12


def test_lloyd_iterations_converge_to_the_optimum():
    """k-means (Lloyd) from a random start on 5,000 points lands on D*_4 up to sampling error."""
    x = circle_data(5_000, generator=gen(1)).double()
    centres = x[torch.randperm(5_000, generator=gen(2))[:4]]
    for _ in range(50):
        labels = ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = torch.stack([x[labels == k].mean(0) for k in range(4)])
    errors = ((x - centres[labels]) ** 2).sum(1)
    se = float(errors.std()) / math.sqrt(len(errors))  # standard error of the mean error
    assert abs(float(errors.mean()) - optimal_circle_loss(4)) < 4 * se + 1e-3


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------


def test_models_start_identical_and_decode_one_hot_to_codebook_rows():
    model = DiscreteAutoencoder(3, n_codes=5, generator=gen(0))
    for p in model.parameters():
        assert p.shape[0] == 3 and torch.equal(p[0], p[1]) and torch.equal(p[0], p[2])
    assert torch.equal(model.decode(torch.eye(5)).detach(), model.codebook.detach())
    x = circle_data(7, generator=gen(1))
    errors = model.squared_errors(x)
    direct = ((x[None, :, None, :] - model.codebook[:, None, :, :]) ** 2).sum(-1)
    assert_close(errors, direct)
    assert model.encode(x).shape == (3, 7, 5)


def test_model_refuses_wrong_shapes():
    model = DiscreteAutoencoder(2)
    with pytest.raises(ValueError, match="x must have shape"):
        model.encode(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="y must have shape"):
        model.decode(torch.zeros(3, 5, 4))
    with pytest.raises(TypeError, match="x must be"):
        model.encode(np.zeros((5, 2)))


# ---------------------------------------------------------------------------------------------
# losses and evaluation
# ---------------------------------------------------------------------------------------------


def _uniforms_and_noise(batch, seed):
    """Uniforms [1, 1, batch, 4] for _losses and the Gumbel noise [batch, 4] they stand for."""
    u = StochasticNode("categorical", torch.zeros(batch, 4)).uniforms(1, gen(seed))
    return u.unsqueeze(1), sample_gumbel((batch, 4), generator=gen(seed))


def test_st_gumbel_softmax_loss_is_the_one_hot_loss_with_the_relaxed_gradient():
    model = DiscreteAutoencoder(1, generator=gen(0))
    x = circle_data(64, generator=gen(1))
    uniforms, noise = _uniforms_and_noise(64, 2)
    loss, cost, _ = _losses(model, ["st_gumbel_softmax"], x, [0.7], uniforms)
    params = list(model.parameters())
    grads = torch.autograd.grad(loss.sum(), params)
    # oracle: forward = decoding the one-hot sample; backward = dL/dz at the one-hot code,
    # pushed through the Jacobian of the relaxed sample only
    logits = model.encode(x)
    hard = torch.nn.functional.one_hot((logits + noise).argmax(-1), 4).float()
    hard.requires_grad_(True)
    hard_loss = ((x - model.decode(hard)) ** 2).sum(-1).mean(-1).sum()
    assert torch.equal(loss.detach().sum(), hard_loss.detach())
    assert torch.equal(cost.sum(), hard_loss.detach())
    (dz,) = torch.autograd.grad(hard_loss, hard, retain_graph=True)
    soft = torch.softmax((logits + noise) / 0.7, dim=-1)
    decoded = model.decode(hard.detach())
    surrogate = (dz.detach() * soft).sum() + ((x - decoded) ** 2).sum(-1).mean(-1).sum()
    oracle = torch.autograd.grad(surrogate, params)
    for g, o in zip(grads, oracle):
        assert_close(g, o)


def test_gumbel_softmax_loss_is_the_relaxed_loss():
    model = DiscreteAutoencoder(1, generator=gen(0))
    x = circle_data(64, generator=gen(1))
    uniforms, noise = _uniforms_and_noise(64, 3)
    loss, cost, samples = _losses(model, ["gumbel_softmax"], x, [0.7], uniforms)
    soft = torch.softmax((model.encode(x) + noise) / 0.7, dim=-1)
    direct = ((x - model.decode(soft)) ** 2).sum(-1).mean(-1)
    assert torch.equal(loss, direct) and torch.equal(cost, direct.detach())
    assert torch.equal(samples["gumbel_softmax"][0], soft.detach())


def test_exact_loss_matches_enumeration():
    model = DiscreteAutoencoder(1, generator=gen(0))
    x = circle_data(16, generator=gen(1))
    loss, cost, _ = _losses(model, ["exact"], x, [1.0], torch.full((1, 1, 16, 4), 0.5))
    with torch.no_grad():
        logits = model.encode(x)[0]
        codebook = model.codebook[0]
        values = [exact_expectation_categorical(logits[i], lambda z, i=i: ((x[i] - z @ codebook)
                                                                           ** 2).sum(-1))
                  for i in range(16)]
    assert_close(loss.detach(), torch.stack(values).mean().reshape(1))
    assert_close(cost, torch.stack(values).mean().reshape(1))


def test_models_of_one_call_share_their_noise_and_keep_their_order():
    """Identical models (as at step 0) given different estimators see the same Gumbel noise:
    the straight-through codes are the argmax of the relaxed ones; results come back in the
    order of the models, whatever the grouping by estimator."""
    model = DiscreteAutoencoder(4, generator=gen(0))
    x = circle_data(32, generator=gen(1))
    uniforms, _ = _uniforms_and_noise(32, 4)
    names = ["gumbel_softmax", "st_gumbel_softmax", "gumbel_softmax", "exact"]
    taus = [0.5, 0.5, 2.0, 1.0]
    loss, cost, samples = _losses(model, names, x, taus, uniforms)
    relaxed, hard = samples["gumbel_softmax"][0], samples["st_gumbel_softmax"][0, 0]
    assert torch.equal(relaxed[0].argmax(-1), hard.argmax(-1))
    assert torch.equal(relaxed[1].argmax(-1), hard.argmax(-1))  # tau does not move the argmax
    for i, (name, tau) in enumerate(zip(names, taus)):
        alone, alone_cost, _ = _losses(DiscreteAutoencoder(1, generator=gen(0)), [name], x,
                                       [tau], uniforms)
        assert torch.equal(loss[i], alone[0]) and torch.equal(cost[i], alone_cost[0])


def test_evaluation_matches_monte_carlo_and_direct_computation():
    model = DiscreteAutoencoder(1, generator=gen(0))
    with torch.no_grad():  # make the encoder less uniform so the three losses differ
        model.w2.mul_(4)
    x = circle_data(500, generator=gen(1))
    out = evaluate_autoencoder(model, x, 1.0, n_samples=4, generator=gen(2))
    with torch.no_grad():
        logits = model.encode(x)[0]
        codebook = model.codebook[0]
        argmax = ((x - codebook[logits.argmax(-1)]) ** 2).sum(-1).mean()
        assert out["argmax"][0] == pytest.approx(float(argmax), rel=1e-6)
        # "sample" is an exact expectation: compare with 200 sampled codes per point
        idx = gumbel_max_sample(logits.expand(200, 500, 4), generator=gen(3))
        per_draw = ((x - codebook[idx]) ** 2).sum(-1)  # [200, 500]
        mc, se = float(per_draw.mean()), float(per_draw.mean(0).std()) / math.sqrt(500)
        assert abs(out["sample"][0] - mc) < 4 * se  # 4 standard errors of the MC average
        # "relaxed": same noise draws as the function (same generator seed and order)
        g = gen(2)
        direct = np.mean([float(((x - torch.softmax((logits + sample_gumbel(
            (500, 4), generator=g)) / 1.0, -1) @ codebook) ** 2).sum(-1).mean())
            for _ in range(4)])
        assert out["relaxed"][0] == pytest.approx(direct, rel=1e-5)


def test_relaxed_loss_tends_to_the_sampled_loss_as_tau_falls():
    model = DiscreteAutoencoder(1, generator=gen(0))
    x = circle_data(2000, generator=gen(1))
    out = evaluate_autoencoder(model, x, 1e-3, n_samples=16, generator=gen(2))
    # per-point losses are bounded by ~4, so the MC error of the relaxed mean is << 0.02
    assert abs(out["relaxed"][0] - out["sample"][0]) < 0.02


# ---------------------------------------------------------------------------------------------
# the optimiser and training
# ---------------------------------------------------------------------------------------------


def test_adam_matches_torch_optim_adam():
    p1 = torch.randn(3, 4, generator=gen(0)).requires_grad_()
    p2 = p1.detach().clone().requires_grad_()
    mine = _Adam([p1], lr=0.03)
    reference = torch.optim.Adam([p2], lr=0.03)
    for step in range(10):
        grad = torch.randn(3, 4, generator=gen(10 + step))
        mine.step([grad])
        p2.grad = grad.clone()
        reference.step()
        assert_close(p1.detach(), p2.detach())


def test_training_is_deterministic_and_independent_of_the_other_models():
    alone = train_autoencoder("gumbel_softmax", 1.0, n_steps=40, seed=3)
    again = train_autoencoder("gumbel_softmax", 1.0, n_steps=40, seed=3)
    shared = train_autoencoder(["st_gumbel_softmax", "gumbel_softmax", "exact"], [0.3, 1.0, 1.0],
                               n_steps=40, seed=3)
    assert np.array_equal(alone.train_loss, again.train_loss)
    for key in ("relaxed", "sample", "argmax"):
        assert alone.test[key][0] == again.test[key][0]
        assert alone.test[key][0] == pytest.approx(shared.test[key][1], rel=1e-5)
    other_seed = train_autoencoder("gumbel_softmax", 1.0, n_steps=40, seed=4)
    assert alone.test["argmax"][0] != other_seed.test["argmax"][0]


def test_stacked_seeds_reproduce_single_seed_runs():
    """Each seed of one stacked call is the single-seed run, bit for bit (float64 default)."""
    names, taus = ["gumbel_softmax", "st_gumbel_softmax", "exact"], [0.3, 1.0, 1.0]
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        stacked = train_autoencoder_seeds(names, taus, [4, 2], n_steps=40)
        alone = [train_autoencoder(names, taus, n_steps=40, seed=s) for s in (4, 2)]
    finally:
        torch.set_default_dtype(dtype)
    for a, b in zip(stacked, alone):
        assert np.array_equal(a.train_loss, b.train_loss) and np.array_equal(a.taus, b.taus)
        assert torch.equal(a.test_x, b.test_x) and a.estimators == b.estimators == names
        assert a.relaxed_codes.tolist() == b.relaxed_codes.tolist() == [True, False, False]
        for key in ("relaxed", "sample", "argmax"):
            assert np.array_equal(a.test[key], b.test[key])
        for p, q in zip(a.model.parameters(), b.model.parameters()):
            assert torch.equal(p, q)
    assert stacked[0].test["argmax"][0] != stacked[1].test["argmax"][0]


@pytest.mark.parametrize("seeds", [[], 3, "01", [1, -1]])
def test_stacked_seeds_validation(seeds):
    with pytest.raises(ValueError, match="seed"):
        train_autoencoder_seeds("gumbel_softmax", 1.0, seeds, n_steps=1)


def test_training_records_the_schedule():
    schedule = functools.partial(exponential_anneal, rate=5e-3, every=6)
    run = train_autoencoder(["gumbel_softmax", "st_gumbel_softmax"], [schedule, 2.0], n_steps=30)
    assert run.taus.shape == (31, 2) and run.train_loss.shape == (30, 2)
    assert run.taus[:, 0].tolist() == [schedule(s) for s in range(31)]
    assert (run.taus[:, 1] == 2.0).all()


def test_training_reaches_the_optimum_and_relaxed_training_shows_the_mismatch():
    run = train_autoencoder(["exact", "gumbel_softmax"], [1.0, 10.0], seed=0)
    best = optimal_circle_loss(4)
    # the exact expected loss is a well-posed objective: 300 steps reach within 10% of D*_4
    assert run.test["argmax"][0] < 1.1 * best
    # relaxed training at a high temperature: the relaxed loss beats every discrete code while
    # the discrete losses are far worse than the optimum
    assert run.test["relaxed"][1] < 0.5 * best
    assert run.test["argmax"][1] > 1.5 * best
    # no discrete loss can beat D*_4 by more than the sampling error of 2,048 test points
    for key in ("sample", "argmax"):
        assert (run.test[key] > best - 0.02).all()
    assert run.objective().tolist() == [run.test["sample"][0], run.test["relaxed"][1]]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        # the pre-registry names are gone: "relaxed" is gumbel_softmax, and the old
        # "straight_through" (the Gumbel sense) is st_gumbel_softmax
        ({"estimator": "relaxed", "tau": 1.0}, ValueError, "unknown estimator 'relaxed'"),
        ({"estimator": 3, "tau": 1.0}, TypeError, "estimator must be"),
        ({"estimator": ["gumbel_softmax"] * 2, "tau": [1.0] * 3}, ValueError, "same length"),
        ({"estimator": "gumbel_softmax", "tau": 0.0}, ValueError, "tau"),
        ({"estimator": "gumbel_softmax", "tau": lambda step: 0.0}, ValueError,
         "schedule at step 0"),
        ({"estimator": "gumbel_softmax", "tau": 1.0, "n_steps": 0}, ValueError, "n_steps"),
        ({"estimator": "gumbel_softmax", "tau": 1.0, "lr": -1.0}, ValueError, "lr"),
        ({"estimator": "reinforce_loo", "tau": 1.0}, ValueError, "needs n_samples >= 2"),
        ({"estimator": "exact", "tau": 1.0, "n_samples": 0}, ValueError, "n_samples"),
    ],
)
def test_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        train_autoencoder(**kwargs)


def test_docstring_examples():
    import lib.bottleneck

    result = doctest.testmod(lib.bottleneck, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result


# ---------------------------------------------------------------------------------------------
# any registered estimator
# ---------------------------------------------------------------------------------------------


def _encoder_weights(model):
    return torch.cat([model.w1.detach().flatten(), model.b1.detach().flatten(),
                      model.w2.detach().flatten(), model.b2.detach().flatten()])


def _encoder_moved(run, seed, n_train=1024, n_test=64):
    """Largest change of the encoder's weights in ``run`` from the initial weights of
    train_autoencoder(..., seed=seed), which are drawn after the data. Snapping alone moves
    a weight by at most half the grid spacing, 2**-17; one Adam step moves it by about lr."""
    g = torch.Generator().manual_seed(seed)
    circle_data(n_train, generator=g)
    circle_data(n_test, generator=g)
    start = DiscreteAutoencoder(1, generator=g)
    return float((_encoder_weights(run.model) - _encoder_weights(start)).abs().max())


def test_encoder_moved_measures_training_not_snapping():
    frozen = train_autoencoder("exact", 1.0, n_steps=1, seed=5, n_test=64, lr=1e-12)
    assert _encoder_moved(frozen, 5) <= 2.0**-17


@pytest.mark.parametrize("name", estimator_names("categorical"))
def test_every_registered_estimator_trains_the_autoencoder(name):
    n_samples = registry.get_estimator_spec(name).min_samples
    run = train_autoencoder(name, 0.5, n_steps=5, seed=0, n_samples=n_samples, n_test=64)
    assert run.estimators == [name] and np.isfinite(run.train_loss).all()
    assert all(np.isfinite(v).all() for v in run.test.values())
    assert run.relaxed_codes.tolist() == [name == "gumbel_softmax"]
    assert _encoder_moved(run, 0) > 0.01


@pytest.fixture
def st_identity():
    """A new estimator, registered for one test and removed again: straight-through with the
    identity as backward pass (the one-hot sample forward, d cost / dz passed to the logits)."""
    name = "st_identity_test_bottleneck"

    @register_estimator(name, unbiased=False, label="ST identity")
    def _st_identity(node, cost, n_samples, generator):
        hard = node.sample(n_samples, generator)
        z = hard + (node.logits - node.logits.detach())
        costs = cost(z)
        return Surrogate(costs.mean(0), costs.mean(0).detach(), hard,
                         torch.full_like(costs, 1 / n_samples).detach())

    try:
        yield name
    finally:
        del registry._ESTIMATORS[name]


def test_a_newly_registered_estimator_trains_the_autoencoder_unchanged(st_identity):
    assert st_identity in estimator_names()
    run = train_autoencoder(st_identity, 1.0, n_steps=10, seed=5, n_test=64)
    assert np.isfinite(run.train_loss).all() and np.isfinite(run.test["argmax"]).all()
    assert _encoder_moved(run, 5) > 0.01
    # it draws through node.sample, so it uses the shared noise: side by side with
    # st_gumbel_softmax, both decode the same one-hot codes, hence the same first training loss
    both = train_autoencoder([st_identity, "st_gumbel_softmax"], 1.0, n_steps=1, seed=5,
                             n_test=64)
    assert both.train_loss[0, 0] == both.train_loss[0, 1] == run.train_loss[0, 0]
    assert both.relaxed_codes.tolist() == [False, False]


def test_the_new_estimator_is_gone_after_its_test():
    assert "st_identity_test_bottleneck" not in estimator_names()
