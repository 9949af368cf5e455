"""The site's editions: English at the root, each other language (``pt``: Brazilian Portuguese) under ``site/<lang>/``,
rendered from the same studies and the same measured numbers, with the same slugs.

- A study's own words in another language sit beside its English ones, ``experiments/<id>.<lang>.yaml`` and
  ``<id>.<lang>.md`` (:mod:`reportgen.translations`).
- A hand-written page ``docs/<page>.<lang>.md`` is that edition's copy of ``docs/<page>.md``; the English edition never
  shows one. Each other edition is built from ``.editions/<lang>/docs/``: its generated posts and pages, plus hard links
  to the hand-written pages and assets (:func:`edition_docs`).
- Each edition is one strict MkDocs (or Zensical) build of a config derived from ``mkdocs.yml`` (:func:`write_config`):
  ``theme.language``, the search language, ``<html lang>``, and Material's language selector (``extra.alternate``),
  whose links go to the same page in the other edition. Material documents this layout for multilingual sites (one
  build per language); mkdocs-static-i18n breaks the blog plugin.

Each edition renders inside ``with i18n.active(lang):`` (:func:`each`), so templates, prose, verdict sentences and
figures read the language from :func:`reportgen.i18n.current`.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml

from . import i18n
from .config import ConfigError, StudyConfig
from .engines import load_mkdocs_config
from .fsutil import atomic_write
from .settings import LANGUAGES, SOURCE_LANGUAGE
from .suggest import suggest
from .translations import is_translation, localized

EDITIONS_DIR = ".editions"  # beside docs/: .editions/<lang>/docs, mkdocs.yml and theme overrides (generated)


@dataclass(frozen=True)
class EditionText:
    """What an edition says about itself: its name in the selector, Material's ``theme.language``, the search
    stemmer, the site's name and description, and the titles of the navigation (by their English title)."""
    name: str
    theme_language: str
    search_language: str
    site_name: str = ""
    site_description: str = ""
    nav: tuple[tuple[str, str], ...] = ()
    palette: tuple[tuple[str, str], ...] = ()


EDITIONS: dict[str, EditionText] = {
    "en": EditionText(name="English", theme_language="en", search_language="en"),
    "pt": EditionText(
        name="Português (Brasil)", theme_language="pt-BR", search_language="pt",
        site_name="reportgen — o que uma CNN faz, medido",
        site_description="Experimentos declarados com CNNs em dados do tipo MNIST, treinados, medidos e escritos "
                         "como um blog tutorial.",
        nav=(("Home", "Início"), ("Blog", "Blog"), ("How to read a post", "Como ler um post"),
             ("Methods", "Métodos"), ("Write your own study", "Escreva seu próprio estudo"), ("About", "Sobre")),
        palette=(("Switch to dark mode", "Mudar para o modo escuro"),
                 ("Switch to light mode", "Mudar para o modo claro"))),
}
# The pages reportgen writes into an edition's docs (never linked from the hand-written docs/).
GENERATED = ("index.md", "methods.md", "write-your-own.md", "blog/posts", "assets/figures")


# ---- which editions ------------------------------------------------------------------------------------------
def choose(langs: Iterable[str] | None) -> tuple[str, ...]:
    """The editions to build, English (the site's root) first: all of them when ``langs`` is empty. Each value may
    hold several codes separated by commas (``--langs en,pt``). ConfigError names an unknown code."""
    wanted = [code.strip() for value in (langs or ()) for code in str(value).replace(",", " ").split()]
    if not wanted:
        return tuple(LANGUAGES)
    for code in wanted:
        if code not in LANGUAGES:
            raise ConfigError(f"--langs: unknown language {code!r}{suggest(code, list(LANGUAGES))} "
                              f"(languages: {', '.join(LANGUAGES)})")
    if SOURCE_LANGUAGE not in wanted:
        raise ConfigError(f"--langs {','.join(wanted)}: the {EDITIONS[SOURCE_LANGUAGE].name} edition is the site's "
                          f"root and is always built; use --langs {','.join([SOURCE_LANGUAGE, *wanted])}")
    return tuple(code for code in LANGUAGES if code in wanted)


# ---- rendering each edition ----------------------------------------------------------------------------------
def each(ws: Any, studies: dict[str, tuple[Path, StudyConfig]], langs: Iterable[str]) -> Iterator[tuple[str, Any, dict]]:
    """For each edition, inside ``i18n.active(lang)``: (lang, the workspace writing into its docs, the studies in
    its language). ``ws`` is a :class:`reportgen.pipeline.Workspace`."""
    for lang in langs:
        with i18n.active(lang):
            yield lang, replace(ws, docs=edition_docs(ws.docs, lang)), localized(studies, lang)


