"""A study's own words in another edition's language, beside its English ones (:mod:`reportgen.editions`):

- ``experiments/<id>.<lang>.yaml`` (:class:`StudyText`, every key optional; a missing one keeps the English text):
  title, description, question, varies, categories, tags, and by name the variants' ``label``, ``description``,
  ``intended_reason`` and the exercises' ``label``, ``description``, ``question``, ``hint``, ``prediction.because``;
- ``experiments/<id>.<lang>.md``: the prose, with the same Jinja calls as ``<id>.md``; a study without one shows its
  English prose under a visible note (:func:`untranslated_note`).

Both are checked with the rest before anything trains (:func:`check`): a key that names no field, variant or exercise
is one line naming the file, the field, what is allowed and the closest name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from . import i18n
from .config import ConfigError, StudyConfig, read_yaml
from .fsutil import atomic_write
from .settings import LANGUAGES, SOURCE_LANGUAGE
from .suggest import suggest

# The note above a post's prose that is still in English, per edition.
UNTRANSLATED = {"pt": ("Este estudo ainda não foi traduzido",
                       "O texto próprio deste estudo aparece abaixo em inglês; as tabelas, as figuras e as conclusões "
                       "geradas estão em português.")}


class _Text(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictionText(_Text):
    because: Optional[str] = None


class VariantText(_Text):
    label: Optional[str] = None
    description: Optional[str] = None
    intended_reason: Optional[str] = None


class ExerciseText(_Text):
    label: Optional[str] = None
    description: Optional[str] = None
    question: Optional[str] = None
    hint: Optional[str] = None
    prediction: Optional[PredictionText] = None


class StudyText(_Text):
    """``experiments/<id>.<lang>.yaml``: every key optional; a missing one keeps the English text."""
    title: Optional[str] = None
    description: Optional[str] = None
    question: Optional[str] = None
    varies: Optional[str] = None
    categories: Optional[list[str]] = None
    tags: Optional[list[str]] = None
    variants: dict[str, Optional[VariantText]] = {}
    exercises: dict[str, Optional[ExerciseText]] = {}


_SCHEMAS: dict[str, type[BaseModel]] = {"variants": VariantText, "exercises": ExerciseText,
                                        "prediction": PredictionText}


def text_path(yaml_path: Path, lang: str) -> Path:
    """``experiments/<id>.<lang>.yaml`` beside ``experiments/<id>.yaml``."""
    return yaml_path.with_name(f"{yaml_path.stem}.{lang}.yaml")


def prose_path(yaml_path: Path, exp: StudyConfig, lang: str | None = None) -> Path | None:
    """The prose of the edition ``lang`` (default: the one being rendered): ``<id>.<lang>.md`` when there is one,
    else the English prose (:func:`reportgen.prose.prose_path`, which :func:`untranslated_note` marks)."""
    from .prose import prose_path as source_prose
    lang = lang or i18n.current()
    if lang != SOURCE_LANGUAGE:
        own = yaml_path.with_name(f"{yaml_path.stem}.{lang}.md")
        if own.is_file():
            return own
        if getattr(exp, "template", None) and (shared := yaml_path.with_name(f"{exp.template}.{lang}.md")).is_file():
            return shared
    return source_prose(yaml_path, exp)


def is_translation(path: Path) -> bool:
    """Is ``path`` (a ``.yaml`` or ``.md`` under experiments/ or docs/) another edition's file: ``x.pt.yaml``?"""
    return Path(path.stem).suffix[1:] in LANGUAGES and Path(path.stem).suffix[1:] != SOURCE_LANGUAGE


