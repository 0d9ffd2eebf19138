"""The interactive figures of the web book: the data lib computes, the HTML block that carries
them, the JavaScript that draws them, and the committed notebook outputs (no browser here; the
browser test is tests/test_browser_interactive.py)."""

import json
import math
import re
from pathlib import Path

import pytest
import torch

from lib.compare import BernoulliProblem, get_estimator
from lib.interactive import (
    PLAYGROUND_COSTS,
    TEMPERATURE_TAUS,
    EstimatorPlayground,
    InteractiveFigure,
    TemperatureFigure,
    estimator_playground,
    temperature_figure,
)
from lib.temperature import total_variation

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "_static" / "book_interactive.js"
STYLE = ROOT / "_static" / "book_interactive.css"
NOTEBOOKS = {"temperature": ROOT / "chapters" / "04_gumbel_softmax.ipynb",
             "estimators": ROOT / "chapters" / "08_estimator_lab.ipynb"}


def data_of(html):
    """The JSON of the block's <script type="application/json">, parsed."""
    match = re.search(r'<script type="application/json" class="book-interactive-data">(.*?)'
                      r"</script>", html, re.S)
    assert match, "no data script in the block"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def small_temperature():
    logits = torch.tensor([1.0, 0.0, -0.5, -2.0], dtype=torch.float64)
    return temperature_figure(logits, n_sets=2, n_samples=2000, taus=(0.001, 0.1, 1.0, 100.0),
                              seed=3)


@pytest.fixture(scope="module")
def small_playground():
    return estimator_playground(presets=[(0.0, 0.0), (1.5, -1.0)], taus=(0.1, 1.0, 10.0),
                                n_repeats=2000, n_points=50, seed=2)


# ------------------------------------------------------------------ the temperature figure


def test_temperature_figure_holds_the_experiment_per_set_and_temperature(small_temperature):
    fig = small_temperature
    assert isinstance(fig, TemperatureFigure) and fig.kind == "temperature"
    data = fig.data
    assert data["taus"] == [0.001, 0.1, 1.0, 100.0] and data["start"] == 2  # starts at tau = 1
    assert len(data["sets"]) == 2 and data["n_categories"] == 4
    assert data["sets"][0]["logits"] == [1.0, 0.0, -0.5, -2.0]  # the given scores come first
    assert data["sets"][1]["logits"] != data["sets"][0]["logits"]
    for entry in data["sets"]:
        probs = torch.tensor(entry["probs"], dtype=torch.float64)
        assert abs(float(probs.sum()) - 1) < 3e-4
        for tau, row in zip(data["taus"], entry["rows"]):
            for key in ("sample", "tempered", "exact", "argmax", "mean"):
                assert len(row[key]) == 4 and abs(sum(row[key]) - 1) < 3e-4, (key, row[key])
            # the printed TVs are those of the stored distributions (rounded to 4 decimals)
            for i, key in enumerate(("tempered", "argmax", "mean")):
                tv = float(total_variation(torch.tensor(row[key]), probs))
                assert abs(row["tv"][i] - tv) < 2e-3
            exact = torch.softmax(torch.tensor(entry["logits"], dtype=torch.float64) / tau, 0)
            assert max(abs(a - b) for a, b in zip(row["exact"], exact.tolist())) < 2e-3


def test_the_same_noise_at_every_temperature(small_temperature):
    for entry in small_temperature.data["sets"]:
        rows = entry["rows"]
        # argmax softmax((x + G)/tau) = argmax(x + G): identical counts at every temperature
        assert all(row["argmax"] == rows[0]["argmax"] for row in rows)
        winner = max(range(4), key=lambda k: rows[0]["sample"][k])
        assert rows[0]["sample"][winner] == 1.0  # tau = 0.001: one-hot
        assert all(max(range(4), key=lambda k: r["sample"][k]) == winner for r in rows)
        assert max(rows[-1]["sample"]) < 0.27  # tau = 100: nearly uniform (1/4)
        assert rows[0]["tempered"][0] == 1.0  # tau = 0.001: only the largest score


