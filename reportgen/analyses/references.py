"""How these numbers compare: our test accuracy with its interval beside published numbers for the same dataset and
the same kind of model, read from the data file ``reportgen/references.yaml`` (validated here)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import i18n
from ..figures import FigureWriter
from ..i18n import N_
from ..markdown import markdown_text
from ..settings import CONFIDENCE, DATASET_TITLES
from ..stats import Interval, mean_ci, test_accuracy
from ..study import Study
from . import Analysis, AnalysisError

REFERENCES_FILE = Path(__file__).resolve().parent.parent / "references.yaml"
Family = Literal["lenet", "mlp", "cnn"]
FAMILY_OF_MODEL: dict[str, Family] = {"lenet": "lenet", "fcnn": "mlp"}  # every other model of the zoo is a CNN
FAMILY_TITLES = {"lenet": N_("LeNet-like CNNs"), "mlp": N_("fully connected networks"), "cnn": N_("other CNNs")}
# A URL goes into a Markdown link as it is: no spaces, brackets or parentheses that would end the link early.
URL = r"^https?://[^\s<>()\[\]]+$"


class Reference(BaseModel):
    """One published number (see the comment at the top of references.yaml)."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: Literal[tuple(DATASET_TITLES)]  # type: ignore[valid-type]
    family: Family
    value: float = Field(gt=0, le=100)          # test accuracy, percent
    stated: str | None = None                    # the number as the source prints it, when ``value`` is converted
    model: str = Field(min_length=1)
    source: str = Field(pattern=URL)
    measured: str = Field(min_length=1)
    measured_pt: str | None = Field(default=None, min_length=1)  # the same, in the Portuguese edition
    code: str | None = Field(default=None, pattern=URL)


class ReferencesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    references: list[Reference]


def load_references(path: Path = REFERENCES_FILE) -> list[Reference]:
    """Every entry of ``path``; an :class:`AnalysisError` naming the file and the entry when one is wrong."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AnalysisError(f"{path}: cannot read the reference numbers: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise AnalysisError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    try:
        return ReferencesFile.model_validate(data).references
    except ValidationError as exc:
        raise AnalysisError(_one_line(path, exc, data)) from None


def _one_line(path: Path, exc: ValidationError, data: Any) -> str:
    """The first problem, as ``<file>: entry <n> (<model>): <field>: <what is wrong>``."""
    errors = exc.errors()
    first = errors[0]
    loc = [part for part in first["loc"] if not (isinstance(part, str) and "[" in part)]
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    if len(loc) >= 2 and loc[0] == "references" and isinstance(loc[1], int):
        index = loc[1]
        entry = data["references"][index] if isinstance(data["references"][index], dict) else {}
        named = f" ({entry['model']!r})" if isinstance(entry.get("model"), str) else ""
        what = f"{'.'.join(map(str, loc[2:]))}: " if loc[2:] else ""
        return f"{path}: entry {index + 1}{named}: {what}{first['msg']}{more}"
    where = f"{'.'.join(map(str, loc))}: " if loc else ""
    return f"{path}: {where}{first['msg']}{more}"


def family_of(model_name: str) -> Family:
    """The reference family of one of our models: LeNet, fully connected (MLP) or another CNN."""
    return FAMILY_OF_MODEL.get(model_name, "cnn")


def matching(references: list[Reference], dataset: str, family: str) -> list[Reference]:
    """The references for ``dataset`` and ``family``, highest accuracy first."""
    return sorted((r for r in references if r.dataset == dataset and r.family == family), key=lambda r: -r.value)


# ---- what the partial reads -----------------------------------------------------------------------------------
@dataclass
class OurVariant:
    name: str
    label: str
    model: str
    seeds: list[int]
    epochs: int
    acc: Interval                      # the test accuracy over seeds, percent


@dataclass
class ReferenceRow:
    model: str
    value: float                       # percent
    value_text: str                    # as precise as the source, no more ("87.6", "99.05")
    stated: str | None
    measured_in: dict[str, str]        # how it was measured, per edition ("en" always)
    source_link: Markup                # a Markdown link to where the number is printed
    code_link: Markup | None

    @property
    def measured(self) -> str:
        """How it was measured, in the edition being rendered (English where it has no translation)."""
        return self.measured_in.get(i18n.current(), self.measured_in["en"])


@dataclass
class ComparisonGroup:
    """Our variants on one dataset with one family of model, and the references for that pair."""
    dataset: str
    family: str
    family_title: str
    ours: list[OurVariant] = field(default_factory=list)
    references: list[ReferenceRow] = field(default_factory=list)


@dataclass
class ReferencesResult:
    groups: list[ComparisonGroup]
    confidence_pct: int
    file: str                          # where the reference numbers live, for the "add a number" note


def link(url: str, text: str | None = None) -> Markup:
    """``[text](url)``; the text defaults to the URL without its scheme and fragment."""
    label = text or url.split("://", 1)[-1].split("#", 1)[0].rstrip("/")
    return Markup(f"[{markdown_text(label)}]({url})")


def reference_row(ref: Reference) -> ReferenceRow:
    return ReferenceRow(model=ref.model, value=ref.value, value_text=f"{ref.value:g}", stated=ref.stated,
                        measured_in={"en": ref.measured, **({"pt": ref.measured_pt} if ref.measured_pt else {})},
                        source_link=link(ref.source),
                        code_link=link(ref.code, "code") if ref.code else None)


def compute(study: Study, figures: FigureWriter) -> ReferencesResult:
    references = load_references()
    groups: dict[tuple[str, str], ComparisonGroup] = {}
    for v in study.available:
        model = v.runs[0].config["model"]["name"]
        family = family_of(model)
        group = groups.get((v.dataset, family))
        if group is None:
            group = groups[(v.dataset, family)] = ComparisonGroup(
                dataset=v.dataset, family=family, family_title=FAMILY_TITLES[family],
                references=[reference_row(r) for r in matching(references, v.dataset, family)])
        group.ours.append(OurVariant(name=v.name, label=v.label, model=model, seeds=v.seeds,
                                     epochs=len(v.runs[0].history.epochs),
                                     acc=mean_ci([test_accuracy(r) for r in v.runs])))
    return ReferencesResult(groups=list(groups.values()), confidence_pct=round(100 * CONFIDENCE),
                            file="reportgen/references.yaml")


ANALYSIS = Analysis(
    name="references", title=N_("How these numbers compare"), compute=compute,
    summary=N_("Our test accuracy and its interval beside published numbers for the same dataset and kind of model."),
)
