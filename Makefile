# spikeclip-lite — the two commands: `make run` (the course's main job) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch/torchvision pair installed first; override for your platform, e.g.
#   make run TORCH_INSTALL="torch torchvision"   (pyproject only asks for ranges)
TORCH_INSTALL ?= torch==2.14.1 torchvision==0.29.1
# Free disk space (GB) the install needs (a fresh clone measured 6.1 GB at its peak, 2026-12-07); checked before it starts, 0 skips it.
MIN_FREE_GB ?= 7
OUT ?= outputs

.PHONY: run course test test-full test-browser lab bench lint samples clean help test-gpu install gpu-wheels

help:
	@echo "make run    - create $(VENV) if missing, install, run SpikeCLIP end to end (fast, offline) into $(OUT)/pipeline"
	@echo "make course - execute every notebook headless (papermill, fast mode) into $(OUT)/course"
	@echo "make test   - unit tests + every notebook executed in fast mode (papermill and nbval)"
	@echo "make test-full - 01–03 in full mode on the CPU; 04–07 in full mode at a small size (CI runs it)"
	@echo "make test-browser - the widget notebooks in JupyterLab + headless Chromium: every control moved (screenshots in $(OUT)/browser)"
	@echo "make lab    - open JupyterLab on the notebooks"
	@echo "make bench  - vectorised code vs plain loop references, spike-set storage, LRN inference, training throughput, fast mode's training step"
	@echo "make test-gpu - every notebook in full mode on CUDA into $(OUT)/gpu/ (needs a GPU)"
	@echo "make gpu-wheels - wheels a bare GPU image lacks, for benchmarks/gpu_check.sh, into .gpu_wheels/"
	@echo "make lint   - ruff"

$(VENV)/.installed: pyproject.toml
	@$(PY) -c "import torch, torchvision" 2>/dev/null || { \
	  dir="$(abspath $(VENV))"; while [ ! -d "$$dir" ]; do dir=$$(dirname "$$dir"); done; \
	  free=$$(df -Pk "$$dir" 2>/dev/null | awk 'NR==2 {print int($$4 / 1048576)}'); \
	  [ -z "$$free" ] || [ "$$free" -ge "$(MIN_FREE_GB)" ] || { echo "make: only $$free GB free where $(VENV) goes; installing \
	$(TORCH_INSTALL) takes about $(MIN_FREE_GB) GB on x86_64 Linux (PyPI's build of torch brings CUDA's \
	libraries). Free some space, or set MIN_FREE_GB to what your TORCH_INSTALL needs (0 skips this check)." >&2; \
	  exit 1; }; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install -q $(TORCH_INSTALL)
	$(PY) -m pip install -q -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (spikeclip-lite)" >/dev/null
	@touch $@

# What the tests, papermill runs and ruff need on top (`make run` and `make lab` do without them).
$(VENV)/.dev-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: $(VENV)/.dev-installed

run: $(VENV)/.installed
	$(PY) -m spikeclip_lite pipeline --fast --clip teaching --out $(OUT)/pipeline

course: $(VENV)/.dev-installed
	$(PY) -m spikeclip_lite course --out $(OUT)/course

test: $(VENV)/.dev-installed
	SPIKECLIP_FAST=$${SPIKECLIP_FAST:-1} HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} $(PY) -m pytest tests -q
	SPIKECLIP_FAST=$${SPIKECLIP_FAST:-1} HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} $(PY) -m pytest --nbval-lax --nbval-cell-timeout=600 notebooks -q -p no:cacheprovider
	@$(PY) tests/print_timings.py

test-full: $(VENV)/.dev-installed
	HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} $(PY) -m pytest tests/test_notebooks.py tests/test_benchmarks.py -m fullmode -q -s -p no:cacheprovider

# Needs Debian's chromium: installed here with apt-get when run as root, else `sudo apt-get install -y chromium`.
test-browser: $(VENV)/.installed
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get install -y -q chromium >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)); } || \
	  { echo "make test-browser needs Debian's chromium: sudo apt-get install -y chromium"; exit 1; }
	@$(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install -q -e '.[browser]'
	SPIKECLIP_FAST=$${SPIKECLIP_FAST:-1} HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} $(PY) tests/browser_check.py --out $(OUT)/browser --chromium $$(command -v chromium)

lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab notebooks

bench: $(VENV)/.installed
	$(PY) benchmarks/bench.py
	$(PY) benchmarks/bench_lrn.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_windows.py

# Every notebook in FULL mode on CUDA (papermill -p FAST False -p DEVICE cuda) → outputs/gpu/
test-gpu: $(VENV)/.dev-installed
	$(PY) -m spikeclip_lite course --full --device cuda --out $(OUT)/gpu

gpu-wheels: $(VENV)/.dev-installed
	$(PY) benchmarks/gpu_wheels.py

lint: $(VENV)/.dev-installed
	$(PY) -m ruff check spikeclip_lite tests benchmarks notebooks

samples: $(VENV)/.installed
	$(PY) -m spikeclip_lite samples

clean:
	rm -rf $(OUT) .pytest_cache
