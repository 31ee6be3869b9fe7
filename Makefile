# Every target bootstraps what it needs: system packages (apt), then the virtual environment in .venv.
#   make test    install everything, audit the dependencies (pip-audit), run the whole test suite
#   make run     start the web app on http://localhost:8501
#   make train   train the default recipe on $(DATA) (ARGS="..." adds or overrides flags)
#   make bench   speed benchmark (ARGS="--input clip.mp4 ..."); make bench-memory: RSS against clip length
#   make soak    30 jobs in a row in one process: flat memory, nothing left behind (ARGS="--clips 60 ...")
#   make screenshots   the README's pictures (docs/), from a public-domain photo, with the current model
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := ffmpeg chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

DATA ?= ../shared/datasets
ARGS ?=

.PHONY: test audit run train bench bench-memory soak screenshots system-deps venv clean

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		$(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): requirements.txt requirements-dev.txt requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

venv: $(STAMP)

# audit first, so that pytest's summary stays the last line of the output
test: system-deps $(STAMP) audit
	$(PY) -m pytest -q

# Known vulnerabilities in the installed pinned packages fail; an unreachable vulnerability service only warns.
audit: $(STAMP)
	$(PY) -m tests.audit

run: system-deps $(STAMP)
	$(PY) -m streamlit run app/ui.py --server.address=0.0.0.0 --server.port=8501

train: system-deps $(STAMP)
	$(PY) -m train --train $(DATA)/photos/ccp $(DATA)/photos/vikram --negatives $(DATA)/negatives/davis-no-people \
		--test $(DATA)/video-gt/davis --out runs/default --name default --encoder timm-tf_efficientnet_lite0 \
		--decoder-channels 128,64,32,16,8 --infer-size 320 --size 256x256 --batch 8 --lr 1e-3 --loss bce+dice \
		--epochs 10 --seed 0 --split-seed 0 --val-fraction 0.1 $(ARGS)

bench: system-deps $(STAMP)
	$(PY) -m bench $(ARGS)

bench-memory: system-deps $(STAMP)
	$(PY) -m bench.memory $(ARGS)

soak: system-deps $(STAMP)
	$(PY) -m bench.soak --clips 30 $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

# Remake the README's pictures in docs/ with the shipped model (or SEGMENT_WEIGHTS), all from a clip of a
# public-domain photo (tests/licensed_media.py; never dataset frames): the before/after animation, then the page's
# screenshots from the real-browser test.
screenshots: system-deps $(STAMP)
	$(PY) -m tests.readme_pictures docs/before-after.webp
	SAVE_SCREENSHOTS=1 $(PY) -m pytest -q tests/test_e2e_browser.py -k readme_clip
