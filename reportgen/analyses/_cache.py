"""Where an analysis's cached numbers live, and reading them back: no torch, no matplotlib, so a command that
finds everything cached (a warm ``reportgen run`` or ``build``) never imports them.

A run's expensive derived numbers are cached at ``.cache/analysis/<run cache key>/<analysis>-<params hash>.npz``
(:func:`reportgen.analyses._common.cached_arrays` computes and writes them); the hash covers the parameters, the
exact weights (their SHA-256, read from the run's completion marker) and ANALYSIS_CACHE_VERSION.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..fsutil import cache_root
from ..settings import ANALYSIS_CACHE_VERSION
from ..store import MARKER, Run


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def weights_digest(run: Run) -> str:
    """SHA-256 of the run's weights as recorded in its completion marker (no re-hashing)."""
    try:
        return json.loads((run.path / MARKER).read_text())["files"]["weights.safetensors"]
    except (OSError, ValueError, KeyError):
        return "unknown"


def cache_file(run: Run, analysis: str, params: dict[str, Any]) -> Path:
    """The file ``analysis`` of ``run`` with ``params`` is cached in."""
    key = run.record.cache_key or digest(str(run.path))
    full = {"analysis": analysis, "version": ANALYSIS_CACHE_VERSION, "weights": weights_digest(run), **params}
    return cache_root() / "analysis" / key / f"{analysis}-{digest(full)}.npz"


def read_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays cached at ``path``; None when there are none (or the file is damaged: it is recomputed)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {name: z[name] for name in z.files}
    except (OSError, ValueError, EOFError):
        return None
