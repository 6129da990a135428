"""The model summary: the engine's analysis as a table, one row per block, with a totals row.

A unit is one row (its parameters and MACs summed over its blocks, its receptive field that of its
output); a double-click opens it to show the rows inside it, indented (``Analysis.expand``).

Selecting rows selects the blocks on the canvas and the other way round
(:class:`SummaryWidget` emits :attr:`SummaryWidget.selection_changed`; the window
calls :meth:`SummaryWidget.select_nodes` for the canvas's selection). Rows name blocks by
path: a top-level block's id, an inner row ``unit/inner`` (``n7/n2/n9``), so the window opens
the units on the canvas down to an inner row's block (:func:`designer.canvas.levels.reveal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QItemSelection, QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QStackedWidget, QTableView, QVBoxLayout, QWidget

from designer.plaintext import as_plain
from designer.theme import colors
from engine.analysis import ERROR, Analysis, NodeInfo, Problem, buffers_text, format_count, frozen_text
from engine.graph import Graph, Node
from engine.units import SEP
from engine.layers.registry import FROZEN_MARK, shape_str

COLUMNS = ("Block", "Type", "Output shape", "Params", "MACs", "Receptive field")
_NUMERIC = {3, 4}
NODE_ROLE = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class _Row:
    """One block's row, copied from the graph and analysis when they arrive."""

    node_id: str
    cells: tuple[str, ...]
    tooltips: tuple[str | None, ...]
    error: bool


def _rows(graph: Graph, analysis: Analysis, expanded: frozenset[str] = frozenset()) -> list[_Row]:
    """The top-level blocks' rows in the analysis's order; under each unit in ``expanded`` (paths), its
    inner rows (:meth:`Analysis.expand`), indented, and theirs when expanded in turn."""
    ids = [nid for nid in analysis.order if nid in graph.nodes]
    ids += [nid for nid in graph.nodes if nid not in ids]
    rows: list[_Row] = []
    for nid in ids:
        # NOTE: a block not wired yet is not drawn red: its errors are those of a network being built
        problems = analysis.problems.get(nid, []) if nid not in analysis.unwired else []
        tips = [p.message for p in analysis.problems.get(nid, []) if p.severity == ERROR]
        _add_rows(rows, nid, graph.nodes[nid], analysis.nodes.get(nid), problems, analysis, expanded, 0, tips)
    return rows


def _add_rows(rows: list[_Row], path: str, node: Node, info: NodeInfo | None, problems: list[Problem],
              analysis: Analysis, expanded: frozenset[str], depth: int, tips: list[str] | None = None) -> None:
    """Append the row of block ``node`` (at ``path``) and, for an expanded unit, the rows inside it."""
    errors = [p.message for p in problems if p.severity == ERROR]
    rows.append(_row(path, node, info, tips if tips is not None else errors, bool(errors), depth, path in expanded))
    if node.unit is None or path not in expanded:
        return
    flat = analysis.flat.problems if analysis.flat is not None else {}
    for inner_path, inner_info in analysis.expand(path):
        inner = node.unit.graph.nodes[inner_path.rsplit(SEP, 1)[1]]
        inside = [p for key, ps in flat.items() if key == inner_path or key.startswith(inner_path + SEP) for p in ps]
        _add_rows(rows, inner_path, inner, inner_info, inside, analysis, expanded, depth + 1)


def _row(nid: str, node: Node, info: NodeInfo | None, messages: list[str], error: bool, depth: int,
         open_: bool) -> _Row:
    """One block's row; a unit's name carries ▸ (closed) or ▾ (open), an inner block's an indent."""
    mark = ("▾ " if open_ else "▸ ") if node.unit is not None else ""
    name = "    " * depth + mark + node.name
    if info is None or info.out_shape is None:
        cells = (name, node.spec.title, "?", "—", "—", "—")
        tips: tuple[str | None, ...] = (None,) * 6
    else:
        cells = (
            name,
            node.spec.title,
            shape_str(info.out_shape),
            f"{FROZEN_MARK} {info.params:,}" if info.frozen_params else f"{info.params:,}",
            format_count(info.macs) if info.macs else "0",
            str(info.rf) if info.rf else "—",
        )
        tips = (None, None, None, _params_tip(info), f"{info.macs:,} multiply-accumulates per sample", None)
    if messages:
        tips = (as_plain("\n".join(messages)),) * 6  # NOTE: the messages quote block names
    return _Row(nid, cells, tips, error)


