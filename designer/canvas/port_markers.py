"""Markers of a unit's ports on the blocks inside it: where the unit's inputs enter and its outputs leave.

Inside an opened unit there is no Input block: each input port of the unit feeds some inner block
inputs, and each output port is one inner block's output. A :class:`PortMarkerItem`, a child of
that block's item (so it moves with it), labels the port ("in ▶" before the input, "▶ out" after
the output) in the colour of a selected wire.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import QGraphicsSimpleTextItem

from designer.canvas.items import NodeItem, font
from engine.units import UnitDef

GAP = 10.0


class PortMarkerItem(QGraphicsSimpleTextItem):
    """The label of one port of the opened unit beside the inner port it stands for."""

    def __init__(self, node_item: NodeItem, text: str, is_output: bool, index: int) -> None:
        super().__init__(text, node_item)
        self.is_output, self.index = is_output, index
        self.setFont(font("shape"))
        self.setBrush(QBrush(node_item.colors.wire_selected))
        self.setZValue(5)
        self.place()

    def place(self) -> None:
        """Put the label just outside its port, along the drawing's flow."""
        node = self.parentItem()
        ports = node.out_ports if self.is_output else node.in_ports
        if self.index >= len(ports):
            self.hide()
            return
        p = ports[self.index].pos()
        r = self.boundingRect()
        if node.flow == "tb":
            y = p.y() + GAP if self.is_output else p.y() - GAP - r.height()
            self.setPos(QPointF(p.x() - r.width() / 2, y))
        else:
            x = p.x() + GAP if self.is_output else p.x() - GAP - r.width()
            self.setPos(QPointF(x, p.y() - r.height() / 2))


def mark_ports(item: NodeItem, unit: UnitDef) -> list[PortMarkerItem]:
    """Replace ``item``'s port markers with those of ``unit``'s ports that are its ports."""
    for old in [c for c in item.childItems() if isinstance(c, PortMarkerItem)]:
        old.setParentItem(None)
        if old.scene() is not None:
            old.scene().removeItem(old)
    made = []
    for port in unit.inputs:
        made += [PortMarkerItem(item, f"{port.name} ▶", False, p) for nid, p in port.ends if nid == item.node_id]
    for port in unit.outputs:
        nid, p = port.ends[0]
        if nid == item.node_id:
            made.append(PortMarkerItem(item, f"▶ {port.name}", True, p))
    return made
