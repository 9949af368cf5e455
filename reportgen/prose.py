"""A study's own prose: ``experiments/<id>.md`` beside ``experiments/<id>.yaml``, optional.

The prose is Markdown with a few Jinja expressions. It is rendered in Jinja's sandbox with nothing but the names
in :data:`NAMES`: it places the post's blocks (an analysis, the results table, the models) and quotes measured
numbers (``acc``, ``diff``, ``gap_diff`` and, through ``result()``, what an analysis computed), so its wording can
follow them; the numbers themselves are computed in Python. Everything the prose does not place follows it in the
default order: the results, then every declared analysis in the order of the YAML, then the closing section
(``shows()``), which the prose may place itself, after every other block, with its own sentences around it.

:func:`check` finds every mistake a prose file can make before anything is trained — Jinja syntax, an unknown name
(with the closest valid one), an analysis the study does not declare, a variant the study does not have (also
where a result helper names one: ``result("curves").variant("augmented")``), an include or import, an attribute
the sandbox refuses — and reports it as one line naming the file and the line.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import SecurityError
from markupsafe import Markup

from . import i18n, numbers
from .config import ConfigError, StudyConfig

if TYPE_CHECKING:  # the setup describes models: it imports torch
    from .context import Setup
from .markdown import prose_environment
from .prose_names import NAMES
from .stats import Interval
from .suggest import suggest

SHOWS_MARK = Markup("<!-- reportgen:shows -->")


class ProseError(ConfigError):
    """One line: the prose file, the line, what is wrong and what is allowed."""


def prose_path(yaml_path: Path, exp: StudyConfig | None = None) -> Path | None:
    """The study's prose: ``<id>.md`` beside its YAML; else, with ``template: other``, ``other.md`` (another
    study's prose, reused); else None. A ``template`` naming no prose file is a ConfigError with the closest."""
    own = yaml_path.with_suffix(".md")
    if own.exists() or exp is None or not getattr(exp, "template", None):
        return own if own.exists() else None
    shared = yaml_path.parent / f"{exp.template}.md"
    if not shared.exists():
        available = sorted(p.stem for p in yaml_path.parent.glob("*.md"))
        raise ConfigError(f"{yaml_path}: template: no prose file {shared.name} beside it"
                          f"{suggest(exp.template, available)} (prose files: {', '.join(available) or 'none'})")
    return shared


@dataclass(frozen=True)
class Measure:
    """A mean over seeds with its interval, in percent or percentage points; prints itself for prose."""
    mean: float
    low: float
    high: float
    std: float
    n: int
    unit: str = "%"
    verdict: str = ""
    train_change: float = float("nan")  # gap_diff(): how much of the change is the training side (points) ...
    val_change: float = float("nan")    # ... and how much the validation side

    @classmethod
    def of(cls, ci: Interval, unit: str = "%", **extra: Any) -> "Measure":
        """From a :func:`reportgen.stats.mean_ci` interval (or a difference's)."""
        return cls(mean=ci.mean, low=ci.low, high=ci.high, std=ci.std, n=ci.n, unit=unit, **extra)

    def __str__(self) -> str:
        unit = i18n._(" points") if self.unit == " points" else self.unit  # the unit in the edition's words
        return numbers.measured(self, unit, signed=self.unit == " points")


_NAN = float("nan")
_PLACEHOLDER = Measure(_NAN, _NAN, _NAN, _NAN, 0)


@dataclass(frozen=True)
class VariantFacts:
    """What prose reads with ``variant("name")`` (see :data:`NAMES`); NaN where nothing was measured."""
    label: str
    description: str
    parameters: int
    macs: int
    dataset: str
    max_shift: float
    epochs: int = 0              # epochs each of its runs trains in this profile (0 before the check has any)
    still_learning: bool = False
    train_acc_running: float = _NAN
    train_acc_eval: float = _NAN


