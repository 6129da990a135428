"""Colours of the canvas: one accent per layer category, and the canvas palette.

Each category has one accent hue, used for a block's header band and its palette
entry; the block body is a pale (light theme) or deep (dark theme) tint of it.
Red and amber are kept out of the category hues: they mean error and warning.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

_ACCENTS = {
    "Input": "#2f6fde",
    "Dense": "#7b4fd6",
    "Convolution": "#12968a",
    "Pooling": "#348c34",
    "Normalization": "#9c7506",
    "Activation": "#cc5f15",
    "Regularization": "#6b7b8c",
    "Reshape": "#1b8fbf",
    "Merge": "#c2418f",
    "Output": "#3f4ba8",
}
_FALLBACK = "#707880"


def category_color(category: str, dark: bool = False) -> QColor:
    """The accent colour of a layer category (header bands, palette swatches)."""
    color = QColor(_ACCENTS.get(category, _FALLBACK))
    return color.lighter(118) if dark else color


def body_color(category: str, dark: bool = False) -> QColor:
    """The fill of a block's body: the accent blended into the canvas background."""
    accent = category_color(category, dark)
    base = QColor("#2b2e33") if dark else QColor("#ffffff")
    return _blend(accent, base, 0.22 if dark else 0.10)


@dataclass(frozen=True)
class CanvasPalette:
    """Every colour the canvas draws with besides the category accents."""

    background: QColor
    background_locked: QColor
    grid_minor: QColor
    grid_major: QColor
    text: QColor
    text_muted: QColor
    header_text: QColor
    wire: QColor
    wire_selected: QColor
    wire_invalid: QColor
    label_bg: QColor
    label_text: QColor
    selection: QColor
    error: QColor
    error_tint: QColor
    error_header: QColor
    warning: QColor
    port_fill: QColor
    port_ok: QColor


_LIGHT = CanvasPalette(
    background=QColor("#f7f8fa"),
    background_locked=QColor("#eef0f4"),
    grid_minor=QColor("#eceef2"),
    grid_major=QColor("#dde1e7"),
    text=QColor("#1e2227"),
    text_muted=QColor("#5f6670"),
    header_text=QColor("#ffffff"),
    wire=QColor("#7d8693"),
    wire_selected=QColor("#2f6fde"),
    wire_invalid=QColor("#c62828"),
    label_bg=QColor(255, 255, 255, 235),
    label_text=QColor("#39404a"),
    selection=QColor("#2f6fde"),
    error=QColor("#c62828"),
    error_tint=QColor("#fde8e8"),
    error_header=QColor("#c62828"),
    warning=QColor("#c27c00"),
    port_fill=QColor("#ffffff"),
    port_ok=QColor("#2e9d4a"),
)

_DARK = CanvasPalette(
    background=QColor("#1d1f22"),
    background_locked=QColor("#24262b"),
    grid_minor=QColor("#25282c"),
    grid_major=QColor("#2f3338"),
    text=QColor("#e4e6e9"),
    text_muted=QColor("#a3aab4"),
    header_text=QColor("#ffffff"),
    wire=QColor("#8a929e"),
    wire_selected=QColor("#6fa4ff"),
    wire_invalid=QColor("#ff6b6b"),
    label_bg=QColor(40, 43, 48, 235),
    label_text=QColor("#d5d9de"),
    selection=QColor("#6fa4ff"),
    error=QColor("#ff6b6b"),
    error_tint=QColor("#4a2a2d"),
    error_header=QColor("#c23b3b"),
    warning=QColor("#f0b048"),
    port_fill=QColor("#2b2e33"),
    port_ok=QColor("#66bb6a"),
)


def canvas_palette(dark: bool = False) -> CanvasPalette:
    return _DARK if dark else _LIGHT


def app_is_dark() -> bool:
    """Whether the application palette is dark (the theme module sets the palette)."""
    app = QApplication.instance()
    if app is None:
        return False
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def _blend(a: QColor, b: QColor, t: float) -> QColor:
    """``t`` of ``a`` over ``1 - t`` of ``b``."""
    return QColor.fromRgbF(
        a.redF() * t + b.redF() * (1 - t),
        a.greenF() * t + b.greenF() * (1 - t),
        a.blueF() * t + b.blueF() * (1 - t),
    )
