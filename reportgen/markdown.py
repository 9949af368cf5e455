"""Jinja environments and the filters that format numbers: the only place where Markdown text is produced.

Two environments:
- :func:`package_environment` renders reportgen's own templates (``reportgen/templates/`` and the analysis partials
  in ``reportgen/analyses/``);
- :func:`prose_environment` renders a study's own prose (``experiments/<id>.md``) in Jinja's sandbox, with no
  loader (no include, import or extends) and nothing beyond the documented context (:mod:`reportgen.prose`).

In both, every ``{{ value }}`` passes through :func:`markdown_text`: strings from study files (titles,
descriptions, labels) are escaped, so they always appear literally — no HTML, no Markdown markup, no attribute
lists, no math, no Jinja. Generated Markdown (figure links, commands, rendered analyses) is wrapped in ``Markup``
and passes unchanged.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from . import i18n, numbers
from .settings import DATASET_TITLES, SOURCE_LANGUAGE

TEMPLATES = Path(__file__).parent / "templates"
ANALYSES = Path(__file__).parent / "analyses"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]|$#!])")


def html_text(value: str) -> str:
    """HTML metacharacters escaped: the string shows as text in HTML (and in YAML front matter values)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_text(value: Any) -> Any:
    """Strings have their HTML metacharacters escaped and Markdown's inline metacharacters backslash-escaped, so
    they render as text: never as HTML (``<script>``), emphasis, links, table cells (``|``), attribute lists
    (``{: onclick=...}``), math (``$``) or code. Jinja never evaluates a value, so ``{{ 7*7 }}`` in a title stays
    those characters. ``Markup`` values (generated Markdown) pass unchanged."""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return html_text(_MARKDOWN_SPECIAL.sub(r"\\\1", value))


class Text(Markup):
    """Translated template text: Markdown that passes ``finalize`` unchanged, while the values substituted into it
    (``{% trans label=row.label %}``, ``_("... %(n)s", n=...)``) are escaped exactly as ``{{ value }}`` escapes them
    (:func:`markdown_text`), so a translated sentence comes out as the English one does."""
    __slots__ = ()

    @classmethod
    def escape(cls, s: Any) -> "Text":
        if hasattr(s, "__html__"):
            return cls(s.__html__())
        return cls(markdown_text(s) if isinstance(s, str) else str(s))


class Message(Text):
    """A translated message that remembers its English msgid (:func:`anchored` keeps a heading's English anchor)."""
    msgid = ""

    @classmethod
    def of(cls, text: str, msgid: str) -> "Message":
        message = cls(text)
        message.msgid = msgid
        return message

    def __mod__(self, values: Any) -> "Message":  # Jinja's newstyle gettext formats every message, even with no values
        return Message.of(super().__mod__(values), self.msgid)


def anchored(heading: Any) -> Any:
    """A translated heading with its English anchor, ``Métodos { #methods }``, so that links into a page (and
    Material's language selector) find the same section in every edition. English headings are left as they are."""
    msgid = getattr(heading, "msgid", "")
    if not msgid or i18n.current() == SOURCE_LANGUAGE:
        return heading
    from markdown.extensions.toc import slugify  # the slugs of mkdocs.yml's toc extension
    return Markup(f"{heading} {{ #{slugify(msgid, '-')} }}")


def _install_gettext(env: jinja2.Environment, lang: str) -> None:
    """``{% trans %}``, ``_()`` and ``ngettext()`` in templates, from the edition's catalog, returning :class:`Text`."""
    t = i18n.translations(lang)
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda s: Message.of(t.gettext(s), s), lambda s, p, n: Text(t.ngettext(s, p, n)),
        newstyle=True, pgettext=lambda c, s: Text(t.pgettext(c, s)),
        npgettext=lambda c, s, p, n: Text(t.npgettext(c, s, p, n)))


def number(x: float | None, digits: int | None = None) -> str:
    """``x`` with the decimals its uncertainty supports (:mod:`reportgen.numbers`), or exactly ``digits``."""
    return numbers.fixed(x, digits)


def signed_number(x: float | None, digits: int | None = None) -> str:
    return numbers.fixed(x, digits, signed=True)


