"""The open document: a project, its undo stack, its file path and its latest analysis.

:class:`Document` is the Qt adapter over the engine's :class:`~engine.project.Project`.
It relays every graph event as the ``graph_event`` signal (so views connect once,
even when the project is replaced), re-analyses the graph shortly after each change
and tracks whether there is anything unsaved.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.analysis import Analysis
from engine.datacheck import analyze_project
from engine.graph import Graph, GraphEvent

if TYPE_CHECKING:  # pragma: no cover
    from engine.project import Project

#: Delay between a graph change and the analysis it triggers (edits in one burst share one).
ANALYSIS_DELAY_MS = 10


class Document(QObject):
    """One open project with its undo history.

    Signals:
        graph_event(GraphEvent): every event of the current graph, relayed as it happens.
        analysis_changed(Analysis): a fresh analysis of the graph is in ``analysis``.
        modified_changed(bool): the document became modified (True) or saved/clean (False).
        path_changed(object): the file path changed (a ``Path`` or None).
        project_replaced(): ``project`` is a different project now (new, opened, reverted).
        select_requested(list): a command asks the views to select these block ids.
    """

    graph_event = Signal(object)
    analysis_changed = Signal(object)
    modified_changed = Signal(bool)
    path_changed = Signal(object)
    project_replaced = Signal()
    select_requested = Signal(list)

    def __init__(self, project: Project | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if project is None:
            project = _new_project()
        self.project: Project = project
        self.path: Path | None = None
        self.uid = uuid.uuid4().hex  # names this document's runs and recovery file until it has a path
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(ANALYSIS_DELAY_MS)
        self._timer.timeout.connect(self.analyze_now)
        self.graph.subscribe(self._on_graph_event)
        # NOTE: the data checks read the data settings (edited through the undo stack) and resolve
        # a relative data path from the project's folder, so both re-run the analysis too.
        self.undo_stack.indexChanged.connect(self.schedule_analysis)
        self.path_changed.connect(self.schedule_analysis)
        self.analysis: Analysis = _safe_analyze(self.project, self.path)

    @property
    def graph(self) -> Graph:
        return self.project.graph

    # ------------------------------------------------------------------ editing
    def push(self, cmd: QUndoCommand) -> None:
        """Do ``cmd`` and put it on the undo stack."""
        self.undo_stack.push(cmd)

    def request_selection(self, node_ids: list[str]) -> None:
        """Ask the views to select these blocks (used by paste and duplicate)."""
        self.select_requested.emit(list(node_ids))

    # ------------------------------------------------------------------ files
    def is_modified(self) -> bool:
        return not self.undo_stack.isClean()

    def mark_saved(self, path: str | Path | None = None) -> None:
        """Record that the document was written to ``path`` (or its current path)."""
        if path is not None:
            self._set_path(Path(path))
        self.undo_stack.setClean()

    def replace(self, project: Project, path: str | Path | None = None) -> None:
        """Show another project: forget the undo history and re-analyse."""
        self._timer.stop()
        self.graph.unsubscribe(self._on_graph_event)
        self.project = project
        self.uid = uuid.uuid4().hex
        self.graph.subscribe(self._on_graph_event)
        self.undo_stack.clear()  # emits cleanChanged(True), hence modified_changed(False), if it was modified
        self._set_path(Path(path) if path is not None else None)
        self.analysis = _safe_analyze(self.project, self.path)
        self.project_replaced.emit()
        self.analysis_changed.emit(self.analysis)

    # ------------------------------------------------------------------ analysis
    def schedule_analysis(self) -> None:
        """Analyse soon; several edits in a burst share one analysis."""
        if not self._timer.isActive():
            self._timer.start()

    def analyze_now(self) -> Analysis:
        """Analyse the graph now and announce the result."""
        self._timer.stop()
        self.analysis = _safe_analyze(self.project, self.path)
        self.analysis_changed.emit(self.analysis)
        return self.analysis

    # ------------------------------------------------------------------ internals
    def _on_graph_event(self, event: GraphEvent) -> None:
        self.graph_event.emit(event)
        self.schedule_analysis()

    def _on_clean_changed(self, clean: bool) -> None:
        self.modified_changed.emit(not clean)

    def _set_path(self, path: Path | None) -> None:
        if path != self.path:
            self.path = path
            self.path_changed.emit(path)


def _new_project() -> Project:
    from engine.project import Project

    return Project(name="Untitled")


def _safe_analyze(project: Project, path: Path | None) -> Analysis:
    """The analysis with the checks against the data (``engine.datacheck``); it never raises for a
    bad graph, and a bug there must not crash the UI."""
    try:
        return analyze_project(project, path.parent if path is not None else None)
    except Exception as exc:  # noqa: BLE001
        import logging

        logging.getLogger(__name__).exception("analysis failed: %s", exc)
        return Analysis({}, {}, list(project.graph.nodes))
