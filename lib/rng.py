"""Random numbers for tensors on any device, from one ``torch.Generator``: the book's convention.

PyTorch draws with a generator only on that generator's device: a CPU generator cannot fill a
CUDA tensor, and a CUDA generator cannot fill a CPU one. Every ``generator`` argument of
:mod:`lib` follows one rule instead (see CONTRIBUTING.md, "Random numbers and devices"):

* ``generator`` is None or a ``torch.Generator`` whose device is the CPU or the device of the
  tensors being sampled for (:func:`lib._validation.check_generator` enforces it);
* the numbers are drawn on the GENERATOR's device, then moved to the tensors' device (no copy
  when the two are the same);
* with ``generator=None`` they are drawn on the tensors' device by its default generator.

So :func:`lib.utils.set_seed` returns a CPU generator and a seeded cell draws the same numbers
on a CPU and on a GPU (the results then agree up to floating-point rounding), and on the CPU
every helper below makes exactly the call to ``torch`` that it replaces: same numbers, same
order, same dtype.

Every random draw of :mod:`lib` goes through these helpers. They do not check their
arguments (:func:`lib.rng.rand_like` is on the hot path of the Gumbel samplers): a public
function checks its ``generator`` with :func:`lib._validation.check_generator` first.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "as_device",
    "draw_device",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randperm",
    "same_device",
    "standard_gamma",
]

DeviceLike = torch.device | str | None


def _default_device() -> torch.device:
    get = getattr(torch, "get_default_device", None)  # torch >= 2.3
    return get() if get is not None else torch.device("cpu")


def as_device(device: DeviceLike) -> torch.device:
    """``device`` as a ``torch.device``, with the index of the current CUDA device if none.

    Args:
        device: a ``torch.device``, a string such as ``"cuda"``, or None (the default device).

    Returns:
        A ``torch.device``.

    Example:
        >>> as_device(None), as_device("meta")
        (device(type='cpu'), device(type='meta'))
    """
    device = _default_device() if device is None else torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def same_device(a: DeviceLike, b: DeviceLike) -> bool:
    """Whether ``a`` and ``b`` name the same device (``"cuda"`` is the current CUDA device).

    Args:
        a: a ``torch.device``, a string such as ``"cuda:0"``, or None (the default device).
        b: the same.

    Returns:
        True if both name one device.

    Example:
        >>> same_device("cpu", torch.device("cpu")), same_device(None, "meta")
        (True, False)
    """
    if a is b:
        return True
    return as_device(a) == as_device(b)


def draw_device(generator: torch.Generator | None, device: DeviceLike) -> torch.device:
    """The device on which random numbers for tensors on ``device`` are drawn.

    The generator's device when a ``generator`` is given, ``device`` otherwise (its default
    generator). The caller moves the numbers to ``device`` when the two differ.

    Args:
        generator: None or a ``torch.Generator``.
        device: the device of the tensors being sampled for (None: the default device).

    Returns:
        A ``torch.device``.

    Example:
        >>> draw_device(torch.Generator(), "meta"), draw_device(None, "meta")
        (device(type='cpu'), device(type='meta'))
    """
    return as_device(device) if generator is None else generator.device


def _draw(factory, generator: torch.Generator | None, device: DeviceLike, **kwargs) -> Tensor:
    """``factory(..., generator=generator, device=...)`` under the book's convention."""
    if generator is None:
        return factory(generator=None, device=device, **kwargs)
    target = as_device(device)
    if generator.device == target:  # the common case: no copy
        return factory(generator=generator, device=device, **kwargs)
    return factory(generator=generator, device=generator.device, **kwargs).to(target)


def rand(
    shape: int | Sequence[int] | torch.Size,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: DeviceLike = None,
) -> Tensor:
    r"""Uniform numbers in :math:`[0, 1)` for ``device``, drawn on the generator's device.

    On the generator's own device this is ``torch.rand(shape, generator=generator,
    dtype=dtype, device=device)``, the same numbers.

    Args:
        shape: output shape: an int, a tuple of ints or a ``torch.Size``.
        generator: None or a ``torch.Generator`` on the CPU or on ``device``.
        dtype: floating-point dtype (None: the default dtype).
        device: device of the output (None: the default device).

    Returns:
        Tensor of shape ``shape`` on ``device``.

    Example:
        >>> u = rand((2, 3), generator=torch.Generator().manual_seed(0), device="meta")
        >>> u.device, u.shape
        (device(type='meta'), torch.Size([2, 3]))
    """
    size = (shape,) if isinstance(shape, int) else tuple(shape)
    return _draw(lambda **kw: torch.rand(size, **kw), generator, device, dtype=dtype)


