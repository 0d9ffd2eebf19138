"""The error-rate tool (make grading-error-rates) on a few seeds: right cases pass and listed
wrong cases fail under other student-side seeds too (issue 14)."""

import pytest

from tools.grading_error_rates import interval, measure, table


def test_interval_is_exact_binomial():
    lo, hi = interval(0, 1000)
    assert lo == 0.0 and 0.003 < hi < 0.004  # the rule of three: about 3/n
    lo, hi = interval(5, 10)
    assert lo < 0.5 < hi


@pytest.mark.slow
def test_small_seed_error_rates_of_two_sets():
    rows = measure(seeds=3, max_seconds=5.0, sets=["estimator_lab", "reinforce"],
                   log=lambda *_: None)
    for r in rows:
        assert r["rejected"] == 0, f"{r['set']}.{r['question']}: a right case was rejected"
        assert r["accepted"] == 0, f"{r['set']}.{r['question']}: a wrong case was accepted"
    text = table(rows, 3, 5.0)
    assert "3 student-side seeds" in text and "| reinforce | q1 |" in text
