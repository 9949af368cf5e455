"""The confounds check: does a variant differ from the baseline in more than the one thing its study varies?

A study states its factor in words (``varies:``); every other difference between a variant's resolved run and the
baseline's is a confound unless the variant declares it (``intended: [parameters]``, with ``intended_reason:``).
Compared, from :meth:`StudyConfig.resolve` and the model zoo:

- ``parameters``: trainable parameters differ by more than :data:`~reportgen.settings.PARAMETER_TOLERANCE`;
- ``data``: the training-set size (``train_limit``);
- ``dataset``: the dataset;
- ``recipe``: any training field but the number of epochs (optimizer, learning rate, schedule, augmentation ...);
- ``epochs``: the number of epochs.

The model's layers are not compared field by field: changing them is what most studies vary, and the parameter
count is what shows when that change also makes the network bigger or smaller. When the factor is itself one of
these kinds (augmentation is a ``recipe`` difference, a study of datasets varies ``dataset``), the study says so with
``factor:``, and differences of that kind are neither warned about nor stated as limitations.

``reportgen list`` prints :func:`warnings`; each post's closing section states every difference, declared or not
(:mod:`reportgen.conclusions`). Nothing here enters a run's config or cache key.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import i18n, numbers
from .i18n import N_
from .run_schema import AugmentConfig, TrainingConfig
from .schema import DEFAULT_PROFILES, StudyConfig, VariantConfig
from .settings import DATASET_TITLES, PARAMETER_TOLERANCE

# How a post and a warning name each kind of difference.
WHAT = {"parameters": N_("parameter count"), "data": N_("training-set size"), "dataset": N_("dataset"),
        "recipe": N_("training recipe"), "epochs": N_("number of epochs")}  # English; posts translate them


@dataclass(frozen=True)
class Difference:
    """One way a variant's runs differ from the baseline's, besides the study's declared factor."""
    variant: str            # the variant's name
    index: int              # its position under variants: in the study file
    label: str
    baseline: str
    baseline_label: str
    kind: str               # one of schema.INTENDED
    variant_value: str      # the variant's value, as a reader would say it
    baseline_value: str
    intended: bool          # the variant declares it (intended: [kind])
    reason: str             # its intended_reason ("" when none is given)

    @property
    def what(self) -> str:
        return i18n._(WHAT[self.kind])


def parameter_count(model: dict[str, Any]) -> int:
    """Trainable parameters of a resolved model config (``{"name", "options"}``), from the module it builds."""
    from .models import build_config, count_parameters
    return count_parameters(build_config(model))


def baseline_of(exp: StudyConfig) -> VariantConfig | None:
    """The variant the others are compared with: ``baseline:``, else the first (None when there is none)."""
    if not exp.variants:
        return None
    return exp.variant(exp.baseline) if exp.baseline else exp.variants[0]


def _training_text(field: str, value: Any) -> str:
    if field == "augment":
        from .context import describe_augment
        return describe_augment(AugmentConfig.model_validate(value) if value else None)
    return i18n._("none") if value is None else str(value)


def _train_size(limit: int | None) -> str:
    return (i18n._("all training images") if limit is None
            else i18n._("the first %(n)s training images") % {"n": numbers.thousands(limit)})


