"""The set-up cell that opens every notebook, written from the repository URL in _config.yml.

Run ``python -m tools.setup_cell`` (or ``make sync-setup``) after changing the repository in
``_config.yml``; ``tests/test_book_structure.py`` fails while any notebook holds an old copy.

The cell checks ``lib.__book__`` (:data:`MARKER`): ``lib`` is a common name, and a ``lib/``
folder in the working directory or another package called ``lib`` would otherwise be imported
silently and fail later with a confusing AttributeError.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIRS = ("chapters", "exercises", "solutions")
TAG = "book-setup"
#: Environment variable that points the set-up cell at a local path or wheel (tests, offline use).
SOURCE_ENV = "BOOK_LIB_SOURCE"

#: The value of ``lib.__book__``: tells this book's package from any other module named ``lib``.
MARKER = "discrete-choices-book"

TEMPLATE = '''\
# Set-up: makes the book's package `lib` importable. It does nothing where `lib` is installed
# (for example after `make lab`); in Colab it installs the package from the repository once.
try:
    import lib
except ImportError:
    import importlib, os, subprocess, sys
    source = os.environ.get("{env}", "git+{url}@{branch}")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", source], check=True)
    importlib.invalidate_caches()
    import lib
if getattr(lib, "__book__", None) != "{marker}":
    raise ImportError(
        f"`import lib` found {{getattr(lib, '__file__', None) or list(lib.__path__)}}, which is "
        "not this book's package. Rename or move that `lib` folder (or uninstall that package), "
        "or install the book's package, then restart the kernel:\\n"
        "    pip install git+{url}@{branch}")'''


def repository() -> tuple[str, str]:
    """(url, branch) of the repository as set in _config.yml (parsed without a YAML library)."""
    text = (ROOT / "_config.yml").read_text()
    block = re.search(r"^repository:\n((?:[ \t]+.*\n?)+)", text, re.M)
    if not block:
        raise SystemExit("_config.yml has no repository: block")
    url = re.search(r"^\s+url:\s*(\S+)", block.group(1), re.M)
    branch = re.search(r"^\s+branch:\s*(\S+)", block.group(1), re.M)
    if not url:
        raise SystemExit("_config.yml: repository.url is missing")
    return url.group(1).rstrip("/"), branch.group(1) if branch else "main"


def source() -> str:
    url, branch = repository()
    return TEMPLATE.format(env=SOURCE_ENV, url=url, branch=branch, marker=MARKER)


def setup_cell() -> dict:
    return {
        "cell_type": "code",
        "id": "book-setup",
        "execution_count": None,
        "metadata": {"tags": [TAG, "remove-cell"]},
        "outputs": [],
        "source": source().splitlines(keepends=True),
    }


def notebooks() -> list[Path]:
    found = []
    for d in NOTEBOOK_DIRS:
        found += sorted(p for p in (ROOT / d).glob("*.ipynb"))
    return found


def sync(path: Path) -> bool:
    """Make cell 0 of ``path`` the current set-up cell; return True when the file changed.

    An existing set-up cell keeps its id, metadata, outputs and execution count: only its
    source is replaced, so the notebook's diff is that source and nothing else.
    """
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    if cells and TAG in cells[0].get("metadata", {}).get("tags", []):
        if "".join(cells[0]["source"]) == source():
            return False
        cells[0]["source"] = setup_cell()["source"]
    else:
        cells.insert(0, setup_cell())
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.setup_cell",
        description="Rewrite cell 0 (the set-up cell) of every notebook in "
                    f"{', '.join(NOTEBOOK_DIRS)}/ from the repository set in _config.yml.")
    parser.parse_args(argv)
    changed = [p for p in notebooks() if sync(p)]
    for p in changed:
        print(f"updated set-up cell: {p.relative_to(ROOT)}")
    if changed and any(p.parent.name != "exercises" for p in changed):
        print("Re-execute the changed chapters/solutions so their stored outputs stay current.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
