"""Devices and generators: the convention of lib.rng, checked without a GPU.

* ``lib.rng``: on the CPU each helper gives exactly the numbers of the torch call it replaces;
  for another device the numbers come from the generator's device (here: a CPU generator for
  ``meta`` tensors, the CPU-to-GPU case in miniature).
* ``check_generator`` at every public function that takes a ``generator``: TypeError for an int
  seed or a NumPy generator, ValueError for a generator on a device that is neither the CPU nor
  the tensors' (a stand-in CUDA generator).
* Device plumbing on ``meta`` tensors (shapes and devices, no values): every output of a call
  with ``meta`` inputs is on ``meta``. Where a function reads numbers back (``.item()``,
  ``.tolist()``, a data-dependent shape), it cannot run on ``meta``; those functions are run on
  the CPU with a spy on ``lib.rng`` instead, which checks that every draw names the device of
  the inputs (a forgotten ``device=`` shows up as ``None``).
* A static check of lib's source: no tensor factory without ``device=`` and no raw draw with a
  ``generator=`` outside ``lib.rng``, except the listed CPU-by-design sites.

``make gpu-smoke`` (tools/gpu_smoke.py) runs the same calls on a real CUDA device.
"""

import ast
import inspect
import pathlib

import numpy as np
import pytest
import torch

from lib import (
    bottleneck,
    compare,
    estimators,
    gumbel,
    hardkuma,
    permutations,
    rationales,
    relaxed,
    rng,
    sequences,
    structured,
    temperature,
    vae,
)
from lib._validation import check_generator, validate_args
from lib.utils import set_seed
from tests._helpers import gen

META = torch.device("meta")
CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is faster on a loaded machine. Restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class FakeCudaGenerator(torch.Generator):
    """A CPU generator that reports ``cuda:0``: enough for the checks, which only read .device."""

    @property
    def device(self):
        return torch.device("cuda", 0)


# --------------------------------------------------------------------------------- lib.rng


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rng_helpers_match_torch_on_the_cpu(dtype):
    g1, g2 = gen(0), gen(0)
    assert torch.equal(rng.rand((3, 4), generator=g1, dtype=dtype),
                       torch.rand((3, 4), generator=g2, dtype=dtype))
    assert torch.equal(rng.randn(5, generator=g1, dtype=dtype),
                       torch.randn(5, generator=g2, dtype=dtype))
    like = torch.zeros(2, 3, dtype=dtype).t()  # non-contiguous: the output is contiguous
    u = rng.rand_like(like, generator=g1)
    assert u.is_contiguous() and torch.equal(u, torch.rand((3, 2), generator=g2, dtype=dtype))
    assert torch.equal(rng.randint(7, (6,), generator=g1), torch.randint(7, (6,), generator=g2))
    assert torch.equal(rng.randint(9, (2,), low=3, generator=g1, dtype=torch.int32),
                       torch.randint(3, 9, (2,), generator=g2, dtype=torch.int32))
    assert torch.equal(rng.randperm(8, generator=g1), torch.randperm(8, generator=g2))
    assert torch.equal(g1.get_state(), g2.get_state())


def test_rng_draws_on_the_generators_device():
    """A CPU generator for meta tensors: the numbers are drawn on the CPU (its state moves as
    for a CPU draw of the same size), then moved; without a generator nothing CPU-side moves."""
    calls = [
        (lambda g: rng.rand((3, 4), generator=g, device=META),
         lambda g: torch.rand((3, 4), generator=g)),
        (lambda g: rng.randn((2, 2), generator=g, dtype=torch.float64, device="meta"),
         lambda g: torch.randn((2, 2), generator=g, dtype=torch.float64)),
        (lambda g: rng.rand_like(torch.empty(4, 2, device=META), generator=g),
         lambda g: torch.rand((4, 2), generator=g)),
        (lambda g: rng.randint(5, (7,), generator=g, device=META),
         lambda g: torch.randint(5, (7,), generator=g)),
        (lambda g: rng.randperm(6, generator=g, device=META),
         lambda g: torch.randperm(6, generator=g)),
    ]
    for draw, on_cpu in calls:
        g, reference = gen(1), gen(1)
        out = draw(g)
        on_cpu(reference)
        assert out.device == META
        assert torch.equal(g.get_state(), reference.get_state())
    before = torch.random.get_rng_state()
    assert rng.rand(3, device=META).device == META
    assert rng.randperm(3, device=META).device == META
    assert torch.equal(torch.random.get_rng_state(), before)


