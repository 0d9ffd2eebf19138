r"""Compare gradient estimators on problems whose exact gradient is known.

Every estimator of the book is wrapped behind ONE signature, so an experiment is a loop over
names rather than a copy per estimator:

.. code-block:: python

    estimator(problem, logits, n_samples, n_repeats, generator) -> Tensor [n_repeats, D]

Row ``r`` of the result is an independent estimate of
:math:`\nabla_\ell\, \mathbb{E}_{z \sim p_\ell}[f(z)]` (the gradient with respect to the
LOGITS :math:`\ell`) that averages ``n_samples`` samples. The repeats are vectorised: the logits
are expanded to an ``[n_repeats, D]`` leaf tensor and one backward pass gives every row its own
gradient.

* Problems: :class:`CategoricalProblem` (one K-way categorical), :class:`BernoulliProblem`
  (n independent Bernoullis), :class:`KSubsetProblem` (a subset of exactly k of n items) and
  :class:`PermutationProblem` (a permutation of n <= 8 items), each with its exact value and
  gradient by enumeration (:mod:`lib.estimators`).
* Estimators: :func:`get_estimator` and :data:`ESTIMATORS` (``exact``, ``reinforce``,
  ``reinforce_moving_average``, ``reinforce_loo``, ``straight_through``, ``gumbel_softmax``,
  ``st_gumbel_softmax``).
* Measurements: :func:`measure` (bias with its standard error, variance, mean squared error,
  seconds per estimate), :func:`time_per_estimate` (CPU time, robust to a loaded machine) and
  :func:`optimise` (SGD or Adam on the logits with any estimator, several runs vectorised).
* Figures: :func:`line_style` (one colour per estimator family, one line style per
  temperature).

Reference:
    S. Mohamed, M. Rosca, M. Figurnov, A. Mnih (2020), *Monte Carlo Gradient Estimation in
    Machine Learning*, JMLR 21 (estimators compared against numerical ground truth).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from lib._validation import (
    check_callable,
    check_generator,
    check_int,
    check_logits,
    check_real,
    check_tensor,
    type_name,
    validating,
)
from lib.estimators import (
    MAX_EXACT_OUTCOMES,
    StochasticNode,
    enumerate_binary,
    estimator_names,
    estimator_params,
    exact_expectation_bernoulli,
    exact_expectation_categorical,
    exact_gradient_bernoulli,
    exact_gradient_categorical,
    get_estimator_spec,
    surrogate,
)
from lib.estimators import _log_sigmoid as log_sigmoid
from lib.training import snap_

__all__ = [
    "ESTIMATORS",
    "BernoulliProblem",
    "CategoricalProblem",
    "Estimator",
    "KSubsetProblem",
    "Measurement",
    "PermutationProblem",
    "Reference",
    "Trajectory",
    "get_estimator",
    "line_style",
    "measure",
    "optimise",
    "time_per_estimate",
]


# --------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------


def _check_problem(problem: object) -> None:
    """TypeError unless ``problem`` is one of this module's problems (_Problem is defined below)."""
    if not isinstance(problem, _Problem):
        raise TypeError(
            f"problem must be a CategoricalProblem, BernoulliProblem, KSubsetProblem or "
            f"PermutationProblem, got {type_name(problem)}"
        )


