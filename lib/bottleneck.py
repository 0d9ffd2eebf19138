r"""A discrete-bottleneck autoencoder: the book's small experiment for training with Gumbel-softmax.

Points :math:`x` on the unit circle are encoded into ONE categorical code out of ``n_codes``
and decoded back; the loss is the squared reconstruction error.

* data: :func:`circle_data`, uniform on the unit circle;
* model (:class:`DiscreteAutoencoder`): an encoder MLP gives logits :math:`\ell(x) \in
  \mathbb{R}^K`, a code :math:`y` (one-hot, or a point of the simplex when relaxed) is decoded
  by a codebook :math:`C \in \mathbb{R}^{K \times 2}`, :math:`\hat x = y^\top C`. A one-hot code
  decodes to one codebook row; a relaxed code decodes to a convex combination of rows;
* the best any discrete code can do (:func:`optimal_circle_loss`): the expected squared error
  of the best ``n_codes``-point quantiser of the circle, whatever the encoder;
* training (:func:`train_autoencoder`): several models side by side, each with its own
  gradient estimator from the registry of :mod:`lib.estimators` (``"gumbel_softmax"``: relaxed
  samples, Approach 1; ``"st_gumbel_softmax"``: one-hot forward, relaxed backward, Approach 2;
  ``"exact"``: the expectation over the ``K`` codes summed exactly; or any other registered
  name, e.g. ``"straight_through"``, ``"reinforce_loo"``) and its own temperature (a number or
  a schedule ``step -> tau``, used by the estimators that take one);
* many seeds at once (:func:`train_autoencoder_seeds`): one batched model for several seeds,
  each seed with its own data, weights, batches and noise, as in a single-seed call;
* evaluation (:func:`evaluate_autoencoder`): the relaxed loss, the expected loss with a SAMPLED
  code (computed exactly by summing over the codes) and the loss with the ARGMAX code.

All models of one call start from the same initial weights and see the same mini-batches and
the same uniform random numbers behind their codes (common random numbers: one draw per seed
and step, shared through ``StochasticNode(..., fixed_uniforms=...)``), so their differences
come from the estimator and the temperature alone, and a model's result does not depend on
which other models share the call.

Reference:
    E. Jang, S. Gu, B. Poole (2017), *Categorical Reparameterization with Gumbel-Softmax*, ICLR.
    C. J. Maddison, A. Mnih, Y. W. Teh (2017), *The Concrete Distribution*, ICLR.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from lib import rng
from lib._validation import (
    check_generator,
    check_int,
    check_real,
    check_tau,
    check_tensor,
    type_name,
)
from lib.estimators import StochasticNode, get_estimator_spec, surrogate
from lib.gumbel import _uniform_open
from lib.training import fit

__all__ = [
    "AutoencoderRun",
    "DiscreteAutoencoder",
    "circle_data",
    "evaluate_autoencoder",
    "optimal_circle_loss",
    "train_autoencoder",
    "train_autoencoder_seeds",
]

Temperature = float | Callable[[int], float]


def circle_data(
    n: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Points uniformly distributed on the unit circle.

    .. math:: x = (\cos\theta, \sin\theta), \qquad \theta \sim \mathrm{Uniform}(0, 2\pi).

    Args:
        n: number of points, >= 1.
        generator: optional ``torch.Generator`` on the CPU or on ``device``.
        dtype: floating-point dtype of the output.
        device: device of the output (None: the default device).

    Returns:
        Tensor ``[n, 2]``.

    Example:
        >>> x = circle_data(5, generator=torch.Generator().manual_seed(0))
        >>> x.shape, bool(torch.allclose(x.norm(dim=1), torch.ones(5)))
        (torch.Size([5, 2]), True)
    """
    n = check_int(n, "n", min_value=1)
    check_generator(generator, device=device)
    theta = 2 * math.pi * rng.rand(n, generator=generator, dtype=torch.float64, device=device)
    return torch.stack([theta.cos(), theta.sin()], dim=-1).to(dtype)