def test_rng_devices():
    assert rng.same_device("cpu", torch.device("cpu")) and rng.same_device(None, "cpu")
    assert not rng.same_device("cpu", "meta")
    assert rng.draw_device(gen(0), "meta") == CPU
    assert rng.draw_device(None, "meta") == META


# ------------------------------------------------------------------------ check_generator


def test_check_generator_rules():
    g = gen(0)
    assert check_generator(None) is None and check_generator(g, device="meta") is g
    assert check_generator(FakeCudaGenerator(), device="cuda:0") is not None
    with pytest.raises(ValueError, match=r"^generator lives on cuda:0 .* on meta;"):
        check_generator(FakeCudaGenerator(), like=torch.zeros(2, device=META))
    with pytest.raises(TypeError, match=r"^seed_gen must be None or a torch\.Generator, got int"):
        check_generator(3, "seed_gen")
    with pytest.raises(ValueError, match=r"^g lives on cuda:0 .* on cuda:1; a generator must be "
                                         r"on the CPU or on the tensors' device"):
        check_generator(FakeCudaGenerator(), "g", device="cuda:1")


def _cat_problem():
    return compare.CategoricalProblem(torch.zeros(3), lambda z: z @ torch.tensor([1.0, 2.0, 4.0]))


def _bern_problem():
    return compare.BernoulliProblem(torch.zeros(2), lambda b: b @ torch.tensor([1.0, -2.0]))


def _ksubset_problem():
    return compare.KSubsetProblem(torch.zeros(4), 2, lambda z: z @ torch.arange(4.0))


def _perm_problem():
    return compare.PermutationProblem(torch.zeros(3, 3),
                                      lambda p: p.diagonal(dim1=-2, dim2=-1).sum(-1))


def _reviews():
    return rationales.make_synthetic_reviews(8, seed=0)


def _rationale_batch():
    data = _reviews()
    return rationales.RationaleModel(len(data.vocab)), data.tokens, data.mask, data.labels


