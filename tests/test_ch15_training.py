"""The committed results of tools/ch15_training.py, which chapter 15 prints, are reproducible,
and the k-subset selector's training and evaluation (``k=``) do what they say.

``lib/data/ch15_training.json`` took a minute and a half to produce; these tests check that it
says how it was made, that it holds what the chapter reads, and that rerunning one setting
reproduces its entries exactly (float64 and lib.training's weight grid: the same numbers on
every CPU).
"""

import json

import numpy as np
import pytest
import torch

from lib.rationales import (
    RationaleModel,
    evaluate_rationales,
    make_synthetic_reviews,
    train_side_by_side,
)
from lib.subsets import ksubset_marginals
from tools import ch15_training

RESULTS = json.loads(ch15_training.DEFAULT_OUT.read_text())


def test_the_file_records_how_it_was_made_and_holds_every_run():
    assert RESULTS["command"].startswith("python -m tools.ch15_training")
    assert len(RESULTS["commit"].split("+")[0]) == 40
    config = RESULTS["config"]
    assert config["n_runs"] == ch15_training.N_RUNS >= 30  # bimodal outcomes: experiments.md
    assert config["k"] == ch15_training.K
    assert set(RESULTS["settings"]) == set(ch15_training.SETTINGS)
    for label, entry in RESULTS["settings"].items():
        for key in ch15_training.METRICS:
            values = np.array(entry[key], dtype=float)
            assert values.shape == (config["n_runs"],), (label, key)
        k = ch15_training.SETTINGS[label][0]
        accuracy = np.array(entry["accuracy"])
        assert ((0 <= accuracy) & (accuracy <= 1)).all()
        if k is not None:  # exactly k tokens of every review: the kept share is fixed
            assert np.ptp(entry["kept"]) == 0 and 0 < entry["kept"][0] < 0.2


@pytest.mark.slow
def test_rerunning_one_setting_reproduces_the_file():
    label = "2-subset, SIMPLE"
    again = ch15_training.run_setting(label)
    for key in ch15_training.METRICS:
        np.testing.assert_allclose(again[key], RESULTS["settings"][label][key], rtol=0,
                                   atol=1e-12, err_msg=key)


def test_evaluation_with_k_keeps_the_top_k_tokens_and_reports_the_marginals():
    torch.set_default_dtype(torch.float64)
    data = make_synthetic_reviews(40, seed=3)
    torch.manual_seed(0)
    model = RationaleModel(len(data.vocab))
    out = evaluate_rationales(model, data, k=2)
    assert out["kept"] == pytest.approx(2 * 40 / float(data.mask.sum()), rel=1e-12)
    with torch.no_grad():
        logits = model.keep_logits(data.tokens, data.mask)
        marg = ksubset_marginals(logits, 2, data.mask)
    planted, other = data.rationales, data.mask & ~data.rationales
    assert out["g_planted"] == pytest.approx(float(marg[planted].mean()), rel=1e-12)
    assert out["g_other"] == pytest.approx(float(marg[other].mean()), rel=1e-12)
    sampled = evaluate_rationales(model, data, selection="sample", k=2,
                                  generator=torch.Generator().manual_seed(1))
    assert sampled["kept"] == pytest.approx(out["kept"], rel=1e-12)
    shortest = int(data.mask.sum(-1).min())
    with pytest.raises(ValueError, match="k must be"):
        evaluate_rationales(model, data, k=shortest + 1)
    with pytest.raises(ValueError, match="k must be"):
        evaluate_rationales(model, data, k=0)


def test_side_by_side_training_with_k_uses_the_k_subset_selector():
    torch.set_default_dtype(torch.float64)
    data = make_synthetic_reviews(64, seed=0)
    torch.manual_seed(2)
    runs = [RationaleModel(len(data.vocab)) for _ in range(2)]
    before = [m.selector_out.weight.clone() for m in runs]
    train_side_by_side(runs, data, "straight_through", n_steps=3, batch_size=8, k=2,
                       generator=torch.Generator().manual_seed(3))
    assert all(not torch.equal(b, m.selector_out.weight) for b, m in zip(before, runs))
    with pytest.raises(ValueError, match="k must be"):
        train_side_by_side(runs, data, "straight_through", n_steps=1, k=99,
                           generator=torch.Generator().manual_seed(3))
