"""The HardKuma rationale model (lib.rationales.hardkuma): gates, closed-form terms, training."""

import math

import pytest
import torch

from lib.hardkuma import HardKuma
from lib.rationales import (
    HardKumaRationaleModel,
    RationaleModel,
    evaluate_rationales,
    hardkuma_rationale_terms,
    make_synthetic_reviews,
    train_hardkuma_side_by_side,
    train_side_by_side,
)
from lib.rationales.hardkuma import _HardKumaSideBySide
from lib.training import GRID_SPACING


@pytest.fixture(autouse=True)
def float64():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.fixture(scope="module")
def data():
    return make_synthetic_reviews(64, seed=0)


def test_initial_gates_keep_each_token_with_init_keep_prob(data):
    model = HardKumaRationaleModel(len(data.vocab), init_keep_prob=0.3)
    with torch.no_grad():
        gates = model.hardkuma(data.tokens, data.mask)
    assert isinstance(gates, HardKuma) and gates.batch_shape == data.tokens.shape
    assert torch.allclose(gates.a, torch.ones_like(gates.a), atol=1e-12)
    assert torch.allclose(gates.expected_l0(), torch.full_like(gates.a, 0.3), atol=1e-12)
    logits = model.keep_logits(data.tokens, data.mask)
    assert torch.allclose(torch.sigmoid(logits), gates.expected_l0(), atol=1e-12)
    assert evaluate_rationales(model, data)["kept"] == 0.0  # 0.3 < 1/2: the argmax mask is empty


def test_terms_are_the_expectations_of_the_sampled_masks(data):
    # the closed-form l0 and switches against their Monte Carlo frequencies over 4,000 masks
    # (fixed seed; tolerance 4 standard errors of the mean per text)
    torch.manual_seed(0)
    model = HardKumaRationaleModel(len(data.vocab))
    with torch.no_grad():
        for p in model.selector_out.parameters():
            p.normal_(0, 0.5)
    batch = data[:8]
    with torch.no_grad():
        terms = hardkuma_rationale_terms(model, batch.tokens, batch.mask, batch.labels)
        gates = model.hardkuma(batch.tokens, batch.mask)
        z = gates.rsample(4000, torch.Generator().manual_seed(1)) * batch.mask
    nonzero = (z != 0).double()
    kept = nonzero.sum(-1)
    pairs = (batch.mask[:, 1:] & batch.mask[:, :-1]).double()
    switches = ((nonzero[..., 1:] - nonzero[..., :-1]).abs() * pairs).sum(-1)
    for exact, samples in [(terms.l0, kept), (terms.switches, switches)]:
        se = samples.std(0) / math.sqrt(len(samples))
        assert ((samples.mean(0) - exact).abs() < 4 * se + 1e-12).all()
    assert torch.equal(terms.n_tokens, batch.mask.sum(-1).double())
    assert terms.cross_entropy.shape == (8,)


def test_the_selector_gets_a_pathwise_gradient_from_the_cross_entropy(data):
    model = HardKumaRationaleModel(len(data.vocab))
    terms = hardkuma_rationale_terms(model, data.tokens, data.mask, data.labels, n_samples=2,
                                     generator=torch.Generator().manual_seed(0))
    terms.cross_entropy.mean().backward()
    assert model.selector_out.weight.grad.abs().sum() > 0


def test_side_by_side_stack_computes_each_models_gates(data):
    torch.manual_seed(0)
    models = [HardKumaRationaleModel(len(data.vocab)) for _ in range(3)]
    with torch.no_grad():
        for m in models:
            m.selector_out.weight.normal_(0, 0.3)
    stack = _HardKumaSideBySide(models)
    batch = data[:12]
    with torch.no_grad():
        stacked = stack.hardkuma(batch.tokens, batch.mask)
        for k, m in enumerate(models):
            rows = slice(4 * k, 4 * k + 4)
            own = m.hardkuma(batch.tokens[rows], batch.mask[rows])
            assert torch.allclose(stacked.a[rows], own.a, atol=1e-12)
            assert torch.allclose(stacked.b[rows], own.b, atol=1e-12)


def test_target_rate_training_records_rates_and_nonnegative_multipliers(data):
    torch.manual_seed(0)
    models = [HardKumaRationaleModel(len(data.vocab)) for _ in range(2)]
    run = train_hardkuma_side_by_side(models, data, target_rate=0.1, n_steps=5, batch_size=4,
                                      generator=torch.Generator().manual_seed(0))
    assert run.rate.shape == run.multiplier.shape == run.cross_entropy.shape == (5, 2)
    assert (run.multiplier >= 0).all() and (run.multiplier[-1] > 0).all()  # 0.5 > 0.1: grows
    for p in models[0].parameters():  # the weights are on lib.training's grid
        assert torch.equal(p, torch.round(p / GRID_SPACING) * GRID_SPACING)
    fixed = train_hardkuma_side_by_side(models, data, n_steps=2, batch_size=4)
    assert torch.isnan(torch.tensor(fixed.multiplier)).all()


def test_bad_arguments(data):
    model = HardKumaRationaleModel(len(data.vocab))
    with pytest.raises(ValueError, match="target_rate must be in"):
        train_hardkuma_side_by_side([model], data, target_rate=1.5)
    with pytest.raises(TypeError, match="HardKumaRationaleModel"):
        train_hardkuma_side_by_side([RationaleModel(len(data.vocab))], data)
    with pytest.raises(TypeError, match="train_hardkuma_side_by_side"):
        train_side_by_side([model], data, "straight_through", n_steps=1)
    with pytest.raises(TypeError, match="hardkuma"):
        hardkuma_rationale_terms(RationaleModel(len(data.vocab)), data.tokens, data.mask,
                                 data.labels)
    with pytest.raises(ValueError, match="support"):
        HardKumaRationaleModel(len(data.vocab), support=(0.0, 1.0))
