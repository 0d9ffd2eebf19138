"""Where a stored result came from: the commit of the checkout that produced it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commit() -> str:
    """``git rev-parse HEAD`` of the checkout, with ``+uncommitted changes`` if tracked files
    differ from it, or ``"unknown"`` outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout
        return out.stdout.strip() + ("+uncommitted changes" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def record(module: str, argv: list[str] | None, config: dict) -> dict:
    """The head of a stored result: the command that made it, the commit and ``config``, with
    an empty ``settings`` dict for the results (``argv``: as given to ``main``, or None for
    the command line)."""
    args = sys.argv[1:] if argv is None else argv
    return {"command": f"python -m {module} " + " ".join(args), "commit": commit(),
            "config": config, "settings": {}}


def write(results: dict, out: Path) -> None:
    """Write a stored result as indented JSON (creating its folder) and say where."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")
