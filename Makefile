# Two commands set everything up on a fresh clone: `make book` and `make test`.
# Everything runs inside .venv, created on first use from pyproject.toml + constraints.txt.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUBMISSIONS ?= submissions
GRADES ?= grades.csv
JOBS ?= 1

.PHONY: help install book student-book pdf test lint unit nbval exercises check-exercises \
        sync-setup grade autograder lab bench timings gpu-smoke clean constraints browser-deps \
        pdf-deps sandbox-deps nbval-matrix nbval-portable grading-error-rates \
        ch10-long-run ch15-training

help:
	@echo "make install         create .venv and install the pinned versions (other targets do it too)"
	@echo "make book            build the HTML book into _build/html"
	@echo "make student-book    build the book without the solutions part"
	@echo "make pdf             build the book, then print it to one PDF: _build/pdf/book.pdf"
	@echo "make test            lint, browser-deps, pdf-deps, book, unit tests (which build and check"
	@echo "                     the PDF), strict nbval on two CPU paths"
	@echo "make lint            ruff on lib, tests and tools"
	@echo "make unit            the pytest suite (tests/)"
	@echo "make nbval           re-run chapters and solutions, compare with their stored outputs"
	@echo "make nbval-matrix    strict nbval under every CPU code path this machine offers"
	@echo "make nbval-portable  strict nbval under the portable CPU code paths (part of make test)"
	@echo "make browser-deps    install Chromium for the browser test where root (else skip)"
	@echo "make pdf-deps        install poppler-utils (pdftoppm, pdftotext) for the PDF test where root"
	@echo "make sandbox-deps    install bubblewrap for the grader's sandbox where root (else skip)"
	@echo "make lab             open the notebooks in JupyterLab"
	@echo "make exercises       regenerate exercises/ from solutions/"
	@echo "make check-exercises fail if exercises/ is out of date with solutions/"
	@echo "make sync-setup      rewrite every notebook's set-up cell (cell 0) from _config.yml"
	@echo "make grade SUBMISSIONS=folder [JOBS=n]   grade every notebook in folder -> $(GRADES)"
	@echo "make grading-error-rates [SEEDS=n] [JOBS=n] [RATES_BUDGET=s]   false-rejection/acceptance of each check -> assets/grading_error_rates.md"
	@echo "make autograder [SET=name]   Gradescope autograder zips (_build/autograder/<set>.zip)"
	@echo "make bench           lib vs PyTorch benchmark -> assets/benchmark.md, then notebook times"
	@echo "make timings         run every notebook (nothing saved) -> assets/notebook_times.md"
	@echo "make gpu-smoke       each chapter's core calls on CUDA (skipped without a GPU)"
	@echo "make ch10-long-run   chapter 10's 120-epoch comparison -> lib/data/ch10_long_run.json"
	@echo "make ch15-training   chapter 15's 30-run selector comparison -> lib/data/ch15_training.json"
	@echo "make constraints     rewrite constraints.txt from the packages installed in .venv"
	@echo "make clean           remove _build"
	@echo "make help            this list"

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test]"
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo
	@echo "The book is built. Open: $(CURDIR)/_build/html/index.html"

# The PDF edition: every page of _toc.yml printed by headless Chromium once MathJax has typeset
# it, merged by pypdf behind a title page and a table of contents (tools/pdf.py).
pdf: browser-deps book
	$(BIN)/python -m tools.pdf
	@echo "The PDF edition: $(CURDIR)/_build/pdf/book.pdf"

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
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests -q -n 2 --dist loadgroup --durations=25

nbval: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest --nbval chapters solutions --nbval-current-env \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg --ignore=_build -q -n 2 --dist loadfile

# The same committed outputs under other CPU code paths (tools/nbval_matrix.py): every variant
# this CPU offers, and the one make test runs (PyTorch's default kernels, MKL's and OpenBLAS's
# portable paths, NumPy without AVX2/AVX-512).
nbval-matrix: $(STAMP)
	$(BIN)/python -m tools.nbval_matrix

nbval-portable: $(STAMP)
	$(BIN)/python -m tools.nbval_matrix --only portable

test: lint browser-deps pdf-deps sandbox-deps book unit nbval nbval-portable
	@echo "make test: all passed"

# Chromium for the browser test (tests/test_browser.py). Installed with apt where we are root
# (CI); elsewhere the browser test skips with a message unless Chromium is already there.
browser-deps:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Chromium (Debian package) for the browser test..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "Chromium not found and not root: the browser test will be skipped."; fi

# poppler-utils (pdftoppm, pdftotext, pdfinfo) for the PDF test (tests/test_pdf.py), which
# builds the PDF edition when `make pdf` has not. Installed with apt where we are root (CI);
# elsewhere the PDF test skips with a message unless poppler-utils is already there.
pdf-deps: browser-deps
	@if command -v pdftoppm >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1 && \
	    command -v pdfinfo >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing poppler-utils (Debian package) for the PDF test..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null; \
	else echo "pdftoppm not found and not root: the PDF test will be skipped."; fi

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
	$(BIN)/python -m tools.setup_cell

# HIDDEN=path/to/hidden_checks.py adds instructors' hidden checks (see README).
grade: $(STAMP) sandbox-deps
	$(BIN)/python -m lib.grading $(SUBMISSIONS) --out $(GRADES) --jobs $(JOBS) \
	    $(if $(HIDDEN),--extra $(HIDDEN))

# Each check on every right and wrong case of tests/grading_cases/ under SEEDS student-side
# seeds (default 1000; hours on 2 cores): per-question error rates with binomial intervals.
# JOBS questions run at a time; RATES_BUDGET=s caps each question's runs at about s seconds
# (slow questions then get fewer seeds, at least 100, and the table says how many).
SEEDS ?= 1000
RATES_BUDGET ?= inf
grading-error-rates: $(STAMP)
	nice $(BIN)/python -m tools.grading_error_rates --seeds $(SEEDS) --jobs $(JOBS) \
	    --budget $(RATES_BUDGET) --out assets/grading_error_rates.md

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

# Chapter 10's five settings on ten paired seeds at 120 epochs (-> lib/data/ch10_long_run.json,
# which the chapter prints; several minutes of CPU).
ch10-long-run: $(STAMP)
	$(BIN)/python -m tools.ch10_long_run

ch15-training: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m tools.ch15_training

# Each chapter's core calls on a CUDA device, compared with a CPU run (tools/gpu_smoke.py);
# prints "no CUDA device: skipped" and succeeds where there is no GPU.
gpu-smoke: $(STAMP)
	$(BIN)/python -m tools.gpu_smoke

lab: $(STAMP)
	$(BIN)/jupyter lab chapters

constraints: $(STAMP)
	$(BIN)/python -m tools.constraints

clean:
	rm -rf _build
