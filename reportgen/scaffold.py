"""``reportgen new ID`` (a commented study that runs and renders as it is) and the "Write your own study" page.

The page is generated from the schema (:mod:`reportgen.config`), the prose names (:data:`reportgen.prose.NAMES`)
and the analysis registry, so it lists exactly what the code accepts. Each field's one-line help lives in
:data:`FIELD_HELP`; a test fails when a schema field has none, so the page cannot fall behind the schema.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import analyses, editions, prose, schema as config, translations
from .config import ConfigError, ID_PATTERN
from .exercises import EXERCISE_PROFILES, Exercise, Prediction
from .settings import PARAMETER_TOLERANCE, SOURCE_LANGUAGE
from .fsutil import atomic_write

FIELD_HELP: dict[str, str] = {
    # the study
    "id": "the study's name: lower-case letters, digits, '-' and '_'; also its post's file name",
    "title": "the post's title",
    "description": "one or two sentences under the title (and on the home page)",
    "question": "the one question the study answers; shown first in the post",
    "varies": "the one thing the variants change, in words (the setup table and the closing section name it); "
              "`reportgen list` warns about any other difference from the baseline",
    "factor": "the kind of difference that is what the study varies, when the confounds check measures it: "
              "dataset, recipe, parameters, data or epochs (then no variant declares it)",
    "date": "the post's date (YYYY-MM-DD); the blog lists the newest first, so a later date reads earlier",
    "categories": "blog categories",
    "tags": "blog tags",
    "template": "another study's id whose prose file this study uses (default: experiments/<id>.md)",
    "order": "position in the reading order and on the home page (smaller first)",
    "dataset": "mnist, fashion-mnist or kmnist (a variant may override it)",
    "model": "the model every variant starts from: name and options",
    "training": "the training recipe every variant starts from",
    "profiles": "per profile (smoke, quick, full): epochs, seeds, train_limit, eval_limit, shift_images, training",
    "variants": "what is compared: each variant overrides model, training or dataset",
    "baseline": "the variant the others are compared with (default: the first)",
    "analyses": "the analyses of the post, in order (see the list below)",
    "trains": "false for an illustration that trains nothing",
    "exercises": "questions a reader answers by training one more variant (see Exercises below); not run by "
                 "default except in the full profile",
    "hide_answers": "true: the post gives the exercises' questions and commands but not their measured answers "
                    "(homework; `reportgen build --no-answers` does it for every study)",
    "reads": "other studies whose results the prose quotes with from_study(\"id\") (a post that sums them up); "
             "its post is built only when each of them has run",
    # a variant
    "variants.name": "the variant's name (letters, digits, '-', '_')",
    "variants.label": "how the post calls it (default: its name)",
    "variants.description": "what changes, in a few words (the setup table)",
    "variants.dataset": "another dataset for this variant",
    "variants.model": "model overrides: another name and/or options",
    "variants.training": "training overrides (any training field but epochs)",
    "variants.epochs": "this variant's own epochs per profile, e.g. {full: 40} for a network that needs longer to "
                       "converge; declare it with intended: [epochs]",
    "variants.optional": "leave the variant out, with a note, when its dataset cannot be provisioned",
    "variants.intended": f"other differences from the baseline that are there on purpose: parameters (beyond "
                         f"{PARAMETER_TOLERANCE:.0%}), data, dataset, recipe, epochs; stated in the post instead "
                         "of warned about",
    "variants.intended_reason": "why those differences are intended (the post's closing section says it)",
    # an exercise
    "exercises.name": "the exercise's name (letters, digits, '-', '_'; not a variant's): "
                      "`reportgen run <study> --exercise <name>`",
    "exercises.question": "the question, in the study's own words",
    "exercises.hint": "a hint, folded away in the post",
    "exercises.prediction": "what you expect: accuracy (higher, lower or same as the baseline) and because; the "
                            "answer says whether the measurement confirms it",
    "exercises.label": "how the post calls it (default: its name)",
    "exercises.description": "what changes, in a few words",
    "exercises.dataset": "the change to try, written like a variant override: another dataset",
    "exercises.model": "the change to try: model overrides (another name and/or options)",
    "exercises.training": "the change to try: training overrides (any training field but epochs)",
    "exercises.epochs": "its own epochs per profile, as a variant's",
    "exercises.intended": "differences from the baseline beyond what its override says, there on purpose "
                          "(a model override that changes the parameter count: parameters)",
    "exercises.intended_reason": "why those differences are intended",
    "exercises.prediction.accuracy": "higher, lower or same: the exercise's test accuracy against the baseline's",
    "exercises.prediction.because": "why you expect it, in words (the answer repeats it)",
    # training
    "training.optimizer": "sgd or adam",
    "training.lr": "learning rate",
    "training.momentum": "SGD momentum",
    "training.weight_decay": "L2 weight decay",
    "training.batch_size": "images per step",
    "training.epochs": "passes over the training set (a profile may override it)",
    "training.schedule": "learning-rate schedule: none, step, cosine (per epoch), onecycle or warmup_cosine (per batch)",
    "training.label_smoothing": "label smoothing of the training loss (0: none)",
    "training.warmup_epochs": "epochs of linear warmup (schedule: warmup_cosine)",
    "training.pct_start": "fraction of the steps spent rising to lr (schedule: onecycle)",
    "training.div_factor": "starts at lr / div_factor (schedule: onecycle)",
    "training.final_div_factor": "ends at lr / div_factor / final_div_factor (schedule: onecycle)",
    "training.step_size": "epochs between learning-rate drops (schedule: step)",
    "training.gamma": "factor of each drop (schedule: step)",
    "training.augment": "random affine augmentation: rotation, translate, scale, shear",
    "training.augment.rotation": "maximum rotation, degrees",
    "training.augment.translate": "maximum shift, fraction of the image side",
    "training.augment.scale": "[low, high] scale factors",
    "training.augment.shear": "maximum shear, degrees",
    # profiles
    "profiles.epochs": "epochs in this profile",
    "profiles.seeds": "seeds in this profile (each variant runs once per seed)",
    "profiles.train_limit": "train on the first N training images",
    "profiles.eval_limit": "validate and test on the first N images (a pipeline check, not a measurement)",
    "profiles.shift_images": "shift grid on the first N test images (on a CPU)",
    "profiles.training": "training overrides in this profile (any training field but epochs), before a variant's",
}
SECTIONS: list[tuple[str, Any]] = [
    ("", config.StudyConfig), ("variants.", config.VariantConfig), ("exercises.", Exercise),
    ("exercises.prediction.", Prediction), ("training.", config.TrainingConfig),
    ("training.augment.", config.AugmentConfig), ("profiles.", config.ProfileConfig),
]

STUDY_YAML = """\
# {id}: a study is this file plus the optional prose beside it ({id}.md).
# `reportgen run {id} --profile smoke` trains it in seconds; `reportgen render {id} --profile smoke` writes the post.
# Every field is listed on the site's "Write your own study" page.
id: {id}
title: "{title}"
description: What changes when LeNet's convolutions are followed by batch normalisation?
question: Does batch normalisation after each convolution change LeNet's test accuracy on Fashion-MNIST?
varies: batch normalisation after each convolution   # the one thing the variants change
date: {date}
order: 200
categories: [Your studies]
tags: [lenet, fashion-mnist]
dataset: fashion-mnist          # mnist, fashion-mnist or kmnist
model:
  name: lenet                   # lenet, tiny, deep_pool or fcnn