def test_temperature_table_prints_the_distances(small_temperature):
    text = small_temperature.table(1)
    assert text.splitlines()[0].startswith("scores set 2 of 2")
    assert len(text.splitlines()) == 2 + 4 + 1
    with pytest.raises(ValueError, match="scores must be <= 1"):
        small_temperature.table(2)


def test_default_temperature_grid_is_four_per_decade():
    assert len(TEMPERATURE_TAUS) == 21
    assert TEMPERATURE_TAUS[0] == 0.001 and TEMPERATURE_TAUS[-1] == 100.0
    assert TEMPERATURE_TAUS[4] == 0.01 and TEMPERATURE_TAUS[12] == 1.0
    assert TEMPERATURE_TAUS[1] == 0.00178  # rounded: the value shown is the value used


@pytest.mark.parametrize("kwargs, error, message", [
    ({"n_sets": 0}, ValueError, "n_sets must be >= 1"),
    ({"n_samples": 10}, ValueError, "n_samples must be >= 100"),
    ({"n_samples": 1000.0}, TypeError, "n_samples must be an int"),
    ({"taus": (1.0,)}, TypeError, "at least 2 temperatures"),
    ({"taus": "0.1"}, TypeError, "at least 2 temperatures"),
    ({"taus": (1.0, 0.1)}, ValueError, "strictly increasing"),
    ({"taus": (0.0001, 1.0)}, ValueError, r"lie in \[0.001, 100\]"),
    ({"taus": (0.1, -1.0)}, ValueError, "must be > 0"),
    ({"logits": torch.zeros(2, 3)}, ValueError, "1-D tensor of 2 to 20 finite scores"),
    ({"logits": torch.tensor([0.0, float("inf")])}, ValueError, "finite"),
    ({"logits": [0.0, 1.0]}, TypeError, "torch.Tensor"),
    ({"n_categories": 1}, ValueError, "n_categories must be >= 2"),
    ({"seed": -1}, ValueError, "seed must be >= 0"),
])
def test_temperature_figure_checks_its_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        temperature_figure(**{"n_samples": 100, "taus": (0.1, 1.0), **kwargs})


# ------------------------------------------------------------------ the estimator playground


def dequantised(entry):
    unit = 10.0 ** entry["e"]
    return [(x * unit, y * unit) for x, y in zip(entry["x"], entry["y"])]


def test_playground_has_every_estimator_preset_cost_and_temperature(small_playground):
    data = small_playground.data
    assert isinstance(small_playground, EstimatorPlayground)
    assert small_playground.kind == "estimators"
    assert [e["key"] for e in data["estimators"]] == [
        "reinforce", "reinforce_moving_average", "straight_through", "gumbel_softmax",
        "st_gumbel_softmax"]
    assert [e["label"] for e in data["estimators"]][-1] == "ST Gumbel-softmax"
    assert [c["key"] for c in data["costs"]] == list(PLAYGROUND_COSTS)
    assert len(data["cells"]) == 2 and all(len(row) == 3 for row in data["cells"])
    for p, row in enumerate(data["cells"]):
        for (_, f), cell in zip(PLAYGROUND_COSTS.values(), row):
            logits = torch.tensor(data["presets"][p]["logits"], dtype=torch.float64)
            exact = BernoulliProblem(logits, f).exact_gradient()
            assert cell["exact"] == pytest.approx(exact.tolist(), rel=1e-3)
            for est in data["estimators"]:
                entries = cell["clouds"][est["key"]]
                assert len(entries) == (3 if est["relaxed"] else 1)
                for entry in entries:
                    assert len(entry["x"]) == len(entry["y"]) == 50
                    assert all(isinstance(v, int) and abs(v) < 100_000 for v in entry["x"])


