"""Packaging on a fresh machine: build metadata, declared dependencies, the built sdist and wheel,
constraints.txt, the Makefile's targets and the maintenance tools' command lines."""

import re
import sys
from pathlib import Path

import pytest

from tools import constraints

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; CI and .venv run 3.11

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
MAKEFILE = (ROOT / "Makefile").read_text()
FIRST_PARTY = {"lib", "tests", "tools"}
# tomllib is in the standard library from 3.11 (this file is its only user and skips before).
STDLIB = set(sys.stdlib_module_names) | {"tomllib"}


def requirement_name(req: str) -> str:
    return constraints.canonical(re.split(r"[\s\[<>=!~;@]", req.strip(), maxsplit=1)[0])


def makefile_extras() -> list[str]:
    match = re.search(r'pip install .*-e "\.\[([^\]]*)\]"', MAKEFILE)
    assert match, "the Makefile's install line (-e \".[extras]\") was not found"
    return [e.strip() for e in match.group(1).split(",")]


def declared(extras) -> set[str]:
    reqs = list(PYPROJECT["project"]["dependencies"])
    for extra in extras:
        reqs += PYPROJECT["project"]["optional-dependencies"][extra]
    return {requirement_name(r) for r in reqs}


# --- constraints.txt ---------------------------------------------------------------------------

FREEZE_SAMPLE = """\
Jinja2==3.1.6
attrs==26.1.0
# Editable install with no version control (discrete-choices-book==0.1.0)
-e /work/book
discrete_choices_book==0.1.0
pip==25.3
setuptools==84.2.1
torch==2.13.0+cpu
zipp==4.1.2
"""


def test_constraints_from_freeze_strip_local_versions_project_and_pip_and_sort():
    header = "# my header\n# second line\nnumpy==1.0\n"
    assert constraints.normalize(FREEZE_SAMPLE, header) == (
        "# my header\n# second line\n"
        "attrs==26.1.0\nJinja2==3.1.6\nsetuptools==84.2.1\ntorch==2.13.0\nzipp==4.1.2\n")


def test_constraints_reject_pins_the_index_cannot_serve():
    with pytest.raises(ValueError, match="foo @ file"):
        constraints.normalize("foo @ file:///tmp/foo\n")
    assert constraints.normalize("discrete-choices-book @ file:///tmp/x\n") == (
        constraints.DEFAULT_HEADER)


def test_committed_constraints_are_in_normal_form():
    text = (ROOT / "constraints.txt").read_text()
    assert text == constraints.normalize(text, text), "run `make constraints`"
    lines = text.splitlines()
    assert lines[0].startswith("# ")
    pins = [line for line in lines if not line.startswith("#")]
    assert pins == sorted(pins, key=str.lower)
    assert not [p for p in pins if "+" in p or "==" not in p]


def test_constraints_pin_every_declared_requirement():
    """Everything `make install` asks for, and the build backend, has an exact version."""
    pinned = {requirement_name(p) for p in (ROOT / "constraints.txt").read_text().splitlines()
              if p and not p.startswith("#")}
    wanted = declared(makefile_extras())
    wanted |= {requirement_name(r) for r in PYPROJECT["build-system"]["requires"]}
    assert not wanted - pinned


def test_constraints_tool_writes_the_normal_form_and_keeps_the_header(tmp_path, monkeypatch):
    monkeypatch.setattr(constraints, "freeze", lambda: FREEZE_SAMPLE)
    out = tmp_path / "constraints.txt"
    out.write_text("# kept header\nold==1\n")
    assert constraints.main(["--output", str(out)]) == 0
    assert out.read_text() == constraints.normalize(FREEZE_SAMPLE, "# kept header\n")
    recipe = re.search(r"^constraints:.*\n((?:\t.*\n)+)", MAKEFILE, re.M)
    assert recipe and recipe.group(1).strip() == "$(BIN)/python -m tools.constraints"


def test_constraints_help_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(constraints, "freeze", lambda: FREEZE_SAMPLE)
    with pytest.raises(SystemExit) as stop:
        constraints.main(["--help", "--output", str(tmp_path / "c.txt")])
    assert stop.value.code == 0
    assert "usage:" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
