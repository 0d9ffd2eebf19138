"""A Gradescope autograder for the book's exercise notebooks.

Two commands::

    python -m lib.grading.gradescope build OUT.zip --set SET [--extra hidden.py ...]
    python -m lib.grading.gradescope run SUBMISSION_DIR RESULTS.json [--set SET] [--extra ...]

``build`` writes the zip that Gradescope's "Programming Assignment" autograder accepts: at its
root ``setup.sh`` (installs bubblewrap, then the book's package from the wheel inside the zip
and what every set needs, at the versions of ``constraints.txt``) and ``run_autograder`` (grades
the notebook in ``/autograder/submission`` and writes ``/autograder/results/results.json`` in
Gradescope's format). A zip is pinned to one exercise set, the assignment's: a notebook of
another set scores 0. ``build`` works from a checkout and from an installed wheel. Hidden checks
given with ``--extra`` are copied into the zip; their results stay hidden from students until
grades are published.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Optional, Sequence

from lib.grading.isolation import kill_free_uids
from lib.grading.runner import grade_notebook, is_notebook, preload
from lib.grading.sets import get_set, list_sets, load_extra

__all__ = ["results_for", "run", "build_bundle"]

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when the autograder image is built (Ubuntu, as root, with internet).
set -euo pipefail
cd /autograder/source
# bubblewrap: the sandbox each submission runs in (the grader falls back to a dedicated uid
# with resource limits where it cannot start, and says so in the output).
if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap \\
        >/dev/null || true
fi
python3 -m pip install --quiet --upgrade pip
# Exactly the versions the book was developed and tested with (constraints.txt); the CPU build
# of PyTorch is enough for grading and far smaller than the default CUDA build.
python3 -m pip install --quiet -c constraints.txt torch \\
    --index-url https://download.pytorch.org/whl/cpu
python3 -m pip install --quiet -c constraints.txt ./*.whl {requirements} \\
    --extra-index-url https://download.pytorch.org/whl/cpu
"""

