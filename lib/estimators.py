"""Gradient estimators for discrete random choices, and exact ground truth by enumeration.

* :func:`straight_through`: use one value forward and another's gradient backward
  (Bengio, Leonard, Courville 2013).
* :func:`reinforce_surrogate` and :func:`leave_one_out_baseline`: the score-function
  (REINFORCE) estimator (Williams 1992) with an unbiased baseline.
* ``exact_*`` functions: expectations and their gradients computed by enumerating every
  outcome, the reference every estimator in the book is compared with (as in Mohamed, Rosca,
  Figurnov, Mnih 2020).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from lib._validation import (
    broadcast_shapes,
    check_callable,
    check_dim,
    check_int,
    check_logits,
    check_same_shape,
    check_tensor,
    type_name,
)

__all__ = [
    "enumerate_binary",
    "exact_expectation_bernoulli",
    "exact_expectation_categorical",
    "exact_gradient_bernoulli",
    "exact_gradient_categorical",
    "leave_one_out_baseline",
    "reinforce_surrogate",
    "straight_through",
]

MAX_BINARY_VARIABLES = 20


def straight_through(forward: Tensor, backward: Tensor) -> Tensor:
    r"""Return a tensor whose value is ``forward`` and whose gradient is that of ``backward``.

    .. math:: y = \mathrm{sg}(f) + \big(b - \mathrm{sg}(b)\big),

    where :math:`\mathrm{sg}` stops gradients (``detach``). Since ``b - b.detach()`` is exactly
    zero, ``y`` equals ``forward`` bit for bit (the often-copied form
    ``f - b.detach() + b`` can be off by one ulp), while :math:`\partial y/\partial b = I`.

    Args:
        forward: the value to use in the forward pass, shape ``[...]`` (e.g. a one-hot sample).
        backward: a floating tensor of the same shape and dtype whose gradient is used (e.g.
            the relaxed sample).

    Returns:
        Tensor of the same shape: value ``forward``, gradient flowing into ``backward``.

    Example:
        >>> soft = torch.tensor([0.2, 0.8], requires_grad=True)
        >>> y = straight_through(torch.tensor([0.0, 1.0]), soft)
        >>> y
        tensor([0., 1.], grad_fn=<AddBackward0>)

    Reference:
        Y. Bengio, N. Leonard, A. Courville (2013), *Estimating or Propagating Gradients
        Through Stochastic Neurons for Conditional Computation*, arXiv:1308.3432.
    """
    check_tensor(forward, "forward", floating=False)
    check_tensor(backward, "backward")
    check_same_shape(forward, backward, ("forward", "backward"))
    if forward.dtype != backward.dtype:
        raise TypeError(
            f"forward and backward must have the same dtype, got {forward.dtype} and "
            f"{backward.dtype}; convert with forward.to(backward.dtype)"
        )
    return forward.detach() + (backward - backward.detach())


def _as_reward(x: object, name: str, like: Tensor) -> Tensor:
    if isinstance(x, Tensor):
        if x.dtype == torch.bool or x.dtype.is_complex:
            raise TypeError(f"{name} must be a real-valued tensor, got dtype {x.dtype}; "
                            f"convert with {name}.float()")
        return x
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a torch.Tensor or a real number, got {type_name(x)}")
    return torch.tensor(float(x), device=like.device)


def reinforce_surrogate(
    log_prob: Tensor,
    reward: Tensor | float,
    baseline: Tensor | float | None = None,
) -> Tensor:
    r"""Surrogate loss whose gradient is the REINFORCE (score-function) estimate.

    For samples :math:`z_s \sim p_\phi` with rewards :math:`r_s` and baselines :math:`b_s`,

    .. math:: L(\phi) = \frac{1}{S}\sum_{s=1}^{S}\mathrm{sg}(r_s - b_s)\,\log p_\phi(z_s),
              \qquad \nabla_\phi L = \frac1S \sum_s (r_s - b_s)\,\nabla_\phi \log p_\phi(z_s),

    an unbiased estimate of :math:`\nabla_\phi\,\mathbb{E}_{p_\phi}[r]` as long as
    :math:`b_s` does not depend on :math:`z_s` (a constant, or :func:`leave_one_out_baseline`).
    ``reward`` and ``baseline`` are detached: no gradient flows into them.

    The VALUE of the surrogate is not the expected reward (nor an estimate of it): only its
    gradient is meaningful. Log the rewards themselves to monitor training. To minimise a cost,
    pass the cost as ``reward`` and minimise the surrogate; to maximise a reward, minimise
    ``-reinforce_surrogate(...)``.

    Args:
        log_prob: floating tensor ``[S, ...]``: the JOINT log-probability of each sample
            (sum over the event's dimensions first), with the sample dimension first.
        reward: rewards (or costs) of the samples, broadcastable to ``log_prob.shape``.
        baseline: optional baseline, broadcastable to ``log_prob.shape``.

    Returns:
        Scalar tensor: the mean over all elements of ``sg(reward - baseline) * log_prob``.

    Example:
        >>> logits = torch.zeros(3, requires_grad=True)
        >>> dist = torch.distributions.Categorical(logits=logits)
        >>> z = dist.sample((100,))
        >>> reward = (z == 2).float()
        >>> reinforce_surrogate(dist.log_prob(z), reward, leave_one_out_baseline(reward)).backward()

    Reference:
        R. J. Williams (1992), *Simple Statistical Gradient-Following Algorithms for
        Connectionist Reinforcement Learning*, Machine Learning 8.
    """
    check_tensor(log_prob, "log_prob")
    reward_t = _as_reward(reward, "reward", log_prob)
    shapes = [("log_prob", log_prob.shape), ("reward", reward_t.shape)]
    baseline_t = None if baseline is None else _as_reward(baseline, "baseline", log_prob)
    if baseline_t is not None:
        shapes.append(("baseline", baseline_t.shape))
    if broadcast_shapes(*(s for _, s in shapes)) != log_prob.shape:
        described = ", ".join(f"{n} {tuple(s)}" for n, s in shapes)
        raise ValueError(
            f"reward and baseline must broadcast to log_prob's shape {tuple(log_prob.shape)}, "
            f"got {described}; a common slip is a reward of shape [S, 1] against a log_prob "
            f"of shape [S], which broadcasts to [S, S]"
        )
    advantage = reward_t.detach()
    if baseline_t is not None:
        advantage = advantage - baseline_t.detach()
    return (advantage.to(device=log_prob.device, dtype=log_prob.dtype) * log_prob).mean()


def leave_one_out_baseline(rewards: Tensor, dim: int = 0) -> Tensor:
    r"""For each sample, the mean reward of the OTHER samples along ``dim``.

    .. math:: b_s = \frac{1}{S-1}\sum_{j \neq s} r_j = \frac{\sum_j r_j - r_s}{S-1}.

    Because :math:`b_s` does not depend on sample :math:`s`, REINFORCE with this baseline stays
    unbiased; a plain batch mean (which includes :math:`r_s`) shrinks the gradient by a factor
    :math:`1 - 1/S`.

    Args:
        rewards: floating tensor ``[S, ...]`` with the samples along ``dim``, ``S >= 2``.
        dim: the sample dimension.

    Returns:
        Detached tensor of the same shape as ``rewards``.

    Example:
        >>> leave_one_out_baseline(torch.tensor([1.0, 2.0, 3.0]))
        tensor([2.5000, 2.0000, 1.5000])

    Reference:
        W. Kool, H. van Hoof, M. Welling (2019), *Buy 4 REINFORCE Samples, Get a Baseline for
        Free!*, ICLR Deep RL Meets Structured Prediction workshop.
    """
    check_tensor(rewards, "rewards")
    dim = check_dim(rewards, dim, tensor_name="rewards")
    n_samples = rewards.shape[dim]
    if n_samples < 2:
        raise ValueError(
            f"rewards needs at least 2 samples along dim={dim} for a leave-one-out baseline, "
            f"got shape {tuple(rewards.shape)}"
        )
    rewards = rewards.detach()
    return (rewards.sum(dim=dim, keepdim=True) - rewards) / (n_samples - 1)


def _check_1d_logits(logits: Tensor, what: str) -> None:
    check_tensor(logits, "logits")
    if logits.dim() != 1:
        raise ValueError(
            f"logits must be 1-D ([{what}]) for exact enumeration, got shape "
            f"{tuple(logits.shape)}; exact enumeration supports a single distribution only, "
            f"loop over the batch to handle several"
        )


def _check_costs(costs: object, n: int, what: str) -> Tensor:
    if not isinstance(costs, Tensor):
        raise TypeError(f"f must return a torch.Tensor of shape [{n}], got {type_name(costs)}")
    if costs.shape != (n,):
        raise ValueError(
            f"f must return one value per {what}, shape [{n}], got {tuple(costs.shape)}"
        )
    return costs


def exact_expectation_categorical(
    logits: Tensor, f: Callable[[Tensor], Tensor]
) -> Tensor:
    r"""Exact :math:`\mathbb{E}_{z \sim \mathrm{Categorical}(\mathrm{softmax}(\ell))}[f(z)]`.

    .. math:: \mathbb{E}[f] = \sum_{i=1}^{K} \mathrm{softmax}(\ell)_i\, f(e_i),

    with :math:`e_i` the one-hot vector of category :math:`i`. Differentiable with respect to
    ``logits`` and to anything ``f`` depends on.

    Args:
        logits: floating tensor ``[K]`` (1-D only; ``-inf`` masks a category).
        f: callable mapping the one-hot matrix ``[K, K]`` (row ``i`` = :math:`e_i`) to the costs
            ``[K]``.

    Returns:
        Scalar tensor.

    Example:
        >>> logits = torch.tensor([0.0, 0.0])
        >>> exact_expectation_categorical(logits, lambda z: z @ torch.tensor([1.0, 3.0]))
        tensor(2.)

    Reference:
        Mohamed, Rosca, Figurnov, Mnih (2020), *Monte Carlo Gradient Estimation in Machine
        Learning*, JMLR 21.
    """
    _check_1d_logits(logits, "K")
    check_logits(logits)
    check_callable(f, "f")
    n_categories = logits.shape[0]
    one_hot = torch.eye(n_categories, dtype=logits.dtype, device=logits.device)
    costs = _check_costs(f(one_hot), n_categories, "category")
    probs = torch.softmax(logits, dim=0)
    return (probs * costs).sum()


def exact_gradient_categorical(
    logits: Tensor, f: Callable[[Tensor], Tensor]
) -> Tensor:
    r"""Exact gradient :math:`\nabla_\ell\, \mathbb{E}_{z \sim \mathrm{softmax}(\ell)}[f(z)]`.

    Equals :math:`p_i\,(f(e_i) - \mathbb{E}[f])` for each category :math:`i` when ``f`` does
    not depend on ``logits``. Computed by autograd on a detached leaf copy of ``logits``, so
    ``f`` is treated as given and no ``.grad`` is accumulated anywhere.

    Args:
        logits: floating tensor ``[K]``.
        f: callable mapping the one-hot matrix ``[K, K]`` to the costs ``[K]``.

    Returns:
        Detached tensor ``[K]``.

    Example:
        >>> exact_gradient_categorical(torch.zeros(2), lambda z: z @ torch.tensor([1.0, 3.0]))
        tensor([-0.5000,  0.5000])

    Reference:
        Mohamed, Rosca, Figurnov, Mnih (2020), JMLR 21.
    """
    _check_1d_logits(logits, "K")
    leaf = logits.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        expectation = exact_expectation_categorical(leaf, f)
        (grad,) = torch.autograd.grad(expectation, leaf, allow_unused=True)
    return torch.zeros_like(leaf).detach() if grad is None else grad.detach()


def enumerate_binary(
    n: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Tensor:
    r"""All :math:`2^n` binary vectors of length ``n``, as rows.

    Row ``i`` is the binary expansion of ``i``, most significant bit first (the order of
    ``itertools.product([0, 1], repeat=n)``).

    Args:
        n: number of binary variables, ``1 <= n <= 20``.
        dtype: dtype of the output.
        device: device of the output (None: the default device).

    Returns:
        Tensor ``[2**n, n]`` with entries 0 and 1.

    Example:
        >>> enumerate_binary(2)
        tensor([[0., 0.],
                [0., 1.],
                [1., 0.],
                [1., 1.]])
    """
    n = check_int(n, "n", min_value=1)
    if n > MAX_BINARY_VARIABLES:
        raise ValueError(
            f"n must be <= {MAX_BINARY_VARIABLES} for exact enumeration (got {n}: 2**{n} "
            f"configurations); use a Monte Carlo estimate instead"
        )
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype, got {type_name(dtype)}")
    index = torch.arange(2**n, dtype=torch.int32, device=device).unsqueeze(1)
    shifts = torch.arange(n - 1, -1, -1, dtype=torch.int32, device=device).unsqueeze(0)
    return ((index >> shifts) & 1).to(dtype)


def exact_expectation_bernoulli(
    logits: Tensor, f: Callable[[Tensor], Tensor]
) -> Tensor:
    r"""Exact :math:`\mathbb{E}[f(b)]` for independent :math:`b_i\sim\mathrm{Bern}(\sigma(\ell_i))`.

    .. math:: \mathbb{E}[f] = \sum_{b \in \{0,1\}^n} p(b) f(b), \quad
              \log p(b) = \sum_i b_i \log\sigma(\ell_i) + (1 - b_i)\log\sigma(-\ell_i),

    with the log-probabilities formed by ``logsigmoid`` (stable for large ``|logits|``).
    Differentiable with respect to ``logits`` and to anything ``f`` depends on.

    Args:
        logits: finite floating tensor ``[n]``, ``n <= 20`` (1-D only).
        f: callable mapping the configurations ``[2**n, n]`` (float 0/1, in the order of
            :func:`enumerate_binary`) to the costs ``[2**n]``.

    Returns:
        Scalar tensor.

    Example:
        >>> logits = torch.tensor([0.0, 0.0])
        >>> exact_expectation_bernoulli(logits, lambda b: b.sum(-1))
        tensor(1.)

    Reference:
        Mohamed, Rosca, Figurnov, Mnih (2020), JMLR 21.
    """
    _check_1d_logits(logits, "n")
    check_logits(logits, dim=None)
    check_callable(f, "f")
    configs = enumerate_binary(logits.shape[0], dtype=logits.dtype, device=logits.device)
    costs = _check_costs(f(configs), configs.shape[0], "configuration")
    log_p = configs @ F.logsigmoid(logits) + (1.0 - configs) @ F.logsigmoid(-logits)
    return (log_p.exp() * costs).sum()


def exact_gradient_bernoulli(logits: Tensor, f: Callable[[Tensor], Tensor]) -> Tensor:
    r"""Exact gradient :math:`\nabla_\ell\, \mathbb{E}_{b}[f(b)]` for independent Bernoullis.

    For a linear :math:`f(b) = c^\top b` this is :math:`\sigma'(\ell_i)\, c_i
    = \sigma(\ell_i)(1 - \sigma(\ell_i))\, c_i`. Computed by autograd on a detached leaf copy
    of ``logits``; ``f`` is treated as given.

    Args:
        logits: finite floating tensor ``[n]``, ``n <= 20``.
        f: callable mapping the configurations ``[2**n, n]`` to the costs ``[2**n]``.

    Returns:
        Detached tensor ``[n]``.

    Example:
        >>> exact_gradient_bernoulli(torch.zeros(2), lambda b: b @ torch.tensor([1.0, -2.0]))
        tensor([ 0.2500, -0.5000])

    Reference:
        Mohamed, Rosca, Figurnov, Mnih (2020), JMLR 21.
    """
    _check_1d_logits(logits, "n")
    leaf = logits.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        expectation = exact_expectation_bernoulli(leaf, f)
        (grad,) = torch.autograd.grad(expectation, leaf, allow_unused=True)
    return torch.zeros_like(leaf).detach() if grad is None else grad.detach()