class _Problem:
    """Shared behaviour of :class:`CategoricalProblem` and :class:`BernoulliProblem`."""

    kind: str = ""
    _logits_dim: int | None = -1
    _size_name = "D"

    def __init__(self, logits: Tensor, f: Callable[..., Tensor], name: str = "", *,
                 params: Tensor | None = None) -> None:
        check_tensor(logits, "logits")
        self._check_logits_shape(logits)
        check_logits(logits, dim=self._logits_dim)
        check_callable(f, "f")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type_name(name)}")
        if params is not None:
            check_tensor(params, "params")
            if params.dim() != 1 or params.numel() == 0:
                raise ValueError(f"params must be a non-empty 1-D tensor [P] (the cost's own "
                                 f"parameters), got shape {tuple(params.shape)}")
            params = params.detach().clone()
        self.logits = logits.detach().clone()
        self.f = f
        self.name = name
        self.params = params
        # f must map [..., *shape] to [...]: probe it on a small batch of valid points.
        probe = self._probe_points()
        out = self.cost(probe)
        if not isinstance(out, Tensor):
            raise TypeError(f"f must return a torch.Tensor, got {type_name(out)}")
        expected = probe.shape[: probe.dim() - self.logits.dim()]
        if out.shape != expected:
            dims = ", ".join(str(d) for d in self.shape)
            raise ValueError(
                f"f must map samples of shape [..., {dims}] to costs of shape [...]: on "
                f"input {tuple(probe.shape)} it returned {tuple(out.shape)}; reduce over the "
                f"sample's own dimension(s) only (e.g. .sum(-1), not .sum())"
            )

    def _check_logits_shape(self, logits: Tensor) -> None:
        if logits.dim() != 1:
            raise ValueError(
                f"logits must be 1-D (one distribution; D = {self._size_name}), got shape "
                f"{tuple(logits.shape)}"
            )

    @property
    def shape(self) -> torch.Size:
        """Shape of one sample (and of the logits): ``[D]``, or ``[N, K]`` for N categoricals."""
        return self.logits.shape

    @property
    def dim(self) -> int:
        """D, the number of logits (categories K, or Bernoulli variables n; N*K for products)."""
        return self.logits.numel()

    @property
    def n_params(self) -> int:
        """P, the number of the cost's own parameters (0 without ``params``)."""
        return 0 if self.params is None else self.params.numel()

    def cost(self, z: Tensor, params: Tensor | None = None) -> Tensor:
        """``f(z)``, or ``f(z, params)`` for a cost with parameters (default: the problem's)."""
        if self.params is None:
            return self.f(z)
        return self.f(z, self.params if params is None else params)

    @property
    def enumerable(self) -> bool:
        """Whether exact values and gradients can be computed by enumeration."""
        return self.n_outcomes <= MAX_EXACT_OUTCOMES

    @property
    def n_outcomes(self) -> int:
        """Number of joint outcomes (K**N, or 2**n)."""
        if self.kind == "categorical":
            return self.shape[-1] ** math.prod(self.shape[:-1])
        return 2 ** self.shape[0]

    def _check_enumerable(self, what: str) -> None:
        if not self.enumerable:
            raise ValueError(
                f"{what} enumerates all {self.n_outcomes:.3g} outcomes, more than "
                f"MAX_EXACT_OUTCOMES={MAX_EXACT_OUTCOMES}; use a Monte Carlo reference "
                f"(problem.reference_gradient(...)) instead"
            )

    def node(self, logits: Tensor) -> StochasticNode:
        """The :class:`lib.estimators.StochasticNode` of this problem at ``logits [..., *shape]``.

        Its batch dimensions are the leading dimensions of ``logits``.
        """
        event_dims = self.logits.dim() - (1 if self.kind == "categorical" else 0)
        return StochasticNode(self.kind, logits, event_dims=event_dims)

    def sample(self, logits: Tensor, generator: torch.Generator | None) -> Tensor:
        """Exact samples (one-hot / 0-1) with the shape of ``logits`` (no gradient)."""
        check_generator(generator, like=logits)
        return self.node(logits).sample(1, generator)[0]

    def log_prob(self, samples: Tensor, logits: Tensor) -> Tensor:
        """Joint log-probability ``[...]`` of ``samples [..., *shape]`` (differentiable)."""
        return self.node(logits).log_prob(samples)

    def probs(self, logits: Tensor) -> Tensor:
        """Mean of the one-hot / 0-1 sample, the shape of ``logits`` (differentiable)."""
        return self.node(logits).probs()

    def relaxed(
        self, logits: Tensor, tau: float, hard: bool, generator: torch.Generator | None
    ) -> Tensor:
        """Gumbel-softmax / Binary Concrete sample of the shape of ``logits``."""
        return self.node(logits).relaxed(1, tau, hard, generator)[0]

    def _logits_or_default(self, logits: Tensor | None, n_repeats: int | None = None) -> Tensor:
        """Check ``logits`` (``shape``, or ``[n_repeats, *shape]`` when ``n_repeats`` is given)."""
        if logits is None:
            return self.logits
        check_tensor(logits, "logits")
        batched = n_repeats is not None and logits.shape == (n_repeats, *self.shape)
        if logits.shape != self.logits.shape and not batched:
            also = (f" or [n_repeats, *shape] = {(n_repeats, *self.shape)}" if n_repeats
                    else "")
            raise ValueError(
                f"logits must have the problem's shape {tuple(self.logits.shape)}{also}, got "
                f"{tuple(logits.shape)}"
            )
        check_logits(logits, dim=self._logits_dim)
        return logits.detach()

    def _probe_points(self) -> Tensor:
        raise NotImplementedError

    def _outcomes(self) -> Tensor:
        """Every outcome, ``[O, *shape]`` (one-hot rows, or the 2**n binary configurations)."""
        return self.node(self.logits).outcomes()[0].detach()

    def _log_probs_of_outcomes(self, logits: Tensor) -> Tensor:
        """``[M, O]`` log-probabilities of every outcome under ``logits [M, *shape]``."""
        outcomes = self._outcomes()
        z = outcomes.unsqueeze(1).expand(outcomes.shape[0], logits.shape[0], *self.shape)
        return self.node(logits).log_prob(z).transpose(0, 1)

    def _cost_scale(self) -> float:
        """max |f| over all outcomes (a scale for round-off errors)."""
        if getattr(self, "_cost_table", None) is None:
            self._check_enumerable("the exact value")
            with torch.no_grad():
                self._cost_table = self.cost(self._outcomes()).detach()
        return float(self._cost_table.abs().max())

    def exact_values(self, logits: Tensor) -> Tensor:
        r"""Exact :math:`\mathbb{E}[f]` for a batch of logits ``[M, *shape]`` -> ``[M]``.

        Differentiable in ``logits`` (``f`` is evaluated once on every outcome and treated as
        fixed). Used along optimisation trajectories and by the ``exact`` estimator.
        """
        check_tensor(logits, "logits")
        if logits.dim() != self.logits.dim() + 1 or logits.shape[1:] != self.shape:
            raise ValueError(
                f"logits must have shape [M, {', '.join(map(str, self.shape))}], got "
                f"{tuple(logits.shape)}"
            )
        self._cost_scale()  # evaluates and caches f on every outcome
        costs = self._cost_table.to(logits.dtype)
        return (self._log_probs_of_outcomes(logits).exp() * costs).sum(-1)

    def exact_value(self, logits: Tensor | None = None) -> float:
        """Exact :math:`\\mathbb{E}[f(z)]` at ``logits`` (default: the problem's) by enumeration."""
        logits = self._logits_or_default(logits)
        with torch.no_grad():
            return float(self.exact_values(logits.unsqueeze(0))[0])

    def exact_gradient(self, logits: Tensor | None = None) -> Tensor:
        """Exact gradient (the logits' shape) with respect to the logits, by enumeration.

        Computed by :func:`lib.estimators.exact_gradient_categorical` /
        :func:`~lib.estimators.exact_gradient_bernoulli` (products of categoricals: the
        registry's ``exact``); the result at the problem's own logits is cached (``f`` is
        fixed), so repeated measurements do not repeat the enumeration.
        """
        logits = self._logits_or_default(logits)
        self._check_enumerable("the exact gradient")
        if logits is self.logits or torch.equal(logits, self.logits):
            if getattr(self, "_exact_at_logits", None) is None:
                self._exact_at_logits = self._exact_gradient(self.logits)
            return self._exact_at_logits.clone()
        return self._exact_gradient(logits)

    def _exact_gradient(self, logits: Tensor) -> Tensor:
        return self._exact_gradients(logits)[0]

    def _exact_gradients(self, logits: Tensor) -> tuple[Tensor, Tensor | None]:
        """Exact gradients w.r.t. the logits and (if any) the cost's parameters."""
        leaf = logits.detach().unsqueeze(0).clone().requires_grad_(True)
        theta = None if self.params is None else self.params.clone().requires_grad_(True)
        with torch.enable_grad():
            out = surrogate("exact", self.node(leaf), lambda z: self.cost(z, theta))
            inputs = [leaf] if theta is None else [leaf, theta]
            grads = torch.autograd.grad(out.loss.sum(), inputs, allow_unused=True)
        grads = [torch.zeros_like(x) if g is None else g.detach() for x, g in zip(inputs, grads)]
        return grads[0][0], (grads[1] if theta is not None else None)

    def exact_param_gradient(self) -> Tensor:
        """Exact gradient ``[P]`` of the expected cost w.r.t. the cost's own parameters."""
        if self.params is None:
            raise ValueError("this problem's cost has no parameters (pass params= to create one)")
        self._check_enumerable("the exact gradient")
        return self._exact_gradients(self.logits)[1]

    def reference_gradient(
        self,
        n_samples: int = 100_000,
        generator: torch.Generator | None = None,
        *,
        estimator: str = "reinforce_loo",
        n_batches: int = 100,
        logits: Tensor | None = None,
    ) -> Reference:
        r"""A Monte Carlo reference gradient with its standard error, for problems too large
        to enumerate.

        Averages ``n_batches`` independent estimates of the UNBIASED ``estimator`` (default
        ``reinforce_loo``), each from ``n_samples // n_batches`` samples; the standard error
        of each coordinate is the batch-to-batch standard deviation over
        :math:`\sqrt{\text{n\_batches}}`. :func:`measure` takes it as ``reference=`` and adds
        its standard error to that of the bias.

        Args:
            n_samples: total samples (>= 2 per batch).
            generator: optional ``torch.Generator``.
            estimator: an unbiased registered estimator.
            n_batches: independent batches (>= 2), for the standard error.
            logits: where (default: the problem's logits).

        Returns:
            A :class:`Reference`.
        """
        n_samples = check_int(n_samples, "n_samples", min_value=2)
        n_batches = check_int(n_batches, "n_batches", min_value=2)
        est = get_estimator(estimator)
        if not est.unbiased:
            raise ValueError(f"a reference gradient needs an unbiased estimator; {estimator!r} "
                             f"is biased")
        per_batch = n_samples // n_batches
        if per_batch < est._min_samples:
            raise ValueError(f"n_samples // n_batches = {per_batch} samples per batch; "
                             f"{estimator} needs at least {est._min_samples}")
        logits = self._logits_or_default(logits)
        g_logits, g_params = est(self, logits, per_batch, n_batches, generator,
                                 with_params=True)
        rows = g_logits.reshape(n_batches, -1).double()
        if g_params is not None:
            rows = torch.cat([rows, g_params.double()], dim=1)
        return Reference(values=rows.mean(0), se=rows.std(0) / math.sqrt(n_batches),
                         method=f"{est.label}, {per_batch * n_batches} samples")

    def __repr__(self) -> str:
        label = f"{self.name!r}, " if self.name else ""
        shape = "x".join(map(str, self.shape))
        params = f", P={self.n_params}" if self.params is not None else ""
        return f"{type(self).__name__}({label}D={shape}{params})"


