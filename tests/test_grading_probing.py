"""The rule watcher: forbidden calls raise however they are reached, and nothing stays patched."""

import functools

import numpy as np
import pytest
from scipy import integrate, stats

from lib.grading.probing import NotAllowed, Watcher

GUMBEL = ["numpy.random.gumbel", "numpy.random.RandomState.gumbel",
          "numpy.random.Generator.gumbel", "scipy.stats.gumbel_r"]

_alias = np.random.gumbel
_rng = np.random.default_rng(0)


def _helper(n):
    return getattr(np.random, "gum" + "bel")(size=n)


@pytest.mark.parametrize("call", [
    lambda: _alias(size=3),
    lambda: _helper(3),
    lambda: _rng.gumbel(size=3),
    lambda: np.random.default_rng(1).gumbel(size=3),
    functools.partial(np.random.gumbel, 0.0, 1.0, 3),
    lambda: stats.gumbel_r.rvs(size=3),
    lambda: stats.gumbel_r(loc=1.0).pdf(0.5),
], ids=["alias", "getattr-helper", "generator", "new-generator", "partial", "scipy", "frozen"])
def test_a_forbidden_call_raises_and_is_recorded(call):
    watcher = Watcher(GUMBEL, roots=[call])
    with watcher:
        with pytest.raises(NotAllowed, match="not allowed in this question"):
            call()
    assert watcher.violations
    call()  # everything is restored afterwards


def test_allowed_calls_pass_and_watched_calls_are_seen():
    watcher = Watcher(GUMBEL, ["scipy.integrate.quad"])
    quad = functools.partial(integrate.quad, lambda x: x * x)
    with watcher:
        np.random.uniform(size=3)
        stats.norm.rvs(size=3)
        _rng.random(3)
        quad(0.0, 1.0)
    assert watcher.violations == [] and watcher.called == {"scipy.integrate.quad"}


def test_categorical_vae_q2_same_verdict_under_float64_default():
    """Issue 14: the probe and the judge built the q2 model under different default dtypes (the
    notebook's float64, the batch's float32), so a right answer passed in one and failed in the
    other. The probe records the notebook's dtype and the judge is pinned to it, so the verdict
    on float64 probe data is the same whether the judge runs in the notebook (float64 default)
    or in the batch grader's process (float32 default), and a float32 notebook passes too."""
    import torch

    from lib.grading import get_set, run_question
    from lib.grading.core import collect, decide
    from tests.grading_cases import categorical_vae as cases

    namespace = {}
    exec(cases.PREAMBLE + cases.CASES["q2"]["right"][0], namespace)
    question = get_set("categorical_vae").questions["q2"]
    before = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        data64 = collect(question, namespace)
        assert data64["__dtype__"] == "torch.float64"
        assert run_question(question, namespace).passed
    finally:
        torch.set_default_dtype(before)
    assert before == torch.float32
    assert decide(question, data64).passed  # the batch grader's judge, under float32
    assert torch.get_default_dtype() == before
    data32 = collect(question, namespace)
    assert data32["__dtype__"] == "torch.float32" and decide(question, data32).passed
    assert torch.get_default_dtype() == before


def test_a_forbidden_package_covers_its_submodules():
    """lib.rationales is a package: forbidding it forbids what its modules define, reached
    through the package (``lib.rationales.X``) or a submodule (``lib.rationales.metrics.X``)."""
    import torch

    import lib.rationales
    from lib.rationales import metrics

    selected = torch.tensor([[True, False]])
    for call in (lambda: lib.rationales.precision_recall_f1(selected, selected),
                 lambda: metrics.precision_recall_f1(selected, selected)):
        watcher = Watcher(["lib.rationales"])
        with watcher:
            with pytest.raises(NotAllowed, match="`lib.rationales` is not allowed"):
                call()
        assert watcher.violations == ["lib.rationales"]
    with Watcher(["lib.rationales"]) as watcher:  # other packages stay allowed
        torch.nn.functional.relu(torch.zeros(1))
    assert watcher.violations == []
