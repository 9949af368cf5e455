#!/usr/bin/env python3
"""Compare the numbers in two renderings of the same posts: did a change of templates lose any?

    python scripts/post_numbers.py BEFORE_DIR AFTER_DIR

Both directories hold rendered posts (``<id>.md``; a ``docs`` folder or its ``blog/posts`` folder both work). For
every post present in both, every number token in the Markdown is collected — integers, thousands separators
(61,706), signs (+0.42, -1, and the Unicode minus −1.07), decimals and percentages (83.79%) — and the two
multisets are compared: numbers in BEFORE that AFTER lacks are *missing*, numbers only in AFTER are *added*.

Two parts are left out on both sides because they are generated differently now: the "Model" column of the setup
table (``| Variant | What changes | Model | ...``) and the generated models block (its heading, one-line summaries
and "...: layer by layer" boxes); hand-written text, even under a "## The model" heading, is kept.

One summary line per post; the missing and added numbers are listed below it. Exit status 1 if any number is
missing from any post (or a post is missing altogether), else 0. Standard library only.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

# A number: optional sign (ASCII or the Unicode minus), digits with optional thousands groups, optional
# decimals, optional percent sign. Never part of a word: the 2 of "fc2", the digits of a commit hash
# ("50b6062…") or of "10h" are not numbers; "5×5" is two (× is not a word character).
NUMBER = re.compile(
    r"(?<![\w.])"                                   # not glued to a word or a decimal point on the left
    r"[+\-\u2212]?"                                 # sign
    r"(?:\d{1,3}(?:,\d{3})+|\d+)"                   # 61,706 or 61706
    r"(?:\.\d+)?"                                   # decimals
    r"%?"                                           # percent
    r"(?!\w|\.\w)"                                  # nor on the right (a full stop ending a sentence is fine)
)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
MODEL_HEADING = re.compile(r"^##\s+The models?\s*$")
LAYER_BOX = re.compile(r'^\?\?\?\+? info ".*: layer by layer"')
TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")


def cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


SUMMARY_LINE = re.compile(r"^.+: .+ \u2014 [\d,]+ parameters\.$")


def generated_models_sections(lines: list[str]) -> set[int]:
    """Line numbers of the generated models block (``models()``): its "## The model(s)" heading when it has one,
    the one-line summaries ("Label: conv 5×5 ... — 61,706 parameters.") and the "...: layer by layer" boxes with
    their indented tables. Hand-written text around it, even under a "## The model" heading, is kept."""
    skip: set[int] = set()
    in_box = False
    for i, line in enumerate(lines):
        if LAYER_BOX.match(line):
            in_box = True
            skip.add(i)
        elif in_box and (line.startswith("    ") or not line.strip()):
            skip.add(i)
        else:
            in_box = False
            if SUMMARY_LINE.match(line):
                skip.add(i)
    for i, line in enumerate(lines):  # a generated heading: followed (after blank lines) by a summary line
        if MODEL_HEADING.match(line):
            j = next((k for k in range(i + 1, len(lines)) if lines[k].strip()), None)
            if j is not None and j in skip and SUMMARY_LINE.match(lines[j]):
                skip.add(i)
    return skip


def strip_excluded(text: str) -> str:
    """The post without its generated "The model(s)" section and without the Model column of the setup table."""
    out: list[str] = []
    model_column: int | None = None   # index of the "Model" column while inside the setup's variant table
    lines = text.splitlines()
    skip = generated_models_sections(lines)
    for i, line in enumerate(lines):
        if i in skip:
            continue
        if TABLE_ROW.match(line):
            row = cells(line)
            if model_column is None and "Model" in row and "Variant" in row:
                model_column = row.index("Model")
            elif model_column is not None and model_column < len(row):
                row[model_column] = ""
                line = "| " + " | ".join(row) + " |"
        else:
            model_column = None
        out.append(line)
    return "\n".join(out)


def numbers(text: str) -> Counter[str]:
    """Every number token, normalised: the Unicode minus as '-'."""
    return Counter(m.group(0).replace("\u2212", "-") for m in NUMBER.finditer(text))


def posts(directory: Path) -> dict[str, Path]:
    for candidate in (directory / "blog" / "posts", directory):
        found = {p.stem: p for p in sorted(candidate.glob("*.md"))}
        if found:
            return found
    return {}


def listing(counter: Counter[str]) -> str:
    return ", ".join(f"{n}×{c}" if c > 1 else n for n, c in sorted(counter.items(), key=lambda kv: kv[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="directory of the posts rendered before the change")
    parser.add_argument("after", type=Path, help="directory of the posts rendered after the change")
    args = parser.parse_args(argv)
    before, after = posts(args.before), posts(args.after)
    if not before:
        parser.error(f"no posts (*.md) in {args.before}")
    failed = False
    for name in sorted(before.keys() | after.keys()):
        if name not in after:
            print(f"{name}: MISSING after (only in {args.before})")
            failed = True
            continue
        if name not in before:
            print(f"{name}: new post (only in {args.after}); nothing to compare")
            continue
        old = numbers(strip_excluded(before[name].read_text(encoding="utf-8")))
        new = numbers(strip_excluded(after[name].read_text(encoding="utf-8")))
        missing, added = old - new, new - old
        status = "FAIL" if missing else "ok"
        print(f"{name}: {status}: {sum(old.values())} numbers before, {sum(new.values())} after, "
              f"{sum(missing.values())} missing, {sum(added.values())} added")
        if missing:
            print(f"    missing: {listing(missing)}")
        if added:
            print(f"    added:   {listing(added)}")
        failed |= bool(missing)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
