"""The book's exercise checker and batch grader.

In an exercise notebook::

    from lib.grading import Checker
    grader = Checker("gumbel_max")
    ...
    grader.check("q1")

For instructors: ``python -m lib.grading SUBMISSIONS_FOLDER --out grades.csv`` (``make grade``).
"""

from lib.grading.core import Checker, ExerciseSet, Mistake, Question, Result, run_question
from lib.grading.sets import get_set, list_sets

__all__ = [
    "Checker",
    "ExerciseSet",
    "Mistake",
    "Question",
    "Result",
    "run_question",
    "get_set",
    "list_sets",
]
