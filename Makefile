# reportgen — the verbs. `make report` and `make test` are all a new user needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= quick
DEVICE  ?= auto
EXPERIMENTS ?=

.PHONY: report test data run render build serve bench deploy clean venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

## Provision data, train what is not cached, render the posts and build the site into site/.
report: $(STAMP)
	$(BIN)/reportgen run $(EXPERIMENTS) --profile $(PROFILE) --device $(DEVICE)
	$(BIN)/reportgen build --profile $(PROFILE)

## The test suite (synthetic data only; seconds to a few minutes on a laptop CPU).
test: $(STAMP)
	$(BIN)/python -m pytest

## Fetch the datasets the experiments use.
data: $(STAMP)
	$(BIN)/reportgen data fetch

run: $(STAMP)
	$(BIN)/reportgen run $(EXPERIMENTS) --profile $(PROFILE) --device $(DEVICE)

render: $(STAMP)
	$(BIN)/reportgen render $(EXPERIMENTS) --profile $(PROFILE)

build: $(STAMP)
	$(BIN)/reportgen build --profile $(PROFILE)

serve: $(STAMP)
	$(BIN)/reportgen build --profile $(PROFILE)
	$(BIN)/mkdocs serve

## Our device-resident engine against torchvision Dataset + DataLoader + PIL transforms.
bench: $(STAMP)
	$(BIN)/reportgen bench

deploy: $(STAMP)
	$(BIN)/reportgen build --profile $(PROFILE)
	$(BIN)/mkdocs gh-deploy --force

## Remove generated output (keeps data/ and the venv; `make distclean` removes those too).
clean:
	rm -rf site results cache build docs/index.md docs/blog/posts/*.md docs/blog/posts/*/ test-artifacts

distclean: clean
	rm -rf $(VENV) data
