"""lib.lagrangian.LagrangeMultiplier: projected gradient ascent on a moving average."""

import math

import pytest
import torch

from lib.lagrangian import MULTIPLIER_GRID, LagrangeMultiplier

D = torch.float64


def test_multiplier_grows_while_the_constraint_is_violated():
    lagrange = LagrangeMultiplier(0.2, lr=0.1, smoothing=0.5, dtype=D)
    previous = []
    for _ in range(20):
        lagrange.update(torch.tensor(0.5, dtype=D))  # above the target by 0.3
        previous.append(float(lagrange.multiplier))
    assert all(b > a for a, b in zip(previous, previous[1:]))
    # the moving average tends to the constraint's value, 0.3: c_ma = 0.3 (1 - 0.5^t)
    assert math.isclose(float(lagrange.moving_average), 0.3 * (1 - 0.5**20), rel_tol=1e-12)
    expected = sum(0.1 * 0.3 * (1 - 0.5**t) for t in range(1, 21))
    assert abs(previous[-1] - expected) <= 20 * MULTIPLIER_GRID


def test_multiplier_shrinks_to_exactly_zero_and_stays_there_while_it_holds():
    lagrange = LagrangeMultiplier(0.2, lr=0.1, smoothing=0.0, init=0.5, dtype=D)
    values = []  # 0.5 - 0.01 t reaches 0 at t = 50
    for _ in range(70):
        lagrange.update(torch.tensor(0.1, dtype=D))  # below the target by 0.1
        values.append(float(lagrange.multiplier))
    assert all(b <= a for a, b in zip(values, values[1:]))
    assert values[3] > 0 and values[-1] == 0.0 and values[-10:] == [0.0] * 10


def test_independent_multipliers_and_the_loss_term():
    lagrange = LagrangeMultiplier(0.25, lr=0.5, smoothing=0.0, shape=(3,), dtype=D)
    rate = torch.tensor([0.75, 0.25, 0.0], dtype=D, requires_grad=True)
    term = lagrange.update(rate)
    assert lagrange.multiplier.tolist() == [0.25, 0.0, 0.0]  # the third is clamped at 0
    assert term.detach().tolist() == [0.125, 0.0, 0.0]
    term.sum().backward()
    assert rate.grad.tolist() == [0.25, 0.0, 0.0]


def test_the_term_has_the_moving_average_value_and_the_batch_gradient():
    lagrange = LagrangeMultiplier(0.0, lr=1.0, smoothing=0.75, init=2.0, dtype=D)
    lagrange.update(torch.tensor(1.0, dtype=D))  # c_ma = 0.25, multiplier 2.25
    x = torch.tensor(0.5, dtype=D, requires_grad=True)
    term = lagrange.update(3 * x)  # c_hat = 1.5, c_ma = 0.75 * 0.25 + 0.25 * 1.5 = 0.5625
    assert math.isclose(float(lagrange.multiplier), 2.8125)
    assert math.isclose(float(term.detach()), 2.8125 * 0.5625)
    term.backward()
    assert math.isclose(float(x.grad), 3 * 2.8125)


def test_bad_arguments():
    with pytest.raises(ValueError, match="lr must be > 0"):
        LagrangeMultiplier(0.1, lr=0.0)
    with pytest.raises(ValueError, match="smoothing must be in"):
        LagrangeMultiplier(0.1, smoothing=1.0)
    with pytest.raises(ValueError, match="init must be >= 0"):
        LagrangeMultiplier(0.1, init=-1.0)
    with pytest.raises(TypeError, match="target must be a real number"):
        LagrangeMultiplier("0.1")
    with pytest.raises(TypeError, match="shape must be a tuple"):
        LagrangeMultiplier(0.1, shape=3)
    lagrange = LagrangeMultiplier(0.1, shape=(2,))
    with pytest.raises(ValueError, match="value must have the multiplier's shape"):
        lagrange.update(torch.zeros(3))
    with pytest.raises(TypeError, match="value must be a floating-point"):
        lagrange.update([0.1, 0.2])
