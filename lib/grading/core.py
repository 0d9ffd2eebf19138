"""The pieces every exercise set is built from: questions, mistakes and the notebook checker.

A question is checked in two steps that can run in different processes:

``probe(namespace) -> data``
    Runs where the student's code lives. It looks up the student's answers by name, calls them on
    inputs the question chooses, and returns *plain data*: numbers, strings, numpy arrays and
    lists or dicts of them. It never decides anything.
``judge(data) -> None``
    Decides. It raises :class:`Mistake` with a hint when the answer is wrong, and returns ``None``
    when it is right. It never sees the student's objects, only the data.

In a notebook, :class:`Checker` runs both steps in the student's own kernel, for instant
feedback. The batch grader (:mod:`lib.grading.runner`) runs ``probe`` in a sandboxed child process
and ``judge`` in the grading process itself, which never executes student code: monkey-patching
``numpy.allclose`` or redefining ``grader.check`` inside a submission cannot change a grade.
"""

from __future__ import annotations

import math
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Sequence

import numpy as np

__all__ = [
    "Mistake",
    "Question",
    "ExerciseSet",
    "Result",
    "run_question",
    "Checker",
    "as_float_array",
    "expect_finite",
    "expect_shape",
    "error_data",
]

#: Hints and error texts are cut to this length so that feedback files stay readable.
MAX_MESSAGE = 600


class Mistake(Exception):
    """Raised by a judge: the answer is wrong, and the message says what is likely wrong."""


@dataclass(frozen=True)
class Question:
    """One graded question.

    Args:
        name: short identifier used in ``grader.check(name)`` and in the gradebook (``"q1"``).
        points: the points a right answer earns (all or nothing).
        answers: the names the student defines for this question (``("sample_gumbel",)``).
        probe: ``probe(**answers) -> dict`` (see the module docstring). It receives the
            student's objects as keyword arguments named as in ``answers``.
        judge: ``judge(data) -> None``; raises :class:`Mistake` with a hint when wrong. It may
            return a string instead of None: an advisory note shown with full points (for what
            the check cannot verify by behaviour).
        title: one line shown in feedback.
        hidden: graded by the batch grader and the autograder only; ``grader.check`` in the
            notebook does not run it (instructors keep such checks out of the public package,
            see :func:`lib.grading.sets.load_extra`).
        seconds: the question's time budget: its answer cell may run this long, and so may its
            check (the notebook states it in the question's heading).
        forbidden: dotted names of functions, classes or modules the answer must not use
            (``"numpy.random.Generator.gumbel"``, ``"lib.relaxed"``). While probing, calling
            one raises a "not allowed in this question" error, however it is reached (an
            alias, ``getattr``, a helper), and the question scores 0 with ``forbidden_why``.
        watch: dotted names of functions whose use the judge needs to see (for example
            ``scipy.integrate.quad``); the probe data gets ``__called__``: the names of those
            that were called while probing.
    """

    name: str
    points: float
    answers: Sequence[str]
    probe: Callable[..., Dict[str, Any]]
    judge: Callable[[Dict[str, Any]], None]
    title: str = ""
    hidden: bool = False
    seconds: float = 60.0
    forbidden: Sequence[str] = ()
    forbidden_why: str = ""
    watch: Sequence[str] = ()


@dataclass
class ExerciseSet:
    """The questions of one exercise notebook, in order."""

    name: str
    title: str
    questions: Dict[str, Question] = field(default_factory=dict)

    def question(
        self, name: str, *, points: float, answers: Sequence[str], title: str = "",
        hidden: bool = False, seconds: float = 60.0, forbidden: Sequence[str] = (),
        forbidden_why: str = "", watch: Sequence[str] = (),
    ) -> Callable[[Callable], Callable]:
        """Decorator registering a probe; the judge is attached with ``@probe.judge``.

        Example::

            @SET.question("q1", points=2, answers=["sample_gumbel"])
            def q1(sample_gumbel):
                return {"samples": as_float_array(sample_gumbel(1000))}

            @q1.judge
            def _(data):
                ...
        """

        def register(probe: Callable) -> Callable:
            def attach(judge: Callable) -> Callable:
                self.questions[name] = Question(
                    name, float(points), tuple(answers), probe, judge, title, hidden,
                    float(seconds), tuple(forbidden), forbidden_why, tuple(watch),
                )
                return judge

            probe.judge = attach  # type: ignore[attr-defined]
            return probe

        return register

    @property
    def total_points(self) -> float:
        return sum(q.points for q in self.questions.values())

    @property
    def visible(self) -> Dict[str, Question]:
        """The questions students check in the notebook (all but the hidden ones)."""
        return {k: q for k, q in self.questions.items() if not q.hidden}


