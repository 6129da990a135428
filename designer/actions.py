"""The window's actions and menus: File, Edit, View and Help."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu

from designer.canvas import unit_edits
from designer.file_ops import forget_recent, recent_files
from designer.plaintext import as_plain

if TYPE_CHECKING:  # pragma: no cover
    from designer.main_window import MainWindow

Key = QKeySequence.StandardKey


@dataclass
class Actions:
    new_blank: QAction
    new_from_template: QAction
    open: QAction
    save: QAction
    save_as: QAction
    export_code: QAction
    export_package: QAction
    preview_code: QAction
    quit: QAction
    undo: QAction
    redo: QAction
    cut: QAction
    copy: QAction
    paste: QAction
    duplicate: QAction
    delete: QAction
    select_all: QAction
    group: QAction
    ungroup: QAction
    zoom_in: QAction
    zoom_out: QAction
    fit_all: QAction
    actual_size: QAction
    arrange_lr: QAction
    arrange_tb: QAction
    design_layout: QAction
    training_layout: QAction
    reset_layout: QAction
    dark_theme: QAction
    recent_menu: QMenu


def _action(win: MainWindow, text: str, slot, shortcuts=(), tip: str = "") -> QAction:
    action = QAction(text, win)
    keys = [QKeySequence(s) for s in shortcuts]
    if keys:
        action.setShortcuts(keys)
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    action.triggered.connect(lambda _checked=False: slot())
    win.addAction(action)  # NOTE: shortcuts work even when the menu bar is hidden
    return action


def build_actions(win: MainWindow) -> Actions:
    """Create every action, wire it to ``win`` and fill the menu bar."""
    files, scene, view = win.files, win.scene, win.view
    stack = win.document.undo_stack

    # NOTE: undo and redo go through the scene, which refuses them while the network is locked.
    undo = _action(win, "&Undo", scene.undo, [Key.Undo])
    redo = _action(win, "&Redo", scene.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
    _StackFollower(stack, undo, redo)

    a = Actions(
        new_blank=_action(win, "&New Blank", files.new_blank, [Key.New], "Start an empty network"),
        new_from_template=_action(win, "New from &Template…", lambda: files.new_from_template(None),
                                  ["Ctrl+Shift+N"], "Start from a classic network"),
        open=_action(win, "&Open…", files.open, [Key.Open], "Open a project file"),
        save=_action(win, "&Save", files.save, [Key.Save], "Save the project"),
        save_as=_action(win, "Save &As…", files.save_as, [Key.SaveAs], "Save the project under another name"),
        export_code=_action(win, "&Export PyTorch Code…", lambda: files.export_code(None), ["Ctrl+E"],
                            "Write the network as a standalone PyTorch file (with weights when trained)"),
        export_package=_action(win, "Export Trainin&g Package…", lambda: files.export_package(None), [],
                               "Write a folder that trains the network anywhere: python train.py, or torchrun on a cluster"),
        preview_code=_action(win, "&Preview PyTorch Code…", files.preview_code, ["Ctrl+Shift+E"],
                             "Show the generated PyTorch code"),
        quit=_action(win, "&Quit", win.close, [Key.Quit]),
        undo=undo,
        redo=redo,
        cut=_action(win, "Cu&t", scene.cut_selected, [Key.Cut]),
        copy=_action(win, "&Copy", scene.copy_selected, [Key.Copy]),
        paste=_action(win, "&Paste", scene.paste, [Key.Paste]),
        duplicate=_action(win, "&Duplicate", scene.duplicate_selected, ["Ctrl+D"]),
        delete=_action(win, "De&lete", scene.delete_selected, [Key.Delete, "Backspace"]),
        select_all=_action(win, "Select &All", scene.select_all, [Key.SelectAll]),
        group=_action(win, "&Group…", lambda: unit_edits.ask_group(scene, win), ["Ctrl+G"],
                      "Make the selected blocks one named unit (a composite block)"),
        ungroup=_action(win, "U&ngroup", lambda: unit_edits.ungroup_selected(scene), ["Ctrl+Shift+G"],
                        "Put the selected unit's blocks in its place"),
        zoom_in=_action(win, "Zoom &In", view.zoom_in, ["Ctrl++", "Ctrl+="]),
        zoom_out=_action(win, "Zoom &Out", view.zoom_out, ["Ctrl+-"]),
        fit_all=_action(win, "&Fit All", view.fit_all, ["Ctrl+0"]),
        actual_size=_action(win, "&Actual Size", lambda: view.set_zoom(1.0), ["Ctrl+1"],
                            "Show the blocks at their own size (zoom 100 %)"),
        arrange_lr=_action(win, "Arrange &Left to Right", lambda: win.arrange("lr"), ["Ctrl+Shift+L"]),
        arrange_tb=_action(win, "Arrange &Top to Bottom", lambda: win.arrange("tb"), ["Ctrl+Shift+T"]),
        design_layout=_action(win, "&Design Layout", lambda: win.show_layout("design"), [],
                              "Arrange the panels for building the network: the canvas takes most of the window"),
        training_layout=_action(win, "T&raining Layout", lambda: win.show_layout("training"), [],
                                "Arrange the panels for watching a run: the training plots and the Insight views "
                                "side by side (taken when a run starts)"),
        reset_layout=_action(win, "Rese&t Layout", win.reset_layout, [],
                             "Put every panel back where this layout first had it"),
        dark_theme=QAction("&Dark Theme", win),
        recent_menu=QMenu("Open &Recent", win),
    )
    a.dark_theme.setCheckable(True)
    layouts = QActionGroup(win)  # NOTE: exclusive: the checked one is the layout on show
    for action in (a.design_layout, a.training_layout):
        action.setCheckable(True)
        layouts.addAction(action)
    a.dark_theme.toggled.connect(win.set_dark_theme)
    a.recent_menu.aboutToShow.connect(lambda: _fill_recent(win, a.recent_menu))

    bar = win.menuBar()
    m = bar.addMenu("&File")
    for item in (a.new_blank, a.new_from_template, None, a.open, a.recent_menu, None, a.save, a.save_as,
                 None, a.export_code, a.export_package, a.preview_code, None, a.quit):
        _add(m, item)
    m = bar.addMenu("&Edit")
    for item in (a.undo, a.redo, None, a.cut, a.copy, a.paste, a.duplicate, a.delete, None, a.select_all,
                 None, a.group, a.ungroup):
        _add(m, item)
    # NOTE: a run locks the network it trains: no restructuring then (the scene refuses it too)
    view.read_only_changed.connect(a.group.setDisabled)
    view.read_only_changed.connect(a.ungroup.setDisabled)
    m = bar.addMenu("&View")
    for item in (a.zoom_in, a.zoom_out, a.fit_all, a.actual_size, None):
        _add(m, item)
    arrange = m.addMenu("&Arrange")
    arrange.addAction(a.arrange_lr)
    arrange.addAction(a.arrange_tb)
    m.addSeparator()
    for item in (a.design_layout, a.training_layout, a.reset_layout, None, a.dark_theme, None):
        _add(m, item)
    win.view_menu = m  # NOTE: the docks' show/hide toggles follow
    help_menu = bar.addMenu("&Help")
    win.help_menu = help_menu  # NOTE: menus added later (Train) go before Help
    help_menu.addAction(_action(win, "&About Net Designer", win.show_about))
    return a


class _StackFollower(QObject):
    """Keeps Undo/Redo texts ("Undo Add Conv2d") and enabled states in step with the stack.

    NOTE: it uses only the values the signals carry; the stack may be mid-destruction.
    """

    def __init__(self, stack, undo: QAction, redo: QAction) -> None:
        super().__init__(undo.parent())
        self.undo, self.redo = undo, redo
        stack.canUndoChanged.connect(self.undo.setEnabled)
        stack.canRedoChanged.connect(self.redo.setEnabled)
        stack.undoTextChanged.connect(self._undo_text)
        stack.redoTextChanged.connect(self._redo_text)
        self.undo.setEnabled(stack.canUndo())
        self.redo.setEnabled(stack.canRedo())
        self._undo_text(stack.undoText())
        self._redo_text(stack.redoText())

    def _undo_text(self, text: str) -> None:
        self.undo.setText(f"&Undo {_no_mnemonic(text)}".rstrip())

    def _redo_text(self, text: str) -> None:
        self.redo.setText(f"&Redo {_no_mnemonic(text)}".rstrip())


def _no_mnemonic(text: str) -> str:
    """User text (a block or file name) for a menu, where "&" would mark a shortcut letter."""
    return text.replace("&", "&&")


def _add(menu: QMenu, item) -> None:
    if item is None:
        menu.addSeparator()
    elif isinstance(item, QMenu):
        menu.addMenu(item)
    else:
        menu.addAction(item)


def _fill_recent(win: MainWindow, menu: QMenu) -> None:
    menu.clear()
    files = recent_files()
    for i, path in enumerate(files):
        name = _no_mnemonic(Path(path).name)
        label = f"&{i + 1}  {name}" if i < 9 else name
        action = menu.addAction(label)
        action.setToolTip(as_plain(path))
        action.setStatusTip(path)
        action.triggered.connect(lambda _c=False, p=path: _open_recent(win, p))
    if not files:
        menu.addAction("No recent projects").setEnabled(False)
    menu.addSeparator()
    clear = menu.addAction("Clear Recent Projects")
    clear.setEnabled(bool(files))
    clear.triggered.connect(lambda: forget_recent(None))


def _open_recent(win: MainWindow, path: str) -> None:
    if not Path(path).exists():
        forget_recent(path)
    win.files.open_path(path)
