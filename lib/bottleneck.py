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
* training (:func:`train_autoencoder`): several models side by side, each with its own method
  (``"relaxed"``: Gumbel-softmax samples, Approach 1; ``"straight_through"``: one-hot forward,
  relaxed backward, Approach 2; ``"exact"``: the expectation over the ``K`` codes summed
  exactly) and its own temperature (a number or a schedule ``step -> tau``);
* many seeds at once (:func:`train_autoencoder_seeds`): one batched model for several seeds,
  each seed with its own data, weights, batches and noise, as in a single-seed call;
* evaluation (:func:`evaluate_autoencoder`): the relaxed loss, the expected loss with a SAMPLED
  code (computed exactly by summing over the codes) and the loss with the ARGMAX code.

All models of one call start from the same initial weights and see the same mini-batches and
the same Gumbel noise (common random numbers), so their differences come from the method and
the temperature alone, and a model's result does not depend on which other models share the
call.

Reference:
    E. Jang, S. Gu, B. Poole (2017), *Categorical Reparameterization with Gumbel-Softmax*, ICLR.
    C. J. Maddison, A. Mnih, Y. W. Teh (2017), *The Concrete Distribution*, ICLR.
"""

from __future__ import annotations

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
from lib.estimators import straight_through
from lib.gumbel import sample_gumbel
from lib.training import snap_

__all__ = [
    "METHODS",
    "AutoencoderRun",
    "DiscreteAutoencoder",
    "circle_data",
    "evaluate_autoencoder",
    "optimal_circle_loss",
    "train_autoencoder",
    "train_autoencoder_seeds",
]

#: The training methods of :func:`train_autoencoder`.
METHODS = ("relaxed", "straight_through", "exact")

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


def _check_methods_and_taus(
    method: str | Sequence[str], tau: Temperature | Sequence[Temperature]
) -> tuple[list[str], list[Temperature]]:
    methods = [method] if isinstance(method, str) else list(method)
    single_tau = callable(tau) or not isinstance(tau, Sequence)
    taus = [tau] if single_tau else list(tau)
    if not methods or not taus:
        raise ValueError("method and tau must not be empty")
    if len(methods) == 1 and len(taus) > 1:
        methods = methods * len(taus)
    if len(taus) == 1 and len(methods) > 1:
        taus = taus * len(methods)
    if len(methods) != len(taus):
        raise ValueError(
            f"method and tau must have the same length (one per model) or be single values, "
            f"got {len(methods)} methods and {len(taus)} temperatures"
        )
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {m!r}")
    for t in taus:
        if not callable(t):
            check_tau(t)
    return methods, taus


def _tau_values(taus: Sequence[Temperature], step: int) -> list[float]:
    values = []
    for t in taus:
        value = t(step) if callable(t) else t
        values.append(check_tau(value, "tau (the value of the schedule at step "
                                f"{step})" if callable(t) else "tau"))
    return values


def _losses(
    model: DiscreteAutoencoder, methods: Sequence[str], x: Tensor, tau: Tensor, noise: Tensor
) -> dict[str, Tensor]:
    """Mean loss ``[n_models]`` of each method in ``methods`` on one batch (noise shared)."""
    logits = model.encode(x)  # [N, B, K]
    xs = model._batched(x, "x", model.data_dim)
    out = {}
    if "relaxed" in methods or "straight_through" in methods:
        perturbed = logits + noise  # noise [B, K] broadcasts: common random numbers
        soft = torch.softmax(perturbed / tau, dim=-1)
        if "relaxed" in methods:
            out["relaxed"] = ((xs - model.decode(soft)) ** 2).sum(-1).mean(-1)
        if "straight_through" in methods:
            index = perturbed.detach().argmax(dim=-1, keepdim=True)
            hard = torch.zeros_like(soft).scatter_(-1, index, 1.0)
            code = straight_through(hard, soft)
            out["straight_through"] = ((xs - model.decode(code)) ** 2).sum(-1).mean(-1)
    if "exact" in methods:
        probs = torch.softmax(logits, dim=-1)
        out["exact"] = (probs * model.squared_errors(x)).sum(-1).mean(-1)
    return out


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
      (x_i) + G)/\tau))\rVert^2`, by Monte Carlo over ``n_samples`` Gumbel draws per point:
      what Approach 1 trains on;
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
        relaxed = torch.zeros(model.n_models, dtype=torch.float64, device=device)
        for _ in range(n_samples):
            noise = sample_gumbel(logits.shape[1:], generator=generator, dtype=logits.dtype,
                                  device=device)
            soft = torch.softmax((logits + noise) / tau_t, dim=-1)
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
        model: the trained :class:`DiscreteAutoencoder` (one model per method/temperature).
        methods: the method of each model.
        train_x, test_x: the training data ``[n_train, 2]`` and the test data ``[n_test, 2]``.
        train_loss: ``[n_steps, n_models]``, each model's training objective on its
            mini-batch at every step (relaxed loss for ``relaxed``, the loss of the one-hot
            sample for ``straight_through``, the exact expectation for ``exact``).
        taus: ``[n_steps + 1, n_models]``, the temperature used at every step; the last row is
            the temperature after training (used for the relaxed test loss).
        test: :func:`evaluate_autoencoder` on ``test_x`` after training: ``relaxed``,
            ``sample`` and ``argmax``, arrays ``[n_models]``.
    """

    model: DiscreteAutoencoder
    methods: list[str]
    train_x: Tensor
    test_x: Tensor
    train_loss: np.ndarray
    taus: np.ndarray
    test: dict[str, np.ndarray] = field(default_factory=dict)

    def objective(self) -> np.ndarray:
        """Each model's own training objective on the TEST data, ``[n_models]``.

        The relaxed loss for ``relaxed`` models, the sampled-code loss for the others (the
        forward value of straight-through IS a sampled one-hot code).
        """
        return np.where(np.array(self.methods) == "relaxed", self.test["relaxed"],
                        self.test["sample"])