def optimal_circle_loss(n_codes: int) -> float:
    r"""The smallest expected squared error of any ``n_codes``-point quantiser of the circle.

    A codebook of :math:`K` points splits the circle into arcs (the points nearest to each
    codebook vector). An arc of angle :math:`\alpha` is best decoded by its centroid, at
    distance :math:`\mathrm{sinc}(\alpha/2) = \sin(\alpha/2)/(\alpha/2)` from the centre, with
    mean squared error :math:`1 - \mathrm{sinc}^2(\alpha/2)`. The total error
    :math:`\sum_k \frac{\alpha_k}{2\pi}\,(1 - \mathrm{sinc}^2(\alpha_k/2))` is convex in the arc
    lengths, so equal arcs :math:`\alpha_k = 2\pi/K` are optimal:

    .. math:: D^*_K = 1 - \left(\frac{\sin(\pi/K)}{\pi/K}\right)^2 .

    No encoder and decoder with a discrete ``n_codes``-way code can have a lower expected
    squared error on :func:`circle_data`, with sampled or argmax codes.

    Args:
        n_codes: number of codes K, >= 1.

    Returns:
        :math:`D^*_K` as a float (1.0 for K = 1).

    Example:
        >>> round(optimal_circle_loss(4), 4)
        0.1894
    """
    n_codes = check_int(n_codes, "n_codes", min_value=1)
    half = math.pi / n_codes
    return 1.0 - (math.sin(half) / half) ** 2


def _uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator | None) -> Tensor:
    return (rng.rand(shape, generator=generator, device="cpu") * 2 - 1) * bound


class DiscreteAutoencoder(nn.Module):
    r"""``n_models`` autoencoders with a one-categorical bottleneck, run as one batched module.

    .. math::
        \ell(x) = W_2\,\mathrm{relu}(W_1 x + b_1) + b_2 \in \mathbb{R}^K, \qquad
        \hat x(y) = y^\top C = \sum_k y_k C_k,

    where the code :math:`y` is one-hot (a discrete code) or a point of the simplex (a relaxed
    code). Every model starts from the SAME initial weights (drawn once, like ``nn.Linear``'s
    default: uniform in :math:`\pm 1/\sqrt{\text{fan-in}}`), so models trained side by side
    differ only by what they are trained with. Parameters carry a leading ``n_models``
    dimension; the models never interact (the loss is a sum over models and Adam works
    element-wise).

    Args:
        n_models: number of independent models, >= 1.
        n_codes: number of codes K, >= 2.
        hidden: width of the encoder's hidden layer, >= 1.
        data_dim: dimension of the data, >= 1.
        generator: optional CPU ``torch.Generator`` for the initial weights (the module is
            built on the CPU; move it with ``.to(device)``).

    Example:
        >>> model = DiscreteAutoencoder(3, generator=torch.Generator().manual_seed(0))
        >>> model.encode(torch.zeros(5, 2)).shape  # [n_models, batch, n_codes]
        torch.Size([3, 5, 4])
        >>> model.decode(torch.eye(4)).shape  # each model's codebook
        torch.Size([3, 4, 2])
    """

    def __init__(
        self,
        n_models: int = 1,
        *,
        n_codes: int = 4,
        hidden: int = 32,
        data_dim: int = 2,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_generator(generator, device="cpu")
        self.n_models = check_int(n_models, "n_models", min_value=1)
        self.n_codes = check_int(n_codes, "n_codes", min_value=2)
        self.hidden = check_int(hidden, "hidden", min_value=1)
        self.data_dim = check_int(data_dim, "data_dim", min_value=1)
        shapes = {
            "w1": ((data_dim, hidden), data_dim),
            "b1": ((1, hidden), data_dim),
            "w2": ((hidden, n_codes), hidden),
            "b2": ((1, n_codes), hidden),
            "codebook": ((n_codes, data_dim), n_codes),
        }
        for name, (shape, fan_in) in shapes.items():
            init = _uniform(shape, 1 / math.sqrt(fan_in), generator)
            self.register_parameter(name, nn.Parameter(init.expand(n_models, *shape).clone()))

    def _batched(self, x: Tensor, name: str, width: int) -> Tensor:
        check_tensor(x, name)
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.n_models, -1, -1)
        if x.dim() != 3 or x.shape[0] != self.n_models or x.shape[2] != width:
            raise ValueError(
                f"{name} must have shape [batch, {width}] or [n_models={self.n_models}, batch, "
                f"{width}], got {tuple(x.shape)}"
            )
        return x.to(self.w1.dtype)

    def encode(self, x: Tensor) -> Tensor:
        """Logits of the code.

        Args:
            x: data ``[B, data_dim]`` (shared by all models) or ``[n_models, B, data_dim]``.

        Returns:
            Logits ``[n_models, B, n_codes]``.
        """
        x = self._batched(x, "x", self.data_dim)
        h = torch.relu(torch.baddbmm(self.b1, x, self.w1))
        return torch.baddbmm(self.b2, h, self.w2)

    def decode(self, y: Tensor) -> Tensor:
        """Reconstruction :math:`y^\\top C` from codes.

        Args:
            y: codes ``[B, n_codes]`` or ``[n_models, B, n_codes]``: one-hot vectors or points
                of the simplex.

        Returns:
            Reconstructions ``[n_models, B, data_dim]``.
        """
        y = self._batched(y, "y", self.n_codes)
        return torch.bmm(y, self.codebook)

    def squared_errors(self, x: Tensor) -> Tensor:
        r"""Squared error of decoding each code: :math:`\lVert x - C_k \rVert^2`.

        Args:
            x: data ``[B, data_dim]`` or ``[n_models, B, data_dim]``.

        Returns:
            Tensor ``[n_models, B, n_codes]``.
        """
        x = self._batched(x, "x", self.data_dim)
        return ((x.unsqueeze(2) - self.codebook.unsqueeze(1)) ** 2).sum(-1)