#: Every public function of lib that takes a generator, called on small CPU inputs.
GENERATOR_CALLS = {
    "sequences.SequencePolicy.sample": lambda g: sequences.SequencePolicy(
        torch.zeros(2, 3, 2), eos=0).sample(3, generator=g),
    "sequences.group_gradient_estimates": lambda g: sequences.group_gradient_estimates(
        sequences.SequencePolicy(torch.zeros(2, 3, 2), eos=0), torch.tensor([0.0, 1.0, 1.0]),
        2, 3, "grpo", generator=g),
    "gumbel.sample_gumbel": lambda g: gumbel.sample_gumbel((2, 3), generator=g),
    "permutations.gumbel_sinkhorn": lambda g: permutations.gumbel_sinkhorn(
        torch.zeros(3, 3), generator=g),
    "permutations.gumbel_matching_sample": lambda g: permutations.gumbel_matching_sample(
        torch.zeros(3, 3), generator=g),
    "permutations.PermutationNode.sample": lambda g: permutations.PermutationNode(
        torch.zeros(3, 3)).sample(2, generator=g),
    "permutations.PermutationNode.uniforms": lambda g: permutations.PermutationNode(
        torch.zeros(3, 3)).uniforms(2, generator=g),
    "permutations.PermutationNode.relaxed": lambda g: permutations.PermutationNode(
        torch.zeros(3, 3)).relaxed(2, 0.5, True, generator=g),
    "gumbel.gumbel_max_sample": lambda g: gumbel.gumbel_max_sample(torch.zeros(2, 3),
                                                                   generator=g),
    "gumbel.gumbel_topk_sample": lambda g: gumbel.gumbel_topk_sample(torch.zeros(2, 3), 2,
                                                                     generator=g),
    "gumbel.conditional_gumbel": lambda g: gumbel.conditional_gumbel(
        torch.zeros(2, 3), torch.tensor([0, 2]), generator=g),
    "relaxed.gumbel_softmax": lambda g: relaxed.gumbel_softmax(torch.zeros(2, 3), generator=g),
    "relaxed.relaxed_bernoulli": lambda g: relaxed.relaxed_bernoulli(torch.zeros(3),
                                                                     generator=g),
    "relaxed.tempered_sample": lambda g: relaxed.tempered_sample(torch.zeros(3), 0.5,
                                                                 generator=g),
    "structured.perturb_and_map_chain": lambda g: structured.perturb_and_map_chain(
        torch.zeros(3), torch.zeros(2), 2, generator=g),
    "compare.CategoricalProblem.sample": lambda g: _cat_problem().sample(torch.zeros(2, 3), g),
    "compare.CategoricalProblem.relaxed": lambda g: _cat_problem().relaxed(
        torch.zeros(2, 3), 1.0, False, g),
    "compare.BernoulliProblem.sample": lambda g: _bern_problem().sample(torch.zeros(2, 2), g),
    "compare.BernoulliProblem.relaxed": lambda g: _bern_problem().relaxed(
        torch.zeros(2, 2), 1.0, True, g),
    "compare.KSubsetProblem.sample": lambda g: _ksubset_problem().sample(torch.zeros(2, 4), g),
    "compare.KSubsetProblem.relaxed": lambda g: _ksubset_problem().relaxed(
        torch.zeros(2, 4), 1.0, True, g),
    "compare.KSubsetProblem.reference_gradient": lambda g: _ksubset_problem(
    ).reference_gradient(20, g, n_batches=2),
    "compare.PermutationProblem.sample": lambda g: _perm_problem().sample(
        torch.zeros(2, 3, 3), g),
    "compare.PermutationProblem.relaxed": lambda g: _perm_problem().relaxed(
        torch.zeros(2, 3, 3), 1.0, True, g),
    "compare.PermutationProblem.reference_gradient": lambda g: _perm_problem(
    ).reference_gradient(20, g, n_batches=2),
    "compare.Estimator.__call__": lambda g: compare.get_estimator("reinforce")(
        _cat_problem(), None, 2, 2, g),
    "compare.measure": lambda g: compare.measure(_cat_problem(), compare.get_estimator("exact"),
                                                 2, 2, g),
    "compare.optimise": lambda g: compare.optimise(_cat_problem(), compare.get_estimator("exact"),
                                                   n_steps=1, lr=0.1, generator=g),
    "compare.time_per_estimate": lambda g: compare.time_per_estimate(
        _cat_problem(), compare.get_estimator("exact"), 1, 1, g, trials=1),
    "temperature.temperature_experiment": lambda g: temperature.temperature_experiment(
        torch.zeros(2), (1.0,), 10, generator=g),
    "bottleneck.DiscreteAutoencoder.__init__": lambda g: bottleneck.DiscreteAutoencoder(
        generator=g),
    "bottleneck.circle_data": lambda g: bottleneck.circle_data(3, generator=g),
    "bottleneck.evaluate_autoencoder": lambda g: bottleneck.evaluate_autoencoder(
        bottleneck.DiscreteAutoencoder(), torch.zeros(3, 2), 1.0, generator=g),
    "rationales.rationale_loss": lambda g: rationales.rationale_loss(
        *_rationale_batch(), "gumbel_softmax", generator=g),
    "rationales.selector_gradients": lambda g: rationales.selector_gradients(
        *_rationale_batch(), "reinforce_loo", generator=g),
    "rationales.evaluate_rationales": lambda g: rationales.evaluate_rationales(
        rationales.RationaleModel(len(_reviews().vocab)), _reviews(), selection="sample",
        generator=g),
    "rationales.train_rationale_model": lambda g: rationales.train_rationale_model(
        rationales.RationaleModel(len(_reviews().vocab)), _reviews(), _reviews(),
        "st_gumbel_softmax", n_steps=1, generator=g, progress=False),
    "rationales.hardkuma_rationale_terms": lambda g: rationales.hardkuma_rationale_terms(
        rationales.HardKumaRationaleModel(len(_reviews().vocab)), *_rationale_batch()[1:],
        generator=g),
    "rationales.train_hardkuma_side_by_side": lambda g: rationales.train_hardkuma_side_by_side(
        [rationales.HardKumaRationaleModel(len(_reviews().vocab))], _reviews(), n_steps=1,
        generator=g),
    "hardkuma.Kumaraswamy.rsample": lambda g: hardkuma.Kumaraswamy(
        torch.ones(3), torch.ones(3)).rsample(2, generator=g),
    "hardkuma.HardKuma.rsample": lambda g: hardkuma.HardKuma(
        torch.ones(3), torch.ones(3)).rsample(2, generator=g),
    "rationales.train_side_by_side": lambda g: rationales.train_side_by_side(
        [rationales.RationaleModel(len(_reviews().vocab)) for _ in range(2)], _reviews(),
        "st_gumbel_softmax", n_steps=1, generator=g),
    "estimators.surrogate": lambda g: estimators.surrogate(
        "st_gumbel_softmax", estimators.StochasticNode("categorical", torch.zeros(2, 3)),
        lambda z: z.sum(-1), n_samples=2, generator=g),
    "estimators.StochasticNode.sample": lambda g: estimators.StochasticNode(
        "bernoulli", torch.zeros(2, 3)).sample(2, generator=g),
    "estimators.StochasticNode.uniforms": lambda g: estimators.StochasticNode(
        "bernoulli", torch.zeros(2, 3)).uniforms(2, generator=g),
    "compare.CategoricalProblem.reference_gradient": lambda g: _cat_problem().reference_gradient(
        20, g, n_batches=2),
    "compare.BernoulliProblem.reference_gradient": lambda g: _bern_problem().reference_gradient(
        20, g, n_batches=2),
    "estimators.StochasticNode.relaxed": lambda g: estimators.StochasticNode(
        "categorical", torch.zeros(2, 3)).relaxed(2, 0.5, False, generator=g),
    "vae.CategoricalVAE.sample_prior": lambda g: vae.CategoricalVAE(2, 3, 8).sample_prior(
        2, generator=g),
    "vae.vae_loss": lambda g: vae.vae_loss(vae.CategoricalVAE(2, 3, 8), torch.ones(2, 64),
                                           "st_gumbel_softmax", generator=g),
    "vae.discrete_negative_elbo": lambda g: vae.discrete_negative_elbo(
        vae.CategoricalVAE(2, 3, 8), torch.ones(2, 64), n_samples=1, generator=g),
    "vae.importance_log_weights": lambda g: vae.importance_log_weights(
        vae.CategoricalVAE(2, 3, 8), torch.ones(2, 64), n_samples=2, generator=g),
    "vae.train_vae": lambda g: vae.train_vae(
        vae.CategoricalVAE(2, 3, 8), vae.DigitsData(torch.ones(4, 64), torch.zeros(4, 64),
                                                    torch.zeros(4), torch.zeros(4), 8, 0),
        "gumbel_softmax", n_epochs=1, generator=g, progress=False),
}