def load_text(yaml_path: Path, exp: StudyConfig, lang: str) -> StudyText | None:
    """The study's texts in ``lang`` (None: no such file). ConfigError, one line: the file, the field, what is
    allowed and the closest name — for an unknown key and for a variant or exercise the study does not declare."""
    path = text_path(yaml_path, lang)
    if not path.is_file():
        return None
    data = read_yaml(path)
    if data is None:
        return StudyText()
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields ({', '.join(StudyText.model_fields)}) at the top "
                          f"level, got a {type(data).__name__}")
    try:
        text = StudyText.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_text_error(path, err)) from None
    for field, declared in (("variants", [v.name for v in exp.variants]),
                            ("exercises", [e.name for e in exp.exercises])):
        for name in getattr(text, field):
            if name not in declared:
                raise ConfigError(f"{path}: {field}.{name}: {exp.id} declares no {field[:-1]} {name!r}"
                                  f"{suggest(name, declared)} ({field}: {', '.join(declared) or 'none'})")
    return text


def _text_error(path: Path, err: ValidationError) -> str:
    e = next((e for e in err.errors() if e["type"] == "extra_forbidden"), err.errors()[0])
    loc = [str(part) for part in e["loc"]]
    where = ".".join(loc)
    if e["type"] == "extra_forbidden":
        # the schema of the mapping holding the key: the last of variants/exercises/prediction above it
        schema = next((_SCHEMAS[p] for p in reversed(loc[:-1]) if p in _SCHEMAS), StudyText)
        allowed = list(schema.model_fields)
        return (f"{path}: unknown field {where!r}{suggest(loc[-1], allowed)} "
                f"(allowed here: {', '.join(allowed)})")
    return f"{path}: {where}: {e['msg'].replace('Input should be', 'must be')}"


def localize(exp: StudyConfig, text: StudyText | None) -> StudyConfig:
    """``exp`` with its texts replaced by those of ``text`` where it has them (None: ``exp`` itself)."""
    if text is None:
        return exp
    top = {k: v for k, v in text.model_dump(include={"title", "description", "question", "varies", "categories",
                                                     "tags"}).items() if v is not None}
    variants = [v.model_copy(update=_set(text.variants.get(v.name))) for v in exp.variants]
    exercises = []
    for e in exp.exercises:
        words = text.exercises.get(e.name)
        update = _set(words, exclude={"prediction"})
        if words is not None and words.prediction is not None and e.prediction is not None:
            update["prediction"] = e.prediction.model_copy(update=_set(words.prediction))
        exercises.append(e.model_copy(update=update))
    return exp.model_copy(update={**top, "variants": variants, "exercises": exercises})


def _set(words: BaseModel | None, exclude: set[str] | None = None) -> dict[str, Any]:
    return {} if words is None else {k: v for k, v in words.model_dump(exclude=exclude).items() if v is not None}


def localized(studies: dict[str, tuple[Path, StudyConfig]], lang: str | None = None) -> dict[str, tuple[Path, StudyConfig]]:
    """Every study (id -> (path, config)) with its texts in ``lang`` (default: the edition being rendered)."""
    lang = lang or i18n.current()
    if lang == SOURCE_LANGUAGE:
        return studies
    return {sid: (path, localize(exp, load_text(path, exp, lang))) for sid, (path, exp) in studies.items()}


def files(yaml_path: Path, exp: StudyConfig) -> tuple[Path, ...]:
    """A study's translation files in every other language (``<id>.pt.yaml``, its ``.pt.md``), present or not."""
    found: list[Path] = []
    for lang in LANGUAGES:
        if lang != SOURCE_LANGUAGE:
            prose = prose_path(yaml_path, exp, lang)
            found += [text_path(yaml_path, lang)] + ([prose] if prose is not None and is_translation(prose) else [])
    return tuple(found)


def check_texts(studies: dict[str, tuple[Path, StudyConfig]]) -> None:
    """Every study's ``<id>.<lang>.yaml`` loads and names only fields, variants and exercises that exist."""
    for lang in LANGUAGES:
        if lang != SOURCE_LANGUAGE:
            for path, exp in studies.values():
                load_text(path, exp, lang)


