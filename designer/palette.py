"""The layer palette: every layer type from the registry, grouped by category.

Drag a layer onto the canvas (MIME :data:`LAYER_MIME`, payload the type id), or
double-click it / press Enter to add it (after the selected block, wired to it).
Under "My units" the units saved to the user's library (:mod:`designer.canvas.library`)
drag the same way (MIME ``UNIT_MIME``, payload the unit's file).
The search finds a layer by its title, type id, category or PyTorch names
(``Linear``, ``nn.BatchNorm2d``), or, when no name matches, by its description
("fully connected"); Enter adds the best match.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QByteArray, QEvent, QMimeData, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from designer.canvas.library import LIBRARY, UNIT_MIME, library_units
from designer.colors import category_color
from designer.plaintext import as_plain, plain_label
from designer.theme import is_dark
from engine.layers.registry import CATEGORIES, LayerSpec, all_specs

#: MIME type of a palette drag; the payload is the layer's type id in UTF-8.
LAYER_MIME = "application/x-netdesigner-layer"

TYPE_ROLE = Qt.ItemDataRole.UserRole
#: a library unit's item: the path of its file
UNIT_ROLE = Qt.ItemDataRole.UserRole + 2
MY_UNITS = "My units"


def category_letter(category: str) -> str:
    return category[:1].upper()


def category_icon(category: str, dark: bool | None = None, size: int = 18) -> QIcon:
    """A rounded square in the category's colour with the category's letter, sharp at any DPI."""
    dark = is_dark() if dark is None else dark
    icon = QIcon()
    for ratio in (1.0, 2.0, 3.0):
        icon.addPixmap(_square(category, dark, size, ratio))
    return icon


def _square(category: str, dark: bool, size: int, ratio: float) -> QPixmap:
    pm = QPixmap(round(size * ratio), round(size * ratio))
    pm.setDevicePixelRatio(ratio)
    pm.fill(Qt.GlobalColor.transparent)
    color = category_color(category, dark)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    rect = QRectF(0.5, 0.5, size - 1, size - 1)
    p.setPen(color.darker(130))
    p.setBrush(color)
    p.drawRoundedRect(rect, size * 0.25, size * 0.25)
    font = QFont()
    font.setPixelSize(round(size * 0.62))
    font.setBold(True)
    p.setFont(font)
    p.setPen(QColor("#ffffff") if color.lightness() < 165 else QColor("#1e2227"))
    p.drawText(rect, Qt.AlignmentFlag.AlignCenter, category_letter(category))
    p.end()
    return pm


def layer_tooltip(spec: LayerSpec) -> str:
    """Rich-text tooltip: the title, the category, the declaration's doc paragraph and its PyTorch names."""
    torch = ", ".join(html.escape(_torch_spelling(n)) for n in spec.torch_names)
    return (
        f"<p><b>{html.escape(spec.title)}</b> <span style='color:gray'>· {html.escape(spec.category)}</span></p>"
        f"<p>{html.escape(spec.doc, quote=False)}</p>"
        + (f"<p style='color:gray'>In PyTorch: {torch}</p>" if torch else "")
    )


def _torch_spelling(name: str) -> str:
    """``nn.Linear`` for a module's class name; a name spelled out (``torch.cat``) as it is."""
    return name if "." in name else f"nn.{name}"


#: how a name may start that a PyTorch user types or leaves out (longest first): compared without it
_PREFIXES = ("torch.nn.functional.", "torch.nn.", "nn.functional.", "torch.tensor.", "torch.", "nn.", "f.", "tensor.")
#: search ranks: a name is the text, a name starts with it, the names hold every word, the description does
EXACT, PREFIX, NAMES, DESCRIPTION = range(4)


def search_rank(spec: LayerSpec, text: str) -> int | None:
    """How well the search ``text`` finds ``spec`` (a rank above, lower is better); None: not at all.

    Names are the title, the type id and the PyTorch names, compared without case and without a
    leading ``nn.`` or ``torch.``, and then the category; every word of the text must be found.
    """
    words = [_bare(w) for w in text.lower().split()]
    if not words:
        return NAMES
    names = [_bare(n.lower()) for n in (spec.title, spec.type_id, *spec.torch_names)]
    query = " ".join(words)
    if query in names:
        return EXACT
    if any(n.startswith(query) for n in names):
        return PREFIX
    joined = " ".join([*names, spec.category.lower()])
    if all(w in joined for w in words):
        return NAMES
    description = spec.doc.lower()
    if all(w in joined or w in description for w in words):
        return DESCRIPTION
    return None


