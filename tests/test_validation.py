"""Every error case at the public boundary: right exception type, message naming the argument."""

import math

import numpy as np
import pytest
import torch

import lib
from lib._validation import (
    broadcast_shapes,
    check_bool,
    check_dim,
    check_int,
    check_logits,
    check_real,
    check_same_shape,
    check_tau,
    validating,
)
from lib.estimators import (
    exact_expectation_bernoulli,
    exact_expectation_categorical,
    straight_through,
)
from lib.gumbel import (
    gumbel_cdf,
    gumbel_log_prob,
    gumbel_max_sample,
    gumbel_topk_sample,
    sample_gumbel,
)
from lib.relaxed import concrete_log_prob, gumbel_softmax, relaxed_bernoulli, tempered_sample
from lib.structured import binary_index, chain_map, without_replacement_log_prob
from lib.temperature import expected_empirical_tv

INF = math.inf
Y3 = torch.tensor([0.2, 0.3, 0.5])

# functions of categorical logits along dim=-1
CATEGORICAL = {
    "gumbel_max_sample": gumbel_max_sample,
    "gumbel_topk_sample": lambda logits: gumbel_topk_sample(logits, 1),
    "gumbel_softmax": gumbel_softmax,
    "tempered_sample": lambda logits: tempered_sample(logits, 1.0),
    "concrete_log_prob": lambda logits: concrete_log_prob(Y3, logits, 1.0),
    "exact_expectation_categorical": lambda logits: exact_expectation_categorical(
        logits, lambda z: z.sum(-1)
    ),
}
BERNOULLI = {
    "relaxed_bernoulli": relaxed_bernoulli,
    "exact_expectation_bernoulli": lambda logits: exact_expectation_bernoulli(
        logits, lambda b: b.sum(-1)
    ),
}
ALL_LOGITS = {**CATEGORICAL, **BERNOULLI}
# functions taking a temperature
WITH_TAU = {
    "gumbel_softmax": lambda tau: gumbel_softmax(torch.zeros(2, 3), tau),
    "relaxed_bernoulli": lambda tau: relaxed_bernoulli(torch.zeros(2, 3), tau),
    "tempered_sample": lambda tau: tempered_sample(torch.zeros(2, 3), tau),
    "concrete_log_prob": lambda tau: concrete_log_prob(Y3.expand(2, 3), torch.zeros(2, 3), tau),
}


@pytest.mark.parametrize("name", list(ALL_LOGITS))
def test_numpy_logits_are_a_type_error_with_a_fix(name):
    with pytest.raises(
        TypeError,
        match=r"logits must be a floating-point torch.Tensor, got numpy.ndarray; "
        r"convert with torch.as_tensor\(",
    ):
        ALL_LOGITS[name](np.zeros(3))


@pytest.mark.parametrize("name", list(ALL_LOGITS))
@pytest.mark.parametrize(
    "bad", [[0.0, 1.0, 2.0], torch.tensor([0, 1, 2]), torch.tensor([True] * 3)]
)
def test_non_float_logits_are_a_type_error(name, bad):
    with pytest.raises(TypeError, match="logits must be a floating-point torch.Tensor"):
        ALL_LOGITS[name](bad)


@pytest.mark.parametrize("name", list(ALL_LOGITS))
def test_nan_logits(name):
    with pytest.raises(ValueError, match="logits must not contain NaN"):
        ALL_LOGITS[name](torch.tensor([0.0, math.nan, 1.0]))


@pytest.mark.parametrize("name", list(CATEGORICAL))
def test_positive_infinite_and_fully_masked_logits(name):
    with pytest.raises(ValueError, match=r"logits must not contain \+inf"):
        CATEGORICAL[name](torch.tensor([0.0, INF, 1.0]))
    with pytest.raises(ValueError, match="logits .* all -inf"):
        CATEGORICAL[name](torch.tensor([-INF, -INF, -INF]))


