"""Studies are data: one YAML file per study under ``experiments/``, validated against :mod:`reportgen.schema`.

A bad file never produces a traceback: :func:`load_study` raises :class:`ConfigError` whose message is one
line naming the file, the field, what is allowed and (for names) the closest valid one.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .schema import (  # noqa: F401 - the study-file API: the schema's names are importable from here
    DATASET_NAMES, DEFAULT_PROFILES, ID_PATTERN, Activation, MODEL_NAMES, MODEL_OPTIONS, PROFILES, AugmentConfig, ConfigError,
    FcnnOptions, LeNetOptions, ModelConfig, ProfileConfig, StudyConfig, TrainingConfig, VariantConfig)
from .settings import LANGUAGES
from .suggest import suggest

from .exercises import Exercise, Prediction

_INTERNAL = ("function-after", "function-wrap", "function-plain", "literal", "list", "tuple", "dict", "[key]")


def _clean(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop pydantic's internal location tags, keeping field names and list indices."""
    return tuple(i for i in loc if isinstance(i, int) or (i not in _INTERNAL and "[" not in str(i)))


def _location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        parts.append(f"[{item}]" if isinstance(item, int) else ("." if parts else "") + str(item))
    return "".join(parts)


def _walk(data: Any, loc: tuple[Any, ...]) -> Any:
    for item in loc:
        if isinstance(data, dict):
            data = data.get(item)
        elif isinstance(data, list) and isinstance(item, int) and 0 <= item < len(data):
            data = data[item]
        else:
            return None
    return data


def _allowed_fields(loc: tuple[Any, ...], data: Any) -> list[str]:
    """Field names valid in the mapping that holds the last element of ``loc`` (a full location in the file)."""
    parent = loc[:-1]
    names = [i for i in parent if not isinstance(i, int)]
    if not names:
        return list(StudyConfig.model_fields)
    last = names[-1]
    if last == "options":  # model options: which ones depends on the model the enclosing mapping names
        model = _walk(data, parent[:-1]) or {}
        name = model.get("name") if isinstance(model, dict) else None
        if name is None:
            top = data.get("model") if isinstance(data, dict) else None
            name = top.get("name", "lenet") if isinstance(top, dict) else "lenet"
        schema = MODEL_OPTIONS.get(name)
        return list(schema.model_fields) if schema else []
    if len(names) >= 2 and names[-2] == "profiles":
        return list(ProfileConfig.model_fields)
    schema = {"variants": VariantConfig, "exercises": Exercise, "prediction": Prediction, "model": ModelConfig,
              "training": TrainingConfig, "augment": AugmentConfig, "profiles": None}.get(last)
    return list(schema.model_fields) if schema else []


# Fields that belong to a section: an unknown top-level ``epochs`` is answered with "did you mean 'training.epochs'?".
_SECTIONS = (("training", TrainingConfig), ("training.augment", AugmentConfig), ("model.options", LeNetOptions),
             ("model.options", FcnnOptions), ("profiles.<profile>", ProfileConfig))


def _pick(errors: list[Any]) -> Any:
    """The most helpful of pydantic's errors: an unknown key first (it usually explains a 'missing' one too)."""
    return next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])


