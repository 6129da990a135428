"""Preview data: a dialog with samples of the configured data set and their labels.

Images appear as a grid of thumbnails with their label under each; 2-D points as a
scatter plot coloured by class; other features as a table. A data set that cannot be
loaded shows the engine's reason in the dialog instead. A data set larger than the memory
budget is not loaded: only the samples shown are read from disk, as training would stream them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from designer.plaintext import escape_rich, plain_label
from designer.training.plots import RUN_COLORS, make_plot
from engine.data.basics import shape_text
from engine.errors import NetDesignerError
from engine.project import Project

__all__ = ["DataPreviewDialog", "input_shape"]

IMAGE_SAMPLES = 32
POINT_SAMPLES = 400
TABLE_SAMPLES = 24
THUMB = 72


def input_shape(project: Project, analysis) -> tuple[int, ...] | None:
    """The shape of the network's (first) Input block, or None when there is none."""
    for nid, node in project.graph.nodes.items():
        if node.spec.role == "input":
            info = analysis.nodes.get(nid) if analysis is not None else None
            if info is not None and info.out_shape is not None:
                return tuple(info.out_shape)
            return tuple(node.spec.shape(node.params, []))
    return None


def _pixmap(array: np.ndarray, side: int = THUMB) -> QPixmap:
    """A [0, 1] H×W or H×W×3 array as a pixmap scaled (blocky, to show real pixels) to ``side``."""
    a = np.ascontiguousarray((np.clip(array, 0.0, 1.0) * 255).astype(np.uint8))
    if a.ndim == 2:
        img = QImage(a.data, a.shape[1], a.shape[0], a.strides[0], QImage.Format.Format_Grayscale8)
    else:
        img = QImage(a.data, a.shape[1], a.shape[0], a.strides[0], QImage.Format.Format_RGB888)
    img = img.copy()  # NOTE: detach from the numpy buffer before it is freed
    return QPixmap.fromImage(img).scaled(
        side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
    )


def _read(project: Project, shape: tuple[int, ...], base_dir: Path | None):
    """The data set as training reads it (streamed from disk when over the memory budget), and whether it is points."""
    from engine.data.streaming import load_for_training

    ds = load_for_training(project.data, shape, base_dir=base_dir)
    return ds, len(ds) > 0 and not ds.is_image and math.prod(ds.input_shape) <= 2


def _pick(ds, is_points: bool) -> list:
    """The samples to show: only these are read from disk when the data set streams."""
    from engine.data.preview import preview_samples

    return preview_samples(ds, IMAGE_SAMPLES if ds.is_image else POINT_SAMPLES if is_points else TABLE_SAMPLES)


