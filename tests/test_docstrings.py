"""The Examples in the docstrings of lib's core modules run and print what they show."""

import doctest
import importlib

import pytest

CORE_MODULES = ["lib._validation", "lib.gumbel", "lib.relaxed", "lib.estimators",
                "lib.schedules", "lib.utils", "lib.compare", "lib.rng", "lib.interactive",
                "lib.sequences", "lib.subsets", "lib.hardkuma", "lib.perturbed", "lib.sparse",
                "lib.permutations"]


@pytest.mark.parametrize("name", CORE_MODULES)
def test_docstring_examples(name):
    from lib import estimators

    registry = dict(estimators._ESTIMATORS)  # an example registers an estimator: undo it
    try:
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    finally:
        estimators._ESTIMATORS.clear()
        estimators._ESTIMATORS.update(registry)
    assert result.attempted > 0 and result.failed == 0, result
