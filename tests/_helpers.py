"""Shared helpers for the tests of lib's core modules (seeded generators, statistical checks).

``torch.testing.assert_close`` is avoided on purpose: its first call imports a large part of
torch (seconds on a loaded machine), and these checks need none of its features.
"""

import numpy as np
import scipy.stats
import torch

P_MIN = 1e-3  # significance level of every goodness-of-fit test (fixed seeds: deterministic)

# default tolerances per dtype, the same as torch.testing.assert_close's
_TOLERANCES = {torch.float32: (1.3e-6, 1e-5), torch.float64: (1e-7, 1e-7)}


def gen(seed):
    """A fresh CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)


def assert_close(actual, expected, *, rtol=None, atol=None):
    """Same shape and dtype, and |actual - expected| <= atol + rtol |expected| elementwise."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    default_rtol, default_atol = _TOLERANCES[actual.dtype]
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    actual, expected = actual.detach(), expected.detach()
    ok = torch.isclose(actual, expected, rtol=rtol, atol=atol)
    assert bool(ok.all()), f"max abs difference {(actual - expected).abs().max().item():.3g}"


def assert_counts_match(samples, probs):
    """Chi-square goodness of fit of integer samples against the probabilities ``probs``.

    Zero-probability categories must never appear; they are left out of the test statistic.
    """
    probs = np.asarray(probs, dtype=np.float64)
    counts = np.bincount(np.asarray(samples).ravel(), minlength=len(probs))
    expected = counts.sum() * probs
    support = expected > 0
    assert counts[~support].sum() == 0, "a zero-probability category was sampled"
    assert expected[support].min() >= 5, "test design: chi-square needs expected counts >= 5"
    p_value = scipy.stats.chisquare(counts[support], expected[support]).pvalue
    assert p_value > P_MIN, (counts, expected, p_value)
