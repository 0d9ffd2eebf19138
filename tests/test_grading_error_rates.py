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


def test_a_slow_question_gets_fewer_seeds_within_its_budget_and_the_table_says_so():
    from tools.grading_error_rates import measure_question

    row = measure_question("reinforce", "q1", seeds=40, max_seconds=5.0, budget=1e-9,
                           min_seeds=4)
    assert row["seeds"] == 4 and row["right_n"] % 4 == 0 and row["right_n"] > 0
    fast = measure_question("reinforce", "q1", seeds=2, max_seconds=5.0, budget=1e-9,
                            min_seeds=4)
    assert fast["seeds"] == 2  # never more seeds than asked for
    assert "| reinforce | q1 | 4 |" in table([row], 40, 5.0)
