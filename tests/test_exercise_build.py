"""The student-notebook generator strips exactly the marked solutions."""

import pytest

from lib.grading.build import PLACEHOLDER, strip_code, student_version


def test_block_markers_keep_indentation():
    src = "def f(x):\n    # BEGIN SOLUTION\n    y = x + 1\n    return y\n    # END SOLUTION\n"
    assert strip_code(src) == f"def f(x):\n    {PLACEHOLDER}\n"


def test_inline_marker_keeps_the_assignment():
    assert strip_code("answer = 0.5  # SOLUTION") == f"answer = {PLACEHOLDER}"


def test_unclosed_block_is_an_error():
    with pytest.raises(ValueError, match="END SOLUTION"):
        strip_code("# BEGIN SOLUTION\nx = 1\n")


def test_student_version_clears_outputs_and_markdown_answers():
    nb = {"metadata": {"exercise_set": "x", "widgets": {}}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# Solutions: T\n"},
        {"cell_type": "markdown", "metadata": {},
         "source": "Proof: <!-- BEGIN SOLUTION -->secret<!-- END SOLUTION -->"},
        {"cell_type": "code", "metadata": {}, "execution_count": 3,
         "outputs": [{"output_type": "stream", "text": "1"}], "source": "x = 1  # SOLUTION"},
        {"cell_type": "code", "metadata": {"tags": ["solution-only"]}, "execution_count": 1,
         "outputs": [], "source": "print('only in solutions')"},
    ]}
    out = student_version(nb)
    assert "".join(out["cells"][0]["source"]) == "# Exercises: T\n"
    assert "secret" not in "".join(out["cells"][1]["source"])
    assert out["cells"][2]["outputs"] == [] and out["cells"][2]["execution_count"] is None
    assert len(out["cells"]) == 3 and "widgets" not in out["metadata"]
    assert nb["cells"][2]["execution_count"] == 3  # the input is not modified
