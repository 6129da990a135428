"""The inspector: a form for the selected blocks, generated from their parameter declarations.

Every edit is one :class:`~designer.commands.SetParamsCommand` for all selected
blocks (they share one type), so it applies at once and is undoable; Ctrl+Z in a
field undoes the last edit, as anywhere in the window. A value the engine refuses is
not applied: the reason appears in red under the field and the field shows the
block's value again. A parameter that does not apply to the block as set (an Input's
height for a vector Input) is hidden. While a run locks the network the form is
disabled, says so at its top, and each field says why on hover; while a run is paused
(:meth:`InspectorWidget.set_live_only`) a Dropout block's rate stays editable.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from designer.commands import RenameCommand, SetParamsCommand
from designer.document import Document
from designer.fields import LOCK_PROPERTY, LOCK_REASON, ParamField, lock_note, set_enabled_for, watch_field
from designer.palette import category_icon
from designer.plaintext import plain_label
from designer.theme import colors
from engine.analysis import ERROR, INFO, buffers_text, format_bytes, format_count
from engine.errors import GraphError
from engine.layers.registry import LayerSpec, shape_str
from engine.training.live import DROPOUT_TYPES

#: What the other fields say on hover while a run is paused, and the note at the panel's top.
PAUSE_REASON = ("Paused: of a block's settings only a Dropout block's rate p can change before Resume. To change "
                "the network, press “Change the network…” under the training controls: it starts a new run "
                "from the paused weights.")
PAUSE_NOTE = "Paused: a Dropout block's rate p can change now; Resume (F6) goes on with it."


def _muted(text: str = "", wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setProperty("role", "muted")
    label.setWordWrap(wrap)
    return label


def _error_label() -> QLabel:
    label = plain_label()  # NOTE: a refusal quotes the name typed
    label.setProperty("role", "error")
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class _BlockForm(QWidget):
    """The form for one layer type: header, name, parameters, analysis numbers, problems."""

    def __init__(self, inspector: InspectorWidget, spec: LayerSpec) -> None:
        super().__init__()
        self.inspector = inspector
        self.spec = spec
        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 10, 10, 10)
        outer.setSpacing(8)

        head = QHBoxLayout()
        self.icon = QLabel()
        self.icon.setPixmap(category_icon(spec.category).pixmap(22, 22))
        self.title = QLabel(f"<b>{html.escape(spec.title)}</b>")
        self.title.setProperty("role", "heading")
        head.addWidget(self.icon)
        head.addWidget(self.title, 1)
        self.category = _muted(spec.category, wrap=False)
        head.addWidget(self.category)
        outer.addLayout(head)
        self.doc = _muted(spec.doc)
        outer.addWidget(self.doc)
        self.note = _muted()
        self.note.hide()
        outer.addWidget(self.note)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.form = form
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("name")
        self.name_edit.setToolTip("The block's name: it labels the block and names the layer in exported code.")
        self.name_edit.editingFinished.connect(inspector._on_name_edited)
        watch_field(self.name_edit)
        form.addRow("Name", self.name_edit)
        self.name_error = _error_label()
        form.addRow(self.name_error)
        form.setRowVisible(self.name_error, False)

        self.fields: dict[str, ParamField] = {}
        self.labels: dict[str, QLabel] = {}
        self.errors: dict[str, QLabel] = {}
        for param in spec.params:
            field = ParamField(param, self)
            field.edited.connect(inspector._on_param_edited)
            field.refused.connect(inspector._show_error)
            label = QLabel(param.title)
            label.setToolTip(field.widget.toolTip())
            label.setBuddy(field.widget)
            form.addRow(label, field.widget)
            self.labels[param.name] = label
            err = _error_label()
            form.addRow(err)
            form.setRowVisible(err, False)
            self.fields[param.name] = field
            self.errors[param.name] = err
        outer.addLayout(form)

        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        outer.addWidget(line)
        stats = QFormLayout()
        stats.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.stats: dict[str, QLabel] = {}
        for key, title in (
            ("shape", "Output shape"),
            ("params", "Parameters"),
            ("macs", "MACs"),
            ("rf", "Receptive field"),
            ("memory", "Activations"),
        ):
            value = QLabel("—")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setObjectName(f"stat_{key}")
            stats.addRow(_muted(title, wrap=False), value)
            self.stats[key] = value
        outer.addLayout(stats)
        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setTextFormat(Qt.TextFormat.RichText)
        outer.addWidget(self.problems)
        outer.addStretch(1)

    def error_label(self, name: str | None) -> QLabel:
        return self.name_error if name is None else self.errors[name]

    def set_error(self, name: str | None, text: str) -> None:
        label = self.error_label(name)
        label.setText(text)
        self.form.setRowVisible(label, bool(text))

    def clear_errors(self) -> None:
        for name in [None, *self.errors]:
            if self.error_label(name).text():
                self.set_error(name, "")

    def show_applicable(self, params: list[dict[str, Any]]) -> None:
        """Show only the parameters that apply to at least one of the blocks' ``params``."""
        for p in self.spec.params:
            shown = any(p.applies(values) for values in params)
            self.form.setRowVisible(self.fields[p.name].widget, shown)
            if not shown:
                self.set_error(p.name, "")

    def is_shown(self, name: str) -> bool:
        """Whether parameter ``name``'s row is on show (it applies to the selected blocks)."""
        return self.form.isRowVisible(self.fields[name].widget)


