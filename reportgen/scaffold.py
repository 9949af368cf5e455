"""``reportgen new ID`` (a commented study that runs and renders as it is) and the "Write your own study" page.

The page is generated from the schema (:mod:`reportgen.config`), the prose names (:data:`reportgen.prose.NAMES`)
and the analysis registry, so it lists exactly what the code accepts. Each field's one-line help lives in
:data:`FIELD_HELP`; a test fails when a schema field has none, so the page cannot fall behind the schema.
Every text of the page is an English msgid (marked ``N_`` where it is defined: here, in
:mod:`reportgen.prose_names` and in each analysis' ``title``/``summary``), translated where the page is written
for the edition being rendered; headings keep their English anchors.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import analyses, prose, schema as config, translations
from .config import ConfigError, ID_PATTERN
from .exercises import EXERCISE_PROFILES, Exercise, Prediction
from .i18n import N_, _
from .markdown import Message, anchored
from .settings import PARAMETER_TOLERANCE, SOURCE_LANGUAGE
from .fsutil import atomic_write

FIELD_HELP: dict[str, str] = {
    # the study
    "id": N_("the study's name: lower-case letters, digits, '-' and '_'; also its post's file name"),
    "title": N_("the post's title"),
    "description": N_("one or two sentences under the title (and on the home page)"),
    "question": N_("the one question the study answers; shown first in the post"),
    "varies": N_("the one thing the variants change, in words (the setup table and the closing section name it); "
                 "`reportgen list` warns about any other difference from the baseline"),
    "factor": N_("the kind of difference that is what the study varies, when the confounds check measures it: "
                 "dataset, recipe, parameters, data or epochs (then no variant declares it)"),
    "date": N_("the post's date (YYYY-MM-DD); the blog lists the newest first, so a later date reads earlier"),
    "categories": N_("blog categories"),
    "tags": N_("blog tags"),
    "template": N_("another study's id whose prose file this study uses (default: experiments/<id>.md)"),
    "order": N_("position in the reading order and on the home page (smaller first)"),
    "dataset": N_("mnist, fashion-mnist or kmnist (a variant may override it)"),
    "model": N_("the model every variant starts from: name and options"),
    "training": N_("the training recipe every variant starts from"),
    "profiles": N_("per profile (smoke, quick, full): epochs, seeds, train_limit, eval_limit, shift_images, training"),
    "variants": N_("what is compared: each variant overrides model, training or dataset"),
    "baseline": N_("the variant the others are compared with (default: the first)"),
    "analyses": N_("the analyses of the post, in order (see the list below)"),
    "trains": N_("false for an illustration that trains nothing"),
    "exercises": N_("questions a reader answers by training one more variant (see Exercises below); not run by "
                    "default except in the full profile"),
    "hide_answers": N_("true: the post gives the exercises' questions and commands but not their measured answers "
                       "(homework; `reportgen build --no-answers` does it for every study)"),
    "reads": N_("other studies whose results the prose quotes with from_study(\"id\") (a post that sums them up); "
                "its post is built only when each of them has run"),
    # a variant
    "variants.name": N_("the variant's name (letters, digits, '-', '_')"),
    "variants.label": N_("how the post calls it (default: its name)"),
    "variants.description": N_("what changes, in a few words (the setup table)"),
    "variants.dataset": N_("another dataset for this variant"),
    "variants.model": N_("model overrides: another name and/or options"),
    "variants.training": N_("training overrides (any training field but epochs)"),
    "variants.epochs": N_("this variant's own epochs per profile, e.g. {full: 40} for a network that needs longer to "
                          "converge; declare it with intended: [epochs]"),
    "variants.optional": N_("leave the variant out, with a note, when its dataset cannot be provisioned"),
    "variants.intended": N_("other differences from the baseline that are there on purpose: parameters (beyond "
                            "%(tolerance)s), data, dataset, recipe, epochs; stated in the post instead of warned "
                            "about"),
    "variants.intended_reason": N_("why those differences are intended (the post's closing section says it)"),
    # an exercise
    "exercises.name": N_("the exercise's name (letters, digits, '-', '_'; not a variant's): "
                         "`reportgen run <study> --exercise <name>`"),
    "exercises.question": N_("the question, in the study's own words"),
    "exercises.hint": N_("a hint, folded away in the post"),
    "exercises.prediction": N_("what you expect: accuracy (higher, lower or same as the baseline) and because; the "
                               "answer says whether the measurement confirms it"),
    "exercises.against": N_("the variant its answer compares with (default: the baseline), e.g. the variant the "
                            "exercise changes one more thing in"),
    "exercises.label": N_("how the post calls it (default: its name)"),
    "exercises.description": N_("what changes, in a few words"),
    "exercises.dataset": N_("the change to try, written like a variant override: another dataset"),
    "exercises.model": N_("the change to try: model overrides (another name and/or options)"),
    "exercises.training": N_("the change to try: training overrides (any training field but epochs)"),
    "exercises.epochs": N_("its own epochs per profile, as a variant's"),
    "exercises.intended": N_("differences from the baseline beyond what its override says, there on purpose "
                             "(a model override that changes the parameter count: parameters)"),
    "exercises.intended_reason": N_("why those differences are intended"),
    "exercises.prediction.accuracy": N_("higher, lower or same: the exercise's test accuracy against the baseline's"),
    "exercises.prediction.because": N_("why you expect it, in words (the answer repeats it)"),
    # training
    "training.optimizer": N_("sgd or adam"),
    "training.lr": N_("learning rate"),
    "training.momentum": N_("SGD momentum"),
    "training.weight_decay": N_("L2 weight decay"),
    "training.batch_size": N_("images per step"),
    "training.epochs": N_("passes over the training set (a profile may override it)"),
    "training.schedule": N_("learning-rate schedule: none, step, cosine (per epoch), onecycle or warmup_cosine "
                            "(per batch)"),
    "training.label_smoothing": N_("label smoothing of the training loss (0: none)"),
    "training.warmup_epochs": N_("epochs of linear warmup (schedule: warmup_cosine)"),
    "training.pct_start": N_("fraction of the steps spent rising to lr (schedule: onecycle)"),
    "training.div_factor": N_("starts at lr / div_factor (schedule: onecycle)"),
    "training.final_div_factor": N_("ends at lr / div_factor / final_div_factor (schedule: onecycle)"),
    "training.step_size": N_("epochs between learning-rate drops (schedule: step)"),
    "training.gamma": N_("factor of each drop (schedule: step)"),
    "training.augment": N_("random affine augmentation: rotation, translate, scale, shear"),
    "training.augment.rotation": N_("maximum rotation, degrees"),
    "training.augment.translate": N_("maximum shift, fraction of the image side"),
    "training.augment.scale": N_("[low, high] scale factors"),
    "training.augment.shear": N_("maximum shear, degrees"),
    # profiles
    "profiles.epochs": N_("epochs in this profile"),
    "profiles.seeds": N_("seeds in this profile (each variant runs once per seed)"),
    "profiles.train_limit": N_("train on the first N training images"),
    "profiles.eval_limit": N_("validate and test on the first N images (a pipeline check, not a measurement)"),
    "profiles.shift_images": N_("shift grid on the first N test images (on a CPU)"),
    "profiles.training": N_("training overrides in this profile (any training field but epochs), before a variant's"),
}
REQUIRED = N_("required")  # the default column of a field without one
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
# O estudo {id} em português: toda chave é opcional; a que faltar mantém o texto em inglês de {id}.yaml.
title: "{title}"
description: O que muda quando as convoluções da LeNet são seguidas de normalização em batch (batch norm)?
question: A normalização em batch depois de cada convolução muda a acurácia de teste da LeNet no Fashion-MNIST?
varies: normalização em batch depois de cada convolução
categories: [Seus estudos]
variants:
  plain: {{label: LeNet, description: a LeNet como ela é}}
  batch-norm: {{label: LeNet + batch norm, description: normalização em batch depois de cada convolução}}
exercises:
  tanh:
    label: LeNet com tanh
    question: A LeNet precisa da ReLU, ou a tanh do original funciona tão bem quanto?
    hint: A tanh é limitada, e sua inclinação vai a zero para entradas grandes.
    prediction: {{because: "o treino e a rede são, de resto, os mesmos"}}
""",
    "md": """\
<!-- A prosa do estudo {id} em português: a mesma de {id}.md, com as mesmas chamadas Jinja; só as palavras mudam. -->
## O que comparamos

As duas variantes são a mesma LeNet; uma normaliza a saída de cada convolução sobre o *batch* antes da ativação.
Todo o resto — dados, sementes, receita de treino — é igual.

{{{{ models() }}}}

## Treino

{{{{ analysis("curves") }}}}

{{{{ results() }}}}

Com *batch norm*, a rede chega a {{{{ acc("batch-norm") }}}} de acurácia de teste, contra {{{{ acc("plain") }}}} sem
ela: uma diferença de {{{{ diff("batch-norm") }}}}.
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


def _help(key: str) -> str:
    """A field's one-line help in the edition being rendered."""
    text = FIELD_HELP.get(key, "")
    if not text:
        return ""
    return _(text) % {"tolerance": f"{PARAMETER_TOLERANCE:.0%}"} if "%(" in text else _(text)