class Reference(NamedTuple):
    """A reference gradient for :func:`measure`: values and standard errors, flattened.

    Attributes:
        values: float64 ``[D + P]``: the logits' gradient (flattened), then the parameters'.
        se: float64 ``[D + P]``: standard errors (0 for an exact reference).
        method: how it was computed, e.g. ``"exact"`` or ``"REINFORCE + LOO, 100000 samples"``.
    """

    values: Tensor
    se: Tensor
    method: str


class CategoricalProblem(_Problem):
    r"""Minimise :math:`\mathbb{E}_{z}[f(z)]` over one categorical, or a product of N.

    With logits ``[K]``, :math:`z \sim \mathrm{Categorical}(\mathrm{softmax}(\ell))` is one-hot
    ``[K]``; with logits ``[N, K]``, :math:`z` holds N independent one-hot rows ``[N, K]``
    (a product of categoricals, as in a VAE's code), and the cost sees them together.

    Args:
        logits: floating tensor ``[K]`` or ``[N, K]`` (finite or ``-inf``), the point where
            gradients are measured (copied and detached).
        f: the cost, a differentiable function mapping samples ``[..., K]`` (``[..., N, K]``)
            (one-hot, or relaxed points of the simplex for Gumbel-softmax) to costs ``[...]``.
            It must be defined on the whole simplex if relaxed estimators are to be used,
            e.g. ``lambda z: z @ cost_table``. With ``params``, ``f(z, params)``: the
            parameters arrive as ``[..., P]`` whose leading dimensions broadcast against
            ``z``'s (index them as ``params[..., j]``).
        name: optional label for tables and figures.
        params: optional 1-D tensor ``[P]``: the cost's own parameters. The lab then measures
            their gradient too (:func:`measure`).

    Example:
        >>> problem = CategoricalProblem(torch.zeros(3), lambda z: z @ torch.tensor([1., 2., 4.]))
        >>> round(problem.exact_value(), 4)
        2.3333
        >>> problem.exact_gradient()
        tensor([-0.4444, -0.1111,  0.5556])
    """

    kind = "categorical"
    _logits_dim = -1
    _size_name = "K categories"

    def _check_logits_shape(self, logits: Tensor) -> None:
        if logits.dim() not in (1, 2) or logits.shape[-1] == 0 or logits.shape[0] == 0:
            raise ValueError(
                f"logits must be [K] (one categorical) or [N, K] (N independent "
                f"categoricals), got shape {tuple(logits.shape)}"
            )

    def _probe_points(self) -> Tensor:
        k = self.shape[-1]
        eye = torch.eye(k, dtype=self.logits.dtype, device=self.logits.device)
        n = math.prod(self.shape[:-1])
        index = torch.arange(6 * n, device=eye.device) % k
        return eye[index].reshape(2, 3, *self.shape)

    def _outcomes(self) -> Tensor:
        if self.logits.dim() == 1:
            return torch.eye(self.dim, dtype=self.logits.dtype, device=self.logits.device)
        return super()._outcomes()

    def _log_probs_of_outcomes(self, logits: Tensor) -> Tensor:
        if self.logits.dim() == 1:
            return torch.log_softmax(logits, dim=-1)
        return super()._log_probs_of_outcomes(logits)

    def exact_value(self, logits: Tensor | None = None) -> float:
        if self.logits.dim() != 1:
            return super().exact_value(logits)
        logits = self._logits_or_default(logits)
        with torch.no_grad():
            return float(exact_expectation_categorical(logits, self.cost))

    def _exact_gradient(self, logits: Tensor) -> Tensor:
        if self.logits.dim() != 1:
            return super()._exact_gradient(logits)
        return exact_gradient_categorical(logits, self.cost)


class BernoulliProblem(_Problem):
    r"""Minimise :math:`\mathbb{E}[f(b)]` over n independent Bernoulli variables.

    :math:`b_i \sim \mathrm{Bern}(\theta_i)` with :math:`\theta_i = \sigma(\ell_i)`; gradients are
    taken with respect to the logits :math:`\ell` (multiply by :math:`1/(\theta(1-\theta))` for
    the gradient with respect to :math:`\theta`).

    Args:
        logits: finite floating tensor ``[n]``, the point where gradients are measured. Exact
            values and gradients enumerate the :math:`2^n` configurations, so they need
            ``n <= 20``; larger problems are measured against
            :meth:`reference_gradient`.
        f: the cost, a differentiable function mapping samples ``[..., n]`` (0/1 vectors, or
            relaxed values in [0, 1]) to costs ``[...]``; with ``params``, ``f(z, params)``
            as for :class:`CategoricalProblem`.
        name: optional label for tables and figures.
        params: optional 1-D tensor ``[P]``: the cost's own parameters.

    Example:
        The RELAX toy of Grathwohl et al. (2018), at :math:`\theta = \sigma(0) = 0.5`:

        >>> toy = BernoulliProblem(torch.zeros(1), lambda b: ((b - 0.499) ** 2).sum(-1))
        >>> round(float(toy.exact_gradient()[0]), 6)  # 0.002 * theta * (1 - theta)
        0.0005
    """

    kind = "bernoulli"
    _logits_dim = None
    _size_name = "n variables"

    def _check_logits_shape(self, logits: Tensor) -> None:
        super()._check_logits_shape(logits)
        if logits.shape[0] == 0:
            raise ValueError("logits must have at least one variable, got shape (0,)")

    def _probe_points(self) -> Tensor:
        device = self.logits.device
        bits = torch.arange(min(self.dim, 62), device=device)
        codes = torch.arange(6, device=device).unsqueeze(-1) >> bits
        points = (codes & 1).to(self.logits.dtype)
        if self.dim > 62:
            points = torch.cat([points, points.new_zeros(6, self.dim - 62)], dim=-1)
        return points.reshape(2, 3, self.dim)

    def _outcomes(self) -> Tensor:
        return enumerate_binary(self.dim, dtype=self.logits.dtype, device=self.logits.device)

    def _log_probs_of_outcomes(self, logits: Tensor) -> Tensor:
        configs = self._outcomes().to(logits.dtype)
        return log_sigmoid(logits) @ configs.T + log_sigmoid(-logits) @ (1 - configs).T

    def exact_value(self, logits: Tensor | None = None) -> float:
        logits = self._logits_or_default(logits)
        self._check_enumerable("the exact value")
        with torch.no_grad():
            return float(exact_expectation_bernoulli(logits, self.cost))

    def _exact_gradient(self, logits: Tensor) -> Tensor:
        return exact_gradient_bernoulli(logits, self.cost)


