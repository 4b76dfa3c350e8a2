# facecourse — see README.md. Two commands matter: `make lab` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU build by default (CI, laptops). GPU users: `make lab TORCH_SPEC="torch==2.13.0" TORCH_INDEX=<your CUDA index>`,
# see README "GPU machines".
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
export FACECOURSE_DATA ?= $(CURDIR)/data
PYTEST_ARGS ?=

.PHONY: install data lab test unit notebooks course student bench doctor clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

data: install
	$(PY) data_download.py synthetic

# JupyterLab refuses to run as root unless told (containers, cloud VMs): allow it only there.
lab: data
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

test: data
	FACECOURSE_MODE=ci $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=900 -p no:cacheprovider $(PYTEST_ARGS)

unit: data
	FACECOURSE_MODE=ci $(PY) -m pytest tests $(PYTEST_ARGS)

notebooks: data
	FACECOURSE_MODE=ci $(PY) -m pytest notebooks --nbval-lax --nbval-current-env --nbval-cell-timeout=900 $(PYTEST_ARGS)

# Execute every notebook headless into HTML under build/ (FACECOURSE_MODE=ci|full, default full).
course: data
	mkdir -p build
	for nb in notebooks/*.ipynb; do \
		$(VENV)/bin/jupyter nbconvert --to html --execute --ExecutePreprocessor.timeout=-1 \
			--output-dir build "$$nb" || exit 1; \
	done

# Student copies of the notebooks (solution cells removed) in student/, generated, not committed.
student: install
	$(PY) tools/student.py --out student

bench: data
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) "$$b" || exit 1; done

doctor: install
	$(VENV)/bin/facecourse doctor

clean:
	rm -rf build student .pytest_cache