@pytest.mark.parametrize("name", list(BERNOULLI))
def test_infinite_bernoulli_logits(name):
    with pytest.raises(ValueError, match="logits must be finite"):
        BERNOULLI[name](torch.tensor([0.0, -INF, 1.0]))


@pytest.mark.parametrize("name", list(WITH_TAU))
@pytest.mark.parametrize(
    ("tau", "error", "match"),
    [
        (0.0, ValueError, r"tau must be > 0 \(got 0.0\); tau = 0 is the argmax limit"),
        (-1.0, ValueError, "tau must be > 0"),
        (math.nan, ValueError, "tau must be a finite"),
        (INF, ValueError, "tau must be a finite"),
        (True, TypeError, "tau must be a real number"),
        ("1", TypeError, "tau must be a real number"),
        (None, TypeError, "tau must be a real number"),
        (torch.tensor(1), TypeError, "tau must be a real number or a floating-point"),
        (torch.tensor([[1.0], [0.0]]), ValueError, "tau must be > 0 everywhere"),
        (torch.tensor([[1.0], [math.nan]]), ValueError, "tau must be finite"),
        (torch.ones(5, 1, 1), ValueError, "tau of shape"),
    ],
)
def test_bad_tau(name, tau, error, match):
    with pytest.raises(error, match=match):
        WITH_TAU[name](tau)


def test_tau_along_the_category_dim_is_refused():
    with pytest.raises(ValueError, match="tau of shape .* size 1 along the category dim"):
        gumbel_softmax(torch.zeros(2, 3), torch.ones(3))


def test_integer_tau_is_accepted():
    assert gumbel_softmax(torch.zeros(2, 3), 2).dtype == torch.float32
    assert gumbel_softmax(torch.zeros(2, 3), np.float64(0.5)).dtype == torch.float32


@pytest.mark.parametrize("function", [gumbel_softmax, relaxed_bernoulli])
@pytest.mark.parametrize("hard", [1, 0, "yes", None, torch.tensor(True)])
def test_hard_must_be_bool(function, hard):
    with pytest.raises(TypeError, match="hard must be a bool"):
        function(torch.zeros(3), hard=hard)


@pytest.mark.parametrize(
    "call",
    [
        lambda dim: gumbel_max_sample(torch.zeros(2, 3), dim=dim),
        lambda dim: gumbel_softmax(torch.zeros(2, 3), dim=dim),
        lambda dim: tempered_sample(torch.zeros(2, 3), 1.0, dim=dim),
        lambda dim: gumbel_topk_sample(torch.zeros(2, 3), 1, dim=dim),
    ],
)
def test_bad_dim(call):
    with pytest.raises(ValueError, match="dim=2 is out of range"):
        call(2)
    with pytest.raises(TypeError, match="dim must be an int"):
        call(1.0)


def test_zero_dimensional_and_empty_logits():
    with pytest.raises(ValueError, match="logits must have at least 1 dimension"):
        gumbel_max_sample(torch.tensor(0.0))
    with pytest.raises(ValueError, match="logits must have at least one category"):
        gumbel_softmax(torch.zeros(2, 0))


def test_mismatched_shapes():
    with pytest.raises(ValueError, match=r"forward and backward .* got \(3,\) and \(4,\)"):
        straight_through(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="y and logits"):
        concrete_log_prob(Y3, torch.zeros(4), 1.0)


def test_topk_k():
    with pytest.raises(ValueError, match="k must be <= 3"):
        gumbel_topk_sample(torch.zeros(3), 4)
    with pytest.raises(ValueError, match="k must be >= 1"):
        gumbel_topk_sample(torch.zeros(3), 0)
    with pytest.raises(TypeError, match="k must be an int"):
        gumbel_topk_sample(torch.zeros(3), 2.0)