def edition_root(docs: Path, lang: str) -> Path:
    """Where an edition's generated files live: ``.editions/<lang>/`` beside ``docs/``."""
    return Path(docs).parent / EDITIONS_DIR / lang


def edition_docs(docs: Path, lang: str) -> Path:
    """The docs folder the edition ``lang`` renders into and builds from: ``docs`` itself for English; for another
    language ``.editions/<lang>/docs``, its hand-written part refreshed from ``docs`` (see :func:`sync_pages`)."""
    if lang == SOURCE_LANGUAGE:
        return Path(docs)
    target = edition_root(docs, lang) / "docs"
    sync_pages(Path(docs), target, lang)
    return target


def _generated(rel: str) -> bool:
    return any(rel == g or rel.startswith(g + "/") for g in GENERATED)


def sync_pages(docs: Path, target: Path, lang: str) -> None:
    """Make ``target`` hold every hand-written file of ``docs`` as a hard link (a copy across file systems):
    ``<page>.<lang>.md`` as ``<page>.md`` in place of the English page, other languages' pages left out. The
    generated pages and posts of ``target`` are its own; a hand-written file no longer in ``docs`` is removed."""
    wanted: dict[str, Path] = {}
    for folder, dirs, files in os.walk(docs):
        rel_dir = Path(folder).relative_to(docs)
        dirs[:] = [d for d in dirs if not _generated((rel_dir / d).as_posix())]
        for name in files:
            rel = (rel_dir / name).as_posix()
            path = Path(folder) / name
            if _generated(rel):
                continue
            if name.endswith(".md") and is_translation(path):
                if Path(path.stem).suffix[1:] == lang:
                    wanted[(rel_dir / f"{Path(path.stem).stem}.md").as_posix()] = path
                continue
            wanted.setdefault(rel, path)
            if name.endswith(".md") and (Path(folder) / f"{path.stem}.{lang}.md").is_file():
                wanted[rel] = Path(folder) / f"{path.stem}.{lang}.md"
    for rel, source in wanted.items():
        dest = target / rel
        if dest.exists() and os.path.samefile(source, dest):
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.unlink(missing_ok=True)
        try:
            os.link(source, dest)
        except OSError:
            shutil.copy2(source, dest)
    for folder, dirs, files in os.walk(target):
        rel_dir = Path(folder).relative_to(target)
        dirs[:] = [d for d in dirs if not _generated((rel_dir / d).as_posix())]
        for name in files:
            rel = (rel_dir / name).as_posix()
            if not _generated(rel) and rel not in wanted:
                (Path(folder) / name).unlink()


# ---- each edition's build ------------------------------------------------------------------------------------
def site_configs(project: Path, docs: Path, langs: tuple[str, ...]) -> list[tuple[Path, str]]:
    """(config file, folder under site/) of each edition's build, English (the root, "") first."""
    return [(write_config(project, docs, lang, langs), "" if lang == SOURCE_LANGUAGE else lang) for lang in langs]


def _prefix(lang: str) -> str:
    return "" if lang == SOURCE_LANGUAGE else f"{lang}/"


def edition_config(project: Path, docs: Path, lang: str, langs: tuple[str, ...]) -> dict[str, Any]:
    """``mkdocs.yml`` for the edition ``lang`` of a site holding ``langs``, as plain data (see :func:`write_config`)."""
    config = load_mkdocs_config(project, project / "mkdocs.yml")
    words = EDITIONS[lang]
    config["docs_dir"] = str(Path(edition_docs(docs, lang) if lang != SOURCE_LANGUAGE else docs).resolve())
    excluded = [line for line in str(config.get("exclude_docs") or "").splitlines() if line.strip()]
    config["exclude_docs"] = "\n".join(dict.fromkeys(
        excluded + [f"*.{other}.md" for other in LANGUAGES if other != SOURCE_LANGUAGE]))
    if config.get("site_url") and lang != SOURCE_LANGUAGE:
        config["site_url"] = str(config["site_url"]).rstrip("/") + f"/{lang}/"
    theme = config.get("theme") or {}
    theme = {"name": theme} if isinstance(theme, str) else dict(theme)
    theme["language"] = words.theme_language
    theme["custom_dir"] = str(_overrides(project, docs, lang).resolve())
    palette = dict(words.palette)
    for scheme in theme.get("palette") or []:
        toggle = scheme.get("toggle") if isinstance(scheme, dict) else None
        if toggle and toggle.get("name") in palette:
            toggle["name"] = palette[toggle["name"]]
    config["theme"] = theme
    config["plugins"] = [({"search": {**(p.get("search") or {}), "lang": words.search_language}}
                          if isinstance(p, dict) and "search" in p else
                          {"search": {"lang": words.search_language}} if p == "search" else p)
                         for p in config.get("plugins") or []]
    if words.site_name:
        config["site_name"] = words.site_name
    if words.site_description:
        config["site_description"] = words.site_description
    if words.nav and config.get("nav"):
        config["nav"] = _nav(config["nav"], dict(words.nav))
    extra = dict(config.get("extra") or {})
    if len(langs) > 1:
        up = "" if lang == SOURCE_LANGUAGE else "../"  # from this edition's root to the site's root
        extra["alternate"] = [{"name": EDITIONS[other].name, "lang": EDITIONS[other].theme_language,
                               "link": up + _prefix(other)} for other in langs]
    else:
        extra.pop("alternate", None)
    config["extra"] = extra
    return config


