"""The Gradescope autograder zip: it holds what Gradescope needs and grades like make grade."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from lib.grading import get_set
from lib.grading.gradescope import build_bundle

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = ROOT / "tests" / "fixtures" / "hidden_gumbel_checks.py"


def test_bundle_runs_like_gradescope_and_keeps_hidden_results_hidden(tmp_path):
    bundle = build_bundle(tmp_path / "autograder.zip", [HIDDEN], exercise_set="gumbel_max")
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        assert {"setup.sh", "run_autograder", "hidden/hidden_gumbel_checks.py",
                "constraints.txt", "assignment_set.txt"} <= names
        setup = z.read("setup.sh").decode()
        assert "-c constraints.txt" in setup and "scikit-learn" in setup and "bubblewrap" in setup
        assert z.read("assignment_set.txt").decode().strip() == "gumbel_max"
        assert "torch==" in z.read("constraints.txt").decode()
        assert any(n.endswith(".whl") for n in names)
        assert (z.getinfo("run_autograder").external_attr >> 16) & 0o111  # executable
        z.extractall(tmp_path / "source")
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "answers.ipynb").write_bytes(
        (ROOT / "solutions" / "03_gumbel_max.ipynb").read_bytes())
    env = dict(os.environ, AUTOGRADER_ROOT=str(tmp_path), PYTHON=sys.executable)
    done = subprocess.run(["bash", str(tmp_path / "source" / "run_autograder")], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    tests = {t["name"].split(":")[0]: t for t in results["tests"]}
    visible = get_set("gumbel_max").visible
    assert set(visible) < set(tests) and "q1_tail" in tests
    assert tests["q1_tail"]["visibility"] == "after_published"
    assert all(tests[q]["visibility"] == "visible" for q in visible)
    assert results["score"] == sum(t["max_score"] for t in results["tests"])


def test_an_empty_submission_folder_scores_zero(tmp_path):
    from lib.grading.gradescope import run

    (tmp_path / "sub").mkdir()
    res = run(tmp_path / "sub", tmp_path / "out" / "results.json")
    assert res["score"] == 0 and "No .ipynb" in res["output"]


def test_build_works_from_an_installed_package_without_the_repository(tmp_path):
    """As from a wheel: the package alone on sys.path, no pyproject.toml two folders up."""
    import shutil

    site = tmp_path / "site"
    shutil.copytree(ROOT / "lib", site / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH=str(site))
    done = subprocess.run([sys.executable, "-m", "lib.grading.gradescope", "build",
                           str(tmp_path / "ag.zip"), "--set", "categorical_vae"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "ag.zip") as z:
        assert any(n.endswith(".whl") for n in z.namelist())
        assert "scikit-learn==" in z.read("constraints.txt").decode()
