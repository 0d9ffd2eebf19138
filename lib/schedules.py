"""Temperature schedules for relaxed discrete samples.

* :func:`exponential_anneal`: Jang et al.'s exponential annealing, a function of the global step;
* :func:`jang_anneal`: the same schedule rescaled to a run of any length, so that a short run
  anneals as the authors' 50,000-step run did.

Reference:
    E. Jang, S. Gu, B. Poole (2017), *Categorical Reparameterization with Gumbel-Softmax*,
    ICLR (section 4 and the authors' notebook: tau0 = 1, rate 3e-5, minimum 0.5, updated
    every 1000 steps).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from lib._validation import check_int, check_real

__all__ = ["exponential_anneal", "jang_anneal"]


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


#: Jang et al.'s notebook: 50,000 steps, tau = max(0.5, exp(-3e-5 t)) updated every 1,000 steps.
JANG_STEPS, JANG_RATE, JANG_EVERY = 50_000, 3e-5, 1000


def jang_anneal(
    total_steps: int, *, tau0: float = 1.0, tau_min: float = 0.5
) -> Callable[[int], float]:
    r"""Jang et al.'s exponential annealing, rescaled to a run of ``total_steps`` steps.

    The authors' notebook trains for 50,000 steps with
    :math:`\tau = \max(0.5, \tau_0 e^{-3\cdot10^{-5} t})`, updated every 1,000 steps: the
    temperature changes at most 50 times, and since :math:`e^{-r t}` crosses 0.5 at
    :math:`t = \ln 2 / 3\cdot10^{-5} \approx 23{,}100`, it reaches its floor at the update of
    step 24,000, 48% of the way through. A short run keeps that SHAPE by scaling both constants
    by ``50_000 / total_steps``:

    .. math:: r = 3\cdot10^{-5} \cdot \frac{50\,000}{T}, \qquad
              \mathrm{every} = \max\!\big(1, \mathrm{round}(1000\, T / 50\,000)\big).

    Copying ``rate=3e-5`` into a run of a thousand steps would leave the temperature at
    :math:`\tau_0 e^{-0.03} \approx 0.97` throughout: no annealing at all.

    Args:
        total_steps: number of optimisation steps of the run, >= 1.
        tau0: initial temperature.
        tau_min: floor of the temperature.

    Returns:
        A function ``step -> tau`` (:func:`exponential_anneal` with the scaled constants), with
        the constants as attributes ``rate`` and ``every``.

    Example:
        >>> schedule = jang_anneal(1000)
        >>> schedule(0), schedule(999)
        (1.0, 0.5)
    """
    total_steps = check_int(total_steps, "total_steps", min_value=1)
    tau0 = check_real(tau0, "tau0", gt=0.0)
    tau_min = check_real(tau_min, "tau_min", gt=0.0)
    rate = JANG_RATE * JANG_STEPS / total_steps
    every = max(1, round(JANG_EVERY * total_steps / JANG_STEPS))

    def schedule(step: int) -> float:
        return exponential_anneal(step, tau0=tau0, rate=rate, tau_min=tau_min, every=every)

    schedule.rate, schedule.every = rate, every  # type: ignore[attr-defined]
    return schedule
