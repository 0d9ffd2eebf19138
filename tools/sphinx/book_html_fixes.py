"""A local Sphinx extension with fixes the book's pages need (loaded from _config.yml).

- sphinx-thebe registers its configuration script once per read phase; when Sphinx reads the
  sources twice in one build the same ``const THEBE_JS_URL`` script lands twice on every page
  and the browser reports "Identifier 'THEBE_JS_URL' has already been declared". Identical
  scripts are kept once.
- The page's default colour mode is set (light), which the theme's script expects.
- ``static/book.css``: the book's own style rules (code cells wrap long lines).
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"


def _dedupe_scripts(app, pagename, templatename, context, doctree):  # noqa: ARG001
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        attributes = getattr(js, "attributes", {}) or {}
        # a script registered twice may carry filename None once and "" once: same script
        key = (getattr(js, "filename", None) or "",
               tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    scripts[:] = kept


def _default_mode(app, pagename, templatename, context, doctree):  # noqa: ARG001
    # The theme's script logs "Got invalid theme mode: ." when the page has no default mode
    # (sphinx-book-theme does not pass pydata-sphinx-theme's default_mode option on).
    if not context.get("default_mode"):
        context["default_mode"] = "light"


def _add_static(app):
    app.config.html_static_path.append(str(STATIC))


def setup(app):
    app.connect("builder-inited", _add_static)
    app.add_css_file("book.css")
    app.connect("html-page-context", _dedupe_scripts)
    app.connect("html-page-context", _default_mode, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
