"""Every question of every exercise set accepts right answers and rejects typical wrong ones.

The cases live in tests/grading_cases/<set>.py; a new set or question without cases fails here.
These run the question's probe and judge in-process (fast); tests/test_grading_runner.py grades
whole notebooks in the sandbox.
"""

import importlib
import json
import linecache
from pathlib import Path

import pytest

from lib.grading import get_set, list_sets, run_question

ROOT = Path(__file__).resolve().parents[1]


def cases_of(name):
    try:
        return importlib.import_module(f"tests.grading_cases.{name}")
    except ModuleNotFoundError:
        return None


def solution_lines(name):
    """Code lines of the model answers of a set (marked blocks and `# SOLUTION` lines)."""
    for path in (ROOT / "solutions").glob("*.ipynb"):
        nb = json.loads(path.read_text())
        if nb["metadata"].get("exercise_set") != name:
            continue
        lines = []
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            inside = False
            for line in "".join(cell["source"]).splitlines():
                if "# BEGIN SOLUTION" in line:
                    inside = True
                elif "# END SOLUTION" in line:
                    inside = False
                elif inside or line.rstrip().endswith("# SOLUTION"):
                    code = line.split("#")[0].strip()
                    if len(code) >= 16:  # short lines ("return x") say nothing
                        lines.append(code)
        return lines
    return []


def all_cases():
    for name in list_sets():
        mod = cases_of(name)
        if mod is None:
            continue
        for q, spec in mod.CASES.items():
            for i, src in enumerate(spec.get("right", [])):
                yield pytest.param(name, q, src, None, id=f"{name}-{q}-right{i}")
            for i, (src, hint) in enumerate(spec.get("wrong", [])):
                yield pytest.param(name, q, src, hint, id=f"{name}-{q}-wrong{i}")


@pytest.mark.parametrize("name", list_sets())
def test_every_question_has_cases(name):
    mod = cases_of(name)
    assert mod is not None, f"tests/grading_cases/{name}.py is missing"
    for q in get_set(name).questions:
        spec = mod.CASES.get(q, {})
        assert len(spec.get("right", [])) >= 1, f"{name}.{q}: needs a right answer case"
        assert len(spec.get("wrong", [])) >= 2, f"{name}.{q}: needs two wrong answer cases"


@pytest.mark.parametrize("name,question,source,hint", list(all_cases()))
def test_case(name, question, source, hint):
    mod = cases_of(name)
    namespace = {}
    code = getattr(mod, "PREAMBLE", "") + source
    filename = f"<cell-{name}-{question}-{abs(hash(source))}>"
    # Like IPython, register the cell's source so inspect.getsource works on its functions.
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    exec(compile(code, filename, "exec"), namespace)
    result = run_question(get_set(name).questions[question], namespace)
    if hint is None:
        assert result.passed, f"a right answer was rejected: {result.message}"
    else:
        assert not result.passed, "a wrong answer passed"
        assert hint.lower() in result.message.lower(), (
            f"expected a hint mentioning {hint!r}, got: {result.message}")
        leaked = [line for line in solution_lines(name) if line in result.message]
        assert not leaked, f"the feedback prints the model answer: {leaked}"


@pytest.mark.parametrize("name", list_sets())
def test_unanswered_scores_zero(name):
    for q in get_set(name).questions.values():
        namespace = {n: ... for n in q.answers}
        assert run_question(q, namespace).status == "missing"


@pytest.mark.parametrize("name", list_sets())
def test_each_notebook_states_its_questions_time_budget(name):
    """The grader stops an answer cell or a check after the question's budget (issue 14), so
    the notebook must say how long that is."""
    budgets = {q.seconds for q in get_set(name).questions.values()}
    for path in (ROOT / "solutions").glob("*.ipynb"):
        nb = json.loads(path.read_text())
        if nb["metadata"].get("exercise_set") != name:
            continue
        text = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        assert len(budgets) == 1, "state each question's own budget in its prompt"
        assert f"up to {budgets.pop():g} s" in text, f"{path.name} does not state the budget"