#: What every exercise set needs beyond the package's own dependencies (the notebooks run
#: under IPython; categorical_vae's probes use scikit-learn).
GRADING_REQUIREMENTS = ("ipython", "scikit-learn")

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
cd "$ROOT/source"
EXTRA=()
for f in hidden/*.py; do [ -e "$f" ] && EXTRA+=(--extra "$f"); done
mkdir -p "$ROOT/results"
"${PYTHON:-python3}" -m lib.grading.gradescope run "$ROOT/submission" \\
    "$ROOT/results/results.json" --set "$(cat assignment_set.txt)" "${EXTRA[@]}"
"""


def results_for(submission_dir: Path, extra: Sequence[Path] = (),
                exercise_set: Optional[str] = None) -> dict:
    """Gradescope's results.json content for the notebook found in ``submission_dir``.

    ``exercise_set`` pins the assignment: a notebook of another set scores 0.
    """
    notebooks = sorted(p for p in Path(submission_dir).rglob("*") if is_notebook(p))
    notebooks = [p for p in notebooks if ".ipynb_checkpoints" not in p.parts]
    if not notebooks:
        return {"score": 0, "output": "No .ipynb file was found in the submission.",
                "tests": []}
    sub = grade_notebook(notebooks[0], extra=list(extra), expected_set=exercise_set)
    output = [f"Graded {notebooks[0].name}: status {sub.status}."]
    output += [f"Note: {n}" for n in sub.notes]
    if sub.layer:
        output.append(f"Isolation: {sub.layer}.")
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
            "output": (f"passed. Note: {r.message}" if r.passed and r.message
                       else r.message or "passed"),
            "visibility": "after_published" if q is not None and q.hidden else "visible",
        })
    return {"score": sub.total, "output": "\n".join(output), "tests": tests}


def run(submission_dir: Path, results_path: Path, extra: Sequence[Path] = (),
        exercise_set: Optional[str] = None) -> dict:
    """Grade and write results.json (never raises for a bad submission).

    Every process the submission started is dead before results.json is written (the sandbox
    kills its whole process tree, and :func:`lib.grading.isolation.kill_free_uids` every process of
    the dedicated uids), and the file is written by rename, so nothing can rewrite it after.
    """
    for path in extra:
        load_extra(path)
    preload()
    results = results_for(submission_dir, extra, exercise_set)
    kill_free_uids(4)
    results_path = Path(results_path)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = results_path.with_name(results_path.name + ".part")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, results_path)
    return results


def _package_source(src: Path, root: Optional[Path]) -> None:
    """Copy the package into ``src`` as a buildable project: the repository's pyproject when
    there is one, else (an installed wheel) a pyproject made from the installed metadata."""
    package = Path(__file__).resolve().parents[1]
    shutil.copytree(package, src / "lib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if root is not None and (root / "pyproject.toml").is_file():
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (root / name).exists():
                shutil.copy2(root / name, src / name)
        return
    meta = importlib.metadata.metadata(DISTRIBUTION)
    deps = [r for r in (meta.get_all("Requires-Dist") or []) if "extra ==" not in r]
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\n'
        'build-backend = "setuptools.build_meta"\n\n[project]\n'
        f'name = "{DISTRIBUTION}"\nversion = "{meta["Version"]}"\n'
        f'requires-python = ">=3.10"\ndependencies = {json.dumps(deps)}\n\n'
        '[tool.setuptools.packages.find]\ninclude = ["lib", "lib.*"]\n\n'
        '[tool.setuptools.package-data]\n"lib" = ["py.typed", "data/*"]\n')


def constraints_text(root: Optional[Path]) -> str:
    """The exact versions to install on Gradescope: the repository's constraints.txt, or
    (from an installed wheel) the versions installed here."""
    if root is not None and (root / "constraints.txt").is_file():
        return (root / "constraints.txt").read_text()
    lines = []
    for dist in sorted(importlib.metadata.distributions(),
                       key=lambda d: d.metadata["Name"].lower()):
        name = dist.metadata["Name"]
        if name and name.lower() != DISTRIBUTION:
            lines.append(f"{name}=={dist.version.split('+')[0]}")
    return "\n".join(sorted(set(lines))) + "\n"


DISTRIBUTION = "discrete-choices-book"


def build_bundle(out_zip: Path, extra: Sequence[Path] = (), root: Path | None = None,
                 exercise_set: str = "") -> Path:
    """Write the Gradescope autograder zip for one exercise set (see the module docstring)."""
    get_set(exercise_set)  # ValueError naming the known sets
    if root is None:
        candidate = Path(__file__).resolve().parents[2]
        root = candidate if (candidate / "pyproject.toml").is_file() else None
    out_zip = Path(out_zip)
    with tempfile.TemporaryDirectory() as tmp:
        # Build from a clean copy of the package sources: setuptools leaves a build/ folder
        # next to the sources, which must not appear in (or go stale in) the repository.
        src = Path(tmp) / "src"
        src.mkdir()
        _package_source(src, root)
        wheels = Path(tmp) / "wheels"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                        "--wheel-dir", str(wheels), str(src)],
                       check=True, capture_output=True)
        wheel = next(wheels.glob("*.whl"))
        out_zip.parent.mkdir(parents=True, exist_ok=True)
        setup = SETUP_SH.replace("{requirements}", " ".join(GRADING_REQUIREMENTS))
        with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as z:
            for name, text in (("setup.sh", setup), ("run_autograder", RUN_AUTOGRADER)):
                info = zipfile.ZipInfo(name)
                info.external_attr = 0o755 << 16  # executable
                z.writestr(info, text)
            z.writestr("constraints.txt", constraints_text(root))
            z.writestr("assignment_set.txt", exercise_set + "\n")
            z.write(wheel, wheel.name)
            for path in extra:
                z.write(path, f"hidden/{Path(path).name}")
    return out_zip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.grading.gradescope", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the autograder zip of one exercise set")
    b.add_argument("out_zip")
    b.add_argument("--set", required=True, dest="exercise_set",
                   help=f"the assignment's exercise set: {', '.join(list_sets())}")
    b.add_argument("--extra", action="append", default=[])
    r = sub.add_parser("run", help="grade one submission folder")
    r.add_argument("submission_dir")
    r.add_argument("results_json")
    r.add_argument("--set", default=None, dest="exercise_set",
                   help="grade only notebooks of this exercise set")
    r.add_argument("--extra", action="append", default=[])
    args = ap.parse_args(argv)
    if args.command == "build":
        out = build_bundle(Path(args.out_zip), [Path(p) for p in args.extra],
                           exercise_set=args.exercise_set)
        print(f"Gradescope autograder: {out}")
    else:
        res = run(Path(args.submission_dir), Path(args.results_json),
                  [Path(p) for p in args.extra], args.exercise_set)
        print(f"score {res['score']:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