def test_playground_numbers_say_what_the_estimators_are(small_playground):
    cell = small_playground.data["cells"][0][0]  # linear cost at logits (0, 0)
    st = cell["clouds"]["straight_through"][0]
    # straight-through is exact on a linear cost: rounding-level numbers are printed as bounds
    assert (st["bias"], st["noise"], st["variance"], st["detected"]) == (
        "< 1e-12", "< 1e-12", "< 1e-20", False)
    for x, y in dequantised(st):
        assert (x, y) == pytest.approx(cell["exact"], abs=1e-3)
    assert not cell["clouds"]["reinforce"][0]["detected"]
    # REINFORCE with one sample takes one value per outcome (b1, b2): at most four points
    assert len(set(dequantised(cell["clouds"]["reinforce"][0]))) <= 4
    gs_hot = cell["clouds"]["gumbel_softmax"][-1]  # tau = 10: the relaxation is far off
    assert gs_hot["detected"] and float(gs_hot["bias"]) > 0.1
    exp_cell = small_playground.data["cells"][0][2]
    assert exp_cell["clouds"]["st_gumbel_softmax"][1]["detected"]  # exp cost, tau = 1


def test_playground_clouds_are_the_estimators_own_estimates():
    fig = estimator_playground(presets=[(0.5, -0.5)], taus=(0.3, 3.0), n_repeats=300,
                               n_points=20, seed=5)
    cell = fig.data["cells"][0][2]
    entry = cell["clouds"]["reinforce"][0]
    problem = BernoulliProblem(torch.tensor([0.5, -0.5], dtype=torch.float64),
                               PLAYGROUND_COSTS["exp"][1])
    # the mean of the 300 estimates, stored in the cloud's units, is an unbiased estimate:
    # within 5 standard errors of the exact gradient
    unit = 10.0 ** entry["e"]
    mean = torch.tensor(entry["mean"], dtype=torch.float64) * unit
    estimates = get_estimator("reinforce")(problem, None, 1, 4000,
                                           torch.Generator().manual_seed(0))
    se = estimates.std(0) / math.sqrt(300)
    assert ((mean - problem.exact_gradient()).abs() < 5 * se).all()
    points = torch.tensor(dequantised(entry))
    outcomes = {tuple(round(v, 2) for v in row) for row in estimates.tolist()}
    assert {tuple(round(v, 2) for v in row) for row in points.tolist()} <= outcomes


def test_playground_table_prints_each_row(small_playground):
    text = small_playground.table("exp", preset=1)
    lines = text.splitlines()
    assert lines[0].startswith("exp: f(b) = exp(2b₁ + b₂)/10, ℓ = (1.5, -1)")
    assert len(lines) == 3 + 3 + 2 * 3
    assert lines[3].startswith("REINFORCE ") and lines[-1].startswith("ST Gumbel-softmax")
    with pytest.raises(ValueError, match="cost must be one of"):
        small_playground.table("cubic")
    with pytest.raises(ValueError, match="preset must be <= 1"):
        small_playground.table("exp", preset=2)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"presets": [(0.0, 0.0, 1.0)]}, ValueError, "2 finite logits"),
    ({"presets": [(0.0, float("nan"))]}, ValueError, "2 finite logits"),
    ({"presets": []}, TypeError, "1 to 6 pairs"),
    ({"costs": {"bad": ("f", 3)}}, TypeError, "must be a callable"),
    ({"costs": {"bad": lambda b: b.sum(-1)}}, TypeError, "formula str, function"),
    ({"costs": {"flat": ("f(b) = 1", lambda b: b.sum(-1) * 0 + 1)}}, ValueError,
     "exact gradient of cost 'flat'.*is zero"),
    ({"n_points": 300}, ValueError, "n_points must be <= 200"),
    ({"n_repeats": 50}, ValueError, "n_repeats must be >= 100"),
    ({"taus": (0.1, 1000.0)}, ValueError, r"lie in \[0.001, 100\]"),
])
def test_playground_checks_its_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        estimator_playground(**{"n_repeats": 200, "n_points": 10, "taus": (0.1, 1.0),
                                "presets": [(0.0, 0.0)], **kwargs})


