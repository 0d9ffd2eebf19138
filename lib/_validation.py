"""Argument checks shared by every public function of :mod:`lib`.

Each check raises early with a message that names the argument, states the rule, shows the
offending value (or shape, or type) and suggests a fix. ``TypeError`` is raised for a wrong
kind of object (a NumPy array where a tensor is expected, a ``bool`` where a number is
expected), ``ValueError`` for a right kind of object with a wrong value or shape.

The checks are cheap: the value check of a tensor of logits costs one ``aminmax`` reduction in
the common case, and the detailed diagnosis only runs when something is wrong.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from lib.rng import as_device, same_device

__all__ = [
    "check_bool",
    "check_callable",
    "check_dim",
    "check_generator",
    "check_int",
    "check_logits",
    "check_real",
    "check_same_shape",
    "check_tau",
    "check_tensor",
    "broadcast_shapes",
    "type_name",
]


def type_name(x: Any) -> str:
    """Return a readable, fully qualified type name (``numpy.ndarray``, ``list``, ...)."""
    cls = type(x)
    module = cls.__module__
    if module in ("builtins", None):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def _describe(x: Any) -> str:
    """``torch.Tensor of dtype torch.int64`` for tensors, the type name otherwise."""
    if isinstance(x, Tensor):
        return f"torch.Tensor of dtype {x.dtype}"
    return type_name(x)


def broadcast_shapes(*shapes: Sequence[int]) -> torch.Size | None:
    """The broadcast of ``shapes`` under NumPy/torch rules, or None if they do not broadcast.

    Pure Python: ``torch.broadcast_shapes`` imports ``torch._refs`` on first use, which takes
    seconds.
    """
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for shape in shapes:
        for i, size in enumerate(shape, start=ndim - len(shape)):
            if size == out[i] or size == 1:
                continue
            if out[i] != 1:
                return None
            out[i] = size
    return torch.Size(out)


def check_tensor(x: Any, name: str, *, floating: bool = True) -> Tensor:
    """Check that ``x`` is a ``torch.Tensor`` (of floating-point dtype if ``floating``).

    Raises:
        TypeError: if ``x`` is not a tensor, or is not floating-point when ``floating``.
    """
    if not isinstance(x, Tensor):
        kind = "a floating-point torch.Tensor" if floating else "a torch.Tensor"
        raise TypeError(
            f"{name} must be {kind}, got {type_name(x)}; "
            f"convert with torch.as_tensor({name}, dtype=torch.float32)"
        )
    if floating and not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point torch.Tensor, got {_describe(x)}; "
            f"convert with {name}.float() (or {name}.double())"
        )
    return x


def check_bool(value: Any, name: str) -> bool:
    """Check that ``value`` is a Python ``bool`` (``0``/``1``/``None`` are refused).

    Raises:
        TypeError: if ``value`` is not a ``bool``.
    """
    if not isinstance(value, bool):
        raise TypeError(
            f"{name} must be a bool (True or False), got {type_name(value)} {value!r}"
        )
    return value


def check_callable(f: Any, name: str) -> Callable[..., Any]:
    """Check that ``f`` is callable.

    Raises:
        TypeError: if ``f`` is not callable.
    """
    if not callable(f):
        raise TypeError(f"{name} must be a callable (a function), got {type_name(f)}")
    return f


_CPU = torch.device("cpu")


def check_generator(
    generator: Any,
    name: str = "generator",
    *,
    device: torch.device | str | None = None,
    like: Tensor | None = None,
) -> torch.Generator | None:
    """Check a ``generator`` argument against the book's convention (see :mod:`lib.rng`).

    ``generator`` must be None or a ``torch.Generator`` whose device is the CPU or the device
    of the tensors being sampled for. Numbers are then drawn on the generator's device and
    moved to the tensors' device, so a CPU generator works for tensors on any device.

    Args:
        generator: the argument to check.
        name: argument name used in messages.
        device: the device of the tensors being sampled for (None: the default device).
        like: a tensor on that device, instead of ``device`` (its device is only looked up
            for a generator that is not on the CPU: the cheap form for hot paths).

    Returns:
        ``generator`` unchanged.

    Raises:
        TypeError: if ``generator`` is neither None nor a ``torch.Generator`` (an int seed, a
            NumPy generator, ...).
        ValueError: if the generator's device is neither the CPU nor the tensors' device (a
            CUDA generator for CPU tensors, say).
    """
    if generator is None:
        return None
    if type(generator) is not torch.Generator and not isinstance(generator, torch.Generator):
        if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
            hint = (f"; to seed the draws pass torch.Generator().manual_seed({generator!r}) "
                    f"(or lib.utils.set_seed({generator!r}))")
        elif type(generator).__module__.startswith("numpy"):
            hint = ("; a NumPy generator cannot drive torch's samplers: pass "
                    "torch.Generator().manual_seed(seed) (or lib.utils.set_seed(seed))")
        else:
            hint = "; create one with torch.Generator().manual_seed(seed)"
        raise TypeError(
            f"{name} must be None or a torch.Generator, got {type_name(generator)}{hint}"
        )
    generator_device = generator.device
    if generator_device == _CPU:
        return generator
    if like is not None:
        device = like.device
    if not same_device(generator_device, device):
        target = f"{as_device(device)}{' (the default device)' if device is None else ''}"
        raise ValueError(
            f"{name} lives on {generator_device} but the tensors it samples for are on "
            f"{target}; a generator must be on the CPU or on the tensors' device. Use a CPU "
            f"generator (torch.Generator().manual_seed(seed) or lib.utils.set_seed(seed)): "
            f"its numbers are moved to any device, and the same seed gives the same numbers "
            f"everywhere"
        )
    return generator


def check_int(
    value: Any,
    name: str,
    *,
    min_value: int | None = None,
    max_value: int | None = None,
) -> int:
    """Check that ``value`` is an integer (``bool`` and ``float`` refused) within bounds.

    Raises:
        TypeError: if ``value`` is not an integer (``3.0`` and ``True`` are refused).
        ValueError: if ``value`` is outside ``[min_value, max_value]``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        hint = f"; use int({value!r})" if isinstance(value, float) and value.is_integer() else ""
        raise TypeError(f"{name} must be an int, got {type_name(value)} {value!r}{hint}")
    value = int(value)
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be >= {min_value} (got {value})")
    if max_value is not None and value > max_value:
        raise ValueError(f"{name} must be <= {max_value} (got {value})")
    return value


