"""Light and dark themes: a Fusion palette plus a small style sheet.

Widgets that draw their own colours (palette icons, code highlighting, the canvas)
ask :func:`is_dark` and redraw on ``QEvent.Type.ApplicationPaletteChange``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from designer.settings import read_bool, settings

SETTINGS_KEY = "view/dark_theme"

_LIGHT = {
    "window": "#f3f4f6",
    "base": "#ffffff",
    "alt": "#f0f2f5",
    "text": "#1e2227",
    "muted": "#5f6670",
    "button": "#e9ebee",
    "highlight": "#2f6fde",
    "highlight_text": "#ffffff",
    "link": "#1f5fc8",
    "tooltip": "#fffbe6",
    "border": "#c9cdd3",
    "error": "#c62828",
    "warning": "#a86200",
    "ok": "#2e7d32",
    "light": "#ffffff",
    "midlight": "#e4e6ea",
    "dark": "#a0a5ad",
    "shadow": "#6b7079",
}
_DARK = {
    "window": "#26282c",
    "base": "#1d1f22",
    "alt": "#23262a",
    "text": "#e4e6e9",
    "muted": "#9aa1ab",
    "button": "#33363b",
    "highlight": "#3d7ce0",
    "highlight_text": "#ffffff",
    "link": "#7fb0ff",
    "tooltip": "#33363b",
    "border": "#44484f",
    "error": "#ff6b6b",
    "warning": "#f0b048",
    "ok": "#66bb6a",
    "light": "#3c3f45",
    "midlight": "#32353a",
    "dark": "#17191c",
    "shadow": "#0e0f11",
}

_SHEET = """
QDockWidget::title {{ padding: 4px 6px; background: {window}; font-weight: 600; }}
QToolTip {{ color: {text}; background: {tooltip}; border: 1px solid {border}; padding: 4px; }}
QLabel[role="muted"] {{ color: {muted}; }}
QLabel[role="error"] {{ color: {error}; }}
QLabel[role="locked"] {{ color: {warning}; font-weight: 600; }}
QLabel[role="heading"] {{ font-size: 13pt; font-weight: 600; }}
QFrame[role="card"] {{ background: {base}; border: 1px solid {border}; border-radius: 8px; }}
QFrame[role="card"]:hover {{ border: 1px solid {highlight}; }}
QFrame[role="card"][selected="true"] {{ border: 2px solid {highlight}; }}
QFrame[role="panel"] {{ background: {window}; border: 1px solid {border}; border-radius: 12px; }}
QStatusBar QLabel {{ padding: 0 8px; }}
"""


def colors(dark: bool | None = None) -> dict[str, str]:
    """The named colours of the current (or the given) theme."""
    return dict(_DARK if (is_dark() if dark is None else dark) else _LIGHT)


def is_dark() -> bool:
    """Whether the dark theme is in use (judged from the application palette)."""
    app = QApplication.instance()
    if app is None:
        return False
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def _palette(c: dict[str, str]) -> QPalette:
    R, G = QPalette.ColorRole, QPalette.ColorGroup
    p = QPalette()
    roles = {
        R.Window: c["window"],
        R.WindowText: c["text"],
        R.Base: c["base"],
        R.AlternateBase: c["alt"],
        R.Text: c["text"],
        R.Button: c["button"],
        R.ButtonText: c["text"],
        R.BrightText: "#ffffff",
        R.Highlight: c["highlight"],
        R.HighlightedText: c["highlight_text"],
        R.Link: c["link"],
        R.ToolTipBase: c["tooltip"],
        R.ToolTipText: c["text"],
        R.PlaceholderText: c["muted"],
        R.Mid: c["border"],
        R.Light: c["light"],
        R.Midlight: c["midlight"],
        R.Dark: c["dark"],
        R.Shadow: c["shadow"],
    }
    for role, color in roles.items():
        p.setColor(role, QColor(color))
    for role in (R.WindowText, R.Text, R.ButtonText):
        p.setColor(G.Disabled, role, QColor(c["muted"]))
    # NOTE: a disabled field (locked during a run, or not applying) must not look like one that takes typing
    for role in (R.Base, R.Button):
        p.setColor(G.Disabled, role, QColor(c["midlight"]))
    return p


def apply_theme(app: QApplication, dark: bool) -> None:
    """Switch ``app`` to the light or dark theme (Fusion style, palette and style sheet)."""
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    c = _DARK if dark else _LIGHT
    try:
        QGuiApplication.styleHints().setColorScheme(Qt.ColorScheme.Dark if dark else Qt.ColorScheme.Light)
    except AttributeError:  # older Qt: the palette alone does it
        pass
    app.setPalette(_palette(c))
    app.setStyleSheet(_SHEET.format(**c))


def saved_dark() -> bool:
    """The theme the person chose last time (light by default)."""
    return read_bool(SETTINGS_KEY, False)


def save_dark(dark: bool) -> None:
    settings().setValue(SETTINGS_KEY, bool(dark))
