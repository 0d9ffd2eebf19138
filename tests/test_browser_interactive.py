"""The interactive figures on the built pages, driven in headless Chromium like a reader would.

On chapter 4 (temperature explorer) and chapter 8 (estimator playground): the figure is drawn
by the book's own script (_static/book_interactive.js) with no kernel; dragging a slider with
the mouse, pressing a key on it, pressing the button, choosing a cost and unticking an
estimator with the keyboard each change the drawing and the printed numbers, and the numbers
printed are those of the data lib computed for the chosen setting. No console error, and no
request leaves 127.0.0.1.

Same conventions as tests/test_browser.py (whose server and browser fixtures it uses): it reads
the HTML that `make book` wrote to _build/html and skips with a message where Chromium or the
built book is missing, except on CI, where it fails. Screenshots go to _build/screenshots/.
"""

from __future__ import annotations

import json
from urllib.parse import urljoin, urlparse

import pytest

from tests.test_browser import HTML, SHOTS, browser, site  # noqa: F401  (fixtures)

pytestmark = pytest.mark.xdist_group("browser")

PAGES = {"temperature": "chapters/04_gumbel_softmax", "estimators": "chapters/08_estimator_lab"}

STATE_JS = """root => ({
  svg: root.querySelector('svg.book-interactive-svg').innerHTML,
  desc: root.querySelector('svg.book-interactive-svg desc').textContent,
  readout: root.querySelector('.book-interactive-readout').textContent,
  table: root.querySelector('table') ? root.querySelector('table').textContent : '',
  fallbackHidden: root.querySelector('.book-interactive-fallback').hidden,
  data: JSON.parse(root.querySelector('script.book-interactive-data').textContent),
})"""


class Reader:
    """A page opened in Chromium, with every console error and request it caused."""

    def __init__(self, browser, site, kind, from_disk=False):  # noqa: F811
        self.page = browser.new_page(viewport={"width": 1280, "height": 1000})
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        if from_disk:  # file://: the page, its script and its data are the book's own files
            self.page.goto((HTML / f"{PAGES[kind]}.html").as_uri(), wait_until="load")
        else:
            url = urljoin(site, f"{PAGES[kind]}.html")
            response = self.page.goto(url, wait_until="networkidle")
            assert response is not None and response.ok, f"{url} did not load"
        self.figure = self.page.locator(f'.book-interactive[data-kind="{kind}"]')
        self.figure.wait_for(state="visible")
        self.page.wait_for_function(
            f"""() => document.querySelector('.book-interactive[data-kind="{kind}"]')
                       .getAttribute('data-ready') === 'true'""", timeout=15_000)

    def state(self) -> dict:
        return self.figure.evaluate(STATE_JS)

    def close(self, shot: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.figure.screenshot(path=str(SHOTS / shot))
        self.page.close()
        assert not self.problems, "\n".join(self.problems)
        outside = [u for u in self.requests if not u.startswith(("data:", "blob:", "file:"))
                   and urlparse(u).hostname != "127.0.0.1"]
        assert not outside, f"requests outside 127.0.0.1: {outside}"


def drag_to(page, slider, fraction: float) -> None:
    """Press the mouse on the slider's thumb and drag it to ``fraction`` of the track."""
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    value, top = float(slider.input_value()), float(slider.get_attribute("max"))
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 8 + (box["width"] - 16) * value / top, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * fraction, y, steps=8)
    page.mouse.up()


def tv_text(row) -> list[str]:
    return [f"{v:.3f}" for v in row["tv"]]


@pytest.mark.browser
def test_temperature_explorer_responds_to_mouse_keyboard_and_button(browser, site):  # noqa: F811
    reader = Reader(browser, site, "temperature")
    page, figure = reader.page, reader.figure
    first = reader.state()
    data = first["data"]
    assert first["fallbackHidden"], "the fallback text still shows: the script did not run"
    slider = figure.get_by_role("slider", name="Temperature τ", exact=True)  # labelled
    assert slider.get_attribute("type") == "range"
    start = int(slider.input_value())
    assert data["taus"][start] == 1.0 and slider.get_attribute("aria-valuetext") == "τ = 1"
    assert all(t in first["readout"] for t in tv_text(data["sets"][0]["rows"][start]))

    # drag the thumb towards the low temperatures: the drawing and the numbers follow the data
    drag_to(page, slider, 0.1)
    index = int(slider.input_value())
    assert index < start
    dragged = reader.state()
    row = data["sets"][0]["rows"][index]
    assert dragged["svg"] != first["svg"] and dragged["readout"] != first["readout"]
    assert f"τ = {data['taus'][index]}," in dragged["readout"]
    assert all(t in dragged["readout"] for t in tv_text(row)), (dragged["readout"], row["tv"])
    assert f"τ = {data['taus'][index]}" in dragged["desc"]  # the text alternative follows too
    bars = figure.locator('[data-panel="tempered"] .bi-bar').evaluate_all(
        "els => els.map(e => Number(e.getAttribute('data-value')))")
    assert bars == row["tempered"]

    # a key on the focused slider moves it one step
    slider.focus()
    page.keyboard.press("ArrowRight")
    assert int(slider.input_value()) == index + 1
    stepped = reader.state()
    assert stepped["svg"] != dragged["svg"] and stepped["readout"] != dragged["readout"]
    assert figure.locator("output").first.text_content() == f"τ = {data['taus'][index + 1]}"
    page.keyboard.press("End")
    hot = reader.state()
    assert "τ = 100," in hot["readout"]
    assert all(t in hot["readout"] for t in tv_text(data["sets"][0]["rows"][-1]))
    # the argmax panel is the same at every temperature (the same noise)
    argmax = figure.locator('[data-panel="argmax"] .bi-bar').evaluate_all(
        "els => els.map(e => Number(e.getAttribute('data-value')))")
    assert argmax == data["sets"][0]["rows"][-1]["argmax"] == data["sets"][0]["rows"][0]["argmax"]

    # the button, pressed with the keyboard, shows the next set of scores
    figure.get_by_role("button", name="New scores").focus()
    page.keyboard.press("Enter")
    second = reader.state()
    assert "scores 2 of 5" in second["readout"] and second["svg"] != hot["svg"]
    assert all(t in second["readout"] for t in tv_text(data["sets"][1]["rows"][-1]))
    reader.close("interactive_temperature.png")