def _bare(word: str) -> str:
    for prefix in _PREFIXES:
        if word.startswith(prefix) and len(word) > len(prefix):
            return word[len(prefix):]
    return word


class _LayerTree(QTreeWidget):
    """The tree; a drag carries the layer's type id."""

    def mimeTypes(self) -> list[str]:  # noqa: N802 - Qt's name
        return [LAYER_MIME, UNIT_MIME]

    def mimeData(self, items) -> QMimeData:  # noqa: N802 - Qt's name
        units = [it.data(0, UNIT_ROLE) for it in items if it.data(0, UNIT_ROLE)]
        if units:
            mime = QMimeData()
            mime.setData(UNIT_MIME, QByteArray(units[0].encode("utf-8")))
            return mime
        type_ids = [it.data(0, TYPE_ROLE) for it in items if it.data(0, TYPE_ROLE)]
        return layer_mime_data(type_ids[0]) if type_ids else QMimeData()

    def supportedDropActions(self) -> Qt.DropAction:  # noqa: N802 - Qt's name
        return Qt.DropAction.CopyAction


def layer_mime_data(type_id: str) -> QMimeData:
    mime = QMimeData()
    mime.setData(LAYER_MIME, QByteArray(type_id.encode("utf-8")))
    mime.setText(type_id)
    return mime