def test_every_function_with_a_generator_is_checked():
    """GENERATOR_CALLS lists every public function of lib that takes ``generator``."""
    found = set()
    for module in (gumbel, relaxed, estimators, structured, compare, temperature, bottleneck,
                   rationales, vae, sequences, hardkuma, permutations):
        short = module.__name__.removeprefix("lib.")
        for name in module.__all__:
            obj = getattr(module, name)
            # a class's methods, inherited ones included, that lib itself defines
            members = ([(f"{name}.{k}", v) for k, v in inspect.getmembers(obj, callable)
                        if (k in ("__init__", "__call__") or not k.startswith("_"))
                        and getattr(v, "__module__", "").startswith("lib.")]
                       if inspect.isclass(obj) else [(name, obj)])
            for qualified, f in members:
                try:
                    parameters = inspect.signature(f).parameters
                except (TypeError, ValueError):
                    continue
                if "generator" in parameters:
                    found.add(f"{short}.{qualified}")
    assert found == set(GENERATOR_CALLS)


@pytest.mark.parametrize("name", sorted(GENERATOR_CALLS))
def test_generator_checks(name):
    call = GENERATOR_CALLS[name]
    call(gen(0))  # a CPU generator is always accepted
    with pytest.raises(TypeError, match=r"generator must be None or a torch\.Generator, got int; "
                                        r"to seed the draws pass torch\.Generator\(\)"
                                        r"\.manual_seed\(0\)"):
        call(0)
    with pytest.raises(TypeError, match=r"got numpy\.random\._generator\.Generator; a NumPy "
                                        r"generator cannot drive torch's samplers"):
        call(np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"generator lives on cuda:0 but the tensors it samples "
                                         r"for are on cpu( \(the default device\))?; a "
                                         r"generator must be on the CPU or on the tensors' "
                                         r"device"):
        call(FakeCudaGenerator())


