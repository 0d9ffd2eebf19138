"""Execute notebooks in place (their stored outputs are what nbval compares) and time them.

    python -m tools.execute chapters/03_gumbel_max.ipynb ...   # run and save
    python -m tools.execute --report chapters solutions        # run, report times, save nothing

Each notebook runs in a fresh kernel from its own folder, like nbval and Jupyter do, with
PyTorch limited to one thread (OMP_NUM_THREADS=1) exactly as `make nbval` runs it, so that the
stored outputs are the ones CI reproduces.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

KERNEL_META = {"display_name": "Python 3", "language": "python", "name": "python3"}


os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the kernels started below


def execute(path: Path, save: bool = True, timeout: int = 600) -> float:
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = KERNEL_META
    nb.metadata.pop("jupytext", None)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    # Widget state changes on every run (new model ids) and would make the built page load the
    # widget manager from a CDN; the book shows a static figure next to each widget instead.
    nb.metadata.pop("widgets", None)
    if save:
        nbformat.write(nb, path)
    return seconds


def expand(items):
    for item in items:
        p = Path(item)
        yield from (sorted(p.glob("*.ipynb")) if p.is_dir() else [p])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--report", action="store_true", help="time only; do not save outputs")
    args = ap.parse_args(argv)
    total = 0.0
    rows = []
    for path in expand(args.paths):
        seconds = execute(path, save=not args.report)
        total += seconds
        rows.append((str(path), seconds))
        print(f"{seconds:7.1f} s  {path}", flush=True)
    print(f"{total:7.1f} s  total ({len(rows)} notebooks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
