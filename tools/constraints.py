"""Write constraints.txt from the packages installed in this environment (``make constraints``).

    python -m tools.constraints [--output FILE]

``pip freeze`` alone does not round-trip: it writes local versions such as ``torch==2.13.0+cpu``
that the package index cannot serve, leaves the header comment out and omits setuptools. This
keeps the header of the existing file, drops local version labels (``==2.13.0`` still accepts
the installed ``2.13.0+cpu``), drops this project and pip itself, and sorts the lines
case-insensitively, so regenerating an unchanged environment rewrites the same file.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "discrete-choices-book"
#: Left out: the project itself, and pip (the Makefile upgrades it separately).
EXCLUDED = {PROJECT, "pip"}
DEFAULT_HEADER = (
    "# Exact versions used in development and CI (pip install -c constraints.txt ...).\n"
    "# pyproject.toml keeps loose ranges for readers; regenerate this file with"
    " `make constraints`.\n"
)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;+]+)(\+\S+)?\s*$")


def canonical(name: str) -> str:
    """The name as the index compares it (PEP 503): lower case, runs of -_. as one -."""
    return re.sub(r"[-_.]+", "-", name).lower()


def header_of(text: str) -> str:
    """The leading comment lines of ``text`` (the file's header), or the default header."""
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        lines.append(line if line.endswith("\n") else line + "\n")
    return "".join(lines) or DEFAULT_HEADER


def normalize(freeze: str, header: str = DEFAULT_HEADER) -> str:
    """constraints.txt text from ``pip freeze`` output (or from an existing constraints file).

    Editable installs are skipped. Raises ValueError on any other line that is not
    ``name==version`` (a direct URL such as ``name @ file:///...``): the index cannot serve it.
    """
    pins = {}
    for raw in freeze.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "-e ")):  # comments, editable installs
            continue
        match = _PIN.match(line)
        name = match.group(1) if match else re.split(r"[\s@=<>!~;]", line, maxsplit=1)[0]
        if canonical(name) in EXCLUDED:
            continue
        if not match:
            raise ValueError(f"not a plain pin, cannot go into constraints.txt: {line!r}")
        pins[canonical(name)] = f"{name}=={match.group(2)}"
    body = "".join(pin + "\n" for pin in sorted(pins.values(), key=str.lower))
    return header_of(header) + body


def freeze() -> str:
    """``pip freeze`` of the running interpreter, setuptools included (``--all``)."""
    return subprocess.run([sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
                          capture_output=True, text=True, check=True).stdout


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.constraints",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / "constraints.txt",
                        help="file to write (default: constraints.txt); its header is kept")
    args = parser.parse_args(argv)
    old = args.output.read_text() if args.output.exists() else ""
    args.output.write_text(normalize(freeze(), header_of(old)))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
