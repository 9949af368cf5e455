"""Issue 18, the site's editions: English at the root and Brazilian Portuguese under site/pt/, from the same studies
and results (reportgen/editions.py, reportgen/translations.py).

The fast tests check a study's Portuguese texts (``<id>.pt.yaml``: loading, one-line errors before training, the
overlay), the edition configs, the docs of the Portuguese edition and ``reportgen new --lang pt``. The slow ones
train one tiny study on synthetic data (smoke profile) and build both editions with a strict MkDocs build: every pt
page declares pt-BR, the selector links each page to its counterpart in both directions, a study without Portuguese
prose gets its English prose under the note, and ``--langs en`` builds English alone.
"""
from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import yaml

from reportgen import editions, i18n, stamp, translations
from reportgen.config import ConfigError, discover, load_study
from tests.conftest import ROOT, copy_site_sources, run_main

ALPHA = """\
id: alpha
title: Alpha, the study that ran
description: Two tiny networks that differ in their learning rate.
question: Does a larger learning rate help the tiny network in one epoch?
varies: the learning rate
date: 2026-03-02
order: 5
categories: [Tests]
tags: [build]
dataset: fashion-mnist
model: {name: tiny}
training: {optimizer: adam, lr: 0.001, batch_size: 64, epochs: 1}
profiles:
  smoke: {epochs: 1, seeds: [0], train_limit: 256, eval_limit: 100}
baseline: slow
variants:
  - {name: slow, label: Slow, description: learning rate 0.001}
  - {name: fast, label: Fast, description: learning rate 0.003, training: {lr: 0.003}}
analyses: [curves]
exercises:
  - name: faster
    question: Does an even larger rate help?
    training: {lr: 0.01}
    prediction: {accuracy: same, because: one epoch is short}
"""
ALPHA_PT_YAML = """\
title: Alfa, o estudo que rodou
description: Duas redes pequenas que diferem na taxa de aprendizado.
question: Uma taxa de aprendizado maior ajuda a rede pequena em uma época?
categories: [Testes]
variants:
  fast: {label: Rápida, description: "taxa de aprendizado 0,003"}
exercises:
  faster: {question: "Uma taxa ainda maior ajuda?", prediction: {because: uma época é pouco}}
"""
ALPHA_PT_MD = """\
## O que comparamos

A variante rápida chega a {{ acc("fast") }} de acurácia de teste, contra {{ acc("slow") }} da lenta.

{{ results() }}
"""
ABOUT_PT = "# Sobre\n\nEste site mede o que uma CNN faz.\n"


def write_alpha(experiments: Path, pt_yaml: str | None = ALPHA_PT_YAML, pt_md: str | None = ALPHA_PT_MD) -> Path:
    experiments.mkdir(parents=True, exist_ok=True)
    (experiments / "alpha.yaml").write_text(ALPHA)
    if pt_yaml is not None:
        (experiments / "alpha.pt.yaml").write_text(pt_yaml)
    if pt_md is not None:
        (experiments / "alpha.pt.md").write_text(pt_md)
    return experiments / "alpha.yaml"


# ---- a study's Portuguese texts ------------------------------------------------------------------------------
def test_the_texts_replace_the_english_ones_where_given(tmp_path):
    path = write_alpha(tmp_path)
    exp = load_study(path)
    pt = translations.localize(exp, translations.load_text(path, exp, "pt"))
    assert pt.title == "Alfa, o estudo que rodou" and pt.categories == ["Testes"]
    assert pt.varies == "the learning rate" and pt.tags == ["build"]  # not translated: the English text
    labels = {v.name: (v.label, v.description) for v in pt.variants}
    assert labels == {"slow": ("Slow", "learning rate 0.001"), "fast": ("Rápida", "taxa de aprendizado 0,003")}
    assert pt.exercises[0].question == "Uma taxa ainda maior ajuda?"
    assert pt.exercises[0].prediction.because == "uma época é pouco"
    assert pt.exercises[0].prediction.accuracy == "same"  # what is measured never changes
    assert pt.model_dump(exclude={"title", "description", "question", "categories", "variants", "exercises"}) == \
        exp.model_dump(exclude={"title", "description", "question", "categories", "variants", "exercises"})
    assert translations.localized({"alpha": (path, exp)}, "en")["alpha"][1] is exp


