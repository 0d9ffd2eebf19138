"""The PDF edition of the book (``make pdf``): ``_build/pdf/book.pdf`` from the built HTML.

    python -m tools.pdf [--html _build/html] [--out _build/pdf]

Every page of _toc.yml, the root page first and then the parts in order, is opened in headless
Chromium (Playwright driving the system's Chromium, Debian package ``chromium``) from a local
HTTP server over the HTML that ``make book`` wrote. Before printing, the tool waits until the
bundled MathJax has typeset every formula (and stops with an error if TeX is left raw), every
image has loaded and the fonts are ready; the sidebar, the header with its launch buttons and
the previous/next links are hidden by the print rules below, and code wraps instead of being cut
at the margin. Each page is printed to its own PDF, ``pages/NN_<name>.pdf``.

pypdf then puts a title page and a table of contents (the chapter titles with their page numbers,
each a link) in front, merges the pages, numbers every page after the title page in its footer
(with the chapter's title), and writes a bookmark outline: parts, pages, sections.

Links: a link to another page of the book becomes a link inside the PDF, to the section it names
where that section exists, else to that page's first page; a link within a page stays inside the
PDF; a link to another site stays as it is; a link to a file of the HTML site that the PDF leaves
out (the general index, a source download, an image file) is removed and its text kept. No link
in the PDF points at the local server.

``manifest.json`` beside the PDF lists each printed page of the book: its file, part, title, the
PDF of it under ``pages/``, its first page in book.pdf (1-based) and its number of pages, and the
same for the front matter; ``tests/test_pdf.py`` checks the book against it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import html
import http.server
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlparse

from tools.setup_cell import repository

ROOT = Path(__file__).resolve().parents[1]
#: Links to other pages of the book are marked with this prefix in the browser and turned into
#: in-PDF links when the pages are merged (``.invalid`` can never resolve: RFC 2606).
MARK = "http://book-pdf.invalid/"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MARGIN = {"top": "16mm", "bottom": "18mm", "left": "15mm", "right": "15mm"}
#: Raw TeX that must not survive typesetting (outside code).
RAW_TEX = ("\\(", "\\[", "$$", "\\begin{", "\\frac", "\\mathbb")

# The theme's own print rules hide most of the navigation; these finish the job and make the
# article use the printable width.
PRINT_CSS = """
@page { size: A4; }
html { font-size: 13px !important; }
body { background: white !important; }
.bd-header, .bd-header-announcement, .bd-sidebar-primary, .bd-sidebar-secondary,
.header-article, .header-article-items, .prev-next-area, .prev-next-footer, footer,
.bd-footer, .bd-footer-content, .bd-footer-article, .headerlink, .skip-link,
#pst-back-to-top, .search-button-field, .article-header-buttons, .dropdown-launch-buttons,
.copybtn, .toggle-button, #pst-primary-sidebar-modal, #pst-search-dialog, .bd-search,
.sidebar-toggle, .theme-switch-button, .pst-scrollable-table-container::after {
  display: none !important;
}
.bd-container, .bd-container__inner, .bd-page-width, .bd-main, .bd-main .bd-content,
.bd-article-container, .bd-article, #jb-print-docs-body, main, article {
  margin: 0 !important; padding: 0 !important; max-width: none !important;
  width: auto !important; height: auto !important; overflow: visible !important;
  display: block !important; box-shadow: none !important;
}
pre, pre code, .highlight pre, .output pre {
  white-space: pre-wrap !important; overflow-wrap: anywhere !important;
  word-break: break-word !important; overflow: visible !important; max-height: none !important;
}
/* Code may break across pages (with at least three lines on each side) rather than leave an
   empty box at the foot of a page: the theme keeps code blocks whole and lays them out as flex
   boxes, which Chromium moves to the next page in one piece. */
