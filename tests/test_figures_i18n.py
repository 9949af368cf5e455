"""Figures in the Portuguese edition: translated words, class names and numbers, the English figure unchanged."""
from __future__ import annotations

import numpy as np

from reportgen import i18n, numbers
from reportgen.analyses.confusion import draw_confusion
from reportgen.figures import FigureWriter


def test_class_names_are_translated_in_one_place_and_digits_stay():
    with i18n.active("pt"):
        assert i18n.class_names(["Trouser", "Ankle boot", "3", "tsu"]) == ["Calça", "Bota", "3", "tsu"]
    assert i18n.class_names(["Trouser", "3"]) == ["Trouser", "3"]


def test_figure_numbers_keep_the_english_f_string_and_take_the_decimal_comma_in_portuguese():
    for x, digits in ((-0.5349, 2), (99.96, 0), (7.25, 1)):
        assert numbers.plain(x, digits) == f"{x:.{digits}f}"
    assert numbers.significant(0.00123, 2) == "0.0012"
    with i18n.active("pt"):
        assert numbers.plain(-0.5349, 2) == "-0,53"
        assert numbers.significant(0.00123, 2) == "0,0012"


def test_a_portuguese_figure_is_drawn_in_portuguese_and_the_english_one_is_not_touched(tmp_path):
    matrix = np.array([[90.0, 10.0], [3.0, 97.0]]) / 100
    cache = tmp_path / "cache"

    def draw(lang: str, folder: str):
        figures = FigureWriter(directory=tmp_path / folder, link_prefix="p", cache_dir=cache)
        with i18n.active(lang):
            fig = draw_confusion(figures, matrix, i18n.class_names(["Trouser", "Bag"]), normalised=True,
                                 title="t", name="c")
        return fig.alt, (tmp_path / folder / "c.png").read_bytes(), figures.drawn

    en_alt, en_png, drawn = draw("en", "en")
    assert drawn == 1 and en_alt.startswith("t. Rows are the true class") and "true Trouser predicted as Bag" in en_alt
    pt_alt, pt_png, drawn = draw("pt", "pt")
    assert drawn == 1 and pt_png != en_png  # its own cache entry, its own words
    assert pt_alt.startswith("t. As linhas são a classe verdadeira") and "Calça verdadeira prevista como Bolsa" in pt_alt
    again_alt, again_png, drawn = draw("en", "again")
    assert drawn == 0 and (again_alt, again_png) == (en_alt, en_png)
