r"""The rationale model: a selector of tokens and a bag-of-words classifier of the kept ones.

:class:`RationaleModel` is the model of Lei, Barzilay, Jaakkola (2016) in the book's size: a
convolutional **selector** gives every token a keep-logit (the lecture's *generator*; in code
``generator`` is the random-number generator), and an order-blind **classifier** reads the
tokens a mask keeps. Everything that trains or evaluates it uses two methods only:

* ``keep_logits(tokens [B, L], mask [B, L]) -> [B, L]``;
* ``classify(tokens [B, L], z [..., B, L]) -> [..., B, n_classes]``.

``_SideBySide`` stacks K models of the same shape into one module with these two methods,
which :func:`lib.rationales.train_side_by_side` uses to train many seeds at once.

Reference:
    T. Lei, R. Barzilay, T. Jaakkola (2016), *Rationalizing Neural Predictions*, EMNLP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lib._validation import check_generator, check_int, check_real
from lib.rationales.data import _check_probability

__all__ = ["RationaleModel", "Rationalizer"]


@runtime_checkable
class Rationalizer(Protocol):
    r"""What :func:`lib.rationales.train_rationale_model`, :func:`rationale_loss` and the
    metrics need of a model (a protocol): a selector and a classifier.

    Any ``nn.Module`` with these two methods works; :class:`RationaleModel` is the book's.

    * ``keep_logits(tokens, mask)``: LongTensor ``[B, L]`` and BoolTensor ``[B, L]`` ->
      keep-logits ``[B, L]`` (the selector; padded positions are ignored);
    * ``classify(tokens, z)``: tokens ``[B, L]`` and masks ``[..., B, L]`` (leading sample
      dimensions allowed, zero on padding) -> class logits ``[..., B, n_classes]``.

    The trainer gives the parameters whose names start with ``selector`` the selector's
    learning rate and every other parameter the classifier's.
    """

    def keep_logits(self, tokens: Tensor, mask: Tensor) -> Tensor: ...

    def classify(self, tokens: Tensor, z: Tensor) -> Tensor: ...


def _check_rationalizer(model: Any, name: str = "model") -> None:
    """Raise a TypeError naming what ``model`` lacks of the :class:`Rationalizer` protocol."""
    missing = [m for m in ("keep_logits", "classify") if not callable(getattr(model, m, None))]
    if not isinstance(model, nn.Module) or missing:
        lacks = f"; it lacks {', '.join(missing)}" if missing else ""
        raise TypeError(
            f"{name} must be an nn.Module with the Rationalizer methods keep_logits and "
            f"classify, such as a RationaleModel; got {type(model).__name__}{lacks}")


class RationaleModel(nn.Module):
    r"""Selector (the lecture's generator) and bag-of-words classifier.

    * Selector: word embeddings, two 1-D convolutions over the sequence with ReLU (each
      token's keep-logit sees ``kernel_size - 1`` neighbours on each side), then one linear
      unit: :math:`g_i(x, \phi) = \sigma(\ell_i)`. Its output layer starts at zero weights
      and bias :math:`\mathrm{logit}(p_0)`, so every token starts with keep-probability
      ``init_keep_prob``.
    * Classifier: its own embeddings :math:`e(x_i)`, pooled by the mask as a weighted sum,
      then a hidden ``tanh`` layer and a linear output, both without bias terms:

      .. math:: f(x \odot z, \theta) = \mathrm{softmax}\big(W_2 \tanh(W_1 \textstyle\sum_i
                z_i\, e(x_i))\big).

      ``z`` may be 0/1 (a sampled mask) or in [0, 1] (a relaxed one). Without bias terms the
      empty selection gives logits 0, a uniform prediction: selecting nothing cannot stand
      for a class.

    The classifier is deliberately order-blind: all it knows is which words were kept, so it
    needs a good selection to tell the film's sentiment word from a distractor's.

    Args:
        vocab_size: number of word ids (``len(vocab)``).
        n_classes: number of labels.
        embedding_dim: size of both embeddings.
        hidden_dim: channels of the convolutions and width of the classifier's hidden layer.
        kernel_size: odd width of the convolutions.
        pad_index: id of the padding word (its embeddings are zero).
        init_keep_prob: keep-probability of every token at initialisation, in (0, 1).

    Example:
        >>> model = RationaleModel(vocab_size=10)
        >>> tokens, mask = torch.tensor([[2, 3, 4, 0]]), torch.tensor([[1, 1, 1, 0]]).bool()
        >>> model.keep_logits(tokens, mask).shape, model.classify(tokens, mask.float()).shape
        (torch.Size([1, 4]), torch.Size([1, 2]))
    """

    def __init__(
        self,
        vocab_size: int,
        n_classes: int = 2,
        *,
        embedding_dim: int = 16,
        hidden_dim: int = 32,
        kernel_size: int = 5,
        pad_index: int = 0,
        init_keep_prob: float = 0.5,
    ) -> None:
        super().__init__()
        vocab_size = check_int(vocab_size, "vocab_size", min_value=2)
        n_classes = check_int(n_classes, "n_classes", min_value=2)
        embedding_dim = check_int(embedding_dim, "embedding_dim", min_value=1)
        hidden_dim = check_int(hidden_dim, "hidden_dim", min_value=1)
        kernel_size = check_int(kernel_size, "kernel_size", min_value=1)
        pad_index = check_int(pad_index, "pad_index", min_value=0, max_value=vocab_size - 1)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (a same-length convolution), got "
                             f"{kernel_size}")
        init_keep_prob = _check_probability(init_keep_prob, "init_keep_prob")
        if not 0 < init_keep_prob < 1:
            raise ValueError(f"init_keep_prob must be in (0, 1), got {init_keep_prob}")
        pad = kernel_size // 2
        self.selector_embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_index)
        self.selector_conv1 = nn.Conv1d(embedding_dim, hidden_dim, kernel_size, padding=pad)
        self.selector_conv2 = nn.Conv1d(hidden_dim, hidden_dim, kernel_size, padding=pad)
        self.selector_out = nn.Linear(hidden_dim, 1)
        with torch.no_grad():
            self.selector_out.weight.zero_()
            self.selector_out.bias.fill_(math.log(init_keep_prob / (1 - init_keep_prob)))
        self.classifier_embedding = nn.Embedding(vocab_size, embedding_dim,
                                                 padding_idx=pad_index)
        self.classifier_hidden = nn.Linear(embedding_dim, hidden_dim, bias=False)
        self.classifier_out = nn.Linear(hidden_dim, n_classes, bias=False)

    def keep_logits(self, tokens: Tensor, mask: Tensor) -> Tensor:
        r"""Keep-logits :math:`\ell_i` with :math:`g_i = \sigma(\ell_i)`, shape ``[B, L]``.

        Padding is zeroed before each convolution (as the convolution's own zero padding
        does beyond the ends), so a text's logits do not depend on how much padding follows
        it. Logits at padded positions are meaningless: multiply every mask by ``mask``.

        Args:
            tokens: LongTensor ``[B, L]``.
            mask: BoolTensor ``[B, L]``, True on real tokens.
        """
        return self.selector_out(self._selector_hidden(tokens, mask)).squeeze(-1)

    def _selector_hidden(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """The selector's features ``[B, L, hidden_dim]``, before its output layer."""
        valid = mask.unsqueeze(1).to(torch.get_default_dtype())  # [B, 1, L]
        x = self.selector_embedding(tokens).transpose(1, 2) * valid  # [B, E, L]
        h = torch.relu(self.selector_conv1(x)) * valid
        h = torch.relu(self.selector_conv2(h))
        return h.transpose(1, 2)

    def classify(self, tokens: Tensor, z: Tensor) -> Tensor:
        """Class logits ``[..., B, n_classes]`` from the kept tokens.

        Args:
            tokens: LongTensor ``[B, L]``.
            z: masks ``[..., B, L]`` (leading sample dimensions allowed), zero on padding.
        """
        # W1 (sum_i z_i e_i) = sum_i z_i (W1 e_i): project each token once, then pool. Same
        # function as pooling first, and much cheaper when z holds many masks per text
        # (2**L of them for estimator="exact").
        per_token = self.classifier_hidden(self.classifier_embedding(tokens))  # [B, L, H]
        hidden = torch.tanh(torch.einsum("...bl,blh->...bh", z, per_token))
        return self.classifier_out(hidden)


def _selector_parameters(model: RationaleModel) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if n.startswith("selector")]


class _StackedTraining(NamedTuple):
    """What a side-by-side trainer needs: the stacked module, its optimiser, the device, and
    the checked step count and batch size."""

    stack: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    n_steps: int
    batch_size: int


def _stacked_training(stack_class: type, models: Sequence[nn.Module], *, n_steps: int,
                      batch_size: int, lr: float, selector_lr: float | None,
                      generator: torch.Generator | None) -> _StackedTraining:
    """Check the shared training arguments and stack ``models`` (``stack_class(models)``, on
    the models' device) with one Adam whose selector parameters get ``selector_lr`` (``lr``
    when None) and the classifier's ``lr``: the set-up of :func:`train_side_by_side` and
    :func:`train_hardkuma_side_by_side`."""
    n_steps = check_int(n_steps, "n_steps", min_value=1)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    lr = check_real(lr, "lr", gt=0.0)
    selector_lr = lr if selector_lr is None else check_real(selector_lr, "selector_lr", gt=0.0)
    device = next(models[0].parameters()).device
    check_generator(generator, device=device)
    stack = stack_class(models).to(device)
    selector = [stack.p(n) for n in stack.names if n.startswith("selector")]
    classifier = [stack.p(n) for n in stack.names if not n.startswith("selector")]
    optimizer = torch.optim.Adam([{"params": selector, "lr": selector_lr},
                                  {"params": classifier, "lr": lr}])
    return _StackedTraining(stack, optimizer, device, n_steps, batch_size)


class _SideBySide(nn.Module):
    """K :class:`RationaleModel` of the same shape as one module whose batch is K batches.

    Rows ``k*B .. (k+1)*B - 1`` of a batch of ``K*B`` texts go through model ``k``'s weights
    (stacked along a new first dimension), so :func:`rationale_loss` trains all K at once: each
    text's cost depends on its own model only, and ``K`` times the batch mean is the sum of the
    K models' own batch means.
    """

    def __init__(self, models: Sequence[RationaleModel]) -> None:
        super().__init__()
        self.k = len(models)
        self.pad = models[0].selector_conv1.padding[0]
        self.names = [n for n, _ in models[0].named_parameters()]
        self.stacked = nn.ParameterDict({
            n.replace(".", "__"): nn.Parameter(torch.stack([m.get_parameter(n).detach()
                                                            for m in models]))
            for n in self.names
        })

    def p(self, name: str) -> Tensor:
        return self.stacked[name.replace(".", "__")]

    def _split(self, tokens: Tensor) -> Tensor:
        return tokens.reshape(self.k, -1, tokens.shape[-1])  # [K, B, L]

    def _conv(self, x: Tensor, layer: str) -> Tensor:
        """x [K, B, C, L] through model k's conv1d ``layer``, as one batched matrix product of
        the windows (a grouped convolution takes a slower path in float64)."""
        w, bias = self.p(f"{layer}.weight"), self.p(f"{layer}.bias")  # [K, H, C, w], [K, H]
        k, b, c, length = x.shape
        windows = F.pad(x, (self.pad, self.pad)).unfold(-1, w.shape[-1], 1)  # [K, B, C, L, w]
        columns = windows.permute(0, 1, 3, 2, 4).reshape(k, b * length, -1)
        out = torch.bmm(columns, w.reshape(k, w.shape[1], -1).transpose(1, 2))  # [K, B*L, H]
        return out.reshape(k, b, length, -1).transpose(2, 3) + bias[:, None, :, None]

    def _selector_hidden(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Model k's selector features for its rows of the batch, ``[K, B, H, L]``."""
        t = self._split(tokens)
        valid = self._split(mask).unsqueeze(2).to(torch.get_default_dtype())  # [K, B, 1, L]
        rows = torch.arange(self.k, device=tokens.device)[:, None, None]
        x = self.p("selector_embedding.weight")[rows, t].transpose(2, 3) * valid  # [K,B,E,L]
        h = torch.relu(self._conv(x, "selector_conv1")) * valid
        return torch.relu(self._conv(h, "selector_conv2"))

    def keep_logits(self, tokens: Tensor, mask: Tensor) -> Tensor:
        h = self._selector_hidden(tokens, mask)
        logits = (torch.einsum("kbhl,kh->kbl", h, self.p("selector_out.weight")[:, 0])
                  + self.p("selector_out.bias")[:, :, None])
        return logits.reshape(tokens.shape)

    def classify(self, tokens: Tensor, z: Tensor) -> Tensor:
        t = self._split(tokens)
        rows = torch.arange(self.k, device=tokens.device)[:, None, None]
        e = self.p("classifier_embedding.weight")[rows, t]  # [K, B, L, E]
        per_token = torch.einsum("kble,khe->kblh", e, self.p("classifier_hidden.weight"))
        zk = z.reshape(*z.shape[:-2], self.k, -1, z.shape[-1])
        hidden = torch.tanh(torch.einsum("...kbl,kblh->...kbh", zk, per_token))
        out = torch.einsum("...kbh,kch->...kbc", hidden, self.p("classifier_out.weight"))
        return out.reshape(*z.shape[:-1], out.shape[-1])

    @torch.no_grad()
    def write_back(self, models: Sequence[RationaleModel]) -> None:
        for i, m in enumerate(models):
            for n in self.names:
                m.get_parameter(n).copy_(self.p(n)[i])
