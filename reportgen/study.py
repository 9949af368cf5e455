"""One study's results under one profile, as the analyses and templates see them: :class:`Study` of
:class:`VariantResults`, and :func:`collect`, which finds them in the results store."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .schema import StudyConfig
from .store import Run, Store, check_run

UNAVAILABLE = "UNAVAILABLE.txt"  # beside a variant's runs: why its dataset could not be provisioned


class RenderError(Exception):
    """One line: what is missing and the command that makes it."""


@dataclass
class VariantResults:
    name: str
    label: str
    description: str
    dataset: str
    runs: list[Run] = field(default_factory=list)
    unavailable: str | None = None  # why this variant was left out (e.g. its dataset could not be provisioned)

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]

    def test_accs(self) -> np.ndarray:
        return np.array([r.metrics.test_acc for r in self.runs])


@dataclass
class Study:
    """One study's results under one profile, as the analyses and templates see them."""
    id: str
    config: StudyConfig
    profile: str
    variants: list[VariantResults]

    @property
    def available(self) -> list[VariantResults]:
        return [v for v in self.variants if v.runs]

    @property
    def baseline(self) -> str | None:
        """The variant the others are compared with: ``baseline:`` in the YAML, else the first that ran."""
        return self.config.baseline or (self.available[0].name if self.available else None)

    def variant(self, name: str) -> VariantResults:
        return next(v for v in self.variants if v.name == name)


def collect(exp_id: str, exp: StudyConfig, profile: str, store: Store) -> Study:
    """The complete runs of every variant whose config is exactly what ``profile`` asks for."""
    variants, missing = [], []
    for v in exp.variants:
        result = VariantResults(name=v.name, label=v.label or v.name, description=v.description,
                                dataset=v.dataset or exp.dataset)
        for seed in exp.profile(profile).seeds:
            path = store.run_dir(exp_id, v.name, seed)
            state = check_run(path)
            wanted = json.loads(json.dumps(exp.resolve(v, seed, profile)))
            if state.status == "complete":
                run = store.load(exp_id, v.name, seed)
                if run.config == wanted:
                    result.runs.append(run)
                    continue
                state_text = "stale (trained with another config or profile)"
            else:
                state_text = state.status + (f": {state.reason}" if state.reason else "")
            kept = [Run(p) for p in store.kept_runs(exp_id, v.name, seed) if _config_of(p) == wanted
                    and check_run(p).status == "complete"]  # the cheap config comparison first, then the hashes
            if kept:  # this profile's run, set aside when another profile's run took the slot
                result.runs.append(kept[0])
                continue
            note = path.parent / UNAVAILABLE
            if v.optional and note.exists():
                result.unavailable = note.read_text().strip() or "its dataset could not be provisioned"
                result.runs = []
                break
            missing.append(f"{v.name}/seed-{seed} ({state_text})")
        variants.append(result)
    if missing:
        raise RenderError(f"{exp_id}: no results for {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}; "
                          f"run: reportgen run {exp_id} --profile {profile}")
    return Study(id=exp_id, config=exp, profile=profile, variants=variants)


def label_smoothing(run: Any) -> float:
    """The label smoothing a run trained with (0: none, or a run without a stored config)."""
    config = getattr(run, "config", None) or {}
    return float((config.get("training") or {}).get("label_smoothing") or 0.0)


def _config_of(path) -> Any:
    try:
        return json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return None
