"""The instructors' guide (instructors.md) says what the code does: its syllabus table has the
points of lib.grading's exercise sets, and every command, file and number it names exists."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

from lib.grading import get_set, list_sets
from lib.grading.isolation import LAYERS, Limits
from tools import syllabus

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "instructors.md"
TEXT = PAGE.read_text()
FLAT = " ".join(TEXT.split())  # line breaks do not matter
MAKEFILE = (ROOT / "Makefile").read_text()


def _table_rows() -> list[list[str]]:
    block = TEXT.split(syllabus.START, 1)[1].split(syllabus.END, 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in block.splitlines() if line.startswith("|")]
    return rows[2:]  # after the header and the |---| line


def test_syllabus_table_is_the_one_computed_from_the_sets():
    assert syllabus.render(TEXT) == TEXT, "stale syllabus table: run `python -m tools.syllabus`"


def test_syllabus_points_match_the_grading_sets():
    """Read back from the page itself, without tools.syllabus: each set once, with its points,
    its questions and its time budget."""
    rows = _table_rows()
    *weeks, total = rows
    seen = []
    for row in weeks:
        name = re.search(r"\{doc\}`(\w+) <exercises/", row[2]).group(1)
        seen.append(name)
        exercise_set = get_set(name)
        questions = [q for q in exercise_set.questions.values() if not q.hidden]
        points = float(row[3].split()[0])
        assert points == sum(q.points for q in questions) == exercise_set.total_points, name
        breakdown = [float(p) for p in re.search(r"\((.*)\)", row[3]).group(1).split("+")]
        assert breakdown == [q.points for q in questions], name
        for q in questions:
            if len(row) == 5:  # one budget for every question: stated after the table
                assert (f"Time budget: {q.seconds:g} s for every question (its answer cell), "
                        f"and {q.seconds:g} s more for its check.") in FLAT, (name, q.name)
            else:
                assert f"{q.seconds:g} s" in row[4].split(" or "), (name, q.name)
    assert sorted(seen) == sorted(list_sets()), "every exercise set once"
    assert float(total[3].strip("*")) == sum(get_set(s).total_points for s in list_sets())
    questions = sum(len(get_set(s).visible) for s in list_sets())
    assert f"**total: {questions} questions**" == total[2]
    assert [int(r[0]) for r in weeks] == list(range(1, len(weeks) + 1))


def test_syllabus_links_pages_that_exist_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    for doc in re.findall(r"\{doc\}`(?:[^`<]*<)?([^`<>]+)>?`", TEXT):
        assert re.search(rf"^\s*-\s*file:\s*{re.escape(doc)}\s*$", toc, re.M), doc
        assert not doc.startswith("solutions/"), "the student edition has no solutions"


def test_guide_is_in_the_toc_and_linked_from_the_front_page():
    toc = (ROOT / "_toc.yml").read_text()
    assert re.search(r"^\s*-\s*file:\s*instructors\s*$", toc, re.M)
    root = re.search(r"^root:\s*(\S+)", toc, re.M).group(1)
    assert "{doc}`instructors`" in (ROOT / f"{root}.md").read_text()


def test_every_make_target_the_guide_names_exists():
    targets = set(re.findall(r"^([a-z][\w-]*):", MAKEFILE, re.M))
    named = set(re.findall(r"(?:`|^)make ([a-z][\w-]*)", TEXT, re.M))  # commands, not prose
    assert {"grade", "autograder", "student-book", "pdf", "sync-setup",
            "grading-error-rates"} <= named
    assert named <= targets, f"not in the Makefile: {named - targets}"
    # the variables it passes are the ones the recipes read
    commands = re.findall(r"(?:`|^)(make [a-z][^`#\n]*)", TEXT, re.M)
    variables = {v for c in commands for v in re.findall(r"\b([A-Z]+)=", c)}
    assert {"SUBMISSIONS", "JOBS", "HIDDEN", "SET", "GRADES", "SEEDS"} <= variables
    for var in variables:
        assert f"$({var})" in MAKEFILE, var


def test_every_module_and_option_the_guide_names_exists():
    modules = set(re.findall(r"python -m ([\w.]+)", TEXT))
    assert {"lib.grading", "tools.syllabus"} <= modules
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module
    line = next(li for li in TEXT.splitlines() if "python -m lib.grading " in li)
    usage = subprocess.run([sys.executable, "-m", "lib.grading", "--help"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout
    for option in re.findall(r"--[a-z][\w-]*", line):
        assert option in usage, option
    assert "--extra" in usage and "--extra $(HIDDEN)" in MAKEFILE


def test_every_file_the_guide_names_exists():
    paths = set(re.findall(r"`((?:[\w.-]+/)+[\w.<>-]+\.\w+|[\w-]+\.(?:md|yml|txt))`", TEXT))
    assert "tests/fixtures/hidden_gumbel_checks.py" in paths
    for path in paths:
        if "<" in path:  # a pattern such as lib/grading/sets/<set>.py
            assert list(ROOT.glob(re.sub(r"<[^>]+>", "*", path))), path
        elif path == "assets/grading_error_rates.md":  # generated by make grading-error-rates
            assert f"--out {path}" in MAKEFILE
        elif path.startswith("_build/"):  # a build output: whether it exists yet depends on
            assert path in MAKEFILE, path  # what ran before, so its make target must name it
        else:
            assert (ROOT / path).exists(), path


def test_sections_it_refers_to_exist():
    readme = (ROOT / "README.md").read_text()
    assert "### How tampering is prevented, and its limits" in readme
    assert "*How tampering is prevented, and its limits*" in FLAT
    assert "## An exercise set" in (ROOT / "CONTRIBUTING.md").read_text()


def test_isolation_summary_matches_the_code():
    limits = Limits()
    assert f"{limits.memory_bytes // 1024**3} GiB of address space" in FLAT
    assert f"{limits.processes} processes" in FLAT
    assert f"{limits.file_bytes // 1024**2} MiB per file" in FLAT
    assert f"{limits.open_files} open files" in FLAT
    for layer in LAYERS:
        assert f"`{layer}`" in TEXT
    assert "GRADER_SANDBOX" in (ROOT / "lib" / "grading" / "isolation.py").read_text()


def test_time_budget_rule_matches_the_runner():
    """'one minute plus twice the sum of its budgets' is the runner's default limit."""
    from lib.grading import runner

    assert "one minute plus twice the sum of its budgets" in FLAT
    name = list_sets()[0]
    budgets = sum(q.seconds for q in get_set(name).questions.values())
    assert runner.notebook_timeout(name) == 60 + 2 * budgets
