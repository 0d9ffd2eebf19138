"""Exercise sets: one module per exercise notebook, each defining ``SET`` (an ExerciseSet).

The module name is the set's name, the argument of ``Checker("...")`` in the notebook and the
``exercise_set`` entry of the notebook's metadata. A new module here is picked up by the grader,
the build of student notebooks and the tests without any other registration.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Dict, List

from lib.grading.core import ExerciseSet

__all__ = ["get_set", "list_sets", "all_sets"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def list_sets() -> List[str]:
    """Names of every exercise set shipped with the book, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get_set(name: str) -> ExerciseSet:
    """The exercise set called ``name`` (ValueError naming the known sets otherwise)."""
    if not isinstance(name, str) or not _NAME.match(name) or name not in list_sets():
        raise ValueError(
            f"exercise_set must be one of {', '.join(list_sets())}; got {name!r}"
        )
    module = importlib.import_module(f"{__name__}.{name}")
    return module.SET


def all_sets() -> Dict[str, ExerciseSet]:
    return {name: get_set(name) for name in list_sets()}