def check_real(
    value: Any,
    name: str,
    *,
    gt: float | None = None,
    ge: float | None = None,
) -> float:
    """Check that ``value`` is a finite real number (``bool``/``str`` refused), return a float.

    Args:
        value: the number to check (Python or NumPy scalar, or a 1-element tensor).
        name: argument name used in messages.
        gt: if given, require ``value > gt``.
        ge: if given, require ``value >= ge``.

    Raises:
        TypeError: if ``value`` is not a real number.
        ValueError: if ``value`` is NaN, infinite or out of bounds.
    """
    if isinstance(value, Tensor) and value.numel() == 1 and not value.dtype.is_complex:
        if value.dtype == torch.bool:
            raise TypeError(f"{name} must be a real number, got a bool tensor")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type_name(value)} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite (got {value})")
    if gt is not None and not value > gt:
        raise ValueError(f"{name} must be > {gt} (got {value})")
    if ge is not None and not value >= ge:
        raise ValueError(f"{name} must be >= {ge} (got {value})")
    return value


def check_dim(tensor: Tensor, dim: Any, name: str = "dim", *, tensor_name: str = "input") -> int:
    """Check that ``dim`` is a valid dimension of ``tensor``; return it as a non-negative int.

    Raises:
        TypeError: if ``dim`` is not an int.
        ValueError: if ``tensor`` is 0-d or ``dim`` is out of range.
    """
    if type(dim) is not int:  # a plain int skips the ABC checks below (slow on hot paths)
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {type_name(dim)} {dim!r}")
        dim = int(dim)
    ndim = tensor.dim()
    if ndim == 0:
        raise ValueError(
            f"{tensor_name} must have at least 1 dimension to use {name}={dim}, got a 0-d "
            f"tensor; add a category dimension with {tensor_name}.unsqueeze(0)"
        )
    if not -ndim <= dim < ndim:
        raise ValueError(
            f"{name}={dim} is out of range for {tensor_name} with {ndim} dimension(s) "
            f"(shape {tuple(tensor.shape)}); use a value in [{-ndim}, {ndim - 1}]"
        )
    return dim % ndim


