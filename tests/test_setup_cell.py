"""The notebooks' set-up cell (tools/setup_cell.py), run as a notebook would run it.

``lib`` is a common name: a ``lib/`` folder in the working directory, or another package called
``lib``, must stop the cell with a message naming what was imported, not fail later. Nothing here
installs anything: BOOK_LIB_SOURCE points at a path that does not exist and PIP_NO_INDEX is set.
"""

import os
import subprocess
import sys

import lib
from tools import setup_cell

SOURCE = setup_cell.source()


def run_cell(cwd, *python_flags):
    """Run the set-up cell in a fresh interpreter started in ``cwd`` (first on sys.path)."""
    env = {**os.environ, "BOOK_LIB_SOURCE": str(cwd / "no-such-source"), "PIP_NO_INDEX": "1"}
    env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, *python_flags, "-c", SOURCE], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_marker_matches_the_package():
    assert lib.__book__ == setup_cell.MARKER
    assert f'!= "{setup_cell.MARKER}"' in SOURCE


def test_cell_does_nothing_where_the_book_package_is_installed(tmp_path):
    done = run_cell(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""  # cell 0's stored output stays empty
    assert list(tmp_path.iterdir()) == []


def test_cell_stops_with_a_clear_message_when_a_lib_folder_shadows_the_package(tmp_path):
    shadow = tmp_path / "lib"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("")
    done = run_cell(tmp_path)
    assert done.returncode != 0
    message = done.stderr.strip().splitlines()
    assert "ImportError" in done.stderr and "AttributeError" not in done.stderr
    assert str(shadow / "__init__.py") in done.stderr  # what was imported
    assert "Rename or move that `lib` folder" in done.stderr  # how to fix it
    assert message[-1].strip().startswith("pip install git+")
    assert "no-such-source" not in done.stderr  # it did not try to install


def test_cell_names_a_namespace_lib_folder_too(tmp_path):
    """Without the book's package (-S: no site-packages), a `lib/` folder holding no
    __init__.py imports as an empty namespace package: the cell names the folder."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "notes.txt").write_text("not Python")
    done = run_cell(tmp_path, "-S")
    assert done.returncode != 0
    assert f"found [{str(tmp_path / 'lib')!r}]" in done.stderr, done.stderr


def test_cell_installs_from_book_lib_source_where_lib_is_missing(tmp_path):
    """-S hides site-packages, so `lib` is missing; the cell runs pip on BOOK_LIB_SOURCE (a
    path that does not exist here), and pip's failure surfaces."""
    done = run_cell(tmp_path, "-S")
    assert done.returncode != 0
    assert "CalledProcessError" in done.stderr
    assert str(tmp_path / "no-such-source") in done.stderr