def test_sample_gumbel_arguments():
    with pytest.raises(ValueError, match="shape"):
        sample_gumbel((2, -1))
    with pytest.raises(TypeError, match="shape"):
        sample_gumbel(2.5)
    with pytest.raises(TypeError, match="shape"):
        sample_gumbel(True)
    with pytest.raises(TypeError, match="dtype must be a floating-point"):
        sample_gumbel(3, dtype=torch.int64)


def test_gumbel_density_arguments():
    with pytest.raises(TypeError, match="x must be a floating-point torch.Tensor"):
        gumbel_cdf(np.zeros(3))
    with pytest.raises(ValueError, match="scale must be > 0"):
        gumbel_log_prob(torch.zeros(3), scale=0.0)
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        gumbel_log_prob(torch.zeros(3), scale=torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(TypeError, match="loc must be a real number"):
        gumbel_cdf(torch.zeros(3), loc="0")


# ---------------------------------------------------------------- the helpers themselves


def test_helpers_return_normalised_values():
    logits = torch.zeros(2, 3)
    assert check_logits(logits) is logits
    assert check_logits(torch.tensor([[0.0, -INF]])) is not None  # partial mask is fine
    assert check_tau(1) == 1.0 and isinstance(check_tau(1), float)
    tau = check_tau(torch.tensor([[0.5], [2.0]], dtype=torch.float64), like=logits, dim=-1)
    assert tau.dtype == torch.float32
    assert check_dim(logits, -1) == 1
    assert check_bool(False, "hard") is False
    assert check_int(np.int64(3), "k") == 3
    assert check_real(torch.tensor(2.5), "rate") == 2.5
    check_same_shape(logits, torch.ones(2, 3), ("a", "b"))
    with pytest.raises(ValueError, match="a and b must have the same shape"):
        check_same_shape(logits, torch.ones(3, 2), ("a", "b"))
    with pytest.raises(TypeError, match="rate must be a real number"):
        check_real(False, "rate")


@pytest.mark.parametrize(
    "shapes",
    [((3,), (2, 3)), ((2, 1), (1, 4)), ((), (5,)), ((3,), (4,)), ((2, 3), (3, 3)),
     ((5, 1, 4), (3, 1), (1,)), ((0,), (1,)), ((0,), (2,))],
)
def test_broadcast_shapes_matches_numpy(shapes):
    try:
        expected = np.broadcast_shapes(*shapes)
    except ValueError:
        expected = None
    result = broadcast_shapes(*shapes)
    assert (result is None and expected is None) or tuple(result) == expected


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_check_logits_mixed_cases(dtype):
    ok = torch.tensor([[0.0, -INF, 1.0], [-INF, 2.0, -INF]], dtype=dtype)
    assert check_logits(ok) is ok
    with pytest.raises(ValueError, match=r"batch index \(1,\) is all -inf"):
        check_logits(torch.tensor([[0.0, -INF, 1.0], [-INF, -INF, -INF]], dtype=dtype))
    with pytest.raises(ValueError, match=r"slice at batch index \(2,\)"):
        check_logits(torch.tensor([[0.0, 1.0, -INF], [1.0, 0.0, -INF]], dtype=dtype).T, dim=1)
    assert check_logits(torch.tensor([[0.0, 1.0, -INF]], dtype=dtype), dim=1).shape == (1, 3)
    with pytest.raises(ValueError, match=r"NaN: found 1 NaN entry \(first at index \(1, 2\)\)"):
        check_logits(torch.tensor([[0.0, -INF, 1.0], [-INF, INF, math.nan]], dtype=dtype))
    with pytest.raises(ValueError, match=r"\+inf \(first at index \(1, 1\)\)"):
        check_logits(torch.tensor([[0.0, -INF, 1.0], [-INF, INF, 0.0]], dtype=dtype))
    assert check_logits(torch.zeros(0, 3, dtype=dtype)).shape == (0, 3)


# ------------------------------------------------------------- the switch (validate_args)

# every function whose checks read tensor values, with valid arguments
VALUE_CHECKED = {
    "gumbel_max_sample": lambda: gumbel_max_sample(torch.zeros(2, 3)),
    "gumbel_topk_sample": lambda: gumbel_topk_sample(torch.zeros(2, 3), 2),
    "gumbel_softmax": lambda: gumbel_softmax(torch.zeros(2, 3), 0.5),
    "gumbel_softmax hard, tensor tau": lambda: gumbel_softmax(
        torch.zeros(2, 3), torch.full((2, 1), 0.5), hard=True),
    "relaxed_bernoulli": lambda: relaxed_bernoulli(torch.zeros(2, 3), 0.5, hard=True),
    "tempered_sample": lambda: tempered_sample(torch.zeros(2, 3), 0.5),
    "concrete_log_prob": lambda: concrete_log_prob(Y3, torch.zeros(3), torch.tensor(0.5)),
    "gumbel_log_prob": lambda: gumbel_log_prob(torch.zeros(3), scale=torch.ones(3)),
    "exact_expectation_bernoulli": lambda: exact_expectation_bernoulli(
        torch.zeros(3), lambda b: b.sum(-1)),
    "chain_map": lambda: chain_map(torch.zeros(4), torch.zeros(3)),
    "binary_index": lambda: binary_index(torch.tensor([[0.0, 1.0]])),
    "without_replacement_log_prob": lambda: without_replacement_log_prob(
        torch.zeros(4), torch.tensor([2, 0])),
}
# Python-side reads of a tensor's values: each waits for the device
READS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__")


@pytest.fixture
def reads(monkeypatch):
    """Count every read of tensor values back into Python (the device syncs of a check)."""
    seen = []
    for method in READS:
        original = getattr(torch.Tensor, method)

        def spy(self, *args, _original=original, _method=method, **kwargs):
            seen.append(_method)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, spy)
    return seen