class _Unmeasured:
    """What result() gives while the prose is checked before anything is trained: any field, item or call of it is
    itself, every comparison is false and it prints as nothing, so the check still catches unknown names and
    syntax without numbers to compare."""

    def __getattr__(self, name: str) -> "_Unmeasured":
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> "_Unmeasured":
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> "_Unmeasured":
        return self

    def __iter__(self):  # one item, itself: a loop body or |first is checked too
        return iter((self,))

    def __len__(self) -> int:
        return 1

    def __bool__(self) -> bool:
        return False

    def __lt__(self, other: Any) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __eq__ = __lt__
    __hash__ = object.__hash__

    def __ne__(self, other: Any) -> bool:
        return False

    def _same(self, *args: Any) -> "_Unmeasured":
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _same
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __pow__ = __rpow__ = _same
    __neg__ = __pos__ = __abs__ = __round__ = __floor__ = __ceil__ = __trunc__ = _same

    def __float__(self) -> float:
        return _NAN

    def __int__(self) -> int:
        return 0

    __index__ = __int__

    def __str__(self) -> str:
        return ""

    def __format__(self, spec: str) -> str:
        return ""


_UNMEASURED = _Unmeasured()


@dataclass
class Blocks:
    """What the post offers the prose: rendered blocks by name and measured numbers; records what was placed."""
    analyses: dict[str, Markup]
    results: Markup
    models: Markup
    gap: Markup
    accuracy: dict[str, Measure]
    differences: dict[str, Measure]
    gap_differences: dict[str, Measure]
    variants: dict[str, VariantFacts]
    baseline: str | None
    # The closing section is written after the prose, when every placed block is known (it repeats the verdicts
    # of the blocks the post shows): shows() places this marker, which the post replaces.
    shows: Markup = Markup("")
    measured: dict[str, Any] = field(default_factory=dict)  # analysis name -> its computed result (result())

    def __post_init__(self) -> None:
        self.placed: list[str] = []
        self.shows_heading = True
        self.answer = Markup("")  # the prose's answer to the question (answer()), for the closing section
        self.takeaway = Markup("")  # the post in three lines (takeaway()), for the top of the post and the home page
        self.key_figure: str | None = None  # the analysis whose first figure the home page shows

    def _place(self, key: str, text: Markup) -> Markup:
        call = f'analysis("{key[9:]}")' if key.startswith("analysis:") else f"{key}()"
        if key in self.placed:
            raise ValueError(f"{call} is placed twice; each block appears once in a post")
        if "shows" in self.placed:
            raise ValueError(f"{call} is placed after shows(); the closing section comes last, so place {call} "
                             "before it")
        self.placed.append(key)
        return Markup(text.strip("\n"))  # the prose's own blank lines set the spacing


