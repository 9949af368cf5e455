"""Exercises (issue 20): declared in a study, trained on demand with ``run --exercise``, cached like any run, shared
with an identical variant of another study, and answered in the post from the measured numbers — or not, with
``--no-answers`` / ``hide_answers``."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, invoke, run_main

STUDY = {
    "id": "ex", "title": "Exercise test", "varies": "the model", "dataset": "fashion-mnist",
    "model": {"name": "tiny"},
    "training": {"optimizer": "adam", "lr": 0.003, "batch_size": 64, "epochs": 2},
    "profiles": {"smoke": {"epochs": 2, "seeds": [0, 1]}},
    "baseline": "tiny",
    "variants": [{"name": "tiny", "label": "Tiny CNN"}],
    "analyses": [],
    "exercises": [
        {"name": "fc", "label": "Small FC", "question": "Does a small fully connected net do as well?",
         "hint": "Count the weights.", "model": {"name": "fcnn", "options": {"hidden": [16]}},
         "intended": ["parameters"], "intended_reason": "a fully connected layer needs one weight per pixel",
         "prediction": {"accuracy": "lower", "because": "it has no filters"}},
        {"name": "slow", "question": "What does a ten times smaller learning rate do?", "training": {"lr": 0.0003}},
    ],
}


def write_study(project: Path, study: dict, name: str | None = None) -> Path:
    path = project / "experiments" / f"{name or study['id']}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False, allow_unicode=True))
    return path


@pytest.fixture
def ex_project(project) -> Path:
    """The ``project`` fixture with the dropout study replaced by the small study above."""
    (project / "experiments" / "dropout.yaml").unlink()
    write_study(project, STUDY)
    return project


def post(project: Path) -> str:
    return (project / "docs" / "blog" / "posts" / "ex.md").read_text()


def answer_block(text: str, title: str) -> str:
    """The exercise section of the exercise titled ``title`` (up to the next one or the closing section)."""
    start = text.index(f". {title}\n")
    ends = [i for i in (text.find("\n### ", start), text.find("\n## ", start)) if i != -1]
    return text[start:min(ends) if ends else len(text)]


def admonition_body(block: str, opening: str) -> str:
    """The lines of the collapsible block that ``opening`` starts, as Markdown nests them: each indented four spaces
    (or blank) up to the first line that is not."""
    body = []
    for line in block[block.index(opening):].splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        body.append(line)
    return "\n".join(body)


@pytest.mark.slow  # trains
def test_an_exercise_is_trained_cached_and_answered_from_its_numbers(ex_project):
    first = invoke("run", "--profile", "smoke", "--exercise", "fc", "--workers", "1")
    assert first.exit_code == 0, first.output
    assert "exercises: ex/fc" in first.output and "ex/fc/seed-1: test accuracy" in first.output
    assert not (ex_project / "results" / "ex" / "slow").exists()  # only the named exercise trains
    again = invoke("run", "--profile", "smoke", "--exercise", "fc", "--workers", "1")
    assert "4 of 4 runs cached; 0 to run" in again.output and "test accuracy" not in again.output
    assert "2 of 2 runs cached" in invoke("run", "--profile", "smoke").output  # not run by default in smoke

    assert invoke("render", "--profile", "smoke").exit_code == 0
    text = post(ex_project)
    assert text.index("## Exercises") < text.index("## What this shows")
    fc = answer_block(text, "Small FC")
    assert "```bash\nreportgen run ex --profile smoke --exercise fc\n```" in fc
    assert '??? tip "Hint"\n    Count the weights.' in fc and '??? success "Answer (measured)"' in fc
    accs = [100 * json.loads((ex_project / "results" / "ex" / "fc" / f"seed-{s}" / "metrics.json").read_text())
            ["test_acc"] for s in (0, 1)]
    assert f"reached {sum(accs) / 2:.2f}% test accuracy" in fc
    assert "paired over 2 seeds" in fc and "**The prediction:** Small FC scores lower than Tiny CNN" in fc
    assert ("**Confirmed:**" in fc) != ("**Not confirmed:**" in fc)
    assert "![Training curves of Tiny CNN, Small FC" in fc  # its curves against the baseline's
    answer = admonition_body(fc, '??? success "Answer (measured)"')  # all of it folded: nothing falls out of the block
    for part in ("test accuracy", "paired over 2 seeds", "Its networks", "**The prediction:**", "![Training curves"):
        assert part in answer, (part, answer)
    assert "\n\n    **The prediction:**" in answer  # a paragraph of its own, not run into the convergence sentence
    assert (ex_project / "docs" / "blog" / "posts" / "ex" / "exercise-fc.png").is_file()
    slow = answer_block(text, "slow")
    assert '??? note "Answer: not run yet"' in slow and "reportgen run ex --profile smoke --exercise slow" in slow


@pytest.mark.slow  # trains
def test_no_answers_and_hide_answers_publish_the_questions_only(ex_project):
    assert invoke("run", "--profile", "smoke", "--exercises").exit_code == 0
    assert invoke("render", "--profile", "smoke").exit_code == 0
    assert post(ex_project).count('"Answer (measured)"') == 2
    assert invoke("render", "--profile", "smoke", "--no-answers").exit_code == 0
    hidden = post(ex_project)
    assert "Answer" not in hidden and "The answers are not published here" in hidden
    assert "Does a small fully connected net do as well?" in hidden and "--exercise slow" in hidden
    write_study(ex_project, {**STUDY, "hide_answers": True})
    assert invoke("render", "--profile", "smoke").exit_code == 0
    assert post(ex_project) == hidden

    # `against`: the answer compares with that variant, not the baseline (its runs are the fc exercise's twins)
    study = json.loads(json.dumps(STUDY))
    study["variants"].append({"name": "small-fc", "label": "FC variant", "model": STUDY["exercises"][0]["model"],
                              "intended": ["parameters"], "intended_reason": "on purpose"})
    study["exercises"][1]["against"] = "small-fc"
    write_study(ex_project, study)
    assert "identical run found" in invoke("run", "--profile", "smoke", "--workers", "1").output
    assert invoke("render", "--profile", "smoke").exit_code == 0
    slow, fc = answer_block(post(ex_project), "slow"), answer_block(post(ex_project), "Small FC")
    metrics = [json.loads((ex_project / "results" / "ex" / "small-fc" / f"seed-{s}" / "metrics.json").read_text())
               for s in (0, 1)]
    assert f"over 2 seeds, against {50 * sum(m['test_acc'] for m in metrics):.2f}% for FC variant." in slow
    assert "for Tiny CNN." not in slow and "for Tiny CNN." in fc


def test_a_misspelt_exercise_is_one_line_with_the_closest_name_before_training(ex_project):
    code, out, err = run_main("run", "ex", "--profile", "smoke", "--exercise", "slwo")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0
    assert "--exercise 'slwo': no such exercise in ex; did you mean 'slow'?" in err
    assert not (ex_project / "results").exists()


def test_a_bad_exercise_field_is_one_line_naming_it_and_the_closest_field(ex_project):
    study = json.loads(json.dumps(STUDY))
    study["exercises"][1]["questoin"] = study["exercises"][1].pop("question")
    path = write_study(ex_project, study)
    code, _, err = run_main("run", "--profile", "smoke")
    assert code == 2 and err.strip().count("\n") == 0
    assert f"{path.relative_to(ex_project)}: unknown field 'exercises[1].questoin'; did you mean 'question'?" in err
    study["exercises"][1]["question"] = study["exercises"][1].pop("questoin")
    study["exercises"][1]["model"] = {"options": {"dropuot": 0.5}}
    study["model"] = {"name": "lenet"}
    write_study(ex_project, study)
    code, _, err = run_main("list")
    assert code == 2 and "exercises[1].model.options.dropuot" in err and "did you mean 'dropout'?" in err
    for change, message in (({"name": "tiny"}, "already a variant's name"),
                            ({"against": "tinny"}, "exercises[1].against: 'tinny' is not a variant of this study; "
                                                   "it names the variant the answer compares with (tiny); did you "
                                                   "mean 'tiny'?"),
                            ({"training": None}, "changes nothing")):
        bad = json.loads(json.dumps(STUDY))
        bad["exercises"][1].update(change)
        bad["exercises"][1] = {k: v for k, v in bad["exercises"][1].items() if v is not None}
        write_study(ex_project, bad)
        code, _, err = run_main("list")
        assert code == 2 and message in err and err.strip().count("\n") == 0


@pytest.mark.slow  # trains
def test_an_exercise_identical_to_another_studys_variant_is_copied_not_trained(ex_project):
    other = {**STUDY, "id": "other", "exercises": [],
             "variants": [{"name": "tiny"}, {"name": "small-fc", "model": {"name": "fcnn",
                                                                          "options": {"hidden": [16]}},
                                             "intended": ["parameters"], "intended_reason": "on purpose"}]}
    write_study(ex_project, other)
    assert invoke("run", "other", "--profile", "smoke").exit_code == 0
    result = invoke("run", "ex", "--profile", "smoke", "--exercise", "fc", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "ex/fc/seed-0: identical run found" in result.output and "ex/fc/seed-0 epoch" not in result.output
    mine = ex_project / "results" / "ex" / "fc" / "seed-0"
    theirs = ex_project / "results" / "other" / "small-fc" / "seed-0"
    assert (mine / "weights.safetensors").read_bytes() == (theirs / "weights.safetensors").read_bytes()


def test_an_exercise_that_changes_more_than_it_says_is_warned_about(ex_project):
    study = json.loads(json.dumps(STUDY))
    del study["exercises"][0]["intended"], study["exercises"][0]["intended_reason"]
    write_study(ex_project, study)
    result = invoke("list", "--profile", "smoke")
    assert result.exit_code == 0
    assert ("exercises[0] 'fc' differs from 'tiny', which it is compared with, in parameter count as well as in "
            "what it says it changes") in result.output
    assert "exercises[1]" not in result.output  # a training override is the recipe change it says it makes


def test_only_the_full_profile_runs_every_exercise_without_being_asked():
    from reportgen.config import discover
    from reportgen.exercises import choose
    studies = discover(ROOT / "experiments")
    names = list(studies)
    everything = choose(studies, names, "full")
    assert choose(studies, names, "quick") == {} and choose(studies, names, "smoke") == {}
    assert {sid for sid, (_, exp) in studies.items() if exp.exercises} == set(everything)
    assert choose(studies, names, "quick", ["digits"]) == {"tiny": [studies["tiny"][1].exercises[1]]}


def test_every_shipped_training_study_has_two_exercises_and_they_leave_every_cache_key_as_it_was():
    from reportgen.config import discover, load_study
    from reportgen.store import cache_key
    for sid, (path, exp) in discover(ROOT / "experiments").items():
        if not exp.trains:
            continue
        assert len(exp.exercises) >= 2, sid
        data = yaml.safe_load(path.read_text())
        del data["exercises"]
        bare = path.parent.parent / ".pytest-bare.yaml"
        try:
            bare.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
            without = load_study(bare)
        finally:
            bare.unlink(missing_ok=True)
        for profile in ("quick", "full"):
            for v, w in zip(exp.variants, without.variants):
                assert cache_key(exp.resolve(v, 0, profile), "x") == cache_key(without.resolve(w, 0, profile), "x")


@pytest.mark.parametrize("mean,low,high,expected,confirmed", [
    (1.0, 0.5, 1.5, "higher", True), (-1.0, -1.5, -0.5, "lower", False), (0.1, -0.5, 0.7, "same", False),
    (0.0, 0.0, 0.0, "same", False)])
def test_a_prediction_is_judged_by_the_interval_of_the_difference(mean, low, high, expected, confirmed):
    from reportgen.answers import check_prediction
    from reportgen.exercises import Exercise
    exercise = Exercise(name="e", question="q", training={"lr": 0.1}, prediction={"accuracy": "higher"})
    check = check_prediction(exercise, SimpleNamespace(n=3, mean=mean, low=low, high=high))
    assert (check.measured, check.confirmed) == (expected, confirmed)
    single = check_prediction(exercise, SimpleNamespace(n=1, mean=mean, low=math.nan, high=math.nan))
    assert single.measured is None and single.confirmed is None


def test_reportgen_new_shows_one_exercise_that_validates(project):
    from reportgen.config import load_study
    result = invoke("new", "demo")
    assert result.exit_code == 0, result.output
    exp = load_study(project / "experiments" / "demo.yaml")
    assert [e.name for e in exp.exercises] == ["tanh"] and exp.exercises[0].prediction.accuracy == "same"
    listed = invoke("list", "--profile", "smoke")
    assert "exercise tanh" in listed.output and "exercises[0]" not in listed.output  # no confound to warn about


@pytest.mark.slow  # trains
def test_the_live_model_runs_a_measured_exercise_network_unless_answers_are_hidden(ex_project):
    # a label with a comma of its own and a Markdown character: italics keep it one item, and it stays text
    fc = {**STUDY["exercises"][0], "label": "Small FC, *plain*"}
    write_study(ex_project, {**STUDY, "analyses": ["live_model"], "exercises": [fc, STUDY["exercises"][1]]})
    assert invoke("run", "--profile", "smoke", "--exercise", "fc", "--workers", "1").exit_code == 0
    manifest = ex_project / "docs" / "blog" / "posts" / "ex" / "live-model" / "fashion-mnist.json"
    assert invoke("render", "--profile", "smoke").exit_code == 0
    assert [v["name"] for v in json.loads(manifest.read_text())["variants"]] == ["tiny", "fc"]
    post = ex_project / "docs" / "blog" / "posts" / "ex.md"
    beside = "The networks of the measured exercises run beside the variants'"
    assert f"{beside} (see Exercises, below): *Small FC, \\*plain\\**." in " ".join(post.read_text().split())
    portuguese = ex_project / ".editions" / "pt" / "docs" / "blog" / "posts" / "ex.md"
    assert "As redes dos exercícios medidos rodam ao lado das redes das variantes (veja Exercícios, abaixo): " \
           "*Small FC, \\*plain\\**." in " ".join(portuguese.read_text().split())
    assert invoke("render", "--profile", "smoke", "--no-answers").exit_code == 0
    assert [v["name"] for v in json.loads(manifest.read_text())["variants"]] == ["tiny"]
    assert beside not in " ".join(post.read_text().split())
    assert "As redes dos exercícios medidos" not in " ".join(portuguese.read_text().split())