def table_rows(figure) -> dict[str, list[str]]:
    return dict(figure.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => [r.getAttribute('data-estimator'),"
        " Array.from(r.querySelectorAll('td')).map(td => td.textContent)])"))


@pytest.mark.browser
def test_estimator_playground_responds_to_every_control(browser, site):  # noqa: F811
    reader = Reader(browser, site, "estimators")
    page, figure = reader.page, reader.figure
    first = reader.state()
    data = first["data"]
    assert first["fallbackHidden"]
    slider = figure.get_by_role("slider", name="Temperature τ (Gumbel estimators)", exact=True)
    cost = figure.get_by_role("combobox", name="Cost", exact=True)
    logits = figure.get_by_role("combobox", name="Logits", exact=True)
    start = int(slider.input_value())
    assert data["taus"][start] == 1.0

    def expected(preset, cost_index, tau_index):
        cell = data["cells"][preset][cost_index]
        out = {}
        for est in data["estimators"]:
            e = cell["clouds"][est["key"]][tau_index if est["relaxed"] else 0]
            out[est["key"]] = [str(data["taus"][tau_index]) if est["relaxed"] else "–",
                               e["bias"], e["noise"], e["variance"],
                               "yes" if e["detected"] else "no"]
        return out

    assert table_rows(figure) == expected(0, 0, start)

    # drag the temperature down: the Gumbel clouds and their rows change, REINFORCE's do not
    drag_to(page, slider, 0.05)
    index = int(slider.input_value())
    assert index < start
    dragged = reader.state()
    assert dragged["svg"] != first["svg"] and dragged["table"] != first["table"]
    rows = table_rows(figure)
    assert rows == expected(0, 0, index)
    assert rows["reinforce"] == expected(0, 0, start)["reinforce"]

    # one key on the focused slider
    slider.focus()
    page.keyboard.press("ArrowRight")
    assert int(slider.input_value()) == index + 1
    assert table_rows(figure) == expected(0, 0, index + 1)
    assert reader.state()["svg"] != dragged["svg"]

    # the exponential cost, chosen with the keyboard on the focused select
    exp_index = [c["key"] for c in data["costs"]].index("exp")
    cost.focus()
    for _ in range(exp_index):
        page.keyboard.press("ArrowDown")
    assert int(cost.input_value()) == exp_index
    exp_state = reader.state()
    assert table_rows(figure) == expected(0, exp_index, index + 1)
    assert "exp cost" in exp_state["svg"] and "exp" in exp_state["readout"]
    logits.select_option("1")
    assert table_rows(figure) == expected(1, exp_index, index + 1)

    # untick REINFORCE with the space bar: its cloud leaves the drawing
    box = figure.get_by_role("checkbox", name="REINFORCE", exact=True)
    assert figure.locator('g.bi-cloud[data-estimator="reinforce"]').count() == 1
    box.focus()
    page.keyboard.press("Space")
    assert not box.is_checked()
    assert figure.locator('g.bi-cloud[data-estimator="reinforce"]').count() == 0
    assert "bi-hidden" in figure.locator('tr[data-estimator="reinforce"]').get_attribute("class")
    assert json.dumps(data["cells"][1][exp_index]["exact"])  # the data stayed parseable
    reader.close("interactive_estimators.png")


@pytest.mark.browser
@pytest.mark.parametrize("kind", sorted(PAGES))
def test_figures_work_from_the_html_opened_from_disk(browser, site, kind):  # noqa: F811
    """A reader who opens _build/html/...html from disk (file://) gets the same figure: the
    script and its data are the book's own files, found by relative paths."""
    reader = Reader(browser, site, kind, from_disk=True)
    before = reader.state()
    assert before["fallbackHidden"], "the fallback text still shows: the script did not run"
    reader.figure.get_by_role("slider").first.focus()
    reader.page.keyboard.press("ArrowLeft")
    assert reader.state()["svg"] != before["svg"]
    reader.close(f"interactive_{kind}_from_disk.png")