def _field_rows() -> list[tuple[str, str, str]]:
    rows = []
    for prefix, schema in SECTIONS:
        for name, field in schema.model_fields.items():
            key = prefix + name
            default = field.get_default(call_default_factory=True)
            if field.is_required():
                shown = REQUIRED
            elif default in (None, [], {}, "") or hasattr(default, "model_dump"):
                shown = "—"
            else:
                shown = str(default).lower() if isinstance(default, bool) else str(default)
            rows.append((key, shown, _help(key)))
    return rows


def _option_rows() -> list[tuple[str, str, str]]:
    rows = []
    for model, schema in config.MODEL_OPTIONS.items():
        options = [f"{n} ({f.get_default(call_default_factory=True)})" for n, f in schema.model_fields.items()
                   if n not in ("in_channels", "num_classes")]
        rows.append((model, ", ".join(options) or "—", ""))
    return rows


def _words(names: tuple[str, ...]) -> str:
    """``full``, ``smoke and full``, ``a, b and c`` in the edition's words."""
    if len(names) < 2:
        return "".join(names)
    return _("%(some)s and %(last)s") % {"some": ", ".join(names[:-1]), "last": names[-1]}


def _heading(level: int, msgid: str) -> str:
    """A heading in the edition's words, with the English anchor (:func:`reportgen.markdown.anchored`)."""
    return f"{'#' * level} {anchored(Message.of(_(msgid), msgid))}"