div.cell, div.cell_input, div.cell_output, div.highlight, div[class*="highlight-"], pre, table {
  break-inside: auto !important;
}
div.cell_input, div.cell_output, div.highlight, div[class*="highlight-"] {
  display: block !important;
}
pre { orphans: 3; widows: 3; }
img, figure, svg, mjx-container[display="true"], .math-wrapper { break-inside: avoid; }
img { max-width: 100% !important; height: auto !important; }
h1, h2, h3, h4, .caption { break-after: avoid; break-inside: avoid; }  /* a heading never splits */
table { max-width: 100% !important; }
.pst-scrollable-table-container, .output, .cell_output { overflow: visible !important; }
"""

PREPARE_JS = """async ({mark, inPdf, rawTex}) => {
  if (document.querySelector('.math, .MathJax, mjx-container, script[type^="math/tex"]')) {
    await MathJax.startup.promise;
    if (MathJax.typesetPromise) { await MathJax.typesetPromise(); }
  }
  for (const img of Array.from(document.images)) {
    img.loading = 'eager';
    if (!img.complete) {
      await new Promise(done => { img.addEventListener('load', done, {once: true});
                                  img.addEventListener('error', done, {once: true}); });
    }
  }
  await document.fonts.ready;
  const article = document.querySelector('article') || document.body;

  // Raw TeX left in the text (code and scripts aside) means MathJax did not finish.
  const clone = article.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, .highlight').forEach(e => e.remove());
  const text = clone.innerText;
  const raw = rawTex.filter(t => text.includes(t));

  const h1 = article.querySelector('h1');
  const titleClone = h1 ? h1.cloneNode(true) : null;
  if (titleClone) { titleClone.querySelectorAll('.headerlink').forEach(e => e.remove()); }
  const title = titleClone ? titleClone.textContent.trim() : document.title;
  const sections = Array.from(article.querySelectorAll('section[id]')).filter(s => {
    const h = s.querySelector(':scope > h2'); return !!h; }).map(s => {
      const h = s.querySelector(':scope > h2').cloneNode(true);
      h.querySelectorAll('.headerlink').forEach(e => e.remove());
      return {id: s.id, title: h.textContent.trim()}; });

  // Links: same page -> kept (Chromium writes an in-PDF link); another page of the book ->
  // marked for the merge; another file of the site -> removed, text kept; other sites -> kept.
  const here = location.href.split('#')[0];
  const counts = {samePage: 0, toBook: 0, external: 0, removed: 0};
  for (const a of Array.from(document.querySelectorAll('a[href]'))) {
    const raw = a.getAttribute('href');
    if (raw.startsWith('#')) { counts.samePage++; continue; }
    let u;
    try { u = new URL(raw, location.href); } catch (e) { continue; }
    if (u.protocol === 'mailto:') { continue; }
    if (u.origin !== location.origin) { counts.external++; continue; }
    const page = u.href.split('#')[0];
    let path = decodeURIComponent(u.pathname.replace(/^\\//, ''));
    if (path === '' || path.endsWith('/')) { path += 'index.html'; }
    const name = path.replace(/\\.html$/, '');
    if (page === here) { a.setAttribute('href', u.hash || '#'); counts.samePage++; }
    else if (path.endsWith('.html') && inPdf.includes(name)) {
      a.setAttribute('href', mark + name + u.hash); counts.toBook++; }
    else {
      if (a.offsetParent !== null) { counts.removed++; }
      const span = document.createElement('span');
      span.className = a.className;
      while (a.firstChild) { span.appendChild(a.firstChild); }
      a.replaceWith(span);
    }
  }

  // Every id of the article becomes a named destination in Chromium's PDF when something links
  // to it: hidden links (clipped to nothing, so they leave no link behind) make every section
  // of every page a target for links from other pages and for the outline.
  const ids = Array.from(article.querySelectorAll('[id]')).map(e => e.id).filter(id => id);
  const holder = document.createElement('div');
  holder.setAttribute('aria-hidden', 'true');
  holder.style.cssText = 'position:absolute;left:0;top:0;width:1px;height:1px;overflow:hidden';
  for (const id of ids) {
    const a = document.createElement('a'); a.href = '#' + id; a.textContent = '.';
    holder.appendChild(a);
  }
  document.body.prepend(holder);

  const images = Array.from(article.querySelectorAll('img')).filter(
      i => i.offsetParent !== null && i.naturalWidth > 0).length;
  return {title, sections, raw, counts, images,
          formulas: document.querySelectorAll('mjx-container').length};
}"""


class BuildError(RuntimeError):
    """The PDF could not be built (a missing book or browser, raw TeX, a broken link)."""


# --- the table of contents -------------------------------------------------------------------


def toc_entries(text: str) -> List[Tuple[Optional[str], str]]:
    """(part caption or None, page) for every page of a _toc.yml text, the root page first."""
    root = re.search(r"^root:\s*(\S+)", text, re.M)
    if not root:
        raise BuildError("_toc.yml has no root page")
    entries: List[Tuple[Optional[str], str]] = [(None, root.group(1))]
    caption = None
    for line in text.splitlines():
        match = re.match(r"^\s*-\s*caption:\s*(.+?)\s*$", line)
        if match:
            caption = match.group(1).strip("\"'")
            continue
        match = re.match(r"^\s*-\s*file:\s*(\S+)\s*$", line)
        if match:
            entries.append((caption, match.group(1)))
    return entries


def config_value(key: str, text: str) -> str:
    """A top-level string of _config.yml (read without a YAML library, as tools.setup_cell)."""
    match = re.search(rf"^{key}:\s*(.*?)\s*$", text, re.M)
    return match.group(1).strip("\"'") if match else ""


# --- the browser -----------------------------------------------------------------------------


def find_chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise BuildError("Chromium is not installed (Debian package `chromium`; "
                         "`make browser-deps` installs it where you are root)")
    return found


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """The base URL of a local HTTP server over ``directory`` (MathJax and fonts need http)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


async def print_page(browser, url: str, out: Path, in_pdf: List[str]) -> dict:
    """Print one page of the book to ``out``; returns what PREPARE_JS found on it."""
    page = await browser.new_page(viewport={"width": 1000, "height": 1400})
    errors: List[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    try:
        # "load": the bundled MathJax is a deferred script, so it has run by then; PREPARE_JS
        # then waits for its typesetting, the images and the fonts.
        response = await page.goto(url, wait_until="load", timeout=120_000)
        if response is None or not response.ok:
            raise BuildError(f"{url} did not load")
        await page.emulate_media(media="print")
        await page.add_style_tag(content=PRINT_CSS)
        info = await page.evaluate(PREPARE_JS, {"mark": MARK, "inPdf": in_pdf,
                                                "rawTex": list(RAW_TEX)})
        if info["raw"]:
            raise BuildError(f"raw TeX {info['raw']} left on {url}: MathJax did not typeset it")
        if errors:
            raise BuildError(f"{url}: " + "; ".join(errors))
        await page.pdf(path=str(out), format="A4", print_background=True, margin=MARGIN)
    finally:
        await page.close()
    return info


async def print_html(browser, content: str, out: Path, margin: Optional[dict] = None) -> None:
    """Print a document made here (front matter, page numbers) to ``out``."""
    page = await browser.new_page()
    try:
        await page.set_content(content, wait_until="load")
        await page.evaluate("async () => { await document.fonts.ready; }")
        await page.pdf(path=str(out), format="A4", print_background=True,
                       margin=margin or MARGIN)
    finally:
        await page.close()


# --- front matter and page numbers -----------------------------------------------------------

FRONT_CSS = """
body { font-family: "Helvetica Neue", Helvetica, Arial, "Liberation Sans", sans-serif;
       color: #222; font-size: 11pt; margin: 0; }
.title-page { height: 250mm; display: flex; flex-direction: column; justify-content: center;
              text-align: center; break-after: page; }
.title-page h1 { font-size: 30pt; margin: 0 0 8mm; }
.title-page .author { font-size: 14pt; margin-bottom: 30mm; }
.title-page .small { font-size: 9.5pt; color: #555; line-height: 1.5; }
h2 { font-size: 18pt; margin: 0 0 6mm; }
.part { font-weight: bold; margin: 5mm 0 1.5mm; break-after: avoid; }
.entry { display: flex; align-items: baseline; margin: 1mm 0 1mm 6mm; }
.entry a { color: #222; text-decoration: none; }
.entry .dots { flex: 1; border-bottom: 1px dotted #999; margin: 0 2mm; }
"""


def front_matter(title: str, author: str, note: str, entries: List[dict]) -> str:
    """HTML of the title page and the table of contents (links marked with MARK)."""
    rows, part = [], object()
    for e in entries:
        if e["part"] != part:
            part = e["part"]
            if part:
                rows.append(f'<div class="part">{html.escape(part)}</div>')
        rows.append(f'<div class="entry"><a href="{MARK}{html.escape(e["file"])}">'
                    f'{html.escape(e["title"])}</a><span class="dots"></span>'
                    f'<span>{e["first_page"]}</span></div>')
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{FRONT_CSS}</style>"
            f"<title>{html.escape(title)}</title></head><body>"
            f'<div class="title-page"><h1>{html.escape(title)}</h1>'
            f'<div class="author">{html.escape(author)}</div>'
            f'<div class="small">{note}</div></div>'
            f'<h2>Contents</h2>{"".join(rows)}</body></html>')


def footers(labels: List[Optional[str]]) -> str:
    """HTML with one A4 page per label: the label and the page number at the foot (none where
    the label is None)."""
    css = ("@page { size: A4; margin: 0; } body { margin: 0; }"
           ".p { height: 290mm; position: relative; break-after: page; overflow: hidden; }"
           ".f { position: absolute; bottom: 0; left: 15mm; right: 15mm; display: flex;"
           " justify-content: space-between; font: 8pt Helvetica, Arial, sans-serif;"
           " color: #666; }")
    pages = []
    for n, label in enumerate(labels, start=1):
        foot = ("" if label is None else
                f'<div class="f"><span>{html.escape(label)}</span><span>{n}</span></div>')
        pages.append(f'<div class="p">{foot}</div>')
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{css}</style></head>"
            f"<body>{''.join(pages)}</body></html>")


# --- merging -----------------------------------------------------------------------------------


def _destinations(reader) -> Dict[str, Tuple[int, float]]:
    """name -> (page index, top) of every named destination Chromium wrote."""
    out = {}
    for name, dest in reader.named_destinations.items():
        try:
            index = reader.get_destination_page_number(dest)
        except Exception:  # noqa: BLE001 - a destination without a page is of no use
            continue
        top = dest.top if dest.top is not None else float(reader.pages[index].mediabox.top)
        out[str(name).lstrip("/")] = (index, float(top))
    return out


def merge(parts: List[Tuple[str, Path]], overlay: Optional[Path], out: Path,
          outline: List[dict], metadata: Dict[str, str]) -> Dict[str, int]:
    """Merge ``parts`` ((key, pdf): the front matter first, then one per page of the book, key
    the page's name) into ``out``: links resolved inside the PDF, page numbers from ``overlay``
    stamped, the outline added. Returns counts of the links found."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import ArrayObject, FloatObject, NameObject, NullObject

    writer = PdfWriter()
    starts: Dict[str, int] = {}
    dests: Dict[str, Dict[str, Tuple[int, float]]] = {}
    owner: List[str] = []
    for key, path in parts:
        reader = PdfReader(str(path))
        starts[key] = len(writer.pages)
        dests[key] = _destinations(reader)
        for page in reader.pages:
            writer.add_page(page)
            owner.append(key)

    def explicit(key: str, fragment: str = ""):
        local, top = dests[key].get(fragment, (0, None)) if fragment else (0, None)
        target = writer.pages[starts[key] + local]
        if top is None:
            top = float(target.mediabox.top)
        return ArrayObject([target.indirect_reference, NameObject("/XYZ"), NullObject(),
                            FloatObject(top), NullObject()])

    counts = {"in_pdf": 0, "external": 0, "dropped": 0}
    for index, page in enumerate(writer.pages):
        annots = page.get("/Annots")
        if not annots:
            continue
        kept = ArrayObject()
        for ref in annots.get_object():
            annot = ref.get_object()
            if annot.get("/Subtype") != "/Link":
                kept.append(ref)
                continue
            action = annot.get("/A")
            action = action.get_object() if action is not None else None
            dest = annot.get("/Dest")
            if dest is None and action is not None and action.get("/S") == "/GoTo":
                dest = action.get("/D")
            uri = str(action.get("/URI")) if action is not None and "/URI" in action else None
            new = None
            if dest is not None and not isinstance(dest, ArrayObject):  # a named destination
                name = str(dest).lstrip("/")
                key = owner[index]
                if name in dests[key]:
                    new = explicit(key, name)
            elif uri is not None and uri.startswith(MARK):
                target, _, fragment = uri[len(MARK):].partition("#")
                if target not in starts:
                    raise BuildError(f"a link to {target}, which is not in the PDF")
                new = explicit(target, fragment)
            elif uri is not None:
                host = urlparse(uri).hostname
                if host in ("127.0.0.1", "localhost"):
                    raise BuildError(f"a link to the local server survived: {uri}")
                counts["external"] += 1
                kept.append(ref)
                continue
            else:
                kept.append(ref)  # an explicit destination already
                counts["in_pdf"] += 1
                continue
            if new is None:
                counts["dropped"] += 1
                continue
            for k in ("/A", "/Dest"):
                if k in annot:
                    del annot[k]
            annot[NameObject("/Dest")] = new
            counts["in_pdf"] += 1
            kept.append(ref)
        page[NameObject("/Annots")] = kept

    if overlay is not None:
        numbers = PdfReader(str(overlay))
        if len(numbers.pages) != len(writer.pages):
            raise BuildError(f"{len(numbers.pages)} footer pages for {len(writer.pages)} pages")
        for page, foot in zip(writer.pages, numbers.pages):
            page.merge_page(foot)

    for item in outline:
        parent = None
        if item.get("part"):
            parent = writer.add_outline_item(title=item["part"],
                                             page_number=starts[item["children"][0]["file"]])
        for child in item["children"]:
            mine = writer.add_outline_item(title=child["title"], page_number=starts[child["file"]],
                                          parent=parent)
            for sec in child.get("sections", []):
                local = dests[child["file"]].get(sec["id"], (0, None))[0]
                writer.add_outline_item(title=sec["title"],
                                        page_number=starts[child["file"]] + local, parent=mine)

    for page in writer.pages:
        page.compress_content_streams()
    writer.compress_identical_objects()
    writer.add_metadata(metadata)
    writer.page_mode = "/UseOutlines"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".pdf.part")
    with open(tmp, "wb") as fh:
        writer.write(fh)
    tmp.replace(out)
    return counts


# --- the whole build -------------------------------------------------------------------------


def page_count(path: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(str(path)).pages)


async def _print_all(base, entries, chromium, pages_dir, out_dir, title, author, note, jobs,
                     log):
    """Print every page (``jobs`` at a time), then the front matter and the page numbers."""
    from playwright.async_api import async_playwright

    names = [name for _, name in entries]
    book: List[Optional[dict]] = [None] * len(entries)
    gate = asyncio.Semaphore(max(1, jobs))
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=FLAGS)
        try:
            async def one(number: int, part: Optional[str], name: str) -> None:
                pdf = pages_dir / f"{number:02d}_{name.replace('/', '__')}.pdf"
                async with gate:
                    info = await print_page(browser, f"{base}{name}.html", pdf, names)
                count = page_count(pdf)
                book[number] = {"file": name, "part": part, "title": info["title"],
                                "pdf": f"pages/{pdf.name}", "pages": count,
                                "sections": info["sections"], "images": info["images"],
                                "formulas": info["formulas"], "links": info["counts"]}
                log(f"  {name}: {count} pages, {info['formulas']} formulas, "
                    f"{info['images']} images")

            await asyncio.gather(*(one(i, part, name)
                                   for i, (part, name) in enumerate(entries)))

            # The front matter's length moves every page number: print it until it is stable.
            front_pdf = pages_dir / "front.pdf"
            front_pages = 2
            for _ in range(4):
                first = front_pages + 1
                for e in book:
                    e["first_page"] = first
                    first += e["pages"]
                await print_html(browser, front_matter(title, author, note, book), front_pdf)
                got = page_count(front_pdf)
                if got == front_pages:
                    break
                front_pages = got
            else:
                raise BuildError("the table of contents' length does not settle")

            labels: List[Optional[str]] = [None] + ["Contents"] * (front_pages - 1)
            for e in book:
                labels += [e["title"]] * e["pages"]
            await print_html(browser, footers(labels), pages_dir / "footers.pdf",
                             margin={"top": "0", "bottom": "0", "left": "0", "right": "0"})
        finally:
            await browser.close()
    return book, front_pages


def build(html_dir: Path = ROOT / "_build" / "html", out_dir: Path = ROOT / "_build" / "pdf",
          toc: Path = ROOT / "_toc.yml", config: Path = ROOT / "_config.yml",
          jobs: int = 2, log=print) -> dict:
    """Build ``out_dir/book.pdf`` from the HTML in ``html_dir``; returns the manifest."""
    if not (html_dir / "index.html").exists():
        raise BuildError(f"no built book in {html_dir}: run `make book` first")
    chromium = find_chromium()
    entries = toc_entries(toc.read_text())
    names = [name for _, name in entries]
    missing = [n for n in names if not (html_dir / f"{n}.html").exists()]
    if missing:
        raise BuildError(f"pages of _toc.yml missing from {html_dir}: {missing}")
    cfg = config.read_text()
    title, author = config_value("title", cfg), config_value("author", cfg)
    # The pages are printed into a private folder and moved to out_dir/pages at the end, so a
    # build running beside this one (make pdf while the test builds) cannot delete them midway.
    out_dir.mkdir(parents=True, exist_ok=True)
    pages_dir = Path(tempfile.mkdtemp(prefix=".pages-", dir=out_dir))

    started = time.monotonic()
    repo, branch = repository()
    note = ("Printed from the HTML edition. The notebooks, the exercises and the book's "
            f"package <code>lib</code> are in the repository<br>"
            f'<a href="{html.escape(repo)}">{html.escape(repo)}</a> (branch '
            f"{html.escape(branch)}).<br>Text: CC BY 4.0. Code: MIT.")
    try:
        with serve(html_dir) as base:
            book, front_pages = asyncio.run(_print_all(
                base, entries, chromium, pages_dir, out_dir, title, author, note, jobs,
                lambda msg: log(f"{msg} ({time.monotonic() - started:.0f} s)")))
        front_pdf, overlay = pages_dir / "front.pdf", pages_dir / "footers.pdf"

        outline: List[dict] = []
        for e in book:
            if outline and outline[-1]["part"] == e["part"] and e["part"] is not None:
                outline[-1]["children"].append(e)
            else:
                outline.append({"part": e["part"], "children": [e]})
        outline.insert(0, {"part": None, "children": [{"file": "front", "title": "Contents"}]})
        pdf = out_dir / "book.pdf"
        part = out_dir / f".book-{os.getpid()}.pdf"
        links = merge([("front", front_pdf)] + [(e["file"], pages_dir / Path(e["pdf"]).name)
                                                for e in book],
                      overlay, part, outline,
                      {"/Title": title, "/Author": author, "/Creator": "tools/pdf.py (Chromium)"})
        os.replace(part, pdf)
        final = out_dir / "pages"
        shutil.rmtree(final, ignore_errors=True)
        pages_dir.rename(final)
    except BaseException:
        shutil.rmtree(pages_dir, ignore_errors=True)
        raise
    manifest = {
        "pdf": "book.pdf", "pages": page_count(pdf),
        "front": {"pdf": "pages/front.pdf", "pages": front_pages},
        "entries": [{k: e[k] for k in ("file", "part", "title", "pdf", "first_page", "pages",
                                       "images", "formulas", "links")} for e in book],
        "links": links, "seconds": round(time.monotonic() - started, 1),
    }
    part = out_dir / f".manifest-{os.getpid()}.json"
    part.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(part, out_dir / "manifest.json")
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.pdf",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html",
                        help="the built HTML book (default: _build/html, from `make book`)")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "pdf",
                        help="folder for book.pdf, manifest.json and pages/ "
                             "(default: _build/pdf)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="pages printed at the same time (default: 2)")
    args = parser.parse_args(argv)
    try:
        manifest = build(args.html, args.out, jobs=args.jobs)
    except BuildError as error:
        print(f"make pdf: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out / 'book.pdf'}: {manifest['pages']} pages, "
          f"{len(manifest['entries'])} pages of the book, {manifest['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