class KSubsetProblem(_Problem):
    r"""Minimise :math:`\mathbb{E}[f(z)]` over one subset of exactly k of n items.

    :math:`p_\ell(z) \propto \exp(\ell^\top z)` over the 0/1 vectors with
    :math:`\sum_i z_i = k` (:class:`lib.subsets.KSubsetNode`); the exact value and gradient
    enumerate the :math:`\binom{n}{k}` subsets. The registry's six generic estimators run on
    it (``straight_through`` is SIMPLE; ``gumbel_softmax`` and ``st_gumbel_softmax`` are
    relaxed and straight-through top-k, whose hard samples follow the Plackett-Luce law of
    sets, not this one; :data:`lib.subsets.SUBSET_LABELS` names them).

    Args:
        logits: finite floating tensor ``[n]``.
        k: subset size, ``1 <= k <= n``.
        f: the cost, mapping subsets ``[..., n]`` (0/1, or relaxed values in [0, 1]) to
            costs ``[...]``; with ``params``, ``f(z, params)`` as for
            :class:`CategoricalProblem`.
        name: optional label.
        params: optional 1-D tensor ``[P]``: the cost's own parameters.

    Example:
        >>> weights = torch.tensor([1.0, 2.0, 3.0, 4.0])
        >>> problem = KSubsetProblem(torch.zeros(4), 2, lambda z: z @ weights)
        >>> round(problem.exact_value(), 4)  # each item is in half of the 6 subsets
        5.0
    """

    kind = "ksubset"
    _logits_dim = None
    _size_name = "n items"

    def __init__(self, logits: Tensor, k: int, f: Callable[..., Tensor], name: str = "", *,
                 params: Tensor | None = None) -> None:
        check_tensor(logits, "logits")
        self._check_logits_shape(logits)
        self.k = check_int(k, "k", min_value=1)
        if self.k > logits.shape[0]:
            raise ValueError(f"k must be at most n = {logits.shape[0]}, got k={k}")
        super().__init__(logits, f, name, params=params)

    def _check_logits_shape(self, logits: Tensor) -> None:
        super()._check_logits_shape(logits)
        if logits.shape[0] == 0:
            raise ValueError("logits must have at least one item, got shape (0,)")

    def node(self, logits: Tensor) -> StochasticNode:
        """The :class:`lib.subsets.KSubsetNode` at ``logits [..., n]``."""
        from lib.subsets import KSubsetNode

        return KSubsetNode(logits, self.k)

    @property
    def n_outcomes(self) -> int:
        """Number of subsets, :math:`\binom{n}{k}`."""
        return math.comb(self.dim, self.k)

    def _probe_points(self) -> Tensor:
        n, k = self.dim, self.k
        index = (torch.arange(6, device=self.logits.device)[:, None]
                 + torch.arange(k, device=self.logits.device)) % n
        points = torch.zeros(6, n, dtype=self.logits.dtype, device=self.logits.device)
        return points.scatter_(1, index, 1.0).reshape(2, 3, n)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", k={self.k})"


class PermutationProblem(_Problem):
    r"""Minimise :math:`\mathbb{E}[f(P)]` over one permutation of n items (n <= 8).

    :math:`P` is a permutation matrix drawn from the Gibbs law
    :math:`p_X(\sigma) \propto \exp\sum_i X_{i\sigma(i)}`
    (:class:`lib.permutations.PermutationNode`); the exact value and gradient enumerate the
    n! permutations. The registry's six generic estimators run on it: ``straight_through``
    passes the exact marginals' Jacobian back, ``gumbel_softmax`` and ``st_gumbel_softmax``
    are relaxed and straight-through Gumbel-Sinkhorn (``n_iters`` Sinkhorn iterations), whose
    hard samples follow the Gumbel-matching law, not the Gibbs law
    (:data:`lib.permutations.PERMUTATION_LABELS` names them).

    Args:
        log_alpha: finite floating tensor ``[n, n]``, ``1 <= n <= 8``.
        f: the cost, mapping matrices ``[..., n, n]`` (permutation matrices, or doubly
            stochastic ones for the relaxations) to costs ``[...]``; with ``params``,
            ``f(P, params)`` as for :class:`CategoricalProblem`.
        name: optional label.
        params: optional 1-D tensor ``[P]``: the cost's own parameters.
        n_iters: Sinkhorn iterations of the relaxed estimators, >= 1.

    Example:
        >>> problem = PermutationProblem(torch.zeros(3, 3),
        ...                              lambda P: P.diagonal(dim1=-2, dim2=-1).sum(-1))
        >>> round(problem.exact_value(), 4)  # each row keeps its column with probability 1/3
        1.0
    """

    kind = "permutation"
    _logits_dim = None
    _size_name = "n x n scores"

    def __init__(self, log_alpha: Tensor, f: Callable[..., Tensor], name: str = "", *,
                 params: Tensor | None = None, n_iters: int = 20) -> None:
        self.n_iters = check_int(n_iters, "n_iters", min_value=1)
        super().__init__(log_alpha, f, name, params=params)

    def _check_logits_shape(self, logits: Tensor) -> None:
        from lib.permutations import MAX_ENUMERATION_N

        n = logits.shape[-1] if logits.dim() else 0
        if logits.dim() != 2 or logits.shape[0] != n or not 1 <= n <= MAX_ENUMERATION_N:
            raise ValueError(f"log_alpha must be a square [n, n] tensor with 1 <= n <= "
                             f"{MAX_ENUMERATION_N}, got shape {tuple(logits.shape)}")

    def node(self, logits: Tensor) -> StochasticNode:
        """The :class:`lib.permutations.PermutationNode` at ``logits [..., n, n]``."""
        from lib.permutations import PermutationNode

        return PermutationNode(logits, self.n_iters)

    @property
    def n_outcomes(self) -> int:
        """Number of permutations, n!."""
        return math.factorial(self.shape[-1])

    def _probe_points(self) -> Tensor:
        n = self.shape[-1]
        device = self.logits.device
        shifts = torch.arange(6, device=device)[:, None]
        sigma = (torch.arange(n, device=device) + shifts) % n  # six cyclic shifts
        return F.one_hot(sigma, n).to(self.logits.dtype).reshape(2, 3, n, n)


Problem = CategoricalProblem | BernoulliProblem | KSubsetProblem | PermutationProblem


# --------------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------------


def _moving_average_baseline(problem, leaf, state):
    r"""Baseline of ``reinforce_moving_average``: a function of the costs ``[S, R]`` -> ``[1, R]``.

    The baseline of batch :math:`t` is a bias-corrected exponential moving average of the
    mean costs of the batches BEFORE it,

    .. math:: m_t = \beta m_{t-1} + (1 - \beta)\,\bar f_{t-1}, \quad b_t = m_t / (1 - \beta^{t-1}),

    so it never uses the current batch and the estimate stays unbiased. With a ``state`` dict
    (the optimisation loop) the average is carried over calls. Without one (a one-shot
    measurement) the repeats are treated as consecutive steps at fixed logits: repeat r uses the
    batches of repeats < r, after ``warmup`` extra batches that are drawn (costs only) so every
    repeat has a full history. Such estimates are uncorrelated (each one's error has mean zero
    given the past), so means and variances over repeats are measured as usual.
    """
    est = state["estimator"]
    beta, warmup = est.params["decay"], est.params["warmup"]

    def baseline(costs: Tensor) -> Tensor:
        batch_means = costs.mean(0)  # [R]
        if state.get("carry") is not None:
            # the optimisation loop: repeat r is run r, one call per step
            m, t = state["carry"]
            if t > 0 and m.shape != batch_means.shape:
                raise ValueError(
                    f"a carried moving-average state keeps one average per run: it was used "
                    f"with n_repeats={m.numel()}, now called with n_repeats={batch_means.numel()}"
                )
            m = torch.zeros_like(batch_means) if t == 0 else m
            b = m / (1 - beta**t) if t > 0 else torch.zeros_like(batch_means)
            state["carry"] = (beta * m + (1 - beta) * batch_means.detach(), t + 1)
            return b.unsqueeze(0)
        # one-shot: warm-up batches (costs only), then the repeats in sequence
        n_samples = costs.shape[0]
        if (
            validating()
            and leaf.shape[0] > 1
            and not bool((leaf.detach() == leaf.detach()[:1]).all())
        ):
            raise ValueError(
                "a one-shot moving-average estimate needs the same logits for every repeat (the "
                "repeats act as consecutive steps); carry a state from new_state() instead"
            )
        expanded = leaf.detach()[:1].unsqueeze(0).expand(n_samples, warmup, *problem.shape)
        with torch.no_grad():
            warm = problem.cost(problem.sample(expanded, state["generator"])).mean(0)  # [warmup]
        history = torch.cat([warm, batch_means]).double()  # [warmup + R], oldest first
        return _ema_of_previous(history, beta)[warmup:].to(costs.dtype).unsqueeze(0)  # [1, R]

    return baseline


