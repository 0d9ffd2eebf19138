"""Write the student edition's table of contents: _toc.yml without its "Solutions" part.

    python -m tools.student_toc OUT.yml
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def student_toc(text: str) -> str:
    """Drop the part whose caption is "Solutions" (and everything indented under it)."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if re.match(r"^\s*-\s*caption:\s*Solutions\s*$", line):
            skipping = True
            continue
        if skipping and re.match(r"^\s*-\s*caption:", line):
            skipping = False
        if not skipping:
            out.append(line)
    return "".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.student_toc",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the table of contents to write (OUT.yml)")
    args = parser.parse_args(argv)
    args.out.write_text(student_toc((ROOT / "_toc.yml").read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
