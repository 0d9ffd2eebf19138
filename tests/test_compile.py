"""``torch.compile(..., fullgraph=True)`` of lib's samplers, with validation on and off.

A value check reads tensor data back into Python (``.item()``, ``.tolist()``), which breaks the
graph; the checks are left out while ``torch.compile`` traces (``lib.validating()`` is False
there), so the samplers compile to one graph whatever the switch says. ``fullgraph=True`` turns
any graph break into an error, so these tests also show that no read of the data is left.

Two backends: ``aot_eager`` traces the whole graph (Dynamo and AOTAutograd) and runs PyTorch's
own kernels, so it must give the eager values bit for bit; ``inductor`` (the default) generates
C++ kernels, with values equal to eager's up to rounding when its random numbers come from
PyTorch's generator (``fallback_random``). Compiling takes seconds: marked slow.
"""

import shutil

import pytest
import torch

import lib
from lib.gumbel import gumbel_max_sample
from lib.relaxed import gumbel_softmax, relaxed_bernoulli

pytestmark = pytest.mark.slow

SAMPLERS = {
    "gumbel_softmax": lambda logits, hard: gumbel_softmax(logits, 0.5, hard=hard),
    "gumbel_softmax tau tensor": lambda logits, hard: gumbel_softmax(
        logits, torch.full((logits.shape[0], 1), 0.7, dtype=logits.dtype), hard=hard),
    "relaxed_bernoulli": lambda logits, hard: relaxed_bernoulli(logits, 0.5, hard=hard),
}


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _run(fn, logits, hard, seed=3):
    """Sample with torch's global generator seeded, and the gradient of a fixed function."""
    leaf = logits.clone().requires_grad_(True)
    torch.manual_seed(seed)
    y = fn(leaf, hard)
    (grad,) = torch.autograd.grad((y * y.detach().new_tensor(range(y.shape[-1]))).sum(), leaf)
    return y.detach(), grad


def _logits(dtype=torch.float64):
    return torch.randn(4, 6, dtype=dtype, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("validate", [True, False], ids=["validation-on", "validation-off"])
@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_fullgraph_compile_gives_the_eager_values(name, hard, validate):
    fn = SAMPLERS[name]
    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    with lib.validate_args(validate):
        y, grad = _run(compiled, _logits(), hard)
        y_eager, grad_eager = _run(fn, _logits(), hard)
    assert torch.equal(y, y_eager) and torch.equal(grad, grad_eager)
    assert lib.get_default_validate_args()  # the switch restored (True) after the block


def test_fullgraph_compile_of_gumbel_max_sample():
    compiled = torch.compile(gumbel_max_sample, fullgraph=True, backend="aot_eager")
    logits = _logits(torch.float32)
    torch.manual_seed(4)
    index = compiled(logits)
    torch.manual_seed(4)
    assert torch.equal(index, gumbel_max_sample(logits))


def test_compiled_checks_leave_out_the_values_but_not_the_structure():
    """Value checks are not part of the graph (NaN logits give NaN, as F.gumbel_softmax);
    the structural checks run while tracing, so their errors still come."""
    compiled = torch.compile(lambda x: gumbel_softmax(x, 0.5), fullgraph=True,
                             backend="aot_eager")
    assert torch.isnan(compiled(torch.tensor([0.0, float("nan")]))).all()
    with pytest.raises(ValueError, match="tau must be > 0"):  # eager: the same error
        gumbel_softmax(torch.zeros(3), 0.0)
    with pytest.raises(Exception, match="tau must be > 0"):
        torch.compile(lambda x: gumbel_softmax(x, 0.0), fullgraph=True,
                      backend="aot_eager")(torch.zeros(3))


@pytest.mark.skipif(not any(shutil.which(c) for c in ("g++", "c++", "clang++")),
                    reason="inductor needs a C++ compiler")
@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
@pytest.mark.parametrize("name", ["gumbel_softmax", "relaxed_bernoulli"])
def test_inductor_compile_gives_the_eager_values_up_to_rounding(name, hard):
    fn = SAMPLERS[name]
    with torch._inductor.config.patch(fallback_random=True):
        y, grad = _run(torch.compile(fn, fullgraph=True), _logits(), hard)
    y_eager, grad_eager = _run(fn, _logits(), hard)
    # float64: inductor's own log and exp differ from eager's in the last bits only
    torch.testing.assert_close(y, y_eager, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad, grad_eager, rtol=1e-10, atol=1e-12)
    if hard:  # the one-hot values themselves are exact
        assert torch.equal(y, y_eager)
