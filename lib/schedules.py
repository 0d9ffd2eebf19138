"""Temperature schedules for relaxed discrete samples.

Reference:
    E. Jang, S. Gu, B. Poole (2017), *Categorical Reparameterization with Gumbel-Softmax*,
    ICLR (section 4 and the authors' notebook: tau0 = 1, rate 3e-5, minimum 0.5, updated
    every 1000 steps).
"""

from __future__ import annotations

import math

from lib._validation import check_int, check_real

__all__ = ["exponential_anneal"]


def exponential_anneal(
    step: int,
    *,
    tau0: float = 1.0,
    rate: float = 3e-5,
    tau_min: float = 0.5,
    every: int = 1000,
) -> float:
    r"""Exponentially annealed temperature, updated every ``every`` steps (Jang et al. 2017).

    .. math:: \tau(t) = \max\big(\tau_{\min},\ \tau_0\, e^{-r\,t}\big), \qquad
              t = \mathrm{every}\cdot\lfloor \mathrm{step}/\mathrm{every} \rfloor.

    The temperature is a function of the global step only (not compounded per epoch), so
    resuming training at a given step gives the same temperature.

    Args:
        step: global training step, a non-negative int.
        tau0: initial temperature, > 0.
        rate: decay rate :math:`r` per step, >= 0.
        tau_min: floor of the temperature, 0 < tau_min <= tau0.
        every: the temperature changes only at multiples of ``every`` steps, a positive int.

    Returns:
        The temperature as a Python float.

    Example:
        >>> exponential_anneal(0), exponential_anneal(999), exponential_anneal(10**6)
        (1.0, 1.0, 0.5)
        >>> round(exponential_anneal(1000), 6)  # exp(-0.03)
        0.970446

    Reference:
        Jang, Gu, Poole (2017), ICLR.
    """
    step = check_int(step, "step", min_value=0)
    tau0 = check_real(tau0, "tau0", gt=0.0)
    rate = check_real(rate, "rate", ge=0.0)
    tau_min = check_real(tau_min, "tau_min", gt=0.0)
    every = check_int(every, "every", min_value=1)
    if tau_min > tau0:
        raise ValueError(
            f"tau_min must be <= tau0 (got tau_min={tau_min}, tau0={tau0}); did you swap them?"
        )
    t = (step // every) * every
    return max(tau_min, tau0 * math.exp(-rate * t))