def _ema_of_previous(x: Tensor, beta: float) -> Tensor:
    r"""``b[t]`` = bias-corrected EMA of ``x[0..t-1]`` (``b[0] = 0``), vectorised.

    :math:`b_t = \sum_{j<t} \beta^j x_{t-1-j} / \sum_{j<t} \beta^j`, with the weights cut where
    :math:`\beta^j < 10^{-12}` (a relative change below float64 round-off of the average).
    """
    n = x.shape[0]
    length = 1 if beta == 0 else min(n, max(1, math.ceil(math.log(1e-12) / math.log(beta))))
    powers = torch.arange(length - 1, -1, -1, dtype=x.dtype, device=x.device)
    kernel = (beta**powers).view(1, 1, -1)
    padded = torch.cat([x.new_zeros(length), x]).view(1, 1, -1)
    ones = torch.cat([x.new_zeros(length), torch.ones_like(x)]).view(1, 1, -1)
    num = F.conv1d(padded, kernel).view(-1)[:n]
    den = F.conv1d(ones, kernel).view(-1)[:n]
    return torch.where(den > 0, num / den.clamp_min(1e-300), 0.0)


#: The lab's own estimator: the registry's ``reinforce`` with a moving-average baseline.
_MOVING_AVERAGE = "reinforce_moving_average"
_MOVING_AVERAGE_PARAMS = {"decay": 0.9, "warmup": 20}


def _lab_names() -> tuple[str, ...]:
    registered = estimator_names()
    at = registered.index("reinforce") + 1 if "reinforce" in registered else len(registered)
    return (*registered[:at], _MOVING_AVERAGE, *registered[at:])


#: Names of the book's estimators in the lab, in the order used by tables: those of the
#: registry (:func:`lib.estimators.estimator_names`) and ``reinforce_moving_average``.
#: Estimators registered later with :func:`lib.estimators.register_estimator` work too.
ESTIMATORS: tuple[str, ...] = _lab_names()


class Estimator:
    """A registered gradient estimator with fixed parameters; create with :func:`get_estimator`.

    Call it as ``estimator(problem, logits, n_samples, n_repeats, generator)`` to get a tensor
    ``[n_repeats, *problem.shape]`` (``[n_repeats, D]`` for one distribution) of independent
    estimates of the gradient of :math:`\\mathbb{E}[f(z)]`
    with respect to ``logits`` (each the average over ``n_samples`` samples). The estimate is
    that of :func:`lib.estimators.surrogate` under the same name: the lab, the models and the
    chapters share one definition of each estimator.

    ``logits`` is ``None`` (the problem's), ``[D]`` (one point for all repeats) or
    ``[n_repeats, D]`` (one point per repeat: parallel optimisation runs). Pass
    ``state=estimator.new_state()`` to carry a moving-average baseline over calls (one
    average per repeat). With ``with_params=True`` the call returns a pair: the logits'
    estimates and those of the cost's own parameters ``[n_repeats, P]`` (``None`` when the
    problem has none).

    Attributes:
        name: registry name, e.g. ``"gumbel_softmax"``.
        params: parameters, e.g. ``{"tau": 0.5}``.
        unbiased: whether the estimator is unbiased for every differentiable ``f``.
        label: a readable name for tables and legends, e.g. ``"Gumbel-softmax (tau=0.5)"``.
        description: one line on what it computes.
    """

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        self.name = name
        self.params = params
        if name == _MOVING_AVERAGE:
            self.unbiased = True
            self._label = "REINFORCE + moving avg"
            self.description = ("score function, baseline = moving average of earlier batches' "
                                "mean cost")
            self._min_samples = 1
        else:
            spec = get_estimator_spec(name)
            self.unbiased, self._label = spec.unbiased, spec.label
            self.description, self._min_samples = spec.description, spec.min_samples

    @property
    def label(self) -> str:
        if "tau" in self.params:
            return f"{self._label} (tau={self.params['tau']:g})"
        return self._label

    def new_state(self) -> dict[str, Any]:
        """A fresh state for an optimisation loop (used by the moving-average baseline)."""
        return {"carry": (None, 0)}

    def __call__(
        self,
        problem: Problem,
        logits: Tensor | None,
        n_samples: int,
        n_repeats: int = 1,
        generator: torch.Generator | None = None,
        *,
        state: dict[str, Any] | None = None,
        with_params: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor | None]:
        _check_problem(problem)
        n_samples = check_int(n_samples, "n_samples", min_value=1)
        n_repeats = check_int(n_repeats, "n_repeats", min_value=1)
        logits = problem._logits_or_default(logits, n_repeats)
        if n_samples < self._min_samples:
            raise ValueError(
                f"{self.name} needs n_samples >= {self._min_samples} (e.g. the leave-one-out "
                f"baseline of each sample is the mean of the others), got n_samples={n_samples}"
            )
        check_generator(generator, like=logits)
        # [R, *shape] leaf: row r's gradient is the r-th estimate. ``logits`` has the
        # problem's shape (the same point for every repeat) or [R, *shape] (one point per
        # repeat, e.g. parallel runs). A cost with parameters gets its own [R, P] leaf.
        leaf = logits.detach().expand(n_repeats, *problem.shape).clone().requires_grad_(True)
        theta = None
        if problem.params is not None:
            theta = problem.params.expand(n_repeats, -1).clone().requires_grad_(True)
        name, params = self.name, dict(self.params)
        if name == _MOVING_AVERAGE:
            state = {} if state is None else state
            if not isinstance(state, dict):
                raise TypeError(f"state must be a dict from new_state(), got {type_name(state)}")
            state["estimator"] = self
            state["generator"] = generator
            name, params = "reinforce", {"baseline": _moving_average_baseline(problem, leaf,
                                                                             state)}
        inputs = [leaf] if theta is None else [leaf, theta]
        with torch.enable_grad():
            out = surrogate(name, problem.node(leaf), lambda z: problem.cost(z, theta),
                            n_samples, generator, **params)
            grads = torch.autograd.grad(out.loss.sum(), inputs, allow_unused=True)
        grads = [torch.zeros_like(x) if g is None else g.detach() for x, g in zip(inputs, grads)]
        if with_params:
            return grads[0], (grads[1] if theta is not None else None)
        return grads[0]

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"get_estimator({self.name!r}{', ' if params else ''}{params})"


