"""The window's layouts as a person meets them: the canvas first while designing, the plots and the Insight
views side by side while a run trains, View → Reset layout, layouts kept across restarts, and the start
screen's template cards on a 1366×768 screen.

Menus are chosen with real clicks on the menu bar and the menu; a run is started with F5.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect, QSettings, Qt
from PySide6.QtGui import QAction
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDockWidget

from designer import theme
from designer.main_window import DESIGN_LAYOUT, TRAINING_LAYOUT, MainWindow
from engine.templates import load_template
from tests.designer.conftest import training_window

LEFT = Qt.MouseButton.LeftButton
RUN_TIMEOUT = 60_000
SIDE_BY_SIDE = 0.35  # of the window's width, at least, for each of the plots and the Insight views


@pytest.fixture(autouse=True)
def _light(qapp):
    theme.apply_theme(QApplication.instance(), False)


def small_mlp(epochs: int = 500):
    """The MLP template on a few hundred spiral points, on the CPU: a run that trains until stopped."""
    p = load_template("mlp")
    p.data.samples = 300
    p.training.epochs = epochs
    p.training.device = "cpu"
    return p


def choose(qtbot, w: MainWindow, action: QAction) -> None:
    """Open the View menu with a click on the menu bar, then click ``action`` in it."""
    bar, menu = w.menuBar(), w.view_menu
    QTest.mouseClick(bar, LEFT, pos=bar.actionGeometry(menu.menuAction()).center())
    qtbot.waitUntil(menu.isVisible)
    with qtbot.waitSignal(action.triggered):
        QTest.mouseClick(menu, LEFT, pos=menu.actionGeometry(action).center())
    qtbot.waitUntil(lambda: not menu.isVisible())


def in_front(w: MainWindow, dock: QDockWidget) -> bool:
    """Whether ``dock`` is on show: open, docked, and the tab on top of its group (Qt moves the others out of
    sight rather than hiding them)."""
    return dock.isVisible() and not dock.isFloating() and w.rect().contains(dock.geometry().center())


def side_by_side(w: MainWindow) -> bool:
    """The Training plots and the Insight views both on show, in different groups, each wide enough, beside
    each other, and each about half the window's height."""
    dash, insight = w.training.dashboard_dock, w.training.insight_dock
    return (in_front(w, dash) and in_front(w, insight) and insight not in w.tabifiedDockWidgets(dash)
            and min(dash.width(), insight.width()) >= SIDE_BY_SIDE * w.width()
            and dash.geometry().top() == insight.geometry().top()
            and all(0.35 * w.height() <= d.height() <= 0.65 * w.height() for d in (dash, insight)))


def design_arranged(w: MainWindow) -> bool:
    """The design layout: the canvas takes most of the height, summary and problems under it, the
    training docks as tabs behind the summary."""
    t, A = w.training, Qt.DockWidgetArea
    behind = w.tabifiedDockWidgets(w.summary_dock)
    return (in_front(w, w.summary_dock) and in_front(w, w.problems_dock)
            and {t.dashboard_dock, t.runs_dock, t.insight_dock} <= set(behind)
            and w.dockWidgetArea(w.summary_dock) == A.BottomDockWidgetArea
            and w.view.height() >= 0.6 * w.height())


@pytest.fixture
def window(qtbot):
    with training_window(qtbot, small_mlp()) as w:
        yield w


# ---------------------------------------------------------------------- the training layout
def test_a_run_puts_the_plots_and_the_insight_views_side_by_side(window, qtbot):
    assert window.layout_mode == DESIGN_LAYOUT
    qtbot.waitUntil(lambda: design_arranged(window))
    assert not in_front(window, window.training.insight_dock)
    with qtbot.waitActive(window):
        window.activateWindow()
    window.view.setFocus()
    with qtbot.waitSignal(window.training.run_started):
        QTest.keyClick(window, Qt.Key.Key_F5)
    try:
        assert window.layout_mode == TRAINING_LAYOUT and window.act.training_layout.isChecked()
        qtbot.waitUntil(lambda: side_by_side(window))
        assert window.view.height() >= 0.25 * window.height()  # the canvas keeps the rest
        # the plots draw while it trains, in the dock on show
        qtbot.waitUntil(lambda: window.training.dashboard.batch.n > 0, timeout=RUN_TIMEOUT)
    finally:
        with qtbot.waitSignal(window.training.run_ended, timeout=RUN_TIMEOUT):
            QTest.keyClick(window, Qt.Key.Key_F5, Qt.KeyboardModifier.ShiftModifier)
    assert window.layout_mode == TRAINING_LAYOUT  # the run's results stay in view after it ends


def test_the_view_menu_switches_layouts_and_both_views_grow_with_the_window(window, qtbot):
    choose(qtbot, window, window.act.training_layout)
    qtbot.waitUntil(lambda: side_by_side(window))
    before = (window.training.dashboard_dock.width(), window.training.insight_dock.width())
    window.resize(window.width() + 300, window.height())
    qtbot.waitUntil(lambda: window.training.dashboard_dock.width() > before[0]
                    and window.training.insight_dock.width() > before[1])
    assert side_by_side(window)
    choose(qtbot, window, window.act.design_layout)
    assert window.layout_mode == DESIGN_LAYOUT and window.act.design_layout.isChecked()
    assert not window.act.training_layout.isChecked()
    qtbot.waitUntil(lambda: design_arranged(window))


