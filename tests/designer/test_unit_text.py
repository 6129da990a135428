"""Every text a block draws is whole: no ellipsis, and it fits the room it is drawn in.

Each shipped template is opened at 1600×1000 and 1366×768 as a person opens it (fitted), and so
is the inside of each of its units; what every block paints at that zoom is recorded and measured
with the canvas font's own metrics. The counts line ("1.22M params · 1.03G MACs") is rounded to
fit rather than cut, so the numbers it shows are checked against the analysis's exact counts.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QFontMetricsF, QImage, QPainter
from PySide6.QtWidgets import QApplication, QStyleOptionGraphicsItem

from designer.canvas.items import READABLE_PX, NodeItem, counts_line, counts_text, text_width
from designer.main_window import MainWindow
from engine.graph import Graph
from engine.project import Project
from engine.templates import list_templates
from tests.engine.helpers import chain, vector_input
from tests.engine.test_count_format import round_significant

TEMPLATES = [info.name for info in list_templates()]
POWERS = {"k": 3, "M": 6, "G": 9, "T": 12}
#: how far (scene units) a text may reach past its rectangle before it counts as not fitting: rounding only
SLACK = 0.01


class _Recorder(QPainter):
    """A painter that notes every text drawn into a rectangle, with its font, and every badge (and draws them)."""

    def __init__(self, device) -> None:
        super().__init__(device)
        self.texts: list[tuple[QRectF, str, object]] = []
        self.ellipses: list[QRectF] = []

    def drawText(self, *args) -> None:
        if isinstance(args[0], QRectF):
            self.texts.append((QRectF(args[0]), args[-1], self.font()))
        super().drawText(*args)

    def drawEllipse(self, *args) -> None:
        if isinstance(args[0], QRectF):
            self.ellipses.append(QRectF(args[0]))
        super().drawEllipse(*args)


def painted(item: NodeItem, zoom: float) -> _Recorder:
    """What ``item`` draws at ``zoom`` (its texts in block coordinates)."""
    image = QImage(400, 200, QImage.Format.Format_ARGB32)
    painter = _Recorder(image)
    painter.scale(zoom, zoom)
    painter.translate(10, 10)
    try:
        item.paint(painter, QStyleOptionGraphicsItem(), None)
    finally:
        painter.end()
    return painter


def cut_texts(item: NodeItem, zoom: float) -> list[str]:
    """Each text of ``item`` that is cut, wider than its room, over its badge, out of the block or too small."""
    record = painted(item, zoom)
    bad = []
    for rect, text, f in record.texts:
        width = QFontMetricsF(f).horizontalAdvance(text)
        if "…" in text:
            bad.append(f"{text!r} is cut")
        elif width > rect.width() + SLACK:
            bad.append(f"{text!r} is {width:.1f} wide in {rect.width():.1f}")
        elif text and f.pixelSize() * zoom < READABLE_PX - 1e-9:
            bad.append(f"{text!r} is {f.pixelSize() * zoom:.1f} px on screen")
        if rect.top() >= 0 and text and rect.left() + width > item.rect().width() + SLACK:
            bad.append(f"{text!r} reaches past the block's edge")
        for badge in record.ellipses:
            beside = rect.top() < badge.bottom() and badge.top() < rect.bottom()
            if text != "!" and beside and rect.left() + width > badge.left():
                bad.append(f"{text!r} runs under the problem badge")
    return bad


def drawn_counts(item: NodeItem, zoom: float) -> str:
    """The counts line ``item`` draws at ``zoom`` ("1.2M params · 1.03G MACs")."""
    (line,) = [text for _, text, _ in painted(item, zoom).texts if re.search(r"\bparams\b", text)]
    return line


def shown_counts_are_right(item: NodeItem, info, zoom: float) -> list[str]:
    """The counts ``item`` draws against the analysis's: each number is the exact one rounded to what it shows."""
    line = drawn_counts(item, zoom)
    found = {word: number for number, word in re.findall(r"([\d.]+[kMGT]?) (params|MACs)", line)}
    expected = {"params": info.params, "MACs": info.macs}
    wrong = []
    for word, text in found.items():
        unit = text[-1] if text[-1] in POWERS else ""
        value = Decimal(text[:-1] if unit else text).scaleb(POWERS.get(unit, 0))
        exact = expected[word]
        if not any(value == round_significant(exact, d) for d in (2, 3)) and value != exact:
            wrong.append(f"{item.name}: {text} {word} for {exact:,}")
    if "params" not in found and not (line == "no params" and not info.params):
        wrong.append(f"{item.name}: no parameters in {line!r}")
    return wrong


