# Two commands set everything up on a fresh clone: `make book` and `make test`.
# Everything runs inside .venv, created on first use from pyproject.toml + constraints.txt.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUBMISSIONS ?= submissions
GRADES ?= grades.csv
JOBS ?= 1

.PHONY: help install book student-book test lint unit nbval exercises check-exercises \
        sync-setup grade autograder lab bench timings clean constraints browser-deps \
        sandbox-deps

help:
	@echo "make book            build the HTML book into _build/html"
	@echo "make test            lint, unit tests, grader tests and strict nbval"
	@echo "make lab             open the notebooks in JupyterLab"
	@echo "make exercises       regenerate exercises/ from solutions/"
	@echo "make grade SUBMISSIONS=folder   grade every notebook in folder -> $(GRADES)"
	@echo "make student-book    build the book without the solutions part"
	@echo "make autograder [SET=name]   Gradescope autograder zips (_build/autograder/<set>.zip)"
	@echo "make bench           lib vs PyTorch benchmark -> assets/benchmark.md, then notebook times"
	@echo "make timings         run every notebook (nothing saved) -> assets/notebook_times.md"

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test,grading]"
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo
	@echo "The book is built. Open: $(CURDIR)/_build/html/index.html"

student-book: $(STAMP)
	mkdir -p _build
	$(BIN)/python -m tools.student_toc _build/_toc_student.yml
	$(BIN)/jupyter-book build . --toc _build/_toc_student.yml --path-output _build/student \
	    --warningiserror --keep-going
	@echo "Student edition (no solutions): $(CURDIR)/_build/student/_build/html/index.html"

lint: $(STAMP)
	$(BIN)/ruff check lib tests tools

# Tests and notebooks run on both cores (pytest-xdist). Each process keeps PyTorch to one
# thread (OMP_NUM_THREADS=1): two processes x two threads on two cores would oversubscribe, and
# notebooks are executed (tools/execute.py) with the same setting, so stored outputs match.
unit: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests -q -n 2 --dist loadgroup

nbval: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest --nbval chapters solutions --nbval-current-env \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg --ignore=_build -q -n 2 --dist loadfile

test: lint browser-deps sandbox-deps book unit nbval
	@echo "make test: all passed"

# Chromium for the browser test (tests/test_browser.py). Installed with apt where we are root
# (CI); elsewhere the browser test skips with a message unless Chromium is already there.
browser-deps:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Chromium (Debian package) for the browser test..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "Chromium not found and not root: the browser test will be skipped."; fi

# bubblewrap, the grader's sandbox (lib/grading/isolation.py). Installed with apt where we are
# root; elsewhere the grader falls back to a weaker layer and says which one ran.
sandbox-deps:
	@if command -v bwrap >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing bubblewrap (Debian package) for the grader's sandbox..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	else echo "bwrap not found and not root: the grader will use a weaker isolation layer."; fi

exercises: $(STAMP)
	$(BIN)/python -m lib.grading.build

check-exercises: $(STAMP)
	$(BIN)/python -m lib.grading.build --check

sync-setup: $(STAMP)
	$(BIN)/python tools/sync_setup_cells.py

# HIDDEN=path/to/hidden_checks.py adds instructors' hidden checks (see README).
grade: $(STAMP) sandbox-deps
	$(BIN)/python -m lib.grading $(SUBMISSIONS) --out $(GRADES) --jobs $(JOBS) \
	    $(if $(HIDDEN),--extra $(HIDDEN))

# One zip per exercise set (a Gradescope assignment grades one set): SET=name builds only that
# one, as _build/autograder/<set>.zip.
autograder: $(STAMP)
	@for s in $(or $(SET),$$($(BIN)/python -c "from lib.grading import list_sets; print(*list_sets())")); do \
	    $(BIN)/python -m lib.grading.gradescope build _build/autograder/$$s.zip --set $$s \
	        $(if $(HIDDEN),--extra $(HIDDEN)) || exit 1; done

# Benchmark of lib against PyTorch's built-ins (-> assets/benchmark.md), then notebook times.
bench: $(STAMP)
	$(BIN)/python -m tools.bench
	$(BIN)/python -m tools.timings

# Run every notebook (nothing saved) and report times (-> assets/notebook_times.md).
timings: $(STAMP)
	$(BIN)/python -m tools.timings

lab: $(STAMP)
	$(BIN)/jupyter lab chapters

constraints: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable > constraints.txt

clean:
	rm -rf _build