def test_a_study_with_no_texts_keeps_its_english(tmp_path):
    path = write_alpha(tmp_path, pt_yaml=None)
    exp = load_study(path)
    assert translations.load_text(path, exp, "pt") is None
    assert translations.localized({"alpha": (path, exp)}, "pt")["alpha"][1] == exp


def test_translation_files_are_not_studies(tmp_path):
    write_alpha(tmp_path)
    assert list(discover(tmp_path)) == ["alpha"]


@pytest.mark.parametrize("text, field, closest, allowed", [
    ("titel: Alfa\n", "'titel'", "title", "title, description, question, varies, categories, tags, variants"),
    ("variants:\n  fast: {lable: Rápida}\n", "'variants.fast.lable'", "label", "label, description, intended_reason"),
    ("exercises:\n  faster: {prediction: {becuse: x}}\n", "'exercises.faster.prediction.becuse'", "because",
     "because"),
    ("variants:\n  fats: {label: Rápida}\n", "variants.fats", "fast", "variants: slow, fast"),
    ("exercises:\n  fastr: {label: x}\n", "exercises.fastr", "faster", "exercises: faster"),
])
def test_a_bad_key_is_one_line_with_the_closest_name(tmp_path, text, field, closest, allowed):
    path = write_alpha(tmp_path, pt_yaml=text)
    with pytest.raises(ConfigError) as caught:
        translations.load_text(path, load_study(path), "pt")
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'alpha.pt.yaml'}: ")
    assert field in message and f"did you mean {closest!r}?" in message and allowed in message


def test_a_bad_key_stops_run_before_training_exit_2(project):
    """`reportgen run` checks the Portuguese texts before anything is trained or provisioned."""
    (project / "experiments" / "dropout.pt.yaml").write_text("titel: Dropout\n")
    code, out, err = run_main("run", "dropout", "--profile", "smoke", "--device", "cpu")
    assert code == 2
    assert err.strip().count("\n") == 0 and "dropout.pt.yaml" in err and "did you mean 'title'?" in err
    assert not (project / "results").exists()


def test_portuguese_prose_is_checked_before_training(project):
    (project / "experiments" / "dropout.pt.md").write_text('Acurácia: {{ acc("dropuot") }}\n')
    code, _, err = run_main("run", "dropout", "--profile", "smoke", "--device", "cpu")
    assert code == 2 and "dropout.pt.md" in err and not (project / "results").exists()


def test_the_prose_of_each_edition(tmp_path):
    path = write_alpha(tmp_path, pt_md=None)
    (tmp_path / "alpha.md").write_text("English prose.\n")
    exp = load_study(path)
    with i18n.active("pt"):
        prose = translations.prose_path(path, exp)
        assert prose == tmp_path / "alpha.md"
        note = translations.untranslated_note(prose)
        assert note.startswith('!!! note "Este estudo ainda não foi traduzido"')
        (tmp_path / "alpha.pt.md").write_text("Prosa em português.\n")
        prose = translations.prose_path(path, exp)
        assert prose == tmp_path / "alpha.pt.md" and translations.untranslated_note(prose) == ""
    assert translations.prose_path(path, exp) == tmp_path / "alpha.md"  # the English edition
    assert translations.untranslated_note(tmp_path / "alpha.md") == ""


# ---- which editions ------------------------------------------------------------------------------------------
def test_choose_editions():
    assert editions.choose(()) == ("en", "pt") == editions.choose(["pt,en"]) == editions.choose(["en", "pt"])
    assert editions.choose(["en"]) == ("en",)
    with pytest.raises(ConfigError, match=r"unknown language 'pr'; did you mean 'pt'\?"):
        editions.choose(["en,pr"])
    with pytest.raises(ConfigError, match="always built; use --langs en,pt"):
        editions.choose(["pt"])


def test_unknown_language_on_the_command_line_is_exit_2(project):
    code, _, err = run_main("build", "--profile", "smoke", "--langs", "en,pr")
    assert code == 2 and "did you mean 'pt'?" in err and "\n" not in err.strip()


