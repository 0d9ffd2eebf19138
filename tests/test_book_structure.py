"""The book's files agree with each other: toc, set-up cells, generated exercises, metadata."""

import json
import re
from pathlib import Path

import pytest

from lib.grading import build, list_sets
from tools import setup_cell, student_toc

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = setup_cell.notebooks()


def toc_files(text):
    return re.findall(r"^\s*-\s*file:\s*(\S+)\s*$", text, re.M)


def test_toc_lists_every_notebook_and_only_existing_files():
    listed = toc_files((ROOT / "_toc.yml").read_text())
    for f in listed:
        assert (ROOT / f"{f}.ipynb").exists() or (ROOT / f"{f}.md").exists(), f"{f} missing"
    for nb in NOTEBOOKS:
        rel = nb.relative_to(ROOT).with_suffix("").as_posix()
        assert rel in listed, f"{rel} is not in _toc.yml (it would not be built)"


def test_student_toc_has_no_solutions():
    student = student_toc.student_toc((ROOT / "_toc.yml").read_text())
    files = toc_files(student)
    assert files and not [f for f in files if f.startswith("solutions/")]
    assert [f for f in files if f.startswith("exercises/")]
    full = toc_files((ROOT / "_toc.yml").read_text())
    assert set(full) - set(files) == {f for f in full if f.startswith("solutions/")}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_is_current(path):
    cells = json.loads(path.read_text())["cells"]
    assert setup_cell.TAG in cells[0]["metadata"].get("tags", []), "cell 0 is not the set-up cell"
    assert "".join(cells[0]["source"]) == setup_cell.source(), (
        "stale set-up cell: run `python -m tools.setup_cell`")


def test_setup_cell_uses_repository_from_config():
    url, branch = setup_cell.repository()
    assert f"git+{url}@{branch}" in setup_cell.source()
    assert branch == "main"


def test_exercises_are_generated_from_solutions():
    stale = build.build(ROOT, check=True)
    assert not stale, f"out of date: {stale}; run `make exercises`"


def test_every_set_has_a_solution_notebook_and_vice_versa():
    sets = {}
    for nb in sorted((ROOT / "solutions").glob("*.ipynb")):
        sets[json.loads(nb.read_text())["metadata"].get("exercise_set")] = nb
    assert None not in sets, "a solution notebook lacks exercise_set metadata"
    assert set(sets) == set(list_sets())


@pytest.mark.parametrize("path", sorted((ROOT / "exercises").glob("*.ipynb")), ids=lambda p: p.name)
def test_exercises_carry_no_solutions_or_outputs(path):
    text = path.read_text()
    assert not re.search(r"BEGIN SOLUTION|END SOLUTION|#\s*SOLUTION\b", text)
    for cell in json.loads(text)["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if p.parent.name != "exercises"], ids=lambda p: p.name)
def test_committed_notebooks_have_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    unrun = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not unrun, f"code cells {unrun} were not executed; run `python -m tools.execute`"


def test_how_to_use_names_every_public_module_of_lib():
    """Chapter 00 introduces the package module by module (issue 13: it once listed 7 of 15);
    a module added to lib must be named there too."""
    nb = json.loads((ROOT / "chapters" / "00_how_to_use.ipynb").read_text())
    text = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    lib = ROOT / "lib"
    modules = {p.stem for p in lib.glob("*.py") if not p.name.startswith("_")}
    modules |= {p.name for p in lib.iterdir() if (p / "__init__.py").exists()}
    missing = sorted(m for m in modules if f"`lib.{m}`" not in text)
    assert not missing, f"chapters/00_how_to_use.ipynb does not name: {missing}"