@dataclass
class Result:
    """The outcome of one question."""

    question: str
    points: float
    max_points: float
    status: str  # "passed", "failed", "error", "missing", "timeout"
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _short(text: str) -> str:
    text = str(text).strip()
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def error_data(exc: BaseException, during: str) -> Dict[str, Any]:
    """Plain data describing an exception raised by student code inside a probe."""
    return {"__error__": _short(f"{during} raised {type(exc).__name__}: {exc}")}


def _stub(*args, **kwargs):  # the body of an unanswered function: `...` or `pass`
    ...


def is_unanswered(value: Any) -> bool:
    """True for ``...`` and for functions whose body does nothing (the student template)."""
    if value is Ellipsis:
        return True
    code = getattr(value, "__code__", None)
    return code is not None and code.co_code == _stub.__code__.co_code


def collect(question: Question, namespace: Mapping[str, Any]) -> Dict[str, Any]:
    """Run ``question.probe`` against a namespace; never raises.

    Returns the probe's data, ``{"__missing__": [...]}`` when an answer name is undefined or
    still ``...``, or ``{"__error__": message}`` when the student's code raised.
    """
    missing = [n for n in question.answers if n not in namespace or is_unanswered(namespace[n])]
    if missing:
        return {"__missing__": missing}
    kwargs = {n: namespace[n] for n in question.answers}
    from lib.grading.probing import Watcher, pinned_torch

    watcher = Watcher(question.forbidden, question.watch, roots=list(kwargs.values()))
    try:
        with pinned_torch(), watcher:
            data = question.probe(**kwargs)
    except Mistake as exc:  # a probe may already see that the answer cannot be right
        data = {"__mistake__": _short(str(exc))}
    except NotImplementedError:
        return {"__missing__": list(question.answers)}
    except Exception as exc:  # noqa: BLE001 - any student error becomes feedback
        data = error_data(exc, f"Running your `{', '.join(question.answers)}`")
    if watcher.violations:  # even if the student's code caught the error
        why = f" {question.forbidden_why}" if question.forbidden_why else ""
        names = ", ".join(f"`{n}`" for n in watcher.violations)
        return {"__mistake__": _short(f"Your code called {names}, which is not allowed in "
                                      f"this question.{why}")}
    if not isinstance(data, dict):
        raise TypeError(f"probe of {question.name} returned {type(data).__name__}, not dict")
    if question.watch and "__error__" not in data and "__mistake__" not in data:
        data["__called__"] = sorted(watcher.called)
    torch = sys.modules.get("torch")
    if torch is not None:  # the judge builds what it needs under the probe's dtype
        data["__dtype__"] = str(torch.get_default_dtype())
    return data


def decide(question: Question, data: Mapping[str, Any]) -> Result:
    """Run ``question.judge`` on probe data; never raises (a judge bug is reported as error)."""
    q, pts = question.name, question.points
    if "__missing__" in data:
        names = ", ".join(f"`{n}`" for n in data["__missing__"])
        return Result(q, 0.0, pts, "missing", f"write {names} in its cell (it is still the "
                      "template or not defined), run that cell, then check again.")
    if "__timeout__" in data:
        return Result(q, 0.0, pts, "timeout", _short(data["__timeout__"]))
    if "__error__" in data:
        return Result(q, 0.0, pts, "failed", _short(data["__error__"]))
    if "__mistake__" in data:
        return Result(q, 0.0, pts, "failed", _short(data["__mistake__"]))
    from lib.grading.probing import pinned_torch

    data = dict(data)
    dtype = data.pop("__dtype__", None)
    try:
        with pinned_torch(dtype if isinstance(dtype, str) else None):
            note = question.judge(data)
    except Mistake as exc:
        return Result(q, 0.0, pts, "failed", _short(str(exc)))
    except Exception:  # noqa: BLE001 - a judge must not crash the gradebook
        tb = traceback.format_exc(limit=2)
        msg = "The checker could not judge this answer: " + tb
        return Result(q, 0.0, pts, "error", _short(msg))
    # A judge may return an advisory note: full points, and a remark about what the check
    # cannot verify (issue 14: checks that cannot be behavioural advise, they do not deduct).
    return Result(q, pts, pts, "passed", _short(note) if isinstance(note, str) else "")