def check_logits(
    logits: Any,
    name: str = "logits",
    *,
    dim: int | None = -1,
) -> Tensor:
    """Check unnormalised log-probabilities.

    With an integer ``dim`` (categorical logits along ``dim``): entries must not be NaN or
    ``+inf``; ``-inf`` is allowed (a masked category, probability 0) as long as every slice
    along ``dim`` keeps at least one finite entry. With ``dim=None`` (independent Bernoulli
    logits, one per element): every entry must be finite.

    Args:
        logits: tensor of shape ``[..., K]`` (or any shape if ``dim`` is None).
        name: argument name used in messages.
        dim: the category dimension, or None for element-wise (Bernoulli) logits.

    Returns:
        ``logits`` unchanged.

    Raises:
        TypeError: if ``logits`` is not a floating-point tensor.
        ValueError: on NaN, ``+inf``, an all ``-inf`` slice, an empty category dimension
            or (for ``dim=None``) any infinite entry.
    """
    check_tensor(logits, name)
    if dim is not None:
        d = check_dim(logits, dim, tensor_name=name)
        if logits.shape[d] == 0:
            raise ValueError(
                f"{name} must have at least one category along dim={dim}, got shape "
                f"{tuple(logits.shape)}"
            )
    if logits.numel() == 0:
        return logits
    # fast path: one reduction pass (NaN propagates into both results) on a detached alias, so
    # no autograd bookkeeping, and Python comparisons of .item() instead of tensor ops;
    # torch.isfinite would allocate a mask and cost more than drawing the Gumbel noise
    low, high = torch.aminmax(logits.detach())
    if -math.inf < low.item() and high.item() < math.inf:
        return logits
    with torch.no_grad():
        if bool(torch.isnan(low) | torch.isnan(high)):
            nan = torch.isnan(logits)
            n_nan = int(nan.sum())
            index = tuple(int(i) for i in nan.nonzero()[0])
            raise ValueError(
                f"{name} must not contain NaN: found {n_nan} NaN entr"
                f"{'y' if n_nan == 1 else 'ies'} (first at index {index}); "
                f"NaN usually comes from an earlier overflow or a 0/0 upstream"
            )
        if dim is None:
            index = tuple(int(i) for i in torch.isinf(logits).nonzero()[0])
            raise ValueError(
                f"{name} must be finite for Bernoulli variables: found an infinite entry "
                f"(first at index {index}); use a large finite value such as +-1e4 for a "
                f"(nearly) deterministic variable"
            )
        if bool(high == math.inf):
            index = tuple(int(i) for i in torch.isposinf(logits).nonzero()[0])
            raise ValueError(
                f"{name} must not contain +inf (first at index {index}); +inf would make "
                f"softmax undefined. Use a large finite value, or mask the OTHER categories "
                f"with -inf"
            )
        # only -inf entries (masked categories): every slice needs a finite one
        all_masked = torch.isneginf(logits.amax(dim=dim))
        if bool(all_masked.any()):
            index = tuple(int(i) for i in all_masked.nonzero()[0])
            raise ValueError(
                f"every slice of {name} along dim={dim} needs at least one finite entry, but "
                f"the slice at batch index {index} is all -inf (no category has positive "
                f"probability); leave at least one category unmasked"
            )
    return logits


def check_tau(
    tau: Any,
    name: str = "tau",
    *,
    like: Tensor | None = None,
    dim: int | None = None,
) -> float | Tensor:
    """Check a temperature: a finite number > 0, or a tensor of them.

    Args:
        tau: Python/NumPy real number, or a floating-point tensor. A tensor must broadcast to
            ``like.shape`` without enlarging it and, if ``dim`` is given, have size 1 along
            ``dim`` (one temperature per distribution, not per category).
        name: argument name used in messages.
        like: the tensor ``tau`` is combined with (usually the logits).
        dim: the category dimension of ``like``.

    Returns:
        A Python float, or the tensor cast to ``like.dtype`` (when ``like`` is given).

    Raises:
        TypeError: if ``tau`` is a bool, string, non-floating tensor, ...
        ValueError: if ``tau`` is not > 0, not finite, or has an incompatible shape.
    """
    if isinstance(tau, Tensor):
        if not tau.is_floating_point():
            raise TypeError(
                f"{name} must be a real number or a floating-point torch.Tensor, got "
                f"{_describe(tau)}; use a float such as 1.0"
            )
        if like is not None:
            if broadcast_shapes(tau.shape, like.shape) != like.shape:
                raise ValueError(
                    f"{name} of shape {tuple(tau.shape)} must broadcast to the logits' shape "
                    f"{tuple(like.shape)} without changing it"
                )
            if dim is not None and tau.dim() > 0:
                d = dim % like.dim()
                offset = like.dim() - tau.dim()
                if d >= offset and tau.shape[d - offset] != 1:
                    raise ValueError(
                        f"{name} of shape {tuple(tau.shape)} must have size 1 along the "
                        f"category dim={dim} (one temperature per distribution); use "
                        f"{name}.unsqueeze({dim}) or keepdim=True"
                    )
        # fast path (one sync, no mask): every entry finite and > 0 (NaN fails both tests)
        low, high = torch.aminmax(tau.detach()) if tau.numel() > 1 else (tau, tau)
        if tau.numel() > 0 and not (0.0 < low.item() and high.item() < math.inf):
            with torch.no_grad():
                if not bool(torch.isfinite(tau).all()):
                    raise ValueError(f"{name} must be finite everywhere (got {tau.detach()})")
                if not bool((tau > 0).all()):
                    raise ValueError(
                        f"{name} must be > 0 everywhere (got min {float(tau.min())}); tau = 0 "
                        f"is the argmax limit: use hard=True or gumbel_max_sample"
                    )
        if like is not None and tau.dtype != like.dtype:
            tau = tau.to(like.dtype)
        return tau
    if type(tau) is not float:  # a plain float skips the ABC check below (slow on hot paths)
        if isinstance(tau, bool) or not isinstance(tau, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {type_name(tau)} {tau!r}")
        tau = float(tau)
    if math.isnan(tau) or math.isinf(tau):
        raise ValueError(f"{name} must be a finite number > 0 (got {tau})")
    if tau <= 0:
        raise ValueError(
            f"{name} must be > 0 (got {tau}); tau = 0 is the argmax limit: use hard=True or "
            f"gumbel_max_sample"
        )
    return tau


def check_same_shape(a: Tensor, b: Tensor, names: Sequence[str] = ("a", "b")) -> None:
    """Check that two tensors have exactly the same shape.

    Raises:
        ValueError: if the shapes differ.
    """
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}; reshape one of them (broadcasting is not applied here)"
        )
