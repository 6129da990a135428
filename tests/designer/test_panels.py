"""The designer's panels on their own: palette, inspector, summary, problems, gallery, code preview."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox, QLineEdit, QSpinBox

from designer import theme
from designer.code_preview import CodePreviewDialog
from designer.document import Document
from designer.fields import FloatSpin
from designer.gallery import TemplateGalleryDialog, render_miniature
from designer.inspector import InspectorWidget
from designer.palette import LAYER_MIME, PaletteWidget
from designer.problems import ProblemsWidget
from designer.summary import COLUMNS, SummaryWidget
from engine.graph import Graph
from engine.layers.registry import CATEGORIES, all_specs
from engine.project import Project
from engine.templates import list_templates


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))
    theme.apply_theme(QApplication.instance() or QApplication([]), False)
    yield


def make_doc(*blocks: tuple[str, dict]) -> tuple[Document, list[str]]:
    """A document holding a chain of ``blocks`` ((type, params) pairs), wired in order."""
    graph = Graph()
    ids = [graph.add_node(t, p, pos=(i * 230.0, 0.0)).id for i, (t, p) in enumerate(blocks)]
    for a, b in zip(ids, ids[1:]):
        graph.connect(a, 0, b, 0)
    return Document(Project(name="Test", graph=graph)), ids


def cell(summary: SummaryWidget, row: int, col: int) -> str:
    return summary.model.index(row, col).data()


# ---------------------------------------------------------------------- palette
def test_palette_lists_every_layer_grouped_by_category(qtbot):
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    specs = all_specs()
    assert set(palette.visible_type_ids()) == {s.type_id for s in specs}
    heads = [palette.tree.topLevelItem(i).text(0) for i in range(palette.tree.topLevelItemCount())]
    assert heads == [c for c in CATEGORIES if any(s.category == c for s in specs)]
    conv = palette.item_for("Conv2d")
    assert conv.parent().text(0) == "Convolution"
    assert conv.text(0) == "Conv2d"
    assert not conv.icon(0).isNull()
    spec = next(s for s in specs if s.type_id == "Conv2d")
    assert spec.doc[:60] in conv.toolTip(0)


def test_palette_search_filters_as_you_type(qtbot):
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    palette.show()
    QTest.keyClicks(palette.search, "sep")
    assert palette.visible_type_ids() == ["SeparableConv2d"]
    assert palette.no_match.isHidden()
    palette.search.clear()
    QTest.keyClicks(palette.search, "max pool")  # every word must match (title, type id or category)
    assert palette.visible_type_ids() == ["MaxPool2d", "GlobalMaxPool"]
    palette.search.clear()
    QTest.keyClicks(palette.search, "zzz")
    assert palette.visible_type_ids() == []
    assert not palette.no_match.isHidden()
    palette.search.clear()
    assert len(palette.visible_type_ids()) == len(all_specs())


def test_palette_enter_and_double_click_request_a_block(qtbot):
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    palette.show()
    QTest.keyClicks(palette.search, "relu")
    with qtbot.waitSignal(palette.add_requested) as blocker:
        QTest.keyClick(palette.search, Qt.Key.Key_Return)
    assert blocker.args == ["ReLU"]
    palette.search.clear()
    item = palette.item_for("Dropout")
    palette.tree.scrollToItem(item)
    pos = palette.tree.visualItemRect(item).center()
    with qtbot.waitSignal(palette.add_requested) as blocker:
        QTest.mouseClick(palette.tree.viewport(), Qt.MouseButton.LeftButton, pos=pos)
        QTest.mouseDClick(palette.tree.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args == ["Dropout"]


def test_palette_drag_carries_the_type_id(qtbot):
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    mime = palette.mime_data_for("BatchNorm")
    assert mime.hasFormat(LAYER_MIME)
    assert bytes(mime.data(LAYER_MIME)).decode() == "BatchNorm"


# ---------------------------------------------------------------------- inspector
def test_inspector_builds_editors_from_declarations(qtbot):
    doc, ids = make_doc(("Input", {}), ("Conv2d", {"filters": 8}), ("BatchNorm", {}), ("Flatten", {}), ("Reshape", {"shape": [392, 2, 4]}))
    inspector = InspectorWidget(doc)
    qtbot.addWidget(inspector)
    assert inspector.stack.currentWidget() is inspector.empty
    inspector.set_selection([ids[1]])
    filters = inspector.field("filters")
    assert isinstance(filters, QSpinBox) and filters.value() == 8
    assert (filters.minimum(), filters.maximum()) == (1, 65536)
    padding = inspector.field("padding")
    assert isinstance(padding, QComboBox) and padding.isEditable() and padding.currentText() == "same"
    assert isinstance(inspector.field("bias"), QCheckBox)
    init = inspector.field("init")
    assert isinstance(init, QComboBox) and not init.isEditable()
    assert "filters" in filters.toolTip().lower() or "output" in filters.toolTip().lower()
    assert inspector.form.stats["shape"].text() == "8×28×28"
    assert inspector.form.stats["params"].text() == f"{8 * 9 + 8:,}"
    assert inspector.form.name_edit.text() == doc.graph.nodes[ids[1]].name
    inspector.set_selection([ids[2]])
    eps = inspector.field("eps")
    assert isinstance(eps, FloatSpin) and eps.text() == "1e-05"
    inspector.set_selection([ids[4]])
    assert isinstance(inspector.field("shape"), QLineEdit)
    assert inspector.field("shape").text() == "392, 2, 4"


def test_inspector_int_or_choice_and_shape_fields(qtbot):
    doc, ids = make_doc(("Input", {}), ("Conv2d", {}), ("Flatten", {}), ("Reshape", {"shape": [16, 28, 28]}))
    inspector = InspectorWidget(doc)
    qtbot.addWidget(inspector)
    inspector.show()
    inspector.set_selection([ids[1]])
    padding = inspector.field("padding")
    padding.lineEdit().selectAll()
    QTest.keyClicks(padding.lineEdit(), "2")
    QTest.keyClick(padding.lineEdit(), Qt.Key.Key_Return)
    assert doc.graph.nodes[ids[1]].params["padding"] == 2
    padding.lineEdit().selectAll()
    QTest.keyClicks(padding.lineEdit(), "wide")
    QTest.keyClick(padding.lineEdit(), Qt.Key.Key_Return)
    assert doc.graph.nodes[ids[1]].params["padding"] == 2
    assert "whole number" in inspector.error_text("padding")
    assert padding.currentText() == "2"

    inspector.set_selection([ids[3]])
    shape = inspector.field("shape")
    shape.selectAll()
    QTest.keyClicks(shape, "16, 0, 4")
    QTest.keyClick(shape, Qt.Key.Key_Return)
    assert doc.graph.nodes[ids[3]].params["shape"] == (16, 28, 28)
    assert "at least 1" in inspector.error_text("shape")
    shape.selectAll()
    QTest.keyClicks(shape, "64x7x28")
    QTest.keyClick(shape, Qt.Key.Key_Return)
    assert doc.graph.nodes[ids[3]].params["shape"] == (64, 7, 28)
    assert inspector.error_text("shape") == ""


def test_inspector_refuses_out_of_range_typing_with_the_reason(qtbot):
    doc, ids = make_doc(("Input", {}), ("Conv2d", {"filters": 8}))
    inspector = InspectorWidget(doc)
    qtbot.addWidget(inspector)
    inspector.show()
    inspector.set_selection([ids[1]])
    spin = inspector.field("filters")
    spin.setFocus()
    spin.selectAll()
    QTest.keyClicks(spin, "70000")
    QTest.keyClick(spin, Qt.Key.Key_Return)
    assert "at most 65536" in inspector.error_text("filters")
    assert doc.graph.nodes[ids[1]].params["filters"] == 8 and spin.value() == 8
    assert doc.undo_stack.count() == 0
    spin.selectAll()
    QTest.keyClicks(spin, "12")
    QTest.keyClick(spin, Qt.Key.Key_Return)
    assert doc.graph.nodes[ids[1]].params["filters"] == 12
    assert inspector.error_text("filters") == ""


def test_inspector_rename_refuses_a_taken_name(qtbot):
    doc, ids = make_doc(("Input", {}), ("Dense", {}), ("Dense", {}))
    inspector = InspectorWidget(doc)
    qtbot.addWidget(inspector)
    inspector.show()
    inspector.set_selection([ids[2]])
    taken = doc.graph.nodes[ids[1]].name
    edit = inspector.form.name_edit
    edit.selectAll()
    QTest.keyClicks(edit, taken)
    QTest.keyClick(edit, Qt.Key.Key_Return)
    assert "already called" in inspector.error_text(None)
    assert doc.graph.nodes[ids[2]].name != taken
    edit.selectAll()
    QTest.keyClicks(edit, "classifier")
    QTest.keyClick(edit, Qt.Key.Key_Return)
    assert doc.graph.nodes[ids[2]].name == "classifier"


def test_inspector_edits_every_selected_block_of_one_type(qtbot):
    doc, ids = make_doc(("Input", {"kind": "vector", "features": 4}), ("Dense", {"units": 8}), ("ReLU", {}), ("Dense", {"units": 16}))
    inspector = InspectorWidget(doc)
    qtbot.addWidget(inspector)
    inspector.set_selection([ids[1], ids[3]])
    assert not inspector.form.note.isHidden()
    assert inspector.field("units").property("mixed") is True
    inspector.field("units").setValue(32)
    assert [doc.graph.nodes[i].params["units"] for i in (ids[1], ids[3])] == [32, 32]
    assert doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    assert [doc.graph.nodes[i].params["units"] for i in (ids[1], ids[3])] == [8, 16]
    assert inspector.field("units").value() == 8
    inspector.set_selection([ids[1], ids[2]])
    assert inspector.stack.currentWidget() is inspector.mixed
    assert "different types" in inspector.mixed.text()
    inspector.set_selection([])
    assert inspector.stack.currentWidget() is inspector.empty


# ---------------------------------------------------------------------- summary and problems
def test_summary_table_rows_and_totals(qtbot):
    doc, ids = make_doc(("Input", {}), ("Conv2d", {"filters": 6, "kernel_size": 5, "padding": "valid"}), ("Flatten", {}), ("Dense", {"units": 10}))
    summary = SummaryWidget()
    qtbot.addWidget(summary)
    summary.set_analysis(doc.graph, doc.analysis)
    model = summary.model
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(len(COLUMNS))] == list(COLUMNS)
    assert model.rowCount() == len(ids) + 1
    assert cell(summary, 1, 1) == "Conv2d"
    assert cell(summary, 1, 2) == "6×24×24"
    assert cell(summary, 1, 3) == "156"
    assert cell(summary, 1, 5) == "5×5"
    total = model.rowCount() - 1
    assert cell(summary, total, 0) == "Total"
    assert cell(summary, total, 3) == f"{doc.analysis.total_params:,}"
    with qtbot.waitSignal(summary.selection_changed) as blocker:
        summary.table.selectRow(3)
    assert blocker.args == [[ids[3]]]
    with qtbot.assertNotEmitted(summary.selection_changed):
        summary.select_nodes([ids[1]])
    assert [i.row() for i in summary.table.selectionModel().selectedRows()] == [1]


def test_problems_list_icons_counts_and_clicks(qtbot):
    doc, ids = make_doc(("Input", {}), ("Dense", {"units": 4}))
    lone = doc.graph.add_node("Dense", {}, pos=(0, 300)).id
    doc.analyze_now()
    problems = ProblemsWidget()
    qtbot.addWidget(problems)
    problems.show()
    problems.set_analysis(doc.graph, doc.analysis)
    assert problems.errors >= 1
    assert "error" in problems.title()
    item = problems.item_for(lone)
    assert item is not None and not item.icon().isNull()
    rect = problems.list.visualItemRect(item)
    with qtbot.waitSignal(problems.problem_activated) as blocker:
        QTest.mouseClick(problems.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [lone]
    clean, _ = make_doc(("Input", {"kind": "vector", "features": 1}), ("Dense", {"units": 1}), ("RegressionOutput", {}))
    clean.project.data.dataset, clean.project.data.task = "regression1d", "regression"  # what the network fits
    clean.analyze_now()
    problems.set_analysis(clean.graph, clean.analysis)
    assert problems.title() == "Problems"
    assert problems.list.count() == 1 and problems.list.item(0).data(Qt.ItemDataRole.UserRole) is None


# ---------------------------------------------------------------------- gallery, code preview, theme, device
def test_gallery_shows_every_template_with_a_miniature(qtbot):
    dialog = TemplateGalleryDialog()
    qtbot.addWidget(dialog)
    names = [t.name for t in list_templates()]
    assert [c.name for c in dialog.cards] == names
    for card in dialog.cards:
        assert card.isEnabled()
        image = card.picture.pixmap().toImage()
        assert len({image.pixel(x, y) for x in range(0, image.width(), 4) for y in range(0, image.height(), 4)}) > 2
    dialog.show()
    card = dialog.cards[2]
    QTest.mouseDClick(card, Qt.MouseButton.LeftButton, pos=card.rect().center())
    assert dialog.result() == dialog.DialogCode.Accepted
    assert dialog.selected_name == names[2]


def test_render_miniature_of_an_unplaced_graph(qtbot):
    graph = Graph()
    a = graph.add_node("Input", {}).id
    b = graph.add_node("Flatten", {}).id
    graph.connect(a, 0, b, 0)
    pm = render_miniature(graph)
    assert not pm.isNull()


def test_code_preview_highlights_and_copies(qtbot):
    source = 'import torch\n\nclass Net(nn.Module):\n    """Doc."""\n    def forward(self, x):\n        return x  # done\n'
    dialog = CodePreviewDialog(source, "Net")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.editor.isReadOnly()
    block = dialog.editor.document().findBlockByNumber(0)
    formats = block.layout().formats()
    assert formats and formats[0].start == 0  # "import" is highlighted
    QTest.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == source


def test_theme_switches_palette_and_persists(qtbot):
    app = QApplication.instance()
    theme.apply_theme(app, True)
    assert theme.is_dark()
    theme.save_dark(True)
    assert theme.saved_dark()
    theme.apply_theme(app, False)
    theme.save_dark(False)
    assert not theme.is_dark() and not theme.saved_dark()


def test_device_label(monkeypatch):
    import torch

    from designer.device import training_device_label

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert training_device_label() == "CPU"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "Fake GPU")
    assert training_device_label() == "CUDA: Fake GPU"


def test_a_combo_too_narrow_for_its_text_ends_it_with_an_ellipsis(qtbot):
    from designer.fields import NoWheelCombo

    combo = NoWheelCombo()
    qtbot.addWidget(combo)
    combo.addItems(["Handwritten digits (8×8)", "XOR"])
    combo.setMinimumContentsLength(4)
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.resize(400, combo.sizeHint().height())
    combo.show()
    assert combo.shown_text() == "Handwritten digits (8×8)"
    combo.resize(90, combo.height())
    narrow = combo.shown_text()
    assert narrow.endswith("…") and "Handwritten digits (8×8)".startswith(narrow[:-1]) and len(narrow) > 2
    combo.setCurrentIndex(1)
    assert combo.shown_text() == "XOR"
    combo.grab()  # paints through the elided path without error


def test_the_inspector_says_a_field_that_no_longer_moves_sees_the_whole_image(qtbot):
    from designer.document import Document
    from engine.templates import load_template

    doc = Document(load_template("efficientnet_b0"))
    inspector = InspectorWidget(doc)
    qtbot.addWidget(inspector)
    gated = next(n.id for n in doc.graph.nodes.values() if n.name == "block1")  # a unit: its field is after its SE gate
    rf = doc.analysis.nodes[gated].rf
    assert rf.jump == 0
    inspector.set_selection([gated])
    assert inspector.form.stats["rf"].text() == f"{rf} px: the whole image"
    conv = next(n.id for n in doc.graph.nodes.values() if n.type == "Conv2d")
    inspector.set_selection([conv])
    assert "(stride 2)" in inspector.form.stats["rf"].text()


def test_a_note_is_listed_last_with_its_own_icon_and_is_neither_error_nor_warning(qtbot):
    """Masks cropped to a valid convolution's smaller maps: worth knowing, nothing to fix."""
    from designer.inspector import InspectorWidget
    from engine.analysis import INFO

    doc, ids = make_doc(("Input", {"kind": "image", "channels": 1, "height": 16, "width": 16}),
                        ("Conv2d", {"filters": 4, "kernel_size": 3, "padding": 0}),  # 14×14 maps of 16×16 masks
                        ("SegmentationOutput", {}))
    lone = doc.graph.add_node("Dense", {}, pos=(0, 300)).id
    doc.graph.connect(ids[0], 0, lone, 0)  # a Dense on an image: an error, listed first
    doc.project.data.dataset, doc.project.data.task, doc.project.data.samples = "shapes", "segmentation", 40
    doc.analyze_now()
    notes = [p for p in doc.analysis.all_problems() if p.severity == INFO]
    assert [p.rule for p in notes] == ["mask_crop"] and "cropped to their centre 14×14" in notes[0].message
    problems = ProblemsWidget()
    qtbot.addWidget(problems)
    problems.set_analysis(doc.graph, doc.analysis)
    counts = (len(doc.analysis.errors()), len(doc.analysis.warnings()), 1)
    assert (problems.errors, problems.warnings, problems.notes) == counts and counts[0] >= 1
    assert problems.title().endswith(", 1 note)")
    words = [problems.list.item(i).toolTip().split(" ", 1)[0] for i in range(problems.list.count())]
    assert words == ["Error"] * counts[0] + ["Warning"] * counts[1] + ["Note"]
    last = problems.list.item(problems.list.count() - 1)
    assert last.text() == notes[0].message and last.toolTip().startswith("Note (mask_crop): ")
    first = problems.list.item(0)
    assert first.toolTip().startswith("Error")
    assert last.icon().pixmap(16, 16).toImage() != first.icon().pixmap(16, 16).toImage()
    inspector = InspectorWidget(doc)
    qtbot.addWidget(inspector)
    inspector.set_selection([notes[0].node_id])  # the Inspector marks a note as such, not as a warning
    shown = inspector.form.problems.text()
    assert "ⓘ" in shown and "⚠" not in shown and "cropped to their centre" in shown
