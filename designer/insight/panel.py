"""The Insight dock: what the network learns while it trains, one tab per view.

Fed by the training session's ``probes_done`` and ``insight_done`` events (main thread; each
view updates its own items in place). Only the view a person can see is drawn when results
arrive: the others keep the latest results and draw them when their tab is shown (and all
of them at the end of a run), so a run's painting stays small however many views exist.
The class-map film strips record every probe run, shown or not. Every view can be saved
as a PNG or its numbers as CSV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from designer.insight.charts import DecisionsView, GradientView
from designer.insight.explore import ExploreView
from designer.insight.histograms import HistogramsView
from designer.insight.images import save_csv, save_png
from designer.insight.maps import ActivationsView, CamView, FiltersView
from designer.insight.samples import PredictionsView
from designer.plaintext import plain_label
from engine.training.events import InsightDone, ProbesDone

__all__ = ["START_TEXT", "InsightPanel"]

START_TEXT = "Train the network to see what it learns. Click a block to see its activations."


class _FillLayout(QVBoxLayout):
    """A column that takes the height it is given: it never asks for more height because it got narrower.

    NOTE: a wrapped label anywhere in the views makes a layout trade height for width, and a scroll area
    that sizes its widget (a dock's) then gives the panel its preferred height, far taller than the dock,
    instead of the dock's height; the views are made to fill whatever height they get, so none is asked.
    """

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt's name
        return False


class InsightPanel(QWidget):
    """Activations, filters, class maps, gradient flow, histograms and decisions of the running network.

    Signals:
        sample_requested(int): the person chose another probe sample for the activations.
        cam_class_requested(object): the class the maps should explain (None: the predicted one).
        cam_layer_requested(bool): Grad-CAM should weigh the selected block (True) or the default (False).
        message(str): a line for the status bar (a file was saved, say).
    """

    sample_requested = Signal(int)
    cam_class_requested = Signal(object)
    cam_layer_requested = Signal(bool)
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.activations = ActivationsView()
        self.filters = FiltersView()
        self.cam = CamView()
        self.gradients = GradientView()
        self.histograms = HistogramsView()
        self.decisions = DecisionsView()
        self.predictions = PredictionsView()
        self.explore = ExploreView()
        self.views = [self.activations, self.filters, self.cam, self.gradients, self.histograms, self.decisions,
                      self.predictions, self.explore]
        self.tabs = QTabWidget()
        for view in self.views:
            self.tabs.addTab(view, view.title)
        self.status = plain_label(START_TEXT)
        self.status.setWordWrap(True)
        self.png_button = QPushButton("Save PNG…")
        self.png_button.setToolTip("Save the current view as a picture")
        self.png_button.clicked.connect(lambda: self.save_png())
        self.csv_button = QPushButton("Save CSV…")
        self.csv_button.setToolTip("Save the numbers of the current view")
        self.csv_button.clicked.connect(lambda: self.save_csv())
        # NOTE: the buttons sit in the tab bar's corner, so the views get the height of a row of buttons more
        buttons = QWidget()
        row = QHBoxLayout(buttons)
        row.setContentsMargins(0, 0, 0, 2)
        row.addWidget(self.png_button)
        row.addWidget(self.csv_button)
        self.tabs.setCornerWidget(buttons, Qt.Corner.TopRightCorner)
        self.tabs.setUsesScrollButtons(True)
        layout = _FillLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)
        self.activations.sample_changed.connect(self.sample_requested)
        self.cam.class_chosen.connect(self.cam_class_requested)
        self.cam.layer_requested.connect(self.cam_layer_requested)
        self.tabs.currentChanged.connect(lambda *_: self.refresh())
        self.probe_views = (self.activations, self.filters, self.cam, self.gradients, self.histograms)
        self.insight_views = (self.decisions, self.predictions)
        self.project_path: Path | None = None  # where its file dialogs open (see fit_to)
        self._probes: dict[str, Any] | None = None
        self._insight: dict[str, Any] | None = None
        self._stale: set[QWidget] = set()  # the views whose latest results are not drawn yet
        self.probe_runs = 0
        self.insight_runs = 0

    # ------------------------------------------------------------------ feeding
    def on_probes_done(self, ev: ProbesDone) -> None:
        """A scheduled probe run of the training run."""
        self.show_probes(ev.results)

    def on_insight_done(self, ev: InsightDone) -> None:
        """An epoch's decision views of the training run."""
        self.show_insight({"epoch": ev.epoch, **ev.views})

    def show_probes(self, data: dict[str, Any]) -> None:
        """One probe run's results (see :meth:`engine.probes.runner.ProbeRunner.run`, plus ``images``)."""
        self.probe_runs += 1
        self.cam.record(data)  # NOTE: the film strips keep every probe run, drawn or not
        self._probes = data
        self._stale.update(self.probe_views)
        self.refresh()
        self.status.setText(f"Probes at step {data.get('step')} ({data.get('seconds', 0.0) * 1000:.0f} ms)")

    def show_insight(self, data: dict[str, Any]) -> None:
        """An epoch's decision views (``epoch`` and :meth:`~engine.probes.runner.ProbeRunner.evaluate`)."""
        self.insight_runs += 1
        names = (data.get("confusion") or {}).get("classes")
        if names:
            self.cam.class_names = list(names)
            self.filters.class_names = list(names)  # NOTE: a linear classifier's templates are captioned by class
            if self._probes is not None:
                self._stale.add(self.filters)
        if data.get("probe_labels") is not None:
            self.cam.set_true_classes(data["probe_labels"])
            self._stale.add(self.cam)
        self._insight = data
        self._stale.update(self.insight_views)
        self.refresh()

    def show_stored(self, run_name: str, found: dict[str, Any]) -> None:
        """A stored run's views, computed again from its weights (see :func:`engine.probes.replay.replay`)."""
        self.cam.frames.clear()
        self.show_probes(found["probes"])
        self.show_insight(found["insight"])
        epoch = found["insight"].get("epoch")
        when = f" after epoch {epoch}" if epoch else ""
        self.status.setText(f"{run_name}{when}, computed again from its stored weights")

    def refresh(self, everything: bool = False, view: QWidget | None = None) -> None:
        """Draw the latest results where they have not been drawn: in the view on show, in ``view``,
        or in every view (``everything``)."""
        for each in self.probe_views + self.insight_views:
            if each not in self._stale or not (everything or each is view or self._shows(each)):
                continue
            self._stale.discard(each)
            if each is self.cam:
                each.draw()
            elif each in self.probe_views:
                each.update_probes(self._probes)
            else:
                each.update_insight(self._insight)

    def _shows(self, view: QWidget) -> bool:
        return self.isVisible() and self.tabs.currentWidget() is view

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.refresh()

    def show_block(self, name: str, probe_able: bool, running: bool, node_id: str | None = None) -> None:
        """Say which block the activations will show (the canvas selection changed); Explore follows it."""
        if node_id is not None:
            self.explore.show_block(node_id)
        if not probe_able:
            self.status.setText(f"'{name}' has no activations to show: pick a layer block.")
        elif running:
            self.status.setText(f"Showing '{name}' from the next probe run.")
        else:
            self.status.setText(f"'{name}' will be shown when training starts.")

    def forget(self) -> None:
        """Another project (or New): every view back to its empty state and the status line to its start text.

        Explore is left to its own :meth:`~designer.insight.explore.ExploreView.forget_run` (it may have a
        computation to drop). NOTE: the class-map chooser returns to "Predicted class" without a signal, so
        whoever calls this resets the choices it relays (the controller's ``cam_class``).
        """
        self._probes = self._insight = None
        self._stale.clear()
        self.probe_runs = self.insight_runs = 0
        for view in self.probe_views + self.insight_views:
            view.clear()
        self.status.setText(START_TEXT)

    def begin_run(self) -> None:
        self.cam.frames.clear()
        self.cam.set_true_classes(None)  # NOTE: the new run's probe images may differ; its first epoch tells
        self.explore.set_training(True)

    def end_run(self, entry=None, base_dir: Path | None = None) -> None:
        """A run has ended: ``entry`` (its RunEntry) feeds Explore when it kept its trained weights.

        Only the view on show draws the run's last results now; each other view draws them when
        it is shown (drawing all of them at once held the window for about 0.1 s at every run's end).
        """
        self.refresh()
        if entry is not None and entry.weights is not None:
            self.explore.set_run(entry, base_dir)
        self.explore.set_training(False)

    def shutdown(self) -> None:
        """Wait for an on-demand computation still running (the window is closing)."""
        self.explore.shutdown()

    # ------------------------------------------------------------------ saving
    def current_view(self) -> QWidget:
        return self.tabs.currentWidget()

    def _ask(self, what: str, suffix: str) -> str:
        from designer.file_ops import dialog_folder

        name = self.current_view().title.lower().replace(" ", "-")
        start = str(dialog_folder(self.project_path) / f"{name}.{suffix}")
        path, _ = QFileDialog.getSaveFileName(self, f"Save {what}", start, f"{what} (*.{suffix})")
        return path

    def fit_to(self, graph, project_path: Path | None) -> None:
        """Show only the views that apply to ``graph``: Masks and boxes for a segmentation or box output."""
        self.project_path = project_path
        shows = any(n.spec.head.views & {"masks", "boxes"} for n in graph.nodes.values() if n.spec.head is not None)
        self.tabs.setTabVisible(self.tabs.indexOf(self.predictions), shows)

    def save_png(self, path: str | Path | None = None) -> Path | None:
        """Save the current view as a PNG (asks where when ``path`` is None). Returns the path written."""
        path = path or self._ask("PNG image", "png")
        if not path:
            return None
        self.refresh(view=self.current_view())  # NOTE: the view may not have drawn its latest results (the dock is hidden)
        if not save_png(self.current_view(), path):
            self.message.emit(f"Could not write {path}")
            return None
        self.message.emit(f"Saved {path}")
        return Path(path)

    def save_csv(self, path: str | Path | None = None) -> Path | None:
        """Save the current view's numbers as CSV (asks where when ``path`` is None). None when empty."""
        self.refresh(view=self.current_view())  # NOTE: as in save_png
        table = self.current_view().csv()
        if table is None:
            self.message.emit("Nothing to save yet: train the network first")
            return None
        path = path or self._ask("CSV table", "csv")
        if not path:
            return None
        try:
            save_csv(path, *table)
        except OSError as exc:
            self.message.emit(f"Could not write {path}: {exc}")
            return None
        self.message.emit(f"Saved {path}")
        return Path(path)
