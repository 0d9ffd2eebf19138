"""Every question of every exercise set accepts right answers and rejects typical wrong ones.

The cases live in tests/grading_cases/<set>.py; a new set or question without cases fails here.
These run the question's probe and judge in-process (fast); tests/test_grading_runner.py grades
whole notebooks in the sandbox.
"""

import importlib
import json
import linecache
import re
from pathlib import Path

import pytest

from lib.grading import get_set, list_sets, run_question

ROOT = Path(__file__).resolve().parents[1]


def cases_of(name):
    try:
        return importlib.import_module(f"tests.grading_cases.{name}")
    except ModuleNotFoundError:
        return None


def _solution_sources(name):
    """The model answers of a set: code of marked blocks and `# SOLUTION` lines, and the text of
    marked markdown blocks (written answers, proofs)."""
    code, text, public = [], [], []
    for path in (ROOT / "solutions").glob("*.ipynb"):
        nb = json.loads(path.read_text())
        if nb["metadata"].get("exercise_set") != name:
            continue
        for cell in nb["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "markdown":
                text += re.findall(r"<!-- BEGIN SOLUTION -->(.*?)<!-- END SOLUTION -->", source,
                                   flags=re.S)
                public.append(re.sub(r"<!-- BEGIN SOLUTION -->.*?<!-- END SOLUTION -->", "",
                                     source, flags=re.S))
                continue
            inside = False
            for line in source.splitlines():
                if "# BEGIN SOLUTION" in line:
                    inside = True
                elif "# END SOLUTION" in line:
                    inside = False
                elif inside or line.rstrip().endswith("# SOLUTION"):
                    code.append(line.split("#")[0].strip())
                else:
                    public.append(line)
    return code, text, "\n".join(public)


def solution_lines(name):
    """Code lines of the model answers of a set (marked blocks and `# SOLUTION` lines)."""
    return [line for line in _solution_sources(name)[0] if len(line) >= 16]


def _squash(text):
    """Whitespace and LaTeX spacing removed: `hard + (soft - soft.detach())` and
    `hard+(soft-soft.detach())` compare equal."""
    text = re.sub(r"\\[,;:! ]|\\left|\\right", "", text)
    return re.sub(r"\s+", "", text)


def solution_snippets(name):
    """Pieces of the model answer that a hint must not restate: every code line, the expression
    of each assignment and `return`, and each math expression of a written answer, with
    whitespace removed; only pieces of at least 12 characters with an operator (short or plain
    pieces such as `x = 0.5` or `probs` say nothing). What the question itself shows the
    student (its prompt, the code around the answer) is not a leak."""
    code, text, public = _solution_sources(name)
    shown = _squash(public)
    pieces = set()
    for line in code:
        pieces.add(line)
        m = re.match(r"^(?:return\s+|[\w\[\], .]+?\s*(?:[-+*/]?=)\s*)(.+)$", line)
        if m:
            pieces.add(m.group(1))
    for block in text:
        pieces.update(re.findall(r"\$\$(.+?)\$\$|\$(.+?)\$", block, flags=re.S) and
                      [a or b for a, b in re.findall(r"\$\$(.+?)\$\$|\$(.+?)\$", block,
                                                     flags=re.S)])
    out = set()
    for piece in pieces:
        squashed = _squash(piece)
        if len(squashed) >= 12 and re.search(r"[-+*/@=<>]", squashed) and squashed not in shown:
            out.add(squashed)
    return sorted(out)


def leaks(name, message):
    """The pieces of the model answer that ``message`` restates."""
    flat = _squash(message)
    return [piece for piece in solution_snippets(name) if piece in flat]


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
        leaked = leaks(name, result.message)
        assert not leaked, f"the feedback restates the model answer: {leaked}"


def test_leak_check_catches_restated_lines_and_formulas():
    """The leak check sees a model-answer line or formula restated with other spacing."""
    snippets = solution_snippets("training_gumbel_softmax")
    assert snippets, "no model-answer pieces found"
    line = max(snippets, key=len)
    spaced = " ".join(line)  # every character separated: other whitespace, same code
    assert leaks("training_gumbel_softmax", f"Write it as {spaced}.")
    assert not leaks("training_gumbel_softmax", "Use the gradient of the relaxed sample.")


@pytest.mark.parametrize("name", list_sets())
def test_unanswered_scores_zero(name):
    for q in get_set(name).questions.values():
        namespace = {n: ... for n in q.answers}
        assert run_question(q, namespace).status == "missing"


@pytest.mark.parametrize("name", list_sets())
def test_each_notebook_states_its_questions_time_budget(name):
    """The grader stops an answer cell or a check after the question's budget (issue 14), so
    the notebook must say how long that is."""
    questions = list(get_set(name).questions.values())
    budgets = {q.seconds for q in questions}
    for path in (ROOT / "solutions").glob("*.ipynb"):
        nb = json.loads(path.read_text())
        if nb["metadata"].get("exercise_set") != name:
            continue
        markdown = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
        text = " ".join(markdown)
        for budget in budgets:
            assert f"up to {budget:g} s" in text, f"{path.name} does not state {budget:g} s"
        usual = max(budgets, key=lambda b: sum(q.seconds == b for q in questions))
        for q in questions:  # a question with a budget of its own says so in its prompt
            if q.seconds != usual:
                number = q.name.removeprefix("q")
                prompt = next(m for m in markdown if m.startswith(f"## Question {number}:"))
                assert f"up to {q.seconds:g} s" in prompt, (path.name, q.name)


def test_straight_through_q3_advises_on_what_it_cannot_see():
    """Issue 14: the sample count of st_mean cannot be observed, so a closed-form answer gets
    the points with a note (advisory), not a deduction, and the note is printed."""
    from lib.grading.core import format_result

    mod = cases_of("straight_through")
    namespace = {}
    exec(mod.PREAMBLE + mod.CASES["q3"]["right"][0], namespace)
    result = run_question(get_set("straight_through").questions["q3"], namespace)
    assert result.passed and "SIMULATE" in result.message
    assert "Note:" in format_result(result)


def test_categorical_vae_q2_model_does_not_depend_on_the_default_dtype():
    """The probe builds q2's model in the notebook's process, the judge's reference in the
    grader's: a notebook that set float64 as torch's default dtype (as the chapters do) once
    got a different model there, and the solution scored 0 on q2 when graded alone."""
    import torch

    from lib.grading.sets.categorical_vae import q2_model_and_images

    before = torch.get_default_dtype()
    reference = [p.detach().clone() for p in q2_model_and_images()[0].parameters()]
    torch.set_default_dtype(torch.float64)
    try:
        other = [p.detach() for p in q2_model_and_images()[0].parameters()]
        assert torch.get_default_dtype() == torch.float64  # restored as it was
    finally:
        torch.set_default_dtype(before)
    assert all(torch.equal(a, b) for a, b in zip(reference, other))
