"""Generate the student notebooks in ``exercises/`` from the solution notebooks in ``solutions/``.

A solution notebook is the single source of an exercise set. Its notebook metadata names the set
(``"exercise_set": "gumbel_max"``), and it marks what students must write:

* code between a line ``# BEGIN SOLUTION`` and a line ``# END SOLUTION`` becomes
  ``...  # YOUR CODE HERE`` (at the indentation of the marker);
* a line ending in ``# SOLUTION`` keeps what precedes its first ``=`` and gets
  ``...  # YOUR CODE HERE`` as the value (``answer = 0.5  # SOLUTION`` -> ``answer = ...``);
* in Markdown, text between ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->`` becomes
  a prompt to write the answer;
* cells tagged ``solution-only`` are dropped; every output is cleared;
* a first heading ``# Solutions: ...`` becomes ``# Exercises: ...``.

``python -m lib.grading.build`` writes ``exercises/``; ``--check`` only reports stale files and
exits 1 (a test runs it).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, List

__all__ = ["student_version", "build", "dumps"]

BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
INLINE = re.compile(r"^(\s*)([^=#]+?=)\s*.*#\s*SOLUTION\s*$")
MD_BLOCK = re.compile(r"<!-- BEGIN SOLUTION -->.*?<!-- END SOLUTION -->", re.S)
PLACEHOLDER = "...  # YOUR CODE HERE"
MD_PLACEHOLDER = "*Write your answer here.*"


def _source(cell: Dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def strip_code(source: str) -> str:
    """Replace the marked solution parts of a code cell's source by placeholders."""
    out: List[str] = []
    inside = False
    for line in source.split("\n"):
        if inside:
            if END.match(line):
                inside = False
            continue
        m = BEGIN.match(line)
        if m:
            inside = True
            out.append(m.group(1) + PLACEHOLDER)
            continue
        m = INLINE.match(line)
        if m:
            out.append(f"{m.group(1)}{m.group(2).rstrip()} {PLACEHOLDER}")
            continue
        out.append(line)
    if inside:
        raise ValueError("a '# BEGIN SOLUTION' has no matching '# END SOLUTION'")
    return "\n".join(out)


def student_version(nb: Dict[str, Any]) -> Dict[str, Any]:
    """The student notebook for a solution notebook (a new dict; the input is not changed)."""
    nb = copy.deepcopy(nb)
    cells = []
    first_heading_done = False
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "solution-only" in tags:
            continue
        src = _source(cell)
        if cell["cell_type"] == "code":
            src = strip_code(src)
            cell["outputs"] = []
            cell["execution_count"] = None
        elif cell["cell_type"] == "markdown":
            src = MD_BLOCK.sub(MD_PLACEHOLDER, src)
            if not first_heading_done and src.lstrip().startswith("#"):
                src = re.sub(r"^(\s*#+\s*)Solutions:", r"\1Exercises:", src, count=1)
                first_heading_done = True
        cell["source"] = src.splitlines(keepends=True)
        cell.get("metadata", {}).pop("execution", None)
        cells.append(cell)
    nb["cells"] = cells
    nb["metadata"].pop("widgets", None)
    return nb


def dumps(nb: Dict[str, Any]) -> str:
    """Serialise like Jupyter does (stable diffs)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def build(root: Path, check: bool = False) -> List[Path]:
    """Write (or with ``check``, compare) every student notebook; return the stale/changed ones."""
    changed = []
    for src in sorted((root / "solutions").glob("*.ipynb")):
        nb = json.loads(src.read_text())
        if "exercise_set" not in nb.get("metadata", {}):
            continue
        target = root / "exercises" / src.name
        text = dumps(student_version(nb))
        if not target.exists() or target.read_text() != text:
            changed.append(target)
            if not check:
                target.parent.mkdir(exist_ok=True)
                target.write_text(text)
    return changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=".", help="the book's root folder")
    ap.add_argument("--check", action="store_true", help="report stale files, write nothing")
    args = ap.parse_args(argv)
    changed = build(Path(args.root), check=args.check)
    verb = "out of date" if args.check else "written"
    for p in changed:
        print(f"{verb}: {p}")
    if args.check and changed:
        print("Run `make exercises` to regenerate them from solutions/.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
