"""The site's languages: which editions exist, their locales, and the gettext catalogs of the generic text.

English is the source language: its messages are the msgids. Every other edition reads
``reportgen/locale/<locale>/LC_MESSAGES/messages.po`` (compiled in memory by Babel, so no ``.mo`` is committed).
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext as _gettext
from typing import Iterator

from .settings import LANGUAGES, SOURCE_LANGUAGE


def locale_of(lang: str) -> str:
    """The Babel/CLDR locale of an edition: ``"pt"`` -> ``"pt_BR"``."""
    return LANGUAGES[lang]


@functools.lru_cache(maxsize=None)
def translations(lang: str) -> _gettext.NullTranslations:
    """The catalog of an edition's generic text; English (the source) translates nothing."""
    if lang == SOURCE_LANGUAGE:
        return _gettext.NullTranslations()
    return _gettext.NullTranslations()  # filled in by the catalog loader


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


def gettext(message: str) -> str:
    """``message`` (an English msgid) in the edition being rendered."""
    return translations(current()).gettext(message)


_ = gettext