# --------------------------------------------------------------------------- the HTML block


def test_html_block_carries_fallback_text_and_data(small_playground):
    html = small_playground.to_html()
    assert html.startswith('<div class="book-interactive" id="book-interactive-estimators-')
    assert 'data-kind="estimators"' in html and 'aria-label="Estimator playground"' in html
    assert 'class="book-interactive-fallback"' in html and "web edition of the book" in html
    data = data_of(html)
    assert data["title"] == "Estimator playground" and "scatter plot" in data["description"]
    assert data["cells"] == json.loads(json.dumps(small_playground.data["cells"]))
    script = html.split('class="book-interactive-data">')[1].split("</script>")[0]
    assert "<" not in script and ">" not in script and "&" not in script  # safe in <script>
    assert small_playground._repr_html_() == html
    assert re.fullmatch(r"EstimatorPlayground\('Estimator playground', \d+\.\d kB of data\)",
                        repr(small_playground))
    assert "http" not in html  # nothing to fetch


def test_the_same_seed_gives_the_same_html_and_another_seed_does_not():
    a = temperature_figure(n_sets=1, n_categories=3, n_samples=200, taus=(0.1, 1.0), seed=4)
    b = temperature_figure(n_sets=1, n_categories=3, n_samples=200, taus=(0.1, 1.0), seed=4)
    c = temperature_figure(n_sets=1, n_categories=3, n_samples=200, taus=(0.1, 1.0), seed=5)
    assert a.to_html() == b.to_html() and a.element_id == b.element_id
    assert a.to_html() != c.to_html() and a.element_id != c.element_id


def test_figure_json_is_strict_and_compact():
    fig = InteractiveFigure("temperature", "T", "D", {"values": [0.5, 1.0]})
    assert fig.to_json() == '{"title":"T","description":"D","values":[0.5,1.0]}'
    with pytest.raises(ValueError):
        InteractiveFigure("temperature", "T", "D", {"values": [float("nan")]}).to_json()


# --------------------------------------------------------------- the script and the outputs


def test_script_draws_every_kind_and_fetches_nothing():
    source = SCRIPT.read_text()
    kinds = re.search(r"var KINDS = \{([^}]*)\}", source).group(1)
    assert {k.strip().split(":")[0] for k in kinds.split(",")} == {"temperature", "estimators"}
    urls = set(re.findall(r"https?://[^\s\"']+", source))
    assert urls == {"http://www.w3.org/2000/svg"}  # the SVG namespace, not a request
    for call in ("fetch(", "XMLHttpRequest", "import(", "eval(", ".src =", "innerHTML"):
        assert call not in source, call
    # keyboard-usable native controls with labels, live readouts, a text alternative
    for needed in ('type: "range"', 'html("label"', 'html("select"', 'type: "button"',
                   "aria-valuetext", "aria-live", "figcaption", 'role: "img"', '"desc"'):
        assert needed in source, needed
    assert STYLE.exists() and ".book-interactive" in STYLE.read_text()


@pytest.mark.parametrize("kind", sorted(NOTEBOOKS))
def test_committed_notebook_output_holds_a_small_figure(kind):
    cells = json.loads(NOTEBOOKS[kind].read_text())["cells"]
    blocks = ["".join(o["data"]["text/html"]) for c in cells if c["cell_type"] == "code"
              for o in c["outputs"] if "text/html" in o.get("data", {})
              and "book-interactive" in "".join(o["data"]["text/html"])]
    assert len(blocks) == 1, f"expected one interactive figure in {NOTEBOOKS[kind].name}"
    assert f'data-kind="{kind}"' in blocks[0]
    data = data_of(blocks[0])
    size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
    assert size < 250_000, f"{size} bytes of data: keep each figure well under 1 MB"
    if kind == "temperature":
        assert data["taus"] == list(TEMPERATURE_TAUS) and len(data["sets"]) == 5
    else:
        assert len(data["taus"]) == 7 and data["n_repeats"] == 10_000
