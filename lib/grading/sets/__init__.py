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

__all__ = ["get_set", "list_sets", "all_sets", "load_extra"]

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


def load_extra(path) -> None:
    """Run an instructor's file of extra (typically hidden) checks, which registers questions.

    The file is ordinary Python kept outside the public package, for example::

        from lib.grading import get_set
        from lib.grading.core import Mistake, as_float_array

        SET = get_set("gumbel_max")

        @SET.question("q1_tail", points=1, answers=["sample_gumbel"], hidden=True)
        def probe(sample_gumbel):
            return {"samples": as_float_array(sample_gumbel(50_000))}

        @probe.judge
        def _(data):
            if (data["samples"] > 8).mean() > 0.001:
                raise Mistake("Too many samples above 8 for a standard Gumbel.")
    """
    import importlib.util
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"extra checks file {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"_extra_checks_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
