"""The same verdict everywhere (issue 14): every case of tests/grading_cases/ gets the same points
and the same hint from ``grader.check`` in a notebook and from the batch grader (``make grade``).

Cases are packed into notebooks, one case per question each (the k-th right-or-wrong case of
every question of a set), so a child process grades many cases at once. The notebook path runs
the same cells in one namespace here, then ``run_question`` per question, which is what
``grader.check`` does in the student's kernel; the batch path grades the files with
``grade_folder`` (sandboxed children, the judge in this process).
"""

from __future__ import annotations

import json
import linecache
import re
import time

import pytest

from lib.grading import get_set, list_sets, run_question
from lib.grading.runner import grade_folder

from .test_grading_sets import cases_of


def packed_notebooks(name):
    """[(cells, {question: case id})]: notebook k holds the k-th case of every question."""
    mod = cases_of(name)
    per_question = {}
    for q, spec in mod.CASES.items():
        items = [(f"right{i}", src) for i, src in enumerate(spec.get("right", []))]
        items += [(f"wrong{i}", src) for i, (src, _) in enumerate(spec.get("wrong", []))]
        per_question[q] = items
    n = max(len(v) for v in per_question.values())
    out = []
    for k in range(n):
        cells, ids = [getattr(mod, "PREAMBLE", "")], {}
        for q, items in per_question.items():
            if k < len(items):
                ids[q] = items[k][0]
                cells.append(items[k][1])
        out.append((cells, ids))
    return out


def to_notebook(name, cells):
    sources = [f'from lib.grading import Checker\ngrader = Checker("{name}")', *cells]
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {"exercise_set": name},
            "cells": [{"cell_type": "code", "metadata": {}, "execution_count": None,
                       "outputs": [], "source": s} for s in sources]}


def in_notebook(name, cells, tag):
    """What grader.check prints the verdict from: every cell run in one namespace, then each
    question's probe and judge in that namespace."""
    namespace = {"__name__": "__main__"}
    for i, code in enumerate(cells):
        filename = f"<parity-{tag}-{i}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
        try:
            exec(compile(code, filename, "exec"), namespace)
        except Exception:  # noqa: BLE001 - as in a notebook: the cell fails, the rest runs
            pass
    return {q: run_question(question, namespace)
            for q, question in get_set(name).questions.items()}


def _hint(message):
    """The hint with its numbers masked. A wrong answer that draws its own unseeded noise (for
    example torch.rand_like instead of the gumbels passed in) is caught in both places with the
    same points and the same words, but the count it prints ("in 925 of 2000 rows") depends on
    the kernel's random state, which a notebook and a fresh grading process do not share."""
    return re.sub(r"\d+(\.\d+)?(e-?\d+)?", "#", message)


#: The sets with grading cases: one test each, so that pytest-xdist spreads them over the
#: workers (as a single test this was the longest test of the suite, on one worker).
SETS_WITH_CASES = [name for name in list_sets() if cases_of(name) is not None]


def test_every_set_has_grading_cases():
    """A set without tests/grading_cases/ would silently drop out of the parity test."""
    assert SETS_WITH_CASES == list(list_sets())


@pytest.mark.slow
@pytest.mark.parametrize("name", SETS_WITH_CASES)
def test_every_case_gets_the_same_verdict_in_the_notebook_and_in_the_batch(name, tmp_path):
    start = time.monotonic()
    expected, where = {}, {}
    for k, (cells, ids) in enumerate(packed_notebooks(name)):
        stem = f"{name}-{k:02d}"
        (tmp_path / "subs").mkdir(exist_ok=True)
        (tmp_path / "subs" / f"{stem}.ipynb").write_text(json.dumps(to_notebook(name, cells)))
        results = in_notebook(name, cells, stem)
        for q, case in ids.items():
            expected[(stem, q)] = results[q]
            where[(stem, q)] = f"{name}.{q} {case}"
    # one grading child at a time: the test workers already use both cores
    subs = grade_folder(tmp_path / "subs", tmp_path / "grades.csv", quiet=True, jobs=1)
    batch = {}
    for sub in subs:
        stem = sub.path.stem
        for r in sub.results:
            batch[(stem, r.question)] = r
    differ = []
    for key, want in expected.items():
        got = batch.get(key)
        if got is None or (got.points, _hint(got.message)) != (want.points, _hint(want.message)):
            differ.append(f"{where[key]}: notebook {want.points:g} {want.message[:120]!r} / "
                          f"batch {getattr(got, 'points', None)} "
                          f"{getattr(got, 'message', '')[:120]!r}")
    print(f"parity: {len(expected)} cases in {len(subs)} notebooks, "
          f"{time.monotonic() - start:.0f} s")
    assert not differ, "\n".join(differ)
