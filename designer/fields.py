"""Editors for layer parameters, generated from their :class:`~engine.layers.registry.Param`.

Each editor reports a finished edit through :attr:`ParamField.edited` with the raw
value (the engine validates and coerces it), and a value it could not take at all
(a number typed outside the spin box's range) through :attr:`ParamField.refused`
with the engine's reason, so the inspector shows every refusal the same way.
"""

from __future__ import annotations

import html
import math
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QValidator, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QLineEdit,
    QSpinBox,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QToolTip,
    QWidget,
)

from engine.errors import ParamError
from engine.layers.registry import Param, shape_str

_INT_LIMIT = 2**31 - 1


def _parse_int(text: str) -> int | None:
    t = text.strip()
    return int(t) if t.lstrip("-").isdigit() else None


def _parse_float(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def _reason(param: Param, value: Any) -> str:
    try:
        param.validate(value)
    except ParamError as exc:
        return str(exc)
    return f"'{param.name}' cannot be {value!r}"


#: what a field of a locked panel says on hover (the training controller disables the panels during a run)
LOCK_REASON = "Locked while a run trains or is paused: stop it (Shift+F5) to edit."
#: a widget property: why this one field is disabled, when it is for its own reason ("only for SGD")
REASON_PROPERTY = "disabled_reason"
#: a widget property set on a panel that a run locks: the reason its disabled fields give
LOCK_PROPERTY = "locked_reason"


class _NoWheelMixin:
    """The mouse wheel changes the value only while the field has focus; otherwise it scrolls the form.

    NOTE: Qt's spin and combo boxes take focus from the wheel itself (``Qt.WheelFocus``) and then
    change their value, so scrolling a form changed whatever field passed under the pointer. Here a
    click or Tab gives focus, and a wheel over a field without it goes to the scroll area around.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # type: ignore[attr-defined]

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt's name
        if self.hasFocus():  # type: ignore[attr-defined]
            super().wheelEvent(event)  # type: ignore[misc]
        elif scroll_form(self, event):  # type: ignore[arg-type]
            event.accept()
        else:
            event.ignore()


def scroll_form(widget: QWidget, event: QWheelEvent) -> bool:
    """Hand a wheel turn over ``widget`` to the scroll area that holds it. False when none does."""
    area = widget.parentWidget()
    while area is not None and not isinstance(area, QAbstractScrollArea):
        area = area.parentWidget()
    if area is None:
        return False
    viewport = area.viewport()
    at = viewport.mapFromGlobal(event.globalPosition())
    turn = QWheelEvent(at, event.globalPosition(), event.pixelDelta(), event.angleDelta(), event.buttons(),
                       event.modifiers(), event.phase(), event.inverted())
    QApplication.sendEvent(viewport, turn)
    return True


class _FieldKeys(QObject):
    """An event filter for the fields of a form: the window's Undo and Redo keys, and why a field is off.

    * Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y go to the window (the document's undo stack) instead of the
      text box's own undo: an edit is committed as soon as it is made, so the field has nothing of
      its own to undo, and Undo "did nothing" while a field had focus. Typing not yet committed
      is dropped: the field shows the value again.
    * Hovering a disabled field shows why it is disabled before its own tooltip.
    """

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        kind = event.type()
        if kind == QEvent.Type.ShortcutOverride and _is_undo_key(event):
            event.ignore()  # NOTE: not overridden: the window's Undo/Redo shortcut takes the key
            return True
        if kind == QEvent.Type.ToolTip and isinstance(obj, QWidget) and not obj.isEnabled():
            reason = disabled_reason(obj)
            if reason:
                QToolTip.showText(event.globalPos(), f"<p><b>{html.escape(reason)}</b></p>{_own_tip(obj)}", obj)
                return True
        return False


def _own_tip(widget: QWidget) -> str:
    """The field's own tooltip as rich text (a spin box's text box has none: its box's)."""
    parent = widget.parentWidget()
    tip = widget.toolTip() or (parent.toolTip() if parent is not None else "")
    return tip if tip.lstrip().startswith("<") else f"<p>{html.escape(tip)}</p>" if tip else ""


def _is_undo_key(event: QKeyEvent) -> bool:
    ctrl_y = event.key() == Qt.Key.Key_Y and event.modifiers() == Qt.KeyboardModifier.ControlModifier
    return event.matches(QKeySequence.StandardKey.Undo) or event.matches(QKeySequence.StandardKey.Redo) or ctrl_y


_FIELD_KEYS = _FieldKeys()


def watch_field(widget: QWidget) -> None:
    """Give a form field the window's Undo/Redo keys and a reason on hover when disabled."""
    widget.installEventFilter(_FIELD_KEYS)
    for child in widget.findChildren(QLineEdit):
        child.installEventFilter(_FIELD_KEYS)


def disabled_reason(widget: QWidget) -> str:
    """Why ``widget`` is disabled: the lock of the panel it lies in, else its own reason ("" if none)."""
    w: QWidget | None = widget
    while w is not None:
        locked = w.property(LOCK_PROPERTY)
        if locked and not w.isEnabled():
            return str(locked)
        w = w.parentWidget()
    return str(widget.property(REASON_PROPERTY) or "")


def set_enabled_for(widget: QWidget, enabled: bool, reason: str = "") -> None:
    """Enable ``widget``, or disable it saying why (the hover shows ``reason``)."""
    widget.setEnabled(enabled)
    widget.setProperty(REASON_PROPERTY, "" if enabled else reason)


def lock_note() -> QLabel:
    """The line at the top of a panel that a run has locked (the panel shows it while disabled)."""
    label = QLabel(LOCK_REASON)  # NOTE: no padlock emoji: without an emoji font it is drawn as an empty box
    label.setWordWrap(True)
    label.setProperty("role", "locked")
    label.setContentsMargins(10, 6, 10, 6)
    label.hide()
    return label


class IntSpin(_NoWheelMixin, QSpinBox):
    """A spin box over the declared range that lets an out-of-range number be typed and reports it."""

    out_of_range = Signal(str)

    def validate(self, text: str, pos: int):  # noqa: D102 - Qt's name
        result = super().validate(text, pos)
        state = result[0] if isinstance(result, tuple) else result
        if state == QValidator.State.Invalid and _parse_int(text) is not None:
            return QValidator.State.Intermediate
        return result

    def fixup(self, text: str) -> str:  # noqa: D102 - Qt's name
        if _parse_int(text) is not None:
            self.out_of_range.emit(text)
        return text


class FloatSpin(_NoWheelMixin, QDoubleSpinBox):
    """A double spin box that shows numbers compactly (``1e-05``, ``0.1``) and accepts ``1e-3``."""

    out_of_range = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(15)  # the shown text is compact; this only sets the rounding

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt's name
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt's name
        v = _parse_float(text)
        return self.value() if v is None else v

    def validate(self, text: str, pos: int):  # noqa: D102 - Qt's name
        v = _parse_float(text)
        if v is None:
            partial = text.strip().lower()
            ok = all(ch in "0123456789.-+e" for ch in partial)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid, text, pos)
        if math.isfinite(v) and self.minimum() <= v <= self.maximum():
            return (QValidator.State.Acceptable, text, pos)
        return (QValidator.State.Intermediate, text, pos)

    def fixup(self, text: str) -> str:  # noqa: D102 - Qt's name
        if _parse_float(text) is not None:
            self.out_of_range.emit(text)
        return text


class NoWheelCombo(_NoWheelMixin, QComboBox):
    """A combo box that ends a text too long for it with "…" instead of cutting it off."""

    def shown_text(self, opt: QStyleOptionComboBox | None = None) -> str:
        """The current text as drawn: elided to the room the box has."""
        if opt is None:
            opt = QStyleOptionComboBox()
            self.initStyleOption(opt)
        field = self.style().subControlRect(
            QStyle.ComplexControl.CC_ComboBox, opt, QStyle.SubControl.SC_ComboBoxEditField, self
        )
        room = field.width() - (opt.iconSize.width() + 4 if not opt.currentIcon.isNull() else 0)
        return self.fontMetrics().elidedText(opt.currentText, Qt.TextElideMode.ElideRight, room)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self.isEditable():
            super().paintEvent(event)
            return
        painter = QStylePainter(self)
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, opt)
        opt.currentText = self.shown_text(opt)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, opt)