training:                       # the recipe every variant starts from
  optimizer: adam
  lr: 0.001
  batch_size: 128
  epochs: 5
profiles:                       # smoke: seconds; quick: minutes on a laptop; full: the real measurement
  quick: {{epochs: 5, train_limit: 10000}}
baseline: plain
variants:                       # what is compared; each variant overrides model, training or dataset
  - name: plain
    label: LeNet
    description: LeNet as it is
  - name: batch-norm
    label: LeNet + batch norm
    description: batch normalisation after each convolution
    model: {{options: {{batch_norm: true}}}}
analyses: [curves, confusion]   # placed in this order unless the prose places them
exercises:                      # for the reader: `reportgen run {id} --exercise tanh` trains one, the post answers it
  - name: tanh
    label: LeNet with tanh
    question: Does LeNet need ReLU, or does the original's tanh do as well?
    hint: tanh is bounded, and its slope falls towards zero for large inputs.
    model: {{options: {{activation: tanh}}}}   # the change to try, written like a variant override
    prediction: {{accuracy: same, because: "the recipe and the network are otherwise the same"}}
"""

STUDY_PROSE = """\
<!-- The prose of the {id} study: Markdown, with a few names that place blocks and quote measured numbers.
     Everything it does not place follows it: the results table, then each analysis of the YAML, in order. -->