def _params_tip(info: NodeInfo) -> str | None:
    """What a row's parameters are, when there is more to say than the count: frozen ones, buffers."""
    if not info.frozen and not info.frozen_params:
        return None
    parts = [frozen_text(info.frozen_params) if info.frozen_params else "all trained"]
    if info.frozen:
        parts.append(buffers_text(info.frozen))
    return f"{info.params:,} parameters, " + "; ".join(parts)


def trainable_text(analysis: Analysis) -> str:
    """The network's trained share of its parameters when some are frozen ("" when none are)."""
    frozen = analysis.total_frozen_params
    if not frozen:
        return ""
    return (f"{FROZEN_MARK} Trainable: {analysis.total_trainable:,} of {analysis.total_params:,} parameters; "
            f"{frozen:,} frozen")


class SummaryModel(QAbstractTableModel):
    """Rows: the blocks in the analysis's (topological) order, then ``Total``."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[_Row] = []
        self._totals: tuple[str, ...] = ("",) * len(COLUMNS)
        self._shown: tuple[Graph, Analysis] | None = None
        #: the unit rows shown open (paths: a unit block's id, or ``unit/inner unit``)
        self.expanded: set[str] = set()

    def set_analysis(self, graph: Graph, analysis: Analysis) -> None:
        self._shown = (graph, analysis)
        self.beginResetModel()
        self._rows = _rows(graph, analysis, frozenset(self.expanded))
        n = len(graph)
        self._totals = (
            "Total",
            f"{n} block{'s' if n != 1 else ''}",
            "",
            f"{analysis.total_params:,}",
            format_count(analysis.total_macs),
            "",
        )
        self.endResetModel()

    def toggle(self, path: str) -> bool:
        """Open a unit's row to show the rows inside it, or close it again. Returns whether it is open."""
        if path in self.expanded:
            self.expanded -= {p for p in self.expanded if p == path or p.startswith(path + SEP)}
        else:
            self.expanded.add(path)
        if self._shown is not None:
            self.set_analysis(*self._shown)
        return path in self.expanded

    def reveal(self, path: str) -> None:
        """Open the unit rows above block ``path`` (``unit/inner``) so that its row shows."""
        parts = path.split(SEP)
        above = {SEP.join(parts[:k]) for k in range(1, len(parts))}
        if self._shown is None or above <= self.expanded or not above <= self._shown[1].parts.keys():
            return
        self.expanded |= above
        self.set_analysis(*self._shown)

    def is_unit_row(self, row: int) -> bool:
        """Whether ``row`` is a unit's (it opens)."""
        return 0 <= row < len(self._rows) and self._rows[row].cells[0].lstrip().startswith(("▸", "▾"))

    def node_id(self, row: int) -> str | None:
        return self._rows[row].node_id if 0 <= row < len(self._rows) else None

    def row_of(self, node_id: str) -> int:
        return next((i for i, r in enumerate(self._rows) if r.node_id == node_id), -1)

    @property
    def totals_row(self) -> int:
        return len(self._rows)

    # ------------------------------------------------------------------ Qt model
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008 - Qt's name
        return 0 if parent.isValid() or not self._rows else len(self._rows) + 1

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008 - Qt's name
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.TextAlignmentRole:
            return int(_align(section))
        return None

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        if index.row() == self.totals_row:
            return Qt.ItemFlag.ItemIsEnabled
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(_align(col))
        if row == self.totals_row:
            if role == Qt.ItemDataRole.DisplayRole:
                return self._totals[col]
            if role == Qt.ItemDataRole.FontRole:
                font = QFont()
                font.setBold(True)
                return font
            return None
        r = self._rows[row]
        if role == Qt.ItemDataRole.DisplayRole:
            return r.cells[col]
        if role == NODE_ROLE:
            return r.node_id
        if role == Qt.ItemDataRole.ToolTipRole:
            return r.tooltips[col]
        if role == Qt.ItemDataRole.ForegroundRole and r.error:
            return QColor(colors()["error"])
        return None