class InspectorWidget(QWidget):
    """Shows and edits the selected blocks. Call :meth:`set_selection` with block ids."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self._ids: list[str] = []
        self._form: _BlockForm | None = None
        self._updating = False
        self._live_only = False  # a run is paused: only a Dropout block's rate is editable

        self.stack = QStackedWidget()
        self.empty = QLabel("Select a block to see and edit its settings.\n\n"
                            "Add blocks from the palette on the left.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setProperty("role", "muted")
        self.mixed = QLabel()
        self.mixed.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.mixed.setWordWrap(True)
        self.mixed.setProperty("role", "muted")
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for page in (self.empty, self.mixed, self.scroll):
            self.stack.addWidget(page)
        self.lock_note = lock_note()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.lock_note)
        layout.addWidget(self.stack)
        # NOTE: the training controller disables the whole panel during a run; its fields give this reason.
        self.setProperty(LOCK_PROPERTY, LOCK_REASON)

        # NOTE: bound methods, not lambdas, so Qt disconnects them when this widget goes.
        document.undo_stack.indexChanged.connect(self._on_undo_index)
        document.analysis_changed.connect(self._on_analysis_changed)
        document.graph_event.connect(self._on_graph_event)
        document.project_replaced.connect(self._on_project_replaced)

    def set_document(self, document) -> None:
        """Edit the blocks of another document: the project's, or an opened unit's (the canvas's level)."""
        if document is self.document:
            return
        old = self.document
        old.analysis_changed.disconnect(self._on_analysis_changed)
        old.graph_event.disconnect(self._on_graph_event)
        old.project_replaced.disconnect(self._on_project_replaced)
        self.document = document
        document.analysis_changed.connect(self._on_analysis_changed)
        document.graph_event.connect(self._on_graph_event)
        document.project_replaced.connect(self._on_project_replaced)
        self.set_selection([])

    # ------------------------------------------------------------------ public API
    @property
    def selection(self) -> list[str]:
        return list(self._ids)

    @property
    def form(self) -> _BlockForm | None:
        """The current form (None when nothing or blocks of several types are selected)."""
        return self._form if self.stack.currentWidget() is self.scroll else None

    def field(self, name: str) -> QWidget:
        """The editor of parameter ``name`` in the current form."""
        assert self._form is not None, "no block selected"
        return self._form.fields[name].widget

    def error_text(self, name: str | None = None) -> str:
        """The refusal shown under parameter ``name`` (None: under the name field)."""
        return self._form.error_label(name).text() if self._form is not None else ""

    def set_selection(self, node_ids: list[str]) -> None:
        """Show the blocks ``node_ids`` (the canvas's selection)."""
        graph = self.document.graph
        ids = [nid for nid in node_ids if nid in graph.nodes]
        if ids == self._ids and self._form is not None and self.stack.currentWidget() is self.scroll:
            self.refresh()
            return
        self._ids = ids
        if not ids:
            self.stack.setCurrentWidget(self.empty)
            return
        types = {graph.nodes[nid].type for nid in ids}
        if len(types) > 1:
            titles = sorted({graph.nodes[nid].spec.title for nid in ids})
            self.mixed.setText(
                f"{len(ids)} blocks of {len(types)} different types are selected "
                f"({', '.join(titles)}).\n\nSelect blocks of one type to edit them together."
            )
            self.stack.setCurrentWidget(self.mixed)
            return
        spec = graph.nodes[ids[0]].spec
        if self._form is None or self._form.spec.type_id != spec.type_id:
            old = self.scroll.takeWidget()
            self._form = _BlockForm(self, spec)
            self.scroll.setWidget(self._form)
            if old is not None:
                old.deleteLater()
        self._form.clear_errors()
        self.stack.setCurrentWidget(self.scroll)
        self.refresh()

    def refresh(self, force_name: bool = False) -> None:
        """Show the selected blocks' current values and numbers.

        The name field keeps what is being typed into it unless ``force_name`` (an undo or redo).
        """
        graph = self.document.graph
        if any(nid not in graph.nodes for nid in self._ids):
            self.set_selection([nid for nid in self._ids if nid in graph.nodes])
            return
        form = self.form
        if form is None:
            return
        nodes = [graph.nodes[nid] for nid in self._ids]
        self._updating = True
        try:
            many = len(nodes) > 1
            form.note.setVisible(many)
            form.note.setText(f"{len(nodes)} {form.spec.title} blocks selected: an edit applies to all of them.")
            if not form.name_edit.hasFocus() or many or force_name:
                form.name_edit.setText(nodes[0].name if not many else f"{len(nodes)} blocks")
            set_enabled_for(form.name_edit, not many, "Select one block to rename it.")
            for name, field in form.fields.items():
                values = [n.params.get(name) for n in nodes]
                field.set_value(values[0])
                field.set_mixed(any(v != values[0] for v in values[1:]))
            form.show_applicable([n.params for n in nodes])
            self._lock_all_but_live(form)
        finally:
            self._updating = False
        self._refresh_stats()

    # ------------------------------------------------------------------ edits
    def _on_param_edited(self, name: str, value: Any) -> None:
        if self._updating or self._form is None or not self._ids:
            return
        graph = self.document.graph
        nodes = [graph.nodes[nid] for nid in self._ids]
        param = self._form.spec.param(name)
        try:
            coerced = param.validate(value)
            if all(n.params.get(name) == coerced for n in nodes):
                return  # nothing changes (an editor may report one edit twice)
            cmd = SetParamsCommand(self.document, list(self._ids), {name: value})
        except GraphError as exc:
            self._show_error(name, str(exc))
            return
        self._form.set_error(name, "")
        self.document.push(cmd)

    def _on_name_edited(self) -> None:
        if self._updating or self._form is None or len(self._ids) != 1:
            return
        nid = self._ids[0]
        text = self._form.name_edit.text()
        if text.strip() == self.document.graph.nodes[nid].name:
            self._form.set_error(None, "")
            return
        try:
            cmd = RenameCommand(self.document, nid, text)
        except GraphError as exc:
            self._show_error(None, str(exc))
            return
        self._form.set_error(None, "")
        self.document.push(cmd)

    def _show_error(self, name: str | None, reason: str) -> None:
        """Show why a value was refused and put the blocks' values back in the form."""
        if self._form is None:
            return
        self._form.set_error(name, f"⚠ {_sentence(reason)}")
        if name is None:
            self._form.name_edit.setText(self.document.graph.nodes[self._ids[0]].name)
        else:
            self.refresh()

    # ------------------------------------------------------------------ numbers
    def _refresh_stats(self) -> None:
        form = self.form
        if form is None:
            return
        analysis = self.document.analysis
        infos = [analysis.nodes.get(nid) for nid in self._ids]
        infos = [i for i in infos if i is not None]
        s = form.stats
        if not infos:
            for label in s.values():
                label.setText("—")
        else:
            shapes = {shape_str(i.out_shape) for i in infos}
            s["shape"].setText(shapes.pop() if len(shapes) == 1 else "differs")
            params = sum(i.params for i in infos)
            buffers = sum(i.frozen for i in infos)
            s["params"].setText(f"{params:,}" + (f"  (+{buffers:,} buffers)" if buffers else ""))
            s["params"].setToolTip(buffers_text(buffers) if buffers else "")
            s["macs"].setText(format_count(sum(i.macs for i in infos)) if infos[0].out_shape else "—")
            rfs = {(str(i.rf), i.rf.jump) if i.rf else None for i in infos}
            if len(rfs) == 1 and (rf := next(iter(rfs))) is not None:
                # NOTE: a jump of 0 is a map that no longer moves with the pixel: it sees the whole image
                s["rf"].setText(f"{rf[0]} px (stride {rf[1]:g})" if rf[1] else f"{rf[0]} px: the whole image")
            else:
                s["rf"].setText("—" if len(rfs) == 1 else "differs")
            memory = sum(i.memory for i in infos)
            s["memory"].setText(f"{format_bytes(memory)} per sample" if memory else "—")
        lines, c = [], colors()
        for nid in self._ids:
            for p in analysis.problems.get(nid, []):
                if analysis.is_pending(p):  # NOTE: not wired yet: what it will need, not an error yet
                    color, mark = c["muted"], "○"
                elif p.severity == INFO:  # NOTE: worth knowing, nothing to fix
                    color, mark = c["muted"], "ⓘ"
                else:
                    color = c["error"] if p.severity == ERROR else c["warning"]
                    mark = "✗" if p.severity == ERROR else "⚠"
                lines.append(f"<p style='color:{color}'>{mark} {html.escape(p.message)}</p>")
        form.problems.setText("".join(lines))
        form.problems.setVisible(bool(lines))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.ApplicationPaletteChange and self._form is not None:
            self._form.icon.setPixmap(category_icon(self._form.spec.category).pixmap(22, 22))
            self._refresh_stats()
        elif event.type() == QEvent.Type.EnabledChange:
            self.lock_note.setVisible(self._live_only or not self.isEnabled())
        super().changeEvent(event)

    def set_live_only(self, on: bool) -> None:
        """While a run is paused (True), only a Dropout block's rate is editable; the other fields say why on hover."""
        self._live_only = on
        self.lock_note.setText(PAUSE_NOTE if on else LOCK_REASON)
        self.lock_note.setVisible(on or not self.isEnabled())
        self.refresh(force_name=True)

    def _lock_all_but_live(self, form: _BlockForm) -> None:
        for name, field in form.fields.items():
            live = form.spec.type_id in DROPOUT_TYPES and name == "p"
            set_enabled_for(field.widget, live or not self._live_only, PAUSE_REASON)
        if self._live_only:
            set_enabled_for(form.name_edit, False, PAUSE_REASON)

    def _on_undo_index(self, _index: int) -> None:
        self.refresh(force_name=True)

    def _on_analysis_changed(self, _analysis) -> None:
        self._refresh_stats()

    def _on_project_replaced(self) -> None:
        self.set_selection([])

    def _on_graph_event(self, event) -> None:
        if event.kind in ("node_removed", "cleared") and self._ids:
            self.refresh()
        elif event.kind in ("params_changed", "node_renamed") and event.data.get("node_id") in self._ids:
            if not self._updating:
                self.refresh()


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] if text else text