def open_fitted(w: MainWindow, name: str) -> None:
    """Open template ``name`` as a person does: the window fits it to the canvas."""
    w.document.undo_stack.setClean()  # NOTE: no unsaved-changes prompt between templates
    assert w.new_from_template(name)
    QApplication.processEvents()
    w.document.analyze_now()
    w.view.fit_all()
    QApplication.processEvents()


def check_level(w: MainWindow, where: str) -> list[str]:
    """Cut texts and wrong counts of every block the canvas shows now."""
    zoom = w.view.transform().m11()
    analysis, problems = w.view.document.analysis, []
    for item in w.view.scene().node_items():
        problems += [f"{where}: {item.name}: {bad}" for bad in cut_texts(item, zoom)]
        info = analysis.nodes.get(item.node_id) if analysis is not None else None
        if info is not None and item.stats_text:
            problems += [f"{where}: {bad}" for bad in shown_counts_are_right(item, info, zoom)]
    return problems


@pytest.fixture
def sized_window(open_windows, monkeypatch, tmp_path):
    monkeypatch.setenv("NET_DESIGNER_DATA", str(tmp_path))
    return open_windows


@pytest.mark.parametrize("size", [(1600, 1000), (1366, 768)], ids=["1600x1000", "1366x768"])
def test_no_block_of_any_template_shows_cut_text(sized_window, size):
    w = sized_window(*size)
    problems = []
    for name in TEMPLATES:
        open_fitted(w, name)
        problems += check_level(w, name)
        units = {n.unit.name: nid for nid, n in w.document.graph.nodes.items() if n.unit is not None}
        for unit, nid in units.items():
            assert w.view.open_unit(nid)  # NOTE: a unit's level reads the network's analysis: no new one
            w.view.fit_all()
            QApplication.processEvents()
            problems += check_level(w, f"{name} / {unit}")
            w.view.go_to_depth(0)
    assert problems == []


def test_the_resnet50_stages_show_their_parameters_and_macs_whole(sized_window):
    w = sized_window(1366, 768)
    open_fitted(w, "resnet50")
    analysis, zoom = w.document.analysis, w.view.transform().m11()
    stages = [it for it in w.view.scene().node_items() if it.name.startswith("layer")]
    assert len(stages) == 4
    for item in stages:
        line = drawn_counts(item, zoom)
        assert "params · " in line and line.endswith(" MACs") and "…" not in line, line
        assert shown_counts_are_right(item, analysis.nodes[item.node_id], zoom) == []
        tip = item.tooltip_text()
        info = analysis.nodes[item.node_id]
        assert f"{info.params:,} parameters" in tip and f"{info.macs:,} multiply-adds per sample" in tip


def test_a_block_with_a_problem_badge_keeps_its_counts_clear_of_it(sized_window):
    w = sized_window(1366, 768)
    g = Graph()
    ids = chain(g, vector_input(g, 4096), ("Dense", {"units": 4096}), ("Dense", {"units": 4096}), "ClassificationOutput")
    w.document.replace(Project(name="wide", graph=g), None)
    w.document.analyze_now()
    w.view.fit_all()
    QApplication.processEvents()
    item = w.scene.node_item(ids[1])
    assert item.severity == "warning"  # a Dense after a Dense with nothing between: the badge shows
    zoom = w.view.transform().m11()
    assert len(painted(item, zoom).ellipses) == 1
    assert cut_texts(item, zoom) == []
    assert check_level(w, "wide") == []


@pytest.mark.parametrize("params,macs", [(0, 0), (999, 0), (61_706, 240_000), (1_049_999, 25_557_032),
                                          (25_557_032, 4_100_000_000), (999_999_999, 999_999_999_999),
                                          (123_456_789, 1_500_000_000_000)])
def test_the_counts_line_is_the_most_precise_that_fits(qapp, params, macs):
    full = counts_text(params, macs)
    for room in (60.0, 90.0, 120.0, 140.0, 150.0, 160.0, 165.0, 200.0):
        line = counts_line(params, macs, room)
        forms = [counts_text(params, macs, d) for d in ((3, 3), (2, 3), (3, 2), (2, 2))] + [counts_text(params, 0)]
        fitting = [f for f in forms if text_width("small", f) <= room]
        if fitting:
            assert line == fitting[0]
        else:
            assert line.endswith("…") and text_width("small", line) <= room
        if text_width("small", full) <= room:
            assert line == full