# ---------------------------------------------------------------------- Reset layout
def test_reset_layout_puts_the_docks_back_for_the_current_layout(window, qtbot):
    t, A = window.training, Qt.DockWidgetArea
    choose(qtbot, window, window.act.training_layout)
    qtbot.waitUntil(lambda: side_by_side(window))
    window.tabifyDockWidget(t.dashboard_dock, t.insight_dock)  # as a drag of its title onto the plots would
    t.runs_dock.setFloating(True)
    window.problems_dock.close()
    qtbot.waitUntil(lambda: not side_by_side(window))
    choose(qtbot, window, window.act.reset_layout)
    qtbot.waitUntil(lambda: side_by_side(window))
    assert window.layout_mode == TRAINING_LAYOUT
    assert not t.runs_dock.isFloating() and window.problems_dock.isVisible()

    choose(qtbot, window, window.act.design_layout)
    qtbot.waitUntil(lambda: design_arranged(window))
    window.addDockWidget(A.RightDockWidgetArea, window.summary_dock)
    window.palette_dock.close()
    qtbot.waitUntil(lambda: not design_arranged(window))
    choose(qtbot, window, window.act.reset_layout)
    qtbot.waitUntil(lambda: design_arranged(window))
    assert in_front(window, window.palette_dock) and window.layout_mode == DESIGN_LAYOUT


# ---------------------------------------------------------------------- kept across restarts
def _open(qtbot, restore: bool) -> MainWindow:
    """A window as the program opens one: its last layout restored (when ``restore``), then shown."""
    w = MainWindow()
    w.resize(1400, 900)
    if restore:
        assert w.restore_layout()
    w.show()
    qtbot.waitExposed(w)
    return w


def _close(w: MainWindow) -> None:
    w.training.shutdown()
    w.document.undo_stack.setClean()
    w.close()
    w.deleteLater()
    QApplication.processEvents()


def test_each_layout_is_kept_as_it_was_left_across_a_restart(qtbot):
    A = Qt.DockWidgetArea
    first = _open(qtbot, restore=False)
    try:
        choose(qtbot, first, first.act.training_layout)
        qtbot.waitUntil(lambda: side_by_side(first))
        first.addDockWidget(A.RightDockWidgetArea, first.training.runs_dock)  # the person's own change
        choose(qtbot, first, first.act.design_layout)
        qtbot.waitUntil(lambda: design_arranged(first))
        first.history_dock.close()
        choose(qtbot, first, first.act.training_layout)
        qtbot.waitUntil(lambda: side_by_side(first))
        assert first.dockWidgetArea(first.training.runs_dock) == A.RightDockWidgetArea  # its change came back
    finally:
        _close(first)  # NOTE: closed in the training layout

    second = _open(qtbot, restore=True)
    try:
        assert second.layout_mode == TRAINING_LAYOUT and second.act.training_layout.isChecked()
        qtbot.waitUntil(lambda: side_by_side(second))
        assert second.dockWidgetArea(second.training.runs_dock) == A.RightDockWidgetArea
        choose(qtbot, second, second.act.design_layout)
        assert not second.history_dock.isVisible()  # as the design layout was left
        qtbot.waitUntil(lambda: in_front(second, second.summary_dock) and second.view.height() >= 0.6 * second.height())
    finally:
        _close(second)


def test_a_layout_saved_by_another_arrangement_is_not_restored(qtbot):
    s = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "NetDesigner", "Net Designer")
    old = MainWindow()
    old.resize(1400, 900)
    s.setValue("window/geometry", old.saveGeometry())
    s.setValue("window/state", old.saveState())  # NOTE: version 0, as before layouts had a version
    s.setValue("window/layout", "no such layout")
    old.deleteLater()
    w = _open(qtbot, restore=True)
    try:
        assert w.layout_mode == DESIGN_LAYOUT
        qtbot.waitUntil(lambda: design_arranged(w))
    finally:
        _close(w)


# ---------------------------------------------------------------------- the start screen
def _shown_rect(widget, w: MainWindow) -> QRect:
    return QRect(widget.mapTo(w, QPoint(0, 0)), widget.size())


@pytest.mark.parametrize("size", [(1366, 768), (1600, 1000)])
def test_the_start_screen_shows_two_whole_rows_of_template_cards_with_their_titles(qtbot, size):
    w = MainWindow()
    w.resize(*size)
    w.show()
    qtbot.waitExposed(w)
    try:
        panel = w.start_panel
        assert w.is_start_state()

        def whole_rows() -> set[int]:
            seen = _shown_rect(panel.scroll.viewport(), w) & _shown_rect(w.view, w)
            return {_shown_rect(c, w).top() for c in panel.cards if seen.contains(_shown_rect(c, w))}

        qtbot.waitUntil(lambda: len(whole_rows()) >= 2)
        for card in panel.cards:
            shown = _shown_rect(card, w)
            if shown.top() in whole_rows():
                title = card.title
                assert title.isVisible() and card.rect().contains(title.geometry())
                assert title.width() >= title.sizeHint().width()  # the title is not cut
                assert shown.contains(_shown_rect(title, w))
    finally:
        _close(w)
