"""Write the student edition's table of contents: _toc.yml without its "Solutions" part.

    python -m tools.student_toc OUT.yml
"""

from __future__ import annotations

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
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__)
        return 2
    Path(argv[0]).write_text(student_toc((ROOT / "_toc.yml").read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
