"""The site's languages: which editions exist, their locales, and the gettext catalogs of the generic text.

English is the source language: its messages are the msgids. Every other edition reads
``reportgen/locale/<locale>/LC_MESSAGES/messages.po`` (compiled in memory by Babel, so no ``.mo`` is committed).
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import gettext as _gettext
import hashlib
import io
from pathlib import Path
from typing import Iterator

from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from .settings import LANGUAGES, SOURCE_LANGUAGE

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"


def locale_of(lang: str) -> str:
    """The Babel/CLDR locale of an edition: ``"pt"`` -> ``"pt_BR"``."""
    return LANGUAGES[lang]


def catalog_path(lang: str) -> Path:
    """The ``.po`` file of an edition: ``reportgen/locale/pt_BR/LC_MESSAGES/messages.po`` for ``"pt"``."""
    return LOCALE_DIR / locale_of(lang) / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.lru_cache(maxsize=None)
def translations(lang: str) -> _gettext.NullTranslations:
    """The catalog of an edition's generic text, compiled in memory from its ``.po`` file (read once per process);
    English (the source) translates nothing. A fuzzy entry is not used, as msgfmt would not use it."""
    if lang == SOURCE_LANGUAGE:
        return _gettext.NullTranslations()
    with catalog_path(lang).open("rb") as f:
        catalog = read_po(f, locale=locale_of(lang), domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(fp=buf, domain=DOMAIN)


@functools.lru_cache(maxsize=None)
def catalog_digest(lang: str) -> str:
    """A hash of an edition's catalog (empty for the source language): part of the cache key of anything drawn with
    translated text, so a corrected translation is redrawn."""
    if lang == SOURCE_LANGUAGE:
        return ""
    return hashlib.sha256(catalog_path(lang).read_bytes()).hexdigest()[:16]


# ---- the edition being rendered ----------------------------------------------------------------------------------
# Python code that writes reader-facing text (verdict sentences, figure labels, chart tooltips) asks which edition is
# being rendered instead of taking a language argument through every call: the pipeline renders each edition inside
# ``with i18n.active(lang):``.
_ACTIVE: contextvars.ContextVar[str] = contextvars.ContextVar("reportgen_language", default=SOURCE_LANGUAGE)


@contextlib.contextmanager
def active(lang: str) -> Iterator[None]:
    """Render everything inside this block for the edition ``lang``."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; known: {', '.join(LANGUAGES)}")
    token = _ACTIVE.set(lang)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def current() -> str:
    """The edition being rendered (``"en"`` outside any :func:`active` block)."""
    return _ACTIVE.get()


# *term*: the emphasis a translation gives a kept English term (*batch*, *feature maps*) at its first use in prose.
_EMPHASIS = re.compile(r"(?<![\w*\\])\*([^\s*][^*\n]*?)\*(?![\w*])")


def _plain(message: str, translated: str) -> str:
    """Text written from Python lands in figures, chart labels and values that a template escapes, where Markdown
    emphasis would show as asterisks: the translation's ``*term*`` becomes ``term`` unless the English has its own."""
    return translated if "*" in message else _EMPHASIS.sub(r"\1", translated)


def gettext(message: str) -> str:
    """``message`` (an English msgid) in the edition being rendered, as plain text (:func:`_plain`)."""
    return _plain(message, translations(current()).gettext(message))


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural of a message, as the edition's plural rule chooses for ``n``."""
    return _plain(singular + plural, translations(current()).ngettext(singular, plural, n))


def pgettext(context: str, message: str) -> str:
    """``message`` in the edition being rendered, where the same English word needs a context to be translated."""
    return translations(current()).pgettext(context, message)


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined (a constant), to be translated where it is used."""
    return message


def class_name(name: str) -> str:
    """A dataset's class name (``reportgen.data.DATASETS``) as the edition writes it, in figures and tables alike:
    Fashion-MNIST's names are messages ("Trouser" -> "Calça"); digits and KMNIST's romaji are their own names."""
    return gettext(name) if name else name


def class_names(names: "list[str] | tuple[str, ...]") -> list[str]:
    """:func:`class_name` of each name, in order."""
    return [class_name(n) for n in names]


# Messages defined where gettext cannot be imported (reportgen.settings, which this module imports), translated where
# they are used; listed here so that extraction finds them.
DEFINED_ELSEWHERE = (
    N_("the first seed's run"),  # settings.FIRST_SEED
)


def babel_locale() -> str:
    """The CLDR locale of the edition being rendered: what Babel formats numbers and dates for."""
    return locale_of(current())


def and_list(items: "list[str]") -> str:
    """"a, b and c" in the edition's language (Babel's list patterns)."""
    return format_list(list(items), locale=babel_locale()) if items else ""


_ = gettext