# ---------------------------------------------------------------------- meta-device plumbing


@pytest.fixture
def no_value_checks():
    """Validation off (lib.validate_args): the checks that read values back are skipped, and
    ``.item()`` cannot run on meta tensors (the checks themselves are tested on the CPU in
    test_validation.py)."""
    with validate_args(False):
        yield


def _meta(*shape, dtype=torch.float32):
    return torch.zeros(*shape, dtype=dtype, device=META)


def _meta_cost():
    return torch.tensor([1.0, 2.0, 4.0], device=META)


def _meta_problem(kind):
    cost = _meta_cost()
    if kind == "categorical":
        return compare.CategoricalProblem(_meta(3), lambda z: z @ cost)
    return compare.BernoulliProblem(_meta(3), lambda b: b @ cost)


def _meta_vae():
    return vae.CategoricalVAE(2, 3, 8).to(META)


#: name -> call(generator) with meta inputs, returning a tensor or a tuple of tensors.
META_CALLS = {
    "sample_gumbel": lambda g: gumbel.sample_gumbel((3, 4), generator=g, device=META),
    "gumbel_max_sample": lambda g: gumbel.gumbel_max_sample(_meta(4, 5), generator=g),
    "conditional_gumbel": lambda g: gumbel.conditional_gumbel(
        _meta(4, 5), torch.zeros(3, 4, dtype=torch.long, device=META), generator=g),
    "gumbel_softmax": lambda g: relaxed.gumbel_softmax(_meta(4, 5), 0.5, generator=g),
    "gumbel_softmax hard": lambda g: relaxed.gumbel_softmax(_meta(4, 5), 0.5, hard=True,
                                                            generator=g),
    "gumbel_softmax learned tau": lambda g: relaxed.gumbel_softmax(
        _meta(4, 5), _meta(4, 1).requires_grad_(True), generator=g),
    "relaxed_bernoulli": lambda g: relaxed.relaxed_bernoulli(_meta(4, 5, dtype=torch.float64),
                                                             0.5, hard=True, generator=g),
    "tempered_sample": lambda g: relaxed.tempered_sample(_meta(4, 5), 0.5, generator=g),
    "enumerate_binary": lambda g: estimators.enumerate_binary(3, device=META),
    "exact_expectation_bernoulli": lambda g: estimators.exact_expectation_bernoulli(
        _meta(3), lambda b: b.sum(-1)),
    "exact_gradient_categorical": lambda g: estimators.exact_gradient_categorical(
        _meta(3), lambda z: z @ _meta_cost()),
    "reinforce_surrogate (float reward)": lambda g: estimators.reinforce_surrogate(
        _meta(5), 1.0, 0.5),
    "CategoricalProblem.sample": lambda g: _meta_problem("categorical").sample(_meta(2, 3), g),
    "BernoulliProblem.sample": lambda g: _meta_problem("bernoulli").sample(_meta(2, 3), g),
    "BernoulliProblem outcomes": lambda g: _meta_problem("bernoulli")._outcomes(),
    "moving-average kernel": lambda g: compare._ema_of_previous(_meta(10, dtype=torch.float64),
                                                                0.9),
    "circle_data": lambda g: bottleneck.circle_data(5, generator=g, device=META),
    "autoencoder losses": lambda g: bottleneck._losses(
        bottleneck.DiscreteAutoencoder(3).to(META), ["gumbel_softmax", "st_gumbel_softmax",
                                                     "exact"],
        _meta(3, 2), [1.0] * 3, rng.rand((1, 1, 3, 4), generator=g, device=META))[:2],
    "all_codes": lambda g: vae.all_codes(2, 3, device=META),
    "exact_negative_elbo": lambda g: vae.exact_negative_elbo(_meta_vae(), _meta(4, 64)),
    "discrete_negative_elbo": lambda g: vae.discrete_negative_elbo(
        _meta_vae(), _meta(4, 64), n_samples=2, generator=g),
    "sample_prior": lambda g: _meta_vae().sample_prior(3, generator=g),
    "importance_log_weights": lambda g: vae.negative_iwae(vae.importance_log_weights(
        _meta_vae(), _meta(4, 64), n_samples=3, max_rows=8, generator=g)),
}
for _name in compare.ESTIMATORS:
    if _name in ("exact", "reinforce_moving_average"):
        continue  # they read values back (float(max |f|), a bool check of the repeats)
    for _kind in ("categorical", "bernoulli"):
        if _name not in estimators.estimator_names(_kind):
            continue  # arm, disarm: Bernoulli only
        META_CALLS[f"estimator {_name} ({_kind})"] = (
            lambda g, n=_name, k=_kind: compare.get_estimator(n)(_meta_problem(k), None, 3, 4, g)
        )
