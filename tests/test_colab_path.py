"""The Colab path, offline: an exercise notebook opened alone in a fresh Colab-like environment.

The set-up cell must install the book's package (from BOOK_LIB_SOURCE, standing in for GitHub),
after which every ``grader.check`` runs. Built once per test session (about a minute).
"""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import colab_env

ROOT = Path(__file__).resolve().parents[1]

# One worker runs all of these, so the expensive fixture is built once (pytest -n, loadgroup).
pytestmark = pytest.mark.xdist_group("colab")


def test_exercise_notebook_alone_installs_lib_and_runs_every_check(colab, tmp_path):
    jupyter_path, python, source = colab
    exercise = ROOT / "exercises" / "03_gumbel_max.ipynb"
    nb = colab_env.run_alone(exercise, tmp_path / "alone", jupyter_path, source)
    checks = [c for c in nb.cells if c.cell_type == "code" and "grader.check(" in c.source]
    assert checks
    for cell in checks:  # every check ran and reported the unanswered question
        assert "not answered yet" in colab_env.outputs_text(cell), cell.source
    installed = subprocess.run([str(python), "-c", "import lib; print(lib.__file__)"],
                               cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "site-packages" in installed  # installed by the set-up cell, not found in a folder
    torch_after = subprocess.run([str(python), "-m", "pip", "show", "torch"], capture_output=True,
                                 text=True).stdout
    assert "Version: 2.13.0" in torch_after  # the set-up cell did not replace Colab's torch


def test_solution_notebook_alone_passes_its_checks(colab, tmp_path):
    jupyter_path, _, source = colab
    solution = ROOT / "solutions" / "03_gumbel_max.ipynb"
    nb = colab_env.run_alone(solution, tmp_path / "alone", jupyter_path, source)
    checks = [c for c in nb.cells if c.cell_type == "code" and "grader.check(" in c.source]
    assert checks
    for cell in checks:
        text = colab_env.outputs_text(cell)
        assert "passed" in text and "not yet" not in text, text


CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
NOTEBOOKS = sorted(p for folder in ("chapters", "solutions", "exercises")
                   for p in (ROOT / folder).glob("*.ipynb"))
# Running every chapter alone took about ten minutes of CI (and nbval runs each one again). A
# chapter behaves differently alone only if it reads something besides `lib` (a file of the
# repository, a package Colab lacks): the two static tests below check that for every notebook,
# and these run end to end: the first chapter, and the three that read data (through lib).
RUN_ALONE = ["00_how_to_use", "09_case_rationales", "10_case_categorical_vae",
             "15_subsets_of_size_k"]
# What Colab has: the standard library, the packages of colab_env.COLAB_PACKAGES, and IPython
# (with ipykernel); and what the set-up cell installs: lib.
IMPORTABLE = set(sys.stdlib_module_names) | {"lib", "numpy", "scipy", "torch", "matplotlib",
                                             "ipywidgets", "ipykernel", "tqdm", "sklearn",
                                             "IPython"}
# Reading a file or a URL: a notebook opened alone has only itself and what lib ships.
FILE_ACCESS = re.compile(r"\bopen\(|\bPath\(|read_csv|np\.load\(|torch\.load\(|urlopen|"
                         r"\brequests\.|\bos\.listdir|\bglob\.glob|\.read_text\(")
# ... except these, which read data that lib ships (importlib.resources) or the set-up cell.
FILE_ACCESS_ALLOWED = {"10_case_categorical_vae": [".read_text("],
                       "15_subsets_of_size_k": [".read_text("]}


def code_of(notebook: Path) -> list:
    """The code cells of ``notebook``, IPython magics and shell lines dropped."""
    nb = json.loads(notebook.read_text())
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            lines = "".join(cell["source"]).splitlines()
            cells.append("\n".join(line for line in lines
                                   if not line.lstrip().startswith(("%", "!"))))
    return cells


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_notebook_imports_only_what_colab_has(notebook):
    modules = set()
    for source in code_of(notebook):
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    assert not modules - IMPORTABLE, f"not in Colab: {sorted(modules - IMPORTABLE)}"


def test_the_import_check_sees_a_foreign_import(tmp_path):
    """The check above is not vacuous: a notebook importing tools (a folder of this repository,
    absent in Colab) is caught."""
    fake = tmp_path / "fake.ipynb"
    fake.write_text(json.dumps({"cells": [{"cell_type": "code", "source": [
        "import numpy as np\n", "from tools.syllabus import rows\n"]}]}))
    with pytest.raises(AssertionError, match="tools"):
        test_notebook_imports_only_what_colab_has(fake)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_notebook_reads_no_file_of_the_repository(notebook):
    allowed = FILE_ACCESS_ALLOWED.get(notebook.stem, [])
    for source in code_of(notebook)[1:]:  # the set-up cell (first) may look for a checkout
        for hit in FILE_ACCESS.findall(source):
            assert hit in allowed, f"{notebook.name} reads a file: {hit!r} in\n{source[:300]}"


def test_set_up_cell_comes_first_in_every_notebook():
    """The file check above skips the first code cell because it is the set-up cell."""
    for notebook in NOTEBOOKS:
        first = code_of(notebook)[0]
        assert "BOOK_LIB_SOURCE" in first, notebook


@pytest.mark.slow
@pytest.mark.parametrize("chapter", RUN_ALONE)
def test_chapter_runs_alone_in_a_colab_like_environment(colab, tmp_path, chapter):
    """A chapter opened alone like Colab does runs end to end (errors raise here)."""
    jupyter_path, _, source = colab
    nb = colab_env.run_alone(ROOT / "chapters" / f"{chapter}.ipynb", tmp_path / "alone",
                             jupyter_path, source)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


@pytest.mark.slow
def test_every_lib_module_imports_in_the_colab_like_environment(colab, tmp_path):
    """What the chapters that do not run alone here import from lib: every module of the
    installed package imports with Colab's packages only."""
    _, python, source = colab
    probe = [str(python), "-c", "import lib"]
    if subprocess.run(probe, cwd=tmp_path, capture_output=True).returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(source)], check=True)
    code = ("import importlib, pkgutil, lib\n"
            "names = [m.name for m in pkgutil.walk_packages(lib.__path__, 'lib.')]\n"
            "for name in names:\n"
            "    importlib.import_module(name)\n"
            "print(len(names), lib.__file__)")
    done = subprocess.run([str(python), "-c", code], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    count, where = done.stdout.split()
    assert int(count) > 20 and "site-packages" in where
