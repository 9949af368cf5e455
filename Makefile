# reportgen — the verbs. `make report` and `make test` are all a new user needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= quick
DEVICE  ?= auto
# The site generator of `report` and `build`: mkdocs (MkDocs + Material) or zensical (docs/about.md says what differs).
ENGINE  ?= mkdocs
# Where `report` and `run` train: local (this machine, one process per core) or ray (the Ray cluster at RAY_ADDRESS;
# README "Past one machine").
EXECUTOR ?= local
EXPERIMENTS ?=
# WORKERS=N trains N runs at once with the local executor; empty: one per core.
WORKERS ?=
WORKERS_FLAG := $(if $(WORKERS),--workers $(WORKERS),)
# The studies to run and build (EXPERIMENTS= is the same); empty: all of them.
STUDIES ?= $(EXPERIMENTS)
# EXERCISES=1 also trains every exercise of the studies (the full profile always does); NO_ANSWERS=1 builds the
# site with the questions but not the measured answers (homework).
EXERCISES ?=
NO_ANSWERS ?=
# LANGS=en builds the English edition alone (faster); empty: every edition (English at the root, Portuguese in pt/).
LANGS ?=
LANGS_FLAG := $(foreach lang,$(LANGS),--langs $(lang))
EXERCISE_FLAG := $(if $(filter-out 0,$(EXERCISES)),--exercises,)
ANSWERS_FLAG := $(if $(filter-out 0,$(NO_ANSWERS)),--no-answers,)

.PHONY: report test check data run render build serve bench deploy clean venv messages

# Bytecode is compiled when a module is first imported and kept in __pycache__, not at install: compiling all of
# site-packages (14,000 files, most never imported) took 46 s on two cores here, while importing everything the
# package and its tests use compiled the 3,393 files it needed in 14 s. Every recipe may write those caches, even where
# the environment sets PYTHONDONTWRITEBYTECODE: otherwise each of the many Python processes a command or the
# tests start (test workers, `reportgen` commands, training workers) would compile everything it imports again.
unexport PYTHONDONTWRITEBYTECODE
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e '.[test,zensical,ray]'
	touch $(STAMP)

venv: $(STAMP)

## Provision data, train what is not cached, render the posts and build the site into site/.
## EXECUTOR=ray trains on the Ray cluster at RAY_ADDRESS (make report EXECUTOR=ray RAY_ADDRESS=10.0.0.5:6379).
## STUDIES="a b" (or EXPERIMENTS="a b") runs and builds only those studies; the home page lists the others with the command that runs them.
report: $(STAMP)
	$(BIN)/reportgen run $(STUDIES) --profile $(PROFILE) --device $(DEVICE) --executor $(EXECUTOR) $(WORKERS_FLAG) $(EXERCISE_FLAG)
	$(BIN)/reportgen build $(STUDIES) --profile $(PROFILE) --engine $(ENGINE) $(ANSWERS_FLAG) $(LANGS_FLAG)

## The test suite (synthetic data only; a few minutes on a 2-core CPU), in one test process per core
## (pytest-xdist; whole modules per process, so a module's shared project is trained and built once). TEST_JOBS=0
## runs it in this one process.
TEST_JOBS ?= auto
PYTEST_JOBS := -n $(TEST_JOBS) --dist loadscope
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_JOBS)

## The fast tier while changing the code: every unit test, without those that train, build a site or open a browser
## (marked `slow`); under a minute.
check: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_JOBS)

## Extract every translatable message of the generic text (babel.cfg) and update the Brazilian Portuguese catalog,
## reportgen/locale/pt_BR/LC_MESSAGES/messages.po: new messages come in untranslated, removed ones go.
## tests/test_i18n_catalog.py fails until every message is translated.
CATALOG_TEMPLATE := build/messages.pot
messages: $(STAMP)
	mkdir -p build
	$(BIN)/pybabel extract --no-location --sort-output --omit-header -F babel.cfg -o $(CATALOG_TEMPLATE) reportgen
	$(BIN)/pybabel update --init-missing --no-fuzzy-matching --ignore-obsolete -i $(CATALOG_TEMPLATE) \
	  -d reportgen/locale -l pt_BR
	rm -f $(CATALOG_TEMPLATE)

## Fetch the datasets the experiments use.
data: $(STAMP)
	$(BIN)/reportgen data fetch

run: $(STAMP)
	$(BIN)/reportgen run $(STUDIES) --profile $(PROFILE) --device $(DEVICE) --executor $(EXECUTOR) $(WORKERS_FLAG) $(EXERCISE_FLAG)

render: $(STAMP)
	$(BIN)/reportgen render $(STUDIES) --profile $(PROFILE) $(ANSWERS_FLAG) $(LANGS_FLAG)

build: $(STAMP)
	$(BIN)/reportgen build $(STUDIES) --profile $(PROFILE) --engine $(ENGINE) $(ANSWERS_FLAG) $(LANGS_FLAG)

serve: $(STAMP)
	$(BIN)/reportgen build $(STUDIES) --profile $(PROFILE)
	$(BIN)/mkdocs serve

## Our device-resident engine against torchvision Dataset + DataLoader + PIL transforms.
bench: $(STAMP)
	$(BIN)/reportgen bench

## Publish site/ as built (both editions) to the gh-pages branch.
deploy: $(STAMP)
	$(BIN)/reportgen build $(STUDIES) --profile $(PROFILE) $(LANGS_FLAG)
	$(BIN)/ghp-import --no-jekyll --push --force site

## Remove generated output: results, caches, the site, generated posts and pages, vendored assets, build leftovers
## (keeps data/ and the venv; `make distclean` removes those too).
clean:
	rm -rf site results .cache build test-artifacts .site-build-* .site-old-* .editions \
	  docs/index.md docs/write-your-own.md docs/blog/posts/*.md docs/blog/posts/*/ docs/blog/posts/.[!.]* \
	  docs/assets/vendor docs/assets/figures

distclean: clean
	rm -rf $(VENV) data