def context(blocks: Blocks, *, setup: Setup, profile: str, exp: StudyConfig,
            post: Callable[..., Markup], studies: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """The whole namespace of a prose template (:data:`NAMES`), bound to one post's blocks and numbers."""
    variant_names = list(blocks.variants)

    def known_variant(name: str) -> str:
        if name not in blocks.variants:
            raise ValueError(f"no variant {name!r}{suggest(name, variant_names)} (variants: {', '.join(variant_names)})")
        return name

    def declared(call: str, name: str) -> str:
        if name not in blocks.analyses:
            listed = ", ".join(blocks.analyses) or "none"
            raise ValueError(f"{call}({name!r}): the study does not declare it{suggest(name, list(blocks.analyses))} "
                             f"(its analyses: {listed}; add it to analyses: in the YAML)")
        return name

    def analysis(name: str) -> Markup:
        return blocks._place(f"analysis:{name}", blocks.analyses[declared("analysis", name)])

    def result(name: str) -> Any:
        return blocks.measured.get(declared("result", name), _UNMEASURED)

    def acc(name: str) -> Measure:
        return blocks.accuracy.get(known_variant(name), _PLACEHOLDER)

    def difference(call: str, table: dict[str, Measure], name: str) -> Measure:
        if known_variant(name) == blocks.baseline:
            raise ValueError(f"{call}({name!r}): {name!r} is the baseline; differences are to it")
        return table.get(name, Measure(_NAN, _NAN, _NAN, _NAN, 0, " points"))

    return {
        "analysis": analysis, "result": result, "acc": acc,
        "diff": lambda name: difference("diff", blocks.differences, name),
        "gap_diff": lambda name: difference("gap_diff", blocks.gap_differences, name),
        "results": lambda: blocks._place("results", blocks.results),
        "models": lambda heading=True: blocks._place(
            "models", blocks.models if heading else Markup(blocks.models.split("\n", 1)[-1])),
        "gap": lambda: blocks._place("gap", blocks.gap),
        "shows": lambda heading=True: _place_shows(blocks, heading),
        "answer": lambda caller=None: _answer(blocks, caller),
        "takeaway": lambda figure=None, caller=None: _takeaway(blocks, caller, figure and declared("takeaway", figure)),
        "from_study": lambda name: _from_study(exp, studies, name),
        "variant": lambda name: blocks.variants[known_variant(name)],
        "setup": setup, "profile": profile, "post": post,
        "study": {"id": exp.id, "title": exp.title, "question": exp.question},
    }


def _answer(blocks: Blocks, caller: Callable[[], str] | None) -> Markup:
    """Record the answer written between ``{% call answer() %}`` and ``{% endcall %}``; it places nothing here."""
    if caller is None:
        raise ValueError("answer() takes its sentences as a call block: {% call answer() %}…{% endcall %}")
    if blocks.answer:
        raise ValueError("answer() is given twice; a post answers its question once")
    blocks.answer = Markup(" ".join(str(caller()).split()))
    return Markup("")


def _takeaway(blocks: Blocks, caller: Callable[[], str] | None, figure: str | None) -> Markup:
    """Record the takeaway written between ``{% call takeaway() %}`` and ``{% endcall %}``; it places nothing here."""
    if caller is None:
        raise ValueError("takeaway() takes its lines as a call block: {% call takeaway() %}…{% endcall %}")
    if blocks.takeaway:
        raise ValueError("takeaway() is given twice; a post has one takeaway")
    blocks.takeaway = Markup(" ".join(str(caller()).split()))
    blocks.key_figure = figure
    return Markup("")


def _from_study(exp: StudyConfig, studies: Callable[[str], Any] | None, name: str) -> Any:
    """Another study's results (see :mod:`reportgen.crossread`); only a study the YAML lists under ``reads:``."""
    reads = list(getattr(exp, "reads", []) or [])
    if name not in reads:
        raise ValueError(f"from_study({name!r}): the study does not list it under reads:{suggest(name, reads)} "
                         f"(reads: {', '.join(reads) or 'none'})")
    return _UNMEASURED if studies is None else studies(name)


def _place_shows(blocks: Blocks, heading: bool) -> Markup:
    blocks.shows_heading = bool(heading)
    return blocks._place("shows", blocks.shows)


def unplaced_after_shows(blocks: Blocks, exp: StudyConfig) -> list[str]:
    """The blocks that would follow a placed shows(): the results and the analyses the prose did not place."""
    if "shows" not in blocks.placed:
        return []
    calls = [] if "results" in blocks.placed or not exp.trains else ["results()"]
    return calls + [f'analysis("{name}")' for name in exp.analyses if f"analysis:{name}" not in blocks.placed]


def render(path: Path, namespace: dict[str, Any]) -> str:
    """The prose rendered with ``namespace`` (see :func:`context`); ProseError names the file and line."""
    source = _read(path)
    _static_check(path, source, namespace)
    env = prose_environment()
    env.loader = jinja2.FunctionLoader(lambda name: (source, str(path), lambda: True) if name == str(path) else None)
    try:
        template = env.get_template(str(path))
        return template.render(**namespace)
    except ProseError:
        raise
    except jinja2.TemplateSyntaxError as exc:
        raise ProseError(f"{path}:{exc.lineno}: Jinja syntax error: {exc.message}") from None
    except SecurityError as exc:
        raise ProseError(f"{path}:{_line(exc, path)}: not allowed in prose: {exc} "
                         f"(prose may use only: {_allowed()})") from None
    except jinja2.UndefinedError as exc:
        raise ProseError(f"{path}:{_line(exc, path)}: {exc.message} (prose may use only: {_allowed()})") from None
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, ArithmeticError) as exc:
        raise ProseError(f"{path}:{_line(exc, path)}: {exc}") from None


