# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv on first use; stamps make later runs skip the install.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test install install-dev system-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(PY)
	$(PIP) install -e .
	touch $@

# torch goes first with an exact pin so no resolver ever reaches for a CUDA build.
# The gst extra (PyGObject) compiles against system libraries, so system-deps comes first.
# TrackEval and the reference trackers (tools/eval_tracking.py) go in with --no-deps: their declared
# opencv-python would replace opencv-python-headless.
$(VENV)/.dev: pyproject.toml $(VENV)/.runtime | system-deps
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[train,eval,dev,gst]'
	$(PIP) install --no-deps trackeval==1.3.0 supervision==0.31.2 trackers==2.6.1
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

demo: $(VENV)/.runtime
	$(VENV)/bin/edgeseg demo --out out/demo

# GStreamer and the headers PyGObject builds against (apt-get as root; a no-op once installed).
system-deps:
	bash tools/install_system_deps.sh

test: system-deps $(VENV)/.dev
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) out