def _check_estimators_and_taus(
    estimator: str | Sequence[str], tau: Temperature | Sequence[Temperature], n_samples: int
) -> tuple[list[str], list[Temperature]]:
    if isinstance(estimator, str):
        names = [estimator]
    elif isinstance(estimator, Sequence):
        names = list(estimator)
    else:
        raise TypeError(f"estimator must be a registered estimator's name or a sequence of them, "
                        f"got {type_name(estimator)}")
    single_tau = callable(tau) or not isinstance(tau, Sequence)
    taus = [tau] if single_tau else list(tau)
    if not names or not taus:
        raise ValueError("estimator and tau must not be empty")
    if len(names) == 1 and len(taus) > 1:
        names = names * len(taus)
    if len(taus) == 1 and len(names) > 1:
        taus = taus * len(names)
    if len(names) != len(taus):
        raise ValueError(
            f"estimator and tau must have the same length (one per model) or be single values, "
            f"got {len(names)} estimators and {len(taus)} temperatures"
        )
    for name in names:
        spec = get_estimator_spec(name)  # names the registered estimators if unknown
        if n_samples < spec.min_samples:
            raise ValueError(f"estimator {name!r} needs n_samples >= {spec.min_samples}, got "
                             f"n_samples={n_samples}")
    for t in taus:
        if not callable(t):
            check_tau(t)
    return names, taus


def _tau_values(taus: Sequence[Temperature], step: int) -> list[float]:
    values = []
    for t in taus:
        value = t(step) if callable(t) else t
        values.append(check_tau(value, "tau (the value of the schedule at step "
                                f"{step})" if callable(t) else "tau"))
    return values


