"""Helpers that probes share: seeding, reading a student's source, calling student code safely."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import random
import sys
import threading
import tokenize
import types
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np

__all__ = ["seed_all", "source_of", "code_of", "attempt", "NotAllowed", "Watcher",
           "pinned_torch", "resolve"]


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


# ----------------------------------------------------------------------------------------------
# Rules enforced by behaviour: what the answer calls while it is probed
# ----------------------------------------------------------------------------------------------


class NotAllowed(Exception):
    """Raised inside student code that calls a function its question forbids."""


def resolve(dotted: str) -> Any:
    """The object a dotted name refers to (``"numpy.random.Generator.gumbel"``)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def _functions_of(obj: Any, module_name: Optional[str] = None) -> Iterator[Any]:
    """Python functions (and methods of classes) defined in a module or class."""
    items = vars(obj).values() if isinstance(obj, (type, types.ModuleType)) else ()
    for value in list(items):
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property):
            yield from (f for f in (value.fget, value.fset) if f is not None)
        elif isinstance(value, types.FunctionType):
            if module_name is None or value.__module__ == module_name:
                yield value
        elif isinstance(value, type) and module_name is not None and \
                value.__module__ == module_name:
            yield from _functions_of(value)


def _is_python_callable(obj: Any) -> bool:
    return isinstance(obj, (types.FunctionType, types.ModuleType, type,
                            types.BuiltinFunctionType, types.MethodDescriptorType,
                            types.WrapperDescriptorType)) or hasattr(obj, "__wrapped__") or (
        isinstance(obj, types.MethodType) and isinstance(obj.__func__, types.FunctionType))


def _is_compiled(obj: Any) -> bool:
    """Cython functions and methods: the profiler never sees their calls."""
    base = obj.__func__ if type(obj) is types.MethodType else obj
    return "cython_function" in type(base).__name__


def _type_dict(klass: type) -> Dict[str, Any]:
    import gc

    return gc.get_referents(klass.__dict__)[0]


def _type_modified(klass: type) -> None:
    import ctypes

    ctypes.pythonapi.PyType_Modified(ctypes.py_object(klass))


def _own(functions: Iterator[Any], filename: Optional[str]) -> Iterator[Any]:
    """Only functions written in ``filename``: code generated elsewhere and shared (a
    namedtuple's ``_asdict``, a dataclass helper) would otherwise match every user of it."""
    for fn in functions:
        if filename is None or fn.__code__.co_filename == filename:
            yield fn


