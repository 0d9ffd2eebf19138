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

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from lib import rng
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
    "EstimatorSpec",
    "bernoulli_log_prob",
    "cost_evaluations",
    "StochasticNode",
    "Surrogate",
    "enumerate_binary",
    "estimator_names",
    "estimator_params",
    "get_estimator_spec",
    "register_estimator",
    "surrogate",
    "exact_expectation_bernoulli",
    "exact_expectation_categorical",
    "exact_gradient_bernoulli",
    "exact_gradient_categorical",
    "leave_one_out_baseline",
    "reinforce_surrogate",
    "straight_through",
]

MAX_BINARY_VARIABLES = 20


def _log_sigmoid(x: Tensor) -> Tensor:
    """``log(sigmoid(x)) = -softplus(-x)``, stable for large ``|x|``.

    Used instead of ``F.logsigmoid``, whose CPU kernel (torch 2.13) runs multi-threaded even on
    tiny tensors and took ~30 ms per call on a loaded 2-core machine, against microseconds here.
    """
    return -F.softplus(-x)


def bernoulli_log_prob(logits: Tensor, z: Tensor) -> Tensor:
    r"""Element-wise :math:`\log p(z) = z \log\sigma(\ell) + (1 - z)\log\sigma(-\ell)`.

    Stable for large :math:`|\ell|`; ``z`` may be 0/1 or relaxed values in [0, 1]. Shapes
    broadcast; sum over the variables of one joint sample yourself (or use
    :meth:`StochasticNode.log_prob`, which also handles padding).

    Example:
        >>> bernoulli_log_prob(torch.tensor([0.0, 100.0]), torch.tensor([1.0, 0.0]))
        tensor([  -0.6931, -100.0000])
    """
    return z * _log_sigmoid(logits) + (1 - z) * _log_sigmoid(-logits)


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
    return _gradient_of(exact_expectation_categorical, logits, f)


def _gradient_of(expectation: Callable[[Tensor, Callable], Tensor], logits: Tensor,
                 f: Callable[[Tensor], Tensor]) -> Tensor:
    """Detached gradient of ``expectation(leaf, f)`` at a detached leaf copy of ``logits``."""
    leaf = logits.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(expectation(leaf, f), leaf, allow_unused=True)
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

    with the log-probabilities formed by ``-softplus(-x)`` (stable for large ``|logits|``).
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
    log_p = configs @ _log_sigmoid(logits) + (1.0 - configs) @ _log_sigmoid(-logits)
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
    return _gradient_of(exact_expectation_bernoulli, logits, f)


# --------------------------------------------------------------------------------------------
# Stochastic nodes and the estimator registry
# --------------------------------------------------------------------------------------------
#
# Every model of the book (the lab's toy problems, the autoencoder, the rationale model, the
# VAE) asks the same question: given logits of a discrete random choice and a cost of its
# outcome, what loss should I call .backward() on? The registry answers it once, by name.

#: Most joint outcomes the ``exact`` estimator enumerates per batch element.
MAX_EXACT_OUTCOMES = 2**20