for _name in estimators.estimator_names():
    for _kind, _shape in (("categorical", (4, 2, 3)), ("bernoulli", (4, 3))):
        if _name not in estimators.estimator_names(_kind):
            continue
        META_CALLS[f"surrogate {_name} {_kind}"] = lambda g, n=_name, k=_kind, s=_shape: (
            estimators.surrogate(n, estimators.StochasticNode(k, _meta(*s), event_dims=1),
                                 lambda z: z.flatten(2).sum(-1), n_samples=2, generator=g))
for _name in estimators.estimator_names("categorical"):  # every one, through the VAE
    META_CALLS[f"vae_loss {_name}"] = lambda g, n=_name: vae.vae_loss(
        _meta_vae(), _meta(4, 64), n, n_samples=2, generator=g)


@pytest.mark.parametrize("with_generator", [False, True], ids=["default", "cpu-generator"])
@pytest.mark.parametrize("name", sorted(META_CALLS))
def test_outputs_on_the_inputs_device(name, with_generator, no_value_checks):
    out = META_CALLS[name](gen(0) if with_generator else None)
    outputs = out if isinstance(out, tuple) else tuple(out) if hasattr(out, "_fields") else (out,)
    for tensor in outputs:
        assert isinstance(tensor, torch.Tensor) and tensor.device == META, (name, tensor)


def test_a_cpu_generator_draws_for_meta_tensors(no_value_checks):
    """The numbers for meta tensors come from the CPU generator (its state moves)."""
    g = gen(0)
    before = g.get_state()
    relaxed.gumbel_softmax(_meta(4, 5), 0.5, generator=g)
    after = g.get_state()
    assert not torch.equal(before, after)
    reference = gen(0)
    relaxed.gumbel_softmax(torch.zeros(4, 5), 0.5, generator=reference)
    assert torch.equal(after, reference.get_state())


