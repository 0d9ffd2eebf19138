"""Tests of lib.utils."""

import random

import numpy as np
import pytest
import torch

from lib.utils import get_device, set_seed


def test_set_seed_seeds_every_generator_and_returns_a_fresh_one():
    draws = []
    for _ in range(2):
        generator = set_seed(123)
        draws.append(
            (random.random(), np.random.rand(), torch.rand(1).item(),
             torch.rand(1, generator=generator).item())
        )
    assert draws[0] == draws[1]
    assert isinstance(set_seed(0), torch.Generator)
    assert set_seed(5).initial_seed() == 5


@pytest.mark.parametrize(("seed", "error"), [(-1, ValueError), (2**32, ValueError),
                                            (1.0, TypeError), (True, TypeError)])
def test_set_seed_validation(seed, error):
    with pytest.raises(error, match="seed"):
        set_seed(seed)


def test_get_device():
    device = get_device()
    assert isinstance(device, torch.device)
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