## What we compare

Both variants are the same LeNet; one normalises the output of each convolution over the batch before its
activation. Everything else — data, seeds, recipe — is the same.

{{{{ models() }}}}

## Training

{{{{ analysis("curves") }}}}

{{{{ results() }}}}

With batch norm the network reaches {{{{ acc("batch-norm") }}}} test accuracy, against {{{{ acc("plain") }}}} without:
a difference of {{{{ diff("batch-norm") }}}}.
"""

# `reportgen new ID --lang pt`: the example study's texts and prose in Brazilian Portuguese (the same Jinja calls).
STUDY_PT = {
    "yaml": """\
# The {id} study in Brazilian Portuguese: every key is optional; a missing one keeps the English text of {id}.yaml.
title: "{title}"
description: O que muda quando as convoluções da LeNet são seguidas de normalização em lote (batch norm)?
question: A normalização em lote após cada convolução muda a acurácia de teste da LeNet no Fashion-MNIST?
varies: normalização em lote após cada convolução
categories: [Seus estudos]
variants:
  plain: {{label: LeNet, description: a LeNet como ela é}}
  batch-norm: {{label: LeNet + batch norm, description: normalização em lote após cada convolução}}
exercises:
  tanh:
    label: LeNet com tanh
    question: A LeNet precisa da ReLU, ou a tanh do original funciona tão bem quanto?
    hint: A tanh é limitada, e sua inclinação tende a zero para entradas grandes.
    prediction: {{because: "o treino e a rede são, de resto, os mesmos"}}
""",
    "md": """\
<!-- A prosa do estudo {id} em português: a mesma de {id}.md, com as mesmas chamadas; só as palavras mudam. -->
## O que comparamos

As duas variantes são a mesma LeNet; uma normaliza a saída de cada convolução sobre o *batch* antes da ativação.
Todo o resto — dados, sementes, receita de treino — é igual.

{{{{ models() }}}}

## Treino

{{{{ analysis("curves") }}}}

{{{{ results() }}}}