class PaletteWidget(QWidget):
    """Search box and category tree. Emits :attr:`add_requested` with a type id."""

    add_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search layers…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.set_filter)
        self.search.returnPressed.connect(self._add_first_match)
        self.search.installEventFilter(self)

        self.tree = _LayerTree()
        self.tree.setHeaderHidden(True)
        self.tree.setRootIsDecorated(True)
        self.tree.setIndentation(12)
        self.tree.setUniformRowHeights(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.itemActivated.connect(self._on_item_activated)

        self.no_match = plain_label()  # NOTE: it repeats the search text typed
        self.no_match.setProperty("role", "muted")
        self.no_match.setWordWrap(True)
        self.no_match.hide()
        hint = QLabel("Drag a layer onto the canvas, or double-click it to add it after the selected block.")
        hint.setProperty("role", "muted")
        hint.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.search)
        layout.addWidget(self.no_match)
        layout.addWidget(self.tree, 1)
        layout.addWidget(hint)

        self._categories: dict[str, QTreeWidgetItem] = {}
        self._items: dict[str, QTreeWidgetItem] = {}
        self._specs: dict[str, LayerSpec] = {}
        self._populate()
        self.my_units = QTreeWidgetItem([MY_UNITS])
        self.my_units.setFlags(Qt.ItemFlag.ItemIsEnabled)
        self.refresh_units()
        LIBRARY.changed.connect(self.refresh_units)
        # NOTE: wide enough for the longest layer name, so no name is cut off.
        self.tree.setMinimumWidth(self.tree.sizeHintForColumn(0) + self.tree.indentation() + 28)

    # ------------------------------------------------------------------ building
    def _populate(self) -> None:
        bold = QFont(self.font())
        bold.setBold(True)
        specs = all_specs()
        for category in CATEGORIES:
            members = [s for s in specs if s.category == category]
            if not members:
                continue
            head = QTreeWidgetItem([category])
            head.setFont(0, bold)
            head.setFlags(Qt.ItemFlag.ItemIsEnabled)
            head.setData(0, Qt.ItemDataRole.UserRole + 1, category)
            self.tree.addTopLevelItem(head)
            self._categories[category] = head
            for spec in members:
                item = QTreeWidgetItem([spec.title])
                item.setData(0, TYPE_ROLE, spec.type_id)
                item.setToolTip(0, layer_tooltip(spec))
                item.setFlags(
                    Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled
                )
                head.addChild(item)
                self._items[spec.type_id] = item
                self._specs[spec.type_id] = spec
            head.setExpanded(True)
        self._refresh_icons()

    def _refresh_icons(self) -> None:
        dark = is_dark()
        icons = {c: category_icon(c, dark) for c in self._categories}
        for type_id, item in self._items.items():
            item.setIcon(0, icons[item.parent().data(0, Qt.ItemDataRole.UserRole + 1)])

    def refresh_units(self) -> None:
        """List the units of the user's library under "My units" (in the tree only while there are some)."""
        self.my_units.takeChildren()
        bold = QFont(self.font())
        bold.setBold(True)
        self.my_units.setFont(0, bold)
        for name, path in library_units():
            item = QTreeWidgetItem([name])
            item.setData(0, UNIT_ROLE, str(path))
            item.setToolTip(0, as_plain(f"Unit '{name}' from your library: drag it onto the canvas to use it"))
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)
            self.my_units.addChild(item)
        listed = self.tree.indexOfTopLevelItem(self.my_units) >= 0
        if self.my_units.childCount() and not listed:
            self.tree.addTopLevelItem(self.my_units)
        elif not self.my_units.childCount() and listed:
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(self.my_units))
        self.my_units.setExpanded(True)

    def unit_items(self) -> list[QTreeWidgetItem]:
        """The items under "My units"."""
        return [self.my_units.child(i) for i in range(self.my_units.childCount())]

    # ------------------------------------------------------------------ queries (tests use them)
    def item_for(self, type_id: str) -> QTreeWidgetItem:
        return self._items[type_id]

    def visible_type_ids(self) -> list[str]:
        """Type ids of the layers the filter shows, in tree order."""
        return [t for t, it in self._items.items() if not it.isHidden() and not it.parent().isHidden()]

    def mime_data_for(self, type_id: str) -> QMimeData:
        """What a drag of ``type_id`` carries (the same as the tree produces)."""
        return self.tree.mimeData([self._items[type_id]])

    # ------------------------------------------------------------------ filtering
    def set_filter(self, text: str) -> None:
        """Show the layers ``text`` finds (see :func:`search_rank`) and make the best one current.

        Descriptions are searched only when no layer's names match, so "sep" shows Separable
        Conv2d alone while "fully connected" still finds Dense.
        """
        ranks = {t: search_rank(self._specs[t], text) for t in self._items}
        if any(r is not None and r < DESCRIPTION for r in ranks.values()):
            ranks = {t: r if r is not None and r < DESCRIPTION else None for t, r in ranks.items()}
        for category, head in self._categories.items():
            shown = 0
            for i in range(head.childCount()):
                item = head.child(i)
                match = ranks[item.data(0, TYPE_ROLE)] is not None
                item.setHidden(not match)
                shown += match
            head.setHidden(shown == 0)
            if text.strip() and shown:
                head.setExpanded(True)
        visible = self.visible_type_ids()
        self.no_match.setVisible(not visible)
        self.no_match.setText(f"No layer matches “{text.strip()}”." if not visible else "")
        if not visible:
            return
        current = self.tree.currentItem()
        if text.strip():
            best = min(visible, key=lambda t: ranks[t])  # NOTE: min keeps the first of equals: tree order
            self.tree.setCurrentItem(self._items[best])
        elif current is None or current.isHidden() or current.data(0, TYPE_ROLE) is None:
            self.tree.setCurrentItem(self._items[visible[0]])

    def _add_first_match(self) -> None:
        current = self.tree.currentItem()
        type_id = current.data(0, TYPE_ROLE) if current is not None and not current.isHidden() else None
        visible = self.visible_type_ids()
        if type_id not in visible:
            type_id = visible[0] if visible else None
        if type_id:
            self.add_requested.emit(type_id)

    def _on_item_activated(self, item: QTreeWidgetItem, _column: int) -> None:
        type_id = item.data(0, TYPE_ROLE)
        if type_id:
            self.add_requested.emit(type_id)

    # ------------------------------------------------------------------ Qt overrides
    def eventFilter(self, obj, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if obj is self.search and event.type() == QEvent.Type.KeyPress:
            key = event.key()
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                self.tree.setFocus()
                return True
            if key == Qt.Key.Key_Escape and self.search.text():
                self.search.clear()
                return True
        return super().eventFilter(obj, event)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.ApplicationPaletteChange:
            self._refresh_icons()
        super().changeEvent(event)
