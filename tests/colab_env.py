"""A fresh virtual environment holding only what Colab preinstalls, for offline Colab-path tests.

Colab opens a notebook alone, with torch, numpy, scipy, matplotlib, ipywidgets, tqdm,
scikit-learn and ipykernel already installed, and nothing from this repository. The environment
built here has the same packages (the versions pinned in constraints.txt, so no download is
needed beyond the package caches) and NOT the book's package: each notebook's set-up cell has to
install it, from the local checkout named by BOOK_LIB_SOURCE instead of GitHub.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
COLAB_PACKAGES = ["numpy", "scipy", "torch", "matplotlib", "ipywidgets", "ipykernel", "tqdm",
                  "scikit-learn"]


# What a copy of the checkout leaves out: environments, build outputs and caches.
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "_build", "build", "dist", "*.egg-info",
                                     "__pycache__", ".ipynb_checkpoints", ".pytest_cache",
                                     ".ruff_cache", "submissions", "feedback")


def private_source(where: Path) -> Path:
    """A copy of the checkout in ``where`` for the set-up cells to ``pip install``.

    pip builds a source folder in place (its ``build/`` and ``*.egg-info``), so installing the
    checkout itself races with any other process building or installing it at the same time
    (another pytest worker, an editable install); a private copy is built by one pip only.
    """
    shutil.copytree(ROOT, where, ignore=COPY_IGNORE)
    return where


def build_env(where: Path) -> Path:
    """Create the environment in ``where`` and return its Python."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-c",
                           str(ROOT / "constraints.txt"), *COLAB_PACKAGES],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"building the Colab-like environment failed:\n{done.stderr[-3000:]}")
    return python


def kernel_dir(python: Path, where: Path) -> Path:
    """A Jupyter data folder with a kernelspec "colab" running ``python``."""
    spec = where / "kernels" / "colab"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like", "language": "python"}))
    return where


def run_alone(notebook: Path, folder: Path, jupyter_path: Path, source: Path,
              timeout: int = 300):
    """Copy ``notebook`` alone into the empty ``folder`` and execute it with the Colab kernel;
    its set-up cell installs the book's package from ``source`` (see :func:`private_source`)."""
    folder.mkdir(parents=True, exist_ok=False)
    copy = folder / notebook.name
    copy.write_bytes(notebook.read_bytes())
    nb = nbformat.read(copy, as_version=4)
    old = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "BOOK_LIB_SOURCE", "MPLBACKEND")}
    os.environ.update(JUPYTER_PATH=str(jupyter_path), BOOK_LIB_SOURCE=str(source),
                      MPLBACKEND="Agg")
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="colab",
                                resources={"metadata": {"path": str(folder)}})
        client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def outputs_text(nb_or_cell) -> str:
    """The text of every output of a notebook (or of one cell)."""
    cells = nb_or_cell.cells if hasattr(nb_or_cell, "cells") else [nb_or_cell]
    parts = []
    for cell in cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)