def test_validation_is_on_by_default_and_the_switch_sets_it():
    assert lib.get_default_validate_args() is True and validating()
    try:
        lib.set_default_validate_args(False)
        assert lib.get_default_validate_args() is False and not validating()
    finally:
        lib.set_default_validate_args(True)
    assert lib.get_default_validate_args() is True
    for bad in (0, 1, None, "no", torch.tensor(False)):
        with pytest.raises(TypeError, match="value must be a bool"):
            lib.set_default_validate_args(bad)
        with pytest.raises(TypeError, match="value must be a bool"):
            lib.validate_args(bad)


def test_the_context_manager_restores_the_previous_setting():
    with lib.validate_args(False):
        assert not lib.get_default_validate_args()
        with lib.validate_args(True):  # nested: on inside, off again after
            assert lib.get_default_validate_args()
        assert not lib.get_default_validate_args()
        with lib.validate_args():  # the default value: on
            assert lib.get_default_validate_args()
    assert lib.get_default_validate_args()
    with pytest.raises(ValueError, match="logits must not contain NaN"):  # restored on error
        with lib.validate_args(False):
            raise ValueError("logits must not contain NaN (raised inside the block)")
    assert lib.get_default_validate_args()
    try:  # a block entered with validation off restores off
        lib.set_default_validate_args(False)
        with lib.validate_args(True):
            assert lib.get_default_validate_args()
        assert not lib.get_default_validate_args()
    finally:
        lib.set_default_validate_args(True)


def test_the_context_manager_is_reentrant_and_a_decorator():
    switch = lib.validate_args(False)
    with switch:
        with switch:
            assert not lib.get_default_validate_args()
        assert not lib.get_default_validate_args()
    assert lib.get_default_validate_args()

    @lib.validate_args(False)
    def unchecked():
        return gumbel_softmax(torch.tensor([0.0, math.nan]), 0.5)

    assert torch.isnan(unchecked()).all() and lib.get_default_validate_args()


@pytest.mark.parametrize("name", list(VALUE_CHECKED))
def test_value_checks_read_the_data_only_with_validation_on(name, reads):
    VALUE_CHECKED[name]()
    assert reads, "with validation on, the values are read (else the spy sees nothing)"
    reads.clear()
    with lib.validate_args(False):
        VALUE_CHECKED[name]()
    assert reads == []


