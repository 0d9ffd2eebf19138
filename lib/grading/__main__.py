"""``python -m lib.grading SUBMISSIONS [--out grades.csv]``: grade a folder of notebooks."""

from __future__ import annotations

import argparse
import sys
import time

from lib.grading.runner import grade_folder
from lib.grading.sets import load_extra


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.grading", description=__doc__)
    ap.add_argument("submissions", help="folder holding the submitted .ipynb files")
    ap.add_argument("--out", default="grades.csv", help="gradebook to write (CSV)")
    ap.add_argument("--feedback", default=None,
                    help="folder for one feedback file per submission (default: feedback/ next "
                         "to the CSV)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds allowed for one run of a notebook (default: one minute plus "
                         "twice the sum of the questions' budgets)")
    ap.add_argument("--cell-timeout", type=float, default=None,
                    help="seconds allowed for every cell (default: the budget of the question "
                         "the cell answers, as stated in the notebook)")
    ap.add_argument("--jobs", "-j", type=int, default=1,
                    help="submissions graded at once (each in its own sandbox)")
    ap.add_argument("--sandbox", choices=["bubblewrap", "uid", "none"], default=None,
                    help="isolation layer (default: the strongest that works here)")
    ap.add_argument("--extra", action="append", default=[], metavar="FILE.py",
                    help="a file of extra (hidden) checks; may be repeated")
    args = ap.parse_args(argv)
    start = time.monotonic()
    try:
        for path in args.extra:
            load_extra(path)
        subs = grade_folder(args.submissions, args.out, args.feedback, timeout=args.timeout,
                            cell_timeout=args.cell_timeout, extra=args.extra, jobs=args.jobs,
                            layer=args.sandbox)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Graded {len(subs)} submission(s) in {time.monotonic() - start:.1f}s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
