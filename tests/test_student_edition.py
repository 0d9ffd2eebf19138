"""The student edition of the book (no solutions part) builds and contains no solution page."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.student_toc import student_toc

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_student_edition_builds_without_solutions(tmp_path):
    toc = tmp_path / "_toc_student.yml"
    toc.write_text(student_toc((ROOT / "_toc.yml").read_text()))
    out = tmp_path / "student"
    jb = Path(sys.executable).with_name("jupyter-book")
    done = subprocess.run([str(jb), "build", str(ROOT), "--toc", str(toc), "--path-output",
                           str(out), "--warningiserror", "--keep-going"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    html = out / "_build" / "html"
    assert (html / "index.html").exists()
    assert list((html / "exercises").glob("*.html")), "the exercises must be in the edition"
    assert not (html / "solutions").exists(), "a solutions page was built"
    link = re.compile(r'href="[^"]*solutions/[^"]*"')
    for page in html.rglob("*.html"):
        assert not link.search(page.read_text(errors="replace")), f"{page} links to solutions"
