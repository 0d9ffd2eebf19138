r"""REINFORCE for sequences: a tiny autoregressive policy, exact by enumeration; group advantages.

The policy fine-tuning of language models (RLOO, GRPO, Dr. GRPO) is REINFORCE on whole sequences
(Williams 1992): for a prompt :math:`q`, a group of :math:`G` responses :math:`o_1, \dots, o_G`
is drawn from the policy :math:`\pi_\theta(\cdot \mid q)`, each gets a reward :math:`r_i`, and the
update is

.. math:: \hat g = \frac1G \sum_{i=1}^{G} \frac{A_i}{\lambda_i}\,
          \nabla_\theta \log \pi_\theta(o_i \mid q),
          \qquad \log \pi_\theta(o_i \mid q) = \sum_{t=1}^{|o_i|}
          \log \pi_\theta(o_{i,t} \mid q, o_{i,<t}),

with an advantage :math:`A_i` computed from the group's rewards and a length normaliser
:math:`\lambda_i` (:math:`|o_i|` for GRPO, 1 otherwise). The estimators differ only there:

=============  =============================================================  ===============
name           advantage :math:`A_i`                                          :math:`\lambda_i`
=============  =============================================================  ===============
``rloo``       :math:`r_i - \frac{1}{G-1}\sum_{j \ne i} r_j`                  1
``grpo``       :math:`(r_i - \bar r) / \mathrm{std}(r)`                        :math:`|o_i|`
``dr_grpo``    :math:`r_i - \bar r`                                           1
``reinforce``  :math:`r_i`                                                    1
=============  =============================================================  ===============

(:math:`\bar r` the group mean, which includes :math:`r_i`.) On-policy and for one update, the
importance ratios of PPO/GRPO equal 1 and their clipping is inactive; a KL penalty is a separate
term. So this module covers the part in which the estimators differ, and measures it exactly:

* :class:`SequencePolicy`: a policy over token sequences of length at most ``T`` from a
  vocabulary of ``V`` tokens, the next token's logits depending on the position and the previous
  token, with an optional end token. Its few dozen sequences are enumerated, so the expected
  reward, its gradient, and the expectation of every estimator above are exact;
* :func:`group_advantages` and :data:`GROUP_ESTIMATORS`: the advantages of the table;
* :func:`group_surrogate`: a surrogate loss whose gradient is :math:`\hat g` (for training);
* :func:`group_gradient_estimates`: many independent estimates :math:`\hat g` at once;
* :func:`expected_group_gradient`: :math:`\mathbb{E}[\hat g]`, exactly.

References:
    R. J. Williams (1992), *Simple Statistical Gradient-Following Algorithms for Connectionist
    Reinforcement Learning*, Machine Learning 8.
    W. Kool, H. van Hoof, M. Welling (2019), *Buy 4 REINFORCE Samples, Get a Baseline for Free!*
    A. Ahmadian et al. (2024), *Back to Basics: Revisiting REINFORCE Style Optimization for
    Learning from Human Feedback in LLMs*, ACL (RLOO).
    Z. Shao et al. (2024), *DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open
    Language Models*, arXiv:2402.03300 (GRPO).
    Z. Liu et al. (2025), *Understanding R1-Zero-Like Training: A Critical Perspective*,
    arXiv:2503.20783 (Dr. GRPO).
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import torch
from torch import Tensor

from lib import rng
from lib._validation import (
    check_bool,
    check_dim,
    check_generator,
    check_int,
    check_logits,
    check_real,
    check_tensor,
    type_name,
)

__all__ = [
    "GROUP_ESTIMATORS",
    "PAD",
    "SequencePolicy",
    "Sequences",
    "enumerate_sequences",
    "expected_group_gradient",
    "group_advantages",
    "group_gradient_estimates",
    "group_surrogate",
]

#: The token that fills the positions after a sequence's end token.
PAD = -1

#: Most tuples of group rewards :func:`expected_group_gradient` enumerates for a std-normalised
#: advantage (distinct reward values ** (group_size - 1)).
MAX_REWARD_TUPLES = 2_000_000

#: The estimators of the module's table: (baseline, std normalisation, length normalisation).
GROUP_ESTIMATORS: dict[str, dict[str, object]] = {
    "rloo": {"baseline": "loo", "std": False, "length_normalise": False},
    "grpo": {"baseline": "mean", "std": True, "length_normalise": True},
    "dr_grpo": {"baseline": "mean", "std": False, "length_normalise": False},
    "reinforce": {"baseline": "none", "std": False, "length_normalise": False},
}

_BASELINES = ("loo", "mean", "none")


class Sequences(NamedTuple):
    """Token sequences padded with :data:`PAD`: ``tokens [..., T]`` (long), ``lengths [...]``.

    The length counts the end token, if the sequence has one.
    """

    tokens: Tensor
    lengths: Tensor


def _check_vocab(vocab_size: object, max_length: object,
                 eos: object) -> tuple[int, int, int | None]:
    vocab_size = check_int(vocab_size, "vocab_size", min_value=2)
    max_length = check_int(max_length, "max_length", min_value=1)
    if eos is not None:
        eos = check_int(eos, "eos", min_value=0, max_value=vocab_size - 1)
    return vocab_size, max_length, eos


def enumerate_sequences(
    vocab_size: int,
    max_length: int,
    eos: int | None = None,
    *,
    device: torch.device | str | None = None,
) -> Sequences:
    r"""Every sequence of at most ``max_length`` tokens, in lexicographic order.

    Without an end token these are the :math:`V^T` sequences of length exactly :math:`T`. With
    ``eos``, a sequence stops at its first ``eos`` (which it keeps) or after :math:`T` tokens:
    :math:`\sum_{L=1}^{T} (V-1)^{L-1} + (V-1)^T` sequences, padded with :data:`PAD`.

    Args:
        vocab_size: :math:`V \ge 2`.
        max_length: :math:`T \ge 1`.
        eos: the end token in ``[0, V)``, or None.
        device: device of the output.

    Returns:
        :class:`Sequences` with ``tokens [M, T]`` and ``lengths [M]``.

    Example:
        >>> enumerate_sequences(2, 2, eos=0).tokens.tolist()
        [[0, -1], [1, 0], [1, 1]]
    """
    vocab_size, max_length, eos = _check_vocab(vocab_size, max_length, eos)
    rows = []
    for seq in itertools.product(range(vocab_size), repeat=max_length):
        if eos is not None and eos in seq:
            end = seq.index(eos) + 1
            if any(t != 0 for t in seq[end:]):  # keep one copy: zeros after the end
                continue
            seq = seq[:end] + (PAD,) * (max_length - end)
        rows.append(seq)
    tokens = torch.tensor(rows, dtype=torch.long, device=device)
    return Sequences(tokens, (tokens != PAD).sum(-1))


class SequencePolicy:
    r"""An autoregressive policy over short token sequences whose distribution is enumerable.

    Token :math:`t` (0-based) given the previous token :math:`o_{t-1}` (the start state
    :math:`V` at :math:`t = 0`) is drawn from :math:`\mathrm{softmax}(\ell[t, o_{t-1}])`:

    .. math:: \pi(o) = \prod_{t=0}^{|o|-1} \mathrm{softmax}(\ell[t, o_{t-1}])_{o_t},

    a sequence ending at its first ``eos`` or after ``T`` tokens. A batch of such tables is a
    batch of independent policies: one per prompt, say.

    Args:
        logits: floating tensor ``[*batch, T, V + 1, V]``: ``logits[..., t, s, :]`` are the
            logits of token ``t`` in state ``s`` (the previous token, or ``V`` for the start).
        eos: the end token in ``[0, V)``, or None (every sequence has length ``T``).

    Example:
        >>> policy = SequencePolicy(torch.zeros(2, 3, 2), eos=0)
        >>> policy.probs().tolist()
        [0.5, 0.25, 0.25]
    """

    def __init__(self, logits: Tensor, eos: int | None = None) -> None:
        check_tensor(logits, "logits")
        if logits.dim() < 3 or logits.shape[-2] != logits.shape[-1] + 1:
            raise ValueError(
                f"logits must have shape [*batch, T, V + 1, V] (row V of each position is the "
                f"start state), got {tuple(logits.shape)}"
            )
        check_logits(logits)
        self.vocab_size, self.max_length, self.eos = _check_vocab(
            logits.shape[-1], logits.shape[-3], eos)
        self.logits = logits
        self.batch_shape = logits.shape[:-3]
        self._outcomes: Sequences | None = None

    def __repr__(self) -> str:
        return (f"SequencePolicy(batch_shape={tuple(self.batch_shape)}, T={self.max_length}, "
                f"V={self.vocab_size}, eos={self.eos})")

    def outcomes(self) -> Sequences:
        """Every sequence (:func:`enumerate_sequences`): ``tokens [M, T]``, ``lengths [M]``."""
        if self._outcomes is None:
            self._outcomes = enumerate_sequences(self.vocab_size, self.max_length, self.eos,
                                                 device=self.logits.device)
        return self._outcomes

    def _check_tokens(self, tokens: object) -> Tensor:
        check_tensor(tokens, "tokens", floating=False)
        if tokens.dtype != torch.long or tokens.dim() < 1 or tokens.shape[-1] != self.max_length:
            raise ValueError(
                f"tokens must be a long tensor [..., T] with T = {self.max_length}, got "
                f"{tokens.dtype} of shape {tuple(tokens.shape)}"
            )
        return tokens

    def token_log_probs(self, tokens: Tensor) -> Tensor:
        r"""Per-token log-probabilities :math:`\log \pi(o_t \mid o_{<t})`, 0 at padding.

        Args:
            tokens: long tensor ``[..., T]`` padded with :data:`PAD`; ``...`` broadcasts
                against the batch shape (``[M, T]`` for every prompt, ``[n, *batch, T]`` for
                samples drawn per prompt).

        Returns:
            Tensor ``[*broadcast(..., batch), T]``, differentiable in the logits.
        """
        tokens = self._check_tokens(tokens)
        v = self.vocab_size
        valid = tokens != PAD
        tok = tokens.clamp_min(0)
        start = torch.full_like(tok[..., :1], v)
        prev = torch.cat([start, tok[..., :-1]], -1)
        flat = torch.log_softmax(self.logits, -1).flatten(-2)  # [*batch, T, (V + 1) V]
        shape = torch.broadcast_shapes(tokens.shape[:-1], self.batch_shape)
        index = (prev * v + tok).expand(*shape, self.max_length).unsqueeze(-1)
        picked = flat.expand(*shape, *flat.shape[-2:]).gather(-1, index).squeeze(-1)
        return picked * valid

    def log_prob(self, tokens: Tensor) -> Tensor:
        """Log-probability of whole sequences: ``token_log_probs(tokens).sum(-1)``."""
        return self.token_log_probs(tokens).sum(-1)

    def probs(self) -> Tensor:
        """Probability of every sequence of :meth:`outcomes`: ``[M, *batch]``, sums to 1."""
        log_p = self.log_prob(self.outcomes().tokens.reshape(-1, *(1,) * len(self.batch_shape),
                                                               self.max_length))
        return log_p.exp()

    def _rewards(self, rewards: object) -> Tensor:
        check_tensor(rewards, "rewards")
        m = self.outcomes().tokens.shape[0]
        shape = (m, *self.batch_shape)
        if rewards.dim() < 1 or rewards.shape[0] != m:
            raise ValueError(f"rewards must give one value per sequence of outcomes(), shape "
                             f"[M = {m}, ...] broadcastable to {shape}, got {tuple(rewards.shape)}")
        extra = len(self.batch_shape) - (rewards.dim() - 1)  # [M, *b]: b aligns on the right
        if extra > 0:
            rewards = rewards.reshape(m, *(1,) * extra, *rewards.shape[1:])
        try:
            return rewards.expand(shape)
        except RuntimeError:
            raise ValueError(f"rewards of shape {tuple(rewards.shape)} do not broadcast to "
                             f"[M, *batch] = {shape}") from None

    def expected_reward(self, rewards: Tensor) -> Tensor:
        r""":math:`J = \sum_o \pi(o)\, r(o)`, exactly.

        Args:
            rewards: floating tensor ``[M]`` or ``[M, *batch]``: the reward of every sequence
                of :meth:`outcomes` (for every prompt).

        Returns:
            Tensor ``[*batch]``, differentiable in the logits.
        """
        rewards = self._rewards(rewards)
        return (self.probs() * rewards.to(self.logits.dtype)).sum(0)

    def exact_gradient(self, rewards: Tensor) -> Tensor:
        r""":math:`\nabla_\ell J` by enumeration: detached, ``[*batch, T, V + 1, V]``.

        Each prompt's block is the gradient of its own expected reward.
        """
        return _weighted_score_sum(self, self.probs().detach() * self._rewards(rewards))

    def sample(self, n_samples: int, generator: torch.Generator | None = None) -> Sequences:
        r"""Draw sequences token by token (inverse CDF of each conditional), without gradient.

        Args:
            n_samples: number of sequences per prompt, ``>= 1``.
            generator: None or a ``torch.Generator`` on the CPU or on the logits' device
                (:mod:`lib.rng`).

        Returns:
            :class:`Sequences` with ``tokens [n_samples, *batch, T]`` and ``lengths
            [n_samples, *batch]``.
        """
        n_samples = check_int(n_samples, "n_samples", min_value=1)
        check_generator(generator, like=self.logits)
        v, logits = self.vocab_size, self.logits.detach()
        shape = (n_samples, *self.batch_shape)
        prev = torch.full(shape, v, dtype=torch.long, device=logits.device)
        done = torch.zeros(shape, dtype=torch.bool, device=logits.device)
        tokens = []
        for t in range(self.max_length):
            rows = logits[..., t, :, :].expand(*shape, v + 1, v)
            probs = torch.softmax(rows.gather(-2, prev[..., None, None].expand(*shape, 1, v)), -1)
            u = rng.rand(shape, generator=generator, dtype=logits.dtype, device=logits.device)
            tok = (probs[..., 0, :].cumsum(-1) <= u[..., None]).sum(-1).clamp_max(v - 1)
            tok = torch.where(done, torch.full_like(tok, PAD), tok)
            tokens.append(tok)
            if self.eos is not None:
                done = done | (tok == self.eos)
            prev = tok.clamp_min(0)
        tokens_t = torch.stack(tokens, -1)
        return Sequences(tokens_t, (tokens_t != PAD).sum(-1))

    def index_of(self, tokens: Tensor) -> Tensor:
        """The position of each sequence in :meth:`outcomes`: ``[..., T]`` -> long ``[...]``."""
        tokens = self._check_tokens(tokens)
        base = self.vocab_size + 1
        powers = base ** torch.arange(self.max_length - 1, -1, -1, device=tokens.device)
        table = torch.full((base**self.max_length,), -1, dtype=torch.long, device=tokens.device)
        outcomes = self.outcomes().tokens.to(tokens.device)
        table[((outcomes + 1) * powers).sum(-1)] = torch.arange(len(outcomes),
                                                                device=tokens.device)
        index = table[((tokens + 1) * powers).sum(-1)]
        if bool((index < 0).any()):
            raise ValueError("tokens holds a sequence that this policy cannot produce (a token "
                             "after the end token, or padding before it)")
        return index


def _weighted_score_sum(policy: SequencePolicy, weights: Tensor) -> Tensor:
    r""":math:`\sum_o w(o) \nabla_\ell \log \pi(o)` for weights ``[M, *batch]``, per prompt."""
    leaf = policy.logits.detach().clone().requires_grad_(True)
    tokens = policy.outcomes().tokens
    with torch.enable_grad():
        log_p = SequencePolicy(leaf, policy.eos).log_prob(
            tokens.reshape(-1, *(1,) * len(policy.batch_shape), policy.max_length))
        (grad,) = torch.autograd.grad((weights.detach() * log_p).sum(), leaf)
    return grad


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def group_advantages(
    rewards: Tensor,
    baseline: str = "mean",
    std: bool = False,
    *,
    dim: int = 0,
    correction: int = 1,
    eps: float = 0.0,
) -> Tensor:
    r"""Advantages of a group of rewards: a baseline subtracted, optionally divided by the std.

    .. math:: A_i = \frac{r_i - b_i}{s + \epsilon}\ \text{(std)}, \quad A_i = r_i - b_i
              \ \text{(no std)}, \qquad
              b_i = \begin{cases} \frac{1}{G-1}\sum_{j \ne i} r_j & \text{loo} \\
              \frac1G \sum_j r_j & \text{mean} \\ 0 & \text{none} \end{cases}

    with :math:`s` the group's standard deviation (``torch.std`` with ``correction``). A group
    whose rewards are all equal gets advantage 0 with every baseline but ``none``; with
    ``std`` and ``eps = 0`` the 0/0 is defined as 0 (implementations add an ``eps`` such as
    ``1e-4`` instead, which gives the same 0).

    Args:
        rewards: floating tensor with the group along ``dim`` (``G >= 2`` for ``loo`` and
            ``std``).
        baseline: ``"loo"`` (RLOO), ``"mean"`` (GRPO, Dr. GRPO) or ``"none"``.
        std: divide by the group's standard deviation (GRPO).
        dim: the group dimension.
        correction: ``torch.std``'s correction (1: divide by G - 1; 0: by G).
        eps: added to the std, ``>= 0``.

    Returns:
        Detached tensor of the shape of ``rewards``.

    Example:
        >>> group_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0]), "mean", std=True)
        tensor([ 0.8660, -0.8660, -0.8660,  0.8660])
    """
    check_tensor(rewards, "rewards")
    dim = check_dim(rewards, dim, tensor_name="rewards")
    baseline = _check_choice(baseline, "baseline", _BASELINES)
    std = check_bool(std, "std")
    correction = check_int(correction, "correction", min_value=0, max_value=1)
    eps = check_real(eps, "eps", ge=0.0)
    g = rewards.shape[dim]
    if g < 2 and (baseline == "loo" or std):
        raise ValueError(f"rewards needs a group of at least 2 along dim={dim} for "
                         f"baseline={baseline!r}, std={std}; got shape {tuple(rewards.shape)}")
    r = rewards.detach()
    total = r.sum(dim, keepdim=True)
    if baseline == "loo":
        advantage = r - (total - r) / (g - 1)
    elif baseline == "mean":
        advantage = r - total / g
    else:
        advantage = r
    if std:
        s = r.std(dim, correction=correction, keepdim=True) + eps
        advantage = advantage / torch.where(s > 0, s, 1.0)
    if baseline != "none":  # exactly 0, not a rounding error of r - mean, in equal groups
        equal = r.amax(dim, keepdim=True) == r.amin(dim, keepdim=True)
        advantage = torch.where(equal, torch.zeros_like(advantage), advantage)
    return advantage


def _resolve(method: object, overrides: dict) -> dict:
    if not isinstance(method, str) or method not in GROUP_ESTIMATORS:
        raise ValueError(f"method must be one of {tuple(GROUP_ESTIMATORS)}, got {method!r}")
    unknown = set(overrides) - {"baseline", "std", "length_normalise"}
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {sorted(unknown)}; a method's "
                        f"settings are baseline, std and length_normalise")
    spec = {**GROUP_ESTIMATORS[method], **overrides}
    _check_choice(spec["baseline"], "baseline", _BASELINES)
    check_bool(spec["std"], "std")
    check_bool(spec["length_normalise"], "length_normalise")
    return spec


def group_surrogate(
    log_probs: Tensor,
    advantages: Tensor,
    mask: Tensor | None = None,
    length_normalise: bool = False,
) -> Tensor:
    r"""Surrogate loss whose gradient is the group estimate :math:`\hat g` (for a reward).

    .. math:: L = \frac1G \sum_i \frac{\mathrm{sg}(A_i)}{\lambda_i} \sum_t m_{i,t}
              \log \pi(o_{i,t} \mid o_{i,<t}), \qquad
              \lambda_i = \textstyle\sum_t m_{i,t}\ \text{(length\_normalise) or } 1,

    averaged over any further (prompt) dimensions. Maximise it (minimise ``-L``) to increase
    the expected reward; as with :func:`lib.estimators.reinforce_surrogate`, only its gradient
    means something.

    Args:
        log_probs: floating tensor ``[G, ..., T]``: per-token log-probabilities.
        advantages: tensor ``[G, ...]`` (detached here).
        mask: bool tensor ``[G, ..., T]``, True at real tokens (None: all real).
        length_normalise: divide each sequence's term by its length (GRPO).

    Returns:
        Scalar tensor.
    """
    check_tensor(log_probs, "log_probs")
    check_tensor(advantages, "advantages")
    length_normalise = check_bool(length_normalise, "length_normalise")
    if log_probs.dim() < 2 or advantages.shape != log_probs.shape[:-1]:
        raise ValueError(f"log_probs must be [G, ..., T] and advantages [G, ...], got "
                         f"{tuple(log_probs.shape)} and {tuple(advantages.shape)}")
    if mask is None:
        mask = torch.ones_like(log_probs, dtype=torch.bool)
    elif not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != log_probs.shape:
        raise ValueError(f"mask must be a bool tensor of log_probs' shape {tuple(log_probs.shape)}"
                         f", got {type_name(mask) if not isinstance(mask, Tensor) else mask.dtype}"
                         f" {tuple(getattr(mask, 'shape', ()))}")
    per_sequence = (log_probs * mask).sum(-1)
    weight = advantages.detach().to(log_probs.dtype)
    if length_normalise:
        weight = weight / mask.sum(-1).clamp_min(1)
    return (weight * per_sequence).mean()


def group_gradient_estimates(
    policy: SequencePolicy,
    rewards: Tensor,
    group_size: int,
    n_groups: int,
    method: str = "grpo",
    generator: torch.Generator | None = None,
    **settings: object,
) -> Tensor:
    r"""``n_groups`` independent estimates :math:`\hat g` of :math:`\nabla_\ell J`, one group each.

    Each group draws ``group_size`` sequences per prompt (:meth:`SequencePolicy.sample`) and
    returns :math:`\frac1G \sum_i \frac{A_i}{\lambda_i} \nabla_\ell \log \pi(o_i)`, computed
    from the exact score of every sequence (the same number :func:`group_surrogate` gives).

    Args:
        policy: a :class:`SequencePolicy`.
        rewards: floating tensor ``[M]`` or ``[M, *batch]``: the reward of every sequence of
            ``policy.outcomes()``.
        group_size: :math:`G \ge 1` (``>= 2`` for ``loo`` and ``std``).
        n_groups: number of independent estimates, ``>= 1``.
        method: a name of :data:`GROUP_ESTIMATORS`: ``"rloo"``, ``"grpo"``, ``"dr_grpo"`` or
            ``"reinforce"``.
        generator: None or a ``torch.Generator`` (:mod:`lib.rng`).
        **settings: ``baseline``, ``std`` or ``length_normalise``, to override the method's.

    Returns:
        Tensor ``[n_groups, *batch, T, V + 1, V]``.
    """
    spec = _resolve(method, settings)
    group_size = check_int(group_size, "group_size", min_value=1)
    n_groups = check_int(n_groups, "n_groups", min_value=1)
    table = policy._rewards(rewards).to(policy.logits.dtype)
    drawn = policy.sample(n_groups * group_size, generator)
    index = policy.index_of(drawn.tokens)  # [n, *batch]
    r = table.gather(0, index).reshape(n_groups, group_size, *policy.batch_shape)
    advantage = group_advantages(r, spec["baseline"], spec["std"], dim=1)
    if spec["length_normalise"]:
        advantage = advantage / drawn.lengths.reshape(r.shape).to(r.dtype)
    m = table.shape[0]
    weights = torch.zeros(n_groups, m, *policy.batch_shape, dtype=r.dtype, device=r.device)
    weights.scatter_add_(1, index.reshape(r.shape), advantage / group_size)
    scores = _scores(policy)  # [M, *batch, D]
    flat = torch.einsum("gm...,m...d->g...d", weights, scores)
    return flat.reshape(n_groups, *policy.logits.shape)


def _scores(policy: SequencePolicy) -> Tensor:
    r"""The score :math:`\nabla_\ell \log \pi(o)` of every sequence: ``[M, *batch, D]``."""
    v, t_max = policy.vocab_size, policy.max_length
    tokens = policy.outcomes().tokens
    valid = tokens != PAD
    tok = tokens.clamp_min(0)
    prev = torch.cat([torch.full_like(tok[:, :1], v), tok[:, :-1]], -1)
    dtype = policy.logits.dtype
    state = torch.nn.functional.one_hot(prev, v + 1).to(dtype) * valid[..., None]  # [M, T, V+1]
    chosen = torch.nn.functional.one_hot(tok, v).to(dtype)  # [M, T, V]
    probs = torch.softmax(policy.logits.detach(), -1)  # [*batch, T, V + 1, V]
    ones = (1,) * len(policy.batch_shape)
    state = state.reshape(-1, *ones, t_max, v + 1, 1)
    score = state * (chosen.reshape(-1, *ones, t_max, 1, v) - probs)
    return score.flatten(-3)


def expected_group_gradient(
    policy: SequencePolicy,
    rewards: Tensor,
    group_size: int,
    method: str = "grpo",
    **settings: object,
) -> Tensor:
    r""":math:`\mathbb{E}[\hat g]` of a group estimator, exactly: ``[*batch, T, V + 1, V]``.

    By exchangeability :math:`\mathbb{E}[\hat g] = \mathbb{E}[(A_1 / \lambda_1) \nabla \log
    \pi(o_1)] = \sum_o \pi(o)\, \frac{c(r(o))}{\lambda(o)}\, \nabla \log \pi(o)` with
    :math:`c(a) = \mathbb{E}[A_1 \mid r_1 = a]`, the expectation over the other
    :math:`G - 1` rewards. Without std normalisation :math:`c` is linear:
    :math:`c(a) = a - J` (loo), :math:`(1 - 1/G)(a - J)` (mean) or :math:`a` (none). With it,
    :math:`c` is summed over every tuple of the other rewards' distinct values (at most
    :data:`MAX_REWARD_TUPLES`). So for RLOO this is :meth:`SequencePolicy.exact_gradient`.

    Args:
        policy: a :class:`SequencePolicy`.
        rewards: floating tensor ``[M]`` or ``[M, *batch]``.
        group_size: :math:`G` (``>= 2`` for ``loo`` and ``std``).
        method: a name of :data:`GROUP_ESTIMATORS`.
        **settings: ``baseline``, ``std`` or ``length_normalise``, to override the method's.

    Returns:
        Detached tensor ``[*batch, T, V + 1, V]``.
    """
    spec = _resolve(method, settings)
    group_size = check_int(group_size, "group_size", min_value=1)
    if group_size < 2 and (spec["baseline"] == "loo" or spec["std"]):
        raise ValueError(f"group_size must be >= 2 for baseline={spec['baseline']!r}, "
                         f"std={spec['std']}; got {group_size}")
    table = policy._rewards(rewards).to(policy.logits.dtype)
    probs = policy.probs().detach()
    if not spec["std"]:
        j = (probs * table).sum(0)
        c = {"loo": table - j, "mean": (1 - 1 / group_size) * (table - j),
             "none": table}[spec["baseline"]]
    else:
        values, which = torch.unique(table, return_inverse=True)  # which: [M, *batch]
        d = len(values)
        if d ** (group_size - 1) > MAX_REWARD_TUPLES:
            raise ValueError(
                f"the rewards take {d} distinct values, so {d}**{group_size - 1} tuples of the "
                f"other rewards exceed MAX_REWARD_TUPLES={MAX_REWARD_TUPLES}; use fewer "
                f"distinct rewards or a smaller group_size")
        value_probs = torch.zeros(d, *policy.batch_shape, dtype=probs.dtype,
                                  device=probs.device).scatter_add_(0, which, probs)
        others = torch.tensor(list(itertools.product(range(d), repeat=group_size - 1)),
                              dtype=torch.long, device=probs.device).reshape(-1, group_size - 1)
        tuple_probs = value_probs[others].prod(1)  # [N, *batch]
        group = torch.cat([torch.arange(d, device=probs.device)[:, None, None].expand(
            d, len(others), 1), others.expand(d, -1, -1)], -1)  # [d, N, G]
        a1 = group_advantages(values[group], spec["baseline"], True, dim=-1)[..., 0]  # [d, N]
        c_values = torch.einsum("dn,n...->d...", a1, tuple_probs)  # [d, *batch]
        c = c_values.gather(0, which)
    if spec["length_normalise"]:
        lengths = policy.outcomes().lengths.to(c.dtype)
        c = c / lengths.reshape(-1, *(1,) * len(policy.batch_shape))
    return _weighted_score_sum(policy, probs * c)