class DataPreviewDialog(QDialog):
    """Samples of ``project``'s data, loaded as training would load them (before normalization)."""

    def __init__(self, project: Project, analysis=None, base_dir: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preview data")
        self.setObjectName("data_preview")
        self.samples: list[tuple[np.ndarray, str]] = []
        self.picked: list = []  # engine.data.preview.PreviewSample, one per sample shown
        self.error = ""
        layout = QVBoxLayout(self)
        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)  # NOTE: the data set's name and warnings in it are escaped
        self.header.setWordWrap(True)
        layout.addWidget(self.header)
        self.error_label = plain_label()  # NOTE: the message quotes file names
        self.error_label.setProperty("role", "error")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()
        layout.addWidget(self.error_label)
        self.body = QWidget()
        QVBoxLayout(self.body).setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.body, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(760, 560)
        self._load(project, analysis, base_dir)

    def _load(self, project: Project, analysis, base_dir: Path | None) -> None:
        shape = input_shape(project, analysis)
        if shape is None:
            self._fail("The network has no Input block yet: add one so the data can be shaped to fit it.")
            return
        # NOTE: imported here, as it imports PyTorch (a second or more)
        from engine.data.streaming import is_streamed

        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            ds, is_points = _read(project, shape, base_dir)
            self.picked = _pick(ds, is_points)
        except NetDesignerError as exc:
            self._fail(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a broken file is a message, not a crash
            self._fail(f"The data could not be read: {type(exc).__name__}: {exc}")
            return
        finally:
            QGuiApplication.restoreOverrideCursor()
        self.samples = [(s.array, s.text) for s in self.picked]
        classes = f", {len(ds.classes)} classes" if ds.classes else ""
        targets = ", ".join(sorted(ds.targets))
        streamed = " Larger than the memory budget: read from disk as training streams it." if is_streamed(ds) else ""
        self.header.setText(
            f"<b>{escape_rich(ds.name)}</b>: {len(ds):,} samples{classes}, each {shape_text(ds.input_shape)} "
            f"(targets: {escape_rich(targets)}). Showing {len(self.samples)}, spread over the whole set.{streamed}"
        )
        for warning in getattr(ds, "warnings", []) or []:
            self.header.setText(self.header.text() + f"<br><i>{escape_rich(warning)}</i>")
        if not self.samples and len(ds):
            self._fail("None of the samples picked for the preview could be read from disk: check that the files are "
                       "still there and readable.")
        elif not self.samples:
            self._fail("The data set is empty.")
        elif ds.is_image or self.samples[0][0].ndim == 2 and self.samples[0][0].shape[0] > 1:
            self._show_images()
        elif is_points:
            self._show_points(ds)
        else:
            self._show_table(ds)

    def _fail(self, message: str) -> None:
        self.error = message
        self.error_label.setText(message)
        self.error_label.show()
        self.header.setText("<b>The data could not be loaded.</b>")

    def _show_images(self) -> None:
        grid_host = QWidget()
        grid = QGridLayout(grid_host)
        grid.setSpacing(8)
        cols = 8
        for i, (array, text) in enumerate(self.samples):
            cell = QWidget()
            v = QVBoxLayout(cell)
            v.setContentsMargins(0, 0, 0, 0)
            v.setSpacing(2)
            pic = QLabel()
            pic.setPixmap(_pixmap(array))
            pic.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label = plain_label(text)  # NOTE: a class name
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            v.addWidget(pic)
            v.addWidget(label)
            grid.addWidget(cell, i // cols, i % cols)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(grid_host)
        self.body.layout().addWidget(scroll)
        self.view = grid_host

    def _show_points(self, ds) -> None:
        plot = make_plot("", "x₂", "x₁")
        by_label: dict[str, list[np.ndarray]] = {}
        for array, text in self.samples:
            by_label.setdefault(text if ds.classes else "samples", []).append(array)
        for i, (text, points) in enumerate(sorted(by_label.items())):
            pts = np.asarray(points, dtype=np.float64)
            color = RUN_COLORS[i % len(RUN_COLORS)]
            if pts.shape[1] == 1:
                pts = np.column_stack([pts[:, 0], np.zeros(len(pts))])
            plot.plot(pts[:, 0], pts[:, 1], pen=None, symbol="o", symbolSize=6, symbolBrush=color,
                      symbolPen=None, name=escape_rich(text or "value"))  # NOTE: legends are HTML
        if ds.classes is None and "value" in ds.targets:
            plot.getPlotItem().setLabel("left", "target value")
        else:  # two input features: keep their scales equal so the shapes are true
            plot.getPlotItem().setAspectLocked(True)
        self.body.layout().addWidget(plot)
        self.view = plot

    def _show_table(self, ds) -> None:
        # NOTE: the raw feature values of the samples preview_samples() picked (spread evenly over the set).
        x = np.stack([s.raw.reshape(-1) for s in self.picked])
        names = [f"x{i + 1}" for i in range(x.shape[1])]
        table = QTableWidget(len(x), x.shape[1] + 1)
        table.setHorizontalHeaderLabels(["label", *names])
        for r, ((_, text), values) in enumerate(zip(self.samples, x)):
            table.setItem(r, 0, QTableWidgetItem(text))
            for c, v in enumerate(values):
                table.setItem(r, c + 1, QTableWidgetItem(f"{float(v):.3g}"))
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.resizeColumnsToContents()
        self.body.layout().addWidget(table)
        self.view = table

    def labels(self) -> list[str]:
        return [text for _, text in self.samples]