def run_question(question: Question, namespace: Mapping[str, Any]) -> Result:
    """Probe and judge in this process (what :class:`Checker` does in a notebook)."""
    return decide(question, collect(question, namespace))


# ----------------------------------------------------------------------------------------------
# Helpers for probes and judges
# ----------------------------------------------------------------------------------------------


def as_float_array(value: Any, what: str = "your answer") -> np.ndarray:
    """Convert a number, list, numpy array or torch tensor to a float64 numpy array.

    Raises :class:`Mistake` (not a crash) for anything else, naming what was received.
    """
    if value is None:
        raise Mistake(f"{what} is None: did you forget a `return` statement?")
    if isinstance(value, (bool, np.bool_)):
        raise Mistake(f"{what} is a bool ({value}); a number or an array was expected.")
    mod = type(value).__module__
    if mod.startswith("torch"):
        try:
            value = value.detach().cpu().double().numpy()
        except Exception as exc:  # noqa: BLE001
            raise Mistake(f"{what} is a {type(value).__name__} that is not a numeric tensor "
                          f"({exc}).") from None
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Mistake(
            f"{what} has type {type(value).__name__}; a number, numpy array or torch tensor "
            "was expected."
        ) from None
    return arr


def expect_finite(arr: np.ndarray, what: str = "your answer") -> None:
    """Raise a Mistake naming NaN or infinite entries."""
    arr = np.asarray(arr)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        n_nan, n_inf = int(np.isnan(arr).sum()), int(np.isinf(arr).sum())
        raise Mistake(
            f"{what} contains {n_nan} NaN and {n_inf} infinite value(s). A log of 0 (or of a "
            "negative number) is the usual cause: check the range of what you take logs of."
        )


def expect_shape(arr: np.ndarray, shape: Sequence[int], what: str = "your answer") -> None:
    """Raise a Mistake when ``arr.shape`` differs from ``shape``."""
    if tuple(np.shape(arr)) != tuple(shape):
        raise Mistake(f"{what} has shape {tuple(np.shape(arr))}, but shape {tuple(shape)} "
                      "was expected.")


def is_close(a: float, b: float, rel: float = 1e-6, abs_: float = 1e-9) -> bool:
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=abs_)


# ----------------------------------------------------------------------------------------------
# The notebook side
# ----------------------------------------------------------------------------------------------


class Checker:
    """Check answers in an exercise notebook: ``grader = Checker("gumbel")``,
    then ``grader.check("q1")`` after each answer and ``grader.check_all()`` at the end.

    The answers are looked up by name in the notebook's global namespace.
    """

    def __init__(self, exercise_set: str):
        from lib.grading.sets import get_set

        self.exercise_set = get_set(exercise_set)

    def _namespace(self, depth: int = 2) -> Mapping[str, Any]:
        return sys._getframe(depth).f_globals

    def check(self, name: str) -> None:
        """Check one question and print the verdict (the hint when wrong)."""
        questions = self.exercise_set.visible
        if name not in questions:
            raise KeyError(f"no question {name!r} in this set; known: {', '.join(questions)}")
        result = run_question(questions[name], self._namespace())
        print(format_result(result))

    def check_all(self) -> None:
        """Check every question and print a score table."""
        ns = self._namespace()
        results = [run_question(q, ns) for q in self.exercise_set.visible.values()]
        for r in results:
            print(format_result(r))
        got = sum(r.points for r in results)
        print(f"Total: {got:g} / {sum(r.max_points for r in results):g} points")


def format_result(result: Result) -> str:
    """One human-readable verdict."""
    head = f"{result.question}: "
    if result.passed:
        note = f" Note: {result.message}" if result.message else ""
        return head + f"passed ({result.points:g}/{result.max_points:g} points).{note}"
    if result.status == "missing":
        return head + f"not answered yet: {result.message}"
    return head + f"not yet (0/{result.max_points:g} points). {result.message}"
