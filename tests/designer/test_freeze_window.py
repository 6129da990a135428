"""Freezing a block in the window: the Inspector's Trainable checkbox, the summary, the canvas, undo."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QCheckBox, QStyle, QStyleOptionButton

from designer import theme
from engine.layers.registry import FROZEN_MARK


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    theme.apply_theme(QApplication.instance(), False)
    yield
    theme.apply_theme(QApplication.instance(), False)


def settle(w) -> None:
    """Handle the events the last gesture posted, then run the debounced analysis now."""
    QApplication.processEvents()
    w.document.analyze_now()


def node_named(w, name: str) -> str:
    return next(nid for nid, n in w.document.graph.nodes.items() if n.name == name)


def summary_cell(w, node_id: str, col: int) -> str:
    model = w.summary.model
    return model.index(model.row_of(node_id), col).data()


def indicator(box: QCheckBox):
    """The centre of a checkbox's tick box, where a person clicks."""
    opt = QStyleOptionButton()
    box.initStyleOption(opt)
    return box.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, opt, box).center()


def test_the_trainable_checkbox_freezes_a_block_and_undo_restores_it(open_windows, qtbot):
    window = open_windows()
    window.new_from_template("lenet5")
    conv = node_named(window, "conv1")
    window.scene.select_nodes([conv])
    settle(window)
    assert not window.summary.trainable_label.isVisible()
    assert window.params_label.text() == "Params: 61,706"
    box = window.inspector.field("trainable")
    assert isinstance(box, QCheckBox) and box.isChecked() and box.isVisibleTo(window.inspector)
    assert "running statistics" in box.toolTip()

    QTest.mouseClick(box, Qt.MouseButton.LeftButton, pos=indicator(box))
    settle(window)
    assert window.document.graph.nodes[conv].params["trainable"] is False
    assert window.summary.trainable_label.isVisible()
    assert window.summary.trainable_label.text() == f"{FROZEN_MARK} Trainable: 61,550 of 61,706 parameters; 156 frozen"
    assert summary_cell(window, conv, 3) == f"{FROZEN_MARK} 156"
    assert window.params_label.text() == "Params: 61,706 (61,550 trainable)"
    assert window.scene.node_item(conv).brief == f"{FROZEN_MARK} 6@5×5 s1 valid"

    window.view.setFocus()
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    settle(window)
    assert window.document.graph.nodes[conv].params["trainable"] is True
    assert box.isChecked()
    assert not window.summary.trainable_label.isVisible()
    assert summary_cell(window, conv, 3) == "156"
    assert window.params_label.text() == "Params: 61,706"
    assert window.scene.node_item(conv).brief == "6@5×5 s1 valid"
    window.act.redo.trigger()
    settle(window)
    assert window.document.graph.nodes[conv].params["trainable"] is False
    assert not box.isChecked()
