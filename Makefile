# RedLeaf Lab: set-up and the main jobs.
#   make demo    create .venv, install, run the crash/recovery demo
#   make test    create .venv, install, run lint, type check and the whole test suite
#   make bench   the cross-domain call benchmark
#   make lab     JupyterLab on labs/ with the "RedLeaf Lab" kernel
#   make labs-student  the student versions of the graded labs (nbgrader) in build/student/
#   make grade LAB=03 [WORK=my-lab03.ipynb | WORK=my_domain/]  points per test (MIT's make grade)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck pytest bench lab labs-student grade clean

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py redleaf_lab/_core/build.py $(wildcard redleaf_lab/_core/csrc/*) $(wildcard redleaf_lab/_core/csrc/gate/*) $(wildcard redleaf_lab/_core/*.cdef)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m redleaf_lab.jupyter.kernelspec --sys-prefix
	touch $(STAMP)

demo: setup
	$(BIN)/redleaf-lab demo --seconds 5

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy redleaf_lab

pytest: setup
	$(BIN)/python -m pytest -q --nbmake --nbmake-kernel=redleaf-lab tests labs

test: lint typecheck pytest

bench: setup
	$(BIN)/redleaf-lab bench calls

lab: setup
	$(BIN)/redleaf-lab lab

labs-student: setup
	$(BIN)/python -m redleaf_lab.grading.course student build/student

grade: setup
	@test -n "$(LAB)" || { echo "usage: make grade LAB=03 [WORK=notebook-or-domain-folder]"; exit 2; }
	$(BIN)/redleaf-lab grade $(LAB) $(WORK)

clean:
	rm -rf $(VENV) build *.egg-info redleaf_lab/_core/_redleaf_core*.so