class ParamField(QObject):
    """One parameter's editor. ``edited(name, value)``; ``refused(name, reason)``."""

    edited = Signal(str, object)
    refused = Signal(str, str)

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.param = param
        self.widget = self._build(param)
        self.widget.setToolTip(_tooltip(param))
        self.widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.widget.setObjectName(f"param_{param.name}")
        watch_field(self.widget)

    # ------------------------------------------------------------------ building
    def _build(self, p: Param) -> QWidget:
        if p.kind == "int":
            w = IntSpin()
            w.setRange(int(p.min) if p.min is not None else -_INT_LIMIT, int(min(p.max, _INT_LIMIT)) if p.max is not None else _INT_LIMIT)
            w.setKeyboardTracking(False)
            w.setAccelerated(True)
            w.valueChanged.connect(lambda v: self.edited.emit(p.name, int(v)))
            w.out_of_range.connect(lambda t: self.refused.emit(p.name, _reason(p, _parse_int(t))))
            return w
        if p.kind == "float":
            w = FloatSpin()
            w.setRange(p.min if p.min is not None else -1e12, p.max if p.max is not None else 1e12)
            _set_float_step(w, p)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v: self.edited.emit(p.name, float(v)))
            w.out_of_range.connect(lambda t: self.refused.emit(p.name, _reason(p, _parse_float(t))))
            return w
        if p.kind == "bool":
            w = QCheckBox()
            w.clicked.connect(lambda checked: self.edited.emit(p.name, bool(checked)))
            return w
        if p.kind == "choice":
            w = NoWheelCombo()
            for c in p.choices:
                w.addItem(str(c), c)
            w.activated.connect(lambda i: self.edited.emit(p.name, w.itemData(i)))
            return w
        if p.kind == "int_or_choice":
            w = NoWheelCombo()
            w.setEditable(True)
            w.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
            for c in p.choices:
                w.addItem(str(c), c)
            lo = _num(p.min) if p.min is not None else ""
            hi = _num(p.max) if p.max is not None else ""
            w.lineEdit().setPlaceholderText(f"{lo}–{hi} or {' / '.join(map(str, p.choices))}")
            w.lineEdit().editingFinished.connect(lambda: self.edited.emit(p.name, _int_or_text(w.currentText())))
            w.activated.connect(lambda i: self.edited.emit(p.name, _int_or_text(w.itemText(i))))
            return w
        if p.kind == "shape":
            w = QLineEdit()
            w.setPlaceholderText("e.g. 16, 4, 4")
            w.editingFinished.connect(lambda: self.edited.emit(p.name, w.text()))
            return w
        raise AssertionError(f"no editor for param kind {p.kind!r}")

    # ------------------------------------------------------------------ values
    def set_value(self, value: Any) -> None:
        """Show ``value`` without emitting :attr:`edited`."""
        w = self.widget
        w.blockSignals(True)
        try:
            if isinstance(w, (QSpinBox, QDoubleSpinBox)):
                w.setValue(value)
            elif isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            elif isinstance(w, QComboBox) and not w.isEditable():
                w.setCurrentIndex(max(0, w.findData(value)))
            elif isinstance(w, QComboBox):
                w.setEditText(str(value))
            elif isinstance(w, QLineEdit):
                w.setText(", ".join(str(d) for d in value) if isinstance(value, (tuple, list)) else str(value))
                w.setCursorPosition(0)
        finally:
            w.blockSignals(False)
        if isinstance(w, QComboBox) and w.isEditable():
            w.lineEdit().blockSignals(True)
            w.setEditText(str(value))
            w.lineEdit().blockSignals(False)

    def set_mixed(self, mixed: bool) -> None:
        """Mark that the selected blocks hold different values for this parameter."""
        self.widget.setProperty("mixed", mixed)
        tip = _tooltip(self.param)
        self.widget.setToolTip(tip + ("<p><i>The selected blocks differ here; an edit sets them all.</i></p>" if mixed else ""))


def _int_or_text(text: str) -> int | str:
    n = _parse_int(text)
    return n if n is not None else text.strip()


def _set_float_step(w: QDoubleSpinBox, p: Param) -> None:
    span = (p.max - p.min) if p.min is not None and p.max is not None else None
    if abs(p.default) and abs(p.default) < 1e-3:
        w.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
    elif span is not None and span <= 1:
        w.setSingleStep(0.05)
    else:
        w.setSingleStep(0.1)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _tooltip(p: Param) -> str:
    bits = []
    if p.kind in ("int", "float", "int_or_choice", "shape") and (p.min is not None or p.max is not None):
        lo = _num(p.min) if p.min is not None else "−∞"
        hi = _num(p.max) if p.max is not None else "∞"
        bits.append(f"range {lo} – {hi}")
    if p.kind in ("choice", "int_or_choice"):
        bits.append("choices: " + ", ".join(map(str, p.choices)))
    default = shape_str(p.default) if p.kind == "shape" else p.default
    bits.append(f"default {default}")
    return (
        f"<p><b>{html.escape(p.title)}</b></p><p>{html.escape(p.doc, quote=False)}</p>"
        f"<p style='color:gray'>{html.escape(' · '.join(bits), quote=False)}</p>"
    )
