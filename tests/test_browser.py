"""The built book as a reader meets it: every page of _toc.yml opened in headless Chromium.

For every page: no console errors or failed requests; every formula typeset by the bundled
MathJax (no raw TeX left); every image loaded and described by its alt text (not empty, not
matplotlib's ``<Figure size ...>`` repr, not the file name Sphinx puts there when a notebook
cell has no ``mystnb.image.alt`` metadata); every internal link resolving; on notebook pages,
Colab and Binder launch links pointing at that notebook on branch ``main`` of the repository set
in _config.yml; no empty widget boxes. A screenshot of each page goes to _build/screenshots/.

It reads the HTML that `make book` (run by `make test` before pytest) wrote to _build/html. It
skips with a message where Chromium or the built book is missing, except on CI, where it fails.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

from tools.setup_cell import repository

ROOT = Path(__file__).resolve().parents[1]

# One worker runs all of these, so the expensive fixture is built once (pytest -n, loadgroup).
pytestmark = pytest.mark.xdist_group("browser")
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def toc_pages() -> list[str]:
    text = (ROOT / "_toc.yml").read_text()
    root = re.search(r"^root:\s*(\S+)", text, re.M).group(1)
    return [root, *re.findall(r"^\s*-\s*file:\s*(\S+)\s*$", text, re.M)]


PAGES = toc_pages()


def _require(condition: bool, why: str) -> None:
    if not condition:
        if ON_CI:
            pytest.fail(why + " (required on CI)")
        pytest.skip(why)


@pytest.fixture(scope="module")
def site():
    _require(HTML.joinpath("index.html").exists(), "no built book: run `make book` first")
    _require(CHROMIUM is not None, "Chromium is not installed (Debian package `chromium`)")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def browser(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


TYPESET_JS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
    if (MathJax.typesetPromise) { await MathJax.typesetPromise(); }
  }
  const article = document.querySelector('article') || document.body;
  const clone = article.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, .highlight').forEach(e => e.remove());
  return {
    text: clone.innerText,
    mathjax: !!(window.MathJax && MathJax.startup),
    formulas: document.querySelectorAll('mjx-container').length,
    images: Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete,
                                                   i.naturalWidth, i.getAttribute('alt'),
                                                   i.getAttribute('src')]),
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')),
    widgets: document.querySelectorAll('.jupyter-widgets, .widget-area').length,
    scrolled: Array.from(document.querySelectorAll('div.cell_input pre'))
        .filter(p => p.scrollWidth > p.clientWidth + 1)
        .map(p => p.innerText.split('\\n').reduce((a, b) => a.length >= b.length ? a : b, '')),
    emptyWidgets: Array.from(document.querySelectorAll(
        'script[type="application/vnd.jupyter.widget-view+json"]')).length,
  };
}"""


@pytest.mark.browser
@pytest.mark.parametrize("page_name", PAGES)
def test_page(browser, site, page_name):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}")
            if r.status >= 400 else None)
    url = urljoin(site, f"{page_name}.html")
    response = page.goto(url, wait_until="networkidle")
    assert response is not None and response.ok, f"{url} did not load"
    info = page.evaluate(TYPESET_JS)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / (page_name.replace("/", "__") + ".png")), full_page=True)
    page.close()

    assert not problems, "\n".join(problems)
    raw = [t for t in (r"\(", r"\[", "$$", r"\begin{") if t in info["text"]]
    assert not raw, f"untypeset TeX {raw} on {page_name}"
    if "$" in _source_text(page_name):
        assert info["mathjax"] and info["formulas"] > 0, f"no typeset formula on {page_name}"
    broken = [src for src, complete, width, *_ in info["images"] if not complete or width == 0]
    assert not broken, f"images that did not load: {broken}"
    undescribed = [f"{src}: alt={alt!r}" for src, _, _, alt, attr in info["images"]
                   if not _describes(alt, attr)]
    assert not undescribed, (f"images without a description on {page_name} (give the cell "
                             'metadata {"mystnb": {"image": {"alt": "..."}}}): '
                             + "; ".join(undescribed))
    assert not info["scrolled"], ("code cells whose lines are hidden off to the right (longest "
                                  f"line shown): {info['scrolled']}")
    assert info["emptyWidgets"] == 0, "a widget view without its JavaScript shows an empty box"

    bad_links = [h for h in info["links"] if not _internal_link_ok(url, h)]
    assert not bad_links, f"internal links that do not resolve: {bad_links}"

    if (ROOT / f"{page_name}.ipynb").exists():
        repo, branch = repository()
        slug = urlparse(repo).path.strip("/")
        colab = f"https://colab.research.google.com/github/{slug}/blob/{branch}/{page_name}.ipynb"
        binder = (f"https://mybinder.org/v2/gh/{slug}/{branch}"
                  f"?urlpath=tree/{page_name}.ipynb")
        assert colab in info["links"], f"no Colab link {colab}"
        assert binder in info["links"], f"no Binder link {binder}"


def _describes(alt: str | None, src: str | None) -> bool:
    """Whether an <img>'s alt text is a description, not missing or one of the defaults."""
    alt = (alt or "").strip()
    if not alt or alt.startswith("<Figure"):
        return False  # missing, empty, or matplotlib's repr
    # Sphinx writes the image's own path when a notebook cell gives no alt text
    return alt != (src or "") and not re.search(r"\.(png|jpe?g|gif|svg)$", alt, re.I)


def _source_text(page_name: str) -> str:
    for ext in (".md", ".ipynb"):
        p = ROOT / f"{page_name}{ext}"
        if p.exists():
            return p.read_text()
    return ""


def _internal_link_ok(page_url: str, href: str) -> bool:
    if href.startswith(("mailto:", "javascript:")) or href == "#":
        return True
    target = urlparse(urljoin(page_url, href))
    if target.hostname not in ("127.0.0.1", None):
        return True  # external: not checked offline
    rel = target.path.lstrip("/") or "index.html"
    path = HTML / rel
    if path.is_dir():
        path = path / "index.html"
    if not path.exists():
        return False
    if target.fragment and path.suffix == ".html":
        text = path.read_text(errors="replace")
        return f'id="{target.fragment}"' in text
    return True


@pytest.mark.browser
def test_search_finds_a_chapter_by_a_term_in_its_text(browser, site):
    index = (HTML / "searchindex.js").read_text()
    assert "chapters/00_how_to_use" in index
    page = browser.new_page()
    page.goto(urljoin(site, "search.html?q=colab"), wait_until="networkidle")
    page.wait_for_selector("#search-results li", timeout=15_000)
    hits = page.eval_on_selector_all("#search-results li a", "els => els.map(e => e.href)")
    page.close()
    assert any("00_how_to_use" in h for h in hits), hits