def compare(base: dict[str, Any], other: dict[str, Any], base_parameters: int,
            other_parameters: int) -> dict[str, tuple[str, str]]:
    """Every kind of difference between two resolved run configs (as :meth:`StudyConfig.resolve` gives them) and
    their parameter counts: kind -> (other's value, base's value), both as text."""
    found: dict[str, tuple[str, str]] = {}
    if base_parameters and abs(other_parameters - base_parameters) / base_parameters > PARAMETER_TOLERANCE:
        change = 100 * (other_parameters - base_parameters) / base_parameters
        found["parameters"] = (f"{numbers.thousands(other_parameters)} ({numbers.localized(change, 0, signed=True)}%)",
                               numbers.thousands(base_parameters))
    if other["train_limit"] != base["train_limit"]:
        found["data"] = (_train_size(other["train_limit"]), _train_size(base["train_limit"]))
    if other["dataset"] != base["dataset"]:
        found["dataset"] = (DATASET_TITLES.get(other["dataset"], other["dataset"]),
                            DATASET_TITLES.get(base["dataset"], base["dataset"]))
    a, b = TrainingConfig.complete(base["training"]), TrainingConfig.complete(other["training"])
    fields = [f for f in a if f != "epochs" and a[f] != b.get(f)]
    if fields:
        found["recipe"] = ("; ".join(f"{f}: {_training_text(f, b.get(f))}" for f in fields),
                           "; ".join(f"{f}: {_training_text(f, a[f])}" for f in fields))
    if a["epochs"] != b["epochs"]:
        found["epochs"] = (str(b["epochs"]), str(a["epochs"]))
    return found


def differences(exp: StudyConfig, profile: str) -> list[Difference]:
    """Every difference of every variant from the baseline under ``profile`` (seed of the profile's first),
    declared or not, in the order of the study file."""
    base = baseline_of(exp) if exp.trains else None
    if base is None:
        return []
    seed = exp.profile(profile).seeds[0]
    resolved = {v.name: exp.resolve(v, seed, profile) for v in exp.variants}
    counts = {name: parameter_count(config["model"]) for name, config in resolved.items()}
    found = []
    for index, v in enumerate(exp.variants):
        if v.name == base.name:
            continue
        for kind, (value, base_value) in compare(resolved[base.name], resolved[v.name], counts[base.name],
                                                 counts[v.name]).items():
            if kind == exp.factor:  # what the study varies: the point of the comparison, not a confound
                continue
            found.append(Difference(
                variant=v.name, index=index, label=v.label or v.name, baseline=base.name,
                baseline_label=base.label or base.name, kind=kind, variant_value=value, baseline_value=base_value,
                intended=kind in v.intended, reason=v.intended_reason if kind in v.intended else ""))
    return found


def warnings(path: Path, exp: StudyConfig, profile: str) -> list[str]:
    """One line per problem ``reportgen list`` reports (a warning; the exit code is unchanged): a study with
    several variants that does not say what it varies, every undeclared difference (both values and how to
    declare it), and every declared difference that is not there (so the post would not state it)."""
    if not exp.trains or len(exp.variants) < 2:
        return []
    lines = []
    if not exp.varies.strip():
        lines.append(f"{path}: varies: is not set; state the one thing the variants change, e.g. "
                     f"varies: \"dropout before fc2 and fc3\" (the setup table and the closing section name it)")
    found = differences(exp, profile)
    for d in found:
        if d.intended:
            continue
        declared = [k for k in exp.variants[d.index].intended] + [d.kind]
        lines.append(f"{path}: variants[{d.index}] {d.variant!r} differs from the baseline {d.baseline!r} in "
                     f"{d.what} as well as in what the study varies: {d.variant_value} vs {d.baseline_value}; if "
                     f"that is intended, add to the variant: intended: [{', '.join(declared)}] "
                     f"and intended_reason: \"why\"")
    # a declaration is stale only when the difference is there under no profile (a variant's own epochs may
    # be set for the full profile alone)
    seen = {(d.variant, d.kind) for name in DEFAULT_PROFILES for d in differences(exp, name)}
    for index, v in enumerate(exp.variants):
        for kind in v.intended:
            if (v.name, kind) not in seen:
                lines.append(f"{path}: variants[{index}] {v.name!r}: intended: lists {kind!r}, but its "
                             f"{WHAT[kind]} is the baseline's{_tolerance(kind)} under every profile; "
                             f"remove it")
    return lines


def _tolerance(kind: str) -> str:
    return f" (within {100 * PARAMETER_TOLERANCE:.0f}%)" if kind == "parameters" else ""
