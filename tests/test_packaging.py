"""Packaging on a fresh machine: build metadata, declared dependencies, the built sdist and wheel,
constraints.txt, the Makefile's targets and the maintenance tools' command lines."""

import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests import colab_env
from tools import constraints, setup_cell

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


# --- build metadata ----------------------------------------------------------------------------


def third_party_imports(folder: str) -> dict[str, str]:
    """{top-level module: first file importing it} for absolute imports under ``folder``."""
    found = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in STDLIB and top not in FIRST_PARTY:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_build_system_requires_setuptools_77():
    """`license = "MIT"` and `license-files` (PEP 639) fail to build with older setuptools."""
    reqs = PYPROJECT["build-system"]["requires"]
    setuptools_reqs = [r for r in reqs if requirement_name(r) == "setuptools"]
    assert len(setuptools_reqs) == 1, reqs
    minimum = re.search(r">=\s*(\d+)", setuptools_reqs[0])
    assert minimum and int(minimum.group(1)) >= 77, setuptools_reqs[0]
    assert isinstance(PYPROJECT["project"]["license"], str)  # the field that needs it


def test_package_data_files_exist():
    data = PYPROJECT["tool"]["setuptools"]["package-data"]["lib"]
    assert "py.typed" in data
    for pattern in data:
        assert list((ROOT / "lib").glob(pattern)), f"package-data lists {pattern}: no such file"
    assert (ROOT / "lib" / "py.typed").read_text() == ""  # PEP 561 marker, empty


def test_makefile_installs_only_defined_extras():
    defined = set(PYPROJECT["project"]["optional-dependencies"])
    assert set(makefile_extras()) <= defined
    assert {"book", "test"} <= set(makefile_extras())


@pytest.mark.parametrize("folder, extras", [
    ("lib", ["casestudies"]),  # the package: core dependencies (+ the case studies' extra)
    ("tools", None),           # maintainers' tools and tests: whatever `make install` installs
    ("tests", None),
])
def test_every_third_party_import_is_a_declared_dependency(folder, extras):
    extras = makefile_extras() if extras is None else extras
    allowed = declared(extras)
    providers = importlib.metadata.packages_distributions()
    imports = third_party_imports(folder)
    assert imports, f"no third-party imports found under {folder}/: the scan is broken"
    missing = []
    for module, where in imports.items():
        dists = {constraints.canonical(d) for d in providers.get(module, [])}
        if not dists:
            missing.append(f"{module} ({where}): no installed distribution provides it")
        elif not dists & allowed:
            missing.append(f"{module} ({where}): from {sorted(dists)}, not declared in "
                           f"[project] dependencies or the extras {extras}")
    assert not missing, "\n".join(missing)


# --- the built sdist and wheel -----------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(sdist file names, wheel file names), built from a copy of the working tree without
    build isolation (no download: the setuptools of this environment, >= 77, builds)."""
    where = tmp_path_factory.mktemp("build")
    src, out = where / "src", where / "dist"
    colab_env.private_source(src)
    out.mkdir()
    names = {}
    for kind in ("sdist", "wheel"):  # one process each: build_meta keeps state between calls
        code = ("import sys; from setuptools import build_meta as b; "
                f"print('BUILT', b.build_{kind}(sys.argv[1]))")
        done = subprocess.run([sys.executable, "-c", code, str(out)], cwd=src,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        names[kind] = re.findall(r"^BUILT (\S+)$", done.stdout, re.M)[-1]
    sdist_name, wheel_name = names["sdist"], names["wheel"]
    with tarfile.open(out / sdist_name) as tar:
        top = sdist_name.removesuffix(".tar.gz")
        sdist = {m.name.removeprefix(top + "/") for m in tar.getmembers() if m.isfile()}
    with zipfile.ZipFile(out / wheel_name) as whl:
        wheel = set(whl.namelist())
        metadata = next(whl.read(n).decode() for n in wheel if n.endswith(".dist-info/METADATA"))
    return sdist, wheel, metadata


def package_files() -> set[str]:
    """Every file the package should ship: lib's modules, its data and its type marker."""
    files = {p.relative_to(ROOT).as_posix() for p in (ROOT / "lib").rglob("*.py")}
    files |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "lib" / "data").iterdir()}
    return files | {"lib/py.typed"}