def _nav(nav: Any, titles: dict[str, str]) -> Any:
    if isinstance(nav, list):
        return [_nav(item, titles) for item in nav]
    if isinstance(nav, dict):
        return {titles.get(k, k): _nav(v, titles) for k, v in nav.items()}
    return nav


def write_config(project: Path, docs: Path, lang: str, langs: tuple[str, ...]) -> Path:
    """Write ``.editions/<lang>/mkdocs.yml`` (:func:`edition_config`) and return it."""
    target = edition_root(docs, lang) / "mkdocs.yml"
    text = yaml.safe_dump(edition_config(Path(project), Path(docs), lang, langs), sort_keys=False, allow_unicode=True)
    atomic_write(target, text.encode())
    return target.resolve()


# Material's language selector links to a fixed URL; this one links each page to the same page of the other edition
# (a category page, whose slug is translated, to the blog's index; the 404 page, served anywhere, to the other root).
ALTERNATE = """\
{#- reportgen.editions: the language selector links to the same page in the other edition -#}
<div class="md-header__option">
  <div class="md-select">
    {% set icon = config.theme.icon.alternate or "material/translate" %}
    <button class="md-header__button md-icon" aria-label="{{ lang.t('select.language') }}">
      {% include ".icons/" ~ icon ~ ".svg" %}
    </button>
    <div class="md-select__inner">
      <ul class="md-select__list">
        {#- Jinja and Zensical's MiniJinja alike: no string methods -#}
        {% set root = base_url if base_url[-1:] == "/" else base_url ~ "/" %}
        {% set here = page.url if page and page.url and page.url != "404.html" else "" %}
        {% if here[:14] == "blog/category/" %}{% set here = "blog/" %}{% endif %}
        {% for alt in config.extra.alternate %}
          <li class="md-select__item">
            <a href="{{ root }}{{ alt.link }}{{ here }}" hreflang="{{ alt.lang }}" class="md-select__link">
              {{ alt.name }}
            </a>
          </li>
        {% endfor %}
      </ul>
    </div>
  </div>
</div>
"""


# Material's partials/copyright.html, with its one English phrase translated by _overrides.
COPYRIGHT = """<div class="md-copyright">
  {% if config.copyright %}
    <div class="md-copyright__highlight">
      {{ config.copyright }}
    </div>
  {% endif %}
  {% if not config.extra.generator == false %}
    Made with
    <a href="https://squidfunk.github.io/mkdocs-material/" target="_blank" rel="noopener">
      Material for MkDocs
    </a>
  {% endif %}
</div>
"""


def _overrides(project: Path, docs: Path, lang: str) -> Path:
    """The edition's theme overrides: the language selector (:data:`ALTERNATE`) and, where Material's translation
    declares only the language (``pt``), a copy of it declaring the region too (``<html lang="pt-BR">``)."""
    folder = edition_root(docs, lang) / "overrides"
    atomic_write(folder / "partials" / "alternate.html", ALTERNATE.encode())
    with i18n.active(lang):  # Material writes its footer's "Made with" in English in every language
        made_with = i18n._("Made with")
    atomic_write(folder / "partials" / "copyright.html", COPYRIGHT.replace("Made with", made_with).encode())
    code = EDITIONS[lang].theme_language
    if "-" in code:
        try:
            import material
            source = Path(material.__file__).parent / "templates" / "partials" / "languages" / f"{code}.html"
            text = source.read_text(encoding="utf-8")
        except (ImportError, OSError):
            text = ""
        short = code.split("-")[0]
        if f'"language": "{short}",' in text:
            text = text.replace(f'"language": "{short}",', f'"language": "{code}",', 1)
            atomic_write(folder / "partials" / "languages" / f"{code}.html", text.encode())
    return folder