def _decoding_cost(x: Tensor, codebook: Tensor, z: Tensor) -> Tensor:
    """Squared error ``[S, G, B]`` of decoding codes ``z`` ``[S, G, B, K]`` with ``G`` models'
    codebooks ``[G, K, D]``, for data ``x`` ``[G, B, D]`` (one batched product per model)."""
    n, g, b, k = z.shape
    decoded = torch.bmm(z.transpose(0, 1).reshape(g, n * b, k), codebook)
    decoded = decoded.reshape(g, n, b, -1).transpose(0, 1)
    return ((x - decoded) ** 2).sum(-1)


def _losses(
    model: DiscreteAutoencoder,
    estimators: Sequence[str],
    x: Tensor,
    taus: Sequence[float],
    uniforms: Tensor,
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Each model's loss on one batch, through the estimator registry (one call per estimator).

    Args:
        model: ``n_models`` models.
        estimators: one registered estimator name per model.
        x: data ``[B, data_dim]`` or ``[n_models, B, data_dim]``.
        taus: one temperature per model, for the estimators that take ``tau``.
        uniforms: ``[S, n_models or 1, B, K]``, the ``Uniform(0, 1)`` numbers behind the ``S``
            codes drawn per point; models given the same numbers use the same noise.

    Returns:
        ``(loss, cost, samples)``: ``loss`` ``[n_models]``, whose gradient is each model's
        estimate; ``cost`` ``[n_models]`` (detached), each model's training objective (mean
        over the batch); ``samples``: the codes each estimator evaluated the cost at.
    """
    logits = model.encode(x)  # [N, B, K]
    xs = model._batched(x, "x", model.data_dim)
    n_models = logits.shape[0]
    losses, costs, order, samples = [], [], [], {}
    for name in dict.fromkeys(estimators):  # the estimators in order of first appearance
        index = [i for i, e in enumerate(estimators) if e == name]
        group_logits, codebook, group_x, group_u = logits, model.codebook, xs, uniforms
        if len(index) < n_models:
            rows = torch.tensor(index, device=logits.device)
            group_logits = logits.index_select(0, rows)
            codebook = model.codebook.index_select(0, rows)
            group_x = xs.index_select(0, rows)
            if uniforms.shape[1] > 1:
                group_u = uniforms.index_select(1, rows)
        params = {}
        if "tau" in get_estimator_spec(name).params:
            group_taus = [taus[i] for i in index]
            params["tau"] = (group_taus[0] if len(set(group_taus)) == 1 else torch.tensor(
                group_taus, dtype=logits.dtype, device=logits.device).view(-1, 1, 1))
        node = StochasticNode("categorical", group_logits, fixed_uniforms=group_u)
        out = surrogate(name, node, functools.partial(_decoding_cost, group_x, codebook),
                        uniforms.shape[0], **params)
        losses.append(out.loss.mean(-1))
        costs.append(out.cost.mean(-1))
        order.extend(index)
        samples[name] = out.samples
    loss, cost = torch.cat(losses), torch.cat(costs)
    if order != list(range(n_models)):
        where = torch.tensor(order, device=logits.device).argsort()
        loss, cost = loss[where], cost[where]
    return loss, cost, samples


def evaluate_autoencoder(
    model: DiscreteAutoencoder,
    x: Tensor,
    tau: float | Sequence[float],
    *,
    n_samples: int = 8,
    generator: torch.Generator | None = None,
) -> dict[str, np.ndarray]:
    r"""Test losses of every model: relaxed, with a sampled code, and with the argmax code.

    For data :math:`x_1, \dots, x_n`, logits :math:`\ell(x)` and probabilities
    :math:`p(x) = \mathrm{softmax}(\ell(x))`:

    * ``relaxed``: :math:`\frac1n\sum_i \mathbb{E}_G \lVert x_i - \hat x(\mathrm{softmax}((\ell
      (x_i) + G)/\tau))\rVert^2`, by Monte Carlo over ``n_samples`` Gumbel draws per point
      (the same draws for every model): what ``gumbel_softmax`` (Approach 1) trains on;
    * ``sample``: :math:`\frac1n\sum_i \sum_k p_k(x_i)\,\lVert x_i - C_k\rVert^2`, the expected
      loss with a code SAMPLED from :math:`p(x_i)`, summed exactly over the codes (no Monte
      Carlo error);
    * ``argmax``: :math:`\frac1n\sum_i \lVert x_i - C_{\arg\max_k \ell_k(x_i)}\rVert^2`, the loss
      with the most probable code.

    Args:
        model: a :class:`DiscreteAutoencoder`.
        x: test data ``[n, data_dim]``.
        tau: temperature(s) for the relaxed loss: one float, or one per model.
        n_samples: Gumbel draws per point for the relaxed loss, >= 1.
        generator: optional ``torch.Generator`` for those draws, on the CPU or on the
            model's device.

    Returns:
        dict ``relaxed``, ``sample``, ``argmax``: float64 arrays ``[n_models]``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> model = DiscreteAutoencoder(2, generator=g)
        >>> out = evaluate_autoencoder(model, circle_data(100, generator=g), 1.0, generator=g)
        >>> sorted(out), out["argmax"].shape
        (['argmax', 'relaxed', 'sample'], (2,))
    """
    if not isinstance(model, DiscreteAutoencoder):
        raise TypeError(f"model must be a DiscreteAutoencoder, got {type_name(model)}")
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    taus = [tau] * model.n_models if not isinstance(tau, Sequence) else list(tau)
    if len(taus) != model.n_models:
        raise ValueError(f"tau must be one float or one per model ({model.n_models}), "
                         f"got {len(taus)}")
    device = model.w1.device
    check_generator(generator, device=device)
    tau_t = torch.tensor([check_tau(t) for t in taus], dtype=model.w1.dtype, device=device)
    tau_t = tau_t.view(-1, 1, 1)
    with torch.no_grad():
        logits = model.encode(x)
        errors = model.squared_errors(x)
        xs = model._batched(x, "x", model.data_dim)
        # one draw of uniforms [n_samples, n, K], shared by the models: relaxed codes
        # [n_samples, n_models, n, K]
        uniforms = _uniform_open((n_samples, *logits.shape[1:]), generator, logits.dtype, device)
        node = StochasticNode("categorical", logits, fixed_uniforms=uniforms.unsqueeze(1))
        codes = node.relaxed(n_samples, tau_t, hard=False)
        relaxed = torch.zeros(model.n_models, dtype=torch.float64, device=device)
        for soft in codes:
            relaxed += ((xs - model.decode(soft)) ** 2).sum(-1).mean(-1).double()
        sample = (torch.softmax(logits, dim=-1) * errors).sum(-1).mean(-1)
        argmax = errors.gather(-1, logits.argmax(-1, keepdim=True)).squeeze(-1).mean(-1)
    return {
        "relaxed": (relaxed / n_samples).cpu().numpy(),
        "sample": sample.double().cpu().numpy(),
        "argmax": argmax.double().cpu().numpy(),
    }


@dataclass
class AutoencoderRun:
    """What :func:`train_autoencoder` returns.

    Attributes:
        model: the trained :class:`DiscreteAutoencoder` (one model per estimator/temperature).
        estimators: the registered estimator each model was trained with.
        train_x, test_x: the training data ``[n_train, 2]`` and the test data ``[n_test, 2]``.
        train_loss: ``[n_steps, n_models]``, each model's training objective on its
            mini-batch at every step: the estimator's :attr:`lib.estimators.Surrogate.cost`
            (the loss of the relaxed code for ``gumbel_softmax``, of the one-hot sample for
            ``st_gumbel_softmax``, the exact expectation for ``exact``).
        taus: ``[n_steps + 1, n_models]``, the temperature used at every step; the last row is
            the temperature after training (used for the relaxed test loss).
        relaxed_codes: ``[n_models]`` bools: whether the model's estimator fed the decoder
            relaxed codes (points of the simplex that are not one-hot) during training, as
            ``gumbel_softmax`` does.
        test: :func:`evaluate_autoencoder` on ``test_x`` after training: ``relaxed``,
            ``sample`` and ``argmax``, arrays ``[n_models]``.
    """

    model: DiscreteAutoencoder
    estimators: list[str]
    train_x: Tensor
    test_x: Tensor
    train_loss: np.ndarray
    taus: np.ndarray
    relaxed_codes: np.ndarray
    test: dict[str, np.ndarray] = field(default_factory=dict)

    def objective(self) -> np.ndarray:
        """Each model's own training objective on the TEST data, ``[n_models]``.

        The relaxed loss for models trained on relaxed codes (``gumbel_softmax``), the
        sampled-code loss for the others (the forward value of ``st_gumbel_softmax`` and of
        ``straight_through`` IS a sampled one-hot code; ``exact`` trains on its expectation).
        """
        return np.where(self.relaxed_codes, self.test["relaxed"], self.test["sample"])


class _Adam:
    """The update of ``torch.optim.Adam`` (defaults: betas 0.9/0.999, eps 1e-8), element-wise.

    Written out because ``torch.optim``'s first ``step()`` imports ``torch._dynamo``, which
    takes seconds: more than a whole training run here. ``tests/test_bottleneck.py`` checks it
    against ``torch.optim.Adam``.
    """

    def __init__(self, params: list[Tensor], lr: float, betas=(0.9, 0.999), eps=1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.param_groups = [{"params": params, "lr": lr}]  # what lib.training.fit reads
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, grads: Sequence[Tensor] | None = None) -> None:
        """One update from ``grads`` (default: each parameter's ``.grad``)."""
        grads = [p.grad for p in self.params] if grads is None else grads
        self.t += 1
        beta1, beta2 = self.betas
        correction1 = 1 - beta1**self.t
        correction2_sqrt = math.sqrt(1 - beta2**self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (v.sqrt() / correction2_sqrt).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / correction1)


def train_autoencoder(
    estimator: str | Sequence[str],
    tau: Temperature | Sequence[Temperature],
    *,
    n_steps: int = 300,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 0.03,
    n_codes: int = 4,
    hidden: int = 32,
    n_train: int = 1024,
    n_test: int = 2048,
    n_samples: int = 1,
    n_eval_samples: int = 8,
    device: torch.device | str | None = None,
) -> AutoencoderRun:
    r"""Train discrete-bottleneck autoencoders on :func:`circle_data`, one per estimator and tau.

    Each model's code is a :class:`lib.estimators.StochasticNode` (categorical, logits
    :math:`\ell(x)`) and its cost the squared error :math:`\lVert x - \hat x(z)\rVert^2` of
    decoding a code :math:`z`; :func:`lib.estimators.surrogate` with the model's estimator
    gives the loss whose gradient Adam follows (mean over the batch). Every step draws a
    mini-batch (with replacement) from the training set and ONE tensor of uniforms
    :math:`U` ``[n_samples, batch_size, n_codes]`` shared by all models: every sampled or
    relaxed code is computed from it (Gumbel noise :math:`G = -\log(-\log U)`). With the book's
    estimators:

    * ``gumbel_softmax`` (Approach 1): the relaxed code
      :math:`y = \mathrm{softmax}((\ell(x) + G)/\tau)` forward and backward;
    * ``st_gumbel_softmax`` (Approach 2): the exact one-hot sample
      ``one_hot(argmax(l + G))`` forward, the gradient of the relaxed :math:`y` backward;
    * ``exact``: :math:`\sum_k \mathrm{softmax}(\ell(x))_k \lVert x - C_k\rVert^2`, the
      expected loss of a sampled code summed over the codes (possible because K is small);
    * any other registered name (``straight_through``, ``reinforce``, ``reinforce_loo``, or
      one added with :func:`lib.estimators.register_estimator`) the same way. An estimator
      that draws through ``node.sample`` / ``node.relaxed`` uses the shared uniforms; one
      that draws other random numbers gets ``generator=None`` (PyTorch's global generator).

    The weights and the noise have the default dtype (``torch.get_default_dtype()``).

    Args:
        estimator: a registered estimator name (:func:`lib.estimators.estimator_names`), or
            one per model.
        tau: a temperature > 0 or a schedule ``step -> tau`` (e.g. from
            :func:`lib.schedules.exponential_anneal`), or one per model. Passed to the
            estimators that take a ``tau`` parameter; all use it for the relaxed test loss.
        n_steps: optimisation steps, >= 1.
        seed: seeds the data, the initial weights, the mini-batches and the noise.
        batch_size: points per step.
        lr: Adam's learning rate.
        n_codes: number of codes K.
        hidden: encoder width.
        n_train, n_test: sizes of the training and test sets.
        n_samples: codes drawn per point and step, >= 1 and at least what every estimator
            needs (2 for ``reinforce_loo``).
        n_eval_samples: Gumbel draws per test point for the relaxed test loss.
        device: where to train (None: the CPU). Every random number comes from one CPU
            generator seeded with ``seed`` (see :mod:`lib.rng`), so a GPU run starts from
            the same data, weights, mini-batches and noise as a CPU run.

    Returns:
        An :class:`AutoencoderRun`.

    Example:
        >>> run = train_autoencoder(["gumbel_softmax", "st_gumbel_softmax"], 1.0, n_steps=20)
        >>> run.train_loss.shape, sorted(run.test), run.relaxed_codes.tolist()
        ((20, 2), ['argmax', 'relaxed', 'sample'], [True, False])
    """
    return train_autoencoder_seeds(estimator, tau, [seed], n_steps=n_steps,
                                   batch_size=batch_size, lr=lr, n_codes=n_codes, hidden=hidden,
                                   n_train=n_train, n_test=n_test, n_samples=n_samples,
                                   n_eval_samples=n_eval_samples, device=device)[0]


def train_autoencoder_seeds(
    estimator: str | Sequence[str],
    tau: Temperature | Sequence[Temperature],
    seeds: Sequence[int],
    *,
    n_steps: int = 300,
    batch_size: int = 64,
    lr: float = 0.03,
    n_codes: int = 4,
    hidden: int = 32,
    n_train: int = 1024,
    n_test: int = 2048,
    n_samples: int = 1,
    n_eval_samples: int = 8,
    device: torch.device | str | None = None,
) -> list[AutoencoderRun]:
    r""":func:`train_autoencoder` for several seeds at once, stacked into one batched model.

    Run ``i`` is :func:`train_autoencoder` ``(estimator, tau, seed=seeds[i], ...)``: each seed
    has its own generator, which draws that seed's data, initial weights, mini-batches and
    noise in the same order as a single-seed call. Only the arithmetic is shared (one batched
    forward and backward pass per step for all seeds and models, one registry call per
    estimator), which makes many seeds cheap. Within a seed the models share the data and the
    noise (common random numbers), so settings can be compared seed by seed with paired
    differences.

    Args:
        estimator, tau: as for :func:`train_autoencoder`.
        seeds: one or more seeds (ints >= 0).
        n_steps, batch_size, lr, n_codes, hidden, n_train, n_test, n_samples, n_eval_samples,
            device: as for :func:`train_autoencoder`.

    Returns:
        A list of :class:`AutoencoderRun`, one per seed.

    Example:
        >>> runs = train_autoencoder_seeds("gumbel_softmax", [0.5, 1.0], [0, 1], n_steps=20)
        >>> len(runs), runs[1].test["argmax"].shape
        (2, (2,))
    """
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    estimators, taus = _check_estimators_and_taus(estimator, tau, n_samples)
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise ValueError(f"seeds must be a non-empty sequence of ints, got {seeds!r}")
    seeds = [check_int(s, f"seeds[{i}]", min_value=0) for i, s in enumerate(seeds)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra intra-op threads only add overhead
    try:
        return _train(estimators, taus, seeds=seeds, n_steps=n_steps, batch_size=batch_size,
                      lr=lr, n_codes=n_codes, hidden=hidden, n_train=n_train, n_test=n_test,
                      n_samples=n_samples, n_eval_samples=n_eval_samples, device=device)
    finally:
        torch.set_num_threads(threads)


def _train(estimators, taus, *, seeds, n_steps, batch_size, lr, n_codes, hidden, n_train,
           n_test, n_samples, n_eval_samples, device) -> list[AutoencoderRun]:
    n_steps = check_int(n_steps, "n_steps", min_value=1)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    lr = check_real(lr, "lr", gt=0.0)
    n_train = check_int(n_train, "n_train", min_value=1)
    n_test = check_int(n_test, "n_test", min_value=1)
    device = torch.device("cpu") if device is None else torch.device(device)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    train_xs = [circle_data(n_train, generator=g, device=device) for g in generators]
    test_xs = [circle_data(n_test, generator=g, device=device) for g in generators]
    parts = [DiscreteAutoencoder(len(estimators), n_codes=n_codes, hidden=hidden,
                                 generator=g).to(device) for g in generators]
    n_models, n_seeds = len(estimators), len(seeds)
    model = parts[0]
    if n_seeds > 1:  # one model of n_seeds * n_models slices, seed-major
        model = DiscreteAutoencoder(n_seeds * n_models, n_codes=n_codes, hidden=hidden,
                                    generator=torch.Generator()).to(device)  # overwritten below
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.cat([getattr(part, name) for part in parts]))
    params = list(model.parameters())
    dtype = model.w1.dtype
    adam = _Adam(params, lr)
    train_loss = np.zeros((n_steps, n_seeds * n_models))
    tau_history = np.zeros((n_steps + 1, n_models))
    relaxed_codes = {}

    def loss(step: int) -> Tensor:  # lib.training.fit counts steps from 1
        step -= 1
        tau_history[step] = _tau_values(taus, step)
        x, uniforms = [], []
        for g, train_x in zip(generators, train_xs):
            x.append(train_x[rng.randint(n_train, (batch_size,), generator=g, device=device)])
            uniforms.append(_uniform_open((n_samples, batch_size, n_codes), g, dtype, device))
        # each seed's batch and uniforms, shared by that seed's models (common random numbers)
        x = torch.stack(x).repeat_interleave(n_models, dim=0)  # [S * N, B, 2]
        uniforms = torch.stack(uniforms, dim=1).repeat_interleave(n_models, dim=1)
        losses, cost, samples = _losses(model, estimators * n_seeds, x,
                                        list(tau_history[step]) * n_seeds, uniforms)
        if step == 0:  # codes that are not one-hot: the estimator trains on relaxed codes
            relaxed_codes.update({name: bool(((z != 0) & (z != 1)).any())
                                  for name, z in samples.items()})
        train_loss[step] = cost.double().cpu().numpy()
        # the models do not interact: each parameter slice gets its own model's gradient
        return losses.sum()

    fit(adam, loss, n_steps, progress=False)  # Adam steps and snap_ (the same weights anywhere)
    tau_history[n_steps] = _tau_values(taus, n_steps)
    relaxed = np.array([relaxed_codes[name] for name in estimators])
    runs = []
    for i, (part, g) in enumerate(zip(parts, generators)):
        if n_seeds > 1:
            with torch.no_grad():
                for name, p in part.named_parameters():
                    p.copy_(getattr(model, name)[i * n_models:(i + 1) * n_models])
        test = evaluate_autoencoder(part, test_xs[i], list(tau_history[n_steps]),
                                    n_samples=n_eval_samples, generator=g)
        runs.append(AutoencoderRun(part, list(estimators), train_xs[i], test_xs[i],
                                   train_loss[:, i * n_models:(i + 1) * n_models].copy(),
                                   tau_history.copy(), relaxed.copy(), test))
    return runs