# ---- caches --------------------------------------------------------------------------------------------------
def test_each_edition_has_its_own_post_stamps(tmp_path, monkeypatch):
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path))
    english = stamp._stamp_path("alpha")
    with i18n.active("pt"):
        portuguese = stamp._stamp_path("alpha")
    assert english == tmp_path / "posts" / "alpha.json" and portuguese == tmp_path / "posts" / "pt" / "alpha.json"


def _draw_square():
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    return fig


def test_each_edition_has_its_own_cached_figures(tmp_path):
    from reportgen.figures import FigureWriter

    def writer(name: str) -> FigureWriter:
        return FigureWriter(directory=tmp_path / name, link_prefix=name, cache_dir=tmp_path / "cache")
    first, again = writer("en1"), writer("en2")
    first.emit("square", "a square", {"n": 1}, _draw_square)
    again.emit("square", "a square", {"n": 1}, _draw_square)
    assert (first.drawn, again.reused) == (1, 1)  # English: cached
    with i18n.active("pt"):
        portuguese, cached = writer("pt1"), writer("pt2")
        portuguese.emit("square", "um quadrado", {"n": 1}, _draw_square)
        cached.emit("square", "um quadrado", {"n": 1}, _draw_square)
    assert (portuguese.drawn, portuguese.reused, cached.reused) == (1, 0, 1)  # never the English figure


# ---- the edition's docs and config ---------------------------------------------------------------------------
def test_the_portuguese_docs_hold_its_pages_and_links_to_the_rest(tmp_path):
    docs = tmp_path / "docs"
    (docs / "blog" / "posts").mkdir(parents=True)
    (docs / "assets").mkdir()
    (docs / "about.md").write_text("# About\n")
    (docs / "about.pt.md").write_text(ABOUT_PT)
    (docs / "how-to-read.md").write_text("# How to read\n")
    (docs / "assets" / "extra.css").write_text("body {}\n")
    (docs / "blog" / "posts" / "alpha.md").write_text("an English post\n")
    (docs / "index.md").write_text("the English home page\n")
    target = editions.edition_docs(docs, "pt")
    assert target == tmp_path / ".editions" / "pt" / "docs"
    assert (target / "about.md").read_text() == ABOUT_PT and not (target / "about.pt.md").exists()
    assert (target / "how-to-read.md").read_text() == "# How to read\n"  # untranslated: the English page
    assert (target / "assets" / "extra.css").samefile(docs / "assets" / "extra.css")  # a link, not a copy
    assert not (target / "index.md").exists() and not (target / "blog" / "posts").exists()  # its own, generated
    (target / "blog" / "posts").mkdir(parents=True)
    (target / "blog" / "posts" / "alpha.md").write_text("um post\n")
    (docs / "how-to-read.md").unlink()
    editions.edition_docs(docs, "pt")
    assert not (target / "how-to-read.md").exists()  # gone from docs: gone here
    assert (target / "blog" / "posts" / "alpha.md").read_text() == "um post\n"  # generated: kept
    assert editions.edition_docs(docs, "en") == docs


def test_each_edition_config(tmp_path):
    copy_site_sources(tmp_path, model_source=False)
    docs = tmp_path / "docs"
    both = ("en", "pt")
    en, pt = (editions.edition_config(tmp_path, docs, lang, both) for lang in both)
    assert en["theme"]["language"] == "en" and pt["theme"]["language"] == "pt-BR"
    assert {"search": {"lang": "pt"}} in pt["plugins"] and {"search": {"lang": "en"}} in en["plugins"]
    assert en["docs_dir"] == str(docs.resolve()) and pt["docs_dir"] == str(tmp_path / ".editions" / "pt" / "docs")
    assert en["exclude_docs"] == "*.pt.md"
    assert [a["link"] for a in en["extra"]["alternate"]] == ["", "pt/"]
    assert [a["link"] for a in pt["extra"]["alternate"]] == ["../", "../pt/"]
    assert [a["lang"] for a in pt["extra"]["alternate"]] == ["en", "pt-BR"]
    assert "Sobre" in json.dumps(pt["nav"], ensure_ascii=False) and "About" in json.dumps(en["nav"])
    language = Path(pt["theme"]["custom_dir"]) / "partials" / "languages" / "pt-BR.html"
    assert '"language": "pt-BR"' in language.read_text()
    assert "alternate" not in editions.edition_config(tmp_path, docs, "en", ("en",))["extra"]