class _Adam:
    """The update of ``torch.optim.Adam`` (defaults: betas 0.9/0.999, eps 1e-8), element-wise.

    Written out because ``torch.optim``'s first ``step()`` imports ``torch._dynamo``, which
    takes seconds: more than a whole training run here. ``tests/test_bottleneck.py`` checks it
    against ``torch.optim.Adam``.
    """

    def __init__(self, params: list[Tensor], lr: float, betas=(0.9, 0.999), eps=1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self, grads: Sequence[Tensor]) -> None:
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
    method: str | Sequence[str],
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
    n_eval_samples: int = 8,
    device: torch.device | str | None = None,
) -> AutoencoderRun:
    r"""Train discrete-bottleneck autoencoders on :func:`circle_data`, one per method/temperature.

    Every step draws a mini-batch (with replacement) from the training set and ONE Gumbel
    noise tensor :math:`G` ``[batch_size, n_codes]`` shared by all models, and minimises with
    Adam the mean over the batch of

    * ``relaxed`` (Approach 1): :math:`\lVert x - \hat x(y)\rVert^2` with the relaxed code
      :math:`y = \mathrm{softmax}((\ell(x) + G)/\tau)`;
    * ``straight_through`` (Approach 2): the same with the code
      ``straight_through(one_hot(argmax(l + G)), y)``: the decoder sees the exact one-hot
      sample, the gradient flows through the relaxed :math:`y`;
    * ``exact``: :math:`\sum_k \mathrm{softmax}(\ell(x))_k \lVert x - C_k\rVert^2`, the
      expected loss of a sampled code summed over the codes (possible because K is small).

    The weights and the noise have the default dtype (``torch.get_default_dtype()``).

    Args:
        method: one of :data:`METHODS`, or one per model.
        tau: a temperature > 0 or a schedule ``step -> tau`` (e.g. from
            :func:`lib.schedules.exponential_anneal`), or one per model. Unused by ``exact``.
        n_steps: optimisation steps, >= 1.
        seed: seeds the data, the initial weights, the mini-batches and the noise.
        batch_size: points per step.
        lr: Adam's learning rate.
        n_codes: number of codes K.
        hidden: encoder width.
        n_train, n_test: sizes of the training and test sets.
        n_eval_samples: Gumbel draws per test point for the relaxed test loss.
        device: where to train (None: the CPU). Every random number comes from one CPU
            generator seeded with ``seed`` (see :mod:`lib.rng`), so a GPU run starts from
            the same data, weights, mini-batches and noise as a CPU run.

    Returns:
        An :class:`AutoencoderRun`.

    Example:
        >>> run = train_autoencoder(["relaxed", "straight_through"], 1.0, n_steps=20)
        >>> run.train_loss.shape, sorted(run.test)
        ((20, 2), ['argmax', 'relaxed', 'sample'])
    """
    return train_autoencoder_seeds(method, tau, [seed], n_steps=n_steps, batch_size=batch_size,
                                   lr=lr, n_codes=n_codes, hidden=hidden, n_train=n_train,
                                   n_test=n_test, n_eval_samples=n_eval_samples,
                                   device=device)[0]


