"""The suggested syllabus of instructors.md, computed from the exercise sets.

    python -m tools.syllabus           # rewrite the table in instructors.md
    python -m tools.syllabus --check   # exit 1 if the table there is out of date

One row per exercise set, one week each, in the order of the solution notebooks: the chapter
with the same number (week 1 adds chapter 00, how to use the book; a set without one, such as
the bug museum, is a review week), the set's exercise page, its
questions and points as registered in ``lib/grading/sets/<set>.py`` (hidden questions, which an
instructor adds with ``--extra``, are not counted), the time budget of each question, and the
estimated time a student spends on the exercises (``MINUTES_PER_POINT`` per point: a planning
figure, not a measurement). ``tests/test_instructors_guide.py`` fails while the table is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "instructors.md"
START = "<!-- syllabus: written by `python -m tools.syllabus`, do not edit by hand -->"
END = "<!-- end of syllabus -->"
#: Estimated student time per point of an exercise set (a planning figure, not measured).
MINUTES_PER_POINT = 20


def _hours(minutes: float) -> str:
    h, m = divmod(int(round(minutes)), 60)
    return f"{h} h {m:02d}" if h else f"{m} min"


def _points(value: float) -> str:
    return f"{value:g}"


def rows(root: Path = ROOT) -> List[dict]:
    """One dict per exercise set, in the order of solutions/NN_name.ipynb."""
    from lib.grading import get_set

    out = []
    for number, notebook in enumerate(sorted((root / "solutions").glob("*.ipynb")), start=1):
        name = json.loads(notebook.read_text())["metadata"]["exercise_set"]
        prefix = notebook.name.split("_", 1)[0]
        chapters = sorted((root / "chapters").glob(f"{prefix}_*.ipynb"))
        if number == 1:
            chapters = sorted((root / "chapters").glob("00_*.ipynb")) + chapters
        questions = list(get_set(name).visible.values())
        budgets = sorted({q.seconds for q in questions})
        out.append({
            "week": number,
            "chapters": [c.relative_to(root).with_suffix("").as_posix() for c in chapters],
            "exercises": f"exercises/{notebook.stem}",
            "set": name,
            "questions": len(questions),
            "points": sum(q.points for q in questions),
            "breakdown": [q.points for q in questions],
            "budgets": budgets,
        })
    return out


def table(root: Path = ROOT) -> str:
    """The Markdown table (MyST): the chapters' links show their titles, the exercise pages'
    the set's name. When every question has the same time budget, a sentence after the table
    gives it; otherwise the table has a column of budgets per set."""
    data = rows(root)
    budgets = sorted({s for r in data for s in r["budgets"]})
    column = len(budgets) > 1
    lines = ["| week | read | exercise set | points | " + ("budget | " if column else "")
             + "time (est.) |",
             "|---|---|---|---|" + ("---|" if column else "") + "---|"]
    total_q = total_p = 0.0
    for r in data:
        # a set without a chapter of its own number (the bug museum) reviews earlier weeks
        read = ", ".join(f"{{doc}}`{c}`" for c in r["chapters"]) or "review"
        budget = " or ".join(f"{s:g} s" for s in r["budgets"])
        lines.append(
            f"| {r['week']} | {read} | {{doc}}`{r['set']} <{r['exercises']}>` "
            f"| {_points(r['points'])} ({'+'.join(_points(p) for p in r['breakdown'])}) "
            + (f"| {budget} " if column else "")
            + f"| {_hours(r['points'] * MINUTES_PER_POINT)} |")
        total_q += r["questions"]
        total_p += r["points"]
    lines.append(f"| | | **total: {total_q:g} questions** | **{_points(total_p)}** | "
                 + ("| " if column else "") + f"{_hours(total_p * MINUTES_PER_POINT)} |")
    text = "\n".join(lines) + "\n"
    if not column:
        text += (f"\nTime budget: {budgets[0]:g} s for every question (its answer cell), and "
                 f"{budgets[0]:g} s more for its check.\n")
    return text


def render(text: str, root: Path = ROOT) -> str:
    """``text`` (the page) with the table between the START and END markers rewritten."""
    try:
        head, rest = text.split(START + "\n", 1)
        _, tail = rest.split(END, 1)
    except ValueError as error:
        raise SystemExit(f"{PAGE.name} lacks the syllabus markers {START!r} ... {END!r}") \
            from error
    return f"{head}{START}\n\n{table(root)}\n{END}{tail}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.syllabus",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the table in instructors.md is out of date")
    args = parser.parse_args(argv)
    text = PAGE.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print(f"{PAGE.name}: the syllabus table is out of date; run python -m tools.syllabus")
            return 1
        return 0
    if new != text:
        PAGE.write_text(new)
        print(f"rewrote the syllabus table in {PAGE.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