def _format_error(path: Path, err: ValidationError, data: dict[str, Any], prefix: tuple[Any, ...] = ()) -> str:
    """One line: the file, the field (as written in the file), what is wrong, what is allowed, the closest name."""
    e = _pick(err.errors())
    loc = _clean(tuple(prefix) + tuple(e["loc"]))
    where = _location(loc)
    kind = e["type"]
    got = e.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_fields(loc, data)
        hint = suggest(key, allowed)
        if not hint and len(loc) == 1:
            homes = [f"{section}.{key}" for section, schema in _SECTIONS if key in schema.model_fields]
            hint = f"; did you mean {homes[0]!r}?" if homes else ""
        return (f"{path}: unknown field {where!r}{hint} (allowed here: {', '.join(allowed)})" if allowed
                else f"{path}: unknown field {where!r}{hint}")
    if kind == "literal_error":
        expected = e.get("ctx", {}).get("expected", "")
        choices = re.findall(r"'([^']*)'", expected)
        return f"{path}: {where}: {got!r} is not allowed; choose from {', '.join(choices)}{suggest(got, choices)}"
    if kind == "missing":
        return f"{path}: {where}: this field is required"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        allowed = _allowed_fields(loc + ("?",), data)
        fields = f" with fields {', '.join(allowed)}" if allowed else ""
        return f"{path}: {where}: expected a mapping{fields} (got {got!r})"
    msg = e["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    indexed = re.match(r"\[(\d+)\] (.*)", msg)  # a list validator naming the offending item: field[i]
    if indexed:
        where, msg, got = f"{where}[{indexed.group(1)}]", indexed.group(2), None
    shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
    return f"{path}: {where}: {msg}{shown}" if where else f"{path}: {msg}"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader (plain data only: no Python tags), refusing duplicate keys, and reading ``1e-3`` as a
    number (YAML 1.1 would make it the string '1e-3', which the strict schema then refuses)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: let the base class report it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if isinstance(exc, yaml.constructor.ConstructorError):
        tag = re.search(r"tag '([^']*)'", problem)
        if tag:  # e.g. !!python/object/apply: never executed, refused
            problem = (f"tag {tag.group(1).replace('tag:yaml.org,2002:', '!!')!r} is not allowed "
                       "(study files hold plain data: mappings, lists, strings, numbers)")
        return f"{path}: YAML error{where}: {problem}"
    return f"{path}: YAML syntax error{where}: {problem}"


def read_yaml(path: Path) -> Any:
    """The YAML document of ``path`` (None when empty), read as UTF-8 with the safe loader; a ConfigError with a
    one-line message when the file cannot be read, is not UTF-8 or is not valid YAML."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
                          "save the file as UTF-8") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error(path, exc)) from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML error: nested too deeply") from None
    return data


def load_study(path: str | Path) -> StudyConfig:
    """Read and validate one study file; raise ConfigError with a one-line message on any problem."""
    path = Path(path)
    data = read_yaml(path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty; expected a mapping of fields (id, title, variants, ...)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields (id, title, variants, ...) at the top level, "
                          f"got a {type(data).__name__}")
    try:
        exp = StudyConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(path, err, data)) from None
    # Resolve every run once now, so a variant's (or an exercise's) override that breaks a model or training field
    # fails here.
    _check_overrides(path, exp, data, "variants", exp.variants)
    _check_overrides(path, exp, data, "exercises", [e.as_variant() for e in exp.exercises])
    # A profile's training overrides, combined with the study's block and each variant's, must make a valid run.
    for name, profile in exp.profiles.items():
        for variant in [*exp.variants, *(e.as_variant() for e in exp.exercises)] if profile.training else []:
            try:
                exp.variant_training(variant, exp.training.epochs, name)
            except ValidationError as err:
                raise ConfigError(_format_error(path, err, data, prefix=("profiles", name, "training"))) from None
    return exp


def _check_overrides(path: Path, exp: StudyConfig, data: dict[str, Any], field: str,
                     variants: list[VariantConfig]) -> None:
    """Each of ``variants`` (listed under ``field`` in the file) resolves to a valid model and training block."""
    for index, variant in enumerate(variants):
        for section, check in (("model", lambda v: exp.variant_model(v)),
                               ("training", lambda v: exp.variant_training(v, exp.training.epochs))):
            if not getattr(variant, section):
                continue
            try:
                check(variant)
            except ValidationError as err:
                raise ConfigError(_format_error(path, err, data, prefix=(field, index, section))) from None


def discover(directory: str | Path = "experiments") -> dict[str, tuple[Path, StudyConfig]]:
    """All study files in ``directory`` by id; two files with the same id are an error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory}: studies directory not found (run from the project root or pass --studies DIR)")
    found: dict[str, tuple[Path, StudyConfig]] = {}
    paths = sorted(p for p in directory.glob("*.y*ml") if p.suffix in (".yaml", ".yml") and not p.name.startswith(".")
                   and Path(p.stem).suffix[1:] not in LANGUAGES)  # <id>.pt.yaml: a study's Portuguese texts
    if not paths:
        raise ConfigError(f"{directory}: no study files (*.yaml) here; add one, or pass --studies DIR")
    for path in paths:
        exp = load_study(path)
        if exp.id in found:
            raise ConfigError(f"{path}: id {exp.id!r} is already used by {found[exp.id][0]}; ids must be unique")
        found[exp.id] = (path, exp)
    return dict(sorted(found.items(), key=lambda kv: (kv[1][1].order, kv[0])))


def select(studies: dict[str, tuple[Path, StudyConfig]], names: tuple[str, ...] | list[str]) -> list[str]:
    """Validate study names given on the command line (all when none)."""
    if not names:
        return list(studies)
    for name in names:
        if name not in studies:
            raise ConfigError(f"unknown study {name!r}{suggest(name, list(studies))} (declared: {', '.join(studies)})")
    return list(dict.fromkeys(names))
