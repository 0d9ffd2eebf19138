"""What a reader of the built book sees, checked on the sources (no build, no browser needed).

- Every figure has alt text: a code cell with an image output carries cell metadata
  ``{"mystnb": {"image": {"alt": "..."}}}``, which myst-nb writes into the page's ``<img alt>``
  (without it the alt is the image's file name). Describe what the figure shows and what to read
  from it, in a sentence or three of plain text (no TeX). The metadata leaves the outputs alone,
  so adding or editing it needs no re-execution. ``tests/test_browser.py`` checks the built pages.
- No heading of a book page holds math: the page's "Contents" sidebar shows headings as plain
  text, so ``### Why $\\theta$ ...`` appears there as raw ``\\(\\theta\\)``. Write the symbol in
  words or Unicode (θ, 2ⁿ) or in italics (``*z*``).
- No notebook code line is longer than 100 columns (ruff's limit for ``lib``, ``tests`` and
  ``tools``; ruff does not check notebooks): the page shows a code cell at a fixed width and a
  longer line is cut off behind a scroll bar.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_COLUMNS = 100


def book_pages() -> list[Path]:
    """The source of every page of _toc.yml (its root and every ``file:``), .ipynb or .md."""
    text = (ROOT / "_toc.yml").read_text()
    names = [re.search(r"^root:\s*(\S+)", text, re.M).group(1),
             *re.findall(r"^\s*-\s*file:\s*(\S+)\s*$", text, re.M)]
    pages = []
    for name in names:
        found = [ROOT / f"{name}{ext}" for ext in (".ipynb", ".md")
                 if (ROOT / f"{name}{ext}").exists()]
        assert found, f"{name} in _toc.yml has no source"
        pages.append(found[0])
    return pages


PAGES = book_pages()
NOTEBOOKS = [p for p in PAGES if p.suffix == ".ipynb"]


def _id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _markdown_sources(path: Path) -> list[tuple[str, str]]:
    """(where, text) of each markdown part of a page: the file, or each markdown cell."""
    if path.suffix == ".md":
        return [(_id(path), path.read_text())]
    cells = json.loads(path.read_text())["cells"]
    return [(f"{_id(path)} cell {i}", "".join(c["source"]))
            for i, c in enumerate(cells) if c["cell_type"] == "markdown"]


def headings(text: str) -> list[str]:
    """The ATX headings (``#`` to ``######``) of a markdown text, outside fenced code blocks."""
    found, fence = [], None
    for line in text.splitlines():
        stripped = line.lstrip()
        marker = re.match(r"(`{3,}|~{3,})", stripped)
        if marker:
            if fence is None:
                fence = marker.group(1)[0] * len(marker.group(1))
            elif stripped.startswith(fence):
                fence = None
            continue
        if fence is None and re.match(r" {0,3}#{1,6}(\s|$)", line):
            found.append(line.strip())
    return found


def test_headings_helper_skips_code_and_finds_headings():
    text = "# Title\nprose\n```python\n# a comment, not a heading\n```\n## Why $x$\n#hashtag\n"
    assert headings(text) == ["# Title", "## Why $x$"]


@pytest.mark.parametrize("path", PAGES, ids=_id)
def test_no_math_in_headings(path):
    bad = [f"{where}: {h}" for where, text in _markdown_sources(path) for h in headings(text)
           if "$" in h or "\\(" in h or "\\[" in h]
    assert not bad, ("math in a heading shows as raw TeX in the page's Contents sidebar; write "
                     "it in words or Unicode (θ, 2ⁿ) or italics (*z*):\n" + "\n".join(bad))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_code_lines_fit(path):
    cells = json.loads(path.read_text())["cells"]
    long = [f"cell {i}, line {j + 1}: {len(line)} columns: {line.strip()[:60]}..."
            for i, c in enumerate(cells) if c["cell_type"] == "code"
            for j, line in enumerate("".join(c["source"]).expandtabs(4).splitlines())
            if len(line) > MAX_COLUMNS]
    assert not long, (f"code lines over {MAX_COLUMNS} columns are cut off on the page; wrap "
                      "them (comments and line breaks only, so outputs stay the same):\n"
                      + "\n".join(long))


#: Shorter than this, an alt text cannot say what a figure shows and what to read from it.
MIN_ALT = 40


def alt_problem(alt, outputs) -> str | None:
    """Why ``alt`` is not a description of a figure, or None when it is one."""
    if not isinstance(alt, str) or not alt.strip():
        return "no alt text"
    alt = alt.strip()
    reprs = {"".join(o.get("data", {}).get("text/plain", "")).strip() for o in outputs}
    if alt.startswith("<Figure") or alt in reprs:
        return f"the matplotlib repr {alt!r} is not a description"
    if re.search(r"\.(png|jpe?g|svg|gif)$", alt, re.I) or " " not in alt:
        return f"a file name {alt!r} is not a description"
    if "$" in alt or "\\" in alt:
        return "alt text is read out as plain text: write symbols in Unicode, not TeX"
    if len(alt) < MIN_ALT:
        return f"{alt!r} is too short to say what the figure shows ({MIN_ALT} characters at least)"
    return None


def test_alt_problem_rejects_the_defaults():
    figure = [{"data": {"image/png": "...", "text/plain": ["<Figure size 640x360 with 1 Axes>"]}}]
    assert alt_problem(None, figure) == "no alt text"
    assert alt_problem("  ", figure) == "no alt text"
    assert "repr" in alt_problem("<Figure size 640x360 with 1 Axes>", figure)
    assert "file name" in alt_problem("../_images/0a1b2c.png", figure)
    assert "Unicode" in alt_problem("The variance of the estimate falls as $1/n$ with n.", figure)
    assert "too short" in alt_problem("A plot.", figure)
    assert "file name" in alt_problem("_images/0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e", figure)
    assert alt_problem("1/n: the variance of the estimate against n, falling.", figure) is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_every_figure_has_alt_text(path):
    cells = json.loads(path.read_text())["cells"]
    bad = []
    for i, cell in enumerate(cells):
        outputs = cell.get("outputs", [])
        if not any(k.startswith("image/") for o in outputs for k in o.get("data", {})):
            continue
        alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt")
        problem = alt_problem(alt, outputs)
        if problem:
            bad.append(f"cell {i}: {problem}")
    assert not bad, ('a figure needs alt text in its cell metadata, '
                     '{"mystnb": {"image": {"alt": "what it shows and what to read from it"}}}:\n'
                     + "\n".join(bad))
