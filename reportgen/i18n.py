"""The site's languages: which editions exist, their locales, and the gettext catalogs of the generic text.

English is the source language: its messages are the msgids. Every other edition reads
``reportgen/locale/<locale>/LC_MESSAGES/messages.po`` (compiled in memory by Babel, so no ``.mo`` is committed).
"""
from __future__ import annotations

import functools
import gettext

from .settings import LANGUAGES, SOURCE_LANGUAGE


def locale_of(lang: str) -> str:
    """The Babel/CLDR locale of an edition: ``"pt"`` -> ``"pt_BR"``."""
    return LANGUAGES[lang]


@functools.lru_cache(maxsize=None)
def translations(lang: str) -> gettext.NullTranslations:
    """The catalog of an edition's generic text; English (the source) translates nothing."""
    if lang == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    return gettext.NullTranslations()  # filled in by the catalog loader
