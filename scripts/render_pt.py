#!/usr/bin/env python3
"""Render posts in the Portuguese edition into a folder of their own, to read the generic text in Portuguese before
the site builds both editions:

    python scripts/render_pt.py OUT_DIR [STUDY...] [--profile quick]

Renders the named studies (default: all with complete results) from the cached results, inside
``i18n.active("pt")``, into ``OUT_DIR`` (a docs folder: ``OUT_DIR/blog/posts/<id>.md``, the home and Methods pages).
The study's own prose stays as written (its translation is another file's job); every generic sentence, table
heading, verdict and number comes out in Brazilian Portuguese.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from reportgen import i18n
from reportgen.pipeline import Workspace, complete, render
from reportgen.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("studies", nargs="*")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--root", type=Path, default=Path("."), help="the project (experiments/, results/)")
    args = parser.parse_args()
    ws = Workspace(args.root / "experiments", Store(args.root / "results"), args.out)
    names = args.studies or complete(ws.studies(), list(ws.studies()), args.profile, ws.store)
    with i18n.active("pt"):
        render(ws, names, args.profile, print)


if __name__ == "__main__":
    main()
