"""The committed results of tools/ch10_long_run.py, which chapter 10 prints, are reproducible.

The file ``lib/data/ch10_long_run.json`` took minutes to produce; these tests check that it says
how it was made, that it holds what the chapter reads, and that rerunning a slice of the script
(one setting, its first epochs, under the full run's temperature schedule) reproduces the
file's entries for those epochs.
"""

import json

import numpy as np
import pytest

from tools import ch10_long_run

RESULTS = json.loads(ch10_long_run.DEFAULT_OUT.read_text())


def test_the_file_records_how_it_was_made():
    assert RESULTS["command"].startswith("python -m tools.ch10_long_run")
    assert len(RESULTS["commit"].split("+")[0]) == 40
    config = RESULTS["config"]
    assert config["n_seeds"] == ch10_long_run.N_SEEDS
    assert config["n_hidden"] == ch10_long_run.N_HIDDEN
    assert config["n_epochs"] >= 120
    assert set(RESULTS["settings"]) == set(ch10_long_run.SETTINGS)


def test_the_file_holds_every_setting_and_seed():
    n_seeds, n_epochs = RESULTS["config"]["n_seeds"], RESULTS["config"]["n_epochs"]
    for label, entry in RESULTS["settings"].items():
        assert entry["eval_epochs"][0] == 0 and entry["eval_epochs"][-1] == n_epochs, label
        for key in ("test_negative_elbo", "test_kl"):
            values = np.array(entry[key])
            assert values.shape == (n_seeds, len(entry["eval_epochs"])), (label, key)
            assert np.isfinite(values).all()
        final = entry["final"]
        for key in ("test_negative_elbo", "negative_iwae", "iwae_change_from_half_k"):
            assert len(final[key]) == n_seeds, (label, key)
        # the importance-weighted bound is below the ELBO of the same images for every seed
        assert (np.array(final["negative_iwae"])
                < np.array(final["negative_elbo_iwae_images"])).all(), label
        # k is large enough: doubling it moves the mean bound by less than its standard error
        # over the seeds (experiments.md), and no single model's bound by more than 0.1 nats
        bound = np.array(final["negative_iwae"])
        se = bound.std(ddof=1) / np.sqrt(n_seeds)
        change = np.array(final["iwae_change_from_half_k"])
        assert abs(change.mean()) < se, (label, change.mean(), se)
        assert np.abs(change).max() < 0.1, label


@pytest.mark.slow
def test_a_slice_of_the_script_reproduces_the_file():
    label = "Gumbel-S., annealed"  # annealed over the full run: the slice must be too
    stored = RESULTS["settings"][label]
    eval_every = RESULTS["config"]["eval_every"]
    entry = ch10_long_run.run_setting(label, n_epochs=RESULTS["config"]["n_epochs"],
                                      eval_every=eval_every, stop_after=eval_every,
                                      final=False)
    assert entry["eval_epochs"] == stored["eval_epochs"][:2] == [0, eval_every]
    for key in ("test_negative_elbo", "test_kl"):
        rerun = np.array(entry[key])
        expected = np.array(stored[key])[:, :2]
        # float64 and weights snapped to a grid: the same numbers up to rounding
        assert np.abs(rerun - expected).max() < 1e-9, key