def _align(col: int) -> Qt.AlignmentFlag:
    horizontal = Qt.AlignmentFlag.AlignRight if col in _NUMERIC else Qt.AlignmentFlag.AlignLeft
    return horizontal | Qt.AlignmentFlag.AlignVCenter


class SummaryWidget(QWidget):
    """The summary table. ``selection_changed(list)`` carries the paths of the blocks a person selected."""

    selection_changed = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = SummaryModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(True)
        # NOTE: fixed first widths (not ResizeToContents) so columns never jump while editing.
        em = self.fontMetrics().averageCharWidth()
        for col, chars in enumerate((16, 15, 13, 11, 8)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(col, chars * em + 12)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection)
        self.table.doubleClicked.connect(self._on_double_click)  # NOTE: a unit's row opens and closes
        self.placeholder = QLabel("Each block's output shape, parameters, MACs and receptive field appear here.")
        self.placeholder.setProperty("role", "muted")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.table)
        #: the trained share of the parameters, shown only while some block is frozen
        self.trainable_label = QLabel()
        self.trainable_label.setTextFormat(Qt.TextFormat.PlainText)
        self.trainable_label.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)
        layout.addWidget(self.trainable_label)
        self._syncing = False
        self._selected: list[str] = []

    def set_analysis(self, graph: Graph, analysis: Analysis) -> None:
        self._syncing = True
        try:
            self.model.set_analysis(graph, analysis)
            self.stack.setCurrentWidget(self.table if self.model.rowCount() else self.placeholder)
            self.trainable_label.setText(trainable_text(analysis))
            self.trainable_label.setVisible(bool(self.trainable_label.text()))
        finally:
            self._syncing = False
        self.select_nodes(self._selected)

    def select_nodes(self, node_ids: list[str]) -> None:
        """Select the rows of ``node_ids`` (paths) without emitting :attr:`selection_changed`; the unit
        rows above a block inside a unit open to show its row."""
        self._selected = list(node_ids)
        self._syncing = True
        try:
            for path in node_ids:
                self.model.reveal(path)
        finally:
            self._syncing = False
        selection = QItemSelection()
        last = self.model.columnCount() - 1
        rows = [self.model.row_of(nid) for nid in node_ids]
        for row in (r for r in rows if r >= 0):
            selection.select(self.model.index(row, 0), self.model.index(row, last))
        self._syncing = True
        try:
            self.table.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            if rows and rows[0] >= 0:
                self.table.scrollTo(self.model.index(rows[0], 0))
        finally:
            self._syncing = False

    def row_rect_center(self, node_id: str):
        """Centre of ``node_id``'s row in viewport coordinates (for tests clicking a row)."""
        return self.table.visualRect(self.model.index(self.model.row_of(node_id), 0)).center()

    def _on_table_selection(self, *_args) -> None:
        if self._syncing:
            return
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        ids = [nid for nid in (self.model.node_id(r) for r in rows) if nid is not None]
        self._selected = ids
        self.selection_changed.emit(ids)

    def _on_double_click(self, index: QModelIndex) -> None:
        row = index.row()
        if self.model.is_unit_row(row):
            path = self.model.node_id(row)
            self._syncing = True
            try:
                self.model.toggle(path)
            finally:
                self._syncing = False
            self.select_nodes([path])