Com batch norm a rede chega a {{{{ acc("batch-norm") }}}} de acurácia de teste, contra {{{{ acc("plain") }}}} sem:
uma diferença de {{{{ diff("batch-norm") }}}}.
""",
}


def new_study(studies_dir: Path, study_id: str, today: str, lang: str | None = None) -> list[Path]:
    """Write ``<id>.yaml`` and ``<id>.md`` under ``studies_dir``; never overwrites a file. With ``lang`` (``pt``)
    also the study's texts and prose in that language, ``<id>.pt.yaml`` and ``<id>.pt.md``; for a study that
    exists, only those (a copy of its English prose to translate, and its texts to translate as comments)."""
    if not ID_PATTERN.match(study_id):
        raise ConfigError(f"{study_id!r}: a study id is lower-case letters, digits, '-' or '_' (at most 64, "
                          "starting with a letter or digit)")
    translated = lang is not None and lang != SOURCE_LANGUAGE
    source = studies_dir / f"{study_id}.yaml"
    if translated and source.exists():
        return translations.scaffold_translation(source, lang)
    files = {source: STUDY_YAML, studies_dir / f"{study_id}.md": STUDY_PROSE}
    if translated:
        files.update({translations.text_path(source, lang): STUDY_PT["yaml"],
                      source.with_name(f"{study_id}.{lang}.md"): STUDY_PT["md"]})
    existing = [str(p) for p in files if p.exists()]
    if existing:
        raise ConfigError(f"{existing[0]}: already exists; choose another id or edit that file")
    title = study_id.replace("-", " ").replace("_", " ").capitalize()
    for path, template in files.items():
        atomic_write(path, template.format(id=study_id, title=title, date=today).encode())
    return list(files)


def _field_rows() -> list[tuple[str, str, str]]:
    rows = []
    for prefix, schema in SECTIONS:
        for name, field in schema.model_fields.items():
            key = prefix + name
            default = field.get_default(call_default_factory=True)
            if field.is_required():
                shown = "required"
            elif default in (None, [], {}, "") or hasattr(default, "model_dump"):
                shown = "—"
            else:
                shown = str(default).lower() if isinstance(default, bool) else str(default)
            rows.append((key, shown, FIELD_HELP.get(key, "")))
    return rows


def _option_rows() -> list[tuple[str, str, str]]:
    rows = []
    for model, schema in config.MODEL_OPTIONS.items():
        options = [f"{n} ({f.get_default(call_default_factory=True)})" for n, f in schema.model_fields.items()
                   if n not in ("in_channels", "num_classes")]
        rows.append((model, ", ".join(options) or "—", ""))
    return rows


def guide_markdown() -> str:
    """The "Write your own study" page."""
    lines = [
        "---", "description: Declare a study in YAML, write its prose in Markdown, and reportgen turns it into a post.",
        "---", "", "# Write your own study", "",
        "A study is a YAML file in `experiments/` and, optionally, a Markdown file of prose beside it with the same",
        "name. Nothing else: no Python, no template. Start from a working example:", "",
        "```bash", "reportgen new my-study                  # writes experiments/my-study.yaml and .md",
        "reportgen run my-study --profile smoke  # trains it in seconds (quick, full: real measurements)",
        "reportgen render my-study --profile smoke", "```", "",
        "`reportgen list` checks every study and its prose before anything is trained: a mistake is one line",
        "naming the file, the line or field, and what is allowed.", "",
        "## Fields", "", "| Field | Default | What it is |", "|---|---|---|",
    ]
    lines += [f"| `{k}` | {d if d in ('required', '—') else '`' + d + '`'} | {h} |" for k, d, h in _field_rows()]
    lines += ["", "## Models and their options", "", "Set under `model:` (or a variant's `model:`) as "
              "`name:` and `options:`.", "", "| Model | Options (default) |", "|---|---|"]
    lines += [f"| `{m}` | {o} |" for m, o, _ in _option_rows()]
    lines += ["", "## Exercises", "",
              "An exercise is a question the reader answers by training one more variant: its change is written",
              "exactly like a variant override (`dataset`, `model`, `training`, `epochs`), and `reportgen list`",
              "warns when it differs from the baseline in more than that override says (declare it with",
              "`intended`). The post shows each question, its hint and the command that trains it:", "",
              "```bash", "reportgen run my-study --profile quick --exercise NAME   # one exercise",
              "reportgen run my-study --profile quick --exercises         # all of them (make report EXERCISES=1)",
              "reportgen render my-study --profile quick", "```", "",
              "Once it ran, a folded \"Answer (measured)\" block gives its test accuracy with its interval, the",
              "difference to the baseline with the study's verdict, whether it converged, whether the prediction",
              "held, and its curves against the baseline's. Exercises are not trained by default, except in the",
              f"{' and '.join(EXERCISE_PROFILES)} profile; an exercise identical to another study's variant is copied,",
              "not trained. `reportgen build --no-answers` (or `hide_answers: true`) publishes the questions alone.",
              "", "## Analyses", "", "List them under `analyses:`; each becomes a section of the post.", "",
              "| Analysis | What it shows | Needs |", "|---|---|---|"]
    for name in analyses.names():
        a = analyses.get(name)
        needs = ", ".join(n for n, flag in (("trained networks", a.needs_training),
                                            ("a convolution", a.needs_convolution)) if flag) or "—"
        lines.append(f"| `{name}` | {a.title}: {a.summary} | {needs} |")
    lines += ["", "## Names in the prose", "",
              "The prose is Markdown. Inside `{{ }}` it may use only these names (it is rendered in a sandbox):", "",
              "| Name | What it gives |", "|---|---|"]
    lines += [f"| `{usage}` | {text} |" for usage, text in prose.NAMES.values()]
    lines += ["", "Blocks the prose does not place follow it: the results table, then every analysis of the YAML",
              "in its order, then the closing section (`shows()`), which ends every post that trains. Without a",
              "prose file the post is exactly those blocks.", ""]
    lines += editions.guide_section()
    return "\n".join(lines).replace("{{ }}", "`{{ }}`")


def write_guide(docs: Path) -> Path:
    target = docs / "write-your-own.md"
    atomic_write(target, guide_markdown().encode())
    return target
