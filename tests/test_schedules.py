"""Tests of lib.schedules against Jang et al.'s formula written out here."""

import math

import pytest

from lib.schedules import exponential_anneal, jang_anneal


def jang_tau(step, tau0=1.0, rate=3e-5, tau_min=0.5, every=1000):
    t = step - step % every
    return max(tau_min, tau0 * math.exp(-rate * t))


def test_reference_values():
    assert exponential_anneal(0) == 1.0
    assert exponential_anneal(999) == 1.0  # rounded down to step 0
    assert exponential_anneal(1000) == pytest.approx(math.exp(-0.03), rel=1e-15)
    assert exponential_anneal(1999) == exponential_anneal(1000)
    assert exponential_anneal(10**7) == 0.5


@pytest.mark.parametrize("step", [0, 1, 500, 1000, 12_345, 23_000, 23_104, 50_000, 10**6])
@pytest.mark.parametrize(
    "kwargs", [{}, {"tau0": 2.0, "rate": 1e-4, "tau_min": 0.1, "every": 500}, {"rate": 0.0}]
)
def test_matches_formula(step, kwargs):
    assert exponential_anneal(step, **kwargs) == pytest.approx(jang_tau(step, **kwargs))


def test_is_non_increasing_and_floored():
    taus = [exponential_anneal(s, rate=1e-4) for s in range(0, 40_000, 250)]
    assert all(taus[i] >= taus[i + 1] for i in range(len(taus) - 1))
    assert min(taus) == 0.5


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"step": -1}, ValueError, "step"),
        ({"step": 10.0}, TypeError, "step"),
        ({"step": True}, TypeError, "step"),
        ({"step": 0, "tau0": 0.0}, ValueError, "tau0"),
        ({"step": 0, "tau0": "1"}, TypeError, "tau0"),
        ({"step": 0, "rate": -1e-5}, ValueError, "rate"),
        ({"step": 0, "rate": math.nan}, ValueError, "rate"),
        ({"step": 0, "tau_min": 0.0}, ValueError, "tau_min"),
        ({"step": 0, "tau_min": 2.0}, ValueError, "tau_min"),
        ({"step": 0, "every": 0}, ValueError, "every"),
        ({"step": 0, "every": 1000.0}, TypeError, "every"),
    ],
)
def test_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        exponential_anneal(**kwargs)


def test_jang_anneal_keeps_the_shape_of_the_original_schedule():
    total = 1500
    schedule = jang_anneal(total)
    taus = [schedule(t) for t in range(total)]
    assert taus[0] == 1.0 and taus[-1] == 0.5
    # the original reaches its floor at the update of step 24,000 of 50,000: 48% of the way
    first_floor = next(t for t, tau in enumerate(taus) if tau == 0.5)
    assert first_floor == round(24_000 / 50_000 * total)
    assert len(set(taus)) <= 51  # at most 50 changes of temperature
    assert all(a >= b for a, b in zip(taus, taus[1:]))  # never increases
    # the original schedule, unscaled, is the special case total_steps = 50,000
    original = jang_anneal(50_000)
    assert original(1000) == pytest.approx(math.exp(-0.03)) and original(999) == 1.0
