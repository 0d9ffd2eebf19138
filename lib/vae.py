r"""A variational autoencoder with categorical latent variables, on binarised 8x8 digits.

The model of Jang, Gu and Poole (2017, section 4.2), at laptop scale:

* data: scikit-learn's bundled 8x8 handwritten digits (1,797 images, no download), binarised
  with a fixed threshold (:func:`load_binarized_digits`);
* latent code: ``n_latent`` independent categorical variables with ``n_categories`` classes each,
  one-hot encoded, with a uniform prior :math:`p(z) = \prod_n \mathrm{Uniform}(K)`;
* encoder :math:`q_\phi(z \mid x) = \prod_n \mathrm{Categorical}(\mathrm{softmax}(\ell_n(x)))`,
  decoder :math:`p_\theta(x \mid z) = \prod_{d=1}^{D} \mathrm{Bernoulli}(\sigma(a_d(z)))` over
  the :math:`D` pixels (64 for the digits; :class:`CategoricalVAE`);
* objective: the evidence lower bound, with the KL term in closed form
  (:func:`categorical_kl_uniform`),

  .. math:: \mathrm{ELBO}(x) = \mathbb{E}_{q_\phi(z\mid x)}[\log p_\theta(x \mid z)]
            - \sum_{n} \mathrm{KL}\big(q_\phi(z_n \mid x)\,\|\,\mathrm{Uniform}(K)\big)
            \le \log p_\theta(x);

* gradient estimators for the expectation (:func:`vae_loss`): every estimator of the book's
  registry (:mod:`lib.estimators`), by name: the relaxed Gumbel-softmax, straight-through
  Gumbel-softmax, plain straight-through, REINFORCE with a leave-one-out baseline, exact
  enumeration for tiny codes, and any estimator registered later; or a sampling step written
  as a function (:func:`sampler_estimator`);
* evaluation: the negative ELBO in nats with DISCRETE one-hot samples :math:`z \sim q_\phi`
  (:func:`discrete_negative_elbo`), the same yardstick for every estimator, and the tighter
  importance-weighted bound on the same one-hot codes (:func:`importance_log_weights`,
  :func:`negative_iwae`);
* training: :func:`train_vae`, with a fixed temperature or a schedule such as
  :func:`lib.schedules.jang_anneal` (Jang et al.'s exponential annealing rescaled to a short
  run).

Bugs of copied ports that this module avoids on purpose: a ReLU on the encoder's logits (logits
are unconstrained reals), non-binarised grey-level targets for a Bernoulli decoder, a temperature
multiplied by a decay factor every epoch (it compounds; here the temperature is a function of the
global step), and a KL with the wrong sign or ``-log K`` in place of ``+log K``.

Reference:
    E. Jang, S. Gu, B. Poole (2017), *Categorical Reparameterization with Gumbel-Softmax*, ICLR.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lib import rng
from lib._validation import (
    check_bool,
    check_callable,
    check_generator,
    check_int,
    check_logits,
    check_real,
    check_tau,
    check_tensor,
    type_name,
)
from lib.estimators import (
    EstimatorSpec,
    StochasticNode,
    Surrogate,
    get_estimator_spec,
    surrogate,
)
from lib.training import fit

__all__ = [
    "MAX_CODES",
    "N_PIXELS",
    "CategoricalVAE",
    "DigitsData",
    "TrainHistory",
    "VAELoss",
    "VAEModel",
    "bernoulli_log_likelihood",
    "categorical_kl_uniform",
    "all_codes",
    "discrete_negative_elbo",
    "exact_negative_elbo",
    "importance_log_weights",
    "load_binarized_digits",
    "negative_iwae",
    "plot_digit_grid",
    "sampler_estimator",
    "train_vae",
    "vae_loss",
]

#: Pixels per image of the digits (8 x 8): the default ``n_pixels`` of :class:`CategoricalVAE`.
N_PIXELS = 64


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigitsData:
    """Binarised 8x8 digits split into a training and a test set.

    Attributes:
        train: tensor ``[n_train, 64]`` of 0./1. pixels (row-major 8x8 images), in PyTorch's
            default floating dtype at load time (float64 after
            ``torch.set_default_dtype(torch.float64)``, so the images match the model's weights).
        test: tensor ``[n_test, 64]``, the same dtype.
        train_labels: int64 tensor ``[n_train]`` of digit classes 0-9 (not used by the VAE).
        test_labels: int64 tensor ``[n_test]``.
        threshold: a pixel is 1 when its grey level (0-16) is ``>= threshold``.
        seed: the seed of the split.
    """

    train: Tensor
    test: Tensor
    train_labels: Tensor
    test_labels: Tensor
    threshold: int
    seed: int


def load_binarized_digits(
    *, threshold: int = 8, test_size: int = 360, seed: int = 0
) -> DigitsData:
    r"""Load scikit-learn's 8x8 digits, binarise them and split them into train and test.

    The 1,797 images of ``sklearn.datasets.load_digits`` (bundled with scikit-learn, no
    download) have grey levels 0-16. A pixel becomes 1 when its level is ``>= threshold``
    (default 8, about half of the maximum), 0 otherwise, so a Bernoulli likelihood is the right
    model for it. The split is a random permutation drawn by ``numpy.random.default_rng(seed)``:
    the last ``test_size`` images of the permutation form the test set.

    Args:
        threshold: grey level in ``[1, 16]`` at and above which a pixel is 1.
        test_size: number of test images, in ``[1, 1796]``.
        seed: seed of the permutation, a non-negative int.

    Returns:
        A :class:`DigitsData` (default: 1,437 training and 360 test images).

    Example:
        >>> data = load_binarized_digits()
        >>> tuple(data.train.shape), tuple(data.test.shape)
        ((1437, 64), (360, 64))

    Reference:
        E. Alpaydin, C. Kaynak (1998), *Optical Recognition of Handwritten Digits*, UCI ML
        Repository (the data set behind ``load_digits``).
    """
    threshold = check_int(threshold, "threshold", min_value=1, max_value=16)
    seed = check_int(seed, "seed", min_value=0, max_value=2**32 - 1)
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - scikit-learn is in the test extras
        raise ImportError(
            "load_binarized_digits needs scikit-learn: pip install scikit-learn"
        ) from err
    digits = load_digits()
    n_images = digits.data.shape[0]
    test_size = check_int(test_size, "test_size", min_value=1, max_value=n_images - 1)
    pixels = torch.as_tensor(digits.data >= threshold, dtype=torch.get_default_dtype())
    labels = torch.as_tensor(digits.target, dtype=torch.int64)
    order = torch.as_tensor(np.random.default_rng(seed).permutation(n_images))
    train_idx, test_idx = order[: n_images - test_size], order[n_images - test_size :]
    return DigitsData(
        train=pixels[train_idx],
        test=pixels[test_idx],
        train_labels=labels[train_idx],
        test_labels=labels[test_idx],
        threshold=threshold,
        seed=seed,
    )


# --------------------------------------------------------------------------------------------
# The two terms of the ELBO
# --------------------------------------------------------------------------------------------


def categorical_kl_uniform(logits: Tensor, dim: int = -1) -> Tensor:
    r"""KL divergence from ``Categorical(softmax(logits))`` to the uniform distribution.

    For :math:`q = \mathrm{softmax}(\ell)` over :math:`K` categories,

    .. math:: \mathrm{KL}(q \,\|\, \mathrm{Uniform}(K))
              = \sum_k q_k \big(\log q_k - \log\tfrac1K\big)
              = \sum_k q_k \log q_k + \log K \;\in\; [0, \log K],

    zero exactly when :math:`q` is uniform and :math:`\log K` when :math:`q` is one-hot. The
    log-probabilities come from ``log_softmax`` (never ``log(softmax)``), so no ``log(0)`` occurs;
    a category masked with ``-inf`` contributes :math:`0 \log 0 = 0`.

    Two bugs of copied code to avoid: the sign (``KL = sum q (log(1/K) - log q)`` is
    :math:`\le 0`) and ``- log K`` in place of ``+ log K`` (the result is then negative too).

    Args:
        logits: floating tensor ``[..., K]`` of unnormalised log-probabilities (categories
            along ``dim``).
        dim: the category dimension.

    Returns:
        Tensor ``[...]`` (``dim`` removed) of KL divergences in nats, one per variable. Sum over
        the latent variables yourself.

    Example:
        >>> categorical_kl_uniform(torch.zeros(3, 10, dtype=torch.float64)).abs().max() < 1e-12
        tensor(True)
        >>> round(categorical_kl_uniform(torch.tensor([50.0, 0.0])).item(), 4)  # ~log 2
        0.6931

    Reference:
        Jang, Gu, Poole (2017), ICLR; T. Cover, J. Thomas, *Elements of Information Theory*,
        eq. 2.26.
    """
    check_logits(logits, dim=dim)
    return _kl_uniform(logits, dim)


def _kl_uniform(logits: Tensor, dim: int = -1) -> Tensor:
    """:func:`categorical_kl_uniform` without the argument checks (for internal callers)."""
    log_q = torch.log_softmax(logits, dim=dim)
    # 0 * log 0 = 0 for masked categories; the safe log keeps the backward pass free of NaN.
    masked = torch.isneginf(log_q)
    safe_log_q = torch.where(masked, torch.zeros_like(log_q), log_q)
    neg_entropy = (safe_log_q.exp().masked_fill(masked, 0.0) * safe_log_q).sum(dim=dim)
    return neg_entropy + math.log(logits.shape[dim])


def bernoulli_log_likelihood(pixel_logits: Tensor, x: Tensor) -> Tensor:
    r"""Log-likelihood of binary images under independent Bernoulli pixels, summed over pixels.

    .. math:: \log p(x \mid a) = \sum_{d} \big[x_d \log\sigma(a_d)
              + (1 - x_d)\log\sigma(-a_d)\big]
              = -\sum_d \mathrm{BCEWithLogits}(a_d, x_d),

    computed with ``binary_cross_entropy_with_logits`` (stable for any finite logits; the pixel
    probabilities are never formed, so they cannot round to exactly 0 or 1).

    Args:
        pixel_logits: floating tensor ``[..., D]`` (``D = 64`` for the digits), the decoder's
            output.
        x: tensor of 0./1. pixels ``[..., D]`` whose leading dimensions broadcast with
            ``pixel_logits``'s (e.g. ``x`` of ``[B, D]`` against logits of ``[S, B, D]``).

    Returns:
        Tensor of the broadcast leading shape ``[...]``, in nats (always <= 0).

    Example:
        >>> round(bernoulli_log_likelihood(torch.zeros(64), torch.ones(64)).item(), 4)  # 64 log 1/2
        -44.3614
    """
    check_tensor(pixel_logits, "pixel_logits")
    check_tensor(x, "x")
    if pixel_logits.shape[-1] != x.shape[-1]:
        raise ValueError(
            f"pixel_logits and x must have the same number of pixels in the last dimension, "
            f"got {tuple(pixel_logits.shape)} and {tuple(x.shape)}"
        )
    pixel_logits, x = torch.broadcast_tensors(pixel_logits, x.to(pixel_logits.dtype))
    bce = F.binary_cross_entropy_with_logits(pixel_logits, x, reduction="none")
    return -bce.sum(dim=-1)


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


class _StackedLinear(nn.Module):
    """``n_models`` independent ``nn.Linear`` layers applied in one batched matrix product.

    Maps ``[..., n_models, B, in_features]`` to ``[..., n_models, B, out_features]``: model ``m``
    uses its own weight ``weight[m]`` and bias ``bias[m]``. An input without the model dimension
    (``[B, in_features]``) is fed to every model. Initialised like ``nn.Linear``: every entry
    ``~ Uniform(-1/sqrt(in_features), 1/sqrt(in_features))``.
    """

    def __init__(self, n_models: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(
            torch.empty(n_models, in_features, out_features).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(n_models, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        n_models = self.weight.shape[0]
        if x.dim() < 3 or x.shape[-3] != n_models:  # the same inputs for every model
            return torch.matmul(x, self.weight) + self.bias
        # [..., M, B, in] -> [M, (...) * B, in]: one batched product, and a backward pass
        # without the broadcasting reductions of matmul over the leading dimensions
        lead = x.shape[:-3]
        rows = x.movedim(-3, 0).reshape(n_models, -1, x.shape[-1])
        out = torch.baddbmm(self.bias, rows, self.weight)  # [M, (...) * B, out]
        return out.reshape(n_models, *lead, x.shape[-2], -1).movedim(0, -3)


@runtime_checkable
class VAEModel(Protocol):
    r"""What :func:`train_vae`, :func:`vae_loss` and the bounds need of a model (a protocol).

    Any ``nn.Module`` with these members works; :class:`CategoricalVAE` is the book's.

    * ``encode(x)``: images ``[(M,) B, D]`` -> logits ``[(M,) B, N, K]``;
    * ``decode(z)``: codes ``[..., (M,) B, N, K]`` (one-hot or relaxed) -> pixel logits
      ``[..., (M,) B, D]`` (Bernoulli);
    * ``n_pixels`` (D), ``n_latent`` (N), ``n_categories`` (K): ints;
    * ``n_models``: None for one model, or the number M of stacked independent models.
    """

    n_pixels: int
    n_latent: int
    n_categories: int
    n_models: int | None

    def encode(self, x: Tensor) -> Tensor: ...

    def decode(self, z: Tensor) -> Tensor: ...


def _check_vae_model(model: Any) -> None:
    """Raise a TypeError naming what ``model`` lacks of the :class:`VAEModel` protocol."""
    missing = [name for name in ("encode", "decode", "n_pixels", "n_latent", "n_categories",
                                 "n_models") if not hasattr(model, name)]
    if not isinstance(model, nn.Module) or missing:
        lacks = f"; it lacks {', '.join(missing)}" if missing else ""
        raise TypeError(
            f"model must be an nn.Module with the VAEModel members (encode, decode, n_pixels, "
            f"n_latent, n_categories, n_models), such as a CategoricalVAE; got "
            f"{type_name(model)}{lacks}")


class CategoricalVAE(nn.Module):
    r"""Encoder and decoder of a VAE whose code is ``n_latent`` one-hot categorical variables.

    * encoder: ``n_pixels -> n_hidden -> ReLU -> n_latent * n_categories`` logits. The last
      layer has NO activation: logits are unconstrained reals (a ReLU there, as in some ports,
      forbids any category from being less likely than the one with logit 0).
    * decoder: ``n_latent * n_categories -> n_hidden -> ReLU -> n_pixels`` pixel logits
      (Bernoulli).

    Jang et al. (2017) used 20 variables x 10 classes on 28x28 MNIST, and their notebook two
    hidden layers of 512 and 256 units; the defaults here (8 x 10, one hidden layer of 128
    units) suit 8x8 digits and a CPU.

    **Several independent models at once.** With ``n_models=M`` the module holds ``M``
    independent VAEs (their weights stacked along a first dimension) and every tensor gets a
    model dimension before the batch dimension: images ``[M, B, D]`` (or ``[B, D]``, the same
    images for every model), logits ``[M, B, N, K]``, codes ``[S, M, B, N, K]``. On a CPU,
    where small layers cost mostly fixed overhead, training three seeds this way takes little
    more time than training one. The models share nothing: Adam's update is element-wise, and
    :func:`vae_loss` sums the models' losses, so each model gets exactly its own gradient.

    Args:
        n_latent: number of categorical latent variables N.
        n_categories: number of classes K of each variable (K >= 2).
        n_hidden: width of the hidden layer of the encoder and of the decoder.
        n_models: None for one ordinary model, or the number M of stacked independent models.
        n_pixels: number of pixels D of an image (the images are flat vectors ``[..., D]``);
            64 for the 8x8 digits.

    Example:
        >>> model = CategoricalVAE(n_latent=8, n_categories=10)
        >>> model.encode(torch.zeros(5, 64)).shape
        torch.Size([5, 8, 10])
        >>> model.decode(torch.zeros(5, 8, 10)).shape
        torch.Size([5, 64])
        >>> CategoricalVAE(n_models=3).encode(torch.zeros(5, 64)).shape
        torch.Size([3, 5, 8, 10])
        >>> CategoricalVAE(n_pixels=784).decode(torch.zeros(5, 8, 10)).shape  # 28x28 images
        torch.Size([5, 784])
    """

    def __init__(
        self,
        n_latent: int = 8,
        n_categories: int = 10,
        n_hidden: int = 128,
        *,
        n_models: int | None = None,
        n_pixels: int = N_PIXELS,
    ) -> None:
        super().__init__()
        self.n_latent = check_int(n_latent, "n_latent", min_value=1)
        self.n_categories = check_int(n_categories, "n_categories", min_value=2)
        self.n_hidden = check_int(n_hidden, "n_hidden", min_value=1)
        self.n_pixels = check_int(n_pixels, "n_pixels", min_value=1)
        if n_models is not None:
            n_models = check_int(n_models, "n_models", min_value=1)
        self.n_models = n_models
        code_size = self.n_latent * self.n_categories

        def linear(n_in: int, n_out: int) -> nn.Module:
            if n_models is None:
                return nn.Linear(n_in, n_out)
            return _StackedLinear(n_models, n_in, n_out)

        self.encoder = nn.Sequential(
            linear(self.n_pixels, n_hidden), nn.ReLU(), linear(n_hidden, code_size)
        )
        self.decoder = nn.Sequential(
            linear(code_size, n_hidden), nn.ReLU(), linear(n_hidden, self.n_pixels)
        )

    def _check_stacked(self, t: Tensor, name: str, min_dim: int) -> None:
        if self.n_models is not None and t.dim() < min_dim:
            raise ValueError(
                f"with n_models={self.n_models}, {name} needs a batch dimension (at least "
                f"{min_dim} dimensions), got shape {tuple(t.shape)}; use {name}.unsqueeze(0)"
            )

    def encode(self, x: Tensor) -> Tensor:
        """Logits of q(z | x): ``x [..., n_pixels]`` -> ``[..., n_latent, n_categories]``."""
        check_tensor(x, "x")
        if x.dim() == 0 or x.shape[-1] != self.n_pixels:
            raise ValueError(f"x must have {self.n_pixels} pixels in its last dimension, got "
                             f"shape {tuple(x.shape)}")
        self._check_stacked(x, "x", 2)
        return self.encoder(x).unflatten(-1, (self.n_latent, self.n_categories))

    def decode(self, z: Tensor) -> Tensor:
        """Pixel logits of p(x | z): ``z [..., n_latent, n_categories]`` -> ``[..., n_pixels]``."""
        check_tensor(z, "z")
        if tuple(z.shape[-2:]) != (self.n_latent, self.n_categories):
            raise ValueError(
                f"z must end in ({self.n_latent}, {self.n_categories}) (one-hot or relaxed "
                f"codes), got shape {tuple(z.shape)}"
            )
        self._check_stacked(z, "z", 3)
        return self.decoder(z.flatten(-2))

    @torch.no_grad()
    def sample_prior(
        self, n_samples: int, *, generator: torch.Generator | None = None
    ) -> Tensor:
        r"""Decode codes drawn from the uniform prior; return the pixel PROBABILITIES.

        Each of the ``n_latent`` variables gets an independent uniform class; the result is
        :math:`\sigma(a(z))`, the mean image of :math:`p(x \mid z)` (not a binary draw).

        Args:
            n_samples: number of codes.
            generator: optional ``torch.Generator`` on the CPU or on the model's device.

        Returns:
            Tensor ``[n_samples, n_pixels]`` with values in (0, 1) (``[n_models, n_samples,
            n_pixels]`` for stacked models, every model decoding the same codes).
        """
        n_samples = check_int(n_samples, "n_samples", min_value=1)
        weight = next(self.parameters())
        check_generator(generator, like=weight)
        index = rng.randint(
            self.n_categories, (n_samples, self.n_latent), generator=generator,
            device=weight.device,
        )
        z = F.one_hot(index, self.n_categories).to(weight.dtype)
        return torch.sigmoid(self.decode(z))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Pixel probabilities of p(x | z) at the most probable code z = argmax q(z | x)."""
        logits = self.encode(x)
        z = F.one_hot(logits.argmax(-1), self.n_categories).to(logits.dtype)
        return torch.sigmoid(self.decode(z))


# --------------------------------------------------------------------------------------------
# Estimators: the book's registry (lib.estimators), and sampler functions
# --------------------------------------------------------------------------------------------


#: A pathwise estimator written as one sampling step (the exercises' API):
#: ``sampler(logits [S, *batch, N, K], tau, generator) -> z`` of the same shape.
Sampler = Callable[[Tensor, float, "torch.Generator | None"], Tensor]


def _estimator_name(estimator: str | Sampler) -> str:
    return estimator if isinstance(estimator, str) else getattr(estimator, "__name__", "custom")


def _estimator_spec(estimator: object) -> EstimatorSpec | None:
    """The registry's entry for a name (its errors list the known names); None for a sampler."""
    if isinstance(estimator, str):
        return get_estimator_spec(estimator)
    if callable(estimator):
        return None
    raise TypeError(f"estimator must be a registered name (lib.estimators.estimator_names()) or "
                    f"a sampler function, got {type_name(estimator)}")


def sampler_estimator(sampler: Sampler) -> Callable[..., Surrogate]:
    r"""Turn a sampling step into a pathwise estimator of the registry's form.

    This is the adapter behind the sampler functions that :func:`vae_loss` and :func:`train_vae`
    accept in place of an estimator's name (exercise 10 plugs its own straight-through
    Gumbel-softmax step in this way). ``sampler(logits, tau, generator)`` receives the logits
    already expanded to ``[n_samples, *logits.shape]`` and must return codes ``z`` of that
    shape whose gradient is the estimator's (for example ``hard + (soft - soft.detach())``);
    draw its noise with :mod:`lib.rng` from ``generator`` to follow the book's convention.

    The returned function ``fn(node, cost, n_samples, generator, tau=1.0) -> Surrogate`` calls
    the sampler on ``node.logits``, evaluates ``cost`` at the codes and averages over the
    samples, as the registry's pathwise estimators do. To use the sampler everywhere the book
    takes an estimator's name, register it:
    ``register_estimator("mine", unbiased=False, params={"tau": 1.0})(sampler_estimator(f))``.

    Args:
        sampler: a function ``(logits [S, ..., K], tau, generator) -> z [S, ..., K]``.

    Returns:
        A function ``(node, cost, n_samples, generator, tau=1.0) -> Surrogate``
        (:class:`lib.estimators.Surrogate`).

    Example:
        >>> from lib.estimators import StochasticNode
        >>> def soft_codes(logits, tau, generator):  # a relaxation without noise
        ...     return torch.softmax(logits / tau, dim=-1)
        >>> node = StochasticNode("categorical", torch.zeros(4, 2, 3), event_dims=1)
        >>> out = sampler_estimator(soft_codes)(node, lambda z: z.sum((-2, -1)), 5, None)
        >>> out.loss.shape, out.samples.shape
        (torch.Size([4]), torch.Size([5, 4, 2, 3]))
    """
    check_callable(sampler, "sampler")
    name = _estimator_name(sampler)

    def estimator(node: StochasticNode, cost: Callable[[Tensor], Tensor], n_samples: int,
                  generator: torch.Generator | None, tau: float = 1.0) -> Surrogate:
        expanded = node.logits.expand(n_samples, *node.logits.shape)
        z = sampler(expanded, tau, generator)
        if not isinstance(z, Tensor) or z.shape != expanded.shape:
            got = tuple(z.shape) if isinstance(z, Tensor) else type_name(z)
            raise ValueError(f"the sampler {name!r} must return a tensor of the shape of its "
                             f"logits {tuple(expanded.shape)}, got {got}")
        costs = cost(z)
        mean = costs.mean(dim=0)
        weights = torch.full_like(costs.detach(), 1.0 / n_samples)
        return Surrogate(mean, mean.detach(), z.detach(), weights)

    estimator.__name__ = name
    return estimator


class VAELoss(NamedTuple):
    """What :func:`vae_loss` returns.

    Attributes:
        loss: scalar tensor to call ``.backward()`` on; its gradient is the estimator's.
        negative_elbo: detached tensor ``[B]`` (``[M, B]`` for stacked models): the per-image
            value of the objective the estimator optimises: the estimator's estimate of the
            expected reconstruction cost (:attr:`lib.estimators.Surrogate.cost`: averaged over
            the samples, the RELAXED cost for ``gumbel_softmax``, an exact sum for ``exact``)
            plus the KL term.
        kl: detached tensor of the same shape: the KL term (summed over latent variables).
    """

    loss: Tensor
    negative_elbo: Tensor
    kl: Tensor


def vae_loss(
    model: CategoricalVAE,
    x: Tensor,
    estimator: str | Sampler,
    *,
    tau: float = 1.0,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> VAELoss:
    r"""A loss whose gradient is ``estimator``'s estimate of the negative ELBO's gradient.

    The code of each image is one joint sample of the encoder's ``N`` categorical variables,
    ``StochasticNode("categorical", logits, event_dims=1)`` with logits ``[B, N, K]`` (batch
    shape ``[M, B]`` for stacked models), and the cost of a code is the reconstruction cost
    :math:`c = -\log p_\theta(x \mid z)` of its image. The estimator, any name registered in
    :mod:`lib.estimators` (:func:`lib.estimators.estimator_names`, including estimators
    registered after this module was imported), turns them into a surrogate loss
    (:func:`lib.estimators.surrogate`) whose gradient with respect to the encoder (through the
    logits) and the decoder (through the cost) estimates that of
    :math:`\mathbb{E}_{q_\phi(z\mid x)}[c]`. The book's estimators:

    * pathwise (``gumbel_softmax``, ``st_gumbel_softmax``, ``straight_through``):
      :math:`\frac1S\sum_s c(z_s)`, differentiated through the codes :math:`z_s`;
    * ``reinforce_loo``: :math:`\frac1S\sum_s \big[c_s + \mathrm{sg}(c_s - b_s)\log q_\phi(z_s
      \mid x)\big]` with the leave-one-out baseline :math:`b_s = \frac{1}{S-1}\sum_{j\ne s}
      c_j` (needs :math:`S \ge 2`). The first term gives the decoder its ordinary gradient;
      the second is REINFORCE for the encoder. The whole estimate is unbiased;
    * ``exact``: the sum over all :math:`K^N` codes (tiny models only: the registry refuses
      more than :data:`lib.estimators.MAX_EXACT_OUTCOMES` codes).

    The loss adds the closed-form KL of :func:`categorical_kl_uniform`, summed over the latent
    variables and differentiated exactly, for every estimator (as in Jang et al.'s code), and
    averages over the batch (for stacked models: the sum over models of each model's mean, so
    that each model gets exactly the gradient of its own loss).

    Args:
        model: a :class:`CategoricalVAE`.
        x: binary images ``[B, D]`` (for stacked models also ``[M, B, D]``: one batch per
            model), ``D = model.n_pixels``.
        estimator: a registered estimator's name, or a sampler function
            ``sampler(logits, tau, generator) -> z`` trained as a pathwise estimator (see
            :func:`sampler_estimator`).
        tau: temperature > 0, passed to estimators that take a ``tau`` parameter (the
            Gumbel-softmax ones) and to a sampler function; ignored by the others.
        n_samples: codes per image (at least the estimator's ``min_samples``: 2 for
            ``reinforce_loo``; ignored by ``exact``).
        generator: optional ``torch.Generator`` on the CPU or on the model's device.

    Returns:
        A :class:`VAELoss` ``(loss, negative_elbo, kl)``.

    Example:
        >>> model = CategoricalVAE(n_latent=2, n_categories=3, n_hidden=8)
        >>> out = vae_loss(model, torch.ones(4, 64), "reinforce_loo", n_samples=3)
        >>> out.loss.backward()
        >>> out.negative_elbo.shape
        torch.Size([4])

    Reference:
        Jang, Gu, Poole (2017); Williams (1992); Kool, van Hoof, Welling (2019), *Buy 4
        REINFORCE Samples, Get a Baseline for Free!*.
    """
    spec = _estimator_spec(estimator)
    _check_vae_model(model)
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    logits = model.encode(x)  # [(M,) B, N, K]
    tau = check_tau(tau)
    check_generator(generator, like=logits)
    node = StochasticNode("categorical", logits, event_dims=1)

    def reconstruction_cost(z: Tensor) -> Tensor:  # codes [S, (M,) B, N, K] -> [S, (M,) B]
        return -bernoulli_log_likelihood(model.decode(z), x)

    if spec is None:
        out = sampler_estimator(estimator)(node, reconstruction_cost, n_samples, generator,
                                           tau=tau)
    else:
        params = {"tau": tau} if "tau" in spec.params else {}
        out = surrogate(spec.name, node, reconstruction_cost, n_samples, generator, **params)
    kl = _kl_uniform(logits).sum(dim=-1)  # [(M,) B]
    loss = out.loss.mean() + kl.mean()
    if model.n_models is not None:
        # means over [M, B] are (1/M) sum_m (model m's mean): scale back so that each
        # stacked model gets exactly the gradient of its own mean loss
        loss = loss * model.n_models
    return VAELoss(loss, out.cost + kl.detach(), kl.detach())


@torch.no_grad()
def discrete_negative_elbo(
    model: CategoricalVAE,
    x: Tensor,
    *,
    n_samples: int = 10,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Monte Carlo estimate of the negative ELBO of each image with DISCRETE codes, in nats.

    .. math:: -\mathrm{ELBO}(x) \approx \frac1S \sum_{s=1}^{S} -\log p_\theta(x \mid z_s)
              + \sum_n \mathrm{KL}\big(q_\phi(z_n\mid x)\,\|\,\mathrm{Uniform}(K)\big),
              \qquad z_s \sim q_\phi(z \mid x)\ \text{one-hot},

    an unbiased estimate of the bound of the discrete model (the KL is exact). Every estimator is
    scored with it, whatever it trained with: a model trained on relaxed codes must still work
    with one-hot ones. Lower is better; it upper-bounds :math:`-\log p_\theta(x)`.

    Args:
        model: a :class:`CategoricalVAE`.
        x: binary images ``[B, D]`` (``D = model.n_pixels``).
        n_samples: one-hot codes per image.
        generator: optional ``torch.Generator`` on the CPU or on the model's device.

    Returns:
        Tensor ``[B]`` (``[M, B]`` for stacked models); average it over images for the data
        set's value.

    Example:
        >>> model = CategoricalVAE(n_latent=2, n_categories=3, n_hidden=8)
        >>> discrete_negative_elbo(model, torch.ones(4, 64), n_samples=3).shape
        torch.Size([4])
    """
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    logits = model.encode(x)
    check_generator(generator, like=logits)
    z = StochasticNode("categorical", logits, event_dims=1).sample(n_samples, generator)
    cost = -bernoulli_log_likelihood(model.decode(z), x)
    return cost.mean(dim=0) + _kl_uniform(logits).sum(dim=-1)


#: Largest number of codes K**N that :func:`exact_negative_elbo` enumerates.
MAX_CODES = 4096


def all_codes(
    n_latent: int,
    n_categories: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Every one-hot code of ``n_latent`` variables with ``n_categories`` classes.

    Args:
        n_latent: number of latent variables N, >= 1.
        n_categories: classes per variable K, >= 2 (``K ** N <= MAX_CODES``).
        dtype: dtype of the output.
        device: device of the output (None: the default device).

    Returns:
        Tensor ``[n_categories ** n_latent, n_latent, n_categories]``, in the order of
        ``itertools.product(range(n_categories), repeat=n_latent)``.
    """
    n_latent = check_int(n_latent, "n_latent", min_value=1)
    n_categories = check_int(n_categories, "n_categories", min_value=2)
    n_codes = n_categories**n_latent
    if n_codes > MAX_CODES:
        raise ValueError(
            f"n_categories ** n_latent = {n_codes} codes is too many to enumerate (at most "
            f"{MAX_CODES}); use discrete_negative_elbo (Monte Carlo) instead"
        )
    index = torch.arange(n_codes, device=device).unsqueeze(1)
    powers = n_categories ** torch.arange(n_latent - 1, -1, -1, device=device).unsqueeze(0)
    digits = (index // powers) % n_categories  # [n_codes, N], most significant first
    return F.one_hot(digits, n_categories).to(dtype)


def exact_negative_elbo(model: CategoricalVAE, x: Tensor) -> Tensor:
    r"""The negative ELBO of each image computed EXACTLY, by enumerating every code.

    .. math:: -\mathrm{ELBO}(x) = \sum_{z} q_\phi(z \mid x)\,\big(-\log p_\theta(x\mid z)\big)
              + \sum_n \mathrm{KL}\big(q_\phi(z_n \mid x)\,\|\,\mathrm{Uniform}(K)\big),

    a sum over all :math:`K^N` codes, affordable for tiny models only (at most
    :data:`MAX_CODES` codes). It is differentiable: its gradient is the exact gradient every
    estimator tries to estimate, the ground truth of the chapter's bias measurements.

    Args:
        model: a plain (not stacked) :class:`CategoricalVAE` with ``K ** N <= 4096``.
        x: binary images ``[B, D]`` (``D = model.n_pixels``).

    Returns:
        Tensor ``[B]`` in nats.

    Example:
        >>> model = CategoricalVAE(n_latent=2, n_categories=3, n_hidden=8)
        >>> exact_negative_elbo(model, torch.ones(4, 64)).shape
        torch.Size([4])
    """
    _check_vae_model(model)
    if model.n_models is not None:
        raise ValueError("exact_negative_elbo takes a plain model (n_models=None)")
    check_tensor(x, "x")
    if x.dim() != 2:
        raise ValueError(f"x must be a batch of images [B, {model.n_pixels}], got shape "
                         f"{tuple(x.shape)}")
    logits = model.encode(x)  # [B, N, K]
    codes = all_codes(model.n_latent, model.n_categories, dtype=logits.dtype,
                      device=logits.device)
    log_q = torch.log_softmax(logits, dim=-1)
    log_q_codes = torch.einsum("cnk,bnk->cb", codes, log_q)  # [n_codes, B]
    cost = -bernoulli_log_likelihood(model.decode(codes).unsqueeze(1), x)  # [n_codes, B]
    return (log_q_codes.exp() * cost).sum(dim=0) + _kl_uniform(logits).sum(dim=-1)


@torch.no_grad()
def importance_log_weights(
    model: CategoricalVAE,
    x: Tensor,
    *,
    n_samples: int = 1000,
    generator: torch.Generator | None = None,
    max_rows: int = 65_536,
) -> Tensor:
    r"""Log importance weights of one-hot codes drawn from the encoder, for an IWAE bound.

    For codes :math:`z_s \sim q_\phi(z \mid x)` (exact one-hot samples, drawn by Gumbel-max),

    .. math:: \log w_s = \log p_\theta(x \mid z_s) + \log p(z_s) - \log q_\phi(z_s \mid x),
              \qquad \log p(z_s) = -N \log K,

    so that :math:`\mathbb{E}[w_s] = p_\theta(x)`. Pass the result to :func:`negative_iwae`;
    any prefix ``log_weights[:k]`` gives the bound with ``k`` samples, so one call yields the
    bound at several ``k``.

    Args:
        model: a :class:`CategoricalVAE` (plain or stacked).
        x: binary images ``[B, D]`` (``D = model.n_pixels``).
        n_samples: codes per image.
        generator: optional ``torch.Generator``.
        max_rows: the codes are decoded in chunks of at most this many rows (samples x models x
            images), to bound the memory.

    Returns:
        Tensor ``[n_samples, B]`` (``[n_samples, M, B]`` for stacked models).

    Example:
        >>> model = CategoricalVAE(n_latent=2, n_categories=3, n_hidden=8)
        >>> importance_log_weights(model, torch.ones(4, 64), n_samples=5).shape
        torch.Size([5, 4])
    """
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    max_rows = check_int(max_rows, "max_rows", min_value=1)
    logits = model.encode(x)  # [(M,) B, N, K]
    check_generator(generator, like=logits)
    node = StochasticNode("categorical", logits, event_dims=1)
    log_prior = -model.n_latent * math.log(model.n_categories)
    chunk = max(1, max_rows // logits[..., 0, 0].numel())
    parts = []
    for start in range(0, n_samples, chunk):
        size = min(chunk, n_samples - start)
        z = node.sample(size, generator)  # exact one-hot codes [size, (M,) B, N, K]
        log_likelihood = bernoulli_log_likelihood(model.decode(z), x)  # [size, (M,) B]
        parts.append(log_likelihood + log_prior - node.log_prob(z))
    return torch.cat(parts)


def negative_iwae(log_weights: Tensor) -> Tensor:
    r"""The negative importance-weighted bound (Burda et al. 2016) from log weights, in nats.

    .. math:: -\mathcal{L}_k(x) = -\log \frac1k \sum_{s=1}^{k} w_s
              \;\ge\; -\log p_\theta(x) \quad\text{in expectation},

    computed with ``logsumexp``. With ``k = 1`` its expectation is the negative ELBO; it
    decreases (on average) as ``k`` grows and tends to :math:`-\log p_\theta(x)`. It scores the
    decoder as a generative model much more tightly than the ELBO, which also pays for the
    encoder's distance to the true posterior.

    Args:
        log_weights: tensor ``[k, ...]`` from :func:`importance_log_weights`.

    Returns:
        Tensor ``[...]``: one bound per image (and model).

    Example:
        >>> bound = negative_iwae(torch.zeros(8, 3, dtype=torch.float64))  # every weight 1
        >>> bool(bound.abs().max() < 1e-12)  # p(x) = 1, -log p(x) = 0
        True

    Reference:
        Y. Burda, R. Grosse, R. Salakhutdinov (2016), *Importance Weighted Autoencoders*, ICLR.
    """
    check_tensor(log_weights, "log_weights")
    if log_weights.dim() < 1 or log_weights.shape[0] < 1:
        raise ValueError(f"log_weights must have a first dimension of samples, got shape "
                         f"{tuple(log_weights.shape)}")
    k = log_weights.shape[0]
    return math.log(k) - torch.logsumexp(log_weights, dim=0)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

@dataclass
class TrainHistory:
    """What :func:`train_vae` records. Arrays have one column per model (1 for a plain model).

    Attributes:
        estimator: the estimator's name (a sampler function's ``__name__``).
        train_objective: ``[n_epochs, n_models]``: per epoch, the mean over training images of
            ``VAELoss.negative_elbo`` (relaxed for ``gumbel_softmax``), in nats.
        taus: ``[n_epochs]``: the temperature at each epoch's first step.
        eval_epochs: ``[n_evals]``: the epochs after which the test set was evaluated (0 =
            before training).
        test_negative_elbo: ``[n_evals, n_models]``: the mean discrete negative ELBO of the test
            images at ``eval_epochs``, in nats.
        test_kl: ``[n_evals, n_models]``: its KL term (summed over the latent variables); near
            0 means the code carries almost no information about the image.
        steps: number of optimisation steps taken.
        seconds: wall-clock seconds spent in the optimisation steps (evaluation excluded), for
            all the stacked models together.
    """

    estimator: str
    train_objective: np.ndarray
    taus: np.ndarray
    eval_epochs: np.ndarray
    test_negative_elbo: np.ndarray
    test_kl: np.ndarray
    steps: int
    seconds: float


def _per_model_mean(values: Tensor, stacked: bool) -> list[float]:
    """Mean over the images (last dimension), one float per model."""
    values = values.reshape(-1, values.shape[-1]) if stacked else values.reshape(1, -1)
    return values.mean(dim=-1).tolist()


def _train_test_images(data: object, n_pixels: int) -> tuple[Tensor, Tensor]:
    """The training and test images of a :class:`DigitsData` or of a pair of tensors."""
    if isinstance(data, DigitsData):
        images = (data.train, data.test)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        images = (data[0], data[1])
    else:
        raise TypeError(f"data must be a DigitsData (load_binarized_digits()) or a pair "
                        f"(train, test) of image tensors [n, {n_pixels}], got {type_name(data)}")
    for name, x in zip(("train", "test"), images):
        check_tensor(x, name)
        if x.dim() != 2 or x.shape[0] < 1 or x.shape[1] != n_pixels:
            raise ValueError(f"the {name} images must be a tensor [n, {n_pixels}] with n >= 1 "
                             f"(the model's n_pixels), got shape {tuple(x.shape)}")
    return images


def train_vae(
    model: VAEModel,
    data: DigitsData | tuple[Tensor, Tensor],
    estimator: str | Sampler,
    *,
    n_epochs: int = 30,
    batch_size: int = 100,
    lr: float = 3e-3,
    tau: float | Callable[[int], float] = 1.0,
    n_samples: int = 1,
    eval_every: int = 5,
    n_eval_samples: int = 4,
    generator: torch.Generator | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> TrainHistory:
    r"""Train ``model`` with Adam on training images using ``estimator``; evaluate on test images.

    Each epoch visits the training images once in a random order (drawn from ``generator``;
    each stacked model gets its own order) in minibatches of ``batch_size`` (the last one may
    be smaller). Before training and every ``eval_every`` epochs, the mean
    :func:`discrete_negative_elbo` of the test images is recorded.

    The progress bar (tqdm, on stdout) shows only the label, the percentage, the bar, the epoch
    count and the latest test value: no rates or times, so a notebook's saved output is the
    same on every run.

    Args:
        model: the model to train (in place), plain or stacked: a :class:`CategoricalVAE`
            or any ``nn.Module`` with the :class:`VAEModel` members.
        data: a :class:`DigitsData`, or a pair ``(train, test)`` of binary image tensors
            ``[n_train, D]`` and ``[n_test, D]`` with ``D = model.n_pixels`` (any data set).
        estimator: a name registered in :mod:`lib.estimators`
            (:func:`lib.estimators.estimator_names`), or a sampler function trained as a
            pathwise estimator (see :func:`sampler_estimator`).
        n_epochs: passes over the training set.
        batch_size: images per step (per model).
        lr: Adam's learning rate (Jang et al. used 1e-3 for 50,000 steps; the default 3e-3
            suits runs of a few thousand steps).
        tau: a fixed temperature, or a function ``global_step -> tau`` such as
            :func:`lib.schedules.jang_anneal`, for the estimators that take a ``tau``
            (ignored by ``straight_through`` and ``reinforce_loo``; see :func:`vae_loss`).
        n_samples: codes per image per step (>= 2 for ``reinforce_loo``).
        eval_every: evaluate the test set every this many epochs (and after the last one).
        n_eval_samples: one-hot codes per test image in each evaluation.
        generator: ``torch.Generator`` for the order of the images and every sample, on the
            CPU or on the model's device (a CPU generator gives the same orders and noise on
            every device, see :mod:`lib.rng`).
        progress: show a progress bar.
        desc: the progress bar's label (default: the estimator's name).

    Returns:
        A :class:`TrainHistory`.

    Example:
        >>> data = load_binarized_digits()
        >>> model = CategoricalVAE(n_models=2)
        >>> history = train_vae(model, data, "st_gumbel_softmax", n_epochs=1, progress=False)
        >>> history.eval_epochs.tolist(), history.test_negative_elbo.shape
        ([0, 1], (2, 2))
    """
    _estimator_spec(estimator)  # an unknown name fails here, before any work
    _check_vae_model(model)
    train, test = _train_test_images(data, model.n_pixels)
    n_epochs = check_int(n_epochs, "n_epochs", min_value=1)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    lr = check_real(lr, "lr", gt=0.0)
    schedule = tau if callable(tau) else None
    if schedule is None:
        tau = check_tau(tau)
    eval_every = check_int(eval_every, "eval_every", min_value=1)
    n_eval_samples = check_int(n_eval_samples, "n_eval_samples", min_value=1)
    check_bool(progress, "progress")

    device = next(model.parameters()).device
    check_generator(generator, device=device)
    train, test = train.to(device), test.to(device)
    n_train = train.shape[0]
    stacked = model.n_models is not None
    n_batches = math.ceil(n_train / batch_size)  # steps per epoch (the last batch may be short)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    train_objective: list[list[float]] = []
    taus: list[float] = []
    eval_epochs: list[int] = []
    test_values: list[list[float]] = []
    test_kl: list[list[float]] = []
    epoch_state: dict[str, Tensor] = {}

    def loss(step: int) -> Tensor:  # steps 1, 2, ...; epoch e holds steps (e-1)*n_batches + 1..
        i = ((step - 1) % n_batches) * batch_size
        if i == 0:  # a new epoch: one independent order of the images per model
            if stacked:  # [M, n_train]
                epoch_state["order"] = torch.stack([
                    rng.randperm(n_train, generator=generator, device=device)
                    for _ in range(model.n_models)])
            else:
                epoch_state["order"] = rng.randperm(n_train, generator=generator, device=device)
            epoch_state["total"] = torch.zeros(model.n_models if stacked else 1, device=device)
        x = train[epoch_state["order"][..., i : i + batch_size]]  # [B, D] or [M, B, D]
        current_tau = schedule(step - 1) if schedule is not None else tau
        if i == 0:
            taus.append(float(current_tau))
        out = vae_loss(model, x, estimator, tau=current_tau, n_samples=n_samples,
                       generator=generator)
        total = epoch_state["total"]
        total += out.negative_elbo.detach().reshape(total.shape[0], -1).sum(dim=-1)
        if step % n_batches == 0:
            train_objective.append((total / n_train).tolist())
        return out.loss

    def evaluate(step: int) -> str:
        model.eval()
        value = discrete_negative_elbo(model, test, n_samples=n_eval_samples, generator=generator)
        eval_epochs.append(step // n_batches)
        test_values.append(_per_model_mean(value, stacked))
        with torch.no_grad():
            kl = _kl_uniform(model.encode(test)).sum(dim=-1)
        test_kl.append(_per_model_mean(kl, stacked))
        model.train()
        latest = f"test -ELBO {np.mean(test_values[-1]):.2f}"
        return latest + (f" (mean of {model.n_models} models)" if stacked else "")

    result = fit(
        optimizer, loss, n_epochs * n_batches, evaluate=evaluate,
        eval_at=lambda step: step % n_batches == 0 and (step // n_batches) % eval_every == 0,
        progress=progress, desc=desc or _estimator_name(estimator), steps_per_tick=n_batches,
        mininterval=0.5,
    )
    return TrainHistory(
        estimator=_estimator_name(estimator),
        train_objective=np.array(train_objective),
        taus=np.array(taus),
        eval_epochs=np.array(eval_epochs),
        test_negative_elbo=np.array(test_values),
        test_kl=np.array(test_kl),
        steps=result.steps,
        seconds=result.seconds,
    )


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def plot_digit_grid(
    ax: Any,
    images: Tensor | np.ndarray | Sequence[Any],
    *,
    n_cols: int = 10,
    title: str | None = None,
) -> Any:
    """Draw 8x8 images (pixel values in [0, 1]) as one grid, black on white, on ``ax``.

    Args:
        ax: a matplotlib ``Axes``.
        images: array ``[n, 64]`` (or ``[n, 8, 8]``) of pixel values in [0, 1].
        n_cols: images per row.
        title: optional title of the axes.

    Returns:
        The ``AxesImage`` drawn (pass it to ``fig.colorbar`` if wanted).
    """
    if isinstance(images, Tensor):
        images = images.detach().cpu().numpy()
    images = np.asarray(images, dtype=float).reshape(-1, 8, 8)
    n_cols = check_int(n_cols, "n_cols", min_value=1)
    n = images.shape[0]
    n_rows = max(1, math.ceil(n / n_cols))
    n_cols = min(n_cols, n) if n else 1
    pad = 1
    canvas = np.full((n_rows * (8 + pad) + pad, n_cols * (8 + pad) + pad), np.nan)
    for i, image in enumerate(images):
        r, c = divmod(i, n_cols)
        top, left = pad + r * (8 + pad), pad + c * (8 + pad)
        canvas[top : top + 8, left : left + 8] = image
    from matplotlib import colormaps

    cmap = colormaps["gray_r"].with_extremes(bad="#d0d0d0")  # grey gaps between images
    drawn = ax.imshow(canvas, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title is not None:
        ax.set_title(title)
    return drawn
