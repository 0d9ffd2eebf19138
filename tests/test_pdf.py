"""The PDF edition (`make pdf`, tools/pdf.py) as a reader meets it.

Every page of _toc.yml is in the PDF, in order, behind a title page and a table of contents;
the page count is the sum of the pages printed; every title is in the text, on the page the table
of contents gives; no raw TeX is left (only what the pages' code shows); every figure of the HTML
is an image in the PDF; no page is blank when rendered; no link points at the local server and
the links between pages land on the right page; the navigation is not printed.

It reads _build/pdf, which `make pdf` writes; where that is missing or older than the HTML of
_build/html (which `make book`, run by `make test` before pytest, writes) it builds it first
(about a minute of two cores' CPU time). It skips with a message where the built book,
poppler-utils or (when the PDF must be built) Chromium is missing, except on CI, where it fails.
"""

from __future__ import annotations

import functools
import html as htmllib
import json
import os
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest

from tools import pdf

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
OUT = ROOT / "_build" / "pdf"
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# One worker runs all of these, so the PDF is built at most once (pytest -n, loadgroup).
pytestmark = [pytest.mark.xdist_group("pdf"), pytest.mark.browser]

TOC = pdf.toc_entries((ROOT / "_toc.yml").read_text())
RAW_TEX = ("\\frac", "\\(", "\\[", "$$", "\\mathbb", "\\begin{")
# What only the web page's navigation shows; none of it may reach the PDF.
NAVIGATION = ("Skip to main content", "Back to top", "Open issue", "Search this book")


def _require(condition: bool, why: str) -> None:
    if not condition:
        if ON_CI:
            pytest.fail(why + " (required on CI)")
        pytest.skip(why)


def _fresh() -> bool:
    """Whether _build/pdf was made after the HTML it prints and the tool that printed it."""
    manifest = OUT / "manifest.json"
    if not (manifest.exists() and (OUT / "book.pdf").exists()):
        return False
    inputs = [ROOT / "_toc.yml", ROOT / "tools" / "pdf.py"]
    inputs += [HTML / f"{name}.html" for _, name in TOC]
    newest = max(p.stat().st_mtime for p in inputs if p.exists())
    return manifest.stat().st_mtime >= newest


def _pages_of(path: Path) -> int:
    out = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", out.stdout, re.M).group(1))


def _norm(text: str) -> str:
    """Text as compared: ligatures and other compatibility characters unfolded, spaces and
    line breaks collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


@pytest.fixture(scope="module")
def book():
    """(manifest, text of each page of book.pdf), building the PDF where it is stale."""
    _require(HTML.joinpath("index.html").exists(), "no built book: run `make book` first")
    _require(all(shutil.which(t) for t in ("pdftoppm", "pdftotext", "pdfinfo")),
             "poppler-utils is not installed (pdftoppm, pdftotext: make pdf-deps)")
    if not _fresh():
        _require(shutil.which("chromium") is not None
                 or shutil.which("chromium-browser") is not None,
                 "Chromium is not installed (Debian package `chromium`: make browser-deps)")
        pdf.build(HTML, OUT, log=lambda message: None)
    manifest = json.loads((OUT / "manifest.json").read_text())
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(OUT / "book.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    pages = text.split("\f")
    if pages and not pages[-1].strip():
        pages.pop()  # pdftotext ends every page, the last one too, with a form feed
    return manifest, pages


def _range(entry) -> range:
    """0-based indices of the pages of ``entry`` in book.pdf."""
    return range(entry["first_page"] - 1, entry["first_page"] - 1 + entry["pages"])


def _source_title(name: str) -> str:
    """The first level-1 heading of a toc page's source (Markdown or notebook)."""
    md, nb = ROOT / f"{name}.md", ROOT / f"{name}.ipynb"
    if md.exists():
        lines = md.read_text().splitlines()
    else:
        cells = json.loads(nb.read_text())["cells"]
        lines = [line for c in cells if c["cell_type"] == "markdown"
                 for line in "".join(c["source"]).splitlines()]
    heading = next(line for line in lines if line.startswith("# "))[2:]
    return re.sub(r"[`*]", "", heading).strip()


def _article(name: str) -> str:
    text = (HTML / f"{name}.html").read_text(errors="replace")
    match = re.search(r"<article\b.*?</article>", text, re.S)
    assert match, f"no <article> in {name}.html"
    return match.group(0)


def _code_text(name: str) -> str:
    """The text of the code blocks and cell outputs of a page's HTML (tags dropped)."""
    blocks = re.findall(r"<pre\b[^>]*>(.*?)</pre>", _article(name), re.S)
    return htmllib.unescape(re.sub(r"<[^>]+>", "", "\n".join(blocks)))


# --- structure ---------------------------------------------------------------------------------


def test_every_toc_page_is_printed_in_order_with_its_title(book):
    manifest, _ = book
    assert [e["file"] for e in manifest["entries"]] == [name for _, name in TOC]
    assert [e["part"] for e in manifest["entries"]] == [part for part, _ in TOC]
    for entry in manifest["entries"]:
        assert _norm(entry["title"]) == _norm(_source_title(entry["file"])), entry["file"]


