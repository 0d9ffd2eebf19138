"""A Gradescope autograder for the book's exercise notebooks.

Two commands::

    python -m lib.grading.gradescope build OUT.zip [--extra hidden.py ...]
    python -m lib.grading.gradescope run SUBMISSION_DIR RESULTS.json [--extra hidden.py ...]

``build`` writes the zip that Gradescope's "Programming Assignment" autograder accepts: at its
root ``setup.sh`` (installs the book's package from the wheel inside the zip) and
``run_autograder`` (grades the notebook in ``/autograder/submission`` and writes
``/autograder/results/results.json`` in Gradescope's format). One zip serves every exercise set:
the set is detected from the submitted notebook. Hidden checks given with ``--extra`` are copied
into the zip; their results stay hidden from students until grades are published.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

from lib.grading.runner import grade_notebook
from lib.grading.sets import get_set, load_extra

__all__ = ["results_for", "run", "build_bundle"]

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when the autograder image is built (Ubuntu, with internet).
set -euo pipefail
cd /autograder/source
python3 -m pip install --quiet --upgrade pip
# The CPU build of PyTorch is enough for grading and far smaller than the default CUDA build.
python3 -m pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu
python3 -m pip install --quiet ./*.whl ipython
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
cd "$ROOT/source"
EXTRA=()
for f in hidden/*.py; do [ -e "$f" ] && EXTRA+=(--extra "$f"); done
mkdir -p "$ROOT/results"
"${PYTHON:-python3}" -m lib.grading.gradescope run "$ROOT/submission" \\
    "$ROOT/results/results.json" "${EXTRA[@]}"
"""


def results_for(submission_dir: Path, extra: Sequence[Path] = ()) -> dict:
    """Gradescope's results.json content for the notebook found in ``submission_dir``."""
    notebooks = sorted(Path(submission_dir).rglob("*.ipynb"))
    notebooks = [p for p in notebooks if ".ipynb_checkpoints" not in p.parts]
    if not notebooks:
        return {"score": 0, "output": "No .ipynb file was found in the submission.",
                "tests": []}
    sub = grade_notebook(notebooks[0], extra=list(extra))
    output = [f"Graded {notebooks[0].name}: status {sub.status}."]
    output += [f"Note: {n}" for n in sub.notes]
    if len(notebooks) > 1:
        output.append(f"{len(notebooks)} notebooks were submitted; only the first was graded.")
    tests = []
    questions = get_set(sub.exercise_set).questions if sub.exercise_set else {}
    for r in sub.results:
        q = questions.get(r.question)
        tests.append({
            "name": f"{r.question}" + (f": {q.title}" if q is not None and q.title else ""),
            "score": r.points,
            "max_score": r.max_points,
            "output": r.message or "passed",
            "visibility": "after_published" if q is not None and q.hidden else "visible",
        })
    return {"score": sub.total, "output": "\n".join(output), "tests": tests}


def run(submission_dir: Path, results_path: Path, extra: Sequence[Path] = ()) -> dict:
    """Grade and write results.json (never raises for a bad submission)."""
    for path in extra:
        load_extra(path)
    results = results_for(submission_dir, extra)
    Path(results_path).parent.mkdir(parents=True, exist_ok=True)
    Path(results_path).write_text(json.dumps(results, indent=2))
    return results


def build_bundle(out_zip: Path, extra: Sequence[Path] = (), root: Path | None = None) -> Path:
    """Write the Gradescope autograder zip (see the module docstring)."""
    root = Path(root) if root else Path(__file__).resolve().parents[2]
    out_zip = Path(out_zip)
    with tempfile.TemporaryDirectory() as tmp:
        # Build from a clean copy of the package sources: setuptools leaves a build/ folder
        # next to the sources, which must not appear in (or go stale in) the repository.
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            shutil.copy2(root / name, src / name)
        shutil.copytree(root / "lib", src / "lib",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        wheels = Path(tmp) / "wheels"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                        "--wheel-dir", str(wheels), str(src)], check=True,
                       capture_output=True)
        wheel = next(wheels.glob("*.whl"))
        out_zip.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as z:
            for name, text in (("setup.sh", SETUP_SH), ("run_autograder", RUN_AUTOGRADER)):
                info = zipfile.ZipInfo(name)
                info.external_attr = 0o755 << 16  # executable
                z.writestr(info, text)
            z.write(wheel, wheel.name)
            for path in extra:
                z.write(path, f"hidden/{Path(path).name}")
    return out_zip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.grading.gradescope", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the autograder zip")
    b.add_argument("out_zip")
    b.add_argument("--extra", action="append", default=[])
    r = sub.add_parser("run", help="grade one submission folder")
    r.add_argument("submission_dir")
    r.add_argument("results_json")
    r.add_argument("--extra", action="append", default=[])
    args = ap.parse_args(argv)
    if args.command == "build":
        out = build_bundle(Path(args.out_zip), [Path(p) for p in args.extra])
        print(f"Gradescope autograder: {out}")
    else:
        res = run(Path(args.submission_dir), Path(args.results_json),
                  [Path(p) for p in args.extra])
        print(f"score {res['score']:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

