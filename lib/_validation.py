"""Argument checks shared by every public function of :mod:`lib`.

Each check raises early with a message that names the argument, states the rule, shows the
offending value (or shape, or type) and suggests a fix. ``TypeError`` is raised for a wrong
kind of object (a NumPy array where a tensor is expected, a ``bool`` where a number is
expected), ``ValueError`` for a right kind of object with a wrong value or shape.

Two kinds of check, and a switch for them as in ``torch.distributions``:

* **Structural checks** (types, dtypes, shapes, dimensions, argument names, Python numbers) read
  no tensor data: they never wait for the device, cost a few Python operations, and run.
* **Value checks** read a tensor's numbers (NaN, infinities, ranges, sums), so they wait for
  the device (``.item()``, ``bool(tensor)``, ``.tolist()``) and cannot be traced by
  ``torch.compile``. They run only while :func:`validating` is True: validation is on
  (:func:`set_default_validate_args`, :class:`validate_args`; on by default, like
  ``torch.distributions.Distribution.set_default_validate_args``) and no graph is being traced
  (``torch.compiler.is_compiling()``). The value check of a tensor of logits reads its data
  once in the common case (:func:`_sum_of`); the detailed diagnosis only runs when something is
  wrong.
* **The samplers' hot paths** (:func:`lib.gumbel.gumbel_max_sample`,
  :func:`lib.relaxed.gumbel_softmax`, :func:`lib.relaxed.relaxed_bernoulli`) skip their
  structural checks too while validation is off, as ``torch.nn.functional`` checks nothing: on
  a few numbers each Python call costs as much as the arithmetic. ``tau`` is still converted
  (and so checked) by :func:`check_tau`.

Example:
    >>> import lib
    >>> from lib.relaxed import gumbel_softmax
    >>> with lib.validate_args(False):  # trusted inputs in a hot loop: no value checks, no sync
    ...     y = gumbel_softmax(torch.zeros(2, 3), 0.5)
    >>> lib.get_default_validate_args()  # restored on leaving the block
    True
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from lib.rng import as_device, same_device

__all__ = [
    "get_default_validate_args",
    "set_default_validate_args",
    "validate_args",
    "validating",
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
    "check_broadcast",
    "type_name",
]


# ---------------------------------------------------------------------------------------------
# the switch
# ---------------------------------------------------------------------------------------------

try:
    from torch.compiler import is_compiling as _is_compiling  # torch >= 2.3
except ImportError:  # older torch: torch.compile is absent or experimental; never compiling
    def _is_compiling() -> bool:
        return False

#: Whether value checks run (read through :func:`validating`); one setting for the process,
#: like ``torch.distributions.Distribution._validate_args``.
_validate_args: bool = True


def set_default_validate_args(value: bool) -> None:
    """Turn the value checks of every :mod:`lib` function on (the default) or off.

    In the spirit of ``torch.distributions.Distribution.set_default_validate_args``. With
    validation off, functions skip the checks that read tensor data (NaN, infinities, ranges,
    sums): no ``.item()`` or ``bool(tensor)`` synchronisation with the device, and bad values
    give NaN or wrong results instead of a ``ValueError``. Structural checks (types, dtypes,
    shapes, dimensions) still run. Use :class:`validate_args` to change the setting for a block
    and restore it afterwards.

    Args:
        value: True to validate, False to skip the value checks.

    Raises:
        TypeError: if ``value`` is not a bool.

    Example:
        >>> set_default_validate_args(False)
        >>> get_default_validate_args()
        False
        >>> set_default_validate_args(True)
    """
    global _validate_args
    _validate_args = check_bool(value, "value")


def get_default_validate_args() -> bool:
    """Whether value checks are on (set by :func:`set_default_validate_args`; default True).

    Example:
        >>> get_default_validate_args()
        True
    """
    return _validate_args


class validate_args(contextlib.ContextDecorator):
    """Context manager (or decorator) that sets validation for a block, then restores it.

    ``with validate_args(False):`` runs the block without value checks and puts back the
    previous setting on leaving it, also when the block raises. Blocks nest. The setting is
    global (as :func:`set_default_validate_args`), not per thread.

    Args:
        value: the setting inside the block (default True: validate, whatever the setting
            outside).

    Raises:
        TypeError: if ``value`` is not a bool.

    Example:
        >>> with validate_args(False):
        ...     get_default_validate_args()
        False
        >>> get_default_validate_args()
        True
    """

    def __init__(self, value: bool = True) -> None:
        self.value = check_bool(value, "value")
        self._previous: list[bool] = []

    def __enter__(self) -> validate_args:
        global _validate_args
        self._previous.append(_validate_args)  # a stack: the same object may be re-entered
        _validate_args = self.value
        return self

    def __exit__(self, *exc_info: object) -> None:
        global _validate_args
        _validate_args = self._previous.pop()


def validating() -> bool:
    """Whether value checks run now: validation is on and no graph is being compiled.

    Every check that reads tensor data is written ``if validating() and <bad>: raise ...``.
    While ``torch.compile`` traces a function, ``torch.compiler.is_compiling()`` is True and
    the checks are left out of the graph (they would synchronise with the device and break it).

    Example:
        >>> validating()
        True
    """
    return _validate_args and not _is_compiling()


# ---------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------


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
    ndim = 0
    for shape in shapes:  # (a loop, not max() of a generator: torch.compile traces this)
        ndim = max(ndim, len(shape))
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

    A 1-element tensor is read with ``.item()``: a conversion (the result is a Python float),
    not a value check, so it happens with validation off too. Checks of a Python number read
    no tensor data and always run.

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

    Structure (always): a floating-point tensor, ``dim`` one of its dimensions, with at least
    one category. Values (only while :func:`validating`): with an integer ``dim`` (categorical
    logits along ``dim``), entries must not be NaN or ``+inf``; ``-inf`` is allowed (a masked
    category, probability 0) as long as every slice along ``dim`` keeps at least one finite
    entry. With ``dim=None`` (independent Bernoulli logits, one per element): every entry must
    be finite.

    Args:
        logits: tensor of shape ``[..., K]`` (or any shape if ``dim`` is None).
        name: argument name used in messages.
        dim: the category dimension, or None for element-wise (Bernoulli) logits.

    Returns:
        ``logits`` unchanged.

    Raises:
        TypeError: if ``logits`` is not a floating-point tensor.
        ValueError: on an empty category dimension; with validation on, on NaN, ``+inf``,
            an all ``-inf`` slice or (for ``dim=None``) any infinite entry.
    """
    # structure; type-identity tests first, the helpers (and their messages) only if they fail
    if type(logits) is not Tensor or not logits.is_floating_point():
        check_tensor(logits, name)
    if dim is not None:
        ndim = logits.dim()
        if type(dim) is not int or not -ndim <= dim < ndim:
            dim = check_dim(logits, dim, tensor_name=name)
    if logits.numel() == 0:  # (a non-empty tensor has categories: one test on the hot path)
        if dim is not None and logits.shape[dim] == 0:
            raise ValueError(
                f"{name} must have at least one category along dim={dim}, got shape "
                f"{tuple(logits.shape)}"
            )
        return logits
    # values (validating(), inline): one read of the data in the common case, the diagnosis
    # only when the sum is not finite
    if _validate_args and not _is_compiling() and not math.isfinite(_sum_of(logits)):
        _diagnose_logits(logits.detach(), name, dim)
    return logits