def test_page_count_is_the_sum_of_the_pages_printed(book):
    manifest, pages = book
    total = _pages_of(OUT / "book.pdf")
    front = _pages_of(OUT / manifest["front"]["pdf"])
    printed = [_pages_of(OUT / e["pdf"]) for e in manifest["entries"]]
    assert front == manifest["front"]["pages"] >= 2  # a title page and the contents
    assert printed == [e["pages"] for e in manifest["entries"]]
    assert total == front + sum(printed) == manifest["pages"] == len(pages)
    first = front + 1
    for entry in manifest["entries"]:
        assert entry["first_page"] == first, entry["file"]
        first += entry["pages"]


def test_title_page_and_table_of_contents(book):
    manifest, pages = book
    config = (ROOT / "_config.yml").read_text()
    assert _norm(pdf.config_value("title", config)) in _norm(pages[0])
    assert _norm(pdf.config_value("author", config)) in _norm(pages[0])
    front = manifest["front"]["pages"]
    contents = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", "-f", "2", "-l",
                               str(front), str(OUT / "book.pdf"), "-"],
                              capture_output=True, text=True, check=True).stdout
    lines = [_norm(line) for line in contents.splitlines() if line.strip()]
    assert lines[0] == "Contents"
    for part in {p for p, _ in TOC if p}:
        assert _norm(part) in lines, part
    for entry in manifest["entries"]:
        # one line per page of the book: its title, then its first page (the dotted leader
        # prints no text)
        assert f"{_norm(entry['title'])} {entry['first_page']}" in lines, entry["title"]


def test_every_title_opens_the_first_page_of_its_chapter(book):
    manifest, pages = book
    whole = _norm(" ".join(pages))
    for entry in manifest["entries"]:
        title = _norm(entry["title"])
        assert title in whole
        # first on its page: nothing (a header, the navigation, launch buttons) above it;
        # compared without spaces and hyphens, which pdftotext drops where a line breaks
        squeeze = functools.partial(re.sub, r"[\s\-]+", "")
        assert squeeze(_norm(pages[entry["first_page"] - 1])).startswith(squeeze(title)), (
            f"{entry['file']}: page {entry['first_page']} does not start with its title")


# --- content -----------------------------------------------------------------------------------


def test_math_is_typeset_no_raw_tex_beyond_what_the_code_shows(book):
    manifest, pages = book
    for entry in manifest["entries"]:
        text = "".join(pages[i] for i in _range(entry))
        code = _code_text(entry["file"])
        for token in RAW_TEX:
            assert text.count(token) <= code.count(token), (
                f"raw TeX {token!r} on the pages of {entry['file']} "
                f"({text.count(token)} in the PDF, {code.count(token)} in its code)")
        if "math notranslate" in _article(entry["file"]):
            assert entry["formulas"] > 0, f"no typeset formula on {entry['file']}"


def _images_on(page) -> set:
    """Identities of the image XObjects a page draws, through nested form XObjects."""
    found, stack, seen = set(), [page.get("/Resources")], set()
    while stack:
        resources = stack.pop()
        if resources is None:
            continue
        xobjects = resources.get_object().get("/XObject")
        if xobjects is None:
            continue
        for ref in xobjects.get_object().values():
            key = getattr(ref, "idnum", id(ref))
            if key in seen:
                continue
            seen.add(key)
            obj = ref.get_object()
            if obj.get("/Subtype") == "/Image":
                found.add(key)
            elif obj.get("/Subtype") == "/Form":
                stack.append(obj.get("/Resources"))
    return found


def test_every_figure_of_the_html_is_an_image_in_the_pdf(book):
    from pypdf import PdfReader

    manifest, _ = book
    reader = PdfReader(str(OUT / "book.pdf"))
    for entry in manifest["entries"]:
        figures = len(re.findall(r'<img\b[^>]*src="[^"]*_images/', _article(entry["file"])))
        drawn = set()
        for i in _range(entry):
            drawn |= _images_on(reader.pages[i])
        assert len(drawn) >= figures, (
            f"{entry['file']}: {figures} figures in the HTML, {len(drawn)} images in the PDF")
    assert sum(e["images"] for e in manifest["entries"]) > 0


def test_no_page_is_blank_when_rendered(book, tmp_path):
    manifest, _ = book
    subprocess.run(["pdftoppm", "-r", "12", "-gray", str(OUT / "book.pdf"), str(tmp_path / "p")],
                   check=True)
    rendered = sorted(tmp_path.glob("p-*.pgm"))
    assert len(rendered) == manifest["pages"]
    blank = []
    for number, path in enumerate(rendered, start=1):
        data = path.read_bytes()
        match = re.match(rb"P5\s+(\d+)\s+(\d+)\s+255\s", data)
        width, height = int(match.group(1)), int(match.group(2))
        pixels = data[match.end():]
        body = pixels[: width * int(height * 0.92)]  # above the footer with the page number
        if sum(1 for v in body if v < 200) < 3:
            blank.append(number)
    assert not blank, f"pages with nothing but their footer: {blank}"