# ---- reportgen new --lang pt ---------------------------------------------------------------------------------
def test_new_with_lang_pt_scaffolds_portuguese_texts_that_validate(project):
    code, out, err = run_main("new", "mine", "--lang", "pt")
    assert code == 0, err
    folder = project / "experiments"
    assert {"mine.yaml", "mine.md", "mine.pt.yaml", "mine.pt.md"} <= {p.name for p in folder.iterdir()}
    exp = load_study(folder / "mine.yaml")
    assert translations.load_text(folder / "mine.yaml", exp, "pt").title
    assert "## O que comparamos" in (folder / "mine.pt.md").read_text()
    # ... and run's checks accept them
    code, _, err = run_main("list", "--profile", "smoke")
    assert code == 0, err


def test_new_with_lang_pt_for_a_study_that_exists(project):
    shutil.copy(ROOT / "experiments" / "dropout.md", project / "experiments")
    code, out, err = run_main("new", "dropout", "--lang", "pt")
    assert code == 0, err
    folder = project / "experiments"
    skeleton = folder / "dropout.pt.yaml"
    exp = load_study(folder / "dropout.yaml")
    text = translations.load_text(folder / "dropout.yaml", exp, "pt")  # valid as written: the English to translate
    assert text.title == exp.title and set(text.variants) == {v.name for v in exp.variants}
    assert f"# title: {exp.title}" in skeleton.read_text()
    assert (folder / "dropout.md").read_text() in (folder / "dropout.pt.md").read_text()
    code, _, err = run_main("new", "dropout", "--lang", "pt")
    assert code == 2 and "already exists" in err


# ---- both editions built (slow) ------------------------------------------------------------------------------
class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.selector: list[tuple[str, str]] = []  # (hreflang, href)

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "html":
            self.lang = values.get("lang")
        if tag == "a" and "md-select__link" in (values.get("class") or ""):
            self.selector.append((values.get("hreflang") or "", values.get("href") or ""))