# --------------------------------------------- where meta cannot go: every draw names the device


@pytest.fixture
def draws(monkeypatch):
    """Record the device each lib.rng draw is made for (None: the call forgot ``device=``)."""
    seen = []
    draw, rand_like = rng._draw, rng.rand_like

    def spy_draw(factory, generator, device, **kwargs):
        seen.append(device)
        return draw(factory, generator, device, **kwargs)

    def spy_rand_like(like, *, generator=None):
        seen.append(like.device)
        return rand_like(like, generator=generator)

    monkeypatch.setattr(rng, "_draw", spy_draw)
    monkeypatch.setattr(rng, "rand_like", spy_rand_like)
    return seen


def _tiny_digits():
    images = (torch.arange(12 * 64).reshape(12, 64) % 3 == 0).float()
    return vae.DigitsData(images[:8], images[8:], torch.zeros(8), torch.zeros(4), 8, 0)


#: Calls that read values back (so cannot run on meta), on CPU inputs. Why not meta: topk and
#: perturb-and-MAP check their inputs' values; the moving average compares the repeats; the
#: rationale loss sizes its masks by the longest text; the trainers and evaluators return
#: Python floats or NumPy arrays; the temperature experiment counts with bincount.
CPU_CALLS = {
    "SequencePolicy.sample": lambda g: sequences.SequencePolicy(
        torch.zeros(2, 3, 2), eos=0).sample(3, generator=g),
    "group_gradient_estimates": lambda g: sequences.group_gradient_estimates(
        sequences.SequencePolicy(torch.zeros(2, 3, 2), eos=0), torch.tensor([0.0, 1.0, 1.0]),
        2, 3, "grpo", generator=g),
    "gumbel_topk_sample": lambda g: gumbel.gumbel_topk_sample(torch.zeros(4, 5), 2, generator=g),
    "perturb_and_map_chain": lambda g: structured.perturb_and_map_chain(
        torch.zeros(4), torch.zeros(3), 5, generator=g),
    "reinforce_moving_average": lambda g: compare.get_estimator("reinforce_moving_average")(
        _bern_problem(), None, 3, 4, g),
    "optimise": lambda g: compare.optimise(_bern_problem(), compare.get_estimator("reinforce"),
                                           n_steps=2, lr=0.1, n_runs=2, generator=g),
    "temperature_experiment": lambda g: temperature.temperature_experiment(
        torch.tensor([1.0, 0.0, -1.0]), (0.5, 1.0), 50, generator=g),
    "rationale_loss reinforce_loo": lambda g: rationales.rationale_loss(
        *_rationale_batch(), "reinforce_loo", generator=g),
    "rationale_loss st_gumbel_softmax": lambda g: rationales.rationale_loss(
        *_rationale_batch(), "st_gumbel_softmax", generator=g),
    "rationale_loss straight_through": lambda g: rationales.rationale_loss(
        *_rationale_batch(), "straight_through", generator=g),
    "evaluate_rationales sample": lambda g: rationales.evaluate_rationales(
        rationales.RationaleModel(len(_reviews().vocab)), _reviews(), selection="sample",
        generator=g),
    "train_rationale_model": lambda g: rationales.train_rationale_model(
        rationales.RationaleModel(len(_reviews().vocab)), _reviews(), _reviews(),
        "reinforce_loo", n_steps=2, batch_size=4, generator=g, progress=False),
    "train_vae": lambda g: vae.train_vae(vae.CategoricalVAE(2, 3, 8, n_models=2), _tiny_digits(),
                                         "reinforce_loo", n_epochs=1, batch_size=4, n_samples=2,
                                         n_eval_samples=1, generator=g, progress=False),
    "train_autoencoder": lambda g: bottleneck.train_autoencoder(
        ["gumbel_softmax", "st_gumbel_softmax"], 1.0, n_steps=2, n_train=8, n_test=4,
        n_eval_samples=1, device="cpu"),
    "evaluate_autoencoder": lambda g: bottleneck.evaluate_autoencoder(
        bottleneck.DiscreteAutoencoder(), torch.zeros(3, 2), 1.0, generator=g),
}


