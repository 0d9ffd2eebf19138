"""Grade submitted exercise notebooks: one sandboxed child process each, judged here.

:func:`grade_notebook` grades one file and never raises for anything a submission contains;
:func:`grade_folder` grades every ``.ipynb`` in a folder and writes ``grades.csv`` plus one
feedback file per submission. The command line is ``python -m lib.grading`` (``make grade``).
"""

from __future__ import annotations

import base64
import concurrent.futures
import csv
import hashlib
import json
import os
import re
import secrets
import shutil
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
from lib.grading.isolation import Jail, Limits, choose_layer
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
    layer: str = ""

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
        if self.layer:
            lines.append(f"Isolation: {self.layer}")
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
               cell_timeout: float, jail: Jail,
               extra_sources: Sequence[str] = ()) -> Tuple[str, List[Dict[str, Any]]]:
    """Run the sandbox once; returns ("finished" | "timeout" | "crashed", events)."""
    read_fd, write_fd = os.pipe()
    token = secrets.token_hex(16)
    argv = [sys.executable, "-m", "lib.grading.sandbox", str(nb_path), set_name,
            "--skip", ",".join(map(str, skip))]
    if cell_timeout:
        argv += ["--cell-timeout", str(cell_timeout)]
    cmd, preexec, env = jail.command(argv)
    proc = subprocess.Popen(cmd, cwd=jail.work, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            pass_fds=(write_fd,), preexec_fn=preexec)
    os.close(write_fd)
    events: List[Dict[str, Any]] = []
    reader = threading.Thread(target=_read_events, args=(read_fd, events, token), daemon=True)
    reader.start()
    startup: List[bytes] = []  # the child's stderr before it hands fd 2 to /dev/null
    errors = threading.Thread(target=_read_head, args=(proc.stderr, startup), daemon=True)
    errors.start()
    try:  # the pipe's number, the token and the hidden checks, on stdin (never in argv)
        config = {"fd": write_fd, "token": token, "extra": list(extra_sources)}
        proc.stdin.write((json.dumps(config) + "\n").encode())
        proc.stdin.close()
    except OSError:
        pass
    state = "crashed"
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        state = "timeout"
    finally:
        jail.cleanup(proc)  # the child and everything it started, setsid or not
    reader.join(timeout=10)
    errors.join(timeout=10)
    if state != "timeout" and events and events[-1].get("state") == "finished":
        state = "finished"
    if not events and startup:
        text = b"".join(startup).decode("utf-8", "replace").strip().splitlines()
        events.append({"state": "startup-error", "error": " | ".join(text[-3:])[:500]})
    return state, list(events)


def _read_head(stream: Any, keep: List[bytes], limit: int = 4096) -> None:
    """Keep the first ``limit`` bytes of a stream, discard the rest (bounded memory)."""
    size = 0
    for chunk in iter(lambda: stream.read(1 << 16), b""):
        if size < limit:
            keep.append(chunk[: limit - size])
        size += len(chunk)
    stream.close()


#: Bounds on what one run may send: a longer line is dropped unread, and past the total the
#: pipe is closed (the run then ends as a crash). Probe data is far smaller (a few MB at most).
MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_EVENT_BYTES = 64 * 1024 * 1024


def _read_events(fd: int, events: List[Dict[str, Any]], token: str) -> None:
    """Read JSON-line events in bounded chunks; keep those carrying the run's token."""
    line = bytearray()
    too_long = False
    total = 0
    try:
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_EVENT_BYTES:
                break
            while chunk:
                cut = chunk.find(b"\n")
                piece, chunk = (chunk, b"") if cut < 0 else (chunk[:cut], chunk[cut + 1:])
                if not too_long:
                    line += piece
                    if len(line) > MAX_LINE_BYTES:
                        too_long, line = True, bytearray()
                if cut >= 0:
                    if not too_long:
                        _accept(bytes(line), events, token)
                    line, too_long = bytearray(), False
    finally:
        os.close(fd)


def _accept(line: bytes, events: List[Dict[str, Any]], token: str) -> None:
    try:
        event = json.loads(line)
    except ValueError:
        return
    if isinstance(event, dict) and event.pop("token", None) == token:
        events.append(event)