class Watcher:
    """Watch every call made while probing: a call to a *forbidden* target raises
    :class:`NotAllowed` and is recorded in ``violations``; a call to a *watched* target is
    recorded in ``called``. Aliases, ``getattr`` and helpers are all seen:

    * Python functions and classes, and C builtins, through ``sys.setprofile``;
    * compiled (Cython) methods such as NumPy's samplers, which the profiler cannot see, are
      replaced for the duration by a stub that raises: in their class (so any Generator's
      ``.gumbel`` is caught), in every module that exports them (``np.random.gumbel``), and
      wherever the answer holds a reference to them (module-level aliases, default arguments,
      closures, ``functools.partial``).

    Targets are dotted names of modules (every function and class defined there; for a package,
    in it and in every submodule imported so far), classes, Python functions, builtin functions
    or methods (``"numpy.random.Generator.gumbel"`` matches the method on every Generator), or
    objects such as ``scipy.stats.gumbel_r`` (every method called on an object of that type: a
    scipy distribution and its frozen copies). Everything is restored on exit.
    """

    def __init__(self, forbidden: Sequence[str] = (), watch: Sequence[str] = (),
                 roots: Sequence[Any] = ()):
        self.roots = list(roots)
        self.compiled: List[Tuple[str, Any]] = []  # (name, target) patched, not profiled
        self.owners: Dict[str, type] = {}
        self._undo: List[Callable[[], None]] = []
        self.forbidden = set(forbidden)
        self.violations: List[str] = []
        self.called: Set[str] = set()
        self.codes: Dict[Any, str] = {}
        self.builtin_ids: Dict[int, str] = {}
        self.methods: Dict[str, List[Tuple[type, str]]] = {}
        self.instances: Dict[Any, Dict[type, str]] = {}
        self._keep: List[Any] = []
        for name in (*forbidden, *watch):
            self._index(name, resolve(name))
        self._saved: Any = None

    def _index(self, name: str, obj: Any) -> None:
        self._keep.append(obj)
        if _is_compiled(obj):
            self.compiled.append((name, obj))
            parent = resolve(name.rsplit(".", 1)[0]) if "." in name else None
            if isinstance(parent, type):
                self.owners[name] = parent
            return
        if isinstance(obj, types.ModuleType):
            modules = [obj]
            if hasattr(obj, "__path__"):  # a package: its submodules too (lib.rationales.data)
                prefix = obj.__name__ + "."
                modules += [m for n, m in sorted(list(sys.modules.items()))
                            if n.startswith(prefix) and isinstance(m, types.ModuleType)]
            for module in modules:
                for fn in _own(_functions_of(module, module.__name__),
                               getattr(module, "__file__", None)):
                    self.codes[fn.__code__] = name
        elif isinstance(obj, type):
            module = sys.modules.get(obj.__module__)
            for fn in _own(_functions_of(obj), getattr(module, "__file__", None)):
                self.codes[fn.__code__] = name
            if obj.__init__ is not object.__init__ and not hasattr(obj.__init__, "__code__"):
                self.methods.setdefault("__init__", []).append((obj, name))
        elif isinstance(obj, types.FunctionType) or hasattr(obj, "__wrapped__"):
            self.codes[inspect.unwrap(obj).__code__] = name
        elif isinstance(obj, (types.BuiltinFunctionType, types.MethodDescriptorType,
                              types.WrapperDescriptorType)):
            owner = getattr(obj, "__objclass__", None)
            self_ = getattr(obj, "__self__", None)
            if owner is None and self_ is not None and not isinstance(self_, types.ModuleType):
                owner = type(self_)
            if owner is not None:
                self.methods.setdefault(obj.__name__, []).append((owner, name))
            else:
                self.builtin_ids[id(obj)] = name
        elif isinstance(obj, types.MethodType):
            self.codes[obj.__func__.__code__] = name
        else:  # an object: every Python method called on it
            for klass in type(obj).__mro__:  # (also copies: a frozen scipy distribution)
                for fn in _functions_of(klass):
                    self.instances.setdefault(fn.__code__, {})[type(obj)] = name

    def _hit(self, name: str) -> None:
        if name in self.forbidden:
            if name not in self.violations:
                self.violations.append(name)
            raise NotAllowed(f"`{name}` is not allowed in this question")
        self.called.add(name)

    def _profile(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            name = self.codes.get(code)
            if name is None and code in self.instances:
                owner = frame.f_locals.get("self")
                name = self.instances[code].get(type(owner))
            if name is not None:
                self._hit(name)
        elif event == "c_call":
            name = self.builtin_ids.get(id(arg))
            if name is None:
                owners = self.methods.get(getattr(arg, "__name__", ""))
                if owners:
                    self_ = getattr(arg, "__self__", None)
                    for owner, label in owners:
                        if isinstance(self_, owner):
                            name = label
                            break
            if name is not None:
                self._hit(name)

    def __enter__(self) -> Watcher:
        if self.compiled:
            try:
                self._patch_compiled()
            except BaseException:
                self._restore()
                raise
        if self.codes or self.builtin_ids or self.methods or self.instances:
            self._saved = (sys.getprofile(), threading.getprofile())
            threading.setprofile(self._profile)
            sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._saved is not None:
            sys.setprofile(self._saved[0])
            threading.setprofile(self._saved[1])
            self._saved = None
        self._restore()

    def _restore(self) -> None:
        while self._undo:
            self._undo.pop()()

    # -- compiled targets ----------------------------------------------------------------------
    def _stub(self, name: str) -> Callable[..., Any]:
        watcher = self

        def not_allowed(*args: Any, **kwargs: Any) -> Any:
            watcher._hit(name)

        not_allowed.__name__ = name.rsplit(".", 1)[-1]
        return not_allowed

    def _match(self, value: Any) -> Optional[str]:
        """The target name ``value`` is (or is bound from), else None. Identity only."""
        func = value.__func__ if type(value) is types.MethodType else None
        for name, target in self.compiled:
            base = target.__func__ if type(target) is types.MethodType else target
            if value is target or value is base or (func is not None and func is base):
                return name
        return None

    def _set(self, container: Any, key: Any, value: Any) -> None:
        old = container[key]
        container[key] = value

        def undo() -> None:
            container[key] = old
        self._undo.append(undo)

    def _patch_compiled(self) -> None:
        bases = []
        for name, target in self.compiled:
            base = target.__func__ if type(target) is types.MethodType else target
            owner = self.owners.get(name)
            if owner is None and type(target) is types.MethodType:
                owner = type(target.__self__)
            attr = getattr(base, "__name__", None)
            if owner is not None and attr:
                for klass in owner.__mro__:
                    tdict = _type_dict(klass)
                    if tdict.get(attr) is base:
                        self._set(tdict, attr, self._stub(name))
                        _type_modified(klass)
                        self._undo.append(lambda k=klass: _type_modified(k))
            bases.append(base)
        for module in list(sys.modules.values()):  # np.random.gumbel and its re-exports
            mdict = getattr(module, "__dict__", None)
            if not isinstance(mdict, dict):
                continue
            for key, value in list(mdict.items()):
                if callable(value):
                    name = self._match(value)
                    if name is not None:
                        self._set(mdict, key, self._stub(name))
        self._scan(self.roots)

    def _scan(self, roots: Sequence[Any], limit: int = 50_000) -> None:
        """Replace references to compiled targets held by the answer's own objects."""
        import functools

        library = {id(m.__dict__) for n, m in list(sys.modules.items())
                   if n != "__main__" and hasattr(m, "__dict__")}
        seen: Set[int] = set()
        queue: List[Any] = list(roots)
        while queue and len(seen) < limit:
            obj = queue.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, dict):
                if id(obj) in library:
                    continue
                for key, value in list(obj.items()):
                    name = self._match(value) if callable(value) else None
                    if name is not None:
                        self._set(obj, key, self._stub(name))
                    else:
                        queue.append(value)
            elif isinstance(obj, list):
                for i, value in enumerate(obj):
                    name = self._match(value) if callable(value) else None
                    if name is not None:
                        self._set(obj, i, self._stub(name))
                    else:
                        queue.append(value)
            elif isinstance(obj, (tuple, set, frozenset)):
                queue.extend(obj)
            elif isinstance(obj, types.FunctionType):
                if id(obj.__globals__) not in library:
                    queue.append(obj.__globals__)
                for cell in obj.__closure__ or ():
                    try:
                        value = cell.cell_contents
                    except ValueError:
                        continue
                    name = self._match(value) if callable(value) else None
                    if name is not None:
                        old = value
                        cell.cell_contents = self._stub(name)
                        self._undo.append(lambda c=cell, o=old: setattr(c, "cell_contents", o))
                    else:
                        queue.append(value)
                for attr in ("__defaults__", "__kwdefaults__"):
                    value = getattr(obj, attr)
                    if isinstance(value, tuple) and any(self._match(v) for v in value
                                                        if callable(v)):
                        new = tuple(self._stub(self._match(v)) if callable(v) and self._match(v)
                                    else v for v in value)
                        setattr(obj, attr, new)
                        self._undo.append(lambda f=obj, a=attr, o=value: setattr(f, a, o))
                    elif value is not None:
                        queue.append(value)
            elif isinstance(obj, functools.partial):
                state = obj.__reduce__()[2]
                name = self._match(obj.func)
                if name is not None:
                    obj.__setstate__((self._stub(name), *state[1:]))
                    self._undo.append(lambda p=obj, st=state: p.__setstate__(st))
                queue.extend([obj.args, obj.keywords])
            elif isinstance(obj, types.MethodType):
                queue.extend([obj.__func__, obj.__self__])
            elif isinstance(obj, type):
                if obj.__module__ in ("__main__", "builtins") or obj.__module__ not in sys.modules:
                    for key, value in list(vars(obj).items()):
                        name = self._match(value) if callable(value) else None
                        if name is not None:
                            setattr(obj, key, self._stub(name))
                            self._undo.append(lambda c=obj, k=key, o=value: setattr(c, k, o))
                        else:
                            queue.append(value)
            elif isinstance(obj, (staticmethod, classmethod)):
                queue.append(obj.__func__)
            elif hasattr(obj, "__dict__") and not isinstance(obj, types.ModuleType):
                mod = type(obj).__module__
                if mod in ("__main__", "builtins") or mod not in sys.modules or \
                        mod.startswith("torch.nn"):
                    queue.append(vars(obj))
                    queue.append(type(obj))


@contextlib.contextmanager
def pinned_torch(dtype: str | None = None) -> Iterator[None]:
    """Probe and judge under the same torch settings: gradients on, and the default dtype
    ``dtype`` (a name such as ``"torch.float64"``; None keeps the current one). Restored
    afterwards.

    The probe runs under the notebook's own default dtype (the sets whose chapters train set
    float64, and their answers are re-run under it); :func:`lib.grading.core.collect` records
    it, and the judge, which runs in another process, is pinned to the same one, so a model it
    builds has the probe's dtype in the notebook and in the batch grader alike."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    old_dtype, grad = torch.get_default_dtype(), torch.is_grad_enabled()
    if dtype is not None:
        wanted = {"torch.float32": torch.float32, "torch.float64": torch.float64}.get(dtype)
        if wanted is None:
            raise ValueError(f"dtype must be 'torch.float32' or 'torch.float64', got {dtype!r}")
        torch.set_default_dtype(wanted)
    torch.set_grad_enabled(True)
    try:
        yield
    finally:
        torch.set_default_dtype(old_dtype)
        torch.set_grad_enabled(grad)