def _analysis_rows() -> list[str]:
    rows = []
    for name in analyses.names():
        a = analyses.get(name)
        needs = ", ".join(_(n) for n, flag in ((N_("trained networks"), a.needs_training),
                                               (N_("a convolution"), a.needs_convolution)) if flag) or "—"
        rows.append(f"| `{name}` | {_(a.title)}: {_(a.summary)} | {needs} |")
    return rows


def guide_markdown() -> str:
    """The "Write your own study" page, in the edition being rendered (:func:`reportgen.i18n.current`)."""
    required = _(REQUIRED)
    lines = [
        "---", "description: " + _("Declare a study in YAML, write its prose in Markdown, and reportgen turns it "
                                   "into a post."),
        "---", "", _heading(1, N_("Write your own study")), "",
        _("A study is a YAML file in `experiments/` and, optionally, a Markdown file of prose beside it with the same\n"
          "name. Nothing else: no Python, no template. Start from a working example:"), "",
        "```bash", "reportgen new my-study                  # " + _("writes experiments/my-study.yaml and .md"),
        "reportgen run my-study --profile smoke  # " + _("trains it in seconds (quick, full: real measurements)"),
        "reportgen render my-study --profile smoke", "```", "",
        _("`reportgen list` checks every study and its prose before anything is trained: a mistake is one line\n"
          "naming the file, the line or field, and what is allowed."), "",
        _heading(2, N_("Fields")), "", "| " + _("Field") + " | " + _("Default") + " | " + _("What it is") + " |",
        "|---|---|---|",
    ]
    lines += [f"| `{k}` | {required if d == REQUIRED else d if d == '—' else '`' + d + '`'} | {h} |"
              for k, d, h in _field_rows()]
    lines += ["", _heading(2, N_("Models and their options")), "",
              _("Set under `model:` (or a variant's `model:`) as `name:` and `options:`."), "",
              "| " + _("Model") + " | " + _("Options (default)") + " |", "|---|---|"]
    lines += [f"| `{m}` | {o} |" for m, o, _r in _option_rows()]
    lines += ["", _heading(2, N_("Exercises")), "",
              _("An exercise is a question the reader answers by training one more variant: its change is written\n"
                "exactly like a variant override (`dataset`, `model`, `training`, `epochs`), and `reportgen list`\n"
                "warns when it differs from the baseline in more than that override says (declare it with\n"
                "`intended`). The post shows each question, its hint and the command that trains it:"), "",
              "```bash", "reportgen run my-study --profile quick --exercise NAME   # " + _("one exercise"),
              "reportgen run my-study --profile quick --exercises         # "
              + _("all of them (make report EXERCISES=1)"),
              "reportgen render my-study --profile quick", "```", "",
              _("Once it ran, a folded \"Answer (measured)\" block gives its test accuracy with its interval, the\n"
                "difference to the baseline with the study's verdict, whether it converged, whether the prediction\n"
                "held, and its curves against the baseline's. Exercises are not trained by default, except in the\n"
                "%(profiles)s profile; an exercise identical to another study's variant is copied,\n"
                "not trained. `reportgen build --no-answers` (or `hide_answers: true`) publishes the questions "
                "alone.") % {"profiles": _words(EXERCISE_PROFILES)},
              "", _heading(2, N_("Analyses")), "",
              _("List them under `analyses:`; each becomes a section of the post."),
              "", "| " + _("Analysis") + " | " + _("What it shows") + " | " + _("Needs") + " |", "|---|---|---|"]
    lines += _analysis_rows()
    lines += ["", _heading(2, N_("Names in the prose")), "",
              _("The prose is Markdown. Inside `{{ }}` it may use only these names (it is rendered in a sandbox):"),
              "", "| " + _("Name") + " | " + _("What it gives") + " |", "|---|---|"]
    lines += [f"| `{usage}` | {_(text)} |" for usage, text in prose.NAMES.values()]
    lines += ["", _("Blocks the prose does not place follow it: the results table, then every analysis of the YAML\n"
                    "in its order, then the closing section (`shows()`), which ends every post that trains. Without "
                    "a\nprose file the post is exactly those blocks."), ""]
    lines += [_heading(2, N_("In Portuguese")), "",
              _("The site has a Brazilian Portuguese edition under `pt/`, built from the same results. A study's own "
                "words\nin Portuguese sit beside its English ones: `experiments/my-study.pt.md` (the same prose, with "
                "the same\nJinja calls, in Portuguese) and `experiments/my-study.pt.yaml` (every key optional: "
                "`title`,\n`description`, `question`, `varies`, `categories`, `tags`, `variants: {name: {label, "
                "description,\nintended_reason}}` and `exercises: {name: {label, description, question, hint, "
                "prediction: {because}}}`).\n`reportgen new my-study --lang pt` writes both. Without a `.pt.md` the "
                "Portuguese post shows the English\nprose under a note. `reportgen build --langs en` (`make report "
                "LANGS=en`) builds the English edition\nalone."), ""]
    return "\n".join(lines).replace("{{ }}", "`{{ }}`")


def write_guide(docs: Path) -> Path:
    target = docs / "write-your-own.md"
    atomic_write(target, guide_markdown().encode())
    return target