def train_autoencoder_seeds(
    method: str | Sequence[str],
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
    n_eval_samples: int = 8,
    device: torch.device | str | None = None,
) -> list[AutoencoderRun]:
    r""":func:`train_autoencoder` for several seeds at once, stacked into one batched model.

    Run ``i`` is :func:`train_autoencoder` ``(method, tau, seed=seeds[i], ...)``: each seed has
    its own generator, which draws that seed's data, initial weights, mini-batches and noise in
    the same order as a single-seed call. Only the arithmetic is shared (one batched forward
    and backward pass per step for all seeds and models), which makes many seeds cheap. Within
    a seed the models share the data and the noise (common random numbers), so settings can be
    compared seed by seed with paired differences.

    Args:
        method, tau: as for :func:`train_autoencoder`.
        seeds: one or more seeds (ints >= 0).
        n_steps, batch_size, lr, n_codes, hidden, n_train, n_test, n_eval_samples, device: as
            for :func:`train_autoencoder`.

    Returns:
        A list of :class:`AutoencoderRun`, one per seed.

    Example:
        >>> runs = train_autoencoder_seeds("relaxed", [0.5, 1.0], [0, 1], n_steps=20)
        >>> len(runs), runs[1].test["argmax"].shape
        (2, (2,))
    """
    methods, taus = _check_methods_and_taus(method, tau)
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise ValueError(f"seeds must be a non-empty sequence of ints, got {seeds!r}")
    seeds = [check_int(s, f"seeds[{i}]", min_value=0) for i, s in enumerate(seeds)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra intra-op threads only add overhead
    try:
        return _train(methods, taus, seeds=seeds, n_steps=n_steps, batch_size=batch_size,
                      lr=lr, n_codes=n_codes, hidden=hidden, n_train=n_train, n_test=n_test,
                      n_eval_samples=n_eval_samples, device=device)
    finally:
        torch.set_num_threads(threads)


def _train(methods, taus, *, seeds, n_steps, batch_size, lr, n_codes, hidden, n_train, n_test,
           n_eval_samples, device) -> list[AutoencoderRun]:
    n_steps = check_int(n_steps, "n_steps", min_value=1)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    lr = check_real(lr, "lr", gt=0.0)
    n_train = check_int(n_train, "n_train", min_value=1)
    n_test = check_int(n_test, "n_test", min_value=1)
    device = torch.device("cpu") if device is None else torch.device(device)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    train_xs = [circle_data(n_train, generator=g, device=device) for g in generators]
    test_xs = [circle_data(n_test, generator=g, device=device) for g in generators]
    parts = [DiscreteAutoencoder(len(methods), n_codes=n_codes, hidden=hidden,
                                 generator=g).to(device) for g in generators]
    n_models, n_seeds = len(methods), len(seeds)
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
    present = [m for m in METHODS if m in methods]
    pick = torch.tensor([[present.index(m)] for m in methods] * n_seeds,
                        device=device)  # [S * N, 1]
    train_loss = np.zeros((n_steps, n_seeds * n_models))
    tau_history = np.zeros((n_steps + 1, n_models))
    for step in range(n_steps):
        tau_history[step] = _tau_values(taus, step)
        tau_t = torch.tensor(tau_history[step], dtype=dtype, device=device)
        tau_t = tau_t.repeat(n_seeds).view(-1, 1, 1)
        x, noise = [], []
        for g, train_x in zip(generators, train_xs):
            x.append(train_x[rng.randint(n_train, (batch_size,), generator=g, device=device)])
            noise.append(sample_gumbel((batch_size, n_codes), generator=g, dtype=dtype,
                                       device=device))
        # each seed's batch and noise, shared by that seed's models (common random numbers)
        x = torch.stack(x).repeat_interleave(n_models, dim=0)  # [S * N, B, 2]
        noise = torch.stack(noise).repeat_interleave(n_models, dim=0)  # [S * N, B, K]
        losses = _losses(model, present, x, tau_t, noise)
        per_model = torch.stack([losses[m] for m in present], dim=1).gather(1, pick).squeeze(1)
        # the models do not interact: each parameter slice gets its own model's gradient
        adam.step(torch.autograd.grad(per_model.sum(), params))
        snap_(params)  # the same weights on every CPU (lib.training)
        train_loss[step] = per_model.detach().double().cpu().numpy()
    tau_history[n_steps] = _tau_values(taus, n_steps)
    runs = []
    for i, (part, g) in enumerate(zip(parts, generators)):
        if n_seeds > 1:
            with torch.no_grad():
                for name, p in part.named_parameters():
                    p.copy_(getattr(model, name)[i * n_models:(i + 1) * n_models])
        test = evaluate_autoencoder(part, test_xs[i], list(tau_history[n_steps]),
                                    n_samples=n_eval_samples, generator=g)
        runs.append(AutoencoderRun(part, methods, train_xs[i], test_xs[i],
                                   train_loss[:, i * n_models:(i + 1) * n_models].copy(),
                                   tau_history.copy(), test))
    return runs