@pytest.mark.parametrize("shape", [(1, 10), (3,), (), (40, 5), (2, 3, 4)])
def test_the_logits_value_check_reads_once_on_every_path(shape, reads):
    """One read whatever the shape (.tolist() on small tensors, .item() of a sum otherwise),
    and the same verdicts as the full diagnosis."""
    logits = torch.zeros(shape)
    check_logits(logits, dim=None)
    assert len(reads) == 1
    if logits.dim() > 0:
        bad = logits.clone()
        bad.view(-1)[-1] = math.nan
        with pytest.raises(ValueError, match="logits must not contain NaN"):
            check_logits(bad)
        bad.view(-1)[-1] = INF
        with pytest.raises(ValueError, match=r"logits must not contain \+inf"):
            check_logits(bad)
        bad.view(-1)[-1] = -INF  # masked: fine unless the whole slice is masked
        if logits.shape[-1] > 1:
            assert check_logits(bad) is bad
    # finite entries whose sum overflows are fine (a float32 kernel sum, a Python float sum)
    for big in (torch.full((40,), 3e38), torch.full((3,), 1e308, dtype=torch.float64)):
        assert check_logits(big) is big and check_logits(big, dim=None) is big


@pytest.mark.parametrize("name", list(ALL_LOGITS))
def test_with_validation_off_nan_logits_pass_through(name):
    """Validation off skips the value checks: bad values give NaN, not a ValueError."""
    with lib.validate_args(False):
        try:
            ALL_LOGITS[name](torch.tensor([0.0, math.nan, 1.0]))
        except ValueError as error:
            pytest.fail(f"{name} checked the values with validation off: {error}")


def test_probability_vectors_are_checked_with_validation_on_only():
    half = torch.tensor([0.5, 0.25])  # sums to 0.75
    with pytest.raises(ValueError, match="probs must sum to 1"):
        expected_empirical_tv(half, half, 3)
    with lib.validate_args(False):
        assert expected_empirical_tv(half, half, 3) > 0


def test_with_validation_off_structural_checks_stay_where_they_cost_nothing():
    """Outside the samplers' hot paths, the type and shape checks still run (no data read)."""
    with lib.validate_args(False):
        with pytest.raises(TypeError, match="logits must be a floating-point torch.Tensor"):
            tempered_sample(np.zeros(3), 1.0)
        with pytest.raises(ValueError, match="y and logits"):
            concrete_log_prob(Y3, torch.zeros(4), 1.0)
        with pytest.raises(ValueError, match="tau must be > 0"):  # tau is always converted
            gumbel_softmax(torch.zeros(3), 0.0)
        with pytest.raises(ValueError, match="tau of shape"):
            relaxed_bernoulli(torch.zeros(2, 3), torch.ones(5, 1, 1))
        with pytest.raises(ValueError, match="k must be <= 3"):
            gumbel_topk_sample(torch.zeros(3), 4)


@pytest.mark.parametrize("value", [True, False])
def test_the_switch_does_not_change_the_samples(value):
    """Validation reads the data but draws nothing: the same generator state gives the same
    samples and gradients with it on and off."""
    outputs = []
    for setting in (value, not value):
        with lib.validate_args(setting):
            logits = torch.tensor([[0.5, -INF, 2.0], [1.0, 0.0, -1.0]], requires_grad=True)
            y = gumbel_softmax(logits, 0.5, hard=True, generator=torch.Generator().manual_seed(0))
            z = relaxed_bernoulli(logits[1], 0.5, generator=torch.Generator().manual_seed(0))
            (grad,) = torch.autograd.grad((y * torch.arange(3.0)).sum() + z.sum(), logits)
            outputs.append((y.detach(), z.detach(), grad))
    for a, b in zip(*outputs):
        assert torch.equal(a, b)
