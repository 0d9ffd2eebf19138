"""Helpers that probes share: seeding, reading a student's source, calling student code safely."""

from __future__ import annotations

import inspect
import io
import random
import tokenize
from typing import Any, Callable, Optional, Tuple

import numpy as np

__all__ = ["seed_all", "source_of", "code_of", "attempt"]


def seed_all(seed: int) -> None:
    """Seed every generator a student might use without passing one (random, numpy, torch)."""
    random.seed(seed)
    np.random.seed(seed)
    import torch

    torch.manual_seed(seed)


def source_of(fn: Any) -> str:
    """The source code of a student's function ("" when unavailable)."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


def code_of(fn: Any) -> str:
    """The source of ``fn`` without comments and strings (so a comment cannot trip a check)."""
    source = source_of(fn)
    if not source:
        return ""
    try:
        tokens = tokenize.generate_tokens(io.StringIO(source).readline)
        return " ".join(t.string for t in tokens
                        if t.type not in (tokenize.COMMENT, tokenize.STRING))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return source


def attempt(fn: Callable, *args: Any, **kwargs: Any) -> Tuple[Any, Optional[str]]:
    """Call student code; return ``(value, None)`` or ``(None, "ErrorType: message")``."""
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - the student's error becomes feedback
        return None, f"{type(exc).__name__}: {exc}"[:300]