class Bounded(Protocol):
    """Anything with an interval: reportgen.stats.Interval (and its differences), measures.TestSetInterval,
    prose.Measure."""
    n: int
    low: float
    high: float


def interval(ci: Bounded | None, digits: int | None = None, signed: bool = False) -> str:
    """'81.9 to 84.0', with the decimals the interval's width supports (or '—' without one, e.g. a single seed)."""
    return numbers.interval(ci, digits, signed)


def oneline(value: Any) -> str:
    return " ".join(str(value).split())


def seconds(s: float) -> str:
    return f"{numbers.fixed(s, 0)} s" if s < 120 else f"{numbers.fixed(s / 60, 1)} min"


def figure(f: Any) -> Markup:
    """A figure as Markdown image syntax; alt text comes from labels in study files, so brackets that would
    end the image syntax early are escaped."""
    if isinstance(f, dict):
        f = {**f, "alt": re.sub(r"([\[\]\\])", r"\\\1", str(f["alt"]))}
        return Markup(f"![{f['alt']}]({f['path']})")
    f = replace(f, alt=re.sub(r"([\[\]\\])", r"\\\1", f.alt))
    return Markup(f.markdown())


FILTERS = {
    "figure": figure, "pct": number, "signed": signed_number, "interval": interval, "oneline": oneline,
    "fixed": lambda x, digits=2: numbers.fixed(x, digits),  # a value that is not a measured share: weights, sums
    "seconds": seconds, "thousands": numbers.thousands, "general": numbers.general,  # "%g", in the locale
    "significant": lambda x, digits=2: numbers.significant(x, digits),  # "%.2g", in the locale
    "code": lambda s: Markup(str(s)),
    "yaml_str": lambda s: Markup(json.dumps(html_text(oneline(s)), ensure_ascii=False)),
    "dataset_name": lambda d: DATASET_TITLES.get(d, d),
    "anchored": anchored,
}
_OPTIONS = dict(autoescape=False, finalize=markdown_text, undefined=jinja2.StrictUndefined, trim_blocks=True,
                lstrip_blocks=True, keep_trailing_newline=True)


class _Precise:
    """Attribute and item lookups hand out an interval's mean and spread as :class:`reportgen.numbers.Estimate`,
    so ``{{ acc.mean | pct }}`` prints with the decimals of ``{{ acc | interval }}``."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        return numbers.precise(obj, attribute, super().getattr(obj, attribute))  # type: ignore[misc]

    def getitem(self, obj: Any, argument: Any) -> Any:
        return numbers.precise(obj, argument, super().getitem(obj, argument))  # type: ignore[misc]


class _Environment(_Precise, jinja2.Environment):
    pass


class _Sandbox(_Precise, ImmutableSandboxedEnvironment):
    pass


def package_environment(lang: str | None = None) -> jinja2.Environment:
    """reportgen's own templates, translated for ``lang`` (default: the edition being rendered, :func:`i18n.current`).
    One environment per edition and process, so each template is compiled once, not once per post (Jinja still
    reloads a template whose file changed). Shared: a caller that needs another loader takes an ``overlay``."""
    return _package_environment(lang or i18n.current())


@functools.lru_cache(maxsize=None)
def _package_environment(lang: str) -> jinja2.Environment:
    env = _Environment(loader=jinja2.FileSystemLoader([str(TEMPLATES), str(ANALYSES)]),
                       extensions=["jinja2.ext.i18n"], **_OPTIONS)
    env.filters.update(FILTERS)
    _install_gettext(env, lang)
    return env


def prose_environment(lang: str | None = None) -> ImmutableSandboxedEnvironment:
    """The sandbox for a study's prose: no loader, no mutation of the context, unsafe attributes refused. The same
    in every edition (``lang`` is accepted for symmetry): a study's prose is written in each of its languages."""
    env = _Sandbox(loader=None, **_OPTIONS)
    env.globals.clear()  # no range, lipsum, cycler, joiner, namespace, dict: only the documented names
    env.filters.update({k: v for k, v in FILTERS.items() if k not in ("code", "yaml_str")})
    # No gettext here: a study's prose is written in each language it has (experiments/<id>.pt.md).
    return env