@pytest.mark.slow
def test_sdist_holds_the_package_and_leaves_tests_and_notebooks_out(built):
    """The sdist is the package only: its tests need the notebooks, the book and the tools,
    so they are left out (MANIFEST.in) rather than shipped unable to run."""
    sdist, _, _ = built
    assert package_files() <= sdist
    assert {"pyproject.toml", "README.md", "LICENSE", "PKG-INFO"} <= sdist
    assert {f for f in sdist if "/" not in f} <= {"pyproject.toml", "README.md", "LICENSE",
                                                  "PKG-INFO", "setup.cfg", "MANIFEST.in"}
    allowed_top = {"lib", "discrete_choices_book.egg-info"}
    extra = {f for f in sdist if "/" in f and f.split("/")[0] not in allowed_top}
    assert not extra, f"files outside the package in the sdist: {sorted(extra)[:10]}"
    for folder in ("tests", "tools", "chapters", "solutions", "exercises"):
        assert not [f for f in sdist if f.startswith(folder + "/")], folder


@pytest.mark.slow
def test_wheel_holds_the_package_its_data_and_type_marker(built):
    _, wheel, metadata = built
    assert package_files() <= wheel
    assert {f.split("/")[0] for f in wheel} <= {"lib", "discrete_choices_book-0.1.0.dist-info"}
    assert "License-Expression: MIT" in metadata
    assert any(f.endswith(".dist-info/licenses/LICENSE") for f in wheel)


# --- Makefile ----------------------------------------------------------------------------------


def phony_targets() -> set[str]:
    text = MAKEFILE.replace("\\\n", " ")
    match = re.search(r"^\.PHONY:(.*)$", text, re.M)
    assert match
    return set(match.group(1).split())


def test_every_rule_is_phony_and_every_phony_target_has_a_rule():
    rules = set(re.findall(r"^([a-z][\w-]*):", MAKEFILE, re.M))
    assert rules == phony_targets()


def test_make_help_lists_every_target():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    listed = set(re.findall(r"^make ([\w-]+)", out, re.M))
    assert phony_targets() <= listed, f"missing from make help: {phony_targets() - listed}"


def test_makefile_recipes_call_existing_modules_and_scripts():
    modules = re.findall(r"\$\(BIN\)/python -m ([\w.]+)", MAKEFILE)
    scripts = re.findall(r"\$\(BIN\)/python ([\w/]+\.py)", MAKEFILE)
    assert "tools.setup_cell" in modules
    for module in modules:
        if module != "pip":
            assert importlib.util.find_spec(module) is not None, module
    for script in scripts:
        assert (ROOT / script).exists(), script


# --- command lines: --help writes nothing ------------------------------------------------------


def test_student_toc_help_writes_no_file(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tools.student_toc", "--help"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
    assert list(tmp_path.iterdir()) == []


def stale_copy(where: Path) -> Path:
    """A minimal copy of the repository whose one notebook has an outdated set-up cell."""
    (where / "tools").mkdir(parents=True)
    for name in ("__init__.py", "setup_cell.py"):
        shutil.copy(ROOT / "tools" / name, where / "tools" / name)
    shutil.copy(ROOT / "_config.yml", where / "_config.yml")
    (where / "chapters").mkdir()
    notebook = where / "chapters" / "x.ipynb"
    nb = json.loads((ROOT / "chapters" / "03_gumbel_max.ipynb").read_text())
    nb["cells"][0].update(source=["# an old set-up cell\n", "import lib.gumbel"], id="kept-id",
                          execution_count=7)
    notebook.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return notebook


def test_setup_cell_help_rewrites_no_notebook(tmp_path):
    notebook = stale_copy(tmp_path)
    before = notebook.read_bytes()
    run = [sys.executable, "-m", "tools.setup_cell"]
    done = subprocess.run([*run, "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
    assert notebook.read_bytes() == before
    # ...while without --help the same copy is rewritten (so the check above can fail)
    subprocess.run(run, cwd=tmp_path, capture_output=True, check=True)
    assert notebook.read_bytes() != before


def test_sync_replaces_only_the_source_of_the_setup_cell(tmp_path):
    notebook = stale_copy(tmp_path)
    old = json.loads(notebook.read_text())
    assert setup_cell.sync(notebook) is True
    new = json.loads(notebook.read_text())
    assert "".join(new["cells"][0]["source"]) == setup_cell.source()
    new["cells"][0]["source"] = old["cells"][0]["source"]
    assert new == old  # id, outputs, execution count, metadata and other cells untouched
    before = notebook.read_bytes()
    assert setup_cell.sync(notebook) is False
    assert notebook.read_bytes() == before