#: Up to this many numbers, :func:`_sum_of` reads a tensor with ``.tolist()``.
_SMALL = 32


def _sum_of(x: Tensor) -> float:
    """The sum of the entries of the non-empty ``x``, as a Python float: one read of the data.

    It is finite exactly when no entry is NaN or infinite, unless it overflows. On a few
    numbers (up to 32, at most 2-D) ``.tolist()`` and Python's ``sum`` take a fraction of the
    time of a reduction kernel and ``.item()``; otherwise the kernel, on a detached alias where
    ``x`` requires grad (no autograd bookkeeping). Either way cheaper than ``torch.isfinite``,
    which allocates a mask.
    """
    if x.numel() <= _SMALL:
        ndim = x.dim()
        if ndim == 2:
            return sum(map(sum, x.tolist()))
        if ndim == 1:
            return sum(x.tolist())
        if ndim == 0:
            return x.item()
    return (x.detach() if x.requires_grad else x).sum().item()


def _diagnose_logits(logits: Tensor, name: str, dim: int | None) -> None:
    """The ValueError for (detached) ``logits`` with a non-finite sum, if an entry breaks a
    rule; nothing if the entries are fine (a finite sum that overflowed, or masked categories
    in categorical logits)."""
    low, high = torch.aminmax(logits)
    low, high = low.item(), high.item()
    if -math.inf < low and high < math.inf:  # finite entries whose sum overflows
        return
    with torch.no_grad():
        if math.isnan(low) or math.isnan(high):
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
        if high == math.inf:
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


def check_tau(
    tau: Any,
    name: str = "tau",
    *,
    like: Tensor | None = None,
    dim: int | None = None,
) -> float | Tensor:
    """Check a temperature: a finite number > 0, or a tensor of them.

    A Python number is always checked (no tensor data is read). For a tensor the dtype and shape
    are always checked, its values (finite, > 0) only while :func:`validating`.

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
        ValueError: if ``tau`` is not > 0, not finite (for a tensor: with validation on), or
            has an incompatible shape.
    """
    if type(tau) is float and 0.0 < tau < math.inf:  # the common case in one test (NaN fails)
        return tau
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
        if tau.numel() > 0 and validating() and not _positive_and_finite(tau):
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


def _positive_and_finite(tau: Tensor) -> bool:
    """Whether every entry of the non-empty ``tau`` is finite and > 0 (one sync)."""
    low, high = torch.aminmax(tau.detach()) if tau.numel() > 1 else (tau, tau)
    return 0.0 < low.item() and high.item() < math.inf


def check_broadcast(
    shapes: Sequence[Sequence[int]], names: Sequence[str], what: str = "shapes"
) -> torch.Size:
    """The broadcast of ``shapes``; a ValueError naming each argument if they do not broadcast.

    ``what`` says which part of the shapes is meant ("shapes", "batch shapes", ...).

    Example:
        >>> check_broadcast([(3, 1), (4,)], ["a", "b"])
        torch.Size([3, 4])
    """
    out = broadcast_shapes(*shapes)
    if out is None:
        listed = " and ".join(f"{n} {tuple(s)}" for n, s in zip(names, shapes))
        raise ValueError(f"the {what} of {listed} do not broadcast")
    return out


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