def get_estimator(name: str, **params: Any) -> Estimator:
    r"""Look up a gradient estimator by name, with its parameters.

    ============================ ======== ===================================================
    name                          params   gradient estimate (per sample, then averaged)
    ============================ ======== ===================================================
    ``exact``                              enumeration; zero variance (reference)
    ``reinforce``                          :math:`f(z)\,\nabla\log p(z)`
    ``reinforce_moving_average`` decay,    :math:`(f(z) - b)\nabla\log p(z)`, b a moving
                                 warmup    average of EARLIER batches' mean cost
    ``reinforce_loo``                      :math:`(f(z_s) - \frac{1}{S-1}\sum_{j\ne s}f(z_j))
                                           \nabla\log p(z_s)`
    ``straight_through``                   :math:`\partial f/\partial z` at the hard sample,
                                           times :math:`\partial\,\mathrm{probs}/\partial\ell`
    ``gumbel_softmax``            tau      :math:`\nabla_\ell f(\mathrm{softmax}((\ell+G)/\tau))`
    ``st_gumbel_softmax``         tau      :math:`\partial f/\partial z` at the hard sample,
                                           times the relaxed sample's Jacobian
    ``gumbel_rao``                tau,     as ``st_gumbel_softmax``, the Jacobian averaged over
                                 n_cond.  ``n_conditional`` draws of the noise given the sample
    ``reinmax``                   tau      :math:`\partial f/\partial z` at the hard sample, times
                                           :math:`2J(\pi_{1/2}) - J(\pi)/2` (second order)
    ``local_baseline``                     :math:`\sum_k \nabla p(z_i{=}k) f(z_{-i}, k)` per
                                           variable (1 + V(K-1) evaluations per sample)
    ``arm``                                :math:`(f(b) - f(\tilde b))(u - \frac12)`, antithetic
                                           pair (Bernoulli; n_samples pairs)
    ``disarm``                             ARM averaged given the pair (Bernoulli; pairs)
    ``rebar``                     tau, eta REINFORCE with control :math:`\eta f(\sigma_\tau(z))`
                                           and its conditional correction
    ``relax``                     control, REBAR with a learned control
                                  tau, eta :math:`\eta f(\sigma_\tau(z)) + r_\phi(\sigma_\tau(z))`
    ``imle``                      lam,     top-k of the perturbed logits forward, a finite
                                  noise_t. difference of two top-k's backward (k-subsets)
    ============================ ======== ===================================================

    On a :class:`KSubsetProblem` and a :class:`PermutationProblem` the six generic names
    (``exact`` to ``st_gumbel_softmax``) work, plus ``imle`` for k-subsets; the Gumbel names
    are then relaxed top-k and Gumbel-Sinkhorn (see :class:`lib.subsets.KSubsetNode` and
    :class:`lib.permutations.PermutationNode`).

    Every name except ``reinforce_moving_average`` is an estimator of the registry
    (:mod:`lib.estimators`), with the same definition the models use; an estimator added with
    :func:`lib.estimators.register_estimator` is available here under its name.
    ``reinforce_moving_average`` is the registry's ``reinforce`` with a baseline that the lab
    keeps: a bias-corrected exponential moving average of earlier batches' mean costs.

    The straight-through estimator is the one of
    ``torch.distributions.OneHotCategoricalStraightThrough`` (no noise in the backward pass,
    no temperature); for Bernoullis its backward value is ``sigmoid(logits)``.

    A note on ``reinforce_moving_average``: in a one-shot measurement the baseline of repeat
    r is a bias-corrected exponential moving average (``decay``, default 0.9) of the mean
    costs of the ``warmup`` (default 20) extra batches and of repeats < r, all drawn at the same
    logits: what a training loop's baseline is when the logits move slowly. It never includes
    the current batch, so the estimator is unbiased. The warm-up batches are included in the
    timing of :func:`measure` (a training loop gets them for free). In :func:`optimise` the
    average is carried over steps instead.

    Args:
        name: one of :data:`ESTIMATORS`, or a name registered later.
        **params: ``tau`` (> 0, default 1.0) for the Gumbel estimators; ``decay`` (in [0, 1))
            and ``warmup`` (>= 1) for the moving average. Other names are refused.

    Returns:
        An :class:`Estimator`.

    Example:
        >>> problem = CategoricalProblem(torch.zeros(3), lambda z: z @ torch.tensor([1., 2., 4.]))
        >>> est = get_estimator("gumbel_softmax", tau=0.5)
        >>> est(problem, None, 100, 8, torch.Generator().manual_seed(0)).shape
        torch.Size([8, 3])
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type_name(name)}")
    if name != _MOVING_AVERAGE:
        if name not in estimator_names():
            raise ValueError(
                f"unknown estimator {name!r}; choose one of {', '.join(_lab_names())}")
        return Estimator(name, estimator_params(name, **params))
    unknown = sorted(set(params) - set(_MOVING_AVERAGE_PARAMS))
    if unknown:
        raise ValueError(
            f"estimator {name!r} does not take parameter(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(_MOVING_AVERAGE_PARAMS)})"
        )
    merged = {**_MOVING_AVERAGE_PARAMS, **params}
    decay = check_real(merged["decay"], "decay", ge=0.0)
    if decay >= 1:
        raise ValueError(f"decay must be in [0, 1), got {decay}")
    merged["decay"] = decay
    merged["warmup"] = check_int(merged["warmup"], "warmup", min_value=1)
    return Estimator(name, merged)


_COLOR_ROLE = {
    "exact": "exact",
    "reinforce": "reinforce",
    "reinforce_moving_average": "baseline",
    "reinforce_loo": "other",
    "straight_through": "straight_through",
    "gumbel_softmax": "relaxed",
    "st_gumbel_softmax": "empirical",
    "gumbel_rao": "rao_blackwellised",
    "reinmax": "second_order",
}
_TAU_LINESTYLES = {0.1: ":", 0.5: "-", 1.0: "--", 2.0: "-."}


def line_style(estimator: Estimator) -> dict[str, Any]:
    """Matplotlib keyword arguments that identify an estimator the same way in every figure.

    One Okabe-Ito colour per estimator family (:data:`lib.plotting.COLORS`); for the Gumbel
    estimators the line style encodes the temperature (``:`` 0.1, ``-`` 0.5, ``--`` 1,
    ``-.`` 2, ``-`` otherwise). The label is :attr:`Estimator.label`.

    Args:
        estimator: an :class:`Estimator`.

    Returns:
        dict with ``color``, ``linestyle`` and ``label``, e.g. for ``ax.plot(x, y, **style)``.

    Example:
        >>> line_style(get_estimator("gumbel_softmax", tau=0.1))["linestyle"]
        ':'
    """
    from lib.plotting import COLORS

    if not isinstance(estimator, Estimator):
        raise TypeError(f"estimator must be an Estimator, got {type_name(estimator)}")
    linestyle = _TAU_LINESTYLES.get(estimator.params.get("tau", 0.5), "-")
    return {"color": COLORS[_COLOR_ROLE.get(estimator.name, "other")], "linestyle": linestyle,
            "label": estimator.label}


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    r"""What :func:`measure` returns: an estimator's error against a reference gradient.

    Vectors are detached float64 tensors over the D logits (flattened) followed by the cost's
    P parameters, if it has any (``n_params``).

    Attributes:
        estimator: the estimator's label.
        n_samples: samples per estimate.
        n_repeats: independent estimates R.
        mean: ``[D + P]`` the average estimate.
        reference: ``[D + P]`` the reference gradient (exact, or a Monte Carlo estimate).
        reference_se: ``[D + P]`` its standard errors (0 when exact).
        reference_method: ``"exact"``, or how the Monte Carlo reference was computed.
        bias: ``[D + P]`` mean - reference.
        bias_se: ``[D + P]`` standard error of each bias coordinate (of the mean and of the
            reference together).
        bias_z: ``[D + P]`` bias / sqrt(bias_se^2 + r^2), with a round-off floor
            r = 100 x float eps x (max |f| + max |reference|).
        max_abs_z: the largest ``|bias_z|``.
        bias_norm: Euclidean norm of ``bias``.
        bias_noise: the bias norm expected from noise alone for an unbiased estimator,
            sqrt(tr(variance) / R + sum(reference_se^2)).
        variance: ``[D + P]`` per-coordinate variance of one estimate.
        variance_total: its trace.
        mse: mean over repeats of ``||g_r - reference||^2``.
        mse_se: its standard error.
        relative_mse: mse / ||reference||^2 (inf if the reference is 0).
        seconds_per_estimate: wall time of the call / R (machine-dependent: never print it).
        n_params: P, the number of cost parameters at the end of the vectors.
        wrong_sign: share of the estimates' coordinates whose sign is opposite to the
            reference's, over the R estimates and the coordinates where the reference is not
            0 (a zero estimate is not wrong-signed); NaN if the reference is 0 everywhere.
    """

    estimator: str
    n_samples: int
    n_repeats: int
    mean: Tensor
    reference: Tensor
    reference_se: Tensor
    reference_method: str
    bias: Tensor
    bias_se: Tensor
    bias_z: Tensor
    max_abs_z: float
    bias_norm: float
    bias_noise: float
    variance: Tensor
    variance_total: float
    mse: float
    mse_se: float
    relative_mse: float
    seconds_per_estimate: float
    n_params: int = 0
    wrong_sign: float = math.nan


def measure(
    problem: Problem,
    estimator: Estimator | Callable[..., Tensor],
    n_samples: int,
    n_repeats: int = 1000,
    generator: torch.Generator | None = None,
    *,
    logits: Tensor | None = None,
    reference: Reference | None = None,
) -> Measurement:
    r"""Bias, variance and mean squared error of an estimator against a reference gradient.

    Draws ``n_repeats`` independent estimates :math:`g_1, \dots, g_R` (each from ``n_samples``
    samples) and compares them with the reference gradient :math:`g^*`: the exact gradient
    by enumeration when the problem is small enough (:attr:`~CategoricalProblem.enumerable`),
    otherwise the ``reference`` you pass (:meth:`~CategoricalProblem.reference_gradient`, a
    large-sample unbiased estimate with its standard error). For a problem with cost
    parameters, the parameters' gradient is measured too (the last ``n_params``
    coordinates).

    .. math::
        \text{bias} = \bar g - g^*, \qquad
        \text{variance}_i = \frac{1}{R-1}\sum_r (g_{r,i} - \bar g_i)^2, \qquad
        \text{mse} = \frac1R \sum_r \lVert g_r - g^* \rVert^2 .

    The measured bias is itself noisy: its standard error per coordinate is
    :math:`\sqrt{\text{variance}_i / R + \mathrm{se}^{*2}_i}`, and for an UNBIASED estimator
    :math:`\mathbb{E}\lVert \bar g - g^*\rVert^2 = \mathrm{tr}(\text{variance})/R
    + \sum_i \mathrm{se}^{*2}_i`, so ``bias_noise`` is the size of bias one should expect from
    noise alone. A ``bias_norm`` several times ``bias_noise`` (or a large ``max_abs_z``) is real
    bias. The MSE against a Monte Carlo reference is too large by about
    :math:`\sum_i \mathrm{se}^{*2}_i`: keep the reference's standard errors small.

    Args:
        problem: a lab problem (:class:`CategoricalProblem`, :class:`BernoulliProblem`,
            :class:`KSubsetProblem` or :class:`PermutationProblem`).
        estimator: an :class:`Estimator`, or any callable with the same signature returning
            ``[n_repeats, *problem.shape]``.
        n_samples: samples per estimate, >= 1.
        n_repeats: independent estimates, >= 2.
        generator: optional ``torch.Generator`` on the CPU or on the problem's device.
        logits: where to measure (default: the problem's logits), the problem's shape.
        reference: a :class:`Reference`; default: the exact gradient (a ``ValueError`` if the
            problem is too large to enumerate).

    Returns:
        A :class:`Measurement`.

    Example:
        >>> toy = BernoulliProblem(torch.zeros(1), lambda b: ((b - 0.499) ** 2).sum(-1))
        >>> m = measure(toy, get_estimator("reinforce"), 10, 2000, torch.Generator().manual_seed(0))
        >>> m.bias_norm < 4 * m.bias_noise
        True
    """
    _check_problem(problem)
    check_callable(estimator, "estimator")
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    n_repeats = check_int(n_repeats, "n_repeats", min_value=2)
    logits = problem._logits_or_default(logits)
    check_generator(generator, like=logits)
    width = problem.dim + problem.n_params
    if reference is None:
        if not problem.enumerable:
            problem._check_enumerable("measure's default (exact) reference")
        exact = problem.exact_gradient(logits).double().flatten()
        if problem.params is not None:
            exact = torch.cat([exact, problem._exact_gradients(logits)[1].double()])
        reference = Reference(exact, torch.zeros_like(exact), "exact")
    elif not isinstance(reference, Reference):
        raise TypeError(f"reference must be a Reference (problem.reference_gradient(...)), got "
                        f"{type_name(reference)}")
    elif reference.values.shape != (width,):
        raise ValueError(f"reference has {reference.values.numel()} coordinates; this problem "
                         f"has {width} (D logits + P parameters)")
    ref, ref_se = reference.values.double(), reference.se.double()
    start = time.perf_counter()
    if problem.params is not None and isinstance(estimator, Estimator):
        g_logits, g_params = estimator(problem, logits, n_samples, n_repeats, generator,
                                       with_params=True)
        estimates = torch.cat([g_logits.reshape(n_repeats, -1), g_params], dim=1)
    else:
        estimates = estimator(problem, logits, n_samples, n_repeats, generator)
    seconds = time.perf_counter() - start
    expected = (n_repeats, *problem.shape) if problem.params is None else (n_repeats, width)
    if not isinstance(estimates, Tensor) or estimates.shape != expected:
        shape = tuple(estimates.shape) if isinstance(estimates, Tensor) else type_name(estimates)
        dims = ", ".join(str(d) for d in expected[1:])
        raise ValueError(
            f"estimator must return a tensor of shape [n_repeats, {dims}] = "
            f"{list(expected)}, got {shape}"
        )
    g = estimates.detach().double().reshape(n_repeats, width)
    mean = g.mean(0)
    bias = mean - ref
    variance = g.var(0, unbiased=True)
    bias_se = (variance / n_repeats + ref_se**2).sqrt()
    # z-score of each bias coordinate, with a floor for floating-point round-off so that a
    # zero-variance estimate that is right up to rounding (exact; straight-through on a linear
    # cost) gets |z| < 1 instead of a huge ratio of two round-off errors.
    eps = torch.finfo(problem.logits.dtype).eps
    scale = problem._cost_scale() if problem.enumerable else 0.0
    roundoff = 100 * eps * (scale + float(ref.abs().max())) + 1e-300
    z = bias / (bias_se**2 + roundoff**2).sqrt()
    sq_err = ((g - ref) ** 2).sum(-1)
    mse = float(sq_err.mean())
    ref_sq = float((ref**2).sum())
    label = getattr(estimator, "label", getattr(estimator, "__name__", type_name(estimator)))
    return Measurement(
        estimator=label,
        n_samples=n_samples,
        n_repeats=n_repeats,
        mean=mean,
        reference=ref,
        reference_se=ref_se,
        reference_method=reference.method,
        bias=bias,
        bias_se=bias_se,
        bias_z=z,
        max_abs_z=float(z.abs().max()),
        bias_norm=float(bias.norm()),
        bias_noise=math.sqrt(float(variance.sum()) / n_repeats + float((ref_se**2).sum())),
        variance=variance,
        variance_total=float(variance.sum()),
        mse=mse,
        mse_se=float(sq_err.std(unbiased=True)) / math.sqrt(n_repeats),
        relative_mse=mse / ref_sq if ref_sq > 0 else math.inf,
        seconds_per_estimate=seconds / n_repeats,
        n_params=problem.n_params,
        wrong_sign=_wrong_sign_share(g, ref),
    )


def _wrong_sign_share(g: Tensor, ref: Tensor) -> float:
    """Share of the entries of ``g [R, W]`` with the sign opposite to ``ref [W]`` (ref != 0)."""
    nonzero = ref != 0
    if not bool(nonzero.any()):
        return math.nan
    return float((g[:, nonzero] * ref[nonzero].sign() < 0).double().mean())


def time_per_estimate(
    problem: Problem,
    estimator: Estimator | Callable[..., Tensor],
    n_samples: int,
    n_repeats: int = 200,
    generator: torch.Generator | None = None,
    *,
    trials: int = 5,
) -> float:
    """CPU seconds per estimate: the fastest of ``trials`` timed calls, divided by ``n_repeats``.

    Uses ``time.process_time`` (CPU time of this process) and keeps the minimum over trials,
    which is far less sensitive than wall-clock time to other programs sharing the machine.
    With several torch threads, CPU time adds up the threads' time. One untimed call runs
    first (warm-up). The result depends on the machine: use it in figures, not in prose.

    Args:
        problem: the problem.
        estimator: an :class:`Estimator` or a callable with the same signature.
        n_samples: samples per estimate.
        n_repeats: estimates per timed call (vectorised), >= 1.
        generator: optional ``torch.Generator`` on the CPU or on the problem's device.
        trials: timed calls, >= 1.

    Returns:
        Seconds per estimate (float).

    Example:
        >>> toy = BernoulliProblem(torch.zeros(1), lambda b: ((b - 0.499) ** 2).sum(-1))
        >>> time_per_estimate(toy, get_estimator("reinforce"), 4, 100, trials=2) > 0
        True
    """
    _check_problem(problem)
    check_callable(estimator, "estimator")
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    n_repeats = check_int(n_repeats, "n_repeats", min_value=1)
    trials = check_int(trials, "trials", min_value=1)
    check_generator(generator, like=problem.logits)
    estimator(problem, None, n_samples, n_repeats, generator)
    best = math.inf
    for _ in range(trials):
        start = time.process_time()
        estimator(problem, None, n_samples, n_repeats, generator)
        best = min(best, time.process_time() - start)
    return best / n_repeats


class Trajectory(NamedTuple):
    """What :func:`optimise` returns.

    Attributes:
        logits: ``[n_steps + 1, n_runs, *shape]``: the trajectories, starting point first.
        value: ``[n_steps + 1, n_runs]``: the exact objective along them, by enumeration
            (``None`` for a problem too large to enumerate).
    """

    logits: Tensor
    value: Tensor | None


def optimise(
    problem: Problem,
    estimator: Estimator | Callable[..., Tensor],
    *,
    n_steps: int,
    lr: float,
    n_samples: int = 1,
    n_runs: int = 1,
    generator: torch.Generator | None = None,
    logits: Tensor | None = None,
    optimizer: str = "sgd",
) -> dict[str, Tensor]:
    r"""Minimise :math:`\mathbb{E}[f(z)]` over the logits with gradient estimates.

    Runs ``n_runs`` independent optimisations side by side (vectorised: run r is repeat r of
    the estimator). Each step draws one estimate per run from ``n_samples`` samples and takes
    an optimiser step on that run's logits. A moving-average baseline is carried over the steps
    (one average per run). SGD: :math:`\ell \leftarrow \ell - \eta g`. Adam (Kingma and Ba
    2015, the defaults of ``torch.optim.Adam``: betas 0.9 and 0.999, eps 1e-8) keeps
    element-wise statistics, so the runs stay independent; its steps have size about ``lr``
    whatever the scale of the gradient.

    Args:
        problem: the problem (its logits are the starting point unless ``logits`` is given).
        estimator: an :class:`Estimator`, or any callable with its signature that accepts
            ``logits`` of shape ``[n_runs, D]``.
        n_steps: number of steps, >= 1.
        lr: learning rate, > 0.
        n_samples: samples per step and run.
        n_runs: independent runs, >= 1.
        generator: optional ``torch.Generator`` on the CPU or on the problem's device.
        logits: starting logits ``[D]`` (default: the problem's).
        optimizer: ``"sgd"`` or ``"adam"``.

    Returns:
        A :class:`Trajectory` ``(logits, value)``: the trajectories ``[n_steps + 1, n_runs,
        *shape]`` and the exact objective along them ``[n_steps + 1, n_runs]``.

    Example:
        >>> toy = BernoulliProblem(torch.zeros(1), lambda b: ((b - 0.499) ** 2).sum(-1))
        >>> out = optimise(toy, get_estimator("exact"), n_steps=10, lr=100.0)
        >>> bool(out.logits[-1, 0, 0] < 0)  # descends toward theta = 0
        True
    """
    _check_problem(problem)
    check_callable(estimator, "estimator")
    n_steps = check_int(n_steps, "n_steps", min_value=1)
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    n_runs = check_int(n_runs, "n_runs", min_value=1)
    lr = check_real(lr, "lr", gt=0.0)
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    start = problem._logits_or_default(logits)
    check_generator(generator, like=start)
    param = start.expand(n_runs, *problem.shape).clone()
    # The updates are written out (same formulas and defaults as torch.optim.SGD / Adam): the
    # first torch.optim step imports torch._dynamo, several seconds on a small machine.
    m = torch.zeros_like(param)
    v = torch.zeros_like(param)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    state = estimator.new_state() if isinstance(estimator, Estimator) else None
    trajectory = [param.clone()]
    for step in range(1, n_steps + 1):
        kwargs = {"state": state} if state is not None else {}
        grad = estimator(problem, param, n_samples, n_runs, generator, **kwargs).to(param.dtype)
        if optimizer == "sgd":
            param = param - lr * grad
        else:
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad**2
            m_hat = m / (1 - beta1**step)
            v_hat = v / (1 - beta2**step)
            param = param - lr * m_hat / (v_hat.sqrt() + eps)
        snap_([param])  # the same trajectory on every CPU (lib.training)
        trajectory.append(param.clone())
    path = torch.stack(trajectory)  # [n_steps + 1, n_runs, *shape]
    values = None
    if problem.enumerable:
        with torch.no_grad():
            values = problem.exact_values(path.reshape(-1, *problem.shape)).reshape(
                n_steps + 1, n_runs)
    return Trajectory(logits=path, value=values)