def notebook_timeout(exercise_set: str) -> float:
    """Wall-clock limit for one run of a notebook: a minute to start, plus twice each
    question's budget (its cells, then its check)."""
    return 60.0 + 2 * sum(q.seconds for q in get_set(exercise_set).questions.values())


def grade_notebook(path: Path | str, *, timeout: Optional[float] = None,
                   cell_timeout: Optional[float] = None, attempts: int = 3,
                   extra: Sequence[Path | str] = (), expected_set: Optional[str] = None,
                   slot: int = 0, layer: Optional[str] = None,
                   limits: Optional[Limits] = None) -> Submission:
    """Grade one notebook file. Never raises for anything inside the file.

    Args:
        path: the submitted file.
        timeout: wall-clock limit in seconds for one run of the whole notebook (default:
            :func:`notebook_timeout`).
        cell_timeout: limit for every code cell (default: each cell gets the budget of the
            question checked after it, as the notebook states).
        attempts: runs allowed; a run killed by the wall-clock limit or a crash is repeated with
            the guilty cell skipped, so the other questions are still graded.
        extra: instructors' files of extra (hidden) checks, already loaded in this process with
            :func:`lib.grading.sets.load_extra`; their source is sent to the sandbox on a pipe.
        expected_set: grade only notebooks of this exercise set (a Gradescope assignment);
            another set scores 0 with a status saying so.
        slot: the parallel slot (each slot runs as its own dedicated uid).
        layer: the isolation layer (:func:`lib.grading.isolation.choose_layer` by default).
        limits: resource limits of the child (:class:`lib.grading.isolation.Limits`).
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
    if expected_set is not None and name != expected_set:
        sub.status = (f"wrong exercise set: this assignment grades {expected_set}, the notebook "
                      f"is {name}")
        return sub
    sub.exercise_set = name
    questions = get_set(name).questions
    layer = layer or choose_layer()
    sub.layer = layer
    timeout = timeout or notebook_timeout(name)
    extra_sources = [Path(p).read_text() for p in extra]

    work = Path(tempfile.mkdtemp(prefix="grade-"))
    jail = Jail(layer, work / "w", slot=slot, limits=limits or Limits())
    try:
        jail.work.mkdir()
        copy = jail.work / "submission.ipynb"
        copy.write_text(json.dumps(nb))
        skip: List[int] = []
        state, events = "crashed", []
        for _ in range(attempts):
            state, events = _run_child(copy, name, skip, timeout, cell_timeout or 0, jail,
                                       extra_sources)
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
        for e in events:
            if e.get("state") == "startup-error":
                sub.notes.append(f"the grader's sandbox failed to start: {e['error']}")
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
        jail.cleanup()
        shutil.rmtree(work, ignore_errors=True)
        sub.seconds = time.monotonic() - start
    return sub


def _guilty_cell(events: List[Dict[str, Any]]) -> Optional[int]:
    """The cell that started but never finished, if any."""
    started = [e["cell"] for e in events if e.get("state") == "start" and "cell" in e]
    done = {e["cell"] for e in events if e.get("state") == "done" and "cell" in e}
    open_cells = [c for c in started if c not in done]
    return open_cells[-1] if open_cells else None


def preload() -> None:
    """Import every module of the book's package now, before any submission runs, so that no
    judge imports a file later (a file a submission might have changed)."""
    import importlib
    import pkgutil

    import lib

    for info in pkgutil.walk_packages(lib.__path__, "lib."):
        try:
            importlib.import_module(info.name)
        except Exception:  # noqa: BLE001 - an optional dependency missing
            pass


def package_digest() -> str:
    """A hash of every file of the book's package (to detect a change during grading)."""
    import lib

    root = Path(lib.__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def is_notebook(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".ipynb"


def _columns(subs: Sequence[Submission]) -> List[Tuple[str, str]]:
    """(exercise set, question) columns; named ``q1`` for one set, ``set:q1`` when mixed."""
    cols: List[Tuple[str, str]] = []
    for sub in subs:
        for r in sub.results:
            if (sub.exercise_set, r.question) not in cols:
                cols.append((sub.exercise_set or "", r.question))
    return cols


def write_gradebook(out_csv: Path | str, subs: Sequence[Optional[Submission]],
                    skipped: Sequence[Tuple[str, str]] = ()) -> None:
    """Write the CSV (atomically): one row per graded file, then one per skipped file."""
    done = [s for s in subs if s is not None]
    cols = _columns(done)
    mixed = len({c[0] for c in cols}) > 1
    header = [f"{s}:{q}" if mixed else q for s, q in cols]
    out_csv = Path(out_csv)
    tmp = out_csv.with_name(out_csv.name + ".part")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["submission", "exercise_set", *header, "total", "max_total", "status"])
        for sub in done:
            scores = {(sub.exercise_set or "", r.question): f"{r.points:g}" for r in sub.results}
            w.writerow([sub.path.name, sub.exercise_set or "", *[scores.get(c, "") for c in cols],
                        f"{sub.total:g}", f"{sub.max_total:g}", sub.status])
        for name, why in skipped:
            w.writerow([name, "", *[""] * len(cols), "", "", f"skipped: {why}"])
    os.replace(tmp, out_csv)


def grade_folder(folder: Path | str, out_csv: Path | str = "grades.csv",
                 feedback_dir: Path | str | None = None, *, quiet: bool = False,
                 jobs: int = 1, **options: Any) -> List[Submission]:
    """Grade every ``*.ipynb`` in ``folder``; write the gradebook and feedback files.

    ``jobs`` submissions are graded at once (each in its own sandbox, as its own uid); the
    gradebook lists them in file-name order and is rewritten after each one, so a crash of the
    grader loses nothing already graded. Files that are not notebooks are listed as skipped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"SUBMISSIONS must be a folder of .ipynb files; {folder} is not a folder")
    entries = sorted(folder.iterdir())
    files = [p for p in entries if is_notebook(p)]
    skipped = [(p.name, "a folder" if p.is_dir() else f"not a notebook ({p.suffix or 'no'} "
                "extension)") for p in entries if not is_notebook(p)]
    feedback_dir = Path(feedback_dir) if feedback_dir else Path(out_csv).parent / "feedback"
    feedback_dir.mkdir(parents=True, exist_ok=True)
    preload()
    digest = package_digest()
    layer = options.pop("layer", None) or choose_layer()
    if not quiet:
        print(f"Isolation: {layer}" + ("" if layer == "bubblewrap" else
              " (see the README: weaker than bubblewrap)"), flush=True)
        for name, why in skipped:
            print(f"skipped {name}: {why}", flush=True)
    subs: List[Optional[Submission]] = [None] * len(files)
    lock = threading.Lock()
    free_slots = list(range(max(1, jobs)))
    count = [0]

    def one(index: int) -> None:
        with lock:
            slot = free_slots.pop()
        try:
            sub = grade_notebook(files[index], slot=slot, layer=layer, **options)
        finally:
            with lock:
                free_slots.append(slot)
        with lock:
            if package_digest() != digest:
                raise RuntimeError(f"the book's package changed on disk while {files[index]} "
                                   "was graded: restore it (git checkout lib) and grade again")
            subs[index] = sub
            stem = files[index].name[: -len(files[index].suffix)]
            (feedback_dir / f"{stem}.txt").write_text(sub.feedback())
            write_gradebook(out_csv, subs, skipped)
            count[0] += 1
            if not quiet:
                score = f"{sub.total:g}/{sub.max_total:g}" if sub.exercise_set else "-"
                print(f"[{count[0]}/{len(files)}] {files[index].name}: "
                      f"{sub.exercise_set or '?'} {score} ({sub.status}) {sub.seconds:.1f}s",
                      flush=True)

    if jobs <= 1:
        for i in range(len(files)):
            one(i)
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            for f in [pool.submit(one, i) for i in range(len(files))]:
                f.result()
    write_gradebook(out_csv, subs, skipped)
    return [s for s in subs if s is not None]
