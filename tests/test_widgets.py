"""The temperature explorer, driven through its Python API (no browser, no kernel)."""

import matplotlib

matplotlib.use("Agg")

import ipywidgets  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.stats  # noqa: E402
import torch  # noqa: E402

from lib.temperature import expected_empirical_tv, total_variation  # noqa: E402
from lib.widgets import TemperatureExplorer, temperature_explorer  # noqa: E402


def panel_heights(explorer, col):
    """Heights of the coloured bars (the quantity) of panel ``col`` of the figure."""
    ax = explorer.figure.axes[col]
    k = explorer.logits.numel()
    return np.array([p.get_height() for p in ax.patches][k:])


def test_explorer_is_a_core_widget_with_a_slider_and_a_button():
    e = temperature_explorer(n_samples=2000)
    assert isinstance(e, TemperatureExplorer) and isinstance(e, ipywidgets.VBox)
    assert isinstance(e.tau_slider, ipywidgets.FloatLogSlider)
    assert isinstance(e.new_scores_button, ipywidgets.Button)
    assert isinstance(e.image, ipywidgets.Image)
    assert e.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert repr(e) == "TemperatureExplorer(tau=1, n_categories=10, n_samples=2000)"
    assert e.tau_slider.min == pytest.approx(-3) and e.tau_slider.max == pytest.approx(2)
    assert e.result.taus == (1.0,) and e.n_draws == 1
    assert len(e.figure.axes) == 3


def test_moving_the_slider_resamples_and_redraws():
    e = temperature_explorer(n_samples=4000, seed=1)
    before = panel_heights(e, 0).copy()
    png_before = e.image.value
    e.tau_slider.value = 0.01
    assert e.image.value != png_before  # the picture shown in the notebook changed
    assert e.n_draws == 2
    assert e.result.taus == (pytest.approx(0.01),)
    # the tempered panel follows softmax(logits / 0.01): its TV to that law is within 4 sd
    # bounds of the noise floor of n exact draws from it
    r = e.result
    floor = expected_empirical_tv(r.tempered_probs[0], r.tempered_probs[0], 4000)
    assert float(total_variation(r.tempered[0], r.tempered_probs[0])) < floor + 4 * r.sd_bound
    np.testing.assert_allclose(panel_heights(e, 0), e.result.tempered[0].numpy())
    assert not np.allclose(panel_heights(e, 0), before)
    texts = [t.get_text() for t in e.figure.axes[0].texts]
    assert f"TV = {float(e.result.tv_tempered[0]):.3f}" in texts
    # and the argmax of the Gumbel-softmax sample still follows softmax(logits)
    counts = (e.result.argmax_relaxed[0] * 4000).round().numpy()
    expected = 4000 * e.result.probs.numpy()
    keep = expected >= 5  # chi-square needs expected counts >= 5: pool the rest into one cell
    if not keep.all():
        counts = np.append(counts[keep], counts[~keep].sum())
        expected = np.append(expected[keep], expected[~keep].sum())
    assert scipy.stats.chisquare(counts, expected).pvalue > 1e-3


def test_high_temperature_flattens_the_tempered_panel_and_the_mean():
    e = temperature_explorer(n_samples=4000, tau=100.0, seed=2)
    uniform = torch.full_like(e.result.probs, 1 / e.logits.numel())
    assert float(total_variation(e.result.tempered_probs[0], uniform)) < 0.05
    assert float(total_variation(e.result.mean_relaxed[0], uniform)) < 0.01


def test_new_scores_button_changes_the_scores_and_the_figure():
    e = temperature_explorer(n_samples=1000, seed=3)
    old_logits = e.logits.clone()
    old_black = [p.get_height() for p in e.figure.axes[0].patches][: old_logits.numel()]
    e.new_scores_button.click()
    assert e.n_draws == 2
    assert not torch.equal(e.logits, old_logits)
    torch.testing.assert_close(e.result.logits, e.logits)
    new_black = [p.get_height() for p in e.figure.axes[0].patches][: e.logits.numel()]
    np.testing.assert_allclose(new_black, torch.softmax(e.logits, -1).numpy())
    assert not np.allclose(new_black, old_black)
    assert e.result.taus == (pytest.approx(e.tau_slider.value),)


def test_same_seed_same_explorer_and_given_logits_are_used():
    a, b = temperature_explorer(n_samples=500, seed=4), temperature_explorer(n_samples=500, seed=4)
    torch.testing.assert_close(a.result.tempered, b.result.tempered)
    logits = torch.tensor([2.0, 0.0, -1.0])
    c = temperature_explorer(logits, n_samples=500)
    torch.testing.assert_close(c.logits, logits.double())
    assert len(c.figure.axes[0].patches) == 6


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"tau": 0.0}, ValueError, "> 0"),
        ({"tau": 1000.0}, ValueError, "slider"),
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"n_categories": 1}, ValueError, "n_categories"),
        ({"logits": torch.zeros(2, 2)}, ValueError, "1-D"),
        ({"seed": -1}, ValueError, "seed"),
    ],
)
def test_explorer_validates_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        temperature_explorer(**kwargs)