def rand_like(like: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """``rand(like.shape, generator=generator, dtype=like.dtype, device=like.device)``.

    The same numbers, contiguous, with the cost of ``torch.empty_like(like).uniform_()`` on
    the fast path (no parsing of a shape, dtype and device: several microseconds per call on
    small tensors).

    Args:
        like: floating tensor ``[...]`` whose shape, dtype and device the output takes.
        generator: None or a ``torch.Generator`` on the CPU or on ``like``'s device.

    Returns:
        Contiguous tensor of the shape, dtype and device of ``like``, entries in [0, 1).

    Example:
        >>> rand_like(torch.zeros(2, device="meta"), generator=torch.Generator()).device
        device(type='meta')
    """
    # one call instead of two (empty_like, uniform_) and no memory_format to parse where
    # ``like`` is contiguous: the result is contiguous too, filled in the same order
    if generator is None:
        if like.is_contiguous():
            return torch.rand_like(like)
        return torch.empty_like(like, memory_format=torch.contiguous_format).uniform_()
    # is_cpu first: CPU tensors (with a CPU generator) never need the device comparison
    if like.is_cpu or generator.device == like.device:
        if _RAND_LIKE_TAKES_GENERATOR and like.is_contiguous():
            return torch.rand_like(like, generator=generator)
        return torch.empty_like(like, memory_format=torch.contiguous_format).uniform_(
            generator=generator
        )
    u = torch.empty(like.shape, dtype=like.dtype, device=generator.device)
    return u.uniform_(generator=generator).to(like.device)


def _rand_like_takes_generator() -> bool:
    """Whether ``torch.rand_like`` has a ``generator`` argument (recent torch; not 1.13)."""
    try:
        torch.rand_like(torch.empty(0, device="cpu"), generator=torch.Generator())
    except TypeError:
        return False
    return True


_RAND_LIKE_TAKES_GENERATOR = _rand_like_takes_generator()


def randn(
    shape: int | Sequence[int] | torch.Size,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: DeviceLike = None,
) -> Tensor:
    """Standard normal numbers for ``device``, drawn on the generator's device.

    On the generator's own device this is ``torch.randn(shape, generator=generator,
    dtype=dtype, device=device)``, the same numbers.

    Args:
        shape: output shape: an int, a tuple of ints or a ``torch.Size``.
        generator: None or a ``torch.Generator`` on the CPU or on ``device``.
        dtype: floating-point dtype (None: the default dtype).
        device: device of the output (None: the default device).

    Returns:
        Tensor of shape ``shape`` on ``device``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> torch.equal(randn(3, generator=g), torch.randn(3, generator=g.manual_seed(0)))
        True
    """
    size = (shape,) if isinstance(shape, int) else tuple(shape)
    return _draw(lambda **kw: torch.randn(size, **kw), generator, device, dtype=dtype)


def randint(
    high: int,
    size: int | Sequence[int] | torch.Size,
    *,
    low: int = 0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.int64,
    device: DeviceLike = None,
) -> Tensor:
    """Uniform integers in ``[low, high)`` for ``device``, drawn on the generator's device.

    On the generator's own device this is ``torch.randint(low, high, size, generator=...,
    dtype=dtype, device=device)``, the same numbers.

    Args:
        high: one above the largest integer drawn.
        size: output shape: an int, a tuple of ints or a ``torch.Size``.
        low: the smallest integer drawn.
        generator: None or a ``torch.Generator`` on the CPU or on ``device``.
        dtype: integer dtype of the output.
        device: device of the output (None: the default device).

    Returns:
        Tensor of shape ``size`` on ``device``.

    Example:
        >>> randint(10, (4,), generator=torch.Generator().manual_seed(0))
        tensor([4, 9, 3, 0])
    """
    size = (size,) if isinstance(size, int) else tuple(size)
    return _draw(lambda **kw: torch.randint(low, high, size, **kw), generator, device,
                 dtype=dtype)


def randperm(
    n: int,
    *,
    generator: torch.Generator | None = None,
    device: DeviceLike = None,
) -> Tensor:
    """A uniformly random permutation of ``0, ..., n - 1`` for ``device``.

    Drawn on the generator's device; there this is ``torch.randperm(n, generator=...,
    device=device)``, the same permutation.

    Args:
        n: length of the permutation.
        generator: None or a ``torch.Generator`` on the CPU or on ``device``.
        device: device of the output (None: the default device).

    Returns:
        LongTensor ``[n]`` on ``device``.

    Example:
        >>> randperm(5, generator=torch.Generator().manual_seed(0))
        tensor([4, 0, 1, 3, 2])
    """
    return _draw(lambda **kw: torch.randperm(n, **kw), generator, device)


def standard_gamma(concentration: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""Standard Gamma numbers (shape ``concentration``, rate 1), drawn on the generator's device.

    On the generator's own device this is ``torch._standard_gamma(concentration,
    generator=generator)``, the same numbers; otherwise the concentrations are moved to the
    generator's device for the draw and the numbers back to ``concentration``'s device.

    Args:
        concentration: floating tensor ``[...]`` of shapes > 0.
        generator: None or a ``torch.Generator`` on the CPU or on ``concentration``'s device.

    Returns:
        Tensor of ``concentration``'s shape, dtype and device.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> standard_gamma(torch.full((3,), 2.0), generator=g).shape
        torch.Size([3])
    """
    where = draw_device(generator, concentration.device)
    out = torch._standard_gamma(concentration.to(where), generator=generator)
    return out.to(concentration.device)
