"""Check that each study's Portuguese prose keeps the Jinja of its English prose, and that its .pt.yaml names only
fields, variants and exercises that the study declares.

    .venv/bin/python scripts/check_translation_parity.py [STUDY...]

For every ``experiments/<id>.pt.md`` the template is parsed in ``prose_environment()`` and its tokens outside the
text (``{{ }}``, ``{% %}``, including whitespace control ``{%-``) are compared, in order, with those of
``<id>.md``. A string literal may differ only when it is reader-visible text, i.e. when it contains a space in
English (a ``takeaway(...)`` sentence, an ``else "all the"``); a literal without a space names a variant, a study,
a class or a figure and must be identical. Every ``docs/<page>.pt.md`` must keep the anchors of its English
page's headings, in order, and link to the same targets. Prints the translated literals for review; exits 1 on
any mismatch.
"""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path

import markdown
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reportgen.markdown import prose_environment  # noqa: E402
EXPERIMENTS = ROOT / "experiments"
DOCS = ROOT / "docs"
TOP_KEYS = {"title", "description", "question", "varies", "categories", "tags", "variants", "exercises"}
VARIANT_KEYS = {"label", "description", "intended_reason"}
EXERCISE_KEYS = {"label", "description", "question", "hint", "prediction"}
PREDICTION_KEYS = {"because"}
SKIPPED = {"data", "whitespace", "comment_begin", "comment", "comment_end", "raw_begin", "raw_end"}


def jinja_tokens(source: str) -> list[tuple[str, str]]:
    env = prose_environment()
    env.parse(source)  # raises TemplateSyntaxError on broken Jinja
    return [(kind, str(value)) for _, kind, value in env.lex(source) if kind not in SKIPPED]


def compare_prose(english: str, portuguese: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Problems found, and the (English, Portuguese) string literals that were translated."""
    en, pt = jinja_tokens(english), jinja_tokens(portuguese)
    problems: list[str] = []
    translated: list[tuple[str, str]] = []
    if [k for k, _ in en] != [k for k, _ in pt]:
        diff = difflib.unified_diff([f"{k} {v}" for k, v in en], [f"{k} {v}" for k, v in pt], "en", "pt", n=2,
                                    lineterm="")
        return ["token structure differs:\n    " + "\n    ".join(list(diff)[:40])], []
    for (kind, a), (_, b) in zip(en, pt):
        if a == b:
            continue
        if kind == "string" and " " in a:
            translated.append((a, b))
        else:
            problems.append(f"{kind} {a!r} became {b!r}")
    return problems, translated


def _unknown(where: str, keys: object, allowed: set[str]) -> list[str]:
    if not isinstance(keys, dict):
        return [f"{where}: expected a mapping"]
    return [f"{where}: unknown key {k!r} (allowed: {', '.join(sorted(allowed))})" for k in keys if k not in allowed]


def check_yaml(study: dict, pt: dict) -> list[str]:
    problems = _unknown("top level", pt, TOP_KEYS)
    declared = {"variants": {v["name"]: v for v in study.get("variants") or []},
                "exercises": {e["name"]: e for e in study.get("exercises") or []}}
    for section, allowed in (("variants", VARIANT_KEYS), ("exercises", EXERCISE_KEYS)):
        for name, fields in (pt.get(section) or {}).items():
            if name not in declared[section]:
                problems.append(f"{section}: {name!r} is not declared (declared: {', '.join(declared[section])})")
                continue
            problems += _unknown(f"{section}.{name}", fields, allowed)
            for key in fields:
                if key not in declared[section][name] and key in allowed:
                    problems.append(f"{section}.{name}.{key}: the English study has no {key}")
            if "prediction" in fields:
                problems += _unknown(f"{section}.{name}.prediction", fields["prediction"], PREDICTION_KEYS)
    for key in ("title", "description", "question", "varies", "categories", "tags"):
        if key in pt and key not in study:
            problems.append(f"{key}: the English study has no {key}")
    for key in ("categories", "tags"):
        if key in pt and len(pt[key]) != len(study.get(key) or []):
            problems.append(f"{key}: {len(pt[key])} entries against {len(study[key])} in English")
    return problems


def check(study_id: str) -> bool:
    ok = True
    en_md, pt_md = EXPERIMENTS / f"{study_id}.md", EXPERIMENTS / f"{study_id}.pt.md"
    en_yaml, pt_yaml = EXPERIMENTS / f"{study_id}.yaml", EXPERIMENTS / f"{study_id}.pt.yaml"
    for path in (pt_md, pt_yaml):
        if not path.exists():
            print(f"{path.relative_to(ROOT)}: missing")
            ok = False
    if pt_md.exists():
        problems, translated = compare_prose(en_md.read_text(), pt_md.read_text())
        for p in problems:
            print(f"{pt_md.relative_to(ROOT)}: {p}")
        for a, b in translated:
            print(f"{pt_md.relative_to(ROOT)}: translated literal {a!r} -> {b!r}")
        ok = ok and not problems
    if pt_yaml.exists():
        problems = check_yaml(yaml.safe_load(en_yaml.read_text()), yaml.safe_load(pt_yaml.read_text()) or {})
        for p in problems:
            print(f"{pt_yaml.relative_to(ROOT)}: {p}")
        ok = ok and not problems
    print(f"{study_id}: {'ok' if ok else 'FAILED'}")
    return ok


def headings_and_links(page: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """The (level, anchor) of every heading, in order, and the sorted link targets of a hand-written page."""
    text = re.sub(r"\A---\n.*?\n---\n", "", page.read_text(), flags=re.S)
    html = markdown.markdown(text, extensions=["attr_list", "toc", "pymdownx.superfences"])
    return re.findall(r'<h(\d) id="([^"]+)"', html), sorted(set(re.findall(r'href="([^"]+)"', html)))


def check_page(pt_page: Path) -> bool:
    """A docs/<page>.pt.md keeps its English page's headings' anchors, in order, and links to the same targets."""
    en_page = pt_page.with_name(pt_page.name.replace(".pt.md", ".md"))
    (en_heads, en_links), (pt_heads, pt_links) = headings_and_links(en_page), headings_and_links(pt_page)
    problems = []
    if en_heads != pt_heads:
        problems.append(f"heading anchors differ: {en_heads} against {pt_heads}")
    if en_links != pt_links:
        problems.append(f"link targets differ: {sorted(set(en_links) ^ set(pt_links))}")
    for p in problems:
        print(f"{pt_page.relative_to(ROOT)}: {p}")
    print(f"{pt_page.relative_to(ROOT)}: {'ok' if not problems else 'FAILED'}")
    return not problems


def main(argv: list[str]) -> int:
    studies = argv or sorted(p.stem for p in EXPERIMENTS.glob("*.yaml") if not p.stem.endswith(".pt"))
    results = [check(s) for s in studies]
    if not argv:
        results += [check_page(p) for p in sorted(DOCS.rglob("*.pt.md"))]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