def check(path: Path, exp: StudyConfig, setup: Setup, profile: str) -> None:
    """Render the prose once against placeholders (no results needed): every mistake surfaces here, before any
    training, as one ProseError line."""
    variants = {v.name: VariantFacts(label=v.label or v.name, description=v.description, parameters=0, macs=0,
                                     dataset=v.dataset or exp.dataset, max_shift=0.0)
                for v in exp.variants}
    blocks = Blocks(analyses={name: Markup("") for name in exp.analyses}, results=Markup(""), models=Markup(""),
                    gap=Markup(""), accuracy={}, differences={}, gap_differences={}, variants=variants,
                    baseline=exp.baseline or (exp.variants[0].name if exp.variants else None))
    render(path, context(blocks, setup=setup, profile=profile, exp=exp, post=lambda *a: Markup("")))
    if not getattr(exp, "reads", None):  # a post that reads other studies names their variants: checked at render
        _check_named_variants(path, _read(path), list(variants))
    after = unplaced_after_shows(blocks, exp)
    if after:
        raise ProseError(f"{path}: shows() places the closing section, but {', '.join(after)} "
                         f"{'is' if len(after) == 1 else 'are'} not placed and would follow it; place "
                         f"{'it' if len(after) == 1 else 'them'} before shows()")


# Result helpers whose first argument names a variant: before training their results are placeholders, so the
# check reads those names from the template itself.
VARIANT_HELPERS = ("variant", "at", "diff_at", "first_epoch_diff", "layer", "reading")


def _check_named_variants(path: Path, source: str, names: list[str]) -> None:
    for node in prose_environment().parse(source).find_all(nodes.Call):
        if isinstance(node.node, nodes.Getattr) and node.node.attr in VARIANT_HELPERS and node.args \
                and isinstance(node.args[0], nodes.Const) and isinstance(node.args[0].value, str) \
                and node.args[0].value not in names:
            name = node.args[0].value
            raise ProseError(f"{path}:{node.lineno}: .{node.node.attr}({name!r}, ...): no variant {name!r}"
                             f"{suggest(name, names)} (variants: {', '.join(names)})")


def _read(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProseError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ProseError(f"{path}:{line}: not UTF-8 text; save the file as UTF-8") from None


def _static_check(path: Path, source: str, namespace: dict[str, Any]) -> None:
    env = prose_environment()
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ProseError(f"{path}:{exc.lineno}: Jinja syntax error: {exc.message}") from None
    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        raise ProseError(f"{path}:{node.lineno}: prose cannot {type(node).__name__.lower().replace('fromimport', 'import')} "
                         f"other templates; use analysis(\"name\") to place an analysis (prose may use only: {_allowed()})")
    undeclared = (meta.find_undeclared_variables(tree) - set(namespace)) | {"self"}
    for node in tree.find_all(nodes.Name):
        if node.name in undeclared:
            raise ProseError(f"{path}:{node.lineno}: unknown name {node.name!r}{suggest(node.name, list(NAMES))} "
                             f"(prose may use only: {_allowed()})")


def _allowed() -> str:
    return ", ".join(usage for usage, _ in NAMES.values())


def _line(exc: BaseException, path: Path) -> str:
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return str(lines[-1]) if lines else "?"