@dataclass(frozen=True)
class StochasticNode:
    r"""A discrete random choice with logits: one-hot categorical, or Bernoulli 0/1.

    ``logits`` has shape ``[*batch, *event, K]`` (categorical: K categories on the last
    dimension) or ``[*batch, *event]`` (Bernoulli). The ``event_dims`` dimensions before the
    category dimension are independent variables that form ONE joint sample: their
    log-probabilities add up, and the cost sees them together. A VAE's code of N categorical
    variables per image is ``StochasticNode("categorical", logits [B, N, K], event_dims=1)``;
    a rationale mask over L tokens is ``StochasticNode("bernoulli", logits [B, L],
    event_dims=1, mask=real_tokens)``.

    Attributes:
        kind: ``"categorical"`` or ``"bernoulli"``.
        logits: floating tensor as above (differentiable: gradients flow into it).
        event_dims: number of variable dimensions that form one joint sample (>= 0).
        mask: optional boolean tensor of the variables' shape ``[*batch, *event]``: ``False``
            marks variables that do not exist (padding). Their samples are 0 and they add
            nothing to the log-probability. Bernoulli nodes only.
        fixed_uniforms: optional uniforms ``[n, *shape]`` (``shape`` broadcastable to the
            logits' shape; drawn like :meth:`uniforms`) that :meth:`uniforms`,
            :meth:`sample` and :meth:`relaxed` return or transform for ``n`` samples instead
            of drawing from the generator. Every estimator that draws through the node then
            uses this noise, so nodes given the same tensor share their noise (common random
            numbers: several models side by side, one draw).
    """

    kind: str
    logits: Tensor
    event_dims: int = 0
    mask: Tensor | None = None
    fixed_uniforms: Tensor | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("categorical", "bernoulli"):
            raise ValueError(f"kind must be 'categorical' or 'bernoulli', got {self.kind!r}")
        check_tensor(self.logits, "logits")
        check_int(self.event_dims, "event_dims", min_value=0)
        extra = 1 if self.kind == "categorical" else 0
        if self.logits.dim() < self.event_dims + extra:
            raise ValueError(
                f"logits of a {self.kind} node with event_dims={self.event_dims} need at least "
                f"{self.event_dims + extra} dimensions, got shape {tuple(self.logits.shape)}"
            )
        if self.mask is not None:
            if self.kind != "bernoulli":
                raise ValueError("mask is supported for Bernoulli nodes only")
            if not isinstance(self.mask, Tensor) or self.mask.shape != self.logits.shape:
                got = (tuple(self.mask.shape) if isinstance(self.mask, Tensor)
                       else type_name(self.mask))
                raise ValueError(f"mask must be a boolean tensor of the logits' shape "
                                 f"{tuple(self.logits.shape)}, got {got}")
        if self.fixed_uniforms is not None:
            u = check_tensor(self.fixed_uniforms, "fixed_uniforms")
            if (u.dim() != self.logits.dim() + 1
                    or broadcast_shapes(u.shape[1:], self.logits.shape) != self.logits.shape):
                raise ValueError(f"fixed_uniforms must have shape [n, *shape] with shape "
                                 f"broadcastable to the logits' {tuple(self.logits.shape)}, "
                                 f"got {tuple(u.shape)}")

    @property
    def batch_shape(self) -> torch.Size:
        """Shape of the independent joint samples: logits' shape without event and K."""
        extra = 1 if self.kind == "categorical" else 0
        return self.logits.shape[: self.logits.dim() - self.event_dims - extra]

    def _valid(self, like: Tensor) -> Tensor | None:
        return None if self.mask is None else self.mask.to(like.dtype)

    def _expand(self, n: int) -> Tensor:
        return self.logits.expand(n, *self.logits.shape)

    def _fixed(self, n: int) -> Tensor | None:
        """The fixed uniforms for ``n`` samples, or None (then draw from the generator)."""
        u = self.fixed_uniforms
        if u is not None and u.shape[0] != n:
            raise ValueError(f"fixed_uniforms hold {u.shape[0]} sample(s), but {n} were asked "
                             f"for (n_samples={n})")
        return u

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` exact samples ``[n, *logits.shape]`` (one-hot or 0/1), without gradient."""
        from lib._validation import check_generator

        check_generator(generator, like=self.logits)
        logits = self._expand(check_int(n, "n", min_value=1)).detach()
        fixed = self._fixed(n)
        if fixed is not None:
            return self.sample_from(fixed)
        if self.kind == "categorical":
            from lib.gumbel import gumbel_max_sample

            index = gumbel_max_sample(logits, generator=generator)
            return F.one_hot(index, logits.shape[-1]).to(logits.dtype)
        u = rng.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
        z = (u < torch.sigmoid(logits)).to(logits.dtype)
        valid = self._valid(z)
        return z if valid is None else z * valid

    def uniforms(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws of the noise behind every sample: uniforms ``[n, *logits.shape]``.

        Strictly inside (0, 1) (clamped to ``[tiny, 1 - eps/2]``), so every transform below is
        finite. Estimators that couple samples (antithetic pairs ``u`` and ``1 - u``, or a hard
        and a relaxed sample of the same noise) draw them here and map them with
        :meth:`sample_from` and :meth:`relaxed_from`.
        """
        from lib._validation import check_generator
        from lib.gumbel import _uniform_open_like

        check_generator(generator, like=self.logits)
        like = self._expand(check_int(n, "n", min_value=1)).detach()
        fixed = self._fixed(n)
        if fixed is not None:
            return fixed.to(dtype=like.dtype, device=like.device).expand(like.shape).clone()
        return _uniform_open_like(like, generator)

    def _noise(self, u: Tensor) -> Tensor:
        # Gumbel noise -log(-log u) (categorical) or logistic noise log u - log(1 - u)
        if self.kind == "categorical":
            return -torch.log(-torch.log(u))
        return torch.log(u) - torch.log1p(-u)

    def sample_from(self, u: Tensor) -> Tensor:
        """The exact sample that uniforms ``u`` (shape ``[..., *logits.shape]``) select.

        Categorical: ``one_hot(argmax(logits + G))`` with ``G = -log(-log u)`` (Gumbel-max);
        Bernoulli: ``1[logits + log u - log(1 - u) > 0]``, i.e. ``1[u > sigmoid(-logits)]``.
        Both are the ``hard`` values of :meth:`relaxed_from` on the same ``u``. No gradient.
        """
        check_tensor(u, "u")
        score = self.logits.detach() + self._noise(u)
        if self.kind == "categorical":
            z = F.one_hot(score.argmax(-1), score.shape[-1]).to(score.dtype)
        else:
            z = (score > 0).to(score.dtype)
        valid = self._valid(z)
        return z if valid is None else z * valid

    def relaxed_from(self, u: Tensor, tau: float | Tensor, hard: bool = False) -> Tensor:
        """The Concrete / Binary Concrete sample of uniforms ``u``, differentiable in the logits.

        ``softmax((logits + G) / tau)`` or ``sigmoid((logits + L) / tau)``; with
        ``hard=True`` the value is :meth:`sample_from` and the gradient the relaxed sample's.
        """
        from lib._validation import check_tau

        check_tensor(u, "u")
        tau = check_tau(tau)
        score = (self.logits + self._noise(u)) / tau
        soft = torch.softmax(score, -1) if self.kind == "categorical" else torch.sigmoid(score)
        z = straight_through(self.sample_from(u), soft) if hard else soft
        valid = self._valid(z)
        return z if valid is None else z * valid

    def relaxed(self, n: int, tau: float | Tensor, hard: bool,
                generator: torch.Generator | None = None) -> Tensor:
        """``n`` Gumbel-softmax (Concrete) or Binary Concrete samples, differentiable.

        With ``hard=True`` the value is the exact sample ``argmax`` / threshold of the same
        noise, and the gradient is the relaxed sample's (straight-through Gumbel-softmax).
        """
        from lib.relaxed import gumbel_softmax, relaxed_bernoulli

        logits = self._expand(check_int(n, "n", min_value=1))
        fixed = self._fixed(n)
        if fixed is not None:
            return self.relaxed_from(fixed, tau, hard)
        if self.kind == "categorical":
            return gumbel_softmax(logits, tau, hard=hard, generator=generator)
        z = relaxed_bernoulli(logits, tau, hard=hard, generator=generator)
        valid = self._valid(z)
        return z if valid is None else z * valid

    def probs(self) -> Tensor:
        """Mean of a sample, ``logits.shape`` (softmax or sigmoid), differentiable."""
        if self.kind == "categorical":
            return torch.softmax(self.logits, dim=-1)
        p = torch.sigmoid(self.logits)
        valid = self._valid(p)
        return p if valid is None else p * valid

    def log_prob(self, z: Tensor) -> Tensor:
        """Joint log-probability ``[..., *batch]`` of samples ``z`` ``[..., *logits.shape]``."""
        if self.kind == "categorical":
            log_p = torch.log_softmax(self.logits, dim=-1)
            # where(z > 0) keeps -inf (impossible) categories from giving 0 * -inf = NaN
            per_variable = torch.where(z > 0, log_p, torch.zeros_like(log_p)).sum(-1)
        else:
            per_variable = bernoulli_log_prob(self.logits, z)
            valid = self._valid(per_variable)
            if valid is not None:
                per_variable = per_variable * valid
        if self.event_dims == 0:
            return per_variable
        return per_variable.sum(dim=tuple(range(-self.event_dims, 0)))

    def outcomes(self) -> tuple[Tensor, Tensor]:
        """Every joint outcome and its probability: ``(z [M, *logits.shape], p [M, *batch])``.

        M is ``K ** V`` (categorical) or ``2 ** V`` (Bernoulli) for V variables per joint
        sample. Outcomes that set a masked (padding) variable get probability 0. ``p`` is
        differentiable in the logits.
        """
        event = self.logits.shape[self.logits.dim() - self.event_dims
                                   - (1 if self.kind == "categorical" else 0):]
        n_var = math.prod(event[:-1]) if self.kind == "categorical" else math.prod(event)
        k = self.logits.shape[-1] if self.kind == "categorical" else 2
        if k**n_var > MAX_EXACT_OUTCOMES:
            raise ValueError(
                f"exact enumeration of {k}**{n_var} joint outcomes exceeds MAX_EXACT_OUTCOMES="
                f"{MAX_EXACT_OUTCOMES}; use a sampling estimator"
            )
        dtype, device = self.logits.dtype, self.logits.device
        batch_ones = (1,) * len(self.batch_shape)
        if self.kind == "categorical":
            index = torch.arange(k**n_var, device=device)
            digits = torch.stack([(index // k**i) % k for i in range(n_var - 1, -1, -1)], -1)
            z = F.one_hot(digits, k).to(dtype).reshape(-1, *batch_ones, *event)
            z = z.expand(-1, *self.logits.shape)
            return z, self.log_prob(z).exp()
        configs = enumerate_binary(n_var, dtype=dtype, device=device)  # [M, V]
        z = configs.reshape(-1, *batch_ones, *event).expand(-1, *self.logits.shape)
        valid = self._valid(z)
        if valid is None:
            return z, self.log_prob(z).exp()
        z_valid = z * valid
        log_p = self.log_prob(z_valid)
        sets_padding = (z * (1 - valid)).flatten(len(self.batch_shape) + 1).sum(-1) > 0
        return z_valid, log_p.masked_fill(sets_padding, -math.inf).exp()


class Surrogate(NamedTuple):
    r"""What a registered estimator returns.

    Attributes:
        loss: tensor ``[*batch]``, differentiable: for each batch element, the gradient of
            ``loss`` with respect to the logits (and to any parameter of the cost) is the
            estimator's estimate of the gradient of :math:`\mathbb{E}_z[\mathrm{cost}(z)]`.
            Its value is an estimate of the expected cost only for pathwise and exact
            estimators; sum or average it over the batch and call ``.backward()``.
        cost: detached tensor ``[*batch]``: the estimate of the expected cost (the cost of
            the relaxed samples for ``gumbel_softmax``).
        samples: detached tensor ``[M, *logits.shape]``: the points where the cost was
            evaluated (samples, or every outcome for ``exact``).
        weights: detached tensor ``[M, *batch]``: ``sum_m weights[m] * g(samples[m])``
            estimates :math:`\mathbb{E}[g(z)]` for any other statistic g (1/S for S samples,
            the probabilities for ``exact``).
    """

    loss: Tensor
    cost: Tensor
    samples: Tensor
    weights: Tensor


#: A cost: samples ``[M, *logits.shape]`` -> costs ``[M, *batch]``, differentiable in the
#: samples (for pathwise estimators) and in its own parameters.
Cost = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class EstimatorSpec:
    """A registered estimator: its function and what tables and checks need to know.

    Attributes:
        name: the registry name.
        fn: ``fn(node, cost, n_samples, generator, **params) -> Surrogate``.
        params: the parameters ``fn`` takes, with their defaults (e.g. ``{"tau": 1.0}``).
        unbiased: whether its expectation is the exact gradient for every cost.
        label: a readable name for tables and legends.
        description: one line on what it computes.
        min_samples: the least ``n_samples`` it works with.
        kinds: the node kinds it works on (``("categorical", "bernoulli")`` by default).
    """

    name: str
    fn: Callable[..., Surrogate]
    params: dict
    unbiased: bool
    label: str
    description: str
    min_samples: int = 1
    kinds: tuple[str, ...] = ("categorical", "bernoulli")


_ESTIMATORS: dict[str, EstimatorSpec] = {}


def register_estimator(
    name: str,
    *,
    unbiased: bool,
    label: str = "",
    description: str = "",
    params: dict | None = None,
    min_samples: int = 1,
    replace: bool = False,
    kinds: tuple[str, ...] = ("categorical", "bernoulli"),
) -> Callable[[Callable[..., Surrogate]], Callable[..., Surrogate]]:
    r"""Decorator: register ``fn(node, cost, n_samples, generator, **params) -> Surrogate``.

    Once registered, the estimator is known by ``name`` everywhere the book takes an
    estimator: :func:`lib.compare.get_estimator` (the lab), :func:`lib.vae.vae_loss`,
    :func:`lib.rationales.rationale_loss` and :func:`lib.bottleneck.train_autoencoder`.

    The function receives a :class:`StochasticNode` ``node`` and a cost ``cost`` (samples
    ``[M, *node.logits.shape]`` to costs ``[M, *node.batch_shape]``), and returns a
    :class:`Surrogate` whose ``loss`` has the gradient it proposes. Two kinds plug in:

    * pathwise estimators build a differentiable sample ``z`` from ``node.logits`` (e.g.
      ``node.relaxed(...)``) and return ``cost(z).mean(0)``;
    * estimators that need the cost's value (score function, control variates) draw exact
      samples (``node.sample``), evaluate ``cost`` and add a term such as
      ``sg(c - b) * node.log_prob(z)``.

    Args:
        name: the new name (a ``ValueError`` if taken, unless ``replace=True``).
        unbiased: whether the estimator is unbiased for every cost.
        label: readable name for tables (default: ``name``).
        description: one line for tables.
        params: keyword parameters and their defaults, e.g. ``{"tau": 1.0}``.
        min_samples: the least ``n_samples`` it works with (2 for leave-one-out).
        kinds: the node kinds it supports; :func:`surrogate` refuses the others.

    Example:
        >>> @register_estimator("st_identity", unbiased=False)
        ... def st_identity(node, cost, n_samples, generator):
        ...     hard = node.sample(n_samples, generator)
        ...     z = hard + (node.logits - node.logits.detach())  # identity backward
        ...     costs = cost(z)
        ...     return Surrogate(costs.mean(0), costs.mean(0).detach(), hard,
        ...                      torch.full_like(costs, 1 / n_samples).detach())
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be a Python identifier, got {name!r}")
    if name in _ESTIMATORS and not replace:
        raise ValueError(f"an estimator named {name!r} is already registered; pass replace=True")

    def decorate(fn: Callable[..., Surrogate]) -> Callable[..., Surrogate]:
        check_callable(fn, "fn")
        _ESTIMATORS[name] = EstimatorSpec(
            name=name, fn=fn, params=dict(params or {}), unbiased=bool(unbiased),
            label=label or name, description=description,
            min_samples=check_int(min_samples, "min_samples", min_value=1),
            kinds=_check_kinds(kinds),
        )
        return fn

    return decorate


#: Node kinds: the two of :class:`StochasticNode`, the k-subsets of
#: :class:`lib.subsets.KSubsetNode` and the permutations of
#: :class:`lib.permutations.PermutationNode` (each a categorical over its structures, with the
#: same methods).
NODE_KINDS = ("categorical", "bernoulli", "ksubset", "permutation")

#: The kinds of the book's six estimators: they use only the node's generic methods (sample,
#: relaxed, probs, log_prob, outcomes), so they also run on a k-subset node.
_GENERIC_KINDS = NODE_KINDS


def _check_kinds(kinds: object) -> tuple[str, ...]:
    if not isinstance(kinds, tuple) or not kinds or any(k not in NODE_KINDS for k in kinds):
        raise ValueError(f"kinds must be a non-empty tuple of {', '.join(map(repr, NODE_KINDS))}, "
                         f"got {kinds!r}")
    return kinds


def estimator_names(kind: str | None = None) -> tuple[str, ...]:
    """Names of the registered estimators, in registration order.

    With ``kind`` (one of :data:`NODE_KINDS`) only those that support that node kind
    (``arm`` and ``disarm`` are Bernoulli-only; k-subsets and permutations take the six
    generic estimators).
    """
    if kind is None:
        return tuple(_ESTIMATORS)
    if kind not in NODE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, NODE_KINDS))}, got {kind!r}")
    return tuple(n for n, spec in _ESTIMATORS.items() if kind in spec.kinds)


def get_estimator_spec(name: object) -> EstimatorSpec:
    """The :class:`EstimatorSpec` registered as ``name`` (``ValueError`` naming the known)."""
    if not isinstance(name, str):
        raise TypeError(f"estimator must be a str, got {type_name(name)}")
    if name not in _ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; choose one of {', '.join(_ESTIMATORS)}")
    return _ESTIMATORS[name]


def estimator_params(name: str, **params: object) -> dict:
    """The estimator's parameters: its defaults updated by ``params`` (unknown names refused)."""
    spec = get_estimator_spec(name)
    unknown = sorted(set(params) - set(spec.params))
    if unknown:
        allowed = ", ".join(spec.params) if spec.params else "none"
        raise ValueError(f"estimator {name!r} does not take parameter(s) {', '.join(unknown)} "
                         f"(allowed: {allowed})")
    merged = {**spec.params, **params}
    if "tau" in merged:
        from lib._validation import check_tau

        merged["tau"] = check_tau(merged["tau"])
    return merged


def surrogate(
    estimator: str,
    node: StochasticNode,
    cost: Cost,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    **params: object,
) -> Surrogate:
    r"""Run the registered ``estimator`` on ``node`` and ``cost``: the book's one entry point.

    Args:
        estimator: a name from :func:`estimator_names`.
        node: the :class:`StochasticNode` (its logits carry the gradient).
        cost: samples ``[n_samples, *node.logits.shape]`` -> costs
            ``[n_samples, *node.batch_shape]``.
        n_samples: samples per batch element (ignored by ``exact``).
        generator: optional ``torch.Generator`` on the CPU or on the logits' device.
        **params: the estimator's parameters (e.g. ``tau``), see :func:`estimator_params`.

    Returns:
        A :class:`Surrogate`; ``surrogate(...).loss.sum().backward()`` puts the estimate of
        the gradient of the summed expected costs into the logits' graph.

    Example:
        >>> logits = torch.zeros(3, requires_grad=True)
        >>> node = StochasticNode("categorical", logits)
        >>> out = surrogate("exact", node, lambda z: z @ torch.tensor([1.0, 2.0, 4.0]))
        >>> out.loss.backward(); logits.grad
        tensor([-0.4444, -0.1111,  0.5556])
    """
    from lib._validation import check_generator

    spec = get_estimator_spec(estimator)
    if not isinstance(node, StochasticNode):
        raise TypeError(f"node must be a StochasticNode, got {type_name(node)}")
    check_callable(cost, "cost")
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    if node.kind not in spec.kinds:
        raise ValueError(f"estimator {estimator!r} supports {' and '.join(spec.kinds)} nodes "
                         f"only, got a {node.kind} node")
    if n_samples < spec.min_samples:
        raise ValueError(f"estimator {estimator!r} needs n_samples >= {spec.min_samples}, "
                         f"got n_samples={n_samples}")
    check_generator(generator, like=node.logits)
    merged = estimator_params(estimator, **params)
    shape = node.batch_shape

    def checked_cost(z: Tensor) -> Tensor:
        out = cost(z)
        if not isinstance(out, Tensor) or out.shape != (z.shape[0], *shape):
            got = tuple(out.shape) if isinstance(out, Tensor) else type_name(out)
            raise ValueError(f"cost must map samples {tuple(z.shape)} to costs "
                             f"{(z.shape[0], *shape)} (one per sample and batch element), "
                             f"got {got}")
        return out

    out = spec.fn(node, checked_cost, n_samples, generator, **merged)
    if not isinstance(out, Surrogate):
        raise TypeError(f"estimator {estimator!r} must return a Surrogate, got {type_name(out)}")
    return out


def _uniform_weights(costs: Tensor) -> Tensor:
    return torch.full_like(costs.detach(), 1.0 / costs.shape[0])


def _pathwise(z: Tensor, hard: Tensor, cost: Cost) -> Surrogate:
    costs = cost(z)
    return Surrogate(costs.mean(0), costs.mean(0).detach(), hard.detach(),
                     _uniform_weights(costs))


@register_estimator("exact", unbiased=True, label="exact",
                    kinds=_GENERIC_KINDS,
                    description="exact gradient by enumeration (ignores n_samples)")
def _exact(node, cost, n_samples, generator):
    z, p = node.outcomes()
    costs = cost(z)
    loss = (p * costs).sum(0)
    return Surrogate(loss, loss.detach(), z.detach(), p.detach())


def _score_function(node, cost, n_samples, generator, baseline):
    z = node.sample(n_samples, generator)
    costs = cost(z)  # gradient flows into the cost's own parameters, not into z
    log_p = node.log_prob(z)
    b = baseline(costs.detach()) if callable(baseline) else baseline
    advantage = costs.detach() if b is None else costs.detach() - b
    loss = costs.mean(0) + (advantage * log_p).mean(0)
    return Surrogate(loss, costs.mean(0).detach(), z, _uniform_weights(costs))


@register_estimator("reinforce", unbiased=True, label="REINFORCE",
                    kinds=_GENERIC_KINDS,
                    params={"baseline": None},
                    description="score function, no baseline")
def _reinforce(node, cost, n_samples, generator, baseline=None):
    r"""REINFORCE: :math:`\frac1S\sum_s (c_s - b_s)\nabla\log p(z_s)`.

    ``baseline`` is ``None``, a number, a tensor broadcastable to ``[S, *batch]``, or a
    function of the detached costs ``[S, *batch]`` returning such a tensor. The estimate is
    unbiased when the baseline of sample s does not depend on sample s (a constant,
    :func:`leave_one_out_baseline`, or an average of EARLIER batches).
    """
    if baseline is not None and not (isinstance(baseline, (Tensor, numbers.Real))
                                     or callable(baseline)):
        raise TypeError(f"baseline must be None, a number, a tensor or a function of the "
                        f"costs, got {type_name(baseline)}")
    return _score_function(node, cost, n_samples, generator, baseline)


@register_estimator("reinforce_loo", unbiased=True, label="REINFORCE + LOO", min_samples=2,
                    kinds=_GENERIC_KINDS,
                    description="score function, leave-one-out baseline (n_samples >= 2)")
def _reinforce_loo(node, cost, n_samples, generator):
    return _score_function(node, cost, n_samples, generator, leave_one_out_baseline)


@register_estimator("straight_through", unbiased=False, label="straight-through",
                    kinds=_GENERIC_KINDS,
                    description="hard sample forward, probabilities' gradient backward")
def _straight_through(node, cost, n_samples, generator):
    hard = node.sample(n_samples, generator)
    probs = node.probs().expand(hard.shape)
    return _pathwise(straight_through(hard, probs), hard, cost)


@register_estimator("gumbel_softmax", unbiased=False, label="Gumbel-softmax",
                    kinds=_GENERIC_KINDS,
                    params={"tau": 1.0},
                    description="relaxed sample at temperature tau, forward and backward")
def _gumbel_softmax(node, cost, n_samples, generator, tau):
    z = node.relaxed(n_samples, tau, False, generator)
    return _pathwise(z, z, cost)


@register_estimator("st_gumbel_softmax", unbiased=False, label="ST Gumbel-softmax",
                    kinds=_GENERIC_KINDS,
                    params={"tau": 1.0},
                    description="hard sample forward, relaxed sample's gradient backward")
def _st_gumbel_softmax(node, cost, n_samples, generator, tau):
    z = node.relaxed(n_samples, tau, True, generator)
    return _pathwise(z, z, cost)


# --------------------------------------------------------------------------------------------
# Rao-Blackwellised and second-order straight-through
# --------------------------------------------------------------------------------------------
#
# Two repairs of straight-through Gumbel-softmax that keep its forward pass (one exact sample)
# and change only its backward pass: Gumbel-Rao averages the relaxed gradient over the noise
# that could have produced the sample (lower variance, the same mean); ReinMax replaces the
# relaxed gradient by a second-order (Heun) approximation (a different mean). Chapter 11
# measures both against the exact gradient.


def _softmax_jacobian_surrogate(p: Tensor, logits: Tensor) -> Tensor:
    r"""A tensor whose value is 0 and whose backward pass is the softmax Jacobian at ``p``.

    ``h = p * (logits - <p, logits>)`` with ``p`` detached has
    :math:`\partial h_k / \partial \ell_j = p_k(\delta_{kj} - p_j)`, the Jacobian of
    ``softmax`` at probabilities ``p``, even where ``p`` is not a softmax of ``logits``.
    """
    p = p.detach()
    h = p * (logits - (p * logits).sum(-1, keepdim=True))
    return h - h.detach()


def _conditional_logistic(logits: Tensor, hard: Tensor, generator: torch.Generator | None
                          ) -> Tensor:
    r"""Logistic noise ``L`` given the Bernoulli sample ``b = 1[logits + L > 0]``, detached.

    Given ``b = 1`` the uniform behind ``L`` is uniform on :math:`(\sigma(-\ell), 1)`, given
    ``b = 0`` on :math:`(0, \sigma(-\ell))`. With :math:`W \sim U(0, 1)`:
    :math:`L = \log(1 - W\sigma(\ell)) - \log W - \log\sigma(\ell)` if ``b = 1`` and
    :math:`L = \log W + \log\sigma(-\ell) - \log(1 - W\sigma(-\ell))` if ``b = 0``, stable for
    large :math:`|\ell|`. ``logits`` and ``hard`` have the same shape; so has the result.
    """
    from lib.gumbel import _uniform_open_like

    logits = logits.detach()
    log_w = torch.log(_uniform_open_like(logits, generator))
    # on the side of the sample: s = +1 for b = 1, -1 for b = 0; L = s * (log(1 - W sigma(s l))
    # - log W - log sigma(s l))
    sign = 2 * hard.detach() - 1
    signed = sign * logits
    log_p = _log_sigmoid(signed)
    return sign * (torch.log1p(-torch.exp(log_w + log_p)) - log_w - log_p)


def _generator_seeded_by(u: Tensor) -> torch.Generator:
    """A CPU generator seeded by a hash of the values of ``u`` (reads them: waits for a GPU)."""
    import hashlib

    data = u.detach().to(torch.float64).contiguous().cpu().numpy().tobytes()
    seed = int.from_bytes(hashlib.sha256(data).digest()[:8], "little") >> 1
    return torch.Generator().manual_seed(seed)


@register_estimator(
    "gumbel_rao", unbiased=False, label="Gumbel-Rao", params={"tau": 1.0, "n_conditional": 10},
    description="hard sample forward; the relaxed gradient averaged over n_conditional "
                "draws of the noise given the sample")
def _gumbel_rao(node, cost, n_samples, generator, tau, n_conditional):
    r"""Gumbel-Rao: ST Gumbel-softmax, Rao-Blackwellised over the noise given the sample.

    Forward, the exact sample :math:`D` (``node.sample``); backward, the average of the
    relaxed sample's gradient over ``n_conditional`` draws :math:`G^{(k)}` of the Gumbel noise
    given :math:`D` (:func:`lib.gumbel.conditional_gumbel`; for a Bernoulli node the logistic
    noise given the bit):

    .. math:: \hat g = \frac{\partial f}{\partial D}\Big|_D \;
              \frac1K \sum_{k=1}^{K} \frac{\partial}{\partial \ell}
              \mathrm{softmax}\big((\ell + \mathrm{sg}(G^{(k)}))/\tau\big).

    Its expectation is that of ``st_gumbel_softmax`` at the same ``tau`` (the tower property:
    ST Gumbel-softmax's gradient averaged over the noise that gives the same sample), and its
    variance is no larger; ``n_conditional=1`` has ST Gumbel-softmax's distribution. The
    gradient is not taken through the conditional noise (as in Paulus et al.'s released code;
    their paper's text says "through both": that would change the mean, see chapter 11).

    Params:
        tau: temperature of the relaxation (a number > 0, or a tensor broadcastable to the
            logits' shape).
        n_conditional: K, draws of the conditional noise per sample (an int >= 1). The cost
            is still evaluated once per sample.

    The exact samples come through the node; the conditional noise is drawn from
    ``generator``, except for a node with ``fixed_uniforms``: then it is drawn from a CPU
    generator seeded by a hash of those uniforms, so that the estimate is a function of them
    alone (nodes that share the uniforms share the conditional noise too, and ``generator``
    is left untouched, as with every estimator).

    Reference:
        M. B. Paulus, C. J. Maddison, A. Krause (2021), *Rao-Blackwellizing the Straight-Through
        Gumbel-Softmax Gradient Estimator*, ICLR.
    """
    n_conditional = check_int(n_conditional, "n_conditional", min_value=1)
    hard = node.sample(n_samples, generator)  # [S, *shape]
    if node.fixed_uniforms is not None:
        generator = _generator_seeded_by(node.fixed_uniforms)
    logits = node._expand(n_samples)
    repeated = logits.detach().expand(n_conditional, *logits.shape)  # [K, S, *shape]
    if node.kind == "categorical":
        from lib.gumbel import conditional_gumbel

        winner = hard.argmax(-1).expand(n_conditional, *hard.shape[:-1])
        noise = conditional_gumbel(repeated, winner, generator=generator)
        soft = torch.softmax((logits + noise) / tau, dim=-1).mean(0)
    else:
        noise = _conditional_logistic(repeated, hard.expand_as(repeated), generator)
        soft = torch.sigmoid((logits + noise) / tau).mean(0)
    z = straight_through(hard, soft)
    valid = node._valid(z)
    return _pathwise(z if valid is None else z * valid, hard, cost)


@register_estimator(
    "reinmax", unbiased=False, label="ReinMax", params={"tau": 1.0},
    description="hard sample forward, second-order (Heun) gradient backward")
def _reinmax(node, cost, n_samples, generator, tau):
    r"""ReinMax: straight-through with a second-order (Heun's method) correction.

    Forward, the exact sample :math:`D` (``node.sample``). Backward, with
    :math:`\pi = \mathrm{softmax}(\ell)`, :math:`\pi_{1/2} = (\mathrm{softmax}(\ell/\tau) + D)/2`
    and :math:`J(p) = \mathrm{diag}(p) - p p^\top` (the softmax Jacobian at probabilities
    :math:`p`),

    .. math:: \hat g = \frac{\partial f}{\partial D}\Big|_D
              \Big(2\,J(\pi_{1/2}) - \tfrac12\,J(\pi)\Big),

    where ``straight_through`` uses :math:`J(\pi)`. For linear and quadratic costs of a single
    categorical its expectation is the exact gradient at ``tau=1`` (Heun's method is exact for
    quadratics; Liu et al. show the second-order accuracy);
    not in general. It needs no relaxed sample: ``tau`` only enters :math:`\pi_{1/2}`. This is
    the ``reinmax`` package's backward pass (``ReinMax_Auto``, checked against it in
    tests/test_fixing_straight_through.py). A Bernoulli node is a categorical over
    :math:`\{0, 1\}` with logits :math:`(0, \ell)`: :math:`\hat g = \frac{\partial f}{\partial b}
    \big(2 q(1 - q) - \tfrac12 \sigma(\ell)(1 - \sigma(\ell))\big)` with
    :math:`q = (\sigma(\ell/\tau) + b)/2`.

    Params:
        tau: temperature of :math:`\pi_{1/2}` (a number > 0, or a tensor broadcastable to the
            logits' shape); the paper's experiments use ``tau`` >= 1.

    Reference:
        L. Liu, C. Dong, X. Liu, B. Yu, J. Gao (2023), *Bridging Discrete and Backpropagation:
        Straight-Through and Beyond*, NeurIPS.
    """
    hard = node.sample(n_samples, generator)  # [S, *shape]
    logits = node._expand(n_samples)
    if node.kind == "categorical":
        half = (torch.softmax(logits.detach() / tau, dim=-1) + hard) / 2
        backward = (2 * _softmax_jacobian_surrogate(half, logits)
                    - 0.5 * _softmax_jacobian_surrogate(torch.softmax(logits, -1), logits))
    else:
        half = (torch.sigmoid(logits.detach() / tau) + hard) / 2
        p = torch.sigmoid(logits.detach())
        backward = (2 * half * (1 - half) - 0.5 * p * (1 - p)) * (logits - logits.detach())
    z = hard + backward  # the value is the sample exactly: backward is 0
    valid = node._valid(z)
    return _pathwise(z if valid is None else z * valid, hard, cost)


# --------------------------------------------------------------------------------------------
# Antithetic and control-variate estimators
# --------------------------------------------------------------------------------------------
#
# Unbiased estimators since 2015 that beat REINFORCE's variance with more structure than a
# baseline: local expectations (one cost evaluation per value of each variable), antithetic
# pairs of uniforms (ARM, DisARM), and control variates built from a relaxation (REBAR) or a
# learned function of it (RELAX). Chapter 12 measures them against the exact gradient.


def _event_size(node: StochasticNode) -> tuple[torch.Size, int]:
    """(event shape without K, number of variables V per joint sample) of a node."""
    start = len(node.batch_shape)
    stop = node.logits.dim() - (1 if node.kind == "categorical" else 0)
    event = node.logits.shape[start:stop]
    return event, math.prod(event)


def _variables_last(values: Tensor, n: int, node: StochasticNode) -> Tensor:
    """``[V, ..., n, *batch]`` -> ``[n, *batch, *event, ...]`` (V moved to the event dims)."""
    event, n_var = _event_size(node)
    extra = values.shape[1: values.dim() - 1 - len(node.batch_shape)]  # e.g. (K-1,) or ()
    moved = values.movedim(0, -1)  # [*extra, n, *batch, V]
    moved = moved.reshape(*extra, n, *node.batch_shape, *event)
    for _ in extra:
        moved = moved.movedim(0, -1)
    return moved


def _require_bernoulli(node: StochasticNode, name: str) -> None:
    if node.kind != "bernoulli":
        raise ValueError(f"estimator {name!r} needs a Bernoulli node (kind='bernoulli'), got "
                         f"kind={node.kind!r}")


def cost_evaluations(name: str, node: StochasticNode, n_samples: int, **params: object) -> int:
    r"""How many times estimator ``name`` evaluates the cost per batch element.

    The fair unit for comparing estimators is the number of cost evaluations, not of samples:
    ``arm`` and ``disarm`` evaluate the cost twice per antithetic pair (``n_samples`` counts
    pairs), ``local_baseline`` evaluates it at the sample and at every
    change of one variable to another value (:math:`1 + V(K-1)` per sample for V variables
    with K values each, K = 2 for Bernoulli), ``rebar`` three times per sample (the hard sample
    and two relaxed ones) and ``relax`` once per sample (plus twice when ``eta != 0``; its
    learned ``control`` is not the cost). ``exact`` evaluates every joint outcome (every
    k-subset or permutation of a structured node); every other registered estimator once per
    sample.

    Args:
        name: a registered estimator.
        node: the :class:`StochasticNode` it runs on.
        n_samples: the ``n_samples`` passed to :func:`surrogate`.
        **params: the estimator's parameters (``eta`` for ``relax``).

    Returns:
        The number of cost evaluations, an int.

    Example:
        >>> node = StochasticNode("bernoulli", torch.zeros(10), event_dims=1)
        >>> cost_evaluations("local_baseline", node, 2), cost_evaluations("disarm", node, 2)
        (22, 4)
    """
    merged = estimator_params(name, **params)
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    if not isinstance(node, StochasticNode):
        raise TypeError(f"node must be a StochasticNode, got {type_name(node)}")
    if node.kind in ("ksubset", "permutation"):
        # structured nodes take the generic estimators (and I-MLE): once per sample, or
        # every structure for exact: C(n, k) subsets (fewer with padding) or n! permutations
        n = node.logits.shape[-1]
        if name != "exact":
            return n_samples
        return math.comb(n, node.k) if node.kind == "ksubset" else math.factorial(n)
    _, n_var = _event_size(node)
    k = node.logits.shape[-1] if node.kind == "categorical" else 2
    if name == "exact":
        return k**n_var
    if name == "local_baseline":
        return n_samples * (1 + n_var * (k - 1))
    if name in ("arm", "disarm"):
        return 2 * n_samples
    if name == "rebar":
        return 3 * n_samples
    if name == "relax":
        return n_samples * (3 if float(merged["eta"]) != 0 else 1)
    return n_samples


def _with_value(costs: Tensor, term: Tensor) -> Tensor:
    """Loss whose value is the mean cost and whose gradient adds ``term``'s."""
    return costs.mean(0) + term - term.detach()


@register_estimator("local_baseline", unbiased=True, label="local expectation",
                    description="sum over each variable's values, the others at the sample")
def _local_baseline(node, cost, n_samples, generator):
    r"""Local expectation gradients (Titsias & Lázaro-Gredilla 2015), per-coordinate baselines.

    For each sample :math:`z_s` and each variable i the sum over that variable's values, the
    other variables held at the sample:

    .. math::
        \hat g_{i} = \frac1S \sum_s \sum_{k} \nabla p(z_i = k)\,
        f(z_{s,-i}, z_i = k),

    for a Bernoulli variable :math:`\theta_i(1-\theta_i)\big(f(z_{s,-i}, 1) - f(z_{s,-i},
    0)\big)`. It is REINFORCE with the per-coordinate baseline
    :math:`b_i = \mathbb{E}_{z_i}[f \mid z_{-i}]` and the score's own noise summed out: unbiased
    because :math:`z_{s,-i}` has its exact marginal. A cost that is a sum of functions of one
    variable each, :math:`f = \sum_i f_i(z_i)`, gets ZERO variance: the difference no longer
    depends on :math:`z_{-i}`.

    Shapes: samples ``[S, *logits.shape]``; the cost is evaluated at the samples and at the
    :math:`V(K-1)` changes of one variable of each (see :func:`cost_evaluations`), in one call
    of ``S (1 + V(K-1))`` points. Padding variables (``mask``) are never changed. ``samples``
    and ``weights`` of the result describe the S samples.

    Reference: M. Titsias, M. Lázaro-Gredilla (2015), *Local Expectation Gradients for Black
    Box Variational Inference*, NeurIPS.
    """
    z = node.sample(n_samples, generator)  # [n, *shape]
    event, n_var = _event_size(node)
    batch = node.batch_shape
    n = n_samples
    pad = (1,) * len(batch)
    if node.kind == "bernoulli":
        eye = torch.eye(n_var, dtype=z.dtype, device=z.device)
        eye = eye.reshape(n_var, 1, *pad, *event)  # [V, 1, 1.., *event]
        flipped = z + eye - 2 * z * eye  # variable i flipped: [V, n, *shape]
        valid = node._valid(z)
        if valid is not None:
            flipped = flipped * valid
        costs = cost(torch.cat([z, flipped.reshape(n_var * n, *z.shape[1:])]))
        c0, others = costs[:n], costs[n:].reshape(n_var, n, *batch)
        c_flip = _variables_last(others, n, node)  # [n, *batch, *event]
        c_z = c0.reshape(*c0.shape, *(1,) * len(event))
        f1 = torch.where(z > 0, c_z, c_flip).detach()
        f0 = torch.where(z > 0, c_flip, c_z).detach()
        theta = node.probs()
        local = theta * f1 + (1 - theta) * f0  # gradient: theta (1 - theta) (f1 - f0)
    else:
        k = node.logits.shape[-1]
        zf = z.reshape(n, *batch, n_var, k)
        eye = torch.eye(n_var, dtype=z.dtype, device=z.device).reshape(n_var, 1, *pad, n_var, 1)
        # variant (i, j): variable i moved j categories on (cyclically), j = 1 .. K-1
        rolled = torch.stack([torch.roll(zf, j, -1) for j in range(1, k)])  # [K-1, n, .., V, K]
        variants = zf * (1 - eye.unsqueeze(1)) + rolled.unsqueeze(0) * eye.unsqueeze(1)
        points = variants.reshape(n_var * (k - 1) * n, *z.shape[1:])
        costs = cost(torch.cat([z, points]))
        c0 = costs[:n]
        others = costs[n:].reshape(n_var, k - 1, n, *batch)
        f_var = _variables_last(others, n, node)  # [n, *batch, *event, K-1]
        f_var = f_var.reshape(n, *batch, n_var, k - 1)
        # f at variable i set to category m: own category -> c0, (c_i + j) mod K -> f_var[j]
        c_z = c0.reshape(n, *batch, 1, 1)
        table = zf * c_z
        for j in range(1, k):
            table = table + torch.roll(zf, j, -1) * f_var[..., j - 1: j]
        table = table.reshape(z.shape).detach()
        local = node.probs() * table  # gradient: p_k (f_k - sum_m p_m f_m)
    per_sample = local.flatten(1 + len(batch)).sum(-1)  # [n, *batch]
    return Surrogate(_with_value(c0, per_sample.mean(0)), c0.mean(0).detach(), z,
                     _uniform_weights(c0))


def _antithetic_pairs(node, cost, n_samples, generator, name):
    _require_bernoulli(node, name)
    u = node.uniforms(n_samples, generator)  # [P, *shape], P = n_samples pairs
    b = node.sample_from(u)  # 1[u > 1 - theta]
    b_anti = node.sample_from(1 - u)  # 1[u < theta]
    costs = cost(torch.cat([b, b_anti]))  # [2P, *batch]
    pairs = n_samples
    diff = (costs[:pairs] - costs[pairs:]).detach()
    return u, b, b_anti, costs, diff


def _pair_surrogate(node, costs, b, b_anti, per_pair):
    """Loss with gradient ``mean_p per_pair[p]`` (``per_pair`` detached, [P, *shape])."""
    event, _ = _event_size(node)
    valid = node._valid(per_pair)
    if valid is not None:
        per_pair = per_pair * valid
    term = (per_pair.detach() * node.logits)
    if len(event):
        term = term.sum(dim=tuple(range(-len(event), 0)))
    return Surrogate(_with_value(costs, term.mean(0)), costs.mean(0).detach(),
                     torch.cat([b, b_anti]), _uniform_weights(costs))


def _ex_pairs_shape(diff: Tensor, node: StochasticNode) -> Tensor:
    event, _ = _event_size(node)
    return diff.reshape(*diff.shape, *(1,) * len(event))


@register_estimator("arm", unbiased=True, label="ARM", kinds=("bernoulli",),
                    description="antithetic pairs u, 1-u (2 cost evaluations per pair)")
def _arm(node, cost, n_samples, generator):
    r"""ARM, the augment-REINFORCE-merge estimator (Yin & Zhou 2019), Bernoulli nodes.

    For P = ``n_samples`` uniforms :math:`u_p` (the node's, ``[P, *logits.shape]``) the
    antithetic pair :math:`b_p = 1[u_p > \sigma(-\ell)]` and :math:`\tilde b_p = 1[u_p <
    \sigma(\ell)]` (the same rule applied to :math:`1 - u_p`), and

    .. math::
        \hat g = \frac1P \sum_p \big(f(b_p) - f(\tilde b_p)\big)\,(u_p - \tfrac12).

    Unbiased (Yin & Zhou, Theorem 1). ``n_samples`` counts PAIRS: the cost is evaluated
    ``2 * n_samples`` times, and the result's ``samples`` are ``[b; b~]``
    ``[2 * n_samples, *logits.shape]`` (weights ``1 / (2 n_samples)``).
    The cost's own parameters get the gradient of the mean of all ``n_samples`` costs.

    Reference: M. Yin, M. Zhou (2019), *ARM: Augment-REINFORCE-Merge Gradient for Stochastic
    Binary Networks*, ICLR.
    """
    u, b, b_anti, costs, diff = _antithetic_pairs(node, cost, n_samples, generator, "arm")
    return _pair_surrogate(node, costs, b, b_anti, _ex_pairs_shape(diff, node) * (u - 0.5))


@register_estimator("disarm", unbiased=True, label="DisARM", kinds=("bernoulli",),
                    description="ARM with the pair's uniform integrated out (2 per pair)")
def _disarm(node, cost, n_samples, generator):
    r"""DisARM (Dong, Mnih & Tucker 2020): ARM with the antithetic uniform summed out.

    With the pairs of :func:`arm`'s docstring (``b`` = the node's sample of ``u``, ``b~`` of
    ``1 - u``), per coordinate i

    .. math::
        \hat g_i = \frac1P \sum_p \tfrac12\big(f(b_p) - f(\tilde b_p)\big)\,
        (-1)^{\tilde b_{p,i}}\, 1[b_{p,i} \ne \tilde b_{p,i}]\, \sigma(|\ell_i|).

    It is the conditional expectation of ARM's estimate given the pair :math:`(b, \tilde b)`,
    so its variance is never larger than ARM's (Dong et al., Section 3); a coordinate whose
    two samples agree contributes exactly 0. Shapes and ``n_samples`` (pairs, 2 evaluations
    each) as for ``arm``.

    Reference: Z. Dong, A. Mnih, G. Tucker (2020), *DisARM: An Antithetic Gradient Estimator
    for Binary Latent Variables*, NeurIPS.
    """
    u, b, b_anti, costs, diff = _antithetic_pairs(node, cost, n_samples, generator, "disarm")
    sign = 1 - 2 * b_anti  # (-1)^{b~}
    weight = sign * (b != b_anti).to(u.dtype) * torch.sigmoid(node.logits.detach().abs())
    return _pair_surrogate(node, costs, b, b_anti, 0.5 * _ex_pairs_shape(diff, node) * weight)


def _conditional_noise(node: StochasticNode, b: Tensor, v: Tensor) -> Tensor:
    r"""Perturbed logits :math:`\tilde z \sim p(z \mid b)`, reparameterised by uniforms ``v``.

    Bernoulli: :math:`z = \ell + \mathrm{logit}(u)` and :math:`b = 1[z > 0] = 1[u > 1 -
    \theta]`, so given b, u is uniform on :math:`(1-\theta, 1)` or :math:`(0, 1-\theta)`:
    :math:`v' = b(1 - \theta + v\theta) + (1-b)\,v(1-\theta)` and :math:`\tilde z = \ell +
    \mathrm{logit}(v')`, computed in logs. Categorical (Gumbel-max, :math:`z = \log p + G`):
    the winner's perturbed logit is a standard Gumbel :math:`-\log(-\log v_b)` and the others
    are truncated below it, :math:`\tilde z_i = -\log(-\log v_i / p_i - \log v_b)`. Both are
    differentiable in the logits (the conditional's own gradient, which REBAR subtracts).
    """
    logits = node.logits.expand(b.shape)
    if node.kind == "bernoulli":
        log_theta, log_1m_theta = _log_sigmoid(logits), _log_sigmoid(-logits)
        # b = 1: v' = 1 - theta + v theta, 1 - v' = theta (1 - v)
        log_v1 = torch.logaddexp(log_1m_theta, torch.log(v) + log_theta)
        log_1mv1 = log_theta + torch.log1p(-v)
        # b = 0: v' = v (1 - theta), 1 - v' = 1 - v (1 - theta)
        log_v0 = torch.log(v) + log_1m_theta
        log_1mv0 = torch.log1p(-v * torch.exp(log_1m_theta))
        on = b > 0
        return logits + torch.where(on, log_v1, log_v0) - torch.where(on, log_1mv1, log_1mv0)
    log_p = torch.log_softmax(logits, -1)
    neg_log_v = -torch.log(v)
    top = (b * neg_log_v).sum(-1, keepdim=True)  # -log v_b
    others = -torch.log(neg_log_v * torch.exp(-log_p) + top)
    return torch.where(b > 0, -torch.log(top), others)


def _relax_family(node, cost, n_samples, generator, tau, eta, control):
    fixed = node.fixed_uniforms
    if fixed is not None and fixed.shape[0] != 2 * n_samples:
        # the caller's common noise selects the samples; the conditional's v is fresh noise
        from lib.gumbel import _uniform_open_like

        u = node.uniforms(n_samples, generator)
        v = _uniform_open_like(u, generator)
    else:
        u_all = node.uniforms(2 * n_samples, generator)
        u, v = u_all[:n_samples], u_all[n_samples:]
    b = node.sample_from(u)
    logits = node.logits.expand(b.shape)
    if node.kind == "bernoulli":
        z = logits + node._noise(u)
    else:
        z = torch.log_softmax(logits, -1) + node._noise(u)
    z_cond = _conditional_noise(node, b, v)
    valid = node._valid(b)

    def relax(x):
        s = torch.sigmoid(x / tau) if node.kind == "bernoulli" else torch.softmax(x / tau, -1)
        return s if valid is None else s * valid

    def learned(s):
        c = control(s)
        if not isinstance(c, Tensor) or c.shape != b.shape[:1 + len(node.batch_shape)]:
            got = tuple(c.shape) if isinstance(c, Tensor) else type_name(c)
            raise ValueError(f"control must map relaxed samples {tuple(s.shape)} to "
                             f"{tuple(b.shape[:1 + len(node.batch_shape)])}, got {got}")
        return c

    costs = cost(b)
    s, s_cond = relax(z), relax(z_cond)
    c_z, c_cond = 0, 0
    # the score term's coefficient f(b) - c(z~) must not carry a gradient to the logits or to
    # the cost's parameters, but it must to the control's own parameters: they are trained on
    # the variance of this estimate (d/dphi of E||g||^2 through the whole estimate)
    c_score = 0
    if eta != 0:
        f_z, f_cond = cost(s), cost(s_cond)
        c_z, c_cond, c_score = eta * f_z, eta * f_cond, eta * f_cond.detach()
    if control is not None:
        r_cond = learned(s_cond)
        c_z, c_cond = c_z + learned(s), c_cond + r_cond
        c_score = c_score + learned(relax(z_cond.detach()))
    term = ((costs.detach() - c_score) * node.log_prob(b) + c_z - c_cond).mean(0)
    return Surrogate(_with_value(costs, term), costs.mean(0).detach(), b,
                     _uniform_weights(costs))


def _check_control(control: object, eta: object) -> float:
    from lib._validation import check_real

    eta = check_real(eta, "eta")
    if control is not None:
        check_callable(control, "control")
    elif eta == 0:
        raise ValueError("relax needs a control (a function of the relaxed samples) or eta != 0")
    return eta


@register_estimator("rebar", unbiased=True, label="REBAR", params={"tau": 0.5, "eta": 1.0},
                    description="REINFORCE with the relaxation f(sigmoid(z/tau)) as control "
                                "variate (3 evaluations per sample)")
def _rebar(node, cost, n_samples, generator, tau, eta):
    r"""REBAR (Tucker et al. 2017): the relaxed cost as a control variate, corrected.

    With uniforms ``u`` and ``v`` (the node's, ``2 * n_samples`` rows: the first half for the
    samples, the second for the conditional; a node whose ``fixed_uniforms`` hold
    ``n_samples`` rows uses them as ``u`` and draws ``v`` from ``generator``), the perturbed
    logits :math:`z = \ell + \mathrm{logit}(u)` (Bernoulli) or :math:`\log p + G(u)`
    (categorical), the hard sample :math:`b = H(z)`, a second draw
    :math:`\tilde z \sim p(z \mid b)` (the truncated construction of
    :func:`_conditional_noise`) and the relaxation
    :math:`\sigma_\tau(z) = \mathrm{sigmoid}(z/\tau)` or :math:`\mathrm{softmax}(z/\tau)`:

    .. math::
        \hat g = \big(f(b) - \eta f(\sigma_\tau(\tilde z))\big)\nabla \log p(b)
        + \eta\,\nabla f(\sigma_\tau(z)) - \eta\,\nabla f(\sigma_\tau(\tilde z)),

    averaged over the S samples. Unbiased for every :math:`\eta` and :math:`\tau`: the last two
    terms have equal expectations as distributions, and their gradients (through z and through
    the conditional :math:`\tilde z`) correct the first term's control variate exactly. Three
    cost evaluations per sample (``[S, *logits.shape]`` each, the relaxed ones in
    :math:`[0, 1]` or on the simplex, so the cost must accept them). The paper tunes
    :math:`\eta` and :math:`\tau` online to minimise the variance; here they are parameters.

    Reference: G. Tucker, A. Mnih, C. Maddison, D. Lawson, J. Sohl-Dickstein (2017), *REBAR:
    Low-variance, unbiased gradient estimates for discrete latent variable models*, NeurIPS.
    """
    eta = _check_control(None, eta)
    return _relax_family(node, cost, n_samples, generator, tau, eta, None)


@register_estimator("relax", unbiased=True, label="RELAX",
                    params={"control": None, "tau": 0.5, "eta": 1.0},
                    description="REINFORCE with a learned control variate c(sigma(z/tau)) and "
                                "its reparameterised correction")
def _relax(node, cost, n_samples, generator, control, tau, eta):
    r"""RELAX (Grathwohl et al. 2018): REBAR with a learned control variate.

    As :func:`rebar` with the control variate

    .. math:: c(z) = \eta\, f(\sigma_\tau(z)) + r_\phi(\sigma_\tau(z)),

    where ``control`` is :math:`r_\phi`: a callable (e.g. a small ``torch.nn.Module``) that
    maps relaxed samples ``[S, *logits.shape]`` to ``[S, *batch]``, differentiable in its
    input. The estimate

    .. math::
        \hat g = \big(f(b) - c(\tilde z)\big)\nabla\log p(b) + \nabla c(z) - \nabla c(\tilde z)

    is unbiased for every :math:`\phi`. Train :math:`\phi` to minimise the variance: since the
    estimator is unbiased, :math:`\nabla_\phi \mathrm{Var}[\hat g] = \nabla_\phi
    \mathbb{E}\lVert\hat g\rVert^2`, so take ``g, = torch.autograd.grad(out.loss.sum(), logits,
    create_graph=True)`` and step on ``(g ** 2).sum()`` with respect to the control's
    parameters. One cost evaluation per sample when ``eta = 0``, three otherwise; the
    default (``eta = 1``, no ``control``) is :func:`rebar`.

    Reference: W. Grathwohl, D. Choi, Y. Wu, G. Roeder, D. Duvenaud (2018), *Backpropagation
    through the Void: Optimizing Control Variates for Black-Box Gradient Estimation*, ICLR.
    """
    eta = _check_control(control, eta)
    return _relax_family(node, cost, n_samples, generator, tau, eta, control)


# --------------------------------------------------------------------------------------------
# Estimators of one structured kind
# --------------------------------------------------------------------------------------------

@register_estimator("imle", unbiased=False, label="I-MLE", kinds=("ksubset",),
                    params={"lam": 1.0, "noise_temperature": 1.0},
                    description="perturb-and-MAP top-k forward, a finite difference of two "
                                "MAPs backward (k-subsets)")
def _imle(node, cost, n_samples, generator, lam, noise_temperature):
    r"""I-MLE (Niepert et al. 2021) on a :class:`lib.subsets.KSubsetNode`:
    :func:`lib.subsets.imle_topk` with the node's logits, k and mask. It draws its
    sum-of-Gamma noise from ``generator``, so a node's ``fixed_uniforms`` do not reach it.
    """
    from lib.subsets import imle_topk

    z = imle_topk(node.logits, node.k, n_samples, lam=lam, noise_temperature=noise_temperature,
                  mask=node.mask, generator=generator)
    return _pathwise(z, z, cost)
