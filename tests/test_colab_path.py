"""The Colab path, offline: an exercise notebook opened alone in a fresh Colab-like environment.

The set-up cell must install the book's package (from BOOK_LIB_SOURCE, standing in for GitHub),
after which every ``grader.check`` runs. Built once per test session (about a minute).
"""

import subprocess
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


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_alone_in_a_colab_like_environment(colab, tmp_path, chapter):
    """Every chapter, opened alone like Colab does, runs end to end (errors raise here)."""
    jupyter_path, _, source = colab
    nb = colab_env.run_alone(chapter, tmp_path / "alone", jupyter_path, source)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
