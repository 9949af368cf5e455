"""Studies are data: a study's prose is checked before training and rendered in a sandbox; `reportgen new`
scaffolds a study that runs and renders as it is; the "Write your own study" page follows the schema."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from reportgen import analyses, i18n, prose, scaffold
from reportgen.config import ConfigError, StudyConfig, load_study
from tests.conftest import ROOT, run_main

STUDY = """\
id: study
title: A study
analyses: [curves, confusion]
model: {name: lenet}
profiles: {smoke: {epochs: 1, seeds: [0], train_limit: 128, eval_limit: 100}}
variants:
  - {name: plain, label: Plain}
  - {name: wide, label: Wide, model: {options: {channels: [8, 16]}}}
"""


@pytest.fixture
def studies(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "experiments"
    directory.mkdir()
    (directory / "study.yaml").write_text(STUDY)
    monkeypatch.chdir(tmp_path)
    return directory


def run_cli(*args: str) -> tuple[int, str]:
    """``reportgen ARGS`` in-process through the entry point: (exit code, stderr + stdout)."""
    code, out, err = run_main(*args)
    return code, err + out


def one_error_line(text: str) -> str:
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, text
    return lines[0]


# ---- prose errors are one line, before any training ---------------------------------------------------------
BAD_PROSE = [
    ("unknown name", "Intro.\n\n{{ acc_of('plain') }}\n", ":3:", "unknown name 'acc_of'", "did you mean 'acc'?"),
    ("syntax", "Intro.\n{% if %}\n", ":2:", "Jinja syntax error", ""),
    ("undeclared analysis", "{{ analysis('confusoin') }}\n", ":1:", "does not declare it", "did you mean 'confusion'?"),
    ("unknown variant", "\n{{ acc('wdie') }}\n", ":2:", "no variant 'wdie'", "did you mean 'wide'?"),
    ("escape the sandbox", "ok\n{{ ''.__class__.__mro__ }}\n", ":2:", "not allowed in prose", "unsafe"),
    ("include", "{% include 'x.md.j2' %}\n", ":1:", "prose cannot include", "analysis(\"name\")"),
    ("import", "{% from 'x' import y %}\n", ":1:", "prose cannot import", ""),
    ("placed twice", "{{ results() }}\n{{ results() }}\n", ":2:", "results() is placed twice", ""),
    ("diff of the baseline", "{{ diff('plain') }}\n", ":1:", "is the baseline", ""),
    ("missing attribute", "{{ setup.epoch }}\n", ":1:", "no attribute 'epoch'", ""),
]


@pytest.mark.parametrize("case, text, line, fragment, hint", BAD_PROSE, ids=[c[0] for c in BAD_PROSE])
def test_bad_prose_is_one_line_naming_file_and_line_exit_2_before_training(studies, case, text, line, fragment, hint):
    (studies / "study.md").write_text(text)
    for command in (["list", "--profile", "smoke"], ["run", "study", "--profile", "smoke"]):
        code, output = run_cli(*command)
        error = one_error_line(output)
        assert code == 2, output
        assert f"study.md{line}" in error and fragment in error and hint in error, error
        assert "epoch 1/" not in output  # nothing trained
    assert not Path("results").exists()


def test_an_analysis_that_does_not_apply_is_refused_before_training(studies):
    (studies / "study.yaml").write_text(STUDY.replace("[curves, confusion]", "[curves, filters]")
                                        .replace("model: {name: lenet}", "model: {name: fcnn}")
                                        .replace(", model: {options: {channels: [8, 16]}}", ""))
    code, output = run_cli("run", "--profile", "smoke")
    error = one_error_line(output)
    assert code == 2
    assert "study.yaml: analyses[1]: filters needs a convolution" in error, error
    assert not Path("results").exists()


def test_template_names_another_studys_prose_with_the_closest_name(studies):
    (studies / "other.md").write_text("Shared prose.\n")
    (studies / "study.yaml").write_text(STUDY + "template: othre\n")
    code, output = run_cli("list", "--profile", "smoke")
    assert code == 2 and "template: no prose file othre.md" in one_error_line(output)
    assert "did you mean 'other'?" in output


def test_prose_sandbox_has_nothing_beyond_the_documented_names():
    env_globals = prose.prose_environment().globals
    assert env_globals == {}  # no range, lipsum, cycler, namespace, dict
    exp = StudyConfig.model_validate({"id": "x", "title": "X", "variants": [{"name": "a"}]})
    blocks = prose.Blocks(analyses={}, results="", models="", gap="", accuracy={}, differences={}, gap_differences={},
                          variants={"a": {"label": "A"}}, baseline="a")
    namespace = prose.context(blocks, setup={}, profile="quick", exp=exp, post=lambda *a: "")
    assert set(namespace) == set(prose.NAMES)


def test_measures_print_with_their_interval():
    acc = prose.Measure(mean=83.7912, low=83.38, high=84.204, std=0.1, n=3)
    diff = prose.Measure(mean=-0.4213, low=-1.07, high=0.24, std=0.3, n=3, unit=" points")
    # the decimals the interval supports (reportgen.numbers): here ±0.4 and ±0.7 points, so one
    assert str(acc) == "83.8% (95% CI 83.4 to 84.2)"
    assert str(diff) == "\u22120.4 points (95% CI \u22121.1 to +0.2)"
    assert str(prose.Measure(mean=90.0, low=float("nan"), high=float("nan"), std=float("nan"), n=1)) == "90.0%"


# ---- a new study, end to end ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_new_study_runs_and_renders_as_it_is(project):
    code, output = run_cli("new", "demo")
    assert code == 0, output
    assert (project / "experiments" / "demo.yaml").is_file() and (project / "experiments" / "demo.md").is_file()
    code, output = run_cli("new", "demo")
    assert code == 2 and "already exists" in one_error_line(output)
    code, output = run_cli("run", "demo", "--profile", "smoke")
    assert code == 0, output
    code, output = run_cli("render", "demo", "--profile", "smoke")
    assert code == 0, output
    post = (project / "docs" / "blog" / "posts" / "demo.md").read_text()
    # the prose's own sentence, with the measured numbers filled in
    assert re.search(r"With batch norm the network reaches \d+\.\d+% test accuracy, against \d+\.\d+% without",
                     post), post
    # the frame: setup, models, each declared analysis in order, results, reproduce box
    order = [post.index(s) for s in ("## Setup", "## The models", "### Learning curves", "## Results",
                                     "Confusion matrix", "## Reproduce this post")]
    assert order == sorted(order), order
    assert "61,706" in post  # LeNet's parameter count, from the zoo


def test_new_refuses_a_bad_id(studies):
    code, output = run_cli("new", "../evil")
    assert code == 2 and "a study id is lower-case letters" in one_error_line(output)


# ---- the Write your own study page ---------------------------------------------------------------------------
def test_every_schema_field_has_help_on_the_guide_page():
    missing = [key for key, _, text in scaffold._field_rows() if not text]
    assert not missing, f"fields without a line in scaffold.FIELD_HELP: {missing}"


def test_guide_lists_every_analysis_prose_name_and_model():
    page = scaffold.guide_markdown()
    for name in analyses.names():
        assert f"| `{name}` | {analyses.get(name).title}" in page
    for usage, _ in prose.NAMES.values():
        assert f"`{usage}`" in page
    for model in ("lenet", "tiny", "deep_pool", "fcnn"):
        assert f"| `{model}` |" in page
    assert "batch_norm (False)" in page


ENGLISH_WORDS = set("the of and is are was were to with which that this from than not into each by its it what".split())


def test_the_portuguese_guide_translates_every_line_and_keeps_the_english_anchors():
    english = scaffold.guide_markdown()
    with i18n.active("pt"):
        page = scaffold.guide_markdown()
    assert "# Escreva seu próprio estudo { #write-your-own-study }" in page
    assert "## Campos { #fields }" in page and "## Nomes na prosa { #names-in-the-prose }" in page
    assert "| `variants.intended` | — | outras diferenças" in page and "(acima de 10%)" in page
    assert "| `id` | obrigatório |" in page
    models = tuple(f"| `{m}` |" for m in ("lenet", "tiny", "deep_pool", "fcnn"))
    rows = [line for line in page.splitlines() if line.startswith("| `") and not line.startswith(models)]
    assert len(rows) > 100 and not set(rows) & set(english.splitlines()), "a row of the guide is still English"
    text = re.sub(r"```.*?```|`[^`]*`", " ", page, flags=re.S)  # code and YAML keys stay English
    english_lines = [line for line in text.splitlines()
                     if len(ENGLISH_WORDS & set(re.findall(r"[a-z']+", line.lower()))) >= 2]
    assert not english_lines, english_lines[:3]
    assert "# escreve experiments/my-study.yaml e .md" in page  # comments in the examples too


def test_shipped_studies_have_valid_prose():
    from reportgen.context import setup
    from reportgen.study import Study, VariantResults
    for path in sorted(p for p in (ROOT / "experiments").glob("*.yaml") if "." not in p.stem):  # not <id>.pt.yaml
        exp = load_study(path)
        prose_file = prose.prose_path(path, exp)
        if prose_file is None:
            continue
        study = Study(id=exp.id, config=exp, profile="quick",
                      variants=[VariantResults(v.name, v.label or v.name, v.description, v.dataset or exp.dataset)
                                for v in exp.variants])
        prose.check(prose_file, exp, setup(exp, study, "quick"), "quick")


def test_scaffolded_files_match_the_schema(tmp_path):
    paths = scaffold.new_study(tmp_path, "demo", "2026-11-24")
    exp = load_study(paths[0])
    assert exp.id == "demo" and [v.name for v in exp.variants] == ["plain", "batch-norm"]
    shutil.copy(paths[1], tmp_path / "copy.md")
    assert "{{ analysis(\"curves\") }}" in paths[1].read_text()


PROFILE_TRAINING = """\
id: s
title: S
training: {optimizer: adam, lr: 0.003, schedule: onecycle, batch_size: 32}
profiles:
  full: {epochs: 3, training: %s}
