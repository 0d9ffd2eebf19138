"""Grade submitted exercise notebooks: one sandboxed child process each, judged here.

:func:`grade_notebook` grades one file and never raises for anything a submission contains;
:func:`grade_folder` grades every ``.ipynb`` in a folder and writes ``grades.csv`` plus one
feedback file per submission. The command line is ``python -m lib.grading`` (``make grade``).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from lib.grading.core import Result, decide, format_result
from lib.grading.sets import get_set, list_sets

__all__ = ["Submission", "grade_notebook", "grade_folder", "detect_set"]

SET_CALL = re.compile(r"""Checker\(\s*["']([a-z][a-z0-9_]*)["']\s*\)""")


@dataclass
class Submission:
    """The grade of one submitted file."""

    path: Path
    exercise_set: Optional[str]
    results: List[Result] = field(default_factory=list)
    status: str = "ok"
    notes: List[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def max_total(self) -> float:
        return get_set(self.exercise_set).total_points if self.exercise_set else 0.0

    def feedback(self) -> str:
        lines = [f"Submission: {self.path.name}"]
        if self.exercise_set:
            lines.append(f"Exercise set: {self.exercise_set}")
        lines.append(f"Status: {self.status}")
        lines += [f"Note: {n}" for n in self.notes]
        lines.append("")
        lines += [format_result(r) for r in self.results]
        if self.exercise_set:
            lines.append(f"\nTotal: {self.total:g} / {self.max_total:g} points")
        return "\n".join(lines) + "\n"


def detect_set(nb: Dict[str, Any]) -> Optional[str]:
    """The exercise set of a notebook: its metadata first, else its ``Checker("...")`` call."""
    known = set(list_sets())
    meta = nb.get("metadata", {})
    name = meta.get("exercise_set") if isinstance(meta, dict) else None
    if isinstance(name, str) and name in known:
        return name
    for cell in nb.get("cells", []):
        src = cell.get("source", "") if isinstance(cell, dict) else ""
        src = "".join(src) if isinstance(src, list) else str(src)
        m = SET_CALL.search(src)
        if m and m.group(1) in known:
            return m.group(1)
    return None


def decode_data(event: Dict[str, Any]) -> Dict[str, Any]:
    """Probe data from a sandbox event: JSON plus raw numeric arrays (never unpickled)."""
    try:
        arrays = {}
        for key, spec in (event.get("arrays") or {}).items():
            dtype = np.dtype(spec["dtype"])
            if dtype.kind not in "biuf":
                raise ValueError("non-numeric array")
            raw = base64.b64decode(spec["b64"])
            arrays[key] = np.frombuffer(raw, dtype=dtype).reshape(spec["shape"]).copy()

        def walk(x: Any) -> Any:
            if isinstance(x, dict):
                if set(x) == {"__array__"}:
                    return arrays[x["__array__"]]
                return {k: walk(v) for k, v in x.items()}
            if isinstance(x, list):
                return [walk(v) for v in x]
            return x

        data = walk(event.get("data"))
    except Exception:  # noqa: BLE001 - malformed by the submission
        return {"__error__": "The grader could not read what your code produced."}
    return data if isinstance(data, dict) else {"__error__": "Unreadable grader data."}


def _run_child(nb_path: Path, set_name: str, skip: Sequence[int], timeout: float,
               cell_timeout: int, probe_timeout: int,
               extra: Sequence[Path] = ()) -> Tuple[str, List[Dict[str, Any]]]:
    """Run the sandbox once; returns ("finished" | "timeout" | "crashed", events)."""
    read_fd, write_fd = os.pipe()
    cmd = [sys.executable, "-m", "lib.grading.sandbox", str(nb_path), set_name,
           "--fd", str(write_fd), "--skip", ",".join(map(str, skip)),
           "--cell-timeout", str(cell_timeout), "--probe-timeout", str(probe_timeout)]
    for path in extra:
        cmd += ["--extra", str(Path(path).resolve())]
    work = nb_path.parent
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", HOME=str(work),
               MPLCONFIGDIR=str(work / ".mpl"), PYTHONNOUSERSITE="1")
    env.pop("BOOK_LIB_SOURCE", None)
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            pass_fds=(write_fd,), start_new_session=True)
    os.close(write_fd)
    events: List[Dict[str, Any]] = []
    reader = threading.Thread(target=_read_events, args=(read_fd, events), daemon=True)
    reader.start()
    state = "crashed"
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        state = "timeout"
    finally:
        _kill(proc)  # also ends anything the submission started in the background
    reader.join(timeout=10)
    if state != "timeout" and events and events[-1].get("state") == "finished":
        state = "finished"
    return state, list(events)


MAX_EVENT_BYTES = 64 * 1024 * 1024


def _read_events(fd: int, events: List[Dict[str, Any]]) -> None:
    with os.fdopen(fd, "rb") as pipe:
        total = 0
        for line in pipe:
            total += len(line)
            if total > MAX_EVENT_BYTES:
                break
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def grade_notebook(path: Path | str, *, timeout: float = 180, cell_timeout: int = 60,
                   probe_timeout: int = 60, attempts: int = 3,
                   extra: Sequence[Path | str] = ()) -> Submission:
    """Grade one notebook file. Never raises for anything inside the file.

    Args:
        path: the submitted file.
        timeout: wall-clock limit in seconds for one run of the whole notebook.
        cell_timeout: limit for one code cell (a cell over it counts as raising).
        probe_timeout: limit for checking one question.
        attempts: runs allowed; a run killed by the wall-clock limit or a crash is repeated with
            the guilty cell skipped, so the other questions are still graded.
        extra: instructors' files of extra (hidden) checks, already loaded in this process with
            :func:`lib.grading.sets.load_extra`; the sandbox loads them too.
    """
    path = Path(path)
    start = time.monotonic()
    sub = Submission(path=path, exercise_set=None)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        sub.status = f"unreadable file ({exc.strerror})"
        return sub
    if not raw.strip():
        sub.status = "empty file"
        return sub
    try:
        nb = json.loads(raw.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        sub.status = f"not valid JSON (line {exc.lineno}): not a notebook"
        return sub
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        sub.status = "not a Jupyter notebook (no cells)"
        return sub
    name = detect_set(nb)
    if name is None:
        sub.status = "unknown exercise set (no exercise_set metadata or Checker call)"
        return sub
    sub.exercise_set = name
    questions = get_set(name).questions

    work = Path(tempfile.mkdtemp(prefix="grade-"))
    try:
        copy = work / "submission.ipynb"
        copy.write_text(json.dumps(nb))
        skip: List[int] = []
        state, events = "crashed", []
        for _ in range(attempts):
            state, events = _run_child(copy, name, skip, timeout, cell_timeout, probe_timeout,
                                       [Path(p) for p in extra])
            if state == "finished":
                break
            guilty = _guilty_cell(events)
            if guilty is None or guilty in skip:
                break
            skip.append(guilty)
            sub.notes.append(f"code cell {guilty + 1} "
                             + ("did not finish in time" if state == "timeout"
                                else "stopped the Python process")
                             + "; it was skipped and the notebook run again")
        errors = [e for e in events if e.get("state") == "done" and e.get("error")]
        for e in errors[:5]:
            sub.notes.append(f"code cell {e['cell'] + 1} raised {e['error']}")
        received = {e["question"]: e for e in events
                    if e.get("state") == "data" and isinstance(e.get("question"), str)}
        for q in questions.values():
            if q.name in received:
                data = decode_data(received[q.name])
            else:
                data = {"__timeout__": "Not checked: the notebook did not finish (time limit "
                        "or crash) before this question."}
            sub.results.append(decide(q, data))
        if state != "finished":
            sub.status = "timed out" if state == "timeout" else "crashed"
        elif skip:
            sub.status = "ok after skipping " + ", ".join(f"cell {c + 1}" for c in skip)
        elif errors:
            sub.status = f"ok ({len(errors)} cell(s) raised)"
    finally:
        shutil.rmtree(work, ignore_errors=True)
        sub.seconds = time.monotonic() - start
    return sub


def _guilty_cell(events: List[Dict[str, Any]]) -> Optional[int]:
    """The cell that started but never finished, if any."""
    started = [e["cell"] for e in events if e.get("state") == "start" and "cell" in e]
    done = {e["cell"] for e in events if e.get("state") == "done" and "cell" in e}
    open_cells = [c for c in started if c not in done]
    return open_cells[-1] if open_cells else None


def grade_folder(folder: Path | str, out_csv: Path | str = "grades.csv",
                 feedback_dir: Path | str | None = None, *, quiet: bool = False,
                 **options: Any) -> List[Submission]:
    """Grade every ``*.ipynb`` in ``folder``; write the gradebook and feedback files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"SUBMISSIONS must be a folder of .ipynb files; {folder} is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix == ".ipynb" and p.is_file())
    feedback_dir = Path(feedback_dir) if feedback_dir else Path(out_csv).parent / "feedback"
    feedback_dir.mkdir(parents=True, exist_ok=True)
    subs = []
    for i, path in enumerate(files, 1):
        sub = grade_notebook(path, **options)
        subs.append(sub)
        (feedback_dir / f"{path.stem}.txt").write_text(sub.feedback())
        if not quiet:
            score = f"{sub.total:g}/{sub.max_total:g}" if sub.exercise_set else "-"
            print(f"[{i}/{len(files)}] {path.name}: {sub.exercise_set or '?'} {score} "
                  f"({sub.status}) {sub.seconds:.1f}s", flush=True)
    columns: List[str] = []
    for sub in subs:
        for r in sub.results:
            if r.question not in columns:
                columns.append(r.question)
    with open(out_csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["submission", "exercise_set", *columns, "total", "max_total", "status"])
        for sub in subs:
            scores = {r.question: f"{r.points:g}" for r in sub.results}
            row = [scores.get(c, "") for c in columns]
            w.writerow([sub.path.name, sub.exercise_set or "", *row, f"{sub.total:g}",
                        f"{sub.max_total:g}", sub.status])
    return subs