def test_navigation_and_launch_buttons_are_not_printed(book):
    _, pages = book
    whole = _norm(" ".join(pages))
    shown = [s for s in NAVIGATION if s in whole]
    shown += re.findall(r"Ctrl \+ K|Ctrl\+K", whole)  # the search box's shortcut
    assert not shown, f"navigation printed: {shown}"


# --- links -------------------------------------------------------------------------------------


def _links(reader):
    """(page index, target page index or None, URI or None) of every link annotation."""
    index = {p.indirect_reference.idnum: i for i, p in enumerate(reader.pages)}
    out = []
    for i, page in enumerate(reader.pages):
        for ref in page.get("/Annots") or []:
            annot = ref.get_object()
            if annot.get("/Subtype") != "/Link":
                continue
            dest, action = annot.get("/Dest"), annot.get("/A")
            action = action.get_object() if action is not None else {}
            if dest is None and action.get("/S") == "/GoTo":
                dest = action.get("/D")
            target = None
            if dest is not None:
                assert not isinstance(dest, str), f"page {i + 1}: a named destination {dest}"
                target = index[dest[0].idnum]
            out.append((i, target, str(action["/URI"]) if "/URI" in action else None))
    return out


def test_links_stay_in_the_pdf_or_go_to_real_sites(book):
    from pypdf import PdfReader

    manifest, _ = book
    links = _links(PdfReader(str(OUT / "book.pdf")))
    assert links
    for page, target, uri in links:
        assert target is not None or uri is not None, f"page {page + 1}: a link to nowhere"
        if uri is not None:
            parsed = re.match(r"^(https?|mailto):(//([^/:]+))?", uri)
            assert parsed, f"page {page + 1}: link to {uri}"
            host = parsed.group(3) or ""
            assert host not in ("127.0.0.1", "localhost") and not host.endswith(".invalid"), (
                f"page {page + 1}: link to {uri}")

    # the contents: one link per page of the book, to its first page
    front = manifest["front"]["pages"]
    from_contents = {t for p, t, _ in links if p < front and t is not None}
    assert {e["first_page"] - 1 for e in manifest["entries"]} <= from_contents

    # a chapter's link to its exercises lands on the exercises' first page
    first = {e["file"]: e["first_page"] - 1 for e in manifest["entries"]}
    checked = 0
    for entry in manifest["entries"]:
        for href in re.findall(r'href="([^"#]+)\.html', _article(entry["file"])):
            target = os.path.normpath(os.path.join(os.path.dirname(entry["file"]), href))
            if target in first and target != entry["file"]:
                assert (first[target] in {t for p, t, _ in links if p in _range(entry)}), (
                    f"{entry['file']} links to {target}: no link to page {first[target] + 1}")
                checked += 1
    assert checked > 0


def test_outline_lists_parts_pages_and_sections_at_their_pages(book):
    from pypdf import PdfReader

    manifest, pages = book
    reader = PdfReader(str(OUT / "book.pdf"))
    titles, sections = {}, []

    def walk(items, depth):
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            page = reader.get_destination_page_number(item)
            titles.setdefault(_norm(item.title), page)
            if depth == 2:  # part > page > section
                sections.append((item.title, page))

    walk(reader.outline, 0)
    for entry in manifest["entries"]:
        assert titles.get(_norm(entry["title"])) == entry["first_page"] - 1, entry["title"]
    # a section's bookmark goes where the section is: this resolves Chromium's named
    # destinations, as links from one page to a section of another do
    assert len(sections) > len(manifest["entries"])
    squeeze = functools.partial(re.sub, r"[\s\-]+", "")
    for title, page in sections:
        assert squeeze(_norm(title)) in squeeze(_norm(pages[page])), (title, page + 1)


# --- the tool's pieces (no browser) ------------------------------------------------------------


def test_toc_entries_keep_order_parts_and_root():
    text = ('format: jb-book\nroot: index\nparts:\n  - caption: "Part I: A"\n    chapters:\n'
            "      - file: chapters/01_a\n      - file: chapters/02_b\n  - caption: Solutions\n"
            "    chapters:\n      - file: solutions/01_a\n")
    assert pdf.toc_entries(text) == [(None, "index"), ("Part I: A", "chapters/01_a"),
                                     ("Part I: A", "chapters/02_b"),
                                     ("Solutions", "solutions/01_a")]


def test_footers_number_every_page_but_the_title_page():
    out = pdf.footers([None, "Contents", "Chapter"])
    assert out.count('class="p"') == 3
    assert ">2</span>" in out and ">3</span>" in out and ">1</span>" not in out


def test_help_writes_nothing(tmp_path):
    import sys

    done = subprocess.run([sys.executable, "-m", "tools.pdf", "--help", "--out",
                           str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout and not (tmp_path / "out").exists()