def check(studies: dict[str, tuple[Path, StudyConfig]], names: list[str], profile: str) -> None:
    """Before anything trains: every study's ``<id>.<lang>.yaml`` (all studies: a misspelt key is found early) and
    the translated prose of the selected ones (rendered against placeholders, like the English prose)."""
    from .context import setup
    from .prose import check as check_prose
    from .study import Study, VariantResults
    for lang in LANGUAGES:
        if lang == SOURCE_LANGUAGE:
            continue
        texts = {sid: load_text(path, exp, lang) for sid, (path, exp) in studies.items()}
        for name in names:
            path, exp = studies[name]
            prose_file = prose_path(path, exp, lang)
            if prose_file is None or not is_translation(prose_file):
                continue
            exp = localize(exp, texts[name])
            empty = Study(id=name, config=exp, profile=profile,
                          variants=[VariantResults(name=v.name, label=v.label or v.name, description=v.description,
                                                   dataset=v.dataset or exp.dataset) for v in exp.variants])
            with i18n.active(lang):
                check_prose(prose_file, exp, setup(exp, empty, profile), profile)


def untranslated_note(prose_file: Path | None) -> str:
    """In an edition other than English, a visible note above prose that has no translation yet ("" otherwise)."""
    lang = i18n.current()
    if lang == SOURCE_LANGUAGE or prose_file is None or is_translation(prose_file):
        return ""
    title, text = UNTRANSLATED[lang]
    return f'!!! note "{title}"\n    {text}\n'


# ---- `reportgen new ID --lang pt` for a study that exists ----------------------------------------------------
def scaffold_translation(yaml_path: Path, lang: str) -> list[Path]:
    """Write ``<id>.<lang>.yaml`` (every text of the study, to translate; the English as comments) and
    ``<id>.<lang>.md`` (a copy of its English prose, to translate); never overwrites a file."""
    from .config import load_study
    exp = load_study(yaml_path)
    text_file, prose_file = text_path(yaml_path, lang), yaml_path.with_name(f"{yaml_path.stem}.{lang}.md")
    existing = [str(p) for p in (text_file, prose_file) if p.exists()]
    if existing:
        raise ConfigError(f"{existing[0]}: already exists; edit that file")

    def line(key: str, value: str, indent: str = "") -> list[str]:
        return [f"{indent}# {key}: {value}", f"{indent}{key}: {yaml.safe_dump(value, allow_unicode=True, width=1000).strip().removesuffix('...').strip()}"] if value else []
    with i18n.active(lang):  # the translator's instructions, in the language they translate into
        header = i18n._("The %(id)s study: translate each value (the English above it); a key left out keeps the "
                        "English text.") % {"id": exp.id}
        prose_header = i18n._("The %(id)s study: translate the words; keep every Jinja call as it is.") % {
            "id": exp.id}
    lines = [f"# {header}"]
    for key in ("title", "description", "question", "varies"):
        lines += line(key, getattr(exp, key))
    for key in ("categories", "tags"):
        if getattr(exp, key):
            lines.append(f"{key}: {yaml.safe_dump(list(getattr(exp, key)), default_flow_style=True, allow_unicode=True).strip()}")
    for field, items in (("variants", exp.variants), ("exercises", exp.exercises)):
        keys = ("label", "description", "intended_reason") + (("question", "hint") if field == "exercises" else ())
        if items:
            lines.append(f"{field}:")
        for item in items:
            lines.append(f"  {item.name}:")
            for key in keys:
                lines += line(key, getattr(item, key, "") or "", "    ")
            prediction = getattr(item, "prediction", None)
            if prediction is not None and prediction.because:
                lines += ["    prediction:", *line("because", prediction.because, "      ")]
    atomic_write(text_file, ("\n".join(lines) + "\n").encode())
    source = prose_path(yaml_path, exp, SOURCE_LANGUAGE)
    prose = source.read_text(encoding="utf-8") if source is not None else ""
    atomic_write(prose_file, (f"<!-- {prose_header} -->\n" + prose).encode())
    return [text_file, prose_file]