variants:
  - {name: a}
  - {name: b, training: {lr: 0.001}}
"""


def test_a_profile_overrides_the_training_block_before_the_variant_does(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(PROFILE_TRAINING % "{batch_size: 128, label_smoothing: 0.1, lr: 0.01}")
    exp = load_study(path)
    quick_a, full_a, full_b = (exp.resolve(exp.variant(v), 0, p)["training"]
                               for v, p in (("a", "quick"), ("a", "full"), ("b", "full")))
    assert (quick_a["batch_size"], "label_smoothing" in quick_a, quick_a["lr"]) == (32, False, 0.003)
    assert (full_a["batch_size"], full_a["label_smoothing"], full_a["lr"], full_a["epochs"]) == (128, 0.1, 0.01, 3)
    assert (full_b["batch_size"], full_b["lr"]) == (128, 0.001)  # the variant's own override comes last


@pytest.mark.parametrize("override,fragments", [
    ("{batch_sise: 128}", ["unknown field 'profiles.full.training.batch_sise'", "did you mean 'batch_size'?"]),
    ("{epochs: 5}", ["profiles.full.training", "epochs is set by profiles.<profile>.epochs"]),
    ("{batch_size: 0}", ["profiles.full.training.batch_size"]),
    ("{warmup_epochs: 2}", ["profiles.full.training", "warmup_epochs applies to schedule: warmup_cosine only"]),
])
def test_a_bad_profile_training_override_is_one_line_before_anything_runs(tmp_path, override, fragments):
    path = tmp_path / "s.yaml"
    path.write_text(PROFILE_TRAINING % override)
    with pytest.raises(ConfigError) as err:
        load_study(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message, message
