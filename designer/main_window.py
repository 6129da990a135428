"""The main window: palette (left), canvas (centre), inspector (right), summary and problems (bottom).

The window assembles the panels and keeps their selections in step; file commands
live in :mod:`designer.file_ops`, actions and menus in :mod:`designer.actions`.
Its docks have two arrangements (View → Design layout, Training layout): the design
layout leaves the canvas most of the window; the training layout, taken when a run
starts, puts the Training plots and the Insight views side by side across the bottom
half. Each is remembered as the person leaves it, across restarts.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QDockWidget, QLabel, QMainWindow, QMessageBox, QUndoView, QWidget

from designer import theme
from designer.actions import build_actions
from designer.autosave import Autosaver
from designer.canvas.levels import block_path, locate, remember_level, remembered_level, reveal, show_level, shown_level
from designer.canvas.view import GraphView
from designer.commands import fix_command
from designer.device import device_probe
from designer.document import Document
from designer.file_ops import FileController
from designer.inspector import InspectorWidget
from designer.palette import PaletteWidget
from designer.plaintext import as_plain
from designer.problems import ProblemsWidget
from designer.settings import settings
from designer.start_panel import StartPanel
from designer.summary import SummaryWidget
from designer.training.controller import TrainingController
from engine.analysis import Analysis, Fix, buffers_text, frozen_text
from engine.errors import NetDesignerError

APP_TITLE = "Net Designer"
DESIGN_LAYOUT, TRAINING_LAYOUT = "design", "training"
LAYOUTS = (DESIGN_LAYOUT, TRAINING_LAYOUT)
#: saveState's version: a state saved by another arrangement of the docks is not restored.
LAYOUT_VERSION = 2
DESIGN_BOTTOM = 0.22  # of the window's height: the design layout's summary and problems (at least 150 px)
TRAINING_BOTTOM = 0.5  # of the window's height: the training layout's plots and views


class MainWindow(QMainWindow):
    """One window over one :class:`~designer.document.Document`."""

    def __init__(self, document: Document | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("main_window")
        self.setAcceptDrops(True)
        self.document = document or Document()
        if self.document.parent() is None:
            self.document.setParent(self)
        self.view = GraphView(self.document)
        self.scene = self.view.scene()
        self.setCentralWidget(self.view)
        self.files = FileController(self)
        self.autosaver = Autosaver(self)  # unsaved edits go to a recovery file a few seconds after each change

        self.layer_palette = PaletteWidget()
        self.inspector = InspectorWidget(self.document)
        self.summary = SummaryWidget()
        self.problems = ProblemsWidget()
        self.undo_view = QUndoView(self.document.undo_stack)
        self.undo_view.setEmptyLabel("Start")
        self._build_docks()
        self.act = build_actions(self)
        for dock in (self.palette_dock, self.inspector_dock, self.summary_dock, self.problems_dock, self.history_dock):
            self.view_menu.addAction(dock.toggleViewAction())
        self._build_status_bar()
        self.training = TrainingController(self)
        self.layout_mode = DESIGN_LAYOUT
        self._arrange(DESIGN_LAYOUT)
        self._check_layout_action()

        self.start_panel = StartPanel(self.view)
        self._start_dismissed = False
        self._selecting = False
        self._canvas_project = self.document.project  # the project whose levels the canvas shows
        self._connect()
        self.act.dark_theme.setChecked(theme.is_dark())
        self._on_analysis(self.document.analysis)
        self.update_title()
        self._update_start_panel()
        self._update_edit_actions()
        QTimer.singleShot(0, self._fill_device_label)

    # ------------------------------------------------------------------ building
    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        A = Qt.DockWidgetArea
        self.setCorner(Qt.Corner.BottomLeftCorner, A.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, A.RightDockWidgetArea)
        self.palette_dock = self._dock("Layers", "palette_dock", self.layer_palette, A.LeftDockWidgetArea)
        self.inspector_dock = self._dock("Inspector", "inspector_dock", self.inspector, A.RightDockWidgetArea)
        self.summary_dock = self._dock("Model summary", "summary_dock", self.summary, A.BottomDockWidgetArea)
        self.problems_dock = self._dock("Problems", "problems_dock", self.problems, A.BottomDockWidgetArea)
        self.history_dock = self._dock("History", "history_dock", self.undo_view, A.BottomDockWidgetArea)
        em = self.fontMetrics().averageCharWidth()
        self.inspector.setMinimumWidth(38 * em)
        self._sizes_pending = False  # NOTE: docks are sized once the window is shown at its own size

    # ------------------------------------------------------------------ layouts
    def docks(self) -> list[QDockWidget]:
        """Every dock of the window, the training ones included."""
        t = self.training
        return [self.palette_dock, self.inspector_dock, t.setup_dock, self.summary_dock, self.problems_dock,
                self.history_dock, t.dashboard_dock, t.runs_dock, t.insight_dock]

    def show_layout(self, mode: str) -> None:
        """Arrange the docks for designing or for training: as the person last left that layout, else the default.

        The layout being left is remembered first, so switching back returns to it.
        """
        if mode not in LAYOUTS:
            raise ValueError(f"unknown layout {mode!r}: expected one of {', '.join(LAYOUTS)}")
        if mode != self.layout_mode:
            self._keep_layout()
            self.layout_mode = mode
            state = settings().value(f"layout/{mode}")
            if isinstance(state, QByteArray) and self.restoreState(state, LAYOUT_VERSION):
                self._sizes_pending = False  # NOTE: the restored sizes stand
            else:
                self._arrange(mode)
        self._check_layout_action()

    def reset_layout(self) -> None:
        """View → Reset layout: the current layout's default arrangement (what was remembered of it is forgotten)."""
        settings().remove(f"layout/{self.layout_mode}")
        self._arrange(self.layout_mode)

    def _keep_layout(self) -> None:
        """Remember the current layout as it is now (its default sizes first, when they are still to come)."""
        if self._sizes_pending and self.isVisible():
            self._size_docks()
        settings().setValue(f"layout/{self.layout_mode}", self.saveState(LAYOUT_VERSION))

    def _check_layout_action(self) -> None:
        action = self.act.training_layout if self.layout_mode == TRAINING_LAYOUT else self.act.design_layout
        action.setChecked(True)

    def _arrange(self, mode: str) -> None:
        """Put every dock in its default place for ``mode``; sizes follow once the window has its size.

        Design: summary beside problems under the canvas, the training docks as tabs behind the summary.
        Training: the bottom area spans the whole width (the corners are its), the Training dock on the
        left and Insight on the right, the other bottom docks as tabs behind Training.
        """
        A, H, t = Qt.DockWidgetArea, Qt.Orientation.Horizontal, self.training
        training = mode == TRAINING_LAYOUT
        for dock in self.docks():
            dock.setFloating(False)
        self.setCorner(Qt.Corner.BottomLeftCorner, A.BottomDockWidgetArea if training else A.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, A.BottomDockWidgetArea if training else A.RightDockWidgetArea)
        self.addDockWidget(A.LeftDockWidgetArea, self.palette_dock)
        self.addDockWidget(A.RightDockWidgetArea, self.inspector_dock)
        self.tabifyDockWidget(self.inspector_dock, t.setup_dock)
        if training:
            self.addDockWidget(A.BottomDockWidgetArea, t.dashboard_dock)
            self.splitDockWidget(t.dashboard_dock, t.insight_dock, H)
            for dock in (t.runs_dock, self.summary_dock, self.problems_dock, self.history_dock):
                self.tabifyDockWidget(t.dashboard_dock, dock)
            front = (t.dashboard_dock, t.insight_dock)
        else:
            self.addDockWidget(A.BottomDockWidgetArea, self.summary_dock)
            self.splitDockWidget(self.summary_dock, self.problems_dock, H)
            for dock in (t.dashboard_dock, t.runs_dock, t.insight_dock):
                self.tabifyDockWidget(self.summary_dock, dock)
            self.tabifyDockWidget(self.problems_dock, self.history_dock)
            front = (self.summary_dock, self.problems_dock)
        for dock in self.docks():
            dock.show()
        for dock in (self.inspector_dock, *front):
            dock.raise_()
        self._sizes_pending = True
        if self.isVisible():
            QTimer.singleShot(0, self, self._size_docks)

    def _size_docks(self) -> None:
        """The default layout's sizes, from the window's own size: a narrow palette and inspector, and a
        bottom area of ``DESIGN_BOTTOM`` of the height split 60:40, or ``TRAINING_BOTTOM`` split in halves."""
        if not self._sizes_pending:
            return
        self._sizes_pending = False
        em = self.fontMetrics().averageCharWidth()
        H, V, t = Qt.Orientation.Horizontal, Qt.Orientation.Vertical, self.training
        palette_w = self.layer_palette.minimumSizeHint().width()
        self.resizeDocks([self.palette_dock, self.inspector_dock], [palette_w, 46 * em], H)
        w, h = self.width(), self.height()
        if self.layout_mode == TRAINING_LAYOUT:
            self.resizeDocks([t.dashboard_dock, t.insight_dock], [w // 2, w - w // 2], H)
            self.resizeDocks([t.dashboard_dock], [int(h * TRAINING_BOTTOM)], V)
        else:
            self.resizeDocks([self.summary_dock, self.problems_dock], [int(w * 0.6), int(w * 0.4)], H)
            self.resizeDocks([self.summary_dock], [max(150, int(h * DESIGN_BOTTOM))], V)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.validity_label = QLabel()
        self.params_label = QLabel()
        self.device_label = QLabel("Device: …")
        self.device_label.setToolTip("Where training will run")
        for label in (self.validity_label, self.params_label, self.device_label):
            bar.addPermanentWidget(label)

    def _connect(self) -> None:
        doc, scene = self.document, self.scene
        doc.analysis_changed.connect(self._on_analysis)
        doc.modified_changed.connect(self.update_title)
        doc.path_changed.connect(self.update_title)
        doc.path_changed.connect(self._remember_level)
        doc.project_replaced.connect(self._on_project_replaced)
        doc.undo_stack.indexChanged.connect(self._update_start_panel)
        scene.node_selection_changed.connect(self._on_canvas_selection)
        self.view.level_changed.connect(self.inspector.set_document)  # NOTE: inside a unit, edit its blocks
        self.view.level_changed.connect(self._remember_level)
        self.summary.selection_changed.connect(self._on_summary_selection)
        self.problems.problem_activated.connect(self.select_and_center)
        self.problems.fix_requested.connect(self.apply_fix)
        self.problems.counts_changed.connect(self._on_problem_counts)
        self.layer_palette.add_requested.connect(self.add_block)
        self.view.status_message.connect(self.show_message)
        self.files.message.connect(self.show_message)
        self.start_panel.new_blank_requested.connect(self.files.new_blank)
        self.start_panel.open_requested.connect(self.files.open)
        self.start_panel.template_requested.connect(self.files.new_from_template)
        self.start_panel.layer_dropped.connect(self.add_block)

    # ------------------------------------------------------------------ public API
    def add_block(self, type_id: str) -> None:
        """Add a block of ``type_id`` from the palette (double-click or Enter): after the selected
        block and wired to it, or in free room in the middle of the view (see GraphView.add_next)."""
        self.view.add_next(type_id)
        self.dismiss_start_panel()
        self.view.setFocus()

    def open_path(self, path: str | Path) -> bool:
        return self.files.open_path(path)

    def new_from_template(self, name: str) -> bool:
        return self.files.new_from_template(name)

    def select_and_center(self, path: str) -> None:
        """Select one block everywhere and scroll the canvas to it; a block inside units (by path,
        ``n7/n2/n9``) is shown in its unit, the units on the way opened as the breadcrumb would."""
        node_id = reveal(self.view, path)
        if node_id is None:
            self.show_message("That block is no longer in the network")
            return
        self.scene.select_nodes([node_id])
        self.scene.center_on_node(node_id)

    def apply_fix(self, fix: Fix) -> None:
        """Apply a problem's one-click fix as one undo step; refused while a run locks the network."""
        if self.view.is_read_only():
            self.show_message("The network is locked while it trains: stop the run to apply a fix")
            return
        try:
            cmd = fix_command(self.document, fix)
        except NetDesignerError as exc:
            self.show_message(f"The fix no longer applies: {exc}")
            return
        self.document.push(cmd)
        self.show_message(f"Fixed: {fix.label} (Ctrl+Z undoes it)")

    def arrange(self, direction: str) -> None:
        """Auto-arrange the blocks (``"lr"`` left to right, ``"tb"`` top to bottom), then fit them."""
        self.view.arrange(direction)

    def fit_soon(self) -> None:
        """Fit every block in view once the canvas has drawn the current graph."""
        QTimer.singleShot(0, self.view.fit_all)

    def set_dark_theme(self, dark: bool) -> None:
        app = QApplication.instance()
        if theme.is_dark() != dark:
            theme.apply_theme(app, dark)
        theme.save_dark(dark)
        if self.act.dark_theme.isChecked() != dark:
            self.act.dark_theme.setChecked(dark)
        self.scene.set_dark(dark)
        self.view.viewport().update()
        self._on_analysis(self.document.analysis)  # status colours follow the theme

    def is_start_state(self) -> bool:
        return not self.start_panel.isHidden()

    def dismiss_start_panel(self) -> None:
        self._start_dismissed = True
        self._update_start_panel()

    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 6000)

    def update_title(self, *_args) -> None:
        doc = self.document
        name = doc.project.name or (doc.path.stem if doc.path else "Untitled")
        marker = "*" if doc.is_modified() else ""
        where = f" ({doc.path.name})" if doc.path and doc.path.stem != name else ""
        self.setWindowTitle(f"{name}{marker}{where} — {APP_TITLE}")

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            f"About {APP_TITLE}",
            f"<b>{APP_TITLE}</b><p>Build neural networks visually, check every shape as you go, "
            "and export them as clean PyTorch code.</p>",
        )

    # ------------------------------------------------------------------ reactions
    def _on_analysis(self, analysis: Analysis) -> None:
        graph = self.document.graph
        self.summary.set_analysis(graph, analysis)
        self.problems.set_analysis(graph, analysis)
        self.problems_dock.setWindowTitle(self.problems.title())
        c = theme.colors()
        if not graph.nodes:
            self.validity_label.setText("No blocks")
            self.validity_label.setStyleSheet(f"color: {c['muted']}")
        elif analysis.valid:
            self.validity_label.setText("✓ Valid network")
            self.validity_label.setStyleSheet(f"color: {c['ok']}")
        elif analysis.wired_errors():
            n = len(analysis.wired_errors())
            self.validity_label.setText(f"✗ {n} error{'s' if n != 1 else ''}")
            self.validity_label.setStyleSheet(f"color: {c['error']}")
        else:  # NOTE: only blocks not wired yet stand in the way: not an error, but not trainable either
            n = len({p.node_id for p in analysis.errors()})
            self.validity_label.setText(f"Not trainable yet: {n} block{'s' if n != 1 else ''} not connected")
            self.validity_label.setStyleSheet(f"color: {c['muted']}")
        frozen, buffers = analysis.total_frozen_params, analysis.total_frozen
        self.params_label.setText(f"Params: {analysis.total_params:,}"
                                  + (f" ({analysis.total_trainable:,} trainable)" if frozen else ""))
        self.params_label.setToolTip(f"{analysis.total_params:,} parameters, as PyTorch counts them, "
                                     + (frozen_text(frozen) if frozen else "all trained")
                                     + (f"; {buffers_text(buffers)}" if buffers else ""))
        self._update_start_panel()

    def _on_project_replaced(self) -> None:
        # NOTE: the level kept for the file is read before the canvas leaves the old project's units
        level = remembered_level(self.document.path) if self.document.path is not None else ""
        self._canvas_project = self.document.project
        if not show_level(self.view, level):
            show_level(self.view, "")
        self._remember_level()  # NOTE: a kept level that is gone is forgotten
        self.update_title()
        if len(self.document.graph):
            self._start_dismissed = True
        self._update_start_panel()

    def _on_canvas_selection(self, node_ids: list) -> None:
        self.inspector.set_selection(list(node_ids))
        if node_ids and self.inspector_dock.toggleViewAction().isChecked():
            self.inspector_dock.raise_()  # NOTE: it shares its place with Training setup: selecting a block shows it
        self._update_edit_actions()
        if not self._selecting:
            level = shown_level(self.view) or ""
            self.summary.select_nodes([block_path(level, nid) for nid in node_ids])

    def _on_summary_selection(self, paths: list) -> None:
        """Select the summary's rows on the canvas, at the level of the first (units opened as needed);
        rows of blocks on other levels are left out."""
        self._selecting = True
        try:
            found = [locate(self.document.graph, p) for p in paths]
            level = next((f[0] for f in found if f is not None), None)
            if level is None or not show_level(self.view, level):
                self.scene.select_nodes([])
                return
            node_ids = [f[1] for f in found if f is not None and f[0] == level]
            self.scene.select_nodes(node_ids)
            if len(node_ids) == 1:
                self.scene.center_on_node(node_ids[0])
        finally:
            self._selecting = False

    def _remember_level(self, *_args) -> None:
        """Keep the level the canvas shows for the project's file, to show it again when the file is opened."""
        # NOTE: a replaced project announces its path before the canvas has left the old one's levels
        if self.document.path is None or self.document.project is not self._canvas_project:
            return
        level = shown_level(self.view)
        if level is not None:
            remember_level(self.document.path, level)

    def _update_edit_actions(self) -> None:
        some = bool(self.scene.selected_node_ids())
        for action in (self.act.cut, self.act.copy, self.act.duplicate):
            action.setEnabled(some)

    def _on_problem_counts(self, _errors: int, _warnings: int) -> None:
        self.problems_dock.setWindowTitle(self.problems.title())

    def _update_start_panel(self, *_args) -> None:
        has_blocks = len(self.document.graph) > 0
        if has_blocks:
            self._start_dismissed = True
        self.start_panel.setVisible(not has_blocks and not self._start_dismissed)

    def _fill_device_label(self) -> None:
        probe = device_probe()
        probe.answered.connect(self._show_device)
        label = probe.ask()
        if label is not None:
            self._show_device(label)

    def _show_device(self, label: str) -> None:
        self.device_label.setText(f"Device: {label}")

    # ------------------------------------------------------------------ Qt overrides
    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self._sizes_pending:
            QTimer.singleShot(0, self, self._size_docks)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if _project_url(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        path = _project_url(event)
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        # NOTE: open after the drop returns; a modal prompt inside a drop handler blocks the source.
        QTimer.singleShot(0, self, lambda: self.files.open_path(path))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Close only when the project is saved, unchanged or discarded; a failed save keeps the window."""
        try:
            may_close = self.files.maybe_save()
        except Exception as exc:  # noqa: BLE001 - an error here must never close the window with the edits
            QMessageBox.critical(self, "Could not save project", as_plain(f"The window stays open: {exc}"))
            may_close = False
        if not may_close:
            event.ignore()
            return
        self.training.shutdown()
        self.autosaver.close()
        self._keep_layout()
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState(LAYOUT_VERSION))
        s.setValue("window/layout", self.layout_mode)
        event.accept()

    def restore_layout(self) -> bool:
        """Put the window and its docks where they were last time, in the layout it had (design or
        training); False when there is no record of the window."""
        s = settings()
        geometry, state, mode = s.value("window/geometry"), s.value("window/state"), s.value("window/layout")
        if not isinstance(geometry, QByteArray) or not self.restoreGeometry(geometry):
            return False
        if mode in LAYOUTS and mode != self.layout_mode:
            self.layout_mode = mode
            self._arrange(mode)  # NOTE: the default, in case the state below is not restored
            self._check_layout_action()
        if isinstance(state, QByteArray) and self.restoreState(state, LAYOUT_VERSION):
            self._sizes_pending = False
        return True


def _project_url(event) -> str | None:
    mime = event.mimeData()
    if not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile() and url.toLocalFile().lower().endswith(".json"):
            return url.toLocalFile()
    return None
