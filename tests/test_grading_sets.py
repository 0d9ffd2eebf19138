"""Every question of every exercise set accepts right answers and rejects typical wrong ones.

The cases live in tests/grading_cases/<set>.py; a new set or question without cases fails here.
These run the question's probe and judge in-process (fast); tests/test_grading_runner.py grades
whole notebooks in the sandbox.
"""

import importlib
import linecache

import pytest

from lib.grading import get_set, list_sets, run_question


def cases_of(name):
    try:
        return importlib.import_module(f"tests.grading_cases.{name}")
    except ModuleNotFoundError:
        return None


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


@pytest.mark.parametrize("name", list_sets())
def test_unanswered_scores_zero(name):
    for q in get_set(name).questions.values():
        namespace = {n: ... for n in q.answers}
        assert run_question(q, namespace).status == "missing"