@pytest.mark.parametrize("name", sorted(CPU_CALLS))
def test_every_draw_names_the_inputs_device(name, draws):
    CPU_CALLS[name](set_seed(0))
    assert draws, "no draw went through lib.rng"
    assert all(d is not None and torch.device(d) == CPU for d in draws), draws


# -------------------------------------------------------------- static check of lib's source

FACTORIES = {"rand", "randn", "randint", "randperm", "bernoulli", "multinomial", "normal",
             "poisson", "empty", "zeros", "ones", "eye", "arange", "full", "tensor", "linspace",
             "logspace", "as_tensor", "from_numpy"}

#: (file, function) -> why a tensor is made on the CPU there.
CPU_BY_DESIGN = {
    ("rationales/data.py", "_pad"): "data sets are built on the CPU from Python lists",
    ("rationales/data.py", "make_synthetic_reviews"): "a data set, built on the CPU",
    ("rationales/data.py", "load_reviews_csv"): "a data set, built on the CPU",
    ("vae.py", "load_binarized_digits"): "a data set, built on the CPU",
    ("vae.py", "_StackedLinear.__init__"): "modules are built on the CPU, moved with .to()",
    ("temperature.py", "temperature_experiment"): "its results are on the CPU (documented)",
    ("temperature.py", "plot_temperature_grid"): "plots a CPU TemperatureExperiment",
    ("temperature.py", "plot_tv_curves"): "plots a CPU TemperatureExperiment",
}


class _SourceChecker(ast.NodeVisitor):
    """Collects the off-device tensor factories, raw draws and bare .numpy() of one file."""

    def __init__(self, filename):
        self.filename, self.stack, self.problems = filename, [], []

    def visit_FunctionDef(self, node):
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_ClassDef = visit_FunctionDef

    def visit_Call(self, node):
        here = f"{self.filename}:{node.lineno}"
        allowed = (self.filename, ".".join(self.stack)) in CPU_BY_DESIGN
        f, keywords = node.func, {k.arg for k in node.keywords}
        module = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
            else None
        if module == "torch" and f.attr in FACTORIES and "device" not in keywords and not allowed:
            self.problems.append(f"{here} torch.{f.attr} without device=")
        if "generator" in keywords and isinstance(f, ast.Attribute) and module != "rng":
            self.problems.append(f"{here} raw draw {ast.unparse(f)}(generator=...): use lib.rng")
        if isinstance(f, ast.Attribute) and f.attr == "numpy" and not allowed \
                and ".cpu()" not in ast.unparse(f.value):
            self.problems.append(f"{here} .numpy() without .cpu()")
        self.generic_visit(node)


def _problems(source, filename):
    checker = _SourceChecker(filename)
    checker.visit(ast.parse(source))
    return checker.problems


def test_the_source_check_finds_problems():
    source = ("def f(x, g):\n    a = torch.zeros(3)\n    b = torch.rand(3, generator=g, "
              "device=x.device)\n    return x.numpy(), torch.ones(2, device=x.device)\n")
    assert _problems(source, "example.py") == [
        "example.py:2 torch.zeros without device=",
        "example.py:3 raw draw torch.rand(generator=...): use lib.rng",
        "example.py:4 .numpy() without .cpu()",
    ]


def test_no_tensor_made_off_the_inputs_device():
    """Every module of lib and of its subpackages (the grader aside), named by its path
    relative to lib (``vae.py``, ``rationales/data.py``)."""
    problems = []
    root = pathlib.Path(rng.__file__).parent
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root).as_posix()
        if name != "rng.py" and not name.startswith("grading/"):
            problems += _problems(path.read_text(), name)
    assert problems == []
