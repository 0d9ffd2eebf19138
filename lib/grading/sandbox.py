"""The grader's child process: run one submission's code, then collect every question's probe data.

Usage (by :mod:`lib.grading.runner`, never by hand)::

    python -m lib.grading.sandbox NOTEBOOK SET [--skip 3,7] [--cell-timeout S]

The runner starts it inside the sandbox of :mod:`lib.grading.isolation` and writes one JSON line
to its standard input before anything else happens: the number of the pipe's file descriptor,
a random token, and the source of the instructors' extra (hidden) checks. Nothing of this is in
the command line or on a disk the child can see. The child keeps the token in a closure, closes
standard input, and tags every event it sends with it; the runner drops events without it, so a
submission that writes to the pipe directly (or to every file descriptor it finds) sends nothing
the runner accepts.

This process executes student code, so nothing it sends is trusted for *judging*: it only
sends probe data (JSON lines; arrays as raw numeric bytes, never pickles), and the parent
process, which never runs student code, makes every decision.

Events are sent before and after each cell, so the parent can tell which cell hung or killed the
process and skip it on the next attempt.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

CHECK_CALL = re.compile(r"""grader\s*\.\s*check\(\s*["']([A-Za-z0-9_]+)["']""")
CHECK_LINE = re.compile(r"^\s*(grader\s*\.\s*check(_all)?\s*\(.*\)\s*;?\s*|#.*)?$")
OUTPUT_CAP = 20_000  # characters of a submission's output kept (the rest is dropped)


class CappedWriter(io.TextIOBase):
    """A text stream that keeps the first OUTPUT_CAP characters and drops the rest."""

    def __init__(self) -> None:
        self.kept: List[str] = []
        self.size = 0

    def write(self, s: str) -> int:  # type: ignore[override]
        if self.size < OUTPUT_CAP:
            self.kept.append(s[: OUTPUT_CAP - self.size])
        self.size += len(s)
        return len(s)

    def writable(self) -> bool:
        return True


class CellTimeout(Exception):
    """Raised by SIGALRM when a cell or a probe runs longer than allowed."""


def _alarm(signum, frame):  # noqa: ARG001
    raise CellTimeout("time limit reached")


def is_check_cell(source: str) -> bool:
    """True for cells that only call ``grader.check(...)`` (the grader does not run them)."""
    lines = [ln for ln in source.splitlines() if ln.strip()]
    return bool(lines) and all(CHECK_LINE.match(ln) for ln in lines)


def code_cells(nb: Dict[str, Any]) -> List[str]:
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            cells.append("".join(src) if isinstance(src, list) else str(src))
    return cells


def encode(data: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> Any:
    """Plain-JSON form of probe data; arrays are moved to ``arrays`` and referenced by key."""

    def walk(x: Any) -> Any:
        if type(x).__module__.startswith("torch") and hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        if isinstance(x, np.ndarray):
            key = f"a{len(arrays)}"
            arrays[key] = np.asarray(x, dtype=np.float64) if x.dtype == object else x
            return {"__array__": key}
        if isinstance(x, (np.floating, np.integer, np.bool_)):
            return x.item()
        if isinstance(x, dict):
            return {str(k): walk(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v) for v in x]
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        return str(x)

    return walk(data)


def cell_budgets(cells: List[str], questions: Dict[str, Any], default: float) -> List[float]:
    """Seconds allowed for each code cell: the budget of the question checked next (the
    notebook states each question's budget), ``default`` for cells after the last check."""
    budgets: List[float] = [default] * len(cells)
    upcoming = default
    for index in range(len(cells) - 1, -1, -1):
        names = CHECK_CALL.findall(cells[index])
        if names and names[0] in questions:
            upcoming = float(questions[names[0]].seconds)
        budgets[index] = upcoming
    return budgets


def data_event(name: str, data: Dict[str, Any]) -> Dict[str, Any]:
    """The JSON event carrying one question's probe data."""
    arrays: Dict[str, np.ndarray] = {}
    plain = encode(data, arrays)
    packed = {}
    for key, arr in arrays.items():
        if arr.dtype.kind not in "biuf":
            arr = arr.astype(np.float64)
        arr = np.ascontiguousarray(arr).reshape(arr.shape)  # 0-d arrays stay 0-d
        packed[key] = {"dtype": arr.dtype.str, "shape": list(arr.shape),
                       "b64": base64.b64encode(arr.tobytes()).decode("ascii")}
    return {"question": name, "state": "data", "data": plain, "arrays": packed}


def _load_hidden(sources: List[str]) -> None:
    """Register the instructors' extra checks from their source text (never a file the child
    can read), keep only their probes, and forget the source."""
    import dataclasses
    import types

    from lib.grading.sets import all_sets

    before = {(s.name, q) for s in all_sets().values() for q in s.questions}
    for i, source in enumerate(sources):
        module = types.ModuleType(f"_extra_checks_{i}")
        exec(compile(source, f"<extra checks {i}>", "exec"), module.__dict__)
        judges = []
        for exercise_set in all_sets().values():
            for name, q in list(exercise_set.questions.items()):
                if (exercise_set.name, name) not in before:
                    judges.append(q.judge)
                    exercise_set.questions[name] = dataclasses.replace(q, judge=_no_judge)
        for key, value in list(module.__dict__.items()):  # the judges' code goes too
            if any(value is j for j in judges):
                del module.__dict__[key]
    sources.clear()


def _snapshot() -> List[Any]:
    """The grader's own modules and classes as they are before any student code runs."""
    import builtins
    import threading

    saved = []
    names = [n for n in sys.modules if n.startswith("lib.grading")]
    for name in [*names, "sys", "threading", "builtins"]:
        module = sys.modules.get(name)
        if module is None:
            continue
        saved.append((module.__dict__, dict(module.__dict__)))
        for value in list(module.__dict__.values()):
            if isinstance(value, type) and value.__module__ == name:
                saved.append((value, dict(vars(value))))
    del builtins, threading
    return saved


def _restore(saved: List[Any]) -> None:
    """Undo what student code did to the grader's modules and classes (monkey-patching
    ``collect``, the rule watcher, ``sys.setprofile``...) before probing."""
    for target, original in saved:
        if isinstance(target, dict):
            for key in [k for k in target if k not in original]:
                del target[key]
            target.update(original)
        else:
            for key in [k for k in vars(target) if k not in original]:
                try:
                    delattr(target, key)
                except (AttributeError, TypeError):
                    pass
            for key, value in original.items():
                if vars(target).get(key) is not value:
                    try:
                        setattr(target, key, value)
                    except (AttributeError, TypeError):
                        pass


def _no_judge(data):  # the child never judges
    raise RuntimeError("judged in the grading process only")


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("notebook")
    ap.add_argument("exercise_set")
    ap.add_argument("--skip", default="")
    ap.add_argument("--cell-timeout", type=float, default=0,
                    help="seconds per cell (default: the next checked question's budget)")
    args = ap.parse_args(argv)

    config = json.loads(sys.stdin.readline() or "{}")
    fd, extra = int(config["fd"]), list(config.get("extra") or [])
    channel = os.fdopen(fd, "w", buffering=1)
    stdin = os.open(os.devnull, os.O_RDONLY)
    os.dup2(stdin, 0)

    def make_log(token: str):
        def log(**event: Any) -> None:
            event["token"] = token
            channel.write(json.dumps(event) + "\n")
            channel.flush()
        return log

    log = make_log(str(config.pop("token")))
    config.clear()

    skip = {int(s) for s in args.skip.split(",") if s.strip()}
    nb = json.loads(Path(args.notebook).read_text())

    # Everything the checks use is imported before any student code runs: a submission that
    # deletes its working directory or shadows a module name cannot break the imports.
    import scipy.integrate  # noqa: F401
    import scipy.stats  # noqa: F401
    import torch  # noqa: F401

    import lib.grading.probing  # noqa: F401
    import lib.grading.sets as sets_module
    from lib.grading.core import collect
    from lib.grading.sets import get_set

    _load_hidden(extra)
    exercise_set = get_set(args.exercise_set)
    for set_name in sets_module.list_sets():
        get_set(set_name)
    saved = _snapshot()
    questions = list(exercise_set.questions.values())
    cells = code_cells(nb)
    default_budget = max([q.seconds for q in questions] or [60.0])
    budgets = cell_budgets(cells, exercise_set.questions, default_budget)

    # Submissions print into a capped buffer; anything written to the raw file descriptors
    # (C extensions, subprocesses) goes to /dev/null.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout = CappedWriter()
    sys.stderr = CappedWriter()
    os.environ["MPLBACKEND"] = "Agg"
    signal.signal(signal.SIGALRM, _alarm)

    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance(colors="nocolor")
    shell.showtraceback = lambda *a, **k: None  # errors are recorded below, not printed

    for index, source in enumerate(cells):
        if index in skip:
            log(cell=index, state="skipped")
            continue
        if is_check_cell(source):
            continue
        log(cell=index, state="start")
        signal.setitimer(signal.ITIMER_REAL, args.cell_timeout or budgets[index])
        try:
            result = shell.run_cell(source, store_history=False, silent=True)
        except CellTimeout:
            result = None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        error = None
        if result is None:
            error = "CellTimeout: time limit reached"
        elif result.error_before_exec is not None or result.error_in_exec is not None:
            exc = result.error_before_exec or result.error_in_exec
            error = f"{type(exc).__name__}: {exc}"[:300]
        log(cell=index, state="done", error=error)

    namespace = shell.user_ns
    _restore(saved)
    for q in questions:
        log(question=q.name, state="start")
        signal.setitimer(signal.ITIMER_REAL, q.seconds)
        try:
            data = collect(q, namespace)
        except CellTimeout:
            data = {"__timeout__": f"Checking {q.name} took longer than its {q.seconds:g} s "
                    "budget: is your code very slow or stuck in a loop?"}
        except BaseException as exc:  # noqa: BLE001 - SystemExit etc. from student code
            data = {"__error__": f"Running your code raised {type(exc).__name__}: {exc}"[:300]}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        try:
            event = data_event(q.name, data)
        except Exception as exc:  # noqa: BLE001 - unencodable data is the answer's problem
            event = data_event(q.name, {"__error__": f"Your answer could not be recorded: {exc}"})
        log(**event)
    log(state="finished")
    channel.close()
    os._exit(0)  # skip interpreter teardown: student objects' __del__ cannot interfere


if __name__ == "__main__":
    sys.exit(main())