def page_links(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def resolve(site: Path, page: Path, href: str) -> Path:
    """The file ``href`` on ``page`` (under ``site``) points at: ``x/`` is ``x/index.html``."""
    base = "http://site/" + page.relative_to(site).as_posix()
    path = urlsplit(urljoin(base, href)).path.lstrip("/")
    target = site / path
    return target / "index.html" if href.endswith("/") or target.is_dir() else target


@pytest.fixture(scope="module")
def editions_project(tmp_path_factory, synthetic_idx):
    """A project with the study alpha (trained once, smoke profile, synthetic data) and its Portuguese texts and
    prose, the illustration ``convolution`` without Portuguese prose, and docs/about.pt.md."""
    from reportgen.provision import provision
    base = tmp_path_factory.mktemp("editions")
    project, data = base / "project", base / "data"
    write_alpha(project / "experiments")
    for suffix in (".yaml", ".md"):
        shutil.copy(ROOT / "experiments" / f"convolution{suffix}", project / "experiments")
    copy_site_sources(project, model_source="reportgen/models.py")
    (project / "docs" / "about.pt.md").write_text(ABOUT_PT)
    patch = pytest.MonkeyPatch()
    for key, value in {"REPORTGEN_DATA": str(data), "REPORTGEN_OFFLINE": "1", "REPORTGEN_SKIP_CHECKSUM": "1"}.items():
        patch.setenv(key, value)
    patch.delenv("REPORTGEN_RESULTS", raising=False)
    provision("fashion-mnist", data, from_dir=synthetic_idx, skip_checksum=True, allow_download=False,
              allow_install=False, log=lambda *_: None)
    patch.chdir(project)
    code, _, err = run_main("run", "alpha", "--profile", "smoke", "--device", "cpu")
    assert code == 0, err
    code, _, err = run_main("build", "--profile", "smoke")
    assert code == 0, err
    yield project
    patch.undo()


@pytest.mark.slow
def test_both_editions_with_the_same_slugs(editions_project):
    site = editions_project / "site"
    english = {p.relative_to(site).as_posix() for p in site.rglob("*.html") if not p.relative_to(site).parts[0] == "pt"}
    portuguese = {p.relative_to(site / "pt").as_posix() for p in (site / "pt").rglob("*.html")}
    for page in ("index.html", "blog/alpha/index.html", "blog/convolution/index.html", "about/index.html",
                 "methods/index.html", "write-your-own/index.html", "how-to-read/index.html"):
        assert page in english and page in portuguese
    assert not any("about.pt" in page for page in english | portuguese)
    post = (site / "pt" / "blog" / "alpha" / "index.html").read_text()
    assert "Alfa, o estudo que rodou" in post and "O que comparamos" in post and "Rápida" in post
    assert "Alpha, the study that ran" in (site / "blog" / "alpha" / "index.html").read_text()
    assert "Este site mede" in (site / "pt" / "about" / "index.html").read_text()
    assert "Este site mede" not in (site / "about" / "index.html").read_text()
    search = json.loads((site / "pt" / "search" / "search_index.json").read_text())
    assert search["config"]["lang"] == ["pt"]


@pytest.mark.slow
def test_every_portuguese_page_declares_pt_br(editions_project):
    site = editions_project / "site"
    pages = sorted((site / "pt").rglob("*.html"))
    assert len(pages) > 8
    assert {page_links(p).lang for p in pages} == {"pt-BR"}
    assert {page_links(p).lang for p in site.glob("*/index.html") if p.parent.name != "pt"} == {"en"}


@pytest.mark.slow
def test_the_selector_links_each_page_to_its_counterpart_both_ways(editions_project):
    site = editions_project / "site"
    checked = 0
    for page in sorted(site.rglob("*.html")):
        rel = page.relative_to(site)
        in_pt = rel.parts[0] == "pt"
        links = dict(page_links(page).selector)
        assert set(links) == {"en", "pt-BR"}, rel
        own = rel.relative_to("pt") if in_pt else rel
        if own.parts[:2] == ("blog", "category"):
            continue  # a category's slug is its translated name: the selector goes to the blog
        if own == Path("404.html"):  # served at any depth: links from the site's root
            own = Path("index.html")
        assert resolve(site, page, links["en"]) == site / own, rel
        assert resolve(site, page, links["pt-BR"]) == site / "pt" / own, rel
        checked += 1
    assert checked >= 16


@pytest.mark.slow
def test_untranslated_prose_is_english_under_the_note(editions_project):
    site = editions_project / "site"
    post = (site / "pt" / "blog" / "convolution" / "index.html").read_text()
    assert "Este estudo ainda não foi traduzido" in post
    english_prose = (ROOT / "experiments" / "convolution.md").read_text()
    first_heading = re.search(r"^## (.+)$", english_prose, re.M).group(1)
    assert first_heading in post  # its own words, in English
    assert "ainda não foi traduzido" not in (site / "blog" / "convolution" / "index.html").read_text()
    assert "ainda não foi traduzido" not in (site / "pt" / "blog" / "alpha" / "index.html").read_text()


@pytest.mark.slow
def test_langs_en_builds_the_english_edition_alone(editions_project, tmp_path, monkeypatch):
    from tests.conftest import copy_project
    project = copy_project(editions_project, tmp_path / "project")
    monkeypatch.chdir(project)
    code, _, err = run_main("build", "--profile", "smoke", "--langs", "en")
    assert code == 0, err
    assert not (project / "site" / "pt").exists()
    home = page_links(project / "site" / "index.html")
    assert home.lang == "en" and home.selector == []


@pytest.mark.slow
def test_zensical_builds_both_editions(editions_project, tmp_path, monkeypatch):
    from tests.conftest import copy_project
    project = copy_project(editions_project, tmp_path / "project")
    monkeypatch.chdir(project)
    code, _, err = run_main("build", "--profile", "smoke", "--engine", "zensical")
    assert code == 0, err
    site = project / "site"
    assert "Alfa, o estudo que rodou" in (site / "pt" / "blog" / "alpha" / "index.html").read_text()
    assert page_links(site / "pt" / "about" / "index.html").lang == "pt-BR"
    assert page_links(site / "about" / "index.html").lang == "en"
    assert not any("about.pt" in p.as_posix() for p in site.rglob("*"))
    links = dict(page_links(site / "pt" / "blog" / "alpha" / "index.html").selector)
    assert resolve(site, site / "pt" / "blog" / "alpha" / "index.html", links["en"]) == site / "blog" / "alpha" / "index.html"
