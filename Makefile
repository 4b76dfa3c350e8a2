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

.PHONY: install data chromium lab test unit notebooks course student bench doctor clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -e '.[dev,photo]'
	touch $@

install: $(VENV)/.installed

data: install
	$(PY) data_download.py synthetic

# JupyterLab refuses to run as root unless told (containers, cloud VMs): allow it only there.
lab: data
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# tests/test_viz_mesh_browser.py drives Debian's chromium (playwright's own browser download is not used): installed
# here when absent and running as root; elsewhere that test is skipped and says why.
chromium:
	@if ! command -v chromium >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

test: data chromium
	FACECOURSE_MODE=ci FACECOURSE_PROGRESS=text $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=900 -p no:cacheprovider $(PYTEST_ARGS)

unit: data
	FACECOURSE_MODE=ci $(PY) -m pytest tests $(PYTEST_ARGS)

notebooks: data
	FACECOURSE_MODE=ci FACECOURSE_PROGRESS=text $(PY) -m pytest notebooks --nbval-lax --nbval-current-env --nbval-cell-timeout=900 $(PYTEST_ARGS)

# The course as a static site: every notebook executed (FACECOURSE_MODE=ci|full, default full) into
# build/course/, k3d views as offline snapshots, index.html with the chapter map and measured run times
# (text progress bars: a notebook widget bar is saved as a static 0%).
course: data
	FACECOURSE_PROGRESS=text $(PY) tools/course.py --out build/course

# Student copies of the notebooks (solution cells removed) in student/, generated, not committed.
student: install
	$(PY) tools/student.py --out student

bench: data
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) "$$b" || exit 1; done

doctor: install
	$(VENV)/bin/facecourse doctor

clean:
	rm -rf build student .pytest_cache
