"""Answers the grader must judge correctly, one module per exercise set.

Each module defines ``PREAMBLE`` (imports every snippet may use) and ``CASES``::

    CASES = {
        "q1": {
            "right": [snippet, ...],             # correct answers written differently
            "wrong": [(snippet, hint_part), ...], # typical mistakes and a piece of their hint
        },
    }

A snippet is notebook code defining the question's answer names. tests/test_grading_sets.py runs
every case through the question's probe and judge, and fails when a set or a question has fewer
than one right and two wrong cases.
"""
