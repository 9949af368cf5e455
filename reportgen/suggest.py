"""The closest valid name, for one-line errors: ``unknown study 'dropot'; did you mean 'dropout'?``."""
from __future__ import annotations

import difflib
from typing import Iterable


def suggest(word: object, choices: Iterable[object]) -> str:
    """``"; did you mean 'x'?"`` with the choice closest to ``word`` (difflib), or "" when none is close."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.5)
    return f"; did you mean {match[0]!r}?" if match else ""
