"""The grader's child process: run one submission's code, then collect every question's probe data.

Usage (by :mod:`lib.grading.runner`, never by hand)::

    python -m lib.grading.sandbox NOTEBOOK SET --fd N [--skip 3,7] [--cell-timeout S]
                                  [--probe-timeout S]

This process executes student code, so nothing it sends is trusted for *judging*: it only
sends probe data (JSON lines; arrays as raw numeric bytes, never pickles) through the pipe on
file descriptor N, and the parent process, which never runs student code, makes every decision.
Using a pipe rather than files means a submission that deletes or rewrites files in its working
directory cannot lose its own results.

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


def data_event(name: str, data: Dict[str, Any]) -> Dict[str, Any]:
    """The JSON event carrying one question's probe data."""
    arrays: Dict[str, np.ndarray] = {}
    plain = encode(data, arrays)
    packed = {}
    for key, arr in arrays.items():
        if arr.dtype.kind not in "biuf":
            arr = arr.astype(np.float64)
        arr = np.ascontiguousarray(arr)
        packed[key] = {"dtype": arr.dtype.str, "shape": list(arr.shape),
                       "b64": base64.b64encode(arr.tobytes()).decode("ascii")}
    return {"question": name, "state": "data", "data": plain, "arrays": packed}


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("notebook")
    ap.add_argument("exercise_set")
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("--skip", default="")
    ap.add_argument("--cell-timeout", type=int, default=60)
    ap.add_argument("--probe-timeout", type=int, default=60)
    ap.add_argument("--extra", action="append", default=[], help="instructors' extra checks")
    args = ap.parse_args(argv)

    skip = {int(s) for s in args.skip.split(",") if s.strip()}
    nb = json.loads(Path(args.notebook).read_text())

    # Everything the checks use is imported before any student code runs: a submission that
    # deletes its working directory or shadows a module name cannot break the imports.
    import scipy.stats  # noqa: F401
    import torch  # noqa: F401

    from lib.grading.core import collect
    from lib.grading.sets import get_set, load_extra

    for path in args.extra:
        load_extra(path)
    questions = list(get_set(args.exercise_set).questions.values())
    channel = os.fdopen(args.fd, "w", buffering=1)

    def log(**event: Any) -> None:
        channel.write(json.dumps(event) + "\n")
        channel.flush()

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

    for index, source in enumerate(code_cells(nb)):
        if index in skip:
            log(cell=index, state="skipped")
            continue
        if is_check_cell(source):
            continue
        log(cell=index, state="start")
        signal.alarm(args.cell_timeout)
        try:
            result = shell.run_cell(source, store_history=False, silent=True)
        except CellTimeout:
            result = None
        finally:
            signal.alarm(0)
        error = None
        if result is None:
            error = "CellTimeout: time limit reached"
        elif result.error_before_exec is not None or result.error_in_exec is not None:
            exc = result.error_before_exec or result.error_in_exec
            error = f"{type(exc).__name__}: {exc}"[:300]
        log(cell=index, state="done", error=error)

    namespace = shell.user_ns
    for q in questions:
        log(question=q.name, state="start")
        signal.alarm(args.probe_timeout)
        try:
            data = collect(q, namespace)
        except CellTimeout:
            data = {"__timeout__": f"Checking {q.name} took longer than {args.probe_timeout} s: "
                    "is your code very slow or stuck in a loop?"}
        except BaseException as exc:  # noqa: BLE001 - SystemExit etc. from student code
            data = {"__error__": f"Running your code raised {type(exc).__name__}: {exc}"[:300]}
        finally:
            signal.alarm(0)
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
