"""Start the Qt program: ``run(argv)`` opens the main window, optionally with a project file."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from designer import theme
from designer.clipboard import release_clipboard
from designer.settings import APPLICATION, ORGANIZATION
from engine.training import remote

#: Milliseconds after the window opens before a spare training process is started.
SPARE_DELAY_MS = 3000


def _application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        # NOTE: Qt 6 scales for high DPI on its own; pass fractional factors through (150 %, 125 %)
        # instead of rounding them, so text and icons are sharp and the right size.
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication([sys.argv[0] if sys.argv else "net-designer"])
    app.aboutToQuit.connect(release_clipboard)
    app.aboutToQuit.connect(remote.discard_spare)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)
    return app


def _place(window) -> None:
    """Restore the last window layout, or fill the screen (a bare X server has no window manager)."""
    if window.restore_layout():
        window.show()
        return
    screen = QGuiApplication.primaryScreen()
    if screen is not None:
        window.setGeometry(screen.availableGeometry())
    window.showMaximized()


def run(argv: list[str]) -> int:
    """Open the window; ``argv[0]``, when given, is a project file to open. Returns the exit code."""
    app = _application()
    theme.apply_theme(app, theme.saved_dark())
    from designer.main_window import MainWindow

    window = MainWindow()
    _place(window)
    # NOTE: the training process imports PyTorch in the background, so the first Train starts at once.
    QTimer.singleShot(SPARE_DELAY_MS, remote.prestart)
    if argv:
        path = Path(argv[0])
        # An unreadable file is explained in a message box; the window stays in its start state.
        QTimer.singleShot(0, window, lambda: window.files.open_path(path, ask=False))
    # NOTE: once the window shows: unsaved edits a crashed or killed Net Designer left are offered back.
    from designer.autosave import offer_recovery

    QTimer.singleShot(0, window, lambda: offer_recovery(window))
    return app.exec()
